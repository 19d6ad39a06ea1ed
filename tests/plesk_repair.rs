//! `relaydoctor plesk repair` against a real, private MariaDB: the plan, dry run, backup,
//! all-or-nothing apply on every schema variant, REPAIR TABLE of a crashed MyISAM table, a
//! server killed mid-apply, and a concurrent writer.

mod plesk_support;

use plesk_support::{fixture, relaydoctor, run, shared, Server, PASSWORD};
use std::io::BufRead;
use std::process::Stdio;

const VARIANTS: [&str; 4] = ["myisam", "innodb", "ipv6", "aria"];

/// What is left of bad-rows.sql after a repair without --include-whitelist (sorted, times
/// elided: `rows_shape` prints NOW()-relative rows as "lock").
fn shape(rows: &[String]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let mut p: Vec<&str> = r.split('\t').collect();
            if p.len() == 3 && p[2] != "NULL" {
                p[2] = "lock";
            }
            p.join(" ")
        })
        .collect()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn dry_run_writes_nothing_and_apply_repairs_every_variant() {
    let Some(s) = shared() else { return };
    for variant in VARIANTS {
        let db = s.psa(&format!("rep_{variant}"), variant, "");
        s.source(&db, &fixture("bad-rows.sql"));
        let before = s.rows(&db);

        // Dry run: JSON plan, nothing written, no backup.
        let mut c = relaydoctor(&s.url(&db));
        c.args(["plesk", "repair", "--format", "json"]);
        let o = run(c);
        assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
        let v = json(&o.stdout);
        assert_eq!(v["version"], 1);
        assert_eq!(v["applied"], false);
        assert!(v["backup"].is_null());
        let ops = v["operations"].as_array().unwrap();
        let deleted: usize = ops
            .iter()
            .map(|o| o["rows"].as_array().unwrap().len())
            .sum();
        assert_eq!(deleted, 8, "{variant}: {}", o.stdout);
        assert!(ops
            .iter()
            .all(|o| o["kind"] == "delete" && o["sql"].as_str().unwrap().contains("DELETE")));
        assert_eq!(
            s.rows(&db),
            before,
            "{variant}: the dry run changed the table"
        );

        // Text dry run: a diff and the SQL.
        let mut c = relaydoctor(&s.url(&db));
        c.args(["plesk", "repair"]);
        let o = run(c);
        assert!(
            o.stdout.contains("--- ") && o.stdout.contains("+++ "),
            "{}",
            o.stdout
        );
        assert!(o.stdout.contains("-999.1.1.1\t32\t"), "{}", o.stdout);
        assert!(o.stdout.contains("DELETE FROM"), "{}", o.stdout);

        // Apply.
        let backups = tempfile::tempdir().unwrap();
        let mut c = relaydoctor(&s.url(&db));
        c.args([
            "plesk",
            "repair",
            "--apply",
            "--format",
            "json",
            "--backup-dir",
        ])
        .arg(backups.path());
        let o = run(c);
        let v = json(&o.stdout);
        assert_eq!(v["applied"], true, "{variant}: {}{}", o.stdout, o.stderr);
        let backup = v["backup"].as_str().expect("backup path").to_string();
        assert!(
            o.stderr.contains(&backup),
            "backup path printed: {}",
            o.stderr
        );
        // The white-list open relay (0.0.0.0/0) stays without --include-whitelist: exit 1.
        assert_eq!(o.code, 1, "{}", o.stdout);
        let after = s.rows(&db);
        assert_eq!(
            shape(&after),
            vec![
                "0.0.0.0 0 NULL",
                "127.0.0.1 8 NULL",
                "192.0.2.77 24 NULL",
                "192.168.10.0 24 NULL",
                "192.168.10.0 24 NULL",
                "198.51.100.7 32 lock",
                "198.51.100.8 32 lock",
            ],
            "{variant}"
        );
        // The newest of the 198.51.100.7 locks was kept.
        let kept7 = after
            .iter()
            .find(|r| r.starts_with("198.51.100.7\t"))
            .unwrap();
        let newest7 = before
            .iter()
            .filter(|r| r.starts_with("198.51.100.7\t"))
            .max()
            .unwrap();
        assert_eq!(kept7, newest7);

        // The backup restores exactly the deleted rows.
        let text = std::fs::read_to_string(&backup).unwrap();
        assert!(text.trim_end().ends_with("-- end of backup"));
        s.sql_db(&db, &text);
        assert_eq!(
            s.rows(&db),
            before,
            "{variant}: backup + remaining rows != original"
        );

        // Repair again (after restoring), then once more: nothing left to do.
        let mut c = relaydoctor(&s.url(&db));
        c.args([
            "plesk",
            "repair",
            "--apply",
            "--format",
            "json",
            "--backup-dir",
        ])
        .arg(backups.path());
        let o = run(c);
        assert_eq!(json(&o.stdout)["applied"], true, "{}", o.stderr);
        let mut c = relaydoctor(&s.url(&db));
        c.args([
            "plesk",
            "repair",
            "--apply",
            "--format",
            "json",
            "--backup-dir",
        ])
        .arg(backups.path());
        let o = run(c);
        let v = json(&o.stdout);
        assert_eq!(
            v["operations"].as_array().unwrap().len(),
            0,
            "{variant}: {}",
            o.stdout
        );
        assert!(v["backup"].is_null());
    }
}

