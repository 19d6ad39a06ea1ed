//! `$name` expansion as Postfix does it (postconf(5) "Parameter expansion"; src/util/mac_expand.c).
//!
//! Supported: `$name`, `${name}`, `$(name)`, `$$`, `${name?text}`, `${name:text}`,
//! `${name?{text}}`, `${name:{text}}`, `${name?{a}:{b}}`, and the relational forms
//! `${{a} OP {b} ? {x} : {y}}` with OP one of `==`, `!=`, `<`, `<=`, `>`, `>=` (numeric) and
//! `<level`, `<=level`, `>level`, `>=level` (compatibility levels, 3.6+). Expansion is lazy:
//! a name is looked up only when referenced, so definition order does not matter.
//!
//! Nesting: Postfix gives up with "unreasonable macro call nesting" when a value is expanded
//! more than 100 levels below the parameter being read (a 101-deep chain is fatal; verified
//! with postconf 3.7.11). A loop always hits that limit; relaydoctor reports it as a loop.
//! Results are memoised together with how deep their expansion went, so the limit is applied
//! exactly even when a memoised value is reused at a different depth.
//!
//! Length: mac_expand.c bounds only the nesting (`if (mc->level++ > 100)`, "unreasonable macro
//! call nesting"); the result VSTRING grows until vstring_extend() or mymalloc() stop the
//! process (`fatal: vstring_extend: length overflow` / `out of memory`). `e0 = $e1 $e1`,
//! `e1 = $e2 $e2`, ... 30 levels deep is legal nesting but doubles the value per level, so a
//! daemon reading it allocates gigabytes. relaydoctor refuses to build a value longer than
//! [`MAX_VALUE`], or to copy more than [`MAX_SUBSTITUTED`] bytes of substitutions in one scope,
//! and reports the chain ([`ExpandError::TooLong`], PF012) instead: time and memory stay bounded.

use std::collections::{HashMap, HashSet};

/// Postfix's limit on nested expansion (mac_expand.c).
pub const MAX_NESTING: usize = 100;
/// Longest expanded value relaydoctor builds (the largest real main.cf value seen in the
/// corpus, a long mynetworks list, is a few hundred KiB).
pub const MAX_VALUE: usize = 4 << 20;
/// Bytes that `$name` substitution may copy in one expansion scope before every further
/// expansion fails: bounds the work of many parameters each reading a huge value.
pub const MAX_SUBSTITUTED: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `a -> b -> a`: the names in the cycle, starting and ending with the same one.
    Loop(Vec<String>),
    /// A chain deeper than Postfix allows; the chain from the parameter read to the deepest name.
    TooDeep(Vec<String>),
    /// The value grows beyond [`MAX_VALUE`] (or the scope's substitution budget): the chain
    /// from the parameter read to the name whose substitution crossed the limit.
    TooLong(Vec<String>),
    /// Malformed expression (unbalanced braces, bad relational operator).
    Syntax(String),
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Loop(c) => write!(f, "expansion loop: ${}", c.join(" -> $")),
            ExpandError::TooDeep(c) => write!(
                f,
                "expansion nested more than {MAX_NESTING} levels deep (${} -> ... -> ${})",
                c.first().map(String::as_str).unwrap_or(""),
                c.last().map(String::as_str).unwrap_or("")
            ),
            ExpandError::TooLong(c) => write!(
                f,
                "expansion grows beyond {} MiB (${} -> ... -> ${}): each level repeats the one below",
                MAX_VALUE >> 20,
                c.first().map(String::as_str).unwrap_or(""),
                c.last().map(String::as_str).unwrap_or("")
            ),
            ExpandError::Syntax(s) => write!(f, "bad expansion syntax: {s}"),
        }
    }
}

/// Where raw (unexpanded) parameter values come from.
pub trait Lookup {
    fn raw(&self, name: &str) -> Option<String>;
}

impl<T: Lookup + ?Sized> Lookup for Box<T> {
    fn raw(&self, name: &str) -> Option<String> {
        (**self).raw(name)
    }
}

