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
use relaydoctor::postfix::policy::{self, Client};
use relaydoctor::relay::{ClientClass, RecipientClass, Verdict};
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
];

/// Compares relaydoctor's decision with the running smtpd for every listener, client class and
/// recipient class of one scenario; returns (compared, depends, mismatches).
fn compare(sc: &Scenario, run: &smtpd_support::Running) -> (usize, usize, Vec<String>) {
    let ctx = Context::new(
        Root::live(),
        Options {
            postfix_version: Some("3.7".into()),
            ..Default::default()
        },
    );
    let mut f = Vec::new();
    let model = Model::load(&ctx, &run.conf, &mut f);
    let (mut compared, mut depends, mut mismatches) = (0, 0, Vec::new());
    for (li, si) in model.smtpd_listeners().iter().enumerate() {
        let Some(port) = run.ports.get(li) else {
            continue;
        };
        for cc in ClientClass::ALL {
            let (addr, login) = match cc {
                ClientClass::Stranger => ("203.0.113.5", None),
                ClientClass::Trusted => ("192.0.2.7", None),
                ClientClass::Authenticated => ("203.0.113.5", Some("alice")),
            };
            for (rc, rcpt) in [
                (RecipientClass::Local, "root@example.com"),
                (RecipientClass::Relay, "someone@relay.example"),
                (RecipientClass::External, "someone@external.example"),
            ] {
                let class =
                    policy::classify(&model, *si, relaydoctor::relay::domain_of(rcpt).as_str());
                if class != rc {
                    continue; // e.g. no relay_domains in this scenario
                }
                let d = policy::evaluate(&model, *si, Client::of(cc), rc, rcpt);
                let real = smtpd_support::ask(*port, addr, login, rcpt);
                let real_class = real
                    .as_deref()
                    .map(smtpd_support::reply_class)
                    .unwrap_or(Verdict::Unavailable);
                if d.result == Verdict::Depends {
                    depends += 1;
                    continue;
                }
                compared += 1;
                // The class must match, and so must the numeric reply code when there is one.
                let real_code: Option<u16> = real
                    .as_deref()
                    .and_then(|l| l.get(..3))
                    .and_then(|c| c.parse().ok());
                let code_differs = d.result != Verdict::Unavailable && real_code != d.code;
                if d.result != real_class || code_differs {
                    mismatches.push(format!(
                        "{} / listener {} / {} -> {}: smtpd {:?} ({}), relaydoctor {:?} ({})",
                        sc.name,
                        li,
                        cc.as_str(),
                        rc.as_str(),
                        real_class,
                        real.unwrap_or_else(|| "connection closed".into()),
                        d.result,
                        d.reply_line()
                    ));
                }
            }
        }
    }
    (compared, depends, mismatches)
}

#[test]
fn decisions_match_real_smtpd() {
    let Some(master) = smtpd_support::require() else {
        return;
    };
    let mut mismatches = Vec::new();
    let mut compared = 0;
    let mut depends = 0;
    for (n, sc) in SCENARIOS.iter().enumerate() {
        let run = match smtpd_support::start(&master, sc, smtpd_support::base_port(n)) {
            Ok(r) => r,
            Err(e) => {
                mismatches.push(e);
                continue;
            }
        };
        let (c, d, m) = compare(sc, &run);
        compared += c;
        depends += d;
        mismatches.extend(m);
    }
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
