//! Human output: findings grouped by file, the source line with a caret under the span,
//! colored by severity, and a one-line summary.

use colored::{ColoredString, Colorize};
use std::fmt::Write;

use super::Report;
use crate::context::Context;
use crate::finding::{Finding, Severity};

fn paint(s: &str, severity: Severity, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let c: ColoredString = match severity {
        Severity::Error => s.red().bold(),
        Severity::Warning => s.yellow().bold(),
        Severity::Info => s.cyan().bold(),
    };
    c.to_string()
}

fn dim(s: &str, color: bool) -> String {
    if color {
        s.dimmed().to_string()
    } else {
        s.to_string()
    }
}

fn bold(s: &str, color: bool) -> String {
    if color {
        s.bold().to_string()
    } else {
        s.to_string()
    }
}

/// Source lines longer than this are not quoted under a finding.
const LONGEST_EXCERPT: usize = 1000;

/// Render one finding: header, source excerpt with caret, help.
pub fn finding(out: &mut String, f: &Finding, ctx: Option<&Context>, color: bool) {
    let sev = paint(f.severity.as_str(), f.severity, color);
    let svc = f
        .service
        .as_deref()
        .map(|s| format!(" [{s}]"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{sev}[{}] {}{svc}: {}",
        f.code,
        dim(&f.name, color),
        bold(&f.message, color)
    );
    if let Some(loc) = &f.location {
        let _ = writeln!(
            out,
            "  {} {}:{}:{}",
            dim("-->", color),
            loc.file.display(),
            loc.line,
            loc.column
        );
        if let Some(src) = ctx.and_then(|c| c.source(&loc.file)) {
            let long = src.line_text(loc.line).len() > LONGEST_EXCERPT;
            if long && loc.line <= src.line_count() {
                // Not cut to a window: a cut secret would escape the scrubber (see
                // finding::elide_long_words).
                let _ = writeln!(
                    out,
                    "  {} (line {} is {} characters long: not shown)",
                    dim("|", color),
                    loc.line,
                    src.line_text(loc.line).chars().count()
                );
            } else if loc.line <= src.line_count() && !src.text.is_empty() {
                let text = src.line_text(loc.line).replace('\t', " ");
                let width = loc.line.to_string().len();
                let _ = writeln!(
                    out,
                    "  {} {}",
                    dim(&format!("{:>width$} |", loc.line), color),
                    text
                );
                let start = loc.column.saturating_sub(1);
                let line_chars = text.chars().count();
                let end = if loc.end_line == loc.line {
                    loc.end_column.saturating_sub(1).max(start + 1)
                } else {
                    line_chars.max(start + 1)
                };
                let carets = "^".repeat(end.saturating_sub(start).clamp(1, 200));
                let _ = writeln!(
                    out,
                    "  {} {}{}",
                    dim(&format!("{:>width$} |", ""), color),
                    " ".repeat(start),
                    paint(&carets, f.severity, color)
                );
            }
        }
    }
    if let Some(h) = &f.help {
        for (i, line) in h.lines().enumerate() {
            let lead = if i == 0 { "help:" } else { "     " };
            let _ = writeln!(out, "  {} {}", dim(lead, color), line);
        }
    }
    if let Some(fix) = &f.fix {
        let kind = match fix.applicability {
            crate::finding::Applicability::Safe => "fix (safe, --fix applies it)",
            crate::finding::Applicability::Unsafe => {
                "fix (review first: --diff shows it, --fix does not apply it)"
            }
        };
        let _ = writeln!(
            out,
            "  {} {}",
            dim(&format!("{kind}:"), color),
            fix.description
        );
    }
}

pub fn summary_line(report: &Report, color: bool) -> String {
    let e = report.count(Severity::Error);
    let w = report.count(Severity::Warning);
    let i = report.count(Severity::Info);
    let files = report.files;
    let files_word = if files == 1 { "file" } else { "files" };
    if report.findings.is_empty() {
        return format!("No problems found in {files} {files_word}.");
    }
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}, {} in {files} {files_word}.",
        paint(&plural(e, "error"), Severity::Error, color && e > 0),
        paint(&plural(w, "warning"), Severity::Warning, color && w > 0),
        paint(&plural(i, "info"), Severity::Info, color && i > 0).replace("infos", "info"),
    )
}

pub fn render(report: &Report, ctx: Option<&Context>, color: bool) -> String {
    let mut out = String::new();
    let mut current: Option<String> = None;
    for f in &report.findings {
        let file = f
            .location
            .as_ref()
            .map(|l| l.file.display().to_string())
            .unwrap_or_default();
        if current.as_deref() != Some(file.as_str()) {
            if current.is_some() {
                out.push('\n');
            }
            let title = if file.is_empty() {
                "(no file)".to_string()
            } else {
                file.clone()
            };
            let _ = writeln!(out, "{}", bold(&format!("== {title}"), color));
            current = Some(file);
        } else {
            out.push('\n');
        }
        finding(&mut out, f, ctx, color);
    }
    if !report.findings.is_empty() {
        out.push('\n');
    }
    out.push_str(&summary_line(report, color));
    out.push('\n');
    out
}
