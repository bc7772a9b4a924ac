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

/// Percent-encoding of a query value (RFC 3986 unreserved characters kept).
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
