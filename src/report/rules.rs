//! `rules` output: the catalogue as a table, one rule in full, JSON, or Markdown
//! (docs/rules.md).

use std::fmt::Write as _;

use crate::catalogue::{self, Rule};

/// Every rule, one line each.
pub fn table() -> String {
    let mut out = String::new();
    for r in catalogue::all().values() {
        let _ = writeln!(
            out,
            "{:<6} {:<8} {:<18} {:<36} {}",
            r.code,
            r.severity.as_str(),
            r.category,
            r.name,
            r.summary
        );
    }
    out
}

/// Every rule as a JSON array.
pub fn all_json() -> String {
    let v: Vec<_> = catalogue::all().values().map(rule_json).collect();
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}

/// One rule in full: summary, explanation, examples, references.
pub fn one_text(r: &Rule) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} ({}, {})",
        r.code,
        r.name,
        r.category,
        r.severity.as_str()
    );
    let _ = writeln!(out, "{}\n", r.summary);
    let _ = writeln!(out, "{}", r.explanation.trim_end());
    if let Some(b) = &r.bad {
        let _ = writeln!(out, "\nTriggers on:\n{}", indent(b));
    }
    if let Some(g) = &r.good {
        let _ = writeln!(out, "\nCorrected:\n{}", indent(g));
    }
    if !r.references.is_empty() {
        let _ = writeln!(out, "\nReferences: {}", r.references.join("; "));
    }
    out
}

/// One rule as a JSON object.
pub fn one_json(r: &Rule) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(&rule_json(r)).unwrap_or_default()
    )
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rule_json(r: &Rule) -> serde_json::Value {
    serde_json::json!({
        "code": r.code, "name": r.name, "category": r.category,
        "severity": r.severity.as_str(), "summary": r.summary,
        "explanation": r.explanation, "bad": r.bad, "good": r.good,
        "references": r.references,
    })
}

/// docs/rules.md: the catalogue as Markdown (a test fails when the committed file is stale).
pub fn markdown() -> String {
    let mut out = String::from(
        "# relaydoctor rules\n\nGenerated from rules/*.toml by `relaydoctor rules --format markdown`; do not edit.\n\n\
         | code | name | category | severity | summary |\n|---|---|---|---|---|\n",
    );
    let cat = catalogue::all();
    for r in cat.values() {
        let _ = writeln!(
            out,
            "| [{c}](#{l}) | {} | {} | {} | {} |",
            r.name,
            r.category,
            r.severity.as_str(),
            r.summary.replace('|', "\\|"),
            c = r.code,
            l = r.code.to_ascii_lowercase()
        );
    }
    for r in cat.values() {
        let _ = write!(
            out,
            "\n## {}\n\n**{}** · {} · {}\n\n{}\n\n{}\n",
            r.code,
            r.name,
            r.category,
            r.severity.as_str(),
            r.summary,
            r.explanation.trim()
        );
        if let Some(b) = &r.bad {
            let _ = write!(
                out,
                "\nTriggers on:\n\n```\n{}\n```\n",
                b.trim_matches('\n')
            );
        }
        if let Some(g) = &r.good {
            let _ = write!(out, "\nCorrected:\n\n```\n{}\n```\n", g.trim_matches('\n'));
        }
        if !r.references.is_empty() {
            let _ = write!(out, "\nReferences: {}\n", r.references.join("; "));
        }
    }
    out
}
