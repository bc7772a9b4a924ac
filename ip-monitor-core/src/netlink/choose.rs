//! Which of an interface's addresses is the one to publish: never a temporary, deprecated,
//! tentative or non-global IPv6 address (unless temporary ones are asked for), the stable
//! one with the longest preferred lifetime first; an interface's primary global IPv4 address.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::address::{Family, is_global};

/// Which kind of IPv6 address the interface source publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Prefer {
    /// A stable address (SLAAC, stable-privacy, DHCPv6 or static), never a temporary one:
    /// temporary addresses rotate daily and would send a notice each day.
    #[default]
    Stable,
    /// A temporary (privacy) address when the interface has one, else a stable one.
    Temporary,
}

// The kernel's IFA_F_* address flags (`linux/if_addr.h`).
const SECONDARY: u32 = 0x01; // IPv4: secondary; IPv6: temporary (the same bit)
const NODAD_OPTIMISTIC: u32 = 0x04;
const DADFAILED: u32 = 0x08;
const DEPRECATED: u32 = 0x20;
const TENTATIVE: u32 = 0x40;

/// One address the kernel holds, as read from its address table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KernelAddress {
    /// The interface's index.
    pub(crate) index: u32,
    pub(crate) address: IpAddr,
    /// The IFA_F_* flags.
    pub(crate) flags: u32,
    /// Whether the address's scope is global ("universe").
    pub(crate) universe: bool,
    /// Seconds the address stays preferred; `None` is forever.
    pub(crate) preferred: Option<u32>,
}

impl KernelAddress {
    fn temporary(&self) -> bool {
        self.address.is_ipv6() && self.flags & SECONDARY != 0
    }

    /// Why this address is not one to publish, if it is not.
    fn unusable(&self) -> Option<&'static str> {
        if !self.universe || !is_global(self.address) {
            Some("not global")
        } else if self.flags & (TENTATIVE | NODAD_OPTIMISTIC) != 0 {
            Some("tentative")
        } else if self.flags & DADFAILED != 0 {
            Some("duplicate")
        } else if self.flags & DEPRECATED != 0 || self.preferred == Some(0) {
            Some("deprecated")
        } else {
            None
        }
    }
}

/// The address of `family` to publish among `addresses` of the interface `index`, or what
/// was there and why none was taken (for the error).
pub(crate) fn choose(
    addresses: &[KernelAddress],
    index: u32,
    family: Family,
    prefer: Prefer,
) -> Result<IpAddr, String> {
    let mine = || {
        addresses
            .iter()
            .filter(move |a| a.index == index && Family::of(&a.address) == family)
    };
    let usable = || mine().filter(|a| a.unusable().is_none());
    let chosen = match family {
        // The primary address first, as the kernel lists it.
        Family::V4 => usable()
            .find(|a| a.flags & SECONDARY == 0)
            .or_else(|| usable().next()),
        Family::V6 => {
            let best = |temporary: bool| {
                usable()
                    .filter(|a| a.temporary() == temporary)
                    // The longest preferred lifetime; forever first; then the lowest address
                    // so that the choice does not depend on the kernel's order.
                    .max_by(|a, b| {
                        let life = |x: &KernelAddress| x.preferred.map_or(u64::MAX, u64::from);
                        life(a).cmp(&life(b)).then(b.address.cmp(&a.address))
                    })
            };
            match prefer {
                Prefer::Stable => best(false),
                Prefer::Temporary => best(true).or_else(|| best(false)),
            }
        }
    };
    if let Some(a) = chosen {
        return Ok(a.address);
    }
    let mut seen = String::new();
    for a in mine() {
        let why = match a.unusable() {
            Some(why) => why,
            None if a.temporary() => "temporary",
            None => "skipped",
        };
        let _ = write!(
            seen,
            "{}{} {why}",
            if seen.is_empty() { "" } else { ", " },
            a.address
        );
    }
    let family = match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    };
    Err(if seen.is_empty() {
        format!("no {family} address")
    } else {
        format!("no usable {family} address ({seen})")
    })
}

