//! Inspection of the psa database: the smtp_poplocks schema against the known variants,
//! CHECK TABLE classified by error code, a streamed scan of every row, and the relay
//! settings in `misc`.
//!
//! Primer section 5: the table has no key, `lock_time IS NULL` rows are most likely the
//! administrator's relay white list, and lock rows are POP-before-SMTP grants valid for
//! `poplock_time` minutes.

use mysql::prelude::Queryable;
use mysql::{Conn, Value};

use super::connect::{self, ident, DbError};
use super::credentials::Credentials;
use super::values::{self, RawRow};
use crate::finding::{Finding, Mta, Severity};

pub const TABLE: &str = "smtp_poplocks";
/// Work tables of an apply on MyISAM/Aria (see repair.rs); left behind only by a crash.
pub const NEW_TABLE: &str = "smtp_poplocks_relaydoctor_new";
pub const OLD_TABLE: &str = "smtp_poplocks_relaydoctor_old";

/// A future lock_time within this many seconds is clock jitter between writers, not a fault.
const FUTURE_SLACK: i64 = 60;
/// Examples quoted in an aggregated finding.
const EXAMPLES: usize = 5;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub rows: u64,
    pub whitelist: u64,
    pub locks: u64,
    pub expired: u64,
    pub invalid: u64,
    pub future: u64,
    pub duplicates: u64,
    pub whitelist_duplicates: u64,
    pub open_relay: u64,
    /// Invalid addresses that contain ':' (IPv6, perhaps cut off by a narrow column).
    #[serde(skip)]
    pub invalid_ipv6: u64,
}

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
    /// The three columns relaydoctor needs are present with known types: repairs allowed.
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
    fn ip_width(&self) -> Option<u32> {
        let c = self.columns.iter().find(|c| c.name == "ip_address")?;
        let t = c.column_type.to_ascii_lowercase();
        t.strip_prefix("varchar(")?.strip_suffix(')')?.parse().ok()
    }
}

/// The relay settings from `misc`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub relay: Option<String>,
    pub poplock_time: Option<String>,
    pub disable_pop_auth: bool,
    pub disable_smtp_auth: bool,
}

/// What CHECK TABLE or reading the table said is wrong with its files.
#[derive(Debug, Clone)]
pub struct Damage {
    pub what: String,
    /// REPAIR TABLE can fix it (MyISAM/Aria damage).
    pub repairable: bool,
}

/// Everything one inspection learnt.
pub struct Inspection {
    pub findings: Vec<Finding>,
    pub stats: Stats,
    pub schema: Schema,
    pub settings: Settings,
    pub damage: Vec<Damage>,
    /// Server time (NOW()) as naive seconds, and poplock_time in minutes when valid.
    pub now: i64,
    pub poplock_minutes: Option<i64>,
    /// Every row, when the caller asked for them (repair planning).
    pub rows: Option<Vec<RawRow>>,
    /// The scan could not read the table (damage); row checks incomplete.
    pub scan_failed: bool,
}

fn svc(db: &str, table: &str) -> String {
    format!("{db}.{table}")
}

