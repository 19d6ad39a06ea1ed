//! `relaydoctor dns`: what DNS says about the domains this server accepts, the blocklists it
//! queries and its own addresses (issue #17). Three checks, each a module:
//! mx.rs (category mx-misrouted), blocklist.rs (risky-dnsbl, live), rdns.rs (reverse-dns).
//!
//! The names come from the configuration models (sources/), the answers from a real resolver
//! (resolve.rs). A temporary DNS failure is never a problem of the domain: it becomes a
//! "could not check" finding (info) and counts as unchecked, so that a run where nothing
//! could be checked is UNKNOWN to Nagios rather than OK.

pub mod addrs;
pub mod blocklist;
pub mod mx;
pub mod rdns;
pub mod resolve;
pub mod sources;

use std::net::IpAddr;
use std::path::PathBuf;

use crate::context::Context;
use crate::finding::Finding;
use crate::outcome::Failure;
use crate::report::Report;

pub use resolve::ResolverSpec;
pub use sources::Origin;

/// `dns`, resolved (src/args.rs).
pub struct Settings {
    pub ctx: Context,
    pub paths: Vec<PathBuf>,
    /// `--server-ip`; empty: the live host's global addresses and the listeners' addresses.
    pub server_ips: Vec<IpAddr>,
    pub resolver: ResolverSpec,
    /// `--domain`: checked besides the configuration's domains.
    pub domains: Vec<String>,
    /// Plesk's mail domains from the psa database.
    pub plesk: PleskDomains,
}

/// Whether to read the domains with mail service from Plesk's psa database.
pub enum PleskDomains {
    Off,
    /// A live Plesk server (its /etc/psa exists): read them, and say so when it fails.
    Auto(crate::plesk::DbSettings),
    /// `--plesk`: a failure to read them is an error.
    Required(crate::plesk::DbSettings),
}

/// How many checks got an answer and how many met a temporary failure.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub checked: usize,
    pub unchecked: usize,
}

impl Tally {
    pub fn checked() -> Tally {
        Tally {
            checked: 1,
            unchecked: 0,
        }
    }
    pub fn unchecked() -> Tally {
        Tally {
            checked: 0,
            unchecked: 1,
        }
    }
    fn add(&mut self, o: Tally) {
        self.checked += o.checked;
        self.unchecked += o.unchecked;
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Audit {
    pub report: Report,
    pub tally: Tally,
    /// The addresses taken as this server's.
    pub server_ips: Vec<IpAddr>,
    /// Things to say on stderr (nothing to check, where the addresses came from).
    pub notes: Vec<String>,
    /// Strings never to print (the psa database password).
    pub secrets: Vec<String>,
}

/// Anything a finding can point at through its configuration origin.
pub trait Origined {
    fn origin(&self) -> &Origin;
}

impl Origined for Origin {
    fn origin(&self) -> &Origin {
        self
    }
}

impl Origined for sources::Domain {
    fn origin(&self) -> &Origin {
        &self.origin
    }
}

impl Origined for sources::Zone {
    fn origin(&self) -> &Origin {
        &self.origin
    }
}

impl Origined for sources::Helo {
    fn origin(&self) -> &Origin {
        &self.origin
    }
}

/// A finding at the configuration line that lists the name.
pub fn finding(
    code: &str,
    at: &impl Origined,
    message: String,
    help: impl Into<String>,
) -> Finding {
    let o = at.origin();
    let f = Finding::new(code, o.mta, message).help(help);
    match &o.location {
        Some(l) => f.at(l.clone()),
        None => f,
    }
}

pub fn run(s: &Settings) -> Result<Audit, Failure> {
    let mut src = sources::collect(&s.ctx, &s.paths).map_err(Failure::new)?;
    for d in &s.domains {
        match sources::public_name(d) {
            Some(n) => src.add_domain(&n, crate::finding::Mta::Postfix, "--domain"),
            None => {
                return Err(Failure::new(format!(
                    "--domain {d}: not a public domain name"
                )))
            }
        }
    }
    let mut notes = Vec::new();
    let secrets = plesk_domains(&s.plesk, &mut src, &mut notes)?;
    src.dedup();
    let server_ips = if s.server_ips.is_empty() {
        let mut v = addrs::live();
        v.extend(src.listen.iter().copied().filter(|ip| addrs::global(*ip)));
        v.sort();
        v.dedup();
        if v.is_empty() {
            return Err(Failure::new(
                "this host has no global address (behind NAT?): pass the public address(es) mail arrives at with --server-ip IP",
            ));
        }
        notes.push(format!(
            "this server's addresses (from its interfaces and listeners): {}",
            v.iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        v
    } else {
        s.server_ips.clone()
    };
    if src.domains.is_empty() && src.zones.is_empty() {
        notes.push("no domain or blocklist found in the configuration; checking the reverse DNS only (add domains with --domain)".into());
    }
    let dns = resolve::Dns::new(&s.resolver).map_err(Failure::new)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the DNS client: {e}")))?;
    let (findings, tally) = rt.block_on(check_all(&dns, &src, &server_ips));
    let mut report = Report {
        findings,
        files: s.ctx.files_read(),
    };
    report.sort();
    Ok(Audit {
        report,
        tally,
        server_ips,
        notes,
        secrets,
    })
}

/// Adds Plesk's mail domains; returns the secrets of the database connection.
fn plesk_domains(
    mode: &PleskDomains,
    src: &mut sources::Sources,
    notes: &mut Vec<String>,
) -> Result<Vec<String>, Failure> {
    let (db, required) = match mode {
        PleskDomains::Off => return Ok(Vec::new()),
        PleskDomains::Auto(db) => (db, false),
        PleskDomains::Required(db) => (db, true),
    };
    match crate::plesk::domains::mail_domains(db) {
        Ok(m) => {
            notes.extend(m.warnings.iter().map(|w| format!("warning: {w}")));
            notes.push(format!(
                "{} domains with mail service from Plesk's psa database (credentials from {})",
                m.names.len(),
                m.source
            ));
            for n in &m.names {
                if let Some(n) = sources::public_name(n) {
                    src.add_domain(&n, crate::finding::Mta::Plesk, "Plesk mail domains");
                }
            }
            Ok(m.secrets)
        }
        Err(e) if required => Err(Failure::new(format!(
            "--plesk: cannot read Plesk's mail domains: {}",
            e.message
        ))
        .secrets(e.secrets)),
        Err(e) => {
            notes.push(format!(
                "this looks like a Plesk server, but its psa database could not be read, so Plesk's domains are not checked (pass --plesk to make this an error): {}",
                e.message
            ));
            Ok(e.secrets)
        }
    }
}

async fn check_all(
    dns: &resolve::Dns,
    src: &sources::Sources,
    me: &[IpAddr],
) -> (Vec<Finding>, Tally) {
    use futures_util::future::join_all;
    let (mx, bl, rd) = tokio::join!(
        join_all(src.domains.iter().map(|d| mx::check(dns, d, me))),
        join_all(src.zones.iter().map(|z| blocklist::check(dns, z))),
        join_all(me.iter().map(|ip| rdns::check(dns, *ip, &src.helos))),
    );
    let mut findings = Vec::new();
    let mut tally = Tally::default();
    for (f, t) in mx.into_iter().chain(bl).chain(rd) {
        findings.extend(f);
        tally.add(t);
    }
    (findings, tally)
}
