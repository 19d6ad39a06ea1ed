//! `regexp:` and `pcre:` tables (regexp_table(5), pcre_table(5)), read so that lookups in
//! them can be evaluated instead of being `depends`.
//!
//! Format: logical lines as in postmap(1) files; `[!]/pattern/flags result`, and
//! `if [!]/pattern/flags` ... `endif` blocks that nest. The delimiter is any
//! non-alphanumeric, non-blank character (regexp_table(5)). Matching is case-insensitive by
//! default; flag `i` toggles that, `m` toggles multi-line mode; regexp's `x` (on by default)
//! toggles extended syntax, and basic syntax is not evaluated. The first rule that matches
//! (inside every enclosing `if`) answers.
//!
//! Patterns are compiled with the `regex` crate. POSIX extended and PCRE syntax agree with it
//! for what access and alias tables use (classes, anchors, groups, alternation); a pattern it
//! cannot compile (back-references, look-around, basic syntax) makes the whole table not
//! evaluated, so that no answer is invented.

use regex::{Regex, RegexBuilder};

/// One condition: the compiled pattern and whether it is negated.
pub type Cond = (Regex, bool);

/// A rule: its conditions (enclosing `if`s first), result and line.
pub struct Rule {
    pub conds: Vec<Cond>,
    pub pattern: String,
    pub result: String,
    pub line: usize,
}

/// The rules of a table, or why it cannot be evaluated.
pub fn parse(text: &str, pcre: bool) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    let mut stack: Vec<Cond> = Vec::new();
    for (line, l) in super::maps::logical_lines(text) {
        let (word, rest) = l.split_once([' ', '\t']).unwrap_or((l.as_str(), ""));
        if word.eq_ignore_ascii_case("endif") {
            stack.pop();
            continue;
        }
        if word.eq_ignore_ascii_case("if") {
            let (c, _) =
                pattern(rest.trim_start(), pcre).map_err(|e| format!("line {line}: {e}"))?;
            stack.push(c);
            continue;
        }
        let ((re, neg), after) = pattern(&l, pcre).map_err(|e| format!("line {line}: {e}"))?;
        let pattern = l[..l.len() - after.len()].trim().to_string();
        let mut conds = stack.clone();
        conds.push((re, neg));
        rules.push(Rule {
            conds,
            pattern,
            result: after.trim().to_string(),
            line,
        });
    }
    Ok(rules)
}

/// The first rule that matches `key`.
pub fn lookup<'r>(rules: &'r [Rule], key: &str) -> Option<&'r Rule> {
    rules
        .iter()
        .find(|r| r.conds.iter().all(|(re, neg)| re.is_match(key) != *neg))
}

/// `[!]<d>pattern<d>flags` at the start of `s`: the condition and the text after the flags.
fn pattern(s: &str, pcre: bool) -> Result<(Cond, &str), String> {
    let (neg, s) = match s.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let delim = s
        .chars()
        .next()
        .filter(|c| !c.is_alphanumeric() && !c.is_whitespace())
        .ok_or_else(|| format!("`{s}` does not start with a pattern delimiter"))?;
    let body = &s[delim.len_utf8()..];
    let mut end = None;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == delim {
            end = Some(i);
            break;
        }
    }
    let end = end.ok_or_else(|| format!("pattern without closing {delim}"))?;
    let pat = &body[..end];
    let after = &body[end + delim.len_utf8()..];
    let flags_len = after
        .find(|c: char| c.is_whitespace())
        .unwrap_or(after.len());
    let (flags, rest) = after.split_at(flags_len);
    let mut insensitive = true;
    let mut multi = false;
    let mut dotall = false;
    let mut blanks_ignored = false;
    for f in flags.chars() {
        match f {
            'i' => insensitive = !insensitive,
            'm' => multi = !multi,
            'x' if !pcre => {
                return Err("basic regular expression syntax (flag x) is not evaluated".into())
            }
            's' if pcre => dotall = !dotall,
            // pcre_table(5) `x`: blanks and `#` comments in the pattern are ignored, as in
            // the regex crate's `x` mode. The other PCRE flags are not modelled.
            'x' => blanks_ignored = !blanks_ignored,
            other => return Err(format!("flag {other} is not evaluated")),
        }
    }
    // A delimiter escaped inside the pattern stands for itself.
    let pat = pat.replace(&format!("\\{delim}"), &delim.to_string());
    let re = RegexBuilder::new(&pat)
        .case_insensitive(insensitive)
        .multi_line(multi)
        .dot_matches_new_line(dotall)
        .ignore_whitespace(blanks_ignored)
        .build()
        .map_err(|e| format!("pattern {pat} cannot be evaluated here: {e}"))?;
    Ok(((re, neg), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_with_if_blocks_negation_and_flags() {
        let t = "# relay for partners\n/^partner\\.example$/ OK\nif /@example\\.com$/\n!/^postmaster@/ REJECT not here\nendif\n/^CaSe$/i exact\n|a/b| slash\n";
        let rules = parse(t, false).unwrap();
        assert_eq!(lookup(&rules, "PARTNER.example").unwrap().result, "OK");
        assert_eq!(
            lookup(&rules, "bob@example.com").unwrap().result,
            "REJECT not here"
        );
        assert!(lookup(&rules, "postmaster@example.com").is_none());
        assert_eq!(lookup(&rules, "CaSe").unwrap().result, "exact");
        assert!(lookup(&rules, "case").is_none());
        assert_eq!(lookup(&rules, "xa/by").unwrap().result, "slash");
        assert_eq!(lookup(&rules, "bob@example.com").unwrap().line, 4);
    }

    #[test]
    fn what_cannot_be_evaluated_says_so() {
        assert!(parse("/(a)\\1/ OK\n", true).is_err());
        assert!(parse("/a/x OK\n", false).is_err());
        assert!(parse("a OK\n", false).is_err());
        // pcre's x flag: blanks in the pattern do not count.
        let rules = parse("/^a b$/x OK\n", true).unwrap();
        assert!(lookup(&rules, "ab").is_some());
    }
}
