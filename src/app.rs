//! The commands: what each one does with its arguments, and its exit code.

use std::io::Write;

use crate::cli::{
    Cli, Command, FailOn, Format, LintArgs, LintFormat, RulesArgs, RulesFormat, Shell,
    SimulateArgs, TargetArgs,
};
use crate::config::Config;
use crate::context::{Context, Options, Root};
use crate::finding::Severity;
use crate::relay::Query;
use crate::report::{self, Report};
use crate::{baseline, catalogue, fix, lint, plesk, suppress};

pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_FINDINGS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Lint(a) => cmd_lint(&a),
        Command::Simulate(a) => cmd_simulate(&a),
        Command::Explain(a) => crate::explain::run(&a),
        Command::Rules(a) => cmd_rules(&a),
        Command::Plesk(crate::cli::PleskCommand::Check(a)) => plesk::check(&a),
        Command::Plesk(crate::cli::PleskCommand::Repair(a)) => plesk::repair(&a),
        Command::Completions { shell } => cmd_completions(shell),
        Command::Manpage => cmd_manpage(),
    }
}

pub fn fail_on(f: FailOn) -> Severity {
    match f {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
        FailOn::Info => Severity::Info,
    }
}

/// The severity that fails a lint run: the flag, else the settings file, else warning.
pub fn effective_fail_on(f: Option<FailOn>, config: &Config) -> Severity {
    f.map(fail_on)
        .unwrap_or(config.fail_on.unwrap_or(Severity::Warning))
}

fn error(msg: impl std::fmt::Display) -> i32 {
    eprintln!("relaydoctor: {msg}");
    EXIT_ERROR
}

/// Build the run context from the target arguments; None (after an error message) when the
/// arguments cannot work.
fn context(
    t: &TargetArgs,
    target_version: Option<String>,
    target_compat: Option<String>,
) -> Result<Context, String> {
    context_for(&t.config, target_version, target_compat)
}

/// The run context for `--root`, `--postfix-version` and `--define` (lint, simulate, explain).
pub fn context_for(
    t: &crate::cli::ConfigArgs,
    target_version: Option<String>,
    target_compat: Option<String>,
) -> Result<Context, String> {
    let root = match &t.root {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(format!("--root {}: not a directory", dir.display()));
            }
            Root::snapshot(dir)
        }
        None => Root::live(),
    };
    if let Some(v) = &t.postfix_version {
        // A typo would silently fall back to the installed (or newest known) version.
        if crate::postfix::params::parse_version(v).is_none_or(|(major, _, _)| major < 2) {
            return Err(format!(
                "--postfix-version {v}: not a Postfix version (e.g. 3.7 or 3.7.11)"
            ));
        }
    }
    let mut defines = Vec::new();
    for d in &t.defines {
        match d.split_once('=') {
            Some((n, v)) => defines.push((n.trim().to_string(), v.to_string())),
            None => defines.push((d.trim().to_string(), String::new())),
        }
    }
    Ok(Context::new(
        root,
        Options {
            postfix_version: t.postfix_version.clone(),
            target_version,
            target_compat,
            exim_defines: defines,
        },
    ))
}

/// A `--select`/`--ignore` entry that names no rule is almost always a typo; in a cron job
/// it would silently turn the check into "healthy" forever, so it is an error.
fn check_codes(list: &[String], flag: &str) -> Result<(), String> {
    if list.is_empty() {
        return Ok(());
    }
    let cat = catalogue::all();
    for c in list
        .iter()
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
    {
        if !cat.keys().any(|k| k.starts_with(&c)) {
            return Err(format!(
                "{flag} {c}: no rule code starts with {c} (`relaydoctor rules` lists them)"
            ));
        }
    }
    Ok(())
}

