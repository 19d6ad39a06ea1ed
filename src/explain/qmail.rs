//! qmail lines. qmail-smtpd itself logs nothing; what admins have comes from patches, whose
//! format strings this follows (no qmail can be run here, see fixtures/logs/README.md):
//!
//! - chkuser (qmail-toaster, vpopmail; chkuser.c `chkuser_commonlog`):
//!   `CHKUSER rejected relaying: from <sender|remoteinfo/auth:user|chkuser-identify:> remote
//!   <helo:h|remotehostname:n|remotehostip:ip> rcpt <r> : client not allowed to relay`
//!   (chkuser 2.0 before 2.0.9 used `:` instead of `|` and no field labels).
//! - spamcontrol / s/qmail (smtpdlog.c `smtp_logg`): `qmail-smtpd: pid 123 Reject::RCPT::
//!   Failed_Rcpthosts: P:ESMTP S:ip:host H:helo F:sender T:rcpt` (`Invalid_Relay` for the
//!   relay refusal proper).
//! - qlog (Roberto Puzzanghera's netqmail patch, `qsmtpdlog`): `qlogenvelope: result=rejected
//!   code=553 reason=not_in_rcpthosts detail= helo=h mailfrom=s rcptto=r relay=no rcpthosts=no
//!   size= authuser= authtype= encrypted= sslverified=no localip=... remoteip=ip ...`.
//! - Session transcripts (recordio `pid > 553 ...`, qmail-toaster `server:[pid] 553 ...`):
//!   the qmail-smtpd reply itself, read like a bounce but known to come from this server.

use super::bounce;
use super::event::{classify, recipient_class, Auth, Cause, Event, Origin, Side, Source};
use super::header::Header;
use super::postfix::Seen;

fn opt(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// `<...>` after `label` in `s`.
fn angle<'a>(s: &'a str, label: &str) -> Option<&'a str> {
    let i = s.find(label)? + label.len();
    let r = s[i..].strip_prefix('<')?;
    r.find('>').map(|e| &r[..e])
}

/// Split a chkuser field group on `|` (2.0.9+) or `:` (older).
fn parts(s: &str) -> Vec<&str> {
    let sep = if s.contains('|') { '|' } else { ':' };
    s.split(sep).collect()
}

fn labelled<'a>(ps: &[&'a str], label: &str, idx: usize) -> Option<&'a str> {
    ps.iter().find_map(|p| p.strip_prefix(label)).or_else(|| {
        // Old format: positional, no labels.
        if ps
            .iter()
            .any(|p| p.contains("remote") || p.contains("auth"))
        {
            None
        } else {
            ps.get(idx).copied()
        }
    })
}

/// Lines of the logging patches (recognised by their own markers).
pub fn line(h: &Header, o: &Origin, out: &mut Vec<Event>) -> Seen {
    let msg = h.msg;
    if let Some(i) = msg.find("CHKUSER ") {
        return chkuser(h, o, &msg[i + 8..], out);
    }
    if let Some(i) = msg.find("Reject::") {
        return spamcontrol(h, o, &msg[i..], out);
    }
    if let Some(i) = msg.find("qlogenvelope: ") {
        return qlog(h, o, &msg[i + 14..], out);
    }
    if let Some(i) = msg.find("auth: auth-failed ") {
        let mut e = Event::new(Source::Qmail, Side::ThisServer, msg[i + 6..].to_string());
        e.cause = Cause::AuthFailed;
        e.auth = Auth::Failed;
        e.stage = Some("AUTH".into());
        e.sasl_user = angle(msg, "user=").map(str::to_string);
        o.apply(&mut e, h);
        out.push(e);
        return Seen::Understood;
    }
    Seen::NotMine
}

/// A session transcript line with a qmail-smtpd reply (`pid > 553 ...`, `server:[pid] 553
/// ...`): only for lines that carry a qmail-ish header (multilog label or qmail program).
pub fn transcript(h: &Header, o: &Origin, out: &mut Vec<Event>) -> Seen {
    let msg = h.msg;
    let qmailish = h.program.is_some_and(|p| p.contains("qmail"))
        || h.time.is_some_and(|t| t.starts_with('@'));
    if !qmailish {
        return Seen::NotMine;
    }
    if let Some(mut e) = bounce::reply_in(msg) {
        if e.code.is_some_and(|c| c >= 400) {
            e.source = Source::Qmail;
            e.side = Side::ThisServer;
            o.apply(&mut e, h);
            out.push(e);
            return Seen::Understood;
        }
    }
    Seen::NotMine
}

