//! What the store keeps of changes and their deliveries: the current address, the history,
//! the outbox's rows and the results written back to them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::SystemTime;

use super::StoreError;
use crate::address::Family;
use crate::recipients::Recipient;

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
    /// The route was busy (the relay throttled the sending): try again at `at`, and the
    /// attempt does not count (`attempts` goes back to what it was before the claim), so
    /// the recipient's backoff is not lengthened by the relay's limits.
    Deferred {
        /// When to try again.
        at: SystemTime,
        /// What the relay said.
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
