//! `[[dns]]` with `kind = "cloudflare"`: a record kept on the current address through a
//! local server that behaves like Cloudflare's API v4 (the token checked, the JSON checked,
//! records kept in memory), as one outbox delivery per record per change.

#[allow(dead_code)] // the helpers of the other process-level tests
mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");
const TOKEN: &str = "cf-token-for-the-tests";

#[derive(Default)]
struct Api {
    records: Vec<Value>,
    next_id: u32,
    /// Mutating requests (POST, PATCH, DELETE) received.
    writes: Vec<String>,
    /// Answer this many requests with 502 first.
    fail: usize,
}

fn ok(result: Value) -> (u16, String) {
    (
        200,
        json!({"success": true, "errors": [], "messages": [], "result": result}).to_string(),
    )
}

fn refuse(status: u16, code: u32, message: &str) -> (u16, String) {
    (
        status,
        json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null})
            .to_string(),
    )
}

fn query<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    target.split_once('?')?.1.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then_some(v)
    })
}

/// A record body as the API documents it: the type, a name in the zone, an address of the
/// type's family, a TTL of 1 (automatic) or 60 to 86400, `proxied`, a comment of at most
/// 100 characters.
fn valid_record(v: &Value) -> Result<(), String> {
    let kind = v["type"].as_str().ok_or("type")?;
    let content: std::net::IpAddr = v["content"]
        .as_str()
        .and_then(|c| c.parse().ok())
        .ok_or("content")?;
    match (kind, content) {
        ("A", std::net::IpAddr::V4(_)) | ("AAAA", std::net::IpAddr::V6(_)) => {}
        _ => return Err(format!("{kind} with {content}")),
    }
    if !v["name"]
        .as_str()
        .is_some_and(|n| n.ends_with("example.com"))
    {
        return Err("name".into());
    }
    let ttl = v["ttl"].as_u64().ok_or("ttl")?;
    if !(ttl == 1 || (60..=86_400).contains(&ttl)) || !v["proxied"].is_boolean() {
        return Err("ttl or proxied".into());
    }
    if v["comment"].as_str().is_some_and(|c| c.len() > 100) {
        return Err("comment too long".into());
    }
    Ok(())
}

fn cloudflare(api: &Arc<Mutex<Api>>) -> Behavior {
    let api = Arc::clone(api);
    Behavior::Judge(Arc::new(move |head, body| {
        let mut api = api.lock().unwrap();
        if api.fail > 0 {
            api.fail -= 1;
            return (502, "bad gateway".to_owned());
        }
        let auth = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("authorization")
                .then(|| v.trim().to_owned())
        });
        if auth.as_deref() != Some(&format!("Bearer {TOKEN}")) {
            return refuse(403, 9109, "Invalid access token");
        }
        let mut line = head.lines().next().unwrap_or("").split(' ');
        let (method, target) = (line.next().unwrap_or(""), line.next().unwrap_or(""));
        let path = target.split('?').next().unwrap_or("");
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("GET", ["client", "v4", "zones"]) => match query(target, "name") {
                Some("example.com") => ok(json!([{"id": "zone1", "name": "example.com"}])),
                _ => ok(json!([])),
            },
            ("GET", ["client", "v4", "zones", "zone1", "dns_records"]) => {
                let (kind, name) = (query(target, "type"), query(target, "name"));
                let found: Vec<Value> = api
                    .records
                    .iter()
                    .filter(|r| kind.is_none_or(|k| r["type"] == k))
                    .filter(|r| name.is_none_or(|n| r["name"] == n))
                    .cloned()
                    .collect();
                ok(Value::Array(found))
            }
            ("POST", ["client", "v4", "zones", "zone1", "dns_records"]) => {
                let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
                    return refuse(400, 9207, "Request body is invalid");
                };
                if let Err(e) = valid_record(&v) {
                    return refuse(400, 9005, &e);
                }
                api.next_id += 1;
                v["id"] = json!(format!("rec{}", api.next_id));
                api.records.push(v.clone());
                api.writes.push(format!("POST {}", v["content"]));
                ok(v)
            }
            ("PATCH", ["client", "v4", "zones", "zone1", "dns_records", id]) => {
                let Ok(patch) = serde_json::from_slice::<Value>(body) else {
                    return refuse(400, 9207, "Request body is invalid");
                };
                let Some(record) = api.records.iter_mut().find(|r| r["id"] == *id) else {
                    return refuse(404, 81044, "Record does not exist.");
                };
                for (k, v) in patch.as_object().unwrap() {
                    record[k] = v.clone();
                }
                let record = record.clone();
                if let Err(e) = valid_record(&record) {
                    return refuse(400, 9005, &e);
                }
                api.writes.push(format!("PATCH {}", record["content"]));
                ok(record)
            }
            ("DELETE", ["client", "v4", "zones", "zone1", "dns_records", id]) => {
                api.records.retain(|r| r["id"] != *id);
                api.writes.push(format!("DELETE {id}"));
                ok(json!({"id": id}))
            }
            _ => refuse(404, 7003, "Could not route to the path"),
        }
    }))
}

