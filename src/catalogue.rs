//! The rule catalogue: every rule's code, name, category, severity and explanation, kept as
//! TOML under rules/ and compiled into the binary.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::finding::Severity;

/// The categories a finding may have (the foundation issue fixes this list).
pub const CATEGORIES: &[&str] = &[
    "syntax",
    "open-relay",
    "auth-relay-denied",
    "relay-denied",
    "mail-refused",
    "plaintext-auth",
    "risky-callout",
    "risky-dnsbl",
    "upgrade",
    "stale-map",
    "missing-file",
    "db-integrity",
    "db-settings",
    "mx-misrouted",
    "reverse-dns",
    "tls",
    "config-drift",
];

/// The catalogue files, one per MTA, embedded at build time as JSON (build.rs converts
/// rules/*.toml; the name is the TOML file's).
/// (TOML file, its JSON) for one rules/ table.
macro_rules! table {
    ($name:literal) => {
        (
            concat!("rules/", $name, ".toml"),
            include_str!(concat!(env!("OUT_DIR"), "/", $name, ".json")),
        )
    };
}

pub const SOURCES: &[(&str, &str)] = &[
    table!("general"),
    table!("postfix"),
    table!("exim"),
    table!("qmail"),
    table!("plesk"),
    table!("dns"),
    table!("probe"),
];

#[derive(Debug, Clone, Deserialize)]
struct RawRule {
    code: String,
    name: String,
    category: String,
    severity: String,
    summary: String,
    explanation: String,
    #[serde(default)]
    bad: Option<String>,
    #[serde(default)]
    good: Option<String>,
    #[serde(default)]
    references: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub code: String,
    pub name: String,
    pub category: String,
    pub severity: Severity,
    pub summary: String,
    pub explanation: String,
    /// An example of the configuration that triggers the rule.
    pub bad: Option<String>,
    /// The same example, corrected.
    pub good: Option<String>,
    pub references: Vec<String>,
}

/// Parse and validate catalogue text. Errors name the file and the rule.
pub fn parse(file: &str, text: &str) -> Result<Vec<Rule>, String> {
    let raw: RawFile = serde_json::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    raw.rule
        .into_iter()
        .map(|r| {
            let severity = Severity::parse(&r.severity)
                .ok_or_else(|| format!("{file}: {}: bad severity {:?}", r.code, r.severity))?;
            if !CATEGORIES.contains(&r.category.as_str()) {
                return Err(format!("{file}: {}: bad category {:?}", r.code, r.category));
            }
            Ok(Rule {
                code: r.code,
                name: r.name,
                category: r.category,
                severity,
                summary: r.summary,
                explanation: r.explanation,
                bad: r.bad,
                good: r.good,
                references: r.references,
            })
        })
        .collect()
}

/// The rules of one catalogue file, parsed on first use. The files are compiled in, so a
/// parse error is a build defect: the test suite parses every file (and debug builds stop
/// here); a release build skips the file rather than crash on a user's machine.
fn file_rules(index: usize) -> &'static [Rule] {
    static FILES: [OnceLock<Vec<Rule>>; 7] = [const { OnceLock::new() }; 7];
    FILES[index].get_or_init(|| {
        let (file, text) = SOURCES[index];
        parse(file, text).unwrap_or_else(|e| {
            debug_assert!(false, "internal error in rule catalogue {file}: {e}");
            Vec::new()
        })
    })
}

/// All rules by code.
pub fn all() -> &'static BTreeMap<String, Rule> {
    static CAT: OnceLock<BTreeMap<String, Rule>> = OnceLock::new();
    CAT.get_or_init(|| {
        (0..SOURCES.len())
            .flat_map(file_rules)
            .map(|r| (r.code.clone(), r.clone()))
            .collect()
    })
}

/// One rule. Only the catalogue file of the code's prefix is parsed: a Postfix-only run
/// does not pay for parsing the Exim, qmail and Plesk catalogues (startup time counts in
/// the benchmarks against postconf).
pub fn get(code: &str) -> Option<&'static Rule> {
    let index = match code.get(..2) {
        Some("RD") => 0,
        Some("PF") => 1,
        Some("EX") => 2,
        Some("QM") => 3,
        Some("PL") => 4,
        Some("DN") => 5,
        Some("PR") => 6,
        _ => return all().get(code),
    };
    file_rules(index).iter().find(|r| r.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_file_parses_and_codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (file, text) in SOURCES {
            let rules = parse(file, text).unwrap();
            for r in rules {
                assert!(seen.insert(r.code.clone()), "duplicate code {}", r.code);
                assert!(!r.summary.is_empty() && !r.explanation.is_empty());
                assert!(
                    r.name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                    "{} name must be kebab-case",
                    r.code
                );
            }
        }
    }
}
