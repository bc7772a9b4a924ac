//! Durable state: the [`StateStore`] trait, its records by concern (changes and the outbox,
//! the lease, the control and status rows), and [`MemoryStore`].

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::address::Family;
use crate::recipients::Recipient;

mod error;
mod lease;
mod memory;
mod records;
mod status;

pub use error::StoreError;
pub use lease::{Holder, Lease};
pub use memory::MemoryStore;
pub use records::{
    Change, ChangeKind, ChangeOutcome, CurrentAddress, Delivery, DeliveryCounts, DeliveryResult,
    DeliveryState, DeliveryUpdate, NewChange, Recorded,
};
pub use status::{DesiredState, InstanceStatus, RunState, SourceStatus};

/// Durable state shared by every process using the same database.
///
/// Operations that act (record, claim, finish) take the caller's [`Lease`] and fail with
/// [`StoreError::LeaseLost`] unless it is still the valid lease — checked in the same
/// transaction as the write, against the store's own clock (the database server's `now()`,
/// never the caller's, so hosts with skewed clocks cannot both hold it). The `now` passed to
/// them stamps records and schedules deliveries. Run
/// [`testing::store_conformance`](crate::testing) on an implementation (feature `testing`).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait StateStore: Send + Sync + Debug {
    /// The current address of `family`.
    async fn current(&self, family: Family) -> Result<Option<CurrentAddress>, StoreError>;

    /// Atomically: record the change, make it current (kind `Change`), supersede older
    /// changes' pending and in-flight deliveries of the same family (kind `Change`), and
    /// create one pending delivery per distinct recipient, due at `now`.
    async fn record_change(
        &self,
        lease: &Lease,
        now: SystemTime,
        change: NewChange,
        recipients: &[Recipient],
    ) -> Result<Change, StoreError>;

    /// Under `lease`, tell the current address to recipients who became active after it was
    /// recorded: for change `change_id`, while it is still its family's current change,
    /// create a pending delivery due at `now` for each distinct recipient in `recipients`
    /// who has none for that change yet — in any state: a sent, failed or superseded
    /// delivery counts as told — and add them to the change's count. With
    /// `only_if_announced`, a change without any delivery (recorded without telling anyone,
    /// as the first address is when `notify_on_first` is off) gets none. Returns how many
    /// deliveries were created.
    async fn add_recipients(
        &self,
        lease: &Lease,
        now: SystemTime,
        change_id: i64,
        recipients: &[Recipient],
        only_if_announced: bool,
    ) -> Result<u64, StoreError>;

    /// Recorded changes, newest first.
    async fn history(&self, limit: usize) -> Result<Vec<Change>, StoreError>;

    /// Claim up to `limit` due deliveries: pending ones due by `now`, and in-flight ones
    /// claimed under an older fence (their holder died). Marks them in flight under this
    /// lease's fence and counts the attempt.
    async fn claim_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Record the results of attempts, all in one transaction under `lease` (fails with
    /// [`StoreError::LeaseLost`] as a whole if the lease is no longer valid, writing nothing).
    ///
    /// Each result is written only while its delivery is still in flight under the fence it
    /// answers ([`DeliveryResult::fence`]), which need not be `lease`'s fence: a holder whose
    /// lease lapsed and was acquired again records what finished in between. Otherwise the
    /// result is [`Recorded::Stale`] and nothing is written for it. A delivery superseded
    /// while in flight stays superseded unless it was sent. One entry per result, in order.
    async fn finish_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        results: &[DeliveryResult],
    ) -> Result<Vec<Recorded>, StoreError>;

    /// Record `results` as [`finish_deliveries`](Self::finish_deliveries) does, then claim up
    /// to `limit` due deliveries as [`claim_deliveries`](Self::claim_deliveries) does — the
    /// outbox's one round trip per round. The default makes the two calls; a store that can
    /// do both in one transaction (one commit) should.
    async fn finish_and_claim(
        &self,
        lease: &Lease,
        now: SystemTime,
        results: &[DeliveryResult],
        limit: usize,
    ) -> Result<(Vec<Recorded>, Vec<Delivery>), StoreError> {
        let recorded = if results.is_empty() {
            Vec::new()
        } else {
            self.finish_deliveries(lease, now, results).await?
        };
        let claimed = if limit == 0 {
            Vec::new()
        } else {
            self.claim_deliveries(lease, now, limit).await?
        };
        Ok((recorded, claimed))
    }

    /// Put the failed deliveries of the latest change of each family back in the queue, due
    /// at `now` with their attempts reset (after the operator fixed what made them fail).
    /// Returns how many were requeued.
    async fn retry_failed(&self, lease: &Lease, now: SystemTime) -> Result<u64, StoreError>;

    /// When the next delivery is due for this lease holder (`None`: nothing to do).
    async fn next_delivery_at(&self, lease: &Lease) -> Result<Option<SystemTime>, StoreError>;

    /// The deliveries of a change, by id.
    async fn deliveries(&self, change_id: i64) -> Result<Vec<Delivery>, StoreError>;

    /// Deliveries per state.
    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError>;

    /// Where the deliveries of a change stand. The default reads all of them with
    /// [`deliveries`](Self::deliveries); a store should count them where they are and read
    /// only the unsent ones (a change has a row per recipient).
    async fn outcome(&self, change_id: i64) -> Result<ChangeOutcome, StoreError> {
        Ok(ChangeOutcome::of(self.deliveries(change_id).await?))
    }

    /// Acquire the lease for `ttl` from now on the store's clock, or renew it when `holder`
    /// has it. A new acquisition (free or expired lease) gets a fence higher than any before,
    /// also when the same holder acquires again after its lease lapsed; a renewal of a still
    /// valid lease keeps the fence. `None` when another holder's lease is still valid.
    async fn acquire_lease(
        &self,
        holder: &Holder,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError>;

    /// Give the lease up, if it is still this one.
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError>;

    /// The lease valid now on the store's clock, if any.
    async fn lease(&self) -> Result<Option<Lease>, StoreError>;

    /// Write an instance's status row (insert or replace).
    async fn put_instance(&self, status: &InstanceStatus) -> Result<(), StoreError>;

    /// Every instance's status row, most recent heartbeat first.
    async fn instances(&self) -> Result<Vec<InstanceStatus>, StoreError>;

    /// The desired state (`Running` when never set).
    async fn desired_state(&self) -> Result<DesiredState, StoreError>;

    /// Set the desired state.
    async fn set_desired_state(&self, state: DesiredState) -> Result<(), StoreError>;

    /// Write an instance's status row, then read the desired state: what a running monitor
    /// does every heartbeat. The default makes the two calls; a store that can do both in
    /// one round trip should (an idle monitor's cost is mostly these round trips).
    async fn heartbeat(&self, status: &InstanceStatus) -> Result<DesiredState, StoreError> {
        self.put_instance(status).await?;
        self.desired_state().await
    }
}

