//! An address printed by a program of the operator's: a router's own CLI or API client.

use std::net::IpAddr;
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{IpSource, MAX_ANSWER_BYTES, SourceError, parse_plain};
use crate::address::Family;
use crate::error::InvalidSetting;

/// The most bytes of a program's stderr kept for its error.
const STDERR_BYTES: usize = 2048;

/// Runs a program (an argv, no shell) and reads one address from its standard output: the
/// trimmed output must be exactly one address of the family asked for. A non-zero exit is a
/// failed answer that shows the end of the program's stderr; garbage is a failed answer
/// like any source's. `IP_MONITOR_FAMILY` (`ipv4` or `ipv6`) tells the program which family
/// is asked for. The source set's timeout bounds the run: past it the program's whole
/// process group is killed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{CommandIpSource, Family, IpSource};
/// let source = CommandIpSource::new(["echo", "81.2.69.160"]).unwrap();
/// assert_eq!(source.fetch(Family::V4).await.unwrap().to_string(), "81.2.69.160");
/// let failing = CommandIpSource::new(["sh", "-c", "echo no route >&2; exit 3"]).unwrap();
/// let err = failing.fetch(Family::V4).await.unwrap_err().to_string();
/// assert!(err.contains("no route"), "{err}");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CommandIpSource {
    argv: Vec<String>,
    name: String,
}

impl CommandIpSource {
    /// Run `argv` (the program, then its arguments). Fails when `argv` is empty.
    pub fn new(argv: impl IntoIterator<Item = impl Into<String>>) -> Result<Self, InvalidSetting> {
        let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
        let Some(program) = argv.first() else {
            return Err(InvalidSetting::new("command", "needs at least the program"));
        };
        if program.is_empty() {
            return Err(InvalidSetting::new("command", "the program is empty"));
        }
        let base = program.rsplit('/').next().unwrap_or(program);
        Ok(CommandIpSource {
            name: format!("command:{base}"),
            argv,
        })
    }

    /// Name it in logs and status (default `command:PROGRAM`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

/// Up to `limit` bytes of `reader`, and whether there was more.
async fn read_bounded(reader: Option<impl AsyncRead + Unpin>, limit: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    if let Some(reader) = reader {
        let _ = reader.take(limit as u64 + 1).read_to_end(&mut out).await;
    }
    let more = out.len() > limit;
    out.truncate(limit);
    (out, more)
}

#[async_trait]
impl IpSource for CommandIpSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch(&self, family: Family) -> Result<IpAddr, SourceError> {
        let mut command = tokio::process::Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .env("IP_MONITOR_FAMILY", crate::process::family_word(family))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = crate::process::GroupChild::spawn(command)
            .map_err(|e| SourceError::Command(format!("cannot run {:?}: {e}", self.argv[0])))?;
        let (stdout, stderr) = (child.stdout(), child.stderr());
        let ((out, more), (err, _), status) = tokio::join!(
            read_bounded(stdout, MAX_ANSWER_BYTES),
            read_bounded(stderr, STDERR_BYTES),
            child.wait()
        );
        let status = status.map_err(|e| SourceError::Transport(Box::new(e)))?;
        // Past the limit the pipe is closed on the program, which may die of it.
        if more {
            return Err(SourceError::TooLarge {
                limit: MAX_ANSWER_BYTES,
            });
        }
        if !status.success() {
            let said = crate::process::last_lines(&err, 3);
            return Err(SourceError::Command(if said.is_empty() {
                status.to_string()
            } else {
                format!("{status}: {said}")
            }));
        }
        parse_plain(&out, family)
    }
}
