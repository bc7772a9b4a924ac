//! The subcommands, one module each, and the parts they share: the store, the recipients,
//! the notifiers and the monitor built from the settings.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use ip_monitor_core::{
    ChannelRouter, Error as CoreError, FallbackNotifier, Monitor, Notifier, RecipientList,
    Recipients, StaticRecipients, WithChannels,
};
use ip_monitor_diesel::{DieselRecipients, DieselStore};
use ip_monitor_lettre::{FileNotifier, SmtpNotifier};
use serde_json::Value;

use ip_monitor_standalone::config::{ConfigError, NotifierSetting, RecipientsSetting, Settings};

mod check;
mod control;
mod history;
mod preview;
mod recipients;
mod retry;
mod run;
mod status;
mod test;

pub(crate) use check::check;
pub(crate) use control::set_desired;
pub(crate) use history::history;
pub(crate) use preview::preview;
pub(crate) use recipients::recipients_cmd;
pub(crate) use retry::retry;
pub(crate) use run::run;
pub(crate) use status::status;
pub(crate) use test::test;

/// Why a command failed, and its exit code.
pub(crate) enum Failure {
    /// Bad configuration or usage: exit code 2.
    Config(ConfigError),
    /// The operation failed: exit code 1.
    Failed(String),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Config(e)
    }
}

macro_rules! failed_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure::Failed(e.to_string())
            }
        }
    )*};
}
failed_from!(
    CoreError,
    ip_monitor_core::StoreError,
    ip_monitor_core::RecipientsError,
    ip_monitor_core::NoticeError,
    ip_monitor_lettre::Error,
    serde_json::Error
);

pub(crate) type Outcome = Result<(), Failure>;

pub(crate) async fn store(s: &Settings) -> Result<DieselStore, Failure> {
    DieselStore::connect(&s.store_url)
        .await
        .map_err(|e| match e {
            ip_monitor_diesel::Error::InvalidUrl { .. }
            | ip_monitor_diesel::Error::Unsupported { .. } => {
                Failure::Config(s.error("store.url", e.to_string()))
            }
            other => Failure::Failed(other.to_string()),
        })
}

pub(crate) async fn recipients(
    s: &Settings,
    store: &DieselStore,
) -> Result<Arc<dyn Recipients>, Failure> {
    match &s.recipients {
        RecipientsSetting::Query {
            sql,
            database_url: None,
        } => Ok(Arc::new(DieselRecipients::new(store).query(sql.clone()))),
        _ => recipients_elsewhere(s).await,
    }
}

/// The recipients when they do not come from the store's database: a fixed list, or a
/// query on another database.
pub(crate) async fn recipients_elsewhere(s: &Settings) -> Result<Arc<dyn Recipients>, Failure> {
    Ok(match &s.recipients {
        RecipientsSetting::Query {
            sql,
            database_url: Some(url),
        } => Arc::new(
            DieselRecipients::connect(url)
                .await
                .map_err(|e| Failure::Failed(format!("recipients.database_url: {e}")))?
                .query(sql.clone()),
        ),
        RecipientsSetting::Static(list) => Arc::new(StaticRecipients::new(list.clone())),
        RecipientsSetting::Query {
            database_url: None, ..
        } => {
            return Err(Failure::Failed(
                "the recipients query runs on the store's database".to_owned(),
            ));
        }
    })
}

/// The email notifier, and the channels beside it.
pub(crate) fn notifier(s: &Settings) -> Arc<dyn Notifier> {
    let email = email_notifier(s);
    if s.channels.is_empty() && s.dns.is_empty() && s.hooks.is_empty() {
        return email;
    }
    let router = s
        .channels
        .iter()
        .fold(ChannelRouter::new(email), |router, (name, channel)| {
            router.channel(name.clone(), channel.notifier())
        });
    let router = s.hooks.iter().fold(router, |router, (name, hook)| {
        router.channel(name.clone(), hook.clone())
    });
    let router = s.dns.iter().fold(router, |router, d| {
        router.dns_record(d.name.clone(), Arc::clone(&d.notifier))
    });
    Arc::new(router)
}

