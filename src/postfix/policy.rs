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
//! Access maps whose source can be read (cidr:, texthash:, inline:, static:, and the source of
//! hash/btree/lmdb/cdb/dbm maps; see `maps`) are evaluated as smtpd evaluates them
//! (access(5), smtpd_check.c check_table_result() and friends); other maps, DNS lookups and
//! policy services make the result `depends` (naming what it depends on) when the rest of the
//! decision would be a refusal.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

use super::maps::{self, Entry, Opened, Table};
use super::model::{Model, Origin, OriginKind, Scope};
use super::params;
use super::syntax::list_items;
use crate::finding::Mta;
use crate::relay::{ClientClass, Decision, Query, RecipientClass, TraceStep, Verdict};

mod session;
mod unlisted;

/// The address lint uses for "a client from the internet" (TEST-NET-3, RFC 5737): an access
/// map entry covering it, or any broad public range, affects strangers in general, while an
/// entry for one partner's address does not.
pub const STRANGER_IP: &str = "203.0.113.5";
/// Addresses of unrelated public networks that stand for "a client from the internet"
/// together: an access-map entry that matches all of them matches strangers in general
/// (see `Eval::addr_lookup`). The first is [`STRANGER_IP`].
const STRANGER_SAMPLES: [&str; 3] = [STRANGER_IP, "198.51.100.77", "100.200.30.4"];

/// check_addr_access() for one address: the address, then in fixed tables its parent
/// networks `1.2.3`, `1.2`, `1` (smtpd_check.c `check_addr_access`).
fn addr_lookup_one(table: &Table, ip: IpAddr) -> Option<(&Entry, String)> {
    let addr = ip.to_string();
    let delim = if addr.contains(':') { ':' } else { '.' };
    let mut key = addr.clone();
    let mut first = true;
    loop {
        if first || table.fixed {
            if let Some(e) = table.get(&key) {
                return Some((e, format!("client address key {key}")));
            }
        }
        first = false;
        match key.rfind(delim) {
            Some(i) => key.truncate(i),
            None => return None,
        }
        if key.is_empty() {
            return None;
        }
    }
}

/// The address lint uses for a trusted client (TEST-NET-1).
pub const TRUSTED_IP: &str = "192.0.2.7";

/// Who the client is for one evaluation.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub in_mynetworks: bool,
    /// Logged in with SASL (only possible where the listener enables SASL).
    pub authenticated: bool,
    /// Client address, for client access maps.
    pub ip: Option<IpAddr>,
    /// Verified reverse name; None is what smtpd calls `unknown`.
    pub name: Option<String>,
    /// HELO name and envelope sender; None in lint's class evaluation, where the client
    /// chooses them (so a sender or HELO map that grants OK to any value lets it in).
    pub helo: Option<String>,
    pub sender: Option<String>,
    /// Lint's class evaluation: `ip` stands for any client of the class.
    pub representative: bool,
    /// Whether the client is in mynetworks cannot be known (named here for `depends_on`).
    pub mynetworks_unknown: Option<String>,
    /// The mynetworks lookup fails for this client (a bad entry, an unopenable file): why.
    pub mynetworks_retry: Option<String>,
    /// mynetworks entries that never match any address, with why (shown in the trace).
    pub mynetworks_dead: Vec<String>,
    /// The session is TLS-encrypted (None in lint's class evaluation), and why that was
    /// assumed (shown in the trace when a TLS restriction is evaluated).
    pub tls: Option<bool>,
    pub tls_why: Option<String>,
    /// The SASL login name (sender login maps compare it).
    pub login: Option<String>,
    /// Why a login the query names cannot happen on this listener (shown in the trace).
    pub auth_refused: Option<String>,
}

impl Client {
    pub fn of(class: ClientClass) -> Client {
        let ip = |s: &str| s.parse().ok();
        match class {
            ClientClass::Stranger => Client {
                ip: ip(STRANGER_IP),
                representative: true,
                ..Default::default()
            },
            ClientClass::Trusted => Client {
                in_mynetworks: true,
                ip: ip(TRUSTED_IP),
                representative: true,
                ..Default::default()
            },
            ClientClass::Authenticated => Client {
                authenticated: true,
                ip: ip(STRANGER_IP),
                representative: true,
                ..Default::default()
            },
        }
    }

    /// The concrete client of a `simulate` query on listener `si`.
    pub fn for_query(model: &Model, si: usize, q: &Query) -> Client {
        let ip: Option<IpAddr> = q
            .client_ip
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .ok();
        let (in_mynetworks, mynetworks_unknown, mynetworks_retry) = match ip {
            Some(a) => match mynetworks_lookup(model, si, a) {
                Ok(b) => (b, None, None),
                Err(Miss::Unknown(why)) => (false, Some(why), None),
                Err(Miss::Retry(why)) => (false, None, Some(why)),
            },
            None => (false, None, None),
        };
        let scope = model.scope(Some(si));
        let yes = |p: &str| scope.value(p).trim().eq_ignore_ascii_case("yes");
        // smtpd.c: with smtpd_tls_auth_only (or the obsolete smtpd_enforce_tls), SASL is
        // activated only after STARTTLS; a plaintext session cannot log in, not even with
        // XCLIENT LOGIN= (verified with Postfix 3.7).
        let auth_only = yes("smtpd_tls_auth_only") || yes("smtpd_enforce_tls");
        let (tls, tls_why) = match q.tls {
            Some(t) => (t, format!("--tls {}", if t { "yes" } else { "no" })),
            None if q.sasl_user.is_some() && auth_only => (
                true,
                "not given: a client that logs in has used STARTTLS here (smtpd_tls_auth_only = yes); use --tls yes|no".to_string(),
            ),
            None => {
                let (t, why) = listener_tls(model, si);
                (t, format!("not given: {why}; use --tls yes|no"))
            }
        };
        let auth_refused = (q.sasl_user.is_some() && auth_only && !tls).then(|| {
            "smtpd_tls_auth_only = yes: AUTH is offered only after STARTTLS, and this session is plaintext (--tls no): the client is not logged in".to_string()
        });
        Client {
            in_mynetworks,
            authenticated: q.sasl_user.is_some() && auth_refused.is_none(),
            auth_refused,
            ip,
            name: q.client_name.clone(),
            helo: q.helo.clone(),
            sender: q.sender.clone(),
            representative: false,
            mynetworks_unknown,
            mynetworks_retry,
            mynetworks_dead: dead_mynetworks(model, si),
            tls: Some(tls),
            tls_why: Some(tls_why),
            login: q.sasl_user.clone(),
        }
    }
}

/// Whether listener `si` requires TLS (smtpd_tls_security_level = encrypt, the obsolete
/// smtpd_enforce_tls = yes, or wrapper mode), with the setting that says so; a client that
/// may choose is assumed to send in plaintext.
pub fn listener_tls(model: &Model, si: usize) -> (bool, String) {
    let scope = model.scope(Some(si));
    let yes = |p: &str| scope.value(p).trim().eq_ignore_ascii_case("yes");
    let level = scope
        .value("smtpd_tls_security_level")
        .trim()
        .to_ascii_lowercase();
    if yes("smtpd_tls_wrappermode") {
        (true, "smtpd_tls_wrappermode = yes".into())
    } else if level == "encrypt" || (level.is_empty() && yes("smtpd_enforce_tls")) {
        (
            true,
            "the listener requires TLS (smtpd_tls_security_level = encrypt)".into(),
        )
    } else if level.is_empty() {
        (
            false,
            "smtpd_tls_security_level is empty (no STARTTLS unless smtpd_use_tls = yes), assumed plaintext".into(),
        )
    } else {
        (
            false,
            format!("smtpd_tls_security_level = {level} (TLS optional), assumed plaintext"),
        )
    }
}

