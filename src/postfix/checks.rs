//! Postfix rules PF001-PF012 over one instance's parsed files and effective configuration.

use std::collections::{HashMap, HashSet};

use super::expand::{self, ExpandError};
use super::model::Model;
use super::params::{self, show_version};
use super::parse::{ProblemKind, Span};
use super::syntax::{commented_header, has_byte, yn};
use crate::context::Context;
use crate::finding::{Finding, Fix, Mta, Severity};
use crate::source::SourceFile;

pub fn run(ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    syntax(m, f);
    hash_in_value(m, f);
    super::restrictions::run(m, f);
    super::addr_lint::run(m, f);
    super::class_override::run(m, f);
    duplicates(m, f);
    unknown_params(m, f);
    undefined_refs(m, f);
    master_fields(m, f);
    short_override_blanks(m, f);
    orphaned_overrides(m, f);
    deprecated(ctx, m, f);
    expansion(m, f);
    relay(ctx, m, f);
    super::audit::run(ctx, m, f);
    super::ports::run(ctx, m, f);
}

// ------------------------------------------------------------ PF101 (trust too broad)

/// mynetworks (or mynetworks_style = class) trusting much of the internet, and SASL without
/// `noanonymous`: both let strangers relay although the restriction lists look right.
fn broad_trust(ctx: &Context, m: &Model, si: usize, f: &mut Vec<Finding>) {
    let Some(svc) = m.services().get(si) else {
        return;
    };
    let scope = m.scope(Some(si));
    let locate = |name: &str| -> Option<crate::finding::Location> {
        let e = scope.get(name)?;
        let file = e.origin.file?;
        let src = ctx.source(&file)?;
        Some(src.line_location(e.origin.line))
    };
    // Explicitly set (main.cf or this listener's -o)? Asked without computing the default:
    // the default mynetworks of a live system costs a postconf run.
    let set =
        |name: &str| m.main_entry(name).is_some() || svc.overrides.iter().any(|o| o.name == name);
    use crate::relay::{ClientClass, RecipientClass, Verdict};
    // Only a real problem where that kind of client may relay on this listener.
    let relays = |cc: ClientClass| {
        super::policy::evaluate(
            m,
            si,
            super::policy::Client::of(cc),
            RecipientClass::External,
            "someone@external.example",
        )
        .result
            == Verdict::Accept
    };
    let mut reasons = Vec::new();
    if !relays(ClientClass::Trusted) {
        // Trusted clients cannot relay here, so a broad mynetworks does not open it.
    } else if set("mynetworks") {
        for n in super::syntax::list_items(&scope.value("mynetworks")) {
            let n = n.replace(['[', ']'], "");
            if let Ok(net) = n.parse::<ipnet::IpNet>() {
                let wide = match net {
                    ipnet::IpNet::V4(v) => v.prefix_len() < 8,
                    ipnet::IpNet::V6(v) => v.prefix_len() < 16,
                };
                if wide {
                    reasons.push((
                        "mynetworks",
                        format!("mynetworks contains {n}, so practically every client counts as trusted and permit_mynetworks lets it relay"),
                    ));
                }
            }
        }
    } else if scope.value("mynetworks_style") == "class" {
        reasons.push((
            "mynetworks_style",
            "mynetworks_style = class trusts the whole class A/B/C network of every interface, often thousands of foreign hosts".to_string(),
        ));
    }
    if super::policy::sasl_enabled(m, si)
        && relays(ClientClass::Authenticated)
        && !super::syntax::list_items(&scope.value("smtpd_sasl_security_options"))
            .iter()
            .any(|o| o == "noanonymous")
    {
        reasons.push((
            "smtpd_sasl_security_options",
            "smtpd_sasl_security_options lacks noanonymous, so anyone can log in anonymously and permit_sasl_authenticated lets them relay".to_string(),
        ));
    }
    for (param, why) in reasons {
        let mut fd = Finding::new(
            "PF101",
            Mta::Postfix,
            format!(
                "open relay on listener {}: {why}; spammers find such servers within hours and the server's IP lands on blocklists",
                svc.name()
            ),
        )
        .service(svc.id());
        if let Some(l) = locate(param) {
            fd = fd.at(l);
        }
        f.push(super::relay_rules::bind_loopback_fix(m, si, fd));
    }
}

/// The level to suggest when an unset compatibility_level (level 0) is why smtpd dies: the
/// relay list is the built-in default, which is empty below level 1 (postconf -d
/// smtpd_relay_restrictions; COMPATIBILITY_README). Verified with Postfix 3.7: a main.cf
/// without compatibility_level and without reject_unauth_destination in
/// smtpd_recipient_restrictions makes smtpd log the safety-check fatal on every connection.
fn compat_unset_cause(m: &Model, si: usize) -> Option<String> {
    let scope = m.scope(Some(si));
    let relay_default = scope
        .get("smtpd_relay_restrictions")
        .is_none_or(|e| e.origin.file.is_none());
    let level_set = scope
        .get("compatibility_level")
        .is_some_and(|e| e.origin.file.is_some());
    let level0 = scope
        .value("compatibility_level")
        .trim()
        .parse::<f64>()
        .is_ok_and(|l| l < 1.0);
    if !relay_default || level_set || !level0 {
        return None;
    }
    // The level this version's own main.cf ships with and its startup warning asks for
    // (LAST_COMPAT_LEVEL in src/global/mail_params.h: 2 for 3.0-3.5, 3.6 for 3.6-3.10, 3.11).
    let asked = super::upgrade::asked_level(m.version()).unwrap_or((2, 0, 0));
    Some(super::upgrade::show_level(asked))
}

// ------------------------------------------------------------ PF104

/// SASL without TLS-only authentication sends passwords in clear; `encrypt` on the public
/// port-25 listener refuses mail from MTAs that do not do STARTTLS.
fn plaintext_auth(ctx: &Context, m: &Model, si: usize, sasl: bool, f: &mut Vec<Finding>) {
    let Some(svc) = m.services().get(si) else {
        return;
    };
    let scope = m.scope(Some(si));
    let yes = |n: &str| scope.value(n).eq_ignore_ascii_case("yes");
    let level = scope.value("smtpd_tls_security_level");
    let wrapper = yes("smtpd_tls_wrappermode");
    let tls_only = yes("smtpd_tls_auth_only") || level == "encrypt" || wrapper;
    let locate = |name: &str| -> Option<crate::finding::Location> {
        let e = scope.get(name)?;
        let file = e.origin.file?;
        let src = ctx.source(&file)?;
        Some(src.line_location(e.origin.line))
    };
    let fallback = || {
        m.master
            .as_ref()
            .map(|mm| mm.source.line_location(svc.line))
    };
    if sasl && !tls_only {
        let mut fd = Finding::new(
            "PF104",
            Mta::Postfix,
            format!(
                "listener {} offers SASL AUTH before TLS (smtpd_tls_auth_only = no, smtpd_tls_security_level = {}, no wrapper mode): mail clients may send user names and passwords in clear text, readable by anyone on the path",
                svc.name(),
                if level.is_empty() { "none".to_string() } else { level.clone() }
            ),
        )
        .service(svc.id());
        // A master.cf `-o smtpd_tls_auth_only=no` undoing main.cf's setting is the line to
        // change, not main.cf.
        let undone = scope.get("smtpd_tls_auth_only").filter(|e| {
            e.origin.kind == super::model::OriginKind::MasterOverride
                && !e.value.as_deref().unwrap_or("").eq_ignore_ascii_case("yes")
        });
        let main_yes = m
            .scope(None)
            .value("smtpd_tls_auth_only")
            .eq_ignore_ascii_case("yes");
        if undone.is_some() && main_yes {
            fd = fd.help(format!(
                "Remove `-o smtpd_tls_auth_only=no` from listener {} (main.cf's smtpd_tls_auth_only = yes then applies), or use `-o smtpd_tls_security_level=encrypt`.",
                svc.name()
            ));
            if let Some(l) = locate("smtpd_tls_auth_only").or_else(fallback) {
                fd = fd.at(l);
            }
        } else {
            fd = fd.help("Set `smtpd_tls_auth_only = yes` (or `-o smtpd_tls_security_level=encrypt` on the submission listener).");
            if let Some(l) = locate("smtpd_sasl_auth_enable").or_else(fallback) {
                fd = fd.at(l);
            }
        }
        f.push(fd);
    }
    if svc.name() == "smtp" && svc.kind() == "inet" && level == "encrypt" {
        let mut fd = Finding::new(
            "PF104",
            Mta::Postfix,
            "the public port-25 listener smtp requires TLS (smtpd_tls_security_level = encrypt): MTAs that do not use STARTTLS get `530 5.7.0 Must issue a STARTTLS command first` and their mail is refused (RFC 3207 forbids requiring TLS on a publicly referenced MX)".to_string(),
        )
        .service(svc.id());
        if let Some(l) = locate("smtpd_tls_security_level").or_else(fallback) {
            fd = fd.at(l);
        }
        f.push(fd);
    }
}

