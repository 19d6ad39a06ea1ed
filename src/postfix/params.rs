//! Parameter data from rules/postfix-params.toml: built-in defaults, names known per
//! version, raw (unexpanded) parameters, per-service name suffixes, deprecations.

use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

pub const SOURCE: &str = include_str!("../../rules/postfix-params.toml");

/// A Postfix release `major.minor[.patch]`, comparable.
pub type Version = (u64, u64, u64);

pub fn parse_version(s: &str) -> Option<Version> {
    super::expand::parse_level(s)
}

pub fn show_version(v: Version) -> String {
    if v.2 == 0 {
        format!("{}.{}", v.0, v.1)
    } else {
        format!("{}.{}.{}", v.0, v.1, v.2)
    }
}

#[derive(Debug, Deserialize)]
struct Raw {
    newest_version: String,
    #[serde(default)]
    raw_params: Vec<String>,
    #[serde(default)]
    service_param_suffixes: Vec<String>,
    #[serde(default)]
    versioned_default: Vec<VersionedDefault>,
    #[serde(default)]
    newer_param: Vec<NewerParam>,
    #[serde(default)]
    deprecated: Vec<Deprecated>,
    defaults: HashMap<String, String>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct VersionedDefault {
    pub name: String,
    pub before: String,
    pub value: String,
    pub why: String,
}

#[derive(Debug, Deserialize, Clone)]
pub struct NewerParam {
    pub name: String,
    pub since: String,
}

#[derive(Debug, Deserialize, Clone)]
pub struct Deprecated {
    pub name: String,
    pub kind: String,
    pub warn: String,
    pub removed: String,
    pub replacement: String,
    #[serde(default)]
    pub rename: bool,
}

#[derive(Debug)]
pub struct Params {
    pub newest: Version,
    pub defaults: HashMap<String, String>,
    pub raw: HashSet<String>,
    pub service_suffixes: Vec<String>,
    pub versioned: Vec<VersionedDefault>,
    pub newer: Vec<NewerParam>,
    pub deprecated: Vec<Deprecated>,
}

impl Params {
    /// The built-in default of `name` for Postfix `version` (None: not a built-in parameter
    /// of that version). Host-specific defaults are handled by the model.
    pub fn default_for(&self, name: &str, version: Version) -> Option<&str> {
        for v in &self.versioned {
            if v.name == name && parse_version(&v.before).is_some_and(|b| version < b) {
                return Some(&v.value);
            }
        }
        if let Some(d) = self.defaults.get(name) {
            return Some(d);
        }
        self.newer
            .iter()
            .find(|n| n.name == name && parse_version(&n.since).is_some_and(|s| version >= s))
            .map(|_| "")
    }

    /// Whether `name` is a built-in parameter of some version relaydoctor knows.
    pub fn is_known(&self, name: &str) -> bool {
        self.defaults.contains_key(name)
            || self.newer.iter().any(|n| n.name == name)
            || self.legacy().contains(name)
    }

    /// Names that built-in defaults refer to without being parameters themselves: the old
    /// names of renamed parameters (`smtp_fallback_relay = $fallback_relay`,
    /// `postscreen_dnsbl_max_ttl = ${postscreen_dnsbl_ttl?...}`). postconf counts them as used,
    /// so setting them is not "unknown" (it may be deprecated).
    pub fn legacy(&self) -> &HashSet<String> {
        static L: OnceLock<HashSet<String>> = OnceLock::new();
        L.get_or_init(|| {
            let mut out = HashSet::new();
            // Raw parameters' `$name`s are per-message macros ($client_address), not parameters.
            for (_, v) in self
                .defaults
                .iter()
                .filter(|(k, v)| v.contains('$') && !self.raw.contains(k.as_str()))
            {
                for (_, n) in super::expand::references(v) {
                    if !self.defaults.contains_key(n) {
                        out.insert(n.to_string());
                    }
                }
            }
            out
        })
    }

    /// All built-in names (for "did you mean").
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defaults
            .keys()
            .map(String::as_str)
            .chain(self.newer.iter().map(|n| n.name.as_str()))
    }

    pub fn deprecation(&self, name: &str) -> Option<&Deprecated> {
        // Called for every word of every restriction list: index once.
        static IDX: OnceLock<HashMap<String, usize>> = OnceLock::new();
        let idx = IDX.get_or_init(|| {
            self.deprecated
                .iter()
                .enumerate()
                .map(|(i, d)| (d.name.clone(), i))
                .collect()
        });
        idx.get(name).and_then(|&i| self.deprecated.get(i))
    }
}

pub fn get() -> &'static Params {
    static P: OnceLock<Params> = OnceLock::new();
    P.get_or_init(|| match toml::from_str::<Raw>(SOURCE) {
        Ok(r) => Params {
            newest: parse_version(&r.newest_version).unwrap_or((3, 11, 0)),
            defaults: r.defaults,
            raw: r.raw_params.into_iter().collect(),
            service_suffixes: r.service_param_suffixes,
            versioned: r.versioned_default,
            newer: r.newer_param,
            deprecated: r.deprecated,
        },
        Err(e) => {
            // The embedded table is checked by the tests; never crash a user's run over it.
            eprintln!("relaydoctor: internal error in rules/postfix-params.toml: {e}");
            Params {
                newest: (3, 11, 0),
                defaults: HashMap::new(),
                raw: HashSet::new(),
                service_suffixes: Vec::new(),
                versioned: Vec::new(),
                newer: Vec::new(),
                deprecated: Vec::new(),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_has_what_the_rules_need() {
        let p = toml::from_str::<Raw>(SOURCE).unwrap();
        assert!(p.defaults.len() > 800);
        let p = get();
        for n in [
            "smtpd_relay_restrictions",
            "mynetworks_style",
            "relay_domains",
            "mydestination",
            "virtual_alias_domains",
            "virtual_mailbox_domains",
            "inet_interfaces",
            "proxy_interfaces",
            "compatibility_level",
            "smtpd_sasl_auth_enable",
            "smtpd_tls_security_level",
        ] {
            assert!(p.is_known(n), "{n}");
        }
        assert_eq!(
            p.default_for("smtpd_recipient_restrictions", (2, 9, 0)),
            Some("permit_mynetworks, reject_unauth_destination")
        );
        assert_eq!(
            p.default_for("smtpd_recipient_restrictions", (3, 7, 0)),
            Some("")
        );
        assert!(p.default_for("smtpd_tls_enable_rpk", (3, 7, 0)).is_none());
        assert!(p.default_for("smtpd_tls_enable_rpk", (3, 9, 0)).is_some());
        for d in &p.deprecated {
            assert!(parse_version(&d.warn).is_some(), "{}", d.name);
            assert!(d.removed.is_empty() || parse_version(&d.removed).is_some());
            assert!(d.kind == "parameter" || d.kind == "restriction");
        }
    }
}
