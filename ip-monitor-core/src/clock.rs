//! Wall-clock time, made replaceable so timing logic can run on tokio's paused clock.

use std::fmt::Debug;
use std::time::SystemTime;

/// A source of wall-clock time. Store records (lease expiry, delivery schedule, heartbeats)
/// are stamped with it.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Wall-clock time that advances with tokio's clock: the system time when it was created plus
/// the tokio time elapsed since. Under `tokio::time::pause()` it moves only when tokio's clock
/// is advanced, so a test can run hours of schedule in milliseconds.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use ip_monitor_core::{Clock, TokioClock};
/// use std::time::Duration;
/// let clock = TokioClock::new();
/// let before = clock.now();
/// tokio::time::sleep(Duration::from_secs(3600)).await; // instant under a paused clock
/// assert_eq!(clock.now().duration_since(before).unwrap(), Duration::from_secs(3600));
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base: SystemTime,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads the system time now and follows tokio's clock from here on.
    pub fn new() -> Self {
        TokioClock {
            base: SystemTime::now(),
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.base + self.start.elapsed()
    }
}
