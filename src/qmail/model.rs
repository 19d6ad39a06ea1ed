//! What one qmail installation is made of, loaded: control files, tcpserver rule files
//! (source and compiled cdb), and the qmail-smtpd services with their environment.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::cdb::Cdb;
use super::parse::{self, LineError, Route, Span, TcpRule, VirtualDomain};
use super::runscript::{self, Service};
use super::Target;
use crate::context::Context;
use crate::finding::{Finding, Location, Mta};
use crate::source::SourceFile;

/// FNV-1a: a fast hasher for the million-domain sets (no DoS concern: the input is the
/// admin's own configuration).
#[derive(Default)]
pub struct Fnv(u64);
impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}
pub type FastSet<T> = HashSet<T, BuildHasherDefault<Fnv>>;

/// A compiled cdb as found on disk.
#[derive(Debug)]
pub enum CdbState {
    Missing,
    Unreadable(String),
    Ok(Box<Cdb>, Option<SystemTime>),
}

impl CdbState {
    pub fn load(root: Option<&Path>, real: &Path) -> CdbState {
        CdbState::load_with(root, real, |_| {})
    }

    /// `load`, showing `visit` every record key in file order as the file is checked.
    pub fn load_with(root: Option<&Path>, real: &Path, visit: impl FnMut(&[u8])) -> CdbState {
        match std::fs::metadata(real) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CdbState::Missing,
            Err(e) => CdbState::Unreadable(e.to_string()),
            Ok(m) if !m.is_file() => CdbState::Unreadable("not a regular file".into()),
            Ok(m) => match Cdb::read_in(root, real, visit) {
                Ok(c) => CdbState::Ok(Box::new(c), m.modified().ok()),
                Err(e) => CdbState::Unreadable(e),
            },
        }
    }
    pub fn cdb(&self) -> Option<&Cdb> {
        match self {
            CdbState::Ok(c, _) => Some(c),
            _ => None,
        }
    }
    pub fn mtime(&self) -> Option<SystemTime> {
        match self {
            CdbState::Ok(_, t) => *t,
            _ => None,
        }
    }
}

/// A domain list control file with its entries.
#[derive(Debug)]
pub struct DomainFile {
    pub src: Arc<SourceFile>,
    pub entries: Vec<Span>,
    pub errors: Vec<LineError>,
    /// The file holds a blank, tab or carriage return somewhere (checked once, so the
    /// million-entry checks can skip per-entry tests on clean files).
    pub blanks: bool,
}

/// Whether the text holds any of these bytes (slice::contains on u8 uses memchr).
pub fn has_any(text: &str, bytes: &[u8]) -> bool {
    // One pass, eight bytes at a time: a word holds byte b when (w ^ b*0x01..01) has a
    // zero byte, and `(x - 0x01..01) & !x & 0x80..80` is non-zero exactly when x has one.
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pats: Vec<u64> = bytes.iter().map(|&b| u64::from(b) * LO).collect();
    let mut words = text.as_bytes().chunks_exact(8);
    for c in &mut words {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        for p in &pats {
            let x = w ^ p;
            if x.wrapping_sub(LO) & !x & HI != 0 {
                return true;
            }
        }
    }
    words.remainder().iter().any(|b| bytes.contains(b))
}

impl DomainFile {
    pub fn entry<'a>(&'a self, s: &Span) -> &'a str {
        s.text(&self.src.text)
    }
}

#[derive(Debug)]
pub struct Control {
    pub dir: PathBuf,
    pub display: PathBuf,
    pub rcpthosts: Option<DomainFile>,
    /// Lowercased rcpthosts entries (qmail's constmap compares case-insensitively).
    pub rcpthosts_set: FastSet<String>,
    pub morercpthosts: Option<DomainFile>,
    pub morercpthosts_cdb: CdbState,
    /// How many leading morercpthosts entries equal the leading cdb records, in order
    /// (qmail-newmrh lowercases each line and writes the records in file order): those
    /// entries are known to be in the cdb without a lookup.
    pub morercpthosts_cdb_prefix: usize,
    /// The cdb holds exactly the morercpthosts entries, in order (it is up to date).
    pub morercpthosts_cdb_same: bool,
    pub morercpthosts_cdb_real: PathBuf,
    pub locals: Option<DomainFile>,
    pub virtualdomains: Option<VirtualDomains>,
    /// virtualdomains holds a blank, tab or carriage return somewhere.
    pub virtualdomains_blanks: bool,
    pub smtproutes: Option<(Arc<SourceFile>, Vec<Route>, Vec<LineError>)>,
    pub me: Option<(Arc<SourceFile>, Option<Span>)>,
    /// control/servercert.pem: the qmail-tls patch offers STARTTLS when it exists.
    pub has_servercert: bool,
    /// morercpthosts, its cdb and virtualdomains were checked in pieces (stream.rs) and
    /// found consistent and clean: the first and last are not held (None above).
    pub streamed: bool,
}

