//! Relay decisions the way tcpserver and qmail-smtpd make them.
//!
//! tcpserver (ucspi-tcp 0.88 rules.c, tcprules(1)) looks rules up in this order and the
//! first key present wins, whatever the order of lines in the source:
//! 1. `$TCPREMOTEINFO@$TCPREMOTEIP`, 2. `$TCPREMOTEINFO@=$TCPREMOTEHOST`, 3. `$TCPREMOTEIP`,
//! 4. `=$TCPREMOTEHOST`, 5. shorter and shorter prefixes of the IP ending with '.',
//! 6. shorter and shorter suffixes of the host starting with '.', preceded by '=',
//! 7. `=` (any host with a name), 8. the empty key (everyone).
//!
//! Ranges `a.b.c.d-e` were expanded by tcprules into single IPs; there is no CIDR.
//!
//! qmail-smtpd (qmail-smtpd.c, rcpthosts.c): with RELAYCLIENT set, any recipient is
//! accepted (RELAYCLIENT's value is appended to it); otherwise the domain must be in
//! control/rcpthosts (exact, or a `.suffix` entry) or a key of control/morercpthosts.cdb,
//! else `553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)`. Without a
//! control/rcpthosts file every domain is accepted.

use super::cdb::Cdb;
use super::model::{CdbState, Control, Model, RulesFile};
use super::runscript::{Launcher, Service};
use crate::context::Context;
use crate::finding::Mta;
use crate::relay::{Decision, Query, TraceStep, Verdict};
use std::path::PathBuf;

pub const NOGATEWAY: &str = "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)";

/// The keys tcpserver tries, in order.
pub fn lookup_keys(ip: &str, host: Option<&str>, info: Option<&str>) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(info) = info {
        keys.push(format!("{info}@{ip}"));
        if let Some(h) = host {
            keys.push(format!("{info}@={h}"));
        }
    }
    keys.push(ip.to_string());
    if let Some(h) = host {
        keys.push(format!("={h}"));
    }
    for (i, c) in ip.char_indices().rev() {
        if c == '.' {
            keys.push(ip[..=i].to_string());
        }
    }
    if let Some(h) = host {
        for (i, c) in h.char_indices() {
            if c == '.' {
                keys.push(format!("={}", &h[i..]));
            }
        }
        keys.push("=".into());
    }
    keys.push(String::new());
    keys
}

/// The first rule tcpserver finds for a client in a cdb: (key, data).
pub fn tcp_lookup<'a>(cdb: &'a Cdb, ip: &str, host: Option<&str>) -> Option<(String, &'a [u8])> {
    lookup_keys(ip, host, None)
        .into_iter()
        .find_map(|k| cdb.get(k.as_bytes()).map(|d| (k, d)))
}

/// Rule data: deny flag and the environment it sets.
pub fn rule_env(data: &[u8]) -> (bool, Vec<(String, String)>) {
    let mut deny = false;
    let mut env = Vec::new();
    for item in data.split(|&b| b == 0) {
        match item.first() {
            Some(b'D') => deny = true,
            Some(b'+') => {
                let s = String::from_utf8_lossy(&item[1..]).to_string();
                match s.split_once('=') {
                    Some((n, v)) => env.push((n.to_string(), v.to_string())),
                    None => env.push((s, String::new())),
                }
            }
            _ => {}
        }
    }
    (deny, env)
}

/// Human form of rule data: `deny` or `allow,RELAYCLIENT=""`.
pub fn describe(key: &str, data: &[u8]) -> String {
    let (deny, env) = rule_env(data);
    let mut s = format!("{key}:{}", if deny { "deny" } else { "allow" });
    for (n, v) in env {
        s.push_str(&format!(",{n}=\"{v}\""));
    }
    s
}

/// How rcpthosts treats a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptCheck {
    /// No control/rcpthosts: every domain is accepted.
    NoRcpthosts,
    /// Accepted by this rcpthosts entry (lowercased) on this line.
    Rcpthosts(String, usize),
    /// Accepted by this key of morercpthosts.cdb.
    More(String),
    Refused,
    /// morercpthosts.cdb exists but cannot be read: qmail-smtpd answers 421.
    Broken(String),
}

