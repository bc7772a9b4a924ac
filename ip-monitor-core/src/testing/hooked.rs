//! [`Hooked`]: a store that lets a rule act around each call another store answers — stall
//! one, count them — without writing the whole trait out again.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::address::Family;
use crate::recipients::Recipient;
use crate::store::{
    Change, ChangeOutcome, CurrentAddress, Delivery, DeliveryCounts, DeliveryResult, DesiredState,
    Holder, InstanceStatus, Lease, NewChange, Recorded, StateStore, StoreError,
};

/// What a rule does around the calls of a [`Hooked`] store, named by the trait method's
/// name (`"acquire_lease"`, `"instances"`).
#[async_trait::async_trait]
pub(super) trait Hook: Send + Sync + fmt::Debug {
    /// Before the call reaches the store.
    async fn before(&self, _call: &'static str) {}
    /// After it answered; `something` is false for a call that returned an empty list.
    fn after(&self, _call: &'static str, _something: bool) {}
}

/// The store `inner`, with `hook` around every call.
#[derive(Debug)]
pub(super) struct Hooked<H> {
    pub(super) inner: Arc<dyn StateStore>,
    pub(super) hook: H,
}

impl<H: Hook> Hooked<H> {
    async fn around<T>(
        &self,
        call: &'static str,
        answer: impl Future<Output = Result<T, StoreError>>,
        something: impl FnOnce(&T) -> bool,
    ) -> Result<T, StoreError> {
        self.hook.before(call).await;
        let answer = answer.await;
        self.hook.after(call, answer.as_ref().is_ok_and(something));
        answer
    }
}

fn any<T>(_: &T) -> bool {
    true
}

#[async_trait::async_trait]
impl<H: Hook> StateStore for Hooked<H> {
    async fn current(&self, family: Family) -> Result<Option<CurrentAddress>, StoreError> {
        self.around("current", self.inner.current(family), any)
            .await
    }
    async fn record_change(
        &self,
        lease: &Lease,
        now: SystemTime,
        change: NewChange,
        recipients: &[Recipient],
    ) -> Result<Change, StoreError> {
        let answer = self.inner.record_change(lease, now, change, recipients);
        self.around("record_change", answer, any).await
    }
    async fn add_recipients(
        &self,
        lease: &Lease,
        now: SystemTime,
        change_id: i64,
        recipients: &[Recipient],
        only_if_announced: bool,
    ) -> Result<u64, StoreError> {
        let answer =
            self.inner
                .add_recipients(lease, now, change_id, recipients, only_if_announced);
        self.around("add_recipients", answer, any).await
    }
    async fn history(&self, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.around("history", self.inner.history(limit), |v| !v.is_empty())
            .await
    }
    async fn claim_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let answer = self.inner.claim_deliveries(lease, now, limit);
        self.around("claim_deliveries", answer, |v| !v.is_empty())
            .await
    }
    async fn finish_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        results: &[DeliveryResult],
    ) -> Result<Vec<Recorded>, StoreError> {
        let answer = self.inner.finish_deliveries(lease, now, results);
        self.around("finish_deliveries", answer, any).await
    }
    async fn retry_failed(&self, lease: &Lease, now: SystemTime) -> Result<u64, StoreError> {
        self.around("retry_failed", self.inner.retry_failed(lease, now), any)
            .await
    }
    async fn next_delivery_at(&self, lease: &Lease) -> Result<Option<SystemTime>, StoreError> {
        self.around("next_delivery_at", self.inner.next_delivery_at(lease), any)
            .await
    }
    async fn deliveries(&self, change_id: i64) -> Result<Vec<Delivery>, StoreError> {
        self.around("deliveries", self.inner.deliveries(change_id), |v| {
            !v.is_empty()
        })
        .await
    }
    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.around("delivery_counts", self.inner.delivery_counts(), any)
            .await
    }
    async fn outcome(&self, change_id: i64) -> Result<ChangeOutcome, StoreError> {
        self.around("outcome", self.inner.outcome(change_id), any)
            .await
    }
    async fn acquire_lease(
        &self,
        holder: &Holder,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.around("acquire_lease", self.inner.acquire_lease(holder, ttl), any)
            .await
    }
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.around("release_lease", self.inner.release_lease(lease), any)
            .await
    }
    async fn lease(&self) -> Result<Option<Lease>, StoreError> {
        self.around("lease", self.inner.lease(), any).await
    }
    async fn put_instance(&self, status: &InstanceStatus) -> Result<(), StoreError> {
        self.around("put_instance", self.inner.put_instance(status), any)
            .await
    }
    async fn instances(&self) -> Result<Vec<InstanceStatus>, StoreError> {
        self.around("instances", self.inner.instances(), |v| !v.is_empty())
            .await
    }
    async fn desired_state(&self) -> Result<DesiredState, StoreError> {
        self.around("desired_state", self.inner.desired_state(), any)
            .await
    }
    async fn set_desired_state(&self, state: DesiredState) -> Result<(), StoreError> {
        self.around(
            "set_desired_state",
            self.inner.set_desired_state(state),
            any,
        )
        .await
    }
}
