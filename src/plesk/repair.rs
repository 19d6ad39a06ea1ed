//! Applying a repair plan: backup first, then one all-or-nothing change.
//!
//! * InnoDB: one transaction (autocommit off) under `LOCK TABLES ... WRITE`, so other
//!   sessions' inserts wait on the metadata lock until COMMIT instead of deadlocking with
//!   row locks; the row counts are verified against the plan, the rows to delete are read
//!   whole into the backup file, the planned row values are deleted by value (a join on a
//!   temporary table; the table has no key to delete by), the one kept copy of each
//!   duplicated value is inserted back whole (every column, as read), and the transaction
//!   commits or rolls back as a whole (a killed server rolls it back on restart). Rows are
//!   never rebuilt from the three columns relaydoctor judges, and the rows inserted back
//!   carry the serviceNodeId they had, so the foreign key to ServiceNodes holds.
//! * MyISAM/Aria (no transactions, and no enforced foreign keys): the kept rows are copied
//!   whole (`SELECT p.*`) into a new table while
//!   `LOCK TABLES ... WRITE` holds other sessions off, and one `RENAME TABLE` swaps the new
//!   table in. (`LOCK TABLES ... READ` is not enough: it takes only a shared-read metadata
//!   lock, so a writer would pass the metadata lock, wait on the old table's table-level
//!   lock, and insert into the old table after the swap — measured by
//!   tests/plesk_repair.rs concurrent_writer_loses_nothing.) MariaDB forbids RENAME TABLE
//!   under LOCK TABLES, so the RENAME is issued from a second connection and queued behind
//!   the lock *before* the lock is released: a pending exclusive metadata lock is granted
//!   ahead of the writers that were waiting (MariaDB's MDL priority rules, sql/mdl.cc), so
//!   their inserts run after the swap, against the new table, and are neither lost nor
//!   duplicated. RENAME TABLE is invisible to other sessions on every version, but atomic
//!   across crashes only since MariaDB 10.6.1 (atomic DDL, MDEV-23842): before that a
//!   crash between its two renames can leave smtp_poplocks missing (PL041 then says so).
//!
//! Expired locks are deleted by the predicate `lock_time < cutoff` (the scan's server time
//! minus poplock_time: exactly the rows the plan lists as expired), everything else by value.
//! Both paths re-verify, under the lock, that every planned row value still has exactly the
//! number of copies seen by the scan and that exactly the planned rows are older than the
//! cutoff; if another session changed them the step aborts with nothing changed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::Conn;

use super::backup::{row_values, Backup};
use super::connect::{self, ident, DbError};
use super::credentials::Credentials;
use super::model::{self, Schema, NEW_TABLE, OLD_TABLE, TABLE};
use super::plan::{expired_predicate, Plan};
use super::planload::{load_plan, match_sql, DEL};
use super::values::RawRow;
use crate::outcome::Notify;

/// Test-only hook (documented in docs/plesk.md): seconds to sleep right before the commit
/// point (COMMIT on InnoDB, the RENAME on MyISAM/Aria), after saying
/// "test pause before commit" on stderr, so the fault tests can kill the server mid-apply.
pub const TEST_PAUSE_ENV: &str = "RELAYDOCTOR_TEST_PAUSE_BEFORE_COMMIT";
/// A whole row as read: every column's value in table order.
type WholeRow = Vec<Option<Vec<u8>>>;

/// Kept rows inserted back per statement.
const KEEP_BATCH: usize = 500;

fn test_pause(notify: Notify) {
    if let Some(secs) = std::env::var(TEST_PAUSE_ENV)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        notify("test pause before commit");
        std::thread::sleep(Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
    }
}

/// Phase timings when RELAYDOCTOR_TIMING is set (for the bench notes).
pub fn timing(label: &str, since: std::time::Instant, notify: Notify) {
    if std::env::var_os("RELAYDOCTOR_TIMING").is_some() {
        notify(&format!(
            "timing: {label}: {:.2}s",
            since.elapsed().as_secs_f64()
        ));
    }
}

pub struct Applied {
    pub deleted: u64,
    pub reinserted: u64,
    pub method: &'static str,
    pub backup: PathBuf,
}

fn q(db: &str, t: &str) -> String {
    format!("{}.{}", ident(db), ident(t))
}

