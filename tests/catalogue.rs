//! Code and catalogue agree: every rule code the source emits is in rules/*.toml, and every
//! catalogue entry is emitted somewhere. And every rule's references are precise (issue 22,
//! "References are precise"): each names the document section or the source file and function
//! its claims rest on, and the sections named exist in the documents installed here.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

fn codes_in_source(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            codes_in_source(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            let b = text.as_bytes();
            // A code is a string literal "XXnnn" with a known prefix.
            for i in 0..b.len().saturating_sub(6) {
                if b[i] == b'"' && b.get(i + 6) == Some(&b'"') {
                    let s = &text[i + 1..i + 6];
                    let (pre, num) = s.split_at(2);
                    if ["PF", "EX", "QM", "PL", "RD", "DN", "PR"].contains(&pre)
                        && num.bytes().all(|c| c.is_ascii_digit())
                    {
                        out.insert(s.to_string());
                    }
                }
            }
        }
    }
}

#[test]
fn code_and_catalogue_agree() {
    let mut used = BTreeSet::new();
    codes_in_source(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut used,
    );
    let known: BTreeSet<String> = relaydoctor::catalogue::all().keys().cloned().collect();
    let unknown: Vec<_> = used.difference(&known).collect();
    let unused: Vec<_> = known.difference(&used).collect();
    assert!(
        unknown.is_empty(),
        "codes used in src/ but missing from rules/*.toml: {unknown:?}"
    );
    assert!(
        unused.is_empty(),
        "catalogue entries no code emits: {unused:?}"
    );
}

/// Whole documents, not a place in them: a reference that is only one of these says nothing
/// about where the claim comes from.
const DOCUMENT_HOMES: &[&str] = &[
    "exim-html-current/doc/html/spec_html",
    "postfix.org/postconf.5.html",
    "postfix.org/master.5.html",
];

/// Why a reference is too vague to check a claim against, or None. A reference must say more
/// than the name of a document: a bare man page (`postconf(5)`), README (`SASL_README`,
/// `Postfix SASL_README`), RFC without a section, or the URL of a whole document or site.
fn vague(reference: &str) -> Option<&'static str> {
    let r = reference.trim();
    let man_page = regex::Regex::new(r"^[\w.+-]+\(\d\)$").unwrap();
    let readme =
        regex::Regex::new(r"^(Postfix |Exim )?[A-Z0-9_.-]+(_README|RELEASE_NOTES[\w.-]*)$")
            .unwrap();
    if r.starts_with("http://") || r.starts_with("https://") {
        let after_host = r.split("://").nth(1).unwrap_or("");
        let path = after_host.split_once('/').map(|x| x.1).unwrap_or("");
        if path.trim_matches('/').is_empty() {
            return Some("the URL of a whole site");
        }
        let page = r.split('#').next().unwrap_or(r).trim_end_matches('/');
        if !r.contains('#') && DOCUMENT_HOMES.iter().any(|h| page.ends_with(h)) {
            return Some("the URL of a whole document");
        }
        return None;
    }
    if man_page.is_match(r) {
        return Some("a man page without a section, parameter or function");
    }
    if readme.is_match(r) {
        return Some("a README without a section");
    }
    if regex::Regex::new(r"^RFC \d+$").unwrap().is_match(r) {
        return Some("an RFC without a section");
    }
    if !r.contains(char::is_whitespace) {
        return Some("one word: a document name without a place in it");
    }
    None
}

#[test]
fn vague_references_are_recognised() {
    for bad in [
        "postconf(5)",
        "master(5)",
        "tcprules(1)",
        "SASL_README",
        "Postfix SASL_README",
        "RELEASE_NOTES-3.9",
        "RFC 3207",
        "https://www.exim.org/exim-html-current/doc/html/spec_html/",
        "https://www.postfix.org/postconf.5.html",
        "https://mariadb.com/",
    ] {
        assert!(vague(bad).is_some(), "{bad} should count as vague");
    }
    for good in [
        "postconf(5) mynetworks",
        "Postfix SASL_README, \"Mail relay authorization\"",
        "RFC 3207 section 4",
        "https://www.postfix.org/postconf.5.html#mynetworks",
        "https://mariadb.com/kb/en/check-table/",
        "src/util/match_list.c (match_list_parse: \"comment at end of line is not supported\")",
    ] {
        assert_eq!(vague(good), None, "{good} should count as precise");
    }
}

/// Skip (locally) or fail (in CI) when a tool or document a check needs is missing.
fn skip_or_panic(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIP: {why}");
}

