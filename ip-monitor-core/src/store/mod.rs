//! Durable state: the [`StateStore`] trait, its records, and [`MemoryStore`].

use std::fmt::{self, Debug};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::address::Family;
use crate::recipients::Recipient;

mod memory;

pub use memory::MemoryStore;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The lease passed in is no longer the valid lease (expired, taken over, released):
    /// the caller must stop acting.
    #[error("the lease is no longer held")]
    LeaseLost,
    /// A record that was referred to does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// Stored data could not be read back (a corrupt or foreign row).
    #[error("invalid stored data: {what}")]
    Invalid {
        /// What is wrong.
        what: String,
    },
    /// The backend failed (SQL, a constraint, a schema mismatch): retrying the same
    /// operation is not expected to help.
    #[error("store backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend is busy or out of reach for now (a lock held by another process, a
    /// serialization failure, a pool timeout, a lost connection): the same operation may
    /// succeed when tried again.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wrap a backend error that retrying will not fix.
    pub fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Backend(e.into())
    }

    /// Wrap a backend error that retrying may fix (busy, unreachable, timed out).
    pub fn unavailable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Unavailable(e.into())
    }

    /// Whether the same operation may succeed when tried again: the store was busy or out
    /// of reach. A lost lease is not transient: the caller must stop acting.
    ///
    /// ```
    /// use ip_monitor_core::StoreError;
    /// assert!(StoreError::unavailable("database is locked").is_transient());
    /// assert!(!StoreError::LeaseLost.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Who holds (or wants) the lease: one monitor instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Holder {
    /// Unique per running instance.
    pub id: String,
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
}

impl Holder {
    /// An identity for this process: host name, pid and a random suffix (so two monitors in
    /// one process, or a restarted process with a reused pid, never share an id).
    pub fn this_process() -> Self {
        let host = host_name();
        let pid = std::process::id();
        Holder {
            id: format!("{host}-{pid}-{:08x}", fastrand::u32(..)),
            host,
            pid,
        }
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The right to act (check, record, deliver) for a while. Each acquisition gets a higher
/// `fence` than any before; the store refuses claims and marks under a stale one.
///
/// Times are on the store's own clock (the database server's, for a database): compare them
/// with nothing on the caller's clock. A holder keeps its own deadline on a monotonic clock,
/// measured from before it asked for the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Lease {
    /// The holder.
    pub holder: Holder,
    /// The fencing number.
    pub fence: u64,
    /// When this holder acquired it (store clock).
    pub acquired_at: SystemTime,
    /// When it lapses unless renewed (store clock).
    pub expires_at: SystemTime,
}

/// A real change of address, or a test notice sent on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum ChangeKind {
    /// The address changed (or was seen for the first time).
    Change,
    /// A test notice: the current address is untouched and nothing is superseded.
    Test,
}

impl ChangeKind {
    /// `"change"` or `"test"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Change => "change",
            ChangeKind::Test => "test",
        }
    }
}

impl FromStr for ChangeKind {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "change" => Ok(ChangeKind::Change),
            "test" => Ok(ChangeKind::Test),
            other => Err(StoreError::Invalid {
                what: format!("change kind {other:?}"),
            }),
        }
    }
}

/// A change to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    /// The family.
    pub family: Family,
    /// The new address.
    pub address: IpAddr,
    /// The address it replaces, if any.
    pub previous: Option<IpAddr>,
    /// The entry URL for the new address.
    pub url: String,
    /// Change or test.
    pub kind: ChangeKind,
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Change {
    /// Its id, increasing with time.
    pub id: i64,
    /// The family.
    pub family: Family,
    /// The new address.
    pub address: IpAddr,
    /// The address it replaced.
    pub previous: Option<IpAddr>,
    /// The entry URL.
    pub url: String,
    /// Change or test.
    pub kind: ChangeKind,
    /// When it was recorded.
    pub detected_at: SystemTime,
    /// How many deliveries were created for it.
    pub deliveries: u64,
}

