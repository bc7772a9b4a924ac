//! Routers announce a changed external address on their own: NAT-PMP multicasts it to
//! 224.0.0.1:5350 (RFC 6886 §3.2.1), PCP multicasts an ANNOUNCE after a restart (RFC 6887
//! §14.1). Hearing one from the gateway wakes a full check.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::RouterSource;
use crate::address::Family;
use crate::error::Error;
use crate::monitor::MonitorHandle;

/// What a router's announcement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announcement {
    /// NAT-PMP: the external address now.
    NatPmp(Ipv4Addr),
    /// PCP ANNOUNCE: the router restarted or its mappings changed.
    Pcp,
}

fn announcement(packet: &[u8]) -> Option<Announcement> {
    match packet {
        // Version 0, opcode 128 (external-address response), result 0.
        [0, 128, 0, 0, _, _, _, _, a, b, c, d] => {
            Some(Announcement::NatPmp(Ipv4Addr::new(*a, *b, *c, *d)))
        }
        // Version 2, R bit and opcode 0 (ANNOUNCE), result 0; at least the header.
        [2, 0x80, _, 0, ..] if packet.len() >= 24 => Some(Announcement::Pcp),
        _ => None,
    }
}

/// Listens on port 5350 for the announcements of the routers that [`RouterSource`]s ask
/// and asks the monitor for a full check ([`MonitorHandle::check_soon`]) when one comes
/// from such a router: only from the configured gateway, or the default route's (RFC 6886
/// §3.2.1). A router repeats an announcement up to ten times over a minute or so, and may
/// send a PCP ANNOUNCE beside it: a new address wakes at once, anything else at most once
/// per [`REPEAT`](RouterWatch::REPEAT); and never more than one check per
/// [`MIN_GAP`](RouterWatch::MIN_GAP).
///
/// Dropping the watch stops it.
#[derive(Debug)]
pub struct RouterWatch {
    task: JoinHandle<()>,
}

impl RouterWatch {
    /// The port routers announce to.
    pub const PORT: u16 = 5350;
    /// How long an announcement of the same address is taken as a repeat.
    pub const REPEAT: Duration = Duration::from_secs(10);
    /// The least time between two checks it asks for.
    pub const MIN_GAP: Duration = Duration::from_secs(1);

    /// Listen for the routers of `sources` (on IPv4, and IPv6 where the host has it) on the
    /// current tokio runtime. Fails when port 5350 cannot be bound.
    pub fn spawn(monitor: MonitorHandle, sources: Vec<RouterSource>) -> io::Result<RouterWatch> {
        let v4 = bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, Self::PORT)))?;
        // Members of the all-hosts group already; joining again only makes it explicit.
        let _ = v4.join_multicast_v4(Ipv4Addr::new(224, 0, 0, 1), Ipv4Addr::UNSPECIFIED);
        let v6 = bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, Self::PORT))).ok();
        Ok(RouterWatch {
            task: tokio::spawn(listen(v4, v6, monitor, sources)),
        })
    }

    /// Whether the watch has stopped (the monitor was shut down).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for RouterWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A UDP socket on `addr` that other listeners of the port may share.
fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Whether `from` is the router of one of `sources`.
async fn from_a_router(from: IpAddr, sources: &[RouterSource]) -> bool {
    let from = from.to_canonical();
    for source in sources {
        if source.gateway_for(Family::of(&from)).await.ok() == Some(from) {
            return true;
        }
    }
    false
}

async fn receive(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn listen(
    v4: UdpSocket,
    v6: Option<UdpSocket>,
    monitor: MonitorHandle,
    sources: Vec<RouterSource>,
) {
    tracing::info!(
        port = RouterWatch::PORT,
        "listening for the router's address announcements"
    );
    // When the monitor was last woken, and the last address a NAT-PMP router announced.
    let mut woken: Option<Instant> = None;
    let mut announced: Option<Ipv4Addr> = None;
    let (mut buf4, mut buf6) = ([0u8; 64], [0u8; 64]);
    loop {
        let received = tokio::select! {
            r = v4.recv_from(&mut buf4) => r.map(|(n, from)| (buf4[..n].to_vec(), from)),
            r = receive(v6.as_ref(), &mut buf6) => r.map(|(n, from)| (buf6[..n].to_vec(), from)),
        };
        let (packet, from) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "router announcements: receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(said) = announcement(&packet) else {
            continue;
        };
        if !from_a_router(from.ip(), &sources).await {
            tracing::debug!(%from, "ignored an announcement from a host that is not the gateway");
            continue;
        }
        // A new address wakes at once; anything else (a repeat, the PCP ANNOUNCE a router
        // sends beside its NAT-PMP one) only once per REPEAT.
        let new_address = matches!(said, Announcement::NatPmp(a) if announced != Some(a));
        if let Announcement::NatPmp(a) = said {
            announced = Some(a);
        }
        if !new_address && woken.is_some_and(|at| at.elapsed() < RouterWatch::REPEAT) {
            continue;
        }
        // However many come (a LAN host can forge the gateway's address), at most one check
        // a second.
        if let Some(at) = woken {
            tokio::time::sleep(RouterWatch::MIN_GAP.saturating_sub(at.elapsed())).await;
        }
        woken = Some(Instant::now());
        tracing::info!(router = %from.ip(), ?said, "the router announced a change: checking now");
        if let Err(Error::Stopped) = monitor.check_soon().await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_read_as_the_rfcs_lay_them_out() {
        let natpmp = [0, 128, 0, 0, 0, 0, 1, 0, 81, 2, 69, 160];
        assert_eq!(
            announcement(&natpmp),
            Some(Announcement::NatPmp(Ipv4Addr::new(81, 2, 69, 160)))
        );
        let mut pcp = [0u8; 24];
        pcp[..2].copy_from_slice(&[2, 0x80]);
        assert_eq!(announcement(&pcp), Some(Announcement::Pcp));
        // A failed result, a request, a short packet: nothing.
        assert_eq!(
            announcement(&[0, 128, 0, 3, 0, 0, 1, 0, 81, 2, 69, 160]),
            None
        );
        assert_eq!(announcement(&[0, 0]), None);
        assert_eq!(announcement(&pcp[..20]), None);
    }
}
