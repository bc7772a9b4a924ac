use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::*;
use crate::clock::{Clock, TokioClock};

/// A [`StateStore`] in memory: a complete implementation for a single process, for tests,
/// and for embedding where nothing must survive a restart. Clones share the same state, so
/// several monitors in one process can contend for its lease.
///
/// Its lease is judged on its own clock, by default one that follows tokio's monotonic clock
/// (so it also runs on a paused test clock); [`with_clock`](Self::with_clock) replaces it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{Family, MemoryStore, StateStore};
/// let store = MemoryStore::new();
/// assert!(store.current(Family::V4).await.unwrap().is_none());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            inner: Arc::default(),
            clock: Arc::new(TokioClock::new()),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    current: HashMap<Family, CurrentAddress>,
    changes: BTreeMap<i64, Change>,
    deliveries: BTreeMap<i64, Delivery>,
    /// Pending deliveries by due time: claims read the front instead of scanning.
    due: BTreeSet<(SystemTime, i64)>,
    /// In-flight deliveries (a few per holder): orphans of a dead holder are found here.
    in_flight: BTreeSet<i64>,
    next_change: i64,
    next_delivery: i64,
    lease: Option<Lease>,
    last_fence: u64,
    instances: HashMap<String, InstanceStatus>,
    desired: DesiredState,
}