#[derive(Debug, Clone)]
enum Memo {
    /// Expanded value and how many levels below the parameter its expansion reached.
    Done(String, usize),
    Failed(ExpandError),
}

/// An expander with a memo; one per scope (main.cf, or one master.cf service).
pub struct Expander<L: Lookup> {
    pub lookup: L,
    memo: HashMap<String, Memo>,
    stack: Vec<String>,
    /// Names referenced but defined nowhere (they expand to empty), in first-seen order.
    pub undefined: Vec<String>,
    undefined_set: HashSet<String>,
    /// Bytes copied by `$name` substitution so far (bounded by MAX_SUBSTITUTED).
    substituted: usize,
}

type Res = Result<(String, usize), ExpandError>;

impl<L: Lookup> Expander<L> {
    pub fn new(lookup: L) -> Self {
        Expander {
            lookup,
            memo: HashMap::new(),
            stack: Vec::new(),
            undefined: Vec::new(),
            undefined_set: HashSet::new(),
            substituted: 0,
        }
    }

    /// The expanded value of parameter `name` (None when it is not defined at all).
    pub fn param(&mut self, name: &str) -> Option<Result<String, ExpandError>> {
        self.lookup.raw(name)?;
        Some(self.param_at(name, 0).map(|(v, _)| v))
    }

    /// Expand arbitrary text as the value of a parameter would be.
    pub fn text(&mut self, text: &str) -> Result<String, ExpandError> {
        self.expand(text, 0).map(|(v, _)| v)
    }

    fn param_at(&mut self, name: &str, level: usize) -> Res {
        if let Some(m) = self.memo.get(name) {
            return match m {
                Memo::Done(v, depth) => {
                    if level + depth > MAX_NESTING {
                        let mut chain = self.stack.clone();
                        chain.push(name.to_string());
                        Err(ExpandError::TooDeep(chain))
                    } else {
                        Ok((v.clone(), *depth))
                    }
                }
                Memo::Failed(e) => Err(e.clone()),
            };
        }
        if let Some(pos) = self.stack.iter().position(|n| n == name) {
            let mut cycle: Vec<String> = self.stack[pos..].to_vec();
            cycle.push(name.to_string());
            return Err(ExpandError::Loop(cycle));
        }
        if level > MAX_NESTING {
            let mut chain = self.stack.clone();
            chain.push(name.to_string());
            return Err(ExpandError::TooDeep(chain));
        }
        let Some(raw) = self.lookup.raw(name) else {
            // Memoised too: 32k references to one undefined name cost one lookup.
            if self.undefined_set.insert(name.to_string()) {
                self.undefined.push(name.to_string());
            }
            self.memo
                .insert(name.to_string(), Memo::Done(String::new(), 0));
            return Ok((String::new(), 0));
        };
        self.stack.push(name.to_string());
        let r = self.expand(&raw, level);
        self.stack.pop();
        match &r {
            Ok((v, depth)) => {
                // Depth relative to this parameter's own level.
                self.memo
                    .insert(name.to_string(), Memo::Done(v.clone(), *depth));
            }
            // A too-deep error depends on the level we started at: do not memoise it.
            Err(ExpandError::TooDeep(_)) => {}
            Err(e) => {
                self.memo.insert(name.to_string(), Memo::Failed(e.clone()));
            }
        }
        r
    }

