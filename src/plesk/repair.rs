//! Applying a repair plan: backup first, then one all-or-nothing change.
//!
//! * InnoDB: one transaction (autocommit off) under `LOCK TABLES ... WRITE`, so other
//!   sessions' inserts wait on the metadata lock until COMMIT instead of deadlocking with
//!   row locks; the row counts are verified against the plan, the planned row values are
//!   deleted by value (a join on a temporary table; the table has no key to delete by), the
//!   kept copies of duplicates are inserted back, and the transaction commits or rolls back
//!   as a whole (a killed server rolls it back on restart).
//! * MyISAM/Aria (no transactions): the kept rows are built into a new table while
//!   `LOCK TABLES ... WRITE` holds other sessions off, and one `RENAME TABLE` swaps the new
//!   table in. (`LOCK TABLES ... READ` is not enough: it takes only a shared-read metadata
//!   lock, so a writer would pass the metadata lock, wait on the old table's table-level
//!   lock, and insert into the old table after the swap — measured by
//!   tests/plesk_repair.rs concurrent_writer_loses_nothing.) MariaDB forbids RENAME TABLE
//!   under LOCK TABLES, so the RENAME is issued from a second connection and queued behind
//!   the lock *before* the lock is released: a pending exclusive metadata lock is granted
//!   ahead of the writers that were waiting (MariaDB's MDL priority rules, sql/mdl.cc), so
//!   their inserts run after the swap, against the new table, and are neither lost nor
//!   duplicated. RENAME TABLE is atomic across crashes since MariaDB 10.6 (atomic DDL): a
//!   kill leaves either the old table or the new one, never a half-deleted table.
//!
//! Expired locks are deleted by the predicate `lock_time < cutoff` (the scan's server time
//! minus poplock_time: exactly the rows the plan lists as expired), everything else by value.
//! Both paths re-verify, under the lock, that every planned row value still has exactly the
//! number of copies seen by the scan and that exactly the planned rows are older than the
//! cutoff; if another session changed them the step aborts with nothing changed.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::Conn;

use super::connect::{self, ident, DbError};
use super::credentials::Credentials;
use super::inspect::{Schema, NEW_TABLE, OLD_TABLE, TABLE};
use super::plan::{insert_values, mask_literal, Plan};
use super::values::{sql_literal, RawRow};

/// Test-only hook (documented in docs/plesk.md): seconds to sleep right before the commit
/// point (COMMIT on InnoDB, the RENAME on MyISAM/Aria), after printing
/// "relaydoctor: test pause before commit" on stderr, so the fault tests can kill the
/// server mid-apply.
pub const TEST_PAUSE_ENV: &str = "RELAYDOCTOR_TEST_PAUSE_BEFORE_COMMIT";

const DEL: &str = "relaydoctor_delete";

fn test_pause() {
    if let Some(secs) = std::env::var(TEST_PAUSE_ENV)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        eprintln!("relaydoctor: test pause before commit");
        std::thread::sleep(Duration::from_secs_f64(secs.clamp(0.0, 3600.0)));
    }
}

fn now_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // `YYYY-MM-DD HH:MM:SS` (UTC) -> `YYYYMMDDTHHMMSSZ` for a file name.
    let t: String = super::values::format_datetime(secs)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .map(|c| if c == ' ' { 'T' } else { c })
        .collect();
    format!("{t}Z")
}

