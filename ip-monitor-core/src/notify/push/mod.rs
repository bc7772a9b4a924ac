//! Push services as notifiers: Telegram bots, Discord webhooks, ntfy, Gotify, Pushover,
//! Bark, ServerChan and PushPlus — each request in the service's documented format, with the
//! email's words, the entry URL as the link or button, and the QR code as an image where the
//! service takes one (Telegram, Discord, ntfy, Pushover; PushPlus inline in its HTML). Each
//! reply is judged as the service documents it: its own error fields, and its rate limits
//! (Telegram's `retry_after`, Discord's and ntfy's `Retry-After`) as a busy route that waits
//! that long. Give them to a [`ChannelRouter`](crate::ChannelRouter) with
//! [`WithChannels`](crate::WithChannels) recipients: one delivery per channel per change.
//! A Shoutrrr URL (`telegram://TOKEN@telegram?chats=…`) is another way to name a service:
//! [`PushService::from_shoutrrr`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::InvalidSetting;
use crate::notice::Notice;
use crate::notify::api::{check_secret_transport, client, exchange_full};
use crate::notify::chat::{ChatWords, Progress};
use crate::notify::{Notifier, NotifyError, SendPermit, Sent};
use crate::recipients::Recipient;

mod reply;
mod request;
mod shoutrrr;

pub use request::PushRequest;

/// Where ntfy's messages are published with which credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum NtfyAuth {
    /// No credentials (a public topic).
    None,
    /// An access token (`Authorization: Bearer tk_…`).
    Token(String),
    /// A user and password (`Authorization: Basic`).
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
}

impl fmt::Debug for NtfyAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NtfyAuth::None => "None",
            NtfyAuth::Token(_) => "Token(..)",
            NtfyAuth::Basic { .. } => "Basic(..)",
        })
    }
}

/// A push service and the credentials of one channel on it.
#[derive(Clone, PartialEq, Eq)]
pub enum PushService {
    /// A Telegram bot: `sendPhoto` (the QR code, a caption and a URL button) to each chat.
    Telegram {
        /// The Bot API's base (`https://api.telegram.org`).
        api: String,
        /// The bot's token.
        token: String,
        /// The chats: ids, or `@channelusername`.
        chats: Vec<String>,
    },
    /// A Discord webhook: an embed with the link and the QR code attached.
    Discord {
        /// The webhook's URL (`https://discord.com/api/webhooks/ID/TOKEN`).
        webhook: String,
    },
    /// An ntfy topic: the QR code as the attachment, the title, the message, a click action
    /// and a view button.
    Ntfy {
        /// The topic's URL (`https://ntfy.sh/TOPIC`).
        topic_url: String,
        /// How to authenticate.
        auth: NtfyAuth,
    },
    /// A Gotify application: a markdown message whose click opens the link (`extras`).
    Gotify {
        /// The server's base URL.
        server: String,
        /// The application's token.
        token: String,
    },
    /// Pushover: a message with the link as its supplementary URL and the QR code attached.
    Pushover {
        /// The API's base (`https://api.pushover.net`).
        api: String,
        /// The application's API token.
        token: String,
        /// The user (or group) key.
        user: String,
    },
    /// Bark (iOS): a title, a body and the link to open.
    Bark {
        /// The server's base URL (`https://api.day.app`).
        server: String,
        /// The device key.
        device_key: String,
    },
    /// ServerChan (Server酱 Turbo): a title and a markdown `desp` with the link.
    ServerChan {
        /// The API's base: `None` for ServerChan's own (`https://sctapi.ftqq.com`, or the
        /// per-user host of an `sctp…` key).
        api: Option<String>,
        /// The SendKey.
        send_key: String,
    },
    /// PushPlus (推送加): an HTML message with the link and the QR code inline.
    PushPlus {
        /// The API's base (`https://www.pushplus.plus`).
        api: String,
        /// The user's token.
        token: String,
    },
}

