//! Timestamps of log lines, and the `--since`/`--until` bounds.
//!
//! Forms understood:
//! - BSD syslog `Nov 28 02:46:10` (traditional rsyslog/syslog-ng files, Postfix's
//!   `maillog_file`). It carries **no year**: the year is `--year`, else the current year,
//!   except that a date which would lie more than a day in the future belongs to the previous
//!   year (a December line read in January). It also carries no zone: it is the server's wall
//!   clock.
//! - RFC 3339 `2026-11-28T02:46:10.123456+01:00` (rsyslog's RSYSLOG_FileFormat, `journalctl -o
//!   short-iso`), with zone.
//! - Exim's `2026-11-28 02:46:10` (optionally `.123` and a ` +0100` zone with
//!   `log_timezone`).
//! - daemontools multilog TAI64N `@4000000065...` (qmail).
//!
//! Comparison: when both sides carry a zone they are compared as instants; otherwise as wall
//! clock times as written (a `--since` without a zone means the log's own clock).

/// A point in time: wall-clock seconds since 1970-01-01 as written, and the zone offset in
/// seconds when the text had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub wall: i64,
    pub offset: Option<i32>,
}

impl Stamp {
    /// Compare two stamps: as instants when both have a zone, else as wall clock.
    pub fn cmp_to(&self, other: &Stamp) -> std::cmp::Ordering {
        match (self.offset, other.offset) {
            (Some(a), Some(b)) => (self.wall - a as i64).cmp(&(other.wall - b as i64)),
            _ => self.wall.cmp(&other.wall),
        }
    }

    /// `2026-11-28 02:46:10` (+zone when known), for reports.
    pub fn display(&self) -> String {
        let days = self.wall.div_euclid(86_400);
        let secs = self.wall.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut s = format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        );
        if let Some(off) = self.offset {
            let sign = if off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs();
            s.push_str(&format!(" {sign}{:02}{:02}", a / 3600, (a / 60) % 60));
        }
        s
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Wall-clock seconds of "now" (UTC; syslog's local clock is unknown without the system's
/// zone database, and a day of slack in the year rule absorbs the difference).
pub fn now_wall() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How syslog dates get their year.
#[derive(Debug, Clone)]
pub struct YearRule {
    pub fixed: Option<i32>,
    pub now: i64,
    /// The last (month, day) resolved and its wall-clock midnight: consecutive lines share it.
    pub memo: std::cell::Cell<(u32, u32, i64)>,
}

impl YearRule {
    pub fn new(fixed: Option<i32>, now: i64) -> YearRule {
        YearRule {
            fixed,
            now,
            memo: std::cell::Cell::new((0, 0, 0)),
        }
    }

    fn stamp(&self, mon: u32, day: u32, secs: i64) -> Stamp {
        let (m, d, base) = self.memo.get();
        if (m, d) == (mon, day) {
            return Stamp {
                wall: base + secs,
                offset: None,
            };
        }
        let s = self.stamp_slow(mon, day, 0);
        self.memo.set((mon, day, s.wall));
        Stamp {
            wall: s.wall + secs,
            offset: None,
        }
    }

    fn stamp_slow(&self, mon: u32, day: u32, secs: i64) -> Stamp {
        let mk = |y: i64| days_from_civil(y, mon, day) * 86_400 + secs;
        if let Some(y) = self.fixed {
            return Stamp {
                wall: mk(y as i64),
                offset: None,
            };
        }
        let (this_year, _, _) = civil_from_days(self.now.div_euclid(86_400));
        let mut wall = mk(this_year);
        if wall > self.now + 86_400 {
            wall = mk(this_year - 1);
        }
        Stamp { wall, offset: None }
    }
}

fn num(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |a, &c| a * 10 + (c - b'0') as i64))
}

fn hms(b: &[u8]) -> Option<i64> {
    // HH:MM:SS
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, s) = (num(&b[0..2])?, num(&b[3..5])?, num(&b[6..8])?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(h * 3600 + m * 60 + s)
}

fn month(b: &[u8]) -> Option<u32> {
    const M: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    M.iter().position(|m| &m[..] == b).map(|i| i as u32 + 1)
}

