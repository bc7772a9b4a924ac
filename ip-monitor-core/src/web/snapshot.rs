//! The store's part of every `GET`: one [`Snapshot`] that the page, `/status`, `/healthz` and
//! `/metrics` share, read at most once a [`SNAPSHOT_AGE`] and by one reader at a time, so
//! that a flood of requests costs the store one connection and a few calls a second, and the
//! lease renewal never queues behind web traffic for the pool's connections.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::Dashboard;
use super::STORE_TIMEOUT;
use super::report::StatusReport;
use crate::store::{Change, StateStore};

/// How long a snapshot is served before the next `GET` reads a new one.
pub(super) const SNAPSHOT_AGE: Duration = Duration::from_secs(1);

/// Changes shown on the page.
pub(super) const HISTORY: usize = 20;

/// What the store said, once.
#[derive(Debug)]
pub(super) struct Snapshot {
    /// The report, or why the store gave none within [`STORE_TIMEOUT`].
    pub(super) report: Result<StatusReport, String>,
    /// The latest changes, newest first (empty when they could not be read).
    pub(super) history: Vec<Change>,
    read_at: Instant,
}

/// The latest snapshot, behind the lock its readers take in turn.
pub(super) type Snapshots = Arc<tokio::sync::Mutex<Option<Arc<Snapshot>>>>;

impl Dashboard {
    /// The latest snapshot if it is fresh; else a new one, read while the others wait. The
    /// read runs as its own task holding the lock, so a request dropped midway (its client
    /// gone) neither cancels it nor lets a second read start beside it.
    pub(super) async fn snapshot(&self) -> Arc<Snapshot> {
        let mut slot = Arc::clone(&self.snapshots).lock_owned().await;
        if let Some(fresh) = slot.as_ref().filter(|s| s.read_at.elapsed() < SNAPSHOT_AGE) {
            return Arc::clone(fresh);
        }
        let store = Arc::clone(self.handle.store());
        let ttl = self.handle.config().effective_lease_ttl();
        let read = tokio::spawn(async move {
            let snapshot = Arc::new(read(store.as_ref(), ttl).await);
            *slot = Some(Arc::clone(&snapshot));
            snapshot
        });
        read.await.unwrap_or_else(|e| {
            Arc::new(Snapshot {
                report: Err(format!("the store read failed: {e}")),
                history: Vec::new(),
                read_at: Instant::now(),
            })
        })
    }

    /// Forget the snapshot: after an action the next `GET` shows its effect.
    pub(super) async fn forget_snapshot(&self) {
        *self.snapshots.lock().await = None;
    }
}

async fn read(store: &dyn StateStore, ttl: Duration) -> Snapshot {
    let both = async {
        let report = StatusReport::read(store, ttl, SystemTime::now()).await?;
        let history = store.history(HISTORY).await.unwrap_or_default();
        Ok::<_, crate::store::StoreError>((report, history))
    };
    let (report, history) = match tokio::time::timeout(STORE_TIMEOUT, both).await {
        Ok(Ok((report, history))) => (Ok(report), history),
        Ok(Err(e)) => (Err(e.to_string()), Vec::new()),
        Err(_) => (
            Err(format!("no answer within {} s", STORE_TIMEOUT.as_secs())),
            Vec::new(),
        ),
    };
    Snapshot {
        report,
        history,
        read_at: Instant::now(),
    }
}
