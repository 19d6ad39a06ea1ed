//! The configuration Exim would run, every item with the file and line it came from.

use super::reader::{Macro, Origin};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Main,
    Acl,
    Authenticators,
    LocalScan,
    Retry,
    Rewrite,
    Routers,
    Transports,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Domain,
    Host,
    Address,
    LocalPart,
}

#[derive(Debug, Clone)]
pub struct OptSetting {
    pub name: String,
    pub value: String,
    pub hidden: bool,
    pub origin: Origin,
    pub macros_used: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NamedList {
    pub kind: ListKind,
    pub name: String,
    pub value: String,
    pub origin: Origin,
    pub macros_used: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Accept,
    Defer,
    Deny,
    Discard,
    Drop,
    Require,
    Warn,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Accept => "accept",
            Verb::Defer => "defer",
            Verb::Deny => "deny",
            Verb::Discard => "discard",
            Verb::Drop => "drop",
            Verb::Require => "require",
            Verb::Warn => "warn",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cond {
    pub negated: bool,
    pub name: String,
    pub value: Option<String>,
    pub origin: Origin,
    pub macros_used: Vec<String>,
}

impl Cond {
    pub fn value(&self) -> &str {
        self.value.as_deref().unwrap_or("")
    }
    pub fn render(&self) -> String {
        match &self.value {
            Some(v) => format!(
                "{}{} = {}",
                if self.negated { "!" } else { "" },
                self.name,
                v
            ),
            None => format!("{}{}", if self.negated { "!" } else { "" }, self.name),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Stmt {
    pub verb: Verb,
    pub origin: Origin,
    pub conds: Vec<Cond>,
}

impl Stmt {
    pub fn render(&self) -> String {
        let mut s = self.verb.as_str().to_string();
        for c in &self.conds {
            s.push(' ');
            s.push_str(&c.render());
        }
        s
    }
    pub fn cond(&self, name: &str) -> Option<&Cond> {
        self.conds.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Acl {
    pub name: String,
    pub origin: Origin,
    pub stmts: Vec<Stmt>,
}

#[derive(Debug, Clone)]
pub struct Driver {
    pub name: String,
    pub origin: Origin,
    pub options: Vec<OptSetting>,
}

impl Driver {
    pub fn opt(&self, name: &str) -> Option<&str> {
        self.setting(name).map(|o| o.value.as_str())
    }
    pub fn setting(&self, name: &str) -> Option<&OptSetting> {
        self.options.iter().rev().find(|o| o.name == name)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub options: Vec<OptSetting>,
    pub lists: Vec<NamedList>,
    pub acls: Vec<Acl>,
    pub routers: Vec<Driver>,
    pub transports: Vec<Driver>,
    pub authenticators: Vec<Driver>,
    pub sections: Vec<(Section, Origin)>,
    pub macros: Vec<Macro>,
    /// Compiled list patterns and /etc/hosts, computed once per configuration.
    pub list_cache: super::lists::ListCache,
    /// cPanel template markers (`@ACL@`, `%BEGINACL%`): where buildeximconf inserts the
    /// site's blocks; empty for a configuration Exim runs (src/exim/cpanel.rs).
    pub template_markers: Vec<String>,
    /// Absolute paths in the configuration name files of the server being checked (a
    /// --root snapshot, or the live system's own configuration under /etc), so a file that
    /// is not there is missing on that server; false for a copied configuration given as
    /// PATH, whose files are elsewhere (the same rule as the Postfix side's PF108).
    pub own_files: bool,
}

impl Config {
    /// The effective setting of a main option (the last one wins).
    pub fn option(&self, name: &str) -> Option<&OptSetting> {
        self.options.iter().rev().find(|o| o.name == name)
    }
    pub fn acl(&self, name: &str) -> Option<&Acl> {
        self.acls.iter().find(|a| a.name == name)
    }
    pub fn list(&self, name: &str) -> Option<&NamedList> {
        self.lists.iter().find(|l| l.name == name)
    }
    pub fn macro_def(&self, name: &str) -> Option<&Macro> {
        self.macros.iter().find(|m| m.name == name)
    }
    /// "via macro X (defined at file:line)" for the macros a line used, for messages.
    pub fn via_macros(&self, used: &[String]) -> String {
        let parts: Vec<String> = used
            .iter()
            .filter_map(|n| self.macro_def(n))
            .filter(|m| !m.builtin)
            .map(|m| match &m.origin {
                Some(o) => format!("{} (defined at {})", m.name, o.describe()),
                None if m.command_line => format!("{} (--define)", m.name),
                None => m.name.to_string(),
            })
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(" via macro {}", parts.join(", "))
        }
    }
    /// Server authenticators: those with a server side (server_condition, or a driver that
    /// authenticates against an external service).
    pub fn server_authenticators(&self) -> Vec<&Driver> {
        self.authenticators
            .iter()
            .filter(|d| {
                d.options.iter().any(|o| o.name.starts_with("server_"))
                    || matches!(
                        d.opt("driver"),
                        Some("dovecot")
                            | Some("cyrus_sasl")
                            | Some("gsasl")
                            | Some("heimdal_gssapi")
                    )
            })
            .collect()
    }
}
