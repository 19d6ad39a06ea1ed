//! The effective configuration of one Postfix instance, computed the way Postfix computes it:
//! built-in defaults (per version and compatibility level), main.cf (last entry wins),
//! host facts (myhostname, mydomain), and for each master.cf service its `-o` overrides.
//!
//! The relay policy engine asks `Model::scope(Some(service))` for any parameter of one smtpd
//! listener and gets the expanded value with where it was set (`Origin`: file, line, spans).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::expand::{ExpandError, Expander, Lookup};
use super::params::{self, Version};
use super::parse::{self, MainCf, MasterCf, Span};
use crate::context::Context;
use crate::finding::{Finding, Mta};
use crate::source::SourceFile;

/// Where an effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginKind {
    MainCf,
    /// A master.cf `-o` override of the service in scope.
    MasterOverride,
    /// Computed from the host (myhostname, mydomain, config_directory).
    Host,
    /// Postfix's built-in default for the version in use.
    Default,
}

#[derive(Debug, Clone)]
pub struct Origin {
    pub kind: OriginKind,
    /// Displayed path of the file that set it (main.cf or master.cf).
    pub file: Option<PathBuf>,
    pub line: usize,
    pub name_span: Option<Span>,
    pub value_span: Option<Span>,
}

impl Origin {
    fn builtin(kind: OriginKind) -> Origin {
        Origin {
            kind,
            file: None,
            line: 0,
            name_span: None,
            value_span: None,
        }
    }

    /// "main.cf:12", "master.cf:40 (-o)", "built-in default", ...
    pub fn describe(&self) -> String {
        match (&self.file, self.kind) {
            (Some(f), OriginKind::MasterOverride) => {
                format!("{}:{} (-o override)", f.display(), self.line)
            }
            (Some(f), _) => format!("{}:{}", f.display(), self.line),
            (None, OriginKind::Host) => "computed from the host name".into(),
            _ => "Postfix built-in default".into(),
        }
    }
}

/// One parameter's effective value in a scope.
#[derive(Debug, Clone)]
pub struct Effective {
    pub name: String,
    pub raw: String,
    pub value: Result<String, ExpandError>,
    pub origin: Origin,
}

/// The host's name as Postfix would see it.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// The system host name (may lack a domain).
    pub hostname: String,
    /// Debian's /etc/mailname, when present.
    pub mailname: Option<String>,
    /// Where the host name came from, for messages.
    pub source: String,
    /// Addresses (with their masks) of the non-loopback interfaces, from the snapshot's
    /// network configuration; None when unknown (a live system, DHCP, no such files).
    pub interfaces: Option<Vec<ipnet::IpNet>>,
}

impl HostFacts {
    pub fn detect(ctx: &Context) -> HostFacts {
        let read = |p: &str| -> Option<String> {
            let real = ctx.root.resolve(Path::new(p));
            ctx.root
                .read_to_string(&real)
                .ok()
                .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
                .filter(|s| !s.is_empty())
        };
        let mailname = read("/etc/mailname");
        if ctx.root.is_snapshot() {
            let interfaces = snapshot_interfaces(ctx);
            match read("/etc/hostname") {
                Some(h) => HostFacts {
                    hostname: h,
                    mailname,
                    source: "etc/hostname".into(),
                    interfaces,
                },
                None => HostFacts {
                    hostname: "localhost".into(),
                    mailname,
                    source: "no etc/hostname in the snapshot; assumed localhost".into(),
                    interfaces,
                },
            }
        } else {
            let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .or_else(|| read("/etc/hostname"))
                .unwrap_or_else(|| "localhost".into());
            HostFacts {
                hostname: h,
                mailname,
                source: "the system host name".into(),
                interfaces: None,
            }
        }
    }
}

#[derive(Clone)]
pub struct LoadedFile<T> {
    pub source: Arc<SourceFile>,
    pub parsed: T,
}

/// A hypothetical change to an instance, for the pre-upgrade check (src/postfix/upgrade.rs):
/// the same files read at another compatibility_level, with some defaults pinned (as if
/// main.cf or a listener's `-o` set them) and some restriction entries rewritten.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// compatibility_level as if main.cf set it to this value.
    pub compat: Option<String>,
    /// (listener or None for main.cf, name, raw value): replaces the built-in default only,
    /// exactly like adding the setting where it is not set yet.
    pub pins: Vec<(Option<usize>, String, String)>,
    /// Restriction-list items replaced wherever they occur: (items, replacement items).
    pub rewrites: Vec<(Vec<String>, Vec<String>)>,
}

