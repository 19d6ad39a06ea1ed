//! From the values model.rs read to findings: no SQL here. The schema against both
//! generations, the mail server settings per service node, each row of smtp_poplocks
//! (streamed through [`RowChecker`]), the white list, and the table's health.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

use super::model::{CheckTable, Damage, RawSettings, Schema, NEW_TABLE, NODE_COLUMN, TABLE};
use super::values::{self, RawRow, Reach};
use crate::finding::{Finding, Mta, Severity};

/// A future lock_time within this many seconds is clock jitter between writers, not a fault.
const FUTURE_SLACK: i64 = 60;
/// Examples quoted in an aggregated finding.
const EXAMPLES: usize = 5;
/// White-list entries listed one by one (PL042); the rest are counted.
const LISTED_ENTRIES: usize = 20;
/// A POP lock longer than this while POP-before-SMTP is on lets an address that changed
/// hands relay (PL025).
const LONG_POPLOCK_MINUTES: i64 = 60;
const FIX: &str = "`relaydoctor plesk repair` shows the rows it would delete; --apply deletes \
                   them after a backup";

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

/// poplock_time in minutes per service node (the key is the node id as text).
#[derive(Debug, Clone, Default)]
pub struct Minutes(pub BTreeMap<String, i64>);

impl Minutes {
    pub fn for_row(&self, row: &RawRow) -> Option<i64> {
        self.0.get(&row.node_id()).copied()
    }
}

/// The settings of one node, resolved (ServiceNodeConfiguration, else misc, else Plesk's
/// default for the flags).
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub relay: Option<String>,
    pub poplock_minutes: Option<i64>,
    pub pop_disabled: bool,
    pub smtp_disabled: bool,
}

/// What the settings checks learnt, for the row checks and the summary.
#[derive(Debug, Clone, Default)]
pub struct SettingsVerdict {
    pub nodes: BTreeMap<String, NodeSettings>,
    pub minutes: Minutes,
}

fn svc(db: &str, table: &str) -> String {
    format!("{db}.{table}")
}

/// Compare with the two generations: ip_address varchar(15) or wider (39 since IPv6),
/// ip_mask int unsigned, lock_time datetime NULL, and since 17.8 serviceNodeId int
/// unsigned; MyISAM, Aria or InnoDB; with or without a key. Unknown extra columns are
/// reported but repairs still run: they copy whole rows.
pub fn schema(schema: &mut Schema, db: &str, out: &mut Vec<Finding>) {
    let mut drift = Vec::new();
    let mut extra = Vec::new();
    let mut missing = Vec::new();
    let int = |t: &str| {
        ["int", "tinyint", "smallint", "mediumint", "bigint"]
            .iter()
            .any(|p| t.starts_with(p))
    };
    for (name, need) in [("ip_address", true), ("ip_mask", true), ("lock_time", true)] {
        let Some(c) = schema.column(name) else {
            if need {
                missing.push(name);
            }
            continue;
        };
        let t = c.column_type.to_ascii_lowercase();
        match name {
            "ip_address" if !(t.starts_with("varchar(") || t.starts_with("char(")) => drift.push(
                format!("ip_address is {t} (known: varchar(15) or varchar(39))"),
            ),
            "ip_address" if c.nullable => {
                drift.push("ip_address allows NULL (known: NOT NULL)".into())
            }
            "ip_mask" if !int(&t) => drift.push(format!("ip_mask is {t} (known: int unsigned)")),
            "lock_time" if !t.starts_with("datetime") => {
                drift.push(format!("lock_time is {t} (known: datetime NULL)"))
            }
            "lock_time" if !c.nullable => drift.push(
                "lock_time is NOT NULL, so the table cannot hold white-list rows \
                 (known: NULL allowed)"
                    .into(),
            ),
            _ => {}
        }
    }
    if let Some(c) = schema.column(NODE_COLUMN) {
        if !int(&c.column_type.to_ascii_lowercase()) {
            drift.push(format!(
                "{NODE_COLUMN} is {} (known: int unsigned)",
                c.column_type
            ));
        }
    }
    let known_cols = ["ip_address", "ip_mask", "lock_time", NODE_COLUMN];
    for c in &schema.columns {
        if !known_cols.contains(&c.name.as_str()) {
            extra.push(format!("extra column {} {}", c.name, c.column_type));
        }
    }
    let engine = schema.engine.clone().unwrap_or_else(|| "unknown".into());
    let engine_known = ["MyISAM", "InnoDB", "Aria"]
        .iter()
        .any(|e| e.eq_ignore_ascii_case(&engine));
    let service = svc(db, TABLE);
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
    schema.known = missing.is_empty() && drift.is_empty();
    if !engine_known {
        drift.push(format!("engine {engine} (known: MyISAM, Aria or InnoDB)"));
    }
    drift.extend(extra);
    if !drift.is_empty() {
        out.push(
            Finding::new(
                "PL002",
                Mta::Plesk,
                format!(
                    "{TABLE} differs from both known schema generations: {}",
                    drift.join("; ")
                ),
            )
            .service(service)
            .help(if schema.known {
                "the rows were still checked, and a repair copies whole rows, so extra columns \
                 keep their values; report this variant if it is Plesk's own"
            } else {
                "repairs are refused on an unknown schema; checks that need the missing \
                 meaning were skipped"
            }),
        );
    }
}

