//! Converts the TOML tables under rules/ into JSON in OUT_DIR, which the binary embeds.
//! The tables stay TOML for the people who edit them; at run time serde_json reads the same
//! data several times faster than the TOML parser, and a lint parses up to 120 KB of them on
//! every start (scripts/bench postfix measures startup against postconf).

use std::path::PathBuf;

/// Every rules/ file the binary embeds (src/catalogue.rs, src/postfix/params.rs,
/// src/dnsbl.rs name them by the same stem).
const TABLES: &[&str] = &[
    "general",
    "postfix",
    "exim",
    "qmail",
    "plesk",
    "dns",
    "probe",
    "postfix-params",
    "postfix-param-versions",
    "dnsbl",
];

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    for name in TABLES {
        let path = format!("rules/{name}.toml");
        println!("cargo:rerun-if-changed={path}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let json = serde_json::to_string(&value).expect("TOML values convert to JSON");
        std::fs::write(out.join(format!("{name}.json")), json).expect("write OUT_DIR");
    }
}
