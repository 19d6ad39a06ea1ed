//! Explanations for people (text) and programs (JSON).

use std::fmt::Write as _;

use super::aggregate::Group;
use super::event::{Auth, Cause, Event, Side, Source};
use super::{Config, Simulation, Stats};
use crate::finding::Finding;

/// Who refused, in words.
pub fn side_text(e_side: Side, source: Source) -> &'static str {
    match (e_side, source) {
        (Side::ThisServer, Source::Bounce) => {
            "the user's own outgoing (sending) server refused the mail program"
        }
        (Side::ThisServer, _) => {
            "this server (the one that wrote the log) refused its SMTP client; for a user's mail \
             program that is the sending server"
        }
        (Side::RecipientServer, _) => {
            "the recipient's server refused mail passed on by the sending server"
        }
        (Side::Unknown, _) => {
            "not stated: if the mail program showed this while sending, the user's own outgoing \
             server refused; if it came back as a bounce message, the recipient's server did"
        }
    }
}

/// What to check, given the cause, the side and the AUTH state.
pub fn advice(e: &Event) -> Vec<String> {
    let mut v = Vec::new();
    match (e.cause, e.side) {
        (Cause::Microsoft, _) => v.push(
            "This is a Microsoft 365 / Exchange Online policy code (5.7.5xx-7xx, 5.7.57, 5.7.64; \
             5.7.708 means Microsoft does not accept traffic from that IP, typically a new or \
             low-reputation tenant). It is outside what relaydoctor checks: see Microsoft's \
             \"Email non-delivery reports and SMTP errors in Exchange Online\" and the tenant's \
             admin center."
                .into(),
        ),
        (Cause::RelayDenied, Side::RecipientServer) => v.push(
            "The recipient's server does not consider itself responsible for the recipient's \
             domain: the domain's MX record points at a server that does not (or no longer) host \
             it, typically after a migration, or the domain is missing from that server's \
             local/relay domains (mydestination/relay_domains, local_domains/relay_to_domains, \
             rcpthosts). Check `dig MX <domain>`; the fix is on the recipient's side unless that \
             server is yours too."
                .into(),
        ),
        (Cause::RelayDenied, _) => match e.auth {
            Auth::Yes => v.push(format!(
                "The client DID authenticate{} and was still refused: the relay policy of \
                     this service does not let authenticated clients relay. {} Run `relaydoctor \
                     lint` on the configuration.",
                e.sasl_user
                    .as_ref()
                    .map(|u| format!(" as {u}"))
                    .unwrap_or_default(),
                authenticated_but_refused(e.source)
            )),
            Auth::Failed => v.push(
                "The client tried to authenticate and FAILED, then was treated as a stranger: \
                 wrong user name or password in the mail program, or the server's \
                 authentication backend is broken (SASL/dovecot auth socket, Plesk's mail \
                 database - `relaydoctor plesk check`)."
                    .into(),
            ),
            Auth::No | Auth::Unknown => {
                let seen = if e.auth == Auth::No {
                    "The session shows no AUTH at all"
                } else {
                    "No AUTH is seen in this evidence"
                };
                v.push(format!(
                    "{seen}: the mail program probably did not authenticate. In its account \
                     settings check: outgoing server (SMTP) requires authentication = on (\"use \
                     the same settings as my incoming server\"), user name = the full mailbox \
                     address, port 587 with STARTTLS (or 465 with SSL/TLS) rather than 25, and \
                     that the outgoing server is this server."
                ));
                v.push(not_authenticated(e.source).into());
                if e.recipient_class.is_some() {
                    v.push(
                        "If the recipient's domain should be delivered here (a hosted domain), \
                         it is missing from the local/relay domains: that is a server-side fix."
                            .into(),
                    );
                }
            }
        },
        (Cause::SenderVerify, _) => {
            v.push(
                "Sender verification by callout: the receiving server checked the sender \
                 address by connecting to the sender domain's MX and asking \
                 `MAIL FROM:<>` / `RCPT TO:<sender>`. \"fail\" means that MX said the sender \
                 does not exist or refuses the null sender; \"defer\"/\"Could not complete \
                 sender verify callout\" means the MX could not be reached (firewall, down, \
                 greylisting)."
                    .into(),
            );
            v.push(
                "Fix on the sender's side: the sender domain's MX must accept RCPT TO for the \
                 address with an empty MAIL FROM. On this server: callouts refuse legitimate \
                 mail and get the server blocklisted; prefer dropping them (Exim \
                 `verify = sender` without /callout, Postfix without reject_unverified_sender) or \
                 at least `defer_ok`."
                    .into(),
            );
        }
        (Cause::AuthFailed, _) => v.push(
            "Authentication failed: wrong user name or password (mail program settings; the user \
             name is usually the full address), a mechanism the server does not offer, or a \
             broken authentication backend. Many failures from many addresses are password \
             guessing, not a user problem."
                .into(),
        ),
        (Cause::AuthRequired, _) => v.push(
            "The server requires STARTTLS and/or authentication before it accepts mail: enable \
             encryption (STARTTLS on 587 or SSL/TLS on 465) and authentication in the mail \
             program."
                .into(),
        ),
        (Cause::Blocklist, _) => v.push(
            "A DNS blocklist listed the client. Check the listing; if the list is dead or \
             aggressive (SORBS, NJABL, AHBL, UCEPROTECT level 2/3) or unfiltered Spamhaus via a \
             public resolver, the receiving server's configuration is the problem \
             (`relaydoctor lint` reports these)."
                .into(),
        ),
        (Cause::ServerConfig, _) => v.push(server_config(e.source).into()),
        (Cause::UnknownRecipient, _) => v.push(
            "The recipient does not exist on the refusing server (typo, deleted mailbox, or a \
             domain migrated without its mailboxes). Not a relay problem."
                .into(),
        ),
        (Cause::Other, _) => v.push(
            "A policy refusal that is not about relaying (sender, HELO, content, rate or \
             greylisting): the reply text says which rule."
                .into(),
        ),
    }
    v
}

