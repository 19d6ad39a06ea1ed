//! Restrictions that look at the session rather than at a table: the client's reverse name,
//! TLS, DNS lists, the HELO name's and addresses' syntax, address verification and SASL
//! sender ownership. Each is either evaluated from what the query says or named in
//! `depends_on`; none is silently "no match" (smtpd_check.c generic_checks() and the
//! functions it calls, Postfix 3.7-3.12).
//!
//! Lint's representative clients (`Client::representative`) stand for every client of a
//! class: what a client controls (its name, TLS, HELO, sender, DNS listing) is taken as the
//! value that passes, so these restrictions never hide an open relay there.

use super::{Eval, Step};
use crate::relay::{RecipientClass, TraceStep};

/// What an unknown answer could do to the reply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Unknown {
    /// Could permit where the rest refuses (a whitelist, a certificate).
    Permit,
    /// Could refuse where the rest accepts (a DNS lookup, a table), reply not known.
    Refuse,
    /// Could refuse with this reply code (a DNS list: maps_rbl_reject_code).
    RefuseWith(u16),
}

impl Eval<'_> {
    /// A restriction whose answer is not known statically: recorded in `depends_on`; the
    /// list continues as if it did not match.
    pub(super) fn unknown(&mut self, what: Unknown, why: String) -> Step {
        match what {
            Unknown::Permit => self.depends.push(why),
            Unknown::Refuse => {
                self.refuse_unknown.push(why);
                self.refuse_codes.push(None);
            }
            Unknown::RefuseWith(code) => {
                self.refuse_unknown.push(why);
                self.refuse_codes.push(Some(code));
            }
        }
        Step::NoMatch
    }

    /// Restrictions other than permit/reject basics, relay checks and access maps.
    pub(super) fn session_restriction(&mut self, list: &str, r: &str, arg: Option<&str>) -> Step {
        if let Some(step) = self.client_identity(r, arg) {
            return step;
        }
        if let Some(step) = self.dns_list(r, arg) {
            return step;
        }
        if let Some(step) = self.names(r) {
            return step;
        }
        let rep = self.client.representative;
        match r {
            "reject_unverified_sender" | "reject_unverified_recipient" => {
                self.unverified(r == "reject_unverified_sender")
            }
            "reject_unlisted_recipient" | "check_recipient_maps" => self.unlisted_recipient(),
            "reject_unlisted_sender" => self.unlisted_sender(),
            "reject_authenticated_sender_login_mismatch"
            | "reject_known_sender_login_mismatch"
            | "reject_unauthenticated_sender_login_mismatch"
            | "reject_sender_login_mismatch" => self.login_mismatch(r),
            "check_sasl_access" => {
                if self.sasl_enabled && self.client.authenticated && !rep {
                    let a = arg.unwrap_or("(missing map)");
                    self.depends
                        .push(format!("{r} {a} (the SASL login name's entry)"));
                    self.unknown(
                        Unknown::Refuse,
                        format!("{r} {a} (the SASL login name's entry)"),
                    );
                }
                Step::NoMatch
            }
            "permit_inet_interfaces" => self.inet_interfaces_client(),
            // A client that waits for each reply (RFC 5321) never trips it.
            "reject_unauth_pipelining" => Step::NoMatch,
            // One RCPT per question: never a multi-recipient bounce.
            "reject_multi_recipient_bounce" => Step::NoMatch,
            // Only ETRN requests are checked against it.
            "check_etrn_access" => Step::NoMatch,
            "sleep" => Step::NoMatch,
            // Before 3.9 (removal is handled before this): permits a HELO of an IP address.
            "permit_naked_ip_address" => match &self.client.helo {
                Some(h) if h.parse::<std::net::IpAddr>().is_ok() => Step::Permit,
                _ => Step::NoMatch,
            },
            _ => {
                let _ = list;
                self.unknown(
                    Unknown::Refuse,
                    format!("{r} (not evaluated by relaydoctor)"),
                )
            }
        }
    }

    /// The client's name and TLS: reverse and forward-confirmed names, encryption, client
    /// certificates; None for any other restriction.
    fn client_identity(&mut self, r: &str, arg: Option<&str>) -> Option<Step> {
        let rep = self.client.representative;
        let addr = self.client_addr();
        let unk_code = self.code("unknown_client_reject_code", 450);
        Some(match r {
            // reject_unknown_client(): name_status != OK; the code is
            // unknown_client_reject_code for a permanent failure (XCLIENT NAME=[UNAVAILABLE],
            // NXDOMAIN), 450 for a temporary one.
            "reject_unknown_client_hostname" | "reject_unknown_client" => {
                if rep || self.client.name.is_some() {
                    Step::NoMatch
                } else {
                    super::coded(
                        unk_code,
                        "4.7.25",
                        format!("Client host rejected: cannot find your hostname, [{addr}]"),
                    )
                }
            }
            // reject_unknown_reverse_name(): only a PTR record is needed.
            "reject_unknown_reverse_client_hostname" => {
                if rep || self.client.name.is_some() {
                    Step::NoMatch
                } else {
                    super::coded(
                        unk_code,
                        "4.7.1",
                        format!(
                            "Client host rejected: cannot find your reverse hostname, [{addr}]"
                        ),
                    )
                }
            }
            "reject_plaintext_session" => {
                self.note_tls();
                if rep || self.client.tls == Some(true) {
                    Step::NoMatch
                } else {
                    super::coded(
                        self.code("plaintext_reject_code", 450),
                        "4.7.1",
                        "Session encryption is required".into(),
                    )
                }
            }
            // permit_tls_clientcerts(): only with TLS, and only when smtpd asked for a
            // certificate (smtpd_tls_ask_ccert or req_ccert) and the client sent one.
            "permit_tls_clientcerts" | "permit_tls_all_clientcerts" | "check_ccert_access" => {
                self.note_tls();
                let asks = ["smtpd_tls_ask_ccert", "smtpd_tls_req_ccert"]
                    .iter()
                    .any(|p| self.scope.value(p).eq_ignore_ascii_case("yes"));
                if rep || self.client.tls != Some(true) || !asks {
                    Step::NoMatch
                } else {
                    let shown = match arg {
                        Some(a) => format!("{r} {a}"),
                        None => r.to_string(),
                    };
                    self.depends
                            .push(format!("{shown}: whether the client presents a certificate that is trusted or listed"));
                    self.unknown(
                        Unknown::Refuse,
                        format!("{shown}: what a listed certificate's entry answers"),
                    )
                }
            }
            _ => return None,
        })
    }

    /// DNS block and white lists of the client, HELO, sender or recipient; None for any
    /// other restriction.
    fn dns_list(&mut self, r: &str, arg: Option<&str>) -> Option<Step> {
        let rep = self.client.representative;
        let addr = self.client_addr();
        Some(match r {
            // reject_rbl: smtpd_check.c's old alias of reject_rbl_client.
            "reject_rbl_client"
            | "reject_rbl"
            | "reject_rhsbl_client"
            | "reject_rhsbl_reverse_client" => {
                let zone = arg.unwrap_or("(missing zone)");
                if rep {
                    return Some(Step::NoMatch);
                }
                // reject_rhsbl_client: skipped when the client name is `unknown`.
                let by_address = matches!(r, "reject_rbl_client" | "reject_rbl");
                if !by_address && self.client.name.is_none() {
                    return Some(Step::NoMatch);
                }
                let who = if by_address {
                    addr
                } else {
                    self.client.name.clone().unwrap_or_default()
                };
                let code = self.code("maps_rbl_reject_code", 554);
                self.unknown(
                    Unknown::RefuseWith(code),
                    format!("DNS: whether {who} is listed in {zone} ({r})"),
                )
            }
            "permit_dnswl_client" | "permit_rhswl_client" => {
                let zone = arg.unwrap_or("(missing zone)");
                if rep || (r == "permit_rhswl_client" && self.client.name.is_none()) {
                    return Some(Step::NoMatch);
                }
                self.unknown(
                    Unknown::Permit,
                    format!("DNS: whether the client is listed in {zone} ({r})"),
                )
            }
            "reject_rhsbl_helo" | "reject_rhsbl_sender" | "reject_rhsbl_recipient" => {
                let value = match r {
                    "reject_rhsbl_helo" => self.client.helo.clone(),
                    "reject_rhsbl_sender" => self.client.sender.clone().filter(|s| !s.is_empty()),
                    _ => Some(self.rcpt_addr.clone()),
                };
                match value {
                    Some(v) if !rep || r == "reject_rhsbl_recipient" => self.unknown(
                        Unknown::RefuseWith(self.code("maps_rbl_reject_code", 554)),
                        format!(
                            "DNS: whether the domain of {v} is listed in {} ({r})",
                            arg.unwrap_or("(missing zone)")
                        ),
                    ),
                    _ => Step::NoMatch,
                }
            }
            "reject_maps_rbl" => {
                let zones = self.scope.value("maps_rbl_domains");
                if rep {
                    Step::NoMatch
                } else {
                    self.unknown(
                        Unknown::RefuseWith(self.code("maps_rbl_reject_code", 554)),
                        format!("DNS: whether {addr} is listed in maps_rbl_domains ({zones})"),
                    )
                }
            }
            _ => return None,
        })
    }

    /// The HELO name's and the addresses' syntax and DNS existence; None for any other
    /// restriction.
    fn names(&mut self, r: &str) -> Option<Step> {
        let rep = self.client.representative;
        Some(match r {
            "reject_unknown_helo_hostname" | "reject_unknown_hostname" => {
                match self.client.helo.clone().filter(|_| !rep) {
                    Some(h) if reserved(&h) => super::coded(
                        self.code("unknown_hostname_reject_code", 450),
                        "4.7.1",
                        format!("<{h}>: Helo command rejected: Host not found"),
                    ),
                    Some(h) if !h.starts_with('[') => self.unknown(
                        Unknown::Refuse,
                        format!("DNS: whether HELO name {h} has an A or MX record ({r})"),
                    ),
                    _ => Step::NoMatch,
                }
            }
            "reject_unknown_sender_domain" | "reject_unknown_address" => {
                match self.client.sender.clone().filter(|s| !s.is_empty() && !rep) {
                    Some(s) if reserved(&crate::relay::domain_of(&s)) => super::coded(
                        self.code("unknown_address_reject_code", 450),
                        "4.1.8",
                        format!("<{s}>: Sender address rejected: Domain not found"),
                    ),
                    Some(s) => self.unknown(
                        Unknown::Refuse,
                        format!(
                            "DNS: whether the sender domain of {s} has an A or MX record ({r})"
                        ),
                    ),
                    None => Step::NoMatch,
                }
            }
            // reject_unknown_address() skips domains this server is the final destination
            // for (resolve_local(), virtual domains); everything else needs DNS.
            "reject_unknown_recipient_domain" => {
                if self.rcpt == RecipientClass::Local {
                    Step::NoMatch
                } else if !self.client.representative
                    && reserved(&crate::relay::domain_of(&self.rcpt_addr))
                {
                    // A concrete recipient under .example/.test never resolves. Lint's
                    // representative external recipient stands for real domains, which do.
                    let a = self.rcpt_addr.clone();
                    super::coded(
                        self.code("unknown_address_reject_code", 450),
                        "4.1.2",
                        format!("<{a}>: Recipient address rejected: Domain not found"),
                    )
                } else {
                    let a = self.rcpt_addr.clone();
                    self.unknown(
                        Unknown::Refuse,
                        format!("DNS: whether the domain of {a} has an A or MX record ({r})"),
                    )
                }
            }
            "reject_invalid_helo_hostname" | "reject_invalid_hostname" => {
                match self.client.helo.clone() {
                    Some(h) if !valid_hostname(&h) => super::coded(
                        self.code("invalid_hostname_reject_code", 501),
                        "5.5.2",
                        format!("<{h}>: Helo command rejected: Invalid name"),
                    ),
                    _ => Step::NoMatch,
                }
            }
            "reject_non_fqdn_helo_hostname" | "reject_non_fqdn_hostname" => {
                match self.client.helo.clone() {
                    Some(h) if !h.starts_with('[') && !h.trim_end_matches('.').contains('.') => {
                        super::coded(
                            self.code("non_fqdn_reject_code", 504),
                            "5.5.2",
                            format!("<{h}>: Helo command rejected: need fully-qualified hostname"),
                        )
                    }
                    _ => Step::NoMatch,
                }
            }
            "reject_non_fqdn_sender" | "reject_non_fqdn_recipient" => {
                let (a, class, dsn) = if r == "reject_non_fqdn_sender" {
                    (self.client.sender.clone(), "Sender", "5.5.2")
                } else {
                    (Some(self.rcpt_addr.clone()), "Recipient", "5.5.2")
                };
                match a.filter(|a| !a.is_empty()) {
                    Some(a) if !non_fqdn_ok(&a) => super::coded(
                        self.code("non_fqdn_reject_code", 504),
                        dsn,
                        format!("<{a}>: {class} address rejected: need fully-qualified address"),
                    ),
                    _ => Step::NoMatch,
                }
            }
            _ => return None,
        })
    }

    /// The client address as Postfix logs it (`unknown` without one).
    fn client_addr(&self) -> String {
        self.client
            .ip
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into())
    }

    /// A check_*_{a,mx,ns}_access (or ccert/sasl) restriction that smtpd skips or that
    /// finds nothing: no client name (`unknown`), no HELO or sender, a name under a
    /// reserved top-level domain, no TLS, no login.
    pub(super) fn dns_access_skipped(&self, r: &str, arg: Option<&str>) -> bool {
        let c = &self.client;
        if arg.is_some_and(|a| self.empty_table(a)) {
            // Whatever DNS answers, a table without entries matches nothing.
            return true;
        }
        if c.representative {
            return false;
        }
        let name = if r.starts_with("check_client_") || r.starts_with("check_reverse_client_") {
            c.name.clone()
        } else if r.starts_with("check_helo_") {
            c.helo.clone()
        } else if r.starts_with("check_sender_") {
            c.sender
                .clone()
                .filter(|s| !s.is_empty())
                .map(|s| crate::relay::domain_of(&s))
        } else if r.starts_with("check_recipient_") {
            Some(crate::relay::domain_of(&self.rcpt_addr))
        } else if r == "check_ccert_access" {
            return c.tls != Some(true);
        } else if r == "check_sasl_access" {
            return !(c.authenticated && self.sasl_enabled);
        } else {
            return false;
        };
        name.is_none_or(|n| reserved(&n))
    }

    /// A table that was read and has no entries (not static:).
    fn empty_table(&self, spec: &str) -> bool {
        matches!(
            self.model.table(spec),
            Some(crate::postfix::maps::Opened::Table(t)) if t.entries().is_empty() && !t.is_static()
        )
    }

    /// A reply code parameter, or its default.
    pub(super) fn code(&self, name: &str, default: u16) -> u16 {
        self.scope.value(name).trim().parse().unwrap_or(default)
    }

    /// Says once in the trace whether the session was taken to be encrypted, and why.
    fn note_tls(&mut self) {
        if self.tls_noted || self.client.representative {
            return;
        }
        self.tls_noted = true;
        let why = self.client.tls_why.clone().unwrap_or_default();
        self.pending.push(TraceStep {
            file: "(session)".into(),
            line: 0,
            entry: format!(
                "TLS: {} ({why})",
                if self.client.tls == Some(true) {
                    "yes"
                } else {
                    "no"
                }
            ),
            effect: "assumed".into(),
        });
    }

    /// reject_unverified_address(): with nothing in the verify cache, smtpd sends a probe,
    /// waits a few seconds (address_verify_poll_count) and, the probe still pending, answers
    /// with a deferral that applies only if nothing rejects (the tempfail action defaults to
    /// defer_if_permit): 450 4.1.7 for a sender, 450 4.1.1 for a recipient. The answers
    /// after the probe finishes are named in `depends_on`.
    fn unverified(&mut self, sender: bool) -> Step {
        let (addr, class, dsn, prefix) = if sender {
            match self.client.sender.clone().filter(|s| !s.is_empty()) {
                Some(s) => (s, "Sender address", "4.1.7", "unverified_sender"),
                None => return Step::NoMatch,
            }
        } else {
            (
                self.rcpt_addr.clone(),
                "Recipient address",
                "4.1.1",
                "unverified_recipient",
            )
        };
        if self.client.representative {
            return Step::NoMatch;
        }
        let dcode = self.code(&format!("{prefix}_defer_code"), 450);
        let rcode = self.code(&format!("{prefix}_reject_code"), 450);
        let text = format!(
            "<{addr}>: {class} rejected: unverified address: Address verification in progress"
        );
        let act = self.scope.value(&format!("{prefix}_tempfail_action"));
        let reply = (dcode, dsn.to_string(), text);
        self.later.push(format!(
            "address verification of {addr}: {dcode} {dsn} while the probe is pending (first contact); once it finishes, a deliverable address passes this restriction and an undeliverable one gets {rcode} {}.1.{}",
            rcode / 100,
            if sender { 7 } else { 1 }
        ));
        if act.is_empty() || act.eq_ignore_ascii_case("defer_if_permit") {
            self.note_deferral(true, reply);
            Step::NoMatch
        } else {
            super::coded(reply.0, &reply.1, reply.2)
        }
    }

    /// permit_inet_interfaces: the client address is one of the server's own.
    fn inet_interfaces_client(&mut self) -> Step {
        let Some(ip) = self.client.ip else {
            return Step::NoMatch;
        };
        if self.client.representative {
            return Step::NoMatch;
        }
        let items = super::list_items(&self.scope.value("inet_interfaces").to_ascii_lowercase());
        let listed = items.iter().any(|i| {
            i.trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a == ip)
        });
        if listed || ip.is_loopback() {
            return Step::Permit;
        }
        let all = items.iter().any(|i| i == "all");
        match (&self.model.host.interfaces, all) {
            (Some(nets), true) => {
                if nets.iter().any(|n| n.addr() == ip) {
                    Step::Permit
                } else {
                    Step::NoMatch
                }
            }
            (None, true) => self.unknown(
                Unknown::Permit,
                format!("permit_inet_interfaces: whether {ip} is an address of this server"),
            ),
            _ => Step::NoMatch,
        }
    }
}

