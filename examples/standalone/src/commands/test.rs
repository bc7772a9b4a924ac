//! `test [--force] [--ip ADDR]`: who would receive what, or a test notice to all.

use std::net::IpAddr;

use ip_monitor_core::{DeliveryState, Recipients};
use ip_monitor_standalone::config::Settings;

use super::{Failure, Outcome, address, monitor, warn_if_nobody};

pub(crate) async fn test(s: &Settings, force: bool, ip: Option<IpAddr>) -> Outcome {
    let (monitor, _, recipients) = monitor(s).await?;
    let address = address(s, ip).await?;
    let url = s.url_template.render(address);
    if !force {
        let list = recipients.active().await?;
        warn_if_nobody(&list);
        println!("would send {url} to {} recipient(s):", list.valid.len());
        for r in &list.valid {
            println!("  {r}");
        }
        for r in &list.rejected {
            println!("  skipped: {r}");
        }
        println!(
            "run with --force to send it (marked as a test; the current address is not changed)"
        );
        return Ok(());
    }
    let (change, outcome) = monitor.send_test(address).await?;
    let failed: Vec<_> = outcome
        .unsent
        .iter()
        .filter(|d| d.state == DeliveryState::Failed)
        .collect();
    println!(
        "test notice {} for {url}: {} sent, {} failed",
        change.id,
        outcome.counts.sent,
        failed.len()
    );
    for d in &failed {
        println!(
            "  failed: {}: {}",
            d.recipient,
            d.last_error.as_deref().unwrap_or("?")
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "{} test deliveries failed",
            failed.len()
        )))
    }
}
