//! The rules about recipients: [`Recipients`] implementations, the typed kinds a store
//! keeps, and [`StateStore::add_recipients`].

use std::time::Duration;

use super::{change, finish, holder, people, t};
use crate::address::Family;
use crate::recipients::{Recipient, RecipientKind, Recipients};
use crate::store::{
    Change, ChangeKind, Delivery, DeliveryState, DeliveryUpdate, Lease, StateStore, StoreError,
};

/// [`StateStore::add_recipients`]: the current change's notice for those who have none
/// (sent or failed counts as told), once; never for a change that is no longer current,
/// nor for one nobody was told of with `only_if_announced`, nor under a stale lease.
/// `store` must be empty.
pub async fn new_recipients_conformance(store: &dyn StateStore) {
    let lease = store
        .acquire_lease(&holder("conformance-new"), Duration::from_secs(3600))
        .await
        .unwrap()
        .expect("a new store's lease is free");
    let c = told_once(store, &lease).await;
    not_after_the_change(store, &lease, &c).await;
    store.release_lease(&lease).await.unwrap();
}

/// Those on the list without a delivery get one, due now, counted by the change.
async fn told_once(store: &dyn StateStore, lease: &Lease) -> Change {
    let now = t(5000);
    let staff = people(3);
    let c = store
        .record_change(
            lease,
            now,
            change(
                Family::V4,
                "81.2.69.180",
                Some("81.2.69.170"),
                ChangeKind::Change,
            ),
            &staff[..2],
        )
        .await
        .unwrap();
    let claimed = store.claim_deliveries(lease, now, 100).await.unwrap();
    let first: Vec<&Delivery> = claimed.iter().filter(|d| d.change_id == c.id).collect();
    assert_eq!(first.len(), 2);
    finish(store, lease, now, first[0], DeliveryUpdate::Sent).await;
    let failed = DeliveryUpdate::Failed {
        error: "550 no such user".into(),
    };
    finish(store, lease, now, first[1], failed).await;

    // Everyone on the list: only the one without a delivery (sent or failed) is added.
    let mut list = staff.clone();
    list.push(Recipient::new("PERSON2@example.com", None::<&str>).unwrap());
    let later = t(5100);
    let added = store
        .add_recipients(lease, later, c.id, &list, true)
        .await
        .unwrap();
    assert_eq!(
        added, 1,
        "one new recipient, once (addresses compared as keys)"
    );
    let all = store.deliveries(c.id).await.unwrap();
    assert_eq!(all.len(), 3);
    let new = all
        .iter()
        .find(|d| d.recipient.key() == staff[2].key())
        .expect("the new recipient's delivery");
    assert_eq!(
        (new.state, new.next_attempt_at, new.url.as_str()),
        (DeliveryState::Pending, later, c.url.as_str()),
        "pending, due now, with the change's URL"
    );
    assert_eq!(
        store.history(1).await.unwrap()[0].deliveries,
        3,
        "the change counts it"
    );
    assert_eq!(
        store
            .add_recipients(lease, later, c.id, &list, true)
            .await
            .unwrap(),
        0,
        "again: nobody new"
    );
    c
}

/// Not for a superseded change, nor an unannounced one with `only_if_announced`, nor under
/// a stale lease.
async fn not_after_the_change(store: &dyn StateStore, lease: &Lease, c: &Change) {
    let later = t(5100);
    // Not for a change that is no longer current, nor under a lease that lapsed.
    let newer = store
        .record_change(
            lease,
            later,
            change(
                Family::V4,
                "81.2.69.181",
                Some("81.2.69.180"),
                ChangeKind::Change,
            ),
            &[],
        )
        .await
        .unwrap();
    let more = people(5);
    assert_eq!(
        store
            .add_recipients(lease, later, c.id, &more, false)
            .await
            .unwrap(),
        0,
        "a superseded change gets nobody"
    );
    // The newer change was recorded without telling anyone.
    assert_eq!(
        store
            .add_recipients(lease, later, newer.id, &more, true)
            .await
            .unwrap(),
        0,
        "only_if_announced: a change nobody was told of stays so"
    );
    assert_eq!(
        store
            .add_recipients(lease, later, newer.id, &more, false)
            .await
            .unwrap(),
        5,
        "without only_if_announced everyone on the list gets it"
    );
    let stale = Lease {
        fence: lease.fence + 1000,
        ..lease.clone()
    };
    assert!(matches!(
        store
            .add_recipients(&stale, later, newer.id, &people(6), false)
            .await,
        Err(StoreError::LeaseLost)
    ));
}

