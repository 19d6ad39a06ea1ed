//! What one smtp_poplocks row says: its address, mask and lock time, checked the way the
//! mail server will read them. Pure functions, no database.
//!
//! The columns arrive as raw bytes (text protocol), so nothing here trusts them: an address
//! with a trailing blank, a mask of 40 on an IPv4 address or a lock time of
//! `0000-00-00 00:00:00` are all representable in the table and all handled.

use std::fmt::Write as _;
use std::net::IpAddr;

/// One row as read: the columns relaydoctor judges; `None` is NULL. `node` is serviceNodeId
/// (Plesk 17.8+), `None` on tables without it. Field order is sort order: the rows of one
/// address, mask and node sort together, white-list rows (NULL lock_time) first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawRow {
    pub ip: Option<Vec<u8>>,
    pub mask: Option<Vec<u8>>,
    pub node: Option<Vec<u8>>,
    pub lock: Option<Vec<u8>>,
}

impl RawRow {
    /// A white-list row: no lock time (primer section 5: most likely the admin's list).
    pub fn is_whitelist(&self) -> bool {
        self.lock.is_none()
    }

    /// How the row is shown to people: `ip_address='10.0.0.1' ip_mask=32 lock_time=NULL`.
    pub fn describe(&self) -> String {
        let node = match &self.node {
            Some(n) => format!(" serviceNodeId={}", escape_visible(n)),
            None => String::new(),
        };
        format!(
            "ip_address={} ip_mask={} lock_time={}{node}",
            show_quoted(self.ip.as_deref()),
            show_plain(self.mask.as_deref()),
            show_quoted(self.lock.as_deref())
        )
    }

    /// The service node, for messages ("node 1"); "1" when the table has no node column.
    pub fn node_id(&self) -> String {
        self.node
            .as_deref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_else(|| "1".into())
    }

    /// One line for the before/after diff (tab-separated, like `mariadb -B` prints rows).
    pub fn diff_line(&self) -> String {
        let node = match &self.node {
            Some(n) => format!("\t{}", escape_visible(n)),
            None => String::new(),
        };
        format!(
            "{}\t{}\t{}{node}\n",
            show_plain(self.ip.as_deref()),
            show_plain(self.mask.as_deref()),
            show_plain(self.lock.as_deref())
        )
    }

    pub fn json(&self) -> serde_json::Value {
        let s = |v: &Option<Vec<u8>>| match v {
            Some(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
            None => serde_json::Value::Null,
        };
        let mask = match self.mask.as_deref().and_then(parse_uint) {
            Some(m) => serde_json::json!(m),
            None => s(&self.mask),
        };
        let mut v = serde_json::json!({"ip_address": s(&self.ip), "ip_mask": mask, "lock_time": s(&self.lock)});
        if let Some(n) = &self.node {
            v["serviceNodeId"] = match parse_uint(n) {
                Some(n) => serde_json::json!(n),
                None => s(&self.node),
            };
        }
        v
    }
}

fn show_plain(v: Option<&[u8]>) -> String {
    match v {
        None => "NULL".into(),
        Some(b) => escape_visible(b),
    }
}

fn show_quoted(v: Option<&[u8]>) -> String {
    match v {
        None => "NULL".into(),
        Some(b) => format!("'{}'", escape_visible(b)),
    }
}

/// Printable ASCII as is, everything else as \xNN, so a stray byte is visible and a
/// terminal cannot be driven by table content.
pub fn escape_visible(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if (0x20..0x7f).contains(&c) && c != b'\\' {
            s.push(c as char);
        } else {
            let _ = write!(s, "\\x{c:02x}");
        }
    }
    s
}

