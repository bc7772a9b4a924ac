//! Address families, source scopes and the "is this a global address" rule.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP address family: the monitor tracks one current address per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of `addr`.
    ///
    /// ```
    /// use ip_monitor_core::Family;
    /// assert_eq!(Family::of(&"2001:db8::1".parse().unwrap()), Family::V6);
    /// ```
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// `"v4"` or `"v6"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }

    /// The unspecified address of this family (`0.0.0.0` or `::`), used to bind a socket
    /// that can only speak this family.
    pub fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a string is not `v4` or `v6`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown address family {0:?}: expected \"v4\" or \"v6\"")]
pub struct ParseFamilyError(pub String);

impl FromStr for Family {
    type Err = ParseFamilyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v4" | "ipv4" | "4" => Ok(Family::V4),
            "v6" | "ipv6" | "6" => Ok(Family::V6),
            _ => Err(ParseFamilyError(s.to_owned())),
        }
    }
}

/// What kind of address a source reports, and so which answers are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Scope {
    /// The address the internet sees: answers must be global unicast addresses.
    Public,
    /// An address of this host's own interfaces: LAN addresses are allowed.
    Local,
}

/// Whether `addr` is a global unicast address, reachable from the internet.
///
/// Rejects unspecified, loopback, private (RFC 1918, IPv6 unique local), link-local,
/// shared address space (CGNAT, `100.64.0.0/10`), documentation, benchmarking, multicast,
/// reserved and broadcast ranges, and IPv4-mapped IPv6 addresses.
///
/// ```
/// use ip_monitor_core::is_global;
/// assert!(is_global("8.8.8.8".parse().unwrap()));
/// assert!(!is_global("192.168.1.1".parse().unwrap()));
/// assert!(!is_global("100.64.0.1".parse().unwrap()));
/// assert!(!is_global("2001:db8::1".parse().unwrap()));
/// assert!(is_global("2606:4700:4700::1111".parse().unwrap()));
/// ```
pub fn is_global(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    let in_net = |net: [u8; 4], bits: u32| {
        let mask = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        u32::from(a) & mask == u32::from(Ipv4Addr::from(net)) & mask
    };
    !(o[0] == 0                          // "this network"
        || o[0] == 10                    // private
        || o[0] == 127                   // loopback
        || in_net([100, 64, 0, 0], 10)   // shared address space (CGNAT)
        || in_net([169, 254, 0, 0], 16)  // link-local
        || in_net([172, 16, 0, 0], 12)   // private
        || in_net([192, 0, 0, 0], 24)    // IETF protocol assignments
        || in_net([192, 0, 2, 0], 24)    // documentation (TEST-NET-1)
        || in_net([192, 88, 99, 0], 24)  // deprecated 6to4 relay anycast
        || in_net([192, 168, 0, 0], 16)  // private
        || in_net([198, 18, 0, 0], 15)   // benchmarking
        || in_net([198, 51, 100, 0], 24) // documentation (TEST-NET-2)
        || in_net([203, 0, 113, 0], 24)  // documentation (TEST-NET-3)
        || o[0] >= 224) // multicast, reserved, broadcast
}

fn is_global_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    let in_net = |net: Ipv6Addr, bits: u32| {
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - bits)
        };
        u128::from(a) & mask == u128::from(net) & mask
    };
    // Global unicast is 2000::/3; everything else (loopback, unspecified, link-local,
    // unique local, multicast, IPv4-mapped, discard) falls outside it.
    (s[0] & 0xe000) == 0x2000
        && !in_net(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32) // documentation
        && !in_net(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20) // documentation
        && !in_net(Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 0), 48) // benchmarking
        && !in_net(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23) // IETF protocol assignments
        && !in_net(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) // 6to4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_special_purpose_v4() {
        for a in [
            "0.0.0.0",
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_global(a.parse().unwrap()), "{a} must not be global");
        }
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "198.20.0.1",
            "81.2.69.160",
        ] {
            assert!(is_global(a.parse().unwrap()), "{a} must be global");
        }
    }

    #[test]
    fn rejects_special_purpose_v6() {
        for a in [
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:8.8.8.8",
            "2001:db8::1",
            "3fff::1",
            "2001:2::1",
            "100::1",
        ] {
            assert!(!is_global(a.parse().unwrap()), "{a} must not be global");
        }
        for a in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:4860:4802:32::a",
        ] {
            assert!(is_global(a.parse().unwrap()), "{a} must be global");
        }
    }

    #[test]
    fn family_parses_and_prints() {
        assert_eq!("v4".parse::<Family>().unwrap(), Family::V4);
        assert_eq!("IPv6".parse::<Family>().unwrap(), Family::V6);
        assert!("v5".parse::<Family>().is_err());
        assert_eq!(Family::V6.to_string(), "v6");
    }
}
