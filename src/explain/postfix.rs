//! Postfix log lines (smtpd and the smtp client), as Postfix 3.x writes them. Formats confirmed
//! on Debian's 3.7.11 (fixtures/logs/postfix-real.log) and in src/smtpd/smtpd_check.c
//! (`log_whatsup`: `<queue id|NOQUEUE>: reject: <STAGE> from <name>[<addr>]: <reply>;
//! from=<...> to=<...> proto=... helo=<...>`).
//!
//! Authentication is not on the reject line. Postfix states it on other lines of the same
//! smtpd process: `<qid>: client=name[addr], sasl_method=PLAIN, sasl_username=alice` once a
//! message is queued, `warning: name[addr]: SASL PLAIN authentication failed: ...`, and the
//! session summary `disconnect from name[addr] ehlo=1 auth=1 mail=1 ...` (3.0+), whose `auth=`
//! counter lists AUTH commands only when some were given (`auth=0/1`: tried, failed). So
//! reject events wait for their session's disconnect line before their AUTH state is known;
//! they are keyed by host + program + pid.

use std::collections::HashMap;

use super::event::{Auth, Cause, Event, Origin, Side, Source};
use super::header::Header;

/// Session state of one smtpd process.
#[derive(Debug, Default)]
struct Session {
    sasl_user: Option<String>,
    auth_failed: bool,
    pending: Vec<Event>,
}

/// More concurrently open sessions than this (a log with lost disconnect lines) releases
/// all session state, pending refusals with the AUTH state known so far, keeping memory
/// bounded.
const MAX_SESSIONS: usize = 100_000;

/// Refusals one session may hold while waiting for its disconnect line. A real session
/// refuses a handful of recipients (smtpd_hard_error_limit, default 20, ends it well before
/// this); more means the disconnect lines are missing (a filtered log, or a process whose
/// sessions all share one pid): the session's refusals are released with the AUTH state
/// known so far instead of piling up.
pub const MAX_PENDING_PER_SESSION: usize = 64;

/// Refusals held over all sessions. Reaching it releases every session's refusals (AUTH as
/// known so far): a bound on memory whatever the log looks like.
pub const MAX_PENDING: usize = 20_000;

/// Hasher for keys that are already hashes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ *b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = HashMap<u64, Session, std::hash::BuildHasherDefault<Identity>>;

/// Pids (modulo this many slots) that have session state: lets the log reader skip the
/// disconnect lines of every other session without parsing them. Far fewer than pid_max
/// (2^22): the table is consulted for every disconnect line and must stay in cache; a pid
/// sharing a slot with a waiting session only costs a full parse.
pub const PID_SLOTS: usize = 1 << 16;

#[derive(Debug)]
pub struct Postfix {
    sessions: Map,
    /// Refusals held in `sessions` (sum of their `pending`).
    pending: usize,
    /// Sessions with state per pid slot (saturating; never below the truth).
    pids: Vec<u8>,
}

impl Default for Postfix {
    fn default() -> Self {
        Postfix {
            sessions: Map::default(),
            pending: 0,
            pids: vec![0; PID_SLOTS],
        }
    }
}

/// What a line turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Understood; events (if any) were pushed.
    Understood,
    /// Not this parser's line.
    NotMine,
    /// This parser's kind of line, but malformed.
    Bad,
}

pub fn is_postfix(program: &str) -> bool {
    program.starts_with("postfix")
        || program.ends_with("/smtpd")
        || program.ends_with("/smtp")
        || program == "smtpd"
}

fn key(h: &Header) -> u64 {
    key_of(
        h.host.unwrap_or(""),
        h.program.unwrap_or(""),
        h.pid.unwrap_or(""),
    )
}

fn key_of(host: &str, program: &str, pid: &str) -> u64 {
    // FNV-1a over host, program and pid: no allocation per line.
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [host, program, pid] {
        for b in part.bytes().chain(std::iter::once(0)) {
            x ^= b as u64;
            x = x.wrapping_mul(0x0100_0000_01b3);
        }
    }
    x
}

