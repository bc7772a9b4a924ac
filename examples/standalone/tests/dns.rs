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
            common::two_source_config(&a.url(), &b.url(), &db, smtp.addr.port(), &entries),
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
        (
            "[[dns]]\nkind = \"cloudflare\"\nzone = \"example.com\"\nname = \"www.example.com\"\ntoken_env = \"PATH\"\napi_base = \"http://api.example.com/client/v4\"\n",
            "dns[0].api_base",
        ),
    ] {
        std::fs::write(dir.path().join("ip-monitor.toml"), text).unwrap();
        let out = run_in(dir.path(), &["check"]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
}

// ---- RFC 2136 against BIND ----------------------------------------------------------------

/// The TSIG secret of the tests, base64 as `tsig-keygen` prints it.
const TSIG_SECRET: &str = "c2VjcmV0LW9mLXRoZS1pcC1tb25pdG9yLXRlc3RzLTEyMzQ1Njc4";

/// BIND's `named` on 127.0.0.1 with the zone `example.com`, updatable with the key
/// `ipm-key` (HMAC-SHA256); stopped when dropped.
struct Bind {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> u16 {
    loop {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // named listens on TCP too.
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Bind {
    fn start() -> Bind {
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("example.com.zone"),
            "$TTL 300\n@ IN SOA ns.example.com. admin.example.com. 1 3600 600 86400 300\n\
             @ IN NS ns.example.com.\nns IN A 192.0.2.53\nwww IN A 192.0.2.1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("named.conf"),
            format!(
                "key \"ipm-key\" {{ algorithm hmac-sha256; secret \"{TSIG_SECRET}\"; }};\n\
                 options {{ directory \"{d}\"; pid-file \"{d}/named.pid\"; \
                 listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; \
                 recursion no; dnssec-validation no; }};\n\
                 controls {{ }};\n\
                 zone \"example.com\" {{ type primary; file \"{d}/example.com.zone\"; \
                 allow-update {{ key \"ipm-key\"; }}; }};\n"
            ),
        )
        .unwrap();
        let named = if std::path::Path::new("/usr/sbin/named").is_file() {
            "/usr/sbin/named"
        } else {
            "named"
        };
        let mut cmd = Command::new(named);
        cmd.args(["-g", "-c"]).arg(dir.path().join("named.conf"));
        if is_root() {
            cmd.args(["-u", "root"]);
        }
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("named (Debian package bind9)");
        let bind = Bind {
            child,
            port,
            _dir: dir,
        };
        let start = std::time::Instant::now();
        while bind.lookup("ns.example.com").is_empty() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "named did not come up"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        bind
    }

    /// The A records of `name`, asked over UDP.
    fn lookup(&self, name: &str) -> Vec<String> {
        use hickory_proto::op::{Message, MessageType, OpCode, Query};
        use hickory_proto::rr::{Name, RData, RecordType};
        let mut q = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Query);
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        if socket
            .send_to(&q.to_vec().unwrap(), ("127.0.0.1", self.port))
            .is_err()
        {
            return Vec::new();
        }
        let mut buf = [0u8; 4096];
        let Ok(n) = socket.recv(&mut buf) else {
            return Vec::new();
        };
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            return Vec::new();
        };
        reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect()
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A store and two sources, with `[[dns]]` entries of kind rfc2136 for `names` at `port`.
async fn rfc2136_env(port: u16, names: &[(&str, &str)]) -> Env {
    let env = Env::new(None, &[]).await;
    let config = std::fs::read_to_string(env.dir.path().join("ip-monitor.toml")).unwrap();
    let mut entries = String::new();
    for (name, secret_env) in names {
        entries.push_str(&format!(
            "[[dns]]\nkind = \"rfc2136\"\nserver = \"127.0.0.1:{port}\"\nzone = \"example.com\"\n\
             name = \"{name}\"\nttl = 120\ntsig_key_name = \"ipm-key\"\n\
             tsig_algorithm = \"hmac-sha256\"\ntsig_secret_env = \"{secret_env}\"\n"
        ));
    }
    std::fs::write(
        env.dir.path().join("ip-monitor.toml"),
        format!("{config}{entries}"),
    )
    .unwrap();
    env
}

fn run_with_tsig(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env("TSIG_SECRET", TSIG_SECRET)
        .env(
            "TSIG_WRONG",
            "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy0xMjM0",
        )
        .arg("--config")
        .arg(dir.join("ip-monitor.toml"))
        .args(args)
        .output()
        .unwrap()
}

/// The record follows the address through signed updates; a flapping source, a test notice
/// and a wrong key leave it alone; the key's refusal is permanent and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(bind_tests),
    ignore = "needs BIND's named: install it (scripts/setup.sh, Debian package bind9)"
)]
async fn bind_follows_the_address_through_signed_updates() {
    let bind = Bind::start();
    assert_eq!(bind.lookup("www.example.com"), ["192.0.2.1"]);
    let env = rfc2136_env(
        bind.port,
        &[
            ("www.example.com", "TSIG_SECRET"),
            ("ftp.example.com", "TSIG_WRONG"),
        ],
    )
    .await;
    let dir = env.dir.path();
    let out = run_with_tsig(dir, &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(bind.lookup("www.example.com"), ["81.2.69.160"], "{stderr}");
    assert!(
        bind.lookup("ftp.example.com").is_empty(),
        "the wrong key changed nothing"
    );
    assert!(
        stderr.contains("the answer's TSIG") || stderr.contains("refused the update"),
        "{stderr}"
    );
    let status: Value =
        serde_json::from_slice(&run_with_tsig(dir, &["status", "--json"]).stdout).unwrap();
    assert_eq!(
        status["deliveries"]["failed"], 1,
        "the wrong key, for good: {status}"
    );
    assert_eq!(status["deliveries"]["sent"], 2, "{status}");

    // A flapping source: nothing recorded, the record stays.
    env.a.set(Behavior::ok("81.2.69.161\n"));
    assert!(!run_with_tsig(dir, &["check"]).status.success());
    assert_eq!(bind.lookup("www.example.com"), ["81.2.69.160"]);
    // A test notice leaves DNS alone.
    assert!(
        run_with_tsig(dir, &["test", "--force", "--ip", "81.2.69.170"])
            .status
            .success()
    );
    assert_eq!(bind.lookup("www.example.com"), ["81.2.69.160"]);
    // A change: replaced, not added beside the old one.
    env.set("81.2.69.161\n");
    assert!(run_with_tsig(dir, &["check"]).status.success());
    assert_eq!(bind.lookup("www.example.com"), ["81.2.69.161"]);
}

/// No answer from the server (it receives and never replies): the update waits for its
/// retry, it does not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(bind_tests),
    ignore = "needs BIND's named: install it (scripts/setup.sh, Debian package bind9)"
)]
async fn an_unanswered_update_is_retried() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let env = rfc2136_env(port, &[("www.example.com", "TSIG_SECRET")]).await;
    let dir = env.dir.path();
    let out = run_with_tsig(dir, &["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value =
        serde_json::from_slice(&run_with_tsig(dir, &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["deliveries"]["failed"], 0, "{status}");
    assert_eq!(
        status["deliveries"]["pending"], 1,
        "waiting for its retry: {status}"
    );
}

/// `preview` says what each record's update would do, and does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_shows_each_record_s_update() {
    let env = rfc2136_env(5353, &[("www.example.com", "TSIG_SECRET")]).await;
    let config = std::fs::read_to_string(env.dir.path().join("ip-monitor.toml")).unwrap();
    std::fs::write(
        env.dir.path().join("ip-monitor.toml"),
        format!(
            "{config}[[dns]]\nkind = \"cloudflare\"\nzone = \"example.com\"\nname = \"app.example.com\"\n\
             token_env = \"CF_TOKEN\"\n"
        ),
    )
    .unwrap();
    let out_dir = env.dir.path().join("preview");
    let out = Command::new(BIN)
        .current_dir(env.dir.path())
        .env("TSIG_SECRET", TSIG_SECRET)
        .env("CF_TOKEN", TOKEN)
        .arg("--config")
        .arg(env.dir.path().join("ip-monitor.toml"))
        .args([
            "preview",
            "--out",
            out_dir.to_str().unwrap(),
            "--ip",
            "81.2.69.160",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bind = std::fs::read_to_string(out_dir.join("dns-www.example.com.txt")).unwrap();
    assert!(
        bind.contains("RFC 2136 update at 127.0.0.1:5353")
            && bind.contains("the A set of www.example.com in example.com with 81.2.69.160"),
        "{bind}"
    );
    let cf = std::fs::read_to_string(out_dir.join("dns-app.example.com.txt")).unwrap();
    assert!(
        cf.contains("record of app.example.com in example.com to 81.2.69.160"),
        "{cf}"
    );
    assert!(env.writes().is_empty(), "a preview writes nothing");
}
