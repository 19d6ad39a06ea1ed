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

#[test]
fn ipv6_rows_and_narrow_columns() {
    let Some(s) = shared() else { return };
    let db = s.psa(
        "v6_wide",
        "ipv6",
        "INSERT INTO smtp_poplocks VALUES ('2001:db8::1', 128, NOW()), ('::', 0, NULL), \
         ('fd00::', 8, NULL), ('2001:db8::', 129, NOW())",
    );
    let mut c = relaydoctor(&s.url(&db));
    c.args(["plesk", "check", "--format", "json"]);
    let o = run(c);
    let got = codes(&o.stdout);
    assert!(
        got.contains(&"PL040".to_string()),
        "::/0 is an open relay: {got:?}"
    );
    assert!(
        got.contains(&"PL031".to_string()),
        "/129 is out of range: {got:?}"
    );
    assert!(!got.contains(&"PL030".to_string()), "{got:?}");
    assert_eq!(
        got.iter().filter(|c| *c == "PL040").count(),
        1,
        "fd00::/8 is private: {}",
        o.stdout
    );

    // varchar(15) cuts an IPv6 address off (non-strict mode): invalid, with the reason.
    let db = s.psa(
        "v6_narrow",
        "myisam",
        "SET SESSION sql_mode = ''; INSERT INTO smtp_poplocks VALUES ('2001:0db8:85a3:0000:0000:8a2e:0370:7334', 128, NOW())",
    );
    let mut c = relaydoctor(&s.url(&db));
    c.args(["plesk", "check"]);
    let o = run(c);
    assert!(
        o.stdout.contains("PL030") && o.stdout.contains("too narrow for IPv6"),
        "{}",
        o.stdout
    );
}
