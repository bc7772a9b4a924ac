//! The email against a real SMTP server on 127.0.0.1: parsed back, QR decoded back.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ip_monitor_core::*;
use ip_monitor_lettre::{FileNotifier, MessageTemplate, SmtpNotifier, Tls};
use ip_monitor_testkit::smtp::SmtpServer;
use mail_parser::{MessageParser, MimeHeaders, PartType};

fn notifier(server: &SmtpServer) -> SmtpNotifier {
    SmtpNotifier::builder(server.addr.ip().to_string())
        .port(server.addr.port())
        .tls(Tls::None)
        .timeout(Duration::from_secs(5))
        .template(
            MessageTemplate::new("IP Monitor <noreply@example.com>")
                .unwrap()
                .reply_to("Ops <ops@example.com>")
                .unwrap(),
        )
        .build()
        .unwrap()
}

fn notice(ip: &str, url: &str) -> Notice {
    Notice::new(
        42,
        ip.parse().unwrap(),
        url.into(),
        SystemTime::now(),
        false,
    )
    .unwrap()
}

/// Send the same notice to one address at a time through `server`.
fn sender(
    server: &SmtpServer,
) -> impl Fn(&str) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), NotifyError>>>>
{
    let n = notifier(server);
    let notice = notice("81.2.69.160", "http://81.2.69.160:8008/");
    move |email: &str| {
        let (n, notice) = (n.clone(), notice.clone());
        let r = Recipient::new(email, None::<&str>).unwrap();
        Box::pin(async move { n.notify(&notice, &r).await })
    }
}