// ------------------------------------------------------------ PF101-PF103 (relay decisions)

/// Where a decision's deciding step is: its file:line, else the listener's master.cf line.
fn decision_location(
    ctx: &Context,
    m: &Model,
    si: usize,
    step: Option<&crate::relay::TraceStep>,
) -> Option<crate::finding::Location> {
    if let Some(st) = step.filter(|s| s.line > 0) {
        if let Some(src) = ctx.source(&st.file) {
            return Some(src.line_location(st.line));
        }
    }
    let master = m.master.as_ref()?;
    let svc = m.services().get(si)?;
    Some(master.source.line_location(svc.line))
}

fn relay(ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    if m.main.is_none() {
        return;
    }
    let first = f.len();
    relay_listeners(ctx, m, f);
    super::relay_rules::xclient_hosts(ctx, m, f);
    // A main.cf cause shared by several listeners (an unset compatibility_level, the Dovecot
    // socket path) is reported per listener, but its edit must be offered once: fix::plan
    // would apply two identical insertions at the same place twice.
    let mut seen: HashSet<(std::path::PathBuf, usize, usize, String)> = HashSet::new();
    for fd in f.iter_mut().skip(first) {
        let Some(fix) = &fd.fix else { continue };
        let keys: Vec<_> = fix
            .edits
            .iter()
            .map(|e| (e.real_file.clone(), e.start, e.end, e.replacement.clone()))
            .collect();
        if keys.iter().all(|k| seen.contains(k)) {
            fd.fix = None;
        } else {
            seen.extend(keys);
        }
    }
}

fn relay_listeners(ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    use super::policy::{self, Client};
    use crate::relay::{ClientClass, RecipientClass, Verdict};
    for si in m.smtpd_listeners() {
        let Some(svc) = m.services().get(si) else {
            continue;
        };
        let l = Listener {
            si,
            id: svc.id(),
            name: svc.name().to_string(),
        };
        let domains = policy::sample_domains(m, si);
        let ext = domains
            .iter()
            .find(|(c, _)| *c == RecipientClass::External)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| "external.example".into());
        let rcpt = format!("someone@{ext}");
        let stranger = policy::evaluate(
            m,
            si,
            Client::of(ClientClass::Stranger),
            RecipientClass::External,
            &rcpt,
        );
        // PF103 is the relay safety check; a listener that dies on a stray master.cf
        // argument instead is PF008's, whose restrictions may well be safe.
        if stranger.result == Verdict::Unavailable && policy::stray_argument(m, si).is_none() {
            f.push(smtpd_unavailable(ctx, m, &l, &stranger));
        }
        // A listener only loopback clients can reach is no relay for strangers on the
        // internet (content-filter re-injection ports, inet_interfaces = loopback-only).
        let reachable = !super::relay_rules::loopback_only(m, si);
        let sasl = policy::sasl_enabled(m, si);
        if stranger.result == Verdict::Unavailable {
            // smtpd dies on every connection (PF103): no relay decision to judge, but what
            // the listener would do once it runs (plaintext AUTH, the SASL socket) still
            // needs fixing, and one finding must not hide another.
            super::relay_rules::dovecot_sasl(ctx, m, si, f);
            if reachable {
                plaintext_auth(ctx, m, si, sasl, f);
            }
            continue;
        }
        if reachable {
            super::relay_rules::relay_domains_everything(ctx, m, si, f);
            super::relay_rules::inbound_refused(ctx, m, si, f);
        }
        super::relay_rules::dovecot_sasl(ctx, m, si, f);
        if stranger.result == Verdict::Accept && reachable {
            f.push(open_relay(ctx, m, &l, &rcpt, &stranger));
        }
        if reachable {
            broad_trust(ctx, m, si, f);
        }
        // Authenticated users must be able to relay where the listener is meant for them.
        // Passwords sent to a loopback-only listener never cross a network.
        if reachable {
            plaintext_auth(ctx, m, si, sasl, f);
        }
        if !meant_for_login(m, &l, sasl) {
            continue;
        }
        // A loopback-only listener (content-filter re-injection such as 127.0.0.1:10025) is
        // not where mail clients submit, unless its own -o lines enable SASL. An -o that only
        // follows a commented-out service header there is PF009's finding, not intent.
        let sasl_meant = sasl_here(m, si) && !override_orphaned(m, si, "smtpd_sasl_auth_enable");
        if !(reachable || sasl_meant) {
            continue;
        }
        let auth = policy::evaluate(
            m,
            si,
            Client::of(ClientClass::Authenticated),
            RecipientClass::External,
            &rcpt,
        );
        if matches!(auth.result, Verdict::Reject | Verdict::Defer) {
            f.push(login_refused(ctx, m, &l, sasl, &auth));
        }
    }
}

/// The smtpd listener relay_listeners is judging.
struct Listener {
    si: usize,
    id: String,
    name: String,
}

/// PF103: smtpd has no working relay restriction and stops on every connection.
fn smtpd_unavailable(
    ctx: &Context,
    m: &Model,
    l: &Listener,
    stranger: &crate::relay::Decision,
) -> Finding {
    let (si, name) = (l.si, &l.name);
    let loc = decision_location(ctx, m, si, stranger.trace.first());
    let fatal = stranger.text.as_deref().unwrap_or("fatal");
    let mut fd = match compat_unset_cause(m, si) {
        Some(level) => Finding::new(
            "PF103",
            Mta::Postfix,
            format!(
                "on listener {name}, compatibility_level is not set, so {} runs at level 0, where the built-in smtpd_relay_restrictions is empty, and smtpd_recipient_restrictions has no working reject_unauth_destination either: smtpd stops with `{fatal}` each time master starts it, so clients of this listener connect but never get a greeting and no mail is accepted",
                m.version_described()
            ),
        )
        .help(format!("Set `compatibility_level = {level}` (the level this Postfix's own main.cf ships with), which makes the default smtpd_relay_restrictions `permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination`; or add reject_unauth_destination to smtpd_recipient_restrictions."))
        .fix(Fix::review(
            format!("add `compatibility_level = {level}` at the top of main.cf (this also changes the other compatibility defaults, e.g. relay_domains and mynetworks_style at level 2)"),
            m.main
                .as_ref()
                .map(|mm| vec![mm.source.edit(0..0, format!("compatibility_level = {level}\n"))])
                .unwrap_or_default(),
        )),
        None => Finding::new(
            "PF103",
            Mta::Postfix,
            format!(
                "on listener {name}, neither smtpd_relay_restrictions nor smtpd_recipient_restrictions contains a working reject_unauth_destination (or defer_unauth_destination, reject, defer): smtpd stops with `{fatal}` each time master starts it, so clients of this listener connect but never get a greeting and no mail is accepted"
            ),
        )
        .help("Add reject_unauth_destination after the permits, e.g. `smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination`."),
    }
    .service(&l.id);
    if let Some(l) = loc {
        fd = fd.at(l);
    }
    fd
}

