//! The qmail rules (QMnnn). Each check reads the model and points at the line that causes
//! the problem, saying what clients will see.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::model::{file_location, has_any, CdbState, Control, FastSet, Model, RulesFile};
use super::policy::{self, auth_mode, is_true_prog, rule_env, Auth, PlainAuth, NOGATEWAY};
use super::runscript::{Launcher, Service};
use crate::context::Context;
use crate::finding::{Finding, Fix, Mta, Severity};
use crate::source::SourceFile;

/// Entries processed per batch in the million-entry checks (bounded memory).
const CHUNK: usize = 4096;

/// At most this many findings of one kind per file; the rest are counted in one summary.
const MAX_PER_FILE: usize = 50;

pub fn run(ctx: &Context, m: &Model, out: &mut Vec<Finding>) {
    if let Some(c) = &m.control {
        rcpthosts_missing_or_empty(c, out);
        // The two million-entry checks are independent: run them side by side.
        let mut stale = Vec::new();
        std::thread::scope(|sc| {
            sc.spawn(|| morercpthosts_stale(c, &mut stale));
            control_syntax(c, out);
            domains_not_accepted(c, out);
        });
        out.extend(stale);
        smtproutes(c, out);
    }
    for r in &m.rules {
        tcprules_syntax(r, out);
        tcprules_stale(ctx, m, r, out);
        never_matching(r, out);
        relayclient_value(r, out);
        broad_relay(ctx, m, r, out);
    }
    for s in &m.services {
        service_env(s, out);
        auth_checks(ctx, m, s, out);
        port_465_without_tls(s, out);
        if !m.standalone {
            rules_not_applied(ctx, m, s, out);
        }
        if !m.standalone {
            rules_cdb_missing(ctx, m, s, out);
        }
    }
}

fn qm(code: &str, msg: impl Into<String>) -> Finding {
    Finding::new(code, Mta::Qmail, msg)
}

fn rcpthosts_missing_or_empty(c: &Control, out: &mut Vec<Finding>) {
    let shown = c.display.join("rcpthosts");
    match &c.rcpthosts {
        None => {
            if c.dir.join("rcpthosts").exists() {
                return; // unreadable: RD001 already says so
            }
            out.push(
                qm(
                    "QM001",
                    "control/rcpthosts does not exist: qmail-smtpd accepts every recipient domain from every client, so anyone can send mail to any domain through this server (open relay)",
                )
                .at(file_location(&shown))
                .help("create control/rcpthosts listing the domains this server receives mail for (every locals and virtualdomains domain); qmail-smtpd reads it per connection. Without rcpthosts, morercpthosts.cdb is ignored too."),
            );
        }
        Some(r) if r.entries.is_empty() => {
            let more = c
                .morercpthosts_cdb
                .cdb()
                .map(|x| !x.is_empty())
                .unwrap_or(false);
            if more {
                return;
            }
            out.push(
                qm(
                    "QM002",
                    format!(
                        "control/rcpthosts lists no domain and morercpthosts.cdb adds none: other servers get `553 {NOGATEWAY}` for every recipient; only clients with RELAYCLIENT or AUTH can send"
                    ),
                )
                .at(r.src.line_location(1))
                .help("list the domains this server receives mail for, one per line"),
            );
        }
        Some(_) => {}
    }
}

/// An entry that qmail compares literally but that can never equal a domain.
fn bad_domain_entry(e: &str) -> Option<&'static str> {
    if !e.bytes().any(|b| b == b'\r' || b == b' ' || b == b'\t') {
        return None;
    }
    if e.contains('\r') {
        Some("ends in a carriage return (Windows line ending): qmail keeps it, so the entry never matches")
    } else if e.starts_with([' ', '\t']) {
        Some("starts with whitespace: qmail keeps leading blanks, so the entry never matches")
    } else if e.contains([' ', '\t']) {
        Some("contains whitespace: qmail compares the whole line, so the entry never matches")
    } else {
        None
    }
}

fn control_syntax(c: &Control, out: &mut Vec<Finding>) {
    let mut lists = vec![];
    if let Some(r) = &c.rcpthosts {
        lists.push(("rcpthosts", r));
    }
    if let Some(r) = &c.morercpthosts {
        lists.push(("morercpthosts", r));
    }
    if let Some(r) = &c.locals {
        lists.push(("locals", r));
    }
    for (name, f) in lists {
        if !(f.blanks || name != "locals" && has_any(&f.src.text, b":")) {
            continue; // the usual case, decided by a few memchr passes over the file
        }
        let mut n = 0;
        for e in &f.entries {
            let text = f.entry(e);
            let why = bad_domain_entry(text).or_else(|| {
                (name != "locals" && text.contains(':')).then_some(
                    "contains ':': this file takes one domain per line, not domain:value",
                )
            });
            if let Some(why) = why {
                bad_entry(out, &mut n, name, text, why, || {
                    f.src.location(e.start as usize, e.end as usize)
                });
            }
        }
        summary(out, "QM015", &f.src, n, name);
    }
    if let Some((src, vds, errs)) = &c.virtualdomains {
        line_errors(out, src, errs, "virtualdomains");
        let mut n = 0;
        let vds: &[_] = if c.virtualdomains_blanks { vds } else { &[] };
        for v in vds {
            let key = v.key.text(&src.text);
            let prepend = v.prepend.text(&src.text);
            let why = bad_domain_entry(key).or_else(|| {
                bad_domain_entry(prepend).map(|_| "has whitespace or a carriage return in its prepend part: deliveries go to a user name with that byte in it")
            });
            if let Some(why) = why {
                bad_entry(out, &mut n, "virtualdomains", key, why, || {
                    src.location(v.key.start as usize, v.prepend.end as usize)
                });
            }
        }
        summary(out, "QM015", src, n, "virtualdomains");
    }
    if let Some((src, _, errs)) = &c.smtproutes {
        line_errors(out, src, errs, "smtproutes");
    }
}

/// QM015 for entry `text` of control file `what`; `n` counts them for the summary, and
/// only the first MAX_PER_FILE of a file are listed.
fn bad_entry(
    out: &mut Vec<Finding>,
    n: &mut usize,
    what: &str,
    text: &str,
    why: &str,
    location: impl FnOnce() -> crate::finding::Location,
) {
    *n += 1;
    if *n <= MAX_PER_FILE {
        out.push(
            qm(
                "QM015",
                format!("{what} entry {:?} {why}", text.trim_end_matches('\r')),
            )
            .at(location()),
        );
    }
}

