//! The admin-world outputs and habits: SARIF (validated against the official 2.1.0 schema),
//! GitHub annotations, Nagios, Prometheus (atomic -o), baselines, suppressions, settings file.

mod common;

use assert_cmd::Command;
use predicates::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};

fn bin() -> Command {
    let mut c = Command::cargo_bin("relaydoctor").unwrap();
    c.env_remove("NO_COLOR").current_dir(std::env::temp_dir());
    c
}

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/qmail-server")
}

use common::{copy_tree, findings as json_codes};

#[test]
fn sarif_validates_against_the_2_1_0_schema() {
    // The official schema (tests/data, as shipped in serde-sarif 0.8) has one pattern,
    // run.language, with a stray `]` that ECMA-262 regexes accept and Rust's regex engine
    // rejects while meta-validating the schema; relaydoctor never emits `language`, so the
    // pattern is replaced by its evident intent.
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sarif-schema-2.1.0.json"),
    )
    .unwrap()
    .replace(
        r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#,
        r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#,
    );
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let out = bin()
        .args(["lint", "--format", "sarif", "--root"])
        .arg(demo())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "SARIF schema errors: {errors:#?}");
    // The validator does reject what is not SARIF 2.1.0.
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = serde_json::json!("fatal");
    assert!(!validator.is_valid(&broken));
    let run = &sarif["runs"][0];
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), json_codes(&demo(), &[]).len());
    let r = results.iter().find(|r| r["ruleId"] == "QM003").unwrap();
    assert_eq!(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "var/qmail/control/virtualdomains"
    );
    let idx = r["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(run["tool"]["driver"]["rules"][idx]["id"], "QM003");
    // Every rule descriptor carries GitHub's security-severity.
    for rule in run["tool"]["driver"]["rules"].as_array().unwrap() {
        assert!(
            rule["properties"]["security-severity"].is_string(),
            "{rule}"
        );
    }
}

#[test]
fn github_annotations_point_at_file_and_line() {
    bin()
        .args(["lint", "--format", "github", "--root"])
        .arg(demo())
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "::error file=var/qmail/control/virtualdomains,line=62,col=1,",
        ))
        .stdout(predicate::str::contains(
            "title=QM003 domain-not-in-rcpthosts::",
        ))
        .stdout(predicate::str::contains(
            "::warning file=var/qmail/control/smtproutes,line=1,",
        ));
}

#[test]
fn nagios_status_line_and_exit_codes() {
    let out = bin()
        .args(["lint", "--format", "nagios", "--root"])
        .arg(demo())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "CRITICAL");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("RELAYDOCTOR CRITICAL - "), "{text}");
    assert!(text.contains("| errors=4;;1;0 warnings=1;1;;0"), "{text}");

    // Only a warning left: WARNING, exit 1.
    bin()
        .args(["lint", "--format", "nagios", "--select", "QM012", "--root"])
        .arg(demo())
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with("RELAYDOCTOR WARNING - "));
    bin()
        .args(["lint", "--format", "nagios", "--ignore", "QM", "--root"])
        .arg(demo())
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("RELAYDOCTOR OK - "));
    // Could not check: UNKNOWN, exit 3.
    bin()
        .args(["lint", "--format", "nagios", "/nonexistent/relaydoctor"])
        .assert()
        .code(3)
        .stdout(predicate::str::starts_with("RELAYDOCTOR UNKNOWN - "));
}

#[test]
fn prometheus_textfile_is_written_atomically_with_every_gauge() {
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("relaydoctor.prom");
    bin()
        .args(["lint", "--format", "prometheus", "-o"])
        .arg(&prom)
        .arg("--root")
        .arg(demo())
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty());
    let text = fs::read_to_string(&prom).unwrap();
    assert!(text.contains("# TYPE relaydoctor_findings gauge"));
    assert!(
        text.contains("relaydoctor_findings{category=\"relay-denied\",severity=\"error\"} 2"),
        "{text}"
    );
    assert!(text.contains("relaydoctor_findings{category=\"db-integrity\",severity=\"info\"} 0"));
    let gauges = text
        .lines()
        .filter(|l| l.starts_with("relaydoctor_findings{"))
        .count();
    assert_eq!(gauges, relaydoctor::catalogue::CATEGORIES.len() * 3);
    assert!(text.contains("relaydoctor_last_run_timestamp_seconds "));
    assert!(text.contains("\nrelaydoctor_up 1\n"), "{text}");
    // A later run that fails replaces the file with `relaydoctor_up 0`, so the last good
    // counts cannot hide the failure.
    bin()
        .args(["lint", "--format", "prometheus", "-o"])
        .arg(&prom)
        .arg("--root")
        .arg(dir.path().join("no-such-snapshot"))
        .assert()
        .code(2);
    let failed = fs::read_to_string(&prom).unwrap();
    assert!(failed.contains("\nrelaydoctor_up 0\n"), "{failed}");
    assert!(!failed.contains("relaydoctor_findings{"), "{failed}");
    fs::write(&prom, &text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&prom).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "temp files left: {names:?}");
}

