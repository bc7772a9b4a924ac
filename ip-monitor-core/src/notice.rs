//! What is sent: the entry URL built from a template, and its QR code.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::address::Family;

/// Why a URL template or a QR code could not be made.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NoticeError {
    /// The URL template is unusable.
    #[error("invalid service URL template {template:?}: {reason}")]
    Template {
        /// The template as given.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The QR code could not be rendered.
    #[error("QR code: {0}")]
    Qr(#[source] std::sync::Arc<dyn std::error::Error + Send + Sync>),
}

/// The entry URL template, such as `http://{ip}:8008/`: validated once, rendered per change.
///
/// `{ip}` is replaced by the address; an IPv6 address is put in brackets unless the
/// template already has them (`http://[{ip}]:8008/`).
///
/// ```
/// use ip_monitor_core::UrlTemplate;
/// let t = UrlTemplate::parse("http://{ip}:8008/").unwrap();
/// assert_eq!(t.render("81.2.69.160".parse().unwrap()), "http://81.2.69.160:8008/");
/// assert_eq!(t.render("2001:db8::7".parse().unwrap()), "http://[2001:db8::7]:8008/");
/// assert!(UrlTemplate::parse("ftp://{ip}/").is_err());
/// assert!(UrlTemplate::parse("http://example.com/").is_err());
/// assert!(UrlTemplate::parse("http://{ip}/\"><script>").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct UrlTemplate(String);

impl UrlTemplate {
    /// Validate a template: `http://` or `https://`, `{ip}` in the host, and only characters
    /// that may appear in a URL unescaped (no spaces, quotes, angle brackets or controls).
    pub fn parse(template: &str) -> Result<Self, NoticeError> {
        let fail = |reason: &str| NoticeError::Template {
            template: template.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = template
            .strip_prefix("http://")
            .or_else(|| template.strip_prefix("https://"))
            .ok_or_else(|| fail("must start with http:// or https://"))?;
        if !template.contains("{ip}") {
            return Err(fail("must contain {ip}"));
        }
        const ALLOWED: &str = "-._~:/?#[]@!$&'()*+,;=%";
        if let Some(c) = template
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || ALLOWED.contains(c) || c == '{' || c == '}'))
        {
            return Err(fail(&format!("character {c:?} is not allowed in a URL")));
        }
        if template.replace("{ip}", "").contains(['{', '}']) {
            return Err(fail("only the {ip} placeholder is supported"));
        }
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if !authority.contains("{ip}") {
            return Err(fail("{ip} must be the host of the URL"));
        }
        if authority.contains('@') {
            return Err(fail("credentials in the URL are not allowed"));
        }
        let host_port = authority.replace("[{ip}]", "{ip}");
        let port = host_port
            .strip_prefix("{ip}")
            .ok_or_else(|| fail("{ip} must be the host of the URL"))?;
        if let Some(port) = port.strip_prefix(':') {
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(fail("the port must be a number from 1 to 65535"));
            }
        } else if !port.is_empty() {
            return Err(fail("{ip} must be the whole host of the URL"));
        }
        Ok(UrlTemplate(template.to_owned()))
    }

    /// The URL for `addr`.
    pub fn render(&self, addr: IpAddr) -> String {
        match addr {
            IpAddr::V4(v4) => {
                let bare = v4.to_string();
                self.0.replace("[{ip}]", &bare).replace("{ip}", &bare)
            }
            IpAddr::V6(v6) => {
                let bracketed = format!("[{v6}]");
                self.0
                    .replace("[{ip}]", &bracketed)
                    .replace("{ip}", &bracketed)
            }
        }
    }

    /// The template as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for UrlTemplate {
    fn default() -> Self {
        UrlTemplate("http://{ip}:8008/".to_owned())
    }
}

