//! `relaydoctor explain` on genuine log lines: fixtures/logs/postfix-real.log and exim-mainlog
//! were captured from a real Postfix 3.7 and Exim 4.96 (see fixtures/logs/README.md).

use assert_cmd::Command;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;

fn bin() -> Command {
    let mut c = Command::cargo_bin("relaydoctor").unwrap();
    c.env_remove("NO_COLOR");
    c
}

fn logs(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/logs")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(logs(name)).unwrap()
}

fn json(args: &[&str], stdin: Option<&str>) -> (i32, Value) {
    let mut c = bin();
    c.arg("explain").args(args).args(["--format", "json"]);
    if let Some(s) = stdin {
        c.write_stdin(s.to_string());
    }
    let out = c.output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn events(v: &Value) -> Vec<Value> {
    v["events"].as_array().cloned().unwrap_or_default()
}

fn find<'a>(evs: &'a [Value], key: &str, val: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e[key] == val).collect()
}

#[test]
fn postfix_reject_lines_with_auth_state_from_the_same_session() {
    let (code, v) = json(&["--no-simulate", "-"], Some(&read("postfix-real.log")));
    assert_eq!(code, 1);
    let evs = events(&v);
    // The stranger: no AUTH in the session (disconnect line has no auth=).
    let e = find(&evs, "recipient", "bob@external.example")[0];
    assert_eq!(e["client_ip"], "203.0.113.5");
    assert_eq!(e["client_name"], "client.example.net");
    assert_eq!(e["helo"], "laptop.home");
    assert_eq!(e["sender"], "alice@example.com");
    assert_eq!(e["proto"], "ESMTP");
    assert_eq!(e["code"], 554);
    assert_eq!(e["enhanced"], "5.7.1");
    assert_eq!(e["cause"], "relay-denied");
    assert_eq!(e["side"], "this-server");
    assert_eq!(e["auth"], "no");
    assert_eq!(e["recipient_class"], "external");
    let advice = e["advice"].to_string();
    assert!(advice.contains("did not authenticate"), "{advice}");
    // Authenticated on the misordered submission listener: auth=1 on the disconnect line.
    let e = find(&evs, "recipient", "carol@external.example")[0];
    assert_eq!(e["auth"], "yes");
    assert_eq!(e["code"], 454);
    assert_eq!(e["program"], "postfix/submission/smtpd");
    assert!(e["advice"].to_string().contains("DID authenticate"));
    // Wrong password: SASL failure line + auth=0/1.
    let e = find(&evs, "recipient", "dave@external.example")[0];
    assert_eq!(e["auth"], "failed");
    // sasl_username from the client= line of the same smtpd process, keyed by its pid.
    let e = find(&evs, "recipient", "blocked@example.com")[0];
    assert_eq!(e["auth"], "yes");
    assert_eq!(e["sasl_user"], "alice@example.com");
    assert_eq!(e["cause"], "other");
    // 451 4.3.5 from the broken listener.
    let e = find(&evs, "cause", "server-config")[0];
    assert_eq!(e["client_ip"], "203.0.113.77");
    // The postfix/smtp client lines: the recipient's server refused what we passed on.
    let remote = find(&evs, "side", "recipient-server");
    assert_eq!(remote.len(), 2);
    assert!(remote.iter().all(|e| e["cause"] == "relay-denied"
        && e["stage"] == "RCPT"
        && e["remote_host"] == "127.0.0.1[127.0.0.1]"));
    assert_eq!(find(&evs, "cause", "auth-failed").len(), 1);
    assert_eq!(v["stats"]["bad"], 0);
}