/// The current address of a family.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CurrentAddress {
    /// The family.
    pub family: Family,
    /// The address.
    pub address: IpAddr,
    /// Since when.
    pub since: SystemTime,
    /// The change that set it.
    pub change_id: i64,
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// Claimed by a lease holder and being sent.
    InFlight,
    /// Accepted by the server.
    Sent,
    /// Given up: a permanent failure, or transient ones past `give_up_after`.
    Failed,
    /// A newer change of the same family made it stale; never sent.
    Superseded,
}

impl DeliveryState {
    /// The stored name (`pending`, `in_flight`, `sent`, `failed`, `superseded`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::InFlight => "in_flight",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Superseded => "superseded",
        }
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => DeliveryState::Pending,
            "in_flight" => DeliveryState::InFlight,
            "sent" => DeliveryState::Sent,
            "failed" => DeliveryState::Failed,
            "superseded" => DeliveryState::Superseded,
            other => {
                return Err(StoreError::Invalid {
                    what: format!("delivery state {other:?}"),
                });
            }
        })
    }
}

/// One notice to one recipient, in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Delivery {
    /// Its id.
    pub id: i64,
    /// The change it announces.
    pub change_id: i64,
    /// The change's address.
    pub address: IpAddr,
    /// The change's entry URL.
    pub url: String,
    /// Change or test.
    pub kind: ChangeKind,
    /// Who it is for.
    pub recipient: Recipient,
    /// Where it is.
    pub state: DeliveryState,
    /// Attempts claimed so far.
    pub attempts: u32,
    /// When it was created (the change's time).
    pub created_at: SystemTime,
    /// When it is due next (pending ones).
    pub next_attempt_at: SystemTime,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the server accepted it.
    pub sent_at: Option<SystemTime>,
    /// The fence of the lease it was last claimed under.
    pub fence: Option<u64>,
}

/// The result of one attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryUpdate {
    /// The server accepted it.
    Sent,
    /// A transient failure: try again at `at`.
    Retry {
        /// When to try again.
        at: SystemTime,
        /// What went wrong.
        error: String,
    },
    /// Give up.
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// The result of an attempt on a delivery, and the fence of the lease it was claimed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryResult {
    /// The delivery.
    pub id: i64,
    /// The fence it was claimed under ([`Delivery::fence`] as claimed).
    pub fence: u64,
    /// What happened.
    pub update: DeliveryUpdate,
}

/// What recording one [`DeliveryResult`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recorded {
    /// The result was written.
    Applied,
    /// The delivery is no longer in flight under the fence the result answers (claimed again
    /// under a newer fence, or already finished): nothing was written. Not an error: it says
    /// nothing about the caller's lease.
    Stale,
}

/// How many deliveries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeliveryCounts {
    /// Waiting.
    pub pending: u64,
    /// Being sent.
    pub in_flight: u64,
    /// Accepted.
    pub sent: u64,
    /// Given up.
    pub failed: u64,
    /// Made stale by a newer change.
    pub superseded: u64,
}

/// Where the deliveries of one change stand: how many are in each state, and the ones that
/// were not sent, to report one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeOutcome {
    /// The change's deliveries per state.
    pub counts: DeliveryCounts,
    /// Its deliveries in any state but `Sent`, by id.
    pub unsent: Vec<Delivery>,
}

impl ChangeOutcome {
    /// The outcome of a change whose deliveries are `deliveries`.
    pub fn of(deliveries: Vec<Delivery>) -> Self {
        let mut outcome = ChangeOutcome::default();
        for d in deliveries {
            let counts = &mut outcome.counts;
            match d.state {
                DeliveryState::Pending => counts.pending += 1,
                DeliveryState::InFlight => counts.in_flight += 1,
                DeliveryState::Sent => counts.sent += 1,
                DeliveryState::Failed => counts.failed += 1,
                DeliveryState::Superseded => counts.superseded += 1,
            }
            if d.state != DeliveryState::Sent {
                outcome.unsent.push(d);
            }
        }
        outcome.unsent.sort_by_key(|d| d.id);
        outcome
    }

    /// Whether no delivery is waiting or being sent.
    pub fn is_settled(&self) -> bool {
        self.counts.pending == 0 && self.counts.in_flight == 0
    }
}

