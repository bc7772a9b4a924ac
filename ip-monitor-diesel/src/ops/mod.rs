//! The store's statements, written once as plain functions over [`AnyConnection`]. Every
//! transaction is a handful of statements: none stays open across a network call. One file
//! per concern: changes, the outbox, the lease and control rows.

use diesel::prelude::*;
use ip_monitor_core::{Lease, StoreError};

use crate::connection::{AnyConnection, columns};

mod lease;
mod outbox;
mod record;

use crate::schema::ip_monitor_control as control;
pub(crate) use lease::*;
pub(crate) use outbox::*;
pub(crate) use record::*;

/// Diesel errors inside transactions, and store errors raised there.
pub(crate) struct DbError(pub(crate) StoreError);

impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        DbError(db_error(e))
    }
}

/// A diesel error as a store error, transient when trying again may help: a serialization
/// failure or deadlock (PostgreSQL), a busy or locked database (SQLite), a lost connection.
///
/// Diesel's error kinds say serialization failure and closed connection. What they leave as
/// `Unknown` — SQLite's `SQLITE_BUSY` / `SQLITE_LOCKED` and PostgreSQL's deadlock (40P01)
/// and administrator shutdown (57P01), whose codes diesel does not expose — is recognised
/// by the fixed text each database gives that code ([`UNKINDED_TRANSIENT`]).
pub(crate) fn db_error(e: diesel::result::Error) -> StoreError {
    use diesel::result::{DatabaseErrorKind, Error};
    let transient = match &e {
        Error::DatabaseError(
            DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection,
            _,
        ) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            UNKINDED_TRANSIENT.iter().any(|m| message.starts_with(m))
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

/// The start of the message of each transient error that diesel reports as
/// `DatabaseErrorKind::Unknown`: SQLite's `sqlite3_errstr(SQLITE_BUSY)` and
/// `(SQLITE_LOCKED)`, PostgreSQL's 40P01 and 57P01.
const UNKINDED_TRANSIENT: [&str; 4] = [
    "database is locked",
    "database table is locked",
    "deadlock detected",
    "terminating connection",
];

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
