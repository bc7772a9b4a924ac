//! DNS records kept on the current address, one file per way of writing them: RFC 2136
//! dynamic updates ([`rfc2136`]), Cloudflare's API ([`cloudflare`]), and the APIs signed
//! with an access key of Alibaba Cloud DNS ([`alidns`]), DNSPod ([`dnspod`]) and Huawei
//! Cloud DNS ([`huaweicloud`]). Each is a notifier for a
//! [`Recipient::dns_record`](crate::Recipient::dns_record): one outbox delivery per record
//! per change. What they share lives here: which notices they act on, and the marker of the
//! records they own.

use crate::address::Family;
use crate::notice::Notice;
use crate::notify::{NotifyError, SendPermit};

#[cfg(feature = "alidns")]
pub mod alidns;
#[cfg(any(feature = "alidns", feature = "dnspod", feature = "huaweicloud"))]
mod cloud;
#[cfg(feature = "cloudflare")]
pub mod cloudflare;
#[cfg(feature = "dnspod")]
pub mod dnspod;
#[cfg(feature = "huaweicloud")]
pub mod huaweicloud;
#[cfg(feature = "rfc2136")]
pub mod rfc2136;

/// The text in a record's comment, remark or description that marks it as this monitor's:
/// a record without it is never changed.
pub const MARKER: &str = "managed by ip-monitor";

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
