//! A pool of SMTP connections with `TCP_NODELAY` set.
//!
//! lettre writes a message body and its terminating `.` in two writes, then waits for the
//! reply: with Nagle's algorithm on, the second write waits for the server's delayed ACK
//! (40 ms on Linux) and a connection manages about 25 messages a second. The pool opens its
//! own sockets with `TCP_NODELAY` and hands them to lettre's SMTP client.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use ip_monitor_core::SendPermit;

use crate::smtp::Tls;

/// Idle connections older than this are checked with NOOP before reuse.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(30);

/// Why a send failed, by the step that failed: what a refusal is about depends on when the
/// relay said it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// Setting up the session failed (greeting, STARTTLS, TLS, AUTH): a problem of the
    /// server or the configuration, not of the recipient, so never permanent for them.
    #[error("setting up the SMTP session: {0}")]
    Session(lettre::transport::smtp::Error),
    /// The relay refused the sender (`MAIL FROM`): its configuration, not the recipient's.
    #[error("the relay refused the sender: {0}")]
    Sender(lettre::transport::smtp::Error),
    /// The relay refused the recipient (`RCPT TO`).
    #[error("the relay refused the recipient: {0}")]
    Recipient(lettre::transport::smtp::Error),
    /// The relay refused the message (`DATA` or its end).
    #[error("the relay refused the message: {0}")]
    Message(lettre::transport::smtp::Error),
    /// The send permit lapsed before `DATA`: nothing was handed over.
    #[error("not handed over: the send permit lapsed before DATA")]
    Withheld,
    #[error("connecting to {server}: {source}")]
    Connect { server: String, source: io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
}

impl SendError {
    /// Permanent for this recipient only when the relay refused the recipient's mailbox (a
    /// 5xx to `RCPT TO`, or to the message, about the address or the mailbox). A 5xx about
    /// the relay itself, the sender or policy (`530 5.7.0 Authentication required`,
    /// `554 5.7.1 Relay access denied`) is the relay's configuration: retried.
    pub(crate) fn is_permanent(&self) -> bool {
        match self {
            SendError::Recipient(e) | SendError::Message(e) => about_the_mailbox(e),
            _ => false,
        }
    }

    /// The SMTP error underneath, when the server answered or the connection failed.
    fn smtp(&self) -> Option<&lettre::transport::smtp::Error> {
        match self {
            SendError::Smtp(e)
            | SendError::Session(e)
            | SendError::Sender(e)
            | SendError::Recipient(e)
            | SendError::Message(e) => Some(e),
            _ => None,
        }
    }
}

/// Whether a 5xx refusal is about the recipient's address or mailbox. With an enhanced
/// status code (RFC 3463) its subject says: `5.1.x` address, `5.2.x` mailbox, `5.6.x`
/// content; `5.7.x` (security, policy, relaying) and the rest are about the relay. Without
/// one, 550 / 551 / 553 are the mailbox replies of RFC 5321 unless the text names relaying
/// or authentication.
fn about_the_mailbox(e: &lettre::transport::smtp::Error) -> bool {
    if !e.is_permanent() {
        return false;
    }
    let text = e.to_string().to_ascii_lowercase();
    if let Some(subject) = enhanced_subject(&text) {
        return matches!(subject, 1 | 2 | 6);
    }
    let code = e.status().map(u16::from).unwrap_or(0);
    matches!(code, 550 | 551 | 553) && !text.contains("relay") && !text.contains("auth")
}

/// The subject digit of an enhanced status code `5.S.D` in a reply's text.
fn enhanced_subject(text: &str) -> Option<u8> {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .find_map(|word| {
            let mut parts = word.split('.');
            let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
            (parts.next().is_none()
                && class == "5"
                && detail.len() <= 3
                && detail.chars().all(|c| c.is_ascii_digit()))
            .then(|| subject.parse().ok())
            .flatten()
        })
}

