//! Exim: the `local_domains` and `relay_to_domains` domain lists, the `dnslists` ACL
//! conditions, and the HELO name of the smtp transports (helo_data, default
//! $primary_hostname) (Exim specification: "Domain lists", "The dnslists ACL condition",
//! "The smtp transport").

use std::path::Path;

use super::{key_location, public_name, Domain, Helo, Origin, Sources, Zone};
use crate::context::Context;
use crate::exim::lists::{expand, lsearch_keys, split};
use crate::exim::model::Config;
use crate::exim::Target;
use crate::finding::{Location, Mta};

pub fn read(ctx: &Context, t: &Target, out: &mut Sources) {
    let loaded = crate::exim::load(ctx, t);
    let cfg = &loaded.cfg;
    let primary = crate::exim::primary_hostname(ctx, cfg);
    for (name, location) in domain_list(ctx, cfg, "local_domains", &primary, 0) {
        out.domains.push(Domain {
            name,
            origin: origin("local_domains", location),
            relay: false,
            routed: None,
        });
    }
    for (name, location) in domain_list(ctx, cfg, "relay_to_domains", &primary, 0) {
        let routed = routed(cfg, &name);
        out.domains.push(Domain {
            name,
            origin: origin("relay_to_domains", location),
            relay: true,
            routed,
        });
    }
    dnslists(cfg, out);
    helo(cfg, &primary, out);
    if let Some(o) = cfg.option("local_interfaces") {
        for item in split(&o.value) {
            // `<; 192.0.2.25.25` style: address with an optional .port or [port].
            let addr = item.split(['[', ' ']).next().unwrap_or("").trim();
            if let Ok(ip) = addr.parse() {
                out.listen.push(ip);
            }
        }
    }
}

fn origin(via: &str, location: Option<Location>) -> Origin {
    Origin::new(Mta::Exim, via, location)
}

/// The names of named domain list `list`: plain names, `@` (the primary host name), other
/// named lists (`+name`), and the keys of `lsearch;FILE` / `dsearch;DIR` lookups. Patterns,
/// negations and other lookups match names nobody can enumerate and are skipped.
fn domain_list(
    ctx: &Context,
    cfg: &Config,
    list: &str,
    primary: &str,
    depth: usize,
) -> Vec<(String, Option<Location>)> {
    let Some(l) = cfg.list(list) else {
        return Vec::new();
    };
    let here = Some(l.origin.location());
    let value = expand(ctx, &l.value).unwrap_or_else(|_| l.value.clone());
    let mut out = Vec::new();
    for item in split(&value) {
        if item == "@" {
            out.extend(public_name(primary).map(|n| (n, here.clone())));
        } else if let Some(other) = item.strip_prefix('+') {
            if depth < 8 {
                out.extend(domain_list(ctx, cfg, other, primary, depth + 1));
            }
        } else if let Some((kind, path)) = item.split_once(';') {
            let kind = kind.trim().trim_start_matches("partial-");
            let path = path.trim();
            if kind == "lsearch" {
                for k in lsearch_keys(ctx, path).unwrap_or_default() {
                    if let Some(n) = public_name(&k) {
                        let loc = key_location(ctx, path, &k).or_else(|| here.clone());
                        out.push((n, loc));
                    }
                }
            } else if kind == "dsearch" {
                let real = ctx.root.resolve(Path::new(path));
                for e in std::fs::read_dir(real).into_iter().flatten().flatten() {
                    if let Some(n) = public_name(&e.file_name().to_string_lossy()) {
                        out.push((n, here.clone()));
                    }
                }
            }
        } else if let Some(n) = public_name(&item) {
            out.push((n, here.clone()));
        }
    }
    out
}

/// A manualroute router for the domain (or for `+relay_to_domains`) sends it to a named host.
fn routed(cfg: &Config, name: &str) -> Option<String> {
    cfg.routers.iter().find_map(|r| {
        if r.opt("driver") != Some("manualroute") {
            return None;
        }
        let domains = r.opt("domains").unwrap_or("");
        let hit = split(domains)
            .iter()
            .any(|d| d == "+relay_to_domains" || d.eq_ignore_ascii_case(name));
        let route_list = r.opt("route_list").unwrap_or("");
        let for_it = route_list
            .split(';')
            .any(|rule| rule.split_whitespace().next() == Some(name) || rule.contains('*'));
        (hit || (domains.is_empty() && for_it))
            .then(|| format!("manualroute router {} ({})", r.name, r.origin.describe()))
    })
}

/// `dnslists = zone[=a.b.c.d,...|&mask][/key] : ...` in every ACL statement.
fn dnslists(cfg: &Config, out: &mut Sources) {
    for acl in &cfg.acls {
        for s in &acl.stmts {
            for c in s.conds.iter().filter(|c| c.name == "dnslists") {
                for item in split(c.value()) {
                    let zone = item.split(['=', '&', '!', '/']).next().unwrap_or("");
                    let key = item.split_once('/').map(|(_, k)| k).unwrap_or("");
                    let Some(zone) = public_name(zone) else {
                        continue;
                    };
                    out.zones.push(Zone {
                        zone,
                        domain_based: !key.is_empty() && !key.contains("host_address"),
                        txt: false,
                        filtered: item.contains('=') || item.contains('&'),
                        origin: origin("dnslists", Some(c.origin.location())),
                    });
                }
            }
        }
    }
}

/// helo_data of the smtp transports (default `$primary_hostname`).
fn helo(cfg: &Config, primary: &str, out: &mut Sources) {
    let mut any = false;
    for t in cfg
        .transports
        .iter()
        .filter(|t| t.opt("driver") == Some("smtp"))
    {
        if let Some(s) = t.setting("helo_data") {
            if !s.value.contains('$') {
                any = true;
                out.helos.push(Helo {
                    name: s.value.trim().to_ascii_lowercase(),
                    origin: origin("helo_data", Some(s.origin.location())),
                });
            }
        }
    }
    if !any {
        out.helos.push(Helo {
            name: primary.to_string(),
            origin: origin(
                "primary_hostname",
                cfg.option("primary_hostname").map(|o| o.origin.location()),
            ),
        });
    }
}
