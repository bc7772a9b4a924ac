//! Changes: the current address, recording a change with its deliveries, new recipients,
//! the history.

use std::collections::HashSet;
use std::time::SystemTime;

use diesel::prelude::*;
use ip_monitor_core::{
    Change, ChangeKind, CurrentAddress, DeliveryState, Family, Lease, NewChange, Recipient,
    StoreError,
};

use super::*;
use crate::model::*;
use crate::schema::{
    ip_monitor_changes as changes, ip_monitor_current as current,
    ip_monitor_deliveries as deliveries,
};

pub(crate) fn current(
    conn: &mut Conn,
    family: Family,
) -> Result<Option<CurrentAddress>, StoreError> {
    let row = current::table
        .find(family.as_str())
        .select(CurrentRow::as_select())
        .get_result(conn)
        .optional()
        .map_err(db_error)?;
    row.map(CurrentRow::into_current).transpose()
}

pub(crate) fn record_change(
    conn: &mut Conn,
    lease: Lease,
    now: SystemTime,
    change: NewChange,
    recipients: Vec<Recipient>,
) -> Result<Change, StoreError> {
    finish(conn.transaction(|conn| {
        fence(conn, &lease)?;
        let now_ms = to_ms(now);
        let family = change.family.as_str();
        let kind = change.kind.as_str();
        let distinct = distinct(&recipients);
        if change.kind == ChangeKind::Change {
            diesel::update(deliveries::table)
                .filter(deliveries::family.eq(family))
                .filter(deliveries::change_kind.eq(ChangeKind::Change.as_str()))
                .filter(deliveries::state.eq_any([
                    DeliveryState::Pending.as_str(),
                    DeliveryState::InFlight.as_str(),
                ]))
                .set(deliveries::state.eq(DeliveryState::Superseded.as_str()))
                .execute(conn)?;
        }
        let row: ChangeRow = diesel::insert_into(changes::table)
            .values(NewChangeRow {
                family,
                address: change.address.to_string(),
                previous: change.previous.map(|p| p.to_string()),
                url: &change.url,
                kind,
                detected_at_ms: now_ms,
                deliveries: distinct.len() as i64,
            })
            .returning(columns::<ChangeRow>())
            .get_result(conn)?;
        if change.kind == ChangeKind::Change {
            let values = (
                current::family.eq(family),
                current::address.eq(&row.address),
                current::since_ms.eq(now_ms),
                current::change_id.eq(row.id),
            );
            let updated = diesel::update(current::table.find(family))
                .set((
                    current::address.eq(&row.address),
                    current::since_ms.eq(now_ms),
                    current::change_id.eq(row.id),
                ))
                .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(current::table)
                    .values(values)
                    .execute(conn)?;
            }
        }
        insert_pending(conn, &row, now_ms, &distinct)?;
        Ok(row.into_change()?)
    }))
}

/// Each recipient once, the first of those with the same address key.
fn distinct(recipients: &[Recipient]) -> Vec<&Recipient> {
    let mut seen = HashSet::new();
    recipients.iter().filter(|r| seen.insert(r.key())).collect()
}

/// A pending delivery of `change`, due at `now_ms`, for each of `recipients` (distinct)
/// who has none for it yet: on PostgreSQL one statement of arrays, on SQLite multi-row
/// inserts of up to [`INSERT_CHUNK`] rows. How many rows were inserted.
fn insert_pending(
    conn: &mut Conn,
    change: &ChangeRow,
    now_ms: i64,
    recipients: &[&Recipient],
) -> DbResult<usize> {
    let deliveries = &NewDeliveries {
        change_id: change.id,
        family: &change.family,
        change_kind: &change.kind,
        address: &change.address,
        url: &change.url,
        now_ms,
        emails: recipients.iter().map(|r| r.email()).collect(),
        keys: recipients.iter().map(|r| r.key()).collect(),
        names: recipients.iter().map(|r| r.name()).collect(),
        kinds: recipients.iter().map(|r| r.kind().as_str()).collect(),
    };
    #[cfg(feature = "postgres")]
    #[allow(irrefutable_let_patterns)] // PostgreSQL alone
    if let AnyConnection::Pg(pg) = conn {
        return Ok(crate::pg_batch::insert_deliveries(pg, deliveries)?);
    }
    #[cfg(feature = "sqlite")]
    if let Some(sqlite) = conn.sqlite() {
        let mut inserted = 0;
        for chunk in deliveries.rows().chunks(INSERT_CHUNK) {
            inserted += diesel::insert_or_ignore_into(deliveries::table)
                .values(chunk)
                .execute(sqlite)?;
        }
        return Ok(inserted);
    }
    unreachable!("a connection of a backend compiled in")
}

pub(crate) fn add_recipients(
    conn: &mut Conn,
    lease: Lease,
    now: SystemTime,
    change_id: i64,
    recipients: Vec<Recipient>,
    only_if_announced: bool,
) -> Result<u64, StoreError> {
    finish(conn.transaction(|conn| {
        fence(conn, &lease)?;
        let Some(change) = changes::table
            .find(change_id)
            .select(ChangeRow::as_select())
            .get_result(conn)
            .optional()?
        else {
            return Ok(0);
        };
        let is_current = current::table
            .find(&change.family)
            .select(current::change_id)
            .get_result::<i64>(conn)
            .optional()?
            == Some(change_id);
        if !is_current || change.kind != ChangeKind::Change.as_str() {
            return Ok(0);
        }
        if only_if_announced {
            let announced: bool = diesel::select(diesel::dsl::exists(
                deliveries::table.filter(deliveries::change_id.eq(change_id)),
            ))
            .get_result(conn)?;
            if !announced {
                return Ok(0);
            }
        }
        let added = insert_pending(conn, &change, to_ms(now), &distinct(&recipients))? as i64;
        if added > 0 {
            diesel::update(changes::table.find(change_id))
                .set(changes::deliveries.eq(changes::deliveries + added))
                .execute(conn)?;
        }
        Ok(added as u64)
    }))
}

pub(crate) fn history(conn: &mut Conn, limit: usize) -> Result<Vec<Change>, StoreError> {
    changes::table
        .order(changes::id.desc())
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .select(ChangeRow::as_select())
        .load(conn)
        .map_err(db_error)?
        .into_iter()
        .map(ChangeRow::into_change)
        .collect()
}