fn takes_arg(r: &str) -> bool {
    let r = r.to_ascii_lowercase();
    let r = r.as_str();
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

enum Step {
    Permit,
    Reject(u16, String, String),
    Defer(u16, String, String),
    NoMatch,
}

/// A reply stored by defer_if_permit / defer_if_reject until the decision is known.
type Reply = (u16, String, String);

/// The reply of a coded refusal: 4xx defers, anything else rejects. The enhanced status code
/// takes the class of the SMTP code, as smtpd_check_reject() makes it.
fn coded(code: u16, dsn: &str, text: String) -> Step {
    let class = (code / 100).to_string();
    let dsn = match dsn.split_once('.') {
        Some((_, rest)) => format!("{class}.{rest}"),
        None => dsn.to_string(),
    };
    if code / 100 == 4 {
        Step::Defer(code, dsn, text)
    } else {
        Step::Reject(code, dsn, text)
    }
}

/// dsn_split(): an optional leading `X.Y.Z` enhanced status code in an access-map text.
fn dsn_split<'t>(text: &'t str, default: &str) -> (String, &'t str) {
    let (first, rest) = text.split_once([' ', '\t']).unwrap_or((text, ""));
    let parts: Vec<&str> = first.split('.').collect();
    let is_dsn = parts.len() == 3
        && matches!(parts.first(), Some(&"2") | Some(&"4") | Some(&"5"))
        && parts
            .iter()
            .skip(1)
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    if is_dsn {
        (first.to_string(), rest.trim_start())
    } else {
        (default.to_string(), text)
    }
}

/// Where trace steps of a list come from.
#[derive(Clone)]
struct ListOrigin {
    file: PathBuf,
    line: usize,
}

struct Eval<'a> {
    model: &'a Model,
    si: usize,
    scope: Scope<'a>,
    client: Client,
    rcpt: RecipientClass,
    rcpt_addr: String,
    sasl_enabled: bool,
    classes: HashSet<String>,
    trace: Vec<TraceStep>,
    /// Steps of the access-map entry just consulted, shown after the restriction's own step.
    pending: Vec<TraceStep>,
    depends: Vec<String>,
    /// Unknowns that could refuse where the rest accepts (DNS lists, DNS lookups).
    refuse_unknown: Vec<String>,
    /// The reply code each of them would refuse with, when known (DNS lists).
    refuse_codes: Vec<Option<u16>>,
    /// What the answer becomes later (address verification once the probe finished).
    later: Vec<String>,
    /// reject_unlisted_recipient already ran (smtpd checks the recipient maps once).
    rcpt_checked: bool,
    /// The TLS assumption is already in the trace.
    tls_noted: bool,
    defer_if_permit: Option<Reply>,
    defer_if_reject: Option<Reply>,
    /// A stale indexed map was consulted: even an accept is only `depends`.
    stale: bool,
    /// An access map said DISCARD: the recipient is accepted, nothing else is evaluated.
    discard: bool,
    /// The top-level list being evaluated (restriction classes report as their caller).
    top_list: &'static str,
}