/// PF101: a stranger may relay through this listener.
fn open_relay(
    ctx: &Context,
    m: &Model,
    l: &Listener,
    rcpt: &str,
    stranger: &crate::relay::Decision,
) -> Finding {
    let (si, name) = (l.si, &l.name);
    let permit = stranger.trace.iter().rev().find(|s| s.effect == "permit");
    let why = match permit {
        Some(p) => format!("`{}` permits it", p.entry),
        None => "no restriction refuses it".into(),
    };
    let mut fd = Finding::new(
        "PF101",
        Mta::Postfix,
        format!(
            "open relay on listener {name}: a client outside mynetworks that does not log in gets `250 2.1.5 Ok` for RCPT TO:<{rcpt}> ({why}), so anyone can send mail anywhere through this server; spammers find such servers within hours and the server's IP lands on blocklists"
        ),
    )
    .service(&l.id)
    .help("Make the relay decision end in reject_unauth_destination: `smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination`, and put permits that depend on the client before it only if they are meant to allow relaying.");
    if let Some(l) = decision_location(ctx, m, si, permit) {
        fd = fd.at(l);
    }
    super::relay_rules::bind_loopback_fix(m, si, fd)
}

/// Whether the listener is meant for logged-in users: its own -o lines enable SASL or name
/// permit_sasl_authenticated, it is a submission port, or SASL is on and its lists name
/// permit_sasl_authenticated.
fn meant_for_login(m: &Model, l: &Listener, sasl: bool) -> bool {
    let (si, name) = (l.si, &l.name);
    let scope = m.scope(Some(si));
    let mentions_sasl = [
        "smtpd_relay_restrictions",
        "smtpd_recipient_restrictions",
        "smtpd_client_restrictions",
    ]
    .iter()
    .any(|l| {
        // Only a list set for this listener (-o) shows it is meant for logged-in users;
        // main.cf's global lists name permit_sasl_authenticated for all listeners,
        // including port 25 where SASL is usually off on purpose.
        scope.get(l).is_some_and(|e| {
            e.origin.kind == super::model::OriginKind::MasterOverride
                && e.value.is_ok_and(|v| {
                    super::syntax::list_items(&v)
                        .iter()
                        .any(|i| i == "permit_sasl_authenticated")
                })
        })
    });
    // A listener is meant for logged-in users when its own -o lines enable SASL or name
    // permit_sasl_authenticated, or it is a submission port. SASL switched on globally in
    // main.cf alone does not make an internal re-injection port a submission service.
    let sasl_here = sasl_here(m, si);
    let submission_port = matches!(
        name.rsplit(':').next().unwrap_or(""),
        "submission" | "submissions" | "smtps" | "587" | "465"
    );
    // SASL enabled on a listener whose effective lists name permit_sasl_authenticated
    // (main.cf's or its own) means users log in there, port 25 included: small hosting
    // servers take their users' mail on 25, and a permit_sasl_authenticated after
    // reject_unauth_destination is their "authentication enabled, still Relay access
    // denied".
    let sasl_listed = sasl
        && super::syntax::RCPT_LISTS.iter().any(|l| {
            super::syntax::list_items(&scope.value(l))
                .iter()
                .any(|i| i == "permit_sasl_authenticated")
        });
    sasl_here || mentions_sasl || sasl_listed || (sasl && submission_port)
}

/// The listener's own -o lines switch SASL on.
fn sasl_here(m: &Model, si: usize) -> bool {
    m.scope(Some(si))
        .get("smtpd_sasl_auth_enable")
        .is_some_and(|e| {
            e.origin.kind == super::model::OriginKind::MasterOverride
                && e.value.is_ok_and(|v| v.eq_ignore_ascii_case("yes"))
        })
}

/// PF102: users who log in are still refused relaying.
fn login_refused(
    ctx: &Context,
    m: &Model,
    l: &Listener,
    sasl: bool,
    auth: &crate::relay::Decision,
) -> Finding {
    let (si, name) = (l.si, &l.name);
    let step = auth
        .trace
        .iter()
        .rev()
        .find(|s| s.effect == "reject" || s.effect == "defer");
    let cause = if !sasl {
        format!(
            "SASL is not enabled on this listener (smtpd_sasl_auth_enable = no), so permit_sasl_authenticated never matches and `{}` refuses them",
            step.map(|s| s.entry.as_str()).unwrap_or("the relay restriction")
        )
    } else {
        format!(
            "`{}` refuses them before permit_sasl_authenticated is reached",
            step.map(|s| s.entry.as_str()).unwrap_or("a restriction")
        )
    };
    // The list and entry that refuse: "smtpd_client_restrictions: reject" etc.
    let (list, entry) = step
        .and_then(|s| s.entry.split_once(": "))
        .unwrap_or(("the relay list", "reject_unauth_destination"));
    let help = if !sasl {
        "Enable SASL on this listener (`-o smtpd_sasl_auth_enable=yes`), or stop relying on permit_sasl_authenticated here.".to_string()
    } else if list == "smtpd_relay_restrictions" || list == "smtpd_recipient_restrictions" {
        format!("Put permit_sasl_authenticated before `{entry}` (and before any reject) in {list}.")
    } else {
        format!("The refusal comes from {list}, which smtpd evaluates before the relay decision: put permit_sasl_authenticated before `{entry}` in {list}.")
    };
    let mut fd = Finding::new(
        "PF102",
        Mta::Postfix,
        format!(
            "on listener {name}, users who log in still get `{}` when they send to an external domain: {cause}",
            auth.reply_line()
        ),
    )
    .service(&l.id)
    .help(help);
    if let Some(l) = decision_location(ctx, m, si, step) {
        fd = fd.at(l);
    }
    fd
}

fn at(src: &SourceFile, s: Span) -> crate::finding::Location {
    src.location(s.start, s.end)
}

/// End of the line that contains `pos`, including its newline.
fn line_end_incl(text: &str, pos: usize) -> usize {
    match text.get(pos..).and_then(|t| t.find('\n')) {
        Some(i) => pos + i + 1,
        None => text.len(),
    }
}

/// A value shortened for a message, with control characters (a raw newline or tab from the
/// line, a pasted log's escape sequences) written as escapes so a finding stays one line.
fn short(v: &str) -> String {
    let v = v.trim();
    let shown: String = if v.chars().count() > 70 {
        let s: String = v.chars().take(67).collect();
        format!("{s}...")
    } else {
        v.to_string()
    };
    if shown.chars().any(char::is_control) {
        shown
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().collect()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        shown
    }
}

// ------------------------------------------------------------ PF001, PF002

fn syntax(m: &Model, f: &mut Vec<Finding>) {
    let Some(main) = &m.main else { return };
    let src = &main.source;
    // Postfix stops at the first fatal line; report it, and count the rest (a log or dump
    // pasted into main.cf would otherwise give one finding per line).
    let fatal_count = main
        .parsed
        .problems
        .iter()
        .filter(|p| p.kind != ProblemKind::IndentedFirstLine)
        .count();
    let mut fatal_seen = false;
    for p in &main.parsed.problems {
        let text = p.span.text(&src.text).trim_end();
        match p.kind {
            ProblemKind::MissingEquals | ProblemKind::MissingName if fatal_seen => {}
            ProblemKind::MissingEquals | ProblemKind::MissingName => {
                fatal_seen = true;
                let more = if fatal_count > 1 {
                    format!(
                        " ({} more lines after it are not `name = value` either)",
                        fatal_count - 1
                    )
                } else {
                    String::new()
                };
                let what = if p.kind == ProblemKind::MissingName {
                    "missing attribute name"
                } else {
                    "missing '=' after attribute name"
                };
                f.push(
                    Finding::new(
                        "PF001",
                        Mta::Postfix,
                        format!(
                            "`{}` is not `name = value`: every Postfix command (postfix start, sendmail, postqueue, the daemons) stops with `fatal: {}, line {}: {what}`, so no mail is received or sent{more}",
                            short(text),
                            src.display.display(),
                            p.line
                        ),
                    )
                    .at(at(src, p.span))
                    .help("Add the `=` (`name = value`), or make the line a comment by starting it with `#`."),
                );
            }
            ProblemKind::IndentedFirstLine => {
                let start = src.line_start(p.line);
                f.push(
                    Finding::new(
                        "PF002",
                        Mta::Postfix,
                        format!(
                            "indented text before the first parameter (`{}`): Postfix warns `logical line must not start with whitespace` and ignores it",
                            short(text)
                        ),
                    )
                    .at(at(src, p.span))
                    .help("A line that starts with whitespace continues the previous line; there is none here. Make it a comment or remove the indentation.")
                    .fix(Fix::safe(
                        "comment out the ignored line",
                        vec![src.edit(start..start, "#")],
                    )),
                );
            }
        }
    }
}

