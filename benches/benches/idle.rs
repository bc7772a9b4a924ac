//! Idle cost of the monitor embedded in a web server: the axum example runs side by side
//! with the monitor at its defaults (a probe a minute, an hourly full check, the heartbeat,
//! an SQLite store) once per kind of IP source — plain HTTP, HTTPS signed by a private CA
//! (a TLS handshake per probe: the test servers close each connection, as a far-away
//! service's idle connection would be gone after a minute), and DNS (one UDP question) —
//! and without the monitor (`APP_IP_MONITOR=off`), for `IP_MONITOR_IDLE_SECS` seconds
//! (default 300). Reports the CPU time and resident memory each monitor adds. Every source
//! is served on 127.0.0.1.
//!
//! Run: `cargo build --release -p ip-monitor-example-axum && cargo bench -p ip-monitor-benches --bench idle`

use std::path::PathBuf;
use std::time::Duration;

use std::net::Ipv4Addr;

use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use ip_monitor_benches::CpuTimed;
use ip_monitor_testkit::dns::{DnsServer, Reply};
use ip_monitor_testkit::{Behavior, HttpServer};

/// A size from `/proc/PID/status`, in KiB: `VmRSS`, or its parts `RssAnon` (heap, stacks)
/// and `RssFile` (pages of the binary and libraries that were touched).
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn start(bin: &PathBuf, dir: &std::path::Path, monitor: bool, sources: &str) -> CpuTimed {
    let ca = ip_monitor_testkit::fixture("ca.pem");
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
    let app_db = format!("sqlite://{}", dir.join("app.db").display());
    CpuTimed::start(bin, &[], |command| {
        command
            .current_dir(dir)
            .env("APP_DATABASE_URL", &app_db)
            .env("APP_BIND", format!("127.0.0.1:{port}"))
            .env("IP_MONITOR_SOURCES", sources)
            .env("IP_MONITOR_CA_FILE", &ca)
            .env("APP_IP_MONITOR", if monitor { "on" } else { "off" })
            .env("IP_MONITOR_OUTBOX", dir.join("outbox"))
            .env("RUST_LOG", "warn");
    })
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
    let ok = || Behavior::ok("81.2.69.160");
    let (a, b) = (
        HttpServer::start("127.0.0.1:0", ok()).await,
        HttpServer::start("127.0.0.1:0", ok()).await,
    );
    let (c, d) = (
        HttpServer::start("127.0.0.1:0", ok()).await,
        HttpServer::start("127.0.0.1:0", ok()).await,
    );
    let (c_tls, d_tls) = (
        ip_monitor_testkit::tls_front(c.addr).await,
        ip_monitor_testkit::tls_front(d.addr).await,
    );
    let dns = DnsServer::start("127.0.0.1:0", |q| {
        let mut m = Message::response(0, OpCode::Query);
        m.add_answer(Record::from_rdata(
            q.name().clone(),
            60,
            RData::A(A(Ipv4Addr::new(81, 2, 69, 160))),
        ));
        Reply::Message(m)
    })
    .await;
    let kinds = [
        ("HTTP", format!("{},{}", a.url(), b.url())),
        (
            "HTTPS",
            format!(
                "https://127.0.0.1:{}/,https://127.0.0.1:{}/",
                c_tls.port(),
                d_tls.port()
            ),
        ),
        ("DNS", format!("dns://{}", dns.addr)),
    ];
    // Each configuration runs twice: one process idles for `secs` after start-up, the other
    // is stopped right after start-up; the difference of their CPU times is the idle cost.
    let sources: Vec<(&str, bool)> = kinds
        .iter()
        .map(|(_, s)| (s.as_str(), true))
        .chain([(kinds[0].1.as_str(), false)])
        .collect();
    let dirs: Vec<_> = (0..sources.len() * 2)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let mut long: Vec<CpuTimed> = Vec::new();
    let mut short: Vec<CpuTimed> = Vec::new();
    for (i, (s, monitor)) in sources.iter().enumerate() {
        long.push(start(&bin, dirs[2 * i].path(), *monitor, s));
        short.push(start(&bin, dirs[2 * i + 1].path(), *monitor, s));
    }
    // Let them start up (and each monitor run its first check and deliveries).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let startup: Vec<f64> = short.into_iter().map(CpuTimed::stop).collect();
    let status = |running: &[CpuTimed], field: &str| -> Vec<u64> {
        running
            .iter()
            .map(|r| proc_status_kib(r.pid, field))
            .collect()
    };
    let rss_start = status(&long, "VmRSS");
    let asked = |dns: &DnsServer| (a.hits(), c.hits(), dns.queries.lock().unwrap().len());
    let asked_before = asked(&dns);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let rss_end = status(&long, "VmRSS");
    let (anon, file) = (status(&long, "RssAnon"), status(&long, "RssFile"));
    let asked_after = asked(&dns);
    let cpu: Vec<f64> = long
        .into_iter()
        .zip(&startup)
        .map(|(r, s)| r.stop() - s)
        .collect();
    let probes = [
        asked_after.0 - asked_before.0,
        asked_after.1 - asked_before.1,
        asked_after.2 - asked_before.2,
    ];
    println!("idle for {secs} s after a 5 s start-up");
    println!(
        "{:<22} {:>12} {:>14} {:>14} {:>20} {:>8}",
        "", "CPU seconds", "RSS at start", "RSS at end", "of it anon + file", "probes"
    );
    let without = kinds.len();
    let names: Vec<String> = kinds
        .iter()
        .map(|(k, _)| format!("with monitor, {k}"))
        .chain(["without".to_owned()])
        .collect();
    for (i, name) in names.iter().enumerate() {
        let shown = probes.get(i).map_or("-".to_owned(), ToString::to_string);
        println!(
            "{name:<22} {:>12.3} {:>10} KiB {:>10} KiB {:>8} + {:>7} KiB {shown:>8}",
            cpu[i], rss_start[i], rss_end[i], anon[i], file[i]
        );
    }
    for (i, (kind, _)) in kinds.iter().enumerate() {
        let added = cpu[i] - cpu[without];
        println!(
            "the monitor over {kind:<5} adds {added:.3} CPU s in {secs} s = {:.2} CPU s per hour, {} KiB RSS ({} anon + {} file)",
            added * 3600.0 / secs as f64,
            rss_end[i] as i64 - rss_end[without] as i64,
            anon[i] as i64 - anon[without] as i64,
            file[i] as i64 - file[without] as i64
        );
    }
}
