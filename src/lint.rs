//! The lint job: find configuration sets, run each MTA's checker, filter the findings.

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::finding::{Finding, Mta};
use crate::relay::{Decision, Query};
use crate::report::Report;
use crate::{exim, postfix, qmail};

/// One MTA configuration to check.
#[derive(Debug, Clone)]
pub enum ConfigSet {
    Postfix(postfix::Target),
    Exim(exim::Target),
    Qmail(qmail::Target),
}

impl ConfigSet {
    /// Short description for progress messages.
    pub fn describe(&self, ctx: &Context) -> String {
        let (mta, p) = match self {
            ConfigSet::Postfix(t) => ("postfix", &t.path),
            ConfigSet::Exim(t) => ("exim", &t.path),
            ConfigSet::Qmail(t) => ("qmail", &t.path),
        };
        format!("{mta} {}", ctx.root.display(p).display())
    }
}

/// Find what to check: the explicitly named paths, or everything under the root.
/// An explicitly named path that does not exist or that no checker recognises is an error
/// (exit 2): the user asked for something relaydoctor cannot do.
pub fn collect(ctx: &Context, paths: &[PathBuf]) -> Result<(Vec<ConfigSet>, Vec<Finding>), String> {
    let mut findings = Vec::new();
    let mut sets = Vec::new();
    if paths.is_empty() {
        sets.extend(
            postfix::discover(ctx, &mut findings)
                .into_iter()
                .map(ConfigSet::Postfix),
        );
        sets.extend(
            exim::discover(ctx, &mut findings)
                .into_iter()
                .map(ConfigSet::Exim),
        );
        sets.extend(
            qmail::discover(ctx, &mut findings)
                .into_iter()
                .map(ConfigSet::Qmail),
        );
        if sets.is_empty() && findings.is_empty() {
            let root = ctx.root.dir.as_deref().unwrap_or(Path::new("/"));
            return Err(nothing_found(root));
        }
        return Ok((sets, findings));
    }
    for p in paths {
        let real = ctx.root.resolve(p);
        let meta = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            // Reading the directory up front turns "permission denied" into a clear error.
            ctx.root
                .read_dir(&real)
                .map_err(|e| format!("{}: {e}", p.display()))?;
        } else {
            ctx.root
                .open(&real, crate::source::MAX_FILE_BYTES)
                .map_err(|e| format!("{}: {}", p.display(), e.into_io()))?;
        }
        let before = sets.len();
        if let Some(t) = postfix::detect(ctx, &real) {
            sets.push(ConfigSet::Postfix(t));
        }
        if let Some(t) = exim::detect(ctx, &real) {
            sets.push(ConfigSet::Exim(t));
        }
        if let Some(t) = qmail::detect(ctx, &real) {
            sets.push(ConfigSet::Qmail(t));
        }
        if sets.len() == before {
            if let Some(msg) = crate::exim::cpanel::fragment(p) {
                return Err(msg);
            }
            return Err(format!(
                "{}: not a Postfix, Exim or qmail configuration that relaydoctor recognises \
                 (use --root for a whole server snapshot)",
                p.display()
            ));
        }
    }
    Ok((sets, findings))
}

/// The error when discovery finds nothing: every place each MTA's discovery looked (paths as
/// the server sees them, under the root), from the same tables the discovery reads.
fn nothing_found(root: &Path) -> String {
    format!(
        "no Postfix, Exim or qmail configuration found under {}; looked for\n  \
         Postfix: {}\n  Exim: {}\n  qmail: {}",
        root.display(),
        postfix::places().join(", "),
        exim::places().join(", "),
        qmail::places().join(", "),
    )
}

/// Lint everything `collect` finds.
pub fn run(ctx: &Context, paths: &[PathBuf]) -> Result<Report, String> {
    run_with_progress(ctx, paths, false)
}

