//! ip-monitor embedded in an axum server: the monitor starts with the server, shares the
//! application's database (its `staff` table is the recipient list), and stops on the
//! server's graceful shutdown (SIGINT or SIGTERM). Two routes expose it:
//! `GET /ip-monitor/status` (JSON) and `POST /ip-monitor/check`.
//!
//! Run: `cargo run -p ip-monitor-example-axum` — settings from the environment:
//! `APP_DATABASE_URL` (default `sqlite://app.db`), `APP_BIND` (default `127.0.0.1:8008`),
//! `IP_MONITOR_SOURCES` (comma-separated HTTP(S) source URLs and `dns://HOST:PORT` servers;
//! default the public ones), `IP_MONITOR_CA_FILE` (a private CA for HTTPS sources),
//! `IP_MONITOR_OUTBOX` (where messages are written as .eml files; default `outbox`),
//! `APP_IP_MONITOR=off` (the same server without the monitor, to measure what it costs).

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use ip_monitor_core::{
    CheckReport, DnsIpSource, HttpIpSource, IpSource, Monitor, MonitorConfig, MonitorHandle,
    SourceSet, StatusReport,
};
use ip_monitor_diesel::{DieselRecipients, DieselStore};
use ip_monitor_lettre::{FileNotifier, MessageTemplate};

#[derive(Clone)]
struct App {
    monitor: Option<MonitorHandle>,
    store: DieselStore,
}

impl App {
    fn monitor(&self) -> Result<&MonitorHandle, (StatusCode, String)> {
        self.monitor.as_ref().ok_or((
            StatusCode::SERVICE_UNAVAILABLE,
            "the monitor is off".to_owned(),
        ))
    }
}

fn env(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// The IP sources: `IP_MONITOR_SOURCES` lists HTTP(S) URLs and `dns://HOST:PORT` servers
/// (asked OpenDNS's question), comma-separated; `IP_MONITOR_CA_FILE` adds a trusted root
/// (PEM) for HTTPS sources signed by a private CA. Without them, the public defaults.
fn sources() -> Result<SourceSet, Box<dyn std::error::Error>> {
    let Ok(list) = std::env::var("IP_MONITOR_SOURCES") else {
        return Ok(SourceSet::new(HttpIpSource::public_defaults()?));
    };
    let ca = match std::env::var("IP_MONITOR_CA_FILE") {
        Ok(path) => Some(std::fs::read(path)?),
        Err(_) => None,
    };
    let mut sources: Vec<Arc<dyn IpSource>> = Vec::new();
    for spec in list.split(',').map(str::trim) {
        if let Some(server) = spec.strip_prefix("dns://") {
            sources.push(Arc::new(DnsIpSource::opendns().server_v4(server.parse()?)));
        } else {
            let mut source = HttpIpSource::builder(spec);
            if let Some(pem) = &ca {
                source = source.add_root_certificates(pem.clone());
            }
            sources.push(Arc::new(source.build()?));
        }
    }
    Ok(SourceSet::new(sources))
}

/// The monitors on the application's database, as `ip-monitor status --json` shows them.
async fn status(State(app): State<App>) -> Result<Json<StatusReport>, (StatusCode, String)> {
    let ttl = MonitorConfig::default().effective_lease_ttl();
    StatusReport::read(&app.store, ttl, SystemTime::now())
        .await
        .map(Json)
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
}

/// One check now, as `ip-monitor check --json` shows it.
async fn check(State(app): State<App>) -> Result<Json<Vec<CheckReport>>, (StatusCode, String)> {
    app.monitor()?
        .check_now()
        .await
        .map(Json)
        .map_err(|e| (StatusCode::CONFLICT, e.to_string()))
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let store = DieselStore::connect(&env("APP_DATABASE_URL", "sqlite://app.db")).await?;
    let notifier = FileNotifier::new(
        env("IP_MONITOR_OUTBOX", "outbox"),
        MessageTemplate::new("IP Monitor <ip-monitor@localhost>")?,
    );
    let monitor = if env("APP_IP_MONITOR", "on") == "off" {
        None
    } else {
        let monitor = Monitor::builder(
            sources()?,
            store.clone(),
            DieselRecipients::new(&store),
            notifier,
        );
        Some(monitor.build()?.spawn())
    };

    let app = Router::new()
        .route("/", get(|| async { "the application" }))
        .route("/ip-monitor/status", get(status))
        .route("/ip-monitor/check", post(check))
        .with_state(App {
            monitor: monitor.clone(),
            store,
        });
    let listener = tokio::net::TcpListener::bind(env("APP_BIND", "127.0.0.1:8008")).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // The server has drained its requests: stop the monitor (it records `stopped`).
    if let Some(monitor) = monitor {
        monitor.shutdown().await?;
    }
    Ok(())
}
