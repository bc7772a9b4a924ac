//! The lease as this runner holds it. A keeper renews it on a task of its own, every
//! heartbeat, so a long check or a slow recipients query never starves the renewal; the
//! runner follows what the keeper reports. Send permits read the keeper's gate: the fence
//! held and a deadline on the monotonic clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Runner;
use crate::error::{Error, Result};
use crate::monitor::{Event, Shared};
use crate::notify::SendPermit;
use crate::store::Lease;

/// What permits read at the moment of hand-over: the fence held and until when.
#[derive(Default)]
struct Gate(Mutex<Option<(u64, Instant)>>);

impl Gate {
    fn set(&self, value: Option<(u64, Instant)>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = value;
    }

    fn get(&self) -> Option<(u64, Instant)> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expired(&self) -> bool {
        self.get().is_none_or(|(_, until)| Instant::now() >= until)
    }
}

/// Renews the lease; shared by the keeper's task and the runner.
struct Keeper {
    shared: Arc<Shared>,
    gate: Arc<Gate>,
    tx: watch::Sender<Option<Lease>>,
    events: broadcast::Sender<Event>,
    /// Serialises renewals with the release; `true` once released for good.
    turn: tokio::sync::Mutex<bool>,
    /// The last renewal error, for the status row.
    error: Mutex<Option<String>>,
}

impl Keeper {
    /// Acquire the lease, or renew it.
    async fn renew(&self) {
        let released = self.turn.lock().await;
        if *released {
            return;
        }
        let ttl = self.shared.config.effective_lease_ttl();
        let asked = Instant::now();
        match self
            .shared
            .store
            .acquire_lease(&self.shared.holder, ttl)
            .await
        {
            Ok(Some(lease)) => {
                // The store starts the ttl later than `asked`, on its own clock: the local
                // deadline passes first, whatever the wall clocks of the hosts say.
                self.gate.set(Some((lease.fence, asked + ttl)));
                self.tx.send_replace(Some(lease));
            }
            Ok(None) => self.drop_lease(),
            Err(e) => {
                let message = format!("renewing the lease: {e}");
                tracing::warn!("{message}");
                let _ = self.events.send(Event::StoreError {
                    step: "renewing the lease",
                    error: Arc::new(e),
                });
                *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
                if self.gate.expired() {
                    self.drop_lease();
                }
            }
        }
    }

    fn drop_lease(&self) {
        self.gate.set(None);
        if self.tx.borrow().is_some() {
            self.tx.send_replace(None);
        }
    }

    /// Stop renewing and give the lease up, after any renewal under way.
    async fn release(&self) -> std::result::Result<(), crate::store::StoreError> {
        let mut released = self.turn.lock().await;
        *released = true;
        let lease = self.tx.borrow().clone();
        self.drop_lease();
        match lease {
            Some(lease) => self.shared.store.release_lease(&lease).await,
            None => Ok(()),
        }
    }
}

