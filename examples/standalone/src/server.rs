//! `[server]`: the core's status page, health check and metrics
//! ([`Dashboard`](ip_monitor_core::web::Dashboard)) over HTTP/1.1 on hyper.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use ip_monitor_core::web::{Dashboard, Request};
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
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            let mut response = hyper::Response::new(Full::new(Bytes::from_static(
                b"request body too large or cut short\n",
            )));
            *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return response;
        }
    };
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let answer = dashboard
        .respond(Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            authorization: header(AUTHORIZATION),
            content_type: header(CONTENT_TYPE),
            body: &body,
        })
        .await;
    tracing::debug!(method = %parts.method, path = parts.uri.path(), status = answer.status, "HTTP");
    let body = if parts.method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(answer.body)
    };
    let mut response = hyper::Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}
