//! Chat channels against a platform on 127.0.0.1.
#![cfg(feature = "chat")]

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use ip_monitor_core::chat::{ChatKind, ChatNotifier};
use ip_monitor_core::{Notice, NotifierExt, Recipient};
use ip_monitor_testkit::{Behavior, HttpServer};

fn notice(change_id: i64) -> Notice {
    Notice::new(
        change_id,
        "81.2.69.160".parse().unwrap(),
        "http://81.2.69.160:8008/".into(),
        SystemTime::now(),
        false,
    )
    .unwrap()
}

/// A WeCom notice is two posts, the link and then the QR code. When the QR code's post
/// fails after the link went out, the retry posts only the QR code: the group does not get
/// the link twice. The next notice posts both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wecom_retry_posts_only_what_did_not_go() {
    let posts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&posts);
    let wecom = HttpServer::start(
        "127.0.0.1:0",
        Behavior::Judge(Arc::new(move |_head, body| {
            let body = String::from_utf8_lossy(body);
            let kind = if body.contains("\"msgtype\":\"image\"") {
                "image"
            } else {
                "markdown"
            };
            let mut posts = seen.lock().unwrap();
            posts.push(kind);
            // The first QR code is refused with WeCom's "too fast" code.
            if kind == "image" && posts.iter().filter(|k| **k == "image").count() == 1 {
                return (
                    200,
                    r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#.into(),
                );
            }
            (200, r#"{"errcode":0,"errmsg":"ok"}"#.into())
        })),
    )
    .await;
    let channel = ChatNotifier::new(
        ChatKind::WeCom,
        format!("{}cgi-bin/webhook/send?key=k", wecom.url()),
    )
    .unwrap();
    let team = Recipient::channel("team").unwrap();

    let refused = channel.notify(&notice(7), &team).await.unwrap_err();
    assert!(refused.is_transient(), "{refused}");
    assert_eq!(*posts.lock().unwrap(), ["markdown", "image"]);

    channel.notify(&notice(7), &team).await.unwrap();
    assert_eq!(*posts.lock().unwrap(), ["markdown", "image", "image"]);

    channel.notify(&notice(8), &team).await.unwrap();
    assert_eq!(
        *posts.lock().unwrap(),
        ["markdown", "image", "image", "markdown", "image"]
    );
}

/// A service whose reply never ends (a chunked body without its last chunk) is read only
/// up to a bound: a DingTalk answer is a few hundred bytes, so the notice is judged on what
/// was read, within its timeout, instead of waiting for the body until the timeout fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_reply_is_read_only_to_a_bound() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/robot/send", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut head = [0u8; 4096];
        let _ = s.read(&mut head);
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        let start = br#"{"errcode":0,"errmsg":"ok","padding":""#;
        let _ = s.write_all(format!("{:x}\r\n", start.len()).as_bytes());
        let _ = s.write_all(start);
        let _ = s.write_all(b"\r\n");
        let chunk = vec![b'x'; 8192];
        // Up to 1 GiB, slowly enough never to finish within the timeout.
        for _ in 0..(1 << 17) {
            let sent = s
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .and_then(|()| s.write_all(&chunk))
                .and_then(|()| s.write_all(b"\r\n"));
            if sent.is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    let channel = ChatNotifier::new(ChatKind::DingTalk, url)
        .unwrap()
        .timeout(std::time::Duration::from_secs(4))
        .unwrap();
    let started = std::time::Instant::now();
    let got = channel
        .notify(&notice(9), &Recipient::channel("ops").unwrap())
        .await;
    // The code is read from the start of the body, which is JSON cut short: the answer has
    // no readable code, a transient failure, decided long before the timeout.
    let e = got.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(
        !e.to_string().contains("timed out") && !e.to_string().contains("operation"),
        "judged on what was read, not failed by the timeout: {e}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}
