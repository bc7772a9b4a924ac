//! Shoutrrr's URLs for the services that have one, read into a [`PushService`].

use super::{NtfyAuth, PushService};
use crate::error::InvalidSetting;

fn invalid(why: impl Into<String>) -> InvalidSetting {
    InvalidSetting::new("url", why)
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `key` in the query of `url`.
fn query(url: &reqwest::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.into_owned())
}

/// `https://` unless the query asks for `scheme=http` (or gotify's `disabletls=yes`).
fn scheme(url: &reqwest::Url) -> &'static str {
    let http = query(url, "scheme").is_some_and(|s| s.eq_ignore_ascii_case("http"))
        || query(url, "disabletls").is_some_and(|s| matches!(s.as_str(), "yes" | "true" | "1"));
    if http { "http" } else { "https" }
}

/// `host[:port]` of `url`.
fn authority(url: &reqwest::Url) -> Result<String, InvalidSetting> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("no host"))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

fn required(value: String, what: &str) -> Result<String, InvalidSetting> {
    if value.is_empty() {
        Err(invalid(format!("no {what}")))
    } else {
        Ok(value)
    }
}

/// The path's segments, decoded, empty ones left out.
fn segments(url: &reqwest::Url) -> Vec<String> {
    url.path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect()
}

fn telegram(
    url: &reqwest::Url,
    user: String,
    password: String,
) -> Result<PushService, InvalidSetting> {
    // The token has a colon: it is the URL's user and password.
    if user.is_empty() || password.is_empty() {
        return Err(invalid("no bot token (telegram://TOKEN@telegram?chats=…)"));
    }
    let chats: Vec<String> = query(url, "chats")
        .unwrap_or_default()
        .split(',')
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    if chats.is_empty() {
        return Err(invalid(
            "no chats (telegram://TOKEN@telegram?chats=ID,@channel)",
        ));
    }
    Ok(PushService::Telegram {
        api: "https://api.telegram.org".to_owned(),
        token: format!("{user}:{password}"),
        chats,
    })
}

pub(super) fn parse(text: &str) -> Result<PushService, InvalidSetting> {
    let url = reqwest::Url::parse(text).map_err(|e| invalid(format!("not a URL: {e}")))?;
    let user = decode(url.username());
    let password = url.password().map(decode).unwrap_or_default();
    match url.scheme() {
        "telegram" => telegram(&url, user, password),
        "discord" => {
            let token = required(user, "webhook token (discord://TOKEN@WEBHOOK_ID)")?;
            let id = required(url.host_str().unwrap_or_default().to_owned(), "webhook id")?;
            Ok(PushService::Discord {
                webhook: format!("https://discord.com/api/webhooks/{id}/{token}"),
            })
        }
        "ntfy" => {
            let topic = segments(&url).join("/");
            let topic = required(topic, "topic (ntfy://HOST/TOPIC)")?;
            let auth = match (user.is_empty(), password.is_empty()) {
                (true, true) => NtfyAuth::None,
                (true, false) => NtfyAuth::Token(password),
                (false, _) => NtfyAuth::Basic { user, password },
            };
            Ok(PushService::Ntfy {
                topic_url: format!("{}://{}/{topic}", scheme(&url), authority(&url)?),
                auth,
            })
        }
        "pushover" => {
            let token = required(password, "API token (pushover://shoutrrr:TOKEN@USER_KEY/)")?;
            let user = required(url.host_str().unwrap_or_default().to_owned(), "user key")?;
            Ok(PushService::Pushover {
                api: "https://api.pushover.net".to_owned(),
                token,
                user,
            })
        }
        "gotify" => {
            let mut path = segments(&url);
            let token = required(
                path.pop().unwrap_or_default(),
                "token (gotify://HOST/TOKEN)",
            )?;
            let prefix: String = path.iter().map(|s| format!("/{s}")).collect();
            Ok(PushService::Gotify {
                server: format!("{}://{}{prefix}", scheme(&url), authority(&url)?),
                token,
            })
        }
        "bark" => {
            let device_key = required(password, "device key (bark://:DEVICE_KEY@HOST)")?;
            let prefix: String = segments(&url).iter().map(|s| format!("/{s}")).collect();
            Ok(PushService::Bark {
                server: format!("{}://{}{prefix}", scheme(&url), authority(&url)?),
                device_key,
            })
        }
        other => Err(invalid(format!(
            "{other}://: the Shoutrrr URLs read are telegram, discord, ntfy, pushover, gotify and bark"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scheme_reads_its_parts() {
        let t = parse("telegram://110201543:AAHdqTcv%2Bx@telegram?chats=@ops,-1001234").unwrap();
        assert_eq!(
            t,
            PushService::Telegram {
                api: "https://api.telegram.org".into(),
                token: "110201543:AAHdqTcv+x".into(),
                chats: vec!["@ops".into(), "-1001234".into()],
            }
        );
        let d = parse("discord://tok-en@123456").unwrap();
        assert_eq!(
            d,
            PushService::Discord {
                webhook: "https://discord.com/api/webhooks/123456/tok-en".into()
            }
        );
        let n = parse("ntfy://ana:pa%40ss@ntfy.example.com/alerts").unwrap();
        assert_eq!(
            n,
            PushService::Ntfy {
                topic_url: "https://ntfy.example.com/alerts".into(),
                auth: NtfyAuth::Basic {
                    user: "ana".into(),
                    password: "pa@ss".into()
                },
            }
        );
        let n = parse("ntfy://:tk_abc@127.0.0.1:8080/t?scheme=http").unwrap();
        assert_eq!(
            n,
            PushService::Ntfy {
                topic_url: "http://127.0.0.1:8080/t".into(),
                auth: NtfyAuth::Token("tk_abc".into()),
            }
        );
        let p = parse("pushover://shoutrrr:apptoken@userkey/").unwrap();
        assert_eq!(
            p,
            PushService::Pushover {
                api: "https://api.pushover.net".into(),
                token: "apptoken".into(),
                user: "userkey".into(),
            }
        );
        let g = parse("gotify://gotify.example.com:8443/sub/AbCdEf").unwrap();
        assert_eq!(
            g,
            PushService::Gotify {
                server: "https://gotify.example.com:8443/sub".into(),
                token: "AbCdEf".into()
            }
        );
        let b = parse("bark://:devkey@api.day.app").unwrap();
        assert_eq!(
            b,
            PushService::Bark {
                server: "https://api.day.app".into(),
                device_key: "devkey".into()
            }
        );
    }

    #[test]
    fn missing_parts_are_named() {
        for (url, why) in [
            ("telegram://123:abc@telegram", "no chats"),
            ("telegram://123@telegram?chats=1", "no bot token"),
            ("discord://@123", "no webhook token"),
            ("ntfy://ntfy.sh/", "no topic"),
            ("pushover://shoutrrr@userkey/", "no API token"),
            ("gotify://gotify.example.com/", "no token"),
            ("bark://api.day.app", "no device key"),
            ("slack://a/b/c", "Shoutrrr URLs read"),
        ] {
            let e = parse(url).unwrap_err();
            assert!(e.to_string().contains(why), "{url}: {e}");
        }
    }
}
