//! Postfix rules PF105-PF109: sender/recipient verification callouts, DNS blocklists, and the
//! post-migration audit of map, certificate and key files and of domains listed in two
//! address classes.

use std::path::{Path, PathBuf};

use super::model::Model;
use super::syntax::list_items;
use crate::context::Context;
use crate::finding::{Finding, Fix, Location, Mta, Severity};

use super::syntax::RESTRICTION_LISTS as LISTS;

pub fn run(ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    if m.main.is_none() {
        return;
    }
    for si in listener_scopes(m) {
        callout(ctx, m, si, f);
    }
    dnsbl(ctx, m, f);
    domain_classes(m, f);
    // Absolute paths in the configuration name files on the server it belongs to: only
    // check them for a snapshot root or the live system's own /etc configuration, not for a
    // copy of someone else's main.cf given as PATH.
    if ctx.root.is_snapshot() || m.dir.starts_with(ctx.root.resolve(Path::new("/etc"))) {
        files(ctx, m, f);
    } else {
        host_files(ctx, m, f);
    }
    if !ctx.root.is_snapshot() && m.dir.starts_with("/etc") {
        sasl_socket(ctx, m, f);
    }
}

/// A configuration directory given as PATH (not a --root snapshot, not this host's /etc):
/// its absolute paths name files on the server it belongs to, which may not be this one.
/// They are looked up on this host all the same (simulate reads tables there too), and what
/// is missing is said once, as info, naming where it was looked for, instead of silently.
fn host_files(ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    let mut found = Vec::new();
    files(ctx, m, &mut found);
    let missing: Vec<&Finding> = found.iter().filter(|x| x.code == "PF108").collect();
    let Some(first) = missing.first() else {
        return;
    };
    let mut fd = Finding::new(
        "PF108",
        Mta::Postfix,
        format!(
            "{} file(s) this configuration names by absolute path do not exist on this host; {} is a configuration directory, not a --root snapshot, so its absolute paths were looked up on this machine (simulate reads them here too). The first: {}",
            missing.len(),
            m.dir.display(),
            first.message
        ),
    )
    .severity(Severity::Info)
    .help("If this configuration comes from another server, lint a copy of that server's files with --root DIR; if it runs here, create the files.");
    if let Some(l) = &first.location {
        fd = fd.at(l.clone());
    }
    f.push(fd);
}

/// The smtpd scopes to check: every smtpd listener of master.cf, or — for a main.cf without a
/// master.cf (a copied or corpus main.cf) — main.cf alone, standing for Postfix's stock
/// `smtp inet ... smtpd` service, which has no -o overrides.
fn listener_scopes(m: &Model) -> Vec<Option<usize>> {
    if m.master.is_none() {
        vec![None]
    } else {
        m.smtpd_listeners().into_iter().map(Some).collect()
    }
}

/// Name and postconf -P id of a listener scope (`smtp`, `smtp/inet` for main.cf alone).
fn scope_names(m: &Model, si: Option<usize>) -> (String, String) {
    match si.and_then(|i| m.services().get(i)) {
        Some(svc) => (svc.name().to_string(), svc.id()),
        None => ("smtp".into(), "smtp/inet".into()),
    }
}

fn service_line(m: &Model, si: Option<usize>) -> Option<Location> {
    let svc = m.services().get(si?)?;
    Some(m.master.as_ref()?.source.line_location(svc.line))
}

/// file:line where `name` is set in the scope of listener `si` (main.cf or master.cf -o).
fn locate(ctx: &Context, m: &Model, si: Option<usize>, name: &str) -> Option<Location> {
    let e = m.scope(si).get(name)?;
    let file = e.origin.file?;
    let src = ctx.source(&file)?;
    Some(src.line_location(e.origin.line))
}

/// Where list item `word` of parameter `name` is written: the item itself when it appears in
/// the value as written (a multi-line list reports the line of the entry, not of the
/// parameter), else the parameter's line (the item came from a $variable).
pub fn locate_item(
    ctx: &Context,
    m: &Model,
    si: Option<usize>,
    name: &str,
    word: &str,
) -> Option<Location> {
    let e = m.scope(si).get(name)?;
    let file = e.origin.file.clone()?;
    let src = ctx.source(&file)?;
    let found = e.origin.value_span.and_then(|vs| {
        let value = src.text.get(vs.start..vs.end)?;
        let delim = |c: char| c.is_whitespace() || c == ',';
        value.match_indices(word).find_map(|(i, _)| {
            let before_ok = value[..i].chars().next_back().is_none_or(delim);
            let after_ok = value[i + word.len()..].chars().next().is_none_or(delim);
            (before_ok && after_ok).then_some(vs.start + i)
        })
    });
    match found {
        Some(start) => Some(src.location(start, start + word.len())),
        None => Some(src.line_location(e.origin.line)),
    }
}

