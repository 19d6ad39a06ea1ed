//! `relaydoctor probe` against real Postfix smtpd listeners on loopback (the private master of
//! tests/smtpd_support), never a mock: an open relay (check_client_access static:OK), a closed
//! server with STARTTLS (a good certificate, an expired one, one for another name, none), a
//! real SASL login (Cyrus sasldb), and the CLI's exit codes. Certificates come from the
//! `openssl` command; nothing is ever queued (the queue directory stays empty).

mod common;
mod smtpd_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use smtpd_support::Scenario;

const PASSWORD: &str = "s3cret-Pa55word";

/// The test CA and three server certificates for `localhost`: good, expired, and one for
/// another name, all issued by the CA (`openssl ca` sets exact dates, which `req -x509` cannot).
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_certs() -> Certs {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    open_dir(d);
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(key);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "3650",
        "-subj",
        "/CN=relaydoctor test CA",
    ]);
    openssl(d, &ca);
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("serial"), "01\n").unwrap();
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n",
    )
    .unwrap();
    for (name, cn, start, end) in [
        ("good", "localhost", "20250101000000Z", "20450101000000Z"),
        ("expired", "localhost", "20200101000000Z", "20210101000000Z"),
        (
            "other",
            "other.example.test",
            "20250101000000Z",
            "20450101000000Z",
        ),
    ] {
        let mut req = vec!["req"];
        req.extend(key);
        let keyfile = format!("{name}.key");
        let csr = format!("{name}.csr");
        let subj = format!("/CN={cn}");
        req.extend(["-keyout", &keyfile, "-out", &csr, "-subj", &subj]);
        openssl(d, &req);
        let ext = format!("{name}.ext");
        std::fs::write(d.join(&ext), format!("subjectAltName = DNS:{cn}\n")).unwrap();
        let pem = format!("{name}.pem");
        openssl(
            d,
            &[
                "ca",
                "-batch",
                "-config",
                "ca.cnf",
                "-cert",
                "ca.pem",
                "-keyfile",
                "ca.key",
                "-in",
                &csr,
                "-out",
                &pem,
                "-startdate",
                start,
                "-enddate",
                end,
                "-extfile",
                &ext,
                "-notext",
            ],
        );
    }
    for e in std::fs::read_dir(d).unwrap() {
        open_file(&e.unwrap().path());
    }
    Certs { dir: t }
}

