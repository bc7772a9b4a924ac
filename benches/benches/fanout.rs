//! Fan-out load bench: a change notified to 100 / 1,000 / 10,000 recipients through the whole
//! monitor (MemoryStore outbox, parallelism 8, SmtpNotifier with a pool of 8) into Postfix's
//! `smtp-sink` on 127.0.0.1, beside Postfix's `smtp-source` sending as many messages of the
//! same size over 8 parallel sessions into the same sink.
//!
//! Run: `cargo bench -p ip-monitor-benches --bench fanout` (needs Debian's postfix for
//! smtp-sink and smtp-source; `bash scripts/bench.sh` installs it).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ip_monitor_core::*;
use ip_monitor_lettre::{MessageTemplate, SmtpNotifier, Tls};

const PARALLELISM: usize = 8;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_sink(port: u16) -> Child {
    let mut cmd = Command::new("smtp-sink");
    if is_root() {
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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
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

async fn monitor_fanout(port: u16, n: usize) -> Duration {
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
    let store = MemoryStore::new();
    let started = Instant::now();
    let handle = Monitor::builder(
        SourceSet::new(vec![Arc::new(source)]),
        store.clone(),
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
        .args(["-f", "noreply@example.com", "-t", "staff@example.com"])
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
    let port = free_port();
    let mut sink = start_sink(port);
    let size = message_size();
    println!(
        "message size {size} bytes, {PARALLELISM} parallel sessions, smtp-sink on 127.0.0.1:{port}"
    );
    println!(
        "{:>10} {:>16} {:>16} {:>8}",
        "recipients", "ip-monitor msg/s", "smtp-source msg/s", "ratio"
    );
    for n in [100, 1_000, 10_000] {
        let ours = monitor_fanout(port, n).await;
        let theirs = smtp_source(port, n, size);
        let (a, b) = (
            n as f64 / ours.as_secs_f64(),
            n as f64 / theirs.as_secs_f64(),
        );
        println!("{n:>10} {a:>16.0} {b:>16.0} {:>8.2}", a / b);
    }
    let _ = sink.kill();
    let _ = sink.wait();
}