// ------------------------------------------------------------ PF105

/// reject_unverified_sender/recipient make smtpd probe the other side's MX for every message
/// (ADDRESS_VERIFICATION_README): slow, a backscatter-like load on third parties, and
/// temporary 450 replies while the probe is pending. Before reject_unauth_destination the
/// recipient probe is even run for relay attempts by strangers, to any domain on the internet.
fn callout(ctx: &Context, m: &Model, si: Option<usize>, f: &mut Vec<Finding>) {
    let scope = m.scope(si);
    let (name, id) = scope_names(m, si);
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
                .service(&id)
                .help(if before_unauth {
                    "Move reject_unverified_recipient after reject_unauth_destination (or into smtpd_recipient_restrictions with smtpd_relay_restrictions doing the relay check), and prefer limiting it with a check_recipient_access map of domains you relay for."
                } else {
                    "Use address verification only for domains you relay to (check_recipient_access/check_sender_access with a restriction class), not for all mail."
                });
            if before_unauth {
                fd = fd.severity(Severity::Error);
            }
            if let Some(l) = locate(ctx, m, si, list).or_else(|| service_line(m, si)) {
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

/// What postscreen does with a DNSBL score (postscreen(8), postconf(5)):
/// postscreen_dnsbl_action (default `ignore`: the result is logged and nothing is refused;
/// `enforce`: `550 5.7.1 Service unavailable; client [addr] blocked using zone` for every
/// recipient; `drop`: `521 5.7.1` and disconnect) applies when the sum of the weights of the
/// matching sites reaches postscreen_dnsbl_threshold (default 1).
struct Postscreen {
    action: String,
    threshold: i64,
}

/// `zone[=d.d.d.d-pattern][*weight]` (postconf(5) postscreen_dnsbl_sites): zone, filter and
/// weight (default 1).
fn zone_parts(spec: &str) -> (&str, Option<&str>, i64) {
    let mut parts = spec.splitn(2, '*');
    let no_weight = parts.next().unwrap_or(spec);
    let weight: i64 = parts
        .next()
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(1);
    match no_weight.split_once('=') {
        Some((z, fl)) => (z, Some(fl), weight),
        None => (no_weight, None, weight),
    }
}

/// A domain blocklist asked about client IP addresses (reject_rbl_client, postscreen):
/// Spamhaus's DBL answers 127.0.1.255 ("ERROR: IP queries not allowed", Spamhaus zone
/// documentation, "Available Zones") to every such query.
fn domain_list_asked_for_ips(
    zone: &str,
    filter: Option<&str>,
    used_by: &str,
    refusal: &str,
    blocks_alone: bool,
) -> (String, Severity, String) {
    let (what, sev) = match filter {
        Some(_) => (
            "with the reply filter it never matches, so the entry blocks nothing".to_string(),
            Severity::Warning,
        ),
        None if blocks_alone => (
            format!("every client looks listed and all mail is refused with {refusal}"),
            Severity::Error,
        ),
        None => (
            "every client looks listed and gets its weight added to the postscreen score"
                .to_string(),
            Severity::Warning,
        ),
    };
    (
        format!("{used_by} asks the domain blocklist {zone} about client IP addresses: it lists domain names, and answers 127.0.1.255 (IP queries not allowed) to every IP query; {what}"),
        sev,
        format!("Remove {zone} from {used_by}; to check sender domains use `reject_rhsbl_sender {zone}=127.0.1.[2..99]`."),
    )
}

/// Judge one zone reference (`zone` or `zone=filter`, postscreen: `zone=filter*weight`);
/// `ip_query`: the zone is asked about client IP addresses (not domain names).
fn judge_zone(
    spec: &str,
    used_by: &str,
    loc: Option<Location>,
    svc: Option<String>,
    ps: Option<&Postscreen>,
    ip_query: bool,
) -> Option<Finding> {
    let (zone, filter, weight) = zone_parts(spec);
    let z = crate::dnsbl::lookup(zone)?;
    use crate::dnsbl::Kind;
    // How a listing turns into a refusal here; None: it cannot refuse by itself.
    let (refusal, blocks_alone, note) = match ps {
        None => (
            format!("`554 5.7.1 Service unavailable; Client host [...] blocked using {zone}`"),
            true,
            String::new(),
        ),
        Some(p) => {
            let action = p.action.to_ascii_lowercase();
            let reply = match action.as_str() {
                "drop" => "`521 5.7.1 Service unavailable` and a dropped connection (postscreen_dnsbl_action = drop)".to_string(),
                _ => format!("`550 5.7.1 Service unavailable; client [...] blocked using {zone}` (postscreen_dnsbl_action = enforce)"),
            };
            if action != "enforce" && action != "drop" {
                (
                    reply,
                    false,
                    format!("; postscreen_dnsbl_action = {} here, so postscreen only logs the score and refuses nobody: the lookups cost DNS queries and time on every connection", if p.action.is_empty() { "ignore" } else { p.action.as_str() }),
                )
            } else if weight < p.threshold {
                (
                    reply,
                    false,
                    format!("; its weight {weight} is below postscreen_dnsbl_threshold = {}, so it refuses a client only together with other listed sites", p.threshold),
                )
            } else {
                (reply, true, String::new())
            }
        }
    };
    // Severity when the list can refuse by itself, and when it cannot.
    let demote = |s: Severity| {
        if blocks_alone {
            s
        } else if s == Severity::Error {
            Severity::Warning
        } else {
            Severity::Info
        }
    };
    let (msg, sev, help) = match z.kind {
        _ if z.domains && ip_query => {
            domain_list_asked_for_ips(zone, filter, used_by, &refusal, blocks_alone)
        }
        Kind::Defunct => (
            format!(
                "{used_by} uses the DNS blocklist {zone}, which is defunct (since {}): {}; {}{note}",
                z.since.as_deref().unwrap_or("unknown"),
                z.now.as_deref().unwrap_or(""),
                if blocks_alone {
                    format!("clients are refused with {refusal} or accepted on answers that mean nothing")
                } else {
                    "its answers mean nothing".to_string()
                }
            ),
            // Even when it refuses nobody, a dead list is worth removing.
            if blocks_alone { Severity::Error } else { Severity::Warning },
            format!("Remove {zone} from {used_by}."),
        ),
        Kind::Aggressive => (
            format!(
                "{used_by} uses the aggressive DNS blocklist {zone}: {}; legitimate senders {}{note}",
                z.now.as_deref().unwrap_or(""),
                if ps.is_some() {
                    format!("get a higher postscreen score, and are refused with {refusal} once it reaches postscreen_dnsbl_threshold")
                } else {
                    format!("get {refusal}")
                }
            ),
            demote(Severity::Warning),
            format!("Use {zone} for scoring (postscreen weight, content filter), not for rejecting outright."),
        ),
        Kind::Filter => {
            if filter.is_some() {
                return None;
            }
            (
                format!(
                    "{used_by} uses {zone} without a reply filter: Spamhaus answers 127.255.255.254 to queries through public resolvers (and 127.255.255.252/255 for other errors), so every client looks listed{}{note}",
                    if blocks_alone {
                        format!(" and all mail is refused with {refusal} as soon as the server uses such a resolver")
                    } else {
                        String::new()
                    }
                ),
                demote(Severity::Error),
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
    for si in listener_scopes(m) {
        let scope = m.scope(si);
        let (name, id) = scope_names(m, si);
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
                let loc = locate_item(ctx, m, si, list, zone);
                let ip_query = !r.starts_with("reject_rhsbl");
                f.extend(judge_zone(
                    zone,
                    &used_by,
                    loc,
                    Some(id.clone()),
                    None,
                    ip_query,
                ));
            }
        }
    }
    let scope = m.scope(None);
    let ps = Postscreen {
        action: scope.value("postscreen_dnsbl_action").trim().to_string(),
        threshold: scope
            .value("postscreen_dnsbl_threshold")
            .trim()
            .parse()
            .unwrap_or(1),
    };
    let sites = list_items(&scope.value("postscreen_dnsbl_sites"));
    for zone in &sites {
        let loc = locate_item(ctx, m, None, "postscreen_dnsbl_sites", zone);
        f.extend(judge_zone(
            zone,
            "postscreen_dnsbl_sites",
            loc,
            None,
            Some(&ps),
            true,
        ));
    }
    f.extend(weights_add_up(ctx, m, &sites, &ps));
}

/// postscreen adds the weights of every site that lists a client (postscreen(8)). Through a
/// public resolver each unfiltered Spamhaus zone answers 127.255.255.254, so it "lists"
/// every client: when their weights together reach postscreen_dnsbl_threshold and the action
/// refuses, every client is refused, though no one of them could do it alone (issue #15
/// item 9). The zones that reach the threshold alone are reported by `judge_zone` already.
fn weights_add_up(ctx: &Context, m: &Model, sites: &[String], ps: &Postscreen) -> Option<Finding> {
    let action = ps.action.to_ascii_lowercase();
    if action != "enforce" && action != "drop" {
        return None;
    }
    let unfiltered: Vec<(&str, i64)> = sites
        .iter()
        .map(|s| zone_parts(s))
        .filter(|(zone, filter, _)| {
            filter.is_none()
                && crate::dnsbl::lookup(zone).is_some_and(|z| z.kind == crate::dnsbl::Kind::Filter)
        })
        .map(|(zone, _, w)| (zone, w))
        .collect();
    let sum: i64 = unfiltered.iter().map(|(_, w)| w).sum();
    let alone = unfiltered.iter().any(|(_, w)| *w >= ps.threshold);
    if unfiltered.len() < 2 || alone || sum < ps.threshold {
        return None;
    }
    let list = unfiltered
        .iter()
        .map(|(z, w)| format!("{z} (weight {w})"))
        .collect::<Vec<_>>()
        .join(", ");
    let reply = if action == "drop" {
        "`521 5.7.1 Service unavailable` and a dropped connection"
    } else {
        "`550 5.7.1 Service unavailable; client [...] blocked using ...`"
    };
    let mut fd = Finding::new(
        "PF106",
        Mta::Postfix,
        format!(
            "postscreen_dnsbl_sites has unfiltered Spamhaus zones whose weights add up to {sum}, at or above postscreen_dnsbl_threshold = {}: {list}. Through a public or open resolver each of them answers 127.255.255.254 for every client, so every client reaches the threshold and is refused with {reply} (postscreen_dnsbl_action = {action})",
            ps.threshold
        ),
    )
    .severity(Severity::Error)
    .help("Add the reply filter to each zone (e.g. `zen.spamhaus.org=127.0.0.[2..11]*2`), and query Spamhaus through your own resolver.");
    if let Some(l) = unfiltered
        .first()
        .and_then(|(z, _)| locate_item(ctx, m, None, "postscreen_dnsbl_sites", z))
    {
        fd = fd.at(l);
    }
    Some(fd)
}

// ------------------------------------------------------------ PF107 / PF108

/// Parameters that name lookup tables (postconf(5)); restriction lists add check_*_access.
const MAP_PARAMS: &[&str] = &[
    "alias_maps",
    "alias_database",
    "virtual_alias_maps",
    "virtual_mailbox_maps",
    "virtual_alias_domains",
    "virtual_mailbox_domains",
    "relay_domains",
    "relay_recipient_maps",
    "transport_maps",
    "relocated_maps",
    "canonical_maps",
    "sender_canonical_maps",
    "recipient_canonical_maps",
    "sender_dependent_relayhost_maps",
    "sender_bcc_maps",
    "recipient_bcc_maps",
    "smtp_sasl_password_maps",
    "smtpd_sender_login_maps",
    "local_recipient_maps",
    "mynetworks",
    "header_checks",
    "body_checks",
    // A match list like the others: `/etc/mailname` in it is read as a list file.
    "mydestination",
];

const CERT_PARAMS: &[&str] = &[
    "smtpd_tls_cert_file",
    "smtpd_tls_key_file",
    "smtpd_tls_chain_files",
    // tls_certkey.c tls_set_ca_certificate_info(): CA data that cannot be loaded logs
    // `cannot load Certification Authority data ...: disabling TLS support`.
    "smtpd_tls_CAfile",
    "smtpd_tls_CApath",
];

/// Table types whose "file" is a configuration file (cfg_parser.c reads it; mysql_table(5),
/// pgsql_table(5), ldap_table(5), sqlite_table(5), memcache_table(5), mongodb_table(5)).
const CONFIG_FILE_TYPES: &[&str] = &["mysql", "pgsql", "ldap", "sqlite", "memcache", "mongodb"];

/// Compiled files Postfix opens for an indexed map type (DATABASE_README): `hash:/x` opens
/// /x.db, `lmdb:` /x.lmdb, `cdb:` /x.cdb, `dbm:`/`sdbm:` /x.dir and /x.pag.
fn compiled_suffixes(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "hash" | "btree" => Some(&[".db"]),
        "lmdb" => Some(&[".lmdb"]),
        "cdb" => Some(&[".cdb"]),
        "dbm" | "sdbm" => Some(&[".dir", ".pag"]),
        _ => None,
    }
}

fn files(ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    let mut seen = std::collections::HashSet::new();
    let mut scopes: Vec<Option<usize>> = vec![None];
    scopes.extend(m.smtpd_listeners().into_iter().map(Some));
    for si in scopes {
        let scope = m.scope(si);
        let svc_id = si.and_then(|i| m.services().get(i)).map(|s| s.id());
        let params = MAP_PARAMS
            .iter()
            .chain(LISTS.iter())
            .chain(CERT_PARAMS.iter());
        for p in params {
            // Only what the admin wrote: built-in defaults (alias_maps = hash:/etc/aliases)
            // are not a migration leftover. Asked before the value: computing a default
            // can run postconf (mynetworks on a live system), which costs a whole lint.
            if !m.is_set(si, p) {
                continue;
            }
            let Some(e) = scope.get(p) else { continue };
            if e.origin.file.is_none() {
                continue;
            }
            let loc = locate(ctx, m, si, p);
            let value = e.value.clone().unwrap_or_default();
            for item in list_items(&value) {
                let item = item.trim_matches(|c| c == '{' || c == '}');
                if CERT_PARAMS.contains(p) {
                    if item.starts_with('/') && seen.insert(item.to_string()) {
                        let what = if p.contains("_CA") {
                            Missing::CaData
                        } else {
                            Missing::CertOrKey
                        };
                        check_file(ctx, item, p, &loc, &svc_id, f, what);
                    }
                    continue;
                }
                if item.starts_with('/') && !item.contains(':') {
                    // `/file/name` in a list (match_list(3)): its lines are list items.
                    if seen.insert(item.to_string()) {
                        check_file(ctx, item, p, &loc, &svc_id, f, Missing::ListFile);
                    }
                    continue;
                }
                // proxy:TYPE:/file: proxymap opens the same table (proxymap(8)).
                let inner = item.strip_prefix("proxy:").unwrap_or(item);
                let Some((kind, path)) = inner.split_once(':') else {
                    continue;
                };
                if !path.starts_with('/') || !seen.insert(item.to_string()) {
                    continue;
                }
                if CONFIG_FILE_TYPES.contains(&kind) {
                    check_file(
                        ctx,
                        path,
                        p,
                        &loc,
                        &svc_id,
                        f,
                        Missing::ConfigFile(kind, item),
                    );
                    continue;
                }
                let real = ctx.root.resolve(Path::new(path));
                let cmd = if *p == "alias_maps" || *p == "alias_database" {
                    "postalias"
                } else {
                    "postmap"
                };
                // An indexed map is read from its compiled file only (dict_db.c opens
                // path.db; the source is needed only to rebuild it): with the compiled files
                // present, lookups work and nothing is refused.
                let compiled: Vec<String> = compiled_suffixes(kind)
                    .unwrap_or(&[])
                    .iter()
                    .map(|suf| format!("{path}{suf}"))
                    .collect();
                if !real.exists()
                    && !compiled.is_empty()
                    && compiled
                        .iter()
                        .all(|c| ctx.root.resolve(Path::new(c)).exists())
                {
                    f.push(with(
                        Finding::new(
                            "PF108",
                            Mta::Postfix,
                            format!(
                                "{p} uses {item}: its source {path} does not exist, but {} does and is what Postfix reads, so lookups work; only rebuilding it (`{cmd} {kind}:{path}`) fails until the source is restored",
                                compiled.join(" and ")
                            ),
                        )
                        .severity(Severity::Info)
                        .help(format!("Restore {path} (or recreate it from the table) so the map can be edited and rebuilt.")),
                        &loc,
                        &svc_id,
                    ));
                    continue;
                }
                if !check_file(ctx, path, p, &loc, &svc_id, f, Missing::TableSource) {
                    continue;
                }
                let Some(sufs) = compiled_suffixes(kind) else {
                    continue;
                };
                for suf in sufs {
                    let db = PathBuf::from(format!("{}{suf}", real.display()));
                    let shown = format!("{path}{suf}");
                    let fd = match (ctx.root.metadata(&db), ctx.root.metadata(&real)) {
                        (Err(_), _) => Finding::new(
                            "PF107",
                            Mta::Postfix,
                            format!(
                                "{p} uses {item} but {shown} does not exist: the daemons log `error: open database {shown}: No such file or directory` and `warning: {item} is unavailable` at each lookup, so {}",
                                if super::syntax::RESTRICTION_LISTS.contains(p) {
                                    // smtpd_check.c check_access() (verified with 3.7.11).
                                    "every client that reaches this lookup is deferred with `451 4.3.5 <...>: ... rejected: Server configuration error`, local recipients included"
                                } else {
                                    "mail that needs it is deferred (`451 4.3.0 Temporary lookup failure`)"
                                }
                            ),
                        )
                        .severity(Severity::Error)
                        .help(format!("Run `{cmd} {kind}:{path}` (after a migration: for every indexed map).")),
                        (Ok(d), Ok(s)) if older(&d, &s) => Finding::new(
                            "PF107",
                            Mta::Postfix,
                            format!(
                                "{p} uses {item} but {shown} is older than {path}: the last edit is not live (Postfix logs `database {shown} is older than source file {path}`) and lookups still return the old entries"
                            ),
                        )
                        .severity(Severity::Warning)
                        .help(format!("Run `{cmd} {kind}:{path}`.")),
                        _ => continue,
                    };
                    f.push(with(fd, &loc, &svc_id));
                }
            }
        }
    }
}

fn older(db: &std::fs::Metadata, src: &std::fs::Metadata) -> bool {
    match (db.modified(), src.modified()) {
        // Whole seconds, as Postfix compares st_mtime (dict_db.c, dict_lmdb.c); this also
        // keeps a fresh git checkout, written within one second, from looking stale.
        (Ok(d), Ok(s)) => {
            let secs = |t: std::time::SystemTime| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            };
            secs(d) < secs(s)
        }
        _ => false,
    }
}

fn with(mut fd: Finding, loc: &Option<Location>, svc: &Option<String>) -> Finding {
    if let Some(s) = svc {
        fd = fd.service(s.clone());
    }
    if let Some(l) = loc {
        fd = fd.at(l.clone());
    }
    fd
}

/// What a PF108 file is, which decides what its absence does.
enum Missing<'a> {
    ListFile,
    CertOrKey,
    CaData,
    /// A database table's configuration file: (table type, the table as written).
    ConfigFile(&'a str, &'a str),
    TableSource,
}

