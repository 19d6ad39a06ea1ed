//! Every rule in the catalogue has a fixture that triggers it and one that must not.
//!
//! Layout: `fixtures/rules/<CODE>/bad/` and `fixtures/rules/<CODE>/good/` are server roots
//! (shaped like `/`: etc/postfix/main.cf, var/qmail/control/rcpthosts, ...), linted with
//! `--root`. An optional `fixtures/rules/<CODE>/args` file holds extra arguments, one per
//! line (e.g. `--target-version` and `3.9`). Rules that need a live database or file
//! permissions git cannot store are listed in EXEMPT with the test that covers them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Codes whose trigger cannot live in a fixture tree, and where they are tested instead.
const EXEMPT: &[(&str, &str)] = &[
    ("RD001", "tests/robustness.rs (permission denied needs chmod at test time)"),
    ("RD004", "tests/robustness.rs (a file over the size limit is generated at test time)"),
    ("RD005", "tests/robustness.rs (symlink loops are created at test time)"),
];

fn exempt(code: &str) -> bool {
    code.starts_with("PL") || EXEMPT.iter().any(|(c, _)| *c == code)
}

fn lint_codes(root: &Path, extra: &[String]) -> (Vec<String>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
        .arg("lint")
        .arg("--root")
        .arg(root)
        .args(["--format", "json", "--fail-on", "error"])
        .args(extra)
        .output()
        .expect("run relaydoctor");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "lint --root {} exited {:?}: {}{}",
        root.display(),
        out.status.code(),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("json output");
    let codes = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    (codes, stdout)
}

#[test]
fn every_rule_has_a_triggering_and_a_clean_fixture() {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules");
    let mut missing = Vec::new();
    let mut failures = Vec::new();
    for code in relaydoctor::catalogue::all().keys() {
        if exempt(code) {
            continue;
        }
        let dir = base.join(code);
        let (bad, good) = (dir.join("bad"), dir.join("good"));
        if !bad.is_dir() || !good.is_dir() {
            missing.push(code.clone());
            continue;
        }
        let extra: Vec<String> = std::fs::read_to_string(dir.join("args"))
            .map(|s| s.lines().map(str::to_string).filter(|l| !l.is_empty()).collect())
            .unwrap_or_default();
        let (codes, out) = lint_codes(&bad, &extra);
        if !codes.contains(code) {
            failures.push(format!("{code}: bad/ does not trigger it:\n{out}"));
        }
        let (codes, out) = lint_codes(&good, &extra);
        if codes.contains(code) {
            failures.push(format!("{code}: good/ triggers it:\n{out}"));
        }
    }
    assert!(missing.is_empty(), "rules without fixtures/rules/<CODE>/{{bad,good}}: {missing:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
