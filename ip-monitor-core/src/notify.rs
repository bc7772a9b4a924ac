//! How a notice reaches a person: the [`Notifier`] trait and [`RecordingNotifier`].

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::notice::Notice;
use crate::recipients::Recipient;

/// Whether a failed delivery is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Try again later (a 4xx reply, a network error, a timeout, a relay that refuses the
    /// sender or the session).
    Transient,
    /// Give up on this recipient for this notice (the recipient's mailbox was refused).
    Permanent,
    /// Not handed over, because the [`SendPermit`] was no longer valid (the lease lapsed,
    /// the notice was superseded). Nothing was sent; the delivery goes back to the queue.
    Withheld,
}

/// The right to hand one message over, checked by a [`Notifier`] at the last moment before
/// the message leaves (for SMTP: once the relay took the envelope, before the message is
/// written). The monitor's permit is valid while its lease is (on a monotonic clock) and the
/// notice is not superseded, so a process that was frozen past its lease wakes up and sends
/// nothing.
///
/// ```
/// use ip_monitor_core::SendPermit;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// assert!(SendPermit::always().is_valid());
/// let revoked = Arc::new(AtomicBool::new(false));
/// let flag = Arc::clone(&revoked);
/// let permit = SendPermit::new(move || !flag.load(Ordering::SeqCst));
/// assert!(permit.is_valid());
/// revoked.store(true, Ordering::SeqCst);
/// assert!(!permit.is_valid());
/// ```
#[derive(Clone)]
pub struct SendPermit {
    check: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl SendPermit {
    /// A permit that is valid while `check` says so.
    pub fn new(check: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        SendPermit {
            check: Arc::new(check),
        }
    }

    /// A permit that is always valid (sends outside the monitor's outbox).
    pub fn always() -> Self {
        SendPermit::new(|| true)
    }

    /// Whether the message may still be handed over.
    pub fn is_valid(&self) -> bool {
        (self.check)()
    }

    /// `Ok` while valid, otherwise the [`Withheld`](FailureKind::Withheld) error to return.
    pub fn check(&self) -> Result<(), NotifyError> {
        if self.is_valid() {
            Ok(())
        } else {
            Err(NotifyError::withheld())
        }
    }
}

impl Debug for SendPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendPermit")
            .field("valid", &self.is_valid())
            .finish()
    }
}

/// A failed delivery, with the answer to "retry?".
#[derive(Debug, thiserror::Error)]
#[error("{} delivery failure: {source}", match .kind { FailureKind::Transient => "transient", FailureKind::Permanent => "permanent", FailureKind::Withheld => "withheld" })]
pub struct NotifyError {
    kind: FailureKind,
    route: bool,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl NotifyError {
    /// A failure worth retrying.
    pub fn transient(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        NotifyError {
            kind: FailureKind::Transient,
            route: false,
            source: source.into(),
        }
    }

    /// A transient failure of the route itself, before anything was said about this
    /// recipient: the relay could not be reached (connection refused or timed out), the
    /// session could not be set up (greeting, TLS, authentication), or the relay refused
    /// the sender. Nothing was handed over, so another route may take the message at once
    /// ([`FallbackNotifier`]).
    pub fn route(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        NotifyError {
            kind: FailureKind::Transient,
            route: true,
            source: source.into(),
        }
    }

    /// A failure not worth retrying.
    pub fn permanent(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        NotifyError {
            kind: FailureKind::Permanent,
            route: false,
            source: source.into(),
        }
    }

    /// Not handed over: the send permit was no longer valid.
    pub fn withheld() -> Self {
        NotifyError {
            kind: FailureKind::Withheld,
            route: false,
            source: "not handed over: the lease lapsed or the notice was superseded".into(),
        }
    }

    /// Which kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == FailureKind::Transient
    }

    /// Whether retrying is pointless.
    pub fn is_permanent(&self) -> bool {
        self.kind == FailureKind::Permanent
    }

    /// Whether the route failed before anything was said about this recipient (see
    /// [`route`](Self::route)): another route may take the message at once.
    pub fn is_route_failure(&self) -> bool {
        self.route
    }