fn decode_qr(png: &[u8]) -> String {
    let img = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

/// Checks one received message inside out and returns its HTML.
fn check_message(raw: &[u8], to: &str, url: &str, ip: &str) -> String {
    assert!(raw.len() < 60 * 1024, "message is {} bytes", raw.len());
    let m = MessageParser::default().parse(raw).expect("parses");
    assert_eq!(
        m.to().unwrap().first().unwrap().address().unwrap(),
        to,
        "one recipient per message"
    );
    assert_eq!(m.to().unwrap().iter().count(), 1);
    assert!(m.message_id().is_some(), "Message-ID present");
    assert!(m.date().is_some(), "Date present");
    assert_eq!(
        m.reply_to().unwrap().first().unwrap().address().unwrap(),
        "ops@example.com"
    );
    assert_eq!(m.subject(), Some("The server has a new address"));
    // An automatic message: out-of-office replies must not come back (RFC 3834, Exchange).
    let header = |name: &str| {
        m.header_raw(name)
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_owned()
    };
    assert_eq!(header("Auto-Submitted"), "auto-generated");
    assert_eq!(header("X-Auto-Response-Suppress"), "All");
    let root = m.root_part();
    assert!(
        root.content_type()
            .unwrap()
            .subtype()
            .unwrap()
            .eq_ignore_ascii_case("alternative"),
        "multipart/alternative at the top"
    );
    let text = m.body_text(0).expect("a text/plain part");
    assert!(text.contains(url), "the plain text carries the link");
    let html = m.body_html(0).expect("an HTML part").into_owned();
    let related = m.parts.iter().find(|p| {
        p.content_type().is_some_and(|c| {
            c.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("related"))
        })
    });
    assert!(related.is_some(), "the HTML sits in multipart/related");
    let png_part = m
        .parts
        .iter()
        .find(|p| {
            p.content_type()
                .is_some_and(|c| c.ctype() == "image" && c.subtype() == Some("png"))
        })
        .expect("an image/png part");
    let cid = png_part.content_id().expect("the PNG has a Content-ID");
    assert!(
        html.contains(&format!("src=\"cid:{cid}\"")),
        "the HTML shows the inline PNG by cid"
    );
    let (PartType::Binary(png) | PartType::InlineBinary(png)) = &png_part.body else {
        panic!("PNG body is binary");
    };
    assert_eq!(
        decode_qr(png),
        url,
        "the QR decodes to exactly the entry URL"
    );
    assert!(
        html.contains(&format!("href=\"{url}\"")),
        "the button links to the URL"
    );
    let visible = strip_tags(&html);
    assert!(
        !visible.contains(ip),
        "the bare address is not visible text in the HTML"
    );
    html
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_and_v6_messages_parse_and_their_qr_codes_scan() {
    let server = SmtpServer::start();
    let n = notifier(&server);
    let ana = Recipient::new("ana@example.com", Some("Ana")).unwrap();
    for (ip, url) in [
        ("81.2.69.160", "http://81.2.69.160:8008/"),
        (
            "2606:4700:4700::1111",
            "http://[2606:4700:4700::1111]:8008/",
        ),
    ] {
        n.notify(&notice(ip, url), &ana).await.unwrap();
        let messages = server.messages();
        let last = messages.last().unwrap();
        assert_eq!(last.to, ["ana@example.com"]);
        let html = check_message(&last.data, "ana@example.com", url, ip);
        assert!(html.contains("Hello Ana,"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_escaped() {
    let server = SmtpServer::start();
    let evil = Recipient::new("eve@example.com", Some("<script>alert(1)</script>")).unwrap();
    notifier(&server)
        .notify(&notice("81.2.69.160", "http://81.2.69.160:8008/"), &evil)
        .await
        .unwrap();
    let raw = &server.messages()[0].data;
    let html = check_message(
        raw,
        "eve@example.com",
        "http://81.2.69.160:8008/",
        "81.2.69.160",
    );
    assert!(!html.contains("<script>"), "no live script tag");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name arrives escaped"
    );
}

/// Both ways a client may speak to a relay: the envelope and DATA pipelined (the relay
/// offers PIPELINING), and one command per reply.
fn both_kinds_of_relay() -> [(&'static str, SmtpServer); 2] {
    [
        ("pipelining", SmtpServer::start()),
        ("no pipelining", SmtpServer::start_without_pipelining()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelope_is_pipelined_only_when_the_relay_offers_it() {
    for (kind, server) in both_kinds_of_relay() {
        let send = sender(&server);
        for email in ["ana@example.com", "ben@example.com", "cho@example.com"] {
            send(email).await.unwrap();
        }
        let to: Vec<_> = server.messages().into_iter().flat_map(|m| m.to).collect();
        assert_eq!(
            to,
            ["ana@example.com", "ben@example.com", "cho@example.com"],
            "{kind}"
        );
        let expected = if kind == "pipelining" { 3 } else { 0 };
        assert_eq!(
            server.pipelined(),
            expected,
            "{kind}: MAIL, RCPT and DATA in one write"
        );
    }
}

/// A relay on 127.0.0.1 that offers PIPELINING and answers each command as `reply` says
/// (`None`: 250). What a client writes after a 354 is kept, up to the end of the data or of
/// the connection; the thread ends when the client closes, or after 10 s without a byte.
fn scripted_relay(
    reply: fn(&str) -> Option<&'static str>,
) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut lines = BufReader::new(conn.try_clone().unwrap());
        conn.write_all(b"220 scripted ESMTP\r\n").unwrap();
        let (mut data, mut in_data) = (Vec::new(), false);
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) => return data,
                Ok(_) => {}
                Err(e) => {
                    data.push(format!("read failed: {e}"));
                    return data;
                }
            }
            let command = line.trim_end().to_owned();
            if in_data {
                in_data = command != ".";
                data.push(command);
                continue;
            }
            let answer = if command.starts_with("EHLO") {
                "250-scripted\r\n250 PIPELINING"
            } else {
                reply(&command).unwrap_or("250 OK")
            };
            in_data = answer.starts_with("354");
            conn.write_all(format!("{answer}\r\n").as_bytes()).unwrap();
        }
    });
    (port, relay)
}

fn scripted_notifier(port: u16) -> SmtpNotifier {
    SmtpNotifier::builder("127.0.0.1")
        .port(port)
        .tls(Tls::None)
        .timeout(Duration::from_secs(5))
        .template(MessageTemplate::new("IP Monitor <noreply@example.com>").unwrap())
        .build()
        .unwrap()
}

/// Notify `email` through a scripted relay answering as `reply`: the error it fails with,
/// and what the relay received after answering `DATA` (the connection closed first).
async fn refused_by_scripted_relay(
    reply: fn(&str) -> Option<&'static str>,
    email: &str,
) -> (NotifyError, Vec<String>) {
    let (port, relay) = scripted_relay(reply);
    let n = scripted_notifier(port);
    let e = n
        .notify(
            &notice("81.2.69.160", "http://81.2.69.160:8008/"),
            &Recipient::new(email, None::<&str>).unwrap(),
        )
        .await
        .unwrap_err();
    drop(n);
    let data = tokio::task::spawn_blocking(move || relay.join().unwrap())
        .await
        .unwrap();
    (e, data)
}

/// RFC 2920 says a relay refuses a pipelined DATA when it refused every recipient; one
/// that answers 354 all the same gets no message: the client closes the connection, and
/// the recipient's refusal is the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_taking_data_after_refusing_the_recipient_gets_no_message() {
    let (e, data) = refused_by_scripted_relay(
        |command| match command {
            c if c.starts_with("RCPT") => Some("550 5.1.1 No such user"),
            "DATA" => Some("354 go ahead"),
            _ => None,
        },
        "gone@example.com",
    )
    .await;
    assert!(e.is_permanent(), "the recipient's 550: {e}");
    assert!(e.to_string().contains("No such user"), "{e}");
    assert!(data.is_empty(), "nothing after DATA: {data:?}");
}

/// DATA refused after an accepted envelope is the answer (a transient 451 here), and no
/// message follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_data_is_the_answer() {
    let (e, data) = refused_by_scripted_relay(
        |command| match command {
            "DATA" => Some("451 4.3.0 Queue full"),
            _ => None,
        },
        "ana@example.com",
    )
    .await;
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains("Queue full"), "{e}");
    assert!(data.is_empty(), "nothing after DATA: {data:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_classified_per_recipient() {
    for (kind, server) in both_kinds_of_relay() {
        replies_are_classified_per_recipient_by(&server, kind).await;
    }
}

