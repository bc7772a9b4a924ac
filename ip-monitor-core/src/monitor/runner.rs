//! The monitor's loop. One task owns all state; sends run as child tasks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{CheckReport, Command, Event, Shared};
use crate::address::Family;
use crate::error::{Error, Result};
use crate::notice::Notice;
use crate::notify::NotifyError;
use crate::recipients::RecipientList;
use crate::store::{
    Change, ChangeKind, Delivery, DeliveryState, DeliveryUpdate, DesiredState, InstanceStatus,
    Lease, NewChange, RunState, SourceStatus, StoreError,
};

/// After a store error, how soon the outbox is looked at again.
const STORE_RETRY: Duration = Duration::from_secs(5);
/// Notices kept (one per change, each with its QR code).
const NOTICE_CACHE: usize = 16;

struct SendResult {
    delivery: Delivery,
    /// `None`: not attempted, because the lease was no longer valid.
    result: Option<std::result::Result<(), NotifyError>>,
}

struct FamilyState {
    family: Family,
    /// The current address as last read from the store while holding the lease.
    current: Option<IpAddr>,
    /// A new address seen by consecutive checks, and how many.
    candidate: Option<(IpAddr, u32)>,
}

pub(super) struct Runner {
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    events: broadcast::Sender<Event>,
    status_tx: watch::Sender<InstanceStatus>,
    status: InstanceStatus,
    lease: Option<Lease>,
    /// The lease's expiry, read by send tasks right before they send.
    lease_valid_until: Arc<Mutex<Option<SystemTime>>>,
    desired: DesiredState,
    families: Vec<FamilyState>,
    next_full: Instant,
    next_probe: Instant,
    next_heartbeat: Instant,
    next_control: Instant,
    next_delivery: Option<Instant>,
    inflight: JoinSet<SendResult>,
    inflight_ids: HashMap<tokio::task::Id, Delivery>,
    /// Results whose recording failed; recorded again before new claims.
    unrecorded: Vec<(i64, DeliveryUpdate)>,
    notices: HashMap<i64, Arc<Notice>>,
}

impl Runner {
    pub(super) fn new(
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Command>,
        events: broadcast::Sender<Event>,
        status_tx: watch::Sender<InstanceStatus>,
        status: InstanceStatus,
    ) -> Self {
        let now = Instant::now();
        let families = shared
            .config
            .families
            .iter()
            .map(|&family| FamilyState {
                family,
                current: None,
                candidate: None,
            })
            .collect();
        Runner {
            shared,
            commands,
            events,
            status_tx,
            status,
            lease: None,
            lease_valid_until: Arc::new(Mutex::new(None)),
            desired: DesiredState::Running,
            families,
            next_full: now,
            next_probe: now,
            next_heartbeat: now,
            next_control: now,
            next_delivery: None,
            inflight: JoinSet::new(),
            inflight_ids: HashMap::new(),
            unrecorded: Vec::new(),
            notices: HashMap::new(),
        }
    }

    pub(super) async fn run(mut self) {
        tracing::info!(instance = %self.shared.holder.id, "monitor started");
        self.tick().await;
        let reply = loop {
            let wake = self.next_wake();
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    None => break None,
                    Some(Command::Shutdown(reply)) => break Some(reply),
                    Some(Command::CheckNow(reply)) => {
                        let result = self.check_now().await;
                        let _ = reply.send(result);
                    }
                    Some(Command::ReadControl) => self.next_control = Instant::now(),
                },
                Some(joined) = self.inflight.join_next_with_id(), if !self.inflight.is_empty() => {
                    self.finish_send(joined).await;
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
            self.tick().await;
        };
        self.shutdown().await;
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
    }

    fn active(&self) -> bool {
        self.lease.is_some() && self.desired == DesiredState::Running
    }

    fn next_wake(&self) -> Instant {
        let mut wake = self.next_control.min(self.next_heartbeat);
        if self.active() {
            wake = wake.min(self.next_full);
            if !self.shared.config.probe_interval.is_zero() {
                wake = wake.min(self.next_probe);
            }
            if let Some(d) = self.next_delivery {
                wake = wake.min(d);
            }
        }
        wake
    }

