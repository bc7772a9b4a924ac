//! Real servers on loopback for ip-monitor's tests and benchmarks: a small HTTP/1.1 server
//! whose behaviour the test sets, and a UDP DNS server. Everything binds to loopback only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server that judges each request: given its head (request line and headers) and body,
/// the status and the body of the answer.
pub type Judge = Arc<dyn Fn(&str, &[u8]) -> (u16, String) + Send + Sync>;

/// What the HTTP server does with each request.
#[derive(Clone)]
pub enum Behavior {
    /// Answer what the judge says (a platform that checks the request, its signature).
    Judge(Judge),
    /// Answer `status` with `body` after `delay`.
    Respond {
        /// HTTP status.
        status: u16,
        /// Body.
        body: Vec<u8>,
        /// Wait before answering.
        delay: Duration,
    },
    /// Send headers announcing `len` bytes, then one byte per `every`.
    Drip {
        /// Announced length.
        len: usize,
        /// Pause per byte.
        every: Duration,
    },
    /// Accept the connection and never answer.
    BlackHole,
    /// Stream `len` bytes without a Content-Length, then close.
    Stream {
        /// Bytes to send.
        len: usize,
    },
    /// Redirect (302) to `location`.
    Redirect {
        /// Where to.
        location: String,
    },
}

impl std::fmt::Debug for Behavior {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Behavior::Judge(_) => f.write_str("Judge"),
            Behavior::Respond { status, delay, .. } => {
                write!(f, "Respond({status}, after {delay:?})")
            }
            Behavior::Drip { len, every } => write!(f, "Drip({len} every {every:?})"),
            Behavior::BlackHole => f.write_str("BlackHole"),
            Behavior::Stream { len } => write!(f, "Stream({len})"),
            Behavior::Redirect { location } => write!(f, "Redirect({location})"),
        }
    }
}

impl Behavior {
    /// 200 with `body`, at once.
    pub fn ok(body: &str) -> Self {
        Behavior::Respond {
            status: 200,
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    /// 200 with `body` after `delay`.
    pub fn ok_after(body: &str, delay: Duration) -> Self {
        Behavior::Respond {
            status: 200,
            body: body.as_bytes().to_vec(),
            delay,
        }
    }
}

/// A running HTTP server; it lives as long as the runtime it was started on.
#[derive(Debug, Clone)]
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    behavior: Arc<Mutex<Behavior>>,
    hits: Arc<AtomicUsize>,
    user_agents: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl HttpServer {
    /// Start on `bind` (e.g. "127.0.0.1:0" or "[::1]:0").
    pub async fn start(bind: &str, behavior: Behavior) -> Self {
        let listener = TcpListener::bind(bind).await.expect("bind loopback");
        let server = HttpServer {
            addr: listener.local_addr().unwrap(),
            behavior: Arc::new(Mutex::new(behavior)),
            hits: Arc::new(AtomicUsize::new(0)),
            user_agents: Arc::new(Mutex::new(Vec::new())),
            bodies: Arc::new(Mutex::new(Vec::new())),
            heads: Arc::new(Mutex::new(Vec::new())),
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move { s.serve(stream).await });
            }
        });
        server
    }

    /// `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Change what it does from the next request on.
    pub fn set(&self, behavior: Behavior) {
        *self.behavior.lock().unwrap() = behavior;
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The body of each request so far (by Content-Length).
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().unwrap().clone()
    }

    /// The head (request line and headers) of each request so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// The User-Agent of each request so far.
    pub fn user_agents(&self) -> Vec<String> {
        self.user_agents.lock().unwrap().clone()
    }

    async fn serve(&self, mut stream: TcpStream) {
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
            if request.len() > 64 * 1024 {
                return;
            }
        }
        let split = request
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(0)
            + 4;
        let text = String::from_utf8_lossy(&request[..split]).to_string();
        let length: usize = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0)
            .min(1 << 20);
        let mut body = request[split..].to_vec();
        while body.len() < length {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
            }
        }
        self.bodies.lock().unwrap().push(body.clone());
        self.heads.lock().unwrap().push(text.clone());
        self.hits.fetch_add(1, Ordering::SeqCst);
        if let Some(ua) = text.lines().find_map(|l| {
            l.strip_prefix("user-agent: ")
                .or_else(|| l.strip_prefix("User-Agent: "))
        }) {
            self.user_agents.lock().unwrap().push(ua.to_owned());
        }
        let behavior = self.behavior.lock().unwrap().clone();
        match behavior {
            Behavior::Judge(judge) => {
                let (status, answer) = judge(&text, &body);
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    answer.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(answer.as_bytes()).await;
            }
            Behavior::Respond {
                status,
                body,
                delay,
            } => {
                tokio::time::sleep(delay).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            }
            Behavior::Drip { len, every } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes()).await;
                for _ in 0..len {
                    tokio::time::sleep(every).await;
                    if stream.write_all(b"1").await.is_err() {
                        return;
                    }
                }
            }
            Behavior::BlackHole => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Behavior::Redirect { location } => {
                let head = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes()).await;
            }
            Behavior::Stream { len } => {
                let head =
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
                let _ = stream.write_all(head.as_bytes()).await;
                let chunk = vec![b'1'; 64 * 1024];
                let mut sent = 0;
                while sent < len {
                    let n = chunk.len().min(len - sent);
                    if stream.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    sent += n;
                }
            }
        }
        let _ = stream.shutdown().await;
    }
}

