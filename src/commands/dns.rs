//! `dns`: ask DNS about the configuration's domains, blocklists and the server's addresses,
//! then filter (--select/--ignore) and render like `lint`.

use crate::args::DnsSettings;
use crate::outcome::{Failure, Outcome, Status};
use crate::report::{self, OutputFormat};

pub fn run(s: DnsSettings) -> Result<Outcome, Failure> {
    let mut audit = crate::dns::run(&s.engine)?;
    crate::lint::filter(&mut audit.report.findings, &s.select, &s.ignore);
    let report = &audit.report;
    let fails = report.fails(s.threshold);
    // Nothing got an answer (every query failed or timed out): the check did not run, which
    // Nagios calls UNKNOWN, not OK.
    let nothing_checked = audit.tally.checked == 0 && audit.tally.unchecked > 0;
    let (out, status) = if s.format == OutputFormat::Nagios && nothing_checked {
        (
            report::nagios::unknown(&format!(
                "no DNS answer: {} checks could not be done (resolver down or not answering?)",
                audit.tally.unchecked
            )),
            Status::Nagios(3),
        )
    } else {
        let out = report::render(
            s.format,
            report,
            Some(&s.engine.ctx),
            s.color,
            super::unix_now(),
        );
        let status = super::report_status(s.format, report, fails);
        (out, status)
    };
    let mut o = Outcome::new(out, status)
        .json(s.format == OutputFormat::Json)
        .secrets(audit.secrets.clone());
    o.healthy = !fails && !nothing_checked;
    if audit.tally.unchecked > 0 && s.format == OutputFormat::Text {
        o.notes.push(format!(
            "{} of {} checks could not be done (DNS failures or timeouts); they are reported as \"could not check\"",
            audit.tally.unchecked,
            audit.tally.checked + audit.tally.unchecked
        ));
    }
    if s.format == OutputFormat::Text {
        o.notes.append(&mut audit.notes);
    }
    Ok(o)
}
