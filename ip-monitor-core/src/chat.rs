//! Team chats as notifiers: WeCom, DingTalk and Feishu/Lark group bots, Slack incoming
//! webhooks, Microsoft Teams workflow webhooks, and a plain signed JSON webhook. Each speaks
//! its platform's documented format; a platform's error reply inside an HTTP 200 (`errcode`
//! or `code` not 0) is a failure, transient or permanent as the platform documents it.
//! Give them to a [`ChannelRouter`](crate::ChannelRouter) with
//! [`WithChannels`](crate::WithChannels) recipients: one delivery per channel per change.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::notice::Notice;
use crate::notify::{Notifier, NotifyError, SendPermit};
use crate::outbound::{client, encode, request_failed};
use crate::recipients::Recipient;
use crate::report::rfc3339;

/// The platform a channel speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatKind {
    /// WeCom (WeChat Work) group bot: a markdown message with the link, then the QR code as
    /// an image message (base64 with its MD5).
    WeCom,
    /// DingTalk custom robot: an action card with a button; signed (`timestamp`, `sign`)
    /// when a secret is set.
    DingTalk,
    /// Feishu / Lark custom bot: an interactive card with a button; signed when a secret is
    /// set.
    Feishu,
    /// Slack incoming webhook: Block Kit with a button.
    Slack,
    /// Microsoft Teams workflow webhook: an Adaptive Card with an Open URL action.
    Teams,
    /// A JSON document (`event`, `address`, `previous`, `family`, `url`, `detected_at`,
    /// `test`), with `X-IP-Monitor-Signature: sha256=<hex HMAC-SHA256 of the body>` when a
    /// secret is set.
    Webhook,
}

impl ChatKind {
    /// `wecom`, `dingtalk`, `feishu`, `slack`, `teams` or `webhook`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatKind::WeCom => "wecom",
            ChatKind::DingTalk => "dingtalk",
            ChatKind::Feishu => "feishu",
            ChatKind::Slack => "slack",
            ChatKind::Teams => "teams",
            ChatKind::Webhook => "webhook",
        }
    }
}

impl std::str::FromStr for ChatKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "wecom" => ChatKind::WeCom,
            "dingtalk" => ChatKind::DingTalk,
            "feishu" | "lark" => ChatKind::Feishu,
            "slack" => ChatKind::Slack,
            "teams" => ChatKind::Teams,
            "webhook" => ChatKind::Webhook,
            other => {
                return Err(format!(
                    "{other:?}: expected \"wecom\", \"dingtalk\", \"feishu\", \"slack\", \"teams\" or \"webhook\""
                ));
            }
        })
    }
}

/// The words of a chat message (the email's, from its locale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatWords {
    /// The title (the email's subject).
    pub title: String,
    /// The sentence before the button.
    pub intro: String,
    /// The button's (or link's) text.
    pub button: String,
    /// Put before the title of a test notice.
    pub test_marker: String,
    /// The sentence added to a test notice.
    pub test_notice: String,
}

impl Default for ChatWords {
    fn default() -> Self {
        ChatWords {
            title: "The server has a new address".to_owned(),
            intro: "The application has moved to a new address. Open it with the button below."
                .to_owned(),
            button: "Open the application".to_owned(),
            test_marker: "[Test]".to_owned(),
            test_notice: "This is a test message.".to_owned(),
        }
    }
}

/// One request to the platform.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// Where it goes (with the signature's query for DingTalk).
    pub url: String,
    /// The extra headers (the webhook's signature).
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// A notifier that posts each notice to one chat channel; see the [module](self).
#[derive(Clone)]
pub struct ChatNotifier {
    kind: ChatKind,
    url: String,
    secret: Option<String>,
    words: ChatWords,
    client: reqwest::Client,
    /// Notices of several requests (WeCom's link, then its QR code) whose first requests
    /// went out and a later one failed: the change and how many went, so the retry posts
    /// only the rest. The most recent few are kept (a notice superseded in between is
    /// never retried).
    posted: Arc<Mutex<VecDeque<(i64, usize)>>>,
}

/// How many partly posted notices a channel remembers.
const PARTLY_POSTED: usize = 16;

impl fmt::Debug for ChatNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL of a bot is its credential: only its host is shown.
        let host = reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        f.debug_struct("ChatNotifier")
            .field("kind", &self.kind)
            .field("host", &host)
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

