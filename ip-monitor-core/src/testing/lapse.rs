//! The lapse rule: a holder whose lease lapsed while sends were out, and took it again.

use std::time::{Duration, SystemTime};

use super::{change, holder, lapse, people, result, t};
use crate::address::Family;
use crate::store::{
    ChangeKind, Delivery, DeliveryResult, DeliveryState, DeliveryUpdate, Holder, Lease, Recorded,
    StateStore, StoreError,
};

const HOUR: Duration = Duration::from_secs(3600);

/// A holder's lease lapses while it has sends out, and it acquires the lease again: results
/// of the old fence are recorded while their rows are still in flight under it, never fail
/// the newer fence's results, and nothing is left in flight; then `retry_failed` and
/// `finish_and_claim` work, and are fenced. `store` must be empty.
pub async fn lapse_conformance(store: &dyn StateStore) {
    let a = holder("conformance-lapse");
    let lease = store
        .acquire_lease(&a, HOUR)
        .await
        .unwrap()
        .expect("a new store's lease is free");
    let now = t(100);
    let lease = sends_out_across_a_lapse(store, &a, lease, now).await;
    retries_and_batches(store, &a, lease, now).await;
}

/// Results of the old fence across a lapse. Returns the lease acquired again.
async fn sends_out_across_a_lapse(
    store: &dyn StateStore,
    a: &Holder,
    lease: Lease,
    now: SystemTime,
) -> Lease {
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
        .acquire_lease(a, HOUR)
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
    late_results(store, &lease, now, c.id, &old, &new).await;
    lease
}

/// A late result of the old fence for a row claimed again is stale: not an error, and it
/// does not touch the row; the newer fence's results then record, many in one batch, and
/// nothing is left in flight.
async fn late_results(
    store: &dyn StateStore,
    lease: &Lease,
    now: SystemTime,
    change_id: i64,
    old: &[Delivery],
    new: &[Delivery],
) {
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
        store.finish_deliveries(lease, now, &batch).await.unwrap(),
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
            .finish_deliveries(lease, now, &rest)
            .await
            .unwrap()
            .iter()
            .all(|r| *r == Recorded::Applied),
        "one batch records many results"
    );
    let ds = store.deliveries(change_id).await.unwrap();
    assert!(
        ds.iter().all(|d| d.state == DeliveryState::Sent),
        "nothing is left in flight after a lapse: {ds:?}"
    );
    assert_eq!(store.delivery_counts().await.unwrap().in_flight, 0);
}

/// `retry_failed` requeues the failures of the latest change, then [`batches`].
async fn retries_and_batches(store: &dyn StateStore, a: &Holder, lease: Lease, now: SystemTime) {
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
    batches(store, a, lease, later, c2.id).await;
    let lease = store.acquire_lease(a, HOUR).await.unwrap().unwrap();
    store.release_lease(&lease).await.unwrap();
}

/// `finish_and_claim` records one result and claims the next in one call; requeued
/// deliveries start their attempts over; both calls are fenced (the lease is let lapse).
async fn batches(
    store: &dyn StateStore,
    a: &Holder,
    lease: Lease,
    later: SystemTime,
    change_id: i64,
) {
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
            .all(|d| d.change_id == change_id && d.attempts == 1),
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
}
