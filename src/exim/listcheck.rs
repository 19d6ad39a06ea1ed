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
