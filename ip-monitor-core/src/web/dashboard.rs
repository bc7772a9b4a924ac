//! [`Dashboard`]: the routes, the health check, and the two actions.

use std::time::SystemTime;

use super::STORE_TIMEOUT;
use super::page::result_page;
use super::report::StatusReport;
use super::request::{Request, Response};
use super::shown;
use crate::address::Family;
use crate::error::Error;
use crate::monitor::{CheckReport, MonitorHandle};
use crate::store::{DesiredState, RunState};

/// The status page, health check and metrics of one running monitor; see the
/// [module](self).
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub(super) handle: MonitorHandle,
    pub(super) token: Option<String>,
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
                Ok(mut report) => {
                    shown::for_reader(&mut report, self.reader(&request));
                    json(&report)
                }
                Err(e) => Response::text(
                    503,
                    format!(
                        "store unreachable: {}",
                        shown::text(&e, self.reader(&request))
                    ),
                ),
            },
            "/" => self.page(self.reader(&request)).await,
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

    pub(super) async fn report(&self) -> Result<StatusReport, String> {
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
