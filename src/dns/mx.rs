//! mx-misrouted: does mail for each accepted domain reach this server?
//!
//! Senders look up the domain's MX records and deliver to the hosts in preference order;
//! without MX records the domain's own address is the implicit MX (RFC 5321 section 5.1). A
//! single MX of preference 0 whose target is the root (`.`) is a null MX: the domain
//! accepts no mail (RFC 7505).

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::resolve::{Addrs, Answer, Dns, Mx};
use super::sources::Domain;
use super::{finding, Tally};
use crate::finding::Finding;

/// What one MX host resolved to.
struct Host {
    mx: Mx,
    addrs: Answer<Addrs>,
}

pub async fn check(dns: &Dns, d: &Domain, me: &[IpAddr]) -> (Vec<Finding>, Tally) {
    let mut out = Vec::new();
    let mx = dns.mx(&d.name).await;
    let hosts = match mx {
        Answer::Failed(e) => return could_not(d, &format!("its MX lookup failed ({e})")),
        Answer::NxDomain => {
            out.push(finding(
                "DN102",
                d,
                format!(
                    "{} ({}) does not exist in DNS (NXDOMAIN): no sender can deliver mail for it{}",
                    d.name,
                    d.origin.via,
                    if d.relay { "" } else { ", although this server accepts it" }
                ),
                "Check the spelling and the registration of the domain; remove it from the configuration if it is gone.",
            ));
            return (out, Tally::checked());
        }
        Answer::NoData => return implicit_mx(dns, d, me).await,
        Answer::Found(list) => list,
    };
    if hosts.len() == 1 && hosts[0].host.is_empty() {
        out.push(finding(
            "DN105",
            d,
            format!(
                "{} publishes a null MX (`MX {} .`, RFC 7505): senders bounce mail for it at once, so this server, which accepts it ({}), never receives any",
                d.name, hosts[0].preference, d.origin.via
            ),
            "Publish an MX record that points at this server, or remove the domain from this server's configuration.",
        ));
        return (out, Tally::checked());
    }
    let resolved = resolve_hosts(dns, hosts).await;
    for h in &resolved {
        shape(d, h, &mut out);
    }
    let ours: Vec<&Host> = resolved.iter().filter(|h| reaches(h, me)).collect();
    if d.relay {
        loops_back(d, &resolved, me, &mut out);
    } else if ours.is_empty() {
        if resolved.iter().all(|h| h.addrs.failed().is_some()) {
            let e = resolved[0].addrs.failed().unwrap_or("").to_string();
            return could_not(d, &format!("none of its MX hosts could be resolved ({e})"));
        }
        out.push(elsewhere(d, &resolved, me));
    }
    (out, Tally::checked())
}

async fn resolve_hosts(dns: &Dns, mut hosts: Vec<Mx>) -> Vec<Host> {
    hosts.sort_by(|a, b| (a.preference, &a.host).cmp(&(b.preference, &b.host)));
    let futs = hosts.into_iter().map(|mx| async move {
        let addrs = match mx.host.parse::<IpAddr>() {
            // An IP literal as the MX target is a name made of digits in DNS; what it would
            // resolve to does not matter, the record is wrong either way (DN104).
            Ok(ip) => Answer::Found(vec![Addrs {
                ips: vec![ip],
                cname: None,
            }]),
            Err(_) => dns.addrs(&mx.host).await,
        };
        Host { mx, addrs }
    });
    futures_util::future::join_all(futs).await
}

fn ips(h: &Host) -> &[IpAddr] {
    match &h.addrs {
        Answer::Found(a) => a.first().map(|a| a.ips.as_slice()).unwrap_or(&[]),
        _ => &[],
    }
}

fn reaches(h: &Host, me: &[IpAddr]) -> bool {
    ips(h).iter().any(|ip| me.contains(ip))
}

/// DN103 (the host has no address) and DN104 (an IP literal or an alias).
fn shape(d: &Domain, h: &Host, out: &mut Vec<Finding>) {
    let host = &h.mx.host;
    if host.parse::<IpAddr>().is_ok() {
        out.push(finding(
            "DN104",
            d,
            format!(
                "{}: `MX {} {host}.` is an IP address, not a host name: senders look it up as a name and find nothing, or refuse the record",
                d.name, h.mx.preference
            ),
            "Point the MX at a host name that has an A/AAAA record with this address.",
        ));
        return;
    }
    match &h.addrs {
        Answer::Found(a) => {
            if let Some(target) = a.first().and_then(|a| a.cname.as_ref()) {
                out.push(finding(
                    "DN104",
                    d,
                    format!(
                        "{}: MX host {host} is an alias (CNAME to {target}); RFC 2181 section 10.3 forbids it and some senders refuse it",
                        d.name
                    ),
                    format!("Point the MX at {target} (the canonical name) instead."),
                ));
            }
        }
        Answer::NxDomain | Answer::NoData => out.push(finding(
            "DN103",
            d,
            format!(
                "{}: MX host {host} (preference {}) has no A or AAAA record ({}); senders skip it{}",
                d.name,
                h.mx.preference,
                if h.addrs == Answer::NxDomain { "NXDOMAIN" } else { "no address" },
                " and mail waits or bounces when no other MX works"
            ),
            "Add the address record of the MX host, or point the MX at a host that has one.",
        )),
        Answer::Failed(_) => {}
    }
}