/// What the operator wants monitors on this store to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum DesiredState {
    /// Check and deliver.
    #[default]
    Running,
    /// Keep the lease and heartbeats, but neither check nor start deliveries.
    Paused,
}

impl DesiredState {
    /// `"running"` or `"paused"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredState::Running => "running",
            DesiredState::Paused => "paused",
        }
    }
}

impl FromStr for DesiredState {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(DesiredState::Running),
            "paused" => Ok(DesiredState::Paused),
            other => Err(StoreError::Invalid {
                what: format!("desired state {other:?}"),
            }),
        }
    }
}

/// What an instance is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum RunState {
    /// Running (checking when it holds the lease, waiting for it otherwise).
    Running,
    /// Paused by the desired state.
    Paused,
    /// Shut down.
    Stopped,
}

impl RunState {
    /// `"running"`, `"paused"` or `"stopped"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Stopped => "stopped",
        }
    }
}

/// One source's last answer, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SourceStatus {
    /// The source's name.
    pub name: String,
    /// The family asked.
    pub family: Family,
    /// Its answer, if valid.
    pub answer: Option<IpAddr>,
    /// Its error, if any.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub latency_ms: Option<u64>,
    /// When it was asked.
    pub at: SystemTime,
}

/// An instance's heartbeat row: what it is doing and what it last saw.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InstanceStatus {
    /// Who.
    pub holder: Holder,
    /// What it is doing.
    pub state: RunState,
    /// Whether it holds the lease.
    pub leader: bool,
    /// When it started.
    pub started_at: SystemTime,
    /// When this row was written.
    pub heartbeat_at: SystemTime,
    /// The current addresses it knows of.
    pub current: Vec<IpAddr>,
    /// When it last completed a full check.
    pub last_check_at: Option<SystemTime>,
    /// When it plans the next full check.
    pub next_check_at: Option<SystemTime>,
    /// Its last error (check, store, recipients), cleared by a good check.
    pub last_error: Option<String>,
    /// The last transient delivery failure — mostly the relay's (down, refusing the sender,
    /// wanting authentication) — while deliveries wait to be retried; cleared by a send.
    #[cfg_attr(feature = "serde", serde(default))]
    pub delivery_error: Option<String>,
    /// Messages this instance handed over, per route, for a notifier with several routes
    /// ([`FallbackNotifier`](crate::FallbackNotifier)).
    #[cfg_attr(feature = "serde", serde(default))]
    pub sent_via: std::collections::BTreeMap<String, u64>,
    /// Each source's last answer.
    pub sources: Vec<SourceStatus>,
}

