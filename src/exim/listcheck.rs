//! Checks of the lists ACL conditions read (hosts, domains, local_parts, senders, ...).
//!
//! EX190: a list file or lookup file that does not exist. Exim opens it when a client
//! reaches the item, fails, writes `failed to open ...` to the panic log and the process
//! dies (match.c: LOG_PANIC_DIE after a failed Ufopen() of a file item or a failed
//! search_open() of a lookup item): the client gets no reply and the connection drops.

use std::collections::BTreeSet;
use std::path::Path;

use super::lists::{expand, lookup, split};
use super::model::{Cond, Config, ListKind};
use crate::context::Context;
use crate::finding::{Finding, Mta};

/// ACL conditions whose value is a list, and the kind of list.
pub const LIST_CONDITIONS: &[(&str, ListKind)] = &[
    ("hosts", ListKind::Host),
    ("domains", ListKind::Domain),
    ("local_parts", ListKind::LocalPart),
    ("recipients", ListKind::Address),
    ("senders", ListKind::Address),
    ("sender_domains", ListKind::Domain),
];

/// One list item as the condition reaches it, with the named list it came from.
pub struct Reached<'a> {
    pub item: String,
    pub kind: ListKind,
    /// The named list the item is written in (None: in the condition itself).
    pub list: Option<&'a super::model::NamedList>,
}

/// Every item of the condition's list, named lists followed (each once), in order.
pub fn items<'a>(ctx: &Context, cfg: &'a Config, c: &Cond, kind: ListKind) -> Vec<Reached<'a>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    walk(ctx, cfg, c.value(), kind, None, &mut seen, &mut out);
    out
}

fn walk<'a>(
    ctx: &Context,
    cfg: &'a Config,
    value: &str,
    kind: ListKind,
    list: Option<&'a super::model::NamedList>,
    seen: &mut BTreeSet<String>,
    out: &mut Vec<Reached<'a>>,
) {
    let Ok(v) = expand(ctx, value) else {
        return;
    };
    for raw in split(&v) {
        let item = raw.strip_prefix('!').unwrap_or(&raw).trim_start();
        if let Some(name) = item.strip_prefix('+') {
            if let Some(named) = cfg.list(name) {
                if seen.insert(name.to_string()) {
                    walk(ctx, cfg, &named.value, kind, Some(named), seen, out);
                }
                continue;
            }
        }
        out.push(Reached {
            item: item.to_string(),
            kind,
            list,
        });
    }
}

/// Lookup types that open a file named by their argument (single-key, file based).
fn file_lookup(ty: &str) -> bool {
    // `partial2-lsearch*@`, `net24-cdb`, `lsearch,ret=key`: the type after the prefixes.
    let base = ty.rsplit('-').next().unwrap_or(ty);
    let base = base
        .split(',')
        .next()
        .unwrap_or(base)
        .trim_end_matches(['*', '@']);
    matches!(
        base,
        "lsearch"
            | "wildlsearch"
            | "nwildlsearch"
            | "iplsearch"
            | "cdb"
            | "dbm"
            | "dbmnz"
            | "dbmjz"
    )
}

/// The file an item makes Exim open, if any: a `/path` item or a file lookup.
fn opened_file(item: &str) -> Option<(String, bool)> {
    if item.starts_with('/') {
        return Some((item.to_string(), false));
    }
    let (ty, arg) = lookup(item)?;
    (file_lookup(ty) && arg.starts_with('/')).then(|| (arg.to_string(), true))
}

