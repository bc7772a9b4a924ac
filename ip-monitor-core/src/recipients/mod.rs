//! Who is told: the [`Recipients`] trait, the typed [`Recipient`] (a staff member's address,
//! a chat channel or a DNS record), [`StaticRecipients`], and [`WithChannels`], which adds
//! the channels and records to the people.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

mod channels;
mod fixed;
mod recipient;

pub use channels::WithChannels;
pub use fixed::StaticRecipients;
pub(crate) use recipient::dns_record_name;
pub use recipient::{
    CHANNEL_NAME_RULE, InvalidRecipient, MAX_NAME_CHARS, Recipient, RecipientKind,
};

/// The active recipients now: the valid ones, and the rows that were skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientList {
    /// Valid, distinct (by [`Recipient::key`]) recipients.
    pub valid: Vec<Recipient>,
    /// Rows that could not be used.
    pub rejected: Vec<InvalidRecipient>,
}

impl RecipientList {
    /// Validate rows of `(email, name)`, dropping duplicates and collecting rejected rows.
    ///
    /// ```
    /// use ip_monitor_core::RecipientList;
    /// let list = RecipientList::from_rows([
    ///     ("ana@example.com", Some("Ana")),
    ///     ("ANA@example.com", None),
    ///     ("bad\r\n@example.com", None),
    /// ]);
    /// assert_eq!(list.valid.len(), 1);
    /// assert_eq!(list.rejected.len(), 1);
    /// ```
    pub fn from_rows<E: AsRef<str>, N: AsRef<str>>(
        rows: impl IntoIterator<Item = (E, Option<N>)>,
    ) -> Self {
        let mut list = RecipientList::default();
        let mut seen = std::collections::HashSet::new();
        for (email, name) in rows {
            match Recipient::new(email, name) {
                Ok(r) => {
                    if seen.insert(r.key()) {
                        list.valid.push(r);
                    }
                }
                Err(e) => list.rejected.push(e),
            }
        }
        list
    }
}

/// Why the recipient list could not be read at all (the database is down, the query is
/// wrong). A bad row is not this: it goes to [`RecipientList::rejected`].
#[derive(Debug, thiserror::Error)]
#[error("reading recipients failed: {source}")]
pub struct RecipientsError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl RecipientsError {
    /// Wrap the underlying error.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        RecipientsError {
            source: source.into(),
        }
    }
}

/// The people to notify: the application's active staff, read fresh for every change.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Recipients: Send + Sync + Debug {
    /// The active recipients now.
    async fn active(&self) -> Result<RecipientList, RecipientsError>;
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<T: Recipients + ?Sized> Recipients for Arc<T> {
    async fn active(&self) -> Result<RecipientList, RecipientsError> {
        (**self).active().await
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<T: Recipients + ?Sized> Recipients for Box<T> {
    async fn active(&self) -> Result<RecipientList, RecipientsError> {
        (**self).active().await
    }
}
