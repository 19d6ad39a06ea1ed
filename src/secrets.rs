//! Passwords that configuration files hold, so that no output repeats them, and the one
//! scrubber every printed text goes through (findings, traces, `--diff`, the Plesk commands'
//! database messages).
//!
//! Values are masked by their role after expansion, not by how their parameter is spelled
//! (issue #14):
//! - Postfix: parameters whose name says password (`*_password_maps`, `*password*`) or that
//!   are a near-miss of such a name (`smtp_sasl_pasword_maps`: PF005 renames it to the
//!   password map, and Postfix ignores it, but it still holds the password), with their
//!   value `$name`-expanded in main.cf's scope (`smtp_sasl_password_maps = $sasl_pw`), then
//!   `static:` / `inline:` credentials or the plain value; the entries of password map files
//!   that were read (`sasl_passwd`);
//! - Exim: `client_send` and `hide` options, with macros substituted (`PW = ^u^secret`,
//!   `client_send = PW`: the value is masked, not only the macro name);
//! - qmail: the `|user|password` of authenticated `smtproutes` and `authsenders` routes
//!   (qmail-remote(8) of the auth patch), and tcprules environment values whose variable
//!   names a password or secret (`SMTPAUTH_PASS="..."`).
//!
//! Findings quote configuration lines (PF004 shows both duplicates, the text renderer prints
//! the line, `--diff` the edit), so the rendered output as a whole is scrubbed.

use std::collections::HashMap;
use std::path::Path;

use crate::context::Context;
use crate::postfix::expand::{Expander, Lookup};

/// What replaces a secret.
pub const MASK: &str = "********";

/// Secrets found in the files this run read.
pub fn collect(ctx: &Context) -> Vec<String> {
    let mut files: Vec<(String, std::sync::Arc<crate::source::SourceFile>)> = Vec::new();
    for display in ctx.loaded_paths() {
        if let Some(src) = ctx.source(&display) {
            files.push((display.display().to_string(), src));
        }
    }
    // Postfix parameters of every main.cf read: master.cf `-o name=$x` expands in them too.
    // Built only when a file may hold a secret (most runs have none, and a 100,000-line
    // main.cf costs a tenth of its lint to index).
    let params = std::cell::OnceCell::new();
    let params = || {
        params.get_or_init(|| {
            let mut params: HashMap<String, String> = HashMap::new();
            for (name, src) in &files {
                if name.ends_with("/main.cf") {
                    for l in logical_lines(&src.text) {
                        if let Some((k, v)) = assignment(&l) {
                            params.insert(k.to_string(), v.to_string());
                        }
                    }
                }
            }
            params
        })
    };
    let mut out = Vec::new();
    for (display, src) in &files {
        let file = Path::new(display)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        if file == "smtproutes" || file == "authsenders" {
            qmail_routes(&src.text, &mut out);
        } else if file.starts_with("tcp.") && !file.ends_with(".cdb") {
            tcp_rules(&src.text, &mut out);
        } else if file.contains("passwd") || file.contains("password") {
            password_file(&src.text, &mut out);
        } else if [
            "pass",
            "pasw",
            "paswd",
            "client_send",
            "hide",
            "secret",
            "pwd",
        ]
        .iter()
        .any(|n| src.text.contains(n))
        {
            // Most files read (qmail's million-line control files among them) hold none: one
            // substring search each instead of a pass over every line.
            config(&src.text, file == "main.cf", params(), &mut out);
        }
    }
    finish(out)
}

