//! A small HTTP surface for a running monitor, written once for any HTTP server: the
//! standalone binary serves it with hyper, the axum and actix-web examples mount it under a
//! prefix. [`Dashboard::respond`] answers a [`Request`] (method, path below the mount point,
//! `Authorization`, form body) with a [`Response`]:
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok: leader` or `ok: standby` while this instance runs; `503` when it is paused or stopped, or its store does not answer within 2 s |
//! | `GET /metrics` | the Prometheus text format (version 0.0.4) |
//! | `GET /status` | the [`StatusReport`] as JSON (what `ip-monitor status --json` prints) |
//! | `GET /` | a status page: the current address with its entry URL and QR code, the leader and every instance, the last check with each source's answer and latency, recent history, delivery counts, and the two buttons below |
//! | `POST /check` | a full check now ([`MonitorHandle::check_now`]); with `Accept: application/json`, the [`CheckReport`]s as JSON |
//! | `POST /test` | a test notice for the current address ([`MonitorHandle::send_test`]) |
//!
//! The `GET`s share one snapshot of the store, read at most once a second and by one
//! request at a time: a flood of readers costs the store one connection and a few calls a
//! second, never the connections the lease renewal needs, and what they show is at most a
//! second old (an action forgets it, so the page after a check shows the check).
//!
//! On the page and in `/status` an error (a source's, the relay's) shows only its class,
//! such as `the relay answered 450 4.2.0` or `a timeout`: a relay's reply names staff and a
//! source's URL may hold credentials. A `GET` with `Authorization: Bearer TOKEN` sees the
//! text, mail addresses and URL credentials masked.
//!
//! The two `POST`s need the token given to [`Dashboard::token`], as
//! `Authorization: Bearer TOKEN` or as the form field `token` (the page's buttons send it);
//! without a token they are refused. The page is one HTML document with its style inline:
//! no script, no external asset. Mounted under a prefix, the page must be served at the
//! prefix with a trailing slash (`/ip-monitor/`): its forms post to relative URLs.
//!
//! [`Dashboard::serve`] takes and returns the `http` crate's types, which hyper and axum
//! use; [`Dashboard::respond`] takes the parts of any other server's request.
//!
//! ```
//! use std::sync::Arc;
//! use ip_monitor_core::web::{Dashboard, Request};
//! use ip_monitor_core::*;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let handle = Monitor::builder(
//!     SourceSet::new(vec![Arc::new(
//!         StaticIpSource::new("fixed").with_answer("81.2.69.160".parse()?),
//!     )]),
//!     MemoryStore::new(),
//!     StaticRecipients::new(["staff@example.com"]),
//!     RecordingNotifier::new(),
//! )
//! .build()?
//! .spawn();
//! let dashboard = Dashboard::new(handle.clone()).token("s3cret");
//! let metrics = dashboard.respond(Request::get("/metrics")).await;
//! assert_eq!(metrics.status, 200);
//! assert!(String::from_utf8(metrics.body)?.contains("ip_monitor_leader"));
//! let refused = dashboard.respond(Request::post("/check", b"token=wrong")).await;
//! assert_eq!(refused.status, 401);
//! handle.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod report;

/// How long `/healthz`, `/metrics` and the page wait for the store.
#[cfg(feature = "web")]
const STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(feature = "web")]
mod auth;
#[cfg(feature = "web")]
mod dashboard;
#[cfg(feature = "web")]
mod metrics;
#[cfg(feature = "web")]
mod page;
#[cfg(feature = "web")]
mod request;
#[cfg(feature = "web")]
mod shown;
#[cfg(feature = "web")]
mod snapshot;

#[cfg(feature = "web")]
pub use dashboard::Dashboard;
#[cfg(feature = "web")]
pub use request::{Request, Response, SECURITY_HEADERS};