    async fn tick(&mut self) {
        let now = Instant::now();
        if now >= self.next_control {
            self.next_control = now + self.shared.config.control_poll;
            self.read_control().await;
        }
        if now >= self.next_heartbeat {
            self.next_heartbeat = now + self.shared.config.heartbeat;
            self.heartbeat().await;
        }
        if self.active() {
            if Instant::now() >= self.next_full {
                self.full_check().await;
            } else if !self.shared.config.probe_interval.is_zero()
                && Instant::now() >= self.next_probe
            {
                self.probe().await;
            }
            if self.delivery_due() {
                self.pump().await;
            }
        }
    }

    // ---- time ----------------------------------------------------------------------------

    fn wall_at(&self, at: Instant) -> SystemTime {
        let now = Instant::now();
        let wall = self.shared.clock.now();
        if at >= now {
            wall + (at - now)
        } else {
            wall - (now - at)
        }
    }

    fn instant_at(&self, at: SystemTime) -> Instant {
        let now = Instant::now();
        match at.duration_since(self.shared.clock.now()) {
            Ok(ahead) => now + ahead,
            Err(_) => now,
        }
    }

    // ---- status, events, control --------------------------------------------------------

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn publish(&mut self) {
        self.status.leader = self.lease.is_some();
        self.status.current = self.families.iter().filter_map(|f| f.current).collect();
        self.status.next_check_at = self.lease.as_ref().map(|_| self.wall_at(self.next_full));
        self.status_tx.send_replace(self.status.clone());
    }

    fn store_error(&mut self, what: &str, error: &StoreError) {
        let message = format!("{what}: {error}");
        tracing::warn!("{message}");
        self.status.last_error = Some(message.clone());
        self.emit(Event::StoreError { error: message });
    }

    async fn read_control(&mut self) {
        let desired = match self.shared.store.desired_state().await {
            Ok(d) => d,
            Err(e) => return self.store_error("reading the desired state", &e),
        };
        if desired == self.desired {
            return;
        }
        self.desired = desired;
        match desired {
            DesiredState::Paused => {
                tracing::info!("paused");
                self.status.state = RunState::Paused;
                self.emit(Event::Paused);
            }
            DesiredState::Running => {
                tracing::info!("resumed");
                self.status.state = RunState::Running;
                // Catch up at once: the address may have changed while paused.
                self.next_full = Instant::now();
                self.next_delivery = Some(Instant::now());
                self.emit(Event::Resumed);
            }
        }
        self.publish();
    }

    // ---- lease ----------------------------------------------------------------------------

    fn set_lease(&mut self, lease: Option<Lease>) {
        *self
            .lease_valid_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = lease.as_ref().map(|l| l.expires_at);
        self.lease = lease;
    }

    fn lose_lease(&mut self) {
        if self.lease.is_none() {
            return;
        }
        tracing::warn!("lost the lease; standing by");
        self.set_lease(None);
        // Sends not yet accepted are abandoned: the new holder resumes them.
        self.inflight.abort_all();
        self.inflight_ids.clear();
        self.unrecorded.clear();
        self.next_delivery = None;
        for f in &mut self.families {
            f.candidate = None;
        }
        self.emit(Event::LeaseLost);
        self.publish();
    }

    async fn heartbeat(&mut self) {
        self.renew_lease().await;
        self.status.heartbeat_at = self.shared.clock.now();
        self.publish();
        if let Err(e) = self.shared.store.put_instance(&self.status).await {
            self.store_error("writing the status row", &e);
        }
    }

    /// Acquire the lease, or renew it.
    async fn renew_lease(&mut self) {
        let now = self.shared.clock.now();
        let ttl = self.shared.config.effective_lease_ttl();
        match self
            .shared
            .store
            .acquire_lease(&self.shared.holder, now, ttl)
            .await
        {
            Ok(Some(lease)) => {
                let new = self.lease.as_ref().is_none_or(|l| l.fence != lease.fence);
                if new {
                    // A fence other than ours means the lease lapsed in between: what we had
                    // in flight may have been taken over.
                    self.lose_lease();
                    tracing::info!(fence = lease.fence, "acquired the lease");
                    self.emit(Event::LeaseAcquired { fence: lease.fence });
                    self.next_full = Instant::now();
                    self.next_delivery = Some(Instant::now());
                }
                self.set_lease(Some(lease));
            }
            Ok(None) => self.lose_lease(),
            Err(e) => {
                self.store_error("renewing the lease", &e);
                if self.lease.as_ref().is_some_and(|l| !l.is_valid_at(now)) {
                    self.lose_lease();
                }
            }
        }
    }