/// One Postfix instance (a directory with main.cf and usually master.cf).
pub struct Model {
    /// Real path of the configuration directory.
    pub dir: PathBuf,
    pub main: Option<LoadedFile<MainCf>>,
    pub master: Option<LoadedFile<MasterCf>>,
    /// Index into main.entries of the effective (last) entry of each name.
    last: HashMap<String, usize>,
    pub host: HostFacts,
    version_opt: Option<String>,
    live: bool,
    root: crate::context::Root,
    /// The Postfix version in use and where it came from (see `version`).
    version: OnceCell<(Version, String)>,
    live_mynetworks: OnceCell<Option<String>>,
    /// Whether mynetworks is being derived right now, and whether its derivation read
    /// `$mynetworks` back (see `mynetworks_loop`).
    deriving_mynetworks: Cell<(bool, bool)>,
    config_directory: String,
    /// Lookup tables named in the smtpd restriction lists, restriction classes and
    /// mynetworks, opened once per run (see `preload_tables`), by their spec.
    tables: HashMap<String, super::maps::Opened>,
    /// Files named in mynetworks (`/etc/postfix/network_table`), by the path as written.
    list_files: HashMap<String, Option<Arc<SourceFile>>>,
    /// Findings from reading those files (unreadable, binary, ...), handed out by `load`.
    table_findings: Vec<Finding>,
    overlay: Option<Box<Overlay>>,
}

impl Model {
    /// Load and parse main.cf and master.cf of `dir` (real path). Unreadable files become
    /// findings (through `Context::load_checked`).
    pub fn load(ctx: &Context, dir: &Path, findings: &mut Vec<Finding>) -> Model {
        Self::load_files(ctx, dir, &super::Files::default(), findings)
    }

    /// `load`, reading the main.cf and master.cf of `files` (copies such as
    /// `main.cf.dpkg-dist` named on the command line).
    pub fn load_files(
        ctx: &Context,
        dir: &Path,
        files: &super::Files,
        findings: &mut Vec<Finding>,
    ) -> Model {
        let main = ctx
            .load_checked(&dir.join(&files.main), Mta::Postfix, findings)
            .map(|s| LoadedFile {
                parsed: parse::parse_main(&s.text),
                source: s,
            });
        let master = ctx
            .load_checked(&dir.join(&files.master), Mta::Postfix, findings)
            .map(|s| LoadedFile {
                parsed: parse::parse_master(&s.text),
                source: s,
            });
        let mut m = Self::from_parts(ctx, dir, main, master);
        findings.append(&mut m.table_findings);
        m
    }

    pub fn from_parts(
        ctx: &Context,
        dir: &Path,
        main: Option<LoadedFile<MainCf>>,
        master: Option<LoadedFile<MasterCf>>,
    ) -> Model {
        let mut last = HashMap::new();
        if let Some(m) = &main {
            for (i, e) in m.parsed.entries.iter().enumerate() {
                last.insert(e.name.clone(), i);
            }
        }
        let config_directory = if ctx.root.is_snapshot() {
            Path::new("/")
                .join(ctx.root.display(dir))
                .display()
                .to_string()
        } else {
            dir.display().to_string()
        };
        let mut m = Model {
            dir: dir.to_path_buf(),
            main,
            master,
            last,
            host: HostFacts::detect(ctx),
            version_opt: ctx.options.postfix_version.clone(),
            live: !ctx.root.is_snapshot(),
            root: ctx.root.clone(),
            version: OnceCell::new(),
            live_mynetworks: OnceCell::new(),
            deriving_mynetworks: Cell::default(),
            config_directory,
            tables: HashMap::new(),
            list_files: HashMap::new(),
            table_findings: Vec::new(),
            overlay: None,
        };
        m.preload_tables(ctx);
        m
    }

