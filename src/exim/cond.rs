//! Expansion conditions simulate can decide: the variables of the simulated session
//! substituted (`--helo` into $sender_helo_name, `--client` into $sender_host_address,
//! `--sender`/`--rcpt` into $sender_address, $local_part and $domain), then a one-level
//! `${if OP{a}{b}}` comparison of constants (Exim spec, "Expansion conditions": eq, eqi, ==,
//! !=, <, >, match), with optional yes/no arms.

use super::acl::Envelope;

/// `v` with the session's known variables replaced by their values. Variables whose value
/// the session does not give are left as they are.
pub fn substitute(v: &str, env: &Envelope) -> String {
    let sender = env.sender.clone();
    let vars: Vec<(&str, Option<String>)> = vec![
        ("sender_helo_name", env.helo.clone()),
        ("sender_host_address", env.ip.map(|i| i.to_string())),
        ("sender_host_name", env.host_name.clone()),
        ("sender_address", sender.clone()),
        (
            "sender_address_domain",
            sender
                .as_deref()
                .map(|s| s.rsplit_once('@').map_or("", |x| x.1).to_string()),
        ),
        ("local_part", Some(env.rcpt_local.clone())),
        ("domain", Some(env.rcpt_domain.clone())),
        ("authenticated_id", env.auth_id.clone()),
        ("received_port", env.port.map(|p| p.to_string())),
    ];
    let mut out = String::with_capacity(v.len());
    let b = v.as_bytes();
    let mut i = 0;
    'outer: while i < b.len() {
        if b[i] == b'$' {
            for (name, value) in &vars {
                let Some(value) = value else { continue };
                for form in [format!("${{{name}}}"), format!("${name}")] {
                    if v[i..].starts_with(&form) {
                        let end = i + form.len();
                        // `$domain_data` is another variable: the name must end here.
                        let next = b.get(end).copied().unwrap_or(b' ');
                        if form.ends_with('}') || !(next.is_ascii_alphanumeric() || next == b'_') {
                            out.push_str(value);
                            i = end;
                            continue 'outer;
                        }
                    }
                }
            }
        }
        let c = v[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The `{...}` arguments at the start of `s` (balanced braces), and the rest.
fn args(mut s: &str) -> (Vec<&str>, &str) {
    let mut out = Vec::new();
    loop {
        let t = s.trim_start();
        if !t.starts_with('{') {
            return (out, t);
        }
        let mut depth = 0;
        let mut end = None;
        for (k, c) in t.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(k);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(e) = end else {
            return (out, t);
        };
        out.push(&t[1..e]);
        s = &t[e + 1..];
    }
}

fn truthy(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" => Some(true),
        "no" | "false" | "0" | "" => Some(false),
        _ => None,
    }
}

/// `${if OP{a}{b}[{yes}{no}]}` with constant operands: its truth value. None for anything
/// else (a variable left, another operator, arms that are not yes/no).
pub fn eval_if(v: &str) -> Option<bool> {
    let t = v.trim();
    let inner = t.strip_prefix("${if")?.strip_suffix('}')?.trim_start();
    let (negated, inner) = match inner.strip_prefix('!') {
        Some(r) => (true, r.trim_start()),
        None => (false, inner),
    };
    let op_end = inner.find(|c: char| c == '{' || c.is_whitespace())?;
    let op = &inner[..op_end];
    let (a, rest) = args(&inner[op_end..]);
    if a.len() < 2 || a[..2].iter().any(|x| x.contains('$')) || !rest.is_empty() {
        return None;
    }
    let (x, y) = (a[0], a[1]);
    let num = |s: &str| s.trim().parse::<i64>().ok();
    let r = match op {
        "eq" => x == y,
        "eqi" => x.eq_ignore_ascii_case(y),
        "==" | "=" => num(x)? == num(y)?,
        "!=" => num(x)? != num(y)?,
        "<" => num(x)? < num(y)?,
        ">" => num(x)? > num(y)?,
        "<=" => num(x)? <= num(y)?,
        ">=" => num(x)? >= num(y)?,
        "match" => regex::Regex::new(y).ok()?.is_match(x),
        _ => return None,
    };
    let r = r != negated;
    match &a[2..] {
        [] => Some(r),
        [yes] => Some(if r { truthy(yes)? } else { false }),
        [yes, no] => Some(if r { truthy(yes)? } else { truthy(no)? }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Envelope {
        Envelope {
            ip: "192.0.2.9".parse().ok(),
            host_name: None,
            auth_id: None,
            sender: Some("a@sender.example".into()),
            rcpt_local: "bob".into(),
            rcpt_domain: "example.org".into(),
            port: None,
            helo: Some("client.example".into()),
        }
    }

    #[test]
    fn session_values_are_substituted_and_other_variables_kept() {
        let e = env();
        assert_eq!(
            substitute("${if eq{$sender_helo_name}{${sender_host_address}}}", &e),
            "${if eq{client.example}{192.0.2.9}}"
        );
        assert_eq!(
            substitute("$domain_data/$domain", &e),
            "$domain_data/example.org"
        );
        assert_eq!(substitute("$acl_m0", &e), "$acl_m0");
    }

    #[test]
    fn constant_comparisons_are_decided() {
        assert_eq!(eval_if("${if eq{1}{0}}"), Some(false));
        assert_eq!(eval_if("${if !eq{1}{0}}"), Some(true));
        assert_eq!(eval_if("${if eqi{A}{a}{yes}{no}}"), Some(true));
        assert_eq!(eval_if("${if match{client.example}{\\.example\\$}}"), None);
        assert_eq!(eval_if("${if match{client.example}{example}}"), Some(true));
        assert_eq!(eval_if("${if == {3}{3}}"), Some(true));
        assert_eq!(eval_if("${if eq{$x}{0}}"), None);
        assert_eq!(eval_if("${if def:tls_in_cipher}"), None);
    }
}
