//! `probe`: ask running SMTP servers (src/probe/), then render like `lint`: the probe's own
//! text and JSON, the shared SARIF/GitHub/Nagios/Prometheus renderers for the findings.

use crate::args::ProbeSettings;
use crate::outcome::{Failure, Outcome, Status};
use crate::report::{self, OutputFormat};

pub fn run(s: ProbeSettings) -> Result<Outcome, Failure> {
    let audit = crate::probe::run(&s.engine)?;
    if audit.nothing_reached() {
        // No server answered: the probe did not run (exit 2, Nagios UNKNOWN).
        let why: Vec<String> = audit
            .targets
            .iter()
            .map(|t| {
                t.error
                    .clone()
                    .unwrap_or_else(|| format!("{}: no answer", t.target))
            })
            .collect();
        return Err(
            Failure::new(format!("no SMTP server answered: {}", why.join("; ")))
                .secrets(audit.secrets),
        );
    }
    let report = &audit.report;
    let fails = report.fails(s.threshold);
    let out = match s.format {
        OutputFormat::Text => crate::probe::render::text(&audit, s.color),
        OutputFormat::Json => crate::probe::render::json(&audit),
        f => report::render(f, report, None, s.color, super::unix_now()),
    };
    let status = super::report_status(s.format, report, fails);
    let mut o = Outcome::new(out, status)
        .json(s.format == OutputFormat::Json)
        .secrets(audit.secrets.clone());
    o.healthy = !fails;
    for t in audit.targets.iter().filter(|t| t.banner.is_none()) {
        if let Some(e) = &t.error {
            o.notes.push(format!("{}: not reached: {e}", t.target));
        }
    }
    if status == Status::Clean && s.format == OutputFormat::Text {
        o.notes
            .push("no finding: the server refused every relay test".into());
    }
    Ok(o)
}
