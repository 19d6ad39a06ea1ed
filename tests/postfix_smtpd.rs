//! Differential test: relaydoctor's relay decisions against a real smtpd (Debian's Postfix).
//!
//! For each scenario, the configuration is run by a private Postfix master (`master -c DIR
//! -d`, its own queue directory, loopback ports, `smtpd_authorized_xclient_hosts =
//! 127.0.0.0/8`), and an SMTP client asks every listener, for every client class (XCLIENT
//! ADDR=outside or inside mynetworks, LOGIN=alice for the authenticated class) and recipient
//! class, what it answers to RCPT TO. The reply class (2xx accept, 4xx defer, 5xx reject, no
//! answer unavailable) must equal relaydoctor's decision. `depends` decisions are counted and
//! reported, not compared.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use relaydoctor::context::{Context, Options, Root};
use relaydoctor::postfix::model::Model;
use relaydoctor::postfix::policy::{self, Client};
use relaydoctor::relay::{ClientClass, RecipientClass, Verdict};

const INTERNAL: &str = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

/// (name, main.cf, listeners: (service args after the 8 fields' command, -o lines))
struct Scenario {
    name: &'static str,
    main: &'static str,
    /// Extra `-o` lines per listener: [port-25-like, submission-like].
    listeners: &'static [&'static str],
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "default relay list, submission with SASL",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
    },
    Scenario {
        name: "compatibility level 0: empty default relay list, recipient list decides",
        main: "mydestination = $myhostname, localhost, example.com\nsmtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
    },
    Scenario {
        name: "misordered: reject_unauth_destination before permit_sasl_authenticated",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination, permit_sasl_authenticated\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
    },
    Scenario {
        name: "open relay through static:OK",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, check_client_access static:OK, reject_unauth_destination\n",
        listeners: &[""],
    },
    Scenario {
        name: "safety check fails: no reject in relay or recipient list",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions =\nsmtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated\n",
        listeners: &[""],
    },
    Scenario {
        name: "defer_unauth_destination and relay_domains",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nrelay_domains = relay.example\nsmtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
    },
    Scenario {
        name: "submission override list: permit_sasl_authenticated,reject",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"],
    },
    Scenario {
        name: "restriction class in the recipient list, relay before recipient",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_restriction_classes = office\noffice = permit_mynetworks, reject\nsmtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination\nsmtpd_recipient_restrictions = office\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
    },
    Scenario {
        name: "unknown restriction name",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destinaton, reject_unauth_destination\n",
        listeners: &[""],
    },
    Scenario {
        name: "relay list below recipient list at level 2 (relay after recipient)",
        main: "compatibility_level = 2\nmydestination = $myhostname, localhost, example.com\nsmtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination\nsmtpd_relay_restrictions = permit_sasl_authenticated, reject\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
    },
    Scenario {
        name: "check_relay_domains (removed in 3.9, still working in 3.7)",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nrelay_domains = relay.example\nsmtpd_relay_restrictions =\nsmtpd_recipient_restrictions = permit_mynetworks, check_relay_domains\n",
        listeners: &[""],
    },
    Scenario {
        name: "warn_if_reject only logs; permit_auth_destination",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_relay_restrictions = permit_mynetworks, warn_if_reject reject_unauth_destination, permit_auth_destination, reject\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n"],
    },
    Scenario {
        name: "client list with reject overrides later permits",
        main: "compatibility_level = 3.6\nmydestination = $myhostname, localhost, example.com\nsmtpd_client_restrictions = permit_mynetworks, reject\n",
        listeners: &["", "  -o smtpd_sasl_auth_enable=yes\n  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"],
    },
];

