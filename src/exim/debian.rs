//! Debian's exim4-config: what `update-exim4.conf` (Debian 12, 4.96-15) would build.
//!
//! - `/etc/exim4/exim4.conf`, when present, wins (Debian's exim reads it first).
//! - Otherwise update-exim4.conf.conf is sourced; `dc_*` values become macros inserted after
//!   the line starting with `UPEX4CmacrosUPEX4C`, each as `.ifndef NAME / NAME=value /
//!   .endif`, lower-cased and with white space collapsed (the script's `lowercase` and
//!   `check_ascii_pipe`); lines of update-exim4.conf.conf starting with an upper-case letter
//!   become macros too.
//! - Split mode concatenates conf.d/{main,acl,router,transport,retry,rewrite,auth}/*: names
//!   matching `[[:alnum:]_-]+` in C-locale order, `NAME.rul` replacing `NAME`, a blank line
//!   after each file. Otherwise exim4.conf.localmacros then exim4.conf.template.
//! - A configtype of `none` (or missing/unknown) concatenates without any macros.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::reader::{Origin, Segment};
use crate::context::Context;
use crate::finding::{Finding, Mta};
use crate::source::SourceFile;

pub const SECTIONS: &[&str] = &[
    "main",
    "acl",
    "router",
    "transport",
    "retry",
    "rewrite",
    "auth",
];

/// A shell variable from update-exim4.conf.conf and where it was set.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub value: String,
    pub origin: Origin,
}

/// Parse `name='value'` / `name="value"` / `name=value` lines (the file is sourced by sh;
/// only plain assignments are modelled).
pub fn parse_ue4cc(src: &Arc<SourceFile>) -> Vec<Var> {
    let mut out = Vec::new();
    let mut off = 0;
    for (i, raw) in src.text.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        let start = off + (line.len() - line.trim_start().len());
        off += raw.len();
        let l = line.trim();
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        let Some((n, v)) = l.split_once('=') else {
            continue;
        };
        if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('\'') && v.ends_with('\''))
                || (v.starts_with('"') && v.ends_with('"')))
        {
            &v[1..v.len() - 1]
        } else {
            v
        };
        out.push(Var {
            name: n.to_string(),
            value: v.to_string(),
            origin: Origin {
                file: src.display.clone(),
                line: i + 1,
                src: Some(Arc::clone(src)),
                start,
                end: start + l.len(),
            },
        });
    }
    out
}

/// `lowercase` + `check_ascii_pipe`: lower-case, collapse white space (unquoted echo),
/// replace characters outside the allowed set with `_`.
pub fn sanitize(v: &str) -> String {
    let words: Vec<&str> = v.split_whitespace().collect();
    words
        .join(" ")
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-/.!*@_~:;< []".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// conf.d/<section> files in run_parts order.
pub fn run_parts(ctx: &Context, dir: &Path, findings: &mut Vec<Finding>) -> Vec<PathBuf> {
    if !ctx.is_dir(dir) {
        return Vec::new();
    }
    let mut names: Vec<String> = crate::discover::list_dir(ctx, dir, Mta::Exim, findings)
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let mut out = Vec::new();
    for n in &names {
        if !ok(n) {
            continue;
        }
        let p = dir.join(n);
        if !ctx.is_file(&p) {
            continue;
        }
        let rul = format!("{n}.rul");
        // Only stat NAME.rul when the listing has it.
        let rul_path = dir.join(&rul);
        out.push(
            if names.binary_search(&rul).is_ok() && ctx.is_file(&rul_path) {
                rul_path
            } else {
                p
            },
        );
    }
    out
}

pub struct Assembly {
    pub segments: Vec<Segment>,
    pub seed: Option<Vec<(String, Origin)>>,
    pub vars: Vec<Var>,
    pub split: bool,
}

/// Build the input update-exim4.conf would concatenate, for the Debian directory `dir`
/// (real path; `server` is its path on the server, normally /etc/exim4).
pub fn assemble(ctx: &Context, dir: &Path, server: &Path, findings: &mut Vec<Finding>) -> Assembly {
    let ue4cc = dir.join("update-exim4.conf.conf");
    let vars = match ctx.load_checked(&ue4cc, Mta::Exim, findings) {
        Some(src) => parse_ue4cc(&src),
        None => Vec::new(),
    };
    let get = |n: &str| vars.iter().rev().find(|v| v.name == n);
    let val = |n: &str| get(n).map(|v| v.value.clone()).unwrap_or_default();
    let conf_d = dir.join("conf.d");
    let split = match get("dc_use_split_config") {
        Some(v) => v.value.eq_ignore_ascii_case("true"),
        // No update-exim4.conf.conf: a directory that only has conf.d is read split.
        None => !ctx.is_file(&dir.join("exim4.conf.template")) && ctx.is_dir(&conf_d),
    };
    let mut segments = Vec::new();
    if split {
        for s in SECTIONS {
            for f in run_parts(ctx, &conf_d.join(s), findings) {
                let rel = f
                    .strip_prefix(dir)
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|_| f.clone());
                segments.push(Segment::File {
                    real: f.clone(),
                    server: server.join(rel),
                });
                segments.push(Segment::Lines(vec![(String::new(), blank_origin(ctx, &f))]));
            }
        }
    } else {
        let lm = dir.join("exim4.conf.localmacros");
        if ctx.is_file(&lm) {
            segments.push(Segment::File {
                real: lm,
                server: server.join("exim4.conf.localmacros"),
            });
        }
        let t = dir.join("exim4.conf.template");
        if ctx.is_file(&t) {
            segments.push(Segment::File {
                real: t,
                server: server.join("exim4.conf.template"),
            });
        }
    }
    let configtype = sanitize(&val("dc_eximconfig_configtype"));
    let seed = if matches!(
        configtype.as_str(),
        "internet" | "local" | "satellite" | "smarthost"
    ) {
        Some(seed(ctx, &vars, &configtype))
    } else {
        None
    };
    Assembly {
        segments,
        seed,
        vars,
        split,
    }
}