/// Every planned value still has exactly the copies the scan saw: the table is read again
/// under the lock (streamed) and counted against the plan in memory. The statements that
/// follow match the same values, so they delete exactly the planned rows.
fn verify(
    conn: &mut Conn,
    creds: &Credentials,
    schema: &Schema,
    table: &str,
    plan: &Plan,
) -> Result<(), DbError> {
    let err = |e: mysql::Error| DbError(connect::describe(creds, &e));
    let mut want: HashMap<&RawRow, (u64, u64)> = HashMap::new();
    for g in plan.by_value() {
        want.insert(&g.row, (g.count, 0));
    }
    let mut expired = 0u64;
    let mut result = conn
        .query_iter(format!(
            "SELECT {} FROM {table} p",
            model::row_select(schema, "p.")
        ))
        .map_err(err)?;
    let has_node = schema.has_node();
    if let Some(set) = result.iter() {
        for row in set {
            let raw = model::take_row(&mut row.map_err(err)?, has_node);
            if let Some(e) = want.get_mut(&raw) {
                e.1 += 1;
            } else if let (Some(cut), Some(t)) = (
                plan.expired_before.get(&raw.node_id()),
                raw.lock.as_deref().and_then(super::values::parse_datetime),
            ) {
                // Matched by the expiry predicate without being planned: must not exist.
                if t < *cut {
                    expired += 1;
                }
            }
        }
    }
    drop(result);
    let changed = want.values().filter(|(a, b)| a != b).count();
    if changed > 0 || expired != plan.expired_rows() {
        return Err(DbError(format!(
            "the table changed since it was read ({changed} of {} planned row values no longer \
             have the same number of copies; {expired} rows are older than the expiry cutoff, \
             {} were planned); nothing was changed, run the repair again",
            want.len(),
            plan.expired_rows()
        )));
    }
    Ok(())
}

/// Read the rows the plan removes, whole, under the lock: each goes to the backup file,
/// except the one copy of each duplicated value that stays, which is returned to be
/// inserted back as it was. The backup is complete and fsynced when this returns.
fn backup_and_keep(
    conn: &mut Conn,
    creds: &Credentials,
    schema: &Schema,
    table: &str,
    plan: &Plan,
    mut backup: Backup,
) -> Result<(PathBuf, Vec<WholeRow>), DbError> {
    let err = |e: mysql::Error| DbError(connect::describe(creds, &e));
    let ncols = schema.columns.len();
    let sql = format!(
        "SELECT {}, d.id, d.keep FROM {table} p LEFT JOIN {DEL} d ON {} \
         WHERE d.id IS NOT NULL OR {}",
        schema.column_list("p."),
        match_sql(schema.has_node()),
        expired_predicate(plan, "p.")
    );
    let mut kept: Vec<WholeRow> = Vec::new();
    let mut kept_groups: BTreeMap<u64, ()> = BTreeMap::new();
    let mut result = conn.query_iter(sql).map_err(err)?;
    if let Some(set) = result.iter() {
        for row in set {
            let mut row = row.map_err(err)?;
            let values: WholeRow = (0..ncols).map(|i| model::text(row.take(i))).collect();
            let group = model::text(row.take(ncols)).and_then(|b| super::values::parse_uint(&b));
            let keep = model::text(row.take(ncols + 1)).and_then(|b| super::values::parse_uint(&b));
            if let (Some(g), Some(k)) = (group, keep) {
                if k > 0 && kept_groups.insert(g, ()).is_none() {
                    kept.push(values);
                    continue;
                }
            }
            backup.row(&values).map_err(DbError)?;
        }
    }
    drop(result);
    if backup.rows != plan.deleted() {
        return Err(DbError(format!(
            "the backup holds {} rows, the plan deletes {}; nothing was changed",
            backup.rows,
            plan.deleted()
        )));
    }
    let path = backup.finish().map_err(DbError)?;
    Ok((path, kept))
}

/// Insert the kept copies back into `table`, whole.
fn insert_kept(
    conn: &mut Conn,
    creds: &Credentials,
    schema: &Schema,
    table: &str,
    kept: &[WholeRow],
) -> Result<(), DbError> {
    for chunk in kept.chunks(KEEP_BATCH) {
        let values: Vec<String> = chunk.iter().map(|v| row_values(v)).collect();
        conn.query_drop(format!(
            "INSERT INTO {table} ({}) VALUES {}",
            schema.column_list(""),
            values.join(", ")
        ))
        .map_err(|e| DbError(connect::describe(creds, &e)))?;
    }
    Ok(())
}

/// Back up and delete, all-or-nothing. `notify` hears the backup path before anything
/// changes, so it is known even if the run dies.
pub fn apply(
    conn: &mut Conn,
    creds: &Credentials,
    schema: &Schema,
    plan: &Plan,
    backup_dir: &Path,
    notify: Notify,
) -> Result<Applied, DbError> {
    let t0 = std::time::Instant::now();
    let backup = Backup::create(backup_dir, &creds.db, schema)
        .map_err(|e| DbError(format!("{e}; nothing was changed")))?;
    load_plan(conn, creds, plan, notify)?;
    timing("load plan into a temporary table", t0, notify);
    let job = Job {
        creds,
        schema,
        plan,
        notify,
        t0,
    };
    if schema.transactional() {
        apply_transaction(conn, job, backup)
    } else {
        apply_swap(conn, job, backup)
    }
}