/// QM015 for the first lines of control file `what` that qmail ignores.
fn line_errors(
    out: &mut Vec<Finding>,
    src: &SourceFile,
    errs: &[super::parse::LineError],
    what: &str,
) {
    for e in errs.iter().take(MAX_PER_FILE) {
        out.push(
            qm("QM015", format!("{what} line {}: {}", e.line, e.message))
                .at(src.location(e.start, e.end)),
        );
    }
}

fn summary(out: &mut Vec<Finding>, code: &str, src: &SourceFile, n: usize, what: &str) {
    if n > MAX_PER_FILE {
        out.push(
            qm(
                code,
                format!(
                    "{} more {what} entries like the ones above ({n} in all); only the first {MAX_PER_FILE} are listed",
                    n - MAX_PER_FILE
                ),
            )
            .at(src.line_location(1)),
        );
    }
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

fn morercpthosts_stale(c: &Control, out: &mut Vec<Finding>) {
    let Some(src) = &c.morercpthosts else { return };
    let cdb_shown = c.display.join("morercpthosts.cdb");
    let n = src.entries.len();
    match &c.morercpthosts_cdb {
        CdbState::Missing => {
            if n == 0 {
                return;
            }
            out.push(
                qm(
                    "QM004",
                    format!(
                        "morercpthosts lists {n} domain(s) but morercpthosts.cdb does not exist: qmail-smtpd reads only the cdb, so mail for them from other servers gets `553 {NOGATEWAY}`"
                    ),
                )
                .at(src.src.line_location(src.entries[0].line as usize))
                .help("run qmail-newmrh to build control/morercpthosts.cdb"),
            );
        }
        CdbState::Unreadable(e) => {
            out.push(
                qm(
                    "QM004",
                    format!(
                        "{} cannot be read ({e}): qmail-smtpd answers `421 unable to read controls (#4.3.0)` to recipients not in rcpthosts",
                        cdb_shown.display()
                    ),
                )
                .at(file_location(&cdb_shown))
                .help("rebuild it with qmail-newmrh"),
            );
        }
        CdbState::Ok(cdb, cdb_time) => {
            // qmail-newmrh lowercases every line and adds the records in file order, so an
            // up-to-date cdb holds the source's domains in the same order: the loader
            // compared the two in lockstep as it streamed the cdb. Lookups only from here.
            let (missing_n, missing, extra_n, extra) = if c.morercpthosts_cdb_same {
                (0, Vec::new(), 0, Vec::new())
            } else {
                compare_by_lookup(src, cdb)
            };
            if missing_n == 0 && extra_n == 0 {
                return;
            }
            let newer = match (
                std::fs::metadata(&src.src.real)
                    .and_then(|m| m.modified())
                    .ok(),
                cdb_time,
            ) {
                (Some(s), Some(c)) if s > *c => {
                    " morercpthosts was edited after the cdb was built, and"
                }
                _ => "",
            };
            let mut msg = format!(
                "morercpthosts and morercpthosts.cdb differ:{newer} qmail-smtpd uses only the cdb."
            );
            if missing_n > 0 {
                msg.push_str(&format!(
                    " {missing_n} domain(s) of morercpthosts are not in the cdb (e.g. {}): mail for them gets `553 {NOGATEWAY}`.",
                    missing.iter().map(|m| format!("{} (line {})", m.0, m.1)).collect::<Vec<_>>().join(", ")
                ));
            }
            if extra_n > 0 {
                msg.push_str(&format!(
                    " {extra_n} domain(s) in the cdb are no longer in morercpthosts (e.g. {}): they are still accepted.",
                    extra.join(", ")
                ));
            }
            let line = missing.first().map(|m| m.1).unwrap_or(1);
            out.push(
                qm("QM004", msg)
                    .at(src.src.line_location(line))
                    .help("run qmail-newmrh to rebuild morercpthosts.cdb from morercpthosts"),
            );
        }
    }
}

/// Source domains missing from the cdb, and cdb domains missing from the source: each
/// source domain is looked up (in batches) and the record it finds is marked; unmarked
/// records are domains only the cdb has. No set of a million strings.
#[allow(clippy::type_complexity)]
fn compare_by_lookup(
    src: &super::model::DomainFile,
    cdb: &super::cdb::Cdb,
) -> (usize, Vec<(String, usize)>, usize, Vec<String>) {
    let mut hit = vec![0u64; cdb.size() / 8 / 64 + 1];
    let mut missing = Vec::new();
    let mut missing_n = 0usize;
    let mut found = Vec::with_capacity(CHUNK);
    for entries in src.entries.chunks(CHUNK) {
        let keys: Vec<Cow<'_, str>> = entries.iter().map(|e| lower(src.entry(e))).collect();
        let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        found.clear();
        cdb.find_batch(&refs, &mut found);
        for (i, f) in found.iter().enumerate() {
            match f {
                Some(p) => {
                    let b = p >> 3;
                    if let Some(w) = hit.get_mut(b / 64) {
                        *w |= 1 << (b % 64);
                    }
                }
                None => {
                    missing_n += 1;
                    if missing.len() < 5 {
                        missing.push((keys[i].to_string(), entries[i].line as usize));
                    }
                }
            }
        }
    }
    let mut extra = Vec::new();
    let mut extra_n = 0usize;
    for (pos, r) in cdb.records_at() {
        let b = pos >> 3;
        let marked = hit
            .get(b / 64)
            .map(|w| w & (1 << (b % 64)) != 0)
            .unwrap_or(false);
        // A later duplicate of a key is never found by a lookup: not "extra".
        if !marked && cdb.find(r.key) == Some(pos) {
            extra_n += 1;
            if extra.len() < 5 {
                extra.push(String::from_utf8_lossy(r.key).to_string());
            }
        }
    }
    (missing_n, missing, extra_n, extra)
}

/// The domain part of a locals / virtualdomains key (`user@domain` -> domain).
fn key_domain(k: &str) -> &str {
    // A plain byte loop: keys are short, a memrchr call costs more than it saves.
    match k.bytes().rposition(|b| b == b'@') {
        Some(i) => &k[i + 1..],
        None => k,
    }
}

/// Keys (locals entries or virtualdomains keys) whose domain rcpthosts and
/// morercpthosts.cdb refuse, as (start, end) byte ranges, in order. `keys` yields
/// (key, start, end).
///
/// Hosting panels (vpopmail's vadddomain, Plesk) add a domain to morercpthosts and to
/// virtualdomains together, so the two lists usually run in the same order: a cursor walks
/// the morercpthosts entries known to be in the cdb (`Control::morercpthosts_cdb_prefix`)
/// and a key equal to the entry under it is accepted without a lookup. Keys that do not
/// line up are looked up as before; the answers are the same either way. `cursor` is where
/// the walk starts (the index of the first key, for a list checked in parts).
fn refused<'a>(
    c: &Control,
    blanks: bool,
    keys: impl Iterator<Item = (&'a str, usize, usize)>,
    mut cursor: usize,
) -> Vec<(usize, usize, &'a str)> {
    let (text, known) = match &c.morercpthosts {
        Some(f) if c.rcpthosts.is_some() => (
            f.src.text.as_str(),
            f.entries.get(..c.morercpthosts_cdb_prefix).unwrap_or(&[]),
        ),
        _ => ("", &[][..]),
    };
    let mut keys = keys.filter_map(|(k, start, end)| {
        let d = key_domain(k);
        let skip = d.is_empty()
            || d.eq_ignore_ascii_case("localhost")
            || d.starts_with('[')
            || (blanks && bad_domain_entry(d).is_some());
        if skip {
            return None;
        }
        if let Some(e) = known.get(cursor) {
            if e.text(text).eq_ignore_ascii_case(d) {
                cursor += 1;
                return None; // in morercpthosts.cdb: accepted
            }
        }
        Some((d, start, end))
    });
    let mut out = Vec::new();
    let mut chunk: Vec<(&str, usize, usize)> = Vec::with_capacity(CHUNK);
    let mut domains: Vec<&str> = Vec::with_capacity(CHUNK);
    loop {
        chunk.clear();
        chunk.extend(keys.by_ref().take(CHUNK));
        if chunk.is_empty() {
            return out;
        }
        domains.clear();
        domains.extend(chunk.iter().map(|x| x.0));
        let ok = super::rcpthosts::rcpt_accepts_batch(c, &domains);
        out.extend(
            chunk
                .iter()
                .zip(ok)
                .filter(|(_, ok)| !ok)
                .map(|(x, _)| (x.1, x.2, x.0)),
        );
    }
}

/// A file's refused keys: (file name, source, (start, end, domain) per key).
type RefusedList<'a> = (&'a str, &'a SourceFile, Vec<(usize, usize, &'a str)>);

