//! `relaydoctor explain`: from the evidence a user has (a bounce, a mail-program error, mail-log
//! lines) to who refused, why, and what to check; with a configuration at hand, the simulated
//! decision for exactly that client and recipient, with the file:line that decides.
//!
//! Modes:
//! - TEXT arguments or `-` (standard input): every event is explained on its own.
//! - `--log FILE` (repeatable, plain or gzip, `-` for standard input, `--rotated` adds FILE.1,
//!   FILE.2.gz, ... oldest first): the log is streamed in bounded memory and events are
//!   grouped by cause, with counts, first/last time, top clients and recipients.
//!
//! Lines that are not understood are counted and skipped, never fatal. Exit codes: 0 no
//! refusal found, 1 refusals (evidence) found, 2 relaydoctor could not do its job (unreadable
//! log, bad arguments).

pub mod aggregate;
pub mod bounce;
pub mod event;
pub mod exim;
pub mod header;
pub mod postfix;
pub mod qmail;
pub mod reader;
pub mod render;
pub mod stamp;

use std::path::{Path, PathBuf};

use crate::context::{Context, Root};
use crate::finding::Finding;
use crate::outcome::{Failure, Outcome};
use crate::relay::{Decision, Query};

use event::{Event, Origin, Side};
use postfix::Seen;
use stamp::{Stamp, YearRule};

/// `explain`, as resolved by the command layer (src/args.rs).
pub struct Settings {
    /// The configuration to simulate against (validated: a bad --root or version never
    /// falls back to the live system).
    pub ctx: Context,
    /// `--root` as given, for describing what was simulated.
    pub root: Option<PathBuf>,
    /// PATH and TEXT arguments as given.
    pub args: Vec<String>,
    pub log: Vec<PathBuf>,
    pub rotated: bool,
    pub years: YearRule,
    pub since: Option<Stamp>,
    pub until: Option<Stamp>,
    pub top: usize,
    pub simulate: bool,
    pub json: bool,
    pub color: bool,
}

/// Per-event mode keeps at most this many events (the rest are counted).
const MAX_EVENTS: usize = 1000;
/// At most this many simulations per run.
const MAX_SIMULATIONS: usize = 50;

/// Counters over all input.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Stats {
    pub inputs: Vec<String>,
    pub lines: u64,
    /// Lines the parsers looked at (all lines in per-event mode; pre-filter hits for --log).
    pub examined: u64,
    pub events: u64,
    /// Lines of a known kind that could not be parsed.
    pub bad: u64,
    /// Examined lines no parser recognised.
    pub unknown: u64,
    /// Log lines (with a timestamp or program) that are not refusals: deliveries, connects.
    pub ignored: u64,
    /// Events outside --since/--until.
    pub filtered: u64,
    /// Events without a timestamp while --since/--until was given (kept).
    pub undated: u64,
    /// Events beyond the per-event limit (counted, not shown).
    pub dropped: u64,
    /// Exim refusal lines skipped because another input (mainlog vs rejectlog) had the same
    /// line: each refusal is counted once.
    pub duplicates: u64,
    /// Exim refusal lines read after the deduplication's memory was full (counted as read:
    /// with both logs past a million refusals, some may count twice).
    pub duplicates_unchecked: u64,
    /// Line numbers (input, line) of the first lines not understood, for the report.
    pub unknown_examples: Vec<(String, u64)>,
    /// Inputs that ended in a read error (corrupt or truncated gzip): the file, the byte
    /// offset and what was kept. The lines before the error are in the counts above.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_errors: Vec<String>,
}

/// Where events go: kept one by one, or grouped.
pub enum Sink {
    Events(Vec<Event>),
    Groups(aggregate::Aggregate),
}