    /// Expand `text` found at nesting `level`. Returns the text and the depth (levels below
    /// `level`) its expansion reached.
    fn expand(&mut self, text: &str, level: usize) -> Res {
        if !text.contains('$') {
            return Ok((text.to_string(), 0));
        }
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut depth = 0usize;
        let mut i = 0;
        let mut lit_start = 0;
        while i < b.len() {
            if b[i] != b'$' {
                i += 1;
                continue;
            }
            out.push_str(&text[lit_start..i]);
            let next = b.get(i + 1).copied();
            match next {
                Some(b'$') => {
                    out.push('$');
                    i += 2;
                }
                Some(open @ (b'{' | b'(')) => {
                    let close = if open == b'{' { b'}' } else { b')' };
                    let Some(end) = matching(b, i + 1, open, close) else {
                        return Err(ExpandError::Syntax(format!(
                            "missing '{}' in \"{}\"",
                            close as char,
                            &text[i..]
                        )));
                    };
                    let inner = &text[i + 2..end];
                    let (v, d) = self.braced(inner, level)?;
                    self.append(&mut out, &v, inner)?;
                    depth = depth.max(d);
                    i = end + 1;
                }
                Some(c) if is_name_byte(c) => {
                    let mut j = i + 1;
                    while j < b.len() && is_name_byte(b[j]) {
                        j += 1;
                    }
                    let (v, d) = self.param_at(&text[i + 1..j], level + 1)?;
                    self.append(&mut out, &v, &text[i + 1..j])?;
                    depth = depth.max(d + 1);
                    i = j;
                }
                _ => {
                    // A lone `$` is kept as text.
                    out.push('$');
                    i += 1;
                }
            }
            lit_start = i;
        }
        out.push_str(&text[lit_start.min(text.len())..]);
        Ok((out, depth))
    }

    /// `out += v` for a substitution of `name`, within MAX_VALUE and the scope's budget.
    fn append(&mut self, out: &mut String, v: &str, name: &str) -> Result<(), ExpandError> {
        self.substituted = self.substituted.saturating_add(v.len());
        if out.len() + v.len() > MAX_VALUE || self.substituted > MAX_SUBSTITUTED {
            let mut chain = self.stack.clone();
            let end: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !end.is_empty() {
                chain.push(end);
            }
            return Err(ExpandError::TooLong(chain));
        }
        out.push_str(v);
        Ok(())
    }

    /// The inside of `${...}` / `$(...)`.
    fn braced(&mut self, inner: &str, level: usize) -> Res {
        let t = inner.trim_start();
        if t.starts_with('{') {
            return self.relational(t, level);
        }
        let b = inner.as_bytes();
        let mut j = 0;
        while j < b.len() && is_name_byte(b[j]) {
            j += 1;
        }
        let name = &inner[..j];
        if name.is_empty() {
            return Err(ExpandError::Syntax(format!(
                "no parameter name in \"${{{inner}}}\""
            )));
        }
        let rest = &inner[j..];
        let (v, d) = self.param_at(name, level + 1)?;
        let d = d + 1;
        let Some(op) = rest.chars().next() else {
            return Ok((v, d));
        };
        if op != '?' && op != ':' {
            return Err(ExpandError::Syntax(format!(
                "unexpected text after ${name} in \"${{{inner}}}\""
            )));
        }
        let arg = &rest[1..];
        let non_empty = !v.is_empty();
        // `{a}:{b}` form (3.0+): `?` takes the first, `:` the second part.
        let (when_set, when_empty): (Option<&str>, Option<&str>) =
            if arg.trim_start().starts_with('{') {
                let (a, after) = take_braced(arg.trim_start()).ok_or_else(|| {
                    ExpandError::Syntax(format!("unbalanced '{{' in \"{inner}\""))
                })?;
                let after = after.trim_start();
                if let Some(r) = after.strip_prefix(':') {
                    let (bb, tail) = take_braced(r.trim_start()).ok_or_else(|| {
                        ExpandError::Syntax(format!("unbalanced '{{' in \"{inner}\""))
                    })?;
                    if !tail.trim().is_empty() {
                        return Err(ExpandError::Syntax(format!(
                            "unexpected text after '}}' in \"{inner}\""
                        )));
                    }
                    if op == '?' {
                        (Some(a), Some(bb))
                    } else {
                        (Some(bb), Some(a))
                    }
                } else if after.is_empty() {
                    if op == '?' {
                        (Some(a), None)
                    } else {
                        (None, Some(a))
                    }
                } else {
                    return Err(ExpandError::Syntax(format!(
                        "unexpected text after '}}' in \"{inner}\""
                    )));
                }
            } else if op == '?' {
                (Some(arg), None)
            } else {
                (None, Some(arg))
            };
        let chosen = if non_empty { when_set } else { when_empty };
        match chosen {
            Some(t) => {
                let (v2, d2) = self.expand(t, level)?;
                Ok((v2, d.max(d2)))
            }
            None => Ok((String::new(), d)),
        }
    }