    /// Open every lookup table the relay evaluation may consult (access maps in the smtpd
    /// restriction lists and restriction classes of every listener, tables and files in an
    /// explicitly set mynetworks), once: lint evaluates many (listener, client, recipient)
    /// combinations and must not read a map per evaluation.
    fn preload_tables(&mut self, ctx: &Context) {
        const LISTS: &[&str] = super::syntax::RCPT_LISTS;
        let mut specs: Vec<String> = Vec::new();
        let mut files: Vec<String> = Vec::new();
        let mut scopes: Vec<Option<usize>> = vec![None];
        scopes.extend(self.smtpd_listeners().into_iter().map(Some));
        for si in scopes {
            let scope = self.scope(si);
            let declared = scope.value("smtpd_restriction_classes");
            let classes: std::collections::HashSet<&str> =
                super::syntax::list_slices(&declared).into_iter().collect();
            // Only what an evaluation can reach: the lists and the classes they name (large
            // hosting setups declare thousands of classes that no list uses).
            let mut todo: Vec<String> = LISTS.iter().map(|s| s.to_string()).collect();
            let mut seen: std::collections::HashSet<String> = todo.iter().cloned().collect();
            while let Some(n) = todo.pop() {
                for item in super::syntax::list_slices(&scope.value(&n)) {
                    if super::maps::split_spec(item).is_some() {
                        specs.push(item.to_string());
                    } else if classes.contains(item) && seen.insert(item.to_string()) {
                        todo.push(item.to_string());
                    }
                }
            }
            let mut names: Vec<String> = [
                "mydestination",
                "relay_domains",
                "virtual_alias_domains",
                "virtual_mailbox_domains",
                // Recipient validation and sender ownership (policy/unlisted.rs).
                "virtual_alias_maps",
                "virtual_mailbox_maps",
                "relay_recipient_maps",
                "local_recipient_maps",
                "canonical_maps",
                "recipient_canonical_maps",
                "sender_canonical_maps",
                "smtpd_sender_login_maps",
            ]
            .map(String::from)
            .to_vec();
            // The default mynetworks is computed (on a live system by running postconf):
            // only an explicit value can name tables or files.
            if self.is_set(si, "mynetworks") {
                names.push("mynetworks".into());
            }
            for n in names {
                for item in super::syntax::list_items(&scope.value(&n)) {
                    let item = item.trim_start_matches('!');
                    if super::maps::split_spec(item).is_some() {
                        specs.push(item.to_string());
                    } else if item.starts_with('/') {
                        // `/file/name` (match_list(3)): its items, read like the value's.
                        files.push(item.to_string());
                    }
                }
            }
        }
        let mut findings = Vec::new();
        // A file named in mynetworks or a domain list may itself name tables (match_list(3)
        // reads its items).
        for f in files {
            if self.list_files.contains_key(&f) {
                continue;
            }
            let src = ctx.load_checked(
                &ctx.root.resolve(Path::new(&f)),
                Mta::Postfix,
                &mut findings,
            );
            if let Some(s) = &src {
                for l in s.text.lines().filter(|l| !l.trim_start().starts_with('#')) {
                    for item in super::syntax::list_items(l) {
                        let item = item.trim_start_matches('!');
                        if super::maps::split_spec(item).is_some() {
                            specs.push(item.to_string());
                        }
                    }
                }
            }
            self.list_files.insert(f, src);
        }
        // An access-map entry may answer with restriction class names (access(5)): the
        // tables those classes use are needed too (followed in main.cf's scope).
        let mut seen_classes: std::collections::HashSet<String> = Default::default();
        let mut rounds = 0;
        while !specs.is_empty() && rounds < 10 {
            rounds += 1;
            let mut named: Vec<String> = Vec::new();
            for s in std::mem::take(&mut specs) {
                if self.tables.contains_key(&s) {
                    continue;
                }
                let t = super::maps::open(ctx, &s, &mut findings);
                if let super::maps::Opened::Table(t) = &t {
                    for e in t.entries() {
                        // Plain actions (OK, REJECT text, 554 text, digits) name no class.
                        let first = e.value.split([' ', '\t', ',']).next().unwrap_or("");
                        let action = first.bytes().all(|b| b.is_ascii_digit())
                            || first.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
                        if !action {
                            named.extend(super::syntax::list_items(&e.value));
                        }
                    }
                }
                self.tables.insert(s, t);
            }
            let scope = self.scope(None);
            let classes = super::syntax::list_items(&scope.value("smtpd_restriction_classes"));
            for c in named {
                if classes.contains(&c) && seen_classes.insert(c.clone()) {
                    for item in super::syntax::list_items(&scope.value(&c)) {
                        if super::maps::split_spec(&item).is_some() {
                            specs.push(item);
                        }
                    }
                }
            }
        }
        self.table_findings = findings;
    }

    /// Whether main.cf or the service's `-o` overrides set `name` (asked without computing a
    /// default: the default mynetworks of a live system costs a postconf run).
    pub fn is_set(&self, si: Option<usize>, name: &str) -> bool {
        self.main_entry(name).is_some()
            || si
                .and_then(|i| self.services().get(i))
                .is_some_and(|s| s.overrides.iter().any(|o| o.name == name))
    }

    /// The mynetworks Postfix would compute for a snapshot (src/global/mynetworks.c): every
    /// address Postfix listens on (inet_interfaces) as `host` (/32), `subnet` (the interface's
    /// network) or `class` (its class A/B/C network). None when the interfaces are unknown.
    fn derived_mynetworks(&self, si: Option<usize>) -> Option<String> {
        let scope = self.scope(si);
        let style = scope.value("mynetworks_style").to_ascii_lowercase();
        let listen =
            super::syntax::list_items(&scope.value("inet_interfaces").to_ascii_lowercase());
        let loopback_only = !listen.is_empty()
            && listen.iter().all(|i| {
                matches!(i.as_str(), "loopback-only" | "localhost" | "[::1]" | "::1")
                    || i.starts_with("127.")
            });
        let mut nets: Vec<ipnet::IpNet> = vec!["127.0.0.1/8".parse().ok()?];
        if !loopback_only {
            if !listen.iter().any(|i| i == "all") {
                return None; // specific addresses: their masks are not known here
            }
            nets.extend(self.host.interfaces.as_ref()?.iter().copied());
        }
        let protocols = scope.value("inet_protocols").to_ascii_lowercase();
        let v6 = protocols.contains("all") || protocols.contains("ipv6");
        let mut out: Vec<String> = Vec::new();
        for n in nets {
            if n.addr().is_ipv6() && !v6 {
                continue;
            }
            let shown = match (style.as_str(), n) {
                ("host", n) => ipnet::IpNet::from(n.addr()).to_string(),
                ("class", ipnet::IpNet::V4(v)) => {
                    let first = v.addr().octets()[0];
                    let len = match first {
                        0..=127 => 8,
                        128..=191 => 16,
                        _ => 24,
                    };
                    ipnet::Ipv4Net::new(v.addr(), len).ok()?.trunc().to_string()
                }
                (_, n) => n.trunc().to_string(),
            };
            let shown = match n {
                ipnet::IpNet::V6(_) => format!(
                    "[{}]/{}",
                    shown.split('/').next()?,
                    shown.split('/').nth(1)?
                ),
                _ => shown,
            };
            if !out.contains(&shown) {
                out.push(shown);
            }
        }
        if v6 {
            out.push("[::1]/128".into());
        }
        Some(out.join(" "))
    }

