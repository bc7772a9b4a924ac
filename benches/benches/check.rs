//! A full check against three HTTP sources on loopback, one of them black-holed:
//! quorum (the default) against fallback, with the black hole first and last.
//!
//! Run: `cargo bench -p ip-monitor-benches --bench check`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ip_monitor_core::{Family, HttpIpSource, IpSource, SourceSet, Strategy};
use ip_monitor_testkit::{Behavior, HttpServer};

/// The per-source timeout: what fallback pays for a black hole in front.
const TIMEOUT: Duration = Duration::from_millis(250);

fn source(server: &HttpServer, name: &str) -> Arc<dyn IpSource> {
    Arc::new(
        HttpIpSource::builder(server.url())
            .name(name)
            .build()
            .expect("loopback URL"),
    )
}

fn bench_check(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (hole, a, b) = rt.block_on(async {
        (
            HttpServer::start("127.0.0.1:0", Behavior::BlackHole).await,
            HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await,
            HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await,
        )
    });
    let hole_first = vec![source(&hole, "hole"), source(&a, "a"), source(&b, "b")];
    let hole_last = vec![source(&a, "a"), source(&b, "b"), source(&hole, "hole")];

    let mut group = c.benchmark_group("check_3_sources_1_black_holed");
    group.sample_size(20);
    for (name, strategy, order) in [
        ("quorum", Strategy::Quorum, &hole_first),
        ("fallback_hole_first", Strategy::Fallback, &hole_first),
        ("fallback_hole_last", Strategy::Fallback, &hole_last),
    ] {
        let set = SourceSet::new(order.clone())
            .strategy(strategy)
            .timeout(TIMEOUT);
        group.bench_function(name, |bench| {
            bench.to_async(&rt).iter(|| async {
                let outcome = set.check(Family::V4).await;
                assert!(outcome.result.is_ok(), "{:?}", outcome.result);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_check);
criterion_main!(benches);
