//! The outbox as the runner drives it: deliveries are claimed ahead of the free send slots,
//! sent under permits, and their results recorded in batches — one store transaction records
//! everything that finished since the last one and claims the next deliveries, while the
//! sends go on. Also the drain loop of the one-shot commands.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;

use super::{NOTICE_CACHE, Runner, STORE_RETRY};
use crate::address::Family;
use crate::monitor::Event;
use crate::notice::Notice;
use crate::notify::NotifyError;
use crate::store::{
    Change, ChangeKind, Delivery, DeliveryResult, DeliveryUpdate, Recorded, StoreError,
};

type Joined = std::result::Result<(Id, SendOutcome), JoinError>;

/// What a send task reports.
pub(super) struct SendOutcome(std::result::Result<Option<String>, NotifyError>);

/// What a store write reports: the results' fate and the deliveries claimed.
pub(super) type Written = std::result::Result<(Vec<Recorded>, Vec<Delivery>), StoreError>;

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

/// The store write under way.
pub(super) struct Write {
    task: JoinHandle<Written>,
    results: Vec<Finished>,
    /// How many deliveries it asked for.
    limit: usize,
}

/// Sends in flight, deliveries claimed ahead, and results not yet recorded.
#[derive(Default)]
pub(super) struct Outbox {
    pub(super) tasks: JoinSet<SendOutcome>,
    sending: HashMap<Id, Sending>,
    /// Claimed, not started yet: a slot that frees up starts the next one at once.
    queue: VecDeque<Delivery>,
    /// Results for the next write (kept across a failed commit or a lease lapse).
    finished: Vec<Finished>,
    pub(super) write: Option<Write>,
    /// The last claim returned less than it asked for: nothing more is due now.
    drained: bool,
    /// When to look at the outbox again (a retry falling due, a store error).
    pub(super) next_pump: Option<Instant>,
}

impl Outbox {
    pub(super) fn sending(&self) -> bool {
        !self.tasks.is_empty()
    }

    pub(super) fn writing(&self) -> bool {
        self.write.is_some()
    }

    pub(super) fn pump_now(&mut self) {
        self.drained = false;
        let now = Instant::now();
        self.next_pump = Some(self.next_pump.map_or(now, |t| t.min(now)));
    }

    pub(super) fn pump_due(&self) -> bool {
        self.next_pump.is_some_and(|t| t <= Instant::now())
    }

    /// Nothing out, nothing queued, nothing to record, nothing due now.
    pub(super) fn idle(&self) -> bool {
        self.tasks.is_empty()
            && self.queue.is_empty()
            && self.finished.is_empty()
            && self.write.is_none()
            && self.drained
            && !self.pump_due()
    }

    /// Revoke the permits of sends of changes of `change`'s family older than it, and drop
    /// such deliveries from the queue (the store superseded them).
    pub(super) fn cancel_superseded(&mut self, change: &Change) {
        if change.kind != ChangeKind::Change {
            return;
        }
        let stale = |d: &Delivery| {
            d.kind == ChangeKind::Change
                && d.change_id < change.id
                && Family::of(&d.address) == change.family
        };
        for s in self.sending.values() {
            if stale(&s.delivery) {
                s.superseded.store(true, Ordering::SeqCst);
            }
        }
        self.queue.retain(|d| !stale(d));
    }

    /// Messages handed over whose `Sent` is not committed yet.
    fn unrecorded_sent(&self) -> usize {
        let sent = |f: &&Finished| f.result.update == DeliveryUpdate::Sent;
        self.finished.iter().filter(sent).count()
            + self
                .write
                .as_ref()
                .map_or(0, |w| w.results.iter().filter(sent).count())
    }

    /// The lease is gone: what was claimed ahead is an orphan for the next holder.
    pub(super) fn lost_lease(&mut self) {
        self.queue.clear();
        self.next_pump = None;
    }

    /// Whether a send claimed under a fence other than `fence` is still out.
    fn has_older_than(&self, fence: u64) -> bool {
        self.sending
            .values()
            .any(|s| s.delivery.fence != Some(fence))
    }
}

/// Messages handed over but not yet recorded sent, per send slot: the bound on what a crash
/// repeats is this times `parallelism`. Measured at 2,000 recipients on a durable
/// PostgreSQL (the binary, 2 cores): 1 gives 1,600-2,200 msg/s, 2 about 7,400, 4 about
/// 9,200, 6 no more; with no bound at all a crash during a slow commit could repeat any
/// number of messages.
const UNRECORDED_PER_SLOT: usize = 4;

/// Deliveries claimed (out or queued) per send slot: a slot that frees up starts the next
/// send without waiting for a claim. Claimed rows that were not sent are claimed again after
/// a crash, not sent twice. 2 gave about 8,000 msg/s in the measurement above, 4 about 9,200.
const CLAIMED_PER_SLOT: usize = 4;

/// The store write under way, once it ends (pending forever when there is none). A function
/// of the field, so a `select!` can wait on it beside the send tasks.
pub(super) async fn written(write: &mut Option<Write>) -> std::result::Result<Written, JoinError> {
    match write {
        Some(w) => (&mut w.task).await,
        None => std::future::pending().await,
    }
}

