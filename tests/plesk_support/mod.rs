//! A private MariaDB server for the Plesk tests: mariadb-install-db into a temporary data
//! directory, mariadbd on its own socket and a free loopback port, stopped when dropped —
//! and by a watchdog when the test process exits, because a shared server lives in a static
//! that is never dropped.
//!
//! One shared server per test binary ([`shared`]) with one database per test
//! ([`Server::database`]); tests that kill the server start their own ([`Server::start`]).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The password of the test user: every test asserts it never appears in any output.
pub const PASSWORD: &str = "Zq7-secret-Pa55word-xK9";
pub const USER: &str = "admin";

pub struct Server {
    pub dir: tempfile::TempDir,
    pub datadir: PathBuf,
    pub socket: PathBuf,
    pub port: u16,
    /// The server offers TLS (snakeoil certificate).
    pub tls: bool,
    /// False: --skip-networking, the Unix socket only (like a Plesk server's local MariaDB).
    pub networking: bool,
    child: Option<Child>,
}

pub const SNAKEOIL_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

fn mariadbd() -> Option<PathBuf> {
    for p in ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    None
}

/// None (after saying why) when MariaDB is not installed; a failure under CI.
pub fn available() -> bool {
    let ok = mariadbd().is_some()
        && Command::new("mariadb-install-db")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
        && Command::new("mariadb")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("mariadbd / mariadb-install-db / mariadb client missing (scripts/test installs mariadb-server)");
        }
        eprintln!("SKIP: mariadbd, mariadb-install-db or the mariadb client is not installed");
    }
    ok
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(true)
    }

    /// A server on its socket only (`networking` false): no TCP port at all.
    pub fn start_with(networking: bool) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("rd-mariadb")
            .tempdir()
            .expect("tempdir");
        let datadir = dir.path().join("data");
        let mut install = Command::new("mariadb-install-db");
        install.args([
            "--no-defaults",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]);
        install.arg(format!("--datadir={}", datadir.display()));
        // A private tmpdir: the shared /tmp is cleaned by other processes on busy machines,
        // and a server whose internal temporary file vanishes fails the statement.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmpdir");
        install.arg(format!("--tmpdir={}", tmp.display()));
        if is_root() {
            install.arg("--user=root");
        }
        let out = install.output().expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut s = Server {
            socket: dir.path().join("mysqld.sock"),
            datadir,
            port: free_port(),
            dir,
            tls: false,
            networking,
            child: None,
        };
        s.run();
        s.sql_root(&format!(
            "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL ON *.* TO '{USER}'@'%'; \
             CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL ON *.* TO '{USER}'@'localhost';"
        ));
        s
    }

    /// Start mariadbd on the existing data directory (also after a kill).
    pub fn run(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let mut cmd = Command::new(mariadbd().expect("mariadbd"));
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", self.datadir.display()))
            .arg(format!("--socket={}", self.socket.display()))
            .args(if self.networking {
                vec![
                    format!("--port={}", self.port),
                    "--bind-address=127.0.0.1".into(),
                ]
            } else {
                vec!["--skip-networking".to_string()]
            })
            .arg(format!(
                "--tmpdir={}",
                self.dir.path().join("tmp").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("mysqld.pid").display()
            ))
            .arg(format!(
                "--log-error={}",
                self.dir.path().join("error.log").display()
            ))
            .args([
                "--skip-log-bin",
                // Damaged MyISAM tables must stay damaged until relaydoctor repairs them
                // (the default BACKUP,QUICK would repair them silently on open).
                "--myisam-recover-options=OFF",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=48M",
                "--max-connections=60",
                "--performance-schema=OFF",
            ]);
        if is_root() {
            cmd.arg("--user=root");
        }
        // TLS with the snakeoil certificate (package ssl-cert) when its key is readable.
        let (cert, key) = (SNAKEOIL_CERT, "/etc/ssl/private/ssl-cert-snakeoil.key");
        if std::fs::read(key).is_ok() && Path::new(cert).exists() {
            cmd.arg(format!("--ssl-cert={cert}"))
                .arg(format!("--ssl-key={key}"));
            self.tls = true;
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().expect("spawn mariadbd");
        // Watchdog: when this test process is gone, the server goes too, and so does its
        // directory (the shared server lives in a static, so TempDir's drop never runs).
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {me} 2>/dev/null && kill -0 {srv} 2>/dev/null; do sleep 1; done; kill -9 {srv} 2>/dev/null; while kill -0 {me} 2>/dev/null; do sleep 1; done; rm -rf '{dir}'",
                me = std::process::id(),
                srv = child.id(),
                dir = self.dir.path().display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let ok = Command::new("mariadb")
                .args(["--no-defaults", "-uroot", "-S"])
                .arg(&self.socket)
                .args(["-e", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                break;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    let log = std::fs::read_to_string(self.dir.path().join("error.log"))
                        .unwrap_or_default();
                    panic!("mariadbd exited ({st}): {log}");
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "mariadbd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL the server (fault tests).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Run SQL as root through the socket; panics with the client's error.
    pub fn sql_root(&self, sql: &str) -> String {
        self.sql_db("", sql)
    }

    pub fn sql_db(&self, db: &str, sql: &str) -> String {
        let mut cmd = Command::new("mariadb");
        cmd.args(["--no-defaults", "-uroot", "-N", "-B", "-S"])
            .arg(&self.socket);
        if !db.is_empty() {
            cmd.arg(db);
        }
        let out = cmd.args(["-e", sql]).output().expect("run mariadb");
        assert!(
            out.status.success(),
            "mariadb -e {sql:.300}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a SQL file into a database.
    pub fn source(&self, db: &str, file: &Path) {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        self.sql_db(db, &text);
    }

    /// A new empty database named after the test.
    pub fn database(&self, name: &str) -> String {
        let db = format!(
            "t_{}",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        self.sql_root(&format!(
            "DROP DATABASE IF EXISTS `{db}`; CREATE DATABASE `{db}`"
        ));
        db
    }

    /// A database with the given schema variant (fixtures/plesk/schema-<variant>.sql) and
    /// misc settings (fixtures/plesk/misc.sql), plus optional seed SQL.
    pub fn psa(&self, name: &str, variant: &str, seed: &str) -> String {
        let db = self.database(name);
        self.source(&db, &fixture(&format!("schema-{variant}.sql")));
        self.source(&db, &fixture("misc.sql"));
        if !seed.is_empty() {
            self.sql_db(&db, seed);
        }
        db
    }

    /// A Plesk 17.8+ database: fixtures/plesk/schema-onyx.sql and settings-onyx.sql (two
    /// service nodes), plus optional seed SQL.
    pub fn psa_onyx(&self, name: &str, seed: &str) -> String {
        let db = self.database(name);
        self.source(&db, &fixture("schema-onyx.sql"));
        self.source(&db, &fixture("settings-onyx.sql"));
        if !seed.is_empty() {
            self.sql_db(&db, seed);
        }
        db
    }

    pub fn url(&self, db: &str) -> String {
        format!("mysql://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// The rows of smtp_poplocks, sorted, one "ip\tmask\tlock" line each.
    pub fn rows(&self, db: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .sql_db(
                db,
                "SELECT ip_address, ip_mask, IFNULL(lock_time, 'NULL') FROM smtp_poplocks",
            )
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/plesk")
        .join(name)
}

/// The server shared by every test of one test binary (None when MariaDB is missing).
pub fn shared() -> Option<&'static Server> {
    static S: OnceLock<Option<Server>> = OnceLock::new();
    S.get_or_init(|| available().then(Server::start)).as_ref()
}

/// relaydoctor with the database URL in the environment (never on the command line).
pub fn relaydoctor(url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_relaydoctor"));
    c.env("RELAYDOCTOR_DB_URL", url)
        .env("NO_COLOR", "1")
        .env_remove("MYSQL_UNIX_PORT");
    c
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run and assert the password is in neither stream.
pub fn run(mut c: Command) -> Out {
    let o = c.output().expect("run relaydoctor");
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "the password leaked:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    out
}
