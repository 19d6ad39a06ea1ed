//! Address patterns as Postfix reads them in mynetworks and the other host/address match
//! lists (src/util/match_ops.c `match_hostaddr()`, src/util/cidr_match.c
//! `cidr_match_parse()`, Postfix 3.7.11) and in cidr: tables (src/util/dict_cidr.c).
//!
//! The outcomes an admin does not expect:
//! - a net/mask entry that cidr_match_parse() rejects (host bits set as in `192.168.1.10/24`,
//!   a dotted mask `/255.255.255.0`, leading zeros `192.168.001.0/24`, `/33`, a short
//!   address `192.168.1/24`) makes match_hostaddr() set `list->error = DICT_ERR_RETRY`;
//!   match_list_match() stops there, and permit_mynetworks (smtpd_check.c) makes
//!   generic_checks() call reject_dict_retry(): `451 4.3.0 <name>: Temporary lookup
//!   failure` for every client of the same address family that no earlier entry matched;
//! - an entry that is not an address, network or table (`192.168.1.*`, `192.168.1.`, an
//!   entry with a pasted no-break space) is skipped by the "light-weight tests" of
//!   match_hostaddr() without any warning: it never matches;
//! - in a cidr: table the same parse error skips only that rule, with a warning
//!   (dict_cidr.c `dict_cidr_parse_rule()`: "...: skipping this rule").

use std::net::IpAddr;

use ipnet::IpNet;

/// V4_ADDR_STRING_CHARS and V6_ADDR_STRING_CHARS of match_ops.c.
const V4_CHARS: &str = "0123456789.";
const V6_CHARS: &str = "0123456789.abcdefABCDEF:";

/// util/cidr_match.c `cidr_match_parse()`: `addr`, `addr/len`, `[addr]`, `[addr]/len` or
/// `[addr/len]`. `Err` is Postfix's own warning text ("non-null host address bits in ...").
/// Addresses are read as glibc inet_pton() reads them (Rust's parser agrees: no leading
/// zeros, exactly four IPv4 octets).
pub fn cidr_match_parse(pattern: &str) -> Result<IpNet, String> {
    let (addr, mask) = match pattern.strip_prefix('[') {
        Some(inner) => {
            let Some((a, after)) = inner.split_once(']') else {
                return Err(format!("missing ']' character after \"[{inner}\""));
            };
            match after.strip_prefix('/') {
                Some(m) => (a, Some(m)),
                None if after.is_empty() => split_mask(a),
                None => return Err(format!("garbage after \"[{a}]\"")),
            }
        }
        None => split_mask(pattern),
    };
    let v6 = addr.contains(':');
    let bits: u32 = if v6 { 128 } else { 32 };
    let parse = |a: &str| -> Option<IpAddr> {
        if v6 {
            a.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        } else {
            a.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
        }
    };
    let Some(mask) = mask else {
        return parse(addr)
            .map(IpNet::from)
            .ok_or_else(|| format!("bad address pattern: \"{addr}\""));
    };
    // alldig() accepts the empty string, and atoi("") is 0.
    let bad = |what: &str| Err(format!("{what} in \"{addr}/{mask}\""));
    if !mask.bytes().all(|b| b.is_ascii_digit()) {
        return bad("bad mask value");
    }
    let len = mask.trim_start_matches('0').parse::<u64>().unwrap_or(
        if mask.trim_start_matches('0').is_empty() {
            0
        } else {
            u64::MAX
        },
    );
    if len > u64::from(bits) {
        return bad("bad mask length");
    }
    let Some(ip) = parse(addr) else {
        return bad("bad network value");
    };
    let net =
        IpNet::new(ip, len as u8).map_err(|_| format!("bad mask length in \"{addr}/{mask}\""))?;
    if net.network() != ip {
        return Err(format!(
            "non-null host address bits in \"{addr}/{mask}\", perhaps you should use \"{}/{len}\" instead",
            net.network()
        ));
    }
    Ok(net)
}

fn split_mask(s: &str) -> (&str, Option<&str>) {
    match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    }
}

/// One literal (not `/file`, not `type:table`) pattern of a host/address list, as
/// match_hostaddr() treats it for every client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrPattern {
    /// An address or network (IPv4 or IPv6).
    Net(IpNet),
    /// cidr_match_parse() rejects it: a lookup of a client of `v6`'s family reaching it fails
    /// (DICT_ERR_RETRY); the text is Postfix's warning.
    Invalid { v6: bool, warning: String },
    /// Skipped by the light-weight tests: no client address ever matches it (why).
    Never(String),
}

