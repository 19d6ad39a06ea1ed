//! Where the psa database credentials come from, first match wins: `--db-url`,
//! `RELAYDOCTOR_DB_URL`, `--dsn-file`, `<root>/etc/psa/private/dsn.ini`,
//! `<root>/etc/psa/.psa.shadow`.
//!
//! Plesk's own chain (primer section 5; `get_admin_passwd` in Plesk 17.8's
//! `reset_instance_data` and `_getDsnConfigValue` in Plesk 18's
//! `panel_preupgrade_checker.php`, mirror tejasv694/Plesk): user `admin`, password the
//! content of `.psa.shadow` used verbatim (a value starting with `$AES-128-CBC$` *is* the
//! MySQL password), host `localhost` (the Unix socket, as the mysql client does), port 3306,
//! database `psa`. dsn.ini's section `[general]` overrides each of them with
//! `database.host`, `database.port`, `database.username`, `database.password`,
//! `database.dbname`.
//!
//! The password is kept in [`Credentials::secrets`] only so that every message can be
//! scrubbed of it; it is never formatted anywhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mysql::{Opts, OptsBuilder};

use super::settings::DbSettings;

pub const ENV_URL: &str = "RELAYDOCTOR_DB_URL";

/// Where the mysql client looks for the server's socket when my.cnf names none: the
/// compiled-in default of Debian/Ubuntu packages, then of the RHEL family (where Plesk's
/// own scripts set `MYSQL_SOCKET=/var/lib/mysql/mysql.sock`, `reset_instance_data`).
const SOCKETS: &[&str] = &[
    "/run/mysqld/mysqld.sock",
    "/var/run/mysqld/mysqld.sock",
    "/var/lib/mysql/mysql.sock",
];

/// The option files the mysql client reads on Linux, relative to the root
/// (MariaDB KB "Configuring MariaDB with Option Files": /etc/my.cnf, /etc/mysql/my.cnf).
const MY_CNF: &[&str] = &["etc/my.cnf", "etc/mysql/my.cnf"];

pub struct Credentials {
    pub opts: Opts,
    /// Where they came from, for messages ("--dsn-file /x/dsn.ini").
    pub source: String,
    /// user@host:port/db or user@socket/db, without the password.
    pub endpoint: String,
    pub db: String,
    /// Strings that must never be printed (the password, raw and percent-decoded).
    pub secrets: Vec<String>,
    /// The read timeout, for messages about a server that stopped answering.
    pub timeout: Duration,
}

impl Credentials {
    /// Remove every secret from a message.
    pub fn scrub(&self, msg: &str) -> String {
        crate::secrets::mask(msg, &self.secrets)
    }
}

/// A credentials problem: message already free of secrets.
#[derive(Debug)]
pub struct CredError(pub String);

/// Warnings to print (e.g. about --db-url being visible) go to `warnings`.
pub fn resolve(db: &DbSettings, warnings: &mut Vec<String>) -> Result<Credentials, CredError> {
    let t = Timeouts {
        connect: db.timeout,
        read: db.read_timeout,
    };
    if let Some(url) = &db.db_url {
        warnings.push(
            "--db-url puts the password on the command line, where other local users can see \
             it (ps, /proc); prefer --dsn-file or the RELAYDOCTOR_DB_URL variable"
                .into(),
        );
        return from_url(url, "--db-url", &db.root, t);
    }
    if let Some(url) = db.env_url.as_deref().filter(|u| !u.is_empty()) {
        return from_url(url, ENV_URL, &db.root, t);
    }
    // Inside a snapshot like chroot: a file symlinked out of it is not read (issue #14).
    let inside = crate::context::Root::of(&db.root);
    let shadow = inside.resolve(Path::new("/etc/psa/.psa.shadow"));
    if let Some(p) = &db.dsn_file {
        return from_dsn_file(p, &p.display().to_string(), &shadow, &db.root, t);
    }
    let dsn = inside.resolve(Path::new("/etc/psa/private/dsn.ini"));
    if dsn.is_file() {
        return from_dsn_file(&dsn, &dsn.display().to_string(), &shadow, &db.root, t);
    }
    if shadow.exists() {
        return from_parts(
            Parts::default(),
            &shadow,
            shadow.display().to_string(),
            &db.root,
            t,
        );
    }
    Err(CredError(format!(
        "no database credentials: none of --db-url, {ENV_URL}, --dsn-file, {}, {} \
         (is this a Plesk server? elsewhere pass --dsn-file with a [general] section: \
         database.host, database.port, database.username, database.password, database.dbname)",
        dsn.display(),
        shadow.display()
    )))
}