/// `YYYY-MM-DD` at the start of `b`.
fn ymd(b: &[u8]) -> Option<(i64, u32, u32)> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some((y, m as u32, d as u32))
}

/// A zone at the start of `b`: `Z`, `+01:00`, `+0100`, `-05`. Returns (offset secs, length).
fn zone(b: &[u8]) -> Option<(i32, usize)> {
    match b.first()? {
        b'Z' | b'z' => Some((0, 1)),
        c @ (b'+' | b'-') => {
            let sign = if *c == b'-' { -1 } else { 1 };
            let h = num(b.get(1..3)?)? as i32;
            let (m, len) = if b.get(3) == Some(&b':') {
                (num(b.get(4..6)?)? as i32, 6)
            } else if b.len() >= 5 && b[3..5].iter().all(u8::is_ascii_digit) {
                (num(&b[3..5])? as i32, 5)
            } else {
                (0, 3)
            };
            Some((sign * (h * 3600 + m * 60), len))
        }
        _ => None,
    }
}

/// A timestamp at the start of a log line: (stamp, bytes consumed). The consumed length
/// includes fractions and zone but not the following space.
pub fn parse_prefix(line: &[u8], years: &YearRule) -> Option<(Stamp, usize)> {
    let first = *line.first()?;
    if first.is_ascii_digit() {
        let (y, m, d) = ymd(line)?;
        let sep = *line.get(10)?;
        if sep != b'T' && sep != b' ' {
            return None;
        }
        let secs = hms(line.get(11..19)?)?;
        let mut i = 19;
        if line.get(i) == Some(&b'.') || line.get(i) == Some(&b',') {
            i += 1;
            while line.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        let mut offset = None;
        if sep == b'T' {
            if let Some((o, len)) = line.get(i..).and_then(zone) {
                offset = Some(o);
                i += len;
            }
        } else if line.get(i) == Some(&b' ')
            && matches!(line.get(i + 1), Some(b'+') | Some(b'-'))
            && line.get(i + 2).is_some_and(u8::is_ascii_digit)
        {
            // Exim with log_timezone: `2026-11-28 02:46:10 +0100`.
            if let Some((o, len)) = line.get(i + 1..).and_then(zone) {
                offset = Some(o);
                i += 1 + len;
            }
        }
        let wall = days_from_civil(y, m, d) * 86_400 + secs;
        return Some((Stamp { wall, offset }, i));
    }
    if first == b'@' && line.len() >= 25 && line.get(1..9) == Some(b"40000000") {
        // TAI64N: 16 hex digits of seconds + 2^62 (plus 10 s of TAI-UTC offset that daemontools
        // ignores too), 8 of nanoseconds. Only labels of 1970-2106 (`@40000000...`): the log
        // reader's pre-filter finds multilog lines by that prefix.
        let hex = std::str::from_utf8(line.get(1..17)?).ok()?;
        let v = u64::from_str_radix(hex, 16).ok()?;
        let secs = v.checked_sub(1u64 << 62)? as i64 - 10;
        return Some((
            Stamp {
                wall: secs,
                offset: Some(0),
            },
            25,
        ));
    }
    // BSD syslog: `Mmm dd hh:mm:ss` (day space-padded).
    let mon = month(line.get(0..3)?)?;
    if line.get(3) != Some(&b' ') {
        return None;
    }
    let day_field = line.get(4..6)?;
    let day = if day_field[0] == b' ' {
        num(&day_field[1..2])?
    } else {
        num(day_field)?
    };
    if line.get(6) != Some(&b' ') || !(1..=31).contains(&day) {
        return None;
    }
    let secs = hms(line.get(7..15)?)?;
    Some((years.stamp(mon, day as u32, secs), 15))
}

/// `--since`/`--until`: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]`, or RFC 3339.
pub fn parse_bound(text: &str) -> Result<Stamp, String> {
    let t = text.trim();
    let b = t.as_bytes();
    let err = || {
        format!(
            "{text:?}: not a time (use YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or RFC 3339 like \
             2026-11-28T02:00:00+01:00)"
        )
    };
    let (y, m, d) = ymd(b).ok_or_else(err)?;
    let day = days_from_civil(y, m, d) * 86_400;
    if b.len() == 10 {
        return Ok(Stamp {
            wall: day,
            offset: None,
        });
    }
    let sep = b[10];
    if sep != b'T' && sep != b' ' {
        return Err(err());
    }
    let rest = &b[11..];
    // HH:MM or HH:MM:SS
    let (secs, mut i) = if rest.len() >= 8 && rest[5] == b':' {
        (hms(&rest[..8]).ok_or_else(err)?, 8)
    } else if rest.len() >= 5 && rest[2] == b':' {
        let h = num(&rest[0..2]).ok_or_else(err)?;
        let mi = num(&rest[3..5]).ok_or_else(err)?;
        if h > 23 || mi > 59 {
            return Err(err());
        }
        (h * 3600 + mi * 60, 5)
    } else {
        return Err(err());
    };
    if rest.get(i) == Some(&b'.') {
        i += 1;
        while rest.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let mut offset = None;
    if i < rest.len() {
        let z = rest[i..].strip_prefix(b" ").unwrap_or(&rest[i..]);
        let (o, len) = zone(z).ok_or_else(err)?;
        if len != z.len() {
            return Err(err());
        }
        offset = Some(o);
    }
    Ok(Stamp {
        wall: day + secs,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(y: i32) -> YearRule {
        YearRule::new(Some(y), 0)
    }

    #[test]
    fn syslog_exim_rfc3339_and_tai64n() {
        let (s, n) = parse_prefix(b"Nov 28 02:46:10 mx postfix", &rule(2026)).unwrap();
        assert_eq!(n, 15);
        assert_eq!(s.display(), "2026-11-28 02:46:10");
        let (s, _) = parse_prefix(b"Feb  3 00:00:01 mx", &rule(2025)).unwrap();
        assert_eq!(s.display(), "2025-02-03 00:00:01");
        let (s, n) = parse_prefix(b"2026-11-28 02:47:35 H=(x)", &rule(1)).unwrap();
        assert_eq!((s.display().as_str(), n), ("2026-11-28 02:47:35", 19));
        let (s, n) = parse_prefix(b"2026-11-28T02:46:10.123456+01:00 mx", &rule(1)).unwrap();
        assert_eq!(n, 32);
        assert_eq!(s.offset, Some(3600));
        let (s, _) = parse_prefix(b"2026-11-28 02:47:35 +0100 H=", &rule(1)).unwrap();
        assert_eq!(s.offset, Some(3600));
        let (s, _) = parse_prefix(b"@40000000692a0e5a1c2d3e4f qmail-smtpd", &rule(1)).unwrap();
        assert!(s.display().starts_with("2025-11-28"), "{}", s.display());
        assert!(parse_prefix(b"Foo 28 02:46:10", &rule(1)).is_none());
        assert!(parse_prefix(b"554 5.7.1", &rule(1)).is_none());
    }

    #[test]
    fn the_year_rule_puts_future_dates_in_the_previous_year() {
        let now = days_from_civil(2027, 1, 5) * 86_400;
        let r = YearRule::new(None, now);
        let (s, _) = parse_prefix(b"Dec 31 23:00:00 mx", &r).unwrap();
        assert_eq!(s.display(), "2026-12-31 23:00:00");
        let (s, _) = parse_prefix(b"Jan  5 23:00:00 mx", &r).unwrap();
        assert_eq!(s.display(), "2027-01-05 23:00:00");
    }

    #[test]
    fn bounds_and_comparison() {
        let a = parse_bound("2026-11-28").unwrap();
        let b = parse_bound("2026-11-28 02:46").unwrap();
        assert_eq!(b.wall - a.wall, 2 * 3600 + 46 * 60);
        let z = parse_bound("2026-11-28T03:00:00+01:00").unwrap();
        let u = parse_bound("2026-11-28T02:30:00Z").unwrap();
        assert_eq!(z.cmp_to(&u), std::cmp::Ordering::Less);
        assert!(parse_bound("yesterday").is_err());
        assert!(parse_bound("2026-13-01").is_err());
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }
}
