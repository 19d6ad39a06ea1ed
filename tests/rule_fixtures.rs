//! Every rule in the catalogue has a fixture that triggers it and one that must not.
//!
//! Layout: `fixtures/rules/<CODE>/bad/` and `fixtures/rules/<CODE>/good/` are server roots
//! (shaped like `/`: etc/postfix/main.cf, var/qmail/control/rcpthosts, ...), linted with
//! `--root`. An optional `fixtures/rules/<CODE>/args` file holds extra arguments, one per
//! line (e.g. `--target-version` and `3.9`). Rules that need a live database or file
//! permissions git cannot store are listed in EXEMPT with the test that covers them.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Codes whose trigger cannot live in a fixture tree, and where they are tested instead.
const EXEMPT: &[(&str, &str)] = &[
    (
        "RD001",
        "tests/robustness.rs (permission denied needs chmod at test time)",
    ),
    (
        "RD004",
        "tests/robustness.rs (a file over the size limit is generated at test time)",
    ),
    (
        "RD005",
        "tests/robustness.rs (symlink loops are created at test time)",
    ),
];

/// Findings a safe fix is expected to bring up: the next step it asks of the admin.
const FOLLOW_UPS: &[(&str, &str, &str)] = &[(
    "QM007",
    "QM013",
    "the fix edits the tcprules source; tcpserver reads the cdb, which QM013 then says to rebuild",
)];

/// DN rules (`relaydoctor dns`) need a DNS server: tests/dns.rs runs each against dnsmasq.
/// PR rules (`relaydoctor probe`) need a running SMTP server: tests/probe.rs.
fn exempt(code: &str) -> bool {
    code.starts_with("PL")
        || code.starts_with("DN")
        || code.starts_with("PR")
        || EXEMPT.iter().any(|(c, _)| *c == code)
}

/// Lint a fixture root; the findings as JSON objects and the raw output.
fn lint_root(root: &Path, extra: &[String]) -> (Vec<serde_json::Value>, String) {
    let r = root.to_string_lossy().into_owned();
    let mut args = vec![
        "lint",
        "--root",
        r.as_str(),
        "--format",
        "json",
        "--fail-on",
        "error",
    ];
    args.extend(extra.iter().map(String::as_str));
    let run = common::run_ok(&args);
    let findings = run.json()["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (findings, run.stdout)
}

fn lint_codes(root: &Path, extra: &[String]) -> (Vec<String>, String) {
    let (findings, out) = lint_root(root, extra);
    let codes = findings
        .iter()
        .map(|f| f["code"].as_str().unwrap_or("").to_string())
        .collect();
    (codes, out)
}

fn fixture_args(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("args"))
        .map(|s| {
            s.lines()
                .map(str::to_string)
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn count_codes(findings: &[serde_json::Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in findings {
        *m.entry(f["code"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    m
}

/// Apply the safe fixes of a `bad` fixture (on a copy), lint again: each finding that had a
/// safe fix is gone and no finding appeared that was not there before (selene's golden-diff
/// pattern). Returns a description of what went wrong, if anything.
fn check_fixes(code: &str, bad: &Path, extra: &[String]) -> Option<String> {
    let (before, _) = lint_root(bad, extra);
    let fixed: Vec<&str> = before
        .iter()
        .filter(|f| f["fix"]["applicability"] == "safe")
        .filter_map(|f| f["code"].as_str())
        .collect();
    if fixed.is_empty() {
        return None;
    }
    let copy = common::copy_tree(bad);
    let r = copy.path().to_string_lossy().into_owned();
    let mut args = vec!["lint", "--root", r.as_str(), "--fix", "--format", "json"];
    args.extend(extra.iter().map(String::as_str));
    let run = common::run(&args);
    if run.code != 0 && run.code != 1 {
        return Some(format!(
            "{code}: lint --fix exited {}: {}",
            run.code, run.stderr
        ));
    }
    let (after, out) = lint_root(copy.path(), extra);
    let (was, now) = (count_codes(&before), count_codes(&after));
    let mut problems = Vec::new();
    for (c, n) in &now {
        let expected = FOLLOW_UPS.iter().any(|(r, f, _)| *r == code && f == c);
        if *n > was.get(c).copied().unwrap_or(0) && !expected {
            problems.push(format!("new {c} finding(s) after the fix"));
        }
    }
    for c in fixed {
        if now.get(c).copied().unwrap_or(0) >= was.get(c).copied().unwrap_or(0) {
            problems.push(format!("the {c} finding with a safe fix is still there"));
        }
    }
    problems.sort();
    problems.dedup();
    (!problems.is_empty()).then(|| format!("{code}: after --fix: {}:\n{out}", problems.join("; ")))
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
        let extra = fixture_args(&dir);
        let (codes, out) = lint_codes(&bad, &extra);
        if !codes.contains(code) {
            failures.push(format!("{code}: bad/ does not trigger it:\n{out}"));
        }
        let (codes, out) = lint_codes(&good, &extra);
        if codes.contains(code) {
            failures.push(format!("{code}: good/ triggers it:\n{out}"));
        }
    }
    assert!(
        missing.is_empty(),
        "rules without fixtures/rules/<CODE>/{{bad,good}}: {missing:?}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn safe_fixes_remove_their_finding_and_add_none() {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules");
    let mut failures = Vec::new();
    for code in relaydoctor::catalogue::all().keys() {
        let dir = base.join(code);
        if exempt(code) || !dir.join("bad").is_dir() {
            continue;
        }
        if let Some(f) = check_fixes(code, &dir.join("bad"), &fixture_args(&dir)) {
            failures.push(f);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
