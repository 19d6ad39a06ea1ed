//! Exim: discovery (Debian, cPanel, plain), the configuration reader, the model of the
//! configuration Exim would run, ACL relay decisions and checks.

pub mod acl;
pub mod advertise;
pub mod autogen;
pub mod checks;
pub mod cond;
pub mod debian;
pub mod lists;
pub mod merge;
pub mod model;
pub mod parse;
pub mod reader;
pub mod tables;
pub mod taint;
pub mod version;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::finding::{Finding, Mta};
use crate::relay::{ClientClass, Decision, Query, RecipientClass};

use acl::{Branch, Envelope, Eval};
use model::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A single configuration file (/etc/exim/exim.conf, /etc/exim4/exim4.conf, a named file).
    Plain,
    /// Debian's /etc/exim4 directory, read the way update-exim4.conf builds it.
    Debian,
    /// cPanel's /etc/exim.conf (with the host files it reads).
    Cpanel,
}

/// One Exim configuration to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// Real path of the configuration (directory or file).
    pub path: PathBuf,
    pub kind: Kind,
}

/// The name every decision is reported under: Exim runs one ACL set for all its ports.
pub const SERVICE: &str = "smtp";

fn server_path(ctx: &Context, real: &Path) -> PathBuf {
    if ctx.root.is_snapshot() {
        Path::new("/").join(ctx.root.display(real))
    } else {
        real.to_path_buf()
    }
}

/// Configurations of this MTA on the live system or snapshot.
pub fn discover(ctx: &Context, _findings: &mut Vec<Finding>) -> Vec<Target> {
    let mut out = Vec::new();
    let r = |p: &str| ctx.root.resolve(Path::new(p));
    let etc_exim4 = r("/etc/exim4");
    if etc_exim4.join("exim4.conf").is_file() {
        out.push(Target {
            path: etc_exim4.join("exim4.conf"),
            kind: Kind::Plain,
        });
    } else if etc_exim4.join("update-exim4.conf.conf").is_file()
        || etc_exim4.join("conf.d").is_dir()
        || etc_exim4.join("exim4.conf.template").is_file()
    {
        out.push(Target {
            path: etc_exim4,
            kind: Kind::Debian,
        });
    } else if r(autogen::PATH).is_file() {
        // Only the generated file (a snapshot of /var/lib without /etc/exim4): it is what
        // Debian's exim4 reads.
        out.push(Target {
            path: r(autogen::PATH),
            kind: Kind::Plain,
        });
    }
    let etc_exim_conf = r("/etc/exim.conf");
    if etc_exim_conf.is_file() {
        let cpanel = r("/usr/local/cpanel").exists()
            || r("/etc/exim.conf.localopts").exists()
            || r("/etc/trustedmailhosts").exists()
            || r("/etc/skipsmtpcheckhosts").exists();
        out.push(Target {
            path: etc_exim_conf,
            kind: if cpanel { Kind::Cpanel } else { Kind::Plain },
        });
    }
    let etc_exim = r("/etc/exim/exim.conf");
    if etc_exim.is_file() {
        out.push(Target {
            path: etc_exim,
            kind: Kind::Plain,
        });
    }
    out
}

