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
        None => format!("no relay problems in {} files", report.files),
    };
    format!(
        "RELAYDOCTOR {state} - {text} | errors={e};;1;0 warnings={w};1;;0 info={i};;;0 files={}\n",
        report.files
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
