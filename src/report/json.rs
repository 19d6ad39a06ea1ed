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

pub fn render(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(&value(report)).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}
