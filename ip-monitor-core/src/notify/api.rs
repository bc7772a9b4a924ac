//! What the notifiers that call web APIs share (the chat channels, the DNS providers' APIs): the HTTPS
//! client, the classification of a failed request, query encoding.

use std::time::Duration;

use crate::error::InvalidSetting;
use crate::notify::NotifyError;

/// An HTTPS client trusting the platform's roots, following no redirect, giving up after
/// `timeout`: the sources' client builder, with their TLS set-up.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, InvalidSetting> {
    let unusable =
        |e| InvalidSetting::new("timeout", "no HTTPS client could be built").with_source(e);
    crate::source::client_builder(&[], timeout)
        .map_err(|e| unusable(Box::new(e)))?
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| unusable(Box::new(e)))
}

/// Check that a URL that carries a secret (a bot's URL, or the base of an API its token is
/// sent to) keeps it off the wire: `https`, or `http` only to a loopback host (a local
/// proxy or test server). `field` names the setting in the error.
///
/// ```
/// use ip_monitor_core::notify::check_secret_transport;
/// assert!(check_secret_transport("https://api.example.com/v4", "api_base").is_ok());
/// assert!(check_secret_transport("http://127.0.0.1:8080/hook", "url").is_ok());
/// let err = check_secret_transport("http://api.example.com/v4", "api_base").unwrap_err();
/// assert_eq!(err.field(), "api_base");
/// ```
pub fn check_secret_transport(url: &str, field: &'static str) -> Result<(), InvalidSetting> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| InvalidSetting::new(field, format!("not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = match bare.parse::<std::net::IpAddr>() {
                Ok(ip) => ip.is_loopback(),
                Err(_) => host.eq_ignore_ascii_case("localhost"),
            };
            if loopback {
                Ok(())
            } else {
                Err(InvalidSetting::new(
                    field,
                    "http:// would send the secret in clear text: use https:// \
                     (http is accepted only to a loopback address)",
                ))
            }
        }
        other => Err(InvalidSetting::new(
            field,
            format!("{other}: the URL must be https"),
        )),
    }
}

/// A request that got no answer: the service unreachable is a failure of the route, any
/// other a transient one. The URL is left out (a bot's URL holds its key).
pub(crate) fn request_failed(e: reqwest::Error) -> NotifyError {
    let e = e.without_url();
    if e.is_connect() {
        NotifyError::route(e)
    } else {
        NotifyError::transient(e)
    }
}

/// The most of a reply that is read: a service's answer is a few hundred bytes, and a
/// reply without end must not hold the delivery (or the memory) for its whole timeout.
pub(crate) const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Send `request` and read its reply: the status and at most [`MAX_REPLY_BYTES`] of the
/// body, as text (lossily). A request that got no answer is [`request_failed`]; a body cut
/// short by the connection is transient.
pub(crate) async fn exchange(
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, String), NotifyError> {
    let reply = exchange_full(request).await?;
    Ok((reply.status, reply.text))
}

/// A reply as [`exchange_full`] reads it.
#[cfg_attr(not(feature = "push"), allow(dead_code))]
pub(crate) struct Reply {
    pub(crate) status: reqwest::StatusCode,
    /// The `Retry-After` header, in seconds, when it is a number.
    pub(crate) retry_after: Option<Duration>,
    pub(crate) text: String,
}

/// [`exchange`], with the `Retry-After` header of the reply.
pub(crate) async fn exchange_full(request: reqwest::RequestBuilder) -> Result<Reply, NotifyError> {
    let mut response = request.send().await.map_err(request_failed)?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)));
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| NotifyError::transient(e.without_url()))?
    {
        let room = MAX_REPLY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_REPLY_BYTES {
            break;
        }
    }
    Ok(Reply {
        status,
        retry_after,
        text: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Lower-case hex of `bytes` (signatures and digests).
#[cfg(any(
    feature = "chat",
    feature = "alidns",
    feature = "dnspod",
    feature = "huaweicloud"
))]
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 of `data` under `key`.
#[cfg(any(
    feature = "chat",
    feature = "alidns",
    feature = "dnspod",
    feature = "huaweicloud"
))]
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, data).as_ref().to_vec()
}

/// Percent-encoding of a query value (RFC 3986 unreserved characters kept).
#[cfg_attr(
    not(any(
        feature = "chat",
        feature = "cloudflare",
        feature = "alidns",
        feature = "huaweicloud"
    )),
    allow(dead_code)
)]
pub(crate) fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}
