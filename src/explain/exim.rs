//! Exim mainlog/rejectlog lines (Exim 4.96 formats, confirmed by fixtures/logs/exim-mainlog from
//! a real daemon; spec chapter "Log files", "Reference to hosts in log lines"):
//!
//! - `H=name (helo) [ip]:port ... F=<sender> A=plain:alice rejected RCPT <rcpt>: reason`
//!   (`temporarily rejected` for 4xx; `A=authenticator:id` only when authenticated).
//! - `H=... sender verify fail for <addr>: reason` / `sender verify defer for <addr>: ...`,
//!   logged just before the `rejected RCPT ...: Sender verify failed` / `Could not complete
//!   sender verify callout` line of the same client: the detail is attached to that event.
//! - `plain authenticator failed for (helo) [ip]: 535 Incorrect authentication data (set_id=u)`.
//! - `<id> ** rcpt R=... T=... H=host [ip]: SMTP error from remote mail server after RCPT
//!   TO:<rcpt>: 550 relay not permitted` (the recipient's server refused us).

use std::collections::VecDeque;

use super::event::{classify, recipient_class, Auth, Cause, Event, Origin, Side, Source};
use super::header::Header;
use super::postfix::Seen;

/// Recent per-IP facts (verify details, failed logins). Exim writes the related lines
/// back to back, so a short memory is enough; it is bounded.
const MEMORY: usize = 256;

/// Fingerprints of refusal lines remembered to recognise the rejectlog's copies: 16 bytes
/// each plus the table's slack, at most ~36 MB for a million refusal lines; past it, later
/// lines are no longer deduplicated (counted in `unchecked`).
pub const MAX_FINGERPRINTS: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct Exim {
    verify: VecDeque<(String, Event)>,
    auth_failed: VecDeque<String>,
    /// Refusal line (time + message) -> the input it was first read from. Exim writes every
    /// rejection to both the mainlog and the rejectlog (spec, "Log files": "the rejectlog
    /// ... contains information about messages that are rejected ... the same line is also
    /// written to the main log"); given both, each refusal must count once. Identical lines
    /// of the same input are distinct refusals (a client retrying within the second).
    seen: std::collections::HashMap<
        u64,
        u64,
        std::hash::BuildHasherDefault<super::postfix::Identity>,
    >,
    /// Lines skipped as copies of another input's line.
    pub duplicates: u64,
    /// Refusal lines not remembered because MAX_FINGERPRINTS was reached.
    pub unchecked: u64,
}

fn fnv(parts: &[&str]) -> u64 {
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            x ^= b as u64;
            x = x.wrapping_mul(0x0100_0000_01b3);
        }
    }
    x
}

/// Host fields of an Exim line: (name, helo, ip).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Host<'a> {
    pub name: Option<&'a str>,
    pub helo: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// Parse the `H=` (or the `for (helo) [ip]` form of authenticator lines) host reference.
pub fn host(s: &str) -> Host<'_> {
    let mut h = Host::default();
    let mut rest = s.trim_start();
    if !rest.starts_with('(') && !rest.starts_with('[') {
        let end = rest.find(' ').unwrap_or(rest.len());
        h.name = Some(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    if let Some(r) = rest.strip_prefix('(') {
        if let Some(e) = r.find(')') {
            h.helo = Some(&r[..e]);
            rest = r[e + 1..].trim_start();
        }
    }
    if let Some(r) = rest.strip_prefix('[') {
        if let Some(e) = r.find(']') {
            h.ip = Some(&r[..e]);
        }
    }
    h
}

/// Skip Exim's optional `[pid]` and message id (`1xX8Ta-00064W-2X` or the old `1abcDE-000123-AB`).
fn strip_ids(msg: &str) -> (Option<&str>, &str) {
    let mut m = msg;
    if m.starts_with('[') {
        if let Some(e) = m.find("] ") {
            m = &m[e + 2..];
        }
    }
    let tok = m.split(' ').next().unwrap_or("");
    let parts: Vec<&str> = tok.split('-').collect();
    if parts.len() == 3
        && parts[0].len() == 6
        && (parts[1].len() == 6 || parts[1].len() == 11)
        && (parts[2].len() == 2 || parts[2].len() == 4)
        && tok.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return (Some(tok), m[tok.len()..].trim_start());
    }
    (None, m)
}

fn opt(s: Option<&str>) -> Option<String> {
    s.filter(|v| !v.is_empty()).map(str::to_string)
}

/// The text after `<...>: ` following `at` (e.g. `RCPT <x@y>: reason`).
fn after_angle(s: &str) -> Option<(&str, &str)> {
    let open = s.find('<')?;
    let close = open + s[open..].find('>')?;
    let addr = &s[open + 1..close];
    let reason = s[close + 1..]
        .strip_prefix(':')
        .unwrap_or(&s[close + 1..])
        .trim();
    Some((addr, reason))
}

