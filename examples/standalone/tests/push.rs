//! `[[channels]]` of the eight push kinds, against services on 127.0.0.1 that judge each
//! request as the real ones do (`ip_monitor_testkit::push`), the QR code decoded back to
//! the link: one delivery per channel per change, the email's words, rate limits honoured,
//! a refused key failing for good, and a newer change superseding an older one while the
//! services are down — on both stores. Three channels are spelled as Shoutrrr URLs.

#[allow(dead_code)] // the helpers of the other process-level tests
mod common;

use std::process::{Command, Output};
use std::time::Duration;

use ip_monitor_testkit::push::{PushServer, Pushed, keys};
use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");

/// Every service, and how many messages one notice makes there (two Telegram chats).
const SERVICES: &[(&str, usize)] = &[
    ("telegram", 2),
    ("discord", 1),
    ("ntfy", 1),
    ("gotify", 1),
    ("pushover", 1),
    ("bark", 1),
    ("serverchan", 1),
    ("pushplus", 1),
];

struct Env {
    dir: tempfile::TempDir,
    push: PushServer,
    a: HttpServer,
    b: HttpServer,
    _smtp: SmtpServer,
}

fn channels(push: &PushServer) -> String {
    let port = push.server.addr.port();
    format!(
        "[[channels]]\nkind = \"telegram\"\ntoken_env = \"TG_TOKEN\"\nchats = [\"42\", \"@ops\"]\napi = \"{tg}\"\n\
         [[channels]]\nkind = \"discord\"\nurl_env = \"DISCORD_URL\"\n\
         [[channels]]\nurl_env = \"NTFY_URL\"\n\
         [[channels]]\nurl = \"gotify://127.0.0.1:{port}/gotify/{gotify}?disabletls=yes\"\n\
         [[channels]]\nkind = \"pushover\"\ntoken_env = \"PO_TOKEN\"\nuser_key_env = \"PO_USER\"\napi = \"{po}\"\n\
         [[channels]]\nurl_env = \"BARK_URL\"\n\
         [[channels]]\nkind = \"serverchan\"\nsend_key_env = \"SC_KEY\"\napi = \"{sc}\"\n\
         [[channels]]\nkind = \"pushplus\"\ntoken_env = \"PP_TOKEN\"\napi = \"{pp}\"\n",
        tg = push.base("telegram"),
        po = push.base("pushover"),
        sc = push.base("serverchan"),
        pp = push.base("pushplus"),
        gotify = keys::GOTIFY,
    )
}