fn describe(h: &Host) -> String {
    let list = ips(h)
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if list.is_empty() {
        format!("{} (pref {}, no address)", h.mx.host, h.mx.preference)
    } else {
        format!("{} (pref {}, {list})", h.mx.host, h.mx.preference)
    }
}

fn my_addrs(me: &[IpAddr]) -> String {
    me.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// DN101: the accepted domain's MX hosts are all elsewhere.
fn elsewhere(d: &Domain, hosts: &[Host], me: &[IpAddr]) -> Finding {
    let list: Vec<String> = hosts.iter().map(describe).collect();
    let best = &hosts[0].mx.host;
    finding(
        "DN101",
        d,
        format!(
            "{} is accepted here ({}) but its MX points elsewhere: {}; none is this server ({}). Senders deliver to {best}; if that is the old server and it no longer hosts {}, they get `554 5.7.1 Relay access denied` (or `User unknown`) from it",
            d.name,
            d.origin.via,
            list.join("; "),
            my_addrs(me),
            d.name
        ),
        "Change the domain's MX record to this server (and wait for the old TTL), or remove the domain from this server's configuration.",
    )
}

/// No MX records: the implicit MX is the domain's own address (RFC 5321 section 5.1).
async fn implicit_mx(dns: &Dns, d: &Domain, me: &[IpAddr]) -> (Vec<Finding>, Tally) {
    let a = dns.addrs(&d.name).await;
    let msg = match &a {
        Answer::Failed(e) => {
            return could_not(d, &format!("it has no MX and its address lookup failed ({e})"))
        }
        Answer::Found(x) => {
            let ips = &x[0].ips;
            if d.relay || ips.iter().any(|ip| me.contains(ip)) {
                return (Vec::new(), Tally::checked());
            }
            format!(
                "{} is accepted here ({}) but has no MX record, so senders deliver to its own address ({}), which is not this server ({}); if that host does not accept mail for it, senders get `554 5.7.1 Relay access denied` or a connection failure",
                d.name,
                d.origin.via,
                ips.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", "),
                my_addrs(me)
            )
        }
        _ if d.relay => return (Vec::new(), Tally::checked()),
        _ => format!(
            "{} is accepted here ({}) but has neither an MX record nor an address: senders cannot deliver mail for it",
            d.name, d.origin.via
        ),
    };
    let f = finding(
        "DN101",
        d,
        msg,
        "Publish an MX record that points at this server.",
    );
    (vec![f], Tally::checked())
}

/// DN106: this server is the lowest-preference MX of a relay domain and nothing routes the
/// domain to a named host: Postfix answers "mail for DOMAIN loops back to myself".
fn loops_back(d: &Domain, hosts: &[Host], me: &[IpAddr], out: &mut Vec<Finding>) {
    if d.routed.is_some() {
        return;
    }
    let Some(best) = hosts.iter().map(|h| h.mx.preference).min() else {
        return;
    };
    let lowest: BTreeSet<&str> = hosts
        .iter()
        .filter(|h| h.mx.preference == best && reaches(h, me))
        .map(|h| h.mx.host.as_str())
        .collect();
    if lowest.is_empty() {
        return;
    }
    let names: Vec<&str> = lowest.into_iter().collect();
    out.push(finding(
        "DN106",
        d,
        format!(
            "{} is a relay (backup-MX) domain ({}) and this server ({}) is its lowest-preference MX ({} pref {best}), with no transport, relayhost or router sending it elsewhere: mail for it is accepted and then bounces with `mail for {} loops back to myself`",
            d.name,
            d.origin.via,
            my_addrs(me),
            names.join(", "),
            d.name
        ),
        "Make the real mail server the lowest-preference MX, or route the domain to it explicitly (transport_maps `example.com smtp:[mail.internal]`, an Exim manualroute router).",
    ));
}

fn could_not(d: &Domain, why: &str) -> (Vec<Finding>, Tally) {
    let f = finding(
        "DN100",
        d,
        format!(
            "could not check where mail for {} ({}) goes: {why}",
            d.name, d.origin.via
        ),
        "Run the check again, or pass --resolver with a resolver that answers.",
    );
    (vec![f], Tally::unchecked())
}
