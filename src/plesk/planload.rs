//! The repair plan in a temporary table of the repairing session (visible under LOCK
//! TABLES without being locked): one row per planned row value with the copy count the
//! scan saw and how many copies stay. The live table is joined against it by value; it has
//! no key of its own to delete by.

use std::io::Write as _;

use mysql::prelude::Queryable;
use mysql::Conn;

use super::connect::{self, DbError};
use super::credentials::Credentials;
use super::plan::{mask_literal, Plan};
use super::values::sql_literal;
use crate::outcome::Notify;

pub const DEL: &str = "relaydoctor_delete";

/// Join condition between the live table (alias p) and the plan (alias d): bytes on the
/// address (a PAD SPACE collation would match '10.0.0.1 ' with '10.0.0.1'), NULL-safe on
/// the rest, and the node where the table has one (rows of different nodes are different
/// rows).
pub fn match_sql(has_node: bool) -> String {
    let node = if has_node {
        " AND d.node <=> p.serviceNodeId"
    } else {
        ""
    };
    format!(
        "d.ip_address = BINARY p.ip_address AND d.ip_mask <=> p.ip_mask \
         AND d.lock_time <=> p.lock_time{node}"
    )
}

pub fn load_plan(
    conn: &mut Conn,
    creds: &Credentials,
    plan: &Plan,
    notify: Notify,
) -> Result<u64, DbError> {
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
    let heap = (groups_n * (width as u64 + 104) * 2).max(64 << 20);
    conn.query_drop(format!("SET SESSION max_heap_table_size = {heap}"))
        .map_err(err)?;
    conn.query_drop(format!(
        "CREATE TEMPORARY TABLE {DEL} (\
         id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
         ip_address VARBINARY({width}) NULL, ip_mask BIGINT NULL, lock_time DATETIME NULL, \
         node BIGINT NULL, cnt BIGINT NOT NULL, keep BIGINT NOT NULL, \
         KEY ip (ip_address) USING HASH) ENGINE=MEMORY"
    ))
    .map_err(err)?;
    if load_data(conn, plan, notify)? {
        return Ok(groups_n);
    }
    let mut n = 0u64;
    let groups: Vec<_> = plan.by_value().collect();
    for chunk in groups.chunks(2000) {
        let mut sql =
            format!("INSERT INTO {DEL} (ip_address, ip_mask, lock_time, node, cnt, keep) VALUES ");
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
                "({ip}, {}, {}, {}, {}, {})",
                mask_literal(g.row.mask.as_deref()),
                sql_literal(g.row.lock.as_deref()),
                mask_literal(g.row.node.as_deref()),
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
fn load_data(conn: &mut Conn, plan: &Plan, notify: Notify) -> Result<bool, DbError> {
    let mut buf = Vec::new();
    let mut n = 0u64;
    for g in plan.by_value() {
        for (i, f) in [&g.row.ip, &g.row.mask, &g.row.lock, &g.row.node]
            .iter()
            .enumerate()
        {
            if i > 0 {
                buf.push(b'\t');
            }
            tsv_field(&mut buf, f.as_deref());
        }
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
         (ip_address, ip_mask, lock_time, node, cnt, keep)"
    ));
    conn.set_local_infile_handler(None);
    if let Err(e) = &r {
        if std::env::var_os("RELAYDOCTOR_TIMING").is_some() {
            notify(&format!("timing: LOAD DATA refused ({e}), using INSERTs"));
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
