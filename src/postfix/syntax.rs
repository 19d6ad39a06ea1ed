//! Postfix value syntax shared by the model, the policy evaluator and the checks: how a list
//! value splits into items, which comment lines read like master.cf service headers, and the
//! names of the smtpd restriction list parameters.

/// Every smtpd restriction list parameter, in the order smtpd evaluates them for one mail
/// transaction (postconf(5): smtpd_client_restrictions .. smtpd_end_of_data_restrictions;
/// smtpd_etrn_restrictions applies to the ETRN command only). smtpd_relay_restrictions
/// (Postfix 2.10 and later) comes before smtpd_recipient_restrictions unless
/// smtpd_relay_before_recipient_restrictions (3.6) says otherwise; the policy evaluator
/// decides that order itself.
pub const RESTRICTION_LISTS: &[&str] = &[
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions",
    "smtpd_etrn_restrictions",
];

/// The restriction lists that decide whether a RCPT TO is accepted (the relay decision): the
/// first five of [`RESTRICTION_LISTS`].
pub const RCPT_LISTS: &[&str] = RESTRICTION_LISTS.split_at(5).0;

/// Parameters whose value Postfix reads as a match list (src/util/match_list.c: host, domain,
/// address and user lists): there a word starting with `#` ends the list, with a warning,
/// since Postfix 2.8 (HISTORY 20100601).
pub const MATCH_LISTS: &[&str] = &[
    "mynetworks",
    "mydestination",
    "relay_domains",
    "virtual_alias_domains",
    "virtual_mailbox_domains",
    "permit_mx_backup_networks",
    "debug_peer_list",
    "fast_flush_domains",
    "smtpd_client_event_limit_exceptions",
    "smtpd_authorized_xclient_hosts",
    "smtpd_authorized_xforward_hosts",
    "smtpd_sasl_exceptions_networks",
    "smtpd_authorized_verp_clients",
    "authorized_submit_users",
    "authorized_flush_users",
    "authorized_mailq_users",
    "qmqpd_authorized_clients",
    "postscreen_access_list",
    "local_header_rewrite_clients",
    "smtp_tls_per_site",
];

/// The items of a Postfix list value: separated by commas and/or whitespace, where a
/// `{ ... }` group (a brace-quoted item or an `inline:{ ... }` table) is one item
/// (postconf(5), "list values"; Postfix 3.0 and later accept `{ }` grouping).
pub fn list_items(v: &str) -> Vec<String> {
    list_slices(v).into_iter().map(str::to_string).collect()
}

/// [`list_items`] as slices of `v`, for the callers that only look: restriction lists and
/// classes of large hosting setups run to 100,000 lines (scripts/bench postfix), and an
/// owned copy of every item cost more than the split itself.
pub fn list_slices(v: &str) -> Vec<&str> {
    // The separators are Postfix's CHARS_COMMA_SP (", \t\r\n", src/util/sys_defs.h of
    // 3.7.11), all ASCII, so byte positions are character boundaries. Inside `{ }` (an
    // inline: table, a grouped list) they separate nothing.
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if SPECIAL[b[i] as usize] == SEP {
            i += 1;
            continue;
        }
        let start = i;
        let mut depth = 0usize;
        // Plain bytes are skipped by `position` (no per-byte bookkeeping); only the special
        // ones are looked at.
        i = loop {
            let Some(k) = b[i..].iter().position(|&c| SPECIAL[c as usize] != 0) else {
                break b.len();
            };
            i += k;
            match SPECIAL[b[i] as usize] {
                SEP if depth == 0 => break i,
                OPEN => depth += 1,
                CLOSE => depth = depth.saturating_sub(1),
                _ => {}
            }
            i += 1;
        };
        out.push(&v[start..i]);
    }
    out
}

const SEP: u8 = 1;
const OPEN: u8 = 2;
const CLOSE: u8 = 3;
/// What each byte is to [`list_slices`]: one table lookup a byte instead of a chain of
/// comparisons.
const SPECIAL: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b',' as usize] = SEP;
    t[b' ' as usize] = SEP;
    t[b'\t' as usize] = SEP;
    t[b'\r' as usize] = SEP;
    t[b'\n' as usize] = SEP;
    t[b'{' as usize] = OPEN;
    t[b'}' as usize] = CLOSE;
    t
};

/// Whether `s` holds the ASCII byte `b`: a SIMD scan (memchr), where `str::contains(char)`
/// walks a word at a time. Checks ask this of every value of a 100,000-line main.cf.
pub fn has_byte(s: &str, b: u8) -> bool {
    memchr::memchr(b, s.as_bytes()).is_some()
}

/// A master.cf flag column value (private, unpriv, chroot): `y`, `n` or `-` for the default.
pub fn yn(v: &str) -> bool {
    matches!(v, "y" | "n" | "-")
}

/// A comment line that reads like a master.cf service header (`#smtps inet n - y - - smtpd`):
/// the `service type` it names, so that the `-o` lines after it can be recognised as
/// belonging to the disabled service (PF009, and the relay rules that read those lines).
pub fn commented_header(line: &str) -> Option<String> {
    let t = line.trim_start().trim_start_matches('#').trim();
    let fields: Vec<&str> = t.split_whitespace().collect();
    if fields.len() >= 8
        && matches!(fields[1], "inet" | "unix" | "unix-dgram" | "fifo" | "pass")
        && fields[2..5].iter().all(|v| yn(v))
    {
        Some(format!("{} {}", fields[0], fields[1]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_group_one_item() {
        assert_eq!(
            list_items("a, b  inline:{ x=1, y=2 },{ c d }"),
            ["a", "b", "inline:{ x=1, y=2 }", "{ c d }"]
        );
        assert!(list_items(" , ").is_empty());
    }

    /// The split as match_list reads it, a character at a time: the fast scan must agree
    /// with it on every string over the bytes that matter, up to length 6.
    #[test]
    fn fast_split_agrees_with_the_plain_reading() {
        fn plain(v: &str) -> Vec<&str> {
            let (mut out, mut start, mut depth) = (Vec::new(), None, 0usize);
            for (i, c) in v.bytes().enumerate() {
                let sep = depth == 0 && matches!(c, b',' | b' ' | b'\t' | b'\r' | b'\n');
                match c {
                    b'{' => depth += 1,
                    b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                if sep {
                    if let Some(s) = start.take() {
                        out.push(&v[s..i]);
                    }
                } else if start.is_none() {
                    start = Some(i);
                }
            }
            out.extend(start.map(|s| &v[s..]));
            out
        }
        let alphabet = [b'a', b'{', b'}', b',', b' ', b'\n'];
        for len in 0..=6u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let mut s = String::new();
                for _ in 0..len {
                    s.push(alphabet[n % alphabet.len()] as char);
                    n /= alphabet.len();
                }
                assert_eq!(list_slices(&s), plain(&s), "{s:?}");
            }
        }
    }

    #[test]
    fn header_comments() {
        assert_eq!(
            commented_header("#smtps     inet  n       -       y       -       -       smtpd"),
            Some("smtps inet".into())
        );
        assert_eq!(commented_header("#  -o smtpd_tls_wrappermode=yes"), None);
        assert_eq!(commented_header("# inet n - y - - smtpd"), None);
    }

    #[test]
    fn rcpt_lists_are_the_first_five() {
        assert_eq!(RCPT_LISTS.len(), 5);
        assert_eq!(RCPT_LISTS[4], "smtpd_recipient_restrictions");
    }
}
