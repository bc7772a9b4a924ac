//! The TOML configuration of the `ip-monitor` binary: every key, its default, and its
//! validation. Errors name the file, the key and what was expected.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ip_monitor_core::Notifier;
use ip_monitor_core::chat::{ChatKind, ChatNotifier, ChatWords};
use ip_monitor_core::cloudflare::CloudflareRecord;
use ip_monitor_core::rfc2136::Rfc2136Record;
use ip_monitor_core::{
    AnswerFormat, DnsIpSource, Family, HttpIpSource, IpSource, LocalInterfaceSource, MonitorConfig,
    Recipient, SourceSet, Strategy, UrlTemplate,
};
use ip_monitor_lettre::{Locale, MessageTemplate, MessageText, Password, SmtpNotifier, Tls};
use serde::Deserialize;

/// The default configuration file.
pub const DEFAULT_PATH: &str = "ip-monitor.toml";

/// A configuration problem: where, which key, what was expected.
#[derive(Debug)]
pub struct ConfigError {
    /// The file (or "built-in defaults").
    pub file: String,
    /// The key, when one is at fault.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: `{key}`: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// The file's sections and the binary's own top-level keys; every other top-level key (and
/// `[delivery]`) is the core's [`MonitorConfig`], deserialized with its defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    outbox: Option<PathBuf>,
    sources: Option<SourcesConfig>,
    store: Option<StoreConfig>,
    recipients: Option<RecipientsConfig>,
    smtp: Option<SmtpConfig>,
    email: Option<EmailConfig>,
    log: Option<LogConfig>,
    server: Option<ServerConfig>,
    channels: Vec<ChannelConfig>,
    dns: Vec<DnsConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DnsConfig {
    kind: Option<String>,
    zone: Option<String>,
    name: Option<String>,
    ttl: Option<u32>,
    proxied: Option<bool>,
    token_env: Option<String>,
    api_base: Option<String>,
    families: Option<Vec<Family>>,
    server: Option<String>,
    tsig_key_name: Option<String>,
    tsig_algorithm: Option<String>,
    tsig_secret_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ChannelConfig {
    kind: Option<String>,
    name: Option<String>,
    url: Option<String>,
    url_env: Option<String>,
    secret_env: Option<String>,
    #[serde(with = "humantime_serde")]
    timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServerConfig {
    listen: Option<String>,
    token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LogConfig {
    file: Option<PathBuf>,
    rotate: Option<String>,
    max_size_mb: Option<u64>,
    keep: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SourcesConfig {
    strategy: Option<String>,
    quorum: Option<usize>,
    #[serde(with = "humantime_serde")]
    timeout: Option<Duration>,
    list: Vec<SourceEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SourceEntry {
    kind: String,
    name: Option<String>,
    url: Option<String>,
    allow_non_global: bool,
    /// Extra CA certificates (PEM) for an HTTPS source, e.g. a router's own CA.
    ca_file: Option<PathBuf>,
    provider: Option<String>,
    server: Option<String>,
    server_v6: Option<String>,
    target: Option<String>,
    target_v6: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct StoreConfig {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RecipientsConfig {
    query: Option<String>,
    database_url: Option<String>,
    #[serde(rename = "static")]
    static_list: Option<Vec<String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SmtpConfig {
    host: Option<String>,
    port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    reply_to: Option<String>,
    #[serde(with = "humantime_serde")]
    timeout: Option<Duration>,
    pool_size: Option<u32>,
    ca_file: Option<PathBuf>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct EmailConfig {
    locale: Option<String>,
    subject: Option<String>,
    from: Option<String>,
    reply_to: Option<String>,
    greeting: Option<String>,
    greeting_without_name: Option<String>,
    intro: Option<String>,
    button: Option<String>,
    scan_hint: Option<String>,
    footer: Option<String>,
    test_marker: Option<String>,
    test_notice: Option<String>,
    qr_alt: Option<String>,
}

/// Who is told.
#[derive(Debug, Clone)]
pub enum RecipientsSetting {
    /// A fixed list (`[recipients] static = [...]`; empty: nobody).
    Static(Vec<String>),
    /// A SQL query on the store's database or another.
    Query {
        /// The query.
        sql: String,
        /// Another database, if not the store's.
        database_url: Option<String>,
    },
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

/// Everything the commands need, validated.
#[derive(Debug)]
pub struct Settings {
    /// Where the settings came from.
    pub origin: String,
    /// Whether a file was read.
    pub from_file: bool,
    /// The monitor's behaviour.
    pub monitor: MonitorConfig,
    /// `service_url`, validated.
    pub url_template: UrlTemplate,
    /// The IP sources.
    pub sources: SourceSet,
    /// The store's URL.
    pub store_url: String,
    /// The recipients.
    pub recipients: RecipientsSetting,
    /// The notifier.
    pub notifier: NotifierSetting,
    /// The message (From:, words).
    pub template: MessageTemplate,
    /// The log file (`[log]`), if any.
    pub log: Option<LogSettings>,
    /// The HTTP surface (`[server]`), if any.
    pub server: Option<ServerSettings>,
    /// The chat channels (`[[channels]]`), each told once per change.
    pub channels: Vec<(String, ChatNotifier)>,
    /// The DNS records kept on the address (`[[dns]]`), each updated once per change; the
    /// name is the delivery's channel, `dns-NAME`.
    pub dns: Vec<DnsSetting>,
}

/// One `[[dns]]` entry.
#[derive(Debug, Clone)]
pub struct DnsSetting {
    /// The channel of its deliveries: `dns-NAME`.
    pub channel: String,
    /// What writes the record.
    pub notifier: Arc<dyn Notifier>,
    /// What an update does, in words, for `preview`: `{address}` is the new address.
    pub plan: String,
}

/// The status page, health check and metrics (`[server]`).
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Where to listen (`listen`, default `127.0.0.1:9105`).
    pub listen: SocketAddr,
    /// The token the check and test actions need, read from the variable `token_env`
    /// names; without it they are off.
    pub token: Option<String>,
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSettings")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// The top-level keys of the file that are not the monitor's.
const FILE_KEYS: &[&str] = &[
    "outbox",
    "sources",
    "store",
    "recipients",
    "smtp",
    "email",
    "log",
    "server",
    "channels",
    "dns",
];

/// Where `[server]` listens unless `listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9105";

/// Where and how the log file is written (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The live file (`file`).
    pub file: PathBuf,
    /// When it is rotated (`rotate = "daily"`, or `"size"` with `max_size_mb`).
    pub rotation: crate::logfile::Rotation,
    /// Rotated files kept (`keep`, default 7).
    pub keep: usize,
}

impl Settings {
    /// Load `path`, or `./ip-monitor.toml` when it exists, or the built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let (origin, text) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    file: p.display().to_string(),
                    key: None,
                    message: format!("cannot read the file: {e}"),
                })?;
                (p.display().to_string(), Some(text))
            }
            None => match std::fs::read_to_string(DEFAULT_PATH) {
                Ok(text) => (DEFAULT_PATH.to_owned(), Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    ("built-in defaults".to_owned(), None)
                }
                Err(e) => {
                    return Err(ConfigError {
                        file: DEFAULT_PATH.to_owned(),
                        key: None,
                        message: format!("cannot read the file: {e}"),
                    });
                }
            },
        };
        match text {
            Some(t) => Settings::parse(&origin, &t),
            None => Settings::from_file(
                origin,
                false,
                FileConfig::default(),
                MonitorConfig::default(),
            ),
        }
    }

    /// Parse and validate configuration `text`; errors name `origin`.
    pub fn parse(origin: &str, text: &str) -> Result<Settings, ConfigError> {
        let (file, monitor) = split(origin, text)?;
        Settings::from_file(origin.to_owned(), true, file, monitor)
    }

    fn from_file(
        origin: String,
        from_file: bool,
        f: FileConfig,
        monitor: MonitorConfig,
    ) -> Result<Settings, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: origin.clone(),
            key: Some(key.to_owned()),
            message,
        };
        let sources_cfg = f.sources.unwrap_or_default();
        let strategy = match sources_cfg.strategy.as_deref() {
            None | Some("quorum") => Strategy::Quorum,
            Some("first") => Strategy::First,
            Some("fallback") => Strategy::Fallback,
            Some(other) => {
                return Err(err(
                    "sources.strategy",
                    format!("{other:?}: expected \"quorum\", \"first\" or \"fallback\""),
                ));
            }
        };
        let mut list: Vec<Arc<dyn IpSource>> = Vec::new();
        for (i, entry) in sources_cfg.list.iter().enumerate() {
            list.push(
                source(entry)
                    .map_err(|(key, message)| err(&format!("sources.list[{i}].{key}"), message))?,
            );
        }
        if list.is_empty() {
            list =
                HttpIpSource::public_defaults().map_err(|e| err("sources.list", e.to_string()))?;
        }
        let mut sources = SourceSet::new(list)
            .strategy(strategy)
            .timeout(sources_cfg.timeout.unwrap_or(Duration::from_secs(5)));
        if let Some(q) = sources_cfg.quorum {
            sources = sources.quorum(q);
        }

        let store_url = f
            .store
            .and_then(|s| s.url)
            .unwrap_or_else(|| "sqlite://ip-monitor.db".to_owned());

        let recipients = match f.recipients {
            None if !from_file => RecipientsSetting::Static(Vec::new()),
            None => RecipientsSetting::Query {
                sql: ip_monitor_diesel::DEFAULT_QUERY.to_owned(),
                database_url: None,
            },
            Some(r) => match r.static_list {
                Some(list) => RecipientsSetting::Static(list),
                None => RecipientsSetting::Query {
                    sql: r
                        .query
                        .unwrap_or_else(|| ip_monitor_diesel::DEFAULT_QUERY.to_owned()),
                    database_url: r.database_url,
                },
            },
        };

        let email = f.email.unwrap_or_default();
        let locale: Locale = match &email.locale {
            Some(tag) => tag
                .parse()
                .map_err(|e: ip_monitor_lettre::Error| err("email.locale", e.to_string()))?,
            None => Locale::default(),
        };
        // The locale's words, then each key set in [email] in their place.
        let mut text = MessageText::for_locale(locale);
        for (value, slot) in [
            (email.subject, &mut text.subject),
            (email.greeting, &mut text.greeting),
            (email.greeting_without_name, &mut text.greeting_without_name),
            (email.intro, &mut text.intro),
            (email.button, &mut text.button),
            (email.scan_hint, &mut text.scan_hint),
            (email.footer, &mut text.footer),
            (email.test_marker, &mut text.test_marker),
            (email.test_notice, &mut text.test_notice),
            (email.qr_alt, &mut text.qr_alt),
        ] {
            if let Some(value) = value {
                *slot = value;
            }
        }
        let smtp_from = f.smtp.as_ref().and_then(|s| s.from.clone());
        let from_key = if smtp_from.is_some() {
            "smtp.from"
        } else {
            "email.from"
        };
        let from = smtp_from
            .or(email.from)
            .unwrap_or_else(|| "IP Monitor <ip-monitor@localhost>".to_owned());
        let mut template = MessageTemplate::new(&from)
            .map_err(|e| err(from_key, e.to_string()))?
            .text(text);
        let reply_key = if f.smtp.as_ref().is_some_and(|s| s.reply_to.is_some()) {
            "smtp.reply_to"
        } else {
            "email.reply_to"
        };
        if let Some(reply_to) = f
            .smtp
            .as_ref()
            .and_then(|s| s.reply_to.clone())
            .or(email.reply_to)
        {
            template = template
                .reply_to(&reply_to)
                .map_err(|e| err(reply_key, e.to_string()))?;
        }

        let notifier = match f.smtp {
            None => NotifierSetting::Files(f.outbox.unwrap_or_else(|| PathBuf::from("outbox"))),
            Some(mut smtp) => {
                let pool = monitor.delivery.parallelism as u32;
                let backups = std::mem::take(&mut smtp.fallback);
                let primary = smtp_notifier(smtp, "smtp", &template, pool)
                    .map_err(|(key, message)| err(&key, message))?;
                let mut fallback = Vec::with_capacity(backups.len());
                for (i, backup) in backups.into_iter().enumerate() {
                    let key = format!("smtp.fallback[{i}]");
                    let inherited = [
                        ("from", backup.from.is_some()),
                        ("reply_to", backup.reply_to.is_some()),
                        ("fallback", !backup.fallback.is_empty()),
                    ];
                    if let Some((name, _)) = inherited.iter().find(|(_, set)| *set) {
                        return Err(err(
                            &format!("{key}.{name}"),
                            "set in [smtp] only: every relay sends the same message".to_owned(),
                        ));
                    }
                    fallback.push(
                        smtp_notifier(backup, &key, &template, pool)
                            .map_err(|(key, message)| err(&key, message))?,
                    );
                }
                NotifierSetting::Smtp {
                    primary: Box::new(primary),
                    fallback,
                }
            }
        };

        let url_template = UrlTemplate::parse(&monitor.service_url)
            .map_err(|e| err("service_url", e.to_string()))?;

        let log = match f.log {
            None => None,
            Some(l) => {
                let rotation = match l.rotate.as_deref().unwrap_or("daily") {
                    "daily" => {
                        if l.max_size_mb.is_some() {
                            return Err(err(
                                "log.max_size_mb",
                                "only with rotate = \"size\"".to_owned(),
                            ));
                        }
                        crate::logfile::Rotation::Daily
                    }
                    "size" => match l.max_size_mb.unwrap_or(10) {
                        0 => return Err(err("log.max_size_mb", "must be at least 1".to_owned())),
                        mb => crate::logfile::Rotation::Size(mb.saturating_mul(1 << 20)),
                    },
                    other => {
                        return Err(err(
                            "log.rotate",
                            format!("{other:?}: expected \"daily\" or \"size\""),
                        ));
                    }
                };
                let file = l
                    .file
                    .filter(|p| !p.as_os_str().is_empty())
                    .ok_or_else(|| err("log.file", "required in [log]".to_owned()))?;
                Some(LogSettings {
                    file,
                    rotation,
                    keep: l.keep.unwrap_or(7),
                })
            }
        };
        let server = match f.server {
            None => None,
            Some(server) => {
                let listen = server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
                let listen = listen.parse::<SocketAddr>().map_err(|_| {
                    err(
                        "server.listen",
                        format!(
                            "{listen:?}: expected an address and port, such as \"{DEFAULT_LISTEN}\""
                        ),
                    )
                })?;
                let token = match &server.token_env {
                    None => None,
                    Some(var) => match std::env::var(var) {
                        Ok(token) if token.trim().len() >= 16 => Some(token.trim().to_owned()),
                        Ok(_) => {
                            return Err(err(
                                "server.token_env",
                                format!("${var} must hold a token of at least 16 characters"),
                            ));
                        }
                        Err(_) => {
                            return Err(err(
                                "server.token_env",
                                format!("the environment variable {var} is not set"),
                            ));
                        }
                    },
                };
                Some(ServerSettings { listen, token })
            }
        };
        let mut channels: Vec<(String, ChatNotifier)> = Vec::new();
        for (i, c) in f.channels.into_iter().enumerate() {
            let key = |name: &str| format!("channels[{i}].{name}");
            let kind: ChatKind = c
                .kind
                .as_deref()
                .ok_or_else(|| err(&key("kind"), "required".to_owned()))?
                .parse()
                .map_err(|e: String| err(&key("kind"), e))?;
            let name = c.name.unwrap_or_else(|| kind.as_str().to_owned());
            if let Err(e) = Recipient::channel(&name) {
                return Err(err(&key("name"), format!("{name:?}: {}", e.reason)));
            }
            if channels.iter().any(|(n, _)| *n == name) {
                return Err(err(
                    &key("name"),
                    format!("{name:?} names another channel too"),
                ));
            }
            let url = match (c.url, c.url_env) {
                (Some(url), None) => url,
                (None, Some(var)) => std::env::var(&var).map_err(|_| {
                    err(
                        &key("url_env"),
                        format!("the environment variable {var} is not set"),
                    )
                })?,
                (None, None) => {
                    return Err(err(
                        &key("url_env"),
                        "the bot's URL: url_env (it is a secret) or url".to_owned(),
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(err(&key("url"), "set url or url_env, not both".to_owned()));
                }
            };
            let t = &template.text;
            let mut notifier = ChatNotifier::new(kind, url)
                .map_err(|e| err(&key("url"), e.to_string()))?
                .words(ChatWords {
                    title: t.subject.clone(),
                    intro: t.intro.clone(),
                    button: t.button.clone(),
                    test_marker: t.test_marker.clone(),
                    test_notice: t.test_notice.clone(),
                });
            if let Some(var) = c.secret_env {
                let secret = std::env::var(&var).map_err(|_| {
                    err(
                        &key("secret_env"),
                        format!("the environment variable {var} is not set"),
                    )
                })?;
                notifier = notifier.secret(secret);
            }
            if let Some(timeout) = c.timeout {
                notifier = notifier
                    .timeout(timeout)
                    .map_err(|e| err(&key("timeout"), e.to_string()))?;
            }
            channels.push((name, notifier));
        }
        let mut dns: Vec<DnsSetting> = Vec::new();
        for (i, d) in f.dns.into_iter().enumerate() {
            let key = |name: &str| format!("dns[{i}].{name}");
            let required = |v: Option<String>, name: &str| {
                v.filter(|v| !v.is_empty())
                    .ok_or_else(|| err(&key(name), "required".to_owned()))
            };
            let from_env = |var: String, name: &str| {
                std::env::var(&var).map_err(|_| {
                    err(
                        &key(name),
                        format!("the environment variable {var} is not set"),
                    )
                })
            };
            match d.kind.as_deref() {
                Some("cloudflare" | "rfc2136") => {}
                Some(other) => {
                    return Err(err(
                        &key("kind"),
                        format!("{other:?}: expected \"rfc2136\" or \"cloudflare\""),
                    ));
                }
                None => return Err(err(&key("kind"), "required".to_owned())),
            }
            let zone = required(d.zone.clone(), "zone")?;
            let name = required(d.name.clone(), "name")?;
            let families = match d.families.clone() {
                Some(f) if f.is_empty() => {
                    return Err(err(
                        &key("families"),
                        "at least one of \"v4\", \"v6\"".to_owned(),
                    ));
                }
                Some(f) => f,
                None => vec![Family::V4],
            };
            // Keys of the other kind are refused by name, not ignored.
            let other_kind = |names: &[(&str, bool)]| {
                names
                    .iter()
                    .find(|(_, set)| *set)
                    .map(|(n, _)| err(&key(n), "not a key of this kind".to_owned()))
            };
            let types = families
                .iter()
                .map(|f| match f {
                    Family::V4 => "A",
                    Family::V6 => "AAAA",
                })
                .collect::<Vec<_>>()
                .join(" and ");
            let (notifier, plan): (Arc<dyn Notifier>, String) = match d.kind.as_deref() {
                Some("cloudflare") => {
                    if let Some(e) = other_kind(&[
                        ("server", d.server.is_some()),
                        ("tsig_key_name", d.tsig_key_name.is_some()),
                        ("tsig_algorithm", d.tsig_algorithm.is_some()),
                        ("tsig_secret_env", d.tsig_secret_env.is_some()),
                    ]) {
                        return Err(e);
                    }
                    let token = from_env(required(d.token_env, "token_env")?, "token_env")?;
                    let mut record = CloudflareRecord::new(zone.clone(), name.clone(), token)
                        .map_err(|e| err(&key("name"), e.to_string()))?
                        .ttl(d.ttl.unwrap_or(1))
                        .proxied(d.proxied.unwrap_or(false))
                        .families(families);
                    let base = d
                        .api_base
                        .unwrap_or_else(|| ip_monitor_core::cloudflare::API_BASE.to_owned());
                    record = record.api_base(base.clone());
                    let plan = format!(
                        "Cloudflare ({base}): set the {types} record of {name} in {zone} to {{address}}, \
                         ttl {}, proxied {}, only if its comment says \"{}\" (created if missing)",
                        d.ttl.unwrap_or(1),
                        d.proxied.unwrap_or(false),
                        ip_monitor_core::cloudflare::MARKER
                    );
                    (Arc::new(record), plan)
                }
                Some("rfc2136") => {
                    if let Some(e) = other_kind(&[
                        ("token_env", d.token_env.is_some()),
                        ("api_base", d.api_base.is_some()),
                        ("proxied", d.proxied.is_some()),
                    ]) {
                        return Err(e);
                    }
                    let server = required(d.server, "server")?;
                    let server: SocketAddr = server
                        .parse()
                        .or_else(|_| format!("{server}:53").parse())
                        .map_err(|_| {
                            err(
                                &key("server"),
                                format!(
                                    "{server:?}: expected IP or IP:PORT, e.g. \"192.0.2.53:53\""
                                ),
                            )
                        })?;
                    let secret = from_env(
                        required(d.tsig_secret_env, "tsig_secret_env")?,
                        "tsig_secret_env",
                    )?;
                    let algorithm = d.tsig_algorithm.unwrap_or_else(|| "hmac-sha256".to_owned());
                    let key_name = required(d.tsig_key_name.clone(), "tsig_key_name")?;
                    let plan = format!(
                        "RFC 2136 update at {server}, signed with the TSIG key {key_name} ({algorithm}): \
                         replace the {types} set of {name} in {zone} with {{address}}, ttl {}, then read it back",
                        d.ttl.unwrap_or(300)
                    );
                    let record =
                        Rfc2136Record::new(server, &zone, &name, &key_name, &algorithm, &secret)
                            .map_err(|e| {
                                let text = e.to_string();
                                let which = if text.contains("algorithm") {
                                    "tsig_algorithm"
                                } else if text.contains("secret") {
                                    "tsig_secret_env"
                                } else if text.contains("key name") {
                                    "tsig_key_name"
                                } else {
                                    "name"
                                };
                                err(&key(which), text)
                            })?
                            .ttl(d.ttl.unwrap_or(300))
                            .families(families);
                    (Arc::new(record), plan)
                }
                _ => unreachable!("the kind was checked above"),
            };
            let channel = format!("dns-{}", name.trim_end_matches('.').to_ascii_lowercase());
            if let Err(e) = Recipient::channel(&channel) {
                return Err(err(&key("name"), format!("{name:?}: {}", e.reason)));
            }
            if dns.iter().any(|d| d.channel == channel)
                || channels.iter().any(|(n, _)| *n == channel)
            {
                return Err(err(&key("name"), format!("{name:?} is listed twice")));
            }
            dns.push(DnsSetting {
                channel,
                notifier,
                plan,
            });
        }
        Ok(Settings {
            channels,
            dns,
            origin,
            from_file,
            monitor,
            url_template,
            sources,
            store_url,
            recipients,
            notifier,
            template,
            log,
            server,
        })
    }

    /// A configuration error about `key` in this file.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.origin.clone(),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }
}

/// The notifier of one relay (`[smtp]` or a `[[smtp.fallback]]` entry, whose keys start
/// with `key`); errors name the key.
fn smtp_notifier(
    smtp: SmtpConfig,
    key: &str,
    template: &MessageTemplate,
    default_pool: u32,
) -> Result<SmtpNotifier, (String, String)> {
    let err = |name: &str, message: String| (format!("{key}.{name}"), message);
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
        other => (key.to_owned(), other.to_string()),
    })
}

/// Parse `text` once and split it in two tables that keep their places in the text: the
/// binary's own sections, and the monitor's keys (the core's [`MonitorConfig`], defaults
/// included, unknown keys refused).
fn split(origin: &str, text: &str) -> Result<(FileConfig, MonitorConfig), ConfigError> {
    use serde::Deserialize;
    use toml::de::{DeTable, Deserializer};
    let root = DeTable::parse(text).map_err(|e| toml_error(origin, &e))?;
    let span = root.span();
    let (mut sections, mut monitor) = (DeTable::default(), DeTable::default());
    for (key, value) in root.into_inner() {
        if FILE_KEYS.contains(&key.get_ref().as_ref()) {
            sections.insert(key, value);
        } else {
            monitor.insert(key, value);
        }
    }
    let error = |mut e: toml::de::Error| {
        e.set_input(Some(text));
        toml_error(origin, &e)
    };
    let file = FileConfig::deserialize(Deserializer::from(toml::Spanned::new(
        span.clone(),
        sections,
    )))
    .map_err(error)?;
    let monitor = MonitorConfig::deserialize(Deserializer::from(toml::Spanned::new(span, monitor)))
        .map_err(error)?;
    Ok((file, monitor))
}

/// A TOML error: toml's own report shows the line, the key and the offending value.
fn toml_error(file: &str, e: &toml::de::Error) -> ConfigError {
    ConfigError {
        file: file.to_owned(),
        key: key_of(e),
        message: e.to_string().trim_end().to_owned(),
    }
}

/// The key path of a TOML error, from its message where toml names it.
fn key_of(e: &toml::de::Error) -> Option<String> {
    let m = e.message();
    m.split('`')
        .nth(1)
        .filter(|_| m.starts_with("unknown field"))
        .map(str::to_owned)
}

fn parse_addr(key: &'static str, value: &str) -> Result<SocketAddr, (&'static str, String)> {
    value.parse().map_err(|_| {
        (
            key,
            format!("{value:?}: expected IP:PORT, e.g. \"127.0.0.1:53\" or \"[::1]:53\""),
        )
    })
}

/// A key set in a `[[sources.list]]` entry that its kind does not use: an error naming it,
/// not a setting silently ignored (`server` on an HTTP source, `url` on a DNS one).
fn check_keys_of_kind(e: &SourceEntry) -> Result<(), (&'static str, String)> {
    let set = [
        ("url", e.url.is_some()),
        ("ca_file", e.ca_file.is_some()),
        ("allow_non_global", e.allow_non_global),
        ("provider", e.provider.is_some()),
        ("server", e.server.is_some()),
        ("server_v6", e.server_v6.is_some()),
        ("target", e.target.is_some()),
        ("target_v6", e.target_v6.is_some()),
        ("name", e.name.is_some()),
    ];
    let used: &[&str] = match e.kind.as_str() {
        "http" | "cloudflare-trace" => &["url", "ca_file", "allow_non_global", "name"],
        "dns" => &["provider", "server", "server_v6", "name"],
        "local" => &["target", "target_v6"],
        // An unknown kind is reported as such.
        _ => return Ok(()),
    };
    match set.iter().find(|(key, on)| *on && !used.contains(key)) {
        Some((key, _)) => Err((
            key,
            format!(
                "not a key of kind = {:?} (its keys: {})",
                e.kind,
                used.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn source(e: &SourceEntry) -> Result<Arc<dyn IpSource>, (&'static str, String)> {
    check_keys_of_kind(e)?;
    let build = |b: ip_monitor_core::source::HttpIpSourceBuilder| {
        let mut b = match &e.name {
            Some(n) => b.name(n.clone()),
            None => b,
        };
        if let Some(path) = &e.ca_file {
            let pem = std::fs::read(path)
                .map_err(|err| ("ca_file", format!("cannot read {}: {err}", path.display())))?;
            b = b.add_root_certificates(pem);
        }
        b.allow_non_global(e.allow_non_global)
            .build()
            .map_err(|err| ("url", err.to_string()))
    };
    Ok(match e.kind.as_str() {
        "http" => {
            let url = e
                .url
                .clone()
                .ok_or(("url", "required for kind = \"http\"".to_owned()))?;
            Arc::new(build(HttpIpSource::builder(url))?)
        }
        "cloudflare-trace" => {
            let url = e
                .url
                .clone()
                .unwrap_or_else(|| "https://one.one.one.one/cdn-cgi/trace".to_owned());
            Arc::new(build(
                HttpIpSource::builder(url).format(AnswerFormat::CloudflareTrace),
            )?)
        }
        "dns" => {
            let mut s = match e.provider.as_deref() {
                Some("opendns") => DnsIpSource::opendns(),
                Some("cloudflare") => DnsIpSource::cloudflare(),
                Some("google") => DnsIpSource::google(),
                other => {
                    return Err((
                        "provider",
                        format!("{other:?}: expected \"opendns\", \"cloudflare\" or \"google\""),
                    ));
                }
            };
            if let Some(server) = &e.server {
                s = s.server_v4(parse_addr("server", server)?);
            }
            if let Some(server) = &e.server_v6 {
                s = s.server_v6(parse_addr("server_v6", server)?);
            }
            if let Some(name) = &e.name {
                s = s.name(name.clone());
            }
            Arc::new(s)
        }
        "local" => {
            let mut s = LocalInterfaceSource::new();
            if let Some(t) = &e.target {
                s = s.target_v4(parse_addr("target", t)?);
            }
            if let Some(t) = &e.target_v6 {
                s = s.target_v6(parse_addr("target_v6", t)?);
            }
            Arc::new(s)
        }
        other => {
            return Err((
                "kind",
                format!("{other:?}: expected \"http\", \"cloudflare-trace\", \"dns\" or \"local\""),
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Settings, ConfigError> {
        Settings::parse("t.toml", text)
    }

    #[test]
    fn defaults_and_overrides() {
        let s = load("").unwrap();
        assert_eq!(s.monitor, MonitorConfig::default());
        assert_eq!(s.store_url, "sqlite://ip-monitor.db");
        assert_eq!(s.sources.sources().len(), 3);
        let s = load(
            r#"
            interval = "30m"
            probe_interval = "0s"
            families = ["v4", "v6"]
            [sources]
            strategy = "fallback"
            timeout = "2s"
            [[sources.list]]
            kind = "dns"
            provider = "google"
            server = "127.0.0.1:5353"
            [delivery]
            parallelism = 4
            "#,
        )
        .unwrap();
        assert_eq!(s.monitor.interval, Duration::from_secs(1800));
        assert_eq!(s.monitor.probe_interval, Duration::ZERO);
        assert_eq!(s.monitor.families, [Family::V4, Family::V6]);
        assert_eq!(s.monitor.delivery.parallelism, 4);
        assert_eq!(s.sources.current_strategy(), Strategy::Fallback);
    }

    #[test]
    fn an_https_source_can_trust_a_private_ca() {
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testkit/fixtures/ca.pem");
        let s = load(&format!(
            "[[sources.list]]\nkind = \"http\"\nurl = \"https://127.0.0.1:8443/\"\nca_file = \"{ca}\""
        ))
        .unwrap();
        assert_eq!(s.sources.sources().len(), 1);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("interval = \"soon\"", "interval"),
            ("bogus = 1", "bogus"),
            ("families = [\"v5\"]", "families"),
            ("[sources]\nstrategy = \"vote\"", "sources.strategy"),
            ("[[sources.list]]\nkind = \"ftp\"", "sources.list[0].kind"),
            ("[[sources.list]]\nkind = \"http\"", "sources.list[0].url"),
            (
                "[[sources.list]]\nkind = \"http\"\nurl = \"https://example.com/\"\nca_file = \"/nonexistent/ca.pem\"",
                "sources.list[0].ca_file",
            ),
            (
                "[[sources.list]]\nkind = \"dns\"\nprovider = \"google\"\nserver = \"nope\"",
                "sources.list[0].server",
            ),
            (
                "[[sources.list]]\nkind = \"http\"\nurl = \"https://example.com/\"\nserver = \"127.0.0.1:53\"",
                "sources.list[0].server",
            ),
            (
                "[[sources.list]]\nkind = \"dns\"\nprovider = \"google\"\nurl = \"https://example.com/\"",
                "sources.list[0].url",
            ),
            (
                "[[sources.list]]\nkind = \"local\"\nallow_non_global = true",
                "sources.list[0].allow_non_global",
            ),
            ("[smtp]\nport = 25", "smtp.host"),
            (
                "[smtp]\nhost = \"mail.example.com\"\ntls = \"ssl\"",
                "smtp.tls",
            ),
            (
                "[smtp]\nhost = \"mail.example.com\"\ntls = \"none\"\nusername = \"u\"\npassword_env = \"PATH\"",
                "smtp.tls",
            ),
            (
                "[smtp]\nhost = \"h\"\nusername = \"u\"\npassword_env = \"IP_MONITOR_SURELY_UNSET\"",
                "smtp.password_env",
            ),
            ("[email]\nfrom = \"not a mailbox\"", "email.from"),
            ("service_url = \"ftp://{ip}/\"", "service_url"),
        ];
        for (text, key) in cases {
            let e = load(text).expect_err(text);
            let shown = e.to_string();
            assert!(
                shown.contains(key) || e.key.as_deref() == Some(key),
                "{text:?}: {shown}"
            );
            assert!(shown.starts_with("t.toml"), "{shown}");
        }
    }
}

#[cfg(test)]
mod example_file {
    const EXAMPLE: &str = include_str!("../ip-monitor.example.toml");

    #[test]
    fn the_example_file_documents_keys_that_load() {
        let (f, monitor) = super::split("example", EXAMPLE).expect("every key known");
        assert!(f.email.is_some() && f.recipients.is_some());
        assert_eq!(
            monitor,
            super::MonitorConfig::default(),
            "the defaults, as it says"
        );
        // The [smtp] keys, once their "# " is removed as the file says.
        let mut in_smtp = false;
        let enabled: Vec<String> = EXAMPLE
            .lines()
            .map(|line| {
                if line.starts_with('[') {
                    in_smtp = false;
                }
                if line == "# [smtp]" {
                    in_smtp = true;
                }
                let key = line.strip_prefix("# ").filter(|rest| {
                    in_smtp
                        && (rest.starts_with('[')
                            || rest.split_once(" = ").is_some_and(|(k, _)| {
                                k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                            }))
                });
                key.unwrap_or(line).to_owned()
            })
            .collect();
        let (f, _) = super::split("example", &enabled.join("\n")).expect("the [smtp] keys parse");
        let smtp = f.smtp.expect("an [smtp] section once enabled");
        assert!(smtp.host.is_some() && smtp.password_env.is_some() && smtp.ca_file.is_some());
    }

    #[test]
    fn the_example_file_works_as_it_is() {
        let s = super::Settings::parse("ip-monitor.toml", EXAMPLE).expect("valid as shipped");
        assert!(
            matches!(s.notifier, super::NotifierSetting::Files(_)),
            "no relay until [smtp] is set"
        );
        assert!(
            matches!(&s.recipients, super::RecipientsSetting::Static(list) if list.is_empty()),
            "nobody until [recipients] is set (no query over a table that is not there)"
        );
    }
}

#[cfg(test)]
mod email_words {
    use super::Settings;

    #[test]
    fn the_locale_gives_the_words_and_each_key_overrides_one() {
        let s = Settings::parse(
            "t.toml",
            "[email]\nlocale = \"zh-CN\"\nbutton = \"进入系统\"\n",
        )
        .unwrap();
        let text = &s.template.text;
        assert_eq!(text.lang, "zh-CN");
        assert_eq!(text.button, "进入系统");
        assert_eq!(text.subject, "服务器地址已变更");
        let err = Settings::parse("t.toml", "[email]\nlocale = \"klingon\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("email.locale") && err.contains("klingon"),
            "{err}"
        );
    }
}
