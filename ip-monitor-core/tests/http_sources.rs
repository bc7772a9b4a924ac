//! HTTP sources against real HTTP servers on loopback.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ip_monitor_core::source::MAX_ANSWER_BYTES;
use ip_monitor_core::{AnswerFormat, Family, HttpIpSource, IpSource, SourceError, SourceSet};
use ip_monitor_testkit::{Behavior, HttpServer, refused_port};

fn source(server: &HttpServer) -> Arc<dyn IpSource> {
    Arc::new(
        HttpIpSource::builder(server.url())
            .name("test")
            .build()
            .unwrap(),
    )
}

/// What a check of one source says: the validated answer or the error.
async fn ask(server: &HttpServer, family: Family) -> Result<IpAddr, Arc<SourceError>> {
    let set = SourceSet::new(vec![source(server)]).timeout(Duration::from_secs(2));
    let report = set.probe(family).await.unwrap();
    report.result.unwrap()
}

#[tokio::test]
async fn a_good_answer_is_returned_and_the_user_agent_names_the_crate() {
    let server = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    assert_eq!(
        ask(&server, Family::V4).await.unwrap().to_string(),
        "81.2.69.160"
    );
    let ua = server.user_agents();
    assert!(ua[0].starts_with("ip-monitor/"), "user agent {ua:?}");
}

#[tokio::test]
async fn html_is_rejected() {
    let server = HttpServer::start(
        "127.0.0.1:0",
        Behavior::ok("<html><body>81.2.69.160</body></html>"),
    )
    .await;
    let err = ask(&server, Family::V4).await.unwrap_err();
    assert!(matches!(*err, SourceError::Invalid { .. }), "{err:?}");
}

#[tokio::test]
async fn non_global_answers_are_rejected() {
    let server = HttpServer::start("127.0.0.1:0", Behavior::ok("")).await;
    for addr in [
        "192.168.1.10",
        "10.0.0.1",
        "127.0.0.1",
        "100.64.12.1",
        "192.0.2.44",
        "203.0.113.5",
        "169.254.0.9",
    ] {
        server.set(Behavior::ok(addr));
        let err = ask(&server, Family::V4).await.unwrap_err();
        assert!(
            matches!(*err, SourceError::NonGlobal { .. }),
            "{addr}: {err:?}"
        );
    }
    // ...unless the source allows them.
    let lenient: Arc<dyn IpSource> = Arc::new(
        HttpIpSource::builder(server.url())
            .allow_non_global(true)
            .build()
            .unwrap(),
    );
    server.set(Behavior::ok("192.168.1.10"));
    let report = SourceSet::new(vec![lenient])
        .probe(Family::V4)
        .await
        .unwrap();
    assert_eq!(report.result.unwrap().unwrap().to_string(), "192.168.1.10");
}

