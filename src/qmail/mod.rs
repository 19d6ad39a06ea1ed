//! qmail: discovery, parsing, effective configuration, relay policy and checks.
//!
//! A target is one qmail installation: its control directory (/var/qmail/control), the
//! qmail-smtpd services that start it (daemontools/runit run scripts, Plesk's xinetd
//! services) and the tcpserver rule files (/etc/tcp.smtp and friends, with their cdb).

pub mod cdb;
pub mod checks;
pub mod model;
pub mod parse;
pub mod policy;
pub mod rcpthosts;
pub mod runscript;
pub mod stream;

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::discover::list_dir;
use crate::finding::{Finding, Mta};
use crate::relay::{Decision, Query};

/// One qmail configuration to check.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Real path of what was found or named (directory or file).
    pub path: PathBuf,
    /// Real path of the control directory, when known.
    pub control: Option<PathBuf>,
    /// Run scripts and xinetd files that start qmail-smtpd (real paths).
    pub services: Vec<PathBuf>,
    /// tcpserver rule files (source or cdb) found on their own (real paths).
    pub rules: Vec<PathBuf>,
    /// Only a single file was named: files it refers to are not read.
    pub standalone: bool,
}

/// Files qmail reads from its control directory that say "this is a qmail control dir".
const CONTROL_NAMES: &[&str] = &[
    "rcpthosts",
    "morercpthosts",
    "morercpthosts.cdb",
    "locals",
    "virtualdomains",
    "smtproutes",
    "me",
    "defaultdomain",
    "plusdomain",
];

fn is_control_dir(ctx: &Context, dir: &Path) -> bool {
    CONTROL_NAMES.iter().any(|n| ctx.is_file(&dir.join(n)))
}

fn read_text_prefix(ctx: &Context, p: &Path) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    // Contained in a snapshot, and never a FIFO or device (issue #14).
    if let Ok((f, _)) = ctx.root.open(p, u64::MAX) {
        let _ = f.take(256 * 1024).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn is_service_file(ctx: &Context, p: &Path) -> bool {
    ctx.is_file(p) && runscript::looks_like_service(&read_text_prefix(ctx, p))
}

/// Names that are not tcprules sources even in a rules directory.
fn skip_rules_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".tmp")
        || lower.ends_with('~')
        || lower.ends_with(".bak")
        || lower.ends_with(".orig")
        || lower.starts_with("readme")
        || lower == "makefile"
        || lower.starts_with('.')
}

/// A tcprules source: lines that look like `address:allow|deny...`.
fn looks_like_rules(ctx: &Context, p: &Path) -> bool {
    if p.extension().is_some_and(|e| e == "cdb") {
        return ctx.is_file(p);
    }
    let t = read_text_prefix(ctx, p);
    let mut rules = 0;
    for l in t.lines() {
        let l = l.trim_end();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        // `:allow` / `:deny` anywhere: IPv6 rules (`::1:allow`) count as rules too.
        if l.contains(":allow") || l.contains(":deny") {
            rules += 1;
        } else {
            return false;
        }
    }
    rules > 0
}

/// Where qmail's control directory is, in the order looked at: qmail's own (conf-qmail
/// /var/qmail + control), Debian's qmail package (/etc/qmail, with /var/qmail/control a link
/// to it) and /var/lib/qmail/control.
const CONTROL_PLACES: &[&str] = &["/var/qmail/control", "/etc/qmail", "/var/lib/qmail/control"];

/// Supervision trees whose `<service>/run` may start qmail-smtpd (only a service's own `run`
/// is read; its `log/run` starts multilog and is never taken for the smtpd):
/// - /service: daemontools' svscanboot (and Life with qmail's `ln -s
///   /var/qmail/supervise/qmail-smtpd /service`);
/// - /etc/service: daemontools-run and runit on Debian/Ubuntu;
/// - /var/service: runit on Void and others;
/// - /var/qmail/supervise: Life with qmail's service directories;
/// - /var/qmail/service: qmail-conf's (qmail-smtpd-conf ... /var/qmail/service/smtpd);
/// - /etc/sv and /etc/runit/runsvdir/default: runit's service definitions and run level.
const SERVICE_PLACES: &[&str] = &[
    "/service",
    "/etc/service",
    "/var/service",
    "/var/qmail/supervise",
    "/var/qmail/service",
    "/etc/sv",
    "/etc/runit/runsvdir/default",
];

/// xinetd services (Plesk starts qmail-smtpd from /etc/xinetd.d/smtp_psa).
const XINETD_DIR: &str = "/etc/xinetd.d";

/// tcpserver rule files and directories looked at.
const RULES_FILES: &[&str] = &["/etc/tcp.smtp", "/etc/tcp.smtp.cdb"];
const RULES_DIRS: &[&str] = &["/etc/tcprules.d", "/etc/tcp"];

