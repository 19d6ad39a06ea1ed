//! Plesk 17.8 (Onyx) / 18 (Obsidian): the credential chain as Plesk itself resolves it
//! (.psa.shadow verbatim, dsn.ini `[general]`, localhost = the socket of my.cnf), the
//! ServiceNodeConfiguration settings per node, rows identified by (ip_address, ip_mask,
//! serviceNodeId), whole-row repairs and the white-list review. One socket-only MariaDB per
//! run of this binary; MySQL user admin's password is an `$AES-128-CBC$...`-shaped string, as
//! on a real server, and every test reaches it only through files under a --root.

mod plesk_support;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use plesk_support::{fixture, run, Out, Server, PASSWORD};

/// Shaped like what Plesk 17.8+ stores in /etc/psa/.psa.shadow; it is the MySQL password.
const AES: &str = "$AES-128-CBC$Zm9vYmFyYmF6cXV4MTIzNA==$c2VjcmV0LXNoYWRvdy1wYXNzd29yZA==";

fn server() -> Option<&'static Server> {
    static S: OnceLock<Option<Server>> = OnceLock::new();
    S.get_or_init(|| {
        plesk_support::available().then(|| {
            let s = Server::start_with(false);
            s.sql_root(&format!(
                "ALTER USER 'admin'@'localhost' IDENTIFIED BY '{AES}'; \
                 ALTER USER 'admin'@'%' IDENTIFIED BY '{AES}'"
            ));
            s
        })
    })
    .as_ref()
}

