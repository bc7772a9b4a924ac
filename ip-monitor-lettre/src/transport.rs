//! A pool of SMTP sessions with `TCP_NODELAY` set, and one message sent over a session step
//! by step, so that each refusal is judged by the step it answers.
//!
//! A session writes each message and its terminating dot at once, and the envelope at once
//! when the server offers PIPELINING: without `TCP_NODELAY`, a write that follows another
//! before the reply would wait for the server's delayed ACK (40 ms on Linux).

use std::fmt;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use ip_monitor_core::SendPermit;

use crate::error::Error;
use crate::session::{Session, SmtpError, Step};
use crate::throttle::{self, Throttle};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587). The default.
    #[default]
    StartTls,
    /// TLS from the first byte (port 465).
    Wrapper,
    /// No encryption (port 25). Credentials are refused unless the host is loopback.
    None,
}

impl std::str::FromStr for Tls {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "starttls" => Ok(Tls::StartTls),
            "tls" => Ok(Tls::Wrapper),
            "none" => Ok(Tls::None),
            other => Err(Error::Config {
                key: "tls",
                message: format!("{other:?}: expected \"starttls\", \"tls\" or \"none\""),
            }),
        }
    }
}

/// Idle connections older than this are checked with NOOP before reuse.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(30);

/// Why a send failed, by the step that failed: what a refusal is about depends on when the
/// relay said it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// Setting up the session failed (greeting, EHLO, STARTTLS, TLS, AUTH): a problem of the
    /// server or the configuration, not of the recipient, so never permanent for them.
    #[error("setting up the SMTP session: {0}")]
    Session(SmtpError),
    /// The relay refused the sender (`MAIL FROM`): its configuration, not the recipient's.
    #[error("the relay refused the sender: {0}")]
    Sender(SmtpError),
    /// The relay refused the recipient (`RCPT TO`).
    #[error("the relay refused the recipient: {0}")]
    Recipient(SmtpError),
    /// The relay refused the message (`DATA` or its end).
    #[error("the relay refused the message: {0}")]
    Message(SmtpError),
    /// The send permit lapsed before the message was written: nothing was handed over.
    #[error("not handed over: the send permit lapsed before the message was written")]
    Withheld,
    #[error("connecting to {server}: {source}")]
    Connect { server: String, source: io::Error },
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
            SendError::Recipient(e) | SendError::Message(e) => {
                e.reply().is_some_and(about_the_mailbox)
            }
            _ => false,
        }
    }

    /// Whether the relay failed before hearing of the recipient: it could not be reached,
    /// the session could not be set up, or it refused the sender. Nothing was handed over.
    pub(crate) fn is_route_failure(&self) -> bool {
        matches!(
            self,
            SendError::Connect { .. } | SendError::Session(_) | SendError::Sender(_)
        )
    }

    /// The relay's throttling in this failure, if it is that (see [`throttle::classify`]).
    pub(crate) fn throttle(&self) -> Option<Throttle> {
        match self {
            SendError::Session(SmtpError::Reply(r)) => throttle::classify(true, r),
            SendError::Sender(SmtpError::Reply(r))
            | SendError::Recipient(SmtpError::Reply(r))
            | SendError::Message(SmtpError::Reply(r)) => throttle::classify(false, r),
            _ => None,
        }
    }

    /// Whether the connection failed (as opposed to the server answering): a pooled
    /// session the server closed while idle fails this way.
    fn is_connection_failure(&self) -> bool {
        match self {
            SendError::Session(e)
            | SendError::Sender(e)
            | SendError::Recipient(e)
            | SendError::Message(e) => matches!(e, SmtpError::Io(_)),
            _ => false,
        }
    }
}

/// Whether a 5xx refusal is about the recipient's address or mailbox. With an enhanced
/// status code (RFC 3463) its subject says: `5.1.x` address, `5.2.x` mailbox, `5.6.x`
/// content; `5.7.x` (security, policy, relaying) and the rest are about the relay. Without
/// one, 550 / 551 / 553 are the mailbox replies of RFC 5321 unless the text names relaying
/// or authentication.
fn about_the_mailbox(reply: &crate::session::Reply) -> bool {
    if reply.code < 500 {
        return false;
    }
    let text = reply.to_string().to_ascii_lowercase();
    if let Some((5, subject, _)) = throttle::enhanced(&text) {
        return matches!(subject, 1 | 2 | 6);
    }
    matches!(reply.code, 550 | 551 | 553) && !text.contains("relay") && !text.contains("auth")
}

pub(crate) struct Pool {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<(String, String)>,
    timeout: Duration,
    permits: Semaphore,
    idle: Mutex<Vec<(Session, Instant)>>,
    connector: Option<tokio_rustls::TlsConnector>,
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
    /// `roots`: extra trusted roots (PEM), e.g. a private CA, already validated.
    pub(crate) fn new(
        host: String,
        port: u16,
        tls: Tls,
        credentials: Option<(String, String)>,
        timeout: Duration,
        size: u32,
        roots: &[Vec<u8>],
    ) -> Self {
        Pool {
            host,
            port,
            tls,
            credentials,
            timeout,
            permits: Semaphore::new(size.max(1) as usize),
            idle: Mutex::new(Vec::new()),
            connector: (tls != Tls::None).then(|| crate::session::connector(roots)),
        }
    }

