//! Ways to learn this host's address: the [`IpSource`] trait, answer validation and the
//! built-in sources.

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::address::{Family, Scope, is_global};

#[cfg(all(feature = "command", unix))]
mod command;
#[cfg(feature = "dns")]
mod dns;
#[cfg(feature = "http")]
mod http;
#[cfg(all(feature = "interfaces", target_os = "linux"))]
mod interface;
mod local;
#[cfg(feature = "router")]
mod router;
pub mod set;
#[cfg(feature = "upnp")]
mod upnp;

#[cfg(all(feature = "command", unix))]
pub use command::CommandIpSource;
#[cfg(feature = "dns")]
pub use dns::{DnsIpSource, DnsQuery};
#[cfg(any(
    feature = "chat",
    feature = "cloudflare",
    feature = "upnp",
    feature = "alidns",
    feature = "dnspod",
    feature = "huaweicloud"
))]
pub(crate) use http::client_builder;
#[cfg(feature = "http")]
pub use http::{AnswerFormat, HttpIpSource, HttpIpSourceBuilder};
#[cfg(all(feature = "interfaces", target_os = "linux"))]
pub use interface::InterfaceSource;
pub use local::LocalInterfaceSource;
#[cfg(feature = "router")]
pub use router::{RouterProtocol, RouterSource, RouterWatch};
pub use set::{CheckError, CheckOutcome, SourceReport, SourceSet, Strategy};
#[cfg(feature = "upnp")]
pub use upnp::UpnpSource;

/// The most bytes of an answer that are read; a longer answer is an error.
pub const MAX_ANSWER_BYTES: usize = 256;

/// One way to learn this host's address for a family.
///
/// Implementations only fetch; the monitor validates every answer with [`validate_answer`]
/// (family, and a global address for [`Scope::Public`] sources), so a custom source cannot
/// slip a garbage or private address into the record.
///
/// ```
/// use async_trait::async_trait;
/// use ip_monitor_core::{Family, IpSource, SourceError};
/// use std::net::IpAddr;
///
/// /// Reads the address from a router's status page (here: a fixed answer).
/// #[derive(Debug)]
/// struct RouterPage;
///
/// #[async_trait]
/// impl IpSource for RouterPage {
///     fn name(&self) -> &str { "router" }
///     async fn fetch(&self, family: Family) -> Result<IpAddr, SourceError> {
///         match family {
///             Family::V4 => Ok("81.2.69.160".parse().unwrap()),
///             Family::V6 => Err(SourceError::Unsupported { family }),
///         }
///     }
/// }
/// ```
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait IpSource: Send + Sync + Debug {
    /// A short name for logs and status (`ipify`, `opendns`, ...).
    fn name(&self) -> &str;

    /// Whether the answers are public (the default) or local interface addresses.
    fn scope(&self) -> Scope {
        Scope::Public
    }

    /// Accept non-global answers from a [`Scope::Public`] source (e.g. a test service on the
    /// LAN). Off by default.
    fn allow_non_global(&self) -> bool {
        false
    }

    /// Ask once for this host's address of `family`.
    async fn fetch(&self, family: Family) -> Result<IpAddr, SourceError>;
}

// Every method forwarded, the provided ones too (a missing one is a clippy error).
macro_rules! forward_ip_source {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<T: IpSource + ?Sized> IpSource for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn scope(&self) -> Scope {
                (**self).scope()
            }
            fn allow_non_global(&self) -> bool {
                (**self).allow_non_global()
            }
            async fn fetch(&self, family: Family) -> Result<IpAddr, SourceError> {
                (**self).fetch(family).await
            }
        }
    };
}
forward_ip_source!(Arc<T>);
forward_ip_source!(Box<T>);