/// Classify a server or handler error code on the table's files (primer section 5:
/// classify by code, never by text). Returns a description and whether REPAIR TABLE fixes it.
pub fn classify(code: u16, message: &str) -> Option<(String, bool)> {
    let (what, repairable) = match code {
        1194 => (
            "the table is marked as crashed and should be repaired",
            true,
        ),
        1195 => (
            "the table is marked as crashed and the last repair failed",
            true,
        ),
        1034 => ("the index file is corrupt", true),
        1035 => ("the index file is from an old format", true),
        126 => ("the index file is crashed (handler error 126)", true),
        127 => ("the record file is crashed (handler error 127)", true),
        130 => (
            "the table files have an incorrect format (handler error 130)",
            true,
        ),
        144 => (
            "the table is crashed and the last repair failed (handler error 144)",
            true,
        ),
        145 => ("the table is marked as crashed (handler error 145)", true),
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
    Some((what, repairable))
}

/// A column value as bytes (the text protocol sends every non-NULL value as bytes), moved
/// out of the row without copying.
fn text(v: Option<Value>) -> Option<Vec<u8>> {
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
    let columns: Vec<Column> = cols
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

/// Compare with the variants seen in the field: ip_address varchar(15) (IPv4 only) or wider
/// (IPv6), ip_mask int unsigned, lock_time datetime NULL; MyISAM, Aria or InnoDB; with or
/// without a key. Anything else is drift.
fn schema_findings(schema: &mut Schema, db: &str, out: &mut Vec<Finding>) {
    let service = svc(db, TABLE);
    let mut drift = Vec::new();
    let mut missing = Vec::new();
    let col = |n: &str| schema.columns.iter().find(|c| c.name == n);
    match col("ip_address") {
        None => missing.push("ip_address"),
        Some(c) => {
            let t = c.column_type.to_ascii_lowercase();
            if !(t.starts_with("varchar(") || t.starts_with("char(")) {
                drift.push(format!("ip_address is {} (known: varchar(15) or wider)", t));
            }
            if c.nullable {
                drift.push("ip_address allows NULL (known: NOT NULL)".into());
            }
        }
    }
    match col("ip_mask") {
        None => missing.push("ip_mask"),
        Some(c) => {
            let t = c.column_type.to_ascii_lowercase();
            if !(t.starts_with("int") || t.starts_with("tinyint") || t.starts_with("smallint")) {
                drift.push(format!("ip_mask is {t} (known: int unsigned)"));
            }
        }
    }
    match col("lock_time") {
        None => missing.push("lock_time"),
        Some(c) => {
            let t = c.column_type.to_ascii_lowercase();
            if !t.starts_with("datetime") {
                drift.push(format!("lock_time is {t} (known: datetime NULL)"));
            }
            if !c.nullable {
                drift.push(
                    "lock_time is NOT NULL, so the table cannot hold white-list rows \
                     (known: NULL allowed)"
                        .into(),
                );
            }
        }
    }
    for c in &schema.columns {
        if !["ip_address", "ip_mask", "lock_time"].contains(&c.name.as_str()) {
            drift.push(format!("extra column {} {}", c.name, c.column_type));
        }
    }
    let engine = schema.engine.clone().unwrap_or_else(|| "unknown".into());
    if !["MyISAM", "InnoDB", "Aria"]
        .iter()
        .any(|e| e.eq_ignore_ascii_case(&engine))
    {
        drift.push(format!("engine {engine} (known: MyISAM, Aria or InnoDB)"));
    }
    if !missing.is_empty() {
        out.push(
            Finding::new(
                "PL003",
                Mta::Plesk,
                format!(
                    "{TABLE} lacks the column(s) {}: relaydoctor cannot check its rows, and \
                     Plesk's POP-before-SMTP and relay white list cannot work",
                    missing.join(", ")
                ),
            )
            .service(service.clone())
            .help("compare with a healthy Plesk server's schema; `plesk repair db -n` checks the whole psa schema"),
        );
    }
    let data_drift = drift.iter().any(|d| !d.starts_with("engine"));
    schema.known = missing.is_empty() && !data_drift;
    if !drift.is_empty() {
        out.push(
            Finding::new(
                "PL002",
                Mta::Plesk,
                format!(
                    "{TABLE} differs from the known schema variants: {}",
                    drift.join("; ")
                ),
            )
            .service(service)
            .help(if schema.known {
                "the rows were still checked; report this variant if it is Plesk's own"
            } else {
                "repairs are refused on an unknown schema; checks that need the missing \
                 meaning were skipped"
            }),
        );
    }
}

pub fn read_settings(conn: &mut Conn, db: &str) -> Result<Option<Settings>, mysql::Error> {
    let q = format!(
        "SELECT param, val FROM {}.misc WHERE param IN \
         ('relay', 'poplock_time', 'disable_pop_auth', 'disable_smtp_auth')",
        ident(db)
    );
    let rows: Vec<(String, Option<Vec<u8>>)> = match conn.query(q) {
        Ok(r) => r,
        Err(e) if connect::code(&e) == Some(1146) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut s = Settings::default();
    let truthy = |v: &Option<Vec<u8>>| {
        v.as_deref()
            .map(|b| {
                let t = String::from_utf8_lossy(b).trim().to_ascii_lowercase();
                t == "true" || t == "1" || t == "yes" || t == "on"
            })
            .unwrap_or(false)
    };
    for (param, val) in rows {
        let text = val
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        match param.as_str() {
            "relay" => s.relay = text,
            "poplock_time" => s.poplock_time = text,
            "disable_pop_auth" => s.disable_pop_auth = truthy(&val),
            "disable_smtp_auth" => s.disable_smtp_auth = truthy(&val),
            _ => {}
        }
    }
    Ok(Some(s))
}

fn settings_findings(s: &Option<Settings>, db: &str, out: &mut Vec<Finding>) -> Option<i64> {
    let service = svc(db, "misc");
    let Some(s) = s else {
        out.push(
            Finding::new(
                "PL021",
                Mta::Plesk,
                "the misc table is missing, so the relay mode (relay), poplock_time and the \
                 authentication switches are unknown; Plesk cannot build its mail configuration",
            )
            .service(service)
            .help("`plesk repair db -n` checks the psa schema"),
        );
        return None;
    };
    match s.relay.as_deref().map(str::trim) {
        Some("open") => out.push(
            Finding::new(
                "PL020",
                Mta::Plesk,
                "relay mode is open (misc.relay = 'open'): the server relays mail for any \
                 client to any domain, so spammers can send through it",
            )
            .service(service.clone())
            .help("Tools & Settings > Mail Server Settings > Relaying: choose authorization required (relay = auth)"),
        ),
        Some("closed") | Some("auth") => {}
        Some(other) => out.push(
            Finding::new(
                "PL021",
                Mta::Plesk,
                format!(
                    "relay mode {:?} is not one of open, closed, auth; Plesk's mail \
                     configuration from it is unpredictable",
                    values::escape_visible(other.as_bytes())
                ),
            )
            .service(service.clone())
            .help("set the relay mode again in Mail Server Settings, then run `plesk repair mail -y`"),
        ),
        None => out.push(
            Finding::new(
                "PL021",
                Mta::Plesk,
                "relay mode (misc.relay) is not set; Plesk's mail configuration from it is \
                 unpredictable",
            )
            .service(service.clone())
            .help("set the relay mode in Mail Server Settings, then run `plesk repair mail -y`"),
        ),
    }
    let minutes = match s.poplock_time.as_deref().map(str::trim) {
        None => {
            out.push(
                Finding::new(
                    "PL022",
                    Mta::Plesk,
                    "poplock_time is not set in misc, so how long a POP/IMAP login allows \
                     relaying is unknown; expired POP locks were not checked",
                )
                .service(service.clone())
                .severity(Severity::Info),
            );
            None
        }
        Some(t) => match values::parse_uint(t.as_bytes()) {
            Some(m) if m > 0 && m <= 525_600 => Some(m as i64),
            _ => {
                out.push(
                    Finding::new(
                        "PL022",
                        Mta::Plesk,
                        format!(
                            "poplock_time {:?} is not a positive number of minutes: \
                             POP-before-SMTP grants may never expire or never work; expired \
                             POP locks were not checked",
                            values::escape_visible(t.as_bytes())
                        ),
                    )
                    .service(service.clone())
                    .help("set the lock time (minutes) in Mail Server Settings"),
                );
                None
            }
        },
    };
    if s.relay.as_deref().map(str::trim) == Some("auth")
        && s.disable_pop_auth
        && s.disable_smtp_auth
    {
        out.push(
            Finding::new(
                "PL023",
                Mta::Plesk,
                "relay mode is auth, but both POP-before-SMTP (disable_pop_auth) and SMTP \
                 authentication (disable_smtp_auth) are disabled: no user can authenticate, \
                 so every mail client outside the white list gets \"Relay access denied\"",
            )
            .service(service)
            .help("enable SMTP authorization in Mail Server Settings > Relaying"),
        );
    }
    minutes
}

/// Aggregates one kind of row problem: a count and a few examples.
#[derive(Default)]
struct Agg {
    count: u64,
    examples: Vec<String>,
}

impl Agg {
    fn add(&mut self, row: &RawRow) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(row.describe());
        }
    }
    fn list(&self) -> String {
        let more = self.count.saturating_sub(self.examples.len() as u64);
        let mut s = self.examples.join("; ");
        if more > 0 {
            s.push_str(&format!("; and {more} more"));
        }
        s
    }
}

/// Why a row should go, if it should. Shared by the check and the repair plan so they
/// cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    InvalidIp,
    InvalidMask,
    InvalidDate,
    Future,
    Expired,
}

