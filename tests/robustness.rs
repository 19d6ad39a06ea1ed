//! Hostile input never crashes relaydoctor: each case gives a clear finding or error naming
//! the file, the rest of the tree is still checked, and the exit code is never 101 (panic)
//! or 2 (could not do the job) for a --root snapshot.
//!
//! Every tree has a second Postfix instance, etc/postfix-out/, with a known finding (PF004):
//! seeing it proves the rest of the tree was still checked.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod common;

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("etc/postfix-out");
    fs::create_dir_all(&out).unwrap();
    fs::write(
        out.join("main.cf"),
        "compatibility_level = 3.6\nrelay_domains = a.example\nrelay_domains = b.example\n",
    )
    .unwrap();
    fs::create_dir_all(t.path().join("etc/postfix")).unwrap();
    t
}

fn pf(t: &tempfile::TempDir) -> PathBuf {
    t.path().join("etc/postfix")
}

struct Run {
    code: i32,
    findings: Vec<Value>,
    stderr: String,
}

fn lint_cmd(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_relaydoctor"));
    c.arg("lint")
        .arg("--root")
        .arg(root)
        .args(["--format", "json"]);
    c
}

/// Every run is bounded by the harness: a hang (a FIFO, a deadlock, an expansion blow-up)
/// is killed and fails the test instead of stalling the suite.
const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

fn output_within(c: Command, limit: std::time::Duration) -> std::process::Output {
    output_fed(c, None, limit)
}

/// `output_within` with `stdin` written to the child (from a thread of its own, so a child
/// that stops reading cannot block the harness).
fn output_fed(
    mut c: Command,
    stdin: Option<Vec<u8>>,
    limit: std::time::Duration,
) -> std::process::Output {
    use std::process::Stdio;
    let mut child = c
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run relaydoctor");
    if let (Some(data), Some(mut w)) = (stdin, child.stdin.take()) {
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = w.write_all(&data);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    let reader = std::thread::spawn(move || {
        let mut out = (Vec::new(), Vec::new());
        use std::io::Read;
        let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let err = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = se.read_to_end(&mut v);
            v
        });
        let _ = so.read_to_end(&mut out.0);
        out.1 = err.join().unwrap_or_default();
        let status = child.wait().expect("wait");
        let _ = tx.send(());
        std::process::Output {
            status,
            stdout: out.0,
            stderr: out.1,
        }
    });
    if rx.recv_timeout(limit).is_err() {
        // The child is ours (spawned above); kill it by its pid only.
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        panic!("relaydoctor did not finish within {limit:?} (killed)");
    }
    reader.join().expect("reader")
}

fn run(c: Command) -> Run {
    let out = output_within(c, RUN_LIMIT);
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        code == 0 || code == 1,
        "exit {code} (never 101/2 for a snapshot): {stdout}{stderr}"
    );
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("json: {e}: {stdout}"));
    Run {
        code,
        findings: v["findings"].as_array().cloned().unwrap_or_default(),
        stderr,
    }
}

fn has(r: &Run, code: &str, file_suffix: &str) -> bool {
    r.findings
        .iter()
        .any(|f| f["code"] == code && f["file"].as_str().is_some_and(|p| p.ends_with(file_suffix)))
}

fn rest_checked(r: &Run) {
    assert!(
        has(r, "PF004", "etc/postfix-out/main.cf"),
        "the other instance was not checked: {:?}",
        r.findings
    );
}

#[test]
fn binary_file() {
    let t = tree();
    fs::write(pf(&t).join("main.cf"), b"myhostname = a\0\x01\x02binary").unwrap();
    fs::write(pf(&t).join("master.cf"), "smtp inet n - y - smtpd\n").unwrap();
    let r = run(lint_cmd(t.path()));
    assert!(has(&r, "RD002", "etc/postfix/main.cf"), "{:?}", r.findings);
    // master.cf of the same instance is still checked.
    assert!(
        has(&r, "PF007", "etc/postfix/master.cf"),
        "{:?}",
        r.findings
    );
    rest_checked(&r);
}

#[test]
fn invalid_utf8() {
    let t = tree();
    let mut bytes = b"# Kommentar f\xfcr B\xfcro\ncompatibility_level = 3.6\nmynetworks = 127.0.0.0/8 # B\xfcro\n".to_vec();
    bytes.extend_from_slice(b"smtpd_relay_restriction = permit_mynetworks, reject\n");
    fs::write(pf(&t).join("main.cf"), bytes).unwrap();
    let r = run(lint_cmd(t.path()));
    assert!(has(&r, "RD003", "etc/postfix/main.cf"));
    // The file is still checked with the bad bytes replaced.
    assert!(has(&r, "PF003", "etc/postfix/main.cf"), "{:?}", r.findings);
    assert!(has(&r, "PF005", "etc/postfix/main.cf"), "{:?}", r.findings);
    rest_checked(&r);
}

