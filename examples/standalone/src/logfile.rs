//! The log file (`[log] file`, `--log-file`): the lines written to stderr, also appended to
//! a file that is rotated by day or by size, so `tail -f logs/server.log` always shows the
//! current one.
//!
//! - Daily: the first line of a new day (UTC) renames `server.log` to
//!   `server.log.YYYY-MM-DD` (the day it holds) and starts a new `server.log`.
//! - By size: a line that would take `server.log` past the limit renames it to
//!   `server.log.1` (the older ones move up: `.1` to `.2`, ...) and starts a new one.
//!
//! Only the newest `keep` rotated files are kept. Several processes may write one file (the
//! daemon and a command): a writer moves the file aside only if the path still names the
//! file it has open (device and inode), and otherwise reopens it; a day already set aside is
//! never replaced (`server.log.YYYY-MM-DD.1` takes the rest).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// When the file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// At the first line of each new day (UTC).
    Daily,
    /// Before the file would grow past this many bytes.
    Size(u64),
}

/// An appending, rotating log file; a `tracing_subscriber` writer.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    rotation: Rotation,
    keep: usize,
    /// Today's date (`YYYY-MM-DD`, UTC); a parameter so tests can change days.
    today: fn() -> String,
    state: Mutex<Open>,
}

#[derive(Debug)]
struct Open {
    file: File,
    size: u64,
    /// The day of the file's lines (daily rotation).
    day: String,
}

/// The date of `t` in UTC, `YYYY-MM-DD`.
fn utc_date(t: SystemTime) -> String {
    ip_monitor_core::report::rfc3339(t)[..10].to_owned()
}

/// Today's date in UTC.
fn utc_today() -> String {
    utc_date(SystemTime::now())
}

impl LogFile {
    /// Open (or create) `path` for appending, with its directory; rotated files beside it.
    pub fn open(path: impl Into<PathBuf>, rotation: Rotation, keep: usize) -> io::Result<Self> {
        Self::open_with_clock(path.into(), rotation, keep, utc_today)
    }

    fn open_with_clock(
        path: PathBuf,
        rotation: Rotation,
        keep: usize,
        today: fn() -> String,
    ) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = append(&path)?;
        let size = file.metadata()?.len();
        // A file left by an earlier day is rotated at the first line written today.
        let day = match file.metadata()?.modified() {
            Ok(t) if size > 0 => utc_date(t),
            _ => today(),
        };
        Ok(LogFile {
            path,
            rotation,
            keep,
            today,
            state: Mutex::new(Open { file, size, day }),
        })
    }

    /// The live file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_line(&self, buf: &[u8]) -> io::Result<usize> {
        let mut open = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let due = match self.rotation {
            Rotation::Daily => {
                let today = (self.today)();
                (open.day != today).then_some(today)
            }
            Rotation::Size(max) => {
                (open.size > 0 && open.size + buf.len() as u64 > max).then(|| open.day.clone())
            }
        };
        if let Some(day) = due {
            if open.size > 0 {
                open.file.flush()?;
                // Another writer of the same path (a CLI command beside the daemon) may have
                // rotated it already: only the file this one has open is moved aside,
                // otherwise the live one is reopened and written on.
                if is_open_at(&open.file, &self.path)? {
                    self.rotate(&open.day)?;
                }
                open.file = append(&self.path)?;
                open.size = open.file.metadata()?.len();
            }
            open.day = day;
        }
        open.file.write_all(buf)?;
        open.size += buf.len() as u64;
        Ok(buf.len())
    }

    /// Move the live file aside and drop rotated files beyond `keep`.
    fn rotate(&self, day: &str) -> io::Result<()> {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let aside = |suffix: &str| dir.join(format!("{name}.{suffix}"));
        match self.rotation {
            Rotation::Daily => {
                // A day already set aside (by another writer, or restored) is never
                // overwritten: the next free `DAY.N` takes this part of it.
                let mut n = 0;
                loop {
                    let target = match n {
                        0 => aside(day),
                        n => aside(&format!("{day}.{n}")),
                    };
                    match move_without_replacing(&self.path, &target) {
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                        other => break other?,
                    }
                }
                let mut old: Vec<PathBuf> = std::fs::read_dir(&dir)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .and_then(|n| n.strip_prefix(&format!("{name}.")))
                            .is_some_and(|d| d.len() >= 10 && d.as_bytes()[4] == b'-')
                    })
                    .collect();
                // YYYY-MM-DD sorts by date.
                old.sort();
                let excess = old.len().saturating_sub(self.keep);
                for p in &old[..excess] {
                    std::fs::remove_file(p)?;
                }
            }
            Rotation::Size(_) => {
                let _ = std::fs::remove_file(aside(&self.keep.to_string()));
                for n in (1..self.keep).rev() {
                    let from = aside(&n.to_string());
                    if from.exists() {
                        std::fs::rename(&from, aside(&(n + 1).to_string()))?;
                    }
                }
                if self.keep > 0 {
                    std::fs::rename(&self.path, aside("1"))?;
                } else {
                    std::fs::remove_file(&self.path)?;
                }
            }
        }
        Ok(())
    }
}

