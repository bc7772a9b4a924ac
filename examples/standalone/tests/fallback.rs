//! Backup relays (`[[smtp.fallback]]`): a message the primary relay cannot take for a reason
//! of the relay itself goes through the next one at once; a recipient the relay refuses is
//! not tried elsewhere; nothing is sent twice. Real SMTP servers on 127.0.0.1, the binary as
//! a user runs it, SQLite and PostgreSQL stores.

#[allow(dead_code)] // the helpers of the other process-level tests
mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");
const STAFF: usize = 20;

/// A port on 127.0.0.1 where nothing listens: connections are refused.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn relay(port: u16) -> String {
    format!("host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout = \"2s\"\n")
}

/// `ip-monitor check` with `[smtp]` = `primary` and the backups, on a store at `db` whose
/// staff table has `STAFF` active members.
fn check(dir: &Path, db: &str, source: &HttpServer, primary: u16, backups: &[u16]) -> Output {
    let mut smtp = format!(
        "[smtp]\n{}from = \"IP Monitor <noreply@example.com>\"\n",
        relay(primary)
    );
    for port in backups {
        smtp.push_str(&format!("[[smtp.fallback]]\n{}", relay(*port)));
    }
    let config = dir.join("ip-monitor.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources.list]]\nkind = \"http\"\nurl = \"{}\"\n[store]\nurl = \"{db}\"\n{smtp}",
            source.url()
        ),
    )
    .unwrap();
    Command::new(BIN)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap()
}

fn each_once(server: &SmtpServer) -> Vec<String> {
    let mut to: Vec<String> = server.messages().into_iter().flat_map(|m| m.to).collect();
    to.sort();
    let before = to.len();
    to.dedup();
    assert_eq!(before, to.len(), "someone got the notice twice");
    to
}

fn everyone() -> Vec<String> {
    let mut all: Vec<String> = (0..STAFF)
        .map(|i| format!("staff{i}@example.com"))
        .collect();
    all.sort();
    all
}

async fn the_backup_takes_what_the_primary_cannot(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    common::setup_staff(db, STAFF, true);
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let backup = SmtpServer::start();
    let spare = SmtpServer::start();

    // The primary's port is closed: every notice goes through the first backup, at once.
    let started = Instant::now();
    let out = check(
        dir.path(),
        db,
        &source,
        closed_port(),
        &[backup.addr.port(), spare.addr.port()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not after the retry backoff"
    );
    assert_eq!(each_once(&backup), everyone());
    assert!(
        spare.messages().is_empty(),
        "the second backup was not needed"
    );
    let via = format!("via=127.0.0.1:{}", backup.addr.port());
    assert_eq!(
        stderr.lines().filter(|l| l.contains(&via)).count(),
        STAFF,
        "the log names the relay of each message: {stderr}"
    );
    let status = Command::new(BIN)
        .current_dir(dir.path())
        .arg("--config")
        .arg(dir.path().join("ip-monitor.toml"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        status["sent_via"][format!("127.0.0.1:{}", backup.addr.port())],
        STAFF,
        "{status}"
    );
    assert_eq!(status["deliveries"]["sent"], STAFF);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_takes_what_the_primary_cannot_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    the_backup_takes_what_the_primary_cannot(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn the_backup_takes_what_the_primary_cannot_on_postgres() {
    the_backup_takes_what_the_primary_cannot(&ip_monitor_testkit::pg::fresh_database()).await;
}

/// A primary that refuses the sender hands over to the backup; one that refuses a recipient
/// does not (that answer is about the mailbox, not the relay); a primary that works keeps
/// every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_failures_of_the_relay_move_to_the_backup() {
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;

    // Working primary: the backup sees nothing.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("a.db").display());
    common::setup_staff(&db, STAFF, false);
    let (primary, backup) = (SmtpServer::start(), SmtpServer::start());
    let out = check(
        dir.path(),
        &db,
        &source,
        primary.addr.port(),
        &[backup.addr.port()],
    );
    assert!(out.status.success());
    assert_eq!(each_once(&primary), everyone());
    assert!(backup.messages().is_empty());

    // Sender refused by policy: a relay problem, the backup takes it.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("b.db").display());
    common::setup_staff(&db, STAFF, false);
    let (primary, backup) = (SmtpServer::start(), SmtpServer::start());
    primary.reply_to_mail(Some((530, "5.7.0 Authentication required")));
    let out = check(
        dir.path(),
        &db,
        &source,
        primary.addr.port(),
        &[backup.addr.port()],
    );
    assert!(out.status.success());
    assert!(primary.messages().is_empty());
    assert_eq!(each_once(&backup), everyone());

    // One mailbox refused at RCPT: that recipient fails, and only on the primary.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    common::setup_staff(&db, STAFF, false);
    let (primary, backup) = (SmtpServer::start(), SmtpServer::start());
    primary.reply_to_rcpt("staff3@example.com", 550, "5.1.1 No such user");
    let out = check(
        dir.path(),
        &db,
        &source,
        primary.addr.port(),
        &[backup.addr.port()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("5.1.1 No such user"), "{stderr}");
    assert!(
        backup.messages().is_empty(),
        "a refused mailbox is not retried elsewhere"
    );
    let mut others = everyone();
    others.retain(|e| e != "staff3@example.com");
    assert_eq!(each_once(&primary), others);
}

#[test]
fn backups_inherit_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ip-monitor.toml");
    std::fs::write(
        &config,
        format!(
            "[smtp]\n{}from = \"IP Monitor <noreply@example.com>\"\n[[smtp.fallback]]\n{}from = \"other@example.com\"\n",
            relay(25),
            relay(26)
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("smtp.fallback[0].from"), "{stderr}");
}
