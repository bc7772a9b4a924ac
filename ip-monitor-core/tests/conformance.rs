//! The shipped in-memory implementations pass the conformance suites.
#![cfg(feature = "testing")]

use std::sync::Arc;

use ip_monitor_core::testing::*;
use ip_monitor_core::{MemoryStore, Recipient, StaticRecipients};

#[tokio::test]
async fn memory_store_conforms() {
    store_conformance(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_store_records_results_across_a_lapse() {
    lapse_conformance(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_store_tells_new_recipients() {
    new_recipients_conformance(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_store_keeps_recipient_kinds() {
    recipient_kinds_conformance(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_keeps_the_promise_through_lease_faults() {
    monitor_conformance(Arc::new(MemoryStore::new())).await;
}

#[cfg(feature = "web")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_serves_a_flood_of_readers_from_one_snapshot() {
    web_conformance(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn static_recipients_conform() {
    let staff = StaticRecipients::with_names([
        ("ana@example.com", Some("Ana")),
        ("ANA@example.com", None),
        ("broken\r\n@example.com", None),
        ("ben@example.com", None),
    ]);
    let expected = [
        Recipient::new("ana@example.com", Some("Ana")).unwrap(),
        Recipient::new("ben@example.com", None::<&str>).unwrap(),
    ];
    recipients_conformance(&staff, &expected).await;
}

#[tokio::test]
#[should_panic(expected = "the active recipients")]
async fn the_recipients_suite_catches_a_wrong_list() {
    let staff = StaticRecipients::new(["ana@example.com"]);
    recipients_conformance(
        &staff,
        &[Recipient::new("ben@example.com", None::<&str>).unwrap()],
    )
    .await;
}

#[tokio::test]
async fn static_source_and_recording_notifier_conform() {
    use ip_monitor_core::testing::{notifier_conformance, source_conformance};
    use ip_monitor_core::{RecordingNotifier, StaticIpSource};
    let source = StaticIpSource::new("fixed").with_answer("81.2.69.160".parse().unwrap());
    source_conformance(&source, "81.2.69.160".parse().unwrap()).await;
    let notifier = RecordingNotifier::new();
    notifier_conformance(&notifier, || {
        notifier
            .sent()
            .into_iter()
            .map(|(n, r)| (r.email().to_owned(), n.url))
            .collect()
    })
    .await;
}