fn domains_not_accepted(c: &Control, out: &mut Vec<Finding>) {
    if c.rcpthosts.is_none() {
        return;
    }
    let mut lists: Vec<RefusedList<'_>> = Vec::new();
    if let Some(l) = &c.locals {
        let keys = l
            .entries
            .iter()
            .map(|e| (l.entry(e), e.start as usize, e.end as usize));
        lists.push(("locals", &l.src, refused(c, l.blanks, keys, 0)));
    }
    if let Some((src, vds, _)) = &c.virtualdomains {
        // The biggest list is checked in two halves side by side.
        let (a, b) = vds.split_at(vds.len() / 2);
        let blanks = c.virtualdomains_blanks;
        let text = &src.text;
        let (mut ra, rb) = std::thread::scope(|sc| {
            let hb = sc.spawn(|| {
                refused(
                    c,
                    blanks,
                    b.iter()
                        .map(|v| (v.key.text(text), v.key.start as usize, v.key.end as usize)),
                    a.len(),
                )
            });
            let ra = refused(
                c,
                blanks,
                a.iter()
                    .map(|v| (v.key.text(text), v.key.start as usize, v.key.end as usize)),
                0,
            );
            (ra, hb.join().unwrap_or_default())
        });
        ra.extend(rb);
        lists.push(("virtualdomains", src, ra));
    }
    // Built only when something is refused: is the domain in morercpthosts (not its cdb)?
    // Then the cause is the stale or missing cdb, which QM004 reports with its fix: one
    // finding per cause, so no QM003 for it.
    let mut more_src: Option<FastSet<Cow<'_, str>>> = None;
    for (what, src, bad) in lists {
        let mut n = 0usize;
        for &(start, end, d) in &bad {
            let set = more_src.get_or_insert_with(|| {
                c.morercpthosts
                    .as_ref()
                    .map(|f| f.entries.iter().map(|e| lower(f.entry(e))).collect())
                    .unwrap_or_default()
            });
            if set.contains(&Cow::Owned(d.to_ascii_lowercase())) {
                continue;
            }
            n += 1;
            if n > MAX_PER_FILE {
                continue;
            }
            let shown = match d.strip_prefix('.') {
                Some(rest) => format!("any subdomain of {rest}"),
                None => d.to_string(),
            };
            out.push(
                qm(
                    "QM003",
                    format!(
                        "{shown} is delivered here ({what}) but not accepted by rcpthosts or morercpthosts.cdb: mail for it from other servers gets `553 {NOGATEWAY}`"
                    ),
                )
                .at(src.location(start, end))
                .help(format!("add {d} to control/rcpthosts (or to morercpthosts, then run qmail-newmrh)")),
            );
        }
        summary(out, "QM003", src, n, &format!("refused {what}"));
    }
}

fn strip_brackets(h: &str) -> &str {
    h.trim_start_matches('[').trim_end_matches(']')
}

/// Lowercased names (locals entries, virtualdomains keys, smtproutes domains) looked up by
/// hash: smtproutes checks every rcpthosts entry against them, and with a list scan per
/// entry a hosting tree with the same 40,000 domains in rcpthosts and virtualdomains took
/// seconds (quadratic). Under test the key comparisons are counted, so a test can show the
/// check does O(1) comparisons per lookup without timing anything.
#[derive(Default)]
struct Names<'a>(FastSet<Name<'a>>);

#[derive(Hash, Eq)]
struct Name<'a>(Cow<'a, str>);

impl PartialEq for Name<'_> {
    fn eq(&self, other: &Self) -> bool {
        #[cfg(test)]
        tests::COMPARISONS.with(|c| c.set(c.get() + 1));
        self.0 == other.0
    }
}