#[test]
fn include_whitelist_removes_open_relay_and_duplicate_whitelist_rows() {
    let Some(s) = shared() else { return };
    let db = s.psa("rep_wl", "myisam", "");
    s.source(&db, &fixture("bad-rows.sql"));
    let backups = tempfile::tempdir().unwrap();
    let mut c = relaydoctor(&s.url(&db));
    c.args([
        "plesk",
        "repair",
        "--apply",
        "--include-whitelist",
        "--backup-dir",
    ])
    .arg(backups.path());
    let o = run(c);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("plesk repair mail -y"), "{}", o.stdout);
    assert_eq!(
        shape(&s.rows(&db)),
        vec![
            "127.0.0.1 8 NULL",
            "192.0.2.77 24 NULL",
            "192.168.10.0 24 NULL",
            "198.51.100.7 32 lock",
            "198.51.100.8 32 lock"
        ]
    );
    // Healthy now: check --quiet is silent.
    let mut c = relaydoctor(&s.url(&db));
    c.args(["plesk", "check", "--quiet"]);
    let o = run(c);
    assert_eq!((o.code, o.stdout.as_str()), (0, ""));
}

/// Flip the MyISAM "crashed" state bit (byte 26 of the .MYI header, `changed` in
/// storage/myisam/mi_open.c's state layout) or overwrite the header.
fn damage_myi(s: &Server, db: &str, garbage: bool) {
    s.sql_root(&format!("FLUSH TABLES `{db}`.smtp_poplocks"));
    let path = s.datadir.join(db).join("smtp_poplocks.MYI");
    let mut b = std::fs::read(&path).unwrap();
    if garbage {
        b[..16].copy_from_slice(b"garbage-garbage!");
    } else {
        b[26] |= 0x02;
    }
    std::fs::write(&path, b).unwrap();
}

#[test]
fn crashed_myisam_is_detected_by_code_and_repaired() {
    let Some(s) = shared() else { return };
    // The crashed flag surfaces as handler error 145 (HA_ERR_CRASHED_ON_USAGE; SQL error
    // 1194 in other paths), an unreadable header as 130 (HA_ERR_NOT_A_TABLE).
    for (garbage, codes) in [(false, ["145", "1194"]), (true, ["130", "130"])] {
        let db = s.psa(&format!("crash_{garbage}"), "myisam", "");
        s.source(&db, &fixture("healthy.sql"));
        let before = s.rows(&db);
        damage_myi(s, &db, garbage);
        let mut c = relaydoctor(&s.url(&db));
        c.args(["plesk", "check", "--format", "json"]);
        let o = run(c);
        assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
        let v = json(&o.stdout);
        let f = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["code"] == "PL010")
            .cloned();
        let f = f.unwrap_or_else(|| panic!("no PL010: {}", o.stdout));
        let msg = f["message"].as_str().unwrap();
        assert!(
            codes.iter().any(|c| msg.contains(c)),
            "classified by code {codes:?}: {f}"
        );

        let mut c = relaydoctor(&s.url(&db));
        c.args(["plesk", "repair", "--format", "json"]);
        let o = run(c);
        let v = json(&o.stdout);
        assert_eq!(v["operations"][0]["kind"], "repair_table", "{}", o.stdout);

        let backups = tempfile::tempdir().unwrap();
        let mut c = relaydoctor(&s.url(&db));
        c.args(["plesk", "repair", "--apply", "--backup-dir"])
            .arg(backups.path());
        let o = run(c);
        assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
        assert!(o.stdout.contains("REPAIR TABLE"), "{}", o.stdout);
        assert_eq!(s.rows(&db), before);
        let mut c = relaydoctor(&s.url(&db));
        c.args(["plesk", "check", "--quiet"]);
        let o = run(c);
        assert_eq!((o.code, o.stdout.as_str()), (0, ""), "{}", o.stderr);
    }
}

