//! TLS to a real SMTP server on 127.0.0.1: STARTTLS and implicit TLS with a private CA, a
//! certificate from an unknown CA refused, and STARTTLS required (never plain text instead).

use std::time::{Duration, SystemTime};

use ip_monitor_core::{Notice, NotifierExt, Recipient};
use ip_monitor_lettre::{MessageTemplate, SmtpNotifier, Tls};
use ip_monitor_testkit::fixture;
use ip_monitor_testkit::smtp::SmtpServer;

fn notifier(port: u16, tls: Tls, ca: &str) -> SmtpNotifier {
    SmtpNotifier::builder("127.0.0.1")
        .port(port)
        .tls(tls)
        .timeout(Duration::from_secs(5))
        .add_root_certificates(std::fs::read(fixture(ca)).unwrap())
        .template(MessageTemplate::new("noreply@example.com").unwrap())
        .build()
        .unwrap()
}

async fn send(n: &SmtpNotifier) -> Result<(), ip_monitor_core::NotifyError> {
    let notice = Notice::new(
        1,
        "81.2.69.160".parse().unwrap(),
        "http://81.2.69.160:8008/".into(),
        SystemTime::now(),
        false,
    )
    .unwrap();
    n.notify(
        &notice,
        &Recipient::new("ana@example.com", None::<&str>).unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_a_private_ca() {
    let server = SmtpServer::start_starttls();
    send(&notifier(server.addr.port(), Tls::StartTls, "ca.pem"))
        .await
        .unwrap();
    assert_eq!(server.messages().len(), 1);

    let err = send(&notifier(server.addr.port(), Tls::StartTls, "other-ca.pem"))
        .await
        .unwrap_err();
    assert!(
        err.is_transient(),
        "an untrusted certificate is a transient (configuration) failure: {err}"
    );
    assert_eq!(
        server.messages().len(),
        1,
        "nothing sent to an unverified server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_required_when_configured() {
    let plain = SmtpServer::start();
    let err = send(&notifier(plain.addr.port(), Tls::StartTls, "ca.pem"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(plain.messages().is_empty(), "no fallback to plain text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_with_a_private_ca() {
    let server = SmtpServer::start();
    let front = server.implicit_tls_front().await;
    send(&notifier(front.port(), Tls::Wrapper, "ca.pem"))
        .await
        .unwrap();
    assert_eq!(server.messages().len(), 1);
    let err = send(&notifier(front.port(), Tls::Wrapper, "other-ca.pem"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn bad_root_certificates_are_refused_at_build() {
    let err = SmtpNotifier::builder("127.0.0.1")
        .add_root_certificates(b"not a certificate".to_vec())
        .template(MessageTemplate::new("noreply@example.com").unwrap())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("root_certificates"), "{err}");
}
