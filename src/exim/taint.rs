//! EX161: tainted data where Exim refuses it, and unquoted tainted lookup queries.
//!
//! Sources (Exim 4.96 unless said otherwise):
//! - ChangeLog 4.93 JH/32: values read from the input channel, and values derived from them, are
//!   tainted. ChangeLog 4.94 JH/20: tainted data is refused for the appendfile `file` and
//!   `directory`, the pipe command, the autoreply `file`/`log`/`once`, file names of the
//!   redirect router, and "paths used by single-key lookups". ChangeLog 4.95 added
//!   allow_insecure_tainted_data (errors become log warnings); 4.96 JH/21 removed it.
//! - spec "Expansion variables": the variables marked Tainted (`.tvar` in spec.xfpt);
//!   "Lookup types": "The file string may not be tainted" (single-key); a tainted query-style
//!   query "should be quoted" with ${quote_<type>:...}. search.c logs "tainted search query is
//!   not properly quoted" for lookup types that have a quoting function.
//!
//! What the consequence is at each place was observed with Exim 4.96 (`-bh`, `-bt`):
//! `${readfile{/dir/$auth2}}` in a server_condition answers `435 Unable to authenticate at
//! present`; a redirect router's tainted `file` defers the address ("Tainted name ... for file
//! read not permitted"); `lsearch;/dir/$domain` in a router or ACL list panics the process
//! ("Tainted filename for search"); a tainted `${readfile}` in an ACL condition answers `451
//! Temporary local problem`. `require_files`, `exists{}` and `router_home_directory` accept
//! tainted names (only existence is checked), so they are not reported.

use super::lists::split;
use super::model::{Config, Driver};
use super::reader::Origin;
use super::version::EximVersion;
use crate::finding::{Finding, Mta, Severity};

/// The variables Exim marks Tainted (spec.xfpt `.tvar`), plus $auth1..$auth4 (the client's
/// AUTH data: Exim 4.96 refuses a file named from $auth2 of an AUTH PLAIN).
const TAINTED: &[&str] = &[
    "auth1",
    "auth2",
    "auth3",
    "auth4",
    "authenticated_sender",
    "domain",
    "local_part",
    "local_part_prefix",
    "local_part_prefix_v",
    "local_part_suffix",
    "local_part_suffix_v",
    "message_body",
    "message_body_end",
    "message_headers",
    "message_headers_raw",
    "original_domain",
    "original_local_part",
    "parent_domain",
    "parent_local_part",
    "received_for",
    "recipients",
    "reply_address",
    "sender_address",
    "sender_address_domain",
    "sender_address_local_part",
    "sender_helo_name",
    "sender_host_name",
    "smtp_command",
    "smtp_command_argument",
    "tls_in_sni",
];

/// Header variables ($h_subject:, $header_from:, raw/body/list forms) are tainted too.
const HEADER_PREFIXES: &[&str] = &[
    "h_", "header_", "rh_", "rheader_", "bh_", "bheader_", "lh_", "lheader_",
];

/// Single-key lookup types (spec "Single-key lookup types"): the file may not be tainted.
const SINGLE_KEY: &[&str] = &[
    "lsearch",
    "wildlsearch",
    "nwildlsearch",
    "iplsearch",
    "cdb",
    "dbm",
    "dbmjz",
    "dbmnz",
    "dsearch",
    "json",
    "lmdb",
];

/// Query-style lookup types that have a quoting function (lookups/*.c `.quote`): only these
/// get the "not properly quoted" log line.
const QUOTED_QUERY: &[&str] = &[
    "ibase", "ldap", "ldapdn", "ldapm", "mysql", "nisplus", "oracle", "pgsql", "redis", "sqlite",
];

/// One place where tainted data is used as Exim refuses (or warns about) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// What is named: "${readfile} file name", "lsearch file name", "pgsql query".
    pub what: String,
    /// The text that is tainted (the file name or query as written).
    pub text: String,
    /// The tainted variables it uses ("$local_part").
    pub vars: Vec<String>,
    /// A query-style lookup without quoting: logged, not refused.
    pub unquoted_query: bool,
}

/// The tainted variables `s` uses outside nested `${lookup ...}` items (a lookup's result
/// comes from the file or database, and is not tainted).
pub fn tainted_vars(s: &str) -> Vec<String> {
    let s = strip_items(s, "${lookup");
    let b = s.as_bytes();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        if b.get(j) == Some(&b'{') {
            j += 1;
        }
        let start = j;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        let name = &s[start..j];
        let tainted = TAINTED.contains(&name)
            || HEADER_PREFIXES
                .iter()
                .any(|p| name.starts_with(p) && name.len() > p.len());
        let shown = format!("${name}");
        if tainted && !out.contains(&shown) {
            out.push(shown);
        }
        i = j.max(i + 1);
    }
    out
}