async fn replies_are_classified_per_recipient_by(server: &SmtpServer, kind: &str) {
    server.reply_to_rcpt("gone@example.com", 550, "No such user");
    server.reply_to_rcpt("busy@example.com", 451, "Try again later");
    let send = sender(server);
    let gone = send("gone@example.com").await.unwrap_err();
    assert!(gone.is_permanent(), "{kind}: 550 is permanent: {gone}");
    let busy = send("busy@example.com").await.unwrap_err();
    assert!(busy.is_transient(), "{kind}: 451 is transient: {busy}");
    send("ana@example.com").await.unwrap();
    send("ben@example.com").await.unwrap();
    let delivered: Vec<_> = server.messages().into_iter().flat_map(|m| m.to).collect();
    assert_eq!(
        delivered,
        ["ana@example.com", "ben@example.com"],
        "{kind}: the others are delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_about_the_relay_or_the_sender_are_transient() {
    for (kind, server) in both_kinds_of_relay() {
        refusals_about_the_relay_or_the_sender_are_transient_by(&server, kind).await;
    }
}

async fn refusals_about_the_relay_or_the_sender_are_transient_by(server: &SmtpServer, kind: &str) {
    server.reply_to_rcpt(
        "unknown@example.com",
        550,
        "5.1.1 <unknown@example.com>: User unknown",
    );
    server.reply_to_rcpt("moved@example.com", 553, "Mailbox name not allowed");
    server.reply_to_rcpt(
        "relay@example.com",
        554,
        "5.7.1 <relay@example.com>: Relay access denied",
    );
    server.reply_to_rcpt("policy@example.com", 550, "Relaying denied");
    let send = sender(server);
    for (email, permanent) in [
        ("unknown@example.com", true),
        ("moved@example.com", true),
        ("relay@example.com", false),
        ("policy@example.com", false),
    ] {
        let e = send(email).await.unwrap_err();
        assert_eq!(e.is_permanent(), permanent, "{kind}: {email}: {e}");
        assert_eq!(e.is_transient(), !permanent, "{email}: {e}");
    }
    server.reply_to_mail(Some((530, "5.7.0 Authentication required")));
    let e = send("ana@example.com").await.unwrap_err();
    assert!(
        e.is_transient(),
        "{kind}: a refused sender is the relay's problem: {e}"
    );
    server.reply_to_mail(None);
    send("ana@example.com").await.unwrap();
    assert_eq!(
        server.messages().len(),
        1,
        "{kind}: the connection works again after RSET"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_handed_over_once_the_permit_lapsed_before_data() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = SmtpServer::start();
    let n = notifier(&server);
    // Valid when the send starts, lapsed by the time the envelope is accepted.
    let checks = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&checks);
    let permit = SendPermit::new(move || seen.fetch_add(1, Ordering::SeqCst) == 0);
    let e = n
        .send(
            &notice("81.2.69.160", "http://81.2.69.160:8008/"),
            &Recipient::new("ana@example.com", None::<&str>).unwrap(),
            &permit,
        )
        .await
        .unwrap_err();
    assert!(e.is_withheld(), "{e}");
    assert!(
        checks.load(Ordering::SeqCst) >= 2,
        "checked again before the message"
    );
    assert!(server.messages().is_empty(), "nothing handed over");
    // The connection stays usable for the next message.
    n.notify(
        &notice("81.2.69.160", "http://81.2.69.160:8008/"),
        &Recipient::new("ben@example.com", None::<&str>).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(server.messages().len(), 1);
}

/// A relay that refuses the sender (credentials not configured yet) fails nobody: the
/// deliveries wait on the retry schedule and go out once the relay is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_refusing_the_sender_delays_but_loses_nobody() {
    let server = SmtpServer::start();
    server.reply_to_mail(Some((530, "5.7.0 Authentication required")));
    let source = StaticIpSource::new("fixed").with_answer("81.2.69.160".parse().unwrap());
    let store = MemoryStore::new();
    let staff = ["ana@example.com", "ben@example.com", "cho@example.com"];
    let handle = Monitor::builder(
        SourceSet::new(vec![Arc::new(source)]),
        store.clone(),
        StaticRecipients::new(staff),
        notifier(&server),
    )
    .config(MonitorConfig {
        delivery: DeliveryPolicy {
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_millis(400),
            ..DeliveryPolicy::default()
        },
        ..MonitorConfig::default()
    })
    .build()
    .unwrap()
    .spawn();
    let mut events = handle.subscribe();
    let mut retries = 0;
    while retries < 3 {
        match tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("attempts happen")
        {
            Ok(Event::DeliveryRetry { .. }) => retries += 1,
            Ok(Event::DeliveryFailed { error, .. }) => panic!("failed for good: {error}"),
            _ => {}
        }
    }
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!(counts.failed, 0, "nobody failed for the relay's refusal");
    let shown = handle.status().delivery_error.unwrap_or_default();
    assert!(
        shown.contains("refused the sender") && shown.contains("530"),
        "status shows the relay problem: {shown:?}"
    );
    server.reply_to_mail(None); // the operator fixed the credentials
    let messages = server.wait_for(3, Duration::from_secs(20));
    let mut status = handle.watch_status();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.delivery_error.is_none()),
    )
    .await
    .expect("a send clears the relay problem")
    .unwrap();
    handle.shutdown().await.unwrap();
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!((counts.sent, counts.failed, counts.pending), (3, 0, 0));
    let mut to: Vec<_> = messages.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, staff, "each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_transient() {
    let port = ip_monitor_testkit::refused_port().await;
    let n = SmtpNotifier::builder("127.0.0.1")
        .port(port)
        .tls(Tls::None)
        .timeout(Duration::from_secs(2))
        .template(MessageTemplate::new("noreply@example.com").unwrap())
        .build()
        .unwrap();
    let err = n
        .notify(
            &notice("81.2.69.160", "http://81.2.69.160:8008/"),
            &Recipient::new("ana@example.com", None::<&str>).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_delivers_through_smtp_with_one_message_each() {
    let server = SmtpServer::start();
    server.reply_to_rcpt("gone@example.com", 550, "No such user");
    let source = StaticIpSource::new("fixed").with_answer("81.2.69.160".parse().unwrap());
    let store = MemoryStore::new();
    let handle = Monitor::builder(
        SourceSet::new(vec![Arc::new(source)]),
        store.clone(),
        StaticRecipients::new([
            "ana@example.com",
            "ben@example.com",
            "gone@example.com",
            "cho@example.com",
        ]),
        notifier(&server),
    )
    .build()
    .unwrap()
    .spawn();
    let mut events = handle.subscribe();
    let mut finished = 0;
    while finished < 4 {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("deliveries finish");
        if let Ok(Event::DeliverySent { .. } | Event::DeliveryFailed { .. }) = event {
            finished += 1;
        }
    }
    handle.shutdown().await.unwrap();
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!((counts.sent, counts.failed), (3, 1));
    let messages = server.messages();
    assert_eq!(messages.len(), 3);
    for m in &messages {
        assert_eq!(m.to.len(), 1, "never a shared To: list");
        check_message(&m.data, &m.to[0], "http://81.2.69.160:8008/", "81.2.69.160");
    }
}

#[tokio::test]
async fn the_file_notifier_writes_parsable_eml_files() {
    let dir = tempfile::tempdir().unwrap();
    let n = FileNotifier::new(
        dir.path().join("outbox"),
        MessageTemplate::new("IP Monitor <noreply@example.com>")
            .unwrap()
            .reply_to("ops@example.com")
            .unwrap(),
    );
    let notice = notice("81.2.69.160", "http://81.2.69.160:8008/");
    for email in ["ana@example.com", "ben@example.com"] {
        n.notify(&notice, &Recipient::new(email, None::<&str>).unwrap())
            .await
            .unwrap();
    }
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2);
    for f in &files {
        assert_eq!(f.extension().unwrap(), "eml");
        let raw = std::fs::read(f).unwrap();
        let to = if f.to_string_lossy().contains("ana") {
            "ana@example.com"
        } else {
            "ben@example.com"
        };
        check_message(&raw, to, "http://81.2.69.160:8008/", "81.2.69.160");
    }
}

