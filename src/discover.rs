//! Finding configuration on a live system or a snapshot, and walking directories safely
//! (symlink loops and unreadable directories become findings, never a stop).

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::finding::{Finding, Mta};

/// Regular files under `dir` (real path), sorted, at most `max_depth` deep, following
/// symlinks. Loops are reported as RD005 and unreadable directories as RD001; the walk goes
/// on. A link whose target is missing is left to the check that reads the file (it says
/// whether that matters), so one missing file never gets two contradicting findings.
pub fn walk_files(
    ctx: &Context,
    dir: &Path,
    max_depth: usize,
    mta: Mta,
    findings: &mut Vec<Finding>,
) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if ctx.root.is_snapshot() {
        let chain = vec![ctx.root.contain(dir)];
        walk_snapshot(
            ctx,
            (dir, dir),
            max_depth,
            &chain,
            mta,
            findings,
            &mut files,
        );
        return files;
    }
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .max_depth(max_depth)
        .sort_by_file_name();
    for entry in walker {
        match entry {
            Ok(e) if e.file_type().is_file() => files.push(e.into_path()),
            Ok(_) => {}
            Err(err) if dangling(&err) => {}
            Err(err) => findings.push(walk_error(ctx, dir, &err, mta)),
        }
    }
    files
}

/// A symlink whose target does not exist (walkdir following links reports it as an error).
fn dangling(err: &walkdir::Error) -> bool {
    err.io_error()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        && err
            .path()
            .and_then(|p| std::fs::symlink_metadata(p).ok())
            .is_some_and(|m| m.file_type().is_symlink())
}

/// `walk_files` in a snapshot: walkdir never follows a link (it would follow it on this
/// machine: an absolute target is a host path, review7 F5); each link is resolved inside
/// the root like every read (crate::contain) and a linked directory is walked from its
/// resolved place. `chain` holds the physical directories the walk came through (the start
/// and the parent of each link followed): a link to one of them, or to an ancestor of one,
/// is a loop.
fn walk_snapshot(
    ctx: &Context,
    (dir, logical): (&Path, &Path),
    max_depth: usize,
    chain: &[PathBuf],
    mta: Mta,
    findings: &mut Vec<Finding>,
    files: &mut Vec<PathBuf>,
) {
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .max_depth(max_depth)
        .sort_by_file_name();
    for entry in walker {
        let e = match entry {
            Ok(e) => e,
            Err(err) => {
                findings.push(walk_error(ctx, dir, &err, mta));
                continue;
            }
        };
        // The path as the configuration reaches it (through the links followed so far).
        let shown = logical.join(e.path().strip_prefix(dir).unwrap_or(e.path()));
        if e.file_type().is_file() {
            files.push(shown);
            continue;
        }
        if !e.file_type().is_symlink() {
            continue;
        }
        let target = ctx.root.contain(e.path());
        match std::fs::metadata(&target) {
            Ok(m) if m.is_file() => files.push(shown),
            Ok(m) if m.is_dir() => {
                let here = ctx.root.contain(e.path().parent().unwrap_or(dir));
                let mut chain = chain.to_vec();
                chain.push(here);
                if chain.iter().any(|a| a.starts_with(&target)) {
                    findings.push(loop_finding(ctx, &shown, &target, mta));
                } else if e.depth() < max_depth {
                    walk_snapshot(
                        ctx,
                        (&target, &shown),
                        max_depth - e.depth(),
                        &chain,
                        mta,
                        findings,
                        files,
                    );
                }
            }
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                let shown = ctx.root.display(&shown);
                findings.push(
                    Finding::new(
                        "RD001",
                        mta,
                        format!("{}: cannot read: {err}", shown.display()),
                    )
                    .at(file_start(shown)),
                );
            }
        }
    }
}

/// The finding for an entry walkdir could not read: a loop (RD005) or an I/O error (RD001).
fn walk_error(ctx: &Context, dir: &Path, err: &walkdir::Error, mta: Mta) -> Finding {
    let path = err
        .path()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.to_path_buf());
    if let Some(anc) = err.loop_ancestor() {
        return loop_finding(ctx, &path, anc, mta);
    }
    let shown = ctx.root.display(&path);
    let why = err
        .io_error()
        .map(|e| e.to_string())
        .unwrap_or_else(|| err.to_string());
    Finding::new(
        "RD001",
        mta,
        format!("{}: cannot read: {why}", shown.display()),
    )
    .at(file_start(shown))
}

/// RD005: the link `link` leads back to `ancestor`, a directory the walk is already in.
fn loop_finding(ctx: &Context, link: &Path, ancestor: &Path, mta: Mta) -> Finding {
    let shown = ctx.root.display(link);
    Finding::new(
        "RD005",
        mta,
        format!(
            "{} links back to its parent {}; not followed",
            shown.display(),
            ctx.root.display(ancestor).display()
        ),
    )
    .at(file_start(shown))
}

/// Line 1, column 1 of a file: where a finding about the whole file points.
fn file_start(file: PathBuf) -> crate::finding::Location {
    crate::finding::Location {
        file,
        line: 1,
        column: 1,
        end_line: 1,
        end_column: 1,
    }
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
                .at(file_start(shown)),
            );
            Vec::new()
        }
    }
}
