//! A target's answers as findings (rules/probe.toml, PR1xx). Each quotes what was sent and
//! what came back, and names the target as the finding's service.

use crate::finding::{Finding, Mta, Severity};

use super::relay::Kind;
use super::Probed;

/// The MTA a banner names: Postfix's default `smtpd_banner` ends in `ESMTP $mail_name`
/// ("Postfix"), Exim's default `smtp_banner` names "Exim"; qmail-smtpd says "ESMTP" alone.
/// Unknown banners are reported as Postfix, the most common server.
pub fn mta_of(banner: Option<&str>) -> Mta {
    let b = banner.unwrap_or("").to_ascii_lowercase();
    if b.contains("exim") {
        Mta::Exim
    } else if b.contains("qmail") {
        Mta::Qmail
    } else {
        Mta::Postfix
    }
}

pub fn for_target(p: &Probed) -> Vec<Finding> {
    let mta = mta_of(p.banner.as_deref());
    let at = p.target.as_str();
    let mk =
        |code: &str, msg: String, help: &str| Finding::new(code, mta, msg).service(at).help(help);
    let mut out = Vec::new();
    relay_findings(p, mta, &mut out);
    if let Some(l) = &p.login {
        if let Some(why) = &l.skipped {
            out.push(mk(
                "PR122",
                format!("{at}: no login as {}: {why}", l.user),
                "Use the port and TLS mode where the server offers AUTH PLAIN or LOGIN over TLS (usually 587 with STARTTLS, or 465).",
            ));
        } else if !l.ok {
            out.push(mk(
                "PR121",
                format!(
                    "{at}: login as {} with AUTH {} refused: {}",
                    l.user,
                    l.mechanism.as_deref().unwrap_or("?"),
                    l.reply_line
                ),
                "Check the user name (full address or local part, as the server expects) and the password; Postfix logs `SASL ... authentication failed` with the reason.",
            ));
        }
    }
    let plain_before: Vec<&str> = p
        .auth_mechanisms
        .before_tls
        .iter()
        .map(String::as_str)
        .filter(|m| matches!(*m, "PLAIN" | "LOGIN"))
        .collect();
    if !plain_before.is_empty() {
        out.push(mk(
            "PR130",
            format!(
                "{at}: AUTH {} is offered before TLS: a client can send its password in the clear",
                plain_before.join(" ")
            ),
            "Postfix: smtpd_tls_auth_only = yes; Exim: server_advertise_condition = ${if def:tls_in_cipher}.",
        ));
    }
    tls_findings(p, &mk, &mut out);
    out
}

fn relay_findings(p: &Probed, mta: Mta, out: &mut Vec<Finding>) {
    let at = p.target.as_str();
    for t in &p.tests {
        let quoted = format!(
            "MAIL FROM:<{}> RCPT TO:<{}> got `{}`",
            t.mail_from, t.rcpt_to, t.reply_line
        );
        let f = match (t.authenticated, t.kind, t.accepted) {
            (false, Kind::Foreign, true) => Finding::new(
                "PR101",
                mta,
                format!("{at}: open relay ({}): {quoted}", t.name),
            )
            .help("The server accepts mail for a foreign domain from an unauthenticated client: spammers will use it. `relaydoctor lint` shows which setting allows it."),
            (false, Kind::Routed, true) => Finding::new(
                "PR102",
                mta,
                format!("{at}: routing syntax accepted ({}): {quoted}", t.name),
            )
            .help("The recipient is written with routing syntax at this server; if the server routes it onwards (Exim percent_hack_domains, Postfix allow_untrusted_routing), it relays."),
            (false, Kind::Local, false) if t.stage == "RCPT" && t.reply_line.starts_with('5') => {
                Finding::new(
                    "PR110",
                    mta,
                    format!("{at}: the server refuses its own recipient from outside: {quoted}"),
                )
                .help("Mail for this domain from other servers is bounced: check the domain is in mydestination / virtual_mailbox_domains (Postfix) or local_domains (Exim), and the recipient exists.")
            }
            (true, Kind::Foreign, false) => Finding::new(
                "PR120",
                mta,
                format!("{at}: logged in, and still refused ({}): {quoted}", t.name),
            )
            .help("The login worked but relaying is not permitted for it here: Postfix needs permit_sasl_authenticated before reject_unauth_destination on this listener; Exim an `accept authenticated = *` in the RCPT ACL."),
            _ => continue,
        };
        out.push(f.service(at));
    }
}

fn tls_findings(p: &Probed, mk: &dyn Fn(&str, String, &str) -> Finding, out: &mut Vec<Finding>) {
    let at = p.target.as_str();
    if let Some(e) = &p.tls.error {
        out.push(mk(
            "PR143",
            format!("{at}: TLS could not be set up: {e}"),
            "Mail clients give up here before they log in. Check the server's certificate and key files and its TLS log messages.",
        ));
    }
    if p.banner.is_some() && !p.tls.offered {
        let f = mk(
            "PR144",
            format!("{at}: STARTTLS is not offered"),
            "Postfix: smtpd_tls_security_level = may (port 25) or encrypt (submission) with smtpd_tls_cert_file/smtpd_tls_key_file; Exim: tls_advertise_hosts = * with tls_certificate.",
        );
        // Port 25 talks to other servers, where TLS is opportunistic; clients log in elsewhere.
        out.push(if p.port == 25 {
            f.severity(Severity::Info)
        } else {
            f
        });
    }
    let Some(c) = &p.tls.certificate else {
        return;
    };
    let names = if c.names.is_empty() {
        c.subject.clone().unwrap_or_else(|| "none".into())
    } else {
        c.names.join(", ")
    };
    if let Some(why) = &c.untrusted {
        out.push(mk(
            "PR140",
            format!("{at}: the certificate is not trusted: {why}"),
            "Install a certificate from a public CA (e.g. Let's Encrypt) with its intermediate chain; pass --ca-file to trust a private CA.",
        ));
    }
    if c.expired || c.not_yet_valid {
        let when = c.not_after.as_deref().unwrap_or("?");
        let msg = if c.expired {
            format!("{at}: the certificate expired at {when}")
        } else {
            format!(
                "{at}: the certificate is not valid before {}",
                c.not_before.as_deref().unwrap_or("?")
            )
        };
        out.push(mk(
            "PR141",
            msg,
            "Renew the certificate and reload the server (postfix reload / exim's SIGHUP): the daemon keeps the old one until then.",
        ));
    }
    if c.name_mismatch {
        out.push(mk(
            "PR142",
            format!("{at}: the certificate is for {names}, not {}", p.host),
            "Clients must connect by a name the certificate lists: use that name in the mail client, or add this name to the certificate.",
        ));
    }
}
