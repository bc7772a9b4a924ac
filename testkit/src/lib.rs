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

/// A judge whose answer carries headers too: the status, the headers, the JSON body.
pub type JudgeWithHeaders =
    Arc<dyn Fn(&str, &[u8]) -> (u16, Vec<(String, String)>, String) + Send + Sync>;

/// What the HTTP server does with each request.
#[derive(Clone)]
pub enum Behavior {
    /// Answer what the judge says (a platform that checks the request, its signature).
    Judge(Judge),
    /// As [`Behavior::Judge`], with headers of the judge's choosing (`Retry-After`).
    JudgeWithHeaders(JudgeWithHeaders),
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
            Behavior::Judge(_) | Behavior::JudgeWithHeaders(_) => f.write_str("Judge"),
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
                answer_json(&mut stream, status, &[], &answer).await;
            }
            Behavior::JudgeWithHeaders(judge) => {
                let (status, headers, answer) = judge(&text, &body);
                answer_json(&mut stream, status, &headers, &answer).await;
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

/// Write a JSON answer with `status` and the extra `headers`.
async fn answer_json(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
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

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Whether this process runs as root (Postfix's master and rspamd's user switch need it).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A DNS server on loopback UDP that answers every question with `answer(query)`.
pub mod dns;

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
pub mod pg;

/// A real SMTP server on 127.0.0.1 (mailin-embedded, on its own threads) that keeps every
/// message, and answers chosen recipients with a chosen reply.
#[cfg(feature = "smtp")]
pub mod smtp;

/// The spam filters receivers run, offline: SpamAssassin and a private rspamd.
pub mod filters;

/// A private Postfix on 127.0.0.1 with anvil's per-client limits: a relay that throttles.
pub mod postfix;

/// SQL on an application database, as the application itself would run it (tables such as
/// `staff` that the monitor only reads).
#[cfg(feature = "sql")]
pub mod sql;

/// Drives an example web server that embeds the monitor (axum, actix-web): starts it on
/// 127.0.0.1 with loopback IP sources and an SQLite database holding a `staff` table, calls
/// the monitor's routes under `/ip-monitor/` (status, check with and without the token,
/// health, metrics, the page), sends SIGTERM, and checks the store recorded `stopped`.
#[cfg(feature = "embedded")]
pub mod embedded;

/// A cloud DNS provider's API (Alibaba Cloud DNS, DNSPod, Huawei Cloud DNS) that checks
/// each request's signature in Python.
#[cfg(feature = "fakes")]
pub mod cloud_dns;

/// Eight push services on one loopback server, each judging its requests as the real one
/// does, the QR code decoded back to the link.
#[cfg(feature = "fakes")]
pub mod push;

/// A plain HTTP/1.1 client for the tests: one request per connection.
pub mod client;

/// Tests run in a network namespace of their own, with interfaces they make.
pub mod netns;

/// A router's NAT-PMP and PCP server, and its announcements.
pub mod router;

/// A UPnP Internet Gateway Device: description, control point, SSDP answers.
pub mod igd;

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
pub mod browser;
