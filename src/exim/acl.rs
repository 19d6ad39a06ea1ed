//! ACL evaluation (acl.c semantics, Exim 4.96 specification chapter 44): statements in order,
//! conditions ANDed left to right, the first false condition ends the statement, modifiers
//! always true, `endpass` turns a later failure of `accept` into a denial, `require` denies
//! when a condition fails, and every ACL ends in an implicit deny. Conditions the static model
//! cannot decide (DNS lists, callouts, lookups, expansions) split the evaluation: both
//! outcomes are followed, and the decision is `depends` when they differ.

use std::cell::Cell;
use std::net::IpAddr;

use super::lists::{expand, Matcher, Subject, M};
use super::model::{Acl, Cond, Config, ListKind, Stmt, Verb};
use crate::context::Context;
use crate::finding::Mta;
use crate::relay::{Decision, TraceStep, Verdict};

/// One concrete SMTP transaction to evaluate.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub ip: Option<IpAddr>,
    pub host_name: Option<String>,
    pub auth_id: Option<String>,
    /// Envelope sender without brackets; None = not known (lint's generic sender).
    pub sender: Option<String>,
    pub rcpt_local: String,
    pub rcpt_domain: String,
    /// The port the client connected to ($received_port), when the decision is per port.
    pub port: Option<u16>,
    /// The HELO/EHLO name ($sender_helo_name) when simulate was given one.
    pub helo: Option<String>,
}

/// One way the evaluation can end.
#[derive(Debug, Clone)]
pub struct Branch {
    pub verdict: Verdict,
    pub code: Option<u16>,
    pub text: Option<String>,
    pub trace: Vec<TraceStep>,
    /// Undecidable conditions and the outcome assumed on this branch.
    pub assumed: Vec<(String, bool)>,
    /// The statement that decided (for findings).
    pub decided_by: Option<(std::path::PathBuf, usize)>,
}

#[derive(Clone)]
struct State {
    trace: Vec<TraceStep>,
    assumed: Vec<(String, bool)>,
    message: Option<String>,
    /// The reply text a failed verification sets when no `message` is given (acl.c: a
    /// failed `verify = sender` answers `Sender verify failed`).
    verify_text: Option<String>,
    endpass: bool,
}

pub struct Eval<'a> {
    pub ctx: &'a Context,
    pub cfg: &'a Config,
    pub env: &'a Envelope,
    pub primary_hostname: String,
    budget: Cell<usize>,
    sub_cache: std::cell::RefCell<std::collections::HashMap<String, Vec<Branch>>>,
}

/// ACL modifiers: they do not decide whether a statement matches.
const MODIFIERS: &[&str] = &[
    "message",
    "log_message",
    "logwrite",
    "add_header",
    "remove_header",
    "control",
    "set",
    "delay",
    "log_reject_target",
    "continue",
    "queue",
    "udpsend",
    "debug",
];

/// An ACL condition or modifier Exim knows (acl.c conditions[], 4.96 and later releases).
pub fn is_known_condition(name: &str) -> bool {
    super::tables::acl_condition(name) != super::tables::Known::No
}

fn step(origin: &super::reader::Origin, entry: String, effect: &str) -> TraceStep {
    TraceStep {
        file: origin.file.clone(),
        line: origin.line,
        entry,
        effect: effect.to_string(),
    }
}

impl<'a> Eval<'a> {
    pub fn new(ctx: &'a Context, cfg: &'a Config, env: &'a Envelope, primary: String) -> Eval<'a> {
        Eval {
            ctx,
            cfg,
            env,
            primary_hostname: primary,
            budget: Cell::new(512),
            sub_cache: std::cell::RefCell::new(std::collections::HashMap::new()),
        }
    }

    fn matcher(&self) -> Matcher<'_> {
        Matcher {
            ctx: self.ctx,
            cfg: self.cfg,
            subject: Subject {
                ip: self.env.ip,
                host_name: self.env.host_name.as_deref(),
                primary_hostname: &self.primary_hostname,
            },
            notes: Default::default(),
        }
    }

