//! Relay rules that fixtures/rules/<CODE>/ covers only with one variant: each further cause
//! of an open relay (PF101) is checked here, triggering and not triggering.

use std::process::Command;

mod common;

const MASTER: &str =
    "smtp inet n - y - - smtpd\nsubmission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n";

fn pf101_count(main: &str) -> usize {
    let t = common::postfix_tree(main, Some(MASTER));
    common::with_code(&common::lint_json(t.path(), &[]), "PF101").len()
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

// ------------------------------------------------------------------ further relay causes

mod smtpd_support;

use relaydoctor::relay::Verdict;
use smtpd_support::Scenario;

/// Whether the private Postfix instances' log shows `want` (within about six seconds).
fn postfix_logged(want: &str) -> bool {
    for _ in 0..30 {
        let log =
            std::fs::read_to_string("/var/log/relaydoctor-smtpd-test.log").unwrap_or_default();
        if log.contains(want) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    false
}

/// Findings (JSON objects) of `lint --root` over a snapshot with this main.cf and, if given,
/// master.cf.
fn lint(main: &str, master: Option<&str>) -> Vec<serde_json::Value> {
    lint_with(main, master, &[])
}

/// `lint`, with extra files (name, content) in etc/postfix.
fn lint_with(main: &str, master: Option<&str>, files: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let mut all: Vec<(String, &str)> = vec![("etc/postfix/main.cf".into(), main)];
    all.extend(master.map(|m| ("etc/postfix/master.cf".into(), m)));
    all.extend(files.iter().map(|(n, t)| (format!("etc/postfix/{n}"), *t)));
    let all: Vec<(&str, &str)> = all.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let t = common::tree(&all);
    common::lint_json(t.path(), &[])
}

use common::with_code;

const SMTP: &str = "smtp inet n - n - - smtpd\n";
const BASE: &str = "compatibility_level = 3.6\nmydestination = example.com\n";

#[test]
fn relay_domains_matching_everything_is_an_open_relay() {
    let l = |rd: &str| lint(&format!("{BASE}relay_domains = {rd}\n"), Some(SMTP));
    let s = l("static:yes");
    let pf = with_code(&s, "PF101");
    assert_eq!(pf.len(), 1, "{s:?}");
    assert!(pf[0]["message"].as_str().unwrap().contains("static map"));
    assert_eq!(pf[0]["line"], 3);
    let c = l("com");
    assert_eq!(with_code(&c, "PF101").len(), 1, "{c:?}");
    assert_eq!(with_code(&l(".net"), "PF101").len(), 1);
    // Not wildcards or not public: `*` is a literal name for Postfix, lan is private, and
    // a bare `com` matches only com itself once relay_domains leaves parent matching.
    assert!(with_code(&l("*"), "PF101").is_empty());
    assert!(with_code(&l("lan"), "PF101").is_empty());
    assert!(with_code(&l("example.org"), "PF101").is_empty());
    let no_parent = lint(
        &format!(
            "{BASE}relay_domains = com\nparent_domain_matches_subdomains = smtpd_access_maps\n"
        ),
        Some(SMTP),
    );
    assert!(with_code(&no_parent, "PF101").is_empty(), "{no_parent:?}");
    // The relay list still refuses strangers for relay domains: no open relay.
    let guarded = lint(
        &format!("{BASE}relay_domains = static:yes\nsmtpd_relay_restrictions = permit_mynetworks, reject\n"),
        Some(SMTP),
    );
    assert!(with_code(&guarded, "PF101").is_empty(), "{guarded:?}");
}

#[test]
fn reinjection_port_beyond_loopback() {
    let svc = |name: &str| {
        format!("{SMTP}{name} inet n - n - - smtpd\n  -o content_filter=\n  -o smtpd_recipient_restrictions=permit_mynetworks,reject\n  -o mynetworks=0.0.0.0/0\n")
    };
    for name in ["10025", "0.0.0.0:10025"] {
        let fs = lint(BASE, Some(&svc(name)));
        let pf = with_code(&fs, "PF101");
        assert_eq!(pf.len(), 1, "{name}: {fs:?}");
        let fix = &pf[0]["fix"];
        assert_eq!(fix["applicability"], "unsafe");
        assert_eq!(fix["edits"][0]["replacement"], "127.0.0.1:10025");
        assert!(pf[0]["message"]
            .as_str()
            .unwrap()
            .contains("reachable from the internet"));
    }
    // Bound to loopback: only local clients (the content filter) can connect.
    let fs = lint(BASE, Some(&svc("127.0.0.1:10025")));
    assert!(with_code(&fs, "PF101").is_empty(), "{fs:?}");
    // Permissive recipient list, but the relay list (main.cf default) still guards it.
    let fs = lint(
        BASE,
        Some(&format!(
            "{SMTP}10025 inet n - n - - smtpd\n  -o smtpd_recipient_restrictions=permit\n"
        )),
    );
    assert!(with_code(&fs, "PF101").is_empty(), "{fs:?}");
    let fs = lint(
        BASE,
        Some(&format!(
            "{SMTP}10025 inet n - n - - smtpd\n  -o smtpd_relay_restrictions=check_client_access,static:OK,reject_unauth_destination\n"
        )),
    );
    let pf = with_code(&fs, "PF101");
    assert_eq!(pf.len(), 1, "{fs:?}");
    assert_eq!(pf[0]["fix"]["edits"][0]["replacement"], "127.0.0.1:10025");
}

#[test]
fn dovecot_sasl_path() {
    let sub = |extra: &str, chroot: &str| {
        format!("{SMTP}submission inet n - {chroot} - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_tls_security_level=encrypt\n{extra}")
    };
    let main = format!("{BASE}smtpd_sasl_type = dovecot\n");
    // Default path `smtpd`: unsafe fix adds private/auth after smtpd_sasl_type.
    let fs = lint(&main, Some(&sub("", "n")));
    let pf = with_code(&fs, "PF102");
    assert_eq!(pf.len(), 1, "{fs:?}");
    let msg = pf[0]["message"].as_str().unwrap();
    assert!(msg.contains("left at its default `smtpd`"), "{msg}");
    assert!(msg.contains("no SASL authentication mechanisms"));
    assert_eq!(
        pf[0]["fix"]["edits"][0]["replacement"],
        "smtpd_sasl_path = private/auth\n"
    );
    assert!(with_code(
        &lint(
            &format!("{main}smtpd_sasl_path = private/auth\n"),
            Some(&sub("", "y"))
        ),
        "PF102"
    )
    .is_empty());
    // Absolute path: broken when chrooted (y, or `-` below level 1), fine with chroot n.
    let abs = format!("{main}smtpd_sasl_path = /var/run/dovecot/auth-client\n");
    let fs = lint(&abs, Some(&sub("", "y")));
    let pf = with_code(&fs, "PF102");
    assert_eq!(pf.len(), 1, "{fs:?}");
    assert!(pf[0]["message"]
        .as_str()
        .unwrap()
        .contains("/var/spool/postfix/var/run/dovecot/auth-client"));
    assert!(with_code(&lint(&abs, Some(&sub("", "n"))), "PF102").is_empty());
    assert!(with_code(&lint(&abs, Some(&sub("", "-"))), "PF102").is_empty());
    let old = abs.replace("compatibility_level = 3.6\n", "compatibility_level = 0\nsmtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n");
    assert_eq!(
        with_code(&lint(&old, Some(&sub("", "-"))), "PF102").len(),
        1
    );
    // An absolute path inside the queue directory: safe fix to the relative form.
    let inq = format!("{main}smtpd_sasl_path = /var/spool/postfix/private/auth\n");
    let fs = lint(&inq, Some(&sub("", "y")));
    let pf = with_code(&fs, "PF102");
    assert_eq!(pf.len(), 1, "{fs:?}");
    assert_eq!(pf[0]["fix"]["applicability"], "safe");
    assert_eq!(pf[0]["fix"]["edits"][0]["replacement"], "private/auth");
    // Not dovecot, or SASL off: nothing.
    assert!(with_code(&lint(BASE, Some(&sub("", "y"))), "PF102").is_empty());
}

#[test]
fn unset_compatibility_level_names_the_cause() {
    let fs = lint("mydestination = example.com\n", Some(SMTP));
    let pf = with_code(&fs, "PF103");
    assert_eq!(pf.len(), 1, "{fs:?}");
    assert!(pf[0]["message"]
        .as_str()
        .unwrap()
        .contains("compatibility_level is not set"));
    // The level Postfix 3.11 (assumed for a snapshot without a package record) ships with:
    // LAST_COMPAT_LEVEL in src/global/mail_params.h of v3.11.0.
    assert_eq!(
        pf[0]["fix"]["edits"][0]["replacement"],
        "compatibility_level = 3.11\n"
    );
    assert!(with_code(&lint(BASE, Some(SMTP)), "PF103").is_empty());
    // Two listeners, one cause in main.cf: the edit is offered once (applying the same
    // insertion twice would duplicate the line).
    let two = lint(
        "mydestination = example.com\n",
        Some(&format!("{SMTP}submission inet n - n - - smtpd\n")),
    );
    let pf = with_code(&two, "PF103");
    assert_eq!(pf.len(), 2, "{two:?}");
    assert_eq!(pf.iter().filter(|f| f.get("fix").is_some()).count(), 1);
    // Unset level, but an explicit relay list: not this cause (and no PF103 at all).
    assert!(with_code(
        &lint(
            "mydestination = example.com\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n",
            Some(SMTP)
        ),
        "PF103"
    )
    .is_empty());
}

#[test]
fn port25_refusing_strangers_for_own_domains() {
    let orphan = format!("{SMTP}#submission inet n - n - - smtpd\n  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n");
    let fs = lint(BASE, Some(&orphan));
    let pf = with_code(&fs, "PF110");
    assert_eq!(pf.len(), 1, "{fs:?}");
    let msg = pf[0]["message"].as_str().unwrap();
    assert!(msg.contains("554 5.7.1"), "{msg}");
    assert!(
        msg.contains("commented-out service header `submission inet`"),
        "{msg}"
    );
    assert_eq!(pf[0]["line"], 3);
    let commented = format!("{SMTP}#submission inet n - n - - smtpd\n#  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n");
    assert!(with_code(&lint(BASE, Some(&commented)), "PF110").is_empty());
    // A relay-only host (no hosted domains) may refuse strangers on port 25.
    let relay_only = "compatibility_level = 3.6\nmydestination = $myhostname, localhost\nsmtpd_client_restrictions = permit_mynetworks, reject\n";
    assert!(with_code(&lint(relay_only, Some(SMTP)), "PF110").is_empty());
    // Behind postscreen the smtpd pass service is the port-25 smtpd.
    let ps = "smtp inet n - n - 1 postscreen\nsmtpd pass - - n - - smtpd\n  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n";
    assert_eq!(with_code(&lint(BASE, Some(ps)), "PF110").len(), 1);
}

#[test]
fn domain_in_two_address_classes() {
    let fs = lint(
        &format!("{BASE}virtual_alias_domains = a.example b.example\nrelay_domains = c.example, b.example\n"),
        Some(SMTP),
    );
    let pf = with_code(&fs, "PF109");
    assert_eq!(pf.len(), 1, "{fs:?}");
    let msg = pf[0]["message"].as_str().unwrap();
    assert!(
        msg.contains(
            "do not list domain b.example in BOTH virtual_alias_domains and relay_domains"
        ),
        "{msg}"
    );
    assert_eq!(pf[0]["line"], 4);
    assert_eq!(pf[0]["fix"]["applicability"], "unsafe");
    let fs = lint(
        &format!("{BASE}virtual_mailbox_domains = example.com\n"),
        Some(SMTP),
    );
    assert_eq!(with_code(&fs, "PF109").len(), 1, "{fs:?}");
    // relay_domains = $mydestination is the old default, not a mistake.
    let fs = lint(
        &format!("{BASE}relay_domains = $mydestination\n"),
        Some(SMTP),
    );
    assert!(with_code(&fs, "PF109").is_empty(), "{fs:?}");
}

#[test]
fn main_cf_alone_is_checked_as_the_stock_smtp_service() {
    let fs = lint(
        &format!("{BASE}smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination, reject_rbl_client dnsbl.sorbs.net, reject_unverified_sender\n"),
        None,
    );
    assert_eq!(with_code(&fs, "PF106").len(), 1, "{fs:?}");
    let pf = with_code(&fs, "PF105");
    assert_eq!(pf.len(), 1, "{fs:?}");
    assert_eq!(pf[0]["service"], "smtp/inet");
}

#[test]
fn pf001_message_is_one_line() {
    let fs = lint("compatibility_level = 3.6\nfoo\tbar baz\n", Some(SMTP));
    let pf = with_code(&fs, "PF001");
    assert_eq!(pf.len(), 1, "{fs:?}");
    let msg = pf[0]["message"].as_str().unwrap();
    assert!(!msg.contains('\t') && !msg.contains('\n'), "{msg}");
    assert!(msg.contains("foo\\tbar"), "{msg}");
}

// ------------------------------------------------------------------ against the real smtpd

/// Reply class for a stranger (203.0.113.5, no login) sending to `rcpt` through a private
/// Postfix with this main.cf and one listener with these -o lines.
fn real(master: &std::path::Path, main: &str, listener: &str, rcpt: &str) -> Verdict {
    let sc = Scenario {
        name: "pfrules",
        main,
        listeners: &[listener],
        files: &[],
        postmap: &[],
    };
    let run = smtpd_support::start(master, &sc).unwrap_or_else(|e| panic!("{e}"));
    let reply = smtpd_support::ask(run.ports[0], "203.0.113.5", None, rcpt);
    reply
        .as_deref()
        .map(smtpd_support::reply_class)
        .unwrap_or(Verdict::Unavailable)
}

/// Each new rule's premise, checked against Postfix itself: the lint verdict (finding or not)
/// must agree with what the real smtpd answers a stranger. The lint runs on the same main.cf
/// with the listener as the public `smtp` service (the private instance listens on loopback).
#[test]
fn new_rules_agree_with_real_smtpd() {
    let Some(master) = smtpd_support::require() else {
        return;
    };
    struct Case {
        main: &'static str,
        listener: &'static str,
        rcpt: &'static str,
        code: &'static str,
        real: Verdict,
    }
    let cases = [
        Case { main: "compatibility_level = 3.6\nmydestination = example.com\nrelay_domains = static:yes\n", listener: "", rcpt: "a@victim.example", code: "PF101", real: Verdict::Accept },
        Case { main: "compatibility_level = 3.6\nmydestination = example.com\nrelay_domains = com\n", listener: "", rcpt: "a@victim.com", code: "PF101", real: Verdict::Accept },
        Case { main: "compatibility_level = 3.6\nmydestination = example.com\nrelay_domains = *\n", listener: "", rcpt: "a@victim.com", code: "", real: Verdict::Defer },
        Case { main: "mydestination = example.com\n", listener: "", rcpt: "a@victim.com", code: "PF103", real: Verdict::Unavailable },
        Case { main: "compatibility_level = 3.6\nmydestination = example.com\n", listener: "  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_sasl_type=dovecot\n", rcpt: "root@example.com", code: "PF102", real: Verdict::Unavailable },
        Case { main: "compatibility_level = 3.6\nmydestination = example.com\n", listener: "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n", rcpt: "root@example.com", code: "PF110", real: Verdict::Reject },
        Case { main: "compatibility_level = 3.6\nmydestination = example.com\n", listener: "", rcpt: "root@example.com", code: "", real: Verdict::Accept },
        // PF003 as an error: smtpd reads `#` as a restriction (`unknown smtpd restriction`)
        // and defers with 451 4.3.5 once evaluation reaches it.
        Case { main: "compatibility_level = 3.6\nmydestination = example.com\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination # no auth\n", listener: "", rcpt: "root@example.com", code: "PF003", real: Verdict::Defer },
    ];
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let got = real(&master, c.main, c.listener, c.rcpt);
        let fs = lint(
            c.main,
            Some(&format!("smtp inet n - n - - smtpd\n{}", c.listener)),
        );
        let codes: Vec<&str> = fs.iter().filter_map(|f| f["code"].as_str()).collect();
        let lint_ok = if c.code.is_empty() {
            !codes
                .iter()
                .any(|k| ["PF101", "PF102", "PF103", "PF110"].contains(k))
        } else {
            codes.contains(&c.code)
        };
        if got != c.real || !lint_ok {
            failures.push(format!(
                "case {i} ({}): smtpd {got:?} (expected {:?}), lint codes {codes:?} (expected {:?})",
                c.rcpt, c.real, c.code
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// trivial-rewrite's own warning for a domain in two classes, as PF109 quotes it.
#[test]
fn domain_in_two_classes_warning_is_postfix_s() {
    let Some(master) = smtpd_support::require() else {
        return;
    };
    let dom = format!("dup{}.example", std::process::id());
    let main = format!("compatibility_level = 3.6\nmydestination = example.com\nvirtual_alias_domains = {dom}\nvirtual_alias_maps = inline:{{a@{dom}=root@localhost}}\nrelay_domains = {dom}\n");
    let sc = Scenario {
        name: "pfrules-pf109",
        main: &main,
        listeners: &[""],
        files: &[],
        postmap: &[],
    };
    let run = smtpd_support::start(&master, &sc).unwrap();
    let _ = smtpd_support::ask(run.ports[0], "203.0.113.5", None, &format!("a@{dom}"));
    let want = format!("do not list domain {dom} in BOTH virtual_alias_domains and relay_domains");
    let seen = postfix_logged(&want);
    drop(run);
    assert!(seen, "Postfix did not log `{want}`");
    let fs = lint(&main, Some(SMTP));
    let pf = with_code(&fs, "PF109");
    assert_eq!(pf.len(), 1, "{fs:?}");
    assert!(pf[0]["message"].as_str().unwrap().contains(&want));
}

// ------------------------------------------------------------------ PF003 in restriction lists

#[test]
fn hash_in_restriction_list_is_an_error_and_every_hash_is_reported() {
    let main = "compatibility_level = 3.6\nmydestination = example.com\n\
        smtpd_relay_restrictions = permit_mynetworks, # lan\n  permit_sasl_authenticated, #auth\n  reject_unauth_destination\n\
        mynetworks = 127.0.0.0/8 # office\n";
    let fs = lint(main, None);
    let pf003 = with_code(&fs, "PF003");
    assert_eq!(pf003.len(), 3, "{pf003:#?}");
    let lines: Vec<u64> = pf003.iter().map(|f| f["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [3, 4, 6]);
    for f in &pf003[..2] {
        assert_eq!(f["severity"], "error");
        assert!(f["message"].as_str().unwrap().contains("451 4.3.5"));
    }
    assert_eq!(pf003[2]["severity"], "warning");
    assert!(!pf003[2]["message"].as_str().unwrap().contains("451"));

    // --fix removes every `#` from the value: real postconf shows the list without it.
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("etc/postfix");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.cf"), main).unwrap();
    // One run fixes all of them: a PF003 error does not make the file "broken", so the
    // mynetworks warning's fix is applied together with the restriction-list ones.
    let out = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
        .args(["lint", "--fix", "--root"])
        .arg(t.path())
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("withheld"),
        "{out:?}"
    );
    let fixed = std::fs::read_to_string(dir.join("main.cf")).unwrap();
    let Ok(pc) = Command::new("postconf")
        .args(["-c"])
        .arg(&dir)
        .args(["-h", "smtpd_relay_restrictions", "mynetworks"])
        .output()
    else {
        assert!(std::env::var_os("CI").is_none(), "postconf missing");
        eprintln!("SKIP: postconf not installed\n{fixed}");
        return;
    };
    let shown = String::from_utf8_lossy(&pc.stdout);
    assert!(!shown.contains('#'), "{fixed}\n{shown}");
    assert!(shown.contains("reject_unauth_destination"), "{shown}");
    assert!(shown.contains("127.0.0.0/8"), "{shown}");
    // Non-triggering: the comments now stand on their own lines.
    assert!(
        with_code(&lint(&fixed, None), "PF003").is_empty(),
        "{fixed}"
    );
}

// ------------------------------------------------------------------ loopback listeners

#[test]
fn loopback_reinjection_listener_is_not_for_submission() {
    let main =
        "compatibility_level = 3.6\nmydestination = example.com\nsmtpd_sasl_auth_enable = yes\n";
    let reinject = "smtp inet n - n - - smtpd\n127.0.0.1:10025 inet n - n - - smtpd\n  -o content_filter=\n  -o smtpd_client_restrictions=permit_mynetworks,reject\n  -o mynetworks=127.0.0.0/8\n";
    let fs = lint(main, Some(reinject));
    let on = |code: &str| {
        with_code(&fs, code)
            .into_iter()
            .filter(|f| {
                f["service"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("127.0.0.1:10025")
            })
            .count()
    };
    assert_eq!(on("PF102"), 0, "{fs:#?}");
    assert_eq!(on("PF104"), 0, "{fs:#?}");
    // Orphaned -o lines (commented-out header) do not make it a submission port either.
    let orphan = format!(
        "{reinject}#submission-legacy inet n - n - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n"
    );
    let fs = lint(main, Some(&orphan));
    assert!(!with_code(&fs, "PF009").is_empty());
    assert!(with_code(&fs, "PF102").iter().all(|f| !f["service"]
        .as_str()
        .unwrap_or("")
        .starts_with("127.0.0.1:10025")));

    // Triggering: SASL enabled on purpose there; the help names the list that refuses.
    let meant = format!("{reinject}  -o smtpd_sasl_auth_enable=yes\n");
    let fs = lint(main, Some(&meant));
    let pf102: Vec<_> = with_code(&fs, "PF102")
        .into_iter()
        .filter(|f| {
            f["service"]
                .as_str()
                .unwrap_or("")
                .starts_with("127.0.0.1:10025")
        })
        .collect();
    assert_eq!(pf102.len(), 1, "{fs:#?}");
    let help = pf102[0]["help"].as_str().unwrap();
    assert!(help.contains("smtpd_client_restrictions"), "{help}");
    assert!(!help.contains("reject_unauth_destination"), "{help}");
    // The same listener on every interface: passwords cross the network (PF104).
    let public = meant.replace("127.0.0.1:10025", "10025");
    let fs = lint(main, Some(&public));
    assert!(
        with_code(&fs, "PF104")
            .iter()
            .any(|f| f["service"].as_str().unwrap_or("").starts_with("10025")),
        "{fs:#?}"
    );
}

// ------------------------------------------------------------------ PF106 and postscreen

#[test]
fn postscreen_dnsbl_follows_action_weight_and_threshold() {
    let base = "compatibility_level = 3.6\nmydestination = example.com\n";
    let pf106 = |extra: &str| -> Vec<serde_json::Value> {
        let fs = lint(&format!("{base}{extra}"), None);
        with_code(&fs, "PF106").into_iter().cloned().collect()
    };
    // Default action ignore: nothing is refused; a defunct list is still a warning,
    // a filterless Spamhaus zone is a warning, not an error.
    let fs = pf106("postscreen_dnsbl_sites = zen.spamhaus.org*3, dnsbl.sorbs.net\n");
    assert_eq!(fs.len(), 2, "{fs:#?}");
    for f in &fs {
        assert_eq!(f["severity"], "warning", "{f:#?}");
        let msg = f["message"].as_str().unwrap();
        assert!(msg.contains("postscreen_dnsbl_action = ignore"), "{msg}");
        assert!(!msg.contains("554") && !msg.contains("550"), "{msg}");
    }
    // Enforced and heavy enough to block alone: error, with postscreen's 550 reply.
    let fs = pf106("postscreen_dnsbl_action = enforce\npostscreen_dnsbl_sites = zen.spamhaus.org*3\npostscreen_dnsbl_threshold = 3\n");
    assert_eq!(fs.len(), 1, "{fs:#?}");
    assert_eq!(fs[0]["severity"], "error");
    let msg = fs[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("550 5.7.1 Service unavailable; client [...] blocked using zen.spamhaus.org"),
        "{msg}"
    );
    // Enforced but below the threshold: it cannot refuse by itself.
    let fs = pf106("postscreen_dnsbl_action = enforce\npostscreen_dnsbl_sites = zen.spamhaus.org*1\npostscreen_dnsbl_threshold = 3\n");
    assert_eq!(fs.len(), 1, "{fs:#?}");
    assert_eq!(fs[0]["severity"], "warning");
    assert!(fs[0]["message"]
        .as_str()
        .unwrap()
        .contains("below postscreen_dnsbl_threshold = 3"));
    // Not triggering: a reply filter.
    assert!(pf106("postscreen_dnsbl_action = enforce\npostscreen_dnsbl_sites = zen.spamhaus.org=127.0.0.[2..11]*3\n").is_empty());
}

/// Issue #15 item 9: weights add up, and the DBL is a domain list.
#[test]
fn postscreen_weights_add_up_and_dbl_is_not_an_ip_list() {
    let base = "compatibility_level = 3.6\nmydestination = example.com\n";
    let pf106 = |extra: &str| -> Vec<serde_json::Value> {
        let fs = lint(&format!("{base}{extra}"), None);
        with_code(&fs, "PF106").into_iter().cloned().collect()
    };
    // Two unfiltered Spamhaus zones, each below the threshold, together at it: through a
    // public resolver both answer 127.255.255.254 for every client, 2 + 1 >= 3.
    let fs = pf106("postscreen_dnsbl_action = enforce\npostscreen_dnsbl_threshold = 3\npostscreen_dnsbl_sites = zen.spamhaus.org*2, bl.spamcop.net, sbl.spamhaus.org*1\n");
    let sum: Vec<_> = fs
        .iter()
        .filter(|f| f["message"].as_str().unwrap().contains("add up to 3"))
        .collect();
    assert_eq!(sum.len(), 1, "{fs:#?}");
    assert_eq!(sum[0]["severity"], "error");
    assert_eq!(sum[0]["line"], 5);
    let msg = sum[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("zen.spamhaus.org (weight 2), sbl.spamhaus.org (weight 1)"),
        "{msg}"
    );
    // Healthy twins: filtered, or below the threshold together, or not enforced.
    for twin in [
        "postscreen_dnsbl_action = enforce\npostscreen_dnsbl_threshold = 3\npostscreen_dnsbl_sites = zen.spamhaus.org=127.0.0.[2..11]*2, sbl.spamhaus.org=127.0.0.[2..11]*1\n",
        "postscreen_dnsbl_action = enforce\npostscreen_dnsbl_threshold = 4\npostscreen_dnsbl_sites = zen.spamhaus.org*2, sbl.spamhaus.org*1\n",
        "postscreen_dnsbl_threshold = 3\npostscreen_dnsbl_sites = zen.spamhaus.org*2, sbl.spamhaus.org*1\n",
    ] {
        assert!(
            !pf106(twin).iter().any(|f| f["message"].as_str().unwrap().contains("add up to")),
            "{twin}"
        );
    }
    // dbl.spamhaus.org asked about client IPs: 127.0.1.255 for every query.
    let fs = pf106("smtpd_client_restrictions = reject_rbl_client dbl.spamhaus.org\n");
    assert_eq!(fs.len(), 1, "{fs:#?}");
    assert_eq!(fs[0]["severity"], "error");
    assert!(
        fs[0]["message"].as_str().unwrap().contains("127.0.1.255"),
        "{fs:#?}"
    );
    // Filtered, it blocks nothing: a warning.
    let fs =
        pf106("smtpd_client_restrictions = reject_rbl_client dbl.spamhaus.org=127.0.1.[2..99]\n");
    assert_eq!(fs.len(), 1, "{fs:#?}");
    assert_eq!(fs[0]["severity"], "warning");
    // As a domain list it is right: no finding with the filter.
    assert!(pf106(
        "smtpd_sender_restrictions = reject_rhsbl_sender dbl.spamhaus.org=127.0.1.[2..99]\n"
    )
    .is_empty());
}

#[test]
fn pf106_points_at_the_entry_of_a_multiline_list() {
    let main = "compatibility_level = 3.6\nmydestination = example.com\nsmtpd_recipient_restrictions =\n    permit_mynetworks,\n    reject_unauth_destination,\n    reject_rbl_client zen.spamhaus.org\n";
    let fs = lint(main, None);
    let pf106 = with_code(&fs, "PF106");
    assert_eq!(pf106.len(), 1, "{fs:#?}");
    assert_eq!(pf106[0]["line"], 6);
    assert!(pf106[0]["message"].as_str().unwrap().contains("554 5.7.1"));
}

// ------------------------------------------------------------------ PF108 with only the .db

#[test]
fn compiled_map_without_source_is_not_an_error() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("etc/postfix");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.cf"),
        "compatibility_level = 3.6\nalias_maps = hash:/etc/aliases\nvirtual_alias_maps = hash:/etc/postfix/virtual\n",
    )
    .unwrap();
    std::fs::write(dir.join("master.cf"), SMTP).unwrap();
    std::fs::write(t.path().join("etc/aliases.db"), b"not read by the check").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
        .args(["lint", "--format", "json", "--root"])
        .arg(t.path())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fs = v["findings"].as_array().unwrap();
    let pf108 = with_code(fs, "PF108");
    assert_eq!(pf108.len(), 2, "{pf108:#?}");
    // aliases: only the .db exists, which is all Postfix reads (postalias -q works).
    let alias = pf108
        .iter()
        .find(|f| f["message"].as_str().unwrap().starts_with("alias_maps"))
        .unwrap();
    assert_eq!(alias["severity"], "info");
    // virtual: neither source nor .db: reported (a warning under --root, where src/partial.rs
    // says the snapshot lacks it; an error on the live system).
    let virt = pf108
        .iter()
        .find(|f| {
            f["message"]
                .as_str()
                .unwrap()
                .starts_with("virtual_alias_maps")
        })
        .unwrap();
    assert_eq!(virt["severity"], "warning");
}

// ------------------------------------------------------------------ PF010 versions

#[test]
fn deprecation_names_the_version_checked() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("etc/postfix");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.cf"),
        "compatibility_level = 3.6\nsmtpd_use_tls = yes\n",
    )
    .unwrap();
    std::fs::write(dir.join("master.cf"), SMTP).unwrap();
    let run = |extra: &[&str]| -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
            .args(["lint", "--format", "json"])
            .args(extra)
            .arg("--root")
            .arg(t.path())
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        with_code(v["findings"].as_array().unwrap(), "PF010")
            .iter()
            .map(|f| f["message"].as_str().unwrap().to_string())
            .collect()
    };
    // A snapshot does not say its version: the message says which one was assumed.
    let snap = run(&[]);
    assert_eq!(snap.len(), 1, "{snap:?}");
    assert!(
        snap[0].contains("deprecated since Postfix 3.9: from that version on"),
        "{snap:?}"
    );
    assert!(
        snap[0]
            .contains("checked for Postfix 3.11 (assumed: the snapshot records no Postfix package"),
        "{snap:?}"
    );
    let given = run(&["--postfix-version", "3.10"]);
    assert!(
        given[0].contains("checked for Postfix 3.10 (--postfix-version)"),
        "{given:?}"
    );
    // Not triggering: Postfix 3.7 does not warn about it yet.
    assert!(run(&["--postfix-version", "3.7"]).is_empty());
}

/// PF111's premise, against the real smtpd: on a listener that authorizes everyone for
/// XCLIENT, a client that claims a mynetworks address relays (the harness's private Postfix
/// trusts 192.0.2.0/24), and with a login it relays too; the lint reports the listener.
#[test]
fn xclient_from_everyone_relays_on_real_smtpd() {
    let Some(master) = smtpd_support::require() else {
        return;
    };
    let main =
        "compatibility_level = 3.6\nmydestination = example.com\nsmtpd_sasl_auth_enable = yes\n";
    let listener = "  -o smtpd_authorized_xclient_hosts=0.0.0.0/0\n";
    let sc = Scenario {
        name: "pfrules-pf111",
        main,
        listeners: &[listener],
        files: &[],
        postmap: &[],
    };
    let run = smtpd_support::start(&master, &sc).unwrap_or_else(|e| panic!("{e}"));
    let port = run.ports[0];
    let claim_trusted = smtpd_support::ask(port, "192.0.2.7", None, "a@victim.example");
    let claim_login = smtpd_support::ask(port, "203.0.113.5", Some("anyone"), "a@victim.example");
    let honest = smtpd_support::ask(port, "203.0.113.5", None, "a@victim.example");
    drop(run);
    let class = |r: &Option<String>| r.as_deref().map(smtpd_support::reply_class);
    assert_eq!(
        class(&claim_trusted),
        Some(Verdict::Accept),
        "{claim_trusted:?}"
    );
    assert_eq!(
        class(&claim_login),
        Some(Verdict::Accept),
        "{claim_login:?}"
    );
    assert_ne!(class(&honest), Some(Verdict::Accept), "{honest:?}");
    let fs = lint(
        main,
        Some(&format!("smtp inet n - n - - smtpd\n{listener}")),
    );
    let pf = with_code(&fs, "PF111");
    assert_eq!(pf.len(), 1, "{fs:?}");
    assert_eq!(pf[0]["severity"], "error");
    // Bound to loopback, only local clients can use it: not reported.
    let fs = lint(
        main,
        Some(&format!("127.0.0.1:10025 inet n - n - - smtpd\n{listener}")),
    );
    assert!(with_code(&fs, "PF111").is_empty(), "{fs:?}");
}

/// PF109 for a domain that only a table lists (relay_domains = texthash:...): Postfix warns
/// just the same, and the finding names the table line.
#[test]
fn domain_in_two_classes_through_a_table() {
    let Some(master) = smtpd_support::require() else {
        return;
    };
    let dom = format!("dupmap{}.example", std::process::id());
    let main = format!("compatibility_level = 3.6\nmydestination = example.com\nvirtual_alias_domains = {dom}\nvirtual_alias_maps = inline:{{a@{dom}=root@localhost}}\nrelay_domains = texthash:$config_directory/relay_domains\n");
    let table = format!("# relayed for the old server\nother.example OK\n{dom} OK\n");
    let sc = Scenario {
        name: "pfrules-pf109-map",
        main: &main,
        listeners: &[""],
        files: &[("relay_domains", &table)],
        postmap: &[],
    };
    let run = smtpd_support::start(&master, &sc).unwrap_or_else(|e| panic!("{e}"));
    let _ = smtpd_support::ask(run.ports[0], "203.0.113.5", None, &format!("a@{dom}"));
    let want = format!("do not list domain {dom} in BOTH virtual_alias_domains and relay_domains");
    let seen = postfix_logged(&want);
    drop(run);
    assert!(seen, "Postfix did not log `{want}`");

    let fs = lint_with(&main, Some(SMTP), &[("relay_domains", &table)]);
    let pf = with_code(&fs, "PF109");
    assert_eq!(pf.len(), 1, "{fs:?}");
    let msg = pf[0]["message"].as_str().unwrap();
    assert!(msg.contains(&want), "{msg}");
    assert!(msg.contains("relay_domains:3"), "{msg}");
    // The literal-word fix does not apply to a table entry.
    assert!(pf[0]["fix"].is_null(), "{:?}", pf[0]);
}

/// A `/file/name` domain list whose file is missing: real smtpd answers `451 4.3.0
/// Temporary lookup failure`; lint reports PF108 and simulate gives that reply.
#[test]
fn missing_domain_list_file_defers_like_smtpd() {
    let Some(master) = smtpd_support::require() else {
        return;
    };
    let main = "compatibility_level = 3.6\nmydestination = example.com\nrelay_domains = /etc/postfix/relaydoctor-missing-relay-domains\n";
    assert_eq!(real(&master, main, "", "a@victim.example"), Verdict::Defer);
    let fs = lint(main, Some(SMTP));
    let pf = with_code(&fs, "PF108");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("etc/postfix");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.cf"), main).unwrap();
    std::fs::write(dir.join("master.cf"), SMTP).unwrap();
    assert_eq!(pf.len(), 1, "{fs:?}");
    assert!(pf[0]["message"].as_str().unwrap().contains("451 4.3.0"));
    let sim = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
        .args([
            "simulate",
            "--client",
            "203.0.113.5",
            "--rcpt",
            "a@victim.example",
            "--root",
        ])
        .arg(t.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&sim.stdout);
    assert!(
        text.contains("defer (451 4.3.0 <a@victim.example>: Temporary lookup failure)"),
        "{text}"
    );
}

/// PF104 caused by a master.cf override that undoes main.cf's TLS-only AUTH points at the
/// override and says to remove it (not "set smtpd_tls_auth_only = yes", already set).
#[test]
fn plaintext_auth_points_at_the_override_that_causes_it() {
    let main = "compatibility_level = 3.6\nsmtpd_sasl_auth_enable = yes\nsmtpd_tls_auth_only = yes\nsmtpd_tls_security_level = may\n";
    let master =
        "smtp inet n - y - - smtpd\n588 inet n - y - - smtpd\n  -o smtpd_tls_auth_only=no\n";
    let fs = lint(main, Some(master));
    let pf = with_code(&fs, "PF104");
    assert_eq!(pf.len(), 1, "{fs:?}");
    assert!(
        pf[0]["file"].as_str().unwrap().ends_with("master.cf"),
        "{:?}",
        pf[0]
    );
    assert_eq!(pf[0]["line"], 3);
    assert!(pf[0]["help"]
        .as_str()
        .unwrap()
        .starts_with("Remove `-o smtpd_tls_auth_only=no`"));
}

// ------------------------------------------------------------------ issue #15 items 3, 4, 5, 10

/// Postfix's own brace syntax is not a template (#15.3): `inline:{{k = v}}`, brace-quoted
/// values and the long `-o { name = value }` form. postconf accepts all three (checked with
/// Postfix 3.7: `postconf -n`, `postconf -P`, `postmap -q` on the inline table).
#[test]
fn postfix_braces_are_not_template_placeholders() {
    let main = format!(
        "{BASE}virtual_alias_maps = inline:{{{{postmaster@example.com = a@example.net}}, abuse@example.com=a@example.net}}\n\
         transport_maps = inline:{{{{example.org=smtp:[relay.example.net]}}}}\n\
         smtpd_reject_footer = {{ For help, contact postmaster@example.com }}\n"
    );
    let master = format!("{SMTP}submission inet n - n - - smtpd\n  -o {{ smtpd_client_restrictions = permit_sasl_authenticated, reject }}\n  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_tls_security_level=encrypt\n");
    let fs = lint(&main, Some(&master));
    assert!(with_code(&fs, "PF013").is_empty(), "{fs:?}");
    // A Jinja placeholder in the same place still is one.
    let fs = lint(
        &format!("{BASE}transport_maps = {{{{ transport_maps }}}}\n"),
        Some(SMTP),
    );
    assert_eq!(with_code(&fs, "PF013").len(), 1, "{fs:?}");
}

/// main.cf without master.cf is checked as Postfix's stock master.cf (#15.4): its open relay
/// is reported, and PF108 says which master.cf was assumed.
#[test]
fn main_cf_alone_is_checked_with_the_stock_master_cf() {
    let fs = lint(&format!("{BASE}mynetworks = 0.0.0.0/0\n"), None);
    let pf = with_code(&fs, "PF101");
    assert_eq!(pf.len(), 1, "{fs:?}");
    assert_eq!(pf[0]["line"], 3);
    let note = with_code(&fs, "PF108");
    assert_eq!(note.len(), 1, "{fs:?}");
    assert!(note[0]["message"]
        .as_str()
        .unwrap()
        .contains("Postfix's stock master.cf"));
    let fs = lint(&format!("{BASE}mynetworks = 127.0.0.0/8\n"), None);
    assert!(with_code(&fs, "PF101").is_empty(), "{fs:?}");
}

/// PF102 on port 25 (#15.5): SASL enabled in main.cf for the smtp listener and
/// permit_sasl_authenticated after reject_unauth_destination. The real smtpd refuses a
/// logged-in client (XCLIENT LOGIN) with 554 Relay access denied; in the healthy order it
/// accepts.
#[test]
fn unreachable_sasl_permit_on_port_25() {
    let bad = "compatibility_level = 3.6\nmydestination = example.com\nsmtpd_sasl_auth_enable = yes\n\
        smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination, permit_sasl_authenticated\n";
    let good = "compatibility_level = 3.6\nmydestination = example.com\nsmtpd_sasl_auth_enable = yes\n\
        smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n";
    let fs = lint(bad, Some(SMTP));
    let pf = with_code(&fs, "PF102");
    assert_eq!(pf.len(), 1, "{fs:?}");
    assert_eq!(pf[0]["line"], 4);
    assert!(pf[0]["message"].as_str().unwrap().contains("554 5.7.1"));
    assert!(with_code(&lint(good, Some(SMTP)), "PF102").is_empty());
    // SASL off on port 25: permit_sasl_authenticated in the shared list is no promise there.
    let off = bad.replace("smtpd_sasl_auth_enable = yes\n", "");
    assert!(with_code(&lint(&off, Some(SMTP)), "PF102").is_empty());
    let Some(master) = smtpd_support::require() else {
        return;
    };
    for (name, main, want) in [
        ("pfrules-pf102-25", bad, Verdict::Reject),
        ("pfrules-pf102-25ok", good, Verdict::Accept),
    ] {
        let sc = Scenario {
            name,
            main,
            listeners: &[""],
            files: &[],
            postmap: &[],
        };
        let run = smtpd_support::start(&master, &sc).unwrap_or_else(|e| panic!("{e}"));
        let reply = smtpd_support::ask(
            run.ports[0],
            "203.0.113.5",
            Some("user"),
            "a@victim.example",
        );
        drop(run);
        assert_eq!(
            reply.as_deref().map(smtpd_support::reply_class),
            Some(want),
            "{name}: {reply:?}"
        );
    }
}

/// PF103 does not hide PF104 (#15.10): a listener whose smtpd dies on the safety check still
/// gets its plaintext-AUTH finding.
#[test]
fn safety_check_failure_does_not_hide_plaintext_auth() {
    let main =
        "compatibility_level = 3.6\nmydestination = example.com\nsmtpd_sasl_auth_enable = yes\n\
        smtpd_relay_restrictions =\nsmtpd_recipient_restrictions = permit_mynetworks\n";
    let fs = lint(main, Some(SMTP));
    assert_eq!(with_code(&fs, "PF103").len(), 1, "{fs:?}");
    assert_eq!(with_code(&fs, "PF104").len(), 1, "{fs:?}");
}

// ------------------------------------------------------------------ PF014 (#21 item 1)

/// PF014 against the real smtpd: an unknown restriction name and a check_*_access without its
/// table both make smtpd answer 451 4.3.5 to a stranger; the healthy list answers 554. lint
/// reports the first two, pointing at the word, and not the third.
#[test]
fn unknown_restrictions_agree_with_real_smtpd() {
    let cases = [
        (
            "permit_mynetworks, permit_my_networks, reject_unauth_destination",
            Some("permit_my_networks"),
        ),
        (
            "permit_mynetworks, check_client_access, reject_unauth_destination",
            Some("check_client_access"),
        ),
        ("permit_mynetworks, reject_unauth_destination", None),
    ];
    for (list, word) in cases {
        let main = format!("{BASE}smtpd_relay_restrictions = {list}\n");
        let fs = lint(&main, Some(SMTP));
        let pf = with_code(&fs, "PF014");
        match word {
            Some(w) => {
                assert_eq!(pf.len(), 1, "{list}: {fs:?}");
                assert_eq!(pf[0]["severity"], "error");
                assert_eq!(pf[0]["line"], 3);
                let col = pf[0]["column"].as_u64().unwrap() as usize;
                let line = main.lines().nth(2).unwrap();
                assert!(line[col - 1..].starts_with(w), "{list}: column {col}");
            }
            None => assert!(pf.is_empty(), "{list}: {fs:?}"),
        }
    }
    let Some(master) = smtpd_support::require() else {
        return;
    };
    for (k, (list, word)) in cases.iter().enumerate() {
        let main = format!("{BASE}smtpd_relay_restrictions = {list}\n");
        let name = format!("pfrules-pf014-{k}");
        let sc = Scenario {
            name: &name,
            main: &main,
            listeners: &[""],
            files: &[],
            postmap: &[],
        };
        let run = smtpd_support::start(&master, &sc).unwrap_or_else(|e| panic!("{e}"));
        let reply = smtpd_support::ask(run.ports[0], "203.0.113.5", None, "a@victim.example");
        drop(run);
        let reply = reply.unwrap_or_default();
        if word.is_some() {
            assert!(reply.starts_with("451 4.3.5"), "{list}: {reply}");
        } else {
            assert!(reply.starts_with("554 5.7.1"), "{list}: {reply}");
        }
    }
}

/// PF003 in a match list (#22): Postfix ends the list at the `#` with a warning (match_list.c;
/// 3.8 and later through mystrtokq_cw()), it does not gain the words as entries.
#[test]
fn hash_in_a_match_list_ends_the_list() {
    let fs = lint(
        "compatibility_level = 3.6\nmydestination = example.com\nmynetworks = 127.0.0.0/8 # office\n",
        Some(SMTP),
    );
    let pf = with_code(&fs, "PF003");
    assert_eq!(pf.len(), 1, "{fs:?}");
    let msg = pf[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("mynetworks: #comment after other text is not allowed")
            && msg.contains("ignores everything from the `#` on"),
        "{msg}"
    );
}

/// Issue #15 item 8: lint's stranger stands for every client outside the lists. A
/// POP-before-SMTP map that happens to hold its sample address (203.0.113.5) permits one
/// client, not strangers: no open relay; a map entry that covers every address still is one.
#[test]
fn the_representative_stranger_is_not_one_listed_client() {
    let main = "compatibility_level = 3.6\nmydestination = example.com\n\
        smtpd_relay_restrictions = permit_mynetworks, check_client_access texthash:/etc/postfix/pop-before-smtp, reject_unauth_destination\n";
    let files = |map: &str| lint_with(main, Some(MASTER), &[("pop-before-smtp", map)]);
    let one = files("198.51.100.9 OK\n203.0.113.5 OK\n");
    assert!(with_code(&one, "PF101").is_empty(), "{one:#?}");
    let parents = files("203.0.113 OK\n");
    assert!(with_code(&parents, "PF101").is_empty(), "{parents:#?}");
    // cidr: a broad range permits strangers.
    let main_cidr = main.replace(
        "texthash:/etc/postfix/pop-before-smtp",
        "cidr:/etc/postfix/pop-before-smtp",
    );
    let all = lint_with(
        &main_cidr,
        Some(MASTER),
        &[("pop-before-smtp", "0.0.0.0/0 OK\n")],
    );
    assert!(!with_code(&all, "PF101").is_empty(), "{all:#?}");
    let host = lint_with(
        &main_cidr,
        Some(MASTER),
        &[("pop-before-smtp", "203.0.113.5/32 OK\n")],
    );
    assert!(with_code(&host, "PF101").is_empty(), "{host:#?}");
}

/// Issue #15 item 11: missing files wherever Postfix would fail on them: proxy:TYPE: config
/// files, the CA file, and `/file` entries of mydestination; their healthy twins are quiet.
#[test]
fn missing_proxy_config_ca_and_list_files_are_pf108() {
    let base = "compatibility_level = 3.6\n";
    let pf108 = |main: &str, files: &[(&str, &str)]| -> Vec<String> {
        with_code(
            &lint_with(&format!("{base}{main}"), Some(MASTER), files),
            "PF108",
        )
        .iter()
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect()
    };
    let cases: [(&str, (&str, &str), &str); 3] = [
        (
            "virtual_mailbox_domains = proxy:mysql:/etc/postfix/mysql-domains.cf\n",
            ("mysql-domains.cf", "hosts = 127.0.0.1\n"),
            "warning: mysql:/etc/postfix/mysql-domains.cf is unavailable",
        ),
        (
            "smtpd_tls_CAfile = /etc/postfix/ca.pem\n",
            ("ca.pem", "-----BEGIN CERTIFICATE-----\n"),
            "454 4.7.0",
        ),
        (
            "mydestination = $myhostname, /etc/postfix/mailname\n",
            ("mailname", "example.com\n"),
            "451 4.3.0 Temporary lookup failure",
        ),
    ];
    for (main, file, effect) in cases {
        let missing = pf108(main, &[]);
        assert_eq!(missing.len(), 1, "{main}: {missing:#?}");
        assert!(missing[0].contains(effect), "{main}: {missing:#?}");
        assert!(pf108(main, &[file]).is_empty(), "{main}");
    }
}

/// Lint's "external domain" stands for real domains, which resolve: reject_unknown_recipient_domain
/// before permit_sasl_authenticated does not refuse logged-in users in general (no PF102),
/// while a concrete recipient under .example, which never resolves, is refused by simulate.
#[test]
fn unknown_recipient_domain_before_sasl_is_not_pf102() {
    let main = "compatibility_level = 3.6\nmydestination = example.com\nsmtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\nsmtpd_recipient_restrictions = reject_unknown_recipient_domain, permit_sasl_authenticated, reject_unauth_destination\n";
    let fs = lint(main, Some(MASTER));
    assert!(with_code(&fs, "PF102").is_empty(), "{fs:#?}");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("etc/postfix");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.cf"), main).unwrap();
    std::fs::write(dir.join("master.cf"), MASTER).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
        .args(["simulate", "--client", "203.0.113.9", "--sasl-user", "bob"])
        .args(["--rcpt", "someone@nowhere.example", "--root"])
        .arg(t.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Domain not found"), "{text}");
}

// ------------------------------------------------------------------ review 7 differentials

/// Clients that did not log in, at these addresses.
fn strangers(
    addrs: &[&str],
) -> Vec<(
    relaydoctor::relay::ClientClass,
    String,
    Option<&'static str>,
)> {
    addrs
        .iter()
        .map(|a| {
            (
                relaydoctor::relay::ClientClass::Stranger,
                a.to_string(),
                None,
            )
        })
        .collect()
}

/// Runs `listeners` (their `-o` lines) on the real smtpd with `BASE` plus `local_recipient_maps
/// =` (so accepted local recipients depend on no table), compares every client and recipient
/// with the model (no mismatch, nothing `depends`: the count compared is returned), and
/// returns the RCPT replies of `asks` (listener, client address, recipient) as well.
/// `None` when Postfix cannot run here.
fn agree_with_smtpd(
    name: &str,
    listeners: &[&str],
    clients: &[(relaydoctor::relay::ClientClass, String, Option<&str>)],
    rcpts: &[&str],
    asks: &[(usize, &str, &str)],
) -> Option<(usize, Vec<Option<String>>)> {
    let master = smtpd_support::require()?;
    let main = format!("{BASE}local_recipient_maps =\n");
    let sc = Scenario {
        name,
        main: &main,
        listeners,
        files: &[],
        postmap: &[],
    };
    let run = smtpd_support::start(&master, &sc).unwrap_or_else(|e| panic!("{e}"));
    let t = smtpd_support::compare(name, &run, clients, rcpts);
    let replies = asks
        .iter()
        .map(|(i, addr, rcpt)| smtpd_support::ask(run.ports[*i], addr, None, rcpt))
        .collect();
    drop(run);
    assert!(t.mismatches.is_empty(), "{}", t.mismatches.join("\n"));
    assert!(t.depends.is_empty(), "{:?}", t.depends);
    Some((t.compared, replies))
}

// ------------------------------------------------------------------ PF015 (review 7 F16/F17/F15)

/// mynetworks entries the address parser rejects (util/cidr_match.c) or skips (match_ops.c):
/// the model's decisions agree with the real smtpd for clients before and after the bad
/// entry, and lint reports each entry (error for the 451 ones, warning for the dead ones).
#[test]
fn bad_mynetworks_entries_agree_with_real_smtpd() {
    // (entries after 127.0.0.0/8, lint severity of the odd entry)
    let cases: [(&str, Option<&str>); 9] = [
        ("192.168.1.10/24", Some("error")),
        ("192.168.1.0/255.255.255.0", Some("error")),
        ("192.168.001.0/24", Some("error")),
        ("192.168.1.0/33", Some("error")),
        ("192.168.1/24", Some("error")),
        ("10.0.0.0/8,192.168.1.10/24", Some("error")),
        ("192.168.1.*", Some("warning")),
        ("10.0.0.0/8\u{a0}", Some("warning")),
        ("192.168.1.0/24", None),
    ];
    for (entries, severity) in cases {
        let main = format!("{BASE}mynetworks = 127.0.0.0/8, {entries}\n");
        let fs = lint(&main, Some(SMTP));
        let pf = with_code(&fs, "PF015");
        match severity {
            Some(s) => {
                assert_eq!(pf.len(), 1, "{entries}: {fs:?}");
                assert_eq!(pf[0]["severity"], s, "{entries}");
            }
            None => assert!(pf.is_empty(), "{entries}: {fs:?}"),
        }
    }
    let listeners: Vec<String> = cases
        .iter()
        .map(|(e, _)| format!("  -o mynetworks=127.0.0.0/8,{e}\n"))
        .collect();
    let listeners: Vec<&str> = listeners.iter().map(String::as_str).collect();
    let clients = strangers(&["192.168.1.20", "203.0.113.5", "10.1.2.3"]);
    let rcpts = ["u@external.example", "u@example.com"];
    // The exact text of the failure (smtpd_check.c reject_dict_retry()).
    let asks = [(0, "203.0.113.5", "u@example.com")];
    let Some((compared, replies)) =
        agree_with_smtpd("pfrules-pf015", &listeners, &clients, &rcpts, &asks)
    else {
        return;
    };
    assert_eq!(compared, cases.len() * 3 * 2);
    assert_eq!(
        replies[0].as_deref(),
        Some("451 4.3.0 <u@example.com>: Temporary lookup failure")
    );
}

// ------------------------------------------------------------------ F1 (review 7): PF008's listener

/// A listener whose `-o a=b, c` line leaves `c` as a command-line argument: the real smtpd
/// exits on every connection (smtpd.c smtpd_service(): `unexpected command-line argument`),
/// and the model says `unavailable` for every client and recipient, citing the master.cf
/// line; the same listener without the blank answers.
#[test]
fn stray_argument_listener_is_unavailable_like_real_smtpd() {
    let listeners = [
        "  -o smtpd_recipient_restrictions=permit_sasl_authenticated, reject\n",
        "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n",
    ];
    let master_cf = format!("smtp inet n - n - - smtpd\n{}", listeners[0]);
    let t = common::postfix_tree(BASE, Some(&master_cf));
    let out = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
        .args([
            "simulate",
            "--client",
            "203.0.113.5",
            "--rcpt",
            "u@example.com",
            "--root",
        ])
        .arg(t.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("unavailable (fatal: unexpected command-line argument: reject)")
            && out.contains("master.cf:2:"),
        "{out}"
    );
    // Lint says why once (PF008), not also as a failed relay safety check (PF103): the
    // listener's restrictions are the safe defaults.
    let fs = common::lint_json(t.path(), &[]);
    assert_eq!(with_code(&fs, "PF008").len(), 1, "{fs:?}");
    assert!(with_code(&fs, "PF103").is_empty(), "{fs:?}");
    // One question per listener: after smtpd's fatal exit master throttles the service,
    // and every further connection would wait for the read timeout.
    let stranger = &smtpd_support::clients(None)[..1];
    let r = agree_with_smtpd(
        "pfrules-stray-arg",
        &listeners,
        stranger,
        &["u@example.com"],
        &[],
    );
    if let Some((compared, _)) = r {
        assert_eq!(compared, 2);
    }
}

// ------------------------------------------------------------------ F20 (review 7): tables smtpd cannot open

/// A table in a restriction list with neither compiled file nor source, and a mynetworks
/// /file that does not exist: the real smtpd defers every client that reaches them (451 4.3.5
/// `<name>: Client host rejected: Server configuration error` through check_access() and
/// check_table_result(); 451 4.3.0 `Temporary lookup failure` through match_list(3)'s
/// surrogate table), and so does the model, for the clients and recipients before and after.
#[test]
fn unopenable_tables_defer_like_real_smtpd() {
    // lint names the consequence on the restriction's line; a table that exists is quiet.
    let main = format!("{BASE}smtpd_relay_restrictions = permit_mynetworks, check_client_access hash:/etc/postfix/missing, reject_unauth_destination\n");
    let fs = lint(&main, Some(SMTP));
    let pf = with_code(&fs, "PF108");
    assert_eq!(pf.len(), 1, "{fs:?}");
    let msg = pf[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("451 4.3.5 <...>: ... rejected: Server configuration error"),
        "{msg}"
    );
    let fs = lint_with(
        &main,
        Some(SMTP),
        &[("missing", "x OK\n"), ("missing.db", "")],
    );
    assert!(with_code(&fs, "PF108").is_empty(), "{fs:?}");
    // A configuration directory (no --root): the host's files were consulted, and said so.
    let t = common::tree(&[("main.cf", main.as_str()), ("master.cf", SMTP)]);
    let out = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
        .args(["lint", "--format", "json"])
        .arg(t.path())
        .output()
        .unwrap();
    let fs: Vec<serde_json::Value> = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v["findings"].as_array().cloned())
        .unwrap_or_default();
    let pf = with_code(&fs, "PF108");
    assert_eq!(pf.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(pf[0]["severity"], "info");
    assert!(pf[0]["message"]
        .as_str()
        .unwrap()
        .contains("looked up on this machine"));
    let listeners = [
        "  -o smtpd_relay_restrictions=permit_mynetworks,check_client_access,hash:$config_directory/missing,reject_unauth_destination\n",
        "  -o smtpd_recipient_restrictions=check_recipient_access,cidr:$config_directory/missing.cidr\n",
        "  -o mynetworks=127.0.0.0/8,$config_directory/missing-nets\n",
    ];
    let clients = &smtpd_support::clients(None)[..2];
    let rcpts = ["u@external.example", "u@example.com"];
    let asks: Vec<(usize, &str, &str)> = (0..3)
        .map(|i| (i, "203.0.113.5", "u@example.com"))
        .collect();
    let Some((compared, texts)) =
        agree_with_smtpd("pfrules-unopenable", &listeners, clients, &rcpts, &asks)
    else {
        return;
    };
    assert_eq!(compared, 3 * 2 * 2);
    assert_eq!(
        texts,
        [
            Some("451 4.3.5 <unknown[203.0.113.5]>: Client host rejected: Server configuration error".to_string()),
            Some("451 4.3.5 <u@example.com>: Recipient address rejected: Server configuration error".to_string()),
            Some("451 4.3.0 <u@example.com>: Temporary lookup failure".to_string()),
        ]
    );
}

// ------------------------------------------------------------------ PF113 (review 7 F19)

/// `-o relay_domains=` / `-o mydestination=` on smtpd listeners: the real smtpd still refuses
/// a stranger's mail for those domains (trivial-rewrite decides the class from main.cf), the
/// model agrees, and lint warns about each override; main.cf's relay_domains does work.
#[test]
fn listener_domain_overrides_change_nothing_like_real_smtpd() {
    let listeners = [
        "  -o relay_domains=example.net\n",
        "  -o mydestination=example.org\n",
    ];
    let master_cf = format!(
        "smtp inet n - n - - smtpd\n{}submission inet n - n - - smtpd\n{}",
        listeners[0], listeners[1]
    );
    let fs = lint(BASE, Some(&master_cf));
    assert_eq!(with_code(&fs, "PF113").len(), 2, "{fs:?}");
    let fs = lint(&format!("{BASE}relay_domains = example.net\n"), Some(SMTP));
    assert!(with_code(&fs, "PF113").is_empty(), "{fs:?}");
    let clients = &smtpd_support::clients(None)[..2];
    let rcpts = ["u@example.net", "u@example.org"];
    let asks = [(0, "203.0.113.5", "u@example.net")];
    let Some((compared, replies)) =
        agree_with_smtpd("pfrules-pf113", &listeners, clients, &rcpts, &asks)
    else {
        return;
    };
    assert_eq!(compared, 2 * 2 * 2);
    let stranger = &replies[0];
    assert_eq!(
        stranger.as_deref(),
        Some("454 4.7.1 <u@example.net>: Relay access denied")
    );
}

// ------------------------------------------------------------------ PF005 (review 7 F8)

/// PF005 offers no rename to a parameter the service's program does not read: smtp_* on an
/// smtpd service (smtpd_bind_address -> the service name sets the address) and smtpd_* on
/// an smtp client; a rename within the program's own parameters is still offered.
#[test]
fn did_you_mean_stays_within_the_program() {
    let master = "smtp inet n - n - - smtpd\n127.0.0.1:10025 inet n - n - - smtpd\n  -o smtpd_bind_address=127.0.0.1\nrelay unix - - n - - smtp\n  -o smtp_helo_nam=x\n";
    let fs = lint(BASE, Some(master));
    let pf = with_code(&fs, "PF005");
    assert_eq!(pf.len(), 2, "{fs:?}");
    let bind = pf.iter().find(|f| f["line"] == 3).unwrap();
    assert!(bind["fix"].is_null(), "{bind}");
    assert!(
        bind["message"].as_str().unwrap().contains("does not read"),
        "{bind}"
    );
    assert!(
        bind["help"]
            .as_str()
            .unwrap()
            .contains("set by its service name (127.0.0.1:10025)"),
        "{bind}"
    );
    let helo = pf.iter().find(|f| f["line"] == 5).unwrap();
    assert!(
        helo["message"]
            .as_str()
            .unwrap()
            .ends_with("did you mean smtp_helo_name?"),
        "{helo}"
    );
    assert!(!helo["fix"].is_null(), "{helo}");
}

// ------------------------------------------------------------------ F18 (review 7): inline pattern tables

/// `cidr:{{...}}` and `regexp:{{...}}` (Postfix 3.7 inline tables) are evaluated like their
/// files, and the answers agree with the real smtpd: the listed network relays, a stranger
/// does not.
#[test]
fn inline_pattern_tables_agree_with_real_smtpd() {
    let listeners = [
        "  -o { mynetworks = 127.0.0.0/8 cidr:{{192.168.1.0/24 OK}} }\n",
        "  -o { smtpd_relay_restrictions = check_client_access regexp:{{/^192\\.168\\.1\\./ OK}}, reject_unauth_destination }\n",
    ];
    let clients = strangers(&["192.168.1.20", "203.0.113.5"]);
    let rcpts = ["u@external.example", "u@example.com"];
    let asks = [
        (0, "192.168.1.20", "u@external.example"),
        (1, "192.168.1.20", "u@external.example"),
    ];
    let Some((compared, replies)) =
        agree_with_smtpd("pfrules-inline", &listeners, &clients, &rcpts, &asks)
    else {
        return;
    };
    assert_eq!(compared, 2 * 2 * 2);
    assert_eq!(replies[0].as_deref(), Some("250 2.1.5 Ok"));
    assert_eq!(replies[1].as_deref(), Some("250 2.1.5 Ok"));
}
