//! risky-dnsbl, live: ask each blocklist for its test entries (RFC 5782 section 5).
//!
//! IP lists must list 127.0.0.2 and must not list 127.0.0.1; domain lists must list `test`
//! and must not list `invalid`. Spamhaus answers 127.255.255.252 (mistyped zone),
//! 127.255.255.254 (query through a public or open resolver) and 127.255.255.255 (too many
//! queries) instead of a listing when it refuses the resolver ("Using our public mirrors?
//! Check your return codes now", Spamhaus 2021/2022; the codes are the ones the reply filters
//! of PF106/EX151 exclude).

use std::net::Ipv4Addr;

use super::resolve::{Answer, Dns};
use super::sources::Zone;
use super::{finding, Tally};
use crate::finding::{Finding, Severity};

const ERROR_CODES: [Ipv4Addr; 3] = [
    Ipv4Addr::new(127, 255, 255, 252),
    Ipv4Addr::new(127, 255, 255, 254),
    Ipv4Addr::new(127, 255, 255, 255),
];

/// The names to ask: (must be listed, must not be listed).
pub fn test_names(z: &Zone) -> (String, String) {
    if z.domain_based {
        // The Spamhaus DBL documents dbltest.com as its test entry.
        let listed = if z.zone == "dbl.spamhaus.org" || z.zone.ends_with(".dbl.spamhaus.org") {
            "dbltest.com"
        } else {
            "test"
        };
        (
            format!("{listed}.{}", z.zone),
            format!("invalid.{}", z.zone),
        )
    } else {
        (
            format!("2.0.0.127.{}", z.zone),
            format!("1.0.0.127.{}", z.zone),
        )
    }
}

fn show(ips: &[Ipv4Addr]) -> String {
    ips.iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The answer as text: the A records, or the TXT records for a zone that lists by TXT.
fn as_text(a: Answer<Ipv4Addr>) -> Answer<String> {
    match a {
        Answer::Found(v) => Answer::Found(v.iter().map(Ipv4Addr::to_string).collect()),
        Answer::NxDomain => Answer::NxDomain,
        Answer::NoData => Answer::NoData,
        Answer::Failed(e) => Answer::Failed(e),
    }
}

pub async fn check(dns: &Dns, z: &Zone) -> (Vec<Finding>, Tally) {
    let (yes, no) = test_names(z);
    let (a_yes, a_no) = tokio::join!(dns.a(&yes), dns.a(&no));
    // An error code on either entry: the zone refuses this resolver. Spamhaus says so in A
    // records, so they are asked for even where the MTA reads TXT (rblsmtpd then refuses
    // everyone with the error text).
    let mut errors: Vec<Ipv4Addr> = [&a_yes, &a_no]
        .into_iter()
        .filter_map(|a| match a {
            Answer::Found(v) => Some(v.iter().filter(|ip| ERROR_CODES.contains(ip))),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    errors.sort();
    errors.dedup();
    if !errors.is_empty() {
        return (vec![refused(z, &yes, &errors)], Tally::checked());
    }
    let (listed, unlisted) = if z.txt {
        tokio::join!(dns.txt(&yes), dns.txt(&no))
    } else {
        (as_text(a_yes), as_text(a_no))
    };
    let record = if z.txt { "TXT" } else { "A" };
    let mut out = Vec::new();
    match &listed {
        Answer::Failed(e) => {
            return (
                vec![finding(
                    "DN200",
                    z,
                    format!("could not query the test entry {yes} of the blocklist {} ({}): {e}", z.zone, z.origin.via),
                    "Run the check again, or pass --resolver with a resolver that answers.",
                )],
                Tally::unchecked(),
            )
        }
        Answer::NxDomain | Answer::NoData => out.push(finding(
            "DN201",
            z,
            format!(
                "the blocklist {} ({}) does not list its test entry {yes} ({}): the zone is dead or unreachable from this resolver, so it blocks nothing, and a dead zone's domain can be re-registered to list everyone",
                z.zone,
                z.origin.via,
                if listed == Answer::NxDomain { "NXDOMAIN".to_string() } else if z.txt { "no TXT record, and rblsmtpd -r lists a client only by its TXT record".to_string() } else { format!("no {record} record") }
            ),
            format!("Remove {} from {}.", z.zone, z.origin.via),
        )),
        Answer::Found(_) => {}
    }
    if let Answer::Found(ips) = &unlisted {
        out.push(finding(
            "DN202",
            z,
            format!(
                "the blocklist {} ({}) lists {no} ({record} {}), which no blocklist may list: it answers for everything, so every {} is refused",
                z.zone,
                z.origin.via,
                ips.join(", "),
                if z.domain_based { "sender domain" } else { "client" }
            ),
            format!("Remove {} from {} now.", z.zone, z.origin.via),
        ));
    }
    (out, Tally::checked())
}

/// DN203: Spamhaus refuses the resolver. Without a reply filter every client is refused now.
fn refused(z: &Zone, name: &str, codes: &[Ipv4Addr]) -> Finding {
    let msg = if z.filtered {
        format!(
            "the blocklist {} ({}) answers {name} with {}: it refuses the resolver in use (a public or open resolver, or over the query limit); the reply filter ignores these answers, so the list blocks nothing",
            z.zone,
            z.origin.via,
            show(codes)
        )
    } else {
        format!(
            "the blocklist {} ({}) answers {name} with {}: it refuses the resolver in use (a public or open resolver, or over the query limit), and without a reply filter these answers count as listings: every client is refused now",
            z.zone,
            z.origin.via,
            show(codes)
        )
    };
    let f = finding(
        "DN203",
        z,
        msg,
        "Query Spamhaus through your own recursive resolver (not 8.8.8.8, 1.1.1.1 or the provider's shared one) or its Data Query Service, and keep a reply filter (zone=127.0.0.[2..11]).",
    );
    if z.filtered {
        f
    } else {
        f.severity(Severity::Error)
    }
}
