//! Opening the connection and turning database errors into messages an admin can act on,
//! never containing the password.

use std::io::ErrorKind;

use mysql::prelude::Queryable;
use mysql::{Conn, Error};

use super::credentials::Credentials;

/// A failure to talk to the database (exit code 2, or 3 for Nagios). The message is
/// already scrubbed of secrets.
#[derive(Debug)]
pub struct DbError(pub String);

/// The numeric server error code of an error, if it is one.
pub fn code(e: &Error) -> Option<u16> {
    match e {
        Error::MySqlError(m) => Some(m.code),
        _ => None,
    }
}

/// Error 1045 on a Plesk server means the saved admin password (.psa.shadow, or dsn.ini's
/// database.password) no longer matches the MySQL account: the state Plesk's own tools
/// report as "saved admin password is incorrect".
const ACCESS_DENIED_HINT: &str = " (the saved password does not match the MySQL account: on a \
    Plesk server, Plesk's known state \"saved admin password is incorrect\"; check that \
    /etc/psa/.psa.shadow, or database.password in /etc/psa/private/dsn.ini, holds the password \
    of MySQL user admin, e.g. by running `plesk db` as root)";

/// A message for an error, scrubbed. Server errors keep their code, which is what admins
/// search for; connection-level failures are said in words.
pub fn describe(creds: &Credentials, e: &Error) -> String {
    describe_during(creds, e, "")
}

/// As [`describe`], naming the statement that was running ("CHECK TABLE").
pub fn describe_during(creds: &Credentials, e: &Error, during: &str) -> String {
    let during = if during.is_empty() {
        String::new()
    } else {
        format!(" during {during}")
    };
    let raw = match e {
        Error::MySqlError(m) => {
            let hint = match m.code {
                1045 => ACCESS_DENIED_HINT,
                1044 | 1049 => " (the database does not exist or this user may not use it)",
                1142 | 1143 => " (this user lacks a privilege relaydoctor needs)",
                _ => "",
            };
            // Our own hint is added after scrubbing: it never holds a secret, and a password
            // such as "wrong" must not mask it.
            let msg = format!("error {} ({}): {}", m.code, m.state, m.message);
            return format!("{}{during}{hint}", creds.scrub(&msg));
        }
        Error::IoError(io) => io_words(io, creds, &during),
        Error::CodecError(c) => {
            match std::error::Error::source(c).and_then(|s| s.downcast_ref::<std::io::Error>()) {
                Some(io) => io_words(io, creds, &during),
                None => format!("the database server sent a malformed reply{during} ({c})"),
            }
        }
        Error::DriverError(d) => match d {
            mysql::DriverError::ConnectTimeout | mysql::DriverError::Timeout => {
                timeout_words(creds, &during)
            }
            mysql::DriverError::CouldNotConnect(Some((addr, desc, _))) => {
                format!("cannot connect to {addr}: {desc}")
            }
            other => format!("{other}{during}"),
        },
        Error::UrlError(_) => "bad database URL".to_string(),
        other => format!("{other}{during}"),
    };
    creds.scrub(&raw)
}

fn timeout_words(creds: &Credentials, during: &str) -> String {
    format!(
        "the database server did not answer within {} s{during} (--timeout)",
        creds.timeout.as_secs_f64()
    )
}

fn io_words(io: &std::io::Error, creds: &Credentials, during: &str) -> String {
    match io.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => timeout_words(creds, during),
        ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe => {
            format!("the database server closed the connection{during}")
        }
        ErrorKind::ConnectionRefused => {
            format!("connection refused{during} (no database server listens there)")
        }
        ErrorKind::NotFound => format!("no such socket{during} ({io})"),
        _ => format!("{io}{during}"),
    }
}

pub fn connect(creds: &Credentials) -> Result<Conn, DbError> {
    let mut conn = Conn::new(creds.opts.clone()).map_err(|e| {
        DbError(format!(
            "cannot connect to the database {} (credentials from {}): {}",
            creds.endpoint,
            creds.source,
            describe(creds, &e)
        ))
    })?;
    // The values relaydoctor reads and writes back (zero dates, impossible dates kept by
    // MyISAM) must round-trip; strict modes would reject them on INSERT. Session only.
    conn.query_drop("SET SESSION sql_mode = 'ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION'")
        .map_err(|e| {
            DbError(format!(
                "cannot set the session sql_mode: {}",
                describe(creds, &e)
            ))
        })?;
    Ok(conn)
}

/// Backquote an identifier for MariaDB.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
