//! Discovery finds each MTA where its packages put it (issue #21 item 10): one snapshot per
//! layout under fixtures/layouts/, each with a fault whose finding names the file found.
//! When nothing is found, the error lists every place looked at.

mod common;

use common::{lint_json, repo, run, simulate, tree, with_code};

/// The findings of `lint --root fixtures/layouts/NAME`.
fn layout(name: &str) -> Vec<serde_json::Value> {
    lint_json(&repo(&format!("fixtures/layouts/{name}")), &[])
}

/// The files (relative to the root) that findings with `code` point at.
fn files_of(fs: &[serde_json::Value], code: &str) -> Vec<String> {
    with_code(fs, code)
        .iter()
        .map(|f| f["file"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn freebsd_postfix_and_its_postmulti_instance_are_found() {
    let fs = layout("freebsd-postfix");
    assert_eq!(
        files_of(&fs, "PF101"),
        ["usr/local/etc/postfix/main.cf"],
        "{fs:#?}"
    );
    assert_eq!(
        files_of(&fs, "PF103"),
        ["usr/local/etc/postfix-out/main.cf"],
        "{fs:#?}"
    );
}

#[test]
fn exim_is_found_at_each_packages_configure_file() {
    for (name, file) in [
        ("freebsd-exim", "usr/local/etc/exim/configure"),
        ("rhel-exim", "etc/exim/exim.conf"),
        ("cpanel-exim", "etc/exim.conf"),
        ("source-exim", "usr/exim/configure"),
    ] {
        let fs = layout(name);
        assert_eq!(files_of(&fs, "EX110"), [file], "{name}: {fs:#?}");
    }
}

#[test]
fn qmail_smtpd_run_scripts_are_found_in_each_supervision_tree_but_not_their_log_run() {
    for (name, run) in [
        ("qmail-supervise", "var/qmail/supervise/qmail-smtpd/run"),
        ("qmail-service", "service/qmail-smtpd/run"),
        ("qmail-etc-service", "etc/service/qmail-smtpd/run"),
    ] {
        let fs = layout(name);
        // QM017 (tcpserver without -x) is about the smtpd's own run script, once.
        assert_eq!(files_of(&fs, "QM017"), [run], "{name}: {fs:#?}");
        assert!(
            fs.iter()
                .all(|f| !f["file"].as_str().unwrap_or("").ends_with("log/run")),
            "{name}: the multilog script was read as a service: {fs:#?}"
        );
    }
}

#[test]
fn a_directory_named_on_the_command_line_is_read_as_its_package_has_it() {
    let root = repo("fixtures/layouts/freebsd-exim");
    let fs = lint_json(&root, &["/usr/local/etc/exim"]);
    assert_eq!(files_of(&fs, "EX110"), ["usr/local/etc/exim/configure"]);
}

#[test]
fn a_configuration_linked_from_two_places_is_checked_once() {
    let conf =
        std::fs::read_to_string(repo("fixtures/layouts/rhel-exim/etc/exim/exim.conf")).unwrap();
    let t = tree(&[("etc/exim/exim.conf", conf.as_str())]);
    std::fs::create_dir_all(t.path().join("usr/exim")).unwrap();
    std::os::unix::fs::symlink(
        "../../etc/exim/exim.conf",
        t.path().join("usr/exim/configure"),
    )
    .unwrap();
    // One decision per configuration found: two would mean the link was read again.
    let args = [
        "--client",
        "203.0.113.5",
        "--rcpt",
        "someone@elsewhere.example",
    ];
    let named = simulate(
        t.path(),
        &[&["/etc/exim/exim.conf", "/usr/exim/configure"][..], &args].concat(),
    );
    assert_eq!(named.len(), 2, "named twice, read twice: {named:#?}");
    let found = simulate(t.path(), &args);
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn nothing_found_lists_every_place_looked_at() {
    let empty = tempfile::tempdir().unwrap();
    let r = run(&["lint", "--root", empty.path().to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r
        .stderr
        .contains("no Postfix, Exim or qmail configuration found"));
    // The places the packages use, as the server sees them...
    for place in [
        "/etc/postfix/main.cf",
        "/usr/local/etc/postfix/main.cf",
        "/etc/exim4",
        "/etc/exim.conf",
        "/etc/exim/exim.conf",
        "/usr/local/etc/exim/configure",
        "/usr/exim/configure",
        "/var/qmail/control",
        "/var/qmail/supervise/*/run",
        "/service/*/run",
        "/etc/service/*/run",
    ] {
        assert!(r.stderr.contains(place), "{place} missing: {}", r.stderr);
    }
    // ...and everything the discovery tables hold, so the message cannot drift from them.
    let all = relaydoctor::postfix::places()
        .into_iter()
        .chain(relaydoctor::exim::places())
        .chain(relaydoctor::qmail::places());
    for place in all {
        assert!(r.stderr.contains(&place), "{place} missing: {}", r.stderr);
    }
}

/// Under --root a snapshot's absolute symlink resolves inside the snapshot, as on the server:
/// Debian's /etc/exim4/exim4.conf and qmail's control files linked to a path of the server
/// are found (a check on this machine's /etc found nothing and skipped the MTA).
#[test]
fn absolute_links_inside_a_snapshot_are_followed_inside_it() {
    use std::os::unix::fs::symlink;
    let exim =
        std::fs::read_to_string(repo("fixtures/rules/EX110/bad/etc/exim/exim.conf")).unwrap();
    let t = tree(&[
        ("etc/exim4/exim4.conf.real-relaydoctor-test", exim.as_str()),
        ("var/qmail/control/rcpthosts.real-relaydoctor-test", ""),
    ]);
    symlink(
        "/etc/exim4/exim4.conf.real-relaydoctor-test",
        t.path().join("etc/exim4/exim4.conf"),
    )
    .unwrap();
    symlink(
        "/var/qmail/control/rcpthosts.real-relaydoctor-test",
        t.path().join("var/qmail/control/rcpthosts"),
    )
    .unwrap();
    let fs = lint_json(t.path(), &[]);
    assert!(!with_code(&fs, "EX110").is_empty(), "{fs:?}");
    // An empty rcpthosts: qmail-smtpd refuses every domain (QM002).
    assert!(!with_code(&fs, "QM002").is_empty(), "{fs:?}");
    assert!(with_code(&fs, "RD001").is_empty(), "{fs:?}");
}
