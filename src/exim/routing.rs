//! Which router `verify = recipient` reaches for a recipient domain, and whether its answer
//! needs DNS.
//!
//! Recipient verification routes the address as delivery would (Exim specification, chapter
//! 44 "Access control lists", section "Address verification"; chapter 3 "How Exim receives
//! and delivers mail", section "Router preconditions": `verify_recipient`, then `domains`).
//! A dnslookup router looks the domain up in the DNS (MX, then A/AAAA): a domain with neither
//! fails routing and `require verify = recipient` answers `550 Unrouteable address` (checked
//! with exim -bh 4.96 under a private resolver). A domain that reaches an accept, redirect or
//! manualroute router first is routed without DNS.

use super::lists::{Matcher, M};
use super::model::{Config, Driver, ListKind};

/// Why verifying a recipient in `domain` depends on DNS, when it does: the first router
/// whose preconditions the domain passes is a dnslookup router. M::Yes when the domain is
/// routed without DNS (an address that exists is modelled as routable), M::Unknown with the
/// reason when the answer is DNS's or a precondition cannot be decided.
pub fn verify_recipient(m: &Matcher, cfg: &Config, domain: &str) -> M {
    route(m, cfg, domain, "recipient", "550 Unrouteable address")
}

/// `verify = sender` routes the sender's address the same way (routers with
/// `verify_sender = false` skipped); a failure answers `550 Sender verify failed`.
pub fn verify_sender(m: &Matcher, cfg: &Config, domain: &str) -> M {
    route(m, cfg, domain, "sender", "550 Sender verify failed")
}

fn route(m: &Matcher, cfg: &Config, domain: &str, what: &str, reply: &str) -> M {
    for r in &cfg.routers {
        if skipped_for_verify(r, what) {
            continue;
        }
        match r.opt("domains") {
            None => {}
            Some(list) => match m.list(ListKind::Domain, list, domain, 0) {
                M::Yes => {}
                M::No => continue,
                // A file Exim cannot open kills the session here as well.
                M::Fatal(log) => return M::Fatal(log),
                M::Unknown(why) => {
                    return M::Unknown(format!(
                        "{what} verification of {domain} (router {}: {why})",
                        r.name
                    ))
                }
            },
        }
        return match r.opt("driver").map(str::trim) {
            Some("dnslookup") => M::Unknown(format!(
                "DNS routing of the {what} domain {domain} (dnslookup router {}: `{reply}` when the domain has no MX or address record)",
                r.name
            )),
            _ => M::Yes,
        };
    }
    if cfg.routers.is_empty() {
        // A configuration without routers (a fragment): nothing to model.
        return M::Yes;
    }
    // No router takes the domain: routing fails, `Unrouteable address`.
    M::No
}

/// `verify = false` / `no_verify` / `no_verify_recipient` (`no_verify_sender`): the router is
/// not used when verifying recipients (senders) (spec chapter 15 "Generic options for
/// routers").
fn skipped_for_verify(r: &Driver, what: &str) -> bool {
    ["verify".to_string(), format!("verify_{what}")]
        .iter()
        .any(|o| {
            r.opt(o)
                .is_some_and(|v| matches!(v.trim(), "false" | "no" | "0"))
        })
}
