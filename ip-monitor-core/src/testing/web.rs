//! The web rule: a flood of readers of a [`Dashboard`] costs the store one snapshot a
//! second, read by one reader at a time, and the leader keeps its lease through it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::hooked::{Hook, Hooked};
use super::{holder, ip, people};
use crate::monitor::{Monitor, MonitorConfig};
use crate::notify::RecordingNotifier;
use crate::recipients::StaticRecipients;
use crate::source::StaticIpSource;
use crate::source::set::SourceSet;
use crate::store::StateStore;
use crate::web::{Dashboard, Request};

/// Counts the calls only the dashboard makes (`instances`, `history`), and how many were in
/// flight at once; each is slowed a little, so that two reads side by side would overlap.
#[derive(Debug, Default)]
struct WebReads {
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

#[async_trait::async_trait]
impl Hook for Arc<WebReads> {
    async fn before(&self, call: &'static str) {
        if matches!(call, "instances" | "history") {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn after(&self, call: &'static str, _: bool) {
        if matches!(call, "instances" | "history") {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A leader on `store` serves 64 readers asking for `/`, `/status`, `/healthz` and
/// `/metrics` as fast as they are answered for 1.5 s: every answer is a success, the store
/// is read at most three times, never twice at once, and the leader keeps its lease (its
/// fence unchanged, no lapse); a second later, and after an action, the next reader sees
/// a new read. `store` must hold no valid lease and no current address.
pub async fn web_conformance(store: Arc<dyn StateStore>) {
    let reads = Arc::new(WebReads::default());
    let watched: Arc<dyn StateStore> = Arc::new(Hooked {
        inner: Arc::clone(&store),
        hook: Arc::clone(&reads),
    });
    let source = StaticIpSource::new("fixed").with_answer(ip("81.2.69.170"));
    let handle = Monitor::builder(
        SourceSet::new(vec![Arc::new(source)]),
        watched,
        StaticRecipients::new(people(1).iter().map(|r| r.email().to_owned())),
        RecordingNotifier::new(),
    )
    .holder(holder("web"))
    .config(MonitorConfig {
        heartbeat: Duration::from_millis(100),
        lease_ttl: Some(Duration::from_millis(400)),
        control_poll: Duration::from_millis(100),
        ..MonitorConfig::default()
    })
    .build()
    .expect("a valid monitor")
    .spawn();
    let mut events = handle.subscribe();
    handle.check_now().await.expect("the only instance leads");
    let fence = store.lease().await.unwrap().expect("a lease").fence;
    let dashboard = Dashboard::new(handle.clone()).token("web-rule");

    let before = reads.calls.load(Ordering::SeqCst);
    let answers = flood(&dashboard, Duration::from_millis(1500)).await;
    // `/` and `/status` read both calls: each snapshot is two counted calls.
    let snapshots = (reads.calls.load(Ordering::SeqCst) - before) / 2;
    assert!(answers >= 64, "the flood got {answers} answers");
    assert!(
        snapshots <= 3,
        "{answers} answers in 1.5 s read the store {snapshots} times: each reader read it"
    );
    assert_eq!(
        reads.most_in_flight.load(Ordering::SeqCst),
        1,
        "two readers read the store at once"
    );
    let lease = store
        .lease()
        .await
        .unwrap()
        .expect("the leader still holds a lease");
    assert_eq!(lease.fence, fence, "the lease was lost and taken again");
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(e, crate::Event::LeaseLost),
            "the leader lost its lease during the flood"
        );
    }

    // A second on, the next reader reads anew; so does the first after an action.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let at = reads.calls.load(Ordering::SeqCst);
    dashboard.respond(Request::get("/status")).await;
    assert_eq!(
        reads.calls.load(Ordering::SeqCst),
        at + 2,
        "a stale snapshot"
    );
    let checked = dashboard.respond(Request::post("/check", b"").authorization("Bearer web-rule"));
    assert_eq!(checked.await.status, 200);
    dashboard.respond(Request::get("/")).await;
    assert_eq!(
        reads.calls.load(Ordering::SeqCst),
        at + 4,
        "the page after a check showed the snapshot from before it"
    );
    handle.shutdown().await.expect("a clean stop");
}

/// 64 readers of `/`, `/status`, `/healthz` and `/metrics`, each asking again as soon as it
/// is answered, for `length`; every answer must be a success. How many there were.
async fn flood(dashboard: &Dashboard, length: Duration) -> usize {
    let until = Instant::now() + length;
    let readers: Vec<_> = (0..64)
        .map(|i| {
            let dashboard = dashboard.clone();
            tokio::spawn(async move {
                let path = ["/", "/status", "/healthz", "/metrics"][i % 4];
                let mut answers = 0;
                while Instant::now() < until {
                    let answer = dashboard.respond(Request::get(path)).await;
                    assert_eq!(answer.status, 200, "{path} during the flood");
                    answers += 1;
                    // A client's next request comes over the network: others run between.
                    tokio::task::yield_now().await;
                }
                answers
            })
        })
        .collect();
    let mut answers = 0;
    for reader in readers {
        answers += reader.await.expect("a reader");
    }
    answers
}
