//! The Exim configuration reader: physical lines -> the logical lines Exim would act on.
//!
//! Emulates readconf.c `get_config_line()` and `macros_expand()` (Exim 4.96): macro
//! substitution on every physical line in definition order (plain substring search, no word
//! boundaries), comment lines after substitution (also inside continuations), the
//! `.ifdef/.ifndef/.elifdef/.elifndef/.else/.endif` state machine whose test is "did any macro
//! substitution happen on this line", `.include` / `.include_if_exists`, backslash
//! continuation with the next line's leading white space removed. Macro definitions
//! (`NAME = ...`, `NAME == ...`) follow `macro_read_assignment()`: redefinition needs `==`,
//! command-line (-D / --define) macros win, and a new name containing an earlier macro's name
//! is a configuration error. Every logical line keeps the real file and line it came from.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::context::Context;
use crate::finding::{Finding, Location, Mta};
use crate::source::SourceFile;

/// Where a logical line (or a macro) came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// File as shown to the user.
    pub file: PathBuf,
    /// 1-based line of the first physical line.
    pub line: usize,
    /// The loaded file, for byte spans (None for lines update-exim4.conf would generate).
    pub src: Option<Arc<SourceFile>>,
    /// Byte span of the first physical line's text (without leading blanks or terminator).
    pub start: usize,
    pub end: usize,
}

impl Origin {
    pub fn location(&self) -> Location {
        match &self.src {
            Some(s) => s.location(self.start, self.end),
            None => Location {
                file: self.file.clone(),
                line: self.line,
                column: 1,
                end_line: self.line,
                end_column: 1,
            },
        }
    }
    pub fn describe(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }

