//! The outbox: claiming, recording results, requeuing, reading deliveries and counts.

use std::collections::HashSet;
use std::time::SystemTime;

use diesel::prelude::*;
use ip_monitor_core::{
    ChangeKind, ChangeOutcome, Delivery, DeliveryCounts, DeliveryResult, DeliveryState,
    DeliveryUpdate, Lease, Recorded, StoreError,
};

use super::*;
use crate::model::*;
use crate::schema::{ip_monitor_changes as changes, ip_monitor_deliveries as deliveries};

pub(crate) fn claim(
    conn: &mut Conn,
    lease: Lease,
    now: SystemTime,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    finish(conn.transaction(|conn| {
        fence(conn, &lease)?;
        claim_rows(conn, &lease, now, limit)
    }))
}

/// Record `results` and claim up to `limit` more: one transaction, one commit.
pub(crate) fn finish_and_claim(
    conn: &mut Conn,
    lease: Lease,
    now: SystemTime,
    results: Vec<DeliveryResult>,
    limit: usize,
) -> Result<(Vec<Recorded>, Vec<Delivery>), StoreError> {
    #[cfg(feature = "postgres")]
    if let AnyConnection::Pg(pg) = conn
        && crate::pg_batch::applies(&lease, &results)
    {
        let (recorded, rows) = finish(crate::pg_batch::finish_and_claim(
            pg, &lease, now, &results, limit,
        ))?;
        return Ok((recorded, finish(claimed(conn, rows))?));
    }
    finish(conn.transaction(|conn| {
        fence(conn, &lease)?;
        let recorded = record_results(conn, now, results)?;
        let claimed = claim_rows(conn, &lease, now, limit)?;
        Ok((recorded, claimed))
    }))
}

/// Claim inside a fenced transaction: orphans of an older fence first, then
/// pending ones by due time.
fn claim_rows(
    conn: &mut Conn,
    lease: &Lease,
    now: SystemTime,
    limit: usize,
) -> DbResult<Vec<Delivery>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let fence_value = lease.fence as i64;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Two index range scans rather than one scan for an OR, each in the order of
    // the (state, next_attempt_at_ms, id) index: ordered by id alone, PostgreSQL
    // walks the primary key through every row to find a few in flight.
    let mut ids: Vec<i64> = deliveries::table
        .filter(deliveries::state.eq(DeliveryState::InFlight.as_str()))
        .filter(deliveries::fence.ne(fence_value))
        .order((deliveries::next_attempt_at_ms, deliveries::id))
        .limit(limit)
        .select(deliveries::id)
        .load(conn)?;
    let room = limit - ids.len() as i64;
    if room > 0 {
        ids.extend(
            deliveries::table
                .filter(deliveries::state.eq(DeliveryState::Pending.as_str()))
                .filter(deliveries::next_attempt_at_ms.le(to_ms(now)))
                .order((deliveries::next_attempt_at_ms, deliveries::id))
                .limit(room)
                .select(deliveries::id)
                .load::<i64>(conn)?,
        );
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
        .set((
            deliveries::state.eq(DeliveryState::InFlight.as_str()),
            deliveries::fence.eq(fence_value),
            deliveries::attempts.eq(deliveries::attempts + 1),
        ))
        .returning(columns::<DeliveryRow>())
        .get_results::<DeliveryRow>(conn)?;
    claimed(conn, rows)
}

/// The claimed rows as deliveries, in due order.
fn claimed(conn: &mut Conn, rows: Vec<DeliveryRow>) -> DbResult<Vec<Delivery>> {
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.id;
        match row.into_delivery() {
            Ok(d) => claimed.push(d),
            // A row that cannot be read would be claimed again and again: fail
            // it with the reason and carry on with the others.
            Err(e) => {
                diesel::update(deliveries::table.find(id))
                    .set((
                        deliveries::state.eq(DeliveryState::Failed.as_str()),
                        deliveries::last_error.eq(Some(format!("unreadable delivery row: {e}"))),
                    ))
                    .execute(conn)?;
            }
        }
    }
    claimed.sort_by_key(|d| (d.next_attempt_at, d.id));
    Ok(claimed)
}

pub(crate) fn finish_deliveries(
    conn: &mut Conn,
    lease: Lease,
    now: SystemTime,
    results: Vec<DeliveryResult>,
) -> Result<Vec<Recorded>, StoreError> {
    finish(conn.transaction(|conn| {
        fence(conn, &lease)?;
        record_results(conn, now, results)
    }))
}

