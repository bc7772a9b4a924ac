//! ip-monitor embedded in an actix-web server: the monitor starts with the server, shares the
//! application's database (its `staff` table is the recipient list), and stops after the
//! server's graceful shutdown (actix-web handles SIGINT and SIGTERM). Its status page, health
//! check, metrics and JSON status are mounted under `/ip-monitor/` (`GET /ip-monitor/`,
//! `/ip-monitor/healthz`, `/ip-monitor/metrics`, `/ip-monitor/status`; `POST
//! /ip-monitor/check` and `/ip-monitor/test` with the token).
//!
//! Run: `cargo run -p ip-monitor-example-actix-web` — settings from the environment:
//! `APP_DATABASE_URL` (default `sqlite://app.db`), `APP_BIND` (default `127.0.0.1:8008`),
//! `IP_MONITOR_SOURCES` (comma-separated HTTP source URLs; default the public ones),
//! `IP_MONITOR_OUTBOX` (where messages are written as .eml files; default `outbox`),
//! `IP_MONITOR_TOKEN` (the token of the check and test actions; without it they are off).

use std::sync::Arc;

use actix_web::http::{Method, StatusCode, header};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use ip_monitor_core::web::{Dashboard, Request};
use ip_monitor_core::{HttpIpSource, IpSource, Monitor, SourceSet};
use ip_monitor_diesel::{DieselRecipients, DieselStore};
use ip_monitor_lettre::{FileNotifier, MessageTemplate};

fn env(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

fn sources() -> Result<SourceSet, Box<dyn std::error::Error>> {
    let list: Vec<Arc<dyn IpSource>> = match std::env::var("IP_MONITOR_SOURCES") {
        Ok(urls) => urls
            .split(',')
            .map(|u| Ok(Arc::new(HttpIpSource::builder(u.trim()).build()?) as Arc<dyn IpSource>))
            .collect::<Result<_, ip_monitor_core::SourceError>>()?,
        Err(_) => HttpIpSource::public_defaults()?,
    };
    Ok(SourceSet::new(list))
}

/// The monitor's surface, mounted under `/ip-monitor/`.
async fn ip_monitor(
    dashboard: web::Data<Dashboard>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let path = request.path().strip_prefix("/ip-monitor").unwrap_or("/");
    if path.is_empty() {
        // The page's forms post to relative URLs: serve it below the slash.
        return HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, "/ip-monitor/"))
            .finish();
    }
    let get = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
    let answer = dashboard
        .respond(Request {
            method: request.method().as_str(),
            path,
            authorization: get(header::AUTHORIZATION),
            content_type: get(header::CONTENT_TYPE),
            accept: get(header::ACCEPT),
            body: &body,
        })
        .await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response.content_type(answer.content_type);
    for header in answer.headers {
        response.insert_header(header);
    }
    if request.method() == Method::HEAD {
        response.finish()
    } else {
        response.body(answer.body)
    }
}

#[actix_web::main]
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
    let monitor = Monitor::builder(
        sources()?,
        store.clone(),
        DieselRecipients::new(&store),
        notifier,
    )
    .build()?
    .spawn();

    let token = std::env::var("IP_MONITOR_TOKEN").unwrap_or_default();
    let dashboard = web::Data::new(Dashboard::new(monitor.clone()).token(token));
    let bind = env("APP_BIND", "127.0.0.1:8008");
    let server = HttpServer::new(move || {
        App::new()
            .app_data(dashboard.clone())
            .app_data(web::PayloadConfig::new(16 * 1024))
            .route("/", web::get().to(|| async { "the application" }))
            .route("/ip-monitor", web::route().to(ip_monitor))
            .route("/ip-monitor/{tail:.*}", web::route().to(ip_monitor))
    })
    .workers(1)
    .bind(&bind)?;
    tracing::info!(addr = ?server.addrs(), "listening");
    // Returns after a graceful shutdown on SIGINT / SIGTERM.
    server.run().await?;
    monitor.shutdown().await?;
    Ok(())
}
