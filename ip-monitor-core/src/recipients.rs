//! Who is told: the [`Recipients`] trait, [`Recipient`] validation and [`StaticRecipients`].

use std::fmt::{self, Debug};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

/// Longest accepted display name, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// One person to notify: a validated email address and an optional display name.
#[derive(Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Recipient {
    email: String,
    name: Option<String>,
}

impl Recipient {
    /// Validate a recipient row. The address must be one `local@domain` mailbox without
    /// whitespace, control characters (CR/LF) or characters that would need quoting; the
    /// name must have no control characters and at most [`MAX_NAME_CHARS`] characters.
    /// Surrounding whitespace is trimmed; an empty name is no name.
    ///
    /// ```
    /// use ip_monitor_core::Recipient;
    /// let r = Recipient::new(" ana@example.com ", Some("Ana")).unwrap();
    /// assert_eq!(r.email(), "ana@example.com");
    /// assert!(Recipient::new("ana@example.com\r\nBcc: eve@example.com", None::<&str>).is_err());
    /// assert!(Recipient::new("not an address", None::<&str>).is_err());
    /// ```
    pub fn new(
        email: impl AsRef<str>,
        name: Option<impl AsRef<str>>,
    ) -> Result<Self, InvalidRecipient> {
        let raw = email.as_ref();
        let reject = |reason: &str| InvalidRecipient {
            row: preview(raw),
            reason: reason.to_owned(),
        };
        if raw.chars().any(char::is_control) {
            return Err(reject("address contains control characters (CR/LF)"));
        }
        let email = raw.trim();
        validate_email(email).map_err(reject)?;
        if email.to_ascii_lowercase().ends_with(CHANNEL_DOMAIN) {
            return Err(reject(
                "the domain channel.invalid names chat channels, not people",
            ));
        }
        let name = match name {
            None => None,
            Some(n) => {
                let n = n.as_ref();
                if n.chars().any(char::is_control) {
                    return Err(reject("name contains control characters (CR/LF)"));
                }
                if n.chars().count() > MAX_NAME_CHARS {
                    return Err(reject("name longer than 256 characters"));
                }
                let n = n.trim();
                (!n.is_empty()).then(|| n.to_owned())
            }
        };
        Ok(Recipient {
            email: email.to_owned(),
            name,
        })
    }

    /// A chat channel as a recipient: one delivery per change like a person's, retried,
    /// superseded and fenced the same way. Its address is `NAME@channel.invalid` (a domain
    /// that never resolves, and that [`new`](Self::new) refuses, so no staff row can pose as a
    /// channel); a [`ChannelRouter`](crate::ChannelRouter) sends it to the channel's notifier.
    ///
    /// ```
    /// use ip_monitor_core::Recipient;
    /// let ops = Recipient::channel("ops-chat").unwrap();
    /// assert_eq!(ops.email(), "ops-chat@channel.invalid");
    /// assert_eq!(ops.channel_name(), Some("ops-chat"));
    /// assert!(Recipient::new("ops-chat@channel.invalid", None::<&str>).is_err());
    /// ```
    pub fn channel(name: &str) -> Result<Self, InvalidRecipient> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..");
        if !ok {
            return Err(InvalidRecipient {
                row: preview(name),
                reason: CHANNEL_NAME_RULE.to_owned(),
            });
        }
        Ok(Recipient {
            email: format!("{name}{CHANNEL_DOMAIN}"),
            name: Some(name.to_owned()),
        })
    }

    /// A recipient read back from a store's delivery row: a person (validated as by
    /// [`new`](Self::new)) or a channel made by [`channel`](Self::channel).
    ///
    /// ```
    /// use ip_monitor_core::Recipient;
    /// let ops = Recipient::stored("ops-chat@channel.invalid", Some("ops-chat")).unwrap();
    /// assert_eq!(ops.channel_name(), Some("ops-chat"));
    /// assert!(Recipient::stored("x y@channel.invalid", None::<&str>).is_err());
    /// ```
    pub fn stored(
        email: impl AsRef<str>,
        name: Option<impl AsRef<str>>,
    ) -> Result<Self, InvalidRecipient> {
        match email.as_ref().strip_suffix(CHANNEL_DOMAIN) {
            Some(channel) => Recipient::channel(channel),
            None => Recipient::new(email, name),
        }
    }

    /// The channel's name, for a recipient made by [`channel`](Self::channel).
    pub fn channel_name(&self) -> Option<&str> {
        self.email.strip_suffix(CHANNEL_DOMAIN)
    }

    /// The email address.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The display name, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The address in lower case, the key that makes a recipient unique per change.
    pub fn key(&self) -> String {
        self.email.to_ascii_lowercase()
    }
}

