//! The repair plan: which rows of smtp_poplocks go, computed from the rows themselves (the
//! table has no key, so a row is identified only by its values and how many identical copies
//! exist).

use std::fmt::Write as _;

use std::collections::BTreeMap;

use super::checks::{fault, Fault};
use super::connect::ident;
use super::inspect::Inspection;
use super::model::{NODE_COLUMN, TABLE};
use super::values::{self, sql_literal, RawRow};

/// One distinct row value: `count` identical copies were read, `keep` of them stay.
#[derive(Debug, Clone)]
pub struct Group {
    pub row: RawRow,
    pub count: u64,
    pub keep: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    Invalid,
    Future,
    Expired,
    Duplicate,
    WhitelistInvalid,
    WhitelistOpen,
    WhitelistDuplicate,
}

impl Reason {
    pub fn title(self) -> &'static str {
        match self {
            Reason::Invalid => "invalid POP lock rows (address, mask or lock_time)",
            Reason::Future => "POP lock rows with lock_time in the future",
            Reason::Expired => "expired POP lock rows",
            Reason::Duplicate => {
                "duplicate POP lock rows (the newest lock of each address is kept)"
            }
            Reason::WhitelistInvalid => "invalid white-list rows",
            Reason::WhitelistOpen => "white-list rows that match every address (open relay)",
            Reason::WhitelistDuplicate => "duplicate white-list rows (one copy is kept)",
        }
    }
    pub fn key(self) -> &'static str {
        match self {
            Reason::Invalid => "invalid",
            Reason::Future => "future",
            Reason::Expired => "expired",
            Reason::Duplicate => "duplicate",
            Reason::WhitelistInvalid => "whitelist-invalid",
            Reason::WhitelistOpen => "whitelist-open-relay",
            Reason::WhitelistDuplicate => "whitelist-duplicate",
        }
    }
}

/// One delete operation: the groups it touches, for one reason.
#[derive(Debug, Clone)]
pub struct DeleteOp {
    pub reason: Reason,
    pub groups: Vec<Group>,
    /// Rows deleted but not listed in `groups` (expired locks beyond the sample, deleted by
    /// the expiry predicate).
    pub unlisted: u64,
}

impl DeleteOp {
    pub fn deleted(&self) -> u64 {
        self.groups.iter().map(|g| g.count - g.keep).sum::<u64>() + self.unlisted
    }
    /// The rows deleted and listed, one entry per copy.
    pub fn rows(&self) -> impl Iterator<Item = &RawRow> {
        self.groups
            .iter()
            .flat_map(|g| std::iter::repeat_n(&g.row, (g.count - g.keep) as usize))
    }
}

#[derive(Debug, Default)]
pub struct Plan {
    pub repair_table: bool,
    pub deletes: Vec<DeleteOp>,
    /// The rows could not be read (damaged table): deletions are planned after the repair.
    pub rows_unknown: bool,
    /// Expired POP locks are exactly the rows with a valid lock_time before their node's
    /// instant (server time of the scan minus that node's poplock_time), so they are
    /// deleted by that predicate instead of value by value (see repair.rs). Keyed by node
    /// id; on a table without serviceNodeId the one key is "1".
    pub expired_before: BTreeMap<String, i64>,
    /// The table has serviceNodeId (Plesk 17.8+).
    pub has_node: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        !self.repair_table && self.deletes.is_empty()
    }
    pub fn deleted(&self) -> u64 {
        self.deletes.iter().map(DeleteOp::deleted).sum()
    }
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.deletes.iter().flat_map(|d| d.groups.iter())
    }
    /// The groups deleted by value (all but the expired ones).
    pub fn by_value(&self) -> impl Iterator<Item = &Group> {
        self.deletes
            .iter()
            .filter(|d| d.reason != Reason::Expired)
            .flat_map(|d| d.groups.iter())
    }
    /// Copies of expired rows to delete by the cutoff predicate.
    pub fn expired_rows(&self) -> u64 {
        self.deletes
            .iter()
            .filter(|d| d.reason == Reason::Expired)
            .map(DeleteOp::deleted)
            .sum()
    }
}

/// A distinct row value and its copies, borrowed while deciding.
struct GroupRef<'a> {
    row: &'a RawRow,
    count: u64,
}