fn gunzip(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The Exim 4.96 spec.txt of the unpacked Debian package (scripts/exim-oracle unpacks it).
fn exim_spec() -> Option<String> {
    let doc = "root/usr/share/doc/exim4-base/spec.txt.gz";
    let find = || {
        ["exim", "exim-heavy"]
            .iter()
            .map(|d| common::repo(".cache").join(d).join(doc))
            .find(|p| p.is_file())
    };
    let path: PathBuf = match find() {
        Some(p) => p,
        None => {
            let _ = Command::new(common::repo("scripts/exim-oracle")).output();
            find()?
        }
    };
    gunzip(&path)
}

/// Chapters (number -> title) and sections ((chapter, title)) of spec.txt's table of contents.
fn spec_contents(
    spec: &str,
) -> (
    std::collections::BTreeMap<u32, String>,
    BTreeSet<(u32, String)>,
) {
    let chapter = regex::Regex::new(r"^(\d+)\. (\S.*)$").unwrap();
    let section = regex::Regex::new(r"^    (\d+)\.\d+\. (\S.*)$").unwrap();
    let mut chapters = std::collections::BTreeMap::new();
    let mut sections = BTreeSet::new();
    // The contents end where the first chapter's text begins.
    for line in spec.lines().take_while(|l| !l.starts_with("=====")) {
        if let Some(c) = chapter.captures(line) {
            chapters
                .entry(c[1].parse().unwrap())
                .or_insert_with(|| c[2].trim().to_string());
        } else if let Some(c) = section.captures(line) {
            sections.insert((c[1].parse().unwrap(), c[2].trim().to_string()));
        }
    }
    (chapters, sections)
}

/// What is wrong with one Exim specification reference, checked against spec.txt.
fn exim_spec_problem(
    reference: &str,
    spec: &str,
    chapters: &std::collections::BTreeMap<u32, String>,
    sections: &BTreeSet<(u32, String)>,
) -> Option<String> {
    let form = regex::Regex::new(
        r#"^Exim specification, chapter (\d+) "([^"]+)"(?:, section "([^"]+)")?(?: \(.*\))?$"#,
    )
    .unwrap();
    let Some(c) = form.captures(reference) else {
        return Some(
            "write it as `Exim specification, chapter N \"TITLE\"[, section \"TITLE\"][ (...)]`"
                .into(),
        );
    };
    let n: u32 = c[1].parse().unwrap();
    match chapters.get(&n) {
        None => return Some(format!("spec.txt has no chapter {n}")),
        Some(t) if t != &c[2] => return Some(format!("chapter {n} is \"{t}\"")),
        _ => {}
    }
    if let Some(s) = c.get(3) {
        if !sections.contains(&(n, s.as_str().to_string())) {
            return Some(format!("chapter {n} has no section \"{}\"", s.as_str()));
        }
    }
    // `option NAME`: the option is described in the spec (its `|NAME|Use: ...|` box).
    let option = regex::Regex::new(r"\boption ([a-z_0-9]+)").unwrap();
    for o in option.captures_iter(reference) {
        if !spec.contains(&format!("|{}|Use:", &o[1])) {
            return Some(format!("spec.txt describes no option {}", &o[1]));
        }
    }
    None
}

/// Names postconf(5) knows: the parameters of `postconf -d`, and the restriction and other
/// names its installed man page sets in bold. None when Postfix is not installed.
fn postconf_names() -> Option<BTreeSet<String>> {
    let out = Command::new("postconf").arg("-d").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let mut names: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n.trim().to_string()))
        .collect();
    if let Some(man) = gunzip(Path::new("/usr/share/man/man5/postconf.5.gz")) {
        let bold = regex::Regex::new(r"\\fB([a-z][a-z0-9_]*)\b").unwrap();
        names.extend(bold.captures_iter(&man).map(|c| c[1].to_string()));
    }
    Some(names)
}

