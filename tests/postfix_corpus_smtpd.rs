//! Differential test on real-world configurations: the real smtpd (Debian's Postfix, run by
//! the private master of `smtpd_support`) runs the main.cf and master.cf smtpd listeners of
//! each configuration of ../shared/corpus/postfix (SOURCES.tsv there says whose), and
//! relaydoctor's decision is compared with its RCPT reply for a stranger, a trusted client
//! and a SASL client, to a local, a relay and an external recipient. One master per
//! configuration, one XCLIENT session per question.
//!
//! What each configuration needs from its own machine is stubbed, the same way for every
//! configuration, and listed per configuration in the test output (`STUBS` names them):
//! - every `type:/path` table becomes `type:$config_directory/stub/<path>`, created empty
//!   (and compiled with postmap where the type is indexed); `proxy:type:` becomes `type:`
//!   (proxymap only forwards the lookup);
//! - SQL, LDAP and other networked tables (mysql, pgsql, ldap, sqlite, memcache, tcp,
//!   socketmap) become an empty `texthash:` table: a database without rows. (`static:`
//!   would answer every lookup, making every domain a virtual domain and every address
//!   known, which no real database does);
//! - this machine's layout and what the harness needs replace the configuration's
//!   settings for them: directories and paths of the Postfix installation, inet_interfaces
//!   and inet_protocols (loopback, IPv4), the TLS certificate (Debian's snakeoil), SASL
//!   (cyrus: XCLIENT LOGIN= stands for a login), milters and before-queue proxy filters
//!   (none), the HAProxy protocol (off), anvil's exceptions (127.0.0.0/8);
//! - listeners: every `inet` or `pass` smtpd service of master.cf becomes a loopback
//!   listener with its `-o` overrides; wrapper mode is dropped and
//!   `smtpd_tls_security_level=encrypt` becomes `may` (the harness client does not speak
//!   TLS, and `--tls no` is what relaydoctor is told), so the relay decision behind
//!   STARTTLS is what is compared. A main.cf without master.cf gets Postfix's stock
//!   `smtp inet` listener.

mod smtpd_support;

use std::path::{Path, PathBuf};

use relaydoctor::postfix::{parse, policy};
use relaydoctor::relay::RecipientClass;
use smtpd_support::Scenario;

/// One configuration of the corpus: its directory, main.cf, master.cf (None: the stock
/// one) and the values its installer substitutes for placeholders (Sentora's `!NAME!`;
/// the Jinja2 and Python templates of the corpus are left out).
struct Config {
    dir: &'static str,
    main: &'static str,
    master: Option<&'static str>,
    substitute: &'static [(&'static str, &'static str)],
}

const CONFIGS: &[Config] = &[
    Config {
        dir: "vdukhovni__postfix",
        main: "postfix__conf__main.cf",
        master: Some("postfix__conf__master.cf"),
        substitute: &[],
    },
    Config {
        dir: "docker-mailserver__docker-mailserver",
        main: "target__postfix__main.cf",
        master: Some("target__postfix__master.cf"),
        substitute: &[],
    },
    Config {
        dir: "mailcow__mailcow-dockerized",
        main: "data__conf__postfix__main.cf",
        master: Some("data__conf__postfix__master.cf"),
        substitute: &[],
    },
    Config {
        dir: "sentora__sentora-installers",
        main: "preconf__postfix__main.cf",
        master: Some("preconf__postfix__master.cf"),
        substitute: &[
            ("!PANEL_FQDN!", "panel.sentora.test"),
            ("!SERVER_IP!", "192.0.2.25"),
            ("!USR_LIB!", "/usr/lib"),
            ("!POS_UID!", "150"),
            ("!POS_GID!", "8"),
        ],
    },
    Config {
        dir: "Fred-Zweig__Postfix-2.11-configuration",
        main: "main.cf",
        master: Some("master.cf"),
        substitute: &[],
    },
    Config {
        dir: "LOGIN-TB__Open-Mail-Relay",
        main: "postfix__main.cf",
        master: Some("postfix__master.cf"),
        substitute: &[],
    },
    Config {
        dir: "LOGIN-TB__Open-Mail-Relay",
        main: "postfix__main.cf.example",
        master: Some("postfix__master.cf"),
        substitute: &[],
    },
    Config {
        dir: "SixArm__sixarm_postfix_main_cf",
        main: "main.cf",
        master: None,
        substitute: &[],
    },
];

/// What the stubs are, named once (the output lists which applied to each configuration).
const STUBS: &[&str] = &[
    "table file created empty",
    "proxy: removed",
    "networked table replaced by an empty texthash:",
    "setting replaced by the harness's",
    "listener override dropped",
    "encrypt downgraded to may",
];