/// Write each result while its row is still out under the fence it answers.
/// `Sent` results — nearly all of them — go in one statement per fence.
fn record_results(
    conn: &mut Conn,
    now: SystemTime,
    results: Vec<DeliveryResult>,
) -> DbResult<Vec<Recorded>> {
    let mut recorded = vec![Recorded::Stale; results.len()];
    let mut sent: Vec<(u64, Vec<(usize, i64)>)> = Vec::new();
    for (i, r) in results.iter().enumerate() {
        if r.update == DeliveryUpdate::Sent {
            match sent.iter_mut().find(|(f, _)| *f == r.fence) {
                Some((_, v)) => v.push((i, r.id)),
                None => sent.push((r.fence, vec![(i, r.id)])),
            }
        }
    }
    record_sent(conn, now, sent, &mut recorded)?;
    record_others(conn, results, &mut recorded)?;
    Ok(recorded)
}

/// The `Sent` results, grouped by fence: one statement per group on PostgreSQL, one
/// prepared statement run per row on SQLite.
fn record_sent(
    conn: &mut Conn,
    now: SystemTime,
    sent: Vec<(u64, Vec<(usize, i64)>)>,
    recorded: &mut [Recorded],
) -> DbResult<()> {
    let in_flight = DeliveryState::InFlight.as_str();
    let superseded = DeliveryState::Superseded.as_str();
    let out = deliveries::state
        .eq(in_flight)
        .or(deliveries::state.eq(superseded));
    let done = (
        deliveries::state.eq(DeliveryState::Sent.as_str()),
        deliveries::sent_at_ms.eq(Some(to_ms(now))),
        deliveries::last_error.eq(None::<String>),
    );
    for (fence_value, items) in sent {
        if is_sqlite(conn) {
            // SQLite runs a prepared statement for a few microseconds and parses a new one
            // for tens: one prepared statement, run once per row, rather than a statement
            // for each batch's list of ids. PostgreSQL takes the list as one array parameter.
            for (i, id) in items {
                let n = diesel::update(deliveries::table.find(id))
                    .filter(deliveries::fence.eq(fence_value as i64))
                    .filter(out)
                    .set(done.clone())
                    .execute(conn)?;
                if n == 1 {
                    recorded[i] = Recorded::Applied;
                }
            }
            continue;
        }
        for chunk in items.chunks(INSERT_CHUNK) {
            let ids: Vec<i64> = chunk.iter().map(|(_, id)| *id).collect();
            let applied: HashSet<i64> = diesel::update(
                deliveries::table
                    .filter(deliveries::id.eq_any(&ids))
                    .filter(deliveries::fence.eq(fence_value as i64))
                    .filter(out),
            )
            .set(done.clone())
            .returning(deliveries::id)
            .get_results::<i64>(conn)?
            .into_iter()
            .collect();
            let mut seen = HashSet::new();
            for (i, id) in chunk {
                // The same row twice in one batch: only the first applies.
                if applied.contains(id) && seen.insert(*id) {
                    recorded[*i] = Recorded::Applied;
                }
            }
        }
    }
    Ok(())
}

/// The other results (retry, failed), one statement each.
fn record_others(
    conn: &mut Conn,
    results: Vec<DeliveryResult>,
    recorded: &mut [Recorded],
) -> DbResult<()> {
    let in_flight = DeliveryState::InFlight.as_str();
    for (i, r) in results.into_iter().enumerate() {
        let target = deliveries::table
            .filter(deliveries::id.eq(r.id))
            .filter(deliveries::fence.eq(r.fence as i64));
        let n = match r.update {
            DeliveryUpdate::Sent => continue,
            DeliveryUpdate::Retry { at, error } => {
                let n = diesel::update(target)
                    .filter(deliveries::state.eq(in_flight))
                    .set((
                        deliveries::state.eq(DeliveryState::Pending.as_str()),
                        deliveries::next_attempt_at_ms.eq(to_ms(at)),
                        deliveries::last_error.eq(Some(&error)),
                    ))
                    .execute(conn)?;
                if n == 0 {
                    note_superseded(conn, r.id, r.fence, &error)?
                } else {
                    n
                }
            }
            DeliveryUpdate::Deferred { at, error } => {
                let n = diesel::update(target)
                    .filter(deliveries::state.eq(in_flight))
                    .set((
                        deliveries::state.eq(DeliveryState::Pending.as_str()),
                        deliveries::next_attempt_at_ms.eq(to_ms(at)),
                        deliveries::attempts.eq(deliveries::attempts - 1),
                        deliveries::last_error.eq(Some(&error)),
                    ))
                    .execute(conn)?;
                if n == 0 {
                    note_superseded(conn, r.id, r.fence, &error)?
                } else {
                    n
                }
            }
            DeliveryUpdate::Failed { error } => {
                let n = diesel::update(target)
                    .filter(deliveries::state.eq(in_flight))
                    .set((
                        deliveries::state.eq(DeliveryState::Failed.as_str()),
                        deliveries::last_error.eq(Some(&error)),
                    ))
                    .execute(conn)?;
                if n == 0 {
                    note_superseded(conn, r.id, r.fence, &error)?
                } else {
                    n
                }
            }
        };
        if n == 1 {
            recorded[i] = Recorded::Applied;
        }
    }
    Ok(())
}