/// Line dispatcher with the parsers' state.
pub struct Analyzer {
    pub years: YearRule,
    pub since: Option<Stamp>,
    pub until: Option<Stamp>,
    /// Accept free-text replies (pasted bounces): per-event mode only, a log's lines are
    /// attributed to their program.
    pub free_text: bool,
    pub postfix: postfix::Postfix,
    pub exim: exim::Exim,
    pub stats: Stats,
    pub sink: Sink,
    scratch: Vec<Event>,
    /// The input being read: whole-log events do not carry it (no copy per event), the
    /// group examples get it from here.
    input: String,
}

impl Analyzer {
    pub fn new(years: YearRule, free_text: bool, sink: Sink) -> Analyzer {
        Analyzer {
            years,
            since: None,
            until: None,
            free_text,
            postfix: postfix::Postfix::default(),
            exim: exim::Exim::default(),
            stats: Stats::default(),
            sink,
            scratch: Vec::new(),
            input: String::new(),
        }
    }

    /// One line (without its newline).
    pub fn feed(&mut self, line: &str, o: &Origin) {
        self.stats.examined += 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            return;
        }
        let h = header::split(line, &self.years);
        self.feed_header(&h, o);
    }

    /// One line already split into header and message (the log reader does that on its own
    /// thread); `h` must be what `header::split` makes of the line with `feed`'s trimming.
    pub fn feed_header(&mut self, h: &header::Header, o: &Origin) {
        // Whole-log summaries keep no per-event copies of the input name and time text.
        let o = &Origin {
            light: matches!(self.sink, Sink::Groups(_)),
            ..*o
        };
        if self.input != o.input {
            o.input.clone_into(&mut self.input);
        }
        let mut out = std::mem::take(&mut self.scratch);
        let seen = match h.program {
            Some(p) if postfix::is_postfix(p) => self.postfix.line(h, o, &mut out),
            Some(p) if p.starts_with("exim") => self.exim.line(h, o, &mut out),
            Some(p) if p.contains("qmail") || p.contains("vpopmail") || p == "chkuser" => {
                match qmail::line(h, o, &mut out) {
                    Seen::NotMine => qmail::transcript(h, o, &mut out),
                    s => s,
                }
            }
            _ => {
                let mut s = qmail::line(h, o, &mut out);
                if s == Seen::NotMine {
                    s = self.exim.line(h, o, &mut out);
                }
                if s == Seen::NotMine {
                    s = qmail::transcript(h, o, &mut out);
                }
                if s == Seen::NotMine && self.free_text {
                    s = bounce::line(h, o, &mut out);
                }
                s
            }
        };
        match seen {
            Seen::Understood => {}
            Seen::NotMine if h.program.is_some() || h.stamp.is_some() => self.stats.ignored += 1,
            Seen::Bad | Seen::NotMine => {
                if seen == Seen::Bad {
                    self.stats.bad += 1;
                } else {
                    self.stats.unknown += 1;
                }
                if self.stats.unknown_examples.len() < 10 {
                    self.stats
                        .unknown_examples
                        .push((o.input.to_string(), o.line));
                }
            }
        }
        for e in out.drain(..) {
            self.emit(e);
        }
        self.scratch = out;
    }

    fn emit(&mut self, e: Event) {
        if self.since.is_some() || self.until.is_some() {
            match e.stamp {
                Some(s) => {
                    let early = self.since.is_some_and(|b| s.cmp_to(&b).is_lt());
                    let late = self.until.is_some_and(|b| s.cmp_to(&b).is_ge());
                    if early || late {
                        self.stats.filtered += 1;
                        return;
                    }
                }
                None => self.stats.undated += 1,
            }
        }
        self.stats.events += 1;
        match &mut self.sink {
            Sink::Events(v) => {
                if v.len() < MAX_EVENTS {
                    v.push(e);
                } else {
                    self.stats.dropped += 1;
                }
            }
            Sink::Groups(g) => g.add(e, &self.input),
        }
    }

    /// End of all input: release events still waiting for their session's end.
    pub fn finish(&mut self) {
        let mut out = Vec::new();
        self.postfix.finish(&mut out);
        self.exim.finish(&mut out);
        self.stats.duplicates = self.exim.duplicates;
        self.stats.duplicates_unchecked = self.exim.unchecked;
        for e in out {
            self.emit(e);
        }
        if let Sink::Events(v) = &mut self.sink {
            v.sort_by(|a, b| a.input.cmp(&b.input).then(a.line.cmp(&b.line)));
        }
    }
}

