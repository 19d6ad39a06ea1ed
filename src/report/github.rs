//! GitHub Actions workflow commands: one `::error file=...,line=...::message` per finding,
//! shown as annotations on the pull request.

use std::fmt::Write;

use super::Report;
use crate::finding::Severity;

/// Escaping from the Actions toolkit (command.ts): data escapes %, CR, LF; properties also
/// escape `:` and `,`.
fn esc_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn esc_prop(s: &str) -> String {
    esc_data(s).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let cmd = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let mut props = Vec::new();
        if let Some(l) = &f.location {
            props.push(format!("file={}", esc_prop(&l.file.to_string_lossy())));
            props.push(format!("line={}", l.line));
            props.push(format!("col={}", l.column));
            props.push(format!("endLine={}", l.end_line.max(l.line)));
            if l.end_line == l.line {
                props.push(format!("endColumn={}", l.end_column));
            }
        }
        props.push(format!(
            "title={}",
            esc_prop(&format!("{} {}", f.code, f.name))
        ));
        let mut msg = f.message.clone();
        if let Some(h) = &f.help {
            msg.push('\n');
            msg.push_str(h);
        }
        let _ = writeln!(out, "::{cmd} {}::{}", props.join(","), esc_data(&msg));
    }
    out
}
