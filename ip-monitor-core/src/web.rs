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

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::address::Family;
use crate::error::Error;
use crate::monitor::{CheckReport, MonitorHandle};
use crate::report::{StatusReport, rfc3339};
use crate::store::{DeliveryCounts, DesiredState, RunState};

/// How long `/healthz` and `/metrics` wait for the store.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);
/// Changes shown on the page.
const HISTORY: usize = 20;

/// An HTTP request, as much of it as the surface reads.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `HEAD` or `POST`.
    pub method: &'a str,
    /// The path below the mount point, starting with `/`; a query is ignored.
    pub path: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The `Accept` header, if any.
    pub accept: Option<&'a str>,
    /// The body (a form, for the page's buttons).
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// A `GET` of `path`.
    pub fn get(path: &'a str) -> Self {
        Request {
            method: "GET",
            path,
            authorization: None,
            content_type: None,
            accept: None,
            body: b"",
        }
    }

    /// A form `POST` of `body` (`application/x-www-form-urlencoded`) to `path`.
    pub fn post(path: &'a str, body: &'a [u8]) -> Self {
        Request {
            method: "POST",
            path,
            authorization: None,
            content_type: Some("application/x-www-form-urlencoded"),
            accept: None,
            body,
        }
    }

    /// The same request with an `Authorization` header.
    pub fn authorization(mut self, value: &'a str) -> Self {
        self.authorization = Some(value);
        self
    }

    fn wants_json(&self) -> bool {
        self.accept.is_some_and(|a| a.contains("application/json"))
    }

    fn is_form(&self) -> bool {
        self.content_type.is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/x-www-form-urlencoded")
        })
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// Other headers (`Allow`, `WWW-Authenticate`, `Cache-Control`).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            headers: vec![("Cache-Control", "no-store".to_owned())],
            body: body.into(),
        }
    }

    fn text(status: u16, body: impl Into<String>) -> Self {
        let mut body = body.into();
        body.push('\n');
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    fn html(status: u16, body: String) -> Self {
        Response::new(status, "text/html; charset=utf-8", body)
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// The status page, health check and metrics of one running monitor; see the
/// [module](self).
#[derive(Debug, Clone)]
pub struct Dashboard {
    handle: MonitorHandle,
    token: Option<String>,
}

impl Dashboard {
    /// The surface of the monitor `handle` controls, with its buttons off (no token).
    pub fn new(handle: MonitorHandle) -> Self {
        Dashboard {
            handle,
            token: None,
        }
    }

    /// The token the `POST`s need; an empty one leaves them off.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// Answer one request.
    pub async fn respond(&self, request: Request<'_>) -> Response {
        let path = request.path.split(['?', '#']).next().unwrap_or("");
        let path = if path.is_empty() { "/" } else { path };
        let (allowed, method) = match path {
            "/" | "/healthz" | "/metrics" | "/status" => ("GET, HEAD", request.method),
            "/check" | "/test" => ("POST", request.method),
            _ => return Response::text(404, format!("no such page: {path}")),
        };
        let method = if method == "HEAD" { "GET" } else { method };
        if !allowed.split(", ").any(|m| m == method) {
            return Response::text(405, format!("{path} takes {allowed}")).header("Allow", allowed);
        }
        match path {
            "/healthz" => self.health().await,
            "/metrics" => self.metrics().await,
            "/status" => match self.report().await {
                Ok(report) => json(&report),
                Err(e) => Response::text(503, format!("store unreachable: {e}")),
            },
            "/" => self.page().await,
            "/check" if request.wants_json() => {
                if let Err(refused) = self.authorize(&request) {
                    return refused;
                }
                match self.handle.check_now().await {
                    Ok(reports) => json(&reports),
                    Err(e) => {
                        let (status, why) = refusal(e);
                        Response::text(status, why)
                    }
                }
            }
            action => {
                if let Err(refused) = self.authorize(&request) {
                    return refused;
                }
                let form = request.is_form();
                let result = if action == "/check" {
                    self.check().await
                } else {
                    self.test().await
                };
                match result {
                    Ok(done) if form => Response::html(200, result_page(&done, true)),
                    Ok(done) => Response::text(200, done),
                    Err((status, why)) if form => Response::html(status, result_page(&why, false)),
                    Err((status, why)) => Response::text(status, why),
                }
            }
        }
    }

    /// Answer an `http` request (a hyper or axum one, its body read): the path is taken
    /// from the URI as is, so strip a mount prefix first.
    pub async fn serve<B: AsRef<[u8]>>(
        &self,
        request: http::Request<B>,
    ) -> http::Response<Vec<u8>> {
        let (parts, body) = request.into_parts();
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
        };
        let answer = self
            .respond(Request {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                authorization: header(http::header::AUTHORIZATION),
                content_type: header(http::header::CONTENT_TYPE),
                accept: header(http::header::ACCEPT),
                body: body.as_ref(),
            })
            .await;
        let head = parts.method == http::Method::HEAD;
        let mut response = http::Response::new(if head { Vec::new() } else { answer.body });
        *response.status_mut() = http::StatusCode::from_u16(answer.status)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(answer.content_type),
        );
        for (name, value) in answer.headers {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }

    fn authorize(&self, request: &Request<'_>) -> Result<(), Response> {
        let Some(token) = &self.token else {
            return Err(Response::text(
                403,
                "the check and test actions are off: no token is configured",
            ));
        };
        let bearer = request
            .authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let field = request
            .is_form()
            .then(|| form_field(request.body, "token"))
            .flatten();
        let given = bearer.map(str::to_owned).or(field);
        match given {
            Some(given) if same(given.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(Response::text(401, "wrong token").header("WWW-Authenticate", "Bearer")),
            None => Err(Response::text(
                401,
                "a token is needed (Authorization: Bearer, or the form field token)",
            )
            .header("WWW-Authenticate", "Bearer")),
        }
    }

    /// Whether this instance runs, and its store answers.
    async fn health(&self) -> Response {
        let status = self.handle.status();
        if self.handle.is_finished() || status.state == RunState::Stopped {
            return Response::text(503, "stopped");
        }
        let desired =
            tokio::time::timeout(STORE_TIMEOUT, self.handle.store().desired_state()).await;
        match desired {
            Err(_) => Response::text(503, "store unreachable: no answer within 2 s"),
            Ok(Err(e)) => Response::text(503, format!("store unreachable: {e}")),
            Ok(Ok(DesiredState::Paused)) => Response::text(503, "paused"),
            Ok(Ok(DesiredState::Running)) if status.state == RunState::Paused => {
                Response::text(503, "paused")
            }
            Ok(Ok(DesiredState::Running)) if status.leader => Response::text(200, "ok: leader"),
            Ok(Ok(DesiredState::Running)) => Response::text(200, "ok: standby"),
        }
    }

    async fn report(&self) -> Result<StatusReport, String> {
        let store = self.handle.store().as_ref();
        let ttl = self.handle.config().effective_lease_ttl();
        match tokio::time::timeout(
            STORE_TIMEOUT,
            StatusReport::read(store, ttl, SystemTime::now()),
        )
        .await
        {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 2 s".to_owned()),
        }
    }

    /// The Prometheus text format.
    async fn metrics(&self) -> Response {
        let status = self.handle.status();
        let m = self.handle.metrics();
        let report = self.report().await;
        let mut out = String::new();
        family(
            &mut out,
            "ip_monitor_up",
            "gauge",
            "1 while this instance runs (leader or standby), 0 when paused, stopped or its store does not answer (as /healthz).",
        );
        let _ = writeln!(
            out,
            "ip_monitor_up {}",
            u8::from(
                status.state == RunState::Running
                    && !self.handle.is_finished()
                    && report
                        .as_ref()
                        .is_ok_and(|r| r.desired == DesiredState::Running)
            )
        );
        family(
            &mut out,
            "ip_monitor_leader",
            "gauge",
            "1 while this instance holds the lease.",
        );
        let _ = writeln!(out, "ip_monitor_leader {}", u8::from(status.leader));
        family(
            &mut out,
            "ip_monitor_store_up",
            "gauge",
            "1 when the store answered this scrape.",
        );
        let _ = writeln!(out, "ip_monitor_store_up {}", u8::from(report.is_ok()));
        family(
            &mut out,
            "ip_monitor_last_check_timestamp_seconds",
            "gauge",
            "When this instance last finished a full check (Unix time).",
        );
        if let Some(at) = status.last_check_at {
            let _ = writeln!(out, "ip_monitor_last_check_timestamp_seconds {}", unix(at));
        }
        family(
            &mut out,
            "ip_monitor_checks_total",
            "counter",
            "Full checks run by this instance.",
        );
        let _ = writeln!(out, "ip_monitor_checks_total {}", m.checks);
        family(
            &mut out,
            "ip_monitor_changes_total",
            "counter",
            "Address changes recorded by this instance.",
        );
        for f in &self.handle.config().families {
            let n = m.changes.get(f).copied().unwrap_or(0);
            let _ = writeln!(out, "ip_monitor_changes_total{{family=\"{f}\"}} {n}");
        }
        family(
            &mut out,
            "ip_monitor_tests_total",
            "counter",
            "Test notices recorded by this instance.",
        );
        let _ = writeln!(out, "ip_monitor_tests_total {}", m.tests);
        family(
            &mut out,
            "ip_monitor_source_requests_total",
            "counter",
            "Requests to IP sources by this instance, per source and result.",
        );
        for ((source, result), n) in &m.source_requests {
            let _ = writeln!(
                out,
                "ip_monitor_source_requests_total{{source=\"{}\",result=\"{}\"}} {n}",
                label(source),
                result.as_str()
            );
        }
        family(
            &mut out,
            "ip_monitor_source_latency_seconds",
            "gauge",
            "How long each source took at the last full check.",
        );
        for s in &status.sources {
            if let Some(ms) = s.latency_ms {
                let _ = writeln!(
                    out,
                    "ip_monitor_source_latency_seconds{{source=\"{}\",family=\"{}\"}} {}",
                    label(&s.name),
                    s.family,
                    ms as f64 / 1000.0
                );
            }
        }
        for (name, n, help) in [
            (
                "ip_monitor_deliveries_sent_total",
                m.deliveries_sent,
                "Deliveries this instance had accepted.",
            ),
            (
                "ip_monitor_delivery_retries_total",
                m.delivery_retries,
                "Delivery attempts by this instance that failed and will be retried.",
            ),
            (
                "ip_monitor_deliveries_failed_total",
                m.deliveries_failed,
                "Deliveries this instance gave up on.",
            ),
        ] {
            family(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {n}");
        }
        family(
            &mut out,
            "ip_monitor_route_deliveries_total",
            "counter",
            "Deliveries this instance handed over per route, with backup relays.",
        );
        for (route, n) in &status.sent_via {
            let _ = writeln!(
                out,
                "ip_monitor_route_deliveries_total{{route=\"{}\"}} {n}",
                label(route)
            );
        }
        if let Ok(report) = &report {
            family(
                &mut out,
                "ip_monitor_deliveries",
                "gauge",
                "Deliveries in the store, per state.",
            );
            for (state, n) in counts(&report.deliveries) {
                let _ = writeln!(out, "ip_monitor_deliveries{{state=\"{state}\"}} {n}");
            }
            family(
                &mut out,
                "ip_monitor_address_info",
                "gauge",
                "The current address of each family (always 1).",
            );
            for c in &report.current {
                let _ = writeln!(
                    out,
                    "ip_monitor_address_info{{family=\"{}\",address=\"{}\"}} 1",
                    c.family, c.address
                );
            }
            family(
                &mut out,
                "ip_monitor_address_since_timestamp_seconds",
                "gauge",
                "Since when each family has its current address (Unix time).",
            );
            for c in &report.current {
                let _ = writeln!(
                    out,
                    "ip_monitor_address_since_timestamp_seconds{{family=\"{}\"}} {}",
                    c.family,
                    unix(c.since)
                );
            }
        }
        Response::new(200, "text/plain; version=0.0.4; charset=utf-8", out)
    }

    async fn check(&self) -> Result<String, (u16, String)> {
        let reports = self.handle.check_now().await.map_err(refusal)?;
        Ok(reports
            .iter()
            .map(check_line)
            .collect::<Vec<_>>()
            .join("\n"))
    }

    async fn test(&self) -> Result<String, (u16, String)> {
        let status = self.handle.status();
        let address = self
            .handle
            .config()
            .families
            .iter()
            .find_map(|f| status.current.iter().find(|a| Family::of(a) == *f))
            .copied()
            .ok_or((
                409,
                "no current address yet: a test needs one (run a check first)".to_owned(),
            ))?;
        let change = self.handle.send_test(address).await.map_err(refusal)?;
        Ok(format!(
            "test notice #{} for {} recorded: {} deliveries queued",
            change.id, change.url, change.deliveries
        ))
    }

    /// The status page.
    async fn page(&self) -> Response {
        let me = self.handle.status();
        let now = SystemTime::now();
        let store = self.handle.store();
        let report = self.report().await;
        let history = match tokio::time::timeout(STORE_TIMEOUT, store.history(HISTORY)).await {
            Ok(Ok(history)) => history,
            _ => Vec::new(),
        };
        let mut h = String::with_capacity(16 * 1024);
        h.push_str(PAGE_HEAD);
        let state = report.as_ref().map_or("unreachable", |r| r.state.as_str());
        let _ = writeln!(
            h,
            "<header><h1>ip-monitor</h1><span class=\"state {state}\">{state}</span>\
             <span class=\"me\">this instance: {} on {} (pid {}), {}</span></header>",
            esc(&me.holder.id),
            esc(&me.holder.host),
            me.holder.pid,
            if me.leader { "leader" } else { "standby" }
        );
        let report = match report {
            Ok(report) => report,
            Err(e) => {
                let _ = writeln!(
                    h,
                    "<p class=\"error\">The store does not answer: {}</p></main></body></html>",
                    esc(&e)
                );
                return Response::html(503, h);
            }
        };
        if let Some(error) = me.last_error.as_deref() {
            let _ = writeln!(h, "<p class=\"error\">Last check: {}</p>", esc(error));
        }
        if let Some(error) = me.delivery_error.as_deref() {
            let _ = writeln!(h, "<p class=\"error\">Delivery: {}</p>", esc(error));
        }

        h.push_str("<section id=\"current\"><h2>Current address</h2>\n");
        if report.current.is_empty() {
            h.push_str("<p>No address recorded yet.</p>\n");
        }
        for c in &report.current {
            let url = history
                .iter()
                .find(|ch| ch.id == c.change_id)
                .map_or_else(|| self.handle.entry_url(c.address), |ch| ch.url.clone());
            let _ = writeln!(
                h,
                "<div class=\"address\">{}<div><p class=\"family\">{}</p>\
                 <p class=\"ip\">{}</p><p><a href=\"{url}\">{url}</a></p>\
                 <p class=\"muted\">since {} (change #{})</p></div></div>",
                qr_svg(&url),
                c.family,
                c.address,
                rfc3339(c.since),
                c.change_id,
                url = esc(&url),
            );
        }
        h.push_str("</section>\n");

        let _ = writeln!(
            h,
            "<section id=\"actions\"><h2>Actions</h2>{}</section>",
            self.actions()
        );

        // This instance's own view when it leads (fresher than its row in the store, which
        // is written at the heartbeat); else the leader's row.
        let main = if me.leader {
            Some(&me)
        } else {
            report.main.as_ref()
        };
        h.push_str("<section id=\"check\"><h2>Last check</h2>\n");
        let _ = writeln!(
            h,
            "<p>last {} · next {}</p>",
            main.and_then(|r| r.last_check_at)
                .map_or_else(|| "never".to_owned(), rfc3339),
            main.and_then(|r| r.next_check_at)
                .map_or_else(|| "—".to_owned(), rfc3339),
        );
        h.push_str(
            "<table><tr><th>source</th><th>family</th><th>answer</th><th>latency</th>\
             <th>error</th><th>asked</th></tr>\n",
        );
        for s in main.iter().flat_map(|r| &r.sources) {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.name),
                s.family,
                s.answer.map_or_else(|| "—".to_owned(), |a| a.to_string()),
                s.latency_ms
                    .map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms")),
                esc(s.error.as_deref().unwrap_or("")),
                rfc3339(s.at),
            );
        }
        h.push_str("</table></section>\n");

        h.push_str("<section id=\"deliveries\"><h2>Deliveries</h2><table><tr>");
        for (state, _) in counts(&report.deliveries) {
            let _ = write!(h, "<th>{}</th>", state.replace('_', " "));
        }
        h.push_str("</tr><tr>");
        for (_, n) in counts(&report.deliveries) {
            let _ = write!(h, "<td>{n}</td>");
        }
        h.push_str("</tr></table>\n");
        if let Some(m) = main.filter(|m| !m.sent_via.is_empty()) {
            let via: Vec<String> = m
                .sent_via
                .iter()
                .map(|(route, n)| format!("{} {n}", esc(route)))
                .collect();
            let _ = writeln!(h, "<p>Sent via: {}.</p>", via.join(", "));
        }
        h.push_str("</section>\n");

        h.push_str(
            "<section id=\"instances\"><h2>Instances</h2><table><tr><th>instance</th>\
             <th>host</th><th>pid</th><th>state</th><th>role</th><th>started</th>\
             <th>heartbeat</th></tr>\n",
        );
        for i in &report.instances {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&i.holder.id),
                esc(&i.holder.host),
                i.holder.pid,
                i.state,
                if i.leader { "leader" } else { "" },
                rfc3339(i.started_at),
                rfc3339(i.heartbeat_at),
            );
        }
        h.push_str("</table>\n");
        match &report.leader {
            Some(l) => {
                let _ = writeln!(
                    h,
                    "<p>Lease: held by {} on {} (pid {}), fence {}, until {}.</p>",
                    esc(&l.holder.id),
                    esc(&l.holder.host),
                    l.holder.pid,
                    l.fence,
                    rfc3339(l.expires_at)
                );
            }
            None => h.push_str("<p>No instance holds the lease.</p>\n"),
        }
        if report.desired == DesiredState::Paused {
            h.push_str(
                "<p class=\"error\">Paused by the operator: <code>ip-monitor start</code> resumes them.</p>\n",
            );
        }
        h.push_str("</section>\n");

        h.push_str(
            "<section id=\"history\"><h2>History</h2><table><tr><th>#</th><th>kind</th>\
             <th>family</th><th>address</th><th>previous</th><th>detected</th>\
             <th>deliveries</th></tr>\n",
        );
        for c in &history {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                c.id,
                c.kind.as_str(),
                c.family,
                c.address,
                c.previous.map_or_else(|| "—".to_owned(), |a| a.to_string()),
                rfc3339(c.detected_at),
                c.deliveries,
            );
        }
        h.push_str("</table></section>\n");
        let _ = writeln!(
            h,
            "<footer>Read {} · refresh the page to update</footer></main></body></html>",
            rfc3339(now)
        );
        Response::html(200, h)
    }

    fn actions(&self) -> String {
        if self.token.is_none() {
            return "<p class=\"muted\">The check and test buttons are off: no token is \
                    configured (<code>[server] token_env</code>).</p>"
                .to_owned();
        }
        let form = |action: &str, label: &str| {
            format!(
                "<form method=\"post\" action=\"{action}\"><input type=\"password\" \
                 name=\"token\" placeholder=\"token\" required autocomplete=\"current-password\">\
                 <button type=\"submit\">{label}</button></form>"
            )
        };
        format!(
            "{}{}",
            form("check", "Check now"),
            form("test", "Send a test notice")
        )
    }
}

fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => Response::new(200, "application/json", body),
        Err(e) => Response::text(500, e.to_string()),
    }
}

/// The error of a refused action, with its HTTP status.
fn refusal(e: Error) -> (u16, String) {
    let status = match &e {
        Error::NotLeader { .. } | Error::Paused => 409,
        Error::Stopped => 503,
        _ => 500,
    };
    (status, e.to_string())
}

fn check_line(r: &CheckReport) -> String {
    let family = r.outcome.family;
    if let Some(e) = &r.error {
        return format!("{family}: {e}");
    }
    match (&r.change, r.confirming, r.outcome.result.as_ref().ok()) {
        (Some(c), _, _) => format!(
            "{family}: {} recorded (change #{}, {} deliveries)",
            c.address, c.id, c.deliveries
        ),
        (None, Some((seen, needed)), Some(a)) => {
            format!("{family}: {a} seen {seen} of {needed} times, not recorded yet")
        }
        (None, _, Some(a)) => format!("{family}: {a}, unchanged"),
        (None, _, None) => format!("{family}: no address"),
    }
}

fn result_page(message: &str, ok: bool) -> String {
    format!(
        "{PAGE_HEAD}<p class=\"{}\">{}</p><p><a href=\"./\">Back to the status page</a></p>\
         </main></body></html>\n",
        if ok { "done" } else { "error" },
        esc(message).replace('\n', "<br>")
    )
}

