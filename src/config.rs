//! `relaydoctor.toml`: project or machine settings for lint (select/ignore, per-path
//! ignores, severity overrides, fail-on). Searched in the current directory, then
//! /etc/relaydoctor.toml, unless `--config PATH` names one.

use globset::{Glob, GlobMatcher};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::finding::{Finding, Severity};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    select: Vec<String>,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    fail_on: Option<String>,
    /// Rule code -> severity.
    #[serde(default)]
    severity: BTreeMap<String, String>,
    /// Glob over the displayed file path -> codes or prefixes to ignore there.
    #[serde(default)]
    per_path_ignores: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default)]
pub struct Config {
    /// Where it was read from (None: no file).
    pub path: Option<PathBuf>,
    pub select: Vec<String>,
    pub ignore: Vec<String>,
    pub fail_on: Option<Severity>,
    pub severity: BTreeMap<String, Severity>,
    per_path: Vec<(GlobMatcher, Vec<String>)>,
}

impl Config {
    /// Load `explicit`, or the first of ./relaydoctor.toml and /etc/relaydoctor.toml that
    /// exists. A named file that is missing or malformed is an error; so is a found one that
    /// is malformed (a silently ignored settings file is worse than none).
    pub fn load(explicit: Option<&Path>) -> Result<Config, String> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => ["relaydoctor.toml", "/etc/relaydoctor.toml"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file()),
        };
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let mut c = Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        c.path = Some(path);
        Ok(c)
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: Raw = toml::from_str(text).map_err(|e| e.to_string())?;
        let sev = |s: &str| {
            Severity::parse(s).ok_or_else(|| format!("{s:?} is not one of error, warning, info"))
        };
        let mut severity = BTreeMap::new();
        for (code, s) in &raw.severity {
            severity.insert(code.to_ascii_uppercase(), sev(s)?);
        }
        let mut per_path = Vec::new();
        for (glob, codes) in raw.per_path_ignores {
            let m = Glob::new(&glob)
                .map_err(|e| format!("per-path-ignores: {glob:?}: {e}"))?
                .compile_matcher();
            per_path.push((m, codes));
        }
        Ok(Config {
            path: None,
            select: raw.select,
            ignore: raw.ignore,
            fail_on: raw.fail_on.as_deref().map(sev).transpose()?,
            severity,
            per_path,
        })
    }

    /// Apply severity overrides and per-path ignores.
    pub fn apply(&self, findings: &mut Vec<Finding>) {
        for f in findings.iter_mut() {
            if let Some(s) = self.severity.get(&f.code) {
                f.severity = *s;
            }
        }
        if self.per_path.is_empty() {
            return;
        }
        findings.retain(|f| {
            let Some(loc) = &f.location else { return true };
            !self.per_path.iter().any(|(m, codes)| {
                m.is_match(&loc.file)
                    && codes
                        .iter()
                        .any(|c| f.code.starts_with(&c.trim().to_ascii_uppercase()))
            })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Mta;

    #[test]
    fn parses_and_applies() {
        let c = Config::parse(
            r#"
select = ["PF"]
ignore = ["PF2"]
fail-on = "error"
[severity]
RD003 = "info"
[per-path-ignores]
"etc/postfix-out/*" = ["RD"]
"#,
        )
        .unwrap();
        assert_eq!(c.fail_on, Some(Severity::Error));
        let mk = |file: &str| {
            Finding::new("RD003", Mta::Postfix, "m").at(crate::finding::Location {
                file: file.into(),
                line: 1,
                column: 1,
                end_line: 1,
                end_column: 1,
            })
        };
        let mut v = vec![mk("etc/postfix/main.cf"), mk("etc/postfix-out/main.cf")];
        c.apply(&mut v);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].severity, Severity::Info);
        assert!(Config::parse("fail-on = \"loud\"").is_err());
        assert!(Config::parse("nonsense = 1").is_err());
    }
}