/// The address to publish in place of `chosen` (the kernel's source address for a route):
/// `chosen` itself unless it is a temporary IPv6 address; then the same interface's stable
/// address of the same reach (global, or not), the longest preferred lifetime first.
pub(crate) fn instead_of_temporary(
    addresses: &[KernelAddress],
    chosen: IpAddr,
) -> Result<IpAddr, String> {
    let Some(own) = addresses.iter().find(|a| a.address == chosen) else {
        return Ok(chosen);
    };
    if !own.temporary() {
        return Ok(chosen);
    }
    addresses
        .iter()
        .filter(|a| a.index == own.index && a.address.is_ipv6() && !a.temporary())
        .filter(|a| a.universe && is_global(a.address) == is_global(chosen))
        .filter(|a| matches!(a.unusable(), None | Some("not global")))
        .max_by_key(|a| a.preferred.map_or(u64::MAX, u64::from))
        .map(|a| a.address)
        .ok_or_else(|| {
            format!("{chosen} is a temporary address and its interface has no stable one")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(address: &str, flags: u32, preferred: Option<u32>) -> KernelAddress {
        KernelAddress {
            index: 2,
            address: address.parse().unwrap(),
            flags,
            universe: !address.starts_with("fe80"),
            preferred,
        }
    }

    #[test]
    fn a_stable_address_wins_over_a_temporary_one_with_a_longer_life() {
        let list = [
            addr("2a01:4f8::aaaa", SECONDARY, Some(86_000)),
            addr("2a01:4f8::1", 0, Some(3_600)),
            addr("fe80::1", 0x80, None),
            addr("fd00::1", 0x80, None),
        ];
        let stable = choose(&list, 2, Family::V6, Prefer::Stable).unwrap();
        assert_eq!(stable.to_string(), "2a01:4f8::1");
        let temporary = choose(&list, 2, Family::V6, Prefer::Temporary).unwrap();
        assert_eq!(temporary.to_string(), "2a01:4f8::aaaa");
    }

    #[test]
    fn only_temporary_deprecated_or_tentative_addresses_give_none() {
        let list = [
            addr("2a01:4f8::aaaa", SECONDARY, Some(86_000)),
            addr("2a01:4f8::2", DEPRECATED, Some(0)),
            addr("2a01:4f8::3", 0, Some(0)),
            addr("2a01:4f8::4", TENTATIVE, None),
            addr("fe80::1", 0x80, None),
        ];
        let err = choose(&list, 2, Family::V6, Prefer::Stable).unwrap_err();
        assert_eq!(
            err,
            "no usable IPv6 address (2a01:4f8::aaaa temporary, 2a01:4f8::2 deprecated, \
             2a01:4f8::3 deprecated, 2a01:4f8::4 tentative, fe80::1 not global)"
        );
        assert_eq!(
            choose(&list, 3, Family::V6, Prefer::Stable).unwrap_err(),
            "no IPv6 address"
        );
    }

    #[test]
    fn the_longest_preferred_lifetime_wins_and_forever_is_longest() {
        let list = [
            addr("2a01:4f8::5", 0, Some(100)),
            addr("2a01:4f8::9", 0, None),
            addr("2a01:4f8::7", 0, Some(200)),
        ];
        let chosen = choose(&list, 2, Family::V6, Prefer::Stable).unwrap();
        assert_eq!(chosen.to_string(), "2a01:4f8::9");
    }

    #[test]
    fn ipv4_takes_the_primary_global_address() {
        let list = [
            addr("192.168.1.5", 0, None),
            addr("81.2.69.161", SECONDARY, None),
            addr("81.2.69.160", 0, None),
        ];
        let chosen = choose(&list, 2, Family::V4, Prefer::Stable).unwrap();
        assert_eq!(chosen.to_string(), "81.2.69.160");
        let private = [addr("192.168.1.5", 0, None), addr("100.64.0.9", 0, None)];
        let err = choose(&private, 2, Family::V4, Prefer::Stable).unwrap_err();
        assert!(err.contains("100.64.0.9 not global"), "{err}");
    }

    #[test]
    fn a_temporary_source_address_is_replaced_by_the_stable_one() {
        let list = [
            addr("2a01:4f8::aaaa", SECONDARY, Some(86_000)),
            addr("2a01:4f8::1", 0, Some(3_600)),
            addr("fd00::1", 0, None),
        ];
        let temporary = "2a01:4f8::aaaa".parse().unwrap();
        let stable = instead_of_temporary(&list, temporary).unwrap();
        assert_eq!(stable.to_string(), "2a01:4f8::1");
        let ula = "fd00::1".parse().unwrap();
        assert_eq!(instead_of_temporary(&list, ula).unwrap(), ula);
        let err = instead_of_temporary(&list[..1], temporary).unwrap_err();
        assert!(err.contains("no stable one"), "{err}");
    }
}