impl Eval<'_> {
    fn origin_of(&self, name: &str) -> ListOrigin {
        match self.scope.get(name).map(|e| e.origin) {
            Some(Origin {
                file: Some(f),
                line,
                ..
            }) => ListOrigin { file: f, line },
            Some(Origin {
                kind: OriginKind::Host,
                ..
            }) => ListOrigin {
                file: PathBuf::from(format!("{name} (computed from the host)")),
                line: 0,
            },
            _ => ListOrigin {
                file: PathBuf::from(default_label(self.model, &self.scope, name)),
                line: 0,
            },
        }
    }

    /// Evaluate the restriction list in parameter (or restriction class) `name`.
    fn list(&mut self, name: &str, depth: usize) -> Step {
        let value = self.scope.value(name);
        let origin = self.origin_of(name);
        self.items(name, &list_items(&value), &origin, depth)
    }

    /// Evaluate restriction `items` (of list `label`, written at `origin`); depth guards
    /// nested classes and access-map results.
    fn items(&mut self, label: &str, items: &[String], origin: &ListOrigin, depth: usize) -> Step {
        let mut i = 0;
        while i < items.len() {
            if self.discard {
                // smtpd_check.c generic_checks(): after DISCARD nothing else is evaluated.
                break;
            }
            let raw = items[i].as_str();
            // A bare `type:table` is the list's own access check (generic_checks(): def_acl).
            let (item, arg) = if raw.contains(':') {
                i += 1;
                (self.default_acl(), Some(raw.to_string()))
            } else if takes_arg(raw) {
                i += 2;
                (raw, items.get(i - 1).cloned())
            } else {
                i += 1;
                (raw, None)
            };
            let step = |entry: String, effect: &str| TraceStep {
                file: origin.file.clone(),
                line: origin.line,
                entry: format!("{label}: {entry}"),
                effect: effect.to_string(),
            };
            if item.eq_ignore_ascii_case("warn_if_reject") {
                // The next restriction only logs what it would have rejected.
                if let Some(next) = items.get(i) {
                    let skip = if takes_arg(next) { 2 } else { 1 };
                    let shown = match items.get(i + 1).filter(|_| skip == 2) {
                        Some(a) => format!("warn_if_reject {next} {a}"),
                        None => format!("warn_if_reject {next}"),
                    };
                    i += skip;
                    self.trace
                        .push(step(shown, "warn only (no effect on the reply)"));
                }
                continue;
            }
            let shown = match &arg {
                Some(a) if raw.contains(':') => a.clone(),
                Some(a) => format!("{item} {a}"),
                None => item.to_string(),
            };
            let mark = self.trace.len();
            let unknowns = self.depends.len() + self.refuse_unknown.len();
            let s = self.restriction(self.top_list, item, arg.as_deref(), depth);
            let effect = match &s {
                Step::Permit => "permit",
                Step::Reject(..) => "reject",
                Step::Defer(..) => "defer",
                Step::NoMatch if self.depends.len() + self.refuse_unknown.len() > unknowns => {
                    "depends (see depends_on)"
                }
                Step::NoMatch => "no match",
            };
            // The restriction's own step goes before the steps it caused (nested lists).
            self.trace.insert(mark, step(shown, effect));
            let pending = std::mem::take(&mut self.pending);
            self.trace.splice(mark + 1..mark + 1, pending);
            match s {
                Step::NoMatch => {}
                other => return other,
            }
        }
        Step::NoMatch
    }

    /// A trace note on the mynetworks setting (why it fails or why an entry never matches).
    fn mynetworks_note(&self, why: &str) -> TraceStep {
        let o = self.origin_of("mynetworks");
        TraceStep {
            file: o.file,
            line: o.line,
            entry: why.to_string(),
            effect: "note".into(),
        }
    }

    /// The access check a bare `type:table` in the current list stands for.
    fn default_acl(&self) -> &'static str {
        match self.top_list {
            "smtpd_client_restrictions" => "check_client_access",
            "smtpd_helo_restrictions" => "check_helo_access",
            "smtpd_sender_restrictions" => "check_sender_access",
            _ => "check_recipient_access",
        }
    }

    fn relay_denied(&self, code: u16) -> Step {
        let text = format!("<{}>: Relay access denied", self.rcpt_addr);
        coded(code, "5.7.1", text)
    }

    fn config_error() -> Step {
        Step::Defer(451, "4.3.5".into(), "Server configuration error".into())
    }

    /// smtpd's name for the client: `name[addr]`, `unknown[addr]` without a verified name.
    fn client_reply_name(&self) -> String {
        let addr = self
            .client
            .ip
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        format!(
            "{}[{addr}]",
            self.client.name.as_deref().unwrap_or("unknown")
        )
    }

    /// A DEFER_IF_PERMIT / DEFER_IF_REJECT (restriction or access-map action) seen: smtpd
    /// remembers the first of each kind and applies it at the end of the stage.
    fn note_deferral(&mut self, if_permit: bool, reply: Reply) {
        if if_permit {
            self.defer_if_permit.get_or_insert(reply);
        } else {
            self.defer_if_reject.get_or_insert(reply);
        }
    }

    /// (reply name, reply class) smtpd uses in refusals from list `list`.
    fn reply_of(&self, list: &str) -> (String, &'static str) {
        match list {
            "smtpd_client_restrictions" => (self.client_reply_name(), "Client host"),
            "smtpd_helo_restrictions" => (
                self.client
                    .helo
                    .clone()
                    .unwrap_or_else(|| "client.test".into()),
                "Helo command",
            ),
            "smtpd_sender_restrictions" => (
                self.client
                    .sender
                    .clone()
                    .unwrap_or_else(|| "sender@sender.test".into()),
                "Sender address",
            ),
            _ => (self.rcpt_addr.clone(), "Recipient address"),
        }
    }

    /// The reply text smtpd uses for a generic reject in `list` (smtpd_check.c).
    fn access_denied(&self, list: &str) -> String {
        let (name, class) = self.reply_of(list);
        format!("<{name}>: {class} rejected: Access denied")
    }

    fn restriction(&mut self, list: &str, r: &str, arg: Option<&str>, depth: usize) -> Step {
        // Restriction class names are looked up as written, built-in names case-insensitively.
        if self.classes.contains(r) {
            return if depth < 20 {
                self.list(r, depth + 1)
            } else {
                Self::config_error()
            };
        }
        let lower = r.to_ascii_lowercase();
        let r = lower.as_str();
        let auth_dest = matches!(self.rcpt, RecipientClass::Local | RecipientClass::Relay);
        // The version is resolved (maybe by running postconf) only for removed restrictions.
        if let Some(d) = params::get().deprecation(r) {
            if params::parse_version(&d.removed).is_some_and(|v| self.model.version() >= v) {
                return Self::config_error();
            }
        }
        match r {
            "permit" => Step::Permit,
            "reject" => coded(
                self.scope.value("reject_code").parse().unwrap_or(554),
                "5.7.1",
                self.access_denied(list),
            ),
            "defer" => {
                let (name, class) = self.reply_of(list);
                coded(
                    self.scope.value("defer_code").parse().unwrap_or(450),
                    "4.3.2",
                    format!("<{name}>: {class} rejected: Try again later"),
                )
            }
            "defer_if_permit" | "defer_if_reject" => {
                let (name, class) = self.reply_of(list);
                // Fixed 450 4.7.0 (smtpd_check.c generic_checks()).
                let reply = (
                    450,
                    "4.7.0".to_string(),
                    format!("<{name}>: {class} rejected: {r} requested"),
                );
                self.note_deferral(r == "defer_if_permit", reply);
                Step::NoMatch
            }
            "permit_mynetworks" => {
                if let Some(why) = &self.client.mynetworks_retry {
                    // smtpd_check.c permit_mynetworks() returns the list error and
                    // generic_checks() calls reject_dict_retry(state, reply_name).
                    self.pending.push(self.mynetworks_note(why));
                    let (name, _) = self.reply_of(list);
                    return Step::Defer(
                        451,
                        "4.3.0".into(),
                        format!("<{name}>: Temporary lookup failure"),
                    );
                }
                if !self.client.in_mynetworks {
                    // Why an entry that reads like the client's network did not match.
                    for why in self.client.mynetworks_dead.clone() {
                        self.pending.push(self.mynetworks_note(&why));
                    }
                }
                if let Some(why) = &self.client.mynetworks_unknown {
                    self.depends.push(why.clone());
                    Step::NoMatch
                } else if self.client.in_mynetworks {
                    Step::Permit
                } else {
                    Step::NoMatch
                }
            }
            "permit_sasl_authenticated" if self.client.authenticated && self.sasl_enabled => {
                Step::Permit
            }
            "permit_sasl_authenticated" => Step::NoMatch,
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
                // smtpd_check.c: var_relay_code - 100, i.e. 454 by default.
                let code = self
                    .scope
                    .value("relay_domains_reject_code")
                    .parse::<u16>()
                    .unwrap_or(554);
                self.relay_denied(code.saturating_sub(100))
            }
            "permit_auth_destination"
            | "reject_unauth_destination"
            | "defer_unauth_destination" => Step::NoMatch,
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
            "check_client_access"
            | "check_reverse_client_hostname_access"
            | "check_helo_access"
            | "check_sender_access"
            | "check_recipient_access" => {
                match arg.filter(|a| a.contains(':')) {
                    Some(map) => self.access(list, r, map, depth),
                    // is_map_command(): "need maptype:mapname".
                    None => Self::config_error(),
                }
            }
            r if r.starts_with("check_")
                && r.ends_with("_access")
                && self.dns_access_skipped(r, arg) =>
            {
                // The name to look up is `unknown` or absent (smtpd skips the check), or
                // is under a reserved top-level domain (NXDOMAIN: nothing to match).
                Step::NoMatch
            }
            r if r.starts_with("check_") && r.ends_with("_access") => {
                // _a_/_mx_/_ns_ variants need DNS; ccert/sasl need session facts.
                self.depends
                    .push(format!("{r} {}", arg.unwrap_or("(missing map)")));
                Step::NoMatch
            }
            // Every other name smtpd knows (one list: restrictions.rs, smtpd_check.c).
            _ if super::restrictions::lookup(r).is_some() => self.session_restriction(list, r, arg),
            // An unknown restriction name; smtpd answers 451 4.3.5 for every recipient.
            _ => Self::config_error(),
        }
    }

    /// One `check_*_access` restriction: look the client, HELO name, sender or recipient up
    /// in the order smtpd does and apply the action of the first entry found.
    fn access(&mut self, list: &str, r: &str, spec: &str, depth: usize) -> Step {
        let model = self.model;
        let table = match model.table(spec) {
            Some(Opened::Table(t)) => t,
            Some(Opened::Depends(why)) => {
                self.depends.push(format!("{r} {why}"));
                return Step::NoMatch;
            }
            Some(Opened::Unavailable(why)) => {
                // smtpd_check.c check_access(): `if (maps->error != 0) value = "451 4.3.5
                // Server configuration error"`, answered through check_table_result() with
                // the restriction's reply name and class.
                let (name, class) = self.access_reply(r);
                self.pending.push(TraceStep {
                    file: PathBuf::from(spec),
                    line: 0,
                    entry: format!("{why}: every lookup fails"),
                    effect: "note".into(),
                });
                return Step::Defer(
                    451,
                    "4.3.5".into(),
                    format!("<{name}>: {class} rejected: Server configuration error"),
                );
            }
            None => {
                self.depends.push(format!("{r} {spec} (not read)"));
                return Step::NoMatch;
            }
        };
        if let Some(n) = &table.note {
            // smtpd answers from the compiled file, whose contents are not read here: any
            // answer from the source may differ from what smtpd says.
            self.depends.push(format!("{r} {spec} (stale: {n})"));
            self.stale = true;
            self.pending.push(TraceStep {
                file: table.file.clone().unwrap_or_else(|| spec.into()),
                line: 0,
                entry: format!("{spec}: {n}"),
                effect: "note".into(),
            });
        }
        let (reply_name, reply_class) = self.access_reply(r);
        let _ = list;
        let found: Option<(&Entry, String)> = match r {
            "check_client_access" | "check_reverse_client_hostname_access" => {
                let name = self.client.name.clone().unwrap_or_else(|| "unknown".into());
                match self.domain_lookup(table, &name, false) {
                    Some(f) => Some(f),
                    None => self.client.ip.and_then(|ip| self.addr_lookup(table, ip)),
                }
            }
            "check_helo_access" => match self.client.helo.clone() {
                Some(h) => self.domain_lookup(table, &h, false),
                None => any_permit(table).map(|e| (e, "any HELO name the client chooses".into())),
            },
            "check_sender_access" => match self.client.sender.clone() {
                Some(s) => mail_lookup(table, &s, self.parent_style()),
                None => {
                    any_permit(table).map(|e| (e, "any sender address the client chooses".into()))
                }
            },
            _ => mail_lookup(table, &self.rcpt_addr.clone(), self.parent_style()),
        };
        let Some((entry, how)) = found else {
            return Step::NoMatch;
        };
        let value = entry.value.clone();
        let step = self.action(&value, table, entry, &reply_name, reply_class, depth);
        let effect = match &step {
            Step::Permit => "permit".to_string(),
            Step::Reject(..) => "reject".to_string(),
            Step::Defer(..) => "defer".to_string(),
            Step::NoMatch => "no effect on the reply (the list continues)".to_string(),
        };
        self.pending.insert(
            0,
            TraceStep {
                file: table.file.clone().unwrap_or_else(|| spec.into()),
                line: entry.line,
                entry: format!("{} {} (matched {how})", entry.key, entry.value),
                effect,
            },
        );
        step
    }

    /// (reply name, reply class) of check_*_access restriction `r` (smtpd_check.c).
    fn access_reply(&self, r: &str) -> (String, &'static str) {
        match r {
            "check_client_access" | "check_reverse_client_hostname_access" => {
                (self.client_reply_name(), "Client host")
            }
            "check_helo_access" => (self.client.helo.clone().unwrap_or_default(), "Helo command"),
            "check_sender_access" => (
                self.client.sender.clone().unwrap_or_default(),
                "Sender address",
            ),
            _ => (self.rcpt_addr.clone(), "Recipient address"),
        }
    }

    fn parent_style(&self) -> bool {
        list_items(&self.scope.value("parent_domain_matches_subdomains"))
            .iter()
            .any(|p| p == "smtpd_access_maps")
    }

    /// check_domain_access(): the name, then (fixed tables only) its parent domains, as
    /// `example.com` with parent_domain_matches_subdomains containing smtpd_access_maps,
    /// else as `.example.com`. `partial_only`: the first lookup is fixed-tables-only too.
    fn domain_lookup<'t>(
        &self,
        table: &'t Table,
        domain: &str,
        partial_only: bool,
    ) -> Option<(&'t Entry, String)> {
        domain_lookup(table, domain, partial_only, self.parent_style())
    }

    /// check_addr_access(): the address, then (fixed tables only) its parent networks
    /// `1.2.3`, `1.2`, `1`. For lint's stranger, an entry speaks for strangers in general
    /// only when it matches sample addresses of unrelated networks alike, or permits a
    /// broad public range (some strangers are in it): the one sample address may sit in a
    /// single partner's entry, a POP-before-SMTP map for one (issue #15 item 8).
    fn addr_lookup<'t>(&self, table: &'t Table, ip: IpAddr) -> Option<(&'t Entry, String)> {
        if !(self.client.representative && ip.to_string() == STRANGER_IP) {
            return addr_lookup_one(table, ip);
        }
        let hits: Vec<_> = STRANGER_SAMPLES
            .iter()
            .filter_map(|s| s.parse().ok())
            .map(|a| addr_lookup_one(table, a))
            .collect();
        if hits.iter().all(Option::is_some) {
            return hits.into_iter().next().flatten();
        }
        if table.fixed || table.is_static() {
            return None;
        }
        table.entries().iter().find_map(|e| {
            let n = e.network()?;
            (maps::broad_public(&n) && permits(&e.value)).then(|| {
                (
                    e,
                    format!("a broad public range: clients from {n} addresses are permitted"),
                )
            })
        })
    }

    /// check_table_result(): what the action of an access-map entry does.
    fn action(
        &mut self,
        value: &str,
        table: &Table,
        entry: &Entry,
        reply_name: &str,
        reply_class: &str,
        depth: usize,
    ) -> Step {
        let (cmd, text) = match value.split_once([' ', '\t']) {
            Some((c, t)) => (c, t.trim_start()),
            None => (value, ""),
        };
        let upper = cmd.to_ascii_uppercase();
        let refuse = |code: u16, default_dsn: &str, default_text: &str| {
            let (dsn, t) = dsn_split(text, default_dsn);
            let t = if t.is_empty() { default_text } else { t };
            coded(
                code,
                &dsn,
                format!("<{reply_name}>: {reply_class} rejected: {t}"),
            )
        };
        let map_reject = self
            .scope
            .value("access_map_reject_code")
            .parse()
            .unwrap_or(554);
        let map_defer = self
            .scope
            .value("access_map_defer_code")
            .parse()
            .unwrap_or(450);
        match upper.as_str() {
            "DUNNO" => Step::NoMatch,
            "REJECT" => refuse(map_reject, "5.7.1", "Access denied"),
            "DEFER" => refuse(map_defer, "4.7.1", "Access denied"),
            // Only logged, or delegated to the cleanup server: the RCPT reply is unchanged.
            "WARN" | "FILTER" | "HOLD" | "REDIRECT" | "PREPEND" => Step::NoMatch,
            // Accepted (and then silently discarded): a permit for this list.
            "DISCARD" => {
                self.discard = true;
                Step::Permit
            }
            "DEFER_IF_PERMIT" | "DEFER_IF_REJECT" => {
                let (dsn, t) = dsn_split(text, "4.7.1");
                let t = if t.is_empty() {
                    "Service unavailable"
                } else {
                    t
                };
                let reply = (
                    map_defer,
                    dsn,
                    format!("<{reply_name}>: {reply_class} rejected: {t}"),
                );
                self.note_deferral(upper == "DEFER_IF_PERMIT", reply);
                Step::NoMatch
            }
            _ if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => Step::Permit,
            _ if cmd.len() == 3
                && !text.is_empty()
                && matches!(cmd.as_bytes().first(), Some(b'4') | Some(b'5'))
                && cmd.bytes().all(|b| b.is_ascii_digit()) =>
            {
                let code: u16 = cmd.parse().unwrap_or(554);
                let default = format!("{}.7.1", code / 100);
                refuse(code, &default, "Access denied")
            }
            "OK" | "RELAY" => Step::Permit,
            _ if value.contains(':') => Self::config_error(),
            // "In the dark ages, an empty right-hand side meant OK."
            "" => Step::Permit,
            _ if depth >= 20 => Self::config_error(),
            _ => {
                // The value is a restriction list (names, restriction classes).
                let origin = ListOrigin {
                    file: table
                        .file
                        .clone()
                        .unwrap_or_else(|| table.spec.clone().into()),
                    line: entry.line,
                };
                let items = list_items(value);
                let saved = std::mem::take(&mut self.pending);
                let mark = self.trace.len();
                let s = self.items(&entry.key, &items, &origin, depth + 1);
                // Steps of the nested list belong after the map entry's own step.
                let nested: Vec<TraceStep> = self.trace.drain(mark..).collect();
                self.pending = saved;
                self.pending.extend(nested);
                s
            }
        }
    }

    /// Does `list` (following classes) contain a working relay safety restriction?
    fn has_safety(&self, name: &str, depth: usize) -> bool {
        let items = list_items(&self.scope.value(name));
        let mut i = 0;
        while i < items.len() {
            let lower = items[i].to_ascii_lowercase();
            let it = lower.as_str();
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
            let name = items[i].as_str();
            if self.classes.contains(name) && depth < 20 && self.has_safety(name, depth + 1) {
                return true;
            }
            i += if takes_arg(it) { 2 } else { 1 };
        }
        false
    }
}

