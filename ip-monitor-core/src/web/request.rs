//! [`Request`] and [`Response`]: as much of HTTP as the surface reads and writes, for any
//! server; and the form decoding of the page's buttons.

/// An HTTP request, as much of it as the surface reads.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `HEAD` or `POST`.
    pub method: &'a str,
    /// The path below the mount point, starting with `/`; a query is ignored.
    pub path: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The `Accept` header, if any.
    pub accept: Option<&'a str>,
    /// The body (a form, for the page's buttons).
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// A `GET` of `path`.
    pub fn get(path: &'a str) -> Self {
        Request {
            method: "GET",
            path,
            authorization: None,
            content_type: None,
            accept: None,
            body: b"",
        }
    }

    /// A form `POST` of `body` (`application/x-www-form-urlencoded`) to `path`.
    pub fn post(path: &'a str, body: &'a [u8]) -> Self {
        Request {
            method: "POST",
            path,
            authorization: None,
            content_type: Some("application/x-www-form-urlencoded"),
            accept: None,
            body,
        }
    }

    /// The same request with an `Authorization` header.
    pub fn authorization(mut self, value: &'a str) -> Self {
        self.authorization = Some(value);
        self
    }

    pub(super) fn wants_json(&self) -> bool {
        self.accept.is_some_and(|a| a.contains("application/json"))
    }

    pub(super) fn is_form(&self) -> bool {
        self.content_type.is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/x-www-form-urlencoded")
        })
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// Other headers (`Allow`, `WWW-Authenticate`, `Cache-Control`, the
    /// [`SECURITY_HEADERS`]).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The headers every answer carries: the page may not be framed (clickjacking), loads
/// nothing from elsewhere and runs no script, its forms post only to itself, and no answer is
/// sniffed into another type. A server that answers requests of its own before the
/// [`Dashboard`](super::Dashboard) (a refusal, a timeout) sends them too.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("X-Frame-Options", "DENY"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
         frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
];

impl Response {
    pub(super) fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        let mut headers = vec![("Cache-Control", "no-store".to_owned())];
        headers.extend(SECURITY_HEADERS.iter().map(|(n, v)| (*n, (*v).to_owned())));
        Response {
            status,
            content_type,
            headers,
            body: body.into(),
        }
    }

    pub(super) fn text(status: u16, body: impl Into<String>) -> Self {
        let mut body = body.into();
        body.push('\n');
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    pub(super) fn html(status: u16, body: String) -> Self {
        Response::new(status, "text/html; charset=utf-8", body)
    }

    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// The value of `name` in an `application/x-www-form-urlencoded` body.
pub(super) fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == name)
            .then(|| percent_decode(v))
            .flatten()
    })
}

fn percent_decode(v: &str) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let mut bytes = v.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(
            form_field(b"a=1&token=s%2F3+c", "token").as_deref(),
            Some("s/3 c")
        );
        assert_eq!(form_field(b"token", "token").as_deref(), Some(""));
        assert_eq!(form_field(b"tok=1", "token"), None);
        assert_eq!(form_field(b"token=%zz", "token"), None);
    }
}
