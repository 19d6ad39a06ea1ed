//! `relaydoctor probe` (issue #18): talk to a running SMTP server like a careful client and
//! report what it answers: banner, extensions and AUTH mechanisms before and after TLS, the
//! certificate, the relay questions of relay.rs without logging in, and with `--user` the same
//! questions after a login.
//!
//! Safety: DATA is never sent, so nothing can be queued; one connection at a time; at most
//! [`MAX_TRANSACTIONS`] MAIL FROM transactions per target; QUIT at the end.

mod auth;
pub mod drift;
pub mod findings;
pub mod relay;
pub mod render;
pub mod session;
pub mod smtp;
pub mod tls;
pub mod x509;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::outcome::Failure;
use crate::report::Report;
use relay::{Kind, Question};
use session::{Look, Opened};
use smtp::{Conn, Reply, SmtpError};

/// At most this many MAIL FROM transactions per target (the "about 30").
pub const MAX_TRANSACTIONS: usize = 30;
/// Postfix slows down (smtpd_error_sleep_time) after smtpd_soft_error_limit = 10 errors and
/// hangs up after smtpd_hard_error_limit = 20 (postconf(5)); a fresh connection after this
/// many refusals keeps every answer prompt.
const REFUSALS_PER_CONNECTION: usize = 8;

/// One `host[:port]` to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// Port 465 (RFC 8314 submissions): TLS from the first byte.
    pub implicit_tls: bool,
}

impl Target {
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `host[:port]`, `[v6]:port` or a bare host (ports 25, 587 and 465).
/// Whether `host` names this machine: `localhost`, its host name, a loopback address or one
/// of its interfaces' global addresses (no DNS is asked).
pub fn is_this_host(host: &str) -> bool {
    let h = host
        .trim_matches(|c| c == '[' || c == ']')
        .to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    if let Ok(ip) = h.parse::<std::net::IpAddr>() {
        return ip.is_loopback() || crate::dns::addrs::live().contains(&ip);
    }
    let me = crate::host::identify(None, &crate::context::Root::live()).name;
    !me.is_empty() && h == me.to_ascii_lowercase()
}

pub fn parse_target(s: &str) -> Result<Vec<Target>, String> {
    let bad = || format!("{s}: not a target (host, host:port or [IPv6]:port)");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (h.to_string(), Some(p)),
            None if after.is_empty() => (h.to_string(), None),
            None => return Err(bad()),
        }
    } else if s.matches(':').count() > 1 {
        // A bare IPv6 address.
        (s.to_string(), None)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    if !host_ok {
        return Err(bad());
    }
    let ports = match port {
        Some(p) => vec![p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{s}: {p} is not a port"))?],
        None => vec![25, 587, 465],
    };
    Ok(ports
        .into_iter()
        .map(|port| Target {
            host: host.clone(),
            port,
            implicit_tls: port == 465,
        })
        .collect())
}

/// `probe`, resolved (src/args.rs).
pub struct Settings {
    pub targets: Vec<Target>,
    pub timeout: Duration,
    pub helo: String,
    pub from: String,
    pub external_rcpt: String,
    pub local_rcpt: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub allow_plaintext_auth: bool,
    pub ca_file: Option<std::path::PathBuf>,
    /// `--root`: the configuration to compare the answers with (drift.rs).
    pub root: Option<crate::context::Context>,
}

/// What every target's probe shares: timeouts, names, the TLS client.
pub struct Env {
    pub timeout: Duration,
    pub helo: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub roots: rustls::RootCertStore,
    pub recorder: tls::Recorder,
}

/// An SMTP reply in JSON.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReplyJson {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
}

impl From<&Reply> for ReplyJson {
    fn from(r: &Reply) -> ReplyJson {
        ReplyJson {
            code: r.code,
            enhanced: r.enhanced(),
            text: r.text(),
        }
    }
}

/// One question and its answer.
#[derive(Debug, Clone, Serialize)]
pub struct Test {
    pub name: String,
    pub mail_from: String,
    pub rcpt_to: String,
    pub authenticated: bool,
    pub tls: bool,
    /// The command that got the deciding reply: MAIL, RCPT, or none when the connection
    /// was lost.
    pub stage: &'static str,
    pub reply: Option<ReplyJson>,
    /// `NNN text` as received, for quoting.
    #[serde(skip)]
    pub reply_line: String,
    pub accepted: bool,
    #[serde(skip)]
    pub kind: Kind,
}