/// What the configuration says about one event.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Simulation {
    /// Not asked (--no-simulate) or not meaningful for this event.
    Skipped { reason: String },
    /// No configuration could be read.
    Unavailable { reason: String },
    Done {
        query: QueryView,
        decisions: Vec<Decision>,
        /// The decision of the service that logged the event, when it can be told.
        #[serde(skip_serializing_if = "Option::is_none")]
        service: Option<String>,
        /// Whether the simulated reply is the logged one: false when no simulated decision
        /// (of the logged service, when known) gives the logged SMTP code. None: the log shows
        /// no code to compare.
        #[serde(skip_serializing_if = "Option::is_none")]
        matches_log: Option<bool>,
        /// The recipient's class for the logged service (Postfix), for `reclassify`.
        #[serde(skip)]
        rcpt_class: Option<crate::relay::RecipientClass>,
    },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryView {
    pub client_ip: String,
    /// The client is simulated as logged in (the log shows AUTH).
    pub authenticated: bool,
    /// The login name, when the log gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    pub rcpt: String,
}

/// The configuration side of the run: context, paths, findings (linted once).
pub struct Config {
    pub ctx: Context,
    pub paths: Vec<PathBuf>,
    /// What is simulated, as the output says it: the configuration PATHs given, the
    /// --root snapshot, or the live system.
    pub described: String,
    /// None: no configuration available (reason).
    pub findings: Result<Vec<Finding>, String>,
    pub simulations: usize,
}

/// The listening service a Postfix syslog name points at: `postfix/submission/smtpd` ->
/// `submission` (Debian's master.cf sets `syslog_name=postfix/$service_name`), `postfix/smtpd`
/// -> `smtp`.
pub fn service_hint(program: &str) -> Option<String> {
    let parts: Vec<&str> = program.split('/').collect();
    match parts.as_slice() {
        [_, "smtpd"] => Some("smtp".to_string()),
        [_, svc, "smtpd"] => Some((*svc).to_string()),
        _ => None,
    }
}