/// Whether an access-map action permits by itself.
fn permits(value: &str) -> bool {
    let cmd = value.split([' ', '\t']).next().unwrap_or("");
    let u = cmd.to_ascii_uppercase();
    matches!(u.as_str(), "OK" | "RELAY" | "DISCARD" | "PERMIT" | "")
        || (!cmd.is_empty() && cmd.bytes().all(|b| b.is_ascii_digit()))
}

/// Lint's class evaluation of a HELO or sender map: the client picks the value, so the
/// first entry (file order) that permits is what it would pick.
fn any_permit(table: &Table) -> Option<&Entry> {
    if !table.fixed {
        return None; // cidr keys are addresses: never a HELO name or sender address
    }
    table.entries().iter().find(|e| permits(&e.value))
}

fn domain_lookup<'t>(
    table: &'t Table,
    domain: &str,
    partial_only: bool,
    parent_style: bool,
) -> Option<(&'t Entry, String)> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return None;
    }
    if !partial_only || table.fixed {
        if let Some(e) = table.get(&domain) {
            return Some((e, format!("key {domain}")));
        }
    }
    // No subdomain magic for numerical host names, nor for pattern tables.
    if !table.fixed || domain.parse::<IpAddr>().is_ok() {
        return None;
    }
    let mut rest = domain.as_str();
    while let Some(i) = rest.get(1..).and_then(|r| r.find('.')).map(|i| i + 1) {
        let parent = &rest[i..];
        let key = if parent_style {
            parent.get(1..).unwrap_or("")
        } else {
            parent
        };
        if key.is_empty() {
            break;
        }
        if let Some(e) = table.get(key) {
            return Some((e, format!("parent domain key {key}")));
        }
        rest = parent;
    }
    None
}

/// check_mail_access(): the full address, then (fixed tables only) the domain and its
/// parents, then `user@`.
fn mail_lookup<'t>(
    table: &'t Table,
    addr: &str,
    parent_style: bool,
) -> Option<(&'t Entry, String)> {
    let addr = addr
        .trim_matches(|c| c == '<' || c == '>')
        .to_ascii_lowercase();
    if let Some(e) = table.get(&addr) {
        return Some((e, format!("key {addr}")));
    }
    if !table.fixed {
        return None;
    }
    let (local, domain) = addr.rsplit_once('@')?;
    if let Some(f) = domain_lookup(table, domain, true, parent_style) {
        return Some(f);
    }
    let key = format!("{local}@");
    table.get(&key).map(|e| (e, format!("key {key}")))
}