    /// Send one message, on a pooled session when one is idle, unless `permit` has lapsed
    /// when `DATA` is due. A pooled session that turns out dead is replaced once.
    pub(crate) async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
        permit: &SendPermit,
    ) -> Result<(), SendError> {
        let _slot = self.permits.acquire().await.expect("never closed");
        let timeout = self.timeout;
        let mail = mail_from(envelope, message);
        let rcpts: Vec<String> = envelope
            .to()
            .iter()
            .map(|to| format!("RCPT TO:<{to}>\r\n"))
            .collect();
        let attempt = async {
            let (mut session, reused) = match self.take_idle().await {
                Some(s) => (s, true),
                None => (self.connect().await?, false),
            };
            let mut result = transfer(&mut session, &mail, &rcpts, message, permit).await;
            if reused && result.as_ref().is_err_and(SendError::is_connection_failure) {
                // The server closed the idle connection: try once on a fresh one.
                session = self.connect().await?;
                result = transfer(&mut session, &mail, &rcpts, message, permit).await;
            }
            // A throttled session is left: relays count a session's refusals (Postfix
            // slows its answers after ten and drops it after twenty), and a new one starts
            // afresh. Any other refusal leaves the session usable after RSET.
            if result.as_ref().is_err_and(|e| e.throttle().is_some()) {
                session.abandon();
            }
            if result.is_err() && !session.is_broken() && session.rset().await.is_err() {
                return result;
            }
            self.put_idle(session);
            result
        };
        tokio::time::timeout(timeout * 3, attempt)
            .await
            .unwrap_or(Err(SendError::Timeout(timeout * 3)))
    }

    async fn take_idle(&self) -> Option<Session> {
        loop {
            let (mut session, since) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            if session.is_broken() {
                continue;
            }
            if since.elapsed() > CHECK_IDLE_AFTER && !session.noop().await {
                continue;
            }
            return Some(session);
        }
    }

    fn put_idle(&self, session: Session) {
        if !session.is_broken() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((session, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<Session, SendError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let server = format!("{host}:{}", self.port);
        let connect_error = |source| SendError::Connect {
            server: server.clone(),
            source,
        };
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((host, self.port)))
            .await
            .map_err(|_| {
                connect_error(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", self.timeout),
                ))
            })?
            .map_err(connect_error)?;
        tcp.set_nodelay(true).map_err(connect_error)?;
        let name = || {
            rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
                SendError::Session(SmtpError::Protocol(format!(
                    "TLS server name {host:?}: {e}"
                )))
            })
        };
        let implicit = match (&self.connector, self.tls) {
            (Some(connector), Tls::Wrapper) => Some((connector, name()?)),
            _ => None,
        };
        let mut session = Session::open(tcp, implicit)
            .await
            .map_err(SendError::Session)?;
        if let (Some(connector), Tls::StartTls) = (&self.connector, self.tls) {
            session = session
                .starttls(connector, name()?)
                .await
                .map_err(SendError::Session)?;
        }
        if let Some((user, password)) = &self.credentials {
            session
                .auth(user, password)
                .await
                .map_err(SendError::Session)?;
        }
        Ok(session)
    }
}

/// `MAIL FROM` for `envelope`, with SMTPUTF8 and BODY=8BITMIME asked for when the addresses
/// or the message need them; the session leaves out what its server does not offer.
fn mail_from(envelope: &Envelope, message: &[u8]) -> MailFrom {
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    MailFrom {
        from: envelope.from().map(ToString::to_string).unwrap_or_default(),
        smtp_utf8: non_ascii,
        eight_bit: !message.is_ascii(),
    }
}

struct MailFrom {
    from: String,
    smtp_utf8: bool,
    eight_bit: bool,
}

impl MailFrom {
    fn command(&self, session: &Session) -> String {
        let ext = session.extensions();
        let mut command = format!("MAIL FROM:<{}>", self.from);
        // Without SMTPUTF8 the relay refuses such an address at RCPT, for that recipient only.
        if self.smtp_utf8 && ext.smtp_utf8 {
            command.push_str(" SMTPUTF8");
        }
        if self.eight_bit && ext.eight_bit_mime {
            command.push_str(" BODY=8BITMIME");
        }
        command.push_str("\r\n");
        command
    }
}

/// One message over an open session, each refusal classified by the step it answers, and
/// the permit checked at the last moment, right before the message: with PIPELINING the
/// server already answered `DATA`, and a lapsed permit closes the connection instead of
/// sending it.
async fn transfer(
    session: &mut Session,
    mail: &MailFrom,
    rcpts: &[String],
    message: &[u8],
    permit: &SendPermit,
) -> Result<(), SendError> {
    let command = mail.command(session);
    let waiting = session
        .envelope(&command, rcpts)
        .await
        .map_err(|(step, e)| match step {
            Step::Mail => SendError::Sender(e),
            Step::Rcpt => SendError::Recipient(e),
            Step::Data => SendError::Message(e),
        })?;
    if !permit.is_valid() {
        if waiting {
            session.abandon();
        }
        return Err(SendError::Withheld);
    }
    if waiting {
        session.message(message).await
    } else {
        session.data(message).await
    }
    .map_err(SendError::Message)
}
