//! Where the psa database credentials come from, first match wins:
//! `--db-url`, `RELAYDOCTOR_DB_URL`, `--dsn-file`, `<root>/etc/psa/private/dsn.ini` section
//! `[plesk]`, `<root>/etc/psa/.psa.shadow` (user admin, database psa, localhost).
//!
//! The password is kept in [`Credentials::secret`] only so that every message can be scrubbed
//! of it ([`Credentials::scrub`]); it is never formatted anywhere.

use std::path::{Path, PathBuf};

use mysql::{Opts, OptsBuilder};

use crate::cli::DbArgs;

pub const ENV_URL: &str = "RELAYDOCTOR_DB_URL";

/// Sockets the local MariaDB/MySQL server listens on in common distributions
/// (Debian/Ubuntu, RHEL/CentOS/Alma as Plesk installs them). `MYSQL_UNIX_PORT` (the
/// variable libmysqlclient honours) comes first.
const SOCKETS: &[&str] = &[
    "/run/mysqld/mysqld.sock",
    "/var/run/mysqld/mysqld.sock",
    "/var/lib/mysql/mysql.sock",
    "/tmp/mysql.sock",
];

pub struct Credentials {
    pub opts: Opts,
    /// Where they came from, for messages ("--dsn-file /x/dsn.ini").
    pub source: String,
    /// user@host:port/db or user@socket/db, without the password.
    pub endpoint: String,
    pub db: String,
    /// Strings that must never be printed (the password, raw and percent-decoded).
    secrets: Vec<String>,
}

impl Credentials {
    /// Remove every secret from a message.
    pub fn scrub(&self, msg: &str) -> String {
        scrub_all(msg, &self.secrets)
    }
}

