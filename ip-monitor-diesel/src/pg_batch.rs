//! PostgreSQL: a batch of `Sent` results and the next claim in one statement, one round
//! trip and one commit; and a change's delivery rows inserted by one statement.
//!
//! The general path (the fenced transaction of `ops`) costs a round trip per statement —
//! `BEGIN`, the fence, the results, two claim queries, the claim, `COMMIT` — and on a
//! loaded server each round trip is a wake-up of the server process. Here the same steps
//! are the parts of one statement: its data-modifying `WITH` queries share one snapshot
//! and one implicit transaction, and the claim and the results touch no common row (the
//! results are rows in flight under this lease's fence, the claim takes pending rows and
//! rows in flight under another fence).

use std::collections::HashSet;
use std::time::SystemTime;

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
use ip_monitor_core::{DeliveryResult, DeliveryUpdate, Lease, Recorded};

use crate::model::{DeliveryRow, to_ms};
use crate::ops::{DbError, DbResult};

/// Whether [`finish_and_claim`] can take this batch: only `Sent` results, each claimed under
/// the lease's own fence (results from before a lapse take the general path).
pub(crate) fn applies(lease: &Lease, results: &[DeliveryResult]) -> bool {
    results
        .iter()
        .all(|r| r.update == DeliveryUpdate::Sent && r.fence == lease.fence)
}

/// Record `Sent` for `results` and claim up to `limit` deliveries, in one statement: what
/// was recorded, and the claimed rows.
pub(crate) fn finish_and_claim(
    conn: &mut PgConnection,
    lease: &Lease,
    now: SystemTime,
    results: &[DeliveryResult],
    limit: usize,
) -> DbResult<(Vec<Recorded>, Vec<DeliveryRow>)> {
    let statement = Batch {
        holder: lease.holder.id.clone(),
        fence: lease.fence as i64,
        now_ms: to_ms(now),
        ids: results.iter().map(|r| r.id).collect(),
        limit: i64::try_from(limit).unwrap_or(i64::MAX),
    };
    let rows: Vec<BatchRow> = statement.load(conn)?;
    let mut held = false;
    let mut sent = HashSet::new();
    let mut claimed = Vec::new();
    for (kind, id, rest) in rows {
        match kind.as_str() {
            "lease" => held = true,
            "sent" => {
                sent.insert(id);
            }
            _ => claimed.push((id, rest)),
        }
    }
    if !held {
        return Err(DbError(ip_monitor_core::StoreError::LeaseLost));
    }
    let mut seen = HashSet::new();
    let recorded = results
        .iter()
        // The same row twice in one batch: only the first applies.
        .map(|r| match sent.contains(&r.id) && seen.insert(r.id) {
            true => Recorded::Applied,
            false => Recorded::Stale,
        })
        .collect();
    let claimed = claimed
        .into_iter()
        .map(|(id, rest)| claimed_row(id, rest))
        .collect::<DbResult<_>>()?;
    Ok((recorded, claimed))
}

