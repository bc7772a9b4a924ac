//! ip-monitor embedded in an axum server: the monitor starts with the server, shares the
//! application's database (its `staff` table is the recipient list), and stops on the
//! server's graceful shutdown (SIGINT or SIGTERM). Its status page, health check, metrics
//! and JSON status are mounted under `/ip-monitor/` (`GET /ip-monitor/`, `/ip-monitor/healthz`,
//! `/ip-monitor/metrics`, `/ip-monitor/status`; `POST /ip-monitor/check` and
//! `/ip-monitor/test` with the token).
//!
//! Run: `cargo run -p ip-monitor-example-axum` — settings from the environment:
//! `APP_DATABASE_URL` (default `sqlite://app.db`), `APP_BIND` (default `127.0.0.1:8008`),
//! `IP_MONITOR_SOURCES` (comma-separated HTTP(S) source URLs and `dns://HOST:PORT` servers;
//! default the public ones), `IP_MONITOR_CA_FILE` (a private CA for HTTPS sources),
//! `IP_MONITOR_OUTBOX` (where messages are written as .eml files; default `outbox`),
//! `IP_MONITOR_TOKEN` (the token of the check and test actions; without it they are off),
//! `APP_IP_MONITOR=off` (the same server without the monitor, to measure what it costs).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use ip_monitor_core::web::Dashboard;
use ip_monitor_core::{DnsIpSource, HttpIpSource, IpSource, Monitor, SourceSet};
use ip_monitor_diesel::{DieselRecipients, DieselStore};
use ip_monitor_lettre::{FileNotifier, MessageTemplate};

#[derive(Clone)]
struct App {
    dashboard: Option<Arc<Dashboard>>,
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

/// The monitor's surface, mounted under `/ip-monitor/`.
async fn ip_monitor(State(app): State<App>, request: Request) -> Response {
    let Some(dashboard) = &app.dashboard else {
        return (StatusCode::SERVICE_UNAVAILABLE, "the monitor is off").into_response();
    };
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().strip_prefix("/ip-monitor").unwrap_or("/");
    if path.is_empty() {
        // The page's forms post to relative URLs: serve it below the slash.
        return Redirect::permanent("/ip-monitor/").into_response();
    }
    parts.uri = path.parse().unwrap_or_default();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    dashboard
        .serve(axum::http::Request::from_parts(parts, body))
        .await
        .map(Body::from)
        .into_response()
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

    let dashboard = monitor.clone().map(|handle| {
        let token = std::env::var("IP_MONITOR_TOKEN").unwrap_or_default();
        Arc::new(Dashboard::new(handle).token(token))
    });
    let app = Router::new()
        .route("/", get(|| async { "the application" }))
        .route("/ip-monitor", any(ip_monitor))
        .route("/ip-monitor/", any(ip_monitor))
        .route("/ip-monitor/{*rest}", any(ip_monitor))
        .with_state(App { dashboard });
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
