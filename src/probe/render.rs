//! The probe's own text and JSON forms: per target what was seen and sent, the findings, and
//! "Settings that work" for whoever configures the mail client. (SARIF, GitHub annotations,
//! Nagios and Prometheus come from report/ like every findings report.)

use std::fmt::Write;

use serde::Serialize;
use serde_json::json;

use super::{Audit, Probed};
use crate::finding::Severity;

/// How a target's session was protected, in the words mail clients use.
fn mode(p: &Probed) -> &'static str {
    match (p.tls.mode, p.tls.established) {
        ("implicit", _) => "SSL/TLS (implicit TLS)",
        ("starttls", true) => "STARTTLS",
        ("starttls", false) => "STARTTLS (failed)",
        _ => "no encryption",
    }
}

/// One combination of client settings and what the server said to it.
#[derive(Debug, Clone, Serialize)]
pub struct Combo {
    pub port: u16,
    pub tls: &'static str,
    pub authentication: Option<String>,
    pub reply: String,
}

/// "Settings that work" as data.
#[derive(Debug, Clone, Serialize)]
pub struct Advice {
    pub user: Option<String>,
    pub works: Vec<Combo>,
    pub refused: Vec<Combo>,
    pub text: String,
}

fn login_word(p: &Probed) -> Option<String> {
    let l = p.login.as_ref()?;
    Some(format!(
        "AUTH {} as {}",
        l.mechanism.as_deref().unwrap_or("?"),
        l.user
    ))
}

/// Which combinations relay for the user and which get refused.
pub fn advice(a: &Audit) -> Advice {
    let mut works = Vec::new();
    let mut refused = Vec::new();
    let user = a
        .targets
        .iter()
        .find_map(|p| p.login.as_ref())
        .map(|l| l.user.clone());
    for p in a.targets.iter().filter(|p| p.banner.is_some()) {
        let combo = |auth: Option<String>, reply: &str| Combo {
            port: p.port,
            tls: mode(p),
            authentication: auth,
            reply: reply.to_string(),
        };
        if let Some(t) = p.tests.iter().find(|t| t.name == "plain relay") {
            if !t.accepted {
                refused.push(combo(None, &t.reply_line));
            }
        }
        match &p.login {
            Some(l) if !l.ok => refused.push(combo(
                login_word(p),
                if l.reply_line.is_empty() {
                    l.skipped.as_deref().unwrap_or("no login")
                } else {
                    &l.reply_line
                },
            )),
            Some(_) => {
                if let Some(t) = p
                    .tests
                    .iter()
                    .find(|t| t.authenticated && t.name.starts_with("external"))
                {
                    let c = combo(login_word(p), &t.reply_line);
                    if t.accepted {
                        works.push(c);
                    } else {
                        refused.push(c);
                    }
                }
            }
            None => {}
        }
    }
    let text = advice_text(a, user.as_deref(), &works, &refused);
    Advice {
        user,
        works,
        refused,
        text,
    }
}

