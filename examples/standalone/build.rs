//! Marks the PostgreSQL tests runnable when a throwaway server's URL is exported
//! (`bash scripts/test.sh` does), and the systemd unit's check when `systemd-analyze` is on
//! `PATH`, the status page's browser test when a Chromium is (or `IP_MONITOR_CHROMIUM`
//! names one), and the DNS update tests when BIND's `named` is installed; without them they
//! are reported as ignored.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    println!("cargo::rustc-check-cfg=cfg(systemd_tests)");
    println!("cargo::rustc-check-cfg=cfg(browser_tests)");
    println!("cargo::rustc-check-cfg=cfg(bind_tests)");
    println!("cargo::rerun-if-env-changed=IP_MONITOR_CHROMIUM");
    println!("cargo::rerun-if-env-changed=IP_MONITOR_TEST_PG_URL");
    println!("cargo::rerun-if-env-changed=PATH");
    if std::env::var_os("IP_MONITOR_TEST_PG_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=pg_tests");
    }
    let on_path = |name: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|dir| dir.join(name).is_file())
    };
    if on_path("systemd-analyze") {
        println!("cargo::rustc-cfg=systemd_tests");
    }
    let chromium = std::env::var_os("IP_MONITOR_CHROMIUM").is_some_and(|v| !v.is_empty())
        || ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .any(|name| on_path(name));
    if chromium {
        println!("cargo::rustc-cfg=browser_tests");
    }
    // Debian puts named in /usr/sbin, outside a user's PATH.
    if on_path("named") || std::path::Path::new("/usr/sbin/named").is_file() {
        println!("cargo::rustc-cfg=bind_tests");
    }
}
