//! Plesk: the smtp_poplocks table and mail relay settings in the psa database.
//!
//! `check` inspects (read-only); `repair` plans, shows the plan as a diff plus SQL, and with
//! `apply` backs up and changes the table all-or-nothing (see repair.rs). Both return an
//! [`Outcome`] or a [`Failure`] to the command layer, which prints and picks the exit code.
//!
//! Layout: model.rs reads the database into typed values (all reading SQL), checks.rs turns
//! them into findings (no SQL), inspect.rs runs one inspection, plan.rs decides, repair.rs,
//! planload.rs and backup.rs write, output.rs renders.

pub mod backup;
pub mod checks;
pub mod connect;
pub mod credentials;
pub mod domains;
pub mod inspect;
pub mod model;
pub mod output;
pub mod plan;
pub mod planload;
pub mod repair;
pub mod settings;
pub mod values;

use crate::finding::Severity;
use crate::outcome::{Failure, Notify, Outcome, Status};

use connect::DbError;
use credentials::Credentials;
use inspect::Inspection;
pub use settings::{CheckFormat, CheckSettings, DbSettings, RepairSettings};

/// An open connection and what the credentials resolution had to say.
struct Session {
    creds: Credentials,
    conn: mysql::Conn,
    warnings: Vec<String>,
}

impl Session {
    fn fail(&self, msg: impl Into<String>) -> Failure {
        fail_with(msg.into(), &self.warnings, &self.creds.secrets)
    }
}

fn fail_with(msg: String, warnings: &[String], secrets: &[String]) -> Failure {
    let mut msg = msg;
    for w in warnings {
        msg.push_str(&format!("\nwarning: {w}"));
    }
    Failure::new(msg).secrets(secrets.to_vec())
}

fn open(db: &DbSettings) -> Result<Session, Failure> {
    let mut warnings = Vec::new();
    let creds =
        credentials::resolve(db, &mut warnings).map_err(|e| fail_with(e.0, &warnings, &[]))?;
    let conn = connect::connect(&creds).map_err(|e| fail_with(e.0, &warnings, &creds.secrets))?;
    Ok(Session {
        creds,
        conn,
        warnings,
    })
}

fn inspect_db(s: &mut Session, collect: bool, progress: bool) -> Result<Inspection, DbError> {
    inspect::inspect(
        &mut s.conn,
        &s.creds,
        &inspect::Options {
            collect_rows: collect,
            progress,
        },
    )
}

fn finish(s: &Session, out: String, status: Status) -> Outcome {
    let mut o = Outcome::new(out, status).secrets(s.creds.secrets.clone());
    for w in &s.warnings {
        o = o.note(format!("warning: {w}"));
    }
    o
}

/// `relaydoctor plesk check`.
pub fn check(settings: &CheckSettings) -> Result<Outcome, Failure> {
    let mut s = open(&settings.db)?;
    let progress = settings.progress && settings.format == CheckFormat::Text;
    let insp = inspect_db(&mut s, false, progress).map_err(|e| s.fail(e.0))?;
    let fails = insp.findings.iter().any(|f| f.severity >= settings.fail_on);
    let status = if fails {
        Status::Findings
    } else {
        Status::Clean
    };
    Ok(match settings.format {
        CheckFormat::Nagios => {
            let (text, code) = output::nagios(&s.creds, &insp);
            finish(&s, text, Status::Nagios(code))
        }
        CheckFormat::Json => finish(&s, output::check_json(&s.creds, &insp), status),
        CheckFormat::Text => finish(
            &s,
            output::check_text(&s.creds, &insp, settings.color),
            status,
        ),
    })
}

