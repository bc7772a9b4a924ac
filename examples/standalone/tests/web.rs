//! `[server]`: the binary's status page, health check and Prometheus metrics, as an operator
//! and a scraper use them — `ip-monitor run` with loopback IP sources, a real SMTP server, an
//! SQLite store (and PostgreSQL behind a proxy the test cuts), the page in headless Chromium.

#[allow(dead_code)] // the helpers of the other process-level tests
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ip_monitor_testkit::client::{Reply, request};
use ip_monitor_testkit::smtp::SmtpServer;
use ip_monitor_testkit::{Behavior, HttpServer};

const BIN: &str = env!("CARGO_BIN_EXE_ip-monitor");
const TOKEN: &str = "a-token-for-the-tests-0123";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ip-monitor run`, killed when dropped.
struct Running {
    child: Child,
    port: u16,
    dir: PathBuf,
    config: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(dir: &Path, store_url: &str, sources: &[&HttpServer], smtp: &SmtpServer) -> Self {
        Self::start_with(dir, store_url, sources, smtp, "", "")
    }

    /// As [`Running::start`], with `list` added to the sources and `server` to the
    /// `[server]` table.
    fn start_with(
        dir: &Path,
        store_url: &str,
        sources: &[&HttpServer],
        smtp: &SmtpServer,
        list: &str,
        server: &str,
    ) -> Self {
        let port = free_port();
        let mut list = list.to_owned();
        for (i, s) in sources.iter().enumerate() {
            list.push_str(&format!(
                "[[sources.list]]\nkind = \"http\"\nname = \"src-{i}\"\nurl = \"{}\"\n",
                s.url()
            ));
        }
        let config = dir.join("ip-monitor.toml");
        std::fs::write(
            &config,
            format!(
                "interval = \"1h\"\nprobe_interval = \"1h\"\ncontrol_poll = \"200ms\"\n\
                 heartbeat = \"300ms\"\nservice_url = \"http://{{ip}}:8008/\"\n\
                 [sources]\ntimeout = \"2s\"\n{list}\
                 [store]\nurl = \"{store_url}\"\n\
                 [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
                 from = \"IP Monitor <noreply@example.com>\"\n\
                 [server]\nlisten = \"127.0.0.1:{port}\"\ntoken_env = \"IP_MONITOR_WEB_TOKEN\"\n{server}",
                smtp.addr.port()
            ),
        )
        .unwrap();
        let child = Command::new(BIN)
            .current_dir(dir)
            .env("IP_MONITOR_WEB_TOKEN", TOKEN)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let running = Running {
            child,
            port,
            dir: dir.to_owned(),
            config,
        };
        running.wait_for("the server to come up", |r| r.is_some());
        running
    }

    fn get(&self, path: &str) -> Option<Reply> {
        request(self.port, "GET", path, &[], b"").ok()
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        request(self.port, "POST", path, headers, body).unwrap()
    }

    fn wait_for(&self, what: &str, mut f: impl FnMut(Option<Reply>) -> bool) {
        let start = Instant::now();
        while !f(self.get("/healthz")) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .current_dir(&self.dir)
            .env("IP_MONITOR_WEB_TOKEN", TOKEN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The metrics, parsed by a Prometheus text-format parser: every sample line must parse.
    fn metrics(&self) -> Metrics {
        let reply = self.get("/metrics").expect("/metrics answers");
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
            "{:?}",
            reply.headers
        );
        let text = reply.text();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let scrape = prometheus_parse::Scrape::parse(lines.clone().into_iter().map(Ok))
            .expect("the Prometheus text format");
        let samples = lines
            .iter()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(
            scrape.samples.len(),
            samples,
            "every sample line parses:\n{text}"
        );
        for l in lines.iter().filter(|l| l.starts_with("# TYPE")) {
            assert!(l.ends_with(" counter") || l.ends_with(" gauge"), "{l}");
        }
        Metrics(scrape, text)
    }
}

struct Metrics(prometheus_parse::Scrape, String);

impl Metrics {
    /// The value of `name` with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: HashMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.0
            .samples
            .iter()
            .find(|s| s.metric == name && *s.labels == want)
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{}", self.1))
    }
}

fn staff_db(dir: &Path) -> String {
    let db = format!("sqlite://{}", dir.join("app.db").display());
    common::setup_staff(&db, 2, true);
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let db = staff_db(dir.path());
    let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let b = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let smtp = SmtpServer::start();
    let mon = Running::start(dir.path(), &db, &[&a, &b], &smtp);

    // The first check records the address and tells the two active staff members.
    smtp.wait_for(2, Duration::from_secs(30));
    mon.wait_for("the leader's health", |r| {
        r.is_some_and(|r| r.status == 200 && r.text() == "ok: leader\n")
    });
    let start = Instant::now();
    let m = loop {
        let m = mon.metrics();
        if m.value("ip_monitor_deliveries", &[("state", "sent")]) == Some(2.0)
            && m.value("ip_monitor_deliveries_sent_total", &[]) == Some(2.0)
        {
            break m;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", m.1);
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(m.get("ip_monitor_up", &[]), 1.0);
    assert_eq!(m.get("ip_monitor_leader", &[]), 1.0);
    assert_eq!(m.get("ip_monitor_store_up", &[]), 1.0);
    assert_eq!(m.get("ip_monitor_changes_total", &[("family", "v4")]), 1.0);
    assert_eq!(m.get("ip_monitor_deliveries", &[("state", "pending")]), 0.0);
    for source in ["src-0", "src-1"] {
        assert_eq!(
            m.get(
                "ip_monitor_source_requests_total",
                &[("source", source), ("result", "ok")]
            ),
            1.0
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = m.get("ip_monitor_last_check_timestamp_seconds", &[]);
    assert!((now - 60.0..=now + 1.0).contains(&last), "{last} vs {now}");
    assert_eq!(
        m.get(
            "ip_monitor_address_info",
            &[("family", "v4"), ("address", "81.2.69.160")]
        ),
        1.0
    );

    // The page: the address, its entry URL and QR code, the sources, the history.
    let page = mon.get("/").unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text();
    for needle in [
        "81.2.69.160",
        "href=\"http://81.2.69.160:8008/\"",
        "<svg class=\"qr\"",
        "src-0",
        "src-1",
        "<form method=\"post\" action=\"check\">",
        "<form method=\"post\" action=\"test\">",
    ] {
        assert!(html.contains(needle), "{needle} missing from the page");
    }
    assert!(!html.contains("<script"), "no script on the page");
    assert_eq!(mon.get("/nowhere").unwrap().status, 404);
    assert_eq!(mon.post("/", &[], b"").status, 405);
    assert_eq!(mon.get("/check").unwrap().status, 405);

    // The actions need the token, by header or form field.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(mon.post("/check", &[], b"").status, 401);
    assert_eq!(mon.post("/check", &form, b"token=wrong").status, 401);
    let auth = format!("Bearer {TOKEN}");
    let checked = mon.post("/check", &[("Authorization", &auth)], b"");
    assert_eq!(checked.status, 200, "{}", checked.text());
    assert!(checked.text().contains("unchanged"), "{}", checked.text());
    assert_eq!(
        smtp.messages().len(),
        2,
        "a check of the same address sends nothing"
    );

    a.set(Behavior::ok("81.2.69.161\n"));
    b.set(Behavior::ok("81.2.69.161\n"));
    let checked = mon.post("/check", &[("Authorization", &auth)], b"");
    assert!(
        checked.text().contains("81.2.69.161 recorded"),
        "{}",
        checked.text()
    );
    smtp.wait_for(4, Duration::from_secs(30));

    let body = format!("token={TOKEN}");
    let tested = mon.post("/test", &form, body.as_bytes());
    assert_eq!(tested.status, 200, "{}", tested.text());
    assert!(tested.text().contains("test notice #"), "{}", tested.text());
    let messages = smtp.wait_for(6, Duration::from_secs(30));
    assert!(
        messages[4..]
            .iter()
            .all(|m| String::from_utf8_lossy(&m.data).contains("81.2.69.161")),
        "the test notice carries the current address"
    );
    let m = mon.metrics();
    assert_eq!(m.get("ip_monitor_changes_total", &[("family", "v4")]), 2.0);
    assert_eq!(m.get("ip_monitor_tests_total", &[]), 1.0);
    assert_eq!(m.get("ip_monitor_checks_total", &[]), 3.0);

    // Paused by the operator: not healthy, and the test action is refused.
    mon.cli(&["stop"]);
    mon.wait_for("paused health", |r| {
        r.is_some_and(|r| r.status == 503 && r.text() == "paused\n")
    });
    assert_eq!(mon.metrics().get("ip_monitor_up", &[]), 0.0);
    let refused = mon.post("/test", &form, body.as_bytes());
    assert_eq!(refused.status, 409, "{}", refused.text());
    mon.cli(&["start"]);
    mon.wait_for("health after start", |r| r.is_some_and(|r| r.status == 200));
}

/// Two instances on one store: the standby says so, and its page shows the leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_is_healthy_and_names_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let db = staff_db(dir.path());
    let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let smtp = SmtpServer::start();
    let leader = Running::start(dir.path(), &db, &[&a], &smtp);
    leader.wait_for("a leader", |r| {
        r.is_some_and(|r| r.text() == "ok: leader\n")
    });
    let standby = Running::start(other.path(), &db, &[&a], &smtp);
    standby.wait_for("a standby", |r| {
        r.is_some_and(|r| r.status == 200 && r.text() == "ok: standby\n")
    });
    assert_eq!(standby.metrics().get("ip_monitor_leader", &[]), 0.0);
    let html = standby.get("/").unwrap().text();
    assert!(
        html.contains(&format!("(pid {})", leader.child.id())),
        "{html}"
    );
    let refused = standby.post(
        "/check",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    );
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(refused.text().contains("does not hold the lease"));
}

/// The store behind a proxy the test cuts: health turns 503 within the store timeout, and
/// back to 200 when the database is reachable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "needs IP_MONITOR_TEST_PG_URL: run bash scripts/test.sh"
)]
async fn health_says_when_the_store_is_unreachable() {
    let db = ip_monitor_testkit::pg::fresh_database();
    common::setup_staff(&db, 1, false);
    let (server, name) = db.rsplit_once('/').unwrap();
    let upstream: std::net::SocketAddr = server.rsplit_once('@').unwrap().1.parse().unwrap();
    let proxy = ip_monitor_testkit::TcpProxy::start(upstream).await;
    let through = format!("postgres://postgres@{}/{name}", proxy.addr);
    let dir = tempfile::tempdir().unwrap();
    let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let smtp = SmtpServer::start();
    let mon = Running::start(dir.path(), &through, &[&a], &smtp);
    mon.wait_for("the leader", |r| r.is_some_and(|r| r.status == 200));
    smtp.wait_for(1, Duration::from_secs(30));

    proxy.cut();
    mon.wait_for("unreachable", |r| {
        r.is_some_and(|r| r.status == 503 && r.text().starts_with("store unreachable"))
    });
    assert_eq!(mon.metrics().get("ip_monitor_store_up", &[]), 0.0);
    let page = mon.get("/").unwrap();
    assert_eq!(page.status, 503);
    assert!(page.text().contains("The store does not answer"));

    proxy.restore();
    mon.wait_for("reachable again", |r| r.is_some_and(|r| r.status == 200));
}

/// The page as a browser shows it: it renders, and the QR code on the screen decodes to the
/// entry URL. The screenshot is written to `target/status-page.png` (the one in
/// `docs/img/` comes from here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(browser_tests),
    ignore = "needs Chromium: install it (scripts/setup.sh) or set IP_MONITOR_CHROMIUM"
)]
async fn the_page_in_a_browser() {
    let browser = ip_monitor_testkit::browser::find().expect("Chromium");
    let dir = tempfile::tempdir().unwrap();
    let db = staff_db(dir.path());
    let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let b = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let smtp = SmtpServer::start();
    let mon = Running::start(dir.path(), &db, &[&a, &b], &smtp);
    smtp.wait_for(2, Duration::from_secs(30));
    mon.wait_for("sent", |_| {
        mon.metrics()
            .value("ip_monitor_deliveries", &[("state", "sent")])
            == Some(2.0)
    });
    let url = format!("http://127.0.0.1:{}/", mon.port);

    let dom = ip_monitor_testkit::browser::dump_dom(&browser, &url);
    assert!(dom.contains("81.2.69.160"), "{dom}");
    assert!(dom.contains("Check now") && dom.contains("Send a test notice"));

    let png = ip_monitor_testkit::browser::screenshot(&browser, &url, 1024, 1400);
    let shot = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/status-page.png");
    std::fs::write(shot, &png).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    assert_eq!((img.width(), img.height()), (1024, 1400));
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the page");
    assert_eq!(grids[0].decode().unwrap().1, "http://81.2.69.160:8008/");
}

/// Every answer forbids framing, sniffing and scripts from elsewhere; a request whose `Host`
/// is a name the server was not given (a DNS rebinding page) is refused, and learns nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_security_headers_and_other_hosts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = staff_db(dir.path());
    let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let smtp = SmtpServer::start();
    let mon = Running::start_with(
        dir.path(),
        &db,
        &[&a],
        &smtp,
        "",
        "hosts = [\"monitor.corp.example\"]\n",
    );
    smtp.wait_for(2, Duration::from_secs(30));
    let check = |what: &str, r: &Reply| {
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        let csp = r.header("content-security-policy").unwrap_or_default();
        for part in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(part), "{what}: {csp}");
        }
        assert!(!csp.contains("script-src"), "{what}: {csp}");
    };
    for path in ["/", "/healthz", "/status", "/metrics", "/nowhere"] {
        check(path, &mon.get(path).expect(path));
    }
    check(
        "POST /check",
        &mon.post("/check", &[("Authorization", "Bearer wrong")], b""),
    );

    let port = mon.port.to_string();
    for host in ["attacker.example", &format!("attacker.example:{port}")] {
        let r = request(mon.port, "GET", "/status", &[("Host", host)], b"").unwrap();
        assert_eq!(r.status, 421, "{host}");
        assert!(!r.text().contains("81.2.69.160"), "{}", r.text());
        check(host, &r);
    }
    for host in [
        format!("localhost:{port}"),
        format!("monitor.corp.example:{port}"),
        format!("[::1]:{port}"),
        "127.0.0.1".to_owned(),
    ] {
        let r = request(mon.port, "GET", "/status", &[("Host", &host)], b"").unwrap();
        assert_eq!(r.status, 200, "{host}");
    }
}

/// A client that dribbles a request body is cut off at the request deadline; connections
/// past `max_connections` are closed at once, and idle ones are reclaimed, so the page comes
/// back without the flood ending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_and_connection_floods_are_bounded() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let dir = tempfile::tempdir().unwrap();
    let db = staff_db(dir.path());
    let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let smtp = SmtpServer::start();
    let mon = Running::start_with(
        dir.path(),
        &db,
        &[&a],
        &smtp,
        "",
        "request_timeout = \"3s\"\nmax_connections = 8\n",
    );
    smtp.wait_for(2, Duration::from_secs(30));

    // A body announced as 16000 bytes, sent a byte every 200 ms: without a deadline on the
    // whole request this runs for over an hour.
    let mut slow = TcpStream::connect(("127.0.0.1", mon.port)).unwrap();
    slow.write_all(
        b"POST /check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16000\r\n\r\nt",
    )
    .unwrap();
    let mut dribble = slow.try_clone().unwrap();
    std::thread::spawn(move || {
        while dribble.write_all(b"o").is_ok() {
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    let read = slow.read_to_end(&mut answer);
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the server closed the connection: {read:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // Eight idle connections fill the server; the ninth is closed unanswered.
    let idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(("127.0.0.1", mon.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(mon.get("/healthz").is_none(), "past max_connections");
    // Idle connections end at the request deadline: the page answers again.
    std::thread::sleep(Duration::from_millis(4500));
    let r = mon
        .get("/healthz")
        .expect("the flood's idle connections were closed");
    assert_eq!(r.status, 200);
    drop(idle);
}

/// Without the token the page and `/status` show an error's class only: no staff address
/// from a relay's reply, no source URL with its credentials. With the token the text shows,
/// the addresses and credentials masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_no_staff_and_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let db = staff_db(dir.path());
    let a = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let b = HttpServer::start("127.0.0.1:0", Behavior::ok("81.2.69.160\n")).await;
    let smtp = SmtpServer::start();
    smtp.reply_to_mail(Some((
        450,
        "4.2.0 <private.person@example.com>: Recipient address rejected: try later",
    )));
    // A third source whose URL carries a secret, on a port nobody listens on.
    let dead = format!(
        "[[sources.list]]\nkind = \"http\"\nname = \"dead\"\n\
         url = \"http://127.0.0.1:{}/ip?token=source-s3cret-value\"\n",
        free_port()
    );
    let mon = Running::start_with(dir.path(), &db, &[&a, &b], &smtp, &dead, "");
    let port = mon.port;
    let bearer = format!("Bearer {TOKEN}");
    let start = Instant::now();
    let operator = loop {
        let r = request(port, "GET", "/status", &[("Authorization", &bearer)], b"");
        if let Ok(r) = r
            && r.status == 200
        {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            let dead_error = v["sources"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == "dead"))
                .map(|s| s["error"].clone());
            if v["delivery_error"].is_string() && dead_error.is_some_and(|e| e.is_string()) {
                break r.text();
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no errors shown");
        std::thread::sleep(Duration::from_millis(100));
    };
    let public = request(port, "GET", "/status", &[], b"").unwrap().text();
    let page = request(port, "GET", "/", &[], b"").unwrap().text();
    drop(mon);
    for (who, text) in [
        ("public", &public),
        ("page", &page),
        ("operator", &operator),
    ] {
        assert!(!text.contains("private.person"), "{who}: {text}");
        assert!(!text.contains("source-s3cret-value"), "{who}: {text}");
    }
    assert!(public.contains("450 4.2.0"), "the class shows: {public}");
    assert!(!public.contains("Recipient address rejected"), "{public}");
    assert!(
        operator.contains("…@example.com>: Recipient address rejected"),
        "{operator}"
    );
}
