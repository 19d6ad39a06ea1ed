//! Rendering findings for people (text) and programs (json).

pub mod github;
pub mod json;
pub mod nagios;
pub mod prometheus;
pub mod sarif;
pub mod text;

use crate::cli::ColorChoice;
use crate::finding::{Finding, Severity};

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

/// Decide whether to color: `--color always|never` win; `auto` means a terminal on stdout
/// and no NO_COLOR in the environment (https://no-color.org).
pub fn use_color(choice: ColorChoice) -> bool {
    let on = decide_color(choice);
    // `colored` makes its own terminal/NO_COLOR guess; ours (with --color) wins.
    colored::control::set_override(on);
    on
}

fn decide_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::IsTerminal::is_terminal(&std::io::stdout())
        }
    }
}