/// `run`, with a spinner on a terminal's stderr when `progress` (text output) is asked for.
pub fn run_with_progress(
    ctx: &Context,
    paths: &[PathBuf],
    progress: bool,
) -> Result<Report, String> {
    let spinner = crate::progress::Progress::spinner(progress, "discovering configuration");
    let (sets, mut findings) = collect(ctx, paths)?;
    let mut temp_dirs = Default::default();
    for set in &sets {
        spinner.set_message(&format!("checking {}", set.describe(ctx)));
        let (mta, found) = match set {
            ConfigSet::Postfix(t) => (Mta::Postfix, postfix::lint(ctx, t)),
            ConfigSet::Exim(t) => (Mta::Exim, exim::lint(ctx, t)),
            ConfigSet::Qmail(t) => (Mta::Qmail, qmail::lint(ctx, t)),
        };
        findings.extend(found);
        // Temp files a killed --fix left beside the files this MTA's checks read (RD007).
        findings.extend(crate::fix::leftovers(ctx, mta, &mut temp_dirs));
    }
    crate::partial::group_missing(ctx, &mut findings);
    let mut report = Report {
        findings,
        files: ctx.files_read(),
    };
    report.sort();
    report.findings.dedup_by(|a, b| {
        a.code == b.code
            && a.location == b.location
            && a.message == b.message
            && a.service == b.service
    });
    Ok(report)
}

/// The relay decision of every listener found, for one query.
pub fn simulate(ctx: &Context, paths: &[PathBuf], q: &Query) -> Result<Vec<Decision>, String> {
    let (sets, _) = collect(ctx, paths)?;
    let mut out = Vec::new();
    for set in &sets {
        match set {
            ConfigSet::Postfix(t) => out.extend(postfix::simulate(ctx, t, q)?),
            ConfigSet::Exim(t) => out.extend(exim::simulate(ctx, t, q)?),
            ConfigSet::Qmail(t) => out.extend(qmail::simulate(ctx, t, q)?),
        }
    }
    if let Some(s) = &q.service {
        let mut names: Vec<String> = Vec::new();
        for d in &out {
            if !names.contains(&d.service) {
                names.push(d.service.clone());
            }
        }
        // Behind postscreen, port 25's smtpd is the `smtpd pass` service: `--service smtp`
        // (or 25) means it when no service has that name itself.
        let exact = out.iter().any(|d| &d.service == s);
        out.retain(|d| {
            &d.service == s
                || (!exact && matches!(s.as_str(), "smtp" | "25") && d.service == "smtpd")
        });
        if out.is_empty() {
            let known = if names.is_empty() {
                "there is no listening service".to_string()
            } else {
                format!("the listening services are: {}", names.join(", "))
            };
            return Err(format!("no listening service named {s:?}; {known}"));
        }
    }
    Ok(out)
}

/// `--select` / `--ignore`: codes or prefixes (PF, PF1, PF101), case-insensitive.
pub fn filter(findings: &mut Vec<Finding>, select: &[String], ignore: &[String]) {
    let matches = |code: &str, pats: &[String]| {
        pats.iter()
            .map(|p| p.trim().to_ascii_uppercase())
            .filter(|p| !p.is_empty())
            .any(|p| code.starts_with(&p))
    };
    let has_select = select.iter().any(|s| !s.trim().is_empty());
    findings.retain(|f| (!has_select || matches(&f.code, select)) && !matches(&f.code, ignore));
}

/// True when `path` exists (after resolving under the root).
pub fn exists(ctx: &Context, path: &Path) -> bool {
    ctx.root.resolve(path).exists()
}

/// Findings about master.cf's own text, true whatever main.cf says: a bad field (PF007), a
/// short `-o` with a blank (PF008), overrides orphaned by a commented-out header (PF009).
const MASTER_CF_ONLY: &[&str] = &["PF007", "PF008", "PF009"];