impl PushService {
    /// `telegram`, `discord`, `ntfy`, `gotify`, `pushover`, `bark`, `serverchan` or
    /// `pushplus`.
    pub fn kind(&self) -> &'static str {
        match self {
            PushService::Telegram { .. } => "telegram",
            PushService::Discord { .. } => "discord",
            PushService::Ntfy { .. } => "ntfy",
            PushService::Gotify { .. } => "gotify",
            PushService::Pushover { .. } => "pushover",
            PushService::Bark { .. } => "bark",
            PushService::ServerChan { .. } => "serverchan",
            PushService::PushPlus { .. } => "pushplus",
        }
    }

    /// The service named by a Shoutrrr URL: `telegram://TOKEN@telegram?chats=ID,@name`,
    /// `discord://TOKEN@WEBHOOK_ID`, `ntfy://[USER:PASSWORD@]HOST/TOPIC`,
    /// `pushover://shoutrrr:TOKEN@USER_KEY/`, `gotify://HOST[:PORT][/PATH]/TOKEN`,
    /// `bark://:DEVICE_KEY@HOST[:PORT][/PATH]`; `?scheme=http` (ntfy, bark) or
    /// `?disabletls=yes` (gotify) for a server on loopback.
    ///
    /// ```
    /// use ip_monitor_core::notify::push::PushService;
    /// let s = PushService::from_shoutrrr("telegram://123:abc@telegram?chats=42,@ops").unwrap();
    /// assert_eq!(s.kind(), "telegram");
    /// assert!(PushService::from_shoutrrr("telegram://@telegram").is_err());
    /// ```
    pub fn from_shoutrrr(url: &str) -> Result<PushService, InvalidSetting> {
        shoutrrr::parse(url)
    }

    /// Every URL a secret is sent to, with the name of its setting.
    fn endpoints(&self) -> Vec<(&str, &'static str)> {
        match self {
            PushService::Telegram { api, .. }
            | PushService::Pushover { api, .. }
            | PushService::PushPlus { api, .. } => vec![(api, "api")],
            PushService::Discord { webhook } => vec![(webhook, "url")],
            PushService::Ntfy { topic_url, .. } => vec![(topic_url, "url")],
            PushService::Gotify { server, .. } | PushService::Bark { server, .. } => {
                vec![(server, "url")]
            }
            PushService::ServerChan { api, .. } => {
                api.as_deref().map(|a| (a, "api")).into_iter().collect()
            }
        }
    }

    /// The host the messages go to, for logs and previews (never a secret).
    pub fn host(&self) -> String {
        let url = match self {
            PushService::ServerChan { api: None, .. } => return "sctapi.ftqq.com".to_owned(),
            other => other.endpoints().first().map(|(u, _)| u.to_string()),
        };
        url.and_then(|u| reqwest::Url::parse(&u).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl fmt::Debug for PushService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens, keys and webhook URLs are secrets: only the kind and host are shown.
        f.debug_struct("PushService")
            .field("kind", &self.kind())
            .field("host", &self.host())
            .finish_non_exhaustive()
    }
}

/// A notifier that pushes each notice to one channel of a push service; see the
/// [module](self).
///
/// ```
/// use ip_monitor_core::notify::push::{PushNotifier, PushService};
/// let bark = PushNotifier::new(PushService::Bark {
///     server: "https://api.day.app".into(),
///     device_key: "device-key".into(),
/// })
/// .unwrap();
/// assert!(!format!("{bark:?}").contains("device-key"));
/// ```
#[derive(Clone)]
pub struct PushNotifier {
    service: PushService,
    words: ChatWords,
    client: reqwest::Client,
    /// Telegram's requests (one per chat) that went before one failed.
    progress: Progress,
}

impl fmt::Debug for PushNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushNotifier")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl PushNotifier {
    /// A channel on `service`, with English words and a 10 s timeout. Every URL a secret
    /// goes to must be `https` (or `http` to a loopback address).
    pub fn new(service: PushService) -> Result<Self, InvalidSetting> {
        for (url, field) in service.endpoints() {
            check_secret_transport(url, field)?;
        }
        if let PushService::Telegram { chats, .. } = &service
            && chats.is_empty()
        {
            return Err(InvalidSetting::new("chats", "at least one chat id"));
        }
        Ok(PushNotifier {
            service,
            words: ChatWords::default(),
            client: client(Duration::from_secs(10))?,
            progress: Progress::default(),
        })
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

    /// The service.
    pub fn service(&self) -> &PushService {
        &self.service
    }

    /// The requests one notice makes (one per Telegram chat, one for the others).
    pub fn requests(&self, notice: &Notice) -> Vec<PushRequest> {
        request::build(&self.service, &self.words, notice)
    }

    /// What a notice would post, in words and without a secret (for `preview`).
    pub fn describe(&self, notice: &Notice) -> String {
        request::describe(&self.service, &self.words, notice)
    }

    async fn post(&self, request: &PushRequest) -> Result<(), NotifyError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| NotifyError::permanent(format!("method: {e}")))?;
        let mut builder = self
            .client
            .request(method, &request.url)
            .body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let got = exchange_full(builder).await?;
        reply::judge(&self.service, &got)
    }
}

#[async_trait]
impl Notifier for PushNotifier {
    /// The permit is checked before each request. When a later one fails (the second of
    /// two Telegram chats), the retry starts with it: no chat gets the notice twice.
    async fn send(
        &self,
        notice: &Notice,
        _recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
        let id = notice.change_id;
        let done = self.progress.before(id);
        for (i, request) in self.requests(notice).iter().enumerate().skip(done) {
            permit.check()?;
            if let Err(e) = self.post(request).await {
                if i > 0 {
                    self.progress.remember(id, i);
                }
                return Err(e);
            }
        }
        self.progress.remember(id, 0);
        Ok(Sent::direct())
    }
}