#[test]
fn crlf_line_endings() {
    let t = tree();
    fs::write(
        pf(&t).join("main.cf"),
        "compatibility_level = 3.6\r\nmyhostname = mx.example.com\r\nmydestination = $myhostname,\r\n   localhost\r\nmyhostname = mail.example.com\r\n",
    )
    .unwrap();
    fs::write(
        pf(&t).join("master.cf"),
        "smtp inet n - y - - smtpd\r\nsubmission inet n - y - - smtpd\r\n  -o smtpd_sasl_auth_enable=yes\r\n",
    )
    .unwrap();
    let r = run(lint_cmd(t.path()));
    // Exactly the duplicate among the syntax rules (PF0xx): no "unknown parameter" or
    // "# in value" from stray \r bytes, and master.cf's fields parse. (Relay rules, PF1xx,
    // judge the configuration itself.)
    let codes: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| {
            f["file"].as_str().is_some_and(|p| {
                p.ends_with("etc/postfix/main.cf") || p.ends_with("etc/postfix/master.cf")
            })
        })
        .map(|f| f["code"].as_str().unwrap())
        .filter(|c| c.starts_with("PF0"))
        .collect();
    assert_eq!(codes, vec!["PF004"], "{:?}", r.findings);
    let msg = r
        .findings
        .iter()
        .find(|f| {
            f["code"] == "PF004"
                && f["file"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("etc/postfix/main.cf"))
        })
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("(`mail.example.com`)") && !msg.contains('\r'),
        "{msg}"
    );
    rest_checked(&r);
}

#[test]
fn empty_files() {
    let t = tree();
    fs::write(pf(&t).join("main.cf"), "").unwrap();
    fs::write(pf(&t).join("master.cf"), "").unwrap();
    let r = run(lint_cmd(t.path()));
    assert!(!r.findings.iter().any(|f| f["file"]
        .as_str()
        .is_some_and(|p| p.contains("etc/postfix/"))));
    rest_checked(&r);
}

#[test]
fn huge_main_cf() {
    // 200 MB: a few real settings, then a mail log pasted by mistake. Postfix stops at its
    // first line; relaydoctor says so once (with a count), and finishes.
    let t = tree();
    let path = pf(&t).join("main.cf");
    let mut f = std::io::BufWriter::new(fs::File::create(&path).unwrap());
    use std::io::Write;
    writeln!(
        f,
        "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8 # lan"
    )
    .unwrap();
    let line = "Nov 28 02:00:00 mx postfix/smtpd[1234]: connect from unknown[198.51.100.7] padding padding padding padding\n";
    let target = 200 * 1024 * 1024;
    let mut written = 0;
    while written < target {
        f.write_all(line.as_bytes()).unwrap();
        written += line.len();
    }
    f.flush().unwrap();
    drop(f);
    let lines = target / line.len() + 1;
    let started = std::time::Instant::now();
    let r = run(lint_cmd(t.path()));
    eprintln!("200 MB main.cf: {:?}", started.elapsed());
    let pf001: Vec<_> = r.findings.iter().filter(|f| f["code"] == "PF001").collect();
    assert_eq!(pf001.len(), 1, "one PF001 for the first bad line");
    assert_eq!(pf001[0]["line"], 3);
    assert!(pf001[0]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("{} more lines", lines - 1)));
    assert!(has(&r, "PF003", "etc/postfix/main.cf"));
    rest_checked(&r);
}

#[test]
fn expansion_loop_and_deep_chain() {
    let t = tree();
    let mut text = String::from(
        "compatibility_level = 3.6\nmyorigin = $a\na = $b\nb = $a\nmyhostname = $p0\n",
    );
    for i in 0..1000 {
        text.push_str(&format!("p{i} = $p{}\n", i + 1));
    }
    text.push_str("p1000 = mail.example.com\n");
    fs::write(pf(&t).join("main.cf"), text).unwrap();
    let r = run(lint_cmd(t.path()));
    let msgs: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f["code"] == "PF012")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("expansion loop") && m.contains("$a -> $b -> $a")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("more than 100 levels")),
        "{msgs:?}"
    );
    rest_checked(&r);
}

/// A directory outside every snapshot, holding a file whose marker must never be printed.
fn host_secret() -> (tempfile::TempDir, PathBuf, &'static str) {
    const MARK: &str = "hostsecret-7f3a9c";
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("shadow");
    fs::write(
        &f,
        format!("root:{MARK}:19000:0:99999:7:::\nmynetworks = 0.0.0.0/0 {MARK}\n192.0.2.1:allow,{MARK}=\"1\"\n"),
    )
    .unwrap();
    (d, f, MARK)
}

