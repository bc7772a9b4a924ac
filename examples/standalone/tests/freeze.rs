//! A lone leader frozen past its lease (SIGSTOP, as a paused VM) while sends are out, then
//! woken (SIGCONT): on SQLite and on PostgreSQL, every active recipient gets the notice
//! exactly once and nothing is left pending, in flight or failed — round after round.
//! `IP_MONITOR_BIN` runs another build of the binary (e.g. an older one, to compare).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ip_monitor_core::{DeliveryCounts, StateStore};
use ip_monitor_diesel::DieselStore;
use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};

const ACTIVE: usize = 20;
const ROUNDS: usize = 2;

fn write_config(path: &Path, db: &str, source: &HttpServer, smtp: &SmtpServer) {
    std::fs::write(
        path,
        format!(
            r#"
interval = "1h"
probe_interval = "200ms"
control_poll = "200ms"
heartbeat = "200ms"
shutdown_grace = "5s"
[sources]
strategy = "first"
timeout = "1s"
[[sources.list]]
kind = "http"
url = "{}"
[store]
url = "{db}"
[delivery]
parallelism = 8
retry_initial = "300ms"
retry_max = "1s"
[smtp]
host = "127.0.0.1"
port = {}
tls = "none"
from = "IP Monitor <noreply@example.com>"
timeout = "10s"
"#,
            source.url(),
            smtp.addr.port()
        ),
    )
    .unwrap();
}

async fn wait_for(
    store: &DieselStore,
    what: &str,
    limit: Duration,
    done: impl Fn(&DeliveryCounts) -> bool,
) -> DeliveryCounts {
    let deadline = Instant::now() + limit;
    loop {
        let counts = store.delivery_counts().await.unwrap();
        if done(&counts) {
            return counts;
        }
        assert!(Instant::now() < deadline, "{what}: {counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn frozen_leader(db: String) {
    common::setup_staff(&db, ACTIVE, false);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ip-monitor.toml");
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.10")).await;
    let smtp = SmtpServer::start();
    // A relay that takes 1.5 s per message: eight sends are out when the freeze lands.
    smtp.set_delay(Duration::from_millis(1500));
    write_config(&config, &db, &source, &smtp);
    let bin = std::env::var("IP_MONITOR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ip-monitor").to_owned());
    let mut child = Command::new(bin)
        .current_dir(dir.path())
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let store = DieselStore::connect(&db).await.unwrap();
    for round in 0..ROUNDS {
        let address = format!("81.2.69.{}", 10 + round);
        source.set(Behavior::ok(&address));
        let before = store.delivery_counts().await.unwrap().sent;
        wait_for(&store, "eight sends out", Duration::from_secs(30), |c| {
            c.in_flight >= 8
        })
        .await;
        // Frozen for more than three times the lease's ttl (600 ms).
        common::signal(&child, "-STOP");
        std::thread::sleep(Duration::from_millis(2000));
        common::signal(&child, "-CONT");
        let counts = wait_for(&store, "the outbox drains", Duration::from_secs(60), |c| {
            c.sent == before + ACTIVE as u64 && c.pending + c.in_flight == 0
        })
        .await;
        assert_eq!(counts.failed, 0, "round {round}: nobody failed: {counts:?}");
        let url = format!("http://{address}:8008/");
        let mut got: HashMap<String, usize> = HashMap::new();
        for m in smtp.messages() {
            let text = mail_parser::MessageParser::default()
                .parse(&m.data)
                .and_then(|p| p.body_text(0).map(|t| t.into_owned()))
                .unwrap_or_default();
            if text.contains(&url) {
                for to in m.to {
                    *got.entry(to).or_default() += 1;
                }
            }
        }
        for i in 0..ACTIVE {
            let email = format!("staff{i}@example.com");
            assert_eq!(
                got.get(&email).copied().unwrap_or(0),
                1,
                "round {round}: {email} got the notice exactly once ({} backend)",
                store.backend()
            );
        }
    }
    common::signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lone_leader_frozen_with_sends_out() {
    let dir = tempfile::tempdir().unwrap();
    frozen_leader(format!(
        "sqlite://{}",
        dir.path().join("freeze.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn postgres_lone_leader_frozen_with_sends_out() {
    frozen_leader(ip_monitor_testkit::pg::fresh_database()).await;
}
