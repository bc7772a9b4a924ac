//! What the surface shows of an error: to anyone, its class only (a relay's reply code, a
//! timeout, a refused connection); to a reader with the token, its text with mail addresses
//! and URL credentials masked. Relay replies name staff (`<bob@corp.example>: Recipient
//! address rejected`) and source errors may carry a URL with its `?token=`.

use super::report::StatusReport;
use crate::store::InstanceStatus;

/// Who reads the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reader {
    /// Anyone who reaches the server.
    Public,
    /// A request that carried the token.
    Operator,
}

/// An error's `text` as `reader` may see it.
pub(super) fn text(text: &str, reader: Reader) -> String {
    match reader {
        Reader::Public => class(text),
        Reader::Operator => masked(text),
    }
}

/// Rewrite every error text in `report` for `reader`.
pub(super) fn for_reader(report: &mut StatusReport, reader: Reader) {
    if let Some(main) = report.main.as_mut() {
        for_status(main, reader);
    }
}

/// Rewrite every error text in one instance's `status` for `reader`.
pub(super) fn for_status(status: &mut InstanceStatus, reader: Reader) {
    let show = |t: &mut String| *t = text(t, reader);
    status.last_error.iter_mut().for_each(show);
    status.delivery_error.iter_mut().for_each(show);
    for source in &mut status.sources {
        source.error.iter_mut().for_each(show);
    }
}

/// The class of an error, with nothing of its text: an SMTP reply's codes, or what kind of
/// failure it was.
pub(super) fn class(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if let Some(codes) = smtp_codes(text) {
        return format!("the relay answered {codes} (the token shows more)");
    }
    let kind = if lower.contains("timed out")
        || lower.contains("timeout")
        || lower.contains("no answer within")
    {
        "a timeout"
    } else if lower.contains("connection refused") || lower.contains("connect") {
        "a connection failure"
    } else if lower.contains("tls") || lower.contains("certificate") {
        "a TLS failure"
    } else if lower.contains("dns") || lower.contains("resolve") || lower.contains("lookup") {
        "a name resolution failure"
    } else if lower.contains("disagree") || lower.contains("quorum") {
        "sources that disagree"
    } else if lower.contains("not a global")
        || lower.contains("invalid")
        || lower.contains("garbage")
    {
        "an answer that is not a usable address"
    } else if lower.contains("http ") || lower.contains("status") {
        "an HTTP error"
    } else {
        "an error"
    };
    format!("{kind} (the token shows more)")
}

/// The first SMTP reply code in `text` and its enhanced status code if one follows
/// (`450 4.2.0`).
fn smtp_codes(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | '(' | ')' | '-'))
        .filter(|w| !w.is_empty())
        .collect();
    let is_reply = |w: &str| {
        w.len() == 3
            && matches!(w.as_bytes()[0], b'4' | b'5')
            && w.bytes().all(|b| b.is_ascii_digit())
    };
    let is_enhanced = |w: &str| {
        let parts: Vec<&str> = w.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "4" | "5")
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let at = words.iter().position(|w| is_reply(w))?;
    Some(match words.get(at + 1) {
        Some(e) if is_enhanced(e) => format!("{} {e}", words[at]),
        _ => words[at].to_owned(),
    })
}

/// `text` with the local part of every mail address, the userinfo of every URL and the
/// values of every URL query replaced by `…`.
pub(super) fn masked(text: &str) -> String {
    let local = |c: char| c.is_ascii_alphanumeric() || "._%+-!#$&'*/=?^`{|}~".contains(c);
    let domain = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        // A URL: keep the scheme and host, mask the userinfo and the query's values.
        if let Some(end) = url_at(&chars, i) {
            out.push_str(&masked_url(&chars[i..end].iter().collect::<String>()));
            i = end;
            continue;
        }
        if chars[i] == '@' {
            // Take back the local part already copied.
            let mut start = out.len();
            for (at, c) in out.char_indices().rev() {
                if local(c) {
                    start = at;
                } else {
                    break;
                }
            }
            let has_domain = chars.get(i + 1).is_some_and(|c| domain(*c));
            if start < out.len() && has_domain {
                out.truncate(start);
                out.push('…');
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Where the URL starting at `i` ends, if one does (`scheme://`).
fn url_at(chars: &[char], i: usize) -> Option<usize> {
    let starts_word = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
    if !starts_word || !chars[i].is_ascii_alphabetic() {
        return None;
    }
    let mut j = i;
    while j < chars.len() && (chars[j].is_ascii_alphanumeric() || "+.-".contains(chars[j])) {
        j += 1;
    }
    if chars.get(j..j + 3)? != [':', '/', '/'] {
        return None;
    }
    let mut end = j + 3;
    while end < chars.len() && !chars[end].is_whitespace() && !"\"'<>()".contains(chars[end]) {
        end += 1;
    }
    Some(end)
}

fn masked_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => format!("…@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    let mut out = format!("{scheme}://{host}{path}");
    if let Some(query) = query {
        let query = query.split('#').next().unwrap_or("");
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}=…"),
                None => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELAY: &str =
        "SMTP: 450 4.2.0 <bob.smith@corp.example>: Recipient address rejected: try later";
    const SOURCE: &str = "error sending request for url (https://u:pw@ip.example/v1?token=s3cret&fmt=text): timed out";

    #[test]
    fn without_the_token_only_the_class_shows() {
        let relay = class(RELAY);
        assert!(relay.contains("450 4.2.0"), "{relay}");
        assert!(
            !relay.contains("bob") && !relay.contains("corp.example"),
            "{relay}"
        );
        let source = class(SOURCE);
        assert!(source.contains("timeout"), "{source}");
        assert!(
            !source.contains("s3cret") && !source.contains("ip.example"),
            "{source}"
        );
    }

    #[test]
    fn with_the_token_addresses_and_url_credentials_are_masked() {
        let relay = masked(RELAY);
        assert_eq!(
            relay,
            "SMTP: 450 4.2.0 <…@corp.example>: Recipient address rejected: try later"
        );
        let source = masked(SOURCE);
        assert_eq!(
            source,
            "error sending request for url (https://…@ip.example/v1?token=…&fmt=…): timed out"
        );
        assert_eq!(masked("no secret here"), "no secret here");
    }
}
