//! Exim through the CLI: the Debian demo server (seed case: a sender callout in the RCPT ACL,
//! reached through a macro-named include), cPanel host files, --define, includes, templates.

use std::path::{Path, PathBuf};
use std::process::Command;

fn base() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
        .args(args)
        .output()
        .expect("run relaydoctor");
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{args:?} exited {:?}: {s}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), s)
}

fn findings(root: &Path, extra: &[&str]) -> Vec<(String, String, u64)> {
    let r = root.to_string_lossy().to_string();
    let mut args = vec!["lint", "--root", r.as_str(), "--format", "json"];
    args.extend_from_slice(extra);
    let (_, out) = run(&args);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn simulate(root: &Path, extra: &[&str]) -> serde_json::Value {
    let r = root.to_string_lossy().to_string();
    let mut args = vec!["simulate", "--root", r.as_str(), "--format", "json"];
    args.extend_from_slice(extra);
    let (_, out) = run(&args);
    serde_json::from_str(&out).expect("json")
}

#[test]
fn demo_server_points_into_the_included_file_and_conf_d() {
    let demo = base().join("fixtures/demo/exim-server");
    let f = findings(&demo, &[]);
    // The seed case: `verify = sender/callout` in the RCPT ACL, in the file that
    // CHECK_RCPT_LOCAL_ACL_FILE includes, at the line of the condition.
    assert!(
        f.contains(&("EX140".into(), "etc/exim4/local_rcpt_acl".into(), 4)),
        "{f:?}"
    );
    assert!(
        f.contains(&("EX151".into(), "etc/exim4/local_rcpt_acl".into(), 9)),
        "{f:?}"
    );
    assert!(
        f.contains(&("EX150".into(), "etc/exim4/local_rcpt_acl".into(), 9)),
        "{f:?}"
    );
    // AUTH_SERVER_ALLOW_NOTLS_PASSWORDS (a macro in conf.d/main/000_localmacros) removes the
    // TLS guard of Debian's example authenticators.
    assert!(f.contains(&(
        "EX130".into(),
        "etc/exim4/conf.d/auth/30_exim4-config_examples".into(),
        32
    )));
    assert!(
        !f.iter().any(|x| x.0 == "EX110"),
        "not an open relay: {f:?}"
    );
}

#[test]
fn demo_server_decisions() {
    let demo = base().join("fixtures/demo/exim-server");
    let v = simulate(
        &demo,
        &["--client", "203.0.113.9", "--rcpt", "bob@gmail.example"],
    );
    let d = &v["decisions"][0];
    assert_eq!(d["mta"], "exim");
    assert_eq!(d["service"], "smtp");
    assert_eq!(d["result"], "reject");
    assert_eq!(d["code"], 550);
    assert_eq!(d["text"], "relay not permitted");
    let last = d["trace"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["file"],
        "etc/exim4/conf.d/acl/30_exim4-config_check_rcpt"
    );
    // A local recipient from a stranger depends on the sender callout (the seed case).
    let v = simulate(
        &demo,
        &[
            "--client",
            "203.0.113.9",
            "--rcpt",
            "bob@shop-example.com",
            "--sender",
            "a@partner.example",
        ],
    );
    let d = &v["decisions"][0];
    assert_eq!(d["result"], "depends");
    assert!(
        d["depends_on"][0]
            .as_str()
            .unwrap()
            .contains("sender/callout"),
        "{d}"
    );
    // relay_from_hosts comes from dc_relay_nets through MAIN_RELAY_NETS.
    let v = simulate(
        &demo,
        &["--client", "10.20.3.4", "--rcpt", "bob@gmail.example"],
    );
    assert_eq!(v["decisions"][0]["result"], "accept");
    // Authenticated users relay.
    let v = simulate(
        &demo,
        &[
            "--client",
            "203.0.113.9",
            "--sasl-user",
            "alice",
            "--rcpt",
            "bob@gmail.example",
        ],
    );
    assert_eq!(v["decisions"][0]["result"], "accept");
}

#[test]
fn cpanel_host_files_are_checked() {
    let c = base().join("fixtures/exim/cpanel");
    let f = findings(&c, &[]);
    assert!(
        f.contains(&("EX111".into(), "etc/relayhosts".into(), 4)),
        "{f:?}"
    );
    assert!(
        f.contains(&("EX111".into(), "etc/alwaysrelay".into(), 1)),
        "{f:?}"
    );
    assert!(
        f.contains(&("EX110".into(), "etc/exim.conf".into(), 14)),
        "{f:?}"
    );
    assert_eq!(
        f.iter().filter(|x| x.1 == "etc/relayhosts").count(),
        1,
        "{f:?}"
    );
}

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, t) in files {
        let p = d.path().join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, t).unwrap();
    }
    d
}

const RELAY_CORE: &str = "domainlist local_domains = example.org
hostlist relay_from_hosts = 127.0.0.1
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  accept hosts = +relay_from_hosts
.ifdef OPEN_RELAY
  accept
.endif
  require message = relay not permitted
          domains = +local_domains
  accept
";

