//! What every checker shares during one run: where the root filesystem is, the options that
//! change semantics (versions, macro definitions), and the files loaded so far.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::finding::{Finding, Mta};
use crate::source::{LoadError, SourceFile};

/// The root filesystem the configuration lives in: `/` for a live system, or a snapshot
/// directory given with `--root`, under which every absolute path in the configuration resolves.
#[derive(Debug, Clone, Default)]
pub struct Root {
    pub dir: Option<PathBuf>,
}

impl Root {
    pub fn live() -> Root {
        Root { dir: None }
    }

    /// `/` is the live system, anything else a snapshot (for callers that keep a root
    /// directory as a plain path).
    pub fn of(dir: &Path) -> Root {
        match dir == Path::new("/") {
            true => Root::live(),
            false => Root::snapshot(dir),
        }
    }

    pub fn snapshot(dir: impl Into<PathBuf>) -> Root {
        Root {
            dir: Some(dir.into()),
        }
    }

    /// Where an absolute path of the configured server is on this machine. In a snapshot
    /// this resolves like chroot(2) (see `contain`): the result never lies outside the root.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        match &self.dir {
            Some(root) if path.is_absolute() => self.contain(&root.join(strip_root(path))),
            _ => path.to_path_buf(),
        }
    }

    /// The physical path for I/O on `real` (a path under the root; one outside it is taken
    /// from the root): symlinks followed inside the root, `..` stopped at it. The live
    /// system's paths are returned unchanged.
    pub fn contain(&self, real: &Path) -> PathBuf {
        let Some(root) = &self.dir else {
            return real.to_path_buf();
        };
        let inside = real.strip_prefix(root).unwrap_or(real);
        match crate::contain::resolve(root, inside) {
            Ok(c) => c.path,
            // A symlink loop: the lexical path, `..` stopped at the root; opening it fails
            // with ELOOP as it should.
            Err(_) => root.join(clamp_dotdot(inside)),
        }
    }

    /// Why the server path `path` (absolute, as the server sees it) leaves the snapshot when
    /// followed as this machine would (see [`Root::escape`]); None on a live system.
    pub fn escape_of(&self, path: &Path) -> Option<crate::contain::Escape> {
        let root = self.dir.as_ref()?;
        self.escape(&root.join(strip_root(path)))
    }

    /// The server path `path` joined to the snapshot as written, symlinks not followed
    /// (for messages about a path that leaves it).
    pub fn lexical(&self, path: &Path) -> PathBuf {
        match &self.dir {
            Some(root) if path.is_absolute() => root.join(strip_root(path)),
            _ => path.to_path_buf(),
        }
    }

    /// Why `real` (a path under the snapshot) is missing from it although it names
    /// something: an absolute symlink or `..` above the root on its way, whose target
    /// (taken inside the root, as the server would) the snapshot lacks. None when the path
    /// resolves to something in the snapshot (an absolute link such as main.cf ->
    /// /etc/postfix/main.cf.real is then simply read there), and on a live system.
    pub fn escape(&self, real: &Path) -> Option<crate::contain::Escape> {
        let root = self.dir.as_ref()?;
        let inside = real.strip_prefix(root).unwrap_or(real);
        let c = crate::contain::resolve(root, inside).ok()?;
        // The resolved path has no symlinks left, so this stat follows nothing on the host.
        match std::fs::symlink_metadata(&c.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => c.escape,
            _ => None,
        }
    }

    /// Open a regular file for reading, contained in the snapshot, never a FIFO or device,
    /// refused over `limit` bytes.
    pub fn open(
        &self,
        real: &Path,
        limit: u64,
    ) -> Result<(std::fs::File, std::fs::Metadata), crate::contain::OpenError> {
        crate::contain::open_regular(self.dir.as_deref(), real, limit)
    }

    /// A whole small file (configuration, list, hostname), contained and capped at the
    /// configuration size limit. Use this instead of std::fs::read on configured paths.
    pub fn read(&self, real: &Path) -> std::io::Result<Vec<u8>> {
        crate::contain::read(self.dir.as_deref(), real, crate::source::MAX_FILE_BYTES)
            .map_err(crate::contain::OpenError::into_io)
    }

    /// `read` as UTF-8 (invalid bytes are an error, as with std::fs::read_to_string).
    pub fn read_to_string(&self, real: &Path) -> std::io::Result<String> {
        String::from_utf8(self.read(real)?)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Entries of a directory inside the root.
    pub fn read_dir(&self, real: &Path) -> std::io::Result<std::fs::ReadDir> {
        std::fs::read_dir(self.contain(real))
    }

    /// stat(2) of a path inside the root (symlinks followed inside it).
    pub fn metadata(&self, real: &Path) -> std::io::Result<std::fs::Metadata> {
        std::fs::metadata(self.contain(real))
    }

    /// How a real path is shown to the user: relative to the root for a snapshot.
    pub fn display(&self, real: &Path) -> PathBuf {
        match &self.dir {
            Some(root) => real
                .strip_prefix(root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| real.to_path_buf()),
            None => real.to_path_buf(),
        }
    }

    pub fn is_snapshot(&self) -> bool {
        self.dir.is_some()
    }
}