    async fn not_leader(&self) -> Error {
        let holder = self
            .shared
            .store
            .lease(self.shared.clock.now())
            .await
            .ok()
            .flatten()
            .map(|l| l.holder);
        Error::NotLeader { holder }
    }

    // ---- checks ---------------------------------------------------------------------------

    async fn check_now(&mut self) -> Result<Vec<CheckReport>> {
        if self.lease.is_none() {
            self.heartbeat().await;
        }
        if self.lease.is_none() {
            return Err(self.not_leader().await);
        }
        Ok(self.full_check().await)
    }

    async fn full_check(&mut self) -> Vec<CheckReport> {
        let now = Instant::now();
        self.next_full = now + self.shared.config.interval;
        self.next_probe = now + self.shared.config.probe_interval;
        let mut reports = Vec::with_capacity(self.families.len());
        let mut errors = Vec::new();
        for i in 0..self.families.len() {
            let report = self.check_family(i).await;
            if let Some(e) = &report.error {
                errors.push(format!("{}: {e}", report.outcome.family));
            }
            reports.push(report);
        }
        self.status.last_check_at = Some(self.shared.clock.now());
        self.status.last_error = (!errors.is_empty()).then(|| errors.join("; "));
        self.publish();
        reports
    }

    fn record_sources(&mut self, family: Family, outcome: &crate::check::CheckOutcome) {
        let at = self.shared.clock.now();
        self.status.sources.retain(|s| s.family != family);
        self.status
            .sources
            .extend(outcome.reports.iter().map(|r| SourceStatus {
                name: r.source.clone(),
                family,
                answer: r.result.as_ref().and_then(|r| r.as_ref().ok().copied()),
                error: match &r.result {
                    Some(Err(e)) => Some(e.to_string()),
                    Some(Ok(_)) => None,
                    None => Some("not awaited: the check was decided without it".to_owned()),
                },
                latency_ms: r.latency.map(|d| d.as_millis() as u64),
                at,
            }));
    }

    async fn check_family(&mut self, index: usize) -> CheckReport {
        let family = self.families[index].family;
        let outcome = self.shared.sources.check(family).await;
        self.record_sources(family, &outcome);
        let mut report = CheckReport {
            previous: self.families[index].current,
            change: None,
            confirming: None,
            rejected_recipients: Vec::new(),
            error: None,
            outcome,
        };
        let address = match &report.outcome.result {
            Ok(a) => *a,
            Err(e) => {
                tracing::warn!(%family, error = %e, "check failed; nothing recorded");
                self.emit(Event::CheckFailed {
                    family,
                    error: e.to_string(),
                });
                report.error = Some(Error::Check {
                    family,
                    source: e.clone(),
                });
                return report;
            }
        };
        self.emit(Event::Checked { family, address });
        if let Err(e) = self.observe(index, address, &mut report).await {
            if matches!(e, Error::Store(StoreError::LeaseLost)) {
                self.lose_lease();
            }
            tracing::warn!(%family, error = %e, "could not record the check");
            report.error = Some(e);
        }
        report
    }