impl fmt::Display for UrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One notice: the new entry URL of a change (or a test), with its QR code. Built once per
/// change and shared by every delivery of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Notice {
    /// The change it announces.
    pub change_id: i64,
    /// The family of the address.
    pub family: Family,
    /// The new address (for the notifier's own use; the message shows the URL).
    pub address: IpAddr,
    /// The address it replaced, when known (a monitor that restarted since the change was
    /// recorded does not know it).
    pub previous: Option<IpAddr>,
    /// The entry URL.
    pub url: String,
    /// When the change was detected.
    pub detected_at: SystemTime,
    /// Whether this is a test notice, sent on request without a change.
    pub test: bool,
    /// The QR code of [`url`](Self::url) as a PNG, when the `qr` feature is on.
    pub qr_png: Option<Arc<[u8]>>,
}

impl fmt::Debug for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notice")
            .field("change_id", &self.change_id)
            .field("family", &self.family)
            .field("address", &self.address)
            .field("previous", &self.previous)
            .field("url", &self.url)
            .field("test", &self.test)
            .field(
                "qr_png",
                &self.qr_png.as_ref().map(|p| format!("{} bytes", p.len())),
            )
            .finish()
    }
}

impl Notice {
    /// The same notice, saying which address the new one replaced.
    pub fn with_previous(mut self, previous: Option<IpAddr>) -> Self {
        self.previous = previous;
        self
    }

    /// A notice for `url`, rendering its QR code when the `qr` feature is on.
    pub fn new(
        change_id: i64,
        address: IpAddr,
        url: String,
        detected_at: SystemTime,
        test: bool,
    ) -> Result<Self, NoticeError> {
        #[cfg(feature = "qr")]
        let qr_png = Some(Arc::from(render_qr_png(&url)?));
        #[cfg(not(feature = "qr"))]
        let qr_png = None;
        Ok(Notice {
            change_id,
            family: Family::of(&address),
            address,
            previous: None,
            url,
            detected_at,
            test,
            qr_png,
        })
    }
}

/// Render `text` as a QR code PNG: error correction M, 8-pixel modules with the standard
/// 4-module quiet zone, black on white, at least 256 pixels wide.
///
/// ```
/// let png = ip_monitor_core::render_qr_png("http://81.2.69.160:8008/").unwrap();
/// assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
/// ```
#[cfg(feature = "qr")]
pub fn render_qr_png(text: &str) -> Result<Vec<u8>, NoticeError> {
    use image::ImageEncoder;
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| NoticeError::Qr(std::sync::Arc::new(e)))?;
    let img = code
        .render::<image::Luma<u8>>()
        .module_dimensions(8, 8)
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build();
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::L8,
        )
        .map_err(|e| NoticeError::Qr(std::sync::Arc::new(e)))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_rules() {
        for bad in [
            "",
            "{ip}",
            "http://{ip}:0/",
            "http://{ip}:99999/",
            "http://{ip}x/",
            "http://host/{ip}",
            "http://u:p@{ip}/",
            "http://{ip}/ a",
            "http://{ip}/\n",
            "http://{ip}/{port}",
            "javascript:alert(1)//{ip}",
            "http://{ip}/<b>",
        ] {
            assert!(UrlTemplate::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        for good in [
            "http://{ip}:8008/",
            "https://{ip}/",
            "http://[{ip}]:80/app?x=1#top",
            "http://{ip}",
        ] {
            assert!(
                UrlTemplate::parse(good).is_ok(),
                "{good:?} must be accepted"
            );
        }
        let t = UrlTemplate::parse("http://[{ip}]:8008/").unwrap();
        assert_eq!(t.render("::1".parse().unwrap()), "http://[::1]:8008/");
        assert_eq!(
            t.render("81.2.69.160".parse().unwrap()),
            "http://81.2.69.160:8008/"
        );
    }

    #[cfg(feature = "qr")]
    #[test]
    fn qr_decodes_back_to_the_url() {
        for url in [
            "http://81.2.69.160:8008/",
            "http://[2606:4700:4700::1111]:8008/",
        ] {
            let png = render_qr_png(url).unwrap();
            let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
                .unwrap()
                .to_luma8();
            let mut prepared = rqrr::PreparedImage::prepare(img);
            let grids = prepared.detect_grids();
            assert_eq!(grids.len(), 1);
            let (_, content) = grids[0].decode().unwrap();
            assert_eq!(content, url);
        }
    }
}