impl<'a> Names<'a> {
    fn add(&mut self, name: &'a str) {
        self.0.insert(Name(lower(name)));
    }
    fn contains(&self, name: &str) -> bool {
        self.0.contains(&Name(Cow::Borrowed(name)))
    }
}

fn smtproutes(c: &Control, out: &mut Vec<Finding>) {
    let Some((src, routes, _)) = &c.smtproutes else {
        return;
    };
    let me =
        c.me.as_ref()
            .and_then(|(s, v)| v.map(|v| v.text(&s.text).to_ascii_lowercase()));
    let mut locals = Names::default();
    if let Some(l) = &c.locals {
        for e in &l.entries {
            locals.add(l.entry(e));
        }
    }
    // Only rcpthosts entries and route domains are ever asked about, and virtualdomains can
    // hold a million keys next to a three-line rcpthosts: index the few names asked about,
    // pass over the keys once, and keep the keys that are asked about.
    let mut asked = Names::default();
    if let Some(rh) = &c.rcpthosts {
        for e in &rh.entries {
            asked.add(rh.entry(e));
        }
    }
    for r in routes {
        asked.add(&r.domain); // already lowercased by the parser
    }
    let mut vd_keys = Names::default();
    if let Some((s, v, _)) = &c.virtualdomains {
        for x in v {
            let k = x.key.text(&s.text);
            if asked.contains(&lower(k)) {
                vd_keys.add(k);
            }
        }
    }
    let is_local = |d: &str| locals.contains(d) || vd_keys.contains(d);
    for r in routes {
        if r.relay.is_empty() {
            continue;
        }
        if !r.domain.is_empty() && is_local(&r.domain) {
            continue; // local delivery happens first; the route never applies
        }
        let host = strip_brackets(&r.relay).to_ascii_lowercase();
        let selfish = if Some(&host) == me.as_ref() {
            Some("this server's own name (control/me)")
        } else if host == "localhost" || host.starts_with("127.") || host == "::1" {
            Some("this server (loopback)")
        } else if locals.contains(&host) {
            Some("a name in control/locals, i.e. this server")
        } else {
            None
        };
        if let Some(why) = selfish {
            let what = if r.domain.is_empty() {
                "every remote domain (default route)".to_string()
            } else {
                r.domain.clone()
            };
            out.push(
                qm(
                    "QM011",
                    format!(
                        "smtproutes sends mail for {what} to {}, {why}: qmail-remote does not check for itself on smtproutes, so the message comes back to this qmail-smtpd and loops until it bounces (`553 {NOGATEWAY}` or too many hops)",
                        r.relay
                    ),
                )
                .at(src.location(r.start, r.end))
                .help("route to the real next hop, or list the domain in locals/virtualdomains if this server should deliver it"),
            );
        }
    }
    // A default route takes every domain that is not delivered locally, including domains
    // this server accepts in rcpthosts but forgot in locals/virtualdomains.
    let Some(def) = routes
        .iter()
        .find(|r| r.domain.is_empty() && !r.relay.is_empty())
    else {
        return;
    };
    let Some(rh) = &c.rcpthosts else { return };
    let mut routed = Names::default();
    for r in routes {
        routed.add(&r.domain); // already lowercased by the parser
    }
    let mut bypass = Vec::new();
    for e in &rh.entries {
        let d = lower(rh.entry(e));
        if d.starts_with('.')
            || d == "localhost"
            || bad_domain_entry(&d).is_some()
            || is_local(&d)
            || routed.contains(&d)
            || me.as_deref() == Some(&*d)
        {
            continue;
        }
        bypass.push(d.into_owned());
    }
    if bypass.is_empty() {
        return;
    }
    let n = bypass.len();
    bypass.truncate(5);
    out.push(
        qm(
            "QM012",
            format!(
                "the default route `:{}` also takes {n} domain(s) this server accepts in rcpthosts but does not deliver locally ({}): their mail goes to {} instead of a local mailbox, where it is usually refused as relaying or comes back in a loop",
                def.relay,
                bypass.join(", "),
                def.relay
            ),
        )
        .at(src.location(def.start, def.end))
        .help("add these domains to locals or virtualdomains if they are hosted here, or give them their own smtproutes entry (`domain:` delivers by MX)"),
    );
}

fn tcprules_syntax(r: &RulesFile, out: &mut Vec<Finding>) {
    let Some(src) = &r.source else { return };
    for e in r.errors.iter().take(MAX_PER_FILE) {
        out.push(
            qm(
                "QM014",
                format!(
                    "tcprules refuses this line ({}): it stops with `unable to parse this line` and leaves {} as it was, so no edit of {} takes effect until this line is fixed",
                    e.message,
                    r.cdb_display.display(),
                    src.display.display()
                ),
            )
            .at(src.location(e.start, e.end)),
        );
    }
}

