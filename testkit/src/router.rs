//! A router's NAT-PMP (RFC 6886) and PCP (RFC 6887) server on port 5351 of an address of the
//! test's own network namespace: the external-address request, MAP requests (the external
//! address a mapping gets), and the unsolicited announcements routers multicast to
//! 224.0.0.1:5350 when their external address changes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;

/// The port NAT-PMP and PCP servers listen on.
pub const SERVER_PORT: u16 = 5351;
/// The port clients hear announcements on.
pub const CLIENT_PORT: u16 = 5350;

#[derive(Debug)]
struct State {
    external: IpAddr,
    /// A result code to answer every request with instead of success.
    result: u8,
    /// PCP MAP requests: (requested lifetime, internal port).
    maps: Vec<(u32, u16)>,
    /// NAT-PMP external-address requests.
    asked: usize,
    started: Instant,
}

/// The fake router. Answers from a task on the current runtime until dropped.
#[derive(Debug)]
pub struct Router {
    /// Where it listens (`ADDRESS:5351`).
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Router {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn epoch(state: &State) -> [u8; 4] {
    (state.started.elapsed().as_secs() as u32).to_be_bytes()
}

/// The 16-byte form PCP carries addresses in (IPv4 mapped).
fn pcp_address(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The answer to one request, as the RFCs lay it out; `None` for what a router ignores.
fn answer(request: &[u8], state: &mut State) -> Option<Vec<u8>> {
    match request {
        // NAT-PMP: version 0, opcode 0 (external address).
        [0, 0, ..] => {
            state.asked += 1;
            let mut out = vec![0, 128, 0, state.result];
            out.extend_from_slice(&epoch(state));
            let v4 = match state.external {
                IpAddr::V4(v4) => v4,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            out.extend_from_slice(&v4.octets());
            Some(out)
        }
        // NAT-PMP with another opcode: "unsupported opcode" (5).
        [0, op, ..] if *op < 128 => {
            let mut out = vec![0, op | 128, 0, 5];
            out.extend_from_slice(&epoch(state));
            Some(out)
        }
        // PCP MAP: a 24-byte header and a 36-byte MAP body.
        [2, 1, _, _, rest @ ..] if request.len() >= 60 => {
            let lifetime = u32::from_be_bytes(rest[0..4].try_into().ok()?);
            let body = &request[24..60];
            let internal_port = u16::from_be_bytes([body[16], body[17]]);
            state.maps.push((lifetime, internal_port));
            let mut out = vec![2, 0x81, 0, state.result];
            out.extend_from_slice(&lifetime.to_be_bytes());
            out.extend_from_slice(&epoch(state));
            out.extend_from_slice(&[0; 12]);
            // Nonce, protocol, reserved, internal port echoed; the external port and address.
            out.extend_from_slice(&body[..18]);
            let external_port = if lifetime == 0 {
                0
            } else {
                40_000 + internal_port % 1000
            };
            out.extend_from_slice(&external_port.to_be_bytes());
            let external = if lifetime == 0 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                state.external
            };
            out.extend_from_slice(&pcp_address(external));
            Some(out)
        }
        _ => None,
    }
}

impl Router {
    /// Listen on `address:5351` (an address of this namespace) with `external` as the
    /// router's external address.
    pub async fn start(address: IpAddr, external: IpAddr) -> Router {
        let socket = UdpSocket::bind((address, SERVER_PORT)).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            external,
            result: 0,
            maps: Vec::new(),
            asked: 0,
            started: Instant::now(),
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1100];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let reply = answer(&buf[..n], &mut shared.lock().unwrap());
                if let Some(reply) = reply {
                    let _ = socket.send_to(&reply, from).await;
                }
            }
        });
        Router { addr, state, task }
    }

    /// Answer with `external` from now on.
    pub fn set_external(&self, external: IpAddr) {
        self.state.lock().unwrap().external = external;
    }

    /// Answer every request with this result code (0: success; NAT-PMP 2 is "not
    /// authorized", PCP 2 is "NOT_AUTHORIZED" as well).
    pub fn set_result(&self, code: u8) {
        self.state.lock().unwrap().result = code;
    }

    /// How many NAT-PMP external-address requests came.
    pub fn asked(&self) -> usize {
        self.state.lock().unwrap().asked
    }

    /// The PCP MAP requests that came: (requested lifetime, internal port); a lifetime of 0
    /// deletes a mapping.
    pub fn maps(&self) -> Vec<(u32, u16)> {
        self.state.lock().unwrap().maps.clone()
    }

    /// Multicast what a router sends when its external address changed: the NAT-PMP
    /// external-address announcement (RFC 6886 §3.2.1) and a PCP ANNOUNCE (RFC 6887 §14.1),
    /// from this router's address to 224.0.0.1:5350.
    pub async fn announce(&self) {
        let (natpmp, pcp) = {
            let state = self.state.lock().unwrap();
            let mut natpmp = vec![0, 128, 0, 0];
            natpmp.extend_from_slice(&epoch(&state));
            let v4 = match state.external {
                IpAddr::V4(v4) => v4,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            natpmp.extend_from_slice(&v4.octets());
            let mut pcp = vec![2, 0x80, 0, 0, 0, 0, 0, 0];
            pcp.extend_from_slice(&epoch(&state));
            pcp.extend_from_slice(&[0; 12]);
            (natpmp, pcp)
        };
        let socket = UdpSocket::bind((self.addr.ip(), 0)).await.unwrap();
        let group = SocketAddr::from((Ipv4Addr::new(224, 0, 0, 1), CLIENT_PORT));
        socket.send_to(&natpmp, group).await.unwrap();
        socket.send_to(&pcp, group).await.unwrap();
    }
}