impl Missing<'_> {
    fn noun(&self) -> String {
        match self {
            Missing::ListFile => "list file".into(),
            Missing::CertOrKey => "certificate or key".into(),
            Missing::CaData => "CA certificates".into(),
            Missing::ConfigFile(kind, item) => format!("{kind} configuration file (for {item})"),
            Missing::TableSource => "lookup table source".into(),
        }
    }

    fn effect(&self, path: &str, param: &str) -> String {
        let restriction = super::syntax::RESTRICTION_LISTS.contains(&param);
        match self {
            // match_list.c: the /file becomes a table whose lookups fail; permit_mynetworks
            // then answers through reject_dict_retry() (verified with Postfix 3.7.11:
            // tests/postfix_relay_rules.rs unopenable_tables_defer_like_real_smtpd).
            Missing::ListFile if param == "mynetworks" => "every client that no earlier mynetworks entry matches gets `451 4.3.0 <...>: Temporary lookup failure` at permit_mynetworks, for every recipient, so inbound mail from outside is deferred too".into(),
            // smtpd_check.c check_access(): a failing lookup answers "451 4.3.5 Server
            // configuration error" (verified as above).
            Missing::TableSource | Missing::ConfigFile(..) if restriction => format!("smtpd cannot open the table, and every client whose {param} evaluation reaches it is deferred with `451 4.3.5 <...>: ... rejected: Server configuration error`, local recipients included"),
            // Verified with Postfix 3.7 (relay_domains = /missing/file).
            Missing::ListFile => "Postfix logs `open file ...: No such file or directory` and answers `451 4.3.0 Temporary lookup failure` to recipients whose domain it has to look up in the list".into(),
            // tls_certkey.c: missing key material or CA data disables TLS in smtpd.
            Missing::CertOrKey | Missing::CaData => "smtpd cannot start TLS: clients get `454 4.7.0 TLS not available due to local problem`, and listeners that require TLS accept no mail".into(),
            // dict_surrogate.c: a table that cannot be opened is replaced by one that fails
            // every lookup, after `warning: TYPE:NAME is unavailable. open NAME: ...`;
            // postmap says `fatal: open /x.cf: No such file or directory` (seen with
            // Postfix 3.7's memcache: tables).
            Missing::ConfigFile(kind, _) => format!("the daemons log `warning: {kind}:{path} is unavailable. open {path}: No such file or directory`, and every lookup in the table fails, so mail that needs it is deferred (`451 4.3.0`)"),
            Missing::TableSource => "Postfix cannot build or open the table, so lookups in it fail and mail that needs it is deferred".into(),
        }
    }
}

