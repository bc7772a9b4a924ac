//! The address of the interface this host would use to reach the internet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use async_trait::async_trait;
use tokio::net::UdpSocket;

use super::{DnsProblem, IpSource, SourceError};
use crate::address::{Family, Scope};

/// Reads the address of the outgoing interface: a UDP socket is "connected" to a target
/// (no packet is sent; the kernel only picks a route) and its local address is read.
///
/// Its scope is [`Scope::Local`]: behind NAT this is a LAN address, which is what a monitor
/// of a LAN-facing service wants. The targets only choose the route and are configurable.
///
/// With privacy extensions on, the kernel's source address for IPv6 is a *temporary*
/// address that rotates daily; on Linux (the `interfaces` feature) such an answer is
/// replaced by the same interface's stable address, and is an error when it has none (where
/// the address table cannot be read, the kernel's choice stands).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{Family, IpSource, LocalInterfaceSource};
/// let source = LocalInterfaceSource::new().target_v4("127.0.0.1:9".parse().unwrap());
/// assert_eq!(source.fetch(Family::V4).await.unwrap().to_string(), "127.0.0.1");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct LocalInterfaceSource {
    v4: SocketAddr,
    v6: SocketAddr,
}

impl LocalInterfaceSource {
    /// Routes towards `1.1.1.1:53` and `[2606:4700:4700::1111]:53`.
    pub fn new() -> Self {
        LocalInterfaceSource {
            v4: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)), 53),
            v6: SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111)),
                53,
            ),
        }
    }

    /// The IPv4 target whose route is looked up.
    pub fn target_v4(mut self, target: SocketAddr) -> Self {
        self.v4 = target;
        self
    }

    /// The IPv6 target whose route is looked up.
    pub fn target_v6(mut self, target: SocketAddr) -> Self {
        self.v6 = target;
        self
    }
}

impl Default for LocalInterfaceSource {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl IpSource for LocalInterfaceSource {
    fn name(&self) -> &str {
        "local-interface"
    }

    fn scope(&self) -> Scope {
        Scope::Local
    }

    async fn fetch(&self, family: Family) -> Result<IpAddr, SourceError> {
        let target = match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        };
        if Family::of(&target.ip()) != family {
            return Err(SourceError::Unsupported { family });
        }
        let transport = |e: std::io::Error| SourceError::Transport(Box::new(e));
        let socket = UdpSocket::bind(SocketAddr::new(family.unspecified(), 0))
            .await
            .map_err(transport)?;
        socket.connect(target).await.map_err(transport)?;
        let ip = socket.local_addr().map_err(transport)?.ip();
        if ip.is_unspecified() {
            return Err(SourceError::Dns(DnsProblem::NoRoute));
        }
        #[cfg(all(feature = "interfaces", target_os = "linux"))]
        if ip.is_ipv6() {
            match crate::netlink::addresses().await {
                Ok(addresses) => {
                    return crate::netlink::instead_of_temporary(&addresses, ip)
                        .map_err(SourceError::NoAddress);
                }
                // A sandbox without netlink: the kernel's choice, as on other systems.
                Err(e) => tracing::debug!(error = %e, "cannot read the address table"),
            }
        }
        Ok(ip)
    }
}
