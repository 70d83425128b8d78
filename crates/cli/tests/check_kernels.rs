//! `datm check-kernels`: every fused training op against its composite twin, one line each,
//! and a clear error for a device this build cannot open.

use std::process::Command;

#[test]
fn check_kernels_on_the_cpu_lists_every_op_and_passes() {
    let out = Command::new(env!("CARGO_BIN_EXE_datm"))
        .args(["check-kernels", "--device", "cpu"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    for op in [
        "rms-norm (LLaMA)",
        "gated GeluTanh, ∂up",
        "rope",
        "softmax",
        "cross-entropy",
    ] {
        assert!(stdout.contains(op), "{op} missing:\n{stdout}");
    }
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(" ok")).count(),
        9,
        "{stdout}"
    );
    assert!(stdout.contains("9 of 9 fused ops match"), "{stdout}");
}

#[test]
fn check_kernels_names_a_bad_device() {
    let out = Command::new(env!("CARGO_BIN_EXE_datm"))
        .args(["check-kernels", "--device", "gpu0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("unknown device \"gpu0\""), "{stderr}");
}