/// The TLS part of a target's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsResult {
    pub mode: &'static str,
    pub offered: bool,
    pub established: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<tls::Certificate>,
}

/// The login with `--user`.
#[derive(Debug, Clone, Serialize)]
pub struct Login {
    pub user: String,
    pub mechanism: Option<String>,
    pub over_tls: bool,
    pub ok: bool,
    pub reply: Option<ReplyJson>,
    #[serde(skip)]
    pub reply_line: String,
    /// Why no login was tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Mechanisms {
    pub before_tls: Vec<String>,
    pub after_tls: Option<Vec<String>>,
}

/// One target's result (the `targets[]` objects of the JSON output).
#[derive(Debug, Clone, Serialize)]
pub struct Probed {
    pub target: String,
    pub host: String,
    pub port: u16,
    pub address: Option<String>,
    /// The address the server saw the probe come from (the vantage point).
    pub client_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub banner: Option<String>,
    pub extensions: Extensions,
    pub tls: TlsResult,
    pub auth_mechanisms: Mechanisms,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
    pub tests: Vec<Test>,
    /// Every line sent, in order; `(connect ...)` and `(TLS handshake)` mark the steps.
    pub sent: Vec<String>,
    #[serde(skip)]
    pub greeting_name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Extensions {
    pub before_tls: Vec<String>,
    pub after_tls: Option<Vec<String>>,
}

/// The whole run.
#[derive(Debug)]
pub struct Audit {
    pub targets: Vec<Probed>,
    pub report: Report,
    /// Values to scrub from everything printed (the password and its encodings).
    pub secrets: Vec<String>,
}

impl Audit {
    /// True when no target could be reached at all: the probe did not run.
    pub fn nothing_reached(&self) -> bool {
        self.targets.iter().all(|t| t.banner.is_none())
    }
}

pub fn run(s: &Settings) -> Result<Audit, Failure> {
    let roots = tls::roots(s.ca_file.as_deref()).map_err(Failure::new)?;
    let (cfg, recorder) = tls::config(roots.clone()).map_err(Failure::new)?;
    let env = Env {
        timeout: s.timeout,
        helo: s.helo.clone(),
        tls: cfg,
        roots,
        recorder,
    };
    let targets: Vec<Probed> = s.targets.iter().map(|t| probe(&env, s, t)).collect();
    let mut report = Report {
        findings: targets.iter().flat_map(findings::for_target).collect(),
        files: 0,
    };
    if let Some(ctx) = &s.root {
        drift::check(ctx, &targets, s, &mut report.findings);
        report.files = ctx.files_read();
    }
    report.sort();
    Ok(Audit {
        targets,
        report,
        secrets: secrets(s),
    })
}

/// The password as typed and as it goes over the wire (base64 in AUTH PLAIN and LOGIN).
fn secrets(s: &Settings) -> Vec<String> {
    use base64::Engine;
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    let (Some(user), Some(pw)) = (&s.user, &s.password) else {
        return Vec::new();
    };
    if pw.is_empty() {
        return Vec::new();
    }
    vec![
        pw.clone(),
        b64(pw.as_bytes()),
        b64(format!("\0{user}\0{pw}").as_bytes()),
    ]
}

fn resolve(t: &Target) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", t.host))?
        .collect();
    // IPv4 first: the address most clients reach a mail server at.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{} has no address", t.host))
}

/// The state of one target's probe while it runs.
struct Run<'a> {
    env: &'a Env,
    s: &'a Settings,
    target: &'a Target,
    addr: SocketAddr,
    conn: Option<Conn>,
    /// Transactions (MAIL FROM) so far.
    transactions: usize,
    refusals: usize,
    sent: Vec<String>,
}

