//! [`Recipient`]: one recipient of a notice, of a [`RecipientKind`], validated.

use std::fmt::{self, Debug};

/// Longest accepted display name, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// What a recipient is, stored with each of its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum RecipientKind {
    /// A staff member, told by email.
    Staff,
    /// A chat channel (or another service the notice is posted to), by its name.
    Channel,
    /// A DNS record kept on the current address, by its name.
    DnsRecord,
}

impl RecipientKind {
    /// `staff`, `channel` or `dns_record`: the stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientKind::Staff => "staff",
            RecipientKind::Channel => "channel",
            RecipientKind::DnsRecord => "dns_record",
        }
    }
}

impl fmt::Display for RecipientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RecipientKind {
    type Err = InvalidRecipient;

    fn from_str(s: &str) -> Result<Self, InvalidRecipient> {
        match s {
            "staff" => Ok(RecipientKind::Staff),
            "channel" => Ok(RecipientKind::Channel),
            "dns_record" => Ok(RecipientKind::DnsRecord),
            other => Err(InvalidRecipient {
                row: preview(other),
                reason: "unknown recipient kind (expected staff, channel or dns_record)".to_owned(),
            }),
        }
    }
}

/// One recipient of a notice: a staff member (a validated email address and an optional
/// display name), a chat channel or a DNS record (each by its name). The kind is part of
/// the recipient and stored with its deliveries, so a router sends each where it belongs.
#[derive(Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Recipient {
    kind: RecipientKind,
    /// The email address of a staff member, the name of a channel or record.
    email: String,
    name: Option<String>,
}

impl Recipient {
    /// A staff member from a recipient row. The address must be one `local@domain` mailbox
    /// without whitespace, control characters (CR/LF) or characters that would need
    /// quoting; the name must have no control characters and at most [`MAX_NAME_CHARS`]
    /// characters. Surrounding whitespace is trimmed; an empty name is no name.
    ///
    /// ```
    /// use ip_monitor_core::{Recipient, RecipientKind};
    /// let r = Recipient::new(" ana@example.com ", Some("Ana")).unwrap();
    /// assert_eq!((r.kind(), r.email()), (RecipientKind::Staff, "ana@example.com"));
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
            kind: RecipientKind::Staff,
            email: email.to_owned(),
            name,
        })
    }

    /// A chat channel as a recipient: one delivery per change like a person's, retried,
    /// superseded and fenced the same way; a [`ChannelRouter`](crate::ChannelRouter) sends
    /// it to the channel's notifier. Its name follows [`CHANNEL_NAME_RULE`].
    ///
    /// ```
    /// use ip_monitor_core::{Recipient, RecipientKind};
    /// let ops = Recipient::channel("ops-chat").unwrap();
    /// assert_eq!(ops.kind(), RecipientKind::Channel);
    /// assert_eq!(ops.channel_name(), Some("ops-chat"));
    /// assert!(Recipient::channel("ops chat").is_err());
    /// ```
    pub fn channel(name: &str) -> Result<Self, InvalidRecipient> {
        Recipient::named(RecipientKind::Channel, name)
    }

    /// A DNS record kept on the current address, as a recipient: one update per change,
    /// through the outbox like every delivery. `name` is the record's name (a trailing dot
    /// is dropped, the name is kept in lower case).
    ///
    /// ```
    /// use ip_monitor_core::{Recipient, RecipientKind};
    /// let www = Recipient::dns_record("WWW.example.com.").unwrap();
    /// assert_eq!(www.kind(), RecipientKind::DnsRecord);
    /// assert_eq!(www.channel_name(), Some("www.example.com"));
    /// ```
    pub fn dns_record(name: &str) -> Result<Self, InvalidRecipient> {
        Recipient::named(RecipientKind::DnsRecord, &dns_record_name(name))
    }

    fn named(kind: RecipientKind, name: &str) -> Result<Self, InvalidRecipient> {
        let ok = !name.is_empty()
            && name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && (kind == RecipientKind::DnsRecord || name.len() <= 64);
        if !ok {
            return Err(InvalidRecipient {
                row: preview(name),
                reason: CHANNEL_NAME_RULE.to_owned(),
            });
        }
        Ok(Recipient {
            kind,
            email: name.to_owned(),
            name: Some(name.to_owned()),
        })
    }

    /// A recipient read back from a store's delivery row, of the stored `kind`: a staff
    /// member validated as by [`new`](Self::new), a channel or a record by its name.
    ///
    /// ```
    /// use ip_monitor_core::{Recipient, RecipientKind};
    /// let ops = Recipient::stored(RecipientKind::Channel, "ops-chat", Some("ops-chat")).unwrap();
    /// assert_eq!(ops.channel_name(), Some("ops-chat"));
    /// assert!(Recipient::stored(RecipientKind::Channel, "x y", None::<&str>).is_err());
    /// ```
    pub fn stored(
        kind: RecipientKind,
        address: impl AsRef<str>,
        name: Option<impl AsRef<str>>,
    ) -> Result<Self, InvalidRecipient> {
        match kind {
            RecipientKind::Staff => Recipient::new(address, name),
            kind => Recipient::named(kind, address.as_ref()),
        }
    }

    /// What this recipient is.
    pub fn kind(&self) -> RecipientKind {
        self.kind
    }

    /// The name of a channel or DNS record; `None` for a staff member.
    pub fn channel_name(&self) -> Option<&str> {
        (self.kind != RecipientKind::Staff).then_some(self.email.as_str())
    }

    /// The email address of a staff member; the name of a channel or DNS record.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The display name, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What makes a recipient unique per change: a staff member's address in lower case;
    /// for a channel or record, its kind and name (`channel:NAME`, `dns_record:NAME`),
    /// which no email address can equal (an address has an `@`, a name cannot).
    pub fn key(&self) -> String {
        match self.kind {
            RecipientKind::Staff => self.email.to_ascii_lowercase(),
            kind => format!("{kind}:{}", self.email.to_ascii_lowercase()),
        }
    }
}

/// A DNS record's name as its recipient keeps it: no trailing dot, lower case.
pub(crate) fn dns_record_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// What a channel's (or DNS record's) name may be.
pub const CHANNEL_NAME_RULE: &str = "a channel name is 1 to 64 (a DNS record's 1 to 253) of a-z, A-Z, 0-9, -, _ and . (a dot neither first, last nor doubled)";

impl Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipient")
            .field("kind", &self.kind)
            .field("email", &self.email)
            .field("name", &self.name)
            .finish()
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.name) {
            (RecipientKind::Staff, Some(n)) => write!(f, "{n} <{}>", self.email),
            (RecipientKind::Staff, None) => f.write_str(&self.email),
            (RecipientKind::Channel, _) => write!(f, "channel {}", self.email),
            (RecipientKind::DnsRecord, _) => write!(f, "DNS record {}", self.email),
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