/// Classify one pattern (without its `!`, not a table or file) the way match_hostaddr()
/// reaches it. Patterns are casefolded by match_list_parse(); hex digits are compared as
/// lowercase here too.
pub fn classify(pattern: &str) -> AddrPattern {
    let p = pattern.to_ascii_lowercase();
    // match_ops.c: "don't abort with fatal errors on junk that was silently ignored".
    if let Some(c) = p
        .chars()
        .find(|c| !V6_CHARS.contains(*c) && !"[]/".contains(*c))
    {
        let why = match c {
            '*' => "Postfix address patterns have no wildcards".to_string(),
            c if c.is_ascii_graphic() => format!("`{c}` cannot appear in an address pattern"),
            c => format!(
                "it contains the invisible character U+{:04X}, which no address contains",
                c as u32
            ),
        };
        return AddrPattern::Never(why);
    }
    if !p.contains([':', '/']) || p.chars().all(|c| V4_CHARS.contains(c)) {
        // Only an exact string comparison is left (match_ops.c: "We can safely skip IPv4
        // address patterns because their form is unambiguous").
        return match p.trim_matches(['[', ']']).parse::<std::net::Ipv4Addr>() {
            Ok(a) => AddrPattern::Net(IpNet::from(IpAddr::V4(a))),
            Err(_) => AddrPattern::Never(
                "it is neither an address nor a network/length (Postfix has no short network forms like 192.168.1 or 192.168.1.)".to_string(),
            ),
        };
    }
    match cidr_match_parse(&p) {
        Ok(n) => AddrPattern::Net(n),
        Err(warning) => AddrPattern::Invalid {
            v6: p.contains(':'),
            warning,
        },
    }
}

/// match_hostaddr() for one client address and one literal pattern: `Err` carries Postfix's
/// warning when the lookup fails (DICT_ERR_RETRY).
pub fn match_hostaddr(ip: IpAddr, pattern: &str) -> Result<bool, String> {
    match classify(pattern) {
        AddrPattern::Net(n) => Ok(n.contains(&ip)),
        AddrPattern::Never(_) => Ok(false),
        // Address family mismatch: match_hostaddr() returns 0 before parsing.
        AddrPattern::Invalid { v6, .. } if v6 != ip.is_ipv6() => Ok(false),
        AddrPattern::Invalid { warning, .. } => Err(warning),
    }
}

/// Why a mynetworks-style entry that was meant as an address never matches: only for
/// address-like entries (a host name is matched by match_hostname() instead) and entries
/// with bytes no address or host name has (a pasted no-break space).
pub fn dead_reason(pattern: &str) -> Option<String> {
    if pattern.starts_with('/') || (!pattern.starts_with('[') && pattern.contains(':')) {
        return None; // /file or type:table
    }
    let odd = pattern
        .chars()
        .any(|c| c == '*' || !c.is_ascii() || c.is_ascii_control() || c == ' ');
    let addr_like = pattern.chars().all(|c| "0123456789.[]/".contains(c));
    match classify(pattern) {
        AddrPattern::Never(why) if odd || addr_like => Some(why),
        _ => None,
    }
}

/// The canonical network Postfix suggests for a host-bits error ("perhaps you should use
/// \"192.168.1.0/24\" instead"), when the warning has one.
pub fn suggestion(warning: &str) -> Option<&str> {
    let rest = warning.split("perhaps you should use \"").nth(1)?;
    rest.split('"').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_errors_are_postfix_warnings() {
        let e = |p: &str| cidr_match_parse(p).unwrap_err();
        assert_eq!(
            e("192.168.1.10/24"),
            "non-null host address bits in \"192.168.1.10/24\", perhaps you should use \"192.168.1.0/24\" instead"
        );
        assert_eq!(
            e("192.168.1.0/255.255.255.0"),
            "bad mask value in \"192.168.1.0/255.255.255.0\""
        );
        assert_eq!(
            e("192.168.001.0/24"),
            "bad network value in \"192.168.001.0/24\""
        );
        assert_eq!(e("192.168.1.0/33"), "bad mask length in \"192.168.1.0/33\"");
        assert_eq!(e("192.168.1/24"), "bad network value in \"192.168.1/24\"");
        assert_eq!(
            e("[192.168.1.0"),
            "missing ']' character after \"[192.168.1.0\""
        );
        assert!(e("192.168.1.0/").starts_with("non-null host address bits"));
        assert_eq!(
            cidr_match_parse("[192.168.1.0]/24").unwrap().to_string(),
            "192.168.1.0/24"
        );
        assert_eq!(
            cidr_match_parse("[2001:db8::/32]").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(suggestion(&e("10.1.2.3/8")), Some("10.0.0.0/8"));
    }

    #[test]
    fn classify_like_match_hostaddr() {
        assert!(matches!(classify("192.168.1.*"), AddrPattern::Never(_)));
        assert!(matches!(classify("192.168.1."), AddrPattern::Never(_)));
        assert!(matches!(classify("192.168.001.5"), AddrPattern::Never(_)));
        let nbsp = classify("10.0.0.0/8\u{a0}");
        assert!(
            matches!(&nbsp, AddrPattern::Never(w) if w.contains("U+00A0")),
            "{nbsp:?}"
        );
        assert_eq!(match_hostaddr(ip("192.168.1.20"), "192.168.1.20"), Ok(true));
        assert_eq!(
            match_hostaddr(ip("192.168.1.20"), "[192.168.1.0]/24"),
            Ok(true)
        );
        assert_eq!(match_hostaddr(ip("::1"), "[::1]"), Ok(true));
        assert!(match_hostaddr(ip("192.168.1.20"), "192.168.1.10/24").is_err());
        // The family test comes before the parse: IPv6 clients pass an IPv4 typo.
        assert_eq!(
            match_hostaddr(ip("2001:db8::1"), "192.168.1.10/24"),
            Ok(false)
        );
        assert_eq!(
            match_hostaddr(ip("10.1.2.3"), "10.0.0.0/8\u{a0}"),
            Ok(false)
        );
    }
}