/// rcpthosts.c: try the domain and each suffix starting at a '.', in rcpthosts and then
/// in morercpthosts.cdb.
pub fn rcpt_check(c: &Control, domain: &str) -> RcptCheck {
    if c.rcpthosts.is_none() {
        return RcptCheck::NoRcpthosts;
    }
    let d = domain.to_ascii_lowercase();
    let suffixes = || {
        d.char_indices()
            .filter(|&(i, ch)| i == 0 || ch == '.')
            .map(|(i, _)| &d[i..])
    };
    for s in suffixes() {
        if c.rcpthosts_set.contains(s) {
            let line = c
                .rcpthosts
                .as_ref()
                .and_then(|r| {
                    r.entries
                        .iter()
                        .find(|e| r.entry(e).eq_ignore_ascii_case(s))
                        .map(|e| e.line as usize)
                })
                .unwrap_or(1);
            return RcptCheck::Rcpthosts(s.to_string(), line);
        }
    }
    match &c.morercpthosts_cdb {
        CdbState::Ok(cdb, _) => {
            for s in suffixes() {
                if cdb.find(s.as_bytes()).is_some() {
                    return RcptCheck::More(s.to_string());
                }
            }
            RcptCheck::Refused
        }
        CdbState::Missing => RcptCheck::Refused,
        CdbState::Unreadable(e) => RcptCheck::Broken(e.clone()),
    }
}

/// Fast form of `rcpt_check` for the bulk cross-check: accepted or not.
pub fn rcpt_accepts(c: &Control, d: &str) -> bool {
    if c.rcpthosts.is_none() {
        return true;
    }
    let cdb = c.morercpthosts_cdb.cdb();
    let mut lower = String::new();
    let d = if d.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = d.to_ascii_lowercase();
        lower.as_str()
    } else {
        d
    };
    let b = d.as_bytes();
    for i in 0..b.len() {
        if i == 0 || b[i] == b'.' {
            let s = &d[i..];
            if c.rcpthosts_set.contains(s) {
                return true;
            }
            if let Some(cdb) = cdb {
                if cdb.find(s.as_bytes()).is_some() {
                    return true;
                }
            }
        }
    }
    let _ = lower;
    false
}

/// `rcpt_accepts` for many domains (the million-domain cross-check): rcpthosts first, then
/// batched morercpthosts.cdb lookups of the whole domain, then the remaining suffixes.
pub fn rcpt_accepts_batch(c: &Control, domains: &[&str]) -> Vec<bool> {
    if c.rcpthosts.is_none() {
        return vec![true; domains.len()];
    }
    let lowered: Vec<std::borrow::Cow<'_, str>> = domains
        .iter()
        .map(|d| {
            if d.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Owned(d.to_ascii_lowercase())
            } else {
                std::borrow::Cow::Borrowed(*d)
            }
        })
        .collect();
    // A small rcpthosts is faster to scan than to hash every suffix against: an entry
    // matches the whole domain, or (with a leading '.') a suffix at a label boundary.
    let small: Option<Vec<&str>> =
        (c.rcpthosts_set.len() <= 32).then(|| c.rcpthosts_set.iter().map(String::as_str).collect());
    let in_rcpthosts = |d: &str| -> bool {
        match &small {
            Some(v) => v
                .iter()
                .any(|e| *e == d || (e.starts_with('.') && d.ends_with(*e))),
            None => {
                let b = d.as_bytes();
                (0..b.len()).any(|i| (i == 0 || b[i] == b'.') && c.rcpthosts_set.contains(&d[i..]))
            }
        }
    };
    let mut out: Vec<bool> = lowered.iter().map(|d| in_rcpthosts(d)).collect();
    let Some(cdb) = c.morercpthosts_cdb.cdb() else {
        return out;
    };
    let todo: Vec<usize> = (0..out.len()).filter(|&i| !out[i]).collect();
    if todo.is_empty() {
        return out; // all in rcpthosts: the cdb is not read for lookups
    }
    let keys: Vec<&[u8]> = todo.iter().map(|&i| lowered[i].as_bytes()).collect();
    let mut found = Vec::with_capacity(keys.len());
    cdb.find_batch(&keys, &mut found);
    for (j, &i) in todo.iter().enumerate() {
        if found[j].is_some() {
            out[i] = true;
            continue;
        }
        let d = lowered[i].as_ref();
        let b = d.as_bytes();
        out[i] = (1..b.len()).any(|k| b[k] == b'.' && cdb.find(&b[k..]).is_some());
    }
    out
}

/// AUTH on a service, as the AUTH patches decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Off,
    On {
        required: bool,
        /// The checkpassword program (first qmail-smtpd argument), if any.
        checkprog: Option<String>,
    },
    /// Depends on which AUTH patch the qmail-smtpd binary has.
    Unknown(String),
}