/// main.cf and master.cf settings that describe the machine (or that the harness sets).
const MACHINE: &[&str] = &[
    "daemon_directory",
    "command_directory",
    "shlib_directory",
    "meta_directory",
    "manpage_directory",
    "sample_directory",
    "readme_directory",
    "html_directory",
    "sendmail_path",
    "newaliases_path",
    "mailq_path",
    "queue_directory",
    "data_directory",
    "inet_interfaces",
    "inet_protocols",
    "maillog_file",
    "mail_owner",
    "setgid_group",
    "alternate_config_directories",
    "multi_instance_directories",
    "multi_instance_enable",
    "multi_instance_name",
    "multi_instance_group",
    "import_environment",
    "smtpd_upstream_proxy_protocol",
    "smtpd_milters",
    "non_smtpd_milters",
    "smtpd_proxy_filter",
    "smtpd_tls_cert_file",
    "smtpd_tls_key_file",
    "smtpd_tls_chain_files",
    "smtpd_tls_eccert_file",
    "smtpd_tls_eckey_file",
    "smtpd_tls_dcert_file",
    "smtpd_tls_dkey_file",
    "smtpd_tls_CAfile",
    "smtpd_tls_CApath",
    "smtpd_tls_dh1024_param_file",
    "smtpd_tls_dh512_param_file",
    "tls_server_sni_maps",
    "smtpd_sasl_type",
    "smtpd_sasl_path",
    "smtpd_client_event_limit_exceptions",
    "smtpd_authorized_xclient_hosts",
    "smtpd_tls_wrappermode",
    "syslog_name",
    // A cleanup service of the configuration's master.cf, which the harness does not run.
    "cleanup_service_name",
];

const HARNESS_MAIN: &str = "\
smtpd_tls_cert_file = /etc/ssl/certs/ssl-cert-snakeoil.pem
smtpd_tls_key_file = /etc/ssl/private/ssl-cert-snakeoil.key
smtpd_client_event_limit_exceptions = 127.0.0.0/8
";

/// Parameters whose `/file/name` items name files of more items.
const LIST_PARAMS: &[&str] = &[
    "mydestination",
    "relay_domains",
    "virtual_alias_domains",
    "virtual_mailbox_domains",
    "mynetworks",
    "permit_mx_backup_networks",
    "smtpd_sasl_exceptions_networks",
];

const INDEXED: &[&str] = &["hash", "btree", "lmdb", "cdb", "dbm"];
const FILES: &[&str] = &["texthash", "cidr", "pcre", "regexp"];
const NETWORKED: &[&str] = &[
    "mysql",
    "pgsql",
    "ldap",
    "sqlite",
    "memcache",
    "tcp",
    "socketmap",
    "nis",
    "nisplus",
];

/// A configuration prepared for the harness.
#[derive(Default)]
struct Prepared {
    main: String,
    listeners: Vec<String>,
    files: Vec<(String, String)>,
    postmap: Vec<String>,
    stubs: Vec<String>,
}

impl Prepared {
    /// Rewrite the tables of one parameter value (see the module comment).
    fn tables(&mut self, value: &str) -> String {
        let re =
            regex::Regex::new(r"(?:proxy:)?([a-z0-9]+):(/[^\s,{}]+|[^\s,{}]*)").expect("regex");
        let mut out = String::new();
        let mut last = 0;
        for c in re.captures_iter(value) {
            let m = c.get(0).expect("match");
            let kind = c.get(1).map_or("", |k| k.as_str());
            let path = c.get(2).map_or("", |p| p.as_str());
            out.push_str(&value[last..m.start()]);
            last = m.end();
            let flat = format!("stub{}", path.replace(['/', ':', '.'], "_"));
            if m.as_str().starts_with("proxy:") {
                self.stub(format!("proxy: removed from {}", m.as_str()));
            }
            if NETWORKED.contains(&kind) {
                self.stub(format!(
                    "{}: networked table replaced by an empty texthash:",
                    m.as_str()
                ));
                self.file(&flat, None);
                out.push_str(&format!("texthash:$config_directory/{flat}"));
            } else if (INDEXED.contains(&kind) || FILES.contains(&kind)) && path.starts_with('/') {
                // Debian's postfix-pcre is not installed here: an empty pcre: table is an
                // empty regexp: table (both answer nothing).
                let kind = if kind == "pcre" { "regexp" } else { kind };
                self.stub(format!("{}: table file created empty", m.as_str()));
                self.file(&flat, INDEXED.contains(&kind).then_some(kind));
                out.push_str(&format!("{kind}:$config_directory/{flat}"));
            } else {
                // inline:, static:, unix:, a transport (lmtp:unix:...), a port: left alone.
                out.push_str(&m.as_str().replacen("proxy:", "", 1));
            }
        }
        out.push_str(&value[last..]);
        out
    }