    /// `{a} OP {b} ? {x} : {y}` (the `: {y}` part is optional).
    fn relational(&mut self, t: &str, level: usize) -> Res {
        let bad = || ExpandError::Syntax(format!("bad relational expression \"${{{t}}}\""));
        let (a, rest) = take_braced(t).ok_or_else(bad)?;
        let rest = rest.trim_start();
        let ops = [
            "<=level", ">=level", "<level", ">level", "==", "!=", "<=", ">=", "<", ">",
        ];
        let op = ops.iter().find(|o| rest.starts_with(**o)).ok_or_else(bad)?;
        let rest = rest[op.len()..].trim_start();
        let (bv, rest) = take_braced(rest).ok_or_else(bad)?;
        let rest = rest.trim_start().strip_prefix('?').ok_or_else(bad)?;
        let (x, rest) = take_braced(rest.trim_start()).ok_or_else(bad)?;
        let rest = rest.trim_start();
        let y = if let Some(r) = rest.strip_prefix(':') {
            let (y, tail) = take_braced(r.trim_start()).ok_or_else(bad)?;
            if !tail.trim().is_empty() {
                return Err(bad());
            }
            Some(y)
        } else if rest.is_empty() {
            None
        } else {
            return Err(bad());
        };
        let (av, da) = self.expand(a, level)?;
        let (bvv, db) = self.expand(bv, level)?;
        let (av, bvv) = (av.trim(), bvv.trim());
        let truth = match *op {
            "==" => av == bvv,
            "!=" => av != bvv,
            "<" | "<=" | ">" | ">=" => {
                let (Ok(x1), Ok(x2)) = (av.parse::<i64>(), bvv.parse::<i64>()) else {
                    return Err(ExpandError::Syntax(format!(
                        "non-numeric operand in \"${{{t}}}\""
                    )));
                };
                compare(op, x1, x2)
            }
            _ => {
                let (Some(l1), Some(l2)) = (parse_level(av), parse_level(bvv)) else {
                    return Err(ExpandError::Syntax(format!(
                        "bad compatibility level in \"${{{t}}}\""
                    )));
                };
                compare(op.trim_end_matches("level"), l1, l2)
            }
        };
        let d = da.max(db);
        let chosen = if truth { Some(x) } else { y };
        match chosen {
            Some(c) => {
                let (v, dc) = self.expand(c, level)?;
                Ok((v, d.max(dc)))
            }
            None => Ok((String::new(), d)),
        }
    }
}

/// `a OP b` for OP one of <, <=, >, >= (the numeric and the compatibility-level tests).
fn compare<T: Ord>(op: &str, a: T, b: T) -> bool {
    match op {
        "<" => a < b,
        "<=" => a <= b,
        ">" => a > b,
        _ => a >= b,
    }
}