/// Every place `discover` looks, for the "nothing found" message.
pub fn places() -> Vec<String> {
    let mut out: Vec<String> = CONTROL_PLACES.iter().map(|p| p.to_string()).collect();
    out.extend(SERVICE_PLACES.iter().map(|p| format!("{p}/*/run")));
    out.push(format!("{XINETD_DIR}/*"));
    out.extend(RULES_FILES.iter().map(|p| p.to_string()));
    out.extend(RULES_DIRS.iter().map(|p| format!("{p}/*")));
    out
}

/// Configurations of this MTA on the live system or snapshot.
pub fn discover(ctx: &Context, findings: &mut Vec<Finding>) -> Vec<Target> {
    let r = |p: &str| ctx.root.resolve(Path::new(p));
    let mut t = Target {
        path: r("/var/qmail"),
        ..Target::default()
    };
    for c in CONTROL_PLACES {
        let d = r(c);
        if ctx.is_dir(&d) && is_control_dir(ctx, &d) {
            t.path = d.clone();
            t.control = Some(d);
            break;
        }
    }
    // Run scripts (daemontools, runit) and xinetd services.
    let mut seen = std::collections::HashSet::new();
    for base in SERVICE_PLACES {
        for d in list_dir(ctx, &r(base), Mta::Qmail, findings) {
            let run = d.join("run");
            if is_service_file(ctx, &run) {
                let canon = ctx.root.contain(&run);
                if seen.insert(canon) {
                    t.services.push(run);
                }
            }
        }
    }
    for f in list_dir(ctx, &r(XINETD_DIR), Mta::Qmail, findings) {
        if is_service_file(ctx, &f) {
            t.services.push(f);
        }
    }
    // tcpserver rules in the usual places.
    let mut rules = Vec::new();
    for f in RULES_FILES {
        let p = r(f);
        if ctx.is_file(&p) {
            rules.push(p);
        }
    }
    for d in RULES_DIRS {
        for f in list_dir(ctx, &r(d), Mta::Qmail, findings) {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if ctx.is_file(&f) && !skip_rules_name(&name) && looks_like_rules(ctx, &f) {
                rules.push(f);
            }
        }
    }
    if let Some(c) = &t.control {
        for f in list_dir(ctx, c, Mta::Qmail, findings) {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if (name.starts_with("tcp.") || name.starts_with("rules."))
                && ctx.is_file(&f)
                && !skip_rules_name(&name)
                && looks_like_rules(ctx, &f)
            {
                rules.push(f);
            }
        }
    }
    // A source and its cdb are one rules file.
    let mut seen_cdb = std::collections::HashSet::new();
    for p in rules {
        if seen_cdb.insert(model::rules_pair(&p).0) {
            t.rules.push(p);
        }
    }
    if t.control.is_none() && t.services.is_empty() && t.rules.is_empty() {
        return Vec::new();
    }
    vec![t]
}

/// Whether an explicitly named path (real) is a qmail configuration.
pub fn detect(ctx: &Context, path: &Path) -> Option<Target> {
    if ctx.is_dir(path) {
        // A server root, /var/qmail, or the control directory itself.
        for c in ["var/qmail/control", "control", ""] {
            let d = if c.is_empty() {
                path.to_path_buf()
            } else {
                path.join(c)
            };
            if ctx.is_dir(&d) && is_control_dir(ctx, &d) {
                return Some(Target {
                    path: path.to_path_buf(),
                    control: Some(d),
                    ..Target::default()
                });
            }
        }
        return None;
    }
    let name = path.file_name()?.to_string_lossy().to_string();
    if CONTROL_NAMES.contains(&name.as_str()) {
        let dir = path.parent()?.to_path_buf();
        return Some(Target {
            path: path.to_path_buf(),
            control: Some(dir),
            ..Target::default()
        });
    }
    if is_service_file(ctx, path) {
        return Some(Target {
            path: path.to_path_buf(),
            services: vec![path.to_path_buf()],
            standalone: true,
            ..Target::default()
        });
    }
    if !skip_rules_name(&name) && looks_like_rules(ctx, path) {
        return Some(Target {
            path: path.to_path_buf(),
            rules: vec![path.to_path_buf()],
            standalone: true,
            ..Target::default()
        });
    }
    None
}

pub fn lint(ctx: &Context, target: &Target) -> Vec<Finding> {
    let mut findings = Vec::new();
    let m = model::load_with(ctx, target, &mut findings, true);
    checks::run(ctx, &m, &mut findings);
    findings
}

pub fn simulate(ctx: &Context, target: &Target, q: &Query) -> Result<Vec<Decision>, String> {
    let mut ignored = Vec::new();
    let m = model::load(ctx, target, &mut ignored);
    Ok(policy::simulate(ctx, &m, q))
}