#[test]
fn postfix_log_summary_groups_by_cause_with_counts_and_top_clients() {
    let f = logs("postfix-real.log");
    let (code, v) = json(
        &[
            "--no-simulate",
            "--log",
            f.to_str().unwrap(),
            "--year",
            "2026",
        ],
        None,
    );
    assert_eq!(code, 1);
    let groups = v["groups"].as_array().unwrap();
    let g = |cause: &str, side: &str, auth: &str| {
        groups
            .iter()
            .find(|g| g["cause"] == cause && g["side"] == side && g["auth"] == auth)
            .unwrap_or_else(|| panic!("no group {cause}/{side}/{auth}: {groups:#?}"))
    };
    let strangers = g("relay-denied", "this-server", "no");
    assert_eq!(strangers["count"], 3);
    let clients = strangers["top_clients"].as_array().unwrap();
    assert_eq!(clients[0]["value"], "127.0.0.1 (localhost)");
    assert_eq!(clients[0]["count"], 2);
    assert!(strangers["first"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-28 "));
    assert_eq!(g("relay-denied", "this-server", "yes")["count"], 1);
    assert_eq!(g("relay-denied", "this-server", "failed")["count"], 1);
    let remote = g("relay-denied", "recipient-server", "unknown");
    assert_eq!(remote["count"], 2);
    let rcpts: Vec<&str> = remote["top_recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_str().unwrap())
        .collect();
    assert!(
        rcpts.contains(&"partner@external.example") && rcpts.contains(&"friend@external.example")
    );
    assert_eq!(g("server-config", "this-server", "no")["count"], 1);
    // Relay-related groups come first.
    assert_eq!(groups[0]["cause"], "relay-denied");
    // The example says which log it comes from.
    assert_eq!(groups[0]["example"]["input"], f.to_str().unwrap());
    assert_eq!(v["stats"]["lines"], 54);
}

#[test]
fn exim_mainlog_and_rejectlog() {
    let (code, v) = json(&["--no-simulate", "-"], Some(&read("exim-mainlog")));
    assert_eq!(code, 1);
    let evs = events(&v);
    let e = find(&evs, "recipient", "bob@external.example")[0];
    assert_eq!(
        (
            e["client_ip"].as_str(),
            e["helo"].as_str(),
            e["sender"].as_str()
        ),
        (
            Some("127.0.0.5"),
            Some("laptop.home"),
            Some("alice@example.com")
        )
    );
    assert_eq!(e["source"], "exim");
    assert_eq!(e["cause"], "relay-denied");
    assert_eq!(e["auth"], "no");
    // The advice speaks Exim: its relay hostlist and AUTH advertising, not Postfix parameters.
    let advice = e["advice"].to_string();
    assert!(advice.contains("relay_from_hosts"), "{advice}");
    assert!(advice.contains("auth_advertise_hosts"), "{advice}");
    for postfix_word in ["smtpd_", "mynetworks", "master.cf", "main.cf"] {
        assert!(!advice.contains(postfix_word), "{postfix_word}: {advice}");
    }
    // A=plain:alice@example.com
    let e = find(&evs, "recipient", "carol@external.example")[0];
    assert_eq!(e["auth"], "yes");
    assert_eq!(e["sasl_user"], "alice@example.com");
    let advice = e["advice"].to_string();
    assert!(advice.contains("accept authenticated"), "{advice}");
    assert!(!advice.contains("smtpd_"), "{advice}");
    // The authenticator failure before it marks the next refusal of that client.
    let e = find(&evs, "recipient", "dave@external.example")[0];
    assert_eq!(e["auth"], "failed");
    // Sender verify: the detail line is attached to the refusal, not counted twice.
    let sv = find(&evs, "cause", "sender-verify");
    assert_eq!(sv.len(), 2, "{sv:#?}");
    assert!(sv.iter().any(|e| e["detail"]
        .as_str()
        .unwrap_or("")
        .contains("sender verify fail for <ghost@nouser.example>: No Such User Here")));
    let callout = sv
        .iter()
        .find(|e| e["sender"] == "someone@callout.example")
        .unwrap();
    assert_eq!(callout["code"], 451);
    assert!(callout["detail"]
        .as_str()
        .unwrap()
        .contains("Connection refused"));
    assert!(callout["advice"].to_string().contains("callout"));
    // `** ... SMTP error from remote mail server after RCPT TO:<...>: 550 relay not permitted`
    let e = find(&evs, "side", "recipient-server")[0];
    assert_eq!(e["code"], 550);
    assert_eq!(e["recipient"], "partner@external.example");
    assert_eq!(e["stage"], "RCPT");

    let (_, v) = json(&["--no-simulate", "-"], Some(&read("exim-rejectlog")));
    assert_eq!(events(&v).len(), 8);
}

/// Exim writes each rejection to the mainlog and the rejectlog: given both, each counts once.
#[test]
fn exim_mainlog_and_rejectlog_together_count_each_refusal_once() {
    let (main, reject) = (logs("exim-mainlog"), logs("exim-rejectlog"));
    let (main, reject) = (main.to_str().unwrap(), reject.to_str().unwrap());
    let counts = |v: &Value| -> Vec<(String, u64)> {
        let mut c: Vec<(String, u64)> = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    format!("{}/{}/{}", g["cause"], g["side"], g["auth"]),
                    g["count"].as_u64().unwrap(),
                )
            })
            .collect();
        c.sort();
        c
    };
    let (_, alone) = json(&["--no-simulate", "--log", main], None);
    let (_, rej) = json(&["--no-simulate", "--log", reject], None);
    let (_, both) = json(&["--no-simulate", "--log", main, "--log", reject], None);
    let (_, swapped) = json(&["--no-simulate", "--log", reject, "--log", main], None);
    assert_eq!(counts(&both), counts(&alone), "{both:#}");
    assert_eq!(both["stats"]["events"], alone["stats"]["events"]);
    // Every line of the rejectlog was a copy (8 refusals, the verify detail and the failed
    // login it records).
    assert_eq!(both["stats"]["duplicates"], 10);
    assert_eq!(swapped["stats"]["events"], alone["stats"]["events"]);
    assert!(rej["stats"]["events"].as_u64().unwrap() < alone["stats"]["events"].as_u64().unwrap());
    // The text says why the lines were skipped.
    let out = bin()
        .args(["explain", "--no-simulate", "--log", main, "--log", reject])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("10 Exim lines skipped"), "{text}");
    // Identical lines of one input are separate refusals (a client retrying in the same second).
    let line = "2026-11-28 02:47:45 H=(laptop.home) [127.0.0.5] F=<alice@example.com> rejected RCPT <bob@external.example>: relay not permitted\n";
    let (_, v) = json(&["--no-simulate", "--log", "-"], Some(&line.repeat(3)));
    assert_eq!(v["stats"]["events"], 3);
    assert_eq!(v["stats"]["duplicates"], 0);
}

