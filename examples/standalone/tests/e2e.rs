//! The binary as a user runs it: local HTTP IP sources whose answer the test changes, a real
//! SMTP server, and an SQLite database with the application's `staff` table.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    a: HttpServer,
    b: HttpServer,
    smtp: SmtpServer,
}

impl Env {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
        let b = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
        let smtp = SmtpServer::start();
        let db = dir.path().join("app.db");
        {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
            conn.batch_execute(
                "CREATE TABLE staff (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT,
                     is_delete BOOLEAN NOT NULL DEFAULT false, is_lock BOOLEAN NOT NULL DEFAULT false);
                 INSERT INTO staff (email, name) VALUES ('ana@example.com', 'Ana'), ('ben@example.com', NULL);
                 INSERT INTO staff (email, name, is_delete) VALUES ('gone@example.com', 'Gone', true);
                 INSERT INTO staff (email, name, is_lock) VALUES ('locked@example.com', 'Locked', true);",
            )
            .unwrap();
        }
        let config = dir.path().join("ip-monitor.toml");
        std::fs::write(
            &config,
            format!(
                r#"
interval = "1h"
probe_interval = "1s"
control_poll = "200ms"
heartbeat = "300ms"
service_url = "http://{{ip}}:8008/"

[sources]
strategy = "quorum"
timeout = "2s"
[[sources.list]]
kind = "http"
name = "a"
url = "{a}"
[[sources.list]]
kind = "http"
name = "b"
url = "{b}"

[store]
url = "sqlite://{db}"

[smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
from = "IP Monitor <noreply@example.com>"
timeout = "5s"
"#,
                a = a.url(),
                b = b.url(),
                db = db.display(),
                port = smtp.addr.port(),
            ),
        )
        .unwrap();
        Env {
            dir,
            config,
            a,
            b,
            smtp,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .arg("--config")
            .arg(&self.config)
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn set(&self, address: &str) {
        self.a.set(Behavior::ok(address));
        self.b.set(Behavior::ok(address));
    }

    fn recipients_of_messages(&self) -> Vec<String> {
        let mut to: Vec<String> = self
            .smtp
            .messages()
            .into_iter()
            .flat_map(|m| m.to)
            .collect();
        to.sort();
        to
    }
}

fn qr_of(raw: &[u8]) -> String {
    use mail_parser::{MessageParser, MimeHeaders, PartType};
    let m = MessageParser::default().parse(raw).unwrap();
    let part = m
        .parts
        .iter()
        .find(|p| p.content_type().is_some_and(|c| c.ctype() == "image"))
        .expect("an inline image");
    let (PartType::Binary(png) | PartType::InlineBinary(png)) = &part.body else {
        panic!("binary image")
    };
    let img = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    prepared.detect_grids()[0].decode().unwrap().1
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_s_first_day() {
    let env = Env::new().await;

    // Nothing yet.
    assert_eq!(env.json(&["status", "--json"])["state"], "never-started");
    let staff = env.json(&["recipients", "--json"]);
    assert_eq!(staff["active"].as_array().unwrap().len(), 2, "{staff}");

    // The first check notifies the active staff only.
    let reports = env.json(&["check", "--json"]);
    assert_eq!(reports[0]["changed"], true, "{reports}");
    assert_eq!(
        env.recipients_of_messages(),
        ["ana@example.com", "ben@example.com"]
    );
    assert!(
        env.smtp
            .messages()
            .iter()
            .all(|m| qr_of(&m.data) == "http://81.2.69.160:8008/")
    );

    // The same address: nothing.
    let reports = env.json(&["check", "--json"]);
    assert_eq!(reports[0]["changed"], false);
    assert_eq!(env.smtp.messages().len(), 2);

    // A new address: one email each, with the new URL in the QR code.
    env.set("81.2.69.161");
    let out = env.ok(&["check"]);
    assert!(out.contains("changed to 81.2.69.161"), "{out}");
    let messages = env.smtp.messages();
    assert_eq!(messages.len(), 4);
    for m in &messages[2..] {
        assert_eq!(qr_of(&m.data), "http://81.2.69.161:8008/");
    }

    // A test: sent to everyone, current address unchanged.
    let dry = env.ok(&["test", "--ip", "81.2.69.200"]);
    assert!(
        dry.contains("would send http://81.2.69.200:8008/ to 2 recipient(s)"),
        "{dry}"
    );
    assert_eq!(
        env.smtp.messages().len(),
        4,
        "without --force nothing is sent"
    );
    let out = env.ok(&["test", "--force", "--ip", "81.2.69.200"]);
    assert!(out.contains("2 sent, 0 failed"), "{out}");
    assert_eq!(env.smtp.messages().len(), 6);
    let status = env.json(&["status", "--json"]);
    assert_eq!(
        status["current"]["v4"]["address"], "81.2.69.161",
        "{status}"
    );
    assert_eq!(status["deliveries"]["sent"], 6);

    // History: both changes and the test, newest first.
    let history = env.json(&["history", "--json"]);
    let kinds: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["kind"].clone(), c["address"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("test".into(), "81.2.69.200".into()),
            ("change".into(), "81.2.69.161".into()),
            ("change".into(), "81.2.69.160".into())
        ]
    );

    // Preview files.
    let out_dir = env.dir.path().join("preview");
    env.ok(&[
        "preview",
        "--out",
        out_dir.to_str().unwrap(),
        "--ip",
        "81.2.69.161",
    ]);
    for f in ["notice.eml", "notice.html", "qr.png"] {
        assert!(out_dir.join(f).is_file(), "{f}");
    }

    // run, then stop / start from another process, then SIGTERM.
    let mut run = env
        .cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = stdout_reader(run.stderr.take().unwrap());
    let pid = run.id();
    wait_until("run to take the lease", Duration::from_secs(20), || {
        let s = env.json(&["status", "--json"]);
        s["state"] == "running" && s["leader"]["pid"] == pid
    });
    assert!(
        matches!(env.run(&["check"]).status.code(), Some(1)),
        "check refuses while run holds the lease"
    );
    env.ok(&["stop"]);
    wait_until("run to pause", Duration::from_secs(5), || {
        env.json(&["status", "--json"])["state"] == "paused"
    });
    env.ok(&["start"]);
    wait_until("run to resume", Duration::from_secs(5), || {
        env.json(&["status", "--json"])["state"] == "running"
    });
    // While running, a new address reaches staff through the probe.
    env.set("81.2.69.162");
    wait_until(
        "the running monitor to notify",
        Duration::from_secs(20),
        || env.smtp.messages().len() == 8,
    );
    let term = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = run.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "run exits 0 on SIGTERM");
    let logs = logs.join().unwrap();
    let said = format!(
        "recorded the v4 address 81.2.69.162, entry URL http://81.2.69.162:8008/: \
         notice to 2 recipient(s) by email through 127.0.0.1:{}",
        env.smtp.addr.port()
    );
    assert!(
        logs.contains(&said),
        "the log says where the notice went: {logs}"
    );
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["state"], "stopped", "{status}");
    assert!(status["leader"].is_null(), "the lease was released");
}