/// Typical causes of "authenticated and still refused", in the terms of the MTA that logged
/// the event (a pasted reply may come from any of them).
fn authenticated_but_refused(source: Source) -> &'static str {
    match source {
        Source::Postfix => {
            "Typical causes: reject_unauth_destination/defer_unauth_destination before \
             permit_sasl_authenticated, permit_sasl_authenticated missing from \
             smtpd_relay_restrictions (or smtpd_recipient_restrictions), or a master.cf \
             -o override of the restrictions on this listener."
        }
        Source::Exim => {
            "Typical causes: in the RCPT ACL (acl_smtp_rcpt) a `require`/`deny` statement \
             demanding `domains = +local_domains : +relay_to_domains` comes before `accept \
             authenticated = *`, or that accept statement is missing."
        }
        Source::Qmail => {
            "Typical causes: the SMTP AUTH patch does not set RELAYCLIENT after a successful \
             AUTH (or this qmail-smtpd runs without the patch), or chkuser refuses relaying \
             before it sees the authentication."
        }
        Source::Bounce => {
            "Typical causes: reject_unauth_destination before permit_sasl_authenticated \
             (Postfix); a `require ... domains = +local_domains : +relay_to_domains` statement \
             above `accept authenticated = *` (Exim); RELAYCLIENT not set after AUTH (qmail)."
        }
    }
}

/// Why a client that believes it authenticated may not have been, and which relay-by-network
/// setting it may have relied on, per MTA.
fn not_authenticated(source: Source) -> &'static str {
    match source {
        Source::Postfix => {
            "If the client is sure it authenticated: AUTH may be off on the listener it uses \
             (e.g. when smtpd_sasl_auth_enable=yes is set only for submission in master.cf), \
             or the client's \
             network was expected in mynetworks or POP-before-SMTP (Plesk smtp_poplocks) and \
             is not."
        }
        Source::Exim => {
            "If the client is sure it authenticated: Exim may not offer AUTH on the connection \
             it uses (auth_advertise_hosts, or an authenticator whose \
             server_advertise_condition demands TLS first), or the client's network was \
             expected in relay_from_hosts (hostlist relay_from_hosts) and is not."
        }
        Source::Qmail => {
            "If the client is sure it authenticated: the qmail-smtpd it reaches may have no \
             SMTP AUTH (the patch or its checkpassword program only on the submission \
             service), or the client's network was expected in tcp.smtp with RELAYCLIENT (is \
             tcp.smtp.cdb rebuilt with tcprules?) or POP-before-SMTP (Plesk smtp_poplocks) and \
             is not."
        }
        Source::Bounce => {
            "If the client is sure it authenticated: AUTH may be off on the listener it uses, \
             or the client's network was expected in the server's trusted networks \
             (mynetworks, relay_from_hosts, tcp.smtp RELAYCLIENT) or POP-before-SMTP (Plesk \
             smtp_poplocks) and is not."
        }
    }
}

