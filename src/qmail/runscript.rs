//! The qmail-smtpd services: daemontools/runit `run` scripts (tcpserver or sslserver in
//! front of qmail-smtpd) and xinetd services (Plesk's smtp_psa / smtps_psa / submission_psa
//! with tcp-env and relaylock). What matters for relaying is the environment qmail-smtpd
//! gets (RELAYCLIENT, SMTPAUTH, REQUIRE_AUTH, UCSPITLS, FORCETLS), the tcpserver rules file
//! (`-x`), and qmail-smtpd's arguments (the checkpassword program of the AUTH patches).
//!
//! Run scripts are shell. This is not a shell interpreter: it follows plain assignments and
//! exports, expands `$VAR` / `${VAR}` / `${VAR:-default}` from them, and reads the command
//! line that starts the server. What it cannot know (command substitutions, sourced files)
//! is kept as "dynamic" and never guessed into a finding.

use std::collections::HashMap;
use std::sync::Arc;

use crate::source::SourceFile;

/// How qmail-smtpd is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    Tcpserver,
    Sslserver,
    /// xinetd with tcp-env (Plesk).
    Xinetd,
}

/// An environment variable qmail-smtpd receives from the script or the xinetd `env` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    /// None: set from something the static reading cannot know.
    pub value: Option<String>,
    pub line: usize,
    /// Set inside an if/case/for block or after `&&`/`||`: may or may not apply.
    pub conditional: bool,
    /// The condition it depends on, as written (`[ -f /etc/relay ]`, `case $HOST in mx1)`).
    pub condition: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Service {
    /// "smtp", "submission", "smtps", or the run directory / xinetd service name.
    pub name: String,
    pub file: Arc<SourceFile>,
    /// Line of the command that starts the server.
    pub line: usize,
    pub launcher: Launcher,
    pub port: Option<String>,
    pub env: Vec<EnvVar>,
    /// `-x rules.cdb` as written (absolute path on the server), and whether `-X` lets
    /// tcpserver run without it.
    pub rules_cdb: Option<String>,
    pub allow_no_rules: bool,
    /// Arguments after qmail-smtpd (checkpassword program and its subprogram for AUTH).
    pub smtpd_args: Vec<String>,
    /// Plesk's relaylock sits before qmail-smtpd (POP-before-SMTP and the white list).
    pub relaylock: bool,
    /// TLS from the first byte (port 465 style): sslserver without -n/UCSPITLS, a TLS
    /// wrapper program in front of qmail-smtpd, or SMTPS set for the qmail-tls patch.
    pub implicit_tls: bool,
    /// A TLS program in the chain before qmail-smtpd (tlswrapper, stunnel, sslio), and
    /// whether it waits for STARTTLS (tlswrapper -n with tlswrapper-smtp) instead of
    /// speaking TLS from the first byte.
    pub tls_wrapper: Option<(String, bool)>,
    /// Things this reading could not resolve (shown in simulate's depends_on).
    pub dynamic: Vec<String>,
    /// The qmail-smtpd program as written in the command (absolute path on the server).
    pub smtpd_path: Option<String>,
    /// What that binary shows of its AUTH-before-TLS switch, when the loader could read
    /// it (None: not found, as in most snapshots).
    pub build: Option<AuthTlsSwitch>,
}

/// The switch an AUTH/TLS patch set compiles into qmail-smtpd to hold AUTH back until
/// STARTTLS, found by the name it reads from the environment (a string in the binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthTlsSwitch {
    /// Marcel Telka's force-tls patch (sagredo's distribution): `FORCETLS`, on unless
    /// `FORCETLS=0` (sagredo-dev/qmail qmail-smtpd.c: `int forcetls = 1;`, `x =
    /// env_get("FORCETLS"); if (x) if (!str_diff(x, "0")) forcetls = 0;`, and smtp_ehlo
    /// prints AUTH only `if (!forcetls || ssl)`).
    ForceTls,
    /// jms1's combined patch: AUTH in clear only with `ALLOW_INSECURE_AUTH` set
    /// (../shared/docs/factcheck/rules.md, QM008 row).
    AllowInsecureAuth,
    /// Neither: AUTH is advertised whether or not TLS is up (netqmail-1.05-tls-smtpauth
    /// qmail-smtpd.c smtp_ehlo; QMailToaster qmailtoaster-1.3.2.patch smtp_ehlo prints
    /// `250 AUTH LOGIN PLAIN` unconditionally).
    None,
}

