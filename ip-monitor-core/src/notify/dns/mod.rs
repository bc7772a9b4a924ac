//! DNS records kept on the current address, one file per way of writing them: RFC 2136
//! dynamic updates ([`rfc2136`]) and Cloudflare's API ([`cloudflare`]). Each is a notifier
//! for a [`Recipient::dns_record`](crate::Recipient::dns_record): one outbox delivery per
//! record per change. What they share lives here: which notices they act on.

use crate::address::Family;
use crate::notice::Notice;
use crate::notify::{NotifyError, SendPermit};

#[cfg(feature = "cloudflare")]
pub mod cloudflare;
#[cfg(feature = "rfc2136")]
pub mod rfc2136;

/// Whether the record `name`, kept for `families`, is written for `notice`: a test notice
/// leaves DNS as it is, and a record only follows its own families. The permit is checked
/// last: a lapsed one fails the delivery as withheld before anything is written.
pub(crate) fn takes(
    name: &dyn std::fmt::Display,
    families: &[Family],
    notice: &Notice,
    permit: &SendPermit,
) -> Result<bool, NotifyError> {
    if notice.test {
        tracing::info!(name = %name, "test notice: DNS left as it is");
        return Ok(false);
    }
    if !families.contains(&notice.family) {
        tracing::debug!(name = %name, family = %notice.family, "no record of this family");
        return Ok(false);
    }
    permit.check()?;
    Ok(true)
}
