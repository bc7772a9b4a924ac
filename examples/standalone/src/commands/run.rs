//! `run`: the monitor in the foreground until SIGINT or SIGTERM, with its status page.

use ip_monitor_core::Event;
use ip_monitor_core::web::Dashboard;
use ip_monitor_standalone::config::{NotifierSetting, Settings};

use super::{Failure, Outcome, monitor, warn_if_nobody};

pub(crate) async fn run(s: &Settings) -> Outcome {
    let (monitor, store, recipients) = monitor(s).await?;
    match recipients.active().await {
        Ok(list) => warn_if_nobody(&list),
        Err(e) => tracing::warn!("{e}"),
    }
    // Bound before the loop starts: a port in use is a configuration error, not a monitor
    // that runs without the page it was asked to serve.
    let listener =
        match &s.server {
            Some(server) => Some(tokio::net::TcpListener::bind(server.listen).await.map_err(
                |e| {
                    s.error(
                        "server.listen",
                        format!("cannot listen on {}: {e}", server.listen),
                    )
                },
            )?),
            None => None,
        };
    let handle = monitor.spawn();
    // Subscribed before the loop first runs (this runtime has one thread): no change is missed.
    tokio::spawn(log_changes(handle.subscribe(), destination(s)));
    let _watch = watch_interfaces(s, &handle);
    let _routers = watch_routers(s, &handle);
    if let (Some(listener), Some(server)) = (listener, &s.server) {
        let addr = listener.local_addr().unwrap_or(server.listen);
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "the status page listens on {addr}, not a loopback address: whoever reaches it \
                 sees the addresses and the instances"
            );
        }
        let actions = if server.token.is_some() {
            "check and test actions need the token"
        } else {
            "check and test actions off (no [server] token_env)"
        };
        tracing::info!("status page on http://{addr}/ (/healthz, /metrics; {actions})");
        let mut dashboard = Dashboard::new(handle.clone());
        if let Some(token) = &server.token {
            dashboard = dashboard.token(token.clone());
        }
        tokio::spawn(ip_monitor_standalone::server::serve(
            listener,
            dashboard,
            server.limits.clone(),
        ));
    }
    tracing::info!(store = %store.url(), "monitor running; stop with Ctrl-C or SIGTERM");
    // The status channel closes when the loop ends: on its own, that is a failure (a panic
    // in a part), and a supervisor (systemd's Restart=on-failure) should see it.
    let mut status = handle.watch_status();
    let ended = async { while status.changed().await.is_ok() {} };
    tokio::select! {
        _ = wait_for_signal() => {}
        _ = ended => {
            let reason = match handle.shutdown().await {
                Ok(()) => "its loop ended".to_owned(),
                Err(e) => e.to_string(),
            };
            return Err(Failure::Failed(format!("the monitor stopped unexpectedly: {reason}")));
        }
    }
    tracing::info!("shutting down");
    handle.shutdown().await?;
    Ok(())
}
/// The interface watch, when `[watch] interfaces` asks for it and the system has one.
#[cfg(target_os = "linux")]
fn watch_interfaces(
    s: &Settings,
    handle: &ip_monitor_core::MonitorHandle,
) -> Option<ip_monitor_core::InterfaceWatch> {
    if !s.watch_interfaces {
        tracing::info!(
            "interface events off ([watch] interfaces = false): the probe alone notices a change"
        );
        return None;
    }
    match ip_monitor_core::InterfaceWatch::spawn(handle.clone()) {
        Ok(watch) => Some(watch),
        Err(e) => {
            tracing::warn!(
                "cannot watch the kernel's address events ({e}): the probe alone notices a change"
            );
            None
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn watch_interfaces(s: &Settings, _: &ip_monitor_core::MonitorHandle) -> Option<()> {
    if s.watch_interfaces {
        tracing::info!(
            "interface events are watched on Linux only: the probe alone notices a change here"
        );
    }
    None
}

/// The listener for the announcements of the NAT-PMP and PCP sources' routers.
fn watch_routers(
    s: &Settings,
    handle: &ip_monitor_core::MonitorHandle,
) -> Option<ip_monitor_core::RouterWatch> {
    if s.routers.is_empty() {
        return None;
    }
    match ip_monitor_core::RouterWatch::spawn(handle.clone(), s.routers.clone()) {
        Ok(watch) => Some(watch),
        Err(e) => {
            tracing::warn!(
                "cannot listen for the router's announcements on port {} ({e}): the probe alone \
                 notices a change",
                ip_monitor_core::RouterWatch::PORT
            );
            None
        }
    }
}

/// Where the notices go, in words.
fn destination(s: &Settings) -> String {
    match &s.notifier {
        NotifierSetting::Smtp { primary, fallback } => {
            let mut through = format!("by email through {}:{}", primary.host(), primary.port());
            for backup in fallback {
                through.push_str(&format!(", else {}:{}", backup.host(), backup.port()));
            }
            through
        }
        NotifierSetting::Files(dir) => format!(
            "as .eml files in {} (set [smtp] to email them)",
            dir.display()
        ),
    }
}
/// Log each recorded address with its entry URL and where its notice went.
async fn log_changes(mut events: tokio::sync::broadcast::Receiver<Event>, destination: String) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(Event::Changed(c)) if c.deliveries == 0 => tracing::warn!(
                "recorded the {} address {}, entry URL {}: nobody to tell (set [recipients])",
                c.family,
                c.address,
                c.url
            ),
            Ok(Event::Changed(c)) => tracing::info!(
                "recorded the {} address {}, entry URL {}: notice to {} recipient(s) {destination}",
                c.family,
                c.address,
                c.url,
                c.deliveries
            ),
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
