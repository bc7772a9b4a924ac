//! The email: one message per recipient, HTML with the QR code inline and a plain-text part.

use std::fmt;

use ip_monitor_core::{Notice, Recipient};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::header::{ContentTransferEncoding, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

use crate::dkim::DkimKey;
use crate::error::Error;
#[cfg(test)]
use crate::words::Locale;
use crate::words::MessageText;

/// Who the message is from, and its words.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageTemplate {
    /// The From: mailbox.
    pub from: Mailbox,
    /// An optional Reply-To: mailbox.
    pub reply_to: Option<Mailbox>,
    /// The words.
    pub text: MessageText,
    /// The DKIM key every message is signed with, if any.
    pub dkim: Option<DkimKey>,
}

impl fmt::Debug for MessageTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageTemplate")
            .field("from", &self.from.to_string())
            .field("reply_to", &self.reply_to.as_ref().map(ToString::to_string))
            .field("text", &self.text)
            .field("dkim", &self.dkim)
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
            dkim: None,
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

    /// Sign every message with `key` (DKIM).
    pub fn dkim(mut self, key: DkimKey) -> Self {
        self.dkim = Some(key);
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
            "{}\n\n{}\n\n{}\n\n{}\n\n{}\n\n",
            self.greeting(recipient),
            self.text.intro,
            notice.url,
            self.text.steps,
            self.text.reason,
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
<style>
/* For the clients that read a style sheet; everything also works from the inline styles. */
body {{ margin:0; padding:0; -webkit-text-size-adjust:100%; -ms-text-size-adjust:100%; }}
table {{ border-collapse:collapse; mso-table-lspace:0pt; mso-table-rspace:0pt; }}
img {{ border:0; outline:none; text-decoration:none; -ms-interpolation-mode:bicubic; }}
a.button {{ color:#ffffff !important; background-color:#1a73e8; text-decoration:none; }}
a.button:hover, a.button:focus {{ background-color:#1558b0; }}
@media only screen and (max-width:520px) {{
  .card {{ border-radius:0 !important; }}
  .pad {{ padding-left:18px !important; padding-right:18px !important; }}
  .qr {{ width:200px !important; height:200px !important; }}
  h1 {{ font-size:18px !important; line-height:26px !important; }}
}}
</style>
</head>
<body style="margin:0;padding:0;background:#f4f5f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f4f5f7;">
<tr><td align="center" style="padding:24px 12px;">
<table class="card" role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="max-width:480px;background:#ffffff;border-radius:8px;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2933;">
<tr><td class="pad" style="padding:28px 28px 4px 28px;font-size:16px;line-height:24px;">
<h1 style="margin:0 0 16px 0;font-size:20px;line-height:28px;font-weight:600;color:#1f2933;">{heading}</h1>
"##,
            heading = e(&self.text.subject),
            subject = e(&self.subject(notice)),
            lang = e(&self.text.lang),
        );
        let tail = format!(
            r##"<p style="margin:0 0 20px 0;">{intro}</p>
</td></tr>
<tr><td align="center" style="padding:0 28px 24px 28px;">
<table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr><td align="center" bgcolor="#1a73e8" style="border-radius:6px;">
<a class="button" href="{url}" target="_blank" style="display:inline-block;padding:14px 28px;font-size:17px;font-weight:600;line-height:20px;color:#ffffff;background-color:#1a73e8;text-decoration:none;border-radius:6px;">{button}</a>
</td></tr></table>
</td></tr>
<tr><td align="center" style="padding:0 28px 8px 28px;font-size:14px;line-height:20px;color:#52606d;">{scan_hint}</td></tr>
<tr><td align="center" style="padding:0 28px 24px 28px;">
<img class="qr" src="{image_src}" width="240" height="240" alt="{qr_alt}" style="display:block;width:240px;height:240px;border:0;outline:none;">
</td></tr>
<tr><td class="pad" style="padding:0 28px 4px 28px;font-size:15px;line-height:22px;color:#1f2933;">
<p style="margin:0 0 14px 0;">{steps}</p>
<p style="margin:0 0 14px 0;">{reason}</p>
</td></tr>
<tr><td class="pad" style="padding:0 28px 28px 28px;font-size:13px;line-height:20px;color:#52606d;">{footer}</td></tr>
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
            steps = e(&self.text.steps),
            reason = e(&self.text.reason),
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
                .expect("base64 carries any bytes")
                .into_vec(),
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
        let greeting = quoted_printable(self.html_greeting(notice, recipient));
        let related = related_part(notice, shared, &greeting);
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .header(ContentTransferEncoding::QuotedPrintable)
            .body(self.render_text(notice, recipient));
        let body = MultiPart::alternative()
            .singlepart(text)
            .singlepart(related);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(self.subject(notice))
            .message_id(Some(self.message_id()))
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

    /// `message` as sent: lettre's formatting, with a `DKIM-Signature` first when the
    /// template has a [`DkimKey`].
    pub fn bytes(&self, message: &Message) -> Vec<u8> {
        let formatted = message.formatted();
        match &self.dkim {
            Some(key) => key.sign(&formatted),
            None => formatted,
        }
    }
}

impl MessageTemplate {
    /// A new `Message-ID`, unique, on the sender's own domain (receivers distrust one on
    /// `localhost` or a bare host name).
    fn message_id(&self) -> String {
        let unique: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(24)
            .collect();
        format!("<{unique}.{:x}@{}>", now_micros(), self.from.email.domain())
    }
}

fn now_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// The `multipart/related` part, written out here because it carries `type="text/html"`
/// (RFC 2387 §3.1: the type of its root part) that lettre's builder has no way to say: the
/// HTML (quoted-printable, the greeting's line between the shared head and tail) and the
/// QR code inline. The boundary starts with `=_`, which neither quoted-printable nor
/// base64 can contain.
fn related_part(notice: &Notice, shared: &SharedParts, greeting: &[u8]) -> SinglePart {
    let boundary: String = std::iter::once("=_related_".to_owned())
        .chain(std::iter::repeat_with(|| fastrand::alphanumeric().to_string()).take(24))
        .collect();
    let cid = MessageTemplate::content_id(notice);
    let mut body = Vec::with_capacity(
        shared.html_head.len() + greeting.len() + shared.html_tail.len() + shared.image.len() + 512,
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&shared.html_head);
    body.extend_from_slice(greeting);
    body.extend_from_slice(&shared.html_tail);
    // The line break before a boundary belongs to the boundary (RFC 2046 §5.1.1): the
    // HTML's own last line break stays the HTML's.
    body.extend_from_slice(b"\r\n");
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-ID: <{cid}>\r\nContent-Disposition: inline\r\n\
             Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&shared.image);
    if !body.ends_with(b"\r\n") {
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/related; boundary=\"{boundary}\"; type=\"text/html\"");
    SinglePart::builder()
        .header(ContentType::parse(&content_type).expect("a valid content type"))
        .body(Body::dangerous_pre_encoded(
            body,
            ContentTransferEncoding::SevenBit,
        ))
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
    /// The QR code's PNG, base64 in lines of 76.
    image: Vec<u8>,
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
            let raw = template.bytes(&template.build(&notice, &recipient).unwrap());
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
        let raw = template.bytes(&template.build(&notice, &recipient).unwrap());
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(message.subject(), Some("[测试] 服务器地址已变更"));
        let html = message.body_html(0).unwrap();
        assert!(html.contains(r#"<html lang="zh-CN">"#), "{html}");
        assert!(html.contains("李雷，您好："));
        for word in [
            &text.intro,
            &text.button,
            &text.scan_hint,
            &text.steps,
            &text.reason,
            &text.test_notice,
            &text.qr_alt,
        ] {
            assert!(html.contains(word.as_str()), "{word} in the HTML");
        }
        assert!(html.contains("运维组") && !html.contains("此邮件由系统自动发送"));
        let plain = message.body_text(0).unwrap().replace("\r\n", "\n");
        assert!(
            plain.starts_with("李雷，您好：\n\n运行应用的服务器已迁移到新的网络地址，"),
            "{plain}"
        );
        assert!(
            plain.contains(&format!("[测试] {}", text.test_notice)),
            "{plain}"
        );
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
