//! Inline suppressions: `# relaydoctor: ignore PF103 -- reason` on the comment lines directly
//! above the logical line a finding points at.
//!
//! Only the line-before form exists, for every MTA: in Postfix a `#` after a value is part of
//! the value (postconf(5)), and in Exim a `#` that is not the first non-blank character of a
//! line is literal text (Exim spec, "Comment lines"), so an end-of-line comment would change
//! the configuration instead of annotating it.
//!
//! A suppression must give a reason (after `--`); one without is reported (RD011) and does
//! not suppress. A suppression that no longer matches any finding is reported (RD010), like
//! ruff's unused-noqa, so stale ones do not pile up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::context::Context;
use crate::finding::{Finding, Mta};
use crate::source::SourceFile;

const MARKER: &str = "relaydoctor:";

#[derive(Debug, Clone)]
struct Directive {
    line: usize,
    codes: Vec<String>,
    has_reason: bool,
    start: usize,
    end: usize,
}

/// Parse a directive from one physical line, if it is a comment holding one.
fn parse_line(text: &str) -> Option<(Vec<String>, bool)> {
    let t = text.trim_start();
    let body = t.strip_prefix('#')?.trim_start();
    let rest = body.strip_prefix(MARKER)?.trim_start();
    let rest = rest.strip_prefix("ignore")?;
    let (codes, reason) = match rest.split_once("--") {
        Some((c, r)) => (c, r.trim()),
        None => (rest, ""),
    };
    let codes = codes
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|c| !c.is_empty())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Some((codes, !reason.is_empty()))
}

fn directives(src: &SourceFile) -> Vec<Directive> {
    // Cheap pre-filter: most files have no directive at all.
    if !src.text.contains(MARKER) {
        return Vec::new();
    }
    (1..=src.line_count())
        .filter_map(|line| {
            let text = src.line_text(line);
            parse_line(text).map(|(codes, has_reason)| {
                let start = src.line_start(line);
                Directive {
                    line,
                    codes,
                    has_reason,
                    start,
                    end: start + text.len(),
                }
            })
        })
        .collect()
}

fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// The first physical line of the logical line that contains `line`: continuation lines
/// start with whitespace (Postfix) or follow a line ending in a backslash (Exim).
fn logical_start(src: &SourceFile, mut line: usize) -> usize {
    while line > 1 {
        let cur = src.line_text(line);
        let prev = src.line_text(line - 1);
        if prev.trim().is_empty() || is_comment(prev) {
            break;
        }
        let continued = cur.starts_with([' ', '\t']) || prev.trim_end().ends_with('\\');
        if !continued {
            break;
        }
        line -= 1;
    }
    line
}

/// The directive lines (in the comment block directly above the logical line) that apply
/// to a finding at `line`.
fn applicable(src: &SourceFile, dirs: &[Directive], line: usize) -> Vec<usize> {
    let mut l = logical_start(src, line);
    let mut out = Vec::new();
    while l > 1 && is_comment(src.line_text(l - 1)) {
        l -= 1;
        if dirs.iter().any(|d| d.line == l) {
            out.push(l);
        }
    }
    out
}

/// Drop suppressed findings and add RD010/RD011 for unused or reason-less directives.
pub fn apply(ctx: &Context, findings: &mut Vec<Finding>) {
    let mut cache: BTreeMap<PathBuf, (Arc<SourceFile>, Vec<Directive>)> = BTreeMap::new();
    let mut used: BTreeSet<(PathBuf, usize)> = BTreeSet::new();
    let mut keep = Vec::with_capacity(findings.len());
    for f in findings.drain(..) {
        let suppressed = f.location.as_ref().is_some_and(|loc| {
            let entry =
                cache
                    .entry(loc.file.clone())
                    .or_insert_with(|| match ctx.source(&loc.file) {
                        Some(src) => {
                            let d = directives(&src);
                            (src, d)
                        }
                        None => (Arc::new(SourceFile::from_text("", "")), Vec::new()),
                    });
            let (src, dirs) = (&entry.0, &entry.1);
            if dirs.is_empty() {
                return false;
            }
            let mut hit = false;
            for l in applicable(src, dirs, loc.line) {
                let Some(d) = dirs.iter().find(|d| d.line == l) else {
                    continue;
                };
                if d.has_reason && d.codes.iter().any(|c| c == &f.code) {
                    used.insert((loc.file.clone(), l));
                    hit = true;
                }
            }
            hit
        });
        if !suppressed {
            keep.push(f);
        }
    }
    // Every file read in this run may hold directives, also files without findings.
    let mut extra = Vec::new();
    for display in ctx.loaded_paths() {
        let Some(src) = ctx.source(&display) else {
            continue;
        };
        for d in directives(&src) {
            let loc = src.location(d.start, d.end);
            let mta = mta_of(&keep, &display);
            if !d.has_reason {
                extra.push(
                    Finding::new(
                        "RD011",
                        mta,
                        format!(
                            "suppression of {} gives no reason, so it suppresses nothing",
                            d.codes.join(", ")
                        ),
                    )
                    .at(loc)
                    .help(
                        "write it as `# relaydoctor: ignore CODE -- why this is acceptable here`",
                    ),
                );
            } else if !used.contains(&(display.clone(), d.line)) {
                extra.push(
                    Finding::new(
                        "RD010",
                        mta,
                        format!(
                            "suppression of {} matches no finding on the setting below it",
                            if d.codes.is_empty() {
                                "nothing".to_string()
                            } else {
                                d.codes.join(", ")
                            }
                        ),
                    )
                    .at(loc)
                    .help("the problem was fixed or the comment moved: remove the comment"),
                );
            }
        }
    }
    keep.extend(extra);
    *findings = keep;
}

fn mta_of(findings: &[Finding], file: &std::path::Path) -> Mta {
    let s = file.to_string_lossy();
    findings
        .iter()
        .find(|f| f.location.as_ref().is_some_and(|l| l.file == file))
        .map(|f| f.mta)
        .unwrap_or(if s.contains("exim") {
            Mta::Exim
        } else if s.contains("qmail") || s.contains("tcp") {
            Mta::Qmail
        } else {
            Mta::Postfix
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives() {
        assert_eq!(
            parse_line("  # relaydoctor: ignore QQ103, qq104 -- approved"),
            Some((vec!["QQ103".into(), "QQ104".into()], true))
        );
        assert_eq!(
            parse_line("# relaydoctor: ignore QQ103"),
            Some((vec!["QQ103".into()], false))
        );
        assert_eq!(
            parse_line("mynetworks = x # relaydoctor: ignore PF1 -- r"),
            None
        );
    }

    #[test]
    fn finds_the_logical_line_start() {
        let s = SourceFile::from_text(
            "main.cf",
            "# relaydoctor: ignore PF1 -- r\nsmtpd_relay_restrictions =\n    permit_mynetworks\n    reject\n",
        );
        let d = directives(&s);
        assert_eq!(applicable(&s, &d, 4), vec![1]);
        assert_eq!(applicable(&s, &d, 2), vec![1]);
    }
}