    /// A lookup table opened by `preload_tables`.
    pub fn table(&self, spec: &str) -> Option<&super::maps::Opened> {
        self.tables.get(spec)
    }

    /// A file named in mynetworks, read by `preload_tables` (None: missing or unreadable).
    pub fn list_file(&self, path: &str) -> Option<&Arc<SourceFile>> {
        self.list_files.get(path).and_then(Option::as_ref)
    }

    /// Why the effective mynetworks of listener `si` is unknown, when it is: unset, so
    /// derived from mynetworks_style and the host's interfaces, which a --root snapshot
    /// does not record (only loopback, which every style includes, is certain).
    pub fn mynetworks_unknown(&self, si: Option<usize>) -> Option<String> {
        if self.live || self.is_set(si, "mynetworks") || self.derived_mynetworks(si).is_some() {
            return None;
        }
        let style = self.scope(si).value("mynetworks_style");
        Some(format!(
            "mynetworks (not set: derived from mynetworks_style = {style} and the server's network interfaces, which a --root snapshot does not record)"
        ))
    }

    /// The same files as Postfix `version` would read them with `overlay` applied. The copy
    /// never runs postconf: its mynetworks default is the loopback-only snapshot value.
    pub fn derive(&self, version: params::Version, overlay: Overlay) -> Model {
        // Rewritten list items may name tables that need no file (`static:OK` standing in
        // for "this map answers OK"): open those here, as preload_tables did for the rest.
        let mut tables = self.tables.clone();
        let fileless = Context::new(crate::context::Root::live(), Default::default());
        for (_, items) in &overlay.rewrites {
            for it in items {
                let file_free = matches!(
                    super::maps::split_spec(it),
                    Some(("static", _)) | Some(("inline", _))
                );
                if file_free && !tables.contains_key(it) {
                    let opened = super::maps::open(&fileless, it, &mut Vec::new());
                    tables.insert(it.clone(), opened);
                }
            }
        }
        Model {
            dir: self.dir.clone(),
            main: self.main.clone(),
            master: self.master.clone(),
            last: self.last.clone(),
            host: self.host.clone(),
            version_opt: Some(params::show_version(version)),
            live: false,
            root: self.root.clone(),
            version: OnceCell::from((version, "the version compared against".to_string())),
            live_mynetworks: OnceCell::new(),
            deriving_mynetworks: Cell::default(),
            config_directory: self.config_directory.clone(),
            tables,
            list_files: self.list_files.clone(),
            table_findings: Vec::new(),
            overlay: Some(Box::new(overlay)),
        }
    }

    /// The raw value and origin of `name` in the scope of `service` (None = main.cf only),
    /// with the overlay of a derived model applied.
    pub fn raw(&self, service: Option<usize>, name: &str) -> Option<(String, Origin)> {
        let Some(ov) = self.overlay.as_deref() else {
            return self.raw_base(service, name);
        };
        if name == "compatibility_level" {
            if let Some(c) = &ov.compat {
                let origin = self
                    .raw_base(service, name)
                    .map(|(_, o)| o)
                    .unwrap_or_else(|| Origin::builtin(OriginKind::Default));
                return Some((c.clone(), origin));
            }
        }
        let mut got = self.raw_base(service, name);
        let is_default = got
            .as_ref()
            .is_none_or(|(_, o)| matches!(o.kind, OriginKind::Default));
        if is_default {
            let pin = ov
                .pins
                .iter()
                .find(|(s, n, _)| n == name && s.is_some() && *s == service)
                .or_else(|| ov.pins.iter().find(|(s, n, _)| n == name && s.is_none()));
            if let Some((_, _, v)) = pin {
                got = Some((v.clone(), Origin::builtin(OriginKind::Default)));
            }
        }
        if let Some((v, _)) = got.as_mut() {
            for (from, to) in &ov.rewrites {
                if let Some(first) = from.first() {
                    if v.contains(first.as_str()) {
                        *v = rewrite_items(v, from, to);
                    }
                }
            }
        }
        got
    }

    /// The Postfix version whose defaults apply: --postfix-version, else the installed
    /// Postfix on a live system (`postconf -h mail_version`), else the newest known.
    /// Resolved only when a version-dependent answer is needed (running postconf costs as
    /// much as a whole lint).
    pub fn version(&self) -> Version {
        self.version_and_source().0
    }

