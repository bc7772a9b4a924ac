//! The rules of [`StateStore`] for changes and their deliveries: the store conformance
//! suite, one named step per rule, run in order on one store.

use std::time::{Duration, SystemTime};

use super::deferral::deferral;
use super::{by_id, change, finish, holder, ip, lapse, people, result, t};
use crate::address::Family;
use crate::recipients::Recipient;
use crate::store::{
    Change, ChangeKind, ChangeOutcome, Delivery, DeliveryState, DeliveryUpdate, DesiredState,
    Holder, InstanceStatus, Lease, Recorded, RunState, SourceStatus, StateStore, StoreError,
};

/// Every rule of [`StateStore`] about leases and fencing, atomic changes with their
/// deliveries, superseding, claiming and finishing, retries, counts, history, control and
/// status rows, in order on one store (`store` must be empty). The other store rules are
/// [`lapse_conformance`](super::lapse_conformance),
/// [`new_recipients_conformance`](super::new_recipients_conformance) and
/// [`recipient_kinds_conformance`](super::recipient_kinds_conformance), each on a fresh
/// store; [`monitor_conformance`](super::monitor_conformance) runs a monitor on one.
pub async fn store_conformance(store: &dyn StateStore) {
    let (a, b) = (holder("conformance-a"), holder("conformance-b"));
    empty_store(store).await;
    let (stale, lb) = leases(store, &a, &b).await;
    let lease = fencing(store, &a, stale, lb).await;
    let now = t(100);
    let c1 = first_change(store, &lease, now).await;
    let (claimed, rest) = claims(store, &lease, now).await;
    let (sent, again, retry_at) = results(store, &lease, now, &c1, &claimed, &rest).await;
    let c2 = superseding(store, &lease, &c1, &again, &sent, &rest, retry_at).await;
    let (c3, test) = tests_and_counts(store, &lease, retry_at, &c1, &c2).await;
    history(store, [&test, &c3, &c2, &c1]).await;
    takeover(store, lease, &a, &b, retry_at).await;
    control_and_status(store, &a, &b).await;
}

/// A new store has nothing, and is running.
async fn empty_store(store: &dyn StateStore) {
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
}

/// Acquire, exclusive, renewal keeps the fence, expiry (on the store's clock) hands over
/// with a higher fence. Returns `a`'s stale lease and `b`'s valid one.
async fn leases(store: &dyn StateStore, a: &Holder, b: &Holder) -> (Lease, Lease) {
    let ttl = Duration::from_secs(30);
    // Lease: acquire, exclusive, renew keeps the fence, expiry (on the store's clock) hands
    // over with a higher fence.
    let la = store
        .acquire_lease(a, ttl)
        .await
        .unwrap()
        .expect("a free lease is acquired");
    assert_eq!(&la.holder, a);
    assert_eq!(
        la.expires_at.duration_since(la.acquired_at).ok(),
        Some(ttl),
        "the lease runs for its ttl"
    );
    assert!(
        store.acquire_lease(b, ttl).await.unwrap().is_none(),
        "a valid lease is exclusive"
    );
    let la2 = store
        .acquire_lease(a, ttl)
        .await
        .unwrap()
        .expect("the holder renews");
    assert_eq!(la2.fence, la.fence, "renewal keeps the fence");
    assert!(la2.expires_at >= la.expires_at, "renewal extends the lease");
    assert_eq!(
        store.lease().await.unwrap().map(|l| l.holder),
        Some(a.clone())
    );
    let la2 = lapse(store, a, la2).await;
    assert!(
        store.lease().await.unwrap().is_none(),
        "a lease is invalid once its ttl has passed"
    );
    let lb = store
        .acquire_lease(b, ttl)
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert!(lb.fence > la.fence, "a new holder gets a higher fence");
    assert!(
        store.acquire_lease(a, ttl).await.unwrap().is_none(),
        "the old holder cannot renew"
    );
    (la2, lb)
}

/// The old holder cannot act; releasing frees the lease; fences never repeat. Returns a
/// fresh lease of `a` for an hour.
async fn fencing(store: &dyn StateStore, a: &Holder, la2: Lease, lb: Lease) -> Lease {
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
        .acquire_lease(a, Duration::from_secs(3600))
        .await
        .unwrap()
        .expect("free again");
    assert!(
        lease.fence > lb.fence,
        "fences never repeat, even after a release"
    );
    lease
}