/// Write every row to be deleted as INSERT statements that restore them with the mysql
/// client (`mariadb psa < FILE`). The file is complete and fsynced before anything changes;
/// its last line is `-- end of backup` so a truncated file is recognisable.
pub fn write_backup(dir: &Path, db: &str, plan: &Plan) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create backup directory {}: {e}", dir.display()))?;
    let path = dir.join(format!(
        "{db}.{TABLE}-{}-{}.sql",
        now_stamp(),
        std::process::id()
    ));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("cannot create backup file {}: {e}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let werr = |e: std::io::Error| format!("cannot write backup file {}: {e}", path.display());
    writeln!(
        w,
        "-- relaydoctor backup: {} row(s) deleted from {db}.{TABLE}\n\
         -- restore with: mariadb {db} < {}\n\
         SET SESSION sql_mode = 'ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION';",
        plan.deleted(),
        path.display()
    )
    .map_err(werr)?;
    let t = ident(TABLE);
    let mut n = 0usize;
    for op in &plan.deletes {
        writeln!(w, "-- {}", op.reason.title()).map_err(werr)?;
        for row in op.rows() {
            if n % 500 == 0 {
                if n > 0 {
                    writeln!(w, ";").map_err(werr)?;
                }
                write!(
                    w,
                    "INSERT INTO {t} (ip_address, ip_mask, lock_time) VALUES\n  "
                )
                .map_err(werr)?;
            } else {
                write!(w, ",\n  ").map_err(werr)?;
            }
            write!(w, "{}", insert_values(row)).map_err(werr)?;
            n += 1;
        }
        if n > 0 {
            writeln!(w, ";").map_err(werr)?;
            n = 0;
        }
    }
    writeln!(w, "-- end of backup").map_err(werr)?;
    let file = w.into_inner().map_err(|e| werr(e.into_error()))?;
    file.sync_all().map_err(werr)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

pub struct Applied {
    pub deleted: u64,
    pub reinserted: u64,
    pub method: &'static str,
}

fn q(db: &str, t: &str) -> String {
    format!("{}.{}", ident(db), ident(t))
}

/// The planned row values, with the copy counts seen by the scan, in a temporary table of
/// this session (visible under LOCK TABLES without being locked).
fn load_plan(conn: &mut Conn, creds: &Credentials, plan: &Plan) -> Result<u64, DbError> {
    let err = |e: mysql::Error| DbError(connect::describe(creds, &e));
    conn.query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {DEL}"))
        .map_err(err)?;
    // A MEMORY table with a hash index on the address: 1,000,000 probes take a second or
    // two where a B-tree on a MyISAM temporary table took ten times as long. Fixed-width
    // rows, so the address column is exactly as wide as the longest planned address.
    let groups_n = plan.by_value().count() as u64;
    let width = plan
        .by_value()
        .filter_map(|g| g.row.ip.as_ref().map(Vec::len))
        .max()
        .unwrap_or(1)
        .clamp(1, 255);
    let heap = (groups_n * (width as u64 + 96) * 2).max(64 << 20);
    conn.query_drop(format!("SET SESSION max_heap_table_size = {heap}"))
        .map_err(err)?;
    conn.query_drop(format!(
        "CREATE TEMPORARY TABLE {DEL} (\
         id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
         ip_address VARBINARY({width}) NULL, ip_mask BIGINT NULL, lock_time DATETIME NULL, \
         cnt BIGINT NOT NULL, keep BIGINT NOT NULL, KEY ip (ip_address) USING HASH) ENGINE=MEMORY"
    ))
    .map_err(err)?;
    if load_data(conn, plan)? {
        return Ok(groups_n);
    }
    let mut n = 0u64;
    let groups: Vec<_> = plan.by_value().collect();
    for chunk in groups.chunks(2000) {
        let mut sql =
            format!("INSERT INTO {DEL} (ip_address, ip_mask, lock_time, cnt, keep) VALUES ");
        for (i, g) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            let ip = match &g.row.ip {
                // Always a hex literal: the comparison is on bytes.
                Some(b) => {
                    let mut s = String::from("X'");
                    for c in b {
                        s.push_str(&format!("{c:02X}"));
                    }
                    s.push('\'');
                    s
                }
                None => "NULL".into(),
            };
            sql.push_str(&format!(
                "({ip}, {}, {}, {}, {})",
                mask_literal(g.row.mask.as_deref()),
                sql_literal(g.row.lock.as_deref()),
                g.count,
                g.keep
            ));
        }
        conn.query_drop(sql).map_err(err)?;
        n += chunk.len() as u64;
    }
    Ok(n)
}

/// One LOAD DATA field: backslash escapes as LOAD DATA reads them (`\N` is NULL).
fn tsv_field(out: &mut Vec<u8>, v: Option<&[u8]>) {
    let Some(b) = v else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for &c in b {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            _ => out.push(c),
        }
    }
}

