//! A relay that throttles, through the binary: a private Postfix on 127.0.0.1 with anvil's
//! per-client limits (two sessions, 60 messages per 10 s, loopback not exempt) relaying to
//! smtp-sink; 300 staff; a real change through `ip-monitor run` with the default delivery
//! settings; SQLite and durable PostgreSQL. The ideal is 300 / 6 per s = 50 s; the target
//! is every one delivered once within 1.25 × 50 s + 10 s, none failed, and refused attempts
//! under a quarter of the messages.

use std::path::Path;

use ip_monitor_benches::Kill;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ip_monitor_testkit::postfix::{Limits, ThrottlingRelay};
use ip_monitor_testkit::{Behavior, HttpServer};

const STAFF: usize = 300;

fn sink(port: u16) -> Kill {
    let child = Command::new("smtp-sink")
        .args(["-u", "nobody"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("256")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-sink (Debian package postfix) is needed");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Kill(child)
}

fn count(url: &str, sql: &str) -> i64 {
    ip_monitor_testkit::sql::count(url, sql)
}

/// One run: seconds from the source's new answer to the last message accepted, and what
/// the relay refused.
async fn run(bin: &str, dir: &Path, url: &str, sink_port: u16) -> (f64, f64, usize) {
    let relay = ThrottlingRelay::start(Limits::default(), sink_port).expect("a throttling relay");
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let config = dir.join(format!("{:016x}.toml", fastrand::u64(..)));
    std::fs::write(
        &config,
        format!(
            "probe_interval = \"1s\"\nnotify_on_first = false\n\
             [[sources.list]]\nkind = \"http\"\nurl = \"{}\"\n\
             [store]\nurl = \"{url}\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"IP Monitor <noreply@example.com>\"\n",
            source.url(),
            relay.port
        ),
    )
    .unwrap();
    let _run = Kill(
        Command::new(bin)
            .current_dir(dir)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the ip-monitor binary"),
    );
    let changes = "SELECT COUNT(*) AS n FROM ip_monitor_changes";
    while ip_monitor_testkit::sql::try_count(url, changes).unwrap_or(0) < 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    source.set(Behavior::ok("81.2.69.161\n"));
    let flipped = Instant::now();
    let done = "SELECT COUNT(*) AS n FROM ip_monitor_deliveries WHERE state IN ('sent', 'failed')";
    while count(url, done) < STAFF as i64 {
        assert!(
            flipped.elapsed() < Duration::from_secs(600),
            "not done in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = flipped.elapsed().as_secs_f64();
    let sent = count(
        url,
        "SELECT COUNT(*) AS n FROM ip_monitor_deliveries WHERE state = 'sent'",
    );
    assert_eq!(sent, STAFF as i64, "none failed");
    let recounted = count(
        url,
        "SELECT COUNT(*) AS n FROM ip_monitor_deliveries WHERE attempts <> 1",
    );
    assert_eq!(recounted, 0, "no attempt counted for a throttling answer");
    let recorded_to_last = count(
        url,
        "SELECT MAX(sent_at_ms) - MIN(created_at_ms) AS n FROM ip_monitor_deliveries",
    ) as f64
        / 1000.0;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(relay.accepted(), STAFF, "each message accepted once");
    (wall, recorded_to_last, relay.refusals().total())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Some(why) = ip_monitor_testkit::postfix::unavailable() {
        println!("throttle: skipped: {why}");
        return;
    }
    let bin = std::env::var("IP_MONITOR_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/ip-monitor").to_owned()
    });
    assert!(Path::new(&bin).is_file(), "no release binary at {bin}");
    let sink_port = ip_monitor_testkit::free_port();
    let _sink = sink(sink_port);
    let dir = tempfile::tempdir().unwrap();
    let mut stores = vec![("sqlite file (WAL)", "sqlite", String::new())];
    if let Ok(url) = std::env::var("IP_MONITOR_BENCH_PG_DURABLE_URL") {
        stores.push(("postgres durable", "postgres", url));
    }
    let bound = 1.25 * (STAFF as f64 / 6.0) + 10.0;
    println!(
        "throttling relay (Postfix anvil: 2 sessions, 60 messages / 10 s), {STAFF} staff, \
         `ip-monitor run`, a change; target {bound:.1} s, refused < {}:",
        STAFF / 4
    );
    println!(
        "{:>20} {:>4} {:>22} {:>22} {:>8}",
        "store", "run", "change seen → last s", "recorded → last s", "refused"
    );
    for (label, kind, base) in &stores {
        for i in 1..=3 {
            let url = ip_monitor_benches::fresh(kind, base, dir.path());
            ip_monitor_benches::staff_table(&url, STAFF);
            let (wall, recorded, refused) = run(&bin, dir.path(), &url, sink_port).await;
            println!("{label:>20} {i:>4} {wall:>22.1} {recorded:>22.1} {refused:>8}");
            assert!(wall <= bound, "{wall:.1} s is over the target {bound:.1} s");
            assert!(refused * 4 < STAFF, "{refused} refused");
        }
    }
}