/// PF108 when `path` (absolute, in the server's view) is absent under the root; true if present.
fn check_file(
    ctx: &Context,
    path: &str,
    param: &str,
    loc: &Option<Location>,
    svc: &Option<String>,
    f: &mut Vec<Finding>,
    what: Missing,
) -> bool {
    if ctx.root.resolve(Path::new(path)).exists() {
        return true;
    }
    f.push(with(
        Finding::new(
            "PF108",
            Mta::Postfix,
            format!(
                "{param} names the {} {path}, which does not exist: {}",
                what.noun(),
                what.effect(path, param)
            ),
        ),
        loc,
        svc,
    ));
    false
}

// ------------------------------------------------------------ PF109

/// The address-class lists in the order trivial-rewrite tries them (resolve.c): the first
/// that matches decides the class.
const CLASS_LISTS: &[&str] = &[
    "mydestination",
    "virtual_alias_domains",
    "virtual_mailbox_domains",
    "relay_domains",
];

/// What happens to mail for a domain that `first` wins over `dead`.
fn class_effect(first: &str, dead: &str) -> &'static str {
    match (first, dead) {
        ("mydestination", _) => {
            "mail for it is delivered to local UNIX accounts and /etc/aliases (local_transport), never to the virtual mailboxes or aliases"
        }
        ("virtual_alias_domains", "virtual_mailbox_domains") => {
            "every recipient must be in virtual_alias_maps; mailboxes in virtual_mailbox_maps are never reached directly, and other addresses get `550 5.1.1 User unknown in virtual alias table`"
        }
        (_, "relay_domains") => {
            "mail for it is handled as a virtual domain here and never relayed (relay_transport, transport_maps) to the server that relay_domains entry was meant for"
        }
        _ => "the second entry has no effect",
    }
}

