//! [`StaticRecipients`]: a fixed list of rows, replaceable while a monitor runs.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::{RecipientList, Recipients, RecipientsError};

/// An `(email, name)` row as given.
type Row = (String, Option<String>);

/// A fixed list of recipient rows, validated on every read; [`set`](Self::set) replaces it
/// while a monitor runs.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{Recipients, StaticRecipients};
/// let staff = StaticRecipients::new(["ana@example.com", "ben@example.com"]);
/// assert_eq!(staff.active().await.unwrap().valid.len(), 2);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticRecipients {
    rows: Arc<RwLock<Vec<Row>>>,
}

impl StaticRecipients {
    /// Addresses without names.
    pub fn new<S: Into<String>>(emails: impl IntoIterator<Item = S>) -> Self {
        Self::with_names(emails.into_iter().map(|e| (e, None::<String>)))
    }

    /// Rows of `(email, name)`.
    pub fn with_names<E: Into<String>, N: Into<String>>(
        rows: impl IntoIterator<Item = (E, Option<N>)>,
    ) -> Self {
        let s = StaticRecipients::default();
        s.set(rows);
        s
    }

    /// Replace the rows.
    pub fn set<E: Into<String>, N: Into<String>>(
        &self,
        rows: impl IntoIterator<Item = (E, Option<N>)>,
    ) {
        let rows = rows
            .into_iter()
            .map(|(e, n)| (e.into(), n.map(Into::into)))
            .collect();
        *self.rows.write().unwrap_or_else(|e| e.into_inner()) = rows;
    }
}

#[async_trait]
impl Recipients for StaticRecipients {
    async fn active(&self) -> Result<RecipientList, RecipientsError> {
        let rows = self.rows.read().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(RecipientList::from_rows(rows))
    }
}