    /// Whether nothing was handed over because the permit had lapsed.
    pub fn is_withheld(&self) -> bool {
        self.kind == FailureKind::Withheld
    }
}

/// Delivers one notice to one recipient.
///
/// Return once the message is accepted by the next hop (the SMTP server said 250): the
/// monitor marks the delivery sent right after. Classify failures honestly: the monitor
/// retries exactly what says transient — a failure about the relay, the sender or the
/// session is transient, only one about this recipient is permanent.
///
/// The monitor calls [`notify_within`](Notifier::notify_within). Its default checks the
/// permit and then calls [`notify`](Notifier::notify); a notifier whose hand-over takes
/// several round trips (SMTP) overrides it to check the permit again right before the
/// message leaves.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync + Debug {
    /// Deliver `notice` to `recipient`.
    async fn notify(&self, notice: &Notice, recipient: &Recipient) -> Result<(), NotifyError>;

    /// Deliver `notice` to `recipient` unless `permit` is no longer valid when the message
    /// would be handed over; then return [`NotifyError::withheld`] having sent nothing.
    async fn notify_within(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<(), NotifyError> {
        permit.check()?;
        self.notify(notice, recipient).await
    }

    /// [`notify_within`](Notifier::notify_within), and say which route took the message:
    /// `None` for a notifier with one route (the default), the route's name for one with
    /// several ([`FallbackNotifier`]). The monitor calls this one, and logs and counts the
    /// route.
    async fn notify_via(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Option<String>, NotifyError> {
        self.notify_within(notice, recipient, permit)
            .await
            .map(|()| None)
    }
}

macro_rules! forward_notifier {
    ($ty:ty) => {
        #[async_trait]
        impl<T: Notifier + ?Sized> Notifier for $ty {
            async fn notify(
                &self,
                notice: &Notice,
                recipient: &Recipient,
            ) -> Result<(), NotifyError> {
                (**self).notify(notice, recipient).await
            }
            async fn notify_within(
                &self,
                notice: &Notice,
                recipient: &Recipient,
                permit: &SendPermit,
            ) -> Result<(), NotifyError> {
                (**self).notify_within(notice, recipient, permit).await
            }
            async fn notify_via(
                &self,
                notice: &Notice,
                recipient: &Recipient,
                permit: &SendPermit,
            ) -> Result<Option<String>, NotifyError> {
                (**self).notify_via(notice, recipient, permit).await
            }
        }
    };
}
forward_notifier!(Arc<T>);
forward_notifier!(Box<T>);

/// A notifier that keeps what it "sent", for tests and dry runs. Failures and delays can be
/// scripted per recipient.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{FailureKind, Notice, Notifier, Recipient, RecordingNotifier};
/// let notifier = RecordingNotifier::new();
/// let ana = Recipient::new("ana@example.com", None::<&str>).unwrap();
/// notifier.fail_next("ana@example.com", 1, FailureKind::Transient);
/// let notice = Notice::new(1, "81.2.69.160".parse().unwrap(), "http://81.2.69.160:8008/".into(), std::time::SystemTime::now(), false).unwrap();
/// assert!(notifier.notify(&notice, &ana).await.unwrap_err().is_transient());
/// notifier.notify(&notice, &ana).await.unwrap();
/// assert_eq!(notifier.sent().len(), 1);
/// assert_eq!(notifier.attempts(), 2);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct RecordingNotifier {
    inner: Arc<Mutex<RecordingInner>>,
}

#[derive(Debug, Default)]
struct RecordingInner {
    sent: Vec<(Notice, Recipient)>,
    attempts: usize,
    attempt_times: Vec<(String, tokio::time::Instant)>,
    failures: HashMap<String, (usize, FailureKind)>,
    delay: Option<Duration>,
    route_failures: bool,
}

