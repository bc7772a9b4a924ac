//! Each service's request, as its API documents it.

use base64::Engine as _;
use serde_json::json;

use super::{NtfyAuth, PushService};
use crate::html::esc;
use crate::notice::Notice;
use crate::notify::api::encode;
use crate::notify::chat::ChatWords;

/// One request to a push service.
#[derive(Clone, PartialEq, Eq)]
pub struct PushRequest {
    /// `POST` or `PUT`.
    pub method: &'static str,
    /// Where it goes (for some services, with the token in it).
    pub url: String,
    /// Its headers, `content-type` among them.
    pub headers: Vec<(&'static str, String)>,
    /// Its body: JSON, a form, multipart form data, or the image itself (ntfy).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for PushRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL and the headers may hold the token.
        f.debug_struct("PushRequest")
            .field("method", &self.method)
            .field("bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// What every service's message is made of.
struct Parts<'a> {
    title: String,
    intro: String,
    button: &'a str,
    url: &'a str,
    png: Option<&'a [u8]>,
}

/// A multipart/form-data body, built part by part.
struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Multipart {
    fn new() -> Self {
        Multipart {
            boundary: format!("ip-monitor-{:032x}", fastrand::u128(..)),
            body: Vec::new(),
        }
    }

    fn text(mut self, name: &str, value: &str) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self
    }

    fn file(mut self, name: &str, filename: &str, mime: &str, data: &[u8]) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                 Content-Type: {mime}\r\n\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// The content type and the body.
    fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}

fn request(method: &'static str, url: String, content_type: String, body: Vec<u8>) -> PushRequest {
    PushRequest {
        method,
        url,
        headers: vec![("content-type", content_type)],
        body,
    }
}

fn json_request(url: String, body: serde_json::Value) -> PushRequest {
    request(
        "POST",
        url,
        "application/json".to_owned(),
        body.to_string().into_bytes(),
    )
}

/// A header value ntfy reads as UTF-8: ASCII as it is, anything else RFC 2047-encoded.
fn header_text(s: &str) -> String {
    let plain = s.chars().all(|c| c.is_ascii() && !c.is_ascii_control());
    if plain {
        s.to_owned()
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        format!("=?UTF-8?B?{b64}?=")
    }
}

/// The link in markdown.
fn markdown(p: &Parts<'_>) -> String {
    format!("{}\n\n[{}]({})", p.intro, p.button, p.url)
}

/// The requests of one notice.
pub(super) fn build(service: &PushService, words: &ChatWords, notice: &Notice) -> Vec<PushRequest> {
    let (title, intro) = words.for_notice(notice);
    let p = Parts {
        title,
        intro,
        button: &words.button,
        url: &notice.url,
        png: notice.qr_png.as_deref(),
    };
    match service {
        PushService::Telegram { api, token, chats } => chats
            .iter()
            .map(|chat| telegram(&p, &format!("{api}/bot{token}"), chat))
            .collect(),
        PushService::Discord { webhook } => vec![discord(&p, webhook)],
        PushService::Ntfy { topic_url, auth } => vec![ntfy(&p, topic_url, auth)],
        PushService::Gotify { server, token } => vec![gotify(&p, server, token)],
        PushService::Pushover { api, token, user } => vec![pushover(&p, api, token, user)],
        PushService::Bark { server, device_key } => vec![json_request(
            format!("{server}/push"),
            json!({
                "device_key": device_key, "title": p.title, "body": p.intro,
                "url": p.url, "group": "ip-monitor",
            }),
        )],
        PushService::ServerChan { api, send_key } => vec![serverchan(&p, api.as_deref(), send_key)],
        PushService::PushPlus { api, token } => vec![pushplus(&p, api, token)],
    }
}

/// `sendPhoto` with the caption and a URL button, or `sendMessage` without a QR code.
fn telegram(p: &Parts<'_>, bot: &str, chat: &str) -> PushRequest {
    let caption = format!("<b>{}</b>\n{}", esc(&p.title), esc(&p.intro));
    let keyboard = json!({"inline_keyboard": [[{"text": p.button, "url": p.url}]]}).to_string();
    match p.png {
        Some(png) => {
            let (content_type, body) = Multipart::new()
                .text("chat_id", chat)
                .text("caption", &caption)
                .text("parse_mode", "HTML")
                .text("reply_markup", &keyboard)
                .file("photo", "qr.png", "image/png", png)
                .finish();
            request("POST", format!("{bot}/sendPhoto"), content_type, body)
        }
        None => json_request(
            format!("{bot}/sendMessage"),
            json!({
                "chat_id": chat, "text": caption, "parse_mode": "HTML",
                "reply_markup": {"inline_keyboard": [[{"text": p.button, "url": p.url}]]},
            }),
        ),
    }
}

/// An embed with the link, the QR code as its image (an attachment of the message).
fn discord(p: &Parts<'_>, webhook: &str) -> PushRequest {
    let separator = if webhook.contains('?') { '&' } else { '?' };
    let url = format!("{webhook}{separator}wait=true");
    let mut embed = json!({"title": p.title, "description": markdown(p), "url": p.url});
    let mut payload = json!({"allowed_mentions": {"parse": []}});
    let Some(png) = p.png else {
        payload["embeds"] = json!([embed]);
        return json_request(url, payload);
    };
    embed["image"] = json!({"url": "attachment://qr.png"});
    payload["embeds"] = json!([embed]);
    payload["attachments"] = json!([{"id": 0, "filename": "qr.png"}]);
    let (content_type, body) = Multipart::new()
        .text("payload_json", &payload.to_string())
        .file("files[0]", "qr.png", "image/png", png)
        .finish();
    request("POST", url, content_type, body)
}

/// The QR code as the body (ntfy's attachment upload), the words in headers.
fn ntfy(p: &Parts<'_>, topic_url: &str, auth: &NtfyAuth) -> PushRequest {
    let label = p.button.replace(['"', ','], " ");
    let mut headers = vec![
        ("title", header_text(&p.title)),
        ("click", p.url.to_owned()),
        (
            "actions",
            header_text(&format!("view, \"{label}\", {}", p.url)),
        ),
        ("tags", "globe_with_meridians".to_owned()),
    ];
    match auth {
        NtfyAuth::None => {}
        NtfyAuth::Token(token) => headers.push(("authorization", format!("Bearer {token}"))),
        NtfyAuth::Basic { user, password } => {
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.push(("authorization", format!("Basic {pair}")));
        }
    }
    let body = match p.png {
        Some(png) => {
            headers.push(("message", header_text(&p.intro)));
            headers.push(("filename", "qr.png".to_owned()));
            png.to_vec()
        }
        None => {
            headers.push(("content-type", "text/plain; charset=utf-8".to_owned()));
            p.intro.as_bytes().to_vec()
        }
    };
    PushRequest {
        method: "PUT",
        url: topic_url.to_owned(),
        headers,
        body,
    }
}

fn gotify(p: &Parts<'_>, server: &str, token: &str) -> PushRequest {
    let mut r = json_request(
        format!("{server}/message"),
        json!({
            "title": p.title,
            "message": markdown(p),
            "priority": 5,
            "extras": {
                "client::display": {"contentType": "text/markdown"},
                "client::notification": {"click": {"url": p.url}},
            },
        }),
    );
    r.headers.push(("x-gotify-key", token.to_owned()));
    r
}

fn pushover(p: &Parts<'_>, api: &str, token: &str, user: &str) -> PushRequest {
    let mut form = Multipart::new()
        .text("token", token)
        .text("user", user)
        .text("title", &p.title)
        .text("message", &p.intro)
        .text("url", p.url)
        .text("url_title", p.button);
    if let Some(png) = p.png {
        form = form.file("attachment", "qr.png", "image/png", png);
    }
    let (content_type, body) = form.finish();
    request("POST", format!("{api}/1/messages.json"), content_type, body)
}

/// ServerChan's URL: `sctp{uid}t…` keys have a host of their own.
fn serverchan_url(api: Option<&str>, key: &str) -> String {
    let uid: Option<&str> = key
        .strip_prefix("sctp")
        .and_then(|rest| rest.split_once('t'))
        .map(|(uid, _)| uid)
        .filter(|uid| !uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit()));
    match (api, uid) {
        (Some(api), Some(_)) => format!("{api}/send/{key}.send"),
        (Some(api), None) => format!("{api}/{key}.send"),
        (None, Some(uid)) => format!("https://{uid}.push.ft07.com/send/{key}.send"),
        (None, None) => format!("https://sctapi.ftqq.com/{key}.send"),
    }
}

