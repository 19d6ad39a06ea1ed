//! What the configuration asks DNS about: the domains this server receives mail for (and the
//! relay domains it backs up), the blocklist zones it queries, and the names it says in
//! HELO. Each comes with the configuration line that lists it, for the findings.
//!
//! Read through the same discovery and models as `lint` (src/lint.rs `collect`), never by
//! parsing files a second way.

mod exim;
mod postfix;
mod qmail;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::context::Context;
use crate::finding::{Location, Mta};
use crate::lint::ConfigSet;

/// Where a name came from: the MTA, the setting, and the line.
#[derive(Debug, Clone)]
pub struct Origin {
    pub mta: Mta,
    /// The setting or file that lists it ("mydestination", "control/rcpthosts", ...).
    pub via: String,
    pub location: Option<Location>,
}

impl Origin {
    pub fn new(mta: Mta, via: &str, location: Option<Location>) -> Origin {
        Origin {
            mta,
            via: via.to_string(),
            location,
        }
    }
}

/// A domain this server receives mail for (or relays for, as backup MX).
#[derive(Debug, Clone)]
pub struct Domain {
    pub name: String,
    pub origin: Origin,
    /// A relay (backup-MX) domain: Postfix relay_domains, Exim relay_to_domains.
    pub relay: bool,
    /// For relay domains: a transport, relayhost or router that sends it to a named host
    /// instead of its MX (then the server being the best MX is not a loop).
    pub routed: Option<String>,
}

/// A DNS blocklist zone the configuration queries.
#[derive(Debug, Clone)]
pub struct Zone {
    pub zone: String,
    /// Keyed by domain names (Postfix reject_rhsbl_*, Exim `zone/$sender_address_domain`)
    /// instead of IP addresses.
    pub domain_based: bool,
    /// The configuration only counts certain answers (Postfix `zone=127.0.0.[2..11]`,
    /// Exim `zone=a.b.c.d,...` or `&mask`): error answers do not refuse anyone.
    pub filtered: bool,
    /// Listed means "has a TXT record" rather than an A record: qmail's `rblsmtpd -r zone`
    /// (rblsmtpd(8); `-r zone:text` asks for the A record instead).
    pub txt: bool,
    pub origin: Origin,
}

/// A name the server says in HELO/EHLO.
#[derive(Debug, Clone)]
pub struct Helo {
    pub name: String,
    pub origin: Origin,
}

#[derive(Debug, Default)]
pub struct Sources {
    pub domains: Vec<Domain>,
    pub zones: Vec<Zone>,
    pub helos: Vec<Helo>,
    /// Addresses the listeners are bound to (Postfix inet_interfaces, Exim
    /// local_interfaces) when they are written as literal addresses.
    pub listen: Vec<std::net::IpAddr>,
    /// Configuration sets read, for the summary.
    pub sets: Vec<String>,
}

/// Read every configuration `lint` would read (the live system, a `--root` snapshot, or
/// `paths`).
pub fn collect(ctx: &Context, paths: &[PathBuf]) -> Result<Sources, String> {
    let (sets, _) = crate::lint::collect(ctx, paths)?;
    let mut out = Sources::default();
    for set in &sets {
        out.sets.push(set.describe(ctx));
        match set {
            ConfigSet::Postfix(t) => postfix::read(ctx, t, &mut out),
            ConfigSet::Exim(t) => exim::read(ctx, t, &mut out),
            ConfigSet::Qmail(t) => qmail::read(ctx, t, &mut out),
        }
    }
    Ok(out)
}

impl Sources {
    /// A domain named outside the configuration files: `--domain` (shown as Postfix's, the
    /// MTA a bare domain is usually asked about) or Plesk's mail domains
    /// (src/plesk/domains.rs). No configuration line to point at.
    pub fn add_domain(&mut self, name: &str, mta: Mta, via: &str) {
        self.domains.push(Domain {
            name: name.to_string(),
            origin: Origin::new(mta, via, None),
            relay: false,
            routed: None,
        });
    }

    /// One entry per name: a domain accepted anywhere wins over the same domain as a relay
    /// domain (Postfix's default relay_domains is $mydestination); zones keep their first
    /// reference, with `filtered` only when every reference filters.
    pub fn dedup(&mut self) {
        let mut by_name: BTreeMap<String, Domain> = BTreeMap::new();
        for d in self.domains.drain(..) {
            match by_name.get_mut(&d.name) {
                Some(prev) if prev.relay && !d.relay => *prev = d,
                Some(_) => {}
                None => {
                    by_name.insert(d.name.clone(), d);
                }
            }
        }
        self.domains = by_name.into_values().collect();
        let mut zones: BTreeMap<(String, bool, bool), Zone> = BTreeMap::new();
        for z in self.zones.drain(..) {
            zones
                .entry((z.zone.clone(), z.domain_based, z.txt))
                .and_modify(|p| p.filtered &= z.filtered)
                .or_insert(z);
        }
        self.zones = zones.into_values().collect();
        let mut seen = std::collections::HashSet::new();
        self.helos.retain(|h| seen.insert(h.name.clone()));
        self.listen.sort();
        self.listen.dedup();
    }
}

/// A name worth asking the Internet's DNS about: a dotted host name, not `localhost`, not a
/// pattern (`*.example.com`, `.example.com`, regexps), not an address literal.
pub fn public_name(name: &str) -> Option<String> {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = n.contains('.')
        && !n.starts_with('.')
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && n.parse::<std::net::IpAddr>().is_err()
        && !n.starts_with("localhost.")
        && n != "localhost.localdomain"
        && !n.ends_with(".localdomain")
        && !n.ends_with(".local");
    ok.then_some(n)
}

/// The line of `path` (a server path) whose first word is `key`, for a finding that points at
/// a lookup file's entry.
pub fn key_location(ctx: &Context, path: &str, key: &str) -> Option<Location> {
    let src = ctx
        .load(&ctx.root.resolve(std::path::Path::new(path)))
        .ok()?;
    let line = src.text.lines().position(|l| {
        l.split(|c: char| c == ':' || c.is_whitespace())
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(key))
    })? + 1;
    Some(src.line_location(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_names_are_asked() {
        assert_eq!(public_name("Example.COM."), Some("example.com".into()));
        assert_eq!(public_name("localhost"), None);
        assert_eq!(public_name("localhost.example.com"), None);
        assert_eq!(public_name("host.localdomain"), None);
        assert_eq!(public_name(".example.com"), None);
        assert_eq!(public_name("*.example.com"), None);
        assert_eq!(public_name("192.0.2.1"), None);
        assert_eq!(public_name("nodots"), None);
    }
}