    /// Run the ACL named by a main option (`acl_smtp_rcpt`, ...). `unset` is what an unset
    /// option means for this SMTP command.
    pub fn run_option(&self, option: &str, unset_denies: bool) -> Vec<Branch> {
        let st = State {
            trace: Vec::new(),
            assumed: Vec::new(),
            message: None,
            verify_text: None,
            endpass: false,
        };
        let setting = match self.cfg.option(option) {
            Some(s) if !s.value.trim().is_empty() => s,
            _ => {
                if unset_denies {
                    let mut st = st;
                    st.trace.push(TraceStep {
                        file: std::path::PathBuf::from("(main configuration)"),
                        line: 0,
                        entry: format!("{option} is not set"),
                        effect: "reject: Exim refuses every RCPT over SMTP without an RCPT ACL"
                            .into(),
                    });
                    return vec![self.end(
                        st,
                        Verdict::Reject,
                        550,
                        "Administrative prohibition".into(),
                        None,
                    )];
                }
                return vec![self.end(st, Verdict::Accept, 250, "Accepted".into(), None)];
            }
        };
        let name = setting.value.trim();
        match self.cfg.acl(name) {
            Some(acl) => {
                let mut st = st;
                st.trace.push(step(
                    &setting.origin,
                    format!("{option} = {name}"),
                    "run ACL",
                ));
                self.walk(acl, 0, 0, st, 0)
            }
            None if super::parse::inline_acl(name, &setting.origin).is_some() => {
                let acl = super::parse::inline_acl(name, &setting.origin);
                let mut st = st;
                st.trace.push(step(
                    &setting.origin,
                    format!("{option} = {name}"),
                    "run the text as an inline ACL (no ACL of that name)",
                ));
                match acl {
                    Some(a) => self.walk(&a, 0, 0, st, 0),
                    None => Vec::new(),
                }
            }
            None => {
                let mut st = st;
                st.trace.push(step(
                    &setting.origin,
                    format!("{option} = {name}"),
                    "defer: no ACL of that name, so Exim parses the text as an inline ACL and fails",
                ));
                vec![self.end(
                    st,
                    Verdict::Defer,
                    451,
                    "Temporary local problem - please try later".into(),
                    Some((setting.origin.file.clone(), setting.origin.line)),
                )]
            }
        }
    }

    fn end(
        &self,
        st: State,
        v: Verdict,
        code: u16,
        text: String,
        by: Option<(std::path::PathBuf, usize)>,
    ) -> Branch {
        Branch {
            verdict: v,
            code: Some(code),
            text: Some(text),
            trace: st.trace,
            assumed: st.assumed,
            decided_by: by,
        }
    }

    /// A 550 with the statement's `message` (or Exim's default text), traced at `stmt`.
    fn refuse(
        &self,
        mut st: State,
        stmt: &Stmt,
        effect: &str,
        by: Option<(std::path::PathBuf, usize)>,
    ) -> Branch {
        let text = st
            .message
            .clone()
            .or_else(|| st.verify_text.clone())
            .unwrap_or_else(|| "Administrative prohibition".into());
        st.trace
            .push(step(&stmt.origin, stmt.verb.as_str().into(), effect));
        self.end(st, Verdict::Reject, 550, text, by)
    }