/// The first `: NNN ` reply inside `s` (after a command that itself may contain colons).
fn find_reply(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(j) = s[i..].find(": ") {
        let at = i + j + 2;
        if b.len() >= at + 4
            && b[at..at + 3].iter().all(u8::is_ascii_digit)
            && matches!(b[at], b'4' | b'5')
            && matches!(b[at + 3], b' ' | b'-')
        {
            return Some(at);
        }
        i = at;
    }
    None
}

impl Exim {
    /// Whether this refusal line is a copy of one already read from another input (the
    /// mainlog/rejectlog pair); remembers it otherwise.
    fn duplicate(&mut self, h: &Header, o: &Origin, msg: &str) -> bool {
        let fp = fnv(&[h.time.unwrap_or(""), h.host.unwrap_or(""), msg]);
        let input = fnv(&[o.input]);
        match self.seen.get(&fp) {
            Some(&first) if first != input => {
                self.duplicates += 1;
                true
            }
            Some(_) => false,
            None => {
                if self.seen.len() < MAX_FINGERPRINTS {
                    self.seen.insert(fp, input);
                } else {
                    self.unchecked += 1;
                }
                false
            }
        }
    }

    /// Fingerprints held (for the memory bound's test).
    pub fn retained(&self) -> usize {
        self.seen.len() + self.verify.len() + self.auth_failed.len()
    }

    pub fn line(&mut self, h: &Header, o: &Origin, out: &mut Vec<Event>) -> Seen {
        let (id, msg) = strip_ids(h.msg);
        // The kinds of line Exim also writes to the rejectlog.
        if (msg.contains(" rejected ")
            || msg.contains(" sender verify ")
            || msg.contains(" authenticator failed for "))
            && self.duplicate(h, o, msg)
        {
            return Seen::Understood;
        }
        if let Some(i) = msg.find(" rejected ") {
            return self.rejected(h, o, msg, i, out);
        }
        if let Some(i) = msg.find(" sender verify ") {
            return self.verify(h, o, msg, i);
        }
        if let Some(i) = msg.find(" authenticator failed for ") {
            let hs = host(&msg[i + 26..]);
            let reply = msg.find("]: ").map(|j| &msg[j + 3..]).unwrap_or("");
            let mut e =
                Event::new(Source::Exim, Side::ThisServer, reply.to_string()).with_reply_codes();
            e.cause = Cause::AuthFailed;
            e.stage = Some("AUTH".into());
            e.client_ip = opt(hs.ip);
            e.client_name = opt(hs.name);
            e.helo = opt(hs.helo);
            e.auth = Auth::Failed;
            e.sasl_user = reply
                .split("(set_id=")
                .nth(1)
                .map(|u| u.trim_end_matches(')').to_string());
            o.apply(&mut e, h);
            if let Some(ip) = hs.ip {
                if self.auth_failed.len() >= MEMORY {
                    self.auth_failed.pop_front();
                }
                self.auth_failed.push_back(ip.to_string());
            }
            out.push(e);
            return Seen::Understood;
        }
        if id.is_some() {
            if let Some(i) = msg.find("SMTP error from remote mail server after ") {
                return remote_error(h, o, msg, i, out);
            }
        }
        Seen::NotMine
    }

    fn rejected(
        &mut self,
        h: &Header,
        o: &Origin,
        msg: &str,
        i: usize,
        out: &mut Vec<Event>,
    ) -> Seen {
        let head = &msg[..i];
        let tail = &msg[i + 10..];
        let hs = head
            .find("H=")
            .map(|j| host(&head[j + 2..]))
            .unwrap_or_default();
        let sender = head.find(" F=<").and_then(|j| {
            let r = &head[j + 4..];
            r.find('>').map(|e| &r[..e])
        });
        let auth_user = head
            .split(' ')
            .find_map(|t| t.strip_prefix("A="))
            .map(|a| a.split_once(':').map(|(_, u)| u).unwrap_or(a));
        let (stage, rcpt, reason) = if let Some(r) = tail.strip_prefix("RCPT ") {
            match after_angle(r) {
                Some((a, reason)) => ("RCPT", Some(a), reason),
                None => return Seen::Bad,
            }
        } else if let Some(r) = tail.strip_prefix("MAIL ") {
            match after_angle(r) {
                Some((_, reason)) => ("MAIL", None, reason),
                None => return Seen::Bad,
            }
        } else if let Some(r) = tail.strip_prefix("after DATA") {
            ("DATA", None, r.trim_start_matches(':').trim())
        } else {
            let stage = tail.split(' ').next().unwrap_or("");
            let reason = tail.split_once(": ").map(|(_, r)| r).unwrap_or(tail);
            (if stage.is_empty() { "?" } else { stage }, None, reason)
        };
        let temporary = head.ends_with(" temporarily") || head.ends_with("temporarily");
        let mut e = Event::new(Source::Exim, Side::ThisServer, reason.to_string());
        e.code = Some(if temporary { 451 } else { 550 });
        e.cause = classify(reason, None);
        e.recipient_class = recipient_class(e.cause, reason);
        e.stage = Some(stage.to_string());
        e.client_ip = opt(hs.ip);
        e.client_name = opt(hs.name);
        e.helo = opt(hs.helo);
        e.sender = sender.map(str::to_string);
        e.recipient = opt(rcpt);
        match auth_user {
            Some(u) => {
                e.auth = Auth::Yes;
                e.sasl_user = opt(Some(u));
            }
            None => {
                let failed = hs
                    .ip
                    .is_some_and(|ip| self.auth_failed.iter().any(|a| a == ip));
                e.auth = if failed { Auth::Failed } else { Auth::No };
            }
        }
        o.apply(&mut e, h);
        if e.cause == Cause::SenderVerify {
            if let Some(ip) = hs.ip {
                if let Some(pos) = self.verify.iter().position(|(k, _)| k == ip) {
                    if let Some((_, v)) = self.verify.remove(pos) {
                        e.detail = v.detail;
                    }
                }
            }
        }
        out.push(e);
        Seen::Understood
    }