/// Every rule has at least one reference, and each names a place: a document section, a
/// parameter or option, or a source file and function. The places that can be checked here
/// are: Exim specification chapters and sections (against the installed 4.96 spec.txt, by
/// number and title) and the names in postconf(5) references (against `postconf -d` and the
/// installed postconf(5) man page).
#[test]
fn references_are_precise() {
    let cat = relaydoctor::catalogue::all();
    let mut problems = Vec::new();
    for r in cat.values() {
        if r.references.is_empty() {
            problems.push(format!("{}: no references", r.code));
        }
        for reference in &r.references {
            if let Some(why) = vague(reference) {
                problems.push(format!("{}: {reference:?} is {why}", r.code));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let exim_refs: Vec<(&str, &str)> = cat
        .values()
        .flat_map(|r| {
            r.references
                .iter()
                .map(move |x| (r.code.as_str(), x.as_str()))
        })
        .filter(|(_, x)| x.starts_with("Exim spec"))
        .collect();
    assert!(
        exim_refs.len() > 20,
        "only {} Exim spec references",
        exim_refs.len()
    );
    match exim_spec() {
        None => skip_or_panic("Exim's spec.txt not found (scripts/exim-oracle unpacks it)"),
        Some(spec) => {
            let (chapters, sections) = spec_contents(&spec);
            assert!(
                chapters.len() > 50,
                "spec.txt contents not parsed ({})",
                chapters.len()
            );
            for (code, x) in &exim_refs {
                if let Some(why) = exim_spec_problem(x, &spec, &chapters, &sections) {
                    problems.push(format!("{code}: {x:?}: {why}"));
                }
            }
        }
    }

    let ident = regex::Regex::new(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b").unwrap();
    let quoted = regex::Regex::new(r#""[^"]*""#).unwrap();
    match postconf_names() {
        None => skip_or_panic("Postfix (postconf) is not installed"),
        Some(names) => {
            let mut checked = 0;
            for r in cat.values() {
                for x in &r.references {
                    let Some(rest) = x.strip_prefix("postconf(5)") else {
                        continue;
                    };
                    // Quoted text is a quotation, not a name.
                    let unquoted = quoted.replace_all(rest, "");
                    for m in ident.find_iter(&unquoted) {
                        checked += 1;
                        if !names.contains(m.as_str()) {
                            problems.push(format!(
                                "{}: {x:?}: postconf(5) has no {}",
                                r.code,
                                m.as_str()
                            ));
                        }
                    }
                }
            }
            assert!(checked > 30, "only {checked} postconf(5) names checked");
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The `.SH` headings of an installed man page, or None when it is not installed here.
fn man_headings(name: &str, section: &str) -> Option<BTreeSet<String>> {
    let page = format!("/usr/share/man/man{section}/{name}.{section}.gz");
    let text = gunzip(Path::new(&page))?;
    Some(
        text.lines()
            .filter_map(|l| l.strip_prefix(".SH "))
            .map(|h| h.trim().trim_matches('"').to_string())
            .collect(),
    )
}

/// A man page reference that names sections in capitals (`qmail-smtpd(8) CONTROL FILES,
/// rcpthosts`, `tcprules(1) ADDRESSES, INSTRUCTIONS`) names headings the installed page has.
/// Pages not installed here (qmail's) are not checked; those that are must match.
#[test]
fn man_page_sections_exist() {
    let man_ref = regex::Regex::new(r"^([\w.+-]+)\((\d)\):? (.+)$").unwrap();
    let heading = regex::Regex::new(r"^[A-Z][A-Z ]*[A-Z]$").unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for r in relaydoctor::catalogue::all().values() {
        for x in &r.references {
            let Some(c) = man_ref.captures(x) else {
                continue;
            };
            let Some(headings) = man_headings(&c[1], &c[2]) else {
                continue;
            };
            for item in c[3].split(", ") {
                let item = item.split(" (").next().unwrap_or(item).trim();
                if !heading.is_match(item) {
                    continue;
                }
                checked += 1;
                if !headings.contains(item) {
                    problems.push(format!(
                        "{}: {x:?}: {}({}) has no section {item}",
                        r.code, &c[1], &c[2]
                    ));
                }
            }
        }
    }
    if man_headings("postconf", "5").is_none() {
        skip_or_panic("postconf(5) is not installed");
    } else {
        assert!(checked >= 5, "only {checked} man page sections checked");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_made_up_exim_chapter_is_refused() {
    let spec = "1. Introduction\n    1.1. Exim documentation\n44. Access control lists\n    44.13. ACL return codes\n=====\n|percent_hack_domains|Use: main|\n";
    let (chapters, sections) = spec_contents(spec);
    let check = |r: &str| exim_spec_problem(r, spec, &chapters, &sections);
    assert_eq!(
        check(
            r#"Exim specification, chapter 44 "Access control lists", section "ACL return codes""#
        ),
        None
    );
    assert!(check(r#"Exim specification, chapter 42 "Access control lists""#).is_some());
    assert!(check(r#"Exim specification, chapter 44 "ACLs""#).is_some());
    assert!(
        check(r#"Exim specification, chapter 44 "Access control lists", section "Made up""#)
            .is_some()
    );
    assert!(check(
        r#"Exim specification, chapter 44 "Access control lists" (option no_such_option)"#
    )
    .is_some());
    assert!(check("Exim spec: percent_hack_domains").is_some());
}