impl ChatNotifier {
    /// A channel of `kind` at `url` (the bot's or webhook's URL, a secret of its own), with
    /// English words and a 10 s timeout.
    pub fn new(kind: ChatKind, url: impl Into<String>) -> Result<Self, NotifyError> {
        let url = url.into();
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| NotifyError::permanent(format!("the channel URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(NotifyError::permanent("the channel URL must be http(s)"));
        }
        Ok(ChatNotifier {
            kind,
            url,
            secret: None,
            words: ChatWords::default(),
            client: client(Duration::from_secs(10))?,
            posted: Arc::default(),
        })
    }

    /// Sign requests with `secret` (DingTalk, Feishu, webhook).
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into()).filter(|s| !s.is_empty());
        self
    }

    /// The words of the messages.
    pub fn words(mut self, words: ChatWords) -> Self {
        self.words = words;
        self
    }

    /// Give up on a request after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, NotifyError> {
        self.client = client(timeout)?;
        Ok(self)
    }

    /// How many requests of the notice of change `id` went out before one failed (0 when
    /// none is remembered).
    fn posted_before(&self, id: i64) -> usize {
        let posted = self.posted.lock().unwrap_or_else(|e| e.into_inner());
        posted
            .iter()
            .find(|(change, _)| *change == id)
            .map_or(0, |(_, n)| *n)
    }

    /// Remember that `n` requests of the notice of change `id` went out (0: forget it).
    fn remember_posted(&self, id: i64, n: usize) {
        let mut posted = self.posted.lock().unwrap_or_else(|e| e.into_inner());
        posted.retain(|(change, _)| *change != id);
        if n > 0 {
            if posted.len() == PARTLY_POSTED {
                posted.pop_front();
            }
            posted.push_back((id, n));
        }
    }

    /// The platform.
    pub fn kind(&self) -> ChatKind {
        self.kind
    }

    /// The requests one notice makes, signed as of `now` (for previews and tests).
    pub fn requests(&self, notice: &Notice, now: SystemTime) -> Vec<ChatRequest> {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let w = &self.words;
        let title = if notice.test {
            format!("{} {}", w.test_marker, w.title)
        } else {
            w.title.clone()
        };
        let intro = if notice.test {
            format!("{} {}", w.intro, w.test_notice)
        } else {
            w.intro.clone()
        };
        let url = &notice.url;
        let plain = |body: Value| ChatRequest {
            url: self.url.clone(),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        };
        match self.kind {
            ChatKind::WeCom => {
                let markdown = format!("**{title}**\n{intro}\n[{}]({url})", w.button);
                let mut out = vec![plain(json!({
                    "msgtype": "markdown",
                    "markdown": { "content": markdown },
                }))];
                if let Some(png) = &notice.qr_png {
                    use md5::Digest as _;
                    out.push(plain(json!({
                        "msgtype": "image",
                        "image": {
                            "base64": base64::engine::general_purpose::STANDARD.encode(png),
                            "md5": hex(&md5::Md5::digest(png)),
                        },
                    })));
                }
                out
            }
            ChatKind::DingTalk => {
                let mut target = self.url.clone();
                if let Some(secret) = &self.secret {
                    let millis = secs * 1000;
                    let sign = base64::engine::general_purpose::STANDARD.encode(hmac(
                        secret.as_bytes(),
                        format!("{millis}\n{secret}").as_bytes(),
                    ));
                    let sep = if target.contains('?') { '&' } else { '?' };
                    target = format!("{target}{sep}timestamp={millis}&sign={}", encode(&sign));
                }
                ChatRequest {
                    url: target,
                    headers: Vec::new(),
                    body: json!({
                        "msgtype": "actionCard",
                        "actionCard": {
                            "title": title,
                            "text": format!("### {title}\n\n{intro}"),
                            "btnOrientation": "0",
                            "singleTitle": w.button,
                            "singleURL": url,
                        },
                    })
                    .to_string()
                    .into_bytes(),
                }
                .into_vec()
            }
            ChatKind::Feishu => {
                let mut body = json!({
                    "msg_type": "interactive",
                    "card": {
                        "header": { "title": { "tag": "plain_text", "content": title } },
                        "elements": [
                            { "tag": "div", "text": { "tag": "plain_text", "content": intro } },
                            { "tag": "action", "actions": [{
                                "tag": "button",
                                "type": "primary",
                                "text": { "tag": "plain_text", "content": w.button },
                                "url": url,
                            }]},
                        ],
                    },
                });
                if let Some(secret) = &self.secret {
                    // The key is "timestamp\nsecret", the message empty.
                    let sign = base64::engine::general_purpose::STANDARD
                        .encode(hmac(format!("{secs}\n{secret}").as_bytes(), b""));
                    body["timestamp"] = json!(secs.to_string());
                    body["sign"] = json!(sign);
                }
                vec![plain(body)]
            }
            ChatKind::Slack => vec![plain(json!({
                "text": format!("{title}: {}", w.button),
                "blocks": [
                    { "type": "section", "text": { "type": "mrkdwn", "text": format!("*{}*\n{}", slack_escape(&title), slack_escape(&intro)) } },
                    { "type": "actions", "elements": [{
                        "type": "button",
                        "text": { "type": "plain_text", "text": w.button },
                        "url": url,
                        "style": "primary",
                    }]},
                ],
            }))],
            ChatKind::Teams => vec![plain(json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            { "type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true },
                            { "type": "TextBlock", "text": intro, "wrap": true },
                        ],
                        "actions": [{ "type": "Action.OpenUrl", "title": w.button, "url": url }],
                    },
                }],
            }))],
            ChatKind::Webhook => {
                let body = json!({
                    "event": if notice.test { "test" } else { "address_changed" },
                    "address": notice.address,
                    "previous": notice.previous,
                    "family": notice.family.as_str(),
                    "url": url,
                    "detected_at": rfc3339(notice.detected_at),
                    "test": notice.test,
                })
                .to_string()
                .into_bytes();
                let headers = match &self.secret {
                    Some(secret) => vec![(
                        "X-IP-Monitor-Signature",
                        format!("sha256={}", hex(&hmac(secret.as_bytes(), &body))),
                    )],
                    None => Vec::new(),
                };
                vec![ChatRequest {
                    url: self.url.clone(),
                    headers,
                    body,
                }]
            }
        }
    }

    async fn post(&self, request: &ChatRequest) -> Result<(), NotifyError> {
        let mut builder = self
            .client
            .post(&request.url)
            .header("content-type", "application/json")
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let response = builder.send().await.map_err(request_failed)?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| NotifyError::transient(e.without_url()))?;
        let shown: String = text.chars().take(200).collect();
        let name = self.kind.as_str();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(NotifyError::transient(format!(
                "{name} answered {status}: {shown}"
            )));
        }
        if !status.is_success() {
            return Err(NotifyError::permanent(format!(
                "{name} answered {status}: {shown}"
            )));
        }
        // WeCom and DingTalk: errcode; Feishu: code (StatusCode in older replies).
        let code = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
            ["errcode", "code", "StatusCode"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_i64))
        });
        match (self.kind, code) {
            (ChatKind::WeCom | ChatKind::DingTalk | ChatKind::Feishu, Some(0)) => Ok(()),
            (ChatKind::WeCom | ChatKind::DingTalk | ChatKind::Feishu, Some(code)) => {
                let message = format!("{name} refused the message (code {code}): {shown}");
                if transient_code(self.kind, code) {
                    Err(NotifyError::transient(message))
                } else {
                    Err(NotifyError::permanent(message))
                }
            }
            (ChatKind::WeCom | ChatKind::DingTalk | ChatKind::Feishu, None) => Err(
                NotifyError::transient(format!("{name} answered without a code: {shown}")),
            ),
            _ => Ok(()),
        }
    }
}

