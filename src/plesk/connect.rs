//! Opening the connection and turning database errors into messages an admin can act on,
//! never containing the password.

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

/// A message for an error, scrubbed. Server errors keep their code, which is what admins
/// search for.
pub fn describe(creds: &Credentials, e: &Error) -> String {
    let raw = match e {
        Error::MySqlError(m) => {
            let hint = match m.code {
                1045 => " (wrong user name or password)",
                1044 | 1049 => " (the database does not exist or this user may not use it)",
                1142 | 1143 => " (this user lacks a privilege relaydoctor needs)",
                _ => "",
            };
            // Our own hint is added after scrubbing: it never holds a secret, and a password
            // such as "wrong" must not mask it.
            let msg = format!("error {} ({}): {}", m.code, m.state, m.message);
            return format!("{}{hint}", creds.scrub(&msg));
        }
        Error::IoError(io) => format!("{io}"),
        Error::DriverError(d) => format!("{d}"),
        Error::UrlError(_) => "bad database URL".to_string(),
        other => format!("{other}"),
    };
    creds.scrub(&raw)
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