fn lint_once(a: &LintArgs, config: &Config) -> Result<(Context, Report), String> {
    check_codes(&a.select, "--select")?;
    check_codes(&a.ignore, "--ignore")?;
    check_codes(&config.select, "select in relaydoctor.toml:")?;
    check_codes(&config.ignore, "ignore in relaydoctor.toml:")?;
    let ctx = context(&a.target, a.target_version.clone(), a.target_compat.clone())?;
    let mut report = lint::run_with_progress(
        &ctx,
        &a.target.paths,
        a.format == LintFormat::Text && !a.quiet,
    )?;
    suppress::apply(&ctx, &mut report.findings);
    config.apply(&mut report.findings);
    // Command-line filters replace the settings file's, as with ruff and shellcheck.
    let select = if a.select.is_empty() {
        &config.select
    } else {
        &a.select
    };
    let ignore = if a.ignore.is_empty() {
        &config.ignore
    } else {
        &a.ignore
    };
    lint::filter(&mut report.findings, select, ignore);
    report.sort();
    Ok((ctx, report))
}

fn cmd_lint(a: &LintArgs) -> i32 {
    let nagios = a.format == LintFormat::Nagios;
    let fail = |msg: String| {
        if nagios {
            print!("{}", report::nagios::unknown(&msg));
            report::nagios::UNKNOWN
        } else {
            if a.format == LintFormat::Prometheus {
                // A failed run must not leave the last good file in place: alerts need
                // `relaydoctor_up 0` to fire.
                let text = report::prometheus::render_failure(unix_now());
                match &a.output {
                    Some(path) => {
                        let _ = fix::write_new_atomic(path, text.as_bytes());
                    }
                    None => print!("{text}"),
                }
            }
            error(msg)
        }
    };
    let config = match Config::load(a.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let (ctx, mut report) = match lint_once(a, &config) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let threshold = effective_fail_on(a.fail_on, &config);
    let color = report::use_color(a.color.color) && a.output.is_none();

    if let Some(path) = &a.write_baseline {
        if let Err(e) = baseline::write(&ctx, &report.findings, path) {
            return fail(e);
        }
        eprintln!(
            "relaydoctor: recorded {} findings in baseline {}",
            report.findings.len(),
            path.display()
        );
    }
    if let Some(path) = &a.baseline {
        let before = report.findings.len();
        if let Err(e) = baseline::filter(&ctx, &mut report.findings, path) {
            return fail(e);
        }
        let hidden = before - report.findings.len();
        if hidden > 0 && !a.quiet && a.output.is_none() {
            eprintln!(
                "relaydoctor: {hidden} known finding{} hidden by baseline {}",
                if hidden == 1 { "" } else { "s" },
                path.display()
            );
        }
    }

    if a.diff {
        let secrets = crate::secrets::collect(&ctx);
        return finish(
            &crate::secrets::scrub(&diff_text(&ctx, &report), &secrets),
            report.fails(threshold),
        );
    }
    if a.fix {
        let (fixable, withheld) = fixable(&report.findings);
        for w in &withheld {
            eprintln!("relaydoctor: {w}");
        }
        let plans = fix::plan(&fixable, false);
        let mut failed = false;
        for p in &plans {
            match fix::apply(&ctx, p) {
                Ok(backup) => eprintln!(
                    "relaydoctor: fixed {} (backup: {})",
                    p.display.display(),
                    ctx.root.display(&backup).display()
                ),
                Err(e) => {
                    eprintln!("relaydoctor: {e}");
                    failed = true;
                }
            }
        }
        // Report what is left after the fixes, as the admin will see it next time.
        let (ctx2, mut report2) = match lint_once(a, &config) {
            Ok(x) => x,
            Err(e) => return fail(e),
        };
        if let Some(path) = &a.baseline {
            if let Err(e) = baseline::filter(&ctx2, &mut report2.findings, path) {
                return fail(e);
            }
        }
        let code = emit(a, &ctx2, &report2, threshold, color);
        return if failed { EXIT_ERROR } else { code };
    }
    emit(a, &ctx, &report, threshold, color)
}

fn emit(a: &LintArgs, ctx: &Context, report: &Report, threshold: Severity, color: bool) -> i32 {
    let fails = report.fails(threshold);
    if a.quiet && !fails && a.output.is_none() {
        return EXIT_CLEAN;
    }
    let out = match a.format {
        LintFormat::Json => report::json::render(report),
        LintFormat::Text => report::text::render(report, Some(ctx), color),
        LintFormat::Sarif => report::sarif::render(report),
        LintFormat::Github => report::github::render(report),
        LintFormat::Nagios => report::nagios::render(report),
        LintFormat::Prometheus => report::prometheus::render(report, unix_now()),
    };
    // Findings quote configuration lines; passwords among them never leave the machine's
    // files (secrets.rs).
    let out = crate::secrets::scrub(&out, &crate::secrets::collect(ctx));
    let code = if a.format == LintFormat::Nagios {
        report::nagios::status(report).1
    } else if fails {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    };
    if let Some(path) = &a.output {
        if let Err(e) = fix::write_new_atomic(path, out.as_bytes()) {
            return error(format!("{}: {e}", path.display()));
        }
        return code;
    }
    finish(&out, false);
    code
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn finish(out: &str, fails: bool) -> i32 {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a panic or a message.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    if fails {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
}

fn cmd_simulate(a: &SimulateArgs) -> i32 {
    let ctx = match context(&a.target, None, None) {
        Ok(c) => c,
        Err(e) => return error(e),
    };
    if a.client.parse::<std::net::IpAddr>().is_err() {
        return error(format!("--client {}: not an IP address", a.client));
    }
    if !a.rcpt.contains('@') {
        return error(format!("--rcpt {}: not an address (user@domain)", a.rcpt));
    }
    if let Some(n) = &a.client_name {
        // What reverse DNS can give: labels of letters, digits, `-` and `_`, dot-separated.
        let host = n.strip_suffix('.').unwrap_or(n);
        let ok = !host.is_empty()
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !ok {
            return error(format!(
                "--client-name {n:?}: not a host name (leave it out for a client without reverse DNS, which Postfix calls `unknown`)"
            ));
        }
    }
    let q = Query {
        client_ip: a.client.clone(),
        client_name: a.client_name.clone(),
        sasl_user: a.sasl_user.clone(),
        helo: a.helo.clone(),
        sender: a.sender.clone(),
        rcpt: a.rcpt.clone(),
        service: a.service.clone(),
    };
    let decisions = match lint::simulate(&ctx, &a.target.paths, &q) {
        Ok(d) => d,
        Err(e) => return error(e),
    };
    if decisions.is_empty() {
        // Nothing answers SMTP in this configuration: not a clean result.
        return error("no listening SMTP service found in the configuration (no smtpd in master.cf, no Exim daemon, no qmail-smtpd)");
    }
    let color = report::use_color(a.color.color);
    let out = match a.format {
        Format::Json => {
            let v = serde_json::json!({"version": 1, "decisions": decisions});
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        Format::Text => render_decisions(&decisions, color),
    };
    finish(&out, false)
}

pub fn render_decisions(decisions: &[crate::relay::Decision], color: bool) -> String {
    use colored::Colorize;
    use std::fmt::Write as _;
    let mut out = String::new();
    if decisions.is_empty() {
        out.push_str("No listening SMTP service found.\n");
    }
    for d in decisions {
        let verdict = d.result.as_str();
        let verdict = if color {
            match d.result {
                crate::relay::Verdict::Accept => verdict.green().bold().to_string(),
                crate::relay::Verdict::Reject => verdict.red().bold().to_string(),
                _ => verdict.yellow().bold().to_string(),
            }
        } else {
            verdict.to_string()
        };
        let reply = d.reply_line();
        // A `depends` decision may list its possible outcomes joined by "; ": one per line,
        // so each can be read on its own.
        let outcomes: Vec<&str> = match (&d.result, &d.text) {
            (crate::relay::Verdict::Depends, Some(t)) if t.contains("; ") => {
                t.split("; ").collect()
            }
            _ => Vec::new(),
        };
        if outcomes.is_empty() {
            let _ = writeln!(
                out,
                "{} {}: {verdict}{}",
                d.mta.as_str(),
                d.service,
                if reply.is_empty() {
                    String::new()
                } else {
                    format!(" ({reply})")
                }
            );
        } else {
            let _ = writeln!(out, "{} {}: {verdict}, one of:", d.mta.as_str(), d.service);
            const SHOWN: usize = 8;
            for o in outcomes.iter().take(SHOWN) {
                let _ = writeln!(out, "  - {o}");
            }
            if outcomes.len() > SHOWN {
                let _ = writeln!(
                    out,
                    "  - ... {} more (--format json lists all)",
                    outcomes.len() - SHOWN
                );
            }
        }
        if !d.depends_on.is_empty() {
            let _ = writeln!(out, "  depends on: {}", d.depends_on.join(", "));
        }
        for s in &d.trace {
            // Line 0: a built-in default or computed value, described in `file`.
            let at = if s.line > 0 {
                format!("{}:{}", s.file.display(), s.line)
            } else {
                s.file.display().to_string()
            };
            let _ = writeln!(out, "  {at}: {} -> {}", s.entry, s.effect);
        }
    }
    out
}

fn cmd_rules(a: &RulesArgs) -> i32 {
    let cat = catalogue::all();
    let mut out = String::new();
    use std::fmt::Write as _;
    match &a.code {
        Some(code) => {
            let Some(r) = catalogue::get(&code.to_ascii_uppercase()) else {
                return error(format!("no rule {code}; `relaydoctor rules` lists them"));
            };
            if a.format == RulesFormat::Json {
                out = format!(
                    "{}\n",
                    serde_json::to_string_pretty(&rule_json(r)).unwrap_or_default()
                );
            } else {
                let _ = writeln!(
                    out,
                    "{} {} ({}, {})",
                    r.code,
                    r.name,
                    r.category,
                    r.severity.as_str()
                );
                let _ = writeln!(out, "{}\n", r.summary);
                let _ = writeln!(out, "{}", r.explanation.trim_end());
                if let Some(b) = &r.bad {
                    let _ = writeln!(out, "\nTriggers on:\n{}", indent(b));
                }
                if let Some(g) = &r.good {
                    let _ = writeln!(out, "\nCorrected:\n{}", indent(g));
                }
                if !r.references.is_empty() {
                    let _ = writeln!(out, "\nReferences: {}", r.references.join("; "));
                }
            }
        }
        None if a.format == RulesFormat::Markdown => out = rules_markdown(),
        None => {
            if a.format == RulesFormat::Json {
                let v: Vec<_> = cat.values().map(rule_json).collect();
                out = format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                for r in cat.values() {
                    let _ = writeln!(
                        out,
                        "{:<6} {:<8} {:<18} {:<36} {}",
                        r.code,
                        r.severity.as_str(),
                        r.category,
                        r.name,
                        r.summary
                    );
                }
            }
        }
    }
    finish(&out, false)
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rule_json(r: &catalogue::Rule) -> serde_json::Value {
    serde_json::json!({
        "code": r.code, "name": r.name, "category": r.category,
        "severity": r.severity.as_str(), "summary": r.summary,
        "explanation": r.explanation, "bad": r.bad, "good": r.good,
        "references": r.references,
    })
}

fn cmd_completions(shell: Shell) -> i32 {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    let sh = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(sh, &mut cmd, "relaydoctor", &mut buf);
    finish(&String::from_utf8_lossy(&buf), false)
}

/// The man page, generated from the same definitions as --help: the top-level page, then a
/// section per command (options, examples), then exit status.
pub fn manpage_roff() -> String {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut buf = Vec::new();
    let _ = clap_mangen::Man::new(cmd.clone()).render(&mut buf);
    let mut out = String::from_utf8_lossy(&buf).into_owned();
    let mut subs: Vec<clap::Command> = Vec::new();
    for sub in cmd.get_subcommands() {
        if sub.has_subcommands() {
            for s2 in sub.get_subcommands() {
                subs.push(
                    s2.clone()
                        .name(format!("{} {}", sub.get_name(), s2.get_name())),
                );
            }
        } else {
            subs.push(sub.clone());
        }
    }
    for sub in subs {
        let title = format!("relaydoctor {}", sub.get_name());
        out.push_str(&format!(".SH \"{}\"\n", title.to_uppercase()));
        if let Some(about) = sub.get_about() {
            out.push_str(&format!("{about}\n.PP\n"));
        }
        let man = clap_mangen::Man::new(sub.clone());
        let mut b = Vec::new();
        let _ = man.render_synopsis_section(&mut b);
        let _ = man.render_options_section(&mut b);
        let _ = man.render_extra_section(&mut b);
        // Nest the command's sections under its heading.
        let text = String::from_utf8_lossy(&b).replace(".SH ", ".SS ");
        out.push_str(&text);
    }
    out.push_str(
        ".SH \"EXIT STATUS\"\n0: no finding at or above \\-\\-fail\\-on. 1: findings. 2: relaydoctor could not do its job \
         (bad arguments, unreadable named path, database unreachable). With \\-\\-format nagios: 0 OK, 1 WARNING, \
         2 CRITICAL, 3 UNKNOWN.\n.SH FILES\n./relaydoctor.toml, /etc/relaydoctor.toml: settings (select, ignore, \
         per\\-path\\-ignores, severity, fail\\-on).\n.SH ENVIRONMENT\nNO_COLOR: no colors with \\-\\-color auto. \
         RELAYDOCTOR_DB_URL: database URL for the plesk commands.\n",
    );
    out
}

fn cmd_manpage() -> i32 {
    finish(&manpage_roff(), false)
}

/// docs/rules.md: the catalogue as Markdown (a test fails when the committed file is stale).
pub fn rules_markdown() -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "# relaydoctor rules\n\nGenerated from rules/*.toml by `relaydoctor rules --format markdown`; do not edit.\n\n\
         | code | name | category | severity | summary |\n|---|---|---|---|---|\n",
    );
    let cat = catalogue::all();
    for r in cat.values() {
        let _ = writeln!(
            out,
            "| [{c}](#{l}) | {} | {} | {} | {} |",
            r.name,
            r.category,
            r.severity.as_str(),
            r.summary.replace('|', "\\|"),
            c = r.code,
            l = r.code.to_ascii_lowercase()
        );
    }
    for r in cat.values() {
        let _ = write!(
            out,
            "\n## {}\n\n**{}** · {} · {}\n\n{}\n\n{}\n",
            r.code,
            r.name,
            r.category,
            r.severity.as_str(),
            r.summary,
            r.explanation.trim()
        );
        if let Some(b) = &r.bad {
            let _ = write!(
                out,
                "\nTriggers on:\n\n```\n{}\n```\n",
                b.trim_matches('\n')
            );
        }
        if let Some(g) = &r.good {
            let _ = write!(out, "\nCorrected:\n\n```\n{}\n```\n", g.trim_matches('\n'));
        }
        if !r.references.is_empty() {
            let _ = write!(out, "\nReferences: {}\n", r.references.join("; "));
        }
    }
    out
}

/// `--diff`: the safe fixes (what `--fix` would write) as one patch, then the fixes that need
/// review, separately, so piping the first part to `patch` never applies an unsafe one.
fn diff_text(ctx: &Context, report: &Report) -> String {
    use crate::finding::Applicability;
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
fn fixable(findings: &[crate::finding::Finding]) -> (Vec<crate::finding::Finding>, Vec<String>) {
    use std::collections::BTreeSet;
    let broken: BTreeSet<_> = findings
        .iter()
        .filter(|f| {
            // A `#` inside a value (PF003) is an error when it breaks a restriction list,
            // but the file is read exactly as Postfix reads it: other fixes stay valid.
            (f.category == "syntax" && f.severity == Severity::Error && f.name != "hash-in-value")
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
