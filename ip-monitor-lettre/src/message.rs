//! The email: one message per recipient, HTML with the QR code inline and a plain-text part.

use std::fmt;

use ip_monitor_core::{Notice, Recipient};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::header::{ContentTransferEncoding, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};

use crate::error::Error;

/// A language the message's words come in.
///
/// ```
/// use ip_monitor_lettre::{Locale, MessageText};
/// let locale: Locale = "zh-CN".parse().unwrap();
/// let text = MessageText::for_locale(locale);
/// assert_eq!(text.lang, "zh-CN");
/// assert_eq!(text.button, "打开应用");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Locale {
    /// English (`en`), the default.
    #[default]
    En,
    /// Simplified Chinese (`zh-CN`).
    ZhCn,
}

impl Locale {
    /// Every locale, in order.
    pub const ALL: [Locale; 2] = [Locale::En, Locale::ZhCn];

    /// The language tag (BCP 47), as in the HTML `lang` attribute.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhCn => "zh-CN",
        }
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

impl std::str::FromStr for Locale {
    type Err = Error;

    /// A tag, in any case: `en` (also `en-US`, `en-GB`), `zh-CN` (also `zh`, `zh-Hans`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "en" | "en-us" | "en-gb" => Ok(Locale::En),
            "zh-cn" | "zh" | "zh-hans" | "zh-hans-cn" => Ok(Locale::ZhCn),
            _ => Err(Error::Config {
                key: "locale",
                message: format!(
                    "{s:?} is not a known locale: {}",
                    Locale::ALL.map(Locale::tag).join(", ")
                ),
            }),
        }
    }
}

/// The words of the message, all of them. `{name}` in [`greeting`](Self::greeting) is the
/// recipient's name; everything is HTML-escaped where it is shown. Start from a locale's
/// set ([`for_locale`](Self::for_locale); `Default` is English) and change what you want.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageText {
    /// The language of the words, as the HTML `lang` attribute says it.
    pub lang: String,
    /// Subject line.
    pub subject: String,
    /// First line when the recipient has a name; `{name}` is replaced by it.
    pub greeting: String,
    /// First line when the recipient has no name.
    pub greeting_without_name: String,
    /// The paragraph above the button.
    pub intro: String,
    /// The button's label.
    pub button: String,
    /// The line above the QR code.
    pub scan_hint: String,
    /// The small print at the bottom.
    pub footer: String,
    /// Put before the subject, and said in the body, for test notices.
    pub test_marker: String,
    /// The sentence after the test marker in a test notice's body.
    pub test_notice: String,
    /// The QR code's alternative text, for mail clients that do not show images.
    pub qr_alt: String,
}

impl MessageText {
    /// The full set of words of `locale`.
    pub fn for_locale(locale: Locale) -> Self {
        let s = str::to_owned;
        match locale {
            Locale::En => MessageText {
                lang: s("en"),
                subject: s("The server has a new address"),
                greeting: s("Hello {name},"),
                greeting_without_name: s("Hello,"),
                intro: s(
                    "The application has moved to a new address. Open it with the button \
                     below, or scan the code with your phone's camera.",
                ),
                button: s("Open the application"),
                scan_hint: s("Or scan this code with your phone:"),
                footer: s(
                    "This message was sent automatically because the server's address \
                     changed. Bookmarks to the old address no longer work.",
                ),
                test_marker: s("[Test]"),
                test_notice: s("This is a test message."),
                qr_alt: s("QR code of the new address"),
            },
            Locale::ZhCn => MessageText {
                lang: s("zh-CN"),
                subject: s("服务器地址已变更"),
                greeting: s("{name}，您好："),
                greeting_without_name: s("您好："),
                intro: s("应用已迁移到新的地址。请点击下方按钮打开，或用手机相机扫描二维码。"),
                button: s("打开应用"),
                scan_hint: s("或用手机扫描此二维码："),
                footer: s(
                    "此邮件由系统自动发送，因为服务器的地址已变更。指向旧地址的书签将无法再使用。",
                ),
                test_marker: s("[测试]"),
                test_notice: s("这是一封测试邮件。"),
                qr_alt: s("新地址的二维码"),
            },
        }
    }
}

impl Default for MessageText {
    fn default() -> Self {
        MessageText::for_locale(Locale::En)
    }
}

