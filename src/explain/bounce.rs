//! SMTP replies pasted from a bounce (non-delivery report) or a mail program's error dialog:
//! `554 5.7.1 <u@x>: Relay access denied`, `454 4.7.1 ...`, `550 relay not permitted`,
//! `553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)`, Microsoft 365's
//! `550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP`.
//!
//! Which side refused follows from the words around the reply: a bounce quotes the recipient's
//! server (`host mx.x[1.2.3.4] said:`, `Remote Server returned`, `Diagnostic-Code:`, `in reply
//! to RCPT TO`); a mail program's dialog quotes the user's own outgoing server (`The server
//! responded`). A bare reply could be either, and the report says so.

use super::event::{is_enhanced, Event, Origin, Side, Source};
use super::header::Header;
use super::postfix::{client, Seen};

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Find an SMTP reply (4xx/5xx code, or a bare enhanced code) in free text.
pub fn reply_in(text: &str) -> Option<Event> {
    let b = text.as_bytes();
    let boundary = |i: usize| {
        i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'.' && b[i - 1] != b'#'
    };
    let mut start = None;
    for i in 0..b.len().saturating_sub(2) {
        if matches!(b[i], b'4' | b'5')
            && b[i + 1].is_ascii_digit()
            && b[i + 2].is_ascii_digit()
            && boundary(i)
            && matches!(b.get(i + 3), Some(b' ') | Some(b'-'))
            && b.get(i + 4)
                .is_some_and(|c| !c.is_ascii_digit() || b.get(i + 5) == Some(&b'.'))
        {
            start = Some(i);
            break;
        }
    }
    if start.is_none() {
        // `5.7.1 <u@x>: Relay access denied` (Thunderbird shows only the enhanced code).
        let mut pos = 0;
        for tok in text.split(' ') {
            if is_enhanced(tok) && boundary(pos) && matches!(tok.as_bytes()[0], b'4' | b'5') {
                start = Some(pos);
                break;
            }
            pos += tok.len() + 1;
        }
    }
    let i = start?;
    let mut reply = text.get(i..)?.trim();
    // Cut the bounce's own trailer: `(in reply to RCPT TO command)`, closing quotes.
    for end in [" (in reply to ", "' ", "'\u{2019}"] {
        if let Some(j) = reply.find(end) {
            reply = &reply[..j];
        }
    }
    let mut reply = reply.trim_end_matches(['\'', '"']).trim_end();
    // A closing parenthesis belongs to the reply only when the reply opened it.
    while reply.ends_with(')') && reply.matches(')').count() > reply.matches('(').count() {
        reply = reply[..reply.len() - 1].trim_end();
    }
    let mut e = Event::new(Source::Bounce, Side::Unknown, reply.to_string()).with_reply_codes();
    if e.code.is_none() {
        // Bare enhanced code: the basic code follows from its class.
        e.code = match reply.as_bytes().first() {
            Some(b'4') => Some(450),
            Some(b'5') => Some(550),
            _ => None,
        };
    }
    Some(e)
}

/// First e-mail address in `s` (`<u@x>` or a bare `u@x`).
pub fn address(s: &str) -> Option<String> {
    if let Some(o) = s.find('<') {
        if let Some(c) = s[o..].find('>') {
            let a = &s[o + 1..o + c];
            if a.contains('@') && !a.contains(' ') {
                return Some(a.to_string());
            }
        }
    }
    s.split(|c: char| {
        c.is_whitespace() || matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '\'' | '"')
    })
    .map(|t| t.trim_end_matches([':', '.']))
    .find(|t| {
        t.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
    })
    .map(str::to_string)
}

/// A pasted bounce or dialog line.
pub fn line(h: &Header, o: &Origin, out: &mut Vec<Event>) -> Seen {
    let text = h.msg;
    let Some(mut e) = reply_in(text) else {
        return Seen::NotMine;
    };
    let lower_has = |n: &str| contains_ci(text, n);
    e.side = if lower_has(" said:")
        || lower_has("remote server")
        || lower_has("diagnostic-code")
        || lower_has("in reply to")
        || lower_has("smtp error from remote")
        || lower_has("response from the remote")
    {
        Side::RecipientServer
    } else if lower_has("server responded")
        || lower_has("server replied")
        || lower_has("wasn't sent")
        || lower_has("sending of the message failed")
    {
        Side::ThisServer
    } else {
        Side::Unknown
    };
    if let Some(i) = text.find("host ") {
        if let Some((name, ip, _)) = client(&text[i + 5..]) {
            e.remote_host = Some(format!("{name}[{ip}]"));
            e.side = Side::RecipientServer;
        }
    }
    let addr = address(&e.reply).or_else(|| address(text));
    if e.cause == super::event::Cause::SenderVerify {
        e.sender = addr;
    } else {
        e.recipient = addr;
    }
    if let Some(i) = text.find("(in reply to ") {
        let s = &text[i + 13..];
        e.stage = s.split(' ').next().map(str::to_string);
    }
    o.apply(&mut e, h);
    out.push(e);
    Seen::Understood
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::event::Cause;

    fn one(t: &str) -> Event {
        let h = Header {
            msg: t,
            ..Header::default()
        };
        let mut out = Vec::new();
        line(&h, &Origin::new("t", 1), &mut out);
        out.pop().expect("an event")
    }

    #[test]
    fn replies_and_sides() {
        let e = one("554 5.7.1 <bob@external.example>: Relay access denied");
        assert_eq!(
            (e.code, e.cause, e.side),
            (Some(554), Cause::RelayDenied, Side::Unknown)
        );
        assert_eq!(e.recipient.as_deref(), Some("bob@external.example"));
        let e = one("<bob@x.example>: host mx.x.example[192.0.2.1] said: 554 5.7.1 <bob@x.example>: Relay access denied (in reply to RCPT TO command)");
        assert_eq!(e.side, Side::RecipientServer);
        assert_eq!(e.remote_host.as_deref(), Some("mx.x.example[192.0.2.1]"));
        assert_eq!(e.stage.as_deref(), Some("RCPT"));
        assert_eq!(e.reply, "554 5.7.1 <bob@x.example>: Relay access denied");
        let e = one("The server responded: 454 4.7.1 <a@b.example>: Relay access denied");
        assert_eq!((e.side, e.code), (Side::ThisServer, Some(454)));
        let e = one("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");
        assert_eq!(e.cause, Cause::RelayDenied);
        let e = one("Remote Server returned '550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.'");
        assert_eq!((e.cause, e.side), (Cause::Microsoft, Side::RecipientServer));
        assert_eq!(e.enhanced.as_deref(), Some("5.7.708"));
        assert!(reply_in("Hello, size=5500 bytes").is_none());
    }
}
