//! The binary notices a replaced interface address at once, with probes off and the next
//! full check an hour away: only the kernel's address events can tell it. Each test runs in a
//! network namespace of its own (skipped where one cannot be made) with a veth pair, a real
//! SMTP server on its loopback, and the store on SQLite or on PostgreSQL over its Unix socket.

#[allow(dead_code)] // the helpers of the other process-level tests
mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ip_monitor_testkit::netns::{self, ip};
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

fn replaced_addresses_reach_staff(db: &str) {
    netns::veth();
    ip("addr add 81.2.69.160/24 dev veth0");
    // A privacy-extensions host: the kernel adds a temporary address and prefers it.
    ip("addr add 2a01:4f8:1::1/64 dev veth0 mngtmpaddr");
    netns::settled("veth0");
    netns::settled("veth1");
    common::setup_staff(db, STAFF, false);
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ip-monitor.toml");
    std::fs::write(
        &config,
        format!(
            r#"
families = ["v4", "v6"]
interval = "1h"
probe_interval = "0s"
heartbeat = "1s"
[sources]
strategy = "first"
[[sources.list]]
kind = "interface"
interface = "veth0"
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
    let _monitor = Stop(
        Command::new(BIN)
            .args(["--config", config.to_str().unwrap(), "run"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
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