impl Service {
    /// The last value of an environment variable (unconditional settings win over
    /// conditional ones).
    pub fn env_var(&self, name: &str) -> Option<&EnvVar> {
        let mut found: Option<&EnvVar> = None;
        for v in self.env.iter().filter(|v| v.name == name) {
            match found {
                Some(f) if !f.conditional && v.conditional => {}
                _ => found = Some(v),
            }
        }
        found
    }

    pub fn port_number(&self) -> Option<u16> {
        let p = self.port.as_deref()?;
        match p {
            "smtp" => Some(25),
            "submission" => Some(587),
            "smtps" | "ssmtp" | "urd" => Some(465),
            _ => p.parse().ok(),
        }
    }

    /// Submission services: port 587, or named for it.
    pub fn is_submission(&self) -> bool {
        self.port_number() == Some(587)
            || self.name.contains("submission")
            || self.name.contains("smtpsub")
    }
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Is this file a qmail-smtpd run script or xinetd service (cheap test on the text)?
pub fn looks_like_service(text: &str) -> bool {
    text.contains("qmail-smtpd")
        && (text.contains("tcpserver")
            || text.contains("sslserver")
            || text.contains("tcp-env")
            || text.contains("server_args"))
}

/// Logical lines: backslash-newline continuations joined; (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut first = 0;
    for (i, raw) in text.lines().enumerate() {
        if cur.is_empty() {
            first = i + 1;
        }
        if let Some(x) = raw.strip_suffix('\\') {
            cur.push_str(x);
            cur.push(' ');
            continue;
        }
        cur.push_str(raw);
        out.push((first, std::mem::take(&mut cur)));
    }
    if !cur.is_empty() {
        out.push((first, cur));
    }
    out
}

