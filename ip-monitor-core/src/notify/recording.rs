//! [`RecordingNotifier`]: keeps what it "sent", for tests and dry runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{FailureKind, Notifier, NotifyError, SendPermit, Sent};
use crate::notice::Notice;
use crate::recipients::Recipient;

/// A notifier that keeps what it "sent", for tests and dry runs. Failures and delays can be
/// scripted per recipient.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{FailureKind, Notice, NotifierExt, Recipient, RecordingNotifier};
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
    /// Like an SMTP session: the scripted delay passes first (connect, envelope), then the
    /// permit is checked right before the message counts as handed over.
    async fn send(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
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
        Ok(Sent::direct())
    }
}
