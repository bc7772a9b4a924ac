//! The interface source, the local source's IPv6 choice and the interface watch, against
//! the kernel's own address table: each test runs in a network namespace of its own with a
//! veth pair whose addresses it sets with `ip` (skipped where namespaces cannot be made).
#![cfg(target_os = "linux")]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ip_monitor_core::{
    Event, Family, InterfaceSource, InterfaceWatch, IpSource, LocalInterfaceSource, MemoryStore,
    Monitor, MonitorConfig, Prefer, RecordingNotifier, SourceSet, StaticRecipients,
};
use ip_monitor_testkit::netns::{self, block_on, ip, ip_output};

/// The temporary address the kernel made on `veth0`.
fn temporary_address() -> IpAddr {
    let shown = ip_output("-6 addr show dev veth0 temporary");
    let word = shown
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .expect("the kernel made a temporary address");
    word.split('/').next().unwrap().parse().unwrap()
}

#[test]
fn ipv6_is_the_stable_global_address_never_a_temporary_one() {
    if !netns::isolated("ipv6_is_the_stable_global_address_never_a_temporary_one") {
        return;
    }
    netns::veth();
    // With `mngtmpaddr` and use_tempaddr = 2 the kernel adds a temporary address of the prefix
    // and prefers it as the source address, as on a desktop with privacy extensions.
    ip("addr add 2a01:4f8:1::1/64 dev veth0 mngtmpaddr");
    ip("addr add fd00::1/64 dev veth0 nodad");
    ip("-6 route add default via 2a01:4f8:1::ff dev veth0 onlink");
    netns::settled("veth0");
    let temporary = temporary_address();
    let stable: IpAddr = "2a01:4f8:1::1".parse().unwrap();
    block_on(async {
        // The kernel's own choice for a route out is the temporary address...
        let socket = tokio::net::UdpSocket::bind("[::]:0").await.unwrap();
        socket.connect("[2606:4700:4700::1111]:53").await.unwrap();
        assert_eq!(socket.local_addr().unwrap().ip(), temporary);
        // ...which neither the local source nor the interface source takes.
        let local = LocalInterfaceSource::new().fetch(Family::V6).await.unwrap();
        assert_eq!(local, stable);
        let default_route = InterfaceSource::new().fetch(Family::V6).await.unwrap();
        assert_eq!(default_route, stable);
        let named = InterfaceSource::new().interface("veth0");
        assert_eq!(named.fetch(Family::V6).await.unwrap(), stable);
        assert_eq!(named.name(), "interface:veth0");
        let wants_temporary = named.clone().prefer(Prefer::Temporary);
        assert_eq!(wants_temporary.fetch(Family::V6).await.unwrap(), temporary);
    });
}

#[test]
fn tentative_deprecated_ula_and_link_local_addresses_are_never_chosen() {
    if !netns::isolated("tentative_deprecated_ula_and_link_local_addresses_are_never_chosen") {
        return;
    }
    netns::veth();
    ip("addr add fd00::1/64 dev veth0 nodad");
    ip("addr add 2a01:4f8:2::5/64 dev veth0 preferred_lft 0 nodad");
    netns::settled("veth0");
    // Duplicate address detection keeps a new address tentative for a second or so.
    ip("addr add 2a01:4f8:3::7/64 dev veth0");
    let source = InterfaceSource::new().interface("veth0");
    let err = block_on(source.fetch(Family::V6)).unwrap_err().to_string();
    for expected in [
        "2a01:4f8:3::7 tentative",
        "2a01:4f8:2::5 deprecated",
        "fd00::1 not global",
        "fe80::",
    ] {
        assert!(err.contains(expected), "{expected:?} not in {err:?}");
    }
    assert!(err.starts_with("veth0: no usable IPv6 address"), "{err}");
    netns::settled("veth0");
    let chosen = block_on(source.fetch(Family::V6)).unwrap();
    assert_eq!(chosen.to_string(), "2a01:4f8:3::7");
}

