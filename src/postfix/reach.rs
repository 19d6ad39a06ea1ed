//! Who can connect to an smtpd listener at all (master(5), postconf(5) inet_interfaces and
//! inet_protocols): an `inet` service named `host:port` listens on that address only; a
//! bare port (`smtp`, `submission`, `2525`) listens on every address of inet_interfaces.
//! A listener that only has loopback addresses cannot be reached from another host, and
//! one whose addresses are all of one family (or whose inet_protocols leaves one out)
//! cannot be reached over the other. What cannot be known statically (host names other
//! than localhost, `all`, routing to a private address) counts as reachable.

use std::net::IpAddr;

use super::model::{Model, Origin};
use super::syntax::list_items;
use crate::finding::Mta;
use crate::relay::{Decision, TraceStep, Verdict};

/// The addresses a listener binds, as far as the configuration says.
enum Binds {
    /// Every address of the host (inet_interfaces = all, or names not known here).
    Any,
    /// These addresses (loopback-only and localhost spelled out).
    Only(Vec<IpAddr>),
}

/// The address a master.cf service name binds, e.g. `192.0.2.25:smtp` or
/// `[2001:db8::25]:submission` (master(5): "service name ... host:port"); `None` for a bare
/// port (the service binds inet_interfaces) or a host name.
pub fn bound_address(service_name: &str) -> Option<IpAddr> {
    let (host, _port) = service_name.rsplit_once(':')?;
    host.trim_matches(|c| c == '[' || c == ']').parse().ok()
}

/// `Some(decision)` when the client at `ip` cannot connect to listener `si`: `unavailable`,
/// with the reason in the text and the trace.
pub fn unreachable(model: &Model, si: usize, ip: Option<IpAddr>) -> Option<Decision> {
    let ip = ip?;
    let svc = model.services().get(si)?;
    if svc.kind() != "inet" {
        // unix/pass listeners get their connections from another service (postscreen).
        return None;
    }
    let scope = model.scope(Some(si));
    let protocols = scope.value("inet_protocols").to_ascii_lowercase();
    let (binds, why, origin) = match svc.name().rsplit_once(':') {
        Some((host, _port)) => (
            host_binds(host),
            format!("master.cf names the service {}", svc.name()),
            model
                .master
                .as_ref()
                .map(|m| (m.source.display.clone(), svc.line)),
        ),
        None => {
            let v = scope.value("inet_interfaces");
            let o = scope.get("inet_interfaces").map(|e| e.origin);
            (
                interfaces_binds(&v),
                format!("inet_interfaces = {}", v.trim()),
                o.and_then(|o: Origin| o.file.map(|f| (f, o.line))),
            )
        }
    };
    let v4 = protocols.contains("all") || protocols.contains("ipv4");
    let v6 = protocols.contains("all") || protocols.contains("ipv6");
    let family_ok = if ip.is_ipv4() { v4 } else { v6 };
    let reason = if !family_ok && !protocols.trim().is_empty() {
        Some(format!(
            "inet_protocols = {} : no {} listener",
            protocols.trim(),
            if ip.is_ipv4() { "IPv4" } else { "IPv6" }
        ))
    } else {
        match binds {
            Binds::Any => None,
            Binds::Only(addrs) if addrs.contains(&ip) => None,
            Binds::Only(addrs) if addrs.iter().all(|a| a.is_loopback()) => {
                (!ip.is_loopback()).then(|| format!("{why}: it listens on loopback only"))
            }
            Binds::Only(addrs) if addrs.iter().all(|a| a.is_ipv4() != ip.is_ipv4()) => {
                Some(format!(
                    "{why}: it listens on {} addresses only",
                    if ip.is_ipv4() { "IPv6" } else { "IPv4" }
                ))
            }
            Binds::Only(_) => None,
        }
    }?;
    let name = super::policy::listener_name(model, si);
    let mut d = Decision::new(Mta::Postfix, name, Verdict::Unavailable);
    d.text = Some(format!("a client at {ip} cannot connect: {reason}"));
    let (file, line) = origin.unwrap_or_else(|| ("built-in default".into(), 0));
    d.trace.push(TraceStep {
        file,
        line,
        entry: reason,
        effect: format!("unavailable to {ip}"),
    });
    Some(d)
}