/// Who the message is from, and its words.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    /// The From: mailbox.
    pub from: Mailbox,
    /// An optional Reply-To: mailbox.
    pub reply_to: Option<Mailbox>,
    /// The words.
    pub text: MessageText,
}

impl fmt::Debug for MessageTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageTemplate")
            .field("from", &self.from.to_string())
            .field("reply_to", &self.reply_to.as_ref().map(ToString::to_string))
            .field("text", &self.text)
            .finish()
    }
}

impl MessageTemplate {
    /// A template sending from `from` (e.g. `IP Monitor <noreply@example.com>`) with the
    /// default words.
    ///
    /// ```
    /// let t = ip_monitor_lettre::MessageTemplate::new("IP Monitor <noreply@example.com>").unwrap();
    /// assert_eq!(t.from.email.to_string(), "noreply@example.com");
    /// ```
    pub fn new(from: &str) -> Result<Self, Error> {
        Ok(MessageTemplate {
            from: parse_mailbox("from", from)?,
            reply_to: None,
            text: MessageText::default(),
        })
    }

    /// Set the Reply-To: mailbox.
    pub fn reply_to(mut self, reply_to: &str) -> Result<Self, Error> {
        self.reply_to = Some(parse_mailbox("reply_to", reply_to)?);
        Ok(self)
    }

    /// Set the words.
    pub fn text(mut self, text: MessageText) -> Self {
        self.text = text;
        self
    }

    fn subject(&self, notice: &Notice) -> String {
        if notice.test {
            format!("{} {}", self.text.test_marker, self.text.subject)
        } else {
            self.text.subject.clone()
        }
    }

    fn greeting(&self, recipient: &Recipient) -> String {
        match recipient.name() {
            Some(name) => self.text.greeting.replace("{name}", name),
            None => self.text.greeting_without_name.clone(),
        }
    }

    /// The Content-ID of the QR image of `notice`.
    pub fn content_id(notice: &Notice) -> String {
        format!("qr-{}@ip-monitor", notice.change_id)
    }

    /// The plain-text part.
    pub fn render_text(&self, notice: &Notice, recipient: &Recipient) -> String {
        let mut text = format!(
            "{}\n\n{}\n\n{}\n\n",
            self.greeting(recipient),
            self.text.intro,
            notice.url
        );
        if notice.test {
            text.push_str(&format!(
                "{} {}\n\n",
                self.text.test_marker, self.text.test_notice
            ));
        }
        text.push_str(&self.text.footer);
        text.push('\n');
        text
    }

    /// The HTML part. `image_src` is where the QR code comes from: `cid:…` in the email, a
    /// `data:` URI in a preview.
    pub fn render_html(&self, notice: &Notice, recipient: &Recipient, image_src: &str) -> String {
        let (head, tail) = self.html_around_greeting(notice, image_src);
        format!("{head}{}{tail}", self.html_greeting(notice, recipient))
    }

    /// The HTML part's one line that depends on the recipient: the greeting (after the test
    /// marker, in a test notice).
    fn html_greeting(&self, notice: &Notice, recipient: &Recipient) -> String {
        let test = if notice.test {
            format!(
                r#"<p style="margin:0 0 12px 0;font-weight:600;color:#b44d12;">{} {}</p>"#,
                escape(&self.text.test_marker),
                escape(&self.text.test_notice)
            )
        } else {
            String::new()
        };
        format!(
            r#"{test}<p style="margin:0 0 12px 0;">{}</p>
"#,
            escape(&self.greeting(recipient))
        )
    }