/// PF109: a domain listed in two address classes. trivial-rewrite warns `do not list domain X
/// in BOTH A and B` for mydestination + either virtual list, virtual alias + virtual
/// mailbox, and either virtual list + relay_domains (verified with Postfix 3.7 for the
/// relay_domains pairs). mydestination + relay_domains is not warned about: it is the
/// relay_domains default ($mydestination) below compatibility_level 2. Literal domains and
/// the domain keys of readable fixed tables (hash/texthash sources, as `relay_domains =
/// hash:/etc/postfix/relay_domains` lists them) are compared exactly; parent-domain
/// matching and unreadable tables are not guessed.
fn domain_classes(m: &Model, f: &mut Vec<Finding>) {
    let scope = m.scope(None);
    // Per class list: (domain, where a table lists it).
    let lists: Vec<Vec<(String, Option<String>)>> = CLASS_LISTS
        .iter()
        .map(|p| {
            let mut out = Vec::new();
            for d in super::policy::domain_list_items(m, &scope.value(p)) {
                if let Some(super::maps::Opened::Table(t)) = m.table(&d) {
                    if !t.fixed || t.is_static() {
                        continue;
                    }
                    for e in t.entries() {
                        let k = e.key.to_ascii_lowercase();
                        if k.contains('.') && !k.contains('@') && !k.starts_with('.') {
                            out.push((k, Some(format!("{}, {}", t.spec, t.locate(e)))));
                        }
                    }
                    continue;
                }
                let d = d.to_ascii_lowercase();
                if !d.contains(':')
                    && !d.contains('/')
                    && !d.starts_with(['$', '!'])
                    && d.contains('.')
                {
                    out.push((d, None));
                }
            }
            out
        })
        .collect();
    for (j, dead) in CLASS_LISTS.iter().enumerate() {
        // Only a list the admin wrote can hold a leftover.
        let Some(e) = m.main_entry(dead) else {
            continue;
        };
        let Some(main) = m.main.as_ref() else { return };
        let src = &main.source;
        for (i, first) in CLASS_LISTS.iter().enumerate().take(j) {
            if i == 0 && *dead == "relay_domains" {
                continue;
            }
            let (Some(a), Some(b)) = (lists.get(i), lists.get(j)) else {
                continue;
            };
            for (dom, b_at) in b.iter() {
                let Some((_, a_at)) = a.iter().find(|(d, _)| d == dom) else {
                    continue;
                };
                let via = |list: &str, at: &Option<String>| match at {
                    Some(t) => format!("{list} (through {t})"),
                    None => list.to_string(),
                };
                let mut fd = Finding::new(
                    "PF109",
                    Mta::Postfix,
                    format!(
                        "{dom} is listed in both {} and {}: Postfix gives a domain one address class, the first that matches ({first}), and trivial-rewrite logs `warning: do not list domain {dom} in BOTH {first} and {dead}`; {}",
                        via(first, a_at),
                        via(dead, b_at),
                        class_effect(first, dead)
                    ),
                )
                .help(format!(
                    "Keep {dom} in the one list that matches how this server handles it now, and remove it from the other."
                ))
                .at(src.line_location(e.line));
                // Remove the word from the dead list (unsafe: maybe the other list is wrong).
                let text = src.text.as_str();
                let words: Vec<_> = e.words(text).collect();
                if let Some(k) = words
                    .iter()
                    .position(|w| w.text(text).trim_end_matches(',').eq_ignore_ascii_case(dom))
                {
                    let w = words[k];
                    let (start, end) = match (
                        words.get(k + 1),
                        k.checked_sub(1).and_then(|p| words.get(p)),
                    ) {
                        (Some(next), _) => (w.start, next.start),
                        (None, Some(prev)) => (
                            prev.start + prev.text(text).trim_end_matches(',').len(),
                            w.end,
                        ),
                        (None, None) => (w.start, w.end),
                    };
                    fd = fd.fix(Fix::review(
                        format!("remove {dom} from {dead}"),
                        vec![src.edit(start..end, "")],
                    ));
                }
                f.push(fd);
            }
        }
    }
}