impl Inner {
    /// A pending delivery of `change`, due at `now`, for each recipient whose key is not in
    /// `told` yet (adding it there). How many were created.
    fn add_pending(
        &mut self,
        change: &Change,
        recipients: &[Recipient],
        mut told: HashSet<String>,
        now: SystemTime,
    ) -> u64 {
        let mut added = 0;
        for r in recipients {
            if !told.insert(r.key()) {
                continue;
            }
            self.next_delivery += 1;
            let id = self.next_delivery;
            self.due.insert((now, id));
            self.deliveries.insert(
                id,
                Delivery {
                    id,
                    change_id: change.id,
                    address: change.address,
                    url: change.url.clone(),
                    kind: change.kind,
                    recipient: r.clone(),
                    state: DeliveryState::Pending,
                    attempts: 0,
                    created_at: now,
                    next_attempt_at: now,
                    last_error: None,
                    sent_at: None,
                    fence: None,
                },
            );
            added += 1;
        }
        added
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose lease is judged on `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            inner: Arc::default(),
            clock,
        }
    }

    /// Lock the state, and check `lease` against the store's clock.
    fn fenced(&self, lease: &Lease) -> Result<MutexGuard<'_, Inner>, StoreError> {
        let inner = self.lock();
        inner.check_lease(lease, self.clock.now())?;
        Ok(inner)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn valid_at(lease: &Lease, now: SystemTime) -> bool {
    now < lease.expires_at
}

impl Inner {
    fn check_lease(&self, lease: &Lease, now: SystemTime) -> Result<(), StoreError> {
        match &self.lease {
            Some(l)
                if l.holder.id == lease.holder.id && l.fence == lease.fence && valid_at(l, now) =>
            {
                Ok(())
            }
            _ => Err(StoreError::LeaseLost),
        }
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn current(&self, family: Family) -> Result<Option<CurrentAddress>, StoreError> {
        Ok(self.lock().current.get(&family).cloned())
    }

    async fn record_change(
        &self,
        lease: &Lease,
        now: SystemTime,
        change: NewChange,
        recipients: &[Recipient],
    ) -> Result<Change, StoreError> {
        let mut inner = self.fenced(lease)?;
        inner.next_change += 1;
        let id = inner.next_change;
        if change.kind == ChangeKind::Change {
            let stale: HashSet<i64> = inner
                .changes
                .values()
                .filter(|c| c.family == change.family && c.kind == ChangeKind::Change)
                .map(|c| c.id)
                .collect();
            let Inner {
                deliveries,
                due,
                in_flight,
                ..
            } = &mut *inner;
            for d in deliveries.values_mut() {
                if stale.contains(&d.change_id)
                    && matches!(d.state, DeliveryState::Pending | DeliveryState::InFlight)
                {
                    due.remove(&(d.next_attempt_at, d.id));
                    in_flight.remove(&d.id);
                    d.state = DeliveryState::Superseded;
                }
            }
            inner.current.insert(
                change.family,
                CurrentAddress {
                    family: change.family,
                    address: change.address,
                    since: now,
                    change_id: id,
                },
            );
        }
        let mut recorded = Change {
            id,
            family: change.family,
            address: change.address,
            previous: change.previous,
            url: change.url,
            kind: change.kind,
            detected_at: now,
            deliveries: 0,
        };
        recorded.deliveries = inner.add_pending(&recorded, recipients, HashSet::new(), now);
        inner.changes.insert(id, recorded.clone());
        Ok(recorded)
    }

    async fn add_recipients(
        &self,
        lease: &Lease,
        now: SystemTime,
        change_id: i64,
        recipients: &[Recipient],
        only_if_announced: bool,
    ) -> Result<u64, StoreError> {
        let mut inner = self.fenced(lease)?;
        let Some(change) = inner.changes.get(&change_id).cloned() else {
            return Ok(0);
        };
        let current = inner
            .current
            .get(&change.family)
            .is_some_and(|c| c.change_id == change_id);
        if !current || change.kind != ChangeKind::Change {
            return Ok(0);
        }
        let told: HashSet<String> = inner
            .deliveries
            .values()
            .filter(|d| d.change_id == change_id)
            .map(|d| d.recipient.key())
            .collect();
        if only_if_announced && told.is_empty() {
            return Ok(0);
        }
        let added = inner.add_pending(&change, recipients, told, now);
        if let Some(c) = inner.changes.get_mut(&change_id) {
            c.deliveries += added;
        }
        Ok(added)
    }

    async fn history(&self, limit: usize) -> Result<Vec<Change>, StoreError> {
        Ok(self
            .lock()
            .changes
            .values()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn claim_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut inner = self.fenced(lease)?;
        // Orphans of an older fence first, then pending ones by due time.
        let mut ids: Vec<i64> = inner
            .in_flight
            .iter()
            .copied()
            .filter(|id| inner.deliveries[id].fence != Some(lease.fence))
            .take(limit)
            .collect();
        let room = limit - ids.len();
        ids.extend(
            inner
                .due
                .range(..=(now, i64::MAX))
                .take(room)
                .map(|(_, id)| *id),
        );
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            let Inner {
                deliveries,
                due,
                in_flight,
                ..
            } = &mut *inner;
            let d = deliveries.get_mut(&id).expect("indexed deliveries exist");
            due.remove(&(d.next_attempt_at, id));
            in_flight.insert(id);
            d.state = DeliveryState::InFlight;
            d.fence = Some(lease.fence);
            d.attempts += 1;
            claimed.push(d.clone());
        }
        Ok(claimed)
    }

    async fn finish_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        results: &[DeliveryResult],
    ) -> Result<Vec<Recorded>, StoreError> {
        let mut inner = self.fenced(lease)?;
        let Inner {
            deliveries,
            due,
            in_flight,
            ..
        } = &mut *inner;
        let mut recorded = Vec::with_capacity(results.len());
        for result in results {
            let Some(d) = deliveries.get_mut(&result.id).filter(|d| {
                d.fence == Some(result.fence)
                    && matches!(d.state, DeliveryState::InFlight | DeliveryState::Superseded)
            }) else {
                recorded.push(Recorded::Stale);
                continue;
            };
            let superseded = d.state == DeliveryState::Superseded;
            match result.update.clone() {
                DeliveryUpdate::Sent => {
                    d.state = DeliveryState::Sent;
                    d.sent_at = Some(now);
                    d.last_error = None;
                }
                DeliveryUpdate::Retry { at, error } => {
                    if !superseded {
                        d.state = DeliveryState::Pending;
                        d.next_attempt_at = at;
                        due.insert((at, d.id));
                    }
                    d.last_error = Some(error);
                }
                DeliveryUpdate::Deferred { at, error } => {
                    if !superseded {
                        d.state = DeliveryState::Pending;
                        d.next_attempt_at = at;
                        d.attempts = d.attempts.saturating_sub(1);
                        due.insert((at, d.id));
                    }
                    d.last_error = Some(error);
                }
                DeliveryUpdate::Failed { error } => {
                    if !superseded {
                        d.state = DeliveryState::Failed;
                    }
                    d.last_error = Some(error);
                }
            }
            in_flight.remove(&d.id);
            recorded.push(Recorded::Applied);
        }
        Ok(recorded)
    }

    async fn retry_failed(&self, lease: &Lease, now: SystemTime) -> Result<u64, StoreError> {
        let mut inner = self.fenced(lease)?;
        let mut latest: HashMap<Family, i64> = HashMap::new();
        for c in inner.changes.values() {
            if c.kind == ChangeKind::Change {
                latest.insert(c.family, c.id); // ascending ids: the last one wins
            }
        }
        let latest: HashSet<i64> = latest.into_values().collect();
        let Inner {
            deliveries, due, ..
        } = &mut *inner;
        let mut count = 0;
        for d in deliveries.values_mut() {
            if latest.contains(&d.change_id) && d.state == DeliveryState::Failed {
                d.state = DeliveryState::Pending;
                d.attempts = 0;
                d.next_attempt_at = now;
                due.insert((now, d.id));
                count += 1;
            }
        }
        Ok(count)
    }

    async fn next_delivery_at(&self, lease: &Lease) -> Result<Option<SystemTime>, StoreError> {
        let inner = self.lock();
        let orphan = inner
            .in_flight
            .iter()
            .any(|id| inner.deliveries[id].fence != Some(lease.fence));
        Ok(if orphan {
            Some(SystemTime::UNIX_EPOCH)
        } else {
            inner.due.first().map(|(at, _)| *at)
        })
    }

    async fn deliveries(&self, change_id: i64) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .lock()
            .deliveries
            .values()
            .filter(|d| d.change_id == change_id)
            .cloned()
            .collect())
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        let mut counts = DeliveryCounts::default();
        for d in self.lock().deliveries.values() {
            *match d.state {
                DeliveryState::Pending => &mut counts.pending,
                DeliveryState::InFlight => &mut counts.in_flight,
                DeliveryState::Sent => &mut counts.sent,
                DeliveryState::Failed => &mut counts.failed,
                DeliveryState::Superseded => &mut counts.superseded,
            } += 1;
        }
        Ok(counts)
    }

    async fn acquire_lease(
        &self,
        holder: &Holder,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let mut inner = self.lock();
        let now = self.clock.now();
        let expires_at = now + ttl;
        match &mut inner.lease {
            Some(l) if valid_at(l, now) && l.holder.id == holder.id => {
                l.expires_at = expires_at;
                Ok(Some(l.clone()))
            }
            Some(l) if valid_at(l, now) => Ok(None),
            _ => {
                inner.last_fence += 1;
                let lease = Lease {
                    holder: holder.clone(),
                    fence: inner.last_fence,
                    acquired_at: now,
                    expires_at,
                };
                inner.lease = Some(lease.clone());
                Ok(Some(lease))
            }
        }
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner
            .lease
            .as_ref()
            .is_some_and(|l| l.holder.id == lease.holder.id && l.fence == lease.fence)
        {
            inner.lease = None;
        }
        Ok(())
    }

    async fn lease(&self) -> Result<Option<Lease>, StoreError> {
        let now = self.clock.now();
        Ok(self.lock().lease.clone().filter(|l| valid_at(l, now)))
    }

    async fn put_instance(&self, status: &InstanceStatus) -> Result<(), StoreError> {
        self.lock()
            .instances
            .insert(status.holder.id.clone(), status.clone());
        Ok(())
    }

    async fn instances(&self) -> Result<Vec<InstanceStatus>, StoreError> {
        let mut all: Vec<_> = self.lock().instances.values().cloned().collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.heartbeat_at));
        Ok(all)
    }

    async fn desired_state(&self) -> Result<DesiredState, StoreError> {
        Ok(self.lock().desired)
    }

    async fn set_desired_state(&self, state: DesiredState) -> Result<(), StoreError> {
        self.lock().desired = state;
        Ok(())
    }
}