pub fn auth_mode(s: &Service) -> Auth {
    let checkprog = s.smtpd_args.first().cloned();
    let require_auth = s
        .env_var("REQUIRE_AUTH")
        .and_then(|v| v.value.clone())
        .map(|v| !v.is_empty() && v != "0")
        .unwrap_or(false);
    match s.env_var("SMTPAUTH") {
        Some(v) => match v.value.as_deref() {
            Some(x) if super::runscript::is_dynamic(x) => {
                Auth::Unknown(format!("SMTPAUTH is {x}, known only at run time"))
            }
            Some(x) if x.starts_with('-') => Auth::Off,
            Some(x) => Auth::On {
                required: x.contains('!') || require_auth,
                checkprog,
            },
            None => Auth::Unknown("SMTPAUTH is set from a value this reading cannot know".into()),
        },
        None if s.smtpd_args.is_empty() => {
            if require_auth {
                Auth::On {
                    required: true,
                    checkprog: None,
                }
            } else {
                Auth::Off
            }
        }
        // Plesk's qmail and the Dabrowski/Shupp patches offer AUTH whenever qmail-smtpd
        // gets a checkpassword program (and its subprogram) as arguments.
        None if s.launcher == Launcher::Xinetd || s.smtpd_args.len() >= 2 || require_auth => {
            Auth::On {
                required: require_auth,
                checkprog,
            }
        }
        None => Auth::Unknown(format!(
            "qmail-smtpd gets one argument ({}) and SMTPAUTH is not set: AUTH is on with the Dabrowski/Shupp AUTH patches, off with Erwin Hoffmann's",
            s.smtpd_args.first().map(String::as_str).unwrap_or("")
        )),
    }
}

pub fn is_true_prog(p: &str) -> bool {
    let b = p.rsplit('/').next().unwrap_or(p);
    b == "true"
}

/// Whether qmail-smtpd can offer TLS on this service (before AUTH).
pub fn tls_available(s: &Service, c: Option<&Control>) -> bool {
    s.implicit_tls
        || (s.launcher == Launcher::Sslserver)
        || s.env_var("UCSPITLS").is_some()
        || c.map(|c| c.has_servercert).unwrap_or(false)
}

fn step(
    file: impl Into<PathBuf>,
    line: usize,
    entry: impl Into<String>,
    effect: &str,
) -> TraceStep {
    TraceStep {
        file: file.into(),
        line,
        entry: entry.into(),
        effect: effect.to_string(),
    }
}

