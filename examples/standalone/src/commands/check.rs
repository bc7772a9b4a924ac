//! `check [--json]`: one check now in this process.

use ip_monitor_core::{CheckReport, DeliveryState, Error as CoreError, StateStore};
use ip_monitor_standalone::config::Settings;
use serde_json::Value;

use super::{Failure, Outcome, monitor, print_json};

pub(crate) async fn check(s: &Settings, as_json: bool) -> Outcome {
    let (monitor, store, _) = monitor(s).await?;
    let reports = monitor.check_once().await.map_err(|e| match e {
        CoreError::NotLeader { .. } => Failure::Failed(format!(
            "{e}: a running monitor checks on its own; see `ip-monitor status`"
        )),
        other => Failure::Failed(other.to_string()),
    })?;
    if as_json {
        print_json(&Value::Array(reports.iter().map(report_json).collect()));
    } else {
        for r in &reports {
            let family = r.outcome.family;
            match (&r.outcome.result, &r.change, r.confirming) {
                (Err(e), _, _) => println!("{family}: check failed: {e}"),
                (Ok(a), Some(c), _) => {
                    let counts = store.deliveries(c.id).await?;
                    let sent = counts
                        .iter()
                        .filter(|d| d.state == DeliveryState::Sent)
                        .count();
                    println!(
                        "{family}: changed to {a} (was {}): {} notified now, {} deliveries in all",
                        r.previous.map_or("none".to_owned(), |p| p.to_string()),
                        sent,
                        c.deliveries
                    );
                }
                (Ok(a), None, Some((seen, needed))) => {
                    println!("{family}: {a} seen {seen} of {needed} times needed")
                }
                (Ok(a), None, None) => match &r.error {
                    Some(e) => println!("{family}: {a}, not recorded: {e}"),
                    None => println!("{family}: unchanged ({a})"),
                },
            }
        }
    }
    match reports.iter().find_map(|r| r.error.as_ref()) {
        Some(e) => Err(Failure::Failed(e.to_string())),
        None => Ok(()),
    }
}
fn report_json(r: &CheckReport) -> Value {
    serde_json::to_value(r).expect("JSON")
}