    fn walk(&self, acl: &Acl, i: usize, k: usize, mut st: State, depth: usize) -> Vec<Branch> {
        let Some(stmt) = acl.stmts.get(i) else {
            st.trace.push(step(
                &acl.origin,
                format!("end of ACL {}", acl.name),
                "reject: implicit deny at the end of every ACL",
            ));
            let by = Some((acl.origin.file.clone(), acl.origin.line));
            return vec![self.end(
                st,
                Verdict::Reject,
                550,
                "Administrative prohibition".into(),
                by,
            )];
        };
        if k == 0 {
            st.message = None;
            st.verify_text = None;
            st.endpass = false;
        }
        let by = Some((stmt.origin.file.clone(), stmt.origin.line));
        if k >= stmt.conds.len() {
            return self.settled(acl, i, stmt, st, depth, by, true);
        }
        let c = &stmt.conds[k];
        if c.name == "endpass" {
            st.endpass = true;
            return self.walk(acl, i, k + 1, st, depth);
        }
        if MODIFIERS.contains(&c.name.as_str()) {
            if c.name == "message" {
                st.message = Some(c.value().to_string());
            }
            return self.walk(acl, i, k + 1, st, depth);
        }
        if c.name == "acl" {
            return self.sub_acl(acl, i, k, c, st, depth);
        }
        let (m, notes) = self.cond_noted(c);
        let noted = |effect: &str| {
            if notes.is_empty() {
                effect.to_string()
            } else {
                format!("{effect} ({})", notes.join("; "))
            }
        };
        match m {
            M::Yes => {
                if !notes.is_empty() {
                    st.trace.push(step(&c.origin, c.render(), &noted("true")));
                }
                self.walk(acl, i, k + 1, st, depth)
            }
            M::No if notes.is_empty() => {
                if let Some(t) = verify_failure_text(c).filter(|_| !c.negated) {
                    st.verify_text = Some(t.into());
                }
                self.failed(acl, i, stmt, c, st, depth, by)
            }
            M::No => {
                st.trace.push(step(&c.origin, c.render(), &noted("false")));
                self.settled(acl, i, stmt, st, depth, by, false)
            }
            M::Unknown(reason) => self.split(acl, i, k, stmt, c, reason, st, depth, by),
            M::Fatal(log) => vec![self.dies(st, c, &log, by)],
        }
    }