    /// Where `version` came from: `--postfix-version`, the installed package (for a snapshot,
    /// its own package database), the live `postconf`, or an assumption.
    pub fn version_source(&self) -> &str {
        &self.version_and_source().1
    }

    /// "Postfix 3.7.11 (package postfix 3.7.11-0+deb12u1 in var/lib/dpkg/status)": every
    /// version-dependent message names the version and its source.
    pub fn version_described(&self) -> String {
        format!(
            "Postfix {} ({})",
            params::show_version(self.version()),
            self.version_source()
        )
    }

    fn version_and_source(&self) -> &(Version, String) {
        self.version.get_or_init(|| {
            if let Some(v) = self.version_opt.as_deref().and_then(params::parse_version) {
                return (v, "--postfix-version".into());
            }
            if let Some(i) = crate::packages::installed(&self.root, &["postfix"]) {
                if let Some(v) = params::parse_version(i.upstream()) {
                    return (
                        v,
                        format!("package {} {} in {}", i.package, i.version, i.source),
                    );
                }
            }
            if self.live {
                if let Some(v) = installed_version() {
                    return (v, "postconf mail_version".into());
                }
            }
            let newest = params::get().newest;
            let why = if self.live {
                "no installed Postfix found"
            } else {
                "the snapshot records no Postfix package"
            };
            // The package databases read are listed in src/packages.rs.
            (newest, format!("assumed: {why}; pass --postfix-version"))
        })
    }

    /// The effective main.cf entry of `name`, if main.cf sets it.
    pub fn main_entry(&self, name: &str) -> Option<&parse::MainEntry> {
        let i = *self.last.get(name)?;
        self.main.as_ref()?.parsed.entries.get(i)
    }

    pub fn services(&self) -> &[parse::Service] {
        self.master
            .as_ref()
            .map(|m| m.parsed.services.as_slice())
            .unwrap_or(&[])
    }

    /// Indices of services run by smtpd: `smtp inet ... smtpd`, `submission`, `smtps`,
    /// re-injection listeners such as `127.0.0.1:10025`, and `smtpd pass` behind postscreen.
    pub fn smtpd_listeners(&self) -> Vec<usize> {
        self.services()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.complete() && s.command() == "smtpd")
            .map(|(i, _)| i)
            .collect()
    }

    fn raw_base(&self, service: Option<usize>, name: &str) -> Option<(String, Origin)> {
        if let Some(si) = service {
            if let (Some(svc), Some(m)) = (self.services().get(si), &self.master) {
                if let Some(o) = svc.overrides.iter().rev().find(|o| o.name == name) {
                    let (line, _) = m.source.line_col(o.span.start);
                    return Some((
                        o.value.clone(),
                        Origin {
                            kind: OriginKind::MasterOverride,
                            file: Some(m.source.display.clone()),
                            line,
                            name_span: Some(o.name_span),
                            value_span: Some(o.value_span),
                        },
                    ));
                }
            }
        }
        if let (Some(e), Some(m)) = (self.main_entry(name), &self.main) {
            return Some((
                e.value.clone(),
                Origin {
                    kind: OriginKind::MainCf,
                    file: Some(m.source.display.clone()),
                    line: e.line,
                    name_span: Some(e.name_span),
                    value_span: Some(e.value_span),
                },
            ));
        }
        match name {
            "myhostname" => {
                let h = &self.host.hostname;
                // mail_params.c check_myhostname(): a name without a dot gets $mydomain (if
                // main.cf sets it) or "localdomain" appended. Debian's /etc/mailname often
                // holds the full name when /etc/hostname has only the first label.
                let v = if h.contains('.') {
                    h.clone()
                } else if let Some(mn) = self
                    .host
                    .mailname
                    .as_ref()
                    .filter(|m| m.starts_with(&format!("{h}.")))
                {
                    mn.clone()
                } else if self.main_entry("mydomain").is_some() {
                    format!("{h}.$mydomain")
                } else {
                    format!("{h}.localdomain")
                };
                return Some((v, Origin::builtin(OriginKind::Host)));
            }
            // Computed from the expanded myhostname in `Scope::get` (mail_params.c check_mydomain()).
            "mydomain" => return Some((String::new(), Origin::builtin(OriginKind::Host))),
            "config_directory" => {
                return Some((
                    self.config_directory.clone(),
                    Origin::builtin(OriginKind::Host),
                ))
            }
            // Derived from mynetworks_style and the host's interfaces. On a live system the
            // installed Postfix computes it (only when something needs it); for a snapshot it
            // is derived from the network configuration the snapshot holds, else only
            // loopback, which every style includes, is assumed (and `mynetworks_unknown`
            // says so).
            "mynetworks" => {
                // Its default reads mynetworks_style (whose own default reads
                // compatibility_level), inet_interfaces and inet_protocols: a `$mynetworks` in
                // any of them comes back here. Postfix expands it to nothing at that point
                // (`mynetworks_style = $mynetworks` ends in postconf 3.7.11's `fatal: bad
                // mynetworks_style value: ; specify exactly one value`; with
                // `compatibility_level = $mynetworks` postconf itself overflows its stack).
                let (deriving, _) = self.deriving_mynetworks.get();
                if self.live_mynetworks.get().is_none() {
                    if deriving {
                        self.deriving_mynetworks.set((true, true));
                        return Some((String::new(), Origin::builtin(OriginKind::Default)));
                    }
                    self.deriving_mynetworks.set((true, false));
                }
                let v = self
                    .live_mynetworks
                    .get_or_init(|| {
                        if self.live {
                            live_mynetworks(&self.dir)
                        } else {
                            self.derived_mynetworks(service)
                        }
                    })
                    .clone()
                    .unwrap_or_else(|| "127.0.0.0/8 [::1]/128".into());
                let (_, looped) = self.deriving_mynetworks.get();
                self.deriving_mynetworks.set((false, looped));
                return Some((v, Origin::builtin(OriginKind::Default)));
            }
            // Per-service names that Postfix sets when a daemon starts (mail_task.c,
            // master's service table): the master.cf service name and command.
            "service_name" | "process_name" => {
                if let Some(s) = service.and_then(|i| self.services().get(i)) {
                    let v = if name == "service_name" {
                        s.name()
                    } else {
                        s.command()
                    };
                    return Some((v.to_string(), Origin::builtin(OriginKind::Host)));
                }
            }
            "mail_version" => {
                return Some((
                    params::show_version(self.version()),
                    Origin::builtin(OriginKind::Default),
                ))
            }
            _ => {}
        }
        let p = params::get();
        // Only names whose default depends on the version need the version resolved.
        let versioned = p.versioned.iter().any(|v| v.name == name)
            || (!p.defaults.contains_key(name) && p.newer.iter().any(|n| n.name == name));
        let d = if versioned {
            p.default_for(name, self.version())
        } else {
            p.defaults.get(name).map(String::as_str)
        };
        d.map(|v| (v.to_string(), Origin::builtin(OriginKind::Default)))
    }

    /// An expansion scope: main.cf alone (`None`) or one master.cf service.
    pub fn scope(&self, service: Option<usize>) -> Scope<'_> {
        Scope {
            model: self,
            exp: RefCell::new(Expander::new(ScopeLookup {
                model: self,
                service,
                mydomain: OnceCell::new(),
            })),
        }
    }

    /// Whether computing mynetworks' default read `$mynetworks` back (through
    /// mynetworks_style, compatibility_level, inet_interfaces or inet_protocols).
    pub fn mynetworks_loop(&self) -> bool {
        let _ = self.raw(None, "mynetworks");
        self.deriving_mynetworks.get().1
    }

    /// Whether `name` is a parameter that Postfix does not expand when reading main.cf.
    pub fn is_raw(name: &str) -> bool {
        params::get().raw.contains(name)
    }
}