/// PF108 for Dovecot's SASL socket, on the live system only. A socket exists only while
/// Dovecot runs, and archives and copies (a --root snapshot, a migrated /etc) do not hold
/// sockets, so in a snapshot an absent socket says nothing and is not reported. On the live
/// system it is a fact about now: with the socket absent every SASL-enabled smtpd dies with
/// `fatal: no SASL authentication mechanisms` until Dovecot listens there. The default path
/// `smtpd` and absolute paths under a chroot are PF102 (wrong on any system), not checked here.
fn sasl_socket(ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    let mut seen = std::collections::HashSet::new();
    for si in m.smtpd_listeners() {
        let scope = m.scope(Some(si));
        if !super::policy::sasl_enabled(m, si)
            || !scope
                .value("smtpd_sasl_type")
                .eq_ignore_ascii_case("dovecot")
        {
            continue;
        }
        let path = scope.value("smtpd_sasl_path");
        if path == "smtpd" || path.starts_with("inet:") || path.is_empty() {
            continue;
        }
        let real = if path.starts_with('/') {
            if super::relay_rules::chrooted(m, si).is_some() {
                continue;
            }
            PathBuf::from(&path)
        } else {
            Path::new(&scope.value("queue_directory")).join(&path)
        };
        if !seen.insert(real.clone()) || std::fs::symlink_metadata(&real).is_ok() {
            continue;
        }
        let (name, id) = scope_names(m, Some(si));
        let fd = Finding::new(
            "PF108",
            Mta::Postfix,
            format!(
                "smtpd_sasl_path names the Dovecot auth socket {}, which does not exist now: Dovecot is not running or does not listen there, so smtpd on listener {name} logs `fatal: no SASL authentication mechanisms` and closes every connection",
                real.display()
            ),
        )
        .help("Start Dovecot, and check that its service auth has `unix_listener /var/spool/postfix/private/auth` matching smtpd_sasl_path.");
        let loc = locate(ctx, m, Some(si), "smtpd_sasl_path")
            .or_else(|| locate(ctx, m, Some(si), "smtpd_sasl_type"));
        f.push(with(fd, &loc, &Some(id)));
    }
}
