//! The crate's error type.

use crate::address::Family;
use crate::check::CheckError;
use crate::notice::NoticeError;
use crate::recipients::RecipientsError;
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

impl Error {
    pub(crate) fn config(key: &str, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
