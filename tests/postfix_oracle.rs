//! The model's effective configuration against the real `postconf` (Debian's Postfix).
//!
//! For every Postfix configuration directory under fixtures/ that Postfix accepts (and every
//! directory listed in $RD_ORACLE_DIRS, separated by ':', which scripts/corpus/postfix uses
//! for the shared corpus), the expanded value of every explicitly set parameter must equal
//! `postconf -c DIR -n -x`, and every master.cf override must equal `postconf -c DIR -P -x`.
//! Whitespace runs are compared as one space: postconf re-folds long values when printing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use relaydoctor::context::{Context, Options, Root};
use relaydoctor::postfix::model::Model;

fn postconf_available() -> bool {
    Command::new("postconf")
        .arg("-h")
        .arg("mail_version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `name = value` lines of a postconf run, or None when postconf rejects the configuration.
fn postconf(dir: &Path, args: &[&str]) -> Option<BTreeMap<String, String>> {
    let out = Command::new("postconf")
        .arg("-c")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut map = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(" = ") {
            map.insert(k.to_string(), norm(v));
        } else if let Some(k) = line.strip_suffix(" =") {
            map.insert(k.to_string(), String::new());
        }
    }
    Some(map)
}

fn config_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.join("main.cf").is_file() {
                out.push(p.clone());
            }
            config_dirs(&p, out);
        }
    }
}

/// Compare one directory; returns the differences (empty = agreement) or None when Postfix
/// rejects the configuration (nothing to compare against).
pub fn compare(dir: &Path) -> Option<Vec<String>> {
    compare_with(dir, &|_, v| v)
}

/// `compare`, with the model's values passed through `tweak(name, value)` first (the test
/// that proves a difference is detected uses it to corrupt one value).
fn compare_with(dir: &Path, tweak: &dyn Fn(&str, String) -> String) -> Option<Vec<String>> {
    let main = postconf(dir, &["-n", "-x"])?;
    let has_master = dir.join("master.cf").is_file();
    let overrides = if has_master {
        postconf(dir, &["-P", "-x"])?
    } else {
        BTreeMap::new()
    };
    let ctx = Context::new(Root::live(), Options::default());
    let mut findings = Vec::new();
    let model = Model::load(&ctx, dir, &mut findings);
    let mut diffs = Vec::new();
    let scope = model.scope(None);
    for (name, want) in &main {
        // postconf -c sets config_directory itself; $process_id / $process_name are those of
        // the postconf process (they differ on every run).
        let raw = model.raw(None, name).map(|r| r.0).unwrap_or_default();
        if name == "config_directory" || raw.contains("process_id") || raw.contains("process_name")
        {
            continue;
        }
        let got = match scope.get(name).map(|e| e.value) {
            Some(Ok(v)) => norm(&tweak(name, v)),
            Some(Err(e)) => format!("<error: {e}>"),
            None => "<undefined>".into(),
        };
        if &got != want {
            diffs.push(format!(
                "{}: {name}\n  postconf:    {want}\n  relaydoctor: {got}",
                dir.display()
            ));
        }
    }
    let services = model.services();
    for (key, want) in &overrides {
        // service/type/name
        let mut parts = key.splitn(3, '/');
        let (Some(svc), Some(ty), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let idx = services.iter().rposition(|s| {
            s.name() == svc && s.kind() == ty && s.overrides.iter().any(|o| o.name == name)
        });
        let got = match idx {
            Some(i) => match model.scope(Some(i)).get(name).map(|e| e.value) {
                Some(Ok(v)) => norm(&tweak(name, v)),
                Some(Err(e)) => format!("<error: {e}>"),
                None => "<undefined>".into(),
            },
            None => "<no such override>".into(),
        };
        if &got != want {
            diffs.push(format!(
                "{}: -P {key}\n  postconf:    {want}\n  relaydoctor: {got}",
                dir.display()
            ));
        }
    }
    // Every override relaydoctor sees must be one postconf sees too.
    for s in services.iter().filter(|s| s.complete()) {
        for o in &s.overrides {
            let key = format!("{}/{}/{}", s.name(), s.kind(), o.name);
            if !overrides.contains_key(&key) {
                diffs.push(format!(
                    "{}: relaydoctor sees override {key} that postconf -P does not",
                    dir.display()
                ));
            }
        }
    }
    Some(diffs)
}

#[test]
fn model_matches_postconf() {
    if !postconf_available() {
        if std::env::var_os("CI").is_some() {
            panic!("postconf (Debian package postfix) is required in CI");
        }
        eprintln!("SKIP: postconf not installed (apt-get install postfix)");
        return;
    }
    let mut dirs = Vec::new();
    config_dirs(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures"),
        &mut dirs,
    );
    if let Some(extra) = std::env::var_os("RD_ORACLE_DIRS") {
        dirs.extend(std::env::split_paths(&extra));
    }
    let mut compared = 0;
    let mut diffs = Vec::new();
    for d in &dirs {
        match compare(d) {
            Some(dd) => {
                compared += 1;
                eprintln!(
                    "oracle: {} {}",
                    if dd.is_empty() { "agrees" } else { "DIFFERS" },
                    d.display()
                );
                diffs.extend(dd);
            }
            None => eprintln!("oracle: postconf rejects {} (not compared)", d.display()),
        }
    }
    assert!(
        compared > 0 || dirs.is_empty(),
        "no configuration was accepted by postconf"
    );
    assert!(
        diffs.is_empty(),
        "model differs from postconf:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn a_difference_is_detected() {
    if !postconf_available() {
        if std::env::var_os("CI").is_some() {
            panic!("postconf (Debian package postfix) is required in CI");
        }
        eprintln!("SKIP: postconf not installed (apt-get install postfix)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("main.cf"),
        "compatibility_level = 3.6\nmydestination = $myhostname, localhost\n",
    )
    .unwrap();
    std::fs::write(
        t.path().join("master.cf"),
        "submission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n",
    )
    .unwrap();
    assert_eq!(compare(t.path()), Some(vec![]));
    // One wrong main.cf value and one wrong override value are both reported.
    let d = compare_with(t.path(), &|name, v| {
        if name == "mydestination" || name == "smtpd_sasl_auth_enable" {
            format!("{v} wrong")
        } else {
            v
        }
    })
    .unwrap();
    assert_eq!(d.len(), 2, "{d:?}");
}
