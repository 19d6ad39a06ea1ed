//! The DNS client: hickory-resolver on a single-threaded tokio runtime, with bounded
//! concurrency (a semaphore), a per-query timeout and retries (hickory's `attempts`).
//!
//! Every answer is reduced to [`Answer`]: records, NXDOMAIN, "no records of this type"
//! (NODATA), or a temporary failure (SERVFAIL, REFUSED, timeout) that the checks report as
//! "could not check", never as a problem of the domain.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use tokio::sync::Semaphore;

/// What one query found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    Found(Vec<T>),
    /// RCODE 3: the name does not exist (RFC 1035 section 4.1.1, RFC 8020).
    NxDomain,
    /// The name exists but has no record of the asked type.
    NoData,
    /// SERVFAIL, REFUSED, timeout, network error: nothing is known.
    Failed(String),
}

impl<T> Answer<T> {
    pub fn failed(&self) -> Option<&str> {
        match self {
            Answer::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// One MX record: preference and target as written (without the trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    pub host: String,
}

/// Addresses of a name, and whether the name itself is an alias (CNAME).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addrs {
    pub ips: Vec<IpAddr>,
    pub cname: Option<String>,
}

/// How to reach DNS.
#[derive(Debug, Clone)]
pub struct ResolverSpec {
    /// `--resolver` servers; empty: the nameservers of `resolv_conf`.
    pub servers: Vec<SocketAddr>,
    /// The text of the root's /etc/resolv.conf (used when `servers` is empty).
    pub resolv_conf: Option<String>,
    pub timeout: Duration,
    pub concurrency: usize,
}

pub struct Dns {
    resolver: TokioResolver,
    limit: Arc<Semaphore>,
}

/// hickory tries each server `attempts` times before it gives up: two tries per query, as
/// the stub resolver of glibc does by default (resolv.conf(5) `attempts:2`).
const ATTEMPTS: usize = 2;

impl Dns {
    pub fn new(spec: &ResolverSpec) -> Result<Dns, String> {
        let config = if spec.servers.is_empty() {
            let text = spec.resolv_conf.as_deref().ok_or(
                "no /etc/resolv.conf to take the resolver from; pass --resolver IP[:PORT]",
            )?;
            let (config, _) = hickory_resolver::system_conf::parse_resolv_conf(text)
                .map_err(|e| format!("/etc/resolv.conf: {e}; pass --resolver IP[:PORT]"))?;
            // Search domains would turn a missing name into a query for name.search.domain:
            // every name asked here is absolute.
            ResolverConfig::from_name_servers(config.name_servers().to_vec())
        } else {
            ResolverConfig::from_name_servers(spec.servers.iter().map(server).collect())
        };
        let mut opts = ResolverOpts::default();
        opts.timeout = spec.timeout;
        opts.attempts = ATTEMPTS;
        opts.ndots = 0;
        // Answers are asked once each; a cache of every MX host is still worth having (many
        // hosted domains share the same MX hosts).
        opts.cache_size = 4096;
        opts.max_active_requests = spec.concurrency.max(1);
        opts.num_concurrent_reqs = 1;
        opts.preserve_intermediates = true;
        opts.try_tcp_on_error = true;
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| format!("cannot set up the DNS resolver: {e}"))?;
        Ok(Dns {
            resolver,
            limit: Arc::new(Semaphore::new(spec.concurrency.max(1))),
        })
    }

    async fn lookup(&self, name: &str, t: RecordType) -> Answer<RData> {
        let Ok(_permit) = self.limit.acquire().await else {
            return Answer::Failed("resolver shut down".into());
        };
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let Ok(n) = Name::from_ascii(&fqdn) else {
            return Answer::Failed(format!("`{name}` is not a DNS name"));
        };
        match self.resolver.lookup(n, t).await {
            Ok(l) => {
                let data: Vec<RData> = l.answers().iter().map(|r| r.data.clone()).collect();
                if data.is_empty() {
                    Answer::NoData
                } else {
                    Answer::Found(data)
                }
            }
            Err(e) => classify(&e),
        }
    }

