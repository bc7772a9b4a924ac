//! Kill at every step: `ip-monitor run` is SIGKILLed at random moments — after a change
//! commits, after deliveries are claimed, after the SMTP server accepted a message but before
//! it was marked sent — and restarted, while the address keeps changing. On SQLite and on
//! PostgreSQL. Afterwards: every delivery is sent or superseded (none pending, in flight or
//! failed), everything marked sent really arrived, the latest address reached every active
//! recipient, and duplicates are counted: a message arrives twice only when a kill abandoned
//! its send after the server had it (checked per delivery against its claimed attempts, and
//! in all against the deliveries found accepted but not marked right after each kill).
//!
//! `IP_MONITOR_KILLS` sets the number of kills per backend (default 200).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use ip_monitor_core::{ChangeKind, DeliveryState, StateStore};
use ip_monitor_diesel::DieselStore;
use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};
use mail_parser::MessageParser;

/// The binary under test; `IP_MONITOR_BIN` runs another build of it (e.g. a copy, for a long
/// run while the tree is rebuilt).
fn bin() -> String {
    std::env::var("IP_MONITOR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ip-monitor").to_owned())
}

/// The `n`th address of the run: all distinct, all global.
fn address(n: usize) -> String {
    format!("81.2.{}.{}", 69 + n / 200, 10 + n % 200)
}
const ACTIVE: usize = 30;

