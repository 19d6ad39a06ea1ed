//! Finding configuration on a live system or a snapshot, and walking directories safely
//! (symlink loops and unreadable directories become findings, never a stop).

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::finding::{Finding, Mta};

/// Regular files under `dir` (real path), sorted, at most `max_depth` deep, following
/// symlinks. Loops are reported as RD005 and unreadable entries as RD001; the walk goes on.
pub fn walk_files(
    ctx: &Context,
    dir: &Path,
    max_depth: usize,
    mta: Mta,
    findings: &mut Vec<Finding>,
) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .max_depth(max_depth)
        .sort_by_file_name();
    let mut walker = walker.into_iter();
    while let Some(entry) = walker.next() {
        // walkdir follows symlinks as this machine sees them: one that leaves a snapshot
        // is followed inside it instead, or reported (issue #14).
        if let Ok(e) = &entry {
            if e.path_is_symlink() && ctx.root.escape(e.path()).is_some() {
                let inside = ctx.root.contain(e.path());
                if e.file_type().is_dir() {
                    walker.skip_current_dir();
                }
                if inside.is_file() {
                    files.push(inside);
                } else {
                    findings.push(ctx.outside_finding(e.path(), mta));
                }
                continue;
            }
        }
        match entry {
            Ok(e) if e.file_type().is_file() => files.push(e.into_path()),
            Ok(_) => {}
            Err(err) => {
                let path = err
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| dir.to_path_buf());
                let shown = ctx.root.display(&path);
                let f = if let Some(anc) = err.loop_ancestor() {
                    Finding::new(
                        "RD005",
                        mta,
                        format!(
                            "{} links back to its parent {}; not followed",
                            shown.display(),
                            ctx.root.display(anc).display()
                        ),
                    )
                } else {
                    let why = err
                        .io_error()
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| err.to_string());
                    Finding::new(
                        "RD001",
                        mta,
                        format!("{}: cannot read: {why}", shown.display()),
                    )
                };
                findings.push(f.at(crate::finding::Location {
                    file: shown,
                    line: 1,
                    column: 1,
                    end_line: 1,
                    end_column: 1,
                }));
            }
        }
    }
    files
}

/// Entries of a directory (real paths), sorted by name; an unreadable directory gives an
/// RD001 finding and no entries; a missing one gives nothing.
pub fn list_dir(ctx: &Context, dir: &Path, mta: Mta, findings: &mut Vec<Finding>) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            v.sort();
            v
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            let shown = ctx.root.display(dir);
            findings.push(
                Finding::new(
                    "RD001",
                    mta,
                    format!("{}: cannot read: {e}", shown.display()),
                )
                .at(crate::finding::Location {
                    file: shown,
                    line: 1,
                    column: 1,
                    end_line: 1,
                    end_column: 1,
                }),
            );
            Vec::new()
        }
    }
}
