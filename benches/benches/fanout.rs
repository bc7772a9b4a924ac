//! Fan-out load bench into Postfix's `smtp-sink` on 127.0.0.1, beside Postfix's `smtp-source`
//! sending as many messages of the same size over 8 reused sessions (`-s 8 -d`) into the same
//! sink, in the same run:
//!
//! 1. **What users run**: the release `ip-monitor test --force` binary — process start,
//!    migrations, the recipients query, the change's rows and the sends, as a user waits for
//!    it — on a SQLite file and on PostgreSQL with durable defaults (fsync and
//!    synchronous_commit on), at 2,000 and 10,000 recipients, median of 3.
//!    The same on SQLite with every message DKIM-signed (an RSA-2048 key and an Ed25519
//!    key, made with `openssl genpkey`).
//! 2. **The library**: a monitor in this process over MemoryStore, SQLite, PostgreSQL
//!    fsync-off and durable, at 100 / 1,000 / 10,000 recipients.
//!
//! Parallelism 8, an SMTP pool of 8. Run: `bash scripts/bench.sh --bench fanout` (installs
//! postfix, starts a throwaway fsync-off PostgreSQL and a durable one, builds the release
//! binary). PostgreSQL rows are skipped when `IP_MONITOR_TEST_PG_URL` /
//! `IP_MONITOR_BENCH_PG_DURABLE_URL` are not set; `IP_MONITOR_BIN` names the binary.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ip_monitor_core::*;
use ip_monitor_lettre::{MessageTemplate, SmtpNotifier, Tls};

const PARALLELISM: usize = 8;

fn start_sink(port: u16) -> Child {
    let mut cmd = Command::new("smtp-sink");
    if ip_monitor_testkit::is_root() {
        cmd.args(["-u", "nobody"]);
    }
    let mut child = cmd
        .arg(format!("127.0.0.1:{port}"))
        .arg("1024")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-sink (Debian package postfix) is needed");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("smtp-sink did not start");
}

fn template() -> MessageTemplate {
    MessageTemplate::new("IP Monitor <noreply@example.com>").unwrap()
}

/// The size of one of our messages, for smtp-source.
fn message_size() -> usize {
    let notice = Notice::new(
        1,
        "81.2.69.160".parse().unwrap(),
        "http://81.2.69.160:8008/".into(),
        SystemTime::now(),
        false,
    )
    .unwrap();
    let r = Recipient::new("staff0@example.com", Some("Staff Member 0")).unwrap();
    template().build(&notice, &r).unwrap().formatted().len()
}

/// A store for one run, with its name.
enum Store {
    Memory,
    Diesel(&'static str, String),
}

impl Store {
    fn name(&self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Diesel(name, _) => name,
        }
    }
}