/// A MariaDB literal for a value: NULL, a quoted string when it is plain printable ASCII,
/// else a hex literal (X'..') so that any byte sequence round-trips through the client.
pub fn sql_literal(v: Option<&[u8]>) -> String {
    match v {
        None => "NULL".into(),
        Some(b) => {
            if b.iter()
                .all(|c| (0x20..0x7f).contains(c) && *c != b'\\' && *c != b'\'')
            {
                format!("'{}'", String::from_utf8_lossy(b))
            } else {
                let mut s = String::from("X'");
                for c in b {
                    let _ = write!(s, "{c:02X}");
                }
                s.push('\'');
                s
            }
        }
    }
}

pub fn parse_uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// The address exactly as stored; whitespace or anything else around it makes it invalid
/// (the MTA's lookup compares the string, so ' 10.0.0.1' never matches a client).
pub fn parse_ip(b: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

pub fn max_mask(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// True when the address has bits set beyond the prefix (10.1.2.3/8). Plesk's own default
/// white-list entry is 127.0.0.1/8, so this is information, not a fault.
pub fn host_bits_set(ip: IpAddr, mask: u32) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let v = u32::from(a);
            let hostmask = if mask >= 32 { 0 } else { u32::MAX >> mask };
            v & hostmask != 0
        }
        IpAddr::V6(a) => {
            let v = u128::from(a);
            let hostmask = if mask >= 128 { 0 } else { u128::MAX >> mask };
            v & hostmask != 0
        }
    }
}

/// Networks that are not reachable from the Internet (RFC 1918, loopback, link-local,
/// CGNAT RFC 6598, IPv6 ULA and link-local): a wide white-list entry inside them does not
/// open the server to strangers.
fn inside_private(net: ipnet::IpNet) -> bool {
    const PRIVATE: &[&str] = &[
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    ];
    PRIVATE.iter().any(|p| {
        p.parse::<ipnet::IpNet>()
            .map(|p| p.contains(&net))
            .unwrap_or(false)
    })
}

/// How far a public range reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every address, or more than a /16 (IPv4) or /32 (IPv6) of public space: an open relay.
    Huge(String),
    /// A public range wider than /24 (IPv4) or /48 (IPv6): more than an office needs.
    Wide(String),
}

/// How open a row makes the server: None for a host, a narrow range or private space.
pub fn public_reach(ip: IpAddr, mask: u32) -> Option<Reach> {
    if mask == 0 {
        return Some(Reach::Huge("matches every address on the Internet".into()));
    }
    let (wide, huge) = match ip {
        IpAddr::V4(_) => (mask < 24, mask < 16),
        IpAddr::V6(_) => (mask < 48, mask < 32),
    };
    if !wide {
        return None;
    }
    let net = ipnet::IpNet::new(ip, mask as u8).ok()?.trunc();
    if inside_private(net) {
        return None;
    }
    let why = format!(
        "covers the public network {net} ({} addresses)",
        match ip {
            IpAddr::V4(_) => format!("{}", 1u64 << (32 - mask)),
            IpAddr::V6(_) => format!("2^{}", 128 - mask),
        }
    );
    Some(if huge {
        Reach::Huge(why)
    } else {
        Reach::Wide(why)
    })
}

/// Plesk's default white list (primer section 5): 127.0.0.1/8 and ::1/128.
pub fn is_default_whitelist(ip: IpAddr, mask: u32) -> bool {
    (ip == IpAddr::from([127, 0, 0, 1]) && mask == 8)
        || (ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST) && mask == 128)
}

/// The entry covers 127.0.0.1, the address webmail on the server sends from.
pub fn covers_loopback(ip: IpAddr, mask: u32) -> bool {
    match (ip, ipnet::IpNet::new(ip, mask as u8)) {
        (IpAddr::V4(_), Ok(n)) => n.contains(&IpAddr::from([127, 0, 0, 1])),
        _ => false,
    }
}

