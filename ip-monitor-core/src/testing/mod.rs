//! Conformance rules any [`StateStore`], [`Recipients`], [`IpSource`](crate::IpSource) or
//! [`Notifier`](crate::Notifier) implementation can run, one public function per rule.
//!
//! Each rule panics with a message naming what broke. Run each store rule on a fresh,
//! empty store, in this order (as every store of this workspace does):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use ip_monitor_core::{MemoryStore, testing::*};
//! store_conformance(&MemoryStore::new()).await;
//! lapse_conformance(&MemoryStore::new()).await;
//! new_recipients_conformance(&MemoryStore::new()).await;
//! recipient_kinds_conformance(&MemoryStore::new()).await;
//! monitor_conformance(std::sync::Arc::new(MemoryStore::new())).await;
//! # #[cfg(feature = "web")]
//! web_conformance(std::sync::Arc::new(MemoryStore::new())).await;
//! # }
//! ```

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

mod deferral;
mod hooked;
mod lapse;
mod monitor;
mod parts;
mod recipients;
mod store;
#[cfg(feature = "web")]
mod web;

pub use lapse::lapse_conformance;
pub use monitor::monitor_conformance;
pub use parts::{notifier_conformance, source_conformance};
pub use recipients::{
    new_recipients_conformance, recipient_kinds_conformance, recipients_conformance,
};
pub use store::store_conformance;
#[cfg(feature = "web")]
pub use web::web_conformance;

use crate::address::Family;
use crate::recipients::Recipient;
use crate::store::{
    ChangeKind, Delivery, DeliveryResult, DeliveryUpdate, Holder, Lease, NewChange, Recorded,
    StateStore,
};

fn t(secs: u64) -> SystemTime {
    // A fixed, recent base keeps the suite independent of the machine's clock.
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn holder(id: &str) -> Holder {
    Holder {
        id: id.to_owned(),
        host: "conformance".to_owned(),
        pid: 4242,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn people(n: usize) -> Vec<Recipient> {
    (0..n)
        .map(|i| {
            Recipient::new(
                format!("person{i}@example.com"),
                Some(format!("Person {i}")),
            )
            .expect("valid")
        })
        .collect()
}

fn change(family: Family, address: &str, previous: Option<&str>, kind: ChangeKind) -> NewChange {
    NewChange {
        family,
        address: ip(address),
        previous: previous.map(ip),
        url: format!("http://{address}:8008/"),
        kind,
    }
}

/// Let `lease` lapse: renew it with a short ttl and wait, on the real clock, until the
/// store's clock has passed it. Returns the (now stale) lease.
async fn lapse(store: &dyn StateStore, holder: &Holder, lease: Lease) -> Lease {
    let short = Duration::from_millis(150);
    let renewed = store
        .acquire_lease(holder, short)
        .await
        .unwrap()
        .expect("the holder renews");
    assert_eq!(renewed.fence, lease.fence, "renewal keeps the fence");
    for _ in 0..100 {
        tokio::time::sleep(short).await;
        if store.lease().await.unwrap().is_none() {
            return renewed;
        }
    }
    panic!("a lease renewed for {short:?} was still valid 15 s later");
}

fn result(d: &Delivery, update: DeliveryUpdate) -> DeliveryResult {
    DeliveryResult {
        id: d.id,
        fence: d.fence.expect("claimed deliveries carry their fence"),
        update,
    }
}

/// Record one result and insist that it was applied.
async fn finish(
    store: &dyn StateStore,
    lease: &Lease,
    now: SystemTime,
    d: &Delivery,
    update: DeliveryUpdate,
) {
    assert_eq!(
        store
            .finish_deliveries(lease, now, &[result(d, update)])
            .await
            .unwrap(),
        [Recorded::Applied],
        "a result for a delivery in flight under its fence is recorded"
    );
}

/// The delivery `id` of `all`.
fn by_id(id: i64, all: &[Delivery]) -> Delivery {
    all.iter()
        .find(|d| d.id == id)
        .cloned()
        .expect("the delivery is listed")
}