/// `value` with every occurrence of the item sequence `from` replaced by `to` (items as
/// smtpd splits a restriction list); unchanged text when `from` does not occur.
fn rewrite_items(value: &str, from: &[String], to: &[String]) -> String {
    let items = super::syntax::list_items(value);
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut changed = false;
    while i < items.len() {
        if items.get(i..i + from.len()).is_some_and(|w| w == from) {
            out.extend(to.iter().cloned());
            i += from.len();
            changed = true;
        } else if let Some(it) = items.get(i) {
            out.push(it.clone());
            i += 1;
        }
    }
    if changed {
        out.join(", ")
    } else {
        value.to_string()
    }
}

struct ScopeLookup<'m> {
    model: &'m Model,
    service: Option<usize>,
    mydomain: OnceCell<String>,
}

impl Lookup for ScopeLookup<'_> {
    fn raw(&self, name: &str) -> Option<String> {
        let (v, origin) = self.model.raw(self.service, name)?;
        if name == "mydomain" && origin.kind == OriginKind::Host {
            // mydomain defaults to myhostname without its first label; myhostname is
            // expanded in a fresh expander (it may itself reference other names).
            let d = self.mydomain.get_or_init(|| {
                let mut e = Expander::new(ScopeLookup {
                    model: self.model,
                    service: self.service,
                    mydomain: OnceCell::from("localdomain".to_string()),
                });
                let h = e
                    .param("myhostname")
                    .and_then(Result::ok)
                    .unwrap_or_default();
                match h.split_once('.') {
                    Some((_, d)) if !d.is_empty() => d.to_string(),
                    _ => "localdomain".into(),
                }
            });
            return Some(d.clone());
        }
        if Model::is_raw(name) {
            // Postfix leaves these unexpanded; `$` is escaped so expansion returns them as is.
            return Some(v.replace('$', "$$"));
        }
        Some(v)
    }
}

/// Effective values in one scope, expanded lazily with a shared memo.
pub struct Scope<'m> {
    model: &'m Model,
    exp: RefCell<Expander<ScopeLookup<'m>>>,
}