/// First record per key, as tcpserver sees it.
fn first_per_key(recs: impl Iterator<Item = (String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let mut seen = std::collections::HashSet::new();
    recs.filter(|(k, _)| seen.insert(k.clone())).collect()
}

/// How a file is named on the server itself (`/etc/tcp.smtp`, also under --root), for
/// commands the admin will type there.
fn server_path(ctx: &Context, real: &Path) -> PathBuf {
    let shown = ctx.root.display(real);
    if ctx.root.is_snapshot() && shown.is_relative() {
        Path::new("/").join(shown)
    } else {
        shown
    }
}

/// The command that rebuilds a rules cdb from its source, with the server's paths.
fn tcprules_command(ctx: &Context, r: &RulesFile, src: &SourceFile) -> String {
    let cdb = server_path(ctx, &r.cdb_real);
    let src = server_path(ctx, &src.real);
    format!(
        "tcprules {} {}.tmp < {}",
        cdb.display(),
        src.display(),
        src.display()
    )
}

fn tcprules_stale(ctx: &Context, m: &Model, r: &RulesFile, out: &mut Vec<Finding>) {
    let Some(src) = &r.source else { return };
    // A service that needs this cdb and has none drops every connection: QM016 says so
    // there, with the same fix; one finding per cause.
    let dropped = !m.standalone && m.services_using(ctx, r).iter().any(|s| !s.allow_no_rules);
    match &r.cdb {
        // A rules file named on its own (a sample, a copy): no cdb beside it says nothing.
        CdbState::Missing if m.standalone => {}
        CdbState::Missing | CdbState::Unreadable(_) if dropped => {}
        CdbState::Missing => {
            out.push(
                qm(
                    "QM013",
                    format!(
                        "{} has never been compiled: {} does not exist and tcpserver reads only the cdb",
                        src.display.display(),
                        r.cdb_display.display()
                    ),
                )
                .at(src.line_location(1))
                .help(tcprules_command(ctx, r, src)),
            );
        }
        CdbState::Unreadable(e) => {
            out.push(
                qm(
                    "QM013",
                    format!(
                        "{} cannot be read ({e}); rebuild it from {}",
                        r.cdb_display.display(),
                        src.display.display()
                    ),
                )
                .at(file_location(&r.cdb_display))
                .help(tcprules_command(ctx, r, src)),
            );
        }
        CdbState::Ok(cdb, cdb_time) => {
            if !r.errors.is_empty() {
                // QM014 explains why the cdb cannot be rebuilt; comparing a half-parsed
                // source would only add noise.
                return;
            }
            let want = first_per_key(r.compiled.iter().map(|c| (c.0.clone(), c.1.clone())));
            let have = first_per_key(
                cdb.records()
                    .map(|x| (String::from_utf8_lossy(x.key).to_string(), x.data.to_vec())),
            );
            let have_map: std::collections::HashMap<&str, &[u8]> = have
                .iter()
                .map(|(k, d)| (k.as_str(), d.as_slice()))
                .collect();
            let want_map: std::collections::HashMap<&str, &[u8]> = want
                .iter()
                .map(|(k, d)| (k.as_str(), d.as_slice()))
                .collect();
            let mut diffs: Vec<(usize, String)> = Vec::new();
            for c in &r.compiled {
                match have_map.get(c.0.as_str()) {
                    None => diffs.push((
                        c.2,
                        format!("`{}` is not in the cdb", policy::describe(&c.0, &c.1)),
                    )),
                    Some(d)
                        if *d != c.1.as_slice()
                            && want_map.get(c.0.as_str()) == Some(&c.1.as_slice()) =>
                    {
                        diffs.push((
                            c.2,
                            format!(
                                "the cdb says `{}` instead of `{}`",
                                policy::describe(&c.0, d),
                                policy::describe(&c.0, &c.1)
                            ),
                        ))
                    }
                    _ => {}
                }
            }
            for (k, d) in &have {
                if !want_map.contains_key(k.as_str()) {
                    diffs.push((0, format!("the cdb still has `{}`", policy::describe(k, d))));
                }
            }
            if diffs.is_empty() {
                return;
            }
            let newer = match (
                std::fs::metadata(&src.real).and_then(|m| m.modified()).ok(),
                cdb_time,
            ) {
                (Some(s), Some(c)) if s > *c => format!(
                    "{} was edited after {} was built and they differ",
                    src.display.display(),
                    r.cdb_display.display()
                ),
                _ => format!(
                    "{} and {} differ",
                    src.display.display(),
                    r.cdb_display.display()
                ),
            };
            let n = diffs.len();
            let line = diffs.iter().map(|d| d.0).find(|&l| l > 0).unwrap_or(1);
            let list: Vec<String> = diffs.into_iter().take(5).map(|d| d.1).collect();
            out.push(
                qm(
                    "QM013",
                    format!(
                        "{newer} ({n} difference(s): {}): tcpserver follows the cdb, so the source is not what is live",
                        list.join("; ")
                    ),
                )
                .at(src.line_location(line))
                .help(tcprules_command(ctx, r, src)),
            );
        }
    }
}

/// A tcprules address no client can ever match, and why.
fn never_matches(addr: &str) -> Option<String> {
    if addr.starts_with([' ', '\t']) {
        return Some("starts with whitespace, which tcprules keeps in the key".into());
    }
    if addr.contains('=') || addr.contains('@') || addr.is_empty() {
        return None;
    }
    if let Some((net, bits)) = addr.split_once('/') {
        let mut hint = String::new();
        let octets: Vec<&str> = net.split('.').collect();
        if let Ok(b) = bits.parse::<usize>() {
            if b % 8 == 0 && (8..=24).contains(&b) && octets.len() == 4 {
                hint = format!("; write `{}.` for that prefix", octets[..b / 8].join("."));
            }
        }
        return Some(format!(
            "is CIDR notation, which classic tcprules (ucspi-tcp 0.88) does not understand: it is stored literally as {addr:?}{hint}"
        ));
    }
    let plain_ip = addr.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if plain_ip && !addr.ends_with('.') {
        let n = addr.split('.').count();
        if n < 4 {
            return Some(format!(
                "has {n} octet(s) and no trailing dot: it is an exact key no IPv4 address equals; a prefix needs the dot (`{addr}.`)"
            ));
        }
        if addr == "0.0.0.0" {
            return Some("is 0.0.0.0, which is never a client's address (it does not mean \"everyone\"; the empty address does)".into());
        }
    }
    None
}

fn never_matching(r: &RulesFile, out: &mut Vec<Finding>) {
    let Some(src) = &r.source else { return };
    for rule in &r.rules {
        let Some(why) = never_matches(&rule.address) else {
            continue;
        };
        let relay = rule.var("RELAYCLIENT").is_some();
        let effect = if relay {
            format!(
                "those clients do not get this rule's RELAYCLIENT: they fall through to a less specific rule and get `553 {NOGATEWAY}` for outside domains"
            )
        } else if rule.deny {
            "those clients are not denied".into()
        } else {
            "the rule has no effect".into()
        };
        let mut f = qm(
            "QM006",
            format!("tcp rule address {:?} {why}: {effect}", rule.address),
        )
        .at(src.location(rule.addr_start, rule.addr_end));
        if let Some(fixed) = why
            .split("write `")
            .nth(1)
            .and_then(|x| x.split('`').next())
        {
            f = f.fix(Fix::review(
                format!("use the prefix {fixed} (then run tcprules)"),
                vec![src.edit(rule.addr_start..rule.addr_end, fixed)],
            ));
        }
        out.push(f);
    }
}

fn relayclient_value(r: &RulesFile, out: &mut Vec<Finding>) {
    let Some(src) = &r.source else { return };
    for rule in &r.rules {
        let Some(v) = rule.var("RELAYCLIENT") else {
            continue;
        };
        if v.value.is_empty() || rule.deny {
            continue;
        }
        out.push(
            qm(
                "QM007",
                format!(
                    "RELAYCLIENT=\"{}\" is appended to every recipient of these clients: user@example.com becomes user@example.com{}, a domain that does not exist, so their mail bounces",
                    v.value, v.value
                ),
            )
            .at(src.location(v.value_start, v.value_end))
            .fix(Fix::safe(
                "make RELAYCLIENT empty (then run tcprules)",
                vec![src.edit(v.value_start..v.value_end, "")],
            )),
        );
    }
}

/// Who a tcprules key covers, if that is broad enough to be an open relay.
fn broad_key(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("every client".into());
    }
    if key == "=" {
        return Some("every client whose address has a DNS name".into());
    }
    if key.starts_with('=') || key.contains('@') {
        return None;
    }
    let prefix = key.strip_suffix('.')?;
    let oct: Vec<u32> = prefix.split('.').filter_map(|o| o.parse().ok()).collect();
    if oct.len() != prefix.split('.').count() {
        return None;
    }
    let private = match oct.as_slice() {
        [10, ..] | [127, ..] => true,
        [192, 168, ..] => true,
        [172, b, ..] => (16..=31).contains(b),
        [169, 254, ..] => true,
        [100, b, ..] => (64..=127).contains(b),
        _ => false,
    };
    match oct.len() {
        1 if !private => Some(format!("{}.0.0.0/8 (16 million public addresses)", oct[0])),
        1 => None,
        2 if !private => Some(format!("the public network {}.{}.0.0/16", oct[0], oct[1])),
        _ => None,
    }
}

