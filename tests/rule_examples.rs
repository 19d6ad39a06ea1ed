//! The rule catalogue against the real MTAs installed here (issue 22, "make it stay true").
//!
//! 1. `examples_run_in_the_real_mta`: every `bad`/`good` example of rules/{postfix,exim,qmail}.toml
//!    that is configuration text is fed to the real program: `postconf -c DIR -n` (main.cf) or
//!    `postconf -M`/`-P` (master.cf) for Postfix, `exim -C FILE -bV` for Exim (the example set
//!    into a small complete configuration), `tcprules` (and `tcprulescheck`) for qmail's tcp
//!    rules. Each example's expected outcome is written in the table below (what the rule's
//!    explanation says happens). Where the rule is about a relay decision, the decision itself
//!    is asked: one private Postfix (tests/smtpd_support) with one listener per example, driven
//!    with XCLIENT, and `exim -bh` sessions. Rules whose examples are prose or need something
//!    this machine cannot provide are listed in NO_ORACLE with the reason; a rule in neither
//!    list fails the test, so a new rule has to choose.
//! 2. `quoted_output_is_real`: every backtick-quoted text in an explanation or summary that is
//!    not configuration is a quote of what an MTA prints (SMTP reply or log line). It must
//!    occur in the installed Postfix/Exim/ucspi-tcp binaries (`strings`, printf parts such as
//!    `%s` as wildcards) or their documentation (postconf(5), master(5), Exim's spec.txt), or
//!    be listed in QUOTE_EXCEPTIONS with the reason.
//!
//! Conventions the second test relies on (docs/rules.md, "Writing rule texts"): MTA output is
//! quoted in backticks; `...`, `<word>`, `[...]` and the upper-case placeholders N, NAME,
//! VALUE, ZONE stand for variable parts; a leading SMTP code with its enhanced status code and
//! a leading `warning:`/`fatal:`/`error:`/`panic:` (with an optional program name) are not
//! compared, since the MTA builds them separately from the message text.

mod common;
mod smtpd_support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

#[derive(Deserialize)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<Rule>,
}

#[derive(Deserialize, Clone)]
struct Rule {
    code: String,
    summary: String,
    explanation: String,
    bad: String,
    good: String,
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn rules(files: &[&str]) -> BTreeMap<String, Rule> {
    let mut out = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(repo(&format!("rules/{f}.toml"))).unwrap();
        let parsed: RuleFile = toml::from_str(&text).unwrap();
        for r in parsed.rule {
            out.insert(r.code.clone(), r);
        }
    }
    out
}

fn skip_or_panic(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIP: {why}");
}

/// Rules whose examples no MTA here can judge, with the reason.
const NO_ORACLE: &[(&str, &str)] = &[
    ("PF013", "postconf -n accepts any text as a value; the placeholder is the point"),
    ("PF107", "about a missing compiled .db file, not configuration text (postfix_relay_rules.rs runs it)"),
    ("PF108", "about a missing certificate file, not configuration text"),
    ("PF120", "needs a second Postfix version (the target of the upgrade); 3.7 is installed"),
    ("PF121", "the bad example is a comment about an unset level; the changed decisions need Postfix 3.x+ at two levels (postfix_upgrade.rs)"),
    ("EX170", "about file timestamps of Debian's generated configuration, not configuration text"),
    ("QM001", "qmail-smtpd is not installed here (no Debian package); the example names files"),
    ("QM002", "qmail-smtpd is not installed here; the example names an empty file"),
    ("QM003", "qmail-smtpd is not installed here"),
    ("QM004", "qmail-newmrh/qmail-smtpd are not installed here"),
    ("QM008", "qmail-smtpd with AUTH/TLS patches is not installed here; the good example is prose"),
    ("QM009", "qmail-smtpd with AUTH patches is not installed here"),
    ("QM011", "qmail-remote is not installed here"),
    ("QM012", "qmail-send is not installed here"),
    ("QM013", "about the age of a cdb file, not its text"),
    ("QM015", "qmail's control file reader is not installed here"),
    ("QM016", "about a missing cdb file; the examples are commands"),
    ("QM018", "sslserver/qmail-smtpd are not installed here; the examples are commands"),
];