#[test]
fn ipv4_is_the_primary_global_address_of_the_interface() {
    if !netns::isolated("ipv4_is_the_primary_global_address_of_the_interface") {
        return;
    }
    netns::veth();
    ip("addr add 192.168.7.2/24 dev veth1");
    ip("addr add 81.2.69.160/24 dev veth0");
    ip("addr add 81.2.69.161/24 dev veth0");
    ip("route add default via 192.168.7.1 dev veth1");
    block_on(async {
        let named = InterfaceSource::new().interface("veth0");
        assert_eq!(
            named.fetch(Family::V4).await.unwrap().to_string(),
            "81.2.69.160"
        );
        // Behind NAT the default route's interface has a private address: no answer.
        let err = InterfaceSource::new().fetch(Family::V4).await.unwrap_err();
        assert!(err.to_string().contains("192.168.7.2 not global"), "{err}");
        let missing = InterfaceSource::new().interface("ppp9");
        let err = missing.fetch(Family::V4).await.unwrap_err();
        assert_eq!(err.to_string(), "no interface \"ppp9\"");
    });
}

/// Events until `wanted` matches one, for at most `within`.
async fn wait_for(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    within: Duration,
    wanted: impl Fn(&Event) -> bool,
) -> bool {
    tokio::time::timeout(within, async {
        while let Ok(event) = events.recv().await {
            if wanted(&event) {
                return;
            }
        }
    })
    .await
    .is_ok()
}

#[test]
fn a_replaced_address_is_checked_at_once_and_other_route_changes_are_not() {
    if !netns::isolated("a_replaced_address_is_checked_at_once_and_other_route_changes_are_not") {
        return;
    }
    netns::veth();
    ip("addr add 81.2.69.160/24 dev veth0");
    // The link-local addresses' duplicate detection ending is a change of its own.
    netns::settled("veth0");
    netns::settled("veth1");
    block_on(async {
        let notifier = RecordingNotifier::new();
        let source = InterfaceSource::new().interface("veth0");
        let config = MonitorConfig {
            // No probes, and the next full check an hour away: only the watch can tell.
            probe_interval: Duration::ZERO,
            interval: Duration::from_secs(3600),
            ..MonitorConfig::default()
        };
        let monitor = Monitor::builder(
            SourceSet::new(vec![Arc::new(source)]),
            MemoryStore::new(),
            StaticRecipients::new(["ana@example.com"]),
            notifier.clone(),
        )
        .config(config)
        .build()
        .unwrap()
        .spawn();
        let first = monitor.check_now().await.unwrap();
        assert_eq!(
            first[0].outcome.result.as_ref().unwrap().to_string(),
            "81.2.69.160"
        );
        let _watch = InterfaceWatch::spawn(monitor.clone()).unwrap();
        // Let the watch read the tables before anything changes.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut events = monitor.subscribe();

        // A route that is not a default route, and new lifetimes for the address (what a
        // router advertisement's refresh looks like), change nothing: no check.
        ip("route add 10.9.0.0/16 dev veth0");
        ip("addr change 81.2.69.160/24 dev veth0 valid_lft 7200 preferred_lft 3600");
        let checked = wait_for(&mut events, Duration::from_secs(2), |e| {
            matches!(e, Event::Checked { .. })
        });
        assert!(
            !checked.await,
            "a check ran for a change that does not matter"
        );

        ip("addr del 81.2.69.160/24 dev veth0");
        ip("addr add 81.2.69.170/24 dev veth0");
        let changed = wait_for(
            &mut events,
            Duration::from_secs(10),
            |e| matches!(e, Event::Changed(c) if c.address.to_string() == "81.2.69.170"),
        );
        assert!(changed.await, "the replaced address was not checked");
        for _ in 0..100 {
            if notifier.sent_to().len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(notifier.sent_to(), ["ana@example.com", "ana@example.com"]);
        monitor.shutdown().await.unwrap();
    });
}
