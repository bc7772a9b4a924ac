//! The notice as the receivers' spam filters judge it: SpamAssassin with its shipped rules
//! and network tests off (`spamassassin -L -t`) at most 1.5, and rspamd with its network
//! modules off at most 1.2, for the English and the Simplified Chinese notice, test notices
//! included. Skipped, saying why, where a filter is not installed.

use std::time::SystemTime;

use ip_monitor_core::{Notice, Recipient};
use ip_monitor_lettre::{Locale, MessageTemplate, MessageText};
use ip_monitor_testkit::filters::{self, Rspamd};

const SPAMASSASSIN_MOST: f64 = 1.5;
const RSPAMD_MOST: f64 = 1.2;

/// Every notice a recipient can get: each locale, a change and a test.
fn notices() -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    for locale in Locale::ALL {
        let template = MessageTemplate::new("IP Monitor <noreply@example.com>")
            .unwrap()
            .text(MessageText::for_locale(locale));
        for test in [false, true] {
            let notice = Notice::new(
                3,
                "81.2.69.161".parse().unwrap(),
                "http://81.2.69.161:8008/".into(),
                SystemTime::now(),
                test,
            )
            .unwrap();
            let to = Recipient::new("ana@example.com", Some("Ana Lima")).unwrap();
            let raw = template.build(&notice, &to).unwrap().formatted();
            let kind = if test { "test notice" } else { "notice" };
            all.push((format!("{locale} {kind}"), raw));
        }
    }
    all
}

#[test]
fn spamassassin_scores_every_notice_low() {
    if let Some(why) = filters::spamassassin_unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut over = Vec::new();
    for (name, raw) in notices() {
        let verdict = filters::spamassassin(&raw).unwrap();
        eprintln!("spamassassin {name}: {verdict:?}");
        if verdict.score > SPAMASSASSIN_MOST {
            over.push(format!("{name}: {verdict:?}"));
        }
    }
    assert!(over.is_empty(), "over {SPAMASSASSIN_MOST}: {over:#?}");
}

#[test]
fn rspamd_scores_every_notice_low() {
    if let Some(why) = Rspamd::unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let rspamd = Rspamd::start().unwrap();
    let mut over = Vec::new();
    for (name, raw) in notices() {
        let verdict = rspamd.score(&raw).unwrap();
        eprintln!("rspamd {name}: {verdict:?}");
        if verdict.score > RSPAMD_MOST {
            over.push(format!("{name}: {verdict:?}"));
        }
    }
    assert!(over.is_empty(), "over {RSPAMD_MOST}: {over:#?}");
}

/// What the filters look at, said by the message itself: the Message-ID on the sender's
/// domain, the root of `multipart/related` named, the text part not base64.
#[test]
fn the_message_says_what_filters_check() {
    for (name, raw) in notices() {
        // Headers unfolded, as a receiver reads them.
        let text = String::from_utf8_lossy(&raw).replace("\r\n ", " ");
        let message_id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .unwrap_or_default();
        assert!(
            message_id.ends_with("@example.com>"),
            "{name}: {message_id}"
        );
        assert!(
            text.contains("multipart/related; boundary=") && text.contains("type=\"text/html\""),
            "{name}"
        );
        let plain = text.split("Content-Type: text/plain").nth(1).unwrap();
        let encoding = plain
            .lines()
            .find(|l| l.starts_with("Content-Transfer-Encoding:"));
        assert_eq!(
            encoding,
            Some("Content-Transfer-Encoding: quoted-printable"),
            "{name}"
        );
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert!(
            parsed
                .body_html(0)
                .unwrap()
                .contains("http://81.2.69.161:8008/")
        );
        assert_eq!(parsed.attachment_count(), 1, "{name}: the QR code, inline");
    }
}