impl Config {
    pub fn simulate(&mut self, e: &Event) -> Simulation {
        if e.side == Side::RecipientServer {
            return Simulation::Skipped {
                reason: "the recipient's server refused; its configuration is not here".into(),
            };
        }
        if let Err(reason) = &self.findings {
            return Simulation::Unavailable {
                reason: reason.clone(),
            };
        }
        let (Some(ip), Some(rcpt)) = (&e.client_ip, &e.recipient) else {
            return Simulation::Skipped {
                reason: "the evidence names no client IP address and recipient to simulate".into(),
            };
        };
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Simulation::Skipped {
                reason: format!("client address {ip:?} is not an IP address"),
            };
        }
        if e.program
            .as_deref()
            .is_some_and(|p| p.ends_with("/postscreen"))
        {
            return Simulation::Skipped {
                reason: self.postscreen_reason(),
            };
        }
        if self.simulations >= MAX_SIMULATIONS {
            return Simulation::Skipped {
                reason: format!("only the first {MAX_SIMULATIONS} events are simulated"),
            };
        }
        self.simulations += 1;
        let authenticated = e.auth == event::Auth::Yes;
        let sasl_user = if authenticated {
            e.sasl_user.clone()
        } else {
            None
        };
        let q = Query {
            client_ip: ip.clone(),
            client_name: e.client_name.clone().filter(|n| n != "unknown"),
            // The model only asks whether the client logged in; a stand-in name when the
            // log does not give it (never shown: QueryView keeps the logged name or none).
            sasl_user: if authenticated {
                sasl_user
                    .clone()
                    .or_else(|| Some("(unknown user)".to_string()))
            } else {
                None
            },
            helo: e.helo.clone(),
            sender: e.sender.clone(),
            rcpt: rcpt.clone(),
            service: None,
            tls: None,
        };
        match crate::lint::simulate(&self.ctx, &self.paths, &q) {
            Ok(all) => {
                // Only the MTA that wrote the evidence decided it: an Exim log line is not
                // explained by the Postfix configuration that happens to be here too.
                let mta = source_mta(e.source);
                let decisions: Vec<_> = all
                    .iter()
                    .filter(|d| mta.is_none_or(|m| d.mta == m))
                    .cloned()
                    .collect();
                if decisions.is_empty() && !all.is_empty() {
                    let mut found: Vec<&str> = all.iter().map(|d| d.mta.as_str()).collect();
                    found.dedup();
                    return Simulation::Unavailable {
                        reason: format!(
                            "the evidence is {}'s, and only a {} configuration was found here",
                            e.source.label(),
                            found.join(" and ")
                        ),
                    };
                }
                let listeners = match e.source {
                    event::Source::Postfix => {
                        crate::lint::postfix_listeners(&self.ctx, &self.paths, rcpt)
                    }
                    _ => Vec::new(),
                };
                let service = logged_service(e, &decisions, &listeners);
                let rcpt_class = listeners
                    .iter()
                    .find(|l| service.as_ref() == Some(&l.service))
                    .map(|l| l.rcpt_class);
                let matches_log = e.code.filter(|_| !decisions.is_empty()).map(|code| {
                    decisions
                        .iter()
                        .filter(|d| service.as_ref().is_none_or(|s| &d.service == s))
                        .any(|d| d.code == Some(code))
                });
                Simulation::Done {
                    matches_log,
                    query: QueryView {
                        client_ip: q.client_ip,
                        authenticated,
                        sasl_user,
                        helo: q.helo,
                        sender: q.sender,
                        rcpt: q.rcpt,
                    },
                    decisions,
                    service,
                    rcpt_class,
                }
            }
            Err(reason) => Simulation::Unavailable { reason },
        }
    }

    /// Why a postscreen refusal is not simulated: postscreen decides before any smtpd
    /// listener (and its restriction lists) sees the client, from its own settings.
    fn postscreen_reason(&self) -> String {
        let action = crate::lint::postfix_param(&self.ctx, &self.paths, "postscreen_dnsbl_action");
        let mut why = "postscreen refused the client before any smtpd listener saw it: the \
                       decision comes from the postscreen_* settings (postscreen_access_list, \
                       postscreen_dnsbl_sites, postscreen_dnsbl_threshold, \
                       postscreen_dnsbl_action), not from the smtpd restrictions"
            .to_string();
        // postconf(5): `ignore` only logs the result; `enforce` and `drop` refuse.
        if let Some(a) = action.filter(|a| a.trim() == "ignore") {
            why.push_str(&format!(
                "; the configuration here has postscreen_dnsbl_action = {a}, which refuses \
                 nobody, so the log comes from a server (or an earlier configuration) that \
                 enforces it"
            ));
        }
        why
    }

    /// Findings that bear on an event's cause, for its MTA (review7 F2): a deprecation
    /// or what changes after an upgrade does not decide today's refusal; a misspelled
    /// restriction list (PF005) whose real name the simulated listener falls back to does.
    pub fn relevant(&self, e: &Event, sim: &Simulation) -> Vec<&Finding> {
        let Ok(all) = &self.findings else {
            return Vec::new();
        };
        let cats: &[&str] = match e.cause {
            event::Cause::RelayDenied => &[
                "auth-relay-denied",
                "relay-denied",
                "upgrade",
                "db-integrity",
                "db-settings",
                "stale-map",
            ],
            event::Cause::SenderVerify => &["risky-callout"],
            event::Cause::Blocklist => &["risky-dnsbl"],
            event::Cause::AuthFailed | event::Cause::AuthRequired => {
                &["auth-relay-denied", "plaintext-auth", "db-integrity"]
            }
            event::Cause::ServerConfig => &["syntax", "upgrade", "missing-file", "stale-map"],
            event::Cause::UnknownRecipient => &["mail-refused", "stale-map"],
            event::Cause::Microsoft | event::Cause::Other => &[],
        };
        // Not today's decision: a deprecation notice, or a change that comes with an upgrade.
        const LATER: &[&str] = &[
            "deprecated-feature",
            "upgrade-changes-relay",
            "compatibility-level-behind",
        ];
        let postscreen = e
            .program
            .as_deref()
            .is_some_and(|p| p.ends_with("/postscreen"));
        let mta = source_mta(e.source);
        all.iter()
            .filter(|f| {
                (cats.contains(&f.category.as_str())
                    && !(e.cause != event::Cause::ServerConfig && LATER.contains(&f.name.as_str())))
                    || misspelled_list_in_effect(f, e, sim)
            })
            .filter(|f| mta.is_none_or(|m| f.mta == m || f.mta == crate::finding::Mta::Plesk))
            // A postscreen refusal is decided by postscreen's settings, an smtpd one by the
            // restriction lists: a blocklist finding about the other one does not explain it.
            .filter(|f| {
                e.cause != event::Cause::Blocklist
                    || e.source != event::Source::Postfix
                    || f.message.contains("postscreen_") == postscreen
            })
            .collect()
    }
}

