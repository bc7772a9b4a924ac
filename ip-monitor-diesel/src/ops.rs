//! The store's statements, written once as plain functions over [`AnyConnection`]. Every
//! transaction is a handful of statements: none stays open across a network call.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use diesel::prelude::*;
use ip_monitor_core::{
    Change, ChangeKind, ChangeOutcome, CurrentAddress, Delivery, DeliveryCounts, DeliveryResult,
    DeliveryState, DeliveryUpdate, DesiredState, Family, Holder, InstanceStatus, Lease, NewChange,
    Recipient, Recorded, StoreError,
};

use crate::connection::{AnyConnection, columns};
use crate::model::*;
use crate::schema::{
    ip_monitor_changes as changes, ip_monitor_control as control, ip_monitor_current as current,
    ip_monitor_deliveries as deliveries, ip_monitor_instances as instances,
};

/// Diesel errors inside transactions, and store errors raised there.
pub(crate) struct DbError(pub(crate) StoreError);

impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        DbError(db_error(e))
    }
}

/// A diesel error as a store error, transient when trying again may help: a serialization
/// failure or deadlock (PostgreSQL), a busy or locked database (SQLite), a lost connection.
pub(crate) fn db_error(e: diesel::result::Error) -> StoreError {
    use diesel::result::{DatabaseErrorKind, Error};
    let transient = match &e {
        Error::DatabaseError(kind, info) => {
            let message = info.message().to_ascii_lowercase();
            matches!(
                kind,
                DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection
            ) || message.contains("database is locked")
                || message.contains("database table is locked")
                || message.contains("busy")
                || message.contains("deadlock detected")
                || message.contains("terminating connection")
        }
        Error::BrokenTransactionManager => true,
        _ => false,
    };
    if transient {
        StoreError::unavailable(e)
    } else {
        StoreError::backend(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        DbError(e)
    }
}

pub(crate) type DbResult<T> = Result<T, DbError>;

type Conn = AnyConnection;

// Lookups by key read with `get_result`, not `first`: `first` binds `LIMIT 1` as a
// parameter, and SQLite (3.47 and later) reads a bound LIMIT when it plans, so it prepares
// such a statement again every time it runs, cached or not.

/// Rows per multi-row insert: well under both backends' bind-parameter limits.
const INSERT_CHUNK: usize = 1000;

/// Whether this is an SQLite connection.
fn is_sqlite(conn: &mut Conn) -> bool {
    #[cfg(feature = "sqlite")]
    return conn.sqlite().is_some();
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = conn;
        false
    }
}

/// The database's time in milliseconds since the epoch: the one clock every
/// lease is judged on, whatever the clocks of the hosts using it say.
fn db_now() -> crate::now::DbNowMs {
    crate::now::DbNowMs
}

/// Lock the control row if `lease` is still valid: the first statement of every
/// acting transaction. It is a write, so SQLite takes its write lock at once and
/// PostgreSQL serialises with lease changes on the row lock.
fn fence(conn: &mut Conn, lease: &Lease) -> DbResult<()> {
    let n = diesel::update(control::table.find(1))
        .filter(control::lease_holder.eq(&lease.holder.id))
        .filter(control::lease_fence.eq(lease.fence as i64))
        .filter(control::lease_expires_at_ms.gt(db_now()))
        .set(control::lease_fence.eq(control::lease_fence))
        .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(DbError(StoreError::LeaseLost))
    }
}

fn finish<T>(r: DbResult<T>) -> Result<T, StoreError> {
    r.map_err(|e| e.0)
}

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
    let in_flight = DeliveryState::InFlight.as_str();
    let superseded = DeliveryState::Superseded.as_str();
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
    Ok(recorded)
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

fn control_row(conn: &mut Conn) -> QueryResult<ControlRow> {
    control::table
        .find(1)
        .select(ControlRow::as_select())
        .get_result(conn)
}

