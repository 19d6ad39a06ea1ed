//! The psa database as typed values: the smtp_poplocks schema (both generations), its rows,
//! the mail server settings per service node, and what CHECK TABLE says. Every statement
//! that *reads* the database is here; checks.rs turns these values into findings without
//! SQL, and repair.rs holds the statements that write.
//!
//! Facts (primer section 5; psadb.xml of Plesk 17.8.11 MU50 in the mirror
//! tejasv694/Plesk): since 17.8 smtp_poplocks is `ip_address varchar(39)`, `ip_mask int
//! unsigned default 32`, `lock_time datetime NULL`, `serviceNodeId int unsigned default 1`
//! (a foreign key to ServiceNodes.id), a non-unique index on ip_address and no primary key;
//! Plesk 9/10 had `varchar(15)` and no serviceNodeId. The settings `relay`, `poplock_time`,
//! `disable_pop_auth`, `disable_smtp_auth` are rows of
//! `ServiceNodeConfiguration(serviceNodeId, section = 'mailServer', name, value)` (flags
//! `0`/`1`); older servers keep them in `misc(param, val)` with `true`/`false`.

use std::collections::BTreeMap;

use mysql::prelude::Queryable;
use mysql::{Conn, Value};

use super::connect::{self, ident, DbError};
use super::credentials::Credentials;
use super::values::RawRow;

pub const TABLE: &str = "smtp_poplocks";
/// Work tables of an apply on MyISAM/Aria (see repair.rs); left behind only by a crash.
pub const NEW_TABLE: &str = "smtp_poplocks_relaydoctor_new";
pub const OLD_TABLE: &str = "smtp_poplocks_relaydoctor_old";
/// The column that ties a row to its service node (Plesk 17.8 and later).
pub const NODE_COLUMN: &str = "serviceNodeId";
/// The settings relaydoctor reads, by the names Plesk stores them under.
pub const SETTING_NAMES: [&str; 4] = [
    "relay",
    "poplock_time",
    "disable_pop_auth",
    "disable_smtp_auth",
];

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub column_type: String,
    pub nullable: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub exists: bool,
    pub engine: Option<String>,
    pub columns: Vec<Column>,
    pub keys: Vec<String>,
    /// The columns relaydoctor needs are present with known types: repairs allowed.
    pub known: bool,
}

