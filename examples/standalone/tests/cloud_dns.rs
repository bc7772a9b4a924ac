//! `[[dns]]` with `kind = "alidns"`, `"dnspod"` and `"huaweicloud"`: a record kept on the
//! current address through a local API (`testkit/fakes/cloud_dns.py`) that recomputes each
//! request's signature in Python from the provider's published algorithm, judges the fields
//! and keeps the records, as one outbox delivery per record per change, on both stores.

#[allow(dead_code)] // the helpers of the other process-level tests
mod common;

use std::process::{Command, Output};
use std::time::Duration;

use ip_monitor_testkit::cloud_dns::CloudDns;
use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");
const KEY_ID: &str = "key-id-for-the-tests";
const SECRET: &str = "Secret-for-the-tests-7Qx";
const WRONG: &str = "not-the-secret-9Lp";

/// One provider: its kind, its keys, and how it answers a throttled and a refused request.
#[derive(Clone, Copy)]
struct Provider {
    kind: &'static str,
    /// `[status, code]` of a throttled request.
    throttled: (u16, &'static str),
    /// The code of a request signed with the wrong secret.
    bad_signature: &'static str,
    /// The line a record is kept on, as the fake stores it.
    line: Option<&'static str>,
}

const ALIDNS: Provider = Provider {
    kind: "alidns",
    throttled: (400, "Throttling.User"),
    bad_signature: "SignatureDoesNotMatch",
    line: Some("default"),
};
const DNSPOD: Provider = Provider {
    kind: "dnspod",
    throttled: (200, "RequestLimitExceeded"),
    bad_signature: "AuthFailure.SignatureFailure",
    line: Some("默认"),
};
const HUAWEI: Provider = Provider {
    kind: "huaweicloud",
    throttled: (429, "APIGW.0308"),
    bad_signature: "APIGW.0301",
    line: None,
};

impl Provider {
    /// The `[[dns]]` entry of `name`, its secret in `$var`.
    fn entry(&self, name: &str, var: &str, endpoint: &str) -> String {
        let keys = match self.kind {
            "alidns" => {
                format!("access_key_id = \"{KEY_ID}\"\naccess_key_secret_env = \"{var}\"\n")
            }
            "dnspod" => format!("secret_id = \"{KEY_ID}\"\nsecret_key_env = \"{var}\"\n"),
            _ => format!(
                "access_key = \"{KEY_ID}\"\nsecret_key_env = \"{var}\"\nregion = \"cn-north-4\"\n"
            ),
        };
        format!(
            "[[dns]]\nkind = \"{}\"\nzone = \"example.com\"\nname = \"{name}\"\nttl = 600\n\
             endpoint = \"{endpoint}\"\n{keys}",
            self.kind
        )
    }

    /// A record someone else made for `name`.
    fn foreign(&self, name: &str, address: &str) -> Value {
        let mut r =
            json!({"name": name, "type": "A", "ttl": 600, "remark": "set by the network team"});
        match self.line {
            Some(line) => {
                r["value"] = json!(address);
                r["line"] = json!(line);
            }
            None => r["values"] = json!([address]),
        }
        r
    }
}

/// The addresses a record holds, as the fake stores them.
fn values(r: &Value) -> Vec<String> {
    let all = match &r["values"] {
        Value::Array(a) => a.clone(),
        _ => vec![r["value"].clone()],
    };
    all.iter()
        .map(|v| v.as_str().unwrap_or("").to_owned())
        .collect()
}

struct Env {
    dir: tempfile::TempDir,
    api: CloudDns,
    a: HttpServer,
    b: HttpServer,
    _smtp: SmtpServer,
}

impl Env {
    async fn new(provider: Provider, db: Option<&str>, names: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let api = CloudDns::start(provider.kind, KEY_ID, SECRET);
        let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
        let b = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
        let smtp = SmtpServer::start();
        let db = db.map_or_else(
            || format!("sqlite://{}", dir.path().join("s.db").display()),
            str::to_owned,
        );
        common::setup_staff(&db, 1, false);
        let entries: String = names
            .iter()
            .map(|(name, var)| provider.entry(name, var, &api.url()))
            .collect();
        std::fs::write(
            dir.path().join("ip-monitor.toml"),
            common::two_source_config(&a.url(), &b.url(), &db, smtp.addr.port(), &entries),
        )
        .unwrap();
        Env {
            dir,
            api,
            a,
            b,
            _smtp: smtp,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(BIN)
            .current_dir(self.dir.path())
            .env("DNS_SECRET", SECRET)
            .env("DNS_WRONG", WRONG)
            .arg("--config")
            .arg(self.dir.path().join("ip-monitor.toml"))
            .args(args)
            .output()
            .unwrap();
        for text in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(text);
            assert!(
                !text.contains(SECRET) && !text.contains(WRONG),
                "a secret in the output: {text}"
            );
        }
        out
    }