/// Load the plan with LOAD DATA LOCAL INFILE from memory: about three times faster than
/// multi-row INSERTs for 500,000 values. The handler answers with this buffer whatever
/// file name the server asks for, so a hostile server cannot read local files. Returns
/// false (and the caller falls back to INSERTs) when the server refuses LOCAL INFILE
/// (local_infile=OFF).
fn load_data(conn: &mut Conn, plan: &Plan) -> Result<bool, DbError> {
    let mut buf = Vec::new();
    let mut n = 0u64;
    for g in plan.by_value() {
        tsv_field(&mut buf, g.row.ip.as_deref());
        buf.push(b'\t');
        tsv_field(&mut buf, g.row.mask.as_deref());
        buf.push(b'\t');
        tsv_field(&mut buf, g.row.lock.as_deref());
        buf.extend_from_slice(format!("\t{}\t{}\n", g.count, g.keep).as_bytes());
        n += 1;
    }
    let data = std::sync::Arc::new(buf);
    let handler_data = data.clone();
    conn.set_local_infile_handler(Some(mysql::LocalInfileHandler::new(move |_, w| {
        for chunk in handler_data.chunks(1 << 20) {
            w.write_all(chunk)?;
        }
        Ok(())
    })));
    let r = conn.query_drop(format!(
        "LOAD DATA LOCAL INFILE 'relaydoctor-plan' INTO TABLE {DEL} CHARACTER SET binary \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' \
         (ip_address, ip_mask, lock_time, cnt, keep)"
    ));
    conn.set_local_infile_handler(None);
    if let Err(e) = &r {
        if std::env::var_os("RELAYDOCTOR_TIMING").is_some() {
            eprintln!("relaydoctor: timing: LOAD DATA refused ({e}), using INSERTs");
        }
    }
    if r.is_err() {
        // Whatever was loaded is discarded; the INSERT path starts from an empty table.
        let _ = conn.query_drop(format!("DELETE FROM {DEL}"));
        return Ok(false);
    }
    let loaded: Option<u64> = conn
        .query_first(format!("SELECT COUNT(*) FROM {DEL}"))
        .map_err(|e| DbError(format!("cannot count the loaded plan: {e}")))?;
    if loaded != Some(n) {
        let _ = conn.query_drop(format!("DELETE FROM {DEL}"));
        return Ok(false);
    }
    Ok(true)
}

/// The expiry predicate on the live table (alias p); never NULL, so NOT works on it.
fn expired_predicate(plan: &Plan) -> String {
    match plan.expired_before {
        Some(cut) if plan.expired_rows() > 0 => format!(
            "(p.lock_time IS NOT NULL AND p.lock_time < '{}')",
            super::values::format_datetime(cut)
        ),
        _ => "FALSE".into(),
    }
}

/// Join condition between the live table (alias p) and the plan (alias d).
const MATCH: &str = "d.ip_address = BINARY p.ip_address AND d.ip_mask <=> p.ip_mask \
                     AND d.lock_time <=> p.lock_time";