/// EX190: list files and lookup files an ACL condition reads that are not on the server.
pub fn missing_files(ctx: &Context, cfg: &Config, out: &mut Vec<Finding>) {
    // Only where absolute paths name this server's files (see Config::own_files).
    if !cfg.own_files {
        return;
    }
    let mut done = BTreeSet::new();
    for acl in &cfg.acls {
        for stmt in &acl.stmts {
            for c in &stmt.conds {
                let Some(&(_, kind)) = LIST_CONDITIONS.iter().find(|(n, _)| *n == c.name) else {
                    continue;
                };
                for r in items(ctx, cfg, c, kind) {
                    let Some((path, is_lookup)) = opened_file(&r.item) else {
                        continue;
                    };
                    if ctx.exists(&ctx.root.resolve(Path::new(&path)))
                        || !done.insert((path.clone(), c.origin.file.clone(), c.origin.line))
                    {
                        continue;
                    }
                    out.push(missing(acl, c, &r, &path, is_lookup));
                }
            }
        }
    }
}

fn missing(acl: &super::model::Acl, c: &Cond, r: &Reached, path: &str, is_lookup: bool) -> Finding {
    let log = if is_lookup {
        format!("failed to open {path} for linear search: No such file or directory")
    } else {
        format!("failed to open {path} when checking \"...\": No such file or directory")
    };
    let from = match r.list {
        Some(l) => format!(
            " (item `{}` of {} {}, {})",
            r.item,
            kind_word(r.kind),
            l.name,
            l.origin.describe()
        ),
        None => format!(" (item `{}`)", r.item),
    };
    let who = if r.kind == ListKind::Host && is_lookup && !r.item.starts_with("net") {
        "every client with a reverse DNS name that reaches this condition"
    } else {
        "every client that reaches this condition"
    };
    Finding::new(
        "EX190",
        Mta::Exim,
        format!(
            "`{}` in ACL {} reads {path}{from}, which does not exist: {who} (and is not matched by an earlier item) gets no reply; Exim logs `{log}` to its panic log and the process handling the connection exits, so the connection drops. Create the file (an empty one matches nothing) or guard the item: `${{if exists{{{path}}}{{{}}}}}`",
            c.render(),
            acl.name,
            r.item,
        ),
    )
    .at(c.origin.item(&r.item).location())
    .service(super::SERVICE)
}

fn kind_word(k: ListKind) -> &'static str {
    match k {
        ListKind::Host => "hostlist",
        ListKind::Domain => "domainlist",
        ListKind::LocalPart => "localpartlist",
        ListKind::Address => "addresslist",
    }
}

/// EX191 / EX192: host and domain list items that are separator mistakes or IP wildcards.
/// Exim lists are separated by `:` unless the list starts with `<` and another character
/// (spec chapter 6, "List construction", "Changing list separators"); a host list item that
/// is not an address is a name pattern (spec chapter 10, "Host list patterns that match by
/// host name"), which verify.c check_host() can only compare with the client's host name.
pub fn list_items(ctx: &Context, cfg: &Config, out: &mut Vec<Finding>) {
    let mut done = BTreeSet::new();
    for l in &cfg.lists {
        if matches!(l.kind, ListKind::Host | ListKind::Domain) {
            check_list(
                ctx,
                &l.value,
                l.kind,
                &format!("{} {}", kind_word(l.kind), l.name),
                &l.origin,
                &mut done,
                out,
            );
        }
    }
    for acl in &cfg.acls {
        for stmt in &acl.stmts {
            for c in &stmt.conds {
                let kind = match c.name.as_str() {
                    "hosts" => ListKind::Host,
                    "domains" | "sender_domains" => ListKind::Domain,
                    _ => continue,
                };
                check_list(
                    ctx,
                    c.value(),
                    kind,
                    &format!("`{}`", c.render()),
                    &c.origin,
                    &mut done,
                    out,
                );
            }
        }
    }
}