/// A Plesk server's files: .psa.shadow, dsn.ini naming only the database, my.cnf naming
/// the socket.
fn root(s: &Server, db: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let psa = dir.path().join("etc/psa/private");
    std::fs::create_dir_all(&psa).unwrap();
    std::fs::write(dir.path().join("etc/psa/.psa.shadow"), format!("{AES}\n")).unwrap();
    std::fs::write(
        psa.join("dsn.ini"),
        format!("[general]\ndatabase.dbname = {db}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("etc/my.cnf"),
        format!(
            "[mysqld]\nsocket={}\n!includedir /etc/my.cnf.d\n",
            s.socket.display()
        ),
    )
    .unwrap();
    dir
}

/// `relaydoctor plesk ARGS --root ROOT`, the password checked absent from the output.
fn go(root: &Path, args: &[&str]) -> Out {
    let mut c = Command::new(env!("CARGO_BIN_EXE_relaydoctor"));
    c.env_remove("RELAYDOCTOR_DB_URL")
        .env_remove("MYSQL_UNIX_PORT")
        .env("NO_COLOR", "1")
        .arg("plesk")
        .args(args)
        .arg("--root")
        .arg(root);
    let o = run(c);
    assert!(
        !o.stdout.contains(AES) && !o.stderr.contains(AES) && !o.stdout.contains(PASSWORD),
        "the password leaked:\n{}{}",
        o.stdout,
        o.stderr
    );
    o
}

fn json(o: &Out) -> serde_json::Value {
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", o.stdout, o.stderr))
}

fn codes(o: &Out) -> Vec<String> {
    json(o)["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().unwrap_or("").to_string())
        .collect()
}

fn check(s: &Server, db: &str) -> Out {
    let r = root(s, db);
    go(r.path(), &["check", "--format", "json"])
}

#[test]
fn healthy_onyx_server_connects_through_the_plesk_files_and_is_clean() {
    let Some(s) = server() else { return };
    let db = s.psa_onyx("healthy", "");
    s.source(&db, &fixture("healthy-onyx.sql"));
    let r = root(s, &db);
    let o = go(r.path(), &["check"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    // The socket from my.cnf, the credentials from dsn.ini plus .psa.shadow.
    assert!(
        o.stdout.contains(&s.socket.display().to_string()),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("dsn.ini and "), "{}", o.stdout);
    assert!(o.stdout.contains(".psa.shadow"), "{}", o.stdout);
    assert!(o.stdout.contains("No problems found"), "{}", o.stdout);
    assert!(o.stdout.contains("Plesk 17.8+"), "{}", o.stdout);
    // Nagios OK, not CRITICAL for ever.
    let o = go(r.path(), &["check", "--format", "nagios"]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.starts_with("RELAYDOCTOR OK - "), "{}", o.stdout);
}

#[test]
fn shadow_alone_and_a_wrong_saved_password() {
    let Some(s) = server() else { return };
    s.sql_root("DROP DATABASE IF EXISTS psa; CREATE DATABASE psa");
    s.source("psa", &fixture("schema-onyx.sql"));
    s.source("psa", &fixture("settings-onyx.sql"));
    s.source("psa", &fixture("healthy-onyx.sql"));
    let r = root(s, "psa");
    std::fs::remove_file(r.path().join("etc/psa/private/dsn.ini")).unwrap();
    let o = go(r.path(), &["check"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    // A stale .psa.shadow: error 1045 in Plesk's words, without either password.
    let stale = "$AES-128-CBC$c3RhbGU=$c3RhbGUtcGFzc3dvcmQ=";
    std::fs::write(r.path().join("etc/psa/.psa.shadow"), stale).unwrap();
    let o = go(r.path(), &["check", "--format", "nagios"]);
    assert_eq!(o.code, 3, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.starts_with("RELAYDOCTOR UNKNOWN - "),
        "{}",
        o.stdout
    );
    let o = go(r.path(), &["check"]);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("1045"), "{}", o.stderr);
    assert!(
        o.stderr.contains("saved admin password is incorrect"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains(stale), "{}", o.stderr);
    // dsn.ini's database.password wins over .psa.shadow.
    std::fs::write(
        r.path().join("etc/psa/private/dsn.ini"),
        format!("[general]\ndatabase.username=admin\ndatabase.password=\"{AES}\"\ndatabase.host=localhost\n"),
    )
    .unwrap();
    let o = go(r.path(), &["check"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
}

#[test]
fn nodes_are_part_of_a_rows_identity() {
    let Some(s) = server() else { return };
    let db = s.psa_onyx("multinode", "");
    s.source(&db, &fixture("multinode-onyx.sql"));
    let o = check(s, &db);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let v = json(&o);
    let rows = &v["database"]["rows"];
    // Node 1: one older duplicate and one exact copy; node 2's equal values are not copies.
    assert_eq!(rows["duplicates"], 2, "{}", o.stdout);
    // Expired by node 1's 20 minutes, not by node 2's 30.
    assert_eq!(rows["expired"], 1, "{}", o.stdout);
    let got = codes(&o);
    // Node 2 keeps POP-before-SMTP off (Plesk's default) and has lock rows.
    assert!(got.contains(&"PL037".into()), "{got:?}");
    assert!(!got.contains(&"PL002".into()), "no drift: {got:?}");
    assert!(!got.contains(&"PL021".into()), "settings found: {got:?}");
    assert!(!got.contains(&"PL044".into()), "{got:?}");
}

fn all_rows(s: &Server, db: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .sql_db(
            db,
            "SELECT ip_address, ip_mask, IFNULL(lock_time, 'NULL'), serviceNodeId, IFNULL(note, 'NULL') FROM smtp_poplocks",
        )
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn repair_keeps_nodes_and_unknown_columns_and_the_backup_restores_them() {
    let Some(s) = server() else { return };
    let db = s.psa_onyx("repair", "");
    s.sql_db(
        &db,
        "ALTER TABLE smtp_poplocks ADD COLUMN note varchar(20) NULL",
    );
    s.source(&db, &fixture("multinode-onyx.sql"));
    s.sql_db(
        &db,
        "UPDATE smtp_poplocks SET note = CONCAT('n', serviceNodeId)",
    );
    let before = all_rows(s, &db);
    let r = root(s, &db);
    let backups = tempfile::tempdir().unwrap();
    let b = backups.path().to_str().unwrap();
    let o = go(r.path(), &["repair", "--apply", "--backup-dir", b]);
    assert_eq!(o.code, 1, "PL037 remains: {}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("backup of the 3 row(s)"), "{}", o.stderr);
    let after = all_rows(s, &db);
    assert_eq!(after.len(), before.len() - 3, "{after:?}");
    // Node 2's rows are untouched, the kept copy on node 1 has its note.
    assert_eq!(
        after.iter().filter(|r| r.ends_with("\t2\tn2")).count(),
        3,
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .all(|r| r.ends_with("\tn1") || r.ends_with("\tn2")),
        "{after:?}"
    );
    assert_eq!(
        after
            .iter()
            .filter(|r| r.starts_with("198.51.100.8\t"))
            .count(),
        2,
        "{after:?}"
    );
    // The backup restores exactly what was removed, nodes and notes included.
    let file = std::fs::read_dir(backups.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("serviceNodeId") && text.ends_with("-- end of backup\n"),
        "{text}"
    );
    s.source(&db, &file);
    assert_eq!(all_rows(s, &db), before);
}

#[test]
fn settings_per_node_with_misc_fallback() {
    let Some(s) = server() else { return };
    let cases: [(&str, &str, &str); 6] = [
        ("smtpoff", "UPDATE ServiceNodeConfiguration SET value = '1' WHERE serviceNodeId = 1 AND name = 'disable_smtp_auth'", "PL024"),
        ("open", "UPDATE ServiceNodeConfiguration SET value = 'open' WHERE serviceNodeId = 2 AND name = 'relay'", "PL020"),
        ("hours", "UPDATE ServiceNodeConfiguration SET value = '720' WHERE serviceNodeId = 1 AND name = 'poplock_time'", "PL025"),
        ("truthy", "UPDATE ServiceNodeConfiguration SET value = 'true' WHERE serviceNodeId = 2 AND name = 'disable_pop_auth'", "PL026"),
        ("noauth", "UPDATE ServiceNodeConfiguration SET value = '1' WHERE serviceNodeId = 1 AND name LIKE 'disable_%'", "PL023"),
        ("norelay", "DELETE FROM ServiceNodeConfiguration WHERE name = 'relay' AND serviceNodeId = 1", "PL021"),
    ];
    for (name, sql, want) in cases {
        let db = s.psa_onyx(&format!("set_{name}"), sql);
        s.source(&db, &fixture("healthy-onyx.sql"));
        let got = codes(&check(s, &db));
        assert!(
            got.contains(&want.to_string()),
            "{name}: {want} not in {got:?}"
        );
    }
    // A key missing from ServiceNodeConfiguration is read from misc.
    let db = s.psa_onyx(
        "fallback",
        "DELETE FROM ServiceNodeConfiguration WHERE name = 'relay'; \
         INSERT INTO misc VALUES ('relay', 'auth')",
    );
    s.source(&db, &fixture("healthy-onyx.sql"));
    let o = check(s, &db);
    assert_eq!(o.code, 0, "{}", o.stdout);
}

#[test]
fn white_list_review() {
    let Some(s) = server() else { return };
    let db = s.psa_onyx(
        "whitelist",
        "UPDATE ServiceNodeConfiguration SET value = '1' WHERE name = 'disable_pop_auth'; \
         INSERT INTO smtp_poplocks VALUES ('127.0.0.1', 8, NULL, 1), \
           ('192.0.2.0', 24, NULL, 1), ('203.0.0.0', 16, NULL, 1), ('0.0.0.0', 0, NULL, 1), \
           ('::1', 128, NULL, 2)",
    );
    let o = check(s, &db);
    let v = json(&o);
    let f = v["findings"].as_array().unwrap();
    let by = |code: &str| -> Vec<&serde_json::Value> {
        f.iter().filter(|x| x["code"] == code).collect()
    };
    // Every entry beyond the defaults, as info.
    // (192.0.2.0/24 only: the wide ones have their own findings.)
    assert_eq!(by("PL042").len(), 1, "{}", o.stdout);
    assert!(by("PL042").iter().all(|x| x["severity"] == "info"));
    assert_eq!(by("PL043").len(), 1, "{}", o.stdout);
    assert!(by("PL043")[0]["message"]
        .as_str()
        .unwrap()
        .contains("203.0.0.0"));
    assert_eq!(by("PL040").len(), 1, "{}", o.stdout);
    // Node 2 has ::1 only: webmail over 127.0.0.1 is refused there.
    assert_eq!(by("PL044").len(), 1, "{}", o.stdout);
    assert!(by("PL044")[0]["message"]
        .as_str()
        .unwrap()
        .contains("node 2"));
}

#[test]
fn many_expired_locks_are_counted_listed_in_part_and_all_backed_up() {
    let Some(s) = server() else { return };
    let db = s.psa_onyx(
        "many_expired",
        "INSERT INTO smtp_poplocks (ip_address, ip_mask, lock_time, serviceNodeId) \
         SELECT CONCAT('10.9.', seq DIV 256, '.', seq MOD 256), 32, NOW() - INTERVAL 2 DAY, 1 \
         FROM seq_1_to_1500",
    );
    s.source(&db, &fixture("multinode-onyx.sql"));
    let r = root(s, &db);
    let o = go(r.path(), &["repair", "--format", "json"]);
    let v = json(&o);
    let ops = v["operations"].as_array().unwrap();
    let expired = ops.iter().find(|o| o["reason"] == "expired").unwrap();
    assert_eq!(expired["count"], 1501, "{}", o.stdout);
    assert_eq!(expired["rows"].as_array().unwrap().len(), 1000);
    let dups = ops.iter().find(|o| o["reason"] == "duplicate").unwrap();
    assert_eq!(dups["count"], 2, "{}", o.stdout);
    let backups = tempfile::tempdir().unwrap();
    let b = backups.path().to_str().unwrap();
    let o = go(r.path(), &["repair", "--apply", "--backup-dir", b]);
    assert!(
        o.stderr.contains("backup of the 1503 row(s)"),
        "{}",
        o.stderr
    );
    let left = s.sql_db(&db, "SELECT COUNT(*) FROM smtp_poplocks");
    assert_eq!(left.trim(), "6", "{}{}", o.stdout, o.stderr);
}