pub(crate) fn acquire_lease(
    conn: &mut Conn,
    holder: Holder,
    ttl: Duration,
) -> Result<Option<Lease>, StoreError> {
    finish(conn.transaction(|conn| {
        // Lock the row first (a write), then decide on the database's clock.
        diesel::update(control::table.find(1))
            .set(control::lease_fence.eq(control::lease_fence))
            .execute(conn)?;
        let row = control_row(conn)?;
        let now_ms: i64 = diesel::select(db_now()).get_result(conn)?;
        let valid = row.lease_holder.is_some() && row.lease_expires_at_ms > now_ms;
        let ours = row.lease_holder.as_deref() == Some(holder.id.as_str());
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let expires_ms = now_ms.saturating_add(ttl_ms);
        if valid && !ours {
            return Ok(None);
        }
        let (fence, acquired_ms) = if valid {
            (row.lease_fence, row.lease_acquired_at_ms)
        } else {
            (row.lease_fence + 1, now_ms)
        };
        diesel::update(control::table.find(1))
            .set((
                control::lease_holder.eq(Some(&holder.id)),
                control::lease_host.eq(Some(&holder.host)),
                control::lease_pid.eq(Some(i64::from(holder.pid))),
                control::lease_fence.eq(fence),
                control::lease_acquired_at_ms.eq(acquired_ms),
                control::lease_expires_at_ms.eq(expires_ms),
            ))
            .execute(conn)?;
        Ok(Some(Lease {
            holder,
            fence: fence as u64,
            acquired_at: from_ms(acquired_ms),
            expires_at: from_ms(expires_ms),
        }))
    }))
}

pub(crate) fn release_lease(conn: &mut Conn, lease: Lease) -> Result<(), StoreError> {
    diesel::update(control::table.find(1))
        .filter(control::lease_holder.eq(&lease.holder.id))
        .filter(control::lease_fence.eq(lease.fence as i64))
        .set((
            control::lease_holder.eq(None::<String>),
            control::lease_host.eq(None::<String>),
            control::lease_pid.eq(None::<i64>),
            control::lease_expires_at_ms.eq(0),
        ))
        .execute(conn)
        .map_err(db_error)?;
    Ok(())
}

pub(crate) fn lease(conn: &mut Conn) -> Result<Option<Lease>, StoreError> {
    let row = control_row(conn).map_err(db_error)?;
    let now_ms: i64 = diesel::select(db_now())
        .get_result(conn)
        .map_err(db_error)?;
    Ok(row
        .lease()
        .filter(|_| row.lease_holder.is_some() && row.lease_expires_at_ms > now_ms))
}

pub(crate) fn put_instance(conn: &mut Conn, status: InstanceStatus) -> Result<(), StoreError> {
    let json = serde_json::to_string(&status).map_err(StoreError::backend)?;
    let heartbeat = to_ms(status.heartbeat_at);
    let updated = diesel::update(instances::table.find(&status.holder.id))
        .set((
            instances::heartbeat_at_ms.eq(heartbeat),
            instances::status.eq(&json),
        ))
        .execute(conn)
        .map_err(db_error)?;
    if updated == 0 {
        diesel::insert_into(instances::table)
            .values((
                instances::id.eq(&status.holder.id),
                instances::heartbeat_at_ms.eq(heartbeat),
                instances::status.eq(&json),
            ))
            .execute(conn)
            .map_err(db_error)?;
    }
    Ok(())
}

pub(crate) fn instances(conn: &mut Conn) -> Result<Vec<InstanceStatus>, StoreError> {
    let rows: Vec<(String, String)> = instances::table
        .order(instances::heartbeat_at_ms.desc())
        .select((instances::id, instances::status))
        .load(conn)
        .map_err(db_error)?;
    rows.into_iter()
        .map(|(id, json)| {
            serde_json::from_str(&json).map_err(|e| StoreError::Invalid {
                what: format!("status row {id:?}: {e}"),
            })
        })
        .collect()
}

/// The status row, then the desired state, on one connection.
pub(crate) fn heartbeat(
    conn: &mut Conn,
    status: InstanceStatus,
) -> Result<DesiredState, StoreError> {
    put_instance(conn, status)?;
    desired_state(conn)
}

pub(crate) fn desired_state(conn: &mut Conn) -> Result<DesiredState, StoreError> {
    let s: String = control::table
        .find(1)
        .select(control::desired_state)
        .get_result(conn)
        .map_err(db_error)?;
    s.parse()
}

pub(crate) fn set_desired_state(conn: &mut Conn, state: DesiredState) -> Result<(), StoreError> {
    diesel::update(control::table.find(1))
        .set(control::desired_state.eq(state.as_str()))
        .execute(conn)
        .map_err(db_error)?;
    Ok(())
}
