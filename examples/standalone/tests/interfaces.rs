//! The binary notices a replaced interface address, and a router's announcement of a new
//! external address, at once, with probes off and the next full check an hour away: only the
//! kernel's address events and the router's multicast can tell it. Each test runs in a
//! network namespace of its own (skipped where one cannot be made) with a veth pair, a real
//! SMTP server on its loopback, and the store on SQLite or on PostgreSQL over its Unix socket.

#[allow(dead_code)] // the helpers of the other process-level tests
mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ip_monitor_testkit::netns::{self, ip};
use ip_monitor_testkit::router::Router;
use ip_monitor_testkit::smtp::{Received, SmtpServer};

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");
const STAFF: usize = 3;

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The entry URL in a message's text.
fn url_of(message: &Received) -> String {
    let parsed = mail_parser::MessageParser::default()
        .parse(&message.data)
        .unwrap();
    let text = parsed.body_text(0).unwrap().into_owned();
    text.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {text}"))
        .to_owned()
}

fn urls(messages: &[Received]) -> Vec<String> {
    let mut urls: Vec<String> = messages.iter().map(url_of).collect();
    urls.sort();
    urls.dedup();
    urls
}

/// `ip-monitor run` with `source` as its only source, probes off, the next full check an hour
/// away, the store at `db`, the relay `smtp`.
fn run(db: &str, smtp: &SmtpServer, families: &str, source: &str) -> (Stop, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ip-monitor.toml");
    std::fs::write(
        &config,
        format!(
            r#"
families = {families}
interval = "1h"
probe_interval = "0s"
heartbeat = "1s"
[sources]
strategy = "first"
[[sources.list]]
{source}
[store]
url = "{db}"
[smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
from = "IP Monitor <noreply@example.com>"
"#,
            port = smtp.addr.port()
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "run"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    (Stop(child), dir)
}

fn replaced_addresses_reach_staff(db: &str) {
    netns::veth();
    ip("addr add 81.2.69.160/24 dev veth0");
    // A privacy-extensions host: the kernel adds a temporary address and prefers it.
    ip("addr add 2a01:4f8:1::1/64 dev veth0 mngtmpaddr");
    netns::settled("veth0");
    netns::settled("veth1");
    common::setup_staff(db, STAFF, false);
    let smtp = SmtpServer::start();
    let _monitor = run(
        db,
        &smtp,
        "[\"v4\", \"v6\"]",
        "kind = \"interface\"\ninterface = \"veth0\"",
    );
    let first = smtp.wait_for(2 * STAFF, Duration::from_secs(20));
    assert_eq!(first.len(), 2 * STAFF, "the first addresses were not sent");
    assert_eq!(
        urls(&first),
        ["http://81.2.69.160:8008/", "http://[2a01:4f8:1::1]:8008/"],
        "the stable IPv6 address, not the temporary one"
    );
    // Let the watch read the tables as they are now.
    std::thread::sleep(Duration::from_millis(500));

    // (Deleting a primary address deletes the secondaries of its subnet: delete first.)
    ip("addr del 81.2.69.160/24 dev veth0");
    ip("addr add 81.2.69.170/24 dev veth0");
    ip("addr add 2a01:4f8:1::2/64 dev veth0 nodad");
    ip("addr del 2a01:4f8:1::1/64 dev veth0");
    // Without the watch nothing would look before the hour is up.
    let all = smtp.wait_for(4 * STAFF, Duration::from_secs(10));
    assert_eq!(
        all.len(),
        4 * STAFF,
        "the new addresses were not sent at once"
    );
    assert_eq!(
        urls(&all[2 * STAFF..]),
        ["http://81.2.69.170:8008/", "http://[2a01:4f8:1::2]:8008/"]
    );
}

#[test]
fn replaced_addresses_reach_staff_at_once_sqlite() {
    if !netns::isolated("replaced_addresses_reach_staff_at_once_sqlite") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    replaced_addresses_reach_staff(&format!("sqlite://{}/ip-monitor.db", dir.path().display()));
}

#[test]
fn replaced_addresses_reach_staff_at_once_postgres() {
    if !netns::isolated("replaced_addresses_reach_staff_at_once_postgres") {
        return;
    }
    let db = ip_monitor_testkit::pg::fresh_database_on_socket()
        .expect("run under scripts/with-postgres.sh (bash scripts/test.sh does)");
    replaced_addresses_reach_staff(&db);
}

/// The router's announcement of a new external address reaches staff at once.
fn announced_addresses_reach_staff(db: &str) {
    let gateway = netns::lan();
    common::setup_staff(db, STAFF, false);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let router = rt.block_on(Router::start(gateway, "81.2.69.160".parse().unwrap()));
    let smtp = SmtpServer::start();
    let _monitor = run(db, &smtp, "[\"v4\"]", "kind = \"natpmp\"");
    let first = smtp.wait_for(STAFF, Duration::from_secs(20));
    assert_eq!(urls(&first), ["http://81.2.69.160:8008/"]);
    // Let the listener bind before the router speaks.
    std::thread::sleep(Duration::from_millis(500));
    router.set_external("81.2.69.170".parse().unwrap());
    rt.block_on(router.announce());
    let all = smtp.wait_for(2 * STAFF, Duration::from_secs(10));
    assert_eq!(
        all.len(),
        2 * STAFF,
        "the announced address was not sent at once"
    );
    assert_eq!(urls(&all[STAFF..]), ["http://81.2.69.170:8008/"]);
}

#[test]
fn an_announced_address_reaches_staff_at_once_sqlite() {
    if !netns::isolated("an_announced_address_reaches_staff_at_once_sqlite") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    announced_addresses_reach_staff(&format!("sqlite://{}/ip-monitor.db", dir.path().display()));
}

#[test]
fn an_announced_address_reaches_staff_at_once_postgres() {
    if !netns::isolated("an_announced_address_reaches_staff_at_once_postgres") {
        return;
    }
    let db = ip_monitor_testkit::pg::fresh_database_on_socket()
        .expect("run under scripts/with-postgres.sh (bash scripts/test.sh does)");
    announced_addresses_reach_staff(&db);
}
