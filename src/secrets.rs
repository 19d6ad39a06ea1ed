//! Passwords that configuration files hold, so that no output repeats them: the values of
//! Postfix `*_password_maps` given as `static:` or `inline:` tables (and other `*password*`
//! parameters), the entries of password map files that were read (`sasl_passwd`), and Exim's
//! `client_send` and `hide` options. Findings quote configuration lines (PF004 shows both
//! duplicates, the text renderer prints the line, `--diff` the edit), so the rendered output
//! as a whole is scrubbed, the way the Plesk commands scrub the database password.

use std::path::Path;

use crate::context::Context;

/// Secrets found in the files this run read.
pub fn collect(ctx: &Context) -> Vec<String> {
    let mut out = Vec::new();
    for display in ctx.loaded_paths() {
        let Some(src) = ctx.source(&display) else {
            continue;
        };
        let password_file = is_password_file(&display);
        // Most files read (qmail's million-line control files among them) hold none: one
        // substring search each instead of a pass over every line.
        if !password_file
            && !["password", "client_send", "hide"]
                .iter()
                .any(|n| src.text.contains(n))
        {
            continue;
        }
        for line in src.text.lines() {
            let t = line.trim();
            if t.starts_with('#') || t.is_empty() {
                continue;
            }
            if password_file {
                // `[smtp.example.com]:587 user:password`
                if let Some((_, v)) = t.split_once(char::is_whitespace) {
                    push_credential(&mut out, v.trim());
                }
                continue;
            }
            let t = t.strip_prefix("-o").map(str::trim_start).unwrap_or(t);
            let Some((name, value)) = t.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let exim_secret = name == "client_send" || name.starts_with("hide ");
            if exim_secret {
                push_credential(&mut out, value);
                continue;
            }
            if !name.contains("password") || name.contains(char::is_whitespace) {
                continue;
            }
            if let Some(v) = value.strip_prefix("static:") {
                push_credential(&mut out, v.trim_matches(|c| c == '{' || c == '}').trim());
            } else if let Some(v) = value.strip_prefix("inline:") {
                for item in v.trim_matches(|c| c == '{' || c == '}').split(',') {
                    if let Some((_, val)) = item.split_once('=') {
                        push_credential(&mut out, val.trim().trim_matches(['{', '}', ' ']));
                    }
                }
            } else if !name.ends_with("_maps") {
                push_credential(&mut out, value);
            }
        }
    }
    out.sort();
    out.dedup();
    // Longer first: a password that contains another one is masked whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

fn is_password_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("passwd") || n.contains("password"))
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
    crate::plesk::credentials::scrub_all(text, secrets)
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
            "smtp_sasl_password_maps = static:admin:OldSecr3t\nlmtp_sasl_password_maps = inline:{ [relay]:25 = bob:Inl1ne }\nmyhostname = mx.example.com\n",
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
            "smtp_sasl_password_maps = static:admin:OldSecr3t; bob:Inl1ne; carol:F1leSecret; mx.example.com",
            &s,
        );
        for secret in ["OldSecr3t", "Inl1ne", "F1leSecret"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains("mx.example.com"), "{out}");
    }
}
