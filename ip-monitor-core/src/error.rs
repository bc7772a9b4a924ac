//! The crate's error type.

use crate::address::Family;
use crate::notice::NoticeError;
use crate::recipients::RecipientsError;
use crate::source::CheckError;
use crate::store::{Holder, StoreError};

/// Errors of the monitor and its handle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is unusable.
    #[error("invalid configuration: `{key}`: {message}")]
    Config {
        /// The key (field) at fault.
        key: String,
        /// What was expected.
        message: String,
    },
    /// The URL template or QR code failed.
    #[error(transparent)]
    Notice(#[from] NoticeError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The recipient list could not be read.
    #[error(transparent)]
    Recipients(#[from] RecipientsError),
    /// The check decided on no address.
    #[error("check of {family} failed: {source}")]
    Check {
        /// The family checked.
        family: Family,
        /// Why.
        #[source]
        source: CheckError,
    },
    /// This instance does not hold the lease, so it may not act.
    #[error("this instance does not hold the lease{}", .holder.as_ref().map(|h| format!(" (held by {} on {}, pid {})", h.id, h.host, h.pid)).unwrap_or_default())]
    NotLeader {
        /// The current holder, if known.
        holder: Option<Holder>,
    },
    /// The monitors on this store are paused (`ip-monitor start`, or
    /// [`MonitorHandle::resume`](crate::MonitorHandle::resume), resumes them).
    #[error("the monitors on this store are paused")]
    Paused,
    /// The monitor task has stopped.
    #[error("the monitor has stopped")]
    Stopped,
}

impl From<InvalidSetting> for Error {
    fn from(e: InvalidSetting) -> Self {
        Error::Config {
            key: e.field.to_owned(),
            message: e.to_string_without_field(),
        }
    }
}

/// A value given to a constructor or a configuration that cannot be used, naming the field
/// it is about ([`field`](Self::field)), so a front end can name its own key for it.
///
/// ```
/// use ip_monitor_core::{InvalidSetting, MonitorConfig};
/// let config = MonitorConfig { service_url: "http://example.com/".into(), ..Default::default() };
/// let e: InvalidSetting = config.validate().unwrap_err();
/// assert_eq!(e.field(), "service_url");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("`{field}`: {}", self.to_string_without_field())]
pub struct InvalidSetting {
    field: &'static str,
    reason: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl InvalidSetting {
    /// `field` cannot be used, for `reason`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        InvalidSetting {
            field,
            reason: reason.into(),
            source: None,
        }
    }

    /// With the underlying error.
    pub fn with_source(mut self, source: Box<dyn std::error::Error + Send + Sync>) -> Self {
        self.source = Some(source);
        self
    }

    /// The field (the constructor's parameter, the config struct's field) at fault.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What is wrong with it, without the field's name.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The reason and the underlying error, without the field.
    pub fn to_string_without_field(&self) -> String {
        match &self.source {
            Some(s) => format!("{}: {s}", self.reason),
            None => self.reason.clone(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
