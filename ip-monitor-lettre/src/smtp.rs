//! [`SmtpNotifier`]: delivery through an SMTP server over a pool of sessions.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ip_monitor_core::{Notice, Notifier, NotifyError, Recipient, SendPermit, Sent};

pub use crate::transport::Tls;
use crate::transport::{Pool, SendError};

use crate::error::Error;
use crate::message::{MessageTemplate, SharedParts};
use crate::pacing::{HORIZON, Limits, Outcome, Pacer};
use crate::throttle::Throttle;

/// A password that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// A password given directly.
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    /// The password in environment variable `var`; an error names the variable.
    pub fn from_env(var: &str) -> Result<Self, Error> {
        std::env::var(var).map(Password).map_err(|_| Error::Config {
            key: "password_env",
            message: format!("environment variable {var} is not set (or not UTF-8)"),
        })
    }

    /// The first line of a file (e.g. a mounted secret); an error names the file.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Password(text.lines().next().unwrap_or_default().to_owned()))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The notice the shared parts were encoded for: its change, kind, URL and QR code.
type NoticeKey = (i64, bool, String, Option<Arc<[u8]>>);

/// The last notice's shared parts, and which notice they are for.
type SharedCache = Mutex<Option<(NoticeKey, Arc<SharedParts>)>>;

/// Delivers notices through an SMTP server: one message per recipient, over a pool of
/// sessions, with failures classified per recipient (a refusal of the recipient's mailbox is
/// permanent; the relay's own refusals, 4xx, network trouble and timeouts are transient).
///
/// It paces itself to the relay. A throttling answer (`421 4.7.0 too many connections`,
/// `450 4.7.1 too much mail`, `452 4.5.3`, `4.x.5`, a provider's quota text) is about the
/// route, not the recipient: the message waits inside the notifier and is tried again, with
/// fewer sessions after a refused session and a lower rate after a refused message, both
/// growing back while the relay accepts. A route held longer than a minute (a `5.4.5` daily
/// quota holds it for [`quota_retry`](SmtpNotifierBuilder::quota_retry)) answers
/// [`NotifyError::busy`]: the outbox defers the delivery without counting the attempt, and
/// a [`FallbackNotifier`](ip_monitor_core::FallbackNotifier) hands it to the next relay.
///
/// ```
/// use ip_monitor_lettre::{MessageTemplate, Password, SmtpNotifier, Tls};
/// # fn main() -> Result<(), ip_monitor_lettre::Error> {
/// let notifier = SmtpNotifier::builder("smtp.example.com")
///     .port(587)
///     .tls(Tls::StartTls)
///     .credentials("monitor", Password::new("s3cret"))
///     .template(MessageTemplate::new("IP Monitor <noreply@example.com>")?)
///     .build()?;
/// assert!(!format!("{notifier:?}").contains("s3cret"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SmtpNotifier {
    /// Clones share the pool.
    pool: Arc<Pool>,
    /// And the pace.
    pacer: Arc<Pacer>,
    /// The last notice's parts that every recipient gets the same, encoded once.
    shared: Arc<SharedCache>,
    template: MessageTemplate,
    host: String,
    port: u16,
    tls: Tls,
    username: Option<String>,
}

impl fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpNotifier")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.username.as_ref().map(|_| "***"))
            .field("template", &self.template)
            .finish()
    }
}

/// Builder for [`SmtpNotifier`].
#[derive(Debug, Clone)]
pub struct SmtpNotifierBuilder {
    host: String,
    port: Option<u16>,
    tls: Tls,
    credentials: Option<(String, Password)>,
    timeout: Duration,
    pool_size: u32,
    max_per_minute: Option<u32>,
    quota_retry: Duration,
    template: Option<MessageTemplate>,
    roots: Vec<Vec<u8>>,
}

impl SmtpNotifier {
    /// Start building a notifier for `host`.
    pub fn builder(host: impl Into<String>) -> SmtpNotifierBuilder {
        SmtpNotifierBuilder {
            host: host.into(),
            port: None,
            tls: Tls::StartTls,
            credentials: None,
            timeout: Duration::from_secs(30),
            pool_size: 8,
            max_per_minute: None,
            quota_retry: Duration::from_secs(3600),
            template: None,
            roots: Vec::new(),
        }
    }

