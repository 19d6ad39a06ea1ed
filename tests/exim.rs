//! Exim through the CLI: the Debian demo server (seed case: a sender callout in the RCPT ACL,
//! reached through a macro-named include), cPanel host files, --define, includes, templates.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{findings, simulate};

fn base() -> PathBuf {
    common::repo("")
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
    // TLS guard of Debian's example authenticators: reported at the macro, where the admin
    // set it (edits to the managed auth file are lost on upgrade).
    assert!(f.contains(&(
        "EX130".into(),
        "etc/exim4/conf.d/main/000_localmacros".into(),
        4
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
    let d = &v[0];
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
    let d = &v[0];
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
    assert_eq!(v[0]["result"], "accept");
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
    assert_eq!(v[0]["result"], "accept");
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
    // The wide host files (EX111) explain `accept hosts = +relay_hosts`: no second finding.
    assert!(
        !f.contains(&("EX110".into(), "etc/exim.conf".into(), 14)),
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

#[test]
fn undecidable_steps_make_depends_or_say_either_way() {
    // bambocher/docker-exim-relay: relay_from_hosts comes from the environment.
    let either = tree(&[(
        "etc/exim/exim.conf",
        "hostlist relay_from_hosts = ${env{RELAY_FROM_HOSTS}{$value} fail}\n\
         acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  \
         accept hosts = +relay_from_hosts\n  accept\n",
    )]);
    let v = simulate(
        either.path(),
        &["--client", "203.0.113.5", "--rcpt", "u@gmail.com"],
    );
    let d = &v[0];
    assert_eq!(d["result"], "accept", "{v:?}");
    let trace = d["trace"].to_string();
    // The stranger's branch (not in the list), flagged as not mattering.
    assert!(
        trace.contains("taken as false (same result either way)"),
        "{trace}"
    );
    assert!(!trace.contains("assumed true"), "{trace}");

    let differs = tree(&[(
        "etc/exim/exim.conf",
        "hostlist relay_from_hosts = ${env{RELAY_FROM_HOSTS}{$value} fail}\n\
         acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  \
         accept hosts = +relay_from_hosts\n  deny message = relay not permitted\n",
    )]);
    let v = simulate(
        differs.path(),
        &["--client", "203.0.113.5", "--rcpt", "u@gmail.com"],
    );
    let d = &v[0];
    assert_eq!(d["result"], "depends", "{v:?}");
    assert!(!d["depends_on"].as_array().unwrap().is_empty(), "{v:?}");

    // simulate knows the HELO name it was given.
    let helo = tree(&[(
        "etc/exim/exim.conf",
        "acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  \
         deny condition = ${if !def:sender_helo_name}\n       message = say helo\n  accept\n",
    )]);
    let v = simulate(
        helo.path(),
        &[
            "--client",
            "203.0.113.5",
            "--rcpt",
            "u@gmail.com",
            "--helo",
            "mx.example.net",
        ],
    );
    assert_eq!(v[0]["result"], "accept", "{v:?}");
    // Without --helo: Exim >= 4.95 requires HELO before MAIL from every host by default
    // (hosts_require_helo = *; `exim -bh` 4.96 answers `503 HELO or EHLO required`), so a
    // client that reaches RCPT has said HELO (issue #16 item 6). Before 4.95, or with an
    // empty hosts_require_helo, the HELO name is open.
    let v = simulate(
        helo.path(),
        &["--client", "203.0.113.5", "--rcpt", "u@gmail.com"],
    );
    assert_eq!(v[0]["result"], "accept", "{v:?}");
    assert!(
        format!("{v:?}").contains("hosts_require_helo is * by default since Exim 4.95"),
        "{v:?}"
    );
    let v = simulate(
        helo.path(),
        &[
            "--client",
            "203.0.113.5",
            "--rcpt",
            "u@gmail.com",
            "--exim-version",
            "4.94",
        ],
    );
    assert_eq!(v[0]["result"], "depends", "{v:?}");
    let no_req = tree(&[(
        "etc/exim/exim.conf",
        "hosts_require_helo =\nacl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  \
         deny condition = ${if !def:sender_helo_name}\n       message = say helo\n  accept\n",
    )]);
    let v = simulate(
        no_req.path(),
        &["--client", "203.0.113.5", "--rcpt", "u@gmail.com"],
    );
    assert_eq!(v[0]["result"], "depends", "{v:?}");
}

#[test]
fn callouts_are_reported_only_where_their_failure_refuses_mail() {
    // twisted-infra/sandbox greylisting: a positive recipient callout with defer_ok inside
    // deny/defer, limited to the admin's own domains; then a require callout without
    // defer_ok (refuses) and a deny !verify with use_sender on any domain (refuses, probes).
    let t = tree(&[(
        "etc/exim/exim.conf",
        "domainlist local_domains = example.org\ndomainlist relay_to_domains =\n\
         acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  \
         defer   !senders = :\n          domains = +local_domains : +relay_to_domains\n          \
         verify = recipient/callout=20s,use_sender,defer_ok\n          \
         condition = ${readsocket{/var/run/greylistd/socket}{--grey}{5s}{}{false}}\n  \
         deny    !senders = :\n          verify = recipient/callout=20s,use_sender,defer_ok\n          \
         condition = ${readsocket{/var/run/greylistd/socket}{--black}{5s}{}{false}}\n  \
         require verify = sender/callout=20s\n  \
         deny    !verify = recipient/callout=20s,use_sender\n  \
         accept  domains = +local_domains\n",
    )]);
    let f = findings(t.path(), &[]);
    let at = |line: u64| -> Vec<&str> {
        f.iter()
            .filter(|x| x.2 == line && x.0.starts_with("EX14"))
            .map(|x| x.0.as_str())
            .collect()
    };
    assert!(at(8).is_empty(), "{f:?}");
    // Positive in deny with defer_ok: no refusal; but use_sender on any domain still probes.
    assert_eq!(at(11), vec!["EX142"], "{f:?}");
    assert_eq!(at(13), vec!["EX140"], "{f:?}");
    // Refuses and probes: one finding on the line.
    assert_eq!(at(14), vec!["EX141"], "{f:?}");
}

fn lint_json(root: &Path) -> Vec<serde_json::Value> {
    let r = root.to_string_lossy().to_string();
    let v = common::run_ok(&["lint", "--root", r.as_str(), "--format", "json"]).json();
    v["findings"].as_array().cloned().unwrap_or_default()
}

#[test]
fn tls_behind_an_undefined_macro_is_reported_as_depending_on_it() {
    // rixed/exim4-config: tls_certificate under .ifdef MAIN_TLS_ENABLE, a macro Debian
    // defines in exim4.conf.localmacros, which the snapshot lacks.
    let t = tree(&[(
        "etc/exim/exim.conf",
        ".ifdef MAIN_TLS_ENABLE\n.ifdef MAIN_TLS_CERTKEY\ntls_certificate = MAIN_TLS_CERTKEY\n.else\n\
         tls_certificate = /etc/exim4/exim.crt\n.endif\n.endif\n\
         acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  accept authenticated = *\n\
         begin authenticators\nplain_server:\n  driver = plaintext\n  public_name = PLAIN\n  \
         server_condition = ${if eq{$auth2}{x}}\n  \
         server_advertise_condition = ${if eq{$tls_in_cipher}{}{no}{yes}}\n",
    )]);
    let f = lint_json(t.path());
    let ex123: Vec<_> = f.iter().filter(|x| x["code"] == "EX123").collect();
    assert_eq!(ex123.len(), 1, "{f:?}");
    assert_eq!(ex123[0]["severity"], "info", "{f:?}");
    assert!(
        ex123[0]["message"]
            .as_str()
            .unwrap()
            .contains("MAIN_TLS_ENABLE"),
        "{f:?}"
    );
}

#[test]
fn plaintext_auth_help_with_tls_off_says_enable_tls_first() {
    let t = tree(&[(
        "etc/exim/exim.conf",
        "tls_advertise_hosts =\nacl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  \
         accept authenticated = *\nbegin authenticators\nplain_server:\n  driver = plaintext\n  \
         public_name = PLAIN\n  server_condition = ${if eq{$auth2}{x}}\n",
    )]);
    let f = lint_json(t.path());
    let ex130: Vec<_> = f.iter().filter(|x| x["code"] == "EX130").collect();
    assert_eq!(ex130.len(), 1, "{f:?}");
    let help = ex130[0]["help"].as_str().unwrap_or("");
    assert!(help.contains("enable TLS first"), "{f:?}");
}

#[test]
fn wide_relay_hosts_give_one_finding_and_ex110_is_short() {
    let wide = tree(&[(
        "etc/exim/exim.conf",
        "hostlist relay_from_hosts = 0.0.0.0/0\nacl_smtp_rcpt = acl_check_rcpt\nbegin acl\n\
         acl_check_rcpt:\n  accept hosts = +relay_from_hosts\n  deny message = relay not permitted\n",
    )]);
    let f = lint_json(wide.path());
    let codes: Vec<_> = f.iter().map(|x| x["code"].as_str().unwrap_or("")).collect();
    assert!(codes.contains(&"EX111"), "{f:?}");
    assert!(!codes.contains(&"EX110"), "{f:?}");

    let open = tree(&[(
        "etc/exim/exim.conf",
        "acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  \
         deny hosts = 192.0.2.1\n  require verify = recipient\n  accept\n",
    )]);
    let f = lint_json(open.path());
    let ex110: Vec<_> = f.iter().filter(|x| x["code"] == "EX110").collect();
    assert_eq!(ex110.len(), 1, "{f:?}");
    let msg = ex110[0]["message"].as_str().unwrap_or("");
    assert!(!msg.contains("Trace"), "{msg}");
    assert!(msg.len() < 300, "{msg}");
    let help = ex110[0]["help"].as_str().unwrap_or("");
    assert!(help.contains("line 6: `accept` -> accept"), "{help}");
    // The step that did not match is not decisive.
    assert!(!help.contains("192.0.2.1"), "{help}");
}

#[test]
fn debian_without_update_exim4_conf_conf_gives_one_info_not_ex004_warnings() {
    let t = tempfile::tempdir().unwrap();
    let src = base().join("fixtures/demo/exim-server");
    let ok = Command::new("cp")
        .args([
            "-r",
            &format!("{}/.", src.display()),
            &t.path().display().to_string(),
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::remove_file(t.path().join("etc/exim4/update-exim4.conf.conf")).unwrap();
    let f = lint_json(t.path());
    let ex004: Vec<_> = f.iter().filter(|x| x["code"] == "EX004").collect();
    assert_eq!(ex004.len(), 1, "{ex004:?}");
    assert_eq!(ex004[0]["severity"], "info", "{ex004:?}");
    let msg = ex004[0]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("update-exim4.conf.conf") && msg.contains("MAIN_RELAY_NETS"),
        "{msg}"
    );
}

#[test]
fn auth_never_offered_is_info_on_inbound_and_warning_with_submission() {
    let conf = |extra: &str| {
        format!(
            "{extra}acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  \
             accept authenticated = *\n         control = submission\n  \
             deny message = relay not permitted\n"
        )
    };
    let sev = |extra: &str| {
        let t = tree(&[("etc/exim/exim.conf", &conf(extra))]);
        let f = lint_json(t.path());
        f.iter()
            .find(|x| x["code"] == "EX122")
            .map(|x| x["severity"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(sev("").as_deref(), Some("info"));
    assert_eq!(
        sev("daemon_smtp_ports = 25 : 587\n").as_deref(),
        Some("warning")
    );
}

#[test]
fn simulate_shows_each_acl_line_once() {
    let t = tree(&[(
        "etc/exim/exim.conf",
        "hostlist relay_from_hosts = 203.0.113.5\nacl_smtp_rcpt = acl_check_rcpt\nbegin acl\n\
         acl_check_rcpt:\n  accept hosts = +relay_from_hosts\n  deny\n",
    )]);
    let v = simulate(
        t.path(),
        &["--client", "203.0.113.5", "--rcpt", "u@gmail.com"],
    );
    let d = &v[0];
    assert_eq!(d["result"], "accept", "{v:?}");
    let lines: Vec<u64> = d["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["line"].as_u64().unwrap_or(0))
        .collect();
    let mut dedup = lines.clone();
    dedup.dedup();
    assert_eq!(lines, dedup, "{v:?}");
}

#[test]
fn debian_dc_relay_nets_everywhere_is_one_ex111() {
    let t = tempfile::tempdir().unwrap();
    let src = base().join("fixtures/demo/exim-server");
    let ok = Command::new("cp")
        .args([
            "-r",
            &format!("{}/.", src.display()),
            &t.path().display().to_string(),
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let ue = t.path().join("etc/exim4/update-exim4.conf.conf");
    let text = std::fs::read_to_string(&ue).unwrap();
    let text = text.replace("dc_relay_nets='10.20.0.0/16'", "dc_relay_nets='0.0.0.0/0'");
    std::fs::write(&ue, text).unwrap();
    let f = findings(t.path(), &[]);
    assert!(
        f.contains(&(
            "EX111".into(),
            "etc/exim4/update-exim4.conf.conf".into(),
            12
        )),
        "{f:?}"
    );
    assert!(!f.iter().any(|x| x.0 == "EX110"), "{f:?}");
}

#[test]
fn a_debian_template_on_its_own_gives_one_info_for_update_exim4_macros() {
    let t = tree(&[(
        "srv/exim4.conf.template",
        "domainlist local_domains = MAIN_LOCAL_DOMAINS\nhostlist relay_from_hosts = MAIN_RELAY_NETS\n\
         acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  accept hosts = +relay_from_hosts\n  \
         require domains = +local_domains\n  accept\n",
    )]);
    let p = t.path().join("srv/exim4.conf.template");
    let v = common::run_ok(&["lint", "--format", "json", &p.display().to_string()]).json();
    let ex004: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["code"] == "EX004")
        .collect();
    assert_eq!(ex004.len(), 1, "{v:?}");
    assert_eq!(ex004[0]["severity"], "info", "{v:?}");
}

fn trace_effects(d: &serde_json::Value) -> String {
    d["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} -> {}\n", s["entry"], s["effect"]))
        .collect()
}

#[test]
fn localhost_in_relay_from_hosts_is_decided_like_exim() {
    // configure.default: `hostlist relay_from_hosts = localhost`. Exim looks the name up
    // (/etc/hosts) and compares the addresses: `exim -bh 127.0.0.1` answers 250 Accepted.
    let conf = base().join("fixtures/exim/oracle/exim-configure-default");
    let v = simulate(
        &conf,
        &[
            "--client",
            "127.0.0.1",
            "--rcpt",
            "x@gmail.com",
            "--sender",
            "",
        ],
    );
    let d = &v[0];
    assert_eq!(d["result"], "accept", "{v:?}");
    assert!(trace_effects(d).contains("localhost"), "{v:?}");
    // Another address is not localhost: refused as Exim does (550 relay not permitted).
    let v = simulate(
        &conf,
        &[
            "--client",
            "127.0.0.2",
            "--rcpt",
            "x@gmail.com",
            "--sender",
            "",
            "--helo",
            "client.example",
        ],
    );
    assert_eq!(v[0]["result"], "reject", "{v:?}");
    // A snapshot's own /etc/hosts decides.
    let d = tree(&[
        (
            "etc/exim/exim.conf",
            "hostlist relay_from_hosts = localhost : mail.example.net\nacl_smtp_rcpt = r\nbegin acl\nr:\n  accept hosts = +relay_from_hosts\n  deny message = relay not permitted\n",
        ),
        ("etc/hosts", "127.0.0.1 localhost\n192.0.2.7 mail.example.net\n"),
    ]);
    for (ip, want) in [
        ("127.0.0.1", "accept"),
        ("::1", "reject"),
        ("192.0.2.7", "accept"),
        ("192.0.2.8", "reject"),
    ] {
        let v = simulate(d.path(), &["--client", ip, "--rcpt", "x@gmail.com"]);
        assert_eq!(v[0]["result"], want, "{ip}: {v:?}");
    }
}

#[test]
fn host_names_and_sender_verification_are_depends_not_silent_no_match() {
    // A name pattern needs the client's reverse DNS name, which the static model does not
    // have: the result depends on it, and says so.
    let d = tree(&[(
        "etc/exim/exim.conf",
        "acl_smtp_rcpt = r\nbegin acl\nr:\n  accept hosts = *.partner.example\n  deny message = relay not permitted\n",
    )]);
    let v = simulate(
        d.path(),
        &["--client", "198.51.100.1", "--rcpt", "x@gmail.com"],
    );
    let dec = &v[0];
    assert_eq!(dec["result"], "depends", "{v:?}");
    assert!(
        dec["depends_on"].to_string().contains("*.partner.example"),
        "{v:?}"
    );
    // With the name given (--client-name, as exim -bh -oMs sets it), the pattern decides.
    for (name, want) in [
        ("mx1.partner.example", "accept"),
        ("evil.example", "reject"),
    ] {
        let v = simulate(
            d.path(),
            &[
                "--client",
                "198.51.100.1",
                "--client-name",
                name,
                "--rcpt",
                "x@gmail.com",
            ],
        );
        assert_eq!(v[0]["result"], want, "{name}: {v:?}");
    }
    // A plain name not in /etc/hosts is a DNS lookup.
    let d = tree(&[
        (
            "etc/exim/exim.conf",
            "acl_smtp_rcpt = r\nbegin acl\nr:\n  accept hosts = relay.partner.example\n  deny message = relay not permitted\n",
        ),
        ("etc/hosts", "127.0.0.1 localhost\n"),
    ]);
    let v = simulate(
        d.path(),
        &["--client", "198.51.100.1", "--rcpt", "x@gmail.com"],
    );
    assert_eq!(v[0]["result"], "depends", "{v:?}");
    assert!(
        v[0]["depends_on"]
            .to_string()
            .contains("relay.partner.example"),
        "{v:?}"
    );

    // configure.default without --sender: verify = sender decides between `250 Accepted`
    // (the sender verifies) and `550 Sender verify failed` (real Exim's text), so the
    // result depends on it; the trace must not call it "the same either way".
    let conf = base().join("fixtures/exim/oracle/exim-configure-default");
    let v = simulate(&conf, &["--client", "127.0.0.1", "--rcpt", "x@gmail.com"]);
    let dec = &v[0];
    assert_eq!(dec["result"], "depends", "{v:?}");
    assert!(
        dec["depends_on"].to_string().contains("verify = sender"),
        "{v:?}"
    );
    assert!(
        dec["text"].to_string().contains("Sender verify failed"),
        "{v:?}"
    );
    assert!(
        !trace_effects(dec).contains("same result either way"),
        "{v:?}"
    );
    // A stranger is refused either way, but the reply text depends on the verification.
    let v = simulate(
        &conf,
        &[
            "--client",
            "198.51.100.1",
            "--rcpt",
            "x@gmail.com",
            "--helo",
            "client.example",
        ],
    );
    let dec = &v[0];
    assert_eq!(dec["result"], "reject", "{v:?}");
    let t = trace_effects(dec);
    assert!(!t.contains("same result either way"), "{t}");
    assert!(t.contains("the reply text depends on it"), "{t}");
}

#[test]
fn sasl_user_without_a_server_authenticator_stays_unauthenticated() {
    // configure.default has no authenticators: EHLO offers no AUTH (EX122), so --sasl-user
    // cannot make the client authenticated.
    let conf = base().join("fixtures/exim/oracle/exim-configure-default");
    let v = simulate(
        &conf,
        &[
            "--client",
            "198.51.100.1",
            "--sasl-user",
            "bob",
            "--rcpt",
            "x@gmail.com",
            "--sender",
            "",
            "--helo",
            "client.example",
        ],
    );
    let d = &v[0];
    assert_eq!(d["result"], "reject", "{v:?}");
    assert_eq!(d["text"], "relay not permitted", "{v:?}");
    let first = &d["trace"][0];
    assert!(
        first["effect"].as_str().unwrap().contains("offers no AUTH"),
        "{v:?}"
    );
    // With an authenticator, the same user relays.
    let demo = base().join("fixtures/demo/exim-server");
    let v = simulate(
        &demo,
        &[
            "--client",
            "198.51.100.1",
            "--sasl-user",
            "bob",
            "--rcpt",
            "x@gmail.com",
        ],
    );
    assert_eq!(v[0]["result"], "accept", "{v:?}");
    assert!(!format!("{v:?}").contains("offers no AUTH"), "{v:?}");
}

#[test]
fn ex140_severity_agrees_with_the_catalogue() {
    let demo = base().join("fixtures/demo/exim-server");
    let f = lint_json(&demo);
    let ex140: Vec<_> = f.iter().filter(|x| x["code"] == "EX140").collect();
    assert!(!ex140.is_empty(), "{f:?}");
    let cat = common::run_ok(&["rules", "EX140", "--format", "json"]).json();
    let cat = if cat.is_array() { cat[0].clone() } else { cat };
    for x in ex140 {
        // No defer_ok: the catalogue's severity.
        assert_eq!(x["severity"], cat["severity"], "{x} vs {cat}");
    }
    assert!(
        cat["explanation"]
            .as_str()
            .unwrap_or("")
            .contains("defer_ok"),
        "{cat}"
    );
}

#[test]
fn ex130_points_at_the_macro_that_removes_the_tls_guard() {
    let demo = base().join("fixtures/demo/exim-server");
    let f = lint_json(&demo);
    let ex130: Vec<_> = f.iter().filter(|x| x["code"] == "EX130").collect();
    assert_eq!(ex130.len(), 1, "{ex130:?}");
    let x = ex130[0];
    assert_eq!(x["file"], "etc/exim4/conf.d/main/000_localmacros", "{x}");
    assert_eq!(x["line"], 4, "{x}");
    let msg = x["message"].as_str().unwrap();
    // The managed file stays in the message as context, for both authenticators.
    assert!(
        msg.contains("etc/exim4/conf.d/auth/30_exim4-config_examples:"),
        "{msg}"
    );
    assert!(
        msg.contains("plain_server") && msg.contains("login_server"),
        "{msg}"
    );
}

#[test]
fn ex151_fix_drops_the_zone_ex150_calls_dead() {
    let demo = base().join("fixtures/demo/exim-server");
    let f = lint_json(&demo);
    let x = f
        .iter()
        .find(|x| x["code"] == "EX151")
        .expect("EX151 in the demo");
    let edit = &x["fix"]["edits"][0];
    let r = edit["replacement"].as_str().unwrap();
    assert!(r.starts_with("zen.spamhaus.org=127.0.0.2"), "{r}");
    assert!(!r.contains("sorbs"), "{r}");
    let dead: Vec<_> = f
        .iter()
        .filter(|x| x["code"] == "EX150")
        .map(|x| x["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        dead.iter().any(|m| m.contains("dnsbl.sorbs.net")),
        "{dead:?}"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(from).unwrap();
        let dst = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn set_mtime(p: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn debian_config_autogenerated_is_linted_and_reported_when_stale() {
    // The generated file matches its inputs (built by Debian's update-exim4.conf).
    let good = base().join("fixtures/rules/EX170/good");
    let d = tempfile::tempdir().unwrap();
    copy_tree(&good, d.path());
    let gen = d.path().join("var/lib/exim4/config.autogenerated");
    let input = d
        .path()
        .join("etc/exim4/conf.d/main/02_exim4-config_options");
    let inputs: Vec<PathBuf> = walkdir::WalkDir::new(d.path().join("etc/exim4"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    for p in &inputs {
        set_mtime(p, 1_700_000_000);
    }
    set_mtime(&gen, 1_700_000_000);
    let f = findings(d.path(), &[]);
    assert!(!f.iter().any(|x| x.0 == "EX170"), "{f:?}");
    // Same second (sub-second differences do not count), then one input edited later.
    set_mtime(&input, 1_700_003_600);
    let all = lint_json(d.path());
    let x = all
        .iter()
        .find(|x| x["code"] == "EX170")
        .unwrap_or_else(|| panic!("{all:?}"));
    assert_eq!(x["file"], "var/lib/exim4/config.autogenerated", "{x}");
    assert!(
        x["message"]
            .as_str()
            .unwrap()
            .contains("conf.d/main/02_exim4-config_options"),
        "{x}"
    );
    assert!(
        x["help"].as_str().unwrap().contains("update-exim4.conf"),
        "{x}"
    );
    // An /etc/exim4/exim4.conf comes first: the generated file is not what runs.
    std::fs::copy(&gen, d.path().join("etc/exim4/exim4.conf")).unwrap();
    let f = findings(d.path(), &[]);
    assert!(!f.iter().any(|x| x.0 == "EX170"), "{f:?}");

    // The review's case: an open relay in the live generated file, conf.d sane.
    let d = tempfile::tempdir().unwrap();
    copy_tree(&good, d.path());
    std::fs::write(
        d.path().join("var/lib/exim4/config.autogenerated"),
        "acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  accept\n",
    )
    .unwrap();
    let f = findings(d.path(), &[]);
    assert!(
        f.contains(&(
            "EX110".into(),
            "var/lib/exim4/config.autogenerated".into(),
            4
        )),
        "{f:?}"
    );
    assert!(f.iter().any(|x| x.0 == "EX170"), "{f:?}");
    assert!(
        !f.iter()
            .any(|x| x.0 == "EX110" && x.1.starts_with("etc/exim4")),
        "{f:?}"
    );
}

/// EX161 follows the Exim version in use: nothing before 4.94 (taint checks of file names
/// arrived then), an error from 4.94, a warning on 4.95 with allow_insecure_tainted_data (it
/// only logs), and the version read from a snapshot's dpkg status when no flag says.
#[test]
fn taint_findings_follow_the_exim_version() {
    let bad = base().join("fixtures/exim/taint/bad");
    let n161 = |extra: &[&str]| {
        findings(&bad, extra)
            .iter()
            .filter(|f| f.0 == "EX161")
            .count()
    };
    assert_eq!(n161(&["--exim-version", "4.93"]), 0);
    assert_eq!(n161(&["--exim-version", "4.96"]), 5);
    assert_eq!(n161(&[]), 5, "unknown version: assume a current Exim");
    let bad_run = common::run(&[
        "lint",
        "--root",
        &bad.display().to_string(),
        "--exim-version",
        "5",
    ]);
    assert_eq!(bad_run.code, 2, "{}", bad_run.stderr);

    let conf = std::fs::read_to_string(bad.join("etc/exim/exim.conf")).unwrap();
    let insecure = conf.replace(
        "auth_advertise_hosts = *",
        "auth_advertise_hosts = *\nallow_insecure_tainted_data = yes",
    );
    let t = common::tree(&[
        ("etc/exim/exim.conf", insecure.as_str()),
        (
            "var/lib/dpkg/status",
            "Package: exim4-daemon-light\nStatus: install ok installed\nVersion: 4.95-4\n\n",
        ),
    ]);
    let fs = common::lint_json(t.path(), &[]);
    let ex161 = common::with_code(&fs, "EX161");
    assert_eq!(ex161.len(), 5);
    assert!(
        ex161.iter().all(|f| f["severity"] == "warning"),
        "{ex161:?}"
    );
    assert!(
        ex161[0]["message"]
            .as_str()
            .unwrap()
            .contains("4.95 (package exim4-daemon-light 4.95-4 in var/lib/dpkg/status)"),
        "{ex161:?}"
    );
    assert!(
        common::with_code(&fs, "EX160").is_empty(),
        "4.95 has the option"
    );
    let fs = common::lint_json(t.path(), &["--exim-version", "4.96"]);
    assert_eq!(common::with_code(&fs, "EX160").len(), 1);
    assert!(common::with_code(&fs, "EX161")
        .iter()
        .all(|f| f["severity"] == "error"));
}

/// #21 items 4 and 5: one advertising model. EX130 only for an authenticator that is offered
/// in clear; with no tls_* options a current Exim still offers STARTTLS (self-signed
/// certificate, ChangeLog 4.88), so AUTH over TLS only is a warning, and an error where TLS
/// cannot start (tls_advertise_hosts empty, or Exim 4.87 without a certificate).
#[test]
fn auth_and_tls_advertising_follow_one_model() {
    let conf = |main: &str, cond: &str| {
        format!("primary_hostname = mx.example.org\ndomainlist local_domains = example.org\nacl_smtp_rcpt = acl_check_rcpt\n{main}\nbegin acl\nacl_check_rcpt:\n  accept authenticated = *\n  require message = relay not permitted\n          domains = +local_domains\n  accept\nbegin authenticators\nplain:\n  driver = plaintext\n  public_name = PLAIN\n  server_prompts = :\n  server_condition = ${{if eq{{$auth3}}{{secret}}}}\n{cond}\n")
    };
    let lint = |main: &str, cond: &str, extra: &[&str]| {
        let t = common::tree(&[("etc/exim/exim.conf", conf(main, cond).as_str())]);
        common::lint_json(t.path(), extra)
            .iter()
            .filter(|f| matches!(f["code"].as_str(), Some("EX122" | "EX123" | "EX130")))
            .map(|f| {
                format!(
                    "{} {}",
                    f["code"].as_str().unwrap(),
                    f["severity"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    let tls_only = "  server_advertise_condition = ${if def:tls_in_cipher}";
    assert_eq!(lint("", tls_only, &[]), ["EX123 warning"]);
    assert_eq!(
        lint("", tls_only, &["--exim-version", "4.87"]),
        ["EX123 error"]
    );
    assert_eq!(
        lint("tls_advertise_hosts =", tls_only, &[]),
        ["EX123 error"]
    );
    assert!(lint("tls_certificate = /etc/exim/c.pem", tls_only, &[]).is_empty());
    // Never offered: EX122 says so, and EX130 does not claim it is offered in clear.
    let never = "  server_advertise_condition = no";
    assert_eq!(lint("", never, &[]), ["EX122 error"]);
    assert_eq!(lint("auth_advertise_hosts =", "", &[]), ["EX122 error"]);
    assert_eq!(lint("", "", &[]), ["EX130 warning"]);
}

/// Issue #16 items 6 and 8: branches that end alike and differ in one undecidable condition
/// are one outcome, and a `<;` list in an expression does not split the text output's bullets.
#[test]
fn depends_outcomes_collapse_and_semicolon_lists_stay_whole() {
    let t = tree(&[(
        "etc/exim/exim.conf",
        "hostlist relay_from_hosts = <; ${env{RELAY_FROM_HOSTS}{$value}{}}\n\
         domainlist local_domains = ${env{LOCAL_DOMAINS}{$value}{@}}\n\
         acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n\
         \x20 accept domains = +local_domains\n\
         \x20        hosts = +relay_from_hosts\n\
         \x20 accept hosts = +relay_from_hosts\n\
         \x20 deny message = relay not permitted\n",
    )]);
    let root = t.path().to_string_lossy().into_owned();
    let args = [
        "simulate",
        "--root",
        root.as_str(),
        "--client",
        "203.0.113.9",
        "--rcpt",
        "u@remote.example",
    ];
    let json = simulate(t.path(), &args[3..]);
    let text = json[0]["text"].as_str().unwrap();
    // accept if relay_from_hosts (whatever local_domains says); reject otherwise.
    assert_eq!(json[0]["result"], "depends", "{json:?}");
    assert_eq!(text.matches("accept 250").count(), 1, "{text}");
    assert!(
        !json[0]["depends_on"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str().unwrap().contains("LOCAL_DOMAINS")),
        "local_domains does not change the answer: {json:?}"
    );
    let out = common::run_ok(&args).stdout;
    let bullets: Vec<&str> = out.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(bullets.len(), 2, "{out}");
    assert!(
        bullets
            .iter()
            .all(|b| b.starts_with("  - accept") || b.starts_with("  - reject")),
        "{out}"
    );
    assert!(
        bullets[0].contains("`<; ${env{RELAY_FROM_HOSTS}{$value}{}}`"),
        "{out}"
    );
}

/// Issue #16 item 1: AUTH through an authenticator that reads a file named by tainted data
/// always fails on Exim >= 4.94 (435; the oracle test of EX161 checks that answer with
/// `exim -bh`), so simulate has no authenticated branch there; on 4.93 the login works.
#[test]
fn a_taint_broken_authenticator_gives_no_authenticated_branch() {
    let conf = "primary_hostname = mx.example.org\ndomainlist local_domains = example.org\n\
        acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  accept authenticated = *\n\
        \x20 require message = relay not permitted\n          domains = +local_domains\n  accept\n\
        begin authenticators\nplain_server:\n  driver = plaintext\n  public_name = PLAIN\n\
        \x20 server_prompts = :\n  server_condition = ${if eq{$auth3}{${readfile{/etc/exim/pw/$auth2}}}}\n";
    let t = tree(&[("etc/exim/exim.conf", conf)]);
    let ask = |version: &str| {
        simulate(
            t.path(),
            &[
                "--client",
                "198.51.100.1",
                "--sasl-user",
                "bob",
                "--rcpt",
                "x@gmail.com",
                "--helo",
                "client.example",
                "--exim-version",
                version,
            ],
        )
    };
    let v = ask("4.96");
    assert_eq!(v[0]["result"], "reject", "{v:?}");
    let effect = v[0]["trace"][0]["effect"].as_str().unwrap();
    assert!(effect.contains("AUTH cannot succeed here"), "{v:?}");
    assert!(effect.contains("435"), "{v:?}");
    let v = ask("4.93");
    assert_eq!(v[0]["result"], "accept", "{v:?}");
}

/// Issue #16 item 7: a recipient callout limited to the relay domains that a manualroute
/// router sends to the site's own backend is the mail-gateway pattern: a warning that names
/// the router, with no defer_ok fix. Without such a router it stays an error with the fix.
#[test]
fn a_gateway_recipient_callout_to_its_own_backend_is_a_warning() {
    let acl = "domainlist relay_to_domains = corp.example\nacl_smtp_rcpt = acl_check_rcpt\n\
        begin acl\nacl_check_rcpt:\n  deny domains = +relay_to_domains\n       \
        !verify = recipient/callout=30s\n  accept\n";
    let gateway = format!(
        "{acl}begin routers\nto_backend:\n  driver = manualroute\n  domains = +relay_to_domains\n  \
         route_list = * 10.0.0.25\n  transport = remote_smtp\nbegin transports\nremote_smtp:\n  driver = smtp\n"
    );
    let t = tree(&[("etc/exim/exim.conf", &gateway)]);
    let fs = lint_json(t.path());
    let ex141: Vec<_> = fs.iter().filter(|f| f["code"] == "EX141").collect();
    assert_eq!(ex141.len(), 1, "{fs:#?}");
    assert_eq!(ex141[0]["severity"], "warning", "{fs:#?}");
    assert!(ex141[0]["message"]
        .as_str()
        .unwrap()
        .contains("router to_backend"));
    assert!(
        ex141[0]["fix"].is_null(),
        "no defer_ok on a gateway: {fs:#?}"
    );
    assert!(ex141[0]["help"]
        .as_str()
        .unwrap()
        .contains("don't add defer_ok"));
    // The same callout without a backend router: the recipient's own MX is called.
    let t = tree(&[("etc/exim/exim.conf", acl)]);
    let fs = lint_json(t.path());
    let ex141: Vec<_> = fs.iter().filter(|f| f["code"] == "EX141").collect();
    assert_eq!(ex141.len(), 1, "{fs:#?}");
    assert_eq!(ex141[0]["severity"], "error", "{fs:#?}");
}

/// Issue #16 item 5: a finding about one item of a list continued over `\` lines points at
/// that item's line, not at the line the condition starts on.
#[test]
fn a_continued_dnslists_item_is_reported_on_its_own_line() {
    let conf = "acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n\
        \x20 deny dnslists = zen.spamhaus.org=127.0.0.2 : \\\n\
        \x20                 dnsbl.sorbs.net : \\\n\
        \x20                 sbl.spamhaus.org\n\
        \x20 accept\n";
    let t = tree(&[("etc/exim/exim.conf", conf)]);
    let fs = lint_json(t.path());
    let at = |code: &str| -> Vec<(u64, u64)> {
        fs.iter()
            .filter(|f| f["code"] == code)
            .map(|f| (f["line"].as_u64().unwrap(), f["column"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(at("EX150"), [(5, 19)], "{fs:#?}");
    assert_eq!(at("EX151"), [(6, 19)], "{fs:#?}");
}

/// Issue #16 item 3: cPanel's template (exim.conf.dist). Its `@NAME@` and `%BEGINNAME%`
/// marker lines (Cpanel/Exim/Config.pm build_exim_conf_from_loaded_cfg) give EX001 once and
/// nothing else; an ACL the markers may inject is not missing; simulate depends on the
/// inserted blocks. A fragment named directly is said to be one; a generated /etc/exim.conf
/// older than /etc/exim.conf.local is EX170.
#[test]
fn cpanel_templates_fragments_and_a_stale_generated_file() {
    let template = "@CONFIG@\n\nprimary_hostname = mx.example.org\nacl_smtp_rcpt = acl_smtp_rcpt\n\
        acl_smtp_data = acl_smtp_data\n\nbegin acl\n\n%BEGINACL%\nacl_smtp_rcpt:\n  accept\n%ENDACL%\n\n\
        @ACL@\n\nbegin routers\n\n@PREROUTERS@\n\nlookuphost:\n  driver = dnslookup\n  transport = remote_smtp\n\n\
        begin transports\n\nremote_smtp:\n  driver = smtp\n\n@RETRYSTART@\nbegin retry\n* * F,2h,15m\n@RETRYEND@\n";
    let t = tree(&[
        ("etc/exim.conf.dist", template),
        ("etc/config_options", "smtputf8_advertise_hosts\n"),
    ]);
    let dist = t.path().join("etc/exim.conf.dist");
    let v = common::run(&["lint", "--format", "json", dist.to_str().unwrap()]).json();
    let fs = v["findings"].as_array().unwrap();
    let codes: Vec<&str> = fs.iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "EX001").count(),
        1,
        "{fs:#?}"
    );
    assert!(
        !codes.contains(&"EX002") && !codes.contains(&"EX102"),
        "{fs:#?}"
    );
    let v = common::run(&[
        "simulate",
        "--format",
        "json",
        dist.to_str().unwrap(),
        "--client",
        "203.0.113.9",
        "--rcpt",
        "u@remote.example",
        "--helo",
        "client.example",
    ])
    .json();
    let d = &v["decisions"][0];
    assert_eq!(d["result"], "depends", "{v:#?}");
    assert!(
        format!("{}", d["depends_on"]).contains("buildeximconf"),
        "{v:#?}"
    );
    assert!(
        d["text"].as_str().unwrap().starts_with("accept 250"),
        "{v:#?}"
    );
    // A fragment is not a configuration.
    let frag = t.path().join("etc/config_options");
    let run = common::run(&["lint", frag.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("a fragment of cPanel's Exim configuration"),
        "{}",
        run.stderr
    );
    // A cPanel server whose /etc/exim.conf.local changed after /etc/exim.conf was built.
    let conf = "primary_hostname = mx.example.org\nacl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  require message = relay not permitted\n          domains = example.org\n  accept\n";
    let t = tree(&[
        ("etc/exim.conf", conf),
        ("etc/exim.conf.local", "@CONFIG@\n"),
        ("usr/local/cpanel/version", "11.120\n"),
    ]);
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(t.path().join("etc/exim.conf"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let fs = lint_json(t.path());
    let ex170: Vec<_> = fs.iter().filter(|f| f["code"] == "EX170").collect();
    assert_eq!(ex170.len(), 1, "{fs:#?}");
    assert!(ex170[0]["message"]
        .as_str()
        .unwrap()
        .contains("/etc/exim.conf.local"));
    assert!(ex170[0]["help"]
        .as_str()
        .unwrap()
        .contains("/scripts/buildeximconf"));
    // Built after its inputs: quiet.
    std::fs::File::options()
        .write(true)
        .open(t.path().join("etc/exim.conf"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    assert!(!lint_json(t.path()).iter().any(|f| f["code"] == "EX170"));
}

/// Review 7 F11: one conf.d fragment given to lint is reported as a fragment, naming the
/// directory to lint, instead of errors about the wrong section; the tree itself is not.
#[test]
fn a_lone_debian_fragment_names_the_directory_to_lint() {
    let tree = common::repo("fixtures/exim/oracle/debian-split-rul-misordered");
    let confd = tree.join("etc/exim4/conf.d");
    for (section, file) in [
        ("transport", "30_exim4-config_remote_smtp"),
        ("auth", "30_exim4-config_examples"),
        ("retry", "30_exim4-config"),
        ("rewrite", "31_exim4-config_rewriting"),
        ("main", "02_exim4-config_options"),
    ] {
        let path = confd.join(section).join(file);
        let run = common::run(&["lint", "--format", "json", &path.to_string_lossy()]);
        let fs = run.json()["findings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let codes: Vec<&str> = fs.iter().filter_map(|f| f["code"].as_str()).collect();
        assert_eq!(codes, ["EX005"], "{section}/{file}: {}", run.stdout);
        let msg = fs[0]["message"].as_str().unwrap_or("");
        assert!(msg.contains(&format!("(conf.d/{section})")), "{msg}");
        assert!(
            msg.contains(&format!("lint {}", confd.parent().unwrap().display())),
            "{msg}"
        );
    }
    // A copy of conf.d under another name (as in collections of configurations): the
    // directory to lint is the copy itself.
    let copy = common::copy_tree(&confd);
    let renamed = copy.path().join("debian-exim4-conf.d");
    std::fs::create_dir(&renamed).unwrap();
    for s in [
        "main",
        "acl",
        "router",
        "transport",
        "auth",
        "retry",
        "rewrite",
    ] {
        std::fs::rename(copy.path().join(s), renamed.join(s)).unwrap();
    }
    let path = renamed.join("transport/30_exim4-config_remote_smtp");
    let run = common::run(&["lint", "--format", "json", &path.to_string_lossy()]);
    let fs = run.json()["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(fs.len(), 1, "{}", run.stdout);
    let msg = fs[0]["message"].as_str().unwrap_or("");
    assert!(
        msg.ends_with(&format!("lint {} instead", renamed.display())),
        "{msg}"
    );
    // A header with its own `begin` line is read as a configuration, and the whole tree is
    // linted as Debian builds it: no EX005.
    let whole = findings(&tree, &[]);
    assert!(whole.iter().all(|(c, _, _)| c != "EX005"), "{whole:?}");
}