/// Every planned value still has exactly the copies the scan saw: the table is read again
/// under the lock (streamed) and counted against the plan in memory. The statements that
/// follow match the same values, so they delete exactly the planned rows.
fn verify(conn: &mut Conn, creds: &Credentials, table: &str, plan: &Plan) -> Result<(), DbError> {
    let err = |e: mysql::Error| DbError(connect::describe(creds, &e));
    let mut want: HashMap<&RawRow, (u64, u64)> = HashMap::new();
    for g in plan.by_value() {
        want.insert(&g.row, (g.count, 0));
    }
    let mut expired = 0u64;
    let mut result = conn
        .query_iter(format!(
            "SELECT p.ip_address, p.ip_mask, p.lock_time FROM {table} p"
        ))
        .map_err(err)?;
    if let Some(set) = result.iter() {
        for row in set {
            let mut row = row.map_err(err)?;
            let raw = RawRow {
                ip: bytes(row.take(0)),
                mask: bytes(row.take(1)),
                lock: bytes(row.take(2)),
            };
            if let Some(e) = want.get_mut(&raw) {
                e.1 += 1;
            } else if let (Some(cut), Some(t)) = (
                plan.expired_before,
                raw.lock.as_deref().and_then(super::values::parse_datetime),
            ) {
                // Matched by the expiry predicate without being planned: must not exist.
                if t < cut {
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

fn bytes(v: Option<mysql::Value>) -> Option<Vec<u8>> {
    match v {
        None | Some(mysql::Value::NULL) => None,
        Some(mysql::Value::Bytes(b)) => Some(b),
        Some(other) => Some(other.as_sql(true).trim_matches('\'').as_bytes().to_vec()),
    }
}

/// Phase timings on stderr when RELAYDOCTOR_TIMING is set (for the bench notes).
pub fn timing(label: &str, since: std::time::Instant) {
    if std::env::var_os("RELAYDOCTOR_TIMING").is_some() {
        eprintln!(
            "relaydoctor: timing: {label}: {:.2}s",
            since.elapsed().as_secs_f64()
        );
    }
}

pub fn apply(
    conn: &mut Conn,
    creds: &Credentials,
    schema: &Schema,
    plan: &Plan,
) -> Result<Applied, DbError> {
    let db = creds.db.clone();
    let err = |e: mysql::Error| DbError(connect::describe(creds, &e));
    let deleted = plan.deleted();
    let reinserted: u64 = plan.groups().map(|g| g.keep).sum();
    let removed_total: u64 = plan.by_value().map(|g| g.count).sum::<u64>() + plan.expired_rows();
    let expired_sql = expired_predicate(plan);
    let t0 = std::time::Instant::now();
    load_plan(conn, creds, plan)?;
    timing("load plan into a temporary table", t0);
    let t = q(&db, TABLE);
    if schema.transactional() {
        // LOCK TABLES ... WRITE makes other sessions' writers wait on the metadata lock
        // before they touch InnoDB (no row-lock deadlocks with them); autocommit=0 keeps
        // the change one transaction until COMMIT (the pattern the MariaDB manual gives
        // for LOCK TABLES with transactional tables).
        conn.query_drop("SET autocommit = 0").map_err(err)?;
        let result = (|| -> Result<(), DbError> {
            conn.query_drop(format!("LOCK TABLES {t} WRITE, {t} AS p WRITE"))
                .map_err(err)?;
            verify(conn, creds, &t, plan)?;
            timing("lock and verify", t0);
            conn.query_drop(format!(
                "DELETE p FROM {t} p LEFT JOIN {DEL} d ON {MATCH} \
                 WHERE d.id IS NOT NULL OR {expired_sql}"
            ))
            .map_err(err)?;
            let gone = conn.affected_rows();
            if gone != removed_total {
                return Err(DbError(format!(
                    "deleting matched {gone} rows, the plan expected {removed_total}; rolled back"
                )));
            }
            insert_keeps(conn, creds, &t)?;
            timing("delete", t0);
            test_pause();
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
        return Ok(Applied {
            deleted,
            reinserted,
            method: "one InnoDB transaction under LOCK TABLES",
        });
    }

    // MyISAM / Aria: build and swap.
    let new = q(&db, NEW_TABLE);
    let old = q(&db, OLD_TABLE);
    conn.query_drop(format!("DROP TABLE IF EXISTS {new}, {old}"))
        .map_err(err)?;
    conn.query_drop(format!("CREATE TABLE {new} LIKE {t}"))
        .map_err(err)?;
    // The connection that will run the RENAME, opened before anything is locked.
    let mut renamer = connect::connect(creds).map_err(|e| DbError(e.0))?;
    let renamer_id = renamer.connection_id();
    let cleanup_new = |conn: &mut Conn| {
        let _ = conn.query_drop("UNLOCK TABLES");
        let _ = conn.query_drop(format!("DROP TABLE IF EXISTS {new}"));
    };
    conn.query_drop(format!("LOCK TABLES {t} AS p WRITE, {new} WRITE"))
        .map_err(err)?;
    let built = (|| -> Result<(), DbError> {
        verify(conn, creds, &t, plan)?;
        timing("lock and verify", t0);
        conn.query_drop(format!(
            "INSERT INTO {new} SELECT p.* FROM {t} p LEFT JOIN {DEL} d ON {MATCH} \
             WHERE d.id IS NULL AND NOT {expired_sql}"
        ))
        .map_err(err)?;
        insert_keeps(conn, creds, &new)?;
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
    timing("build", t0);
    test_pause();
    let rename_sql = format!("RENAME TABLE {t} TO {old}, {new} TO {t}");
    let outcome = std::thread::scope(|s| {
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
        let unlock = conn.query_drop("UNLOCK TABLES");
        let joined = handle.join();
        (queued, unlock, joined)
    });
    let (queued, unlock, joined) = outcome;
    match joined {
        Ok(Ok(mut renamer)) => {
            let _ = renamer.query_drop(format!("DROP TABLE IF EXISTS {old}"));
        }
        Ok(Err(e)) => {
            let _ = unlock;
            cleanup_new(conn);
            return Err(DbError(format!(
                "swapping in the repaired table failed ({}); the table is unchanged",
                connect::describe(creds, &e)
            )));
        }
        Err(_) => {
            cleanup_new(conn);
            return Err(DbError(
                "internal error while swapping tables; the table is unchanged".into(),
            ));
        }
    }
    if !queued {
        eprintln!("relaydoctor: note: the swap was not seen queued before the lock was released");
    }
    let _ = conn.query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {DEL}"));
    Ok(Applied {
        deleted,
        reinserted,
        method: "rebuilt under LOCK TABLES and swapped in with one atomic RENAME TABLE",
    })
}

/// Insert the kept copy of each duplicated value (the plan keeps at most one) into `table`.
fn insert_keeps(conn: &mut Conn, creds: &Credentials, table: &str) -> Result<(), DbError> {
    conn.query_drop(format!(
        "INSERT INTO {table} (ip_address, ip_mask, lock_time) \
         SELECT ip_address, ip_mask, lock_time FROM {DEL} WHERE keep = 1"
    ))
    .map_err(|e| DbError(connect::describe(creds, &e)))
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
            .map_err(|e| DbError(connect::describe(creds, &e)))?;
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
