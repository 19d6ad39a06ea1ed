//! The command layer: one function per command turns resolved settings (src/args.rs) into an
//! engine call and gets back an [`Outcome`] or a [`Failure`]. This module alone prints,
//! scrubs secrets, writes `-o` files and maps results to exit codes.

mod dns;
mod lint;
mod meta;
mod plesk;
mod probe;

use std::io::Write;

use crate::args::{self, Delivery};
use crate::cli::{Cli, Command};
use crate::outcome::{Failure, Outcome, Status};

pub use meta::manpage_roff;

const EXIT_CLEAN: i32 = 0;
const EXIT_FINDINGS: i32 = 1;
const EXIT_ERROR: i32 = 2;
/// Nagios plugin API: the check itself could not run.
const EXIT_UNKNOWN: i32 = 3;

/// Run one command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let host_name = cli.host_name.as_deref();
    match cli.command {
        Command::Lint(a) => {
            let how = args::lint_delivery(&a, host_name);
            deliver(args::lint(&a).and_then(lint::run), &how)
        }
        Command::Dns(a) => deliver(
            args::dns(&a).and_then(dns::run),
            &args::dns_delivery(&a, host_name),
        ),
        Command::Probe(a) => deliver(
            args::probe(&a).and_then(probe::run),
            &args::probe_delivery(&a, host_name),
        ),
        Command::Simulate(a) => {
            let host = args::host(host_name, a.target.config.root.as_deref());
            deliver(
                args::simulate(&a).and_then(simulate),
                &args::plain_delivery(host),
            )
        }
        Command::Explain(a) => {
            let host = args::host(host_name, a.config.root.as_deref());
            deliver(
                args::explain(&a).and_then(crate::explain::run),
                &args::plain_delivery(host),
            )
        }
        Command::Report(a) => {
            let how = Delivery {
                output: a.output.clone(),
                ..Delivery::default()
            };
            deliver(fleet_report(&a), &how)
        }
        Command::Rules(a) => deliver(meta::rules(&a), &Delivery::default()),
        Command::Plesk(c) => plesk::run(c, host_name),
        Command::Completions { shell } => {
            deliver(Ok(meta::completions(shell)), &Delivery::default())
        }
        Command::Manpage => deliver(
            Ok(Outcome::new(manpage_roff(), Status::Clean)),
            &Delivery::default(),
        ),
    }
}

fn simulate(s: args::SimulateSettings) -> Result<Outcome, Failure> {
    let decisions = crate::lint::simulate(&s.ctx, &s.paths, &s.query)?;
    if decisions.is_empty() {
        // Nothing answers SMTP in this configuration: not a clean result.
        return Err(Failure::new(
            "no listening SMTP service found in the configuration (no smtpd in master.cf, no Exim daemon, no qmail-smtpd)",
        ));
    }
    let out = if s.json {
        crate::report::simulate::json(&decisions)
    } else {
        crate::report::simulate::text(&decisions, s.color)
    };
    Ok(Outcome::new(out, Status::Clean)
        .json(s.json)
        .secrets(crate::secrets::collect(&s.ctx)))
}

fn fleet_report(a: &crate::cli::ReportArgs) -> Result<Outcome, Failure> {
    let fleet = crate::fleet::merge(&a.inputs, a.baseline.as_deref())?;
    let threshold = args::fail_on(a.fail_on);
    // A host a check could not run on is not clean.
    let fails = fleet
        .hosts
        .iter()
        .any(|h| h.worst() >= Some(threshold) || !h.failed.is_empty());
    let color = args::color(a.color.color) && a.output.is_none();
    let out = crate::report::fleet::render(a.format, &fleet, color);
    let mut o = Outcome::findings(out, fails);
    o.notes = fleet
        .skipped
        .iter()
        .map(|s| format!("skipped {s}"))
        .collect();
    Ok(o)
}

/// Print (or write) a command's result and return the exit code. Every text that leaves the
/// process goes through the scrubber with the secrets the command collected.
pub(crate) fn deliver(result: Result<Outcome, Failure>, how: &Delivery) -> i32 {
    match result {
        Ok(o) => {
            let scrub = |t| scrub_text(t, &o.secrets);
            let code = exit_code(o.status);
            if !(how.quiet && o.healthy && how.output.is_none()) {
                let mut out = scrub(&o.stdout);
                if let (true, Some(host)) = (o.json, &how.host) {
                    out = std::borrow::Cow::Owned(crate::host::insert_into_json(&out, host));
                }
                match &how.output {
                    Some(path) => {
                        if let Err(e) = crate::fix::write_new_atomic(path, out.as_bytes()) {
                            eprintln!("relaydoctor: {}: {}", path.display(), scrub(&e));
                            return EXIT_ERROR;
                        }
                    }
                    None => print_stdout(&out),
                }
            }
            for n in o.notes.iter().chain(crate::postfix::params::load_errors()) {
                eprintln!("relaydoctor: {}", scrub(n));
            }
            code
        }
        Err(f) => fail(&f, how),
    }
}

fn fail(f: &Failure, how: &Delivery) -> i32 {
    let msg = crate::secrets::scrub(&f.message, &f.secrets);
    if how.nagios {
        print_stdout(&crate::report::nagios::unknown(&msg));
        return EXIT_UNKNOWN;
    }
    if how.prometheus {
        // A failed run must not leave the last good file in place: alerts need
        // `relaydoctor_up 0` to fire.
        let text = crate::report::prometheus::render_failure(unix_now());
        match &how.output {
            Some(path) => {
                let _ = crate::fix::write_new_atomic(path, text.as_bytes());
            }
            None => print_stdout(&text),
        }
    }
    if how.json {
        // The result file of a check that could not run says so (the fleet report lists the
        // host as "could not check"); an empty file was skipped as unreadable.
        let doc = serde_json::json!({
            "version": 1,
            "tool": {"name": "relaydoctor", "version": env!("CARGO_PKG_VERSION")},
            "error": msg,
        });
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        if let Some(host) = &how.host {
            text = crate::host::insert_into_json(&text, host);
        }
        text.push('\n');
        match &how.output {
            Some(path) => {
                let _ = crate::fix::write_new_atomic(path, text.as_bytes());
            }
            None => print_stdout(&text),
        }
    }
    eprintln!("relaydoctor: {msg}");
    EXIT_ERROR
}

/// Mask secrets; without any, the text is passed through uncopied (reports can be large).
fn scrub_text<'a>(t: &'a str, secrets: &[String]) -> std::borrow::Cow<'a, str> {
    if secrets.is_empty() {
        std::borrow::Cow::Borrowed(t)
    } else {
        std::borrow::Cow::Owned(crate::secrets::scrub(t, secrets))
    }
}

/// How a findings report ended: the Nagios state for `--format nagios`, else findings at or
/// above the threshold (`fails`) or clean.
fn report_status(
    format: crate::report::OutputFormat,
    report: &crate::report::Report,
    fails: bool,
) -> Status {
    if format == crate::report::OutputFormat::Nagios {
        Status::Nagios(crate::report::nagios::status(report).1 as u8)
    } else if fails {
        Status::Findings
    } else {
        Status::Clean
    }
}

fn exit_code(s: Status) -> i32 {
    match s {
        Status::Clean => EXIT_CLEAN,
        Status::Findings => EXIT_FINDINGS,
        Status::PartialFailure => EXIT_ERROR,
        Status::Nagios(n) => i32::from(n.min(3)),
    }
}

fn print_stdout(out: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a panic or a message.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
