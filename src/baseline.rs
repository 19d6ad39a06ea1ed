//! Baselines: accept today's findings and report only new ones.
//!
//! A finding's fingerprint is built from what identifies the problem, not where it sits:
//! rule code, file, service, and the text of the lines it points at (whitespace folded) —
//! never the line number, so inserting unrelated lines above does not make it "new".
//! Identical fingerprints (the same problem text twice in a file) are told apart by their
//! order of occurrence.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::context::Context;
use crate::finding::Finding;

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    fingerprint: String,
    code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    message: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    tool: String,
    findings: Vec<Entry>,
}

/// FNV-1a, 64 bit: stable across Rust versions and platforms (std's hasher is not).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn span_text(ctx: &Context, f: &Finding) -> String {
    let Some(loc) = &f.location else {
        return f.message.clone();
    };
    let Some(src) = ctx.source(&loc.file) else {
        return f.message.clone();
    };
    let mut s = String::new();
    for line in loc.line..=loc.end_line.max(loc.line).min(loc.line + 20) {
        s.push_str(
            &src.line_text(line)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        );
        s.push('\n');
    }
    s
}

/// Fingerprints of `findings`, in order.
pub fn fingerprints(ctx: &Context, findings: &[Finding]) -> Vec<String> {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    findings
        .iter()
        .map(|f| {
            let file = f
                .location
                .as_ref()
                .map(|l| l.file.display().to_string())
                .unwrap_or_default();
            let text = span_text(ctx, f);
            let base = fnv1a(&[&f.code, &file, f.service.as_deref().unwrap_or(""), &text]);
            let n = seen.entry(base).or_insert(0);
            *n += 1;
            format!("{base:016x}-{n}")
        })
        .collect()
}

pub fn write(ctx: &Context, findings: &[Finding], path: &Path) -> Result<(), String> {
    let fps = fingerprints(ctx, findings);
    // The messages are for the reader of the file; they must not carry passwords.
    let secrets = crate::secrets::collect(ctx);
    let file = File {
        version: 1,
        tool: format!("relaydoctor {}", env!("CARGO_PKG_VERSION")),
        findings: findings
            .iter()
            .zip(fps)
            .map(|(f, fp)| Entry {
                fingerprint: fp,
                code: f.code.clone(),
                file: f.location.as_ref().map(|l| l.file.display().to_string()),
                message: crate::secrets::scrub(&f.message, &secrets),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&file).map_err(|e| e.to_string())?;
    text.push('\n');
    crate::fix::write_new_atomic(path, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Remove findings recorded in the baseline at `path`.
pub fn filter(ctx: &Context, findings: &mut Vec<Finding>, path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: File = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a relaydoctor baseline: {e}", path.display()))?;
    let known: BTreeSet<String> = file.findings.into_iter().map(|e| e.fingerprint).collect();
    let fps = fingerprints(ctx, findings);
    let mut i = 0;
    findings.retain(|_| {
        let keep = !known.contains(&fps[i]);
        i += 1;
        keep
    });
    Ok(())
}