pub(crate) struct Pool {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    permits: Semaphore,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    /// Extra trusted roots (PEM), e.g. a private CA.
    roots: Vec<Vec<u8>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("idle", &self.idle.lock().map(|i| i.len()).unwrap_or(0))
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub(crate) fn new(
        host: String,
        port: u16,
        tls: Tls,
        credentials: Option<Credentials>,
        timeout: Duration,
        size: u32,
        roots: Vec<Vec<u8>>,
    ) -> Self {
        let tls_config = (tls == Tls::Wrapper).then(|| {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let mut store =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            for pem in &roots {
                // Validated by the builder.
                for cert in CertificateDer::pem_slice_iter(pem).flatten() {
                    let _ = store.add(cert);
                }
            }
            // The provider is named, not taken from the process default: an application
            // whose dependencies enable two rustls providers would otherwise panic here.
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            Arc::new(
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("aws-lc-rs supports the default TLS versions")
                    .with_root_certificates(store)
                    .with_no_client_auth(),
            )
        });
        Pool {
            host,
            port,
            tls,
            credentials,
            timeout,
            hello: ClientId::default(),
            permits: Semaphore::new(size.max(1) as usize),
            idle: Mutex::new(Vec::new()),
            tls_config,
            roots,
        }
    }

    /// Send one message, on a pooled connection when one is idle, unless `permit` has lapsed
    /// when `DATA` is due. A pooled connection that turns out dead is replaced once.
    pub(crate) async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
        permit: &SendPermit,
    ) -> Result<(), SendError> {
        let _slot = self.permits.acquire().await.expect("never closed");
        let timeout = self.timeout;
        let attempt = async {
            let (mut conn, reused) = match self.take_idle().await {
                Some(c) => (c, true),
                None => (self.connect().await?, false),
            };
            let result = match transfer(&mut conn, envelope, message, permit).await {
                Err(e) if reused && e.smtp().is_some_and(|e| !e.is_response()) => {
                    // The server closed the idle connection: try once on a fresh one.
                    conn = self.connect().await?;
                    transfer(&mut conn, envelope, message, permit).await
                }
                other => other,
            };
            if result.is_err() && !conn.has_broken() {
                // A refusal leaves the connection usable after RSET.
                if conn
                    .command(lettre::transport::smtp::commands::Rset)
                    .await
                    .is_err()
                {
                    return result;
                }
            }
            self.put_idle(conn);
            result
        };
        tokio::time::timeout(timeout * 3, attempt)
            .await
            .unwrap_or(Err(SendError::Timeout(timeout * 3)))
    }

    async fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            if conn.has_broken() {
                continue;
            }
            if since.elapsed() > CHECK_IDLE_AFTER && !conn.test_connected().await {
                continue;
            }
            return Some(conn);
        }
    }

    fn put_idle(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        self.open().await.map_err(|e| match e {
            SendError::Smtp(e) => SendError::Session(e),
            other => other,
        })
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        let server = format!(
            "{}:{}",
            self.host.trim_start_matches('[').trim_end_matches(']'),
            self.port
        );
        let connect_error = |source| SendError::Connect {
            server: server.clone(),
            source,
        };
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((host, self.port)))
            .await
            .map_err(|_| SendError::Timeout(self.timeout))?
            .map_err(connect_error)?;
        tcp.set_nodelay(true).map_err(connect_error)?;
        let mut conn = match &self.tls_config {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| SendError::Tls(e.to_string()))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| SendError::Tls(e.to_string()))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(TlsTcp(tls)), &self.hello)
                    .await?
            }
            None => AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?,
        };
        if self.tls == Tls::StartTls {
            let mut params = TlsParameters::builder(host.to_owned());
            for pem in &self.roots {
                params = params.add_root_certificate(
                    lettre::transport::smtp::client::Certificate::from_pem(pem)?,
                );
            }
            conn.starttls(params.build_rustls()?, &self.hello).await?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        Ok(conn)
    }
}

/// One message over an open session, step by step, so that each refusal is classified by
/// the step it answers and the permit is checked at the last moment, right before `DATA`.
async fn transfer(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
    permit: &SendPermit,
) -> Result<(), SendError> {
    use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
    use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
    let mut options = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    // Without SMTPUTF8 the relay refuses such an address at RCPT, for that recipient only.
    if non_ascii && conn.server_info().supports_feature(Extension::SmtpUtfEight) {
        options.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), options))
        .await
        .map_err(SendError::Sender)?;
    for to in envelope.to() {
        conn.command(Rcpt::new(to.clone(), Vec::new()))
            .await
            .map_err(SendError::Recipient)?;
    }
    if !permit.is_valid() {
        return Err(SendError::Withheld);
    }
    conn.command(Data).await.map_err(SendError::Message)?;
    conn.message(message).await.map_err(SendError::Message)?;
    Ok(())
}

/// An implicit-TLS stream that lettre's client can drive.
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl fmt::Debug for TlsTcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsTcp")
    }
}

impl AsyncRead for TlsTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}
