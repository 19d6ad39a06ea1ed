//! PF112: an smtpd listener on port 465 without implicit TLS (issue #21 item 7).
//!
//! Port 465 is submission over implicit TLS (RFC 8314 section 3.3): the client starts with a
//! TLS handshake. smtpd does that only in wrapper mode; postconf(5), smtpd_tls_wrappermode
//! (default: no): "Run the Postfix SMTP server in TLS "wrapper" mode, instead of using the
//! STARTTLS command. ... specify "-o smtpd_tls_wrappermode=yes" on the SMTP server's command
//! line. Port 465 (submissions/smtps) is reserved for this purpose." Without it the listener
//! sends a plain `220` greeting, and mail clients set to "SSL/TLS, port 465" fail. Postfix's
//! stock master.cf carries the override on its commented smtps/submissions service. Checked
//! against postconf 3.7: `postconf -P` lists a service's `-o` overrides (an `smtps` entry
//! without one has none) and `postconf -x smtpd_tls_wrappermode` gives main.cf's value or `no`;
//! and with a private master on loopback: a listener without wrapper mode greets `220` in
//! clear and `openssl s_client` fails with "wrong version number", one with it answers 220
//! inside TLS.

use super::model::Model;
use crate::context::Context;
use crate::finding::{Finding, Fix, Mta};

/// The names a master.cf inet service may give port 465: the number, and its names in
/// /etc/services (netbase: `submissions 465/tcp ssmtp smtps urd`; older files `smtps`).
const PORT_465: &[&str] = &["465", "smtps", "submissions", "ssmtp", "urd"];

/// Whether a master.cf inet service name (`[host:]port`) listens on port 465.
fn on_465(name: &str) -> bool {
    let port = name.rsplit_once(':').map_or(name, |(_, p)| p);
    PORT_465.contains(&port)
}

pub fn run(_ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    let Some(master) = &m.master else {
        return;
    };
    for si in m.smtpd_listeners() {
        let Some(svc) = m.services().get(si) else {
            continue;
        };
        if svc.kind() != "inet" || !on_465(svc.name()) {
            continue;
        }
        let scope = m.scope(Some(si));
        if scope
            .value("smtpd_tls_wrappermode")
            .eq_ignore_ascii_case("yes")
        {
            continue;
        }
        // The value to fix: an override saying `no` on this listener, else main.cf's `no`,
        // else the default (then the listener's own line takes the override).
        let origin = scope.get("smtpd_tls_wrappermode").map(|e| e.origin);
        let set_where = match origin.as_ref().map(|o| o.kind) {
            Some(super::model::OriginKind::MasterOverride) => "its -o override",
            Some(super::model::OriginKind::MainCf) => "main.cf",
            _ => "the default",
        };
        let src = &master.source;
        let mut fd = Finding::new(
            "PF112",
            Mta::Postfix,
            format!(
                "listener {} on port 465 speaks plain SMTP (smtpd_tls_wrappermode = no, from {set_where}): mail clients set to \"SSL/TLS, port 465\" start with a TLS handshake and cannot connect",
                svc.name()
            ),
        )
        .service(svc.id())
        .help(format!(
            "Add `-o smtpd_tls_wrappermode=yes` to the {} service in master.cf (with a certificate in smtpd_tls_chain_files or smtpd_tls_cert_file).",
            svc.name()
        ))
        .at(src.line_location(svc.line));
        // Review only: clients that today speak plain SMTP on 465 then have to use TLS.
        let desc = format!("set smtpd_tls_wrappermode=yes on {}", svc.name());
        let edit = match origin.filter(|o| o.kind == super::model::OriginKind::MasterOverride) {
            // `-o smtpd_tls_wrappermode=no` on this listener: its value becomes yes.
            Some(o) => o.value_span.map(|v| src.edit(v.start..v.end, "yes")),
            // Otherwise a new override line after the entry, indented as master.cf
            // continuation lines must be.
            None => {
                let end = svc.span.end;
                let text = if src.text[..end].ends_with('\n') {
                    "  -o smtpd_tls_wrappermode=yes\n"
                } else {
                    "\n  -o smtpd_tls_wrappermode=yes"
                };
                Some(src.edit(end..end, text))
            }
        };
        if let Some(e) = edit {
            fd = fd.fix(Fix::review(desc, vec![e]));
        }
        f.push(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::on_465;

    #[test]
    fn port_465_by_number_name_and_address() {
        for n in [
            "smtps",
            "submissions",
            "465",
            "127.0.0.1:465",
            "[::1]:smtps",
        ] {
            assert!(on_465(n), "{n}");
        }
        for n in ["smtp", "submission", "587", "127.0.0.1:10025", "4650"] {
            assert!(!on_465(n), "{n}");
        }
    }
}
