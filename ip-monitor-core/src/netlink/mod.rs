//! The kernel's own view of this host's addresses and routes, read over rtnetlink (Linux):
//! the interface source's addresses, the default route's interface and gateway, and the
//! notifications of address and route changes that wake a check.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket, protocols::NETLINK_ROUTE};

use crate::address::Family;

mod choose;
pub mod watch;

pub use choose::Prefer;
pub(crate) use choose::{KernelAddress, choose, instead_of_temporary};

/// A default route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DefaultRoute {
    pub(crate) family: Family,
    /// The outgoing interface.
    pub(crate) index: Option<u32>,
    pub(crate) gateway: Option<IpAddr>,
    pub(crate) metric: u32,
}

/// Serialize one request.
fn request(message: RouteNetlinkMessage, flags: u16) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// The messages of one datagram; undecodable ones are skipped. `Err` is the kernel's error
/// answer; `Ok((messages, true))` when the dump is done.
fn messages(data: &[u8]) -> io::Result<(Vec<RouteNetlinkMessage>, bool)> {
    let mut out = Vec::new();
    let mut offset = 0;
    // Each message's header says how long it is; messages are 4-byte aligned.
    while let Ok(buffer) = NetlinkBuffer::new_checked(&data[offset..]) {
        let length = buffer.length() as usize;
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..offset + length]) {
            Ok(message) => match message.payload {
                NetlinkPayload::Done(_) => return Ok((out, true)),
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                NetlinkPayload::InnerMessage(m) => out.push(m),
                _ => {}
            },
            Err(e) => tracing::debug!(error = %e, "skipped an undecodable netlink message"),
        }
        offset += (length + 3) & !3;
        if offset >= data.len() {
            break;
        }
    }
    Ok((out, false))
}

/// One dump request and every message of its answer.
async fn dump(message: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
    socket.socket_mut().bind_auto()?;
    socket.socket_mut().connect(&SocketAddr::new(0, 0))?;
    socket
        .send(&request(message, NLM_F_REQUEST | NLM_F_DUMP))
        .await?;
    let mut out = Vec::new();
    loop {
        let (data, _) = socket.recv_from_full().await?;
        let (mut batch, done) = messages(&data)?;
        out.append(&mut batch);
        if done {
            return Ok(out);
        }
    }
}

/// Every address of every interface.
pub(crate) async fn addresses() -> io::Result<Vec<KernelAddress>> {
    let answer = dump(RouteNetlinkMessage::GetAddress(AddressMessage::default())).await?;
    Ok(answer
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a) => kernel_address(&a),
            _ => None,
        })
        .collect())
}

fn kernel_address(message: &AddressMessage) -> Option<KernelAddress> {
    let mut address = None;
    let mut local = None;
    let mut flags = u32::from(message.header.flags.bits());
    let mut preferred = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Local(a) => local = Some(*a),
            // IFA_FLAGS, when present, supersedes the header's eight bits.
            AddressAttribute::Flags(f) => flags = f.bits(),
            AddressAttribute::CacheInfo(info) => {
                preferred = (info.ifa_preferred != u32::MAX).then_some(info.ifa_preferred);
            }
            _ => {}
        }
    }
    Some(KernelAddress {
        index: message.header.index,
        // On a point-to-point link IFA_ADDRESS is the peer's; IFA_LOCAL is ours.
        address: local.or(address)?,
        flags,
        universe: message.header.scope == AddressScope::Universe,
        preferred,
    })
}

/// The index of the interface called `name`.
pub(crate) async fn link_index(name: &str) -> io::Result<Option<u32>> {
    let answer = dump(RouteNetlinkMessage::GetLink(LinkMessage::default())).await?;
    Ok(answer.into_iter().find_map(|m| match m {
        RouteNetlinkMessage::NewLink(link) => link
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::IfName(n) if n == name))
            .then_some(link.header.index),
        _ => None,
    }))
}

/// The default routes of the main table, the lowest metric first.
pub(crate) async fn default_routes() -> io::Result<Vec<DefaultRoute>> {
    let answer = dump(RouteNetlinkMessage::GetRoute(RouteMessage::default())).await?;
    let mut routes: Vec<DefaultRoute> = answer
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r) => default_route(&r),
            _ => None,
        })
        .collect();
    routes.sort_by_key(|r| r.metric);
    Ok(routes)
}

fn default_route(message: &RouteMessage) -> Option<DefaultRoute> {
    let header = &message.header;
    let family = match header.address_family {
        AddressFamily::Inet => Family::V4,
        AddressFamily::Inet6 => Family::V6,
        _ => return None,
    };
    let mut table = u32::from(header.table);
    let mut route = DefaultRoute {
        family,
        index: None,
        gateway: None,
        metric: 0,
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(i) => route.index = Some(*i),
            RouteAttribute::Priority(p) => route.metric = *p,
            RouteAttribute::Gateway(RouteAddress::Inet(a)) => route.gateway = Some((*a).into()),
            RouteAttribute::Gateway(RouteAddress::Inet6(a)) => route.gateway = Some((*a).into()),
            _ => {}
        }
    }
    (header.destination_prefix_length == 0 && table == u32::from(RouteHeader::RT_TABLE_MAIN))
        .then_some(route)
}

/// The interface of the default route of `family` (the lowest metric).
pub(crate) async fn default_interface(family: Family) -> io::Result<Option<u32>> {
    Ok(default_routes()
        .await?
        .into_iter()
        .find(|r| r.family == family && r.index.is_some())
        .and_then(|r| r.index))
}
