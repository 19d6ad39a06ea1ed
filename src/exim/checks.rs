//! Exim rules (EXnnn in rules/exim.toml). Each finding points at the line that causes it, in
//! the conf.d fragment or included file it came from, and says what SMTP clients will see.

use std::collections::BTreeSet;

use ipnet::IpNet;

use super::advertise::{tls_guarded, Auth, Tls};
use super::lists::{self, expand, split};
use super::model::{Config, Stmt, Verb};
use super::reader::{LogicalLine, Origin};
use super::Loaded;
use crate::context::Context;
use crate::finding::{Finding, Fix, Mta, Severity};
use crate::relay::{ClientClass, RecipientClass, Verdict};

fn f(code: &str, msg: impl Into<String>, o: &Origin) -> Finding {
    Finding::new(code, Mta::Exim, msg)
        .at(o.location())
        .service(super::SERVICE)
}

/// EX001: placeholders of other template systems left in the configuration.
pub fn placeholders(lines: &[LogicalLine], findings: &mut Vec<Finding>) {
    let pats = [
        (r"%[A-Z][A-Z0-9_]*%", "a %PLACEHOLDER%"),
        (
            r"\{\{-?\s*[A-Za-z_][A-Za-z0-9_.]*\s*(\|[^{}]*)?-?\}\}",
            "a {{ jinja }} placeholder",
        ),
        (
            r"\{%-?\s*(if|for|endif|endfor|else|elif|set|include|macro)\b",
            "a {% jinja %} block",
        ),
        (r"@[A-Z][A-Z0-9_]+@", "an @PLACEHOLDER@"),
    ];
    // Compiled on first use: most configurations have no line that passes the pre-filter.
    let mut res: Vec<(regex::Regex, &str)> = Vec::new();
    let mut seen: BTreeSet<std::path::PathBuf> = BTreeSet::new();
    for l in lines {
        // Cheap pre-filter: every pattern needs one of these characters.
        if !maybe_placeholder(&l.text) {
            continue;
        }
        if seen.contains(&l.origin.file) {
            continue;
        }
        if res.is_empty() {
            res = pats
                .iter()
                .filter_map(|(p, d)| lists::regex(p, false).map(|r| (r, *d)))
                .collect();
        }
        for (r, what) in &res {
            if let Some(m) = r.find(&l.text) {
                seen.insert(l.origin.file.clone());
                findings.push(f(
                    "EX001",
                    format!(
                        "{} is a template, not a configuration Exim can run: `{}` is {what} that another tool replaces; relaydoctor checks the rest, but decisions involving such values are not meaningful",
                        l.origin.file.display(),
                        m.as_str()
                    ),
                    &l.origin,
                ));
                break;
            }
        }
    }
}

/// `%X`, `@X` (X upper case), `{{` or `{%`: the only ways the placeholder patterns can match.
fn maybe_placeholder(t: &str) -> bool {
    let b = t.as_bytes();
    (0..b.len().saturating_sub(1)).any(|i| match (b[i], b[i + 1]) {
        (b'%' | b'@', c) => c.is_ascii_uppercase(),
        // `{{ name` (Exim's own `{{` is followed by an operator or `$`), `{% `.
        (b'{', b'{') => b[i + 2..]
            .iter()
            .find(|&&c| c != b' ' && c != b'-')
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_'),
        (b'{', b'%') => true,
        _ => false,
    })
}

pub fn run(ctx: &Context, loaded: &Loaded, out: &mut Vec<Finding>) {
    let cfg = &loaded.cfg;
    unknown_conditions(cfg, out);
    // Debian without update-exim4.conf.conf: the macros update-exim4.conf writes from it
    // are supplied on the server, with values this snapshot does not show.
    // A Debian exim4.conf.template linted on its own is in the same position.
    let debian_template = loaded.files.first().is_some_and(|f| {
        f.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("exim4.conf.template"))
    });
    let debian_without_ue4cc =
        (loaded.kind == super::Kind::Debian || debian_template) && loaded.debian_vars.is_empty();
    undefined_macros(cfg, debian_without_ue4cc, out);
    let rcpt = rcpt_acl(cfg, out);
    relay_matrix(ctx, cfg, out);
    let mut reported = BTreeSet::new();
    wide_hosts(ctx, cfg, &mut reported, out);
    relay_domains(ctx, cfg, out);
    auth(ctx, cfg, out);
    if let Some(acl) = rcpt {
        callouts(ctx, cfg, &acl, out);
    }
    if let Some(acl) = cfg
        .option("acl_smtp_mail")
        .and_then(|o| cfg.acl(o.value.trim()))
    {
        callouts(ctx, cfg, &acl.name.clone(), out);
    }
    dnsbl(cfg, out);
    super::listcheck::missing_files(ctx, cfg, out);
    super::listcheck::list_items(ctx, cfg, out);
    upgrade(ctx, cfg, out);
    super::ports::run(ctx, cfg, out);
    if loaded.kind == super::Kind::Cpanel {
        cpanel_host_files(ctx, cfg, &mut reported, out);
    } // A wide relay host list (EX111) already explains an open relay through `accept hosts =`:
      // one finding, at the list, not a second one at the ACL line.
    if out.iter().any(|x| x.code == "EX111") {
        out.retain(|x| x.code != "EX110" || !accepts_through_hosts(cfg, x));
    }
}

/// Whether an EX110 finding sits on an ACL statement that admits clients by `hosts =`.
fn accepts_through_hosts(cfg: &Config, fd: &Finding) -> bool {
    let Some(loc) = &fd.location else {
        return false;
    };
    cfg.acls.iter().flat_map(|a| &a.stmts).any(|s| {
        s.origin.file == loc.file
            && s.origin.line == loc.line
            && s.conds.iter().any(|c| c.name == "hosts" && !c.negated)
    })
}

/// cPanel's host files: /etc/relayhosts and /etc/alwaysrelay grant relay, /etc/trustedmailhosts
/// and /etc/skipsmtpcheckhosts skip the sender/recipient checks. A wide entry in any of them
/// opens the server to everyone in that range, whether or not this exim.conf names the file.
fn cpanel_host_files(
    ctx: &Context,
    cfg: &Config,
    reported: &mut BTreeSet<(std::path::PathBuf, usize)>,
    out: &mut Vec<Finding>,
) {
    for file in [
        "/etc/relayhosts",
        "/etc/alwaysrelay",
        "/etc/trustedmailhosts",
        "/etc/skipsmtpcheckhosts",
    ] {
        let origin = Origin {
            file: std::path::PathBuf::from(format!("{file} (cPanel host file)")),
            line: 0,
            src: None,
            start: 0,
            end: 0,
        };
        check_host_list(ctx, cfg, file, &origin, &[], 0, reported, out);
    }
}

