//! Rendering findings for people (text) and programs (json).

pub mod fleet;
pub mod github;
pub mod json;
pub mod nagios;
pub mod prometheus;
pub mod rules;
pub mod sarif;
pub mod simulate;
pub mod text;

use crate::context::Context;
use crate::finding::{Finding, Severity};

/// A JSON array whose elements are made one at a time while it is written: the JSON and
/// SARIF reports of 300k findings never hold a `serde_json::Value` per finding (those took
/// gigabytes). Each element is still a `Value`, so its keys come out sorted as before.
pub struct LazySeq<'a, T>(pub &'a [T], pub &'a dyn Fn(&T) -> serde_json::Value);

impl<T> serde::Serialize for LazySeq<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for x in self.0 {
            seq.serialize_element(&(self.1)(x))?;
        }
        seq.end()
    }
}

/// The formats a findings report can be rendered in: people, programs, code scanning, CI
/// annotations, monitoring. (Also the `--format` values of `lint`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    /// SARIF 2.1.0 (GitHub code scanning, IDEs)
    Sarif,
    /// GitHub Actions workflow annotations
    Github,
    /// Nagios/Icinga plugin: one status line with perfdata, exit 0/1/2/3
    Nagios,
    /// node_exporter textfile collector format
    Prometheus,
}

/// The outcome of one lint or check run.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Number of files read.
    pub files: usize,
}

impl Report {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// True when some finding is at or above `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.findings.iter().any(|f| f.severity >= threshold)
    }

    pub fn sort(&mut self) {
        self.findings.sort_by_key(|f| f.sort_key());
    }
}

/// Render `report` in `format`. `ctx` lets the text form quote the lines findings point at.
pub fn render(
    format: OutputFormat,
    report: &Report,
    ctx: Option<&Context>,
    color: bool,
    now: u64,
) -> String {
    match format {
        OutputFormat::Json => json::render(report),
        OutputFormat::Text => text::render(report, ctx, color),
        OutputFormat::Sarif => sarif::render(report),
        OutputFormat::Github => github::render(report),
        OutputFormat::Nagios => nagios::render(report),
        OutputFormat::Prometheus => prometheus::render(report, now),
    }
}
