//! The control and status rows: the desired state set from another process, and each
//! instance's status.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::SystemTime;

use super::{Holder, StoreError};
use crate::address::Family;

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