fn strip_root(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect()
}

/// `..` applied lexically and stopped at the top.
fn clamp_dotdot(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// Options that change how configurations are interpreted.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Postfix version whose defaults apply (`--postfix-version`).
    pub postfix_version: Option<String>,
    /// Exim version whose behaviour applies (`--exim-version`; default: the installed one).
    pub exim_version: Option<String>,
    /// Pre-upgrade check: the version to compare against (`--target-version`).
    pub target_version: Option<String>,
    /// Compatibility level assumed after the upgrade (`--target-compat`).
    pub target_compat: Option<String>,
    /// Exim `-D` style macro definitions (`--define NAME=VALUE`).
    pub exim_defines: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub struct Context {
    pub root: Root,
    pub options: Options,
    sources: Mutex<BTreeMap<PathBuf, Arc<SourceFile>>>,
    /// Files that exist but could not be loaded (unreadable, binary, too large): they were
    /// looked at, so they count in the summary.
    rejected: Mutex<std::collections::BTreeSet<PathBuf>>,
    /// Files read and checked in pieces without keeping their text (qmail's million-line
    /// control files, when they are consistent): they count in the summary too.
    streamed: Mutex<std::collections::BTreeSet<PathBuf>>,
    /// Whether a path exists, as first asked (Exim's `${if exists{...}}` is evaluated for
    /// every statement of every relay-matrix cell; the files do not change during one run).
    exists: Mutex<BTreeMap<PathBuf, bool>>,
    /// Installed packages, as first asked: the version-dependent checks ask several times a
    /// run, and each question reads the whole package database (dpkg's status file is
    /// hundreds of KB) and scans /usr/share/doc.
    installed: Mutex<BTreeMap<Vec<String>, Option<crate::packages::Installed>>>,
}

impl Context {
    pub fn new(root: Root, options: Options) -> Context {
        Context {
            root,
            options,
            sources: Mutex::new(BTreeMap::new()),
            rejected: Mutex::new(Default::default()),
            streamed: Mutex::new(Default::default()),
            exists: Mutex::new(BTreeMap::new()),
            installed: Mutex::new(BTreeMap::new()),
        }
    }

    /// The first of `packages` installed under this run's root (see packages::installed),
    /// looked up once per run.
    pub fn installed(&self, packages: &[&str]) -> Option<crate::packages::Installed> {
        let key: Vec<String> = packages.iter().map(|p| p.to_string()).collect();
        let mut c = self.installed.lock().unwrap_or_else(|e| e.into_inner());
        c.entry(key)
            .or_insert_with(|| crate::packages::installed(&self.root, packages))
            .clone()
    }

    /// Whether the real path `real` exists (asked once per run), symlinks followed inside
    /// the root: a snapshot's absolute link is never followed on this machine.
    pub fn exists(&self, real: &Path) -> bool {
        let mut c = self.exists.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry(real.to_path_buf())
            .or_insert_with(|| self.root.contain(real).exists())
    }

    /// Whether the real path `real` is a regular file, symlinks followed inside the root
    /// (`Path::is_file` would follow a snapshot's absolute link on this machine).
    pub fn is_file(&self, real: &Path) -> bool {
        self.root.contain(real).is_file()
    }

    /// Whether the real path `real` is a directory, symlinks followed inside the root.
    pub fn is_dir(&self, real: &Path) -> bool {
        self.root.contain(real).is_dir()
    }

    /// Load (once) the file at `real`. The loaded file is remembered for rendering and fixes.
    pub fn load(&self, real: &Path) -> Result<Arc<SourceFile>, LoadError> {
        let display = self.root.display(real);
        if let Some(s) = self.lock().get(&display) {
            return Ok(Arc::clone(s));
        }
        let s = match SourceFile::load_in(&self.root, real, &display) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                if !matches!(e, LoadError::Missing(_) | LoadError::Outside(..)) {
                    self.rejected
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(display);
                }
                return Err(e);
            }
        };
        self.lock().insert(display, Arc::clone(&s));
        Ok(s)
    }

    /// Load a file and turn every problem except absence into a finding: unreadable (RD001),
    /// binary (RD002), too large (RD004); invalid UTF-8 (RD003) still returns the text.
    /// A missing file returns None with no finding: whether absence matters is the caller's
    /// call (a missing rcpthosts is an open relay, a missing master.cf is not).
    pub fn load_checked(
        &self,
        real: &Path,
        mta: Mta,
        findings: &mut Vec<Finding>,
    ) -> Option<Arc<SourceFile>> {
        match self.load(real) {
            Ok(s) => {
                if s.lossy {
                    let first_bad = first_invalid_utf8(s.original());
                    let (line, col) = s.line_col(first_bad);
                    findings.push(
                        Finding::new(
                            "RD003",
                            mta,
                            format!(
                                "{} is not valid UTF-8 (first bad byte on line {line}, column {col}); checked with the bad bytes replaced",
                                s.display.display()
                            ),
                        )
                        .at(s.location(first_bad, first_bad)),
                    );
                }
                Some(s)
            }
            Err(LoadError::Missing(_)) => None,
            Err(e) => {
                let code = match e {
                    LoadError::Binary(..) => "RD002",
                    LoadError::TooLarge(..) => "RD004",
                    LoadError::Outside(..) => "RD006",
                    _ => "RD001",
                };
                findings.push(Finding::new(code, mta, e.to_string()).at(file_location(&e)));
                None
            }
        }
    }

    /// RD006 for a path of the snapshot that was not followed because it leaves it.
    pub fn outside_finding(&self, real: &Path, mta: Mta) -> Finding {
        let display = self.root.display(real);
        let why = self
            .root
            .escape(real)
            .map(|e| e.to_string())
            .unwrap_or_else(|| "it is not in the snapshot".into());
        let e = LoadError::Outside(display, why);
        Finding::new("RD006", mta, e.to_string()).at(file_location(&e))
    }

    /// Count a file read without `load` (checked in pieces, its text not kept) as read.
    pub fn note_read(&self, real: &Path) {
        let display = self.root.display(real);
        self.streamed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(display);
    }

    /// A file loaded earlier in this run, by its displayed path.
    pub fn source(&self, display: &Path) -> Option<Arc<SourceFile>> {
        self.lock().get(display).cloned()
    }

    /// Displayed paths of every file read in this run.
    pub fn loaded_paths(&self) -> Vec<PathBuf> {
        self.lock().keys().cloned().collect()
    }

    /// Number of files read in this run.
    pub fn files_read(&self) -> usize {
        let mut rejected = self
            .rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        rejected.extend(
            self.streamed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        let sources = self.lock();
        sources.len()
            + rejected
                .iter()
                .filter(|p| !sources.contains_key(*p))
                .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, Arc<SourceFile>>> {
        // A poisoned lock only means another checker panicked; the map itself is intact.
        self.sources.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn file_location(e: &LoadError) -> crate::finding::Location {
    crate::finding::Location {
        file: e.display_path().to_path_buf(),
        line: 1,
        column: 1,
        end_line: 1,
        end_column: 1,
    }
}

fn first_invalid_utf8(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => 0,
        Err(e) => e.valid_up_to(),
    }
}
