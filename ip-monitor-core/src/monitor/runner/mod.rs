//! The monitor's loop. One task owns all state; sends run as child tasks.
//!
//! The loop itself lives here; the lease ([`lease`]), the checks ([`checks`]) and the outbox
//! ([`outbox`]: claim, send, record, drain — shared with the one-shot commands) each have a
//! file of their own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use super::{Command, Event, Shared};
use crate::address::Family;
use crate::notice::Notice;
use crate::store::{DesiredState, InstanceStatus, RunState, StoreError};

mod checks;
mod lease;
mod oneshot;
mod outbox;

use lease::LeaseState;
use outbox::Outbox;

/// After a store error, how soon the failed work is tried again.
const STORE_RETRY: Duration = Duration::from_secs(5);
/// Notices kept (one per change, each with its QR code).
const NOTICE_CACHE: usize = 16;

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
    lease: LeaseState,
    desired: DesiredState,
    families: Vec<FamilyState>,
    next_full: Instant,
    next_probe: Instant,
    next_heartbeat: Instant,
    next_control: Instant,
    outbox: Outbox,
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
            lease: LeaseState::new(Arc::clone(&shared), events.clone()),
            shared,
            commands,
            events,
            status_tx,
            status,
            desired: DesiredState::Running,
            families,
            next_full: now,
            next_probe: now,
            next_heartbeat: now,
            next_control: now,
            outbox: Outbox::default(),
            notices: HashMap::new(),
        }
    }

    pub(super) async fn run(mut self) {
        tracing::info!(instance = %self.shared.holder.id, "monitor started");
        self.renew_lease().await;
        self.start_lease();
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
                    Some(Command::SendTest(address, reply)) => {
                        let result = self.send_test_now(address).await;
                        let _ = reply.send(result);
                    }
                    Some(Command::ReadControl) => self.next_control = Instant::now(),
                    Some(Command::CheckSoon) => self.next_full = Instant::now(),
                },
                () = self.lease.changed() => self.follow_lease(),
                Some(joined) = self.outbox.tasks.join_next_with_id(), if self.outbox.sending() => {
                    self.finish_sends(joined).await;
                }
                written = outbox::written(&mut self.outbox.write), if self.outbox.writing() => {
                    self.write_done(written).await;
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
        self.lease.held().is_some() && self.desired == DesiredState::Running
    }

    fn next_wake(&self) -> Instant {
        let mut wake = self.next_control.min(self.next_heartbeat);
        if self.active() {
            wake = wake.min(self.next_full);
            if !self.shared.config.probe_interval.is_zero() {
                wake = wake.min(self.next_probe);
            }
            if let Some(d) = self.outbox.next_pump {
                wake = wake.min(d);
            }
        }
        wake
    }

    async fn tick(&mut self) {
        let now = Instant::now();
        if now >= self.next_heartbeat {
            self.heartbeat().await;
        }
        if now >= self.next_control {
            self.next_control = now + self.shared.config.control_poll;
            self.read_control().await;
        }
        if self.active() {
            if Instant::now() >= self.next_full {
                self.full_check().await;
            } else if !self.shared.config.probe_interval.is_zero()
                && Instant::now() >= self.next_probe
            {
                self.probe().await;
            }
            if self.outbox.pump_due() {
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
        self.shared.metrics.observe(&event);
        let _ = self.events.send(event);
    }

    fn publish(&mut self) {
        let leader = self.lease.held().is_some();
        self.status.leader = leader;
        self.status.current = self.families.iter().filter_map(|f| f.current).collect();
        self.status.next_check_at = leader.then(|| self.wall_at(self.next_full));
        self.status_tx.send_replace(self.status.clone());
    }

    fn store_error(&mut self, step: &'static str, error: StoreError) {
        let message = format!("{step}: {error}");
        tracing::warn!("{message}");
        self.status.last_error = Some(message);
        self.emit(Event::StoreError {
            step,
            error: Arc::new(error),
        });
    }

    async fn read_control(&mut self) {
        match self.shared.store.desired_state().await {
            Ok(desired) => self.follow_desired(desired),
            Err(e) => self.store_error("reading the desired state", e),
        }
    }

    fn follow_desired(&mut self, desired: DesiredState) {
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
                self.outbox.pump_now();
                self.emit(Event::Resumed);
            }
        }
        self.publish();
    }

    /// Write the status row and read the desired state in one store call, which counts as
    /// the control poll too (the keeper renews the lease on its own task).
    async fn heartbeat(&mut self) {
        let now = Instant::now();
        self.next_heartbeat = now + self.shared.config.heartbeat;
        self.follow_lease();
        self.status.heartbeat_at = self.shared.clock.now();
        self.publish();
        match self.shared.store.heartbeat(&self.status).await {
            Ok(desired) => {
                self.next_control = now + self.shared.config.control_poll;
                self.follow_desired(desired);
            }
            Err(e) => self.store_error("writing the status row", e),
        }
    }

    // ---- shutdown -------------------------------------------------------------------------

    async fn shutdown(&mut self) {
        self.finish_inflight().await;
        self.release().await;
        self.write_final_status().await;
        tracing::info!("monitor stopped");
        self.emit(Event::Stopped);
    }

    /// Write the status row once more, as stopped: what a later `status` shows of this
    /// instance's last check, also after one-shot work.
    async fn write_final_status(&mut self) {
        self.status.state = RunState::Stopped;
        self.status.heartbeat_at = self.shared.clock.now();
        self.publish();
        if let Err(e) = self.shared.store.put_instance(&self.status).await {
            self.store_error("writing the status row", e);
        }
    }
}