/// The decision of one service (None: no run script found, tcpserver assumed without rules).
pub fn decide(ctx: &Context, m: &Model, s: Option<&Service>, q: &Query) -> Decision {
    let name = s.map(|s| s.name.clone()).unwrap_or_else(|| "smtp".into());
    let mut d = Decision::new(Mta::Qmail, name, Verdict::Accept);
    let ip = q.client_ip.as_str();
    let mut relayclient: Option<String> = None;
    let mut relay_depends: Option<String> = None;
    let mut relay_cond: Option<String> = None;
    if let Some(s) = s {
        let shown = s.file.display.clone();
        for e in &s.env {
            if e.name == "RELAYCLIENT" {
                if e.conditional {
                    // Set only when the script's condition holds: the run script alone
                    // cannot say whether this client relays.
                    let cond = e
                        .condition
                        .as_deref()
                        .map(|c| format!(" (`{c}`)"))
                        .unwrap_or_default();
                    relay_cond = Some(format!(
                        "RELAYCLIENT is set at {}:{} only when its condition{cond} holds: then every recipient is accepted (relay), otherwise `553 {NOGATEWAY}`",
                        shown.display(),
                        e.line
                    ));
                    d.trace.push(step(
                        &shown,
                        e.line,
                        format!("RELAYCLIENT=\"{}\"", e.value.as_deref().unwrap_or("?")),
                        "relay for every client, only when the condition holds",
                    ));
                } else if let Some(v) = &e.value {
                    relayclient = Some(v.clone());
                    d.trace.push(step(
                        &shown,
                        e.line,
                        format!("RELAYCLIENT=\"{v}\""),
                        "relay for every client of this service",
                    ));
                }
            }
        }
        d.dynamic_notes(s);
        // tcpserver rules
        if let Some(x) = &s.rules_cdb {
            match m.rules_for(ctx, s) {
                None => d.depends_on.push(format!(
                    "tcpserver rules {x} (not read: only the run script was given)"
                )),
                Some(r) => {
                    if let Some(early) = connection(r, s, ip, q, &mut d, &mut relayclient) {
                        return early;
                    }
                }
            }
        }
        if s.relaylock && relayclient.is_none() {
            relay_depends = Some(format!(
                "Plesk relaylock: whether {ip} has a POP/IMAP login in smtp_poplocks or is on the relay white list"
            ));
            d.trace.push(step(
                &shown,
                s.line,
                "relaylock",
                "sets RELAYCLIENT for POP-before-SMTP clients",
            ));
        }
    } else {
        d.depends_on
            .push("no qmail-smtpd run script found: assumed tcpserver without rules".into());
    }
    // AUTH
    let auth = s.map(auth_mode).unwrap_or(Auth::Off);
    let shown = s.map(|s| s.file.display.clone()).unwrap_or_default();
    let line = s.map(|s| s.line).unwrap_or(1);
    if let Some(user) = &q.sasl_user {
        match &auth {
            Auth::On { checkprog, .. } => {
                d.trace.push(step(
                    &shown,
                    line,
                    format!(
                        "AUTH as {user} via {}",
                        checkprog.as_deref().unwrap_or("(none)")
                    ),
                    "authenticated: RELAYCLIENT set",
                ));
                return d.accept_relay(None);
            }
            Auth::Unknown(why) => {
                d.depends_on.push(why.clone());
                d.result = Verdict::Depends;
                return d;
            }
            Auth::Off => {
                d.trace.push(step(
                    &shown,
                    line,
                    "SMTPAUTH",
                    "AUTH is not offered on this service: the client cannot authenticate",
                ));
            }
        }
    } else if let Auth::On { required: true, .. } = auth {
        d.trace.push(step(
            &shown,
            line,
            "AUTH required",
            "unauthenticated client refused",
        ));
        d.result = Verdict::Reject;
        d.code = Some(530);
        d.text = Some("authentication required (#5.7.1)".into());
        return d;
    }
    if let Some(v) = relayclient {
        return d.accept_relay(Some(v));
    }
    let Some(c) = m.control.as_ref() else {
        d.result = Verdict::Depends;
        d.depends_on
            .push("control/rcpthosts and morercpthosts.cdb (control directory not given)".into());
        return d;
    };
    let domain = q.rcpt_domain();
    let rh = c.display.join("rcpthosts");
    match rcpt_check(c, &domain) {
        RcptCheck::NoRcpthosts => {
            d.trace.push(step(
                &rh,
                1,
                "(file missing)",
                "every recipient domain accepted: open relay",
            ));
        }
        RcptCheck::Rcpthosts(e, l) => {
            d.trace.push(step(&rh, l, e, "permit"));
        }
        RcptCheck::More(k) => {
            d.trace
                .push(step(c.display.join("morercpthosts.cdb"), 1, k, "permit"));
        }
        RcptCheck::Broken(e) => {
            d.trace.push(step(
                c.display.join("morercpthosts.cdb"),
                1,
                e,
                "cannot read",
            ));
            d.result = Verdict::Defer;
            d.code = Some(421);
            d.text = Some("unable to read controls (#4.3.0)".into());
        }
        RcptCheck::Refused => {
            d.trace.push(step(
                &rh,
                1,
                domain.clone(),
                "no match (rcpthosts, morercpthosts.cdb)",
            ));
            // A client relaylock could let through is still refused as a stranger; the
            // condition is named.
            if let Some(why) = relay_cond {
                // A conditional RELAYCLIENT is neither a grant nor a refusal.
                d.result = Verdict::Depends;
                d.depends_on.push(why);
                return d;
            }
            d.result = Verdict::Reject;
            if let Some(why) = relay_depends {
                d.depends_on.push(format!("accepted instead if: {why}"));
            }
            d.code = Some(553);
            d.text = Some(NOGATEWAY.into());
        }
    }
    d
}

/// tcpserver's connection-time rule lookup. Returns a final decision when the connection is
/// dropped.
fn connection(
    r: &RulesFile,
    s: &Service,
    ip: &str,
    q: &Query,
    d: &mut Decision,
    relayclient: &mut Option<String>,
) -> Option<Decision> {
    let cdbf = r.cdb_display.clone();
    match &r.cdb {
        CdbState::Missing if s.allow_no_rules => {
            d.trace
                .push(step(&cdbf, 1, "(file missing)", "tcpserver -X: no rules"));
            None
        }
        CdbState::Missing | CdbState::Unreadable(_) => {
            let mut x = d.clone();
            x.trace.push(step(
                &cdbf,
                1,
                "(cannot read)",
                "tcpserver drops the connection",
            ));
            x.result = Verdict::Unavailable;
            x.text = Some("connection closed by tcpserver: unable to read the rules file".into());
            Some(x)
        }
        CdbState::Ok(cdb, _) => match tcp_lookup(cdb, ip, q.client_name.as_deref()) {
            None => {
                d.trace.push(step(
                    &cdbf,
                    1,
                    format!("{ip} (no rule)"),
                    "allow, no environment",
                ));
                None
            }
            Some((key, data)) => {
                let (deny, env) = rule_env(data);
                let (file, line) = match (&r.source, r.source_rule_for_key(&key)) {
                    (Some(src), Some(rule)) if src_matches(r, &key, data) => {
                        (src.display.clone(), rule.line)
                    }
                    _ => (cdbf.clone(), 1),
                };
                let entry = describe(&key, data);
                if deny {
                    let mut x = d.clone();
                    x.trace.push(step(
                        file,
                        line,
                        entry,
                        "deny: tcpserver drops the connection",
                    ));
                    x.result = Verdict::Unavailable;
                    x.text = Some("connection closed by tcpserver (deny rule)".into());
                    return Some(x);
                }
                let mut effect = "allow";
                for (n, v) in env {
                    if n == "RELAYCLIENT" {
                        *relayclient = Some(v);
                        effect = "allow, RELAYCLIENT set: relay";
                    }
                }
                d.trace.push(step(file, line, entry, effect));
                None
            }
        },
    }
}