/// The columns of a claimed row after its kind and id (`NULL` in the other kinds of row).
type Rest = (
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

type BatchRow = (String, i64, Rest);

fn claimed_row(id: i64, rest: Rest) -> DbResult<DeliveryRow> {
    let missing = || {
        DbError(ip_monitor_core::StoreError::backend(format!(
            "delivery {id}: a claimed row came back without its columns"
        )))
    };
    let (change_id, change_kind, address, url, email, name, state, attempts, created, next) = (
        rest.0, rest.1, rest.2, rest.3, rest.4, rest.5, rest.6, rest.7, rest.8, rest.9,
    );
    Ok(DeliveryRow {
        id,
        change_id: change_id.ok_or_else(missing)?,
        change_kind: change_kind.ok_or_else(missing)?,
        address: address.ok_or_else(missing)?,
        url: url.ok_or_else(missing)?,
        email: email.ok_or_else(missing)?,
        name,
        state: state.ok_or_else(missing)?,
        attempts: attempts.ok_or_else(missing)?,
        created_at_ms: created.ok_or_else(missing)?,
        next_attempt_at_ms: next.ok_or_else(missing)?,
        last_error: rest.10,
        sent_at_ms: rest.11,
        fence: rest.12,
        recipient_kind: rest.13.ok_or_else(missing)?,
    })
}

/// The statement, with its parameters bound: a typed query with a fixed text, so the
/// connection prepares it once and reuses it.
struct Batch {
    holder: String,
    fence: i64,
    now_ms: i64,
    ids: Vec<i64>,
    limit: i64,
}

impl QueryId for Batch {
    type QueryId = Batch;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for Batch {
    type SqlType = (
        Text,
        BigInt,
        (
            Nullable<BigInt>,
            Nullable<Text>,
            Nullable<Text>,
            Nullable<Text>,
            Nullable<Text>,
            Nullable<Text>,
            Nullable<Text>,
            Nullable<Integer>,
            Nullable<BigInt>,
            Nullable<BigInt>,
            Nullable<Text>,
            Nullable<BigInt>,
            Nullable<BigInt>,
            Nullable<Text>,
        ),
    );
}

impl RunQueryDsl<PgConnection> for Batch {}

impl QueryFragment<Pg> for Batch {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "WITH f AS (UPDATE ip_monitor_control SET lease_fence = lease_fence \
             WHERE id = 1 AND lease_holder = ",
        );
        out.push_bind_param::<Text, _>(&self.holder)?;
        out.push_sql(" AND lease_fence = ");
        out.push_bind_param::<BigInt, _>(&self.fence)?;
        out.push_sql(" AND lease_expires_at_ms > ");
        crate::now::DbNowMs.walk_ast(out.reborrow())?;
        out.push_sql(
            " RETURNING id), \
             s AS (UPDATE ip_monitor_deliveries \
             SET state = 'sent', last_error = NULL, sent_at_ms = ",
        );
        out.push_bind_param::<BigInt, _>(&self.now_ms)?;
        out.push_sql(" WHERE id = ANY(");
        out.push_bind_param::<Array<BigInt>, _>(&self.ids)?;
        out.push_sql(") AND fence = ");
        out.push_bind_param::<BigInt, _>(&self.fence)?;
        out.push_sql(
            " AND state IN ('in_flight', 'superseded') AND EXISTS (SELECT 1 FROM f) \
             RETURNING id), \
             c AS (UPDATE ip_monitor_deliveries SET state = 'in_flight', attempts = attempts + 1, \
             fence = ",
        );
        out.push_bind_param::<BigInt, _>(&self.fence)?;
        // Orphans of an older fence first, then pending ones by due time, each taken in the
        // order of the (state, next_attempt_at_ms, id) index; ARRAY(...) is computed once,
        // so the update finds its rows by primary key.
        out.push_sql(
            " WHERE id = ANY(ARRAY(SELECT id FROM (\
             (SELECT id, 0 AS o, next_attempt_at_ms AS t FROM ip_monitor_deliveries \
             WHERE state = 'in_flight' AND fence <> ",
        );
        out.push_bind_param::<BigInt, _>(&self.fence)?;
        out.push_sql(" ORDER BY next_attempt_at_ms, id LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(
            ") UNION ALL \
             (SELECT id, 1, next_attempt_at_ms FROM ip_monitor_deliveries \
             WHERE state = 'pending' AND next_attempt_at_ms <= ",
        );
        out.push_bind_param::<BigInt, _>(&self.now_ms)?;
        out.push_sql(" ORDER BY next_attempt_at_ms, id LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(") ) AS due ORDER BY o, t, id LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(
            ")) AND EXISTS (SELECT 1 FROM f) \
             RETURNING id, change_id, change_kind, address, url, email, name, state, attempts, \
             created_at_ms, next_attempt_at_ms, last_error, sent_at_ms, fence, recipient_kind) \
             SELECT 'lease', 0::bigint, NULL::bigint, NULL, NULL, NULL, NULL, NULL, NULL, \
             NULL::integer, NULL::bigint, NULL::bigint, NULL, NULL::bigint, NULL::bigint, \
             NULL FROM f \
             UNION ALL SELECT 'sent', id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
             NULL, NULL, NULL, NULL, NULL FROM s \
             UNION ALL SELECT 'claimed', id, change_id, change_kind, address, url, email, name, \
             state, attempts, created_at_ms, next_attempt_at_ms, last_error, sent_at_ms, fence, \
             recipient_kind FROM c",
        );
        Ok(())
    }
}

/// Insert one `pending` delivery row per recipient of the change who has none for it yet,
/// in the recipients' order (the order they are claimed in), with one statement of a fixed
/// text whatever the number of recipients: the recipients go as three arrays, the columns
/// all rows share as single values. A multi-row `VALUES` list costs the server a parse and
/// a bind of fourteen parameters per row, each time (about 5 ms per 1,000 rows), before any
/// row is written. How many rows were inserted.
pub(crate) fn insert_deliveries(
    conn: &mut PgConnection,
    rows: &crate::model::NewDeliveries<'_>,
) -> QueryResult<usize> {
    Insert(rows).execute(conn)
}

struct Insert<'a, 'b>(&'a crate::model::NewDeliveries<'b>);

impl QueryId for Insert<'_, '_> {
    type QueryId = Insert<'static, 'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl RunQueryDsl<PgConnection> for Insert<'_, '_> {}

impl QueryFragment<Pg> for Insert<'_, '_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let rows = self.0;
        out.push_sql(
            "INSERT INTO ip_monitor_deliveries (change_id, family, change_kind, address, url, \
             email, email_key, name, recipient_kind, state, attempts, created_at_ms, \
             next_attempt_at_ms) \
             SELECT ",
        );
        out.push_bind_param::<BigInt, _>(&rows.change_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&rows.family)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&rows.change_kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&rows.address)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&rows.url)?;
        out.push_sql(", r.email, r.email_key, r.name, r.kind, 'pending', 0, ");
        out.push_bind_param::<BigInt, _>(&rows.now_ms)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&rows.now_ms)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&rows.emails)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&rows.keys)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&rows.names)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&rows.kinds)?;
        out.push_sql(
            ") WITH ORDINALITY AS r(email, email_key, name, kind, n) ORDER BY r.n \
             ON CONFLICT (change_id, email_key) DO NOTHING",
        );
        Ok(())
    }
}
