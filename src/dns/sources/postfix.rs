//! Postfix: the address classes of ADDRESS_CLASS_README (mydestination, virtual_alias_domains,
//! virtual_mailbox_domains; relay_domains for backup MX), the blocklists of the smtpd
//! restriction lists and postscreen_dnsbl_sites, and smtp_helo_name (postconf(5)).

use std::path::Path;

use super::{public_name, Domain, Helo, Origin, Sources, Zone};
use crate::context::Context;
use crate::finding::{Location, Mta};
use crate::postfix::audit::locate_item;
use crate::postfix::maps::{self, Opened};
use crate::postfix::model::Model;
use crate::postfix::reach::bound_address;
use crate::postfix::syntax::list_items;
use crate::postfix::Target;

/// Domain lists (postconf(5)); each item is a name, a `/file` of names or a `type:table`
/// whose keys are the names (ADDRESS_CLASS_README).
const ACCEPTED: &[&str] = &[
    "mydestination",
    "virtual_alias_domains",
    "virtual_mailbox_domains",
];

/// smtpd restrictions whose next item is a blocklist zone (postconf(5)); the rhsbl ones are
/// keyed by domain names.
const RBL: &[(&str, bool)] = &[
    ("reject_rbl_client", false),
    ("reject_rhsbl_client", true),
    ("reject_rhsbl_sender", true),
    ("reject_rhsbl_helo", true),
    ("reject_rhsbl_reverse_client", true),
    ("reject_rhsbl_recipient", true),
];

/// The lists searched for DNS list restrictions: client to DATA (not end-of-data or ETRN).
const RESTRICTIONS: &[&str] = crate::postfix::syntax::RESTRICTION_LISTS.split_at(6).0;

pub fn read(ctx: &Context, t: &Target, out: &mut Sources) {
    let mut ignored = Vec::new();
    let m = Model::load_files(ctx, &t.path, &t.files, &mut ignored);
    if m.main.is_none() {
        return;
    }
    for param in ACCEPTED {
        for (name, location) in domain_list(ctx, &m, param) {
            out.domains.push(Domain {
                name,
                origin: origin(param, location),
                relay: false,
                routed: None,
            });
        }
    }
    for (name, location) in domain_list(ctx, &m, "relay_domains") {
        let routed = routed(ctx, &m, &name);
        out.domains.push(Domain {
            name,
            origin: origin("relay_domains", location),
            relay: true,
            routed,
        });
    }
    zones(ctx, &m, out);
    helo(ctx, &m, out);
    for item in list_items(&m.scope(None).value("inet_interfaces")) {
        if let Ok(ip) = item.trim_matches(|c| c == '[' || c == ']').parse() {
            out.listen.push(ip);
        }
    }
    // master.cf `192.0.2.25:smtp inet ... smtpd` (or postscreen): a listener bound to one
    // address, whatever inet_interfaces says.
    for svc in m.services() {
        if svc.complete()
            && svc.kind() == "inet"
            && ["smtpd", "postscreen"].contains(&svc.command())
        {
            out.listen.extend(bound_address(svc.name()));
        }
    }
}

fn origin(via: &str, location: Option<Location>) -> Origin {
    Origin::new(Mta::Postfix, via, location)
}

/// The names a domain-list parameter matches, with where each is written.
fn domain_list(ctx: &Context, m: &Model, param: &str) -> Vec<(String, Option<Location>)> {
    let value = m.scope(None).value(param);
    let mut out = Vec::new();
    for item in list_items(&value) {
        if maps::split_spec(&item).is_some() {
            let mut ignored = Vec::new();
            if let Opened::Table(t) = maps::open(ctx, &item, &mut ignored) {
                let src = t.file.as_ref().and_then(|f| ctx.source(f));
                // Address keys (user@domain) are not domain names: with the default
                // virtual_*_domains = $virtual_*_maps only the bare domain keys count.
                for e in t.entries().iter().filter(|e| !e.key.contains('@')) {
                    if let Some(n) = public_name(&e.key) {
                        let loc = src
                            .as_ref()
                            .filter(|_| e.line > 0)
                            .map(|s| s.line_location(e.line));
                        out.push((n, loc.or_else(|| locate_item(ctx, m, None, param, &item))));
                    }
                }
            }
        } else if item.starts_with('/') {
            // A file of names, read like a list (postconf(5): "/file/name" patterns).
            let real = ctx.root.resolve(Path::new(&item));
            if let Ok(src) = ctx.load(&real) {
                for (i, line) in src.text.lines().enumerate() {
                    let words = line.split('#').next().unwrap_or("");
                    for w in words.split(|c: char| c == ',' || c.is_whitespace()) {
                        if let Some(n) = public_name(w) {
                            out.push((n, Some(src.line_location(i + 1))));
                        }
                    }
                }
            }
        } else if let Some(n) = public_name(&item) {
            out.push((n, locate_item(ctx, m, None, param, &item)));
        }
    }
    out
}