/// A one-shot check (cron) leaves its outcome for `status`, and `retry` requeues what failed
/// once the cause is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_one_shot_check_and_retry_requeues_the_failed() {
    let env = Env::new().await;
    env.b.set(Behavior::ok("<html>not an address</html>"));
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "a failed check exits 1");
    let status = env.json(&["status", "--json"]);
    assert!(status["last_check"].is_string(), "{status}");
    let error = status["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("v4"), "the check's error is shown: {status}");
    assert!(
        status["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "b" && s["error"].is_string()),
        "each source's answer is shown: {status}"
    );

    env.set("81.2.69.160\n");
    env.smtp.reply_to_rcpt(
        "ana@example.com",
        550,
        "5.1.1 <ana@example.com>: User unknown",
    );
    env.ok(&["check"]);
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["last_error"], Value::Null, "{status}");
    assert_eq!(status["deliveries"]["failed"], 1, "{status}");
    assert_eq!(env.recipients_of_messages(), ["ben@example.com"]);

    env.smtp.forget_rcpt("ana@example.com"); // the mailbox exists now
    let out = env.ok(&["retry"]);
    assert!(out.contains("requeued 1"), "{out}");
    assert_eq!(
        env.recipients_of_messages(),
        ["ana@example.com", "ben@example.com"]
    );
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["deliveries"]["failed"], 0, "{status}");
    assert_eq!(status["deliveries"]["sent"], 2, "{status}");
    let out = env.ok(&["retry"]);
    assert!(out.contains("requeued 0"), "nothing sent twice: {out}");
    assert_eq!(env.smtp.messages().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_have_their_exit_codes() {
    let env = Env::new().await;
    // Sources that disagree: the check fails with exit code 1 and records nothing.
    env.b.set(Behavior::ok("81.2.69.99"));
    let out = env.run(&["check"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("disagree"));
    assert_eq!(
        env.json(&["history", "--json"]).as_array().unwrap().len(),
        0
    );

    // A bad configuration: exit code 2, naming the file and the key.
    let bad = env.dir.path().join("bad.toml");
    std::fs::write(&bad, "interval = \"1h\"\n[sources]\nstrategy = \"vote\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&bad)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("sources.strategy"),
        "{err}"
    );
    let out = Command::new(BIN)
        .arg("--config")
        .arg(Path::new("/nonexistent.toml"))
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Usage errors are 2 as well.
    assert_eq!(
        Command::new(BIN)
            .arg("frobnicate")
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_configuration_file_the_defaults_apply() {
    let dir = tempfile::tempdir().unwrap();
    let bin = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    // Read-only commands never create the store: `status` in the wrong directory says so.
    for command in [&["status", "--json"][..], &["history"]] {
        let out = bin(command);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {err}");
        assert!(err.contains("no configuration file"), "{err}");
        assert!(
            err.contains("next: copy examples/standalone/ip-monitor.example.toml"),
            "what to configure: {err}"
        );
        assert!(
            err.contains("no store at ip-monitor.db") && err.contains("ip-monitor run"),
            "{err}"
        );
        assert!(!dir.path().join("ip-monitor.db").exists(), "{command:?}");
    }
    let out = bin(&["recipients"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no active recipients"),
        "a warning, not an error"
    );
    assert!(!dir.path().join("ip-monitor.db").exists(), "recipients");
    // A one-shot command that acts creates the default SQLite store.
    let out = bin(&["test", "--force", "--ip", "81.2.69.160"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.path().join("ip-monitor.db").is_file(),
        "the default store"
    );
    let out = bin(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smtp_password_is_never_printed() {
    const SECRET: &str = "Tr0ub4dor&3-never-print-me";
    let env = Env::new().await;
    // A relay that offers AUTH after STARTTLS and takes only this password: the password
    // really crosses the wire (base64 in AUTH PLAIN / LOGIN), so a log of the session would
    // show it.
    let relay = SmtpServer::start_starttls_with_auth("monitor", SECRET);
    let text = std::fs::read_to_string(&env.config).unwrap().replace(
        &format!("port = {}\ntls = \"none\"", env.smtp.addr.port()),
        &format!(
            "port = {}\ntls = \"starttls\"\nca_file = \"{}\"\nusername = \"monitor\"\npassword_env = \"IP_MONITOR_SMTP_PASSWORD\"",
            relay.addr.port(),
            ip_monitor_testkit::fixture("ca.pem").display()
        ),
    );
    assert!(text.contains("starttls"), "the relay is configured");
    std::fs::write(&env.config, text).unwrap();
    let forms = [
        SECRET.to_owned(),
        b64(format!("\0monitor\0{SECRET}").as_bytes()),
        b64(SECRET.as_bytes()),
    ];
    let mut printed = String::new();
    let capture = |printed: &mut String, out: Output| {
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
    };
    let with_secret = |args: &[&str]| {
        env.cmd(args)
            .env("IP_MONITOR_SMTP_PASSWORD", SECRET)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap()
    };
    for args in [
        &["--help"][..],
        &["status"],
        &["status", "--json"],
        &["check"],
        &["check", "--json"],
        &["test", "--ip", "81.2.69.200"],
        &["recipients"],
        &["history"],
    ] {
        capture(&mut printed, with_secret(args));
    }
    let mut run = env
        .cmd(&["run"])
        .env("IP_MONITOR_SMTP_PASSWORD", SECRET)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read its output while it runs (trace logging would fill a pipe nobody reads).
    let (stdout, stderr) = (run.stdout.take().unwrap(), run.stderr.take().unwrap());
    let readers = [stdout_reader(stdout), stdout_reader(stderr)];
    std::thread::sleep(Duration::from_secs(2));
    Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(run.wait().unwrap().success());
    for r in readers {
        printed.push_str(&r.join().unwrap());
    }
    // A bad configuration next to the secret.
    let bad = env.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[smtp]\nhost = \"mail.example.com\"\ntls = \"none\"\nusername = \"monitor\"\npassword_env = \"IP_MONITOR_SMTP_PASSWORD\"\n",
    )
    .unwrap();
    capture(
        &mut printed,
        Command::new(BIN)
            .arg("--config")
            .arg(&bad)
            .arg("status")
            .env("IP_MONITOR_SMTP_PASSWORD", SECRET)
            .output()
            .unwrap(),
    );
    assert!(
        printed.contains("trace") || printed.contains("TRACE"),
        "trace logging was on"
    );
    for form in &forms {
        assert!(
            !printed.contains(form.as_str()),
            "the password was printed as {form:?}"
        );
    }
    assert!(
        !relay.authenticated().is_empty() && !relay.messages().is_empty(),
        "the monitor authenticated with the password and delivered"
    );
}

fn stdout_reader(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_file_holds_what_stderr_shows() {
    let env = Env::new().await;
    let out = env
        .cmd(&["--log-file", "logs/server.log", "check"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let file = std::fs::read_to_string(env.dir.path().join("logs/server.log")).unwrap();
    assert!(stderr.contains("notice delivered"), "{stderr}");
    assert_eq!(file, stderr, "the same lines, in the same order");

    // [log] in the file; a second command appends.
    let config = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        format!("{config}\n[log]\nfile = \"server.log\"\nrotate = \"size\"\nmax_size_mb = 1\n"),
    )
    .unwrap();
    env.set("81.2.69.161");
    let out = env
        .cmd(&["check"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let file = std::fs::read_to_string(env.dir.path().join("server.log")).unwrap();
    assert!(file.contains("notice delivered"), "{file}");

    // A bad setting names its key.
    std::fs::write(
        &env.config,
        format!("{config}\n[log]\nfile = \"server.log\"\nrotate = \"hourly\"\n"),
    )
    .unwrap();
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("log.rotate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_who_join_later_get_the_current_url_once() {
    let env = Env::new().await;
    env.ok(&["check"]);
    assert_eq!(
        env.recipients_of_messages(),
        ["ana@example.com", "ben@example.com"]
    );
    // A new member, and a locked one unlocked: both became active after the notice.
    let db = format!("sqlite://{}", env.dir.path().join("app.db").display());
    ip_monitor_testkit::sql::exec(
        &db,
        "INSERT INTO staff (email, name) VALUES ('cy@example.com', 'Cy');
         UPDATE staff SET is_lock = false WHERE email = 'locked@example.com';",
    );
    let out = env.ok(&["check"]);
    assert!(out.contains("unchanged"), "{out}");
    assert_eq!(
        env.recipients_of_messages(),
        [
            "ana@example.com",
            "ben@example.com",
            "cy@example.com",
            "locked@example.com"
        ],
        "the two who became active get it, nobody else again"
    );
    for m in &env.smtp.messages()[2..] {
        assert_eq!(qr_of(&m.data), "http://81.2.69.160:8008/");
    }
    // Once: the next check sends nothing.
    env.ok(&["check"]);
    assert_eq!(env.smtp.messages().len(), 4);
    let history = env.json(&["history", "--json"]);
    assert_eq!(history[0]["deliveries"], 4, "{history}");

    // Turned off: a newcomer waits for the next change.
    let config = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        format!("notify_new_recipients = false\n{config}"),
    )
    .unwrap();
    ip_monitor_testkit::sql::exec(
        &db,
        "INSERT INTO staff (email, name) VALUES ('dee@example.com', 'Dee');",
    );
    env.ok(&["check"]);
    assert_eq!(env.smtp.messages().len(), 4);
}
