//! The store rule for a busy route: a deferral gives the claim's attempt back.

use std::time::SystemTime;

use super::{by_id, finish};
use crate::store::{Change, Delivery, DeliveryState, DeliveryUpdate, Lease, StateStore};

/// A busy route defers `d` to `at` and gives the claim's attempt back; claimed again, it
/// counts only the real attempts.
pub(super) async fn deferral(
    store: &dyn StateStore,
    lease: &Lease,
    now: SystemTime,
    c1: &Change,
    d: &Delivery,
    at: SystemTime,
) -> Vec<Delivery> {
    finish(
        store,
        lease,
        now,
        d,
        DeliveryUpdate::Deferred {
            at,
            error: "421 4.7.0 too many connections".into(),
        },
    )
    .await;
    let deferred = by_id(d.id, &store.deliveries(c1.id).await.unwrap());
    assert_eq!(
        (deferred.state, deferred.attempts, deferred.next_attempt_at),
        (DeliveryState::Pending, d.attempts - 1, at),
        "a deferral is pending at its time and does not count an attempt"
    );
    let again = store.claim_deliveries(lease, at, 10).await.unwrap();
    assert_eq!(
        (again.len(), again[0].attempts),
        (1, d.attempts),
        "claimed again, counting only the real attempts"
    );
    again
}