/// Sorted, deduplicated, with the forms the output formats escape them into, longest first
/// (a password that contains another one is masked whole).
fn finish(mut out: Vec<String>) -> Vec<String> {
    let escaped: Vec<String> = out
        .iter()
        .flat_map(|s| {
            // JSON/SARIF escape quotes and backslashes; GitHub annotations percent-encode.
            let json = serde_json::to_string(s).unwrap_or_default();
            let json = json
                .strip_prefix('"')
                .and_then(|j| j.strip_suffix('"'))
                .unwrap_or("")
                .to_string();
            let gh = s
                .replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A")
                .replace(':', "%3A")
                .replace(',', "%2C");
            [json, gh]
        })
        .collect();
    out.extend(escaped);
    out.retain(|s| !s.is_empty());
    out.sort();
    out.dedup();
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// Lines with main.cf continuation lines (starting with whitespace) joined; comments and
/// blank lines dropped.
fn logical_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut lines = text.lines().peekable();
    std::iter::from_fn(move || loop {
        let l = lines.next()?;
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') || l.starts_with([' ', '\t']) {
            continue;
        }
        let mut s = t.to_string();
        while let Some(n) = lines.peek() {
            if n.starts_with([' ', '\t']) && !n.trim().is_empty() && !n.trim().starts_with('#') {
                s.push(' ');
                s.push_str(n.trim());
                lines.next();
            } else {
                break;
            }
        }
        return Some(s);
    })
}

/// `name = value` (also master.cf's `-o name=value`), trimmed.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let t = line.strip_prefix("-o").map(str::trim_start).unwrap_or(line);
    let (name, value) = t.split_once('=')?;
    Some((name.trim(), value.trim()))
}

/// A password map file (`[smtp.example.com]:587 user:password`).
fn password_file(text: &str, out: &mut Vec<String>) {
    for t in text.lines().map(str::trim) {
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        if let Some((_, v)) = t.split_once(char::is_whitespace) {
            push_credential(out, v.trim());
        }
    }
}

/// qmail-remote(8) (auth patch): `domain:relay[:port]|user|password` in smtproutes,
/// `sender[:relay:port]|user|password` in authsenders.
fn qmail_routes(text: &str, out: &mut Vec<String>) {
    for t in text.lines().map(str::trim) {
        let mut parts = t.splitn(3, '|');
        let (Some(_), Some(user), Some(pass)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if !pass.is_empty() {
            out.push(format!("{user}|{pass}"));
            out.push(pass.to_string());
        }
    }
}

/// tcprules source: `127.:allow,RELAYCLIENT="",SMTPAUTH_PASS="secret"`: values of variables
/// whose name says password, secret or token.
fn tcp_rules(text: &str, out: &mut Vec<String>) {
    for t in text.lines().map(str::trim) {
        let Some((_, rest)) = t.split_once(':') else {
            continue;
        };
        for item in split_env(rest) {
            let Some((var, value)) = item.split_once('=') else {
                continue;
            };
            let var = var.trim().to_ascii_uppercase();
            if ["PASS", "PWD", "SECRET", "TOKEN"]
                .iter()
                .any(|n| var.contains(n))
            {
                let v = value.trim();
                let v = v
                    .strip_prefix(['"', '\''])
                    .and_then(|x| x.strip_suffix(['"', '\'']))
                    .unwrap_or(v);
                push_credential(out, v);
            }
        }
    }
}

/// The comma-separated instructions of a tcprules line; commas inside quotes stay.
fn split_env(s: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ',') => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&s[start..]);
    items
}

