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
use std::time::{Duration, SystemTime};

use crate::address::Family;
use crate::recipients::{Recipient, Recipients};
use crate::store::{
    ChangeKind, DeliveryState, DeliveryUpdate, DesiredState, Holder, InstanceStatus, NewChange,
    RunState, SourceStatus, StateStore, StoreError,
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
        store.lease(t(0)).await.unwrap().is_none(),
        "a new store has no lease"
    );

    // Lease: acquire, exclusive, renew keeps the fence, expiry hands over with a higher fence.
    let la = store
        .acquire_lease(&a, t(0), ttl)
        .await
        .unwrap()
        .expect("a free lease is acquired");
    assert_eq!(la.holder, a);
    assert_eq!(la.expires_at, t(30));
    assert!(
        store.acquire_lease(&b, t(10), ttl).await.unwrap().is_none(),
        "a valid lease is exclusive"
    );
    let la2 = store
        .acquire_lease(&a, t(20), ttl)
        .await
        .unwrap()
        .expect("the holder renews");
    assert_eq!(la2.fence, la.fence, "renewal keeps the fence");
    assert_eq!(la2.expires_at, t(50), "renewal extends the lease");
    assert_eq!(
        store.lease(t(25)).await.unwrap().map(|l| l.holder),
        Some(a.clone())
    );
    assert!(
        store.lease(t(50)).await.unwrap().is_none(),
        "a lease is invalid at its expiry"
    );
    let lb = store
        .acquire_lease(&b, t(50), ttl)
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert!(lb.fence > la.fence, "a new holder gets a higher fence");
    assert!(
        store.acquire_lease(&a, t(55), ttl).await.unwrap().is_none(),
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
        store.lease(t(56)).await.unwrap().is_some(),
        "releasing someone else's lease does nothing"
    );
    store.release_lease(&lb).await.unwrap();
    assert!(
        store.lease(t(56)).await.unwrap().is_none(),
        "release frees the lease"
    );
    let lease = store
        .acquire_lease(&a, t(60), Duration::from_secs(3600))
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
    store
        .finish_delivery(&lease, now, claimed[0].id, DeliveryUpdate::Sent)
        .await
        .unwrap();
    let retry_at = now + Duration::from_secs(30);
    store
        .finish_delivery(
            &lease,
            now,
            claimed[1].id,
            DeliveryUpdate::Retry {
                at: retry_at,
                error: "451 busy".into(),
            },
        )
        .await
        .unwrap();
    store
        .finish_delivery(
            &lease,
            now,
            rest[0].id,
            DeliveryUpdate::Failed {
                error: "550 no such user".into(),
            },
        )
        .await
        .unwrap();
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
    let err = store
        .finish_delivery(&lease, now, sent.id, DeliveryUpdate::Sent)
        .await
        .expect_err("not in flight");
    assert!(
        matches!(err, StoreError::LeaseLost),
        "finishing a delivery not in flight is refused, got {err:?}"
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
    store
        .finish_delivery(
            &lease,
            retry_at,
            again[0].id,
            DeliveryUpdate::Retry {
                at: retry_at,
                error: "x".into(),
            },
        )
        .await
        .unwrap();
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
    let takeover_at = lease.expires_at;
    let lease2 = store
        .acquire_lease(&b, takeover_at, ttl)
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
        store
            .finish_delivery(&lease, takeover_at, inflight[0].id, DeliveryUpdate::Sent)
            .await
            .is_err(),
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