impl Schema {
    pub fn transactional(&self) -> bool {
        self.engine
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("InnoDB"))
    }
    pub fn repairable_engine(&self) -> bool {
        self.engine
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("MyISAM") || e.eq_ignore_ascii_case("Aria"))
    }
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
    /// Plesk 17.8+ generation: rows belong to a service node.
    pub fn has_node(&self) -> bool {
        self.column(NODE_COLUMN).is_some()
    }
    pub fn generation(&self) -> &'static str {
        if self.has_node() {
            "Plesk 17.8+ generation, with serviceNodeId"
        } else {
            "older generation, without serviceNodeId"
        }
    }
    pub fn ip_width(&self) -> Option<u32> {
        let t = self.column("ip_address")?.column_type.to_ascii_lowercase();
        t.strip_prefix("varchar(")?.strip_suffix(')')?.parse().ok()
    }
    /// Every column, backquoted and comma-separated, in table order: what a repair copies.
    pub fn column_list(&self, alias: &str) -> String {
        self.columns
            .iter()
            .map(|c| format!("{alias}{}", ident(&c.name)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One setting as stored, and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub value: Option<String>,
    /// `ServiceNodeConfiguration` or `misc`.
    pub table: &'static str,
}

/// The raw settings: per service node from ServiceNodeConfiguration, and the `misc` rows.
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    /// None when the table does not exist (Plesk before 17.8).
    pub nodes: Option<BTreeMap<String, BTreeMap<String, Option<String>>>>,
    /// None when the table does not exist.
    pub misc: Option<BTreeMap<String, Option<String>>>,
}

impl RawSettings {
    /// The node ids to judge: those with ServiceNodeConfiguration rows, else one (the
    /// server itself, node 1 in Plesk's schema defaults).
    pub fn node_ids(&self) -> Vec<String> {
        match &self.nodes {
            Some(n) if !n.is_empty() => n.keys().cloned().collect(),
            _ => vec!["1".to_string()],
        }
    }
    /// A setting of one node: ServiceNodeConfiguration first, `misc` as the fallback.
    pub fn get(&self, node: &str, name: &str) -> Option<Stored> {
        if let Some(v) = self.nodes.as_ref().and_then(|n| n.get(node)?.get(name)) {
            return Some(Stored {
                value: v.clone(),
                table: "ServiceNodeConfiguration",
            });
        }
        self.misc.as_ref()?.get(name).map(|v| Stored {
            value: v.clone(),
            table: "misc",
        })
    }
    pub fn any_table(&self) -> bool {
        self.nodes.is_some() || self.misc.is_some()
    }
}

/// What CHECK TABLE or reading the table said is wrong with its files.
#[derive(Debug, Clone)]
pub struct Damage {
    pub what: String,
    /// REPAIR TABLE can fix it (MyISAM/Aria damage).
    pub repairable: bool,
}

/// CHECK TABLE's answer, sorted by message type.
#[derive(Debug, Clone, Default)]
pub struct CheckTable {
    pub failed: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Classify a server or handler error code on the table's files (primer section 5:
/// classify by code, never by text). Returns a description and whether REPAIR TABLE fixes it.
pub fn classify(code: u16, message: &str) -> Option<(String, bool)> {
    let what = match code {
        1194 => "the table is marked as crashed and should be repaired",
        1195 => "the table is marked as crashed and the last repair failed",
        1034 => "the index file is corrupt",
        1035 => "the index file is from an old format",
        126 => "the index file is crashed (handler error 126)",
        127 => "the record file is crashed (handler error 127)",
        130 => "the table files have an incorrect format (handler error 130)",
        144 => "the table is crashed and the last repair failed (handler error 144)",
        145 => "the table is marked as crashed (handler error 145)",
        1030 => {
            // ER_GET_ERRNO: "Got error N ... from storage engine": N is the handler code.
            let n: String = message
                .split("Got error ")
                .nth(1)?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let n: u16 = n.parse().ok()?;
            if n == 1030 {
                return None;
            }
            return classify(n, "");
        }
        _ => return None,
    };
    let what = if what.contains("handler error") {
        what.to_string()
    } else {
        format!("{what} (error {code})")
    };
    Some((what, true))
}

/// The damage an error stands for, if it is damage to the table's files.
pub fn damage_of(e: &mysql::Error) -> Option<(String, bool)> {
    match e {
        mysql::Error::MySqlError(m) => classify(m.code, &m.message),
        _ => None,
    }
}

/// A column value as bytes (the text protocol sends every non-NULL value as bytes), moved
/// out of the row without copying.
pub fn text(v: Option<Value>) -> Option<Vec<u8>> {
    match v {
        None | Some(Value::NULL) => None,
        Some(Value::Bytes(b)) => Some(b),
        Some(other) => Some(other.as_sql(true).trim_matches('\'').as_bytes().to_vec()),
    }
}

pub fn read_schema(
    conn: &mut Conn,
    creds: &Credentials,
    db: &str,
    table: &str,
) -> Result<Schema, DbError> {
    let err = |e: mysql::Error| {
        DbError(format!(
            "cannot read information_schema: {}",
            connect::describe(creds, &e)
        ))
    };
    let tables: Vec<(Option<String>,)> = conn
        .exec(
            "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .map_err(err)?;
    let Some((engine,)) = tables.into_iter().next() else {
        return Ok(Schema::default());
    };
    let cols: Vec<(String, String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .map_err(err)?;
    let keys: Vec<(String, i64, String)> = conn
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             GROUP BY INDEX_NAME, NON_UNIQUE ORDER BY INDEX_NAME",
            (db, table),
        )
        .map_err(err)?;
    let columns = cols
        .into_iter()
        .map(|(name, column_type, n)| Column {
            name,
            column_type,
            nullable: n == "YES",
        })
        .collect();
    let keys = keys
        .into_iter()
        .map(|(n, nu, c)| format!("{}{n}({c})", if nu == 0 { "unique " } else { "" }))
        .collect();
    Ok(Schema {
        exists: true,
        engine,
        columns,
        keys,
        known: false,
    })
}

/// The mail server settings: ServiceNodeConfiguration (17.8+) and misc (older, and the
/// fallback). A missing table is `None`, not an error.
pub fn read_settings(conn: &mut Conn, db: &str) -> Result<RawSettings, mysql::Error> {
    let names = SETTING_NAMES
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let q = format!(
        "SELECT CAST(serviceNodeId AS CHAR), name, value FROM {}.ServiceNodeConfiguration \
         WHERE section = 'mailServer' AND name IN ({names})",
        ident(db)
    );
    let nodes = match conn.query::<(String, String, Option<Vec<u8>>), _>(q) {
        Ok(rows) => {
            let mut m: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::new();
            for (node, name, value) in rows {
                m.entry(node).or_default().insert(name, lossy(value));
            }
            Some(m)
        }
        Err(e) if connect::code(&e) == Some(1146) => None,
        Err(e) => return Err(e),
    };
    let q = format!(
        "SELECT param, val FROM {}.misc WHERE param IN ({names})",
        ident(db)
    );
    let misc = match conn.query::<(String, Option<Vec<u8>>), _>(q) {
        Ok(rows) => Some(rows.into_iter().map(|(k, v)| (k, lossy(v))).collect()),
        Err(e) if connect::code(&e) == Some(1146) => None,
        Err(e) => return Err(e),
    };
    Ok(RawSettings { nodes, misc })
}

fn lossy(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|b| String::from_utf8_lossy(&b).into_owned())
}

pub fn server_now(conn: &mut Conn) -> Result<i64, mysql::Error> {
    let now: Option<String> = conn.query_first("SELECT CAST(NOW() AS CHAR)")?;
    Ok(now
        .as_deref()
        .and_then(|s| super::values::parse_datetime(s.as_bytes()))
        .unwrap_or(0))
}

/// `db.table`, quoted.
pub fn qualified(db: &str, table: &str) -> String {
    format!("{}.{}", ident(db), ident(table))
}

/// The SELECT list that reads a row: the known columns, serviceNodeId when the table has it.
pub fn row_select(schema: &Schema, alias: &str) -> String {
    let node = if schema.has_node() {
        format!(", {alias}{}", ident(NODE_COLUMN))
    } else {
        String::new()
    };
    format!("{alias}ip_address, {alias}ip_mask, {alias}lock_time{node}")
}

/// A row of a result read with [`row_select`] columns first.
pub fn take_row(row: &mut mysql::Row, has_node: bool) -> RawRow {
    RawRow {
        ip: text(row.take(0)),
        mask: text(row.take(1)),
        lock: text(row.take(2)),
        node: if has_node { text(row.take(3)) } else { None },
    }
}

/// Stream every row through `each`, never holding the table in memory. A read error is
/// returned as is (the caller classifies damage).
pub fn scan(
    conn: &mut Conn,
    db: &str,
    schema: &Schema,
    mut each: impl FnMut(RawRow),
) -> Result<(), mysql::Error> {
    let sql = format!(
        "SELECT {} FROM {}",
        row_select(schema, ""),
        qualified(db, TABLE)
    );
    let mut result = conn.query_iter(sql)?;
    let has_node = schema.has_node();
    if let Some(set) = result.iter() {
        for row in set {
            each(take_row(&mut row?, has_node));
        }
    }
    Ok(())
}

/// CHECK TABLE: the same check mysqlcheck runs. Its result rows carry no error code.
pub fn check_table(conn: &mut Conn, db: &str) -> Result<CheckTable, mysql::Error> {
    let rows: Vec<(String, String, String, String)> =
        conn.query(format!("CHECK TABLE {}", qualified(db, TABLE)))?;
    let mut c = CheckTable::default();
    for (_t, _op, kind, msg) in rows {
        match kind.to_ascii_lowercase().as_str() {
            "error" => {
                c.failed = true;
                c.errors.push(msg);
            }
            "status" if msg != "OK" && msg != "Table is already up to date" => {
                c.failed = true;
                c.errors.push(msg);
            }
            "warning" => c.warnings.push(msg),
            _ => {}
        }
    }
    Ok(c)
}