fn auth_required(s: &Service) -> bool {
    matches!(auth_mode(s), Auth::On { required: true, .. })
}

fn broad_relay(ctx: &Context, m: &Model, r: &RulesFile, out: &mut Vec<Finding>) {
    let users = m.services_using(ctx, r);
    // Which services make a broad RELAYCLIENT rule a problem, and as which rule.
    let mut targets: Vec<(&str, Option<&Service>)> = Vec::new();
    // A rules file no discovered service reads is not live; with no service found at all
    // (only the rules file was given, or the run scripts are elsewhere) assume port 25.
    if users.is_empty() && m.services.is_empty() {
        targets.push(("QM005", None));
    }
    for s in &users {
        if auth_required(s) {
            continue;
        }
        targets.push((if s.is_submission() { "QM010" } else { "QM005" }, Some(s)));
    }
    if targets.is_empty() {
        return;
    }
    let relay_keys_src: Vec<(&str, usize, String)> = r
        .compiled
        .iter()
        .filter(|c| {
            let (deny, env) = rule_env(&c.1);
            !deny && env.iter().any(|e| e.0 == "RELAYCLIENT")
        })
        .filter_map(|c| broad_key(&c.0).map(|who| (c.0.as_str(), c.2, who)))
        .collect();
    let mut reported_lines = std::collections::HashSet::new();
    for (key, line, who) in &relay_keys_src {
        if !reported_lines.insert(*line) {
            continue;
        }
        let Some(src) = &r.source else { continue };
        let Some(rule) = r.rules.iter().find(|x| x.line == *line) else {
            continue;
        };
        let live = r
            .cdb
            .cdb()
            .map(|c| c.get(key.as_bytes()).is_some())
            .unwrap_or(false);
        let note = if live {
            ""
        } else {
            " (not compiled into the cdb yet: live after the next tcprules run)"
        };
        for (code, svc) in &targets {
            out.push(relay_finding(code, *svc, who, note).at(src.location(rule.start, rule.end)));
        }
    }
    // Granted only by the compiled cdb (source fixed but not recompiled, or no source).
    if let Some(cdb) = r.cdb.cdb() {
        let mut seen = std::collections::HashSet::new();
        for rec in cdb.records() {
            let key = String::from_utf8_lossy(rec.key).to_string();
            if !seen.insert(key.clone()) {
                continue;
            }
            let (deny, env) = rule_env(rec.data);
            if deny || !env.iter().any(|e| e.0 == "RELAYCLIENT") {
                continue;
            }
            let Some(who) = broad_key(&key) else { continue };
            let in_source = r.compiled.iter().any(|c| c.0 == key && c.1 == rec.data);
            if in_source {
                continue;
            }
            let note = if r.source.is_some() {
                " (only the compiled cdb says so: the source no longer does, but tcpserver reads the cdb)"
            } else {
                " (in the compiled cdb; its source is not here)"
            };
            for (code, svc) in &targets {
                out.push(
                    relay_finding(code, *svc, &who, note)
                        .at(file_location(&r.cdb_display))
                        .help(format!(
                            "the live rule is `{}`; recompile the rules with tcprules",
                            policy::describe(&key, rec.data)
                        )),
                );
            }
        }
    }
}

fn relay_finding(code: &str, svc: Option<&Service>, who: &str, note: &str) -> Finding {
    let name = svc.map(|s| s.name.as_str()).unwrap_or("smtp");
    let msg = if code == "QM010" {
        format!(
            "the submission service {name} gives RELAYCLIENT to {who}{note} and does not require AUTH (no REQUIRE_AUTH=1 or SMTPAUTH=\"!\"): anyone who connects can send mail to any domain through it (open relay)"
        )
    } else {
        format!(
            "this rule gives RELAYCLIENT to {who}{note}: qmail-smtpd then skips rcpthosts, so they can send mail to any domain through {name} (open relay)"
        )
    };
    let mut f = qm(code, msg).service(name);
    f = f.help(if code == "QM010" {
        "require AUTH on submission (export SMTPAUTH=\"!\" or REQUIRE_AUTH=1, depending on the AUTH patch), or give RELAYCLIENT only to your own networks"
    } else {
        "give RELAYCLIENT only to your own networks (e.g. `127.:allow,RELAYCLIENT=\"\"`, `192.168.1.:allow,RELAYCLIENT=\"\"`); remote users should authenticate"
    });
    f
}