impl Scope<'_> {
    pub fn get(&self, name: &str) -> Option<Effective> {
        let service = self.exp.borrow().lookup.service;
        let (raw, origin) = self.model.raw(service, name)?;
        let mut value = self
            .exp
            .borrow_mut()
            .param(name)
            .unwrap_or_else(|| Ok(String::new()));
        // A derived model's rewrites name expanded items (`hash:/etc/postfix/pop` where
        // main.cf wrote `hash:$config_directory/pop`): apply them after expansion too.
        if let (Some(ov), Ok(v)) = (self.model.overlay.as_deref(), value.as_mut()) {
            for (from, to) in &ov.rewrites {
                if from.first().is_some_and(|f| v.contains(f.as_str())) {
                    *v = rewrite_items(v, from, to);
                }
            }
        }
        Some(Effective {
            name: name.to_string(),
            raw,
            value,
            origin,
        })
    }

    /// Expanded value, empty when undefined or broken.
    pub fn value(&self, name: &str) -> String {
        self.get(name)
            .and_then(|e| e.value.ok())
            .unwrap_or_default()
    }

    /// Expand text in this scope.
    pub fn expand(&self, text: &str) -> Result<String, ExpandError> {
        self.exp.borrow_mut().text(text)
    }

    /// Names referenced but undefined so far in this scope.
    pub fn undefined(&self) -> Vec<String> {
        self.exp.borrow().undefined.clone()
    }
}

/// Non-loopback interface addresses a snapshot records: Debian's /etc/network/interfaces
/// (and interfaces.d/*) `address A/LEN` or `address A` + `netmask M` in static stanzas, and
/// netplan's /etc/netplan/*.yaml `addresses:`. None when nothing is recorded or an interface
/// gets its address by DHCP/SLAAC (then the address is not in the snapshot).
fn snapshot_interfaces(ctx: &Context) -> Option<Vec<ipnet::IpNet>> {
    let read_dir = |p: &str| -> Vec<String> {
        let mut v: Vec<String> = ctx
            .root
            .read_dir(&ctx.root.resolve(Path::new(p)))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| ctx.root.read_to_string(&e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut texts: Vec<String> = Vec::new();
    if let Ok(t) = ctx
        .root
        .read_to_string(&ctx.root.resolve(Path::new("/etc/network/interfaces")))
    {
        texts.push(t);
    }
    texts.extend(read_dir("/etc/network/interfaces.d"));
    let netplan = read_dir("/etc/netplan");
    if texts.is_empty() && netplan.is_empty() {
        return None;
    }
    let mut nets = Vec::new();
    for t in &texts {
        let mut pending: Option<std::net::IpAddr> = None;
        for l in t.lines().map(str::trim) {
            let mut w = l.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some("iface"), _, Some(_)) => {
                    let method = l.split_whitespace().nth(3).unwrap_or("");
                    if matches!(method, "dhcp" | "auto" | "bootp" | "ppp") {
                        return None;
                    }
                }
                (Some("address"), Some(a), _) => {
                    if let Ok(n) = a.parse::<ipnet::IpNet>() {
                        nets.push(n);
                    } else if let Ok(ip) = a.parse::<std::net::IpAddr>() {
                        pending = Some(ip);
                    }
                }
                (Some("netmask"), Some(m), _) => {
                    let len = m
                        .parse::<std::net::Ipv4Addr>()
                        .ok()
                        .and_then(|m| ipnet::ipv4_mask_to_prefix(m).ok())
                        .or_else(|| m.parse::<u8>().ok());
                    if let (Some(ip), Some(len)) = (pending.take(), len) {
                        nets.extend(ipnet::IpNet::new(ip, len).ok());
                    }
                }
                _ => {}
            }
        }
    }
    for t in &netplan {
        for l in t.lines().map(str::trim) {
            if let Some(v) = l
                .strip_prefix("dhcp4:")
                .or_else(|| l.strip_prefix("dhcp6:"))
            {
                if matches!(v.trim(), "true" | "yes" | "on") {
                    return None;
                }
            }
            let items = l
                .strip_prefix("addresses:")
                .map(|r| {
                    r.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_string()
                })
                .or_else(|| l.strip_prefix("- ").map(str::to_string))
                .unwrap_or_default();
            for it in items.split(',') {
                let it = it.trim().trim_matches(|c| c == '"' || c == '\'');
                if let Ok(n) = it.parse::<ipnet::IpNet>() {
                    nets.push(n);
                }
            }
        }
    }
    nets.retain(|n| !n.addr().is_loopback());
    Some(nets)
}