    fn set(&self, address: &str) {
        self.a.set(Behavior::ok(address));
        self.b.set(Behavior::ok(address));
    }

    /// The creations and updates so far (the remark of a new Alidns record is its own call).
    fn writes(&self) -> Vec<String> {
        self.api
            .writes()
            .into_iter()
            .filter(|w| w.starts_with("create") || w.starts_with("update"))
            .collect()
    }

    fn values_of(&self, name: &str) -> Vec<Vec<String>> {
        self.api.records_of(name).iter().map(values).collect()
    }

    /// `check` until `name` holds `address` (a failed delivery waits 100 ms to be retried).
    fn check_until(&self, name: &str, address: &str) {
        for _ in 0..20 {
            let _ = self.run(&["check"]);
            if self.values_of(name) == [vec![address.to_owned()]] {
                return;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        panic!("{name} never held {address}: {:?}", self.api.state());
    }

    fn status(&self) -> Value {
        serde_json::from_slice(&self.run(&["status", "--json"]).stdout).unwrap()
    }
}

async fn the_record_follows_the_address(provider: Provider, db: Option<&str>) {
    let env = Env::new(provider, db, &[("www.example.com", "DNS_SECRET")]).await;
    let out = env.run(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = env.api.records_of("www.example.com")[0].clone();
    assert_eq!(values(&record), ["81.2.69.160"], "{record}");
    assert!(
        record["remark"]
            .as_str()
            .unwrap()
            .contains("managed by ip-monitor"),
        "{record}"
    );
    assert_eq!(
        (record["ttl"].as_u64(), record["type"].as_str()),
        (Some(600), Some("A"))
    );
    if let Some(line) = provider.line {
        assert_eq!(record["line"], line);
    }

    // A change: the same record, updated once; a test notice leaves DNS alone.
    env.set("81.2.69.161\n");
    assert!(env.run(&["check"]).status.success());
    assert_eq!(env.values_of("www.example.com"), [["81.2.69.161"]]);
    assert_eq!(
        env.writes(),
        [
            "create A www.example.com 81.2.69.160",
            "update A www.example.com 81.2.69.161"
        ]
    );
    assert!(env.run(&["test", "--force"]).status.success());
    assert_eq!(env.writes().len(), 2);

    // Throttled, then a 5xx: retried on the schedule, not failed.
    let (status, code) = provider.throttled;
    env.api
        .control(json!({"fail": [[status, code], [502, "InternalError"]]}));
    env.set("81.2.69.162\n");
    env.check_until("www.example.com", "81.2.69.162");
    let rejected = env.api.state()["rejected"].to_string();
    assert!(
        rejected.contains(code) && rejected.contains("InternalError"),
        "{rejected}"
    );
    assert_eq!(env.status()["deliveries"]["failed"], 0);

    // The API down while the address moves twice: the older change is superseded, and
    // only the newest address is written, once.
    env.api.control(json!({"down": true}));
    env.set("81.2.69.163\n");
    let _ = env.run(&["check"]);
    env.set("81.2.69.164\n");
    let _ = env.run(&["check"]);
    env.api.control(json!({"down": false}));
    std::thread::sleep(Duration::from_millis(150));
    env.check_until("www.example.com", "81.2.69.164");
    let writes = env.writes();
    assert_eq!(
        writes[3..],
        ["update A www.example.com 81.2.69.164"],
        "{writes:?}"
    );
    let status = env.status();
    assert_eq!(status["deliveries"]["failed"], 0, "{status}");
    assert!(
        status["deliveries"]["superseded"].as_u64() >= Some(1),
        "{status}"
    );
}

/// Records not made by the monitor are left alone, and a key the API refuses is a permanent
/// failure with the API's own code; the other records still get their update.
async fn foreign_records_and_bad_keys_fail_clearly(provider: Provider, db: Option<&str>) {
    let env = Env::new(
        provider,
        db,
        &[
            ("www.example.com", "DNS_SECRET"),
            ("api.example.com", "DNS_SECRET"),
            ("ftp.example.com", "DNS_WRONG"),
        ],
    )
    .await;
    env.api
        .control(json!({"add": provider.foreign("api.example.com", "192.0.2.7")}));
    let out = env.run(&["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not managed by ip-monitor"), "{stderr}");
    assert!(
        stderr.contains(provider.bad_signature),
        "the API's refusal: {stderr}"
    );
    assert_eq!(
        env.values_of("api.example.com"),
        [["192.0.2.7"]],
        "untouched"
    );
    assert_eq!(env.values_of("www.example.com"), [["81.2.69.160"]]);
    assert!(env.values_of("ftp.example.com").is_empty());
    let status = env.status();
    assert_eq!(status["deliveries"]["failed"], 2, "{status}");
    // Permanent: not tried again.
    let before = env.api.state()["rejected"].as_array().unwrap().len();
    std::thread::sleep(Duration::from_millis(250));
    let _ = env.run(&["check"]);
    assert_eq!(
        env.api.state()["rejected"].as_array().unwrap().len(),
        before
    );

    // `preview` says what an update would do, without the secret, and writes nothing.
    let writes = env.api.writes().len();
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
    let plan = std::fs::read_to_string(out_dir.join("dns-www.example.com.txt")).unwrap();
    assert!(
        plan.contains("www.example.com in example.com") && plan.contains("81.2.69.170"),
        "{plan}"
    );
    assert!(!plan.contains(SECRET), "{plan}");
    assert_eq!(env.api.writes().len(), writes);
}

fn pg() -> String {
    ip_monitor_testkit::pg::fresh_database()
}

macro_rules! on_both_stores {
    ($($sqlite:ident, $postgres:ident: $scenario:ident($provider:expr);)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $scenario($provider, None).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(
            not(pg_tests),
            ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
        )]
        async fn $postgres() {
            $scenario($provider, Some(&pg())).await;
        }
    )*};
}

on_both_stores! {
    alidns_follows_on_sqlite, alidns_follows_on_postgres:
        the_record_follows_the_address(ALIDNS);
    dnspod_follows_on_sqlite, dnspod_follows_on_postgres:
        the_record_follows_the_address(DNSPOD);
    huaweicloud_follows_on_sqlite, huaweicloud_follows_on_postgres:
        the_record_follows_the_address(HUAWEI);
    alidns_refuses_on_sqlite, alidns_refuses_on_postgres:
        foreign_records_and_bad_keys_fail_clearly(ALIDNS);
    dnspod_refuses_on_sqlite, dnspod_refuses_on_postgres:
        foreign_records_and_bad_keys_fail_clearly(DNSPOD);
    huaweicloud_refuses_on_sqlite, huaweicloud_refuses_on_postgres:
        foreign_records_and_bad_keys_fail_clearly(HUAWEI);
}

/// Each kind's keys are checked and named: a missing secret variable, a key of another
/// kind, an endpoint that would carry the key in clear text, a bad region.
#[test]
fn provider_settings_name_their_key() {
    let cases = [
        (
            "kind = \"alidns\"\naccess_key_id = \"a\"\naccess_key_secret_env = \"IP_MONITOR_SURELY_UNSET\"\n",
            "dns[0].access_key_secret_env",
        ),
        (
            "kind = \"alidns\"\naccess_key_secret_env = \"PATH\"\n",
            "dns[0].access_key_id",
        ),
        (
            "kind = \"dnspod\"\nsecret_id = \"a\"\nsecret_key_env = \"PATH\"\nline = \"x\"\n",
            "dns[0].line",
        ),
        (
            "kind = \"dnspod\"\nsecret_id = \"a\"\nsecret_key_env = \"PATH\"\nendpoint = \"http://dnspod.example.com\"\n",
            "dns[0].endpoint",
        ),
        (
            "kind = \"huaweicloud\"\naccess_key = \"a\"\nsecret_key_env = \"PATH\"\n",
            "dns[0].region",
        ),
        (
            "kind = \"huaweicloud\"\naccess_key = \"a\"\nsecret_key_env = \"PATH\"\nregion = \"cn north\"\n",
            "dns[0].region",
        ),
        ("kind = \"route53\"\n", "dns[0].kind"),
    ];
    for (keys, key) in cases {
        let entry = format!("[[dns]]\nzone = \"example.com\"\nname = \"www.example.com\"\n{keys}");
        common::refuses_entry(BIN, &entry, &[("DNS_SECRET", SECRET)], key);
    }
}
