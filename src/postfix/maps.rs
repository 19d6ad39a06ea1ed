//! Lookup tables read the way Postfix reads them, so that access maps and a mynetworks table
//! can be evaluated instead of being reported as `depends`.
//!
//! Read directly: `cidr:` (cidr_table(5): first matching rule in file order, `!` negation,
//! `if`/`endif` blocks), `texthash:` (postmap(1) input format), `inline:{ k=v, { k = v } }`
//! and `static:` (DATABASE_README). For the indexed types (hash, btree, lmdb, cdb, dbm, sdbm)
//! smtpd reads the compiled file, which is read here through its source (the path without the
//! type); when the source is newer than the compiled file, smtpd still answers from the
//! old contents, and the table carries a note saying so. `regexp:` and `pcre:` are read by
//! src/postfix/regexp_table.rs. Every other type (ldap, mysql, proxy, nis, ...) is not
//! evaluated: lookups in it are `depends`.
//!
//! Files are read through `Context::load_checked` (once per run: the context caches them),
//! so unreadable files become RD findings and matched entries can be shown with their line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::context::Context;
use crate::finding::{Finding, Mta};

/// One `key value` entry (or cidr rule) and where it was written.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The key as written (for cidr, the pattern).
    pub key: String,
    pub value: String,
    /// 1-based line in `Table::file`; 0 for inline: and static: (they live in main.cf).
    pub line: usize,
    /// cidr rules: every (network, negated) condition, enclosing `if` blocks first.
    conds: Vec<(IpNet, bool)>,
    /// regexp/pcre rules: every (pattern, negated) condition, enclosing `if` blocks first.
    pats: Vec<super::regexp_table::Cond>,
}

impl Entry {
    /// The cidr network of the rule itself (its last condition), when it is not negated.
    pub fn network(&self) -> Option<IpNet> {
        match self.conds.last() {
            Some((n, false)) => Some(*n),
            _ => None,
        }
    }
}

/// A table that could be read.
#[derive(Debug, Clone)]
pub struct Table {
    /// As written in the configuration, e.g. `cidr:/etc/postfix/clients.cidr`.
    pub spec: String,
    /// Displayed path of the file that holds the entries (None for inline: and static:).
    pub file: Option<PathBuf>,
    /// Fixed-string table (hash-like): smtpd also looks up parent domains and networks.
    /// Pattern tables (cidr) get only the full lookup (smtpd_check.c, flags PARTIAL).
    pub fixed: bool,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    /// static: answers every lookup with this value.
    static_value: Option<String>,
    /// regexp:/pcre: the first rule whose patterns match answers.
    regexp: bool,
    /// Something the admin should know about the answers (e.g. a stale compiled file).
    pub note: Option<String>,
}

/// The answer to opening a table.
#[derive(Debug, Clone)]
pub enum Opened {
    Table(Table),
    /// Cannot be evaluated statically; the text says why (shown in `depends_on`).
    Depends(String),
    /// smtpd cannot open it (no compiled file, no source): dict_surrogate.c puts a table in
    /// its place whose every lookup fails with DICT_ERR_RETRY (after `warning: TYPE:NAME is
    /// unavailable`). The text says why.
    Unavailable(String),
}

impl Table {
    /// Exact (folded) lookup in a fixed table, or the first matching rule of a cidr table.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        if self.static_value.is_some() {
            // A static table has one entry, which answers every key.
            return self.entries.first();
        }
        if self.regexp {
            return self.entries.iter().find(|e| {
                !e.pats.is_empty() && e.pats.iter().all(|(re, neg)| re.is_match(key) != *neg)
            });
        }
        if self.fixed {
            return self
                .index
                .get(&key.to_ascii_lowercase())
                .and_then(|i| self.entries.get(*i));
        }
        let ip: IpAddr = key.trim_matches(|c| c == '[' || c == ']').parse().ok()?;
        self.entries.iter().find(|e| {
            !e.conds.is_empty()
                && e.conds
                    .iter()
                    .all(|(net, neg)| net_contains(net, &ip) != *neg)
        })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn is_static(&self) -> bool {
        self.static_value.is_some()
    }

    /// `etc/postfix/access:12` for an entry (or the spec for inline:/static:).
    pub fn locate(&self, e: &Entry) -> String {
        match &self.file {
            Some(f) if e.line > 0 => format!("{}:{}", f.display(), e.line),
            _ => self.spec.clone(),
        }
    }
}