#[test]
fn symlink_out_of_the_snapshot_is_not_read_in_any_format() {
    let (_host, secret, mark) = host_secret();
    let t = tree();
    std::os::unix::fs::symlink(&secret, pf(&t).join("main.cf")).unwrap();
    // The same file through `..` from a relative link: climbs as far as it likes.
    let up = "../".repeat(40) + secret.to_str().unwrap().trim_start_matches('/');
    fs::create_dir_all(t.path().join("etc/postfix-two")).unwrap();
    std::os::unix::fs::symlink(&up, t.path().join("etc/postfix-two/main.cf")).unwrap();
    for format in ["text", "json", "sarif", "github", "nagios", "prometheus"] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_relaydoctor"));
        c.args(["lint", "--format", format, "--root"]).arg(t.path());
        let out = output_within(c, RUN_LIMIT);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !all.contains(mark),
            "{format}: printed the host file: {all}"
        );
        if format == "json" {
            assert!(all.contains("RD006"), "{format}: {all}");
            assert!(all.contains("not read: "), "{all}");
        }
    }
    let r = run(lint_cmd(t.path()));
    assert!(has(&r, "RD006", "etc/postfix/main.cf"), "{:?}", r.findings);
    assert!(
        has(&r, "RD006", "etc/postfix-two/main.cf"),
        "{:?}",
        r.findings
    );
    rest_checked(&r);
}

#[test]
fn absolute_symlinks_resolve_inside_the_snapshot() {
    // chroot semantics: /etc/postfix/main.cf -> /srv/cfg/main.cf reads the snapshot's copy.
    let t = tree();
    fs::create_dir_all(t.path().join("srv/cfg")).unwrap();
    fs::write(
        t.path().join("srv/cfg/main.cf"),
        "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8 # lan\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/srv/cfg/main.cf", pf(&t).join("main.cf")).unwrap();
    let r = run(lint_cmd(t.path()));
    assert!(
        !r.findings.iter().any(|f| f["code"] == "RD006"),
        "{:?}",
        r.findings
    );
    assert!(
        r.findings.iter().any(|f| f["code"] == "PF003"),
        "{:?}",
        r.findings
    );
}

/// A master.cf whose findings do not depend on main.cf (PF008) beside one that does
/// (PF006: `$mua_client_restrictions` would be "not defined in main.cf").
const MASTER_CF: &str = "smtp inet n - y - - smtpd\n\
submission inet n - y - - smtpd\n  -o smtpd_client_restrictions=$mua_client_restrictions\n\
smtps inet n - y - - smtpd\n  -o smtpd_recipient_restrictions=permit_sasl_authenticated, reject\n";

/// The findings located in `file` (a path relative to the snapshot).
fn about<'a>(r: &'a Run, file: &str) -> Vec<&'a Value> {
    r.findings.iter().filter(|f| f["file"] == file).collect()
}

