//! `relaydoctor report`: many hosts' result files (lint, plesk check, dns, probe; JSON
//! version 1) merged into one fleet view.
//!
//! Files are read one at a time and only what the report shows is kept (compact findings with
//! interned codes, categories and help texts), so ten thousand hosts fit in a few tens of MB.
//! The renderers are in `report/fleet/`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::finding::Severity;
use crate::outcome::Failure;

/// One finding as the fleet report keeps it.
#[derive(Debug, Clone)]
pub struct Item {
    pub code: Arc<str>,
    pub category: Arc<str>,
    pub severity: Severity,
    pub file: String,
    pub line: u64,
    pub service: Option<String>,
    pub message: String,
    pub help: Option<Arc<str>>,
    /// Which result file (kind) it came from: lint, plesk, dns, probe.
    pub kind: Arc<str>,
}

impl Item {
    /// Identity across runs: line numbers move when files are edited, the rest does not.
    pub fn key(&self, host: &str) -> String {
        format!(
            "{host}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.code,
            self.file,
            self.service.as_deref().unwrap_or(""),
            self.message
        )
    }
}

/// Everything known about one host.
#[derive(Debug, Default)]
pub struct HostResult {
    pub name: String,
    /// The result files read for it.
    pub sources: Vec<String>,
    pub findings: Vec<Item>,
    /// Checks that could not run on it (a result file holding `"error"`): what failed.
    pub failed: Vec<String>,
}

impl HostResult {
    pub fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }

    pub fn open_relay(&self) -> bool {
        self.findings
            .iter()
            .any(|f| &*f.category == "open-relay" && f.severity == Severity::Error)
    }

    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Ranking: open relays first, then hosts a check could not run on, then by errors,
    /// warnings, info (most first), then name.
    fn rank_key(&self) -> (bool, bool, usize, usize, usize) {
        (
            self.open_relay(),
            !self.failed.is_empty(),
            self.count(Severity::Error),
            self.count(Severity::Warning),
            self.count(Severity::Info),
        )
    }
}

/// Fleet-wide counts for one rule.
#[derive(Debug, Default)]
pub struct RuleCount {
    pub category: String,
    pub severity: Option<Severity>,
    pub count: usize,
    pub hosts: BTreeSet<String>,
}

/// A finding that appeared or disappeared since the baseline report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    pub host: String,
    pub code: String,
    pub severity: Severity,
    pub file: String,
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Changes {
    pub baseline: String,
    pub new: Vec<Change>,
    pub fixed: Vec<Change>,
}

/// The merged view.
#[derive(Debug, Default)]
pub struct Fleet {
    /// Ranked: open relays first, worst first.
    pub hosts: Vec<HostResult>,
    pub rules: BTreeMap<String, RuleCount>,
    /// category -> [error, warning, info]
    pub categories: BTreeMap<String, [usize; 3]>,
    /// Files that are not relaydoctor results (or not readable), with the reason.
    pub skipped: Vec<String>,
    pub files: usize,
    pub changes: Option<Changes>,
}

impl Fleet {
    pub fn total(&self, s: Severity) -> usize {
        self.hosts.iter().map(|h| h.count(s)).sum()
    }
}

/// The parts of a result file the report reads; everything else is skipped while parsing.
#[derive(Deserialize)]
struct InFile {
    version: Option<u64>,
    host: Option<InHost>,
    findings: Option<Vec<InFinding>>,
    /// A check that could not run (exit 2 with `--format json`).
    error: Option<String>,
    /// Present in `plesk check` output.
    database: Option<serde::de::IgnoredAny>,
    /// Present in `probe` output.
    targets: Option<serde::de::IgnoredAny>,
    /// Present in `dns` output.
    dns: Option<serde::de::IgnoredAny>,
    /// A fleet report (as --baseline): its hosts carry findings.
    hosts: Option<Vec<InFleetHost>>,
}

#[derive(Deserialize)]
struct InHost {
    name: String,
}

#[derive(Deserialize)]
struct InFinding {
    code: String,
    #[serde(default)]
    category: String,
    severity: Severity,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    line: Option<u64>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    help: Option<String>,
}

#[derive(Deserialize)]
struct InFleetHost {
    name: String,
    #[serde(default)]
    findings: Vec<InFinding>,
}

/// Shares one allocation between equal strings (codes, categories, help texts repeat across
/// thousands of hosts).
#[derive(Default)]
struct Interner(HashSet<Arc<str>>);

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(Arc::clone(&a));
        a
    }
}

/// Result files named by `inputs`: files as given, directories searched for `*.json`.
fn input_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = walkdir::WalkDir::new(p)
                .follow_links(false)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Failure::new(format!(
                "{}: no such file or directory",
                p.display()
            )));
        }
    }
    if out.is_empty() {
        return Err(Failure::new(
            "no result files (*.json) found in the paths given",
        ));
    }
    Ok(out)
}