    /// The origin of one item of a value continued over `\` lines: its own line and span,
    /// found in the physical lines of this logical line (issue #16 item 5: a dead zone on
    /// line 140 is reported there, not at the `dnslists =` line 138). The whole line when the
    /// item is not written literally (a macro, an expansion).
    pub fn item(&self, item: &str) -> Origin {
        let Some(src) = &self.src else {
            return self.clone();
        };
        let text = &src.text;
        let mut at = self.start.min(text.len());
        let mut line = self.line;
        loop {
            let end = text[at..].find('\n').map(|i| at + i).unwrap_or(text.len());
            let phys = &text[at..end];
            if let Some(i) = phys.find(item).filter(|_| !item.is_empty()) {
                let start = at + i;
                return Origin {
                    line,
                    start,
                    end: start + item.len(),
                    ..self.clone()
                };
            }
            if !phys.trim_end().ends_with('\\') || end >= text.len() {
                return self.clone();
            }
            at = end + 1;
            line += 1;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Macro {
    /// Borrowed for the ~740 built-ins (no allocation per run), owned for the rest.
    pub name: Cow<'static, str>,
    pub value: Cow<'static, str>,
    pub origin: Option<Origin>,
    pub builtin: bool,
    pub command_line: bool,
}

/// A logical line as Exim acts on it.
#[derive(Debug, Clone)]
pub struct LogicalLine {
    pub text: String,
    pub origin: Origin,
    /// Macros substituted anywhere in this logical line (names, in order of substitution).
    pub macros_used: Vec<String>,
}

/// A top-level input: a file, or lines a tool (update-exim4.conf) would generate.
#[derive(Debug, Clone)]
pub enum Segment {
    File { real: PathBuf, server: PathBuf },
    Lines(Vec<(String, Origin)>),
}

pub struct Output {
    pub lines: Vec<LogicalLine>,
    pub macros: Vec<Macro>,
    pub findings: Vec<Finding>,
    /// Files read, in order (display paths).
    pub files: Vec<PathBuf>,
}

const BUILTIN: &str = include_str!("builtin_macros.txt");

/// Built-in macros (`_HAVE_*`, `_OPT_*`, `_DRIVER_*`, ...) of Debian 12's exim4-daemon-light
/// 4.96, captured with `exim4 -bP macros`. A different build defines a different set; we
/// model the one Debian ships rather than guess.
pub fn builtin_macros() -> Vec<Macro> {
    BUILTIN
        .lines()
        .filter(|l| l.starts_with('_'))
        .filter_map(|l| l.split_once('='))
        .map(|(n, v)| Macro {
            name: Cow::Borrowed(n),
            value: Cow::Borrowed(v),
            origin: None,
            builtin: true,
            command_line: false,
        })
        .collect()
}

enum Frame {
    File {
        src: Arc<SourceFile>,
        pos: usize,
        lineno: usize,
        server: PathBuf,
    },
    Lines {
        lines: Vec<(String, Origin)>,
        idx: usize,
    },
}

struct Phys {
    text: String,
    origin: Origin,
    /// Server-side directory for relative .include.
    dir: Option<PathBuf>,
}

impl Frame {
    fn next(&mut self) -> Option<Phys> {
        match self {
            Frame::File {
                src,
                pos,
                lineno,
                server,
            } => {
                let text = &src.text;
                let (start, raw) = loop {
                    if *pos >= text.len() {
                        return None;
                    }
                    let start = *pos;
                    let end = text[start..]
                        .find('\n')
                        .map(|i| start + i)
                        .unwrap_or(text.len());
                    *pos = end + 1;
                    *lineno += 1;
                    let raw = text[start..end].trim_end_matches('\r');
                    // Comment lines are dropped by the reader whatever the state (also inside
                    // continuations), so skip them here without building anything.
                    if !raw.trim_start().starts_with('#') {
                        break (start, raw);
                    }
                };
                let lead = raw.len() - raw.trim_start().len();
                Some(Phys {
                    text: raw.to_string(),
                    origin: Origin {
                        file: src.display.clone(),
                        line: *lineno,
                        src: Some(Arc::clone(src)),
                        start: start + lead,
                        end: start + raw.len(),
                    },
                    dir: server.parent().map(Path::to_path_buf),
                })
            }
            Frame::Lines { lines, idx } => {
                let (t, o) = lines.get(*idx)?.clone();
                *idx += 1;
                Some(Phys {
                    text: t,
                    origin: o,
                    dir: None,
                })
            }
        }
    }
}

/// The directives whose name is matched by prefix in readconf.c, in table order, with the
/// state-machine actions taken when a macro was / was not found on the line.
const CONDS: &[(&str, usize, usize, i8)] = &[
    ("ifdef", 0, 1, 1),
    ("ifndef", 1, 0, 1),
    ("elifdef", 2, 3, 0),
    ("elifndef", 3, 2, 0),
    ("else", 2, 2, 0),
    ("endif", 0, 0, -1),
];
/// next_cstate[state][action]: 0 = reading, 1 = skipping to .else/.elif, 2 = skipping to .endif.
const NEXT: [[u8; 4]; 3] = [[0, 1, 2, 2], [2, 2, 0, 1], [2, 2, 2, 2]];

/// `.include PATH` / `.include_if_exists PATH` (a name followed by a space or tab; the path
/// may be in double quotes): the path and whether it is `_if_exists`.
fn include_directive(text: &str) -> Option<(&str, bool)> {
    let rest = text.strip_prefix(".include")?;
    let (if_exists, path) = match rest.strip_prefix("_if_exists") {
        Some(p) => (true, p),
        None => (false, rest),
    };
    if !path.starts_with([' ', '\t']) {
        return None;
    }
    let mut p = path.trim();
    if p.len() >= 2 && p.starts_with('"') && p.ends_with('"') {
        p = &p[1..p.len() - 1];
    }
    Some((p, if_exists))
}

pub struct Reader<'a> {
    ctx: &'a Context,
    pub macros: Vec<Macro>,
    first_user: usize,
    findings: Vec<Finding>,
    files: Vec<PathBuf>,
    /// Lines inserted after the line starting with `UPEX4CmacrosUPEX4C` (Debian).
    pub debian_seed: Option<Vec<(String, Origin)>>,
    builtin_names: std::collections::HashSet<String>,
}

/// Longest line macro substitution may produce. Exim has no limit (macros_expand() grows
/// big_buffer by BIG_BUFFER_SIZE as needed), so a definition chain that doubles per level
/// reaches gigabytes; no real configuration line comes near this.
pub const MAX_EXPANDED: usize = 4 << 20;

fn is_upper(b: u8) -> bool {
    b.is_ascii_uppercase()
}

fn candidate(bytes: &[u8], i: usize) -> bool {
    match bytes.get(i) {
        Some(&b) if is_upper(b) => true,
        Some(&b'_') => bytes.get(i + 1).is_some_and(|&c| is_upper(c)),
        _ => false,
    }
}

fn find_from(hay: &str, from: usize, needle: &[u8]) -> Option<usize> {
    let b = hay.as_bytes();
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= b.len() {
        if b[i] == first && b[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn skip_to_candidate(s: &str, mut i: usize) -> usize {
    let b = s.as_bytes();
    while i < b.len() && !candidate(b, i) {
        i += 1;
    }
    i
}

impl<'a> Reader<'a> {
    pub fn new(ctx: &'a Context) -> Reader<'a> {
        let mut macros = builtin_macros();
        let first_user = macros.len();
        let builtin_names = macros.iter().map(|m| m.name.to_string()).collect();
        for (n, v) in &ctx.options.exim_defines {
            macros.push(Macro {
                name: n.clone().into(),
                value: v.clone().into(),
                origin: None,
                builtin: false,
                command_line: true,
            });
        }
        Reader {
            ctx,
            macros,
            first_user,
            findings: Vec::new(),
            files: Vec::new(),
            debian_seed: None,
            builtin_names,
        }
    }

    fn err(&mut self, code: &str, origin: &Origin, msg: String) {
        self.findings
            .push(Finding::new(code, Mta::Exim, msg).at(origin.location()));
    }

    /// readconf.c macros_expand(): substitute macros on one physical line.
    /// Returns the new text and the names substituted, or why the line was not expanded:
    /// one longer than MAX_EXPANDED (macros defined from each other can double per level).
    pub fn expand(&self, line: &str, logical_start: bool) -> Result<(String, Vec<String>), String> {
        let mut buf = line.trim_start().to_string();
        let mut used = Vec::new();
        let b = buf.as_bytes();
        let mut s = 0;
        if logical_start && b.first().is_some_and(|&c| is_upper(c)) {
            let mut i = 0;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if b.get(i) == Some(&b'=') {
                s = i;
            }
        }
        s = skip_to_candidate(&buf, s);
        if s >= buf.len() {
            return Ok((buf, used));
        }
        let from = if buf.as_bytes()[s] == b'_' {
            0
        } else {
            self.first_user
        };
        for m in &self.macros[from..] {
            s = skip_to_candidate(&buf, s);
            if s >= buf.len() {
                break;
            }
            // Every occurrence of a macro name starts at a candidate position (an upper-case
            // letter, or `_` + upper case for built-ins), so a byte scan finds the same
            // matches as Exim's strstr() without building a searcher per macro and line.
            let name = m.name.as_bytes();
            let Some(mut p) = find_from(&buf, s, name) else {
                continue;
            };
            // One pass building the new line (replacing in place moved the rest of the line
            // for every occurrence). Like Exim, the search goes on after the inserted value.
            let mut out = String::with_capacity(buf.len());
            out.push_str(&buf[..p]);
            loop {
                out.push_str(&m.value);
                if out.len() > MAX_EXPANDED {
                    return Err(format!(
                        "substituting macro {} makes this line longer than {} MiB (macros defined from each other double per level): Exim grows its line buffer without limit for it (readconf.c macros_expand()), taking minutes and gigabytes of memory before it starts; the line is not read",
                        m.name,
                        MAX_EXPANDED >> 20
                    ));
                }
                let after = p + name.len();
                match find_from(&buf, skip_to_candidate(&buf, after), name) {
                    Some(q) => {
                        out.push_str(&buf[after..q]);
                        p = q;
                    }
                    None => {
                        out.push_str(&buf[after..]);
                        break;
                    }
                }
            }
            buf = out;
            if !used.iter().any(|u| u == &m.name) {
                used.push(m.name.to_string());
            }
        }
        Ok((buf.trim_start().to_string(), used))
    }

    /// macro_read_assignment(); `text` is a complete logical line starting with an upper-case
    /// letter.
    fn assign(&mut self, text: &str, origin: &Origin) {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let name = &text[..i];
        let mut j = i;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if b.get(j) != Some(&b'=') {
            self.err(
                "EX002",
                origin,
                format!("malformed macro definition `{text}`: a line starting with an upper-case letter must be `NAME = value`; Exim refuses to start"),
            );
            return;
        }
        j += 1;
        let redef = b.get(j) == Some(&b'=');
        if redef {
            j += 1;
        }
        let value = text[j..].trim_start().to_string();
        if name.len() > 63 {
            self.err(
                "EX002",
                origin,
                format!("macro name {name} is longer than 63 characters; Exim refuses to start"),
            );
            return;
        }
        let mut existing = None;
        // Built-in names all start with `_`: only a name containing one of them at a `_`
        // can clash, so look those up by substring instead of scanning ~740 names.
        let builtin_clash = name.match_indices('_').find_map(|(i, _)| {
            (i + 2..=name.len())
                .find_map(|j| self.builtin_names.get(&name[i..j]).map(|_| &name[i..j]))
        });
        let first_checked = if builtin_clash.is_some() {
            0
        } else {
            self.first_user
        };
        for (k, m) in self.macros.iter().enumerate().skip(first_checked) {
            if m.name == name {
                existing = Some(k);
                break;
            }
            if m.name.len() < name.len() && name.contains(m.name.as_ref()) {
                let at = m
                    .origin
                    .as_ref()
                    .map(|o| format!(" (defined at {})", o.describe()))
                    .unwrap_or_default();
                self.err(
                    "EX002",
                    origin,
                    format!("\"{name}\" cannot be defined as a macro because previously defined macro \"{}\"{at} is a substring; Exim refuses to start", m.name),
                );
                return;
            }
        }
        match existing {
            Some(k) if self.macros[k].command_line => {}
            Some(k) if redef => {
                self.macros[k].value = Cow::Owned(value);
                self.macros[k].origin = Some(origin.clone());
            }
            Some(k) => {
                let prev = self.macros[k]
                    .origin
                    .as_ref()
                    .map(|o| format!(" at {}", o.describe()))
                    .unwrap_or_else(|| " as a built-in macro".into());
                self.err(
                    "EX002",
                    origin,
                    format!("macro \"{name}\" is already defined{prev} (use \"==\" to redefine it); Exim refuses to start"),
                );
            }
            None if redef => self.err(
                "EX002",
                origin,
                format!("can't redefine an undefined macro \"{name}\"; Exim refuses to start"),
            ),
            None => self.macros.push(Macro {
                name: name.to_string().into(),
                value: value.into(),
                origin: Some(origin.clone()),
                builtin: false,
                command_line: false,
            }),
        }
    }

    fn open(&mut self, real: &Path, server: PathBuf) -> Option<Frame> {
        let src = self.ctx.load_checked(real, Mta::Exim, &mut self.findings)?;
        self.files.push(src.display.clone());
        Some(Frame::File {
            src,
            pos: 0,
            lineno: 0,
            server,
        })
    }

    /// Read the segments in order as one configuration.
    pub fn read(mut self, segments: Vec<Segment>) -> Output {
        let mut out: Vec<LogicalLine> = Vec::new();
        let mut cstate: u8 = 0;
        let mut cstack: Vec<(u8, Origin)> = Vec::new();
        // Pending logical line.
        let mut cur: Option<(String, Origin, Vec<String>)> = None;
        let mut last_origin: Option<Origin> = None;
        let mut seg_iter = segments.into_iter();
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            if stack.is_empty() {
                match seg_iter.next() {
                    None => break,
                    Some(Segment::File { real, server }) => {
                        match self.open(&real, server) {
                            Some(f) => stack.push(f),
                            None => {
                                // A missing top-level file is reported by the variant code.
                                continue;
                            }
                        }
                    }
                    Some(Segment::Lines(l)) => stack.push(Frame::Lines { lines: l, idx: 0 }),
                }
            }
            let phys = match stack.last_mut().and_then(Frame::next) {
                Some(p) => p,
                None => {
                    stack.pop();
                    continue;
                }
            };
            let logical_start = cur.is_none();
            // A comment stays a comment after substitution (it starts at the first upper-case
            // letter, never at the leading `#`), so comment lines need no macro work.
            if phys.text.trim_start().starts_with('#') {
                continue;
            }
            last_origin = Some(phys.origin.clone());
            let (text, used) = match self.expand(&phys.text, logical_start) {
                Ok(x) => x,
                Err(why) => {
                    self.err("EX002", &phys.origin, why);
                    continue;
                }
            };
            if text.starts_with('#') {
                continue;
            }
            if let Some(rest) = text.strip_prefix('.') {
                if self.conditional(
                    rest,
                    &text,
                    !used.is_empty(),
                    &phys.origin,
                    &mut cstate,
                    &mut cstack,
                ) {
                    continue;
                }
            }
            if cstate != 0 {
                continue;
            }
            // Debian: update-exim4.conf inserts its macros after this line (sed on the
            // concatenated text, so only a line starting in column 0 counts).
            let seed_here = phys.text.starts_with("UPEX4CmacrosUPEX4C");
            if let Some((p, if_exists)) = include_directive(&text) {
                self.include(p, if_exists, &phys, &mut stack);
                continue;
            }
            if cur.is_none() {
                if text.is_empty() {
                    continue;
                }
                cur = Some((String::new(), phys.origin.clone(), Vec::new()));
            }
            let mut done = false;
            if let Some((buf, _, u)) = &mut cur {
                buf.push_str(&text);
                let trimmed = buf.trim_end().len();
                buf.truncate(trimmed);
                u.extend(used);
                if !buf.is_empty() {
                    if buf.ends_with('\\') {
                        buf.pop();
                    } else {
                        done = true;
                    }
                }
            }
            if done {
                if let Some((buf, origin, u)) = cur.take() {
                    self.finish_line(buf, origin, u, &mut out);
                }
            }
            if seed_here {
                if let Some(seed) = self.debian_seed.take() {
                    stack.push(Frame::Lines {
                        lines: seed,
                        idx: 0,
                    });
                }
            }
        }
        if let Some((buf, origin, u)) = cur.take() {
            if !buf.is_empty() {
                self.finish_line(buf, origin, u, &mut out);
            }
        }
        if let Some((_, o)) = cstack.first() {
            let o = o.clone();
            let _ = last_origin;
            self.err(
                "EX002",
                &o,
                "unexpected end of configuration: this conditional has no .endif; Exim refuses to start".into(),
            );
        }
        Output {
            lines: out,
            macros: self.macros,
            findings: self.findings,
            files: self.files,
        }
    }

    /// One `.ifdef`/`.ifndef`/`.elifdef`/`.elifndef`/`.else`/`.endif` line (`rest` is the
    /// text after the dot; `found` says whether a macro was substituted in it). Updates the
    /// conditional state and stack; returns whether the line was such a directive.
    fn conditional(
        &mut self,
        rest: &str,
        text: &str,
        found: bool,
        origin: &Origin,
        cstate: &mut u8,
        cstack: &mut Vec<(u8, Origin)>,
    ) -> bool {
        let Some(&(name, a1, a2, pushpop)) = CONDS.iter().find(|c| rest.starts_with(c.0)) else {
            return false;
        };
        // readconf.c accepts ' ', 't' (sic), newline or end after the name.
        match rest.as_bytes().get(name.len()) {
            None | Some(b' ') | Some(b't') => {}
            Some(_) => {
                self.err(
                    "EX002",
                    origin,
                    format!(
                        "`{}` is ignored by Exim: the directive name must be followed by a space",
                        text.trim_end()
                    ),
                );
                return true;
            }
        }
        let action = if found { a1 } else { a2 };
        if pushpop > 0 {
            if cstack.len() >= 9 {
                self.err(
                    "EX002",
                    origin,
                    format!(
                        ".{name} nested too deeply (Exim allows 10 levels); Exim refuses to start"
                    ),
                );
            }
            cstack.push((*cstate, origin.clone()));
            *cstate = NEXT[*cstate as usize][action];
        } else if cstack.is_empty() {
            self.err(
                "EX002",
                origin,
                format!(".{name} without matching .ifdef; Exim refuses to start"),
            );
        } else if pushpop < 0 {
            *cstate = cstack.pop().map(|(s, _)| s).unwrap_or(0);
        } else {
            *cstate = NEXT[*cstate as usize][action];
        }
        true
    }

    fn finish_line(
        &mut self,
        text: String,
        origin: Origin,
        used: Vec<String>,
        out: &mut Vec<LogicalLine>,
    ) {
        // `NAME = ...` / `NAME == ...` is a macro definition; an upper-case driver name such
        // as `LOGIN:` is not (Exim accepts those in the driver sections).
        let b = text.as_bytes();
        if b.first().is_some_and(|&c| is_upper(c)) {
            let mut i = 0;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if b.get(i) == Some(&b'=') || i >= b.len() {
                self.assign(&text, &origin);
                return;
            }
        }
        out.push(LogicalLine {
            text,
            origin,
            macros_used: used,
        });
    }

    fn include(&mut self, path: &str, if_exists: bool, phys: &Phys, stack: &mut Vec<Frame>) {
        let server: PathBuf = if path.starts_with('/') {
            PathBuf::from(path)
        } else if if_exists {
            self.err(
                "EX002",
                &phys.origin,
                format!(".include_if_exists specifies a non-absolute path \"{path}\"; Exim refuses to start"),
            );
            return;
        } else {
            match &phys.dir {
                Some(d) => d.join(path),
                None => PathBuf::from(path),
            }
        };
        let real = self.ctx.root.resolve(&server);
        if !real.exists() {
            if !if_exists {
                self.err(
                    "EX003",
                    &phys.origin,
                    format!(
                        ".include {}: the file does not exist, so Exim fails to start (\"failed to open included configuration file\") and no mail is accepted",
                        server.display()
                    ),
                );
            }
            return;
        }
        let display = self.ctx.root.display(&real);
        let on_stack = stack.iter().any(|f| match f {
            Frame::File { src, .. } => src.display == display,
            _ => false,
        });
        if on_stack {
            self.err(
                "EX002",
                &phys.origin,
                format!(
                    ".include {} includes a file that is already being read (an include cycle); Exim recurses until it runs out of file descriptors and fails to start",
                    server.display()
                ),
            );
            return;
        }
        if let Some(f) = self.open(&real, server) {
            stack.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Options, Root};

    fn read(text: &str, defines: &[(&str, &str)]) -> Output {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("exim.conf");
        std::fs::write(&p, text).unwrap();
        let ctx = Context::new(
            Root::live(),
            Options {
                exim_defines: defines
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                ..Default::default()
            },
        );
        Reader::new(&ctx).read(vec![Segment::File {
            real: p.clone(),
            server: p,
        }])
    }

    fn texts(o: &Output) -> Vec<String> {
        o.lines.iter().map(|l| l.text.clone()).collect()
    }

    #[test]
    fn macros_substitute_in_definition_order_without_word_boundaries() {
        let o = read("AB = 1\nABC = 2\nx = ABC xABx\n", &[]);
        // ABC contains AB, defined earlier: a configuration error, and ABC is not defined.
        assert!(o
            .findings
            .iter()
            .any(|f| f.message.contains("is a substring")));
        assert_eq!(texts(&o), vec!["x = 1C x1x"]);
    }

    #[test]
    fn longer_macro_first_is_allowed_and_wins() {
        let o = read("ABC = 2\nAB = 1\nx = ABC AB\n", &[]);
        assert!(o.findings.is_empty(), "{:?}", o.findings);
        assert_eq!(texts(&o), vec!["x = 2 1"]);
    }

    #[test]
    fn redefinition_needs_double_equals_and_command_line_wins() {
        let o = read("A = 1\nA = 2\nA == 3\nx = A\nB = 1\ny = B\n", &[("B", "9")]);
        assert_eq!(o.findings.len(), 1);
        assert_eq!(texts(&o), vec!["x = 3", "y = 9"]);
    }

    #[test]
    fn ifdef_tests_substitution_on_the_line() {
        let t = "FOO = 1\n.ifdef FOOBAR\na = 1\n.elifdef NOPE\nb = 1\n.else\nc = 1\n.endif\n.ifndef X\nd = 1\n.endif\n";
        let o = read(t, &[]);
        // "FOOBAR" contains FOO: substitution happens, so .ifdef FOOBAR is true.
        assert_eq!(texts(&o), vec!["a = 1", "d = 1"]);
    }

    #[test]
    fn continuation_and_comments_inside_it() {
        let o = read("a = x \\\n# comment\n    y\n  # c\nb = 2\n", &[]);
        assert_eq!(texts(&o), vec!["a = x y", "b = 2"]);
        assert_eq!(o.lines[1].origin.line, 5);
    }

    #[test]
    fn missing_endif_and_include() {
        let o = read(".ifdef X\n.include /nonexistent/x\n", &[]);
        assert!(o.findings.iter().any(|f| f.message.contains(".endif")));
        let o = read(
            ".include /nonexistent/x\n.include_if_exists /nonexistent/y\n",
            &[],
        );
        assert_eq!(o.findings.len(), 1);
        assert_eq!(o.findings[0].code, "EX003");
    }
}
