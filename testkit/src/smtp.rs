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
                if pipelining && line.eq_ignore_ascii_case(b"250-server offers extensions:\r\n") {
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
