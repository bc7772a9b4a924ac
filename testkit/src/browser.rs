use std::path::{Path, PathBuf};
use std::process::Command;

/// Chromium named by `IP_MONITOR_CHROMIUM`, or found on `PATH`; `None` without one (the
/// test then says it skipped).
pub fn find() -> Option<PathBuf> {
    let named = std::env::var_os("IP_MONITOR_CHROMIUM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    named.or_else(|| {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|name| {
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
    })
}

fn headless(browser: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// `url` as the browser renders it, `width`×`height` pixels, as PNG bytes.
pub fn screenshot(browser: &Path, url: &str, width: u32, height: u32) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("ip-monitor-shot-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("page.png");
    let out = headless(browser, &dir.join("profile"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(url)
        .output()
        .expect("run the browser");
    let bytes = std::fs::read(&png)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    std::fs::remove_dir_all(&dir).ok();
    bytes
}

/// The DOM of `url` after the browser loaded it, serialized.
pub fn dump_dom(browser: &Path, url: &str) -> String {
    let dir = std::env::temp_dir().join(format!("ip-monitor-dom-{}", fastrand::u64(..)));
    let out = headless(browser, &dir)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run the browser");
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
