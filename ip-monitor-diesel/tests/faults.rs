//! Faults injected inside the database: a change is never recorded without its deliveries,
//! and deliveries never exist without their change.

use std::time::{Duration, SystemTime};

use ip_monitor_core::*;
use ip_monitor_diesel::DieselStore;
use ip_monitor_testkit::sql::exec;

fn people(n: usize) -> Vec<Recipient> {
    (0..n)
        .map(|i| Recipient::new(format!("staff{i}@example.com"), None::<&str>).unwrap())
        .collect()
}

fn change(address: &str) -> NewChange {
    NewChange {
        family: Family::V4,
        address: address.parse().unwrap(),
        previous: None,
        url: format!("http://{address}:8008/"),
        kind: ChangeKind::Change,
    }
}

/// A lease on `store` for the whole test.
async fn lease(store: &DieselStore) -> Lease {
    store
        .acquire_lease(&Holder::this_process(), Duration::from_secs(600))
        .await
        .unwrap()
        .expect("a fresh store's lease is free")
}

/// Make the Nth delivery row insert fail, for every N across a change of 2,500 recipients
/// (three insert statements of up to 1,000 rows): each attempt must leave nothing behind,
/// and the store must still work afterwards.
async fn fail_on_the_nth_row(store: DieselStore, arm: impl Fn(usize) -> String, disarm: &str) {
    let url = store.url();
    let (lease, now) = (lease(&store).await, SystemTime::now());
    let first = store
        .record_change(&lease, now, change("81.2.69.160"), &people(3))
        .await
        .unwrap();
    let staff = people(2_500);
    for n in [0, 1, 999, 1_000, 1_001, 2_499] {
        exec(&url, &arm(n));
        let err = store
            .record_change(&lease, now, change("81.2.69.161"), &staff)
            .await
            .expect_err("the injected fault aborts the change");
        assert!(err.to_string().contains("injected"), "{err}");
        exec(&url, disarm);
        let history = store.history(10).await.unwrap();
        assert_eq!(
            history.len(),
            1,
            "fault at row {n}: no change without its deliveries"
        );
        assert_eq!(
            store.current(Family::V4).await.unwrap().unwrap().change_id,
            first.id,
            "current unchanged"
        );
        let counts = store.delivery_counts().await.unwrap();
        assert_eq!(
            counts.pending, 3,
            "fault at row {n}: no deliveries without their change, none superseded"
        );
        assert_eq!(counts.superseded, 0);
    }
    let ok = store
        .record_change(&lease, now, change("81.2.69.161"), &staff)
        .await
        .unwrap();
    assert_eq!(ok.deliveries, 2_500);
    assert_eq!(store.deliveries(ok.id).await.unwrap().len(), 2_500);
    assert_eq!(store.delivery_counts().await.unwrap().superseded, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_change_and_deliveries_commit_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = DieselStore::connect(&format!("sqlite://{}", dir.path().join("f.db").display()))
        .await
        .unwrap();
    fail_on_the_nth_row(
        store,
        |n| {
            format!(
                "CREATE TRIGGER inject BEFORE INSERT ON ip_monitor_deliveries \
                 WHEN (SELECT count(*) FROM ip_monitor_deliveries WHERE change_id = NEW.change_id) >= {n} \
                 BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
            )
        },
        "DROP TRIGGER inject;",
    )
    .await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn postgres_change_and_deliveries_commit_together() {
    let store = DieselStore::connect(&ip_monitor_testkit::pg::fresh_database())
        .await
        .unwrap();
    fail_on_the_nth_row(
        store,
        |n| {
            format!(
                "CREATE OR REPLACE FUNCTION inject() RETURNS trigger AS $$ BEGIN \
                   IF (SELECT count(*) FROM ip_monitor_deliveries WHERE change_id = NEW.change_id) >= {n} THEN \
                     RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER inject BEFORE INSERT ON ip_monitor_deliveries FOR EACH ROW EXECUTE FUNCTION inject();"
            )
        },
        "DROP TRIGGER inject ON ip_monitor_deliveries;",
    )
    .await;
}

/// A delivery row that cannot be read back (written by hand, or by a broken tool) is failed
/// with the reason instead of being claimed again and again, and the others are claimed.
async fn an_unreadable_row_is_failed_not_retried_forever(store: DieselStore) {
    let (lease, now) = (lease(&store).await, SystemTime::now());
    store
        .record_change(&lease, now, change("81.2.69.160"), &people(3))
        .await
        .unwrap();
    exec(
        &store.url(),
        "UPDATE ip_monitor_deliveries SET email = 'no address' WHERE email = 'staff1@example.com'",
    );
    let claimed = store.claim_deliveries(&lease, now, 10).await.unwrap();
    let mut emails: Vec<&str> = claimed.iter().map(|d| d.recipient.email()).collect();
    emails.sort();
    assert_eq!(emails, ["staff0@example.com", "staff2@example.com"]);
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!(
        (counts.failed, counts.in_flight, counts.pending),
        (1, 2, 0),
        "the unreadable row is failed"
    );
    assert!(
        store
            .claim_deliveries(&lease, now, 10)
            .await
            .unwrap()
            .is_empty(),
        "and never claimed again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_unreadable_rows_do_not_stall_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = DieselStore::connect(&format!("sqlite://{}", dir.path().join("u.db").display()))
        .await
        .unwrap();
    an_unreadable_row_is_failed_not_retried_forever(store).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn postgres_unreadable_rows_do_not_stall_the_outbox() {
    let store = DieselStore::connect(&ip_monitor_testkit::pg::fresh_database())
        .await
        .unwrap();
    an_unreadable_row_is_failed_not_retried_forever(store).await;
}

/// The server ends the store's session (a restart, a failover, an administrator's
/// `pg_terminate_backend`): the call that finds out fails with a transient error, and the
/// next call works on a new session — even right after, when the pool hands out a connection
/// that it used a moment ago without testing it first.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn postgres_a_session_ended_by_the_server_costs_one_failed_call() {
    let url = ip_monitor_testkit::pg::fresh_database();
    let store = DieselStore::builder(&url)
        .pool_size(1)
        .connect()
        .await
        .unwrap();
    store.delivery_counts().await.unwrap();
    let database = url.rsplit('/').next().unwrap().to_owned();
    exec(
        &ip_monitor_testkit::pg::server_url().unwrap(),
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ),
    );
    let err = store
        .delivery_counts()
        .await
        .expect_err("the session is gone");
    assert!(err.is_transient(), "a lost session is transient: {err}");
    store
        .delivery_counts()
        .await
        .expect("the next call opens a new session");
}
