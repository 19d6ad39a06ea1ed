//! Applying fixes: collect the safe edits per file, render unified diffs, write atomically.
//!
//! Edits are byte ranges in the original text, so a fix never reformats lines it does not
//! change. Writing goes through a temp file in the same directory and a rename, keeps the
//! file's mode and owner, leaves `FILE.relaydoctor.bak`, and refuses a file whose bytes
//! changed since relaydoctor read it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::finding::{Applicability, Edit, Finding};

/// The edits to make in one file, sorted and without overlaps.
#[derive(Debug, Clone)]
pub struct FilePlan {
    pub display: PathBuf,
    pub real: PathBuf,
    pub edits: Vec<Edit>,
}

/// Collect the safe edits of `findings`, grouped by file. Where two edits overlap, the
/// first (in finding order) wins and the other waits for the next run: applying both could
/// produce text neither fix intended.
pub fn plan(findings: &[Finding], include_unsafe: bool) -> Vec<FilePlan> {
    let mut by_file: BTreeMap<PathBuf, FilePlan> = BTreeMap::new();
    for f in findings {
        let Some(fix) = &f.fix else { continue };
        if fix.applicability == Applicability::Unsafe && !include_unsafe {
            continue;
        }
        // All edits of one fix go in together or not at all. An edit already planned (two
        // findings proposing the same change) is applied once; two different insertions at
        // one position conflict like overlapping replacements.
        let fits = fix.edits.iter().all(|e| {
            by_file.get(&e.file).is_none_or(|p| {
                p.edits.iter().all(|o| {
                    if e == o {
                        return true;
                    }
                    if e.start == e.end && o.start == o.end {
                        return e.start != o.start;
                    }
                    e.end <= o.start || e.start >= o.end
                })
            })
        });
        if !fits {
            continue;
        }
        for e in &fix.edits {
            if by_file.get(&e.file).is_some_and(|p| p.edits.contains(e)) {
                continue;
            }
            by_file
                .entry(e.file.clone())
                .or_insert_with(|| FilePlan {
                    display: e.file.clone(),
                    real: e.real_file.clone(),
                    edits: Vec::new(),
                })
                .edits
                .push(e.clone());
        }
    }
    let mut plans: Vec<FilePlan> = by_file.into_values().collect();
    for p in &mut plans {
        p.edits.sort_by_key(|e| (e.start, e.end));
    }
    plans
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
    let src = ctx.source(&plan.display)?;
    let new = apply_edits(&src.text, &plan.edits);
    let name = plan.display.display().to_string();
    Some(
        similar::TextDiff::from_lines(src.text.as_str(), new.as_str())
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{name}"), &format!("b/{name}"))
            .to_string(),
    )
}

/// Write one file's fixes. Returns the backup path.
pub fn apply(ctx: &Context, plan: &FilePlan) -> Result<PathBuf, String> {
    let name = plan.display.display().to_string();
    let src = ctx
        .source(&plan.display)
        .ok_or_else(|| format!("{name}: was not read in this run"))?;
    if src.lossy {
        return Err(format!(
            "{name}: not valid UTF-8; refusing to rewrite it (fix by hand)"
        ));
    }
    let current = ctx
        .root
        .read(&plan.real)
        .map_err(|e| format!("{name}: cannot read: {e}"))?;
    if current != src.original() {
        return Err(format!(
            "{name}: changed since relaydoctor read it; run again"
        ));
    }
    let new = apply_edits(&src.text, &plan.edits);
    // A symlinked configuration (main.cf -> /srv/cfg/main.cf) is fixed in the file it points
    // to, the one that was read: renaming over the link would replace it with a regular
    // file and leave the real configuration unchanged.
    // In a snapshot the link is followed inside it (chroot-style, crate::contain): a fix
    // never writes outside the root.
    let is_link = fs::symlink_metadata(&plan.real).is_ok_and(|m| m.file_type().is_symlink());
    let target = match (ctx.root.is_snapshot(), is_link) {
        (true, _) => ctx.root.contain(&plan.real),
        (false, true) => fs::canonicalize(&plan.real).map_err(|e| format!("{name}: {e}"))?,
        (false, false) => plan.real.clone(),
    };
    let backup = backup_path(&target);
    write_atomic(&target, &current, Some(&backup))
        .and_then(|_| write_atomic(&target, new.as_bytes(), None))
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(backup)
}

pub fn backup_path(real: &Path) -> PathBuf {
    let mut s = real.as_os_str().to_os_string();
    s.push(".relaydoctor.bak");
    PathBuf::from(s)
}

/// Write `bytes` to `target` (or, with `copy_to`, write the bytes to that path instead)
/// through a temp file in the same directory and a rename, with `target`'s mode and owner.
pub fn write_atomic(target: &Path, bytes: &[u8], copy_to: Option<&Path>) -> Result<(), String> {
    let meta = fs::metadata(target).map_err(|e| format!("cannot stat: {e}"))?;
    persist_via_temp(
        copy_to.unwrap_or(target),
        bytes,
        meta.mode() & 0o7777,
        Some((meta.uid(), meta.gid())),
    )
}

/// Write a new file (or replace one) atomically: temp file in the same directory + rename.
/// Used for reports and baselines, where a reader must never see half a file. An existing
/// file's mode is kept; a new one is 0644 (node_exporter and others read it as another user).
pub fn write_new_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mode = fs::metadata(path)
        .map(|m| m.mode() & 0o7777)
        .unwrap_or(0o644);
    persist_via_temp(path, bytes, mode, None)
}

fn persist_via_temp(
    dest: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), String> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".relaydoctor.")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a temp file in {}: {e}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| format!("cannot write: {e}"))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set mode: {e}"))?;
    // Keeping the owner needs privilege when it is not ours; as non-root on our own file it
    // is a no-op. Failing to keep another user's ownership is an error: the MTA may not read
    // a root-owned copy of its file.
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(tmp.path(), Some(uid), Some(gid))
            .map_err(|e| format!("cannot keep owner {uid}:{gid}: {e}"))?;
    }
    tmp.persist(dest)
        .map_err(|e| format!("cannot rename into place: {}", e.error))?;
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
