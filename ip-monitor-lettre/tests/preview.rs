//! The preview files, and the HTML rendered by a real browser (headless Chromium): the
//! screenshot must hold a QR code that scans to the entry URL.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use ip_monitor_core::{Notice, Recipient};
use ip_monitor_lettre::{MessageTemplate, preview};

/// The browser the build found: `IP_MONITOR_CHROMIUM`, or the first Chromium on `PATH`.
fn chromium() -> PathBuf {
    // Set with `cfg(browser_tests)`; without it this test is ignored.
    match option_env!("IP_MONITOR_BROWSER") {
        Some(path) => path.into(),
        None => panic!(
            "headless Chromium is needed for this test: `bash scripts/setup.sh` installs Debian's chromium"
        ),
    }
}

fn decode_qr(png: &Path) -> Vec<String> {
    let img = image::open(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    prepared
        .detect_grids()
        .iter()
        .filter_map(|g| g.decode().ok().map(|(_, s)| s))
        .collect()
}

#[tokio::test]
#[cfg_attr(
    not(browser_tests),
    ignore = "needs Chromium (chromium, chromium-browser or google-chrome on PATH, or IP_MONITOR_CHROMIUM): bash scripts/setup.sh installs it"
)]
async fn the_preview_renders_in_a_browser_with_a_scannable_qr_code() {
    let dir = tempfile::tempdir().unwrap();
    let url = "http://[2606:4700:4700::1111]:8008/";
    let notice = Notice::new(
        3,
        "2606:4700:4700::1111".parse().unwrap(),
        url.into(),
        SystemTime::now(),
        false,
    )
    .unwrap();
    let ana = Recipient::new("ana@example.com", Some("Ana <admin>")).unwrap();
    let template = MessageTemplate::new("IP Monitor <noreply@example.com>").unwrap();
    let files = preview(&notice, &ana, &template, &dir.path().join("preview"))
        .await
        .unwrap();

    assert_eq!(decode_qr(&files.png), [url], "qr.png scans to the URL");
    let eml = std::fs::read(&files.eml).unwrap();
    let parsed = mail_parser::MessageParser::default().parse(&eml).unwrap();
    assert!(
        parsed.body_html(0).unwrap().contains("cid:qr-3@ip-monitor"),
        "notice.eml is the real message"
    );
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains("Hello Ana &lt;admin&gt;,"));

    let shot = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=600,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", files.html.display()))
        .output()
        .expect("run chromium");
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        decode_qr(&shot),
        [url],
        "the rendered page shows a QR code that scans to the URL"
    );
}
