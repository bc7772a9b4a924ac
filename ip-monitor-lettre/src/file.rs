//! [`FileNotifier`]: each message as an `.eml` file in a directory.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ip_monitor_core::{Notice, Notifier, NotifyError, Recipient, SendPermit, Sent};

use crate::error::Error;
use crate::message::MessageTemplate;

/// Writes each message, complete with its inline QR code, as an `.eml` file into a
/// directory (created when missing) — the default when no SMTP server is configured. Open
/// the files with any mail client.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ip_monitor_core::{Notice, NotifierExt, Recipient};
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

/// Write `bytes` to `path` through a temporary file with an unpredictable name, created new
/// and readable by the owner only (the messages carry the entry URL): readers never see a
/// half-written file, and nobody can plant or read one in between.
pub(crate) async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use tokio::io::AsyncWriteExt;
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", fastrand::u64(..)));
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&tmp).await.map_err(io)?;
    let written = async {
        file.write_all(bytes).await?;
        file.sync_all().await
    }
    .await;
    drop(file);
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(io(e));
    }
    tokio::fs::rename(&tmp, path).await.map_err(io)
}

/// Create `dir` and its parents, new ones accessible to the owner only.
pub(crate) async fn create_private_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir).await.map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })
}

#[async_trait]
impl Notifier for FileNotifier {
    async fn send(
        &self,
        notice: &Notice,
        recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
        let message = self.template.build(notice, recipient)?;
        create_private_dir(&self.dir).await?;
        let path = self.dir.join(Self::file_name(notice, recipient));
        permit.check()?;
        write_atomically(&path, &self.template.bytes(&message)).await?;
        Ok(Sent::direct())
    }
}
