//! UPnP IGD against a gateway that serves its description and control point as the UPnP
//! spec lays them out: by the description's URL on loopback, found by an SSDP search in a
//! network namespace of the test's own, refused behind double NAT — and the fake gateway
//! checked by miniupnpc's `upnpc` where it is installed.
#![cfg(feature = "upnp")]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ip_monitor_core::{Family, IpSource, SourceError, SourceSet, UpnpSource};
use ip_monitor_testkit::igd::Igd;

async fn ask(source: UpnpSource, family: Family) -> Result<IpAddr, SourceError> {
    let source: Arc<dyn IpSource> = Arc::new(source);
    SourceSet::ask(&source, family, Duration::from_secs(5))
        .await
        .0
}

#[tokio::test]
async fn the_gateway_at_its_description_url_gives_its_external_address() {
    let igd = Igd::start("127.0.0.1:0", "81.2.69.160").await;
    let source = UpnpSource::new().unwrap().url(igd.description_url());
    assert_eq!(
        ask(source.clone(), Family::V4).await.unwrap().to_string(),
        "81.2.69.160"
    );
    let v6 = ask(source.clone(), Family::V6).await.unwrap_err();
    assert!(matches!(v6, SourceError::Unsupported { .. }), "{v6:?}");
    // Behind another NAT the gateway's own external address is private or CGNAT.
    for inner in ["10.0.0.2", "100.64.1.1"] {
        igd.set_external(inner);
        let err = ask(source.clone(), Family::V4).await.unwrap_err();
        assert!(
            matches!(err, SourceError::NonGlobal { .. }),
            "{inner}: {err:?}"
        );
    }
    igd.set_external("not an address");
    let err = ask(source, Family::V4).await.unwrap_err();
    assert!(matches!(err, SourceError::Invalid { .. }), "{err:?}");
    let missing = UpnpSource::new()
        .unwrap()
        .url(format!("http://{}/nothing.xml", igd.http.addr));
    let err = ask(missing, Family::V4).await.unwrap_err();
    assert!(
        matches!(err, SourceError::Status { status: 404 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_fake_gateway_speaks_upnp_as_miniupnpc_reads_it() {
    if std::process::Command::new("upnpc").output().is_err() {
        eprintln!("skipped: upnpc (Debian package miniupnpc) is not installed");
        return;
    }
    let igd = Igd::start("127.0.0.1:0", "81.2.69.160").await;
    let out = tokio::process::Command::new("upnpc")
        .args(["-u", &igd.description_url(), "-s"])
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("ExternalIPAddress = 81.2.69.160"), "{shown}");
}

#[cfg(target_os = "linux")]
#[test]
fn the_gateway_is_found_by_an_ssdp_search_on_the_lan() {
    use ip_monitor_testkit::netns;
    if !netns::isolated("the_gateway_is_found_by_an_ssdp_search_on_the_lan") {
        return;
    }
    netns::lan();
    netns::block_on(async {
        let source = UpnpSource::new().unwrap();
        // Nobody answers the search yet.
        let err = ask(source.clone(), Family::V4).await.unwrap_err();
        assert!(
            err.to_string().contains("no Internet Gateway Device"),
            "{err}"
        );
        let mut igd = Igd::start("192.168.7.1:0", "81.2.69.161").await;
        igd.answer_searches().await;
        let got = ask(source, Family::V4).await.unwrap();
        assert_eq!(got.to_string(), "81.2.69.161");
    });
}
