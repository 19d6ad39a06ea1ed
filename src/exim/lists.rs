//! Exim lists: splitting (`:` separator, `::` escape, `<;` separator change), the small part
//! of string expansion a static model can do, and matching host, domain, local-part and
//! address lists the way match.c does (first match wins, `!` negates, a list that ends in a
//! negative item matches what none of its items matched).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipnet::IpNet;

use super::model::{Config, ListKind};
use crate::context::Context;

/// What list matching would otherwise compute again for every cell of the relay matrix:
/// compiled patterns and the server's /etc/hosts. It lives on the Exim model
/// (`Config::list_cache`), so nothing is kept between runs or shared between configurations.
#[derive(Debug, Default)]
pub struct ListCache {
    /// By (pattern, caseless); None when the Rust engine cannot handle the pattern.
    regex: Mutex<HashMap<(String, bool), Option<regex::Regex>>>,
    /// /etc/hosts of the server (live or snapshot) by real path: None when it cannot be read.
    hosts: Mutex<HashMap<PathBuf, Option<HostsEntries>>>,
    /// The server's name when primary_hostname is not set (`exim::primary_hostname`), read
    /// once: every evaluated envelope asks for it.
    pub host_name: std::sync::OnceLock<String>,
}

/// A copy of a configuration starts with an empty cache (it is only a cache).
impl Clone for ListCache {
    fn clone(&self) -> ListCache {
        ListCache::default()
    }
}

impl ListCache {
    /// Compile (once) an Exim/PCRE pattern.
    pub fn regex(&self, pat: &str, caseless: bool) -> Option<regex::Regex> {
        let mut c = self.regex.lock().unwrap_or_else(|e| e.into_inner());
        c.entry((pat.to_string(), caseless))
            .or_insert_with(|| regex(pat, caseless))
            .clone()
    }

    /// (name, address) pairs of the server's /etc/hosts; None when the file is not there.
    fn hosts_file(&self, ctx: &Context) -> Option<HostsEntries> {
        let real = ctx.root.resolve(Path::new("/etc/hosts"));
        let mut c = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        c.entry(real.clone())
            .or_insert_with(|| {
                let text = ctx.root.read_to_string(&real).ok()?;
                let mut out = Vec::new();
                for l in text.lines() {
                    let l = l.split('#').next().unwrap_or("");
                    let mut it = l.split_whitespace();
                    let Some(ip) = it.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
                        continue;
                    };
                    for n in it {
                        out.push((n.to_ascii_lowercase(), ip));
                    }
                }
                Some(out)
            })
            .clone()
    }
}

/// Compile an Exim/PCRE pattern; None when the Rust engine cannot handle it.
pub fn regex(pat: &str, caseless: bool) -> Option<regex::Regex> {
    regex::RegexBuilder::new(pat)
        .case_insensitive(caseless)
        .build()
        .ok()
}

/// Three-valued match result: the static model cannot always know. `Fatal` is a fourth
/// outcome: Exim cannot open a list or lookup file it must read, writes the message (the
/// text Exim logs) to the panic log and the process dies (match.c: `log_write(0,
/// LOG_MAIN|LOG_PANIC_DIE, ...)` after a failed Ufopen() of a file item, and after a failed
/// search_open() of a lookup item, whose lsearch_open() says "for linear search"). The SMTP
/// client gets no reply: `exim -bh` 4.96 prints the LOG line and exits with status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum M {
    Yes,
    No,
    Unknown(String),
    Fatal(String),
}

/// string_nextinlist(): split a list. Leading/trailing white space of items is dropped, a
/// doubled separator stands for one literal separator character.
pub fn split(list: &str) -> Vec<String> {
    let s = list.trim_start();
    let mut sep = ':';
    let mut rest = s;
    let mut chars = s.chars();
    if chars.next() == Some('<') {
        if let Some(c) = chars.next() {
            if !c.is_ascii_alphanumeric() && !c.is_whitespace() {
                sep = c;
                rest = &s[1 + c.len_utf8()..];
            }
        }
    }
    let mut items = Vec::new();
    let mut it = rest.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.peek().is_none() {
            break;
        }
        let mut item = String::new();
        while let Some(c) = it.next() {
            if c == sep {
                if it.peek() == Some(&sep) {
                    it.next();
                    item.push(sep);
                    continue;
                }
                break;
            }
            item.push(c);
        }
        items.push(item.trim_end().to_string());
    }
    items
}