#[test]
fn qmail_patch_lines() {
    let (code, v) = json(&["--no-simulate", "-"], Some(&read("qmail-patches.log")));
    assert_eq!(code, 1);
    let evs = events(&v);
    assert!(evs.iter().all(|e| e["source"] == "qmail"));
    let e = find(&evs, "recipient", "bob@external.example")[0];
    assert_eq!(e["client_ip"], "203.0.113.5");
    assert_eq!(e["helo"], "laptop.home");
    assert_eq!(e["cause"], "relay-denied");
    assert_eq!(e["auth"], "no");
    let old = find(&evs, "recipient", "carol@external.example")[0];
    assert_eq!(old["client_ip"], "198.51.100.9");
    assert_eq!(old["auth"], "yes");
    let sc = find(&evs, "recipient", "dave@external.example")[0];
    assert_eq!(
        (sc["client_ip"].as_str(), sc["proto"].as_str()),
        (Some("203.0.113.6"), Some("ESMTP"))
    );
    let ql = find(&evs, "recipient", "erin@external.example")[0];
    assert_eq!(
        (ql["client_ip"].as_str(), ql["code"].as_u64()),
        (Some("203.0.113.7"), Some(553))
    );
    assert_eq!(find(&evs, "cause", "unknown-recipient").len(), 1);
    assert_eq!(find(&evs, "cause", "auth-failed").len(), 1);
    // The transcript reply of qmail-smtpd itself.
    assert!(evs
        .iter()
        .any(|e| e["reply"]
            == "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"));
    assert_eq!(v["stats"]["unknown"], 0);
}

