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