fn advice_text(a: &Audit, user: Option<&str>, works: &[Combo], refused: &[Combo]) -> String {
    let mut s = String::new();
    let describe = |c: &Combo| {
        let auth = c
            .authentication
            .as_deref()
            .map(|x| format!(" with {x}"))
            .unwrap_or_else(|| " without login".into());
        format!("port {} with {}{auth}", c.port, c.tls)
    };
    match (user, works.first()) {
        (Some(u), Some(_)) => {
            let list: Vec<String> = works.iter().map(describe).collect();
            let _ = write!(
                s,
                "To send as {u}, set the mail client's outgoing (SMTP) server to {} and use {}.",
                a.targets.first().map(|t| t.host.as_str()).unwrap_or("?"),
                list.join(", or ")
            );
        }
        (Some(u), None) => {
            let _ = write!(
                s,
                "No combination the probe tried lets {u} send to another domain."
            );
        }
        (None, _) => {
            let _ = write!(
                s,
                "Which settings let a user send is not known without --user (the probe logs in only when given a user and password)."
            );
        }
    }
    let open: Vec<u16> = a
        .targets
        .iter()
        .filter(|p| {
            p.tests
                .iter()
                .any(|t| t.accepted && !t.authenticated && t.kind == super::relay::Kind::Foreign)
        })
        .map(|p| p.port)
        .collect();
    if !open.is_empty() {
        let _ = write!(
            s,
            " Without any login, port(s) {} relay mail for anyone: fix that first.",
            open.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !refused.is_empty() {
        let list: Vec<String> = refused
            .iter()
            .map(|c| format!("{} ({})", describe(c), c.reply))
            .collect();
        let _ = write!(
            s,
            " These get \"Relay access denied\" or another refusal: {}.",
            list.join("; ")
        );
    }
    s
}

pub fn json(a: &Audit) -> String {
    let r = &a.report;
    let v = json!({
        "version": 1,
        "tool": {"name": "relaydoctor", "version": env!("CARGO_PKG_VERSION")},
        "targets": a.targets,
        "findings": r.findings,
        "settings": advice(a),
        "summary": {
            "error": r.count(Severity::Error),
            "warning": r.count(Severity::Warning),
            "info": r.count(Severity::Info),
            "targets": a.targets.len(),
        }
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(" ")
    }
}

fn target_text(out: &mut String, p: &Probed) {
    let _ = writeln!(
        out,
        "== probe {} (address {}, from client address {})",
        p.target,
        p.address.as_deref().unwrap_or("unresolved"),
        p.client_address.as_deref().unwrap_or("none")
    );
    if let Some(e) = &p.error {
        let _ = writeln!(out, "  stopped:        {e}");
    }
    let Some(banner) = &p.banner else {
        return;
    };
    let _ = writeln!(out, "  banner:         {banner}");
    let _ = writeln!(out, "  extensions:     {}", list(&p.extensions.before_tls));
    let _ = writeln!(
        out,
        "  TLS:            {}{}",
        mode(p),
        p.tls
            .version
            .as_deref()
            .map(|v| format!(", {v} {}", p.tls.cipher.as_deref().unwrap_or("")))
            .unwrap_or_default()
    );
    if let Some(c) = &p.tls.certificate {
        let state = if c.valid { "valid" } else { "NOT valid" };
        let _ = writeln!(
            out,
            "  certificate:    {state}: CN={}, names {}, {} to {}",
            c.subject.as_deref().unwrap_or("?"),
            list(&c.names),
            c.not_before.as_deref().unwrap_or("?"),
            c.not_after.as_deref().unwrap_or("?")
        );
    }
    if let Some(after) = &p.extensions.after_tls {
        let _ = writeln!(out, "  after TLS:      {}", list(after));
    }
    let _ = writeln!(
        out,
        "  AUTH:           before TLS: {}; after TLS: {}",
        list(&p.auth_mechanisms.before_tls),
        p.auth_mechanisms
            .after_tls
            .as_deref()
            .map(list)
            .unwrap_or_else(|| "no TLS".into())
    );
    if let Some(l) = &p.login {
        let what = match &l.skipped {
            Some(why) => format!("not tried: {why}"),
            None => format!(
                "AUTH {}{}: {}",
                l.mechanism.as_deref().unwrap_or("?"),
                if l.over_tls {
                    " over TLS"
                } else {
                    " WITHOUT TLS"
                },
                l.reply_line
            ),
        };
        let _ = writeln!(out, "  login as {}:  {what}", l.user);
    }
    let _ = writeln!(
        out,
        "  tests ({}; DATA is never sent, so nothing is queued):",
        p.tests.len()
    );
    for t in &p.tests {
        let verdict = if t.accepted { "ACCEPTED" } else { "refused " };
        let _ = writeln!(
            out,
            "    {verdict} {}{}: MAIL FROM:<{}> RCPT TO:<{}> -> {}",
            t.name,
            if t.authenticated { " (logged in)" } else { "" },
            t.mail_from,
            t.rcpt_to,
            t.reply_line
        );
    }
    let _ = writeln!(out, "  sent:");
    for l in &p.sent {
        let _ = writeln!(out, "    {l}");
    }
}

pub fn text(a: &Audit, color: bool) -> String {
    let mut out = String::new();
    for p in &a.targets {
        target_text(&mut out, p);
        out.push('\n');
    }
    for f in &a.report.findings {
        crate::report::text::finding(&mut out, f, None, color);
        out.push('\n');
    }
    let summary = crate::report::text::summary_line(&a.report, color);
    let n = a.targets.len();
    let _ = writeln!(
        out,
        "{}",
        summary.replace(
            "in 0 files",
            &format!("on {n} target{}", if n == 1 { "" } else { "s" })
        )
    );
    let _ = writeln!(out, "\nSettings that work: {}", advice(a).text);
    out
}