impl Env {
    async fn new(db: Option<&str>, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let push = PushServer::start().await;
        let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
        let b = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
        let smtp = SmtpServer::start();
        let db = db.map_or_else(
            || format!("sqlite://{}", dir.path().join("s.db").display()),
            str::to_owned,
        );
        common::setup_staff(&db, 1, false);
        std::fs::write(
            dir.path().join("ip-monitor.toml"),
            common::two_source_config(
                &a.url(),
                &b.url(),
                &db,
                smtp.addr.port(),
                &format!("{}{extra}", channels(&push)),
            ),
        )
        .unwrap();
        Env {
            dir,
            push,
            a,
            b,
            _smtp: smtp,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let port = self.push.server.addr.port();
        let (hook_id, hook_token) = keys::DISCORD;
        let (po_token, po_user) = keys::PUSHOVER;
        Command::new(BIN)
            .current_dir(self.dir.path())
            .env("TG_TOKEN", keys::TELEGRAM)
            .env(
                "DISCORD_URL",
                format!(
                    "{}/api/webhooks/{hook_id}/{hook_token}",
                    self.push.base("discord")
                ),
            )
            .env(
                "NTFY_URL",
                format!(
                    "ntfy://:{}@127.0.0.1:{port}/ntfy/ipm-alerts?scheme=http",
                    keys::NTFY
                ),
            )
            .env(
                "BARK_URL",
                format!("bark://:{}@127.0.0.1:{port}/bark?scheme=http", keys::BARK),
            )
            .env("PO_TOKEN", po_token)
            .env("PO_USER", po_user)
            .env("SC_KEY", keys::SERVERCHAN)
            .env("PP_TOKEN", keys::PUSHPLUS)
            .env("WRONG", "not-the-token")
            .arg("--config")
            .arg(self.dir.path().join("ip-monitor.toml"))
            .args(args)
            .output()
            .unwrap()
    }

    fn set(&self, address: &str) {
        self.a.set(Behavior::ok(address));
        self.b.set(Behavior::ok(address));
    }

    /// The messages each service took for `address`'s link.
    fn pushed_for(&self, address: &str) -> Vec<Pushed> {
        let url = format!("http://{address}:8008/");
        self.push
            .pushed()
            .into_iter()
            .filter(|p| p.url == url)
            .collect()
    }

    /// `check` until every service took its messages for `address`.
    fn check_until(&self, address: &str) {
        for _ in 0..40 {
            let _ = self.run(&["check"]);
            if self.pushed_for(address).len() == 9 {
                return;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        panic!(
            "not every service took {address}: {:?}\nrejected: {:?}",
            self.pushed_for(address),
            self.push.rejected()
        );
    }

    fn status(&self) -> Value {
        serde_json::from_slice(&self.run(&["status", "--json"]).stdout).unwrap()
    }
}

/// Each service took one notice of `address`, in the email's words, the link as given and
/// the QR code saying it where the service takes an image; the bare address is in no title
/// or text but inside the link.
fn assert_told(env: &Env, address: &str, test: bool) {
    let url = format!("http://{address}:8008/");
    let pushed: Vec<Pushed> = env
        .pushed_for(address)
        .into_iter()
        .filter(|p| p.title.starts_with("[Test]") == test)
        .collect();
    for (service, n) in SERVICES {
        let got: Vec<&Pushed> = pushed.iter().filter(|p| p.service == *service).collect();
        assert_eq!(got.len(), *n, "{service}: {:?}", env.push.rejected());
        for p in got {
            assert!(p.title.contains("The server has a new address"), "{p:?}");
            assert!(!p.title.contains(address), "{p:?}");
            assert!(!p.text.replace(&url, "").contains(address), "{p:?}");
            let image = !matches!(*service, "gotify" | "bark" | "serverchan");
            assert_eq!(p.qr.as_deref(), image.then_some(url.as_str()), "{p:?}");
        }
    }
    let chats: Vec<String> = pushed
        .iter()
        .filter(|p| p.service == "telegram")
        .map(|p| p.to.clone())
        .collect();
    assert_eq!(chats, ["42", "@ops"]);
}

async fn every_service_is_told_once(db: Option<&str>) {
    let env = Env::new(db, "").await;
    let out = env.run(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_told(&env, "81.2.69.160", false);

    env.set("81.2.69.161\n");
    assert!(env.run(&["check"]).status.success());
    assert_told(&env, "81.2.69.161", false);
    assert_eq!(env.push.pushed().len(), 18, "once per change");
    assert!(env.run(&["test", "--force"]).status.success());
    assert_told(&env, "81.2.69.161", true);

    // Rate limits as each service states them, and a 5xx: retried, not failed.
    env.push.fail_next(
        "telegram",
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1}}),
    );
    env.push.fail_next(
        "discord",
        429,
        json!({"message": "You are being rate limited.", "retry_after": 0.3, "global": false}),
    );
    env.push.fail_next(
        "ntfy",
        503,
        json!({"code": 50301, "http": 503, "error": "unavailable"}),
    );
    env.set("81.2.69.162\n");
    env.check_until("81.2.69.162");
    assert_eq!(env.push.rejected().len(), 3, "{:?}", env.push.rejected());
    assert_eq!(env.status()["deliveries"]["failed"], 0);

    // The services down while the address moves twice: only the newest goes out, once
    // (the eight channels' deliveries of the older change are superseded).
    env.push.down(true);
    env.set("81.2.69.163\n");
    let _ = env.run(&["check"]);
    env.set("81.2.69.164\n");
    let _ = env.run(&["check"]);
    env.push.down(false);
    std::thread::sleep(Duration::from_millis(150));
    env.check_until("81.2.69.164");
    assert!(env.pushed_for("81.2.69.163").is_empty());
    assert_eq!(env.pushed_for("81.2.69.164").len(), 9);
    let status = env.status();
    assert_eq!(status["deliveries"]["failed"], 0, "{status}");
    assert!(
        status["deliveries"]["superseded"].as_u64() >= Some(8),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_is_told_once_on_sqlite() {
    every_service_is_told_once(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn every_service_is_told_once_on_postgres() {
    every_service_is_told_once(Some(&ip_monitor_testkit::pg::fresh_database())).await;
}

/// A token a service refuses is a permanent failure in the service's words; the others are
/// told; `preview` says what each would send, without a secret.
async fn a_refused_token_fails_for_good(db: Option<&str>) {
    let extra = "[[channels]]\nkind = \"pushplus\"\nname = \"pushplus-wrong\"\ntoken_env = \"WRONG\"\n\
                 api = \"API\"\n";
    let env = Env::new(db, "").await;
    let config = std::fs::read_to_string(env.dir.path().join("ip-monitor.toml")).unwrap();
    let extra = extra.replace("API", &env.push.base("pushplus"));
    std::fs::write(env.dir.path().join("ip-monitor.toml"), config + &extra).unwrap();
    let out = env.run(&["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("903") && stderr.contains("无效的用户token"),
        "{stderr}"
    );
    assert_told(&env, "81.2.69.160", false);
    assert_eq!(env.status()["deliveries"]["failed"], 1);
    let rejected = env.push.rejected().len();
    std::thread::sleep(Duration::from_millis(250));
    let _ = env.run(&["check"]);
    assert_eq!(env.push.rejected().len(), rejected, "not tried again");

    let out_dir = env.dir.path().join("preview");
    let out = env.run(&[
        "preview",
        "--out",
        out_dir.to_str().unwrap(),
        "--ip",
        "81.2.69.170",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let telegram = std::fs::read_to_string(out_dir.join("channel-telegram.txt")).unwrap();
    assert!(
        telegram.contains("to 2 chat(s)")
            && telegram.contains("http://81.2.69.170:8008/")
            && telegram.contains("qr.png"),
        "{telegram}"
    );
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        for secret in [
            keys::TELEGRAM,
            keys::NTFY,
            keys::GOTIFY,
            keys::PUSHPLUS,
            keys::BARK,
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_fails_for_good_on_sqlite() {
    a_refused_token_fails_for_good(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn a_refused_token_fails_for_good_on_postgres() {
    a_refused_token_fails_for_good(Some(&ip_monitor_testkit::pg::fresh_database())).await;
}

/// Each push kind's keys are checked and named.
#[test]
fn push_settings_name_their_key() {
    let cases = [
        ("kind = \"telegram\"\ntoken_env = \"PATH\"\n", "chats"),
        (
            "kind = \"telegram\"\nchats = [\"1\"]\n",
            "channels[0].token_env",
        ),
        (
            "kind = \"bark\"\ndevice_key_env = \"IP_MONITOR_SURELY_UNSET\"\n",
            "channels[0].device_key_env",
        ),
        (
            "kind = \"gotify\"\ntoken_env = \"PATH\"\nurl = \"http://gotify.example.com\"\n",
            "channels[0].url",
        ),
        (
            "kind = \"serverchan\"\nsend_key_env = \"PATH\"\nchats = [\"1\"]\n",
            "channels[0].chats",
        ),
        ("url = \"telegram://1:a@telegram\"\n", "no chats"),
        (
            "kind = \"discord\"\nurl = \"ntfy://ntfy.sh/x\"\n",
            "channels[0].url",
        ),
        (
            "kind = \"slack\"\nurl = \"https://hooks.slack.com/x\"\ntoken_env = \"PATH\"\n",
            "channels[0].token_env",
        ),
    ];
    for (keys, key) in cases {
        common::refuses_entry(BIN, &format!("[[channels]]\n{keys}"), &[], key);
    }
}
