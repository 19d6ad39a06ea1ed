//! The `relaydoctor plesk` command line: settings and schema findings, exit codes, --quiet,
//! the Nagios format, and the rendered text (insta snapshot), against a private MariaDB.

mod plesk_support;

use assert_cmd::Command;
use plesk_support::{fixture, shared, Server, PASSWORD};

fn rd(s: &Server, db: &str) -> Command {
    let mut c = Command::cargo_bin("relaydoctor").unwrap();
    c.env("RELAYDOCTOR_DB_URL", s.url(db))
        .env("NO_COLOR", "1")
        .env_remove("MYSQL_UNIX_PORT");
    c
}

fn output(c: &mut Command) -> (i32, String, String) {
    let o = c.output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));
    (o.status.code().unwrap_or(-1), out, err)
}

fn codes(s: &Server, db: &str) -> Vec<String> {
    let (_, out, err) = output(rd(s, db).args(["plesk", "check", "--format", "json"]));
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn quiet_is_silent_when_healthy_and_speaks_when_not() {
    let Some(s) = shared() else { return };
    let db = s.psa("cli_quiet", "myisam", "");
    s.source(&db, &fixture("healthy.sql"));
    rd(s, &db)
        .args(["plesk", "check", "--quiet"])
        .assert()
        .code(0)
        .stdout("")
        .stderr("");
    rd(s, &db)
        .args(["plesk", "check", "-q", "--format", "json"])
        .assert()
        .code(0)
        .stdout("");
    s.sql_db(
        &db,
        "INSERT INTO smtp_poplocks VALUES ('203.0.113.5', 32, NOW() - INTERVAL 2 DAY)",
    );
    let (code, out, _) = output(rd(s, &db).args(["plesk", "check", "--quiet"]));
    assert_eq!(code, 1);
    assert!(out.contains("PL036"), "{out}");
    // --fail-on error: an expired lock (warning) no longer fails, so --quiet is silent again.
    rd(s, &db)
        .args(["plesk", "check", "--quiet", "--fail-on", "error"])
        .assert()
        .code(0)
        .stdout("");
}

#[test]
fn relay_settings_in_misc() {
    let Some(s) = shared() else { return };
    let cases: [(&str, &str, &str); 6] = [
        (
            "open",
            "UPDATE misc SET val = 'open' WHERE param = 'relay'",
            "PL020",
        ),
        (
            "weird",
            "UPDATE misc SET val = 'sometimes' WHERE param = 'relay'",
            "PL021",
        ),
        ("norelay", "DELETE FROM misc WHERE param = 'relay'", "PL021"),
        (
            "poplock",
            "UPDATE misc SET val = '-5' WHERE param = 'poplock_time'",
            "PL022",
        ),
        (
            "noauth",
            "UPDATE misc SET val = 'true' WHERE param IN ('disable_pop_auth', 'disable_smtp_auth')",
            "PL023",
        ),
        (
            "popoff",
            "UPDATE misc SET val = 'true' WHERE param = 'disable_pop_auth'",
            "PL037",
        ),
    ];
    for (name, sql, want) in cases {
        let db = s.psa(&format!("set_{name}"), "innodb", "");
        s.source(&db, &fixture("healthy.sql"));
        s.sql_db(&db, sql);
        let got = codes(s, &db);
        assert!(
            got.contains(&want.to_string()),
            "{name}: {want} not in {got:?}"
        );
    }
    let db = s.psa("set_nomisc", "innodb", "");
    s.sql_db(&db, "DROP TABLE misc");
    assert!(codes(s, &db).contains(&"PL021".to_string()));
    // relay=open is an open-relay finding.
    let db = s.psa(
        "set_open_cat",
        "innodb",
        "UPDATE misc SET val = 'open' WHERE param = 'relay'",
    );
    let (_, out, _) = output(rd(s, &db).args(["plesk", "check", "--format", "json"]));
    assert!(out.contains("\"category\": \"open-relay\""), "{out}");
}

#[test]
fn schema_drift_is_reported_and_blocks_repairs() {
    let Some(s) = shared() else { return };
    let db = s.psa("drift", "myisam", "");
    s.source(&db, &fixture("bad-rows.sql"));
    // An unknown extra column is reported, but repairs copy whole rows, so they run.
    s.sql_db(
        &db,
        "ALTER TABLE smtp_poplocks ADD COLUMN note varchar(20) NULL DEFAULT 'kept'",
    );
    assert!(codes(s, &db).contains(&"PL002".to_string()));
    let backups = tempfile::tempdir().unwrap();
    let (code, _, err) = output(
        rd(s, &db)
            .args(["plesk", "repair", "--apply", "--backup-dir"])
            .arg(backups.path()),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("backup of"), "{err}");
    let notes = s.sql_db(&db, "SELECT DISTINCT note FROM smtp_poplocks");
    assert_eq!(notes.trim(), "kept");
    // A known column with another type blocks repairs.
    let db = s.psa("drift_type", "myisam", "");
    s.source(&db, &fixture("bad-rows.sql"));
    s.sql_db(
        &db,
        "ALTER TABLE smtp_poplocks MODIFY ip_mask varchar(5) NOT NULL",
    );
    assert!(codes(s, &db).contains(&"PL002".to_string()));
    let (code, _, err) = output(
        rd(s, &db)
            .args(["plesk", "repair", "--apply", "--backup-dir"])
            .arg(backups.path()),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("repair refused"), "{err}");
    let db = s.psa("drift_missing", "innodb", "");
    s.sql_db(&db, "ALTER TABLE smtp_poplocks DROP COLUMN lock_time");
    let got = codes(s, &db);
    assert!(got.contains(&"PL003".to_string()), "{got:?}");
    // A known variant is not drift.
    // A known variant of either generation is not drift.
    let db = s.psa("drift_none", "ipv6", "");
    s.source(&db, &fixture("healthy.sql"));
    let got = codes(s, &db);
    assert!(!got.iter().any(|c| c == "PL002" || c == "PL003"), "{got:?}");
    let db = s.psa_onyx("drift_none_onyx", "");
    s.source(&db, &fixture("healthy-onyx.sql"));
    assert!(codes(s, &db).is_empty(), "{:?}", codes(s, &db));
}

#[test]
fn nagios_status_line_and_exit_codes() {
    let Some(s) = shared() else { return };
    let db = s.psa("nagios", "aria", "");
    s.source(&db, &fixture("healthy.sql"));
    let (code, out, _) = output(rd(s, &db).args(["plesk", "check", "--format", "nagios"]));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("RELAYDOCTOR OK - "), "{out}");
    assert!(
        out.contains(" rows=3 whitelist=2 poplocks=1 expired=0"),
        "{out}"
    );
    rd(s, &db)
        .args(["plesk", "check", "--format", "nagios", "--quiet"])
        .assert()
        .code(0)
        .stdout("");

    s.sql_db(
        &db,
        "INSERT INTO smtp_poplocks VALUES ('203.0.113.5', 32, NOW() - INTERVAL 2 DAY)",
    );
    let (code, out, _) = output(rd(s, &db).args(["plesk", "check", "--format", "nagios"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("RELAYDOCTOR WARNING - "), "{out}");
    assert!(out.contains("expired=1"), "{out}");

    s.sql_db(&db, "INSERT INTO smtp_poplocks VALUES ('0.0.0.0', 0, NULL)");
    let (code, out, _) = output(rd(s, &db).args(["plesk", "check", "--format", "nagios"]));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("RELAYDOCTOR CRITICAL - ") && out.contains("PL040"),
        "{out}"
    );
    assert!(out.contains("open_relay=1"), "{out}");
}

#[test]
fn text_rendering_snapshot() {
    let Some(s) = shared() else { return };
    // Only rows without times, so the text is stable.
    let db = s.psa(
        "snap",
        "myisam",
        "UPDATE misc SET val = 'true' WHERE param IN ('disable_pop_auth', 'disable_smtp_auth'); \
         INSERT INTO smtp_poplocks VALUES ('127.0.0.1', 8, NULL), ('0.0.0.0', 0, NULL), \
         ('198.51.0.0', 16, NULL), ('10.0.0.0', 8, NULL), ('10.0.0.0', 8, NULL), ('300.1.1.1', 32, NULL)",
    );
    let (code, out, _) = output(rd(s, &db).args(["plesk", "check"]));
    assert_eq!(code, 1);
    let out = out.replace(&format!(":{}/", s.port), ":PORT/");
    insta::assert_snapshot!("plesk_check_text", out);

    let (code, out, _) = output(rd(s, &db).args(["plesk", "repair", "--include-whitelist"]));
    assert_eq!(code, 1);
    let out = out.replace(&format!(":{}/", s.port), ":PORT/");
    insta::assert_snapshot!("plesk_repair_dry_run_text", out);
}
