//! The node_exporter textfile collector format: HELP/TYPE lines, one gauge per category and
//! severity (zeros included, so alerts can use `> 0` without absent() tricks), and the time
//! of the last run, and `relaydoctor_up` (0 when the run failed, so a stale file cannot hide it).

use std::fmt::Write;

use super::Report;
use crate::catalogue::CATEGORIES;
use crate::finding::Severity;

const UP_HELP: &str = "# HELP relaydoctor_up 1 when the last relaydoctor run could check the configuration, 0 when it failed (exit 2).\n# TYPE relaydoctor_up gauge\n";

fn last_run(out: &mut String, now_unix: u64) {
    out.push_str(
        "# HELP relaydoctor_last_run_timestamp_seconds When the last run finished (Unix time).\n",
    );
    out.push_str("# TYPE relaydoctor_last_run_timestamp_seconds gauge\n");
    let _ = writeln!(out, "relaydoctor_last_run_timestamp_seconds {now_unix}");
}

/// The file for a run that could not check anything (unreadable configuration, bad
/// arguments): no finding counts, which would read as "healthy", only `relaydoctor_up 0`.
pub fn render_failure(now_unix: u64) -> String {
    let mut out = String::from(UP_HELP);
    out.push_str("relaydoctor_up 0\n");
    last_run(&mut out, now_unix);
    out
}

pub fn render(report: &Report, now_unix: u64) -> String {
    let mut out = String::from(UP_HELP);
    out.push_str("relaydoctor_up 1\n");
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
    last_run(&mut out, now_unix);
    out
}