impl Fault {
    pub fn reason(self) -> &'static str {
        match self {
            Fault::InvalidIp => "invalid IP address",
            Fault::InvalidMask => "mask out of range",
            Fault::InvalidDate => "zero or invalid lock_time",
            Fault::Future => "lock_time in the future",
            Fault::Expired => "expired POP lock",
        }
    }
}

/// The row's checks in one place.
pub fn fault(row: &RawRow, now: i64, poplock_minutes: Option<i64>) -> Option<Fault> {
    fault_parsed(&Parsed::of(row), now, poplock_minutes)
}

/// A row's columns parsed once.
pub struct Parsed {
    pub ip: Option<std::net::IpAddr>,
    pub mask: Option<u64>,
    pub has_lock: bool,
    pub lock: Option<i64>,
}

impl Parsed {
    pub fn of(row: &RawRow) -> Parsed {
        Parsed {
            ip: row.ip.as_deref().and_then(values::parse_ip),
            mask: row.mask.as_deref().and_then(values::parse_uint),
            has_lock: row.lock.is_some(),
            lock: row.lock.as_deref().and_then(values::parse_datetime),
        }
    }
    /// Address and mask when both are valid together.
    pub fn net(&self) -> Option<(std::net::IpAddr, u32)> {
        let ip = self.ip?;
        let m = self.mask?;
        (m <= values::max_mask(ip) as u64).then_some((ip, m as u32))
    }
}