/// The index just past the `}` that closes the `{` at `open`, honouring backslash escapes.
fn close(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// `s` without the expansion items that start with `prefix` (e.g. "${lookup", "${quote_").
fn strip_items(s: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at]);
        let b = rest.as_bytes();
        match close(b, at + 1) {
            Some(end) => rest = &rest[end..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The lookup type without its `partial-`/`partialN-`, `netN-` prefixes, `*`/`*@` suffixes
/// and `,option` tail: "partial2-lsearch*@,ret=key" is "lsearch".
fn base_type(t: &str) -> &str {
    let t = t.split(',').next().unwrap_or("");
    let t = t.trim_end_matches(['*', '@']);
    match t.split_once('-') {
        Some((pre, rest))
            if pre.starts_with("partial") || (pre.starts_with("net") && !rest.is_empty()) =>
        {
            rest
        }
        _ => t,
    }
}

/// The hits in one expanded string: `${readfile{NAME}}`, `${lookup{KEY}TYPE{FILE}}` and
/// `${lookup TYPE{QUERY}}`.
pub fn scan(value: &str) -> Vec<Hit> {
    let mut out = Vec::new();
    let b = value.as_bytes();
    for (at, _) in value.match_indices("${readfile") {
        let open = skip_ws(b, at + "${readfile".len());
        if b.get(open) != Some(&b'{') {
            continue;
        }
        if let Some(end) = close(b, open) {
            let name = &value[open + 1..end - 1];
            push_file(&mut out, "${readfile} file name", name);
        }
    }
    for (at, _) in value.match_indices("${lookup") {
        let mut i = skip_ws(b, at + "${lookup".len());
        let keyed = b.get(i) == Some(&b'{');
        if keyed {
            match close(b, i) {
                Some(end) => i = skip_ws(b, end),
                None => continue,
            }
        }
        let t0 = i;
        while i < b.len() && b[i] != b'{' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let ty = base_type(&value[t0..i]);
        let open = skip_ws(b, i);
        if b.get(open) != Some(&b'{') {
            continue;
        }
        let Some(end) = close(b, open) else { continue };
        let arg = &value[open + 1..end - 1];
        if keyed && SINGLE_KEY.contains(&ty) {
            push_file(&mut out, &format!("{ty} file name"), arg);
        } else if !keyed && QUOTED_QUERY.contains(&ty) {
            push_query(&mut out, ty, arg);
        }
    }
    out
}

/// The hits in a list (a `domains`, `local_parts`, `hosts`, `senders` or named list value):
/// `TYPE;FILE` and `TYPE;QUERY` items, plus any expansion inside the items.
pub fn scan_list(value: &str) -> Vec<Hit> {
    let mut out = scan(value);
    for item in split(value) {
        let item = item.trim_start_matches(['!', ' ', '\t']);
        let Some((ty, rest)) = item.split_once(';') else {
            continue;
        };
        if ty.contains(['$', '{', ' ']) {
            continue;
        }
        let ty = base_type(ty.trim());
        if SINGLE_KEY.contains(&ty) {
            push_file(&mut out, &format!("{ty} file name"), rest.trim());
        } else if QUOTED_QUERY.contains(&ty) {
            push_query(&mut out, ty, rest.trim());
        }
    }
    out
}

fn push_file(out: &mut Vec<Hit>, what: &str, name: &str) {
    let vars = tainted_vars(name);
    if !vars.is_empty() {
        out.push(Hit {
            what: what.to_string(),
            text: name.trim().to_string(),
            vars,
            unquoted_query: false,
        });
    }
}

fn push_query(out: &mut Vec<Hit>, ty: &str, query: &str) {
    let vars = tainted_vars(&strip_items(query, "${quote"));
    if !vars.is_empty() {
        out.push(Hit {
            what: format!("{ty} query"),
            text: query.trim().to_string(),
            vars,
            unquoted_query: true,
        });
    }
}

/// Options whose whole value is a file, directory or command name Exim refuses when tainted,
/// by driver (ChangeLog 4.94 JH/20; transports/appendfile.c, autoreply.c, pipe.c;
/// routers/redirect.c through rda.c).
fn path_options(driver: &str) -> &'static [&'static str] {
    match driver {
        "appendfile" => &["file", "directory"],
        "autoreply" => &["file", "log", "once"],
        "pipe" => &["command"],
        "redirect" => &["file"],
        _ => &[],
    }
}

/// Options holding address or host lists, where `TYPE;FILE` items occur.
const LIST_OPTIONS: &[&str] = &[
    "domains",
    "local_parts",
    "senders",
    "hosts",
    "recipients",
    "ignore_target_hosts",
];

/// Where a hit is: what it does to mail, for the message.
enum Place<'a> {
    Authenticator(&'a str),
    Router(&'a str),
    Transport(&'a str),
    Acl(&'a str),
    Main,
}

fn consequence(place: &Place, list_lookup: bool) -> String {
    match place {
        Place::Authenticator(n) => format!("every login through authenticator {n} fails with `435 Unable to authenticate at present`, so its users cannot authenticate and then get `550 relay not permitted`"),
        Place::Router(n) if list_lookup => format!("router {n} cannot test the list: Exim logs `Tainted filename for search` to the panic log and the delivery process dies, so every address that reaches the router is deferred and stays queued"),
        Place::Router(n) => format!("router {n} defers every address it handles (`Tainted name ... not permitted`): the mail stays queued until the retry timeout bounces it"),
        Place::Transport(n) => format!("deliveries through transport {n} are deferred (`Tainted '<path>' (file or directory name for {n} transport) not permitted`) and the messages stay queued until the retry timeout bounces them"),
        Place::Acl(n) if list_lookup => format!("when ACL {n} tests the list, Exim logs `Tainted filename for search` and the SMTP process dies: the client's connection drops without a reply"),
        Place::Acl(n) => format!("the condition fails to expand whenever ACL {n} reaches it, so the client gets `451 Temporary local problem`"),
        Place::Main => "every use of it fails (a 451 temporary error in ACLs, a deferred delivery in routers)".to_string(),
    }
}

/// Who refuses a tainted file name, and how severe that is; None when the version in use
/// allows it.
fn refusal(version: Option<&EximVersion>, cfg: &Config) -> Option<(Severity, String)> {
    let insecure_ok = cfg
        .option("allow_insecure_tainted_data")
        .is_some_and(|o| matches!(o.value.trim(), "" | "true" | "yes"));
    match version {
        Some(v) if !v.at_least(4, 94) => None,
        Some(v) if v.at_least(4, 95) && !v.at_least(4, 96) && insecure_ok => Some((
            Severity::Warning,
            format!(
                "Exim {} only logs while allow_insecure_tainted_data is set, and 4.96 refuses",
                v.source
            ),
        )),
        Some(v) => Some((Severity::Error, format!("Exim {} refuses", v.source))),
        None => Some((Severity::Error, "Exim 4.94 and later refuse".to_string())),
    }
}

/// Why AUTH through server authenticator `d` always fails under `version`: an option that
/// names a file by tainted data where Exim refuses it (every login answers `435 Unable to
/// authenticate at present`). None when it can work, or when the version allows it.
pub fn broken_authenticator(
    cfg: &Config,
    version: Option<&EximVersion>,
    d: &Driver,
) -> Option<String> {
    let (_, why) = refusal(version, cfg)?;
    d.options.iter().find_map(|o| {
        let h = scan(&o.value).into_iter().find(|h| !h.unquoted_query)?;
        Some(format!(
            "authenticator {}: `{}` names a file by tainted {}, which {why}",
            d.name,
            o.name,
            h.vars.join(", ")
        ))
    })
}

/// EX161 findings for the whole configuration.
pub fn check(cfg: &Config, version: Option<&EximVersion>, out: &mut Vec<Finding>) {
    let mut add = |place: &Place, name: &str, hits: Vec<Hit>, list: bool, o: &Origin| {
        for h in hits {
            out.extend(finding(cfg, version, place, name, &h, list, o));
        }
    };
    for d in &cfg.authenticators {
        for o in &d.options {
            add(
                &Place::Authenticator(&d.name),
                &o.name,
                scan(&o.value),
                false,
                &o.origin,
            );
        }
    }
    for (drivers, router) in [(&cfg.routers, true), (&cfg.transports, false)] {
        for d in drivers {
            let place = if router {
                Place::Router(&d.name)
            } else {
                Place::Transport(&d.name)
            };
            driver_hits(d, &place, &mut add);
        }
    }
    for a in &cfg.acls {
        for s in &a.stmts {
            for c in &s.conds {
                let list = LIST_OPTIONS.contains(&c.name.as_str());
                let hits = if list {
                    scan_list(c.value())
                } else {
                    scan(c.value())
                };
                add(&Place::Acl(&a.name), &c.name, hits, list, &c.origin);
            }
        }
    }
    for l in &cfg.lists {
        add(&Place::Main, &l.name, scan_list(&l.value), true, &l.origin);
    }
    for o in &cfg.options {
        add(&Place::Main, &o.name, scan(&o.value), false, &o.origin);
    }
}

type Add<'a> = dyn FnMut(&Place, &str, Vec<Hit>, bool, &Origin) + 'a;

fn driver_hits(d: &Driver, place: &Place, add: &mut Add) {
    let paths = path_options(d.opt("driver").unwrap_or(""));
    for o in &d.options {
        let name = o.name.as_str();
        let list = LIST_OPTIONS.contains(&name);
        let mut hits = if list {
            scan_list(&o.value)
        } else {
            scan(&o.value)
        };
        if paths.contains(&name) {
            // The pipe command's arguments may be tainted; only the program name may not
            // (ChangeLog 4.96 JH/25).
            let text = if name == "command" {
                o.value.split_whitespace().next().unwrap_or("")
            } else {
                o.value.as_str()
            };
            let what = match name {
                "command" => "command name",
                "directory" => "directory name",
                _ => "file name",
            };
            push_file(&mut hits, what, text);
        }
        add(place, name, hits, list, &o.origin);
    }
}

fn finding(
    cfg: &Config,
    version: Option<&EximVersion>,
    place: &Place,
    option: &str,
    h: &Hit,
    list: bool,
    o: &Origin,
) -> Option<Finding> {
    let vars = h.vars.join(", ");
    let fd = if h.unquoted_query {
        let ty = h.what.trim_end_matches(" query");
        if version.is_some_and(|v| !v.at_least(4, 96)) {
            return None;
        }
        Finding::new("EX161", Mta::Exim, format!(
            "`{option}`: the {} `{}` uses tainted {vars} unquoted: Exim 4.96 logs `tainted search query is not properly quoted` for every such lookup (to the panic log outside transports), and the value can change the query; quote it with ${{quote_{ty}:...}}",
            h.what, h.text)).severity(Severity::Warning)
    } else {
        let (sev, why) = refusal(version, cfg)?;
        let list_lookup = list && !h.what.starts_with("${");
        let unknown = if version.is_none() {
            " (the Exim version in use is not known here: --exim-version sets it)"
        } else {
            ""
        };
        Finding::new("EX161", Mta::Exim, format!(
            "`{option}`: the {} `{}` uses tainted {vars}, which {why}: {}",
            h.what, h.text, consequence(place, list_lookup)))
            .severity(sev)
            .help(format!("name the file from untainted values: $local_part_data / $domain_data (set by a matching local_parts/domains list or check_local_user), or a lookup that returns the path{unknown}"))
    };
    Some(fd.at(o.location()).service(super::SERVICE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tainted_variables_are_found_and_lookup_results_are_not() {
        assert_eq!(tainted_vars("/var/mail/$local_part"), ["$local_part"]);
        assert_eq!(tainted_vars("/var/mail/${domain}/x"), ["$domain"]);
        assert!(tainted_vars("/var/mail/$local_part_data").is_empty());
        assert!(tainted_vars("/var/mail/${domain_data}").is_empty());
        assert_eq!(tainted_vars("$h_subject: x"), ["$h_subject"]);
        assert!(tainted_vars("${lookup{$local_part}lsearch{/etc/homes}}").is_empty());
        assert!(tainted_vars("\\$local_part").is_empty());
    }

    #[test]
    fn readfile_and_single_key_file_names_are_hits() {
        let h = scan("${if eq{$auth3}{${readfile{/etc/pw/$auth2}}}}");
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].text, "/etc/pw/$auth2");
        let h = scan("${lookup{$local_part}lsearch{/etc/virtual/$domain/aliases}}");
        assert_eq!(h[0].what, "lsearch file name");
        assert!(
            scan("${lookup{$local_part}lsearch{/etc/virtual/$domain_data/aliases}}").is_empty()
        );
        assert!(scan("${lookup{$local_part}partial-lsearch*@,ret=key{/etc/x}}").is_empty());
    }

    #[test]
    fn unquoted_queries_are_hits_and_quoted_ones_are_not() {
        let h = scan("${lookup mysql{select pw from u where name='$auth1'}}");
        assert!(h[0].unquoted_query);
        assert!(
            scan("${lookup mysql{select pw from u where name='${quote_mysql:$auth1}'}}").is_empty()
        );
        // dnsdb has no quoting function: nothing to report.
        assert!(scan("${lookup dnsdb{a=$sender_helo_name}}").is_empty());
    }

    #[test]
    fn list_items_name_their_lookup_file() {
        let h = scan_list("lsearch;/etc/exim/$domain/users : example.org");
        assert_eq!(h[0].text, "/etc/exim/$domain/users");
        assert!(scan_list("lsearch;/etc/exim/domains : +local_domains").is_empty());
        assert_eq!(scan_list("<, partial-dbm;/etc/$domain.db").len(), 1);
    }
}
