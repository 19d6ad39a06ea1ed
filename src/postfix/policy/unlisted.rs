//! reject_unlisted_recipient / reject_unlisted_sender and the implicit check that
//! smtpd_reject_unlisted_recipient = yes (the default) adds after the recipient lists
//! (smtpd_check.c check_rcpt_maps() and smtpd_check_rcpt()):
//!
//! - an address found in recipient_canonical_maps, canonical_maps or virtual_alias_maps
//!   (sender_canonical_maps too for a sender) passes;
//! - otherwise the address class of its domain decides (trivial-rewrite resolve.c, in this
//!   order): mydestination -> local_recipient_maps (postmaster, MAILER-DAEMON and the
//!   double-bounce sender are exempt), virtual_alias_domains -> unknown (nothing else can
//!   match), virtual_mailbox_domains -> virtual_mailbox_maps, relay_domains ->
//!   relay_recipient_maps; an empty map list means "accept any user", other domains pass.
//!
//! A refusal is `<addr>: Recipient address rejected: User unknown in local recipient
//! table` (show_user_unknown_table_name = yes) with the class's reject code and 5.1.1
//! (5.1.0 for a sender). Tables relaydoctor cannot read make the answer `depends`.

use super::session::Unknown;
use super::{list_items, Eval, Step};
use crate::postfix::maps::Opened;
use crate::relay::RecipientClass;

/// The address class of a domain (the part of trivial-rewrite's answer smtpd uses here).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AddrClass {
    Local,
    Alias,
    Virtual,
    Relay,
    Default,
}

