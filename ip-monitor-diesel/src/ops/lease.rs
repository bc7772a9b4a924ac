//! The lease, the desired state and the instances' status rows.

use std::time::Duration;

use diesel::prelude::*;
use ip_monitor_core::{DesiredState, Holder, InstanceStatus, Lease, StoreError};

use super::*;
use crate::model::*;
use crate::schema::{ip_monitor_control as control, ip_monitor_instances as instances};

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
