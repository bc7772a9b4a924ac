//! Who may act: [`Holder`] and its [`Lease`].

use std::time::SystemTime;

/// Who holds (or wants) the lease: one monitor instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Holder {
    /// Unique per running instance.
    pub id: String,
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
}

impl Holder {
    /// An identity for this process: host name, pid and a random suffix (so two monitors in
    /// one process, or a restarted process with a reused pid, never share an id).
    pub fn this_process() -> Self {
        let host = host_name();
        let pid = std::process::id();
        Holder {
            id: format!("{host}-{pid}-{:08x}", fastrand::u32(..)),
            host,
            pid,
        }
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The right to act (check, record, deliver) for a while. Each acquisition gets a higher
/// `fence` than any before; the store refuses claims and marks under a stale one.
///
/// Times are on the store's own clock (the database server's, for a database): compare them
/// with nothing on the caller's clock. A holder keeps its own deadline on a monotonic clock,
/// measured from before it asked for the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Lease {
    /// The holder.
    pub holder: Holder,
    /// The fencing number.
    pub fence: u64,
    /// When this holder acquired it (store clock).
    pub acquired_at: SystemTime,
    /// When it lapses unless renewed (store clock).
    pub expires_at: SystemTime,
}
