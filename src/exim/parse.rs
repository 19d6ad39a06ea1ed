//! Logical lines -> the configuration model (sections, options, named lists, ACLs, drivers),
//! with the pest grammar in grammar/exim.pest deciding the shape of each line.

use pest::Parser;
use pest_derive::Parser;

use super::model::{
    Acl, Cond, Config, Driver, ListKind, NamedList, OptSetting, Section, Stmt, Verb,
};
use super::reader::LogicalLine;
use crate::finding::{Finding, Mta};

#[derive(Parser)]
#[grammar = "../grammar/exim.pest"]
struct EximLine;

/// Section names as readconf.c knows them; a missing or extra trailing "s" is accepted
/// ("begin router" and "begin routers" both work).
fn section(name: &str) -> Option<Section> {
    let n = name.to_ascii_lowercase();
    let table = [
        ("acl", Section::Acl),
        ("authenticators", Section::Authenticators),
        ("local_scans", Section::LocalScan),
        ("retry", Section::Retry),
        ("rewrite", Section::Rewrite),
        ("routers", Section::Routers),
        ("transports", Section::Transports),
    ];
    for (t, s) in table {
        if n == t || format!("{n}s") == t || n == format!("{t}s") {
            return Some(s);
        }
    }
    None
}

fn dequote(v: &str) -> String {
    let v = v.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let inner = &v[1..v.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut it = inner.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        v.to_string()
    }
}

fn verb(s: &str) -> Option<Verb> {
    Some(match s {
        "accept" => Verb::Accept,
        "defer" => Verb::Defer,
        "deny" => Verb::Deny,
        "discard" => Verb::Discard,
        "drop" => Verb::Drop,
        "require" => Verb::Require,
        "warn" => Verb::Warn,
        _ => return None,
    })
}

/// Parse `[!]name [= value]` (the acl_condition rule).
fn condition(p: pest::iterators::Pair<'_, Rule>, line: &LogicalLine) -> Cond {
    let mut negated = false;
    let mut name = String::new();
    let mut value = None;
    let mut var = None;
    for q in p.into_inner() {
        match q.as_rule() {
            Rule::negation => negated = true,
            Rule::name => name = q.as_str().to_string(),
            Rule::set_var => var = Some(q.as_str().to_string()),
            Rule::rest => value = Some(dequote(q.as_str())),
            _ => {}
        }
    }
    if let Some(v) = var {
        value = Some(format!("{v} = {}", value.unwrap_or_default()));
    }
    Cond {
        negated,
        name,
        value,
        origin: line.origin.clone(),
        macros_used: line.macros_used.clone(),
    }
}

pub fn build(lines: Vec<LogicalLine>, findings: &mut Vec<Finding>) -> Config {
    let mut cfg = Config::default();
    let mut sec = Section::Main;
    for (idx, line) in lines.iter().enumerate() {
        let line = line.clone();
        let text = line.text.as_str();
        // A conf.d fragment read on its own starts with `name:` and no `begin` line: take the
        // section from what follows (ACL statements or driver options).
        if sec == Section::Main
            && cfg.sections.is_empty()
            && looks_like_header(text)
            && EximLine::parse(Rule::instance_header, text).is_ok()
        {
            let next = next_text(&lines, idx);
            sec = if EximLine::parse(Rule::acl_verb_line, next).is_ok() {
                Section::Acl
            } else {
                Section::Routers
            };
            cfg.sections.push((sec, line.origin.clone()));
        }
        if let Some(Ok(mut p)) =
            starts_ci(text, "begin").then(|| EximLine::parse(Rule::begin_line, text))
        {
            let name = p
                .next()
                .and_then(|b| b.into_inner().next())
                .map(|n| n.as_str().to_string())
                .unwrap_or_default();
            match section(&name) {
                Some(s) => {
                    sec = s;
                    cfg.sections.push((s, line.origin.clone()));
                }
                None => {
                    err(
                        findings,
                        &line,
                        format!(
                            "unknown configuration section \"begin {name}\"; Exim refuses to start"
                        ),
                    );
                    sec = Section::Unknown;
                }
            }
            continue;
        }
        match sec {
            Section::Main => main_line(&mut cfg, &line, findings),
            Section::Acl => acl_line(&mut cfg, &line, findings),
            Section::Routers | Section::Transports | Section::Authenticators => {
                driver_line(&mut cfg, sec, &line, findings)
            }
            Section::Retry | Section::Rewrite | Section::LocalScan | Section::Unknown => {}
        }
    }
    cfg
}

/// A configuration error at `line`: Exim refuses to start.
fn err(findings: &mut Vec<Finding>, line: &LogicalLine, msg: String) {
    findings.push(Finding::new("EX002", Mta::Exim, msg).at(line.origin.location()));
}

