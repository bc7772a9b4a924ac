//! Render a notice to files for a look before anything is sent.

use std::path::{Path, PathBuf};

use base64::Engine;
use ip_monitor_core::{Notice, Recipient};

use crate::error::Error;
use crate::file::{create_private_dir, write_atomically};
use crate::message::MessageTemplate;

/// The files [`preview`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewFiles {
    /// The complete message.
    pub eml: PathBuf,
    /// The HTML part, with the QR code embedded so a browser shows it.
    pub html: PathBuf,
    /// The QR code.
    pub png: PathBuf,
}

/// Write `notice.eml`, `notice.html` and `qr.png` for `recipient` into `dir` (created when
/// missing).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ip_monitor_core::{Notice, Recipient};
/// use ip_monitor_lettre::{MessageTemplate, preview};
/// # let dir = tempfile::tempdir()?;
/// let notice = Notice::new(1, "81.2.69.160".parse()?, "http://81.2.69.160:8008/".into(), std::time::SystemTime::now(), false)?;
/// let files = preview(&notice, &Recipient::new("ana@example.com", Some("Ana"))?, &MessageTemplate::new("noreply@example.com")?, dir.path()).await?;
/// assert!(std::fs::read_to_string(files.html)?.contains("data:image/png;base64,"));
/// # Ok(()) }
/// ```
pub async fn preview(
    notice: &Notice,
    recipient: &Recipient,
    template: &MessageTemplate,
    dir: &Path,
) -> Result<PreviewFiles, Error> {
    create_private_dir(dir).await?;
    let png = notice.qr_png.as_ref().ok_or(Error::NoQrCode)?;
    let data_uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    let files = PreviewFiles {
        eml: dir.join("notice.eml"),
        html: dir.join("notice.html"),
        png: dir.join("qr.png"),
    };
    let message = template.build(notice, recipient)?;
    write_atomically(&files.eml, &template.bytes(&message)).await?;
    write_atomically(
        &files.html,
        template
            .render_html(notice, recipient, &data_uri)
            .as_bytes(),
    )
    .await?;
    write_atomically(&files.png, png).await?;
    Ok(files)
}
