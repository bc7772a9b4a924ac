//! Rows as stored, and their conversion to and from core's types.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::prelude::*;
use ip_monitor_core::{
    Change, ChangeKind, CurrentAddress, Delivery, DeliveryState, Family, Holder, Lease, Recipient,
    RecipientKind, StoreError,
};

use crate::schema::*;

pub(crate) fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

pub(crate) fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn invalid(what: String) -> StoreError {
    StoreError::Invalid { what }
}

fn parse_ip(s: &str) -> Result<IpAddr, StoreError> {
    s.parse().map_err(|_| invalid(format!("address {s:?}")))
}

fn parse_family(s: &str) -> Result<Family, StoreError> {
    s.parse().map_err(|_| invalid(format!("family {s:?}")))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ip_monitor_changes)]
pub(crate) struct ChangeRow {
    pub(crate) id: i64,
    pub(crate) family: String,
    pub(crate) address: String,
    pub(crate) previous: Option<String>,
    pub(crate) url: String,
    pub(crate) kind: String,
    pub(crate) detected_at_ms: i64,
    pub(crate) deliveries: i64,
}

impl ChangeRow {
    pub(crate) fn into_change(self) -> Result<Change, StoreError> {
        Ok(Change {
            id: self.id,
            family: parse_family(&self.family)?,
            address: parse_ip(&self.address)?,
            previous: self.previous.as_deref().map(parse_ip).transpose()?,
            url: self.url,
            kind: self.kind.parse()?,
            detected_at: from_ms(self.detected_at_ms),
            deliveries: u64::try_from(self.deliveries).unwrap_or(0),
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = ip_monitor_changes)]
pub(crate) struct NewChangeRow<'a> {
    pub(crate) family: &'a str,
    pub(crate) address: String,
    pub(crate) previous: Option<String>,
    pub(crate) url: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) detected_at_ms: i64,
    pub(crate) deliveries: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ip_monitor_current)]
pub(crate) struct CurrentRow {
    pub(crate) family: String,
    pub(crate) address: String,
    pub(crate) since_ms: i64,
    pub(crate) change_id: i64,
}

impl CurrentRow {
    pub(crate) fn into_current(self) -> Result<CurrentAddress, StoreError> {
        Ok(CurrentAddress {
            family: parse_family(&self.family)?,
            address: parse_ip(&self.address)?,
            since: from_ms(self.since_ms),
            change_id: self.change_id,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ip_monitor_deliveries)]
pub(crate) struct DeliveryRow {
    pub(crate) id: i64,
    pub(crate) change_id: i64,
    pub(crate) change_kind: String,
    pub(crate) address: String,
    pub(crate) url: String,
    pub(crate) email: String,
    pub(crate) name: Option<String>,
    pub(crate) state: String,
    pub(crate) attempts: i32,
    pub(crate) created_at_ms: i64,
    pub(crate) next_attempt_at_ms: i64,
    pub(crate) last_error: Option<String>,
    pub(crate) sent_at_ms: Option<i64>,
    pub(crate) fence: Option<i64>,
    pub(crate) recipient_kind: String,
}

impl DeliveryRow {
    pub(crate) fn into_delivery(self) -> Result<Delivery, StoreError> {
        let kind = self
            .recipient_kind
            .parse::<RecipientKind>()
            .map_err(|e| invalid(format!("delivery {}: {e}", self.id)))?;
        let recipient = Recipient::stored(kind, &self.email, self.name.as_deref())
            .map_err(|e| invalid(format!("delivery {}: {e}", self.id)))?;
        Ok(Delivery {
            id: self.id,
            change_id: self.change_id,
            address: parse_ip(&self.address)?,
            url: self.url,
            kind: self.change_kind.parse::<ChangeKind>()?,
            recipient,
            state: self.state.parse::<DeliveryState>()?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            created_at: from_ms(self.created_at_ms),
            next_attempt_at: from_ms(self.next_attempt_at_ms),
            last_error: self.last_error,
            sent_at: self.sent_at_ms.map(from_ms),
            fence: self.fence.map(|f| u64::try_from(f).unwrap_or(0)),
        })
    }
}

/// A delivery row for SQLite's multi-row insert (PostgreSQL inserts them as arrays).
#[cfg(feature = "sqlite")]
#[derive(Insertable)]
#[diesel(table_name = ip_monitor_deliveries)]
pub(crate) struct NewDeliveryRow<'a> {
    pub(crate) change_id: i64,
    pub(crate) family: &'a str,
    pub(crate) change_kind: &'a str,
    pub(crate) address: &'a str,
    pub(crate) url: &'a str,
    pub(crate) email: &'a str,
    pub(crate) email_key: &'a str,
    pub(crate) name: Option<&'a str>,
    pub(crate) recipient_kind: &'a str,
    pub(crate) state: &'a str,
    pub(crate) attempts: i32,
    pub(crate) created_at_ms: i64,
    pub(crate) next_attempt_at_ms: i64,
}

/// A change's pending delivery rows, by column: what the rows share once, what differs per
/// recipient as lists in the recipients' order.
pub(crate) struct NewDeliveries<'a> {
    pub(crate) change_id: i64,
    pub(crate) family: &'a str,
    pub(crate) change_kind: &'a str,
    pub(crate) address: &'a str,
    pub(crate) url: &'a str,
    pub(crate) now_ms: i64,
    pub(crate) emails: Vec<&'a str>,
    pub(crate) keys: Vec<String>,
    pub(crate) names: Vec<Option<&'a str>>,
    /// Each recipient's [`RecipientKind`], as stored.
    pub(crate) kinds: Vec<&'static str>,
}

#[cfg(feature = "sqlite")]
impl NewDeliveries<'_> {
    /// One row per recipient, for a multi-row insert.
    pub(crate) fn rows(&self) -> Vec<NewDeliveryRow<'_>> {
        self.emails
            .iter()
            .zip(&self.keys)
            .zip(&self.names)
            .zip(&self.kinds)
            .map(|(((email, key), name), kind)| NewDeliveryRow {
                change_id: self.change_id,
                family: self.family,
                change_kind: self.change_kind,
                address: self.address,
                url: self.url,
                email,
                email_key: key,
                name: *name,
                recipient_kind: kind,
                state: DeliveryState::Pending.as_str(),
                attempts: 0,
                created_at_ms: self.now_ms,
                next_attempt_at_ms: self.now_ms,
            })
            .collect()
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ip_monitor_control)]
pub(crate) struct ControlRow {
    pub(crate) lease_holder: Option<String>,
    pub(crate) lease_host: Option<String>,
    pub(crate) lease_pid: Option<i64>,
    pub(crate) lease_fence: i64,
    pub(crate) lease_acquired_at_ms: i64,
    pub(crate) lease_expires_at_ms: i64,
}

impl ControlRow {
    /// The lease in the row, valid or not.
    pub(crate) fn lease(&self) -> Option<Lease> {
        Some(Lease {
            holder: Holder {
                id: self.lease_holder.clone()?,
                host: self.lease_host.clone().unwrap_or_default(),
                pid: self
                    .lease_pid
                    .and_then(|p| u32::try_from(p).ok())
                    .unwrap_or(0),
            },
            fence: u64::try_from(self.lease_fence).unwrap_or(0),
            acquired_at: from_ms(self.lease_acquired_at_ms),
            expires_at: from_ms(self.lease_expires_at_ms),
        })
    }
}
