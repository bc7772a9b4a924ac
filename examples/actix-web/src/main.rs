//! ip-monitor embedded in an actix-web server: the monitor starts with the server, shares the
//! application's database (its `staff` table is the recipient list), and stops after the
//! server's graceful shutdown (actix-web handles SIGINT and SIGTERM). Two routes expose it:
//! `GET /ip-monitor/status` (JSON) and `POST /ip-monitor/check`.
//!
//! Run: `cargo run -p ip-monitor-example-actix-web` — settings from the environment:
//! `APP_DATABASE_URL` (default `sqlite://app.db`), `APP_BIND` (default `127.0.0.1:8008`),
//! `IP_MONITOR_SOURCES` (comma-separated HTTP source URLs; default the public ones),
//! `IP_MONITOR_OUTBOX` (where messages are written as .eml files; default `outbox`).

use std::sync::Arc;
use std::time::SystemTime;

use actix_web::{App, HttpResponse, HttpServer, get, post, web};
use ip_monitor_core::{
    HttpIpSource, IpSource, Monitor, MonitorConfig, MonitorHandle, SourceSet, StatusReport,
};
use ip_monitor_diesel::{DieselRecipients, DieselStore};
use ip_monitor_lettre::{FileNotifier, MessageTemplate};

struct Shared {
    monitor: MonitorHandle,
    store: DieselStore,
}

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

/// The monitors on the application's database, as `ip-monitor status --json` shows them.
#[get("/ip-monitor/status")]
async fn status(shared: web::Data<Shared>) -> HttpResponse {
    let ttl = MonitorConfig::default().effective_lease_ttl();
    match StatusReport::read(&shared.store, ttl, SystemTime::now()).await {
        Ok(report) => HttpResponse::Ok().json(report),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

/// One check now, as `ip-monitor check --json` shows it.
#[post("/ip-monitor/check")]
async fn check(shared: web::Data<Shared>) -> HttpResponse {
    match shared.monitor.check_now().await {
        Ok(reports) => HttpResponse::Ok().json(reports),
        Err(e) => HttpResponse::Conflict().body(e.to_string()),
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

    let shared = web::Data::new(Shared {
        monitor: monitor.clone(),
        store,
    });
    let bind = env("APP_BIND", "127.0.0.1:8008");
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .route("/", web::get().to(|| async { "the application" }))
            .service(status)
            .service(check)
    })
    .workers(1)
    .bind(&bind)?;
    tracing::info!(addr = ?server.addrs(), "listening");
    // Returns after a graceful shutdown on SIGINT / SIGTERM.
    server.run().await?;
    monitor.shutdown().await?;
    Ok(())
}