/// A flag as Plesk reads it. ServiceNodeConfiguration stores `0`/`1` and Plesk's
/// `set_postfix_auth` tests `value=0`, a numeric comparison in which MariaDB reads text such
/// as `'true'` as 0 (fact check PL023); `misc` on older servers stores `true`/`false`.
/// Returns the flag and whether the stored text is one of the forms that table uses.
fn flag(value: &str, table: &str) -> (bool, bool) {
    let v = value.trim();
    if table == "misc" {
        return match v.to_ascii_lowercase().as_str() {
            "true" | "1" => (true, true),
            "false" | "0" => (false, true),
            _ => (false, false),
        };
    }
    let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
    let n = digits.parse::<u64>().unwrap_or(0);
    (n != 0, v == "0" || v == "1")
}

/// Plesk's defaults for the flags (psadb.xml): POP-before-SMTP off, SMTP AUTH on.
fn default_flag(name: &str) -> bool {
    name == "disable_pop_auth"
}

/// The settings of every node, judged. `out` gets PL020-PL026.
pub fn settings(raw: &RawSettings, db: &str, out: &mut Vec<Finding>) -> SettingsVerdict {
    let mut verdict = SettingsVerdict::default();
    if !raw.any_table() {
        out.push(
            Finding::new(
                "PL021",
                Mta::Plesk,
                "neither ServiceNodeConfiguration (Plesk 17.8+) nor misc exists, so the relay \
                 mode, poplock_time and the authentication switches are unknown; Plesk cannot \
                 build its mail configuration",
            )
            .service(svc(db, "ServiceNodeConfiguration"))
            .help("`plesk repair db -n` checks the psa schema"),
        );
        return verdict;
    }
    let ids = raw.node_ids();
    let multi = ids.len() > 1;
    for node in ids {
        let s = node_settings(raw, db, &node, multi, out);
        if let Some(m) = s.poplock_minutes {
            verdict.minutes.0.insert(node.clone(), m);
        }
        verdict.nodes.insert(node, s);
    }
    verdict
}

