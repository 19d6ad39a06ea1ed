//! The Nagios plugin API (also Icinga, Naemon, Sensu): one status line
//! `RELAYDOCTOR OK|WARNING|CRITICAL|UNKNOWN - text | perfdata` and exit 0/1/2/3.

use super::Report;
use crate::finding::Severity;

pub const OK: i32 = 0;
pub const WARNING: i32 = 1;
pub const CRITICAL: i32 = 2;
pub const UNKNOWN: i32 = 3;

/// Status and exit code for a report: any error is CRITICAL, any warning WARNING.
pub fn status(report: &Report) -> (&'static str, i32) {
    if report.count(Severity::Error) > 0 {
        ("CRITICAL", CRITICAL)
    } else if report.count(Severity::Warning) > 0 {
        ("WARNING", WARNING)
    } else {
        ("OK", OK)
    }
}

pub fn render(report: &Report) -> String {
    line(
        report,
        &format!("no relay problems in {} files", report.files),
        &format!(" files={}", report.files),
    )
}

/// The status line of a check that is not about files (`plesk check`): `ok_text` when
/// nothing is wrong, and `extra_perf` (` name=value` pairs) after the counts.
pub fn render_with(report: &Report, ok_text: &str, extra_perf: &str) -> String {
    line(report, ok_text, extra_perf)
}

fn line(report: &Report, ok_text: &str, extra_perf: &str) -> String {
    let (state, _) = status(report);
    let (e, w, i) = (
        report.count(Severity::Error),
        report.count(Severity::Warning),
        report.count(Severity::Info),
    );
    let text = match report
        .findings
        .iter()
        // max_by_key keeps the last of equals; reversed, that is the first in report order.
        .rev()
        .max_by_key(|f| f.severity)
        .filter(|f| f.severity > Severity::Info)
    {
        Some(worst) => format!(
            "{e} errors, {w} warnings; first: {} {}",
            worst.code,
            one_line(&worst.message)
        ),
        None => one_line(ok_text),
    };
    format!(
        "RELAYDOCTOR {state} - {text} | errors={e};;1;0 warnings={w};1;;0 info={i};;;0{extra_perf}\n"
    )
}

/// An UNKNOWN status line for when the check itself could not run.
pub fn unknown(message: &str) -> String {
    format!("RELAYDOCTOR UNKNOWN - {}\n", one_line(message))
}

/// Nagios reads the first line only, and `|` starts perfdata.
fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").replace('|', "/")
}
