//! A program of the operator's run once per change, through the outbox like a channel: "run
//! my script when the address changes".

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;

use crate::error::InvalidSetting;
use crate::notice::Notice;
use crate::notify::{Notifier, NotifyError, SendPermit, Sent};
use crate::process::{GroupChild, family_word, last_lines};
use crate::recipients::Recipient;

/// The exit status that asks for a retry (`EX_TEMPFAIL`, sysexits.h).
pub const EX_TEMPFAIL: i32 = 75;

/// The most bytes of stderr kept; the error shows its last lines.
const STDERR_BYTES: usize = 8192;

/// Runs an argv (no shell) for each notice it is given, as the notifier of a channel
/// recipient. `{ip}`, `{previous}`, `{url}` and `{family}` (`ipv4` / `ipv6`) in the
/// arguments are replaced, and the same values are in the environment as
/// `IP_MONITOR_ADDRESS`, `IP_MONITOR_PREVIOUS` (empty for the first address),
/// `IP_MONITOR_URL`, `IP_MONITOR_FAMILY`, with `IP_MONITOR_TEST` `1` for a test notice and
/// `0` otherwise.
///
/// Exit 0 is done. Exit 75 (`EX_TEMPFAIL`) and a run past the timeout (its whole process
/// group is killed) are transient: the outbox retries them. Any other exit is a permanent
/// failure that shows the last lines of the program's stderr. Only a lease holder's
/// deliveries run it (the permit is checked first).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::notify::HookNotifier;
/// let hook = HookNotifier::new("log", ["sh", "-c", "echo \"$1\" >> /dev/null", "sh", "{ip}"])
///     .unwrap();
/// assert_eq!(hook.argv()[4], "{ip}");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HookNotifier {
    name: String,
    argv: Vec<String>,
    timeout: Duration,
    on_test: bool,
}

impl HookNotifier {
    /// A hook called `name` that runs `argv`, with a 30 s timeout, run for test notices too.
    pub fn new(
        name: impl Into<String>,
        argv: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, InvalidSetting> {
        let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
        if argv.first().is_none_or(String::is_empty) {
            return Err(InvalidSetting::new("command", "needs at least the program"));
        }
        Ok(HookNotifier {
            name: name.into(),
            argv,
            timeout: Duration::from_secs(30),
            on_test: true,
        })
    }

    /// Kill the run (its process group) after `timeout`; the delivery is retried.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether test notices run it (default true; when false they are done at once).
    pub fn on_test(mut self, on_test: bool) -> Self {
        self.on_test = on_test;
        self
    }

    /// The program and its arguments, unsubstituted.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The program and its arguments as they run for `notice`, substituted.
    pub fn command_line(&self, notice: &Notice) -> Vec<String> {
        let address = notice.address.to_string();
        let previous = notice.previous.map(|p| p.to_string()).unwrap_or_default();
        self.argv
            .iter()
            .map(|arg| {
                arg.replace("{ip}", &address)
                    .replace("{previous}", &previous)
                    .replace("{url}", &notice.url)
                    .replace("{family}", family_word(notice.family))
            })
            .collect()
    }

    fn command(&self, notice: &Notice) -> tokio::process::Command {
        let family = family_word(notice.family);
        let address = notice.address.to_string();
        let previous = notice.previous.map(|p| p.to_string()).unwrap_or_default();
        let argv = self.command_line(notice);
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env("IP_MONITOR_ADDRESS", &address)
            .env("IP_MONITOR_PREVIOUS", &previous)
            .env("IP_MONITOR_URL", &notice.url)
            .env("IP_MONITOR_FAMILY", family)
            .env("IP_MONITOR_TEST", if notice.test { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }
}

#[async_trait]
impl Notifier for HookNotifier {
    async fn send(
        &self,
        notice: &Notice,
        _recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
        if notice.test && !self.on_test {
            tracing::info!(hook = %self.name, "test notice: the hook is not run (on_test = false)");
            return Ok(Sent::direct());
        }
        permit.check()?;
        let mut child = GroupChild::spawn(self.command(notice)).map_err(|e| {
            NotifyError::permanent(format!(
                "hook {}: cannot run {:?}: {e}",
                self.name, self.argv[0]
            ))
        })?;
        let mut stderr = child.stderr();
        let run = async {
            let mut said = Vec::new();
            if let Some(err) = stderr.as_mut() {
                // Keep reading to the end (the program must not block on a full pipe); keep
                // the last bytes.
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = err.read(&mut buf).await {
                    said.extend_from_slice(&buf[..n]);
                    if said.len() > STDERR_BYTES {
                        said.drain(..said.len() - STDERR_BYTES);
                    }
                }
            }
            (child.wait().await, said)
        };
        // On a timeout the run is dropped, and with it the child: its group is killed.
        let (status, said) = tokio::time::timeout(self.timeout, run).await.map_err(|_| {
            NotifyError::transient(format!(
                "hook {}: no exit within {:?}: killed; retried",
                self.name, self.timeout
            ))
        })?;
        let status =
            status.map_err(|e| NotifyError::transient(format!("hook {}: {e}", self.name)))?;
        let tail = last_lines(&said, 5);
        let shown = |what: String| {
            if tail.is_empty() {
                format!("hook {}: {what}", self.name)
            } else {
                format!("hook {}: {what}: {tail}", self.name)
            }
        };
        match status.code() {
            Some(0) => Ok(Sent::direct()),
            Some(EX_TEMPFAIL) => Err(NotifyError::transient(shown(format!(
                "exit {EX_TEMPFAIL} (try again later)"
            )))),
            _ => Err(NotifyError::permanent(shown(status.to_string()))),
        }
    }
}
