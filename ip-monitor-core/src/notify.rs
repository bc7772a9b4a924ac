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
    /// Try again later (a 4xx reply, a network error, a timeout).
    Transient,
    /// Give up on this recipient for this notice (a 5xx reply, a rejected address).
    Permanent,
}

/// A failed delivery, with the answer to "retry?".
#[derive(Debug, thiserror::Error)]
#[error("{} delivery failure: {source}", match .kind { FailureKind::Transient => "transient", FailureKind::Permanent => "permanent" })]
pub struct NotifyError {
    kind: FailureKind,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl NotifyError {
    /// A failure worth retrying.
    pub fn transient(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        NotifyError {
            kind: FailureKind::Transient,
            source: source.into(),
        }
    }

    /// A failure not worth retrying.
    pub fn permanent(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        NotifyError {
            kind: FailureKind::Permanent,
            source: source.into(),
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
}

/// Delivers one notice to one recipient.
///
/// Return once the message is accepted by the next hop (the SMTP server said 250): the
/// monitor marks the delivery sent right after. Classify failures honestly: the monitor
/// retries exactly what says transient.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync + Debug {
    /// Deliver `notice` to `recipient`.
    async fn notify(&self, notice: &Notice, recipient: &Recipient) -> Result<(), NotifyError>;
}

#[async_trait]
impl<T: Notifier + ?Sized> Notifier for Arc<T> {
    async fn notify(&self, notice: &Notice, recipient: &Recipient) -> Result<(), NotifyError> {
        (**self).notify(notice, recipient).await
    }
}

#[async_trait]
impl<T: Notifier + ?Sized> Notifier for Box<T> {
    async fn notify(&self, notice: &Notice, recipient: &Recipient) -> Result<(), NotifyError> {
        (**self).notify(notice, recipient).await
    }
}

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
        let mut inner = self.lock();
        if let Some((left, kind)) = inner.failures.get_mut(&recipient.key())
            && *left > 0
        {
            if *left != usize::MAX {
                *left -= 1;
            }
            let message = format!("scripted failure for {}", recipient.email());
            return Err(match kind {
                FailureKind::Transient => NotifyError::transient(message),
                FailureKind::Permanent => NotifyError::permanent(message),
            });
        }
        inner.sent.push((notice.clone(), recipient.clone()));
        Ok(())
    }
}
