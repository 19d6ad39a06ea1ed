//! qmail end to end: lint and simulate on the demo Plesk-style tree and on built trees.

mod common;

use common::{repo, run_ok, tree};
use serde_json::Value;
use std::path::Path;

fn findings(root: &Path) -> Vec<(String, String, u64)> {
    common::findings(root, &[])
}

fn decide(root: &Path, client: &str, rcpt: &str, extra: &[&str]) -> Vec<Value> {
    let mut a = vec![
        "simulate",
        "--root",
        root.to_str().unwrap(),
        "--client",
        client,
        "--rcpt",
        rcpt,
        "--format",
        "json",
    ];
    a.extend_from_slice(extra);
    run_ok(&a).json()["decisions"].as_array().unwrap().clone()
}

#[test]
fn demo_plesk_tree_findings_point_at_the_cause() {
    let got = findings(&repo("fixtures/demo/qmail-server"));
    let want = [
        ("QM009", "etc/xinetd.d/submission_psa", 11),
        ("QM004", "var/qmail/control/morercpthosts", 61),
        ("QM012", "var/qmail/control/smtproutes", 1),
        // newclient.example (virtualdomains:63) is in morercpthosts but not in its cdb:
        // QM004 above is that cause, so no QM003 repeats it.
        ("QM003", "var/qmail/control/virtualdomains", 62),
        ("QM003", "var/qmail/control/virtualdomains", 64),
        // Plesk's qmail-smtpd is not in the tree: whether AUTH waits for STARTTLS is unknown
        // (info). smtps (SMTPS=1) is TLS from the first byte and gets none.
        ("QM008", "etc/xinetd.d/smtp_psa", 10),
        ("QM008", "etc/xinetd.d/submission_psa", 11),
    ];
    for w in want {
        assert!(
            got.iter().any(|g| g.0 == w.0 && g.1 == w.1 && g.2 == w.2),
            "missing {w:?} in {got:?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:?}");
}

/// (code, help) of each finding of `lint --root`.
fn helps(root: &Path) -> Vec<(String, String)> {
    common::lint_json(root, &[])
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["help"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn one_finding_per_cause_with_advice_for_this_server() {
    // A missing rules cdb that a service needs: QM016 (connections dropped), not also QM013.
    let got = helps(&repo("fixtures/rules/QM016/bad"));
    assert_eq!(got.iter().filter(|g| g.0 == "QM016").count(), 1, "{got:?}");
    assert!(!got.iter().any(|g| g.0 == "QM013"), "{got:?}");
    // The rebuild command names the server's files, not the snapshot-relative ones.
    let got = helps(&repo("fixtures/rules/QM013/bad"));
    let h = &got.iter().find(|g| g.0 == "QM013").unwrap().1;
    assert_eq!(
        h,
        "tcprules /etc/tcp.smtp.cdb /etc/tcp.smtp.tmp < /etc/tcp.smtp"
    );
    // Plesk: its own checkpassword, in its own xinetd form.
    let got = helps(&repo("fixtures/demo/qmail-server"));
    let h = &got.iter().find(|g| g.0 == "QM009").unwrap().1;
    assert!(h.contains("/var/qmail/bin/smtp_auth"), "{h}");
    assert!(!h.contains("vchkpw"), "{h}");
    let got = helps(&repo("fixtures/rules/QM009/bad"));
    assert!(
        got.iter().any(|g| g.0 == "QM009" && g.1.contains("vchkpw")),
        "{got:?}"
    );
}

#[test]
fn demo_simulate_answers_as_qmail() {
    let root = repo("fixtures/demo/qmail-server");
    let d = decide(
        &root,
        "203.0.113.9",
        "u@newclient.example",
        &["--service", "smtp"],
    );
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["mta"], "qmail");
    assert_eq!(d[0]["result"], "reject");
    assert_eq!(d[0]["code"], 553);
    assert_eq!(
        d[0]["text"],
        "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"
    );
    assert!(d[0]["depends_on"][0]
        .as_str()
        .unwrap()
        .contains("relaylock"));
    // The refusal names no line: the domain is on none of them.
    let refused = d[0]["trace"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(refused["file"], "var/qmail/control/rcpthosts");
    assert!(refused["line"].is_null(), "{refused}");
    // A domain in morercpthosts.cdb is accepted from anyone.
    let d = decide(
        &root,
        "203.0.113.9",
        "u@client7.example",
        &["--service", "smtp"],
    );
    assert_eq!(d[0]["result"], "accept");
    // qmail-smtpd.c smtp_rcpt(): `250 ok`.
    assert_eq!(
        (d[0]["code"].as_u64(), d[0]["text"].as_str()),
        (Some(250), Some("ok"))
    );
    assert_eq!(
        d[0]["trace"].as_array().unwrap().last().unwrap()["file"],
        "var/qmail/control/morercpthosts.cdb"
    );
    // Authenticated clients relay on all three services.
    let d = decide(&root, "203.0.113.9", "u@gmail.com", &["--sasl-user", "bob"]);
    let names: Vec<&str> = d.iter().map(|x| x["service"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["smtp", "smtps", "submission"]);
    assert!(d.iter().all(|x| x["result"] == "accept"));
}

#[test]
fn most_specific_rule_wins_not_file_order() {
    let root = repo("fixtures/rules/QM005/good");
    // 127.:allow,RELAYCLIENT="" is line 1, :allow line 3: the prefix wins for 127.0.0.1.
    let d = decide(&root, "127.0.0.1", "u@gmail.com", &[]);
    assert_eq!(d[0]["result"], "accept");
    assert_eq!(d[0]["trace"][0]["line"], 1);
    let d = decide(&root, "198.51.100.7", "u@gmail.com", &[]);
    assert_eq!(d[0]["result"], "reject");
    assert_eq!(d[0]["code"], 553);
    let d = decide(&root, "198.51.100.7", "u@example.com", &[]);
    assert_eq!(d[0]["result"], "accept");
}

#[test]
fn the_cdb_is_what_is_live() {
    // QM013/bad: the source gives 10.1. RELAYCLIENT, the cdb was compiled before that.
    let root = repo("fixtures/rules/QM013/bad");
    let d = decide(&root, "10.1.2.3", "u@gmail.com", &[]);
    assert_eq!(d[0]["result"], "reject", "{d:?}");
    // CIDR stored literally never matches.
    let root = repo("fixtures/rules/QM006/bad");
    let d = decide(&root, "192.168.5.5", "u@gmail.com", &[]);
    assert_eq!(d[0]["result"], "reject", "{d:?}");
    let root = repo("fixtures/rules/QM006/good");
    let d = decide(&root, "192.168.5.5", "u@gmail.com", &[]);
    assert_eq!(d[0]["result"], "accept", "{d:?}");
}

#[test]
fn missing_rcpthosts_relays_and_missing_rules_drop_connections() {
    let d = decide(
        &repo("fixtures/rules/QM001/bad"),
        "198.51.100.7",
        "u@gmail.com",
        &[],
    );
    assert_eq!(d[0]["result"], "accept");
    let d = decide(
        &repo("fixtures/rules/QM016/bad"),
        "198.51.100.7",
        "u@example.com",
        &[],
    );
    assert_eq!(d[0]["result"], "unavailable");
}

#[test]
fn conditional_relayclient_makes_the_decision_depend_on_the_condition() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("var/qmail/control");
    let svc = d.path().join("service/qmail-smtpd");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::create_dir_all(&svc).unwrap();
    std::fs::write(c.join("rcpthosts"), "example.com\n").unwrap();
    std::fs::write(
        svc.join("run"),
        "#!/bin/sh\nif [ -f /etc/relay-all ]; then export RELAYCLIENT=\"\"; fi\nexec tcpserver 0 smtp /var/qmail/bin/qmail-smtpd 2>&1\n",
    )
    .unwrap();
    let got = decide(d.path(), "198.51.100.7", "u@gmail.com", &[]);
    assert_eq!(got[0]["result"], "depends", "{got:?}");
    let why = got[0]["depends_on"][0].as_str().unwrap();
    assert!(why.contains("[ -f /etc/relay-all ]"), "{why}");
    assert!(why.contains("service/qmail-smtpd/run:2"), "{why}");
    // A local recipient is accepted either way; no open-relay finding for the condition.
    let got = decide(d.path(), "198.51.100.7", "u@example.com", &[]);
    assert_eq!(got[0]["result"], "accept");
    assert!(!findings(d.path()).iter().any(|f| f.0 == "QM005"));
}

#[test]
fn submission_requiring_auth_refuses_strangers() {
    let root = repo("fixtures/rules/QM010/good");
    let d = decide(
        &root,
        "198.51.100.7",
        "u@gmail.com",
        &["--service", "submission"],
    );
    assert_eq!(d[0]["result"], "reject");
    assert_eq!(d[0]["code"], 530);
    let d = decide(
        &repo("fixtures/rules/QM010/bad"),
        "198.51.100.7",
        "u@gmail.com",
        &["--service", "submission"],
    );
    assert_eq!(d[0]["result"], "accept");
}

#[test]
fn stale_tcprules_when_only_the_cdb_relays_for_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("var/qmail/control")).unwrap();
    std::fs::write(root.join("var/qmail/control/rcpthosts"), "example.com\n").unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    // The cdb (as tcprules wrote it before the fix) still relays for everyone.
    let old =
        relaydoctor::qmail::cdb::build(&[(b"127.", b"+RELAYCLIENT=\0"), (b"", b"+RELAYCLIENT=\0")]);
    std::fs::write(root.join("etc/tcp.smtp.cdb"), old).unwrap();
    std::fs::write(
        root.join("etc/tcp.smtp"),
        "127.:allow,RELAYCLIENT=\"\"\n:allow\n",
    )
    .unwrap();
    let got = findings(root);
    assert!(
        got.iter()
            .any(|g| g.0 == "QM005" && g.1 == "etc/tcp.smtp.cdb"),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|g| g.0 == "QM013" && g.1 == "etc/tcp.smtp" && g.2 == 2),
        "{got:?}"
    );
}

