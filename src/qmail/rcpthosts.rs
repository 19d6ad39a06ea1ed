//! Whether qmail-smtpd accepts a recipient domain without RELAYCLIENT: rcpthosts.c's
//! rcpthosts_match, over control/rcpthosts and control/morercpthosts.cdb. Both the loader
//! (to decide whether the streamed control files hold a refused domain) and the relay
//! policy ask this, so it lives beside the model rather than in the policy.

use super::model::{CdbState, Control};

/// How rcpthosts treats a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptCheck {
    /// No control/rcpthosts: every domain is accepted.
    NoRcpthosts,
    /// Accepted by this rcpthosts entry (lowercased) on this line.
    Rcpthosts(String, usize),
    /// Accepted by this key of morercpthosts.cdb.
    More(String),
    Refused,
    /// morercpthosts.cdb exists but cannot be read: qmail-smtpd answers 421.
    Broken(String),
}

/// rcpthosts.c: try the domain and each suffix starting at a '.', in rcpthosts and then
/// in morercpthosts.cdb.
pub fn rcpt_check(c: &Control, domain: &str) -> RcptCheck {
    if c.rcpthosts.is_none() {
        return RcptCheck::NoRcpthosts;
    }
    let d = domain.to_ascii_lowercase();
    let suffixes = || {
        d.char_indices()
            .filter(|&(i, ch)| i == 0 || ch == '.')
            .map(|(i, _)| &d[i..])
    };
    for s in suffixes() {
        if c.rcpthosts_set.contains(s) {
            let line = c
                .rcpthosts
                .as_ref()
                .and_then(|r| {
                    r.entries
                        .iter()
                        .find(|e| r.entry(e).eq_ignore_ascii_case(s))
                        .map(|e| e.line as usize)
                })
                .unwrap_or(1);
            return RcptCheck::Rcpthosts(s.to_string(), line);
        }
    }
    match &c.morercpthosts_cdb {
        CdbState::Ok(cdb, _) => {
            for s in suffixes() {
                if cdb.find(s.as_bytes()).is_some() {
                    return RcptCheck::More(s.to_string());
                }
            }
            RcptCheck::Refused
        }
        CdbState::Missing => RcptCheck::Refused,
        CdbState::Unreadable(e) => RcptCheck::Broken(e.clone()),
    }
}

/// Fast form of `rcpt_check` for the bulk cross-check: accepted or not.
pub fn rcpt_accepts(c: &Control, d: &str) -> bool {
    if c.rcpthosts.is_none() {
        return true;
    }
    let cdb = c.morercpthosts_cdb.cdb();
    let mut lower = String::new();
    let d = if d.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = d.to_ascii_lowercase();
        lower.as_str()
    } else {
        d
    };
    let b = d.as_bytes();
    for i in 0..b.len() {
        if i == 0 || b[i] == b'.' {
            let s = &d[i..];
            if c.rcpthosts_set.contains(s) {
                return true;
            }
            if let Some(cdb) = cdb {
                if cdb.find(s.as_bytes()).is_some() {
                    return true;
                }
            }
        }
    }
    let _ = lower;
    false
}

/// `rcpt_accepts` for many domains (the million-domain cross-check): rcpthosts first, then
/// batched morercpthosts.cdb lookups of the whole domain, then the remaining suffixes.
pub fn rcpt_accepts_batch(c: &Control, domains: &[&str]) -> Vec<bool> {
    if c.rcpthosts.is_none() {
        return vec![true; domains.len()];
    }
    let lowered: Vec<std::borrow::Cow<'_, str>> = domains
        .iter()
        .map(|d| {
            if d.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Owned(d.to_ascii_lowercase())
            } else {
                std::borrow::Cow::Borrowed(*d)
            }
        })
        .collect();
    // A small rcpthosts is faster to scan than to hash every suffix against: an entry
    // matches the whole domain, or (with a leading '.') a suffix at a label boundary.
    let small: Option<Vec<&str>> =
        (c.rcpthosts_set.len() <= 32).then(|| c.rcpthosts_set.iter().map(String::as_str).collect());
    let in_rcpthosts = |d: &str| -> bool {
        match &small {
            Some(v) => v
                .iter()
                .any(|e| *e == d || (e.starts_with('.') && d.ends_with(*e))),
            None => {
                let b = d.as_bytes();
                (0..b.len()).any(|i| (i == 0 || b[i] == b'.') && c.rcpthosts_set.contains(&d[i..]))
            }
        }
    };
    let mut out: Vec<bool> = lowered.iter().map(|d| in_rcpthosts(d)).collect();
    let Some(cdb) = c.morercpthosts_cdb.cdb() else {
        return out;
    };
    let todo: Vec<usize> = (0..out.len()).filter(|&i| !out[i]).collect();
    if todo.is_empty() {
        return out; // all in rcpthosts: the cdb is not read for lookups
    }
    let keys: Vec<&[u8]> = todo.iter().map(|&i| lowered[i].as_bytes()).collect();
    let mut found = Vec::with_capacity(keys.len());
    cdb.find_batch(&keys, &mut found);
    for (j, &i) in todo.iter().enumerate() {
        if found[j].is_some() {
            out[i] = true;
            continue;
        }
        let d = lowered[i].as_ref();
        let b = d.as_bytes();
        out[i] = (1..b.len()).any(|k| b[k] == b'.' && cdb.find(&b[k..]).is_some());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Context, Options, Root};

    #[test]
    fn rcpthosts_semantics_agree_in_all_three_forms() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("rcpthosts"),
            ".example.com\nexact.org\nUPPER.example\n",
        )
        .unwrap();
        let cdb = crate::qmail::cdb::build(&[(b"more.net", b""), (b".sub.io", b"")]);
        std::fs::write(d.path().join("morercpthosts.cdb"), cdb).unwrap();
        let ctx = Context::new(Root::live(), Options::default());
        let c = crate::qmail::model::load_control(&ctx, d.path(), &mut Vec::new());
        let cases = [
            ("a.example.com", true),
            ("example.com", false),
            ("exact.org", true),
            ("x.exact.org", false),
            ("upper.example", true),
            ("more.net", true),
            ("MORE.NET", true),
            ("y.sub.io", true),
            ("sub.io", false),
            ("other.test", false),
        ];
        let domains: Vec<&str> = cases.iter().map(|c| c.0).collect();
        let batch = rcpt_accepts_batch(&c, &domains);
        for (i, (dom, want)) in cases.iter().enumerate() {
            assert_eq!(rcpt_accepts(&c, dom), *want, "rcpt_accepts {dom}");
            assert_eq!(batch[i], *want, "batch {dom}");
            let one = !matches!(rcpt_check(&c, dom), RcptCheck::Refused);
            assert_eq!(one, *want, "rcpt_check {dom}");
        }
    }
}
