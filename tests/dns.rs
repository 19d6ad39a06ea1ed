//! `relaydoctor dns` against a real DNS server: each test starts its own dnsmasq on a free
//! loopback port serving fixtures/dns/zone.args, and points `--resolver` at it. Nothing is
//! ever asked of the host's resolver. fixtures/dns/{postfix,exim,qmail}/{bad,good} are
//! server roots: `bad` triggers every check, `good` is its healthy twin.

mod common;
mod plesk_support;
mod resolver_support;

use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A dnsmasq serving the test zone; killed when dropped.
struct Dnsmasq {
    _child: resolver_support::Stopped,
    port: u16,
}

/// None (and a SKIP line) when dnsmasq is not installed; under CI that is a failure, since
/// scripts/test installs dnsmasq-base.
fn dnsmasq() -> Option<Dnsmasq> {
    let Some(bin) = resolver_support::dnsmasq_bin() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "dnsmasq is not installed (scripts/test installs dnsmasq-base)"
        );
        eprintln!("SKIP: dnsmasq not installed (apt-get install dnsmasq-base)");
        return None;
    };
    let zone = std::fs::read_to_string(common::repo("fixtures/dns/zone.args")).unwrap();
    let flags: Vec<&str> = zone
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for _ in 0..5 {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(&bin)
            .args([
                "--no-daemon",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
            ])
            .args(&flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        // Ready when its TCP listener accepts (it binds UDP and TCP together).
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if child.try_wait().unwrap().is_some() {
                break; // the port was taken meanwhile: try another
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Dnsmasq {
                    _child: resolver_support::Stopped(child),
                    port,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("dnsmasq did not start");
}

fn root(case: &str) -> String {
    common::repo(&format!("fixtures/dns/{case}"))
        .to_string_lossy()
        .into_owned()
}

/// `dns --root ROOT --resolver 127.0.0.1:PORT --format json` plus `extra`.
fn dns(d: &Dnsmasq, root: &str, extra: &[&str]) -> common::Run {
    let resolver = format!("127.0.0.1:{}", d.port);
    let mut args = vec![
        "dns",
        "--root",
        root,
        "--resolver",
        resolver.as_str(),
        "--timeout",
        "2",
    ];
    args.extend_from_slice(extra);
    common::run(&args)
}

fn json_findings(d: &Dnsmasq, root: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--format", "json", "--server-ip", "192.0.2.25"];
    args.extend_from_slice(extra);
    let run = dns(d, root, &args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    run.json()["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// (code, file, line) of every finding.
fn found(fs: &[Value]) -> Vec<(String, String, u64)> {
    common::codes(fs)
}

fn has(fs: &[Value], code: &str, file: &str, line: u64) -> bool {
    found(fs)
        .iter()
        .any(|(c, f, l)| c == code && f == file && *l == line)
}

fn message<'a>(fs: &'a [Value], code: &str) -> &'a str {
    fs.iter()
        .find(|f| f["code"] == code)
        .and_then(|f| f["message"].as_str())
        .unwrap_or_else(|| panic!("no {code} in {fs:?}"))
}

#[test]
fn postfix_mx_checks_point_at_the_line_listing_the_domain() {
    let Some(d) = dnsmasq() else { return };
    let fs = json_findings(&d, &root("postfix/bad"), &["--select", "DN1"]);
    let main = "etc/postfix/main.cf";
    let vd = "etc/postfix/vdomains";
    // moved.example's MX is the old server; gone.example does not exist.
    assert!(has(&fs, "DN101", main, 3), "{fs:?}");
    let m = message(&fs, "DN101");
    assert!(
        m.contains("mx.old.example") && m.contains("198.51.100.7"),
        "{m}"
    );
    assert!(m.contains("Relay access denied"), "{m}");
    assert!(has(&fs, "DN102", main, 3), "{fs:?}");
    // The table's entries, each at its own line.
    assert!(has(&fs, "DN103", vd, 2), "{fs:?}");
    assert!(has(&fs, "DN104", vd, 3), "IP literal MX: {fs:?}");
    assert!(has(&fs, "DN104", vd, 4), "CNAME MX: {fs:?}");
    assert!(has(&fs, "DN105", vd, 5), "{fs:?}");
    assert!(has(&fs, "DN101", vd, 6), "implicit MX elsewhere: {fs:?}");
    // backup.example: this server is its best MX and nothing routes it elsewhere.
    assert!(has(&fs, "DN106", main, 5), "{fs:?}");
    // dangling.example's other MX is this server: only the dangling host is reported.
    assert_eq!(
        found(&fs)
            .iter()
            .filter(|(_, f, l)| f == vd && *l == 2)
            .count(),
        1,
        "{fs:?}"
    );
    assert!(fs.iter().all(|f| f["mta"] == "postfix"));
}

#[test]
fn postfix_blocklists_are_asked_for_their_test_entries() {
    let Some(d) = dnsmasq() else { return };
    let fs = json_findings(&d, &root("postfix/bad"), &["--select", "DN2"]);
    let main = "etc/postfix/main.cf";
    assert!(has(&fs, "DN201", main, 8), "dead zone: {fs:?}");
    assert!(has(&fs, "DN202", main, 9), "lists everyone: {fs:?}");
    assert!(has(&fs, "DN203", main, 10), "refuses the resolver: {fs:?}");
    // Domain-based lists are asked for `test` and `invalid` (RFC 5782 section 5).
    assert!(has(&fs, "DN201", main, 11), "dead domain list: {fs:?}");
    assert!(
        has(&fs, "DN202", main, 12),
        "domain list lists everyone: {fs:?}"
    );
    assert!(fs.iter().any(|f| f["code"] == "DN201"
        && f["message"]
            .as_str()
            .unwrap()
            .contains("test.rhs.dead.example")));
    assert!(fs.iter().any(|f| f["code"] == "DN202"
        && f["message"]
            .as_str()
            .unwrap()
            .contains("every sender domain is refused")));
    // Unfiltered: every client is refused now, an error.
    let f203 = fs.iter().find(|f| f["code"] == "DN203").unwrap();
    assert_eq!(f203["severity"], "error");
    assert!(message(&fs, "DN203").contains("every client is refused now"));
    // bl.live.example answers 127.0.0.2 and not 127.0.0.1: nothing to say.
    assert!(!message(&fs, "DN201").contains("bl.live.example"));
    assert_eq!(fs.len(), 5, "{fs:?}");
}

#[test]
fn a_reply_filter_makes_the_spamhaus_refusal_a_warning() {
    let Some(d) = dnsmasq() else { return };
    let t = common::postfix_tree(
        "myhostname = mx1.hosted.example\nmydestination = good.example\nsmtpd_recipient_restrictions = reject_unauth_destination, reject_rbl_client zen.spamhaus.example=127.0.0.[2..11]\n",
        None,
    );
    let fs = json_findings(&d, &t.path().to_string_lossy(), &[]);
    assert_eq!(found(&fs).len(), 1, "{fs:?}");
    assert_eq!(fs[0]["code"], "DN203");
    assert_eq!(fs[0]["severity"], "warning");
    assert!(message(&fs, "DN203").contains("blocks nothing"));
}

#[test]
fn reverse_dns_of_each_server_address() {
    let Some(d) = dnsmasq() else { return };
    let run = dns(
        &d,
        &root("postfix/bad"),
        &[
            "--format",
            "json",
            "--select",
            "DN3",
            "--server-ip",
            "192.0.2.25",
            "--server-ip",
            "192.0.2.26",
            "--server-ip",
            "192.0.2.27",
        ],
    );
    let fs = run.json()["findings"].as_array().cloned().unwrap();
    let main = "etc/postfix/main.cf";
    // .26 has no PTR, .27's PTR name resolves elsewhere; all three are not the HELO name.
    assert!(message(&fs, "DN301").contains("192.0.2.26"), "{fs:?}");
    assert!(message(&fs, "DN301").contains("cannot find your reverse hostname"));
    assert!(
        message(&fs, "DN302").contains("unconfirmed.hosted.example"),
        "{fs:?}"
    );
    assert!(has(&fs, "DN303", main, 2), "{fs:?}");
    assert!(message(&fs, "DN303").contains("mail.hosted.example"));
    let codes: Vec<String> = found(&fs).into_iter().map(|c| c.0).collect();
    assert_eq!(codes.iter().filter(|c| *c == "DN301").count(), 1);
    assert_eq!(codes.iter().filter(|c| *c == "DN302").count(), 1);
}

#[test]
fn healthy_twins_have_no_findings() {
    let Some(d) = dnsmasq() else { return };
    for mta in ["postfix", "exim", "qmail"] {
        let run = dns(
            &d,
            &root(&format!("{mta}/good")),
            &["--server-ip", "192.0.2.25"],
        );
        assert_eq!(run.code, 0, "{mta}: {}{}", run.stdout, run.stderr);
        let fs = json_findings(&d, &root(&format!("{mta}/good")), &["--fail-on", "info"]);
        assert!(fs.is_empty(), "{mta}: {fs:?}");
    }
}

#[test]
fn exim_domain_lists_dnslists_and_primary_hostname() {
    let Some(d) = dnsmasq() else { return };
    let fs = json_findings(&d, &root("exim/bad"), &[]);
    let conf = "etc/exim4/exim4.conf";
    let vd = "etc/exim4/virtual_domains";
    assert!(has(&fs, "DN101", conf, 2), "{fs:?}");
    assert!(has(&fs, "DN102", vd, 1), "lsearch key at its line: {fs:?}");
    assert!(has(&fs, "DN105", vd, 2), "{fs:?}");
    assert!(has(&fs, "DN106", conf, 3), "{fs:?}");
    assert!(has(&fs, "DN201", conf, 6), "{fs:?}");
    assert!(has(&fs, "DN202", conf, 6), "{fs:?}");
    assert!(has(&fs, "DN203", conf, 7), "{fs:?}");
    assert!(has(&fs, "DN303", conf, 1), "{fs:?}");
    assert!(fs.iter().all(|f| f["mta"] == "exim"));
}

#[test]
fn qmail_rcpthosts_and_rblsmtpd() {
    let Some(d) = dnsmasq() else { return };
    let fs = json_findings(&d, &root("qmail/bad"), &[]);
    assert!(
        has(&fs, "DN101", "var/qmail/control/rcpthosts", 2),
        "{fs:?}"
    );
    assert!(
        has(&fs, "DN102", "var/qmail/control/morercpthosts", 1),
        "{fs:?}"
    );
    assert!(
        has(&fs, "DN104", "var/qmail/control/morercpthosts", 2),
        "{fs:?}"
    );
    assert!(has(&fs, "DN201", "service/qmail-smtpd/run", 4), "{fs:?}");
    assert!(has(&fs, "DN202", "service/qmail-smtpd/run", 4), "{fs:?}");
    // rblsmtpd -r reads TXT records (rblsmtpd(8)): a zone that answers only A is dead for it,
    // while `-r zone:text` (the A form) in the good twin is healthy.
    let aonly: Vec<_> = fs
        .iter()
        .filter(|f| {
            f["code"] == "DN201" && f["message"].as_str().unwrap().contains("bl.aonly.example")
        })
        .collect();
    assert_eq!(aonly.len(), 1, "{fs:?}");
    assert!(
        aonly[0]["message"]
            .as_str()
            .unwrap()
            .contains("no TXT record"),
        "{aonly:?}"
    );
    assert!(has(&fs, "DN303", "var/qmail/control/me", 1), "{fs:?}");
    // `.wildcard.example` matches subdomains: there is no one name to ask about.
    assert!(!fs.iter().any(|f| f["message"]
        .as_str()
        .unwrap_or("")
        .contains("wildcard.example")));
}

#[test]
fn domain_flag_and_formats_and_exit_codes() {
    let Some(d) = dnsmasq() else { return };
    let good = root("postfix/good");
    let run = dns(
        &d,
        &good,
        &["--server-ip", "192.0.2.25", "--domain", "moved.example"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("error[DN101]") && run.stdout.contains("moved.example"),
        "{}",
        run.stdout
    );
    let run = dns(
        &d,
        &good,
        &[
            "--server-ip",
            "192.0.2.25",
            "--domain",
            "moved.example",
            "--format",
            "nagios",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stdout.starts_with("RELAYDOCTOR CRITICAL"),
        "{}",
        run.stdout
    );
    let run = dns(
        &d,
        &good,
        &["--server-ip", "192.0.2.25", "--format", "nagios"],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.starts_with("RELAYDOCTOR OK"), "{}", run.stdout);
    let run = dns(&d, &good, &["--server-ip", "192.0.2.25", "--quiet"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    let run = dns(
        &d,
        &root("postfix/bad"),
        &["--server-ip", "192.0.2.25", "--format", "sarif"],
    );
    assert_eq!(run.code, 1);
    assert!(run.json()["runs"][0]["results"].as_array().unwrap().len() > 5);
    let run = dns(
        &d,
        &root("postfix/bad"),
        &[
            "--server-ip",
            "192.0.2.25",
            "--fail-on",
            "error",
            "--select",
            "DN103",
        ],
    );
    assert_eq!(
        run.code, 0,
        "a warning below --fail-on error: {}",
        run.stdout
    );
}

#[test]
fn a_silent_resolver_gives_could_not_check_and_nagios_unknown() {
    // A UDP socket that never answers (and no TCP listener): every query times out.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let resolver = silent.local_addr().unwrap().to_string();
    let bad = root("postfix/bad");
    let base = [
        "dns",
        "--root",
        bad.as_str(),
        "--resolver",
        resolver.as_str(),
        "--timeout",
        "0.3",
        "--server-ip",
        "192.0.2.25",
    ];
    let start = Instant::now();
    let run = common::run(&[&base[..], &["--format", "json"]].concat());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "timeouts are bounded"
    );
    assert_eq!(run.code, 0, "could-not-check is info: {}", run.stderr);
    let fs = run.json()["findings"].as_array().cloned().unwrap();
    assert!(!fs.is_empty());
    for f in &fs {
        assert_eq!(f["severity"], "info", "{f}");
        assert!(
            ["DN100", "DN200", "DN300"].contains(&f["code"].as_str().unwrap()),
            "{f}"
        );
    }
    assert!(has(&fs, "DN100", "etc/postfix/main.cf", 3), "{fs:?}");
    assert!(has(&fs, "DN200", "etc/postfix/main.cf", 8), "{fs:?}");
    let run = common::run(&[&base[..], &["--format", "nagios"]].concat());
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        run.stdout.starts_with("RELAYDOCTOR UNKNOWN"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_snapshot_needs_server_ip_and_bad_flags_are_refused() {
    let run = common::run(&[
        "dns",
        "--root",
        &root("postfix/good"),
        "--resolver",
        "127.0.0.1:9",
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--server-ip"), "{}", run.stderr);
    let run = common::run(&[
        "dns",
        "--root",
        &root("postfix/good"),
        "--server-ip",
        "192.0.2.25",
        "--resolver",
        "dns.example",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--resolver dns.example"),
        "{}",
        run.stderr
    );
    let run = common::run(&[
        "dns",
        "--root",
        &root("postfix/good"),
        "--server-ip",
        "192.0.2.25",
        "--resolver",
        "127.0.0.1:9",
        "--format",
        "nagios",
        "--select",
        "XX9",
    ]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(Path::new(&root("postfix/good")).is_dir());
}

/// `--plesk`: the domains with mail service in a real psa database (a private MariaDB with
/// fixtures/plesk/mail-domains.sql) are checked like the configuration's; domains whose mail
/// service is off, disabled domains and web-only aliases are not.
#[test]
fn plesk_mail_domains_are_checked_with_plesk() {
    let Some(d) = dnsmasq() else { return };
    let Some(db_server) = plesk_support::shared() else {
        assert!(std::env::var_os("CI").is_none(), "MariaDB is not installed");
        eprintln!("SKIP: MariaDB not installed");
        return;
    };
    let db = db_server.database("dns_plesk");
    db_server.source(&db, &plesk_support::fixture("mail-domains.sql"));
    let resolver = format!("127.0.0.1:{}", d.port);
    let good = root("postfix/good");
    let base = [
        "dns",
        "--root",
        &good,
        "--resolver",
        &resolver,
        "--timeout",
        "2",
        "--server-ip",
        "192.0.2.25",
    ];
    let mut c = plesk_support::relaydoctor(&db_server.url(&db));
    c.args(base).args(["--plesk", "--format", "json"]);
    let out = plesk_support::run(c);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let fs = v["findings"].as_array().unwrap();
    let about = |name: &str| {
        fs.iter()
            .filter(|f| f["message"].as_str().unwrap().contains(name))
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(about("moved.example"), ["DN101"], "{fs:?}");
    assert_eq!(about("nullmx.example"), ["DN105"], "{fs:?}");
    for off in [
        "implicit-old.example",
        "dangling.example",
        "cname.example",
        "literal.example",
        "gone.example",
    ] {
        assert!(about(off).is_empty(), "{off} has no mail service: {fs:?}");
    }
    assert!(fs.iter().all(|f| f["mta"] == "plesk"), "{fs:?}");
    // Text output says where the domains came from (notes go to stderr with text only).
    let mut c = plesk_support::relaydoctor(&db_server.url(&db));
    c.args(base).arg("--plesk");
    let out = plesk_support::run(c);
    assert!(
        out.stderr
            .contains("3 domains with mail service from Plesk's psa database"),
        "{}",
        out.stderr
    );

    // Without --plesk a snapshot's database is not read: the good twin stays clean.
    let mut c = plesk_support::relaydoctor(&db_server.url(&db));
    c.args(base);
    assert_eq!(plesk_support::run(c).code, 0);

    // --plesk and a database that cannot be reached: an error (exit 2), said in words,
    // without the password.
    let mut c = plesk_support::relaydoctor(&format!(
        "mysql://admin:{}@127.0.0.1:1/psa",
        plesk_support::PASSWORD
    ));
    c.args(base).arg("--plesk");
    let out = plesk_support::run(c);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.contains("cannot read Plesk's mail domains"),
        "{}",
        out.stderr
    );
}