fn net_contains(net: &IpNet, ip: &IpAddr) -> bool {
    // An IPv4-mapped IPv6 client matches IPv4 rules too (cidr_table(5) compares the address
    // family of the rule; Postfix turns ::ffff:1.2.3.4 into 1.2.3.4 before lookups).
    match (net, ip) {
        (IpNet::V4(n), IpAddr::V6(v6)) => v6.to_ipv4_mapped().is_some_and(|v4| n.contains(&v4)),
        _ => net.contains(ip),
    }
}

/// Types whose source smtpd reads itself.
const DIRECT: &[&str] = &["cidr", "texthash", "inline", "static", "regexp", "pcre"];
/// Indexed types: smtpd reads `path + suffix` built by postmap from the source `path`.
fn compiled_suffix(kind: &str) -> Option<&'static str> {
    match kind {
        "hash" | "btree" => Some(".db"),
        "lmdb" => Some(".lmdb"),
        "cdb" => Some(".cdb"),
        "dbm" | "sdbm" => Some(".pag"),
        _ => None,
    }
}

/// `type:name` of a table reference, when `item` looks like one.
pub fn split_spec(item: &str) -> Option<(&str, &str)> {
    let (kind, name) = item.split_once(':')?;
    let ok = kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some((kind, name))
}

