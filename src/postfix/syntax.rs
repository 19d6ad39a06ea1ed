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
    // Items are sliced out of `v` rather than built a character at a time: restriction
    // lists and classes of large hosting setups run to 100,000 lines (scripts/bench postfix).
    // The separators are Postfix's CHARS_COMMA_SP (", \t\r\n", src/util/sys_defs.h of 3.7.11),
    // all ASCII, so byte positions are character boundaries.
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut depth = 0usize;
    for (i, &c) in v.as_bytes().iter().enumerate() {
        let separator = depth == 0 && matches!(c, b',' | b' ' | b'\t' | b'\r' | b'\n');
        match c {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if separator {
            if let Some(s) = start.take() {
                out.push(v[s..i].to_string());
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(v[s..].to_string());
    }
    out
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
