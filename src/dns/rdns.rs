//! reverse-dns: each address of the server has a PTR record, the PTR name resolves back to
//! the address (forward-confirmed), and the server's HELO name is that name.
//!
//! Receiving Postfix servers check exactly this (postconf(5)):
//! reject_unknown_reverse_client_hostname (no PTR: `450 4.7.1 Client host rejected: cannot
//! find your reverse hostname, [ADDR]`), reject_unknown_client_hostname (PTR not confirmed:
//! `450 4.7.25 Client host rejected: cannot find your hostname, [ADDR]`).

use std::net::IpAddr;

use super::resolve::{Answer, Dns};
use super::sources::{Helo, Origin};
use super::{finding, Tally};
use crate::finding::{Finding, Mta};

pub async fn check(dns: &Dns, ip: IpAddr, helos: &[Helo]) -> (Vec<Finding>, Tally) {
    // The finding points at the HELO setting: the name the admin controls here.
    let fallback = Origin {
        mta: Mta::Postfix,
        via: "--server-ip".into(),
        location: None,
    };
    let at = helos.first().map(|h| &h.origin).unwrap_or(&fallback);
    let names = match dns.ptr(ip).await {
        Answer::Failed(e) => {
            let f = finding(
                "DN300",
                at,
                format!("could not look up the reverse DNS (PTR) of {ip}: {e}"),
                "Run the check again, or pass --resolver with a resolver that answers.",
            );
            return (vec![f], Tally::unchecked());
        }
        Answer::NxDomain | Answer::NoData => {
            let f = finding(
                "DN301",
                at,
                format!(
                    "{ip} has no reverse DNS (PTR) record: receiving servers answer `450 4.7.1 Client host rejected: cannot find your reverse hostname, [{ip}]` or refuse this server's mail as spam"
                ),
                format!("Ask the owner of {ip} (the hosting provider) to set its PTR record to {}.", helos.first().map(|h| h.name.as_str()).unwrap_or("the server's host name")),
            );
            return (vec![f], Tally::checked());
        }
        Answer::Found(n) => n,
    };
    let mut confirmed = Vec::new();
    let mut failure = None;
    for n in &names {
        match dns.addrs(n).await {
            Answer::Found(a) if a[0].ips.contains(&ip) => confirmed.push(n.clone()),
            Answer::Failed(e) => failure = Some(e),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if confirmed.is_empty() {
        if let Some(e) = failure {
            let f = finding(
                "DN300",
                at,
                format!(
                    "could not resolve the reverse name {} of {ip}: {e}",
                    names.join(", ")
                ),
                "Run the check again, or pass --resolver with a resolver that answers.",
            );
            return (vec![f], Tally::unchecked());
        }
        out.push(finding(
            "DN302",
            at,
            format!(
                "the reverse name of {ip} is {}, but that name does not resolve back to {ip}: receiving servers treat this server as `unknown` and answer `450 4.7.25 Client host rejected: cannot find your hostname, [{ip}]`",
                names.join(", ")
            ),
            format!("Add an A/AAAA record {} -> {ip}, or change the PTR to a name that has one.", names[0]),
        ));
    }
    for h in helos {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&h.name)) {
            out.push(finding(
                "DN303",
                h,
                format!(
                    "this server says `HELO {}` ({}), but the reverse name of {ip} is {}: receivers that compare them score or refuse its mail{}",
                    h.name,
                    h.origin.via,
                    names.join(", "),
                    if h.name.contains('.') { "" } else { ", and a HELO name without a domain fails reject_non_fqdn_helo_hostname (`504 5.5.2 Helo command rejected: need fully-qualified hostname`)" }
                ),
                format!("Set {} to {} (or the PTR of {ip} to {}).", h.origin.via, names[0], h.name),
            ));
        }
    }
    (out, Tally::checked())
}
