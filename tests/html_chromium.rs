//! The HTML report in a real browser (Debian's headless Chromium): the DOM a reader sees, the
//! status filters, and a screenshot of a real page.

use mlsdm_audit::report::{self, Format};
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

fn chromium(dir: &Path, args: &[&str]) -> std::process::Output {
    let profile = dir.join("profile");
    Command::new("chromium")
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
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .output()
        .expect("Debian's chromium is needed for the HTML test; scripts/test.sh installs it")
}

fn page() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.html");
    std::fs::write(
        &file,
        report::render(&support::shared_report(), Format::Html, false),
    )
    .unwrap();
    (dir, file)
}

#[test]
fn html_report_in_chromium() {
    let (dir, file) = page();
    let url = format!("file://{}", file.display());

    let dom = chromium(&dir, &["--dump-dom", &url]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("<h1>MLSDM production checklist</h1>"));
    assert!(dom.contains("Memory requests: 512Mi minimum"));
    assert!(dom.contains("Pre-Deployment / High Availability / Replication"));
    assert!(dom.contains("waived by sre@example.com until 2999-01-31"));
    assert!(dom.contains("<td>Security Team</td>"));
    assert!(
        !dom.contains("class=\"hidden\""),
        "nothing hidden before filtering"
    );

    // The verdict and the score come first, then the failures (severest first), then sections
    // whose bars are red where a line failed.
    let verdict = dom.find("id=\"verdict\"").expect("a verdict banner");
    let findings = dom.find("id=\"findings\"").expect("failures listed");
    let sections = dom.find("<h2>Sections</h2>").unwrap();
    assert!(verdict < findings && findings < sections);
    assert!(
        dom.contains("verdict-fail") && dom.contains("score "),
        "verdict and score"
    );
    assert!(dom.contains("class=\"s-fail\"") && dom.contains("data-rag=\"red\""));
    assert!(dom.contains("class=\"fix\""), "fix hints beside failures");
    assert!(
        dom.contains("data-overflow=\"false\""),
        "fits a desktop window"
    );

    // The filters: only open lines and failed results.
    let filtered = chromium(&dir, &["--dump-dom", &format!("{url}#show=open,fail")]);
    let filtered = String::from_utf8_lossy(&filtered.stdout);
    assert!(
        filtered.contains("<li data-state=\"done\" class=\"hidden\">")
            || filtered.contains("data-state=\"done\" class=\"hidden\""),
        "done lines hidden"
    );
    assert!(
        filtered.contains("<tr data-status=\"fail\" class=\"\">")
            || filtered.contains("<tr data-status=\"fail\">"),
        "failures shown"
    );
    assert!(
        filtered.contains("data-status=\"pass\" class=\"hidden\""),
        "passes hidden"
    );

    // A real rendering: a screenshot of the page, of plausible size.
    let shot = dir.join("shot.png");
    let out = chromium(
        &dir,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600",
            &url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 1600));
    assert!(
        png.len() > 40_000,
        "a rendered page, not a blank one ({} bytes)",
        png.len()
    );
    // At a phone's width the page reflows instead of overflowing sideways.
    let phone = chromium(&dir, &["--window-size=390,844", "--dump-dom", &url]);
    let phone = String::from_utf8_lossy(&phone.stdout);
    assert!(
        phone.contains("data-overflow=\"false\""),
        "wider than a 390 px window"
    );
    let shot = dir.join("phone.png");
    let out = chromium(
        &dir,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=390,844",
            &url,
        ],
    );
    assert!(out.status.success());
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 390);
    std::fs::remove_dir_all(dir).unwrap();
}