#[test]
fn garbage_inputs_never_crash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let c = root.join("var/qmail/control");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::create_dir_all(root.join("etc/tcprules.d")).unwrap();
    std::fs::create_dir_all(root.join("service/x")).unwrap();
    std::fs::write(c.join("rcpthosts"), "a\n\u{feff}b c\n:::\n").unwrap();
    std::fs::write(c.join("morercpthosts"), "x\n").unwrap();
    std::fs::write(c.join("morercpthosts.cdb"), b"\x01\x02short").unwrap();
    std::fs::write(c.join("virtualdomains"), ":\n::\n@:\n").unwrap();
    std::fs::write(c.join("smtproutes"), "::::\n:[\n").unwrap();
    std::fs::write(
        root.join("etc/tcprules.d/tcp.smtp"),
        "1.2.3.999-1:allow\n:allow,A=\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/tcprules.d/tcp.smtp.cdb"), vec![0xffu8; 4096]).unwrap();
    std::fs::write(
        root.join("service/x/run"),
        "exec tcpserver -x \"${X:-/nope}\" -c $(cat /x) 0 $P qmail-smtpd `a` \"$B\" \\\n",
    )
    .unwrap();
    let got = findings(root);
    assert!(got.iter().any(|g| g.0 == "QM004"), "{got:?}");
    assert!(got.iter().any(|g| g.0 == "QM014"), "{got:?}");
}

