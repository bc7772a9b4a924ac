//! One SMTP session (RFC 5321) over TCP or TLS: the greeting, EHLO and its extensions,
//! STARTTLS (RFC 3207), AUTH PLAIN and LOGIN (RFC 4954), and mail transactions, with the
//! envelope and `DATA` pipelined (RFC 2920) when the server offers it and each message
//! written in one piece, its terminating dot included.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::TcpStream;

/// A reply line longer than this is refused (RFC 5321 allows 512 bytes).
const MAX_LINE: usize = 4096;
/// A multi-line reply longer than this is refused.
const MAX_REPLY: usize = 64 * 1024;

/// A server's reply: its code and its text, one entry per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) lines: Vec<String>,
}

impl Reply {
    fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    fn kind(&self) -> &'static str {
        match self.code {
            500.. => "permanent error",
            400..500 => "transient error",
            _ => "unexpected reply",
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        for line in &self.lines {
            write!(f, " {line}")?;
        }
        Ok(())
    }
}

/// What went wrong in a session.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SmtpError {
    /// The server refused (4xx or 5xx) or answered with an unexpected code.
    #[error("{}: {}", .0.kind(), .0)]
    Reply(Reply),
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// The TLS handshake failed (an untrusted or mismatched certificate, say).
    #[error("TLS: {0}")]
    Tls(io::Error),
    /// The server broke the protocol, or lacks what the configuration requires.
    #[error("{0}")]
    Protocol(String),
}

impl SmtpError {
    /// The server answered (as opposed to the connection failing).
    pub(crate) fn is_reply(&self) -> bool {
        matches!(self, SmtpError::Reply(_))
    }

    /// The server answered with a 5xx code.
    pub(crate) fn reply(&self) -> Option<&Reply> {
        match self {
            SmtpError::Reply(r) => Some(r),
            _ => None,
        }
    }
}

/// The extensions of the server's EHLO reply this client uses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extensions {
    pub(crate) pipelining: bool,
    pub(crate) starttls: bool,
    pub(crate) eight_bit_mime: bool,
    pub(crate) smtp_utf8: bool,
    pub(crate) auth_plain: bool,
    pub(crate) auth_login: bool,
}