/// Whether `path` names the file `file` is (the same device and inode).
fn is_open_at(file: &File, path: &Path) -> io::Result<bool> {
    let on_disk = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let open = file.metadata()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(open.dev() == on_disk.dev() && open.ino() == on_disk.ino())
    }
    #[cfg(not(unix))]
    {
        Ok(open.len() == on_disk.len() && open.modified().ok() == on_disk.modified().ok())
    }
}

/// Rename `from` to `to`, failing with `AlreadyExists` rather than replacing a file there: a
/// hard link (which never replaces) and the removal of the old name; a plain rename after a
/// check where the file system has no hard links.
fn move_without_replacing(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if to.exists() => Err(io::ErrorKind::AlreadyExists.into()),
        Err(_) => std::fs::rename(from, to),
    }
}

fn append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o640);
    }
    options.open(path)
}

/// One event's writer.
#[derive(Debug)]
pub struct LogWriter<'a>(&'a LogFile);

impl Write for LogWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_line(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = LogWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DAY: AtomicUsize = AtomicUsize::new(1);

    fn fake_today() -> String {
        format!("2026-11-{:02}", DAY.load(Ordering::SeqCst))
    }

    // Each test that changes days has its own clock: tests run in parallel.
    static DAY_TWO_WRITERS: AtomicUsize = AtomicUsize::new(11);
    static DAY_KEPT: AtomicUsize = AtomicUsize::new(21);

    fn today_two_writers() -> String {
        format!("2026-11-{:02}", DAY_TWO_WRITERS.load(Ordering::SeqCst))
    }

    fn today_kept() -> String {
        format!("2026-11-{:02}", DAY_KEPT.load(Ordering::SeqCst))
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn daily_rotation_moves_each_day_aside_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/server.log");
        DAY.store(1, Ordering::SeqCst);
        let log = LogFile::open_with_clock(path.clone(), Rotation::Daily, 2, fake_today).unwrap();
        let mut w = LogWriter(&log);
        for day in 1..=4 {
            DAY.store(day, Ordering::SeqCst);
            w.write_all(format!("day {day}\n").as_bytes()).unwrap();
        }
        assert_eq!(read(&path), "day 4\n");
        assert_eq!(
            read(&dir.path().join("logs/server.log.2026-11-03")),
            "day 3\n"
        );
        assert_eq!(
            read(&dir.path().join("logs/server.log.2026-11-02")),
            "day 2\n"
        );
        assert!(
            !dir.path().join("logs/server.log.2026-11-01").exists(),
            "only `keep` rotated files are kept"
        );
    }

    /// Two writers of one path (the daemon and a CLI command): the second to see the new
    /// day writes on in the file the first started, and yesterday's lines stay.
    #[test]
    fn a_second_writer_does_not_rotate_the_others_fresh_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        DAY_TWO_WRITERS.store(11, Ordering::SeqCst);
        let a =
            LogFile::open_with_clock(path.clone(), Rotation::Daily, 5, today_two_writers).unwrap();
        let b =
            LogFile::open_with_clock(path.clone(), Rotation::Daily, 5, today_two_writers).unwrap();
        LogWriter(&a).write_all(b"a on day 11\n").unwrap();
        LogWriter(&b).write_all(b"b on day 11\n").unwrap();
        DAY_TWO_WRITERS.store(12, Ordering::SeqCst);
        LogWriter(&a).write_all(b"a on day 12\n").unwrap();
        LogWriter(&b).write_all(b"b on day 12\n").unwrap();
        assert_eq!(
            read(&dir.path().join("server.log.2026-11-11")),
            "a on day 11\nb on day 11\n"
        );
        assert_eq!(read(&path), "a on day 12\nb on day 12\n");
    }

    /// A day already set aside is never overwritten.
    #[test]
    fn an_existing_rotated_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        std::fs::write(dir.path().join("server.log.2026-11-21"), "kept\n").unwrap();
        DAY_KEPT.store(21, Ordering::SeqCst);
        let log = LogFile::open_with_clock(path.clone(), Rotation::Daily, 5, today_kept).unwrap();
        LogWriter(&log).write_all(b"day 21\n").unwrap();
        DAY_KEPT.store(22, Ordering::SeqCst);
        LogWriter(&log).write_all(b"day 22\n").unwrap();
        assert_eq!(read(&dir.path().join("server.log.2026-11-21")), "kept\n");
        assert_eq!(
            read(&dir.path().join("server.log.2026-11-21.1")),
            "day 21\n"
        );
        assert_eq!(read(&path), "day 22\n");
    }

    #[test]
    fn size_rotation_numbers_the_older_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        let log = LogFile::open(&path, Rotation::Size(10), 2).unwrap();
        let mut w = LogWriter(&log);
        for line in ["aaaaaa\n", "bbbbbb\n", "cccccc\n", "dddddd\n"] {
            w.write_all(line.as_bytes()).unwrap();
        }
        assert_eq!(read(&path), "dddddd\n");
        assert_eq!(read(&dir.path().join("server.log.1")), "cccccc\n");
        assert_eq!(read(&dir.path().join("server.log.2")), "bbbbbb\n");
        assert!(!dir.path().join("server.log.3").exists());
    }

    #[test]
    fn an_existing_file_is_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        std::fs::write(&path, "before\n").unwrap();
        let log = LogFile::open(&path, Rotation::Size(1 << 20), 7).unwrap();
        LogWriter(&log).write_all(b"after\n").unwrap();
        assert_eq!(read(&path), "before\nafter\n");
    }
}
