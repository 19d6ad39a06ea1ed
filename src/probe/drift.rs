//! `--root`: tie the probe's answers to the configuration on disk. For each probed listener
//! the static model (`simulate`) is asked the probe's own plain-relay question, for the client
//! address the server saw, and for a stranger:
//! - the configuration relays for the probe's address but not for a stranger: the probe runs
//!   from a trusted vantage point (mynetworks, relay_from_hosts), so its relay tests prove
//!   nothing about strangers (PR150; its relay findings become info);
//! - the running server's answer differs from the configuration's: the daemon is not running
//!   the configuration on disk (PR160, config-drift), e.g. main.cf edited without a reload.

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::finding::{Finding, Severity};
use crate::relay::{Decision, Query, Verdict};

use super::findings::mta_of;
use super::{Probed, Settings};

/// An address no configuration trusts (TEST-NET-3, RFC 5737).
const STRANGER: &str = "203.0.113.5";

/// The port a configuration's service name listens on: master.cf `smtp`, `submission`,
/// `smtps`/`submissions`, `IP:PORT` or `PORT`; Exim's `smtp/N`, `smtps/N`; postscreen's
/// `smtpd` pass service stands for port 25.
fn service_port(name: &str) -> Option<u16> {
    let last = name.rsplit([':', '/']).next().unwrap_or(name);
    match last {
        "smtp" | "smtpd" => Some(25),
        "submission" => Some(587),
        "smtps" | "submissions" => Some(465),
        n => n.parse().ok(),
    }
}

/// The decision for `port`: the service on that port, or the only service there is (Exim
/// decides once for every port unless an ACL tests the port). On the live system only a
/// service named for that very port counts: a probe of a private test server on some other
/// loopback port is not a probe of the configured daemon.
fn for_port(decisions: Vec<Decision>, port: u16, exact: bool) -> Option<Decision> {
    if decisions.len() == 1 && !exact {
        return decisions.into_iter().next();
    }
    decisions
        .into_iter()
        .find(|d| service_port(&d.service) == Some(port))
}

fn ask(ctx: &Context, client: &str, s: &Settings, rcpt: &str, port: u16) -> Option<Decision> {
    let q = Query {
        client_ip: client.to_string(),
        helo: Some(s.helo.clone()),
        sender: Some(s.from.clone()),
        rcpt: rcpt.to_string(),
        ..Default::default()
    };
    for_port(
        crate::lint::simulate(ctx, &[], &q).ok()?,
        port,
        !ctx.root.is_snapshot(),
    )
}

fn class(code: u16) -> Verdict {
    match code / 100 {
        2 => Verdict::Accept,
        4 => Verdict::Defer,
        _ => Verdict::Reject,
    }
}

/// The newest configuration file the decision's trace read (for Postfix also main.cf and
/// master.cf, which a decision by default values does not name), and when it changed.
fn newest_file(ctx: &Context, d: &Decision) -> Option<(PathBuf, String)> {
    let mut files: Vec<PathBuf> = d.trace.iter().map(|t| t.file.clone()).collect();
    if d.mta == crate::finding::Mta::Postfix {
        files.push("etc/postfix/main.cf".into());
        files.push("etc/postfix/master.cf".into());
    }
    files
        .into_iter()
        .filter_map(|f| {
            // Trace paths are shown relative to the root.
            let real = ctx.root.resolve(&Path::new("/").join(&f));
            let m = std::fs::metadata(real).ok()?.modified().ok()?;
            Some((f, m))
        })
        .max_by_key(|(_, m)| *m)
        .map(|(f, m)| {
            let secs = m
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            (f, super::x509::format_time(secs))
        })
}

/// Findings for the targets; relay findings (PR101, PR102) from a trusted vantage point are
/// lowered to info in `found`.
pub fn check(ctx: &Context, targets: &[Probed], s: &Settings, found: &mut Vec<Finding>) {
    for p in targets {
        let Some(client) = &p.client_address else {
            continue;
        };
        let Some(test) = p
            .tests
            .iter()
            .find(|t| t.name == "plain relay" && t.reply.is_some())
        else {
            continue;
        };
        let Some(mine) = ask(ctx, client, s, &test.rcpt_to, p.port) else {
            continue;
        };
        let mta = mta_of(p.banner.as_deref());
        let at = p.target.as_str();
        let stranger = ask(ctx, STRANGER, s, &test.rcpt_to, p.port).map(|d| d.result);
        let permit = mine.trace.iter().rev().find(|t| t.effect == "permit");
        // A loopback-only listener cannot be reached by a stranger at all: then the entry
        // that let the probe relay must be a trust entry itself.
        let trust_entry = permit.is_some_and(|t| {
            ["mynetworks", "relay_from_hosts", "RELAYCLIENT"]
                .iter()
                .any(|n| t.entry.contains(n))
        });
        let trusted = mine.result == Verdict::Accept
            && match stranger {
                Some(Verdict::Reject | Verdict::Defer) => true,
                Some(Verdict::Unavailable) => trust_entry,
                _ => false,
            };
        if trusted {
            let why = permit
                .map(|t| format!(" ({} at {}:{})", t.entry, t.file.display(), t.line))
                .unwrap_or_default();
            found.push(
                Finding::new(
                    "PR150",
                    mta,
                    format!(
                        "{at}: the probe ran from {client}, an address the configuration lets relay on {}{why}: its relay tests succeed where a stranger's fail",
                        mine.service
                    ),
                )
                .service(at)
                .help("Probe from a host outside mynetworks / relay_from_hosts to see what strangers get."),
            );
            for f in found
                .iter_mut()
                .filter(|f| matches!(f.code.as_str(), "PR101" | "PR102"))
                .filter(|f| f.service.as_deref() == Some(at))
            {
                f.severity = Severity::Info;
                f.message
                    .push_str(" (expected: the probe's address is trusted)");
            }
        }
        let Some(code) = test.reply.as_ref().map(|r| r.code) else {
            continue;
        };
        let real = class(code);
        let model = mine.result;
        if matches!(model, Verdict::Depends | Verdict::Unavailable) {
            continue;
        }
        let code_differs = real != Verdict::Accept && mine.code.is_some_and(|c| c != code);
        if real == model && !code_differs {
            continue;
        }
        let changed = newest_file(ctx, &mine)
            .map(|(f, when)| format!("{} was changed at {when}; ", f.display()))
            .unwrap_or_default();
        found.push(
            Finding::new(
                "PR160",
                mta,
                format!(
                    "{at}: {changed}the running server still answers `{}` for MAIL FROM:<{}> RCPT TO:<{}> from {client}, the configuration on disk answers `{}` ({}): reload {}",
                    test.reply_line,
                    test.mail_from,
                    test.rcpt_to,
                    mine.reply_line(),
                    mine.service,
                    if mta == crate::finding::Mta::Exim { "Exim" } else { "Postfix" }
                ),
            )
            .service(at)
            .help("The daemon reads its configuration when it starts: `postfix reload` (Postfix), restart or SIGHUP the daemon (Exim). If a reload does not change the answer, the probe reached another server or listener than the one configured here."),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::service_port;

    #[test]
    fn service_names_to_ports() {
        assert_eq!(service_port("smtp"), Some(25));
        assert_eq!(service_port("127.0.0.1:10025"), Some(10025));
        assert_eq!(service_port("submission"), Some(587));
        assert_eq!(service_port("smtps/2465"), Some(2465));
        assert_eq!(service_port("submissions"), Some(465));
        assert_eq!(service_port("smtpd"), Some(25));
    }
}
