//! The stable JSON format (version 1), documented in README.md.

use serde_json::{json, Value};

use super::Report;
use crate::finding::Severity;

pub fn value(report: &Report) -> Value {
    json!({
        "version": 1,
        "tool": {"name": "relaydoctor", "version": env!("CARGO_PKG_VERSION")},
        "findings": report.findings,
        "summary": {
            "error": report.count(Severity::Error),
            "warning": report.count(Severity::Warning),
            "info": report.count(Severity::Info),
            "files": report.files,
        }
    })
}

/// The same document as `value`, written finding by finding (fields in the sorted order a
/// `Value` map has).
#[derive(serde::Serialize)]
struct Doc<'a> {
    findings: super::LazySeq<'a, crate::finding::Finding>,
    summary: Value,
    tool: Value,
    version: u32,
}

pub fn render(report: &Report) -> String {
    let to_value = |f: &crate::finding::Finding| serde_json::to_value(f).unwrap_or(Value::Null);
    let doc = Doc {
        findings: super::LazySeq(&report.findings, &to_value),
        summary: json!({
            "error": report.count(Severity::Error),
            "warning": report.count(Severity::Warning),
            "info": report.count(Severity::Info),
            "files": report.files,
        }),
        tool: json!({"name": "relaydoctor", "version": env!("CARGO_PKG_VERSION")}),
        version: 1,
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}