/// Open `spec` (e.g. `hash:/etc/postfix/access`). Problems reading a file become findings.
pub fn open(ctx: &Context, spec: &str, findings: &mut Vec<Finding>) -> Opened {
    let Some((kind, name)) = split_spec(spec) else {
        return Opened::Depends(format!("{spec} (not a lookup table)"));
    };
    match kind {
        "static" => {
            let v = strip_braces(name).trim().to_string();
            let mut t = table(spec, None, true);
            t.entries.push(Entry {
                key: "*".into(),
                value: v.clone(),
                line: 0,
                conds: Vec::new(),
                pats: Vec::new(),
            });
            t.static_value = Some(v);
            return Opened::Table(t);
        }
        "inline" => {
            let mut t = table(spec, None, true);
            for item in super::syntax::list_items(strip_braces(name)) {
                let item = strip_braces(&item);
                let Some((k, v)) = item.split_once('=') else {
                    continue;
                };
                push_fixed(&mut t, k.trim(), v.trim(), 0);
            }
            return Opened::Table(t);
        }
        _ => {}
    }
    let suffix = compiled_suffix(kind);
    if !DIRECT.contains(&kind) && suffix.is_none() {
        return Opened::Depends(format!(
            "{spec} ({kind}: tables are not evaluated statically)"
        ));
    }
    if name.starts_with('{') && matches!(kind, "cidr" | "regexp" | "pcre") {
        return inline_rules(spec, kind, name, findings);
    }
    if !name.starts_with('/') {
        return Opened::Depends(format!("{spec} (relative table path)"));
    }
    let real = ctx.root.resolve(Path::new(name));
    let mut note = None;
    if let Some(suf) = suffix {
        let compiled = PathBuf::from(format!("{}{suf}", real.display()));
        match (ctx.root.metadata(&compiled), ctx.root.metadata(&real)) {
            (Err(_), _) => {
                return Opened::Unavailable(format!(
                    "{spec} (compiled file {name}{suf} is missing: smtpd cannot open the table)"
                ))
            }
            (Ok(c), Ok(s)) if mtime(&c) < mtime(&s) => {
                note = Some(format!(
                    "{name} is newer than {name}{suf}: smtpd still answers from the compiled file (run postmap); evaluated from the source"
                ));
            }
            _ => {}
        }
    }
    let Some(src) = ctx.load_checked(&real, Mta::Postfix, findings) else {
        // Only a missing file is certain: smtpd opens tables as root, this run may not be.
        // An indexed map whose compiled file exists (checked above) works without its
        // source: smtpd reads the compiled file, whose contents are unknown here.
        return match ctx.root.metadata(&real) {
            Err(e) if suffix.is_some() && e.kind() == std::io::ErrorKind::NotFound => {
                Opened::Depends(format!("{spec} ({name} is missing, so the contents of the compiled file smtpd reads are unknown)"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Opened::Unavailable(format!(
                "{spec} ({name} does not exist: smtpd cannot open the table)"
            )),
            _ => Opened::Depends(format!("{spec} ({name} is unreadable)")),
        };
    };
    let mut t = match pattern_table(spec, kind, &src, findings) {
        Ok(t) => t,
        Err(e) => return Opened::Depends(e),
    };
    t.note = note;
    Opened::Table(t)
}

/// `cidr:{ {rule}, {rule} }`, `pcre:{...}`, `regexp:{...}`: the rules written in the table
/// name (cidr_table(5), pcre_table(5), regexp_table(5) "INLINE SPECIFICATION", Postfix 3.7
/// and later). Postfix writes each rule, without the blanks after `{` and before `}`, as a
/// line of an in-memory file, read like the table file.
fn inline_rules(spec: &str, kind: &str, name: &str, findings: &mut Vec<Finding>) -> Opened {
    let text: String = super::syntax::list_items(strip_braces(name))
        .iter()
        .map(|rule| format!("{}\n", strip_braces(rule).trim()))
        .collect();
    let src = crate::source::SourceFile::from_text(spec, text);
    match pattern_table(spec, kind, &src, findings) {
        Ok(mut t) => {
            t.file = None;
            Opened::Table(t)
        }
        Err(e) => Opened::Depends(e),
    }
}

/// A table of `kind` read from `src` (a file, or the rules of an inline table); Err with the
/// reason for a regexp table that does not compile.
fn pattern_table(
    spec: &str,
    kind: &str,
    src: &crate::source::SourceFile,
    findings: &mut Vec<Finding>,
) -> Result<Table, String> {
    let regexp = kind == "regexp" || kind == "pcre";
    let mut t = table(spec, Some(src.display.clone()), kind != "cidr" && !regexp);
    if regexp {
        match super::regexp_table::parse(&src.text, kind == "pcre") {
            Ok(rules) => {
                t.regexp = true;
                for r in rules {
                    t.entries.push(Entry {
                        key: r.pattern,
                        // `$1` in a result stays as written: the answer's kind (OK, REJECT,
                        // an address) is what the relay decision needs.
                        value: r.result,
                        line: r.line,
                        conds: Vec::new(),
                        pats: r.conds,
                    });
                }
            }
            Err(e) => return Err(format!("{spec} ({kind}: {e})")),
        }
    } else if kind == "cidr" {
        parse_cidr(&mut t, src, findings);
    } else {
        for (line, key, value) in postmap_lines(&src.text) {
            push_fixed(&mut t, &key, &value, line);
        }
    }
    Ok(t)
}

fn mtime(m: &std::fs::Metadata) -> u64 {
    // Whole seconds, as Postfix compares st_mtime (dict_db.c).
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn table(spec: &str, file: Option<PathBuf>, fixed: bool) -> Table {
    Table {
        spec: spec.to_string(),
        file,
        fixed,
        entries: Vec::new(),
        index: HashMap::new(),
        static_value: None,
        regexp: false,
        note: None,
    }
}

fn strip_braces(s: &str) -> &str {
    let t = s.trim();
    t.strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(t)
}

/// Postmap keeps the first of duplicate keys (it warns `duplicate entry` and ignores later
/// ones); keys are folded to lower case (DICT_FLAG_FOLD_FIX).
fn push_fixed(t: &mut Table, key: &str, value: &str, line: usize) {
    if key.is_empty() {
        return;
    }
    let folded = key.to_ascii_lowercase();
    if t.index.contains_key(&folded) {
        return;
    }
    t.index.insert(folded, t.entries.len());
    t.entries.push(Entry {
        key: key.to_string(),
        value: value.to_string(),
        line,
        conds: Vec::new(),
        pats: Vec::new(),
    });
}

/// Logical lines of a postmap(1) source: `#` comments (first non-blank character), blank
/// lines ignored, a line starting with whitespace continues the previous one. Yields (line
/// of the logical line's start, key, value).
fn postmap_lines(text: &str) -> Vec<(usize, String, String)> {
    logical_lines(text)
        .into_iter()
        .map(|(n, l)| {
            let (k, v) = l.split_once([' ', '\t']).unwrap_or((l.as_str(), ""));
            (n, k.to_string(), v.trim().to_string())
        })
        .collect()
}

/// The logical lines of a table source (postmap(1), regexp_table(5), cidr_table(5)): blank
/// and `#` lines skipped, a line starting with whitespace continues the previous one; each
/// with the 1-based line where it starts.
pub fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if l.starts_with([' ', '\t']) {
            if let Some((_, cur)) = out.last_mut() {
                cur.push(' ');
                cur.push_str(t);
                continue;
            }
        }
        out.push((i + 1, t.to_string()));
    }
    out
}

/// One cidr pattern: `[!]addr[/len]`, IPv6 optionally in brackets, parsed by
/// util/cidr_match.c cidr_match_parse() (see `hostaddr`); `Err` is Postfix's warning, and
/// dict_cidr.c skips the rule ("skipping this rule").
fn cidr_pattern(p: &str) -> Result<(IpNet, bool), String> {
    let (neg, p) = match p.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, p),
    };
    super::hostaddr::cidr_match_parse(p).map(|n| (n, neg))
}

