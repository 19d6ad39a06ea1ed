//! A private Postfix for differential tests: the scenario's main.cf and smtpd listeners (on
//! loopback ports, `smtpd_authorized_xclient_hosts = 127.0.0.0/8`) run by `master -c DIR -d`
//! with its own queue directory, and an SMTP client that asks one RCPT question per
//! connection with XCLIENT ADDR= [LOGIN=].

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use relaydoctor::relay::Verdict;

pub const INTERNAL: &str = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

/// One configuration to run: main.cf lines (the harness adds the loopback/queue settings),
/// one smtpd listener per entry of `listeners` (its indented `-o` lines), and extra files
/// written into the configuration directory before start (name, content; main.cf refers to
/// them as `$config_directory/NAME`); names listed in `postmap` are compiled with
/// `postmap hash:NAME` (or `postmap TYPE:NAME` when given as `TYPE:NAME`) afterwards.
/// The harness's `mynetworks = 127.0.0.0/8 192.0.2.0/24` comes before the scenario's main.cf
/// lines, so a scenario may override it; with mynetworks_style and no mynetworks it is left out.
pub struct Scenario<'a> {
    pub name: &'a str,
    pub main: &'a str,
    pub listeners: &'a [&'a str],
    pub files: &'a [(&'a str, &'a str)],
    pub postmap: &'a [&'a str],
}

/// Checks that Postfix can run here; `Err(why)` means skip (a test must panic under CI).
pub fn available() -> Result<PathBuf, String> {
    let master = master_binary();
    match master {
        None => Err("Postfix (Debian package postfix) is not installed".into()),
        Some(_) if !is_root() => Err("the Postfix master must run as root".into()),
        Some(m) => Ok(m),
    }
}

/// `available()`, or print SKIP (panic under CI) and return None.
pub fn require() -> Option<PathBuf> {
    match available() {
        Ok(m) => Some(m),
        Err(why) => {
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("SKIP: {why}");
            None
        }
    }
}

/// A running private Postfix; stopped (and its directory removed) when dropped.
pub struct Running {
    pub conf: PathBuf,
    pub ports: Vec<u16>,
    _master: Master,
    _dir: tempfile::TempDir,
}

/// Writes the scenario's configuration and starts its master on free loopback ports.
/// A port can be taken between choosing and binding it (the choice comes from the
/// ephemeral range other tests' clients use too), and a loaded machine can be slow to start
/// the master, so a failed start is retried with new ports; the error says why it failed.
pub fn start(master: &Path, sc: &Scenario) -> Result<Running, String> {
    let mut why = String::new();
    for _ in 0..4 {
        match start_once(master, sc) {
            Ok(run) => return Ok(run),
            Err(e) => why = e,
        }
    }
    Err(why)
}

/// `n` distinct loopback ports that are free now (the OS picks them).
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let socks: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    socks
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()).map_err(|e| e.to_string()))
        .collect()
}

