//! Opening a session the way a mail client does: banner, EHLO (HELO when EHLO is refused),
//! STARTTLS when offered (or TLS at once on an implicit-TLS port), EHLO again.

use std::net::SocketAddr;

use rustls::pki_types::ServerName;
use serde::Serialize;

use super::smtp::{Conn, Reply, SmtpError};
use super::{Env, Target};

/// What one opening saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Look {
    pub banner: Option<String>,
    /// The name the server gives in its EHLO reply.
    #[serde(skip)]
    pub greeting_name: Option<String>,
    pub extensions_before_tls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions_after_tls: Option<Vec<String>>,
    pub starttls_offered: bool,
    /// Why TLS could not be set up, when it was tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_error: Option<String>,
}

impl Look {
    /// AUTH mechanisms in an extension list (`AUTH PLAIN LOGIN`, old `AUTH=PLAIN`).
    pub fn mechanisms(ext: &[String]) -> Vec<String> {
        let mut v: Vec<String> = ext
            .iter()
            .filter_map(|e| {
                let up = e.to_ascii_uppercase();
                up.strip_prefix("AUTH ")
                    .or_else(|| up.strip_prefix("AUTH="))
                    .map(str::to_string)
            })
            .flat_map(|rest| {
                rest.split_whitespace()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The extensions of the session in use (after TLS when TLS is on).
    pub fn current(&self) -> &[String] {
        self.extensions_after_tls
            .as_deref()
            .unwrap_or(&self.extensions_before_tls)
    }
}

fn ehlo(conn: &mut Conn, helo: &str) -> Result<(Reply, Vec<String>), SmtpError> {
    let r = conn.command(&format!("EHLO {helo}"))?;
    if r.positive() {
        let ext = r.lines.iter().skip(1).cloned().collect();
        return Ok((r, ext));
    }
    if r.code == 421 {
        return Ok((r, Vec::new()));
    }
    // RFC 5321 section 3.2: a server that does not know EHLO takes HELO.
    let r = conn.command(&format!("HELO {helo}"))?;
    Ok((r, Vec::new()))
}

fn refused(what: &str, r: &Reply) -> SmtpError {
    SmtpError::Garbled(format!("{what} refused: {}", r.line()))
}

/// The result of [`open`]: the connection (None when connecting failed), what was seen, and
/// the error that stopped the opening, if one did.
pub struct Opened {
    pub conn: Option<Conn>,
    pub look: Look,
    pub error: Option<SmtpError>,
}

/// Connect to `addr` and get to the point where MAIL FROM can be sent: over TLS when the
/// port is implicit TLS or the server offers STARTTLS and `starttls` is true.
pub fn open(env: &Env, target: &Target, addr: SocketAddr, starttls: bool) -> Opened {
    let mut look = Look::default();
    let mut conn = match Conn::connect(addr, env.timeout) {
        Ok(c) => c,
        Err(e) => {
            return Opened {
                conn: None,
                look,
                error: Some(e),
            }
        }
    };
    let name = ServerName::try_from(target.host.clone())
        .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into()));
    if target.implicit_tls {
        conn.sent.push("(TLS handshake)".into());
        if let Err(e) = conn.start_tls(env.tls.clone(), name.clone()) {
            look.tls_error = Some(e.to_string());
            return Opened {
                conn: Some(conn),
                look,
                error: Some(e),
            };
        }
    }
    let step = |conn: &mut Conn, look: &mut Look| -> Result<(), SmtpError> {
        let banner = conn.read_reply()?;
        look.banner = Some(banner.line());
        if !banner.positive() {
            return Err(refused("the session", &banner));
        }
        let (r, ext) = ehlo(conn, &env.helo)?;
        if !r.positive() {
            return Err(refused("EHLO/HELO", &r));
        }
        look.greeting_name = r
            .lines
            .first()
            .and_then(|l| l.split_whitespace().next())
            .map(String::from);
        look.starttls_offered = ext.iter().any(|e| e.eq_ignore_ascii_case("STARTTLS"));
        look.extensions_before_tls = ext;
        if target.implicit_tls {
            look.extensions_after_tls = Some(look.extensions_before_tls.clone());
            return Ok(());
        }
        if !(starttls && look.starttls_offered) {
            return Ok(());
        }
        let r = conn.command("STARTTLS")?;
        if r.code != 220 {
            look.tls_error = Some(format!("STARTTLS refused: {}", r.line()));
            return Ok(());
        }
        conn.sent.push("(TLS handshake)".into());
        if let Err(e) = conn.start_tls(env.tls.clone(), name.clone()) {
            look.tls_error = Some(e.to_string());
            return Err(e);
        }
        let (r, ext) = ehlo(conn, &env.helo)?;
        if !r.positive() {
            return Err(refused("EHLO after STARTTLS", &r));
        }
        look.extensions_after_tls = Some(ext);
        Ok(())
    };
    let error = step(&mut conn, &mut look).err();
    Opened {
        conn: Some(conn),
        look,
        error,
    }
}
