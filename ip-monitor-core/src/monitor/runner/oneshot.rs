//! The one-shot commands' work in this process (`check`, `retry`, `test --force`): take the
//! lease, do the one thing, drain what is due through the outbox, release the lease.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::Runner;
use super::outbox::written;
use crate::error::Result;
use crate::monitor::CheckReport;
use crate::store::{Change, ChangeOutcome};

impl Runner {
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
            if self.outbox.idle() {
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
    ) -> Result<(Change, ChangeOutcome)> {
        // The recipients are read while the lease is taken: neither waits for the other.
        let shared = Arc::clone(&self.shared);
        let (leased, recipients) = tokio::join!(self.lease_for_once(), shared.recipients.active());
        leased?;
        let recipients = self.note_recipients(recipients?);
        let change = self.record_test(address, &recipients).await?;
        let store = Arc::clone(&self.shared.store);
        let id = change.id;
        let mut done = None;
        while self.lease.held().is_some() {
            if self.outbox.pump_due() {
                self.pump().await;
            }
            // With nothing in flight, read the outbox: done when no delivery of the test is
            // left, and what was read is the answer (nothing of ours is out to change it).
            if self.outbox.idle() {
                let outcome = store.outcome(id).await?;
                if outcome.is_settled() {
                    done = Some(outcome);
                    break;
                }
            }
            self.wait_round().await;
        }
        self.finish_inflight().await;
        self.release().await;
        let outcome = match done {
            Some(outcome) => outcome,
            None => store.outcome(id).await?,
        };
        Ok((change, outcome))
    }

    /// Wait for the next thing to happen (a send finishing, a store write ending, a retry
    /// falling due, the heartbeat) and handle it; the lease is followed on the heartbeat.
    async fn wait_round(&mut self) {
        let wake = self
            .next_heartbeat
            .min(self.outbox.next_pump.unwrap_or(self.next_heartbeat));
        tokio::select! {
            Some(joined) = self.outbox.tasks.join_next_with_id(), if !self.outbox.tasks.is_empty() => {
                self.finish_sends(joined).await;
            }
            written = written(&mut self.outbox.write), if self.outbox.writing() => {
                self.write_done(written).await;
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        if Instant::now() >= self.next_heartbeat {
            self.next_heartbeat = Instant::now() + self.shared.config.heartbeat;
            self.follow_lease();
        }
    }
}