/// The staff, then the chat channels, the hooks and the DNS records: one delivery each per
/// change.
pub(crate) fn with_channels(s: &Settings, people: Arc<dyn Recipients>) -> Arc<dyn Recipients> {
    if s.channels.is_empty() && s.dns.is_empty() && s.hooks.is_empty() {
        return people;
    }
    let channels = s
        .channels
        .iter()
        .map(|(name, _)| name.as_str())
        .chain(s.hooks.iter().map(|(name, _)| name.as_str()));
    let records = s.dns.iter().map(|d| d.name.as_str());
    Arc::new(
        WithChannels::new(people, channels)
            .and_then(|all| all.dns_records(records))
            .expect("names checked with the configuration"),
    )
}

pub(crate) fn email_notifier(s: &Settings) -> Arc<dyn Notifier> {
    match &s.notifier {
        NotifierSetting::Smtp { primary, fallback } if fallback.is_empty() => {
            Arc::new((**primary).clone())
        }
        NotifierSetting::Smtp { primary, fallback } => {
            let name = |n: &SmtpNotifier| format!("{}:{}", n.host(), n.port());
            let routes = fallback.iter().fold(
                FallbackNotifier::new(name(primary), (**primary).clone()),
                |routes, backup| routes.or(name(backup), backup.clone()),
            );
            Arc::new(routes)
        }
        NotifierSetting::Files(dir) => Arc::new(FileNotifier::new(dir.clone(), s.template.clone())),
    }
}

pub(crate) async fn monitor(
    s: &Settings,
) -> Result<(Monitor, DieselStore, Arc<dyn Recipients>), Failure> {
    let store = store(s).await?;
    let recipients = with_channels(s, recipients(s, &store).await?);
    let monitor = Monitor::builder(
        s.sources.clone(),
        store.clone(),
        Arc::clone(&recipients),
        notifier(s),
    )
    .config(s.monitor.clone())
    .build()
    .map_err(|e| match e {
        CoreError::Config { key, message } => Failure::Config(s.error(&key, message)),
        other => Failure::Failed(other.to_string()),
    })?;
    Ok((monitor, store, recipients))
}

pub(crate) fn warn_if_nobody(list: &RecipientList) {
    for r in &list.rejected {
        tracing::warn!("{r}");
    }
    if list.valid.is_empty() {
        tracing::warn!("no active recipients: changes are recorded but nobody is told");
    }
}

pub(crate) fn time(t: SystemTime) -> String {
    ip_monitor_core::report::rfc3339(t)
}

pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON"));
}

/// The SQLite file of the store, when the store is one and its file does not exist yet.
pub(crate) fn missing_store_file(s: &Settings) -> Option<&str> {
    let url = s.store_url.trim();
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    (path != ":memory:" && !std::path::Path::new(path).exists()).then_some(path)
}

/// The store for a command that only reads it: never created by reading (a `status` in the
/// wrong directory must not leave an empty store behind and report `never-started`).
pub(crate) async fn existing_store(s: &Settings) -> Result<DieselStore, Failure> {
    if let Some(path) = missing_store_file(s) {
        return Err(Failure::Failed(format!(
            "no store at {path}: nothing has run with this configuration here (start the \
             monitor with `ip-monitor run`, or point [store] url at its store)"
        )));
    }
    store(s).await
}

/// The address to announce: given, or detected now with the configured sources.
pub(crate) async fn address(s: &Settings, ip: Option<IpAddr>) -> Result<IpAddr, Failure> {
    if let Some(ip) = ip {
        return Ok(ip);
    }
    let family = s.monitor.families[0];
    let outcome = s.sources.check(family).await;
    outcome.result.map_err(|e| {
        Failure::Failed(format!(
            "detecting the {family} address failed ({e}); pass --ip ADDR"
        ))
    })
}
