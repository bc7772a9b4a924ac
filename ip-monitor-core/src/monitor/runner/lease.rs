//! The lease as this runner holds it: the store's record, a deadline on the monotonic clock,
//! and the gate that send permits read.

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::Runner;
use crate::error::{Error, Result};
use crate::monitor::Event;
use crate::notify::SendPermit;
use crate::store::Lease;

/// The lease this runner holds, if any.
#[derive(Default)]
pub(super) struct LeaseState {
    held: Option<Lease>,
    gate: Arc<Gate>,
}

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
}

impl LeaseState {
    /// The lease, while held.
    pub(super) fn held(&self) -> Option<&Lease> {
        self.held.as_ref()
    }

    /// Hold `lease` until `deadline`: the moment the request for it left, plus its ttl. The
    /// store starts the ttl later than that, on its own clock, so the local deadline passes
    /// first whatever the wall clocks of the two hosts say.
    fn set(&mut self, lease: Lease, deadline: Instant) {
        self.gate.set(Some((lease.fence, deadline)));
        self.held = Some(lease);
    }

    fn clear(&mut self) {
        self.gate.set(None);
        self.held = None;
    }

    /// Whether the local deadline has passed.
    fn expired(&self) -> bool {
        self.gate
            .get()
            .is_none_or(|(_, until)| Instant::now() >= until)
    }

    /// A permit valid while this runner holds the lease of `fence`, before its deadline.
    pub(super) fn permit(
        &self,
        fence: u64,
        also: impl Fn() -> bool + Send + Sync + 'static,
    ) -> SendPermit {
        let gate = Arc::clone(&self.gate);
        SendPermit::new(move || {
            also()
                && gate
                    .get()
                    .is_some_and(|(held, until)| held == fence && Instant::now() < until)
        })
    }
}

impl Runner {
    /// Acquire the lease, or renew it.
    pub(super) async fn renew_lease(&mut self) {
        let ttl = self.shared.config.effective_lease_ttl();
        let asked = Instant::now();
        match self
            .shared
            .store
            .acquire_lease(&self.shared.holder, ttl)
            .await
        {
            Ok(Some(lease)) => {
                let fence = lease.fence;
                if self.lease.held().is_none_or(|l| l.fence != fence) {
                    // A fence other than ours means the lease lapsed in between, even if this
                    // instance acquired it again: sends claimed under the old fence are
                    // finished and recorded, never handed over anew under it.
                    self.lose_lease();
                    tracing::info!(fence, "acquired the lease");
                    self.emit(Event::LeaseAcquired { fence });
                    self.next_full = Instant::now();
                    self.outbox.pump_now();
                }
                self.lease.set(lease, asked + ttl);
            }
            Ok(None) => self.lose_lease(),
            Err(e) => {
                self.store_error("renewing the lease", &e);
                if self.lease.expired() {
                    self.lose_lease();
                }
            }
        }
    }

    /// Stop acting. Sends in flight are not aborted: their permits lapse with the lease, so
    /// those not yet handed over send nothing, and those already handed over report a result
    /// that is recorded if this instance holds the lease again while the delivery is still
    /// in flight under the fence it was claimed under.
    pub(super) fn lose_lease(&mut self) {
        if self.lease.held().is_none() {
            return;
        }
        tracing::warn!("lost the lease; standing by");
        self.lease.clear();
        self.outbox.next_pump = None;
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

    pub(super) async fn release(&mut self) {
        if let Some(lease) = self.lease.held().cloned() {
            if let Err(e) = self.shared.store.release_lease(&lease).await {
                self.store_error("releasing the lease", &e);
            }
            self.lease.clear();
        }
    }

    /// Acquire the lease for one piece of work (renewed from now on every heartbeat), or say
    /// who holds it.
    pub(super) async fn lease_for_once(&mut self) -> Result<()> {
        self.renew_lease().await;
        if self.lease.held().is_none() {
            return Err(self.not_leader().await);
        }
        self.next_heartbeat = Instant::now() + self.shared.config.heartbeat;
        Ok(())
    }
}