    async fn observe(
        &mut self,
        index: usize,
        address: IpAddr,
        report: &mut CheckReport,
    ) -> Result<()> {
        let family = self.families[index].family;
        let current = self.shared.store.current(family).await?.map(|c| c.address);
        self.families[index].current = current;
        report.previous = current;
        if current == Some(address) {
            self.families[index].candidate = None;
            return Ok(());
        }
        let needed = self.shared.config.confirmations;
        let seen = match self.families[index].candidate {
            Some((a, n)) if a == address => n + 1,
            _ => 1,
        };
        if seen < needed {
            self.families[index].candidate = Some((address, seen));
            report.confirming = Some((seen, needed));
            tracing::info!(%family, %address, seen, needed, "new address awaits confirmation");
            self.emit(Event::Confirming {
                family,
                address,
                seen,
                needed,
            });
            // Confirm at the probe cadence rather than waiting a whole interval.
            let soon = Instant::now()
                + self
                    .shared
                    .config
                    .probe_interval
                    .max(Duration::from_secs(1));
            self.next_full = self.next_full.min(soon);
            return Ok(());
        }
        let recipients = if current.is_none() && !self.shared.config.notify_on_first {
            RecipientList::default()
        } else {
            self.active_recipients().await?
        };
        let change = self
            .record(family, address, current, ChangeKind::Change, &recipients)
            .await?;
        tracing::info!(%family, %address, previous = ?current, deliveries = change.deliveries, "address changed");
        self.families[index].current = Some(address);
        self.families[index].candidate = None;
        self.next_delivery = Some(Instant::now());
        self.emit(Event::Changed(change.clone()));
        report.change = Some(change);
        report.rejected_recipients = recipients.rejected;
        Ok(())
    }

    /// Record a change (or test) of `address` with one delivery per valid recipient.
    async fn record(
        &mut self,
        family: Family,
        address: IpAddr,
        previous: Option<IpAddr>,
        kind: ChangeKind,
        recipients: &RecipientList,
    ) -> Result<Change> {
        let lease = self
            .lease
            .clone()
            .ok_or(Error::NotLeader { holder: None })?;
        let change = NewChange {
            family,
            address,
            previous,
            url: self.shared.template.render(address),
            kind,
        };
        Ok(self
            .shared
            .store
            .record_change(&lease, self.shared.clock.now(), change, &recipients.valid)
            .await?)
    }

    /// The active recipients, with skipped rows logged and reported.
    async fn active_recipients(&mut self) -> Result<RecipientList> {
        let recipients = self.shared.recipients.active().await?;
        for rejected in &recipients.rejected {
            tracing::error!("{rejected}");
            self.emit(Event::RecipientRejected(rejected.clone()));
        }
        if recipients.valid.is_empty() {
            tracing::warn!("no active recipients: nobody is told");
        }
        Ok(recipients)
    }

    async fn probe(&mut self) {
        self.next_probe = Instant::now() + self.shared.config.probe_interval;
        for i in 0..self.families.len() {
            let FamilyState {
                family, current, ..
            } = self.families[i];
            let Some(report) = self.shared.sources.probe(family).await else {
                return;
            };
            match report.result {
                Some(Ok(address)) if Some(address) != current => {
                    tracing::info!(%family, %address, "probe saw a different address; checking now");
                    self.emit(Event::ProbeMismatch { family, address });
                    self.next_full = Instant::now();
                }
                Some(Err(e)) => {
                    tracing::debug!(%family, source = %report.source, error = %e, "probe failed")
                }
                _ => {}
            }
        }
    }

    // ---- deliveries -----------------------------------------------------------------------

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

    async fn record_result(&mut self, lease: &Lease, id: i64, update: DeliveryUpdate) -> bool {
        match self
            .shared
            .store
            .finish_delivery(lease, self.shared.clock.now(), id, update.clone())
            .await
        {
            Ok(()) => true,
            Err(StoreError::LeaseLost) => {
                self.lose_lease();
                false
            }
            Err(e) => {
                self.store_error("recording a delivery result", &e);
                self.unrecorded.push((id, update));
                false
            }
        }
    }

