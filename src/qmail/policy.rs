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
use super::rcpthosts::{rcpt_check, RcptCheck};
use super::runscript::{Launcher, Service};
use crate::context::Context;
use crate::finding::Mta;
use crate::relay::{Decision, Query, TraceStep, Verdict};
use std::ops::ControlFlow;
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
            // "-" (Hoffmann's patch) and "0" (sagredo's qmail-smtpd.c) turn AUTH off.
            Some(x) if x.starts_with('-') || x == "0" => Auth::Off,
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
            "qmail-smtpd gets one argument ({}) and SMTPAUTH is not set: AUTH is on with Dabrowski's 0.31 patch and Hoffmann's up to 0.7.1 (netqmail's combined AUTH/TLS patch, QMailToaster), off with Hoffmann's 0.7.2 and later, sagredo and s/qmail",
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
        || s.tls_wrapper.is_some()
        || c.map(|c| c.has_servercert).unwrap_or(false)
}

/// Whether a service that offers AUTH offers it to a client that has not started TLS.
#[derive(Debug, Clone)]
pub enum PlainAuth {
    /// AUTH waits for TLS (implicit TLS, or a patch switch that holds it back).
    No,
    /// Offered in clear: why, and the line of the setting that causes it (None: the
    /// service's command line).
    Yes(
        String,
        Option<(std::sync::Arc<crate::source::SourceFile>, usize)>,
    ),
    /// Depends on the AUTH/TLS patch qmail-smtpd was built with, which the configuration
    /// does not show (the binary is not in the snapshot).
    Unknown,
}

/// How the AUTH/TLS patches decide whether AUTH is advertised before STARTTLS:
/// - implicit TLS (sslserver without -n, a TLS wrapper, SMTPS with qmail-tls): never clear;
/// - sagredo's force-tls patch: held back unless FORCETLS=0, in the run script or a tcp
///   rule's environment (tcpserver passes rule variables to qmail-smtpd);
/// - jms1's combined patch: held back unless ALLOW_INSECURE_AUTH is set;
/// - netqmail + the combined AUTH/TLS patch, QMailToaster, s/qmail (UCSPITLS=! requires TLS
///   before MAIL, not before AUTH): advertised whatever the TLS state; only whether
///   STARTTLS exists at all depends on control/servercert.pem (qmail-tls) or sslserver -n.
pub fn plain_auth(s: &Service, c: Option<&Control>, rules: Option<&RulesFile>) -> PlainAuth {
    use super::runscript::AuthTlsSwitch;
    if s.implicit_tls {
        return PlainAuth::No;
    }
    let env = |name: &str| s.env_var(name).filter(|v| !v.conditional);
    if let Some(v) = env("FORCETLS").filter(|v| v.value.as_deref() == Some("0")) {
        return PlainAuth::Yes(
            "FORCETLS=0 tells the force-tls patch to offer AUTH before STARTTLS".into(),
            Some((s.file.clone(), v.line)),
        );
    }
    if let (Some(r), Some(src)) = (rules, rules.and_then(|r| r.source.as_ref())) {
        let zero = r.compiled.iter().find(|c| {
            let (deny, env) = rule_env(&c.1);
            !deny && env.iter().any(|(n, v)| n == "FORCETLS" && v == "0")
        });
        if let Some(c) = zero {
            let who = if c.0.is_empty() {
                "every client".to_string()
            } else {
                format!("the clients of rule {:?}", c.0)
            };
            return PlainAuth::Yes(
                format!("this tcp rule sets FORCETLS=0 for {who}, so the force-tls patch offers them AUTH before STARTTLS"),
                Some((src.clone(), c.2)),
            );
        }
    }
    if !tls_available(s, c) {
        return PlainAuth::Yes(
            "there is no TLS at all (not under sslserver or a TLS wrapper, no UCSPITLS, no control/servercert.pem)".into(),
            None,
        );
    }
    match s.build {
        Some(AuthTlsSwitch::ForceTls) => PlainAuth::No,
        Some(AuthTlsSwitch::AllowInsecureAuth) => match env("ALLOW_INSECURE_AUTH") {
            Some(v) => PlainAuth::Yes(
                "ALLOW_INSECURE_AUTH tells jms1's patch to offer AUTH before STARTTLS".into(),
                Some((s.file.clone(), v.line)),
            ),
            None => PlainAuth::No,
        },
        Some(AuthTlsSwitch::None) => PlainAuth::Yes(
            "STARTTLS is offered, but this qmail-smtpd has no switch that holds AUTH back until it (no FORCETLS or ALLOW_INSECURE_AUTH in the binary)".into(),
            None,
        ),
        // FORCETLS set to something else: the admin runs the force-tls patch.
        None if env("FORCETLS").is_some() => PlainAuth::No,
        None => PlainAuth::Unknown,
    }
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
    let mut d = decide_rcpt(ctx, m, s, q);
    // qmail-smtpd.c smtp_rcpt() (netqmail 1.06) ends an accepted RCPT with `250 ok`.
    if d.result == Verdict::Accept && d.code.is_none() && d.text.is_none() {
        d.code = Some(250);
        d.text = Some("ok".into());
    }
    d
}

