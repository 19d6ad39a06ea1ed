//! cPanel's Exim configuration (issue #16 item 3).
//!
//! cPanel builds /etc/exim.conf with `/scripts/buildeximconf` from its distribution template
//! (`/usr/local/cpanel/etc/exim/distconfig/exim.conf.dist`, or `/etc/exim.conf.dist`) and the
//! site's own files (`/etc/exim.conf.local`, `/etc/exim.conf.localopts`). In the template a
//! line `@NAME@` marks where the site's section NAME is inserted, and `%BEGINNAME%` ...
//! `%ENDNAME%` a block the site's NAME replaces (Cpanel/Exim/Config.pm,
//! `build_exim_conf_from_loaded_cfg`). Those lines are not Exim syntax: they are dropped here
//! instead of being reported one by one, EX001 says once that the file is a template, and the
//! ACLs the markers may inject are not reported as missing.

use std::path::Path;

use super::reader::LogicalLine;
use crate::context::Context;
use crate::finding::{Finding, Mta, Severity};

/// A whole-line template marker: `@CONFIG@`, `%BEGINACL%`, `%ENDRETRYBLOCK%`.
pub fn is_marker(text: &str) -> bool {
    let t = text.trim();
    let inner = |open: char| {
        t.strip_prefix(open)
            .and_then(|r| r.strip_suffix(open))
            .is_some_and(|n| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
    };
    inner('@') || inner('%')
}

/// The lines without the template markers, and the markers found.
pub fn strip_markers(lines: Vec<LogicalLine>) -> (Vec<LogicalLine>, Vec<String>) {
    let mut markers = Vec::new();
    let kept = lines
        .into_iter()
        .filter(|l| {
            let m = is_marker(&l.text);
            if m {
                markers.push(l.text.trim().to_string());
            }
            !m
        })
        .collect();
    (kept, markers)
}

/// Whether the markers leave room for ACLs the site inserts (`@ACL@`, `%BEGINACL%`, ...).
pub fn injects_acls(markers: &[String]) -> bool {
    markers.iter().any(|m| m.contains("ACL"))
}

/// Files that are pieces of cPanel's Exim configuration, not a configuration Exim reads.
const FRAGMENTS: &[&str] = &[
    "config_options",
    "exim.conf.local",
    "exim.conf.localopts",
    "exim.conf.localopts.shadow",
];

/// The message for linting such a piece directly.
pub fn fragment(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    FRAGMENTS.contains(&name).then(|| {
        format!(
            "{}: a fragment of cPanel's Exim configuration, not a configuration Exim reads: /scripts/buildeximconf merges it with the template into /etc/exim.conf; lint /etc/exim.conf (or the server root with --root)",
            path.display()
        )
    })
}

/// The inputs of the generated /etc/exim.conf, as the server sees them.
const INPUTS: &[&str] = &[
    "/etc/exim.conf.local",
    "/etc/exim.conf.localopts",
    "/etc/exim.conf.dist",
    "/usr/local/cpanel/etc/exim/distconfig/exim.conf.dist",
];

/// EX170 for cPanel: /etc/exim.conf older than a file buildeximconf builds it from.
pub fn stale_generated(ctx: &Context, generated: &Path) -> Option<Finding> {
    let mtime = |p: &Path| ctx.root.metadata(p).ok()?.modified().ok();
    let g = mtime(generated)?;
    let newest = INPUTS
        .iter()
        .filter_map(|p| {
            let real = ctx.root.resolve(Path::new(p));
            Some((mtime(&real)?, *p))
        })
        .filter(|(t, _)| *t > g)
        .max()?;
    let ago = newest.0.duration_since(g).map(|d| d.as_secs()).unwrap_or(0);
    Some(
        Finding::new(
            "EX170",
            Mta::Exim,
            format!(
                "{} (the configuration cPanel's Exim runs) is older than {}, changed {} min after it was built: that change is not live; the SMTP replies clients get come from {}",
                ctx.root.display(generated).display(),
                newest.1,
                ago.div_ceil(60),
                ctx.root.display(generated).display()
            ),
        )
        .severity(Severity::Warning)
        .service(super::SERVICE)
        .help("Run /scripts/buildeximconf (it checks the new file with Exim before it installs it), then restart Exim."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_whole_upper_case_lines() {
        assert!(is_marker("@CONFIG@"));
        assert!(is_marker("%BEGINACL%"));
        assert!(is_marker("  %ENDRETRYBLOCK%  "));
        assert!(!is_marker("primary_hostname = %HOSTNAME%"));
        assert!(!is_marker("@config@"));
        assert!(!is_marker("%%"));
    }
}
