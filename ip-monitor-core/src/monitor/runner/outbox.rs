//! The outbox as the runner drives it: claim due deliveries, send them under permits, record
//! their results in batches, and drain — also for the one-shot commands.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;

use super::{NOTICE_CACHE, Runner, STORE_RETRY};
use crate::address::Family;
use crate::error::Result;
use crate::monitor::{CheckReport, Event};
use crate::notice::Notice;
use crate::notify::NotifyError;
use crate::store::{
    Change, ChangeKind, Delivery, DeliveryResult, DeliveryState, DeliveryUpdate, Recorded,
    StoreError,
};

type Joined = std::result::Result<(Id, SendOutcome), JoinError>;

/// What a send task reports.
pub(super) struct SendOutcome(std::result::Result<(), NotifyError>);

/// A send in flight.
struct Sending {
    delivery: Delivery,
    /// Set when a newer change of the same family was recorded while it was out.
    superseded: Arc<AtomicBool>,
}

/// A result waiting to be recorded, with the event to emit once it is.
struct Finished {
    result: DeliveryResult,
    event: Event,
    /// A failure worth showing in the status (a transient one: mostly the relay's).
    failure: Option<String>,
}

/// Sends in flight and results not yet recorded.
#[derive(Default)]
pub(super) struct Outbox {
    tasks: JoinSet<SendOutcome>,
    sending: HashMap<Id, Sending>,
    /// Results to record in the next batch (kept across a failed commit or a lease lapse).
    finished: Vec<Finished>,
    /// When to claim and record next (`None`: when a send finishes).
    pub(super) next_pump: Option<Instant>,
}

impl Outbox {
    pub(super) fn sending(&self) -> bool {
        !self.tasks.is_empty()
    }

    pub(super) async fn join_next(&mut self) -> Option<Joined> {
        self.tasks.join_next_with_id().await
    }

    pub(super) fn pump_now(&mut self) {
        let now = Instant::now();
        self.next_pump = Some(self.next_pump.map_or(now, |t| t.min(now)));
    }

    pub(super) fn pump_due(&self) -> bool {
        self.next_pump.is_some_and(|t| t <= Instant::now())
    }

