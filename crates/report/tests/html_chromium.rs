//! The HTML report opened offline in headless Chromium: a screenshot that is not blank,
//! and a rendered DOM that holds the tables and the inline SVG figures. Needs
//! `/usr/bin/chromium` (Debian package `chromium`; `scripts/test.sh` installs it): without
//! it the test is a logged skip, or a failure under `CI=true` (datm-testkit).

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use datm_report::{Report, ReportOptions};

const CHROMIUM: &str = "/usr/bin/chromium";
const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs headless Chromium on `page` with `extra` arguments and a fresh profile; returns
/// what it printed on stdout. Fails after [`TIMEOUT`].
fn chromium(page: &Path, extra: &[String], work: &Path) -> String {
    let profile = tempfile::tempdir_in(work).unwrap();
    let stdout_path = work.join(format!("stdout-{}.txt", extra.len()));
    let stderr_path = work.join(format!("stderr-{}.txt", extra.len()));
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        .spawn()
        .expect("starting chromium");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {extra:?} did not finish in {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "chromium {extra:?} failed ({status}): {stderr}"
    );
    std::fs::read_to_string(&stdout_path).unwrap()
}

/// Width, height and RGBA-or-RGB pixels of a PNG.
fn decode_png(path: &Path) -> (u32, u32, usize, Vec<u8>) {
    let decoder = png::Decoder::new(File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, info.color_type.samples(), buf)
}

/// The synthetic report with every kind of figure: the usual systems plus a sweep over
/// the number of languages.
fn report() -> Report {
    let mut systems = experiment("e", true);
    for (point, langs) in [("languages=2", &LANGS[..2]), ("languages=4", &LANGS[..])] {
        for name in ["multilingual", "separate"] {
            systems.push(system("e", point, name, langs, true));
        }
    }
    Report::build(&systems, &ReportOptions::default()).unwrap()
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    if !datm_testkit::program(CHROMIUM, "chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work: PathBuf = dir.path().canonicalize().unwrap();
    let r = report();
    let html = r.to_html();
    let figures = r.figures().figures.len();
    assert_eq!(figures, 6, "four delta figures, languages, parameters");
    let page = work.join("report.html");
    std::fs::write(&page, &html).unwrap();

    let shot = work.join("report.png");
    chromium(&page, &[format!("--screenshot={}", shot.display())], &work);
    let size = std::fs::metadata(&shot).expect("a screenshot").len();
    assert!(size > 20_000, "screenshot of {size} bytes");
    let (width, height, channels, pixels) = decode_png(&shot);
    assert_eq!((width, height), (1400, 2000));
    let colours: std::collections::HashSet<&[u8]> = pixels.chunks(channels).collect();
    assert!(colours.len() > 16, "{} colours: blank page?", colours.len());
    let white = pixels
        .chunks(channels)
        .filter(|p| p[..3] == [255, 255, 255])
        .count();
    let total = (width * height) as usize;
    assert!(
        white < total * 99 / 100,
        "almost all white: nothing rendered"
    );

    let dom = chromium(&page, &["--dump-dom".to_string()], &work);
    let tables = html.matches("<table>").count();
    assert!(tables >= 10, "{tables}");
    assert_eq!(
        dom.matches("<table>").count(),
        tables,
        "every table is in the DOM"
    );
    assert_eq!(
        dom.matches("<svg ").count(),
        figures,
        "every figure is inline SVG"
    );
    assert!(
        dom.matches("<text ").count() > 50,
        "figure labels are SVG text"
    );
    for text in [
        "Table 1 view",
        "Table 2 view",
        "separate − multilingual",
        "conflict",
        "synergy",
    ] {
        assert!(dom.contains(text), "{text}");
    }
}
