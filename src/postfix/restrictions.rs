//! PF014: restriction lists that name something smtpd does not know. smtpd reads a
//! restriction list word by word (smtpd_check.c, generic_checks()); a word that is neither a
//! restriction, nor a `type:table`, nor a restriction class is logged as
//! `unknown smtpd restriction: "word"` and answered with `451 4.3.5 Server configuration
//! error` (reject_server_error()), for every client whose evaluation reaches it. The same
//! happens to a `check_*_access` without its `type:table`, `check_policy_service` without its
//! `transport:server`, and `sleep` without its number. Restrictions take at most one
//! argument: in `reject_rbl_client a.example b.example` the second zone is read as a name.

use std::collections::HashSet;

use super::model::Model;
use super::syntax::{list_slices, RESTRICTION_LISTS};
use crate::finding::{Finding, Fix, Mta, Severity};
use crate::source::SourceFile;

/// What follows a restriction name as its argument (postconf(5), smtpd_*_restrictions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// `type:table` (is_map_command(): "need maptype:mapname").
    Table,
    /// `transport:server` (check_policy_service).
    Service,
    /// A DNS zone, optionally `=d.d.d.d` filtered (missing: smtpd only warns
    /// `restriction %s requires domain name argument`).
    Zone,
    /// Seconds (sleep).
    Number,
}

/// Every restriction name smtpd's generic_checks() and smtpd_check_init() accept, Postfix
/// 3.11 (src/smtpd/smtpd_check.c with the names of src/global/mail_params.h), and their
/// argument. Old aliases (reject_unknown_client, reject_invalid_hostname, reject_rbl,
/// reject_maps_rbl, check_relay_domains, permit_naked_ip_address) are still accepted.
const NAMES: &[(&str, Option<Arg>)] = &[
    ("check_ccert_access", Some(Arg::Table)),
    ("check_client_a_access", Some(Arg::Table)),
    ("check_client_access", Some(Arg::Table)),
    ("check_client_mx_access", Some(Arg::Table)),
    ("check_client_ns_access", Some(Arg::Table)),
    ("check_etrn_access", Some(Arg::Table)),
    ("check_helo_a_access", Some(Arg::Table)),
    ("check_helo_access", Some(Arg::Table)),
    ("check_helo_mx_access", Some(Arg::Table)),
    ("check_helo_ns_access", Some(Arg::Table)),
    ("check_policy_service", Some(Arg::Service)),
    ("check_recipient_a_access", Some(Arg::Table)),
    ("check_recipient_access", Some(Arg::Table)),
    ("check_recipient_maps", None),
    ("check_recipient_mx_access", Some(Arg::Table)),
    ("check_recipient_ns_access", Some(Arg::Table)),
    ("check_relay_domains", None),
    ("check_reverse_client_hostname_a_access", Some(Arg::Table)),
    ("check_reverse_client_hostname_access", Some(Arg::Table)),
    ("check_reverse_client_hostname_mx_access", Some(Arg::Table)),
    ("check_reverse_client_hostname_ns_access", Some(Arg::Table)),
    ("check_sasl_access", Some(Arg::Table)),
    ("check_sender_a_access", Some(Arg::Table)),
    ("check_sender_access", Some(Arg::Table)),
    ("check_sender_mx_access", Some(Arg::Table)),
    ("check_sender_ns_access", Some(Arg::Table)),
    ("defer", None),
    ("defer_if_permit", None),
    ("defer_if_reject", None),
    ("defer_unauth_destination", None),
    ("permit", None),
    ("permit_auth_destination", None),
    ("permit_dnswl_client", Some(Arg::Zone)),
    ("permit_inet_interfaces", None),
    ("permit_mx_backup", None),
    ("permit_mynetworks", None),
    ("permit_naked_ip_address", None),
    ("permit_rhswl_client", Some(Arg::Zone)),
    ("permit_sasl_authenticated", None),
    ("permit_tls_all_clientcerts", None),
    ("permit_tls_clientcerts", None),
    ("reject", None),
    ("reject_authenticated_sender_login_mismatch", None),
    ("reject_invalid_helo_hostname", None),
    ("reject_invalid_hostname", None),
    ("reject_known_sender_login_mismatch", None),
    ("reject_maps_rbl", None),
    ("reject_multi_recipient_bounce", None),
    ("reject_non_fqdn_helo_hostname", None),
    ("reject_non_fqdn_hostname", None),
    ("reject_non_fqdn_recipient", None),
    ("reject_non_fqdn_sender", None),
    ("reject_plaintext_session", None),
    ("reject_rbl", Some(Arg::Zone)),
    ("reject_rbl_client", Some(Arg::Zone)),
    ("reject_rhsbl_client", Some(Arg::Zone)),
    ("reject_rhsbl_helo", Some(Arg::Zone)),
    ("reject_rhsbl_recipient", Some(Arg::Zone)),
    ("reject_rhsbl_reverse_client", Some(Arg::Zone)),
    ("reject_rhsbl_sender", Some(Arg::Zone)),
    ("reject_sender_login_mismatch", None),
    ("reject_unauth_destination", None),
    ("reject_unauth_pipelining", None),
    ("reject_unauthenticated_sender_login_mismatch", None),
    ("reject_unknown_address", None),
    ("reject_unknown_client", None),
    ("reject_unknown_client_hostname", None),
    ("reject_unknown_helo_hostname", None),
    ("reject_unknown_hostname", None),
    ("reject_unknown_recipient_domain", None),
    ("reject_unknown_reverse_client_hostname", None),
    ("reject_unknown_sender_domain", None),
    ("reject_unlisted_recipient", None),
    ("reject_unlisted_sender", None),
    ("reject_unverified_recipient", None),
    ("reject_unverified_sender", None),
    ("sleep", Some(Arg::Number)),
    ("warn_if_reject", None),
];

