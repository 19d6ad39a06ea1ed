//! Documentation generated from the catalogue and the CLI definitions stays current.

#[test]
fn docs_rules_md_is_generated_from_the_catalogue() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let fresh = relaydoctor::report::rules::markdown();
    assert!(
        committed == fresh,
        "docs/rules.md is stale: run `cargo run -- rules --format markdown > docs/rules.md`"
    );
}

#[test]
fn every_rule_explanation_has_a_bad_and_a_good_example() {
    let missing: Vec<_> = relaydoctor::catalogue::all()
        .values()
        .filter(|r| r.bad.is_none() || r.good.is_none())
        .map(|r| r.code.clone())
        .collect();
    assert!(
        missing.is_empty(),
        "rules without bad/good examples: {missing:?}"
    );
}

#[test]
fn man_page_and_completions_come_from_the_cli_definitions() {
    let man = relaydoctor::commands::manpage_roff();
    for needle in [
        "relaydoctor",
        "RELAYDOCTOR LINT",
        "\\-\\-fail\\-on",
        "EXIT STATUS",
    ] {
        assert!(man.contains(needle), "man page lacks {needle}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = assert_cmd::Command::cargo_bin("relaydoctor")
            .unwrap()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("--fail-on") && text.contains("simulate"),
            "{shell}"
        );
    }
}
