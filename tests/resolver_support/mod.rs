//! A private DNS world for the real MTAs under test. Postfix and Exim ask the system resolver
//! (glibc reads /etc/resolv.conf; neither has an option naming a server), so a test cannot
//! point them at its own DNS server by configuration. Instead the MTA runs in a private mount
//! namespace (`unshare -m`, whose mounts util-linux makes private) in which a bind mount
//! replaces /etc/resolv.conf with one naming only a dnsmasq this test started on a loopback
//! address, port 53 (resolv.conf has no port syntax). That dnsmasq has no upstream server
//! (`--no-resolv`): every name it is not given is NXDOMAIN (`--address=/#/`), so no query
//! ever reaches the host's resolver or leaves loopback.
//!
//! Needs root (port 53, mount) and dnsmasq (Debian dnsmasq-base, which scripts/test
//! installs). `Resolver::start` says why when it cannot run; the caller decides whether
//! that is a skip.

#![allow(dead_code)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running private resolver; dnsmasq is stopped when dropped.
pub struct Resolver {
    _child: Stopped,
    /// The loopback address dnsmasq answers on (port 53).
    pub addr: String,
    dir: tempfile::TempDir,
}

/// A child process (a test's dnsmasq) killed and reaped when dropped.
pub struct Stopped(pub Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's dnsmasq-base binary, wherever this system keeps it.
pub fn dnsmasq_bin() -> Option<PathBuf> {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Why a private resolver cannot run here, or None when it can.
pub fn unavailable() -> Option<String> {
    if dnsmasq_bin().is_none() {
        return Some("dnsmasq is not installed (Debian package dnsmasq-base)".into());
    }
    if !is_root() {
        return Some("a private resolver needs root (port 53, mount namespace)".into());
    }
    if !Path::new("/etc/resolv.conf").exists() {
        return Some("/etc/resolv.conf does not exist, so it cannot be replaced".into());
    }
    let ok = Command::new("unshare")
        .args([
            "-m",
            "mount",
            "--bind",
            "/etc/resolv.conf",
            "/etc/resolv.conf",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| "`unshare -m` with a bind mount is not permitted here".to_string())
}

impl Resolver {
    /// Starts dnsmasq with the zone data in `flags` (dnsmasq options such as
    /// `--address=/name/127.0.0.2` or `--host-record=name,addr`) on a loopback address that
    /// is free now; names it is not given are NXDOMAIN.
    pub fn start(flags: &[&str]) -> Result<Resolver, String> {
        if let Some(why) = unavailable() {
            return Err(why);
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // Readable by the MTA's unprivileged processes (smtpd runs as postfix).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
        }
        let bin = dnsmasq_bin().unwrap();
        let mut why = String::new();
        // An address in 127.53.0.0/16 that no other test uses at the moment: port 53 on it
        // must be free, and parallel tests each pick their own.
        let seed = std::process::id() as usize;
        for i in 0..20 {
            let n = (seed.wrapping_mul(7919) + i * 104_729) % 65_000 + 2;
            let addr = format!("127.53.{}.{}", n / 254, n % 254 + 1);
            if UdpSocket::bind((addr.as_str(), 53)).is_err() {
                continue;
            }
            let mut child = Command::new(&bin)
                .args([
                    "--no-daemon",
                    "--port=53",
                    &format!("--listen-address={addr}"),
                    "--bind-interfaces",
                    "--no-resolv",
                    "--no-hosts",
                    "--address=/#/",
                ])
                .args(flags)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("start dnsmasq: {e}"))?;
            if ready(&mut child, &addr) {
                let conf = format!("nameserver {addr}\noptions timeout:1 attempts:1\n");
                std::fs::write(dir.path().join("resolv.conf"), conf).map_err(|e| e.to_string())?;
                return Ok(Resolver {
                    _child: Stopped(child),
                    addr,
                    dir,
                });
            }
            let _ = child.kill();
            let out = child.wait_with_output().map_err(|e| e.to_string())?;
            why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        Err(format!("dnsmasq did not start: {why}"))
    }

    /// The resolv.conf that names this resolver.
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.path().join("resolv.conf")
    }

    /// `program` run in a private mount namespace that sees this resolver's resolv.conf as
    /// /etc/resolv.conf. The shell execs `program`, so the child's pid is the program's.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("unshare");
        c.args([
            "-m",
            "sh",
            "-c",
            r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#,
        ])
        .arg(self.resolv_conf())
        .arg(program);
        c
    }
}

/// Whether dnsmasq listens on `addr`:53 (it binds UDP and TCP together), false as soon as
/// it has exited.
fn ready(child: &mut Child, addr: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        if std::net::TcpStream::connect((addr, 53)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