/// Decide. Lock rows go when invalid, in the future, expired, or older duplicates of the
/// same address and mask (the newest lock is the one that counts; of identical copies one
/// stays). White-list rows (lock_time NULL) are never touched unless `include_whitelist`.
pub fn plan(insp: &mut Inspection, include_whitelist: bool) -> Plan {
    let mut plan = Plan {
        repair_table: insp.damage.iter().any(|d| d.repairable),
        rows_unknown: insp.scan_failed,
        ..Plan::default()
    };
    let Some(mut rows) = insp.rows.take() else {
        return plan;
    };
    plan.has_node = insp.schema.has_node();
    plan.expired_before = insp
        .minutes()
        .0
        .iter()
        // Node ids go into SQL: only plain numbers (they come from an int column).
        .filter(|(n, _)| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
        .map(|(n, m)| (n.clone(), insp.now - m * 60))
        .collect();
    rows.sort_unstable();
    // Identical rows become one group with a count, compacted in place (a second vector of
    // a million groups would double the memory of a large repair).
    let mut counts: Vec<u64> = Vec::new();
    let mut w = 0usize;
    for r in 0..rows.len() {
        if w > 0 && rows[r] == rows[w - 1] {
            if let Some(c) = counts.last_mut() {
                *c += 1;
            }
        } else {
            rows.swap(w, r);
            counts.push(1);
            w += 1;
        }
    }
    rows.truncate(w);
    rows.shrink_to_fit();
    let groups: Vec<GroupRef> = rows
        .iter()
        .zip(&counts)
        .map(|(row, &count)| GroupRef { row, count })
        .collect();
    // Decide per group first, then move the chosen groups into their operations (no copies
    // of a million rows).
    let mut decision: Vec<Option<(Reason, u64)>> = vec![None; groups.len()];
    let now = insp.now;
    let mut i = 0;
    while i < groups.len() {
        // All groups of one (address, mask, node): NULL lock_time sorts first.
        let mut j = i + 1;
        while j < groups.len()
            && groups[j].row.ip == groups[i].row.ip
            && groups[j].row.mask == groups[i].row.mask
            && groups[j].row.node == groups[i].row.node
        {
            j += 1;
        }
        let minutes = insp.minutes().for_row(groups[i].row);
        let mut newest: Option<(i64, usize)> = None;
        let mut valid_locks = Vec::new();
        for k in i..j {
            let g = &groups[k];
            let f = fault(g.row, now, minutes);
            if g.row.is_whitelist() {
                if !include_whitelist {
                    continue;
                }
                let open = g.row.ip.as_deref().and_then(values::parse_ip).is_some()
                    && g.row.mask.as_deref().and_then(values::parse_uint) == Some(0);
                decision[k] = match f {
                    Some(_) => Some((Reason::WhitelistInvalid, 0)),
                    None if open => Some((Reason::WhitelistOpen, 0)),
                    None if g.count > 1 => Some((Reason::WhitelistDuplicate, 1)),
                    None => None,
                };
                continue;
            }
            match f {
                Some(f) => {
                    let reason = match f {
                        Fault::Expired => Reason::Expired,
                        Fault::Future => Reason::Future,
                        _ => Reason::Invalid,
                    };
                    decision[k] = Some((reason, 0));
                }
                None => {
                    let t = g
                        .row
                        .lock
                        .as_deref()
                        .and_then(values::parse_datetime)
                        .unwrap_or(i64::MIN);
                    if newest.is_none_or(|(nt, _)| t >= nt) {
                        newest = Some((t, k));
                    }
                    valid_locks.push(k);
                }
            }
        }
        // Valid lock rows of this address: keep one copy of the newest.
        for k in valid_locks {
            let is_newest = newest.is_some_and(|(_, nk)| nk == k);
            if !is_newest {
                decision[k] = Some((Reason::Duplicate, 0));
            } else if groups[k].count > 1 {
                decision[k] = Some((Reason::Duplicate, 1));
            }
        }
        i = j;
    }
    drop(groups);
    let mut ops: std::collections::BTreeMap<Reason, Vec<Group>> = Default::default();
    for ((row, count), d) in rows.into_iter().zip(counts).zip(decision) {
        if let Some((reason, keep)) = d {
            ops.entry(reason)
                .or_default()
                .push(Group { row, count, keep });
        }
    }
    let unlisted = insp.expired_unlisted;
    plan.deletes = ops
        .into_iter()
        .map(|(reason, groups)| DeleteOp {
            reason,
            groups,
            unlisted: if reason == Reason::Expired {
                unlisted
            } else {
                0
            },
        })
        .collect();
    plan
}

/// The WHERE clause that matches one row value exactly: byte-wise on the address (a
/// PAD SPACE collation would otherwise match '10.0.0.1 ' with '10.0.0.1') and NULL-safe.
fn where_row(r: &RawRow) -> String {
    let eq = |col: &str, v: &Option<Vec<u8>>, binary: bool| match v {
        None => format!("{col} IS NULL"),
        Some(_) if col == "ip_mask" => format!("{col} = {}", mask_literal(v.as_deref())),
        Some(_) => format!(
            "{}{col} = {}",
            if binary { "BINARY " } else { "" },
            sql_literal(v.as_deref())
        ),
    };
    let node = match &r.node {
        Some(n) => format!(" AND {} = {}", ident(NODE_COLUMN), mask_literal(Some(n))),
        None => String::new(),
    };
    format!(
        "{} AND {} AND {}{node}",
        eq("ip_address", &r.ip, true),
        eq("ip_mask", &r.mask, false),
        eq("lock_time", &r.lock, false)
    )
}

/// ip_mask is an integer column: written as a number when it is one.
pub fn mask_literal(v: Option<&[u8]>) -> String {
    match v.and_then(values::parse_uint) {
        Some(n) => n.to_string(),
        None => sql_literal(v),
    }
}

/// The values of the columns relaydoctor knows, for the plan table of a repair.
pub fn insert_values(r: &RawRow) -> String {
    format!(
        "({}, {}, {})",
        sql_literal(r.ip.as_deref()),
        mask_literal(r.mask.as_deref()),
        sql_literal(r.lock.as_deref())
    )
}

/// The expiry predicate on the live table (alias `p`, may be empty); never NULL, so NOT
/// works on it. Per node where the table has nodes.
pub fn expired_predicate(plan: &Plan, alias: &str) -> String {
    if plan.expired_rows() == 0 || plan.expired_before.is_empty() {
        return "FALSE".into();
    }
    let parts: Vec<String> = plan
        .expired_before
        .iter()
        .map(|(node, cut)| {
            let node = if plan.has_node {
                format!("{alias}{} = {node} AND ", ident(NODE_COLUMN))
            } else {
                String::new()
            };
            format!(
                "({node}{alias}lock_time IS NOT NULL AND {alias}lock_time < '{}')",
                values::format_datetime(*cut)
            )
        })
        .collect();
    format!("({})", parts.join(" OR "))
}

/// The SQL of one operation as an admin could run it by hand: each distinct row value is
/// deleted by its full value (never by position), and where copies are kept, LIMIT leaves
/// them. relaydoctor runs the equivalent set-based statements (repair.rs).
pub fn op_sql(db: &str, op: &DeleteOp, limit: Option<usize>, plan: &Plan) -> String {
    let t = format!("{}.{}", ident(db), ident(TABLE));
    let mut s = String::new();
    if op.reason == Reason::Expired && !plan.expired_before.is_empty() {
        // Exactly the rows listed: verified under the lock before it runs.
        let _ = writeln!(s, "DELETE FROM {t} WHERE {};", expired_predicate(plan, ""));
        return s;
    }
    for (n, g) in op.groups.iter().enumerate() {
        if limit.is_some_and(|l| n >= l) {
            let _ = writeln!(
                s,
                "-- ... and {} more row values (all of them in --format json)",
                op.groups.len() - n
            );
            break;
        }
        // Copies that stay are never deleted and re-inserted: LIMIT leaves them whole,
        // with every column (serviceNodeId and any the table has beyond those known).
        let limit = if g.keep > 0 {
            format!(" LIMIT {}", g.count - g.keep)
        } else {
            String::new()
        };
        let _ = writeln!(s, "DELETE FROM {t} WHERE {}{limit};", where_row(&g.row));
    }
    s
}

pub fn repair_sql(db: &str) -> String {
    format!("REPAIR TABLE {}.{};\n", ident(db), ident(TABLE))
}

/// A unified diff of the affected rows before and after (similar). Large plans are cut to
/// `max_groups` row values so the diff stays readable and fast.
pub fn diff(db: &str, plan: &Plan, max_groups: usize) -> String {
    let mut groups: Vec<&Group> = plan.groups().collect();
    groups.sort_by(|a, b| a.row.cmp(&b.row));
    let shown = groups.len().min(max_groups);
    let mut before = String::new();
    let mut after = String::new();
    for g in &groups[..shown] {
        let line = g.row.diff_line();
        for _ in 0..g.count {
            before.push_str(&line);
        }
        for _ in 0..g.keep {
            after.push_str(&line);
        }
    }
    let d = similar::TextDiff::configure()
        .timeout(std::time::Duration::from_secs(2))
        .diff_lines(&before, &after);
    let mut out = d
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{db}.{TABLE} (affected rows, before)"),
            &format!("{db}.{TABLE} (affected rows, after)"),
        )
        .to_string();
    if groups.len() > shown {
        let _ = writeln!(
            out,
            "... {} more affected row values not shown (--format json lists them; every deleted row is in the backup)",
            groups.len() - shown
        );
    }
    out
}