/// A PF005 "did you mean NAME?" where NAME is a restriction list that the logged listener
/// (any listener, when the log does not say) takes from its built-in default or main.cf:
/// the setting meant for it is ignored, so it is what decided.
fn misspelled_list_in_effect(f: &Finding, e: &Event, sim: &Simulation) -> bool {
    if f.code != "PF005" || !e.cause.is_relay_related() && e.cause != event::Cause::Other {
        return false;
    }
    let Some(name) = f
        .message
        .rsplit_once("did you mean ")
        .map(|(_, n)| n.trim_end_matches(['?', '.', ' ']))
        .filter(|n| n.starts_with("smtpd_") && n.ends_with("_restrictions"))
    else {
        return false;
    };
    let Simulation::Done {
        decisions, service, ..
    } = sim
    else {
        return false;
    };
    let prefix = format!("{name}:");
    decisions
        .iter()
        .filter(|d| service.as_ref().is_none_or(|s| &d.service == s))
        .flat_map(|d| &d.trace)
        .any(|t| {
            t.entry.starts_with(&prefix)
                && (t.line == 0 || t.file.file_name().is_some_and(|n| n == "main.cf"))
        })
}

/// The service whose decision the log shows. A Postfix line names its program as
/// `<syslog_name>/smtpd`: the listener with that syslog_name (every listener that does not
/// set one logs as `postfix/smtpd`), among those the client can reach when several share
/// it (a loopback-only reinjection listener cannot have refused a remote client). Without a
/// Postfix model, the program's middle part (`postfix/submission/smtpd` -> submission).
fn logged_service(
    e: &Event,
    decisions: &[Decision],
    listeners: &[crate::lint::PostfixListener],
) -> Option<String> {
    let program = e.program.as_deref()?;
    let named: Vec<&Decision> = decisions
        .iter()
        .filter(|d| {
            listeners
                .iter()
                .any(|l| l.program == program && l.service == d.service)
        })
        .collect();
    let reachable: Vec<&Decision> = named
        .iter()
        .copied()
        .filter(|d| d.result != crate::relay::Verdict::Unavailable)
        .collect();
    match (named.as_slice(), reachable.as_slice()) {
        ([one], _) | (_, [one]) => return Some(one.service.clone()),
        ([], _) => {}
        _ => return None,
    }
    service_hint(program).filter(|h| decisions.iter().any(|d| &d.service == h))
}