fn decide_rcpt(ctx: &Context, m: &Model, s: Option<&Service>, q: &Query) -> Decision {
    let name = s.map(|s| s.name.clone()).unwrap_or_else(|| "smtp".into());
    let mut d = Decision::new(Mta::Qmail, name, Verdict::Accept);
    let ip = q.client_ip.as_str();
    let mut relayclient: Option<String> = None;
    let mut relay_depends: Option<String> = None;
    let mut relay_cond: Option<String> = None;
    if let Some(s) = s {
        let shown = s.file.display.clone();
        (relayclient, relay_cond) = script_relayclient(&mut d, s);
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
    let mut d = match authenticate(d, s, q) {
        ControlFlow::Break(done) => return done,
        ControlFlow::Continue(d) => d,
    };
    if let Some(v) = relayclient {
        return d.accept_relay(Some(v));
    }
    let Some(c) = m.control.as_ref() else {
        d.result = Verdict::Depends;
        d.depends_on
            .push("control/rcpthosts and morercpthosts.cdb (control directory not given)".into());
        return d;
    };
    recipient(&mut d, c, q, relay_cond, relay_depends);
    d
}

/// RELAYCLIENT as the run script sets it: (its value when set unconditionally, what the
/// condition is when it is set only under one).
fn script_relayclient(d: &mut Decision, s: &Service) -> (Option<String>, Option<String>) {
    let shown = s.file.display.clone();
    let mut relayclient = None;
    let mut relay_cond = None;
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
    (relayclient, relay_cond)
}

/// SMTP AUTH: Break with the final decision when the client's login (or a required one it
/// lacks) decides, Continue otherwise.
fn authenticate(
    mut d: Decision,
    s: Option<&Service>,
    q: &Query,
) -> ControlFlow<Decision, Decision> {
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
                return ControlFlow::Break(d.accept_relay(None));
            }
            Auth::Unknown(why) => {
                d.depends_on.push(why.clone());
                d.result = Verdict::Depends;
                return ControlFlow::Break(d);
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
        return ControlFlow::Break(d);
    }
    ControlFlow::Continue(d)
}

/// qmail-smtpd's recipient check for a client without RELAYCLIENT: rcpthosts and
/// morercpthosts.cdb.
fn recipient(
    d: &mut Decision,
    c: &Control,
    q: &Query,
    relay_cond: Option<String>,
    relay_depends: Option<String>,
) {
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
            // No line decided: the domain is on none of them (line 0 prints the file alone).
            d.trace.push(step(
                &rh,
                0,
                domain.clone(),
                "no match (rcpthosts, morercpthosts.cdb)",
            ));
            // A client relaylock could let through is still refused as a stranger; the
            // condition is named.
            if let Some(why) = relay_cond {
                // A conditional RELAYCLIENT is neither a grant nor a refusal.
                d.result = Verdict::Depends;
                d.depends_on.push(why);
                return;
            }
            d.result = Verdict::Reject;
            if let Some(why) = relay_depends {
                d.depends_on.push(format!("accepted instead if: {why}"));
            }
            d.code = Some(553);
            d.text = Some(NOGATEWAY.into());
        }
    }
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