#[test]
fn absolute_links_resolving_in_the_snapshot_are_never_stated_on_the_host() {
    // review7 F5: main.cf -> /etc/postfix/main.cf.real is the snapshot's own file, read
    // through the in-root resolver; discovery used to stat the link on this machine, where
    // /etc/postfix/main.cf.real does not exist, and reported a false RD001.
    let host_target = "/etc/postfix/main.cf.real-relaydoctor-test";
    assert!(!Path::new(host_target).exists());
    let t = tree();
    fs::write(
        pf(&t).join("main.cf.real-relaydoctor-test"),
        "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8 # lan\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(host_target, pf(&t).join("main.cf")).unwrap();
    fs::write(pf(&t).join("master.cf"), "smtp inet n - y - - smtpd\n").unwrap();
    // A map directory linked the same way, with a link loop inside it.
    fs::create_dir_all(t.path().join("srv/maps")).unwrap();
    fs::write(t.path().join("srv/maps/access"), "").unwrap();
    std::os::unix::fs::symlink("/etc/postfix", t.path().join("srv/maps/back")).unwrap();
    std::os::unix::fs::symlink("/srv/maps", pf(&t).join("maps")).unwrap();
    let r = run(lint_cmd(t.path()));
    let codes: Vec<&Value> = about(&r, "etc/postfix/main.cf")
        .into_iter()
        .map(|f| &f["code"])
        .collect();
    assert_eq!(codes, ["PF003"], "{:?}", r.findings);
    assert!(
        has(&r, "RD005", "etc/postfix/maps/back"),
        "{:?}",
        r.findings
    );
    rest_checked(&r);
    // The configuration directory itself linked absolutely inside the snapshot is read too.
    let t = tree();
    fs::remove_dir(pf(&t)).unwrap();
    fs::create_dir_all(t.path().join("srv/postfix")).unwrap();
    fs::write(
        t.path().join("srv/postfix/main.cf"),
        "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8 # lan\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/srv/postfix", pf(&t)).unwrap();
    let r = run(lint_cmd(t.path()));
    assert!(
        r.findings
            .iter()
            .any(|f| f["code"] == "PF003" && f["file"].as_str().unwrap().ends_with("main.cf")),
        "{:?}",
        r.findings
    );
    assert!(
        !r.findings.iter().any(|f| f["code"] == "RD006"),
        "{:?}",
        r.findings
    );
}

#[test]
fn a_postmulti_instance_whose_main_cf_links_absolutely_is_discovered() {
    // review7 F5: discovery asked `main.cf exists` of the link on this machine, where
    // /srv/... does not exist: the instance was silently skipped.
    let t = tree();
    fs::write(pf(&t).join("main.cf"), "compatibility_level = 3.6\n").unwrap();
    fs::write(pf(&t).join("master.cf"), "smtp inet n - y - - smtpd\n").unwrap();
    let b = t.path().join("etc/postfix-b");
    fs::create_dir_all(&b).unwrap();
    fs::create_dir_all(t.path().join("srv/relaydoctor-test-b")).unwrap();
    fs::write(
        t.path().join("srv/relaydoctor-test-b/main.cf"),
        "compatibility_level = 3.6\nrelay_domains = a.example\nrelay_domains = b.example\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/srv/relaydoctor-test-b/main.cf", b.join("main.cf")).unwrap();
    let r = run(lint_cmd(t.path()));
    assert!(
        has(&r, "PF004", "etc/postfix-b/main.cf"),
        "{:?}",
        r.findings
    );
    rest_checked(&r);
}

#[test]
fn a_dangling_absolute_link_gets_one_finding_that_says_what_is_missing() {
    // review7 F5: RD001 ("cannot read") and RD006 ("points outside the snapshot") used to
    // contradict each other for one file whose target is simply not in the snapshot.
    let t = tree();
    std::os::unix::fs::symlink("/etc/postfix/nonexist.cf", pf(&t).join("main.cf")).unwrap();
    fs::write(pf(&t).join("master.cf"), MASTER_CF).unwrap();
    let r = run(lint_cmd(t.path()));
    let main = about(&r, "etc/postfix/main.cf");
    assert_eq!(main.len(), 1, "{main:?}");
    assert_eq!(main[0]["code"], "RD006");
    let msg = main[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("symlink to /etc/postfix/nonexist.cf, which is not in the snapshot")
            && !msg.contains("outside"),
        "{msg}"
    );
    // Nothing is claimed about the content of the main.cf that was not read (F9), while
    // master.cf's own mistakes are still reported.
    assert!(
        !r.findings.iter().any(|f| f["code"] == "PF006"),
        "{:?}",
        r.findings
    );
    assert!(has(&r, "PF008", "etc/postfix/master.cf"));
    rest_checked(&r);
}

#[test]
fn a_missing_or_binary_main_cf_is_an_error_and_nothing_is_drawn_from_it() {
    // review7 F5/F9: Postfix does not start without main.cf (`postfix: fatal: open
    // /etc/postfix/main.cf: No such file or directory`, global/mail_conf.c); lint used to
    // say nothing about it and report PF006 "not defined in main.cf" from the empty file.
    let t = tree();
    fs::write(pf(&t).join("master.cf"), MASTER_CF).unwrap();
    let r = run(lint_cmd(t.path()));
    let main = about(&r, "etc/postfix/main.cf");
    assert_eq!(main.len(), 1, "{main:?}");
    assert_eq!(
        (&main[0]["code"], &main[0]["severity"]),
        (&"PF108".into(), &"error".into())
    );
    assert!(
        main[0]["message"]
            .as_str()
            .unwrap()
            .contains("Postfix does not start without main.cf"),
        "{main:?}"
    );
    assert!(
        !r.findings.iter().any(|f| f["code"] == "PF006"),
        "{:?}",
        r.findings
    );
    assert!(has(&r, "PF008", "etc/postfix/master.cf"));
    assert_eq!(r.code, 1);
    rest_checked(&r);
    // A binary main.cf has its own error (RD002) and no second one; nothing from its content.
    fs::write(
        pf(&t).join("main.cf"),
        b"\x7fELF\x02\x01\x01\0\0\0mynetworks = 0/0\n",
    )
    .unwrap();
    let r = run(lint_cmd(t.path()));
    let main = about(&r, "etc/postfix/main.cf");
    assert_eq!(main.len(), 1, "{main:?}");
    assert_eq!(main[0]["code"], "RD002");
    assert!(
        !r.findings.iter().any(|f| f["code"] == "PF006"),
        "{:?}",
        r.findings
    );
    assert!(has(&r, "PF008", "etc/postfix/master.cf"));
}

/// A minimal qmail: control/me and control/rcpthosts.
fn qmail_control(root: &Path) {
    let c = root.join("var/qmail/control");
    fs::create_dir_all(&c).unwrap();
    fs::write(c.join("me"), "mx.example.com\n").unwrap();
    fs::write(c.join("rcpthosts"), "example.com\n").unwrap();
}

#[test]
fn tcpserver_rules_path_with_dotdot_stays_inside() {
    let (host, _secret, mark) = host_secret();
    let t = tempfile::tempdir().unwrap();
    let svc = t.path().join("service/qmail-smtpd");
    fs::create_dir_all(&svc).unwrap();
    qmail_control(t.path());
    // tcp rules source `shadow` and its compiled `shadow.cdb` on the host, reached by
    // `/../../..` from the snapshot.
    fs::copy(
        common::repo("fixtures/rules/QM001/bad/etc/tcp.smtp.cdb"),
        host.path().join("shadow.cdb"),
    )
    .unwrap();
    let rules = format!("/../../..{}/shadow.cdb", host.path().display());
    fs::write(
        svc.join("run"),
        format!(
            "#!/bin/sh\nexec tcpserver -v -R -x {rules} 0 smtp /var/qmail/bin/qmail-smtpd 2>&1\n"
        ),
    )
    .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_relaydoctor"));
    c.args(["lint", "--format", "json", "--root"]).arg(t.path());
    let out = output_within(c, RUN_LIMIT);
    let all =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!all.contains(mark), "printed the host file: {all}");
}

