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

use crate::smtp::Tls;

/// Idle connections older than this are checked with NOOP before reuse.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(30);

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// Setting up the session failed (greeting, STARTTLS, TLS, AUTH): a problem of the
    /// server or the configuration, not of the recipient, so never permanent for them.
    #[error("setting up the SMTP session: {0}")]
    Session(lettre::transport::smtp::Error),
    #[error("connecting to {server}: {source}")]
    Connect { server: String, source: io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
}

impl SendError {
    /// Only a 5xx reply is permanent.
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, SendError::Smtp(e) if e.is_permanent())
    }
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
            Arc::new(
                rustls::ClientConfig::builder()
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

    /// Send one message, on a pooled connection when one is idle. A pooled connection that
    /// turns out dead is replaced once.
    pub(crate) async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let _permit = self.permits.acquire().await.expect("never closed");
        let timeout = self.timeout;
        let attempt = async {
            let (mut conn, reused) = match self.take_idle().await {
                Some(c) => (c, true),
                None => (self.connect().await?, false),
            };
            match conn.send(envelope, message).await {
                Ok(_) => {
                    self.put_idle(conn);
                    Ok(())
                }
                Err(e) if reused && !e.is_response() => {
                    // The server closed the idle connection: try once on a fresh one.
                    let mut fresh = self.connect().await?;
                    fresh.send(envelope, message).await?;
                    self.put_idle(fresh);
                    Ok(())
                }
                Err(e) => {
                    if e.is_response() && !conn.has_broken() {
                        // A refused recipient leaves the connection usable after RSET.
                        if conn
                            .command(lettre::transport::smtp::commands::Rset)
                            .await
                            .is_ok()
                        {
                            self.put_idle(conn);
                        }
                    }
                    Err(SendError::Smtp(e))
                }
            }
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
