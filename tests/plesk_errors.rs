//! Credentials and every error path of `relaydoctor plesk`: exit codes, clear messages, and
//! never the password (plesk_support::run asserts it is absent from stdout and stderr).

mod plesk_support;

use plesk_support::{fixture, relaydoctor, run, shared, Out, PASSWORD, USER};
use std::process::Command;

fn bare() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_relaydoctor"));
    c.env_remove("RELAYDOCTOR_DB_URL")
        .env_remove("MYSQL_UNIX_PORT")
        .env("NO_COLOR", "1");
    c
}

fn no_secret(o: &Out, secret: &str) {
    assert!(
        !o.stdout.contains(secret) && !o.stderr.contains(secret),
        "{secret} leaked: {}{}",
        o.stdout,
        o.stderr
    );
}

#[test]
fn wrong_password_is_exit_2_without_the_password() {
    let Some(s) = shared() else { return };
    let db = s.psa("wrongpw", "myisam", "");
    let wrong = "Wrong-Secret-77-qq";
    let url = format!("mysql://{USER}:{wrong}@127.0.0.1:{}/{db}", s.port);
    for fmt in ["text", "json"] {
        let mut c = relaydoctor(&url);
        c.args(["plesk", "check", "--format", fmt]);
        let o = run(c);
        no_secret(&o, wrong);
        assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
        assert!(o.stderr.contains("1045"), "{}", o.stderr);
        assert!(
            o.stderr.contains("password"),
            "names the problem: {}",
            o.stderr
        );
    }
    let mut c = relaydoctor(&url);
    c.args(["plesk", "check", "--format", "nagios"]);
    let o = run(c);
    no_secret(&o, wrong);
    assert_eq!(o.code, 3);
    assert!(
        o.stdout.starts_with("RELAYDOCTOR UNKNOWN - "),
        "{}",
        o.stdout
    );
    assert_eq!(o.stdout.lines().count(), 1);
}

#[test]
fn unreachable_host_is_exit_2() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("mysql://{USER}:{PASSWORD}@127.0.0.1:{port}/psa");
    let mut c = relaydoctor(&url);
    c.args(["plesk", "check"]);
    let o = run(c);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("cannot connect"), "{}", o.stderr);
    let mut c = relaydoctor(&url);
    c.args(["plesk", "repair", "--apply"]);
    let o = run(c);
    assert_eq!(o.code, 2, "{}", o.stderr);
    let mut c = relaydoctor(&url);
    c.args(["plesk", "check", "--format", "nagios"]);
    let o = run(c);
    assert_eq!(o.code, 3, "{}", o.stdout);
}

#[test]
fn missing_database_is_exit_2() {
    let Some(s) = shared() else { return };
    let mut c = relaydoctor(&s.url("no_such_database"));
    c.args(["plesk", "check"]);
    let o = run(c);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("1049"), "{}", o.stderr);
}

#[test]
fn missing_table_is_a_finding() {
    let Some(s) = shared() else { return };
    let db = s.database("notable");
    s.source(&db, &fixture("misc.sql"));
    let mut c = relaydoctor(&s.url(&db));
    c.args(["plesk", "check", "--format", "json"]);
    let o = run(c);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("\"PL001\""), "{}", o.stdout);
    let mut c = relaydoctor(&s.url(&db));
    c.args(["plesk", "repair", "--apply"]);
    let o = run(c);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
}

#[test]
fn bad_urls_are_exit_2_without_the_password() {
    for url in [
        format!("mysql://{USER}:{PASSWORD}@127.0.0.1:notaport/psa"),
        format!("http://{USER}:{PASSWORD}@127.0.0.1/psa"),
        format!("mysql://{USER}:{PASSWORD}@127.0.0.1/psa?bogus_param=1"),
        format!("{USER}:{PASSWORD}"),
        format!(
            "mysql://{USER}:{}@127.0.0.1:1/psa",
            PASSWORD.replace('-', "%2D")
        ),
    ] {
        let mut c = relaydoctor(&url);
        c.args(["plesk", "check"]);
        let o = run(c);
        assert_eq!(o.code, 2, "{url}: {}{}", o.stdout, o.stderr);
        assert!(!o.stderr.is_empty());
    }
    // On the command line too: accepted with a warning, and still never echoed.
    let mut c = bare();
    c.args([
        "plesk",
        "check",
        "--db-url",
        &format!("mysql://{USER}:{PASSWORD}@127.0.0.1:notaport/psa"),
    ]);
    let o = run(c);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("other local users"), "{}", o.stderr);
}

#[test]
fn db_url_on_the_command_line_works_with_a_warning() {
    let Some(s) = shared() else { return };
    let db = s.psa("cliurl", "innodb", "");
    s.source(&db, &fixture("healthy.sql"));
    let mut c = bare();
    c.args(["plesk", "check", "--db-url", &s.url(&db)]);
    let o = run(c);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("warning"), "{}", o.stderr);
    assert!(o.stdout.contains("0 errors, 0 warnings"), "{}", o.stdout);
}

