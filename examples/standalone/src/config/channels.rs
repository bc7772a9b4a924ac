//! `[[channels]]`: the team chats and push services told of each change, one delivery
//! each. The push services' keys are read in [`super::push`].

use std::time::Duration;

use std::sync::Arc;

use ip_monitor_core::chat::{ChatKind, ChatNotifier, ChatWords};
use ip_monitor_core::notify::push::PushNotifier;
use ip_monitor_core::{InvalidSetting, Notifier, Recipient};
use ip_monitor_lettre::MessageTemplate;
use serde::Deserialize;

use super::KeyError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ChannelConfig {
    kind: Option<String>,
    name: Option<String>,
    url: Option<String>,
    url_env: Option<String>,
    secret_env: Option<String>,
    #[serde(with = "humantime_serde")]
    timeout: Option<Duration>,
    // The push services' keys.
    pub(super) token_env: Option<String>,
    pub(super) chats: Option<Vec<String>>,
    pub(super) api: Option<String>,
    pub(super) user_key_env: Option<String>,
    pub(super) user: Option<String>,
    pub(super) password_env: Option<String>,
    pub(super) device_key_env: Option<String>,
    pub(super) send_key_env: Option<String>,
}

/// A channel: a team chat, or a push service.
#[derive(Debug, Clone)]
pub enum Channel {
    /// A team chat.
    Chat(ChatNotifier),
    /// A push service.
    Push(PushNotifier),
}

impl Channel {
    /// What sends its notices.
    pub fn notifier(&self) -> Arc<dyn Notifier> {
        match self {
            Channel::Chat(c) => Arc::new(c.clone()),
            Channel::Push(p) => Arc::new(p.clone()),
        }
    }
}

/// Why `name` cannot name a channel (a chat's or a hook's), if it cannot: not a valid
/// channel name, or one of `taken`.
pub(super) fn check_name(name: &str, taken: &[String]) -> Result<(), String> {
    if let Err(e) = Recipient::channel(name) {
        return Err(format!("{name:?}: {}", e.reason));
    }
    if taken.iter().any(|t| t == name) {
        return Err(format!("{name:?} names another channel too"));
    }
    Ok(())
}

impl ChannelConfig {
    /// Whether a URL that is a secret (a bot's, a webhook's, a topic's, a Shoutrrr URL with
    /// its token) is written in the configuration (`url`); a Gotify or Bark server's is not.
    pub(super) fn url_inline(&self) -> bool {
        let Some(url) = &self.url else {
            return false;
        };
        let server_only = matches!(self.kind.as_deref(), Some("gotify" | "bark"))
            && super::push::shoutrrr_scheme(url).is_none();
        !server_only
    }

    /// The channel's name and notifier, in the words of `template`; entry `i` of the list,
    /// whose name must not be one of `taken`.
    pub(super) fn build(
        self,
        i: usize,
        template: &MessageTemplate,
        taken: &[String],
    ) -> Result<(String, Channel), KeyError> {
        let key = |name: &str| format!("channels[{i}].{name}");
        let t = &template.text;
        let words = ChatWords {
            title: t.subject.clone(),
            intro: t.intro.clone(),
            button: t.button.clone(),
            test_marker: t.test_marker.clone(),
            test_notice: t.test_notice.clone(),
        };
        let url = self.url_value(&key)?;
        // A Shoutrrr URL names its kind by its scheme.
        let scheme = url.as_deref().and_then(super::push::shoutrrr_scheme);
        let kind = match (self.kind.clone(), scheme) {
            (Some(kind), _) => kind,
            (None, Some(scheme)) => scheme.to_owned(),
            (None, None) => return Err(KeyError::new(key("kind"), "required")),
        };
        let name = self.name.clone().unwrap_or_else(|| kind.clone());
        check_name(&name, taken).map_err(|message| KeyError::new(key("name"), message))?;
        let timeout = self.timeout;
        if super::push::KINDS.contains(&kind.as_str()) {
            if self.secret_env.is_some() {
                return Err(KeyError::new(key("secret_env"), "not a key of this kind"));
            }
            let push = super::push::build(&self, i, &kind, url)?.words(words);
            let push = match timeout {
                Some(t) => push
                    .timeout(t)
                    .map_err(|e| KeyError::new(key("timeout"), e.to_string_without_field()))?,
                None => push,
            };
            return Ok((name, Channel::Push(push)));
        }
        if let Some(set) = super::push::first_set(&self) {
            return Err(KeyError::new(key(set), "not a key of this kind"));
        }
        let chat = self.chat(i, &kind, url, words)?;
        Ok((name, Channel::Chat(chat)))
    }

    /// `url`, or the variable `url_env` names; at most one of them.
    fn url_value(&self, key: &dyn Fn(&str) -> String) -> Result<Option<String>, KeyError> {
        match (&self.url, &self.url_env) {
            (Some(url), None) => Ok(Some(url.clone())),
            (None, Some(var)) => super::env_value(key("url_env"), var).map(Some),
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(KeyError::new(key("url"), "set url or url_env, not both")),
        }
    }

    fn chat(
        self,
        i: usize,
        kind: &str,
        url: Option<String>,
        words: ChatWords,
    ) -> Result<ChatNotifier, KeyError> {
        let key = |name: &str| format!("channels[{i}].{name}");
        let kind: ChatKind = kind.parse().map_err(|e: InvalidSetting| {
            let push: Vec<String> = super::push::KINDS
                .iter()
                .map(|k| format!("{k:?}"))
                .collect();
            KeyError::new(
                key("kind"),
                format!("{}, or {}", e.reason(), push.join(", ")),
            )
        })?;
        let url = url.ok_or_else(|| {
            KeyError::new(
                key("url_env"),
                "the bot's URL: url_env (it is a secret) or url",
            )
        })?;
        let mut notifier = ChatNotifier::new(kind, url)
            .map_err(|e| KeyError::new(key(e.field()), e.to_string_without_field()))?
            .words(words);
        if let Some(var) = self.secret_env {
            notifier = notifier.secret(super::env_value(key("secret_env"), &var)?);
        }
        if let Some(timeout) = self.timeout {
            notifier = notifier
                .timeout(timeout)
                .map_err(|e| KeyError::new(key("timeout"), e.to_string_without_field()))?;
        }
        Ok(notifier)
    }
}
