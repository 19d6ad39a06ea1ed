//! Applying fixes: collect the safe edits per file, render unified diffs, write atomically.
//!
//! Edits are byte ranges in the original text, so a fix never reformats lines it does not
//! change. Writing (fix/write.rs) checks the file again right before the new version goes
//! in and refuses one that changed, keeps owner, mode (set-ID bits too), extended
//! attributes and hard links, leaves numbered backups, and syncs the directory; temp files
//! are removed on signals, and leftovers of a killed run are RD007 (fix/temp.rs).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::finding::{Applicability, Edit, Finding};

mod diff;
mod temp;
mod write;

pub use temp::leftovers;

/// The edits to make in one file, sorted and without overlaps.
#[derive(Debug, Clone)]
pub struct FilePlan {
    pub display: PathBuf,
    pub real: PathBuf,
    pub edits: Vec<Edit>,
}

/// One file's planned edits by (start, end).
type Planned = BTreeMap<(usize, usize), Edit>;

/// Collect the safe edits of `findings`, grouped by file. Where two edits overlap, the
/// first (in finding order) wins and the other waits for the next run: applying both could
/// produce text neither fix intended.
///
/// Planned edits are kept ordered by position, so checking a new one looks only at its
/// neighbours: 300k fixes in one file plan in linear time (a scan of every planned edit
/// per new one was quadratic).
pub fn plan(findings: &[Finding], include_unsafe: bool) -> Vec<FilePlan> {
    let mut by_file: BTreeMap<PathBuf, (PathBuf, Planned)> = BTreeMap::new();
    for f in findings {
        let Some(fix) = &f.fix else { continue };
        if fix.applicability == Applicability::Unsafe && !include_unsafe {
            continue;
        }
        // All edits of one fix go in together or not at all.
        let fits = fix.edits.iter().all(|e| {
            by_file
                .get(&e.file)
                .is_none_or(|(_, planned)| fits_between(planned, e))
        });
        if !fits {
            continue;
        }
        for e in &fix.edits {
            by_file
                .entry(e.file.clone())
                .or_insert_with(|| (e.real_file.clone(), BTreeMap::new()))
                .1
                .entry((e.start, e.end))
                .or_insert_with(|| e.clone());
        }
    }
    by_file
        .into_iter()
        .map(|(display, (real, edits))| FilePlan {
            display,
            real,
            edits: edits.into_values().collect(),
        })
        .collect()
}

/// Whether `e` can join `planned` (pairwise compatible edits): an edit already planned (two
/// findings proposing the same change) is applied once; two different insertions at one
/// position conflict like overlapping replacements. Only the planned edits around `e`'s
/// position can conflict with it.
fn fits_between(planned: &Planned, e: &Edit) -> bool {
    let compatible = |o: &Edit| {
        if e == o {
            return true;
        }
        if e.start == e.end && o.start == o.end {
            return e.start != o.start;
        }
        e.end <= o.start || e.start >= o.end
    };
    // Planned edits are disjoint, so their ends grow with their starts: scan backwards
    // while one could still reach `e`, forwards while one starts inside or at its end.
    let before = planned.range(..=(e.start, e.end)).rev();
    for (_, o) in before {
        if !compatible(o) {
            return false;
        }
        if o.end < e.start {
            break;
        }
    }
    let after = planned.range((
        std::ops::Bound::Excluded((e.start, e.end)),
        std::ops::Bound::Unbounded,
    ));
    for (_, o) in after {
        if o.start > e.end {
            break;
        }
        if !compatible(o) {
            return false;
        }
    }
    true
}

/// Apply edits to text. Edits must be sorted and non-overlapping (as `plan` makes them).
pub fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut pos = 0;
    for e in edits {
        let start = e.start.clamp(pos, text.len());
        let end = e.end.clamp(start, text.len());
        out.push_str(&text[pos..start]);
        out.push_str(&e.replacement);
        pos = end;
    }
    out.push_str(&text[pos..]);
    out
}

/// Unified diff of one file's plan against the text relaydoctor read.
pub fn diff(ctx: &Context, plan: &FilePlan) -> Option<String> {
    if temp::is_removal(plan) {
        return Some(format!(
            "# remove {} (a temp file left by an interrupted --fix)\n",
            plan.display.display()
        ));
    }
    let src = ctx.source(&plan.display)?;
    let name = plan.display.display().to_string();
    if plan.edits.len() > SIMILAR_MAX_EDITS {
        return Some(diff::unified(&src.text, &plan.edits, &name));
    }
    let new = apply_edits(&src.text, &plan.edits);
    Some(
        similar::TextDiff::from_lines(src.text.as_str(), new.as_str())
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{name}"), &format!("b/{name}"))
            .to_string(),
    )
}

