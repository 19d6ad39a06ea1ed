//! PF113: `-o mydestination=`, `-o relay_domains=`, `-o virtual_alias_domains=` or
//! `-o virtual_mailbox_domains=` on an smtpd listener. smtpd does not decide the address
//! class itself: permit_auth_destination / reject_unauth_destination test the
//! RESOLVE_CLASS_* flags that the trivial-rewrite service returns (src/smtpd/smtpd_check.c
//! and smtpd_resolve.c of v3.7.11), and trivial-rewrite reads these parameters from main.cf
//! or its own master.cf entry (src/trivial-rewrite/resolve.c). The override therefore
//! changes no relay decision of that listener (verified with Postfix 3.7.11: the listener
//! with `-o relay_domains=example.net` answers `454 4.7.1 ... Relay access denied`).

use super::model::Model;
use crate::finding::{Finding, Mta};

/// The address-class parameters trivial-rewrite reads (resolve.c: resolve_local(),
/// virt_alias_doms, virt_mailbox_doms, relay_domains).
const CLASS_PARAMS: &[&str] = &[
    "mydestination",
    "relay_domains",
    "virtual_alias_domains",
    "virtual_mailbox_domains",
];

pub fn run(m: &Model, f: &mut Vec<Finding>) {
    let Some(master) = &m.master else { return };
    for si in m.smtpd_listeners() {
        let s = &m.services()[si];
        for o in s
            .overrides
            .iter()
            .filter(|o| CLASS_PARAMS.contains(&o.name.as_str()))
        {
            let decided = match super::policy::rewrite_scope(m, si) {
                Some(r) => format!("the {} service's settings", m.services()[r].id()),
                None => "main.cf".to_string(),
            };
            f.push(
                Finding::new(
                    "PF113",
                    Mta::Postfix,
                    format!(
                        "`-o {}=...` on smtpd listener {} has no effect on its relay decisions: smtpd asks the trivial-rewrite service for the recipient's address class, and that service uses {decided}, so permit_auth_destination and reject_unauth_destination see the domains of main.cf",
                        o.name,
                        s.id()
                    ),
                )
                .service(s.id())
                .at(master.source.location(o.span.start, o.span.end))
                .help(format!(
                    "Set {} in main.cf, or give this listener its own recipient check (-o smtpd_recipient_restrictions=... check_recipient_access type:table ...).",
                    o.name
                )),
            );
        }
    }
}