/// A compatibility level `major[.minor[.patch]]` as a comparable triple.
pub fn parse_level(s: &str) -> Option<(u64, u64, u64)> {
    let mut it = s.trim().split('.');
    let a = it.next()?.parse().ok()?;
    let b = match it.next() {
        Some(x) => x.parse().ok()?,
        None => 0,
    };
    let c = match it.next() {
        Some(x) => x.parse().ok()?,
        None => 0,
    };
    if it.next().is_some() {
        return None;
    }
    Some((a, b, c))
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Index of the `close` that matches the `open` at `start`.
fn matching(b: &[u8], start: usize, open: u8, close: u8) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &c) in b.iter().enumerate().skip(start) {
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// `{text}rest` -> (text, rest), braces balanced.
fn take_braced(s: &str) -> Option<(&str, &str)> {
    if !s.starts_with('{') {
        return None;
    }
    let end = matching(s.as_bytes(), 0, b'{', b'}')?;
    Some((&s[1..end], &s[end + 1..]))
}

/// Every parameter name referenced by `$name`, `${name...}` or `$(name...)` in `text`,
/// with its byte offset (of the `$`). Used to find references to undefined parameters and
/// to know which user-defined names are in use.
pub fn references(text: &str) -> Vec<(usize, &str)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') | Some(b'(') => {
                let mut j = i + 2;
                while j < b.len() && is_name_byte(b[j]) {
                    j += 1;
                }
                if j > i + 2 {
                    out.push((i, &text[i + 2..j]));
                }
                // Names inside `?{...}` texts or relational operands are found as the scan
                // continues past this point.
                i = j.max(i + 2);
            }
            Some(&c) if is_name_byte(c) => {
                let mut j = i + 1;
                while j < b.len() && is_name_byte(b[j]) {
                    j += 1;
                }
                out.push((i, &text[i + 1..j]));
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<String, String>);
    impl Lookup for &Map {
        fn raw(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }
    fn map(pairs: &[(&str, &str)]) -> Map {
        Map(pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect())
    }

    #[test]
    fn forms_match_postconf() {
        // Expected values taken from postconf 3.7.11 -x on the same definitions.
        let m = map(&[
            ("compatibility_level", "0"),
            ("b", "1 # two"),
            ("mail_owner", "postfix"),
            ("myorigin", ""),
            (
                "x",
                "${{$compatibility_level} <level {2} ? {A} : {B}} ${{1} < {2} ? {lt}:{ge}} ${{x} == {x}?{eq}:{ne}} ${{x}!={y}?{ne}} ${myorigin:empty} ${nonexist?set} $$x ${mail_owner} $(mail_owner)x",
            ),
            ("foo", "${{3.6.1} <=level {3.6} ? {a} : {b}}"),
            ("c", "${mail_owner?{set}:{unset}} ${myorigin?{set}:{unset}}"),
        ]);
        let mut e = Expander::new(&m);
        assert_eq!(
            e.param("x").unwrap().unwrap(),
            "A lt eq ne empty  $x postfix postfixx"
        );
        assert_eq!(e.param("foo").unwrap().unwrap(), "b");
        assert_eq!(e.param("c").unwrap().unwrap(), "set unset");
        assert_eq!(e.undefined, vec!["nonexist".to_string()]);
    }

    #[test]
    fn loops_and_depth() {
        let m = map(&[("a", "$b"), ("b", "x $a")]);
        let mut e = Expander::new(&m);
        assert!(matches!(e.param("a"), Some(Err(ExpandError::Loop(c))) if c == ["a", "b", "a"]));

        let mut pairs: Vec<(String, String)> = (0..100)
            .map(|i| (format!("p{i}"), format!("$p{}", i + 1)))
            .collect();
        pairs.push(("p100".into(), "end".into()));
        let m = Map(pairs.into_iter().collect());
        let mut e = Expander::new(&m);
        // p1 -> ... -> p100 is 99 levels: fine; p0 -> ... -> p100 is 100: fine;
        // reading through one more name (101) is what postconf rejects.
        assert_eq!(e.param("p1").unwrap().unwrap(), "end");
        assert_eq!(e.param("p0").unwrap().unwrap(), "end");
        assert!(matches!(e.text("$p0"), Err(ExpandError::TooDeep(_))));

        let pairs: HashMap<String, String> = (0..1000)
            .map(|i| (format!("q{i}"), format!("$q{}", i + 1)))
            .collect();
        let m = Map(pairs);
        let mut e = Expander::new(&m);
        assert!(matches!(e.param("q0"), Some(Err(ExpandError::TooDeep(_)))));
    }

    #[test]
    fn finds_references() {
        let r: Vec<_> = references("a $b ${c?x} $(d) $$e ${{$f} == {1}?{y}}")
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(r, vec!["b", "c", "d", "f"]);
    }
}
