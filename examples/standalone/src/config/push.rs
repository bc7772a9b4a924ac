//! The push services' keys of a `[[channels]]` entry: `kind = "telegram"`, `"discord"`,
//! `"ntfy"`, `"gotify"`, `"pushover"`, `"bark"`, `"serverchan"` or `"pushplus"`, or a
//! Shoutrrr URL in `url` / `url_env`.

use ip_monitor_core::notify::push::{NtfyAuth, PushNotifier, PushService};

use super::KeyError;
use super::channels::ChannelConfig;

/// The push kinds.
pub(super) const KINDS: &[&str] = &[
    "telegram",
    "discord",
    "ntfy",
    "gotify",
    "pushover",
    "bark",
    "serverchan",
    "pushplus",
];

/// The kinds a Shoutrrr URL names by its scheme.
const SHOUTRRR: &[&str] = &["telegram", "discord", "ntfy", "pushover", "gotify", "bark"];

/// The kind of a Shoutrrr URL (`telegram://…`), if `url` is one.
pub(super) fn shoutrrr_scheme(url: &str) -> Option<&'static str> {
    let scheme = url.split_once("://")?.0;
    SHOUTRRR.iter().find(|s| **s == scheme).copied()
}

/// The push keys that are set, by name.
fn set_keys(c: &ChannelConfig) -> Vec<&'static str> {
    [
        ("token_env", c.token_env.is_some()),
        ("chats", c.chats.is_some()),
        ("api", c.api.is_some()),
        ("user_key_env", c.user_key_env.is_some()),
        ("user", c.user.is_some()),
        ("password_env", c.password_env.is_some()),
        ("device_key_env", c.device_key_env.is_some()),
        ("send_key_env", c.send_key_env.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

/// The first push key set, for an entry that is not a push service.
pub(super) fn first_set(c: &ChannelConfig) -> Option<&'static str> {
    set_keys(c).first().copied()
}

/// The keys each kind takes (beside `kind`, `name`, `url`, `url_env`, `timeout`).
fn own_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "telegram" => &["token_env", "chats", "api"],
        "discord" => &[],
        "ntfy" => &["token_env", "user", "password_env"],
        "gotify" => &["token_env"],
        "pushover" => &["token_env", "user_key_env", "api"],
        "bark" => &["device_key_env"],
        "serverchan" => &["send_key_env", "api"],
        _ => &["token_env", "api"],
    }
}

struct Keys<'a> {
    c: &'a ChannelConfig,
    i: usize,
}

impl Keys<'_> {
    fn key(&self, name: &str) -> String {
        format!("channels[{}].{name}", self.i)
    }

    /// The secret in the variable that the key `name` (set to `var`) names.
    fn secret(&self, var: &Option<String>, name: &str) -> Result<String, KeyError> {
        let var = var
            .as_deref()
            .ok_or_else(|| KeyError::new(self.key(name), "required"))?;
        super::env_value(self.key(name), var)
    }

    fn url(&self, url: Option<String>, what: &str) -> Result<String, KeyError> {
        url.map(|u| u.trim_end_matches('/').to_owned())
            .ok_or_else(|| KeyError::new(self.key("url"), format!("required: {what}")))
    }

    fn api(&self, default: &str) -> String {
        self.c
            .api
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_owned()
    }
}

/// The service entry `i` of `kind` names, from its keys or its Shoutrrr URL.
pub(super) fn build(
    c: &ChannelConfig,
    i: usize,
    kind: &str,
    url: Option<String>,
) -> Result<PushNotifier, KeyError> {
    let k = Keys { c, i };
    if let Some(other) = set_keys(c)
        .into_iter()
        .find(|n| !own_keys(kind).contains(n))
    {
        return Err(KeyError::new(k.key(other), "not a key of this kind"));
    }
    let service = match url.as_deref().and_then(shoutrrr_scheme) {
        Some(scheme) if scheme != kind => {
            return Err(KeyError::new(
                k.key("url"),
                format!("a {scheme}:// URL in a channel of kind {kind:?}"),
            ));
        }
        Some(_) => {
            if let Some(set) = first_set(c) {
                return Err(KeyError::new(
                    k.key(set),
                    "the Shoutrrr URL says it all: leave this key out",
                ));
            }
            let text = url.unwrap_or_default();
            PushService::from_shoutrrr(&text)
                .map_err(|e| KeyError::new(k.key("url"), e.to_string_without_field()))?
        }
        None => service(&k, kind, url)?,
    };
    PushNotifier::new(service)
        .map_err(|e| KeyError::new(k.key(e.field()), e.to_string_without_field()))
}

fn service(k: &Keys<'_>, kind: &str, url: Option<String>) -> Result<PushService, KeyError> {
    let c = k.c;
    let no_url = |url: &Option<String>| match url {
        Some(_) => Err(KeyError::new(k.key("url"), "not a key of this kind")),
        None => Ok(()),
    };
    Ok(match kind {
        "telegram" => {
            no_url(&url)?;
            PushService::Telegram {
                api: k.api("https://api.telegram.org"),
                token: k.secret(&c.token_env, "token_env")?,
                chats: c.chats.clone().unwrap_or_default(),
            }
        }
        "discord" => PushService::Discord {
            webhook: k.url(url, "the webhook's URL (url_env: it is a secret)")?,
        },
        "ntfy" => PushService::Ntfy {
            topic_url: k.url(url, "the topic's URL, e.g. https://ntfy.sh/TOPIC")?,
            auth: match (&c.token_env, &c.user) {
                (Some(_), Some(_)) => {
                    return Err(KeyError::new(
                        k.key("user"),
                        "set token_env or user, not both",
                    ));
                }
                (Some(_), None) => NtfyAuth::Token(k.secret(&c.token_env, "token_env")?),
                (None, Some(user)) => NtfyAuth::Basic {
                    user: user.clone(),
                    password: k.secret(&c.password_env, "password_env")?,
                },
                (None, None) => NtfyAuth::None,
            },
        },
        "gotify" => PushService::Gotify {
            server: k.url(url, "the Gotify server's URL")?,
            token: k.secret(&c.token_env, "token_env")?,
        },
        "pushover" => {
            no_url(&url)?;
            PushService::Pushover {
                api: k.api("https://api.pushover.net"),
                token: k.secret(&c.token_env, "token_env")?,
                user: k.secret(&c.user_key_env, "user_key_env")?,
            }
        }
        "bark" => PushService::Bark {
            server: url.map_or_else(
                || "https://api.day.app".to_owned(),
                |u| u.trim_end_matches('/').to_owned(),
            ),
            device_key: k.secret(&c.device_key_env, "device_key_env")?,
        },
        "serverchan" => {
            no_url(&url)?;
            PushService::ServerChan {
                api: c.api.as_deref().map(|a| a.trim_end_matches('/').to_owned()),
                send_key: k.secret(&c.send_key_env, "send_key_env")?,
            }
        }
        _ => {
            no_url(&url)?;
            PushService::PushPlus {
                api: k.api("https://www.pushplus.plus"),
                token: k.secret(&c.token_env, "token_env")?,
            }
        }
    })
}
