//! Mutation fuzzing on stable Rust (cargo-fuzz needs nightly): one target per pest grammar
//! and per reader. Each target starts from its seed corpus (fuzz/corpus/TARGET/, taken from
//! the fixtures), mutates it with a seeded generator (bit flips, byte and token insertions,
//! deletions, duplications, splices of two seeds) and runs the input through the reader's
//! parser and, for the configuration readers, a whole in-process `lint` of a snapshot holding
//! it. A panic is a finding: the input is saved under target/fuzz-findings/ and the target
//! fails. Executions per target: RELAYDOCTOR_FUZZ_EXECS (default 30; scripts/test sets
//! more), RELAYDOCTOR_FUZZ_SEED varies the run.
//!
//! Not coverage-guided (that needs instrumentation that only nightly or AFL's compiler
//! wrappers give); the dictionary of each target (fuzz/dict/TARGET.txt) holds the tokens its
//! grammar branches on.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use relaydoctor::context::{Context, Options, Root};

/// xorshift64*: deterministic, so a finding can be reproduced from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const BYTES: &[u8] = b"\0\n\r\t \\#$={}()[]:;,.\"'!*?/-_^|<>@%+&~\xff\xc3\xa9";

fn mutate(seeds: &[Vec<u8>], dict: &[&str], rng: &mut Rng) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, BYTES[rng.below(BYTES.len())]),
            2 if !v.is_empty() => {
                let end = (at + 1 + rng.below(64)).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 if !v.is_empty() => {
                // Duplicate a run many times (long lines, deep repetition).
                let start = rng.below(v.len());
                let end = (start + 1 + rng.below(32)).min(v.len());
                let run = v[start..end].to_vec();
                for _ in 0..1 + rng.below(64) {
                    v.splice(at..at, run.iter().copied());
                }
            }
            4 | 5 => {
                let t = dict[rng.below(dict.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            6 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            _ => {
                let line = b"\n".iter().chain(dict[rng.below(dict.len())].as_bytes());
                v.splice(at..at, line.copied().collect::<Vec<_>>());
            }
        }
    }
    v.truncate(1 << 16);
    v
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().filter_map(|f| fs::read(f).ok()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// fuzz/dict/TARGET.txt: one token per line, `\n`, `\t` and `\u{..}` unescaped.
fn dictionary(target: &str) -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/dict")
        .join(format!("{target}.txt"));
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .filter(|l| !l.starts_with("# ") && !l.is_empty())
        .map(unescape)
        .collect()
}

fn unescape(l: &str) -> String {
    let mut out = String::new();
    let mut it = l.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let hex: String = it.by_ref().skip(1).take_while(|&c| c != '}').collect();
                if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(c);
                }
            }
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

fn execs() -> usize {
    std::env::var("RELAYDOCTOR_FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// Run `target` over the seeds and `execs()` mutations of them; save and count panics.
fn fuzz(target: &str, run: impl Fn(&[u8])) {
    let seeds = corpus(target);
    let dict = dictionary(target);
    let dict: Vec<&str> = dict.iter().map(String::as_str).collect();
    let seed = std::env::var("RELAYDOCTOR_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = Rng(seed
        ^ target.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        }));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings");
    let mut found = Vec::new();
    let n = execs();
    let start = std::time::Instant::now();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..seeds.len() + n {
        let input = match seeds.get(i) {
            Some(s) => s.clone(),
            None => mutate(&seeds, &dict, &mut rng),
        };
        if catch_unwind(AssertUnwindSafe(|| run(&input))).is_err() {
            fs::create_dir_all(&out).ok();
            let p = out.join(format!("{target}-{seed}-{i}"));
            fs::write(&p, &input).ok();
            found.push(p);
        }
    }
    std::panic::set_hook(quiet);
    eprintln!(
        "fuzz {target}: {} executions ({} seeds + {n} mutations) in {:.1} s, {} panicking inputs",
        seeds.len() + n,
        seeds.len(),
        start.elapsed().as_secs_f64(),
        found.len()
    );
    assert!(found.is_empty(), "{target}: inputs that panic: {found:?}");
}

/// A whole in-process lint of a snapshot holding `files`.
fn lint_tree(files: &[(&str, &[u8])]) {
    let t = tempfile::tempdir().unwrap();
    for (p, bytes) in files {
        let p = t.path().join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    let ctx = Context::new(Root::snapshot(t.path()), Options::default());
    let _ = relaydoctor::lint::run(&ctx, &[]);
}

const MASTER: &[u8] = b"smtp inet n - y - - smtpd\nsubmission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n";

#[test]
fn postfix_main() {
    fuzz("postfix_main", |b| {
        let text = String::from_utf8_lossy(b);
        let _ = relaydoctor::postfix::parse::parse_main(&text);
        lint_tree(&[
            ("etc/postfix/main.cf", b),
            ("etc/postfix/master.cf", MASTER),
        ]);
    });
}

#[test]
fn postfix_master() {
    fuzz("postfix_master", |b| {
        let text = String::from_utf8_lossy(b);
        let _ = relaydoctor::postfix::parse::parse_master(&text);
        lint_tree(&[
            ("etc/postfix/main.cf", b"compatibility_level = 3.6\n"),
            ("etc/postfix/master.cf", b),
        ]);
    });
}

#[test]
fn exim() {
    fuzz("exim", |b| {
        lint_tree(&[("etc/exim/exim.conf", b)]);
    });
}

#[test]
fn qmail_control() {
    fuzz("qmail_control", |b| {
        let text = String::from_utf8_lossy(b);
        let _ = relaydoctor::qmail::parse::domain_list(&text);
        let _ = relaydoctor::qmail::parse::smtproutes(&text);
        let _ = relaydoctor::qmail::parse::virtualdomains(&text);
        let _ = relaydoctor::qmail::parse::first_value(&text);
        lint_tree(&[
            ("var/qmail/control/me", b"mx.example.com\n"),
            ("var/qmail/control/rcpthosts", b),
            ("var/qmail/control/smtproutes", b),
            ("var/qmail/control/virtualdomains", b),
        ]);
    });
}

#[test]
fn qmail_tcprules() {
    fuzz("qmail_tcprules", |b| {
        let text = String::from_utf8_lossy(b);
        let (rules, _) = relaydoctor::qmail::parse::tcprules(&text);
        let _ = relaydoctor::qmail::parse::compile(&rules);
        lint_tree(&[
            ("var/qmail/control/me", b"mx.example.com\n"),
            ("var/qmail/control/rcpthosts", b"example.com\n"),
            ("etc/tcp.smtp", b),
        ]);
    });
}

#[test]
fn dsn_ini() {
    fuzz("dsn_ini", |b| {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("dsn.ini");
        fs::write(&p, b).unwrap();
        let db = relaydoctor::plesk::settings::DbSettings {
            root: t.path().to_path_buf(),
            db_url: None,
            env_url: None,
            dsn_file: Some(p),
            timeout: std::time::Duration::from_secs(1),
            read_timeout: std::time::Duration::from_secs(1),
        };
        let _ = relaydoctor::plesk::credentials::resolve(&db, &mut Vec::new());
    });
}

#[test]
fn explain_log() {
    fuzz("explain_log", |b| {
        use relaydoctor::explain::{aggregate::Aggregate, reader, stamp::YearRule};
        use relaydoctor::explain::{Analyzer, Sink};
        let mut an = Analyzer::new(
            YearRule::new(Some(2026), 0),
            false,
            Sink::Groups(Aggregate::default()),
        );
        let _ = reader::stream_log(b, "fuzz", &mut an);
        an.finish();
        let mut an = Analyzer::new(YearRule::new(Some(2026), 0), true, Sink::Events(Vec::new()));
        let _ = reader::stream_text(b, "fuzz", &mut an);
        an.finish();
    });
}