/// A Postfix refusal with a policy text ("Recipient address rejected: Access denied")
/// whose own simulation shows smtpd_relay_restrictions refusing a recipient that is not
/// local to the server: that is a relay refusal (a mail program that did not log in on the
/// submission port), whatever the reply text says (review7 F14). Postfix answers a bare
/// `reject` in that list with the generic "Access denied" (smtpd_check.c).
fn reclassify(e: &Event, sim: &Simulation) -> Option<Event> {
    let Simulation::Done {
        decisions,
        service: Some(service),
        rcpt_class: Some(class),
        ..
    } = sim
    else {
        return None;
    };
    if e.cause != event::Cause::Other
        || e.source != event::Source::Postfix
        || e.auth == event::Auth::Yes
        || *class == crate::relay::RecipientClass::Local
    {
        return None;
    }
    let d = decisions.iter().find(|d| &d.service == service)?;
    let refused = matches!(
        d.result,
        crate::relay::Verdict::Reject | crate::relay::Verdict::Defer
    );
    let last = d.trace.last()?;
    if !refused || !last.entry.starts_with("smtpd_relay_restrictions:") {
        return None;
    }
    let mut e = e.clone();
    e.cause = event::Cause::RelayDenied;
    e.recipient_class = Some(*class);
    Some(e)
}

/// The MTA whose configuration decided a piece of evidence (None for a pasted reply).
fn source_mta(s: event::Source) -> Option<crate::finding::Mta> {
    match s {
        event::Source::Postfix => Some(crate::finding::Mta::Postfix),
        event::Source::Exim => Some(crate::finding::Mta::Exim),
        event::Source::Qmail => Some(crate::finding::Mta::Qmail),
        event::Source::Bounce => None,
    }
}

/// Split positional arguments into configuration paths (leading arguments naming existing
/// files or directories) and the text to explain.
fn split_args(args: &[String], root: Option<&Path>) -> (Vec<PathBuf>, Vec<String>) {
    let mut paths = Vec::new();
    let mut text = Vec::new();
    for a in args {
        let p = Path::new(a);
        let exists = match root {
            Some(r) if p.is_absolute() => Root::snapshot(r).resolve(p).exists(),
            _ => p.exists(),
        };
        if text.is_empty() && a != "-" && !a.contains('\n') && exists {
            paths.push(p.to_path_buf());
        } else {
            text.push(a.clone());
        }
    }
    (paths, text)
}

/// `relaydoctor explain`: the rendered explanation; Findings when refusals were found.
pub fn run(mut a: Settings) -> Result<Outcome, Failure> {
    let (paths, text) = split_args(&a.args, a.root.as_deref());
    // `explain /var/log/mail.log` (a log where the configuration PATH goes) would otherwise
    // end in "nothing to explain" or a lint of the log as configuration.
    for p in &paths {
        let real = match &a.root {
            Some(r) if p.is_absolute() => Root::snapshot(r).resolve(p),
            _ => p.clone(),
        };
        if reader::looks_like_log(a.root.as_deref(), &real) {
            return Err(Failure::new(format!(
                "{}: this looks like a mail log; use --log FILE (a PATH argument names the \
                 configuration to simulate against, e.g. /etc/postfix)",
                p.display()
            )));
        }
    }
    if text.is_empty() && a.log.is_empty() {
        return Err(Failure::new(
            "nothing to explain: give the bounce or log lines as TEXT, `-` for standard input, \
             or --log FILE (see --help)",
        ));
    }
    if !text.is_empty() && !a.log.is_empty() {
        return Err(Failure::new("give either TEXT/`-` or --log, not both"));
    }
    let an = analyze(&a, &text)?;
    let mut config = configuration(&mut a, paths);
    let out = render(&a, &an, &mut config);
    // The simulations quote the configuration: its secrets are masked like lint's.
    let mut outcome = Outcome::findings(out, an.stats.events > 0)
        .json(a.json)
        .secrets(crate::secrets::collect(&config.ctx));
    if !an.stats.read_errors.is_empty() {
        // The report covers what was read; the run still says it could not read everything.
        outcome.status = crate::outcome::Status::PartialFailure;
        for e in &an.stats.read_errors {
            outcome = outcome.note(e.clone());
        }
    }
    Ok(outcome)
}