// ------------------------------------------------------------ PF003

/// The restriction class names main.cf declares (their values are restriction lists too).
fn restriction_classes(m: &Model) -> HashSet<&str> {
    m.main_entry("smtpd_restriction_classes")
        .map(|e| {
            e.value
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn hash_in_value(m: &Model, f: &mut Vec<Finding>) {
    let Some(main) = &m.main else { return };
    let src = &main.source;
    let text = src.text.as_str();
    let classes = restriction_classes(m);
    for e in &main.parsed.entries {
        if !has_byte(&e.value, b'#') {
            continue;
        }
        let words: Vec<Span> = e.words(text).collect();
        // Every `#` outside a comment already found starts one: a comment runs to the last
        // word on the same physical line; later continuation lines are value again.
        let mut comments: Vec<(usize, usize, usize)> = Vec::new(); // (delete from, start, end)
        let mut k = 0;
        while k < words.len() {
            let hash = words[k];
            if !text[hash.start..].starts_with('#') {
                k += 1;
                continue;
            }
            let mut end = hash.end;
            let mut next = k + 1;
            while let Some(w) = words.get(next) {
                if text[end..w.start].contains('\n') {
                    break;
                }
                end = w.end;
                next += 1;
            }
            let del_start = match k.checked_sub(1).and_then(|i| words.get(i)) {
                Some(prev) if !text[prev.end..hash.start].contains('\n') => prev.end,
                _ => hash.start,
            };
            comments.push((del_start, hash.start, end));
            k = next;
        }
        if comments.is_empty() {
            continue;
        }
        // One fix per parameter moves every comment: the findings share it, so whichever is
        // applied first removes them all and the others (same insertion point) are skipped.
        let moved: String = comments
            .iter()
            .map(|&(_, s, e)| format!("{}\n", &text[s..e]))
            .collect();
        let mut edits = vec![src.edit(e.span.start..e.span.start, moved)];
        edits.extend(comments.iter().map(|&(d, _, e)| src.edit(d..e, "")));
        let fix = Fix::safe(
            if comments.len() == 1 {
                format!(
                    "move `{}` to its own line above {}",
                    short(&text[comments[0].1..comments[0].2]),
                    e.name
                )
            } else {
                format!(
                    "move the {} `#` comments of {} to their own lines above it",
                    comments.len(),
                    e.name
                )
            },
            edits,
        );
        // smtpd_*_restrictions and restriction classes: smtpd looks `#` up as a restriction.
        let restriction_list = (e.name.starts_with("smtpd_") && e.name.ends_with("_restrictions"))
            || classes.contains(&e.name.as_str());
        for &(_, start, end) in &comments {
            let comment = &text[start..end];
            let first = comment.split_whitespace().next().unwrap_or("#");
            let mut fd = if restriction_list {
                Finding::new(
                    "PF003",
                    Mta::Postfix,
                    format!(
                        "`{comment}` is not a comment: `#` starts a comment only at the beginning of a line, so {} gains the restriction `{first}`; smtpd logs `unknown smtpd restriction: \"{first}\"` and answers `451 4.3.5 Server configuration error` to every recipient whose evaluation reaches it",
                        e.name
                    ),
                )
                .severity(Severity::Error)
                .help("Move the comment to its own line above the parameter (a line whose first non-blank character is `#`). Until then mail that is not permitted earlier in the list is deferred with 451.")
            } else if super::syntax::MATCH_LISTS.contains(&e.name.as_str()) {
                // match_list.c: the list ends at a word starting with `#` (2.8-3.7: `comment at
                // end of line is not supported`; 3.8+, mystrtokq_cw(): `#comment after other
                // text is not allowed`).
                let log = if m.version() >= (3, 8, 0) {
                    format!("{}: #comment after other text is not allowed", e.name)
                } else {
                    format!("{}: comment at end of line is not supported", e.name)
                };
                Finding::new(
                    "PF003",
                    Mta::Postfix,
                    format!(
                        "`{comment}` is not a comment: `#` starts a comment only at the beginning of a line; in the list {} Postfix logs `warning: {log}` and ignores everything from the `#` on, including any entries written after it",
                        e.name
                    ),
                )
                .help("Move the comment to its own line above the parameter.")
            } else {
                Finding::new(
                    "PF003",
                    Mta::Postfix,
                    format!(
                        "`{comment}` is not a comment: `#` starts a comment only at the beginning of a line, so Postfix reads {} as `{}` and every use of it sees the comment words as part of the value",
                        e.name,
                        short(&e.value)
                    ),
                )
                .help("Move the comment to its own line above the parameter.")
            };
            fd = fd.at(src.location(start, end)).fix(fix.clone());
            f.push(fd);
        }
    }
}

// ------------------------------------------------------------ PF004

fn duplicates(m: &Model, f: &mut Vec<Finding>) {
    let Some(main) = &m.main else { return };
    let src = &main.source;
    for e in &main.parsed.entries {
        let Some(last) = m.main_entry(&e.name) else {
            continue;
        };
        if last.span == e.span {
            continue;
        }
        let end = line_end_incl(&src.text, e.span.end);
        // Postfix warns only when the values differ (checked with postconf 3.7: an identical
        // repeat logs nothing); an identical copy is only a trap for the next edit.
        let same = last.value.trim() == e.value.trim();
        let (severity, message) = if same {
            (
                crate::finding::Severity::Info,
                format!(
                    "{} is set again, to the same value, on line {}: harmless today (Postfix does not even warn), but whoever next edits this line will see the change silently overridden by line {}",
                    e.name, last.line, last.line
                ),
            )
        } else {
            (
                crate::finding::Severity::Warning,
                format!(
                    "{} is set again on line {}: Postfix uses that later value (`{}`), logs `overriding earlier entry`, and ignores this one (`{}`)",
                    e.name,
                    last.line,
                    short(&last.value),
                    short(&e.value)
                ),
            )
        };
        f.push(
            Finding::new("PF004", Mta::Postfix, message)
            .severity(severity)
            .at(at(src, e.name_span))
            .help("Keep one definition. If this earlier value is the one you want, move it to the later line.")
            .fix(Fix::safe(
                format!("remove the overridden {} on line {}", e.name, e.line),
                vec![src.edit(e.span.start..end, "")],
            )),
        );
    }
}

// ------------------------------------------------------------ PF005

/// Names that are in use although Postfix has no such built-in parameter: referenced as
/// `$name`, restriction classes, per-service names (`relay_destination_concurrency_limit`)
/// and database client prefixes (`ldap:foo` -> `foo_server_host`). This is how postconf
/// decides what to warn about as `unused parameter`.
struct Used {
    names: HashSet<String>,
    prefixes: Vec<String>,
}

impl Used {
    fn collect(m: &Model) -> Used {
        let mut names = HashSet::new();
        let mut prefixes = Vec::new();
        let p = params::get();
        let scan = |v: &str, names: &mut HashSet<String>, prefixes: &mut Vec<String>| {
            if has_byte(v, b'$') {
                for (_, n) in expand::references(v) {
                    names.insert(n.to_string());
                }
            }
            // A `type:` of a database client: the word before a `:` (one SIMD scan for `:`,
            // then a look back at each, instead of six substring searches per value).
            let dbms = memchr::memchr_iter(b':', v.as_bytes()).any(|i| {
                let before = v[..i]
                    .rsplit(|c: char| c.is_whitespace() || c == ',')
                    .next()
                    .unwrap_or("");
                matches!(
                    before,
                    "ldap" | "mysql" | "pgsql" | "sqlite" | "memcache" | "mongodb"
                )
            });
            if dbms {
                for w in v.split(|c: char| c.is_whitespace() || c == ',') {
                    if let Some((ty, rest)) = w.split_once(':') {
                        if matches!(
                            ty,
                            "ldap" | "mysql" | "pgsql" | "sqlite" | "memcache" | "mongodb"
                        ) && !rest.contains('/')
                            && !rest.is_empty()
                        {
                            prefixes.push(format!("{rest}_"));
                        }
                    }
                }
            }
        };
        if let Some(main) = &m.main {
            for e in &main.parsed.entries {
                if !Model::is_raw(&e.name) {
                    scan(&e.value, &mut names, &mut prefixes);
                }
                if e.name == "smtpd_restriction_classes" {
                    for c in e.value.split(|c: char| c.is_whitespace() || c == ',') {
                        if !c.is_empty() {
                            names.insert(c.to_string());
                        }
                    }
                }
            }
        }
        for s in m.services() {
            for o in &s.overrides {
                scan(&o.value, &mut names, &mut prefixes);
            }
            for a in &s.other_args {
                scan(&a.text, &mut names, &mut prefixes);
            }
            for suf in &p.service_suffixes {
                names.insert(format!("{}_{suf}", s.name()));
            }
        }
        Used { names, prefixes }
    }

    fn contains(&self, name: &str) -> bool {
        self.names.contains(name) || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }
}

/// Known names bucketed by their first two bytes, so that suggesting a name for each of
/// thousands of unknown parameters stays cheap.
struct Suggester {
    buckets: HashMap<[u8; 2], Vec<&'static str>>,
}

impl Suggester {
    fn new() -> Suggester {
        let mut buckets: HashMap<[u8; 2], Vec<&'static str>> = HashMap::new();
        for n in params::get().names() {
            if let Some(k) = key(n) {
                buckets.entry(k).or_default().push(n);
            }
        }
        for v in buckets.values_mut() {
            v.sort_unstable();
        }
        Suggester { buckets }
    }

    fn closest(&self, name: &str) -> Option<&'static str> {
        let limit = if name.len() > 16 { 3 } else { 2 };
        let cands = self.buckets.get(&key(name)?)?;
        let mut best: Option<(usize, &'static str)> = None;
        for c in cands {
            if c.len().abs_diff(name.len()) > limit {
                continue;
            }
            let d = strsim::levenshtein(name, c);
            if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, c));
            }
        }
        best.map(|(_, c)| c)
    }
}

