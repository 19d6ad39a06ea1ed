//! Postfix: discovery, parsing, effective configuration, relay policy and checks.

pub mod addr_lint;
pub mod audit;
pub mod checks;
pub mod class_override;
pub mod expand;
pub mod hostaddr;
pub mod maps;
pub mod model;
pub mod params;
pub mod parse;
pub mod policy;
pub mod ports;
pub mod reach;
pub mod regexp_table;
pub mod relay_rules;
pub mod restrictions;
pub mod syntax;
pub mod template;
pub mod upgrade;

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::finding::{Finding, Mta};
use crate::relay::{Decision, Query};

/// One Postfix configuration to check: an instance's configuration directory.
#[derive(Debug, Clone)]
pub struct Target {
    /// Real path of the configuration directory (holding main.cf and master.cf).
    pub path: PathBuf,
    /// The files read as main.cf and master.cf, in `path`: `main.cf` and `master.cf`, or
    /// copies named on the command line (`main.cf.dpkg-dist`, `master.cf.rpmnew`, ...).
    pub files: Files,
}

/// File names of a Postfix configuration within its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub main: String,
    pub master: String,
}

impl Default for Files {
    fn default() -> Self {
        Files {
            main: "main.cf".into(),
            master: "master.cf".into(),
        }
    }
}

impl Target {
    pub fn dir(path: PathBuf) -> Target {
        Target {
            path,
            files: Files::default(),
        }
    }
}

/// The pair of files to read when `name` (a file in `dir`) is named on the command line:
/// `main.cf` or `master.cf`, or a copy of one (`main.cf.dpkg-dist`, `main.cf.rpmnew`,
/// `master.cf.orig`, `main.cf.proto`, ...), which is read as that file. Its partner is the
/// copy with the same suffix when there is one (the package's new pair), else the real file.
fn named_pair(dir: &Path, name: &str) -> Option<Files> {
    let (kind, suffix) = ["main.cf", "master.cf"]
        .into_iter()
        .find_map(|k| name.strip_prefix(k).map(|s| (k, s)))?;
    if !(suffix.is_empty() || suffix.starts_with(['.', '-', '~', '_'])) {
        return None;
    }
    let other = if kind == "main.cf" {
        "master.cf"
    } else {
        "main.cf"
    };
    let copy = format!("{other}{suffix}");
    let partner = if dir.join(&copy).is_file() {
        copy
    } else {
        other.to_string()
    };
    Some(if kind == "main.cf" {
        Files {
            main: name.to_string(),
            master: partner,
        }
    } else {
        Files {
            main: partner,
            master: name.to_string(),
        }
    })
}

/// Where packages put Postfix's config_directory, in the order they are looked at. Each
/// directory holding a main.cf is checked, and so is each postmulti(1) instance beside it
/// (`<dir>-*`, e.g. /etc/postfix-out).
/// - /etc/postfix: Postfix's own default (DEF_CONFIG_DIR, src/global/mail_params.h), used by
///   Debian, RHEL/Fedora, Gentoo (mail-mta/postfix ebuild: `postfix-install
///   config_directory="/etc/postfix"`) and Alpine (main/postfix/APKBUILD: `make ...
///   config_directory=/etc/postfix`), and by the FreeBSD port with its INST_BASE option.
/// - /usr/local/etc/postfix: the FreeBSD port (freebsd-ports mail/postfix/Makefile:
///   `-DDEF_CONFIG_DIR=\"${ETCDIR}\"`, ETCDIR being ${PREFIX}/etc/${PORTNAME}).
pub const PLACES: &[&str] = &["/etc/postfix", "/usr/local/etc/postfix"];

/// Every place `discover` looks, for the "nothing found" message.
pub fn places() -> Vec<String> {
    let mut out = Vec::new();
    for p in PLACES {
        out.push(format!("{p}/main.cf"));
        out.push(format!("{p}-*/main.cf"));
    }
    out.push("the multi_instance_directories of those main.cf".into());
    out
}

/// Configurations of this MTA on the live system or snapshot: each directory of `PLACES`
/// with its postmulti instances, plus any directory listed in a default instance's
/// multi_instance_directories.
pub fn discover(ctx: &Context, findings: &mut Vec<Finding>) -> Vec<Target> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut add = |dirs: &mut Vec<PathBuf>, d: PathBuf| {
        // A symlinked /etc/postfix -> /usr/local/etc/postfix is one configuration.
        if seen.insert(same_file(ctx, &d)) {
            dirs.push(d);
        }
    };
    for place in PLACES {
        let default = ctx.root.resolve(Path::new(place));
        // A snapshot's configuration directory that links out of it (etc/postfix ->
        // /etc/postfix of this machine) is not read, and says so (RD006, issue #14 item 1).
        if ctx.root.escape_of(Path::new(place)).is_some() {
            findings.push(ctx.outside_finding(&ctx.root.lexical(Path::new(place)), Mta::Postfix));
            continue;
        }
        if default.is_dir() {
            add(&mut dirs, default.clone());
        }
        let parent = default.parent().map(Path::to_path_buf).unwrap_or_default();
        let prefix = format!(
            "{}-",
            default.file_name().and_then(|n| n.to_str()).unwrap_or("")
        );
        for p in crate::discover::list_dir(ctx, &parent, Mta::Postfix, findings) {
            let is_instance = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix));
            // In the snapshot (never followed on this machine), or a link out of it that
            // the load reports (RD006).
            let main = p.join("main.cf");
            if is_instance && (ctx.exists(&main) || ctx.root.escape(&main).is_some()) {
                add(&mut dirs, p);
            }
        }
        // postmulti(1): secondary instances may live anywhere; the default main.cf lists them.
        for d in multi_instance_dirs(ctx, &default) {
            let real = ctx.root.resolve(Path::new(&d));
            if ctx.exists(&real.join("main.cf")) {
                add(&mut dirs, real);
            }
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        // Walk the directory so that symlink loops and unreadable subdirectories (where map
        // files live) are reported; the files themselves are read by the checks that use them.
        crate::discover::walk_files(ctx, &d, 4, Mta::Postfix, findings);
        out.push(Target::dir(d));
    }
    out
}