/// `relaydoctor plesk repair`. `notify` hears, while the work goes on, what must be known
/// even if the run dies (the backup path before anything changes).
pub fn repair(settings: &RepairSettings, notify: Notify) -> Result<Outcome, Failure> {
    let mut s = open(&settings.db)?;
    let t0 = std::time::Instant::now();
    let progress = settings.progress && !settings.json;
    let mut insp = inspect_db(&mut s, true, progress).map_err(|e| s.fail(e.0))?;
    if !insp.schema.exists {
        return Err(s.fail(format!(
            "{}.{} does not exist; nothing to repair (`plesk repair db -y` recreates it)",
            s.creds.db,
            model::TABLE
        )));
    }
    repair::timing("inspect", t0, notify);
    let plan = plan::plan(&mut insp, settings.include_whitelist);
    repair::timing("plan", t0, notify);
    if !settings.apply {
        let out = if settings.json {
            output::repair_json(&s.creds, &insp.findings, &plan, false, None)
        } else {
            output::repair_text(&s.creds, &insp, &plan, settings)
        };
        let fails = insp
            .findings
            .iter()
            .any(|f| f.severity >= Severity::Warning);
        let status = if fails || !plan.is_empty() {
            Status::Findings
        } else {
            Status::Clean
        };
        return Ok(finish(&s, out, status));
    }
    if !plan.is_empty() && !insp.schema.known {
        return Err(s.fail(format!(
            "{}.{} does not match a known schema generation; repair refused (see the PL002/PL003 findings of `relaydoctor plesk check`)",
            s.creds.db,
            model::TABLE
        )));
    }
    apply(&mut s, settings, insp, plan, notify, t0)
}

fn apply(
    s: &mut Session,
    settings: &RepairSettings,
    mut insp: Inspection,
    mut plan: plan::Plan,
    notify: Notify,
    t0: std::time::Instant,
) -> Result<Outcome, Failure> {
    let progress = settings.progress && !settings.json;
    let mut log = Vec::new();
    // 1. REPAIR TABLE first: until the files are sound the rows cannot be read reliably.
    let mut repaired = false;
    if plan.repair_table {
        let msg = repair::repair_table(&mut s.conn, &s.creds).map_err(|e| s.fail(e.0))?;
        log.push(msg);
        repaired = true;
        insp = inspect_db(s, true, progress).map_err(|e| s.fail(e.0))?;
        let p = plan::plan(&mut insp, settings.include_whitelist);
        plan = plan::Plan {
            repair_table: true,
            ..p
        };
    }
    // 2. Backup, then the deletions as one step.
    let mut backup = None;
    if plan.deleted() > 0 {
        let spin = crate::progress::Progress::spinner(progress, "repairing smtp_poplocks");
        let applied = repair::apply(
            &mut s.conn,
            &s.creds,
            &insp.schema,
            &plan,
            &settings.backup_dir,
            notify,
        );
        drop(spin);
        let a = applied.map_err(|e| {
            let also = if repaired {
                " (REPAIR TABLE had already completed)"
            } else {
                ""
            };
            s.fail(format!("{}{also}", e.0))
        })?;
        log.push(format!(
            "deleted {} row(s){} ({})",
            a.deleted,
            if a.reinserted > 0 {
                format!(
                    ", keeping one whole copy of {} duplicated value(s)",
                    a.reinserted
                )
            } else {
                String::new()
            },
            a.method
        ));
        backup = Some(a.backup);
    }
    repair::timing("apply", t0, notify);
    // 3. Check again and report what is left.
    let after = inspect_db(s, false, progress).map_err(|e| {
        s.fail(format!(
            "the repair was applied, but the re-check failed: {}",
            e.0
        ))
    })?;
    let out = if settings.json {
        output::repair_json(
            &s.creds,
            &after.findings,
            &plan,
            !plan.is_empty(),
            backup.as_deref(),
        )
    } else {
        output::applied_text(
            &s.creds,
            &plan,
            &log,
            backup.as_deref(),
            &after,
            settings.color,
        )
    };
    let fails = after
        .findings
        .iter()
        .any(|f| f.severity >= Severity::Warning);
    Ok(finish(
        s,
        out,
        if fails {
            Status::Findings
        } else {
            Status::Clean
        },
    ))
}
