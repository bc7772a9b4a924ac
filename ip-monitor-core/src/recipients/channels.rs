//! [`WithChannels`]: the people, then the chat channels and DNS records, each one recipient.

use async_trait::async_trait;

use super::{InvalidRecipient, Recipient, RecipientList, Recipients, RecipientsError};

/// The people of `R`, then one [`Recipient::channel`] per channel name and one
/// [`Recipient::dns_record`] per record: each gets one delivery per change through the
/// outbox (retried, superseded, fenced, counted like an email).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{RecipientKind, Recipients, StaticRecipients, WithChannels};
/// let all = WithChannels::new(StaticRecipients::new(["ana@example.com"]), ["ops-chat"])
///     .unwrap()
///     .dns_records(["www.example.com"])
///     .unwrap();
/// let list = all.active().await.unwrap();
/// let kinds: Vec<_> = list.valid.iter().map(|r| (r.kind(), r.email())).collect();
/// assert_eq!(kinds, [
///     (RecipientKind::Staff, "ana@example.com"),
///     (RecipientKind::Channel, "ops-chat"),
///     (RecipientKind::DnsRecord, "www.example.com"),
/// ]);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct WithChannels<R> {
    people: R,
    others: Vec<Recipient>,
}

impl<R: Recipients> WithChannels<R> {
    /// `people`, and the channels named `channels`.
    pub fn new<S: AsRef<str>>(
        people: R,
        channels: impl IntoIterator<Item = S>,
    ) -> Result<Self, InvalidRecipient> {
        let others = channels
            .into_iter()
            .map(|name| Recipient::channel(name.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(WithChannels { people, others })
    }

    /// And the DNS records named `names`.
    pub fn dns_records<S: AsRef<str>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self, InvalidRecipient> {
        for name in names {
            self.others.push(Recipient::dns_record(name.as_ref())?);
        }
        Ok(self)
    }
}

#[async_trait]
impl<R: Recipients> Recipients for WithChannels<R> {
    async fn active(&self) -> Result<RecipientList, RecipientsError> {
        let mut list = self.people.active().await?;
        list.valid.extend(self.others.iter().cloned());
        Ok(list)
    }
}