/// Whether smtpd knows restriction `name` (compared without case, as smtpd does), and what
/// argument it takes.
pub fn lookup(name: &str) -> Option<Option<Arg>> {
    // Names as written (lower case) by hash; smtpd also takes them in any case, which the
    // scan below handles for the rare other spelling.
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, Option<Arg>>> =
        std::sync::OnceLock::new();
    let by_name = BY_NAME.get_or_init(|| NAMES.iter().copied().collect());
    if let Some(a) = by_name.get(name) {
        return Some(*a);
    }
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, a)| *a)
}

/// One problem in a list: the offending word (its index) and what to say.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub item: usize,
    pub severity: Severity,
    pub message: String,
    /// A restriction name to insert before the word (a second zone of reject_rbl_client).
    pub insert: Option<String>,
}

/// The problems of one restriction list, given as its items. `classes` are the restriction
/// class names main.cf declares (smtpd looks them up case-sensitively).
pub fn check_items(items: &[&str], classes: &HashSet<String>) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut i = 0;
    // The restriction whose one argument the previous word was.
    let mut after_arg_of: Option<&str> = None;
    while i < items.len() {
        let it = items[i];
        // `#...` is PF003's (a comment that is not one); `{ ... }` grouping is left alone.
        if it.starts_with('#') {
            break;
        }
        // A `$name` reference is expanded before smtpd reads the list (an undefined one to
        // nothing, which PF006 reports); its words are checked where they are defined.
        if it.starts_with('{') || it.starts_with('$') || it.contains(':') || classes.contains(it) {
            after_arg_of = None;
            i += 1;
            continue;
        }
        let Some(arg) = lookup(it) else {
            let mut message = format!(
                "smtpd does not know the restriction `{it}`: it logs `unknown smtpd restriction: \"{it}\"` and answers `451 4.3.5 Server configuration error` to every client whose evaluation reaches it"
            );
            let mut insert = None;
            if let Some(prev) = after_arg_of {
                message = format!(
                    "{prev} takes exactly one argument, so `{it}` after it is read as a restriction name: smtpd logs `unknown smtpd restriction: \"{it}\"` and answers `451 4.3.5 Server configuration error` to every client whose evaluation reaches it"
                );
                insert = Some(prev.to_string());
            }
            out.push(Problem {
                item: i,
                severity: Severity::Error,
                message,
                insert,
            });
            after_arg_of = None;
            i += 1;
            continue;
        };
        let Some(arg) = arg else {
            after_arg_of = None;
            i += 1;
            continue;
        };
        let next = items.get(i + 1).copied();
        let ok = match arg {
            Arg::Table | Arg::Service => next.is_some_and(|n| n.contains(':')),
            Arg::Number => {
                next.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }
            Arg::Zone => next.is_some(),
        };
        if ok {
            after_arg_of = (arg == Arg::Zone).then_some(it);
            i += 2;
            continue;
        }
        // smtpd_check.c's wording, built only for a list that has the problem (a large
        // hosting setup's classes hold tens of thousands of well-formed restrictions).
        let log = match arg {
            Arg::Table => format!(
                "restriction {it}: bad argument \"{}\": need maptype:mapname",
                next.unwrap_or("")
            ),
            Arg::Service => format!("restriction {it} must be followed by transport:server"),
            Arg::Number => format!("restriction {it} must be followed by number"),
            Arg::Zone => format!("restriction {it} requires domain name argument"),
        };
        let message = if arg == Arg::Zone {
            // generic_checks() only warns here: the restriction does nothing.
            format!("`{it}` at the end of the list has no zone: smtpd logs `{log}` and skips it, so it checks nothing")
        } else {
            format!(
                "`{it}` lacks its argument: smtpd logs `{log}` and answers `451 4.3.5 Server configuration error` to every client whose evaluation reaches it"
            )
        };
        out.push(Problem {
            item: i,
            severity: if arg == Arg::Zone {
                Severity::Warning
            } else {
                Severity::Error
            },
            message,
            insert: None,
        });
        after_arg_of = None;
        i += 1;
    }
    out
}

