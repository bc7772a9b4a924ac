//! `GET /`: the status page — one HTML document with its style inline, no script, no
//! external asset — built section by section.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::Dashboard;
use super::metrics::counts;
use super::report::{StatusReport, rfc3339};
use super::request::Response;
use super::shown::{self, Reader};
use crate::html::esc;
use crate::store::{Change, DesiredState, InstanceStatus};

impl Dashboard {
    /// The status page, its errors as `reader` may see them.
    pub(super) async fn page(&self, reader: Reader) -> Response {
        let mut me = self.handle.status();
        shown::for_status(&mut me, reader);
        let now = SystemTime::now();
        let snapshot = self.snapshot().await;
        let (report, history) = (snapshot.report.clone(), &snapshot.history);
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
            Ok(mut report) => {
                shown::for_reader(&mut report, reader);
                report
            }
            Err(e) => {
                let _ = writeln!(
                    h,
                    "<p class=\"error\">The store does not answer: {}</p></main></body></html>",
                    esc(&shown::text(&e, reader))
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

        self.current_section(&mut h, &report, history);
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
        check_section(&mut h, main);
        deliveries_section(&mut h, &report, main);
        instances_section(&mut h, &report);
        history_section(&mut h, history);
        let _ = writeln!(
            h,
            "<footer>Read {} · refresh the page to update</footer></main></body></html>",
            rfc3339(now)
        );
        Response::html(200, h)
    }

    /// Each family's address, entry URL and QR code.
    fn current_section(&self, h: &mut String, report: &StatusReport, history: &[Change]) {
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

/// The last check: each source's answer, latency and error.
fn check_section(h: &mut String, main: Option<&InstanceStatus>) {
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
}

/// Delivery counts, and the routes that took them.
fn deliveries_section(h: &mut String, report: &StatusReport, main: Option<&InstanceStatus>) {
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
}

/// Every instance, the lease, and whether the operator paused them.
fn instances_section(h: &mut String, report: &StatusReport) {
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
}

/// Recent changes, newest first.
fn history_section(h: &mut String, history: &[Change]) {
    h.push_str(
        "<section id=\"history\"><h2>History</h2><table><tr><th>#</th><th>kind</th>\
         <th>family</th><th>address</th><th>previous</th><th>detected</th>\
         <th>deliveries</th></tr>\n",
    );
    for c in history {
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
}

/// The page after a button: what was done, or why not.
pub(super) fn result_page(message: &str, ok: bool) -> String {
    format!(
        "{PAGE_HEAD}<p class=\"{}\">{}</p><p><a href=\"./\">Back to the status page</a></p>\
         </main></body></html>\n",
        if ok { "done" } else { "error" },
        esc(message).replace('\n', "<br>")
    )
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
    fn text_is_escaped_for_html() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