impl RecordingNotifier {
    /// A notifier that accepts everything at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fail the next `times` attempts for `email` (case-insensitive) with `kind`.
    /// `usize::MAX` fails forever.
    pub fn fail_next(&self, email: &str, times: usize, kind: FailureKind) {
        self.lock()
            .failures
            .insert(email.to_ascii_lowercase(), (times, kind));
    }

    /// Make the scripted transient failures failures of the route
    /// ([`NotifyError::route`]): a relay that is down, for tests of a [`FallbackNotifier`].
    pub fn fail_as_route(&self, route: bool) {
        self.lock().route_failures = route;
    }

    /// Take this long for every attempt.
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.lock().delay = delay;
    }

    /// Everything accepted so far, in order.
    pub fn sent(&self) -> Vec<(Notice, Recipient)> {
        self.lock().sent.clone()
    }

    /// The addresses accepted so far, in order.
    pub fn sent_to(&self) -> Vec<String> {
        self.lock()
            .sent
            .iter()
            .map(|(_, r)| r.email().to_owned())
            .collect()
    }

    /// Attempts so far, successful or not.
    pub fn attempts(&self) -> usize {
        self.lock().attempts
    }

    /// When each attempt for `email` (case-insensitive) started, on tokio's clock.
    pub fn attempt_times(&self, email: &str) -> Vec<tokio::time::Instant> {
        let key = email.to_ascii_lowercase();
        self.lock()
            .attempt_times
            .iter()
            .filter(|(e, _)| *e == key)
            .map(|(_, t)| *t)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecordingInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notice: &Notice, recipient: &Recipient) -> Result<(), NotifyError> {
        self.notify_within(notice, recipient, &SendPermit::always())
            .await
    }

    /// Like an SMTP session: the scripted delay passes first (connect, envelope), then the
    /// permit is checked right before the message counts as handed over.
    async fn notify_within(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<(), NotifyError> {
        let delay = {
            let mut inner = self.lock();
            inner.attempts += 1;
            inner
                .attempt_times
                .push((recipient.key(), tokio::time::Instant::now()));
            inner.delay
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        permit.check()?;
        let mut inner = self.lock();
        let route = inner.route_failures;
        if let Some((left, kind)) = inner.failures.get_mut(&recipient.key())
            && *left > 0
        {
            if *left != usize::MAX {
                *left -= 1;
            }
            let message = format!("scripted failure for {}", recipient.email());
            return Err(match kind {
                FailureKind::Transient if route => NotifyError::route(message),
                FailureKind::Transient => NotifyError::transient(message),
                FailureKind::Permanent => NotifyError::permanent(message),
                FailureKind::Withheld => NotifyError::withheld(),
            });
        }
        inner.sent.push((notice.clone(), recipient.clone()));
        Ok(())
    }
}

/// Routes tried in order for each message: when one fails for a reason of the route itself
/// ([`NotifyError::is_route_failure`]: unreachable, session refused, sender refused), the
/// next takes the message at once, not after the retry backoff. Any other failure — a
/// recipient refused, a message refused, a timeout after the message went out — is the
/// answer, so nothing is sent twice and a refused mailbox is not tried elsewhere. When every
/// route failed, the last one's error is returned (transient: the outbox retries, starting
/// from the first route again).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::*;
/// let (primary, backup) = (RecordingNotifier::new(), RecordingNotifier::new());
/// primary.fail_as_route(true);
/// primary.fail_next("ana@example.com", usize::MAX, FailureKind::Transient);
/// let routes = FallbackNotifier::new("relay-1", primary.clone()).or("relay-2", backup.clone());
/// let ana = Recipient::new("ana@example.com", None::<&str>).unwrap();
/// let notice = Notice::new(1, "81.2.69.160".parse().unwrap(), "http://81.2.69.160:8008/".into(), std::time::SystemTime::now(), false).unwrap();
/// let via = routes.notify_via(&notice, &ana, &SendPermit::always()).await.unwrap();
/// assert_eq!(via.as_deref(), Some("relay-2"));
/// assert_eq!((primary.sent().len(), backup.sent().len()), (0, 1));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FallbackNotifier {
    routes: Vec<(String, Arc<dyn Notifier>)>,
}