fn server_config(source: Source) -> &'static str {
    match source {
        Source::Exim => {
            "The refusing server's own configuration is broken: Exim defers with `451 \
             Temporary local problem` when an ACL or lookup fails (a missing file, a bad \
             expansion), and writes the cause to its mainlog and paniclog; `relaydoctor lint` \
             points at the setting."
        }
        Source::Qmail => {
            "The refusing server's own configuration is broken: every recipient is refused. \
             Check qmail's control files (/var/qmail/control) and the smtpd run script; \
             `relaydoctor lint` points at the setting."
        }
        Source::Postfix | Source::Bounce => {
            "The refusing server's own configuration is broken (Postfix answers 451 4.3.5 for \
             an unknown restriction name or a missing map): every recipient is refused. Its log \
             has a warning just before this line; `relaydoctor lint` points at the setting."
        }
    }
}

fn auth_text(e: &Event) -> String {
    match e.auth {
        Auth::Yes => match &e.sasl_user {
            Some(u) if u != "(authenticated)" => format!("yes, as {u}"),
            _ => "yes".into(),
        },
        Auth::Failed => match &e.sasl_user {
            Some(u) => format!("tried as {u} and failed"),
            None => "tried and failed".into(),
        },
        Auth::No => "no (the session shows no AUTH)".into(),
        Auth::Unknown if e.side == Side::RecipientServer => "not applicable".into(),
        Auth::Unknown => "not seen in this evidence".into(),
    }
}

fn reply_text(e: &Event) -> String {
    let mut s = String::new();
    if e.source != Source::Bounce {
        if let Some(c) = e.code {
            if !e.reply.starts_with(&c.to_string()) {
                let _ = write!(s, "[{c}] ");
            }
        }
    }
    s.push_str(&e.reply);
    s
}

fn client_text(e: &Event) -> Option<String> {
    let mut s = match (&e.client_name, &e.client_ip) {
        (Some(n), Some(ip)) => format!("{n}[{ip}]"),
        (None, Some(ip)) => format!("[{ip}]"),
        (Some(n), None) => n.clone(),
        (None, None) => return None,
    };
    if let Some(h) = &e.helo {
        let _ = write!(s, ", HELO {h}");
    }
    Some(s)
}

fn paint(s: &str, color: bool, f: fn(&str) -> colored::ColoredString) -> String {
    if color {
        f(s).to_string()
    } else {
        s.to_string()
    }
}