/// What identifies a directory: its path with symlinks followed (inside the root).
fn same_file(ctx: &Context, p: &Path) -> PathBuf {
    if ctx.root.is_snapshot() {
        return ctx.root.contain(p);
    }
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The absolute directories a default instance's main.cf lists in multi_instance_directories.
fn multi_instance_dirs(ctx: &Context, default: &Path) -> Vec<String> {
    let Ok(text) = ctx.root.read_to_string(&default.join("main.cf")) else {
        return Vec::new();
    };
    let m = parse::parse_main(&text);
    m.entries
        .iter()
        .rev()
        .find(|e| e.name == "multi_instance_directories")
        .map(|e| {
            e.value
                .split([' ', ',', '\t'])
                .filter(|d| d.starts_with('/'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an explicitly named path (real) is a Postfix configuration: a directory holding
/// main.cf or master.cf, or a file named main.cf / master.cf (then its directory).
pub fn detect(_ctx: &Context, path: &Path) -> Option<Target> {
    if path.is_dir() {
        if path.join("main.cf").exists() || path.join("master.cf").exists() {
            return Some(Target::dir(path.to_path_buf()));
        }
        return None;
    }
    let name = path.file_name()?.to_str()?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let files = named_pair(&dir, name)?;
    Some(Target { path: dir, files })
}

pub fn lint(ctx: &Context, target: &Target) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut model = model::Model::load_files(ctx, &target.path, &target.files, &mut findings);
    if model.main.is_none() && model.master.is_some() {
        return crate::lint::postfix_without_main_cf(ctx, target, &model, findings);
    }
    // The parsed main.cf moves into the new model (a clone cost a tenth of the lint of a
    // 100,000-line main.cf).
    let main = model.main.take_if(|_| model.master.is_none());
    if let Some(main) = main {
        // Without master.cf no listener would be known and every per-service check (open
        // relay, AUTH, TLS) would pass silently. An unreadable master.cf has its own finding;
        // a missing one is checked as Postfix's stock master.cf, whose only listener is
        // `smtp inet ... smtpd` (port 25), and the report says so.
        let master = ctx.root.display(&target.path.join(&target.files.master));
        if !findings
            .iter()
            .any(|f| f.location.as_ref().is_some_and(|l| l.file == master))
        {
            findings.push(
                Finding::new(
                    "PF108",
                    Mta::Postfix,
                    format!(
                        "no {} next to {}: Postfix's master does not start without it; checked as if it were Postfix's stock master.cf (one `smtp inet` listener on port 25)",
                        master.display(),
                        main.source.display.display()
                    ),
                )
                .severity(crate::finding::Severity::Warning)
                .help("Lint the directory that holds both files (or a --root snapshot of the server) to check the real listeners; a package's copy pairs with master.cf.dpkg-dist or the live master.cf.")
                .at(main.source.line_location(1)),
            );
            model = model::Model::from_parts(ctx, &target.path, Some(main), Some(stock_master()));
        } else {
            model.main = Some(main);
        }
    }
    checks::run(ctx, &model, &mut findings);
    // PF120/PF121: decisions that change with the upgrade or a raised compatibility_level.
    upgrade::run(ctx, &model, &mut findings);
    let files: Vec<&crate::source::SourceFile> = [
        model.main.as_ref().map(|m| &*m.source),
        model.master.as_ref().map(|m| &*m.source),
    ]
    .into_iter()
    .flatten()
    .collect();
    template::apply(&files, &mut findings);
    findings
}

/// Postfix's stock master.cf as far as smtpd is concerned: the one listener it enables
/// (conf/master.cf of every release 2.x-3.11: `smtp inet n - n - - smtpd`).
const STOCK_MASTER: &str = "smtp      inet  n       -       n       -       -       smtpd\n";

fn stock_master() -> model::LoadedFile<parse::MasterCf> {
    let source = crate::source::SourceFile::from_text("master.cf (Postfix stock)", STOCK_MASTER);
    model::LoadedFile {
        parsed: parse::parse_master(&source.text),
        source: std::sync::Arc::new(source),
    }
}

/// The reply of every smtpd listener of this instance to one concrete RCPT.
pub fn simulate(ctx: &Context, target: &Target, q: &Query) -> Result<Vec<Decision>, String> {
    let mut findings = Vec::new();
    let model = model::Model::load_files(ctx, &target.path, &target.files, &mut findings);
    if model.main.is_none() {
        return Err(format!(
            "{}: no readable main.cf",
            ctx.root.display(&target.path).display()
        ));
    }
    if model.master.is_none() {
        return Err(format!(
            "{}: no readable {}: the listening services (and their -o overrides) are defined there, so there is nothing to simulate",
            ctx.root.display(&target.path).display(),
            target.files.master
        ));
    }
    let mut out = Vec::new();
    for si in model.smtpd_listeners() {
        let client = policy::Client::for_query(&model, si, q);
        if let Some(d) = reach::unreachable(&model, si, client.ip) {
            out.push(d);
            continue;
        }
        out.push(policy::decide(&model, si, client, &q.rcpt));
    }
    Ok(out)
}