// Every method is forwarded, the provided ones too: a provided method left out would fall
// back to its default through `Arc<S>` and lose the store's own (faster) implementation.
// The lint makes leaving one out a compile error under clippy.
macro_rules! forward_state_store {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<T: StateStore + ?Sized> StateStore for $ty {
            async fn current(&self, family: Family) -> Result<Option<CurrentAddress>, StoreError> {
                (**self).current(family).await
            }
            async fn record_change(
                &self,
                lease: &Lease,
                now: SystemTime,
                change: NewChange,
                recipients: &[Recipient],
            ) -> Result<Change, StoreError> {
                (**self).record_change(lease, now, change, recipients).await
            }
            async fn add_recipients(
                &self,
                lease: &Lease,
                now: SystemTime,
                change_id: i64,
                recipients: &[Recipient],
                only_if_announced: bool,
            ) -> Result<u64, StoreError> {
                (**self)
                    .add_recipients(lease, now, change_id, recipients, only_if_announced)
                    .await
            }
            async fn history(&self, limit: usize) -> Result<Vec<Change>, StoreError> {
                (**self).history(limit).await
            }
            async fn claim_deliveries(
                &self,
                lease: &Lease,
                now: SystemTime,
                limit: usize,
            ) -> Result<Vec<Delivery>, StoreError> {
                (**self).claim_deliveries(lease, now, limit).await
            }
            async fn finish_deliveries(
                &self,
                lease: &Lease,
                now: SystemTime,
                results: &[DeliveryResult],
            ) -> Result<Vec<Recorded>, StoreError> {
                (**self).finish_deliveries(lease, now, results).await
            }
            async fn finish_and_claim(
                &self,
                lease: &Lease,
                now: SystemTime,
                results: &[DeliveryResult],
                limit: usize,
            ) -> Result<(Vec<Recorded>, Vec<Delivery>), StoreError> {
                (**self).finish_and_claim(lease, now, results, limit).await
            }
            async fn retry_failed(
                &self,
                lease: &Lease,
                now: SystemTime,
            ) -> Result<u64, StoreError> {
                (**self).retry_failed(lease, now).await
            }
            async fn next_delivery_at(
                &self,
                lease: &Lease,
            ) -> Result<Option<SystemTime>, StoreError> {
                (**self).next_delivery_at(lease).await
            }
            async fn deliveries(&self, change_id: i64) -> Result<Vec<Delivery>, StoreError> {
                (**self).deliveries(change_id).await
            }
            async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
                (**self).delivery_counts().await
            }
            async fn outcome(&self, change_id: i64) -> Result<ChangeOutcome, StoreError> {
                (**self).outcome(change_id).await
            }
            async fn acquire_lease(
                &self,
                holder: &Holder,
                ttl: Duration,
            ) -> Result<Option<Lease>, StoreError> {
                (**self).acquire_lease(holder, ttl).await
            }
            async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
                (**self).release_lease(lease).await
            }
            async fn lease(&self) -> Result<Option<Lease>, StoreError> {
                (**self).lease().await
            }
            async fn put_instance(&self, status: &InstanceStatus) -> Result<(), StoreError> {
                (**self).put_instance(status).await
            }
            async fn instances(&self) -> Result<Vec<InstanceStatus>, StoreError> {
                (**self).instances().await
            }
            async fn desired_state(&self) -> Result<DesiredState, StoreError> {
                (**self).desired_state().await
            }
            async fn heartbeat(&self, status: &InstanceStatus) -> Result<DesiredState, StoreError> {
                (**self).heartbeat(status).await
            }
            async fn set_desired_state(&self, state: DesiredState) -> Result<(), StoreError> {
                (**self).set_desired_state(state).await
            }
        }
    };
}
forward_state_store!(Arc<T>);
forward_state_store!(Box<T>);
