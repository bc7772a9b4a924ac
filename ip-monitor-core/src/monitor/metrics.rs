//! Counters of what a running monitor did, kept in the process (they start at zero with it),
//! read with [`MonitorHandle::metrics`](super::MonitorHandle::metrics).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::Event;
use crate::address::Family;
use crate::source::SourceError;
use crate::source::set::SourceReport;
use crate::store::ChangeKind;

/// How one request to an IP source ended, as counted in [`MonitorMetrics::source_requests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceResult {
    /// A valid address.
    Ok,
    /// No answer within the timeout.
    Timeout,
    /// Any other failure: a transport error, or an answer that was not a usable address.
    Error,
}

impl SourceResult {
    /// `ok`, `timeout` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceResult::Ok => "ok",
            SourceResult::Timeout => "timeout",
            SourceResult::Error => "error",
        }
    }
}

/// What this instance did since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MonitorMetrics {
    /// Full checks run (each asks the sources of every family).
    pub checks: u64,
    /// Address changes this instance recorded, per family (test notices not included).
    pub changes: BTreeMap<Family, u64>,
    /// Test notices this instance recorded.
    pub tests: u64,
    /// Requests to IP sources (probes and full checks) per source name and result; a request
    /// dropped because the check was already decided is not counted.
    pub source_requests: BTreeMap<(String, SourceResult), u64>,
    /// Deliveries this instance had accepted by the notifier.
    pub deliveries_sent: u64,
    /// Deliveries that failed and were scheduled for another attempt.
    pub delivery_retries: u64,
    /// Deliveries this instance gave up on.
    pub deliveries_failed: u64,
}

/// The counters, updated by the loop.
#[derive(Debug, Default)]
pub(crate) struct Metrics(Mutex<MonitorMetrics>);

impl Metrics {
    fn update(&self, f: impl FnOnce(&mut MonitorMetrics)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub(crate) fn snapshot(&self) -> MonitorMetrics {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn checked(&self) {
        self.update(|m| m.checks += 1);
    }

    /// Count the requests of a check or a probe that ended.
    pub(crate) fn sources<'a>(&self, reports: impl IntoIterator<Item = &'a SourceReport>) {
        self.update(|m| {
            for report in reports {
                let result = match &report.result {
                    None => continue,
                    Some(Ok(_)) => SourceResult::Ok,
                    Some(Err(e)) if matches!(**e, SourceError::Timeout(_)) => SourceResult::Timeout,
                    Some(Err(_)) => SourceResult::Error,
                };
                *m.source_requests
                    .entry((report.source.clone(), result))
                    .or_default() += 1;
            }
        });
    }

    /// Count what an event says happened.
    pub(crate) fn observe(&self, event: &Event) {
        match event {
            Event::Changed(change) => self.update(|m| match change.kind {
                ChangeKind::Change => *m.changes.entry(change.family).or_default() += 1,
                ChangeKind::Test => m.tests += 1,
            }),
            Event::DeliverySent { .. } => self.update(|m| m.deliveries_sent += 1),
            Event::DeliveryRetry { .. } => self.update(|m| m.delivery_retries += 1),
            Event::DeliveryFailed { .. } => self.update(|m| m.deliveries_failed += 1),
            _ => {}
        }
    }
}