/// A `host` of `host:port`: an address, `localhost`, or a name not resolved here.
fn host_binds(host: &str) -> Binds {
    let h = host.trim_matches(|c| c == '[' || c == ']');
    if h.eq_ignore_ascii_case("localhost") {
        return Binds::Only(vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        ]);
    }
    match h.parse() {
        Ok(a) => Binds::Only(vec![a]),
        Err(_) => Binds::Any,
    }
}

/// inet_interfaces: `all` (the default), `loopback-only`, addresses and host names.
fn interfaces_binds(value: &str) -> Binds {
    let mut out = Vec::new();
    for item in list_items(&value.to_ascii_lowercase()) {
        match item.as_str() {
            "all" => return Binds::Any,
            "loopback-only" | "localhost" => {
                out.push(IpAddr::from([127, 0, 0, 1]));
                out.push(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]));
            }
            other => match other.trim_matches(|c| c == '[' || c == ']').parse() {
                Ok(a) => out.push(a),
                Err(_) => return Binds::Any,
            },
        }
    }
    if out.is_empty() {
        Binds::Any
    } else {
        Binds::Only(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Context, Options, Root};

    fn model(main: &str, master: &str) -> (tempfile::TempDir, Model) {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc/postfix");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("main.cf"), main).unwrap();
        std::fs::write(etc.join("master.cf"), master).unwrap();
        let ctx = Context::new(
            Root::snapshot(d.path()),
            Options {
                postfix_version: Some("3.7".into()),
                ..Default::default()
            },
        );
        let m = Model::load(&ctx, &etc, &mut Vec::new());
        (d, m)
    }

    #[test]
    fn bound_addresses_of_service_names() {
        assert_eq!(bound_address("192.0.2.25:smtp"), "192.0.2.25".parse().ok());
        assert_eq!(
            bound_address("[2001:db8::25]:587"),
            "2001:db8::25".parse().ok()
        );
        assert_eq!(bound_address("smtp"), None);
        assert_eq!(bound_address("mail.example.com:smtp"), None);
    }

    #[test]
    fn loopback_listeners_and_families() {
        let ip = |s: &str| s.parse().ok();
        let master = "smtp inet n - y - - smtpd\n10.0.0.1:2525 inet n - y - - smtpd\n[::1]:10025 inet n - y - - smtpd\n";
        let (_d, m) = model(
            "inet_interfaces = loopback-only\ninet_protocols = ipv4\n",
            master,
        );
        let d = unreachable(&m, 0, ip("203.0.113.5")).expect("loopback-only");
        assert_eq!(d.result, Verdict::Unavailable);
        assert!(d.text.unwrap().contains("loopback only"));
        assert_eq!(d.trace[0].line, 1);
        assert!(unreachable(&m, 0, ip("127.0.0.1")).is_none());
        // An explicit host wins over inet_interfaces; a remote client can reach it.
        assert!(unreachable(&m, 1, ip("203.0.113.5")).is_none());
        // IPv6 client, IPv4-only Postfix.
        assert!(unreachable(&m, 1, ip("2001:db8::5")).is_some());
        let (_d, m) = model("inet_interfaces = all\ninet_protocols = all\n", master);
        assert!(unreachable(&m, 0, ip("203.0.113.5")).is_none());
        assert!(unreachable(&m, 2, ip("203.0.113.5")).is_some());
        assert!(unreachable(&m, 2, ip("::1")).is_none());
        let (_d, m) = model("inet_interfaces = 192.0.2.1, $myhostname\n", master);
        assert!(unreachable(&m, 0, ip("203.0.113.5")).is_none());
    }
}
