//! `simulate` output: each listening service's decision for one client and recipient, with
//! the trace of the lines that decided.

use crate::relay::{Decision, Verdict};

/// `{"version": 1, "decisions": [...]}`.
pub fn json(decisions: &[Decision]) -> String {
    let v = serde_json::json!({"version": 1, "decisions": decisions});
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
}

/// The outcomes of a `depends` text: split at each "; " that starts a new answer ("accept",
/// "reject 550 ...", ...), never inside an expression such as Exim's `<; a ; b` list (issue
/// #16 item 8). One outcome (or none) gives an empty list.
fn outcomes(t: &str) -> Vec<&str> {
    const ANSWERS: [Verdict; 5] = [
        Verdict::Accept,
        Verdict::Reject,
        Verdict::Defer,
        Verdict::Unavailable,
        Verdict::Depends,
    ];
    let starts_answer = |rest: &str| {
        ANSWERS.iter().any(|v| {
            rest.strip_prefix(v.as_str())
                .is_some_and(|r| r.is_empty() || r.starts_with(' '))
        })
    };
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in t.match_indices("; ") {
        if i >= start && starts_answer(&t[i + 2..]) {
            out.push(&t[start..i]);
            start = i + 2;
        }
    }
    if out.is_empty() {
        return out;
    }
    out.push(&t[start..]);
    out
}

pub fn text(decisions: &[Decision], color: bool) -> String {
    use colored::Colorize;
    use std::fmt::Write as _;
    let mut out = String::new();
    if decisions.is_empty() {
        out.push_str("No listening SMTP service found.\n");
    }
    for d in decisions {
        let verdict = d.result.as_str();
        let verdict = if color {
            match d.result {
                Verdict::Accept => verdict.green().bold().to_string(),
                Verdict::Reject => verdict.red().bold().to_string(),
                _ => verdict.yellow().bold().to_string(),
            }
        } else {
            verdict.to_string()
        };
        let reply = d.reply_line();
        // A `depends` decision may list its possible outcomes joined by "; ": one per line,
        // so each can be read on its own.
        let outcomes: Vec<&str> = match (&d.result, &d.text) {
            (Verdict::Depends, Some(t)) => outcomes(t),
            _ => Vec::new(),
        };
        if outcomes.is_empty() {
            let _ = writeln!(
                out,
                "{} {}: {verdict}{}",
                d.mta.as_str(),
                d.service,
                if reply.is_empty() {
                    String::new()
                } else {
                    format!(" ({reply})")
                }
            );
        } else {
            let _ = writeln!(out, "{} {}: {verdict}, one of:", d.mta.as_str(), d.service);
            const SHOWN: usize = 8;
            for o in outcomes.iter().take(SHOWN) {
                let _ = writeln!(out, "  - {o}");
            }
            if outcomes.len() > SHOWN {
                let _ = writeln!(
                    out,
                    "  - ... {} more (--format json lists all)",
                    outcomes.len() - SHOWN
                );
            }
        }
        if !d.depends_on.is_empty() {
            let _ = writeln!(out, "  depends on: {}", d.depends_on.join(", "));
        }
        for s in &d.trace {
            // Line 0: a built-in default or computed value, described in `file`.
            let at = if s.line > 0 {
                format!("{}:{}", s.file.display(), s.line)
            } else {
                s.file.display().to_string()
            };
            let _ = writeln!(out, "  {at}: {} -> {}", s.entry, s.effect);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::outcomes;

    #[test]
    fn outcomes_split_only_where_an_answer_starts() {
        let t = "accept 250 if the expansion `<; ${env{X}}` true; reject 550 no if the expansion `<; ${env{X}}` false";
        assert_eq!(
            outcomes(t),
            [
                "accept 250 if the expansion `<; ${env{X}}` true",
                "reject 550 no if the expansion `<; ${env{X}}` false"
            ]
        );
        assert!(outcomes("reject 550 a; b").is_empty());
    }
}