/// A store keeps each recipient's [`RecipientKind`]: staff, a channel and a DNS record of
/// the same name read back as what they are, each once per change, and the same
/// recipients again add nothing. `store` must be empty.
pub async fn recipient_kinds_conformance(store: &dyn StateStore) {
    let lease = store
        .acquire_lease(&holder("conformance-kinds"), Duration::from_secs(3600))
        .await
        .unwrap()
        .expect("a new store's lease is free");
    let all = [
        Recipient::new("ops@example.com", Some("Ops")).unwrap(),
        Recipient::channel("ops").unwrap(),
        Recipient::dns_record("ops").unwrap(),
        Recipient::dns_record("www.example.com").unwrap(),
        Recipient::channel("ops").unwrap(),
    ];
    let now = t(200);
    let c = store
        .record_change(
            &lease,
            now,
            change(Family::V4, "81.2.69.160", None, ChangeKind::Change),
            &all,
        )
        .await
        .unwrap();
    assert_eq!(c.deliveries, 4, "one delivery per distinct kind and name");
    let mut got: Vec<(RecipientKind, String, Option<String>)> = store
        .deliveries(c.id)
        .await
        .unwrap()
        .into_iter()
        .map(|d: Delivery| {
            let r = d.recipient;
            (r.kind(), r.email().to_owned(), r.name().map(str::to_owned))
        })
        .collect();
    got.sort();
    let named = |s: &str| Some(s.to_owned());
    assert_eq!(
        got,
        [
            (RecipientKind::Staff, "ops@example.com".into(), named("Ops")),
            (RecipientKind::Channel, "ops".into(), named("ops")),
            (RecipientKind::DnsRecord, "ops".into(), named("ops")),
            (
                RecipientKind::DnsRecord,
                "www.example.com".into(),
                named("www.example.com")
            ),
        ],
        "each recipient reads back as its kind"
    );
    let claimed = store.claim_deliveries(&lease, now, 10).await.unwrap();
    assert!(
        claimed
            .iter()
            .any(|d| d.recipient.kind() == RecipientKind::DnsRecord),
        "a claimed delivery keeps its kind"
    );
    assert_eq!(
        store
            .add_recipients(&lease, now, c.id, &all, false)
            .await
            .unwrap(),
        0,
        "the same recipients again add nothing"
    );
    store.release_lease(&lease).await.unwrap();
}

/// A [`Recipients`] implementation returns exactly `expected` (in any order), every one
/// valid and distinct, the same on every read.
pub async fn recipients_conformance(recipients: &dyn Recipients, expected: &[Recipient]) {
    let first = recipients.active().await.expect("recipients readable");
    let mut got: Vec<_> = first
        .valid
        .iter()
        .map(|r| (r.key(), r.name().map(str::to_owned)))
        .collect();
    let mut want: Vec<_> = expected
        .iter()
        .map(|r| (r.key(), r.name().map(str::to_owned)))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the active recipients");
    let mut keys: Vec<_> = first.valid.iter().map(Recipient::key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        first.valid.len(),
        "recipients are distinct by address"
    );
    for r in &first.valid {
        assert!(
            Recipient::new(r.email(), r.name()).is_ok(),
            "every returned recipient is valid: {r:?}"
        );
    }
    let second = recipients
        .active()
        .await
        .expect("recipients readable twice");
    assert_eq!(second.valid.len(), first.valid.len(), "reads are stable");
}
