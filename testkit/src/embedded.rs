use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use serde_json::Value;

use crate::{Behavior, HttpServer};

/// The token the examples are started with.
const TOKEN: &str = "a-token-for-the-example-tests";

/// One HTTP/1.1 request; the status code and the body.
pub fn http(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let reply = crate::client::request(port, method, path, &[], b"")?;
    Ok((reply.status, reply.text()))
}

#[derive(QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
}

/// The whole check, for the example binary at `bin`.
pub async fn check_example(bin: &str) {
    let dir = std::env::temp_dir().join(format!("ip-monitor-example-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("app.db");
    crate::sql::exec(
        &format!("sqlite://{}", db.display()),
            "CREATE TABLE staff (email TEXT, name TEXT, is_delete BOOLEAN NOT NULL DEFAULT false,
                 is_lock BOOLEAN NOT NULL DEFAULT false);
             INSERT INTO staff (email, name) VALUES ('ana@example.com', 'Ana'), ('ben@example.com', NULL);
             INSERT INTO staff (email, name, is_lock) VALUES ('locked@example.com', 'L', true);",
    );
    let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160")).await;
    let b = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160")).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(bin)
        .env("APP_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("APP_BIND", format!("127.0.0.1:{port}"))
        .env("IP_MONITOR_SOURCES", format!("{},{}", a.url(), b.url()))
        .env("IP_MONITOR_OUTBOX", dir.join("outbox"))
        .env("IP_MONITOR_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let start = Instant::now();
    let status = loop {
        if let Ok((200, body)) = http(port, "GET", "/ip-monitor/status") {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the server did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let status: Value = serde_json::from_str(&status).unwrap();
    assert!(
        matches!(status["state"].as_str(), Some("running" | "never-started")),
        "the store's report: {status}"
    );

    let (code, _) = http(port, "POST", "/ip-monitor/check").unwrap();
    assert_eq!(code, 401, "the check needs the token");
    let auth = format!("Bearer {TOKEN}");
    let json = [
        ("Authorization", auth.as_str()),
        ("Accept", "application/json"),
    ];
    let reply = crate::client::request(port, "POST", "/ip-monitor/check", &json, b"").unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reports: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(reports[0]["address"], "81.2.69.160", "{reports}");

    let start = Instant::now();
    loop {
        let (_, body) = http(port, "GET", "/ip-monitor/status").unwrap();
        let status: Value = serde_json::from_str(&body).unwrap();
        if status["deliveries"]["sent"] == 2 {
            assert_eq!(status["state"], "running", "{status}");
            assert_eq!(status["leader"]["pid"], child.id(), "{status}");
            assert_eq!(status["current"]["v4"]["address"], "81.2.69.160");
            assert_eq!(status["instances"][0]["leader"], true);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "deliveries did not finish: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let emails = std::fs::read_dir(dir.join("outbox")).unwrap().count();
    assert_eq!(emails, 2, "one message per active staff member");

    assert_eq!(
        http(port, "GET", "/ip-monitor/healthz").unwrap(),
        (200, "ok: leader\n".to_owned())
    );
    let (code, metrics) = http(port, "GET", "/ip-monitor/metrics").unwrap();
    assert_eq!(code, 200);
    for line in [
        "ip_monitor_leader 1",
        "ip_monitor_changes_total{family=\"v4\"} 1",
        "ip_monitor_deliveries{state=\"sent\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    let (code, page) = http(port, "GET", "/ip-monitor/").unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("http://81.2.69.160") && page.contains("<svg class=\"qr\""));
    let moved = crate::client::request(port, "GET", "/ip-monitor", &[], b"").unwrap();
    assert_eq!(moved.status, 308);
    assert_eq!(moved.header("location"), Some("/ip-monitor/"));

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no graceful exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let rows: Vec<StatusRow> = diesel::sql_query("SELECT status FROM ip_monitor_instances")
        .load(&mut SqliteConnection::establish(db.to_str().unwrap()).unwrap())
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row: Value = serde_json::from_str(&rows[0].status).unwrap();
    assert_eq!(
        row["state"], "stopped",
        "the store records the shutdown: {row}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