/// What sends relay domain `name` to a named host instead of its MX: a transport_maps entry
/// with a nexthop, relay_transport with a nexthop, or relayhost (trivial-rewrite's resolve.c
/// uses relayhost as the nexthop of relay_domains mail when it is set).
fn routed(ctx: &Context, m: &Model, name: &str) -> Option<String> {
    let scope = m.scope(None);
    for spec in list_items(&scope.value("transport_maps")) {
        let mut ignored = Vec::new();
        if let Opened::Table(t) = maps::open(ctx, &spec, &mut ignored) {
            let parent = format!(".{name}");
            if let Some(e) = t.get(name).or_else(|| t.get(&parent)) {
                let nexthop = e.value.split_once(':').map(|(_, h)| h.trim());
                if nexthop.is_some_and(|h| !h.is_empty()) {
                    return Some(format!("transport_maps {} ({})", t.locate(e), e.value));
                }
            }
        }
    }
    let rt = scope.value("relay_transport");
    if rt
        .split_once(':')
        .is_some_and(|(_, h)| !h.trim().is_empty())
    {
        return Some(format!("relay_transport = {rt}"));
    }
    let rh = scope.value("relayhost");
    (!rh.trim().is_empty()).then(|| format!("relayhost = {}", rh.trim()))
}

/// Zones of the restriction lists of main.cf and every smtpd listener, and of
/// postscreen_dnsbl_sites (`zone[=filter][*weight]`).
fn zones(ctx: &Context, m: &Model, out: &mut Sources) {
    let mut scopes = vec![None];
    scopes.extend(m.smtpd_listeners().into_iter().map(Some));
    for si in scopes {
        let scope = m.scope(si);
        for list in RESTRICTIONS {
            let items = list_items(&scope.value(list));
            for w in items.windows(2) {
                let Some((_, domain_based)) = RBL.iter().find(|(r, _)| *r == w[0]) else {
                    continue;
                };
                push_zone(ctx, m, si, list, &w[1], *domain_based, out);
            }
        }
    }
    for site in list_items(&m.scope(None).value("postscreen_dnsbl_sites")) {
        push_zone(ctx, m, None, "postscreen_dnsbl_sites", &site, false, out);
    }
}

fn push_zone(
    ctx: &Context,
    m: &Model,
    si: Option<usize>,
    param: &str,
    spec: &str,
    domain_based: bool,
    out: &mut Sources,
) {
    let no_weight = spec.split('*').next().unwrap_or(spec);
    let (zone, filter) = match no_weight.split_once('=') {
        Some((z, f)) => (z, Some(f)),
        None => (no_weight, None),
    };
    if let Some(zone) = public_name(zone) {
        out.zones.push(Zone {
            zone,
            domain_based,
            txt: false,
            filtered: filter.is_some(),
            origin: origin(param, locate_item(ctx, m, si, param, spec)),
        });
    }
}

/// smtp_helo_name (default $myhostname): what this server says when it sends.
fn helo(ctx: &Context, m: &Model, out: &mut Sources) {
    let scope = m.scope(None);
    let name = scope.value("smtp_helo_name");
    let Some(name) = public_name(&name).or_else(|| Some(name.trim().to_string())) else {
        return;
    };
    if name.is_empty() {
        return;
    }
    let set_here = scope
        .get("smtp_helo_name")
        .is_some_and(|e| e.origin.file.is_some());
    let param = if set_here {
        "smtp_helo_name"
    } else {
        "myhostname"
    };
    let raw = scope.get(param).map(|e| e.raw).unwrap_or_default();
    out.helos.push(Helo {
        name,
        origin: origin(param, locate_item(ctx, m, None, param, raw.trim())),
    });
}

#[cfg(test)]
mod tests {
    use crate::context::{Context, Options, Root};

    /// master.cf `IP:port` listeners are this server's addresses too (for the live run
    /// without --server-ip), besides inet_interfaces.
    #[test]
    fn listener_addresses_come_from_inet_interfaces_and_master_cf() {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc/postfix");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("main.cf"),
            "inet_interfaces = 192.0.2.30, localhost\nmydestination = example.com\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("master.cf"),
            "smtp inet n - y - - smtpd\n192.0.2.25:smtp inet n - y - 1 postscreen\n[2001:db8::25]:submission inet n - y - - smtpd\n198.51.100.1:smtp inet n - y - - qmqpd\n127.0.0.1:10025 inet n - n - - smtpd\n",
        )
        .unwrap();
        let ctx = Context::new(Root::snapshot(d.path()), Options::default());
        let mut src = super::super::collect(&ctx, &[]).unwrap();
        src.dedup();
        let got: Vec<String> = src.listen.iter().map(|ip| ip.to_string()).collect();
        assert_eq!(
            got,
            ["127.0.0.1", "192.0.2.25", "192.0.2.30", "2001:db8::25"],
            "qmqpd is not a mail listener"
        );
    }
}