    /// The HTML part's lines before and after the greeting's line: the same for every
    /// recipient of a notice.
    fn html_around_greeting(&self, notice: &Notice, image_src: &str) -> (String, String) {
        let e = escape;
        let head = format!(
            r##"<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>{subject}</title>
</head>
<body style="margin:0;padding:0;background:#f4f5f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f4f5f7;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="max-width:480px;background:#ffffff;border-radius:8px;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2933;">
<tr><td style="padding:28px 28px 4px 28px;font-size:16px;line-height:24px;">
"##,
            subject = e(&self.subject(notice)),
            lang = e(&self.text.lang),
        );
        let tail = format!(
            r##"<p style="margin:0 0 20px 0;">{intro}</p>
</td></tr>
<tr><td align="center" style="padding:0 28px 24px 28px;">
<table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr><td align="center" bgcolor="#1a73e8" style="border-radius:6px;">
<a href="{url}" target="_blank" style="display:inline-block;padding:14px 28px;font-size:17px;font-weight:600;line-height:20px;color:#ffffff;text-decoration:none;border-radius:6px;">{button}</a>
</td></tr></table>
</td></tr>
<tr><td align="center" style="padding:0 28px 8px 28px;font-size:14px;line-height:20px;color:#52606d;">{scan_hint}</td></tr>
<tr><td align="center" style="padding:0 28px 24px 28px;">
<img src="{image_src}" width="240" height="240" alt="{qr_alt}" style="display:block;width:240px;height:240px;border:0;outline:none;">
</td></tr>
<tr><td style="padding:0 28px 28px 28px;font-size:13px;line-height:20px;color:#7b8794;">{footer}</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"##,
            intro = e(&self.text.intro),
            url = e(&notice.url),
            button = e(&self.text.button),
            scan_hint = e(&self.text.scan_hint),
            image_src = e(image_src),
            qr_alt = e(&self.text.qr_alt),
            footer = e(&self.text.footer),
        );
        (head, tail)
    }

    /// What a notice's messages share, encoded once for all its recipients: the QR code's
    /// part (base64) and the HTML around the greeting (quoted-printable, which is line by
    /// line, so the greeting's line is encoded per recipient and put between).
    pub(crate) fn shared_parts(&self, notice: &Notice) -> Result<SharedParts, Error> {
        let png = notice.qr_png.as_ref().ok_or(Error::NoQrCode)?;
        let cid = Self::content_id(notice);
        let (head, tail) = self.html_around_greeting(notice, &format!("cid:{cid}"));
        Ok(SharedParts {
            image: Body::new_with_encoding(png.to_vec(), ContentTransferEncoding::Base64)
                .expect("base64 carries any bytes"),
            html_head: quoted_printable(head),
            html_tail: quoted_printable(tail),
        })
    }

    /// The whole message for one recipient: multipart/alternative of the plain text and a
    /// multipart/related HTML part with the QR code as an inline `image/png`.
    pub fn build(&self, notice: &Notice, recipient: &Recipient) -> Result<Message, Error> {
        self.build_with(notice, recipient, &self.shared_parts(notice)?)
    }

    /// [`build`](Self::build) with the parts the notice's messages share already encoded.
    pub(crate) fn build_with(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        shared: &SharedParts,
    ) -> Result<Message, Error> {
        let to = Mailbox::new(
            recipient.name().map(str::to_owned),
            recipient.email().parse().map_err(|e| Error::Address {
                address: recipient.email().to_owned(),
                source: e,
            })?,
        );
        let cid = Self::content_id(notice);
        let image = Attachment::new_inline(cid).body(
            shared.image.clone(),
            ContentType::parse("image/png").expect("valid"),
        );
        let greeting = quoted_printable(self.html_greeting(notice, recipient));
        let mut html =
            Vec::with_capacity(shared.html_head.len() + greeting.len() + shared.html_tail.len());
        html.extend_from_slice(&shared.html_head);
        html.extend_from_slice(&greeting);
        html.extend_from_slice(&shared.html_tail);
        let html =
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(Body::dangerous_pre_encoded(
                    html,
                    ContentTransferEncoding::QuotedPrintable,
                ));
        let body = MultiPart::alternative()
            .singlepart(SinglePart::plain(self.render_text(notice, recipient)))
            .multipart(MultiPart::related().singlepart(html).singlepart(image));
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(self.subject(notice))
            .message_id(None)
            .date_now()
            // An automatic message (RFC 3834): out-of-office replies are not sent back to it.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                "All".to_owned(),
            ));
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        builder.multipart(body).map_err(Error::Message)
    }
}

fn parse_mailbox(key: &'static str, value: &str) -> Result<Mailbox, Error> {
    value.parse().map_err(|e| Error::Config {
        key,
        message: format!("{value:?} is not a mailbox: {e}"),
    })
}

/// Escape text for HTML content and attribute values.
///
/// ```
/// assert_eq!(ip_monitor_lettre::escape("<script>alert(\"x\")</script>"),
///            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The parts of a notice's messages that are the same for every recipient, encoded.
#[derive(Debug, Clone)]
pub(crate) struct SharedParts {
    image: Body,
    html_head: Vec<u8>,
    html_tail: Vec<u8>,
}

