//! Idle cost of the monitor embedded in a web server: the axum example runs twice side by
//! side, with the monitor (default settings: a probe a minute, the desired state read every
//! 5 s, a heartbeat every 10 s, an SQLite store) and without it (`APP_IP_MONITOR=off`), for
//! `IP_MONITOR_IDLE_SECS` seconds (default 300). Reports the CPU time and resident memory
//! each process added after start-up. IP sources are served on 127.0.0.1.
//!
//! Run: `cargo build --release -p ip-monitor-example-axum && cargo bench -p ip-monitor-benches --bench idle`

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ip_monitor_testkit::{Behavior, HttpServer};

fn proc_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (11 and 12 after the name).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

fn proc_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn start(bin: &PathBuf, dir: &std::path::Path, monitor: bool, sources: &str) -> Child {
    // The application's staff table, so the monitor's first check records and notifies.
    ip_monitor_testkit::sql::exec(
        &format!("sqlite://{}", dir.join("app.db").display()),
        "CREATE TABLE staff (email TEXT, name TEXT, is_delete BOOLEAN NOT NULL DEFAULT false,
             is_lock BOOLEAN NOT NULL DEFAULT false);
         INSERT INTO staff (email, name) VALUES ('ana@example.com', 'Ana'), ('ben@example.com', NULL);",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Command::new(bin)
        .current_dir(dir)
        .env(
            "APP_DATABASE_URL",
            format!("sqlite://{}", dir.join("app.db").display()),
        )
        .env("APP_BIND", format!("127.0.0.1:{port}"))
        .env("IP_MONITOR_SOURCES", sources)
        .env("APP_IP_MONITOR", if monitor { "on" } else { "off" })
        .env("IP_MONITOR_OUTBOX", dir.join("outbox"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("build the example first: cargo build --release -p ip-monitor-example-axum")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("IP_MONITOR_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let bin =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/ip-monitor-example-axum");
    let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160")).await;
    let b = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160")).await;
    let sources = format!("{},{}", a.url(), b.url());
    let (with_dir, without_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut with = start(&bin, with_dir.path(), true, &sources);
    let mut without = start(&bin, without_dir.path(), false, &sources);
    // Let both start up (and the monitor run its first check and deliveries).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let base = [
        (proc_cpu_secs(with.id()), proc_rss_kib(with.id())),
        (proc_cpu_secs(without.id()), proc_rss_kib(without.id())),
    ];
    let hits_before = a.hits();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let end = [
        (proc_cpu_secs(with.id()), proc_rss_kib(with.id())),
        (proc_cpu_secs(without.id()), proc_rss_kib(without.id())),
    ];
    let probes = a.hits() - hits_before;
    for c in [&mut with, &mut without] {
        let _ = c.kill();
        let _ = c.wait();
    }
    println!("idle for {secs} s after a 5 s start-up; {probes} requests to the first source");
    println!(
        "{:<16} {:>12} {:>14} {:>14}",
        "", "CPU seconds", "RSS at start", "RSS at end"
    );
    for (name, (b, e)) in ["with monitor", "without"]
        .iter()
        .zip(base.iter().zip(end.iter()))
    {
        println!(
            "{name:<16} {:>12.2} {:>11} KiB {:>11} KiB",
            e.0 - b.0,
            b.1,
            e.1
        );
    }
    println!(
        "monitor adds {:.2} CPU s over {secs} s ({:.3} % of one core), {} KiB RSS",
        (end[0].0 - base[0].0) - (end[1].0 - base[1].0),
        100.0 * ((end[0].0 - base[0].0) - (end[1].0 - base[1].0)) / secs as f64,
        end[0].1 as i64 - end[1].1 as i64
    );
}