/// Postfix lint when master.cf was read but main.cf was not (missing, unreadable, binary,
/// a link to nothing; review7 F5/F9). Postfix itself does not start then: every program
/// reads main.cf first and stops with `fatal: open /etc/postfix/main.cf: No such file or
/// directory` (global/mail_conf.c, mail_conf_suck: `msg_fatal("open %s: %m", path)`,
/// v3.7.11). Nothing that depends on main.cf's content (a parameter "not defined in
/// main.cf", a relay decision from built-in defaults) is drawn from a file that was not
/// read: only the load findings and master.cf's own syntax are kept, plus an error saying
/// main.cf is missing when nothing else was said about it.
pub fn postfix_without_main_cf(
    ctx: &Context,
    target: &postfix::Target,
    model: &postfix::model::Model,
    mut findings: Vec<Finding>,
) -> Vec<Finding> {
    postfix::checks::run(ctx, model, &mut findings);
    findings.retain(|f| f.code.starts_with("RD") || MASTER_CF_ONLY.contains(&f.code.as_str()));
    let main = ctx.root.display(&target.path.join(&target.files.main));
    let master = ctx.root.display(&target.path.join(&target.files.master));
    let told = findings
        .iter()
        .any(|f| f.location.as_ref().is_some_and(|l| l.file == main));
    if !told {
        // No absolute path in the message: a snapshot's missing-file errors that name one
        // become "copy it" warnings (crate::partial), and a master.cf without its main.cf
        // is not a copy left out.
        findings.push(
            Finding::new(
                "PF108",
                Mta::Postfix,
                format!(
                    "{} does not exist, but {} does: Postfix does not start without main.cf, so this instance accepts no mail; nothing that depends on main.cf was checked",
                    main.display(),
                    master.display()
                ),
            )
            .severity(crate::finding::Severity::Error)
            .help(format!(
                "Every Postfix program reads main.cf first and stops with `fatal: open {}: No such file or directory`; restore main.cf (from a backup or the package's copy) and lint again.",
                server_path(ctx, &target.path.join(&target.files.main)).display()
            ))
            .at(crate::finding::Location {
                file: main,
                line: 1,
                column: 1,
                end_line: 1,
                end_column: 1,
            }),
        );
    }
    findings
}

/// A path as the server names it: under the snapshot's `/`, or absolute on this machine.
fn server_path(ctx: &Context, real: &Path) -> PathBuf {
    if ctx.root.is_snapshot() {
        return Path::new("/").join(ctx.root.display(real));
    }
    std::path::absolute(real).unwrap_or_else(|_| real.to_path_buf())
}

/// What `explain` needs to know about one Postfix smtpd listener of the configuration.
#[derive(Debug, Clone)]
pub struct PostfixListener {
    /// The service name its simulated decisions carry.
    pub service: String,
    /// The program name its log lines carry: its syslog_name and `/smtpd`
    /// (`postfix/smtpd` for every listener that does not set syslog_name).
    pub program: String,
    /// The class of the recipient's domain as this listener sees it.
    pub rcpt_class: crate::relay::RecipientClass,
}

/// The smtpd listeners of every Postfix configuration found, with `rcpt`'s class.
pub fn postfix_listeners(ctx: &Context, paths: &[PathBuf], rcpt: &str) -> Vec<PostfixListener> {
    let Ok((sets, _)) = collect(ctx, paths) else {
        return Vec::new();
    };
    let domain = rcpt.rsplit_once('@').map_or(rcpt, |(_, d)| d);
    let mut out = Vec::new();
    for set in &sets {
        let ConfigSet::Postfix(t) = set else { continue };
        let mut ignored = Vec::new();
        let model = postfix::model::Model::load_files(ctx, &t.path, &t.files, &mut ignored);
        for si in model.smtpd_listeners() {
            let syslog = model.scope(Some(si)).value("syslog_name");
            out.push(PostfixListener {
                service: postfix::policy::listener_name(&model, si),
                program: format!("{syslog}/smtpd"),
                rcpt_class: postfix::policy::classify(&model, si, domain),
            });
        }
    }
    out
}

/// The expanded value of a main.cf parameter in the first Postfix configuration found.
pub fn postfix_param(ctx: &Context, paths: &[PathBuf], name: &str) -> Option<String> {
    let (sets, _) = collect(ctx, paths).ok()?;
    sets.iter().find_map(|set| {
        let ConfigSet::Postfix(t) = set else {
            return None;
        };
        let mut ignored = Vec::new();
        let model = postfix::model::Model::load_files(ctx, &t.path, &t.files, &mut ignored);
        model.main.as_ref()?;
        Some(model.scope(None).value(name))
    })
}
