//! Chat channels as recipients: [`WithChannels`] adds them to the people, so each channel
//! gets one delivery per change through the outbox (retried, superseded, fenced, counted
//! like an email), and [`ChannelRouter`] sends a channel's delivery to its notifier and
//! everyone else's to the email notifier.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::notice::Notice;
use crate::notify::{Notifier, NotifyError, SendPermit};
use crate::recipients::{InvalidRecipient, Recipient, RecipientList, Recipients, RecipientsError};

/// The people of `R`, then one [`Recipient::channel`] per channel name.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{Recipients, StaticRecipients, WithChannels};
/// let all = WithChannels::new(StaticRecipients::new(["ana@example.com"]), ["ops-chat"]).unwrap();
/// let list = all.active().await.unwrap();
/// let emails: Vec<_> = list.valid.iter().map(|r| r.email()).collect();
/// assert_eq!(emails, ["ana@example.com", "ops-chat@channel.invalid"]);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct WithChannels<R> {
    people: R,
    channels: Vec<Recipient>,
}

impl<R: Recipients> WithChannels<R> {
    /// `people`, and the channels named `channels`.
    pub fn new<S: AsRef<str>>(
        people: R,
        channels: impl IntoIterator<Item = S>,
    ) -> Result<Self, InvalidRecipient> {
        let channels = channels
            .into_iter()
            .map(|name| Recipient::channel(name.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(WithChannels { people, channels })
    }
}

#[async_trait]
impl<R: Recipients> Recipients for WithChannels<R> {
    async fn active(&self) -> Result<RecipientList, RecipientsError> {
        let mut list = self.people.active().await?;
        list.valid.extend(self.channels.iter().cloned());
        Ok(list)
    }
}

/// Channel recipients to their channel's notifier, everyone else to the email notifier.
/// A channel without a notifier fails permanently (its delivery is recorded failed, with
/// the reason).
#[derive(Debug, Clone)]
pub struct ChannelRouter {
    email: Arc<dyn Notifier>,
    channels: HashMap<String, Arc<dyn Notifier>>,
}

impl ChannelRouter {
    /// People through `email`.
    pub fn new(email: impl Notifier + 'static) -> Self {
        ChannelRouter {
            email: Arc::new(email),
            channels: HashMap::new(),
        }
    }

    /// The channel `name` through `notifier`.
    pub fn channel(mut self, name: impl Into<String>, notifier: impl Notifier + 'static) -> Self {
        self.channels.insert(name.into(), Arc::new(notifier));
        self
    }

    fn route(&self, recipient: &Recipient) -> Result<&dyn Notifier, NotifyError> {
        match recipient.channel_name() {
            None => Ok(self.email.as_ref()),
            Some(name) => self
                .channels
                .get(name)
                .map(AsRef::as_ref)
                .ok_or_else(|| NotifyError::permanent(format!("no channel called {name:?}"))),
        }
    }
}

#[async_trait]
impl Notifier for ChannelRouter {
    async fn notify(&self, notice: &Notice, recipient: &Recipient) -> Result<(), NotifyError> {
        self.route(recipient)?.notify(notice, recipient).await
    }

    async fn notify_within(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<(), NotifyError> {
        self.route(recipient)?
            .notify_within(notice, recipient, permit)
            .await
    }

    async fn notify_via(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Option<String>, NotifyError> {
        self.route(recipient)?
            .notify_via(notice, recipient, permit)
            .await
    }
}
