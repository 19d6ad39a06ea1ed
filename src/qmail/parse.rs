//! Parsing qmail control files and tcprules sources (grammar/qmail_control.pest,
//! grammar/qmail_tcprules.pest) into entries with byte spans.
//!
//! Control files can hold a million lines (morercpthosts, virtualdomains on big hosting
//! servers). A line made only of "plain" bytes (no whitespace, no '#' at the start) has
//! exactly one parse under the grammar, so it is taken directly; every other line goes
//! through pest. `tests::fast_path_agrees_with_grammar` keeps the two in step.

use pest::Parser;
use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "../grammar/qmail_control.pest"]
struct ControlGrammar;

mod tcp {
    use pest_derive::Parser;
    #[derive(Parser)]
    #[grammar = "../grammar/qmail_tcprules.pest"]
    pub struct TcpRulesGrammar;
}
use tcp::{Rule as TRule, TcpRulesGrammar};

/// A byte range of a source text and its 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub line: u32,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        src.get(self.start as usize..self.end as usize)
            .unwrap_or("")
    }
}

/// A line the grammar does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub start: usize,
    pub end: usize,
    pub message: String,
}

/// Lines of a text with their start offsets and 1-based numbers, without the '\n'.
/// Like qmail's getln, a final line without '\n' still counts.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut off = 0usize;
    let mut n = 0usize;
    std::iter::from_fn(move || {
        if off >= text.len() {
            return None;
        }
        let rest = &text[off..];
        let len = rest.find('\n').unwrap_or(rest.len());
        let line = &rest[..len];
        let start = off;
        off += len + 1;
        n += 1;
        Some((n, start, line))
    })
}

/// The lines of a loaded file, from the index the loader already built (no second scan
/// of a million-line file).
pub fn lines_of(src: &crate::source::SourceFile) -> impl Iterator<Item = (usize, usize, &str)> {
    let text = src.text.as_str();
    let count = src.line_count();
    (1..=count).filter_map(move |n| {
        let start = src.line_start(n);
        let end = if n < count {
            src.line_start(n + 1).saturating_sub(1)
        } else {
            text.len()
        };
        let line = text.get(start..end)?;
        (n < count || !line.is_empty()).then_some((n, start, line))
    })
}

/// control_readfile() strips only '\n', ' ' and '\t' at the end (control.c): a '\r' stays.
fn strip_trailing(line: &str) -> &str {
    line.trim_end_matches([' ', '\t'])
}

fn plain(line: &str) -> bool {
    !line.is_empty() && !line.starts_with('#') && !line.bytes().any(|b| b == b' ' || b == b'\t')
}

/// `plain`, when the whole file is known to hold no blank or tab (checked once with memchr).
fn plain_fast(line: &str, file_has_blanks: bool) -> bool {
    if file_has_blanks {
        plain(line)
    } else {
        !line.is_empty() && !line.starts_with('#')
    }
}

fn has_blanks(text: &str) -> bool {
    text.as_bytes().contains(&b' ') || text.as_bytes().contains(&b'\t')
}

fn span(line: usize, start: usize, end: usize) -> Span {
    Span {
        line: line as u32,
        start: start as u32,
        end: end as u32,
    }
}

/// rcpthosts, morercpthosts, locals: the entries, in order.
pub fn domain_list(text: &str) -> (Vec<Span>, Vec<LineError>) {
    domain_list_lines(lines(text), text.len(), has_blanks(text))
}

/// `blanks`: the file holds a blank or tab somewhere (the caller checked once).
pub fn domain_list_src(
    src: &crate::source::SourceFile,
    blanks: bool,
) -> (Vec<Span>, Vec<LineError>) {
    domain_list_lines(lines_of(src), src.text.len(), blanks)
}

