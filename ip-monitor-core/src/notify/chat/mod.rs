//! Team chats as notifiers: WeCom, DingTalk and Feishu/Lark group bots, Slack incoming
//! webhooks, Microsoft Teams workflow webhooks, and a plain signed JSON webhook — one file
//! per platform, each speaking its platform's documented format. A platform's error reply
//! inside an HTTP 200 (`errcode` or `code` not 0) is a failure, transient or permanent as
//! the platform documents it. Give them to a [`ChannelRouter`](crate::ChannelRouter) with
//! [`WithChannels`](crate::WithChannels) recipients: one delivery per channel per change.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::Value;

use crate::error::InvalidSetting;
use crate::notice::Notice;
use crate::notify::api::{client, exchange, hex, hmac_sha256};
use crate::notify::{Notifier, NotifyError, SendPermit, Sent};
use crate::recipients::Recipient;

mod dingtalk;
mod feishu;
mod slack;
mod teams;
mod webhook;
mod wecom;

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
    /// `test`); when a secret is set, `X-IP-Monitor-Timestamp` and `X-IP-Monitor-Signature:
    /// sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, so a receiver can refuse replays.
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
    type Err = InvalidSetting;
    fn from_str(s: &str) -> Result<Self, InvalidSetting> {
        Ok(match s {
            "wecom" => ChatKind::WeCom,
            "dingtalk" => ChatKind::DingTalk,
            "feishu" | "lark" => ChatKind::Feishu,
            "slack" => ChatKind::Slack,
            "teams" => ChatKind::Teams,
            "webhook" => ChatKind::Webhook,
            other => {
                return Err(InvalidSetting::new(
                    "kind",
                    format!(
                        "{other:?}: expected \"wecom\", \"dingtalk\", \"feishu\", \"slack\", \"teams\" or \"webhook\""
                    ),
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

impl ChatWords {
    /// The title and the intro of `notice`: a test notice's marked as such.
    pub(crate) fn for_notice(&self, notice: &Notice) -> (String, String) {
        if notice.test {
            (
                format!("{} {}", self.test_marker, self.title),
                format!("{} {}", self.intro, self.test_notice),
            )
        } else {
            (self.title.clone(), self.intro.clone())
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
    /// WeCom's link went, its QR code did not: the retry posts only the rest.
    posted: Progress,
}

/// How many partly posted notices a channel remembers.
const PARTLY_POSTED: usize = 16;

/// Notices of several requests whose first requests went out and a later one failed: the
/// change and how many went, so the retry posts only the rest. The most recent few are kept
/// (a notice superseded in between is never retried).
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress(Arc<Mutex<VecDeque<(i64, usize)>>>);

impl Progress {
    /// How many requests of the notice of change `id` went out before one failed (0 when
    /// none is remembered).
    pub(crate) fn before(&self, id: i64) -> usize {
        let posted = self.0.lock().unwrap_or_else(|e| e.into_inner());
        posted
            .iter()
            .find(|(change, _)| *change == id)
            .map_or(0, |(_, n)| *n)
    }

    /// Remember that `n` requests of the notice of change `id` went out (0: forget it).
    pub(crate) fn remember(&self, id: i64, n: usize) {
        let mut posted = self.0.lock().unwrap_or_else(|e| e.into_inner());
        posted.retain(|(change, _)| *change != id);
        if n > 0 {
            if posted.len() == PARTLY_POSTED {
                posted.pop_front();
            }
            posted.push_back((id, n));
        }
    }
}

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
    pub fn new(kind: ChatKind, url: impl Into<String>) -> Result<Self, InvalidSetting> {
        let url = url.into();
        // The URL holds the bot's key: never in clear text beyond this host.
        super::api::check_secret_transport(&url, "url")?;
        Ok(ChatNotifier {
            kind,
            url,
            secret: None,
            words: ChatWords::default(),
            client: client(Duration::from_secs(10))?,
            posted: Progress::default(),
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
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, InvalidSetting> {
        self.client = client(timeout)?;
        Ok(self)
    }

    /// The platform.
    pub fn kind(&self) -> ChatKind {
        self.kind
    }

    /// The requests one notice makes, signed as of `now` (for previews and tests).
    pub fn requests(&self, notice: &Notice, now: SystemTime) -> Vec<ChatRequest> {
        let w = &self.words;
        let (title, intro) = w.for_notice(notice);
        let message = Message {
            target: &self.url,
            secret: self.secret.as_deref(),
            title,
            intro,
            button: &w.button,
            url: &notice.url,
            notice,
            secs: now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        };
        match self.kind {
            ChatKind::WeCom => wecom::requests(&message),
            ChatKind::DingTalk => dingtalk::requests(&message),
            ChatKind::Feishu => feishu::requests(&message),
            ChatKind::Slack => slack::requests(&message),
            ChatKind::Teams => teams::requests(&message),
            ChatKind::Webhook => webhook::requests(&message),
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
        let (status, text) = exchange(builder).await?;
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

/// The platforms' codes that mean "later": rate limits and busy servers.
fn transient_code(kind: ChatKind, code: i64) -> bool {
    match kind {
        ChatKind::WeCom => wecom::transient_code(code),
        ChatKind::DingTalk => dingtalk::transient_code(code),
        ChatKind::Feishu => feishu::transient_code(code),
        _ => false,
    }
}

/// What every platform's message is made of.
struct Message<'a> {
    /// The channel's URL.
    target: &'a str,
    secret: Option<&'a str>,
    title: String,
    intro: String,
    button: &'a str,
    /// The entry URL.
    url: &'a str,
    notice: &'a Notice,
    /// Now, in seconds since 1970 (the signatures' timestamp).
    secs: u64,
}

impl Message<'_> {
    /// A JSON body to the channel's URL, no extra headers.
    fn plain(&self, body: serde_json::Value) -> ChatRequest {
        ChatRequest {
            url: self.target.to_owned(),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }
}

#[async_trait]
impl Notifier for ChatNotifier {
    /// The permit is checked before each request: a WeCom notice is two (the link, then the
    /// QR code). When a later request fails, the retry of the notice starts with it: the
    /// channel does not get the link twice.
    async fn send(
        &self,
        notice: &Notice,
        _recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
        let id = notice.change_id;
        let done = self.posted.before(id);
        for (i, request) in self
            .requests(notice, SystemTime::now())
            .iter()
            .enumerate()
            .skip(done)
        {
            permit.check()?;
            if let Err(e) = self.post(request).await {
                if i > 0 {
                    self.posted.remember(id, i);
                }
                return Err(e);
            }
        }
        self.posted.remember(id, 0);
        Ok(Sent::direct())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::api::encode;

    #[test]
    fn known_answers() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
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