    /// Exim cannot open a file the condition must read: it logs to the panic log and the
    /// process dies (match.c, LOG_PANIC_DIE), so the client's command gets no reply and the
    /// connection drops; a daemon's other connections are not affected (each has its own
    /// process). Checked with exim -bh 4.96: the LOG line, no reply to RCPT, exit status 1.
    fn dies(
        &self,
        mut st: State,
        c: &Cond,
        log: &str,
        by: Option<(std::path::PathBuf, usize)>,
    ) -> Branch {
        st.trace.push(step(
            &c.origin,
            c.render(),
            &format!("connection dropped: Exim logs `{log}` to the panic log and exits"),
        ));
        Branch {
            verdict: Verdict::Unavailable,
            code: None,
            text: Some(format!(
                "no reply, the connection is dropped: Exim logs `{log}` to the panic log and the process handling the connection exits"
            )),
            trace: st.trace,
            assumed: st.assumed,
            decided_by: by,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn split(
        &self,
        acl: &Acl,
        i: usize,
        k: usize,
        stmt: &Stmt,
        c: &Cond,
        reason: String,
        st: State,
        depth: usize,
        by: Option<(std::path::PathBuf, usize)>,
    ) -> Vec<Branch> {
        // A warn statement never changes the outcome.
        if stmt.verb == Verb::Warn {
            return self.walk(acl, i + 1, 0, st, depth);
        }
        // Same undecidable condition seen earlier on this path: reuse its assumed value.
        if let Some(&(_, v)) = st.assumed.iter().find(|(r, _)| *r == reason) {
            let mut st = st;
            if !v {
                if let Some(t) = verify_failure_text(c) {
                    st.verify_text = Some(t.into());
                }
            }
            let holds = v != c.negated;
            return if holds {
                self.walk(acl, i, k + 1, st, depth)
            } else {
                self.failed(acl, i, stmt, c, st, depth, by)
            };
        }
        let left = self.budget.get();
        if left == 0 {
            let mut st = st;
            st.trace.push(step(&c.origin, c.render(), "depends"));
            return vec![Branch {
                verdict: Verdict::Depends,
                code: None,
                text: Some("too many undecidable conditions to follow".into()),
                trace: st.trace,
                assumed: st.assumed,
                decided_by: by,
            }];
        }
        self.budget.set(left - 1);
        let mut out = Vec::new();
        for raw in [true, false] {
            let mut s2 = st.clone();
            s2.assumed.push((reason.clone(), raw));
            if !raw {
                if let Some(t) = verify_failure_text(c) {
                    s2.verify_text = Some(t.into());
                }
            }
            let holds = raw != c.negated;
            s2.trace.push(step(
                &c.origin,
                c.render(),
                if holds {
                    "assumed true"
                } else {
                    "assumed false"
                },
            ));
            if holds {
                out.extend(self.walk(acl, i, k + 1, s2, depth));
            } else {
                out.extend(self.settled(acl, i, stmt, s2, depth, by.clone(), false));
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn failed(
        &self,
        acl: &Acl,
        i: usize,
        stmt: &Stmt,
        c: &Cond,
        mut st: State,
        depth: usize,
        by: Option<(std::path::PathBuf, usize)>,
    ) -> Vec<Branch> {
        st.trace.push(step(&c.origin, c.render(), "false"));
        self.settled(acl, i, stmt, st, depth, by, false)
    }

    /// The statement's conditions are settled: all true (`passed`), or one false.
    #[allow(clippy::too_many_arguments)]
    fn settled(
        &self,
        acl: &Acl,
        i: usize,
        stmt: &Stmt,
        mut st: State,
        depth: usize,
        by: Option<(std::path::PathBuf, usize)>,
        passed: bool,
    ) -> Vec<Branch> {
        let entry = stmt.render();
        match (passed, stmt.verb) {
            (false, Verb::Require) => {
                vec![self.refuse(st, stmt, "reject: a require condition failed", by)]
            }
            (false, Verb::Accept | Verb::Discard) if st.endpass => {
                vec![self.refuse(st, stmt, "reject: a condition after endpass failed", by)]
            }
            (false, _) => {
                st.trace.push(step(&stmt.origin, entry, "no match"));
                self.walk(acl, i + 1, 0, st, depth)
            }
            (true, Verb::Accept | Verb::Discard) => {
                st.trace.push(step(&stmt.origin, entry, "accept"));
                vec![self.end(st, Verdict::Accept, 250, "Accepted".into(), by)]
            }
            (true, Verb::Deny | Verb::Drop) => {
                let text = st
                    .message
                    .clone()
                    .or_else(|| st.verify_text.clone())
                    .unwrap_or_else(|| "Administrative prohibition".into());
                st.trace.push(step(&stmt.origin, entry, "reject"));
                let (code, text) = split_code(&text, 550);
                vec![self.end(st, Verdict::Reject, code, text, by)]
            }
            (true, Verb::Defer) => {
                let text = st
                    .message
                    .clone()
                    .unwrap_or_else(|| "Temporary local problem - please try later".into());
                st.trace.push(step(&stmt.origin, entry, "defer"));
                // Exim answers a defer with 451 (checked with Exim 4.96 -bh), not 450.
                let (code, text) = split_code(&text, 451);
                vec![self.end(st, Verdict::Defer, code, text, by)]
            }
            (true, Verb::Require | Verb::Warn) => {
                st.trace.push(step(&stmt.origin, entry, "pass"));
                self.walk(acl, i + 1, 0, st, depth)
            }
        }
    }

    fn sub_acl(
        &self,
        acl: &Acl,
        i: usize,
        k: usize,
        c: &Cond,
        st: State,
        depth: usize,
    ) -> Vec<Branch> {
        let stmt = &acl.stmts[i];
        let by = Some((stmt.origin.file.clone(), stmt.origin.line));
        let name = c.value().trim();
        let sub = match self.cfg.acl(name) {
            Some(a) if depth < 20 => a,
            _ => {
                return self.split(acl, i, k, stmt, c, format!("the ACL {name}"), st, depth, by);
            }
        };
        // The outcome of a called ACL does not depend on the caller's path, so it is computed
        // once per envelope (Debian calls acl_local_deny_exceptions from several statements)
        // and joined to the caller's trace and assumptions here.
        let cached = self.sub_cache.borrow().get(name).cloned();
        let sub_branches = match cached {
            Some(b) => b,
            None => {
                let fresh = State {
                    trace: Vec::new(),
                    assumed: Vec::new(),
                    message: None,
                    verify_text: None,
                    endpass: false,
                };
                let b = self.walk(sub, 0, 0, fresh, depth + 1);
                self.sub_cache
                    .borrow_mut()
                    .insert(name.to_string(), b.clone());
                b
            }
        };
        let mut out = Vec::new();
        for b in sub_branches {
            let contradicts = b
                .assumed
                .iter()
                .any(|(r, v)| st.assumed.iter().any(|(r2, v2)| r == r2 && v != v2));
            if contradicts {
                continue;
            }
            let mut s2 = st.clone();
            s2.trace.extend(b.trace.iter().cloned());
            for a in &b.assumed {
                if !s2.assumed.contains(a) {
                    s2.assumed.push(a.clone());
                }
            }
            let sub_true = match b.verdict {
                Verdict::Accept => true,
                Verdict::Reject => false,
                _ => {
                    out.push(Branch {
                        decided_by: by.clone(),
                        trace: s2.trace,
                        assumed: s2.assumed,
                        ..b.clone()
                    });
                    continue;
                }
            };
            let holds = sub_true != c.negated;
            if holds {
                s2.trace.push(step(&c.origin, c.render(), "true"));
                out.extend(self.walk(acl, i, k + 1, s2, depth));
            } else {
                s2.trace.push(step(&c.origin, c.render(), "false"));
                out.extend(self.settled(acl, i, stmt, s2, depth, by.clone(), false));
            }
        }
        out
    }

    /// Decide one condition (negation applied here).
    pub fn cond(&self, c: &Cond) -> M {
        self.cond_noted(c).0
    }

    /// Decide one condition, with what a decided match rested on (for the trace).
    /// Why a client that reaches the RCPT ACL must have sent HELO/EHLO: hosts_require_helo
    /// (Exim 4.95 NewStuff 16; default `*` in globals.c) matches it, and MAIL before HELO
    /// gets `503 HELO or EHLO required` (checked with `exim -bh` 4.96). None before 4.95, or
    /// when the list does not (surely) match the client.
    fn helo_required(&self, m: &Matcher) -> Option<String> {
        let version = super::checks::effective_version(self.ctx);
        if version.as_ref().is_some_and(|v| !v.at_least(4, 95)) {
            return None;
        }
        match self.cfg.option("hosts_require_helo") {
            None => Some(format!(
                "hosts_require_helo is * by default since Exim 4.95{}: MAIL before HELO gets 503, so a client that gets this far has said HELO",
                match &version {
                    Some(v) => format!(" ({})", v.source),
                    None => String::new(),
                }
            )),
            Some(o) => match m.list(ListKind::Host, &o.value, "", 0) {
                M::Yes => Some(format!(
                    "hosts_require_helo = {} matches the client: MAIL before HELO gets 503, so a client that gets this far has said HELO",
                    o.value.trim()
                )),
                _ => None,
            },
        }
    }

    fn cond_noted(&self, c: &Cond) -> (M, Vec<String>) {
        let m = self.matcher();
        let r = self.cond_raw(c, &m);
        let r = match (r, c.negated) {
            (M::Yes, true) => M::No,
            (M::No, true) => M::Yes,
            (r, _) => r,
        };
        let notes = if matches!(r, M::Unknown(_)) {
            Vec::new()
        } else {
            m.notes.take()
        };
        (r, notes)
    }

    fn cond_raw(&self, c: &Cond, m: &Matcher) -> M {
        let v = c.value();
        match c.name.as_str() {
            "hosts" => m.list(ListKind::Host, v, "", 0),
            "domains" => m.list(ListKind::Domain, v, &self.env.rcpt_domain, 0),
            "local_parts" => m.list(ListKind::LocalPart, v, &self.env.rcpt_local, 0),
            "recipients" => {
                let a = format!("{}@{}", self.env.rcpt_local, self.env.rcpt_domain);
                m.list(ListKind::Address, v, &a, 0)
            }
            "senders" => match &self.env.sender {
                Some(s) => m.list(ListKind::Address, v, s, 0),
                None => match expand(self.ctx, v) {
                    Ok(x) if super::lists::split(&x).is_empty() => M::No,
                    Ok(x) if super::lists::split(&x).iter().any(|i| i == "*") => M::Yes,
                    _ => M::Unknown(format!("the envelope sender ({})", c.render())),
                },
            },
            "sender_domains" => match &self.env.sender {
                Some(s) => m.list(
                    ListKind::Domain,
                    v,
                    s.rsplit_once('@').map(|x| x.1).unwrap_or(""),
                    0,
                ),
                None => M::Unknown(format!("the envelope sender ({})", c.render())),
            },
            "authenticated" => match &self.env.auth_id {
                Some(id) => m.list(ListKind::LocalPart, v, id, 0),
                None => M::No,
            },
            "encrypted" => M::No,
            "condition" if first_rcpt_guard(v) => M::No,
            "condition" if port_test(v).is_some() => match (port_test(v), self.env.port) {
                (Some((want, negate)), Some(p)) => {
                    if (p == want) != negate {
                        M::Yes
                    } else {
                        M::No
                    }
                }
                _ => M::Unknown(format!("the port the client connected to ({})", v.trim())),
            },
            "condition" if helo_test(v).is_some() => {
                // Only simulate knows the HELO name; without one, a client that reaches RCPT
                // has said HELO wherever Exim requires it (hosts_require_helo).
                let required = match self.env.helo {
                    Some(_) => None,
                    None => self.helo_required(m),
                };
                match (helo_test(v), &self.env.helo, required) {
                    (Some(want_defined), Some(_), _) => {
                        if want_defined {
                            M::Yes
                        } else {
                            M::No
                        }
                    }
                    (Some(want_defined), None, Some(why)) => {
                        m.notes.borrow_mut().push(why);
                        if want_defined {
                            M::Yes
                        } else {
                            M::No
                        }
                    }
                    _ => M::Unknown(format!("the HELO name ({})", v.trim())),
                }
            }
            "verify" => self.verify(v, m),
            "dnslists" => M::Unknown(format!("the DNS blocklist lookup dnslists = {}", v.trim())),
            "ratelimit" => M::Unknown(format!("the rate limit ratelimit = {}", v.trim())),
            "spf" | "spf_guess" => M::Unknown("the SPF check".into()),
            // Constant comparisons, also once the session's values are filled in (#16 item 6).
            "condition" => match super::cond::eval_if(&super::cond::substitute(v, self.env)) {
                Some(true) => M::Yes,
                Some(false) => M::No,
                None => self.expanded_condition(c),
            },
            other => M::Unknown(format!("the ACL condition {other}")),
        }
    }

    fn expanded_condition(&self, c: &Cond) -> M {
        match expand(self.ctx, c.value()) {
            Ok(x) => {
                let x = x.trim().to_ascii_lowercase();
                if x.is_empty() || x == "no" || x == "false" || x == "0" {
                    M::No
                } else if x == "yes" || x == "true" || x.parse::<i64>().is_ok() {
                    M::Yes
                } else {
                    M::Unknown(format!("condition = {}", c.value()))
                }
            }
            Err(e) => M::Unknown(e),
        }
    }

    fn verify(&self, v: &str, m: &Matcher) -> M {
        let v = v.trim();
        let (what, opts) = match v.split_once('/') {
            Some((a, b)) => (a.trim(), b.to_ascii_lowercase()),
            None => (v, String::new()),
        };
        let callout = opts.contains("callout");
        match what {
            "recipient" => {
                if callout {
                    M::Unknown(format!("the recipient callout verify = {v}"))
                } else {
                    // Modelled for an address that exists: a deliverable recipient routes,
                    // but a domain routed by dnslookup routes only if the DNS knows it.
                    super::routing::verify_recipient(m, self.cfg, &self.env.rcpt_domain)
                }
            }
            "sender" => match &self.env.sender {
                Some(s) if s.is_empty() => M::Yes,
                _ if callout => M::Unknown(format!("the sender callout verify = {v}")),
                Some(s) if !s.contains('@') => {
                    M::Unknown(format!("sender verification verify = {v}"))
                }
                Some(s) => {
                    // A sender domain no router takes, or one only the DNS can route, is
                    // decided by routing; otherwise whether the address exists is unknown.
                    let domain = s.rsplit_once('@').map_or("", |x| x.1);
                    match super::routing::verify_sender(m, self.cfg, domain) {
                        M::Yes => M::Unknown(format!("sender verification verify = {v}")),
                        other => other,
                    }
                }
                None => M::Unknown(format!("sender verification verify = {v}")),
            },
            "certificate" => M::No,
            "header_syntax" | "header_sender" | "not_blind" | "header_names_ascii" | "arc" => {
                M::Yes
            }
            _ => M::Unknown(format!("verify = {v}")),
        }
    }
}

/// The reply text of a failed `verify = sender` / `verify = recipient` when the statement
/// has no `message` (acl.c; checked with exim -bh 4.96: `550 Sender verify failed`,
/// `550 Unrouteable address`).
fn verify_failure_text(c: &Cond) -> Option<&'static str> {
    if c.name != "verify" {
        return None;
    }
    let v = c.value().trim_start();
    if v.starts_with("sender") {
        Some("Sender verify failed")
    } else if v.starts_with("recipient") && !v.contains("callout") {
        Some("Unrouteable address")
    } else {
        None
    }
}

/// `${if eq{$received_port}{587}}` (also `==`, `!eq`, `{yes}{no}` arms, $interface_port):
/// the port a condition compares against, and whether the comparison is negated.
pub fn port_test(v: &str) -> Option<(u16, bool)> {
    if !v.contains("_port") {
        return None;
    }
    let t: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    // A constant pattern, compiled once per process.
    static PORT_TEST: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = PORT_TEST
        .get_or_init(|| {
            super::lists::regex(
                r"^\$\{if(!?)(?:eq|==|=)\{\$(?:received_port|interface_port)\}\{(\d+)\}(?:\{(yes|true|1|no|false|0)\}(?:\{(yes|true|1|no|false|0)?\})?)?\}$",
                false,
            )
        })
        .as_ref()?;
    let c = re.captures(&t)?;
    let port = c.get(2)?.as_str().parse().ok()?;
    let negated = !c.get(1)?.as_str().is_empty();
    // `{no}{yes}` arms invert the comparison.
    let inverted = c
        .get(3)
        .is_some_and(|a| matches!(a.as_str(), "no" | "false" | "0"));
    Some((port, negated != inverted))
}

/// `${if and {{>{$rcpt_count}{N}}...}}` with N >= 1 is false for the first recipient of a
/// message ($rcpt_count counts RCPT commands including the current one), which is the
/// recipient every relay decision here is about (Debian's "too many bad recipients" check).
/// `${if def:sender_helo_name}` (optionally `{yes}{no}` or negated): Some(true) when the
/// condition holds for a client that sent HELO/EHLO, Some(false) when it holds without one.
pub fn helo_test(v: &str) -> Option<bool> {
    let t: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    let inner = t.strip_prefix("${if")?.strip_suffix('}')?;
    let (neg, rest) = match inner.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, inner),
    };
    let rest = rest
        .strip_prefix("def:sender_helo_name")
        .or_else(|| rest.strip_prefix("def:{sender_helo_name}"))?;
    let flip = match rest {
        "" | "{yes}{no}" | "{true}{false}" => false,
        "{no}{yes}" | "{false}{true}" => true,
        _ => return None,
    };
    Some(!(neg ^ flip))
}

fn first_rcpt_guard(v: &str) -> bool {
    let t: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    if !t.starts_with("${ifand{{>{$rcpt_count}{") {
        return false;
    }
    let rest = &t["${ifand{{>{$rcpt_count}{".len()..];
    rest.split('}')
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n >= 1)
}

/// `message = 451 4.7.1 text`-style custom codes are honoured by Exim for deny/defer when
/// the first digit matches the verb's class.
fn split_code(text: &str, default: u16) -> (u16, String) {
    let t = text.trim_start();
    if t.len() > 4 && t.as_bytes()[3] == b' ' {
        if let Ok(c) = t[..3].parse::<u16>() {
            if c / 100 == default / 100 {
                return (c, t[4..].to_string());
            }
        }
    }
    (default, text.to_string())
}

/// One step per ACL line: a condition step followed by its statement's step on the same line
/// is folded into the statement's step (kept as a note only when it was not plainly true).
fn fold_steps(trace: Vec<TraceStep>) -> Vec<TraceStep> {
    let mut out: Vec<TraceStep> = Vec::new();
    for s in trace {
        if let Some(prev) = out.last_mut() {
            if prev.file == s.file && prev.line == s.line && s.entry.contains(prev.entry.as_str()) {
                let note = if prev.effect == "true" {
                    String::new()
                } else {
                    format!(" ({}: {})", prev.entry, prev.effect)
                };
                *prev = TraceStep {
                    effect: format!("{}{note}", s.effect),
                    ..s
                };
                continue;
            }
        }
        out.push(s);
    }
    out
}

/// The outcome an ordinary client meets for an undecidable condition: its address verifies
/// (sender/recipient verification and callouts succeed), and it is in no unknown list, DNS
/// blocklist or rate limit.
fn usual(reason: &str) -> bool {
    reason.starts_with("sender verification")
        || reason.starts_with("DNS routing of the recipient domain")
        || reason.starts_with("DNS routing of the sender domain")
        || reason.starts_with("the sender callout")
        || reason.starts_with("the recipient callout")
}

/// Collapse branches into one decision.
pub fn decide(service: &str, branches: &[Branch]) -> Decision {
    let mut d = decide_raw(service, branches);
    d.trace = fold_steps(std::mem::take(&mut d.trace));
    d
}

fn decide_raw(service: &str, branches: &[Branch]) -> Decision {
    let Some(first) = branches.first() else {
        return Decision::new(Mta::Exim, service, Verdict::Depends);
    };
    let same = branches
        .iter()
        .all(|b| b.verdict == first.verdict && b.code == first.code);
    // Same verdict and code, but a different reply text on some branch (e.g. `Sender verify
    // failed` against `relay not permitted`): the verdict holds, the text does not.
    let same_text = same && branches.iter().all(|b| b.text == first.text);
    let mut d = Decision::new(Mta::Exim, service, first.verdict);
    d.trace = first.trace.clone();
    if same {
        // Every branch ends alike: the result holds whatever the undecidable conditions
        // turn out to be. Show the branch a client outside every unknown list takes (the
        // fewest conditions assumed true) and say at each open step that it did not matter.
        let shown = branches
            .iter()
            .min_by_key(|b| b.assumed.iter().filter(|(r, v)| *v != usual(r)).count())
            .unwrap_or(first);
        d.trace = shown
            .trace
            .iter()
            .map(|s| {
                let mut s = s.clone();
                if s.effect == "assumed true" || s.effect == "assumed false" {
                    let taken = if s.effect == "assumed true" {
                        "true"
                    } else {
                        "false"
                    };
                    s.effect = if same_text {
                        format!("undecidable, taken as {taken} (same result either way)")
                    } else {
                        format!(
                            "undecidable, taken as {taken} ({} {} either way; the reply text depends on it)",
                            first.verdict.as_str(),
                            first.code.map(|c| c.to_string()).unwrap_or_default()
                        )
                    };
                }
                s
            })
            .collect();
        d.code = shown.code;
        d.text = shown.text.clone();
        if !same_text {
            for b in branches {
                for (r, _) in &b.assumed {
                    if !d.depends_on.contains(r) {
                        d.depends_on.push(r.clone());
                    }
                }
            }
        }
        if first.verdict == Verdict::Accept {
            d.enhanced = None;
        }
        return d;
    }
    d.result = Verdict::Depends;
    // One way to each answer per distinct set of conditions (src/exim/merge.rs).
    let ways = super::merge::merge(
        branches
            .iter()
            .map(|b| {
                let answer = format!(
                    "{} {}{}",
                    b.verdict.as_str(),
                    b.code.map(|c| c.to_string()).unwrap_or_default(),
                    match &b.text {
                        Some(t) if b.verdict != Verdict::Accept => format!(" {t}"),
                        _ => String::new(),
                    }
                );
                (answer, b.assumed.clone())
            })
            .collect(),
    );
    let mut reasons: Vec<String> = Vec::new();
    for (_, cond) in &ways {
        for (r, _) in cond {
            if !reasons.contains(r) {
                reasons.push(r.clone());
            }
        }
    }
    d.depends_on = reasons;
    let outcomes: Vec<String> = ways
        .iter()
        .map(|(answer, cond)| {
            let cond: Vec<String> = cond
                .iter()
                .map(|(r, v)| format!("{r} {}", if *v { "true" } else { "false" }))
                .collect();
            if cond.is_empty() {
                answer.clone()
            } else {
                format!("{answer} if {}", cond.join(" and "))
            }
        })
        .collect();
    d.text = Some(outcomes.join("; "));
    d
}