fn start_once(master: &Path, sc: &Scenario) -> Result<Running, String> {
    let t = tempfile::tempdir().map_err(|e| e.to_string())?;
    // The daemons run as the postfix user and must reach the queue directory.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
    }
    let conf = t.path().join("conf");
    let q = t.path().join("queue");
    let d = t.path().join("data");
    for dir in [&conf, &q, &d] {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let _ = Command::new("chown").arg("postfix").arg(&d).status();
    // The trusted test network comes first so that a scenario can override it (the last
    // entry wins); a scenario about mynetworks_style must not get a mynetworks at all.
    let sets = |name: &str| {
        sc.main
            .lines()
            .any(|l| l.split('=').next().is_some_and(|n| n.trim() == name))
    };
    let mynetworks = if sets("mynetworks_style") && !sets("mynetworks") {
        ""
    } else {
        "mynetworks = 127.0.0.0/8 192.0.2.0/24\n"
    };
    let main = format!(
        "{mynetworks}{}inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nsmtpd_authorized_xclient_hosts = 127.0.0.0/8\nsmtpd_sasl_type = cyrus\nqueue_directory = {}\ndata_directory = {}\nmaillog_file = /var/log/relaydoctor-smtpd-test.log\n",
        sc.main,
        q.display(),
        d.display()
    );
    std::fs::write(conf.join("main.cf"), main).map_err(|e| e.to_string())?;
    for (name, content) in sc.files {
        std::fs::write(conf.join(name), content).map_err(|e| e.to_string())?;
    }
    for name in sc.postmap {
        // `NAME` is compiled as hash:NAME, `TYPE:NAME` as that type.
        let (kind, name) = name.split_once(':').unwrap_or(("hash", name));
        let ok = Command::new("postmap")
            .arg("-c")
            .arg(&conf)
            .arg(format!("{kind}:{}", conf.join(name).display()))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("postmap {name} failed"));
        }
    }
    let mut master_cf = String::new();
    let ports = free_ports(sc.listeners.len())?;
    for (i, extra) in sc.listeners.iter().enumerate() {
        master_cf.push_str(&format!(
            "127.0.0.1:{} inet n - n - - smtpd\n{extra}",
            ports[i]
        ));
    }
    master_cf.push_str(INTERNAL);
    std::fs::write(conf.join("master.cf"), master_cf).map_err(|e| e.to_string())?;
    // Creates the queue directories with the right owners.
    let _ = Command::new("postfix")
        .arg("-c")
        .arg(&conf)
        .arg("check")
        .stderr(Stdio::null())
        .status();
    let child = Command::new(master)
        .arg("-c")
        .arg(&conf)
        .arg("-d")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(t.path().join("master.err")).map_err(|e| e.to_string())?,
        ))
        .spawn()
        .map_err(|e| format!("start master: {e}"))?;
    let mut guard = Master(child);
    if !ports.iter().all(|p| wait_listening(&mut guard.0, *p)) {
        let err = std::fs::read_to_string(t.path().join("master.err")).unwrap_or_default();
        return Err(format!(
            "{}: master did not start on {ports:?}: {}",
            sc.name,
            err.trim()
        ));
    }
    Ok(Running {
        conf,
        ports,
        _master: guard,
        _dir: t,
    })
}

fn master_binary() -> Option<PathBuf> {
    let out = Command::new("postconf")
        .args(["-h", "daemon_directory"])
        .output()
        .ok()?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let p = Path::new(&dir).join("master");
    p.exists().then_some(p)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

struct Master(Child);
impl Drop for Master {
    fn drop(&mut self) {
        // Only the master this test started, by its own handle; its children exit with it.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

pub fn reply_class(line: &str) -> Verdict {
    match line.as_bytes().first() {
        Some(b'2') => Verdict::Accept,
        Some(b'4') => Verdict::Defer,
        Some(b'5') => Verdict::Reject,
        _ => Verdict::Unavailable,
    }
}

/// RCPT reply for one client on `port`; `None` when the connection closed.
pub fn ask(port: u16, addr: &str, login: Option<&str>, rcpt: &str) -> Option<String> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut w = s.try_clone().ok()?;
    let mut r = BufReader::new(s);
    let mut read = || -> Option<String> {
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).ok()? == 0 {
                return None;
            }
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return Some(l.trim().to_string());
            }
        }
    };
    read()?;
    let mut cmd = |c: &str| -> Option<String> {
        w.write_all(format!("{c}\r\n").as_bytes()).ok()?;
        read()
    };
    cmd("EHLO client.test")?;
    let x = match login {
        Some(l) => {
            format!("XCLIENT ADDR={addr} NAME=[UNAVAILABLE] REVERSE_NAME=[UNAVAILABLE] LOGIN={l}")
        }
        None => format!("XCLIENT ADDR={addr} NAME=[UNAVAILABLE] REVERSE_NAME=[UNAVAILABLE]"),
    };
    cmd(&x)?;
    cmd("EHLO client.test")?;
    let mail = cmd("MAIL FROM:<sender@sender.test>")?;
    // A refused MAIL FROM (530 before STARTTLS) is the answer: RCPT would only say 503.
    if !mail.starts_with('2') {
        return Some(mail);
    }
    cmd(&format!("RCPT TO:<{rcpt}>"))
}

/// Waits for the master to listen on `port`; false as soon as it has exited (a port
/// taken meanwhile is fatal to it) or after 30 s.
fn wait_listening(master: &mut Child, port: u16) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if !matches!(master.try_wait(), Ok(None)) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
