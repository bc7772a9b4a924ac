//! `[[channels]]`: the team chats told of each change, one delivery each.

use std::time::Duration;

use ip_monitor_core::chat::{ChatKind, ChatNotifier, ChatWords};
use ip_monitor_core::{InvalidSetting, Recipient};
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
    /// Whether the bot's URL, a secret, is written in the configuration (`url`).
    pub(super) fn url_inline(&self) -> bool {
        self.url.is_some()
    }

    /// The channel's name and notifier, in the words of `template`; entry `i` of the list,
    /// whose name must not be one of `taken`.
    pub(super) fn build(
        self,
        i: usize,
        template: &MessageTemplate,
        taken: &[String],
    ) -> Result<(String, ChatNotifier), KeyError> {
        let c = self;
        let key = |name: &str| format!("channels[{i}].{name}");
        let kind: ChatKind = c
            .kind
            .as_deref()
            .ok_or_else(|| KeyError::new(key("kind"), "required"))?
            .parse()
            .map_err(|e: InvalidSetting| KeyError::new(key("kind"), e.reason()))?;
        let name = c.name.unwrap_or_else(|| kind.as_str().to_owned());
        check_name(&name, taken).map_err(|message| KeyError::new(key("name"), message))?;
        let url = match (c.url, c.url_env) {
            (Some(url), None) => url,
            (None, Some(var)) => std::env::var(&var).map_err(|_| {
                KeyError::new(
                    key("url_env"),
                    format!("the environment variable {var} is not set"),
                )
            })?,
            (None, None) => {
                return Err(KeyError::new(
                    key("url_env"),
                    "the bot's URL: url_env (it is a secret) or url",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(KeyError::new(key("url"), "set url or url_env, not both"));
            }
        };
        let t = &template.text;
        let mut notifier = ChatNotifier::new(kind, url)
            .map_err(|e| KeyError::new(key(e.field()), e.to_string_without_field()))?
            .words(ChatWords {
                title: t.subject.clone(),
                intro: t.intro.clone(),
                button: t.button.clone(),
                test_marker: t.test_marker.clone(),
                test_notice: t.test_notice.clone(),
            });
        if let Some(var) = c.secret_env {
            let secret = std::env::var(&var).map_err(|_| {
                KeyError::new(
                    key("secret_env"),
                    format!("the environment variable {var} is not set"),
                )
            })?;
            notifier = notifier.secret(secret);
        }
        if let Some(timeout) = c.timeout {
            notifier = notifier
                .timeout(timeout)
                .map_err(|e| KeyError::new(key("timeout"), e.to_string_without_field()))?;
        }
        Ok((name, notifier))
    }
}