fn key(n: &str) -> Option<[u8; 2]> {
    let b = n.as_bytes();
    Some([*b.first()?, *b.get(1)?])
}

/// The program whose parameter `name` is, when `command` (a master.cf service's program)
/// does not read it: smtp(8)/lmtp(8) client parameters on smtpd(8) and the other way round
/// (postconf(5): smtp_* "Postfix SMTP client", smtpd_* "Postfix SMTP server").
fn not_read_by(name: &str, command: &str) -> Option<&'static str> {
    let client = name.starts_with("smtp_") || name.starts_with("lmtp_");
    match command {
        "smtpd" if client => Some("the SMTP/LMTP client (smtp(8), lmtp(8))"),
        "smtp" | "lmtp" if name.starts_with("smtpd_") => Some("the SMTP server (smtpd(8))"),
        _ => None,
    }
}

fn unknown_params(m: &Model, f: &mut Vec<Finding>) {
    let p = params::get();
    let used = Used::collect(m);
    let mut sugg: Option<Suggester> = None;
    // A name is a built-in of the version in use; newer names are checked against it.
    // postconf(5) of every release (rules/postfix-param-versions.toml) decides first: a name
    // documented only by newer releases is ignored by this one.
    let known = |name: &str| -> Result<(), Option<String>> {
        match p.catalogue.exists_in(name, m.version()) {
            Some(true) => return Ok(()),
            Some(false) => return Err(p.catalogue.needs(name, m.version())),
            None => {}
        }
        if p.defaults.contains_key(name) || p.legacy().contains(name) {
            return Ok(());
        }
        if let Some(n) = p.newer.iter().find(|n| n.name == name) {
            let since = params::parse_version(&n.since).unwrap_or(p.newest);
            return if m.version() >= since {
                Ok(())
            } else {
                Err(Some(n.since.clone()))
            };
        }
        Err(None)
    };
    let mut report = |src: &SourceFile,
                      name: &str,
                      name_span: Span,
                      where_: String,
                      defined_names: &dyn Fn(&str) -> bool,
                      svc: Option<&super::parse::Service>,
                      f: &mut Vec<Finding>| {
        let since = match known(name) {
            Ok(()) => return,
            Err(s) => s,
        };
        if used.contains(name) {
            return;
        }
        let mut msg = match &since {
            Some(v) => format!(
                "{name} {where_} needs Postfix {v}; this server runs {}, which ignores it (postconf warns `unused parameter`)",
                m.version_described()
            ),
            None => format!(
                "Postfix has no parameter {name} {where_}: it ignores the setting (postconf warns `unused parameter: {name}=...`), so it has no effect"
            ),
        };
        let mut finding = Finding::new("PF005", Mta::Postfix, String::new()).at(at(src, name_span));
        if since.is_none() {
            let s = sugg.get_or_insert_with(Suggester::new);
            let closest = s.closest(name);
            let foreign = closest.and_then(|c| svc.and_then(|v| not_read_by(c, v.command())));
            if let (Some(c), Some(other), Some(v)) = (closest, foreign, svc) {
                // Renaming would not make the setting work (review 7 F8): the closest name
                // belongs to another program.
                msg.push_str(&format!(
                    "; the closest name, {c}, is a parameter of {other}, which the {} service does not read",
                    v.command()
                ));
                finding = finding.help(if name.ends_with("_bind_address") && v.kind() == "inet" {
                    // master(5): an inet service name is [host:]port; it is where it listens.
                    if v.name().contains(':') {
                        format!("The address this service listens on is set by its service name ({}); remove this line.", v.name())
                    } else {
                        format!("The address this service listens on is set by its service name: `{}` has no host part, so it listens on inet_interfaces; write `host:{}` as the service name to listen on one address, and remove this line.", v.name(), v.name())
                    }
                } else {
                    "Remove the line, or check postconf(5) for the parameter this program reads.".to_string()
                });
            } else if let Some(c) = closest {
                msg.push_str(&format!("; did you mean {c}?"));
                let clash = defined_names(c);
                finding = finding
                    .help(format!("Rename it to {c}."))
                    // Never safe: the renamed setting starts to take effect (a misspelt
                    // smtpd_relay_restrictions that switches on a forgotten access map
                    // changes who may relay), and the closest name may be the wrong one.
                    .fix(Fix::review(
                        if clash {
                            format!("rename {name} to {c} (which is also set elsewhere: review which value should win)")
                        } else {
                            format!("rename {name} to {c}: the value then takes effect, review it first")
                        },
                        vec![src.edit(name_span.start..name_span.end, c)],
                    ));
            } else {
                finding = finding.help("Check the spelling against postconf(5); a parameter you define for your own use must be referenced as $name somewhere to count as used.");
            }
        }
        finding.message = msg;
        f.push(finding);
    };
    if let Some(main) = &m.main {
        let in_main = |n: &str| m.main_entry(n).is_some();
        for e in &main.parsed.entries {
            // Report each name once, at its effective entry.
            if m.main_entry(&e.name).is_some_and(|l| l.span == e.span) {
                report(
                    &main.source,
                    &e.name,
                    e.name_span,
                    "in main.cf".into(),
                    &in_main,
                    None,
                    f,
                );
            }
        }
    }
    if let Some(master) = &m.master {
        for s in m.services() {
            let in_service =
                |n: &str| s.overrides.iter().any(|o| o.name == n) || m.main_entry(n).is_some();
            for o in &s.overrides {
                if m.main_entry(&o.name).is_some() {
                    continue;
                }
                report(
                    &master.source,
                    &o.name,
                    o.name_span,
                    format!("(-o override of service {})", s.id()),
                    &in_service,
                    Some(s),
                    f,
                );
            }
        }
    }
}