/// Durable state shared by every process using the same database.
///
/// Operations that act (record, claim, finish) take the caller's [`Lease`] and fail with
/// [`StoreError::LeaseLost`] unless it is still the valid lease — checked in the same
/// transaction as the write, against the store's own clock (the database server's `now()`,
/// never the caller's, so hosts with skewed clocks cannot both hold it). The `now` passed to
/// them stamps records and schedules deliveries. Run
/// [`testing::store_conformance`](crate::testing) on an implementation (feature `testing`).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait StateStore: Send + Sync + Debug {
    /// The current address of `family`.
    async fn current(&self, family: Family) -> Result<Option<CurrentAddress>, StoreError>;

    /// Atomically: record the change, make it current (kind `Change`), supersede older
    /// changes' pending and in-flight deliveries of the same family (kind `Change`), and
    /// create one pending delivery per distinct recipient, due at `now`.
    async fn record_change(
        &self,
        lease: &Lease,
        now: SystemTime,
        change: NewChange,
        recipients: &[Recipient],
    ) -> Result<Change, StoreError>;

    /// Under `lease`, tell the current address to recipients who became active after it was
    /// recorded: for change `change_id`, while it is still its family's current change,
    /// create a pending delivery due at `now` for each distinct recipient in `recipients`
    /// who has none for that change yet — in any state: a sent, failed or superseded
    /// delivery counts as told — and add them to the change's count. With
    /// `only_if_announced`, a change without any delivery (recorded without telling anyone,
    /// as the first address is when `notify_on_first` is off) gets none. Returns how many
    /// deliveries were created.
    async fn add_recipients(
        &self,
        lease: &Lease,
        now: SystemTime,
        change_id: i64,
        recipients: &[Recipient],
        only_if_announced: bool,
    ) -> Result<u64, StoreError>;

    /// Recorded changes, newest first.
    async fn history(&self, limit: usize) -> Result<Vec<Change>, StoreError>;

    /// Claim up to `limit` due deliveries: pending ones due by `now`, and in-flight ones
    /// claimed under an older fence (their holder died). Marks them in flight under this
    /// lease's fence and counts the attempt.
    async fn claim_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Record the results of attempts, all in one transaction under `lease` (fails with
    /// [`StoreError::LeaseLost`] as a whole if the lease is no longer valid, writing nothing).
    ///
    /// Each result is written only while its delivery is still in flight under the fence it
    /// answers ([`DeliveryResult::fence`]), which need not be `lease`'s fence: a holder whose
    /// lease lapsed and was acquired again records what finished in between. Otherwise the
    /// result is [`Recorded::Stale`] and nothing is written for it. A delivery superseded
    /// while in flight stays superseded unless it was sent. One entry per result, in order.
    async fn finish_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        results: &[DeliveryResult],
    ) -> Result<Vec<Recorded>, StoreError>;

    /// Record `results` as [`finish_deliveries`](Self::finish_deliveries) does, then claim up
    /// to `limit` due deliveries as [`claim_deliveries`](Self::claim_deliveries) does — the
    /// outbox's one round trip per round. The default makes the two calls; a store that can
    /// do both in one transaction (one commit) should.
    async fn finish_and_claim(
        &self,
        lease: &Lease,
        now: SystemTime,
        results: &[DeliveryResult],
        limit: usize,
    ) -> Result<(Vec<Recorded>, Vec<Delivery>), StoreError> {
        let recorded = if results.is_empty() {
            Vec::new()
        } else {
            self.finish_deliveries(lease, now, results).await?
        };
        let claimed = if limit == 0 {
            Vec::new()
        } else {
            self.claim_deliveries(lease, now, limit).await?
        };
        Ok((recorded, claimed))
    }

    /// Put the failed deliveries of the latest change of each family back in the queue, due
    /// at `now` with their attempts reset (after the operator fixed what made them fail).
    /// Returns how many were requeued.
    async fn retry_failed(&self, lease: &Lease, now: SystemTime) -> Result<u64, StoreError>;

    /// When the next delivery is due for this lease holder (`None`: nothing to do).
    async fn next_delivery_at(&self, lease: &Lease) -> Result<Option<SystemTime>, StoreError>;

    /// The deliveries of a change, by id.
    async fn deliveries(&self, change_id: i64) -> Result<Vec<Delivery>, StoreError>;

    /// Deliveries per state.
    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError>;

    /// Where the deliveries of a change stand. The default reads all of them with
    /// [`deliveries`](Self::deliveries); a store should count them where they are and read
    /// only the unsent ones (a change has a row per recipient).
    async fn outcome(&self, change_id: i64) -> Result<ChangeOutcome, StoreError> {
        Ok(ChangeOutcome::of(self.deliveries(change_id).await?))
    }

    /// Acquire the lease for `ttl` from now on the store's clock, or renew it when `holder`
    /// has it. A new acquisition (free or expired lease) gets a fence higher than any before,
    /// also when the same holder acquires again after its lease lapsed; a renewal of a still
    /// valid lease keeps the fence. `None` when another holder's lease is still valid.
    async fn acquire_lease(
        &self,
        holder: &Holder,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError>;

    /// Give the lease up, if it is still this one.
    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError>;

    /// The lease valid now on the store's clock, if any.
    async fn lease(&self) -> Result<Option<Lease>, StoreError>;

    /// Write an instance's status row (insert or replace).
    async fn put_instance(&self, status: &InstanceStatus) -> Result<(), StoreError>;

    /// Every instance's status row, most recent heartbeat first.
    async fn instances(&self) -> Result<Vec<InstanceStatus>, StoreError>;

    /// The desired state (`Running` when never set).
    async fn desired_state(&self) -> Result<DesiredState, StoreError>;

    /// Set the desired state.
    async fn set_desired_state(&self, state: DesiredState) -> Result<(), StoreError>;

    /// Write an instance's status row, then read the desired state: what a running monitor
    /// does every heartbeat. The default makes the two calls; a store that can do both in
    /// one round trip should (an idle monitor's cost is mostly these round trips).
    async fn heartbeat(&self, status: &InstanceStatus) -> Result<DesiredState, StoreError> {
        self.put_instance(status).await?;
        self.desired_state().await
    }
}

