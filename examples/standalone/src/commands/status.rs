//! `status [--json]`: the state of the monitors on this store.

use std::time::SystemTime;

use ip_monitor_core::{InstanceStatus, StatusReport};
use ip_monitor_standalone::config::Settings;

use super::{Outcome, existing_store, print_json, time};

pub(crate) async fn status(s: &Settings, as_json: bool) -> Outcome {
    let store = existing_store(s).await?;
    let report =
        StatusReport::read(&store, s.monitor.effective_lease_ttl(), SystemTime::now()).await?;
    if as_json {
        print_json(&serde_json::to_value(&report).expect("JSON"));
        return Ok(());
    }
    println!(
        "state:       {} (desired: {})",
        report.state,
        report.desired.as_str()
    );
    match &report.leader {
        Some(l) => println!(
            "leader:      {} on {} (pid {})",
            l.holder.id, l.holder.host, l.holder.pid
        ),
        None => println!("leader:      none"),
    }
    for i in &report.instances {
        println!(
            "instance:    {} on {} (pid {}): {}, heartbeat {}",
            i.holder.id,
            i.holder.host,
            i.holder.pid,
            i.state,
            time(i.heartbeat_at)
        );
    }
    if report.current.is_empty() {
        println!("current:     none recorded yet");
    }
    for c in &report.current {
        println!(
            "current:     {} {} (since {})",
            c.family,
            c.address,
            time(c.since)
        );
    }
    if let Some(m) = &report.main {
        print_main(m);
    }
    let counts = report.deliveries;
    println!(
        "deliveries:  pending {}, in flight {}, sent {}, failed {}, superseded {}",
        counts.pending, counts.in_flight, counts.sent, counts.failed, counts.superseded
    );
    Ok(())
}

/// What the leader (or the freshest instance) last did.
fn print_main(m: &InstanceStatus) {
    println!(
        "last check:  {}",
        m.last_check_at.map_or("never".to_owned(), time)
    );
    println!(
        "next check:  {}",
        m.next_check_at.map_or("-".to_owned(), time)
    );
    println!("last error:  {}", m.last_error.as_deref().unwrap_or("none"));
    if let Some(e) = &m.delivery_error {
        println!("relay:       deliveries wait for a retry: {e}");
    }
    if !m.sent_via.is_empty() {
        let via: Vec<String> = m.sent_via.iter().map(|(r, n)| format!("{r} {n}")).collect();
        println!("sent via:    {}", via.join(", "));
    }
    for src in &m.sources {
        let answer = src
            .answer
            .map(|a| a.to_string())
            .or(src.error.clone())
            .unwrap_or_default();
        let latency = src
            .latency_ms
            .map(|l| format!(" ({l} ms)"))
            .unwrap_or_default();
        println!(
            "source:      {} {}: {answer}{latency}",
            src.name, src.family
        );
    }
}