    /// `/file/name` items of a domain or network list (match_list(3)): created empty.
    fn list_files(&mut self, name: &str, value: &str) -> String {
        if !LIST_PARAMS.contains(&name) {
            return value.to_string();
        }
        let mut out = Vec::new();
        for item in value.split([',', ' ', '\t']).filter(|i| !i.is_empty()) {
            let (neg, path) = match item.strip_prefix('!') {
                Some(p) => ("!", p),
                None => ("", item),
            };
            if path.starts_with('/') {
                let flat = format!("stub{}", path.replace(['/', ':', '.'], "_"));
                self.stub(format!("{name}: {path} created empty"));
                self.file(&flat, None);
                out.push(format!("{neg}$config_directory/{flat}"));
            } else {
                out.push(item.to_string());
            }
        }
        out.join(" ")
    }

    fn file(&mut self, name: &str, postmap: Option<&str>) {
        if self.files.iter().all(|(n, _)| n != name) {
            self.files.push((name.to_string(), String::new()));
            if let Some(kind) = postmap {
                self.postmap.push(format!("{kind}:{name}"));
            }
        }
    }

    fn stub(&mut self, s: String) {
        if !self.stubs.contains(&s) {
            self.stubs.push(s);
        }
    }
}

fn prepare(main: &str, master: Option<&str>) -> Prepared {
    let mut p = Prepared::default();
    let mut out = String::new();
    for e in parse::parse_main(main).entries {
        let (name, value) = (e.name.as_str(), e.value.as_str());
        if MACHINE.contains(&name) {
            p.stub(format!("{name}: setting replaced by the harness's"));
            continue;
        }
        let value = p.tables(value.trim());
        let value = p.list_files(name, &value);
        let value = if name == "myorigin" && value.starts_with('/') {
            // myorigin = /file/name: the file holds the name (Debian's /etc/mailname).
            p.stub(format!("myorigin: {value} created with mail.corpus.test"));
            p.files
                .push(("stub_myorigin".into(), "mail.corpus.test\n".into()));
            "$config_directory/stub_myorigin".to_string()
        } else {
            value
        };
        out.push_str(&format!("{name} = {value}\n"));
    }
    out.push_str(HARNESS_MAIN);
    p.main = out;
    let Some(master) = master else {
        p.listeners.push(String::new());
        p.stub("no master.cf: Postfix's stock smtp inet listener".into());
        return p;
    };
    for svc in parse::parse_master(master).services {
        if !svc.complete() || svc.command() != "smtpd" || !matches!(svc.kind(), "inet" | "pass") {
            continue;
        }
        let mut extra = String::new();
        for o in &svc.overrides {
            let (name, mut value) = (o.name.clone(), o.value.clone());
            if MACHINE.contains(&name.as_str()) {
                p.stub(format!("{}: -o {name} dropped", svc.name()));
                continue;
            }
            if name == "smtpd_tls_security_level" && value == "encrypt" {
                p.stub(format!("{}: encrypt downgraded to may", svc.name()));
                value = "may".into();
            }
            let value = p.tables(&value);
            let value = p.list_files(&name, &value);
            if value.contains(char::is_whitespace) {
                extra.push_str(&format!("  -o {{ {name} = {value} }}\n"));
            } else {
                extra.push_str(&format!("  -o {name}={value}\n"));
            }
        }
        p.listeners.push(extra);
    }
    p
}

fn corpus_dir() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        std::env::var_os("CORPUS").map(PathBuf::from),
        Some(here.join("../shared/corpus")),
        Some(here.join("../../shared/corpus")),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|c| c.join("postfix"))
        .find(|c| c.is_dir())
}

/// A trusted client address for the running configuration: inside its mynetworks.
fn trusted(run: &smtpd_support::Running) -> Option<String> {
    let model = smtpd_support::model(run);
    let si = *model.smtpd_listeners().first()?;
    [
        "192.0.2.7",
        "10.1.2.3",
        "172.16.0.5",
        "192.168.1.5",
        "127.0.0.2",
    ]
    .into_iter()
    .find(|ip| policy::in_mynetworks(&model, si, ip))
    .map(String::from)
}

