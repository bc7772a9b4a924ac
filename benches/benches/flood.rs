//! The status server under abuse, through the binary: a leader and a standby `ip-monitor run`
//! on one store (an SQLite file, and durable PostgreSQL when `IP_MONITOR_BENCH_PG_DURABLE_URL`
//! is set), the leader serving `[server]` at its defaults (64 connections, a 10 s request
//! deadline), 50 staff on a loopback SMTP server, a probe a second, a heartbeat a second
//! (a lease of 3 s: ten times stricter than the default). For `IP_MONITOR_FLOOD_SECS` seconds
//! (default 60), 500 slow clients each hold a connection open sending a header line every
//! 2 s (and open another when one is closed) while 32 clients ask for `GET /` as fast as they
//! are answered; a third of the way in, the source's answer changes. The target: the lease's
//! fence never moves (no takeover), the leader's heartbeat never lags more than 2 s, the
//! change is delivered to all 50 within 10 s, and `/healthz` answers 200 within 1 s after
//! the flood stops. Reports the same change's delivery without the flood beside it.
//!
//! Run: `bash scripts/bench.sh --bench flood`

use std::path::Path;

use ip_monitor_benches::Kill;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const STAFF: usize = 50;
const SLOW: usize = 500;
const FLOODERS: usize = 32;

fn start(bin: &str, dir: &Path, url: &str, source: &HttpServer, smtp: u16, port: u16) -> Kill {
    let config = dir.join(format!("{:016x}.toml", fastrand::u64(..)));
    std::fs::write(
        &config,
        format!(
            "probe_interval = \"1s\"\nheartbeat = \"1s\"\nnotify_on_first = false\n\
             [[sources.list]]\nkind = \"http\"\nurl = \"{}\"\n\
             [store]\nurl = \"{url}\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"none\"\n\
             from = \"IP Monitor <noreply@example.com>\"\n\
             [server]\nlisten = \"127.0.0.1:{port}\"\n",
            source.url()
        ),
    )
    .unwrap();
    Kill(
        Command::new(bin)
            .current_dir(dir)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the ip-monitor binary"),
    )
}

fn count(url: &str, sql: &str) -> i64 {
    ip_monitor_testkit::sql::try_count(url, sql).unwrap_or(-1)
}

/// One request on its own connection: the status code, if an answer came.
async fn get(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.ok()?;
    let line = String::from_utf8_lossy(&answer[..answer.len().min(16)]).into_owned();
    line.split(' ').nth(1)?.parse().ok()
}

/// A client that sends a request's head one line every 2 s, and opens another connection
/// when the server closes it, until `stop`.
async fn slow_client(port: u16, stop: Arc<AtomicBool>, held: Arc<AtomicUsize>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        held.fetch_add(1, Ordering::Relaxed);
        let mut line: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        while !stop.load(Ordering::Relaxed) && s.write_all(line).await.is_ok() {
            line = b"X-Slow: 1\r\n";
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        held.fetch_sub(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Flip the source and wait until all are told: seconds from the flip to the last sent.
async fn change(url: &str, source: &HttpServer, to: &str, sent_before: i64) -> f64 {
    source.set(Behavior::ok(&format!("{to}\n")));
    let flipped = Instant::now();
    let sent = "SELECT COUNT(*) AS n FROM ip_monitor_deliveries WHERE state = 'sent'";
    while count(url, sent) < sent_before + STAFF as i64 {
        assert!(
            flipped.elapsed() < Duration::from_secs(120),
            "not delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    flipped.elapsed().as_secs_f64()
}

struct Figures {
    quiet: f64,
    flooded: f64,
    answered: usize,
    held: usize,
    lag: f64,
    fences: i64,
    health: f64,
}

async fn run(bin: &str, dir: &Path, url: &str, secs: u64) -> Figures {
    let smtp = SmtpServer::start();
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let port = ip_monitor_testkit::free_port();
    let _leader = start(bin, dir, url, &source, smtp.addr.port(), port);
    while get(port, "/healthz").await != Some(200) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _standby = start(bin, dir, url, &source, smtp.addr.port(), 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let quiet = change(url, &source, "81.2.69.161", 0).await;
    let fence = "SELECT lease_fence AS n FROM ip_monitor_control";
    let fence_before = count(url, fence);

    let stop = Arc::new(AtomicBool::new(false));
    let held = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SLOW {
        tasks.push(tokio::spawn(slow_client(port, stop.clone(), held.clone())));
    }
    for _ in 0..FLOODERS {
        let (stop, answered) = (stop.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if get(port, "/").await == Some(200) {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    let beat = "SELECT heartbeat_at_ms AS n FROM ip_monitor_instances \
                WHERE id = (SELECT lease_holder FROM ip_monitor_control)";
    let (mut last, mut lag, mut most_held) = (count(url, beat), 0i64, 0);
    let mut flooded = None;
    while started.elapsed() < Duration::from_secs(secs) {
        if flooded.is_none() && started.elapsed() >= Duration::from_secs(secs / 3) {
            flooded = Some(change(url, &source, "81.2.69.162", STAFF as i64).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = count(url, beat);
        if now > last {
            last = now;
        }
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        lag = lag.max(wall - last);
        most_held = most_held.max(held.load(Ordering::Relaxed));
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    let stopped = Instant::now();
    while get(port, "/healthz").await != Some(200) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let health = stopped.elapsed().as_secs_f64();
    Figures {
        quiet,
        flooded: flooded.expect("the change was made"),
        answered: answered.load(Ordering::Relaxed),
        held: most_held,
        lag: lag as f64 / 1000.0,
        fences: count(url, fence) - fence_before,
        health,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let bin = std::env::var("IP_MONITOR_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/ip-monitor").to_owned()
    });
    assert!(Path::new(&bin).is_file(), "no release binary at {bin}");
    let secs = std::env::var("IP_MONITOR_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let mut stores = vec![("sqlite file (WAL)", "sqlite", String::new())];
    if let Ok(url) = std::env::var("IP_MONITOR_BENCH_PG_DURABLE_URL") {
        stores.push(("postgres durable", "postgres", url));
    }
    println!(
        "{SLOW} slow connections and {FLOODERS} `GET /` clients for {secs} s at a leader \
         (heartbeat 1 s, lease 3 s) with a standby; a change to {STAFF} staff during it:"
    );
    println!(
        "{:>18} {:>9} {:>9} {:>8} {:>5} {:>9} {:>7} {:>9}",
        "store", "quiet s", "flood s", "GET / ok", "held", "beat lag", "fences", "healthz s"
    );
    for (label, kind, base) in &stores {
        let url = ip_monitor_benches::fresh(kind, base, dir.path());
        ip_monitor_benches::staff_table(&url, STAFF);
        let f = run(&bin, dir.path(), &url, secs).await;
        println!(
            "{label:>18} {:>9.2} {:>9.2} {:>8} {:>5} {:>9.2} {:>7} {:>9.3}",
            f.quiet, f.flooded, f.answered, f.held, f.lag, f.fences, f.health
        );
        assert_eq!(f.fences, 0, "the lease changed hands during the flood");
        assert!(f.lag <= 2.0, "the heartbeat lagged {:.2} s", f.lag);
        assert!(f.flooded <= 10.0, "the change took {:.2} s", f.flooded);
        assert!(f.health <= 1.0, "/healthz took {:.3} s after", f.health);
    }
}