fn node_settings(
    raw: &RawSettings,
    db: &str,
    node: &str,
    multi: bool,
    out: &mut Vec<Finding>,
) -> NodeSettings {
    let at = if multi || node != "1" {
        format!(" on service node {node}")
    } else {
        String::new()
    };
    let default_table = if raw.nodes.is_some() {
        "ServiceNodeConfiguration"
    } else {
        "misc"
    };
    let get = |name: &str| raw.get(node, name);
    let place = |name: &str| {
        let table = get(name).map_or(default_table, |s| s.table);
        (svc(db, table), format!("{table}.{name}"))
    };
    let mut flags = [false; 2];
    for (i, name) in ["disable_pop_auth", "disable_smtp_auth"].iter().enumerate() {
        flags[i] = match get(name) {
            Some(st) => {
                let text = st.value.unwrap_or_default();
                let (on, plain) = flag(&text, st.table);
                if !plain {
                    out.push(invalid_flag(name, &text, on, st.table, &at, db));
                }
                on
            }
            None => default_flag(name),
        };
    }
    let [pop_disabled, smtp_disabled] = flags;
    let relay = get("relay")
        .and_then(|s| s.value)
        .map(|v| v.trim().to_string());
    relay_findings(relay.as_deref(), &place("relay"), &at, out);
    let poplock_minutes = poplock_findings(get("poplock_time"), &place("poplock_time"), &at, out);
    let (service, _) = place("relay");
    let closed_or_auth = matches!(relay.as_deref(), Some("auth"));
    if closed_or_auth && pop_disabled && smtp_disabled {
        out.push(
            Finding::new(
                "PL023",
                Mta::Plesk,
                format!(
                    "relay mode is auth{at}, but both POP-before-SMTP (disable_pop_auth = 1) and \
                     SMTP authentication (disable_smtp_auth = 1) are disabled: no user can \
                     authenticate, so every mail client outside the white list gets \"Relay \
                     access denied\""
                ),
            )
            .service(service.clone())
            .help("`plesk bin mailserver --set-relay auth -auth-type smtp`, then `plesk repair mail -y`"),
        );
    } else if smtp_disabled && relay.as_deref() != Some("open") {
        out.push(
            Finding::new(
                "PL024",
                Mta::Plesk,
                format!(
                    "SMTP authentication is disabled{at} (disable_smtp_auth = 1): roaming users \
                     can relay only by POP-before-SMTP, and get \"Relay access denied\" whenever \
                     their IP address changes (mobile networks) until they check mail again"
                ),
            )
            .service(service.clone())
            .help("`plesk bin mailserver --set-relay auth -auth-type smtp` (or `both`), then `plesk repair mail -y`"),
        );
    }
    if let Some(m) = poplock_minutes.filter(|m| *m > LONG_POPLOCK_MINUTES && !pop_disabled) {
        out.push(
            Finding::new(
                "PL025",
                Mta::Plesk,
                format!(
                    "poplock_time is {m} minutes{at} while POP-before-SMTP is on: for that long \
                     after a POP/IMAP login, whoever gets the same IP address next (dynamic \
                     and mobile addresses change hands) may relay mail without authenticating"
                ),
            )
            .service(place("poplock_time").0)
            .help("`plesk bin mailserver --set-relay auth -lock-time 20` (Plesk's default), or prefer SMTP AUTH and `-auth-type smtp`"),
        );
    }
    NodeSettings {
        relay,
        poplock_minutes,
        pop_disabled,
        smtp_disabled,
    }
}

fn invalid_flag(name: &str, text: &str, on: bool, table: &str, at: &str, db: &str) -> Finding {
    let read = if table == "misc" {
        "relaydoctor reads it as false".to_string()
    } else {
        format!(
            "Plesk compares it with `value=0`, which reads it as {}, so the switch is {}",
            u8::from(on),
            if on { "set" } else { "NOT set" }
        )
    };
    Finding::new(
        "PL026",
        Mta::Plesk,
        format!(
            "{table}.{name}{at} is {:?}, not a flag this table stores ({}); {read}",
            values::escape_visible(text.as_bytes()),
            if table == "misc" {
                "true/false"
            } else {
                "0/1"
            }
        ),
    )
    .service(svc(db, table))
    .help("change the setting with `plesk bin mailserver --set-relay ...` instead of SQL, then `plesk repair mail -y`")
}