/// Read every input into the analyzer: whole logs grouped, texts event by event.
fn analyze(a: &Settings, text: &[String]) -> Result<Analyzer, Failure> {
    let summary = !a.log.is_empty();
    let sink = if summary {
        Sink::Groups(aggregate::Aggregate::default())
    } else {
        Sink::Events(Vec::new())
    };
    let mut an = Analyzer::new(a.years.clone(), !summary, sink);
    an.since = a.since;
    an.until = a.until;
    if summary {
        let files = reader::expand(&a.log, a.rotated)?;
        for f in &files {
            reader::stream_path(f, &mut an)?;
        }
    } else {
        if text.iter().any(|t| t == "-") {
            reader::stream_text(std::io::stdin().lock(), "stdin", &mut an)
                .map_err(|e| Failure::new(format!("standard input: {e}")))?;
        }
        let joined: Vec<&str> = text
            .iter()
            .filter(|t| *t != "-")
            .map(String::as_str)
            .collect();
        if !joined.is_empty() {
            let t = joined.join(" ");
            reader::stream_text(t.as_bytes(), "text", &mut an)?;
        }
    }
    an.finish();
    Ok(an)
}

fn render(a: &Settings, an: &Analyzer, config: &mut Config) -> String {
    let color = a.color;
    match &an.sink {
        Sink::Events(events) => {
            let sims: Vec<Simulation> = events.iter().map(|e| sim(config, e, a)).collect();
            let events: Vec<Event> = events
                .iter()
                .zip(&sims)
                .map(|(e, s)| reclassify(e, s).unwrap_or_else(|| e.clone()))
                .collect();
            if a.json {
                render::events_json(&an.stats, &events, &sims, config)
            } else {
                render::events_text(&an.stats, &events, &sims, config, color)
            }
        }
        Sink::Groups(g) => {
            let groups = g.sorted();
            let sims: Vec<Simulation> = groups.iter().map(|g| sim(config, &g.example, a)).collect();
            // A group's title and advice follow its example, reclassified by its simulation.
            let examples: Vec<Event> = groups
                .iter()
                .zip(&sims)
                .map(|(g, s)| reclassify(&g.example, s).unwrap_or_else(|| g.example.clone()))
                .collect();
            let view = render::GroupsView {
                groups: &groups,
                examples: &examples,
                sims: &sims,
            };
            if a.json {
                render::groups_json(&an.stats, &view, config, a.top)
            } else {
                render::groups_text(&an.stats, &view, config, a.top, color)
            }
        }
    }
}

fn sim(config: &mut Config, e: &Event, a: &Settings) -> Simulation {
    if !a.simulate {
        return Simulation::Skipped {
            reason: "--no-simulate".into(),
        };
    }
    config.simulate(e)
}

fn configuration(a: &mut Settings, paths: Vec<PathBuf>) -> Config {
    let ctx = std::mem::take(&mut a.ctx);
    let findings = if !a.simulate {
        Err("--no-simulate".to_string())
    } else {
        crate::lint::run(&ctx, &paths).map(|r| r.findings)
    };
    let described = if !paths.is_empty() {
        let p: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        match &a.root {
            Some(r) => format!("{} under --root {}", p.join(", "), r.display()),
            None => p.join(", "),
        }
    } else {
        match &a.root {
            Some(r) => format!("the snapshot --root {}", r.display()),
            // Only what was found here (review7 F4): no MTA is claimed that is not installed.
            None => {
                let found: Vec<String> = crate::lint::collect(&ctx, &paths)
                    .map(|(sets, _)| sets.iter().map(|s| s.describe(&ctx)).collect())
                    .unwrap_or_default();
                format!("the live system ({})", found.join(", "))
            }
        }
    };
    Config {
        ctx,
        paths,
        described,
        findings,
        simulations: 0,
    }
}
