//! Marks the PostgreSQL tests runnable when a throwaway server's URL is exported
//! (`bash scripts/test.sh` does); without it they are reported as ignored.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pg_tests)");
    println!("cargo::rerun-if-env-changed=IP_MONITOR_TEST_PG_URL");
    if std::env::var_os("IP_MONITOR_TEST_PG_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=pg_tests");
    }
}
