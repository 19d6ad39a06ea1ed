//! Postfix rules PF105-PF108: sender/recipient verification callouts, DNS blocklists, and the
//! post-migration audit of map, certificate and key files.

use super::model::Model;
use super::policy::{list_items, listener_name};
use crate::context::Context;
use crate::finding::{Finding, Location, Mta, Severity};

/// The smtpd restriction lists, in the order smtpd evaluates them.
const LISTS: &[&str] = &[
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions",
    "smtpd_etrn_restrictions",
];

pub fn run(ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    if m.main.is_none() {
        return;
    }
    for si in m.smtpd_listeners() {
        callout(ctx, m, si, f);
    }
    dnsbl(ctx, m, f);
}

/// file:line where `name` is set in the scope of listener `si` (main.cf or master.cf -o).
fn locate(ctx: &Context, m: &Model, si: Option<usize>, name: &str) -> Option<Location> {
    let e = m.scope(si).get(name)?;
    let file = e.origin.file?;
    let src = ctx.source(&file)?;
    Some(src.line_location(e.origin.line))
}

// ------------------------------------------------------------ PF105

/// reject_unverified_sender/recipient make smtpd probe the other side's MX for every message
/// (ADDRESS_VERIFICATION_README): slow, a backscatter-like load on third parties, and
/// temporary 450 replies while the probe is pending. Before reject_unauth_destination the
/// recipient probe is even run for relay attempts by strangers, to any domain on the internet.
fn callout(ctx: &Context, m: &Model, si: usize, f: &mut Vec<Finding>) {
    let scope = m.scope(Some(si));
    let Some(svc) = m.services().get(si) else {
        return;
    };
    let name = listener_name(m, si);
    for list in LISTS {
        let items = list_items(&scope.value(list));
        let unauth = items
            .iter()
            .position(|i| i == "reject_unauth_destination" || i == "defer_unauth_destination");
        for (pos, item) in items.iter().enumerate() {
            let what = match item.as_str() {
                "reject_unverified_sender" => "sender",
                "reject_unverified_recipient" => "recipient",
                _ => continue,
            };
            // On the recipient side, relay checks live in smtpd_relay_restrictions when that
            // list is non-empty (evaluated first); the probe then only runs for mail that
            // passed them. Without it, position within the recipient list matters.
            let relay_guarded = list_items(&scope.value("smtpd_relay_restrictions"))
                .iter()
                .any(|i| i == "reject_unauth_destination" || i == "defer_unauth_destination");
            let before_unauth = what == "recipient"
                && match *list {
                    "smtpd_relay_restrictions" => unauth.is_none_or(|u| pos < u),
                    "smtpd_recipient_restrictions" => {
                        !relay_guarded && unauth.is_none_or(|u| pos < u)
                    }
                    _ => false,
                };
            let mut msg = format!(
                "listener {name}: {list} contains {item}: for every message smtpd first probes the {what}'s mail server (address verification); senders see `450 4.1.{} <address>: {} address rejected: unverified address: ...` while the probe is pending or the remote server is slow, and remote sites that treat probes as abuse may block this server",
                if what == "sender" { "7" } else { "1" },
                if what == "sender" { "Sender" } else { "Recipient" },
            );
            if before_unauth {
                msg.push_str("; it comes before reject_unauth_destination, so strangers trying to relay make this server probe arbitrary domains on the internet (a probe amplifier), and a failed probe is reported as an unverified address instead of `554 5.7.1 Relay access denied`");
            }
            let mut fd = Finding::new("PF105", Mta::Postfix, msg)
                .service(svc.id())
                .help(if before_unauth {
                    "Move reject_unverified_recipient after reject_unauth_destination (or into smtpd_recipient_restrictions with smtpd_relay_restrictions doing the relay check), and prefer limiting it with a check_recipient_access map of domains you relay for."
                } else {
                    "Use address verification only for domains you relay to (check_recipient_access/check_sender_access with a restriction class), not for all mail."
                });
            if before_unauth {
                fd = fd.severity(Severity::Error);
            }
            if let Some(l) = locate(ctx, m, Some(si), list).or_else(|| {
                m.master
                    .as_ref()
                    .map(|mm| mm.source.line_location(svc.line))
            }) {
                fd = fd.at(l);
            }
            f.push(fd);
        }
    }
}

// ------------------------------------------------------------ PF106