/// `text` quoted-printable encoded, with CRLF line ends.
fn quoted_printable(text: String) -> Vec<u8> {
    Body::new_with_encoding(text, ContentTransferEncoding::QuotedPrintable)
        .expect("quoted-printable carries any text")
        .into_vec()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    /// The HTML part assembled from the notice's shared parts and the recipient's greeting
    /// line decodes to exactly the HTML rendered whole — with a long, non-ASCII name (soft
    /// line breaks and escapes in the greeting's line) and with the test marker.
    #[test]
    fn the_html_assembled_per_recipient_is_the_html_rendered_whole() {
        let template = MessageTemplate::new("IP Monitor <noreply@example.com>").unwrap();
        for test in [false, true] {
            let notice = Notice::new(
                7,
                "81.2.69.160".parse().unwrap(),
                "http://81.2.69.160:8008/".into(),
                SystemTime::now(),
                test,
            )
            .unwrap();
            let name = "Zoë Ångström-Łukasiewicz <the \"long\" name> = ".repeat(4);
            let recipient = Recipient::new("zoe@example.com", Some(name.as_str())).unwrap();
            let raw = template.build(&notice, &recipient).unwrap().formatted();
            let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let html = message.body_html(0).unwrap();
            let cid = MessageTemplate::content_id(&notice);
            let whole = template.render_html(&notice, &recipient, &format!("cid:{cid}"));
            assert_eq!(html.replace("\r\n", "\n"), whole, "test notice: {test}");
            let text = String::from_utf8_lossy(&raw);
            assert!(
                text.lines().all(|l| l.len() <= 998),
                "no line over SMTP's limit"
            );
            assert!(text.contains("Content-Transfer-Encoding: quoted-printable"));
        }
    }

    /// A Simplified Chinese notice: every word of the locale, in the subject, the HTML (with
    /// its `lang`) and the plain text, survives encoding; a word set on its own replaces the
    /// locale's.
    #[test]
    fn a_chinese_notice_says_everything_in_chinese() {
        let mut text = MessageText::for_locale("zh-CN".parse().unwrap());
        text.footer = "运维组".to_owned();
        let template = MessageTemplate::new("IP Monitor <noreply@example.com>")
            .unwrap()
            .text(text.clone());
        let notice = Notice::new(
            9,
            "81.2.69.160".parse().unwrap(),
            "http://81.2.69.160:8008/".into(),
            SystemTime::now(),
            true,
        )
        .unwrap();
        let recipient = Recipient::new("li@example.com", Some("李雷")).unwrap();
        let raw = template.build(&notice, &recipient).unwrap().formatted();
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(message.subject(), Some("[测试] 服务器地址已变更"));
        let html = message.body_html(0).unwrap();
        assert!(html.contains(r#"<html lang="zh-CN">"#), "{html}");
        assert!(html.contains("李雷，您好："));
        for word in [
            &text.intro,
            &text.button,
            &text.scan_hint,
            &text.test_notice,
            &text.qr_alt,
        ] {
            assert!(html.contains(word.as_str()), "{word} in the HTML");
        }
        assert!(html.contains("运维组") && !html.contains("此邮件由系统自动发送"));
        let plain = message.body_text(0).unwrap().replace("\r\n", "\n");
        assert!(
            plain.starts_with("李雷，您好：\n\n应用已迁移到新的地址。"),
            "{plain}"
        );
        assert!(plain.contains("[测试] 这是一封测试邮件。"), "{plain}");
        assert!(!html.contains("This is a test") && !plain.contains("This is a test"));
    }

    #[test]
    fn locales_are_read_from_their_tags() {
        for locale in Locale::ALL {
            assert_eq!(locale.tag().parse::<Locale>().unwrap(), locale);
            assert_eq!(MessageText::for_locale(locale).lang, locale.tag());
        }
        assert_eq!("ZH-cn".parse::<Locale>().unwrap(), Locale::ZhCn);
        let err = "fr".parse::<Locale>().unwrap_err().to_string();
        assert!(err.contains("\"fr\"") && err.contains("zh-CN"), "{err}");
    }
}