fn relay_findings(relay: Option<&str>, place: &(String, String), at: &str, out: &mut Vec<Finding>) {
    let (service, what) = place;
    match relay {
        Some("open") => out.push(
            Finding::new(
                "PL020",
                Mta::Plesk,
                format!(
                    "relay mode is open{at} ({what} = 'open'): the server relays mail for any \
                     client to any domain, so spammers can send through it"
                ),
            )
            .service(service.clone())
            .help("`plesk bin mailserver --set-relay auth` (Tools & Settings > Mail Server Settings > Relaying: authorization is required)"),
        ),
        Some("closed") | Some("auth") => {}
        Some(other) => out.push(
            Finding::new(
                "PL021",
                Mta::Plesk,
                format!(
                    "relay mode {:?}{at} is not one of open, closed, auth; Plesk's mail \
                     configuration from it is unpredictable",
                    values::escape_visible(other.as_bytes())
                ),
            )
            .service(service.clone())
            .help("`plesk bin mailserver --set-relay auth`, then `plesk repair mail -y`"),
        ),
        None => out.push(
            Finding::new(
                "PL021",
                Mta::Plesk,
                format!(
                    "relay mode ({what}){at} is not set; Plesk's mail configuration from it is \
                     unpredictable"
                ),
            )
            .service(service.clone())
            .help("`plesk bin mailserver --set-relay auth`, then `plesk repair mail -y`"),
        ),
    }
}