fn check_list(
    ctx: &Context,
    value: &str,
    kind: ListKind,
    what: &str,
    origin: &super::reader::Origin,
    done: &mut BTreeSet<(std::path::PathBuf, usize, String)>,
    out: &mut Vec<Finding>,
) {
    let Ok(v) = expand(ctx, value) else {
        return;
    };
    let items = split(&v);
    let mut v6_reported = false;
    for raw in &items {
        let item = raw.strip_prefix('!').unwrap_or(raw).trim_start();
        if item.starts_with(['^', '/', '+', '$']) || lookup(item).is_some() {
            continue;
        }
        if !done.insert((origin.file.clone(), origin.line, item.to_string())) {
            continue;
        }
        let at = origin.item(item).location();
        if let Some(sep) = item.chars().find(|c| *c == ',' || *c == ';') {
            out.push(separator(item, sep, kind, what).at(at));
        } else if kind == ListKind::Host && !v6_reported && ipv6_piece(item) {
            v6_reported = true;
            out.push(Finding::new(
                "EX191",
                Mta::Exim,
                format!(
                    "{what}: `{item}` is a piece of an IPv6 address: in a list separated by `:` every single colon of an IPv6 address separates items (and `::` stands for one literal colon), so the address is split into pieces that are not addresses; Exim compares them with the client's host name, and for a client without a reverse DNS name it ends the list at that piece, so the items after it (even plain IPv4 networks) never match. Double every colon of IPv6 addresses (`::1` -> `::::1`) or change the separator: `<; 127.0.0.1 ; ::1 ; 10.0.0.0/8`"
                ),
            ).at(at).service(super::SERVICE));
        } else if kind == ListKind::Host {
            if let Some(cidr) = ip_wildcard(item) {
                out.push(Finding::new(
                    "EX192",
                    Mta::Exim,
                    format!(
                        "{what}: `{item}` is not an address range: Exim has no IP wildcards, so it is a host name pattern, compared with the client's name from reverse DNS (never with its address); for a client without one Exim ends the list there. Write the network as `{cidr}`"
                    ),
                ).at(at).service(super::SERVICE));
            }
        }
    }
}

fn separator(item: &str, sep: char, kind: ListKind, what: &str) -> Finding {
    let fixed = item
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" : ");
    let effect = match (kind, super::lists::host_item_class(item)) {
        (ListKind::Host, super::lists::HostItem::Malformed) => "Exim reads it as a malformed IPv4 address and ends the list there (checked with exim -bh 4.96), so none of these networks, nor any item after it, ever matches".to_string(),
        (ListKind::Host, _) => "Exim compares it with the client's host name from reverse DNS, which never contains a `,` or `;`, and for a client without a name it ends the list there; none of these hosts matches".to_string(),
        _ => "no domain is called that, so none of these domains matches".to_string(),
    };
    Finding::new(
        "EX191",
        Mta::Exim,
        format!(
            "{what}: `{item}` is one item, not {}: Exim lists are separated by `:` (or by the character after a leading `<`, as in `<{sep} a {sep} b`), not `{sep}`; {effect}. Write `{fixed}`",
            if sep == ',' { "a comma-separated list" } else { "a semicolon-separated list" }
        ),
    )
    .service(super::SERVICE)
}

/// A piece of an IPv6 address left by colon splitting: hex digits and colons (maybe a
/// mask), at least one colon, and not an address itself.
fn ipv6_piece(item: &str) -> bool {
    item.contains(':')
        && item
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.' | '/'))
        && super::lists::parse_net(item).is_none()
}

/// `192.168.1.*` / `10.*`: the CIDR network the writer meant.
fn ip_wildcard(item: &str) -> Option<String> {
    let parts: Vec<&str> = item.split('.').collect();
    let fixed: Vec<u8> = parts
        .iter()
        .take_while(|p| **p != "*")
        .map(|p| p.parse::<u8>().ok())
        .collect::<Option<Vec<u8>>>()?;
    if fixed.is_empty() || fixed.len() >= 4 || parts[fixed.len()..].iter().any(|p| *p != "*") {
        return None;
    }
    let mut octets = fixed.clone();
    octets.resize(4, 0);
    Some(format!(
        "{}.{}.{}.{}/{}",
        octets[0],
        octets[1],
        octets[2],
        octets[3],
        fixed.len() * 8
    ))
}