#[tokio::test]
async fn test_notices_say_so() {
    let server = SmtpServer::start();
    let mut notice = notice("81.2.69.160", "http://81.2.69.160:8008/");
    notice.test = true;
    notifier(&server)
        .notify(
            &notice,
            &Recipient::new("ana@example.com", None::<&str>).unwrap(),
        )
        .await
        .unwrap();
    let m = MessageParser::default()
        .parse(&server.messages()[0].data)
        .unwrap()
        .into_owned();
    assert_eq!(m.subject(), Some("[Test] The server has a new address"));
    assert!(m.body_text(0).unwrap().contains("test message"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_during_changes_loses_nothing_and_repeats_nothing() {
    let port = ip_monitor_testkit::refused_port().await;
    let source = StaticIpSource::new("fixed").with_answer("81.2.69.160".parse().unwrap());
    let store = MemoryStore::new();
    let staff = ["ana@example.com", "ben@example.com", "cho@example.com"];
    let notifier = SmtpNotifier::builder("127.0.0.1")
        .port(port)
        .tls(Tls::None)
        .timeout(Duration::from_secs(2))
        .template(
            MessageTemplate::new("noreply@example.com")
                .unwrap()
                .reply_to("ops@example.com")
                .unwrap(),
        )
        .build()
        .unwrap();
    let handle = Monitor::builder(
        SourceSet::new(vec![Arc::new(source.clone())]),
        store.clone(),
        StaticRecipients::new(staff),
        notifier,
    )
    .config(MonitorConfig {
        delivery: DeliveryPolicy {
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_millis(500),
            ..Default::default()
        },
        ..Default::default()
    })
    .build()
    .unwrap()
    .spawn();
    // Down through the first address and a change to a second one.
    tokio::time::sleep(Duration::from_millis(800)).await;
    source.set("81.2.69.161".parse().unwrap());
    handle.check_now().await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!(
        (counts.sent, counts.superseded, counts.failed),
        (0, 3, 0),
        "{counts:?}"
    );
    assert!(counts.pending + counts.in_flight == 3);

    // The server comes back.
    let server = SmtpServer::start_on(port);
    let messages = server.wait_for(3, Duration::from_secs(20));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    handle.shutdown().await.unwrap();
    let messages = if messages.len() == 3 {
        server.messages()
    } else {
        messages
    };
    let mut to: Vec<_> = messages.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, staff, "everyone once, nobody twice");
    for m in &messages {
        check_message(&m.data, &m.to[0], "http://81.2.69.161:8008/", "81.2.69.161");
    }
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!((counts.sent, counts.pending, counts.in_flight), (3, 0, 0));
}

#[cfg(unix)]
#[tokio::test]
async fn message_files_are_private_and_leave_no_temporary_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("outbox");
    let n = FileNotifier::new(&out, MessageTemplate::new("noreply@example.com").unwrap());
    n.notify(
        &notice("81.2.69.160", "http://81.2.69.160:8008/"),
        &Recipient::new("ana@example.com", None::<&str>).unwrap(),
    )
    .await
    .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out), 0o700, "the outbox directory is the owner's");
    let files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "no temporary file left: {files:?}");
    assert_eq!(
        mode(&files[0]),
        0o600,
        "messages are readable by the owner only"
    );
}

