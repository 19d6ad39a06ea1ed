//! The fleet report as text: the ranking, the rules across the fleet, what changed.

use std::fmt::Write as _;

use super::worst_label;
use crate::finding::Severity;
use crate::fleet::{Change, Fleet};

/// How many hosts and rule hosts the text lists before "... and N more".
const SHOWN: usize = 50;

pub fn render(f: &Fleet, color: bool) -> String {
    use colored::Colorize;
    let mut out = String::new();
    let (e, w, i) = (
        f.total(Severity::Error),
        f.total(Severity::Warning),
        f.total(Severity::Info),
    );
    let relays = f.hosts.iter().filter(|h| h.open_relay()).count();
    let _ = writeln!(
        out,
        "{} hosts from {} result files: {e} errors, {w} warnings, {i} info; {relays} open relay{}.",
        f.hosts.len(),
        f.files,
        if relays == 1 { "" } else { "s" }
    );
    out.push_str("\nHosts, worst first (open relays first):\n");
    for h in f.hosts.iter().take(SHOWN) {
        let label = worst_label(h.worst());
        let label = match (color, h.worst()) {
            (true, Some(Severity::Error)) => label.red().bold().to_string(),
            (true, Some(Severity::Warning)) => label.yellow().bold().to_string(),
            _ => label.to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<40} {:<8} {:>4} errors {:>4} warnings {:>4} info{}",
            h.name,
            label,
            h.count(Severity::Error),
            h.count(Severity::Warning),
            h.count(Severity::Info),
            if h.open_relay() { "  OPEN RELAY" } else { "" }
        );
        for why in &h.failed {
            let _ = writeln!(out, "      could not check: {why}");
        }
    }
    more(&mut out, f.hosts.len());
    out.push_str("\nRules across the fleet:\n");
    let mut rules: Vec<_> = f.rules.iter().collect();
    rules.sort_by(|a, b| b.1.hosts.len().cmp(&a.1.hosts.len()).then(a.0.cmp(b.0)));
    for (code, r) in rules {
        let hosts: Vec<&str> = r.hosts.iter().take(5).map(String::as_str).collect();
        let _ = writeln!(
            out,
            "  {code:<6} {:<18} {:>6} finding{} on {:>5} host{}: {}{}",
            r.category,
            r.count,
            if r.count == 1 { "" } else { "s" },
            r.hosts.len(),
            if r.hosts.len() == 1 { "" } else { "s" },
            hosts.join(", "),
            if r.hosts.len() > 5 { ", ..." } else { "" }
        );
    }
    if let Some(c) = &f.changes {
        let _ = writeln!(
            out,
            "\nSince {}: {} new, {} fixed.",
            c.baseline,
            c.new.len(),
            c.fixed.len()
        );
        list_changes(&mut out, "New", &c.new);
        list_changes(&mut out, "Fixed", &c.fixed);
    }
    for s in &f.skipped {
        let _ = writeln!(out, "skipped: {s}");
    }
    out
}

fn list_changes(out: &mut String, title: &str, list: &[Change]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    for c in list.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "  {} {} {} {}:{}: {}",
            c.host,
            c.severity.as_str(),
            c.code,
            c.file,
            c.line,
            c.message
        );
    }
    more(out, list.len());
}

fn more(out: &mut String, n: usize) {
    if n > SHOWN {
        let _ = writeln!(
            out,
            "  ... and {} more (--format json or html lists all)",
            n - SHOWN
        );
    }
}