impl FallbackNotifier {
    /// The first route, called `name` in logs and counts.
    pub fn new(name: impl Into<String>, notifier: impl Notifier + 'static) -> Self {
        FallbackNotifier {
            routes: vec![(name.into(), Arc::new(notifier))],
        }
    }

    /// Then `notifier`, when the routes before it failed.
    pub fn or(mut self, name: impl Into<String>, notifier: impl Notifier + 'static) -> Self {
        self.routes.push((name.into(), Arc::new(notifier)));
        self
    }

    /// The routes' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|(name, _)| name.as_str())
    }
}

#[async_trait]
impl Notifier for FallbackNotifier {
    async fn notify(&self, notice: &Notice, recipient: &Recipient) -> Result<(), NotifyError> {
        self.notify_via(notice, recipient, &SendPermit::always())
            .await
            .map(|_| ())
    }

    async fn notify_within(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<(), NotifyError> {
        self.notify_via(notice, recipient, permit).await.map(|_| ())
    }

    async fn notify_via(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Option<String>, NotifyError> {
        let last = self.routes.len() - 1;
        for (i, (name, route)) in self.routes.iter().enumerate() {
            match route.notify_via(notice, recipient, permit).await {
                Ok(inner) => {
                    return Ok(Some(match inner {
                        Some(inner) => format!("{name}/{inner}"),
                        None => name.clone(),
                    }));
                }
                Err(e) if i < last && e.is_route_failure() => {
                    tracing::warn!(
                        route = %name,
                        next = %self.routes[i + 1].0,
                        email = recipient.email(),
                        "route failed, trying the next: {e}"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("a FallbackNotifier has at least one route")
    }
}

#[cfg(test)]
mod fallback_tests {
    use super::*;

    fn notice() -> Notice {
        Notice::new(
            1,
            "81.2.69.160".parse().unwrap(),
            "http://81.2.69.160:8008/".into(),
            std::time::SystemTime::now(),
            false,
        )
        .unwrap()
    }

    /// Only a failure of the route moves on; the answer about the recipient, a lapsed permit
    /// or the last route's failure is returned as it is.
    #[tokio::test]
    async fn only_route_failures_move_to_the_next_route() {
        let ana = Recipient::new("ana@example.com", None::<&str>).unwrap();
        let cases = [
            (FailureKind::Transient, true, Ok(Some("b"))),
            (FailureKind::Transient, false, Err(FailureKind::Transient)),
            (FailureKind::Permanent, true, Err(FailureKind::Permanent)),
            (FailureKind::Withheld, true, Err(FailureKind::Withheld)),
        ];
        for (kind, route, expected) in cases {
            let (a, b) = (RecordingNotifier::new(), RecordingNotifier::new());
            a.fail_as_route(route);
            a.fail_next("ana@example.com", 1, kind);
            let routes = FallbackNotifier::new("a", a.clone()).or("b", b.clone());
            let got = routes
                .notify_via(&notice(), &ana, &SendPermit::always())
                .await;
            match expected {
                Ok(via) => assert_eq!(got.unwrap().as_deref(), via),
                Err(kind) => assert_eq!(got.unwrap_err().kind(), kind),
            }
            assert_eq!(
                b.attempts(),
                usize::from(expected.is_ok()),
                "{kind:?} {route}"
            );
        }
        // Every route down: the last one's error, transient, for the outbox to retry.
        let (a, b) = (RecordingNotifier::new(), RecordingNotifier::new());
        for n in [&a, &b] {
            n.fail_as_route(true);
            n.fail_next("ana@example.com", 1, FailureKind::Transient);
        }
        let routes = FallbackNotifier::new("a", a.clone()).or("b", b.clone());
        let e = routes.notify(&notice(), &ana).await.unwrap_err();
        assert!(e.is_transient() && e.is_route_failure());
        assert_eq!((a.attempts(), b.attempts()), (1, 1));
        assert_eq!(routes.names().collect::<Vec<_>>(), ["a", "b"]);
    }
}
