//! `[server]`: the core's status page, health check and metrics
//! ([`Dashboard`](ip_monitor_core::web::Dashboard)) over HTTP/1.1 on hyper.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use ip_monitor_core::web::Dashboard;
use tokio::net::TcpListener;

/// The largest request body read (the page's forms are a few dozen bytes).
const MAX_BODY: usize = 16 * 1024;
/// How long a client may take to send its request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Answer connections on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, dashboard: Dashboard) {
    let dashboard = Arc::new(dashboard);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, for instance: wait instead of spinning.
                tracing::warn!("HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let dashboard = Arc::clone(&dashboard);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let dashboard = Arc::clone(&dashboard);
                async move { Ok::<_, Infallible>(answer(&dashboard, request).await) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!("HTTP connection: {e}");
            }
        });
    }
}

async fn answer(
    dashboard: &Dashboard,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
        let mut response = hyper::Response::new(Full::new(Bytes::from_static(
            b"request body too large or cut short\n",
        )));
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        return response;
    };
    let (method, path) = (parts.method.clone(), parts.uri.path().to_owned());
    let response = dashboard
        .serve(hyper::Request::from_parts(parts, body.to_bytes()))
        .await;
    tracing::debug!(%method, path, status = response.status().as_u16(), "HTTP");
    response.map(|body| Full::new(Bytes::from(body)))
}
