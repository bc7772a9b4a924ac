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
        format!(
            "{stamp}-change{}-{}.eml",
            notice.change_id,
            shortened(&safe)
        )
    }
}

/// The longest address kept whole in a file name: with the time stamp, the change id and the
/// temporary file's prefix and suffix, a name stays well under the 255 bytes file systems
/// allow, for addresses up to 254 characters.
const NAME_ADDRESS_MAX: usize = 120;

/// `safe` (an address made file-name safe), or for a long one its first characters and a
/// hash of the whole, so two long addresses with the same start get different names.
fn shortened(safe: &str) -> String {
    if safe.len() <= NAME_ADDRESS_MAX {
        return safe.to_owned();
    }
    // FNV-1a, 64 bits: stable, and enough to tell addresses apart within one directory.
    let hash = safe.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{}~{hash:016x}", &safe[..NAME_ADDRESS_MAX - 17])
}

/// Write `bytes` to `path` through a temporary file with an unpredictable name, created new
/// and readable by the owner only: readers never see a half-written file, nobody can plant
/// or read one in between, and a symbolic link at `path` is replaced, never followed. The
/// `.eml` files, the preview and the standalone binary's preview files are written so.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("plan.txt");
/// ip_monitor_lettre::write_atomically(&path, b"hello\n").await?;
/// assert_eq!(std::fs::read(&path)?, b"hello\n");
/// # Ok(()) }
/// ```
pub async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An address near the 254-character limit still makes a name a file system takes.
    #[tokio::test]
    async fn the_longest_addresses_make_usable_file_names() {
        let dir = tempfile::tempdir().unwrap();
        let label = "b".repeat(60);
        let domain = format!("{label}.{label}.{label}.{}", "c".repeat(3));
        let (one, two) = (
            format!("{}@{domain}", "a".repeat(64)),
            format!("{}@{domain}", "a".repeat(63) + "z"),
        );
        assert!(one.len() > 250, "{}", one.len());
        let notifier = FileNotifier::new(
            dir.path(),
            MessageTemplate::new("noreply@example.com").unwrap(),
        );
        let notice = Notice::new(
            7,
            "81.2.69.160".parse().unwrap(),
            "http://81.2.69.160:8008/".into(),
            std::time::SystemTime::now(),
            false,
        )
        .unwrap();
        for address in [&one, &two] {
            let recipient = Recipient::new(address, None::<&str>).unwrap();
            notifier
                .send(&notice, &recipient, &SendPermit::always())
                .await
                .unwrap();
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names.iter().all(|n| n.len() <= 200 && n.ends_with(".eml")),
            "{names:?}"
        );
    }
}
