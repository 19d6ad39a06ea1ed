//! The fleet report as JSON (version 1). Its `hosts[].findings` make it usable as the next
//! run's `--baseline`.

use serde_json::{json, Value};

use super::worst_label;
use crate::finding::Severity;
use crate::fleet::{Fleet, Item};

fn finding(f: &Item) -> Value {
    json!({
        "code": &*f.code, "category": &*f.category, "severity": f.severity,
        "file": f.file, "line": f.line, "service": f.service, "message": f.message,
        "help": f.help.as_deref(), "from": &*f.kind,
    })
}

/// Hosts are written one compact object per line as they are rendered, so a report of
/// thousands of hosts never exists as one JSON tree in memory.
pub fn render(f: &Fleet) -> String {
    let rules: Vec<Value> = f
        .rules
        .iter()
        .map(|(code, r)| {
            json!({
                "code": code, "category": r.category, "severity": r.severity,
                "count": r.count, "hosts": r.hosts,
            })
        })
        .collect();
    let categories: serde_json::Map<String, Value> = f
        .categories
        .iter()
        .map(|(c, n)| {
            (
                c.clone(),
                json!({"error": n[0], "warning": n[1], "info": n[2]}),
            )
        })
        .collect();
    let mut head = json!({
        "version": 1,
        "kind": "fleet-report",
        "tool": {"name": "relaydoctor", "version": env!("CARGO_PKG_VERSION")},
        "summary": {
            "hosts": f.hosts.len(),
            "files": f.files,
            "open_relays": f.hosts.iter().filter(|h| h.open_relay()).count(),
            "error": f.total(Severity::Error),
            "warning": f.total(Severity::Warning),
            "info": f.total(Severity::Info),
        },
        "rules": rules,
        "categories": categories,
        "skipped": f.skipped,
    });
    if let Some(c) = &f.changes {
        head["changes"] = json!({"baseline": c.baseline, "new": c.new, "fixed": c.fixed});
    }
    let head = serde_json::to_string_pretty(&head).unwrap_or_else(|_| "{}".into());
    // The members above, then "hosts" as the last member.
    let mut s = String::with_capacity(head.len() + f.hosts.len() * 512);
    s.push_str(head.trim_end().trim_end_matches('}').trim_end());
    s.push_str(",\n  \"hosts\": [");
    for (n, h) in f.hosts.iter().enumerate() {
        let v = json!({
            "name": h.name,
            "worst": worst_label(h.worst()),
            "open_relay": h.open_relay(),
            "summary": {
                "error": h.count(Severity::Error),
                "warning": h.count(Severity::Warning),
                "info": h.count(Severity::Info),
            },
            "sources": h.sources,
            "failed": h.failed,
            "findings": h.findings.iter().map(finding).collect::<Vec<_>>(),
        });
        s.push_str(if n == 0 { "\n    " } else { ",\n    " });
        s.push_str(&serde_json::to_string(&v).unwrap_or_else(|_| "{}".into()));
    }
    s.push_str("\n  ]\n}\n");
    s
}
