//! Push services against `ip_monitor_testkit::push` on 127.0.0.1: each service's rate limit
//! becomes a busy route that waits as long as the service asks, each refusal is permanent in
//! the service's own words, and a retry after a later Telegram chat failed posts only to
//! the chats that did not get the notice.
#![cfg(feature = "push")]

use std::time::{Duration, SystemTime};

use ip_monitor_core::notify::push::{NtfyAuth, PushNotifier, PushService};
use ip_monitor_core::{Notice, NotifierExt, Recipient};
use ip_monitor_testkit::push::{PushServer, keys};
use serde_json::json;

fn notice(change_id: i64) -> Notice {
    let url = "http://81.2.69.160:8008/";
    Notice::new(
        change_id,
        "81.2.69.160".parse().unwrap(),
        url.into(),
        SystemTime::now(),
        false,
    )
    .unwrap()
}

/// Every service on `push`, with the right keys or with `wrong` ones.
fn services(push: &PushServer, wrong: bool) -> Vec<PushService> {
    let key = |k: &str| {
        if wrong {
            format!("{k}-wrong")
        } else {
            k.to_owned()
        }
    };
    let (hook_id, hook_token) = keys::DISCORD;
    let (po_token, po_user) = keys::PUSHOVER;
    vec![
        PushService::Telegram {
            api: push.base("telegram"),
            token: key(keys::TELEGRAM),
            chats: vec!["42".into()],
        },
        PushService::Discord {
            webhook: format!(
                "{}/api/webhooks/{hook_id}/{}",
                push.base("discord"),
                key(hook_token)
            ),
        },
        PushService::Ntfy {
            topic_url: format!("{}/ipm-alerts", push.base("ntfy")),
            auth: NtfyAuth::Token(key(keys::NTFY)),
        },
        PushService::Gotify {
            server: push.base("gotify"),
            token: key(keys::GOTIFY),
        },
        PushService::Pushover {
            api: push.base("pushover"),
            token: key(po_token),
            user: po_user.into(),
        },
        PushService::Bark {
            server: push.base("bark"),
            device_key: key(keys::BARK),
        },
        PushService::ServerChan {
            api: Some(push.base("serverchan")),
            send_key: key(keys::SERVERCHAN),
        },
        PushService::PushPlus {
            api: push.base("pushplus"),
            token: key(keys::PUSHPLUS),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_takes_the_notice_and_refuses_a_wrong_key_for_good() {
    let push = PushServer::start().await;
    let to = Recipient::channel("push").unwrap();
    for service in services(&push, false) {
        let kind = service.kind();
        let n = PushNotifier::new(service).unwrap();
        n.notify(&notice(1), &to)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
    assert_eq!(push.pushed().len(), 8, "{:?}", push.rejected());
    let words = [
        ("telegram", "401 Unauthorized"),
        ("discord", "50027 Invalid Webhook Token"),
        ("ntfy", "40301 forbidden"),
        (
            "gotify",
            "Unauthorized you need to provide a valid access token",
        ),
        ("pushover", "application token is invalid"),
        ("bark", "failed to get device token"),
        ("serverchan", "code 40001 bad pushtoken"),
        ("pushplus", "code 903 无效的用户token"),
    ];
    for (service, (kind, said)) in services(&push, true).into_iter().zip(words) {
        assert_eq!(service.kind(), kind);
        let n = PushNotifier::new(service).unwrap();
        let e = n.notify(&notice(2), &to).await.unwrap_err();
        assert!(e.is_permanent(), "{kind}: {e}");
        assert!(e.to_string().contains(said), "{kind}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_wait_as_long_as_the_service_asks() {
    let push = PushServer::start().await;
    let to = Recipient::channel("push").unwrap();
    let all = services(&push, false);
    let cases = [
        (
            "telegram",
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7}}),
            Duration::from_secs(7),
        ),
        (
            "discord",
            json!({"message": "You are being rate limited.", "retry_after": 0.25, "global": false}),
            Duration::from_millis(250),
        ),
    ];
    for (kind, body, wait) in cases {
        push.fail_next(kind, 429, body);
        let service = all.iter().find(|s| s.kind() == kind).unwrap().clone();
        let e = PushNotifier::new(service)
            .unwrap()
            .notify(&notice(1), &to)
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{kind}: {e}");
        assert_eq!(e.busy_for(), Some(wait), "{kind}: {e}");
    }
    // PushPlus says "limited" inside a 200: code 900.
    push.fail_next(
        "pushplus",
        200,
        json!({"code": 900, "msg": "用户账号使用受限", "data": null}),
    );
    let service = all.iter().find(|s| s.kind() == "pushplus").unwrap().clone();
    let e = PushNotifier::new(service)
        .unwrap()
        .notify(&notice(1), &to)
        .await
        .unwrap_err();
    assert_eq!(e.busy_for(), Some(Duration::from_secs(3600)), "{e}");
    // ntfy says how long in its `Retry-After` header.
    push.fail_next_retry_after(
        "ntfy",
        429,
        json!({"code": 42901, "http": 429, "error": "limit reached: too many requests"}),
        "12",
    );
    let service = all.iter().find(|s| s.kind() == "ntfy").unwrap().clone();
    let e = PushNotifier::new(service)
        .unwrap()
        .notify(&notice(1), &to)
        .await
        .unwrap_err();
    assert_eq!(e.busy_for(), Some(Duration::from_secs(12)), "{e}");
    assert!(e.to_string().contains("42901 limit reached"), "{e}");
    // A 5xx is a passing failure, not a busy route.
    push.fail_next("gotify", 502, json!({}));
    let service = all.iter().find(|s| s.kind() == "gotify").unwrap().clone();
    let e = PushNotifier::new(service)
        .unwrap()
        .notify(&notice(1), &to)
        .await
        .unwrap_err();
    assert!(e.is_transient() && e.busy_for().is_none(), "{e}");
}

/// The second of three chats is throttled: the retry posts to the second and third only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_retry_posts_only_to_the_chats_left() {
    let push = PushServer::start().await;
    push.fail_after(
        "telegram",
        1,
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests",
            "parameters": {"retry_after": 1}}),
    );
    let telegram = PushNotifier::new(PushService::Telegram {
        api: push.base("telegram"),
        token: keys::TELEGRAM.into(),
        chats: vec!["1".into(), "2".into(), "3".into()],
    })
    .unwrap();
    let to = Recipient::channel("telegram").unwrap();
    assert!(telegram.notify(&notice(5), &to).await.is_err());
    telegram.notify(&notice(5), &to).await.unwrap();
    let chats: Vec<String> = push.pushed().into_iter().map(|p| p.to).collect();
    assert_eq!(chats, ["1", "2", "3"]);
    // The next notice goes to all three again.
    telegram.notify(&notice(6), &to).await.unwrap();
    assert_eq!(push.pushed().len(), 6);
}
