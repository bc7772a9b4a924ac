//! Watch this host's public IPv4 address with the built-in HTTP sources and print every
//! event; notices are kept in memory and printed instead of emailed.
//!
//! Run: `cargo run -p ip-monitor-core --example watch -- ana@example.com ben@example.com`
//! (stop with Ctrl-C). Needs internet access to reach ipify, icanhazip and Cloudflare.

use std::time::Duration;

use ip_monitor_core::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let recipients: Vec<String> = std::env::args().skip(1).collect();
    if recipients.is_empty() {
        eprintln!("warning: no recipients given; changes are recorded but nobody is told");
    }
    let sources = SourceSet::new(HttpIpSource::public_defaults()?).timeout(Duration::from_secs(5));
    let notifier = RecordingNotifier::new();
    let handle = Monitor::builder(
        sources,
        MemoryStore::new(),
        StaticRecipients::new(recipients),
        notifier.clone(),
    )
    .build()?
    .spawn();

    let mut events = handle.subscribe();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = events.recv() => match event {
                Ok(Event::DeliverySent { email, .. }) => {
                    let (notice, _) = notifier.sent().pop().expect("just sent");
                    println!("notice for {email}: {}", notice.url);
                }
                Ok(event) => println!("{event:?}"),
                Err(_) => continue,
            },
        }
    }
    handle.shutdown().await?;
    Ok(())
}
