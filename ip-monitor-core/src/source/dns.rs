//! DNS sources: resolvers and authoritative servers that answer with the asker's address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use async_trait::async_trait;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use tokio::net::UdpSocket;

use super::{DnsProblem, IpSource, SourceError, parse_plain};
use crate::address::Family;

/// Which question to ask, and how its answer carries the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsQuery {
    /// `myip.opendns.com` A / AAAA, asked of OpenDNS's resolvers.
    OpenDns,
    /// `whoami.cloudflare` TXT in the CHAOS class, asked of 1.1.1.1.
    CloudflareWhoami,
    /// `o-o.myaddr.l.google.com` TXT, asked of ns1.google.com directly (other Google servers
    /// answer with the resolver's address, not this host's).
    GoogleMyAddr,
}

/// An IP source that asks one DNS server one question over UDP, from a socket of the family
/// asked for, so the server sees (and reports) this host's address of that family.
///
/// ```
/// use ip_monitor_core::DnsIpSource;
/// let opendns = DnsIpSource::opendns();
/// // Tests and unusual networks point it elsewhere:
/// let local = DnsIpSource::google().server_v4("127.0.0.1:5353".parse().unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct DnsIpSource {
    name: String,
    query: DnsQuery,
    v4: SocketAddr,
    v6: SocketAddr,
}

impl DnsIpSource {
    /// A source asking `query` of the given servers.
    pub fn new(name: impl Into<String>, query: DnsQuery, v4: SocketAddr, v6: SocketAddr) -> Self {
        DnsIpSource {
            name: name.into(),
            query,
            v4,
            v6,
        }
    }

    /// OpenDNS: `myip.opendns.com` at resolver1.opendns.com (208.67.222.222,
    /// 2620:119:35::35).
    pub fn opendns() -> Self {
        Self::new(
            "opendns",
            DnsQuery::OpenDns,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(208, 67, 222, 222)), 53),
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2620, 0x119, 0x35, 0, 0, 0, 0, 0x35)),
                53,
            ),
        )
    }

    /// Cloudflare: `whoami.cloudflare` CHAOS TXT at 1.1.1.1 (2606:4700:4700::1111).
    pub fn cloudflare() -> Self {
        Self::new(
            "cloudflare-dns",
            DnsQuery::CloudflareWhoami,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)), 53),
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111)),
                53,
            ),
        )
    }

    /// Google: `o-o.myaddr.l.google.com` TXT at ns1.google.com (216.239.32.10,
    /// 2001:4860:4802:32::a).
    pub fn google() -> Self {
        Self::new(
            "google-dns",
            DnsQuery::GoogleMyAddr,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(216, 239, 32, 10)), 53),
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4802, 0x32, 0, 0, 0, 0xa)),
                53,
            ),
        )
    }

    /// The server asked for IPv4 addresses.
    pub fn server_v4(mut self, server: SocketAddr) -> Self {
        self.v4 = server;
        self
    }

    /// The server asked for IPv6 addresses.
    pub fn server_v6(mut self, server: SocketAddr) -> Self {
        self.v6 = server;
        self
    }

    /// The name in logs and status.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn question(&self, family: Family) -> (Name, RecordType, DNSClass) {
        let (name, rtype, class) = match (self.query, family) {
            (DnsQuery::OpenDns, Family::V4) => ("myip.opendns.com.", RecordType::A, DNSClass::IN),
            (DnsQuery::OpenDns, Family::V6) => {
                ("myip.opendns.com.", RecordType::AAAA, DNSClass::IN)
            }
            (DnsQuery::CloudflareWhoami, _) => {
                ("whoami.cloudflare.", RecordType::TXT, DNSClass::CH)
            }
            (DnsQuery::GoogleMyAddr, _) => {
                ("o-o.myaddr.l.google.com.", RecordType::TXT, DNSClass::IN)
            }
        };
        (Name::from_ascii(name).expect("static name"), rtype, class)
    }
}

#[async_trait]
impl IpSource for DnsIpSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn fetch(&self, family: Family) -> Result<IpAddr, SourceError> {
        let server = match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        };
        if Family::of(&server.ip()) != family {
            return Err(SourceError::Unsupported { family });
        }
        let (name, rtype, class) = self.question(family);
        let mut query = Query::query(name.clone(), rtype);
        query.set_query_class(class);
        let mut request = Message::query();
        request.metadata.recursion_desired = self.query == DnsQuery::OpenDns;
        request.add_query(query.clone());
        let id = request.metadata.id;
        let bytes = request
            .to_vec()
            .map_err(|e| SourceError::Dns(DnsProblem::Encode(Box::new(e))))?;

        let transport = |e: std::io::Error| SourceError::Transport(Box::new(e));
        let socket = UdpSocket::bind(SocketAddr::new(family.unspecified(), 0))
            .await
            .map_err(transport)?;
        socket.connect(server).await.map_err(transport)?;
        socket.send(&bytes).await.map_err(transport)?;
        let mut buf = [0u8; 1232];
        // Datagrams that are not the answer to this question (its id, a response, the same
        // question section: RFC 5452) are ignored; the monitor's per-source timeout bounds
        // the wait.
        let response = loop {
            let n = socket.recv(&mut buf).await.map_err(transport)?;
            match Message::from_vec(&buf[..n]) {
                Ok(m)
                    if m.metadata.id == id
                        && m.metadata.message_type == MessageType::Response
                        && m.queries == [query.clone()] =>
                {
                    break m;
                }
                _ => continue,
            }
        };
        if response.metadata.op_code != OpCode::Query {
            return Err(SourceError::Dns(DnsProblem::Opcode));
        }
        if response.metadata.truncation {
            return Err(SourceError::Dns(DnsProblem::Truncated));
        }
        if response.metadata.response_code != ResponseCode::NoError {
            return Err(SourceError::Dns(DnsProblem::ResponseCode(
                response.metadata.response_code.to_string(),
            )));
        }
        let mut last_error = None;
        // Only records of the name and class asked about can hold the address.
        let asked = response
            .answers
            .iter()
            .filter(|r| r.name == name && r.dns_class == class);
        for record in asked {
            let found = match &record.data {
                RData::A(a) if rtype == RecordType::A => Ok(IpAddr::V4(a.0)),
                RData::AAAA(a) if rtype == RecordType::AAAA => Ok(IpAddr::V6(a.0)),
                RData::TXT(txt) if rtype == RecordType::TXT => {
                    let joined: Vec<u8> = txt
                        .txt_data
                        .iter()
                        .flat_map(|s| s.iter().copied())
                        .collect();
                    parse_plain(&joined, family)
                }
                _ => continue,
            };
            match found {
                Ok(addr) => return Ok(addr),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| SourceError::Dns(DnsProblem::NoRecord)))
    }
}
