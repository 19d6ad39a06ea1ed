//! Renderings of the fleet report (`relaydoctor report`): text for a terminal or a mail,
//! versioned JSON for programs (and as the next run's --baseline), one self-contained HTML
//! file for people.

pub mod html;
pub mod json;
pub mod text;

use crate::finding::Severity;

/// `report --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FleetFormat {
    Text,
    Json,
    /// One self-contained HTML file (works offline, e.g. as a mail attachment)
    Html,
}

/// Render the merged fleet in `format`.
pub fn render(format: FleetFormat, f: &crate::fleet::Fleet, color: bool) -> String {
    match format {
        FleetFormat::Text => text::render(f, color),
        FleetFormat::Json => json::render(f),
        FleetFormat::Html => html::render(f),
    }
}

/// "error", "warning", "info", or "clean" for a host without findings.
pub fn worst_label(s: Option<Severity>) -> &'static str {
    s.map_or("clean", Severity::as_str)
}
