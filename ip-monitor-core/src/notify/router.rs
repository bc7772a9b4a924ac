//! [`ChannelRouter`]: each recipient to the notifier of its kind and name.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Notifier, NotifyError, SendPermit, Sent};
use crate::notice::Notice;
use crate::recipients::{Recipient, RecipientKind, dns_record_name};

/// Staff to the email notifier, each channel and DNS record to its own notifier, by the
/// recipient's [`RecipientKind`] and name. A channel or record without a notifier fails
/// permanently (its delivery is recorded failed, with the reason).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::*;
/// let (email, chat) = (RecordingNotifier::new(), RecordingNotifier::new());
/// let router = ChannelRouter::new(email.clone()).channel("ops-chat", chat.clone());
/// let notice = Notice::new(1, "81.2.69.160".parse().unwrap(), "http://81.2.69.160:8008/".into(), std::time::SystemTime::now(), false).unwrap();
/// router.notify(&notice, &Recipient::channel("ops-chat").unwrap()).await.unwrap();
/// assert!(router.notify(&notice, &Recipient::dns_record("www.example.com").unwrap()).await.unwrap_err().is_permanent());
/// assert_eq!((email.sent().len(), chat.sent().len()), (0, 1));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ChannelRouter {
    email: Arc<dyn Notifier>,
    named: HashMap<(RecipientKind, String), Arc<dyn Notifier>>,
}

impl ChannelRouter {
    /// Staff through `email`.
    pub fn new(email: impl Notifier + 'static) -> Self {
        ChannelRouter {
            email: Arc::new(email),
            named: HashMap::new(),
        }
    }

    /// The channel `name` through `notifier`.
    pub fn channel(self, name: impl Into<String>, notifier: impl Notifier + 'static) -> Self {
        self.named(RecipientKind::Channel, name.into(), notifier)
    }

    /// The DNS record `name` through `notifier` (the name as
    /// [`Recipient::dns_record`] keeps it: lower case, no trailing dot).
    pub fn dns_record(self, name: impl Into<String>, notifier: impl Notifier + 'static) -> Self {
        let name = dns_record_name(&name.into());
        self.named(RecipientKind::DnsRecord, name, notifier)
    }

    fn named(
        mut self,
        kind: RecipientKind,
        name: String,
        notifier: impl Notifier + 'static,
    ) -> Self {
        self.named.insert((kind, name), Arc::new(notifier));
        self
    }

    fn route(&self, recipient: &Recipient) -> Result<&dyn Notifier, NotifyError> {
        match recipient.kind() {
            RecipientKind::Staff => Ok(self.email.as_ref()),
            kind => self
                .named
                .get(&(kind, recipient.email().to_owned()))
                .map(AsRef::as_ref)
                .ok_or_else(|| NotifyError::permanent(format!("no notifier for the {recipient}"))),
        }
    }
}

#[async_trait]
impl Notifier for ChannelRouter {
    async fn send(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
        self.route(recipient)?.send(notice, recipient, permit).await
    }
}