#[test]
fn define_overrides_like_exim_minus_d() {
    let d = tree(&[("etc/exim/exim.conf", RELAY_CORE)]);
    let f = findings(d.path(), &[]);
    assert!(!f.iter().any(|x| x.0 == "EX110"), "{f:?}");
    let f = findings(d.path(), &["--define", "OPEN_RELAY=1"]);
    assert!(
        f.contains(&("EX110".into(), "etc/exim/exim.conf".into(), 8)),
        "{f:?}"
    );
}

#[test]
fn relative_includes_cycles_and_positions() {
    let d = tree(&[
        ("etc/exim/exim.conf", "acl_smtp_rcpt = acl_check_rcpt\n.include conf.d/acl.conf\n"),
        (
            "etc/exim/conf.d/acl.conf",
            "begin acl\nacl_check_rcpt:\n  accept hosts = +relay_from_hosts\n  accept\n.include acl.conf\n",
        ),
    ]);
    let f = findings(d.path(), &[]);
    // The final accept is an open relay, reported in the included file.
    assert!(
        f.contains(&("EX110".into(), "etc/exim/conf.d/acl.conf".into(), 4)),
        "{f:?}"
    );
    // The self-include is a cycle, reported where it happens.
    assert!(
        f.contains(&("EX002".into(), "etc/exim/conf.d/acl.conf".into(), 5)),
        "{f:?}"
    );
}

#[test]
fn templates_with_foreign_placeholders_give_a_finding_not_a_crash() {
    for (name, text) in [
        ("percent", "domainlist local_domains = %LOCAL_DOMAINS%\nacl_smtp_rcpt = a\nbegin acl\na:\n  accept\n"),
        ("jinja", "primary_hostname = {{ mail_hostname }}\n{% if relay %}\nacl_smtp_rcpt = a\n{% endif %}\n"),
        ("at", "hostlist relay_from_hosts = @RELAY_NETS@\n"),
    ] {
        let d = tree(&[("etc/exim/exim.conf", text)]);
        let f = findings(d.path(), &[]);
        assert!(f.iter().any(|x| x.0 == "EX001"), "{name}: {f:?}");
    }
}

#[test]
fn debian_seed_macros_come_from_update_exim4_conf_conf() {
    // Debian's own conf.d with a wide dc_relay_nets: the finding points at the dc_ line.
    let root = base().join("fixtures/exim/oracle/debian-split-wide-relaynets");
    let f = findings(&root, &[]);
    assert!(
        f.contains(&("EX111".into(), "etc/exim4/update-exim4.conf.conf".into(), 8)),
        "{f:?}"
    );
    // A .rul file replaces its namesake: the misordered require is found in the .rul file.
    let root = base().join("fixtures/exim/oracle/debian-split-rul-misordered");
    let f = findings(&root, &[]);
    assert!(
        f.iter()
            .any(|x| x.0 == "EX120" && x.1.ends_with("30_exim4-config_check_rcpt.rul")),
        "{f:?}"
    );
    // /etc/exim4/exim4.conf, when present, wins over conf.d.
    let d = tree(&[
        ("etc/exim4/exim4.conf", "acl_smtp_rcpt = nope\n"),
        (
            "etc/exim4/conf.d/main/00_x",
            "acl_smtp_rcpt = acl_check_rcpt\n",
        ),
    ]);
    let f = findings(d.path(), &[]);
    assert!(
        f.contains(&("EX102".into(), "etc/exim4/exim4.conf".into(), 1)),
        "{f:?}"
    );
}

#[test]
fn never_panics_on_odd_input() {
    let odd = [
        "\\\n\\\n",
        ".ifdef\n.endif\n.endif\n.else\n",
        "begin acl\n:\n!\n= x\naccept !\n",
        "A==\n==\nA = \\\n",
        "begin routers\nx:\n driver\nbegin transports\n  = \nbegin nonsense\n",
        "hostlist h = <\nhostlist g = <;\ndomainlist d = ::::\nacl_smtp_rcpt = a\nbegin acl\na:\n accept hosts = +h : +g : +nope\n domains = +d\n",
        "\u{feff}acl_smtp_rcpt = é\nbegin acl\né:\n  accept\n",
    ];
    for t in odd {
        let d = tree(&[("etc/exim/exim.conf", t)]);
        findings(d.path(), &[]);
        simulate(
            d.path(),
            &["--client", "192.0.2.1", "--rcpt", "a@b.example"],
        );
    }
}

#[test]
fn typo_in_acl_smtp_rcpt_is_fixed_safely() {
    let bad = std::fs::read_to_string(base().join("fixtures/rules/EX102/bad/etc/exim/exim.conf"))
        .unwrap();
    let d = tree(&[("etc/exim/exim.conf", bad.as_str())]);
    let r = d.path().to_string_lossy().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
        .args(["lint", "--root", r.as_str(), "--fix"])
        .output()
        .unwrap();
    assert!(out.status.code().is_some(), "{out:?}");
    let fixed = std::fs::read_to_string(d.path().join("etc/exim/exim.conf")).unwrap();
    assert!(
        fixed.contains("acl_smtp_rcpt = acl_check_rcpt\n"),
        "{fixed}"
    );
    // Only that span changed.
    assert_eq!(
        fixed.replace("acl_check_rcpt\n", "acl_check_rcp\n").len(),
        bad.len()
    );
    assert!(!findings(d.path(), &[]).iter().any(|f| f.0 == "EX102"));
}
