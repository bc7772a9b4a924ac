//! Core's conformance suites on a SQLite file and on a real PostgreSQL server.

use std::sync::Arc;

use ip_monitor_core::testing::*;
use ip_monitor_core::{Recipient, Recipients};
use ip_monitor_diesel::{DieselRecipients, DieselStore, Error};

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("ip-monitor.db").display())
}

const STAFF_SQLITE: &str = "CREATE TABLE staff (id INTEGER PRIMARY KEY, email TEXT, name TEXT, \
     is_delete BOOLEAN NOT NULL DEFAULT false, is_lock BOOLEAN NOT NULL DEFAULT false)";

/// Run setup statements on the store's database, as the application would have.
fn exec(store: &DieselStore, statements: &[&str]) {
    ip_monitor_testkit::sql::exec(&store.url(), &statements.join(";\n"));
}

fn expected() -> Vec<Recipient> {
    vec![
        Recipient::new("ana@example.com", Some("Ana")).unwrap(),
        Recipient::new("ben@example.com", None::<&str>).unwrap(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = DieselStore::connect(&sqlite_url(&dir)).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    store_conformance(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_keeps_the_promise_through_lease_faults() {
    let dir = tempfile::tempdir().unwrap();
    let store = DieselStore::connect(&sqlite_url(&dir)).await.unwrap();
    monitor_conformance(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_serves_a_flood_of_readers_from_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    web_conformance(Arc::new(sqlite_store(&dir).await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_conforms() {
    store_conformance(&DieselStore::connect("sqlite://:memory:").await.unwrap()).await;
}

/// A fresh SQLite file store.
async fn sqlite_store(dir: &tempfile::TempDir) -> DieselStore {
    DieselStore::connect(&sqlite_url(dir)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_records_results_across_a_lapse() {
    let dir = tempfile::tempdir().unwrap();
    lapse_conformance(&sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_tells_new_recipients() {
    let dir = tempfile::tempdir().unwrap();
    new_recipients_conformance(&sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_keeps_recipient_kinds() {
    let dir = tempfile::tempdir().unwrap();
    recipient_kinds_conformance(&sqlite_store(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_and_reconnecting_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let store = DieselStore::connect(&url).await.unwrap();
    use ip_monitor_core::{DesiredState, StateStore};
    store.set_desired_state(DesiredState::Paused).await.unwrap();
    drop(store);
    let again = DieselStore::connect(&url).await.unwrap();
    assert_eq!(again.desired_state().await.unwrap(), DesiredState::Paused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_processes_worth_of_connects_on_a_fresh_file_do_not_collide() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let connects: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { DieselStore::connect(&url).await })
        })
        .collect();
    for c in connects {
        c.await
            .unwrap()
            .expect("concurrent first connects all succeed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_are_refused_with_the_url_named() {
    match DieselStore::connect("mysql://db/app").await {
        Err(Error::InvalidUrl { url, .. }) => assert_eq!(url, "mysql://db/app"),
        other => panic!("{other:?}"),
    }
    let missing = DieselStore::builder("sqlite:///nonexistent-dir/sub/x.db")
        .connect_timeout(std::time::Duration::from_millis(500))
        .connect()
        .await;
    match missing {
        Err(e @ Error::Connect { .. }) => assert!(e.to_string().contains("nonexistent-dir"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_recipients_conform_and_skip_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = DieselStore::connect(&sqlite_url(&dir)).await.unwrap();
    exec(
        &store,
        &[
            STAFF_SQLITE,
            "INSERT INTO staff (email, name) VALUES ('ana@example.com', 'Ana'), ('ben@example.com', NULL)",
            "INSERT INTO staff (email, name, is_delete) VALUES ('gone@example.com', 'Gone', true)",
            "INSERT INTO staff (email, name, is_lock) VALUES ('locked@example.com', 'Locked', true)",
            "INSERT INTO staff (email, name) VALUES ('evil@example.com' || char(13) || char(10) || 'Bcc: x@y', 'Evil')",
            "INSERT INTO staff (email, name) VALUES (NULL, 'Nobody'), ('not-an-address', 'X')",
            "INSERT INTO staff (email, name) VALUES (CAST(X'616263ff40782e636f6d' AS TEXT), 'Bad bytes')",
        ],
    );
    let staff = DieselRecipients::new(&store);
    recipients_conformance(&staff, &expected()).await;
    let list = staff.active().await.unwrap();
    assert_eq!(list.rejected.len(), 4, "{:?}", list.rejected);
    assert!(list.rejected.iter().any(|r| r.reason.contains("UTF-8")));

    let broken = DieselRecipients::new(&store).query("SELECT email FROM no_such_table");
    assert!(
        broken.active().await.is_err(),
        "a failing query is an error, not an empty list"
    );
    for writing in [
        "DELETE FROM staff",
        "  delete from staff RETURNING email, name",
        "SELECT email, name FROM staff; DELETE FROM staff",
    ] {
        let _ = DieselRecipients::new(&store).query(writing).active().await;
    }
    assert_eq!(
        staff.active().await.unwrap().valid.len(),
        2,
        "a recipients query never changes the staff table"
    );
    assert!(
        DieselRecipients::new(&store)
            .query("DELETE FROM staff")
            .active()
            .await
            .is_err(),
        "only SELECT / WITH queries are accepted"
    );
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use ip_monitor_testkit::pg::fresh_database;

    const STAFF_PG: &str = "CREATE TABLE staff (id SERIAL PRIMARY KEY, email TEXT, name TEXT, \
         is_delete BOOLEAN NOT NULL DEFAULT false, is_lock BOOLEAN NOT NULL DEFAULT false)";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(pg_tests),
        ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
    )]
    async fn an_older_postgres_schema_is_migrated_in_place() {
        let url = fresh_database();
        ip_monitor_testkit::sql::exec(
            &url,
            &format!(
                "{}\nCREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
                 run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n\
                 INSERT INTO __diesel_schema_migrations (version) VALUES ('20261125000001');\n\
                 CREATE INDEX ip_monitor_deliveries_family ON ip_monitor_deliveries (family, state);\n\
                 {}",
                include_str!("../migrations/postgres/2026-11-25-000001_ip_monitor/up.sql"),
                super::OLD_ROWS
            ),
        );
        assert_eq!(
            delivery_indexes(&url),
            ["ip_monitor_deliveries_due", "ip_monitor_deliveries_family"]
        );
        assert_eq!(delivery_foreign_keys(&url), 1);
        let store = DieselStore::connect(&url).await.unwrap();
        assert_eq!(delivery_indexes(&url), ["ip_monitor_deliveries_due"]);
        super::old_rows_read_back_typed(&store).await;
        assert_eq!(delivery_foreign_keys(&url), 0);
        let fresh = fresh_database();
        DieselStore::connect(&fresh).await.unwrap();
        assert_eq!(delivery_indexes(&fresh), ["ip_monitor_deliveries_due"]);
        assert_eq!(delivery_foreign_keys(&fresh), 0);
    }

    /// How many foreign keys the delivery table has (the store checks no row against its
    /// change: it writes both together and deletes no change).
    fn delivery_foreign_keys(url: &str) -> i64 {
        use diesel::{Connection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(
            "SELECT count(*) AS n FROM pg_constraint \
             WHERE conrelid = 'ip_monitor_deliveries'::regclass AND contype = 'f'",
        )
        .get_result::<Count>(&mut diesel::PgConnection::establish(url).unwrap())
        .unwrap()
        .n
    }

    /// Whether each session of the store's database (other than the one asking) uses TLS.
    fn sessions_over_tls(url: &str) -> Vec<bool> {
        use diesel::{Connection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Session {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            ssl: bool,
        }
        diesel::sql_query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
        )
        .load::<Session>(&mut diesel::PgConnection::establish(url).unwrap())
        .unwrap()
        .into_iter()
        .map(|s| s.ssl)
        .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(pg_tests),
        ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
    )]
    async fn a_loopback_server_is_reached_without_tls_unless_the_url_asks() {
        // The test server offers TLS (scripts/with-postgres.sh), on 127.0.0.1.
        let url = fresh_database();
        assert!(url.contains("127.0.0.1"), "{url}");
        let plain = DieselStore::connect(&url).await.unwrap();
        let sessions = sessions_over_tls(&url);
        assert!(
            !sessions.is_empty() && sessions.iter().all(|tls| !tls),
            "{sessions:?}"
        );
        drop(plain);

        let url = fresh_database();
        let _tls = DieselStore::connect(&format!("{url}?sslmode=require"))
            .await
            .unwrap();
        let sessions = sessions_over_tls(&url);
        assert!(
            !sessions.is_empty() && sessions.iter().all(|tls| *tls),
            "{sessions:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(pg_tests),
        ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
    )]
    async fn postgres_store_conforms() {
        let store = DieselStore::connect(&fresh_database()).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        store_conformance(&store).await;
    }

    /// A store on a fresh PostgreSQL database.
    async fn pg_store() -> DieselStore {
        DieselStore::connect(&fresh_database()).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(pg_tests),
        ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
    )]
    async fn postgres_store_records_results_across_a_lapse() {
        lapse_conformance(&pg_store().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(pg_tests),
        ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
    )]
    async fn postgres_store_tells_new_recipients() {
        new_recipients_conformance(&pg_store().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(pg_tests),
        ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
    )]
    async fn postgres_store_keeps_recipient_kinds() {
        recipient_kinds_conformance(&pg_store().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(pg_tests),
        ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
    )]
    async fn postgres_store_serves_a_flood_of_readers_from_one_snapshot() {
        web_conformance(Arc::new(pg_store().await)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(pg_tests),
        ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
    )]
    async fn postgres_store_keeps_the_promise_through_lease_faults() {
        let store = DieselStore::connect(&fresh_database()).await.unwrap();
        monitor_conformance(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(pg_tests),
        ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
    )]
    async fn concurrent_first_connects_on_postgres_do_not_collide() {
        let url = fresh_database();
        let connects: Vec<_> = (0..6)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { DieselStore::connect(&url).await })
            })
            .collect();
        for c in connects {
            c.await
                .unwrap()
                .expect("the advisory lock serialises the migrations");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(pg_tests),
        ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
    )]
    async fn postgres_recipients_conform_and_skip_bad_rows() {
        let store = DieselStore::connect(&fresh_database()).await.unwrap();
        exec(
            &store,
            &[
                STAFF_PG,
                "INSERT INTO staff (email, name) VALUES ('ana@example.com', 'Ana'), ('ben@example.com', NULL)",
                "INSERT INTO staff (email, name, is_delete) VALUES ('gone@example.com', 'Gone', true)",
                "INSERT INTO staff (email, name, is_lock) VALUES ('locked@example.com', 'Locked', true)",
                "INSERT INTO staff (email, name) VALUES (E'evil@example.com\\r\\nBcc: x@y', 'Evil')",
                "INSERT INTO staff (email, name) VALUES (NULL, 'Nobody'), ('not-an-address', 'X')",
            ],
        );
        let staff = DieselRecipients::new(&store);
        recipients_conformance(&staff, &expected()).await;
        assert_eq!(staff.active().await.unwrap().rejected.len(), 3);
        let writing = DieselRecipients::new(&store).query(
            "WITH gone AS (DELETE FROM staff RETURNING email, name) SELECT email, name FROM gone",
        );
        assert!(
            writing.active().await.is_err(),
            "the query runs in a read-only transaction"
        );
        assert_eq!(staff.active().await.unwrap().valid.len(), 2);
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sqlite_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let _store = DieselStore::connect(&sqlite_url(&dir)).await.unwrap();
    let mode = std::fs::metadata(dir.path().join("ip-monitor.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_recipients_database_is_only_read() {
    let dir = tempfile::tempdir().unwrap();
    let app = format!("sqlite://{}", dir.path().join("app.db").display());
    ip_monitor_testkit::sql::exec(
        &app,
        &[
            STAFF_SQLITE,
            "INSERT INTO staff (email, name) VALUES ('ana@example.com', 'Ana'), ('ben@example.com', NULL)",
        ]
        .join(";\n"),
    );
    let staff = DieselRecipients::connect(&app).await.unwrap();
    recipients_conformance(&staff, &expected()).await;
    use diesel::{Connection, RunQueryDsl};
    let mut conn =
        diesel::SqliteConnection::establish(dir.path().join("app.db").to_str().unwrap()).unwrap();
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let tables: Vec<Name> =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'")
            .load(&mut conn)
            .unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["staff"],
        "no ip_monitor tables in the application's database"
    );
}

#[derive(diesel::QueryableByName)]
struct IndexName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// The delivery table's indexes: the primary key and the unique key aside, only the due
/// index (superseding reads it too; a `(family, state)` index only slowed every write).
fn delivery_indexes(url: &str) -> Vec<String> {
    use diesel::{Connection, RunQueryDsl};
    let mut names: Vec<String> = if let Some(path) = url.strip_prefix("sqlite://") {
        diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = 'ip_monitor_deliveries' AND sql IS NOT NULL",
        )
        .load::<IndexName>(&mut diesel::SqliteConnection::establish(path).unwrap())
        .unwrap()
    } else {
        diesel::sql_query(
            "SELECT indexname::text AS name FROM pg_indexes \
             WHERE tablename = 'ip_monitor_deliveries' AND indexdef NOT LIKE '%UNIQUE%'",
        )
        .load::<IndexName>(&mut diesel::PgConnection::establish(url).unwrap())
        .unwrap()
    }
    .into_iter()
    .map(|i| i.name)
    .collect();
    names.sort();
    names
}

/// Delivery rows as versions before the typed recipient kind wrote them: a channel as
/// `NAME@channel.invalid`, a DNS record as the channel `dns-NAME`.
const OLD_ROWS: &str = "INSERT INTO ip_monitor_changes (family, address, previous, url, kind, \
     detected_at_ms, deliveries) VALUES ('v4', '81.2.69.160', NULL, 'http://81.2.69.160:8008/', \
     'change', 1800000000000, 3);\n\
     INSERT INTO ip_monitor_current (family, address, since_ms, change_id) \
     SELECT 'v4', '81.2.69.160', 1800000000000, max(id) FROM ip_monitor_changes;\n\
     INSERT INTO ip_monitor_deliveries (change_id, family, change_kind, address, url, email, \
     email_key, name, state, attempts, created_at_ms, next_attempt_at_ms) \
     SELECT max(c.id), 'v4', 'change', '81.2.69.160', 'http://81.2.69.160:8008/', r.email, \
     lower(r.email), r.name, r.state, 0, 1800000000000, 1800000000000 \
     FROM ip_monitor_changes c, (SELECT 'Ana@example.com' AS email, 'Ana' AS name, 'sent' AS state \
     UNION ALL SELECT 'ops-chat@channel.invalid', 'ops-chat', 'pending' \
     UNION ALL SELECT 'dns-www.example.com@channel.invalid', 'dns-www.example.com', 'pending') r \
     GROUP BY r.email, r.name, r.state;";

/// The rows of [`OLD_ROWS`], after the migrations: each recipient of its kind, keyed so that
/// telling the same recipients again adds nothing.
async fn old_rows_read_back_typed(store: &DieselStore) {
    use ip_monitor_core::{Holder, RecipientKind, StateStore};
    let change = store.history(1).await.unwrap()[0].id;
    let mut got: Vec<(RecipientKind, String, Option<String>)> = store
        .deliveries(change)
        .await
        .unwrap()
        .into_iter()
        .map(|d| {
            let r = d.recipient;
            (r.kind(), r.email().to_owned(), r.name().map(str::to_owned))
        })
        .collect();
    got.sort();
    let own = |s: &str| Some(s.to_owned());
    assert_eq!(
        got,
        [
            (RecipientKind::Staff, "Ana@example.com".into(), own("Ana")),
            (RecipientKind::Channel, "ops-chat".into(), own("ops-chat")),
            (
                RecipientKind::DnsRecord,
                "www.example.com".into(),
                own("www.example.com")
            ),
        ]
    );
    let holder = Holder::this_process();
    let lease = store
        .acquire_lease(&holder, std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let same = [
        Recipient::new("ana@example.com", None::<&str>).unwrap(),
        Recipient::channel("ops-chat").unwrap(),
        Recipient::dns_record("www.example.com").unwrap(),
    ];
    let added = store
        .add_recipients(&lease, std::time::SystemTime::now(), change, &same, false)
        .await
        .unwrap();
    assert_eq!(added, 0, "the migrated rows are keyed as new ones are");
}

/// A store made by the first version of the schema (which had a `(family, state)` index)
/// is brought up to date, its data kept; a fresh one is made up to date at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_schema_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    ip_monitor_testkit::sql::exec(
        &url,
        &format!(
            "{}\nCREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n\
             INSERT INTO __diesel_schema_migrations (version) VALUES ('20261125000001');\n\
             CREATE INDEX ip_monitor_deliveries_family ON ip_monitor_deliveries (family, state);\n\
             UPDATE ip_monitor_control SET desired_state = 'paused';\n{OLD_ROWS}",
            include_str!("../migrations/sqlite/2026-11-25-000001_ip_monitor/up.sql")
        ),
    );
    assert_eq!(
        delivery_indexes(&url),
        ["ip_monitor_deliveries_due", "ip_monitor_deliveries_family"]
    );
    let store = DieselStore::connect(&url).await.unwrap();
    use ip_monitor_core::{DesiredState, StateStore};
    assert_eq!(store.desired_state().await.unwrap(), DesiredState::Paused);
    assert_eq!(delivery_indexes(&url), ["ip_monitor_deliveries_due"]);
    old_rows_read_back_typed(&store).await;

    let fresh = tempfile::tempdir().unwrap();
    let url = sqlite_url(&fresh);
    DieselStore::connect(&url).await.unwrap();
    assert_eq!(delivery_indexes(&url), ["ip_monitor_deliveries_due"]);
}