/// A DATETIME as stored, as seconds on a naive (zone-less) civil time line, so it compares
/// with the server's NOW() read the same way. None for zero or impossible dates.
///
/// The server sends DATETIME as `YYYY-MM-DD HH:MM:SS` with optional `.fraction`; parsed by
/// position because this runs once per row of a million-row scan.
pub fn parse_datetime(b: &[u8]) -> Option<i64> {
    if b.len() < 19 {
        return None;
    }
    let d = |i: usize| -> Option<i64> {
        let c = *b.get(i)?;
        c.is_ascii_digit().then(|| i64::from(c - b'0'))
    };
    let n2 = |i: usize| Some(d(i)? * 10 + d(i + 1)?);
    if b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b.len() > 19 && (b[19] != b'.' || !b[20..].iter().all(u8::is_ascii_digit)) {
        return None;
    }
    let y = n2(0)? * 100 + n2(2)?;
    let (m, day, hh, mm, ss) = (n2(5)?, n2(8)?, n2(11)?, n2(14)?, n2(17)?);
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || day < 1 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day > dim || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The inverse of [`parse_datetime`]: naive seconds as `YYYY-MM-DD HH:MM:SS`.
pub fn format_datetime(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_datetime(b"1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_datetime(b"1970-01-02 00:00:01"), Some(86_401));
        assert_eq!(parse_datetime(b"0000-00-00 00:00:00"), None);
        assert_eq!(parse_datetime(b"2024-02-30 00:00:00"), None);
        assert!(parse_datetime(b"2024-02-29 23:59:59").is_some());
        assert_eq!(parse_datetime(b"2023-02-29 00:00:00"), None);
        assert_eq!(parse_datetime(b"garbage"), None);
        for t in [
            "2024-02-29 23:59:59",
            "1999-12-31 00:00:01",
            "2026-11-28 03:00:00",
        ] {
            assert_eq!(format_datetime(parse_datetime(t.as_bytes()).unwrap()), t);
        }
        assert_eq!(
            parse_datetime(b"2024-01-01 00:00:00.5"),
            parse_datetime(b"2024-01-01 00:00:00")
        );
        assert_eq!(parse_datetime(b"2024-01-01 00:00:00x"), None);
        assert_eq!(parse_datetime(b"2024-01-01T00:00:00"), None);
    }

    #[test]
    fn addresses() {
        assert!(parse_ip(b"10.0.0.1").is_some());
        assert!(parse_ip(b" 10.0.0.1").is_none());
        assert!(parse_ip(b"999.0.0.1").is_none());
        assert!(parse_ip(b"2001:db8::1").is_some());
        let lo = parse_ip(b"127.0.0.1").unwrap();
        assert!(host_bits_set(lo, 8));
        assert!(!host_bits_set(lo, 32));
        assert!(public_reach(lo, 8).is_none());
        let huge = |r: Option<Reach>| matches!(r, Some(Reach::Huge(_)));
        let wide = |r: Option<Reach>| matches!(r, Some(Reach::Wide(_)));
        assert!(huge(public_reach(parse_ip(b"0.0.0.0").unwrap(), 0)));
        assert!(public_reach(parse_ip(b"10.0.0.0").unwrap(), 8).is_none());
        assert!(huge(public_reach(parse_ip(b"203.0.0.0").unwrap(), 8)));
        assert!(wide(public_reach(parse_ip(b"203.0.0.0").unwrap(), 16)));
        assert!(wide(public_reach(parse_ip(b"203.0.112.0").unwrap(), 23)));
        assert!(public_reach(parse_ip(b"203.0.113.0").unwrap(), 24).is_none());
        assert!(huge(public_reach(parse_ip(b"::").unwrap(), 0)));
        assert!(covers_loopback(lo, 8) && !covers_loopback(parse_ip(b"::1").unwrap(), 128));
        assert!(is_default_whitelist(lo, 8) && !is_default_whitelist(lo, 32));
    }

    #[test]
    fn literals() {
        assert_eq!(sql_literal(None), "NULL");
        assert_eq!(sql_literal(Some(b"1.2.3.4")), "'1.2.3.4'");
        assert_eq!(sql_literal(Some(b"a'b")), "X'612762'");
        assert_eq!(escape_visible(b"a\nb"), "a\\x0ab");
    }
}
