//! [`DieselStore`]: the connection pool, migrations, and the [`StateStore`] implementation.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use diesel::r2d2;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use ip_monitor_core::{
    Change, ChangeOutcome, CurrentAddress, Delivery, DeliveryCounts, DeliveryResult, DesiredState,
    Family, Holder, InstanceStatus, Lease, NewChange, Recipient, Recorded, StateStore, StoreError,
};

use crate::connection::{AnyConnection, Manager, Target};
use crate::error::Error;
use crate::ops;
use crate::redact::redact;

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("enable the `sqlite` feature, the `postgres` feature, or both");

#[cfg(feature = "sqlite")]
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
#[cfg(feature = "postgres")]
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Key of the PostgreSQL advisory lock held while migrating ("ipmon" in ASCII).
#[cfg(feature = "postgres")]
const MIGRATION_LOCK: i64 = 0x0069_706d_6f6e;

/// The store's connections: one pool, whichever backend the URL chose.
pub(crate) type Pool = r2d2::Pool<Manager>;

pub(crate) async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(StoreError::backend)?
}

/// A [`StateStore`] in the application's own database, through diesel: a SQLite file (the
/// default) or PostgreSQL (feature `postgres`), chosen by the URL. Tables are created on
/// connect by embedded migrations, all named `ip_monitor_*`.
///
/// Diesel is synchronous: every operation runs on tokio's blocking pool with a pooled
/// connection, and every transaction is a few statements long.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ip_monitor_core::{Family, StateStore};
/// use ip_monitor_diesel::DieselStore;
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("ip-monitor.db");
/// let store = DieselStore::connect(&format!("sqlite://{}", path.display())).await?;
/// assert!(store.current(Family::V4).await?.is_none());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DieselStore {
    pub(crate) pool: Pool,
    url: String,
}

impl fmt::Debug for DieselStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DieselStore")
            .field("url", &redact(&self.url))
            .finish_non_exhaustive()
    }
}

/// Query parameters and environment variables that say how libpq should use TLS: when any
/// is given, the URL is used as it is.
#[cfg(feature = "postgres")]
const TLS_PARAMETERS: [&str; 8] = [
    "sslmode",
    "requiressl",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "service",
    "host",
    "hostaddr",
];
#[cfg(feature = "postgres")]
const TLS_ENVIRONMENT: [&str; 6] = [
    "PGSSLMODE",
    "PGREQUIRESSL",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSERVICE",
];

/// The URL libpq connects with. To a server on a loopback address (`localhost`,
/// `127.0.0.0/8`, `::1`), when neither the URL nor the environment says how to use TLS, it
/// adds `sslmode=allow`: TLS only if the server insists, where libpq's default (`prefer`)
/// would set up TLS with any server that offers it. On a connection that never leaves the
/// machine TLS protects nothing, and it costs start-up time (initialising OpenSSL, a
/// handshake per connection) and a few percent of a fan-out's rate.
#[cfg(feature = "postgres")]
pub(crate) fn libpq_url(url: &str, env: impl Fn(&str) -> bool) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let Some((_, rest)) = url.split_once("://") else {
        return Cow::Borrowed(url);
    };
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let named = query.split('&').any(|pair| {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        TLS_PARAMETERS.iter().any(|p| key.eq_ignore_ascii_case(p))
    });
    if named || TLS_ENVIRONMENT.iter().any(|v| env(v)) {
        return Cow::Borrowed(url);
    }
    let authority = before_query.split('/').next().unwrap_or("");
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hosts.is_empty() || !hosts.split(',').all(is_loopback_host) {
        return Cow::Borrowed(url);
    }
    let separator = if !url.contains('?') {
        "?"
    } else if url.ends_with('?') || url.ends_with('&') {
        ""
    } else {
        "&"
    };
    Cow::Owned(format!("{url}{separator}sslmode=allow"))
}

