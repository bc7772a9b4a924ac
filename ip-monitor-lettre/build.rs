//! Marks the browser tests runnable when a headless-capable Chromium is on `PATH` (or named
//! by `IP_MONITOR_CHROMIUM`); without one they are reported as ignored, with the reason.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(browser_tests)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=IP_MONITOR_CHROMIUM");
    let named = std::env::var_os("IP_MONITOR_CHROMIUM")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let on_path = || {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|name| {
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
    };
    if let Some(browser) = named.or_else(on_path) {
        println!("cargo::rustc-cfg=browser_tests");
        // The tests run the browser found here.
        println!("cargo::rustc-env=IP_MONITOR_BROWSER={}", browser.display());
    }
}