fn sim_text(out: &mut String, sim: &Simulation, indent: &str) {
    match sim {
        Simulation::Skipped { reason } if reason == "--no-simulate" => {}
        Simulation::Skipped { reason } => {
            let _ = writeln!(out, "{indent}simulation:  not run ({reason})");
        }
        Simulation::Unavailable { reason } => {
            let _ = writeln!(
                out,
                "{indent}simulation:  no configuration to simulate ({reason}); give --root DIR \
                 or a configuration PATH"
            );
        }
        Simulation::Done {
            query,
            decisions,
            service,
            matches_log,
            ..
        } => {
            let _ = writeln!(
                out,
                "{indent}simulation:  client {}{} -> <{}>:",
                query.client_ip,
                match (&query.sasl_user, query.authenticated) {
                    (Some(u), _) => format!(" authenticated as {u}"),
                    (None, true) => " authenticated (user name not in the log)".to_string(),
                    (None, false) => String::new(),
                },
                query.rcpt
            );
            if *matches_log == Some(false) {
                let _ = writeln!(
                    out,
                    "{indent}  NOTE: the configuration here does not give the logged reply: \
                     not reloaded since the change, or the log comes from a different server?"
                );
            }
            if decisions.is_empty() {
                let _ = writeln!(
                    out,
                    "{indent}  the configuration model returned no listening service"
                );
            }
            for d in decisions {
                let mark = if service.as_deref() == Some(d.service.as_str()) {
                    "  <- the service in the log"
                } else {
                    ""
                };
                let reply = d.reply_line();
                let _ = writeln!(
                    out,
                    "{indent}  {} {}: {}{}{mark}",
                    d.mta.as_str(),
                    d.service,
                    d.result.as_str(),
                    if reply.is_empty() {
                        String::new()
                    } else {
                        format!(" ({reply})")
                    }
                );
                if !d.depends_on.is_empty() {
                    let _ = writeln!(out, "{indent}    depends on: {}", d.depends_on.join(", "));
                }
                for t in &d.trace {
                    // A built-in default has no line (review7 F3): no `:0`.
                    let at = match t.line {
                        0 => t.file.display().to_string(),
                        l => format!("{}:{l}", t.file.display()),
                    };
                    let _ = writeln!(out, "{indent}    {at}: {} -> {}", t.entry, t.effect);
                }
            }
        }
    }
}

fn findings_text(out: &mut String, fs: &[&Finding], indent: &str) {
    for f in fs.iter().take(10) {
        let loc = f
            .location
            .as_ref()
            .map(|l| format!("{}:{}: ", l.file.display(), l.line))
            .unwrap_or_default();
        let _ = writeln!(out, "{indent}finding:     {loc}{} {}", f.code, f.message);
    }
}

fn stats_text(out: &mut String, st: &Stats) {
    let _ = write!(
        out,
        "{} line{} read from {}; {} event{}",
        st.lines,
        if st.lines == 1 { "" } else { "s" },
        if st.inputs.is_empty() {
            "nothing".to_string()
        } else {
            st.inputs.join(", ")
        },
        st.events,
        if st.events == 1 { "" } else { "s" },
    );
    if st.bad + st.unknown > 0 {
        let _ = write!(
            out,
            "; {} line{} not understood (skipped",
            st.bad + st.unknown,
            if st.bad + st.unknown == 1 { "" } else { "s" }
        );
        if !st.unknown_examples.is_empty() {
            let ex: Vec<String> = st
                .unknown_examples
                .iter()
                .take(5)
                .map(|(i, l)| format!("{i}:{l}"))
                .collect();
            let _ = write!(out, ": {}", ex.join(", "));
        }
        out.push(')');
    }
    if st.filtered > 0 {
        let _ = write!(out, "; {} outside --since/--until", st.filtered);
    }
    if st.undated > 0 {
        let _ = write!(out, "; {} without a timestamp (kept)", st.undated);
    }
    if st.dropped > 0 {
        let _ = write!(out, "; {} more not shown", st.dropped);
    }
    if st.duplicates > 0 {
        let _ = write!(
            out,
            "; {} Exim line{} skipped as the other log's copy (rejectlog repeats mainlog)",
            st.duplicates,
            if st.duplicates == 1 { "" } else { "s" }
        );
    }
    if st.duplicates_unchecked > 0 {
        let _ = write!(
            out,
            "; {} Exim lines not checked for mainlog/rejectlog copies (memory limit)",
            st.duplicates_unchecked
        );
    }
    out.push_str(".\n");
}

