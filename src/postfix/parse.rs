//! main.cf and master.cf syntax (postconf(5), master(5)) with byte spans.
//!
//! Both files share the logical-line rules: a line starting with non-blank text starts a
//! logical line, a line starting with whitespace continues it, and comment lines (first
//! non-blank character `#`) or blank lines do not end it. `split_logical_lines` applies those
//! rules in one linear pass; each logical line is then parsed by the pest grammar of its file
//! (grammar/postfix_main.pest, grammar/postfix_master.pest). A line that does not parse
//! becomes a `Problem` with its span, never a stop.

use pest::Parser;
use pest_derive::Parser;

/// A byte range of the file (start inclusive, end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
    pub fn text(self, src: &str) -> &str {
        src.get(self.start..self.end).unwrap_or("")
    }
}

#[derive(Parser)]
#[grammar = "../grammar/postfix_main.pest"]
struct MainGrammar;

mod master_grammar {
    use pest_derive::Parser;
    #[derive(Parser)]
    #[grammar = "../grammar/postfix_master.pest"]
    pub struct MasterGrammar;
}
use master_grammar::{MasterGrammar, Rule as MRule};

/// One logical line as found by the splitter.
#[derive(Debug, Clone)]
pub struct LogicalLine {
    /// From the first character of the first line to the end of the last continuation line
    /// (without its line terminator).
    pub span: Span,
    /// 1-based line number of the first physical line.
    pub line: usize,
    /// Comment lines found between this line's first and last physical line.
    pub inner_comments: Vec<Span>,
}

/// A syntax problem that Postfix reports while reading the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Text indented before the first logical line: Postfix warns "logical line must not
    /// start with whitespace" and ignores it.
    IndentedFirstLine,
    /// `name value` without `=`: fatal "missing '=' after attribute name".
    MissingEquals,
    /// `= value`: fatal "missing attribute name".
    MissingName,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: ProblemKind,
    pub span: Span,
    pub line: usize,
}

/// Split `text` into logical lines. Also returns indented lines that precede the first
/// logical line (Postfix ignores them).
pub fn split_logical_lines(text: &str) -> (Vec<LogicalLine>, Vec<Problem>) {
    let mut out: Vec<LogicalLine> = Vec::with_capacity(text.len() / 64 + 16);
    let mut problems = Vec::new();
    let mut pending_comments: Vec<Span> = Vec::new();
    let bytes = text.as_bytes();
    let mut pos = 0usize;
    let mut line_no = 0usize;
    while pos < bytes.len() {
        line_no += 1;
        let end = match text.get(pos..).and_then(|t| t.find('\n')) {
            Some(i) => pos + i,
            None => bytes.len(),
        };
        let line = &bytes[pos..end];
        let first_non_blank = line.iter().position(|b| !is_blank(*b));
        match first_non_blank {
            None => {}
            Some(i) if line[i] == b'#' && !out.is_empty() => {
                pending_comments.push(Span::new(pos, end));
            }
            Some(i) if line[i] == b'#' => {}
            Some(0) => {
                pending_comments.clear();
                out.push(LogicalLine {
                    span: Span::new(pos, end),
                    line: line_no,
                    inner_comments: Vec::new(),
                });
            }
            Some(_) => match out.last_mut() {
                Some(cur) => {
                    cur.span.end = end;
                    cur.inner_comments.append(&mut pending_comments);
                }
                None => problems.push(Problem {
                    kind: ProblemKind::IndentedFirstLine,
                    span: Span::new(pos, end),
                    line: line_no,
                }),
            },
        }
        pos = end + 1;
    }
    (out, problems)
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
}

/// Join per-line segments into a value the way Postfix reads it: text within one physical
/// line is kept as written, the break between continuation lines becomes one space.
fn join_words(src: &str, words: &[Span]) -> String {
    // At most the text the words cover: one allocation for a 100,000-line value.
    let cover = match (words.first(), words.last()) {
        (Some(a), Some(b)) => b.end - a.start,
        _ => 0,
    };
    let mut s = String::with_capacity(cover);
    let mut prev: Option<Span> = None;
    for w in words {
        if let Some(p) = prev {
            let gap = Span::new(p.end, w.start).text(src);
            if gap.contains('\n') {
                s.push(' ');
            } else {
                s.push_str(gap);
            }
        }
        s.push_str(w.text(src));
        prev = Some(*w);
    }
    s
}