    /// The records of type `t` at `name` that `pick` takes; NODATA when it takes none.
    async fn records<T>(
        &self,
        name: &str,
        t: RecordType,
        pick: impl Fn(RData) -> Option<T>,
    ) -> Answer<T> {
        match self.lookup(name, t).await {
            Answer::Found(d) => {
                let v: Vec<T> = d.into_iter().filter_map(pick).collect();
                if v.is_empty() {
                    Answer::NoData
                } else {
                    Answer::Found(v)
                }
            }
            other => map_empty(other),
        }
    }

    pub async fn mx(&self, domain: &str) -> Answer<Mx> {
        self.records(domain, RecordType::MX, |r| match r {
            RData::MX(m) => Some(Mx {
                preference: m.preference,
                host: trim_name(&m.exchange),
            }),
            _ => None,
        })
        .await
    }

    /// A and AAAA of `host`. NXDOMAIN/NODATA only when both say so; a failure of either
    /// with no address from the other is a failure.
    pub async fn addrs(&self, host: &str) -> Answer<Addrs> {
        let (a, aaaa) = tokio::join!(
            self.lookup(host, RecordType::A),
            self.lookup(host, RecordType::AAAA)
        );
        let mut out = Addrs {
            ips: Vec::new(),
            cname: None,
        };
        let mut failure = None;
        let mut nx = true;
        for ans in [a, aaaa] {
            match ans {
                Answer::Found(d) => {
                    nx = false;
                    for r in d {
                        match r {
                            RData::A(a) => out.ips.push(IpAddr::V4(a.0)),
                            RData::AAAA(a) => out.ips.push(IpAddr::V6(a.0)),
                            RData::CNAME(c) if out.cname.is_none() => {
                                out.cname = Some(trim_name(&c.0))
                            }
                            _ => {}
                        }
                    }
                }
                Answer::NoData => nx = false,
                Answer::NxDomain => {}
                Answer::Failed(e) => failure = Some(e),
            }
        }
        out.ips.sort();
        out.ips.dedup();
        match (out.ips.is_empty(), failure) {
            (false, _) => Answer::Found(vec![out]),
            (true, Some(e)) => Answer::Failed(e),
            (true, None) if nx => Answer::NxDomain,
            (true, None) => Answer::NoData,
        }
    }

    /// A records only (blocklist answers are IPv4 addresses, RFC 5782 section 2.3).
    pub async fn a(&self, name: &str) -> Answer<std::net::Ipv4Addr> {
        self.records(name, RecordType::A, |r| match r {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .await
    }

    /// TXT records, each as its strings joined (rblsmtpd(8): "listed by that source if
    /// d.c.b.a.base has a TXT record", and the text becomes the client's error message).
    pub async fn txt(&self, name: &str) -> Answer<String> {
        self.records(name, RecordType::TXT, |r| match r {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .await
    }

    pub async fn ptr(&self, ip: IpAddr) -> Answer<String> {
        let name = Name::from(ip).to_ascii();
        self.records(&name, RecordType::PTR, |r| match r {
            RData::PTR(p) => Some(trim_name(&p.0)),
            _ => None,
        })
        .await
    }
}

fn map_empty<T, U>(a: Answer<T>) -> Answer<U> {
    match a {
        Answer::Found(_) | Answer::NoData => Answer::NoData,
        Answer::NxDomain => Answer::NxDomain,
        Answer::Failed(e) => Answer::Failed(e),
    }
}

fn trim_name(n: &Name) -> String {
    n.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn server(addr: &SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    ns.connections = vec![udp, tcp];
    ns
}

/// NXDOMAIN and NODATA are answers; everything else is "could not check".
fn classify<T>(e: &NetError) -> Answer<T> {
    if e.is_nx_domain() {
        Answer::NxDomain
    } else if e.is_no_records_found() {
        Answer::NoData
    } else {
        let text = match e {
            NetError::Timeout => "no answer within the timeout".to_string(),
            other => other.to_string(),
        };
        Answer::Failed(text)
    }
}

/// Parse `IP` or `IP:PORT` / `[IPv6]:PORT` (port 53 by default).
pub fn parse_server(s: &str) -> Option<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    s.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 53))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_with_and_without_port() {
        assert_eq!(
            parse_server("127.0.0.1:5353"),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_server("192.0.2.1"),
            Some("192.0.2.1:53".parse().unwrap())
        );
        assert_eq!(parse_server("::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(
            parse_server("[::1]:5300"),
            Some("[::1]:5300".parse().unwrap())
        );
        assert_eq!(parse_server("resolver.example"), None);
    }
}