fn service_env(s: &Service, out: &mut Vec<Finding>) {
    let Some(e) = s.env_var("RELAYCLIENT") else {
        return;
    };
    if e.conditional {
        return;
    }
    let Some(v) = &e.value else { return };
    let loc = s.file.line_location(e.line);
    if !v.is_empty() {
        out.push(
            qm(
                "QM007",
                format!(
                    "RELAYCLIENT=\"{v}\" is appended to every recipient on {}: user@example.com becomes user@example.com{v}, so mail bounces",
                    s.name
                ),
            )
            .service(&s.name)
            .at(loc.clone()),
        );
    }
    if auth_required(s) {
        return;
    }
    let code = if s.is_submission() { "QM010" } else { "QM005" };
    out.push(
        relay_finding(
            code,
            Some(s),
            "every client of this service (set in the run script)",
            "",
        )
        .at(loc),
    );
}

/// Plesk's qmail: started from xinetd (smtp_psa, submission_psa) or behind its relaylock.
fn is_plesk(s: &Service) -> bool {
    s.launcher == Launcher::Xinetd
        || s.relaylock
        || s.file
            .display
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("_psa"))
}

/// How to give qmail-smtpd a real checkpassword: Plesk ships its own (smtp_auth, checked
/// against the Plesk mail accounts; its smtp_psa passes it this way).
fn checkpassword_help(s: &Service) -> &'static str {
    if is_plesk(s) {
        "give Plesk's checkpassword first, then the subprogram, as Plesk writes it: server_args = ... /var/qmail/bin/qmail-smtpd /var/qmail/bin/smtp_auth /var/qmail/bin/true /var/qmail/bin/cmd5checkpw /var/qmail/bin/true"
    } else {
        "give the real checkpassword first, then the subprogram: qmail-smtpd /home/vpopmail/bin/vchkpw /bin/true"
    }
}

fn auth_checks(ctx: &Context, m: &Model, s: &Service, out: &mut Vec<Finding>) {
    let loc = s.file.line_location(s.line);
    match auth_mode(s) {
        Auth::On { checkprog, .. } => {
            if let Some(p) = checkprog.as_deref().filter(|p| is_true_prog(p)) {
                out.push(
                    qm(
                        "QM009",
                        format!(
                            "qmail-smtpd on {} runs {p} as its checkpassword program (the checkpassword argument is missing: {p} is meant as the subprogram that runs after a successful check): every user name and password is accepted, and authenticated clients may relay to any domain (open relay)",
                            s.name
                        ),
                    )
                    .service(&s.name)
                    .at(loc.clone())
                    .help(checkpassword_help(s)),
                );
            }
            // Only a run script was named: servercert.pem is not known.
            let standalone_unknown = m.control.is_none() && !policy::tls_available(s, None);
            if !standalone_unknown {
                plain_auth(ctx, m, s, out);
            }
        }
        Auth::Unknown(why) => {
            if let Some(p) = s.smtpd_args.first().filter(|p| is_true_prog(p)) {
                out.push(
                    qm(
                        "QM009",
                        format!(
                            "qmail-smtpd on {} gets {p} as its only argument, so {p} is the checkpassword program: with the AUTH patches that enable AUTH from the arguments alone every password is accepted and anyone can relay ({why})",
                            s.name
                        ),
                    )
                    .severity(Severity::Warning)
                    .service(&s.name)
                    .at(loc)
                    .help(checkpassword_help(s)),
                );
            }
        }
        Auth::Off => {}
    }
}

/// QM008: AUTH offered to clients that have not started TLS (see policy::plain_auth for
/// what each AUTH/TLS patch does).
fn plain_auth(ctx: &Context, m: &Model, s: &Service, out: &mut Vec<Finding>) {
    let rules = m.rules_for(ctx, s);
    let name = &s.name;
    let (msg, at, severity, help) = match policy::plain_auth(s, m.control.as_ref(), rules) {
        PlainAuth::No => return,
        PlainAuth::Yes(why, at) => (
            format!("{name} offers SMTP AUTH before TLS, so mail clients send passwords readable on the path: {why}"),
            at,
            Severity::Warning,
            "offer AUTH only under TLS: remove FORCETLS=0 / ALLOW_INSECURE_AUTH, or serve submission on 465 with implicit TLS (sslserver without -n, or tlswrapper)".to_string(),
        ),
        PlainAuth::Unknown => (
            format!("{name} may offer SMTP AUTH before STARTTLS: QMailToaster, netqmail's AUTH/TLS patch and s/qmail do, sagredo's force-tls patch does not, and the qmail-smtpd binary is not here to tell which this is"),
            None,
            Severity::Info,
            format!(
                "check the binary: `strings {} | grep FORCETLS` prints FORCETLS only with the force-tls patch",
                s.smtpd_path.as_deref().unwrap_or("/var/qmail/bin/qmail-smtpd")
            ),
        ),
    };
    let loc = match &at {
        Some((file, line)) => file.line_location(*line),
        None => s.file.line_location(s.line),
    };
    out.push(
        qm("QM008", msg)
            .severity(severity)
            .service(name)
            .at(loc)
            .help(help),
    );
}

/// QM018: port 465 is implicit TLS (RFC 8314 section 3.3): a client set to "SSL/TLS, port
/// 465" starts with a TLS handshake, which a plain tcpserver + qmail-smtpd never answers.
fn port_465_without_tls(s: &Service, out: &mut Vec<Finding>) {
    if s.port_number() != Some(465) || s.implicit_tls || s.launcher == Launcher::Xinetd {
        return;
    }
    let how = match (&s.launcher, &s.tls_wrapper) {
        (Launcher::Sslserver, _) => "sslserver waits for STARTTLS here (-n or UCSPITLS)",
        (_, Some(_)) => "its TLS wrapper waits for STARTTLS (tlswrapper -n)",
        _ => "tcpserver starts qmail-smtpd with no TLS wrapper and no SMTPS",
    };
    out.push(
        qm(
            "QM018",
            format!(
                "port 465 speaks plain SMTP: {how}, but mail clients set to \"SSL/TLS, port 465\" open the connection with a TLS handshake, so they cannot connect"
            ),
        )
        .service(&s.name)
        .at(s.file.line_location(s.line))
        .help("start TLS from the first byte: sslserver without -n (ucspi-ssl), tlswrapper in front of qmail-smtpd, or SMTPS=1 with the qmail-tls patch"),
    );
}

