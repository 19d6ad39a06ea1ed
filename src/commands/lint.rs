//! `lint`: discover, check, filter (suppressions, settings, --select/--ignore, baseline), then
//! render; or show (`--diff`) or apply (`--fix`) the fixes.

use crate::args::LintSettings;
use crate::context::Context;
use crate::finding::{Applicability, Finding, Severity};
use crate::outcome::{Failure, Outcome, Status};
use crate::report::{self, OutputFormat, Report};
use crate::{baseline, fix, suppress};

pub fn run(s: LintSettings) -> Result<Outcome, Failure> {
    let mut notes = Vec::new();
    let mut report = lint_once(&s)?;
    if let Some(path) = &s.write_baseline {
        baseline::write(&s.ctx, &report.findings, path)?;
        notes.push(format!(
            "recorded {} findings in baseline {}",
            report.findings.len(),
            path.display()
        ));
    }
    if let Some(path) = &s.baseline {
        let before = report.findings.len();
        baseline::filter(&s.ctx, &mut report.findings, path)?;
        let hidden = before - report.findings.len();
        if hidden > 0 && !s.quiet && !s.to_file {
            notes.push(format!(
                "{hidden} known finding{} hidden by baseline {}",
                if hidden == 1 { "" } else { "s" },
                path.display()
            ));
        }
    }
    let secrets = crate::secrets::collect(&s.ctx);
    if s.diff {
        let fails = report.fails(s.threshold);
        let mut o = Outcome::findings(diff_text(&s.ctx, &report), fails).secrets(secrets);
        // --diff always prints: it was asked for explicitly.
        o.healthy = false;
        o.notes = notes;
        return Ok(o);
    }
    if s.fix {
        return apply_fixes(s, &report, notes);
    }
    let mut o = render(&s, &s.ctx, &report).secrets(secrets);
    o.notes = notes;
    Ok(o)
}

/// One lint pass with every filter applied, sorted.
fn lint_once(s: &LintSettings) -> Result<Report, Failure> {
    lint_in(s, &s.ctx)
}

fn lint_in(s: &LintSettings, ctx: &Context) -> Result<Report, Failure> {
    let mut report = crate::lint::run_with_progress(ctx, &s.paths, s.progress)?;
    suppress::apply(ctx, &mut report.findings);
    s.config.apply(&mut report.findings);
    crate::lint::filter(&mut report.findings, &s.select, &s.ignore);
    report.sort();
    Ok(report)
}

fn render(s: &LintSettings, ctx: &Context, report: &Report) -> Outcome {
    let fails = report.fails(s.threshold);
    let out = report::render(s.format, report, Some(ctx), s.color, super::unix_now());
    let status = super::report_status(s.format, report, fails);
    let mut o = Outcome::new(out, status).json(s.format == OutputFormat::Json);
    // --quiet: silent unless something at or above --fail-on was found.
    o.healthy = !fails;
    o
}

/// `--fix`: apply the safe fixes file by file, then report what is left as the admin will
/// see it next time.
fn apply_fixes(
    s: LintSettings,
    report: &Report,
    mut notes: Vec<String>,
) -> Result<Outcome, Failure> {
    let (fixable, withheld) = fixable(&report.findings);
    notes.extend(withheld);
    let mut failed = false;
    for p in &fix::plan(&fixable, false) {
        match fix::apply_note(&s.ctx, p) {
            Ok(note) => notes.push(note),
            Err(e) => {
                notes.push(e);
                failed = true;
            }
        }
    }
    // A fresh context: the files changed under the first one's cache.
    let ctx2 = crate::args::fresh_context(&s.ctx);
    let mut report2 = lint_in(&s, &ctx2)?;
    if let Some(path) = &s.baseline {
        baseline::filter(&ctx2, &mut report2.findings, path)?;
    }
    let mut o = render(&s, &ctx2, &report2).secrets(crate::secrets::collect(&ctx2));
    o.notes = notes;
    if failed {
        o.status = Status::PartialFailure;
        o.healthy = false;
    }
    Ok(o)
}

/// `--diff`: the safe fixes (what `--fix` would write) as one patch, then the fixes that need
/// review, separately, so piping the first part to `patch` never applies an unsafe one.
fn diff_text(ctx: &Context, report: &Report) -> String {
    let (fixable, withheld) = fixable(&report.findings);
    let safe = fix::plan(&fixable, false);
    let unsafe_only: Vec<_> = fixable
        .iter()
        .filter(|f| {
            f.fix
                .as_ref()
                .is_some_and(|x| x.applicability == Applicability::Unsafe)
        })
        .cloned()
        .collect();
    let review = fix::plan(&unsafe_only, true);
    let mut out = String::new();
    for p in &safe {
        if let Some(d) = fix::diff(ctx, p) {
            out.push_str(&d);
        }
    }
    if safe.is_empty() {
        out.push_str("No safe fixes to show.\n");
    }
    for w in &withheld {
        out.push_str(&format!("# {w}\n"));
    }
    if !review.is_empty() {
        out.push_str("\n# Fixes to review: they change behaviour, so --fix does not apply them.\n");
        for p in &review {
            if let Some(d) = fix::diff(ctx, p) {
                out.push_str(&d);
            }
        }
    }
    out
}

/// Findings whose fixes may be offered, and a note for each file whose fixes are withheld.
/// A file with syntax errors (a template, a half-edited file) is not what the MTA runs and
/// not what the other rules understood: their "mechanical" edits could break it further
/// (e.g. removing a "duplicate" that is really the other branch of a template `if`). Only
/// the syntax findings' own fixes stay.
fn fixable(findings: &[Finding]) -> (Vec<Finding>, Vec<String>) {
    use std::collections::BTreeSet;
    let broken: BTreeSet<_> = findings
        .iter()
        .filter(|f| {
            // A `#` inside a value (PF003) is an error when it breaks a restriction list,
            // and a blank in a short `-o` override (PF008) kills the listener, but the file
            // is read exactly as Postfix reads it: other fixes stay valid.
            (f.category == "syntax"
                && f.severity == Severity::Error
                && !matches!(
                    f.name.as_str(),
                    "hash-in-value" | "short-override-with-blank"
                ))
                || f.name == "template-placeholder"
        })
        .filter_map(|f| f.location.as_ref().map(|l| l.file.clone()))
        .collect();
    let mut withheld: std::collections::BTreeMap<std::path::PathBuf, Vec<&str>> =
        Default::default();
    let keep = findings
        .iter()
        .filter(|f| {
            let Some(fx) = &f.fix else { return true };
            let hit = fx.edits.iter().find(|e| broken.contains(&e.file));
            match hit {
                Some(e) if !(f.category == "syntax" && f.severity == Severity::Error) => {
                    withheld.entry(e.file.clone()).or_default().push(&f.code);
                    false
                }
                _ => true,
            }
        })
        .cloned()
        .collect();
    // Say exactly what is held back, so "fixed FILE" (its syntax fixes) and a finding's
    // "--diff shows it" do not read as contradictions.
    let notes = withheld
        .into_iter()
        .map(|(p, codes)| {
            format!(
                "{}: has syntax errors (a template or a half-edited file?), so only their fixes are offered; the other {} fix{} ({}) {} withheld until those are fixed and relaydoctor runs again",
                p.display(),
                codes.len(),
                if codes.len() == 1 { "" } else { "es" },
                codes.join(", "),
                if codes.len() == 1 { "is" } else { "are" },
            )
        })
        .collect();
    (keep, notes)
}
