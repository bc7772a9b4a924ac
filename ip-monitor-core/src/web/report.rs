//! Reports for people and programs, built once here for the `ip-monitor` binary and the
//! embedding examples: what the monitors on a store are doing ([`StatusReport`]), and, with
//! the `serde` feature, the JSON of both it and a [`CheckReport`](crate::CheckReport).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::address::Family;
use crate::store::{
    CurrentAddress, DeliveryCounts, DesiredState, Holder, InstanceStatus, Lease, RunState,
    StateStore, StoreError,
};

/// The state of one monitor instance, or of the monitors on a store as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverallState {
    /// Checking and sending.
    Running,
    /// Paused by `ip-monitor stop`: holding its lease, neither checking nor sending.
    Paused,
    /// Stopped and said so.
    Stopped,
    /// Its heartbeat is older than the lease's ttl without it having said it stopped: it
    /// crashed or is frozen.
    Stale,
    /// No instance ever wrote a status row to this store.
    NeverStarted,
}

impl OverallState {
    /// `running`, `paused`, `stopped`, `stale` or `never-started`.
    pub fn as_str(self) -> &'static str {
        match self {
            OverallState::Running => "running",
            OverallState::Paused => "paused",
            OverallState::Stopped => "stopped",
            OverallState::Stale => "stale",
            OverallState::NeverStarted => "never-started",
        }
    }

    /// An instance's state from its status row: stale when it is not stopped and its
    /// heartbeat is older than `lease_ttl` at `now`.
    pub fn of(row: &InstanceStatus, now: SystemTime, lease_ttl: Duration) -> OverallState {
        let beating = now
            .duration_since(row.heartbeat_at)
            .map_or(true, |age| age <= lease_ttl);
        match row.state {
            RunState::Stopped => OverallState::Stopped,
            _ if !beating => OverallState::Stale,
            RunState::Paused => OverallState::Paused,
            RunState::Running => OverallState::Running,
        }
    }
}

impl std::fmt::Display for OverallState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One instance in a [`StatusReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceReport {
    /// Who.
    pub holder: Holder,
    /// Its state, `stale` included.
    pub state: OverallState,
    /// Whether it holds the valid lease.
    pub leader: bool,
    /// When it started.
    pub started_at: SystemTime,
    /// When it last wrote its status row.
    pub heartbeat_at: SystemTime,
}

/// What the monitors using a store are doing, read from the store: the leader, every
/// instance, the current addresses, the last check and each source's answer, the
/// deliveries per state.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    /// The state of the instance the report is read from ([`main`](Self::main)).
    pub state: OverallState,
    /// What the operator asked for (`ip-monitor stop` / `start`).
    pub desired: DesiredState,
    /// The valid lease, if any.
    pub leader: Option<Lease>,
    /// Every instance, most recent heartbeat first.
    pub instances: Vec<InstanceReport>,
    /// The current address of each family that has one.
    pub current: Vec<CurrentAddress>,
    /// The status row of the leader; without a leader, of a live instance; else the most
    /// recent one.
    pub main: Option<InstanceStatus>,
    /// Deliveries per state.
    pub deliveries: DeliveryCounts,
}

impl StatusReport {
    /// Read the report from `store`; instances whose heartbeat is older than `lease_ttl` at
    /// `now` are stale.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use ip_monitor_core::{MemoryStore, MonitorConfig, OverallState, StatusReport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ip_monitor_core::StoreError> {
    /// let store = MemoryStore::new();
    /// let ttl = MonitorConfig::default().effective_lease_ttl();
    /// let report = StatusReport::read(&store, ttl, SystemTime::now()).await?;
    /// assert_eq!(report.state, OverallState::NeverStarted);
    /// assert!(report.leader.is_none() && report.current.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn read(
        store: &dyn StateStore,
        lease_ttl: Duration,
        now: SystemTime,
    ) -> Result<StatusReport, StoreError> {
        let rows = store.instances().await?;
        let leader = store.lease().await?;
        let desired = store.desired_state().await?;
        let deliveries = store.delivery_counts().await?;
        let mut current = Vec::new();
        for family in [Family::V4, Family::V6] {
            current.extend(store.current(family).await?);
        }
        let is_leader = |row: &InstanceStatus| {
            leader
                .as_ref()
                .is_some_and(|l| l.holder.id == row.holder.id)
        };
        let live = |row: &&InstanceStatus| {
            !matches!(
                OverallState::of(row, now, lease_ttl),
                OverallState::Stopped | OverallState::Stale
            )
        };
        let main = rows
            .iter()
            .find(|r| is_leader(r))
            .or_else(|| rows.iter().find(live))
            .or(rows.first())
            .cloned();
        let state = main.as_ref().map_or(OverallState::NeverStarted, |row| {
            OverallState::of(row, now, lease_ttl)
        });
        let instances = rows
            .iter()
            .map(|r| InstanceReport {
                holder: r.holder.clone(),
                state: OverallState::of(r, now, lease_ttl),
                leader: is_leader(r),
                started_at: r.started_at,
                heartbeat_at: r.heartbeat_at,
            })
            .collect();
        Ok(StatusReport {
            state,
            desired,
            leader,
            instances,
            current,
            main,
            deliveries,
        })
    }
}

/// `t` in RFC 3339, UTC, to the second: `2026-11-26T16:03:16Z` (times before 1970 as 1970).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
/// assert_eq!(ip_monitor_core::report::rfc3339(t), "2000-02-29T00:00:00Z");
/// ```
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian), counting in 400-year
    // eras from 0000-03-01 so that leap days fall at the end of each year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(feature = "serde")]