// ------------------------------------------------------------ PF006

/// A `$name` reference and whether it is of the conditional kind (`${name?..}`, `${name:..}`),
/// which tests definedness on purpose.
fn plain_refs(text: &str) -> Vec<(usize, &str)> {
    expand::references(text)
        .into_iter()
        .filter(|(off, n)| {
            let after =
                off + if text[*off + 1..].starts_with(['{', '(']) {
                    2
                } else {
                    1
                } + n.len();
            !matches!(text.as_bytes().get(after), Some(b'?') | Some(b':'))
        })
        .collect()
}

fn undefined_refs(m: &Model, f: &mut Vec<Finding>) {
    let defined = |n: &str| m.raw(None, n).is_some();
    if let Some(main) = &m.main {
        let src = &main.source;
        for e in &main.parsed.entries {
            if Model::is_raw(&e.name) || !has_byte(&e.value, b'$') {
                continue;
            }
            let raw = e.value_span.text(&src.text);
            // Expanded once per entry, not once per reference (32k references were quadratic).
            let mut shown: Option<String> = None;
            for (off, n) in plain_refs(raw) {
                if defined(n) {
                    continue;
                }
                let shown = shown.get_or_insert_with(|| shown_value(&m.scope(None).value(&e.name)));
                let start = e.value_span.start + off;
                let len = if raw[off + 1..].starts_with(['{', '(']) {
                    n.len() + 3
                } else {
                    n.len() + 1
                };
                f.push(
                    Finding::new(
                        "PF006",
                        Mta::Postfix,
                        format!(
                            "${n} is not defined in main.cf and is not a Postfix parameter: it expands to nothing (postconf warns `undefined parameter: {n}`), so {} is {}{}",
                            e.name,
                            shown,
                            list_effect(&e.name)
                        ),
                    )
                    .at(src.location(start, start + len))
                    .help(format!("Define {n} in main.cf, or fix the name.")),
                );
            }
        }
    }
    if let Some(master) = &m.master {
        let src = &master.source;
        for (si, s) in m.services().iter().enumerate() {
            for o in &s.overrides {
                if Model::is_raw(&o.name) || !has_byte(&o.value, b'$') {
                    continue;
                }
                let raw = o.value_span.text(&src.text);
                let mut value: Option<String> = None;
                for (off, n) in plain_refs(raw) {
                    if defined(n) || s.overrides.iter().any(|x| x.name == n) {
                        continue;
                    }
                    let start = o.value_span.start + off;
                    let len = if raw[off + 1..].starts_with(['{', '(']) {
                        n.len() + 3
                    } else {
                        n.len() + 1
                    };
                    let value = value.get_or_insert_with(|| m.scope(Some(si)).value(&o.name));
                    f.push(
                        Finding::new(
                            "PF006",
                            Mta::Postfix,
                            format!(
                                "${n} is not defined in main.cf: it expands to nothing (postconf warns `undefined parameter: {n}`), so on service {} {} is {}{}",
                                s.id(),
                                o.name,
                                shown_value(value),
                                list_effect(&o.name)
                            ),
                        )
                        .service(s.id())
                        .at(src.location(start, start + len))
                        .help(format!(
                            "Define {n} in main.cf (e.g. `{n} = permit_sasl_authenticated, reject`), or put the value into the -o directly."
                        )),
                    );
                }
            }
        }
    }
}

/// What an empty or partial value of a restriction list means to clients.
fn shown_value(v: &str) -> String {
    if v.trim().is_empty() {
        "empty".into()
    } else {
        format!("`{}`", short(v))
    }
}

fn list_effect(name: &str) -> &'static str {
    if name == "smtpd_relay_restrictions" || name == "smtpd_recipient_restrictions" {
        ": with the relay and recipient lists both lacking reject_unauth_destination smtpd refuses to run (`fatal: ... specify at least one working instance of: reject_unauth_destination, ...`) and clients get no greeting"
    } else if name.starts_with("smtpd_") && name.ends_with("_restrictions") {
        ": an empty list permits every client at that stage, so the restrictions meant for it do not apply"
    } else {
        ""
    }
}

// ------------------------------------------------------------ PF007