// ---------------------------------------------------------------- main.cf

#[derive(Debug, Clone)]
pub struct MainEntry {
    pub name: String,
    pub name_span: Span,
    /// The value as Postfix sees it (continuation breaks joined with one space).
    pub value: String,
    /// From the first to the last character of the value; empty at the end of `=` when the
    /// value is empty.
    pub value_span: Span,
    /// The whole logical line.
    pub span: Span,
    pub line: usize,
    /// The value text on each physical line (first to last word of that line).
    pub segments: Vec<Span>,
}

impl MainEntry {
    /// Each whitespace-separated word of the value, as spans of the file.
    pub fn words<'a>(&'a self, text: &'a str) -> impl Iterator<Item = Span> + 'a {
        self.segments.iter().flat_map(move |seg| {
            let base = seg.start;
            let t = seg.text(text);
            let mut out = Vec::new();
            let mut start = None;
            for (i, c) in t.char_indices() {
                if matches!(c, ' ' | '\t' | '\r' | '\x0B' | '\x0C') {
                    if let Some(s0) = start.take() {
                        out.push(Span::new(base + s0, base + i));
                    }
                } else if start.is_none() {
                    start = Some(i);
                }
            }
            if let Some(s0) = start {
                out.push(Span::new(base + s0, base + t.len()));
            }
            out
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct MainCf {
    pub entries: Vec<MainEntry>,
    pub problems: Vec<Problem>,
}

/// A `segment` without its trailing blanks (the grammar's `blanks`: space, tab, \x0B-\r).
fn trim_blanks(s: &str) -> &str {
    s.trim_end_matches([' ', '\t', '\x0B', '\x0C', '\r'])
}

pub fn parse_main(text: &str) -> MainCf {
    let (lines, mut problems) = split_logical_lines(text);
    let mut entries = Vec::with_capacity(lines.len());
    for l in lines {
        let src = l.span.text(text);
        // Without any `=` the grammar cannot match; say so without building pest's error
        // (a log pasted into main.cf has millions of such lines).
        let parsed = if src.contains('=') {
            MainGrammar::parse(Rule::entry, src).ok()
        } else {
            None
        };
        match parsed.ok_or(()) {
            Ok(mut pairs) => {
                let Some(entry) = pairs.next() else { continue };
                let base = l.span.start;
                let mut name = None;
                let mut eq_end = base;
                // A segment a physical line.
                let mut words =
                    Vec::with_capacity(1 + memchr::memchr_iter(b'\n', src.as_bytes()).count());
                for p in entry.into_inner() {
                    match p.as_rule() {
                        Rule::name => {
                            let s = p.as_span();
                            name = Some(Span::new(base + s.start(), base + s.end()));
                        }
                        Rule::eq => eq_end = base + p.as_span().end(),
                        Rule::value => {
                            for w in p.into_inner() {
                                let s = w.as_span();
                                let len = trim_blanks(s.as_str()).len();
                                words.push(Span::new(base + s.start(), base + s.start() + len));
                            }
                        }
                        _ => {}
                    }
                }
                let Some(name_span) = name else { continue };
                let value_span = match (words.first(), words.last()) {
                    (Some(a), Some(b)) => Span::new(a.start, b.end),
                    _ => Span::new(eq_end, eq_end),
                };
                entries.push(MainEntry {
                    name: name_span.text(text).to_string(),
                    name_span,
                    value: join_words(text, &words),
                    value_span,
                    span: l.span,
                    line: l.line,
                    segments: words,
                });
            }
            Err(_) => {
                let kind = if src.starts_with('=') {
                    ProblemKind::MissingName
                } else {
                    ProblemKind::MissingEquals
                };
                problems.push(Problem {
                    kind,
                    span: l.span,
                    line: l.line,
                });
            }
        }
    }
    problems.sort_by_key(|p| p.span.start);
    MainCf { entries, problems }
}

// ---------------------------------------------------------------- master.cf

/// A `-o` parameter override of one service.
#[derive(Debug, Clone)]
pub struct Override {
    pub name: String,
    pub value: String,
    pub name_span: Span,
    pub value_span: Span,
    /// From `-o` to the end of the override.
    pub span: Span,
    /// `-o { name = value }` (Postfix 3.0+) rather than `-o name=value`.
    pub long: bool,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Service {
    /// All fields of the entry: the first 8 are the service columns, the rest are arguments.
    pub fields: Vec<Field>,
    pub overrides: Vec<Override>,
    /// Arguments that are not `-o` overrides (or their values).
    pub other_args: Vec<Field>,
    pub span: Span,
    pub line: usize,
    pub inner_comments: Vec<Span>,
}

impl Service {
    fn col(&self, i: usize) -> &str {
        self.fields.get(i).map(|f| f.text.as_str()).unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.col(0)
    }
    pub fn kind(&self) -> &str {
        self.col(1)
    }
    /// The command name (8th field), e.g. `smtpd`, `postscreen`.
    pub fn command(&self) -> &str {
        self.col(7)
    }
    pub fn complete(&self) -> bool {
        self.fields.len() >= 8
    }
    /// How postconf -P names this service: `name/type`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name(), self.kind())
    }
}

#[derive(Debug, Clone, Default)]
pub struct MasterCf {
    pub services: Vec<Service>,
    pub problems: Vec<Problem>,
}

pub fn parse_master(text: &str) -> MasterCf {
    let (lines, problems) = split_logical_lines(text);
    let mut services = Vec::with_capacity(lines.len());
    for l in lines {
        let src = l.span.text(text);
        let base = l.span.start;
        let fields: Vec<Field> = match MasterGrammar::parse(MRule::entry, src) {
            Ok(mut pairs) => match pairs.next() {
                Some(entry) => entry
                    .into_inner()
                    .filter(|p| p.as_rule() == MRule::field)
                    .map(|p| {
                        let s = p.as_span();
                        Field {
                            text: p.as_str().to_string(),
                            span: Span::new(base + s.start(), base + s.end()),
                        }
                    })
                    .collect(),
                None => Vec::new(),
            },
            // The grammar accepts any non-blank text; a failure would be a grammar defect.
            // Fall back to plain whitespace splitting rather than lose the entry.
            Err(_) => split_fields(src, base),
        };
        let (overrides, other_args) = overrides_of(text, fields.get(8..).unwrap_or(&[]));
        services.push(Service {
            fields,
            overrides,
            other_args,
            span: l.span,
            line: l.line,
            inner_comments: l.inner_comments,
        });
    }
    MasterCf { services, problems }
}

fn split_fields(src: &str, base: usize) -> Vec<Field> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in src.char_indices().chain(std::iter::once((src.len(), ' '))) {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(Field {
                    text: src[s..i].to_string(),
                    span: Span::new(base + s, base + i),
                });
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    out
}

/// Separate `-o` overrides from other command arguments. Accepts `-o name=value`,
/// `-oname=value` and `-o { name = value }`. Like the daemons (Postfix calls getopt with a
/// leading "+"), option parsing stops at the first argument that is not an option: every
/// `-o` after it is a plain argument and has no effect (postconf -P does not show it either).
fn overrides_of(text: &str, args: &[Field]) -> (Vec<Override>, Vec<Field>) {
    let mut overrides = Vec::new();
    let mut other = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if !a.text.starts_with('-') || a.text == "-" {
            other.extend(args[i..].iter().cloned());
            break;
        }
        let (opt_arg, span_start) = if a.text == "-o" {
            i += 1;
            match args.get(i) {
                Some(v) => (v.clone(), a.span.start),
                None => {
                    other.push(a.clone());
                    break;
                }
            }
        } else if let Some(rest) = a.text.strip_prefix("-o") {
            (
                Field {
                    text: rest.to_string(),
                    span: Span::new(a.span.start + 2, a.span.end),
                },
                a.span.start,
            )
        } else {
            // Another daemon option; those that take a value consume the next field
            // (mail_server.c: -i -m -n -s -t).
            other.push(a.clone());
            if matches!(a.text.as_str(), "-i" | "-m" | "-n" | "-s" | "-t") {
                if let Some(v) = args.get(i + 1) {
                    other.push(v.clone());
                    i += 1;
                }
            }
            i += 1;
            continue;
        };
        i += 1;
        if let Some(o) = parse_override(text, &opt_arg, span_start) {
            overrides.push(o);
        } else {
            other.push(opt_arg);
        }
    }
    (overrides, other)
}

fn parse_override(text: &str, f: &Field, span_start: usize) -> Option<Override> {
    let t = f.text.as_str();
    let span = Span::new(span_start, f.span.end);
    if t.starts_with('{') {
        // Long form: strip the outer braces, then `name = value` with blanks allowed.
        let inner_start = f.span.start + 1;
        let inner_end = if t.ends_with('}') && t.len() >= 2 {
            f.span.end - 1
        } else {
            f.span.end
        };
        let inner = Span::new(inner_start, inner_end).text(text);
        let eq = inner.find('=')?;
        let name_raw = &inner[..eq];
        let value_raw = &inner[eq + 1..];
        let name_off = inner_start + (name_raw.len() - name_raw.trim_start().len());
        let name = name_raw.trim();
        let value_off = inner_start + eq + 1 + (value_raw.len() - value_raw.trim_start().len());
        let value = value_raw.trim();
        if name.is_empty() {
            return None;
        }
        Some(Override {
            name: name.to_string(),
            value: collapse_breaks(value),
            name_span: Span::new(name_off, name_off + name.len()),
            value_span: Span::new(value_off, value_off + value.len()),
            span,
            long: true,
        })
    } else {
        let eq = t.find('=')?;
        let name = &t[..eq];
        if name.is_empty() {
            return None;
        }
        Some(Override {
            name: name.to_string(),
            value: t[eq + 1..].to_string(),
            name_span: Span::new(f.span.start, f.span.start + eq),
            value_span: Span::new(f.span.start + eq + 1, f.span.end),
            span,
            long: false,
        })
    }
}

/// A long-form value may span continuation lines: each break reads as one space.
fn collapse_breaks(v: &str) -> String {
    if !v.contains('\n') {
        return v.to_string();
    }
    v.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_and_inner_comments() {
        let t = "a = x\n   y\n# c\n\n   z  \nb=1 # two\n";
        let m = parse_main(t);
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].name, "a");
        assert_eq!(m.entries[0].value, "x y z");
        assert_eq!(m.entries[1].value, "1 # two");
        assert_eq!(m.entries[1].value_span.text(t), "1 # two");
        assert!(m.problems.is_empty());
    }

    #[test]
    fn problems_are_reported() {
        let t = "  lead\nok = 1\nbad line\n= x\n";
        let m = parse_main(t);
        let kinds: Vec<_> = m
            .problems
            .iter()
            .map(|p| (p.kind.clone(), p.line))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (ProblemKind::IndentedFirstLine, 1),
                (ProblemKind::MissingEquals, 3),
                (ProblemKind::MissingName, 4)
            ]
        );
    }

    #[test]
    fn crlf_and_empty_values() {
        let m = parse_main("a = b\r\nc =\r\n");
        assert_eq!(m.entries[0].value, "b");
        assert_eq!(m.entries[1].value, "");
    }

    #[test]
    fn master_services_and_overrides() {
        let t = "smtp inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n#  -o x=y\n  -o { smtpd_recipient_restrictions = permit_sasl_authenticated, reject }\n  -osmtpd_tls_wrappermode=yes\n";
        let m = parse_master(t);
        assert_eq!(m.services.len(), 1);
        let s = &m.services[0];
        assert_eq!(s.command(), "smtpd");
        let o: Vec<_> = s
            .overrides
            .iter()
            .map(|o| (o.name.as_str(), o.value.as_str()))
            .collect();
        assert_eq!(
            o,
            vec![
                ("smtpd_sasl_auth_enable", "yes"),
                (
                    "smtpd_recipient_restrictions",
                    "permit_sasl_authenticated, reject"
                ),
                ("smtpd_tls_wrappermode", "yes")
            ]
        );
        assert_eq!(
            s.overrides[1].value_span.text(t),
            "permit_sasl_authenticated, reject"
        );
        assert_eq!(s.inner_comments.len(), 1);
    }
}