fn parse(path: &Path) -> Result<InFile, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: InFile = serde_json::from_reader(BufReader::new(f))
        .map_err(|e| format!("{}: not a relaydoctor JSON result ({e})", path.display()))?;
    if v.version != Some(1) {
        return Err(format!(
            "{}: not a relaydoctor JSON result (no \"version\": 1)",
            path.display()
        ));
    }
    Ok(v)
}

fn kind_of(f: &InFile) -> &'static str {
    if f.database.is_some() {
        "plesk"
    } else if f.targets.is_some() {
        "probe"
    } else if f.dns.is_some() {
        "dns"
    } else {
        "lint"
    }
}

/// Merge the result files; `baseline` is an earlier fleet report (`--format json`).
pub fn merge(inputs: &[PathBuf], baseline: Option<&Path>) -> Result<Fleet, Failure> {
    let files = input_files(inputs)?;
    let mut names = Interner::default();
    let mut hosts: BTreeMap<String, HostResult> = BTreeMap::new();
    let mut fleet = Fleet {
        files: files.len(),
        ..Fleet::default()
    };
    for path in &files {
        let file = match parse(path) {
            Ok(f) => f,
            Err(e) => {
                fleet.skipped.push(e);
                continue;
            }
        };
        let name = match &file.host {
            Some(h) => h.name.clone(),
            // Older results without a host object: the file name stands for the host.
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if let Some(error) = &file.error {
            let h = hosts.entry(name.clone()).or_insert_with(|| HostResult {
                name,
                ..HostResult::default()
            });
            h.sources.push(path.display().to_string());
            h.failed.push(format!("{}: {error}", path.display()));
            continue;
        }
        let Some(findings) = file.findings.as_ref() else {
            fleet.skipped.push(format!(
                "{}: has no findings (not a check result)",
                path.display()
            ));
            continue;
        };
        let kind = names.get(kind_of(&file));
        let h = hosts.entry(name.clone()).or_insert_with(|| HostResult {
            name,
            ..HostResult::default()
        });
        h.sources.push(path.display().to_string());
        for f in findings {
            h.findings.push(item(f, &kind, &mut names));
        }
    }
    let mut hosts: Vec<HostResult> = hosts.into_values().collect();
    hosts.sort_by(|a, b| b.rank_key().cmp(&a.rank_key()).then(a.name.cmp(&b.name)));
    for h in &hosts {
        for f in &h.findings {
            let r = fleet.rules.entry(f.code.to_string()).or_default();
            r.category = f.category.to_string();
            r.severity = r.severity.max(Some(f.severity));
            r.count += 1;
            r.hosts.insert(h.name.clone());
            let c = fleet.categories.entry(f.category.to_string()).or_default();
            c[match f.severity {
                Severity::Error => 0,
                Severity::Warning => 1,
                Severity::Info => 2,
            }] += 1;
        }
    }
    fleet.hosts = hosts;
    if let Some(b) = baseline {
        fleet.changes = Some(changes(&fleet, b, &mut names)?);
    }
    Ok(fleet)
}

fn item(f: &InFinding, kind: &Arc<str>, names: &mut Interner) -> Item {
    Item {
        code: names.get(&f.code),
        category: names.get(&f.category),
        severity: f.severity,
        file: f.file.clone().unwrap_or_default(),
        line: f.line.unwrap_or(0),
        service: f.service.clone(),
        message: f.message.clone(),
        help: f.help.as_deref().map(|h| names.get(h)),
        kind: Arc::clone(kind),
    }
}

fn change(host: &str, f: &Item) -> Change {
    Change {
        host: host.to_string(),
        code: f.code.to_string(),
        severity: f.severity,
        file: f.file.clone(),
        line: f.line,
        message: f.message.clone(),
    }
}

/// What is new and what was fixed since the baseline report.
fn changes(fleet: &Fleet, path: &Path, names: &mut Interner) -> Result<Changes, Failure> {
    let base = parse(path).map_err(Failure::new)?;
    let Some(old_hosts) = base.hosts else {
        return Err(Failure::new(format!(
            "--baseline {}: not a fleet report (make one with `relaydoctor report --format json`)",
            path.display()
        )));
    };
    let lint: Arc<str> = names.get("lint");
    // A multiset: the same finding twice on a host is two findings.
    let mut before: BTreeMap<String, Vec<(String, Item)>> = BTreeMap::new();
    for h in &old_hosts {
        for f in &h.findings {
            let it = item(f, &lint, names);
            before
                .entry(it.key(&h.name))
                .or_default()
                .push((h.name.clone(), it));
        }
    }
    let mut out = Changes {
        baseline: path.display().to_string(),
        ..Changes::default()
    };
    for h in &fleet.hosts {
        for f in &h.findings {
            let seen = before.get_mut(&f.key(&h.name)).and_then(Vec::pop);
            if seen.is_none() {
                out.new.push(change(&h.name, f));
            }
        }
    }
    out.fixed = before
        .values()
        .flatten()
        .map(|(h, f)| change(h, f))
        .collect();
    Ok(out)
}