/// `name[addr]` or `name[addr]:port` at the start of `s`; returns (name, addr, rest).
/// Byte searches (memchr): every refusal and auth failure goes through here.
pub fn client(s: &str) -> Option<(&str, &str, &str)> {
    let b = s.as_bytes();
    let open = memchr::memchr(b'[', b)?;
    let close = open + memchr::memchr(b']', &b[open..])?;
    // ASCII delimiters: every index below is a char boundary.
    let name = &s[..open];
    let addr = &s[open + 1..close];
    let mut rest = &s[close + 1..];
    if let Some(r) = rest
        .strip_prefix(':')
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
    {
        let end = r
            .bytes()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(r.len());
        rest = &r[end..];
    }
    if memchr::memchr(b' ', name.as_bytes()).is_some() || addr.is_empty() {
        return None;
    }
    Some((name, addr, rest))
}

/// `hay.find(needle)` for the short keys of log lines: memchr on the first byte, then a
/// compare (str::find builds a Two-Way searcher on every call, which showed in profiles).
fn find(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let first = *n.first()?;
    let mut from = 0;
    while let Some(i) = memchr::memchr(first, h.get(from..)?) {
        let at = from + i;
        if h.get(at..)?.starts_with(n) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The value of `key=<...>` (angle brackets) or `key=value` (to the next space) in `s`.
pub fn field<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = find(s.get(from..)?, key) {
        let at = from + i;
        // Must start a word: beginning, space, or ", ".
        let ok_start = at == 0 || matches!(s.as_bytes()[at - 1], b' ' | b',' | b';');
        let v = &s[at + key.len()..];
        if ok_start {
            if let Some(inner) = v.strip_prefix('<') {
                return inner.find('>').map(|e| &inner[..e]);
            }
            let end = v
                .bytes()
                .position(|c| matches!(c, b' ' | b',' | b';'))
                .unwrap_or(v.len());
            return Some(&v[..end]);
        }
        from = at + key.len();
    }
    None
}

fn opt(s: Option<&str>) -> Option<String> {
    s.filter(|v| !v.is_empty()).map(str::to_string)
}

impl Postfix {
    /// Whether a session of process `pid` may hold state (false: its disconnect line can be
    /// skipped). Collisions only cost a full parse.
    pub fn may_wait(&self, pid: u32) -> bool {
        self.pids
            .get(pid as usize % PID_SLOTS)
            .is_some_and(|&c| c > 0)
    }

    fn slot(h: &Header) -> Option<usize> {
        h.pid
            .and_then(|p| p.parse::<u32>().ok())
            .map(|p| p as usize % PID_SLOTS)
    }

    fn unmark(&mut self, h: &Header) {
        if let Some(c) = Self::slot(h).and_then(|s| self.pids.get_mut(s)) {
            // Saturated slots stay "maybe" for good: that only costs full parses.
            if *c < u8::MAX {
                *c = c.saturating_sub(1);
            }
        }
    }

    /// Feed one line whose program is Postfix's.
    pub fn line(&mut self, h: &Header, o: &Origin, out: &mut Vec<Event>) -> Seen {
        let msg = h.msg;
        let program = h.program.unwrap_or("");
        if let Some(rest) = msg.strip_prefix("disconnect from ") {
            self.disconnect(h, rest, out);
            return Seen::Understood;
        }
        static REJECT: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
            std::sync::OnceLock::new();
        let finder = REJECT.get_or_init(|| memchr::memmem::Finder::new(b": reject: "));
        if let Some(i) = finder.find(msg.as_bytes()) {
            return self.reject(h, o, &msg[i + 10..], out);
        }
        static CLIENT: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
            std::sync::OnceLock::new();
        let client_finder = CLIENT.get_or_init(|| memchr::memmem::Finder::new(b": client="));
        if client_finder.find(msg.as_bytes()).is_some() {
            if let Some(user) = field(msg, "sasl_username=") {
                let s = self.session(h, out);
                s.sasl_user = Some(user.to_string());
            }
            return Seen::Understood;
        }
        if let Some(rest) = msg.strip_prefix("warning: ") {
            if let Some(i) = rest.find(": SASL ") {
                if rest[i..].contains("authentication failed") {
                    return self.auth_failed(h, o, rest, i, out);
                }
            }
            return Seen::NotMine;
        }
        if program.ends_with("/smtp") || program.ends_with("/lmtp") || program.ends_with("/relay") {
            return remote_reply(h, o, out);
        }
        if msg.contains(" reject: ") || msg.contains(": reject_warning: ") {
            // warn_if_reject: nothing was refused.
            return Seen::Understood;
        }
        Seen::NotMine
    }

    /// Entries kept between lines: open sessions and the refusals they hold. Bounded by
    /// MAX_SESSIONS and MAX_PENDING whatever the input.
    pub fn retained(&self) -> (usize, usize) {
        (self.sessions.len(), self.pending)
    }

    /// Release every session's refusals with the AUTH state known so far and forget the
    /// sessions (their disconnect lines, if they come, find nothing and are ignored).
    fn release_all(&mut self, out: &mut Vec<Event>) {
        let mut all: Vec<Event> = self
            .sessions
            .drain()
            .flat_map(|(_, s)| {
                let (user, failed) = (s.sasl_user, s.auth_failed);
                s.pending.into_iter().map(move |mut e| {
                    if user.is_some() {
                        e.auth = Auth::Yes;
                        e.sasl_user = user.clone();
                    } else if failed {
                        e.auth = Auth::Failed;
                    }
                    e
                })
            })
            .collect();
        all.sort_by_key(|e| e.line);
        out.extend(all);
        self.pending = 0;
        self.pids.iter_mut().for_each(|c| *c = 0);
    }

    fn session(&mut self, h: &Header, out: &mut Vec<Event>) -> &mut Session {
        if self.sessions.len() >= MAX_SESSIONS || self.pending >= MAX_PENDING {
            // Cannot happen with intact logs; bounded either way.
            self.release_all(out);
        }
        let slot = Self::slot(h);
        match self.sessions.entry(key(h)) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                if let Some(c) = slot.and_then(|s| self.pids.get_mut(s)) {
                    *c = c.saturating_add(1);
                }
                v.insert(Session::default())
            }
        }
    }

    fn reject(&mut self, h: &Header, o: &Origin, rest: &str, out: &mut Vec<Event>) -> Seen {
        // `RCPT from name[addr]: 554 5.7.1 <u@x>: Relay access denied; from=<a> to=<b> proto=ESMTP helo=<h>`
        // `RCPT from ...`: the stage is the first word.
        let Some((stage, rest)) = memchr::memchr(b' ', rest.as_bytes())
            .and_then(|i| rest[i + 1..].strip_prefix("from ").map(|r| (&rest[..i], r)))
        else {
            return Seen::Bad;
        };
        let Some((name, addr, rest)) = client(rest) else {
            return Seen::Bad;
        };
        let Some(rest) = rest.strip_prefix(": ") else {
            return Seen::Bad;
        };
        // The reply ends where the envelope fields begin.
        static ENV: std::sync::OnceLock<memchr::memmem::FinderRev<'static>> =
            std::sync::OnceLock::new();
        let env_finder = ENV.get_or_init(|| memchr::memmem::FinderRev::new(b"; from=<"));
        let (reply, env) = match env_finder.rfind(rest.as_bytes()) {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (rest, ""),
        };
        let mut e =
            Event::new(Source::Postfix, Side::ThisServer, reply.to_string()).with_reply_codes();
        e.stage = Some(stage.trim().to_string());
        e.client_name = opt(Some(name));
        e.client_ip = opt(Some(addr));
        // `from=<a> to=<b> proto=ESMTP helo=<h>`: one pass over the tokens. postscreen
        // separates them with `, ` (postscreen_smtpd.c, v3.7.11: `from=<%s>, to=<%s>,
        // proto=%s, helo=<%s>`): the comma is not part of the value (review7 F24).
        for tok in memchr::Memchr::new(b' ', env.as_bytes())
            .chain(std::iter::once(env.len()))
            .scan(0, |from, end| {
                let t = &env[*from..end];
                *from = end + 1;
                Some(t.strip_suffix(',').unwrap_or(t))
            })
        {
            let (k, v) = match memchr::memchr(b'=', tok.as_bytes()) {
                Some(i) => (&tok[..i], &tok[i + 1..]),
                None => (tok, ""),
            };
            let v = v
                .strip_prefix('<')
                .map_or(v, |v| v.strip_suffix('>').unwrap_or(v));
            match k {
                "from" => e.sender = Some(v.to_string()),
                "to" => e.recipient = opt(Some(v)),
                "proto" => e.proto = opt(Some(v)),
                "helo" => e.helo = opt(Some(v)),
                _ => {}
            }
        }
        o.apply(&mut e, h);
        let s = self.session(h, out);
        if let Some(u) = &s.sasl_user {
            e.auth = Auth::Yes;
            e.sasl_user = Some(u.clone());
            out.push(e);
        } else if s.pending.len() >= MAX_PENDING_PER_SESSION {
            // No disconnect line in sight: release what this session holds, AUTH unknown
            // (or failed, if a failed login was seen).
            let failed = s.auth_failed;
            let held = std::mem::take(&mut s.pending);
            self.pending -= held.len();
            for mut x in held.into_iter().chain(std::iter::once(e)) {
                if failed {
                    x.auth = Auth::Failed;
                }
                out.push(x);
            }
        } else {
            // Usually the session's only refusal: no room for four (Events are large).
            s.pending.reserve_exact(1);
            s.pending.push(e);
            self.pending += 1;
        }
        Seen::Understood
    }

    fn auth_failed(
        &mut self,
        h: &Header,
        o: &Origin,
        rest: &str,
        i: usize,
        out: &mut Vec<Event>,
    ) -> Seen {
        // `warning: name[addr]: SASL PLAIN authentication failed: reason, sasl_username=u`
        let Some((name, addr, _)) = client(&rest[..i]) else {
            return Seen::Bad;
        };
        let text = &rest[i + 2..];
        let user = field(text, "sasl_username=").map(str::to_string);
        let mut e = Event::new(Source::Postfix, Side::ThisServer, text.to_string());
        e.cause = Cause::AuthFailed;
        e.stage = Some("AUTH".into());
        e.client_name = opt(Some(name));
        e.client_ip = opt(Some(addr));
        e.auth = Auth::Failed;
        e.sasl_user = user;
        o.apply(&mut e, h);
        let s = self.session(h, out);
        s.auth_failed = true;
        out.push(e);
        Seen::Understood
    }

    fn disconnect(&mut self, h: &Header, rest: &str, out: &mut Vec<Event>) {
        if self.sessions.is_empty() {
            return;
        }
        let Some(s) = self.sessions.remove(&key(h)) else {
            return;
        };
        self.pending -= s.pending.len();
        self.unmark(h);
        Self::close(s, rest, out);
    }

    fn close(s: Session, rest: &str, out: &mut Vec<Event>) {
        // `auth=1` (all succeeded), `auth=1/2` (one of two), `auth=0/1` (failed); absent: none.
        let auth = match field(rest, "auth=") {
            Some(v) => {
                let ok = v.split('/').next().and_then(|n| n.parse::<u32>().ok());
                if ok.unwrap_or(0) > 0 {
                    Auth::Yes
                } else {
                    Auth::Failed
                }
            }
            None if s.sasl_user.is_some() => Auth::Yes,
            None if s.auth_failed => Auth::Failed,
            None => Auth::No,
        };
        for mut e in s.pending {
            e.auth = auth;
            if auth == Auth::Yes {
                e.sasl_user = e.sasl_user.or_else(|| s.sasl_user.clone());
            }
            out.push(e);
        }
    }

    /// End of input: sessions whose disconnect line never came keep AUTH unknown.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.release_all(out);
    }
}