/// A first change with one delivery per distinct recipient, pending and due now.
async fn first_change(store: &dyn StateStore, lease: &Lease, now: SystemTime) -> Change {
    // Record a first change with deliveries (duplicates by address case collapse).
    let mut recipients = people(3);
    recipients.push(Recipient::new("PERSON0@example.com", None::<&str>).unwrap());
    let c1 = store
        .record_change(
            lease,
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
    c1
}

/// Claims honour the limit; claimed deliveries are in flight under the fence and not
/// claimed again. Returns two claimed, then the third.
async fn claims(
    store: &dyn StateStore,
    lease: &Lease,
    now: SystemTime,
) -> (Vec<Delivery>, Vec<Delivery>) {
    // Claim respects the limit and the due time; claimed ones are in flight under the fence.
    let claimed = store.claim_deliveries(lease, now, 2).await.unwrap();
    assert_eq!(claimed.len(), 2, "claim honours the limit");
    for d in &claimed {
        assert_eq!(
            (d.state, d.attempts, d.fence),
            (DeliveryState::InFlight, 1, Some(lease.fence))
        );
    }
    let rest = store.claim_deliveries(lease, now, 10).await.unwrap();
    assert_eq!(
        rest.len(),
        1,
        "in-flight deliveries of this fence are not claimed again"
    );
    assert!(
        store
            .claim_deliveries(lease, now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!((counts.pending, counts.in_flight), (0, 3));
    (claimed, rest)
}

/// Sent, retry, deferred and failed results; a retry is due at its time and counts an
/// attempt, a deferral gives it back; a result for a delivery not in flight is stale. Returns the sent one, the retried one
/// claimed again, and its retry time.
async fn results(
    store: &dyn StateStore,
    lease: &Lease,
    now: SystemTime,
    c1: &Change,
    claimed: &[Delivery],
    rest: &[Delivery],
) -> (Delivery, Vec<Delivery>, SystemTime) {
    // Finish: sent, retry, failed.
    finish(store, lease, now, &claimed[0], DeliveryUpdate::Sent).await;
    let retry_at = now + Duration::from_secs(30);
    finish(
        store,
        lease,
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
        lease,
        now,
        &rest[0],
        DeliveryUpdate::Failed {
            error: "550 no such user".into(),
        },
    )
    .await;
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
        store.next_delivery_at(lease).await.unwrap(),
        Some(retry_at),
        "the retry is the next due"
    );
    assert!(
        store
            .claim_deliveries(lease, now + Duration::from_secs(29), 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let again = store.claim_deliveries(lease, retry_at, 10).await.unwrap();
    assert_eq!(again.len(), 1, "due at its retry time");
    assert_eq!(again[0].attempts, 2, "each claim counts an attempt");
    let again = deferral(store, lease, now, c1, &again[0], retry_at).await;
    assert_eq!(
        store
            .finish_deliveries(lease, now, &[result(&sent, DeliveryUpdate::Sent)])
            .await
            .expect("a row-level mismatch is not a lost lease"),
        [Recorded::Stale],
        "finishing a delivery not in flight writes nothing"
    );
    (sent, again, retry_at)
}

/// A newer change supersedes the older one's pending and in-flight deliveries, never its
/// sent or failed ones, and a late transient result keeps a superseded one superseded.
async fn superseding(
    store: &dyn StateStore,
    lease: &Lease,
    c1: &Change,
    again: &[Delivery],
    sent: &Delivery,
    rest: &[Delivery],
    retry_at: SystemTime,
) -> Change {
    // A newer change supersedes older pending and in-flight deliveries of the same family.
    let c2 = store
        .record_change(
            lease,
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
        lease,
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
    c2
}

/// Families are separate; a test changes nothing current and supersedes nothing; counts
/// per state; each change's outcome. Returns the v6 change and the test.
async fn tests_and_counts(
    store: &dyn StateStore,
    lease: &Lease,
    retry_at: SystemTime,
    c1: &Change,
    c2: &Change,
) -> (Change, Change) {
    // A v6 change supersedes nothing of v4; a test changes nothing current and supersedes nothing.
    let c3 = store
        .record_change(
            lease,
            retry_at,
            change(Family::V6, "2606:4700:4700::1111", None, ChangeKind::Change),
            &people(1),
        )
        .await
        .unwrap();
    let test = store
        .record_change(
            lease,
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
    (c3, test)
}

/// History: newest first, limited. `[test, c3, c2, c1]` are the changes, newest first.
async fn history(store: &dyn StateStore, [test, c3, c2, c1]: [&Change; 4]) {
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
}

/// A new holder resumes what the old one had in flight; the old one can neither claim nor
/// mark.
async fn takeover(
    store: &dyn StateStore,
    lease: Lease,
    a: &Holder,
    b: &Holder,
    retry_at: SystemTime,
) {
    // A new holder resumes what the old one had in flight.
    let inflight = store.claim_deliveries(&lease, retry_at, 2).await.unwrap();
    assert_eq!(inflight.len(), 2);
    let takeover_at = retry_at + Duration::from_secs(60);
    let lease = lapse(store, a, lease).await;
    let lease2 = store
        .acquire_lease(b, Duration::from_secs(3600))
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

    store.release_lease(&lease2).await.unwrap();
}

/// The desired state, and each instance's status row, round-trip.
async fn control_and_status(store: &dyn StateStore, a: &Holder, b: &Holder) {
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
}