/// Up to this many edits in a file, its diff is similar's (minimal) line diff; beyond, the
/// diff is built from the edits themselves in linear time (Myers' algorithm costs the
/// text's length times the number of changes: 393 s for 300k fixes).
const SIMILAR_MAX_EDITS: usize = 2000;

/// Write one file's fixes. Returns the backup path (for a leftover temp file: the path
/// removed).
pub fn apply(ctx: &Context, plan: &FilePlan) -> Result<PathBuf, String> {
    apply_with(ctx, plan).map(|w| w.backup)
}

/// `apply`, with the sentence the command layer shows for it.
pub fn apply_note(ctx: &Context, plan: &FilePlan) -> Result<String, String> {
    let shown = |p: &Path| ctx.root.display(p).display().to_string();
    let w = apply_with(ctx, plan)?;
    let name = plan.display.display();
    Ok(match (temp::is_removal(plan), w.in_place_links) {
        (true, _) => format!("removed the leftover temp file {name}"),
        (false, Some(n)) => format!(
            "fixed {name} in place: it has {n} hard links, which a rename would split (backup: {})",
            shown(&w.backup)
        ),
        (false, None) => format!("fixed {name} (backup: {})", shown(&w.backup)),
    })
}

fn apply_with(ctx: &Context, plan: &FilePlan) -> Result<write::Written, String> {
    let name = plan.display.display().to_string();
    if temp::is_removal(plan) {
        return temp::remove(ctx, plan).map(|p| write::Written {
            backup: p,
            in_place_links: None,
        });
    }
    let src = ctx
        .source(&plan.display)
        .ok_or_else(|| format!("{name}: was not read in this run"))?;
    if src.lossy {
        return Err(format!(
            "{name}: not valid UTF-8; refusing to rewrite it (fix by hand)"
        ));
    }
    let new = apply_edits(&src.text, &plan.edits);
    // A symlinked configuration (main.cf -> /srv/cfg/main.cf) is fixed in the file it points
    // to, the one that was read: renaming over the link would replace it with a regular
    // file and leave the real configuration unchanged. In a snapshot the link is followed
    // inside it (chroot-style, crate::contain): a fix never writes outside the root.
    let is_link = fs::symlink_metadata(&plan.real).is_ok_and(|m| m.file_type().is_symlink());
    let target = match (ctx.root.is_snapshot(), is_link) {
        (true, _) => ctx.root.contain(&plan.real),
        (false, true) => fs::canonicalize(&plan.real).map_err(|e| format!("{name}: {e}"))?,
        (false, false) => plan.real.clone(),
    };
    write::replace_checked(&target, src.original(), new.as_bytes())
        .map_err(|e| format!("{name}: {e}"))
}

/// The first backup name; later ones are numbered (FILE.relaydoctor.bak.1, ...).
pub fn backup_path(real: &Path) -> PathBuf {
    let mut s = real.as_os_str().to_os_string();
    s.push(".relaydoctor.bak");
    PathBuf::from(s)
}

/// Write a new file (or replace one) atomically: temp file in the same directory + rename.
/// Used for reports and baselines, where a reader must never see half a file. An existing
/// file's mode is kept; a new one is 0644 (node_exporter and others read it as another user).
pub fn write_new_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mode = fs::metadata(path)
        .map(|m| m.mode() & 0o7777)
        .unwrap_or(0o644);
    persist_via_temp(path, bytes, mode)
}

fn persist_via_temp(dest: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let tmp = temp::TempGuard::beside(dest)?;
    let mut f = tmp.file();
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write: {e}"))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set mode: {e}"))?;
    tmp.persist(dest)?;
    write::sync_dir(dest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_edit_from_two_findings_is_applied_once() {
        let f = |e: Edit| {
            crate::finding::Finding::new("PF004", crate::finding::Mta::Postfix, "m")
                .fix(crate::finding::Fix::safe("d", vec![e]))
        };
        let plans = plan(
            &[
                f(edit(3, 3, "x\n")),
                f(edit(3, 3, "x\n")),
                f(edit(3, 3, "y\n")),
            ],
            false,
        );
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].edits, vec![edit(3, 3, "x\n")]);
    }

    fn edit(start: usize, end: usize, r: &str) -> Edit {
        Edit {
            real_file: "f".into(),
            file: "f".into(),
            start,
            end,
            replacement: r.into(),
        }
    }

    #[test]
    fn edits_touch_only_their_span() {
        let t = "a = 1\nb = 2 # x\nc = 3\n";
        let out = apply_edits(t, &[edit(11, 15, ""), edit(20, 21, "4")]);
        assert_eq!(out, "a = 1\nb = 2\nc = 4\n");
    }
}