/// Password-bearing part of a URL (between "scheme://user:" and the last '@'), raw and
/// percent-decoded, found without trusting the URL to parse.
fn url_secrets(url: &str) -> Vec<String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let auth = match rest.rfind('@') {
        Some(i) => &rest[..i],
        None => return Vec::new(),
    };
    match auth.split_once(':') {
        Some((_, pw)) if !pw.is_empty() => {
            let mut v = vec![pw.to_string()];
            let dec = percent_decode(pw);
            if dec != pw {
                v.push(dec);
            }
            v
        }
        _ => Vec::new(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Values of query parameters that carry secrets (`?password=`, `?pkcs12_pass=`).
fn query_secrets(url: &str) -> Vec<String> {
    let Some((_, q)) = url.split_once('?') else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for kv in q.split('&') {
        if let Some((k, val)) = kv.split_once('=') {
            if (k == "password" || k == "pkcs12_pass") && !val.is_empty() {
                v.push(val.to_string());
                v.push(percent_decode(val));
            }
        }
    }
    v
}

/// Remove our own `require_ssl` parameter (the mysql crate rejects unknown parameters);
/// returns the URL without it and whether TLS was asked for.
fn strip_require_ssl(url: &str) -> (String, bool) {
    let Some((base, q)) = url.split_once('?') else {
        return (url.to_string(), false);
    };
    let mut tls = false;
    let rest: Vec<&str> = q
        .split('&')
        .filter(|kv| match kv.split_once('=') {
            Some(("require_ssl", v)) => {
                tls = matches!(v, "true" | "1" | "yes");
                false
            }
            _ => true,
        })
        .collect();
    if rest.is_empty() {
        (base.to_string(), tls)
    } else {
        (format!("{base}?{}", rest.join("&")), tls)
    }
}

fn from_url(url: &str, source: &str, root: &Path, t: Timeouts) -> Result<Credentials, CredError> {
    let mut secrets = url_secrets(url);
    secrets.extend(query_secrets(url));
    let (url, require_tls) = strip_require_ssl(url);
    let url = url.as_str();
    if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) {
        return Err(CredError(format!(
            "{source}: not a database URL (expected mysql://USER:PASSWORD@HOST:PORT/psa)"
        )));
    }
    // The mysql crate only knows the mysql:// scheme; mariadb:// is the same protocol.
    let url = if let Some(r) = url.strip_prefix("mariadb://") {
        format!("mysql://{r}")
    } else {
        url.to_string()
    };
    let opts = Opts::from_url(&url).map_err(|e| {
        // The URL parser's messages do not carry the password, but scrub anyway.
        CredError(crate::secrets::mask(
            &format!(
                "{source}: bad database URL ({e}); expected mysql://USER:PASSWORD@HOST:PORT/psa"
            ),
            &secrets,
        ))
    })?;
    let mut b = OptsBuilder::from_opts(opts.clone());
    let db = opts.get_db_name().unwrap_or("psa").to_string();
    b = b.db_name(Some(db.clone()));
    // TLS through rustls, verifying the server against the system roots (or the
    // ?root_cert_path= CA), when asked with ?require_ssl=true.
    if require_tls && opts.get_ssl_opts().is_none() {
        b = b.ssl_opts(Some(mysql::SslOpts::default()));
    }
    // As with the mysql client, localhost means the local socket (unless ?socket= said).
    if opts.get_ip_or_hostname() == "localhost" && opts.get_socket().is_none() {
        if let Some(sock) = find_socket(root) {
            b = b.socket(Some(sock));
        }
    }
    let opts: Opts = common(b, t).into();
    Ok(Credentials {
        endpoint: endpoint(&opts, &db),
        opts,
        source: source.to_string(),
        db,
        secrets,
        timeout: t.read,
    })
}

/// Plesk's dsn.ini: INI sections, `key = value`, values optionally quoted.
pub fn parse_ini_section(text: &str, section: &str) -> Option<Vec<(String, String)>> {
    let mut current = String::new();
    let mut found = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
            continue;
        }
        if l.starts_with('[') && l.ends_with(']') {
            current = l[1..l.len() - 1].trim().to_string();
            if current == section {
                found = true;
            }
            continue;
        }
        if current != section {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            let v = v.trim();
            let v = if v.len() >= 2
                && ((v.starts_with('"') && v.ends_with('"'))
                    || (v.starts_with('\'') && v.ends_with('\'')))
            {
                &v[1..v.len() - 1]
            } else {
                v
            };
            out.push((k.trim().to_ascii_lowercase(), v.to_string()));
        }
    }
    found.then_some(out)
}

/// The values of one credential source; `None` falls back to Plesk's default.
#[derive(Default)]
struct Parts {
    user: Option<String>,
    password: Option<String>,
    host: Option<String>,
    port: Option<String>,
    dbname: Option<String>,
    socket: Option<String>,
}