/// Replaces each secret where it stands as a token (not inside a longer word): a password
/// echoed in a message is delimited by quotes, `:`, `@` or blanks, while masking every
/// substring would garble the text ("a" in `'admin'@'localhost'`) and, by showing which
/// words were masked, tell the reader the password.
pub fn scrub_all(msg: &str, secrets: &[String]) -> String {
    let mut out = msg.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        let mut prev: Option<char> = None;
        while let Some(i) = rest.find(s.as_str()) {
            let before = rest[..i].chars().next_back().or(prev);
            let after = rest[i + s.len()..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            let alnum = |c: char| c.is_alphanumeric();
            let inside_word =
                (word(before) && s.starts_with(alnum)) || (word(after) && s.ends_with(alnum));
            result.push_str(&rest[..i]);
            if !inside_word {
                result.push_str("********");
            } else {
                result.push_str(s);
            }
            prev = s.chars().next_back();
            rest = &rest[i + s.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// A credentials problem: message already free of secrets.
#[derive(Debug)]
pub struct CredError(pub String);

/// Warnings to print (e.g. about --db-url being visible) go to `warnings`.
pub fn resolve(args: &DbArgs, warnings: &mut Vec<String>) -> Result<Credentials, CredError> {
    if let Some(url) = &args.db_url {
        warnings.push(
            "--db-url puts the password on the command line, where other local users can see \
             it (ps, /proc); prefer --dsn-file or the RELAYDOCTOR_DB_URL variable"
                .into(),
        );
        return from_url(url, "--db-url");
    }
    if let Ok(url) = std::env::var(ENV_URL) {
        if !url.is_empty() {
            return from_url(&url, ENV_URL);
        }
    }
    if let Some(p) = &args.dsn_file {
        return from_dsn_file(p, &p.display().to_string());
    }
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let dsn = root.join("etc/psa/private/dsn.ini");
    if dsn.is_file() {
        return from_dsn_file(&dsn, &dsn.display().to_string());
    }
    let shadow = root.join("etc/psa/.psa.shadow");
    if shadow.exists() {
        return from_shadow(&shadow);
    }
    Err(CredError(format!(
        "no database credentials: none of --db-url, {ENV_URL}, --dsn-file, {}, {} \
         (is this a Plesk server? elsewhere pass --dsn-file with a [plesk] section: \
         host, port, username, password, dbname)",
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

fn from_url(url: &str, source: &str) -> Result<Credentials, CredError> {
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
        CredError(scrub_all(
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
        if let Some(sock) = find_socket() {
            b = b.socket(Some(sock));
        }
    }
    let opts: Opts = common(b).into();
    Ok(Credentials {
        endpoint: endpoint(&opts, &db),
        opts,
        source: source.to_string(),
        db,
        secrets,
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

fn from_dsn_file(path: &Path, shown: &str) -> Result<Credentials, CredError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CredError(format!("{shown}: cannot read: {e}")))?;
    let kv = parse_ini_section(&text, "plesk")
        .ok_or_else(|| CredError(format!("{shown}: no [plesk] section")))?;
    let get = |k: &str| {
        kv.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let secret = get("password").unwrap_or_default();
    let secrets = vec![secret.clone()];
    let user = get("username")
        .or_else(|| get("user"))
        .unwrap_or_else(|| "admin".into());
    let db = get("dbname")
        .or_else(|| get("database"))
        .unwrap_or_else(|| "psa".into());
    let host = get("host").unwrap_or_else(|| "localhost".into());
    let port = match get("port") {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| CredError(format!("{shown}: port {p:?} is not a port number")))?,
        None => 3306,
    };
    let b = OptsBuilder::new()
        .user(Some(user))
        .pass(Some(secret))
        .db_name(Some(db.clone()));
    let b = place(b, &host, port, get("socket"));
    let opts: Opts = common(b).into();
    Ok(Credentials {
        endpoint: endpoint(&opts, &db),
        opts,
        source: shown.to_string(),
        db,
        secrets,
    })
}

fn from_shadow(path: &Path) -> Result<Credentials, CredError> {
    let shown = path.display().to_string();
    let raw = std::fs::read(path).map_err(|e| CredError(format!("{shown}: cannot read: {e}")))?;
    let text = String::from_utf8_lossy(&raw);
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    if secret.starts_with("$AES-128-CBC$") {
        return Err(CredError(format!(
            "{shown} holds an encrypted password ($AES-128-CBC$...), which only Plesk's own \
             tools can decrypt, so relaydoctor cannot use it. Give the credentials another way: \
             a DSN file (--dsn-file FILE with a [plesk] section: username, password, dbname, \
             host), or the {ENV_URL} variable (mysql://admin:PASSWORD@localhost/psa)"
        )));
    }
    if secret.is_empty() {
        return Err(CredError(format!("{shown} is empty")));
    }
    let secrets = vec![secret.clone()];
    let db = "psa".to_string();
    let b = OptsBuilder::new()
        .user(Some("admin"))
        .pass(Some(secret))
        .db_name(Some(db.clone()));
    let b = place(b, "localhost", 3306, None);
    let opts: Opts = common(b).into();
    Ok(Credentials {
        endpoint: endpoint(&opts, &db),
        opts,
        source: shown,
        db,
        secrets,
    })
}

/// localhost means the Unix socket when one exists (that is what the mysql client does),
/// else TCP to 127.0.0.1.
fn place(b: OptsBuilder, host: &str, port: u16, socket: Option<String>) -> OptsBuilder {
    if host == "localhost" || host.is_empty() {
        if let Some(s) = socket.or_else(find_socket) {
            return b.socket(Some(s)).ip_or_hostname(Some("localhost"));
        }
        return b.ip_or_hostname(Some("127.0.0.1")).tcp_port(port);
    }
    b.ip_or_hostname(Some(host))
        .tcp_port(port)
        .prefer_socket(false)
}

pub fn find_socket() -> Option<String> {
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

fn common(b: OptsBuilder) -> OptsBuilder {
    b.tcp_connect_timeout(Some(std::time::Duration::from_secs(10)))
        .read_timeout(Some(std::time::Duration::from_secs(3600)))
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
    fn scrub_masks_the_secret_as_a_token_only() {
        let secrets = |p: &str| vec![p.to_string()];
        let denied = "Access denied for user 'admin'@'localhost' (using password: YES)";
        // A short password that is part of other words leaves them alone.
        assert_eq!(scrub_all(denied, &secrets("a")), denied);
        assert_eq!(
            scrub_all("mysql://admin:s3cr3t@db/psa: refused", &secrets("s3cr3t")),
            "mysql://admin:********@db/psa: refused"
        );
        assert_eq!(
            scrub_all("password 'Zq7-x' rejected", &secrets("Zq7-x")),
            "password '********' rejected"
        );
        // Punctuation-edged secrets are masked even next to letters.
        assert_eq!(scrub_all("x:-p@ss-y", &secrets("-p@ss-")), "x:********y");
    }

    #[test]
    fn ini() {
        let t = "[other]\npassword=x\n[plesk]\nusername = admin\npassword=\"p w\"\n";
        let kv = parse_ini_section(t, "plesk").unwrap();
        assert!(kv.contains(&("password".into(), "p w".into())));
        assert!(parse_ini_section(t, "none").is_none());
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
