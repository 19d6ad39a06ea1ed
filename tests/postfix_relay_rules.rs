//! Relay rules that fixtures/rules/<CODE>/ covers only with one variant: each further cause
//! of an open relay (PF101) is checked here, triggering and not triggering.

use std::process::Command;

const MASTER: &str =
    "smtp inet n - y - - smtpd\nsubmission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n";

fn pf101_count(main: &str) -> usize {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("etc/postfix");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.cf"), main).unwrap();
    std::fs::write(dir.join("master.cf"), MASTER).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
        .args(["lint", "--format", "json", "--root"])
        .arg(t.path())
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(1)));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "PF101")
        .count()
}

#[test]
fn mynetworks_everything_is_an_open_relay() {
    let base = "compatibility_level = 3.6\nmydestination = example.com\n";
    assert_eq!(pf101_count(&format!("{base}mynetworks = 0.0.0.0/0\n")), 2);
    assert_eq!(
        pf101_count(&format!("{base}mynetworks = 127.0.0.0/8 192.0.2.0/24\n")),
        0
    );
    // Trusted clients cannot relay at all here: a broad mynetworks does not open it.
    assert_eq!(
        pf101_count(&format!(
            "{base}mynetworks = 0.0.0.0/0\nsmtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination\n"
        )),
        0
    );
}

#[test]
fn anonymous_sasl_is_an_open_relay() {
    let base = "compatibility_level = 3.6\nmydestination = example.com\n";
    // Only the submission listener enables SASL.
    assert_eq!(
        pf101_count(&format!(
            "{base}smtpd_sasl_security_options = noplaintext\n"
        )),
        1
    );
    assert_eq!(
        pf101_count(&format!(
            "{base}smtpd_sasl_security_options = noanonymous\n"
        )),
        0
    );
}
