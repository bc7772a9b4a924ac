//! A relay that throttles: a private Postfix on 127.0.0.1 with anvil's per-client limits
//! (two sessions, 60 messages per 10 s, loopback not exempt), a real change through `run`,
//! the default delivery settings. Every staff member gets the notice once, nobody is failed
//! or retried on the recipient's backoff, and few attempts are refused. SQLite and
//! PostgreSQL stores.

#[allow(dead_code)] // the helpers of the other process-level tests
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ip_monitor_testkit::postfix::{Limits, ThrottlingRelay};
use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");
/// Past one window of 60: the second window is paced.
const STAFF: usize = 90;

fn status(dir: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .current_dir(dir)
        .arg("--config")
        .arg(dir.join("ip-monitor.toml"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn a_throttling_relay_gets_everyone_once(db: &str) {
    let relay_to = SmtpServer::start();
    let relay = match ThrottlingRelay::start(Limits::default(), relay_to.addr.port()) {
        Ok(relay) => relay,
        Err(why) => {
            eprintln!("skipped: no throttling relay here: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    common::setup_staff(db, STAFF, true);
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    std::fs::write(
        dir.path().join("ip-monitor.toml"),
        format!(
            "probe_interval = \"1s\"\nnotify_on_first = false\n\
             [[sources.list]]\nkind = \"http\"\nurl = \"{}\"\n\
             [store]\nurl = \"{db}\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"IP Monitor <noreply@example.com>\"\n",
            source.url(),
            relay.port
        ),
    )
    .unwrap();
    let run = Stop(
        Command::new(BIN)
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .arg("--config")
            .arg(dir.path().join("ip-monitor.toml"))
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the first address", Duration::from_secs(30), || {
        status(dir.path())["current"]["v4"]["address"] == "81.2.69.160"
    });
    source.set(Behavior::ok("81.2.69.161\n"));
    let changed = Instant::now();
    wait_until("every notice handed over", Duration::from_secs(120), || {
        let d = &status(dir.path())["deliveries"];
        d["sent"].as_u64().unwrap_or(0) + d["failed"].as_u64().unwrap_or(0) >= STAFF as u64
    });
    let took = changed.elapsed();
    drop(run);
    let s = status(dir.path());
    assert_eq!(
        (
            s["deliveries"]["sent"].as_u64(),
            s["deliveries"]["failed"].as_u64()
        ),
        (Some(STAFF as u64), Some(0)),
        "{s}"
    );
    let retried = ip_monitor_testkit::sql::count(
        db,
        "SELECT COUNT(*) AS n FROM ip_monitor_deliveries WHERE attempts <> 1",
    );
    assert_eq!(retried, 0, "a throttling answer counted an attempt");
    let refused = relay.refusals();
    eprintln!("{STAFF} messages in {took:?} through the throttling relay; it refused {refused:?}");
    assert!(refused.total() > 0, "the relay throttled: {}", relay.log());
    assert!(
        refused.total() * 4 < STAFF,
        "{refused:?} refused attempts for {STAFF} messages"
    );
    // The relay passes on what it took; each staff member once.
    let mut to = Vec::new();
    wait_until(
        "the relay to pass everything on",
        Duration::from_secs(60),
        || {
            to = relay_to.messages().into_iter().flat_map(|m| m.to).collect();
            to.len() >= STAFF
        },
    );
    to.sort();
    to.dedup();
    assert_eq!(to.len(), STAFF, "nobody twice");
    assert_eq!(relay.accepted(), STAFF);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_relay_gets_everyone_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_throttling_relay_gets_everyone_once(&format!(
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
async fn a_throttling_relay_gets_everyone_once_on_postgres() {
    a_throttling_relay_gets_everyone_once(&ip_monitor_testkit::pg::fresh_database()).await;
}

/// A relay whose daily sending quota is used up (`550 5.4.5`) fails nobody: every delivery
/// waits for `quota_retry`, no attempt counted, and goes out once the quota resets.
async fn a_sending_quota_fails_nobody(db: &str) {
    const N: usize = 12;
    let relay = SmtpServer::start();
    relay.reply_to_mail(Some((550, "5.4.5 Daily user sending limit exceeded")));
    let dir = tempfile::tempdir().unwrap();
    common::setup_staff(db, N, false);
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let config = dir.path().join("ip-monitor.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources.list]]\nkind = \"http\"\nurl = \"{}\"\n[store]\nurl = \"{db}\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nquota_retry = \"2s\"\n\
             from = \"IP Monitor <noreply@example.com>\"\n",
            source.url(),
            relay.addr.port()
        ),
    )
    .unwrap();
    let check = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(dir.path())
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    check(&["check"]);
    let s = status(dir.path());
    assert_eq!(
        (
            s["deliveries"]["pending"].as_u64(),
            s["deliveries"]["failed"].as_u64()
        ),
        (Some(N as u64), Some(0)),
        "{s}"
    );
    let counted = ip_monitor_testkit::sql::count(
        db,
        "SELECT COUNT(*) AS n FROM ip_monitor_deliveries WHERE attempts <> 0",
    );
    assert_eq!(counted, 0, "the quota counted an attempt");
    assert!(relay.messages().is_empty());
    // The quota resets: the held deliveries go out once it is over.
    relay.reply_to_mail(None);
    std::thread::sleep(Duration::from_secs(2));
    let out = check(&["retry"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the held notices", Duration::from_secs(30), || {
        status(dir.path())["deliveries"]["sent"].as_u64() == Some(N as u64)
    });
    assert_eq!(relay.messages().len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sending_quota_fails_nobody_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_sending_quota_fails_nobody(&format!(
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
async fn a_sending_quota_fails_nobody_on_postgres() {
    a_sending_quota_fails_nobody(&ip_monitor_testkit::pg::fresh_database()).await;
}