/// A sending quota (`550 5.4.5`) is the route's, not the recipient's: the send answers
/// "busy" for `quota_retry`, and the next one is held without bothering the relay, until
/// the quota resets; a full mailbox (`552 5.2.2 … quota exceeded`) stays the recipient's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sending_quota_holds_the_route_and_fails_nobody() {
    for (kind, server) in both_kinds_of_relay() {
        server.reply_to_rcpt(
            "full@example.com",
            552,
            "5.2.2 Mailbox full: quota exceeded",
        );
        let send = sender(&server);
        let full = send("full@example.com").await.unwrap_err();
        assert!(
            full.is_permanent(),
            "{kind}: a full mailbox is the recipient's: {full}"
        );
        server.reply_to_mail(Some((550, "5.4.5 Daily user sending limit exceeded")));
        let quota = send("ana@example.com").await.unwrap_err();
        assert!(
            quota.is_transient() && quota.is_route_failure() && !quota.is_permanent(),
            "{kind}: {quota}"
        );
        assert_eq!(quota.busy_for(), Some(Duration::from_secs(3600)), "{kind}");
        assert!(quota.to_string().contains("5.4.5"), "{kind}: {quota}");
        // Held: answered at once, nothing asked of the relay.
        server.reply_to_mail(None);
        let started = std::time::Instant::now();
        let held = send("ben@example.com").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "{kind}");
        let left = held.busy_for().unwrap();
        assert!(
            left > Duration::from_secs(3500) && left <= Duration::from_secs(3600),
            "{kind}: {left:?}"
        );
        assert!(server.messages().is_empty(), "{kind}");
    }
}