pub fn events_text(
    st: &Stats,
    events: &[Event],
    sims: &[Simulation],
    cfg: &Config,
    color: bool,
) -> String {
    let mut out = String::new();
    config_text(&mut out, cfg, sims);
    for (i, (e, sim)) in events.iter().zip(sims).enumerate() {
        let head = format!(
            "{}. {} ({}): {}",
            i + 1,
            e.cause.title(),
            e.source.label(),
            reply_text(e)
        );
        let _ = writeln!(
            out,
            "{}",
            paint(&head, color, |s| colored::Colorize::bold(s))
        );
        let mut at = format!("{}:{}", e.input, e.line);
        if let Some(t) = &e.time {
            let _ = write!(at, " at {t}");
        }
        if let Some(p) = &e.program {
            let _ = write!(at, " by {p}");
        }
        let _ = writeln!(out, "   evidence:    {at}");
        let _ = writeln!(out, "   who refused: {}", side_text(e.side, e.source));
        if let Some(r) = &e.remote_host {
            let _ = writeln!(out, "   remote:      {r}");
        }
        if let Some(s) = &e.stage {
            let _ = writeln!(out, "   stage:       {s}");
        }
        if let Some(c) = client_text(e) {
            let _ = writeln!(out, "   client:      {c}");
        }
        if e.sender.is_some() || e.recipient.is_some() {
            let mut env = String::new();
            if let Some(s) = &e.sender {
                let _ = write!(env, "from <{s}> ");
            }
            if let Some(r) = &e.recipient {
                let _ = write!(env, "to <{r}>");
            }
            let _ = writeln!(out, "   envelope:    {}", env.trim_end());
        }
        if let Some(rc) = e.recipient_class {
            let what = match rc {
                crate::relay::RecipientClass::External => {
                    "not a local or relay domain of the refusing server"
                }
                crate::relay::RecipientClass::Local => "local to the refusing server",
                crate::relay::RecipientClass::Relay => "a relay domain of the refusing server",
            };
            let _ = writeln!(out, "   recipient:   {what}");
        }
        let _ = writeln!(out, "   authenticated: {}", auth_text(e));
        if let Some(d) = &e.detail {
            let _ = writeln!(out, "   detail:      {d}");
        }
        for a in advice(e) {
            let _ = writeln!(out, "   advice:      {a}");
        }
        sim_text(&mut out, sim, "   ");
        findings_text(&mut out, &cfg.relevant(e, sim), "   ");
        out.push('\n');
    }
    if events.is_empty() {
        out.push_str("No refusal found in the evidence.\n");
    }
    stats_text(&mut out, st);
    out
}

/// Groups with their examples (reclassified by their simulation) and simulations.
pub struct GroupsView<'a> {
    pub groups: &'a [&'a Group],
    pub examples: &'a [Event],
    pub sims: &'a [Simulation],
}

impl GroupsView<'_> {
    fn rows(&self) -> impl Iterator<Item = (&Group, &Event, &Simulation)> {
        self.groups
            .iter()
            .zip(self.examples)
            .zip(self.sims)
            .map(|((g, e), s)| (*g, e, s))
    }
}

fn group_title(g: &Group, example: &Event) -> String {
    let k = g.key;
    let side = match k.side {
        Side::ThisServer => "refused by this server",
        Side::RecipientServer => "refused by the recipient's server",
        Side::Unknown => "refusing side unknown",
    };
    let auth = match (k.side, k.auth) {
        (Side::RecipientServer, _) => "",
        (_, Auth::Yes) => ", client authenticated",
        (_, Auth::Failed) => ", client's AUTH failed",
        (_, Auth::No) => ", client did not authenticate",
        (_, Auth::Unknown) => ", AUTH not seen",
    };
    format!(
        "{} ({}, {side}{auth})",
        example.cause.title(),
        k.source.label()
    )
}

fn counts_line(c: &[super::aggregate::Count], approx: bool) -> String {
    let mut s: Vec<String> = c
        .iter()
        .map(|c| format!("{} ({})", c.value, c.count))
        .collect();
    if approx {
        s.push("(approximate)".into());
    }
    s.join(", ")
}