/// A TLS front on 127.0.0.1 before the TCP server at `backend`, with the test certificate
/// (`fixtures/cert.pem` for localhost and 127.0.0.1, signed by `fixtures/ca.pem`); returns
/// its address. Runs on the current tokio runtime.
#[cfg(feature = "tls")]
pub async fn tls_front(backend: SocketAddr) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("cert.pem"))
        .expect("read the test certificate")
        .collect::<Result<_, _>>()
        .expect("parse the test certificate");
    let key = PrivateKeyDer::from_pem_file(fixture("key.pem")).expect("read the test key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("a server TLS configuration");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let front = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    front
}

/// A file of test TLS material in `testkit/fixtures` (see its README).
pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A port on 127.0.0.1 with nothing listening.
pub async fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// A DNS server on loopback UDP that answers every question with `answer(query)`.
pub mod dns {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use hickory_proto::op::{Message, MessageType, Query};
    use tokio::net::UdpSocket;

    /// What the server answers: a full response message for a request (id and question are
    /// copied in), or raw bytes.
    #[derive(Debug)]
    pub enum Reply {
        /// This message, with the request's id and question.
        Message(Message),
        /// These bytes as they are.
        Raw(Vec<u8>),
        /// No answer.
        Silence,
    }

    /// A running DNS server.
    #[derive(Debug)]
    pub struct DnsServer {
        /// Where it listens.
        pub addr: SocketAddr,
        /// Every question received, in order.
        pub queries: Arc<Mutex<Vec<Query>>>,
    }

    impl DnsServer {
        /// Start on `bind` (e.g. "127.0.0.1:0").
        pub async fn start<F>(bind: &str, answer: F) -> Self
        where
            F: Fn(&Query) -> Reply + Send + Sync + 'static,
        {
            let socket = UdpSocket::bind(bind).await.unwrap();
            let addr = socket.local_addr().unwrap();
            let queries = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::clone(&queries);
            tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                loop {
                    let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                        return;
                    };
                    let Ok(request) = Message::from_vec(&buf[..n]) else {
                        continue;
                    };
                    let Some(query) = request.queries.first().cloned() else {
                        continue;
                    };
                    seen.lock().unwrap().push(query.clone());
                    let bytes = match answer(&query) {
                        Reply::Message(mut m) => {
                            m.metadata.id = request.metadata.id;
                            m.metadata.message_type = MessageType::Response;
                            m.metadata.op_code = request.metadata.op_code;
                            m.queries = vec![query];
                            m.to_vec().unwrap()
                        }
                        Reply::Raw(raw) => raw,
                        Reply::Silence => continue,
                    };
                    let _ = socket.send_to(&bytes, peer).await;
                }
            });
            DnsServer { addr, queries }
        }
    }
}

