//! Partial snapshots: a configuration copied without its certificates, maps and rules files.
//!
//! Under `--root`, a file the configuration names but the snapshot lacks is usually one the
//! copy left out, not one the server lacks: a dozen error-level "missing file" findings then
//! drown the findings that matter. This pass, run once over every MTA's findings, turns the
//! error-level missing-file findings of a snapshot into one warning per rule and directory
//! ("not in the snapshot; copy them for a full check"). On the live system nothing changes:
//! each missing file stays an error, because there it is missing for the MTA too.
//!
//! It works on the findings alone, so the checks that report missing files (PF108, EX003,
//! QM016, ...) need no change: the missing path is the first absolute path in the message
//! that does not exist under the root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::finding::{Finding, Severity};

/// Rules outside the `missing-file` category whose error is a named file that is absent:
/// QM016, the rules cdb named by `tcpserver -x` (collectors often skip binary cdb files).
const ALSO_MISSING_FILE: &[&str] = &["QM016"];

/// The absent file an error-level missing-file finding names (server path), if any.
fn missing_path(ctx: &Context, f: &Finding) -> Option<PathBuf> {
    if f.severity != Severity::Error
        || !(f.category == "missing-file" || ALSO_MISSING_FILE.contains(&f.code.as_str()))
    {
        return None;
    }
    f.message
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| {
                matches!(c, ',' | ':' | ';' | '`' | '"' | '\'' | '(' | ')' | '.')
            })
        })
        .filter(|w| w.starts_with('/') && w.len() > 1)
        .map(PathBuf::from)
        .find(|p| !ctx.root.resolve(p).exists())
}

/// Group a snapshot's missing-file errors: one warning per (rule, directory).
pub fn group_missing(ctx: &Context, findings: &mut Vec<Finding>) {
    if !ctx.root.is_snapshot() {
        return;
    }
    let mut groups: BTreeMap<(String, PathBuf), Vec<(usize, PathBuf)>> = BTreeMap::new();
    for (i, f) in findings.iter().enumerate() {
        if let Some(p) = missing_path(ctx, f) {
            let dir = p.parent().unwrap_or(Path::new("/")).to_path_buf();
            groups
                .entry((f.code.clone(), dir))
                .or_default()
                .push((i, p));
        }
    }
    let mut drop = vec![false; findings.len()];
    for ((_, dir), members) in groups {
        let (first, path) = &members[0];
        let f = &mut findings[*first];
        f.severity = Severity::Warning;
        if members.len() == 1 {
            f.message = format!(
                "{} ({} is not in the snapshot: copy it for a full check)",
                f.message,
                path.display()
            );
            continue;
        }
        let mut names: Vec<String> = members
            .iter()
            .map(|(_, p)| {
                p.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            })
            .collect();
        names.dedup();
        let on_server = std::mem::take(&mut f.message);
        f.message = format!(
            "{} files under {} that the configuration names are not in the snapshot ({}); copy them for a full check",
            members.len(),
            dir.display(),
            names.join(", ")
        );
        f.help = Some(format!(
            "if they are missing on the server too: {on_server}"
        ));
        f.fix = None;
        for (i, _) in &members[1..] {
            drop[*i] = true;
        }
    }
    let mut i = 0;
    findings.retain(|_| {
        i += 1;
        !drop[i - 1]
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Options, Root};
    use crate::finding::Mta;

    fn missing(code: &str, mta: Mta, path: &str) -> Finding {
        Finding::new(
            code,
            mta,
            format!("x names the file {path}, which does not exist"),
        )
    }

    #[test]
    fn snapshot_groups_per_directory_and_live_keeps_errors() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc/ssl")).unwrap();
        std::fs::write(t.path().join("etc/ssl/present.pem"), "").unwrap();
        let all = || {
            vec![
                missing("PF108", Mta::Postfix, "/etc/ssl/a.pem"),
                missing("PF108", Mta::Postfix, "/etc/ssl/b.key"),
                missing("PF108", Mta::Postfix, "/etc/postfix/virtual"),
                // Present under the root: not a missing file of the snapshot.
                missing("PF108", Mta::Postfix, "/etc/ssl/present.pem"),
                Finding::new("PF101", Mta::Postfix, "open relay /etc/ssl/zzz"),
            ]
        };
        let snap = Context::new(Root::snapshot(t.path()), Options::default());
        let mut fs = all();
        group_missing(&snap, &mut fs);
        let pf108: Vec<&Finding> = fs.iter().filter(|f| f.code == "PF108").collect();
        assert_eq!(pf108.len(), 3, "{fs:#?}");
        assert!(
            pf108[0].message.starts_with("2 files under /etc/ssl"),
            "{}",
            pf108[0].message
        );
        assert!(pf108[0].message.contains("(a.pem, b.key)"));
        assert_eq!(pf108[0].severity, Severity::Warning);
        assert!(pf108[1]
            .message
            .ends_with("(/etc/postfix/virtual is not in the snapshot: copy it for a full check)"));
        assert_eq!(pf108[2].severity, Severity::Error);
        assert_eq!(fs.iter().filter(|f| f.code == "PF101").count(), 1);
        let live = Context::new(Root::live(), Options::default());
        let mut fs = all();
        group_missing(&live, &mut fs);
        assert_eq!(fs.len(), 5);
        assert!(fs
            .iter()
            .filter(|f| f.code == "PF108")
            .all(|f| f.severity == Severity::Error));
    }
}