/// Postfix main.cf/master.cf and Exim configuration lines.
fn config(text: &str, main_cf: bool, params: &HashMap<String, String>, out: &mut Vec<String>) {
    let mut macros: Vec<(String, String)> = Vec::new();
    // main.cf continues a value on indented lines; in master.cf and Exim's configuration
    // indentation is ordinary, so each line stands alone there.
    let lines: Vec<String> = if main_cf {
        logical_lines(text).collect()
    } else {
        text.lines()
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    for line in lines {
        let Some((name, value)) = assignment(&line) else {
            continue;
        };
        if exim_macro_name(name) {
            let value = substitute(value, &macros);
            macros.retain(|(n, _)| n != name);
            macros.push((name.to_string(), value));
            continue;
        }
        if name == "client_send" || name.starts_with("hide ") {
            push_credential(out, &substitute(value, &macros));
            continue;
        }
        if name.contains(char::is_whitespace) || !password_role(name) {
            continue;
        }
        let expanded = if value.contains('$') {
            Expander::new(Params(params))
                .text(value)
                .unwrap_or_else(|_| value.to_string())
        } else {
            value.to_string()
        };
        postfix_value(name, &expanded, out);
    }
}

/// Exim macro names start with an upper-case letter (readconf.c macro_read_assignment()).
fn exim_macro_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Exim's macros_expand() in definition order (substring replacement, as readconf.c does).
fn substitute(value: &str, macros: &[(String, String)]) -> String {
    let mut v = value.to_string();
    for (n, r) in macros {
        if v.contains(n.as_str()) && v.len() < 1 << 16 {
            v = v.replace(n.as_str(), r);
        }
    }
    v
}

/// Whether a Postfix parameter holds passwords: its name says so, or it is an unknown name
/// within the edit distance PF005 uses of a parameter that does.
fn password_role(name: &str) -> bool {
    if name.contains("password") || name.contains("passwd") {
        return true;
    }
    if !name.contains("pas") && !name.contains("wor") {
        return false;
    }
    let p = crate::postfix::params::get();
    if p.names().any(|n| n == name) {
        return false;
    }
    let limit = if name.len() > 16 { 3 } else { 2 };
    p.names()
        .filter(|n| n.contains("password"))
        .any(|n| strsim::levenshtein(name, n) <= limit)
}

/// Credentials in an expanded password parameter: `static:user:pass`, `inline:{k = v}`, or
/// (not a map) the value itself.
fn postfix_value(name: &str, value: &str, out: &mut Vec<String>) {
    for item in value.split([',', '\n']).map(str::trim) {
        if let Some(v) = item.strip_prefix("static:") {
            push_credential(out, v.trim_matches(|c| c == '{' || c == '}').trim());
        } else if let Some(v) = item.strip_prefix("inline:") {
            if let Some((_, val)) = v.split_once('=') {
                push_credential(out, val.trim().trim_matches(['{', '}', ' ']));
            }
        } else if item.contains('=') && !item.contains(':') {
            // The rest of an `inline:{ a = b, c = d }` list.
            if let Some((_, val)) = item.split_once('=') {
                push_credential(out, val.trim().trim_matches(['{', '}', ' ']));
            }
        } else if !name.ends_with("_maps") {
            push_credential(out, item);
        }
    }
    if let Some(v) = value.strip_prefix("static:") {
        // `static:{user:pass, with comma}` is one value.
        push_credential(out, v.trim_matches(['{', '}', ' ']));
    }
}

/// main.cf parameters for `$name` expansion of password parameters.
struct Params<'a>(&'a HashMap<String, String>);

impl Lookup for Params<'_> {
    fn raw(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// A credential value and, for `user:password` and Exim's `^user^password`, its password.
fn push_credential(out: &mut Vec<String>, v: &str) {
    if v.is_empty() || v.starts_with('$') {
        return;
    }
    out.push(v.to_string());
    // `static:user:pass # note`: Postfix reads the comment as part of the value (PF003), but
    // the password the admin meant is before it.
    if let Some((before, _)) = v.split_once(" #") {
        push_credential(out, before.trim());
    }
    for sep in [':', '^'] {
        if let Some((_, pass)) = v.rsplit_once(sep) {
            if pass.len() >= 3 {
                out.push(pass.to_string());
            }
        }
    }
}

/// `text` without any of `secrets`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    if secrets.is_empty() {
        return text.to_string();
    }
    mask(text, secrets)
}