/// `Version: 3.7.11-0+deb12u1` of the installed `postfix` package in /var/lib/dpkg/status.
/// The default mynetworks the installed Postfix computes for this configuration directory
/// (it depends on mynetworks_style and the interfaces of this host).
fn live_mynetworks(dir: &Path) -> Option<String> {
    if !dir.join("main.cf").is_file() {
        return None;
    }
    let out = std::process::Command::new("postconf")
        .arg("-c")
        .arg(dir)
        .args(["-h", "mynetworks"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    // Postfix builds the value as "addr/len " per network (src/global/mynetworks.c), so it
    // ends with a blank, which shows when $mynetworks is followed by a comma in another
    // list; postconf -h trims it when printing.
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Some(if v.is_empty() { v } else { format!("{v} ") })
}

/// The version of the installed Postfix, once per process: from dpkg's status file when
/// Postfix is a Debian package (reading it costs well under a millisecond), else
/// `postconf -h mail_version` (which costs as much as a whole lint of a small configuration).
fn installed_version() -> Option<Version> {
    static V: OnceLock<Option<Version>> = OnceLock::new();
    *V.get_or_init(|| {
        let out = std::process::Command::new("postconf")
            .args(["-h", "mail_version"])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        params::parse_version(String::from_utf8_lossy(&out.stdout).trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Options, Root};

    fn model(main: &str, master: &str) -> (Context, Model) {
        let ctx = Context::new(
            Root::snapshot("/nonexistent-root"),
            Options {
                postfix_version: Some("3.7".into()),
                ..Default::default()
            },
        );
        let mk = |t: &str, n: &str| Arc::new(SourceFile::from_text(n, t));
        let mainf = mk(main, "etc/postfix/main.cf");
        let masterf = mk(master, "etc/postfix/master.cf");
        let m = Model::from_parts(
            &ctx,
            Path::new("/nonexistent-root/etc/postfix"),
            Some(LoadedFile {
                parsed: parse::parse_main(&mainf.text),
                source: mainf,
            }),
            Some(LoadedFile {
                parsed: parse::parse_master(&masterf.text),
                source: masterf,
            }),
        );
        (ctx, m)
    }

    #[test]
    fn compat_level_defaults_and_overrides() {
        let (_c, m) = model(
            "compatibility_level = 2\nmydestination = example.com\nmua = permit_sasl_authenticated, reject\n",
            "smtp inet n - y - - smtpd\nsubmission inet n - y - - smtpd\n  -o smtpd_relay_restrictions=$mua\n  -o relay_domains=$mydestination\n",
        );
        let main = m.scope(None);
        assert_eq!(main.value("relay_domains"), "");
        assert_eq!(main.value("mynetworks_style"), "host");
        assert_eq!(
            main.value("smtpd_relay_restrictions"),
            "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"
        );
        assert_eq!(m.smtpd_listeners(), vec![0, 1]);
        let sub = m.scope(Some(1));
        let e = sub.get("smtpd_relay_restrictions").unwrap();
        assert_eq!(e.value.unwrap(), "permit_sasl_authenticated, reject");
        assert_eq!(e.origin.kind, OriginKind::MasterOverride);
        assert_eq!(e.origin.line, 3);
        assert_eq!(sub.value("relay_domains"), "example.com");
        let (_c, m) = model("", "");
        // compatibility_level unset (0): relay_domains = $mydestination, mynetworks_style = subnet.
        assert!(m.scope(None).value("relay_domains").ends_with("localhost"));
        assert_eq!(m.scope(None).value("mynetworks_style"), "subnet");
    }

    #[test]
    fn versioned_defaults_follow_postfix_version() {
        let ctx = Context::new(
            Root::snapshot("/nonexistent-root"),
            Options {
                postfix_version: Some("2.9".into()),
                ..Default::default()
            },
        );
        let m = Model::from_parts(&ctx, Path::new("/nonexistent-root/etc/postfix"), None, None);
        assert_eq!(
            m.scope(None).value("smtpd_recipient_restrictions"),
            "permit_mynetworks, reject_unauth_destination"
        );
        assert_eq!(m.scope(None).value("smtpd_relay_restrictions"), "");
    }

    #[test]
    fn derived_model_reads_the_same_files_at_another_level() {
        let (_c, m) = model(
            "mydestination = example.com\nsmtpd_recipient_restrictions = permit_mynetworks, check_relay_domains\nmynetworks_style = subnet\n",
            "smtp inet n - y - - smtpd\n",
        );
        assert_eq!(m.scope(None).value("relay_domains"), "example.com");
        let t = m.derive(
            (3, 9, 0),
            Overlay {
                compat: Some("3.6".into()),
                pins: vec![(None, "mynetworks_style".into(), "host".into())],
                rewrites: vec![(
                    vec!["check_relay_domains".into()],
                    vec![
                        "permit_auth_destination".into(),
                        "reject_unauth_destination".into(),
                    ],
                )],
            },
        );
        assert_eq!(t.version(), (3, 9, 0));
        let s = t.scope(Some(0));
        assert_eq!(s.value("compatibility_level"), "3.6");
        assert_eq!(s.value("relay_domains"), "");
        assert_eq!(s.value("smtpd_relay_before_recipient_restrictions"), "yes");
        // A pin replaces only a default: main.cf's own setting stays.
        assert_eq!(s.value("mynetworks_style"), "subnet");
        assert_eq!(
            s.value("smtpd_recipient_restrictions"),
            "permit_mynetworks, permit_auth_destination, reject_unauth_destination"
        );
        // The original is untouched.
        assert_eq!(m.scope(None).value("relay_domains"), "example.com");
    }

    #[test]
    fn host_facts_feed_mydomain() {
        let (_c, m) = model("myhostname = mx1.example.net\nx = $mydomain\n", "");
        assert_eq!(m.scope(None).value("x"), "example.net");
    }
}
