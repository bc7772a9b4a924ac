//! How fast the binary notices a change without asking anyone: in a network namespace of
//! its own (the bench runs itself again under `unshare --net`; root), the release binary at
//! its defaults plus one source — `kind = "interface"` on a veth device, or `kind =
//! "natpmp"` asking a NAT-PMP router on the LAN — with probes off and the next full check an
//! hour away, a real SMTP server on the namespace's loopback, one staff member, an SQLite
//! store. Each round replaces the interface's address (`ip addr del` + `ip addr add`), or
//! has the router announce a new external address (RFC 6886 §3.2.1), and times it to the
//! first message accepted by the relay with the new entry URL. Then the idle cost with probes
//! off: two binaries idle side by side for `IP_MONITOR_IDLE_SECS` (default 120), one with
//! the interface watch on and one with it off, each compared with one stopped right after
//! its first notice (CPU time from `wait4`'s rusage, through `scripts/cpu_time.py`).
//!
//! Targets: at most 2 s from the replaced address, and from the router's announcement, to
//! the message; at most 0.05 CPU-s per hour idle.
//!
//! Run: `bash scripts/bench.sh --bench react`

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ip_monitor_benches::CpuTimed;
use ip_monitor_testkit::netns::{self, ip};
use ip_monitor_testkit::router::Router;
use ip_monitor_testkit::smtp::SmtpServer;

const ROUNDS: usize = 10;

/// `ip-monitor run` with `source`, probes off, under `cpu_time.py`.
fn start(bin: &str, dir: &Path, smtp: u16, source: &str) -> CpuTimed {
    let db = format!(
        "sqlite://{}",
        dir.join(format!("{:016x}.db", fastrand::u64(..))).display()
    );
    ip_monitor_benches::staff_table(&db, 1);
    let config = dir.join(format!("{:016x}.toml", fastrand::u64(..)));
    std::fs::write(
        &config,
        format!(
            "interval = \"1h\"\nprobe_interval = \"0s\"\n\
             [[sources.list]]\n{source}\n\
             [store]\nurl = \"{db}\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"none\"\n\
             from = \"IP Monitor <noreply@example.com>\"\n"
        ),
    )
    .unwrap();
    let args = ["--config".as_ref(), config.as_os_str(), "run".as_ref()];
    CpuTimed::start(bin, &args, |command| {
        command.current_dir(dir);
    })
}

/// Wait until the relay has accepted `n` messages in all (one staff member: one message per
/// change); seconds since `from`.
fn delivered(smtp: &SmtpServer, n: usize, from: Instant) -> f64 {
    while smtp.messages().len() < n {
        assert!(
            from.elapsed() < Duration::from_secs(60),
            "message {n} was never sent"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    from.elapsed().as_secs_f64()
}

fn summary(name: &str, mut seconds: Vec<f64>) {
    seconds.sort_by(f64::total_cmp);
    println!(
        "{name:>34}  median {:.3} s  max {:.3} s  ({} rounds)",
        seconds[seconds.len() / 2],
        seconds[seconds.len() - 1],
        seconds.len()
    );
}

/// Rounds of a replaced address on veth0.
fn interface_rounds(bin: &str, dir: &Path, smtp: &SmtpServer) -> Vec<f64> {
    ip("addr add 81.2.69.10/24 dev veth0");
    let monitor = start(
        bin,
        dir,
        smtp.addr.port(),
        "kind = \"interface\"\ninterface = \"veth0\"",
    );
    let mut sent = smtp.messages().len() + 1;
    delivered(smtp, sent, Instant::now());
    let mut times = Vec::new();
    for round in 1..=ROUNDS {
        std::thread::sleep(Duration::from_millis(500));
        let (old, new) = (
            format!("81.2.69.{}", 9 + round),
            format!("81.2.69.{}", 10 + round),
        );
        let started = Instant::now();
        ip(&format!("addr del {old}/24 dev veth0"));
        ip(&format!("addr add {new}/24 dev veth0"));
        sent += 1;
        times.push(delivered(smtp, sent, started));
    }
    ip(&format!("addr del 81.2.69.{}/24 dev veth0", 10 + ROUNDS));
    monitor.stop();
    times
}

/// Rounds of the router announcing a new external address.
fn router_rounds(
    bin: &str,
    dir: &Path,
    smtp: &SmtpServer,
    rt: &tokio::runtime::Runtime,
    gateway: IpAddr,
) -> Vec<f64> {
    let router = rt.block_on(Router::start(gateway, "81.2.69.100".parse().unwrap()));
    let monitor = start(bin, dir, smtp.addr.port(), "kind = \"natpmp\"");
    let mut sent = smtp.messages().len() + 1;
    delivered(smtp, sent, Instant::now());
    let mut times = Vec::new();
    for round in 1..=ROUNDS {
        // More than `RouterWatch::MIN_GAP` apart: the reaction, not the limit, is timed.
        std::thread::sleep(Duration::from_millis(1200));
        let new = format!("81.2.69.{}", 100 + round);
        router.set_external(new.parse().unwrap());
        let started = Instant::now();
        rt.block_on(router.announce());
        sent += 1;
        times.push(delivered(smtp, sent, started));
    }
    monitor.stop();
    times
}

/// The CPU seconds per hour the binary uses idle with probes off: with the interface watch
/// on, and with it off (`[watch] interfaces = false`), side by side.
fn idle(bin: &str, dir: &Path, smtp: &SmtpServer, secs: u64) -> (f64, f64, f64) {
    ip("addr add 81.2.69.200/24 dev veth0");
    let on = "kind = \"interface\"\ninterface = \"veth0\"";
    let off = "kind = \"interface\"\ninterface = \"veth0\"\n[watch]\ninterfaces = false";
    let sent = smtp.messages().len();
    let baseline = start(bin, dir, smtp.addr.port(), on);
    delivered(smtp, sent + 1, Instant::now());
    let watching = start(bin, dir, smtp.addr.port(), on);
    let polling = start(bin, dir, smtp.addr.port(), off);
    delivered(smtp, sent + 3, Instant::now());
    let started_up = baseline.stop();
    std::thread::sleep(Duration::from_secs(secs));
    let per_hour = |total: f64| (total - started_up).max(0.0) * 3600.0 / secs as f64;
    (
        started_up,
        per_hour(watching.stop()),
        per_hour(polling.stop()),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !netns::isolated("react") {
        return;
    }
    let bin = std::env::var("IP_MONITOR_BIN")
        .expect("IP_MONITOR_BIN: the release binary (bash scripts/bench.sh sets it)");
    let secs: u64 = std::env::var("IP_MONITOR_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    // The LAN: this host 192.168.7.2 on veth0, the router 192.168.7.1 on veth1.
    let gateway = netns::lan();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    println!("time from the change to the first message accepted by the relay (target 2 s):");
    summary(
        "interface address replaced",
        interface_rounds(&bin, dir.path(), &smtp),
    );
    summary(
        "NAT-PMP router's announcement",
        router_rounds(&bin, dir.path(), &smtp, &rt, gateway),
    );
    let (started_up, on, off) = idle(&bin, dir.path(), &smtp, secs);
    println!(
        "idle for {secs} s, probes off (start-up and first notice {started_up:.3} CPU-s):\n\
         {:>34}  {on:.3} CPU-s per hour\n{:>34}  {off:.3} CPU-s per hour\n{:>34}  {:.3} CPU-s per hour \
         (target 0.05)",
        "interface watch on",
        "interface watch off",
        "the watch's share",
        on - off
    );
}