/// The recipients asked: postmaster and an unknown user of a local domain, someone at a
/// relay domain (when there is one), someone at an external domain.
fn recipients(run: &smtpd_support::Running) -> Vec<String> {
    let model = smtpd_support::model(run);
    let mut out = Vec::new();
    let Some(&si) = model.smtpd_listeners().first() else {
        return out;
    };
    let scope = model.scope(Some(si));
    let mut candidates: Vec<String> = Vec::new();
    for p in [
        "mydestination",
        "relay_domains",
        "virtual_alias_domains",
        "virtual_mailbox_domains",
    ] {
        candidates.extend(
            policy::domain_list_items(&model, &scope.value(p))
                .into_iter()
                .filter(|d| !d.contains(':') && !d.starts_with('!') && !d.contains(' ')),
        );
    }
    candidates.push(scope.value("myhostname"));
    candidates.push("localhost".into());
    // Host names only (`relay_domains = *` is not a wildcard: Postfix reads it as a name).
    candidates.retain(|d| {
        !d.is_empty()
            && d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    });
    let class = |d: &str| policy::classify(&model, si, d);
    if let Some(l) = candidates
        .iter()
        .find(|d| class(d) == RecipientClass::Local)
    {
        out.push(format!("postmaster@{l}"));
        out.push(format!("nosuchuser@{l}"));
    }
    if let Some(r) = candidates
        .iter()
        .find(|d| class(d) == RecipientClass::Relay)
    {
        out.push(format!("someone@{r}"));
    }
    out.push("someone@external.example".into());
    out
}

#[test]
fn corpus_decisions_match_real_smtpd() {
    let Some(master) = smtpd_support::require() else {
        return;
    };
    let Some(corpus) = corpus_dir() else {
        eprintln!("SKIP: no corpus (../shared/corpus or $CORPUS)");
        return;
    };
    let _ = STUBS;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(c) = CONFIGS.get(n) else {
                    break;
                };
                let r = run_one(&master, &corpus, c);
                results.lock().unwrap_or_else(|p| p.into_inner()).push(r);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let compared: usize = results.iter().map(|r| r.compared).sum();
    let depends: usize = results.iter().map(|r| r.depends.len()).sum();
    let mismatches: Vec<&String> = results.iter().flat_map(|r| &r.mismatches).collect();
    for r in &results {
        for d in &r.depends {
            eprintln!("depends: {d}");
        }
    }
    let total = compared + depends;
    eprintln!(
        "corpus smtpd differential: {} configurations, {total} decisions, {compared} compared, {} agree ({:.1}%), {depends} depends ({:.1}%)",
        CONFIGS.len(),
        compared - mismatches.len(),
        100.0 * (compared - mismatches.len()) as f64 / compared.max(1) as f64,
        100.0 * depends as f64 / total.max(1) as f64,
    );
    assert!(compared > 0);
    assert!(
        mismatches.is_empty(),
        "relaydoctor differs from smtpd:\n{}",
        mismatches
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn run_one(master: &Path, corpus: &Path, c: &Config) -> smtpd_support::Tally {
    let name = format!("{}/{}", c.dir, c.main);
    let read = |f: &str| std::fs::read_to_string(corpus.join(c.dir).join(f));
    let main = match read(c.main) {
        Ok(m) => m,
        Err(e) => {
            return smtpd_support::Tally {
                mismatches: vec![format!("{name}: {e}")],
                ..Default::default()
            }
        }
    };
    let master_cf = c.master.and_then(|m| read(m).ok());
    let fill = |mut t: String| {
        for (k, v) in c.substitute {
            t = t.replace(k, v);
        }
        t
    };
    let main = fill(main);
    let master_cf = master_cf.map(fill);
    let p = prepare(&main, master_cf.as_deref());
    eprintln!("{name}: stubs: {}", p.stubs.join("; "));
    let listeners: Vec<&str> = p.listeners.iter().map(String::as_str).collect();
    let files: Vec<(&str, &str)> = p
        .files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let postmap: Vec<&str> = p.postmap.iter().map(String::as_str).collect();
    let sc = Scenario {
        name: &name,
        main: &p.main,
        listeners: &listeners,
        files: &files,
        postmap: &postmap,
    };
    let run = match smtpd_support::start(master, &sc) {
        Ok(r) => r,
        Err(e) => {
            return smtpd_support::Tally {
                mismatches: vec![format!("{name}: {e}")],
                ..Default::default()
            }
        }
    };
    let trusted = trusted(&run);
    let rcpts = recipients(&run);
    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    smtpd_support::compare(
        &name,
        &run,
        &smtpd_support::clients(trusted.as_deref()),
        &rcpts,
    )
}
