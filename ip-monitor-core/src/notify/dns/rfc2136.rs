//! A DNS record kept on the current address with RFC 2136 dynamic updates signed with TSIG
//! (RFC 8945, HMAC-SHA256/384/512), as a notifier: BIND, Knot, PowerDNS and others. Like
//! [`cloudflare`](super::cloudflare), route a DNS record recipient to it; each change is one
//! outbox delivery per record.
//!
//! The update has no prerequisite, so it is idempotent: it deletes the name's A (or AAAA)
//! set and adds the new address, in one message the server applies atomically. The reply's
//! TSIG is verified, then the record is read back from the server. A signed reply that
//! refuses the update (`NOTAUTH`, `REFUSED`, `NOTZONE`) is a permanent failure. An unsigned
//! one may be forged, so the update is sent again: the same unverified refusal three times
//! (how a wrong key is answered: `BADKEY`/`BADSIG` cannot be signed) is permanent, anything
//! else is retried later, as are no answer in time and `SERVFAIL`. Test notices do not touch
//! DNS.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use tokio::net::UdpSocket;

use crate::address::Family;
use crate::error::InvalidSetting;
use crate::notice::Notice;
use crate::notify::{Notifier, NotifyError, SendPermit, Sent};
use crate::recipients::Recipient;

/// How many times an update is sent while its answers are unsigned or fail verification,
/// before the same answer each time is taken as the server's word.
const UNVERIFIED_TRIES: usize = 3;

/// Keeps the A and/or AAAA set of one name on the current address.
#[derive(Clone)]
pub struct Rfc2136Record {
    server: SocketAddr,
    zone: Name,
    name: Name,
    ttl: u32,
    families: Vec<Family>,
    signer: TSigner,
    timeout: Duration,
}

impl fmt::Debug for Rfc2136Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc2136Record")
            .field("server", &self.server)
            .field("zone", &self.zone)
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .field("key", self.signer.signer_name())
            .finish_non_exhaustive()
    }
}