fn chkuser(h: &Header, o: &Origin, s: &str, out: &mut Vec<Event>) -> Seen {
    let Some((title, rest)) = s.split_once(": ") else {
        return Seen::Bad;
    };
    if title.starts_with("accepted") || title.starts_with("relaying") {
        return Seen::Understood;
    }
    let from = angle(rest, "from ").map(parts).unwrap_or_default();
    let remote = angle(rest, "remote ").map(parts).unwrap_or_default();
    let rcpt = angle(rest, "rcpt ");
    let desc = rest.rsplit_once("> : ").map(|(_, d)| d).unwrap_or("");
    let text = format!("{title}: {desc}");
    let mut e = Event::new(Source::Qmail, Side::ThisServer, text.clone());
    e.cause = if title.contains("relaying") {
        Cause::RelayDenied
    } else {
        classify(&text, None)
    };
    e.recipient_class = recipient_class(e.cause, &text);
    e.stage = Some(
        if title.contains("sender") {
            "MAIL"
        } else {
            "RCPT"
        }
        .into(),
    );
    e.sender = from.first().map(|s| s.to_string());
    let user = labelled(&from, "remoteinfo/auth:", 1);
    e.helo = opt(labelled(&remote, "helo:", 0));
    e.client_name = opt(labelled(&remote, "remotehostname:", 1));
    e.client_ip = opt(labelled(&remote, "remotehostip:", 2));
    e.recipient = opt(rcpt);
    match opt(user) {
        Some(u) => {
            e.auth = Auth::Yes;
            e.sasl_user = Some(u);
        }
        None => e.auth = Auth::No,
    }
    o.apply(&mut e, h);
    out.push(e);
    Seen::Understood
}

fn spamcontrol(h: &Header, o: &Origin, s: &str, out: &mut Vec<Event>) -> Seen {
    // `Reject::RCPT::Failed_Rcpthosts: P:ESMTP S:1.2.3.4:host H:helo F:a@b T:c@d`
    let (what, rest) = s.split_once(' ').unwrap_or((s, ""));
    let what = what.trim_end_matches(':');
    let mut seg = what.split("::");
    let _ = seg.next();
    let stage = seg.next().unwrap_or("");
    let reason = seg.next().unwrap_or("");
    let tok = |p: &str| {
        rest.split(' ')
            .find_map(|t| t.strip_prefix(p))
            .filter(|v| !v.is_empty())
    };
    let relay = reason.contains("Rcpthosts") || reason.contains("Relay");
    let text = what.to_string();
    let mut e = Event::new(Source::Qmail, Side::ThisServer, text.clone());
    e.cause = if relay {
        Cause::RelayDenied
    } else if stage == "RBL" {
        Cause::Blocklist
    } else if stage == "AUTH" {
        Cause::AuthFailed
    } else {
        classify(&text.replace('_', " "), None)
    };
    e.recipient_class = recipient_class(e.cause, &text);
    e.code = Some(553);
    e.stage = Some(match stage {
        "SNDR" | "ORIG" => "MAIL".to_string(),
        s => s.to_string(),
    });
    if let Some(sv) = tok("S:") {
        let (ip, name) = sv.split_once(':').unwrap_or((sv, ""));
        e.client_ip = opt(Some(ip));
        e.client_name = opt(Some(name));
    }
    e.helo = opt(tok("H:"));
    e.sender = tok("F:").map(str::to_string);
    e.recipient = opt(tok("T:"));
    e.proto = opt(tok("P:"));
    // spamcontrol logs ESMTPA once the client authenticated (RFC 3848 protocol names).
    e.auth = match e.proto.as_deref() {
        Some(p) if p.ends_with('A') || p.contains("SA") => Auth::Yes,
        Some(_) => Auth::No,
        None => Auth::Unknown,
    };
    o.apply(&mut e, h);
    out.push(e);
    Seen::Understood
}

fn qlog(h: &Header, o: &Origin, s: &str, out: &mut Vec<Event>) -> Seen {
    let get = |k: &str| {
        s.split(' ')
            .find_map(|t| t.strip_prefix(k))
            .filter(|v| !v.is_empty())
    };
    if get("result=") != Some("rejected") {
        return Seen::Understood;
    }
    let reason = get("reason=").unwrap_or("");
    let text = format!(
        "{reason}{}",
        get("detail=")
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    );
    let mut e = Event::new(Source::Qmail, Side::ThisServer, text.clone());
    e.cause = if reason == "not_in_rcpthosts" {
        Cause::RelayDenied
    } else {
        classify(&text.replace('_', " "), None)
    };
    e.recipient_class = recipient_class(e.cause, &text);
    e.code = get("code=").and_then(|c| c.parse().ok());
    e.stage = Some(
        if get("rcptto=").is_some() {
            "RCPT"
        } else {
            "MAIL"
        }
        .into(),
    );
    e.helo = opt(get("helo="));
    e.sender = get("mailfrom=").map(str::to_string);
    e.recipient = opt(get("rcptto="));
    e.client_ip = opt(get("remoteip="));
    e.client_name = opt(get("remotehost="));
    match get("authuser=") {
        Some(u) => {
            e.auth = Auth::Yes;
            e.sasl_user = Some(u.to_string());
        }
        None => e.auth = Auth::No,
    }
    o.apply(&mut e, h);
    out.push(e);
    Seen::Understood
}