    /// Revoke the permits of sends of changes of `change`'s family older than it.
    pub(super) fn cancel_superseded(&self, change: &Change) {
        if change.kind != ChangeKind::Change {
            return;
        }
        for s in self.sending.values() {
            let d = &s.delivery;
            if d.kind == ChangeKind::Change
                && d.change_id < change.id
                && Family::of(&d.address) == change.family
            {
                s.superseded.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Whether a send claimed under a fence other than `fence` is still out.
    fn has_older_than(&self, fence: u64) -> bool {
        self.sending
            .values()
            .any(|s| s.delivery.fence != Some(fence))
    }
}

impl Runner {
    fn notice_for(
        &mut self,
        d: &Delivery,
    ) -> std::result::Result<Arc<Notice>, crate::notice::NoticeError> {
        if let Some(n) = self.notices.get(&d.change_id) {
            return Ok(Arc::clone(n));
        }
        if self.notices.len() >= NOTICE_CACHE {
            self.notices.clear();
        }
        let notice = Arc::new(Notice::new(
            d.change_id,
            d.address,
            d.url.clone(),
            d.created_at,
            d.kind == ChangeKind::Test,
        )?);
        self.notices.insert(d.change_id, Arc::clone(&notice));
        Ok(notice)
    }

    /// Record the results waiting, claim what is due into the free send slots, and plan the
    /// next round.
    pub(super) async fn pump(&mut self) {
        self.outbox.next_pump = None;
        let Some(lease) = self.lease.held().cloned() else {
            return;
        };
        if !self.record_finished().await {
            return;
        }
        // Sends of an older fence of ours are still out (the lease lapsed and was acquired
        // again): their rows look orphaned, but claiming them now would send them twice.
        // Their results come back soon (their permits lapsed) and pump again.
        if self.outbox.has_older_than(lease.fence) {
            return;
        }
        let parallelism = self.shared.config.delivery.parallelism;
        let room = parallelism.saturating_sub(self.outbox.tasks.len());
        if room == 0 {
            return; // a finishing send pumps again
        }
        let now = self.shared.clock.now();
        let claimed = match self.shared.store.claim_deliveries(&lease, now, room).await {
            Ok(c) => c,
            Err(StoreError::LeaseLost) => return self.lose_lease(),
            Err(e) => {
                self.store_error("claiming deliveries", &e);
                self.outbox.next_pump = Some(Instant::now() + STORE_RETRY);
                return;
            }
        };
        for delivery in claimed {
            self.start_send(delivery);
        }
        if self.outbox.tasks.len() >= parallelism {
            return;
        }
        match self.shared.store.next_delivery_at(&lease).await {
            Ok(Some(at)) => {
                // Never sooner than a moment from now: due work the claim did not return is
                // either in flight here or just being written.
                let floor = Instant::now() + Duration::from_millis(20);
                self.outbox.next_pump = Some(self.instant_at(at).max(floor));
            }
            Ok(None) => {}
            Err(e) => {
                self.store_error("reading the outbox", &e);
                self.outbox.next_pump = Some(Instant::now() + STORE_RETRY);
            }
        }
    }

    fn start_send(&mut self, delivery: Delivery) {
        let Some(fence) = delivery.fence else {
            return; // claimed deliveries always carry their fence
        };
        let notice = match self.notice_for(&delivery) {
            Ok(n) => n,
            Err(e) => {
                let error = format!("cannot build the notice: {e}");
                tracing::error!(id = delivery.id, "{error}");
                let event = Event::DeliveryFailed {
                    id: delivery.id,
                    email: delivery.recipient.email().to_owned(),
                    error: error.clone(),
                };
                self.outbox.finished.push(Finished {
                    result: DeliveryResult {
                        id: delivery.id,
                        fence,
                        update: DeliveryUpdate::Failed { error },
                    },
                    event,
                    failure: None,
                });
                self.outbox.pump_now();
                return;
            }
        };
        let superseded = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&superseded);
        let permit = self
            .lease
            .permit(fence, move || !flag.load(Ordering::SeqCst));
        let notifier = Arc::clone(&self.shared.notifier);
        let recipient = delivery.recipient.clone();
        let handle = self.outbox.tasks.spawn(async move {
            SendOutcome(notifier.notify_within(&notice, &recipient, &permit).await)
        });
        self.outbox.sending.insert(
            handle.id(),
            Sending {
                delivery,
                superseded,
            },
        );
    }

    /// Take `first` and every other send that has finished by now, record them in one batch,
    /// and pump again when slots freed up.
    pub(super) async fn finish_sends(&mut self, first: Joined) {
        self.collect(first);
        while let Some(joined) = self.outbox.tasks.try_join_next_with_id() {
            self.collect(joined);
        }
        if self.lease.held().is_none() {
            return;
        }
        self.record_finished().await;
        let parallelism = self.shared.config.delivery.parallelism;
        let room = parallelism.saturating_sub(self.outbox.tasks.len());
        if room >= (parallelism / 4).max(1) || self.outbox.tasks.is_empty() {
            self.outbox.pump_now();
        }
    }

    /// Turn a finished send into the result to record.
    fn collect(&mut self, joined: Joined) {
        let (id, outcome) = match joined {
            Ok((id, SendOutcome(outcome))) => (id, outcome),
            Err(e) if e.is_cancelled() => {
                self.outbox.sending.remove(&e.id());
                return; // abandoned at shutdown: the row is an orphan for the next holder
            }
            Err(e) => (e.id(), Err(NotifyError::transient("the notifier panicked"))),
        };
        let Some(Sending { delivery, .. }) = self.outbox.sending.remove(&id) else {
            return;
        };
        let Some(fence) = delivery.fence else {
            return;
        };
        let now = self.shared.clock.now();
        let email = delivery.recipient.email().to_owned();
        let transient = match &outcome {
            Err(e) if e.is_transient() => Some(e.to_string()),
            _ => None,
        };
        let (update, event) = match outcome {
            Ok(()) => {
                tracing::info!(id = delivery.id, %email, "notice delivered");
                (
                    DeliveryUpdate::Sent,
                    Event::DeliverySent {
                        id: delivery.id,
                        email,
                    },
                )
            }
            Err(e) if e.is_withheld() => {
                // Nothing left: back to the queue, due now (kept superseded if it is).
                tracing::info!(id = delivery.id, %email, "not handed over: {e}");
                let error = e.to_string();
                (
                    DeliveryUpdate::Retry {
                        at: now,
                        error: error.clone(),
                    },
                    Event::DeliveryRetry {
                        id: delivery.id,
                        email,
                        at: now,
                        error,
                    },
                )
            }
            Err(e) => {
                let update = self
                    .shared
                    .config
                    .delivery
                    .after_failure(&delivery, now, &e);
                let event = match &update {
                    DeliveryUpdate::Retry { at, error } => {
                        tracing::warn!(id = delivery.id, %email, %error, "delivery failed; will retry");
                        Event::DeliveryRetry {
                            id: delivery.id,
                            email,
                            at: *at,
                            error: error.clone(),
                        }
                    }
                    other => {
                        let error = match other {
                            DeliveryUpdate::Failed { error } => error.clone(),
                            _ => e.to_string(),
                        };
                        tracing::error!(id = delivery.id, %email, %error, "delivery failed for good");
                        Event::DeliveryFailed {
                            id: delivery.id,
                            email,
                            error,
                        }
                    }
                };
                (update, event)
            }
        };
        self.outbox.finished.push(Finished {
            result: DeliveryResult {
                id: delivery.id,
                fence,
                update,
            },
            event,
            failure: transient,
        });
    }

    /// Record every finished result in one transaction. `false` when they could not be
    /// recorded now (they are kept and tried again).
    async fn record_finished(&mut self) -> bool {
        if self.outbox.finished.is_empty() {
            return true;
        }
        let Some(lease) = self.lease.held().cloned() else {
            return false;
        };
        let results: Vec<DeliveryResult> = self
            .outbox
            .finished
            .iter()
            .map(|f| f.result.clone())
            .collect();
        let now = self.shared.clock.now();
        match self
            .shared
            .store
            .finish_deliveries(&lease, now, &results)
            .await
        {
            Ok(recorded) => {
                let before = self.status.delivery_error.clone();
                for (f, r) in std::mem::take(&mut self.outbox.finished)
                    .into_iter()
                    .zip(recorded)
                {
                    match r {
                        Recorded::Applied => {
                            if f.result.update == DeliveryUpdate::Sent {
                                self.status.delivery_error = None;
                            } else if f.failure.is_some() {
                                self.status.delivery_error = f.failure;
                            }
                            self.emit(f.event)
                        }
                        Recorded::Stale => tracing::debug!(
                            id = f.result.id,
                            fence = f.result.fence,
                            "result of a claim taken over since; not recorded"
                        ),
                    }
                }
                if self.status.delivery_error != before {
                    self.publish();
                }
                true
            }
            Err(StoreError::LeaseLost) => {
                self.lose_lease();
                false
            }
            Err(e) => {
                self.store_error("recording delivery results", &e);
                self.outbox.next_pump = Some(Instant::now() + STORE_RETRY);
                false
            }
        }
    }

    /// Wait for sends in flight, for at most the grace period, and record their results.
    pub(super) async fn finish_inflight(&mut self) {
        let deadline = Instant::now() + self.shared.config.shutdown_grace;
        while !self.outbox.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.outbox.tasks.join_next_with_id()).await {
                Ok(Some(joined)) => self.collect(joined),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        left = self.outbox.tasks.len(),
                        "grace period over; abandoning sends in flight"
                    );
                    self.outbox.tasks.abort_all();
                    self.outbox.sending.clear();
                    break;
                }
            }
        }
        self.record_finished().await;
    }

    // ---- one-shot work ----------------------------------------------------------------------

    /// One full check in this process: record a change if there is one, send what is due,
    /// and return once nothing more is due now (deliveries waiting for a retry stay in the
    /// outbox for the running monitor). The check is written to this instance's status row.
    pub(in crate::monitor) async fn check_once(mut self) -> Result<Vec<CheckReport>> {
        self.lease_for_once().await?;
        let reports = self.full_check().await;
        self.drain_due().await;
        self.write_final_status().await;
        Ok(reports)
    }

    /// Requeue the failed deliveries of the latest change of each family, fenced by the
    /// lease, and send them; return how many were requeued once nothing more is due now.
    pub(in crate::monitor) async fn retry_failed(mut self) -> Result<u64> {
        self.lease_for_once().await?;
        let lease = self.lease.held().cloned();
        let requeued = match lease {
            Some(lease) => {
                let now = self.shared.clock.now();
                match self.shared.store.retry_failed(&lease, now).await {
                    Ok(n) => n,
                    Err(e) => {
                        self.release().await;
                        return Err(e.into());
                    }
                }
            }
            None => 0,
        };
        tracing::info!(requeued, "failed deliveries requeued");
        self.drain_due().await;
        Ok(requeued)
    }

    /// Send what is due now under the one-shot lease, until nothing more is (deliveries
    /// waiting for a retry stay in the outbox for the running monitor); then release it.
    async fn drain_due(&mut self) {
        self.outbox.pump_now();
        while self.lease.held().is_some() {
            if self.outbox.pump_due() {
                self.pump().await;
            }
            if self.outbox.tasks.is_empty() && !self.outbox.pump_due() {
                break;
            }
            self.wait_round().await;
        }
        self.finish_inflight().await;
        self.release().await;
    }

    /// Record a test notice for `address` and deliver it to every active recipient through
    /// the outbox, retries included; return when each delivery is sent or failed.
    pub(in crate::monitor) async fn send_test(
        mut self,
        address: IpAddr,
    ) -> Result<(Change, Vec<Delivery>)> {
        self.lease_for_once().await?;
        let recipients = self.active_recipients().await?;
        let change = self
            .record(
                Family::of(&address),
                address,
                None,
                ChangeKind::Test,
                &recipients,
            )
            .await?;
        self.emit(Event::Changed(change.clone()));
        self.outbox.pump_now();
        let store = Arc::clone(&self.shared.store);
        let id = change.id;
        while self.lease.held().is_some() {
            if self.outbox.pump_due() {
                self.pump().await;
            }
            // With nothing in flight, read the outbox: done when no delivery of the test is left.
            if self.outbox.tasks.is_empty()
                && self.outbox.finished.is_empty()
                && !store
                    .deliveries(id)
                    .await?
                    .iter()
                    .any(|d| matches!(d.state, DeliveryState::Pending | DeliveryState::InFlight))
            {
                break;
            }
            self.wait_round().await;
        }
        self.finish_inflight().await;
        self.release().await;
        let deliveries = store.deliveries(id).await?;
        Ok((change, deliveries))
    }

    /// Wait for the next thing to happen (a send finishing, a retry falling due, the
    /// heartbeat) and handle it; the lease is renewed on the heartbeat.
    async fn wait_round(&mut self) {
        let wake = self
            .next_heartbeat
            .min(self.outbox.next_pump.unwrap_or(self.next_heartbeat));
        tokio::select! {
            Some(joined) = self.outbox.tasks.join_next_with_id(), if !self.outbox.tasks.is_empty() => {
                self.finish_sends(joined).await;
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        if Instant::now() >= self.next_heartbeat {
            self.next_heartbeat = Instant::now() + self.shared.config.heartbeat;
            self.follow_lease();
        }
    }
}