/// Whether one host of a PostgreSQL URL's authority (with its port, if any) is a loopback
/// address.
#[cfg(feature = "postgres")]
fn is_loopback_host(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Builder for [`DieselStore`].
#[derive(Debug, Clone)]
pub struct DieselStoreBuilder {
    url: String,
    pool_size: u32,
    connect_timeout: Duration,
    /// Create the `ip_monitor_*` tables (off for a database only read for recipients).
    migrate: bool,
}

impl DieselStore {
    /// Connect with the defaults (pool of 4, 10 s connect timeout) and run the migrations.
    /// URLs: `sqlite://PATH` (relative), `sqlite:///ABSOLUTE/PATH`, `sqlite://:memory:`,
    /// `postgres://USER:PASSWORD@HOST/DB`.
    ///
    /// A PostgreSQL server on a loopback address (`localhost`, `127.0.0.0/8`, `::1`) is
    /// reached without TLS unless it requires TLS (libpq's `sslmode=allow`), when the URL and
    /// the environment (`PGSSLMODE`, …) do not say otherwise: TLS protects nothing on a
    /// connection that never leaves the machine, and costs start-up time and a few percent
    /// of a fan-out. Name `sslmode` in the URL to choose.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::builder(url).connect().await
    }

    /// Start configuring a store for `url`.
    pub fn builder(url: impl Into<String>) -> DieselStoreBuilder {
        DieselStoreBuilder {
            url: url.into(),
            pool_size: 4,
            connect_timeout: Duration::from_secs(10),
            migrate: true,
        }
    }

    /// The URL, with any password redacted.
    pub fn url(&self) -> String {
        redact(&self.url)
    }

    /// Which backend this is: `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        if sqlite_path(self.url.trim()).is_some() {
            "sqlite"
        } else {
            "postgres"
        }
    }

    /// Run `f` with a pooled connection on tokio's blocking pool.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        blocking(move || {
            let mut conn = pool.get().map_err(StoreError::unavailable)?;
            f(&mut conn)
        })
        .await
    }
}

/// The file path in a `sqlite://` (or `sqlite:`) URL.
pub(crate) fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
}

/// Create a missing SQLite file readable by its owner only (SQLite gives its `-wal` and
/// `-shm` files the same permissions); an existing file is left as it is.
#[cfg(feature = "sqlite")]
fn create_private_file(path: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl DieselStoreBuilder {
    /// Most connections kept open (default 4; `sqlite://:memory:` always uses 1).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Connect without creating the store's tables: for a database that is only read (the
    /// recipients query of [`DieselRecipients::connect`](crate::DieselRecipients::connect)).
    pub(crate) fn without_migrations(mut self) -> Self {
        self.migrate = false;
        self
    }

    /// How long to wait for a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connect and run the migrations (safe when several processes start at once).
    pub async fn connect(self) -> Result<DieselStore, Error> {
        let url = self.url.clone();
        let pool = tokio::task::spawn_blocking(move || self.connect_blocking())
            .await
            .map_err(|e| Error::Connect {
                url: redact(&url),
                source: Box::new(e),
            })??;
        Ok(DieselStore { pool, url })
    }

    fn connect_blocking(self) -> Result<Pool, Error> {
        let url = self.url.trim();
        if let Some(path) = sqlite_path(url) {
            #[cfg(feature = "sqlite")]
            {
                return self.connect_sqlite(path);
            }
            #[cfg(not(feature = "sqlite"))]
            {
                let _ = path;
                return Err(Error::Unsupported {
                    url: redact(url),
                    feature: "sqlite",
                });
            }
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            {
                return self.connect_pg(url);
            }
            #[cfg(not(feature = "postgres"))]
            {
                return Err(Error::Unsupported {
                    url: redact(url),
                    feature: "postgres",
                });
            }
        }
        Err(Error::InvalidUrl {
            url: redact(url),
            reason: "expected sqlite://PATH or postgres://…".to_owned(),
        })
    }

    #[cfg(feature = "sqlite")]
    fn connect_sqlite(&self, path: &str) -> Result<Pool, Error> {
        if path.is_empty() {
            return Err(Error::InvalidUrl {
                url: self.url.clone(),
                reason: "the SQLite path is empty".to_owned(),
            });
        }
        let size = if path == ":memory:" {
            1
        } else {
            if self.migrate {
                create_private_file(path).map_err(|e| Error::Connect {
                    url: self.url.clone(),
                    source: Box::new(e),
                })?;
            }
            self.pool_size
        };
        let connect_err = |e: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
            url: self.url.clone(),
            source: e,
        };
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            // A local file: no `SELECT 1` before each use (a failing connection reports
            // itself with the statement's own error).
            .test_on_check_out(false)
            .connection_timeout(self.connect_timeout)
            .build(Manager {
                target: Target::Sqlite(path.to_owned()),
            })
            .map_err(|e| connect_err(Box::new(e)))?;
        let mut pooled = pool.get().map_err(|e| connect_err(Box::new(e)))?;
        if !self.migrate {
            return Ok(pool);
        }
        let conn = pooled.sqlite().expect("an SQLite pool");
        // Two processes migrating a fresh file at once: the loser's migration fails on
        // "table exists"; it then finds nothing pending and carries on.
        let mut attempt = 0;
        loop {
            match run_in_one_transaction(conn, SQLITE_MIGRATIONS) {
                Ok(_) => break,
                Err(e) => {
                    attempt += 1;
                    let done = conn
                        .has_pending_migration(SQLITE_MIGRATIONS)
                        .map(|p| !p)
                        .unwrap_or(false);
                    if done {
                        break;
                    }
                    if attempt >= 3 {
                        return Err(Error::Migration { source: e });
                    }
                    std::thread::sleep(Duration::from_millis(50 * attempt));
                }
            }
        }
        Ok(pool)
    }

    #[cfg(feature = "postgres")]
    fn connect_pg(&self, url: &str) -> Result<Pool, Error> {
        use diesel::RunQueryDsl;
        let connect_err = |e: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
            url: redact(url),
            source: e,
        };
        let pool = r2d2::Pool::builder()
            .max_size(self.pool_size)
            .min_idle(Some(1))
            .connection_timeout(self.connect_timeout)
            .build(Manager {
                target: Target::Pg(
                    libpq_url(url, |var| std::env::var_os(var).is_some()).into_owned(),
                ),
            })
            .map_err(|e| connect_err(Box::new(e)))?;
        let mut pooled = pool.get().map_err(|e| connect_err(Box::new(e)))?;
        if !self.migrate {
            return Ok(pool);
        }
        let conn = pooled.pg().expect("a PostgreSQL pool");
        let lock = |conn: &mut diesel::PgConnection, sql: &str| {
            diesel::sql_query(sql)
                .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK)
                .execute(conn)
                .map_err(|e| Error::Migration {
                    source: Box::new(e),
                })
        };
        lock(conn, "SELECT pg_advisory_lock($1)")?;
        // Every pending migration in one transaction: one durable commit for a fresh
        // database however many there are (each runs in a savepoint of it).
        let result = run_in_one_transaction(conn, PG_MIGRATIONS);
        lock(conn, "SELECT pg_advisory_unlock($1)")?;
        result.map_err(|source| Error::Migration { source })?;
        Ok(pool)
    }
}