fn blank_origin(ctx: &Context, f: &Path) -> Origin {
    Origin {
        file: ctx.root.display(f),
        line: 0,
        src: None,
        start: 0,
        end: 0,
    }
}

fn seed(ctx: &Context, vars: &[Var], configtype: &str) -> Vec<(String, Origin)> {
    let get = |n: &str| vars.iter().rev().find(|v| v.name == n);
    let val = |n: &str| get(n).map(|v| v.value.clone()).unwrap_or_default();
    let generated = |n: &str| -> Origin {
        get(n).map(|v| v.origin.clone()).unwrap_or(Origin {
            file: PathBuf::from("update-exim4.conf (generated)"),
            line: 0,
            src: None,
            start: 0,
            end: 0,
        })
    };
    let mut out: Vec<(String, Origin)> = Vec::new();
    let mut push = |name: &str, value: &str, o: Origin| {
        let v = sanitize(value);
        out.push((format!(".ifndef {name}"), o.clone()));
        out.push((format!("{name}={v}"), o.clone()));
        out.push((".endif".into(), o));
    };
    // Semicolon lists get a "<; " separator change (only these three).
    let semi = |v: String| -> String {
        if v.contains(';') && !v.trim_start().starts_with('<') {
            format!("<; {v}")
        } else {
            v
        }
    };
    let other = sanitize(&val("dc_other_hostnames"));
    let local_domains = format!("@:localhost:{other}")
        .trim_end_matches([';', ':', ' '])
        .replace(';', ":");
    let li = semi(val("dc_local_interfaces"));
    if !li.is_empty() {
        push(
            "MAIN_LOCAL_INTERFACES",
            &li,
            generated("dc_local_interfaces"),
        );
    }
    if val("dc_minimaldns").eq_ignore_ascii_case("true") {
        push("DC_minimaldns", "1", generated("dc_minimaldns"));
    }
    if matches!(configtype, "satellite" | "smarthost")
        && val("dc_hide_mailname").eq_ignore_ascii_case("true")
        && !val("dc_readhost").is_empty()
    {
        push("HIDE_MAILNAME", "1", generated("dc_hide_mailname"));
    }
    push(
        "MAIN_PACKAGE_VERSION",
        "4.96-15+deb12u10",
        generated("MAIN_PACKAGE_VERSION"),
    );
    push(
        "MAIN_LOCAL_DOMAINS",
        &local_domains,
        generated("dc_other_hostnames"),
    );
    push(
        "MAIN_RELAY_TO_DOMAINS",
        &semi(val("dc_relay_domains")),
        generated("dc_relay_domains"),
    );
    let mailname = ctx
        .root
        .read_to_string(&ctx.root.resolve(Path::new("/etc/mailname")))
        .map(|s| s.lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    push("ETC_MAILNAME", &mailname, generated("ETC_MAILNAME"));
    let ld = val("dc_localdelivery");
    push(
        "LOCAL_DELIVERY",
        if ld.is_empty() { "mail_spool" } else { &ld },
        generated("dc_localdelivery"),
    );
    let rn = sanitize(&semi(val("dc_relay_nets")));
    let rn = if rn.starts_with("<;") {
        format!("{rn} ; 127.0.0.1 ; ::1")
    } else {
        format!("{rn} : 127.0.0.1 : ::::1")
    };
    push("MAIN_RELAY_NETS", &rn, generated("dc_relay_nets"));
    push("DCreadhost", &val("dc_readhost"), generated("dc_readhost"));
    push(
        "DCsmarthost",
        &val("dc_smarthost").replace(';', ":"),
        generated("dc_smarthost"),
    );
    push(
        "DC_eximconfig_configtype",
        configtype,
        generated("dc_eximconfig_configtype"),
    );
    push(
        &format!("DCconfig_{configtype}"),
        "1",
        generated("dc_eximconfig_configtype"),
    );
    for v in vars {
        if v.name.starts_with(|c: char| c.is_ascii_uppercase()) && v.name != "CFILEMODE" {
            push(&v.name, &v.value, v.origin.clone());
        }
    }
    out
}

/// A single file of Debian's split configuration (`.../conf.d/<section>/<file>`) without a
/// `begin` line of its own: a fragment update-exim4.conf concatenates with the others (in
/// SECTIONS order, each section's header adding its `begin`), never a configuration Exim
/// reads alone (`exim -C fragment -bV` fails: `main option "remote_smtp" unknown`). The
/// section, and the conf.d directory to lint instead.
pub fn fragment(text: &str, real: &Path) -> Option<(String, std::path::PathBuf)> {
    let section = real.parent()?;
    let confd = section.parent()?;
    let name = section.file_name()?.to_str()?;
    // The directory is conf.d, or a copy of one under another name: it holds the other
    // section directories too.
    let sections = SECTIONS.iter().filter(|s| confd.join(s).is_dir()).count();
    if !SECTIONS.contains(&name) || (confd.file_name()? != "conf.d" && sections < 3) {
        return None;
    }
    let has_begin = text
        .lines()
        .any(|l| l.trim_start().starts_with("begin ") || l.trim() == "begin");
    (!has_begin).then(|| (name.to_string(), confd.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_like_update_exim4_conf() {
        assert_eq!(sanitize("  Example.ORG   foo "), "example.org foo");
        assert_eq!(sanitize("a$b"), "a_b");
    }
}
