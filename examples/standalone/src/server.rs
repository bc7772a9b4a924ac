//! `[server]`: the core's status page, health check and metrics
//! ([`Dashboard`](ip_monitor_core::web::Dashboard)) over HTTP/1.1 on hyper, bounded so that
//! no client can hold the monitor's resources: each connection has a deadline for its request
//! (headers and body) and a lifetime, a GET or HEAD body is never read, the number of
//! connections served at once is capped (the excess is closed at once), and only requests
//! whose `Host` is an IP address, `localhost` or a configured name are answered (a page
//! reached through a rebound DNS name is not).

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
use ip_monitor_core::web::{Dashboard, SECURITY_HEADERS};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The largest request body read (the page's forms are a few dozen bytes).
const MAX_BODY: usize = 16 * 1024;

/// The limits of [`serve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send one request, headers and body.
    pub request_timeout: Duration,
    /// How long one connection may stay open, whatever it does.
    pub connection_lifetime: Duration,
    /// How many connections are served at once; more are closed as they come.
    pub max_connections: usize,
    /// Names (besides IP addresses and `localhost`) a request's `Host` may carry, lower case
    /// and without a port.
    pub hosts: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(10),
            connection_lifetime: Duration::from_secs(60),
            max_connections: 64,
            hosts: Vec::new(),
        }
    }
}

/// Answer connections on `listener` within `limits` until the task is dropped.
pub async fn serve(listener: TcpListener, dashboard: Dashboard, limits: Limits) {
    let dashboard = Arc::new(dashboard);
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut refused_logged = false;
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
        // Past the cap the connection is closed at once: the monitor's own sockets (sources,
        // SMTP, the store) never wait for file descriptors held by web clients.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            if !refused_logged {
                tracing::warn!(
                    "HTTP: {} connections open, closing new ones until some end",
                    limits.max_connections
                );
                refused_logged = true;
            }
            drop(stream);
            continue;
        };
        refused_logged = false;
        let (dashboard, limits) = (Arc::clone(&dashboard), Arc::clone(&limits));
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn({
                let limits = Arc::clone(&limits);
                move |request| {
                    let (dashboard, limits) = (Arc::clone(&dashboard), Arc::clone(&limits));
                    async move { Ok::<_, Infallible>(answer(&dashboard, &limits, request).await) }
                }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.request_timeout)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(limits.connection_lifetime, connection).await {
                Ok(Err(e)) => tracing::debug!("HTTP connection: {e}"),
                Err(_) => tracing::debug!("HTTP connection closed at the end of its lifetime"),
                Ok(Ok(())) => {}
            }
        });
    }
}

/// A plain-text answer with the page's security headers.
fn plain(status: StatusCode, text: &'static str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    for (name, value) in SECURITY_HEADERS {
        headers.insert(*name, hyper::header::HeaderValue::from_static(value));
    }
    response
}

/// Whether `host` (a `Host` header's value) names this server in a way no rebound DNS name
/// can: an IP address, `localhost`, or one of `allowed`.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6] or [v6]:port
        return rest
            .split_once(']')
            .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host.as_str(),
        }
    };
    let name = name.trim_end_matches('.');
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name == "localhost"
        || allowed.iter().any(|a| a == name)
}

async fn answer(
    dashboard: &Dashboard,
    limits: &Limits,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    if let Some(host) = &host
        && !host_allowed(host, &limits.hosts)
    {
        tracing::debug!(host, "HTTP: a request for another host");
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers to its address, localhost and [server] hosts\n",
        );
    }
    // A GET or HEAD carries no body worth reading; a POST's is read within the deadline.
    let body = if matches!(parts.method, hyper::Method::GET | hyper::Method::HEAD) {
        Bytes::new()
    } else {
        let read = tokio::time::timeout(
            limits.request_timeout,
            Limited::new(body, MAX_BODY).collect(),
        );
        match read.await {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(_)) => {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large or cut short\n",
                );
            }
            Err(_) => {
                let mut response = plain(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time\n",
                );
                response.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
                return response;
            }
        }
    };
    let (method, path) = (parts.method.clone(), parts.uri.path().to_owned());
    let response = dashboard
        .serve(hyper::Request::from_parts(parts, body))
        .await;
    tracing::debug!(%method, path, status = response.status().as_u16(), "HTTP");
    response.map(|body| Full::new(Bytes::from(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_localhost_and_configured_names_are_hosts() {
        let allowed = vec!["monitor.corp.example".to_owned()];
        for ok in [
            "127.0.0.1:9105",
            "127.0.0.1",
            "[::1]:9105",
            "[2001:db8::1]",
            "localhost:9105",
            "LOCALHOST",
            "monitor.corp.example:9105",
            "Monitor.Corp.Example.",
            "81.2.69.160:9105",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:9105",
            "127.0.0.1.attacker.example",
            "monitor.corp.example.attacker.example",
            "[::1",
            "",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }
}
