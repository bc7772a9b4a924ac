//! `[[channels]]`: each chat channel is told once per change through the outbox, against
//! servers on 127.0.0.1 that check each platform's payload field by field and its signature
//! with the platform's documented algorithm (an implementation of their own: RustCrypto's
//! HMAC), and answer as the platforms do — errors inside an HTTP 200 included.

#[allow(dead_code)] // the helpers of the other process-level tests
mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");
const SECRET: &str = "SEC-test-secret-0123456789";

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn query(head: &str, key: &str) -> Option<String> {
    let target = head.split(' ').nth(1)?;
    let (_, q) = target.split_once('?')?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn percent_decode(v: &str) -> String {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 {
            out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What every channel message must carry: the entry URL as a link, and the address only
/// inside it.
fn check_link(text: &str, url: &str) -> Result<(), String> {
    let outside = text.replace(url, "");
    if !text.contains(url) {
        return Err(format!("no link to {url} in {text}"));
    }
    if outside.contains("81.2.69.") {
        return Err(format!("a bare address outside the link: {text}"));
    }
    Ok(())
}

/// The platforms, each judging its requests as documented. `fail_first` requests get the
/// platform's "too fast" answer first.
struct Platforms {
    wecom: HttpServer,
    dingtalk: HttpServer,
    feishu: HttpServer,
    slack: HttpServer,
    teams: HttpServer,
    webhook: HttpServer,
    url: Arc<std::sync::Mutex<String>>,
    /// Each server's judge, in the order of [`all`](Self::all).
    judges: Vec<Behavior>,
}

fn judge(
    url: &Arc<std::sync::Mutex<String>>,
    fail_first: usize,
    f: impl Fn(&str, &[u8], &Value, &str) -> Result<(u16, String), (u16, String)>
    + Send
    + Sync
    + 'static,
    too_fast: (u16, &'static str),
) -> Behavior {
    let url = Arc::clone(url);
    let seen = Arc::new(AtomicUsize::new(0));
    Behavior::Judge(Arc::new(move |head, body| {
        if seen.fetch_add(1, Ordering::SeqCst) < fail_first {
            return (too_fast.0, too_fast.1.to_owned());
        }
        let Ok(json) = serde_json::from_slice::<Value>(body) else {
            return (400, "invalid JSON".to_owned());
        };
        let url = url.lock().unwrap().clone();
        match f(head, body, &json, &url) {
            Ok(answer) | Err(answer) => answer,
        }
    }))
}

impl Platforms {
    async fn start(fail_first: usize) -> Self {
        let url = Arc::new(std::sync::Mutex::new(String::new()));
        let judges = std::sync::Mutex::new(Vec::new());
        let start = |b: Behavior| {
            judges.lock().unwrap().push(b.clone());
            HttpServer::start("127.0.0.1:0", b)
        };
        let wecom_error =
            |m: String| Err((200, format!("{{\"errcode\":40008,\"errmsg\":\"{m}\"}}")));
        let wecom = start(judge(
            &url,
            fail_first,
            move |head, _, v, url| {
                if query(head, "key").as_deref() != Some("wecom-key") {
                    return Err((
                        200,
                        "{\"errcode\":93000,\"errmsg\":\"invalid webhook url\"}".into(),
                    ));
                }
                match v["msgtype"].as_str() {
                    Some("markdown") => {
                        let content = v["markdown"]["content"].as_str().unwrap_or("");
                        check_link(content, url).map_err(|m| wecom_error(m).unwrap_err())?;
                    }
                    Some("image") => {
                        use md5::Digest as _;
                        let png = base64::engine::general_purpose::STANDARD
                            .decode(v["image"]["base64"].as_str().unwrap_or(""))
                            .map_err(|e| wecom_error(e.to_string()).unwrap_err())?;
                        let md5: String = md5::Md5::digest(&png)
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect();
                        if v["image"]["md5"].as_str() != Some(md5.as_str()) {
                            return wecom_error("md5 mismatch".into());
                        }
                        let img = image::load_from_memory(&png).unwrap().to_luma8();
                        let mut prepared = rqrr::PreparedImage::prepare(img);
                        let grids = prepared.detect_grids();
                        let decoded = grids.first().and_then(|g| g.decode().ok()).map(|d| d.1);
                        if decoded.as_deref() != Some(url) {
                            return wecom_error(format!("the QR code says {decoded:?}"));
                        }
                    }
                    other => return wecom_error(format!("msgtype {other:?}")),
                }
                Ok((200, "{\"errcode\":0,\"errmsg\":\"ok\"}".into()))
            },
            (
                200,
                "{\"errcode\":45009,\"errmsg\":\"api freq out of limit\"}",
            ),
        ))
        .await;
        let dingtalk = start(judge(
            &url,
            fail_first,
            |head, _, v, url| {
                let refuse =
                    |m: &str| Err((200, format!("{{\"errcode\":310000,\"errmsg\":\"{m}\"}}")));
                let (Some(ts), Some(sign)) = (query(head, "timestamp"), query(head, "sign")) else {
                    return refuse("sign not match");
                };
                let millis: i64 = ts.parse().unwrap_or(0);
                if (millis / 1000 - now_secs()).abs() > 3600 {
                    return refuse("timestamp out of range");
                }
                let expected = b64(&hmac_sha256(
                    SECRET.as_bytes(),
                    format!("{ts}\n{SECRET}").as_bytes(),
                ));
                if percent_decode(&sign) != expected {
                    return refuse("sign not match");
                }
                let card = &v["actionCard"];
                if v["msgtype"] != "actionCard"
                    || card["singleURL"] != url
                    || card["singleTitle"].as_str().is_none_or(str::is_empty)
                    || card["title"].as_str().is_none_or(str::is_empty)
                {
                    return Err((
                        200,
                        "{\"errcode\":40035,\"errmsg\":\"invalid parameter\"}".into(),
                    ));
                }
                check_link(&v.to_string(), url).map_err(|m| (200, m))?;
                Ok((200, "{\"errcode\":0,\"errmsg\":\"ok\"}".into()))
            },
            (200, "{\"errcode\":130101,\"errmsg\":\"send too fast\"}"),
        ))
        .await;
        let feishu = start(judge(
            &url,
            fail_first,
            |_, _, v, url| {
                let refuse = || Err((200, "{\"code\":19021,\"msg\":\"sign match fail\"}".into()));
                let ts = v["timestamp"].as_str().unwrap_or("");
                let secs: i64 = ts.parse().unwrap_or(0);
                if (secs - now_secs()).abs() > 3600 {
                    return refuse();
                }
                let expected = b64(&hmac_sha256(format!("{ts}\n{SECRET}").as_bytes(), b""));
                if v["sign"].as_str() != Some(expected.as_str()) {
                    return refuse();
                }
                let button = &v["card"]["elements"][1]["actions"][0];
                if v["msg_type"] != "interactive"
                    || button["tag"] != "button"
                    || button["url"] != url
                    || v["card"]["header"]["title"]["content"]
                        .as_str()
                        .is_none_or(str::is_empty)
                {
                    return Err((200, "{\"code\":9499,\"msg\":\"Bad Request\"}".into()));
                }
                Ok((200, "{\"code\":0,\"msg\":\"success\"}".into()))
            },
            (200, "{\"code\":11232,\"msg\":\"frequency limited\"}"),
        ))
        .await;
        let slack = start(judge(
            &url,
            fail_first,
            |_, _, v, url| {
                let button = &v["blocks"][1]["elements"][0];
                if v["text"].as_str().is_none_or(str::is_empty)
                    || v["blocks"][0]["type"] != "section"
                    || v["blocks"][1]["type"] != "actions"
                    || button["type"] != "button"
                    || button["url"] != url
                {
                    return Err((400, "invalid_blocks".into()));
                }
                check_link(&v.to_string(), url).map_err(|m| (400, m))?;
                Ok((200, "ok".into()))
            },
            (429, "rate_limited"),
        ))
        .await;
        let teams = start(judge(
            &url,
            fail_first,
            |_, _, v, url| {
                let card = &v["attachments"][0];
                let action = &card["content"]["actions"][0];
                if v["type"] != "message"
                    || card["contentType"] != "application/vnd.microsoft.card.adaptive"
                    || card["content"]["type"] != "AdaptiveCard"
                    || action["type"] != "Action.OpenUrl"
                    || action["url"] != url
                {
                    return Err((
                        400,
                        "{\"error\":{\"code\":\"InvalidRequestContent\"}}".into(),
                    ));
                }
                Ok((202, String::new()))
            },
            (503, "busy"),
        ))
        .await;
        let webhook = start(judge(
            &url,
            fail_first,
            |head, body, v, url| {
                // A receiver that rejects replays: the timestamp is signed with the body
                // and must be within five minutes of its clock.
                let Some(timestamp) = header(head, "x-ip-monitor-timestamp") else {
                    return Err((401, "no timestamp".into()));
                };
                let sent: i64 = timestamp.parse().map_err(|_| (401, "timestamp".into()))?;
                if now_secs().abs_diff(sent) > 300 {
                    return Err((401, "stale timestamp".into()));
                }
                let signed = [timestamp.as_bytes(), b".", body].concat();
                let expected: String = hmac_sha256(SECRET.as_bytes(), &signed)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                if header(head, "x-ip-monitor-signature") != Some(&format!("sha256={expected}")) {
                    return Err((401, "bad signature".into()));
                }
                if v["url"] != url || v["family"] != "v4" || !v["test"].is_boolean() {
                    return Err((422, "fields".into()));
                }
                let event = if v["test"] == true {
                    "test"
                } else {
                    "address_changed"
                };
                if v["event"] != event || v["detected_at"].as_str().is_none() {
                    return Err((422, "event".into()));
                }
                Ok((200, String::new()))
            },
            (502, "bad gateway"),
        ))
        .await;
        Platforms {
            wecom,
            dingtalk,
            feishu,
            slack,
            teams,
            webhook,
            url,
            judges: judges.into_inner().unwrap(),
        }
    }

    /// Every server judges again (after a test made them fail).
    fn restore_judges(&self) {
        for ((_, server), judge) in self.all().iter().zip(&self.judges) {
            server.set(judge.clone());
        }
    }

    fn set_url(&self, url: &str) {
        *self.url.lock().unwrap() = url.to_owned();
    }

    fn config(&self) -> String {
        let entry = |kind: &str, url: String, signed: bool| {
            let secret = if signed {
                "secret_env = \"CHAT_SECRET\"\n"
            } else {
                ""
            };
            format!("[[channels]]\nkind = \"{kind}\"\nurl = \"{url}\"\n{secret}")
        };
        [
            entry(
                "wecom",
                format!("{}cgi-bin/webhook/send?key=wecom-key", self.wecom.url()),
                false,
            ),
            entry(
                "dingtalk",
                format!("{}robot/send?access_token=t", self.dingtalk.url()),
                true,
            ),
            entry(
                "feishu",
                format!("{}open-apis/bot/v2/hook/h", self.feishu.url()),
                true,
            ),
            entry(
                "slack",
                format!("{}services/T/B/X", self.slack.url()),
                false,
            ),
            entry("teams", format!("{}workflows/w", self.teams.url()), false),
            entry("webhook", format!("{}hooks/ip", self.webhook.url()), true),
        ]
        .concat()
    }

    fn all(&self) -> [(&'static str, &HttpServer); 6] {
        [
            ("wecom", &self.wecom),
            ("dingtalk", &self.dingtalk),
            ("feishu", &self.feishu),
            ("slack", &self.slack),
            ("teams", &self.teams),
            ("webhook", &self.webhook),
        ]
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env("CHAT_SECRET", SECRET)
        .arg("--config")
        .arg(dir.join("ip-monitor.toml"))
        .args(args)
        .output()
        .unwrap()
}

fn write_config(dir: &Path, db: &str, source: &HttpServer, smtp: &SmtpServer, p: &Platforms) {
    std::fs::write(
        dir.join("ip-monitor.toml"),
        format!(
            "[[sources.list]]\nkind = \"http\"\nurl = \"{}\"\n[store]\nurl = \"{db}\"\n\
             [delivery]\nretry_initial = \"100ms\"\nretry_max = \"100ms\"\njitter = 0.0\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"IP Monitor <noreply@example.com>\"\n{}",
            source.url(),
            smtp.addr.port(),
            p.config()
        ),
    )
    .unwrap();
}

async fn each_channel_is_told_once_per_change(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    common::setup_staff(db, 1, false);
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let smtp = SmtpServer::start();
    // Each platform first answers "too fast" (or 5xx): the retry delivers.
    let p = Platforms::start(1).await;
    p.set_url("http://81.2.69.160:8008/");
    write_config(dir.path(), db, &source, &smtp, &p);

    let out = run(dir.path(), &["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = run(dir.path(), &["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value =
        serde_json::from_slice(&run(dir.path(), &["status", "--json"]).stdout).unwrap();
    assert_eq!(
        status["deliveries"]["sent"], 7,
        "six channels and one person: {status}"
    );
    assert_eq!(status["deliveries"]["failed"], 0, "{status}");
    for (kind, server) in p.all() {
        // The refused first try, then the message (WeCom: the link and the QR code).
        let expected = if kind == "wecom" { 3 } else { 2 };
        assert_eq!(server.hits(), expected, "{kind}");
    }
    assert_eq!(smtp.messages().len(), 1);

    // A new address: each channel once more, and only for it.
    source.set(Behavior::ok("81.2.69.161\n"));
    p.set_url("http://81.2.69.161:8008/");
    let out = run(dir.path(), &["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value =
        serde_json::from_slice(&run(dir.path(), &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["deliveries"]["sent"], 14, "{status}");
    for (kind, server) in p.all() {
        let expected = if kind == "wecom" { 5 } else { 3 };
        assert_eq!(server.hits(), expected, "{kind}");
    }
    let history: Value =
        serde_json::from_slice(&run(dir.path(), &["history", "--json"]).stdout).unwrap();
    assert_eq!(history[0]["deliveries"], 7, "{history}");
    let last: Value = serde_json::from_slice(&p.webhook.bodies().pop().unwrap()).unwrap();
    assert_eq!(last["address"], "81.2.69.161");
    assert_eq!(last["previous"], "81.2.69.160", "{last}");

    // Every platform down (5xx) when the next address comes, and again a newer one before
    // the retry: each channel's older delivery is superseded, the newest URL goes out once.
    let down = || Behavior::Respond {
        status: 503,
        body: b"down".to_vec(),
        delay: std::time::Duration::ZERO,
    };
    for (_, server) in p.all() {
        server.set(down());
    }
    source.set(Behavior::ok("81.2.69.162\n"));
    p.set_url("http://81.2.69.162:8008/");
    assert!(run(dir.path(), &["check"]).status.success());
    let hits: Vec<usize> = p.all().iter().map(|(_, s)| s.hits()).collect();
    source.set(Behavior::ok("81.2.69.163\n"));
    p.set_url("http://81.2.69.163:8008/");
    p.restore_judges();
    assert!(run(dir.path(), &["check"]).status.success());
    let status: Value =
        serde_json::from_slice(&run(dir.path(), &["status", "--json"]).stdout).unwrap();
    assert_eq!(
        status["deliveries"]["superseded"], 6,
        "one per channel: {status}"
    );
    for ((kind, server), before) in p.all().iter().zip(hits) {
        let expected = if *kind == "wecom" { 2 } else { 1 };
        assert_eq!(
            server.hits() - before,
            expected,
            "{kind}: the newest URL, once"
        );
        let body = String::from_utf8(server.bodies().last().unwrap().clone()).unwrap();
        assert!(
            !body.contains("http://81.2.69.162:8008/"),
            "{kind} got the stale URL"
        );
    }

    // A test notice reaches the channels too.
    let out = run(dir.path(), &["test", "--force", "--ip", "81.2.69.163"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last: Value = serde_json::from_slice(&p.webhook.bodies().pop().unwrap()).unwrap();
    assert_eq!(
        (last["event"].as_str(), last["test"].as_bool()),
        (Some("test"), Some(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_channel_is_told_once_per_change_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    each_channel_is_told_once_per_change(&format!(
        "sqlite://{}",
        dir.path().join("s.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn each_channel_is_told_once_per_change_on_postgres() {
    each_channel_is_told_once_per_change(&ip_monitor_testkit::pg::fresh_database()).await;
}

/// A wrong secret is refused by the platform inside an HTTP 200, and that is a permanent
/// failure with the platform's words; a channel failing when a newer change comes is
/// superseded, not sent the stale URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_refusals_fail_and_newer_changes_supersede() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    common::setup_staff(&db, 1, false);
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let smtp = SmtpServer::start();
    let p = Platforms::start(0).await;
    p.set_url("http://81.2.69.160:8008/");
    write_config(dir.path(), &db, &source, &smtp, &p);
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env("CHAT_SECRET", "not-the-secret")
        .arg("--config")
        .arg(dir.path().join("ip-monitor.toml"))
        .arg("check")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("310000"),
        "DingTalk's refusal is shown: {stderr}"
    );
    assert!(
        stderr.contains("19021"),
        "Feishu's refusal is shown: {stderr}"
    );
    let status: Value =
        serde_json::from_slice(&run(dir.path(), &["status", "--json"]).stdout).unwrap();
    assert!(stderr.contains("webhook answered 401"), "{stderr}");
    assert_eq!(
        status["deliveries"]["failed"], 3,
        "the three signed ones: {status}"
    );
    assert_eq!(status["deliveries"]["sent"], 4, "{status}");

    // Slack down (5xx, retried later); then a newer address: the old one is superseded.
    p.slack.set(Behavior::Respond {
        status: 503,
        body: b"down".to_vec(),
        delay: std::time::Duration::ZERO,
    });
    source.set(Behavior::ok("81.2.69.161\n"));
    p.set_url("http://81.2.69.161:8008/");
    let out = run(dir.path(), &["check"]);
    assert!(out.status.success());
    source.set(Behavior::ok("81.2.69.162\n"));
    p.set_url("http://81.2.69.162:8008/");
    let ok = {
        let url = Arc::clone(&p.url);
        Behavior::Judge(Arc::new(move |_, body| {
            let v: Value = serde_json::from_slice(body).unwrap();
            let url = url.lock().unwrap().clone();
            let button = &v["blocks"][1]["elements"][0];
            if button["url"] == url.as_str() {
                (200, "ok".to_owned())
            } else {
                (400, format!("stale URL {}", button["url"]))
            }
        }))
    };
    p.slack.set(ok);
    let out = run(dir.path(), &["check"]);
    assert!(out.status.success());
    let status: Value =
        serde_json::from_slice(&run(dir.path(), &["status", "--json"]).stdout).unwrap();
    assert!(
        status["deliveries"]["superseded"].as_u64().unwrap() >= 1,
        "{status}"
    );
    let last = p.slack.bodies().last().cloned().unwrap();
    assert!(
        String::from_utf8_lossy(&last).contains("81.2.69.162"),
        "the newest URL went out"
    );
}

#[test]
fn channel_settings_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        (
            "[[channels]]\nkind = \"icq\"\nurl = \"http://127.0.0.1:1/\"\n",
            "channels[0].kind",
        ),
        ("[[channels]]\nkind = \"slack\"\n", "channels[0].url_env"),
        (
            "[[channels]]\nkind = \"slack\"\nurl_env = \"IP_MONITOR_SURELY_UNSET\"\n",
            "channels[0].url_env",
        ),
        (
            "[[channels]]\nkind = \"slack\"\nurl = \"http://127.0.0.1:1/\"\n[[channels]]\nkind = \"slack\"\nurl = \"http://127.0.0.1:2/\"\n",
            "channels[1].name",
        ),
        (
            "[[channels]]\nkind = \"slack\"\nurl = \"http://hooks.example.com/services/T0/B0/x\"\n",
            "channels[0].url",
        ),
    ] {
        std::fs::write(dir.path().join("ip-monitor.toml"), text).unwrap();
        let out = run(dir.path(), &["check"]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
}

/// `preview` writes each channel's requests beside the email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_writes_each_channel_s_payload() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let source = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let smtp = SmtpServer::start();
    let p = Platforms::start(0).await;
    write_config(dir.path(), &db, &source, &smtp, &p);
    let out_dir = dir.path().join("preview");
    // A link planted where a payload goes: it is replaced, the file it points to untouched.
    std::fs::create_dir(&out_dir).unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    std::os::unix::fs::symlink(&victim, out_dir.join("channel-slack-1.json")).unwrap();
    let out = run(
        dir.path(),
        &[
            "preview",
            "--out",
            out_dir.to_str().unwrap(),
            "--ip",
            "81.2.69.160",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (file, needle) in [
        ("channel-wecom-1.json", "\"markdown\""),
        ("channel-wecom-2.json", "\"md5\""),
        (
            "channel-dingtalk-1.json",
            "\"singleURL\": \"http://81.2.69.160:8008/\"",
        ),
        ("channel-feishu-1.json", "\"sign\""),
        (
            "channel-slack-1.json",
            "\"url\": \"http://81.2.69.160:8008/\"",
        ),
        ("channel-teams-1.json", "Action.OpenUrl"),
        ("channel-webhook-1.json", "\"event\": \"address_changed\""),
    ] {
        let text = std::fs::read_to_string(out_dir.join(file)).unwrap_or_default();
        assert!(text.contains(needle), "{file}: {text}");
    }
    assert_eq!(p.slack.hits(), 0, "a preview sends nothing");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file(), "{}", path.display());
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600,
            "{}",
            path.display()
        );
    }
}