#[test]
fn mynetworks_file_with_dotdot_is_not_read_by_simulate() {
    let (host, _secret, mark) = host_secret();
    let t = tree();
    fs::write(
        pf(&t).join("main.cf"),
        format!(
            "compatibility_level = 3.6\nmynetworks = /../../..{}/shadow\n",
            host.path().display()
        ),
    )
    .unwrap();
    fs::write(pf(&t).join("master.cf"), "smtp inet n - y - - smtpd\n").unwrap();
    for cmd in ["simulate", "lint"] {
        let all = printed(cmd, &[], t.path());
        assert!(!all.contains(mark), "{cmd} printed the host file: {all}");
    }
}

/// stdout and stderr of `lint` or `simulate` (of the Postfix instance, a client at
/// 192.0.2.1 sending to a@example.net) over `root`, with `extra` arguments.
fn printed(cmd: &str, extra: &[&str], root: &Path) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_relaydoctor"));
    c.arg(cmd);
    if cmd == "simulate" {
        c.args([
            "--client",
            "192.0.2.1",
            "--rcpt",
            "a@example.net",
            "--instance",
            "postfix",
        ]);
    }
    c.args(extra).arg("--root").arg(root);
    let out = output_within(c, RUN_LIMIT);
    assert_ne!(out.status.code(), Some(101), "{cmd} panicked");
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn fix_never_writes_through_a_symlinked_config_dir() {
    let host = tempfile::tempdir().unwrap();
    let text = "compatibility_level = 3.6\nrelay_domains = a.example\nrelay_domains = b.example\n";
    fs::write(host.path().join("main.cf"), text).unwrap();
    let t = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("etc")).unwrap();
    std::os::unix::fs::symlink(host.path(), t.path().join("etc/postfix")).unwrap();
    let mut c = lint_cmd(t.path());
    c.arg("--fix");
    let out = output_within(c, RUN_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        fs::read_to_string(host.path().join("main.cf")).unwrap(),
        text
    );
    let left: Vec<_> = fs::read_dir(host.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "files appeared on the host: {left:?}");
    // Discovery reports the configuration directory that leaves the snapshot (RD006),
    // rather than finding nothing.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("RD006") && stdout.contains("which is not in the snapshot"),
        "{stdout}{stderr}"
    );
}

#[test]
fn special_files_are_never_opened() {
    let t = tree();
    let fifo = pf(&t).join("main.cf");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "mkfifo");
    for name in ["etc/hostname", "etc/mailname"] {
        let _ = Command::new("mkfifo").arg(t.path().join(name)).status();
    }
    // A symlink to a device: /dev/zero is re-rooted into the snapshot (absent there), and a
    // device inside the snapshot is refused unopened.
    fs::create_dir_all(t.path().join("etc/postfix-zero")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", t.path().join("etc/postfix-zero/main.cf")).unwrap();
    let r = run(lint_cmd(t.path()));
    assert!(has(&r, "RD001", "etc/postfix/main.cf"), "{:?}", r.findings);
    let msg = r.findings.iter().find(|f| f["code"] == "RD001").unwrap()["message"].to_string();
    assert!(msg.contains("not a regular file"), "{msg}");
    rest_checked(&r);
}

/// Run relaydoctor as an unprivileged user when we are root (root reads mode-000 files).
fn unprivileged(root: &Path) -> Option<Command> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        return Some(lint_cmd(root));
    }
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let mut c = Command::new(setpriv);
    c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_relaydoctor"))
        .arg("lint")
        .arg("--root")
        .arg(root)
        .args(["--format", "json"]);
    Some(c)
}