#[test]
fn baseline_survives_line_shifts_and_reports_new_findings() {
    let tree = copy_tree(&demo());
    let base = tree.path().join("baseline.json");
    bin()
        .args(["lint", "--write-baseline"])
        .arg(&base)
        .arg("--root")
        .arg(tree.path())
        .assert()
        .code(1);
    bin()
        .args(["lint", "--baseline"])
        .arg(&base)
        .arg("--root")
        .arg(tree.path())
        .assert()
        .code(0);
    // Unrelated lines above the findings: nothing new.
    let vd = tree.path().join("var/qmail/control/virtualdomains");
    let old = fs::read_to_string(&vd).unwrap();
    fs::write(&vd, format!("added.example:added.example\n{old}")).unwrap();
    let rh = tree.path().join("var/qmail/control/rcpthosts");
    let rh_old = fs::read_to_string(&rh).unwrap();
    fs::write(&rh, format!("added.example\n{rh_old}")).unwrap();
    bin()
        .args(["lint", "--baseline"])
        .arg(&base)
        .arg("--root")
        .arg(tree.path())
        .assert()
        .code(0);
    // A new problem is reported.
    fs::write(
        &vd,
        format!("added.example:added.example\n{old}fresh.example:fresh.example\n"),
    )
    .unwrap();
    let codes = json_codes(tree.path(), &["--baseline", base.to_str().unwrap()]);
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert_eq!(codes[0].0, "QM003");
}

#[test]
fn suppression_needs_a_reason_and_stale_ones_are_reported() {
    let tree = copy_tree(&demo());
    let vd = tree.path().join("var/qmail/control/smtproutes");
    let old = fs::read_to_string(&vd).unwrap();
    fs::write(
        &vd,
        format!("# relaydoctor: ignore QM012 -- shop.example is handled by the ISP relay on purpose\n{old}"),
    )
    .unwrap();
    let codes = json_codes(tree.path(), &[]);
    assert!(!codes.iter().any(|c| c.0 == "QM012"), "{codes:?}");
    assert!(
        !codes.iter().any(|c| c.0 == "RD010" || c.0 == "RD011"),
        "{codes:?}"
    );

    fs::write(&vd, format!("# relaydoctor: ignore QM012\n{old}")).unwrap();
    let codes = json_codes(tree.path(), &[]);
    assert!(
        codes.iter().any(|c| c.0 == "QM012"),
        "no reason, no suppression: {codes:?}"
    );
    assert!(
        codes.iter().any(|c| c.0 == "RD011" && c.2 == 1),
        "{codes:?}"
    );

    fs::write(
        &vd,
        format!("# relaydoctor: ignore QM003 -- wrong code\n{old}"),
    )
    .unwrap();
    let codes = json_codes(tree.path(), &[]);
    assert!(codes.iter().any(|c| c.0 == "RD010"), "{codes:?}");
}

#[test]
fn settings_file_overrides_severity_and_ignores_per_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("relaydoctor.toml");
    fs::write(
        &cfg,
        "fail-on = \"error\"\n[severity]\nQM003 = \"warning\"\nQM004 = \"warning\"\nQM009 = \"info\"\n[per-path-ignores]\n\"etc/xinetd.d/*\" = [\"QM\"]\n",
    )
    .unwrap();
    let out = bin()
        .args(["lint", "--format", "json", "--config"])
        .arg(&cfg)
        .arg("--root")
        .arg(demo())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "only warnings left, fail-on error"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["error"], 0);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("xinetd"));
    // The flag wins over the file.
    bin()
        .args(["lint", "--fail-on", "warning", "--config"])
        .arg(&cfg)
        .arg("--root")
        .arg(demo())
        .assert()
        .code(1);
    // A broken settings file is an error, not silently ignored.
    fs::write(&cfg, "fail-on = \"sometimes\"\n").unwrap();
    bin()
        .args(["lint", "--config"])
        .arg(&cfg)
        .arg("--root")
        .arg(demo())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("relaydoctor.toml"));
}

/// Rendered formats, as users see them (snapshots); no progress output leaks into a pipe.
#[test]
fn rendered_formats_snapshots() {
    for (format, name) in [
        ("github", "qmail_demo_github"),
        ("nagios", "qmail_demo_nagios"),
        ("text", "qmail_demo_text"),
    ] {
        let out = bin()
            .args(["lint", "--color", "never", "--format", format, "--root"])
            .arg(demo())
            .output()
            .unwrap();
        assert!(
            out.stderr.is_empty(),
            "stderr in a pipe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        insta::assert_snapshot!(name, String::from_utf8(out.stdout).unwrap());
    }
    let out = bin()
        .args(["lint", "--format", "prometheus", "--root"])
        .arg(demo())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    // The timestamp changes every run.
    let stable: String = text
        .lines()
        .filter(|l| !l.starts_with("relaydoctor_last_run_timestamp_seconds "))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!("qmail_demo_prometheus", stable);
}

/// A value pasted as one enormous word is named by its length, never echoed: not in the
/// message, not in the quoted source line, in no format.
#[test]
fn an_enormous_word_is_not_echoed() {
    let word = "x".repeat(200_000);
    let main = format!(
        "compatibility_level = 3.6\nsmtpd_relay_restrictions = permit_mynetworks, {word}, reject_unauth_destination\n"
    );
    let t = common::postfix_tree(&main, Some("smtp inet n - n - - smtpd\n"));
    for format in ["text", "json", "sarif", "github"] {
        let out = bin()
            .args(["lint", "--color", "never", "--format", format, "--root"])
            .arg(t.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{format}");
        assert!(text.contains("PF014"), "{format}: {text}");
        assert!(text.contains("200000 characters, not shown"), "{format}");
        assert!(!text.contains(&word[..1000]), "{format}");
        // SARIF carries the whole rule catalogue besides.
        if format != "sarif" {
            assert!(text.len() < 20_000, "{format}: {} bytes", text.len());
        }
    }
}