/// Run the pending migrations in one transaction: all or none.
fn run_in_one_transaction<C>(
    conn: &mut C,
    migrations: EmbeddedMigrations,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    C: diesel::Connection + MigrationHarness<C::Backend>,
{
    conn.transaction::<_, Box<dyn std::error::Error + Send + Sync>, _>(|conn| {
        conn.run_pending_migrations(migrations)?;
        Ok(())
    })
}

#[async_trait]
impl StateStore for DieselStore {
    async fn current(&self, family: Family) -> Result<Option<CurrentAddress>, StoreError> {
        self.run(move |c| ops::current(c, family)).await
    }

    async fn record_change(
        &self,
        lease: &Lease,
        now: SystemTime,
        change: NewChange,
        recipients: &[Recipient],
    ) -> Result<Change, StoreError> {
        let (lease, recipients) = (lease.clone(), recipients.to_vec());
        self.run(move |c| ops::record_change(c, lease, now, change, recipients))
            .await
    }

    async fn add_recipients(
        &self,
        lease: &Lease,
        now: SystemTime,
        change_id: i64,
        recipients: &[Recipient],
        only_if_announced: bool,
    ) -> Result<u64, StoreError> {
        let (lease, recipients) = (lease.clone(), recipients.to_vec());
        self.run(move |c| {
            ops::add_recipients(c, lease, now, change_id, recipients, only_if_announced)
        })
        .await
    }

    async fn history(&self, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.run(move |c| ops::history(c, limit)).await
    }

    async fn claim_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let lease = lease.clone();
        self.run(move |c| ops::claim(c, lease, now, limit)).await
    }

    async fn finish_deliveries(
        &self,
        lease: &Lease,
        now: SystemTime,
        results: &[DeliveryResult],
    ) -> Result<Vec<Recorded>, StoreError> {
        let (lease, results) = (lease.clone(), results.to_vec());
        self.run(move |c| ops::finish_deliveries(c, lease, now, results))
            .await
    }

    async fn finish_and_claim(
        &self,
        lease: &Lease,
        now: SystemTime,
        results: &[DeliveryResult],
        limit: usize,
    ) -> Result<(Vec<Recorded>, Vec<Delivery>), StoreError> {
        let (lease, results) = (lease.clone(), results.to_vec());
        self.run(move |c| ops::finish_and_claim(c, lease, now, results, limit))
            .await
    }

    async fn retry_failed(&self, lease: &Lease, now: SystemTime) -> Result<u64, StoreError> {
        let lease = lease.clone();
        self.run(move |c| ops::retry_failed(c, lease, now)).await
    }

    async fn next_delivery_at(&self, lease: &Lease) -> Result<Option<SystemTime>, StoreError> {
        let lease = lease.clone();
        self.run(move |c| ops::next_delivery_at(c, lease)).await
    }

    async fn deliveries(&self, change_id: i64) -> Result<Vec<Delivery>, StoreError> {
        self.run(move |c| ops::deliveries_of(c, change_id)).await
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.run(ops::counts).await
    }

    /// Counted in the database; only the unsent rows are read.
    async fn outcome(&self, change_id: i64) -> Result<ChangeOutcome, StoreError> {
        self.run(move |c| ops::outcome(c, change_id)).await
    }

    async fn acquire_lease(
        &self,
        holder: &Holder,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let holder = holder.clone();
        self.run(move |c| ops::acquire_lease(c, holder, ttl)).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.run(move |c| ops::release_lease(c, lease)).await
    }

    async fn lease(&self) -> Result<Option<Lease>, StoreError> {
        self.run(ops::lease).await
    }

    async fn put_instance(&self, status: &InstanceStatus) -> Result<(), StoreError> {
        let status = status.clone();
        self.run(move |c| ops::put_instance(c, status)).await
    }

    async fn instances(&self) -> Result<Vec<InstanceStatus>, StoreError> {
        self.run(ops::instances).await
    }

    async fn desired_state(&self) -> Result<DesiredState, StoreError> {
        self.run(ops::desired_state).await
    }

    /// Both in one trip to the blocking pool and one pooled connection.
    async fn heartbeat(&self, status: &InstanceStatus) -> Result<DesiredState, StoreError> {
        let status = status.clone();
        self.run(move |c| ops::heartbeat(c, status)).await
    }

    async fn set_desired_state(&self, state: DesiredState) -> Result<(), StoreError> {
        self.run(move |c| ops::set_desired_state(c, state)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn loopback_servers_are_reached_without_tls_unless_asked() {
        let none = |_: &str| false;
        let url = |u| libpq_url(u, none).into_owned();
        assert_eq!(
            url("postgres://app:pw@127.0.0.1:5432/app"),
            "postgres://app:pw@127.0.0.1:5432/app?sslmode=allow"
        );
        assert_eq!(
            url("postgresql://localhost/app?user=app"),
            "postgresql://localhost/app?user=app&sslmode=allow"
        );
        assert_eq!(
            url("postgres://[::1]:5433,127.0.0.2/app"),
            "postgres://[::1]:5433,127.0.0.2/app?sslmode=allow"
        );
        // Another machine, or one loopback host among others: as written.
        for same in [
            "postgres://db.internal/app",
            "postgres://10.0.0.5:5432/app",
            "postgres://127.0.0.1,db.internal/app",
            "postgres://[2001:db8::1]/app",
            // A socket directory, or libpq's default host: no TCP, nothing to choose.
            "postgres:///app",
            "postgres://%2Fvar%2Frun%2Fpostgresql/app",
            // The URL says how to use TLS, or where to connect.
            "postgres://127.0.0.1/app?sslmode=require",
            "postgres://127.0.0.1/app?SSLMODE=verify-full&sslrootcert=/ca.pem",
            "postgres://127.0.0.1/app?sslrootcert=system",
            "postgres://127.0.0.1/app?host=db.internal",
            "postgres://127.0.0.1/app?service=prod",
        ] {
            assert_eq!(url(same), same);
        }
        // ... or the environment does.
        assert_eq!(
            libpq_url("postgres://127.0.0.1/app", |v| v == "PGSSLMODE"),
            "postgres://127.0.0.1/app"
        );
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite://ip-monitor.db"), Some("ip-monitor.db"));
        assert_eq!(sqlite_path("sqlite:///var/lib/x.db"), Some("/var/lib/x.db"));
        assert_eq!(sqlite_path("postgres://x"), None);
    }
}
