//! Full checks and probes: ask the sources, confirm a new address, record the change.

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::{FamilyState, Runner};
use crate::address::Family;
use crate::error::{Error, Result};
use crate::monitor::{CheckReport, Event};
use crate::recipients::RecipientList;
use crate::store::{
    Change, ChangeKind, CurrentAddress, DesiredState, NewChange, SourceStatus, StoreError,
};

impl Runner {
    pub(super) async fn check_now(&mut self) -> Result<Vec<CheckReport>> {
        if self.lease.held().is_none() {
            self.renew_lease().await;
        }
        if self.lease.held().is_none() {
            return Err(self.not_leader().await);
        }
        Ok(self.full_check().await)
    }

    /// A test notice from the running loop: recorded under the lease, sent by the loop's
    /// outbox like any delivery.
    pub(super) async fn send_test_now(&mut self, address: IpAddr) -> Result<Change> {
        // The operator may have paused the monitors since the last poll.
        let desired = self.shared.store.desired_state().await?;
        self.follow_desired(desired);
        self.publish();
        if self.desired == DesiredState::Paused {
            return Err(Error::Paused);
        }
        if self.lease.held().is_none() {
            self.renew_lease().await;
        }
        if self.lease.held().is_none() {
            return Err(self.not_leader().await);
        }
        let recipients = self.active_recipients().await?;
        self.record_test(address, &recipients).await
    }

    /// Record a test notice for `address` to `recipients` (the current address stays) and
    /// wake the outbox for it.
    pub(super) async fn record_test(
        &mut self,
        address: IpAddr,
        recipients: &RecipientList,
    ) -> Result<Change> {
        let change = self
            .record(
                Family::of(&address),
                address,
                None,
                ChangeKind::Test,
                recipients,
            )
            .await?;
        self.emit(Event::Changed(change.clone()));
        self.outbox.pump_now();
        Ok(change)
    }

    pub(super) async fn full_check(&mut self) -> Vec<CheckReport> {
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
        self.shared.metrics.checked();
        self.status.last_check_at = Some(self.shared.clock.now());
        self.status.last_error = (!errors.is_empty()).then(|| errors.join("; "));
        self.publish();
        reports
    }

    fn record_sources(&mut self, family: Family, outcome: &crate::source::set::CheckOutcome) {
        self.shared.metrics.sources(&outcome.reports);
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
        let known = self.shared.store.current(family).await?;
        let current = known.as_ref().map(|c| c.address);
        self.families[index].current = current;
        report.previous = current;
        if let Some(known) = known.filter(|c| c.address == address) {
            self.families[index].candidate = None;
            if self.shared.config.notify_new_recipients {
                // The check itself succeeded: a failure here is logged, and tried again at
                // the next full check.
                match self.tell_new_recipients(&known).await {
                    Err(Error::Store(StoreError::LeaseLost)) => {
                        return Err(Error::Store(StoreError::LeaseLost));
                    }
                    Err(e) => tracing::warn!(
                        %family,
                        error = %e,
                        "could not give the current address to new recipients"
                    ),
                    Ok(()) => {}
                }
            }
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
        self.remember_notice(&change);
        self.families[index].current = Some(address);
        self.families[index].candidate = None;
        // Sends of the older change still out must not hand over a stale URL.
        self.outbox.cancel_superseded(&change);
        self.outbox.pump_now();
        self.emit(Event::Changed(change.clone()));
        report.change = Some(change);
        report.rejected_recipients = recipients.rejected;
        Ok(())
    }

    /// Give the current address's notice to recipients who became active since it was
    /// recorded (each once: whoever has a delivery of it, in any state, is left alone).
    async fn tell_new_recipients(&mut self, current: &CurrentAddress) -> Result<()> {
        let lease = self
            .lease
            .held()
            .cloned()
            .ok_or(Error::NotLeader { holder: None })?;
        let recipients = self.active_recipients().await?;
        let added = self
            .shared
            .store
            .add_recipients(
                &lease,
                self.shared.clock.now(),
                current.change_id,
                &recipients.valid,
                // The first address recorded without telling anyone stays untold.
                !self.shared.config.notify_on_first,
            )
            .await?;
        if added > 0 {
            tracing::info!(
                family = %current.family,
                address = %current.address,
                added,
                "the current address goes to recipients who became active since it was announced"
            );
            self.outbox.pump_now();
        }
        Ok(())
    }

    /// Record a change (or test) of `address` with one delivery per valid recipient.
    pub(super) async fn record(
        &mut self,
        family: Family,
        address: IpAddr,
        previous: Option<IpAddr>,
        kind: ChangeKind,
        recipients: &RecipientList,
    ) -> Result<Change> {
        let lease = self
            .lease
            .held()
            .cloned()
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
    pub(super) async fn active_recipients(&mut self) -> Result<RecipientList> {
        let recipients = self.shared.recipients.active().await?;
        Ok(self.note_recipients(recipients))
    }

    /// Report the rows the recipients source rejected, and warn when nobody is left.
    pub(super) fn note_recipients(&mut self, recipients: RecipientList) -> RecipientList {
        for rejected in &recipients.rejected {
            tracing::error!("{rejected}");
            self.emit(Event::RecipientRejected(rejected.clone()));
        }
        if recipients.valid.is_empty() {
            tracing::warn!("no active recipients: nobody is told");
        }
        recipients
    }

    pub(super) async fn probe(&mut self) {
        self.next_probe = Instant::now() + self.shared.config.probe_interval;
        for i in 0..self.families.len() {
            let FamilyState {
                family, current, ..
            } = self.families[i];
            let Some(report) = self.shared.sources.probe(family).await else {
                return;
            };
            self.shared.metrics.sources([&report]);
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
}