impl Runner {
    /// Keep the notice of a change just recorded, with what the deliveries' rows do not
    /// hold (the previous address).
    pub(super) fn remember_notice(&mut self, change: &Change) {
        if self.notices.len() >= NOTICE_CACHE {
            self.notices.clear();
        }
        let notice = Notice::new(
            change.id,
            change.address,
            change.url.clone(),
            change.detected_at,
            change.kind == ChangeKind::Test,
        );
        if let Ok(notice) = notice {
            self.notices
                .insert(change.id, Arc::new(notice.with_previous(change.previous)));
        }
    }

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

    /// Look at the outbox now: record what finished, claim what is due.
    pub(super) async fn pump(&mut self) {
        self.outbox.next_pump = None;
        self.outbox.drained = false;
        self.advance().await;
    }

    /// Start queued deliveries in the free send slots: at most `parallelism` sends out, and
    /// at most [`UNRECORDED_PER_SLOT`] `× parallelism` messages handed over whose `Sent` is
    /// not committed yet (the sends out, the results waiting for the next batch and the batch
    /// being committed). A crash repeats at most that many messages however the commits and
    /// the sends overlap.
    fn fill_slots(&mut self) {
        let Some(fence) = self.lease.held().map(|l| l.fence) else {
            return;
        };
        let parallelism = self.shared.config.delivery.parallelism;
        while self.outbox.tasks.len() < parallelism
            && self.outbox.tasks.len() + self.outbox.unrecorded_sent()
                < UNRECORDED_PER_SLOT * parallelism
        {
            let Some(delivery) = self.outbox.queue.pop_front() else {
                break;
            };
            if delivery.fence == Some(fence) {
                self.start_send(delivery);
            }
            // Claimed under an older fence: an orphan now, claimed again in its turn.
        }
    }

    /// Start a store write when there are results to record or room to claim into, and none
    /// is under way: it records every result that finished since the last one and claims
    /// up to [`CLAIMED_PER_SLOT`] `× parallelism` deliveries out or queued, in one
    /// transaction.
    fn write_if_needed(&mut self) {
        if self.outbox.write.is_some() {
            return;
        }
        let Some(lease) = self.lease.held().cloned() else {
            return;
        };
        let parallelism = self.shared.config.delivery.parallelism;
        let want = CLAIMED_PER_SLOT * parallelism;
        let have = self.outbox.tasks.len() + self.outbox.queue.len();
        // Sends of an older fence of ours are still out (the lease lapsed and was acquired
        // again): their rows look orphaned, but claiming them now would send them twice.
        let limit = if self.outbox.drained || self.outbox.has_older_than(lease.fence) {
            0
        } else {
            want.saturating_sub(have)
        };
        if self.outbox.finished.is_empty() && limit == 0 {
            return;
        }
        let results = std::mem::take(&mut self.outbox.finished);
        let batch: Vec<DeliveryResult> = results.iter().map(|f| f.result.clone()).collect();
        let store = Arc::clone(&self.shared.store);
        let now = self.shared.clock.now();
        let task =
            tokio::spawn(async move { store.finish_and_claim(&lease, now, &batch, limit).await });
        self.outbox.write = Some(Write {
            task,
            results,
            limit,
        });
    }

    /// The store write ended: emit what was recorded, queue what was claimed, go on.
    pub(super) async fn write_done(&mut self, written: std::result::Result<Written, JoinError>) {
        let Some(Write { results, limit, .. }) = self.outbox.write.take() else {
            return;
        };
        let written = written.unwrap_or_else(|e| Err(StoreError::backend(e)));
        match written {
            Ok((recorded, claimed)) => {
                self.recorded(results, recorded);
                if claimed.len() < limit {
                    self.outbox.drained = true;
                }
                self.outbox.queue.extend(claimed);
            }
            Err(e) => {
                // Nothing was written: the results go into the next write.
                let mut results = results;
                results.append(&mut self.outbox.finished);
                self.outbox.finished = results;
                if matches!(e, StoreError::LeaseLost) {
                    self.lose_lease();
                } else {
                    self.store_error("recording delivery results", e);
                    self.outbox.next_pump = Some(Instant::now() + STORE_RETRY);
                }
                return;
            }
        }
        self.advance().await;
    }

    /// Emit the events of the results that were written, after the status says what they
    /// changed (a subscriber that reads the status on an event sees it).
    fn recorded(&mut self, results: Vec<Finished>, recorded: Vec<Recorded>) {
        let before = self.status.delivery_error.clone();
        let mut routed = false;
        let mut events = Vec::with_capacity(results.len());
        for (f, r) in results.into_iter().zip(recorded) {
            match r {
                Recorded::Applied => {
                    if f.result.update == DeliveryUpdate::Sent {
                        self.status.delivery_error = None;
                    } else if f.failure.is_some() {
                        self.status.delivery_error = f.failure;
                    }
                    if let Event::DeliverySent { via: Some(via), .. } = &f.event {
                        *self.status.sent_via.entry(via.clone()).or_default() += 1;
                        routed = true;
                    }
                    events.push(f.event);
                }
                Recorded::Stale => tracing::debug!(
                    id = f.result.id,
                    fence = f.result.fence,
                    "result of a claim taken over since; not recorded"
                ),
            }
        }
        if routed || self.status.delivery_error != before {
            self.publish();
        }
        for event in events {
            self.emit(event);
        }
    }

