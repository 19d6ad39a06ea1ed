//! Port 465 without implicit TLS (issue #21 item 7): PF112 (Postfix) and EX180 (Exim) in the
//! forms the fixtures under fixtures/rules/ do not cover. The behaviour behind both was
//! checked against the real daemons on loopback (Postfix 3.7 master, Exim 4.96 -bdf): without
//! wrapper mode / tls_on_connect_ports the port greets `220` in clear and `openssl s_client`
//! fails with "wrong version number"; with it the 220 arrives inside TLS.

mod common;

use common::{lint_json, postfix_tree, tree, with_code};

const MASTER_TAIL: &str = "pickup    unix  n       -       y       60      1       pickup\n";

fn pf112(main: &str, master: &str) -> Vec<serde_json::Value> {
    let t = postfix_tree(main, Some(&format!("{master}{MASTER_TAIL}")));
    let fs = lint_json(t.path(), &[]);
    with_code(&fs, "PF112").into_iter().cloned().collect()
}

#[test]
fn postfix_465_listener_forms() {
    let main = "compatibility_level = 3.6\nmydestination = example.com\n";
    // An address:port entry without wrapper mode.
    let fs = pf112(main, "127.0.0.1:465 inet n - y - - smtpd\n");
    assert_eq!(fs.len(), 1, "{fs:#?}");
    assert_eq!(fs[0]["line"], 1);
    // `-o smtpd_tls_wrappermode=no`: the fix turns that value into yes.
    let fs = pf112(
        main,
        "submissions inet n - y - - smtpd\n  -o smtpd_tls_wrappermode=no\n",
    );
    assert_eq!(fs.len(), 1, "{fs:#?}");
    let edit = &fs[0]["fix"]["edits"][0];
    assert_eq!(edit["replacement"], "yes", "{fs:#?}");
    // main.cf's wrapper mode applies to every listener that does not override it.
    let fs = pf112(
        &format!("{main}smtpd_tls_wrappermode = yes\n"),
        "smtps inet n - y - - smtpd\n",
    );
    assert!(fs.is_empty(), "{fs:#?}");
    // Port 587 (STARTTLS) and a non-smtpd service on 465 are not this rule's business.
    let fs = pf112(
        main,
        "submission inet n - y - - smtpd\n465 inet n - y - 1 postscreen\n",
    );
    assert!(fs.is_empty(), "{fs:#?}");
}

fn ex180(main: &str) -> Vec<serde_json::Value> {
    let conf = format!("primary_hostname = mx.example.org\n{main}\nbegin acl\n");
    let t = tree(&[("etc/exim/exim.conf", conf.as_str())]);
    let fs = lint_json(t.path(), &[]);
    with_code(&fs, "EX180").into_iter().cloned().collect()
}

#[test]
fn exim_465_listener_forms() {
    // A port on a local_interfaces address, in both notations.
    for li in ["<; 192.0.2.1.465 ; 127.0.0.1.25", "<; [192.0.2.1]:465"] {
        let fs = ex180(&format!("local_interfaces = {li}\n"));
        assert_eq!(fs.len(), 1, "{li}: {fs:#?}");
        assert_eq!(fs[0]["line"], 2, "{li}: points at local_interfaces");
    }
    // By name, with tls_on_connect_ports set only under a macro that is not defined.
    let fs = ex180(
        "daemon_smtp_ports = smtp : smtps\n.ifdef SMTPS_ON\ntls_on_connect_ports = 465\n.endif\n",
    );
    assert_eq!(fs.len(), 1, "{fs:#?}");
    // tls_on_connect_ports set, to other ports.
    let fs = ex180("daemon_smtp_ports = 25 : 465\ntls_on_connect_ports = 10465\n");
    assert_eq!(fs.len(), 1, "{fs:#?}");
    assert!(fs[0].get("fix").is_none_or(|f| f.is_null()), "{fs:#?}");
    // Every interface has its own port: daemon_smtp_ports's 465 is not listened on.
    let fs = ex180("daemon_smtp_ports = 25 : 465\nlocal_interfaces = <; 127.0.0.1.25 ; [::1]:25\n");
    assert!(fs.is_empty(), "{fs:#?}");
    // TLS on connect by service name.
    let fs = ex180("daemon_smtp_ports = 25 : 465\ntls_on_connect_ports = smtps\n");
    assert!(fs.is_empty(), "{fs:#?}");
}
