//! Rendering check and repair results: text (the findings through crate::report::text),
//! JSON, and the Nagios plugin format.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use super::credentials::Credentials;
use super::inspect::Inspection;
use super::model::TABLE;
use super::plan::{self, Plan};
use crate::finding::{Finding, Severity};
use crate::report::{self, Report};

fn counts(findings: &[Finding]) -> (usize, usize, usize) {
    let c = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    (c(Severity::Error), c(Severity::Warning), c(Severity::Info))
}

fn plural(n: u64, w: &str) -> String {
    format!("{n} {w}{}", if n == 1 { "" } else { "s" })
}

fn findings_text(out: &mut String, findings: &[Finding], color: bool) {
    for (i, f) in findings.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        report::text::finding(out, f, None, color);
    }
}

fn summary(creds: &Credentials, insp: &Inspection) -> String {
    let (e, w, i) = counts(&insp.findings);
    let s = &insp.stats;
    let table = format!(
        "{}.{TABLE}: {} ({} white-list, {} POP lock){}{}",
        creds.db,
        plural(s.rows, "row"),
        s.whitelist,
        s.locks,
        insp.schema
            .engine
            .as_deref()
            .map(|e| format!(", {e}"))
            .unwrap_or_default(),
        if insp.schema.exists {
            format!(", {}", insp.schema.generation())
        } else {
            String::new()
        }
    );
    if insp.findings.is_empty() {
        format!("No problems found in {table}.")
    } else {
        format!(
            "{}, {}, {} info in {table}.",
            plural(e as u64, "error"),
            plural(w as u64, "warning"),
            i
        )
    }
}

pub fn check_text(creds: &Credentials, insp: &Inspection, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {} (credentials from {})",
        creds.endpoint, creds.source
    );
    findings_text(&mut out, &insp.findings, color);
    if !insp.findings.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{}", summary(creds, insp));
    out
}