/// Whether an explicitly named path (real) is an Exim configuration.
pub fn detect(ctx: &Context, path: &Path) -> Option<Target> {
    if path.is_dir() {
        if path.join("exim4.conf").is_file() {
            return Some(Target {
                path: path.join("exim4.conf"),
                kind: Kind::Plain,
            });
        }
        if path.join("update-exim4.conf.conf").is_file()
            || path.join("conf.d").is_dir()
            || path.join("exim4.conf.template").is_file()
        {
            return Some(Target {
                path: path.to_path_buf(),
                kind: Kind::Debian,
            });
        }
        // A bare conf.d (main/, acl/, router/ ...): treat its parent layout as Debian's.
        if path.join("main").is_dir() && path.join("acl").is_dir() {
            return Some(Target {
                path: path.to_path_buf(),
                kind: Kind::Debian,
            });
        }
        return None;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let head = ctx.root.read(path).ok()?;
    let head = String::from_utf8_lossy(&head[..head.len().min(256 * 1024)]).to_string();
    let exim_like = head.lines().any(|l| {
        let l = l.trim_start();
        l.starts_with("begin acl")
            || l.starts_with("begin routers")
            || l.starts_with("begin transports")
            || l.starts_with("acl_smtp_")
            || l.starts_with("domainlist ")
            || l.starts_with("hostlist ")
    });
    // Named explicitly and living under an exim path: a fragment (conf.d/retry.conf) is still
    // Exim syntax worth reading.
    let exim_path = path.to_string_lossy().to_ascii_lowercase().contains("exim");
    if exim_like || ((name.contains("exim") || exim_path) && !head.contains("smtpd_")) {
        return Some(Target {
            path: path.to_path_buf(),
            kind: Kind::Plain,
        });
    }
    None
}

/// A configuration read the way Exim would read it.
pub struct Loaded {
    pub cfg: Config,
    pub findings: Vec<Finding>,
    pub kind: Kind,
    pub debian_vars: Vec<debian::Var>,
    pub files: Vec<PathBuf>,
    /// The files update-exim4.conf builds the generated configuration from (Debian only):
    /// update-exim4.conf.conf and the conf.d fragments or template it concatenates. Files
    /// they `.include` are read by Exim at run time, not by update-exim4.conf.
    pub debian_inputs: Vec<PathBuf>,
}

pub fn load(ctx: &Context, target: &Target) -> Loaded {
    let mut findings = Vec::new();
    let mut rd = reader::Reader::new(ctx);
    let mut debian_vars = Vec::new();
    let mut debian_inputs = Vec::new();
    let segments = match target.kind {
        Kind::Debian => {
            // A bare conf.d directory is its own conf.d.
            let (dir, server) =
                if target.path.join("main").is_dir() && !target.path.join("conf.d").is_dir() {
                    (target.path.clone(), PathBuf::from("/etc/exim4"))
                } else {
                    (target.path.clone(), server_path(ctx, &target.path))
                };
            if dir.join("main").is_dir() && !dir.join("conf.d").is_dir() {
                let mut segs = Vec::new();
                for s in debian::SECTIONS {
                    for f in debian::run_parts(ctx, &dir.join(s), &mut findings) {
                        let sp = server_path(ctx, &f);
                        segs.push(reader::Segment::File {
                            real: f,
                            server: sp,
                        });
                        segs.push(reader::Segment::Lines(vec![(
                            String::new(),
                            reader::Origin {
                                file: PathBuf::new(),
                                line: 0,
                                src: None,
                                start: 0,
                                end: 0,
                            },
                        )]));
                    }
                }
                segs
            } else {
                let a = debian::assemble(ctx, &dir, &server, &mut findings);
                rd.debian_seed = a.seed;
                debian_vars = a.vars;
                let ue4cc = dir.join("update-exim4.conf.conf");
                if ue4cc.is_file() {
                    debian_inputs.push(ue4cc);
                }
                for seg in &a.segments {
                    if let reader::Segment::File { real, .. } = seg {
                        debian_inputs.push(real.clone());
                    }
                }
                a.segments
            }
        }
        _ => vec![reader::Segment::File {
            real: target.path.clone(),
            server: server_path(ctx, &target.path),
        }],
    };
    let out = rd.read(segments);
    findings.extend(out.findings);
    checks::placeholders(&out.lines, &mut findings);
    let mut cfg = parse::build(out.lines, &mut findings);
    cfg.macros = out.macros;
    Loaded {
        cfg,
        findings,
        kind: target.kind,
        debian_vars,
        files: out.files,
        debian_inputs,
    }
}

pub fn primary_hostname(ctx: &Context, cfg: &Config) -> String {
    if let Some(o) = cfg.option("primary_hostname") {
        if !o.value.contains('$') && !o.value.is_empty() {
            return o.value.to_ascii_lowercase();
        }
    }
    let p = if ctx.root.is_snapshot() {
        "/etc/hostname"
    } else {
        "/proc/sys/kernel/hostname"
    };
    ctx.root
        .read_to_string(&ctx.root.resolve(Path::new(p)))
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.trim().to_ascii_lowercase()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "primary-hostname.invalid".into())
}