/// Many expired rows, so the apply has real work; returns the database name.
fn seed_big(s: &Server, name: &str, variant: &str) -> String {
    let db = s.psa(name, variant, "");
    s.source(&db, &fixture("bad-rows.sql"));
    s.sql_db(
        &db,
        "INSERT INTO smtp_poplocks SELECT CONCAT('10.1.', seq DIV 250, '.', seq MOD 250), 32, \
         NOW() - INTERVAL 3 DAY FROM seq_1_to_20000",
    );
    db
}

#[test]
fn server_killed_mid_apply_leaves_the_table_whole() {
    if !plesk_support::available() {
        return;
    }
    std::thread::scope(|scope| {
        for variant in VARIANTS {
            scope.spawn(move || kill_mid_apply(variant));
        }
    });
}

fn kill_mid_apply(variant: &str) {
    let mut s = Server::start();
    let db = seed_big(&s, "fault", variant);
    let before = s.rows(&db);
    let backups = tempfile::tempdir().unwrap();
    let mut child = relaydoctor(&s.url(&db))
        .args(["plesk", "repair", "--apply", "--backup-dir"])
        .arg(backups.path())
        .env("RELAYDOCTOR_TEST_PAUSE_BEFORE_COMMIT", "30")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("{variant}: relaydoctor ended before the pause: {seen}");
        }
        seen.push_str(&line);
        if line.contains("test pause before commit") {
            break;
        }
    }
    s.kill();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    assert!(!seen.contains(PASSWORD) && !rest.contains(PASSWORD));
    assert_ne!(
        status.code(),
        Some(0),
        "{variant}: apply cannot succeed without its server"
    );
    s.run();
    let after = s.rows(&db);
    assert_eq!(
        after.len(),
        before.len(),
        "{variant}: half-applied ({} of {} rows)",
        after.len(),
        before.len()
    );
    assert_eq!(
        after, before,
        "{variant}: the table changed although the commit never happened"
    );
    // The backup was complete before anything changed.
    let files: Vec<_> = std::fs::read_dir(backups.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{variant}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        text.trim_end().ends_with("-- end of backup"),
        "{variant}: truncated backup"
    );
    let rows_in_backup = text.lines().filter(|l| l.starts_with("  (")).count();
    assert_eq!(rows_in_backup, 20_008, "{variant}");

    // MyISAM/Aria: the kill left the work table; check says so.
    if variant == "myisam" || variant == "aria" {
        let mut c = relaydoctor(&s.url(&db));
        c.args(["plesk", "check", "--format", "json"]);
        let o = run(c);
        assert!(o.stdout.contains("\"PL041\""), "{variant}: {}", o.stdout);
    }
    // A new apply finishes the job (and drops the MyISAM work table the kill left).
    let mut c = relaydoctor(&s.url(&db));
    c.args(["plesk", "repair", "--apply", "--backup-dir"])
        .arg(backups.path());
    let o = run(c);
    assert_eq!(o.code, 1, "{variant}: {}{}", o.stdout, o.stderr);
    assert_eq!(s.rows(&db).len(), before.len() - 20_008, "{variant}");
    assert!(!o.stdout.contains("PL041"), "{variant}: {}", o.stdout);
}