#[test]
fn bounce_texts_sides_and_microsoft_out_of_scope() {
    let (code, v) = json(&["--no-simulate", "-"], Some(&read("bounces.txt")));
    assert_eq!(code, 1);
    let evs = events(&v);
    assert_eq!(evs.len(), 7);
    assert_eq!(evs[0]["side"], "unknown");
    assert_eq!(evs[0]["recipient"], "bob@external.example");
    assert_eq!(evs[1]["side"], "this-server");
    assert_eq!(evs[1]["code"], 454);
    // A wrapped Postfix bounce: the continuation line is joined.
    assert_eq!(evs[2]["side"], "recipient-server");
    assert_eq!(evs[2]["remote_host"], "mx.external.example[192.0.2.25]");
    assert_eq!(evs[3]["reply"], "550 relay not permitted");
    assert_eq!(evs[4]["cause"], "relay-denied");
    assert_eq!(evs[5]["cause"], "microsoft");
    assert_eq!(evs[5]["enhanced"], "5.7.708");
    assert!(evs[5]["advice"]
        .to_string()
        .contains("outside what relaydoctor checks"));
    assert_eq!(evs[6]["cause"], "sender-verify");
    assert_eq!(v["stats"]["unknown"], 1);

    // TEXT as an argument, in text format.
    let out = bin()
        .args([
            "explain",
            "--no-simulate",
            "554 5.7.1 <bob@example.net>: Relay access denied",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Relay refused"), "{text}");
    assert!(
        text.contains("mail program probably did not authenticate"),
        "{text}"
    );
}

#[test]
fn gzip_rotated_logs_and_time_filters() {
    let dir = tempfile::tempdir().unwrap();
    let all = read("postfix-real.log");
    let lines: Vec<&str> = all.lines().collect();
    let (a, b) = lines.split_at(30);
    // Oldest part compressed as logrotate leaves it, newest plain.
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.path().join("mail.log.2.gz")).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(format!("{}\n", a.join("\n")).as_bytes())
        .unwrap();
    gz.finish().unwrap();
    std::fs::write(dir.path().join("mail.log.1"), "").unwrap();
    std::fs::write(dir.path().join("mail.log"), format!("{}\n", b.join("\n"))).unwrap();
    let log = dir.path().join("mail.log");
    let (code, v) = json(
        &[
            "--no-simulate",
            "--year",
            "2026",
            "--log",
            log.to_str().unwrap(),
            "--rotated",
        ],
        None,
    );
    assert_eq!(code, 1);
    let inputs: Vec<String> = v["stats"]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(inputs, ["mail.log.2.gz", "mail.log.1", "mail.log"]);
    assert_eq!(v["stats"]["lines"], 54);
    let (_, whole) = json(
        &[
            "--no-simulate",
            "--log",
            logs("postfix-real.log").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(v["stats"]["events"], whole["stats"]["events"]);

    // RFC 3339 timestamps (rsyslog's RSYSLOG_FileFormat) and --since/--until.
    let rfc: String = all
        .lines()
        .map(|l| {
            let (stamp, rest) = l.split_at(15);
            format!("2026-11-28T{}.000000+01:00{rest}\n", &stamp[7..])
        })
        .collect();
    let p = dir.path().join("rfc.log");
    std::fs::write(&p, &rfc).unwrap();
    let (_, all_v) = json(&["--no-simulate", "--log", p.to_str().unwrap()], None);
    assert_eq!(all_v["stats"]["events"], whole["stats"]["events"]);
    let (code, none) = json(
        &[
            "--no-simulate",
            "--log",
            p.to_str().unwrap(),
            "--since",
            "2026-11-29",
        ],
        None,
    );
    assert_eq!(code, 0, "nothing after the fixture's day");
    assert_eq!(none["stats"]["events"], 0);
    assert_eq!(none["stats"]["filtered"], whole["stats"]["events"]);
    // An instant comparison: 02:46:28+01:00 is 01:46:28Z.
    let (_, later) = json(
        &[
            "--no-simulate",
            "--log",
            p.to_str().unwrap(),
            "--until",
            "2026-11-28T01:46:29Z",
        ],
        None,
    );
    assert_eq!(
        later["stats"]["events"], 1,
        "only the 02:46:28 event is before 01:46:29Z"
    );
}

#[test]
fn bad_lines_are_counted_never_fatal_and_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk.log");
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(b"\xff\xfe binary reject: \x00\x01\n").unwrap();
    f.write_all(b"Nov 28 02:46:10 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from \n")
        .unwrap();
    f.write_all(&vec![b'x'; 3 << 20]).unwrap();
    f.write_all(b" reject\n").unwrap();
    f.write_all(b"2026-11-28 02:47:35 H=(x) [1.2.3.4] sender verify fail for garbage\n")
        .unwrap();
    drop(f);
    let (code, v) = json(&["--no-simulate", "--log", p.to_str().unwrap()], None);
    assert_eq!(code, 0, "{v:#}");
    assert!(v["stats"]["bad"].as_u64().unwrap() >= 2, "{v:#}");
    assert_eq!(v["stats"]["lines"], 4);

    let (code, v) = json(&["--no-simulate", "-"], Some("just some words\n"));
    assert_eq!(code, 0);
    assert_eq!(v["stats"]["unknown"], 1);

    bin()
        .args(["explain", "--log", "/nonexistent/relaydoctor.log"])
        .assert()
        .code(2);
    bin().args(["explain"]).assert().code(2);
    // A mail log where the configuration PATH goes: said plainly, plain or gzip.
    for log in ["postfix-real.log", "exim-mainlog"] {
        bin()
            .args(["explain", logs(log).to_str().unwrap()])
            .assert()
            .code(2)
            .stderr(predicates::str::contains(
                "this looks like a mail log; use --log FILE",
            ));
    }
    let gz = dir.path().join("mail.log.1.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(read("postfix-real.log").as_bytes()).unwrap();
    enc.finish().unwrap();
    bin()
        .args([
            "explain",
            gz.to_str().unwrap(),
            "554 5.7.1 Relay access denied",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("use --log FILE"));
    // A configuration directory is still a PATH.
    bin()
        .args([
            "explain",
            "--no-simulate",
            dir.path().to_str().unwrap(),
            "554 5.7.1 <x@y>: Relay access denied",
        ])
        .assert()
        .code(1);
    bin()
        .args([
            "explain",
            "--log",
            p.to_str().unwrap(),
            "--since",
            "last tuesday",
        ])
        .assert()
        .code(2);
}

#[test]
fn help_has_examples() {
    let out = bin().args(["explain", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Examples:") && text.contains("--log"));
}

/// The wiring to `lint::simulate`: with a configuration root, the event's client, AUTH state
/// and envelope are what is asked. While the relay models are not merged, simulate finds no
/// configuration and the event says so instead of failing.
#[test]
fn simulation_asks_exactly_the_logged_client_and_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc/postfix");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("main.cf"),
        "compatibility_level = 3.6\nmydestination = example.com\nmynetworks = 127.0.0.0/8\n\
         smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n",
    )
    .unwrap();
    std::fs::write(etc.join("master.cf"), "smtp inet n - y - - smtpd\n").unwrap();
    let line = read("postfix-real.log")
        .lines()
        .find(|l| l.contains("<bob@external.example>"))
        .unwrap()
        .to_string();
    let (code, v) = json(&["--root", dir.path().to_str().unwrap(), &line], None);
    assert_eq!(code, 1);
    let sim = &events(&v)[0]["simulation"];
    match sim["status"].as_str() {
        Some("done") => {
            assert_eq!(sim["query"]["client_ip"], "203.0.113.5");
            assert_eq!(sim["query"]["rcpt"], "bob@external.example");
            assert_eq!(sim["query"]["helo"], "laptop.home");
            assert!(sim["query"]["sasl_user"].is_null());
            assert!(!sim["decisions"].as_array().unwrap().is_empty(), "{sim:#}");
        }
        Some("unavailable") => assert!(sim["reason"].as_str().unwrap().contains("no Postfix")),
        other => panic!("unexpected simulation status {other:?}: {sim:#}"),
    }
    let root = dir.path().to_str().unwrap();
    assert!(v["configuration"]["simulated"]
        .as_str()
        .unwrap()
        .contains(root));
    if sim["status"] == "done" {
        // 554 logged, 554 simulated: no contradiction.
        assert_eq!(sim["matches_log"], true, "{sim:#}");
        // The same refusal logged as 451 4.3.5: this configuration does not give it.
        let other = line.replace("554 5.7.1", "451 4.3.5");
        let (_, v) = json(&["--root", root, &other], None);
        assert_eq!(events(&v)[0]["simulation"]["matches_log"], false);
        let out = bin()
            .args(["explain", "--root", root, &other])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("Simulated against the snapshot --root {root}")),
            "{text}"
        );
        assert!(
            text.contains("the configuration here does not give the logged reply"),
            "{text}"
        );
        // AUTH seen (auth=1 on the disconnect line) but no user name in the log.
        let auth = format!(
            "{}\nNov 28 02:46:28 mx postfix/smtpd[20322]: disconnect from client.example.net[203.0.113.5] ehlo=1 auth=1 mail=1 rcpt=0/1 quit=1 commands=4/5",
            line
        );
        let out = bin()
            .args(["explain", "--root", root, &auth])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("authenticated (user name not in the log)"),
            "{text}"
        );
        assert!(!text.contains("(authenticated)"), "{text}");
    }
}

/// An Exim log line is explained by the Exim configuration only: with just a Postfix
/// configuration at hand, the simulation says so instead of showing Postfix's answer.
#[test]
fn evidence_is_simulated_only_against_the_mta_that_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc/postfix");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("main.cf"),
        "compatibility_level = 3.6\nmydestination = example.com\nmynetworks = 127.0.0.0/8\n",
    )
    .unwrap();
    std::fs::write(etc.join("master.cf"), "smtp inet n - y - - smtpd\n").unwrap();
    let line = read("exim-mainlog")
        .lines()
        .find(|l| l.contains("relay not permitted"))
        .unwrap()
        .to_string();
    let (_, v) = json(&["--root", dir.path().to_str().unwrap(), &line], None);
    let sim = &events(&v)[0]["simulation"];
    assert_eq!(sim["status"], "unavailable", "{sim:#}");
    let reason = sim["reason"].as_str().unwrap();
    assert!(
        reason.contains("Exim") && reason.contains("postfix"),
        "{reason}"
    );
}