impl Run<'_> {
    /// Keep what a finished connection sent.
    fn close(&mut self, conn: Conn, quit: bool) {
        let mut conn = conn;
        if quit {
            let _ = conn.command("QUIT");
        }
        self.sent.append(&mut conn.sent);
    }

    fn open(&mut self) -> Opened {
        self.sent.push(format!("(connect {})", self.addr));
        let mut o = session::open(self.env, self.target, self.addr, true);
        if let Some(c) = o.conn.as_mut() {
            self.sent.append(&mut c.sent);
        }
        o
    }

    /// A connection ready for a transaction: the current one, or a new one.
    fn ready(&mut self) -> Result<(), String> {
        if self.conn.is_some() && self.refusals < REFUSALS_PER_CONNECTION {
            return Ok(());
        }
        if let Some(c) = self.conn.take() {
            self.close(c, true);
        }
        let o = self.open();
        match (o.conn, o.error) {
            (Some(c), None) => {
                self.conn = Some(c);
                self.refusals = 0;
                Ok(())
            }
            (c, Some(e)) => {
                if let Some(c) = c {
                    self.close(c, false);
                }
                Err(format!("reconnecting failed: {e}"))
            }
            (None, None) => Err("reconnecting failed".into()),
        }
    }

    /// Ask one question; a connection lost on the way is replaced and the question asked
    /// once more (a logged-in question is not: the new connection would not be logged in).
    fn ask(&mut self, q: &Question, authenticated: bool) -> Result<Test, String> {
        let test = self.ask_once(q, authenticated)?;
        if test.stage != "none" || authenticated {
            return Ok(test);
        }
        self.ask_once(q, authenticated)
    }

    /// Ask one question (RSET first when the connection was used before).
    fn ask_once(&mut self, q: &Question, authenticated: bool) -> Result<Test, String> {
        if self.transactions >= MAX_TRANSACTIONS {
            return Err(format!(
                "stopped after {MAX_TRANSACTIONS} transactions (the probe's limit per target)"
            ));
        }
        self.ready()?;
        let Some(mut conn) = self.conn.take() else {
            return Err("no connection".into());
        };
        self.transactions += 1;
        let tls = conn.tls.is_some();
        let result = transaction(&mut conn, q);
        let mut test = Test {
            name: q.name.clone(),
            mail_from: q.mail_from.clone(),
            rcpt_to: q.rcpt_to.clone(),
            authenticated,
            tls,
            stage: "none",
            reply: None,
            reply_line: String::new(),
            accepted: false,
            kind: q.kind,
        };
        match result {
            Ok((stage, r)) => {
                test.stage = stage;
                test.reply = Some(ReplyJson::from(&r));
                test.reply_line = r.line();
                test.accepted = stage == "RCPT" && r.positive();
                if !r.positive() {
                    // Syntax errors weigh more: Exim hangs up after smtp_max_synprot_errors
                    // (default 3) of them.
                    self.refusals += if (500..=504).contains(&r.code) {
                        REFUSALS_PER_CONNECTION / 2
                    } else {
                        1
                    };
                }
                if r.code == 421 {
                    self.close(conn, false);
                } else {
                    self.conn = Some(conn);
                }
            }
            Err(e) => {
                test.reply_line = format!("({e})");
                self.close(conn, false);
            }
        }
        Ok(test)
    }
}

/// MAIL FROM, then RCPT TO when MAIL was accepted; RSET before when the session was used.
fn transaction(conn: &mut Conn, q: &Question) -> Result<(&'static str, Reply), SmtpError> {
    if conn.sent.iter().any(|l| l.starts_with("MAIL FROM")) {
        let r = conn.command("RSET")?;
        if !r.positive() {
            return Ok(("RSET", r));
        }
    }
    let mail = conn.command(&format!("MAIL FROM:<{}>", q.mail_from))?;
    if !mail.positive() {
        return Ok(("MAIL", mail));
    }
    let rcpt = conn.command(&format!("RCPT TO:<{}>", q.rcpt_to))?;
    Ok(("RCPT", rcpt))
}

