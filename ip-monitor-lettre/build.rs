//! Marks the browser tests runnable when a headless-capable Chromium is on `PATH` (or named
//! by `IP_MONITOR_CHROMIUM`); without one they are reported as ignored, with the reason.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(browser_tests)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=IP_MONITOR_CHROMIUM");
    let named = std::env::var_os("IP_MONITOR_CHROMIUM").is_some_and(|v| !v.is_empty());
    let on_path = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .any(|name| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .any(|dir| dir.join(name).is_file())
        });
    if named || on_path {
        println!("cargo::rustc-cfg=browser_tests");
    }
}
