//! Wake a running monitor when the kernel's addresses or default routes change, instead of
//! waiting for the next probe.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket, protocols::NETLINK_ROUTE};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{DefaultRoute, addresses, default_routes};
use crate::error::Error;
use crate::monitor::MonitorHandle;

// The kernel's rtnetlink multicast groups (`linux/rtnetlink.h`).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

/// The flags that change which address is published.
const JUDGED_FLAGS: u32 = 0x01 | 0x04 | 0x08 | 0x20 | 0x40;

/// Watches the kernel's address and route notifications (rtnetlink) and asks the monitor
/// for a full check ([`MonitorHandle::check_soon`]) when an address or a default route
/// changed. A burst of notifications is one check: the watch waits until the kernel has
/// been quiet for [`QUIET`](InterfaceWatch::QUIET) (at most
/// [`MAX_WAIT`](InterfaceWatch::MAX_WAIT)), then compares the addresses and default routes
/// with what it saw before, and wakes the monitor only if they differ — an IPv6 router
/// advertisement that only refreshes lifetimes costs two table reads and no check.
///
/// The monitor's probes stay the fallback for an address the host cannot see (behind NAT).
/// Only a leading monitor checks; a standby ignores the wake. Dropping the watch stops it.
#[derive(Debug)]
pub struct InterfaceWatch {
    task: JoinHandle<()>,
}

impl InterfaceWatch {
    /// How long the kernel must be quiet before the tables are compared.
    pub const QUIET: Duration = Duration::from_millis(150);
    /// The longest a burst of notifications delays the check.
    pub const MAX_WAIT: Duration = Duration::from_millis(750);

    /// Subscribe to the kernel's notifications and start watching on the current tokio
    /// runtime. Fails when the netlink socket cannot be opened (not Linux, or a sandbox
    /// that forbids it).
    pub fn spawn(monitor: MonitorHandle) -> io::Result<InterfaceWatch> {
        let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
        let groups = RTMGRP_LINK
            | RTMGRP_IPV4_IFADDR
            | RTMGRP_IPV4_ROUTE
            | RTMGRP_IPV6_IFADDR
            | RTMGRP_IPV6_ROUTE;
        socket.socket_mut().bind(&SocketAddr::new(0, groups))?;
        Ok(InterfaceWatch {
            task: tokio::spawn(watch(socket, monitor)),
        })
    }

    /// Whether the watch has stopped (the monitor was shut down).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for InterfaceWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What decides the published address: each address with the flags that judge it, and the
/// default routes.
#[derive(Debug, PartialEq, Eq)]
struct Tables {
    addresses: Vec<(u32, IpAddr, u32, bool)>,
    routes: Vec<DefaultRoute>,
}

async fn tables() -> io::Result<Tables> {
    let mut addresses: Vec<_> = addresses()
        .await?
        .into_iter()
        .map(|a| {
            let deprecated = a.preferred == Some(0);
            (a.index, a.address, a.flags & JUDGED_FLAGS, deprecated)
        })
        .collect();
    addresses.sort();
    Ok(Tables {
        addresses,
        routes: default_routes().await?,
    })
}

/// Wait for one notification; `false` when the socket failed for good.
async fn notified(socket: &mut TokioSocket) -> bool {
    match socket.recv_from_full().await {
        Ok(_) => true,
        // The kernel dropped notifications (the buffer overflowed): something changed.
        Err(e) if e.raw_os_error() == Some(105) => true,
        Err(e) => {
            tracing::warn!(error = %e, "the kernel's address notifications failed; probes only");
            false
        }
    }
}

async fn watch(mut socket: TokioSocket, monitor: MonitorHandle) {
    let mut seen = tables().await.ok();
    tracing::info!("watching the kernel's address and route changes");
    loop {
        if !notified(&mut socket).await {
            return;
        }
        let until = Instant::now() + InterfaceWatch::MAX_WAIT;
        loop {
            let quiet = (Instant::now() + InterfaceWatch::QUIET).min(until);
            match tokio::time::timeout_at(quiet, notified(&mut socket)).await {
                Ok(true) => continue,
                Ok(false) => return,
                Err(_) => break,
            }
        }
        let now = tables().await.ok();
        if now.is_some() && now == seen {
            continue;
        }
        seen = now;
        tracing::info!("an address or a default route changed: checking now");
        if let Err(Error::Stopped) = monitor.check_soon().await {
            return;
        }
    }
}