#[test]
fn permission_denied() {
    let t = tree();
    fs::write(
        pf(&t).join("main.cf"),
        "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8 # lan\n",
    )
    .unwrap();
    fs::write(pf(&t).join("master.cf"), "smtp inet n - y - - smtpd\n").unwrap();
    // The unprivileged user must be able to reach the tree.
    for d in [
        t.path().to_path_buf(),
        t.path().join("etc"),
        pf(&t),
        t.path().join("etc/postfix-out"),
    ] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in [
        pf(&t).join("main.cf"),
        t.path().join("etc/postfix-out/main.cf"),
    ] {
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    }
    fs::set_permissions(pf(&t).join("master.cf"), fs::Permissions::from_mode(0o000)).unwrap();
    let Some(cmd) = unprivileged(t.path()) else {
        if std::env::var_os("CI").is_some() {
            panic!("running as root without setpriv: cannot test permission denied");
        }
        eprintln!("SKIP: running as root and setpriv is missing, so chmod 000 cannot deny reads");
        return;
    };
    let r = run(cmd);
    assert!(
        has(&r, "RD001", "etc/postfix/master.cf"),
        "{:?} {}",
        r.findings,
        r.stderr
    );
    let msg = r.findings.iter().find(|f| f["code"] == "RD001").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("master.cf") && msg.to_lowercase().contains("permission denied"),
        "{msg}"
    );
    assert!(has(&r, "PF003", "etc/postfix/main.cf"));
    rest_checked(&r);
    assert_eq!(r.code, 1);
}

#[test]
fn symlink_loop_in_tree() {
    let t = tree();
    fs::write(
        pf(&t).join("main.cf"),
        "compatibility_level = 3.6\nmynetworks = 127.0.0.0/8 # lan\n",
    )
    .unwrap();
    fs::create_dir_all(pf(&t).join("maps")).unwrap();
    std::os::unix::fs::symlink("..", pf(&t).join("maps/loop")).unwrap();
    let r = run(lint_cmd(t.path()));
    assert!(
        has(&r, "RD005", "etc/postfix/maps/loop"),
        "{:?}",
        r.findings
    );
    assert!(has(&r, "PF003", "etc/postfix/main.cf"));
    rest_checked(&r);
}

fn pf012_messages(r: &Run) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f["code"] == "PF012")
        .map(|f| format!("{}:{} {}", f["file"], f["line"], f["message"]))
        .collect()
}

#[test]
fn mynetworks_read_back_through_its_own_default() {
    // Both overflowed the stack (SIGABRT): mynetworks' default reads mynetworks_style, whose
    // default reads compatibility_level.
    for (main, name) in [
        ("compatibility_level = $mynetworks\n", "compatibility_level"),
        (
            "compatibility_level = 3.6\nmynetworks_style = $mynetworks\n",
            "mynetworks_style",
        ),
        (
            "compatibility_level = 3.6\ninet_interfaces = $mynetworks\n",
            "inet_interfaces",
        ),
    ] {
        let t = tree();
        fs::write(pf(&t).join("main.cf"), main).unwrap();
        let r = run(lint_cmd(t.path()));
        let msgs = pf012_messages(&r);
        assert!(
            msgs.iter().any(|m| m.contains("etc/postfix/main.cf")
                && m.contains(name)
                && m.contains("loops")),
            "{main}: {msgs:?}"
        );
        rest_checked(&r);
    }
}

#[test]
fn exponential_expansion_is_bounded() {
    // e0 = $e1 $e1, ... 30 levels: 2^30 copies of "x" if built (Postfix would build it all).
    let t = tree();
    let mut text = String::from("compatibility_level = 3.6\nmyhostname = mail.example.com\n");
    for i in 0..30 {
        text.push_str(&format!("e{i} = $e{} $e{}\n", i + 1, i + 1));
    }
    text.push_str("e30 = x\nsmtpd_banner = $e0\n");
    fs::write(pf(&t).join("main.cf"), text).unwrap();
    let r = run(lint_cmd(t.path()));
    let msgs = pf012_messages(&r);
    assert!(
        msgs.iter()
            .any(|m| m.contains("grows beyond") && m.contains("etc/postfix/main.cf")),
        "{msgs:?}"
    );
    rest_checked(&r);
}

#[test]
fn many_undefined_references_are_linear() {
    // 32k references to one undefined name took 40 s (each re-expanded the whole value).
    let t = tree();
    let refs = "$a ".repeat(32_000);
    fs::write(
        pf(&t).join("main.cf"),
        format!("compatibility_level = 3.6\nsmtpd_banner = {refs}\n"),
    )
    .unwrap();
    let r = run(lint_cmd(t.path()));
    let pf006 = r.findings.iter().filter(|f| f["code"] == "PF006").count();
    assert!(pf006 >= 1, "{:?}", &r.findings[..r.findings.len().min(3)]);
    rest_checked(&r);
}

// ------------------------------------------------------------ explain --log read errors

