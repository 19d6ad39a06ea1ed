//! The node_exporter textfile collector format: HELP/TYPE lines, one gauge per category and
//! severity (zeros included, so alerts can use `> 0` without absent() tricks), and the time
//! of the last run.

use std::fmt::Write;

use super::Report;
use crate::catalogue::CATEGORIES;
use crate::finding::Severity;

pub fn render(report: &Report, now_unix: u64) -> String {
    let mut out = String::new();
    out.push_str("# HELP relaydoctor_findings Findings of the last relaydoctor run, by category and severity.\n");
    out.push_str("# TYPE relaydoctor_findings gauge\n");
    for cat in CATEGORIES {
        for sev in [Severity::Error, Severity::Warning, Severity::Info] {
            let n = report
                .findings
                .iter()
                .filter(|f| f.category == *cat && f.severity == sev)
                .count();
            let _ = writeln!(
                out,
                "relaydoctor_findings{{category=\"{cat}\",severity=\"{}\"}} {n}",
                sev.as_str()
            );
        }
    }
    out.push_str("# HELP relaydoctor_files_checked Configuration files read by the last run.\n");
    out.push_str("# TYPE relaydoctor_files_checked gauge\n");
    let _ = writeln!(out, "relaydoctor_files_checked {}", report.files);
    out.push_str(
        "# HELP relaydoctor_last_run_timestamp_seconds When the last run finished (Unix time).\n",
    );
    out.push_str("# TYPE relaydoctor_last_run_timestamp_seconds gauge\n");
    let _ = writeln!(out, "relaydoctor_last_run_timestamp_seconds {now_unix}");
    out
}
