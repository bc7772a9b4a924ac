//! HTTP sources: a plain-text address (ipify, icanhazip, ifconfig.me) or Cloudflare's trace.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use super::{IpSource, MAX_ANSWER_BYTES, SourceError, parse_cloudflare_trace, parse_plain};
use crate::address::Family;

const USER_AGENT: &str = concat!(
    "ip-monitor/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/ip-monitor/ip-monitor)"
);

/// How an HTTP source's body carries the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFormat {
    /// The body is the address, maybe with surrounding whitespace.
    Plain,
    /// Cloudflare's `/cdn-cgi/trace`: `key=value` lines, the address on the `ip=` line.
    CloudflareTrace,
}

/// An IP source that asks an HTTP(S) endpoint.
///
/// The request for a family goes out from a socket bound to that family (`0.0.0.0` or `::`),
/// so a dual-stack service answers with the address of the family asked for. It follows at
/// most three redirects, never from HTTPS to plain HTTP (an answer that arrived in clear text
/// could have been rewritten on the way). At most [`MAX_ANSWER_BYTES`] of the body are read (a few KiB for a trace). TLS is rustls.
///
/// ```
/// use ip_monitor_core::HttpIpSource;
/// # fn main() -> Result<(), ip_monitor_core::SourceError> {
/// let ipify = HttpIpSource::ipify()?;
/// let own = HttpIpSource::builder("http://127.0.0.1:8080/ip").name("lan-echo").allow_non_global(true).build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HttpIpSource {
    name: String,
    url: reqwest::Url,
    format: AnswerFormat,
    allow_non_global: bool,
    timeout: Duration,
    /// The CA certificates trusted beside the system's roots.
    roots: Arc<[rustls::pki_types::CertificateDer<'static>]>,
    /// Each family's client, built when first used: a source that is never asked (a
    /// one-shot command given the address) costs nothing.
    v4: OnceLock<reqwest::Client>,
    v6: OnceLock<reqwest::Client>,
}

/// Builder for [`HttpIpSource`].
#[derive(Debug, Clone)]
pub struct HttpIpSourceBuilder {
    name: Option<String>,
    url: String,
    format: AnswerFormat,
    allow_non_global: bool,
    timeout: Duration,
    roots: Vec<Vec<u8>>,
}

impl HttpIpSource {
    /// Start building a source that asks `url`.
    pub fn builder(url: impl Into<String>) -> HttpIpSourceBuilder {
        HttpIpSourceBuilder {
            name: None,
            url: url.into(),
            format: AnswerFormat::Plain,
            allow_non_global: false,
            roots: Vec::new(),
            timeout: Duration::from_secs(5),
        }
    }

    /// `https://api64.ipify.org` (answers over both families).
    pub fn ipify() -> Result<Self, SourceError> {
        Self::builder("https://api64.ipify.org")
            .name("ipify")
            .build()
    }

    /// `https://icanhazip.com`.
    pub fn icanhazip() -> Result<Self, SourceError> {
        Self::builder("https://icanhazip.com")
            .name("icanhazip")
            .build()
    }

    /// `https://ifconfig.me/ip`.
    pub fn ifconfig_me() -> Result<Self, SourceError> {
        Self::builder("https://ifconfig.me/ip")
            .name("ifconfig.me")
            .build()
    }

    /// Cloudflare's trace at `https://one.one.one.one/cdn-cgi/trace`.
    pub fn cloudflare_trace() -> Result<Self, SourceError> {
        Self::builder("https://one.one.one.one/cdn-cgi/trace")
            .name("cloudflare-trace")
            .format(AnswerFormat::CloudflareTrace)
            .build()
    }

    /// The public services used when nothing else is configured: ipify, icanhazip and
    /// Cloudflare's trace, in that order (with the default quorum, two must agree).
    ///
    /// ```
    /// let sources = ip_monitor_core::HttpIpSource::public_defaults().unwrap();
    /// let names: Vec<_> = sources.iter().map(|s| s.name().to_owned()).collect();
    /// assert_eq!(names, ["ipify", "icanhazip", "cloudflare-trace"]);
    /// ```
    pub fn public_defaults() -> Result<Vec<std::sync::Arc<dyn IpSource>>, SourceError> {
        Ok(vec![
            std::sync::Arc::new(Self::ipify()?),
            std::sync::Arc::new(Self::icanhazip()?),
            std::sync::Arc::new(Self::cloudflare_trace()?),
        ])
    }