/// What either way of applying the plan works from.
struct Job<'a> {
    creds: &'a Credentials,
    schema: &'a Schema,
    plan: &'a Plan,
    notify: Notify<'a>,
    t0: std::time::Instant,
}

fn announce(path: &Path, plan: &Plan, notify: Notify) {
    notify(&format!(
        "backup of the {} row(s) to delete: {}",
        plan.deleted(),
        path.display()
    ));
}

/// InnoDB: LOCK TABLES ... WRITE makes other sessions' writers wait on the metadata lock
/// before they touch InnoDB (no row-lock deadlocks with them); autocommit=0 keeps the
/// change one transaction until COMMIT (the pattern the MariaDB manual gives for LOCK
/// TABLES with transactional tables).
fn apply_transaction(conn: &mut Conn, job: Job, backup: Backup) -> Result<Applied, DbError> {
    let (creds, schema, plan, notify, t0) = (job.creds, job.schema, job.plan, job.notify, job.t0);
    let err = |e: mysql::Error| DbError(connect::describe(creds, &e));
    let t = q(&creds.db, TABLE);
    let removed_total: u64 = plan.by_value().map(|g| g.count).sum::<u64>() + plan.expired_rows();
    conn.query_drop("SET autocommit = 0").map_err(err)?;
    let mut path = PathBuf::new();
    let mut reinserted = 0;
    let result = (|| -> Result<(), DbError> {
        conn.query_drop(format!("LOCK TABLES {t} WRITE, {t} AS p WRITE"))
            .map_err(err)?;
        verify(conn, creds, schema, &t, plan)?;
        timing("lock and verify", t0, notify);
        let (p, kept) = backup_and_keep(conn, creds, schema, &t, plan, backup)?;
        announce(&p, plan, notify);
        path = p;
        timing("backup", t0, notify);
        conn.query_drop(format!(
            "DELETE p FROM {t} p LEFT JOIN {DEL} d ON {} WHERE d.id IS NOT NULL OR {}",
            match_sql(schema.has_node()),
            expired_predicate(plan, "p.")
        ))
        .map_err(err)?;
        let gone = conn.affected_rows();
        if gone != removed_total {
            return Err(DbError(format!(
                "deleting matched {gone} rows, the plan expected {removed_total}; rolled back"
            )));
        }
        insert_kept(conn, creds, schema, &t, &kept)?;
        reinserted = kept.len() as u64;
        timing("delete", t0, notify);
        test_pause(notify);
        conn.query_drop("COMMIT").map_err(err)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = conn.query_drop("ROLLBACK");
        let _ = conn.query_drop("UNLOCK TABLES");
        let _ = conn.query_drop("SET autocommit = 1");
        return Err(e);
    }
    let _ = conn.query_drop("UNLOCK TABLES");
    let _ = conn.query_drop("SET autocommit = 1");
    let _ = conn.query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {DEL}"));
    Ok(Applied {
        deleted: plan.deleted(),
        reinserted,
        method: "one InnoDB transaction under LOCK TABLES",
        backup: path,
    })
}

/// MyISAM / Aria: build the kept rows into a new table and swap it in.
fn apply_swap(conn: &mut Conn, job: Job, backup: Backup) -> Result<Applied, DbError> {
    let (creds, schema, plan, notify, t0) = (job.creds, job.schema, job.plan, job.notify, job.t0);
    let err = |e: mysql::Error| DbError(connect::describe(creds, &e));
    let db = &creds.db;
    let (t, new, old) = (q(db, TABLE), q(db, NEW_TABLE), q(db, OLD_TABLE));
    let deleted = plan.deleted();
    conn.query_drop(format!("DROP TABLE IF EXISTS {new}, {old}"))
        .map_err(err)?;
    conn.query_drop(format!("CREATE TABLE {new} LIKE {t}"))
        .map_err(err)?;
    // The connection that will run the RENAME, opened before anything is locked.
    let renamer = connect::connect(creds)?;
    let cleanup_new = |conn: &mut Conn| {
        let _ = conn.query_drop("UNLOCK TABLES");
        let _ = conn.query_drop(format!("DROP TABLE IF EXISTS {new}"));
    };
    conn.query_drop(format!("LOCK TABLES {t} AS p WRITE, {new} WRITE"))
        .map_err(err)?;
    let mut path = PathBuf::new();
    let mut reinserted = 0;
    let built = (|| -> Result<(), DbError> {
        verify(conn, creds, schema, &t, plan)?;
        timing("lock and verify", t0, notify);
        let (p, kept) = backup_and_keep(conn, creds, schema, &t, plan, backup)?;
        announce(&p, plan, notify);
        path = p;
        conn.query_drop(format!(
            "INSERT INTO {new} SELECT p.* FROM {t} p LEFT JOIN {DEL} d ON {} \
             WHERE d.id IS NULL AND NOT {}",
            match_sql(schema.has_node()),
            expired_predicate(plan, "p.")
        ))
        .map_err(err)?;
        insert_kept(conn, creds, schema, &new, &kept)?;
        reinserted = kept.len() as u64;
        let (before, after): (u64, u64) = conn
            .query_first(format!(
                "SELECT (SELECT COUNT(*) FROM {t} p), (SELECT COUNT(*) FROM {new})"
            ))
            .map_err(err)?
            .unwrap_or((0, 0));
        if before.saturating_sub(deleted) != after {
            return Err(DbError(format!(
                "the rebuilt table has {after} rows, expected {}; nothing was changed",
                before.saturating_sub(deleted)
            )));
        }
        Ok(())
    })();
    if let Err(e) = built {
        cleanup_new(conn);
        return Err(e);
    }
    timing("build", t0, notify);
    test_pause(notify);
    if let Err(e) = swap(conn, creds, renamer, &t, &new, &old, notify) {
        cleanup_new(conn);
        return Err(e);
    }
    let _ = conn.query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {DEL}"));
    Ok(Applied {
        deleted,
        reinserted,
        method: "rebuilt under LOCK TABLES and swapped in with one RENAME TABLE",
        backup: path,
    })
}

/// MariaDB forbids RENAME TABLE under LOCK TABLES, so the RENAME is issued from a second
/// connection and queued behind the lock *before* the lock is released (see the module
/// comment).
fn swap(
    conn: &mut Conn,
    creds: &Credentials,
    mut renamer: Conn,
    t: &str,
    new: &str,
    old: &str,
    notify: Notify,
) -> Result<(), DbError> {
    let renamer_id = renamer.connection_id();
    let rename_sql = format!("RENAME TABLE {t} TO {old}, {new} TO {t}");
    let (queued, joined) = std::thread::scope(|s| {
        let handle = s.spawn(move || {
            let _ = renamer.query_drop("SET SESSION lock_wait_timeout = 120");
            renamer.query_drop(rename_sql).map(|_| renamer)
        });
        // Release the lock only once the RENAME waits for it (queued ahead of writers).
        let mut queued = false;
        for _ in 0..24_000 {
            let state: Option<Option<String>> = conn
                .exec_first(
                    "SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = ?",
                    (renamer_id,),
                )
                .unwrap_or(None);
            if state.flatten().is_some_and(|s| s.contains("metadata lock")) {
                queued = true;
                break;
            }
            if handle.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = conn.query_drop("UNLOCK TABLES");
        (queued, handle.join())
    });
    match joined {
        Ok(Ok(mut renamer)) => {
            let _ = renamer.query_drop(format!("DROP TABLE IF EXISTS {old}"));
        }
        Ok(Err(e)) => {
            return Err(DbError(format!(
                "swapping in the repaired table failed ({}); the table is unchanged",
                connect::describe(creds, &e)
            )));
        }
        Err(_) => {
            return Err(DbError(
                "internal error while swapping tables; the table is unchanged".into(),
            ));
        }
    }
    if !queued {
        notify("note: the swap was not seen queued before the lock was released");
    }
    Ok(())
}

/// REPAIR TABLE for MyISAM/Aria damage; USE_FRM when the index header itself is unreadable
/// (MariaDB manual, REPAIR TABLE: "USE_FRM ... if the .MYI header is corrupted").
pub fn repair_table(conn: &mut Conn, creds: &Credentials) -> Result<String, DbError> {
    let t = q(&creds.db, TABLE);
    let mut last = String::new();
    for sql in [
        format!("REPAIR TABLE {t}"),
        format!("REPAIR TABLE {t} USE_FRM"),
    ] {
        let rows: Vec<(String, String, String, String)> = conn
            .query(&sql)
            .map_err(|e| DbError(connect::describe_during(creds, &e, "REPAIR TABLE")))?;
        let ok = rows
            .iter()
            .rev()
            .find(|r| r.2.eq_ignore_ascii_case("status"))
            .is_some_and(|r| r.3 == "OK");
        last = rows
            .iter()
            .map(|r| format!("{}: {}", r.2, r.3))
            .collect::<Vec<_>>()
            .join("; ");
        if ok {
            return Ok(format!("{sql}: {last}"));
        }
    }
    Err(DbError(format!("REPAIR TABLE failed: {last}")))
}