/// valid_hostname(): labels of letters, digits, `-` and `_`, not starting or ending with
/// `-`, at most 255 characters; an all-numeric name is not a host name.
fn valid_hostname(h: &str) -> bool {
    if h.starts_with('[') {
        let inner = h.trim_start_matches('[').trim_end_matches(']');
        let inner = inner.strip_prefix("IPv6:").unwrap_or(inner);
        return inner.parse::<std::net::IpAddr>().is_ok();
    }
    let h = h.strip_suffix('.').unwrap_or(h);
    !h.is_empty()
        && h.len() <= 255
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && !h.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// reject_non_fqdn_address(): the domain part must contain a dot (a bare local part fails).
fn non_fqdn_ok(addr: &str) -> bool {
    let a = addr.trim_matches(|c| c == '<' || c == '>');
    match a.rsplit_once('@') {
        Some((_, d)) => d.starts_with('[') || d.trim_end_matches('.').contains('.'),
        None => false,
    }
}

/// Names under the top-level domains reserved by RFC 2606 / RFC 6761 (`test`, `example`,
/// `invalid`) never resolve in the public DNS: a lookup answers NXDOMAIN, which smtpd
/// treats as a permanent "not found" (reject_unknown_mailhost(),
/// reject_unknown_hostname()), and an MX/NS/A access check finds nothing to look up.
pub(super) fn reserved(name: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    let tld = n.rsplit('.').next().unwrap_or("");
    n.contains('.') && matches!(tld, "test" | "example" | "invalid")
}
