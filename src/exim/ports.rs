//! EX180: the daemon listens on port 465 without TLS-on-connect (issue #21 item 7).
//!
//! Port 465 is submission with implicit TLS (RFC 8314 section 3.3): the client starts with a
//! TLS handshake. Exim does that only on the ports listed in tls_on_connect_ports (Exim spec
//! 4.96, option tls_on_connect_ports, "string list", default unset; section "Support for the
//! submissions (aka SSMTP or SMTPS) protocol": "connections to those ports must first
//! establish TLS ... The common use of this option is expected to be tls_on_connect_ports =
//! 465"). Listening is decided elsewhere (same section: "Setting tls_on_connect_ports does
//! not of itself cause the daemon to listen on those ports. You must still specify them in
//! daemon_smtp_ports, local_interfaces, or the -oX option"), so a 465 in daemon_smtp_ports or
//! local_interfaces without tls_on_connect_ports greets in clear.
//!
//! Which ports the daemon listens on (spec chapter "Starting the daemon and the use of
//! network interfaces"): each local_interfaces item (default `<; ::0 ; 0.0.0.0`) with its own
//! port (`192.168.23.65.1234` or `[192.168.23.65]:1234`, numbers only) listens there; an item
//! without one listens on every daemon_smtp_ports port (default `smtp`; names from
//! /etc/services; daemon_smtp_port is a synonym). Options given on the daemon's command line
//! (`-oX`, `-tls-on-connect`) are not in the configuration and are not seen here.
//!
//! Checked with Exim 4.96 (scripts/exim-oracle) as a daemon on loopback (`-bdf`): a port in
//! daemon_smtp_ports but not in tls_on_connect_ports greets `220` in clear and `openssl
//! s_client` fails with "wrong version number"; with it, 220 arrives inside TLS and a plain
//! client gets nothing.

use std::net::IpAddr;

use super::lists::split;
use super::model::{Config, OptSetting};
use crate::context::Context;
use crate::finding::{Finding, Fix, Mta};

/// Port 465 by number and by its /etc/services names (netbase: `submissions 465/tcp ssmtp
/// smtps urd`).
fn is_465(port: &str) -> bool {
    matches!(
        port.trim(),
        "465" | "smtps" | "submissions" | "ssmtp" | "urd"
    )
}

/// The port a local_interfaces item names, if any: `addr.port` or `[addr]:port`.
fn item_port(item: &str) -> Option<&str> {
    let item = item.trim();
    if let Some(rest) = item.strip_prefix('[') {
        return rest.split_once("]:").map(|(_, p)| p);
    }
    let (addr, port) = item.rsplit_once('.')?;
    let addr = addr.split('%').next().unwrap_or(addr);
    (addr.parse::<IpAddr>().is_ok() && port.parse::<u16>().is_ok()).then_some(port)
}

/// The setting that makes the daemon listen on 465, if one does.
fn listens_on_465(cfg: &Config) -> Option<&OptSetting> {
    let ports = cfg
        .option("daemon_smtp_ports")
        .or_else(|| cfg.option("daemon_smtp_port"));
    let ifaces = cfg.option("local_interfaces");
    let items = ifaces.map(|o| split(&o.value)).unwrap_or_default();
    let mut without_port = ifaces.is_none();
    for item in &items {
        match item_port(item) {
            Some(p) if is_465(p) => return ifaces,
            Some(_) => {}
            None => without_port = true,
        }
    }
    let ports = ports.filter(|o| without_port && split(&o.value).iter().any(|p| is_465(p)))?;
    Some(ports)
}

pub fn run(_ctx: &Context, cfg: &Config, out: &mut Vec<Finding>) {
    let Some(listen) = listens_on_465(cfg) else {
        return;
    };
    let toc = cfg.option("tls_on_connect_ports");
    if toc.is_some_and(|o| split(&o.value).iter().any(|p| is_465(p))) {
        return;
    }
    let toc_state = match toc {
        Some(o) => format!(
            "tls_on_connect_ports = {} (line {})",
            o.value.trim(),
            o.origin.line
        ),
        None => "tls_on_connect_ports is not set".to_string(),
    };
    let mut fd = Finding::new(
        "EX180",
        Mta::Exim,
        format!(
            "port 465 speaks plain SMTP: {} = {} makes the daemon listen on 465, but {toc_state}, so Exim greets in clear where mail clients set to \"SSL/TLS, port 465\" start with a TLS handshake; they cannot connect",
            listen.name,
            listen.value.trim()
        ),
    )
    .at(listen.origin.location())
    .service("smtps")
    .help(match toc {
        Some(_) => "Add 465 to tls_on_connect_ports (a colon-separated list).",
        None => "Set `tls_on_connect_ports = 465` in the main section.",
    });
    // Unset: a new main-section line before the one that opens 465 (same .ifdef block, and
    // before any continuation lines). Review only: clients using plain SMTP on 465 stop working.
    if let (None, Some(src)) = (toc, listen.origin.src.as_ref()) {
        fd = fd.fix(Fix::review(
            "set tls_on_connect_ports = 465",
            vec![src.edit(
                listen.origin.start..listen.origin.start,
                "tls_on_connect_ports = 465\n",
            )],
        ));
    }
    out.push(fd);
}

#[cfg(test)]
mod tests {
    use super::{is_465, item_port};

    #[test]
    fn local_interfaces_ports() {
        assert_eq!(item_port("192.168.23.65.465"), Some("465"));
        assert_eq!(item_port("[192.168.23.65]:465"), Some("465"));
        assert_eq!(item_port("3ffe:ffff:836f::fe86:a061.465"), Some("465"));
        assert_eq!(item_port("[::1]:25"), Some("25"));
        assert_eq!(item_port("192.168.23.65"), None);
        assert_eq!(item_port("0.0.0.0"), None);
        assert_eq!(item_port("::0"), None);
    }

    #[test]
    fn port_465_names() {
        assert!(is_465("smtps") && is_465(" 465") && is_465("submissions"));
        assert!(!is_465("smtp") && !is_465("587") && !is_465("4650"));
    }
}
