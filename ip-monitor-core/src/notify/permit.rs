//! [`SendPermit`]: the right to hand one message over, checked at the last moment.

use std::fmt::Debug;
use std::sync::Arc;

use super::NotifyError;

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