/// What `postconf` must say about an example.
#[derive(Clone, Copy)]
enum Pf {
    /// Exit 0, and no `warning:`/`fatal:` on stderr.
    Clean,
    /// Exit 0 with this text on stderr.
    Warns(&'static str),
    /// Non-zero exit with this text on stderr.
    Fails(&'static str),
}

/// Which file a Postfix example is: main.cf, master.cf service lines, or (for a good example
/// that completes the bad one) the bad example's master.cf plus this main.cf.
#[derive(Clone, Copy, PartialEq)]
enum PfFile {
    Main,
    Master,
    MainWithBadMaster,
}

const POSTFIX: &[(&str, PfFile, Pf, Pf)] = &[
    (
        "PF001",
        PfFile::Main,
        Pf::Fails("missing '=' after attribute name"),
        Pf::Clean,
    ),
    (
        "PF002",
        PfFile::Main,
        Pf::Warns("logical line must not start with whitespace"),
        Pf::Clean,
    ),
    // The match-list warning comes from the daemons (match_list.c), not postconf -n; the
    // smtpd part below checks that the entries before `#` still work.
    ("PF003", PfFile::Main, Pf::Clean, Pf::Clean),
    (
        "PF004",
        PfFile::Main,
        Pf::Warns("overriding earlier entry"),
        Pf::Clean,
    ),
    (
        "PF005",
        PfFile::Main,
        Pf::Warns("unused parameter: smtpd_relay_restriction="),
        Pf::Clean,
    ),
    (
        "PF006",
        PfFile::MainWithBadMaster,
        Pf::Warns("undefined parameter: mua_client_restrictions"),
        Pf::Clean,
    ),
    (
        "PF007",
        PfFile::Master,
        Pf::Fails("bad field count"),
        Pf::Clean,
    ),
    // postconf keeps only `permit_sasl_authenticated,`: the smtpd part shows the fatal.
    ("PF008", PfFile::Master, Pf::Clean, Pf::Clean),
    ("PF009", PfFile::Master, Pf::Clean, Pf::Clean),
    // Postfix 3.7 predates the 3.9 deprecations: both are accepted silently here.
    ("PF010", PfFile::Main, Pf::Clean, Pf::Clean),
    ("PF011", PfFile::Main, Pf::Clean, Pf::Clean),
    (
        "PF012",
        PfFile::Main,
        Pf::Fails("unreasonable macro call nesting"),
        Pf::Clean,
    ),
    // postconf does not check restriction names (the explanation says so); smtpd does.
    ("PF014", PfFile::Main, Pf::Clean, Pf::Clean),
    ("PF015", PfFile::Main, Pf::Clean, Pf::Clean),
    ("PF101", PfFile::Main, Pf::Clean, Pf::Clean),
    ("PF102", PfFile::Main, Pf::Clean, Pf::Clean),
    ("PF103", PfFile::Main, Pf::Clean, Pf::Clean),
    ("PF104", PfFile::Master, Pf::Clean, Pf::Clean),
    ("PF105", PfFile::Main, Pf::Clean, Pf::Clean),
    ("PF106", PfFile::Main, Pf::Clean, Pf::Clean),
    ("PF109", PfFile::Main, Pf::Clean, Pf::Clean),
    ("PF110", PfFile::Master, Pf::Clean, Pf::Clean),
    ("PF111", PfFile::Main, Pf::Clean, Pf::Clean),
    ("PF112", PfFile::Master, Pf::Clean, Pf::Clean),
    ("PF113", PfFile::Master, Pf::Clean, Pf::Clean),
];

/// Where an Exim example goes in the base configuration.
#[derive(Clone, Copy, PartialEq)]
enum Slot {
    /// Main-section lines; a line setting an option or named list the base sets replaces it,
    /// and `# no NAME` removes NAME.
    Main,
    /// Lines of acl_check_rcpt (followed by a final `accept`).
    Acl,
    /// The whole ACL (it names acl_check_rcpt itself).
    WholeAcl,
    /// The authenticators section (the example names its authenticator).
    Auth,
    /// Lines of the base's plain_server authenticator, replacing options of the same name.
    AuthLines,
    /// A line of the appendfile transport (replacing its `file`).
    Transport,
}

/// What `exim -bV` must do.
#[derive(Clone, Copy)]
enum Ex {
    Starts,
    Refuses(&'static str),
}

const EXIM: &[(&str, Slot, Ex, Ex)] = &[
    // A placeholder inside a value is taken literally; Exim starts.
    ("EX001", Slot::Main, Ex::Starts, Ex::Starts),
    ("EX002", Slot::Main, Ex::Refuses("MAIN_RELAY"), Ex::Starts),
    (
        "EX003",
        Slot::Main,
        Ex::Refuses("failed to open included configuration file"),
        Ex::Starts,
    ),
    ("EX004", Slot::Main, Ex::Starts, Ex::Starts),
    (
        "EX005",
        Slot::Main,
        Ex::Refuses("main option \"remote_smtp\" unknown"),
        Ex::Starts,
    ),
    ("EX101", Slot::Main, Ex::Starts, Ex::Starts),
    ("EX102", Slot::Main, Ex::Starts, Ex::Starts),
    ("EX110", Slot::WholeAcl, Ex::Starts, Ex::Starts),
    ("EX111", Slot::Main, Ex::Starts, Ex::Starts),
    ("EX112", Slot::Main, Ex::Starts, Ex::Starts),
    ("EX113", Slot::Main, Ex::Starts, Ex::Starts),
    ("EX114", Slot::Auth, Ex::Starts, Ex::Starts),
    ("EX120", Slot::Acl, Ex::Starts, Ex::Starts),
    ("EX121", Slot::Acl, Ex::Starts, Ex::Starts),
    ("EX122", Slot::Main, Ex::Starts, Ex::Starts),
    ("EX123", Slot::Main, Ex::Starts, Ex::Starts),
    ("EX130", Slot::AuthLines, Ex::Starts, Ex::Starts),
    ("EX140", Slot::Acl, Ex::Starts, Ex::Starts),
    ("EX141", Slot::Acl, Ex::Starts, Ex::Starts),
    ("EX142", Slot::Acl, Ex::Starts, Ex::Starts),
    ("EX150", Slot::Acl, Ex::Starts, Ex::Starts),
    ("EX151", Slot::Acl, Ex::Starts, Ex::Starts),
    ("EX152", Slot::Acl, Ex::Starts, Ex::Starts),
    (
        "EX160",
        Slot::Main,
        Ex::Refuses("allow_insecure_tainted_data"),
        Ex::Starts,
    ),
    ("EX161", Slot::Transport, Ex::Starts, Ex::Starts),
    ("EX180", Slot::Main, Ex::Starts, Ex::Starts),
    ("EX190", Slot::Main, Ex::Starts, Ex::Starts),
    ("EX191", Slot::Main, Ex::Starts, Ex::Starts),
    ("EX192", Slot::Main, Ex::Starts, Ex::Starts),
];

/// qmail tcp rules: (rule, client address asked with tcprulescheck, RELAYCLIENT value the bad
/// and the good rules give that client: None = not set). QM014's bad file must not compile.
const TCPRULES: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("QM005", "203.0.113.5", Some(""), None),
    ("QM006", "10.1.2.3", None, Some("")),
    ("QM007", "127.0.0.1", Some("1"), Some("")),
    ("QM010", "203.0.113.5", Some(""), None),
    ("QM014", "127.0.0.1", None, Some("")),
    ("QM017", "203.0.113.5", None, None),
];

// ---------------------------------------------------------------- Postfix

/// The lines of an example that belong to the file (drops the `# main.cf` / `# master.cf`
/// labels and notes in comments, keeps master.cf comment lines, which matter there).
fn pf_text(example: &str, file: PfFile) -> String {
    let mut out = String::new();
    for l in example.lines() {
        let t = l.trim();
        if file == PfFile::Main && t.starts_with('#') && !l.starts_with(' ') {
            continue;
        }
        if t == "# master.cf" || t == "# main.cf" {
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// `postconf` over a private directory: (exit ok, stderr).
fn postconf(main: &str, master: &str, args: &[&str]) -> (bool, String) {
    let t = tempfile::tempdir().unwrap();
    // Without myhostname, postconf looks up this machine's name, which took 1-2 s per run
    // here; appended, so an example's own lines keep their positions.
    let main = if main.lines().any(|l| l.starts_with("myhostname")) {
        main.to_string()
    } else {
        format!("{main}myhostname = mx.example.org\n")
    };
    std::fs::write(t.path().join("main.cf"), main).unwrap();
    std::fs::write(
        t.path().join("master.cf"),
        format!("{}{master}", smtpd_support::INTERNAL),
    )
    .unwrap();
    // Postfix rereads a main.cf modified within the last second until it is older (pselect
    // of 300 ms, about 2 s per run): date both files back.
    for f in ["main.cf", "master.cf"] {
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(t.path().join(f))
            .and_then(|h| h.set_modified(past))
            .unwrap();
    }
    let mut ok = true;
    let mut err = String::new();
    for a in args {
        let out = Command::new("postconf")
            .arg("-c")
            .arg(t.path())
            .arg(a)
            .output()
            .expect("run postconf");
        ok &= out.status.success();
        err.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    (ok, err)
}

fn check_postfix(rule: &Rule, file: PfFile, bad: Pf, good: Pf, fails: &mut Vec<String>) {
    for (kind, example, want) in [("bad", &rule.bad, bad), ("good", &rule.good, good)] {
        let (main, master) = match (file, kind) {
            (PfFile::Main, _) => (pf_text(example, file), String::new()),
            (PfFile::MainWithBadMaster, "good") => (
                pf_text(example, PfFile::Main),
                pf_text(&rule.bad, PfFile::Master),
            ),
            _ => (String::new(), pf_text(example, PfFile::Master)),
        };
        let args: &[&str] = if file == PfFile::Main {
            &["-n"]
        } else {
            &["-n", "-M", "-P"]
        };
        let t = std::time::Instant::now();
        let (ok, err) = postconf(&main, &master, args);
        if t.elapsed().as_secs() >= 2 {
            eprintln!("{} {kind}: postconf took {:?}", rule.code, t.elapsed());
        }
        let verdict = match want {
            Pf::Clean if ok && !err.contains("warning:") && !err.contains("fatal:") => None,
            Pf::Warns(w) if ok && err.contains(w) => None,
            Pf::Fails(w) if !ok && err.contains(w) => None,
            _ => Some(format!("exit ok={ok}, stderr: {}", err.trim())),
        };
        if let Some(v) = verdict {
            fails.push(format!("{} {kind} (postconf): {v}", rule.code));
        }
    }
}

/// A main.cf example as `-o` options of one listener (the long form keeps blanks).
fn as_overrides(main: &str) -> String {
    let mut out = String::new();
    let mut logical: Vec<String> = Vec::new();
    for l in main.lines() {
        if l.starts_with(char::is_whitespace) && !logical.is_empty() {
            let last = logical.last_mut().unwrap();
            last.push(' ');
            last.push_str(l.trim());
        } else if !l.trim().is_empty() && !l.trim_start().starts_with('#') {
            logical.push(l.trim().to_string());
        }
    }
    for l in logical {
        let (name, value) = l.split_once('=').unwrap();
        out.push_str(&format!("  -o {{ {} = {} }}\n", name.trim(), value.trim()));
    }
    out
}

/// The smtpd questions: (rule, kind, listener text, client address, login, recipient, the
/// reply class expected: '2', '4', '5', or 'x' for a connection closed without reply).
type Question = (
    &'static str,
    &'static str,
    String,
    &'static str,
    Option<&'static str>,
    &'static str,
    char,
);

fn smtpd_questions(r: &BTreeMap<String, Rule>) -> Vec<Question> {
    let main = |c: &str, k: &str| {
        let ex = if k == "bad" { &r[c].bad } else { &r[c].good };
        as_overrides(&pf_text(ex, PfFile::Main))
    };
    // master.cf examples: the first line is the `smtp` header, which the listener replaces.
    let master = |c: &str, k: &str| {
        let ex = if k == "bad" { &r[c].bad } else { &r[c].good };
        let text = pf_text(ex, PfFile::Master);
        text.split_once('\n')
            .map(|x| x.1.to_string())
            .unwrap_or_default()
    };
    let ext = "nobody@victim.example";
    vec![
        // PF003: the networks before `# office` still work.
        (
            "PF003",
            "bad",
            main("PF003", "bad"),
            "192.0.2.7",
            None,
            ext,
            '2',
        ),
        (
            "PF003",
            "good",
            main("PF003", "good"),
            "192.0.2.7",
            None,
            ext,
            '2',
        ),
        // PF008: `reject` becomes a command-line argument: smtpd dies before its greeting.
        (
            "PF008",
            "bad",
            master("PF008", "bad"),
            "192.0.2.7",
            None,
            ext,
            'x',
        ),
        // The whole list is in effect: a client that did not log in meets `reject`.
        (
            "PF008",
            "good",
            master("PF008", "good"),
            "192.0.2.7",
            None,
            ext,
            '5',
        ),
        // PF009: the orphaned `-o smtpd_tls_security_level=encrypt` hits the port-25 service.
        (
            "PF009",
            "bad",
            master("PF009", "bad"),
            "198.51.100.9",
            None,
            "root@localhost",
            '5',
        ),
        (
            "PF009",
            "good",
            master("PF009", "good"),
            "198.51.100.9",
            None,
            "root@localhost",
            '2',
        ),
        // PF113: the listener's own relay_domains does not make the domain relayable.
        (
            "PF113",
            "bad",
            master("PF113", "bad"),
            "203.0.113.5",
            None,
            "u@partner.example",
            '4',
        ),
        // PF015: host bits set: the office's lookup fails (451 4.3.0); the network works.
        (
            "PF015",
            "bad",
            main("PF015", "bad"),
            "192.168.1.20",
            None,
            ext,
            '4',
        ),
        (
            "PF015",
            "good",
            main("PF015", "good"),
            "192.168.1.20",
            None,
            ext,
            '2',
        ),
        (
            "PF101",
            "bad",
            main("PF101", "bad"),
            "203.0.113.5",
            None,
            ext,
            '2',
        ),
        (
            "PF101",
            "good",
            main("PF101", "good"),
            "203.0.113.5",
            None,
            ext,
            '5',
        ),
        (
            "PF102",
            "bad",
            main("PF102", "bad"),
            "203.0.113.5",
            Some("alice"),
            ext,
            '5',
        ),
        (
            "PF102",
            "good",
            main("PF102", "good"),
            "203.0.113.5",
            Some("alice"),
            ext,
            '2',
        ),
        (
            "PF103",
            "bad",
            main("PF103", "bad"),
            "203.0.113.5",
            None,
            ext,
            'x',
        ),
        (
            "PF103",
            "good",
            main("PF103", "good"),
            "203.0.113.5",
            None,
            ext,
            '5',
        ),
        // PF110: inbound mail for an own domain from another MTA.
        (
            "PF110",
            "bad",
            master("PF110", "bad"),
            "198.51.100.9",
            None,
            "root@localhost",
            '5',
        ),
        (
            "PF110",
            "good",
            master("PF110", "good"),
            "198.51.100.9",
            None,
            "root@localhost",
            '2',
        ),
        // PF105: with the default reject_tempfail_action the stranger still gets the 554 of
        // reject_unauth_destination, although the probe is sent first.
        (
            "PF105",
            "bad",
            main("PF105", "bad"),
            "203.0.113.5",
            None,
            ext,
            '5',
        ),
        // PF112: without wrapper mode port 465 speaks plain SMTP (a client that starts TLS
        // fails); with it, a plain client gets no greeting (smtpd waits for a TLS handshake).
        (
            "PF112",
            "bad",
            master("PF112", "bad"),
            "198.51.100.9",
            None,
            "root@localhost",
            '2',
        ),
        (
            "PF112",
            "good",
            master("PF112", "good"),
            "198.51.100.9",
            None,
            "root@localhost",
            'x',
        ),
    ]
}

/// The DNS world of the blocklist questions, served by the private resolver
/// (tests/resolver_support) that the MTAs under test use as their only nameserver.
const DNS_ZONE: &[&str] = &[
    // Spamhaus asked through a public resolver answers every query with the error code
    // 127.255.255.254 (spamhaus.org/faqs/dnsbl-usage, "Error codes")...
    "--address=/zen.spamhaus.org/127.255.255.254",
    // ...except that the RFC 5782 (section 5) test entry 127.0.0.2 is listed as ever.
    "--host-record=2.0.0.127.zen.spamhaus.org,127.0.0.2",
    // A closed list that now answers "listed" for every address, as NJABL and AHBL did after
    // their shutdown (the case EX150/PF106 warn of). The zone is the examples'.
    "--address=/dnsbl.sorbs.net/127.0.0.2",
    // A list whose servers fail: its queries go to a loopback port where nothing answers, so
    // the lookup fails (glibc: TRY_AGAIN) after the resolver's 1 s timeout.
    "--server=/bl.example.net/127.0.0.1#9",
];

/// The blocklist questions, asked of a smtpd that uses the private resolver of DNS_ZONE.
/// A stranger (203.0.113.5) gets Spamhaus's error code; the test entry 127.0.0.2 is listed.
/// mynetworks leaves out 127.0.0.0/8 so that the test entry is not trusted.
fn smtpd_dns_questions(r: &BTreeMap<String, Rule>) -> Vec<Question> {
    let listener = |k: &str| {
        let ex = if k == "bad" {
            &r["PF106"].bad
        } else {
            &r["PF106"].good
        };
        format!(
            "{}  -o mynetworks=192.0.2.0/24\n",
            as_overrides(&pf_text(ex, PfFile::Main))
        )
    };
    // Unfiltered, the error code refuses a stranger; the filter lets it through, and both
    // refuse the listed test entry.
    let mut qs = Vec::new();
    for (client, bad, good) in [("203.0.113.5", '5', '2'), ("127.0.0.2", '5', '5')] {
        for (kind, want) in [("bad", bad), ("good", good)] {
            qs.push((
                "PF106",
                kind,
                listener(kind),
                client,
                None,
                "root@localhost",
                want,
            ));
        }
    }
    qs
}

/// Replies whose text an explanation quotes: (rule, kind, client, text the reply contains).
const SMTPD_REPLY_TEXT: &[(&str, &str, &str, &str)] = &[(
    "PF106",
    "bad",
    "203.0.113.5",
    "554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org",
)];

/// The listener Exim's callouts reach (the last one of the smtpd questions' master): a
/// smtpd for which Exim, connecting from 127.0.0.1, is a stranger, so a recipient in
/// sender.example gets `554 5.7.1 ... Relay access denied` (reject_unauth_destination; the
/// default defer_unauth_destination's 454 would make Exim defer the sender, not refuse it).
const CALLOUT_TARGET: &str = "  -o mynetworks=192.0.2.0/24\n  -o smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination\n";

/// The private Postfix of the smtpd questions, kept running for Exim's callouts.
struct CalloutTarget {
    _run: smtpd_support::Running,
    port: u16,
    log_from: usize,
}

fn check_smtpd(
    r: &BTreeMap<String, Rule>,
    fails: &mut Vec<String>,
) -> (usize, Option<CalloutTarget>) {
    let Some(master) = smtpd_support::require() else {
        return (0, None);
    };
    let mut qs = smtpd_questions(r);
    // The master's only nameserver is the private resolver: verify(8)'s probes (PF105) and
    // the blocklist lookups never reach the host's resolver.
    let dns = match smtpd_support::resolver::Resolver::start(DNS_ZONE) {
        Ok(d) => {
            qs.extend(smtpd_dns_questions(r));
            Some(d)
        }
        Err(why) => {
            skip_or_panic(&format!("blocklist questions: {why}"));
            None
        }
    };
    let mut listeners: Vec<&str> = qs.iter().map(|q| q.2.as_str()).collect();
    listeners.push(CALLOUT_TARGET);
    let sc = smtpd_support::Scenario {
        name: "rule-examples",
        // Level 0 would leave smtpd_relay_restrictions empty (Postfix 3.3+), and every
        // listener that does not set its own relay list would fail the safety check.
        main: "compatibility_level = 3.6\n",
        listeners: &listeners,
        files: &[],
        postmap: &[],
    };
    // Only log lines written after this point count (the log file is shared and kept).
    let log_from = std::fs::metadata(LOG)
        .map(|m| m.len() as usize)
        .unwrap_or(0);
    let run = smtpd_support::start_with_dns(&master, &sc, dns).unwrap_or_else(|e| panic!("{e}"));
    // One thread per question: a listener whose smtpd cannot start answers nothing until the
    // client's 10 s timeout, and those waits overlap.
    let replies: Vec<(Option<String>, std::time::Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = qs
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let port = run.ports[i];
                s.spawn(move || {
                    let t = std::time::Instant::now();
                    (smtpd_support::ask(port, q.3, q.4, q.5), t.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((code, kind, _, addr, _, rcpt, want), (reply, took)) in qs.iter().zip(replies) {
        if *want == 'x' {
            eprintln!("{code} {kind}: no reply after {took:?}");
        }
        for (c, k, a, text) in SMTPD_REPLY_TEXT {
            let same = (c, k, a) == (code, kind, addr);
            if same && !reply.as_deref().is_some_and(|l| l.contains(text)) {
                fails.push(format!(
                    "{code} {kind} ({addr}): want `{text}`, got {reply:?}"
                ));
            }
        }
        let got = reply
            .as_deref()
            .and_then(|l| l.chars().next())
            .unwrap_or('x');
        if got != *want {
            fails.push(format!(
                "{code} {kind} (smtpd, {addr} -> {rcpt}): want {want}xx, got {reply:?}"
            ));
        }
    }
    // The log lines the explanations quote for these listeners.
    for (code, want) in [
        (
            "PF003",
            "warning: mynetworks: comment at end of line is not supported: # office",
        ),
        ("PF103", "bad command startup -- throttling"),
        (
            "PF103",
            "specify at least one working instance of: reject_unauth_destination",
        ),
    ] {
        if !smtpd_logged(want, log_from) {
            fails.push(format!("{code}: smtpd did not log `{want}`"));
        }
    }
    let port = run.ports[qs.len()];
    let target = CalloutTarget {
        _run: run,
        port,
        log_from,
    };
    (qs.len(), Some(target))
}

/// The harness's maillog_file.
const LOG: &str = "/var/log/relaydoctor-smtpd-test.log";

/// Whether the harness's Postfix log has `want` after byte `from` (postlogd writes it
/// asynchronously).
fn smtpd_logged(want: &str, from: usize) -> bool {
    for _ in 0..20 {
        let log = std::fs::read(LOG).unwrap_or_default();
        if String::from_utf8_lossy(log.get(from..).unwrap_or_default()).contains(want) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    false
}

// ---------------------------------------------------------------- Exim

const EXIM_BASE: &str = "\
primary_hostname = mx.example.org
domainlist local_domains = example.org
domainlist relay_to_domains = relay.example
hostlist relay_from_hosts = 127.0.0.1 : 192.0.2.0/24
acl_smtp_rcpt = acl_check_rcpt
tls_certificate = /etc/exim/cert.pem
tls_privatekey = /etc/exim/key.pem
never_users = root
spool_directory = @SPOOL@
@MAIN@
begin acl

@ACL@

begin routers

local:
  driver = accept
  domains = +local_domains
  transport = local_delivery

outbound:
  driver = manualroute
  domains = ! +local_domains
  route_list = * 127.0.0.9
  transport = remote_smtp

begin transports

local_delivery:
  driver = appendfile
  @TRANSPORT@

remote_smtp:
  driver = smtp
  port = @PORT@

begin authenticators

@AUTH@
";

const BASE_ACL: &str = "\
  accept  hosts = +relay_from_hosts
  accept  authenticated = *
  require message = relay not permitted
          domains = +local_domains : +relay_to_domains
  require verify = recipient
  accept";

const BASE_AUTH: &str = "\
plain_server:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if eq{$auth3}{secret}}
  server_advertise_condition = ${if def:tls_in_cipher}";

/// The option or list a configuration line sets (`domainlist NAME =` counts as NAME).
fn setting(line: &str) -> Option<String> {
    let (lhs, _) = line.split_once('=')?;
    let words: Vec<&str> = lhs.split_whitespace().collect();
    words.last().map(|w| w.to_string())
}

/// `lines` with every line that sets one of `names` removed.
fn without(lines: &str, names: &[String]) -> String {
    lines
        .lines()
        .filter(|l| setting(l).is_none_or(|s| !names.contains(&s)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An example that starts with its own `name:` line (a whole authenticator or ACL).
fn names_itself(ex: &str) -> bool {
    ex.lines()
        .next()
        .is_some_and(|l| !l.starts_with(' ') && l.trim_end().ends_with(':'))
}

fn exim_config(example: &str, slot: Slot) -> String {
    let ex = example.trim_matches('\n');
    let set: Vec<String> = ex.lines().filter_map(setting).collect();
    let removed: Vec<String> = ex
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# no "))
        .map(|s| s.trim().to_string())
        .collect();
    let mut base = EXIM_BASE.to_string();
    let (mut main, mut acl, mut auth, mut transport) = (
        String::new(),
        format!("acl_check_rcpt:\n{BASE_ACL}"),
        BASE_AUTH.to_string(),
        "file = /dev/null".to_string(),
    );
    match slot {
        Slot::Main => {
            let head = base.split_once("@MAIN@").unwrap().0.to_string();
            let kept = without(&without(&head, &set), &removed);
            base = base.replacen(&head, &format!("{kept}\n"), 1);
            main = ex.to_string();
        }
        Slot::Acl => acl = format!("acl_check_rcpt:\n{ex}\n  accept"),
        Slot::WholeAcl => acl = ex.to_string(),
        Slot::Auth if names_itself(ex) => auth = ex.to_string(),
        // Option lines of the base authenticator: the example's lines first (Exim wants
        // `driver` before private options), then the base's other lines.
        Slot::Auth | Slot::AuthLines => {
            let mut set = set.clone();
            if slot == Slot::Auth {
                // Offered without TLS, like the bad example, so that -bh can try AUTH.
                set.push("server_advertise_condition".into());
            }
            let rest = without(BASE_AUTH.split_once('\n').unwrap().1, &set);
            auth = format!("plain_server:\n{ex}\n{rest}");
        }
        Slot::Transport => transport = ex.trim().to_string(),
    }
    base.replace("@MAIN@", &main)
        .replace("@ACL@", &acl)
        .replace("@AUTH@", &auth)
        .replace("@TRANSPORT@", &transport)
}

fn exim_binary() -> Option<PathBuf> {
    let out = Command::new(repo("scripts/exim-oracle")).output().ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && p.is_file()).then_some(p)
}

/// `exim -C conf ARGS` with `input` on stdin: (exit ok, stdout, stderr).
fn exim(bin: &Path, conf: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    exim_in(Command::new(bin), conf, args, input)
}

/// `exim` run by `cmd` (the binary itself, or the binary in a private resolver's namespace).
fn exim_in(mut cmd: Command, conf: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    let out = common::output_with_stdin(cmd.arg("-C").arg(conf).args(args), input.as_bytes());
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The reply to the last SMTP command of `session` (after the greeting) under `-bh ip`
/// (`-bhc ip` with `callouts`: the callouts are made), exim run by `cmd`.
fn exim_reply(
    cmd: Command,
    conf: &Path,
    ip: &str,
    (auth, callouts): (bool, bool),
    session: &[&str],
) -> String {
    let mut args = vec![];
    if auth {
        args.extend(["-oMaa", "PLAIN", "-oMai", "alice"]);
    }
    args.extend([if callouts { "-bhc" } else { "-bh" }, ip]);
    let mut input: String = session.iter().map(|c| format!("{c}\r\n")).collect();
    input.push_str("QUIT\r\n");
    let (_, out, _) = exim_in(cmd, conf, &args, &input);
    let finals: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.len() >= 4 && l.as_bytes()[3] == b' ' && l[..3].bytes().all(|b| b.is_ascii_digit())
        })
        .collect();
    // greeting, one final reply per command, QUIT
    finals
        .get(session.len())
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("no reply in {out:?}"))
}

/// `openssl passwd -1 -salt rdtest secret`, for crypteq.
const PASSWD: &str = "$1$rdtest$1rBxUY3nt04AuHnjNjJh1.";

/// `exim -bh` questions: (rule, client, authenticated, SMTP commands after the greeting, reply
/// class for bad, for good).
type BhQuestion = (
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    char,
    char,
);

const EXIM_BH: &[BhQuestion] = &[
    (
        "EX101",
        "203.0.113.5",
        false,
        &["EHLO c.example", "MAIL FROM:<>", "RCPT TO:<a@example.org>"],
        '5',
        '2',
    ),
    (
        "EX102",
        "203.0.113.5",
        false,
        &["EHLO c.example", "MAIL FROM:<>", "RCPT TO:<a@example.org>"],
        '4',
        '2',
    ),
    (
        "EX110",
        "203.0.113.5",
        false,
        &[
            "EHLO c.example",
            "MAIL FROM:<>",
            "RCPT TO:<a@victim.example>",
        ],
        '2',
        '5',
    ),
    (
        "EX111",
        "203.0.113.5",
        false,
        &[
            "EHLO c.example",
            "MAIL FROM:<>",
            "RCPT TO:<a@victim.example>",
        ],
        '2',
        '5',
    ),
    (
        "EX112",
        "203.0.113.5",
        false,
        &[
            "EHLO c.example",
            "MAIL FROM:<>",
            "RCPT TO:<a@victim.example>",
        ],
        '2',
        '5',
    ),
    // EX113: the hack rewrites before the ACL, and the relay check refuses the result; without
    // the hack the address is an ordinary local part of the local domain.
    (
        "EX113",
        "203.0.113.5",
        false,
        &[
            "EHLO c.example",
            "MAIL FROM:<>",
            "RCPT TO:<a%victim.example@example.org>",
        ],
        '5',
        '2',
    ),
    // EX114: a wrong password authenticates with the bad example and is refused (535) by the
    // good one, whose password file (PASSWD below) holds alice's real one.
    (
        "EX114",
        "203.0.113.5",
        false,
        &["EHLO c.example", "AUTH PLAIN AGFsaWNlAHdyb25n"],
        '2',
        '5',
    ),
    (
        "EX114",
        "203.0.113.5",
        false,
        &["EHLO c.example", "AUTH PLAIN AGFsaWNlAHNlY3JldA=="],
        '2',
        '2',
    ),
    (
        "EX120",
        "203.0.113.5",
        true,
        &[
            "EHLO c.example",
            "MAIL FROM:<>",
            "RCPT TO:<a@victim.example>",
        ],
        '5',
        '2',
    ),
    (
        "EX121",
        "192.0.2.7",
        false,
        &[
            "EHLO c.example",
            "MAIL FROM:<>",
            "RCPT TO:<a@victim.example>",
        ],
        '5',
        '2',
    ),
    // EX190: the missing list file kills the session at RCPT, mail for the local domain
    // included (`n`: no reply); guarded by `${if exists}` the item is dropped.
    (
        "EX190",
        "203.0.113.5",
        false,
        &["EHLO c.example", "MAIL FROM:<>", "RCPT TO:<a@example.org>"],
        'n',
        '2',
    ),
    // EX191: `192.0.2.0/24, 198.51.100.0/24` is one malformed item that ends the host list
    // (no DNS involved), so the office network cannot relay. EX192's questions need a
    // reverse lookup: tests/exim_oracle.rs asks them under a private resolver.
    (
        "EX191",
        "198.51.100.7",
        false,
        &[
            "EHLO c.example",
            "MAIL FROM:<>",
            "RCPT TO:<a@victim.example>",
        ],
        '5',
        '2',
    ),
];

/// What a network question needs: a callout made by `-bhc` to the dead next hop
/// 127.0.0.9:@PORT@ where nothing listens (Callout) or to the private Postfix's
/// CALLOUT_TARGET (Target), or the private resolver of DNS_ZONE.
#[derive(Clone, Copy, PartialEq)]
enum Net {
    Callout,
    Target,
    Dns,
}

/// Questions whose answer depends on another server: (rule, need, client, SMTP commands,
/// reply for bad, reply for good). A reply is its class or, where the explanation quotes
/// it, the whole reply.
type NetQuestion = (
    &'static str,
    Net,
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
);

const FROM_SENDER: &[&str] = &[
    "EHLO c.example",
    "MAIL FROM:<u@sender.example>",
    "RCPT TO:<a@example.org>",
];

const EXIM_NET: &[NetQuestion] = &[
    // An unreachable sender server defers (451) rather than refuses; without the callout
    // the sender routes and is accepted.
    (
        "EX140",
        Net::Callout,
        "203.0.113.5",
        FROM_SENDER,
        "451 Could not complete sender verify callout",
        "2",
    ),
    // A server that refuses the address (5xx) refuses the sender.
    (
        "EX140",
        Net::Target,
        "203.0.113.5",
        FROM_SENDER,
        "550 Sender verify failed",
        "2",
    ),
    // `random` probes a made-up local part first (the target logs it, see
    // check_exim_net); both are refused here, so the sender is.
    (
        "EX142",
        Net::Target,
        "203.0.113.5",
        FROM_SENDER,
        "550 Sender verify failed",
        "2",
    ),
    // An unreachable next hop defers the recipient.
    (
        "EX141",
        Net::Callout,
        "203.0.113.5",
        &[
            "EHLO c.example",
            "MAIL FROM:<>",
            "RCPT TO:<a@relay.example>",
        ],
        "451 Could not complete recipient verify callout",
        "2",
    ),
    // A list that lists everyone refuses a stranger; the filtered zen lets its error code
    // through; both refuse the test entry.
    ("EX150", Net::Dns, "203.0.113.5", FROM_SENDER, "5", "2"),
    ("EX150", Net::Dns, "127.0.0.2", FROM_SENDER, "5", "5"),
    // Unfiltered, Spamhaus's error code makes every client look listed.
    ("EX151", Net::Dns, "203.0.113.5", FROM_SENDER, "5", "2"),
    ("EX151", Net::Dns, "127.0.0.2", FROM_SENDER, "5", "5"),
    // A failing list: +include_unknown refuses, the default lets the client on.
    ("EX152", Net::Dns, "203.0.113.5", FROM_SENDER, "5", "2"),
];

/// `conf` rewritten to call out to the private Postfix on `port` (127.0.0.1 is this host:
/// the router must be told to send there anyway, `self = send`, and the transport to
/// connect, `allow_localhost`), with a callout cache of its own.
fn targeting(conf: &Path, port: u16) -> PathBuf {
    let text = std::fs::read_to_string(conf).unwrap();
    let name = conf.file_stem().unwrap().to_string_lossy();
    let mut out = String::new();
    for l in text.lines() {
        match l.trim_start() {
            "route_list = * 127.0.0.9" => out.push_str("  route_list = * 127.0.0.1\n  self = send"),
            t if t.starts_with("port = ") => {
                out.push_str(&format!("  port = {port}\n  allow_localhost"))
            }
            t if t.starts_with("spool_directory = ") => out.push_str(&format!("{l}-{name}")),
            _ => out.push_str(l),
        }
        out.push('\n');
    }
    let path = conf.with_file_name(format!("{name}-target.conf"));
    std::fs::write(&path, out).unwrap();
    path
}

/// Asks EXIM_NET of the configurations in `confs`; the DNS questions only where a private
/// resolver can run, the Target ones only with the private Postfix. Returns how many
/// questions were asked.
fn check_exim_net(
    bin: &Path,
    confs: &BTreeMap<(String, &str), PathBuf>,
    target: Option<&CalloutTarget>,
    fails: &mut Vec<String>,
) -> usize {
    let dns = match smtpd_support::resolver::Resolver::start(DNS_ZONE) {
        Ok(d) => Some(d),
        Err(why) => {
            skip_or_panic(&format!("Exim blocklist questions: {why}"));
            None
        }
    };
    let mut asked = 0;
    for (code, need, ip, session, bad, good) in EXIM_NET {
        for (kind, want) in [("bad", bad), ("good", good)] {
            let conf = &confs[&(code.to_string(), kind)];
            let (cmd, conf) = match (need, &dns, target) {
                (Net::Callout, _, _) => (Command::new(bin), conf.clone()),
                (Net::Target, _, Some(t)) => (Command::new(bin), targeting(conf, t.port)),
                (Net::Dns, Some(d), _) => (d.command(bin), conf.clone()),
                _ => continue,
            };
            let callouts = *need != Net::Dns;
            let reply = exim_reply(cmd, &conf, ip, (false, callouts), session);
            asked += 1;
            if !reply.starts_with(*want) {
                let how = if callouts {
                    "callout"
                } else {
                    "private resolver"
                };
                fails.push(format!(
                    "{code} {kind} (exim -bh {ip}, {how}): want {want}, got {reply}"
                ));
            }
        }
    }
    // EX142: `random` probed a made-up local part ($primary_hostname-$tod_epoch-testing,
    // callout_random_local_part's default) before the sender's own address.
    let probe = "-testing@sender.example>: Relay access denied";
    if let Some(t) = target {
        if !smtpd_logged(probe, t.log_from) {
            fails.push(format!("EX142: the callout target did not log `{probe}`"));
        }
    }
    asked
}

fn check_exim(
    r: &BTreeMap<String, Rule>,
    target: Option<&CalloutTarget>,
    fails: &mut Vec<String>,
) -> (usize, usize) {
    let Some(bin) = exim_binary() else {
        skip_or_panic("scripts/exim-oracle did not provide an exim binary");
        return (0, 0);
    };
    // Exim accepts a -C file as root only from a directory others cannot write; the exim
    // user must reach the spool directory (the callout cache) inside it.
    let t = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let spool = t.path().join("spool");
    // The next hop's port: free now, so a callout finds nothing listening (refused).
    let dead = std::net::TcpListener::bind("127.0.0.9:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let mut confs = BTreeMap::new();
    for (code, slot, bad, good) in EXIM {
        let rule = &r[*code];
        for (kind, example, want) in [("bad", &rule.bad, bad), ("good", &rule.good, good)] {
            let conf = t.path().join(format!("{code}-{kind}.conf"));
            // The password file of EX114's good example: alice's password is "secret".
            let passwd = t.path().join("passwd");
            std::fs::write(&passwd, format!("alice:{PASSWD}\n")).unwrap();
            let text = exim_config(example, *slot)
                .replace("/etc/exim4/passwd", &passwd.to_string_lossy())
                .replace("@SPOOL@", &spool.to_string_lossy())
                .replace("@PORT@", &dead.to_string());
            std::fs::write(&conf, text).unwrap();
            let (ok, out, err) = exim(&bin, &conf, &["-bV"], "");
            let text = format!("{out}{err}");
            let fine = match want {
                Ex::Starts => ok,
                Ex::Refuses(w) => !ok && text.contains(w),
            };
            if !fine {
                let tail: String = text.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
                fails.push(format!("{code} {kind} (exim -bV): ok={ok}: {tail}"));
            }
            confs.insert((code.to_string(), kind), conf);
        }
    }
    for (code, ip, auth, session, bad, good) in EXIM_BH {
        for (kind, want) in [("bad", bad), ("good", good)] {
            let conf = &confs[&(code.to_string(), kind)];
            let reply = exim_reply(Command::new(&bin), conf, ip, (*auth, false), session);
            if !reply.starts_with(*want) {
                fails.push(format!(
                    "{code} {kind} (exim -bh {ip}): want {want}xx, got {reply}"
                ));
            }
        }
    }
    let net = check_exim_net(&bin, &confs, target, fails);
    (EXIM.len(), EXIM_BH.len() * 2 + net)
}

// ---------------------------------------------------------------- qmail

/// The tcprules lines of an example (after a `/etc/tcp.smtp:` or `tcp.submission:` label).
fn tcp_lines(example: &str) -> String {
    let mut out = String::new();
    for l in example.lines() {
        let l = l.trim();
        let l = match l.split_once(": ") {
            Some((label, rest)) if label.starts_with("tcp.") || label.starts_with('/') => rest,
            _ => l,
        };
        if l.ends_with(':') || l.starts_with("run:") || l.is_empty() {
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

fn check_tcprules(r: &BTreeMap<String, Rule>, fails: &mut Vec<String>) -> usize {
    if Command::new("tcprules").arg("-h").output().is_err() {
        skip_or_panic("tcprules (ucspi-tcp) is not installed");
        return 0;
    }
    let t = tempfile::tempdir().unwrap();
    for (code, ip, bad, good) in TCPRULES {
        let rule = &r[*code];
        for (kind, example, want) in [("bad", &rule.bad, bad), ("good", &rule.good, good)] {
            let src = tcp_lines(example);
            let cdb = t.path().join(format!("{code}-{kind}.cdb"));
            let out = common::output_with_stdin(
                Command::new("tcprules")
                    .arg(&cdb)
                    .arg(t.path().join("rules.tmp")),
                src.as_bytes(),
            );
            let err = String::from_utf8_lossy(&out.stderr);
            if *code == "QM014" && kind == "bad" {
                if out.status.success() || !err.contains("unable to parse this line") {
                    fails.push(format!("QM014 bad: tcprules accepted {src:?}: {err}"));
                }
                continue;
            }
            if !out.status.success() {
                fails.push(format!("{code} {kind}: tcprules refused {src:?}: {err}"));
                continue;
            }
            let check = Command::new("tcprulescheck")
                .arg(&cdb)
                .env("TCPREMOTEIP", ip)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&check.stdout);
            let got = text
                .lines()
                .find_map(|l| l.strip_prefix("set environment variable RELAYCLIENT="));
            if got != *want {
                fails.push(format!(
                    "{code} {kind} (tcprulescheck {ip}): want RELAYCLIENT {want:?}, got {text:?}"
                ));
            }
        }
    }
    TCPRULES.len()
}

#[test]
fn examples_run_in_the_real_mta() {
    let all = rules(&["postfix", "exim", "qmail"]);
    // Every rule chooses: an oracle table entry, or NO_ORACLE with a reason.
    let covered: Vec<&str> = POSTFIX
        .iter()
        .map(|x| x.0)
        .chain(EXIM.iter().map(|x| x.0))
        .chain(TCPRULES.iter().map(|x| x.0))
        .chain(NO_ORACLE.iter().map(|x| x.0))
        .collect();
    for code in all.keys() {
        assert!(
            covered.contains(&code.as_str()),
            "{code}: add its examples to an oracle table or to NO_ORACLE with the reason"
        );
    }
    for c in &covered {
        assert!(all.contains_key(*c), "{c} is listed but is not a rule");
    }
    if Command::new("postconf")
        .arg("-h")
        .arg("mail_version")
        .output()
        .is_err()
    {
        skip_or_panic("postconf (Debian package postfix) is not installed");
        return;
    }
    let mut fails = Vec::new();
    let t = std::time::Instant::now();
    for (code, file, bad, good) in POSTFIX {
        check_postfix(&all[*code], *file, *bad, *good, &mut fails);
    }
    eprintln!("postconf: {:?}", t.elapsed());
    let (asked, target) = check_smtpd(&all, &mut fails);
    eprintln!("smtpd: {:?}", t.elapsed());
    let (bv, bh) = check_exim(&all, target.as_ref(), &mut fails);
    eprintln!("exim: {:?}", t.elapsed());
    let tcp = check_tcprules(&all, &mut fails);
    eprintln!(
        "postconf: {} rules; smtpd: {asked} questions; exim -bV: {bv} rules, -bh/-bhc: {bh} questions; tcprules: {tcp} rules; no oracle: {}",
        POSTFIX.len(),
        NO_ORACLE.len()
    );
    assert!(
        fails.is_empty(),
        "examples that do not behave as their rule says:\n{}",
        fails.join("\n")
    );
}

// ---------------------------------------------------------------- quoted text

/// Backtick spans that are not MTA output (configuration, commands, code) or whose source is
/// not installed here, with the reason. Keyed by rule and the span's text.
const QUOTE_EXCEPTIONS: &[(&str, &str, &str)] = &[
    ("DN101", "553 sorry, that domain isn't in my list of allowed rcpthosts", "qmail-smtpd.c err_nogateway (qmail is not installed)"),
    ("DN101", "550 relay not permitted", "the message text of Exim's example configuration (`message = relay not permitted`), not built in"),
    ("PF003", "#comment after other text is not allowed", "Postfix 3.8+ wording: src/util/mystrtok.c of v3.8.0, `%s: #comment after other text is not allowed: %s %.20s...`; 3.7 is installed"),
    ("PF010", "support for parameter \"NAME\" will be removed; instead, ...", "Postfix 3.9+ postconf: src/postconf/postconf_unused.c of v3.9.0/v3.11.0; 3.7 is installed"),
    ("PF014", "reject_rbl_client a.example b.example", "configuration"),
    ("PF107", "warning: hash:/etc/postfix/virtual is unavailable", "src/util/dict_surrogate.c:81 `%s:%s is unavailable. %s`, which strings(1) prints joined to its neighbour (`mac_expand_add_r%s:%s is unavailable. %s`)"),
    ("PF121", "Postfix is running with backwards-compatible default settings", "Postfix 3.0-3.5 wording: src/postfix/postfix.c of v3.5.0 line 581; 3.7 is installed"),
    ("PF111", "XCLIENT ADDR=127.0.0.1", "an SMTP command a client sends"),
    ("PF111", "XCLIENT LOGIN=anyone", "an SMTP command a client sends"),
    ("PF120", "--target-version X.Y", "relaydoctor's own option"),
    ("PF120", "--target-compat", "relaydoctor's own option"),
    ("EX113", "require domains = +local_domains : +relay_to_domains", "configuration"),
];

/// Rule files whose quotes come from software that is not installed here: their spans are
/// checked by hand against the cited source (qmail: netqmail/ucspi-tcp source; Plesk and
/// relaydoctor's own texts are commands, not MTA output).
const UNCHECKED_FILES: &[(&str, &str)] = &[
    ("qmail", "qmail-smtpd is not installed (no Debian package); tcprules' own messages are checked by examples_run_in_the_real_mta"),
    ("plesk", "Plesk commands and MariaDB errors, not MTA output (plesk_errors.rs runs MariaDB)"),
    ("general", "relaydoctor's own options and comments"),
];

/// A span that is configuration or input rather than output: a single word (a name, an
/// address, a value), a `name = value` or `name=value` setting, a command-line option, a
/// `$name`/`${...}` expression, a `*_name` family, a template tag, or a command line of
/// the tools the rules tell users to run.
fn is_configuration(q: &str) -> bool {
    !q.contains(' ')
        || regex::Regex::new(
            r"^(-|\$|\*|\{%|[a-z][a-z0-9_]* ?= ?\S|(rblsmtpd|postmap|postconf|postfix|relaydoctor|exim|exim4|tcprules|tcpserver|systemctl|invoke-rc\.d|plesk|mailmng-server) )",
        )
        .unwrap()
        .is_match(q)
}

enum Tok {
    Lit(char),
    Any,
}

/// `%s`, `%d`, `%.30s`, `%m` ... and Postfix's `$name`/`${name...}` templates become wildcards.
fn format_tokens(s: &str) -> Vec<Tok> {
    let re = regex::Regex::new(r"^(%[-#0-9.*lhzj]*[sdiuxXcplfm]|\$\{[^}]*\}|\$[a-z_]+)").unwrap();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if let Some(m) = re.find(&s[i..]) {
            out.push(Tok::Any);
            i += m.end();
        } else {
            let c = s[i..].chars().next().unwrap();
            out.push(Tok::Lit(c));
            i += c.len_utf8();
        }
    }
    out
}

const PLACEHOLDER: &str = r"\.\.\.|<[^>]*>|\[\.\.\.\]|\bN\b|\bNAME\b|\bVALUE\b|\bZONE\b";

fn quote_tokens(q: &str) -> Vec<Tok> {
    let re = regex::Regex::new(PLACEHOLDER).unwrap();
    let mut out = vec![Tok::Any];
    let mut last = 0;
    for m in re.find_iter(q) {
        out.extend(q[last..m.start()].chars().map(Tok::Lit));
        out.push(Tok::Any);
        last = m.end();
    }
    out.extend(q[last..].chars().map(Tok::Lit));
    out.push(Tok::Any);
    out
}

/// The most literal characters of the quote that can be matched against literal characters
/// of the format, over all strings both patterns describe (None: they describe no common
/// string). A wildcard on either side may absorb text of the other, so the count keeps a
/// `%s` from "matching" any quote.
fn best_alignment(q: &[Tok], f: &[Tok]) -> Option<usize> {
    let (n, m) = (q.len(), f.len());
    let mut best = vec![vec![None::<usize>; m + 1]; n + 1];
    best[0][0] = Some(0);
    for i in 0..=n {
        for j in 0..=m {
            let Some(v) = best[i][j] else { continue };
            let mut put = |a: usize, b: usize, w: usize| {
                if best[a][b].is_none_or(|x| x < v + w) {
                    best[a][b] = Some(v + w);
                }
            };
            match (q.get(i), f.get(j)) {
                (Some(Tok::Lit(a)), Some(Tok::Lit(b))) if a == b => put(i + 1, j + 1, 1),
                _ => {}
            }
            // The message string may be one part of the quoted line (Postfix prints
            // `%s, line %d: %s` around `missing attribute name`): quote text before the
            // format's start or after its end is skipped, unmatched.
            if i < n && (j == 0 || j == m) {
                put(i + 1, j, 0);
            }
            if matches!(q.get(i), Some(Tok::Any)) {
                put(i + 1, j, 0);
                if j < m {
                    put(i, j + 1, 0);
                }
            }
            if matches!(f.get(j), Some(Tok::Any)) {
                put(i, j + 1, 0);
                if i < n {
                    put(i + 1, j, 0);
                }
            }
        }
    }
    best[n][m]
}

/// The quote without what the MTA adds around its message: program name, log level, reply
/// code and enhanced status code.
fn quote_core(q: &str) -> String {
    let q = q.split_whitespace().collect::<Vec<_>>().join(" ");
    let re = regex::Regex::new(
        r"^(?:(?:postconf|postmap|postfix|smtpd|tcpserver|exim): )?(?:(?:fatal|warning|error|panic): )?(?:\d{3}[ -](?:\d\.\d{1,3}\.\d{1,3} )?)?",
    )
    .unwrap();
    re.replace(&q, "").to_string()
}

fn strings_of(files: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        let Ok(o) = Command::new("strings").arg("-n").arg("4").arg(f).output() else {
            continue;
        };
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    out
}

/// Documentation text with troff font escapes removed and whitespace folded.
fn docs_text(files: &[PathBuf]) -> String {
    let mut all = String::new();
    for f in files {
        let Ok(file) = std::fs::File::open(f) else {
            continue;
        };
        let mut s = String::new();
        let _ = flate2::read::GzDecoder::new(file).read_to_string(&mut s);
        all.push_str(&s);
        all.push(' ');
    }
    let all = regex::Regex::new(r"\\f[BIRP]|\\&")
        .unwrap()
        .replace_all(&all, "");
    all.replace("\\-", "-")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn found(quote: &str, lines: &[String], docs: &str) -> bool {
    let core = quote_core(quote);
    let re = regex::Regex::new(PLACEHOLDER).unwrap();
    let pieces: Vec<&str> = re
        .split(&core)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if !pieces.is_empty() && pieces.iter().all(|p| docs.contains(p)) {
        return true;
    }
    let literal: usize = pieces.iter().map(|p| p.chars().count()).sum();
    let words: Vec<String> = regex::Regex::new(r"[A-Za-z][A-Za-z'-]{3,}")
        .unwrap()
        .find_iter(&re.replace_all(&core, " "))
        .map(|m| m.as_str().to_string())
        .collect();
    if words.is_empty() {
        // Only punctuation, numbers or single letters: nothing to look up.
        return true;
    }
    // Cheap filter before the alignment: the line holds two of the quote's words (the others
    // may be values the MTA fills in, such as a domain name).
    let q = quote_tokens(&core);
    let need = words.len().min(2);
    lines
        .iter()
        .filter(|l| words.iter().filter(|w| l.contains(w.as_str())).count() >= need)
        .any(|l| {
            let f = format_tokens(l);
            let f_literal = f.iter().filter(|t| matches!(t, Tok::Lit(_))).count();
            // Most of the quote is the MTA's own text, or the quote covers most of one of its
            // message strings (Postfix and Exim build many messages from several strings,
            // and a `%s` may hold a long value, a path or strerror text).
            best_alignment(&q, &f)
                .is_some_and(|n| 3 * n >= 2 * literal || (n >= 12 && 3 * n >= 2 * f_literal))
        })
}

fn glob(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn quoted_output_is_real() {
    let Some(exim) = exim_binary() else {
        skip_or_panic("scripts/exim-oracle did not provide an exim binary");
        return;
    };
    if !Path::new("/usr/sbin/postconf").exists() {
        skip_or_panic("Postfix is not installed");
        return;
    }
    // The Debian light build's real binary (the oracle script may print a wrapper).
    let exim_root = exim.parent().unwrap().parent().unwrap().to_path_buf();
    let mut bins: Vec<PathBuf> = glob("/usr/sbin")
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("post"))
        .collect();
    bins.extend(glob("/usr/lib/postfix/sbin"));
    bins.extend(
        glob("/usr/lib/postfix")
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "so")),
    );
    bins.extend([
        exim.clone(),
        "/usr/bin/tcpserver".into(),
        "/usr/bin/tcprules".into(),
    ]);
    let lines = strings_of(&bins);
    let docs = docs_text(&[
        "/usr/share/man/man5/postconf.5.gz".into(),
        "/usr/share/man/man5/master.5.gz".into(),
        exim_root.join("share/doc/exim4-base/spec.txt.gz"),
        exim_root.join("share/doc/exim4-base/README.UPDATING.gz"),
    ]);
    assert!(
        lines.len() > 10_000,
        "strings found only {} lines",
        lines.len()
    );
    assert!(
        docs.len() > 100_000,
        "documentation not found ({} bytes)",
        docs.len()
    );
    let span = regex::Regex::new(r"`([^`]+)`").unwrap();
    let mut missing = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let mut checked = 0;
    for file in ["postfix", "exim", "dns", "probe"] {
        for (code, r) in rules(&[file]) {
            let text = format!("{}\n{}", r.summary, r.explanation);
            for c in span.captures_iter(&text) {
                let q = c[1].split_whitespace().collect::<Vec<_>>().join(" ");
                if let Some(e) = QUOTE_EXCEPTIONS.iter().find(|e| e.0 == code && e.1 == q) {
                    used.insert((e.0, e.1));
                    continue;
                }
                if is_configuration(&q) {
                    continue;
                }
                checked += 1;
                if !found(&q, &lines, &docs) {
                    missing.push(format!("{code}: `{q}`"));
                }
            }
        }
    }
    for e in QUOTE_EXCEPTIONS
        .iter()
        .filter(|e| !used.contains(&(e.0, e.1)))
    {
        missing.push(format!("stale QUOTE_EXCEPTIONS entry {}: `{}`", e.0, e.1));
    }
    // Every rule file is either checked above or named with the reason it cannot be.
    for f in glob(&repo("rules").to_string_lossy()) {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let has_rules = std::fs::read_to_string(&f).unwrap().contains("[[rule]]");
        assert!(
            !has_rules
                || ["postfix", "exim", "dns", "probe"].contains(&name.as_str())
                || UNCHECKED_FILES.iter().any(|u| u.0 == name),
            "rules/{name}.toml: check its quotes or list it in UNCHECKED_FILES with the reason"
        );
    }
    eprintln!("quoted texts checked: {checked}");
    assert!(
        missing.is_empty(),
        "quoted text found in no installed binary or document (fix the text, or list it in QUOTE_EXCEPTIONS with the reason):\n{}",
        missing.join("\n")
    );
}

#[test]
fn alignment_rejects_a_quote_that_a_format_only_absorbs() {
    // The check must be able to fail: `%s` alone may not "contain" a made-up message, and a
    // changed word is noticed.
    let q = quote_tokens("Postfix is running with backwards-compatible default settings");
    let f = format_tokens("%s: using backwards-compatible default setting %s=%s");
    let n = best_alignment(&q, &f).unwrap();
    assert!(3 * n < 2 * 60, "{n}");
    let lines = vec!["%s: comment at end of line is not supported: %s %s".to_string()];
    assert!(found(
        "warning: mynetworks: comment at end of line is not supported: # office",
        &lines,
        ""
    ));
    assert!(!found(
        "warning: mynetworks: comment at end of line is not allowed: # office",
        &lines,
        ""
    ));
}