fn counts(c: &DeliveryCounts) -> [(&'static str, u64); 5] {
    [
        ("pending", c.pending),
        ("in_flight", c.in_flight),
        ("sent", c.sent),
        ("failed", c.failed),
        ("superseded", c.superseded),
    ]
}

/// The `# HELP` and `# TYPE` lines of a metric.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Text for HTML (content and double-quoted attributes).
fn esc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Compare secrets in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of `name` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == name)
            .then(|| percent_decode(v))
            .flatten()
    })
}

fn percent_decode(v: &str) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let mut bytes = v.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// The entry URL's QR code as inline SVG (error correction M, quiet zone of 4 modules).
#[cfg(feature = "qr")]
fn qr_svg(url: &str) -> String {
    let Ok(code) = qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
    else {
        return String::new();
    };
    let width = code.width();
    let size = width + 8;
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let _ = write!(path, "M{} {}h1v1h-1z", i % width + 4, i / width + 4);
        }
    }
    format!(
        "<svg class=\"qr\" role=\"img\" aria-label=\"QR code of the entry URL\" \
         xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" \
         fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    )
}

#[cfg(not(feature = "qr"))]
fn qr_svg(_url: &str) -> String {
    String::new()
}

const PAGE_HEAD: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>ip-monitor</title><style>\
body{font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",sans-serif;margin:0;background:#f5f6f8;color:#1d2330}\
main{max-width:980px;margin:0 auto;padding:16px 20px 40px}\
header{display:flex;flex-wrap:wrap;gap:12px;align-items:baseline;border-bottom:1px solid #d9dce3;padding-bottom:8px}\
h1{font-size:22px;margin:0}h2{font-size:16px;margin:22px 0 8px}\
section{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:4px 16px 12px;margin-top:14px}\
.state{font-weight:600;padding:2px 10px;border-radius:12px;background:#e1e4ea}\
.state.running{background:#d6f5df;color:#11602b}.state.paused,.state.stale{background:#fff0c2;color:#6b4d00}\
.state.stopped,.state.unreachable{background:#fbd9d9;color:#8a1616}\
.me,.muted,footer{color:#5b6275;font-size:13px}footer{margin-top:18px}\
.address{display:flex;gap:18px;align-items:center;margin:8px 0}\
.qr{width:168px;height:168px;flex:none}.ip{font-size:26px;font-weight:600;margin:0}.family{margin:0;text-transform:uppercase;color:#5b6275}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceef2;word-break:break-all}\
th{color:#5b6275;font-weight:600}\
form{display:inline-flex;gap:6px;margin:4px 12px 4px 0}input{padding:5px 8px;border:1px solid #c4c8d2;border-radius:5px}\
button{padding:5px 14px;border:0;border-radius:5px;background:#1f5fbf;color:#fff;font-weight:600;cursor:pointer}\
.error{color:#8a1616;background:#fdeaea;padding:6px 10px;border-radius:6px}.done{color:#11602b;background:#e3f7e8;padding:6px 10px;border-radius:6px}\
a{color:#1f5fbf}\
</style></head><body><main>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(
            form_field(b"a=1&token=s%2F3+c", "token").as_deref(),
            Some("s/3 c")
        );
        assert_eq!(form_field(b"token", "token").as_deref(), Some(""));
        assert_eq!(form_field(b"tok=1", "token"), None);
        assert_eq!(form_field(b"token=%zz", "token"), None);
    }

    #[test]
    fn text_is_escaped_for_html_and_labels() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cret", b"s3cre"));
        assert!(!same(b"s3cret", b"s3creT"));
    }
}