/// `ip-monitor test --force` to `n` staff, as a user runs it: wall time of the process.
/// `smtp_extra` is added to its `[smtp]` table (the DKIM keys).
fn binary_fanout(
    bin: &str,
    dir: &std::path::Path,
    store_url: &str,
    port: u16,
    smtp_extra: &str,
) -> Duration {
    let config = dir.join(format!("{:016x}.toml", fastrand::u64(..)));
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{store_url}\"\n[delivery]\nparallelism = {PARALLELISM}\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
             pool_size = {PARALLELISM}\nfrom = \"IP Monitor <noreply@example.com>\"\n{smtp_extra}"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(bin)
        .current_dir(dir)
        .arg("--config")
        .arg(&config)
        .args(["test", "--force", "--ip", "81.2.69.160"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("the ip-monitor binary");
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "ip-monitor test --force failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

/// The system this replaces: a Python `smtplib` loop, a new connection per message.
fn seed_baseline(port: u16, n: usize, size: usize) -> f64 {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/seed_baseline.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("127.0.0.1:{port}"))
        .arg(n.to_string())
        .arg(size.to_string())
        .output()
        .expect("python3 for the seed-style baseline");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn monitor_fanout(
    store_kind: &Store,
    dir: &std::path::Path,
    port: u16,
    n: usize,
) -> Duration {
    let notifier = SmtpNotifier::builder("127.0.0.1")
        .port(port)
        .tls(Tls::None)
        .pool_size(PARALLELISM as u32)
        .template(template())
        .build()
        .unwrap();
    let staff = StaticRecipients::with_names((0..n).map(|i| {
        (
            format!("staff{i}@example.com"),
            Some(format!("Staff Member {i}")),
        )
    }));
    let source = StaticIpSource::new("fixed").with_answer("81.2.69.160".parse().unwrap());
    let store: Arc<dyn StateStore> = match store_kind {
        Store::Memory => Arc::new(MemoryStore::new()),
        Store::Diesel(kind, base) => Arc::new(
            ip_monitor_diesel::DieselStore::connect(&ip_monitor_benches::fresh(kind, base, dir))
                .await
                .unwrap(),
        ),
    };
    let started = Instant::now();
    let handle = Monitor::builder(
        SourceSet::new(vec![Arc::new(source)]),
        Arc::clone(&store),
        staff,
        notifier,
    )
    .config(MonitorConfig {
        delivery: DeliveryPolicy {
            parallelism: PARALLELISM,
            ..Default::default()
        },
        ..Default::default()
    })
    .build()
    .unwrap()
    .spawn();
    let mut events = handle.subscribe();
    let mut sent = 0;
    while sent < n {
        match events.recv().await {
            Ok(Event::DeliverySent { .. }) => sent += 1,
            Ok(Event::DeliveryFailed { error, .. } | Event::DeliveryRetry { error, .. }) => {
                panic!("{error}")
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => sent += k as usize, // counted below
            Err(e) => panic!("{e}"),
        }
    }
    // Lagged receivers may have over-counted: trust the store.
    loop {
        if store.delivery_counts().await.unwrap().sent as usize == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    handle.shutdown().await.unwrap();
    elapsed
}

/// The binary rows again on SQLite, every message signed with an RSA-2048 and then an
/// Ed25519 DKIM key.
fn dkim_rows(bin: &str, dir: &std::path::Path, port: u16, size: usize) {
    println!("\nthe binary on SQLite, every message DKIM-signed, median of 3:");
    for (label, args) in [
        (
            "dkim rsa-2048",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
        ),
        ("dkim ed25519", &["-algorithm", "ed25519"][..]),
    ] {
        let key = dir.join(format!("{}.pem", label.replace(' ', "-")));
        let made = Command::new("openssl")
            .arg("genpkey")
            .args(args)
            .arg("-out")
            .arg(&key)
            .stderr(Stdio::null())
            .status()
            .expect("openssl makes the DKIM keys");
        assert!(made.success());
        let extra = format!(
            "dkim_key_file = \"{}\"\ndkim_selector = \"bench\"\n",
            key.display()
        );
        for n in [2_000, 10_000] {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                let url = ip_monitor_benches::fresh("sqlite", "", dir);
                ip_monitor_benches::staff_table(&url, n);
                let took = binary_fanout(bin, dir, &url, port, &extra);
                ours.push(n as f64 / took.as_secs_f64());
                theirs.push(n as f64 / smtp_source(port, n, size).as_secs_f64());
            }
            let (a, b) = (median(ours), median(theirs));
            println!("{label:>22} {n:>10} {a:>16.0} {b:>17.0} {:>6.2}", a / b);
        }
    }
}

fn smtp_source(port: u16, n: usize, size: usize) -> Duration {
    let started = Instant::now();
    let status = Command::new("smtp-source")
        .args([
            "-s",
            &PARALLELISM.to_string(),
            "-m",
            &n.to_string(),
            "-l",
            &size.to_string(),
        ])
        .args(["-d", "-f", "noreply@example.com", "-t", "staff@example.com"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .status()
        .expect("smtp-source (Debian package postfix) is needed");
    assert!(status.success());
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let port = ip_monitor_testkit::free_port();
    let mut sink = start_sink(port);
    let size = message_size();
    let dir = tempfile::tempdir().unwrap();
    let fast_pg = std::env::var("IP_MONITOR_TEST_PG_URL").ok();
    let durable_pg = std::env::var("IP_MONITOR_BENCH_PG_DURABLE_URL").ok();
    println!(
        "message size {size} bytes, {PARALLELISM} parallel sessions, smtp-sink on 127.0.0.1:{port}"
    );

    let bin = std::env::var("IP_MONITOR_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/ip-monitor").to_owned()
    });
    if std::path::Path::new(&bin).is_file() {
        println!("\nthe binary, `ip-monitor test --force` (start-up included), median of 3:");
        println!(
            "{:>22} {:>10} {:>16} {:>17} {:>6} {:>15}",
            "store", "recipients", "ip-monitor msg/s", "smtp-source msg/s", "ratio", "smtplib loop"
        );
        let mut stores = vec![("sqlite file (WAL)", "sqlite", String::new())];
        if let Some(url) = &durable_pg {
            stores.push(("postgres durable", "postgres", url.clone()));
        }
        for (label, kind, base) in &stores {
            for n in [2_000, 10_000] {
                let (mut ours, mut theirs, mut seed) = (Vec::new(), Vec::new(), Vec::new());
                for _ in 0..3 {
                    let url = ip_monitor_benches::fresh(kind, base, dir.path());
                    ip_monitor_benches::staff_table(&url, n);
                    let took = binary_fanout(&bin, dir.path(), &url, port, "");
                    ours.push(n as f64 / took.as_secs_f64());
                    theirs.push(n as f64 / smtp_source(port, n, size).as_secs_f64());
                    seed.push(seed_baseline(port, n.min(2_000), size));
                }
                let (a, b, c) = (median(ours), median(theirs), median(seed));
                println!(
                    "{label:>22} {n:>10} {a:>16.0} {b:>17.0} {:>6.2} {c:>15.0}",
                    a / b
                );
            }
        }
        dkim_rows(&bin, dir.path(), port, size);
    } else {
        println!(
            "\n(no release binary at {bin}: `cargo build --release -p ip-monitor-standalone`)"
        );
    }

    println!("\nthe library, a monitor in this process:");
    println!(
        "{:>22} {:>10} {:>16} {:>17} {:>6}",
        "store", "recipients", "ip-monitor msg/s", "smtp-source msg/s", "ratio"
    );
    let mut stores = vec![Store::Memory, Store::Diesel("sqlite", String::new())];
    if let Some(url) = fast_pg {
        stores.push(Store::Diesel("postgres fsync-off", url));
    }
    if let Some(url) = durable_pg {
        stores.push(Store::Diesel("postgres durable", url));
    }
    for store in &stores {
        for n in [100, 1_000, 10_000] {
            let ours = monitor_fanout(store, dir.path(), port, n).await;
            let theirs = smtp_source(port, n, size);
            let (a, b) = (
                n as f64 / ours.as_secs_f64(),
                n as f64 / theirs.as_secs_f64(),
            );
            let kind = match store {
                Store::Diesel(kind, _) if *kind == "sqlite" => "sqlite file (WAL)",
                other => other.name(),
            };
            println!("{kind:>22} {n:>10} {a:>16.0} {b:>17.0} {:>6.2}", a / b);
        }
    }
    let _ = sink.kill();
    let _ = sink.wait();
}