/// virtualdomains: the file, its entries, the lines qmail-send ignores.
pub type VirtualDomains = (Arc<SourceFile>, Vec<VirtualDomain>, Vec<LineError>);

/// A tcpserver rules file: its source (if any) and the compiled cdb tcpserver reads.
#[derive(Debug)]
pub struct RulesFile {
    pub cdb_real: PathBuf,
    pub cdb_display: PathBuf,
    pub source: Option<Arc<SourceFile>>,
    pub rules: Vec<TcpRule>,
    pub errors: Vec<LineError>,
    /// What tcprules would write from the source: (key, data, source line).
    pub compiled: Vec<parse::Compiled>,
    pub cdb: CdbState,
}

impl RulesFile {
    pub fn source_rule_for_key(&self, key: &str) -> Option<&TcpRule> {
        let line = self.compiled.iter().find(|c| c.0 == key)?.2;
        self.rules.iter().find(|r| r.line == line)
    }
}

pub struct Model {
    pub control: Option<Control>,
    pub rules: Vec<RulesFile>,
    pub services: Vec<Service>,
    /// Services are known only from a single named file: referenced files are not read.
    pub standalone: bool,
}

fn load_domains(ctx: &Context, real: &Path, findings: &mut Vec<Finding>) -> Option<DomainFile> {
    let src = ctx.load_checked(real, Mta::Qmail, findings)?;
    let blanks = has_any(&src.text, b" \t\r");
    let (entries, errors) = parse::domain_list_src(&src, blanks);
    Some(DomainFile {
        src,
        entries,
        errors,
        blanks,
    })
}

pub fn load_control(ctx: &Context, dir: &Path, findings: &mut Vec<Finding>) -> Control {
    load_control_with(ctx, dir, findings, false)
}

