//! `relaydoctor plesk check` against a real, private MariaDB (tests/plesk_support).

mod plesk_support;

use plesk_support::{fixture, relaydoctor, run, shared};

fn codes(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn healthy_database_is_silent_with_quiet() {
    let Some(s) = shared() else { return };
    for variant in ["myisam", "innodb", "ipv6", "aria"] {
        let db = s.psa(&format!("healthy_{variant}"), variant, "");
        s.source(&db, &fixture("healthy.sql"));
        let mut c = relaydoctor(&s.url(&db));
        c.args(["plesk", "check", "--quiet"]);
        let o = run(c);
        assert_eq!(o.code, 0, "{variant}: {}{}", o.stdout, o.stderr);
        assert_eq!(o.stdout, "", "{variant}");
        assert_eq!(o.stderr, "", "{variant}");
    }
}

#[test]
fn every_row_problem_is_found() {
    let Some(s) = shared() else { return };
    for variant in ["myisam", "innodb", "ipv6", "aria"] {
        let db = s.psa(&format!("bad_{variant}"), variant, "");
        s.source(&db, &fixture("bad-rows.sql"));
        let mut c = relaydoctor(&s.url(&db));
        c.args(["plesk", "check", "--format", "json"]);
        let o = run(c);
        assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
        let got = codes(&o.stdout);
        for want in [
            "PL030", "PL031", "PL032", "PL033", "PL034", "PL035", "PL036", "PL040",
        ] {
            assert!(
                got.contains(&want.to_string()),
                "{variant}: {want} missing in {got:?}\n{}",
                o.stdout
            );
        }
    }
}