struct Env {
    dir: tempfile::TempDir,
    api: Arc<Mutex<Api>>,
    _server: HttpServer,
    a: HttpServer,
    b: HttpServer,
    _smtp: SmtpServer,
}

impl Env {
    async fn new(db: Option<&str>, records: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let api = Arc::new(Mutex::new(Api::default()));
        let server = HttpServer::start("127.0.0.1:0", cloudflare(&api)).await;
        let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
        let b = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
        let smtp = SmtpServer::start();
        let db = db.map_or_else(
            || format!("sqlite://{}", dir.path().join("s.db").display()),
            str::to_owned,
        );
        common::setup_staff(&db, 1, false);
        let mut entries = String::new();
        for (name, token) in records {
            entries.push_str(&format!(
                "[[dns]]\nkind = \"cloudflare\"\nzone = \"example.com\"\nname = \"{name}\"\n\
                 ttl = 300\ntoken_env = \"{token}\"\napi_base = \"{}client/v4\"\n",
                server.url()
            ));
        }
        std::fs::write(
            dir.path().join("ip-monitor.toml"),
            format!(
                "[sources]\nquorum = 2\n[[sources.list]]\nkind = \"http\"\nurl = \"{}\"\n\
                 [[sources.list]]\nkind = \"http\"\nurl = \"{}\"\n[store]\nurl = \"{db}\"\n\
                 [delivery]\nretry_initial = \"100ms\"\nretry_max = \"100ms\"\njitter = 0.0\n\
                 [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
                 from = \"IP Monitor <noreply@example.com>\"\n{entries}",
                a.url(),
                b.url(),
                smtp.addr.port()
            ),
        )
        .unwrap();
        Env {
            dir,
            api,
            _server: server,
            a,
            b,
            _smtp: smtp,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        run_in(self.dir.path(), args)
    }

    fn set(&self, address: &str) {
        self.a.set(Behavior::ok(address));
        self.b.set(Behavior::ok(address));
    }

    fn writes(&self) -> Vec<String> {
        self.api.lock().unwrap().writes.clone()
    }

    fn content_of(&self, name: &str) -> Vec<String> {
        self.api
            .lock()
            .unwrap()
            .records
            .iter()
            .filter(|r| r["name"] == name)
            .map(|r| r["content"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    fn status(&self) -> Value {
        serde_json::from_slice(&self.run(&["status", "--json"]).stdout).unwrap()
    }
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env("CF_TOKEN", TOKEN)
        .env("CF_WRONG", "not-the-token")
        .arg("--config")
        .arg(dir.join("ip-monitor.toml"))
        .args(args)
        .output()
        .unwrap()
}

async fn the_record_follows_the_address(db: Option<&str>) {
    let env = Env::new(db, &[("www.example.com", "CF_TOKEN")]).await;
    assert!(env.run(&["check"]).status.success());
    assert_eq!(env.content_of("www.example.com"), ["81.2.69.160"]);
    let record = env.api.lock().unwrap().records[0].clone();
    assert!(
        record["comment"]
            .as_str()
            .unwrap()
            .contains("managed by ip-monitor")
    );
    assert_eq!(
        (record["ttl"].as_u64(), record["type"].as_str()),
        (Some(300), Some("A"))
    );

    // A flapping source: no quorum, nothing recorded, DNS untouched.
    env.a.set(Behavior::ok("81.2.69.161\n"));
    let out = env.run(&["check"]);
    assert!(!out.status.success());
    assert_eq!(env.writes().len(), 1, "{:?}", env.writes());

    // A change: the same record, updated once; a test notice leaves DNS alone.
    env.set("81.2.69.161\n");
    assert!(env.run(&["check"]).status.success());
    assert_eq!(env.content_of("www.example.com"), ["81.2.69.161"]);
    assert_eq!(
        env.writes(),
        ["POST \"81.2.69.160\"", "PATCH \"81.2.69.161\""]
    );
    assert!(env.run(&["test", "--force"]).status.success());
    assert_eq!(env.writes().len(), 2);

    // The API failing (502): retried on the schedule.
    env.api.lock().unwrap().fail = 1;
    env.set("81.2.69.162\n");
    assert!(env.run(&["check"]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(250));
    assert!(env.run(&["check"]).status.success());
    assert_eq!(env.content_of("www.example.com"), ["81.2.69.162"]);
    let status = env.status();
    assert_eq!(status["deliveries"]["failed"], 0, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_follows_the_address_on_sqlite() {
    the_record_follows_the_address(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn the_record_follows_the_address_on_postgres() {
    the_record_follows_the_address(Some(&ip_monitor_testkit::pg::fresh_database())).await;
}

/// Two monitors on one PostgreSQL store, checking at the same moment: the record is
/// written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn two_instances_write_the_record_once() {
    let db = ip_monitor_testkit::pg::fresh_database();
    let env = Env::new(Some(&db), &[("www.example.com", "CF_TOKEN")]).await;
    let other = tempfile::tempdir().unwrap();
    std::fs::copy(
        env.dir.path().join("ip-monitor.toml"),
        other.path().join("ip-monitor.toml"),
    )
    .unwrap();
    let (dir1, dir2) = (env.dir.path().to_owned(), other.path().to_owned());
    let one = std::thread::spawn(move || run_in(&dir1, &["check"]));
    let two = std::thread::spawn(move || run_in(&dir2, &["check"]));
    let (one, two) = (one.join().unwrap(), two.join().unwrap());
    assert!(one.status.success() || two.status.success());
    assert_eq!(env.writes(), ["POST \"81.2.69.160\""]);
    // Again, now that the address is recorded: nothing to write.
    let _ = (
        run_in(env.dir.path(), &["check"]),
        run_in(other.path(), &["check"]),
    );
    assert_eq!(env.writes().len(), 1);
}

/// Records not made by the monitor are left alone, and a token the API refuses is a
/// permanent failure with the API's words; other records still get their update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_records_and_bad_tokens_fail_clearly() {
    let env = Env::new(
        None,
        &[
            ("www.example.com", "CF_TOKEN"),
            ("api.example.com", "CF_TOKEN"),
            ("ftp.example.com", "CF_WRONG"),
        ],
    )
    .await;
    env.api.lock().unwrap().records.push(json!({
        "id": "by-hand", "type": "A", "name": "api.example.com", "content": "192.0.2.7",
        "ttl": 1, "proxied": false, "comment": "set by the network team",
    }));
    let out = env.run(&["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not managed by ip-monitor"), "{stderr}");
    assert!(stderr.contains("9109"), "the API's refusal: {stderr}");
    assert_eq!(
        env.content_of("api.example.com"),
        ["192.0.2.7"],
        "untouched"
    );
    assert_eq!(env.content_of("www.example.com"), ["81.2.69.160"]);
    let status = env.status();
    assert_eq!(status["deliveries"]["failed"], 2, "{status}");
    assert!(env.content_of("ftp.example.com").is_empty());
}

#[test]
fn dns_settings_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        ("[[dns]]\nkind = \"bind\"\n", "dns[0].kind"),
        (
            "[[dns]]\nkind = \"cloudflare\"\nname = \"www.example.com\"\n",
            "dns[0].zone",
        ),
        (
            "[[dns]]\nkind = \"cloudflare\"\nzone = \"example.com\"\nname = \"www.example.org\"\ntoken_env = \"CF_TOKEN\"\n",
            "dns[0].name",
        ),
        (
            "[[dns]]\nkind = \"cloudflare\"\nzone = \"example.com\"\nname = \"www.example.com\"\ntoken_env = \"IP_MONITOR_SURELY_UNSET\"\n",
            "dns[0].token_env",
        ),
    ] {
        std::fs::write(dir.path().join("ip-monitor.toml"), text).unwrap();
        let out = run_in(dir.path(), &["check"]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
}