    /// The relay's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The message template.
    pub fn template(&self) -> &MessageTemplate {
        &self.template
    }

    /// The notice's shared parts, from the cache when the notice is the last one's.
    fn shared_parts(&self, notice: &Notice) -> Result<Arc<SharedParts>, Error> {
        let mut cached = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(((change_id, test, url, png), parts)) = &*cached
            && (*change_id, *test, url.as_str(), png)
                == (
                    notice.change_id,
                    notice.test,
                    notice.url.as_str(),
                    &notice.qr_png,
                )
        {
            return Ok(Arc::clone(parts));
        }
        let parts = Arc::new(self.template.shared_parts(notice)?);
        let key = (
            notice.change_id,
            notice.test,
            notice.url.clone(),
            notice.qr_png.clone(),
        );
        *cached = Some((key, Arc::clone(&parts)));
        Ok(parts)
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl SmtpNotifierBuilder {
    /// The port (default: 587 for STARTTLS, 465 for TLS, 25 without).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// How the connection is secured (default STARTTLS).
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Log in with these credentials.
    pub fn credentials(mut self, username: impl Into<String>, password: Password) -> Self {
        self.credentials = Some((username.into(), password));
        self
    }

    /// Timeout of each SMTP command (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Most connections kept open (default 8; match the delivery parallelism). The
    /// notifier opens fewer when the relay refuses sessions.
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// At most this many messages a minute, for a relay whose limit is known (default: no
    /// fixed cap; the rate is learnt from the relay's throttling answers). 0 means no cap.
    pub fn max_per_minute(mut self, messages: u32) -> Self {
        self.max_per_minute = (messages > 0).then_some(messages);
        self
    }

    /// How long a sending-quota answer (`550 5.4.5 Daily user sending limit exceeded`)
    /// holds the relay's messages before one is tried again (default 1 h). The deliveries
    /// are deferred, not failed, until the outbox's `give_up_after`.
    pub fn quota_retry(mut self, wait: Duration) -> Self {
        self.quota_retry = wait;
        self
    }

    /// Also trust the certificate authorities in `pem` (e.g. a company CA), besides the
    /// public web PKI roots. Checked by [`build`](Self::build).
    pub fn add_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots.push(pem.into());
        self
    }

    /// The From: address and the words (required).
    pub fn template(mut self, template: MessageTemplate) -> Self {
        self.template = Some(template);
        self
    }

    /// Build the notifier. Refuses credentials over [`Tls::None`] to a host that is not
    /// loopback.
    pub fn build(self) -> Result<SmtpNotifier, Error> {
        let host = self.host.trim().to_owned();
        if host.is_empty() {
            return Err(Error::Config {
                key: "host",
                message: "the SMTP host is empty".to_owned(),
            });
        }
        if self.tls == Tls::None && self.credentials.is_some() && !is_loopback(&host) {
            return Err(Error::InsecureCredentials { host });
        }
        let template = self.template.ok_or(Error::Config {
            key: "from",
            message: "a From: address is required".to_owned(),
        })?;
        let port = self.port.unwrap_or(match self.tls {
            Tls::StartTls => 587,
            Tls::Wrapper => 465,
            Tls::None => 25,
        });
        let username = self.credentials.as_ref().map(|(u, _)| u.clone());
        let credentials = self
            .credentials
            .map(|(user, Password(password))| (user, password));
        for pem in &self.roots {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
            if !certs.is_ok_and(|c| !c.is_empty()) {
                return Err(Error::Config {
                    key: "root_certificates",
                    message: "expected PEM certificates (-----BEGIN CERTIFICATE-----)".to_owned(),
                });
            }
        }
        let pool = Pool::new(
            host.clone(),
            port,
            self.tls,
            credentials,
            self.timeout,
            self.pool_size,
            &self.roots,
        );
        let pacer = Pacer::new(Limits {
            sessions: self.pool_size as usize,
            per_minute: self.max_per_minute,
            quota_retry: self.quota_retry,
        });
        Ok(SmtpNotifier {
            pool: Arc::new(pool),
            pacer: Arc::new(pacer),
            shared: Arc::default(),
            template,
            host,
            port,
            tls: self.tls,
            username,
        })
    }
}

/// Classify a failure: only a 5xx refusal of the recipient's mailbox is permanent. 4xx
/// replies, network errors, TLS trouble, timeouts, any failure setting up the session (a
/// wrong password, a server without STARTTLS) and refusals of the sender or by relay policy
/// are transient, so fixing the relay or the configuration still delivers what is pending.
///
/// A failure before anything was said about the recipient — the relay unreachable, the
/// session refused, the sender refused — is a failure of the route
/// ([`NotifyError::route`]): a [`FallbackNotifier`](ip_monitor_core::FallbackNotifier)
/// hands the message to its next relay at once.
fn classify(error: SendError) -> NotifyError {
    if matches!(error, SendError::Withheld) {
        NotifyError::withheld()
    } else if error.is_permanent() {
        NotifyError::permanent(error)
    } else if error.is_route_failure() {
        NotifyError::route(error)
    } else {
        NotifyError::transient(error)
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    /// The permit is checked once more after the relay accepted the envelope, right before
    /// the message: a process that froze while connecting wakes up and sends nothing.
    async fn send(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
        permit.check()?;
        let shared = self.shared_parts(notice)?;
        let message = self.template.build_with(notice, recipient, &shared)?;
        let formatted = self.template.bytes(&message);
        let throttled_since = tokio::time::Instant::now();
        let mut last: Option<SendError> = None;
        loop {
            let ticket = match self.pacer.admit().await {
                Ok(ticket) => ticket,
                Err(held) => return Err(busy(held, last)),
            };
            permit.check()?;
            let error = match self.pool.send(message.envelope(), &formatted, permit).await {
                Ok(()) => {
                    ticket.finish(Outcome::Accepted);
                    return Ok(Sent::direct());
                }
                Err(e) => e,
            };
            let Some(throttle) = error.throttle() else {
                ticket.finish(Outcome::Other);
                return Err(classify(error));
            };
            ticket.finish(Outcome::Throttled(throttle));
            if throttle == Throttle::Quota {
                return Err(NotifyError::busy(self.pacer.limits().quota_retry, error));
            }
            if throttled_since.elapsed() > HORIZON {
                return Err(busy(HORIZON, Some(error)));
            }
            last = Some(error);
        }
    }
}

/// The relay holds the route: defer for `held`, with what it last said.
fn busy(held: Duration, last: Option<SendError>) -> NotifyError {
    match last {
        Some(e) => NotifyError::busy(held, e),
        None => NotifyError::busy(
            held,
            format!("the relay is throttling this route for {held:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> MessageTemplate {
        MessageTemplate::new("IP Monitor <noreply@example.com>").unwrap()
    }

    #[test]
    fn credentials_in_plain_text_only_to_loopback() {
        let plain = |host: &str| {
            SmtpNotifier::builder(host)
                .tls(Tls::None)
                .credentials("u", Password::new("p"))
                .template(template())
                .build()
        };
        assert!(matches!(
            plain("smtp.example.com"),
            Err(Error::InsecureCredentials { .. })
        ));
        assert!(matches!(
            plain("192.168.1.5"),
            Err(Error::InsecureCredentials { .. })
        ));
        assert!(plain("127.0.0.1").is_ok());
        assert!(plain("localhost").is_ok());
        assert!(plain("::1").is_ok());
        let anonymous = SmtpNotifier::builder("smtp.example.com")
            .tls(Tls::None)
            .template(template())
            .build();
        assert!(anonymous.is_ok(), "no credentials, nothing to leak");
    }

    #[test]
    fn passwords_are_redacted() {
        let n = SmtpNotifier::builder("smtp.example.com")
            .credentials("monitor", Password::new("hunter2-very-secret"))
            .template(template())
            .build()
            .unwrap();
        let debug = format!("{n:?} {:?}", Password::new("hunter2-very-secret"));
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(matches!(
            Password::from_env("IP_MONITOR_TEST_SURELY_UNSET_VAR"),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            "ssl".parse::<Tls>(),
            Err(Error::Config { key: "tls", .. })
        ));
    }

    #[test]
    fn a_from_address_is_required() {
        assert!(matches!(
            SmtpNotifier::builder("h").build(),
            Err(Error::Config { key: "from", .. })
        ));
        assert!(matches!(
            MessageTemplate::new("not a mailbox"),
            Err(Error::Config { key: "from", .. })
        ));
    }
}