mod json {
    //! The JSON of the reports: the shape `ip-monitor status --json` and `check --json`
    //! print, times in RFC 3339.

    use std::collections::BTreeMap;
    use std::net::IpAddr;

    use serde::Serialize;
    use serde::ser::{SerializeMap, Serializer};

    use super::{StatusReport, rfc3339};
    use crate::address::Family;
    use crate::monitor::CheckReport;

    #[derive(Serialize)]
    struct Leader<'a> {
        id: &'a str,
        host: &'a str,
        pid: u32,
        fence: u64,
        expires_at: String,
    }

    #[derive(Serialize)]
    struct Instance<'a> {
        id: &'a str,
        host: &'a str,
        pid: u32,
        state: &'static str,
        leader: bool,
        started_at: String,
        heartbeat_at: String,
    }

    #[derive(Serialize)]
    struct Current {
        address: IpAddr,
        since: String,
        change_id: i64,
    }

    #[derive(Serialize)]
    struct Source<'a> {
        name: &'a str,
        family: Family,
        answer: Option<IpAddr>,
        error: Option<&'a str>,
        latency_ms: Option<u64>,
        at: String,
    }

    impl Serialize for StatusReport {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let main = self.main.as_ref();
            let mut m = serializer.serialize_map(Some(12))?;
            m.serialize_entry("state", self.state.as_str())?;
            m.serialize_entry("desired", self.desired.as_str())?;
            m.serialize_entry(
                "leader",
                &self.leader.as_ref().map(|l| Leader {
                    id: &l.holder.id,
                    host: &l.holder.host,
                    pid: l.holder.pid,
                    fence: l.fence,
                    expires_at: rfc3339(l.expires_at),
                }),
            )?;
            let instances: Vec<Instance<'_>> = self
                .instances
                .iter()
                .map(|i| Instance {
                    id: &i.holder.id,
                    host: &i.holder.host,
                    pid: i.holder.pid,
                    state: i.state.as_str(),
                    leader: i.leader,
                    started_at: rfc3339(i.started_at),
                    heartbeat_at: rfc3339(i.heartbeat_at),
                })
                .collect();
            m.serialize_entry("instances", &instances)?;
            let current: BTreeMap<&str, Current> = self
                .current
                .iter()
                .map(|c| {
                    let entry = Current {
                        address: c.address,
                        since: rfc3339(c.since),
                        change_id: c.change_id,
                    };
                    (c.family.as_str(), entry)
                })
                .collect();
            m.serialize_entry("current", &current)?;
            m.serialize_entry(
                "last_check",
                &main.and_then(|r| r.last_check_at).map(rfc3339),
            )?;
            m.serialize_entry(
                "next_check",
                &main.and_then(|r| r.next_check_at).map(rfc3339),
            )?;
            m.serialize_entry("last_error", &main.and_then(|r| r.last_error.as_deref()))?;
            m.serialize_entry(
                "delivery_error",
                &main.and_then(|r| r.delivery_error.as_deref()),
            )?;
            let sources: Vec<Source<'_>> = main
                .map(|r| {
                    r.sources
                        .iter()
                        .map(|s| Source {
                            name: &s.name,
                            family: s.family,
                            answer: s.answer,
                            error: s.error.as_deref(),
                            latency_ms: s.latency_ms,
                            at: rfc3339(s.at),
                        })
                        .collect()
                })
                .unwrap_or_default();
            m.serialize_entry("sources", &sources)?;
            m.serialize_entry("sent_via", &main.map(|r| &r.sent_via))?;
            m.serialize_entry("deliveries", &self.deliveries)?;
            m.end()
        }
    }

    #[derive(Serialize)]
    struct Change<'a> {
        id: i64,
        url: &'a str,
        deliveries: u64,
    }

    #[derive(Serialize)]
    struct Confirming {
        seen: u32,
        needed: u32,
    }

    #[derive(Serialize)]
    struct Answer<'a> {
        name: &'a str,
        answer: Option<IpAddr>,
        error: Option<String>,
        latency_ms: Option<u64>,
    }

    impl Serialize for CheckReport {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut m = serializer.serialize_map(Some(9))?;
            m.serialize_entry("family", &self.outcome.family)?;
            m.serialize_entry("address", &self.outcome.result.as_ref().ok())?;
            m.serialize_entry("previous", &self.previous)?;
            m.serialize_entry("changed", &self.change.is_some())?;
            m.serialize_entry(
                "change",
                &self.change.as_ref().map(|c| Change {
                    id: c.id,
                    url: &c.url,
                    deliveries: c.deliveries,
                }),
            )?;
            m.serialize_entry(
                "confirming",
                &self
                    .confirming
                    .map(|(seen, needed)| Confirming { seen, needed }),
            )?;
            m.serialize_entry("error", &self.error.as_ref().map(ToString::to_string))?;
            m.serialize_entry("elapsed_ms", &(self.outcome.elapsed.as_millis() as u64))?;
            let sources: Vec<Answer<'_>> = self
                .outcome
                .reports
                .iter()
                .map(|s| Answer {
                    name: &s.source,
                    answer: s.result.as_ref().and_then(|r| r.as_ref().ok().copied()),
                    error: match &s.result {
                        Some(Err(e)) => Some(e.to_string()),
                        Some(Ok(_)) => None,
                        None => Some("not awaited".to_owned()),
                    },
                    latency_ms: s.latency.map(|l| l.as_millis() as u64),
                })
                .collect();
            m.serialize_entry("sources", &sources)?;
            m.end()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, RunState};

    fn row(id: &str, state: RunState, heartbeat_at: SystemTime) -> InstanceStatus {
        InstanceStatus {
            holder: Holder {
                id: id.to_owned(),
                host: "h".to_owned(),
                pid: 1,
            },
            state,
            leader: false,
            started_at: UNIX_EPOCH,
            heartbeat_at,
            current: Vec::new(),
            last_check_at: None,
            next_check_at: None,
            last_error: None,
            delivery_error: None,
            sent_via: Default::default(),
            sources: Vec::new(),
        }
    }

    /// The report's state is the leader's, else a live instance's, else the latest one's;
    /// an instance whose heartbeat is older than the ttl without having stopped is stale.
    #[tokio::test]
    async fn the_state_is_read_from_the_leader_then_a_live_instance() {
        let store = MemoryStore::new();
        let ttl = Duration::from_secs(30);
        let now = SystemTime::now();
        let report = StatusReport::read(&store, ttl, now).await.unwrap();
        assert_eq!(report.state, OverallState::NeverStarted);

        let old = now - Duration::from_secs(600);
        store
            .put_instance(&row("crashed", RunState::Running, old))
            .await
            .unwrap();
        let report = StatusReport::read(&store, ttl, now).await.unwrap();
        assert_eq!(report.state, OverallState::Stale);

        store
            .put_instance(&row("paused", RunState::Paused, now))
            .await
            .unwrap();
        let report = StatusReport::read(&store, ttl, now).await.unwrap();
        assert_eq!(report.state, OverallState::Paused, "a live one wins");
        let states: Vec<_> = report.instances.iter().map(|i| i.state).collect();
        assert_eq!(states, [OverallState::Paused, OverallState::Stale]);

        let lease = store
            .acquire_lease(&row("crashed", RunState::Running, now).holder, ttl)
            .await
            .unwrap()
            .unwrap();
        let report = StatusReport::read(&store, ttl, now).await.unwrap();
        assert_eq!(report.state, OverallState::Stale, "the leader's row first");
        assert!(report.instances[1].leader && !report.instances[0].leader);
        store.release_lease(&lease).await.unwrap();
        store
            .put_instance(&row("paused", RunState::Stopped, now))
            .await
            .unwrap();
        let report = StatusReport::read(&store, ttl, now).await.unwrap();
        assert_eq!(
            report.state,
            OverallState::Stopped,
            "no live one: the latest row"
        );
    }

    #[test]
    fn times_are_written_in_rfc_3339() {
        let at = |secs: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(at(1_795_708_996), "2026-11-26T16:03:16Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