/// A file of bounces given as a log: the log reader finds no log lines, and says how to
/// explain such text instead of a bare "no refusal".
#[test]
fn bounces_given_as_a_log_get_a_hint() {
    let out = bin()
        .args(["explain", "--no-simulate", "--log"])
        .arg(logs("bounces.txt"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("relaydoctor explain - < FILE"), "{text}");
    // A real log without refusals gets no such hint.
    let d = tempfile::tempdir().unwrap();
    let clean = d.path().join("mail.log");
    std::fs::write(&clean, "Nov 28 02:46:29 mx postfix/smtpd[1]: connect from a[192.0.2.1]\nNov 28 02:46:30 mx postfix/smtpd[1]: disconnect from a[192.0.2.1] ehlo=1 quit=1 commands=2\n").unwrap();
    let out = bin()
        .args(["explain", "--no-simulate", "--log"])
        .arg(&clean)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("No refusal found"), "{text}");
    assert!(!text.contains("explain - < FILE"), "{text}");
}

/// `explain --root fixtures/demo/postfix-server` of TEXT, as text.
fn demo_text(args: &[&str]) -> String {
    let out = bin()
        .arg("explain")
        .arg("--root")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/postfix-server"))
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn submission_refusal_by_the_relay_list_is_a_relay_refusal() {
    // review7 F14: the reply says "Recipient address rejected: Access denied", but the
    // simulation of the logged service shows smtpd_relay_restrictions (`permit_sasl_
    // authenticated, reject` on submission) refusing an external recipient: a mail program
    // that did not log in, not "a policy refusal that is not about relaying".
    let line = "Dec  3 10:05:01 mx1 postfix/submission/smtpd[124]: NOQUEUE: reject: RCPT from unknown[198.51.100.9]: 554 5.7.1 <y@example.org>: Recipient address rejected: Access denied; from=<alice@customer-one.example> to=<y@example.org> proto=ESMTP helo=<laptop>";
    let mut log = tempfile::NamedTempFile::new().unwrap();
    writeln!(log, "{line}").unwrap();
    let path = log.path().to_string_lossy().into_owned();
    let out = demo_text(&["--log", &path]);
    assert!(
        out.contains("Relay refused (Postfix, refused by this server, AUTH not seen)"),
        "{out}"
    );
    assert!(!out.contains("not about relaying"), "{out}");
    // To a hosted (local) domain the same refusal is not called a relay refusal.
    let local = line.replace("y@example.org", "y@customer-one.example");
    assert!(!demo_text(&[&local]).contains("Relay refused"));
}

#[test]
fn postscreen_reject_lines_are_parsed_and_not_simulated_as_smtpd() {
    // review7 F24: postscreen writes `from=<...>, to=<...>, proto=..., helo=<...>`.
    let line = "Dec  3 10:00:01 mx1 postfix/postscreen[99]: NOQUEUE: reject: RCPT from [203.0.113.5]:41234: 550 5.7.1 Service unavailable; client [203.0.113.5] blocked using zen.spamhaus.org; from=<a@b.example>, to=<u@customer-one.example>, proto=ESMTP, helo=<x>";
    let (_, v) = json(
        &[
            "--root",
            &format!(
                "{}/fixtures/demo/postfix-server",
                env!("CARGO_MANIFEST_DIR")
            ),
            line,
        ],
        None,
    );
    let e = &events(&v)[0];
    assert_eq!(e["recipient"], "u@customer-one.example", "{e}");
    assert_eq!(e["sender"], "a@b.example");
    assert_eq!(e["helo"], "x");
    assert_eq!(e["simulation"]["status"], "skipped", "{e}");
    let why = e["simulation"]["reason"].as_str().unwrap();
    assert!(why.contains("postscreen_dnsbl_action = ignore"), "{why}");
    // The blocklist finding shown is postscreen's, not the smtpd restriction's.
    let f: Vec<&str> = e["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        !f.is_empty() && f.iter().all(|m| m.contains("postscreen_")),
        "{f:?}"
    );
}

#[test]
fn relay_refusal_gets_the_findings_that_decide_it_and_marks_the_logged_listener() {
    // review7 F2, F3, F12: 198.51.100.23 is in the POP-before-SMTP map of the misspelled
    // `smtpd_relay_restriction` (PF005): that finding explains the refusal; PF010
    // deprecations do not. `postfix/smtpd` is the listener without a syslog_name that
    // the client can reach (the `smtpd pass` service behind postscreen).
    let out = demo_text(&["Dec  3 10:00:01 mx1 postfix/smtpd[123]: NOQUEUE: reject: RCPT from unknown[198.51.100.23]: 454 4.7.1 <x@example.net>: Relay access denied; from=<a@b.example> to=<x@example.net> proto=ESMTP helo=<pc>"]);
    assert!(
        out.contains("PF005") && out.contains("did you mean smtpd_relay_restrictions"),
        "{out}"
    );
    assert!(!out.contains("PF010"), "{out}");
    assert!(out.contains("postfix smtpd: defer (454 4.7.1 <x@example.net>: Relay access denied)  <- the service in the log"), "{out}");
    assert!(!out.contains("):0:"), "{out}");
    assert!(
        out.contains("compatibility_level 3.6): smtpd_relay_restrictions"),
        "{out}"
    );
}

#[test]
fn no_simulation_is_claimed_when_none_ran() {
    // review7 F4: a pasted reply names no client: nothing is simulated, and the header
    // must not say "Simulated against".
    let out = demo_text(&["554 5.7.1 <bob@example.net>: Relay access denied"]);
    assert!(!out.contains("Simulated against"), "{out}");
    assert!(out.contains("no event could be simulated"), "{out}");
}