impl Rfc2136Record {
    /// The name `name` in `zone`, updated at `server`, signed with the TSIG key `key_name`
    /// (`algorithm` `hmac-sha256`, `hmac-sha384` or `hmac-sha512`; `secret` as base64, as
    /// BIND's `tsig-keygen` prints it). A records (v4), TTL 300 s, 5 s timeout.
    pub fn new(
        server: SocketAddr,
        zone: &str,
        name: &str,
        key_name: &str,
        algorithm: &str,
        secret_base64: &str,
    ) -> Result<Self, InvalidSetting> {
        use base64::Engine as _;
        let bad = |field, what: String| InvalidSetting::new(field, what);
        let mut zone = Name::from_ascii(zone).map_err(|e| bad("zone", format!("{zone:?}: {e}")))?;
        let mut name = Name::from_ascii(name).map_err(|e| bad("name", format!("{name:?}: {e}")))?;
        zone.set_fqdn(true);
        name.set_fqdn(true);
        if !zone.zone_of(&name) {
            return Err(bad("name", format!("{name} is not in the zone {zone}")));
        }
        let algorithm = match algorithm.to_ascii_lowercase().as_str() {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(bad(
                    "tsig_algorithm",
                    format!("{other:?}: expected hmac-sha256, hmac-sha384 or hmac-sha512"),
                ));
            }
        };
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret_base64.trim())
            .map_err(|e| bad("tsig_secret", format!("not base64: {e}")))?;
        let key_name = Name::from_ascii(key_name)
            .map_err(|e| bad("tsig_key_name", format!("{key_name:?}: {e}")))?;
        let signer = TSigner::new(key, algorithm, key_name, 300)
            .map_err(|e| bad("tsig_secret", format!("not a usable TSIG key: {e}")))?;
        Ok(Rfc2136Record {
            server,
            zone,
            name,
            ttl: 300,
            families: vec![Family::V4],
            signer,
            timeout: Duration::from_secs(5),
        })
    }

    /// The record's TTL in seconds.
    pub fn ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }

    /// Which sets to keep: A for v4, AAAA for v6.
    pub fn families(mut self, families: impl Into<Vec<Family>>) -> Self {
        self.families = families.into();
        self
    }

    /// Wait this long for each answer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The update message for `address`, signed as of `now` (seconds since 1970).
    fn update(&self, address: IpAddr, now: u64) -> Result<(Message, u16), NotifyError> {
        let (rtype, rdata) = match address {
            IpAddr::V4(a) => (RecordType::A, RData::A(A(a))),
            IpAddr::V6(a) => (RecordType::AAAA, RData::AAAA(AAAA(a))),
        };
        let mut message = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Update);
        // The zone section: the zone's SOA, class IN.
        let mut zone = Query::query(self.zone.clone(), RecordType::SOA);
        zone.set_query_class(DNSClass::IN);
        message.add_query(zone);
        // No prerequisite. Delete the name's set of this type (class ANY, TTL 0, no data),
        // then add the address.
        let mut delete = Record::update0(self.name.clone(), 0, rtype);
        delete.dns_class = DNSClass::ANY;
        message.add_authority(delete);
        message.add_authority(Record::from_rdata(self.name.clone(), self.ttl, rdata));
        let id = message.metadata.id;
        message
            .finalize(&self.signer, now)
            .map_err(|e| NotifyError::permanent(format!("signing the update: {e}")))?;
        Ok((message, id))
    }

    /// Send `message` and wait for its answer.
    async fn exchange(&self, message: &Message, id: u16) -> Result<Vec<u8>, NotifyError> {
        let bytes = message
            .to_vec()
            .map_err(|e| NotifyError::permanent(format!("encoding the update: {e}")))?;
        let bind: SocketAddr = match self.server {
            SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("address"),
            SocketAddr::V6(_) => "[::]:0".parse().expect("address"),
        };
        let io = |e: std::io::Error| NotifyError::route(format!("{}: {e}", self.server));
        let socket = UdpSocket::bind(bind).await.map_err(io)?;
        socket.connect(self.server).await.map_err(io)?;
        socket.send(&bytes).await.map_err(io)?;
        let mut buf = vec![0u8; 4096];
        let answer = async {
            loop {
                let n = socket.recv(&mut buf).await.map_err(io)?;
                // Only an answer to this message counts; a stray datagram is skipped.
                if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                    return Ok(buf[..n].to_vec());
                }
            }
        };
        tokio::time::timeout(self.timeout, answer)
            .await
            .map_err(|_| {
                NotifyError::transient(format!(
                    "{}: no answer within {:?}",
                    self.server, self.timeout
                ))
            })?
    }

    /// Update the set of `address`'s type and read it back.
    ///
    /// Only a signed answer is acted on at once: anyone who can guess the id can forge an
    /// unsigned one. An unverified answer is asked again, up to [`UNVERIFIED_TRIES`] times; the
    /// same unverified refusal every time is what a wrong key or algorithm gets (a server
    /// cannot sign `BADKEY`/`BADSIG`), so it is permanent; anything else is retried later.
    async fn apply(&self, address: IpAddr) -> Result<(), NotifyError> {
        let mut seen: Option<(ResponseCode, String)> = None;
        for _ in 0..UNVERIFIED_TRIES {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let (message, id) = self.update(address, now)?;
            let answer = self.exchange(&message, id).await?;
            let reply = Message::from_vec(&answer)
                .map_err(|e| NotifyError::transient(format!("a malformed answer: {e}")))?;
            let code = reply.metadata.response_code;
            let why = match self.verify(&answer, &message, now) {
                Ok(()) => return self.signed(code, address).await,
                Err(why) => why,
            };
            match &seen {
                Some((first, _)) if *first != code => {
                    return Err(NotifyError::transient(format!(
                        "{} gave differing unverified answers ({first}, then {code})",
                        self.server
                    )));
                }
                _ => seen = Some((code, why)),
            }
        }
        let (code, why) = seen.expect("at least one try");
        if code == ResponseCode::ServFail {
            return Err(NotifyError::transient(format!(
                "{} answered SERVFAIL, unsigned",
                self.server
            )));
        }
        let what = if code == ResponseCode::NoError {
            "accepted the update without a valid signature".to_string()
        } else {
            format!(
                "refused the update of {}: {code} ({})",
                self.name,
                u16::from(code)
            )
        };
        Err(NotifyError::permanent(format!(
            "{} {what}, the same {UNVERIFIED_TRIES} times; the answer's TSIG: {why} \
             (a wrong key, key name or algorithm is answered so)",
            self.server
        )))
    }

    /// Check that `answer` carries the server's signature over it, with our key, in time.
    fn verify(&self, answer: &[u8], request: &Message, now: u64) -> Result<(), String> {
        let (_, _, window) = self
            .signer
            .verify_message_byte(
                answer,
                request.signature().map(|s| s.data.mac.as_slice()),
                true,
            )
            .map_err(|e| e.to_string())?;
        if !window.contains(&now) {
            return Err(format!(
                "its time is more than the fudge away from this host's clock ({now})"
            ));
        }
        Ok(())
    }

    /// Act on a signed answer's `code`: a refusal is the server's word, for good.
    async fn signed(&self, code: ResponseCode, address: IpAddr) -> Result<(), NotifyError> {
        match code {
            ResponseCode::NoError => self.read_back(address).await,
            ResponseCode::ServFail => Err(NotifyError::transient(format!(
                "{} answered SERVFAIL",
                self.server
            ))),
            other => Err(NotifyError::permanent(format!(
                "{} refused the update of {}: {other} ({})",
                self.server,
                self.name,
                u16::from(other)
            ))),
        }
    }

    /// Ask the server for the name's set and check it holds exactly `address`.
    async fn read_back(&self, address: IpAddr) -> Result<(), NotifyError> {
        let rtype = match address {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::AAAA,
        };
        let mut query = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Query);
        query.add_query(Query::query(self.name.clone(), rtype));
        let id = query.metadata.id;
        let answer = self.exchange(&query, id).await?;
        let reply = Message::from_vec(&answer)
            .map_err(|e| NotifyError::transient(format!("a malformed answer: {e}")))?;
        let found: Vec<IpAddr> = reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        if found != [address] {
            return Err(NotifyError::transient(format!(
                "{} answers {found:?} for {} after the update",
                self.server, self.name
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Notifier for Rfc2136Record {
    async fn send(
        &self,
        notice: &Notice,
        _recipient: &Recipient,
        permit: &SendPermit,
    ) -> Result<Sent, NotifyError> {
        if !super::takes(&self.name, &self.families, notice, permit)? {
            return Ok(Sent::direct());
        }
        self.apply(notice.address).await?;
        tracing::info!(name = %self.name, address = %notice.address, server = %self.server, "DNS updated");
        Ok(Sent::direct())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";

    /// A server on loopback that answers the first `refusals` updates with an unsigned
    /// `REFUSED`, as an off-path forger who guessed the id would, and then stays silent.
    async fn forger(refusals: usize) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            for _ in 0..refusals {
                let (n, from) = socket.recv_from(&mut buf).await.unwrap();
                let request = Message::from_vec(&buf[..n]).unwrap();
                let reply =
                    Message::error_msg(request.metadata.id, OpCode::Update, ResponseCode::Refused);
                socket
                    .send_to(&reply.to_vec().unwrap(), from)
                    .await
                    .unwrap();
            }
            loop {
                let _ = socket.recv_from(&mut buf).await;
            }
        });
        addr
    }

    fn record(server: SocketAddr) -> Rfc2136Record {
        Rfc2136Record::new(
            server,
            "example.com",
            "www.example.com",
            "k",
            "hmac-sha256",
            SECRET,
        )
        .unwrap()
        .timeout(Duration::from_millis(300))
    }

    #[tokio::test]
    async fn one_unsigned_refusal_is_retried_not_taken_for_good() {
        let server = forger(1).await;
        let err = record(server)
            .apply("192.0.2.7".parse().unwrap())
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
    }

    #[tokio::test]
    async fn the_same_unsigned_refusal_every_time_is_permanent() {
        let server = forger(UNVERIFIED_TRIES).await;
        let err = record(server)
            .apply("192.0.2.7".parse().unwrap())
            .await
            .unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert!(
            err.to_string().contains("REFUSED") || err.to_string().contains("Refused"),
            "{err}"
        );
    }
}