/// The source line describes what the cdb says for this key.
fn src_matches(r: &RulesFile, key: &str, data: &[u8]) -> bool {
    r.compiled
        .iter()
        .find(|c| c.0 == key)
        .map(|c| c.1 == data)
        .unwrap_or(false)
}

trait DecisionExt {
    fn accept_relay(self, appended: Option<String>) -> Decision;
    fn dynamic_notes(&mut self, s: &Service);
}

impl DecisionExt for Decision {
    fn accept_relay(mut self, appended: Option<String>) -> Decision {
        self.result = Verdict::Accept;
        if let Some(v) = appended.filter(|v| !v.is_empty()) {
            self.text = Some(format!(
                "accepted, but RELAYCLIENT={v:?} is appended to the recipient address"
            ));
        }
        self
    }
    fn dynamic_notes(&mut self, s: &Service) {
        for n in &s.dynamic {
            if !self.depends_on.contains(n) {
                self.depends_on.push(n.clone());
            }
        }
    }
}

/// Decisions for every service of the model (or the assumed default one).
pub fn simulate(ctx: &Context, m: &Model, q: &Query) -> Vec<Decision> {
    if m.services.is_empty() {
        if m.control.is_some() {
            return vec![decide(ctx, m, None, q)];
        }
        return Vec::new();
    }
    m.services
        .iter()
        .map(|s| decide(ctx, m, Some(s), q))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_order_is_most_specific_first() {
        let k = lookup_keys("10.1.2.3", Some("mx.example.com"), None);
        assert_eq!(
            k,
            vec![
                "10.1.2.3",
                "=mx.example.com",
                "10.1.2.",
                "10.1.",
                "10.",
                "=.example.com",
                "=.com",
                "=",
                ""
            ]
        );
    }

    #[test]
    fn rule_data() {
        let (deny, env) = rule_env(b"+RELAYCLIENT=\0+RBLSMTPD=-x\0");
        assert!(!deny);
        assert_eq!(env[0], ("RELAYCLIENT".into(), String::new()));
        assert_eq!(describe("", b"D\0"), ":deny");
    }
}

#[cfg(test)]
mod rcpthosts_tests {
    use super::*;
    use crate::context::{Context, Options, Root};

    #[test]
    fn rcpthosts_semantics_agree_in_all_three_forms() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("rcpthosts"),
            ".example.com\nexact.org\nUPPER.example\n",
        )
        .unwrap();
        let cdb = crate::qmail::cdb::build(&[(b"more.net", b""), (b".sub.io", b"")]);
        std::fs::write(d.path().join("morercpthosts.cdb"), cdb).unwrap();
        let ctx = Context::new(Root::live(), Options::default());
        let c = crate::qmail::model::load_control(&ctx, d.path(), &mut Vec::new());
        let cases = [
            ("a.example.com", true),
            ("example.com", false),
            ("exact.org", true),
            ("x.exact.org", false),
            ("upper.example", true),
            ("more.net", true),
            ("MORE.NET", true),
            ("y.sub.io", true),
            ("sub.io", false),
            ("other.test", false),
        ];
        let domains: Vec<&str> = cases.iter().map(|c| c.0).collect();
        let batch = rcpt_accepts_batch(&c, &domains);
        for (i, (dom, want)) in cases.iter().enumerate() {
            assert_eq!(rcpt_accepts(&c, dom), *want, "rcpt_accepts {dom}");
            assert_eq!(batch[i], *want, "batch {dom}");
            let one = !matches!(rcpt_check(&c, dom), RcptCheck::Refused);
            assert_eq!(one, *want, "rcpt_check {dom}");
        }
    }
}