impl Extensions {
    fn parse(reply: &Reply) -> Self {
        let mut ext = Extensions::default();
        // The first line greets; each further line names one extension.
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "STARTTLS" => ext.starttls = true,
                "8BITMIME" => ext.eight_bit_mime = true,
                "SMTPUTF8" => ext.smtp_utf8 = true,
                "AUTH" => {
                    for mechanism in words {
                        match mechanism.to_ascii_uppercase().as_str() {
                            "PLAIN" => ext.auth_plain = true,
                            "LOGIN" => ext.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        ext
    }
}

/// A plain or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open SMTP session, greeted and introduced with EHLO (or HELO).
pub(crate) struct Session {
    io: BufReader<Stream>,
    /// What the next write sends: commands are gathered here and written at once.
    out: Vec<u8>,
    extensions: Extensions,
    /// Our name in EHLO: the local address as an address literal.
    hello: String,
    /// Set when the session is out of step with the server (an I/O or protocol error in
    /// the middle of an exchange): it must not be used again.
    broken: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("extensions", &self.extensions)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// The address literal (RFC 5321 §4.1.3) of a local address, for EHLO.
fn address_literal(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("[{}]", a.ip()),
        SocketAddr::V6(a) => format!("[IPv6:{}]", a.ip()),
    }
}

impl Session {
    /// Greet a server over `tcp`, wrapped in TLS first when `tls` is given (implicit TLS).
    pub(crate) async fn open(
        tcp: TcpStream,
        tls: Option<(
            &tokio_rustls::TlsConnector,
            rustls::pki_types::ServerName<'static>,
        )>,
    ) -> Result<Self, SmtpError> {
        let hello = address_literal(tcp.local_addr()?);
        let stream = match tls {
            Some((connector, name)) => Stream::Tls(Box::new(
                connector.connect(name, tcp).await.map_err(SmtpError::Tls)?,
            )),
            None => Stream::Plain(tcp),
        };
        let mut session = Session {
            io: BufReader::new(stream),
            out: Vec::with_capacity(8 * 1024),
            extensions: Extensions::default(),
            hello,
            broken: false,
        };
        session.expect(220).await?;
        session.ehlo().await?;
        Ok(session)
    }

    /// The server's extensions, as its last EHLO reply listed them.
    pub(crate) fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Whether the session must not be used again.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    async fn ehlo(&mut self) -> Result<(), SmtpError> {
        let command = format!("EHLO {}\r\n", self.hello);
        self.queue(&command);
        match self.expect(250).await {
            Ok(reply) => {
                self.extensions = Extensions::parse(&reply);
                Ok(())
            }
            // A server too old for EHLO (RFC 821) still knows HELO.
            Err(SmtpError::Reply(r)) if matches!(r.code, 500 | 502) => {
                let command = format!("HELO {}\r\n", self.hello);
                self.queue(&command);
                self.expect(250).await?;
                self.extensions = Extensions::default();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Upgrade to TLS with STARTTLS and introduce ourselves again: what the server said
    /// before the upgrade is forgotten (RFC 3207 §4.2).
    pub(crate) async fn starttls(
        mut self,
        connector: &tokio_rustls::TlsConnector,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<Self, SmtpError> {
        if !self.extensions.starttls {
            return Err(SmtpError::Protocol(
                "the server does not offer STARTTLS, which the configuration requires \
                 (tls = \"starttls\")"
                    .to_owned(),
            ));
        }
        self.queue("STARTTLS\r\n");
        self.expect(220).await?;
        if !self.io.buffer().is_empty() {
            // Plain text sent after the 220 would be taken as if it came over TLS.
            return Err(SmtpError::Protocol(
                "the server sent data before the TLS handshake".to_owned(),
            ));
        }
        let Stream::Plain(tcp) = self.io.into_inner() else {
            return Err(SmtpError::Protocol("STARTTLS on a TLS session".to_owned()));
        };
        let tls = connector.connect(name, tcp).await.map_err(SmtpError::Tls)?;
        let mut session = Session {
            io: BufReader::new(Stream::Tls(Box::new(tls))),
            out: self.out,
            extensions: Extensions::default(),
            hello: self.hello,
            broken: false,
        };
        session.ehlo().await?;
        Ok(session)
    }

    /// Authenticate with PLAIN, or LOGIN when PLAIN is not offered.
    pub(crate) async fn auth(&mut self, user: &str, password: &str) -> Result<(), SmtpError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        if self.extensions.auth_plain {
            let token = b64.encode(format!("\0{user}\0{password}"));
            self.queue(&format!("AUTH PLAIN {token}\r\n"));
            self.expect(235).await?;
        } else if self.extensions.auth_login {
            self.queue("AUTH LOGIN\r\n");
            self.expect(334).await?;
            self.queue(&format!("{}\r\n", b64.encode(user)));
            self.expect(334).await?;
            self.queue(&format!("{}\r\n", b64.encode(password)));
            self.expect(235).await?;
        } else {
            return Err(SmtpError::Protocol(
                "the server offers no authentication this client supports (AUTH PLAIN or \
                 LOGIN)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Start a mail transaction: `MAIL FROM`, `RCPT TO` and `DATA` in one write when the
    /// server offers PIPELINING (RFC 2920 allows `DATA` last in a group), otherwise one
    /// command at a time without `DATA`. Returns whether the server now waits for the
    /// message (it answered `DATA` with 354), or which step was refused, with the reply.
    pub(crate) async fn envelope(
        &mut self,
        mail: &str,
        rcpts: &[String],
    ) -> Result<bool, (Step, SmtpError)> {
        if !self.extensions.pipelining {
            self.queue(mail);
            self.expect(250).await.map_err(|e| (Step::Mail, e))?;
            for rcpt in rcpts {
                self.queue(rcpt);
                self.expect(250).await.map_err(|e| (Step::Rcpt, e))?;
            }
            return Ok(false);
        }
        self.queue(mail);
        for rcpt in rcpts {
            self.queue(rcpt);
        }
        self.queue("DATA\r\n");
        // Every reply is read, refused or not, to stay in step with the server.
        let mail_reply = self.expect(250).await;
        if mail_reply.as_ref().is_err_and(|e| !e.is_reply()) {
            return Err((Step::Mail, mail_reply.unwrap_err()));
        }
        let mut first_refusal = None;
        for _ in rcpts {
            if let Err(e) = self.expect(250).await {
                if !e.is_reply() {
                    return Err((Step::Rcpt, e));
                }
                first_refusal.get_or_insert(e);
            }
        }
        let envelope = mail_reply
            .map(drop)
            .map_err(|e| (Step::Mail, e))
            .and_then(|()| first_refusal.map_or(Ok(()), |e| Err((Step::Rcpt, e))));
        match self.expect(354).await {
            Ok(_) if envelope.is_err() => {
                // Waiting for a message that must not go (a server that took DATA after
                // refusing a recipient): only closing the connection ends the transaction.
                self.broken = true;
                envelope.map(|()| false)
            }
            Ok(_) => Ok(true),
            // DATA refused because the envelope was (RFC 2920): the envelope's reply
            // is the answer, and RSET keeps the session usable.
            Err(e) => envelope.and(Err((Step::Data, e))),
        }
    }

    /// `DATA`, then the message, dot-stuffed and terminated, in one write.
    pub(crate) async fn data(&mut self, message: &[u8]) -> Result<(), SmtpError> {
        self.queue("DATA\r\n");
        self.expect(354).await?;
        self.message(message).await
    }

    /// The message, dot-stuffed and terminated, in one write, once the server answered
    /// `DATA` with 354.
    pub(crate) async fn message(&mut self, message: &[u8]) -> Result<(), SmtpError> {
        dot_stuff(message, &mut self.out);
        self.expect(250).await?;
        Ok(())
    }

    /// Leave a transaction in which the server waits for the message without sending it:
    /// the connection is closed when the session is dropped (RFC 5321 §3.8: a server whose
    /// connection closes during a transaction cancels it).
    pub(crate) fn abandon(&mut self) {
        self.broken = true;
    }

    /// End a transaction that was refused, keeping the session usable.
    pub(crate) async fn rset(&mut self) -> Result<(), SmtpError> {
        self.queue("RSET\r\n");
        self.expect(250).await.map(drop)
    }

    /// Whether the server still answers.
    pub(crate) async fn noop(&mut self) -> bool {
        self.queue("NOOP\r\n");
        self.expect(250).await.is_ok()
    }

    fn queue(&mut self, command: &str) {
        self.out.extend_from_slice(command.as_bytes());
    }

    /// Write what is queued, read one reply and check its code; a reply with another code is
    /// an error. Only a wrong reply keeps the session usable.
    async fn expect(&mut self, code: u16) -> Result<Reply, SmtpError> {
        let result = self.exchange().await;
        if let Err(e) = &result
            && !e.is_reply()
        {
            self.broken = true;
        }
        let reply = result?;
        if reply.code == code || (code == 250 && reply.code == 251) {
            Ok(reply)
        } else if reply.is_positive() {
            self.broken = true;
            Err(SmtpError::Protocol(format!(
                "unexpected reply (expected {code}): {reply}"
            )))
        } else {
            Err(SmtpError::Reply(reply))
        }
    }

    async fn exchange(&mut self) -> Result<Reply, SmtpError> {
        if self.broken {
            return Err(SmtpError::Protocol("the session is broken".to_owned()));
        }
        if !self.out.is_empty() {
            let stream = self.io.get_mut();
            let written = stream.write_all(&self.out).await;
            self.out.clear();
            written?;
            stream.flush().await?;
        }
        self.read_reply().await
    }

    async fn read_reply(&mut self) -> Result<Reply, SmtpError> {
        let mut lines = Vec::new();
        let mut total = 0;
        let mut line = Vec::with_capacity(128);
        loop {
            line.clear();
            let n = (&mut self.io)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                return Err(SmtpError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
            if n > MAX_LINE || !line.ends_with(b"\n") {
                return Err(SmtpError::Protocol("reply line too long".to_owned()));
            }
            total += n;
            if total > MAX_REPLY {
                return Err(SmtpError::Protocol("reply too long".to_owned()));
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let bytes = text.as_bytes();
            let code = (bytes.len() >= 3 && bytes[..3].iter().all(u8::is_ascii_digit))
                .then(|| text[..3].parse::<u16>().ok())
                .flatten()
                .filter(|c| (200..600).contains(c));
            let Some(code) = code else {
                return Err(SmtpError::Protocol(format!("malformed reply: {text:?}")));
            };
            let last = match bytes.get(3) {
                None | Some(b' ') => true,
                Some(b'-') => false,
                Some(_) => {
                    return Err(SmtpError::Protocol(format!("malformed reply: {text:?}")));
                }
            };
            lines.push(text.get(4..).unwrap_or("").to_owned());
            if last {
                return Ok(Reply { code, lines });
            }
        }
    }
}

/// Which step of a transaction a refusal answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Mail,
    Rcpt,
    Data,
}

/// Append `message` as DATA content (RFC 5321 §4.5.2): a dot doubled at the start of each
/// line, a line ending added when missing, then the terminating `.` line.
pub(crate) fn dot_stuff(message: &[u8], out: &mut Vec<u8>) {
    out.reserve(message.len() + message.len() / 64 + 5);
    if message.first() == Some(&b'.') {
        out.push(b'.');
    }
    let mut start = 0;
    for i in memchr::memmem::find_iter(message, b"\n.") {
        out.extend_from_slice(&message[start..=i]);
        out.push(b'.');
        start = i + 1;
    }
    out.extend_from_slice(&message[start..]);
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        if message.ends_with(b"\r") {
            out.push(b'\n');
        } else {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b".\r\n");
}

/// A TLS connector that trusts the Web PKI's roots and `roots` (PEM), with the ring
/// provider named rather than taken from the process default: an application whose
/// dependencies enable two rustls providers would otherwise panic here.
pub(crate) fn connector(roots: &[Vec<u8>]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut store =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for pem in roots {
        // Validated by the builder.
        for cert in CertificateDer::pem_slice_iter(pem).flatten() {
            let _ = store.add(cert);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        dot_stuff(message, &mut out);
        out
    }

    #[test]
    fn dots_at_line_starts_are_doubled_and_the_message_terminated() {
        assert_eq!(stuffed(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(stuffed(b".start\r\nend"), b"..start\r\nend\r\n.\r\n");
        assert_eq!(stuffed(b"a.b\r\n"), b"a.b\r\n.\r\n");
        assert_eq!(stuffed(b"x\r\n.\r\n"), b"x\r\n..\r\n.\r\n");
        assert_eq!(stuffed(b""), b".\r\n");
    }

    #[test]
    fn extensions_are_read_from_the_ehlo_reply() {
        let reply = Reply {
            code: 250,
            lines: vec![
                "mx.example.com greets [127.0.0.1]".into(),
                "PIPELINING".into(),
                "SIZE 10240000".into(),
                "8BITMIME".into(),
                "auth login plain".into(),
                "STARTTLS".into(),
            ],
        };
        let ext = Extensions::parse(&reply);
        assert!(ext.pipelining && ext.eight_bit_mime && ext.starttls);
        assert!(ext.auth_plain && ext.auth_login && !ext.smtp_utf8);
        // The greeting line names no extension, even when it looks like one.
        let greeting_only = Reply {
            code: 250,
            lines: vec!["PIPELINING".into()],
        };
        assert!(!Extensions::parse(&greeting_only).pipelining);
    }

    #[test]
    fn replies_show_code_and_text() {
        let reply = Reply {
            code: 550,
            lines: vec!["5.1.1 <a@example.com>:".into(), "User unknown".into()],
        };
        assert_eq!(
            SmtpError::Reply(reply).to_string(),
            "permanent error: 550 5.1.1 <a@example.com>: User unknown"
        );
    }
}
