//! `GET /metrics`: the Prometheus text format (version 0.0.4), written through
//! [`Exposition`], which owns the format's rules (the `# HELP` / `# TYPE` lines, label
//! escaping), so the metrics below are a list of names, helps and values.

use std::fmt::{Display, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use super::Dashboard;
use super::report::StatusReport;
use super::request::Response;
use crate::store::{DeliveryCounts, DesiredState, RunState};

/// A metrics document being written.
#[derive(Debug, Default)]
pub(super) struct Exposition {
    out: String,
}

impl Exposition {
    /// Start the family `name` of `kind` (`gauge`, `counter`) with its help text.
    fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample of `name` with `labels` (escaped here).
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
                .collect();
            let _ = write!(self.out, "{{{}}}", labels.join(","));
        }
        let _ = writeln!(self.out, " {value}");
        self
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help).sample(name, &[], value);
    }

    fn into_response(self) -> Response {
        Response::new(200, "text/plain; version=0.0.4; charset=utf-8", self.out)
    }
}

impl Dashboard {
    /// The Prometheus text format.
    pub(super) async fn metrics(&self) -> Response {
        let snapshot = self.snapshot().await;
        let report = &snapshot.report;
        let mut e = Exposition::default();
        self.instance_metrics(&mut e, report.as_ref().ok());
        self.counters(&mut e);
        if let Ok(report) = report {
            store_metrics(&mut e, report);
        }
        e.into_response()
    }

    /// What this instance is doing: up, leader, its store, its last check.
    fn instance_metrics(&self, e: &mut Exposition, report: Option<&StatusReport>) {
        let status = self.handle.status();
        let up = status.state == RunState::Running
            && !self.handle.is_finished()
            && report.is_some_and(|r| r.desired == DesiredState::Running);
        e.single(
            "ip_monitor_up",
            "gauge",
            "1 while this instance runs (leader or standby), 0 when paused, stopped or its store does not answer (as /healthz).",
            u8::from(up),
        );
        e.single(
            "ip_monitor_leader",
            "gauge",
            "1 while this instance holds the lease.",
            u8::from(status.leader),
        );
        e.single(
            "ip_monitor_store_up",
            "gauge",
            "1 when the store answered this scrape.",
            u8::from(report.is_some()),
        );
        let name = "ip_monitor_last_check_timestamp_seconds";
        e.family(
            name,
            "gauge",
            "When this instance last finished a full check (Unix time).",
        );
        if let Some(at) = status.last_check_at {
            e.sample(name, &[], unix(at));
        }
        let name = "ip_monitor_source_latency_seconds";
        e.family(
            name,
            "gauge",
            "How long each source took at the last full check.",
        );
        for s in &status.sources {
            if let Some(ms) = s.latency_ms {
                let family = s.family.to_string();
                let labels = [("source", s.name.as_str()), ("family", family.as_str())];
                e.sample(name, &labels, ms as f64 / 1000.0);
            }
        }
        let name = "ip_monitor_route_deliveries_total";
        e.family(
            name,
            "counter",
            "Deliveries this instance handed over per route, with backup relays.",
        );
        for (route, n) in &status.sent_via {
            e.sample(name, &[("route", route)], n);
        }
    }

    /// The counters of this instance since it started.
    fn counters(&self, e: &mut Exposition) {
        let m = self.handle.metrics();
        e.single(
            "ip_monitor_checks_total",
            "counter",
            "Full checks run by this instance.",
            m.checks,
        );
        let name = "ip_monitor_changes_total";
        e.family(
            name,
            "counter",
            "Address changes recorded by this instance.",
        );
        for f in &self.handle.config().families {
            let n = m.changes.get(f).copied().unwrap_or(0);
            e.sample(name, &[("family", f.as_str())], n);
        }
        e.single(
            "ip_monitor_tests_total",
            "counter",
            "Test notices recorded by this instance.",
            m.tests,
        );
        let name = "ip_monitor_source_requests_total";
        e.family(
            name,
            "counter",
            "Requests to IP sources by this instance, per source and result.",
        );
        for ((source, result), n) in &m.source_requests {
            e.sample(name, &[("source", source), ("result", result.as_str())], n);
        }
        for (name, n, help) in [
            (
                "ip_monitor_deliveries_sent_total",
                m.deliveries_sent,
                "Deliveries this instance had accepted.",
            ),
            (
                "ip_monitor_delivery_retries_total",
                m.delivery_retries,
                "Delivery attempts by this instance that failed and will be retried.",
            ),
            (
                "ip_monitor_deliveries_failed_total",
                m.deliveries_failed,
                "Deliveries this instance gave up on.",
            ),
        ] {
            e.single(name, "counter", help, n);
        }
    }
}

/// What the store holds: deliveries per state, the current addresses.
fn store_metrics(e: &mut Exposition, report: &StatusReport) {
    let name = "ip_monitor_deliveries";
    e.family(name, "gauge", "Deliveries in the store, per state.");
    for (state, n) in counts(&report.deliveries) {
        e.sample(name, &[("state", state)], n);
    }
    let name = "ip_monitor_address_info";
    e.family(
        name,
        "gauge",
        "The current address of each family (always 1).",
    );
    for c in &report.current {
        let address = c.address.to_string();
        e.sample(
            name,
            &[("family", c.family.as_str()), ("address", &address)],
            1,
        );
    }
    let name = "ip_monitor_address_since_timestamp_seconds";
    e.family(
        name,
        "gauge",
        "Since when each family has its current address (Unix time).",
    );
    for c in &report.current {
        e.sample(name, &[("family", c.family.as_str())], unix(c.since));
    }
}

/// The delivery counts by state, in the order they are shown.
pub(super) fn counts(c: &DeliveryCounts) -> [(&'static str, u64); 5] {
    [
        ("pending", c.pending),
        ("in_flight", c.in_flight),
        ("sent", c.sent),
        ("failed", c.failed),
        ("superseded", c.superseded),
    ]
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut e = Exposition::default();
        e.family("m", "gauge", "help")
            .sample("m", &[("a", "x\"y"), ("b", "z")], 2);
        assert_eq!(
            e.out,
            "# HELP m help\n# TYPE m gauge\nm{a=\"x\\\"y\",b=\"z\"} 2\n"
        );
    }
}