/// `postfix/smtp`: `<qid>: to=<r>, relay=..., dsn=5.7.1, status=bounced (host mx[addr] said:
/// 554 5.7.1 <r>: Relay access denied (in reply to RCPT TO command))`: the recipient's server
/// refused what this server passed on.
fn remote_reply(h: &Header, o: &Origin, out: &mut Vec<Event>) -> Seen {
    let msg = h.msg;
    let Some(st) = msg.find(", status=") else {
        return Seen::NotMine;
    };
    let status_and_text = &msg[st + 9..];
    if !(status_and_text.starts_with("bounced") || status_and_text.starts_with("deferred")) {
        return Seen::Understood;
    }
    let Some(open) = status_and_text.find(" (") else {
        return Seen::Understood;
    };
    let text = status_and_text[open + 2..].trim_end().trim_end_matches(')');
    let (host, reply) = if let Some(i) = text.find(" said: ") {
        (&text[..i], &text[i + 7..])
    } else if let Some(i) = text.find(" refused to talk to me: ") {
        (&text[..i], &text[i + 24..])
    } else {
        return Seen::Understood;
    };
    let (reply, stage) = match reply.rfind(" (in reply to ") {
        Some(i) => {
            let s = reply[i + 14..]
                .trim_end_matches(')')
                .trim_end_matches(" command");
            (
                &reply[..i],
                Some(s.split(' ').next().unwrap_or(s).to_string()),
            )
        }
        None => (reply, Some("CONNECT".to_string())),
    };
    let mut e =
        Event::new(Source::Postfix, Side::RecipientServer, reply.to_string()).with_reply_codes();
    e.stage = stage;
    e.remote_host = Some(host.trim_start_matches("host ").to_string());
    e.recipient = opt(field(msg, "to="));
    o.apply(&mut e, h);
    // This server was the client: authentication is not a question here.
    e.auth = Auth::Unknown;
    out.push(e);
    Seen::Understood
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::header::split;
    use crate::explain::stamp::YearRule;

    fn feed(lines: &[&str]) -> Vec<Event> {
        feed_with(lines, |_| {})
    }

    /// Feed the lines in order, calling `after_line` with the parser after each one.
    fn feed_with<S: AsRef<str>>(lines: &[S], mut after_line: impl FnMut(&Postfix)) -> Vec<Event> {
        let y = YearRule::new(Some(2026), 0);
        let mut p = Postfix::default();
        let mut out = Vec::new();
        for (n, l) in lines.iter().enumerate() {
            let h = split(l.as_ref(), &y);
            let o = Origin::new("t", n as u64 + 1);
            p.line(&h, &o, &mut out);
            after_line(&p);
        }
        p.finish(&mut out);
        out
    }

    /// Memory bound without timing: sessions whose disconnect never comes (distinct pids),
    /// and one process refusing without end (one pid), never make the parser hold more than
    /// its limits, and no refusal is lost on the way.
    #[test]
    fn pending_state_is_bounded_and_nothing_is_lost() {
        let y = YearRule::new(Some(2026), 0);
        let mut p = Postfix::default();
        let mut out = Vec::new();
        let mut released = 0usize;
        let mut max = (0, 0);
        let n = 150_000u32;
        for i in 0..n {
            // Half the refusals from distinct processes, half from pid 123 for ever.
            let pid = if i % 2 == 0 { i + 1000 } else { 123 };
            let l = format!(
                "Nov 28 02:46:29 mx postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[198.51.100.{}]: 554 5.7.1 <u{i}@ext.example>: Relay access denied; from=<a@b.example> to=<u{i}@ext.example> proto=ESMTP helo=<x>",
                i % 250
            );
            let h = split(&l, &y);
            let o = Origin::new("t", u64::from(i) + 1);
            assert_eq!(p.line(&h, &o, &mut out), Seen::Understood);
            released += out.len();
            out.clear();
            let (sessions, pending) = p.retained();
            max = (max.0.max(sessions), max.1.max(pending));
            assert!(sessions <= MAX_SESSIONS, "{sessions} sessions kept");
            assert!(pending <= MAX_PENDING, "{pending} refusals kept");
        }
        // The single endless session holds no more than its share.
        assert!(max.1 <= MAX_PENDING, "{max:?}");
        assert!(released > 0, "the bound released refusals along the way");
        p.finish(&mut out);
        released += out.len();
        assert_eq!(released, n as usize, "every refusal is reported once");
        assert_eq!(p.retained(), (0, 0));
    }

    #[test]
    fn one_session_holds_at_most_its_limit() {
        let lines: Vec<String> = (0..1000)
            .map(|i| format!("Nov 28 02:46:29 mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from unknown[198.51.100.8]: 554 5.7.1 <u{i}@x.example>: Relay access denied; from=<a@b.example> to=<u{i}@x.example> proto=ESMTP helo=<x>"))
            .collect();
        let out = feed_with(&lines, |p| {
            assert!(p.retained().1 <= MAX_PENDING_PER_SESSION)
        });
        assert_eq!(out.len(), 1000);
        assert!(out.iter().all(|e| e.auth == Auth::Unknown));
    }

    #[test]
    fn reject_fields_and_auth_from_the_disconnect_line() {
        let ev = feed(&[
            "Nov 28 02:46:29 mx postfix/submission/smtpd[20328]: NOQUEUE: reject: RCPT from unknown[198.51.100.8]: 454 4.7.1 <carol@external.example>: Relay access denied; from=<alice@example.com> to=<carol@external.example> proto=ESMTP helo=<bob-laptop>",
            "Nov 28 02:46:29 mx postfix/submission/smtpd[20328]: disconnect from unknown[198.51.100.8] ehlo=2 xclient=0/1 auth=1 mail=1 rcpt=0/1 quit=1 commands=5/7",
        ]);
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.client_ip.as_deref(), Some("198.51.100.8"));
        assert_eq!(e.client_name.as_deref(), Some("unknown"));
        assert_eq!(e.code, Some(454));
        assert_eq!(e.enhanced.as_deref(), Some("4.7.1"));
        assert_eq!(e.cause, Cause::RelayDenied);
        assert_eq!(e.auth, Auth::Yes);
        assert_eq!(e.helo.as_deref(), Some("bob-laptop"));
        assert_eq!(e.recipient.as_deref(), Some("carol@external.example"));
        assert_eq!(e.stage.as_deref(), Some("RCPT"));
    }

    #[test]
    fn a_lone_reject_line_leaves_auth_unknown() {
        let ev = feed(&["Jul 12 07:47:48 saturn postfix/smtpd[8738]: NOQUEUE: reject: RCPT from 1-2-3-4-example.com[1.2.3.4]:51234: 554 5.7.1 <smtp@example.com>: Relay access denied; from=<john@example.com> to=<smtp@example.com> proto=ESMTP helo=<x>"]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].auth, Auth::Unknown);
        assert_eq!(ev[0].client_ip.as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn field_extraction() {
        assert_eq!(field("a from=<> to=<x>", "from="), Some(""));
        assert_eq!(field("x, sasl_username=bob", "sasl_username="), Some("bob"));
        assert_eq!(field("xauth=3 auth=1", "auth="), Some("1"));
        assert_eq!(
            client("host[1.2.3.4]:25: rest"),
            Some(("host", "1.2.3.4", ": rest"))
        );
        assert_eq!(client("garbage"), None);
    }
}
