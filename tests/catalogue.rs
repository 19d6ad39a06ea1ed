//! Code and catalogue agree: every rule code the source emits is in rules/*.toml, and every
//! catalogue entry is emitted somewhere.

use std::collections::BTreeSet;
use std::path::Path;

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
