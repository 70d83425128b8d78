//! A failed command prints one error line, its causes joined, also where the user's shell
//! sets `RUST_BACKTRACE=1` (candle then captures a stack into each error it makes).

use std::process::Command;

#[test]
fn errors_carry_no_stack_even_with_rust_backtrace_set() {
    let dir = tempfile::tempdir().unwrap();
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/model/tiny-llama.gguf");
    let bytes = std::fs::read(model).unwrap();
    let cut = dir.path().join("cut.gguf");
    // Cut inside the header: candle's GGUF reader makes the error.
    std::fs::write(&cut, &bytes[..200]).unwrap();
    let prompts = dir.path().join("p.jsonl");
    std::fs::write(&prompts, "{\"prompt\": \"Hallo\"}\n").unwrap();
    let run = |lib_backtrace: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_datm"));
        cmd.args(["generate", "-m", cut.to_str().unwrap()])
            .args(["-i", prompts.to_str().unwrap()])
            .env("RUST_BACKTRACE", "1")
            .env_remove("RUST_LIB_BACKTRACE");
        if let Some(v) = lib_backtrace {
            cmd.env("RUST_LIB_BACKTRACE", v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let plain = run(None);
    assert_eq!(plain.lines().count(), 1, "{plain}");
    assert!(
        plain.starts_with("datm: error: loading base model"),
        "{plain}"
    );
    assert!(
        plain.contains("cut.gguf: not a readable GGUF file"),
        "{plain}"
    );
    // Asked for explicitly, the stack is there.
    let asked = run(Some("1"));
    assert!(asked.lines().count() > 1, "{asked}");
}

/// Input that is not UTF-8 is refused naming the file and the line.
#[test]
fn translate_names_the_line_of_invalid_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, b"Datei \xc3\xb6ffnen\nab\xffc\n").unwrap();
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/model/tiny-llama");
    let out = Command::new(env!("CARGO_BIN_EXE_datm"))
        .args(["translate", "-m", model.to_str().unwrap(), "--src", "de"])
        .args(["--tgt", "en", "-i", input.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("in.txt:2: invalid UTF-8"), "{stderr}");
}
