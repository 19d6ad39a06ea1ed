//! PF013: main.cf/master.cf files that are templates of a deployment tool (Jinja `{{ x }}`,
//! `{% if %}` and `{# #}`, modoboa's `%{x}`, iRedMail's `PH_X`, autoconf's `@X@`, ISPConfig's `{x}` in
//! paths). Postfix would read the placeholders literally; relaydoctor says once per file that
//! it is a template, and drops the other findings that only restate a placeholder (an
//! "unknown parameter" `%{dovecot_enabled}virtual_transport`, a master.cf field
//! `%{amavis_enabled}`), so a template repository gets one clear finding instead of a hundred.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::finding::{Finding, Mta};
use crate::source::SourceFile;

/// The first placeholder on a line, if any.
pub fn placeholder(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    // Every form below needs a `{`, an `@` or the `P` of `PH_`: most lines have none (a
    // 100,000-line main.cf spends its time here otherwise).
    if !b.iter().any(|&c| matches!(c, b'{' | b'@' | b'P')) {
        return None;
    }
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    for i in 0..b.len() {
        match b[i] {
            // `{{ name }}`, `{{- x }}`, `{% if %}`.
            b'{' if matches!(b.get(i + 1), Some(b'{') | Some(b'%') | Some(b'#')) => {
                let close: &[u8] = match b[i + 1] {
                    b'{' => b"}}",
                    b'%' => b"%}",
                    _ => b"#}",
                };
                if let Some(end) = find(&b[i + 2..], close) {
                    // `inline:{{key = value}}` and `{ {key = value} }`: Postfix's own brace
                    // grouping of table entries (postconf(5), "inline:{...}"; Postfix 3.0 and
                    // later); a Jinja expression has no lone `=`.
                    let inner = &b[i + 2..i + 2 + end];
                    if b[i + 1] == b'{' && (postfix_braces(inner) || inline_rules(&b[..i], inner)) {
                        continue;
                    }
                    return line.get(i..i + 2 + end + 2);
                }
            }
            // `%{name}` (modoboa); Postfix itself never writes `%{`.
            b'%' if b.get(i + 1) == Some(&b'{') => {
                let n = b[i + 2..].iter().take_while(|c| ident(**c)).count();
                if n > 0 && b.get(i + 2 + n) == Some(&b'}') {
                    return line.get(i..i + 3 + n);
                }
            }
            // `{name}` where a path or value starts (`mysql:{config_dir}/x.cf`, `= {x}`);
            // `${name}` is Postfix's own expansion and milter macros are `{name}` lists.
            // `${a?{x}:{y}}` is Postfix's own conditional: `}:{` is not a path.
            b'{' if i > 0
                && matches!(b[i - 1], b':' | b'/' | b' ' | b'=')
                && !(b[i - 1] == b':' && i > 1 && b[i - 2] == b'}') =>
            {
                let n = b[i + 1..].iter().take_while(|c| ident(**c)).count();
                let closes = n > 0 && b.get(i + 1 + n) == Some(&b'}');
                if closes && !line.trim_start().starts_with("milter_") {
                    return line.get(i..i + 2 + n);
                }
            }
            // `PH_NAME` (iRedMail) and `@NAME@` (autoconf, rejsmont's main.cf.in).
            b'P' if b[i..].starts_with(b"PH_") && (i == 0 || !ident(b[i - 1])) => {
                let n = b[i + 3..]
                    .iter()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_')
                    .count();
                if n > 0 {
                    return line.get(i..i + 3 + n);
                }
            }
            b'@' => {
                let n = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_uppercase() || **c == b'_')
                    .count();
                if n > 1 && b.get(i + 1 + n) == Some(&b'@') {
                    return line.get(i..i + 2 + n);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether the text inside `{{ ... }}` is a Postfix `key = value` entry: an `=` that is not
/// part of a Jinja comparison (`==`, `!=`, `<=`, `>=`).
fn postfix_braces(inner: &[u8]) -> bool {
    inner.iter().enumerate().any(|(k, &c)| {
        c == b'='
            && !matches!(inner.get(k + 1), Some(b'='))
            && !(k > 0 && matches!(inner[k - 1], b'=' | b'!' | b'<' | b'>'))
    })
}

/// Whether `{{ inner }}` right after `before` is the first rule of an inline pattern table,
/// `cidr:{{192.168.1.0/24 OK}}` or `pcre:{{/^x/ REJECT}}` (postconf(5) "inline:{...}" and the
/// cidr_table(5), pcre_table(5), regexp_table(5) "INLINE SPECIFICATION" form, Postfix 3.7
/// and later): a rule starts with an address, `!` or a delimiter, a Jinja expression with a
/// name (or `-`, Jinja's whitespace control).
fn inline_rules(before: &[u8], inner: &[u8]) -> bool {
    let table = [&b"cidr:"[..], b"pcre:", b"regexp:"]
        .iter()
        .any(|t| before.ends_with(t));
    let first = inner.iter().find(|c| !c.is_ascii_whitespace());
    table && first.is_some_and(|&c| !(c.is_ascii_alphabetic() || c == b'_' || c == b'-'))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Adds one PF013 per template file and removes the other Postfix findings that sit on a
/// placeholder line or belong to a service whose name holds a placeholder.
pub fn apply(files: &[&SourceFile], findings: &mut Vec<Finding>) {
    let mut marked: BTreeSet<(PathBuf, usize)> = BTreeSet::new();
    let mut notes = Vec::new();
    for src in files {
        let mut first: Option<(usize, usize, String)> = None;
        let mut count = 0;
        // Only lines holding a byte every placeholder form needs are looked at: one SIMD
        // scan of the file instead of a visit to each of its 100,000 lines.
        let mut lines = Vec::new();
        let mut pos = 0;
        while let Some(k) = memchr::memchr3(b'{', b'@', b'P', &src.text.as_bytes()[pos..]) {
            let line = src.line_of(pos + k);
            lines.push(line);
            pos = src.line_start(line + 1);
        }
        for line in lines {
            let text = src.line_text(line);
            if text.trim_start().starts_with('#') {
                continue;
            }
            if let Some(p) = placeholder(text) {
                count += 1;
                marked.insert((src.display.clone(), line));
                // Byte offset of the placeholder in the file, for a precise span.
                let at = src.line_start(line) + (p.as_ptr() as usize - text.as_ptr() as usize);
                first.get_or_insert((at, at + p.len(), p.to_string()));
            }
        }
        if let Some((start, end, p)) = first {
            notes.push(
                Finding::new(
                    "PF013",
                    Mta::Postfix,
                    format!(
                        "{} is a template, not a file Postfix can run: `{p}` is a placeholder that a deployment tool replaces ({count} line{} with placeholders); relaydoctor checks the rest, but findings on those lines and decisions involving their values would not be meaningful",
                        src.display.display(),
                        if count == 1 { "" } else { "s" }
                    ),
                )
                .at(src.location(start, end)),
            );
        }
    }
    if marked.is_empty() {
        return;
    }
    findings.retain(|f| {
        let on_placeholder = f
            .location
            .as_ref()
            .is_some_and(|l| marked.contains(&(l.file.clone(), l.line)));
        let templated_service = f
            .service
            .as_deref()
            .is_some_and(|s| placeholder(s).is_some());
        f.mta != Mta::Postfix || !(on_placeholder || templated_service)
    });
    findings.extend(notes);
}

#[cfg(test)]
mod tests {
    use super::placeholder;

    #[test]
    fn inline_pattern_tables_are_postfix() {
        assert_eq!(placeholder("mynetworks = cidr:{{192.168.1.0/24 OK}}"), None);
        assert_eq!(
            placeholder("x = check_client_access pcre:{{/^192\\.168\\./ REJECT}}"),
            None
        );
        assert_eq!(placeholder("x = regexp:{{!/^a/ OK}, {/b/ DUNNO}}"), None);
        // Jinja in a table name is still a template.
        assert_eq!(
            placeholder("x = cidr:{{ postfix_dir }}/clients.cidr"),
            Some("{{ postfix_dir }}")
        );
        assert_eq!(placeholder("x = pcre:{{- var }}"), Some("{{- var }}"));
    }

    #[test]
    fn recognises_template_placeholders_only() {
        assert_eq!(
            placeholder("myhostname = {{ domain }}"),
            Some("{{ domain }}")
        );
        assert_eq!(placeholder("{% if SUBNET6 %}x"), Some("{% if SUBNET6 %}"));
        assert_eq!(
            placeholder("{# a jinja comment #}"),
            Some("{# a jinja comment #}")
        );
        assert_eq!(
            placeholder("%{amavis_enabled}  -o smtpd_proxy_filter=x"),
            Some("%{amavis_enabled}")
        );
        assert_eq!(placeholder("myhostname = PH_HOSTNAME"), Some("PH_HOSTNAME"));
        assert_eq!(placeholder("daemon_directory = @DISTRO@"), Some("@DISTRO@"));
        assert_eq!(
            placeholder("virtual_mailbox_domains = proxy:mysql:{config_dir}/d.cf"),
            Some("{config_dir}")
        );
        // Postfix's own syntax.
        assert_eq!(
            placeholder("  flags=R user=vmail argv=/x ${recipient} ${nexthop}"),
            None
        );
        assert_eq!(
            placeholder("milter_mail_macros = i {mail_addr} {client_addr}"),
            None
        );
        assert_eq!(placeholder("x = ${a?{yes}:{no}}"), None);
        assert_eq!(
            placeholder("  -o { smtpd_client_restrictions = permit }"),
            None
        );
        assert_eq!(
            placeholder("transport_maps = inline:{{example.org=smtp:[relay.example.net]}}"),
            None
        );
        assert_eq!(
            placeholder("x = inline:{{a@example.com = b@example.net}, c=d}"),
            None
        );
        assert_eq!(placeholder("x = {{ a == b }}"), Some("{{ a == b }}"));
        assert_eq!(placeholder("postmaster@example.com OK"), None);
        assert_eq!(placeholder("GRAPH_PH_X = 1"), None);
    }
}