fn master_fields(m: &Model, f: &mut Vec<Finding>) {
    let Some(master) = &m.master else { return };
    let src = &master.source;
    // PF007 at `span`: a master.cf entry Postfix refuses to start with.
    let fatal = |line: usize, what: String, span: Span| {
        Finding::new(
            "PF007",
            Mta::Postfix,
            format!(
                "{what}: `postfix start` and `postfix reload` stop with `fatal: ... master.cf: line {line}: ...` (the same check as postconf -M), so while this entry is broken no Postfix service (SMTP, delivery, queue) runs"
            ),
        )
        .at(at(src, span))
    };
    for s in m.services() {
        if s.fields.len() < 8 {
            f.push(fatal(
                s.line,
                format!(
                    "service entry `{}` has {} fields; master.cf needs 8 (service type private unpriv chroot wakeup maxproc command)",
                    short(s.span.text(&src.text).lines().next().unwrap_or("")),
                    s.fields.len()
                ),
                s.span,
            ));
            continue;
        }
        let checks: [FieldCheck; 6] = [
            (1, "type", |v| {
                matches!(v, "inet" | "unix" | "unix-dgram" | "fifo" | "pass")
            }),
            (2, "private", yn),
            (3, "unpriv", yn),
            (4, "chroot", yn),
            (5, "wakeup", |v| {
                v == "-" || {
                    let d = v.strip_suffix('?').unwrap_or(v);
                    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
                }
            }),
            (6, "maxproc", |v| {
                v == "-" || (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            }),
        ];
        for (i, what, ok) in checks {
            let Some(fd) = s.fields.get(i) else { continue };
            if ok(&fd.text) {
                continue;
            }
            let expect = match what {
                "type" => "inet, unix, unix-dgram, fifo or pass",
                "wakeup" => "`-` or a number of seconds, optionally followed by `?`",
                "maxproc" => "`-` or a number",
                _ => "`y`, `n` or `-`",
            };
            f.push(fatal(
                s.line,
                format!(
                    "invalid {what} field `{}` in service {} (expected {expect})",
                    fd.text,
                    s.name()
                ),
                fd.span,
            ));
        }
    }
}

/// (field index, field name, validity test) of a master.cf service column.
type FieldCheck = (usize, &'static str, fn(&str) -> bool);

// ------------------------------------------------------------ PF008

/// Daemons that take service arguments after their options (pipe's flags=/user=/argv=).
fn takes_args(command: &str) -> bool {
    matches!(command, "pipe" | "spawn" | "local" | "virtual")
}

fn short_override_blanks(m: &Model, f: &mut Vec<Finding>) {
    let Some(master) = &m.master else { return };
    let src = &master.source;
    for s in m.services() {
        if !s.complete() || takes_args(s.command()) {
            continue;
        }
        let Some(first) = s.other_args.iter().position(|a| !a.text.starts_with('-')) else {
            continue;
        };
        let stray_start = &s.other_args[first];
        // The override right before the stray argument, if any.
        let Some(o) = s
            .overrides
            .iter()
            .rev()
            .find(|o| o.span.end <= stray_start.span.start)
            .filter(|o| !o.long)
        else {
            continue;
        };
        // The stray words: up to the next option-looking argument.
        let strays: Vec<_> = s.other_args[first..]
            .iter()
            .take_while(|a| !a.text.starts_with('-'))
            .collect();
        let lost: Vec<&str> = strays.iter().map(|a| a.text.as_str()).collect();
        let ignored_after = s.other_args[first..]
            .iter()
            .any(|a| a.text.starts_with("-o"));
        let mut edits = Vec::new();
        let mut prev_end = o.span.end;
        let mut prev_text = o.value.clone();
        for a in &strays {
            let sep = if prev_text.ends_with(',') || a.text.starts_with(',') {
                ""
            } else {
                ","
            };
            edits.push(src.edit(prev_end..a.span.start, sep));
            prev_end = a.span.end;
            prev_text = a.text.clone();
        }
        let joined = format!(
            "{}{}",
            o.value,
            strays
                .iter()
                .map(|a| a.text.as_str())
                .fold(String::new(), |mut acc, w| {
                    if !(acc.ends_with(',') || (acc.is_empty() && o.value.ends_with(','))) {
                        acc.push(',');
                    }
                    acc.push_str(w);
                    acc
                })
        );
        f.push(
            Finding::new(
                "PF008",
                Mta::Postfix,
                format!(
                    "the short form `-o {}=...` ends at the first blank: {} on service {} gets `{}`, and `{}` becomes a command-line argument; {} stops with `fatal: unexpected command-line argument: {}` on every connection, so clients of this listener see the connection close{}",
                    o.name,
                    o.name,
                    s.id(),
                    o.value,
                    lost.join(" "),
                    s.command(),
                    lost.first().copied().unwrap_or(""),
                    if ignored_after { " (and every -o after it is ignored)" } else { "" }
                ),
            )
            .service(s.id())
            .at(src.location(o.span.start, stray_start.span.end))
            .help(format!(
                "Write the list without blanks (`-o {}={joined}`) or use the long form `-o {{ {} = ... }}` (Postfix 3.0+).",
                o.name, o.name
            ))
            .fix(Fix::safe(
                format!("join the value without blanks: -o {}={joined}", o.name),
                edits,
            )),
        );
    }
}

// ------------------------------------------------------------ PF009

/// Whether parameter `name` of listener `si` is set by an -o line that follows a
/// commented-out service header (PF009): the line belonged to the disabled service.
fn override_orphaned(m: &Model, si: usize, name: &str) -> bool {
    let (Some(svc), Some(mm)) = (m.services().get(si), m.master.as_ref()) else {
        return false;
    };
    let Some(e) = m.scope(Some(si)).get(name) else {
        return false;
    };
    if e.origin.kind != super::model::OriginKind::MasterOverride {
        return false;
    }
    let Some(at) = e.origin.name_span.map(|s| s.start) else {
        return false;
    };
    svc.inner_comments
        .iter()
        .filter(|c| c.end < at)
        .any(|c| commented_header(c.text(&mm.source.text)).is_some())
}

fn orphaned_overrides(m: &Model, f: &mut Vec<Finding>) {
    let Some(master) = &m.master else { return };
    let src = &master.source;
    let text = src.text.as_str();
    for s in m.services() {
        for c in &s.inner_comments {
            let Some(header) = commented_header(c.text(text)) else {
                continue;
            };
            let orphans: Vec<_> = s
                .overrides
                .iter()
                .filter(|o| o.span.start > c.end)
                .collect();
            if orphans.is_empty() {
                continue;
            }
            let (first_line, _) = src.line_col(orphans[0].span.start);
            let (last_line, _) = src.line_col(orphans[orphans.len() - 1].span.end);
            let names: Vec<String> = orphans
                .iter()
                .map(|o| format!("{}={}", o.name, short(&o.value)))
                .collect();
            // Comment out every physical line that holds an orphaned override.
            let mut edits = Vec::new();
            let mut line = first_line;
            while line <= last_line {
                let st = src.line_start(line);
                let lt = src.line_text(line);
                if !lt.trim_start().starts_with('#') && !lt.trim().is_empty() {
                    edits.push(src.edit(st..st, "#"));
                }
                line += 1;
            }
            f.push(
                Finding::new(
                    "PF009",
                    Mta::Postfix,
                    format!(
                        "the service header `{header}` is commented out, but its indented lines {first_line}-{last_line} still continue the service above, {} (line {}): {} now apply to {}, not to the disabled service",
                        s.id(),
                        s.line,
                        names.join(", "),
                        s.id()
                    ),
                )
                .service(s.id())
                .at(at(src, *c))
                .help("Comment out the indented lines together with the header (or restore the header).")
                .fix(Fix::review(
                    format!(
                        "comment out lines {first_line}-{last_line} so they no longer apply to {}",
                        s.id()
                    ),
                    edits,
                )),
            );
        }
    }
}

// ------------------------------------------------------------ PF010, PF011

fn deprecated(ctx: &Context, m: &Model, f: &mut Vec<Finding>) {
    let p = params::get();
    // Collect uses first; resolving the version (may run postconf) only when there are any.
    let uses = deprecated_uses(m);
    if uses.is_empty() {
        return;
    }
    let version = ctx
        .options
        .target_version
        .as_deref()
        .and_then(params::parse_version)
        .unwrap_or_else(|| m.version());
    let vs = show_version(version);
    // Say which version the verdict is about, so "deprecated since 3.9" and the version
    // checked cannot read as a contradiction (a snapshot does not record its version).
    let basis = if ctx.options.target_version.is_some() {
        format!("checked for the target version {vs}")
    } else {
        format!("checked for Postfix {vs} ({})", m.version_source())
    };
    for u in uses {
        let Some(d) = p.deprecation(&u.name) else {
            continue;
        };
        f.extend(deprecation_finding(u, d, version, &basis));
    }
}

/// One use of a deprecated parameter or restriction name.
struct DeprecatedUse<'a> {
    src: &'a SourceFile,
    span: Span,
    name: String,
    service: Option<String>,
    scope_has_replacement: bool,
}

/// Every deprecated parameter name and restriction in main.cf and master.cf's -o lines.
fn deprecated_uses(m: &Model) -> Vec<DeprecatedUse<'_>> {
    let p = params::get();
    let mut uses: Vec<DeprecatedUse> = Vec::new();
    let restriction_words = |v: &str| -> Vec<String> {
        v.split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let classes = restriction_classes(m);
    let is_restriction_list =
        |name: &str| name.ends_with("_restrictions") || classes.contains(name);
    // Words are only split where a deprecated restriction name occurs at all.
    let restriction_names: Vec<&str> = p
        .deprecated
        .iter()
        .filter(|d| d.kind == "restriction")
        .map(|d| d.name.as_str())
        .collect();
    if let Some(main) = &m.main {
        let src = &main.source;
        for e in &main.parsed.entries {
            if let Some(d) = p.deprecation(&e.name) {
                if d.kind == "parameter" {
                    uses.push(DeprecatedUse {
                        src,
                        span: e.name_span,
                        name: e.name.clone(),
                        service: None,
                        scope_has_replacement: m.main_entry(&d.replacement).is_some(),
                    });
                }
            }
            if is_restriction_list(&e.name) && restriction_names.iter().any(|r| e.value.contains(r))
            {
                for w in e.words(&src.text) {
                    let t = w.text(&src.text).trim_end_matches(',');
                    if p.deprecation(t).is_some_and(|d| d.kind == "restriction") {
                        uses.push(DeprecatedUse {
                            src,
                            span: Span::new(w.start, w.start + t.len()),
                            name: t.to_string(),
                            service: None,
                            scope_has_replacement: false,
                        });
                    }
                }
            }
        }
    }
    if let Some(master) = &m.master {
        let src = &master.source;
        for s in m.services() {
            for o in &s.overrides {
                if let Some(d) = p.deprecation(&o.name) {
                    if d.kind == "parameter" {
                        uses.push(DeprecatedUse {
                            src,
                            span: o.name_span,
                            name: o.name.clone(),
                            service: Some(s.id()),
                            scope_has_replacement: s
                                .overrides
                                .iter()
                                .any(|x| x.name == d.replacement),
                        });
                    }
                }
                if is_restriction_list(&o.name) {
                    let raw = o.value_span.text(&src.text);
                    let mut off = 0;
                    for w in restriction_words(raw) {
                        let pos = raw[off..].find(&w).map(|i| i + off).unwrap_or(off);
                        off = pos + w.len();
                        if p.deprecation(&w).is_some_and(|d| d.kind == "restriction") {
                            let st = o.value_span.start + pos;
                            uses.push(DeprecatedUse {
                                src,
                                span: Span::new(st, st + w.len()),
                                name: w.clone(),
                                service: Some(s.id()),
                                scope_has_replacement: false,
                            });
                        }
                    }
                }
            }
        }
    }
    uses
}

/// PF011 (removed in the version checked) or PF010 (warned about), or None when the
/// version checked still takes it silently.
fn deprecation_finding(
    u: DeprecatedUse,
    d: &params::Deprecated,
    version: params::Version,
    basis: &str,
) -> Option<Finding> {
    let removed = params::parse_version(&d.removed).filter(|r| version >= *r);
    let warned = params::parse_version(&d.warn).is_some_and(|w| version >= w);
    let repl = if d.replacement.is_empty() {
        "remove it (leave the default)".to_string()
    } else {
        format!("use {} instead", d.replacement)
    };
    let mut finding = if removed.is_some() {
        Finding::new(
            "PF011",
            Mta::Postfix,
            format!(
                "restriction {} was removed in Postfix {}: from that version on smtpd answers every recipient that reaches it with `451 4.3.5 Server configuration error` (and logs `support for restriction \"{}\" has been removed`), so mail through this list is deferred; {repl} ({basis})",
                u.name, d.removed, u.name
            ),
        )
    } else if warned {
        let what = if d.kind == "restriction" {
            format!(
                "smtpd logs `support for restriction \"{}\" will be removed`",
                u.name
            )
        } else {
            format!(
                "postconf, which `postfix start`, `reload` and `check` run, logs `support for parameter \"{}\" will be removed`",
                u.name
            )
        };
        let gone = if d.removed.is_empty() {
            "a future release will drop it".to_string()
        } else {
            format!("Postfix {} removes it", d.removed)
        };
        Finding::new(
            "PF010",
            Mta::Postfix,
            format!(
                "{} {} is deprecated since Postfix {}: from that version on {what}; {gone} and then the setting stops working; {repl} ({basis})",
                d.kind, u.name, d.warn
            ),
        )
    } else {
        return None;
    };
    finding = finding.at(at(u.src, u.span));
    if let Some(s) = u.service {
        finding = finding.service(s);
    }
    if d.rename && !d.replacement.is_empty() {
        let description = format!("rename {} to {}", u.name, d.replacement);
        let edits = vec![u.src.edit(u.span.start..u.span.end, d.replacement.clone())];
        // Renaming where the replacement is set too changes which value wins.
        finding = finding.fix(if u.scope_has_replacement {
            Fix::review(description, edits)
        } else {
            Fix::safe(description, edits)
        });
    }
    Some(finding)
}

// ------------------------------------------------------------ PF012

/// `$mynetworks` read back while mynetworks' own default is computed (see
/// `Model::mynetworks_loop`): reported at the main.cf entries the default depends on.
fn mynetworks_loop(m: &Model, f: &mut Vec<Finding>) {
    let Some(main) = m.main.as_ref() else {
        return;
    };
    let entries: Vec<_> = [
        "mynetworks_style",
        "compatibility_level",
        "inet_interfaces",
        "inet_protocols",
    ]
    .into_iter()
    .filter_map(|name| {
        Some((
            name,
            m.main_entry(name).filter(|e| has_byte(&e.value, b'$'))?,
        ))
    })
    .collect();
    // Without a `$` in those entries there is no loop, and the default is not computed: on a
    // live system that runs `postconf -h mynetworks`, which costs as much as the whole lint
    // of a small configuration (scripts/bench postfix).
    if entries.is_empty() || !m.mynetworks_loop() {
        return;
    }
    for (name, e) in entries {
        f.push(
            Finding::new(
                "PF012",
                Mta::Postfix,
                format!(
                    "{name} = {}: mynetworks is not set, and its default is computed from mynetworks_style (whose default depends on compatibility_level), inet_interfaces and inet_protocols, so a reference to $mynetworks here loops: {}",
                    short(&e.value),
                    match name {
                        "mynetworks_style" => "Postfix expands it to nothing and stops (postconf 3.7.11: `fatal: bad mynetworks_style value: ; specify exactly one value`)",
                        "compatibility_level" => "postconf 3.7.11 crashes (segmentation fault) computing it",
                        _ => "Postfix expands it to nothing (postconf 3.7.11 shows both values empty)",
                    }
                ),
            )
            .at(at(&main.source, e.value_span))
            .help("Give this parameter a literal value, or set mynetworks explicitly."),
        );
    }
}

fn expansion(m: &Model, f: &mut Vec<Finding>) {
    let mut reported: HashSet<Vec<String>> = HashSet::new();
    let describe = |e: &ExpandError| -> (Vec<String>, String) {
        match e {
            ExpandError::Loop(c) => {
                let mut key = c.clone();
                key.pop();
                key.sort();
                (
                    key,
                    format!(
                        "{e}: Postfix cannot compute these values; the first daemon or command that reads one stops with `unreasonable macro call nesting` and `fatal: macro processing error`"
                    ),
                )
            }
            ExpandError::TooDeep(c) => (
                vec![c.first().cloned().unwrap_or_default(), "deep".into()],
                format!(
                    "{e}: Postfix stops with `unreasonable macro call nesting` and `fatal: macro processing error` when it reads this value"
                ),
            ),
            ExpandError::TooLong(c) => (
                vec![c.first().cloned().unwrap_or_default(), "long".into()],
                format!(
                    "{e}: Postfix limits only the nesting depth (mac_expand.c), so every daemon that reads this value builds all of it in memory and may stop with `fatal: out of memory`"
                ),
            ),
            ExpandError::Syntax(s) => (
                vec![s.clone()],
                format!("{e}: Postfix stops with a fatal macro processing error when it reads this value"),
            ),
        }
    };
    if let Some(main) = &m.main {
        let scope = m.scope(None);
        let src = &main.source;
        for e in &main.parsed.entries {
            if Model::is_raw(&e.name) || !has_byte(&e.value, b'$') {
                continue;
            }
            if m.main_entry(&e.name).is_some_and(|l| l.span != e.span) {
                continue;
            }
            if let Some(Err(err)) = scope.get(&e.name).map(|x| x.value) {
                let (key, msg) = describe(&err);
                if reported.insert(key) {
                    f.push(
                        Finding::new("PF012", Mta::Postfix, format!("{}: {msg}", e.name))
                            .at(at(src, e.value_span))
                            .help("Break the chain: give one of the parameters a literal value."),
                    );
                }
            }
        }
    }
    mynetworks_loop(m, f);
    if let Some(master) = &m.master {
        let src = &master.source;
        for (si, s) in m.services().iter().enumerate() {
            if s.overrides.iter().all(|o| !has_byte(&o.value, b'$')) {
                continue;
            }
            let scope = m.scope(Some(si));
            for o in s.overrides.iter().filter(|o| has_byte(&o.value, b'$')) {
                if let Some(Err(err)) = scope.get(&o.name).map(|x| x.value) {
                    let (key, msg) = describe(&err);
                    if reported.insert(key) {
                        f.push(
                            Finding::new(
                                "PF012",
                                Mta::Postfix,
                                format!("{} on service {}: {msg}", o.name, s.id()),
                            )
                            .service(s.id())
                            .at(at(src, o.value_span)),
                        );
                    }
                }
            }
        }
    }
}