/// A failure of a delivery superseded while it was out: it stays superseded;
/// only the error is kept.
fn note_superseded(conn: &mut Conn, id: i64, fence: u64, error: &str) -> DbResult<usize> {
    Ok(diesel::update(
        deliveries::table
            .filter(deliveries::id.eq(id))
            .filter(deliveries::fence.eq(fence as i64))
            .filter(deliveries::state.eq(DeliveryState::Superseded.as_str())),
    )
    .set(deliveries::last_error.eq(Some(error)))
    .execute(conn)?)
}

pub(crate) fn retry_failed(
    conn: &mut Conn,
    lease: Lease,
    now: SystemTime,
) -> Result<u64, StoreError> {
    finish(conn.transaction(|conn| {
        fence(conn, &lease)?;
        let latest: Vec<Option<i64>> = changes::table
            .filter(changes::kind.eq(ChangeKind::Change.as_str()))
            .group_by(changes::family)
            .select(diesel::dsl::max(changes::id))
            .load(conn)?;
        let latest: Vec<i64> = latest.into_iter().flatten().collect();
        let n = diesel::update(
            deliveries::table
                .filter(deliveries::change_id.eq_any(&latest))
                .filter(deliveries::state.eq(DeliveryState::Failed.as_str())),
        )
        .set((
            deliveries::state.eq(DeliveryState::Pending.as_str()),
            deliveries::attempts.eq(0),
            deliveries::next_attempt_at_ms.eq(to_ms(now)),
        ))
        .execute(conn)?;
        Ok(n as u64)
    }))
}

pub(crate) fn next_delivery_at(
    conn: &mut Conn,
    lease: Lease,
) -> Result<Option<SystemTime>, StoreError> {
    let orphan: bool = diesel::select(diesel::dsl::exists(
        deliveries::table
            .filter(deliveries::state.eq(DeliveryState::InFlight.as_str()))
            .filter(deliveries::fence.ne(lease.fence as i64)),
    ))
    .get_result(conn)
    .map_err(db_error)?;
    if orphan {
        return Ok(Some(SystemTime::UNIX_EPOCH));
    }
    let next: Option<i64> = deliveries::table
        .filter(deliveries::state.eq(DeliveryState::Pending.as_str()))
        .select(diesel::dsl::min(deliveries::next_attempt_at_ms))
        .get_result(conn)
        .map_err(db_error)?;
    Ok(next.map(from_ms))
}

pub(crate) fn deliveries_of(conn: &mut Conn, change_id: i64) -> Result<Vec<Delivery>, StoreError> {
    deliveries::table
        .filter(deliveries::change_id.eq(change_id))
        .order(deliveries::id)
        .select(DeliveryRow::as_select())
        .load(conn)
        .map_err(db_error)?
        .into_iter()
        .map(DeliveryRow::into_delivery)
        .collect()
}

/// A change's deliveries counted per state in the database, and only its unsent rows read,
/// in one transaction (a change has a row per recipient: most are sent).
pub(crate) fn outcome(conn: &mut Conn, change_id: i64) -> Result<ChangeOutcome, StoreError> {
    finish(conn.transaction(|conn| {
        let rows: Vec<(String, i64)> = deliveries::table
            .filter(deliveries::change_id.eq(change_id))
            .group_by(deliveries::state)
            .select((deliveries::state, diesel::dsl::count_star()))
            .load(conn)?;
        let unsent = deliveries::table
            .filter(deliveries::change_id.eq(change_id))
            .filter(deliveries::state.ne(DeliveryState::Sent.as_str()))
            .order(deliveries::id)
            .select(DeliveryRow::as_select())
            .load(conn)?
            .into_iter()
            .map(DeliveryRow::into_delivery)
            .collect::<Result<_, _>>()
            .map_err(DbError)?;
        Ok(ChangeOutcome {
            counts: counts_of(rows).map_err(DbError)?,
            unsent,
        })
    }))
}

pub(crate) fn counts(conn: &mut Conn) -> Result<DeliveryCounts, StoreError> {
    let rows: Vec<(String, i64)> = deliveries::table
        .group_by(deliveries::state)
        .select((deliveries::state, diesel::dsl::count_star()))
        .load(conn)
        .map_err(db_error)?;
    counts_of(rows)
}

/// Counts per state from `(state, count)` rows.
fn counts_of(rows: Vec<(String, i64)>) -> Result<DeliveryCounts, StoreError> {
    let mut counts = DeliveryCounts::default();
    for (state, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        match state.parse::<DeliveryState>()? {
            DeliveryState::Pending => counts.pending = n,
            DeliveryState::InFlight => counts.in_flight = n,
            DeliveryState::Sent => counts.sent = n,
            DeliveryState::Failed => counts.failed = n,
            DeliveryState::Superseded => counts.superseded = n,
        }
    }
    Ok(counts)
}