    /// Start what can start in the free slots, hand what finished to a store write, and
    /// once the outbox has gone quiet, plan when to look at it again.
    async fn advance(&mut self) {
        self.fill_slots();
        self.write_if_needed();
        self.plan_next().await;
    }

    /// With nothing out, nothing queued and nothing being written: when is the next delivery
    /// due (a retry)?
    async fn plan_next(&mut self) {
        let quiet = self.outbox.tasks.is_empty()
            && self.outbox.write.is_none()
            && self.outbox.queue.is_empty()
            && self.outbox.drained;
        if !quiet {
            return;
        }
        let Some(lease) = self.lease.held().cloned() else {
            return;
        };
        match self.shared.store.next_delivery_at(&lease).await {
            Ok(Some(at)) => {
                // Never sooner than a moment from now: due work the claim did not return is
                // being written by someone else or was just claimed.
                let floor = Instant::now() + Duration::from_millis(20);
                let at = self.instant_at(at).max(floor);
                self.outbox.next_pump = Some(self.outbox.next_pump.map_or(at, |t| t.min(at)));
            }
            Ok(None) => {}
            Err(e) => {
                self.store_error("reading the outbox", e);
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
            SendOutcome(
                notifier
                    .send(&notice, &recipient, &permit)
                    .await
                    .map(|sent| sent.route),
            )
        });
        self.outbox.sending.insert(
            handle.id(),
            Sending {
                delivery,
                superseded,
            },
        );
    }

    /// Take `first` and every other send that has finished by now, start queued deliveries in
    /// the freed slots, and hand the results to a store write.
    pub(super) async fn finish_sends(&mut self, first: Joined) {
        self.collect(first);
        while let Some(joined) = self.outbox.tasks.try_join_next_with_id() {
            self.collect(joined);
        }
        self.advance().await;
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
        let transient = match &outcome {
            Err(e) if e.is_transient() => Some(e.to_string()),
            _ => None,
        };
        let (update, event) = settle(&delivery, now, outcome, &self.shared.config.delivery);
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

    /// Wait for sends in flight, for at most the grace period, and record their results.
    /// Deliveries claimed ahead and not started stay in flight under this fence: the next
    /// holder takes them over at once.
    pub(super) async fn finish_inflight(&mut self) {
        let deadline = Instant::now() + self.shared.config.shutdown_grace;
        self.outbox.queue.clear();
        self.outbox.drained = true;
        loop {
            if let Some(w) = &mut self.outbox.write {
                match tokio::time::timeout_at(deadline, &mut w.task).await {
                    Ok(written) => self.write_done(written).await,
                    Err(_) => break,
                }
                self.outbox.queue.clear();
                continue;
            }
            if self.outbox.tasks.is_empty() {
                if self.outbox.finished.is_empty() || self.lease.held().is_none() {
                    break;
                }
                self.write_if_needed();
                continue;
            }
            match tokio::time::timeout_at(deadline, self.outbox.tasks.join_next_with_id()).await {
                Ok(Some(joined)) => self.collect(joined),
                Ok(None) => {}
                Err(_) => {
                    tracing::warn!(
                        left = self.outbox.tasks.len(),
                        "grace period over; abandoning sends in flight"
                    );
                    self.outbox.tasks.abort_all();
                    self.outbox.sending.clear();
                }
            }
        }
    }
}

/// The update to record for a send's `outcome`, and the event to emit once it is: sent;
/// withheld (back to the queue, due now); or a failure, retried or given up on by `policy`.
fn settle(
    delivery: &Delivery,
    now: std::time::SystemTime,
    outcome: std::result::Result<Option<String>, NotifyError>,
    policy: &crate::monitor::DeliveryPolicy,
) -> (DeliveryUpdate, Event) {
    let email = delivery.recipient.email().to_owned();
    match outcome {
        Ok(via) => {
            match &via {
                Some(via) => tracing::info!(id = delivery.id, %email, %via, "notice delivered"),
                None => tracing::info!(id = delivery.id, %email, "notice delivered"),
            }
            (
                DeliveryUpdate::Sent,
                Event::DeliverySent {
                    id: delivery.id,
                    email,
                    via,
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
            let update = policy.after_failure(delivery, now, &e);
            let event = match &update {
                DeliveryUpdate::Deferred { at, error } => {
                    tracing::info!(id = delivery.id, %email, %error, "the route is busy; deferred");
                    Event::DeliveryRetry {
                        id: delivery.id,
                        email,
                        at: *at,
                        error: error.clone(),
                    }
                }
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
    }
}
