//! Eight push services on one loopback HTTP server, each under a path of its own and each
//! judging its requests as the real service does: the token or key, the fields its API
//! requires, the multipart upload, and the QR code, decoded back to the link. A request
//! that passes is kept as a [`Pushed`]; one that does not is answered with the service's
//! own error. The test can make the next request of a service fail, or all of them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{Behavior, HttpServer};

/// The tokens and keys the services accept.
pub mod keys {
    /// Telegram's bot token.
    pub const TELEGRAM: &str = "123456:telegram-bot-token";
    /// Discord's webhook id and token.
    pub const DISCORD: (&str, &str) = ("987654", "discord-webhook-token");
    /// ntfy's access token.
    pub const NTFY: &str = "tk_ntfy_access_token";
    /// Gotify's application token.
    pub const GOTIFY: &str = "gotify-app-token";
    /// Pushover's application token and user key.
    pub const PUSHOVER: (&str, &str) = ("pushover-app-token", "pushover-user-key");
    /// Bark's device key.
    pub const BARK: &str = "bark-device-key";
    /// ServerChan's SendKey.
    pub const SERVERCHAN: &str = "SCT1234serverchan";
    /// PushPlus's token.
    pub const PUSHPLUS: &str = "pushplus-token";
}

/// One message a service took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The service's kind (`telegram`, …).
    pub service: &'static str,
    /// The chat (Telegram), empty for the others.
    pub to: String,
    /// The title.
    pub title: String,
    /// The text.
    pub text: String,
    /// The link the message opens.
    pub url: String,
    /// What the QR code says, if one came.
    pub qr: Option<String>,
}

/// An answer given instead of the judge's, after `skip` more requests.
#[derive(Debug)]
struct Failure {
    skip: usize,
    status: u16,
    body: String,
    retry_after: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    pushed: Vec<Pushed>,
    rejected: Vec<String>,
    /// Per service: requests to let through first, then the answer to give instead.
    fail: HashMap<&'static str, VecDeque<Failure>>,
    down: bool,
}

/// The services' server; see the [module](self).
#[derive(Debug)]
pub struct PushServer {
    /// The HTTP server.
    pub server: HttpServer,
    state: Arc<Mutex<State>>,
}

/// A request as the judge sees it.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    headers: HashMap<String, String>,
    body: &'a [u8],
}

impl Request<'_> {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(self.body).unwrap_or(Value::Null)
    }

    /// The fields of a multipart/form-data body: name, then the file name and the bytes.
    fn multipart(&self) -> HashMap<String, (Option<String>, Vec<u8>)> {
        let ct = self.header("content-type");
        let Some(boundary) = ct
            .strip_prefix("multipart/form-data")
            .and_then(|r| r.split("boundary=").nth(1))
        else {
            return HashMap::new();
        };
        let delimiter = format!("--{}", boundary.trim_matches('"'));
        let mut fields = HashMap::new();
        for part in split(self.body, delimiter.as_bytes()).into_iter().skip(1) {
            let part = part.strip_prefix(b"\r\n").unwrap_or(part);
            let Some(end) = part.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&part[..end]).to_string();
            let data = &part[end + 4..];
            let data = data.strip_suffix(b"\r\n").unwrap_or(data);
            let disposition = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
                .unwrap_or("");
            let attr = |key: &str| {
                disposition
                    .split(';')
                    .map(str::trim)
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                    .map(|v| v.trim_end_matches('"').to_owned())
            };
            if let Some(name) = attr("name") {
                fields.insert(name, (attr("filename"), data.to_vec()));
            }
        }
        fields
    }

    /// The fields of an `application/x-www-form-urlencoded` body.
    fn form(&self) -> HashMap<String, String> {
        String::from_utf8_lossy(self.body)
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (percent_decode(k), percent_decode(v)))
            .collect()
    }
}

fn split<'a>(body: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.windows(delimiter.len()).position(|w| w == delimiter) {
        parts.push(&rest[..at]);
        rest = &rest[at + delimiter.len()..];
    }
    parts.push(rest);
    parts
}

fn percent_decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a PNG's QR code says.
pub fn decode_qr(png: &[u8]) -> Result<String, String> {
    let img = image::load_from_memory(png)
        .map_err(|e| format!("not an image: {e}"))?
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    let grid = grids.first().ok_or("no QR code in the image")?;
    grid.decode()
        .map(|(_, text)| text)
        .map_err(|e| format!("an unreadable QR code: {e}"))
}

/// An RFC 2047 `=?UTF-8?B?…?=` header decoded; other text as it is.
fn header_text(v: &str) -> String {
    match v
        .strip_prefix("=?UTF-8?B?")
        .or_else(|| v.strip_prefix("=?utf-8?b?"))
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
        None => v.to_owned(),
    }
}