/// QM017: a rules file exists but this service's tcpserver has no -x, so none of its
/// rules apply (tcpserver(1): rules are read only from the -x cdb).
fn rules_not_applied(ctx: &Context, m: &Model, s: &Service, out: &mut Vec<Finding>) {
    if s.launcher == Launcher::Xinetd
        || s.rules_cdb.is_some()
        || s.dynamic.iter().any(|d| d.contains("-x"))
    {
        return;
    }
    let unused: Vec<&RulesFile> = m
        .rules
        .iter()
        .filter(|r| m.services_using(ctx, r).is_empty())
        .collect();
    let Some(first) = unused.first() else { return };
    let shown = first
        .source
        .as_ref()
        .map(|src| src.display.clone())
        .unwrap_or_else(|| first.cdb_display.clone());
    let (relay, deny) = rule_counts(first);
    out.push(
        qm(
            "QM017",
            format!(
                "{} starts tcpserver without -x, so {} does not apply: neither its RELAYCLIENT grants ({relay}) nor its denies ({deny})",
                s.name,
                shown.display(),
            ),
        )
        .severity(Severity::Warning)
        .service(&s.name)
        .at(s.file.line_location(s.line))
        .help(format!(
            "add `-x {}` to the tcpserver options",
            server_path(ctx, &first.cdb_real).display()
        )),
    );
}

/// How many rules of a rules source grant RELAYCLIENT, and how many deny.
fn rule_counts(r: &RulesFile) -> (usize, usize) {
    let deny = r.rules.iter().filter(|x| x.deny).count();
    let relay = r
        .rules
        .iter()
        .filter(|x| !x.deny && x.var("RELAYCLIENT").is_some())
        .count();
    (relay, deny)
}

fn rules_cdb_missing(ctx: &Context, m: &Model, s: &Service, out: &mut Vec<Finding>) {
    let Some(x) = &s.rules_cdb else { return };
    let Some(r) = m.rules_for(ctx, s) else { return };
    let why = match &r.cdb {
        // tcpserver.c: -X excuses only a missing file (`if (errno != error_noent)
        // drop_rules(); if (!flagallownorules) drop_rules();`).
        CdbState::Missing if s.allow_no_rules => return,
        CdbState::Missing => "does not exist".to_string(),
        CdbState::Unreadable(e) => format!("cannot be read ({e})"),
        CdbState::Ok(..) => return,
    };
    let port = s
        .port_number()
        .map(|p| format!(" on port {p}"))
        .unwrap_or_default();
    out.push(
        qm(
            "QM016",
            format!(
                "tcpserver -x {x}: the rules file {why}, so tcpserver drops every connection to {}{port} (`tcpserver: warning: dropping connection, unable to read {x}`): clients see the connection close without a greeting",
                s.name
            ),
        )
        .service(&s.name)
        .at(s.file.line_location(s.line))
        .help(if Path::new(x).extension().is_some_and(|e| e == "cdb") {
            format!("compile it: tcprules {x} {x}.tmp < {}", x.trim_end_matches(".cdb"))
        } else {
            "point -x at the compiled .cdb file".to_string()
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Context, Options, Root};
    use std::cell::Cell;

    thread_local! {
        /// Key comparisons made by `Names` lookups on this thread.
        pub(super) static COMPARISONS: Cell<u64> = const { Cell::new(0) };
    }

    /// A hosting tree with the same `n` domains in rcpthosts and virtualdomains, a default
    /// smtproutes entry and `n` more routed domains, plus `k` domains only rcpthosts has.
    fn tree(n: usize, k: usize) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let mut rh = String::from("localhost\nmail.hosting.example\n");
        let mut vd = String::new();
        let mut sr = String::from(":relay.isp.example\n");
        for i in 0..n {
            rh.push_str(&format!("client{i}.Example\n"));
            vd.push_str(&format!("client{i}.example:client{i}.example\n"));
            sr.push_str(&format!("routed{i}.example:mx{i}.example\n"));
        }
        for i in 0..k {
            rh.push_str(&format!("orphan{i}.example\n"));
        }
        std::fs::write(p.join("rcpthosts"), rh).unwrap();
        std::fs::write(p.join("virtualdomains"), vd).unwrap();
        std::fs::write(p.join("smtproutes"), sr).unwrap();
        std::fs::write(p.join("locals"), "localhost\nmail.hosting.example\n").unwrap();
        std::fs::write(p.join("me"), "mail.hosting.example\n").unwrap();
        d
    }

    fn check(n: usize, k: usize) -> (Vec<Finding>, u64) {
        let d = tree(n, k);
        let ctx = Context::new(Root::live(), Options::default());
        let c = crate::qmail::model::load_control(&ctx, d.path(), &mut Vec::new());
        let mut out = Vec::new();
        COMPARISONS.with(|c| c.set(0));
        smtproutes(&c, &mut out);
        (out, COMPARISONS.with(Cell::get))
    }

    /// Regression: QM011/QM012 used to scan every locals entry and virtualdomains key for
    /// each rcpthosts entry and each route (n x n comparisons: 40,000 shared domains took
    /// seconds). With hash lookups the key comparisons grow with n, not n squared: this
    /// counts them instead of timing the check.
    #[test]
    fn smtproutes_lookups_stay_linear() {
        let n = 5_000;
        let (out, comparisons) = check(n, 3);
        // Each rcpthosts entry and each route is looked up a few times, and a hash lookup
        // compares about one key; a scan would make tens of millions.
        assert!(
            comparisons <= 10 * n as u64,
            "{comparisons} key comparisons for {n} domains: a lookup scans a list again"
        );
        assert!(
            comparisons >= n as u64,
            "the counter no longer sees the lookups"
        );
        // The findings are unchanged: only the three orphans bypass local delivery.
        assert_eq!(
            out.len(),
            1,
            "{:?}",
            out.iter().map(|f| &f.message).collect::<Vec<_>>()
        );
        assert_eq!(out[0].code, "QM012");
        assert!(
            out[0].message.contains("takes 3 domain(s)"),
            "{}",
            out[0].message
        );
        assert!(out[0]
            .message
            .contains("orphan0.example, orphan1.example, orphan2.example"));
    }

    #[test]
    fn smtproutes_matches_case_insensitively() {
        // rcpthosts has `clientN.Example`, virtualdomains `clientN.example`: both local.
        let (out, _) = check(10, 0);
        assert!(
            out.is_empty(),
            "{:?}",
            out.iter().map(|f| &f.message).collect::<Vec<_>>()
        );
    }
}