fn kills() -> usize {
    std::env::var("IP_MONITOR_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(200)
}

fn write_config(path: &Path, db: &str, source: &HttpServer, smtp: &SmtpServer) {
    std::fs::write(
        path,
        format!(
            r#"
interval = "1h"
probe_interval = "100ms"
control_poll = "100ms"
heartbeat = "100ms"
shutdown_grace = "2s"
[sources]
strategy = "first"
timeout = "1s"
[[sources.list]]
kind = "http"
url = "{}"
[store]
url = "{db}"
[delivery]
parallelism = 4
retry_initial = "200ms"
retry_max = "1s"
[smtp]
host = "127.0.0.1"
port = {}
tls = "none"
from = "IP Monitor <noreply@example.com>"
timeout = "5s"
"#,
            source.url(),
            smtp.addr.port()
        ),
    )
    .unwrap();
}

/// `(recipient, url)` → how many messages arrived.
fn received(smtp: &SmtpServer) -> HashMap<(String, String), usize> {
    let mut map = HashMap::new();
    for m in smtp.messages() {
        let parsed = MessageParser::default()
            .parse(&m.data)
            .expect("message parses");
        let text = parsed.body_text(0).expect("text part").into_owned();
        let url = text
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("the link")
            .to_owned();
        for to in &m.to {
            *map.entry((to.clone(), url.clone())).or_insert(0) += 1;
        }
    }
    map
}

/// Where the kills landed, counted in deliveries left in each phase right after each kill.
#[derive(Debug, Default)]
struct Phases {
    /// Committed with their change, never claimed.
    pending_unclaimed: usize,
    /// Claimed (in flight), and the relay has no copy.
    claimed_unaccepted: usize,
    /// In flight, and the relay has a copy: sending it again makes a duplicate.
    accepted_unmarked: usize,
}

impl Phases {
    async fn observe(&mut self, store: &DieselStore, smtp: &SmtpServer) {
        let got = received(smtp);
        // Older changes' deliveries are superseded or settled: the latest few hold the rest.
        for change in store.history(3).await.unwrap() {
            for d in store.deliveries(change.id).await.unwrap() {
                let key = (d.recipient.email().to_owned(), d.url.clone());
                match d.state {
                    DeliveryState::Pending if d.attempts == 0 => self.pending_unclaimed += 1,
                    DeliveryState::InFlight if got.contains_key(&key) => {
                        self.accepted_unmarked += 1
                    }
                    DeliveryState::InFlight => self.claimed_unaccepted += 1,
                    _ => {}
                }
            }
        }
    }
}

async fn kill_at_every_step(db: String) {
    common::setup_staff(&db, ACTIVE, true);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ip-monitor.toml");
    let mut n = 0;
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok(&address(n))).await;
    let smtp = SmtpServer::start();
    // A server that takes a moment per message keeps deliveries in flight when kills land.
    smtp.set_delay(Duration::from_millis(25));
    write_config(&config, &db, &source, &smtp);
    let spawn = || {
        Command::new(bin())
            .current_dir(dir.path())
            .arg("--config")
            .arg(&config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let total = kills();
    let started = Instant::now();
    let store = DieselStore::connect(&db).await.unwrap();
    let mut phases = Phases::default();
    for k in 0..total {
        if k % 5 == 2 {
            n += 1;
            source.set(Behavior::ok(&address(n)));
        }
        let mut child = spawn();
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..700)));
        child.kill().unwrap();
        child.wait().unwrap();
        // Let the relay finish accepting what reached it before the kill (it takes 25 ms).
        std::thread::sleep(Duration::from_millis(100));
        phases.observe(&store, &smtp).await;
    }
    let kill_phase = started.elapsed();

    // A last change, then a clean run until the outbox is empty.
    n += 1;
    let last_url = format!("http://{}:8008/", address(n));
    source.set(Behavior::ok(&address(n)));
    let mut child = spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let latest = store.history(1).await.unwrap();
        let counts = store.delivery_counts().await.unwrap();
        if latest.first().is_some_and(|c| c.url == last_url)
            && counts.pending + counts.in_flight == 0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox did not drain: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    common::signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());

    // Verify.
    let got = received(&smtp);
    let history = store.history(100_000).await.unwrap();
    let mut sent_rows = 0;
    let mut superseded = 0;
    for change in history.iter().filter(|c| c.kind == ChangeKind::Change) {
        for d in store.deliveries(change.id).await.unwrap() {
            let key = (d.recipient.email().to_owned(), d.url.clone());
            let arrived = got.get(&key).copied().unwrap_or(0);
            // A message can only arrive twice if a claim was abandoned by a kill and the
            // delivery claimed again: never more copies than attempts.
            assert!(
                arrived <= d.attempts as usize,
                "{key:?} arrived {arrived} times in {} attempts",
                d.attempts
            );
            match d.state {
                DeliveryState::Sent => {
                    sent_rows += 1;
                    assert!(arrived >= 1, "{key:?} marked sent but never arrived");
                }
                DeliveryState::Superseded => superseded += 1,
                other => panic!("delivery {} of change {} left {other}", d.id, change.id),
            }
        }
    }
    for i in 0..ACTIVE {
        let key = (format!("staff{i}@example.com"), last_url.clone());
        assert!(
            got.contains_key(&key),
            "{key:?}: the latest address never reached an active recipient"
        );
    }
    assert!(
        got.keys().all(|(to, _)| to.starts_with("staff")),
        "inactive staff were emailed"
    );
    let duplicates: usize = got.values().map(|n| n - 1).sum();
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.in_flight, counts.failed),
        (0, 0, 0),
        "nothing left in flight"
    );
    // A copy arrives twice only when a kill landed after the relay accepted it and before it
    // was marked sent.
    assert!(
        duplicates <= phases.accepted_unmarked,
        "{duplicates} duplicates, but kills landed between acceptance and marking only {} times",
        phases.accepted_unmarked
    );
    assert!(
        phases.accepted_unmarked > 0 && phases.pending_unclaimed > 0,
        "kills landed between acceptance and marking, and after a commit: {phases:?}"
    );
    let line = format!(
        "{}: {total} kills in {kill_phase:.0?}, {} changes, {sent_rows} deliveries sent, {superseded} superseded, \
         0 lost, {duplicates} duplicates; kills left {} deliveries committed but unclaimed, {} claimed but not \
         accepted, {} accepted but not marked (the bound on duplicates)",
        store.backend(),
        history.len(),
        phases.pending_unclaimed,
        phases.claimed_unaccepted,
        phases.accepted_unmarked,
    );
    eprintln!("{line}");
    let at = humantime::format_rfc3339_seconds(SystemTime::now());
    if let Ok(path) = std::env::var("IP_MONITOR_KILL_REPORT") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(f, "{at} {line}").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_kills_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    kill_at_every_step(format!("sqlite://{}", dir.path().join("kill.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn postgres_survives_kills_at_every_step() {
    kill_at_every_step(ip_monitor_testkit::pg::fresh_database()).await;
}