/// What a channel's name may be.
pub const CHANNEL_NAME_RULE: &str = "a channel name is 1 to 64 of a-z, A-Z, 0-9, -, _ and . (a dot neither first, last nor doubled)";

/// The reserved domain of channel recipients.
const CHANNEL_DOMAIN: &str = "@channel.invalid";

impl Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipient")
            .field("email", &self.email)
            .field("name", &self.name)
            .finish()
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} <{}>", self.email),
            None => f.write_str(&self.email),
        }
    }
}

fn preview(s: &str) -> String {
    let escaped: String = s.escape_debug().collect();
    if escaped.chars().count() > 80 {
        format!("{}…", escaped.chars().take(80).collect::<String>())
    } else {
        escaped
    }
}

fn validate_email(email: &str) -> Result<(), &'static str> {
    if email.is_empty() {
        return Err("empty address");
    }
    if email.len() > 254 {
        return Err("address longer than 254 bytes");
    }
    let (local, domain) = email.rsplit_once('@').ok_or("address has no '@'")?;
    if local.is_empty() || local.len() > 64 {
        return Err("local part is empty or longer than 64 bytes");
    }
    const SPECIAL: &str = "!#$%&'*+-/=?^_`{|}~.";
    if !local
        .chars()
        .all(|c| c.is_alphanumeric() || SPECIAL.contains(c))
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err("local part has characters that are not allowed unquoted");
    }
    if domain.is_empty() {
        return Err("domain is empty");
    }
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    let literal_ok = domain
        .strip_prefix('[')
        .and_then(|d| d.strip_suffix(']'))
        .is_some_and(|d| {
            d.parse::<std::net::Ipv4Addr>().is_ok()
                || d.strip_prefix("IPv6:")
                    .is_some_and(|v| v.parse::<std::net::Ipv6Addr>().is_ok())
        });
    if !labels_ok && !literal_ok {
        return Err("domain is not a valid host name");
    }
    Ok(())
}

/// A recipient row that was rejected, and why. The other rows are still used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[error("recipient {row:?} skipped: {reason}")]
pub struct InvalidRecipient {
    /// The row's address, escaped and shortened for display.
    pub row: String,
    /// What is wrong with it.
    pub reason: String,
}

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

#[async_trait]
impl<T: Recipients + ?Sized> Recipients for Arc<T> {
    async fn active(&self) -> Result<RecipientList, RecipientsError> {
        (**self).active().await
    }
}

#[async_trait]
impl<T: Recipients + ?Sized> Recipients for Box<T> {
    async fn active(&self) -> Result<RecipientList, RecipientsError> {
        (**self).active().await
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_rows() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "ana@",
            "ana@@example.com",
            "ana @example.com",
            "ana@exa mple.com",
            "ana@example.com\n",
            "ana@example.com\rBcc:x@y",
            "a\"b@example.com",
            "<ana@example.com>",
            "ana@-example.com",
            "ana@example..com",
            ".ana@example.com",
        ] {
            assert!(
                Recipient::new(bad, None::<&str>).is_err(),
                "{bad:?} must be rejected"
            );
        }
        assert!(Recipient::new("ana@example.com", Some("A\r\nB")).is_err());
        assert!(Recipient::new("ana@example.com", Some("x".repeat(300))).is_err());
    }

    #[test]
    fn accepts_ordinary_rows() {
        for good in [
            "ana@example.com",
            "ana.b+tag@mail.example.co.uk",
            "o'neil@example.org",
            "jörg@exämple.de",
            "x@[127.0.0.1]",
        ] {
            assert!(
                Recipient::new(good, None::<&str>).is_ok(),
                "{good:?} must be accepted"
            );
        }
        let r = Recipient::new("ana@example.com", Some("  ")).unwrap();
        assert_eq!(r.name(), None);
        assert_eq!(
            Recipient::new("Ana@Example.com", Some("Ana"))
                .unwrap()
                .to_string(),
            "Ana <Ana@Example.com>"
        );
    }
}
