//! Conformance suites any [`StateStore`], [`Recipients`], [`IpSource`](crate::IpSource) or
//! [`Notifier`](crate::Notifier) implementation can run.
//!
//! Each suite panics with a message naming the broken rule. Run it on a fresh, empty store:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! ip_monitor_core::testing::store_conformance(&ip_monitor_core::MemoryStore::new()).await;
//! # }
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use crate::address::Family;
use crate::check::SourceSet;
use crate::monitor::{DeliveryPolicy, Monitor, MonitorConfig};
use crate::notify::RecordingNotifier;
use crate::recipients::{Recipient, Recipients, StaticRecipients};
use crate::source::StaticIpSource;
use crate::store::{
    Change, ChangeKind, ChangeOutcome, CurrentAddress, Delivery, DeliveryCounts, DeliveryResult,
    DeliveryState, DeliveryUpdate, DesiredState, Holder, InstanceStatus, Lease, NewChange,
    Recorded, RunState, SourceStatus, StateStore, StoreError,
};

fn t(secs: u64) -> SystemTime {
    // A fixed, recent base keeps the suite independent of the machine's clock.
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn holder(id: &str) -> Holder {
    Holder {
        id: id.to_owned(),
        host: "conformance".to_owned(),
        pid: 4242,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn people(n: usize) -> Vec<Recipient> {
    (0..n)
        .map(|i| {
            Recipient::new(
                format!("person{i}@example.com"),
                Some(format!("Person {i}")),
            )
            .expect("valid")
        })
        .collect()
}

fn change(family: Family, address: &str, previous: Option<&str>, kind: ChangeKind) -> NewChange {
    NewChange {
        family,
        address: ip(address),
        previous: previous.map(ip),
        url: format!("http://{address}:8008/"),
        kind,
    }
}

/// Let `lease` lapse: renew it with a short ttl and wait, on the real clock, until the
/// store's clock has passed it. Returns the (now stale) lease.
async fn lapse(store: &dyn StateStore, holder: &Holder, lease: Lease) -> Lease {
    let short = Duration::from_millis(150);
    let renewed = store
        .acquire_lease(holder, short)
        .await
        .unwrap()
        .expect("the holder renews");
    assert_eq!(renewed.fence, lease.fence, "renewal keeps the fence");
    for _ in 0..100 {
        tokio::time::sleep(short).await;
        if store.lease().await.unwrap().is_none() {
            return renewed;
        }
    }
    panic!("a lease renewed for {short:?} was still valid 15 s later");
}

fn result(d: &Delivery, update: DeliveryUpdate) -> DeliveryResult {
    DeliveryResult {
        id: d.id,
        fence: d.fence.expect("claimed deliveries carry their fence"),
        update,
    }
}

/// Record one result and insist that it was applied.
async fn finish(
    store: &dyn StateStore,
    lease: &Lease,
    now: SystemTime,
    d: &Delivery,
    update: DeliveryUpdate,
) {
    assert_eq!(
        store
            .finish_deliveries(lease, now, &[result(d, update)])
            .await
            .unwrap(),
        [Recorded::Applied],
        "a result for a delivery in flight under its fence is recorded"
    );
}

/// A holder's lease lapses while it has sends out, and it acquires the lease again: results
/// of the old fence are recorded while their rows are still in flight under it, never fail
/// the newer fence's results, and nothing is left in flight.
async fn lapse_conformance(store: &dyn StateStore, a: &Holder, lease: Lease, now: SystemTime) {
    let hour = Duration::from_secs(3600);
    let c = store
        .record_change(
            &lease,
            now,
            change(
                Family::V4,
                "81.2.69.170",
                Some("81.2.69.161"),
                ChangeKind::Change,
            ),
            &people(4),
        )
        .await
        .unwrap();
    let old = store.claim_deliveries(&lease, now, 3).await.unwrap();
    assert_eq!(old.len(), 3);
    let old_lease = lapse(store, a, lease).await;
    let lease = store
        .acquire_lease(a, hour)
        .await
        .unwrap()
        .expect("the same holder acquires its lapsed lease again");
    assert!(
        lease.fence > old_lease.fence,
        "acquiring again after a lapse gives a new fence"
    );
    // A send of the old fence that completed during the lapse: recorded under the new lease
    // while its row is still in flight under the old fence.
    assert_eq!(
        store
            .finish_deliveries(&lease, now, &[result(&old[0], DeliveryUpdate::Sent)])
            .await
            .unwrap(),
        [Recorded::Applied],
        "a Sent result survives a lease change"
    );
    // The other two old rows look orphaned and are claimed again, with the pending one.
    let new = store.claim_deliveries(&lease, now, 10).await.unwrap();
    let mut ids: Vec<i64> = new.iter().map(|d| d.id).collect();
    ids.sort();
    let mut expected: Vec<i64> = old[1..].iter().map(|d| d.id).collect();
    expected.extend(
        store
            .deliveries(c.id)
            .await
            .unwrap()
            .iter()
            .filter(|d| !old.iter().any(|o| o.id == d.id))
            .map(|d| d.id),
    );
    expected.sort();
    assert_eq!(ids, expected, "the sent row is not claimed again");
    // A late result of the old fence for a row claimed again is stale: not an error, and it
    // does not touch the row; the newer fence's result then records.
    let batch = [
        result(&old[1], DeliveryUpdate::Sent),
        result(
            new.iter().find(|d| d.id == old[1].id).unwrap(),
            DeliveryUpdate::Sent,
        ),
    ];
    assert_eq!(
        store.finish_deliveries(&lease, now, &batch).await.unwrap(),
        [Recorded::Stale, Recorded::Applied],
        "a result of an older fence never fails a newer one"
    );
    let rest: Vec<DeliveryResult> = new
        .iter()
        .filter(|d| d.id != old[1].id)
        .map(|d| result(d, DeliveryUpdate::Sent))
        .collect();
    assert!(
        store
            .finish_deliveries(&lease, now, &rest)
            .await
            .unwrap()
            .iter()
            .all(|r| *r == Recorded::Applied),
        "one batch records many results"
    );
    let ds = store.deliveries(c.id).await.unwrap();
    assert!(
        ds.iter().all(|d| d.state == DeliveryState::Sent),
        "nothing is left in flight after a lapse: {ds:?}"
    );
    assert_eq!(store.delivery_counts().await.unwrap().in_flight, 0);

    // retry_failed: the failed deliveries of the latest change go back to the queue.
    let c2 = store
        .record_change(
            &lease,
            now,
            change(
                Family::V4,
                "81.2.69.171",
                Some("81.2.69.170"),
                ChangeKind::Change,
            ),
            &people(3),
        )
        .await
        .unwrap();
    let claimed = store.claim_deliveries(&lease, now, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let failed: Vec<DeliveryResult> = claimed
        .iter()
        .take(2)
        .map(|d| {
            result(
                d,
                DeliveryUpdate::Failed {
                    error: "530 5.7.0 Authentication required".into(),
                },
            )
        })
        .chain(std::iter::once(result(&claimed[2], DeliveryUpdate::Sent)))
        .collect();
    store.finish_deliveries(&lease, now, &failed).await.unwrap();
    let later = now + Duration::from_secs(600);
    assert_eq!(
        store.retry_failed(&lease, later).await.unwrap(),
        2,
        "the failed deliveries of the latest change are requeued"
    );
    // finish_and_claim: one result recorded and the next claimed in one call.
    let first = store.claim_deliveries(&lease, later, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    let (recorded, second) = store
        .finish_and_claim(
            &lease,
            later,
            &[result(&first[0], DeliveryUpdate::Sent)],
            10,
        )
        .await
        .unwrap();
    assert_eq!(recorded, [Recorded::Applied]);
    assert_eq!(second.len(), 1, "the other requeued delivery is claimed");
    let again = [first[0].clone(), second[0].clone()];
    assert!(
        again
            .iter()
            .all(|d| d.change_id == c2.id && d.attempts == 1),
        "requeued deliveries start their attempts over"
    );
    let (recorded, none) = store
        .finish_and_claim(
            &lease,
            later,
            &[result(&second[0], DeliveryUpdate::Sent)],
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        (recorded.as_slice(), none.len()),
        ([Recorded::Applied].as_slice(), 0)
    );
    assert_eq!(
        store.delivery_counts().await.unwrap().in_flight,
        0,
        "nothing left in flight"
    );
    let stale = lapse(store, a, lease).await;
    assert!(
        matches!(
            store.retry_failed(&stale, later).await,
            Err(StoreError::LeaseLost)
        ),
        "retry_failed is fenced"
    );
    assert!(
        matches!(
            store.finish_and_claim(&stale, later, &[], 10).await,
            Err(StoreError::LeaseLost)
        ),
        "finish_and_claim is fenced"
    );
    let lease = store.acquire_lease(a, hour).await.unwrap().unwrap();
    store.release_lease(&lease).await.unwrap();
}

/// Every rule of [`StateStore`]: leases and fencing, atomic changes with their deliveries,
/// superseding, claiming and finishing, retries, counts, history, control and status rows.
/// `store` must be empty.
pub async fn store_conformance(store: &dyn StateStore) {
    let ttl = Duration::from_secs(30);
    let (a, b) = (holder("conformance-a"), holder("conformance-b"));

    // Empty store.
    assert!(
        store.current(Family::V4).await.unwrap().is_none(),
        "a new store has no current address"
    );
    assert!(
        store.history(10).await.unwrap().is_empty(),
        "a new store has no history"
    );
    assert_eq!(
        store.desired_state().await.unwrap(),
        DesiredState::Running,
        "desired state defaults to running"
    );
    assert!(
        store.lease().await.unwrap().is_none(),
        "a new store has no lease"
    );

    // Lease: acquire, exclusive, renew keeps the fence, expiry (on the store's clock) hands
    // over with a higher fence.
    let la = store
        .acquire_lease(&a, ttl)
        .await
        .unwrap()
        .expect("a free lease is acquired");
    assert_eq!(la.holder, a);
    assert_eq!(
        la.expires_at.duration_since(la.acquired_at).ok(),
        Some(ttl),
        "the lease runs for its ttl"
    );
    assert!(
        store.acquire_lease(&b, ttl).await.unwrap().is_none(),
        "a valid lease is exclusive"
    );
    let la2 = store
        .acquire_lease(&a, ttl)
        .await
        .unwrap()
        .expect("the holder renews");
    assert_eq!(la2.fence, la.fence, "renewal keeps the fence");
    assert!(la2.expires_at >= la.expires_at, "renewal extends the lease");
    assert_eq!(
        store.lease().await.unwrap().map(|l| l.holder),
        Some(a.clone())
    );
    let la2 = lapse(store, &a, la2).await;
    assert!(
        store.lease().await.unwrap().is_none(),
        "a lease is invalid once its ttl has passed"
    );
    let lb = store
        .acquire_lease(&b, ttl)
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert!(lb.fence > la.fence, "a new holder gets a higher fence");
    assert!(
        store.acquire_lease(&a, ttl).await.unwrap().is_none(),
        "the old holder cannot renew"
    );

    // Fencing: the old holder cannot act.
    let err = store
        .record_change(
            &la2,
            t(55),
            change(Family::V4, "81.2.69.160", None, ChangeKind::Change),
            &people(1),
        )
        .await
        .expect_err("a stale lease cannot record");
    assert!(
        matches!(err, StoreError::LeaseLost),
        "stale lease gives LeaseLost, got {err:?}"
    );
    assert!(
        store.history(10).await.unwrap().is_empty(),
        "a refused change leaves nothing behind"
    );

    // Release, then a fresh acquisition gets a higher fence still.
    store.release_lease(&la2).await.unwrap(); // not the holder: no effect
    assert!(
        store.lease().await.unwrap().is_some(),
        "releasing someone else's lease does nothing"
    );
    store.release_lease(&lb).await.unwrap();
    assert!(
        store.lease().await.unwrap().is_none(),
        "release frees the lease"
    );
    let lease = store
        .acquire_lease(&a, Duration::from_secs(3600))
        .await
        .unwrap()
        .expect("free again");
    assert!(
        lease.fence > lb.fence,
        "fences never repeat, even after a release"
    );
    let now = t(100);

    // Record a first change with deliveries (duplicates by address case collapse).
    let mut recipients = people(3);
    recipients.push(Recipient::new("PERSON0@example.com", None::<&str>).unwrap());
    let c1 = store
        .record_change(
            &lease,
            now,
            change(Family::V4, "81.2.69.160", None, ChangeKind::Change),
            &recipients,
        )
        .await
        .unwrap();
    assert_eq!(
        c1.deliveries, 3,
        "one delivery per distinct recipient address"
    );
    assert_eq!(c1.detected_at, now);
    let cur = store
        .current(Family::V4)
        .await
        .unwrap()
        .expect("current after a change");
    assert_eq!(
        (cur.address, cur.change_id, cur.since),
        (ip("81.2.69.160"), c1.id, now)
    );
    assert!(
        store.current(Family::V6).await.unwrap().is_none(),
        "families are separate"
    );
    let ds = store.deliveries(c1.id).await.unwrap();
    assert_eq!(ds.len(), 3);
    for d in &ds {
        assert_eq!(d.state, DeliveryState::Pending);
        assert_eq!((d.attempts, d.created_at, d.next_attempt_at), (0, now, now));
        assert_eq!(d.url, "http://81.2.69.160:8008/");
        assert_eq!(d.address, ip("81.2.69.160"));
        assert_eq!(d.kind, ChangeKind::Change);
    }
    assert!(
        ds.iter().any(|d| d.recipient.name() == Some("Person 1")),
        "names are kept"
    );

    // Claim respects the limit and the due time; claimed ones are in flight under the fence.
    let claimed = store.claim_deliveries(&lease, now, 2).await.unwrap();
    assert_eq!(claimed.len(), 2, "claim honours the limit");
    for d in &claimed {
        assert_eq!(
            (d.state, d.attempts, d.fence),
            (DeliveryState::InFlight, 1, Some(lease.fence))
        );
    }
    let rest = store.claim_deliveries(&lease, now, 10).await.unwrap();
    assert_eq!(
        rest.len(),
        1,
        "in-flight deliveries of this fence are not claimed again"
    );
    assert!(
        store
            .claim_deliveries(&lease, now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!((counts.pending, counts.in_flight), (0, 3));

    // Finish: sent, retry, failed.
    finish(store, &lease, now, &claimed[0], DeliveryUpdate::Sent).await;
    let retry_at = now + Duration::from_secs(30);
    finish(
        store,
        &lease,
        now,
        &claimed[1],
        DeliveryUpdate::Retry {
            at: retry_at,
            error: "451 busy".into(),
        },
    )
    .await;
    finish(
        store,
        &lease,
        now,
        &rest[0],
        DeliveryUpdate::Failed {
            error: "550 no such user".into(),
        },
    )
    .await;
    let by_id =
        |id: i64, all: &[crate::store::Delivery]| all.iter().find(|d| d.id == id).cloned().unwrap();
    let ds = store.deliveries(c1.id).await.unwrap();
    let sent = by_id(claimed[0].id, &ds);
    assert_eq!((sent.state, sent.sent_at), (DeliveryState::Sent, Some(now)));
    let retry = by_id(claimed[1].id, &ds);
    assert_eq!(
        (retry.state, retry.next_attempt_at),
        (DeliveryState::Pending, retry_at)
    );
    assert_eq!(retry.last_error.as_deref(), Some("451 busy"));
    assert_eq!(by_id(rest[0].id, &ds).state, DeliveryState::Failed);
    assert_eq!(
        store.next_delivery_at(&lease).await.unwrap(),
        Some(retry_at),
        "the retry is the next due"
    );
    assert!(
        store
            .claim_deliveries(&lease, now + Duration::from_secs(29), 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let again = store.claim_deliveries(&lease, retry_at, 10).await.unwrap();
    assert_eq!(again.len(), 1, "due at its retry time");
    assert_eq!(again[0].attempts, 2, "each claim counts an attempt");
    assert_eq!(
        store
            .finish_deliveries(&lease, now, &[result(&sent, DeliveryUpdate::Sent)])
            .await
            .expect("a row-level mismatch is not a lost lease"),
        [Recorded::Stale],
        "finishing a delivery not in flight writes nothing"
    );

    // A newer change supersedes older pending and in-flight deliveries of the same family.
    let c2 = store
        .record_change(
            &lease,
            retry_at,
            change(
                Family::V4,
                "81.2.69.161",
                Some("81.2.69.160"),
                ChangeKind::Change,
            ),
            &people(2),
        )
        .await
        .unwrap();
    assert!(c2.id > c1.id, "change ids increase");
    let ds = store.deliveries(c1.id).await.unwrap();
    assert_eq!(
        by_id(again[0].id, &ds).state,
        DeliveryState::Superseded,
        "in-flight delivery superseded"
    );
    assert_eq!(
        by_id(sent.id, &ds).state,
        DeliveryState::Sent,
        "sent stays sent"
    );
    assert_eq!(
        by_id(rest[0].id, &ds).state,
        DeliveryState::Failed,
        "failed stays failed"
    );
    // The superseded one was still out: a transient result keeps it superseded, a send counts.
    finish(
        store,
        &lease,
        retry_at,
        &again[0],
        DeliveryUpdate::Retry {
            at: retry_at,
            error: "x".into(),
        },
    )
    .await;
    assert_eq!(
        by_id(again[0].id, &store.deliveries(c1.id).await.unwrap()).state,
        DeliveryState::Superseded
    );
    assert_eq!(
        store.current(Family::V4).await.unwrap().unwrap().address,
        ip("81.2.69.161")
    );

    // A v6 change supersedes nothing of v4; a test changes nothing current and supersedes nothing.
    let c3 = store
        .record_change(
            &lease,
            retry_at,
            change(Family::V6, "2606:4700:4700::1111", None, ChangeKind::Change),
            &people(1),
        )
        .await
        .unwrap();
    let test = store
        .record_change(
            &lease,
            retry_at,
            change(Family::V4, "81.2.69.200", None, ChangeKind::Test),
            &people(2),
        )
        .await
        .unwrap();
    assert_eq!(test.kind, ChangeKind::Test);
    assert_eq!(
        store.current(Family::V4).await.unwrap().unwrap().change_id,
        c2.id,
        "a test leaves current alone"
    );
    assert!(
        store
            .deliveries(c2.id)
            .await
            .unwrap()
            .iter()
            .all(|d| d.state == DeliveryState::Pending),
        "a test supersedes nothing"
    );
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!(
        (
            counts.pending,
            counts.in_flight,
            counts.sent,
            counts.failed,
            counts.superseded
        ),
        (5, 0, 1, 1, 1),
        "counts per state"
    );
    // Each change's outcome: its counts, and its deliveries that were not sent.
    for change in [c1.id, c2.id, test.id] {
        assert_eq!(
            store.outcome(change).await.unwrap(),
            ChangeOutcome::of(store.deliveries(change).await.unwrap()),
            "the outcome of change {change}"
        );
    }

    // History: newest first, limited.
    let h = store.history(10).await.unwrap();
    assert_eq!(
        h.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![test.id, c3.id, c2.id, c1.id]
    );
    assert_eq!(h[2].previous, Some(ip("81.2.69.160")));
    assert_eq!(
        store.history(2).await.unwrap().len(),
        2,
        "history honours the limit"
    );

    // A new holder resumes what the old one had in flight.
    let inflight = store.claim_deliveries(&lease, retry_at, 2).await.unwrap();
    assert_eq!(inflight.len(), 2);
    let takeover_at = retry_at + Duration::from_secs(60);
    let lease = lapse(store, &a, lease).await;
    let lease2 = store
        .acquire_lease(&b, Duration::from_secs(3600))
        .await
        .unwrap()
        .expect("expired lease taken");
    assert!(
        store
            .claim_deliveries(&lease, takeover_at, 10)
            .await
            .is_err(),
        "the old holder cannot claim"
    );
    assert!(
        matches!(
            store
                .finish_deliveries(
                    &lease,
                    takeover_at,
                    &[result(&inflight[0], DeliveryUpdate::Sent)]
                )
                .await,
            Err(StoreError::LeaseLost)
        ),
        "the old holder cannot mark"
    );
    let due = store
        .next_delivery_at(&lease2)
        .await
        .unwrap()
        .expect("orphans are due");
    assert!(
        due <= takeover_at,
        "orphaned in-flight deliveries are due at once for a new holder"
    );
    let resumed = store
        .claim_deliveries(&lease2, takeover_at, 100)
        .await
        .unwrap();
    assert_eq!(
        resumed.len(),
        5,
        "the new holder claims the orphaned in-flight and the pending ones"
    );
    for d in &inflight {
        let r = resumed
            .iter()
            .find(|r| r.id == d.id)
            .expect("orphan resumed");
        assert_eq!((r.fence, r.attempts), (Some(lease2.fence), d.attempts + 1));
    }
    for d in &resumed {
        finish(store, &lease2, takeover_at, d, DeliveryUpdate::Sent).await;
    }

    lapse_conformance(store, &b, lease2, takeover_at).await;

    // Control and status rows.
    store.set_desired_state(DesiredState::Paused).await.unwrap();
    assert_eq!(store.desired_state().await.unwrap(), DesiredState::Paused);
    store
        .set_desired_state(DesiredState::Running)
        .await
        .unwrap();
    assert_eq!(store.desired_state().await.unwrap(), DesiredState::Running);
    let mut status = InstanceStatus {
        holder: a.clone(),
        state: RunState::Running,
        leader: true,
        started_at: t(0),
        heartbeat_at: t(10),
        current: vec![ip("81.2.69.161")],
        last_check_at: Some(t(5)),
        next_check_at: Some(t(3605)),
        last_error: None,
        delivery_error: Some("451 4.3.0 try again later".into()),
        sent_via: [("smtp.example.com:587".to_owned(), 3)].into(),
        sources: vec![SourceStatus {
            name: "ipify".into(),
            family: Family::V4,
            answer: Some(ip("81.2.69.161")),
            error: None,
            latency_ms: Some(42),
            at: t(5),
        }],
    };
    store.put_instance(&status).await.unwrap();
    status.heartbeat_at = t(20);
    status.last_error = Some("check of v4 failed".into());
    store.put_instance(&status).await.unwrap();
    let mut other = status.clone();
    other.holder = b.clone();
    other.leader = false;
    other.heartbeat_at = t(15);
    other.sources.clear();
    store.put_instance(&other).await.unwrap();
    let rows = store.instances().await.unwrap();
    assert_eq!(rows.len(), 2, "one row per instance, replaced on update");
    assert_eq!(rows[0], status, "rows round-trip, newest heartbeat first");
    assert_eq!(rows[1], other);

    new_recipients_conformance(store, &[a, b]).await;
}

/// [`StateStore::add_recipients`]: the current change's notice for those who have none.
async fn new_recipients_conformance(store: &dyn StateStore, holders: &[Holder]) {
    let hour = Duration::from_secs(3600);
    let mut lease = None;
    for h in holders {
        lease = store.acquire_lease(h, hour).await.unwrap();
        if lease.is_some() {
            break;
        }
    }
    let lease = lease.expect("one of the holders gets the lease");
    let now = t(5000);
    let staff = people(3);
    let c = store
        .record_change(
            &lease,
            now,
            change(
                Family::V4,
                "81.2.69.180",
                Some("81.2.69.170"),
                ChangeKind::Change,
            ),
            &staff[..2],
        )
        .await
        .unwrap();
    let claimed = store.claim_deliveries(&lease, now, 100).await.unwrap();
    let first: Vec<&Delivery> = claimed.iter().filter(|d| d.change_id == c.id).collect();
    assert_eq!(first.len(), 2);
    finish(store, &lease, now, first[0], DeliveryUpdate::Sent).await;
    let failed = DeliveryUpdate::Failed {
        error: "550 no such user".into(),
    };
    finish(store, &lease, now, first[1], failed).await;

    // Everyone on the list: only the one without a delivery (sent or failed) is added.
    let mut list = staff.clone();
    list.push(Recipient::new("PERSON2@example.com", None::<&str>).unwrap());
    let later = t(5100);
    let added = store
        .add_recipients(&lease, later, c.id, &list, true)
        .await
        .unwrap();
    assert_eq!(
        added, 1,
        "one new recipient, once (addresses compared as keys)"
    );
    let all = store.deliveries(c.id).await.unwrap();
    assert_eq!(all.len(), 3);
    let new = all
        .iter()
        .find(|d| d.recipient.key() == staff[2].key())
        .expect("the new recipient's delivery");
    assert_eq!(
        (new.state, new.next_attempt_at, new.url.as_str()),
        (DeliveryState::Pending, later, c.url.as_str()),
        "pending, due now, with the change's URL"
    );
    assert_eq!(
        store.history(1).await.unwrap()[0].deliveries,
        3,
        "the change counts it"
    );
    assert_eq!(
        store
            .add_recipients(&lease, later, c.id, &list, true)
            .await
            .unwrap(),
        0,
        "again: nobody new"
    );

    // Not for a change that is no longer current, nor under a lease that lapsed.
    let newer = store
        .record_change(
            &lease,
            later,
            change(
                Family::V4,
                "81.2.69.181",
                Some("81.2.69.180"),
                ChangeKind::Change,
            ),
            &[],
        )
        .await
        .unwrap();
    let more = people(5);
    assert_eq!(
        store
            .add_recipients(&lease, later, c.id, &more, false)
            .await
            .unwrap(),
        0,
        "a superseded change gets nobody"
    );
    // The newer change was recorded without telling anyone.
    assert_eq!(
        store
            .add_recipients(&lease, later, newer.id, &more, true)
            .await
            .unwrap(),
        0,
        "only_if_announced: a change nobody was told of stays so"
    );
    assert_eq!(
        store
            .add_recipients(&lease, later, newer.id, &more, false)
            .await
            .unwrap(),
        5,
        "without only_if_announced everyone on the list gets it"
    );
    let stale = Lease {
        fence: lease.fence + 1000,
        ..lease.clone()
    };
    assert!(matches!(
        store
            .add_recipients(&stale, later, newer.id, &people(6), false)
            .await,
        Err(StoreError::LeaseLost)
    ));
    store.release_lease(&lease).await.unwrap();
}

/// A [`Recipients`] implementation returns exactly `expected` (in any order), every one
/// valid and distinct, the same on every read.
pub async fn recipients_conformance(recipients: &dyn Recipients, expected: &[Recipient]) {
    let first = recipients.active().await.expect("recipients readable");
    let mut got: Vec<_> = first
        .valid
        .iter()
        .map(|r| (r.key(), r.name().map(str::to_owned)))
        .collect();
    let mut want: Vec<_> = expected
        .iter()
        .map(|r| (r.key(), r.name().map(str::to_owned)))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the active recipients");
    let mut keys: Vec<_> = first.valid.iter().map(Recipient::key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        first.valid.len(),
        "recipients are distinct by address"
    );
    for r in &first.valid {
        assert!(
            Recipient::new(r.email(), r.name()).is_ok(),
            "every returned recipient is valid: {r:?}"
        );
    }
    let second = recipients
        .active()
        .await
        .expect("recipients readable twice");
    assert_eq!(second.valid.len(), first.valid.len(), "reads are stable");
}

/// An [`IpSource`](crate::IpSource) answers `expected` for its family, passes validation for
/// its scope, gives the same answer to concurrent callers, and never answers the other
/// family's question with an address of the wrong family.
pub async fn source_conformance(source: &dyn crate::IpSource, expected: IpAddr) {
    use crate::source::validate_answer;
    assert!(!source.name().is_empty(), "a source has a name");
    let family = Family::of(&expected);
    let got = source.fetch(family).await.expect("the source answers");
    assert_eq!(got, expected, "the source's answer");
    validate_answer(got, family, source.scope(), source.allow_non_global())
        .expect("the answer passes validation for the source's scope");
    let together = futures_join_all((0..8).map(|_| source.fetch(family))).await;
    for a in together {
        assert_eq!(
            a.expect("concurrent fetches succeed"),
            expected,
            "concurrent fetches agree"
        );
    }
    let other = match family {
        Family::V4 => Family::V6,
        Family::V6 => Family::V4,
    };
    if let Ok(addr) = source.fetch(other).await {
        assert_eq!(
            Family::of(&addr),
            other,
            "an answer for {other} is an {other} address"
        );
    }
}

/// A [`Notifier`](crate::Notifier) delivers a notice to each of several recipients sent at
/// once, and a test notice too. `delivered` returns what arrived at the other end as
/// `(email, url)` pairs, in any order.
pub async fn notifier_conformance<F>(notifier: &dyn crate::Notifier, delivered: F)
where
    F: Fn() -> Vec<(String, String)>,
{
    use crate::notice::Notice;
    let url = "http://81.2.69.160:8008/";
    let notice = Notice::new(1, ip("81.2.69.160"), url.to_owned(), t(0), false).expect("notice");
    let staff = people(3);
    let results = futures_join_all(staff.iter().map(|r| notifier.notify(&notice, r))).await;
    for r in results {
        r.expect("each delivery succeeds");
    }
    let test = Notice::new(
        2,
        ip("81.2.69.161"),
        "http://81.2.69.161:8008/".to_owned(),
        t(1),
        true,
    )
    .expect("notice");
    notifier
        .notify(&test, &staff[0])
        .await
        .expect("a test notice is delivered");
    let mut got = delivered();
    got.sort();
    let mut want: Vec<(String, String)> = staff
        .iter()
        .map(|r| (r.email().to_owned(), url.to_owned()))
        .collect();
    want.push((
        staff[0].email().to_owned(),
        "http://81.2.69.161:8008/".to_owned(),
    ));
    want.sort();
    assert_eq!(got, want, "each recipient got its own notice, once");
}

/// Run futures concurrently on the current task and collect their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).map(Some).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("completed")).collect()
}

/// A store whose next lease renewal after a claim stalls: what a process frozen while its
/// sends were out (SIGSTOP, a paused VM) looks like to the store.
#[derive(Debug)]
struct StallingStore {
    inner: Arc<dyn StateStore>,
    stall: Duration,
    /// 0: waiting for a claim; 1: the next renewal stalls; 2: done.
    phase: AtomicU8,
}

#[async_trait::async_trait]
impl StateStore for StallingStore {
    async fn current(&self, family: Family) -> Result<Option<CurrentAddress>, StoreError> {
        self.inner.current(family).await
    }
    async fn record_change(
        &self,
        lease: &Lease,
        now: SystemTime,
        change: NewChange,
        recipients: &[Recipient],
    ) -> Result<Change, StoreError> {
        self.inner
            .record_change(lease, now, change, recipients)
            .await
    }
    async fn add_recipients(
        &self,
        lease: &Lease,
        now: SystemTime,
        change_id: i64,
        recipients: &[Recipient],
        only_if_announced: bool,
    ) -> Result<u64, StoreError> {
        self.inner
            .add_recipients(lease, now, change_id, recipients, only_if_announced)
            .await
    }
    async fn history(&self, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.inner.history(limit).await
    }
    async fn claim_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let claimed = self.inner.claim_deliveries(lease, now, limit).await?;
        if !claimed.is_empty() {
            let _ = self
                .phase
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst);
        }
        Ok(claimed)
    }
    async fn finish_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        results: &[DeliveryResult],
    ) -> Result<Vec<Recorded>, StoreError> {
        self.inner.finish_deliveries(lease, now, results).await
    }
    async fn retry_failed(&self, lease: &Lease, now: SystemTime) -> Result<u64, StoreError> {
        self.inner.retry_failed(lease, now).await
    }
    async fn next_delivery_at(&self, lease: &Lease) -> Result<Option<SystemTime>, StoreError> {
        self.inner.next_delivery_at(lease).await
    }
    async fn deliveries(&self, change_id: i64) -> Result<Vec<Delivery>, StoreError> {
        self.inner.deliveries(change_id).await
    }
    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.inner.delivery_counts().await
    }
    async fn outcome(&self, change_id: i64) -> Result<ChangeOutcome, StoreError> {
        self.inner.outcome(change_id).await
    }
    async fn acquire_lease(
        &self,
        holder: &Holder,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        if self
            .phase
            .compare_exchange(1, 2, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            tokio::time::sleep(self.stall).await;
        }
        self.inner.acquire_lease(holder, ttl).await
    }
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.inner.release_lease(lease).await
    }
    async fn lease(&self) -> Result<Option<Lease>, StoreError> {
        self.inner.lease().await
    }
    async fn put_instance(&self, status: &InstanceStatus) -> Result<(), StoreError> {
        self.inner.put_instance(status).await
    }
    async fn instances(&self) -> Result<Vec<InstanceStatus>, StoreError> {
        self.inner.instances().await
    }
    async fn desired_state(&self) -> Result<DesiredState, StoreError> {
        self.inner.desired_state().await
    }
    async fn set_desired_state(&self, state: DesiredState) -> Result<(), StoreError> {
        self.inner.set_desired_state(state).await
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

    // 1. A lone leader stalls past its ttl with 8 sends out; the sends complete meanwhile.
    let notifier = RecordingNotifier::new();
    notifier.set_delay(Some(Duration::from_millis(150)));
    let stalling: Arc<dyn StateStore> = Arc::new(StallingStore {
        inner: Arc::clone(&store),
        stall: Duration::from_millis(700),
        phase: AtomicU8::new(0),
    });
    let handle = lapse_monitor(stalling, "81.2.69.190", &staff, &notifier, "lone")
        .build()
        .unwrap()
        .spawn();
    let mut events = handle.subscribe();
    let ds = settled(&*store).await;
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
    assert_once_each(&notifier.sent_to(), &staff, "lone leader's lapse");

    // 2. A leader frozen between connect and hand-over, past its ttl; another takes over.
    let frozen = RecordingNotifier::new();
    frozen.set_delay(Some(Duration::from_millis(1500)));
    let stalling: Arc<dyn StateStore> = Arc::new(StallingStore {
        inner: Arc::clone(&store),
        stall: Duration::from_millis(2500),
        phase: AtomicU8::new(0),
    });
    let a = lapse_monitor(stalling, "81.2.69.191", &staff, &frozen, "frozen")
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
    let b = lapse_monitor(Arc::clone(&store), "81.2.69.191", &staff, &taker, "taker")
        .build()
        .unwrap()
        .spawn();
    let ds = settled(&*store).await;
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
    assert_once_each(&taker.sent_to(), &staff, "takeover of a frozen leader");

    // 3. Clocks minutes apart: the lease is judged on the store's clock only.
    for ahead in [true, false] {
        let first = RecordingNotifier::new();
        let a = lapse_monitor(Arc::clone(&store), "81.2.69.191", &staff, &first, "on-time")
            .build()
            .unwrap()
            .spawn();
        let mut a_events = a.subscribe();
        a.check_now().await.expect("the first instance leads");
        let skewed = lapse_monitor(Arc::clone(&store), "81.2.69.191", &staff, &first, "skewed")
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