impl Eval<'_> {
    pub(super) fn unlisted_recipient(&mut self) -> Step {
        if self.client.representative || self.rcpt_checked {
            return Step::NoMatch;
        }
        self.rcpt_checked = true;
        let a = self.rcpt_addr.clone();
        self.rcpt_maps(&a, false)
    }

    pub(super) fn unlisted_sender(&mut self) -> Step {
        match self.client.sender.clone().filter(|s| !s.is_empty()) {
            Some(s) if !self.client.representative => self.rcpt_maps(&s, true),
            _ => Step::NoMatch,
        }
    }

    fn rcpt_maps(&mut self, addr: &str, sender: bool) -> Step {
        let addr = addr
            .trim()
            .trim_matches(|c| c == '<' || c == '>')
            .to_ascii_lowercase();
        let Some((local, domain)) = addr
            .rsplit_once('@')
            .map(|(l, d)| (l.to_string(), d.to_string()))
        else {
            return Step::NoMatch;
        };
        let class = self.addr_class(&domain, sender);
        let is_local = class == AddrClass::Local;
        let mut rewrite = vec![
            "recipient_canonical_maps",
            "canonical_maps",
            "virtual_alias_maps",
        ];
        if sender {
            rewrite.insert(0, "sender_canonical_maps");
        }
        let mut unread: Vec<String> = Vec::new();
        for p in rewrite {
            match self
                .find_value(p, &addr, &local, &domain, is_local)
                .map(|v| v.is_some())
            {
                Ok(true) => return Step::NoMatch,
                Ok(false) => {}
                Err(why) => unread.push(why),
            }
        }
        let (param, table, code_param) = match class {
            AddrClass::Local => {
                let exempt = ["postmaster", "mailer-daemon"].iter().any(|e| *e == local)
                    || local
                        == self
                            .scope
                            .value("double_bounce_sender")
                            .to_ascii_lowercase();
                if exempt {
                    return Step::NoMatch;
                }
                (
                    "local_recipient_maps",
                    "local recipient table",
                    "local_recipient_reject_code",
                )
            }
            AddrClass::Alias => (
                "",
                "virtual alias table",
                "unknown_virtual_alias_reject_code",
            ),
            AddrClass::Virtual => (
                "virtual_mailbox_maps",
                "virtual mailbox table",
                "unknown_virtual_mailbox_reject_code",
            ),
            AddrClass::Relay => (
                "relay_recipient_maps",
                "relay recipient table",
                "unknown_relay_recipient_reject_code",
            ),
            AddrClass::Default => return Step::NoMatch,
        };
        if !param.is_empty() {
            if self.scope.value(param).trim().is_empty() {
                return Step::NoMatch;
            }
            match self
                .find_value(param, &addr, &local, &domain, is_local)
                .map(|v| v.is_some())
            {
                Ok(true) => return Step::NoMatch,
                Ok(false) => {}
                Err(why) => {
                    // Listed or not: either answer is possible.
                    self.unknown(Unknown::Refuse, why.clone());
                    return self.unknown(Unknown::Permit, why);
                }
            }
        }
        for why in unread {
            // An unreadable rewrite map could list the address and let it pass.
            self.unknown(Unknown::Permit, why);
        }
        let (class_name, dsn) = if sender {
            ("Sender address", "5.1.0")
        } else {
            ("Recipient address", "5.1.1")
        };
        let shown = if self
            .scope
            .value("show_user_unknown_table_name")
            .eq_ignore_ascii_case("no")
        {
            String::new()
        } else {
            format!(" in {table}")
        };
        super::coded(
            self.code(code_param, 550),
            dsn,
            format!("<{addr}>: {class_name} rejected: User unknown{shown}"),
        )
    }

    /// The address class of `domain`; for the recipient it refines the class the caller
    /// gave (which already accounts for tables that cannot be read).
    fn addr_class(&self, domain: &str, sender: bool) -> AddrClass {
        let rc = if sender {
            super::classify(self.model, self.si, domain)
        } else {
            self.rcpt
        };
        match rc {
            RecipientClass::External => AddrClass::Default,
            RecipientClass::Relay => AddrClass::Relay,
            RecipientClass::Local => {
                let mut ignored = Vec::new();
                let listed = |name: &str, ignored: &mut Vec<String>| {
                    super::match_domain_list(self.model, &self.scope, name, domain, ignored)
                        == Some(true)
                };
                if listed("mydestination", &mut ignored) {
                    AddrClass::Local
                } else if listed("virtual_alias_domains", &mut ignored) {
                    AddrClass::Alias
                } else if listed("virtual_mailbox_domains", &mut ignored) {
                    AddrClass::Virtual
                } else {
                    // Local only through a table that cannot be read: the lookup that
                    // follows could not be evaluated either.
                    AddrClass::Local
                }
            }
        }
    }

    /// mail_addr_find() in the tables of parameter `param`: the value found for the
    /// address, the local part (local domains only), then `@domain`. Err names a table that
    /// could not be read (when no readable table lists the address).
    pub(super) fn find_value(
        &self,
        param: &str,
        addr: &str,
        local: &str,
        domain: &str,
        is_local: bool,
    ) -> Result<Option<String>, String> {
        let mut unread = None;
        let at_domain = format!("@{domain}");
        let mut keys = vec![addr];
        if is_local {
            keys.push(local);
        }
        keys.push(&at_domain);
        for spec in list_items(&self.scope.value(param)) {
            if matches!(
                spec.as_str(),
                "unix:passwd.byname" | "proxy:unix:passwd.byname"
            ) {
                match self.passwd_has(local) {
                    Some(true) if is_local => return Ok(Some(local.to_string())),
                    Some(_) => {}
                    None => {
                        unread.get_or_insert(format!(
                            "{param}: whether {local} is a system account ({spec}; /etc/passwd not readable)"
                        ));
                    }
                }
                continue;
            }
            match self.model.table(&spec) {
                Some(Opened::Table(t)) => {
                    if let Some(e) = keys.iter().find_map(|k| t.get(k)) {
                        return Ok(Some(e.value.clone()));
                    }
                }
                Some(Opened::Depends(why) | Opened::Unavailable(why)) => {
                    unread.get_or_insert(format!("{param}: whether {addr} is listed in {why}"));
                }
                None => {
                    unread.get_or_insert(format!(
                        "{param}: whether {addr} is listed in {spec} (not read)"
                    ));
                }
            }
        }
        match unread {
            Some(why) => Err(why),
            None => Ok(None),
        }
    }

    /// reject_*_sender_login_mismatch (smtpd_check.c reject_auth_sender_login_mismatch()
    /// and reject_unauth_sender_login_mismatch()): the owners of the sender address are
    /// looked up in smtpd_sender_login_maps; a logged-in client must be one of them
    /// (`authenticated`: also when the address has no owner), a client that is not logged
    /// in must not send as an owned address. Ignored where SASL is off.
    pub(super) fn login_mismatch(&mut self, r: &str) -> Step {
        let Some(sender) = self.client.sender.clone().filter(|s| !s.is_empty()) else {
            return Step::NoMatch;
        };
        // An empty smtpd_sender_login_maps still exists for smtpd (maps_create() of no
        // tables): no address has an owner, so a logged-in client owns none (verified
        // with Postfix 3.7: the `authenticated` forms refuse every logged-in client).
        if !self.sasl_enabled || self.client.representative {
            return Step::NoMatch;
        }
        let addr = sender
            .trim_matches(|c| c == '<' || c == '>')
            .to_ascii_lowercase();
        let Some((local, domain)) = addr.rsplit_once('@') else {
            return Step::NoMatch;
        };
        let is_local = self.addr_class(domain, true) == AddrClass::Local;
        let owners =
            match self.find_value("smtpd_sender_login_maps", &addr, local, domain, is_local) {
                Ok(o) => o,
                Err(why) => {
                    self.unknown(Unknown::Refuse, why.clone());
                    return self.unknown(Unknown::Permit, why);
                }
            };
        let login = self.client.authenticated;
        let (check_auth, forbid_unknown, check_unauth) = match r {
            "reject_authenticated_sender_login_mismatch" => (true, true, false),
            "reject_known_sender_login_mismatch" => (true, false, true),
            "reject_unauthenticated_sender_login_mismatch" => (false, false, true),
            _ => (true, true, true),
        };
        if login && check_auth {
            let user = self.client.login.clone().unwrap_or_default();
            let owned = match &owners {
                Some(o) => o
                    .split([',', ' ', '\t'])
                    .any(|n| !n.is_empty() && n.eq_ignore_ascii_case(&user)),
                None => !forbid_unknown,
            };
            if !owned {
                return super::coded(
                    553,
                    "5.7.1",
                    format!("<{sender}>: Sender address rejected: not owned by user {user}"),
                );
            }
        } else if !login && check_unauth && owners.is_some() {
            return super::coded(
                553,
                "5.7.1",
                format!("<{sender}>: Sender address rejected: not logged in"),
            );
        }
        Step::NoMatch
    }

    /// unix:passwd.byname: whether `user` has an account in the system's /etc/passwd (of
    /// the --root snapshot: the configuration directory's path ends in config_directory).
    fn passwd_has(&self, user: &str) -> Option<bool> {
        let conf = self.scope.value("config_directory");
        let dir = self.model.dir.to_string_lossy().to_string();
        let root = dir.strip_suffix(conf.trim_end_matches('/'))?;
        let text = std::fs::read_to_string(format!("{root}/etc/passwd")).ok()?;
        Some(
            text.lines()
                .any(|l| l.split(':').next() == Some(user) && !user.is_empty()),
        )
    }
}