fn serverchan(p: &Parts<'_>, api: Option<&str>, key: &str) -> PushRequest {
    let form = format!("title={}&desp={}", encode(&p.title), encode(&markdown(p)));
    request(
        "POST",
        serverchan_url(api, key),
        "application/x-www-form-urlencoded".to_owned(),
        form.into_bytes(),
    )
}

fn pushplus(p: &Parts<'_>, api: &str, token: &str) -> PushRequest {
    let mut html = format!(
        "<p>{}</p><p><a href=\"{}\">{}</a></p>",
        esc(&p.intro),
        esc(p.url),
        esc(p.button)
    );
    if let Some(png) = p.png {
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        html.push_str(&format!(
            "<p><img src=\"data:image/png;base64,{b64}\" alt=\"QR\" width=\"240\"></p>"
        ));
    }
    json_request(
        format!("{api}/send"),
        json!({"token": token, "title": p.title, "content": html, "template": "html"}),
    )
}

/// What a notice posts, in words, without a secret.
pub(super) fn describe(service: &PushService, words: &ChatWords, notice: &Notice) -> String {
    let (title, intro) = words.for_notice(notice);
    let image = match (service, notice.qr_png.is_some()) {
        (
            PushService::Gotify { .. } | PushService::Bark { .. } | PushService::ServerChan { .. },
            _,
        ) => "no image (the service takes none)",
        (PushService::PushPlus { .. }, true) => "the QR code inline in the HTML",
        (_, true) => "the QR code attached as qr.png",
        (_, false) => "no QR code",
    };
    let to = match service {
        PushService::Telegram { chats, .. } => format!(" to {} chat(s)", chats.len()),
        _ => String::new(),
    };
    format!(
        "{} ({}){to}\ntitle: {title}\ntext: {intro}\nlink: {} -> {}\nimage: {image}\n",
        service.kind(),
        service.host(),
        words.button,
        notice.url
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serverchan_keys_choose_their_host() {
        assert_eq!(
            serverchan_url(None, "SCT123abc"),
            "https://sctapi.ftqq.com/SCT123abc.send"
        );
        assert_eq!(
            serverchan_url(None, "sctp42tXYZ"),
            "https://42.push.ft07.com/send/sctp42tXYZ.send"
        );
        assert_eq!(
            serverchan_url(Some("http://127.0.0.1:1"), "sctp42tXYZ"),
            "http://127.0.0.1:1/send/sctp42tXYZ.send"
        );
    }

    #[test]
    fn non_ascii_headers_are_rfc_2047() {
        assert_eq!(header_text("Open"), "Open");
        assert_eq!(header_text("打开"), "=?UTF-8?B?5omT5byA?=");
    }
}
