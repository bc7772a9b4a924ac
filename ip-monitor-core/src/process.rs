//! Programs of the operator's, run in a process group of their own that is killed as a
//! whole when the run is abandoned (a timeout), so no grandchild outlives it.

use std::io;
use std::process::ExitStatus;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// A child leading its own process group; dropping it kills the group.
#[derive(Debug)]
pub(crate) struct GroupChild {
    child: Child,
    group: Option<Pid>,
    reaped: bool,
}

impl GroupChild {
    /// Spawn `command` as the leader of a new process group.
    pub(crate) fn spawn(mut command: Command) -> io::Result<GroupChild> {
        command.process_group(0).kill_on_drop(true);
        let child = command.spawn()?;
        let group = child.id().and_then(|id| Pid::from_raw(id as i32));
        Ok(GroupChild {
            child,
            group,
            reaped: false,
        })
    }

    pub(crate) fn stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    pub(crate) fn stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        self.reaped = true;
        Ok(status)
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        // Only an unfinished run is killed: once the leader is reaped its number may be
        // reused, and what it left running on purpose is the operator's.
        if let (Some(group), false) = (self.group, self.reaped) {
            // Gone already (ESRCH) is fine: the group ended on its own.
            let _ = kill_process_group(group, Signal::KILL);
        }
    }
}

/// How the programs are told a family (`IP_MONITOR_FAMILY`, a hook's `{family}`).
pub(crate) fn family_word(family: crate::address::Family) -> &'static str {
    match family {
        crate::address::Family::V4 => "ipv4",
        crate::address::Family::V6 => "ipv6",
    }
}

/// The last `n` non-empty lines of `bytes`, joined with " / ", lossily decoded.
pub(crate) fn last_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}
