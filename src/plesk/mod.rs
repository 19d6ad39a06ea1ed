//! Plesk: the smtp_poplocks table and mail relay settings in the psa database.
//!
//! `check` inspects (read-only); `repair` plans, shows the plan as a diff plus SQL, and with
//! `--apply` backs up and changes the table all-or-nothing (see repair.rs).

pub mod connect;
pub mod credentials;
pub mod inspect;
pub mod output;
pub mod plan;
pub mod repair;
pub mod values;

use crate::app::{fail_on, EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use crate::cli::{PleskCheckArgs, PleskFormat, PleskRepairArgs};
use crate::finding::Severity;

use connect::DbError;
use credentials::Credentials;
use inspect::Inspection;

/// Nagios plugin API: 3 is UNKNOWN (the check itself could not run).
pub const NAGIOS_UNKNOWN: i32 = 3;

fn open(db: &crate::cli::DbArgs) -> Result<(Credentials, mysql::Conn), String> {
    let mut warnings = Vec::new();
    let creds = credentials::resolve(db, &mut warnings);
    for w in warnings {
        eprintln!("relaydoctor: warning: {w}");
    }
    let creds = creds.map_err(|e| e.0)?;
    let conn = connect::connect(&creds).map_err(|e| e.0)?;
    Ok((creds, conn))
}

fn inspect_db(
    creds: &Credentials,
    conn: &mut mysql::Conn,
    collect: bool,
    progress: bool,
) -> Result<Inspection, DbError> {
    let mut insp = inspect::inspect(
        conn,
        creds,
        &inspect::Options {
            collect_rows: collect,
            progress,
        },
    )?;
    insp.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
    });
    Ok(insp)
}

/// `relaydoctor plesk check`; returns the process exit code.
pub fn check(args: &PleskCheckArgs) -> i32 {
    let nagios = args.format == PleskFormat::Nagios;
    let fail = |msg: String| -> i32 {
        if nagios {
            output::emit(&output::nagios_unknown(&msg));
            NAGIOS_UNKNOWN
        } else {
            eprintln!("relaydoctor: {msg}");
            EXIT_ERROR
        }
    };
    let (creds, mut conn) = match open(&args.db) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let progress = args.format == PleskFormat::Text && !args.quiet;
    let insp = match inspect_db(&creds, &mut conn, false, progress) {
        Ok(i) => i,
        Err(e) => return fail(e.0),
    };
    let threshold = fail_on(args.fail_on);
    let fails = insp.findings.iter().any(|f| f.severity >= threshold);
    match args.format {
        PleskFormat::Nagios => {
            let (text, code) = output::nagios(&creds, &insp);
            if !(args.quiet && code == 0) {
                output::emit(&text);
            }
            code
        }
        PleskFormat::Json => {
            if !args.quiet || fails {
                output::emit(&output::check_json(&creds, &insp));
            }
            code_for(fails)
        }
        PleskFormat::Text => {
            if !args.quiet || fails {
                let color = crate::args::color(args.color.color);
                output::emit(&output::check_text(&creds, &insp, color));
            }
            code_for(fails)
        }
    }
}