pub fn check_json(creds: &Credentials, insp: &Inspection) -> String {
    let rep = Report {
        findings: insp.findings.clone(),
        files: 0,
    };
    let mut v = report::json::value(&rep);
    v["database"] = json!({
        "endpoint": creds.endpoint,
        "engine": insp.schema.engine,
        "table": format!("{}.{TABLE}", creds.db),
        "rows": insp.stats,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// The Nagios status line (report/nagios.rs) with the table's counts as perfdata, and the
/// plugin state (0 OK, 1 WARNING, 2 CRITICAL).
pub fn nagios(creds: &Credentials, insp: &Inspection) -> (String, u8) {
    let rep = Report {
        findings: insp.findings.clone(),
        files: 0,
    };
    let (_, code) = report::nagios::status(&rep);
    let s = &insp.stats;
    let ok = format!("{}.{TABLE} healthy, {}", creds.db, plural(s.rows, "row"));
    let perf = format!(
        " rows={} whitelist={} poplocks={} expired={} invalid={} future={} duplicates={} \
         open_relay={}",
        s.rows, s.whitelist, s.locks, s.expired, s.invalid, s.future, s.duplicates, s.open_relay
    );
    (
        report::nagios::render_with(&rep, &ok, &perf),
        code.clamp(0, 3) as u8,
    )
}

fn op_json(db: &str, plan: &Plan) -> Vec<serde_json::Value> {
    let mut ops = Vec::new();
    if plan.repair_table {
        ops.push(json!({
            "kind": "repair_table",
            "reason": "table-damaged",
            "rows": [],
            "sql": plan::repair_sql(db),
        }));
    }
    for op in &plan.deletes {
        let rows: Vec<_> = op.rows().map(|r| r.json()).collect();
        ops.push(json!({
            "kind": "delete",
            "reason": op.reason.key(),
            "count": op.deleted(),
            "rows": rows,
            "sql": plan::op_sql(db, op, None, plan),
        }));
    }
    ops
}

pub fn repair_json(
    creds: &Credentials,
    findings: &[Finding],
    plan: &Plan,
    applied: bool,
    backup: Option<&Path>,
) -> String {
    let v = json!({
        "version": 1,
        "findings": findings,
        "operations": op_json(&creds.db, plan),
        "applied": applied,
        "backup": backup.map(|p| p.display().to_string()),
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

const TEXT_DIFF_GROUPS: usize = 200;
const TEXT_SQL_GROUPS: usize = 20;

fn plan_text(out: &mut String, creds: &Credentials, plan: &Plan) {
    let mut n = 0;
    if plan.repair_table {
        n += 1;
        let _ = writeln!(
            out,
            "{n}. REPAIR TABLE {}.{TABLE} (CHECK TABLE found damage)",
            creds.db
        );
    }
    for op in &plan.deletes {
        n += 1;
        let _ = writeln!(
            out,
            "{n}. delete {}: {}",
            plural(op.deleted(), "row"),
            op.reason.title()
        );
    }
    if plan.rows_unknown {
        let _ = writeln!(
            out,
            "   (the rows could not be read before the repair; deletions are planned again after it)"
        );
    }
    if !plan.deletes.is_empty() {
        out.push('\n');
        out.push_str(&plan::diff(&creds.db, plan, TEXT_DIFF_GROUPS));
    }
    out.push_str("\nSQL:\n");
    if plan.repair_table {
        out.push_str(&plan::repair_sql(&creds.db));
    }
    for op in &plan.deletes {
        let _ = writeln!(out, "-- {}", op.reason.title());
        out.push_str(&plan::op_sql(&creds.db, op, Some(TEXT_SQL_GROUPS), plan));
    }
}

pub fn repair_text(
    creds: &Credentials,
    insp: &Inspection,
    plan: &Plan,
    settings: &super::RepairSettings,
) -> String {
    let color = settings.color;
    // The repair report starts with exactly what `plesk check` prints.
    let mut out = check_text(creds, insp, color);
    out.push('\n');
    if plan.is_empty() {
        let _ = writeln!(out, "Nothing to repair in {}.{TABLE}.", creds.db);
        if !settings.include_whitelist && insp.stats.whitelist > 0 {
            let _ = writeln!(
                out,
                "White-list rows (lock_time NULL) are left alone; --include-whitelist also \
                 removes invalid, duplicate and every-address ones."
            );
        }
        return out;
    }
    let _ = writeln!(out, "Repair plan (dry run, nothing written):");
    plan_text(&mut out, creds, plan);
    let method = if insp.schema.transactional() {
        "one transaction"
    } else {
        "rebuilding the table under a lock and swapping it in with one RENAME TABLE"
    };
    let _ = writeln!(
        out,
        "\nWith --apply: the deleted rows are first saved whole, every column, as INSERT \
         statements in {}, then the change is made all-or-nothing ({method}).",
        settings.backup_dir.display()
    );
    out
}

pub fn applied_text(
    creds: &Credentials,
    plan: &Plan,
    log: &[String],
    backup: Option<&Path>,
    after: &Inspection,
    color: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {} (credentials from {})",
        creds.endpoint, creds.source
    );
    if plan.is_empty() {
        let _ = writeln!(out, "Nothing to repair in {}.{TABLE}.", creds.db);
    } else {
        let _ = writeln!(out, "Applied:");
        plan_text(&mut out, creds, plan);
        out.push('\n');
        for l in log {
            let _ = writeln!(out, "done: {l}");
        }
        if let Some(b) = backup {
            let _ = writeln!(
                out,
                "backup: {} (restore: mariadb {} < {})",
                b.display(),
                creds.db,
                b.display()
            );
        }
    }
    let _ = writeln!(out, "\nAfter the repair:");
    findings_text(&mut out, &after.findings, color);
    if !after.findings.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{}", summary(creds, after));
    if !plan.is_empty() {
        let _ = writeln!(
            out,
            "\nNext: run `plesk repair mail -y` so Plesk rebuilds the mail server configuration \
             from the repaired table."
        );
    }
    out
}
