//! A small, careful SMTP client: one connection, replies read as RFC 5321 section 4.2 says
//! (`NNN-text` continues, `NNN text` ends), every command recorded as it was sent (the
//! password replaced), STARTTLS (RFC 3207) and implicit TLS (RFC 8314) over rustls.
//!
//! It never sends DATA: the probe only asks MAIL FROM / RCPT TO questions.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// One SMTP reply: its code and its lines' texts (without the `NNN-` prefixes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The RFC 3463 enhanced status code at the start of the first line, if any.
    pub fn enhanced(&self) -> Option<String> {
        let first = self.lines.first()?.split_whitespace().next()?;
        let parts: Vec<&str> = first.split('.').collect();
        let ok = parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
        ok.then(|| first.to_string())
    }

    /// The text after the code and the enhanced code, lines joined by spaces.
    pub fn text(&self) -> String {
        let joined = self.lines.join(" ");
        match self.enhanced() {
            Some(e) => joined[e.len()..].trim_start().to_string(),
            None => joined,
        }
    }

    /// `550 5.7.1 text` on one line, as people quote replies.
    pub fn line(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
            .trim_end()
            .to_string()
    }
}

/// Why a session could not go on.
#[derive(Debug)]
pub enum SmtpError {
    Io(std::io::Error),
    /// The server closed the connection (no reply, or mid-reply).
    Closed,
    /// Bytes that are not an SMTP reply.
    Garbled(String),
    Tls(String),
}

impl std::fmt::Display for SmtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmtpError::Io(e) if is_timeout(e) => write!(f, "timed out"),
            SmtpError::Io(e) => write!(f, "{e}"),
            SmtpError::Closed => write!(f, "the server closed the connection"),
            SmtpError::Garbled(s) => write!(f, "not an SMTP reply: {s:?}"),
            SmtpError::Tls(s) => write!(f, "TLS: {s}"),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

impl From<std::io::Error> for SmtpError {
    fn from(e: std::io::Error) -> SmtpError {
        SmtpError::Io(e)
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Between taking the plain socket and installing TLS.
    Gone,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Gone => Ok(0),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Gone => Ok(()),
        }
    }
}

/// A reply line longer than this is not SMTP (RFC 5321 section 4.5.3.1.5 allows 512).
const MAX_LINE: usize = 4096;
/// A reply with more lines than this is not SMTP either (EHLO lists a few dozen at most).
const MAX_LINES: usize = 200;

/// What the TLS layer agreed on.
#[derive(Debug, Clone)]
pub struct TlsSession {
    pub version: String,
    pub cipher: String,
}

/// One connection to one SMTP server.
pub struct Conn {
    stream: Stream,
    /// Bytes read but not yet consumed as a reply.
    buf: Vec<u8>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Every line sent, as shown to the user (secrets replaced), in order.
    pub sent: Vec<String>,
    pub tls: Option<TlsSession>,
}

impl Conn {
    /// Connect with `timeout` on the connect and on every later read and write.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, SmtpError> {
        let s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let local = s.local_addr()?;
        Ok(Conn {
            stream: Stream::Plain(s),
            buf: Vec::new(),
            peer: addr,
            local,
            sent: Vec::new(),
            tls: None,
        })
    }

    /// Read one complete reply.
    pub fn read_reply(&mut self) -> Result<Reply, SmtpError> {
        let mut lines = Vec::new();
        let mut code = 0;
        loop {
            let line = self.read_line()?;
            let b = line.as_bytes();
            let valid = b.len() >= 3
                && b[..3].iter().all(u8::is_ascii_digit)
                && (b.len() == 3 || b[3] == b' ' || b[3] == b'-');
            if !valid {
                return Err(SmtpError::Garbled(line.chars().take(80).collect()));
            }
            let this: u16 = line[..3].parse().unwrap_or(0);
            if !lines.is_empty() && this != code {
                return Err(SmtpError::Garbled(line.chars().take(80).collect()));
            }
            code = this;
            lines.push(line.get(4..).unwrap_or("").to_string());
            if b.len() == 3 || b[3] == b' ' {
                return Ok(Reply { code, lines });
            }
            if lines.len() > MAX_LINES {
                return Err(SmtpError::Garbled("endless reply".into()));
            }
        }
    }

    fn read_line(&mut self) -> Result<String, SmtpError> {
        loop {
            if let Some(i) = self.buf.iter().position(|&c| c == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=i).collect();
                let s = String::from_utf8_lossy(&raw);
                return Ok(s.trim_end_matches(['\r', '\n']).to_string());
            }
            if self.buf.len() > MAX_LINE {
                return Err(SmtpError::Garbled("line too long".into()));
            }
            let mut chunk = [0u8; 2048];
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                // A TLS peer that closes without close_notify is still a close.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Err(SmtpError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Send `line` and read the reply; the transcript shows `line`.
    pub fn command(&mut self, line: &str) -> Result<Reply, SmtpError> {
        self.command_shown(line, line)
    }

    /// Send `line`; the transcript shows `shown` instead (credentials).
    pub fn command_shown(&mut self, line: &str, shown: &str) -> Result<Reply, SmtpError> {
        self.sent.push(shown.to_string());
        self.stream.write_all(format!("{line}\r\n").as_bytes())?;
        self.stream.flush()?;
        self.read_reply()
    }

    /// Start TLS on the socket (after a 220 to STARTTLS, or at once for implicit TLS) and
    /// finish the handshake now, so that handshake errors are told apart from SMTP errors.
    pub fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<(), SmtpError> {
        // Bytes the server sent after its 220 would be read as if they came over TLS: the
        // STARTTLS command injection of CVE-2011-0411. Refuse rather than go on.
        if !self.buf.is_empty() {
            return Err(SmtpError::Tls(
                "the server sent data after its reply to STARTTLS, before the handshake".into(),
            ));
        }
        let Stream::Plain(sock) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(SmtpError::Tls("TLS is already on".into()));
        };
        let conn =
            ClientConnection::new(config, name).map_err(|e| SmtpError::Tls(e.to_string()))?;
        let mut tls = StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidData => SmtpError::Tls(e.to_string()),
                    _ if is_timeout(&e) => SmtpError::Io(e),
                    _ => SmtpError::Tls(format!("handshake failed: {e}")),
                })?;
        }
        self.tls = Some(TlsSession {
            version: tls
                .conn
                .protocol_version()
                .map(|v| format!("{v:?}").replace('_', "."))
                .unwrap_or_default(),
            cipher: tls
                .conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_default(),
        });
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Say QUIT and read its reply if one comes; errors do not matter any more.
    pub fn quit(mut self) {
        let _ = self.command("QUIT");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_code_and_text() {
        let r = Reply {
            code: 554,
            lines: vec!["5.7.1 <a@b.example>: Relay access denied".into()],
        };
        assert_eq!(r.enhanced().as_deref(), Some("5.7.1"));
        assert_eq!(r.text(), "<a@b.example>: Relay access denied");
        assert_eq!(r.line(), "554 5.7.1 <a@b.example>: Relay access denied");
        let plain = Reply {
            code: 250,
            lines: vec!["mail.example.com".into()],
        };
        assert_eq!(plain.enhanced(), None);
        assert_eq!(plain.text(), "mail.example.com");
    }
}