/// A main-section line: a named list or an option setting.
fn main_line(cfg: &mut Config, line: &LogicalLine, findings: &mut Vec<Finding>) {
    let text = line.text.as_str();
    if let Some(Ok(mut p)) = text
        .contains("list")
        .then(|| EximLine::parse(Rule::named_list, text))
    {
        let mut it = p.next().map(|x| x.into_inner()).into_iter().flatten();
        let kind = pair_text(&mut it, false);
        let name = pair_text(&mut it, false);
        let value = pair_text(&mut it, true);
        let kind = match kind.trim_end_matches("_cache") {
            "domainlist" => ListKind::Domain,
            "hostlist" => ListKind::Host,
            "addresslist" => ListKind::Address,
            _ => ListKind::LocalPart,
        };
        if cfg.lists.iter().any(|l| l.name == name) {
            err(
                findings,
                line,
                format!("there is already a named list called \"{name}\"; Exim refuses to start"),
            );
        }
        cfg.lists.push(NamedList {
            kind,
            name,
            value,
            origin: line.origin.clone(),
            macros_used: line.macros_used.clone(),
        });
    } else if let Some(o) = option(line) {
        cfg.options.push(o);
    } else {
        err(
            findings,
            line,
            format!("option setting expected: `{text}`; Exim refuses to start"),
        );
    }
}

/// An ACL-section line: a statement, an ACL name, or a condition continuing a statement.
fn acl_line(cfg: &mut Config, line: &LogicalLine, findings: &mut Vec<Finding>) {
    let text = line.text.as_str();
    if let Some(Ok(mut p)) =
        starts_with_verb(text).then(|| EximLine::parse(Rule::acl_verb_line, text))
    {
        let mut it = p.next().map(|x| x.into_inner()).into_iter().flatten();
        let v = it.next().and_then(|x| verb(x.as_str()));
        let first = it
            .find(|c| c.as_rule() == Rule::acl_condition)
            .map(|c| condition(c, line));
        match (cfg.acls.last_mut(), v) {
            (Some(acl), Some(v)) => acl.stmts.push(Stmt {
                verb: v,
                origin: line.origin.clone(),
                conds: first.into_iter().collect(),
            }),
            _ => err(
                findings,
                line,
                format!("ACL statement `{text}` before any ACL name; Exim refuses to start"),
            ),
        }
    } else if let Some(Ok(mut p)) =
        looks_like_header(text).then(|| EximLine::parse(Rule::instance_header, text))
    {
        let mut it = p.next().map(|x| x.into_inner()).into_iter().flatten();
        let name = pair_text(&mut it, false);
        cfg.acls.push(Acl {
            name,
            origin: line.origin.clone(),
            stmts: Vec::new(),
        });
    } else if let Ok(mut p) = EximLine::parse(Rule::acl_condition_line, text) {
        let c = p
            .next()
            .and_then(|x| x.into_inner().next())
            .map(|c| condition(c, line));
        match (cfg.acls.last_mut().and_then(|a| a.stmts.last_mut()), c) {
            (Some(s), Some(c)) => s.conds.push(c),
            _ => err(
                findings,
                line,
                format!("ACL condition `{text}` outside a statement; Exim refuses to start"),
            ),
        }
    } else {
        err(
            findings,
            line,
            format!("ACL line not understood: `{text}`; Exim refuses to start"),
        );
    }
}

/// A line in the routers, transports or authenticators section: a driver instance name
/// (optionally with its first option on the same line) or an option of the last driver.
fn driver_line(cfg: &mut Config, sec: Section, line: &LogicalLine, findings: &mut Vec<Finding>) {
    let text = line.text.as_str();
    let list = match sec {
        Section::Routers => &mut cfg.routers,
        Section::Transports => &mut cfg.transports,
        _ => &mut cfg.authenticators,
    };
    if let Some(Ok(mut p)) =
        looks_like_header(text).then(|| EximLine::parse(Rule::instance_header, text))
    {
        let mut it = p.next().map(|x| x.into_inner()).into_iter().flatten();
        let name = pair_text(&mut it, false);
        let rest = pair_text(&mut it, true);
        let mut d = Driver {
            name,
            origin: line.origin.clone(),
            options: Vec::new(),
        };
        if !rest.is_empty() {
            let l2 = LogicalLine {
                text: rest,
                origin: line.origin.clone(),
                macros_used: line.macros_used.clone(),
            };
            if let Some(o) = option(&l2) {
                d.options.push(o);
            }
        }
        list.push(d);
    } else if let Some(o) = option(line) {
        match list.last_mut() {
            Some(d) => d.options.push(o),
            None => err(
                findings,
                line,
                format!("option `{text}` before any driver instance name; Exim refuses to start"),
            ),
        }
    } else {
        err(
            findings,
            line,
            format!("driver option expected: `{text}`; Exim refuses to start"),
        );
    }
}

