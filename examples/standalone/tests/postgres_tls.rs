//! The binary talks to PostgreSQL over TLS with its compiled-in libpq: the server's
//! certificate is verified against the CA the URL names, and a certificate from another CA
//! is refused.

#[allow(dead_code)] // the helpers of the other process-level tests
mod common;

use std::process::Command;

use ip_monitor_testkit::smtp::SmtpServer;

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");

/// `ip-monitor test --force` with the store at `url`.
fn send_test(dir: &std::path::Path, url: &str, smtp: &SmtpServer) -> std::process::Output {
    let config = dir.join("ip-monitor.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{url}\"\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"IP Monitor <noreply@example.com>\"\n",
            smtp.addr.port()
        ),
    )
    .unwrap();
    Command::new(BIN)
        .current_dir(dir)
        .arg("--config")
        .arg(&config)
        .args(["test", "--force", "--ip", "81.2.69.160"])
        .output()
        .unwrap()
}

#[test]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
fn the_store_is_reached_over_verified_tls() {
    let db = ip_monitor_testkit::pg::fresh_database();
    common::setup_staff(&db, 2, false);
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start();
    let ca = ip_monitor_testkit::fixture("ca.pem");
    let other = ip_monitor_testkit::fixture("other-ca.pem");

    let refused = send_test(
        dir.path(),
        &format!("{db}?sslmode=verify-full&sslrootcert={}", other.display()),
        &smtp,
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "a certificate of another CA is accepted"
    );
    assert!(stderr.contains("certificate"), "{stderr}");
    assert!(smtp.messages().is_empty());

    let out = send_test(
        dir.path(),
        &format!("{db}?sslmode=verify-full&sslrootcert={}", ca.display()),
        &smtp,
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 sent, 0 failed"));
    assert_eq!(smtp.messages().len(), 2);
}
