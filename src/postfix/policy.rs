//! Relay evaluation per smtpd listener, following smtpd's semantics (SMTPD_ACCESS_README,
//! postconf(5), src/smtpd/smtpd_check.c):
//!
//! - with smtpd_delay_reject=yes (the default) every list is evaluated at RCPT TO, in the
//!   order client, helo, sender, then relay and recipient (relay first when
//!   smtpd_relay_before_recipient_restrictions=yes, the default at compatibility_level >= 3.6);
//! - within a list, left to right: a permit ends that list only, a reject or defer ends the
//!   decision, reaching the end of a list permits that list;
//! - restriction classes (smtpd_restriction_classes) are evaluated as nested lists;
//! - `warn_if_reject X` only logs;
//! - the startup safety check: without a working reject_unauth_destination,
//!   defer_unauth_destination, reject, defer, defer_if_permit or check_relay_domains in the
//!   relay or recipient list, smtpd dies on every connection;
//! - an unknown restriction (or one removed in the version in use) answers
//!   `451 4.3.5 Server configuration error`;
//! - permit_sasl_authenticated only matches where smtpd_sasl_auth_enable=yes for the listener.
//!
//! Maps and DNS lookups are not consulted: an access map or policy service makes the result
//! `depends` (naming what it depends on) when the rest of the decision would be a refusal.

use std::collections::HashSet;

use super::model::{Model, Origin, Scope};
use super::params;
use crate::finding::Mta;
use crate::relay::{ClientClass, Decision, RecipientClass, TraceStep, Verdict};

/// Who the client is for one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub in_mynetworks: bool,
    /// Logged in with SASL (only possible where the listener enables SASL).
    pub authenticated: bool,
}

impl Client {
    pub fn of(class: ClientClass) -> Client {
        match class {
            ClientClass::Stranger => Client {
                in_mynetworks: false,
                authenticated: false,
            },
            ClientClass::Trusted => Client {
                in_mynetworks: true,
                authenticated: false,
            },
            ClientClass::Authenticated => Client {
                in_mynetworks: false,
                authenticated: true,
            },
        }
    }
}

/// Restrictions smtpd knows (postconf(5), SMTPD_ACCESS_README). Those that take an argument
/// are listed in `TAKES_ARG`.
const KNOWN: &[&str] = &[
    "permit",
    "reject",
    "defer",
    "defer_if_permit",
    "defer_if_reject",
    "warn_if_reject",
    "permit_mynetworks",
    "permit_sasl_authenticated",
    "permit_tls_clientcerts",
    "permit_tls_all_clientcerts",
    "permit_inet_interfaces",
    "permit_auth_destination",
    "permit_mx_backup",
    "permit_dnswl_client",
    "permit_rhswl_client",
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject_unauth_pipelining",
    "reject_rbl_client",
    "reject_rhsbl_client",
    "reject_rhsbl_sender",
    "reject_rhsbl_recipient",
    "reject_rhsbl_helo",
    "reject_rhsbl_reverse_client",
    "reject_unknown_client_hostname",
    "reject_unknown_client",
    "reject_unknown_reverse_client_hostname",
    "reject_invalid_helo_hostname",
    "reject_invalid_hostname",
    "reject_non_fqdn_helo_hostname",
    "reject_non_fqdn_hostname",
    "reject_unknown_helo_hostname",
    "reject_unknown_hostname",
    "reject_non_fqdn_sender",
    "reject_non_fqdn_recipient",
    "reject_unknown_sender_domain",
    "reject_unknown_recipient_domain",
    "reject_unknown_address",
    "reject_unlisted_sender",
    "reject_unlisted_recipient",
    "reject_unverified_sender",
    "reject_unverified_recipient",
    "reject_sender_login_mismatch",
    "reject_authenticated_sender_login_mismatch",
    "reject_known_sender_login_mismatch",
    "reject_unauthenticated_sender_login_mismatch",
    "reject_multi_recipient_bounce",
    "reject_plaintext_session",
    "sleep",
    "check_policy_service",
    "check_ccert_access",
    "check_sasl_access",
    "check_client_access",
    "check_client_a_access",
    "check_client_mx_access",
    "check_client_ns_access",
    "check_reverse_client_hostname_access",
    "check_reverse_client_hostname_a_access",
    "check_reverse_client_hostname_mx_access",
    "check_reverse_client_hostname_ns_access",
    "check_helo_access",
    "check_helo_a_access",
    "check_helo_mx_access",
    "check_helo_ns_access",
    "check_sender_access",
    "check_sender_a_access",
    "check_sender_mx_access",
    "check_sender_ns_access",
    "check_recipient_access",
    "check_recipient_a_access",
    "check_recipient_mx_access",
    "check_recipient_ns_access",
    "check_etrn_access",
    "check_relay_domains",
    "reject_maps_rbl",
    "permit_naked_ip_address",
];