/// EX002 for ACL conditions Exim does not know. Named ACLs are compiled when the
/// configuration is read, so Exim refuses to start (checked with Exim 4.96 -bV: "error in ACL:
/// unknown ACL condition/modifier"); inline ACL text is compiled when it runs.
fn unknown_conditions(cfg: &Config, out: &mut Vec<Finding>) {
    for a in &cfg.acls {
        for s in &a.stmts {
            for c in &s.conds {
                if !super::acl::is_known_condition(&c.name) {
                    out.push(f("EX002", format!(
                        "unknown ACL condition/modifier `{}` in ACL {}: Exim refuses to start (\"error in ACL: unknown ACL condition/modifier\"), so no mail is accepted",
                        c.name, a.name), &c.origin));
                }
            }
        }
    }
}

/// EX004: an upper-case NAME_WITH_UNDERSCORES left in a main option or named list after
/// macro substitution: no macro of that name was defined before the line, so Exim uses the
/// text literally (typical: a Debian template read without update-exim4.conf's macros, or a
/// macro used above its definition).
/// Macros update-exim4.conf writes into the generated configuration from
/// update-exim4.conf.conf (Debian's update-exim4.conf script, `dc_*` settings).
const DEBIAN_SUPPLIED: &[&str] = &[
    "MAIN_LOCAL_DOMAINS",
    "MAIN_RELAY_TO_DOMAINS",
    "MAIN_RELAY_NETS",
    "ETC_MAILNAME",
    "MAIN_PACKAGE_VERSION",
    "LOCAL_DELIVERY",
];

fn undefined_macros(cfg: &Config, debian_without_ue4cc: bool, out: &mut Vec<Finding>) {
    let mut supplied: Vec<(String, Origin)> = Vec::new();
    const PAT: &str = r"(^|[^A-Za-z0-9_${%@])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)($|[^A-Za-z0-9_}%@])";
    let items = cfg
        .options
        .iter()
        // Environment variable names, not macros.
        .filter(|o| !matches!(o.name.as_str(), "keep_environment" | "add_environment"))
        .map(|o| {
            (
                format!("{} = {}", o.name, o.value),
                o.value.as_str(),
                &o.origin,
            )
        })
        .chain(
            cfg.lists
                .iter()
                .map(|l| (format!("list {}", l.name), l.value.as_str(), &l.origin)),
        );
    let Some(re) = lists::regex(PAT, false) else {
        return;
    };
    for (what, value, origin) in items {
        if !value.contains('_') || !value.bytes().any(|b| b.is_ascii_uppercase()) {
            continue;
        }
        let Some(c) = re.captures(value) else {
            continue;
        };
        let Some(tok) = c.get(2).map(|m| m.as_str()) else {
            continue;
        };
        let def = cfg.macro_def(tok).map(|m| m.origin.as_ref());
        let later = match def {
            // Defined before this line: the token came out of a substitution, not a miss.
            Some(Some(o)) if !(o.file == origin.file && o.line > origin.line) => continue,
            Some(None) => continue,
            Some(Some(o)) => format!("; it is defined later, at {}, and macros only apply to lines after their definition", o.describe()),
            None if debian_without_ue4cc
                && (DEBIAN_SUPPLIED.contains(&tok) || tok.starts_with("DC")) =>
            {
                if !supplied.iter().any(|(t, _)| t == tok) {
                    supplied.push((tok.to_string(), origin.clone()));
                }
                continue;
            }
            None => {
                if tok.starts_with("MAIN_") || tok.starts_with("DC") || tok == "ETC_MAILNAME" {
                    "; on Debian, update-exim4.conf defines it from update-exim4.conf.conf".to_string()
                } else {
                    String::new()
                }
            }
        };
        out.push(f("EX004", format!(
            "`{tok}` in `{what}` looks like a macro, but no macro of that name is defined before this line: Exim uses the text literally{later}"), origin));
    }
    if let Some((_, o)) = supplied.first() {
        let names: Vec<&str> = supplied.iter().map(|(t, _)| t.as_str()).collect();
        out.push(
            f("EX004", format!(
                "update-exim4.conf.conf is not in this snapshot: update-exim4.conf defines {} from it, so the local domains, relay domains and relay hosts are not known here and the relay decisions assume them empty", names.join(", ")), o)
            .severity(Severity::Info)
            .help("include /etc/exim4/update-exim4.conf.conf in the snapshot to check the relay settings"),
        );
    }
}

/// EX101/EX102. Returns the RCPT ACL name when it exists.
fn rcpt_acl(cfg: &Config, out: &mut Vec<Finding>) -> Option<String> {
    match cfg.option("acl_smtp_rcpt") {
        // A fragment without ACLs, routers or transports is not a whole configuration.
        None if cfg.options.is_empty()
            || (cfg.acls.is_empty() && cfg.routers.is_empty() && cfg.transports.is_empty()) =>
        {
            None
        }
        None => {
            let o = cfg
                .sections
                .first()
                .map(|s| s.1.clone())
                .or_else(|| cfg.options.first().map(|o| o.origin.clone()));
            let mut fd = Finding::new(
                "EX101",
                Mta::Exim,
                "acl_smtp_rcpt is not set: Exim refuses every recipient over SMTP with `550 Administrative prohibition`, so no mail from other hosts is accepted",
            )
            .service(super::SERVICE)
            .help("set `acl_smtp_rcpt = acl_check_rcpt` in the main section and define that ACL (see Exim's default configuration)");
            if let Some(o) = o {
                fd = fd.at(o.location());
            }
            out.push(fd);
            None
        }
        Some(o) => {
            let name = o.value.trim();
            if cfg.acl(name).is_some() {
                return Some(name.to_string());
            }
            if super::parse::inline_acl(name, &o.origin).is_some() {
                // A working inline ACL; the relay matrix judges what it does.
                return None;
            }
            if super::cpanel::injects_acls(&cfg.template_markers) {
                // A cPanel template: the ACL comes with the block buildeximconf inserts.
                return None;
            }
            let near = cfg
                .acls
                .iter()
                .map(|a| (strsim::levenshtein(&a.name, name), a.name.clone()))
                .min();
            let mut fd = f("EX102", format!(
                "acl_smtp_rcpt = {name} names no ACL: Exim then parses `{name}` as an inline ACL, which fails, and every RCPT gets `451 Temporary local problem - please try later`"), &o.origin);
            if let Some((d, n)) = near {
                if d <= 3 {
                    fd = fd.help(format!("did you mean `{n}`?"));
                    if let Some(src) = &o.origin.src {
                        let line = src.text.get(o.origin.start..o.origin.end).unwrap_or("");
                        if let Some(pos) = line.rfind(name) {
                            let start = o.origin.start + pos;
                            fd = fd.fix(Fix::safe(
                                format!("name the existing ACL {n}"),
                                vec![src.edit(start..start + name.len(), n)],
                            ));
                        }
                    }
                }
            }
            out.push(fd);
            None
        }
    }
}