/// dict_cidr.c dict_cidr_parse_rule(): a rule whose pattern does not parse is skipped with
/// `warning: cidr map FILE, line N: WHY: skipping this rule`. Reported as PF015 on that line,
/// since the admin otherwise learns only that the client did not match.
fn skipped_rule(src: &crate::source::SourceFile, line: usize, why: &str) -> Finding {
    let start: usize = src
        .text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let len = src.text[start..]
        .find('\n')
        .unwrap_or(src.text.len() - start);
    Finding::new(
        "PF015",
        Mta::Postfix,
        format!("cidr table rule is skipped: {why} (smtpd logs `cidr map ..., line {line}: ...: skipping this rule`), so no client matches it"),
    )
    .severity(crate::finding::Severity::Warning)
    .at(src.location(start, start + len))
    .help("Write the network as address/length with all host bits zero (192.168.1.0/24); Postfix takes no dotted masks, no leading zeros and no short addresses.")
}

fn parse_cidr(t: &mut Table, src: &crate::source::SourceFile, findings: &mut Vec<Finding>) {
    let text = &src.text;
    // `None` for an unusable `if` pattern: Postfix skips the rules of that block.
    let mut stack: Vec<Option<(IpNet, bool)>> = Vec::new();
    for (n, key, value) in postmap_lines(text) {
        let lower = key.to_ascii_lowercase();
        if lower == "if" {
            stack.push(match cidr_pattern(&value) {
                Ok(c) => Some(c),
                Err(why) => {
                    findings.push(skipped_rule(src, n, &why));
                    None
                }
            });
            continue;
        }
        if lower == "endif" {
            stack.pop();
            continue;
        }
        let c = match cidr_pattern(&key) {
            Ok(c) => c,
            Err(why) => {
                findings.push(skipped_rule(src, n, &why));
                continue;
            }
        };
        let Some(mut conds) = stack.iter().copied().collect::<Option<Vec<_>>>() else {
            continue;
        };
        conds.push(c);
        t.entries.push(Entry {
            key,
            value,
            line: n,
            conds,
            pats: Vec::new(),
        });
    }
}