/// Why a source gave no usable address.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No answer within the source's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server answered with an HTTP error status.
    #[error("HTTP status {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// The request could not be made or the connection failed.
    #[error("request failed: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The answer was longer than [`MAX_ANSWER_BYTES`].
    #[error("answer longer than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The answer is not an IP address.
    #[error("answer is not an IP address: {answer:?}")]
    Invalid {
        /// The start of the answer, lossily decoded.
        answer: String,
    },
    /// The answer is an address of the other family.
    #[error("asked for an {expected} address, got {got}")]
    WrongFamily {
        /// The family that was asked for.
        expected: Family,
        /// The address that came back.
        got: IpAddr,
    },
    /// A public source answered with an address that is not global (private, loopback,
    /// CGNAT, documentation, ...).
    #[error("{addr} is not a global address")]
    NonGlobal {
        /// The address that came back.
        addr: IpAddr,
    },
    /// This source cannot answer for this family.
    #[error("this source does not support {family}")]
    Unsupported {
        /// The family that was asked for.
        family: Family,
    },
    /// The DNS server answered with an error code or without a usable record.
    #[error("DNS: {0}")]
    Dns(#[source] DnsProblem),
    /// The interface has no address to publish (none, or only temporary, deprecated,
    /// tentative or non-global ones): what it has and why each was skipped.
    #[error("{0}")]
    NoAddress(String),
    /// The program of a command source could not run, exited with an error (the end of
    /// its stderr), or was killed.
    #[error("{0}")]
    Command(String),
    /// The router refused in a way asking again will not change (it does not speak the
    /// protocol, or does not authorize this host), in its own words.
    #[error("{0}")]
    Router(String),
}

/// What went wrong in a DNS exchange, as a value: [`SourceError::is_transient`] reads it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsProblem {
    /// The question could not be encoded (a configuration problem: not transient).
    #[error("the question could not be encoded: {0}")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The answer had another opcode than the question.
    #[error("unexpected opcode in answer")]
    Opcode,
    /// The answer was truncated (no TCP retry: the records asked for are tiny).
    #[error("answer truncated")]
    Truncated,
    /// The server answered with this response code (SERVFAIL, REFUSED, NXDOMAIN, ...).
    #[error("server answered {0}")]
    ResponseCode(String),
    /// The answer held no record of the type asked for.
    #[error("no usable record in the answer")]
    NoRecord,
    /// The kernel has no route to the target (the local interface source).
    #[error("no route to the target")]
    NoRoute,
}

impl DnsProblem {
    /// Whether asking again may help: everything but a question that cannot be encoded.
    pub fn is_transient(&self) -> bool {
        !matches!(self, DnsProblem::Encode(_))
    }
}

impl SourceError {
    /// A [`SourceError::Invalid`] quoting at most the first 64 characters of `body`.
    pub fn invalid(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let answer: String = text.chars().take(64).collect();
        SourceError::Invalid { answer }
    }