    /// The URL asked.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The family's client, built on first use.
    fn client(&self, family: Family) -> Result<&reqwest::Client, SourceError> {
        let cell = match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        };
        if let Some(client) = cell.get() {
            return Ok(client);
        }
        let client = client_builder(&self.roots, self.timeout)?
            .local_address(family.unspecified())
            .no_proxy()
            .redirect(redirects())
            .build()
            .map_err(|e| SourceError::Transport(Box::new(e)))?;
        Ok(cell.get_or_init(|| client))
    }

    async fn read_body(
        mut response: reqwest::Response,
        limit: usize,
    ) -> Result<Vec<u8>, SourceError> {
        if let Some(len) = response.content_length()
            && len > limit as u64
        {
            return Err(SourceError::TooLarge { limit });
        }
        let mut body = Vec::with_capacity(limit.min(1024));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| SourceError::Transport(Box::new(e.without_url())))?
        {
            if body.len() + chunk.len() > limit {
                return Err(SourceError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl HttpIpSourceBuilder {
    /// The name in logs and status (default: the URL's host).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How the body carries the address (default [`AnswerFormat::Plain`]).
    pub fn format(mut self, format: AnswerFormat) -> Self {
        self.format = format;
        self
    }

    /// Accept non-global answers (default false).
    pub fn allow_non_global(mut self, allow: bool) -> Self {
        self.allow_non_global = allow;
        self
    }

    /// Whole-request timeout of the HTTP client (default 5 s). The monitor also bounds each
    /// source by its own check timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Also trust the CA certificates in `pem` (e.g. a router's or a private service's CA),
    /// beside the public roots.
    pub fn add_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots.push(pem.into());
        self
    }

    /// Build the source. Fails when the URL is not an `http`/`https` URL with a host, or a
    /// certificate given to [`add_root_certificates`](Self::add_root_certificates) is invalid.
    pub fn build(self) -> Result<HttpIpSource, SourceError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            SourceError::Transport(format!("invalid URL {:?}: {e}", self.url).into())
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(SourceError::Transport(
                format!("URL {:?} must be http:// or https:// with a host", self.url).into(),
            ));
        }
        let mut roots = Vec::new();
        for pem in &self.roots {
            use rustls::pki_types::pem::PemObject;
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
                roots.push(cert.map_err(|e| {
                    SourceError::Transport(format!("invalid CA certificate: {e}").into())
                })?);
            }
        }
        Ok(HttpIpSource {
            name: self
                .name
                .unwrap_or_else(|| url.host_str().unwrap_or("http").to_owned()),
            roots: roots.into(),
            v4: OnceLock::new(),
            v6: OnceLock::new(),
            url,
            format: self.format,
            allow_non_global: self.allow_non_global,
            timeout: self.timeout,
        })
    }
}

#[async_trait]
impl IpSource for HttpIpSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn allow_non_global(&self) -> bool {
        self.allow_non_global
    }

    async fn fetch(&self, family: Family) -> Result<IpAddr, SourceError> {
        let response = self
            .client(family)?
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, "text/plain")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    SourceError::Timeout(self.timeout)
                } else {
                    SourceError::Transport(Box::new(e.without_url()))
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(SourceError::Status {
                status: status.as_u16(),
            });
        }
        match self.format {
            AnswerFormat::Plain => {
                let body = Self::read_body(response, MAX_ANSWER_BYTES).await?;
                parse_plain(&body, family)
            }
            AnswerFormat::CloudflareTrace => {
                let body = Self::read_body(response, MAX_ANSWER_BYTES * 8).await?;
                parse_cloudflare_trace(&body, family)
            }
        }
    }
}

/// What every HTTPS client of the crate has (the sources', the chat channels' and
/// Cloudflare's): the system's roots through the platform verifier and `extra` beside them,
/// the user agent, and `timeout` for connecting and for the whole request. Proxies and
/// redirects are each caller's choice.
pub(crate) fn client_builder(
    extra: &[rustls::pki_types::CertificateDer<'static>],
    timeout: std::time::Duration,
) -> Result<reqwest::ClientBuilder, SourceError> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(extra)?)
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(timeout))
}

/// The TLS configuration of a client: the system's roots through the platform verifier,
/// and `extra` beside them.
///
/// Sources trusting the same roots share one verifier for the whole process: a verifier
/// reads and parses every certificate of the system's store when it is made (milliseconds,
/// and a few hundred KiB kept), and each source has a client per family.
fn tls_config(
    extra: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<rustls::ClientConfig, SourceError> {
    use rustls_platform_verifier::Verifier;
    type Verifiers = Vec<(
        Vec<rustls::pki_types::CertificateDer<'static>>,
        Arc<Verifier>,
    )>;
    static VERIFIERS: std::sync::Mutex<Verifiers> = std::sync::Mutex::new(Vec::new());
    let tls_error = |e: rustls::Error| SourceError::Transport(format!("TLS: {e}").into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = {
        let mut verifiers = VERIFIERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match verifiers
            .iter()
            .find(|(roots, _)| roots.as_slice() == extra)
        {
            Some((_, v)) => Arc::clone(v),
            None => {
                let v = Arc::new(
                    Verifier::new_with_extra_roots(extra.iter().cloned(), Arc::clone(&provider))
                        .map_err(tls_error)?,
                );
                verifiers.push((extra.to_vec(), Arc::clone(&v)));
                v
            }
        }
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Follow at most three redirects, and none from HTTPS down to plain HTTP.
fn redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() != "https"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade {
            attempt.error("refused a redirect from HTTPS to plain HTTP")
        } else if attempt.previous().len() > 3 {
            attempt.error("more than 3 redirects")
        } else {
            attempt.follow()
        }
    })
}