/// Expand the constructs a static model can decide: text without `$`, and
/// `${if exists{PATH}{A}{B}}` (Debian's idiom for optional files). Anything else is unknown.
pub fn expand(ctx: &Context, s: &str) -> Result<String, String> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    // \N...\N protects text (typically a regex ending in `$`) from expansion.
    if s.contains("\\N") {
        let mut out = String::new();
        for (k, part) in s.split("\\N").enumerate() {
            if k % 2 == 1 {
                out.push_str(part);
            } else {
                out.push_str(&expand(ctx, part)?);
            }
        }
        return Ok(out);
    }
    let t = s.trim();
    if let Some(inner) = t.strip_prefix("${if").and_then(|r| r.strip_suffix('}')) {
        let inner = inner.trim_start();
        if let Some(args) = inner.strip_prefix("exists") {
            let groups = brace_groups(args.trim_start());
            if (2..=3).contains(&groups.len()) && !groups[0].contains('$') {
                // The file system does not change during one run: the context remembers.
                let exists = ctx.exists(&ctx.root.resolve(Path::new(groups[0].trim())));
                let pick = if exists {
                    groups[1].clone()
                } else {
                    groups.get(2).cloned().unwrap_or_default()
                };
                return expand(ctx, &pick);
            }
        }
    }
    Err(format!("the expansion `{}`", shorten(t)))
}

/// An expression short enough to read in a trace, never cut in the middle (issue #16 item
/// 8): a long one keeps its outer structure and elides the innermost brace groups as
/// `{...}`, deepest first, so that braces stay balanced and the operator stays visible.
fn shorten(s: &str) -> String {
    const WIDE: usize = 120;
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let deepest = one
        .chars()
        .scan(0usize, |d, c| {
            match c {
                '{' => *d += 1,
                '}' => *d = d.saturating_sub(1),
                _ => {}
            }
            Some(*d)
        })
        .max()
        .unwrap_or(0);
    let mut out = one;
    let mut level = deepest;
    while out.chars().count() > WIDE && level >= 2 {
        out = elide_below(&out, level);
        level -= 1;
    }
    out
}

/// `s` with the contents of every brace group that opens at nesting depth `level` (1 is the
/// outermost) replaced by `...`.
fn elide_below(s: &str, level: usize) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth <= level {
                    out.push('{');
                }
                if depth == level {
                    out.push_str("...");
                }
            }
            '}' => {
                if depth <= level {
                    out.push('}');
                }
                depth = depth.saturating_sub(1);
            }
            _ if depth < level => out.push(c),
            _ => {}
        }
    }
    out
}

/// `{a}{b}{c}` -> ["a", "b", "c"], honouring nesting and backslash escapes.
fn brace_groups(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut cur = String::new();
    let mut esc = false;
    for c in s.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' => {
                esc = true;
                if depth > 0 {
                    cur.push(c);
                }
            }
            '{' => {
                if depth > 0 {
                    cur.push(c);
                }
                depth += 1;
            }
            '}' => {
                if depth == 0 {
                    return out;
                }
                depth -= 1;
                if depth == 0 {
                    out.push(std::mem::take(&mut cur));
                } else {
                    cur.push(c);
                }
            }
            c if depth > 0 => cur.push(c),
            c if c.is_whitespace() => {}
            _ => return out,
        }
    }
    out
}

/// The subject of a match.
pub struct Subject<'a> {
    pub ip: Option<IpAddr>,
    /// Verified reverse DNS name of the client, when known.
    pub host_name: Option<&'a str>,
    pub primary_hostname: &'a str,
}

pub struct Matcher<'a> {
    pub ctx: &'a Context,
    pub cfg: &'a Config,
    pub subject: Subject<'a>,
    /// What a decided match rested on (an /etc/hosts entry, an assumed standard entry), for
    /// the trace.
    pub notes: std::cell::RefCell<Vec<String>>,
}

/// (name, address) pairs of one /etc/hosts.
type HostsEntries = Vec<(String, IpAddr)>;

/// Is `item` a lookup (`type;arg`, possibly `partial-`/`net-` prefixed)?
pub fn lookup(item: &str) -> Option<(&str, &str)> {
    let (ty, arg) = item.split_once(';')?;
    let ty = ty.trim();
    if ty.is_empty()
        || !ty
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*' || c == '@' || c == '_')
    {
        return None;
    }
    Some((ty, arg.trim()))
}

