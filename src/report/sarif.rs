//! SARIF 2.1.0 for code scanning (GitHub, GitLab, IDEs). Validated in tests against the
//! official schema in tests/data/sarif-schema-2.1.0.json.

use serde_json::{json, Value};
use std::collections::BTreeMap;

use super::Report;
use crate::catalogue;
use crate::finding::{Finding, Severity};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// GitHub's `security-severity` (0.0-10.0): relaying for strangers is critical, leaking
/// passwords high, refusing legitimate mail medium.
pub fn security_severity(category: &str, severity: Severity) -> &'static str {
    match (category, severity) {
        ("open-relay", _) => "9.0",
        ("plaintext-auth", _) => "7.5",
        (_, Severity::Error) => "6.0",
        (_, Severity::Warning) => "4.0",
        (_, Severity::Info) => "1.0",
    }
}

fn rule_descriptor(r: &catalogue::Rule) -> Value {
    let mut help = r.explanation.trim().to_string();
    if let Some(b) = &r.bad {
        help.push_str(&format!("\n\nTriggers on:\n{}", b.trim_matches('\n')));
    }
    if let Some(g) = &r.good {
        help.push_str(&format!("\n\nCorrected:\n{}", g.trim_matches('\n')));
    }
    json!({
        "id": r.code,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": r.explanation.trim()},
        "help": {"text": help},
        "defaultConfiguration": {"level": level(r.severity)},
        "properties": {
            "tags": [r.category, "mail"],
            "security-severity": security_severity(&r.category, r.severity),
        }
    })
}

fn result(f: &Finding, rule_index: Option<usize>) -> Value {
    let mut text = f.message.clone();
    if let Some(h) = &f.help {
        text.push('\n');
        text.push_str(h);
    }
    let mut r = json!({
        "ruleId": f.code,
        "level": level(f.severity),
        "message": {"text": text},
    });
    if let Some(i) = rule_index {
        r["ruleIndex"] = json!(i);
    }
    if let Some(loc) = &f.location {
        r["locations"] = json!([{
            "physicalLocation": {
                "artifactLocation": {"uri": uri(&loc.file)},
                "region": {
                    "startLine": loc.line,
                    "startColumn": loc.column,
                    "endLine": loc.end_line.max(loc.line),
                    "endColumn": loc.end_column.max(1),
                }
            }
        }]);
    }
    if let Some(service) = &f.service {
        r["properties"] = json!({"service": service, "mta": f.mta.as_str()});
    } else {
        r["properties"] = json!({"mta": f.mta.as_str()});
    }
    if let Some(fix) = &f.fix {
        let mut by_file: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for e in &fix.edits {
            by_file.entry(uri(&e.file)).or_default().push(json!({
                "deletedRegion": {"byteOffset": e.start, "byteLength": e.end.saturating_sub(e.start)},
                "insertedContent": {"text": e.replacement},
            }));
        }
        r["fixes"] = json!([{
            "description": {"text": fix.description},
            "artifactChanges": by_file.into_iter().map(|(u, reps)| json!({
                "artifactLocation": {"uri": u},
                "replacements": reps,
            })).collect::<Vec<_>>(),
        }]);
    }
    r
}

/// A relative URI reference for a displayed path (spaces and % escaped).
fn uri(p: &std::path::Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '%' => out.push_str("%25"),
            '#' => out.push_str("%23"),
            '?' => out.push_str("%3F"),
            _ => out.push(c),
        }
    }
    out
}

pub fn value(report: &Report) -> Value {
    // Describe every rule of the catalogue, so consumers can show rules with no results too.
    let rules: Vec<&catalogue::Rule> = catalogue::all().values().collect();
    let index: BTreeMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.code.as_str(), i))
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "relaydoctor",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/relaydoctor/relaydoctor",
                "rules": rules.iter().map(|r| rule_descriptor(r)).collect::<Vec<_>>(),
            }},
            "columnKind": "unicodeCodePoints",
            "results": report.findings.iter()
                .map(|f| result(f, index.get(f.code.as_str()).copied()))
                .collect::<Vec<_>>(),
        }]
    })
}

/// `value`'s document, with the results written one at a time (keys in `Value`'s sorted
/// order).
#[derive(serde::Serialize)]
struct Doc<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    runs: [Run<'a>; 1],
    version: &'static str,
}

#[derive(serde::Serialize)]
struct Run<'a> {
    #[serde(rename = "columnKind")]
    column_kind: &'static str,
    results: super::LazySeq<'a, Finding>,
    tool: Value,
}

pub fn render(report: &Report) -> String {
    let mut head = value(&Report {
        findings: Vec::new(),
        files: report.files,
    });
    let run = &mut head["runs"][0];
    let index: BTreeMap<String, usize> = run["tool"]["driver"]["rules"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .enumerate()
                .filter_map(|(i, r)| Some((r["id"].as_str()?.to_string(), i)))
                .collect()
        })
        .unwrap_or_default();
    let one = |f: &Finding| result(f, index.get(f.code.as_str()).copied());
    let doc = Doc {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        runs: [Run {
            column_kind: "unicodeCodePoints",
            results: super::LazySeq(&report.findings, &one),
            tool: run["tool"].take(),
        }],
        version: "2.1.0",
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}