/// The lease this runner holds, if any, and the keeper that renews it.
pub(super) struct LeaseState {
    held: Option<Lease>,
    keeper: Arc<Keeper>,
    rx: watch::Receiver<Option<Lease>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for LeaseState {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl LeaseState {
    pub(super) fn new(shared: Arc<Shared>, events: broadcast::Sender<Event>) -> Self {
        let (tx, rx) = watch::channel(None);
        LeaseState {
            held: None,
            keeper: Arc::new(Keeper {
                shared,
                gate: Arc::default(),
                tx,
                events,
                turn: tokio::sync::Mutex::new(false),
                error: Mutex::new(None),
            }),
            rx,
            task: None,
        }
    }

    /// The lease, while held.
    pub(super) fn held(&self) -> Option<&Lease> {
        self.held.as_ref()
    }

    /// Start renewing every `heartbeat` on a task of its own (once), the first renewal
    /// after `first`.
    fn start(&mut self, heartbeat: Duration, first: Duration) {
        if self.task.is_some() {
            return;
        }
        let keeper = Arc::clone(&self.keeper);
        self.task = Some(tokio::spawn(async move {
            if !first.is_zero() {
                tokio::time::sleep(first).await;
            }
            loop {
                keeper.renew().await;
                tokio::time::sleep(heartbeat).await;
            }
        }));
    }

    /// Resolves when the keeper reports a change (acquired, renewed, lost).
    pub(super) async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// A permit valid while this runner holds the lease of `fence`, before its deadline.
    pub(super) fn permit(
        &self,
        fence: u64,
        also: impl Fn() -> bool + Send + Sync + 'static,
    ) -> SendPermit {
        let gate = Arc::clone(&self.keeper.gate);
        SendPermit::new(move || {
            also()
                && gate
                    .get()
                    .is_some_and(|(held, until)| held == fence && Instant::now() < until)
        })
    }
}

impl Runner {
    /// Start the keeper: the first renewal happens at once.
    pub(super) fn start_lease(&mut self) {
        self.lease
            .start(self.shared.config.heartbeat, Duration::ZERO);
    }

    /// Renew now (acquiring the lease if it is free) and follow the outcome.
    pub(super) async fn renew_lease(&mut self) {
        self.lease.keeper.renew().await;
        self.follow_lease();
    }

    /// Follow what the keeper last reported.
    pub(super) fn follow_lease(&mut self) {
        if let Some(error) = self
            .lease
            .keeper
            .error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            self.status.last_error = Some(error);
        }
        let reported = self.lease.rx.borrow_and_update().clone();
        match reported {
            Some(lease) => {
                let fence = lease.fence;
                if self.lease.held().is_none_or(|l| l.fence != fence) {
                    // A fence other than ours means the lease lapsed in between, even if this
                    // instance acquired it again: sends claimed under the old fence are
                    // finished and recorded, never handed over anew under it.
                    self.lose_lease();
                    tracing::info!(fence, "acquired the lease");
                    self.emit(Event::LeaseAcquired { fence });
                    self.lease.held = Some(lease);
                    self.next_full = Instant::now();
                    self.outbox.pump_now();
                    self.publish();
                } else {
                    self.lease.held = Some(lease);
                }
            }
            None => self.lose_lease(),
        }
    }

    /// Stop acting. Sends in flight are not aborted: their permits lapse with the lease, so
    /// those not yet handed over send nothing, and those already handed over report a result
    /// that is recorded if this instance holds the lease again while the delivery is still
    /// in flight under the fence it was claimed under.
    pub(super) fn lose_lease(&mut self) {
        if self.lease.held.take().is_none() {
            return;
        }
        tracing::warn!("lost the lease; standing by");
        self.outbox.lost_lease();
        for f in &mut self.families {
            f.candidate = None;
        }
        self.emit(Event::LeaseLost);
        self.publish();
    }

    pub(super) async fn not_leader(&self) -> Error {
        let holder = self
            .shared
            .store
            .lease()
            .await
            .ok()
            .flatten()
            .map(|l| l.holder);
        Error::NotLeader { holder }
    }

    /// Stop renewing and give the lease up.
    pub(super) async fn release(&mut self) {
        if let Some(task) = self.lease.task.take() {
            task.abort();
        }
        if let Err(e) = self.lease.keeper.release().await {
            self.store_error("releasing the lease", e);
        }
        self.lease.held = None;
    }

    /// Acquire the lease for one piece of work (renewed from now on every heartbeat), or say
    /// who holds it.
    pub(super) async fn lease_for_once(&mut self) -> Result<()> {
        self.renew_lease().await;
        if self.lease.held().is_none() {
            return Err(self.not_leader().await);
        }
        let heartbeat = self.shared.config.heartbeat;
        self.next_heartbeat = Instant::now() + heartbeat;
        // Renewed a moment ago: the keeper's first renewal is a heartbeat away.
        self.lease.start(heartbeat, heartbeat);
        Ok(())
    }
}