/// Cheap pre-checks so that pest only runs the rule that can match (a failed parse builds
/// an error value, which is most of the cost on a large configuration).
/// An option value such as `acl_smtp_rcpt = accept` that names no ACL: Exim compiles the
/// text itself as an inline ACL. One statement (verb and optional first condition) fits on
/// the line; None when the text does not start with a verb (Exim then fails: 451).
pub fn inline_acl(text: &str, origin: &super::reader::Origin) -> Option<Acl> {
    if !starts_with_verb(text) {
        return None;
    }
    let line = LogicalLine {
        text: text.to_string(),
        origin: origin.clone(),
        macros_used: Vec::new(),
    };
    let mut p = EximLine::parse(Rule::acl_verb_line, text).ok()?;
    let mut it = p.next()?.into_inner();
    let v = it.next().and_then(|x| verb(x.as_str()))?;
    let first = it
        .find(|c| c.as_rule() == Rule::acl_condition)
        .map(|c| condition(c, &line));
    Some(Acl {
        name: format!("(inline) {text}"),
        origin: origin.clone(),
        stmts: vec![Stmt {
            verb: v,
            origin: origin.clone(),
            conds: first.into_iter().collect(),
        }],
    })
}

/// The text of the next pair the grammar produced (trimmed if asked), "" when there is none.
fn pair_text<'i>(
    it: &mut impl Iterator<Item = pest::iterators::Pair<'i, Rule>>,
    trim: bool,
) -> String {
    let t = it.next().map(|x| x.as_str()).unwrap_or("");
    if trim { t.trim() } else { t }.to_string()
}

fn looks_like_header(text: &str) -> bool {
    let name_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    name_end > 0 && text[name_end..].trim_start().starts_with(':')
}

fn starts_with_verb(text: &str) -> bool {
    let w = text.split(|c: char| c.is_whitespace()).next().unwrap_or("");
    matches!(
        w,
        "accept" | "defer" | "deny" | "discard" | "drop" | "require" | "warn"
    )
}

fn starts_ci(text: &str, word: &str) -> bool {
    text.get(..word.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(word))
}

fn next_text(lines: &[LogicalLine], idx: usize) -> &str {
    lines.get(idx + 1).map(|l| l.text.as_str()).unwrap_or("")
}

fn option(line: &LogicalLine) -> Option<OptSetting> {
    let mut p = EximLine::parse(Rule::option_line, &line.text).ok()?;
    let mut hidden = false;
    let mut name = String::new();
    let mut value = None;
    for q in p.next()?.into_inner() {
        match q.as_rule() {
            Rule::hide => hidden = true,
            Rule::name => name = q.as_str().to_string(),
            Rule::rest => value = Some(dequote(q.as_str())),
            _ => {}
        }
    }
    // Booleans: "name" = true, "no_name" / "not_name" = false (readconf.c).
    let (name, negated) = if value.is_none() {
        if let Some(n) = name.strip_prefix("no_") {
            (n.to_string(), true)
        } else if let Some(n) = name.strip_prefix("not_") {
            (n.to_string(), true)
        } else {
            (name, false)
        }
    } else {
        (name, false)
    };
    let value = match value {
        Some(v) => v,
        None if negated => "false".into(),
        None => "true".into(),
    };
    Some(OptSetting {
        name,
        value,
        hidden,
        origin: line.origin.clone(),
        macros_used: line.macros_used.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exim::reader::Origin;
    use std::path::PathBuf;

    fn ll(t: &str, n: usize) -> LogicalLine {
        LogicalLine {
            text: t.into(),
            origin: Origin {
                file: PathBuf::from("x"),
                line: n,
                src: None,
                start: 0,
                end: 0,
            },
            macros_used: vec![],
        }
    }

    #[test]
    fn sections_acls_and_drivers() {
        let lines = [
            "acl_smtp_rcpt = acl_check_rcpt",
            "hide mysql_servers = x",
            "no_syslog_timestamp",
            "hostlist relay_from_hosts = <; 127.0.0.1 ; ::1",
            "begin acl",
            "acl_check_rcpt:",
            "accept hosts = +relay_from_hosts",
            "require message = relay not permitted",
            "!verify = sender",
            "endpass",
            "begin authenticator",
            "plain:",
            "driver = plaintext",
        ];
        let mut f = Vec::new();
        let c = build(
            lines
                .iter()
                .enumerate()
                .map(|(i, t)| ll(t, i + 1))
                .collect(),
            &mut f,
        );
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(
            c.option("acl_smtp_rcpt").map(|o| o.value.as_str()),
            Some("acl_check_rcpt")
        );
        assert_eq!(
            c.option("syslog_timestamp").map(|o| o.value.as_str()),
            Some("false")
        );
        assert!(c.option("mysql_servers").is_some_and(|o| o.hidden));
        let acl = c.acl("acl_check_rcpt").unwrap();
        assert_eq!(acl.stmts.len(), 2);
        assert_eq!(acl.stmts[1].conds.len(), 3);
        assert!(acl.stmts[1].conds[1].negated);
        assert_eq!(c.authenticators[0].opt("driver"), Some("plaintext"));
    }
}
