//! Relay rules that need more than one stranger/authenticated decision per listener: who can
//! reach a listener at all (loopback binding), relay_domains that match every domain, a
//! port-25 listener that refuses the mail it exists for, Dovecot SASL sockets a chrooted
//! or misconfigured smtpd cannot reach, and XCLIENT opened to networks (PF101, PF102, PF110,
//! PF111).

use std::net::IpAddr;

use super::model::{Model, OriginKind};
use super::policy::{self, Client};
use super::syntax::list_items;
use crate::context::Context;
use crate::finding::{Finding, Fix, Location, Mta};
use crate::relay::{ClientClass, RecipientClass, Verdict};

/// The host part of an inet service name: `127.0.0.1:10025` -> `127.0.0.1`, `[::1]:10025` ->
/// `::1`; None for a bare port (`10025`, `smtp`), which listens on inet_interfaces.
fn host_part(name: &str) -> Option<&str> {
    let (h, _) = name.rsplit_once(':')?;
    Some(h.trim_start_matches('[').trim_end_matches(']'))
}

fn port_part(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn is_loopback_host(h: &str) -> bool {
    h.eq_ignore_ascii_case("localhost")
        || h.eq_ignore_ascii_case("loopback-only")
        || h.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// Whether only clients on this host can connect to listener `si`: an inet service bound to a
/// loopback address, a unix/fifo service, or every listener when inet_interfaces is loopback
/// only (master(8) binds bare ports to inet_interfaces, which a `-o` cannot change).
pub fn loopback_only(m: &Model, si: usize) -> bool {
    let Some(svc) = m.services().get(si) else {
        return false;
    };
    match svc.kind() {
        "inet" => {
            if let Some(h) = host_part(svc.name()) {
                return is_loopback_host(h);
            }
        }
        // Connections handed over by postscreen come from its inet listener.
        "pass" => {}
        _ => return true,
    }
    let ifs = list_items(&m.scope(None).value("inet_interfaces"));
    !ifs.is_empty() && ifs.iter().all(|i| is_loopback_host(i))
}

/// Ports on which strangers are expected: the MX port and the submission ports.
fn public_port(port: &str) -> bool {
    matches!(
        port,
        "smtp" | "25" | "submission" | "587" | "smtps" | "submissions" | "465"
    )
}

/// For an open relay on a re-injection port (content filter return path such as `10025 inet
/// ... smtpd`) that listens on every interface: the fix is binding it to loopback, where the
/// filter on this host connects. Unsafe: the filter may run on another host.
pub fn bind_loopback_fix(m: &Model, si: usize, fd: Finding) -> Finding {
    let (Some(svc), Some(master)) = (m.services().get(si), m.master.as_ref()) else {
        return fd;
    };
    let name = svc.name();
    let port = port_part(name);
    if svc.kind() != "inet" || public_port(port) || loopback_only(m, si) {
        return fd;
    }
    let Some(field) = svc.fields.first() else {
        return fd;
    };
    let src = &master.source;
    let bound = format!("127.0.0.1:{port}");
    let mut fd = fd;
    fd.message.push_str(&format!(
        "; {name} is not a public mail port but listens on every interface ({}), so this re-injection service is reachable from the internet",
        host_part(name).unwrap_or("inet_interfaces")
    ));
    fd.help(format!(
        "A content filter on this host re-injects through loopback: write the service as `{bound} inet ...` so only local clients can connect (and keep its permissive -o lines)."
    ))
    .fix(Fix::review(
        format!("listen on {bound} only (unsafe if the content filter runs on another host)"),
        vec![src.edit(field.span.start..field.span.end, bound)],
    ))
}

/// file:line where `name` is set in the scope of listener `si`.
fn locate(ctx: &Context, m: &Model, si: usize, name: &str) -> Option<Location> {
    let e = m.scope(Some(si)).get(name)?;
    let file = e.origin.file?;
    let src = ctx.source(&file)?;
    Some(src.line_location(e.origin.line))
}

fn service_line(m: &Model, si: usize) -> Option<Location> {
    let svc = m.services().get(si)?;
    Some(m.master.as_ref()?.source.line_location(svc.line))
}

/// Labels that are not public top-level domains (RFC 2606, RFC 6761, common LAN suffixes):
/// `relay_domains = lan` only matches the site's own names.
const PRIVATE_TLDS: &[&str] = &[
    "localhost",
    "localdomain",
    "local",
    "lan",
    "home",
    "corp",
    "internal",
    "intranet",
    "private",
    "test",
    "example",
    "invalid",
];

/// Why an entry of relay_domains makes (nearly) every domain a relay domain, if it does.
///
/// Verified with Postfix 3.7: `relay_domains = static:x` relays to any domain and
/// `relay_domains = com` (parent_domain_matches_subdomains includes relay_domains by
/// default) to every .com domain, while `relay_domains = *` is no wildcard (the stranger still
/// gets `Relay access denied`).
fn matches_everything(entry: &str, parent_matches: bool) -> Option<String> {
    if let Some(v) = entry.strip_prefix("static:") {
        return Some(format!(
            "relay_domains contains `{entry}`: a static map returns `{v}` for every lookup, so every domain on the internet is a relay domain"
        ));
    }
    if entry.contains(':') || entry.contains('/') || entry.starts_with('!') {
        return None;
    }
    let (label, dotted) = match entry.strip_prefix('.') {
        Some(l) => (l, true),
        None => (entry, false),
    };
    if label.is_empty()
        || label.contains('.')
        || !label.chars().all(|c| c.is_ascii_alphabetic())
        || PRIVATE_TLDS.iter().any(|t| t.eq_ignore_ascii_case(label))
    {
        return None;
    }
    if !dotted && !parent_matches {
        return None;
    }
    Some(format!(
        "relay_domains contains the top-level domain `{entry}`, which {} every domain under .{label}",
        if dotted {
            "matches"
        } else {
            "(with relay_domains in parent_domain_matches_subdomains, the default) matches"
        }
    ))
}

/// PF101: relay_domains that match every domain (or a whole TLD) make reject_unauth_destination
/// pass for any recipient there, so strangers relay through the listener.
pub fn relay_domains_everything(ctx: &Context, m: &Model, si: usize, f: &mut Vec<Finding>) {
    let Some(svc) = m.services().get(si) else {
        return;
    };
    let scope = m.scope(Some(si));
    let parent_matches = list_items(&scope.value("parent_domain_matches_subdomains"))
        .iter()
        .any(|p| p == "relay_domains");
    for entry in list_items(&scope.value("relay_domains")) {
        let Some(why) = matches_everything(&entry, parent_matches) else {
            continue;
        };
        let sample = match entry.strip_prefix('.') {
            Some(l) if !entry.contains(':') => format!("someone@victim.{l}"),
            _ if entry.contains(':') => "someone@external.example".to_string(),
            _ => format!("someone@victim.{entry}"),
        };
        let d = policy::evaluate(
            m,
            si,
            Client::of(ClientClass::Stranger),
            RecipientClass::Relay,
            &sample,
        );
        if d.result != Verdict::Accept {
            continue;
        }
        let mut fd = Finding::new(
            "PF101",
            Mta::Postfix,
            format!(
                "open relay on listener {}: {why}; reject_unauth_destination lets such recipients pass, so a client outside mynetworks that does not log in gets `250 2.1.5 Ok` for RCPT TO:<{sample}> and can send spam through this server",
                svc.name()
            ),
        )
        .service(svc.id())
        .help("List only the domains this server is a backup MX or gateway for, e.g. `relay_domains = example.org` (or a hash: map of them).");
        if let Some(l) = locate(ctx, m, si, "relay_domains").or_else(|| service_line(m, si)) {
            fd = fd.at(l);
        }
        f.push(bind_loopback_fix(m, si, fd));
        // One finding per listener is enough to fix it.
        break;
    }
}

/// Whether listener `si` is where the internet delivers mail: the port-25 smtpd, or the
/// `smtpd pass` service behind a postscreen on port 25.
fn port25(m: &Model, si: usize) -> bool {
    let Some(svc) = m.services().get(si) else {
        return false;
    };
    match svc.kind() {
        "inet" => matches!(port_part(svc.name()), "smtp" | "25"),
        "pass" => m.services().iter().any(|s| {
            s.kind() == "inet"
                && s.command() == "postscreen"
                && matches!(port_part(s.name()), "smtp" | "25")
        }),
        _ => false,
    }
}

/// Domains this server receives mail for, as the admin listed them: mydestination (without
/// the host's own names, which a mere relay host also has), the virtual domains and the
/// relay (backup MX) domains.
fn hosted_domains(m: &Model, si: usize) -> Vec<(RecipientClass, String)> {
    let scope = m.scope(Some(si));
    let myhostname = scope.value("myhostname").to_ascii_lowercase();
    let literal = |d: &str| {
        !d.contains(':')
            && !d.contains('/')
            && !d.starts_with('$')
            && !d.starts_with('!')
            && !d.starts_with('.')
            && d.contains('.')
    };
    let mut out = Vec::new();
    for p in [
        "mydestination",
        "virtual_mailbox_domains",
        "virtual_alias_domains",
        "relay_domains",
    ] {
        for d in list_items(&scope.value(p)) {
            let d = d.to_ascii_lowercase();
            if !literal(&d) || d == myhostname || d.starts_with("localhost") {
                continue;
            }
            let class = policy::classify(m, si, &d);
            if class != RecipientClass::External && !out.iter().any(|(_, x)| *x == d) {
                out.push((class, d));
            }
        }
    }
    out
}

/// PF110: on the port-25 listener a client outside mynetworks that does not log in — every
/// other mail server on the internet — must be able to deliver to the domains hosted here.
/// The classic cause is a submission block whose header was commented out while its `-o`
/// lines (`smtpd_client_restrictions=permit_sasl_authenticated,reject`) stayed attached to
/// `smtp` (master.cf continuation lines belong to the service above).
pub fn inbound_refused(ctx: &Context, m: &Model, si: usize, f: &mut Vec<Finding>) {
    if !port25(m, si) {
        return;
    }
    let Some(svc) = m.services().get(si) else {
        return;
    };
    let Some((class, dom)) = hosted_domains(m, si).into_iter().next() else {
        return;
    };
    let rcpt = format!("postmaster@{dom}");
    let d = policy::evaluate(m, si, Client::of(ClientClass::Stranger), class, &rcpt);
    if !matches!(d.result, Verdict::Reject | Verdict::Defer) {
        return;
    }
    let step = d
        .trace
        .iter()
        .rev()
        .find(|s| s.effect == "reject" || s.effect == "defer");
    let entry = step.map(|s| s.entry.clone()).unwrap_or_default();
    // The deciding list set by an -o line of this service after a commented-out header?
    let list = entry.split(':').next().unwrap_or("").to_string();
    let orphan: Option<String> = m.scope(Some(si)).get(&list).and_then(|e| {
        if e.origin.kind != OriginKind::MasterOverride {
            return None;
        }
        let at = e.origin.name_span.map(|s| s.start)?;
        let mm = m.master.as_ref()?;
        svc.inner_comments
            .iter()
            .filter(|c| c.end < at)
            .find_map(|c| super::syntax::commented_header(c.text(&mm.source.text)))
    });
    let mut msg = format!(
        "listener {} is the port-25 service other mail servers deliver to, but a client outside mynetworks that does not log in gets `{}` for RCPT TO:<{rcpt}> (`{entry}` refuses it): mail for {dom} from the internet is {}",
        svc.name(),
        d.reply_line(),
        if d.result == Verdict::Defer {
            "deferred by every sender and finally bounced"
        } else {
            "bounced back to its senders"
        }
    );
    if let Some(header) = &orphan {
        msg.push_str(&format!(
            "; the {list} line follows the commented-out service header `{header}`, so it was meant for that service but applies to {}",
            svc.name()
        ));
    }
    let mut fd = Finding::new("PF110", Mta::Postfix, msg)
        .service(svc.id())
        .help(if orphan.is_some() {
            "Comment out the -o lines of the disabled service too (or restore its header); port 25 must accept mail for your domains from unauthenticated clients."
        } else {
            "Port 25 must accept mail for your domains from unauthenticated clients: keep client-dependent rejects (permit_sasl_authenticated, reject) on the submission listener, and let smtp end its lists with reject_unauth_destination."
        });
    let loc = step
        .filter(|s| s.line > 0)
        .and_then(|s| ctx.source(&s.file).map(|src| src.line_location(s.line)))
        .or_else(|| service_line(m, si));
    if let Some(l) = loc {
        fd = fd.at(l);
    }
    f.push(fd);
}

/// Whether listener `si` runs chrooted: its master.cf chroot column, where `-` means y below
/// compatibility_level 1 and n from level 1 on (COMPATIBILITY_README: "using
/// backwards-compatible default setting chroot=y").
pub(super) fn chrooted(m: &Model, si: usize) -> Option<&'static str> {
    let svc = m.services().get(si)?;
    match svc.fields.get(4).map(|f| f.text.as_str()) {
        Some("y") => Some("the master.cf chroot column is y"),
        Some("-") => {
            let level0 = m
                .scope(None)
                .value("compatibility_level")
                .trim()
                .parse::<f64>()
                .is_ok_and(|l| l < 1.0);
            level0.then_some("the master.cf chroot column is `-`, which means y while compatibility_level is below 1")
        }
        _ => None,
    }
}

/// PF102: `smtpd_sasl_type = dovecot` needs smtpd_sasl_path to name Dovecot's auth socket
/// (SASL_README "Enabling SASL authentication in the Postfix SMTP server": a path relative to
/// the queue directory, usually private/auth, or inet:host:port). Left at the default `smtpd`
/// (Cyrus's application name) smtpd connects to $queue_directory/smtpd; an absolute path is
/// looked up inside the chroot jail (the queue directory) when the listener is chrooted. In
/// both cases smtpd logs `warning: SASL: Connect to Dovecot auth socket '...' failed: No such
/// file or directory` and `fatal: no SASL authentication mechanisms` (verified with Postfix 3.7
/// for the default path): the listener closes every connection before the greeting.
pub fn dovecot_sasl(ctx: &Context, m: &Model, si: usize, f: &mut Vec<Finding>) {
    let Some(svc) = m.services().get(si) else {
        return;
    };
    if !policy::sasl_enabled(m, si) {
        return;
    }
    let scope = m.scope(Some(si));
    if !scope
        .value("smtpd_sasl_type")
        .eq_ignore_ascii_case("dovecot")
    {
        return;
    }
    let path = scope.value("smtpd_sasl_path");
    let path_entry = scope.get("smtpd_sasl_path");
    let path_set = path_entry.as_ref().is_some_and(|e| e.origin.file.is_some());
    let name = svc.name();
    let effect = format!(
        "smtpd logs `warning: SASL: Connect to Dovecot auth socket '{path}' failed: No such file or directory` and `fatal: no SASL authentication mechanisms`, so listener {name} closes every connection before the greeting: nobody can send mail through it, not only users who log in"
    );
    let mut fd = if path == "smtpd" {
        let mut fd = Finding::new(
            "PF102",
            Mta::Postfix,
            format!(
                "smtpd_sasl_type = dovecot but smtpd_sasl_path is {} `smtpd`, the Cyrus application name: smtpd looks for a Dovecot socket $queue_directory/smtpd that Dovecot does not create; {effect}",
                if path_set { "set to" } else { "left at its default" }
            ),
        )
        .help("Point smtpd_sasl_path at Dovecot's auth socket for Postfix: `smtpd_sasl_path = private/auth`, with `unix_listener /var/spool/postfix/private/auth { mode = 0660; user = postfix; group = postfix }` in Dovecot's service auth (SASL_README).");
        // Mechanical when the type is set in main.cf and the path nowhere: add the path line
        // right after it.
        let type_entry = m.main_entry("smtpd_sasl_type");
        if let (false, Some(te), Some(main)) = (path_set, type_entry, m.main.as_ref()) {
            if te.value.trim().eq_ignore_ascii_case("dovecot") {
                let src = &main.source;
                let end = match src.text.get(te.span.end..).and_then(|t| t.find('\n')) {
                    Some(i) => te.span.end + i + 1,
                    None => src.text.len(),
                };
                let nl = if src.text[..end].ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                fd = fd.fix(Fix::review(
                    "add `smtpd_sasl_path = private/auth` after smtpd_sasl_type (Dovecot must listen on /var/spool/postfix/private/auth)",
                    vec![src.edit(end..end, format!("{nl}smtpd_sasl_path = private/auth\n"))],
                ));
            }
        }
        fd
    } else if path.starts_with('/') {
        let Some(why) = chrooted(m, si) else {
            return;
        };
        let queue = m.scope(None).value("queue_directory");
        let mut fd = Finding::new(
            "PF102",
            Mta::Postfix,
            format!(
                "listener {name} runs chrooted ({why}), so smtpd looks for the Dovecot socket {path} inside the jail, at {queue}{path}; {effect}"
            ),
        );
        let inside = format!("{}/", queue.trim_end_matches('/'));
        if let (Some(rel), Some(e)) = (path.strip_prefix(&inside), path_entry.as_ref()) {
            // The socket is in the queue directory already: the relative form reaches it
            // from inside and outside the jail.
            fd = fd.help(format!(
                "Write the path relative to the queue directory: `smtpd_sasl_path = {rel}`."
            ));
            if let (Some(file), Some(vs)) = (e.origin.file.as_ref(), e.origin.value_span) {
                if let Some(src) = ctx.source(file) {
                    fd = fd.fix(Fix::safe(
                        format!("use the path relative to the queue directory: {rel}"),
                        vec![src.edit(vs.start..vs.end, rel)],
                    ));
                }
            }
        } else {
            fd = fd.help("Let Dovecot listen inside Postfix's queue directory (`unix_listener /var/spool/postfix/private/auth` in service auth) and set `smtpd_sasl_path = private/auth`, or run this listener with chroot n.");
        }
        fd
    } else {
        return;
    };
    fd = fd.service(svc.id());
    if let Some(l) = locate(ctx, m, si, "smtpd_sasl_path")
        .or_else(|| locate(ctx, m, si, "smtpd_sasl_type"))
        .or_else(|| service_line(m, si))
    {
        fd = fd.at(l);
    }
    f.push(fd);
}

/// What an entry of smtpd_authorized_xclient_hosts opens XCLIENT to, when that is more than
/// a host: Some(true) for every client on the internet, Some(false) for a whole network.
/// Single addresses (a proxy), loopback, exclusions, host names (matched on verified names)
/// and lookup tables other than static: are left alone.
fn xclient_reach(entry: &str) -> Option<bool> {
    if entry.starts_with('!') {
        return None;
    }
    if entry.starts_with("static:") {
        return Some(true);
    }
    let net = entry.replace(['[', ']'], "").parse::<ipnet::IpNet>().ok()?;
    if net.addr().is_loopback() {
        return None;
    }
    match net.prefix_len() {
        0 => Some(true),
        n if n < net.max_prefix_len() => Some(false),
        _ => None,
    }
}

/// PF111: XCLIENT lets an authorized host tell smtpd who the client is: `XCLIENT
/// ADDR=127.0.0.1` makes permit_mynetworks apply, `LOGIN=anyone` permit_sasl_authenticated
/// (XCLIENT_README; tests/postfix_relay_rules.rs drives a real smtpd so). Authorizing a
/// network, or everyone, lets each host there relay as a trusted client. One finding per
/// setting (a main.cf value applies to every listener), naming the network-reachable
/// listeners it opens.
pub fn xclient_hosts(ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    use crate::finding::Severity;
    // (setting's location, value) -> listeners, in master.cf order.
    let mut settings: Vec<(Option<Location>, String, Vec<usize>)> = Vec::new();
    for si in m.smtpd_listeners() {
        if loopback_only(m, si) {
            continue;
        }
        let value = m.scope(Some(si)).value("smtpd_authorized_xclient_hosts");
        let loc = locate(ctx, m, si, "smtpd_authorized_xclient_hosts");
        match settings
            .iter_mut()
            .find(|(l, v, _)| *l == loc && *v == value)
        {
            Some(s) => s.2.push(si),
            None => settings.push((loc, value, vec![si])),
        }
    }
    for (loc, value, listeners) in settings {
        let items = list_items(&value);
        let everyone = items.iter().find(|e| xclient_reach(e) == Some(true));
        let networks: Vec<String> = items
            .iter()
            .filter(|e| xclient_reach(e) == Some(false))
            .map(|n| format!("`{n}`"))
            .collect();
        let (severity, what) = match everyone {
            Some(e) => (
                Severity::Error,
                // 0.0.0.0/0 is an IPv4 pattern: IPv6 clients need [::]/0 (and the reverse).
                format!(
                    "`{e}` authorizes every {} on the internet",
                    if e.starts_with("static:") {
                        "client"
                    } else if e.contains(':') {
                        "IPv6 client"
                    } else {
                        "IPv4 client"
                    }
                ),
            ),
            None if networks.len() == 1 => (
                Severity::Warning,
                format!("{} authorizes every host of that network", networks[0]),
            ),
            None if !networks.is_empty() => (
                Severity::Warning,
                format!(
                    "{} authorize every host of those networks",
                    networks.join(", ")
                ),
            ),
            None => continue,
        };
        let names: Vec<&str> = listeners
            .iter()
            .filter_map(|&si| m.services().get(si).map(|s| s.name()))
            .collect();
        // XCLIENT LOGIN= only counts where SASL is on (smtpd answers `554 Access denied`
        // to a claimed login on a listener without it; checked with Postfix 3.7).
        let sasl = listeners.iter().any(|&si| {
            m.scope(Some(si))
                .value("smtpd_sasl_auth_enable")
                .eq_ignore_ascii_case("yes")
        });
        let claims = if sasl {
            "`XCLIENT ADDR=127.0.0.1` (or `XCLIENT LOGIN=anyone` where SASL is on) and smtpd then treats it as mynetworks (or as logged in)"
        } else {
            "`XCLIENT ADDR=127.0.0.1` and smtpd then treats it as mynetworks"
        };
        let mut fd = Finding::new(
            "PF111",
            Mta::Postfix,
            format!(
                "XCLIENT on {} {}: smtpd_authorized_xclient_hosts {what}; an authorized host can send {claims}, so it relays anywhere{}",
                if names.len() == 1 { "listener" } else { "listeners" },
                names.join(", "),
                if severity == Severity::Error {
                    " (an open relay for anyone who knows the command)"
                } else {
                    ""
                }
            ),
        )
        .severity(severity)
        .help("List only the address of the proxy or filter that speaks XCLIENT (nginx mail proxy, a front-end MTA), e.g. `smtpd_authorized_xclient_hosts = 192.0.2.10`, or remove the setting (default: nobody).");
        if let Some(svc) = listeners.first().and_then(|&si| m.services().get(si)) {
            fd = fd.service(svc.id());
        }
        if let Some(l) = loc.or_else(|| listeners.first().and_then(|&si| service_line(m, si))) {
            fd = fd.at(l);
        }
        f.push(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::xclient_reach;

    #[test]
    fn xclient_entries_beyond_a_host() {
        for (entry, want) in [
            ("0.0.0.0/0", Some(true)),
            ("[::]/0", Some(true)),
            ("static:all", Some(true)),
            ("10.20.0.0/16", Some(false)),
            ("[2001:db8::]/64", Some(false)),
            ("192.0.2.10", None),
            ("192.0.2.10/32", None),
            ("127.0.0.0/8", None),
            ("[::1]/128", None),
            ("!10.0.0.0/8", None),
            ("proxy.example.com", None),
            ("hash:/etc/postfix/xclient", None),
        ] {
            assert_eq!(xclient_reach(entry), want, "{entry}");
        }
    }
}