/// How a built-in default is shown in a trace: what the admin would search for.
fn default_label(model: &Model, scope: &Scope, name: &str) -> String {
    let compat = scope.value("compatibility_level");
    let compat = if compat.is_empty() {
        "0".into()
    } else {
        compat
    };
    let _ = name; // the trace entry names the list itself
    format!(
        "built-in default (Postfix {}, compatibility_level {compat})",
        params::show_version(model.version())
    )
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
    let authenticated = client.authenticated && sasl;
    let mut ev = Eval {
        model,
        si,
        scope,
        client: Client {
            authenticated,
            ..client
        },
        rcpt,
        rcpt_addr: rcpt_addr.to_string(),
        sasl_enabled: sasl,
        classes,
        trace: Vec::new(),
        pending: Vec::new(),
        depends: Vec::new(),
        refuse_unknown: Vec::new(),
        refuse_codes: Vec::new(),
        later: Vec::new(),
        rcpt_checked: false,
        tls_noted: false,
        defer_if_permit: None,
        defer_if_reject: None,
        discard: false,
        stale: false,
        top_list: "smtpd_recipient_restrictions",
    };
    let name = listener_name(model, si);
    let mut d = Decision::new(Mta::Postfix, name, Verdict::Accept);
    if let Some(why) = ev.client.auth_refused.clone() {
        let o = ev.origin_of("smtpd_tls_auth_only");
        ev.trace.push(TraceStep {
            file: o.file,
            line: o.line,
            entry: why,
            effect: "not authenticated".into(),
        });
    }
    if !ev.has_safety("smtpd_relay_restrictions", 0)
        && !ev.has_safety("smtpd_recipient_restrictions", 0)
    {
        d.result = Verdict::Unavailable;
        d.text = Some("fatal: in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least one working instance of: reject_unauth_destination, defer_unauth_destination, reject, defer, defer_if_permit or check_relay_domains".into());
        let o = ev.origin_of("smtpd_relay_restrictions");
        d.trace.push(TraceStep {
            file: o.file,
            line: o.line,
            entry: "smtpd_relay_restrictions / smtpd_recipient_restrictions".into(),
            effect: "startup safety check fails: smtpd exits on every connection".into(),
        });
        return d;
    }
    if let Some((word, step)) = stray_argument(model, si) {
        d.result = Verdict::Unavailable;
        d.text = Some(format!("fatal: unexpected command-line argument: {word}"));
        d.trace.push(step);
        return d;
    }
    if let Some(refused) = plaintext_refused(&mut ev) {
        d.result = Verdict::Reject;
        d.code = Some(530);
        d.enhanced = Some("5.7.0".into());
        d.text = Some("Must issue a STARTTLS command first".into());
        d.trace = vec![refused];
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
    let mut outcome: Option<(Verdict, u16, String, String)> = None;
    for list in order {
        ev.top_list = list;
        match ev.list(list, 0) {
            Step::Reject(c, e, t) => {
                // defer_if_reject turns a later reject into its own 4xx reply.
                outcome = Some(match ev.defer_if_reject.take() {
                    Some((c, e, t)) => (Verdict::Defer, c, e, t),
                    None => (Verdict::Reject, c, e, t),
                });
                break;
            }
            Step::Defer(c, e, t) => {
                outcome = Some((Verdict::Defer, c, e, t));
                break;
            }
            Step::Permit | Step::NoMatch => {}
        }
        if ev.discard {
            break;
        }
    }
    if outcome.is_none() && !ev.discard {
        if let Some((c, e, t)) = ev.defer_if_permit.take() {
            outcome = Some((Verdict::Defer, c, e, t));
        }
    }
    if outcome.is_none() && !ev.discard {
        outcome = implicit_unlisted(&mut ev);
    }
    if let Some((v, c, e, t)) = outcome.take() {
        outcome = Some(soft_bounce(&mut ev, v, c, e, t));
    }
    match outcome {
        Some((v, c, e, t)) => {
            d.result = v;
            d.code = Some(c);
            d.enhanced = Some(e);
            d.text = Some(t);
        }
        None => {
            d.code = Some(250);
            d.enhanced = Some("2.1.5".into());
            d.text = Some("Ok".into());
        }
    }
    if ev.stale
        || (!ev.depends.is_empty() && d.result != Verdict::Accept)
        || refused_differently(&ev.refuse_codes, &d)
    {
        // A map or policy service could have permitted (or refused) earlier; a DNS list
        // could have refused what the rest accepts, or refused with another reply.
        d.result = Verdict::Depends;
    }
    d.depends_on = std::mem::take(&mut ev.depends);
    d.depends_on.append(&mut ev.refuse_unknown);
    d.depends_on.append(&mut ev.later);
    d.trace = std::mem::take(&mut ev.trace);
    d
}

/// A client that chose plaintext (`--tls no`) on a listener that requires TLS: smtpd
/// answers MAIL FROM with 530 5.7.0 (smtpd.c mail_cmd(), smtpd_tls_security_level =
/// encrypt). The trace step says so.
/// The first non-option word of listener `si`'s master.cf arguments (PF008's condition),
/// with a trace step on its line. smtpd.c smtpd_service() (v3.7.11): `if (argv[0])
/// msg_fatal("unexpected command-line argument: %s", argv[0]);`: option parsing stops at
/// that word (util/sys_defs.h: GETOPT passes "+" on Linux; master/single_server.c takes
/// "cdDi:lm:n:o:r:s:St:uvVz"), so smtpd exits on every connection before its greeting.
pub(crate) fn stray_argument(model: &Model, si: usize) -> Option<(String, TraceStep)> {
    let svc = model.services().get(si)?;
    let master = model.master.as_ref()?;
    let mut args = svc.other_args.iter();
    while let Some(a) = args.next() {
        let t = a.text.as_str();
        if t == "--" {
            break;
        }
        match t.strip_prefix('-') {
            // An option letter that takes its value as the next word.
            Some(o) if o.len() == 1 && "imnorst".contains(o) => {
                args.next();
            }
            Some(_) => {}
            None => {
                let loc = master.source.location(a.span.start, a.span.end);
                return Some((
                    t.to_string(),
                    TraceStep {
                        file: loc.file,
                        line: loc.line,
                        entry: format!("{}: `{t}` is a command-line argument of smtpd, not part of an -o value", svc.id()),
                        effect: format!("smtpd exits on every connection (fatal: unexpected command-line argument: {t})"),
                    },
                ));
            }
        }
    }
    None
}

fn plaintext_refused(ev: &mut Eval) -> Option<TraceStep> {
    if ev.client.representative || ev.client.tls != Some(false) {
        return None;
    }
    let (required, why) = listener_tls(ev.model, ev.si);
    if !required || why.contains("wrappermode") {
        return None;
    }
    let o = ev.origin_of("smtpd_tls_security_level");
    Some(TraceStep {
        file: o.file,
        line: o.line,
        entry: format!("{why}; {}", ev.client.tls_why.clone().unwrap_or_default()),
        effect: "reject (MAIL FROM before STARTTLS)".into(),
    })
}

/// A DNS list (or another unknown that can refuse) was reached: the reply could differ
/// unless the decision is a refusal with the same code as every such unknown.
fn refused_differently(codes: &[Option<u16>], d: &Decision) -> bool {
    let same = d.result == Verdict::Reject && codes.iter().all(|c| *c == d.code);
    !codes.is_empty() && !same
}

/// soft_bounce = yes: smtpd turns every 5xx reply into 4xx, the enhanced status code with
/// it (smtpd_check.c smtpd_check_reject(), smtpd_chat.c), so a refusal becomes a deferral.
fn soft_bounce(
    ev: &mut Eval,
    v: Verdict,
    code: u16,
    dsn: String,
    text: String,
) -> (Verdict, u16, String, String) {
    if code / 100 != 5
        || !ev
            .scope
            .value("soft_bounce")
            .trim()
            .eq_ignore_ascii_case("yes")
    {
        return (v, code, dsn, text);
    }
    let o = ev.origin_of("soft_bounce");
    ev.trace.push(TraceStep {
        file: o.file,
        line: o.line,
        entry: format!("soft_bounce = yes: {code} becomes {}", code - 100),
        effect: "defer".into(),
    });
    let dsn = match dsn.strip_prefix('5') {
        Some(rest) => format!("4{rest}"),
        None => dsn,
    };
    (Verdict::Defer, code - 100, dsn, text)
}

/// smtpd_reject_unlisted_recipient = yes: after every list permitted, the recipient is
/// validated against the recipient maps unless a restriction already did that.
fn implicit_unlisted(ev: &mut Eval) -> Option<(Verdict, u16, String, String)> {
    if !ev
        .scope
        .value("smtpd_reject_unlisted_recipient")
        .trim()
        .eq_ignore_ascii_case("yes")
    {
        return None;
    }
    let mark = ev.trace.len();
    let unknowns = ev.depends.len() + ev.refuse_unknown.len();
    let step = ev.unlisted_recipient();
    let effect = match &step {
        Step::Reject(..) => "reject",
        Step::Defer(..) => "defer",
        _ if ev.depends.len() + ev.refuse_unknown.len() > unknowns => "depends (see depends_on)",
        _ => return None,
    };
    let o = ev.origin_of("smtpd_reject_unlisted_recipient");
    ev.trace.insert(
        mark,
        TraceStep {
            file: o.file,
            line: o.line,
            entry: "smtpd_reject_unlisted_recipient = yes: the recipient must be a known user"
                .into(),
            effect: effect.into(),
        },
    );
    match step {
        Step::Reject(c, e, t) => Some((Verdict::Reject, c, e, t)),
        Step::Defer(c, e, t) => Some((Verdict::Defer, c, e, t)),
        _ => None,
    }
}

/// `simulate`'s answer on listener `si` to one RCPT from `client`: the recipient's class
/// (a domain list relaydoctor cannot read makes the answer `depends` when it would change
/// it), then `evaluate`.
pub fn decide(model: &Model, si: usize, client: Client, rcpt: &str) -> Decision {
    let domain = crate::relay::domain_of(rcpt);
    let (class, unknown) = classify_checked(model, si, &domain);
    let mut d = evaluate(model, si, client.clone(), class, rcpt);
    // A domain list relaydoctor cannot read (proxy:mysql:..., a missing map) might list
    // the domain; when that would change the reply, the answer depends on that table.
    // A `/file/name` in a domain list that does not exist: the address-class lookup
    // fails and smtpd answers 451 4.3.0 (trivial-rewrite logs `open file ...: No such
    // file or directory`; verified with Postfix 3.7).
    if let Some((_, table)) = unknown.iter().find(|(_, t)| t.ends_with(MISSING_LIST_FILE)) {
        d.result = Verdict::Defer;
        d.code = Some(451);
        d.enhanced = Some("4.3.0".into());
        d.text = Some(format!("<{}>: Temporary lookup failure", rcpt));
        let name = table.split(" = ").next().unwrap_or("");
        let origin = model.scope(Some(si)).get(name).map(|e| e.origin.clone());
        // The restriction lists ran with a class Postfix never gets to: only this step counts.
        d.trace = vec![TraceStep {
            file: origin
                .as_ref()
                .and_then(|o| o.file.clone())
                .unwrap_or_else(|| "main.cf".into()),
            line: origin.map_or(0, |o| o.line),
            entry: format!(
                "{table}: Postfix cannot tell whether {domain} is listed (`open file ...: No such file or directory`)"
            ),
            effect: "defer".into(),
        }];
        return d;
    }
    for (other, table) in unknown {
        let alt = evaluate(model, si, client.clone(), other, rcpt);
        if alt.result != d.result || alt.code != d.code {
            d.result = Verdict::Depends;
            d.depends_on.push(format!(
                "whether {domain} is listed in {table} (relaydoctor cannot read that table; if it is listed, the reply is {})",
                alt.reply_line()
            ));
        }
    }
    d
}

/// Example recipient domains of each class, from the configuration.
pub fn sample_domains(model: &Model, si: usize) -> Vec<(RecipientClass, String)> {
    let scope = model.scope(rewrite_scope(model, si));
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

/// Whose settings decide the address class for listener `si`: not smtpd's own. smtpd asks
/// the trivial-rewrite service named by its rewrite_service_name (smtpd_resolve.c
/// smtpd_resolve_addr() -> resolve_clnt_query_from()), and permit_auth_destination /
/// reject_unauth_destination test the RESOLVE_CLASS_* flags it returns (smtpd_check.c);
/// trivial-rewrite reads mydestination, relay_domains, virtual_*_domains from main.cf and
/// its own master.cf -o overrides (resolve.c). So `-o relay_domains=...` on an smtpd
/// listener changes nothing (verified with Postfix 3.7.11: tests/postfix_relay_rules.rs).
/// None: main.cf (no trivial-rewrite service by that name in master.cf).
pub fn rewrite_scope(model: &Model, si: usize) -> Option<usize> {
    let name = model.scope(Some(si)).value("rewrite_service_name");
    model
        .services()
        .iter()
        .position(|s| s.complete() && s.command() == "trivial-rewrite" && s.name() == name)
}

/// Recipient class of `domain` for listener `si`.
pub fn classify(model: &Model, si: usize, domain: &str) -> RecipientClass {
    classify_checked(model, si, domain).0
}

/// The recipient class of `domain`, and what could not be looked up: a domain list with a
/// table relaydoctor cannot read (`proxy:mysql:...`, a missing map) might list the domain,
/// which would make it a final destination (or a relay domain) instead. The unknowns are
/// (the class the domain would have, "name = table") for each such table before a hit.
pub fn classify_checked(
    model: &Model,
    si: usize,
    domain: &str,
) -> (RecipientClass, Vec<(RecipientClass, String)>) {
    let scope = model.scope(rewrite_scope(model, si));
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut unknown = Vec::new();
    let mut has = |name: &str, class: RecipientClass| {
        let mut u = Vec::new();
        let hit = match_domain_list(model, &scope, name, &domain, &mut u);
        unknown.extend(u.into_iter().map(|t| (class, t)));
        hit == Some(true)
    };
    let class = if has("mydestination", RecipientClass::Local)
        || has("virtual_alias_domains", RecipientClass::Local)
        || has("virtual_mailbox_domains", RecipientClass::Local)
    {
        RecipientClass::Local
    } else if has("relay_domains", RecipientClass::Relay) {
        RecipientClass::Relay
    } else {
        RecipientClass::External
    };
    // Only tables consulted before the deciding list can change the answer.
    unknown.retain(|(c, _)| *c != class && class != RecipientClass::Local);
    (class, unknown)
}

/// match_list(3) for domains: a literal, `.domain` for subdomains, `domain` also matching
/// subdomains where parent_domain_matches_subdomains names the parameter, or a table in
/// which the domain (or, for fixed tables, a parent) is a key. Some(false) when the first
/// match is a `!` item, None when nothing matches. Tables that cannot be read (and
/// missing `/file/name` entries) before the first match go to `unknown` as `name = table`.
fn match_domain_list(
    model: &Model,
    scope: &Scope,
    name: &str,
    domain: &str,
    unknown: &mut Vec<String>,
) -> Option<bool> {
    let parent_style = list_items(&scope.value("parent_domain_matches_subdomains"))
        .iter()
        .any(|p| p == name);
    for d in domain_list_items(model, &scope.value(name)) {
        if let Some(file) = d.strip_prefix("missing file ") {
            unknown.push(format!("{name} = {file}{MISSING_LIST_FILE}"));
            continue;
        }
        let (neg, d) = match d.strip_prefix('!') {
            Some(r) => (true, r.to_string()),
            None => (false, d.clone()),
        };
        let hit = if maps::split_spec(&d).is_some() {
            match model.table(&d) {
                Some(Opened::Table(t)) => domain_lookup(t, domain, false, parent_style).is_some(),
                _ => {
                    unknown.push(format!("{name} = {d}"));
                    false
                }
            }
        } else {
            let d = d.to_ascii_lowercase();
            d == domain
                || (d.starts_with('.') && domain.ends_with(d.as_str()))
                || (parent_style && domain.ends_with(&format!(".{d}")))
        };
        if hit {
            return Some(!neg);
        }
    }
    None
}

/// How `classify_checked` marks a `/file/name` list entry whose file is missing.
pub const MISSING_LIST_FILE: &str = " (missing file)";

/// The items of a domain list with `/file/name` entries replaced by the file's items
/// (match_list(3); `!/file` negates each of them). A file that could not be read stands as
/// `missing file PATH`.
pub fn domain_list_items(model: &Model, value: &str) -> Vec<String> {
    let mut out = Vec::new();
    for item in list_items(value) {
        let (neg, pat) = match item.strip_prefix('!') {
            Some(p) => ("!", p),
            None => ("", item.as_str()),
        };
        if !pat.starts_with('/') {
            out.push(item.clone());
            continue;
        }
        match model.list_file(pat) {
            Some(src) => out.extend(
                src.text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .flat_map(list_items)
                    .map(|i| format!("{neg}{i}")),
            ),
            None => out.push(format!("missing file {pat}")),
        }
    }
    out
}

/// Whether `ip` is inside the listener's effective mynetworks (false when unknown).
pub fn in_mynetworks(model: &Model, si: usize, ip: &str) -> bool {
    ip.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .ok()
        .and_then(|a| mynetworks_match(model, si, a).ok())
        .unwrap_or(false)
}

/// Whether `ip` is inside the listener's effective mynetworks, as match_list(3) decides it
/// for permit_mynetworks: items in order, first match wins, `!item` excludes; items are
/// networks, addresses, `/file/name` (its items), or `type:table` (the address is looked
/// up; any value matches). `Err` names what cannot be known (an unreadable table, or a
/// mynetworks derived from interfaces a --root snapshot does not record) or why the lookup
/// fails.
pub fn mynetworks_match(model: &Model, si: usize, ip: IpAddr) -> Result<bool, String> {
    mynetworks_lookup(model, si, ip).map_err(|m| match m {
        Miss::Unknown(w) | Miss::Retry(w) => w,
    })
}

/// The entries of listener `si`'s mynetworks that match no address, each with why.
fn dead_mynetworks(model: &Model, si: usize) -> Vec<String> {
    list_items(&model.scope(Some(si)).value("mynetworks"))
        .iter()
        .filter_map(|it| {
            let pat = it.trim_start_matches('!');
            super::hostaddr::dead_reason(pat).map(|why| {
                format!(
                    "mynetworks entry `{}` never matches: {why}",
                    pat.escape_default()
                )
            })
        })
        .collect()
}

/// Why a mynetworks lookup has no yes/no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Cannot be known here (named for `depends_on`).
    Unknown(String),
    /// smtpd's lookup fails (DICT_ERR_RETRY): permit_mynetworks answers `451 4.3.0
    /// Temporary lookup failure` (smtpd_check.c generic_checks(), reject_dict_retry()).
    Retry(String),
}

/// [`mynetworks_match`] telling a failing lookup from an unknown one.
pub fn mynetworks_lookup(model: &Model, si: usize, ip: IpAddr) -> Result<bool, Miss> {
    if let Some(why) = model.mynetworks_unknown(Some(si)) {
        // Every mynetworks_style includes loopback (mynetworks.c).
        return if ip.is_loopback() {
            Ok(true)
        } else {
            Err(Miss::Unknown(why))
        };
    }
    let items = list_items(&model.scope(Some(si)).value("mynetworks"));
    Ok(match_items(model, &items, ip, 0)?.unwrap_or(false))
}

fn match_items(
    model: &Model,
    items: &[String],
    ip: IpAddr,
    depth: usize,
) -> Result<Option<bool>, Miss> {
    for it in items {
        let (neg, pat) = match it.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, it.as_str()),
        };
        let hit = if pat.starts_with('/') {
            let Some(src) = model.list_file(pat) else {
                // match_list.c match_list_parse(): an unopenable /file becomes a pseudo
                // table whose lookups fail (dict_surrogate), so the list lookup fails.
                return Err(Miss::Retry(format!(
                    "mynetworks file {pat} cannot be opened (missing or unreadable): smtpd puts a table in its place whose lookups fail"
                )));
            };
            if depth > 10 {
                continue;
            }
            let inner: Vec<String> = src
                .text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .flat_map(list_items)
                .collect();
            match match_items(model, &inner, ip, depth + 1)? {
                Some(m) => return Ok(Some(m != neg)),
                None => false,
            }
        } else if maps::split_spec(pat).is_some() && !pat.starts_with('[') {
            match model.table(pat) {
                Some(Opened::Table(t)) => t.get(&ip.to_string()).is_some(),
                // match_list(3): the surrogate's lookup error fails the list (DICT_ERR_RETRY).
                Some(Opened::Unavailable(why)) => {
                    return Err(Miss::Retry(format!("mynetworks {why}")))
                }
                Some(Opened::Depends(why)) => {
                    return Err(Miss::Unknown(format!("mynetworks {why}")))
                }
                None => return Err(Miss::Unknown(format!("mynetworks {pat} (not read)"))),
            }
        } else {
            // match_ops.c match_hostaddr(): a net/mask it cannot parse fails the lookup.
            super::hostaddr::match_hostaddr(ip, pat).map_err(|w| {
                Miss::Retry(format!("mynetworks entry {pat}: {w} (smtpd logs this and the lookup fails for every client no earlier entry matched)"))
            })?
        };
        if hit {
            return Ok(Some(!neg));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Context, Options, Root};

    /// A --root snapshot with main.cf, master.cf and extra files under etc/postfix.
    fn model(main: &str, master: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, Model) {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc/postfix");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("main.cf"), main).unwrap();
        std::fs::write(etc.join("master.cf"), master).unwrap();
        for (n, t) in files {
            std::fs::write(etc.join(n), t).unwrap();
        }
        let m = load_37(d.path());
        (d, m)
    }

    /// The Postfix model of the snapshot at `root`, read as Postfix 3.7.
    fn load_37(root: &std::path::Path) -> Model {
        let ctx = Context::new(
            Root::snapshot(root),
            Options {
                postfix_version: Some("3.7".into()),
                ..Default::default()
            },
        );
        Model::load(&ctx, &root.join("etc/postfix"), &mut Vec::new())
    }

    const SMTP: &str = "smtp inet n - y - - smtpd\n";

    fn stranger_external(m: &Model) -> Decision {
        evaluate(
            m,
            0,
            Client::of(ClientClass::Stranger),
            RecipientClass::External,
            "someone@external.example",
        )
    }

    #[test]
    fn a_domain_list_that_cannot_be_read_makes_the_class_unknown() {
        let main = "compatibility_level = 3.6\nmydestination = localhost\nrelay_domains = relay.example\nvirtual_mailbox_domains = proxy:mysql:/etc/postfix/vdom.cf, texthash:/etc/postfix/vdom\n";
        let (_d, m) = model(main, SMTP, &[("vdom", "listed.example OK\n")]);
        let (class, unknown) = classify_checked(&m, 0, "customer.example");
        assert_eq!(class, RecipientClass::External);
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert_eq!(unknown[0].0, RecipientClass::Local);
        assert!(unknown[0].1.contains("proxy:mysql:/etc/postfix/vdom.cf"));
        // A readable table decides; mydestination decides before any table is consulted.
        assert_eq!(
            classify_checked(&m, 0, "listed.example").0,
            RecipientClass::Local
        );
        assert!(classify_checked(&m, 0, "localhost").1.is_empty());
        // relay.example is a relay domain unless the mysql table makes it local.
        let (class, unknown) = classify_checked(&m, 0, "relay.example");
        assert_eq!(class, RecipientClass::Relay);
        assert_eq!(unknown.len(), 1);
    }

    #[test]
    fn lint_stranger_and_cidr_entries() {
        let main = "compatibility_level = 3.6\nsmtpd_relay_restrictions = permit_mynetworks, check_client_access cidr:/etc/postfix/c.cidr, reject_unauth_destination\n";
        // One partner address: not an open relay for strangers in general.
        let (_d, m) = model(main, SMTP, &[("c.cidr", "198.51.100.7 OK\n")]);
        assert_eq!(stranger_external(&m).result, Verdict::Reject);
        // A broad public range granted OK: strangers there relay; the trace names the entry.
        let (_d, m) = model(main, SMTP, &[("c.cidr", "# x\n198.0.0.0/8 OK\n")]);
        let d = stranger_external(&m);
        assert_eq!(d.result, Verdict::Accept);
        let last = d.trace.last().unwrap();
        assert_eq!(
            (last.file.display().to_string(), last.line),
            ("etc/postfix/c.cidr".to_string(), 2)
        );
        // An unreadable map is `depends`, naming it.
        let (_d, m) = model(
            &main.replace("cidr:", "pcre:"),
            SMTP,
            &[("c.cidr", "0.0.0.0/0 OK\n")],
        );
        let d = stranger_external(&m);
        assert_eq!(d.result, Verdict::Depends);
        assert!(
            d.depends_on[0].contains("pcre:/etc/postfix/c.cidr"),
            "{d:?}"
        );
    }

    #[test]
    fn stale_indexed_map_is_depends() {
        let main = "compatibility_level = 3.6\nsmtpd_relay_restrictions = permit_mynetworks, check_client_access hash:/etc/postfix/c, reject_unauth_destination\n";
        // Every sample stranger is listed: the entries speak for strangers in general.
        let keys: String = STRANGER_SAMPLES
            .iter()
            .map(|a| format!("{a} OK\n"))
            .collect();
        let (d, _m) = model(main, SMTP, &[("c.db", ""), ("c", &keys)]);
        // Source newer than the compiled file.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let db = std::fs::File::options()
            .write(true)
            .open(d.path().join("etc/postfix/c.db"))
            .unwrap();
        db.set_modified(old).unwrap();
        let m = load_37(d.path());
        let dec = stranger_external(&m);
        assert_eq!(dec.result, Verdict::Depends);
        assert!(dec.depends_on[0].contains("stale"), "{dec:?}");
        // Fresh: evaluated.
        db.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        let ctx = Context::new(Root::snapshot(d.path()), Options::default());
        let m = Model::load(&ctx, &d.path().join("etc/postfix"), &mut Vec::new());
        assert_eq!(stranger_external(&m).result, Verdict::Accept);
    }

    #[test]
    fn map_actions_and_reply_codes() {
        let main = "compatibility_level = 3.6\nsmtpd_relay_restrictions = permit_mynetworks, check_recipient_access inline:{ { external.example = 550 5.7.9 no }, { other.example = DEFER_IF_PERMIT later }, x.example=partner }, reject_unauth_destination\nsmtpd_restriction_classes = partner\npartner = permit\n";
        let (_d, m) = model(main, SMTP, &[]);
        let d = stranger_external(&m);
        assert_eq!((d.code, d.enhanced.as_deref()), (Some(550), Some("5.7.9")));
        let ev = |rcpt: &str| {
            evaluate(
                &m,
                0,
                Client::of(ClientClass::Stranger),
                RecipientClass::External,
                rcpt,
            )
        };
        // DEFER_IF_PERMIT does not stop the reject that follows.
        assert_eq!(ev("u@other.example").code, Some(554));
        // A restriction class as the action.
        assert_eq!(ev("u@x.example").result, Verdict::Accept);
    }

    /// One simulate-style question for a client without reverse DNS.
    fn ask(m: &Model, si: usize, q: Query, rcpt: &str) -> Decision {
        let q = Query {
            rcpt: rcpt.into(),
            ..q
        };
        let client = Client::for_query(m, si, &q);
        let class = classify(m, si, &crate::relay::domain_of(rcpt));
        evaluate(m, si, client, class, rcpt)
    }

    fn stranger() -> Query {
        Query {
            client_ip: "203.0.113.5".into(),
            helo: Some("client.test".into()),
            sender: Some("sender@sender.test".into()),
            ..Default::default()
        }
    }

    #[test]
    fn session_restrictions_are_evaluated_or_depends() {
        let main = "compatibility_level = 3.6\nmydestination = example.com\nsmtpd_client_restrictions = reject_unknown_client_hostname\nsmtpd_recipient_restrictions = reject_rbl_client zen.example, reject_plaintext_session, reject_unverified_recipient\n";
        let master = "smtp inet n - y - - smtpd\nsubmission inet n - y - - smtpd\n  -o smtpd_tls_security_level=encrypt\n";
        let (_d, m) = model(main, master, &[]);
        // No --client-name: Postfix sees `unknown` and defers.
        let d = ask(&m, 0, stranger(), "postmaster@example.com");
        assert_eq!(
            (d.result, d.code, d.enhanced.as_deref()),
            (Verdict::Defer, Some(450), Some("4.7.25"))
        );
        let named = Query {
            client_name: Some("mail.client.test".into()),
            ..stranger()
        };
        // With a name: the DNS list decides what would otherwise be the plaintext refusal
        // (a reject either way), so it is evaluated.
        let d = ask(&m, 0, named.clone(), "postmaster@example.com");
        assert_eq!((d.result, d.code), (Verdict::Depends, Some(450)), "{d:?}");
        assert!(
            d.trace.iter().any(|t| t.entry.starts_with("TLS: no")),
            "{d:?}"
        );
        // With TLS, the pending address verification defers on first contact; the DNS list
        // could refuse instead: depends, naming both.
        let tls = Query {
            tls: Some(true),
            ..named.clone()
        };
        let d = ask(&m, 0, tls, "postmaster@example.com");
        assert_eq!(d.result, Verdict::Depends, "{d:?}");
        assert!(
            d.depends_on.iter().any(|w| w.contains("zen.example")),
            "{d:?}"
        );
        assert!(d.depends_on.iter().any(|w| w.contains("probe")), "{d:?}");
        // --tls no on a listener that requires TLS: refused at MAIL FROM.
        let plain = Query {
            tls: Some(false),
            ..named
        };
        let d = ask(&m, 1, plain, "postmaster@example.com");
        assert_eq!((d.result, d.code), (Verdict::Reject, Some(530)));
    }

    #[test]
    fn unlisted_recipients_and_verification() {
        let main = "compatibility_level = 3.6\nmydestination = example.com\nvirtual_mailbox_domains = v.example\nvirtual_mailbox_maps = texthash:/etc/postfix/vmbox\nsmtpd_recipient_restrictions = permit_mynetworks, reject_unverified_recipient, reject_unauth_destination\n";
        let q = Query {
            client_ip: TRUSTED_IP.into(),
            ..stranger()
        };
        // Trusted: permitted by mynetworks, then the implicit unlisted check.
        let mynet = "mynetworks = 192.0.2.0/24\n";
        let (_d2, m2) = model(
            &format!("{main}{mynet}"),
            SMTP,
            &[("vmbox", "known@v.example x\n")],
        );
        let d = ask(&m2, 0, q.clone(), "nobody@v.example");
        assert_eq!(
            (d.result, d.code, d.enhanced.as_deref()),
            (Verdict::Reject, Some(550), Some("5.1.1"))
        );
        assert!(d
            .text
            .as_deref()
            .unwrap_or("")
            .contains("virtual mailbox table"));
        assert_eq!(ask(&m2, 0, q, "known@v.example").result, Verdict::Accept);
        // A stranger to a local address: 450 4.1.1 while the probe is pending.
        let d = ask(&m2, 0, stranger(), "known@v.example");
        assert_eq!(
            (d.result, d.code, d.enhanced.as_deref()),
            (Verdict::Defer, Some(450), Some("4.1.1"))
        );
        assert!(
            d.depends_on.iter().any(|w| w.contains("once it finishes")),
            "{d:?}"
        );
    }

    #[test]
    fn mynetworks_file_table_and_snapshot_default() {
        let (_d, m) = model(
            "mynetworks = /etc/postfix/nets, cidr:/etc/postfix/n.cidr\n",
            SMTP,
            &[
                ("nets", "# lan\n10.0.0.0/8 !192.0.2.7\n"),
                ("n.cidr", "192.0.2.0/24 x\n"),
            ],
        );
        let ip = |s: &str| s.parse().unwrap();
        assert_eq!(mynetworks_match(&m, 0, ip("10.1.2.3")), Ok(true));
        assert_eq!(mynetworks_match(&m, 0, ip("192.0.2.7")), Ok(false));
        assert_eq!(mynetworks_match(&m, 0, ip("192.0.2.8")), Ok(true));
        assert_eq!(mynetworks_match(&m, 0, ip("203.0.113.5")), Ok(false));
        let (d, m) = model("mynetworks_style = subnet\n", SMTP, &[]);
        assert_eq!(mynetworks_match(&m, 0, ip("127.0.0.1")), Ok(true));
        let e = mynetworks_match(&m, 0, ip("10.1.2.3")).unwrap_err();
        assert!(e.contains("mynetworks_style = subnet"), "{e}");
        // The snapshot records its interfaces: the derivation is known.
        let net = d.path().join("etc/network");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(
            net.join("interfaces"),
            "auto lo\niface lo inet loopback\niface eth0 inet static\n  address 10.1.2.5\n  netmask 255.255.255.0\n",
        )
        .unwrap();
        let m = load_37(d.path());
        assert_eq!(mynetworks_match(&m, 0, ip("10.1.2.9")), Ok(true));
        assert_eq!(mynetworks_match(&m, 0, ip("10.1.3.9")), Ok(false));
        assert_eq!(
            m.scope(None).value("mynetworks"),
            "127.0.0.0/8 10.1.2.0/24 [::1]/128"
        );
    }
}