/// Evaluate connect, MAIL and RCPT ACLs in order for one envelope.
pub fn evaluate(ctx: &Context, cfg: &Config, env: &Envelope) -> Vec<Branch> {
    // Exim's address parser refuses a recipient domain with characters outside letters,
    // digits, '-' and '.' (or a [literal]) before any ACL runs: `501 <...>: malformed address`.
    if !valid_domain(&env.rcpt_domain) {
        return vec![Branch {
            verdict: crate::relay::Verdict::Reject,
            code: Some(501),
            text: Some(format!(
                "<{}@{}>: malformed address",
                env.rcpt_local, env.rcpt_domain
            )),
            trace: vec![crate::relay::TraceStep {
                file: PathBuf::from("(SMTP)"),
                line: 0,
                entry: format!("RCPT TO:<{}@{}>", env.rcpt_local, env.rcpt_domain),
                effect: "reject: not a syntactically valid address".into(),
            }],
            assumed: Vec::new(),
            decided_by: None,
        }];
    }
    let ev = Eval::new(ctx, cfg, env, primary_hostname(ctx, cfg));
    let mut out = Vec::new();
    for c in ev.run_option("acl_smtp_connect", false) {
        if c.verdict != crate::relay::Verdict::Accept {
            out.push(c);
            continue;
        }
        for m in ev.run_option("acl_smtp_mail", false) {
            if m.verdict != crate::relay::Verdict::Accept {
                out.push(join(&c, m));
                continue;
            }
            let cm = join(&c, m);
            for r in ev.run_option("acl_smtp_rcpt", true) {
                let b = join(&cm, r);
                // Drop combinations that assume contradictory outcomes for one condition.
                let contradictory = b
                    .assumed
                    .iter()
                    .any(|(r1, v1)| b.assumed.iter().any(|(r2, v2)| r1 == r2 && v1 != v2));
                if !contradictory {
                    out.push(b);
                }
            }
        }
    }
    out
}

pub fn valid_domain(d: &str) -> bool {
    if d.starts_with('[') && d.ends_with(']') {
        return true;
    }
    !d.is_empty()
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

fn join(a: &Branch, mut b: Branch) -> Branch {
    let mut trace = a.trace.clone();
    trace.append(&mut b.trace);
    let mut assumed = a.assumed.clone();
    assumed.append(&mut b.assumed);
    Branch {
        trace,
        assumed,
        ..b
    }
}

/// The representative client and recipient of each class, from the configuration.
pub struct Classes {
    pub trusted_ip: Option<IpAddr>,
    pub local_domain: Option<String>,
    pub relay_domain: Option<String>,
}

pub const STRANGER_IP: &str = "203.0.113.5";
pub const EXTERNAL_DOMAIN: &str = "external.example";

fn literal_domain(ctx: &Context, cfg: &Config, list: &str, primary: &str) -> Option<String> {
    let l = cfg.list(list)?;
    let v = lists::expand(ctx, &l.value).ok()?;
    let items = lists::split(&v);
    let lit = |i: &&String| {
        !i.is_empty()
            && !i.starts_with(['!', '+', '*', '^', '/', '@', '$'])
            && !i.contains(';')
            && i.as_str() != "localhost"
    };
    if let Some(i) = items.iter().filter(|i| valid_domain(i)).find(lit) {
        return Some(i.to_ascii_lowercase());
    }
    if items.iter().any(|i| i == "@") {
        return Some(primary.to_string());
    }
    items.iter().find(|i| i.as_str() == "localhost").cloned()
}

pub fn classes(ctx: &Context, cfg: &Config) -> Classes {
    let primary = primary_hostname(ctx, cfg);
    let trusted_ip = cfg.list("relay_from_hosts").and_then(|l| {
        let v = lists::expand(ctx, &l.value).ok()?;
        let items = lists::split(&v);
        let mut nets: Vec<ipnet::IpNet> = items
            .iter()
            .filter(|i| !i.starts_with('!'))
            .filter_map(|i| lists::parse_net(i))
            .collect();
        // configure.default trusts `localhost` (a name whose address is 127.0.0.1).
        if nets.is_empty() && items.iter().any(|i| i.eq_ignore_ascii_case("localhost")) {
            nets.push(ipnet::IpNet::from(IpAddr::from([127, 0, 0, 1])));
        }
        let pick = nets
            .iter()
            .find(|n| !n.addr().is_loopback())
            .or(nets.first())?;
        Some(representative(pick))
    });
    Classes {
        trusted_ip,
        local_domain: literal_domain(ctx, cfg, "local_domains", &primary),
        relay_domain: literal_domain(ctx, cfg, "relay_to_domains", &primary),
    }
}

fn representative(n: &ipnet::IpNet) -> IpAddr {
    match n {
        ipnet::IpNet::V4(v) if v.prefix_len() < 31 => IpAddr::V4(std::net::Ipv4Addr::from(
            u32::from(v.network()).wrapping_add(1),
        )),
        ipnet::IpNet::V6(v) if v.prefix_len() < 127 => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(v.network()).wrapping_add(1),
        )),
        other => other.addr(),
    }
}

