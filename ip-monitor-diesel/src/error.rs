//! The crate's error type.

/// Errors connecting to the database or preparing it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not a supported database URL.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The URL names a backend this build leaves out.
    #[error("database URL {url:?} needs the `{feature}` feature of ip-monitor-diesel")]
    Unsupported {
        /// The URL, password redacted.
        url: String,
        /// The feature to enable.
        feature: &'static str,
    },
    /// The database could not be reached.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The migrations failed.
    #[error("migrating the ip_monitor_* tables failed: {source}")]
    Migration {
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
