//! One inspection: model.rs reads, checks.rs judges. The rows stream from the scan into
//! the row checks (and, for a repair plan, into a vector).

use std::collections::HashSet;

use mysql::Conn;

use super::checks::{self, Fault, Minutes, RowChecker, SettingsVerdict, Stats};
use super::connect::{self, DbError};
use super::credentials::Credentials;
use super::model::{self, CheckTable, Damage, Schema, NEW_TABLE, OLD_TABLE, TABLE};
use super::values::RawRow;
use crate::finding::Finding;

/// Everything one inspection learnt.
pub struct Inspection {
    pub findings: Vec<Finding>,
    pub stats: Stats,
    pub schema: Schema,
    pub settings: SettingsVerdict,
    pub damage: Vec<Damage>,
    /// Server time (NOW()) as naive seconds.
    pub now: i64,
    /// The rows a repair plan needs, when the caller asked for them: every faulty and
    /// white-list row, the valid POP locks whose (address, mask, node) occurs more than once,
    /// and up to [`EXPIRED_SAMPLE`] expired locks (the rest are deleted by predicate and only
    /// counted), so a million-row table is never held in memory.
    pub rows: Option<Vec<RawRow>>,
    /// Expired locks not in `rows`.
    pub expired_unlisted: u64,
    /// The scan could not read the table (damage); row checks incomplete.
    pub scan_failed: bool,
}

impl Inspection {
    pub fn minutes(&self) -> &Minutes {
        &self.settings.minutes
    }
}

/// Expired POP locks listed by value in a repair plan (the diff and JSON show them).
pub const EXPIRED_SAMPLE: usize = 1000;

pub struct Options {
    pub collect_rows: bool,
    /// Show a spinner with the row count on a terminal's stderr (text output only).
    pub progress: bool,
}

/// Run every check. Database errors that stop the inspection are DbError (exit 2); damage
/// to the table itself is a finding.
pub fn inspect(
    conn: &mut Conn,
    creds: &Credentials,
    opts: &Options,
) -> Result<Inspection, DbError> {
    let db = creds.db.clone();
    let mut findings = Vec::new();
    let dberr = |during: &'static str| {
        move |e: mysql::Error| DbError(connect::describe_during(creds, &e, during))
    };
    let now = model::server_now(conn).map_err(dberr("reading the server time"))?;
    let raw = model::read_settings(conn, &db).map_err(dberr("reading the mail settings"))?;
    let settings = checks::settings(&raw, &db, &mut findings);
    let mut schema = model::read_schema(conn, creds, &db, TABLE)?;
    for leftover in [NEW_TABLE, OLD_TABLE] {
        if model::read_schema(conn, creds, &db, leftover)?.exists {
            findings.push(checks::leftover(&db, leftover));
        }
    }
    let mut insp = Inspection {
        findings: Vec::new(),
        stats: Stats::default(),
        schema: Schema::default(),
        settings,
        damage: Vec::new(),
        now,
        rows: None,
        expired_unlisted: 0,
        scan_failed: false,
    };
    if !schema.exists {
        findings.push(checks::missing_table(&db));
        insp.findings = sorted(findings);
        return Ok(insp);
    }
    checks::schema(&mut schema, &db, &mut findings);
    let has_cols = ["ip_address", "ip_mask", "lock_time"]
        .iter()
        .all(|n| schema.column(n).is_some());
    let mut rows = opts.collect_rows.then(Vec::new);
    let mut sampled = 0usize;
    let minutes = insp.settings.minutes.clone();
    let mut rc = RowChecker::new(now, &minutes);
    // Read the rows first: opening a damaged table fails with the code that classifies it.
    if has_cols {
        let spin = crate::progress::Progress::spinner(opts.progress, "scanning smtp_poplocks");
        let mut n = 0u64;
        let scanned = model::scan(conn, &db, &schema, |raw| {
            let fault = rc.row(&raw);
            n += 1;
            if n % 65_536 == 0 && spin.is_visible() {
                spin.set_message(&format!("scanning smtp_poplocks: {n} rows"));
            }
            let Some(r) = rows.as_mut() else { return };
            let keep = match fault {
                Some(Fault::Expired) => {
                    sampled += 1;
                    sampled <= EXPIRED_SAMPLE
                }
                Some(_) => true,
                // Valid locks: only duplicated ones matter, found by a second pass.
                None => raw.is_whitelist(),
            };
            if keep {
                r.push(raw);
            }
        });
        if let Err(e) = scanned {
            let Some((what, repairable)) = model::damage_of(&e) else {
                return Err(dberr("the scan of smtp_poplocks")(e));
            };
            insp.scan_failed = true;
            insp.damage.push(Damage {
                what,
                repairable: repairable && schema.repairable_engine(),
            });
        }
    }
    // When reading already failed with a damage code, CHECK TABLE is skipped: on MyISAM it
    // would rewrite the table's state (clear or set the crashed mark), and the check is
    // meant to change nothing; the code is the classification.
    let check = if insp.scan_failed {
        CheckTable::default()
    } else {
        match model::check_table(conn, &db) {
            Ok(c) => c,
            Err(e) => match model::damage_of(&e) {
                Some((what, repairable)) => {
                    insp.damage.push(Damage {
                        what,
                        repairable: repairable && schema.repairable_engine(),
                    });
                    CheckTable::default()
                }
                None => return Err(dberr("CHECK TABLE")(e)),
            },
        }
    };
    if check.failed && insp.damage.is_empty() {
        insp.damage.push(Damage {
            what: "CHECK TABLE reports the table as corrupt".into(),
            repairable: schema.repairable_engine(),
        });
    }
    checks::health(&db, &insp.damage, &check, insp.scan_failed, &mut findings);
    let mut duplicated = HashSet::new();
    let want_dups = rows.is_some().then_some(&mut duplicated);
    insp.stats = rc.finish(&db, &schema, &insp.settings, &mut findings, want_dups);
    insp.expired_unlisted = sampled.saturating_sub(EXPIRED_SAMPLE) as u64;
    if let (Some(r), false) = (rows.as_mut(), duplicated.is_empty()) {
        collect_duplicates(conn, creds, &schema, now, &minutes, &duplicated, r)?;
    }
    insp.findings = sorted(findings);
    insp.schema = schema;
    insp.rows = rows;
    Ok(insp)
}

/// The second pass of a repair plan: the valid POP locks whose key occurs more than once.
fn collect_duplicates(
    conn: &mut Conn,
    creds: &Credentials,
    schema: &Schema,
    now: i64,
    minutes: &Minutes,
    duplicated: &HashSet<u64>,
    rows: &mut Vec<RawRow>,
) -> Result<(), DbError> {
    model::scan(conn, &creds.db, schema, |raw| {
        if !raw.is_whitelist()
            && duplicated.contains(&checks::dup_key(&raw))
            && checks::fault(&raw, now, minutes.for_row(&raw)).is_none()
        {
            rows.push(raw);
        }
    })
    .map_err(|e| {
        DbError(connect::describe_during(
            creds,
            &e,
            "the scan of smtp_poplocks",
        ))
    })
}

/// Worst first, then by code: the Nagios line names the first.
fn sorted(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
    });
    findings
}