    async fn pump(&mut self) {
        self.next_delivery = None;
        let Some(lease) = self.lease.clone() else {
            return;
        };
        for (id, update) in std::mem::take(&mut self.unrecorded) {
            if !self.record_result(&lease, id, update).await && self.lease.is_none() {
                return;
            }
        }
        if !self.unrecorded.is_empty() {
            self.next_delivery = Some(Instant::now() + STORE_RETRY);
            return;
        }
        let parallelism = self.shared.config.delivery.parallelism;
        let room = parallelism.saturating_sub(self.inflight.len());
        if room == 0 {
            return; // a finishing send pumps again
        }
        let now = self.shared.clock.now();
        let claimed = match self.shared.store.claim_deliveries(&lease, now, room).await {
            Ok(c) => c,
            Err(StoreError::LeaseLost) => return self.lose_lease(),
            Err(e) => {
                self.store_error("claiming deliveries", &e);
                self.next_delivery = Some(Instant::now() + STORE_RETRY);
                return;
            }
        };
        for delivery in claimed {
            self.start_send(&lease, delivery).await;
        }
        if self.inflight.len() >= parallelism {
            return;
        }
        match self.shared.store.next_delivery_at(&lease).await {
            Ok(Some(at)) => {
                // Never sooner than a moment from now: due work the claim did not return is
                // either in flight here or just being written.
                let floor = Instant::now() + Duration::from_millis(20);
                self.next_delivery = Some(self.instant_at(at).max(floor));
            }
            Ok(None) => {}
            Err(e) => {
                self.store_error("reading the outbox", &e);
                self.next_delivery = Some(Instant::now() + STORE_RETRY);
            }
        }
    }

