//! How a notice reaches a recipient: the [`Notifier`] trait, its error and permit, and the
//! notifiers every setup shares — [`RecordingNotifier`] for tests and dry runs,
//! [`FallbackNotifier`] for backup routes, [`ChannelRouter`] to send each kind of recipient
//! its own way. The chat platforms live in [`chat`], the DNS providers in [`dns`].

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::notice::Notice;
use crate::recipients::Recipient;

#[cfg(any(
    feature = "chat",
    feature = "cloudflare",
    feature = "alidns",
    feature = "dnspod",
    feature = "huaweicloud"
))]
mod api;
#[cfg(feature = "chat")]
pub mod chat;
#[cfg(any(
    feature = "cloudflare",
    feature = "rfc2136",
    feature = "alidns",
    feature = "dnspod",
    feature = "huaweicloud"
))]
pub mod dns;
mod error;
mod fallback;
#[cfg(all(feature = "command", unix))]
mod hook;
mod permit;
#[cfg(feature = "push")]
pub mod push;
mod recording;
mod router;

#[cfg(any(
    feature = "chat",
    feature = "cloudflare",
    feature = "alidns",
    feature = "dnspod",
    feature = "huaweicloud"
))]
pub use api::check_secret_transport;
pub use error::{FailureKind, NotifyError};
pub use fallback::FallbackNotifier;
#[cfg(all(feature = "command", unix))]
pub use hook::{EX_TEMPFAIL, HookNotifier};
pub use permit::SendPermit;
pub use recording::RecordingNotifier;
pub use router::ChannelRouter;

/// What a [`Notifier`] handed over: which route took the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// `None` for a notifier with one route, the route's name for one with several
    /// ([`FallbackNotifier`]); the monitor logs and counts it.
    pub route: Option<String>,
}

impl Sent {
    /// Taken by the only route there is.
    pub fn direct() -> Self {
        Sent { route: None }
    }

    /// Taken by the route called `name`.
    pub fn via(name: impl Into<String>) -> Self {
        Sent {
            route: Some(name.into()),
        }
    }
}

/// Delivers one notice to one recipient.
///
/// One method to write: [`send`](Notifier::send) takes the [`SendPermit`] and says which
/// route took the message, so a wrapper cannot lose either. The conveniences
/// ([`NotifierExt::notify`]) are built on it and are not for implementers to override.
///
/// Return once the message is accepted by the next hop (the SMTP server said 250): the
/// monitor marks the delivery sent right after. Check the permit at the last moment before
/// the message leaves (for SMTP: after the envelope, before the message), and return
/// [`NotifyError::withheld`] having sent nothing when it is no longer valid. Classify
/// failures honestly: the monitor retries exactly what says transient — a failure about the
/// relay, the sender or the session is transient, only one about this recipient is
/// permanent.
///
/// ```
/// use ip_monitor_core::*;
///
/// /// Writes each notice to the log.
/// #[derive(Debug)]
/// struct LogNotifier;
///
/// #[async_trait]
/// impl Notifier for LogNotifier {
///     async fn send(&self, notice: &Notice, to: &Recipient, permit: &SendPermit) -> Result<Sent, NotifyError> {
///         permit.check()?;
///         println!("{to}: {}", notice.url);
///         Ok(Sent::direct())
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let notice = Notice::new(1, "81.2.69.160".parse().unwrap(), "http://81.2.69.160:8008/".into(), std::time::SystemTime::now(), false).unwrap();
/// # let ana = Recipient::new("ana@example.com", None::<&str>).unwrap();
/// LogNotifier.notify(&notice, &ana).await.unwrap();
/// # }
/// ```
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync + Debug {
    /// Deliver `notice` to `recipient` unless `permit` is no longer valid when the message
    /// would be handed over; say which route took it.
    async fn send(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError>;
}

/// Conveniences on every [`Notifier`]; implemented for all of them, never by hand.
#[async_trait]
pub trait NotifierExt: Notifier {
    /// Deliver `notice` to `recipient` outside the monitor's outbox (a permit that is always
    /// valid), ignoring the route.
    async fn notify(&self, notice: &Notice, recipient: &Recipient) -> Result<(), NotifyError> {
        self.send(notice, recipient, &SendPermit::always())
            .await
            .map(drop)
    }
}

impl<T: Notifier + ?Sized> NotifierExt for T {}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<T: Notifier + ?Sized> Notifier for Arc<T> {
    async fn send(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
        (**self).send(notice, recipient, permit).await
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<T: Notifier + ?Sized> Notifier for Box<T> {
    async fn send(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
        (**self).send(notice, recipient, permit).await
    }
}