/// dsn.ini: Plesk's section `[general]` with `database.*` keys; a `[plesk]` section with
/// bare keys (what relaydoctor read before, and what a hand-written --dsn-file may have) is
/// still accepted.
fn from_dsn_file(
    path: &Path,
    shown: &str,
    shadow: &Path,
    root: &Path,
    t: Timeouts,
) -> Result<Credentials, CredError> {
    let text = crate::context::Root::live()
        .read_to_string(path)
        .map_err(|e| CredError(format!("{shown}: cannot read: {e}")))?;
    let (kv, prefix) = match parse_ini_section(&text, "general") {
        Some(kv) if kv.iter().any(|(k, _)| k.starts_with("database.")) => (kv, "database."),
        _ => match parse_ini_section(&text, "plesk") {
            Some(kv) => (kv, ""),
            None => {
                return Err(CredError(format!(
                    "{shown}: no [general] section with database.* keys (database.host, \
                     database.port, database.username, database.password, database.dbname)"
                )))
            }
        },
    };
    let get = |k: &str| {
        kv.iter()
            .rev()
            .find(|(key, _)| key.strip_prefix(prefix) == Some(k))
            .map(|(_, v)| v.clone())
    };
    let parts = Parts {
        user: get("username").or_else(|| get("user")),
        password: get("password"),
        host: get("host"),
        port: get("port"),
        dbname: get("dbname").or_else(|| get("database")),
        socket: get("socket"),
    };
    from_parts(parts, shadow, shown.to_string(), root, t)
}

/// Fill what the source left out with Plesk's defaults: admin / the content of
/// .psa.shadow / localhost / 3306 / psa.
fn from_parts(
    p: Parts,
    shadow: &Path,
    mut source: String,
    root: &Path,
    t: Timeouts,
) -> Result<Credentials, CredError> {
    let secret = match p.password {
        Some(pw) => pw,
        None => {
            if source != shadow.display().to_string() {
                source = format!("{source} and {}", shadow.display());
            }
            read_shadow(shadow)?
        }
    };
    let port = match p.port.as_deref() {
        Some(s) => s
            .trim()
            .parse::<u16>()
            .map_err(|_| CredError(format!("{source}: port {s:?} is not a port number")))?,
        None => 3306,
    };
    let db = p.dbname.unwrap_or_else(|| "psa".into());
    let b = OptsBuilder::new()
        .user(Some(p.user.unwrap_or_else(|| "admin".into())))
        .pass(Some(secret.clone()))
        .db_name(Some(db.clone()));
    let host = p.host.unwrap_or_else(|| "localhost".into());
    let b = place(b, &host, port, p.socket, root);
    let opts: Opts = common(b, t).into();
    Ok(Credentials {
        endpoint: endpoint(&opts, &db),
        opts,
        source,
        db,
        secrets: vec![secret],
        timeout: t.read,
    })
}

/// The password of MySQL user admin: the file's content without the line end, verbatim,
/// also when it starts with `$AES-128-CBC$` (Plesk runs `mysql -u admin` with exactly
/// that string).
fn read_shadow(path: &Path) -> Result<String, CredError> {
    let shown = path.display();
    let raw = crate::context::Root::live()
        .read(path)
        .map_err(|e| CredError(format!("{shown}: cannot read: {e}")))?;
    let secret = String::from_utf8_lossy(&raw)
        .trim_end_matches(['\n', '\r'])
        .to_string();
    if secret.is_empty() {
        return Err(CredError(format!("{shown} is empty")));
    }
    Ok(secret)
}

/// localhost means the Unix socket, as the mysql client does: the socket named in
/// my.cnf, else `MYSQL_UNIX_PORT`, else the distribution's default that exists; with no
/// socket at all, TCP to 127.0.0.1.
fn place(
    b: OptsBuilder,
    host: &str,
    port: u16,
    socket: Option<String>,
    root: &Path,
) -> OptsBuilder {
    if host == "localhost" || host.is_empty() {
        if let Some(s) = socket.or_else(|| find_socket(root)) {
            return b.socket(Some(s)).ip_or_hostname(Some("localhost"));
        }
        return b.ip_or_hostname(Some("127.0.0.1")).tcp_port(port);
    }
    b.ip_or_hostname(Some(host))
        .tcp_port(port)
        .prefer_socket(false)
}