/// `load_control`; with `stream`, the big files are first checked in pieces (see
/// stream.rs) and, when they are consistent, not held: `morercpthosts` and
/// `virtualdomains` are then None and `streamed` is true. Only `lint` asks for that.
pub fn load_control_with(
    ctx: &Context,
    dir: &Path,
    findings: &mut Vec<Finding>,
    stream: bool,
) -> Control {
    // smtproutes compares its domains with every virtualdomains key (QM011/QM012).
    let no_routes = matches!(std::fs::metadata(dir.join("smtproutes")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    if stream && no_routes {
        if let Some(s) = super::stream::check(dir) {
            let mut f = Vec::new();
            let c = finish_control(ctx, dir, &mut f, None, (s.cdb, 0, true), None, false, true);
            let refs: Vec<&str> = s.pending.iter().map(String::as_str).collect();
            if super::rcpthosts::rcpt_accepts_batch(&c, &refs)
                .iter()
                .all(|&ok| ok)
            {
                findings.extend(f);
                ctx.note_read(&dir.join("morercpthosts"));
                if s.virtualdomains {
                    ctx.note_read(&dir.join("virtualdomains"));
                }
                return c;
            }
            // A domain is refused: the full check below says where (QM003).
        }
    }
    // The three files that can hold a million lines are read and parsed side by side.
    let cdb_real = dir.join("morercpthosts.cdb");
    let (mut f1, mut f2) = (Vec::new(), Vec::new());
    let (morercpthosts, (morercpthosts_cdb, prefix, same), virtualdomains) =
        std::thread::scope(|sc| {
            // morercpthosts, then its cdb streamed past it record by record (no lookups, the cdb
            // is not kept in memory), while virtualdomains (the bigger file) loads here.
            let more = sc.spawn(|| {
                let more = load_domains(ctx, &dir.join("morercpthosts"), &mut f1);
                let (text, entries) = more
                    .as_ref()
                    .map(|m| (m.src.text.as_str(), &m.entries[..]))
                    .unwrap_or(("", &[]));
                let (mut prefix, mut diverged) = (0usize, false);
                let cdb = CdbState::load_with(
                    ctx.root.dir.as_deref(),
                    &ctx.root.contain(&cdb_real),
                    |k| {
                        if diverged {
                            return;
                        }
                        match entries.get(prefix) {
                            Some(e)
                                if k.eq_ignore_ascii_case(e.text(text).as_bytes())
                                    && !k.iter().any(u8::is_ascii_uppercase) =>
                            {
                                prefix += 1
                            }
                            _ => diverged = true,
                        }
                    },
                );
                let same = !diverged && prefix == entries.len();
                if cdb.cdb().is_none() {
                    (prefix, diverged) = (0, true);
                }
                (more, (cdb, prefix, same && !diverged))
            });
            let vd = ctx
                .load_checked(&dir.join("virtualdomains"), Mta::Qmail, &mut f2)
                .map(|s| {
                    let blanks = has_any(&s.text, b" \t\r");
                    let (v, e) = parse::virtualdomains_src(&s, blanks);
                    (s, v, e, blanks)
                });
            let (more, cdb) = more.join().unwrap_or_else(|_| {
                (
                    None,
                    (CdbState::Unreadable("reader failed".into()), 0, false),
                )
            });
            (more, cdb, vd)
        });
    let virtualdomains_blanks = virtualdomains.as_ref().map(|v| v.3).unwrap_or(false);
    let virtualdomains = virtualdomains.map(|(s, v, e, _)| (s, v, e));
    findings.extend(f1);
    findings.extend(f2);
    finish_control(
        ctx,
        dir,
        findings,
        morercpthosts,
        (morercpthosts_cdb, prefix, same),
        virtualdomains,
        virtualdomains_blanks,
        false,
    )
}

/// The small control files, loaded whole, and the Control made of it all.
#[allow(clippy::too_many_arguments)]
fn finish_control(
    ctx: &Context,
    dir: &Path,
    findings: &mut Vec<Finding>,
    morercpthosts: Option<DomainFile>,
    (morercpthosts_cdb, prefix, same): (CdbState, usize, bool),
    virtualdomains: Option<VirtualDomains>,
    virtualdomains_blanks: bool,
    streamed: bool,
) -> Control {
    let cdb_real = dir.join("morercpthosts.cdb");
    let rcpthosts = load_domains(ctx, &dir.join("rcpthosts"), findings);
    let mut rcpthosts_set = FastSet::default();
    if let Some(r) = &rcpthosts {
        for e in &r.entries {
            rcpthosts_set.insert(r.entry(e).to_ascii_lowercase());
        }
    }
    let smtproutes = ctx
        .load_checked(&dir.join("smtproutes"), Mta::Qmail, findings)
        .map(|s| {
            let (v, e) = parse::smtproutes(&s.text);
            (s, v, e)
        });
    let me = ctx
        .load_checked(&dir.join("me"), Mta::Qmail, findings)
        .map(|s| {
            let v = parse::first_value(&s.text);
            (s, v)
        });
    Control {
        display: ctx.root.display(dir),
        rcpthosts,
        rcpthosts_set,
        morercpthosts,
        morercpthosts_cdb,
        morercpthosts_cdb_prefix: prefix,
        morercpthosts_cdb_same: same,
        morercpthosts_cdb_real: cdb_real,
        locals: load_domains(ctx, &dir.join("locals"), findings),
        virtualdomains,
        virtualdomains_blanks,
        smtproutes,
        me,
        has_servercert: dir.join("servercert.pem").exists(),
        streamed,
        dir: dir.to_path_buf(),
    }
}

/// Where a rules cdb lives for a path (source or cdb), and its source path.
pub fn rules_pair(path: &Path) -> (PathBuf, PathBuf) {
    let s = path.to_string_lossy();
    match s.strip_suffix(".cdb") {
        Some(src) => (path.to_path_buf(), PathBuf::from(src)),
        None => (PathBuf::from(format!("{s}.cdb")), path.to_path_buf()),
    }
}

pub fn load_rules(ctx: &Context, path: &Path, findings: &mut Vec<Finding>) -> RulesFile {
    let (cdb_real, src_real) = rules_pair(path);
    let source = ctx.load_checked(&src_real, Mta::Qmail, findings);
    let (rules, mut errors) = source
        .as_ref()
        .map(|s| parse::tcprules(&s.text))
        .unwrap_or_default();
    let (compiled, cerr) = parse::compile(&rules);
    errors.extend(cerr);
    errors.sort_by_key(|e| e.line);
    RulesFile {
        cdb_display: ctx.root.display(&cdb_real),
        cdb: CdbState::load(ctx.root.dir.as_deref(), &ctx.root.contain(&cdb_real)),
        cdb_real,
        source,
        rules,
        errors,
        compiled,
    }
}

/// Build the model of a target: control files, services, the rules files they use.
pub fn load(ctx: &Context, target: &Target, findings: &mut Vec<Finding>) -> Model {
    load_with(ctx, target, findings, false)
}

/// `load`; with `stream`, see `load_control_with` (for `lint`, which needs no more than
/// the findings).
pub fn load_with(
    ctx: &Context,
    target: &Target,
    findings: &mut Vec<Finding>,
    stream: bool,
) -> Model {
    let control = target
        .control
        .as_ref()
        .map(|d| load_control_with(ctx, d, findings, stream));
    let mut services = Vec::new();
    for f in &target.services {
        let Some(src) = ctx.load_checked(f, Mta::Qmail, findings) else {
            continue;
        };
        if f.parent().map(|p| p.ends_with("xinetd.d")).unwrap_or(false)
            || src.text.contains("server_args")
        {
            services.extend(runscript::parse_xinetd(src));
        } else {
            let dir_name = service_dir_name(f);
            if let Some(s) = runscript::parse_run_script(src, &dir_name) {
                services.push(s);
            }
        }
    }
    for s in &mut services {
        s.build = s
            .smtpd_path
            .as_ref()
            .and_then(|p| smtpd_build(&ctx.root.resolve(Path::new(p))));
    }
    // Two services with the same name (e.g. two port-25 listeners): keep them apart.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for s in &mut services {
        let n = seen.entry(s.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            s.name = format!("{}#{}", s.name, n);
        }
    }
    let mut rule_paths: Vec<PathBuf> = target.rules.clone();
    if !target.standalone {
        for s in &services {
            if let Some(x) = &s.rules_cdb {
                rule_paths.push(ctx.root.resolve(Path::new(x)));
            }
        }
    }
    let mut seen_cdb = HashSet::new();
    let mut rules = Vec::new();
    for p in rule_paths {
        let (cdb, _) = rules_pair(&p);
        if seen_cdb.insert(cdb) {
            rules.push(load_rules(ctx, &p, findings));
        }
    }
    Model {
        control,
        rules,
        services,
        standalone: target.standalone,
    }
}

/// The AUTH-before-TLS switch compiled into a qmail-smtpd binary: the environment
/// variable names its patch reads are plain strings in the program (None: no such file).
fn smtpd_build(real: &Path) -> Option<runscript::AuthTlsSwitch> {
    use std::io::Read;
    let mut buf = Vec::new();
    // qmail-smtpd is a few hundred kB; the cap keeps a wrong path from reading a huge file.
    std::fs::File::open(real)
        .ok()?
        .take(16 * 1024 * 1024)
        .read_to_end(&mut buf)
        .ok()?;
    let has = |needle: &[u8]| buf.windows(needle.len()).any(|w| w == needle);
    Some(if has(b"FORCETLS") {
        runscript::AuthTlsSwitch::ForceTls
    } else if has(b"ALLOW_INSECURE_AUTH") {
        runscript::AuthTlsSwitch::AllowInsecureAuth
    } else {
        runscript::AuthTlsSwitch::None
    })
}

/// The name of a run script's service directory (`/service/qmail-smtpd/run` -> qmail-smtpd).
pub fn service_dir_name(f: &Path) -> String {
    let name = f.file_name().map(|n| n.to_string_lossy().to_string());
    match name.as_deref() {
        Some("run") => f
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "qmail-smtpd".into()),
        Some(n) => n.to_string(),
        None => "qmail-smtpd".into(),
    }
}

