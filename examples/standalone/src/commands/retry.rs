//! `retry`: requeue the failed deliveries of the latest change, and send them.

use ip_monitor_core::{Error as CoreError, StateStore};
use ip_monitor_standalone::config::Settings;

use super::{Failure, Outcome, monitor};

pub(crate) async fn retry(s: &Settings) -> Outcome {
    let (monitor, store, _) = monitor(s).await?;
    let requeued = monitor.retry_failed().await.map_err(|e| match e {
        CoreError::NotLeader { .. } => Failure::Failed(format!(
            "{e}: stop the running monitor (it sends with the configuration it started with), \
             then retry"
        )),
        other => Failure::Failed(other.to_string()),
    })?;
    let counts = store.delivery_counts().await?;
    println!(
        "requeued {requeued} failed deliveries; now pending {}, sent {}, failed {}",
        counts.pending, counts.sent, counts.failed
    );
    Ok(())
}
