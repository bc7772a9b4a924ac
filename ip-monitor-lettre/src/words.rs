//! The words of the message, per locale: [`Locale`], [`MessageText`].

use std::fmt;

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
    /// The paragraph after the QR code: what to do next.
    pub steps: String,
    /// The paragraph that says why the recipient gets this message.
    pub reason: String,
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
                    "The server that runs the application has moved to a new network \
                     address, so links and bookmarks to the old address no longer open it. \
                     Open the application at its new address with the button below, or scan \
                     the code with your phone's camera.",
                ),
                button: s("Open the application"),
                scan_hint: s("Or scan this code with your phone:"),
                steps: s(
                    "What to do next: open the application with the button above and sign in \
                     as usual. Then replace your bookmark or home-screen shortcut with the \
                     page that opens, so that it points to the new address. If the page does \
                     not open, wait a few minutes and try again; if it still does not open, \
                     ask your administrator for help.",
                ),
                reason: s(
                    "Why you are receiving this: you are an active member of staff of this \
                     application, and the server tells every active member by email whenever \
                     its address changes, so that nobody is left with a link that no longer \
                     works. The button opens the same application you use every day, and \
                     nobody will ever ask you for your password by email. You do not need to \
                     reply.",
                ),
                footer: s(
                    "This message was sent automatically because the server's address \
                     changed.",
                ),
                test_marker: s("[Test]"),
                test_notice: s(
                    "This is a test message: the address has not changed, and the button \
                     opens the application at its current address.",
                ),
                qr_alt: s("QR code of the new address"),
            },
            Locale::ZhCn => MessageText {
                lang: s("zh-CN"),
                subject: s("服务器地址已变更"),
                greeting: s("{name}，您好："),
                greeting_without_name: s("您好："),
                intro: s(
                    "运行应用的服务器已迁移到新的网络地址，指向旧地址的链接和书签已无法打开应用。\
                     请点击下方按钮在新地址打开应用，或用手机相机扫描二维码。",
                ),
                button: s("打开应用"),
                scan_hint: s("或用手机扫描此二维码："),
                steps: s(
                    "接下来请这样做：点击上方按钮打开应用，并照常登录；然后把浏览器书签或手机桌面\
                     快捷方式替换为新打开的页面，使其指向新地址。如果页面无法打开，请稍等几分钟后\
                     重试；若仍无法打开，请联系您的管理员。",
                ),
                reason: s(
                    "您收到此邮件的原因：您是此应用的在职员工。每当服务器地址变更时，系统都会通过\
                     邮件通知所有在职员工，以免有人仍在使用已失效的链接。按钮打开的是您每天使用的\
                     同一个应用，任何人都不会通过邮件向您索要密码。您无需回复此邮件。",
                ),
                footer: s("此邮件由系统自动发送，因为服务器的地址已变更。"),
                test_marker: s("[测试]"),
                test_notice: s("这是一封测试邮件：地址并未变更，按钮会在当前地址打开应用。"),
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
