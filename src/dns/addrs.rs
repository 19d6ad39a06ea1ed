//! The live host's global addresses, from the kernel's own tables: IPv4 local addresses in
//! /proc/net/fib_trie (`/32 host LOCAL` leaves), IPv6 in /proc/net/if_inet6 (proc(5)).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Global unicast addresses of this host's interfaces.
pub fn live() -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/proc/net/fib_trie") {
        out.extend(fib_trie_locals(&t).into_iter().map(IpAddr::V4));
    }
    if let Ok(t) = std::fs::read_to_string("/proc/net/if_inet6") {
        out.extend(if_inet6(&t).into_iter().map(IpAddr::V6));
    }
    out.retain(|ip| global(*ip));
    out.sort();
    out.dedup();
    out
}

/// `|-- 192.0.2.25` followed by `/32 host LOCAL`: an address of this host.
fn fib_trie_locals(t: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in t.lines() {
        let l = line.trim();
        if let Some(a) = l.strip_prefix("|-- ").or_else(|| l.strip_prefix("+-- ")) {
            last = a.split('/').next().and_then(|a| a.trim().parse().ok());
        } else if l.starts_with("/32 host LOCAL") {
            out.extend(last);
        }
    }
    out
}

/// `20010db8000000000000000000000025 02 40 00 80 eth0`: address, index, prefix, scope.
fn if_inet6(t: &str) -> Vec<Ipv6Addr> {
    t.lines()
        .filter_map(|l| {
            let hex = l.split_whitespace().next()?;
            let v = u128::from_str_radix(hex, 16).ok()?;
            Some(Ipv6Addr::from(v))
        })
        .collect()
}

/// Addresses the Internet can reach: not loopback, link-local, private (RFC 1918, RFC 6598
/// shared, RFC 4193 unique local) or unspecified.
pub fn global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            !(v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v) => {
            let s = v.segments()[0];
            !(v.is_loopback()
                || v.is_unspecified()
                || (s & 0xfe00) == 0xfc00
                || (s & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_tables_parse() {
        let fib = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 192.0.2.25\n        /32 host LOCAL\n     |-- 192.0.2.255\n        /32 link BROADCAST\n";
        assert_eq!(fib_trie_locals(fib), vec![Ipv4Addr::new(192, 0, 2, 25)]);
        let v6 = "20010db8000000000000000000000025 02 40 00 80 eth0\n00000000000000000000000000000001 01 80 10 80 lo\n";
        let got = if_inet6(v6);
        assert_eq!(got[0], "2001:db8::25".parse::<Ipv6Addr>().unwrap());
        assert!(global(IpAddr::V6(got[0])));
        assert!(!global(IpAddr::V6(got[1])));
        assert!(!global("10.1.2.3".parse().unwrap()));
        assert!(!global("100.64.0.1".parse().unwrap()));
        assert!(global("192.0.2.25".parse().unwrap()));
    }
}
