//! The monitor rule: a monitor on the store keeps its promise through lease faults.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use super::hooked::{Hook, Hooked};
use super::{holder, ip, people};
use crate::monitor::{DeliveryPolicy, Monitor, MonitorConfig};
use crate::notify::RecordingNotifier;
use crate::recipients::{Recipient, StaticRecipients};
use crate::source::StaticIpSource;
use crate::source::set::SourceSet;
use crate::store::{Delivery, DeliveryState, StateStore};

/// The next lease renewal after a claim stalls: what a process frozen while its sends were
/// out (SIGSTOP, a paused VM) looks like to the store.
#[derive(Debug)]
struct StallAfterClaim {
    stall: Duration,
    /// 0: waiting for a claim; 1: the next renewal stalls; 2: done.
    phase: AtomicU8,
}

#[async_trait::async_trait]
impl Hook for StallAfterClaim {
    async fn before(&self, call: &'static str) {
        if call == "acquire_lease"
            && self
                .phase
                .compare_exchange(1, 2, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            tokio::time::sleep(self.stall).await;
        }
    }

    fn after(&self, call: &'static str, something: bool) {
        if call == "claim_deliveries" && something {
            let _ = self
                .phase
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
}

/// A clock `offset` ahead of (or, negative, behind) the system's.
#[derive(Debug)]
struct SkewedClock {
    ahead: bool,
    offset: Duration,
}

impl crate::Clock for SkewedClock {
    fn now(&self) -> SystemTime {
        if self.ahead {
            SystemTime::now() + self.offset
        } else {
            SystemTime::now() - self.offset
        }
    }
}

fn lapse_config() -> MonitorConfig {
    MonitorConfig {
        heartbeat: Duration::from_millis(100),
        lease_ttl: Some(Duration::from_millis(300)),
        probe_interval: Duration::ZERO,
        control_poll: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(5),
        delivery: DeliveryPolicy {
            parallelism: 8,
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_millis(400),
            ..DeliveryPolicy::default()
        },
        ..MonitorConfig::default()
    }
}

fn lapse_monitor(
    store: Arc<dyn StateStore>,
    address: &str,
    staff: &[Recipient],
    notifier: &RecordingNotifier,
    id: &str,
) -> crate::MonitorBuilder {
    let source = StaticIpSource::new("fixed").with_answer(ip(address));
    Monitor::builder(
        SourceSet::new(vec![Arc::new(source)]),
        store,
        StaticRecipients::new(staff.iter().map(|r| r.email().to_owned())),
        notifier.clone(),
    )
    .holder(holder(id))
    .config(lapse_config())
}

/// Wait (real time, at most 30 s) until the latest change's deliveries are all settled.
async fn settled(store: &dyn StateStore) -> Vec<Delivery> {
    for _ in 0..600 {
        let latest = store.history(1).await.unwrap();
        if let Some(c) = latest.first() {
            let ds = store.deliveries(c.id).await.unwrap();
            if !ds.is_empty()
                && ds
                    .iter()
                    .all(|d| !matches!(d.state, DeliveryState::Pending | DeliveryState::InFlight))
            {
                return ds;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "deliveries never settled: {:?}",
        store.delivery_counts().await.unwrap()
    );
}

fn assert_once_each(sent: &[String], staff: &[Recipient], what: &str) {
    for r in staff {
        let n = sent.iter().filter(|e| *e == r.email()).count();
        assert_eq!(n, 1, "{what}: {} got {n} messages", r.email());
    }
}

/// The monitor keeps its promise through lease faults on this store, in real time (a few
/// seconds): a lone leader stalled past its ttl while sends are out ends with everyone told
/// once and nothing stuck; a leader frozen between connecting and handing a message over
/// sends nothing when it wakes after a takeover; an instance whose clock is minutes ahead
/// or behind never takes a valid lease. `store` must hold no valid lease and no current
/// address.
pub async fn monitor_conformance(store: Arc<dyn StateStore>) {
    let staff = people(20);
    lone_leader_lapse(&store, &staff).await;
    frozen_leader_takeover(&store, &staff).await;
    skewed_clocks(&store, &staff).await;
}

/// A lone leader stalls past its ttl with 8 sends out; the sends complete meanwhile: all
/// sent once, nothing stuck.
async fn lone_leader_lapse(store: &Arc<dyn StateStore>, staff: &[Recipient]) {
    // 1. A lone leader stalls past its ttl with 8 sends out; the sends complete meanwhile.
    let notifier = RecordingNotifier::new();
    notifier.set_delay(Some(Duration::from_millis(150)));
    let stalling: Arc<dyn StateStore> = Arc::new(Hooked {
        inner: Arc::clone(store),
        hook: StallAfterClaim {
            stall: Duration::from_millis(700),
            phase: AtomicU8::new(0),
        },
    });
    let handle = lapse_monitor(stalling, "81.2.69.190", staff, &notifier, "lone")
        .build()
        .unwrap()
        .spawn();
    let mut events = handle.subscribe();
    let ds = settled(store).await;
    handle.shutdown().await.unwrap();
    let mut acquired = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, crate::Event::LeaseAcquired { .. }) {
            acquired += 1;
        }
    }
    assert!(
        acquired >= 1,
        "the stalled leader acquired its lease again after the lapse"
    );
    assert!(
        ds.iter().all(|d| d.state == DeliveryState::Sent),
        "a lone leader's lapse leaves nothing pending, in flight or failed: {ds:?}"
    );
    assert_once_each(&notifier.sent_to(), staff, "lone leader's lapse");
}

/// A leader frozen between connect and hand-over, past its ttl; another takes over: the
/// woken one hands nothing over.
async fn frozen_leader_takeover(store: &Arc<dyn StateStore>, staff: &[Recipient]) {
    // 2. A leader frozen between connect and hand-over, past its ttl; another takes over.
    let frozen = RecordingNotifier::new();
    frozen.set_delay(Some(Duration::from_millis(1500)));
    let stalling: Arc<dyn StateStore> = Arc::new(Hooked {
        inner: Arc::clone(store),
        hook: StallAfterClaim {
            stall: Duration::from_millis(2500),
            phase: AtomicU8::new(0),
        },
    });
    let a = lapse_monitor(stalling, "81.2.69.191", staff, &frozen, "frozen")
        .build()
        .unwrap()
        .spawn();
    // Let the frozen one claim first.
    for _ in 0..200 {
        if store.delivery_counts().await.unwrap().in_flight > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let taker = RecordingNotifier::new();
    let b = lapse_monitor(Arc::clone(store), "81.2.69.191", staff, &taker, "taker")
        .build()
        .unwrap()
        .spawn();
    let ds = settled(store).await;
    // Give the frozen one time to wake and finish what it had out.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert!(
        frozen.sent_to().is_empty(),
        "the woken process handed nothing over: {:?}",
        frozen.sent_to()
    );
    assert!(ds.iter().all(|d| d.state == DeliveryState::Sent), "{ds:?}");
    assert_once_each(&taker.sent_to(), staff, "takeover of a frozen leader");
}

/// Clocks minutes apart: the lease is judged on the store's clock only.
async fn skewed_clocks(store: &Arc<dyn StateStore>, staff: &[Recipient]) {
    // 3. Clocks minutes apart: the lease is judged on the store's clock only.
    for ahead in [true, false] {
        let first = RecordingNotifier::new();
        let a = lapse_monitor(Arc::clone(store), "81.2.69.191", staff, &first, "on-time")
            .build()
            .unwrap()
            .spawn();
        let mut a_events = a.subscribe();
        a.check_now().await.expect("the first instance leads");
        let skewed = lapse_monitor(Arc::clone(store), "81.2.69.191", staff, &first, "skewed")
            .clock(SkewedClock {
                ahead,
                offset: Duration::from_secs(600),
            })
            .build()
            .unwrap()
            .spawn();
        let mut b_events = skewed.subscribe();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        skewed.shutdown().await.unwrap();
        a.shutdown().await.unwrap();
        while let Ok(e) = b_events.try_recv() {
            assert!(
                !matches!(e, crate::Event::LeaseAcquired { .. }),
                "an instance with a clock 10 min {} took a valid lease",
                if ahead { "ahead" } else { "behind" }
            );
        }
        while let Ok(e) = a_events.try_recv() {
            assert!(
                !matches!(e, crate::Event::LeaseLost),
                "the leader lost its lease to a skewed clock"
            );
        }
    }
}