    /// Whether asking again later may give a good answer: timeouts, connection failures,
    /// 5xx and 429 replies, DNS trouble. A garbage, wrong-family or non-global answer, a 4xx
    /// reply or an unsupported family says the source (or its configuration) is wrong.
    ///
    /// ```
    /// use ip_monitor_core::SourceError;
    /// use std::time::Duration;
    /// assert!(SourceError::Timeout(Duration::from_secs(5)).is_transient());
    /// assert!(SourceError::Status { status: 503 }.is_transient());
    /// assert!(!SourceError::Status { status: 404 }.is_transient());
    /// assert!(!SourceError::invalid(b"<html>").is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            // An address may come (the link comes up, duplicate detection ends); a program
            // may succeed next time (its router was rebooting).
            SourceError::Timeout(_)
            | SourceError::Transport(_)
            | SourceError::NoAddress(_)
            | SourceError::Command(_) => true,
            SourceError::Dns(problem) => problem.is_transient(),
            SourceError::Status { status } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// Parse a plain-text answer: at most [`MAX_ANSWER_BYTES`], surrounding whitespace trimmed,
/// one IP address of `family`.
///
/// ```
/// use ip_monitor_core::{Family, source::parse_plain};
/// assert_eq!(parse_plain(b"81.2.69.160\n", Family::V4).unwrap().to_string(), "81.2.69.160");
/// assert!(parse_plain(b"<html>", Family::V4).is_err());
/// assert!(parse_plain(b"2001:db8::1", Family::V4).is_err());
/// ```
pub fn parse_plain(body: &[u8], family: Family) -> Result<IpAddr, SourceError> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(SourceError::TooLarge {
            limit: MAX_ANSWER_BYTES,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| SourceError::invalid(body))?;
    let addr: IpAddr = text
        .trim()
        .parse()
        .map_err(|_| SourceError::invalid(body))?;
    check_family(addr, family)
}

/// Parse a Cloudflare trace answer (`key=value` lines) and take its `ip=` line.
///
/// ```
/// use ip_monitor_core::{Family, source::parse_cloudflare_trace};
/// let body = b"fl=1\nh=one.one.one.one\nip=81.2.69.160\nts=1.2\n";
/// assert_eq!(parse_cloudflare_trace(body, Family::V4).unwrap().to_string(), "81.2.69.160");
/// ```
pub fn parse_cloudflare_trace(body: &[u8], family: Family) -> Result<IpAddr, SourceError> {
    if body.len() > MAX_ANSWER_BYTES * 8 {
        return Err(SourceError::TooLarge {
            limit: MAX_ANSWER_BYTES * 8,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| SourceError::invalid(body))?;
    let value = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("ip="))
        .ok_or_else(|| SourceError::invalid(body))?;
    parse_plain(value.as_bytes(), family)
}

fn check_family(addr: IpAddr, family: Family) -> Result<IpAddr, SourceError> {
    if Family::of(&addr) == family {
        Ok(addr)
    } else {
        Err(SourceError::WrongFamily {
            expected: family,
            got: addr,
        })
    }
}

/// Validate an answer as DESIGN's rules say: the asked family, and for public-scope sources a
/// global address unless `allow_non_global`.
///
/// ```
/// use ip_monitor_core::{Family, Scope, source::validate_answer};
/// let private = "10.0.0.7".parse().unwrap();
/// assert!(validate_answer(private, Family::V4, Scope::Public, false).is_err());
/// assert!(validate_answer(private, Family::V4, Scope::Local, false).is_ok());
/// assert!(validate_answer(private, Family::V4, Scope::Public, true).is_ok());
/// ```
pub fn validate_answer(
    addr: IpAddr,
    family: Family,
    scope: Scope,
    allow_non_global: bool,
) -> Result<IpAddr, SourceError> {
    let addr = check_family(addr, family)?;
    if scope == Scope::Public && !allow_non_global && !is_global(addr) {
        return Err(SourceError::NonGlobal { addr });
    }
    Ok(addr)
}

/// A source whose answers are set by hand: for tests, demos, and hosts whose address is
/// known from elsewhere. Answers can be changed while a monitor runs, and calls are counted.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{Family, IpSource, StaticIpSource};
/// let source = StaticIpSource::new("fixed").with_answer("81.2.69.160".parse().unwrap());
/// assert_eq!(source.fetch(Family::V4).await.unwrap().to_string(), "81.2.69.160");
/// source.set_failure(Family::V4, "down for maintenance");
/// assert!(source.fetch(Family::V4).await.is_err());
/// assert_eq!(source.calls(), 2);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct StaticIpSource {
    inner: Arc<StaticInner>,
}

#[derive(Debug)]
struct StaticInner {
    name: String,
    scope: Scope,
    answers: Mutex<HashMap<Family, Result<IpAddr, String>>>,
    delay: Mutex<Option<Duration>>,
    calls: AtomicUsize,
}

impl StaticIpSource {
    /// A public-scope source with no answers yet (every fetch fails until one is set).
    pub fn new(name: impl Into<String>) -> Self {
        StaticIpSource {
            inner: Arc::new(StaticInner {
                name: name.into(),
                scope: Scope::Public,
                answers: Mutex::new(HashMap::new()),
                delay: Mutex::new(None),
                calls: AtomicUsize::new(0),
            }),
        }
    }

