//! Where a disconnect came from, as an address and as a network: the peer
//! a broker reports (`peername`, `ipaddress`, Mosquitto's `connected from
//! ADDR`) read without its port, and the source network it belongs to (its
//! IPv4 /24 or IPv6 /48 by default), written as `203.0.113.0/24` or
//! `2001:db8:1234::/48`.
//!
//! Peers come in every shape brokers write: `203.0.113.7:51234`,
//! `[2001:db8::7]:51234`, EMQX's `2001:db8::7:51234` (no brackets, the port
//! after the last colon: `emqx_utils:ntoa`), and a bare address (an IPv6
//! one without a port is given in brackets by the event parser, so it is
//! never read as address and port). An IPv4-mapped IPv6 address is its
//! IPv4 address. Anything else has no address and no network.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The prefix lengths networks are cut at (`--top.network-prefix-v4`,
/// `--top.network-prefix-v6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefixes {
    pub v4: u8,
    pub v6: u8,
}

impl Default for Prefixes {
    fn default() -> Self {
        Prefixes { v4: 24, v6: 48 }
    }
}

/// The peer's address without its port, as a slice of `peer`, and the
/// address itself.
pub fn address(peer: &str) -> Option<(&str, IpAddr)> {
    let peer = peer.trim();
    if let Some(rest) = peer.strip_prefix('[') {
        // [v6]:port or [v6]
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return inside.parse::<Ipv6Addr>().ok().map(|a| (inside, unmap(a)));
    }
    if let Some((left, port)) = peer.rsplit_once(':') {
        if is_port(port) {
            if let Ok(addr) = left.parse::<IpAddr>() {
                return Some((left, canonical(addr)));
            }
        }
    }
    peer.parse::<IpAddr>().ok().map(|a| (peer, canonical(a)))
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

fn unmap(a: Ipv6Addr) -> IpAddr {
    match a.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(a),
    }
}

fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => unmap(v6),
        v4 => v4,
    }
}

/// Writes the network of `addr` (cut at `prefixes`) into `out`, replacing
/// what it held: `203.0.113.0/24`, `2001:db8:1234::/48`.
pub fn network(addr: IpAddr, prefixes: Prefixes, out: &mut String) {
    out.clear();
    match addr {
        IpAddr::V4(a) => {
            let bits = prefixes.v4.min(32);
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            let _ = write!(out, "{}/{bits}", Ipv4Addr::from(u32::from(a) & mask));
        }
        IpAddr::V6(a) => {
            let bits = prefixes.v6.min(128);
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            let _ = write!(out, "{}/{bits}", Ipv6Addr::from(u128::from(a) & mask));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(peer: &str) -> Option<String> {
        let (_, addr) = address(peer)?;
        let mut out = String::new();
        network(addr, Prefixes::default(), &mut out);
        Some(out)
    }

    #[test]
    fn every_shape_brokers_write() {
        for (peer, addr, network) in [
            ("203.0.113.7:51234", "203.0.113.7", "203.0.113.0/24"),
            ("203.0.113.7", "203.0.113.7", "203.0.113.0/24"),
            (
                "[2001:db8:1234:5::7]:51234",
                "2001:db8:1234:5::7",
                "2001:db8:1234::/48",
            ),
            // EMQX: no brackets, the port after the last colon
            ("2001:db8::7:51234", "2001:db8::7", "2001:db8::/48"),
            (
                "2001:db8:1234::7:1883",
                "2001:db8:1234::7",
                "2001:db8:1234::/48",
            ),
            // a bare IPv6 address, as the parser brackets it
            (
                "[2001:db8:1234::7:1883]",
                "2001:db8:1234::7:1883",
                "2001:db8:1234::/48",
            ),
            (
                "[::ffff:198.51.100.9]:40000",
                "::ffff:198.51.100.9",
                "198.51.100.0/24",
            ),
            ("::1:45678", "::1", "::/48"),
        ] {
            assert_eq!(address(peer).map(|(a, _)| a), Some(addr), "{peer}");
            assert_eq!(net(peer).as_deref(), Some(network), "{peer}");
        }
        for bad in [
            "",
            "host.example:1883",
            "203.0.113.7:port",
            "[2001:db8::7",
            "[::1]x",
            "1.2.3",
        ] {
            assert_eq!(address(bad), None, "{bad}");
        }
    }

    #[test]
    fn other_prefixes() {
        let mut out = String::new();
        let p = Prefixes { v4: 16, v6: 64 };
        network("203.0.113.7".parse().unwrap(), p, &mut out);
        assert_eq!(out, "203.0.0.0/16");
        network("2001:db8:1:2:3::4".parse().unwrap(), p, &mut out);
        assert_eq!(out, "2001:db8:1:2::/64");
        network(
            "203.0.113.7".parse().unwrap(),
            Prefixes { v4: 32, v6: 128 },
            &mut out,
        );
        assert_eq!(out, "203.0.113.7/32");
        network(
            "203.0.113.7".parse().unwrap(),
            Prefixes { v4: 0, v6: 0 },
            &mut out,
        );
        assert_eq!(out, "0.0.0.0/0");
    }
}