impl ChatRequest {
    fn into_vec(self) -> Vec<ChatRequest> {
        vec![self]
    }
}

/// The platforms' codes that mean "later": rate limits and busy servers. WeCom: -1 system
/// busy, 45009 too many calls; DingTalk: -1 busy, 130101 sending too fast, 660026 too many
/// messages; Feishu: 9499 / 11232 / 11233 rate limits.
fn transient_code(kind: ChatKind, code: i64) -> bool {
    match kind {
        ChatKind::WeCom => matches!(code, -1 | 45009 | 45033),
        ChatKind::DingTalk => matches!(code, -1 | 130101 | 660026),
        ChatKind::Feishu => matches!(code, 9499 | 11232 | 11233),
        _ => false,
    }
}

#[async_trait]
impl Notifier for ChatNotifier {
    async fn notify(&self, notice: &Notice, recipient: &Recipient) -> Result<(), NotifyError> {
        self.notify_within(notice, recipient, &SendPermit::always())
            .await
    }

    /// The permit is checked before each request: a WeCom notice is two (the link, then the
    /// QR code). When a later request fails, the retry of the notice starts with it: the
    /// channel does not get the link twice.
    async fn notify_within(
        &self,
        notice: &Notice,
        _recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<(), NotifyError> {
        let id = notice.change_id;
        let done = self.posted_before(id);
        for (i, request) in self
            .requests(notice, SystemTime::now())
            .iter()
            .enumerate()
            .skip(done)
        {
            permit.check()?;
            if let Err(e) = self.post(request).await {
                if i > 0 {
                    self.remember_posted(id, i);
                }
                return Err(e);
            }
        }
        self.remember_posted(id, 0);
        Ok(())
    }
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, message).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Slack's mrkdwn control characters.
fn slack_escape(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        use md5::Digest as _;
        assert_eq!(
            hex(&md5::Md5::digest(b"abc")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(encode("a+b/c="), "a%2Bb%2Fc%3D");
    }
}
