//! Differential test: relaydoctor's relay decisions against a real smtpd (Debian's Postfix).
//!
//! For each scenario, the configuration is run by a private Postfix master (`master -c DIR
//! -d`, its own queue directory, loopback ports, `smtpd_authorized_xclient_hosts =
//! 127.0.0.0/8`), and an SMTP client asks every listener, for every client class (XCLIENT
//! ADDR=outside or inside mynetworks, LOGIN=alice for the authenticated class) and recipient
//! class, what it answers to RCPT TO. The reply class (2xx accept, 4xx defer, 5xx reject, no
//! answer unavailable) must equal relaydoctor's decision. `depends` decisions are counted and
//! reported, not compared.

mod smtpd_support;

use relaydoctor::context::{Context, Options, Root};
use relaydoctor::postfix::model::Model;
use relaydoctor::relay::Verdict;
use smtpd_support::Scenario;

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "default relay list, submission with SASL",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "compatibility level 0: empty default relay list, recipient list decides",
        main: "mydestination = $myhostname, localhost, example.com\nsmtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "misordered: reject_unauth_destination before permit_sasl_authenticated",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination, permit_sasl_authenticated\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "open relay through static:OK",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, check_client_access static:OK, reject_unauth_destination\n",
        listeners: &[""],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "safety check fails: no reject in relay or recipient list",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions =\nsmtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated\n",
        listeners: &[""],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "defer_unauth_destination and relay_domains",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nrelay_domains = relay.example\nsmtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "submission override list: permit_sasl_authenticated,reject",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "restriction class in the recipient list, relay before recipient",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_restriction_classes = office\noffice = permit_mynetworks, reject\nsmtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination\nsmtpd_recipient_restrictions = office\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "unknown restriction name",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destinaton, reject_unauth_destination\n",
        listeners: &[""],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "relay list below recipient list at level 2 (relay after recipient)",
        main: "compatibility_level = 2\nmydestination = $myhostname, localhost, example.com\nsmtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination\nsmtpd_relay_restrictions = permit_sasl_authenticated, reject\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "check_relay_domains (removed in 3.9, still working in 3.7)",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nrelay_domains = relay.example\nsmtpd_relay_restrictions =\nsmtpd_recipient_restrictions = permit_mynetworks, check_relay_domains\n",
        listeners: &[""],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "warn_if_reject only logs; permit_auth_destination",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, warn_if_reject reject_unauth_destination, permit_auth_destination, reject\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "client list with reject overrides later permits",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_client_restrictions = permit_mynetworks, reject\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "domain lists read from /file/name (match_list(3) files)",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, $config_directory/local_domains\nrelay_domains = $config_directory/relay_domains\n",
        listeners: &[""],
        files: &[
            ("local_domains", "# hosted here\nexample.com\n"),
            ("relay_domains", "other.example\nrelay.example\n"),
        ],
        postmap: &[],
    },
    Scenario {
        name: "hash client map (postmap) grants OK to a parent network before reject_unauth_destination",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, check_client_access hash:$config_directory/clients, reject_unauth_destination\n",
        listeners: &[""],
        files: &[("clients", "# partner office\n203.0.113 OK\n")],
        postmap: &["clients"],
    },
    Scenario {
        name: "hash client map: DUNNO on the address stops the parent-network lookup",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, check_client_access hash:$config_directory/clients, reject_unauth_destination\n",
        listeners: &[""],
        files: &[("clients", "203.0.113.5 DUNNO\n203.0.113 OK\n")],
        postmap: &["clients"],
    },
    Scenario {
        name: "cidr client map: 0.0.0.0/0 OK is an open relay; first match wins",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, check_client_access cidr:$config_directory/clients.cidr, reject_unauth_destination\n",
        listeners: &["", "  -o smtpd_relay_restrictions=permit_mynetworks,check_client_access,cidr:$config_directory/other.cidr,reject_unauth_destination\n"],
        files: &[
            ("clients.cidr", "192.0.2.0/24 REJECT\n0.0.0.0/0 OK\n"),
            ("other.cidr", "if !203.0.113.0/24\n0.0.0.0/0 OK\nendif\n203.0.113.0/24 DUNNO\n"),
        ],
        postmap: &[],
    },
    Scenario {
        name: "regexp maps: first match wins, if blocks, case-insensitive by default",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, check_recipient_access regexp:$config_directory/rcpt.re, check_client_access regexp:$config_directory/clients.re, reject_unauth_destination\n",
        listeners: &[""],
        files: &[
            ("rcpt.re", "if /@RELAY\\.example$/\n/^someone@/ OK\nendif\n/^root@/ REJECT no mail for root\n"),
            ("clients.re", "/^203\\.0\\.113\\.5$/ DUNNO\n/^203\\./ OK\n"),
        ],
        postmap: &[],
    },
    Scenario {
        name: "texthash sender map: a forged sender domain gets OK",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, check_sender_access texthash:$config_directory/senders, reject_unauth_destination\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
        files: &[("senders", "sender.test OK\n")],
        postmap: &[],
    },
    Scenario {
        name: "inline recipient map: OK for one external domain; parent domain key",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, check_recipient_access inline:{ external.example=OK }, reject_unauth_destination\n",
        listeners: &["", "  -o smtpd_relay_restrictions=check_recipient_access,texthash:$config_directory/rcpt,reject_unauth_destination\n"],
        files: &[("rcpt", "example OK\n")],
        postmap: &[],
    },
    Scenario {
        name: "mynetworks = 0.0.0.0/0 trusts the whole internet",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nmynetworks = 0.0.0.0/0\n",
        listeners: &[""],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "mynetworks_style = class without mynetworks",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nmynetworks_style = class\n",
        listeners: &[""],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "mynetworks from a file and from a cidr table",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nmynetworks = $config_directory/network_table\n",
        listeners: &["", "  -o mynetworks=cidr:$config_directory/nets.cidr\n"],
        files: &[
            ("network_table", "# office\n127.0.0.0/8\n192.0.2.0/24 !203.0.113.5\n203.0.113.0/24\n"),
            ("nets.cidr", "127.0.0.0/8 x\n203.0.113.0/24 x\n"),
        ],
        postmap: &[],
    },
    Scenario {
        name: "relay_domains matching everything (static table)",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nrelay_domains = static:ALL\n",
        listeners: &[""],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "re-injection listener with permissive overrides next to a sane port 25",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\n",
        listeners: &["", "  -o smtpd_client_restrictions=\n  -o smtpd_recipient_restrictions=permit_mynetworks,reject\n  -o smtpd_relay_restrictions=\n  -o mynetworks=0.0.0.0/0\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "SASL not enabled on the submission listener",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\n",
        listeners: &["", "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "POP-before-SMTP map in smtpd_recipient_restrictions at compatibility_level 0",
        main: "mydestination = $myhostname, localhost, example.com\nsmtpd_recipient_restrictions = permit_mynetworks, check_client_access hash:$config_directory/popbsmtp, reject_unauth_destination\n",
        listeners: &[""],
        files: &[("popbsmtp", "203.0.113.5 1700000000\n")],
        postmap: &["popbsmtp"],
    },
    Scenario {
        name: "POP-before-SMTP map in smtpd_recipient_restrictions at compatibility_level 2",
        main: "compatibility_level = 2\nmydestination = $myhostname, localhost, example.com\nsmtpd_recipient_restrictions = permit_mynetworks, check_client_access hash:$config_directory/popbsmtp, reject_unauth_destination\n",
        listeners: &[""],
        files: &[("popbsmtp", "203.0.113.5 1700000000\n")],
        postmap: &["popbsmtp"],
    },
    Scenario {
        name: "POP-before-SMTP map in smtpd_recipient_restrictions at compatibility_level 3.6",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_recipient_restrictions = permit_mynetworks, check_client_access hash:$config_directory/popbsmtp, reject_unauth_destination\n",
        listeners: &["", "  -o smtpd_relay_restrictions=\n"],
        files: &[("popbsmtp", "203.0.113.5 1700000000\n")],
        postmap: &["popbsmtp"],
    },
    Scenario {
        name: "access map returning restriction names and a restriction class",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_restriction_classes = partner\npartner = permit_auth_destination, reject\nsmtpd_relay_restrictions = permit_mynetworks, check_client_access cidr:$config_directory/c.cidr, reject_unauth_destination\n",
        listeners: &["", "  -o smtpd_relay_restrictions=permit_mynetworks,check_client_access,cidr:$config_directory/d.cidr,reject_unauth_destination\n"],
        files: &[
            ("c.cidr", "203.0.113.0/24 partner\n"),
            ("d.cidr", "203.0.113.0/24 permit_auth_destination, permit\n"),
        ],
        postmap: &[],
    },
    Scenario {
        name: "4NN/5NN text with enhanced codes; REJECT and DEFER text",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nrelay_domains = relay.example\nsmtpd_recipient_restrictions = check_recipient_access hash:$config_directory/rcpt\n",
        listeners: &["", "  -o smtpd_recipient_restrictions=check_client_access,texthash:$config_directory/clients\n"],
        files: &[
            ("rcpt", "external.example 550 5.7.9 No relaying for you\nrelay.example 451 try later\nexample.com REJECT 5.1.1 gone\n"),
            ("clients", "203.0.113.5 DEFER 4.7.2 slow down\n192.0.2.7 REJECT\n"),
        ],
        postmap: &["rcpt"],
    },
    Scenario {
        name: "DEFER_IF_PERMIT and DEFER_IF_REJECT actions",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_client_restrictions = check_client_access cidr:$config_directory/c.cidr\n",
        listeners: &["", "  -o smtpd_client_restrictions=check_client_access,cidr:$config_directory/r.cidr\n"],
        files: &[
            ("c.cidr", "203.0.113.0/24 DEFER_IF_PERMIT not yet\n"),
            ("r.cidr", "203.0.113.0/24 DEFER_IF_REJECT maybe later\n"),
        ],
        postmap: &[],
    },
    Scenario {
        name: "DISCARD permits; WARN, HOLD, REDIRECT, FILTER, PREPEND leave the reply alone",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, check_client_access texthash:$config_directory/c, check_sender_access texthash:$config_directory/s, reject_unauth_destination\n",
        listeners: &["", "  -o smtpd_relay_restrictions=permit_mynetworks,check_sender_access,texthash:$config_directory/s,reject_unauth_destination\n"],
        files: &[
            ("c", "203.0.113.5 DISCARD spam trap\n"),
            ("s", "sender@sender.test HOLD\nsender.test WARN x\n"),
        ],
        postmap: &[],
    },
    Scenario {
        name: "action values: PERMIT, all digits, a lookup table in the value, static:REJECT in the sender list",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, check_client_access texthash:$config_directory/c, reject_unauth_destination\n",
        listeners: &[
            "",
            "  -o smtpd_relay_restrictions=permit_mynetworks,check_client_access,texthash:$config_directory/d,reject_unauth_destination\n",
            "  -o smtpd_sender_restrictions=permit_mynetworks,static:REJECT\n  -o smtpd_relay_restrictions=check_client_access,static:OK,reject\n",
        ],
        files: &[
            ("c", "203.0.113.5 PERMIT\n"),
            ("d", "203.0.113.5 hash:/etc/postfix/other\n192.0.2.7 4711\n"),
        ],
        postmap: &[],
    },
    Scenario {
        name: "defer_if_permit and defer_if_reject restrictions in a class",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_restriction_classes = grey\ngrey = defer_if_permit\nsmtpd_client_restrictions = permit_mynetworks, grey\n",
        listeners: &["", "  -o smtpd_client_restrictions=permit_mynetworks,defer_if_reject\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "client without reverse DNS: reject_unknown_client_hostname / reverse_client_hostname",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_client_restrictions = permit_mynetworks, reject_unknown_client_hostname\n",
        listeners: &["", "  -o smtpd_client_restrictions=reject_unknown_reverse_client_hostname\n  -o unknown_client_reject_code=550\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "TLS: reject_plaintext_session, permit_tls_clientcerts without TLS, encrypt listener",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_tls_cert_file = /etc/ssl/certs/ssl-cert-snakeoil.pem\nsmtpd_tls_key_file = /etc/ssl/private/ssl-cert-snakeoil.key\nsmtpd_tls_security_level = may\nsmtpd_tls_ask_ccert = yes\nsmtpd_relay_restrictions = permit_tls_all_clientcerts, permit_mynetworks, reject_unauth_destination\n",
        listeners: &[
            "",
            "  -o smtpd_recipient_restrictions=permit_mynetworks,reject_plaintext_session\n",
            "  -o smtpd_tls_security_level=encrypt\n",
        ],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "unlisted recipients: virtual mailbox and relay recipient tables",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nvirtual_mailbox_domains = relay.example\nvirtual_mailbox_maps = texthash:$config_directory/vmbox\nvirtual_transport = error\n",
        listeners: &[
            "",
            "  -o virtual_mailbox_domains=\n  -o relay_domains=relay.example\n  -o relay_recipient_maps=texthash:$config_directory/vmbox\n",
            "  -o smtpd_reject_unlisted_recipient=no\n  -o smtpd_recipient_restrictions=permit_mynetworks,reject_unlisted_recipient\n",
        ],
        files: &[("vmbox", "other@relay.example x\n")],
        postmap: &[],
    },
    Scenario {
        name: "unlisted recipients: virtual alias domain, alias map entry",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost\nvirtual_alias_domains = relay.example, example.com\nvirtual_alias_maps = texthash:$config_directory/valias\n",
        listeners: &[""],
        files: &[("valias", "root@example.com root@localhost\n")],
        postmap: &[],
    },
    Scenario {
        name: "address verification pending: reject_unverified_sender / recipient",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\naddress_verify_poll_count = 1\nsmtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination, reject_unverified_recipient\n",
        listeners: &["", "  -o smtpd_sender_restrictions=reject_unverified_sender\n  -o smtpd_recipient_restrictions=\n"],
        files: &[],
        postmap: &[],
    },
    Scenario {
        name: "sender login maps: reject_sender_login_mismatch",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_sender_login_maps = texthash:$config_directory/logins\nsmtpd_sender_restrictions = reject_sender_login_mismatch\n",
        listeners: &[
            "  -o smtpd_sasl_auth_enable=yes\n",
            "  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_sender_login_maps=texthash:$config_directory/alice\n  -o smtpd_sender_restrictions=reject_authenticated_sender_login_mismatch\n",
            "",
        ],
        files: &[("logins", "sender@sender.test bob\n"), ("alice", "@sender.test alice, carol\n")],
        postmap: &[],
    },
    Scenario {
        name: "HELO and address syntax, DNS lists, pipelining",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_helo_required = yes\nsmtpd_helo_restrictions = reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname\nsmtpd_sender_restrictions = reject_non_fqdn_sender\nsmtpd_relay_restrictions = reject_unauth_pipelining, reject_non_fqdn_recipient, permit_mynetworks, reject_unauth_destination, reject_multi_recipient_bounce, reject_rhsbl_client dbl.example, reject_unknown_recipient_domain\n",
        listeners: &["", "  -o smtpd_client_restrictions=permit_inet_interfaces,sleep,0\n"],
        files: &[],
        postmap: &[],
    },
];

/// Compares relaydoctor's decision with the running smtpd for every listener, client class and
/// recipient of one scenario; returns (compared, depends, mismatches).
fn compare(sc: &Scenario, run: &smtpd_support::Running) -> (usize, usize, Vec<String>) {
    let t = smtpd_support::compare(sc.name, run, &smtpd_support::clients(None), &RCPTS);
    (t.compared, t.depends.len(), t.mismatches)
}

const RCPTS: [&str; 3] = [
    "root@example.com",
    "someone@relay.example",
    "someone@external.example",
];

/// Scenarios run at the same time (each its own master and ports): the time is mostly
/// spent waiting for masters and smtpd processes, not computing.
const PARALLEL: usize = 8;

#[test]
fn decisions_match_real_smtpd() {
    let Some(master) = smtpd_support::require() else {
        return;
    };
    assert!(
        SCENARIOS.len() >= 25,
        "the issue asks for at least 25 scenarios"
    );
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(sc) = SCENARIOS.get(n) else {
                    break;
                };
                let r = match smtpd_support::start(&master, sc) {
                    Ok(run) => compare(sc, &run),
                    Err(e) => (0, 0, vec![e]),
                };
                results.lock().unwrap_or_else(|p| p.into_inner()).push(r);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let compared: usize = results.iter().map(|r| r.0).sum();
    let depends: usize = results.iter().map(|r| r.1).sum();
    let mismatches: Vec<String> = results.into_iter().flat_map(|r| r.2).collect();
    eprintln!(
        "smtpd differential: {} scenarios, {compared} decisions compared, {depends} depends (not compared), {} mismatches",
        SCENARIOS.len(),
        mismatches.len()
    );
    assert!(compared > 0);
    assert!(
        mismatches.is_empty(),
        "relaydoctor differs from smtpd:\n{}",
        mismatches.join("\n")
    );
}

/// This machine's address on the default route (no packet is sent), if it has one.
fn own_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    s.connect(("192.0.2.1", 9)).ok()?;
    let a = s.local_addr().ok()?.ip();
    (!a.is_loopback()).then_some(a)
}

/// Listener reachability against a real master: a listener named `127.0.0.1:PORT` (the
/// harness's) refuses connections to this machine's other address and, with inet_protocols
/// = ipv4, to ::1; relaydoctor calls both `unavailable` and the loopback client reachable.
#[test]
fn unreachable_listeners_match_real_master() {
    use relaydoctor::postfix::reach;
    let Some(master) = smtpd_support::require() else {
        return;
    };
    let sc = &SCENARIOS[0];
    let run = smtpd_support::start(&master, sc).expect("start");
    let ctx = Context::new(Root::live(), Options::default());
    let model = Model::load(&ctx, &run.conf, &mut Vec::new());
    let si = model.smtpd_listeners()[0];
    let port = run.ports[0];
    let connects = |ip: std::net::IpAddr| {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::new(ip, port),
            std::time::Duration::from_secs(3),
        )
        .is_ok()
    };
    let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    assert!(connects(lo));
    assert!(reach::unreachable(&model, si, Some(lo)).is_none());
    let v6: std::net::IpAddr = "::1".parse().unwrap();
    assert!(!connects(v6));
    assert!(reach::unreachable(&model, si, Some(v6)).is_some());
    if let Some(own) = own_address() {
        assert!(!connects(own), "{own}:{port} should refuse");
        let d = reach::unreachable(&model, si, Some(own)).expect("unavailable");
        assert_eq!(d.result, Verdict::Unavailable);
    }
}