    /// The same source, reporting local-scope answers.
    pub fn local(name: impl Into<String>) -> Self {
        let mut s = Self::new(name);
        Arc::get_mut(&mut s.inner).expect("fresh").scope = Scope::Local;
        s
    }

    /// Builder form of [`set`](Self::set).
    pub fn with_answer(self, addr: IpAddr) -> Self {
        self.set(addr);
        self
    }

    /// Builder form of [`set_delay`](Self::set_delay).
    pub fn with_delay(self, delay: Duration) -> Self {
        self.set_delay(Some(delay));
        self
    }

    /// Answer `addr` for its family from now on.
    pub fn set(&self, addr: IpAddr) {
        self.lock_answers().insert(Family::of(&addr), Ok(addr));
    }

    /// Fail with `message` for `family` from now on.
    pub fn set_failure(&self, family: Family, message: impl Into<String>) {
        self.lock_answers().insert(family, Err(message.into()));
    }

    /// Wait this long before answering (`None`: answer at once).
    pub fn set_delay(&self, delay: Option<Duration>) {
        *self.inner.delay.lock().unwrap_or_else(|e| e.into_inner()) = delay;
    }

    /// How many times [`fetch`](IpSource::fetch) was called.
    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    fn lock_answers(&self) -> std::sync::MutexGuard<'_, HashMap<Family, Result<IpAddr, String>>> {
        self.inner.answers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl IpSource for StaticIpSource {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn scope(&self) -> Scope {
        self.inner.scope
    }

    async fn fetch(&self, family: Family) -> Result<IpAddr, SourceError> {
        self.inner.calls.fetch_add(1, Ordering::SeqCst);
        let delay = *self.inner.delay.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        match self.lock_answers().get(&family) {
            Some(Ok(addr)) => Ok(*addr),
            Some(Err(message)) => Err(SourceError::Transport(message.clone().into())),
            None => Err(SourceError::Unsupported { family }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_answers() {
        assert_eq!(
            parse_plain(b"  2606:4700:4700::1111\r\n", Family::V6).unwrap(),
            "2606:4700:4700::1111".parse::<IpAddr>().unwrap()
        );
        assert!(matches!(
            parse_plain(b"81.2.69.160", Family::V6),
            Err(SourceError::WrongFamily { .. })
        ));
        assert!(matches!(
            parse_plain(b"<html><body>81.2.69.160</body></html>", Family::V4),
            Err(SourceError::Invalid { .. })
        ));
        assert!(matches!(
            parse_plain(&[b'1'; 300], Family::V4),
            Err(SourceError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_plain(&[0xff, 0xfe, b'1'], Family::V4),
            Err(SourceError::Invalid { .. })
        ));
        assert!(parse_plain(b"", Family::V4).is_err());
        assert!(parse_plain(b"81.2.69.160 81.2.69.161", Family::V4).is_err());
    }

    #[test]
    fn trace_answers() {
        assert!(parse_cloudflare_trace(b"fl=1\nh=x\n", Family::V4).is_err());
        assert!(parse_cloudflare_trace(b"ip=garbage\n", Family::V4).is_err());
        assert_eq!(
            parse_cloudflare_trace(b"visit_scheme=https\nip=2a00:1450::1\n", Family::V6)
                .unwrap()
                .to_string(),
            "2a00:1450::1"
        );
    }

    #[test]
    fn invalid_quotes_at_most_64_chars() {
        match SourceError::invalid(&[b'x'; 200]) {
            SourceError::Invalid { answer } => assert_eq!(answer.len(), 64),
            other => panic!("{other:?}"),
        }
    }
}
