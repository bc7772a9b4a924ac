//! [`FileNotifier`]: each message as an `.eml` file in a directory.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ip_monitor_core::{Notice, Notifier, NotifyError, Recipient};

use crate::error::Error;
use crate::message::MessageTemplate;

/// Writes each message, complete with its inline QR code, as an `.eml` file into a
/// directory (created when missing) — the default when no SMTP server is configured. Open
/// the files with any mail client.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ip_monitor_core::{Notice, Notifier, Recipient};
/// use ip_monitor_lettre::{FileNotifier, MessageTemplate};
/// # let dir = tempfile::tempdir()?;
/// let notifier = FileNotifier::new(dir.path(), MessageTemplate::new("noreply@example.com")?);
/// let notice = Notice::new(7, "81.2.69.160".parse()?, "http://81.2.69.160:8008/".into(), std::time::SystemTime::now(), false)?;
/// notifier.notify(&notice, &Recipient::new("ana@example.com", Some("Ana"))?).await?;
/// assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FileNotifier {
    dir: PathBuf,
    template: MessageTemplate,
}

impl FileNotifier {
    /// Write into `dir` with `template`.
    pub fn new(dir: impl Into<PathBuf>, template: MessageTemplate) -> Self {
        FileNotifier {
            dir: dir.into(),
            template,
        }
    }

    /// The directory written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file_name(notice: &Notice, recipient: &Recipient) -> String {
        let safe: String = recipient
            .email()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{stamp}-change{}-{safe}.eml", notice.change_id)
    }
}

pub(crate) async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, bytes).await.map_err(io)?;
    tokio::fs::rename(&tmp, path).await.map_err(io)
}

#[async_trait]
impl Notifier for FileNotifier {
    async fn notify(&self, notice: &Notice, recipient: &Recipient) -> Result<(), NotifyError> {
        let message = self.template.build(notice, recipient)?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|source| Error::Io {
                path: self.dir.display().to_string(),
                source,
            })?;
        let path = self.dir.join(Self::file_name(notice, recipient));
        write_atomically(&path, &message.formatted()).await?;
        Ok(())
    }
}
