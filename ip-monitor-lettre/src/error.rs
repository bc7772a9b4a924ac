//! The crate's error type.

use ip_monitor_core::NotifyError;

/// Errors building a notifier or a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is unusable.
    #[error("invalid configuration: `{key}`: {message}")]
    Config {
        /// The key at fault.
        key: &'static str,
        /// What was expected.
        message: String,
    },
    /// Credentials would go over an unencrypted connection to another host.
    #[error(
        "refusing to send SMTP credentials to {host} without TLS: use tls = \"starttls\" or \"tls\" (plain text is only allowed to a loopback host)"
    )]
    InsecureCredentials {
        /// The SMTP host.
        host: String,
    },
    /// The recipient address is not one lettre accepts.
    #[error("invalid recipient address {address:?}: {source}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: lettre::address::AddressError,
    },
    /// The notice has no QR code (built without the `qr` feature of ip-monitor-core).
    #[error("the notice has no QR code")]
    NoQrCode,
    /// The message could not be built.
    #[error("building the message: {0}")]
    Message(#[source] lettre::error::Error),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl From<Error> for NotifyError {
    /// Problems with the message itself are permanent: retrying builds the same message.
    /// File-system trouble may pass.
    fn from(e: Error) -> Self {
        match e {
            Error::Io { .. } => NotifyError::transient(e),
            _ => NotifyError::permanent(e),
        }
    }
}