/// `socket = PATH` from the option files under `root`, client sections first
/// ([client], [client-server], [client-mariadb], [mysql]), then the server's ([mysqld],
/// [server], [mariadb]); `!includedir` and `!include` are followed one level.
pub fn my_cnf_socket(root: &Path) -> Option<String> {
    let mut texts = Vec::new();
    for f in MY_CNF {
        let path = reroot(root, f);
        let Ok(text) = crate::context::Root::live().read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let l = line.trim();
            if let Some(dir) = l.strip_prefix("!includedir") {
                let dir = reroot(root, dir.trim());
                let mut files: Vec<PathBuf> = crate::context::Root::of(root)
                    .read_dir(&dir)
                    .map(|d| d.flatten().map(|e| e.path()).collect())
                    .unwrap_or_default();
                files.sort();
                for p in files
                    .iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "cnf"))
                {
                    texts.extend(crate::context::Root::live().read_to_string(p).ok());
                }
            } else if let Some(file) = l.strip_prefix("!include") {
                texts.extend(
                    crate::context::Root::live()
                        .read_to_string(&reroot(root, file.trim()))
                        .ok(),
                );
            }
        }
        texts.push(text);
    }
    for sections in [
        &["client", "client-server", "client-mariadb", "mysql"][..],
        &["mysqld", "server", "mariadb"][..],
    ] {
        for text in &texts {
            for sec in sections {
                let found = parse_ini_section(text, sec).and_then(|kv| {
                    kv.into_iter()
                        .rev()
                        .find(|(k, _)| k == "socket")
                        .map(|(_, v)| v)
                });
                if found.as_deref().is_some_and(|v| !v.is_empty()) {
                    return found;
                }
            }
        }
    }
    None
}

/// An absolute path from a file under `root`, as the server would see it.
fn reroot(root: &Path, p: &str) -> PathBuf {
    crate::context::Root::of(root).resolve(&Path::new("/").join(p.trim_start_matches('/')))
}

pub fn find_socket(root: &Path) -> Option<String> {
    if let Some(s) = my_cnf_socket(root) {
        return Some(s);
    }
    if let Ok(s) = std::env::var("MYSQL_UNIX_PORT") {
        if !s.is_empty() {
            return Some(s);
        }
    }
    SOCKETS
        .iter()
        .find(|p| {
            use std::os::unix::fs::FileTypeExt;
            std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
        })
        .map(|p| p.to_string())
}

/// Every round trip is bounded: a server that accepts the connection and never greets, or
/// stops answering mid-check, ends the run with a message instead of hanging cron.
fn common(b: OptsBuilder, t: Timeouts) -> OptsBuilder {
    b.tcp_connect_timeout(Some(t.connect))
        .read_timeout(Some(t.read))
        .write_timeout(Some(t.connect))
}

#[derive(Clone, Copy)]
struct Timeouts {
    connect: Duration,
    read: Duration,
}

fn endpoint(opts: &Opts, db: &str) -> String {
    let user = opts.get_user().unwrap_or("");
    let place = match opts.get_socket() {
        Some(s) => s.to_string(),
        None => format!("{}:{}", opts.get_ip_or_hostname(), opts.get_tcp_port()),
    };
    // TLS (rustls) is used when the URL asks for it: ?require_ssl=true.
    let tls = if opts.get_ssl_opts().is_some() {
        " (TLS)"
    } else {
        ""
    };
    format!("{user}@{place}/{db}{tls}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini() {
        let t = "[other]\npassword=x\n[plesk]\nusername = admin\npassword=\"p w\"\n";
        let kv = parse_ini_section(t, "plesk").unwrap();
        assert!(kv.contains(&("password".into(), "p w".into())));
        assert!(parse_ini_section(t, "none").is_none());
    }

    #[test]
    fn my_cnf_socket_client_sections_first_and_includedir() {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc/mysql");
        std::fs::create_dir_all(etc.join("conf.d")).unwrap();
        std::fs::write(
            etc.join("my.cnf"),
            "[mysqld]\nsocket = /srv/server.sock\n!includedir /etc/mysql/conf.d/\n",
        )
        .unwrap();
        assert_eq!(my_cnf_socket(d.path()).as_deref(), Some("/srv/server.sock"));
        std::fs::write(
            etc.join("conf.d/client.cnf"),
            "[client-server]\nsocket=/run/client.sock\n",
        )
        .unwrap();
        assert_eq!(my_cnf_socket(d.path()).as_deref(), Some("/run/client.sock"));
        assert_eq!(my_cnf_socket(&d.path().join("none")), None);
    }

    #[test]
    fn tls_parameter() {
        assert_eq!(
            strip_require_ssl("mysql://u:p@h/psa?require_ssl=true"),
            ("mysql://u:p@h/psa".to_string(), true)
        );
        assert_eq!(
            strip_require_ssl("mysql://u:p@h/psa?a=1&require_ssl=false"),
            ("mysql://u:p@h/psa?a=1".to_string(), false)
        );
        assert_eq!(
            query_secrets("mysql://h/psa?password=x%41"),
            vec!["x%41", "xA"]
        );
    }

    #[test]
    fn url_secret_found() {
        assert_eq!(
            url_secrets("mysql://u:s%40cret@h/psa"),
            vec!["s%40cret", "s@cret"]
        );
        assert!(url_secrets("mysql://u@h/psa").is_empty());
    }
}