    async fn start_send(&mut self, lease: &Lease, delivery: Delivery) {
        let notice = match self.notice_for(&delivery) {
            Ok(n) => n,
            Err(e) => {
                let error = format!("cannot build the notice: {e}");
                tracing::error!(id = delivery.id, "{error}");
                self.record_result(lease, delivery.id, DeliveryUpdate::Failed { error })
                    .await;
                return;
            }
        };
        let notifier = Arc::clone(&self.shared.notifier);
        let clock = Arc::clone(&self.shared.clock);
        let valid_until = Arc::clone(&self.lease_valid_until);
        let task_delivery = delivery.clone();
        let handle = self.inflight.spawn(async move {
            let delivery = task_delivery;
            // A process frozen past its lease must not send when it wakes up.
            let valid = valid_until
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|until| clock.now() < until);
            let result = if valid {
                Some(notifier.notify(&notice, &delivery.recipient).await)
            } else {
                None
            };
            SendResult { delivery, result }
        });
        self.inflight_ids.insert(handle.id(), delivery);
    }

    async fn finish_send(
        &mut self,
        joined: std::result::Result<(tokio::task::Id, SendResult), tokio::task::JoinError>,
    ) {
        let (delivery, result) = match joined {
            Ok((id, r)) => {
                self.inflight_ids.remove(&id);
                (r.delivery, r.result)
            }
            Err(e) => {
                let Some(delivery) = self.inflight_ids.remove(&e.id()) else {
                    return;
                };
                if e.is_cancelled() {
                    return;
                }
                (
                    delivery,
                    Some(Err(NotifyError::transient("the notifier panicked"))),
                )
            }
        };
        let Some(lease) = self.lease.clone() else {
            return;
        };
        let Some(result) = result else {
            return; // not attempted: the lease had lapsed; the heartbeat sorts it out
        };
        let email = delivery.recipient.email().to_owned();
        let update = match result {
            Ok(()) => {
                tracing::info!(id = delivery.id, %email, "notice delivered");
                DeliveryUpdate::Sent
            }
            Err(e) => {
                self.shared
                    .config
                    .delivery
                    .after_failure(&delivery, self.shared.clock.now(), &e)
            }
        };
        let event = match &update {
            DeliveryUpdate::Sent => Event::DeliverySent {
                id: delivery.id,
                email,
            },
            DeliveryUpdate::Retry { at, error } => {
                tracing::warn!(id = delivery.id, %email, %error, "delivery failed; will retry");
                Event::DeliveryRetry {
                    id: delivery.id,
                    email,
                    at: *at,
                    error: error.clone(),
                }
            }
            DeliveryUpdate::Failed { error } => {
                tracing::error!(id = delivery.id, %email, %error, "delivery failed for good");
                Event::DeliveryFailed {
                    id: delivery.id,
                    email,
                    error: error.clone(),
                }
            }
        };
        if self.record_result(&lease, delivery.id, update).await {
            self.emit(event);
        }
        let parallelism = self.shared.config.delivery.parallelism;
        let room = parallelism.saturating_sub(self.inflight.len());
        if room >= (parallelism / 4).max(1) || self.inflight.is_empty() {
            let now = Instant::now();
            self.next_delivery = Some(self.next_delivery.map_or(now, |t| t.min(now)));
        }
    }

    // ---- shutdown -------------------------------------------------------------------------

    async fn shutdown(&mut self) {
        self.finish_inflight().await;
        self.release().await;
        self.status.state = RunState::Stopped;
        self.status.heartbeat_at = self.shared.clock.now();
        self.publish();
        if let Err(e) = self.shared.store.put_instance(&self.status).await {
            self.store_error("writing the status row", &e);
        }
        tracing::info!("monitor stopped");
        self.emit(Event::Stopped);
    }

    /// Wait for sends in flight, for at most the grace period, and record their results.
    async fn finish_inflight(&mut self) {
        let deadline = Instant::now() + self.shared.config.shutdown_grace;
        while !self.inflight.is_empty() {
            match tokio::time::timeout_at(deadline, self.inflight.join_next_with_id()).await {
                Ok(Some(joined)) => self.finish_send(joined).await,
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        left = self.inflight.len(),
                        "grace period over; abandoning sends in flight"
                    );
                    self.inflight.abort_all();
                    self.inflight_ids.clear();
                    break;
                }
            }
        }
        if let Some(lease) = self.lease.clone() {
            for (id, update) in std::mem::take(&mut self.unrecorded) {
                self.record_result(&lease, id, update).await;
            }
        }
    }

    async fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            if let Err(e) = self.shared.store.release_lease(&lease).await {
                self.store_error("releasing the lease", &e);
            }
            self.set_lease(None);
        }
    }

    // ---- one-shot work ----------------------------------------------------------------------

    /// Acquire the lease for one piece of work (renewed from now on every heartbeat), or say
    /// who holds it.
    async fn lease_for_once(&mut self) -> Result<()> {
        self.renew_lease().await;
        if self.lease.is_none() {
            return Err(self.not_leader().await);
        }
        self.next_heartbeat = Instant::now() + self.shared.config.heartbeat;
        Ok(())
    }

    /// One full check in this process: record a change if there is one, send what is due,
    /// and return once nothing more is due now (deliveries waiting for a retry stay in the
    /// outbox for the running monitor).
    pub(super) async fn check_once(mut self) -> Result<Vec<CheckReport>> {
        self.lease_for_once().await?;
        let reports = self.full_check().await;
        self.next_delivery = Some(Instant::now());
        while self.lease.is_some() {
            if self.delivery_due() {
                self.pump().await;
            }
            if self.inflight.is_empty() && !self.delivery_due() {
                break;
            }
            self.wait_round().await;
        }
        self.finish_inflight().await;
        self.release().await;
        Ok(reports)
    }

    /// Record a test notice for `address` and deliver it to every active recipient through
    /// the outbox, retries included; return when each delivery is sent or failed.
    pub(super) async fn send_test(mut self, address: IpAddr) -> Result<(Change, Vec<Delivery>)> {
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
        self.next_delivery = Some(Instant::now());
        let store = Arc::clone(&self.shared.store);
        let id = change.id;
        while self.lease.is_some() {
            if self.delivery_due() {
                self.pump().await;
            }
            // With nothing in flight, read the outbox: done when no delivery of the test is left.
            if self.inflight.is_empty()
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

    fn delivery_due(&self) -> bool {
        self.next_delivery.is_some_and(|t| t <= Instant::now())
    }

    /// Wait for the next thing to happen (a send finishing, a retry falling due, the
    /// heartbeat) and handle it; the lease is renewed on the heartbeat.
    async fn wait_round(&mut self) {
        let wake = self
            .next_heartbeat
            .min(self.next_delivery.unwrap_or(self.next_heartbeat));
        tokio::select! {
            Some(joined) = self.inflight.join_next_with_id(), if !self.inflight.is_empty() => {
                self.finish_send(joined).await;
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        if Instant::now() >= self.next_heartbeat {
            self.next_heartbeat = Instant::now() + self.shared.config.heartbeat;
            self.renew_lease().await;
        }
    }
}