fn master_binary() -> Option<PathBuf> {
    let out = Command::new("postconf")
        .args(["-h", "daemon_directory"])
        .output()
        .ok()?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let p = Path::new(&dir).join("master");
    p.exists().then_some(p)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

struct Master(Child);
impl Drop for Master {
    fn drop(&mut self) {
        // Only the master this test started, by its own handle; its children exit with it.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn reply_class(line: &str) -> Verdict {
    match line.as_bytes().first() {
        Some(b'2') => Verdict::Accept,
        Some(b'4') => Verdict::Defer,
        Some(b'5') => Verdict::Reject,
        _ => Verdict::Unavailable,
    }
}

/// RCPT reply for one client on `port`; `None` when the connection closed.
fn ask(port: u16, addr: &str, login: Option<&str>, rcpt: &str) -> Option<String> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut w = s.try_clone().ok()?;
    let mut r = BufReader::new(s);
    let mut read = || -> Option<String> {
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).ok()? == 0 {
                return None;
            }
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return Some(l.trim().to_string());
            }
        }
    };
    read()?;
    let mut cmd = |c: &str| -> Option<String> {
        w.write_all(format!("{c}\r\n").as_bytes()).ok()?;
        read()
    };
    cmd("EHLO client.test")?;
    let x = match login {
        Some(l) => format!("XCLIENT ADDR={addr} NAME=[UNAVAILABLE] LOGIN={l}"),
        None => format!("XCLIENT ADDR={addr} NAME=[UNAVAILABLE]"),
    };
    cmd(&x)?;
    cmd("EHLO client.test")?;
    cmd("MAIL FROM:<sender@sender.test>")?;
    cmd(&format!("RCPT TO:<{rcpt}>"))
}

fn wait_listening(port: u16) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn decisions_match_real_smtpd() {
    let master = master_binary();
    if master.is_none() || !is_root() {
        let why = if master.is_none() {
            "Postfix (Debian package postfix) is not installed"
        } else {
            "the Postfix master must run as root"
        };
        if std::env::var_os("CI").is_some() {
            panic!("{why}");
        }
        eprintln!("SKIP: {why}");
        return;
    }
    let master = master.unwrap_or_default();
    let base = 20000 + (std::process::id() % 400) as u16 * 100;
    let mut mismatches = Vec::new();
    let mut compared = 0;
    let mut depends = 0;
    for (n, sc) in SCENARIOS.iter().enumerate() {
        let t = tempfile::tempdir().unwrap();
        // The daemons run as the postfix user and must reach the queue directory.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let conf = t.path().join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        let q = t.path().join("queue");
        let d = t.path().join("data");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::create_dir_all(&q).unwrap();
        let _ = Command::new("chown").arg("postfix").arg(&d).status();
        let main = format!(
            "{}inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmynetworks = 127.0.0.0/8 192.0.2.0/24\nsmtpd_authorized_xclient_hosts = 127.0.0.0/8\nsmtpd_sasl_type = cyrus\nqueue_directory = {}\ndata_directory = {}\nmaillog_file = /var/log/relaydoctor-smtpd-test.log\n",
            sc.main,
            q.display(),
            d.display()
        );
        std::fs::write(conf.join("main.cf"), main).unwrap();
        let mut master_cf = String::new();
        let ports: Vec<u16> = (0..sc.listeners.len())
            .map(|i| base + (n as u16) * 4 + i as u16)
            .collect();
        for (i, extra) in sc.listeners.iter().enumerate() {
            master_cf.push_str(&format!(
                "127.0.0.1:{} inet n - n - - smtpd\n{extra}",
                ports[i]
            ));
        }
        master_cf.push_str(INTERNAL);
        std::fs::write(conf.join("master.cf"), master_cf).unwrap();
        // Creates the queue directories with the right owners.
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&conf)
            .arg("check")
            .stderr(Stdio::null())
            .status();
        let child = Command::new(&master)
            .arg("-c")
            .arg(&conf)
            .arg("-d")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start master");
        let _guard = Master(child);
        if !ports.iter().all(|p| wait_listening(*p)) {
            mismatches.push(format!("{}: master did not start", sc.name));
            continue;
        }
        let ctx = Context::new(
            Root::live(),
            Options {
                postfix_version: Some("3.7".into()),
                ..Default::default()
            },
        );
        let mut f = Vec::new();
        let model = Model::load(&ctx, &conf, &mut f);
        let listeners = model.smtpd_listeners();
        for (li, si) in listeners.iter().enumerate() {
            let Some(port) = ports.get(li) else { continue };
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
                    let real = ask(*port, addr, login, rcpt);
                    let real_class = real
                        .as_deref()
                        .map(reply_class)
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