#[test]
fn dsn_file_and_plesk_files_under_root() {
    let Some(s) = shared() else { return };
    // --dsn-file with TCP host and port.
    let db = s.psa("dsnfile", "myisam", "");
    s.source(&db, &fixture("healthy.sql"));
    let dir = tempfile::tempdir().unwrap();
    let dsn = dir.path().join("dsn.ini");
    std::fs::write(
        &dsn,
        format!(
            "[plesk]\nhost=127.0.0.1\nport={}\nusername={USER}\npassword={PASSWORD}\ndbname={db}\n",
            s.port
        ),
    )
    .unwrap();
    let mut c = bare();
    c.args(["plesk", "check", "--dsn-file"]).arg(&dsn);
    let o = run(c);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);

    // <root>/etc/psa/private/dsn.ini, localhost = the socket named by MYSQL_UNIX_PORT.
    let db = s.psa("dsn_root", "myisam", "");
    s.source(&db, &fixture("healthy.sql"));
    let mut c = bare();
    c.env("MYSQL_UNIX_PORT", &s.socket);
    c.args(["plesk", "check", "--root"])
        .arg(fixture("roots/dsn"));
    let o = run(c);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("dsn.ini"), "{}", o.stdout);

    // <root>/etc/psa/.psa.shadow: user admin, database psa.
    let psa = s.database("psa_shadow_placeholder");
    let _ = psa;
    s.sql_root("DROP DATABASE IF EXISTS psa; CREATE DATABASE psa");
    s.source("psa", &fixture("schema-innodb.sql"));
    s.source("psa", &fixture("misc.sql"));
    s.source("psa", &fixture("healthy.sql"));
    let mut c = bare();
    c.env("MYSQL_UNIX_PORT", &s.socket);
    c.args(["plesk", "check", "--root"])
        .arg(fixture("roots/shadow-plain"));
    let o = run(c);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains(".psa.shadow"), "{}", o.stdout);
}

#[test]
fn encrypted_looking_shadow_is_the_password_itself() {
    // Plesk runs `mysql -u admin` with the $AES-128-CBC$ string as it is: so does
    // relaydoctor (tests/plesk_onyx.rs connects with one); here no server listens.
    let mut c = bare();
    c.args(["plesk", "check", "--timeout", "2", "--root"])
        .arg(fixture("roots/shadow-encrypted"));
    let o = run(c);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("cannot connect"), "{}", o.stderr);
    assert!(o.stderr.contains(".psa.shadow"), "{}", o.stderr);
    assert!(!o.stderr.contains("encrypted password"), "{}", o.stderr);
    assert!(!o.stderr.contains("ZW5jcnlwdGVk"), "{}", o.stderr);
}

/// A TCP listener on loopback that accepts and then either never says a word or hangs up.
fn listener(hang_up: bool) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            if !hang_up {
                held.push(s);
            }
        }
    });
    port
}

#[test]
fn a_server_that_never_greets_times_out_and_nagios_says_unknown() {
    let port = listener(false);
    let url = format!("mysql://{USER}:{PASSWORD}@127.0.0.1:{port}/psa");
    let t0 = std::time::Instant::now();
    let mut c = relaydoctor(&url);
    c.args(["plesk", "check", "--format", "nagios", "--timeout", "1"]);
    let o = run(c);
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(o.code, 3, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.starts_with("RELAYDOCTOR UNKNOWN - "),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("did not answer within 1 s"),
        "{}",
        o.stdout
    );
    let mut c = relaydoctor(&url);
    c.args(["plesk", "check", "--timeout", "1"]);
    let o = run(c);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
}

#[test]
fn a_server_that_hangs_up_is_said_in_words() {
    let port = listener(true);
    let url = format!("mysql://{USER}:{PASSWORD}@127.0.0.1:{port}/psa");
    let mut c = relaydoctor(&url);
    c.args(["plesk", "check", "--timeout", "5"]);
    let o = run(c);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr
            .contains("the database server closed the connection"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("CodecError"), "{}", o.stderr);
}

#[test]
fn no_credentials_is_exit_2() {
    let mut c = bare();
    c.args(["plesk", "check", "--root"])
        .arg(fixture("roots/empty"));
    let o = run(c);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("no database credentials"), "{}", o.stderr);
    let mut c = bare();
    c.args(["plesk", "check", "--format", "nagios", "--root"])
        .arg(fixture("roots/empty"));
    let o = run(c);
    assert_eq!(o.code, 3);
    assert!(o.stdout.starts_with("RELAYDOCTOR UNKNOWN"));
}

#[test]
fn tls_when_asked() {
    let Some(s) = shared() else { return };
    let db = s.psa("tls", "innodb", "");
    s.source(&db, &fixture("healthy.sql"));
    let url = format!(
        "{}?require_ssl=true&danger_accept_invalid_certs=true",
        s.url(&db)
    );
    let mut c = relaydoctor(&url);
    c.args(["plesk", "check", "--format", "json"]);
    let o = run(c);
    if s.tls {
        assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
        assert!(o.stdout.contains("(TLS)"), "{}", o.stdout);
        // The snakeoil certificate is self-signed: verified TLS refuses it.
        let url = format!("{}?require_ssl=true", s.url(&db));
        let mut c = relaydoctor(&url);
        c.args(["plesk", "check"]);
        let o = run(c);
        assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    } else {
        eprintln!("SKIP: no readable snakeoil key for a TLS server; only the refusal is tested");
        assert_eq!(
            o.code, 2,
            "TLS asked of a server without TLS must fail: {}{}",
            o.stdout, o.stderr
        );
    }
}