/// One cell of the relay matrix.
pub struct Cell {
    pub client: ClientClass,
    pub rcpt: RecipientClass,
    pub env: Envelope,
    pub branches: Vec<Branch>,
    pub decision: Decision,
    pub service: String,
}

/// A listening port Exim's daemon serves (daemon_smtp_ports, tls_on_connect_ports).
pub struct Service {
    pub name: String,
    pub port: Option<u16>,
}

fn port_number(s: &str) -> Option<u16> {
    match s.trim() {
        "smtp" => Some(25),
        "submission" => Some(587),
        "smtps" | "submissions" | "ssmtp" => Some(465),
        n => n.parse().ok(),
    }
}

/// Decisions are per port only when an ACL condition tests `$received_port` /
/// `$interface_port`; otherwise every port runs the same ACLs and one decision ("smtp")
/// stands for all of them.
pub fn services(cfg: &Config) -> Vec<Service> {
    let per_port = cfg.acls.iter().any(|a| {
        a.stmts.iter().any(|s| {
            s.conds.iter().any(|c| {
                c.value().contains("received_port") || c.value().contains("interface_port")
            })
        })
    });
    if !per_port {
        return vec![Service {
            name: SERVICE.into(),
            port: None,
        }];
    }
    let ports = cfg
        .option("daemon_smtp_ports")
        .map(|o| o.value.clone())
        .unwrap_or_else(|| "smtp".into());
    let tls: Vec<u16> = cfg
        .option("tls_on_connect_ports")
        .map(|o| {
            lists::split(&o.value)
                .iter()
                .filter_map(|p| port_number(p))
                .collect()
        })
        .unwrap_or_default();
    let mut out: Vec<Service> = Vec::new();
    for p in lists::split(&ports).iter().filter_map(|p| port_number(p)) {
        let name = match p {
            25 => "smtp".to_string(),
            587 => "submission".to_string(),
            465 if tls.contains(&465) => "smtps".to_string(),
            n if tls.contains(&n) => format!("smtps/{n}"),
            n => format!("smtp/{n}"),
        };
        if !out.iter().any(|s| s.port == Some(p)) {
            out.push(Service {
                name,
                port: Some(p),
            });
        }
    }
    if out.is_empty() {
        out.push(Service {
            name: SERVICE.into(),
            port: None,
        });
    }
    out
}

/// The relay matrix; `only` restricts it to one recipient class (lint's rules only look at
/// external recipients, so it skips the other two thirds of the work).
pub fn matrix(ctx: &Context, cfg: &Config, only: Option<RecipientClass>) -> Vec<Cell> {
    let cl = classes(ctx, cfg);
    let stranger: IpAddr = STRANGER_IP
        .parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 5)));
    let mut out = Vec::new();
    for client in ClientClass::ALL {
        let (ip, auth) = match client {
            ClientClass::Stranger => (stranger, None),
            ClientClass::Trusted => match cl.trusted_ip {
                Some(ip) => (ip, None),
                None => continue,
            },
            ClientClass::Authenticated => (stranger, Some("alice".to_string())),
        };
        for rcpt in RecipientClass::ALL {
            if only.is_some_and(|o| o != rcpt) {
                continue;
            }
            let domain = match rcpt {
                RecipientClass::Local => cl.local_domain.clone(),
                RecipientClass::Relay => cl.relay_domain.clone(),
                RecipientClass::External => Some(EXTERNAL_DOMAIN.to_string()),
            };
            let Some(domain) = domain else { continue };
            let env = Envelope {
                ip: Some(ip),
                host_name: None,
                auth_id: auth.clone(),
                sender: None,
                rcpt_local: "user".into(),
                rcpt_domain: domain,
                port: None,
                helo: None,
            };
            for svc in services(cfg) {
                let env = Envelope {
                    port: svc.port,
                    ..env.clone()
                };
                let branches = evaluate(ctx, cfg, &env);
                let decision = acl::decide(&svc.name, &branches);
                out.push(Cell {
                    client,
                    rcpt,
                    env,
                    branches,
                    decision,
                    service: svc.name.clone(),
                });
            }
        }
    }
    out
}

