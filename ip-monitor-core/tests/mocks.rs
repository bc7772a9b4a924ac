//! The `mock` feature's mockall mocks drive a monitor.
#![cfg(feature = "mock")]

use std::sync::Arc;
use std::time::Duration;

use ip_monitor_core::notify::MockNotifier;
use ip_monitor_core::recipients::MockRecipients;
use ip_monitor_core::source::MockIpSource;
use ip_monitor_core::*;

#[tokio::test(start_paused = true)]
async fn mocks_stand_in_for_every_trait() {
    let mut source = MockIpSource::new();
    source.expect_name().return_const("mock".to_owned());
    source.expect_scope().return_const(Scope::Public);
    source.expect_allow_non_global().return_const(false);
    source
        .expect_fetch()
        .returning(|_| Ok("81.2.69.160".parse().unwrap()));

    let mut recipients = MockRecipients::new();
    recipients.expect_active().times(1).returning(|| {
        Ok(RecipientList::from_rows([(
            "ana@example.com",
            None::<&str>,
        )]))
    });

    let mut notifier = MockNotifier::new();
    notifier
        .expect_send()
        .withf(|notice, r, permit| {
            notice.url == "http://81.2.69.160:8008/"
                && r.email() == "ana@example.com"
                && permit.is_valid()
        })
        .times(1)
        .returning(|_, _, _| Ok(Sent::direct()));

    let handle = Monitor::builder(
        SourceSet::new(vec![Arc::new(source)]),
        MemoryStore::new(),
        recipients,
        notifier,
    )
    .clock(TokioClock::new())
    .build()
    .unwrap()
    .spawn();
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_store_mock_reports_lease_loss() {
    let mut store = ip_monitor_core::store::MockStateStore::new();
    store
        .expect_desired_state()
        .returning(|| Err(StoreError::LeaseLost));
    let store: Arc<dyn StateStore> = Arc::new(store);
    assert!(matches!(
        store.desired_state().await,
        Err(StoreError::LeaseLost)
    ));
}
