//! [`Dashboard`]: the routes, the health check, and the two actions.

use super::page::result_page;
use super::request::{Request, Response};
use super::shown::{self, Reader};
use super::snapshot::Snapshots;
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
    /// Shared by the clones: every clone serves the same snapshot.
    pub(super) snapshots: Snapshots,
}

impl Dashboard {
    /// The surface of the monitor `handle` controls, with its buttons off (no token).
    pub fn new(handle: MonitorHandle) -> Self {
        Dashboard {
            handle,
            token: None,
            snapshots: Snapshots::default(),
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
            "/healthz" => self.health(self.reader(&request)).await,
            "/metrics" => self.metrics().await,
            "/status" => match &self.snapshot().await.report {
                Ok(report) => {
                    let mut report = report.clone();
                    shown::for_reader(&mut report, self.reader(&request));
                    json(&report)
                }
                Err(e) => Response::text(
                    503,
                    format!(
                        "store unreachable: {}",
                        shown::text(e, self.reader(&request))
                    ),
                ),
            },
            "/" => self.page(self.reader(&request)).await,
            "/check" if request.wants_json() => {
                if let Err(refused) = self.authorize(&request) {
                    return refused;
                }
                let answer = match self.handle.check_now().await {
                    Ok(reports) => json_masked(&reports),
                    Err(e) => {
                        let (status, why) = refusal(e);
                        Response::text(status, shown::masked(&why))
                    }
                };
                self.forget_snapshot().await;
                answer
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
                self.forget_snapshot().await;
                let result = result
                    .map(|done| shown::masked(&done))
                    .map_err(|(status, why)| (status, shown::masked(&why)));
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

    /// Whether this instance runs, and its store answers (as of the snapshot, at most
    /// a second old); a store error as `reader` may see it.
    async fn health(&self, reader: Reader) -> Response {
        let status = self.handle.status();
        if self.handle.is_finished() || status.state == RunState::Stopped {
            return Response::text(503, "stopped");
        }
        let snapshot = self.snapshot().await;
        match snapshot.report.as_ref().map(|r| r.desired) {
            Err(e) => Response::text(
                503,
                format!("store unreachable: {}", shown::text(e, reader)),
            ),
            Ok(DesiredState::Paused) => Response::text(503, "paused"),
            Ok(DesiredState::Running) if status.state == RunState::Paused => {
                Response::text(503, "paused")
            }
            Ok(DesiredState::Running) if status.leader => Response::text(200, "ok: leader"),
            Ok(DesiredState::Running) => Response::text(200, "ok: standby"),
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

/// [`json`], with the text of every `error` field masked (a relay's or a source's words).
fn json_masked(value: &impl serde::Serialize) -> Response {
    fn mask(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(fields) => {
                for (key, field) in fields.iter_mut() {
                    match field {
                        serde_json::Value::String(text) if key.ends_with("error") => {
                            *text = shown::masked(text);
                        }
                        _ => mask(field),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(mask),
            _ => {}
        }
    }
    match serde_json::to_value(value) {
        Ok(mut value) => {
            mask(&mut value);
            json(&value)
        }
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