/// A judged request: what was pushed, or the service's refusal.
type Verdict = Result<Pushed, (u16, Value)>;

fn refuse(status: u16, body: Value) -> Verdict {
    Err((status, body))
}

fn text_of(fields: &HashMap<String, (Option<String>, Vec<u8>)>, name: &str) -> String {
    fields
        .get(name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn png_of(
    fields: &HashMap<String, (Option<String>, Vec<u8>)>,
    name: &str,
) -> Option<Result<String, String>> {
    fields.get(name).map(|(_, png)| decode_qr(png))
}

fn telegram(r: &Request<'_>, rest: &str) -> Verdict {
    let bad = |code: u16, d: &str| {
        refuse(
            code,
            json!({"ok": false, "error_code": code, "description": d}),
        )
    };
    let Some((token, method)) = rest.strip_prefix("/bot").and_then(|r| r.split_once('/')) else {
        return bad(404, "Not Found");
    };
    if token != keys::TELEGRAM {
        return bad(401, "Unauthorized");
    }
    if method != "sendPhoto" {
        return bad(404, "Not Found: method not found");
    }
    let f = r.multipart();
    let (chat, caption) = (text_of(&f, "chat_id"), text_of(&f, "caption"));
    if chat.is_empty() {
        return bad(400, "Bad Request: chat_id is empty");
    }
    if text_of(&f, "parse_mode") != "HTML" || caption.chars().count() > 1024 {
        return bad(400, "Bad Request: can't parse entities");
    }
    let markup: Value = serde_json::from_str(&text_of(&f, "reply_markup")).unwrap_or(Value::Null);
    let button = &markup["inline_keyboard"][0][0];
    let url = button["url"].as_str().unwrap_or("").to_owned();
    if button["text"].as_str().is_none_or(str::is_empty) || !url.starts_with("http") {
        return bad(400, "Bad Request: BUTTON_URL_INVALID");
    }
    let qr = match png_of(&f, "photo") {
        Some(Ok(qr)) => qr,
        _ => return bad(400, "Bad Request: IMAGE_PROCESS_FAILED"),
    };
    let (title, text) = caption.split_once('\n').unwrap_or((&caption, ""));
    let Some(title) = title
        .strip_prefix("<b>")
        .and_then(|t| t.strip_suffix("</b>"))
    else {
        return bad(400, "Bad Request: can't parse entities");
    };
    Ok(Pushed {
        service: "telegram",
        to: chat,
        title: title.replace("&amp;", "&"),
        text: text.replace("&amp;", "&"),
        url,
        qr: Some(qr),
    })
}

fn discord(r: &Request<'_>, rest: &str) -> Verdict {
    let (id, token) = keys::DISCORD;
    if rest.split('?').next() != Some(&format!("/api/webhooks/{id}/{token}")) {
        return refuse(
            401,
            json!({"message": "Invalid Webhook Token", "code": 50027}),
        );
    }
    let f = r.multipart();
    let payload: Value = serde_json::from_str(&text_of(&f, "payload_json")).unwrap_or(Value::Null);
    let embed = &payload["embeds"][0];
    let qr = match (embed["image"]["url"].as_str(), png_of(&f, "files[0]")) {
        (Some("attachment://qr.png"), Some(Ok(qr)))
            if f["files[0]"].0.as_deref() == Some("qr.png") =>
        {
            qr
        }
        _ => return refuse(400, json!({"message": "Invalid Form Body", "code": 50035})),
    };
    Ok(Pushed {
        service: "discord",
        to: String::new(),
        title: embed["title"].as_str().unwrap_or("").to_owned(),
        text: embed["description"].as_str().unwrap_or("").to_owned(),
        url: embed["url"].as_str().unwrap_or("").to_owned(),
        qr: Some(qr),
    })
}

fn ntfy(r: &Request<'_>, rest: &str) -> Verdict {
    if r.header("authorization") != format!("Bearer {}", keys::NTFY) {
        return refuse(
            403,
            json!({"code": 40301, "http": 403, "error": "forbidden"}),
        );
    }
    if r.method != "PUT" || rest != "/ipm-alerts" || r.header("filename") != "qr.png" {
        return refuse(
            400,
            json!({"code": 40001, "http": 400, "error": "invalid request"}),
        );
    }
    let click = r.header("click").to_owned();
    let actions = header_text(r.header("actions"));
    if !actions.starts_with("view,") || !actions.ends_with(&click) {
        return refuse(
            400,
            json!({"code": 40018, "http": 400, "error": "invalid request: actions invalid"}),
        );
    }
    let qr = decode_qr(r.body).map_err(|_| {
        (
            400,
            json!({"code": 40010, "http": 400, "error": "bad attachment"}),
        )
    })?;
    Ok(Pushed {
        service: "ntfy",
        to: String::new(),
        title: header_text(r.header("title")),
        text: header_text(r.header("message")),
        url: click,
        qr: Some(qr),
    })
}

fn gotify(r: &Request<'_>, rest: &str) -> Verdict {
    if r.header("x-gotify-key") != keys::GOTIFY {
        return refuse(
            401,
            json!({"error": "Unauthorized", "errorCode": 401,
            "errorDescription": "you need to provide a valid access token or user credentials to access this api"}),
        );
    }
    let v = r.json();
    let url = v["extras"]["client::notification"]["click"]["url"]
        .as_str()
        .unwrap_or("");
    if rest != "/message" || v["message"].as_str().is_none_or(str::is_empty) || url.is_empty() {
        return refuse(
            400,
            json!({"error": "Bad Request", "errorCode": 400, "errorDescription": "Field 'message' is required"}),
        );
    }
    Ok(Pushed {
        service: "gotify",
        to: String::new(),
        title: v["title"].as_str().unwrap_or("").to_owned(),
        text: v["message"].as_str().unwrap_or("").to_owned(),
        url: url.to_owned(),
        qr: None,
    })
}

fn pushover(r: &Request<'_>, rest: &str) -> Verdict {
    let f = r.multipart();
    let (token, user) = keys::PUSHOVER;
    if rest != "/1/messages.json" || text_of(&f, "token") != token {
        return refuse(
            400,
            json!({"token": "invalid", "errors": ["application token is invalid"], "status": 0, "request": "r"}),
        );
    }
    if text_of(&f, "user") != user {
        return refuse(
            400,
            json!({"user": "invalid", "errors": ["user identifier is not a valid user, group, or subscribed user key"], "status": 0, "request": "r"}),
        );
    }
    let qr = match png_of(&f, "attachment") {
        Some(Ok(qr)) => qr,
        _ => {
            return refuse(
                400,
                json!({"attachment": "invalid", "errors": ["attachment is invalid"], "status": 0, "request": "r"}),
            );
        }
    };
    Ok(Pushed {
        service: "pushover",
        to: String::new(),
        title: text_of(&f, "title"),
        text: text_of(&f, "message"),
        url: text_of(&f, "url"),
        qr: Some(qr),
    })
}

fn bark(r: &Request<'_>, rest: &str) -> Verdict {
    let v = r.json();
    if rest != "/push" || v["device_key"] != keys::BARK {
        return refuse(
            400,
            json!({"code": 400, "message": "failed to get device token: failed to get [x] device token from database", "timestamp": 0}),
        );
    }
    Ok(Pushed {
        service: "bark",
        to: String::new(),
        title: v["title"].as_str().unwrap_or("").to_owned(),
        text: v["body"].as_str().unwrap_or("").to_owned(),
        url: v["url"].as_str().unwrap_or("").to_owned(),
        qr: None,
    })
}

fn serverchan(r: &Request<'_>, rest: &str) -> Verdict {
    if rest != format!("/{}.send", keys::SERVERCHAN) {
        return Err((
            200,
            json!({"code": 40001, "message": "bad pushtoken", "data": null}),
        ));
    }
    let f = r.form();
    let desp = f.get("desp").cloned().unwrap_or_default();
    let url = desp
        .rsplit_once("](")
        .map(|(_, u)| u.trim_end_matches(')').to_owned())
        .unwrap_or_default();
    Ok(Pushed {
        service: "serverchan",
        to: String::new(),
        title: f.get("title").cloned().unwrap_or_default(),
        text: desp,
        url,
        qr: None,
    })
}

fn pushplus(r: &Request<'_>, rest: &str) -> Verdict {
    let v = r.json();
    if rest != "/send" || v["token"] != keys::PUSHPLUS {
        return Err((
            200,
            json!({"code": 903, "msg": "无效的用户token", "data": null}),
        ));
    }
    let html = v["content"].as_str().unwrap_or("");
    let between = |start: &str, end: char| {
        html.split_once(start)
            .and_then(|(_, r)| r.split(end).next())
            .map(str::to_owned)
    };
    let qr = between("src=\"data:image/png;base64,", '"')
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .map(|png| decode_qr(&png));
    let Some(Ok(qr)) = qr else {
        return Err((200, json!({"code": 600, "msg": "数据异常", "data": null})));
    };
    Ok(Pushed {
        service: "pushplus",
        to: String::new(),
        title: v["title"].as_str().unwrap_or("").to_owned(),
        text: html.to_owned(),
        url: between("href=\"", '"').unwrap_or_default(),
        qr: Some(qr),
    })
}

/// A service's judge of a request, given the path after the service's prefix.
type JudgeFn = fn(&Request<'_>, &str) -> Verdict;

/// Each service's path prefix and judge.
const SERVICES: &[(&str, &str, JudgeFn)] = &[
    ("telegram", "/tg", telegram),
    ("discord", "/discord", discord),
    ("ntfy", "/ntfy", ntfy),
    ("gotify", "/gotify", gotify),
    ("pushover", "/po", pushover),
    ("bark", "/bark", bark),
    ("serverchan", "/sc", serverchan),
    ("pushplus", "/pp", pushplus),
];

impl PushServer {
    /// Start on 127.0.0.1.
    pub async fn start() -> PushServer {
        let state = Arc::new(Mutex::new(State::default()));
        let judged = Arc::clone(&state);
        let server = HttpServer::start(
            "127.0.0.1:0",
            Behavior::JudgeWithHeaders(Arc::new(move |head, body| {
                let (status, headers, body) = judge(&judged, head, body);
                (status, headers, body.to_string())
            })),
        )
        .await;
        PushServer { server, state }
    }

    /// The base URL of `service`'s API on this server (`http://127.0.0.1:PORT/tg`).
    pub fn base(&self, service: &str) -> String {
        let prefix = SERVICES
            .iter()
            .find(|(s, _, _)| *s == service)
            .map_or("", |(_, p, _)| p);
        format!("http://{}{prefix}", self.server.addr)
    }

    /// The messages taken so far.
    pub fn pushed(&self) -> Vec<Pushed> {
        self.state.lock().unwrap().pushed.clone()
    }

    /// The refusals so far, as `service: status body`.
    pub fn rejected(&self) -> Vec<String> {
        self.state.lock().unwrap().rejected.clone()
    }

    /// Answer the next request of `service` with `status` and `body` instead.
    pub fn fail_next(&self, service: &'static str, status: u16, body: Value) {
        self.fail_after(service, 0, status, body);
    }

    /// Judge `skip` more requests of `service`, then answer one with `status` and `body`.
    pub fn fail_after(&self, service: &'static str, skip: usize, status: u16, body: Value) {
        self.push_failure(service, skip, status, body, None);
    }

    /// Answer the next request of `service` with `status`, `body` and a `Retry-After`
    /// header of `seconds`.
    pub fn fail_next_retry_after(
        &self,
        service: &'static str,
        status: u16,
        body: Value,
        seconds: &str,
    ) {
        self.push_failure(service, 0, status, body, Some(seconds.to_owned()));
    }

    fn push_failure(
        &self,
        service: &'static str,
        skip: usize,
        status: u16,
        body: Value,
        retry_after: Option<String>,
    ) {
        let mut state = self.state.lock().unwrap();
        state.fail.entry(service).or_default().push_back(Failure {
            skip,
            status,
            body: body.to_string(),
            retry_after,
        });
    }

    /// Answer every request with 503 (`true`), or judge them again.
    pub fn down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }
}

fn judge(state: &Mutex<State>, head: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Value) {
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let request = Request {
        method,
        path: target,
        headers,
        body,
    };
    let Some((service, prefix, judge)) = SERVICES
        .iter()
        .find(|(_, p, _)| request.path.starts_with(&format!("{p}/")))
    else {
        return (404, Vec::new(), json!({"error": "no such service"}));
    };
    let mut state = state.lock().unwrap();
    if state.down {
        return (503, Vec::new(), json!({"error": "down"}));
    }
    let failure = match state.fail.get_mut(service).and_then(|q| q.front_mut()) {
        Some(f) if f.skip > 0 => {
            f.skip -= 1;
            None
        }
        Some(_) => state.fail.get_mut(service).and_then(VecDeque::pop_front),
        None => None,
    };
    if let Some(f) = failure {
        state
            .rejected
            .push(format!("{service}: {} {}", f.status, f.body));
        let headers = f
            .retry_after
            .map(|s| ("Retry-After".to_owned(), s))
            .into_iter()
            .collect();
        return (
            f.status,
            headers,
            serde_json::from_str(&f.body).unwrap_or(Value::Null),
        );
    }
    match judge(&request, &request.path[prefix.len()..]) {
        Ok(pushed) => {
            state.pushed.push(pushed);
            let reply = match *service {
                "telegram" => json!({"ok": true, "result": {"message_id": 1}}),
                "pushover" => json!({"status": 1, "request": "r"}),
                "bark" | "pushplus" => {
                    json!({"code": 200, "message": "success", "msg": "请求成功"})
                }
                "serverchan" => json!({"code": 0, "message": "", "data": {"pushid": "1"}}),
                _ => json!({"id": "1"}),
            };
            (200, Vec::new(), reply)
        }
        Err((status, body)) => {
            state.rejected.push(format!("{service}: {status} {body}"));
            (status, Vec::new(), body)
        }
    }
}