/// The byte span of each item of `value` within `src.text[span]`, found in order (items
/// without whitespace appear verbatim; a `{ ... }` group gets no span).
fn item_spans(src: &SourceFile, span: (usize, usize), items: &[&str]) -> Vec<Option<usize>> {
    let text = src.text.get(span.0..span.1).unwrap_or("");
    let mut cursor = 0;
    items
        .iter()
        .map(|it| {
            if it.contains(char::is_whitespace) {
                return None;
            }
            let at = text.get(cursor..)?.find(it)? + cursor;
            cursor = at + it.len();
            Some(span.0 + at)
        })
        .collect()
}

pub fn run(m: &Model, f: &mut Vec<Finding>) {
    let classes: HashSet<String> = m
        .main_entry("smtpd_restriction_classes")
        .map(|e| {
            list_slices(&e.value)
                .into_iter()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let is_list = |n: &str| RESTRICTION_LISTS.contains(&n) || classes.contains(n);
    if let Some(main) = &m.main {
        for e in &main.parsed.entries {
            let effective = m.main_entry(&e.name).is_some_and(|l| l.span == e.span);
            if effective && is_list(&e.name) {
                let span = (e.value_span.start, e.value_span.end);
                report(&main.source, &e.name, &e.value, span, &classes, None, f);
            }
        }
    }
    if let Some(master) = &m.master {
        for s in m.services() {
            for o in s.overrides.iter().filter(|o| is_list(&o.name)) {
                let span = (o.value_span.start, o.value_span.end);
                let id = Some(s.id());
                report(&master.source, &o.name, &o.value, span, &classes, id, f);
            }
        }
    }
}

fn report(
    src: &SourceFile,
    list: &str,
    value: &str,
    span: (usize, usize),
    classes: &HashSet<String>,
    service: Option<String>,
    f: &mut Vec<Finding>,
) {
    let items = list_slices(value);
    let problems = check_items(&items, classes);
    if problems.is_empty() {
        return;
    }
    let spans = item_spans(src, span, &items);
    for p in problems {
        let word = &items[p.item];
        let mut fd = Finding::new("PF014", Mta::Postfix, format!("{list}: {}", p.message))
            .severity(p.severity);
        if let Some(s) = &service {
            fd = fd.service(s);
        }
        let start = spans.get(p.item).copied().flatten();
        if let Some(start) = start {
            fd = fd.at(src.location(start, start + word.len()));
        }
        fd = match (&p.insert, start) {
            (Some(name), Some(start)) => fd
                .help(format!("Give each zone its own `{name}`."))
                .fix(Fix::review(
                    format!("write `{name} {word}`"),
                    vec![src.edit(start..start, format!("{name} "))],
                )),
            _ => fd.help("Check the name against postconf(5) (smtpd_client_restrictions and the other smtpd_*_restrictions), give check_*_access a type:table, or declare the name in smtpd_restriction_classes."),
        };
        f.push(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(v: &str) -> Vec<(usize, Severity)> {
        let classes: HashSet<String> = ["my_class".to_string()].into_iter().collect();
        check_items(&list_slices(v), &classes)
            .into_iter()
            .map(|p| (p.item, p.severity))
            .collect()
    }

    #[test]
    fn parameter_references_are_not_restriction_names() {
        assert!(problems("permit_mynetworks, $mua_client_restrictions, reject").is_empty());
    }

    #[test]
    fn names_arguments_and_classes() {
        assert!(problems("permit_mynetworks, PERMIT_SASL_AUTHENTICATED, my_class, hash:/x, check_client_access cidr:/y, sleep 1, reject_rbl_client zen.spamhaus.org=127.0.0.[2..11], reject_unauth_destination").is_empty());
        assert_eq!(
            problems("permit_my_networks reject"),
            [(0, Severity::Error)]
        );
        assert_eq!(
            problems("reject_rbl_client a.example b.example, reject_unauth_destination"),
            [(2, Severity::Error)]
        );
        assert_eq!(
            problems("check_client_access, reject"),
            [(0, Severity::Error)]
        );
        assert_eq!(problems("check_policy_service"), [(0, Severity::Error)]);
        assert_eq!(
            problems("sleep x"),
            [(0, Severity::Error), (1, Severity::Error)]
        );
        assert_eq!(
            problems("permit_mynetworks reject_rbl_client"),
            [(1, Severity::Warning)]
        );
        assert!(problems("permit_mynetworks # lan").is_empty());
    }

    #[test]
    fn second_zone_gets_the_restriction_inserted() {
        let p = check_items(
            &list_slices("reject_rbl_client a.example b.example"),
            &HashSet::new(),
        );
        assert_eq!(p[0].insert.as_deref(), Some("reject_rbl_client"));
        assert!(p[0]
            .message
            .starts_with("reject_rbl_client takes exactly one argument"));
    }
}
