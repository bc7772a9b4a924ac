//! NAT-PMP and PCP against a router on an address of the test's own network namespace
//! (port 5351 is fixed by the RFCs): the external address, double NAT, refusals, the PCP
//! mapping deleted again, the announcement that wakes a check — and the fake router checked
//! by libnatpmp's `natpmpc` where it is installed.
#![cfg(all(target_os = "linux", feature = "router", feature = "interfaces"))]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ip_monitor_core::{
    Event, Family, IpSource, MemoryStore, Monitor, MonitorConfig, RecordingNotifier, RouterSource,
    RouterWatch, SourceError, SourceSet, StaticRecipients,
};
use ip_monitor_testkit::netns::{self, block_on, ip, lan};
use ip_monitor_testkit::router::Router;

const GATEWAY: &str = "192.168.7.1";

fn external(ip: &str) -> IpAddr {
    ip.parse().unwrap()
}

async fn ask(source: RouterSource, family: Family) -> Result<IpAddr, SourceError> {
    let source: Arc<dyn IpSource> = Arc::new(source);
    SourceSet::ask(&source, family, Duration::from_secs(5))
        .await
        .0
}

#[test]
fn nat_pmp_gives_the_routers_external_address_and_refuses_double_nat() {
    if !netns::isolated("nat_pmp_gives_the_routers_external_address_and_refuses_double_nat") {
        return;
    }
    let gateway = lan();
    block_on(async {
        let router = Router::start(gateway, external("81.2.69.160")).await;
        // "auto": the default route's gateway.
        let got = ask(RouterSource::nat_pmp(), Family::V4).await.unwrap();
        assert_eq!(got, external("81.2.69.160"));
        assert_eq!(router.asked(), 1);
        let v6 = ask(RouterSource::nat_pmp(), Family::V6).await.unwrap_err();
        assert!(matches!(v6, SourceError::Unsupported { .. }), "{v6:?}");
        // Behind another NAT the router's own external address is private or CGNAT.
        for inner in ["100.64.3.4", "192.168.0.2", "0.0.0.0"] {
            router.set_external(external(inner));
            let err = ask(RouterSource::nat_pmp(), Family::V4).await.unwrap_err();
            assert!(
                matches!(err, SourceError::NonGlobal { .. }),
                "{inner}: {err:?}"
            );
        }
        // A refusal is for good; a router that does not answer is a passing trouble.
        router.set_result(2);
        let err = ask(RouterSource::nat_pmp(), Family::V4).await.unwrap_err();
        assert!(matches!(err, SourceError::Router(_)), "{err:?}");
        assert!(!err.is_transient());
        let nobody = RouterSource::nat_pmp().gateway(external("192.168.7.9"));
        let err = ask(nobody, Family::V4).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    });
}

#[test]
fn pcp_maps_a_port_reads_the_external_address_and_deletes_the_mapping() {
    if !netns::isolated("pcp_maps_a_port_reads_the_external_address_and_deletes_the_mapping") {
        return;
    }
    let gateway = lan();
    block_on(async {
        let router = Router::start(gateway, external("81.2.69.161")).await;
        let pcp = RouterSource::pcp().gateway(gateway);
        assert_eq!(
            ask(pcp.clone(), Family::V4).await.unwrap(),
            external("81.2.69.161")
        );
        let maps = router.maps();
        assert_eq!(maps.len(), 2, "a mapping, then its deletion: {maps:?}");
        assert_eq!((maps[0].0, maps[1].0), (60, 0));
        assert_eq!(maps[0].1, maps[1].1, "the same port deleted");
        router.set_external(external("100.64.0.1"));
        let err = ask(pcp.clone(), Family::V4).await.unwrap_err();
        assert!(matches!(err, SourceError::NonGlobal { .. }), "{err:?}");
        router.set_result(2);
        let err = ask(pcp, Family::V4).await.unwrap_err();
        assert!(matches!(err, SourceError::Router(_)), "{err:?}");
    });
}

#[test]
fn the_fake_router_speaks_nat_pmp_as_libnatpmp_reads_it() {
    if !netns::isolated("the_fake_router_speaks_nat_pmp_as_libnatpmp_reads_it") {
        return;
    }
    if std::process::Command::new("natpmpc")
        .arg("-h")
        .output()
        .is_err()
    {
        eprintln!("skipped: natpmpc (Debian package natpmpc) is not installed");
        return;
    }
    let gateway = lan();
    block_on(async {
        let _router = Router::start(gateway, external("81.2.69.160")).await;
        let out = tokio::process::Command::new("natpmpc")
            .args(["-g", GATEWAY])
            .output()
            .await
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            shown.contains("Public IP address : 81.2.69.160"),
            "{shown}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

async fn wait_for_change(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    within: Duration,
) -> Option<IpAddr> {
    tokio::time::timeout(within, async {
        loop {
            match events.recv().await {
                Ok(Event::Changed(c)) => return Some(c.address),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

#[test]
fn the_routers_announcement_is_checked_at_once_and_a_strangers_is_not() {
    if !netns::isolated("the_routers_announcement_is_checked_at_once_and_a_strangers_is_not") {
        return;
    }
    let gateway = lan();
    // A stranger on the LAN.
    ip("addr add 192.168.7.66/24 dev veth1");
    block_on(async {
        let router = Router::start(gateway, external("81.2.69.160")).await;
        let stranger = Router::start(external("192.168.7.66"), external("81.2.69.99")).await;
        let config = MonitorConfig {
            // No probes, and the next full check an hour away: only the announcement tells.
            probe_interval: Duration::ZERO,
            interval: Duration::from_secs(3600),
            ..MonitorConfig::default()
        };
        let monitor = Monitor::builder(
            SourceSet::new(vec![Arc::new(RouterSource::nat_pmp())]),
            MemoryStore::new(),
            StaticRecipients::new(["ana@example.com"]),
            RecordingNotifier::new(),
        )
        .config(config)
        .build()
        .unwrap()
        .spawn();
        monitor.check_now().await.unwrap();
        let _watch = RouterWatch::spawn(monitor.clone(), vec![RouterSource::nat_pmp()]).unwrap();
        let mut events = monitor.subscribe();

        stranger.announce().await;
        router.set_external(external("81.2.69.170"));
        assert_eq!(
            wait_for_change(&mut events, Duration::from_secs(2)).await,
            None,
            "an announcement from a host that is not the gateway was acted on"
        );
        router.announce().await;
        assert_eq!(
            wait_for_change(&mut events, Duration::from_secs(5)).await,
            Some(external("81.2.69.170"))
        );

        // A burst of announcements, each of another address (as a forger on the LAN could
        // send): at most one check a second.
        for i in 0..6 {
            router.set_external(external(&format!("81.2.69.{}", 180 + i)));
            router.announce().await;
        }
        let mut seen = 0;
        let counted = async {
            while let Ok(event) = events.recv().await {
                if matches!(event, Event::Checked { .. }) {
                    seen += 1;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(1500), counted).await;
        assert!((1..=2).contains(&seen), "{seen} checks in 1.5 s");
        monitor.shutdown().await.unwrap();
    });
}
