//! PF015: mynetworks entries Postfix cannot use (see `hostaddr` for the source).
//! - A net/mask that util/cidr_match.c cidr_match_parse() rejects is an error: the mynetworks
//!   lookup of every client of that address family that no earlier entry matched fails, and
//!   smtpd answers `451 4.3.0 <...>: Temporary lookup failure` at permit_mynetworks (verified
//!   with Postfix 3.7.11: tests/postfix_relay_rules.rs).
//! - An address-like entry match_hostaddr() skips (`192.168.1.*`, `192.168.1.`, an entry
//!   with a pasted no-break space) is a warning: it never matches, silently.

use super::hostaddr::{self, AddrPattern};
use super::model::Model;
use super::syntax::list_slices;
use crate::finding::{Finding, Fix, Mta, Severity};
use crate::source::SourceFile;

pub fn run(m: &Model, f: &mut Vec<Finding>) {
    if let Some(main) = &m.main {
        if let Some(e) = m.main_entry("mynetworks") {
            report(
                &main.source,
                &e.value,
                e.value_span.start..e.value_span.end,
                None,
                f,
            );
        }
    }
    if let Some(master) = &m.master {
        for s in m.services() {
            for o in s.overrides.iter().filter(|o| o.name == "mynetworks") {
                let span = o.value_span.start..o.value_span.end;
                report(&master.source, &o.value, span, Some(s.id()), f);
            }
        }
    }
}

fn report(
    src: &SourceFile,
    value: &str,
    span: std::ops::Range<usize>,
    service: Option<String>,
    f: &mut Vec<Finding>,
) {
    let text = src.text.get(span.clone()).unwrap_or("");
    let mut cursor = 0;
    for item in list_slices(value) {
        // Where the item is in the file (the value may be joined from continuation lines).
        let at = text.get(cursor..).and_then(|t| t.find(item)).map(|i| {
            cursor += i + item.len();
            span.start + cursor - item.len()
        });
        let pat = item.trim_start_matches('!');
        let start = at.map(|a| a + (item.len() - pat.len()));
        let Some((severity, message, help, fix)) = problem(pat) else {
            continue;
        };
        let mut fd = Finding::new("PF015", Mta::Postfix, message).severity(severity);
        if let Some(s) = &service {
            fd = fd.service(s);
        }
        if let Some(st) = start {
            fd = fd.at(src.location(st, st + pat.len()));
            if let Some((safe, desc, new)) = fix {
                let edit = vec![src.edit(st..st + pat.len(), new)];
                fd = fd.fix(if safe {
                    Fix::safe(desc, edit)
                } else {
                    Fix::review(desc, edit)
                });
            }
        }
        f.push(fd.help(help));
    }
}

/// (fix is safe, description, replacement)
type PatternFix = (bool, String, String);

fn problem(pat: &str) -> Option<(Severity, String, String, Option<PatternFix>)> {
    let shown = pat.escape_default().to_string();
    if let Some(why) = hostaddr::dead_reason(pat) {
        let clean: String = pat
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .collect::<String>();
        let fix = if clean != pat && !clean.is_empty() {
            Some((
                true,
                format!("remove the invisible characters: `{clean}`"),
                clean,
            ))
        } else {
            network_of(pat).map(|n| (false, format!("write `{n}`"), n))
        };
        return Some((
            Severity::Warning,
            format!("mynetworks entry `{shown}` never matches any client: {why}"),
            "Write an address (192.168.1.7), a network/length (192.168.1.0/24), IPv6 in brackets ([2001:db8::]/32), a /file or a type:table (postconf(5): mynetworks).".into(),
            fix,
        ));
    }
    let AddrPattern::Invalid { v6, warning } = hostaddr::classify(pat) else {
        return None;
    };
    let family = if v6 { "IPv6" } else { "IPv4" };
    let fix = hostaddr::suggestion(&warning).map(|n| {
        let n = if pat.starts_with('[') && v6 {
            // Keep the bracket form match lists need for IPv6.
            match n.split_once('/') {
                Some((a, l)) => format!("[{a}]/{l}"),
                None => n.to_string(),
            }
        } else {
            n.to_string()
        };
        (true, format!("write the network `{n}`"), n)
    });
    Some((
        Severity::Error,
        format!(
            "mynetworks entry `{shown}` is not a valid network ({warning}): smtpd's mynetworks lookup fails for every {family} client that no earlier entry matches, and permit_mynetworks answers `451 4.3.0 <recipient>: Temporary lookup failure`, so mail from those clients, inbound mail included, is deferred"
        ),
        "Write the network as address/length with all host bits zero (192.168.1.0/24); Postfix takes no dotted masks, no leading zeros and no short addresses.".into(),
        fix,
    ))
}

/// `192.168.1.*` / `192.168.1.` / `192.168.*` -> the network they were meant as.
fn network_of(pat: &str) -> Option<String> {
    let base = pat.trim_end_matches('*').trim_end_matches('.');
    let octets: Vec<&str> = base.split('.').collect();
    if octets.is_empty()
        || octets.len() > 3
        || !octets
            .iter()
            .all(|o| o.parse::<u8>().is_ok_and(|v| v.to_string() == *o))
    {
        return None;
    }
    let len = octets.len() * 8;
    let mut full: Vec<&str> = octets.clone();
    full.resize(4, "0");
    Some(format!("{}/{len}", full.join(".")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_and_fixes() {
        let (s, m, _, fix) = problem("192.168.1.10/24").unwrap();
        assert_eq!(s, Severity::Error);
        assert!(m.contains("451 4.3.0"), "{m}");
        assert_eq!(fix.unwrap().2, "192.168.1.0/24");
        let (s, _, _, fix) = problem("192.168.1.*").unwrap();
        assert_eq!(s, Severity::Warning);
        assert_eq!(
            fix.unwrap(),
            (
                false,
                "write `192.168.1.0/24`".into(),
                "192.168.1.0/24".into()
            )
        );
        let (_, m, _, fix) = problem("10.0.0.0/8\u{a0}").unwrap();
        assert!(m.contains("U+00A0"), "{m}");
        assert_eq!(fix.unwrap().2, "10.0.0.0/8");
        let (s, _, _, fix) = problem("192.168.1.0/255.255.255.0").unwrap();
        assert_eq!(s, Severity::Error);
        assert!(fix.is_none());
        for ok in [
            "192.168.1.0/24",
            "[::1]/128",
            "mail.example.com",
            "cidr:/x",
            "/etc/postfix/n",
            "10.1.2.3",
        ] {
            assert!(problem(ok).is_none(), "{ok}");
        }
    }
}