fn code_for(fails: bool) -> i32 {
    if fails {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
}

/// `relaydoctor plesk repair`; returns the process exit code.
pub fn repair(args: &PleskRepairArgs) -> i32 {
    let json = args.format == crate::cli::Format::Json;
    let color = crate::args::color(args.color.color);
    let (creds, mut conn) = match open(&args.db) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("relaydoctor: {e}");
            return EXIT_ERROR;
        }
    };
    let t0 = std::time::Instant::now();
    let progress = !json;
    let mut insp = match inspect_db(&creds, &mut conn, true, progress) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("relaydoctor: {}", e.0);
            return EXIT_ERROR;
        }
    };
    if !insp.schema.exists {
        eprintln!(
            "relaydoctor: {}.{} does not exist; nothing to repair (`plesk repair db -y` recreates it)",
            creds.db,
            inspect::TABLE
        );
        return EXIT_ERROR;
    }
    repair::timing("inspect", t0);
    let mut plan = plan::plan(&mut insp, args.include_whitelist);
    repair::timing("plan", t0);
    if !args.apply {
        let out = if json {
            output::repair_json(&creds, &insp.findings, &plan, false, None)
        } else {
            output::repair_text(&creds, &insp, &plan, args, color)
        };
        output::emit(&out);
        let fails = insp
            .findings
            .iter()
            .any(|f| f.severity >= Severity::Warning);
        return code_for(fails || !plan.is_empty());
    }
    if !plan.is_empty() && !insp.schema.known {
        eprintln!(
            "relaydoctor: {}.{} does not match a known schema variant; repair refused (see the PL002/PL003 findings of `relaydoctor plesk check`)",
            creds.db,
            inspect::TABLE
        );
        return EXIT_ERROR;
    }
    let mut log = Vec::new();
    // 1. REPAIR TABLE first: until the files are sound the rows cannot be read reliably.
    let mut repaired = false;
    if plan.repair_table {
        match repair::repair_table(&mut conn, &creds) {
            Ok(msg) => {
                log.push(msg);
                repaired = true;
            }
            Err(e) => {
                eprintln!("relaydoctor: {}", e.0);
                return EXIT_ERROR;
            }
        }
        insp = match inspect_db(&creds, &mut conn, true, progress) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("relaydoctor: {}", e.0);
                return EXIT_ERROR;
            }
        };
        let p = plan::plan(&mut insp, args.include_whitelist);
        plan = plan::Plan {
            repair_table: true,
            ..p
        };
    }
    // 2. Backup, then the deletions as one step.
    let mut backup = None;
    if plan.deleted() > 0 {
        match repair::write_backup(&args.backup_dir, &creds.db, &plan) {
            Ok(p) => {
                // Printed before anything changes, so it is known even if the apply dies.
                eprintln!(
                    "relaydoctor: backup of the {} row(s) to delete: {}",
                    plan.deleted(),
                    p.display()
                );
                backup = Some(p);
            }
            Err(e) => {
                eprintln!("relaydoctor: {e}; nothing was changed");
                return EXIT_ERROR;
            }
        }
        repair::timing("backup", t0);
        let spin = crate::progress::Progress::spinner(progress, "repairing smtp_poplocks");
        let applied = repair::apply(&mut conn, &creds, &insp.schema, &plan);
        drop(spin);
        match applied {
            Ok(a) => log.push(format!(
                "deleted {} row(s){} ({})",
                a.deleted,
                if a.reinserted > 0 {
                    format!(
                        ", of which {} duplicate value(s) were kept once",
                        a.reinserted
                    )
                } else {
                    String::new()
                },
                a.method
            )),
            Err(e) => {
                eprintln!("relaydoctor: {}", e.0);
                if repaired {
                    eprintln!("relaydoctor: (REPAIR TABLE had already completed)");
                }
                return EXIT_ERROR;
            }
        }
    }
    repair::timing("apply", t0);
    // 3. Check again and report what is left.
    let after = match inspect_db(&creds, &mut conn, false, progress) {
        Ok(i) => i,
        Err(e) => {
            eprintln!(
                "relaydoctor: the repair was applied, but the re-check failed: {}",
                e.0
            );
            return EXIT_ERROR;
        }
    };
    let out = if json {
        output::repair_json(
            &creds,
            &after.findings,
            &plan,
            !plan.is_empty(),
            backup.as_deref(),
        )
    } else {
        output::applied_text(&creds, &plan, &log, backup.as_deref(), &after, args, color)
    };
    output::emit(&out);
    let fails = after
        .findings
        .iter()
        .any(|f| f.severity >= Severity::Warning);
    code_for(fails)
}