/// A qmail root with STARTTLS (servercert.pem), AUTH on, and this run script.
fn auth_tree(run: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let mut files = vec![
        ("var/qmail/control/rcpthosts", "example.com\n"),
        ("var/qmail/control/me", "mail.example.com\n"),
        ("var/qmail/control/servercert.pem", ""),
        ("service/qmail-smtpd/run", run),
    ];
    files.extend_from_slice(extra);
    tree(&files)
}

const AUTH_RUN: &str = "#!/bin/sh\nexport SMTPAUTH=\"\"\nexec tcpserver -v -R 0 587 /var/qmail/bin/qmail-smtpd /home/vpopmail/bin/vchkpw /bin/true 2>&1\n";

/// (severity, file, line) of the QM008 findings.
fn qm008(root: &Path) -> Vec<(String, String, u64)> {
    common::with_code(&common::lint_json(root, &[]), "QM008")
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["file"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn plaintext_auth_follows_the_patch_switches() {
    // STARTTLS offered, build unknown (no binary in the snapshot): info, not a warning.
    let t = auth_tree(AUTH_RUN, &[]);
    assert_eq!(
        qm008(t.path()),
        [("info".into(), "service/qmail-smtpd/run".into(), 3)]
    );
    // FORCETLS=0 in a tcp rule's environment: a warning at that rule.
    let run = AUTH_RUN.replace("-R 0", "-R -x /etc/tcp.smtp.cdb 0");
    let rules = "127.:allow,RELAYCLIENT=\"\"\n:allow,FORCETLS=\"0\"\n";
    let t = auth_tree(&run, &[("etc/tcp.smtp", rules)]);
    let cdb =
        relaydoctor::qmail::cdb::build(&[(b"127.", b"+RELAYCLIENT=\0"), (b"", b"+FORCETLS=0\0")]);
    std::fs::write(t.path().join("etc/tcp.smtp.cdb"), cdb).unwrap();
    assert_eq!(
        qm008(t.path()),
        [("warning".into(), "etc/tcp.smtp".into(), 2)]
    );
    // The binary is in the tree: a qmail-smtpd without any switch (a real ELF without the
    // strings) offers AUTH in clear; one that reads FORCETLS holds it back by default.
    let t = auth_tree(AUTH_RUN, &[]);
    let bin = t.path().join("var/qmail/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/true", bin.join("qmail-smtpd")).unwrap();
    assert_eq!(
        qm008(t.path()),
        [("warning".into(), "service/qmail-smtpd/run".into(), 3)]
    );
    // A stand-in for sagredo's binary: its environment names are plain strings in it.
    let mut fake = std::fs::read("/bin/true").unwrap();
    fake.extend_from_slice(b"\0SMTPAUTH\0FORCETLS\0SMTPS\0");
    std::fs::write(bin.join("qmail-smtpd"), fake).unwrap();
    assert_eq!(qm008(t.path()), []);
    // Implicit TLS (sslserver without -n) never offers anything in clear; SMTPAUTH="0" is off.
    let t = auth_tree(&AUTH_RUN.replace("tcpserver", "sslserver -e"), &[]);
    assert_eq!(qm008(t.path()), []);
    let t = auth_tree(
        &AUTH_RUN
            .replace("SMTPAUTH=\"\"", "SMTPAUTH=\"0\"")
            .replace(" /home/vpopmail/bin/vchkpw /bin/true", ""),
        &[],
    );
    assert_eq!(qm008(t.path()), []);
}

#[test]
fn port_465_needs_tls_from_the_first_byte() {
    let run465 = AUTH_RUN.replace(" 587 ", " 465 ");
    let codes = |run: &str| -> Vec<String> {
        let t = auth_tree(run, &[]);
        findings(t.path()).into_iter().map(|f| f.0).collect()
    };
    assert!(codes(&run465).contains(&"QM018".to_string()));
    // tlswrapper in front of qmail-smtpd (janmojzis/tlswrapper examples.md): TLS at once.
    let wrapped = run465.replace(
        "/var/qmail/bin/qmail-smtpd",
        "/usr/bin/tlswrapper -u qmaild -f /etc/ssl/cert.pem /var/qmail/bin/qmail-smtpd",
    );
    assert!(!codes(&wrapped).contains(&"QM018".to_string()));
    // tlswrapper -n with tlswrapper-smtp is STARTTLS: still plain on 465.
    let starttls = run465.replace(
        "/var/qmail/bin/qmail-smtpd",
        "/usr/bin/tlswrapper -n -f /etc/ssl/cert.pem /usr/bin/tlswrapper-smtp /var/qmail/bin/qmail-smtpd",
    );
    assert!(codes(&starttls).contains(&"QM018".to_string()));
    // SMTPS with the qmail-tls patch: qmail-smtpd starts TLS itself.
    let smtps = run465.replace("export SMTPAUTH", "export SMTPS=1\nexport SMTPAUTH");
    assert!(!codes(&smtps).contains(&"QM018".to_string()));
    // sslserver -n waits for STARTTLS.
    assert!(codes(&run465.replace("tcpserver", "sslserver -n")).contains(&"QM018".to_string()));
}

#[test]
fn rules_without_x_are_reported_only_when_no_service_reads_them() {
    let bad = findings(&repo("fixtures/rules/QM017/bad"));
    assert!(
        bad.iter()
            .any(|f| f.0 == "QM017" && f.1 == "service/qmail-smtpd/run" && f.2 == 5),
        "{bad:?}"
    );
    // Another service reads tcp.smtp with -x: a submission service without -x is normal.
    let t = common::copy_tree(&repo("fixtures/rules/QM017/good"));
    let sub = t.path().join("service/qmail-submission");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(
        sub.join("run"),
        "#!/bin/sh\nexport SMTPAUTH=\"!\"\nexec tcpserver -v -R 0 587 /var/qmail/bin/qmail-smtpd /home/vpopmail/bin/vchkpw /bin/true 2>&1\n",
    )
    .unwrap();
    let got = findings(t.path());
    assert!(!got.iter().any(|f| f.0 == "QM017"), "{got:?}");
}

#[test]
fn files_a_snapshot_lacks_are_one_warning_per_directory() {
    // Two services name rules cdbs the snapshot does not hold (src/partial.rs).
    let run = |port: &str, cdb: &str| {
        format!(
            "#!/bin/sh\nexec tcpserver -v -R -x {cdb} 0 {port} /var/qmail/bin/qmail-smtpd 2>&1\n"
        )
    };
    let (smtp, sub) = (
        run("smtp", "/etc/tcp.smtp.cdb"),
        run("587", "/etc/tcp.submission.cdb"),
    );
    let t = tree(&[
        ("var/qmail/control/rcpthosts", "example.com\n"),
        ("service/qmail-smtpd/run", &smtp),
        ("service/qmail-submission/run", &sub),
    ]);
    let fs = common::lint_json(t.path(), &[]);
    let qm016 = common::with_code(&fs, "QM016");
    assert_eq!(qm016.len(), 1, "{fs:#?}");
    assert_eq!(qm016[0]["severity"], "warning");
    let msg = qm016[0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("2 files under /etc that the configuration names are not in the snapshot (tcp.smtp.cdb, tcp.submission.cdb)"),
        "{msg}"
    );
    assert!(qm016[0]["help"]
        .as_str()
        .unwrap()
        .contains("dropping connection"));
}
