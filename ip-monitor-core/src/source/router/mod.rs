//! The external address straight from the router: NAT-PMP (RFC 6886) and PCP (RFC 6887),
//! on the `crab_nat` client.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU16;
use std::time::Duration;

use async_trait::async_trait;
use crab_nat::{InternetProtocol, PortMappingOptions, PortMappingType, TimeoutConfig};

use super::{IpSource, SourceError};
use crate::address::Family;

mod announce;

pub use announce::RouterWatch;

/// Which protocol a [`RouterSource`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouterProtocol {
    /// NAT-PMP's external-address request (IPv4 only).
    NatPmp,
    /// PCP: a short MAP request whose answer carries the external address (IPv4, and IPv6
    /// on routers that speak it), deleted again at once.
    Pcp,
}

/// How long a PCP mapping made to learn the address lives, should its deletion be lost.
const PROBE_MAPPING_SECONDS: u32 = 60;

/// Retries as RFC 6886 lays them out (250 ms, doubling), cut short to fit a source's timeout.
const RETRIES: TimeoutConfig = TimeoutConfig {
    initial_timeout: Duration::from_millis(250),
    max_retries: 2,
    max_retry_timeout: Some(Duration::from_secs(1)),
};

/// Asks the router (the default route's gateway, or a given address, on port 5351) for its
/// external address, by NAT-PMP or PCP. A router behind another NAT answers with a private
/// or CGNAT address: that answer is not global and is rejected like any other source's.
/// Routers announce a changed address on their own; a [`RouterWatch`] listens for it.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ip_monitor_core::{Family, IpSource, RouterSource};
/// let router = RouterSource::nat_pmp().gateway("192.168.1.1".parse().unwrap());
/// println!("{:?}", router.fetch(Family::V4).await);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RouterSource {
    protocol: RouterProtocol,
    gateway: Option<IpAddr>,
    name: String,
}

impl RouterSource {
    /// NAT-PMP through the default route's gateway.
    pub fn nat_pmp() -> Self {
        RouterSource {
            protocol: RouterProtocol::NatPmp,
            gateway: None,
            name: "natpmp".to_owned(),
        }
    }

    /// PCP through the default route's gateway.
    pub fn pcp() -> Self {
        RouterSource {
            protocol: RouterProtocol::Pcp,
            gateway: None,
            name: "pcp".to_owned(),
        }
    }

    /// Ask this router instead of the default route's gateway.
    pub fn gateway(mut self, gateway: IpAddr) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Name it in logs and status (default `natpmp` or `pcp`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The protocol it speaks.
    pub fn protocol(&self) -> RouterProtocol {
        self.protocol
    }

    /// The configured gateway; `None` is the default route's.
    pub fn configured_gateway(&self) -> Option<IpAddr> {
        self.gateway
    }

    /// The router asked for `family`: the configured one, or the default route's gateway.
    pub async fn gateway_for(&self, family: Family) -> Result<IpAddr, SourceError> {
        match self.gateway {
            Some(ip) if Family::of(&ip) == family => Ok(ip),
            Some(_) => Err(SourceError::Unsupported { family }),
            None => default_gateway(family).await,
        }
    }
}

#[cfg(all(feature = "interfaces", target_os = "linux"))]
async fn default_gateway(family: Family) -> Result<IpAddr, SourceError> {
    let routes = crate::netlink::default_routes()
        .await
        .map_err(|e| SourceError::Transport(Box::new(e)))?;
    match routes
        .into_iter()
        .filter(|r| r.family == family)
        .find_map(|r| r.gateway)
    {
        Some(IpAddr::V6(v6)) if v6.is_unicast_link_local() => Err(SourceError::NoAddress(format!(
            "the IPv6 default gateway {v6} is link-local: set the router's global address as gateway"
        ))),
        Some(ip) => Ok(ip),
        None => Err(SourceError::NoAddress(format!(
            "no {family} default gateway"
        ))),
    }
}

#[cfg(not(all(feature = "interfaces", target_os = "linux")))]
async fn default_gateway(_: Family) -> Result<IpAddr, SourceError> {
    Err(SourceError::NoAddress(
        "the default gateway is read from the kernel on Linux only: set the gateway".to_owned(),
    ))
}

/// A refusal that asking again will not change (the router does not speak the protocol, or
/// refuses this host) is [`SourceError::Router`]; the rest may pass.
fn nat_pmp_error(e: crab_nat::natpmp::Failure) -> SourceError {
    use crab_nat::natpmp::Failure;
    match e {
        Failure::UnsupportedVersion(_) | Failure::NotAuthorized | Failure::UnsupportedOpcode => {
            SourceError::Router(format!("NAT-PMP: {e}"))
        }
        other => SourceError::Transport(Box::new(other)),
    }
}

fn pcp_error(e: crab_nat::pcp::Failure) -> SourceError {
    use crab_nat::pcp::Failure;
    match e {
        Failure::UnsupportedVersion(_)
        | Failure::NotAuthorized(_)
        | Failure::MalformedRequest
        | Failure::UnsupportedOpcode
        | Failure::UnsupportedOption
        | Failure::MalformedOption
        | Failure::UnsupportedProtocol
        | Failure::AddressMismatch => SourceError::Router(format!("PCP: {e}")),
        other => SourceError::Transport(Box::new(other)),
    }
}

/// The external address by a PCP MAP of a UDP port held open for it, deleted again.
async fn pcp_external(gateway: IpAddr) -> Result<IpAddr, SourceError> {
    let transport = |e: std::io::Error| SourceError::Transport(Box::new(e));
    // Our address as the router sees it, and a port of ours that nothing else uses.
    let probe = tokio::net::UdpSocket::bind(SocketAddr::new(Family::of(&gateway).unspecified(), 0))
        .await
        .map_err(transport)?;
    probe
        .connect((gateway, crab_nat::GATEWAY_PORT))
        .await
        .map_err(transport)?;
    let local = probe.local_addr().map_err(transport)?;
    let port = NonZeroU16::new(local.port())
        .ok_or_else(|| transport(std::io::Error::other("no local port was given")))?;
    let base = crab_nat::pcp::BaseMapRequest::new(gateway, local.ip(), InternetProtocol::Udp, port);
    let options = PortMappingOptions {
        external_port: None,
        lifetime_seconds: Some(PROBE_MAPPING_SECONDS),
        timeout_config: Some(RETRIES),
    };
    let mapping = crab_nat::pcp::port_mapping(base, None, None, options)
        .await
        .map_err(pcp_error)?;
    let external = match mapping.mapping_type() {
        PortMappingType::Pcp { external_ip, .. } => external_ip,
        PortMappingType::NatPmp => {
            return Err(SourceError::Router("PCP: answered as NAT-PMP".to_owned()));
        }
    };
    if let Err((e, _)) = mapping.try_drop().await {
        tracing::debug!(error = %e, "the PCP mapping made to learn the address stays until it expires");
    }
    Ok(external)
}

#[async_trait]
impl IpSource for RouterSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch(&self, family: Family) -> Result<IpAddr, SourceError> {
        if self.protocol == RouterProtocol::NatPmp && family == Family::V6 {
            return Err(SourceError::Unsupported { family });
        }
        let gateway = self.gateway_for(family).await?;
        match self.protocol {
            RouterProtocol::NatPmp => crab_nat::natpmp::external_address(gateway, Some(RETRIES))
                .await
                .map(IpAddr::V4)
                .map_err(nat_pmp_error),
            RouterProtocol::Pcp => pcp_external(gateway).await,
        }
    }
}