pub fn fault_parsed(p: &Parsed, now: i64, poplock_minutes: Option<i64>) -> Option<Fault> {
    if p.ip.is_none() {
        return Some(Fault::InvalidIp);
    }
    if p.net().is_none() {
        return Some(Fault::InvalidMask);
    }
    if !p.has_lock {
        return None;
    }
    let Some(t) = p.lock else {
        return Some(Fault::InvalidDate);
    };
    if t > now + FUTURE_SLACK {
        return Some(Fault::Future);
    }
    if let Some(m) = poplock_minutes {
        if t + m * 60 < now {
            return Some(Fault::Expired);
        }
    }
    None
}

/// Key for duplicate detection: the same address and mask, separately for white-list and
/// lock rows. A 64-bit hash keeps 1,000,000 rows in 16 MB; a collision (about 1 in 10^7 at
/// that size) could only overstate the duplicate count of the check, never a repair, which
/// compares the rows themselves.
fn dup_key(row: &RawRow) -> u64 {
    // FNV-1a over the fields with separators: a quarter of SipHash's cost per row, and no
    // adversary controls which rows a check sees as duplicates (it only counts them).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &c in b {
            h = (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(if row.is_whitelist() { b"W" } else { b"L" });
    for f in [&row.ip, &row.mask] {
        match f {
            Some(b) => {
                eat(b"\x01");
                eat(b);
            }
            None => eat(b"\x00"),
        }
    }
    h
}

pub struct Options {
    pub collect_rows: bool,
    /// Show a spinner with the row count on a terminal's stderr (text output only).
    pub progress: bool,
}

pub fn server_now(conn: &mut Conn) -> Result<i64, mysql::Error> {
    let now: Option<String> = conn.query_first("SELECT CAST(NOW() AS CHAR)")?;
    Ok(now
        .as_deref()
        .and_then(|s| values::parse_datetime(s.as_bytes()))
        .unwrap_or(0))
}

/// Run every check. Database errors that stop the inspection are DbError (exit 2); damage
/// to the table itself is a finding.
pub fn inspect(
    conn: &mut Conn,
    creds: &Credentials,
    opts: &Options,
) -> Result<Inspection, DbError> {
    let db = creds.db.clone();
    let service = svc(&db, TABLE);
    let mut findings = Vec::new();
    let dberr = |e: mysql::Error| DbError(connect::describe(creds, &e));
    let now = server_now(conn).map_err(dberr)?;
    let settings = read_settings(conn, &db).map_err(dberr)?;
    let poplock_minutes = settings_findings(&settings, &db, &mut findings);
    let settings = settings.unwrap_or_default();

    let mut schema = read_schema(conn, creds, &db, TABLE)?;
    let mut insp = Inspection {
        findings: Vec::new(),
        stats: Stats::default(),
        schema: Schema::default(),
        settings: settings.clone(),
        damage: Vec::new(),
        now,
        poplock_minutes,
        rows: None,
        scan_failed: false,
    };
    for leftover in [NEW_TABLE, OLD_TABLE] {
        let s = read_schema(conn, creds, &db, leftover)?;
        if s.exists {
            findings.push(
                Finding::new(
                    "PL041",
                    Mta::Plesk,
                    format!(
                        "work table {db}.{leftover} was left behind by an interrupted \
                         `relaydoctor plesk repair --apply`; {TABLE} itself is complete \
                         (the swap is atomic)"
                    ),
                )
                .service(service.clone())
                .help("the next `relaydoctor plesk repair --apply` drops it"),
            );
        }
    }
    if !schema.exists {
        findings.push(
            Finding::new(
                "PL001",
                Mta::Plesk,
                format!(
                    "table {db}.{TABLE} does not exist: Plesk cannot record POP-before-SMTP \
                     grants or the relay white list, so mail clients that relied on them get \
                     \"Relay access denied\""
                ),
            )
            .service(service)
            .help("`plesk repair db -y` recreates missing psa tables"),
        );
        insp.findings = findings;
        insp.schema = schema;
        return Ok(insp);
    }
    schema_findings(&mut schema, &db, &mut findings);
    let qualified = format!("{}.{}", ident(&db), ident(TABLE));

    // Read the rows first: opening a damaged table fails with the code that classifies it.
    let mut rows = opts.collect_rows.then(Vec::new);
    let mut dup_keys: Vec<(u64, i64)> = Vec::new();
    let mut stats = Stats::default();
    let mut agg: std::collections::BTreeMap<Fault, Agg> = Default::default();
    let mut host_bits = Agg::default();
    let mut open_rows: Vec<(RawRow, String)> = Vec::new();
    let has_cols = ["ip_address", "ip_mask", "lock_time"]
        .iter()
        .all(|n| schema.columns.iter().any(|c| c.name == *n));
    if has_cols {
        let scan = format!("SELECT ip_address, ip_mask, lock_time FROM {qualified}");
        let spin = crate::progress::Progress::spinner(opts.progress, "scanning smtp_poplocks");
        let result = conn.query_iter(scan);
        let scan_err = match result {
            Err(e) => Some(e),
            Ok(mut result) => {
                let mut err = None;
                if let Some(set) = result.iter() {
                    for row in set {
                        let mut row = match row {
                            Ok(r) => r,
                            Err(e) => {
                                err = Some(e);
                                break;
                            }
                        };
                        let raw = RawRow {
                            ip: text(row.take(0)),
                            mask: text(row.take(1)),
                            lock: text(row.take(2)),
                        };
                        stats.rows += 1;
                        if stats.rows % 65_536 == 0 && spin.is_visible() {
                            spin.set_message(&format!(
                                "scanning smtp_poplocks: {} rows",
                                stats.rows
                            ));
                        }
                        if raw.is_whitelist() {
                            stats.whitelist += 1;
                        } else {
                            stats.locks += 1;
                        }
                        let parsed = Parsed::of(&raw);
                        match fault_parsed(&parsed, now, poplock_minutes) {
                            Some(f) => {
                                if f == Fault::InvalidIp
                                    && raw.ip.as_deref().is_some_and(|b| b.contains(&b':'))
                                {
                                    stats.invalid_ipv6 += 1;
                                }
                                match f {
                                    Fault::Expired => stats.expired += 1,
                                    Fault::Future => stats.future += 1,
                                    _ => stats.invalid += 1,
                                }
                                agg.entry(f).or_default().add(&raw);
                            }
                            None => {
                                dup_keys.push((dup_key(&raw), parsed.lock.unwrap_or(i64::MIN)));
                            }
                        }
                        if let Some((ip, m)) = parsed.net() {
                            if values::host_bits_set(ip, m) {
                                host_bits.add(&raw);
                            }
                            if let Some(why) = values::open_relay(ip, m) {
                                stats.open_relay += 1;
                                if open_rows.len() < 50 {
                                    open_rows.push((raw.clone(), why));
                                }
                            }
                        }
                        if let Some(r) = rows.as_mut() {
                            r.push(raw);
                        }
                    }
                }
                err
            }
        };
        if let Some(e) = scan_err {
            let (code, msg) = match &e {
                mysql::Error::MySqlError(m) => (m.code, m.message.clone()),
                _ => (0, String::new()),
            };
            match classify(code, &msg) {
                Some((what, repairable)) => {
                    insp.scan_failed = true;
                    insp.damage.push(Damage {
                        what: what.clone(),
                        repairable: repairable && schema.repairable_engine(),
                    });
                }
                None => return Err(dberr(e)),
            }
        }
    }

    // CHECK TABLE: the same check mysqlcheck runs. Its result rows carry no error code, so
    // a failing status is reported with the code from reading the table when there was one.
    // When reading already failed with a damage code, CHECK TABLE is skipped: on MyISAM it
    // would rewrite the table's state (clear or set the crashed mark), and the check is
    // meant to change nothing; the code is the classification.
    let check: Result<Vec<(String, String, String, String)>, _> = if insp.scan_failed {
        Ok(Vec::new())
    } else {
        conn.query(format!("CHECK TABLE {qualified}"))
    };
    let mut check_msgs = Vec::new();
    let mut check_failed = false;
    let mut check_warnings = Vec::new();
    match check {
        Ok(rows) => {
            for (_t, _op, kind, msg) in rows {
                let kind = kind.to_ascii_lowercase();
                match kind.as_str() {
                    "error" => {
                        check_failed = true;
                        check_msgs.push(msg);
                    }
                    "status" if msg != "OK" && msg != "Table is already up to date" => {
                        check_failed = true;
                        check_msgs.push(msg);
                    }
                    "warning" => check_warnings.push(msg),
                    _ => {}
                }
            }
        }
        Err(e) => {
            let (code, msg) = match &e {
                mysql::Error::MySqlError(m) => (m.code, m.message.clone()),
                _ => (0, String::new()),
            };
            match classify(code, &msg) {
                Some((what, repairable)) => insp.damage.push(Damage {
                    what,
                    repairable: repairable && schema.repairable_engine(),
                }),
                None => return Err(dberr(e)),
            }
        }
    }
    if check_failed && insp.damage.is_empty() {
        insp.damage.push(Damage {
            what: "CHECK TABLE reports the table as corrupt".into(),
            repairable: schema.repairable_engine(),
        });
    }
    for d in &insp.damage {
        let detail = if check_msgs.is_empty() {
            String::new()
        } else {
            format!(
                " (CHECK TABLE: {})",
                values::escape_visible(check_msgs.join("; ").as_bytes())
            )
        };
        findings.push(
            Finding::new(
                "PL010",
                Mta::Plesk,
                format!(
                    "{db}.{TABLE}: {}{detail}; while it lasts Plesk cannot read POP locks or \
                     the white list, so clients get \"Relay access denied\"{}",
                    d.what,
                    if insp.scan_failed {
                        "; the rows could not be checked"
                    } else {
                        ""
                    }
                ),
            )
            .service(service.clone())
            .help(if d.repairable {
                "`relaydoctor plesk repair --apply` runs REPAIR TABLE (MyISAM/Aria)"
            } else {
                "InnoDB repairs itself at restart; see the server's error log"
            }),
        );
    }
    if !check_failed && insp.damage.is_empty() && !check_warnings.is_empty() {
        findings.push(
            Finding::new(
                "PL011",
                Mta::Plesk,
                format!(
                    "CHECK TABLE {db}.{TABLE} warns: {}",
                    values::escape_visible(check_warnings.join("; ").as_bytes())
                ),
            )
            .service(service.clone())
            .help(
                "`relaydoctor plesk repair --apply` runs REPAIR TABLE on MyISAM/Aria when needed",
            ),
        );
    }

    // Duplicates among the rows that are otherwise fine.
    dup_keys.sort_unstable();
    let mut i = 0;
    while i < dup_keys.len() {
        let mut j = i + 1;
        while j < dup_keys.len() && dup_keys[j].0 == dup_keys[i].0 {
            j += 1;
        }
        // White-list rows carry i64::MIN as their time (no lock_time).
        if dup_keys[i].1 == i64::MIN {
            stats.whitelist_duplicates += (j - i - 1) as u64;
        } else {
            stats.duplicates += (j - i - 1) as u64;
        }
        i = j;
    }
    drop(dup_keys);

    row_findings(
        &db,
        &service,
        &schema,
        &settings,
        &stats,
        &agg,
        &host_bits,
        &open_rows,
        poplock_minutes,
        &mut findings,
    );
    insp.findings = findings;
    insp.stats = stats;
    insp.schema = schema;
    insp.rows = rows;
    Ok(insp)
}

#[allow(clippy::too_many_arguments)]
fn row_findings(
    db: &str,
    service: &str,
    schema: &Schema,
    settings: &Settings,
    stats: &Stats,
    agg: &std::collections::BTreeMap<Fault, Agg>,
    host_bits: &Agg,
    open_rows: &[(RawRow, String)],
    poplock_minutes: Option<i64>,
    out: &mut Vec<Finding>,
) {
    let fix = "`relaydoctor plesk repair` shows the rows it would delete; --apply deletes them \
               after a backup";
    for (f, a) in agg {
        let (code, msg) = match f {
            Fault::InvalidIp => (
                "PL030",
                format!(
                    "{} row(s) with an invalid IP address, which never match a client: {}",
                    a.count,
                    a.list()
                ),
            ),
            Fault::InvalidMask => (
                "PL031",
                format!(
                    "{} row(s) with a mask out of range (0-32 for IPv4, 0-128 for IPv6): {}",
                    a.count,
                    a.list()
                ),
            ),
            Fault::InvalidDate => (
                "PL035",
                format!(
                    "{} POP lock row(s) with a zero or invalid lock_time: {}",
                    a.count,
                    a.list()
                ),
            ),
            Fault::Future => (
                "PL034",
                format!(
                    "{} POP lock row(s) with lock_time in the future, which let those \
                     addresses relay until then: {}",
                    a.count,
                    a.list()
                ),
            ),
            Fault::Expired => (
                "PL036",
                format!(
                    "{} POP lock row(s) older than poplock_time ({} minutes) still in the \
                     table; they slow every SMTP lookup: {}",
                    a.count,
                    poplock_minutes.unwrap_or(0),
                    a.list()
                ),
            ),
        };
        let mut finding = Finding::new(code, Mta::Plesk, msg)
            .service(service)
            .help(fix);
        if *f == Fault::InvalidIp
            && stats.invalid_ipv6 > 0
            && schema.ip_width().is_some_and(|w| w < 39)
        {
            finding = finding.help(format!(
                "{fix}. ip_address is varchar({}), too narrow for IPv6 addresses, which are \
                 cut off",
                schema.ip_width().unwrap_or(15)
            ));
        }
        out.push(finding);
    }
    if host_bits.count > 0 {
        out.push(
            Finding::new(
                "PL032",
                Mta::Plesk,
                format!(
                    "{} row(s) have address bits beyond the mask (the network is the address \
                     with those bits cleared; Plesk's default 127.0.0.1/8 is like this): {}",
                    host_bits.count,
                    host_bits.list()
                ),
            )
            .service(service),
        );
    }
    if stats.duplicates > 0 {
        out.push(
            Finding::new(
                "PL033",
                Mta::Plesk,
                format!(
                    "{} duplicate POP lock row(s): the same address and mask more than once; \
                     only the newest lock counts, the others slow every lookup",
                    stats.duplicates
                ),
            )
            .service(service)
            .help(format!("{fix} (the newest lock of each address is kept)")),
        );
    }
    if stats.whitelist_duplicates > 0 {
        // Harmless repetition in the admin's own list: information only.
        out.push(
            Finding::new(
                "PL033",
                Mta::Plesk,
                format!(
                    "{} duplicate white-list row(s): the same network listed more than once",
                    stats.whitelist_duplicates
                ),
            )
            .service(service)
            .severity(Severity::Info)
            .help("`relaydoctor plesk repair --include-whitelist` keeps one copy of each"),
        );
    }
    for (row, why) in open_rows {
        let kind = if row.is_whitelist() {
            "white-list row"
        } else {
            "POP lock row"
        };
        out.push(
            Finding::new(
                "PL040",
                Mta::Plesk,
                format!(
                    "{kind} {} {why}: every client there may relay mail without \
                     authenticating, an open relay",
                    row.describe()
                ),
            )
            .service(service)
            .help(
                "remove it in Tools & Settings > Mail Server Settings > White list, or \
                 `relaydoctor plesk repair --include-whitelist` (only every-address rows), then \
                 `plesk repair mail -y`",
            ),
        );
    }
    if settings.disable_pop_auth && stats.locks > 0 {
        out.push(
            Finding::new(
                "PL037",
                Mta::Plesk,
                format!(
                    "{} POP lock row(s) while POP-before-SMTP is disabled (misc.disable_pop_auth): \
                     leftovers Plesk no longer maintains",
                    stats.locks
                ),
            )
            .service(format!("{db}.misc")),
        );
    }
}