fn log_lines() -> String {
    fs::read_to_string(common::repo("fixtures/logs/postfix-real.log")).unwrap()
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// `explain --log ...` in JSON, bounded by the harness: (exit code, stdout JSON, stderr).
fn explain_logs(logs: &[&str], stdin: Option<Vec<u8>>) -> (i32, Value, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_relaydoctor"));
    c.args([
        "explain",
        "--no-simulate",
        "--year",
        "2026",
        "--format",
        "json",
    ]);
    for l in logs {
        c.args(["--log", l]);
    }
    let out = output_fed(c, stdin, RUN_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("json: {e}: {stdout}{stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

#[test]
fn explain_corrupt_or_truncated_gzip_ends_with_the_file_and_offset() {
    let text = log_lines();
    // Many lines, so the decoder fails after the first chunks were handed to the parser.
    let big = text.repeat(400);
    let good = gzip(&big);
    let truncated = good[..good.len() / 2].to_vec();
    let mut corrupt = good.clone();
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 64] {
        *b ^= 0x5a;
    }
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("mail.log");
    fs::write(&plain, &text).unwrap();
    for (what, bytes) in [("truncated", truncated), ("corrupt", corrupt)] {
        let gz = d.path().join(format!("{what}.gz"));
        fs::write(&gz, &bytes).unwrap();
        let gz_s = gz.to_str().unwrap();
        // Alone, second of several files, and through standard input.
        for (logs, stdin, named) in [
            (vec![gz_s], None, gz_s.to_string()),
            (vec![plain.to_str().unwrap(), gz_s], None, gz_s.to_string()),
            (vec!["-"], Some(bytes.clone()), "standard input".to_string()),
        ] {
            let (code, v, stderr) = explain_logs(&logs, stdin);
            let ctx = format!("{what} {logs:?}: {stderr}");
            assert_eq!(code, 2, "{ctx}");
            assert!(
                stderr.contains(&named) && stderr.contains("after byte"),
                "{ctx}"
            );
            // What was read before the error is kept and reported.
            let lines = v["stats"]["lines"].as_u64().unwrap();
            assert!(lines > 54, "{ctx}: {lines} lines");
            assert!(
                v["stats"]["read_errors"]
                    .as_array()
                    .is_some_and(|a| a.len() == 1),
                "{ctx}"
            );
        }
    }
}

// ------------------------------------------------------------ secrets by role

#[test]
fn secrets_are_masked_by_role_in_every_format_and_diff() {
    const SECRETS: [&str; 5] = [
        "Typ0Secret9",
        "Indir3ctPw9",
        "Macr0Secret9",
        "R0uteSecret9",
        "Tcp5ecret9",
    ];
    let t = tree();
    let files = [
        // Misspelled password map (PF005 renames it) and one reached through $sasl_pw; the
        // duplicates and `# old` make PF004/PF003 quote the values in every format.
        (
            "etc/postfix/main.cf",
            "compatibility_level = 3.6\nsmtp_sasl_pasword_maps = static:typo:Typ0Secret9\nsmtp_sasl_pasword_maps = static:typo:Typ0Secret9 # old\nsasl_pw = static:u:Indir3ctPw9\nsasl_pw = static:u:Indir3ctPw9 # old\nsmtp_sasl_password_maps = $sasl_pw\nsmtp_sasl_auth_enable = yes\n",
        ),
        // The macro holds the client_send secret.
        (
            "etc/exim4/exim4.conf",
            "PW = ^u^Macr0Secret9\nPW = ^u^Macr0Secret9\nbegin authenticators\nplain:\n  driver = plaintext\n  public_name = PLAIN\n  client_send = PW\n",
        ),
        ("var/qmail/control/me", "mx.example.com\n"),
        ("var/qmail/control/rcpthosts", "example.com\n"),
        ("var/qmail/control/locals", "example.com\n"),
        // qmail-remote's auth patch: domain:relay:port|user|password.
        (
            "var/qmail/control/smtproutes",
            ":relay.example.net:587|myuser|R0uteSecret9\n",
        ),
        (
            "etc/tcp.smtp",
            ":allow,RELAYCLIENT=\"\",SMTPAUTH_PASS=\"Tcp5ecret9\"\n",
        ),
    ];
    for (p, text) in files {
        let p = t.path().join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    let mut runs: Vec<(String, Vec<&str>)> = ["text", "json", "sarif", "github", "nagios"]
        .iter()
        .map(|f| (f.to_string(), vec!["--format", f]))
        .collect();
    runs.push(("--diff".into(), vec!["--diff"]));
    for (what, args) in runs {
        let mut c = Command::new(env!("CARGO_BIN_EXE_relaydoctor"));
        c.arg("lint").args(&args).arg("--root").arg(t.path());
        let out = output_within(c, RUN_LIMIT);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for s in SECRETS {
            assert!(!all.contains(s), "{what}: printed {s}: {all}");
        }
        // The lines that hold them were printed, masked (so the test can fail).
        let expect: &[&str] = match what.as_str() {
            "text" => &[
                "static:********",
                "PW = ********",
                "587|********",
                "SMTPAUTH_PASS=\"********\"",
            ],
            "--diff" => &["+smtp_sasl_password_maps = static:********"],
            "nagios" => &[],
            _ => &["static:********"],
        };
        for e in expect {
            assert!(all.contains(e), "{what}: no `{e}` in {all}");
        }
    }
}

// ------------------------------------------------------------ reads go through Root

#[test]
fn lookup_tables_and_cdb_symlinked_out_of_the_snapshot_are_not_read() {
    const MAIN: &str = "compatibility_level = 3.6\nsmtpd_relay_restrictions = check_client_access hash:/etc/postfix/access, permit_mynetworks, reject_unauth_destination\nmynetworks = 127.0.0.0/8\n";
    // A Postfix access map (and its .db) symlinked to the host.
    let (t, (host, secret, mark)) = (tree(), host_secret());
    fs::write(pf(&t).join("main.cf"), MAIN).unwrap();
    fs::write(pf(&t).join("master.cf"), "smtp inet n - y - - smtpd\n").unwrap();
    std::os::unix::fs::symlink(&secret, pf(&t).join("access")).unwrap();
    std::os::unix::fs::symlink(&secret, pf(&t).join("access.db")).unwrap();
    // qmail: tcp.smtp.cdb symlinked to a host cdb whose rules carry the mark.
    qmail_control(t.path());
    let cdb = relaydoctor::qmail::cdb::build(&[(
        b"".as_slice(),
        format!("+RELAYCLIENT=\0+{mark}=1\0").as_bytes(),
    )]);
    fs::write(host.path().join("rules.cdb"), cdb).unwrap();
    fs::write(
        t.path().join("etc/tcp.smtp"),
        "127.:allow,RELAYCLIENT=\"\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        host.path().join("rules.cdb"),
        t.path().join("etc/tcp.smtp.cdb"),
    )
    .unwrap();
    for cmd in ["lint", "simulate"] {
        for format in ["text", "json"] {
            let all = printed(cmd, &["--format", format], t.path());
            assert!(
                !all.contains(mark),
                "{cmd} {format}: printed the host file: {all}"
            );
        }
    }
}

#[test]
fn exim_macro_doubling_is_bounded() {
    // M30 = xxxxxxxx, M29 = M30 M30, ... M00: 2^30 copies if built (Exim would build them).
    let t = tree();
    let mut text = String::from("M30 = xxxxxxxx\n");
    for i in (0..30).rev() {
        text.push_str(&format!("M{i:02} = M{:02} M{:02}\n", i + 1, i + 1));
    }
    text.push_str("primary_hostname = M00\n");
    let conf = t.path().join("etc/exim4/exim4.conf");
    fs::create_dir_all(conf.parent().unwrap()).unwrap();
    fs::write(&conf, text).unwrap();
    let r = run(lint_cmd(t.path()));
    let hit = r.findings.iter().find(|f| {
        f["code"] == "EX002"
            && f["message"]
                .as_str()
                .is_some_and(|m| m.contains("longer than"))
    });
    let hit = hit.unwrap_or_else(|| panic!("{:?}", r.findings));
    assert!(hit["file"]
        .as_str()
        .unwrap()
        .ends_with("etc/exim4/exim4.conf"));
    assert!(
        hit["line"].as_u64().is_some_and(|l| l > 1 && l <= 31),
        "{hit}"
    );
    rest_checked(&r);
}

// ------------------------------------------------------------ --fix and signals

/// Names of `--fix` temp files (`.relaydoctor.XXXXXX`) in `dir`.
fn fix_temps(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with(".relaydoctor.") && !n.contains("bak"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sigterm_during_fix_leaves_no_temp_file() {
    // A main.cf big enough (30 MB of comments) that writing and syncing its fixed copy takes
    // a while; SIGTERM is sent the moment the temp file appears beside it.
    let t = tree();
    let mut text = String::from(
        "compatibility_level = 3.6\nrelay_domains = a.example\nrelay_domains = b.example\n",
    );
    let comment = format!("# {}\n", "x".repeat(10_000));
    for _ in 0..3000 {
        text.push_str(&comment);
    }
    fs::write(pf(&t).join("main.cf"), &text).unwrap();
    let mut caught = false;
    for _ in 0..3 {
        let mut c = lint_cmd(t.path());
        c.arg("--fix")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if !caught && !fix_temps(&pf(&t)).is_empty() {
                // Our own child, by its pid.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                caught = true;
            }
            if start.elapsed() > RUN_LIMIT {
                let _ = child.kill();
                panic!("--fix did not finish within {RUN_LIMIT:?}");
            }
        };
        let left = fix_temps(&pf(&t));
        assert!(
            left.is_empty(),
            "temp files left after {status:?}: {left:?}"
        );
        if caught {
            use std::os::unix::process::ExitStatusExt;
            // It died of the signal (the handler re-raises it after removing the file).
            assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
            // The configuration is either the old or the new one, never half of one.
            let now = fs::read_to_string(pf(&t).join("main.cf")).unwrap();
            assert!(now == text || now.len() < text.len(), "main.cf was damaged");
            break;
        }
        // Too quick to catch: restore the file and try again.
        fs::write(pf(&t).join("main.cf"), &text).unwrap();
    }
    assert!(caught, "never saw the temp file while --fix ran");
}
