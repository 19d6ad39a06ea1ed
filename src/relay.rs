//! The relay question asked the same way for every MTA: for a listening service, a class of
//! client and a class of recipient, what does the server answer, and which lines decided?

use serde::Serialize;
use std::path::PathBuf;

use crate::finding::Mta;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ClientClass {
    /// Outside every trusted network, not authenticated.
    Stranger,
    /// Inside the networks the server trusts to relay (mynetworks, relay_from_hosts, RELAYCLIENT).
    Trusted,
    /// Authenticated with SMTP AUTH on this listener.
    Authenticated,
}

impl ClientClass {
    pub const ALL: [ClientClass; 3] = [
        ClientClass::Stranger,
        ClientClass::Trusted,
        ClientClass::Authenticated,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ClientClass::Stranger => "stranger",
            ClientClass::Trusted => "trusted",
            ClientClass::Authenticated => "authenticated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum RecipientClass {
    /// A domain this server delivers to itself (final destination).
    Local,
    /// A domain this server relays for (backup MX, relay_domains, relay_to_domains).
    Relay,
    /// Any other domain.
    External,
}

impl RecipientClass {
    pub const ALL: [RecipientClass; 3] = [
        RecipientClass::Local,
        RecipientClass::Relay,
        RecipientClass::External,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientClass::Local => "local",
            RecipientClass::Relay => "relay",
            RecipientClass::External => "external",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accept,
    Reject,
    Defer,
    /// The server would not answer at all (e.g. Postfix's startup safety check fails).
    Unavailable,
    /// The static model cannot decide: a DNS lookup, an unreadable map, a policy service.
    Depends,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Reject => "reject",
            Verdict::Defer => "defer",
            Verdict::Unavailable => "unavailable",
            Verdict::Depends => "depends",
        }
    }
}

/// One step of the trace: a configuration entry that was evaluated and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceStep {
    pub file: PathBuf,
    /// 0 when no one line decided (a built-in default, a list none of whose lines matched):
    /// `null` in JSON.
    #[serde(serialize_with = "line_or_null")]
    pub line: usize,
    pub entry: String,
    /// What the entry did: "permit", "reject", "defer", "no match", "depends", ...
    pub effect: String,
}

fn line_or_null<S: serde::Serializer>(line: &usize, s: S) -> Result<S::Ok, S::Error> {
    match *line {
        0 => s.serialize_none(),
        l => s.serialize_u64(l as u64),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub mta: Mta,
    pub service: String,
    pub result: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enhanced: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub depends_on: Vec<String>,
    pub trace: Vec<TraceStep>,
}

impl Decision {
    pub fn new(mta: Mta, service: impl Into<String>, result: Verdict) -> Decision {
        Decision {
            mta,
            service: service.into(),
            result,
            code: None,
            enhanced: None,
            text: None,
            depends_on: Vec::new(),
            trace: Vec::new(),
        }
    }

    /// The SMTP reply as a client would see it, e.g. `554 5.7.1 <u@x>: Relay access denied`.
    pub fn reply_line(&self) -> String {
        let mut s = String::new();
        if let Some(c) = self.code {
            s.push_str(&c.to_string());
        }
        if let Some(e) = &self.enhanced {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(e);
        }
        if let Some(t) = &self.text {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(t);
        }
        s
    }
}

/// A concrete question for `simulate`: the client and envelope as the user gave them.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub client_ip: String,
    pub client_name: Option<String>,
    pub sasl_user: Option<String>,
    pub helo: Option<String>,
    pub sender: Option<String>,
    pub rcpt: String,
    pub service: Option<String>,
    /// Whether the session is TLS-encrypted (`--tls yes|no`); None: what the listener's
    /// security level makes likely (encrypt or wrapper mode: yes; otherwise no).
    pub tls: Option<bool>,
}

impl Query {
    /// Domain part of the recipient, lowercased (empty for a bare local part).
    pub fn rcpt_domain(&self) -> String {
        domain_of(&self.rcpt)
    }
}

/// Domain part of an address (`<u@Example.COM>` -> `example.com`).
pub fn domain_of(addr: &str) -> String {
    let a = addr.trim().trim_start_matches('<').trim_end_matches('>');
    match a.rsplit_once('@') {
        Some((_, d)) => d.trim_end_matches('.').to_ascii_lowercase(),
        None => String::new(),
    }
}
