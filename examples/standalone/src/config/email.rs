//! `[email]`: the words of the message (a locale, then single keys in its place), and the
//! sender (`from` and `reply_to` of `[smtp]` before those of `[email]`).

use ip_monitor_lettre::{Locale, MessageTemplate, MessageText};
use serde::Deserialize;

use super::KeyError;
use super::smtp::SmtpConfig;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct EmailConfig {
    locale: Option<String>,
    subject: Option<String>,
    from: Option<String>,
    reply_to: Option<String>,
    greeting: Option<String>,
    greeting_without_name: Option<String>,
    intro: Option<String>,
    button: Option<String>,
    scan_hint: Option<String>,
    steps: Option<String>,
    reason: Option<String>,
    footer: Option<String>,
    test_marker: Option<String>,
    test_notice: Option<String>,
    qr_alt: Option<String>,
}

impl EmailConfig {
    /// The message template: its words and its sender.
    pub(super) fn template(self, smtp: Option<&SmtpConfig>) -> Result<MessageTemplate, KeyError> {
        let email = self;
        let locale: Locale = match &email.locale {
            Some(tag) => tag.parse().map_err(|e: ip_monitor_lettre::Error| {
                KeyError::new("email.locale", e.to_string())
            })?,
            None => Locale::default(),
        };
        // The locale's words, then each key set in [email] in their place.
        let mut text = MessageText::for_locale(locale);
        for (value, slot) in [
            (email.subject, &mut text.subject),
            (email.greeting, &mut text.greeting),
            (email.greeting_without_name, &mut text.greeting_without_name),
            (email.intro, &mut text.intro),
            (email.button, &mut text.button),
            (email.scan_hint, &mut text.scan_hint),
            (email.steps, &mut text.steps),
            (email.reason, &mut text.reason),
            (email.footer, &mut text.footer),
            (email.test_marker, &mut text.test_marker),
            (email.test_notice, &mut text.test_notice),
            (email.qr_alt, &mut text.qr_alt),
        ] {
            if let Some(value) = value {
                *slot = value;
            }
        }
        let smtp_from = smtp.and_then(|s| s.from.clone());
        let from_key = if smtp_from.is_some() {
            "smtp.from"
        } else {
            "email.from"
        };
        let from = smtp_from
            .or(email.from)
            .unwrap_or_else(|| "IP Monitor <ip-monitor@localhost>".to_owned());
        let mut template = MessageTemplate::new(&from)
            .map_err(|e| KeyError::new(from_key, e.to_string()))?
            .text(text);
        let reply_key = if smtp.is_some_and(|s| s.reply_to.is_some()) {
            "smtp.reply_to"
        } else {
            "email.reply_to"
        };
        if let Some(reply_to) = smtp.and_then(|s| s.reply_to.clone()).or(email.reply_to) {
            template = template
                .reply_to(&reply_to)
                .map_err(|e| KeyError::new(reply_key, e.to_string()))?;
        }
        if let Some(key) = smtp.map(SmtpConfig::dkim_key).transpose()?.flatten() {
            template = template.dkim(key);
        }
        Ok(template)
    }
}