macro_rules! forward_state_store {
    ($ty:ty) => {
        #[async_trait]
        impl<T: StateStore + ?Sized> StateStore for $ty {
            async fn current(&self, family: Family) -> Result<Option<CurrentAddress>, StoreError> {
                (**self).current(family).await
            }
            async fn record_change(
                &self,
                lease: &Lease,
                now: SystemTime,
                change: NewChange,
                recipients: &[Recipient],
            ) -> Result<Change, StoreError> {
                (**self).record_change(lease, now, change, recipients).await
            }
            async fn add_recipients(
                &self,
                lease: &Lease,
                now: SystemTime,
                change_id: i64,
                recipients: &[Recipient],
                only_if_announced: bool,
            ) -> Result<u64, StoreError> {
                (**self)
                    .add_recipients(lease, now, change_id, recipients, only_if_announced)
                    .await
            }
            async fn history(&self, limit: usize) -> Result<Vec<Change>, StoreError> {
                (**self).history(limit).await
            }
            async fn claim_deliveries(
                &self,
                lease: &Lease,
                now: SystemTime,
                limit: usize,
            ) -> Result<Vec<Delivery>, StoreError> {
                (**self).claim_deliveries(lease, now, limit).await
            }
            async fn finish_deliveries(
                &self,
                lease: &Lease,
                now: SystemTime,
                results: &[DeliveryResult],
            ) -> Result<Vec<Recorded>, StoreError> {
                (**self).finish_deliveries(lease, now, results).await
            }
            async fn finish_and_claim(
                &self,
                lease: &Lease,
                now: SystemTime,
                results: &[DeliveryResult],
                limit: usize,
            ) -> Result<(Vec<Recorded>, Vec<Delivery>), StoreError> {
                (**self).finish_and_claim(lease, now, results, limit).await
            }
            async fn retry_failed(
                &self,
                lease: &Lease,
                now: SystemTime,
            ) -> Result<u64, StoreError> {
                (**self).retry_failed(lease, now).await
            }
            async fn next_delivery_at(
                &self,
                lease: &Lease,
            ) -> Result<Option<SystemTime>, StoreError> {
                (**self).next_delivery_at(lease).await
            }
            async fn deliveries(&self, change_id: i64) -> Result<Vec<Delivery>, StoreError> {
                (**self).deliveries(change_id).await
            }
            async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
                (**self).delivery_counts().await
            }
            async fn outcome(&self, change_id: i64) -> Result<ChangeOutcome, StoreError> {
                (**self).outcome(change_id).await
            }
            async fn acquire_lease(
                &self,
                holder: &Holder,
                ttl: Duration,
            ) -> Result<Option<Lease>, StoreError> {
                (**self).acquire_lease(holder, ttl).await
            }
            async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
                (**self).release_lease(lease).await
            }
            async fn lease(&self) -> Result<Option<Lease>, StoreError> {
                (**self).lease().await
            }
            async fn put_instance(&self, status: &InstanceStatus) -> Result<(), StoreError> {
                (**self).put_instance(status).await
            }
            async fn instances(&self) -> Result<Vec<InstanceStatus>, StoreError> {
                (**self).instances().await
            }
            async fn desired_state(&self) -> Result<DesiredState, StoreError> {
                (**self).desired_state().await
            }
            async fn heartbeat(&self, status: &InstanceStatus) -> Result<DesiredState, StoreError> {
                (**self).heartbeat(status).await
            }
            async fn set_desired_state(&self, state: DesiredState) -> Result<(), StoreError> {
                (**self).set_desired_state(state).await
            }
        }
    };
}
forward_state_store!(Arc<T>);
forward_state_store!(Box<T>);
