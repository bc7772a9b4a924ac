//! `[[hooks]]` with a real script, through the binary, on SQLite and PostgreSQL: the
//! arguments and variables it gets, a retry on exit 75, the kill and retry of a run past its
//! timeout (with what it started), a permanent failure shown with its stderr, `test --force`
//! with `IP_MONITOR_TEST=1`, and one run per change with a leader and a standby.

#[allow(dead_code)] // the helpers of the other process-level tests
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The hook: one line per run into `runs`; a file `tempfail` makes one run exit 75, `hang`
/// one run hang with a child (its pid into `hung`), `fail` every run exit 3.
const SCRIPT: &str = r#"#!/bin/sh
cd "$(dirname "$0")"
echo "args=$* address=$IP_MONITOR_ADDRESS previous=$IP_MONITOR_PREVIOUS url=$IP_MONITOR_URL family=$IP_MONITOR_FAMILY test=$IP_MONITOR_TEST" >> runs
if [ -f tempfail ]; then rm tempfail; echo "router busy" >&2; exit 75; fi
if [ -f hang ]; then rm hang; sleep 60 & echo $! > hung; wait; fi
if [ -f fail ]; then echo "one" >&2; echo "permission denied on the router" >&2; exit 3; fi
exit 0
"#;

fn runs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("runs"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn hook_state(db: &str, address: &str, state: &str) -> i64 {
    ip_monitor_testkit::sql::try_count(
        db,
        &format!(
            "SELECT COUNT(*) AS n FROM ip_monitor_deliveries WHERE email LIKE 'hook-%' \
             AND address = '{address}' AND state = '{state}'"
        ),
    )
    .unwrap_or(-1)
}

async fn hooks_run_once_per_change(db: String) {
    common::setup_staff(&db, 1, false);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("on-ip-change");
    std::fs::write(&script, SCRIPT).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160")).await;
    let smtp = SmtpServer::start();
    let config = dir.path().join("ip-monitor.toml");
    std::fs::write(
        &config,
        format!(
            r#"
probe_interval = "200ms"
heartbeat = "300ms"
control_poll = "200ms"
[sources]
strategy = "first"
[[sources.list]]
kind = "http"
url = "{url}"
[store]
url = "{db}"
[delivery]
retry_initial = "200ms"
retry_max = "500ms"
[smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
from = "IP Monitor <noreply@example.com>"
[[hooks]]
command = ["{script}", "{{ip}}", "{{previous}}", "{{family}}"]
timeout = "1s"
"#,
            url = source.url(),
            port = smtp.addr.port(),
            script = script.display(),
        ),
    )
    .unwrap();
    let start = || {
        Stop(
            Command::new(BIN)
                .args(["--config", config.to_str().unwrap(), "run"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    // A leader and a standby: the hook runs once per change all the same.
    let (a, b) = (start(), start());
    wait_until("the first run", Duration::from_secs(20), || {
        hook_state(&db, "81.2.69.160", "sent") == 1
    });
    let first = runs(dir.path());
    assert_eq!(
        first,
        [
            "args=81.2.69.160  ipv4 address=81.2.69.160 previous= url=http://81.2.69.160:8008/ family=ipv4 test=0"
        ]
    );

    // Exit 75: tried again.
    std::fs::write(dir.path().join("tempfail"), "").unwrap();
    source.set(Behavior::ok("81.2.69.161"));
    wait_until("the retried run", Duration::from_secs(20), || {
        hook_state(&db, "81.2.69.161", "sent") == 1
    });
    let retried: Vec<String> = runs(dir.path())
        .into_iter()
        .filter(|r| r.contains("address=81.2.69.161"))
        .collect();
    assert_eq!(retried.len(), 2, "{retried:?}");
    assert!(
        retried[0].starts_with("args=81.2.69.161 81.2.69.160 ipv4 "),
        "{retried:?}"
    );

    // A run past its timeout is killed with the child it started, and tried again.
    std::fs::write(dir.path().join("hang"), "").unwrap();
    source.set(Behavior::ok("81.2.69.162"));
    wait_until(
        "the run after the hung one",
        Duration::from_secs(20),
        || hook_state(&db, "81.2.69.162", "sent") == 1,
    );
    let hung = std::fs::read_to_string(dir.path().join("hung")).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", hung.trim())).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z"),
        "the hung run's child still runs: {stat}"
    );
    let tries = runs(dir.path())
        .iter()
        .filter(|r| r.contains("address=81.2.69.162"))
        .count();
    assert_eq!(tries, 2);

    // Any other exit fails the delivery for good, in the program's words.
    std::fs::write(dir.path().join("fail"), "").unwrap();
    source.set(Behavior::ok("81.2.69.163"));
    wait_until("the failed run", Duration::from_secs(20), || {
        hook_state(&db, "81.2.69.163", "failed") == 1
    });
    let error = ip_monitor_testkit::sql::try_count(
        &db,
        "SELECT COUNT(*) AS n FROM ip_monitor_deliveries WHERE email LIKE 'hook-%' \
         AND last_error LIKE '%exit status: 3: one / permission denied on the router%'",
    )
    .unwrap();
    assert_eq!(error, 1, "the failure shows the script's stderr");
    assert_eq!(
        runs(dir.path())
            .iter()
            .filter(|r| r.contains("address=81.2.69.163"))
            .count(),
        1,
        "a permanent failure is not retried"
    );
    std::fs::remove_file(dir.path().join("fail")).unwrap();

    // `test --force` (run on its own, with no monitor holding the lease) runs it with
    // IP_MONITOR_TEST=1.
    for mut monitor in [a, b] {
        common::signal(&monitor.0, "-TERM");
        let _ = monitor.0.wait();
    }
    // The standby may take the lease while the leader stops, and hold it for its ttl (0.9 s).
    let started = Instant::now();
    loop {
        let out = Command::new(BIN)
            .args([
                "--config",
                config.to_str().unwrap(),
                "test",
                "--force",
                "--ip",
                "81.2.69.200",
            ])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            break;
        }
        assert!(
            said.contains("does not hold the lease") && started.elapsed() < Duration::from_secs(5),
            "{said}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_until("the test run", Duration::from_secs(20), || {
        runs(dir.path())
            .iter()
            .any(|r| r.contains("address=81.2.69.200"))
    });
    let test = runs(dir.path())
        .into_iter()
        .find(|r| r.contains("address=81.2.69.200"))
        .unwrap();
    assert!(test.ends_with("test=1"), "{test}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_once_per_change_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    hooks_run_once_per_change(format!("sqlite://{}/ip-monitor.db", dir.path().display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_once_per_change_postgres() {
    hooks_run_once_per_change(ip_monitor_testkit::pg::fresh_database()).await;
}
