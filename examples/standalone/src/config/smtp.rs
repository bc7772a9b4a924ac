//! `[smtp]` and `[[smtp.fallback]]`: the relays, or `.eml` files in `outbox` without them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ip_monitor_lettre::{DkimKey, MessageTemplate, Password, SmtpNotifier, Tls};
use serde::Deserialize;

use super::KeyError;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct SmtpConfig {
    pub(super) host: Option<String>,
    port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    pub(super) password_env: Option<String>,
    password_file: Option<PathBuf>,
    pub(super) from: Option<String>,
    pub(super) reply_to: Option<String>,
    #[serde(with = "humantime_serde")]
    timeout: Option<Duration>,
    pool_size: Option<u32>,
    /// At most this many messages a minute (a relay whose limit is known).
    max_per_minute: Option<u32>,
    /// How long a sending-quota answer holds this relay's messages.
    #[serde(with = "humantime_serde")]
    quota_retry: Option<Duration>,
    pub(super) ca_file: Option<PathBuf>,
    /// The DKIM private key (PEM), its selector, and the signing domain (default: From's).
    dkim_key_file: Option<PathBuf>,
    dkim_selector: Option<String>,
    dkim_domain: Option<String>,
    /// Backup relays (`[[smtp.fallback]]`), tried in order when the ones before cannot take
    /// a message.
    fallback: Vec<SmtpConfig>,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl SmtpConfig {
    /// The DKIM key of `dkim_key_file`, `dkim_selector` and `dkim_domain` (default: the
    /// From domain), if a key is set; errors name the key.
    pub(super) fn dkim_key(&self) -> Result<Option<DkimKey>, KeyError> {
        let Some(file) = &self.dkim_key_file else {
            if self.dkim_selector.is_some() || self.dkim_domain.is_some() {
                return Err(KeyError::new(
                    "smtp.dkim_key_file",
                    "required with dkim_selector and dkim_domain",
                ));
            }
            return Ok(None);
        };
        let selector = self.dkim_selector.as_deref().ok_or_else(|| {
            KeyError::new(
                "smtp.dkim_selector",
                "required with dkim_key_file (e.g. \"mail\")",
            )
        })?;
        let from_domain = self
            .from
            .as_deref()
            .and_then(|f| f.parse::<ip_monitor_lettre::Mailbox>().ok())
            .map(|m| m.email.domain().to_owned());
        let domain =
            self.dkim_domain.clone().or(from_domain).ok_or_else(|| {
                KeyError::new("smtp.dkim_domain", "required when [smtp] has no from")
            })?;
        DkimKey::from_file(file, selector, &domain)
            .map(Some)
            .map_err(|e| match e {
                ip_monitor_lettre::Error::Config { key, message } => {
                    KeyError::new(format!("smtp.{key}"), message)
                }
                other => KeyError::new("smtp.dkim_key_file", other.to_string()),
            })
    }
}

/// How they are told.
#[derive(Debug, Clone)]
pub enum NotifierSetting {
    /// Through an SMTP server, and its backups in order.
    Smtp {
        /// The relay of `[smtp]`.
        primary: Box<SmtpNotifier>,
        /// The relays of `[[smtp.fallback]]`.
        fallback: Vec<SmtpNotifier>,
    },
    /// As `.eml` files in a directory.
    Files(PathBuf),
}

impl NotifierSetting {
    /// The relays of `smtp` (its backups inheriting `from`), or files in `outbox`
    /// (default `./outbox`) without `[smtp]`. `pool` is the default pool size.
    pub(super) fn build(
        smtp: Option<SmtpConfig>,
        outbox: Option<PathBuf>,
        template: &MessageTemplate,
        pool: u32,
    ) -> Result<Self, KeyError> {
        let Some(mut smtp) = smtp else {
            return Ok(NotifierSetting::Files(
                outbox.unwrap_or_else(|| PathBuf::from("outbox")),
            ));
        };
        let backups = std::mem::take(&mut smtp.fallback);
        let primary = smtp_notifier(smtp, "smtp", template, pool)?;
        let mut fallback = Vec::with_capacity(backups.len());
        for (i, backup) in backups.into_iter().enumerate() {
            let key = format!("smtp.fallback[{i}]");
            let inherited = [
                ("from", backup.from.is_some()),
                ("dkim_key_file", backup.dkim_key_file.is_some()),
                ("dkim_selector", backup.dkim_selector.is_some()),
                ("dkim_domain", backup.dkim_domain.is_some()),
                ("reply_to", backup.reply_to.is_some()),
                ("fallback", !backup.fallback.is_empty()),
            ];
            if let Some((name, _)) = inherited.iter().find(|(_, set)| *set) {
                return Err(KeyError::new(
                    format!("{key}.{name}"),
                    "set in [smtp] only: every relay sends the same message",
                ));
            }
            fallback.push(smtp_notifier(backup, &key, template, pool)?);
        }
        Ok(NotifierSetting::Smtp {
            primary: Box::new(primary),
            fallback,
        })
    }
}

/// The notifier of one relay (`[smtp]` or a `[[smtp.fallback]]` entry, whose keys start
/// with `key`); errors name the key.
fn smtp_notifier(
    smtp: SmtpConfig,
    key: &str,
    template: &MessageTemplate,
    default_pool: u32,
) -> Result<SmtpNotifier, KeyError> {
    let err = |name: &str, message: String| KeyError::new(format!("{key}.{name}"), message);
    let host = smtp
        .host
        .ok_or_else(|| err("host", format!("required in [{key}]")))?;
    let tls = match smtp.tls.as_deref() {
        None => Tls::StartTls,
        Some(t) => t.parse::<Tls>().map_err(|_| {
            err(
                "tls",
                format!("{t:?}: expected \"starttls\", \"tls\" or \"none\""),
            )
        })?,
    };
    let mut b = SmtpNotifier::builder(host)
        .tls(tls)
        .pool_size(smtp.pool_size.unwrap_or(default_pool))
        .template(template.clone());
    if let Some(port) = smtp.port {
        b = b.port(port);
    }
    if let Some(t) = smtp.timeout {
        b = b.timeout(t);
    }
    if let Some(n) = smtp.max_per_minute {
        b = b.max_per_minute(n);
    }
    if let Some(wait) = smtp.quota_retry {
        if wait.is_zero() {
            return Err(err("quota_retry", "must be longer than 0s".to_owned()));
        }
        b = b.quota_retry(wait);
    }
    if let Some(path) = &smtp.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| err("ca_file", format!("cannot read {}: {e}", path.display())))?;
        b = b.add_root_certificates(pem);
    }
    let password = match (&smtp.password_env, &smtp.password_file) {
        (Some(var), None) => {
            Some(Password::from_env(var).map_err(|e| err("password_env", e.to_string()))?)
        }
        (None, Some(file)) => {
            Some(Password::from_file(file).map_err(|e| err("password_file", e.to_string()))?)
        }
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(err(
                "password_env",
                "set password_env or password_file, not both".to_owned(),
            ));
        }
    };
    match (smtp.username, password) {
        (Some(user), Some(password)) => b = b.credentials(user, password),
        (Some(_), None) => {
            return Err(err(
                "username",
                "needs password_env or password_file".to_owned(),
            ));
        }
        (None, Some(_)) => return Err(err("username", "required with a password".to_owned())),
        (None, None) => {}
    }
    b.build().map_err(|e| match e {
        ip_monitor_lettre::Error::InsecureCredentials { .. } => err("tls", e.to_string()),
        other => KeyError::new(key, other.to_string()),
    })
}