/// Replaces each secret where it stands as a token (not inside a longer word): a password
/// echoed in a message is delimited by quotes, `:`, `@` or blanks, while masking every
/// substring would garble the text ("a" in `'admin'@'localhost'`) and, by showing which
/// words were masked, tell the reader the password. One pass over the text for all secrets
/// (the output of 300k findings is hundreds of megabytes).
pub fn mask(text: &str, secrets: &[String]) -> String {
    let pats: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    if pats.is_empty() {
        return text.to_string();
    }
    // A DFA scans fastest but costs more to build than a lint's own output takes to scan:
    // only a large text pays for it.
    let kind = (text.len() < 1 << 20).then_some(aho_corasick::AhoCorasickKind::ContiguousNFA);
    let Ok(ac) = aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .kind(kind)
        .build(&pats)
    else {
        return MASK.to_string();
    };
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in ac.find_iter(text) {
        let s = pats[m.pattern().as_usize()];
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        let alnum = |c: char| c.is_alphanumeric();
        let inside_word =
            (word(before) && s.starts_with(alnum)) || (word(after) && s.ends_with(alnum));
        if inside_word {
            continue;
        }
        out.push_str(&text[last..m.start()]);
        out.push_str(MASK);
        last = m.end();
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Options, Root};

    #[test]
    fn password_values_are_found_and_scrubbed() {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc/postfix");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("main.cf"),
            "smtp_sasl_password_maps = static:admin:OldSecr3t\nlmtp_sasl_password_maps = inline:{ [relay]:25 = bob:Inl1ne }\nmyhostname = mx.example.com\nsmtp_sasl_pasword_maps = static:typo:Typ0Secret\nsasl_pw = static:u:Indir3ctPw\nsmtp_sasl_password_maps = $sasl_pw\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("sasl_passwd"),
            "[smtp.example.com]:587 carol:F1leSecret\n",
        )
        .unwrap();
        let ctx = Context::new(Root::snapshot(d.path()), Options::default());
        ctx.load(&etc.join("main.cf")).unwrap();
        ctx.load(&etc.join("sasl_passwd")).unwrap();
        let s = collect(&ctx);
        let out = scrub(
            "smtp_sasl_password_maps = static:admin:OldSecr3t; bob:Inl1ne; carol:F1leSecret; mx.example.com; Typ0Secret Indir3ctPw",
            &s,
        );
        for secret in [
            "OldSecr3t",
            "Inl1ne",
            "F1leSecret",
            "Typ0Secret",
            "Indir3ctPw",
        ] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains("mx.example.com"), "{out}");
    }

    #[test]
    fn exim_macros_and_qmail_routes() {
        let mut out = Vec::new();
        config(
            "PW = ^user^Macr0Secret\nbegin authenticators\nplain:\n  driver = plaintext\n  client_send = PW\n",
            false,
            &HashMap::new(),
            &mut out,
        );
        assert!(out.iter().any(|s| s == "Macr0Secret"), "{out:?}");
        let mut out = Vec::new();
        qmail_routes(
            ":submission.relay.example:587|myuser|R0uteSecret\n",
            &mut out,
        );
        assert!(out.iter().any(|s| s == "R0uteSecret"), "{out:?}");
        let mut out = Vec::new();
        tcp_rules(
            "127.:allow,RELAYCLIENT=\"\",SMTPAUTH_PASS=\"Tcp,Secret\"\n",
            &mut out,
        );
        assert!(out.iter().any(|s| s == "Tcp,Secret"), "{out:?}");
    }

    #[test]
    fn scrub_masks_the_secret_as_a_token_only() {
        let secrets = |p: &str| vec![p.to_string()];
        let denied = "Access denied for user 'admin'@'localhost' (using password: YES)";
        // A short password that is part of other words leaves them alone.
        assert_eq!(mask(denied, &secrets("a")), denied);
        assert_eq!(
            mask("mysql://admin:s3cr3t@db/psa: refused", &secrets("s3cr3t")),
            "mysql://admin:********@db/psa: refused"
        );
        assert_eq!(
            mask("password 'Zq7-x' rejected", &secrets("Zq7-x")),
            "password '********' rejected"
        );
        // Punctuation-edged secrets are masked even next to letters.
        assert_eq!(mask("x:-p@ss-y", &secrets("-p@ss-")), "x:********y");
    }
}