fn open_dir(d: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn open_file(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// A Cyrus sasldb with alice@mail.example.test, readable by the postfix user.
fn make_sasldb(dir: &Path) -> PathBuf {
    let db = dir.join("sasldb2");
    let mut child = Command::new("saslpasswd2")
        .args(["-p", "-c", "-f"])
        .arg(&db)
        .args(["-u", "mail.example.test", "alice"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("saslpasswd2 (Debian package sasl2-bin)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "saslpasswd2 failed");
    open_file(&db);
    db
}

/// Files in the private Postfix's queue (incoming, active, deferred, ...): must stay 0.
fn queued(run: &smtpd_support::Running) -> usize {
    let q = run.conf.parent().unwrap().join("queue");
    [
        "maildrop", "incoming", "active", "deferred", "hold", "corrupt",
    ]
    .iter()
    .map(|d| {
        walkdir::WalkDir::new(q.join(d))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .count()
    })
    .sum()
}

const BASE: &str = "compatibility_level = 3.6\nmyhostname = mail.example.test\nmydomain = example.test\nmydestination = $myhostname, example.test\nlocal_recipient_maps =\nmynetworks = 192.0.2.0/24\n";

fn probe(args: &[&str]) -> common::Run {
    let mut all = vec!["probe", "--timeout", "10", "--helo", "probe.client.test"];
    all.extend_from_slice(args);
    common::run(&all)
}

fn codes(j: &Value) -> Vec<String> {
    let mut v: Vec<String> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A snapshot root holding the running instance's main.cf (edited by `edit`) and master.cf.
fn snapshot(run: &smtpd_support::Running, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let main = std::fs::read_to_string(run.conf.join("main.cf")).unwrap();
    let master = std::fs::read_to_string(run.conf.join("master.cf")).unwrap();
    common::postfix_tree(&edit(main), Some(&master))
}

const OPEN: &str = "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, check_client_access static:OK, reject_unauth_destination\n";

#[test]
fn open_relay_trusted_vantage_and_drift() {
    let Some(master) = smtpd_support::require() else {
        return;
    };
    let main = format!("{BASE}{OPEN}");
    let sc = Scenario {
        name: "open relay through static:OK; a listener that trusts loopback",
        main: &main,
        listeners: &[
            "",
            "  -o mynetworks=127.0.0.0/8\n  -o smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination\n",
        ],
        files: &[],
        postmap: &[],
    };
    let run = smtpd_support::start(&master, &sc).unwrap();
    let target = format!("127.0.0.1:{}", run.ports[0]);
    let same = snapshot(&run, |m| m);
    let same_root = same.path().to_str().unwrap();
    let r = probe(&[&target, "--format", "json", "--root", same_root]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    // The configuration on disk is the running one and relays for strangers too: no drift,
    // no trusted vantage point.
    assert_eq!(codes(&j), ["PR101", "PR102", "PR144"], "{j:#}");
    let open: Vec<&Value> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "PR101")
        .collect();
    assert!(
        open.iter().any(|f| f["message"].as_str().unwrap().contains(
            "MAIL FROM:<relaydoctor-probe@example.org> RCPT TO:<relaytest@example.net> got `250 2.1.5 Ok`"
        )),
        "{open:#?}"
    );
    assert!(open.iter().all(|f| f["severity"] == "error"));
    assert_eq!(open[0]["category"], "open-relay");
    assert_eq!(j["targets"][0]["client_address"], "127.0.0.1");
    assert_eq!(j["host"]["name"], "127.0.0.1");

    // The text form lists what was sent: MAIL/RCPT/RSET/QUIT, never DATA.
    let t = probe(&[&target]);
    assert_eq!(t.code, 1);
    assert!(
        t.stdout.contains("    RCPT TO:<relaytest@example.net>\n"),
        "{}",
        t.stdout
    );
    assert!(t.stdout.contains("    QUIT\n"));
    assert!(!t.stdout.contains("    DATA\n"), "{}", t.stdout);
    let sent = j["targets"][0]["sent"].as_array().unwrap();
    assert!(sent.iter().all(|l| l != "DATA"));
    assert!(t.stdout.contains("relay mail for anyone"), "{}", t.stdout);
    let n = probe(&[&target, "--format", "nagios"]);
    assert_eq!(n.code, 2, "{}", n.stdout);
    assert!(n.stdout.starts_with("RELAYDOCTOR CRITICAL"), "{}", n.stdout);

    // Listener 1 relays for loopback only: the probe's vantage point is trusted, and its
    // open-relay findings say so at info.
    let r = probe(&[
        &format!("127.0.0.1:{}", run.ports[1]),
        "--format",
        "json",
        "--root",
        same_root,
    ]);
    let j = r.json();
    assert_eq!(codes(&j), ["PR101", "PR102", "PR144", "PR150"], "{j:#}");
    for f in j["findings"].as_array().unwrap() {
        if f["code"] == "PR101" || f["code"] == "PR102" {
            assert_eq!(f["severity"], "info", "{f:#}");
        }
    }

    // main.cf on disk no longer opens the relay, the running smtpd still does: config drift.
    let edited = snapshot(&run, |m| m.replace(OPEN, ""));
    // Only main.cf was edited: master.cf is an hour older.
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(edited.path().join("etc/postfix/master.cf"))
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let r = probe(&[
        &target,
        "--format",
        "json",
        "--root",
        edited.path().to_str().unwrap(),
    ]);
    let j = r.json();
    let drift: Vec<&Value> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "PR160")
        .collect();
    assert_eq!(drift.len(), 1, "{j:#}");
    let msg = drift[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("etc/postfix/main.cf was changed at")
            && msg.contains("the running server still answers `250 2.1.5 Ok`")
            && msg.contains("reload Postfix"),
        "{msg}"
    );
    assert_eq!(drift[0]["category"], "config-drift");
    assert_eq!(queued(&run), 0, "a message was queued");
}

#[test]
fn closed_server_tls_and_login() {
    let Some(master) = smtpd_support::require() else {
        return;
    };
    let certs = make_certs();
    let db = make_sasldb(certs.dir.path());
    let tls = |name: &str| {
        format!(
            "  -o smtpd_tls_security_level=may\n  -o smtpd_tls_cert_file={}\n  -o smtpd_tls_key_file={}\n",
            certs.path(&format!("{name}.pem")),
            certs.path(&format!("{name}.key"))
        )
    };
    let sasl = "  -o smtpd_sasl_auth_enable=yes\n";
    let listeners = [
        // 0: what a submission port should be.
        format!("{}{sasl}  -o smtpd_tls_auth_only=yes\n", tls("good")),
        // 1: expired certificate; 2: certificate for another name.
        tls("expired"),
        tls("other"),
        // 3: no TLS, AUTH in the clear.
        format!("  -o smtpd_tls_security_level=none\n{sasl}"),
        // 4: login works, relaying is refused anyway.
        format!(
            "{}{sasl}  -o smtpd_tls_auth_only=yes\n  -o smtpd_relay_restrictions=reject_unauth_destination\n",
            tls("good")
        ),
        // 5: implicit TLS (what port 465 runs).
        format!(
            "{}{sasl}  -o smtpd_tls_wrappermode=yes\n",
            tls("good")
        ),
        // 6: refuses everything, its own domain included.
        format!("{}  -o smtpd_relay_restrictions=reject\n", tls("good")),
    ];
    let listeners: Vec<&str> = listeners.iter().map(String::as_str).collect();
    let main = format!("{BASE}smtpd_sasl_local_domain = mail.example.test\n");
    let sc = Scenario {
        name: "closed, TLS and SASL",
        main: &main,
        listeners: &listeners,
        files: &[],
        postmap: &[],
    };
    let run = smtpd_support::start(&master, &sc).unwrap();
    // Debian's Postfix reads Cyrus SASL's smtpd.conf from $config_directory/sasl/ (it ignores
    // cyrus_sasl_config_path); smtpd processes start per connection, so writing it now, before
    // the first connection, is in time.
    let sasl_dir = run.conf.join("sasl");
    std::fs::create_dir_all(&sasl_dir).unwrap();
    std::fs::write(
        sasl_dir.join("smtpd.conf"),
        format!(
            "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {}\n",
            db.display()
        ),
    )
    .unwrap();
    open_file(&sasl_dir.join("smtpd.conf"));
    let at = |i: usize| format!("localhost:{}", run.ports[i]);
    let ca = certs.path("ca.pem");
    let local = ["--local-rcpt", "postmaster@example.test"];
    std::env::set_var("RD_PROBE_PW", PASSWORD);
    std::env::set_var("RD_PROBE_BAD", "wrong-password");
    // `probe --format json` of listener i, trusting the test CA when `trust`, logged in as
    // alice with the password in environment variable `pw`: (exit code, findings' codes, JSON).
    let json_of = |i: usize, trust: bool, pw: Option<&str>| {
        let target = at(i);
        let mut args = vec![target.as_str(), "--format", "json"];
        if trust {
            args.extend(["--ca-file", ca.as_str()]);
        }
        if let Some(var) = pw {
            args.extend(["--user", "alice", "--password-env", var]);
        }
        let r = probe(&args);
        let j = r.json();
        (r.code, codes(&j), j)
    };

    // 0 without login: clean, TLS verified against the test CA, every relay form refused.
    let r = probe(&[
        &at(0),
        "--ca-file",
        &ca,
        "--format",
        "json",
        local[0],
        local[1],
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    let t0 = &j["targets"][0];
    assert_eq!(t0["tls"]["mode"], "starttls");
    assert_eq!(t0["tls"]["established"], true);
    assert_eq!(t0["tls"]["certificate"]["valid"], true, "{t0:#}");
    assert_eq!(t0["tls"]["certificate"]["names"][0], "localhost");
    assert_eq!(t0["auth_mechanisms"]["before_tls"], serde_json::json!([]));
    let after = t0["auth_mechanisms"]["after_tls"].as_array().unwrap();
    assert!(after.contains(&"PLAIN".into()) && after.contains(&"LOGIN".into()));
    let tests = t0["tests"].as_array().unwrap();
    assert!(tests.len() >= 19, "{tests:#?}");
    for t in tests {
        let local_rcpt = t["rcpt_to"] == "postmaster@example.test";
        assert_eq!(t["accepted"], local_rcpt, "{t:#}");
    }

    // 0 with a login: the settings that work, the password nowhere in the output.
    let r = probe(&[
        &at(0),
        "--ca-file",
        &ca,
        "--user",
        "alice",
        "--password-env",
        "RD_PROBE_PW",
        local[0],
        local[1],
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("AUTH PLAIN <credentials hidden>"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("ACCEPTED external recipient after login (logged in)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "To send as alice, set the mail client's outgoing (SMTP) server to localhost and use port {} with STARTTLS with AUTH PLAIN as alice",
            run.ports[0]
        )),
        "{}",
        r.stdout
    );
    for secret in [
        PASSWORD,
        "czNjcmV0LVBhNTV3b3Jk",
        "AGFsaWNlAHMzY3JldC1QYTU1d29yZA==",
    ] {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "{secret} leaked"
        );
    }

    // The same login with --password-file (first line of the file), in SARIF: logged in,
    // nothing to report, and the password in no output.
    let pwdir = tempfile::tempdir().unwrap();
    let pwfile = pwdir.path().join("pw");
    std::fs::write(&pwfile, format!("{PASSWORD}\nignored second line\n")).unwrap();
    let r = probe(&[
        &at(0),
        "--ca-file",
        &ca,
        "--user",
        "alice",
        "--password-file",
        pwfile.to_str().unwrap(),
        "--format",
        "sarif",
        local[0],
        local[1],
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let sarif: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0", "{}", r.stdout);
    assert!(!r.stdout.contains(PASSWORD) && !r.stderr.contains(PASSWORD));

    // A wrong password: PR121.
    let (_, found, j) = json_of(0, true, Some("RD_PROBE_BAD"));
    assert_eq!(found, ["PR121"], "{j:#}");

    // Without the test CA the chain is untrusted, and nothing else is wrong.
    let (_, found, j) = json_of(0, false, None);
    assert_eq!(found, ["PR140"], "{j:#}");

    // 1 expired, 2 another name: one tls finding each.
    let (code, found, j) = json_of(1, true, None);
    assert_eq!(code, 1);
    assert_eq!(found, ["PR141"], "{j:#}");
    assert_eq!(j["findings"][0]["category"], "tls");
    assert!(j["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("expired at 2021-01-01T00:00:00Z"));
    let (_, found, j) = json_of(2, true, None);
    assert_eq!(found, ["PR142"], "{j:#}");

    // 3: AUTH before TLS, no STARTTLS; the password is not sent without TLS.
    let (_, found, j) = json_of(3, false, Some("RD_PROBE_PW"));
    assert_eq!(found, ["PR122", "PR130", "PR144"], "{j:#}");
    let sent = j["targets"][0]["sent"].as_array().unwrap();
    assert!(!sent.iter().any(|l| l.as_str().unwrap().starts_with("AUTH")));

    // 4: logged in, still refused: PR120 quoting the refusal.
    let (_, found, j) = json_of(4, true, Some("RD_PROBE_PW"));
    assert_eq!(found, ["PR120"], "{j:#}");
    assert!(j["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("554 5.7.1 <relaytest@example.net>: Relay access denied"));

    // 5: implicit TLS, told with --implicit-tls: the login works there too.
    let r = probe(&[
        &at(5),
        "--implicit-tls",
        &run.ports[5].to_string(),
        "--ca-file",
        &ca,
        "--user",
        "alice",
        "--password-env",
        "RD_PROBE_PW",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "use port {} with SSL/TLS (implicit TLS) with AUTH PLAIN as alice",
            run.ports[5]
        )),
        "{}",
        r.stdout
    );

    // 6: its own recipient refused from outside: PR110, quoting the refusal.
    let r = probe(&[
        &at(6),
        "--ca-file",
        &ca,
        "--format",
        "json",
        local[0],
        local[1],
    ]);
    let j = r.json();
    assert_eq!(codes(&j), ["PR110"], "{j:#}");
    assert!(j["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("RCPT TO:<postmaster@example.test> got `554 5.7.1"));
    assert_eq!(queued(&run), 0, "a message was queued");
}

#[test]
fn exit_codes_without_a_server() {
    // A port nobody listens on: connection refused, nothing probed, exit 2.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = probe(&[&format!("127.0.0.1:{port}")]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("no SMTP server answered"), "{}", r.stderr);
    let r = probe(&[&format!("127.0.0.1:{port}"), "--format", "nagios"]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(r.stdout.starts_with("RELAYDOCTOR UNKNOWN"), "{}", r.stdout);
    for bad in [
        vec!["127.0.0.1:99999"],
        vec!["bad host"],
        vec!["127.0.0.1:25", "--user", "alice"],
        vec!["127.0.0.1:25", "--timeout", "0"],
        vec!["127.0.0.1:25", "--from", "no-at-sign"],
    ] {
        let r = probe(&bad);
        assert_eq!(r.code, 2, "{bad:?}: {}{}", r.stdout, r.stderr);
    }
}

/// Exim's daemon on loopback, from the unpacked Debian build of scripts/exim-oracle.
struct Exim(std::process::Child);

impl Drop for Exim {
    fn drop(&mut self) {
        // Only the daemon this test started, by its own handle.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exim_binary() -> Option<PathBuf> {
    let out = Command::new(common::repo("scripts/exim-oracle"))
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && p.is_file()).then_some(p)
}

/// A real Exim whose local router accepts every local part: the percent hack is undone
/// before the RCPT ACL (percent_hack_domains = *), so `user%foreign@local` is refused as a
/// relay, but a bang path at the local domain is accepted as a local part: PR102, no PR101.
#[test]
fn exim_accepts_a_bang_path_but_not_the_percent_hack() {
    let Some(_) = smtpd_support::require() else {
        return;
    };
    let Some(bin) = exim_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "scripts/exim-oracle gave no exim binary"
        );
        eprintln!("SKIP: no exim binary");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    open_dir(t.path());
    for d in ["spool", "log"] {
        std::fs::create_dir(t.path().join(d)).unwrap();
        let _ = Command::new("chown")
            .arg("Debian-exim")
            .arg(t.path().join(d))
            .status();
    }
    let conf = t.path().join("exim.conf");
    std::fs::write(
        &conf,
        format!(
            "primary_hostname = mail.example.test\ndomainlist local_domains = mail.example.test : example.test\npercent_hack_domains = *\ntls_advertise_hosts =\nspool_directory = {0}/spool\nlog_file_path = {0}/log/%slog\nacl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n  deny message = relay not permitted\n       !domains = +local_domains\n  accept\nbegin routers\nlocal:\n  driver = accept\n  domains = +local_domains\n  transport = devnull\nbegin transports\ndevnull:\n  driver = appendfile\n  file = /dev/null\n",
            t.path().display()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _exim = Exim(
        Command::new(&bin)
            .arg("-C")
            .arg(&conf)
            .args(["-bdf", "-oX", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed().as_secs() < 20, "exim did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = probe(&[
        &format!("127.0.0.1:{port}"),
        "--local-rcpt",
        "postmaster@example.test",
        "--format",
        "json",
    ]);
    let j = r.json();
    assert_eq!(codes(&j), ["PR102", "PR144"], "{j:#}");
    let tests = j["targets"][0]["tests"].as_array().unwrap();
    let reply = |rcpt: &str| {
        let t = tests.iter().find(|t| t["rcpt_to"] == rcpt).unwrap();
        (
            t["accepted"].as_bool().unwrap(),
            t["reply"]["code"].as_u64(),
        )
    };
    assert_eq!(
        reply("relaytest%example.net@mail.example.test"),
        (false, Some(550))
    );
    assert_eq!(
        reply("example.net!relaytest@mail.example.test"),
        (true, Some(250))
    );
    assert_eq!(reply("relaytest@example.net"), (false, Some(550)));
    // Every question got an answer (Exim hangs up after 3 syntax errors; the probe reconnects).
    assert!(tests.iter().all(|t| t["stage"] != "none"), "{tests:#?}");
    let input = t.path().join("spool/input");
    let queued = walkdir::WalkDir::new(&input)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count();
    assert_eq!(queued, 0, "exim queued a message");
}
