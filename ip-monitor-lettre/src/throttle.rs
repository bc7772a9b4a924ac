//! Which refusals are the relay throttling the sender: too many sessions, too many messages
//! for now, or a sending quota. They say nothing about the recipient: the route is busy.

use crate::session::Reply;

/// How the relay throttles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Throttle {
    /// Too many sessions at once (`421 4.7.0 … too many connections` at the greeting).
    Sessions,
    /// Too many messages for now (`450 4.7.1 … too much mail`, `451 4.7.1 rate limit
    /// exceeded`, `452 4.5.3 too many recipients`, `4.4.5` congestion).
    Rate,
    /// A sending quota that resets later (`550 5.4.5 Daily user sending limit exceeded`).
    Quota,
}

/// Texts of the large providers' rate and quota answers that are about the sender, whatever
/// the status code says (lower case).
const SENDER_TEXTS: &[&str] = &[
    "too many connections",
    "too many concurrent",
    "too much mail",
    "too many messages",
    "too many recipients",
    "rate limit",
    "rate exceeded",
    "sending rate",
    "sending limit",
    "sending quota",
    "daily limit",
    "daily user sending",
    "message quota",
    "submissionquotaexceeded",
    "throttl",
];

/// Texts that are throttling unless the status code says they are about the recipient's
/// mailbox (`552 5.2.2 Mailbox full: quota exceeded` is).
const VAGUE_TEXTS: &[&str] = &["quota exceeded", "limit exceeded"];

/// The throttling in a refusal, if it is one. A refusal at setting up the session (the
/// greeting, EHLO, AUTH) with a 4xx code is about sessions. A refusal of the sender, a
/// recipient or the message is about the rate when its code is 4xx with an enhanced status
/// of `4.7.x`, `4.5.3` or `4.x.5` or a throttling text, and a quota when its code is 5xx
/// with `5.4.5` or a throttling text. A status about the recipient's address or mailbox
/// (`x.1.x`, `x.2.x`) keeps it the recipient's unless the text names the sender's limits,
/// and greylisting is the recipient's too: retried on its own backoff.
pub(crate) fn classify(at_setup: bool, reply: &Reply) -> Option<Throttle> {
    let text = reply.to_string().to_ascii_lowercase();
    if text.contains("greylist") || text.contains("graylist") {
        return None;
    }
    let status = enhanced(&text);
    let about_recipient = matches!(status, Some((_, 1 | 2, _)));
    let sender = SENDER_TEXTS.iter().any(|t| text.contains(t));
    let vague = !about_recipient && VAGUE_TEXTS.iter().any(|t| text.contains(t));
    if about_recipient && !sender {
        return None;
    }
    let named = sender || vague;
    match reply.code {
        400..500 if at_setup => Some(Throttle::Sessions),
        421 if named && text.contains("connection") => Some(Throttle::Sessions),
        400..500 => {
            let rate_status = matches!(status, Some((_, 7, _) | (_, 5, 3) | (_, _, 5)));
            (rate_status || named).then_some(Throttle::Rate)
        }
        500..600 if !at_setup => {
            (matches!(status, Some((_, 4, 5))) || named).then_some(Throttle::Quota)
        }
        _ => None,
    }
}

/// The enhanced status code (RFC 3463) `class.subject.detail` in a reply's text.
pub(crate) fn enhanced(text: &str) -> Option<(u8, u16, u16)> {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .find_map(|word| {
            let mut parts = word.split('.');
            let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
            let digits = |s: &str, most: usize| {
                !s.is_empty() && s.len() <= most && s.bytes().all(|b| b.is_ascii_digit())
            };
            if parts.next().is_some()
                || !matches!(class, "2" | "4" | "5")
                || !digits(subject, 3)
                || !digits(detail, 3)
            {
                return None;
            }
            Some((
                class.parse().ok()?,
                subject.parse().ok()?,
                detail.parse().ok()?,
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Reply {
        Reply {
            code,
            lines: vec![text.to_owned()],
        }
    }

    #[test]
    fn throttling_replies_of_relays_and_providers() {
        let setup = |code, text| classify(true, &reply(code, text));
        let later = |code, text| classify(false, &reply(code, text));
        use Throttle::*;
        for (got, expected) in [
            // Postfix's anvil limits.
            (
                setup(
                    421,
                    "4.7.0 relay Error: too many connections from 127.0.0.1",
                ),
                Some(Sessions),
            ),
            (
                later(450, "4.7.1 Error: too much mail from 127.0.0.1"),
                Some(Rate),
            ),
            (later(451, "4.7.1 rate limit exceeded"), Some(Rate)),
            (later(452, "4.5.3 Error: too many recipients"), Some(Rate)),
            (later(451, "4.4.5 Server busy, try again later"), Some(Rate)),
            (
                later(421, "4.7.0 Too many concurrent SMTP connections"),
                Some(Sessions),
            ),
            (
                later(454, "Throttling failure: Maximum sending rate exceeded."),
                Some(Rate),
            ),
            // Quotas that reset.
            (
                later(550, "5.4.5 Daily user sending limit exceeded"),
                Some(Quota),
            ),
            (
                later(550, "5.4.5 Daily user sending quota exceeded."),
                Some(Quota),
            ),
            (
                later(
                    554,
                    "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
                ),
                Some(Quota),
            ),
            (
                later(554, "Throttling failure: Daily message quota exceeded."),
                Some(Quota),
            ),
            // About the recipient, or not throttling at all.
            (later(552, "5.2.2 Mailbox full: quota exceeded"), None),
            (later(450, "4.2.2 Mailbox full, try again later"), None),
            (
                later(550, "5.1.1 <bob@example.com>: Recipient address rejected"),
                None,
            ),
            (
                later(
                    450,
                    "4.2.0 <bob@example.com>: Recipient address rejected: Greylisted",
                ),
                None,
            ),
            (
                later(451, "4.7.1 Greylisting in action, please come back later"),
                None,
            ),
            (
                later(554, "5.7.1 <bob@example.com>: Relay access denied"),
                None,
            ),
            (later(451, "4.3.0 Error: queue file write error"), None),
            (later(451, "Try again later"), None),
            (setup(535, "5.7.8 Authentication credentials invalid"), None),
        ] {
            assert_eq!(got, expected);
        }
        assert_eq!(enhanced("250 2.0.0 ok"), Some((2, 0, 0)));
        assert_eq!(enhanced("550 version 1.2.3.4"), None);
    }
}