pub fn lint(ctx: &Context, target: &Target) -> Vec<Finding> {
    let loaded = load(ctx, target);
    let mut findings = loaded.findings.clone();
    checks::run(ctx, &loaded, &mut findings);
    if let Some(generated) = autogen::live_file(ctx, target) {
        autogen::check(ctx, &loaded, &generated, &mut findings);
    }
    findings
}

pub fn simulate(ctx: &Context, target: &Target, q: &Query) -> Result<Vec<Decision>, String> {
    let loaded = load(ctx, target);
    let ip: IpAddr = q
        .client_ip
        .parse()
        .map_err(|_| format!("{}: not an IP address", q.client_ip))?;
    let rcpt = q.rcpt.trim().trim_start_matches('<').trim_end_matches('>');
    let (lp, dom) = rcpt.rsplit_once('@').unwrap_or((rcpt, ""));
    // A client can only authenticate where Exim offers AUTH: with no server authenticator
    // (or auth_advertise_hosts empty) EHLO lists no AUTH and the client stays
    // unauthenticated, whatever --sasl-user says.
    let no_auth = q
        .sasl_user
        .as_ref()
        .and_then(|u| auth_not_offered(ctx, &loaded.cfg).map(|why| (u.clone(), why)));
    let env = Envelope {
        ip: Some(ip),
        host_name: q.client_name.clone(),
        auth_id: if no_auth.is_some() {
            None
        } else {
            q.sasl_user.clone()
        },
        sender: q.sender.as_ref().map(|s| {
            s.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        }),
        rcpt_local: lp.to_string(),
        rcpt_domain: dom.to_ascii_lowercase(),
        port: None,
        helo: q.helo.clone(),
    };
    let mut out = Vec::new();
    for svc in services(&loaded.cfg) {
        let env = Envelope {
            port: svc.port,
            ..env.clone()
        };
        let branches = evaluate(ctx, &loaded.cfg, &env);
        let mut d = acl::decide(&svc.name, &branches);
        if let Some((user, why)) = &no_auth {
            d.trace.insert(
                0,
                crate::relay::TraceStep {
                    file: PathBuf::from("(SMTP)"),
                    line: 0,
                    entry: format!("AUTH as {user} (--sasl-user)"),
                    effect: if why.starts_with(LOGIN_FAILS) {
                        format!("ignored: AUTH cannot succeed here ({why}), so the client is simulated as unauthenticated")
                    } else {
                        format!("ignored: Exim offers no AUTH here ({why}), so the client is simulated as unauthenticated")
                    },
                },
            );
        }
        out.push(d);
    }
    Ok(out)
}

/// Why Exim would not offer AUTH at all, if it would not.
/// How [`auth_not_offered`] says that AUTH is offered but can never succeed.
const LOGIN_FAILS: &str = "every login fails with 435 Unable to authenticate at present";

fn auth_not_offered(ctx: &Context, cfg: &Config) -> Option<String> {
    let servers = cfg.server_authenticators();
    if servers.is_empty() {
        return Some("no authenticator has a server side".into());
    }
    // Offered, but every login fails: AUTH through an authenticator that reads a file named
    // by tainted data answers 435 on Exim >= 4.94/4.95 (ChangeLog 4.94 JH/20, 4.95), so the
    // authenticated branch does not exist (issue #16 item 1).
    let version = checks::effective_version(ctx);
    let broken: Vec<String> = servers
        .iter()
        .filter_map(|d| taint::broken_authenticator(cfg, version.as_ref(), d))
        .collect();
    if broken.len() == servers.len() {
        return Some(format!("{LOGIN_FAILS}: {}", broken.join("; ")));
    }
    let empty = cfg.option("auth_advertise_hosts").is_some_and(|o| {
        lists::expand(ctx, &o.value)
            .map(|v| lists::split(&v).is_empty())
            .unwrap_or(false)
    });
    empty.then(|| "auth_advertise_hosts is empty".into())
}

pub fn mta() -> Mta {
    Mta::Exim
}