/// Whether `net` is a public range wider than /24 (IPv4) or /48 (IPv6): an access-map entry
/// granting OK to it lets far more than one partner's hosts relay.
pub fn broad_public(net: &IpNet) -> bool {
    match net {
        IpNet::V4(v) => {
            v.prefix_len() < 24 && {
                let a = v.network();
                !(a.is_private() || a.is_loopback() || a.is_link_local()) || v.prefix_len() < 8
            }
        }
        IpNet::V6(v) => {
            v.prefix_len() < 48 && {
                let seg = v.network().segments()[0];
                // fc00::/7 unique local, fe80::/10 link local.
                (seg & 0xfe00) != 0xfc00 && (seg & 0xffc0) != 0xfe80 || v.prefix_len() < 7
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Options, Root};

    fn ctx_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Context) {
        let d = tempfile::tempdir().unwrap();
        for (p, t) in files {
            let real = d.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(real.parent().unwrap()).unwrap();
            std::fs::write(real, t).unwrap();
        }
        let ctx = Context::new(Root::snapshot(d.path()), Options::default());
        (d, ctx)
    }

    #[test]
    fn cidr_first_match_with_negation_and_if() {
        let (_d, ctx) = ctx_with(&[(
            "/etc/postfix/c.cidr",
            "# partners\n192.0.2.0/24 OK\nif !10.0.0.0/8\n0.0.0.0/0 REJECT\nendif\n10.1.2.3/8 OK\n",
        )]);
        let mut f = Vec::new();
        let Opened::Table(t) = open(&ctx, "cidr:/etc/postfix/c.cidr", &mut f) else {
            panic!()
        };
        assert_eq!(t.get("192.0.2.9").map(|e| e.line), Some(2));
        assert_eq!(
            t.get("203.0.113.5").map(|e| e.value.as_str()),
            Some("REJECT")
        );
        // 10.x is excluded by the if block; the last rule has host bits set and is skipped.
        assert!(t.get("10.1.1.1").is_none());
        assert!(t.get("unknown").is_none());
        // ...and reported on its line with Postfix's reason (dict_cidr.c).
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].code, "PF015");
        assert_eq!(f[0].location.as_ref().map(|l| l.line), Some(6));
        assert!(
            f[0].message
                .contains("perhaps you should use \"10.0.0.0/8\" instead"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn fixed_tables_fold_keys_and_keep_the_first_duplicate() {
        let (_d, ctx) = ctx_with(&[
            (
                "/etc/postfix/access",
                "Example.COM  OK\nexample.com REJECT\n1.2.3   554 go\n   away\n",
            ),
            ("/etc/postfix/access.db", ""),
        ]);
        let mut f = Vec::new();
        let Opened::Table(t) = open(&ctx, "hash:/etc/postfix/access", &mut f) else {
            panic!()
        };
        assert_eq!(t.get("example.com").map(|e| e.value.as_str()), Some("OK"));
        assert_eq!(
            t.get("1.2.3").map(|e| e.value.as_str()),
            Some("554 go away")
        );
        let Opened::Table(t) = open(&ctx, "inline:{ a=OK, { b = REJECT no } }", &mut f) else {
            panic!()
        };
        assert_eq!(t.get("B").map(|e| e.value.as_str()), Some("REJECT no"));
        let Opened::Table(t) = open(&ctx, "static:{DEFER later}", &mut f) else {
            panic!()
        };
        assert_eq!(t.get("x").map(|e| e.value.as_str()), Some("DEFER later"));
        assert!(matches!(
            open(&ctx, "hash:/etc/postfix/missing", &mut f),
            Opened::Unavailable(_)
        ));
        assert!(matches!(
            open(&ctx, "pcre:/etc/postfix/x.pcre", &mut f),
            Opened::Unavailable(_)
        ));
    }

    #[test]
    fn broad_ranges() {
        assert!(broad_public(&"0.0.0.0/0".parse().unwrap()));
        assert!(broad_public(&"198.0.0.0/16".parse().unwrap()));
        assert!(!broad_public(&"198.51.100.0/24".parse().unwrap()));
        assert!(!broad_public(&"10.0.0.0/8".parse().unwrap()));
    }
}