fn takes_arg(r: &str) -> bool {
    (r.starts_with("check_") && r.ends_with("_access"))
        || matches!(
            r,
            "check_policy_service"
                | "reject_rbl_client"
                | "reject_rhsbl_client"
                | "reject_rhsbl_sender"
                | "reject_rhsbl_recipient"
                | "reject_rhsbl_helo"
                | "reject_rhsbl_reverse_client"
                | "permit_dnswl_client"
                | "permit_rhswl_client"
                | "sleep"
        )
}

/// Restrictions that make the relay safety check pass (smtpd_check.c).
const SAFETY: &[&str] = &[
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject",
    "defer",
    "defer_if_permit",
    "check_relay_domains",
];

/// Split a restriction list into items (commas and/or whitespace; `{...}` groups one item).
pub fn list_items(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in v.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            c if depth == 0 && (c == ',' || c.is_whitespace()) => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

enum Step {
    Permit,
    Reject(u16, &'static str, String),
    Defer(u16, &'static str, String),
    NoMatch,
}

struct Eval<'a> {
    model: &'a Model,
    scope: Scope<'a>,
    client: Client,
    rcpt: RecipientClass,
    rcpt_addr: String,
    sasl_enabled: bool,
    classes: HashSet<String>,
    trace: Vec<TraceStep>,
    depends: Vec<String>,
    defer_if_permit: bool,
    /// The top-level list being evaluated (restriction classes report as their caller).
    top_list: &'static str,
}

impl Eval<'_> {
    fn origin_of(&self, name: &str) -> (std::path::PathBuf, usize) {
        match self.scope.get(name).map(|e| e.origin) {
            Some(Origin {
                file: Some(f),
                line,
                ..
            }) => (f, line),
            _ => (std::path::PathBuf::from("(built-in default)"), 0),
        }
    }

    fn step(&mut self, list: &str, entry: &str, effect: &str) {
        let (file, line) = self.origin_of(list);
        self.trace.push(TraceStep {
            file,
            line,
            entry: format!("{list}: {entry}"),
            effect: effect.to_string(),
        });
    }

    /// Evaluate one list (or restriction class) `name`; depth guards nested classes.
    fn list(&mut self, name: &str, depth: usize) -> Step {
        let value = self.scope.value(name);
        let items = list_items(&value);
        let mut i = 0;
        while i < items.len() {
            let item = items[i].as_str();
            let arg = if takes_arg(item) {
                i += 1;
                items.get(i).cloned()
            } else {
                None
            };
            i += 1;
            if item == "warn_if_reject" {
                // The next restriction only logs what it would have rejected.
                if let Some(next) = items.get(i) {
                    let skip = if takes_arg(next) { 2 } else { 1 };
                    let shown = format!("warn_if_reject {next}");
                    i += skip;
                    self.step(name, &shown, "warn only (no effect on the reply)");
                }
                continue;
            }
            let shown = match &arg {
                Some(a) => format!("{item} {a}"),
                None => item.to_string(),
            };
            let s = self.restriction(self.top_list, item, arg.as_deref(), depth);
            let effect = match &s {
                Step::Permit => "permit",
                Step::Reject(..) => "reject",
                Step::Defer(..) => "defer",
                Step::NoMatch => "no match",
            };
            self.step(name, &shown, effect);
            match s {
                Step::NoMatch => {}
                other => return other,
            }
        }
        Step::NoMatch
    }

    fn relay_denied(&self, code: u16) -> Step {
        let text = format!("<{}>: Relay access denied", self.rcpt_addr);
        if code / 100 == 4 {
            Step::Defer(code, "4.7.1", text)
        } else {
            Step::Reject(code, "5.7.1", text)
        }
    }

    fn config_error() -> Step {
        Step::Defer(451, "4.3.5", "Server configuration error".into())
    }

    /// The reply text smtpd uses for a generic reject in `list` (smtpd_check.c).
    fn access_denied(&self, list: &str) -> String {
        match list {
            "smtpd_client_restrictions" => "Client host rejected: Access denied".into(),
            "smtpd_helo_restrictions" => "Helo command rejected: Access denied".into(),
            "smtpd_sender_restrictions" => {
                "<sender@sender.test>: Sender address rejected: Access denied".into()
            }
            _ => format!(
                "<{}>: Recipient address rejected: Access denied",
                self.rcpt_addr
            ),
        }
    }

    fn restriction(&mut self, list: &str, r: &str, arg: Option<&str>, depth: usize) -> Step {
        let auth_dest = matches!(self.rcpt, RecipientClass::Local | RecipientClass::Relay);
        // The version is resolved (maybe by running postconf) only for removed restrictions.
        if let Some(d) = params::get().deprecation(r) {
            if params::parse_version(&d.removed).is_some_and(|v| self.model.version() >= v) {
                return Self::config_error();
            }
        }
        match r {
            "permit" => Step::Permit,
            "reject" => Step::Reject(
                self.scope.value("reject_code").parse().unwrap_or(554),
                "5.7.1",
                self.access_denied(list),
            ),
            "defer" => Step::Defer(
                self.scope.value("defer_code").parse().unwrap_or(450),
                "4.7.1",
                "Try again later".into(),
            ),
            "defer_if_permit" => {
                self.defer_if_permit = true;
                Step::NoMatch
            }
            "permit_mynetworks" if self.client.in_mynetworks => Step::Permit,
            "permit_sasl_authenticated" if self.client.authenticated && self.sasl_enabled => {
                Step::Permit
            }
            "permit_auth_destination" if auth_dest => Step::Permit,
            "reject_unauth_destination" if !auth_dest => {
                let code = self
                    .scope
                    .value("relay_domains_reject_code")
                    .parse()
                    .unwrap_or(554);
                self.relay_denied(code)
            }
            "defer_unauth_destination" if !auth_dest => {
                let code = self
                    .scope
                    .value("unknown_relay_recipient_reject_code")
                    .parse::<u16>()
                    .ok()
                    .filter(|c| c / 100 == 4)
                    .unwrap_or(454);
                self.relay_denied(code)
            }
            "check_relay_domains" => {
                if auth_dest {
                    Step::Permit
                } else {
                    self.relay_denied(554)
                }
            }
            "permit_mx_backup" => {
                self.depends
                    .push("DNS MX lookup (permit_mx_backup)".to_string());
                Step::NoMatch
            }
            "check_policy_service" => {
                self.depends.push(format!(
                    "policy service {}",
                    arg.unwrap_or("(missing argument)")
                ));
                Step::NoMatch
            }
            r if r.starts_with("check_") && r.ends_with("_access") => {
                let map = arg.unwrap_or("(missing map)");
                match map {
                    "static:OK" | "static:ok" | "static:PERMIT" => Step::Permit,
                    "static:REJECT" | "static:reject" => Step::Reject(
                        self.scope
                            .value("access_map_reject_code")
                            .parse()
                            .unwrap_or(554),
                        "5.7.1",
                        self.access_denied(list),
                    ),
                    _ => {
                        self.depends.push(format!("{r} {map}"));
                        Step::NoMatch
                    }
                }
            }
            _ if self.classes.contains(r) && depth < 20 => self.list(r, depth + 1),
            _ if KNOWN.contains(&r) => Step::NoMatch,
            // An unknown restriction name; smtpd answers 451 4.3.5 for every recipient.
            _ => Self::config_error(),
        }
    }

    /// Does `list` (following classes) contain a working relay safety restriction?
    fn has_safety(&self, name: &str, depth: usize) -> bool {
        let items = list_items(&self.scope.value(name));
        let mut i = 0;
        while i < items.len() {
            let it = items[i].as_str();
            if it == "warn_if_reject" {
                i += 2;
                continue;
            }
            if it == "permit" {
                return false;
            }
            if SAFETY.contains(&it) {
                return true;
            }
            if self.classes.contains(it) && depth < 20 && self.has_safety(it, depth + 1) {
                return true;
            }
            i += if takes_arg(it) { 2 } else { 1 };
        }
        false
    }
}

/// The listener's name as users know it (`smtp`, `submission`, `127.0.0.1:10025`).
pub fn listener_name(model: &Model, si: usize) -> String {
    model
        .services()
        .get(si)
        .map(|s| s.name().to_string())
        .unwrap_or_default()
}

/// Whether SASL is enabled on listener `si`.
pub fn sasl_enabled(model: &Model, si: usize) -> bool {
    model
        .scope(Some(si))
        .value("smtpd_sasl_auth_enable")
        .eq_ignore_ascii_case("yes")
}

/// Evaluate one RCPT on listener `si`.
pub fn evaluate(
    model: &Model,
    si: usize,
    client: Client,
    rcpt: RecipientClass,
    rcpt_addr: &str,
) -> Decision {
    let scope = model.scope(Some(si));
    let sasl = scope
        .value("smtpd_sasl_auth_enable")
        .eq_ignore_ascii_case("yes");
    let classes: HashSet<String> = list_items(&scope.value("smtpd_restriction_classes"))
        .into_iter()
        .collect();
    let relay_first = scope
        .value("smtpd_relay_before_recipient_restrictions")
        .eq_ignore_ascii_case("yes");
    let mut ev = Eval {
        model,
        scope,
        client: Client {
            authenticated: client.authenticated && sasl,
            ..client
        },
        rcpt,
        rcpt_addr: rcpt_addr.to_string(),
        sasl_enabled: sasl,
        classes,
        trace: Vec::new(),
        depends: Vec::new(),
        defer_if_permit: false,
        top_list: "smtpd_recipient_restrictions",
    };
    let name = listener_name(model, si);
    let mut d = Decision::new(Mta::Postfix, name, Verdict::Accept);
    if !ev.has_safety("smtpd_relay_restrictions", 0)
        && !ev.has_safety("smtpd_recipient_restrictions", 0)
    {
        d.result = Verdict::Unavailable;
        d.text = Some("fatal: in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least one working instance of: reject_unauth_destination, defer_unauth_destination, reject, defer, defer_if_permit or check_relay_domains".into());
        let (file, line) = ev.origin_of("smtpd_relay_restrictions");
        d.trace.push(TraceStep {
            file,
            line,
            entry: "smtpd_relay_restrictions / smtpd_recipient_restrictions".into(),
            effect: "startup safety check fails: smtpd exits on every connection".into(),
        });
        return d;
    }
    let mut order = vec![
        "smtpd_client_restrictions",
        "smtpd_helo_restrictions",
        "smtpd_sender_restrictions",
    ];
    if relay_first {
        order.extend(["smtpd_relay_restrictions", "smtpd_recipient_restrictions"]);
    } else {
        order.extend(["smtpd_recipient_restrictions", "smtpd_relay_restrictions"]);
    }
    let mut outcome: Option<(Verdict, u16, &'static str, String)> = None;
    for list in order {
        ev.top_list = list;
        match ev.list(list, 0) {
            Step::Reject(c, e, t) => {
                outcome = Some((Verdict::Reject, c, e, t));
                break;
            }
            Step::Defer(c, e, t) => {
                outcome = Some((Verdict::Defer, c, e, t));
                break;
            }
            Step::Permit | Step::NoMatch => {}
        }
    }
    if outcome.is_none() && ev.defer_if_permit {
        outcome = Some((
            Verdict::Defer,
            450,
            "4.7.1",
            "Service unavailable (defer_if_permit)".into(),
        ));
    }
    match outcome {
        Some((v, c, e, t)) => {
            d.result = v;
            d.code = Some(c);
            d.enhanced = Some(e.to_string());
            d.text = Some(t);
        }
        None => {
            d.code = Some(250);
            d.enhanced = Some("2.1.5".into());
            d.text = Some("Ok".into());
        }
    }
    if !ev.depends.is_empty() && d.result != Verdict::Accept {
        // A map or policy service could have permitted (or refused) earlier.
        d.result = Verdict::Depends;
    }
    d.depends_on = std::mem::take(&mut ev.depends);
    d.trace = std::mem::take(&mut ev.trace);
    d
}

/// Example recipient domains of each class, from the configuration.
pub fn sample_domains(model: &Model, si: usize) -> Vec<(RecipientClass, String)> {
    let scope = model.scope(Some(si));
    let first_literal = |name: &str| -> Option<String> {
        list_items(&scope.value(name)).into_iter().find(|d| {
            !d.contains(':') && !d.contains('/') && !d.starts_with('$') && d.contains('.')
        })
    };
    let mut out = Vec::new();
    let local = first_literal("mydestination")
        .or_else(|| first_literal("virtual_mailbox_domains"))
        .or_else(|| first_literal("virtual_alias_domains"))
        .unwrap_or_else(|| scope.value("myhostname"));
    out.push((RecipientClass::Local, local));
    if let Some(r) = first_literal("relay_domains") {
        out.push((RecipientClass::Relay, r));
    }
    out.push((RecipientClass::External, "external.example".into()));
    out
}

/// Recipient class of `domain` for listener `si`.
pub fn classify(model: &Model, si: usize, domain: &str) -> RecipientClass {
    let scope = model.scope(Some(si));
    let has = |name: &str| {
        list_items(&scope.value(name)).iter().any(|d| {
            d.eq_ignore_ascii_case(domain) || (d.starts_with('.') && domain.ends_with(d.as_str()))
        })
    };
    if has("mydestination") || has("virtual_alias_domains") || has("virtual_mailbox_domains") {
        RecipientClass::Local
    } else if has("relay_domains") {
        RecipientClass::Relay
    } else {
        RecipientClass::External
    }
}

/// Whether `ip` is inside the listener's effective mynetworks (CIDR and host entries).
pub fn in_mynetworks(model: &Model, si: usize, ip: &str) -> bool {
    let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    list_items(&model.scope(Some(si)).value("mynetworks"))
        .iter()
        .any(|n| {
            let n = n.replace(['[', ']'], "");
            if let Ok(net) = n.parse::<ipnet::IpNet>() {
                net.contains(&addr)
            } else {
                n.parse::<std::net::IpAddr>().is_ok_and(|a| a == addr)
            }
        })
}