/// The workspace README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// docs/custom-traits.md's examples, compiled and run against loopback servers.
#[cfg(doctest)]
#[doc = include_str!("../../docs/custom-traits.md")]
struct CustomTraitsDoctests;

/// Databases on the throwaway PostgreSQL server that `scripts/with-postgres.sh` starts.
#[cfg(feature = "postgres")]
pub mod pg {
    use diesel::{Connection, PgConnection, RunQueryDsl};

    /// The environment variable holding the server's URL.
    pub const URL_VAR: &str = "IP_MONITOR_TEST_PG_URL";

    /// The server's URL, if one was started.
    pub fn server_url() -> Option<String> {
        std::env::var(URL_VAR).ok().filter(|u| !u.is_empty())
    }

    /// Create an empty database on the server and return its URL. Panics without a server.
    pub fn fresh_database() -> String {
        let url = server_url()
            .unwrap_or_else(|| panic!("{URL_VAR} is not set: run bash scripts/test.sh"));
        let name = format!("ip_monitor_test_{:016x}", fastrand::u64(..));
        let mut conn = PgConnection::establish(&url).expect("connect to the test PostgreSQL");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("create a test database");
        let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
        format!("{base}/{name}")
    }
}

/// A real SMTP server on 127.0.0.1 (mailin-embedded, on its own threads) that keeps every
/// message, and answers chosen recipients with a chosen reply.
#[cfg(feature = "smtp")]
pub mod smtp {
    use std::collections::HashMap;
    use std::io::{Read, Write};
    use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use mailin_embedded::{Handler, Response, Server};

    /// One accepted message.
    #[derive(Debug, Clone, Default)]
    pub struct Received {
        /// MAIL FROM.
        pub from: String,
        /// RCPT TO, in order.
        pub to: Vec<String>,
        /// The message as sent after DATA.
        pub data: Vec<u8>,
    }

    #[derive(Debug, Default)]
    struct Shared {
        messages: Vec<Received>,
        rules: HashMap<String, (u16, String)>,
        /// The reply to every MAIL FROM, when set.
        mail_rule: Option<(u16, String)>,
        /// The only credentials AUTH accepts, when AUTH is offered.
        credentials: Option<(String, String)>,
        /// The user names that authenticated, one per successful AUTH.
        authenticated: Vec<String>,
        delay: Duration,
        /// Client writes that carried MAIL FROM, RCPT TO and DATA together (pipelined).
        pipelined: usize,
    }

    #[derive(Clone)]
    struct Conn {
        shared: Arc<Mutex<Shared>>,
        current: Received,
    }

    impl Handler for Conn {
        fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
            if let Some((code, text)) = self.shared.lock().unwrap().mail_rule.clone() {
                return Response::custom(code, text);
            }
            self.current = Received {
                from: from.to_owned(),
                ..Default::default()
            };
            mailin_embedded::response::OK
        }

        fn rcpt(&mut self, to: &str) -> Response {
            let rule = self
                .shared
                .lock()
                .unwrap()
                .rules
                .get(&to.to_ascii_lowercase())
                .cloned();
            if let Some((code, text)) = rule {
                return Response::custom(code, text);
            }
            self.current.to.push(to.to_owned());
            mailin_embedded::response::OK
        }

        fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
            self.auth_login(user, password)
        }

        fn auth_login(&mut self, user: &str, password: &str) -> Response {
            let mut shared = self.shared.lock().unwrap();
            let ok = shared
                .credentials
                .as_ref()
                .is_some_and(|(u, p)| u == user && p == password);
            if ok {
                shared.authenticated.push(user.to_owned());
                mailin_embedded::response::AUTH_OK
            } else {
                mailin_embedded::response::INVALID_CREDENTIALS
            }
        }

        fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
            self.current.data.extend_from_slice(buf);
            Ok(())
        }

        fn data_end(&mut self) -> Response {
            let delay = self.shared.lock().unwrap().delay;
            std::thread::sleep(delay);
            let message = std::mem::take(&mut self.current);
            self.shared.lock().unwrap().messages.push(message);
            mailin_embedded::response::OK
        }
    }

    /// Relay one connection between a client and the mailin server: add PIPELINING to the
    /// server's EHLO reply when `pipelining` (mailin does not offer it, though it reads
    /// pipelined commands in order), and count the client's pipelined writes (the whole
    /// envelope and DATA in one).
    fn front_connection(
        client: TcpStream,
        server: TcpStream,
        pipelining: bool,
        shared: Arc<Mutex<Shared>>,
    ) {
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (mut client_in, mut server_out) =
            (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n) = client_in.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = String::from_utf8_lossy(&buf[..n]).to_ascii_uppercase();
                if chunk.contains("MAIL FROM")
                    && chunk.contains("RCPT TO")
                    && chunk.contains("\r\nDATA\r\n")
                {
                    shared.lock().unwrap().pipelined += 1;
                }
                if server_out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = server_out.shutdown(Shutdown::Write);
        });
        let (mut server_in, mut client_out) = (server, client);
        std::thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            // Replies go through line by line until the session turns to TLS (the second
            // 220: the answer to STARTTLS), then byte by byte.
            let (mut pending, mut greetings) = (Vec::new(), 0);
            while let Ok(n) = server_in.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if greetings >= 2 {
                    if client_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    continue;
                }
                pending.extend_from_slice(&buf[..n]);
                let mut out = Vec::new();
                while greetings < 2
                    && let Some(end) = pending.iter().position(|&b| b == b'\n')
                {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    out.extend_from_slice(&line);
                    if line.starts_with(b"220") {
                        greetings += 1;
                    }
                    if pipelining && line.eq_ignore_ascii_case(b"250-server offers extensions:\r\n")
                    {
                        out.extend_from_slice(b"250-PIPELINING\r\n");
                    }
                }
                if greetings >= 2 {
                    out.append(&mut pending);
                }
                if client_out.write_all(&out).is_err() {
                    break;
                }
            }
            let _ = client_out.shutdown(Shutdown::Both);
        });
    }

    /// A running SMTP server. It stops with the process (mailin has no shutdown call).
    #[derive(Debug, Clone)]
    pub struct SmtpServer {
        /// Where it listens.
        pub addr: SocketAddr,
        shared: Arc<Mutex<Shared>>,
    }

    impl SmtpServer {
        /// Start on 127.0.0.1 with a free port, offering PIPELINING as real relays do.
        pub fn start() -> Self {
            Self::start_on(0)
        }

        /// Start on 127.0.0.1:`port` (0: a free one), e.g. to bring a "down" server back.
        pub fn start_on(port: u16) -> Self {
            Self::start_full(port, false, None, true)
        }

        /// Start on 127.0.0.1 with a free port, without PIPELINING: a client must wait for
        /// each reply.
        pub fn start_without_pipelining() -> Self {
            Self::start_full(0, false, None, false)
        }

        /// Start on 127.0.0.1 offering STARTTLS with the test certificate
        /// (`fixtures/cert.pem`, signed by `fixtures/ca.pem`).
        pub fn start_starttls() -> Self {
            Self::start_full(0, true, None, true)
        }

        /// Start on 127.0.0.1 offering STARTTLS and then AUTH (PLAIN, LOGIN), which accepts
        /// only `user` / `password` — and, as real relays do, only over TLS.
        pub fn start_starttls_with_auth(user: &str, password: &str) -> Self {
            Self::start_full(0, true, Some((user.to_owned(), password.to_owned())), true)
        }

        /// How many of the clients' writes carried `MAIL FROM`, `RCPT TO` and `DATA`
        /// together: pipelined commands (RFC 2920). Seen in plain text only, before any
        /// STARTTLS.
        pub fn pipelined(&self) -> usize {
            self.shared.lock().unwrap().pipelined
        }

        /// The user names that authenticated so far.
        pub fn authenticated(&self) -> Vec<String> {
            self.shared.lock().unwrap().authenticated.clone()
        }

        fn start_full(
            port: u16,
            starttls: bool,
            credentials: Option<(String, String)>,
            pipelining: bool,
        ) -> Self {
            let front = TcpListener::bind(("127.0.0.1", port)).expect("bind loopback");
            let addr = front.local_addr().unwrap();
            let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback");
            let backend = listener.local_addr().unwrap();
            let offers_auth = credentials.is_some();
            let shared = Arc::new(Mutex::new(Shared {
                credentials,
                ..Shared::default()
            }));
            let mut server = Server::new(Conn {
                shared: Arc::clone(&shared),
                current: Received::default(),
            });
            server
                .with_name("ip-monitor-test")
                .with_num_threads(8)
                .with_tcp_listener(listener);
            if offers_auth {
                server
                    .with_auth(mailin_embedded::AuthMechanism::Plain)
                    .with_auth(mailin_embedded::AuthMechanism::Login);
            }
            if starttls {
                // mailin builds its TLS with the process's default rustls provider, which
                // rustls cannot choose when a build enables two of them.
                let _ = rustls::crypto::ring::default_provider().install_default();
                server
                    .with_ssl(mailin_embedded::SslConfig::SelfSigned {
                        cert_path: crate::fixture("cert.pem").display().to_string(),
                        key_path: crate::fixture("key.pem").display().to_string(),
                    })
                    .expect("load the test certificate");
            }
            std::thread::spawn(move || {
                let _ = server.serve();
            });
            let watch = Arc::clone(&shared);
            std::thread::spawn(move || {
                for client in front.incoming().flatten() {
                    let Ok(server) = TcpStream::connect(backend) else {
                        continue;
                    };
                    front_connection(client, server, pipelining, Arc::clone(&watch));
                }
            });
            SmtpServer { addr, shared }
        }

        /// Answer RCPT TO `email` with `code text` from now on.
        pub fn reply_to_rcpt(&self, email: &str, code: u16, text: &str) {
            self.shared
                .lock()
                .unwrap()
                .rules
                .insert(email.to_ascii_lowercase(), (code, text.to_owned()));
        }

        /// Accept RCPT TO `email` again.
        pub fn forget_rcpt(&self, email: &str) {
            self.shared
                .lock()
                .unwrap()
                .rules
                .remove(&email.to_ascii_lowercase());
        }

        /// Answer every MAIL FROM with `code text` from now on (`None`: accept again), as a
        /// relay that wants authentication does.
        pub fn reply_to_mail(&self, reply: Option<(u16, &str)>) {
            self.shared.lock().unwrap().mail_rule = reply.map(|(c, t)| (c, t.to_owned()));
        }

        /// Put an implicit-TLS front (port-465 style) before this server, with the test
        /// certificate; returns its address. Runs on the current tokio runtime.
        pub async fn implicit_tls_front(&self) -> SocketAddr {
            crate::tls_front(self.addr).await
        }

        /// Take this long before accepting each message (after its data arrived).
        pub fn set_delay(&self, delay: Duration) {
            self.shared.lock().unwrap().delay = delay;
        }

        /// Every message accepted so far.
        pub fn messages(&self) -> Vec<Received> {
            self.shared.lock().unwrap().messages.clone()
        }

        /// Wait (polling, bounded) until at least `n` messages arrived.
        pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
            let start = Instant::now();
            loop {
                let messages = self.messages();
                if messages.len() >= n || start.elapsed() > limit {
                    return messages;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// SQL on an application database, as the application itself would run it (tables such as
/// `staff` that the monitor only reads).
#[cfg(feature = "sql")]
pub mod sql {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;

    /// Run `sql` (one or more statements) on the database at `url`: `sqlite://PATH` or
    /// `postgres://…`. Panics on failure.
    pub fn exec(url: &str, sql: &str) {
        match url.strip_prefix("sqlite://") {
            Some(path) => diesel::SqliteConnection::establish(path)
                .expect("open the SQLite database")
                .batch_execute(sql)
                .expect("run the SQL"),
            None => diesel::PgConnection::establish(url)
                .expect("connect to PostgreSQL")
                .batch_execute(sql)
                .expect("run the SQL"),
        }
    }
}

/// Drives an example web server that embeds the monitor (axum, actix-web): starts it on
/// 127.0.0.1 with loopback IP sources and an SQLite database holding a `staff` table, calls
/// the monitor's routes under `/ip-monitor/` (status, check with and without the token,
/// health, metrics, the page), sends SIGTERM, and checks the store recorded `stopped`.
#[cfg(feature = "embedded")]
pub mod embedded {
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
}

/// A plain HTTP/1.1 client for the tests: one request per connection.
pub mod client {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    /// The answer to [`request`].
    #[derive(Debug, Clone)]
    pub struct Reply {
        /// The status code.
        pub status: u16,
        /// The headers, names in lower case.
        pub headers: Vec<(String, String)>,
        /// The body (the client asks for no compression and no chunking is expected of a
        /// `Connection: close` answer, but a chunked one is decoded).
        pub body: Vec<u8>,
    }

    impl Reply {
        /// The first header called `name` (lower case).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        /// The body as text.
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    /// `method path` on 127.0.0.1:`port` with `headers` and `body`.
    pub fn request(
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Reply> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no end of headers"))?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status line"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    fn dechunk(mut raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&raw[..eol])
                .ok()
                .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                .unwrap_or(0);
            if size == 0 || raw.len() < eol + 2 + size {
                break;
            }
            out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
            raw = &raw[(eol + 4 + size).min(raw.len())..];
        }
        out
    }
}

/// A TCP proxy on 127.0.0.1 in front of another loopback server, which the test can cut:
/// what a network partition between a monitor and its database looks like.
#[derive(Debug)]
pub struct TcpProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    cut: Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl TcpProxy {
    /// Forward every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (flag, gen_tx) = (Arc::clone(&cut), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is reset
                }
                let mut cut = gen_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        TcpProxy {
            addr,
            cut,
            generation,
        }
    }

    /// Close every open connection and refuse new ones (until [`restore`](Self::restore)).
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accept connections again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Headless Chromium, for tests of what a browser shows.
pub mod browser {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// Chromium named by `IP_MONITOR_CHROMIUM`, or found on `PATH`; `None` without one (the
    /// test then says it skipped).
    pub fn find() -> Option<PathBuf> {
        let named = std::env::var_os("IP_MONITOR_CHROMIUM")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        named.or_else(|| {
            ["chromium", "chromium-browser", "google-chrome"]
                .iter()
                .find_map(|name| {
                    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                        .map(|dir| dir.join(name))
                        .find(|p| p.is_file())
                })
        })
    }

    fn headless(browser: &Path, profile: &Path) -> Command {
        let mut cmd = Command::new(browser);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
        cmd
    }

    /// `url` as the browser renders it, `width`×`height` pixels, as PNG bytes.
    pub fn screenshot(browser: &Path, url: &str, width: u32, height: u32) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("ip-monitor-shot-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let png = dir.join("page.png");
        let out = headless(browser, &dir.join("profile"))
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("--window-size={width},{height}"))
            .arg(url)
            .output()
            .expect("run the browser");
        let bytes = std::fs::read(&png)
            .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
        std::fs::remove_dir_all(&dir).ok();
        bytes
    }

    /// The DOM of `url` after the browser loaded it, serialized.
    pub fn dump_dom(browser: &Path, url: &str) -> String {
        let dir = std::env::temp_dir().join(format!("ip-monitor-dom-{}", fastrand::u64(..)));
        let out = headless(browser, &dir)
            .arg("--dump-dom")
            .arg(url)
            .output()
            .expect("run the browser");
        std::fs::remove_dir_all(&dir).ok();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