impl Model {
    /// The rules file a service reads (by its -x path).
    pub fn rules_for(&self, ctx: &Context, s: &Service) -> Option<&RulesFile> {
        let x = s.rules_cdb.as_ref()?;
        let (cdb, _) = rules_pair(&ctx.root.resolve(Path::new(x)));
        self.rules.iter().find(|r| r.cdb_real == cdb)
    }

    /// Services that read this rules file.
    pub fn services_using<'a>(&'a self, ctx: &Context, r: &RulesFile) -> Vec<&'a Service> {
        self.services
            .iter()
            .filter(|s| {
                self.rules_for(ctx, s)
                    .map(|x| x.cdb_real == r.cdb_real)
                    .unwrap_or(false)
            })
            .collect()
    }
}

/// A location at line 1 of a file that may not exist (a missing control file, a cdb).
pub fn file_location(display: &Path) -> Location {
    Location {
        file: display.to_path_buf(),
        line: 1,
        column: 1,
        end_line: 1,
        end_column: 1,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn has_any_finds_bytes_anywhere() {
        for (t, want) in [
            ("abcdefgh", false),
            ("abcdefgh ", true),
            ("ab\rcdefghijklmnop", true),
            ("abcdefghijklmno\t", true),
            ("", false),
            ("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}", false),
        ] {
            assert_eq!(super::has_any(t, b" \t\r"), want, "{t:?}");
        }
    }
}
