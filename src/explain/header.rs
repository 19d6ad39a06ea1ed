//! The part of a log line before the message: timestamp, host, `program[pid]:`.

use super::stamp::{parse_prefix, Stamp, YearRule};

#[derive(Debug, Clone, Copy, Default)]
pub struct Header<'a> {
    pub stamp: Option<Stamp>,
    pub time: Option<&'a str>,
    pub host: Option<&'a str>,
    /// `postfix/submission/smtpd`, `exim`, `qmail-smtpd`, ...
    pub program: Option<&'a str>,
    pub pid: Option<&'a str>,
    pub msg: &'a str,
}

/// A `Header` as byte ranges of its line, to be computed on the log reader's thread and
/// turned back into a `Header` of the same line on the parser's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spans {
    pub stamp: Option<Stamp>,
    time: Option<(usize, usize)>,
    host: Option<(usize, usize)>,
    program: Option<(usize, usize)>,
    pid: Option<(usize, usize)>,
    msg: (usize, usize),
}

/// Where `part` (a subslice of `line`) lies in `line`.
fn span(line: &str, part: &str) -> (usize, usize) {
    let start = (part.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize);
    (start, start + part.len())
}

impl Spans {
    pub fn of(line: &str, h: &Header) -> Spans {
        Spans {
            stamp: h.stamp,
            time: h.time.map(|t| span(line, t)),
            host: h.host.map(|t| span(line, t)),
            program: h.program.map(|t| span(line, t)),
            pid: h.pid.map(|t| span(line, t)),
            msg: span(line, h.msg),
        }
    }

    /// The header of `line`, which must be the line these spans were taken from (else the
    /// whole line is the message).
    pub fn header<'a>(&self, line: &'a str) -> Header<'a> {
        let get = |r: Option<(usize, usize)>| r.and_then(|(a, b)| line.get(a..b));
        match line.get(self.msg.0..self.msg.1) {
            Some(msg) => Header {
                stamp: self.stamp,
                time: get(self.time),
                host: get(self.host),
                program: get(self.program),
                pid: get(self.pid),
                msg,
            },
            None => Header {
                msg: line,
                ..Header::default()
            },
        }
    }
}

/// A syslog tag `prog[pid]:` or `prog:`; returns (program, pid). Byte-level: this runs for
/// every line the pre-filter passes.
fn tag(tok: &str) -> Option<(&str, Option<&str>)> {
    let t = tok.strip_suffix(':')?;
    if t.is_empty() {
        return None;
    }
    let (prog, pid) = match t.strip_suffix(']') {
        Some(inner) => {
            let open = memchr::memrchr(b'[', inner.as_bytes())?;
            // ASCII delimiters: both sides are char boundaries.
            let (p, pid) = (&inner[..open], &inner[open + 1..]);
            if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (p, Some(pid))
        }
        None => (t, None),
    };
    let ok = !prog.is_empty()
        && prog
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
        && prog.bytes().any(|b| b.is_ascii_alphabetic());
    ok.then_some((prog, pid))
}

/// `s` split at its first space: (before, after). ASCII, so both are char boundaries.
fn word(s: &str) -> Option<(&str, &str)> {
    let i = memchr::memchr(b' ', s.as_bytes())?;
    Some((&s[..i], &s[i + 1..]))
}

/// Split a line into header and message. Lines without a recognisable header are all message.
pub fn split<'a>(line: &'a str, years: &YearRule) -> Header<'a> {
    let mut h = Header {
        msg: line,
        ..Header::default()
    };
    let Some((stamp, n)) = parse_prefix(line.as_bytes(), years) else {
        return h;
    };
    // parse_prefix consumed only ASCII, so `n` is a char boundary.
    let (Some(time), Some(rest)) = (line.get(..n), line.get(n..)) else {
        return h;
    };
    h.stamp = Some(stamp);
    h.time = Some(time);
    let rest = rest.trim_start_matches(' ');
    h.msg = rest;
    // `host prog[pid]: message` (syslog) - Exim's own files and multilog have no host/tag.
    if let Some((host, after)) = word(rest) {
        if let Some((t, msg)) = word(after) {
            if let Some((prog, pid)) = tag(t) {
                h.host = Some(host);
                h.program = Some(prog);
                h.pid = pid;
                h.msg = msg;
                return h;
            }
        }
        // multilog/journal without host: `prog[pid]: message`.
        if let Some((prog, pid)) = tag(host) {
            if prog.contains("qmail") || prog.contains("smtpd") {
                h.program = Some(prog);
                h.pid = pid;
                h.msg = after;
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_and_exim_headers() {
        let y = YearRule::new(Some(2026), 0);
        let h = split(
            "Nov 28 02:46:29 mx postfix/submission/smtpd[20328]: NOQUEUE: reject: x",
            &y,
        );
        assert_eq!(h.host, Some("mx"));
        assert_eq!(h.program, Some("postfix/submission/smtpd"));
        assert_eq!(h.pid, Some("20328"));
        assert_eq!(h.msg, "NOQUEUE: reject: x");
        let h = split(
            "2026-11-28 02:47:35 H=(laptop.home) [127.0.0.5] F=<a@b> rejected",
            &y,
        );
        assert_eq!(h.program, None);
        assert!(h.msg.starts_with("H=(laptop.home)"));
        let h = split("554 5.7.1 <x@y>: Relay access denied", &y);
        assert!(h.stamp.is_none());
        let line = "2026-11-28T02:46:29.123+01:00 mx postfix/smtpd[1]: hi";
        let h = split(line, &y);
        assert_eq!((h.program, h.msg), (Some("postfix/smtpd"), "hi"));
        let back = Spans::of(line, &h).header(line);
        assert_eq!(
            (
                back.stamp,
                back.time,
                back.host,
                back.program,
                back.pid,
                back.msg
            ),
            (h.stamp, h.time, h.host, h.program, h.pid, h.msg)
        );
    }
}