/// Shell words of a line, quotes removed; `#` starts a comment at a word start.
/// A word containing a command substitution is returned with a leading '\u{0}' marker.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut dynamic = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | ';' => {
                if in_word {
                    push_word(&mut out, &mut cur, dynamic);
                    in_word = false;
                    dynamic = false;
                }
                if c == ';' {
                    out.push(";".into());
                }
            }
            '#' if !in_word => break,
            '"' => {
                in_word = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e);
                            }
                        }
                        '`' => {
                            dynamic = true;
                            cur.push(d);
                        }
                        '$' if chars.peek() == Some(&'(') => {
                            dynamic = true;
                            cur.push(d);
                        }
                        _ => cur.push(d),
                    }
                }
            }
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '`' => {
                in_word = true;
                dynamic = true;
                cur.push(c);
                for d in chars.by_ref() {
                    cur.push(d);
                    if d == '`' {
                        break;
                    }
                }
            }
            '$' if chars.peek() == Some(&'(') => {
                in_word = true;
                dynamic = true;
                let mut depth = 0;
                cur.push(c);
                for d in chars.by_ref() {
                    cur.push(d);
                    if d == '(' {
                        depth += 1;
                    } else if d == ')' {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        push_word(&mut out, &mut cur, dynamic);
    }
    out
}

fn push_word(out: &mut Vec<String>, cur: &mut String, dynamic: bool) {
    let w = std::mem::take(cur);
    out.push(if dynamic { format!("\u{0}{w}") } else { w });
}

/// A word whose value only the running shell knows.
pub fn is_dynamic(w: &str) -> bool {
    w.contains('$') || w.contains('`')
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

#[derive(Debug, Clone)]
struct ShVar {
    value: Option<String>,
    line: usize,
    exported: bool,
    conditional: bool,
    condition: Option<String>,
}

/// An open if/while/until/case/for block of a run script: its condition as written, and
/// whether it is a `case` (whose `pattern)` words start the commands inside it).
struct Block {
    condition: String,
    case: bool,
    /// The `pattern)` of the case branch being read.
    pattern: Option<String>,
}

impl Block {
    fn shown(&self) -> String {
        match &self.pattern {
            Some(p) => format!("{} {p}", self.condition),
            None => self.condition.clone(),
        }
    }
}

/// Command separators among a line's words.
fn is_separator(w: &str) -> bool {
    matches!(w, ";" | "&&" | "||" | "|" | "&")
}

/// The words of a line cut into simple commands: (separator before it, its words).
fn commands(ws: &[String]) -> Vec<(Option<&str>, &[String])> {
    let mut out = Vec::new();
    let mut sep: Option<&str> = None;
    let mut start = 0;
    for (i, w) in ws.iter().enumerate() {
        if is_separator(w) {
            if i > start {
                out.push((sep, &ws[start..i]));
            }
            sep = Some(w.as_str());
            start = i + 1;
        } else if w == "in" && ws.get(start).is_some_and(|f| f == "case") {
            // `case WORD in pattern) command ;;` on one line: the branch starts after `in`.
            out.push((sep, &ws[start..=i]));
            sep = None;
            start = i + 1;
        }
    }
    if start < ws.len() {
        out.push((sep, &ws[start..]));
    }
    out
}

fn shown(ws: &[String]) -> String {
    ws.iter()
        .map(|w| w.trim_start_matches('\u{0}'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Expand `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}` from known variables.
/// Unknown variables stay as `${NAME}`; a word with a command substitution gives None.
fn expand(word: &str, vars: &HashMap<String, ShVar>) -> Option<String> {
    if word.starts_with('\u{0}') {
        return None;
    }
    let mut out = String::new();
    let b = word.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            let (name, default, next) = if b[i + 1] == b'{' {
                let close = word[i..].find('}').map(|p| i + p)?;
                let inner = &word[i + 2..close];
                let (n, d) = match inner.find([':', '-']) {
                    Some(p) => {
                        let d = inner[p..].trim_start_matches(':');
                        (&inner[..p], d.strip_prefix('-').map(str::to_string))
                    }
                    None => (inner, None),
                };
                (n.to_string(), d, close + 1)
            } else {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j == i + 1 {
                    out.push('$');
                    i += 1;
                    continue;
                }
                (word[i + 1..j].to_string(), None, j)
            };
            match vars.get(&name).and_then(|v| v.value.clone()) {
                Some(v) if !v.is_empty() || default.is_none() => out.push_str(&v),
                _ => match default {
                    Some(d) => out.push_str(&d),
                    // Unknown: kept as written, so consumers see a '$' and treat the
                    // value as dynamic instead of guessing.
                    None => {
                        out.push_str("${");
                        out.push_str(&name);
                        out.push('}');
                    }
                },
            }
            i = next;
        } else {
            // Safe: i indexes a char boundary because we only stop on ASCII bytes.
            let ch_len = word[i..].chars().next().map(char::len_utf8).unwrap_or(1);
            out.push_str(&word[i..i + ch_len]);
            i += ch_len;
        }
    }
    Some(out)
}

/// Read a run script into a service, or None if it does not start qmail-smtpd under
/// tcpserver/sslserver.
pub fn parse_run_script(file: Arc<SourceFile>, dir_name: &str) -> Option<Service> {
    let mut vars: HashMap<String, ShVar> = HashMap::new();
    let mut dynamic = Vec::new();
    let mut command: Option<(usize, Vec<Option<String>>)> = None;
    let mut blocks: Vec<Block> = Vec::new();
    for (line_no, line) in logical_lines(&file.text) {
        let ws = words(&line);
        if ws.is_empty() {
            continue;
        }
        // Each simple command of the line in turn: block keywords open and close the
        // conditions, `a && b` / `a || b` make b depend on a.
        let mut only_assignments = true;
        let mut prev: Option<&[String]> = None;
        for (sep, cmd) in commands(&ws) {
            let (rest, pattern) = command_words(cmd, &blocks);
            let after_andor = matches!(sep, Some("&&") | Some("||"));
            let andor_cond = prev
                .filter(|_| after_andor)
                .map(|p| format!("{} {}", shown(p), sep.unwrap_or("")));
            prev = Some(cmd);
            // Inside a case, the pattern is part of the condition.
            if let (Some(p), Some(b)) = (pattern, blocks.last_mut()) {
                b.pattern = Some(p);
            }
            match rest.first().map(String::as_str) {
                Some(kw @ ("if" | "elif" | "while" | "until" | "case" | "for")) => {
                    only_assignments = false;
                    let condition = shown(rest);
                    if kw == "elif" {
                        if let Some(b) = blocks.last_mut() {
                            b.condition = condition;
                        }
                    } else {
                        blocks.push(Block {
                            condition,
                            case: kw == "case",
                            pattern: None,
                        });
                    }
                    continue;
                }
                Some("fi" | "done" | "esac") => {
                    blocks.pop();
                    continue;
                }
                Some("." | "source") => {
                    if let Some(f) = rest.get(1) {
                        dynamic.push(format!("variables from {f} (sourced at line {line_no})"));
                    }
                    only_assignments = false;
                    continue;
                }
                None => continue,
                _ => {}
            }
            let condition = andor_cond.or_else(|| {
                (!blocks.is_empty()).then(|| {
                    blocks
                        .iter()
                        .map(Block::shown)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            });
            if !assign(rest, line_no, condition, &mut vars) {
                only_assignments = false;
            }
        }
        if only_assignments {
            continue;
        }
        let expanded = expand_command(&ws, &vars);
        let has = |n: &str| expanded.iter().flatten().any(|w| basename(w) == n);
        if (has("tcpserver") || has("sslserver")) && has("qmail-smtpd") {
            command = Some((line_no, expanded));
        }
    }
    let (line, cmd) = command?;
    let mut svc = Service {
        name: dir_name.to_string(),
        file: Arc::clone(&file),
        line,
        launcher: Launcher::Tcpserver,
        port: None,
        env: Vec::new(),
        rules_cdb: None,
        allow_no_rules: false,
        smtpd_args: Vec::new(),
        relaylock: false,
        implicit_tls: false,
        tls_wrapper: None,
        dynamic,
        smtpd_path: None,
        build: None,
    };
    for (name, v) in &vars {
        if v.exported {
            svc.env.push(EnvVar {
                name: name.clone(),
                value: v.value.clone(),
                line: v.line,
                conditional: v.conditional,
                condition: v.condition.clone(),
            });
        }
    }
    svc.env.sort_by_key(|e| e.line);
    read_command(&mut svc, &cmd);
    Some(svc)
}

/// A simple command without its leading block words (`then`, `do`, `{`, `!`, ...) and, in
/// a case block, the `pattern)` it starts with.
fn command_words<'a>(cmd: &'a [String], blocks: &[Block]) -> (&'a [String], Option<String>) {
    let mut k = 0;
    let mut pattern = None;
    while let Some(w) = cmd.get(k) {
        let in_case = blocks.last().is_some_and(|b| b.case);
        if matches!(w.as_str(), "then" | "else" | "do" | "{" | "}" | "!") {
            k += 1;
        } else if in_case && w.ends_with(')') && !w.contains('=') {
            pattern = Some(w.clone());
            k += 1;
        } else {
            break;
        }
    }
    (cmd.get(k..).unwrap_or(&[]), pattern)
}

/// Follow the assignments (`A=b`, `export A=b C`) that start the command `rest` under
/// `condition` (None: unconditional). True when the command is nothing but assignments or
/// an `export`.
fn assign(
    rest: &[String],
    line_no: usize,
    condition: Option<String>,
    vars: &mut HashMap<String, ShVar>,
) -> bool {
    let conditional = condition.is_some();
    let mut k = 0;
    let exported = rest.first().map(|w| w == "export").unwrap_or(false);
    if exported {
        k += 1;
    }
    let mut assigned_any = false;
    while let Some(w) = rest.get(k) {
        let raw = w.trim_start_matches('\u{0}');
        match raw.split_once('=') {
            Some((name, _)) if is_name(name) => {
                let value = if w.starts_with('\u{0}') {
                    None
                } else {
                    expand(&w[name.len() + 1..], vars)
                };
                let keep_old = conditional
                    && vars
                        .get(name)
                        .map(|o| o.value.as_deref().is_some_and(|v| !v.is_empty()))
                        .unwrap_or(false)
                    && value.as_deref().is_some_and(str::is_empty);
                let was_exported = vars.get(name).map(|o| o.exported).unwrap_or(false);
                if !keep_old {
                    vars.insert(
                        name.to_string(),
                        ShVar {
                            value,
                            line: line_no,
                            exported: exported || was_exported,
                            conditional,
                            condition: condition.clone(),
                        },
                    );
                }
                assigned_any = true;
            }
            _ if exported && is_name(raw) => {
                let e = vars.entry(raw.to_string()).or_insert(ShVar {
                    value: None,
                    line: line_no,
                    exported: true,
                    conditional,
                    condition: condition.clone(),
                });
                e.exported = true;
            }
            _ => break,
        }
        k += 1;
    }
    assigned_any && k >= rest.len() || exported
}

/// The server command: expand every word, then split expanded words again (an unquoted
/// $CMD holding a whole command line).
fn expand_command(ws: &[String], vars: &HashMap<String, ShVar>) -> Vec<Option<String>> {
    let mut expanded: Vec<Option<String>> = Vec::new();
    for w in ws {
        match expand(w, vars) {
            Some(x) if w.contains('$') => {
                expanded.extend(x.split_whitespace().map(|s| Some(s.to_string())))
            }
            Some(x) => expanded.push(Some(x)),
            None => expanded.push(Some(w.trim_start_matches('\u{0}').to_string())),
        }
    }
    expanded
}

/// Options of tcpserver/sslserver that take an argument.
const ARG_OPTS: &str = "cCxBgubltTiIjkKLnNfa";

fn read_command(svc: &mut Service, cmd: &[Option<String>]) {
    let Some(si) = cmd.iter().position(|w| {
        w.as_deref()
            .map(|w| matches!(basename(w), "tcpserver" | "sslserver"))
            .unwrap_or(false)
    }) else {
        return;
    };
    // `env A=b` or `A=b` words before the server set its environment.
    for w in cmd[..si].iter().flatten() {
        env_word(svc, w);
    }
    let ssl = cmd[si].as_deref().map(basename) == Some("sslserver");
    svc.launcher = if ssl {
        Launcher::Sslserver
    } else {
        Launcher::Tcpserver
    };
    let mut starttls = false;
    let mut i = si + 1;
    // Options. sslserver's -n is "no TLS until STARTTLS" only with UCSPITLS; without an
    // argument-taking meaning there (ucspi-ssl: -n is a flag), so treat n as a flag for it.
    let arg_opts: String = if ssl {
        ARG_OPTS.replace('n', "")
    } else {
        ARG_OPTS.to_string()
    };
    while let Some(w) = cmd.get(i) {
        let Some(w) = w.as_deref() else {
            i += 1;
            continue;
        };
        if !w.starts_with('-') || w == "-" {
            break;
        }
        let opts: Vec<char> = w[1..].chars().collect();
        let mut j = 0;
        while j < opts.len() {
            let o = opts[j];
            if arg_opts.contains(o) {
                let rest: String = opts[j + 1..].iter().collect();
                let arg = if rest.is_empty() {
                    i += 1;
                    cmd.get(i).cloned().flatten()
                } else {
                    Some(rest)
                };
                if o == 'x' {
                    match arg.filter(|a| !is_dynamic(a)) {
                        Some(a) => svc.rules_cdb = Some(a),
                        None => svc
                            .dynamic
                            .push("the -x rules file (set from a variable)".into()),
                    }
                }
                break;
            }
            if o == 'X' {
                svc.allow_no_rules = true;
            }
            if o == 'n' && ssl {
                starttls = true;
            }
            j += 1;
        }
        i += 1;
    }
    // host, port
    i += 1;
    svc.port = cmd.get(i).cloned().flatten().filter(|p| !is_dynamic(p));
    i += 1;
    let chain = cmd.get(i..).unwrap_or(&[]);
    read_chain(svc, chain);
    if ssl {
        // ucspi-ssl: with -n/UCSPITLS the handshake waits for STARTTLS; otherwise the whole
        // connection is TLS (port 465 style).
        let ucspitls = svc.env_var("UCSPITLS").is_some();
        svc.implicit_tls = !(starttls || ucspitls);
    }
    // qmail-tls (Vermeulen) and the patch sets built on it (QMailToaster, sagredo): with
    // SMTPS set qmail-smtpd starts TLS itself before the greeting (qmail-smtpd.c
    // `if (env_get("SMTPS")) { smtps = 1; tls_init(); }`).
    if svc.env_var("SMTPS").is_some_and(|v| !v.conditional) {
        svc.implicit_tls = true;
    }
    if let Some((_, starttls)) = &svc.tls_wrapper {
        svc.implicit_tls |= !starttls;
    }
    if let Some(p) = svc.port_number() {
        svc.name = match p {
            25 => "smtp".into(),
            587 => "submission".into(),
            465 => "smtps".into(),
            _ => svc.name.clone(),
        };
    }
}

/// The program chain after host and port: relaylock, env settings, qmail-smtpd and its args.
fn read_chain(svc: &mut Service, chain: &[Option<String>]) {
    let mut k = 0;
    while k < chain.len() {
        match chain[k].as_deref() {
            Some(w) if basename(w) == "relaylock" => svc.relaylock = true,
            // TLS wrappers: tlswrapper(1) speaks TLS from the first byte unless -n defers it
            // to tlswrapper-smtp's STARTTLS (janmojzis/tlswrapper examples.md); stunnel and
            // ucspi-ssl's sslio in the chain likewise.
            Some(w) if matches!(basename(w), "tlswrapper" | "stunnel" | "sslio") => {
                let starttls = chain[k + 1..]
                    .iter()
                    .flatten()
                    .any(|a| basename(a) == "tlswrapper-smtp");
                svc.tls_wrapper = Some((basename(w).to_string(), starttls));
            }
            Some(w) if basename(w) == "qmail-smtpd" => {
                svc.smtpd_path = Some(w.to_string()).filter(|w| w.starts_with('/'));
                for a in &chain[k + 1..] {
                    match a.as_deref() {
                        Some(a) if a.starts_with('2') && a.contains('>') => break,
                        Some(a) if a.starts_with('>') || a == "|" || a == ";" || a == "&&" => break,
                        Some(a) => {
                            if is_dynamic(a) {
                                svc.dynamic
                                    .push(format!("qmail-smtpd argument {a} (set at run time)"));
                            }
                            svc.smtpd_args.push(a.to_string())
                        }
                        None => {
                            svc.smtpd_args.push("?".into());
                            svc.dynamic
                                .push("a qmail-smtpd argument set from a variable".into());
                        }
                    }
                }
                return;
            }
            Some(w) => env_word(svc, w),
            None => {}
        }
        k += 1;
    }
}

/// A `NAME=value` word of the command line (after `env`, or before the server) sets
/// qmail-smtpd's environment; PATH only finds programs.
fn env_word(svc: &mut Service, w: &str) {
    if let Some((n, v)) = w.split_once('=') {
        if is_name(n) && n != "PATH" {
            svc.env.push(EnvVar {
                name: n.to_string(),
                value: Some(v.to_string()),
                line: svc.line,
                conditional: false,
                condition: None,
            });
        }
    }
}

/// An xinetd service's settings: key -> (value, line).
type XinetdKeys = HashMap<String, (String, usize)>;

/// Read an xinetd file: every `service NAME { ... }` whose server or server_args run
/// qmail-smtpd.
pub fn parse_xinetd(file: Arc<SourceFile>) -> Vec<Service> {
    let mut out = Vec::new();
    let mut cur: Option<(String, usize, XinetdKeys)> = None;
    for (n, raw) in file.text.lines().enumerate() {
        let line = raw.trim();
        let n = n + 1;
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("service") {
            if rest.starts_with([' ', '\t']) {
                cur = Some((rest.trim().to_string(), n, HashMap::new()));
                continue;
            }
        }
        if line == "}" {
            if let Some((name, start, kv)) = cur.take() {
                if let Some(s) = xinetd_service(&file, &name, start, &kv) {
                    out.push(s);
                }
            }
            continue;
        }
        if let Some((_, _, kv)) = cur.as_mut() {
            let (k, v) = match line.split_once("+=") {
                Some((k, v)) => (k.trim().to_string() + "+", v.trim()),
                None => match line.split_once('=') {
                    Some((k, v)) => (k.trim().to_string(), v.trim()),
                    None => continue,
                },
            };
            let e = kv.entry(k.trim_end_matches('+').to_string()).or_default();
            if k.ends_with('+') && !e.0.is_empty() {
                e.0.push(' ');
                e.0.push_str(v);
            } else {
                e.0 = v.to_string();
            }
            e.1 = n;
        }
    }
    out
}

fn xinetd_service(
    file: &Arc<SourceFile>,
    name: &str,
    start: usize,
    kv: &XinetdKeys,
) -> Option<Service> {
    let server = kv.get("server").map(|x| x.0.as_str()).unwrap_or("");
    let (args, args_line) = kv
        .get("server_args")
        .map(|x| (x.0.as_str(), x.1))
        .unwrap_or(("", start));
    if !server.contains("qmail-smtpd") && !args.contains("qmail-smtpd") {
        return None;
    }
    if kv.get("disable").map(|x| x.0 == "yes").unwrap_or(false) {
        return None;
    }
    let mut svc = Service {
        name: name.to_string(),
        file: Arc::clone(file),
        line: args_line,
        launcher: Launcher::Xinetd,
        port: kv
            .get("port")
            .map(|x| x.0.clone())
            .or_else(|| Some(name.to_string())),
        env: Vec::new(),
        rules_cdb: None,
        allow_no_rules: true,
        smtpd_args: Vec::new(),
        relaylock: false,
        implicit_tls: false,
        tls_wrapper: None,
        dynamic: Vec::new(),
        smtpd_path: None,
        build: None,
    };
    if let Some((env, l)) = kv.get("env") {
        for w in env.split_whitespace() {
            if let Some((n, v)) = w.split_once('=') {
                svc.env.push(EnvVar {
                    name: n.to_string(),
                    value: Some(v.to_string()),
                    line: *l,
                    conditional: false,
                    condition: None,
                });
            }
        }
    }
    let mut chain: Vec<Option<String>> = vec![Some(server.to_string())];
    chain.extend(args.split_whitespace().map(|s| Some(s.to_string())));
    // tcp-env options before the program.
    let first_prog = chain
        .iter()
        .skip(1)
        .position(|w| w.as_deref().is_some_and(|w| !w.starts_with('-')))
        .map(|p| p + 1)
        .unwrap_or(chain.len());
    read_chain(&mut svc, chain.get(first_prog..).unwrap_or(&[]));
    // Plesk's smtps_psa: xinetd's smtps service; TLS is qmail's own (SMTPS env).
    if svc.port_number() == Some(465) || svc.env.iter().any(|e| e.name == "SMTPS") {
        svc.implicit_tls = true;
    }
    if let Some(p) = svc.port_number() {
        svc.name = match p {
            25 => "smtp".into(),
            587 => "submission".into(),
            465 => "smtps".into(),
            _ => svc.name,
        };
    }
    Some(svc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(text: &str) -> Service {
        parse_run_script(Arc::new(SourceFile::from_text("run", text)), "qmail-smtpd").unwrap()
    }

    #[test]
    fn classic_run_script() {
        let s = svc("#!/bin/sh\nQMAILDUID=`id -u qmaild`\nexport SMTPAUTH=\"!\"\nexec /usr/local/bin/tcpserver -v -R -l \"$LOCAL\" \\\n  -x /etc/tcp.smtp.cdb -c 20 -u $QMAILDUID -g 1 0 smtp \\\n  /var/qmail/bin/qmail-smtpd /home/vpopmail/bin/vchkpw /bin/true 2>&1\n");
        assert_eq!(s.name, "smtp");
        assert_eq!(s.line, 4);
        assert_eq!(s.rules_cdb.as_deref(), Some("/etc/tcp.smtp.cdb"));
        assert_eq!(s.smtpd_args, vec!["/home/vpopmail/bin/vchkpw", "/bin/true"]);
        assert_eq!(s.env_var("SMTPAUTH").unwrap().value.as_deref(), Some("!"));
    }

    #[test]
    fn command_built_in_variables() {
        let s = svc("SCMD=/usr/local/bin/sslserver\nIP=0\nPORT=smtp\nSMTP_CDB=\"/var/qmail/control/rules.smtpd.cdb\"\nif [ x ]; then\n  ACMD=\"\"\nelse\n  ACMD=\"-x $SMTP_CDB\"\nfi\nCMD=\"$SCMD -seVn -Rp -l x $ACMD $IP $PORT\"\nCMD=\"$CMD /var/qmail/bin/qmail-smtpd\"\nexec $CMD 2>&1\n");
        assert_eq!(
            s.rules_cdb.as_deref(),
            Some("/var/qmail/control/rules.smtpd.cdb")
        );
        assert_eq!(s.launcher, Launcher::Sslserver);
        assert!(!s.implicit_tls);
        assert_eq!(s.name, "smtp");
    }

    #[test]
    fn plesk_xinetd() {
        let t = "service smtp\n{\n\tsocket_type = stream\n\tserver = /var/qmail/bin/tcp-env\n\tserver_args = -Rt0 /var/qmail/bin/relaylock /var/qmail/bin/qmail-smtpd /var/qmail/bin/smtp_auth /var/qmail/bin/true /var/qmail/bin/cmd5checkpw /var/qmail/bin/true\n}\n";
        let v = parse_xinetd(Arc::new(SourceFile::from_text("smtp_psa", t)));
        assert_eq!(v.len(), 1);
        assert!(v[0].relaylock);
        assert_eq!(v[0].smtpd_args[0], "/var/qmail/bin/smtp_auth");
        assert_eq!(v[0].name, "smtp");
    }

    #[test]
    fn relayclient_under_a_condition_is_conditional() {
        let exec = "exec tcpserver 0 smtp /var/qmail/bin/qmail-smtpd 2>&1\n";
        for (script, cond) in [
            (
                "if [ -f /etc/x ]; then export RELAYCLIENT=\"\"; fi\n",
                Some("if [ -f /etc/x ]"),
            ),
            (
                "if [ -f /etc/x ]\nthen\n  RELAYCLIENT=\"\"\n  export RELAYCLIENT\nfi\n",
                Some("if [ -f /etc/x ]"),
            ),
            (
                "[ -f /etc/x ] && export RELAYCLIENT=\"\"\n",
                Some("[ -f /etc/x ] &&"),
            ),
            (
                "test -n \"$A\" || export RELAYCLIENT=\"\"\n",
                Some("test -n $A ||"),
            ),
            (
                "case \"$HOST\" in\n  mx1) export RELAYCLIENT=\"\" ;;\nesac\n",
                Some("case $HOST in mx1)"),
            ),
            (
                "case $HOST in mx1) export RELAYCLIENT=\"\" ;; esac\n",
                Some("case $HOST in mx1)"),
            ),
            (
                "if [ -f /etc/x ]; then :; fi; export RELAYCLIENT=\"\"\n",
                None,
            ),
            ("case $H in a) X=1 ;; esac\nexport RELAYCLIENT=\"\"\n", None),
        ] {
            let s = svc(&format!("#!/bin/sh\n{script}{exec}"));
            let e = s
                .env_var("RELAYCLIENT")
                .unwrap_or_else(|| panic!("{script}"));
            assert_eq!(e.conditional, cond.is_some(), "{script}");
            assert_eq!(e.condition.as_deref(), cond, "{script}");
            assert_eq!(e.value.as_deref(), Some(""), "{script}");
        }
    }
}
