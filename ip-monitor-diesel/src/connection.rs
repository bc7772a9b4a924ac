//! One connection type for every backend compiled in, so the store's statements are plain
//! functions written once: diesel's `MultiConnection` runs each on whichever backend the URL
//! chose. The few places where the backends differ match on the variant.

use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::r2d2;

use crate::now::DbNowMs;

/// A connection to the store's database.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[derive(diesel::MultiConnection)]
pub(crate) enum AnyConnection {
    Sqlite(diesel::SqliteConnection),
    Pg(diesel::PgConnection),
}

/// A connection to the store's database.
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
#[derive(diesel::MultiConnection)]
pub(crate) enum AnyConnection {
    Sqlite(diesel::SqliteConnection),
}

/// A connection to the store's database.
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
#[derive(diesel::MultiConnection)]
pub(crate) enum AnyConnection {
    Pg(diesel::PgConnection),
}

impl AnyConnection {
    /// The SQLite connection, if this is one.
    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite(&mut self) -> Option<&mut diesel::SqliteConnection> {
        match self {
            AnyConnection::Sqlite(c) => Some(c),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The PostgreSQL connection, if this is one.
    #[cfg(feature = "postgres")]
    pub(crate) fn pg(&mut self) -> Option<&mut diesel::PgConnection> {
        match self {
            AnyConnection::Pg(c) => Some(c),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

/// A row type's columns, in its order, for `RETURNING`: `MultiConnection` takes a
/// `RETURNING` clause as columns, not as `as_returning()`'s wrapper, which no single backend
/// can write.
pub(crate) fn columns<T: diesel::Selectable<MultiBackend>>() -> T::SelectExpression {
    T::construct_selection()
}

impl QueryFragment<MultiBackend> for DbNowMs {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, MultiBackend>) -> diesel::QueryResult<()> {
        MultiBackend::walk_variant_ast(self, pass)
    }
}

/// Where the pool connects: the backend is chosen from the URL once, never guessed per
/// connection (a PostgreSQL URL must never become an SQLite file name).
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// An SQLite file path, or `:memory:`.
    #[cfg(feature = "sqlite")]
    Sqlite(String),
    /// A PostgreSQL URL.
    #[cfg(feature = "postgres")]
    Pg(String),
}

/// Opens the pool's connections and sets each session up.
#[derive(Debug)]
pub(crate) struct Manager {
    pub(crate) target: Target,
}

/// A connection in the pool, with when it last came back.
pub(crate) struct Pooled {
    conn: AnyConnection,
    returned: Instant,
}

impl std::ops::Deref for Pooled {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

/// A connection back in the pool for less than this is handed out again without a
/// `SELECT 1` first: it worked a moment ago, and the round trip would cost as much as the
/// statement it precedes (a batch of the outbox). If the session died in between, the
/// statement fails with a transient error, and the connection is discarded (diesel marks a
/// connection whose session is gone as broken).
const VALID_WITHOUT_PING: Duration = Duration::from_secs(1);

/// How long SQLite waits for another process's write lock before giving up.
#[cfg(feature = "sqlite")]
const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;

/// A PostgreSQL session whose client froze inside a transaction (SIGSTOP, a paused VM) is
/// ended by the server after this long, so its row locks cannot block a lease takeover.
#[cfg(feature = "postgres")]
const PG_IDLE_IN_TRANSACTION_TIMEOUT: &str = "5s";

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Pooled, r2d2::Error> {
        Ok(Pooled {
            conn: self.open()?,
            returned: Instant::now(),
        })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), r2d2::Error> {
        use diesel::r2d2::R2D2Connection;
        if conn.returned.elapsed() < VALID_WITHOUT_PING {
            return Ok(());
        }
        conn.conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        use diesel::r2d2::R2D2Connection;
        // Called as the connection comes back to the pool.
        conn.returned = Instant::now();
        conn.conn.is_broken()
    }
}

impl Manager {
    /// A new session, set up.
    fn open(&self) -> Result<AnyConnection, r2d2::Error> {
        use diesel::connection::SimpleConnection;
        match &self.target {
            #[cfg(feature = "sqlite")]
            Target::Sqlite(path) => {
                let mut conn = diesel::SqliteConnection::establish(path)
                    .map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(AnyConnection::Sqlite(conn))
            }
            #[cfg(feature = "postgres")]
            Target::Pg(url) => {
                let mut conn =
                    diesel::PgConnection::establish(url).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(&format!(
                    "SET idle_in_transaction_session_timeout = '{PG_IDLE_IN_TRANSACTION_TIMEOUT}'"
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(AnyConnection::Pg(conn))
            }
        }
    }
}
