//! Load bench of the outbox on SQLite and PostgreSQL: record a change with 10,000
//! recipients, drain it the way the monitor does (claim 8 at a time, mark each sent), and
//! read the counts.
//!
//! Run: `bash scripts/with-postgres.sh cargo bench -p ip-monitor-benches --bench store`
//! (without the script only SQLite is measured).

use std::time::{Duration, Instant, SystemTime};

use ip_monitor_core::*;
use ip_monitor_diesel::DieselStore;

const RECIPIENTS: usize = 10_000;
const CLAIM: usize = 8;
const ROUNDS: usize = 3;

fn recipients() -> Vec<Recipient> {
    (0..RECIPIENTS)
        .map(|i| {
            Recipient::new(
                format!("staff{i}@example.com"),
                Some(format!("Staff Member {i}")),
            )
            .unwrap()
        })
        .collect()
}

struct Round {
    record: Duration,
    claim: Duration,
    mark: Duration,
    claims: usize,
    counts: Duration,
}

async fn round(store: &DieselStore, lease: &Lease, staff: &[Recipient], n: usize) -> Round {
    let now = SystemTime::now();
    let address: std::net::IpAddr = format!("81.2.69.{}", 100 + n).parse().unwrap();
    let t = Instant::now();
    let change = store
        .record_change(
            lease,
            now,
            NewChange {
                family: Family::V4,
                address,
                previous: None,
                url: format!("http://{address}:8008/"),
                kind: ChangeKind::Change,
            },
            staff,
        )
        .await
        .unwrap();
    let record = t.elapsed();
    assert_eq!(change.deliveries as usize, staff.len());

    let (mut claim, mut mark, mut claims) = (Duration::ZERO, Duration::ZERO, 0);
    loop {
        let t = Instant::now();
        let batch = store
            .claim_deliveries(lease, SystemTime::now(), CLAIM)
            .await
            .unwrap();
        claim += t.elapsed();
        if batch.is_empty() {
            break;
        }
        claims += 1;
        let t = Instant::now();
        for d in batch {
            let result = DeliveryResult {
                id: d.id,
                fence: lease.fence,
                update: DeliveryUpdate::Sent,
            };
            store
                .finish_deliveries(lease, SystemTime::now(), &[result])
                .await
                .unwrap();
        }
        mark += t.elapsed();
    }
    let t = Instant::now();
    let counts_read = store.delivery_counts().await.unwrap();
    let counts = t.elapsed();
    assert_eq!(counts_read.pending + counts_read.in_flight, 0);
    Round {
        record,
        claim,
        mark,
        claims,
        counts,
    }
}

async fn bench(url: &str) {
    let store = DieselStore::connect(url).await.unwrap();
    let holder = Holder::this_process();
    let lease = store
        .acquire_lease(&holder, Duration::from_secs(3600))
        .await
        .unwrap()
        .unwrap();
    let staff = recipients();
    let mut rounds = Vec::new();
    for n in 0..ROUNDS {
        rounds.push(round(&store, &lease, &staff, n).await);
    }
    rounds.sort_by_key(|r| r.record + r.claim + r.mark);
    let r = &rounds[ROUNDS / 2];
    let per = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n as f64;
    println!("{} ({} rounds, median shown)", store.backend(), ROUNDS);
    println!(
        "  record_change, {RECIPIENTS} recipients: {:>9.1} ms",
        r.record.as_secs_f64() * 1e3
    );
    println!(
        "  claim {CLAIM} due deliveries:          {:>9.1} µs per claim ({} claims)",
        per(r.claim, r.claims),
        r.claims
    );
    println!(
        "  mark one delivery sent:          {:>9.1} µs",
        per(r.mark, RECIPIENTS)
    );
    println!(
        "  drain {RECIPIENTS} (claim + mark):       {:>9.0} deliveries/s",
        RECIPIENTS as f64 / (r.claim + r.mark).as_secs_f64()
    );
    println!(
        "  delivery counts (all rows):      {:>9.1} ms",
        r.counts.as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ip-monitor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    bench(&format!("sqlite://{}", dir.join("bench.db").display())).await;
    std::fs::remove_dir_all(&dir).ok();
    match std::env::var("IP_MONITOR_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => bench(&url).await,
        _ => println!("postgres: skipped (run under scripts/with-postgres.sh)"),
    }
}