pub fn groups_text(st: &Stats, view: &GroupsView, cfg: &Config, top: usize, color: bool) -> String {
    let mut out = String::new();
    config_text(&mut out, cfg, view.sims);
    for (g, example, sim) in view.rows() {
        let head = format!("{:>8}  {}", g.count, group_title(g, example));
        let _ = writeln!(
            out,
            "{}",
            paint(&head, color, |s| colored::Colorize::bold(s))
        );
        if let (Some(f), Some(l)) = (&g.first, &g.last) {
            let _ = writeln!(
                out,
                "          first {}  last {}",
                f.0.display(),
                l.0.display()
            );
        }
        let _ = writeln!(out, "          example: {}", reply_text(example));
        for (label, t) in [
            ("clients", &g.clients),
            ("recipients", &g.recipients),
            ("users", &g.users),
            ("services", &g.programs),
        ] {
            let c = t.top(top);
            if !c.is_empty() {
                let _ = writeln!(out, "          top {label}: {}", counts_line(&c, t.pruned));
            }
        }
        for a in advice(example) {
            let _ = writeln!(out, "          advice: {a}");
        }
        sim_text(&mut out, sim, "          ");
        findings_text(&mut out, &cfg.relevant(example, sim), "          ");
        out.push('\n');
    }
    if view.groups.is_empty() {
        out.push_str("No refusal found in the log.\n");
        if st.unknown > 0 && st.ignored == 0 {
            // Nothing in it looked like a log line: probably pasted bounces or replies, which
            // the log reader does not take line by line.
            out.push_str("None of its lines looks like a mail log line (no timestamp, no program). For bounce messages or pasted SMTP replies use `relaydoctor explain - < FILE`.\n");
        }
    }
    stats_text(&mut out, st);
    out
}

fn findings_json(fs: &[&Finding]) -> serde_json::Value {
    serde_json::to_value(fs).unwrap_or(serde_json::Value::Null)
}

fn config_json(cfg: &Config) -> serde_json::Value {
    match &cfg.findings {
        Ok(_) => serde_json::json!({"available": true, "simulated": cfg.described}),
        Err(r) => serde_json::json!({"available": false, "reason": r}),
    }
}

/// Which configuration the simulations ran against, so that a simulation of the live
/// system is never mistaken for one of the server that wrote the log.
/// A simulation is claimed only when one ran (review7 F4).
fn config_text(out: &mut String, cfg: &Config, sims: &[Simulation]) {
    if cfg.findings.is_err() {
        return;
    }
    if sims.iter().any(|s| matches!(s, Simulation::Done { .. })) {
        let _ = writeln!(out, "Simulated against {}.\n", cfg.described);
    } else {
        let _ = writeln!(
            out,
            "Configuration here: {} (checked; no event could be simulated against it).\n",
            cfg.described
        );
    }
}

pub fn events_json(st: &Stats, events: &[Event], sims: &[Simulation], cfg: &Config) -> String {
    let items: Vec<serde_json::Value> = events
        .iter()
        .zip(sims)
        .map(|(e, s)| {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("who_refused".into(), side_text(e.side, e.source).into());
                o.insert("advice".into(), advice(e).into());
                o.insert(
                    "simulation".into(),
                    serde_json::to_value(s).unwrap_or_default(),
                );
                o.insert("findings".into(), findings_json(&cfg.relevant(e, s)));
            }
            v
        })
        .collect();
    let v = serde_json::json!({
        "version": 1,
        "mode": "events",
        "stats": st,
        "configuration": config_json(cfg),
        "events": items,
    });
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}

pub fn groups_json(st: &Stats, view: &GroupsView, cfg: &Config, top: usize) -> String {
    let items: Vec<serde_json::Value> = view
        .rows()
        .map(|(g, e, s)| {
            serde_json::json!({
                "cause": e.cause,
                "source": g.key.source,
                "side": g.key.side,
                "auth": g.key.auth,
                "title": group_title(g, e),
                "count": g.count,
                "first": g.first.as_ref().map(|f| f.0.display()),
                "last": g.last.as_ref().map(|l| l.0.display()),
                "top_clients": g.clients.top(top),
                "top_recipients": g.recipients.top(top),
                "top_users": g.users.top(top),
                "services": g.programs.top(top),
                "approximate": g.clients.pruned || g.recipients.pruned,
                "example": e,
                "advice": advice(e),
                "simulation": s,
                "findings": findings_json(&cfg.relevant(e, s)),
            })
        })
        .collect();
    let v = serde_json::json!({
        "version": 1,
        "mode": "summary",
        "stats": st,
        "configuration": config_json(cfg),
        "groups": items,
    });
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}
