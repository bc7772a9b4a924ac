//! `history [--limit N] [--json]`: the recorded changes, newest first.

use ip_monitor_core::StateStore;
use ip_monitor_standalone::config::Settings;
use serde_json::{Value, json};

use super::{Outcome, existing_store, print_json, time};

pub(crate) async fn history(s: &Settings, limit: usize, as_json: bool) -> Outcome {
    let store = existing_store(s).await?;
    let changes = store.history(limit).await?;
    if as_json {
        print_json(&Value::Array(
            changes
                .iter()
                .map(|c| {
                    json!({"id": c.id, "kind": c.kind, "family": c.family, "address": c.address, "previous": c.previous,
                           "url": c.url, "detected_at": time(c.detected_at), "deliveries": c.deliveries})
                })
                .collect(),
        ));
        return Ok(());
    }
    if changes.is_empty() {
        println!("no changes recorded");
    }
    for c in &changes {
        println!(
            "{:>5}  {}  {:<6} {} {} -> {}  ({} deliveries)",
            c.id,
            time(c.detected_at),
            c.kind.as_str(),
            c.family,
            c.previous.map_or("none".to_owned(), |p| p.to_string()),
            c.address,
            c.deliveries
        );
    }
    Ok(())
}