/// Whether a read error means the file is surely absent on the server: only where absolute
/// paths name the server's own files (`Config::own_files`) and the file is not there.
fn absent(cfg: &Config, e: &std::io::Error) -> bool {
    cfg.own_files && e.kind() == std::io::ErrorKind::NotFound
}

fn file_items(ctx: &Context, cfg: &Config, path: &str) -> Result<Vec<String>, M> {
    let real = ctx.root.resolve(Path::new(path));
    let text = ctx.root.read_to_string(&real).map_err(|e| {
        if absent(cfg, &e) {
            M::Fatal(format!(
                "failed to open {path} when checking \"...\": No such file or directory"
            ))
        } else {
            M::Unknown(format!("the list file {path} ({e})"))
        }
    })?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// Keys of an lsearch-style file (first field, up to `:` or white space).
pub fn lsearch_keys(ctx: &Context, path: &str) -> Result<Vec<String>, String> {
    let real = ctx.root.resolve(Path::new(path));
    let text = ctx
        .root
        .read_to_string(&real)
        .map_err(|e| format!("the lookup file {path} ({e})"))?;
    let mut keys = Vec::new();
    for l in text.lines() {
        if l.starts_with('#') || l.trim().is_empty() || l.starts_with([' ', '\t']) {
            continue;
        }
        let k = if let Some(r) = l.strip_prefix('"') {
            r.split('"').next().unwrap_or("").to_string()
        } else {
            l.split(|c: char| c == ':' || c.is_whitespace())
                .next()
                .unwrap_or("")
                .to_string()
        };
        keys.push(k);
    }
    Ok(keys)
}

/// iplsearch keys may be `1.2.3.4`, `1.2.3.0/24`, `"::1"`, `<;...`.
fn ip_key(k: &str) -> Option<IpNet> {
    let k = k.trim().trim_matches('"');
    if let Ok(n) = k.parse::<IpNet>() {
        return Some(n);
    }
    k.parse::<IpAddr>().ok().map(IpNet::from)
}

pub fn parse_net(item: &str) -> Option<IpNet> {
    ip_key(item)
}

impl<'a> Matcher<'a> {
    /// Match a whole list (expanded first, as Exim does).
    pub fn list(&self, kind: ListKind, list: &str, value: &str, depth: usize) -> M {
        let list = match expand(self.ctx, list) {
            Ok(l) => l,
            Err(e) => return M::Unknown(e),
        };
        let items = split(&list);
        self.items(kind, &items, value, depth)
    }

    fn items(&self, kind: ListKind, items: &[String], value: &str, depth: usize) -> M {
        let mut last_negated = false;
        // What an item that needs missing information does (+ignore_unknown skips it,
        // +include_unknown matches, by default the whole list fails): match.c, case ERROR.
        let mut unknown = Unknown::Fail;
        for (i, raw) in items.iter().enumerate() {
            let (neg, item) = match raw.strip_prefix('!') {
                Some(r) => (true, r.trim_start()),
                None => (false, raw.as_str()),
            };
            if kind == ListKind::Host && self.subject.ip.is_some() {
                match item {
                    "+ignore_unknown" => unknown = Unknown::Ignore,
                    "+include_unknown" => unknown = Unknown::Include,
                    _ => {}
                }
                let ends = match unknown {
                    Unknown::Fail => Some(M::No),
                    Unknown::Include => Some(M::Yes),
                    Unknown::Ignore => None,
                };
                match host_item_class(item) {
                    HostItem::Malformed => match ends {
                        Some(m) => return m,
                        None => continue,
                    },
                    HostItem::OddLiteral if self.subject.host_name.is_none() => {
                        let rest = self.items(kind, &items[i + 1..], value, depth);
                        return self.needs_name(item, rest, ends);
                    }
                    _ => {}
                }
            }
            last_negated = neg;
            let m = self.item(kind, item, value, depth);
            match m {
                M::Yes => return if neg { M::No } else { M::Yes },
                M::No => {}
                M::Unknown(r) => return M::Unknown(r),
                M::Fatal(r) => return M::Fatal(r),
            }
        }
        if last_negated {
            M::Yes
        } else {
            M::No
        }
    }

    /// A host list item that can only be compared with the client's host name and can never
    /// equal one (`:1` left by a single-colon IPv6 address, `a.example, b.example`), while
    /// the name is not known: with a name the item does not match and the rest of the list
    /// (`rest`) decides; without one Exim ends the list (`ends`: None when +ignore_unknown
    /// skips the item).
    fn needs_name(&self, item: &str, rest: M, ends: Option<M>) -> M {
        let Some(without) = ends else {
            return rest;
        };
        match (&rest, &without) {
            (r, w) if r == w => rest,
            (M::Yes, M::No) => M::Unknown(format!(
                "the client's host name from reverse DNS (hosts item {item} needs it; without one Exim ends the list here)"
            )),
            (M::No, M::Yes) => M::Unknown(format!(
                "the client's lack of a host name from reverse DNS (hosts item {item} after +include_unknown)"
            )),
            _ => rest,
        }
    }

    fn item(&self, kind: ListKind, item: &str, value: &str, depth: usize) -> M {
        if item == "*" {
            return M::Yes;
        }
        // Host list options that only change what a failed lookup means: the lookups they
        // qualify are undecidable here anyway.
        if kind == ListKind::Host
            && matches!(
                item,
                "+include_unknown" | "+ignore_unknown" | "+include_defer" | "+ignore_defer"
            )
        {
            return M::No;
        }
        if let Some(name) = item.strip_prefix('+') {
            if depth > 20 {
                return M::Unknown(format!("named list +{name} refers to itself"));
            }
            return match self.cfg.list(name) {
                Some(l) => self.list(kind, &l.value, value, depth + 1),
                // Exim: "unknown named list" is a configuration error at use time (defer).
                None => M::Unknown(format!("the undefined named list +{name}")),
            };
        }
        if item.starts_with('/') {
            return match file_items(self.ctx, self.cfg, item) {
                Ok(v) => self.items(kind, &v, value, depth + 1),
                Err(m) => m,
            };
        }
        if let Some((ty, arg)) = lookup(item) {
            return self.lookup_item(kind, ty, arg, value);
        }
        match kind {
            ListKind::Host => self.host_item(item),
            ListKind::Domain => self.domain_item(item, value),
            ListKind::LocalPart => self.string_item(item, value),
            ListKind::Address => self.address_item(item, value, depth),
        }
    }

    fn lookup_item(&self, kind: ListKind, ty: &str, arg: &str, value: &str) -> M {
        let base = ty.trim_start_matches("partial-").trim_start_matches("net-");
        let base = base.trim_end_matches(['*', '@']);
        let file_based = matches!(
            base,
            "lsearch" | "iplsearch" | "wildlsearch" | "nwildlsearch"
        );
        if !file_based {
            if base == "dsearch" && kind == ListKind::Domain {
                let real = self.ctx.root.resolve(Path::new(arg));
                return if real.join(value).exists() {
                    M::Yes
                } else {
                    M::No
                };
            }
            return M::Unknown(format!("the lookup {ty};{}", shorten(arg)));
        }
        // In a host list only a `net-` lookup is keyed by the address; any other single-key
        // lookup (iplsearch included) is keyed by the host name, so Exim needs the name
        // before it opens the file (spec chapter "Domain, host, address, and local part
        // lists", sections "Host list patterns for single-key lookups by host address" and
        // "... by host name"; checked with exim -bh 4.96: `iplsearch;/missing` with no
        // reverse name fails the item without opening the file).
        if kind == ListKind::Host {
            match self.subject.ip {
                None => return M::No,
                Some(_) if !ty.starts_with("net") && self.subject.host_name.is_none() => {
                    return self.host_name_match(&format!("{ty};{arg}"), |_| false);
                }
                Some(_) => {}
            }
        }
        let keys = match lsearch_keys(self.ctx, arg) {
            Ok(k) => k,
            Err(e) => {
                let missing = self.cfg.own_files
                    && !self.ctx.root.resolve(Path::new(arg)).exists()
                    && arg.starts_with('/');
                return if missing {
                    M::Fatal(format!(
                        "failed to open {arg} for linear search: No such file or directory"
                    ))
                } else {
                    M::Unknown(e)
                };
            }
        };
        match kind {
            ListKind::Host => {
                let ip = match self.subject.ip {
                    Some(ip) => ip,
                    None => return M::No,
                };
                if ty.starts_with("net") {
                    let hit = keys.iter().any(|k| match ip_key(k) {
                        Some(n) => {
                            base == "iplsearch" && n.contains(&ip)
                                || n.addr() == ip && n.prefix_len() == n.max_prefix_len()
                        }
                        None => false,
                    });
                    if hit {
                        M::Yes
                    } else {
                        M::No
                    }
                } else {
                    // A plain lsearch in a host list looks up the host *name*.
                    self.host_name_match(&format!("{ty};{arg}"), |n| {
                        keys.iter().any(|k| k.eq_ignore_ascii_case(n))
                    })
                }
            }
            _ => {
                let v = value.to_ascii_lowercase();
                let partial = ty.starts_with("partial");
                let hit = keys.iter().any(|k| {
                    let k = k.to_ascii_lowercase();
                    k == v
                        || (partial
                            && (v.ends_with(&format!(".{k}"))
                                || k.strip_prefix("*.")
                                    .is_some_and(|s| v.ends_with(&format!(".{s}")))))
                        || (base.contains("wild") && glob(&k, &v))
                });
                if hit {
                    M::Yes
                } else {
                    M::No
                }
            }
        }
    }

    /// An item matched against the client's host name (wildcards, regular expressions,
    /// name lookups). Exim finds the name by a reverse DNS lookup (verified forwards); when
    /// that fails the whole list fails to match unless +include_unknown/+ignore_unknown, and a
    /// temporary DNS error defers (Exim specification, chapter "Domain, host, address, and
    /// local part lists", sections "Host list patterns that match by host name" and
    /// "Behaviour when an IP address or name cannot be found"). The static model only knows
    /// the name when simulate is given --client-name.
    fn host_name_match(&self, item: &str, f: impl Fn(&str) -> bool) -> M {
        match self.subject.host_name {
            Some(n) => {
                if f(n) {
                    M::Yes
                } else {
                    M::No
                }
            }
            None => M::Unknown(format!(
                "the client's host name from reverse DNS (hosts item {item} needs it; without one Exim ends the list here)"
            )),
        }
    }

    /// A plain host name in a host list (`localhost`, `mail.example.net`, `@` for the primary
    /// host name): Exim looks up the name's addresses (forward lookup through the system
    /// resolver: /etc/hosts, then DNS) and compares them with the client's address; no reverse
    /// lookup is involved (same chapter, "Host list patterns that match by IP address").
    fn host_by_name(&self, name: &str, ip: IpAddr) -> M {
        let name = name.to_ascii_lowercase();
        match self.cfg.list_cache.hosts_file(self.ctx) {
            Some(entries) => {
                let addrs: Vec<IpAddr> = entries
                    .iter()
                    .filter(|(n, _)| *n == name)
                    .map(|(_, a)| *a)
                    .collect();
                if !addrs.is_empty() {
                    self.note(format!(
                        "{name} is {} in /etc/hosts",
                        addrs
                            .iter()
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    return yes(addrs.contains(&ip));
                }
            }
            // A snapshot without etc/hosts: `localhost` still has its standard addresses
            // (Debian's default /etc/hosts; RFC 6761 section 6.3 reserves the name for
            // loopback), which is what Exim's lookup finds on any ordinary server.
            None if name == "localhost" => {
                self.note(
                    "localhost taken as 127.0.0.1 and ::1, the standard /etc/hosts entries (no etc/hosts in this snapshot)"
                        .into(),
                );
                return yes(ip == IpAddr::from([127, 0, 0, 1])
                    || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
            }
            None => {}
        }
        M::Unknown(format!(
            "the DNS lookup of the host name {name} (hosts item)"
        ))
    }

    /// `@[]`: the client is one of the addresses Exim listens on (host_find_interfaces():
    /// local_interfaces and extra_local_interfaces, where a wildcard stands for every address
    /// of every running interface, which a configuration does not show).
    fn own_address(&self, ip: IpAddr) -> M {
        let mut listed: Vec<IpAddr> = Vec::new();
        let mut wildcard = true;
        let mut explicit = false;
        for opt in ["local_interfaces", "extra_local_interfaces"] {
            let Some(o) = self.cfg.option(opt) else {
                continue;
            };
            let Ok(v) = expand(self.ctx, &o.value) else {
                return M::Unknown(format!("the interfaces in {opt} (hosts item @[])"));
            };
            if opt == "local_interfaces" {
                explicit = true;
                wildcard = false;
            }
            for it in split(&v) {
                let it = it.trim().trim_start_matches('[');
                let addr = it.split(']').next().unwrap_or(it);
                let parsed = addr.parse::<IpAddr>().ok().or_else(|| {
                    // `192.0.2.1.25`: address and port joined by a dot.
                    addr.rsplit_once('.').and_then(|(a, _)| a.parse().ok())
                });
                match parsed {
                    Some(a) if a.is_unspecified() => wildcard = true,
                    Some(a) => listed.push(a),
                    None => {
                        return M::Unknown(format!("the interface {it} in {opt} (hosts item @[])"))
                    }
                }
            }
        }
        let loopback =
            ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
        if listed.contains(&ip) || (wildcard && loopback) {
            self.note(format!("{ip} is an address this server listens on"));
            return M::Yes;
        }
        if explicit && !wildcard {
            return M::No;
        }
        M::Unknown(format!(
            "whether {ip} is one of this server's own addresses (hosts item @[])"
        ))
    }

    fn note(&self, n: String) {
        let mut v = self.notes.borrow_mut();
        if !v.contains(&n) {
            v.push(n);
        }
    }

    fn host_item(&self, item: &str) -> M {
        let ip = match self.subject.ip {
            Some(ip) => ip,
            None => return if item.is_empty() { M::Yes } else { M::No },
        };
        if item.is_empty() {
            return M::No; // an empty item matches only locally submitted mail (no host)
        }
        if item == "@[]" {
            return self.own_address(ip);
        }
        if let Some(n) = ip_key(item) {
            return if n.contains(&ip) { M::Yes } else { M::No };
        }
        if item == "@" {
            // The primary host name, looked up like any plain name.
            let p = self.subject.primary_hostname.to_string();
            return self.host_by_name(&p, ip);
        }
        if item.starts_with('^') {
            return match self.cfg.list_cache.regex(item, false) {
                Some(r) => self.host_name_match(item, |n| r.is_match(n)),
                None => M::Unknown(format!("the regular expression {item}")),
            };
        }
        if item.contains('*') {
            return self.host_name_match(item, |n| {
                glob(&item.to_ascii_lowercase(), &n.to_ascii_lowercase())
            });
        }
        if host_item_class(item) == HostItem::OddLiteral {
            // Not a plain name: compared with the client's name, never looked up.
            return self.host_name_match(item, |n| n.eq_ignore_ascii_case(item));
        }
        self.host_by_name(item, ip)
    }

    fn domain_item(&self, item: &str, domain: &str) -> M {
        let d = domain.to_ascii_lowercase();
        if item == "@" {
            return yes(d.eq_ignore_ascii_case(self.subject.primary_hostname));
        }
        if item == "@[]" {
            return M::No;
        }
        if item.starts_with("@mx_") {
            return M::Unknown(format!("the DNS MX lookup {item}"));
        }
        if item.starts_with('^') {
            return match self.cfg.list_cache.regex(item, true) {
                Some(r) => yes(r.is_match(&d)),
                None => M::Unknown(format!("the regular expression {item}")),
            };
        }
        if let Some(suffix) = item.strip_prefix('*') {
            return yes(d.ends_with(&suffix.to_ascii_lowercase()));
        }
        yes(item.eq_ignore_ascii_case(&d))
    }

    fn string_item(&self, item: &str, value: &str) -> M {
        if item.starts_with('^') {
            return match self.cfg.list_cache.regex(item, true) {
                Some(r) => yes(r.is_match(value)),
                None => M::Unknown(format!("the regular expression {item}")),
            };
        }
        if let Some(suffix) = item.strip_prefix('*') {
            return yes(value
                .to_ascii_lowercase()
                .ends_with(&suffix.to_ascii_lowercase()));
        }
        yes(item.eq_ignore_ascii_case(value))
    }

    fn address_item(&self, item: &str, addr: &str, depth: usize) -> M {
        if item.is_empty() {
            return yes(addr.is_empty());
        }
        if item.starts_with('^') {
            return self.string_item(item, addr);
        }
        let (lp, dom) = match addr.rsplit_once('@') {
            Some(x) => x,
            None => (addr, ""),
        };
        match item.rsplit_once('@') {
            None => self.item(ListKind::Domain, item, dom, depth),
            Some((ilp, idom)) => {
                let lp_ok = ilp == "*" || ilp.is_empty() || ilp.eq_ignore_ascii_case(lp);
                if !lp_ok {
                    return M::No;
                }
                self.domain_item(idom, dom)
            }
        }
    }
}

/// What an item that needs unavailable information does to a host list.
#[derive(Clone, Copy)]
enum Unknown {
    Fail,
    Ignore,
    Include,
}

/// How verify.c check_host() reads a host list item that is neither an IP address nor a
/// network (Exim 4.96).
#[derive(Debug, PartialEq, Eq)]
pub enum HostItem {
    /// Digits and dots only, or digits and dots before a `/` (`1.2.3`, `10.0.0.0/8, ...`):
    /// "malformed IPv4 address or address mask", an error that ends the list like a failed
    /// lookup.
    Malformed,
    /// Not a plain name (characters other than letters, digits, `.`, `-`, `_`) and no
    /// wildcard or regular expression: compared literally with the client's host name, which
    /// Exim must find by reverse DNS first.
    OddLiteral,
    /// Anything else: addresses, names, patterns, lookups, files, specials.
    Other,
}

pub fn host_item_class(item: &str) -> HostItem {
    if item.is_empty()
        || matches!(item.as_bytes()[0], b'+' | b'/' | b'@' | b'^' | b'*')
        || item.contains('*')
        || lookup(item).is_some()
        || ip_key(item).is_some()
    {
        return HostItem::Other;
    }
    let digits = item
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(item.len());
    if digits == item.len() || (digits > 0 && item[digits..].starts_with('/')) {
        return HostItem::Malformed;
    }
    if item
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return HostItem::Other;
    }
    HostItem::OddLiteral
}

fn yes(b: bool) -> M {
    if b {
        M::Yes
    } else {
        M::No
    }
}

/// `*` wildcards in host name patterns (`*.example.com`).
fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((a, b)) => {
            s.len() >= a.len() + b.len() && s.starts_with(a) && glob_rest(b, &s[a.len()..])
        }
    }
}

fn glob_rest(pat: &str, s: &str) -> bool {
    if !pat.contains('*') {
        return s.ends_with(pat);
    }
    (0..=s.len()).any(|i| s.is_char_boundary(i) && glob(pat, &s[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_expressions_keep_their_structure() {
        let e = "${lookup{$sender_host_address}lsearch{/etc/exim/a/very/long/path/to/the/relay/hosts/file}{${if eq{$value}{yes}{1}{0}}}{0}}";
        let s = super::shorten(e);
        assert!(s.len() <= 120, "{s}");
        assert!(s.contains("relay/hosts/file"), "{s}");
        assert_eq!(s.matches('{').count(), s.matches('}').count(), "{s}");
        assert!(
            s.starts_with("${lookup{$sender_host_address}lsearch{"),
            "{s}"
        );
        assert_eq!(super::shorten("${env{X}{$value}{}}"), "${env{X}{$value}{}}");
    }

    #[test]
    fn split_handles_separators_and_escapes() {
        assert_eq!(split(" a : b::c :d "), vec!["a", "b:c", "d"]);
        assert_eq!(split("<; 127.0.0.1 ; ::1"), vec!["127.0.0.1", "::1"]);
        assert_eq!(split(":"), vec![""]);
        assert_eq!(split("a :"), vec!["a"]);
        assert_eq!(split(": 127.0.0.1 : ::::1"), vec!["", "127.0.0.1", "::1"]);
        assert!(split("   ").is_empty());
    }

    #[test]
    fn negation_at_the_end_matches_the_rest() {
        let ctx = Context::default();
        let cfg = Config::default();
        let m = Matcher {
            ctx: &ctx,
            cfg: &cfg,
            subject: Subject {
                ip: "203.0.113.5".parse().ok(),
                host_name: None,
                primary_hostname: "mx.example.org",
            },
            notes: Default::default(),
        };
        for (kind, list, item, want) in [
            (ListKind::Domain, "!a.example", "b.example", M::Yes),
            (ListKind::Domain, "!a.example", "a.example", M::No),
            (ListKind::Domain, "@ : x.org", "mx.example.org", M::Yes),
            (ListKind::Host, "192.0.2.0/24 : 203.0.113.0/24", "", M::Yes),
            (ListKind::Host, ": 127.0.0.1", "", M::No),
            (ListKind::Domain, "*.example.org", "a.example.org", M::Yes),
        ] {
            assert_eq!(m.list(kind, list, item, 0), want, "{list} ~ {item}");
        }
        assert!(matches!(
            m.list(ListKind::Host, "${lookup mysql{x}}", "", 0),
            M::Unknown(_)
        ));
    }
}