fn probe(env: &Env, s: &Settings, t: &Target) -> Probed {
    let mut p = Probed {
        target: t.label(),
        host: t.host.clone(),
        port: t.port,
        address: None,
        client_address: None,
        error: None,
        banner: None,
        extensions: Extensions::default(),
        tls: TlsResult {
            mode: if t.implicit_tls { "implicit" } else { "none" },
            ..TlsResult::default()
        },
        auth_mechanisms: Mechanisms::default(),
        login: None,
        tests: Vec::new(),
        sent: Vec::new(),
        greeting_name: None,
    };
    let addr = match resolve(t) {
        Ok(a) => a,
        Err(e) => {
            p.error = Some(e);
            return p;
        }
    };
    p.address = Some(addr.ip().to_string());
    let mut run = Run {
        env,
        s,
        target: t,
        addr,
        conn: None,
        transactions: 0,
        refusals: 0,
        sent: Vec::new(),
    };
    let _ = env.recorder.take();
    let first = run.open();
    look_at(&mut p, &first.look, env, t);
    if let Some(c) = &first.conn {
        p.client_address = Some(c.local.ip().to_string());
        p.tls.established = c.tls.is_some();
        p.tls.version = c.tls.as_ref().map(|x| x.version.clone());
        p.tls.cipher = c.tls.as_ref().map(|x| x.cipher.clone());
    }
    match (first.conn, first.error) {
        (Some(c), None) => run.conn = Some(c),
        (c, Some(e)) => {
            if let Some(c) = c {
                run.close(c, false);
            }
            p.error = Some(format!("{}: {e}", t.label()));
            // TLS broke: the relay questions can still be asked without it.
            if p.tls.error.is_some() && !t.implicit_tls && p.banner.is_some() {
                let o = session::open(env, t, addr, false);
                run.sent.push(format!("(connect {addr}, without TLS)"));
                let mut o = o;
                if let Some(c) = o.conn.as_mut() {
                    run.sent.append(&mut c.sent);
                }
                if let (Some(c), None) = (o.conn, o.error) {
                    run.conn = Some(c);
                }
            }
        }
        (None, None) => {}
    }
    if run.conn.is_some() {
        ask_all(&mut run, &mut p);
    }
    if let Some(c) = run.conn.take() {
        run.close(c, true);
    }
    p.sent = run.sent;
    p
}

/// The first opening's observations into the result.
fn look_at(p: &mut Probed, look: &Look, env: &Env, t: &Target) {
    p.banner = look.banner.clone();
    p.greeting_name = look.greeting_name.clone();
    p.extensions.before_tls = look.extensions_before_tls.clone();
    p.extensions.after_tls = look.extensions_after_tls.clone();
    p.auth_mechanisms.before_tls = if t.implicit_tls {
        Vec::new()
    } else {
        Look::mechanisms(&look.extensions_before_tls)
    };
    p.auth_mechanisms.after_tls = look.extensions_after_tls.as_deref().map(Look::mechanisms);
    p.tls.offered = t.implicit_tls || look.starttls_offered;
    if !t.implicit_tls && look.starttls_offered {
        p.tls.mode = "starttls";
    }
    p.tls.error = look.tls_error.clone();
    let chain = env.recorder.take();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    p.tls.certificate = tls::assess(&env.roots, &chain, &t.host, now);
}

/// The relay questions, then the login and its questions.
fn ask_all(run: &mut Run, p: &mut Probed) {
    let s = run.s;
    let server_name = p
        .greeting_name
        .clone()
        .unwrap_or_else(|| run.target.host.clone());
    let qs = relay::questions(&relay::Names {
        from: &s.from,
        external: &s.external_rcpt,
        local: s.local_rcpt.as_deref(),
        server_name: &server_name,
        server_ip: run.addr.ip().to_string(),
    });
    for q in &qs {
        match run.ask(q, false) {
            Ok(t) => p.tests.push(t),
            Err(e) => {
                p.error.get_or_insert(e);
                return;
            }
        }
    }
    if let Some(user) = &s.user {
        auth::login_and_ask(run, p, user);
    }
}

#[cfg(test)]
mod this_host_tests {
    #[test]
    fn loopback_and_localhost_are_this_host() {
        assert!(super::is_this_host("127.0.0.1"));
        assert!(super::is_this_host("[::1]"));
        assert!(super::is_this_host("localhost"));
        assert!(!super::is_this_host("192.0.2.25"));
        assert!(!super::is_this_host("mail.example.net"));
    }
}
