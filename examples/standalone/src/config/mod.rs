//! The TOML configuration of the `ip-monitor` binary, one module per section: each holds
//! its serde shape beside its validation, and names the keys it is about. Errors name the
//! file, the key and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

use ip_monitor_core::{MonitorConfig, SourceSet, UrlTemplate};
use ip_monitor_lettre::MessageTemplate;
use serde::Deserialize;

mod channels;
mod dns;
mod email;
mod hooks;
mod log;
mod push;
mod recipients;
mod server;
mod smtp;
mod sources;
mod watch;

pub use dns::DnsSetting;
pub use log::LogSettings;
pub use recipients::RecipientsSetting;
pub use server::{DEFAULT_LISTEN, ServerSettings};
pub use smtp::NotifierSetting;

pub use channels::Channel;
use channels::ChannelConfig;
use dns::DnsConfig;
use email::EmailConfig;
use hooks::HookConfig;
use log::LogConfig;
use recipients::{RecipientsConfig, StoreConfig};
use server::ServerConfig;
use smtp::SmtpConfig;
use sources::SourcesConfig;
use watch::WatchConfig;

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

/// A problem with one key, before the file's name is known to it.
#[derive(Debug)]
pub(crate) struct KeyError {
    key: String,
    message: String,
}

impl KeyError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        KeyError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The value of the environment variable `var`, which the key `key` names; unset is an
/// error of that key.
pub(crate) fn env_value(key: impl Into<String>, var: &str) -> Result<String, KeyError> {
    std::env::var(var)
        .map_err(|_| KeyError::new(key, format!("the environment variable {var} is not set")))
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
    watch: Option<WatchConfig>,
    hooks: Vec<HookConfig>,
}

/// Everything the commands need, validated. Its `Debug` masks every secret.
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
    pub channels: Vec<(String, Channel)>,
    /// The DNS records kept on the address (`[[dns]]`), each updated once per change.
    pub dns: Vec<DnsSetting>,
    /// The programs run once per change (`[[hooks]]`), each a channel of its own.
    pub hooks: Vec<(String, ip_monitor_core::notify::HookNotifier)>,
    /// `[watch] interfaces`: check at once on the kernel's address and route events (where
    /// the system has them).
    pub watch_interfaces: bool,
    /// The NAT-PMP and PCP sources whose routers' announcements wake a check (`[watch]
    /// routers`, on by default; empty when off).
    pub routers: Vec<ip_monitor_core::RouterSource>,
    /// The keys whose secret is written in the configuration itself (a database URL with
    /// its password, a chat's `url`).
    pub inline_secrets: Vec<String>,
    /// What to warn of once at start: a configuration holding a secret that others may
    /// read.
    pub warnings: Vec<String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("origin", &self.origin)
            .field("from_file", &self.from_file)
            .field("monitor", &self.monitor)
            .field("url_template", &self.url_template)
            .field("sources", &self.sources)
            .field("store_url", &ip_monitor_diesel::redact(&self.store_url))
            .field("recipients", &self.recipients)
            .field("notifier", &self.notifier)
            .field("template", &self.template)
            .field("log", &self.log)
            .field("server", &self.server)
            .field("channels", &self.channels)
            .field("dns", &self.dns)
            .field("hooks", &self.hooks)
            .field("watch_interfaces", &self.watch_interfaces)
            .field("routers", &self.routers)
            .field("inline_secrets", &self.inline_secrets)
            .field("warnings", &self.warnings)
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
    "watch",
    "hooks",
];

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
            Some(t) => {
                let mut settings = Settings::parse(&origin, &t)?;
                let path = path.unwrap_or(Path::new(DEFAULT_PATH));
                settings
                    .warnings
                    .extend(readable_by_others(path, &settings));
                Ok(settings)
            }
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
        let in_file = |e: KeyError| ConfigError {
            file: origin.clone(),
            key: Some(e.key),
            message: e.message,
        };
        let (sources, routers) = f.sources.unwrap_or_default().build().map_err(in_file)?;
        let mut inline_secrets = Vec::new();
        let store_url = match f.store.map(StoreConfig::url).transpose().map_err(in_file)? {
            Some(Some((url, inline))) => {
                if inline {
                    inline_secrets.push("store.url".to_owned());
                }
                url
            }
            _ => "sqlite://ip-monitor.db".to_owned(),
        };
        let (recipients, inline) =
            RecipientsSetting::build(f.recipients, from_file).map_err(in_file)?;
        if inline {
            inline_secrets.push("recipients.database_url".to_owned());
        }
        inline_secrets.extend(
            f.channels
                .iter()
                .enumerate()
                .filter(|(_, c)| c.url_inline())
                .map(|(i, _)| format!("channels[{i}].url")),
        );
        let template = f
            .email
            .unwrap_or_default()
            .template(f.smtp.as_ref())
            .map_err(in_file)?;
        let pool = monitor.delivery.parallelism as u32;
        let notifier =
            NotifierSetting::build(f.smtp, f.outbox, &template, pool).map_err(in_file)?;
        let url_template = UrlTemplate::parse(&monitor.service_url)
            .map_err(|e| in_file(KeyError::new("service_url", e.to_string())))?;
        let log = f.log.map(LogConfig::build).transpose().map_err(in_file)?;
        let server = f
            .server
            .map(ServerConfig::build)
            .transpose()
            .map_err(in_file)?;
        let (channels, dns) = lists(f.channels, f.dns, &template).map_err(in_file)?;
        let mut taken: Vec<String> = channels.iter().map(|(name, _)| name.clone()).collect();
        let mut hooks = Vec::with_capacity(f.hooks.len());
        for (i, h) in f.hooks.into_iter().enumerate() {
            let hook = h.build(i, &taken).map_err(in_file)?;
            taken.push(hook.0.clone());
            hooks.push(hook);
        }
        let watch = f.watch.unwrap_or_default();
        Ok(Settings {
            hooks,
            watch_interfaces: watch.interfaces(),
            routers: if watch.routers() { routers } else { Vec::new() },
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
            inline_secrets,
            warnings: Vec::new(),
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

/// The warning for a configuration file at `path` that holds a secret and that users other
/// than its owner and group may read.
fn readable_by_others(path: &Path, settings: &Settings) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if settings.inline_secrets.is_empty() {
        return None;
    }
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o007 != 0).then(|| {
        format!(
            "{} holds a secret ({}) and is readable by every user (mode {mode:04o}): \
             chmod 0640 it, or move the secret to an environment variable or a file \
             (url_env, url_file)",
            path.display(),
            settings.inline_secrets.join(", ")
        )
    })
}

/// The channels and the DNS records, each name once.
#[allow(clippy::type_complexity)]
fn lists(
    channels: Vec<ChannelConfig>,
    records: Vec<DnsConfig>,
    template: &MessageTemplate,
) -> Result<(Vec<(String, Channel)>, Vec<DnsSetting>), KeyError> {
    let mut chats: Vec<(String, Channel)> = Vec::with_capacity(channels.len());
    let mut names = Vec::with_capacity(channels.len());
    for (i, c) in channels.into_iter().enumerate() {
        let chat = c.build(i, template, &names)?;
        names.push(chat.0.clone());
        chats.push(chat);
    }
    let mut dns: Vec<DnsSetting> = Vec::with_capacity(records.len());
    let mut names = Vec::with_capacity(records.len());
    for (i, d) in records.into_iter().enumerate() {
        let record = d.build(i, &names)?;
        names.push(record.name.clone());
        dns.push(record);
    }
    Ok((chats, dns))
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

#[cfg(test)]
mod tests;
