//! The relay questions the probe asks without logging in: a plain relay to a foreign domain,
//! the address forms nmap's smtp-open-relay script tries (percent hack, quoted local parts,
//! source routes, bang paths, IP literals, the empty sender, a sender in the server's own
//! domain), and look-alike domains that slip through unanchored regexp/pcre access maps.

/// How an accepted RCPT is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The recipient's domain is foreign: accepting it is relaying.
    Foreign,
    /// The recipient is written with routing syntax at the server's own name or address:
    /// accepting it relays when the server routes the address onwards.
    Routed,
    /// A recipient in the server's own domain (mail-refused when refused).
    Local,
}

/// One MAIL FROM / RCPT TO question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub mail_from: String,
    pub rcpt_to: String,
    pub kind: Kind,
}

/// What the questions are built from.
pub struct Names<'a> {
    /// The sender the user gave (or the default).
    pub from: &'a str,
    /// The external recipient (foreign domain).
    pub external: &'a str,
    /// A recipient in the server's own domain.
    pub local: Option<&'a str>,
    /// The server's name as it greets (EHLO reply), or the target host.
    pub server_name: &'a str,
    /// The server's address as an IP literal without brackets.
    pub server_ip: String,
}

fn q(name: &str, from: String, to: String, kind: Kind) -> Question {
    Question {
        name: name.to_string(),
        mail_from: from,
        rcpt_to: to,
        kind,
    }
}

/// The questions, in the order asked (the plain relay first: it is the one that matters).
pub fn questions(n: &Names) -> Vec<Question> {
    let (user, ext) = n.external.rsplit_once('@').unwrap_or((n.external, ""));
    let local_domain = n
        .local
        .and_then(|l| l.rsplit_once('@'))
        .map(|(_, d)| d)
        .unwrap_or(n.server_name);
    let s = n.server_name;
    let ip = format!("[{}]", n.server_ip);
    // nmap sends its routing forms from `antispam@[ip]`; a server that refuses IP-literal
    // senders (Exim's default allow_domain_literals = false: 501) would then never see the
    // recipient, so only the dedicated test uses the literal sender.
    let literal_from = format!("probe@{ip}");
    let from = || n.from.to_string();
    use Kind::*;
    let mut v = vec![
        q("plain relay", from(), n.external.into(), Foreign),
        q("empty sender", String::new(), n.external.into(), Foreign),
        q(
            "sender in the server's domain",
            format!("probe@{local_domain}"),
            n.external.into(),
            Foreign,
        ),
        q(
            "sender at the server's IP literal",
            literal_from,
            n.external.into(),
            Foreign,
        ),
        // RFC 5321 section 4.1.3: an address literal as the destination.
        q(
            "IP-literal destination",
            from(),
            format!("{user}@[198.51.100.25]"),
            Foreign,
        ),
        q(
            "source route via the server's IP",
            from(),
            format!("@{ip}:{user}@{ext}"),
            Foreign,
        ),
        q(
            "source route via the server's name",
            from(),
            format!("@{s}:{user}@{ext}"),
            Foreign,
        ),
        // `example.com.example.net` passes `/example\.com/ OK`, `notexample.com` passes
        // `/example\.com$/ OK` (no anchor before the name).
        q(
            "look-alike domain (local domain as a label prefix)",
            from(),
            format!("{user}@{local_domain}.{ext}"),
            Foreign,
        ),
        q(
            "look-alike domain (local domain as a suffix without a dot)",
            from(),
            format!("{user}@relaydoctor-{local_domain}"),
            Foreign,
        ),
        q(
            "percent hack at the server's IP",
            from(),
            format!("{user}%{ext}@{ip}"),
            Routed,
        ),
        q(
            "percent hack at the server's name",
            from(),
            format!("{user}%{ext}@{s}"),
            Routed,
        ),
        q(
            "quoted address without domain",
            from(),
            format!("\"{user}@{ext}\""),
            Routed,
        ),
        q(
            "quoted percent hack without domain",
            from(),
            format!("\"{user}%{ext}\""),
            Routed,
        ),
        q(
            "double @ at the server's IP",
            from(),
            format!("{user}@{ext}@{ip}"),
            Routed,
        ),
        q(
            "quoted address at the server's IP",
            from(),
            format!("\"{user}@{ext}\"@{ip}"),
            Routed,
        ),
        q(
            "double @ at the server's name",
            from(),
            format!("{user}@{ext}@{s}"),
            Routed,
        ),
        q("bang path", from(), format!("{ext}!{user}"), Routed),
        q(
            "bang path at the server's IP",
            from(),
            format!("{ext}!{user}@{ip}"),
            Routed,
        ),
        q(
            "bang path at the server's name",
            from(),
            format!("{ext}!{user}@{s}"),
            Routed,
        ),
    ];
    if let Some(l) = n.local {
        v.push(q("local recipient from outside", from(), l.into(), Local));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_built_from_the_names() {
        let qs = questions(&Names {
            from: "a@sender.example",
            external: "relaytest@example.net",
            local: Some("postmaster@example.com"),
            server_name: "mx.example.com",
            server_ip: "192.0.2.25".into(),
        });
        let to = |name: &str| qs.iter().find(|q| q.name == name).unwrap().rcpt_to.clone();
        assert_eq!(to("plain relay"), "relaytest@example.net");
        assert_eq!(
            to("source route via the server's IP"),
            "@[192.0.2.25]:relaytest@example.net"
        );
        assert_eq!(
            to("percent hack at the server's name"),
            "relaytest%example.net@mx.example.com"
        );
        assert_eq!(
            to("look-alike domain (local domain as a label prefix)"),
            "relaytest@example.com.example.net"
        );
        assert_eq!(to("bang path"), "example.net!relaytest");
        assert_eq!(to("local recipient from outside"), "postmaster@example.com");
        assert!(qs.len() < 25, "the transaction budget is about 30");
    }
}