fn poplock_findings(
    stored: Option<super::model::Stored>,
    place: &(String, String),
    at: &str,
    out: &mut Vec<Finding>,
) -> Option<i64> {
    let (service, what) = place;
    let Some(t) = stored.and_then(|s| s.value) else {
        out.push(
            Finding::new(
                "PL022",
                Mta::Plesk,
                format!(
                    "{what}{at} is not set, so how long a POP/IMAP login allows relaying is \
                     unknown; expired POP locks were not checked"
                ),
            )
            .service(service.clone())
            .severity(Severity::Info),
        );
        return None;
    };
    match values::parse_uint(t.trim().as_bytes()) {
        Some(m) if m > 0 && m <= 525_600 => Some(m as i64),
        _ => {
            out.push(
                Finding::new(
                    "PL022",
                    Mta::Plesk,
                    format!(
                        "{what}{at} {:?} is not a positive number of minutes: POP-before-SMTP \
                         grants may never expire or never work; expired POP locks were not \
                         checked",
                        values::escape_visible(t.as_bytes())
                    ),
                )
                .service(service.clone())
                .help("`plesk bin mailserver --set-relay auth -lock-time 20`"),
            );
            None
        }
    }
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

/// The row's checks in one place.
pub fn fault(row: &RawRow, now: i64, poplock_minutes: Option<i64>) -> Option<Fault> {
    fault_parsed(&Parsed::of(row), now, poplock_minutes)
}

/// A row's columns parsed once.
pub struct Parsed {
    pub ip: Option<IpAddr>,
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
    pub fn net(&self) -> Option<(IpAddr, u32)> {
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

/// Key for duplicate detection: the same address, mask and node, separately for white-list
/// and lock rows. A 64-bit hash keeps 1,000,000 rows in 16 MB; a collision (about 1 in 10^7
/// at that size) could only overstate the duplicate count of the check, never a repair,
/// which compares the rows themselves.
pub fn dup_key(row: &RawRow) -> u64 {
    // FNV-1a over the fields with separators: a quarter of SipHash's cost per row, and no
    // adversary controls which rows a check sees as duplicates (it only counts them).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &c in b {
            h = (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(if row.is_whitelist() { b"W" } else { b"L" });
    for f in [&row.ip, &row.mask, &row.node] {
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

/// The row checks, fed one row at a time while the table streams past.
pub struct RowChecker<'a> {
    now: i64,
    minutes: &'a Minutes,
    pub stats: Stats,
    agg: BTreeMap<Fault, Agg>,
    host_bits: Agg,
    reach: Vec<(RawRow, Reach)>,
    dup_keys: Vec<(u64, i64)>,
    /// White-list entries beyond Plesk's defaults (PL042), the first few, and how many.
    entries: Vec<RawRow>,
    entry_count: u64,
    /// Nodes whose white list lets 127.0.0.1 (webmail) relay.
    loopback: BTreeSet<String>,
    /// Nodes seen in rows, and their POP lock counts.
    locks_by_node: BTreeMap<String, u64>,
}

impl<'a> RowChecker<'a> {
    pub fn new(now: i64, minutes: &'a Minutes) -> RowChecker<'a> {
        RowChecker {
            now,
            minutes,
            stats: Stats::default(),
            agg: BTreeMap::new(),
            host_bits: Agg::default(),
            reach: Vec::new(),
            dup_keys: Vec::new(),
            entries: Vec::new(),
            entry_count: 0,
            loopback: BTreeSet::new(),
            locks_by_node: BTreeMap::new(),
        }
    }

    /// Judge one row; returns its fault, if any (a repair plan keeps the rows it needs).
    pub fn row(&mut self, raw: &RawRow) -> Option<Fault> {
        let s = &mut self.stats;
        s.rows += 1;
        let node = raw.node_id();
        let white = raw.is_whitelist();
        if white {
            s.whitelist += 1;
        } else {
            s.locks += 1;
        }
        let locks = self.locks_by_node.entry(node).or_default();
        if !white {
            *locks += 1;
        }
        let parsed = Parsed::of(raw);
        let fault = fault_parsed(&parsed, self.now, self.minutes.for_row(raw));
        match fault {
            Some(f) => {
                if f == Fault::InvalidIp && raw.ip.as_deref().is_some_and(|b| b.contains(&b':')) {
                    s.invalid_ipv6 += 1;
                }
                match f {
                    Fault::Expired => s.expired += 1,
                    Fault::Future => s.future += 1,
                    _ => s.invalid += 1,
                }
                self.agg.entry(f).or_default().add(raw);
            }
            None => self
                .dup_keys
                .push((dup_key(raw), parsed.lock.unwrap_or(i64::MIN))),
        }
        let Some((ip, m)) = parsed.net() else {
            return fault;
        };
        // Plesk's own 127.0.0.1/8 is written this way: not worth a word.
        if values::host_bits_set(ip, m) && !values::is_default_whitelist(ip, m) {
            self.host_bits.add(raw);
        }
        let reach = values::public_reach(ip, m);
        let reported = reach.is_some();
        if let Some(r) = reach {
            if matches!(r, Reach::Huge(_)) {
                self.stats.open_relay += 1;
            }
            if self.reach.len() < 50 {
                self.reach.push((raw.clone(), r));
            }
        }
        if white {
            if values::covers_loopback(ip, m) {
                self.loopback.insert(raw.node_id());
            }
            // Entries already reported as too wide are not listed again.
            let listed = self.entries.contains(raw);
            if !values::is_default_whitelist(ip, m) && !reported && !listed {
                self.entry_count += 1;
                if self.entries.len() < LISTED_ENTRIES {
                    self.entries.push(raw.clone());
                }
            }
        }
        fault
    }

    /// The findings about the rows. `verdict` gives each node's settings; `duplicated`, when
    /// given, receives the [`dup_key`]s of valid POP locks that occur more than once.
    pub fn finish(
        mut self,
        db: &str,
        schema: &Schema,
        verdict: &SettingsVerdict,
        out: &mut Vec<Finding>,
        duplicated: Option<&mut HashSet<u64>>,
    ) -> Stats {
        self.count_duplicates(duplicated);
        let service = svc(db, TABLE);
        self.fault_findings(&service, schema, out);
        self.whitelist_findings(&service, verdict, out);
        for (node, locks) in &self.locks_by_node {
            let Some(s) = verdict.nodes.get(node) else {
                continue;
            };
            if s.pop_disabled && *locks > 0 {
                out.push(
                    Finding::new(
                        "PL037",
                        Mta::Plesk,
                        format!(
                            "{locks} POP lock row(s) of service node {node} while POP-before-SMTP \
                             is disabled there (disable_pop_auth = 1): leftovers Plesk no longer \
                             maintains"
                        ),
                    )
                    .service(service.clone())
                    .help("`plesk repair mail -y` regenerates the mail server configuration from the settings"),
                );
            }
        }
        self.stats
    }

    fn count_duplicates(&mut self, mut duplicated: Option<&mut HashSet<u64>>) {
        let keys = &mut self.dup_keys;
        keys.sort_unstable();
        let mut i = 0;
        while i < keys.len() {
            let mut j = i + 1;
            while j < keys.len() && keys[j].0 == keys[i].0 {
                j += 1;
            }
            // White-list rows carry i64::MIN as their time (no lock_time).
            if keys[i].1 == i64::MIN {
                self.stats.whitelist_duplicates += (j - i - 1) as u64;
            } else {
                self.stats.duplicates += (j - i - 1) as u64;
                if let (Some(set), true) = (duplicated.as_deref_mut(), j - i > 1) {
                    set.insert(keys[i].0);
                }
            }
            i = j;
        }
        *keys = Vec::new();
    }

    fn fault_findings(&self, service: &str, schema: &Schema, out: &mut Vec<Finding>) {
        for (f, a) in &self.agg {
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
                        "{} POP lock row(s) with lock_time in the future, which may let those \
                         addresses relay until then: {}",
                        a.count,
                        a.list()
                    ),
                ),
                Fault::Expired => (
                    "PL036",
                    format!(
                        "{} POP lock row(s) older than poplock_time still in the table; they \
                         grant nothing, and their piling up means the clean-up is not running: {}",
                        a.count,
                        a.list()
                    ),
                ),
            };
            let mut finding = Finding::new(code, Mta::Plesk, msg)
                .service(service)
                .help(FIX);
            let narrow = schema.ip_width().filter(|w| *w < 39);
            if let (Fault::InvalidIp, Some(w)) = (f, narrow) {
                if self.stats.invalid_ipv6 > 0 {
                    finding = finding.help(format!(
                        "{FIX}. ip_address is varchar({w}), too narrow for IPv6 addresses, which \
                         are cut off"
                    ));
                }
            }
            out.push(finding);
        }
        if self.host_bits.count > 0 {
            out.push(
                Finding::new(
                    "PL032",
                    Mta::Plesk,
                    format!(
                        "{} row(s) have address bits beyond the mask (the network is the address \
                         with those bits cleared; Plesk's default 127.0.0.1/8 is like this): {}",
                        self.host_bits.count,
                        self.host_bits.list()
                    ),
                )
                .service(service),
            );
        }
        if self.stats.duplicates > 0 {
            out.push(
                Finding::new(
                    "PL033",
                    Mta::Plesk,
                    format!(
                        "{} duplicate POP lock row(s): the same address, mask and service node \
                         more than once; only the newest lock counts",
                        self.stats.duplicates
                    ),
                )
                .service(service)
                .help(format!("{FIX} (the newest lock of each address is kept)")),
            );
        }
        if self.stats.whitelist_duplicates > 0 {
            // Harmless repetition in the admin's own list: information only.
            out.push(
                Finding::new(
                    "PL033",
                    Mta::Plesk,
                    format!(
                        "{} duplicate white-list row(s): the same network listed more than once",
                        self.stats.whitelist_duplicates
                    ),
                )
                .service(service)
                .severity(Severity::Info)
                .help("`relaydoctor plesk repair --include-whitelist` keeps one copy of each"),
            );
        }
    }

    fn whitelist_findings(&self, service: &str, verdict: &SettingsVerdict, out: &mut Vec<Finding>) {
        for (row, reach) in &self.reach {
            let kind = if row.is_whitelist() {
                "white-list row"
            } else {
                "POP lock row"
            };
            let (code, why, what) = match reach {
                Reach::Huge(why) => ("PL040", why, "an open relay"),
                Reach::Wide(why) => ("PL043", why, "far more clients than an office has"),
            };
            out.push(
                Finding::new(
                    code,
                    Mta::Plesk,
                    format!(
                        "{kind} {} {why}: every client there may relay mail without \
                         authenticating, {what}",
                        row.describe()
                    ),
                )
                .service(service)
                .help(
                    "narrow or remove it in Tools & Settings > Mail Server Settings > White list \
                     (`relaydoctor plesk repair --include-whitelist` removes only every-address \
                     rows), then `plesk repair mail -y`",
                ),
            );
        }
        for row in &self.entries {
            out.push(
                Finding::new(
                    "PL042",
                    Mta::Plesk,
                    format!(
                        "white-list entry {}: clients there may relay without logging in",
                        row.describe()
                    ),
                )
                .service(service)
                .severity(Severity::Info),
            );
        }
        if self.entry_count > self.entries.len() as u64 {
            out.push(
                Finding::new(
                    "PL042",
                    Mta::Plesk,
                    format!(
                        "and {} more white-list entries beyond Plesk's defaults (--format json \
                         of `plesk repair --include-whitelist` lists rows)",
                        self.entry_count - self.entries.len() as u64
                    ),
                )
                .service(service)
                .severity(Severity::Info),
            );
        }
        let mut nodes: BTreeSet<&String> = verdict.nodes.keys().collect();
        nodes.extend(self.locks_by_node.keys());
        for node in nodes.into_iter().filter(|n| !self.loopback.contains(*n)) {
            out.push(
                Finding::new(
                    "PL044",
                    Mta::Plesk,
                    format!(
                        "the white list of service node {node} has no entry for 127.0.0.1 \
                         (Plesk's default is 127.0.0.1/8 and ::1/128): webmail on this server \
                         sends through local SMTP and gets \"Relay access denied\""
                    ),
                )
                .service(service)
                .help(
                    "add 127.0.0.1/8 back in Tools & Settings > Mail Server Settings > White list",
                ),
            );
        }
    }
}

/// PL010/PL011: what reading the table and CHECK TABLE said about its files.
pub fn health(
    db: &str,
    damage: &[Damage],
    check: &CheckTable,
    scan_failed: bool,
    out: &mut Vec<Finding>,
) {
    let service = svc(db, TABLE);
    for d in damage {
        let detail = if check.errors.is_empty() {
            String::new()
        } else {
            format!(
                " (CHECK TABLE: {})",
                values::escape_visible(check.errors.join("; ").as_bytes())
            )
        };
        out.push(
            Finding::new(
                "PL010",
                Mta::Plesk,
                format!(
                    "{db}.{TABLE}: {}{detail}; while it lasts Plesk cannot read or update the \
                     POP locks and the white list{}",
                    d.what,
                    if scan_failed {
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
                "InnoDB does not support REPAIR TABLE: see the server's error log; real \
                 corruption needs innodb_force_recovery and a dump and reload"
            }),
        );
    }
    if !check.failed && damage.is_empty() && !check.warnings.is_empty() {
        out.push(
            Finding::new(
                "PL011",
                Mta::Plesk,
                format!(
                    "CHECK TABLE {db}.{TABLE} warns: {}",
                    values::escape_visible(check.warnings.join("; ").as_bytes())
                ),
            )
            .service(service)
            .help(
                "`relaydoctor plesk repair --apply` runs REPAIR TABLE on MyISAM/Aria when needed",
            ),
        );
    }
}

/// PL001: the table is missing.
pub fn missing_table(db: &str) -> Finding {
    Finding::new(
        "PL001",
        Mta::Plesk,
        format!(
            "table {db}.{TABLE} does not exist: Plesk cannot record POP-before-SMTP grants or \
             the relay white list"
        ),
    )
    .service(svc(db, TABLE))
    .help("`plesk repair db -y` recreates missing psa tables")
}

/// PL041: a work table of an interrupted repair.
pub fn leftover(db: &str, table: &str) -> Finding {
    let what = if table == NEW_TABLE {
        "the repaired copy that was never swapped in"
    } else {
        "the old table a swap moved aside"
    };
    Finding::new(
        "PL041",
        Mta::Plesk,
        format!(
            "work table {db}.{table} ({what}) was left behind by an interrupted `relaydoctor \
             plesk repair --apply`; on MariaDB 10.6 and later the swap is crash-safe, so \
             {TABLE} is either unchanged or fully repaired; on older servers check that \
             {TABLE} exists"
        ),
    )
    .service(svc(db, TABLE))
    .help("the next `relaydoctor plesk repair --apply` drops it")
}
