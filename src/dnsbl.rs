//! The DNS blocklist table (rules/dnsbl.toml): defunct, aggressive and filter-needing zones.
//! Shared by the MTA checkers so that Postfix and Exim judge the same zone the same way.

use std::sync::OnceLock;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Shut down; may now answer "listed" for everything or nothing.
    Defunct,
    /// Lists whole networks or providers: refuses much legitimate mail.
    Aggressive,
    /// Usable only with a reply filter (e.g. Spamhaus, which answers 127.255.255.x errors).
    Filter,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Zone {
    pub zone: String,
    pub kind: Kind,
    /// When it was shut down (defunct zones).
    #[serde(default)]
    pub since: Option<String>,
    /// What it does now / why it is risky.
    #[serde(default)]
    pub now: Option<String>,
    /// The reply filter to use (Postfix `zone=FILTER` syntax), for filter zones.
    #[serde(default)]
    pub filter: Option<String>,
    /// A domain list (RHSBL): it answers an error, or nothing, to client IP queries.
    #[serde(default)]
    pub domains: bool,
}

#[derive(Deserialize)]
struct Table {
    zone: Vec<Zone>,
}

fn table() -> &'static [Zone] {
    static T: OnceLock<Vec<Zone>> = OnceLock::new();
    T.get_or_init(|| {
        // The table is part of the binary and tested (tests below); a broken edit yields an
        // empty table rather than a panic at run time.
        serde_json::from_str::<Table>(include_str!(concat!(env!("OUT_DIR"), "/dnsbl.json")))
            .map(|t| t.zone)
            .unwrap_or_default()
    })
}

/// The table entry for `zone` (case-insensitive, trailing dot ignored), matching the zone
/// itself or any name under it: `dnsbl.sorbs.net` finds `sorbs.net`.
pub fn lookup(zone: &str) -> Option<&'static Zone> {
    let z = zone.trim().trim_end_matches('.').to_ascii_lowercase();
    table()
        .iter()
        .filter(|e| z == e.zone || z.ends_with(&format!(".{}", e.zone)))
        .max_by_key(|e| e.zone.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_matches_subzones() {
        assert!(table().len() >= 15);
        assert_eq!(
            lookup("dnsbl.sorbs.net").map(|z| z.kind),
            Some(Kind::Defunct)
        );
        assert_eq!(
            lookup("ZEN.spamhaus.org.").map(|z| z.kind),
            Some(Kind::Filter)
        );
        assert_eq!(
            lookup("dnsbl-3.uceprotect.net").map(|z| z.kind),
            Some(Kind::Aggressive)
        );
        assert!(lookup("dnsbl-1.uceprotect.net").is_none());
        assert!(lookup("notsorbs.net").is_none());
        assert!(lookup("list.dnswl.org").is_none());
    }
}
