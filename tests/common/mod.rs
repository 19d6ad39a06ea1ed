//! Shared test support: run the binary, lint a tree, pick findings. Each integration test
//! file includes it with `mod common;` (Cargo builds each tests/*.rs as its own crate, so
//! not every helper is used by every file).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A path inside the repository.
pub fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// What one run of the binary gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// Run relaydoctor with `args`; NO_COLOR is removed so colour tests see the flag alone.
pub fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_relaydoctor"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run relaydoctor");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run, and insist on exit 0 or 1 (a finished check, clean or not).
pub fn run_ok(args: &[&str]) -> Run {
    let r = run(args);
    assert!(
        r.code == 0 || r.code == 1,
        "{args:?} exited {}: {}{}",
        r.code,
        r.stdout,
        r.stderr
    );
    r
}

/// The findings (JSON objects) of `lint --format json --root ROOT EXTRA...`.
pub fn lint_json(root: &Path, extra: &[&str]) -> Vec<Value> {
    let r = root.to_string_lossy().into_owned();
    let mut args = vec!["lint", "--format", "json", "--root", r.as_str()];
    args.extend_from_slice(extra);
    run_ok(&args).json()["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// (code, file, line) of each finding.
pub fn codes(findings: &[Value]) -> Vec<(String, String, u64)> {
    findings
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or("").to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// (code, file, line) of each finding of `lint --root ROOT EXTRA...`.
pub fn findings(root: &Path, extra: &[&str]) -> Vec<(String, String, u64)> {
    codes(&lint_json(root, extra))
}

/// The findings with rule `code`.
pub fn with_code<'a>(fs: &'a [Value], code: &str) -> Vec<&'a Value> {
    fs.iter().filter(|f| f["code"] == code).collect()
}

/// A temporary snapshot root holding `files` (path relative to the root, content).
pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let p = t.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    t
}

/// A snapshot with etc/postfix/main.cf and, if given, master.cf.
pub fn postfix_tree(main: &str, master: Option<&str>) -> tempfile::TempDir {
    let mut files = vec![("etc/postfix/main.cf", main)];
    if let Some(m) = master {
        files.push(("etc/postfix/master.cf", m));
    }
    tree(&files)
}

/// A writable copy of a fixture tree, mtimes kept (stale-map checks compare them).
pub fn copy_tree(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(from).unwrap();
        let to = dir.path().join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else if e.file_type().is_file() {
            std::fs::copy(e.path(), &to).unwrap();
            let m = std::fs::metadata(e.path()).unwrap().modified().unwrap();
            std::fs::File::options()
                .write(true)
                .open(&to)
                .unwrap()
                .set_modified(m)
                .unwrap();
        }
    }
    dir
}

/// The decisions of `simulate --format json --root ROOT EXTRA...`.
pub fn simulate(root: &Path, extra: &[&str]) -> Vec<Value> {
    let r = root.to_string_lossy().into_owned();
    let mut args = vec!["simulate", "--format", "json", "--root", r.as_str()];
    args.extend_from_slice(extra);
    run_ok(&args).json()["decisions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Runs `cmd` with `input` on its stdin and captures stdout and stderr.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    // A program that exits without reading its input closes the pipe: not an error here.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}