/// Kills at other moments than the commit point (during the backup, the load, the verify,
/// the build or delete, the swap): the table is always either untouched or fully repaired.
#[test]
fn server_killed_at_any_moment_leaves_the_table_unchanged_or_repaired() {
    if !plesk_support::available() {
        return;
    }
    std::thread::scope(|scope| {
        for variant in VARIANTS {
            scope.spawn(move || {
                let mut s = Server::start();
                for (i, delay_ms) in [0u64, 150, 400, 900].into_iter().enumerate() {
                    let db = seed_big(&s, &format!("anykill{i}"), variant);
                    let before = s.rows(&db);
                    let backups = tempfile::tempdir().unwrap();
                    let mut child = relaydoctor(&s.url(&db))
                        .args(["plesk", "repair", "--apply", "--backup-dir"])
                        .arg(backups.path())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap();
                    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
                    let mut line = String::new();
                    // The backup path is printed just before the change starts.
                    while err.read_line(&mut line).unwrap() > 0 && !line.contains("backup of") {
                        line.clear();
                    }
                    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                    s.kill();
                    let _ = child.wait();
                    s.run();
                    let after = s.rows(&db);
                    let repaired = after.len() == before.len() - 20_008;
                    assert!(
                        after == before || repaired,
                        "{variant} killed {delay_ms} ms in: {} rows, neither {} (unchanged) nor {} (repaired)",
                        after.len(),
                        before.len(),
                        before.len() - 20_008
                    );
                    if repaired {
                        // Both sorted: every remaining row was there before (a sub-multiset).
                        let mut b = before.iter();
                        for r in &after {
                            assert!(b.any(|x| x == r), "{variant}: row {r} was not there before");
                        }
                    }
                }
            });
        }
    });
}

#[test]
fn concurrent_writer_loses_nothing() {
    let Some(s) = shared() else { return };
    std::thread::scope(|scope| {
        for variant in VARIANTS {
            scope.spawn(move || concurrent(s, variant));
        }
    });
}

fn concurrent(s: &Server, variant: &str) {
    use mysql::prelude::Queryable;
    let db = seed_big(s, &format!("conc_{variant}"), variant);
    let before = s.rows(&db).len();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let url = s.url(&db);
    let backups = tempfile::tempdir().unwrap();
    let written = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut conn = mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).unwrap();
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                conn.exec_drop(
                    "INSERT INTO smtp_poplocks VALUES (?, 32, NOW())",
                    (format!("10.200.{}.{}", n / 250, n % 250),),
                )
                .unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            n
        });
        let mut c = relaydoctor(&url);
        c.args(["plesk", "repair", "--apply", "--backup-dir"])
            .arg(backups.path());
        c.env("RELAYDOCTOR_TEST_PAUSE_BEFORE_COMMIT", "1");
        let o = run(c);
        // Keep writing a moment after the swap/commit.
        std::thread::sleep(std::time::Duration::from_millis(300));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let n = writer.join().unwrap();
        assert!(
            o.stdout.contains("Applied"),
            "{variant}: {}{}",
            o.stdout,
            o.stderr
        );
        n
    });
    let rows = s.rows(&db);
    for n in 1..=written {
        let ip = format!("10.200.{}.{}\t", n / 250, n % 250);
        let c = rows.iter().filter(|r| r.starts_with(&ip)).count();
        assert_eq!(c, 1, "{variant}: writer row {ip} present {c} times");
    }
    assert_eq!(
        rows.len() as u32,
        before as u32 - 20_008 + written,
        "{variant}"
    );
}

/// A server with local_infile=OFF refuses LOAD DATA LOCAL: the plan is loaded with INSERTs
/// instead, with the same result.
#[test]
fn repair_works_without_local_infile() {
    if !plesk_support::available() {
        return;
    }
    let s = Server::start();
    s.sql_root("SET GLOBAL local_infile = 0");
    for variant in ["myisam", "innodb"] {
        let db = s.psa(&format!("noinfile_{variant}"), variant, "");
        s.source(&db, &fixture("bad-rows.sql"));
        let backups = tempfile::tempdir().unwrap();
        let mut c = relaydoctor(&s.url(&db));
        c.args(["plesk", "repair", "--apply", "--backup-dir"])
            .arg(backups.path());
        c.env("RELAYDOCTOR_TIMING", "1");
        let o = run(c);
        assert!(o.stderr.contains("LOAD DATA refused"), "{}", o.stderr);
        assert_eq!(s.rows(&db).len(), 7, "{variant}: {}{}", o.stdout, o.stderr);
    }
}