#[tokio::test]
async fn v6_answer_to_a_v4_question_is_rejected() {
    let server = HttpServer::start("127.0.0.1:0", Behavior::ok("2606:4700:4700::1111")).await;
    let err = ask(&server, Family::V4).await.unwrap_err();
    assert!(
        matches!(
            *err,
            SourceError::WrongFamily {
                expected: Family::V4,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_v6_question_goes_out_over_v6() {
    let server = HttpServer::start("[::1]:0", Behavior::ok("2606:4700:4700::1111\n")).await;
    assert_eq!(
        ask(&server, Family::V6).await.unwrap().to_string(),
        "2606:4700:4700::1111"
    );
    // A v4-bound request cannot reach a v6-only server.
    assert!(ask(&server, Family::V4).await.is_err());
}

#[tokio::test]
async fn a_large_body_is_cut_off() {
    let server = HttpServer::start(
        "127.0.0.1:0",
        Behavior::Respond {
            status: 200,
            body: vec![b'1'; 1 << 20],
            delay: Duration::ZERO,
        },
    )
    .await;
    let err = ask(&server, Family::V4).await.unwrap_err();
    assert!(
        matches!(
            *err,
            SourceError::TooLarge {
                limit: MAX_ANSWER_BYTES
            }
        ),
        "{err:?}"
    );
    // Without a Content-Length the body is read only up to the limit.
    server.set(Behavior::Stream { len: 1 << 20 });
    let err = ask(&server, Family::V4).await.unwrap_err();
    assert!(matches!(*err, SourceError::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn a_slow_drip_hits_the_timeout() {
    let server = HttpServer::start(
        "127.0.0.1:0",
        Behavior::Drip {
            len: 12,
            every: Duration::from_millis(400),
        },
    )
    .await;
    let set = SourceSet::new(vec![source(&server)]).timeout(Duration::from_secs(1));
    let started = std::time::Instant::now();
    let report = set.probe(Family::V4).await.unwrap();
    let err = report.result.unwrap().unwrap_err();
    assert!(matches!(*err, SourceError::Timeout(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the timeout bounds the whole request"
    );
}

#[tokio::test]
async fn http_500_is_an_error() {
    let server = HttpServer::start(
        "127.0.0.1:0",
        Behavior::Respond {
            status: 500,
            body: b"81.2.69.160".to_vec(),
            delay: Duration::ZERO,
        },
    )
    .await;
    let err = ask(&server, Family::V4).await.unwrap_err();
    assert!(
        matches!(*err, SourceError::Status { status: 500 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_an_error() {
    let port = refused_port().await;
    let s: Arc<dyn IpSource> = Arc::new(
        HttpIpSource::builder(format!("http://127.0.0.1:{port}/"))
            .build()
            .unwrap(),
    );
    let report = SourceSet::new(vec![s]).probe(Family::V4).await.unwrap();
    let err = report.result.unwrap().unwrap_err();
    assert!(matches!(*err, SourceError::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn cloudflare_trace_takes_the_ip_line() {
    let server = HttpServer::start(
        "127.0.0.1:0",
        Behavior::ok(
            "fl=29f\nh=one.one.one.one\nip=81.2.69.160\nts=1700000000.1\nvisit_scheme=https\n",
        ),
    )
    .await;
    let s: Arc<dyn IpSource> = Arc::new(
        HttpIpSource::builder(server.url())
            .format(AnswerFormat::CloudflareTrace)
            .build()
            .unwrap(),
    );
    let report = SourceSet::new(vec![s.clone()])
        .probe(Family::V4)
        .await
        .unwrap();
    assert_eq!(report.result.unwrap().unwrap().to_string(), "81.2.69.160");
    server.set(Behavior::ok("fl=29f\nh=x\n"));
    let report = SourceSet::new(vec![s]).probe(Family::V4).await.unwrap();
    assert!(report.result.unwrap().is_err());
}

#[test]
fn bad_urls_are_refused_at_build() {
    assert!(HttpIpSource::builder("not a url").build().is_err());
    assert!(HttpIpSource::builder("ftp://example.com/").build().is_err());
    assert!(HttpIpSource::ipify().is_ok());
}

fn https_source(front: std::net::SocketAddr, trust: bool) -> Arc<dyn IpSource> {
    let mut b = HttpIpSource::builder(format!("https://localhost:{}/", front.port())).name("tls");
    if trust {
        b = b.add_root_certificates(
            std::fs::read(ip_monitor_testkit::fixture("ca.pem")).expect("the test CA"),
        );
    }
    Arc::new(b.build().unwrap())
}

async fn ask_source(source: Arc<dyn IpSource>) -> Result<IpAddr, Arc<SourceError>> {
    let set = SourceSet::new(vec![source]).timeout(Duration::from_secs(2));
    set.probe(Family::V4).await.unwrap().result.unwrap()
}

#[tokio::test]
async fn https_sources_trust_a_private_ca_only_when_told() {
    let server = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let front = ip_monitor_testkit::tls_front(server.addr).await;
    assert_eq!(
        ask_source(https_source(front, true))
            .await
            .unwrap()
            .to_string(),
        "81.2.69.160"
    );
    let err = ask_source(https_source(front, false)).await.unwrap_err();
    assert!(
        matches!(*err, SourceError::Transport(_)),
        "an unknown CA is refused: {err}"
    );
}

#[tokio::test]
async fn an_https_source_never_follows_a_redirect_to_plain_http() {
    let plain = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let redirecting = HttpServer::start(
        "127.0.0.1:0",
        Behavior::Redirect {
            location: plain.url(),
        },
    )
    .await;
    let front = ip_monitor_testkit::tls_front(redirecting.addr).await;
    let err = ask_source(https_source(front, true)).await.unwrap_err();
    assert!(matches!(*err, SourceError::Transport(_)), "{err}");
    assert_eq!(plain.hits(), 0, "the plain-HTTP target was never asked");
    // Redirects that stay on HTTPS (or start on HTTP) are followed.
    let https_target = ip_monitor_testkit::tls_front(plain.addr).await;
    redirecting.set(Behavior::Redirect {
        location: format!("https://localhost:{}/", https_target.port()),
    });
    assert_eq!(
        ask_source(https_source(front, true))
            .await
            .unwrap()
            .to_string(),
        "81.2.69.160"
    );
    let from_plain = HttpServer::start(
        "127.0.0.1:0",
        Behavior::Redirect {
            location: plain.url(),
        },
    )
    .await;
    assert_eq!(
        ask(&from_plain, Family::V4).await.unwrap().to_string(),
        "81.2.69.160"
    );
}