/// The steps that decided a branch, one per line, for a finding's help: `line N` in the
/// finding's own file, the shown path elsewhere; steps that did not match are left out, and a
/// condition step is dropped when its statement's step on the same line follows.
fn trace_help(b: &super::acl::Branch, own: Option<&std::path::Path>) -> String {
    let steps: Vec<_> = b
        .trace
        .iter()
        .filter(|t| t.effect != "no match" && t.effect != "false")
        .collect();
    let mut lines = Vec::new();
    for (k, t) in steps.iter().enumerate() {
        if steps
            .get(k + 1)
            .is_some_and(|n| n.file == t.file && n.line == t.line)
        {
            continue;
        }
        let at = if Some(t.file.as_path()) == own {
            format!("line {}", t.line)
        } else {
            format!("{}:{}", t.file.display(), t.line)
        };
        lines.push(format!("  {at}: `{}` -> {}", t.entry, t.effect));
    }
    lines.join("\n")
}

#[allow(dead_code)]
fn trace_text(b: &super::acl::Branch) -> String {
    b.trace
        .iter()
        .filter(|t| t.effect != "no match")
        .map(|t| {
            format!(
                "{}:{} `{}` -> {}",
                t.file.display(),
                t.line,
                t.entry,
                t.effect
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn origin_of(cfg: &Config, by: &Option<(std::path::PathBuf, usize)>) -> Option<Origin> {
    let (file, line) = by.as_ref()?;
    for a in &cfg.acls {
        if &a.origin.file == file && a.origin.line == *line {
            return Some(a.origin.clone());
        }
        for s in &a.stmts {
            if &s.origin.file == file && s.origin.line == *line {
                return Some(s.origin.clone());
            }
        }
    }
    cfg.options
        .iter()
        .find(|o| &o.origin.file == file && o.origin.line == *line)
        .map(|o| o.origin.clone())
}

/// EX110 (open relay) and EX120/EX121 (relay denied to authenticated / trusted clients) from
/// the decision matrix.
fn relay_matrix(ctx: &Context, cfg: &Config, out: &mut Vec<Finding>) {
    match cfg.option("acl_smtp_rcpt") {
        Some(o)
            if cfg.acl(o.value.trim()).is_some()
                || super::parse::inline_acl(o.value.trim(), &o.origin).is_some() => {}
        _ => return, // EX101 / EX102 already say that every RCPT is refused
    }
    let cells = super::matrix(ctx, cfg, Some(RecipientClass::External));
    let has_auth_server = !cfg.server_authenticators().is_empty();
    for c in &cells {
        if c.client == ClientClass::Stranger && c.rcpt == RecipientClass::External {
            // Count accept branches an outsider can reach: undecidable conditions assumed
            // false (not listed, rate limit not hit) or verifications an attacker can pass;
            // not branches that need an unknown host list or expansion to admit the client.
            let reachable = |b: &&super::acl::Branch| {
                b.verdict == Verdict::Accept
                    && b.assumed.iter().all(|(r, v)| {
                        !*v || r.starts_with("sender verification")
                            // An attacker picks a recipient domain the DNS knows.
                            || r.starts_with("DNS routing of the recipient domain")
                            || r.starts_with("DNS routing of the sender domain")
                            || r.starts_with("the sender callout")
                            || r.starts_with("the recipient callout")
                    })
            };
            if let Some(b) = c.branches.iter().find(reachable) {
                let when = if b.assumed.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (when {})",
                        b.assumed
                            .iter()
                            .map(|(r, v)| format!("{r} is {v}"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )
                };
                let msg = format!(
                    "open relay: a client from anywhere ({}) that is not authenticated gets `250 Accepted` for user@{}{when}; spammers can send through this server",
                    super::STRANGER_IP, super::EXTERNAL_DOMAIN);
                let o = origin_of(cfg, &b.decided_by);
                let steps = trace_help(b, o.as_ref().map(|o| o.file.as_path()));
                let mut fd = Finding::new("EX110", Mta::Exim, msg).service(c.service.clone())
                    .help(format!("end the relay section with `require message = relay not permitted` + `domains = +local_domains : +relay_to_domains` before any unconditional accept. Decisive steps:\n{steps}"));
                if let Some(o) = o {
                    fd = fd.at(o.location());
                }
                out.push(fd);
            }
        }
        if c.client == ClientClass::Authenticated
            && c.rcpt == RecipientClass::External
            && has_auth_server
            && c.branches
                .iter()
                .all(|b| b.verdict == Verdict::Reject || b.verdict == Verdict::Defer)
        {
            {
                if let Some(b) = c.branches.first() {
                    let o = origin_of(cfg, &b.decided_by);
                    let later = find_auth_accept(cfg);
                    let why = match &later {
                        Some(a) => format!(
                            " The statement `accept authenticated = *` at {} comes too late.",
                            a.describe()
                        ),
                        None => " No statement accepts authenticated clients.".into(),
                    };
                    let msg = format!(
                        "authenticated clients cannot relay: after a successful SMTP AUTH, RCPT TO an external domain gets `{} {}`.{why} Trace: {}",
                        b.code.unwrap_or(550), b.text.clone().unwrap_or_default(), trace_text(b));
                    let mut fd = Finding::new("EX120", Mta::Exim, msg).service(c.service.clone())
                        .help("put `accept authenticated = *` before the `require ... domains = +local_domains : +relay_to_domains` statement");
                    if let Some(o) = o {
                        fd = fd.at(o.location());
                    }
                    out.push(fd);
                }
            }
        }
        if c.client == ClientClass::Trusted && c.rcpt == RecipientClass::External {
            let only_loopback = c.env.ip.is_some_and(|i| i.is_loopback());
            if !only_loopback && c.branches.iter().all(|b| b.verdict == Verdict::Reject) {
                if let Some(b) = c.branches.first() {
                    let o = origin_of(cfg, &b.decided_by);
                    let msg = format!(
                        "hosts in relay_from_hosts (e.g. {}) cannot relay: RCPT TO an external domain gets `{} {}`. Trace: {}",
                        c.env.ip.map(|i| i.to_string()).unwrap_or_default(), b.code.unwrap_or(550), b.text.clone().unwrap_or_default(), trace_text(b));
                    let mut fd = Finding::new("EX121", Mta::Exim, msg).service(c.service.clone());
                    if let Some(o) = o {
                        fd = fd.at(o.location());
                    }
                    out.push(fd);
                }
            }
        }
    }
}

fn find_auth_accept(cfg: &Config) -> Option<Origin> {
    let name = cfg.option("acl_smtp_rcpt")?.value.trim().to_string();
    let acl = cfg.acl(&name)?;
    acl.stmts
        .iter()
        .find(|s| s.verb == Verb::Accept && s.cond("authenticated").is_some())
        .map(|s| s.origin.clone())
}

/// A host item that admits (nearly) everyone.
fn wide(item: &str) -> Option<String> {
    let i = item.trim();
    if i == "*" {
        return Some("`*` (every host)".into());
    }
    let n: IpNet = lists::parse_net(i)?;
    let public = match n {
        IpNet::V4(v) => {
            !(v.network().is_private() || v.network().is_loopback() || v.network().is_link_local())
        }
        IpNet::V6(v) => {
            !(v.network().is_loopback() || (v.network().segments()[0] & 0xfe00) == 0xfc00)
        }
    };
    let limit = if matches!(n, IpNet::V4(_)) { 8 } else { 16 };
    if n.prefix_len() == 0 {
        return Some(format!("{i} (every address)"));
    }
    if public && n.prefix_len() < limit {
        return Some(format!(
            "{i} (a public range of {} addresses or more)",
            if limit == 8 { "16 million" } else { "2^112" }
        ));
    }
    None
}

/// EX111: relay_from_hosts and hosts of relay-granting accept statements admitting everyone,
/// also through macros (Debian's dc_relay_nets) and host files (cPanel).
fn wide_hosts(
    ctx: &Context,
    cfg: &Config,
    reported: &mut BTreeSet<(std::path::PathBuf, usize)>,
    out: &mut Vec<Finding>,
) {
    let mut lists_to_check: Vec<(String, Origin, Vec<String>)> = Vec::new();
    if let Some(l) = cfg.list("relay_from_hosts") {
        lists_to_check.push((l.value.clone(), l.origin.clone(), l.macros_used.clone()));
    }
    if let Some(name) = cfg
        .option("acl_smtp_rcpt")
        .map(|o| o.value.trim().to_string())
    {
        if let Some(acl) = cfg.acl(&name) {
            for s in &acl.stmts {
                if s.verb != Verb::Accept {
                    continue;
                }
                let only_hosts = s.conds.iter().all(|c| {
                    c.name == "hosts" && !c.negated
                        || super::acl::is_known_condition(&c.name)
                            && matches!(
                                c.name.as_str(),
                                "control"
                                    | "message"
                                    | "log_message"
                                    | "logwrite"
                                    | "add_header"
                                    | "set"
                            )
                });
                if !only_hosts {
                    continue;
                }
                for c in s.conds.iter().filter(|c| c.name == "hosts") {
                    lists_to_check.push((
                        c.value().to_string(),
                        c.origin.clone(),
                        c.macros_used.clone(),
                    ));
                }
            }
        }
    }
    for (value, origin, used) in lists_to_check {
        check_host_list(ctx, cfg, &value, &origin, &used, 0, reported, out);
    }
}

#[allow(clippy::too_many_arguments)]
fn check_host_list(
    ctx: &Context,
    cfg: &Config,
    value: &str,
    origin: &Origin,
    used: &[String],
    depth: usize,
    reported: &mut BTreeSet<(std::path::PathBuf, usize)>,
    out: &mut Vec<Finding>,
) {
    if depth > 10 {
        return;
    }
    let Ok(v) = expand(ctx, value) else { return };
    for item in split(&v) {
        if item.starts_with('!') {
            return; // a negation before: too complex to call wide
        }
        if let Some(name) = item.strip_prefix('+') {
            if let Some(l) = cfg.list(name) {
                let (val, o, u) = (l.value.clone(), l.origin.clone(), l.macros_used.clone());
                check_host_list(ctx, cfg, &val, &o, &u, depth + 1, reported, out);
            }
            continue;
        }
        let file = if item.starts_with('/') {
            Some(item.clone())
        } else {
            item.split_once(';')
                .filter(|(t, _)| t.contains("lsearch"))
                .map(|(_, p)| p.trim().to_string())
        };
        if let Some(path) = file {
            let real = ctx.root.resolve(std::path::Path::new(&path));
            let mut fs = Vec::new();
            if let Some(src) = ctx.load_checked(&real, Mta::Exim, &mut fs) {
                let mut off = 0;
                for (n, raw) in src.text.split_inclusive('\n').enumerate() {
                    let key = raw.split('#').next().unwrap_or("").trim();
                    let key = key
                        .split(|c: char| c == ':' && !key.contains("::") || c.is_whitespace())
                        .next()
                        .unwrap_or("");
                    if let Some(w) = wide(key) {
                        if reported.insert((src.display.clone(), n + 1)) {
                            let start = off + raw.find(key).unwrap_or(0);
                            let o = Origin {
                                file: src.display.clone(),
                                line: n + 1,
                                src: Some(src.clone()),
                                start,
                                end: start + key.len(),
                            };
                            let how = if origin.line == 0 {
                                "cPanel trusts the hosts in this file to relay or to skip the recipient checks".to_string()
                            } else {
                                format!(
                                    "it is used as a relay-permitted host list (via {})",
                                    origin.describe()
                                )
                            };
                            out.push(f("EX111", format!(
                                "open relay: {} lists {w}, and {how}: every such host may send mail anywhere through this server",
                                src.display.display()), &o));
                        }
                    }
                    off += raw.len();
                }
            }
            continue;
        }
        if let Some(w) = wide(&item) {
            // Point at the macro definition (e.g. dc_relay_nets) when the item came from one.
            let mac = used
                .iter()
                .filter_map(|n| cfg.macro_def(n))
                .find(|m| m.value.contains(item.as_str()) && m.origin.is_some());
            let (o, via) = match mac {
                Some(m) => (
                    m.origin.clone().unwrap_or_else(|| origin.clone()),
                    format!(" (the macro {} used at {})", m.name, origin.describe()),
                ),
                None => (origin.clone(), String::new()),
            };
            if reported.insert((o.file.clone(), o.line)) {
                out.push(f("EX111", format!(
                    "open relay: a relay-permitted host list{via} contains {w}: every such client may send mail anywhere through this server"), &o));
            }
        }
    }
}

/// EX112 relay_to_domains that matches everything; EX113 percent_hack_domains = *.
fn relay_domains(ctx: &Context, cfg: &Config, out: &mut Vec<Finding>) {
    if let Some(l) = cfg.list("relay_to_domains") {
        if let Ok(v) = expand(ctx, &l.value) {
            let items = split(&v);
            let star = items.iter().any(|i| i == "*");
            let neg_end = items.last().is_some_and(|i| i.starts_with('!'));
            if star || neg_end {
                let why = if star {
                    "contains `*`".to_string()
                } else {
                    format!("ends in the negative item `{}`, and a list ending in a negation matches every domain its items do not", items.last().cloned().unwrap_or_default())
                };
                out.push(f("EX112", format!(
                    "domainlist relay_to_domains {why}: the RCPT ACL's relay check (`domains = +local_domains : +relay_to_domains`) passes for every domain, so anyone can relay{}",
                    cfg.via_macros(&l.macros_used)), &l.origin));
            }
        }
    }
    if let Some(o) = cfg.option("percent_hack_domains") {
        if split(&o.value).iter().any(|i| i == "*") {
            out.push(f("EX113", "percent_hack_domains = * rewrites user%remote.example@yourdomain to user@remote.example before the RCPT ACL runs: the ACL's relay check still applies to remote.example, but any ACL statement or router that trusts the original local domain becomes a relay route; the percent hack is deprecated", &o.origin).help("remove percent_hack_domains unless something depends on it"));
        }
    }
}

/// The macro of an `.ifdef`/`.ifndef` block that holds a setting of `option` which the
/// configuration as read skipped (e.g. Debian's `.ifdef MAIN_TLS_ENABLE` around
/// tls_certificate, with the macro defined in exim4.conf.localmacros outside the snapshot).
fn guarding_macro(cfg: &Config, option: &str) -> Option<String> {
    let mut seen: Vec<&std::path::Path> = Vec::new();
    let origins = cfg
        .options
        .iter()
        .map(|o| &o.origin)
        .chain(cfg.authenticators.iter().map(|d| &d.origin))
        .chain(cfg.sections.iter().map(|s| &s.1));
    for o in origins {
        let Some(src) = &o.src else { continue };
        if seen.contains(&src.real.as_path()) {
            continue;
        }
        seen.push(src.real.as_path());
        let mut stack: Vec<String> = Vec::new();
        for line in src.text.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix('.') {
                let mut w = rest.split_whitespace();
                match (w.next(), w.next()) {
                    (Some("ifdef" | "ifndef"), Some(m)) => stack.push(m.to_string()),
                    (Some("elifdef" | "elifndef"), Some(m)) => {
                        stack.pop();
                        stack.push(m.to_string());
                    }
                    (Some("endif"), _) => {
                        stack.pop();
                    }
                    _ => {}
                }
                continue;
            }
            let Some((name, _)) = t.split_once('=') else {
                continue;
            };
            if name.trim() == option {
                // The outermost guard: inner ones may only choose between values
                // (Debian: `.ifdef MAIN_TLS_CERTKEY … .else …` inside MAIN_TLS_ENABLE).
                if let Some(m) = stack.first() {
                    return Some(m.clone());
                }
            }
        }
    }
    None
}

/// Evidence that users submit mail through this server: a submission port (587, or 465 /
/// tls_on_connect_ports). `control = submission` is no evidence: configure.default and Debian
/// carry it on their stock `accept hosts = +relay_from_hosts` / `accept authenticated = *`.
fn submission_evidence(ctx: &Context, cfg: &Config) -> Option<String> {
    for name in [
        "daemon_smtp_ports",
        "daemon_smtp_port",
        "tls_on_connect_ports",
    ] {
        if let Some(o) = cfg.option(name) {
            let v = expand(ctx, &o.value).unwrap_or_else(|_| o.value.clone());
            for p in split(&v) {
                let p = p.trim();
                if matches!(p, "587" | "465" | "submission" | "smtps" | "ssmtp")
                    || (name == "tls_on_connect_ports" && !p.is_empty())
                {
                    return Some(format!(
                        "{name} = {} at {}",
                        o.value.trim(),
                        o.origin.describe()
                    ));
                }
            }
        }
    }
    None
}

/// EX114 anyone authenticates; EX122 authenticated = * without a server authenticator or with
/// AUTH never advertised; EX123 AUTH gated on TLS without TLS; EX130 plaintext AUTH.
fn auth(ctx: &Context, cfg: &Config, out: &mut Vec<Finding>) {
    let servers = cfg.server_authenticators();
    for d in &cfg.authenticators {
        if let Some(sc) = d.setting("server_condition") {
            let v = sc.value.trim().to_ascii_lowercase();
            if matches!(
                v.as_str(),
                "yes" | "true" | "1" | "${if true}" | "${if true{yes}{no}}"
            ) {
                out.push(f("EX114", format!(
                    "authenticator {} has the constant server_condition `{}`: any user name with any password authenticates, and authenticated clients may relay", d.name, sc.value), &sc.origin));
            }
        }
    }
    let rcpt_uses_auth = cfg
        .option("acl_smtp_rcpt")
        .and_then(|o| cfg.acl(o.value.trim()))
        .and_then(|a| {
            a.stmts
                .iter()
                .find(|s| s.verb == Verb::Accept && s.cond("authenticated").is_some())
                .cloned()
        });
    let advertise = cfg.option("auth_advertise_hosts");
    if let Some(stmt) = &rcpt_uses_auth {
        let empty_adv = advertise.is_some_and(|o| {
            expand(ctx, &o.value)
                .map(|v| split(&v).is_empty())
                .unwrap_or(false)
        });
        if servers.is_empty() {
            // Stock inbound configurations (configure.default, Debian) carry this accept
            // for later use: only evidence of mail submission makes it a warning.
            let submission = submission_evidence(ctx, cfg);
            let sev = if submission.is_some() {
                Severity::Warning
            } else {
                Severity::Info
            };
            out.push(f("EX122", format!(
                "`{}` can never match: no authenticator has a server side (no begin authenticators section with server_* options), so Exim does not offer AUTH and mail clients that need to relay get `550 relay not permitted`{}", stmt.render(),
                match &submission {
                    Some(e) => format!("; users appear to submit mail here ({e})"),
                    None => "; nothing here suggests users submit mail through this server, so on an inbound MX this is expected".to_string(),
                }), &stmt.origin).severity(sev).help("if users send through this server, configure a server authenticator (e.g. Debian's conf.d/auth/30_exim4-config_examples); on a pure inbound MX this is expected"));
        } else if empty_adv {
            if let Some(a) = advertise {
                out.push(f("EX122", "auth_advertise_hosts is empty: Exim never advertises AUTH, so `accept authenticated = *` can never match and mail clients that need to relay get `550 relay not permitted`", &a.origin).severity(Severity::Error));
            }
        } else {
            let never: Vec<String> = servers
                .iter()
                .filter_map(|d| match super::advertise::auth(ctx, cfg, Some(d)) {
                    Auth::Never(why) => Some(format!("{}: {why}", d.name)),
                    _ => None,
                })
                .collect();
            if never.len() == servers.len() {
                out.push(f("EX122", format!("`{}` can never match: no authenticator is ever offered ({}), so clients that try AUTH get `503 AUTH command used when not advertised` and mail clients that need to relay get `550 relay not permitted`", stmt.render(), never.join("; ")), &stmt.origin).severity(Severity::Error));
            }
        }
    }
    let version = effective_version(ctx);
    let tls = super::advertise::tls(ctx, cfg, version.as_ref());
    tls_only_auth(cfg, &tls, &servers, out);
    let adv_guard = advertise.is_some_and(|a| tls_guarded(&a.value));
    // Authenticators whose TLS guard a macro switched off, by the macro definition: one
    // finding there (where the admin set it) for all of them.
    let mut by_macro: Vec<(Origin, String, Vec<String>, bool)> = Vec::new();
    for d in &servers {
        let driver = d.opt("driver").unwrap_or("");
        let public = d.opt("public_name").unwrap_or("").to_ascii_uppercase();
        let plain = driver == "plaintext"
            || (matches!(driver, "dovecot" | "cyrus_sasl")
                && matches!(public.as_str(), "PLAIN" | "LOGIN"));
        // Only what is offered without TLS can leak a password (#21 item 4): not an
        // authenticator that auth_advertise_hosts or its own condition never offers.
        if !plain || adv_guard || super::advertise::auth(ctx, cfg, Some(d)) != Auth::Always {
            continue;
        }
        let guarded = d
            .setting("server_advertise_condition")
            .is_some_and(|s| tls_guarded(&s.value));
        if !guarded {
            // With TLS off, the TLS guard alone would switch AUTH off for everyone.
            let tls_off = matches!(tls, Tls::Off(_));
            let advice = if tls_off {
                "TLS is off here (tls_advertise_hosts empty, or an Exim without a certificate it can use): enable TLS first (tls_certificate, tls_privatekey, tls_advertise_hosts = *), then add `server_advertise_condition = ${if def:tls_in_cipher}`; adding the condition alone would disable AUTH completely"
            } else {
                "Add `server_advertise_condition = ${if def:tls_in_cipher}`"
            };
            let label = format!(
                "{} ({})",
                d.name,
                if public.is_empty() {
                    driver.to_string()
                } else {
                    public
                }
            );
            if let Some((name, def)) = guard_skipped_by_macro(cfg, d) {
                let at = format!("{} at {}", label, d.origin.describe());
                match by_macro.iter_mut().find(|m| m.1 == name) {
                    Some(m) => m.2.push(at),
                    None => by_macro.push((def, name, vec![at], tls_off)),
                }
                continue;
            }
            out.push(f("EX130", format!(
                "authenticator {label} is offered without TLS: passwords cross the network in clear text (base64)"), &d.origin).help(advice));
        }
    }
    for (def, name, auths, tls_off) in by_macro {
        let (which, verb, is) = if auths.len() == 1 {
            ("authenticator", "skips its", "is")
        } else {
            ("authenticators", "skips their", "are")
        };
        let advice = if tls_off {
            format!("TLS is off here (tls_advertise_hosts empty, or an Exim without a certificate it can use): enable TLS first (Debian: MAIN_TLS_ENABLE = yes with a certificate), then remove this {name} definition; removing it alone would disable AUTH completely")
        } else {
            format!("remove this {name} definition so the managed files' TLS guard applies again (mail clients then authenticate after STARTTLS)")
        };
        out.push(
            f("EX130", format!(
                "{name} is defined here, which {verb} `server_advertise_condition` TLS guard: {which} {} {is} offered without TLS, so passwords cross the network in clear text (base64)",
                auths.join(" and ")), &def)
            .help(advice),
        );
    }
}

/// EX123: AUTH offered only over TLS (auth_advertise_hosts or an authenticator's
/// server_advertise_condition) while STARTTLS cannot work, or works only with the self-signed
/// certificate Exim generates (a warning: clients that verify certificates refuse it).
fn tls_only_auth(
    cfg: &Config,
    tls: &Tls,
    servers: &[&super::model::Driver],
    out: &mut Vec<Finding>,
) {
    if *tls == Tls::Certificate {
        return;
    }
    // Debian: tls_certificate only under `.ifdef MAIN_TLS_ENABLE` (exim4.conf.localmacros).
    let guard = guarding_macro(cfg, "tls_certificate");
    let mut places: Vec<(String, &Origin)> = Vec::new();
    if let Some(a) = cfg.option("auth_advertise_hosts") {
        if tls_guarded(&a.value) {
            places.push((
                "auth_advertise_hosts only offers AUTH".to_string(),
                &a.origin,
            ));
        }
    }
    for d in servers {
        if let Some(s) = d.setting("server_advertise_condition") {
            if tls_guarded(&s.value) {
                places.push((
                    format!("authenticator {} is only offered", d.name),
                    &s.origin,
                ));
            }
        }
    }
    for (what, origin) in places {
        let fd = match (tls, &guard) {
            (_, Some(m)) => f("EX123", format!("{what} over TLS, and tls_certificate is only set when the macro {m} is defined (not in these files; Debian defines it in exim4.conf.localmacros): {m} decides whether a real certificate is used{}", match tls {
                Tls::Off(why) => format!("; without it {why}, so AUTH never appears and mail clients get `550 relay not permitted`"),
                _ => "; without it Exim uses a self-signed certificate, which clients that verify certificates refuse".to_string(),
            }), origin).severity(Severity::Info),
            (Tls::Off(why), None) => f("EX123", format!("{what} over TLS, but {why}: AUTH never appears, so mail clients cannot authenticate and get `550 relay not permitted`"), origin),
            (_, None) => f("EX123", format!("{what} over TLS, and tls_certificate is unset: Exim (4.88 and later) uses a self-signed certificate it generates, which mail clients that verify certificates refuse, so those users cannot authenticate"), origin)
                .severity(Severity::Warning)
                .help("set tls_certificate and tls_privatekey to a certificate clients trust"),
        };
        out.push(fd);
    }
}

/// Debian's authenticators (conf.d/auth/30_exim4-config_examples, exim4.conf.template) wrap
/// their TLS guard in `.ifndef AUTH_SERVER_ALLOW_NOTLS_PASSWORDS`: when the macro is defined
/// (in 000_localmacros or exim4.conf.localmacros, files the admin owns) the guard is skipped.
/// Returns the macro and its definition when that is why `d` has no guard.
fn guard_skipped_by_macro(cfg: &Config, d: &super::model::Driver) -> Option<(String, Origin)> {
    let src = d.origin.src.as_ref()?;
    let mut open: Option<&str> = None;
    for (k, line) in src.text.lines().enumerate().skip(d.origin.line) {
        let t = line.trim();
        if k >= d.origin.line && !line.starts_with([' ', '\t', '#', '.']) && t.ends_with(':') {
            break; // the next driver
        }
        if t.starts_with("begin ") {
            break;
        }
        if let Some(name) = t.strip_prefix(".ifndef") {
            open = Some(name.trim());
        } else if t.starts_with(".endif") || t.starts_with(".else") {
            open = None;
        } else if let Some(name) = open {
            if t.starts_with("server_advertise_condition") {
                let m = cfg.macro_def(name)?;
                if m.builtin {
                    return None;
                }
                return m.origin.clone().map(|o| (name.to_string(), o));
            }
        }
    }
    None
}

/// Whether a statement can fire at all: a `senders`/`recipients`/`hosts` condition whose list
/// expands to nothing never matches (Debian gates callouts on optional files this way).
fn inert(ctx: &Context, s: &Stmt) -> bool {
    s.conds.iter().any(|c| {
        !c.negated
            && matches!(
                c.name.as_str(),
                "senders" | "recipients" | "hosts" | "domains" | "local_parts"
            )
            && expand(ctx, c.value())
                .map(|v| split(&v).is_empty())
                .unwrap_or(false)
    })
}

/// EX140 sender callouts, EX141 recipient callouts, EX142 use_sender/random callouts.
///
/// A callout refuses mail only where its failure decides the statement: `require
/// verify=…/callout` and `deny !verify=…/callout` (Exim specification, "Callout
/// verification"). As a positive condition of `deny`/`defer` a failed callout makes the
/// statement not fire; an unreachable server still answers 451 there unless `defer_ok`
/// (which counts "could not complete" as success). One finding per line: the probing
/// warning (EX142) is folded into EX140/EX141 when both apply.
fn callouts(ctx: &Context, cfg: &Config, acl_name: &str, out: &mut Vec<Finding>) {
    let Some(acl) = cfg.acl(acl_name) else { return };
    for s in &acl.stmts {
        if inert(ctx, s) {
            continue;
        }
        let refusing_verb = matches!(
            s.verb,
            Verb::Deny | Verb::Require | Verb::Drop | Verb::Defer
        );
        // Recipient probes limited to the admin's own domains go to the admin's own
        // backends: no harvesting signal to strangers.
        let own_domains_only = s.conds.iter().any(|c| {
            c.name == "domains"
                && !c.negated
                && split(c.value())
                    .iter()
                    .all(|d| matches!(d.as_str(), "+local_domains" | "+relay_to_domains"))
        });
        let backend = own_domains_only.then(|| backend_router(cfg)).flatten();
        for c in s.conds.iter().filter(|c| c.name == "verify") {
            let v = c.value().trim().to_ascii_lowercase();
            let (what, opts) = v.split_once('/').unwrap_or((v.as_str(), ""));
            if !opts.contains("callout") {
                continue;
            }
            if let (Some(router), "recipient", true) = (&backend, what, refusing_verb) {
                out.push(gateway_callout(c, router));
                continue;
            }
            let defer_ok = opts.contains("defer_ok");
            // Does a failed callout refuse the mail?
            let failure_refuses = refusing_verb && ((s.verb == Verb::Require) != c.negated);
            // Does an unreachable server refuse it (451)?
            let unreachable_refuses = refusing_verb && !defer_ok;
            let probe = (opts.contains("use_sender") || opts.contains("random"))
                && !(what == "recipient" && own_domains_only);
            let probe_tail = format!(
                "it probes with {}: remote servers see this as address harvesting or backscatter and blocklist the prober",
                if opts.contains("random") {
                    "a random local part"
                } else {
                    "the real sender address"
                }
            );
            let probe_text = format!("`{}`: {probe_tail}", c.render());
            if !failure_refuses && !unreachable_refuses {
                if probe {
                    out.push(f("EX142", probe_text, &c.origin));
                }
                continue;
            }
            let code = if what == "sender" { "EX140" } else { "EX141" };
            let who = if !failure_refuses {
                if what == "sender" {
                    "each sender's mail server"
                } else {
                    "the recipient's mail server"
                }
            } else if what == "sender" {
                "each sender's mail server (HELO; MAIL FROM:<>; RCPT TO:<sender>); senders whose MX is firewalled, greylists or refuses null senders are rejected (`Sender verify failed`), and servers that probe too often get blocklisted"
            } else {
                "the recipient's mail server; when it refuses the probe, senders are refused"
            };
            let mut msg = format!(
                "`{}` in `{}` makes Exim call back {who}{}",
                c.render(),
                s.verb.as_str(),
                if defer_ok {
                    ""
                } else {
                    "; without defer_ok, an unreachable server turns into a 451 temporary rejection (`Could not complete … verify callout`)"
                }
            );
            if probe {
                msg.push_str("; ");
                msg.push_str(&probe_tail);
            }
            // The catalogue's severity (error) is for the case without defer_ok; with it an
            // unreachable server no longer refuses mail (documented in the explanation).
            let mut fd = f(code, msg, &c.origin);
            if defer_ok {
                fd = fd.severity(Severity::Warning);
            } else {
                let raw = c.value().trim();
                let with = if raw.contains("callout=") {
                    format!("{raw},defer_ok")
                } else {
                    raw.replacen("callout", "callout=defer_ok", 1)
                };
                if let Some(fix) = replace_in_line(&c.origin, raw, &with, "accept the message when the callout cannot be completed (defer_ok); consider dropping the callout altogether") {
                    fd = fd.fix(fix);
                }
            }
            out.push(fd);
        }
    }
}

/// A manualroute router that sends the relay domains to named hosts: the mail-gateway
/// pattern, where the relay domains' mailboxes live on the site's own backend.
fn backend_router(cfg: &Config) -> Option<String> {
    cfg.routers
        .iter()
        .find(|r| {
            r.opt("driver").map(str::trim) == Some("manualroute")
                && r.opt("domains").is_some_and(|d| {
                    split(d)
                        .iter()
                        .any(|x| matches!(x.as_str(), "+relay_to_domains" | "+local_domains"))
                })
        })
        .map(|r| r.name.clone())
}

/// EX141 for a recipient callout limited to the site's own domains on a gateway that routes
/// them to its backend (issue #16 item 7): the standard way for a gateway to refuse unknown
/// recipients at RCPT time. A warning, and no defer_ok: with it, unknown recipients would be
/// accepted (and bounced later) whenever the backend is down.
fn gateway_callout(c: &super::model::Cond, router: &str) -> Finding {
    f(
        "EX141",
        format!(
            "`{}` asks your own backend (router {router} sends these domains there) whether each recipient exists: the usual mail-gateway check, but while the backend is unreachable every sender gets a 451 temporary rejection (`Could not complete recipient verify callout`)",
            c.render()
        ),
        &c.origin,
    )
    .severity(Severity::Warning)
    .help("Keep it, and keep the backend reachable from the gateway (monitor it); don't add defer_ok here: it would accept mail for unknown recipients while the backend is down and bounce it later (backscatter).")
}

/// EX150 dead/aggressive lists, EX151 unfiltered Spamhaus, EX152 +include_unknown/+defer_unknown.
fn dnsbl(cfg: &Config, out: &mut Vec<Finding>) {
    for a in &cfg.acls {
        for s in &a.stmts {
            let blocking = matches!(
                s.verb,
                Verb::Deny | Verb::Drop | Verb::Require | Verb::Defer
            );
            for c in s.conds.iter().filter(|c| c.name == "dnslists") {
                let mut fix_offered = false;
                for item in split(c.value()) {
                    let item = item.trim().to_string();
                    let zone = dnslist_zone(&item);
                    // The zone table is shared with the Postfix checker (rules/dnsbl.toml).
                    let known = crate::dnsbl::lookup(&zone);
                    let risky = known.filter(|z| {
                        matches!(
                            z.kind,
                            crate::dnsbl::Kind::Defunct | crate::dnsbl::Kind::Aggressive
                        )
                    });
                    if let (Some(z), true) = (risky, blocking) {
                        let why = z.now.as_deref().unwrap_or("it is not a usable blocklist");
                        out.push(f("EX150", format!("dnslists zone {zone} in `{}`: {why}; listing results are meaningless and legitimate mail may be refused", s.verb.as_str()), &c.origin.item(&item)));
                    }
                    let needs_filter = known.is_some_and(|z| z.kind == crate::dnsbl::Kind::Filter);
                    if blocking && needs_filter && !item.contains('=') && !item.contains('&') {
                        // Exim's `zone=a,b,...` lists the answers that count (Exim spec, "DNS
                        // lists keyed on ... specifying the IP address"): the real Spamhaus
                        // listing codes, never its 127.255.255.x error answers.
                        let filter = "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.9,127.0.0.10,127.0.0.11";
                        let mut fd = f("EX151", format!(
                            "dnslists = {item} without a return-code filter: Spamhaus answers 127.255.255.254 to queries through public resolvers and 127.255.255.255 when over the limit, so every client looks listed and all mail is refused; list the answers that count: `{zone}={filter}`"), &c.origin.item(&item));
                        // One fix per condition rewrites the whole list: every Spamhaus
                        // zone filtered, and the zones EX150 reports (closed or
                        // whole-network lists) dropped rather than kept.
                        if !fix_offered {
                            if let Some(fix) = dnslists_fix(c, filter) {
                                fd = fd.fix(fix);
                                fix_offered = true;
                            }
                        }
                        out.push(fd);
                    }
                    if blocking && (item == "+include_unknown" || item == "+defer_unknown") {
                        out.push(f("EX152", format!(
                            "`{item}` in a `{}` dnslists condition: when the DNS lookup fails, every client is {}", s.verb.as_str(),
                            if item == "+include_unknown" { "treated as listed and refused" } else { "deferred (451) until DNS works again" }), &c.origin.item(&item)));
                    }
                }
            }
        }
    }
}

/// The zone of a dnslists item (`zone=codes`, `zone&mask`, `zone!=...`, `zone/key`), lower case.
fn dnslist_zone(item: &str) -> String {
    item.split(['=', '&', '!', '/'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The dnslists value with every unfiltered Spamhaus zone given the listing-code filter and
/// the dead or aggressive zones (EX150) removed, as an edit of the condition's line.
fn dnslists_fix(c: &super::model::Cond, filter: &str) -> Option<Fix> {
    let raw = c.value().trim();
    let (prefix, sep) = match raw.strip_prefix('<') {
        Some(r) => {
            let sep = r.chars().next()?;
            (format!("<{sep} "), sep)
        }
        None => (String::new(), ':'),
    };
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for item in split(raw) {
        let zone = dnslist_zone(&item);
        let known = crate::dnsbl::lookup(&zone);
        match known.map(|z| &z.kind) {
            Some(crate::dnsbl::Kind::Defunct | crate::dnsbl::Kind::Aggressive) => {
                dropped.push(zone)
            }
            Some(crate::dnsbl::Kind::Filter) if !item.contains('=') && !item.contains('&') => {
                kept.push(format!("{item}={filter}"))
            }
            _ => kept.push(item),
        }
    }
    // Separators inside items are doubled in Exim lists.
    let doubled = format!("{sep}{sep}");
    let joined = kept
        .iter()
        .map(|i| i.replace(sep, &doubled))
        .collect::<Vec<_>>()
        .join(&format!(" {sep} "));
    let why = if dropped.is_empty() {
        "only count real Spamhaus listings (127.0.0.2-127.0.0.11), not its error answers"
            .to_string()
    } else {
        format!(
            "only count real Spamhaus listings (127.0.0.2-127.0.0.11), not its error answers, and drop {} (see EX150)",
            dropped.join(", ")
        )
    };
    replace_in_line(&c.origin, raw, &format!("{prefix}{joined}"), &why)
}

/// An (unsafe: behaviour-changing, for review) edit replacing the first `old` on the first
/// physical line of `origin` by `new`. None when the text is not on that line (e.g. it came
/// from a macro or a continuation line).
fn replace_in_line(origin: &Origin, old: &str, new: &str, why: &str) -> Option<Fix> {
    let src = origin.src.as_ref()?;
    let line = src.text.get(origin.start..origin.end)?;
    let at = line.find(old)?;
    let start = origin.start + at;
    Some(Fix::review(
        why,
        vec![src.edit(start..start + old.len(), new)],
    ))
}

/// The Exim version the version-dependent rules apply: `--target-version` (a pre-upgrade
/// check), else the one in use (`--exim-version`, the installed package); None when unknown.
pub fn effective_version(ctx: &Context) -> Option<super::version::EximVersion> {
    if let Some(t) = ctx.options.target_version.as_deref() {
        let (major, minor) = super::version::parse(t)?;
        return Some(super::version::EximVersion {
            major,
            minor,
            source: format!("{t} (--target-version)"),
        });
    }
    super::version::detect(ctx)
}

/// EX160 allow_insecure_tainted_data (removed in 4.96); EX161 tainted data where Exim refuses
/// it (src/exim/taint.rs).
fn upgrade(ctx: &Context, cfg: &Config, out: &mut Vec<Finding>) {
    let version = effective_version(ctx);
    if let Some(o) = cfg.option("allow_insecure_tainted_data") {
        let which = match &version {
            Some(v) if v.at_least(4, 96) => Some(format!("Exim {}", v.source)),
            Some(_) => None,
            None => Some("Exim 4.96 and later (the version in use is not known here; --exim-version sets it)".to_string()),
        };
        if let Some(which) = which {
            out.push(f("EX160", format!("allow_insecure_tainted_data was added in Exim 4.95 and removed in 4.96: {which} refuses to start with this option (\"unknown option\"), so no mail is accepted or delivered"), &o.origin));
        }
    }
    super::taint::check(cfg, version.as_ref(), out);
    super::tables::unknown_options(cfg, version.as_ref(), out);
}
