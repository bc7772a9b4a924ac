//! The global address of one of this host's interfaces, read from the kernel (Linux).

use std::net::IpAddr;

use async_trait::async_trait;

use super::{DnsProblem, IpSource, SourceError};
use crate::address::Family;
use crate::netlink::{self, Prefer};

/// The global address of a named interface (or of the default route's interface), read
/// from the kernel's address table over rtnetlink — for a host whose public address is on
/// its own interface (a PPPoE link, a server with a routed prefix).
///
/// For IPv6 it never takes a temporary (privacy), deprecated, tentative, link-local, ULA or
/// otherwise non-global address, and of the stable ones takes the one with the longest
/// preferred lifetime ([`Prefer::Temporary`] for a service that wants the other kind). For
/// IPv4 it takes the interface's primary global address. Its answers go through the same
/// validation and quorum as every source's.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{Family, InterfaceSource, IpSource};
/// let source = InterfaceSource::new().interface("ppp0");
/// match source.fetch(Family::V6).await {
///     Ok(address) => println!("ppp0 has {address}"),
///     Err(e) => println!("no address: {e}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct InterfaceSource {
    interface: Option<String>,
    prefer: Prefer,
    name: String,
}

impl InterfaceSource {
    /// The interface of the default route of each family, stable IPv6 addresses.
    pub fn new() -> Self {
        InterfaceSource {
            interface: None,
            prefer: Prefer::Stable,
            name: "interface".to_owned(),
        }
    }

    /// Read this interface's addresses (`"ppp0"`, `"eth0"`) instead of the default route's.
    pub fn interface(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.name = format!("interface:{name}");
        self.interface = Some(name);
        self
    }

    /// Which kind of IPv6 address to take (default [`Prefer::Stable`]).
    pub fn prefer(mut self, prefer: Prefer) -> Self {
        self.prefer = prefer;
        self
    }
}

impl Default for InterfaceSource {
    fn default() -> Self {
        Self::new()
    }
}

fn transport(e: std::io::Error) -> SourceError {
    SourceError::Transport(Box::new(e))
}

#[async_trait]
impl IpSource for InterfaceSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch(&self, family: Family) -> Result<IpAddr, SourceError> {
        let (index, interface) = match &self.interface {
            Some(name) => match netlink::link_index(name).await.map_err(transport)? {
                Some(index) => (index, name.clone()),
                None => return Err(SourceError::NoAddress(format!("no interface {name:?}"))),
            },
            None => match netlink::default_interface(family)
                .await
                .map_err(transport)?
            {
                Some(index) => (index, format!("the {family} default route's interface")),
                None => return Err(SourceError::Dns(DnsProblem::NoRoute)),
            },
        };
        let addresses = netlink::addresses().await.map_err(transport)?;
        netlink::choose(&addresses, index, family, self.prefer)
            .map_err(|why| SourceError::NoAddress(format!("{interface}: {why}")))
    }
}