    fn verify(&mut self, h: &Header, o: &Origin, msg: &str, i: usize) -> Seen {
        // `H=... sender verify fail for <addr>: reason`
        let hs = msg[..i]
            .find("H=")
            .map(|j| host(&msg[j + 2..i]))
            .unwrap_or_default();
        let rest = &msg[i + 15..];
        let Some((addr, reason)) = after_angle(rest) else {
            return Seen::Bad;
        };
        let kind = rest.split(' ').next().unwrap_or("");
        let mut e = Event::new(
            Source::Exim,
            Side::ThisServer,
            format!("sender verify {kind}"),
        );
        e.cause = Cause::SenderVerify;
        e.stage = Some("RCPT".into());
        e.detail = Some(format!("sender verify {kind} for <{addr}>: {reason}"));
        e.client_ip = opt(hs.ip);
        e.client_name = opt(hs.name);
        e.helo = opt(hs.helo);
        e.sender = Some(addr.to_string());
        o.apply(&mut e, h);
        if self.verify.len() >= MEMORY {
            self.verify.pop_front();
        }
        self.verify.push_back((hs.ip.unwrap_or("").to_string(), e));
        Seen::Understood
    }

    /// Verify lines never followed by a refusal (a `warn` verb) stand on their own.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        out.extend(self.verify.drain(..).map(|(_, e)| e));
    }
}

fn remote_error(h: &Header, o: &Origin, msg: &str, i: usize, out: &mut Vec<Event>) -> Seen {
    // `** rcpt <orig> R=router T=transport H=host [ip] ...: SMTP error from remote mail server
    // after RCPT TO:<rcpt>: 550 relay not permitted`
    let head = &msg[..i];
    let rcpt = head
        .strip_prefix("** ")
        .or_else(|| head.strip_prefix("== "))
        .and_then(|r| r.split(' ').next());
    let hs = head
        .find(" H=")
        .map(|j| host(&head[j + 3..]))
        .unwrap_or_default();
    let tail = &msg[i + 41..];
    let Some(at) = find_reply(tail) else {
        return Seen::Bad;
    };
    let stage = tail[..at]
        .split([' ', ':'])
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    let mut e =
        Event::new(Source::Exim, Side::RecipientServer, tail[at..].to_string()).with_reply_codes();
    e.stage = Some(if stage == "INITIAL" {
        "CONNECT".into()
    } else {
        stage
    });
    e.recipient = opt(rcpt);
    e.remote_host = match (hs.name, hs.ip) {
        (Some(n), Some(ip)) => Some(format!("{n}[{ip}]")),
        (n, ip) => opt(n.or(ip)),
    };
    o.apply(&mut e, h);
    out.push(e);
    Seen::Understood
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_references() {
        assert_eq!(
            host("mail.x (helo.x) [1.2.3.4]:25 F=<a>"),
            Host {
                name: Some("mail.x"),
                helo: Some("helo.x"),
                ip: Some("1.2.3.4")
            }
        );
        assert_eq!(host("(laptop) [127.0.0.5] F=").ip, Some("127.0.0.5"));
        assert_eq!(host("[::1]").ip, Some("::1"));
        assert_eq!(
            strip_ids("1xX8Ta-00064W-2X ** a@b").0,
            Some("1xX8Ta-00064W-2X")
        );
        assert_eq!(find_reply("RCPT TO:<a@b>: 550 relay"), Some(15));
    }
}