/// Restrictions whose next list item is a DNS zone (smtpd_check.c); permit_dnswl_client and
/// permit_rhswl_client are allowlists, harmless when dead, so they are not judged.
const DNSBL_RESTRICTIONS: &[&str] = &[
    "reject_rbl_client",
    "reject_rhsbl_client",
    "reject_rhsbl_sender",
    "reject_rhsbl_helo",
    "reject_rhsbl_reverse_client",
    "reject_rhsbl_recipient",
    "reject_rbl",
    "reject_rhsbl",
];

/// Judge one zone reference (`zone` or `zone=filter`, postscreen: `zone=filter*weight`).
fn judge_zone(
    spec: &str,
    used_by: &str,
    loc: Option<Location>,
    svc: Option<String>,
) -> Option<Finding> {
    // Postfix syntax: zone[=d.d.d.d-pattern][*weight] (postconf(5) postscreen_dnsbl_sites).
    let no_weight = spec.split('*').next().unwrap_or(spec);
    let (zone, filter) = match no_weight.split_once('=') {
        Some((z, fl)) => (z, Some(fl)),
        None => (no_weight, None),
    };
    let z = crate::dnsbl::lookup(zone)?;
    use crate::dnsbl::Kind;
    let (msg, sev, help) = match z.kind {
        Kind::Defunct => (
            format!(
                "{used_by} uses the DNS blocklist {zone}, which is defunct (since {}): {}; mail is refused or accepted on answers that mean nothing",
                z.since.as_deref().unwrap_or("unknown"),
                z.now.as_deref().unwrap_or("")
            ),
            Severity::Error,
            format!("Remove {zone} from {used_by}."),
        ),
        Kind::Aggressive => (
            format!(
                "{used_by} uses the aggressive DNS blocklist {zone}: {}; legitimate senders get {}",
                z.now.as_deref().unwrap_or(""),
                if used_by.starts_with("postscreen") {
                    format!("a higher postscreen score, and are refused with `550 5.7.1 Service unavailable; client [...] blocked using {zone}` once it reaches postscreen_dnsbl_threshold")
                } else {
                    format!("`554 5.7.1 Service unavailable; Client host [...] blocked using {zone}`")
                }
            ),
            Severity::Warning,
            format!("Use {zone} for scoring (postscreen weight, content filter), not for rejecting outright."),
        ),
        Kind::Filter => {
            if filter.is_some() {
                return None;
            }
            (
                format!(
                    "{used_by} uses {zone} without a reply filter: Spamhaus answers 127.255.255.254 to queries through public resolvers (and 127.255.255.252/255 for other errors), so every client looks listed and all mail is refused with `554 5.7.1 ... blocked using {zone}` as soon as the server uses such a resolver"
                ),
                Severity::Error,
                format!(
                    "Write `{zone}={}` so that only real listings count, and query Spamhaus through your own resolver (or their Data Query Service).",
                    z.filter.as_deref().unwrap_or("127.0.0.[2..11]")
                ),
            )
        }
    };
    let mut fd = Finding::new("PF106", Mta::Postfix, msg)
        .severity(sev)
        .help(help);
    if let Some(s) = svc {
        fd = fd.service(s);
    }
    if let Some(l) = loc {
        fd = fd.at(l);
    }
    Some(fd)
}

fn dnsbl(ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    let mut seen = std::collections::HashSet::new();
    for si in m.smtpd_listeners() {
        let scope = m.scope(Some(si));
        let Some(svc) = m.services().get(si) else {
            continue;
        };
        let name = listener_name(m, si);
        for list in LISTS {
            let Some(e) = scope.get(list) else {
                continue;
            };
            let items = list_items(&e.value.clone().unwrap_or_default());
            for w in items.windows(2) {
                let [r, zone] = w else { continue };
                if !DNSBL_RESTRICTIONS.contains(&r.as_str()) {
                    continue;
                }
                // A list set in main.cf is inherited by every listener: report it once.
                let key = (e.origin.file.clone(), e.origin.line, zone.clone());
                if !seen.insert(key) {
                    continue;
                }
                let used_by = format!("{r} in {list} (listener {name})");
                let loc = locate(ctx, m, Some(si), list);
                f.extend(judge_zone(zone, &used_by, loc, Some(svc.id())));
            }
        }
    }
    let scope = m.scope(None);
    for zone in list_items(&scope.value("postscreen_dnsbl_sites")) {
        let loc = locate(ctx, m, None, "postscreen_dnsbl_sites");
        f.extend(judge_zone(&zone, "postscreen_dnsbl_sites", loc, None));
    }
}