fn domain_list_lines<'a>(
    it: impl Iterator<Item = (usize, usize, &'a str)>,
    len: usize,
    blanks: bool,
) -> (Vec<Span>, Vec<LineError>) {
    scan_lines(
        it,
        len / 16,
        blanks,
        |n, start, line| Some(span(n, start, start + line.len())),
        |n, start, line| {
            let mut pairs = ControlGrammar::parse(Rule::domain_line, line)
                .map_err(|e| line_error(n, start, line, e.variant.message().to_string()))?;
            Ok(pairs
                .next()
                .and_then(|p| p.into_inner().next())
                .filter(|p| p.as_rule() == Rule::domain_text)
                .map(|p| {
                    let s = p.as_span();
                    span(n, start + s.start(), start + s.end())
                }))
        },
    )
}

fn line_error(n: usize, start: usize, line: &str, message: String) -> LineError {
    LineError {
        line: n,
        start,
        end: start + line.len(),
        message,
    }
}

/// The loop every control-file list shares: each line without its trailing blanks; a plain
/// line (see `plain`) goes to `fast`, which may decline it (None), and every other line to
/// `slow` (the grammar): an entry, nothing (comment, blank), or the error for that line.
fn scan_lines<'a, T>(
    it: impl Iterator<Item = (usize, usize, &'a str)>,
    capacity: usize,
    blanks: bool,
    fast: impl Fn(usize, usize, &'a str) -> Option<T>,
    slow: impl Fn(usize, usize, &'a str) -> Result<Option<T>, LineError>,
) -> (Vec<T>, Vec<LineError>) {
    let mut out = Vec::with_capacity(capacity);
    let mut errors = Vec::new();
    for (n, start, raw) in it {
        let line = strip_trailing(raw);
        if plain_fast(line, blanks) {
            if let Some(x) = fast(n, start, line) {
                out.push(x);
                continue;
            }
        }
        match slow(n, start, line) {
            Ok(Some(x)) => out.push(x),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    (out, errors)
}

/// A virtualdomains entry: `key:prepend`.
#[derive(Debug, Clone, Copy)]
pub struct VirtualDomain {
    pub key: Span,
    pub prepend: Span,
}

pub fn virtualdomains(text: &str) -> (Vec<VirtualDomain>, Vec<LineError>) {
    virtualdomains_lines(lines(text), text.len(), has_blanks(text))
}

pub fn virtualdomains_src(
    src: &crate::source::SourceFile,
    blanks: bool,
) -> (Vec<VirtualDomain>, Vec<LineError>) {
    virtualdomains_lines(lines_of(src), src.text.len(), blanks)
}

fn virtualdomains_lines<'a>(
    it: impl Iterator<Item = (usize, usize, &'a str)>,
    len: usize,
    blanks: bool,
) -> (Vec<VirtualDomain>, Vec<LineError>) {
    scan_lines(
        it,
        len / 24,
        blanks,
        |n, start, line| {
            // A plain byte loop: on 30-byte lines it beats a memchr call.
            let c = line.bytes().position(|b| b == b':')?;
            Some(VirtualDomain {
                key: span(n, start, start + c),
                prepend: span(n, start + c + 1, start + line.len()),
            })
        },
        |n, start, line| {
            let mut pairs = ControlGrammar::parse(Rule::vd_line, line).map_err(|_| {
                line_error(
                    n,
                    start,
                    line,
                    "no ':' on this line: qmail-send ignores it (expected domain:prepend)".into(),
                )
            })?;
            let Some(p) = pairs
                .next()
                .and_then(|p| p.into_inner().next())
                .filter(|p| p.as_rule() == Rule::vd_entry)
            else {
                return Ok(None);
            };
            let mut key = span(n, start, start);
            let mut prepend = span(n, start, start);
            for q in p.into_inner() {
                let s = q.as_span();
                let sp = span(n, start + s.start(), start + s.end());
                match q.as_rule() {
                    Rule::vd_key => key = sp,
                    Rule::vd_prepend => prepend = sp,
                    _ => {}
                }
            }
            Ok(Some(VirtualDomain { key, prepend }))
        },
    )
}

/// An smtproutes entry: `domain:relay[:port]`; an empty domain is the default route and an
/// empty relay means "deliver by MX".
#[derive(Debug, Clone)]
pub struct Route {
    pub line: usize,
    pub start: usize,
    pub end: usize,
    pub domain: String,
    pub relay: String,
    pub port: Option<u32>,
}

pub fn smtproutes(text: &str) -> (Vec<Route>, Vec<LineError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (n, start, raw) in lines(text) {
        let line = strip_trailing(raw);
        match ControlGrammar::parse(Rule::sr_line, line) {
            Ok(mut pairs) => {
                let Some(p) = pairs.next().and_then(|p| p.into_inner().next()) else {
                    continue;
                };
                if p.as_rule() != Rule::sr_entry {
                    continue;
                }
                let mut r = Route {
                    line: n,
                    start,
                    end: start + line.len(),
                    domain: String::new(),
                    relay: String::new(),
                    port: None,
                };
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::sr_domain => r.domain = q.as_str().to_ascii_lowercase(),
                        Rule::sr_relay => r.relay = q.as_str().to_string(),
                        Rule::sr_port => r.port = q.as_str().parse().ok(),
                        _ => {}
                    }
                }
                out.push(r);
            }
            Err(_) => errors.push(LineError {
                line: n,
                start,
                end: start + line.len(),
                message: if line.contains(':') {
                    "not domain:relay[:port]: qmail-remote would use the text after the first ':' as the relay"
                        .into()
                } else {
                    "no ':' on this line: qmail-remote ignores it (expected domain:relay[:port])"
                        .into()
                },
            }),
        }
    }
    (out, errors)
}

/// me, defaultdomain, plusdomain: the first entry (qmail reads only the first line).
pub fn first_value(text: &str) -> Option<Span> {
    for (n, start, raw) in lines(text) {
        let line = strip_trailing(raw);
        if let Ok(mut pairs) = ControlGrammar::parse(Rule::value_line, line) {
            if let Some(p) = pairs.next().and_then(|p| p.into_inner().next()) {
                if p.as_rule() == Rule::domain_text {
                    let s = p.as_span();
                    return Some(span(n, start + s.start(), start + s.end()));
                }
            }
        }
    }
    None
}

/// One tcprules source rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpRule {
    pub line: usize,
    /// Byte range of the rule (line without trailing blanks).
    pub start: usize,
    pub end: usize,
    /// Byte range of the address part.
    pub addr_start: usize,
    pub addr_end: usize,
    pub address: String,
    pub deny: bool,
    /// (name, value, value start, value end)
    pub vars: Vec<TcpVar>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpVar {
    pub name: String,
    pub value: String,
    pub value_start: usize,
    pub value_end: usize,
}

impl TcpRule {
    pub fn var(&self, name: &str) -> Option<&TcpVar> {
        self.vars.iter().find(|v| v.name == name)
    }

    /// The data tcprules stores: "D\0" for deny, then "+NAME=VALUE\0" per variable.
    pub fn data(&self) -> Vec<u8> {
        let mut d = Vec::new();
        if self.deny {
            d.extend_from_slice(b"D\0");
        }
        for v in &self.vars {
            d.push(b'+');
            d.extend_from_slice(v.name.as_bytes());
            d.push(b'=');
            d.extend_from_slice(v.value.as_bytes());
            d.push(0);
        }
        d
    }
}

/// Parse a tcprules source the way tcprules.c does. Errors are the lines tcprules refuses
/// (it then refuses the whole file and leaves the old cdb in place).
pub fn tcprules(text: &str) -> (Vec<TcpRule>, Vec<LineError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (n, start, raw) in lines(text) {
        // tcprules strips trailing '\n', ' ' and '\t' only.
        let line = raw.trim_end_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match TcpRulesGrammar::parse(TRule::line, line) {
            Ok(mut pairs) => {
                let Some(p) = pairs.next().and_then(|p| p.into_inner().next()) else {
                    continue;
                };
                if p.as_rule() != TRule::rule {
                    continue;
                }
                let mut r = TcpRule {
                    line: n,
                    start,
                    end: start + line.len(),
                    addr_start: start,
                    addr_end: start,
                    address: String::new(),
                    deny: false,
                    vars: Vec::new(),
                };
                for q in p.into_inner() {
                    match q.as_rule() {
                        TRule::address => {
                            r.address = q.as_str().to_string();
                            r.addr_start = start + q.as_span().start();
                            r.addr_end = start + q.as_span().end();
                        }
                        TRule::action => r.deny = q.as_str() == "deny",
                        TRule::var => {
                            let mut v = TcpVar {
                                name: String::new(),
                                value: String::new(),
                                value_start: 0,
                                value_end: 0,
                            };
                            for x in q.into_inner() {
                                match x.as_rule() {
                                    TRule::var_name => v.name = x.as_str().to_string(),
                                    TRule::var_value => {
                                        v.value = x.as_str().to_string();
                                        v.value_start = start + x.as_span().start();
                                        v.value_end = start + x.as_span().end();
                                    }
                                    _ => {}
                                }
                            }
                            r.vars.push(v);
                        }
                        _ => {}
                    }
                }
                out.push(r);
            }
            Err(_) => errors.push(line_error(n, start, line, tcprules_complaint(line))),
        }
    }
    (out, errors)
}

fn tcprules_complaint(line: &str) -> String {
    let (addr, after) = line.split_once(':').unwrap_or((line, ""));
    let hexish = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if addr.is_empty() && after.starts_with(':')
        || hexish(addr) && !after.starts_with("allow") && !after.starts_with("deny")
    {
        return "an IPv6 address: classic tcprules (ucspi-tcp 0.88) has no IPv6 and takes the address only up to the first ':' (ucspi-tcp6 accepts this line)".into();
    }
    if !(after.starts_with("allow") || after.starts_with("deny")) {
        "the instruction after ':' must start with allow or deny".into()
    } else {
        "each extra instruction must be ,NAME=qVALUEq with the same quote character q on both sides"
            .into()
    }
}

/// The (key, data) records tcprules writes for these rules, in order: `a.b.c.d-e` ranges are
/// expanded (tcprules.c doaddressdata). A range whose numbers do not parse is an error, as
/// tcprules refuses it.
/// A compiled rule: (cdb key, cdb data, source line).
pub type Compiled = (String, Vec<u8>, usize);

pub fn compile(rules: &[TcpRule]) -> (Vec<Compiled>, Vec<LineError>) {
    let mut out = Vec::with_capacity(rules.len());
    let mut errors = Vec::new();
    for r in rules {
        let data = r.data();
        let a = &r.address;
        if !a.contains('=') && !a.contains('@') {
            if let Some(i) = a.find('-') {
                let left = a[..i].rfind('.').map(|p| p + 1).unwrap_or(0);
                let right = a[i + 1..].find('.').map(|p| i + 1 + p).unwrap_or(a.len());
                let num = |s: &str| -> Option<u64> {
                    if s.bytes().all(|b| b.is_ascii_digit()) {
                        Some(
                            s.parse::<u64>()
                                .unwrap_or(if s.is_empty() { 0 } else { u64::MAX }),
                        )
                    } else {
                        None
                    }
                };
                match (num(&a[left..i]), num(&a[i + 1..right])) {
                    (Some(bot), Some(top)) => {
                        let top = top.min(255);
                        let mut x = bot;
                        while x <= top {
                            out.push((
                                format!("{}{}{}", &a[..left], x, &a[right..]),
                                data.clone(),
                                r.line,
                            ));
                            x += 1;
                        }
                    }
                    _ => errors.push(LineError {
                        line: r.line,
                        start: r.addr_start,
                        end: r.addr_end,
                        message: format!(
                            "range {a:?}: the numbers around '-' must be plain digits, or tcprules refuses the file"
                        ),
                    }),
                }
                continue;
            }
        }
        out.push((a.clone(), data, r.line));
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_lists_follow_control_readfile() {
        let (e, errs) =
            domain_list("example.com\n# c\n\n  lead.example\ttail  \nx.org\r\n.sub.net");
        assert!(errs.is_empty());
        let t = "example.com\n# c\n\n  lead.example\ttail  \nx.org\r\n.sub.net";
        let v: Vec<&str> = e.iter().map(|s| s.text(t)).collect();
        assert_eq!(
            v,
            vec!["example.com", "  lead.example\ttail", "x.org\r", ".sub.net"]
        );
        assert_eq!(e[1].line, 4);
    }

    #[test]
    fn loader_index_gives_the_same_lines() {
        for t in ["a\nb\n", "a\nb", "", "\n\nx:y\n", "a\r\n"] {
            let src = crate::source::SourceFile::from_text("f", t);
            let a: Vec<_> = lines(t).collect();
            let b: Vec<_> = lines_of(&src).collect();
            assert_eq!(a, b, "{t:?}");
        }
    }

    #[test]
    fn fast_path_agrees_with_grammar() {
        for line in [
            "example.com",
            "a:b",
            ".x.y",
            "user@d.com:pre-",
            "UPPER.Case",
        ] {
            let r = ControlGrammar::parse(Rule::domain_line, line).unwrap();
            let inner = r.into_iter().next().unwrap().into_inner().next().unwrap();
            assert_eq!(inner.as_rule(), Rule::domain_text);
            assert_eq!(inner.as_str(), line);
            if let Some(c) = line.find(':') {
                let r = ControlGrammar::parse(Rule::vd_line, line).unwrap();
                let e = r.into_iter().next().unwrap().into_inner().next().unwrap();
                let parts: Vec<&str> = e.into_inner().map(|p| p.as_str()).collect();
                assert_eq!(parts, vec![&line[..c], &line[c + 1..]]);
            }
        }
    }

    #[test]
    fn virtualdomains_and_routes() {
        let t = "example.com:alias-example\n:catchall\nnocolon\n# x\n";
        let (v, errs) = virtualdomains(t);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].key.text(t), "example.com");
        assert_eq!(v[1].key.text(t), "");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 3);
        let (r, errs) =
            smtproutes(":smarthost.example:587\nexample.org:[10.0.0.1]\nlocal.example:\n");
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(r[0].domain, "");
        assert_eq!(r[0].relay, "smarthost.example");
        assert_eq!(r[0].port, Some(587));
        assert_eq!(r[1].relay, "[10.0.0.1]");
        assert_eq!(r[2].relay, "");
    }

    #[test]
    fn tcprules_quotes_ranges_and_errors() {
        let t = "127.:allow,RELAYCLIENT=\"\"\n10.0.0.0/8:allow,RELAYCLIENT='',X=|a,b|\n1.2.3.4-6:deny\nnocolon\n:allow\nbad:allowx\n5.6.7.:allow,A=\"open\n";
        let (r, errs) = tcprules(t);
        assert_eq!(r.len(), 4);
        assert_eq!(r[1].vars[1].value, "a,b");
        assert_eq!(r[0].data(), b"+RELAYCLIENT=\0".to_vec());
        assert_eq!(r[2].data(), b"D\0".to_vec());
        assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), vec![6, 7]);
        let (c, cerr) = compile(&r);
        assert!(cerr.is_empty());
        let keys: Vec<&str> = c.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            keys,
            vec!["127.", "10.0.0.0/8", "1.2.3.4", "1.2.3.5", "1.2.3.6", ""]
        );
    }
}
