//! Reading a snapshot as its server would see it from its own `/`, like chroot(2): an
//! absolute symlink target is re-rooted, `..` never climbs above the root, and nothing
//! outside the root is read or written (issue #14).
//!
//! Linux's openat2(2) with RESOLVE_IN_ROOT does exactly this in the kernel ("treat dirfd as
//! the root directory while resolving the path ... absolute symbolic links and `..` are
//! scoped inside dirfd", openat2(2)); it is used for every open. The same walk is done here
//! component by component (at most 40 symlinks, Linux's MAXSYMLINKS in
//! include/linux/namei.h) so that kernels without openat2 (before 5.6, or seccomp filters
//! that refuse it) are contained too, and so that a path whose only target lies outside
//! the snapshot can be reported instead of silently missing.
//!
//! Special files are never opened for reading: a FIFO blocks in open(2) until a writer
//! comes, a device can have side effects or never end. Every file is checked with stat
//! before the open and with fstat after it (O_NONBLOCK keeps a swapped-in FIFO from
//! blocking the open), and reads stop at the size limit whatever stat said (/proc files
//! and devices report size 0).

use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Linux MAXSYMLINKS: the kernel gives ELOOP after this many links in one lookup.
const MAX_LINKS: usize = 40;

/// Where a path of the snapshot is on this machine, resolved inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contained {
    /// Physical path under the root (every symlink already followed inside it).
    pub path: PathBuf,
    /// Set when the resolution wanted to leave the root: the absolute symlink target
    /// that was re-rooted or the `..` that was stopped at the root, for the message that
    /// says why a missing file is missing.
    pub escape: Option<Escape>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escape {
    /// A symlink (shown relative to the root) whose target is absolute or climbs above the
    /// root with `..`.
    Link { link: PathBuf, target: PathBuf },
    /// The path itself climbs above the root with `..`.
    DotDot,
}

impl std::fmt::Display for Escape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Under --root an absolute target is a path of the snapshot (chroot(2)
            // semantics), so the file is missing from the snapshot, not "outside" it.
            Escape::Link { link, target } if target.is_absolute() => write!(
                f,
                "/{} is a symlink to {}, which is not in the snapshot (an absolute link \
                 resolves inside it, as on the server)",
                link.display(),
                target.display()
            ),
            Escape::Link { link, target } => write!(
                f,
                "/{} is a symlink to {}, which climbs above the snapshot's root (`..` stops \
                 there, as on the server) to a path the snapshot does not have",
                link.display(),
                target.display()
            ),
            Escape::DotDot => write!(
                f,
                "the path climbs above / with `..`, which stops at the snapshot's root (as \
                 on the server), to a path the snapshot does not have"
            ),
        }
    }
}

/// The path `inside` (absolute or relative: both are taken from the root, as a chrooted
/// server would) resolved under `root`. Missing components are kept as written, so the
/// result of a missing file is still a path inside the root.
pub fn resolve(root: &Path, inside: &Path) -> io::Result<Contained> {
    let mut pending: Vec<OsString> = Vec::new();
    push_front(&mut pending, inside);
    let mut stack: Vec<OsString> = Vec::new();
    let mut escape = None;
    let mut links = 0;
    let mut at = root.to_path_buf();
    while let Some(c) = pending.pop() {
        if c == ".." {
            if stack.pop().is_none() {
                escape.get_or_insert(Escape::DotDot);
            }
            at = root.join(stack.iter().collect::<PathBuf>());
            continue;
        }
        let candidate = at.join(&c);
        let is_link = if pending.is_empty() {
            is_symlink(&candidate)
        } else {
            directory_is_symlink(&candidate)
        };
        if !is_link {
            stack.push(c);
            at = candidate;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(io::Error::from(rustix::io::Errno::LOOP));
        }
        let target = fs::read_link(&candidate)?;
        let link: PathBuf = stack.iter().chain([&c]).collect();
        if target.is_absolute() {
            stack.clear();
            escape.get_or_insert(Escape::Link {
                link: link.clone(),
                target: target.clone(),
            });
        } else if climbs_above(stack.len(), &target) {
            escape.get_or_insert(Escape::Link {
                link,
                target: target.clone(),
            });
        }
        push_front(&mut pending, &target);
        at = root.join(stack.iter().collect::<PathBuf>());
    }
    Ok(Contained { path: at, escape })
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// `is_symlink` for a path walked through on the way to another (a directory, or a link
/// to one), remembered for the rest of the process: one run resolves every file of a split
/// configuration through the same few directories, and a statx per directory per file was
/// a tenth of a lint run (scripts/bench exim). Only directories are remembered: relaydoctor
/// never turns a directory into a link or back, while `--fix` replaces files.
fn directory_is_symlink(path: &Path) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<PathBuf, bool>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(&known) = seen.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
        return known;
    }
    let link = is_symlink(path);
    seen.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(path.to_path_buf(), link);
    link
}

/// Queue the components of `p` to be walked next (the queue is a stack: last is next).
fn push_front(pending: &mut Vec<OsString>, p: &Path) {
    let comps: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    pending.extend(comps.into_iter().rev());
}

/// Whether a relative link target at `depth` components below the root climbs above it.
fn climbs_above(depth: usize, target: &Path) -> bool {
    let mut d = depth as isize;
    for c in target.components() {
        match c {
            Component::ParentDir => d -= 1,
            Component::Normal(_) => d += 1,
            _ => {}
        }
        if d < 0 {
            return true;
        }
    }
    false
}

/// Why a file was not opened.
#[derive(Debug)]
pub enum OpenError {
    Missing,
    /// Missing inside the root, and the path wanted to leave it.
    Outside(Escape),
    NotAFile,
    TooLarge(u64),
    Io(io::Error),
}

/// Open a regular file for reading. `root` is the snapshot (None: the live system) and
/// `real` a path under it (paths outside it are taken from the root, chroot-style).
/// Returns the file and its fstat metadata.
pub fn open_regular(
    root: Option<&Path>,
    real: &Path,
    limit: u64,
) -> Result<(File, Metadata), OpenError> {
    let (stat_path, rel, meta) = match root {
        Some(root) => {
            let inside = real.strip_prefix(root).unwrap_or(real);
            let c = resolve(root, inside).map_err(OpenError::Io)?;
            let rel = c.path.strip_prefix(root).unwrap_or(&c.path).to_path_buf();
            match fs::metadata(&c.path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(match c.escape {
                        Some(esc) => OpenError::Outside(esc),
                        None => OpenError::Missing,
                    })
                }
                meta => (c.path, Some(rel), meta),
            }
        }
        None => (real.to_path_buf(), None, fs::metadata(real)),
    };
    let meta = match meta {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::Missing),
        Err(e) => return Err(OpenError::Io(e)),
    };
    check_meta(&meta, limit)?;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let file = match (root, rel) {
        (Some(root), Some(rel)) => open_in_root(root, &rel, &stat_path, flags),
        _ => rustix::fs::open(&stat_path, flags, Mode::empty()).map(File::from),
    }
    .map_err(|e| OpenError::Io(e.into()))?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    check_meta(&meta, limit)?;
    Ok((file, meta))
}

fn check_meta(meta: &Metadata, limit: u64) -> Result<(), OpenError> {
    if !meta.is_file() {
        return Err(OpenError::NotAFile);
    }
    if meta.len() > limit {
        return Err(OpenError::TooLarge(meta.len()));
    }
    Ok(())
}

/// openat2(RESOLVE_IN_ROOT) where the kernel has it; else the path resolved above, opened
/// without following a final symlink (one swapped in since the walk is refused, not
/// followed out of the root).
fn open_in_root(
    root: &Path,
    rel: &Path,
    resolved: &Path,
    flags: OFlags,
) -> rustix::io::Result<File> {
    let dir = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(&dir, rel, flags, Mode::empty(), how) {
        Ok(fd) => Ok(File::from(fd)),
        // ENOSYS: kernel before 5.6; EPERM: a seccomp filter; E2BIG/EINVAL: an older
        // struct open_how.
        Err(rustix::io::Errno::NOSYS)
        | Err(rustix::io::Errno::PERM)
        | Err(rustix::io::Errno::TOOBIG)
        | Err(rustix::io::Errno::INVAL) => {
            rustix::fs::open(resolved, flags | OFlags::NOFOLLOW, Mode::empty()).map(File::from)
        }
        Err(e) => Err(e),
    }
}

/// Read at most `limit` bytes; more is TooLarge, whatever the file's size said.
pub fn read_capped(mut file: File, size_hint: u64, limit: u64) -> Result<Vec<u8>, OpenError> {
    let mut bytes = Vec::with_capacity(size_hint.min(limit) as usize);
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(OpenError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(OpenError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A whole regular file, contained and capped.
pub fn read(root: Option<&Path>, real: &Path, limit: u64) -> Result<Vec<u8>, OpenError> {
    let (f, meta) = open_regular(root, real, limit)?;
    read_capped(f, meta.len(), limit)
}

impl OpenError {
    pub fn into_io(self) -> io::Error {
        match self {
            // The words of ENOENT, as every other tool says it (a bare ErrorKind prints
            // "entity not found").
            OpenError::Missing => {
                io::Error::new(io::ErrorKind::NotFound, "No such file or directory")
            }
            OpenError::Outside(e) => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
            OpenError::NotAFile => io::Error::other("not a regular file"),
            OpenError::TooLarge(n) => io::Error::other(format!("{n} bytes is over the size limit")),
            OpenError::Io(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_links_and_dotdot_stay_in_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc/postfix")).unwrap();
        fs::write(r.join("etc/shadow"), "x").unwrap();
        symlink("/etc/shadow", r.join("etc/postfix/main.cf")).unwrap();
        symlink("../../../../../etc", r.join("etc/postfix/up")).unwrap();
        let c = resolve(r, Path::new("/etc/postfix/main.cf")).unwrap();
        assert_eq!(c.path, r.join("etc/shadow"));
        assert!(matches!(c.escape, Some(Escape::Link { .. })));
        let c = resolve(r, Path::new("/etc/postfix/up/shadow")).unwrap();
        assert_eq!(c.path, r.join("etc/shadow"));
        let c = resolve(r, Path::new("/../../etc/./shadow")).unwrap();
        assert_eq!(
            (c.path, c.escape),
            (r.join("etc/shadow"), Some(Escape::DotDot))
        );
        let c = resolve(r, Path::new("/etc/postfix/../shadow")).unwrap();
        assert_eq!((c.path, c.escape), (r.join("etc/shadow"), None));
    }

    #[test]
    fn link_loops_end_with_eloop() {
        let d = tempfile::tempdir().unwrap();
        symlink("b", d.path().join("a")).unwrap();
        symlink("a", d.path().join("b")).unwrap();
        let e = resolve(d.path(), Path::new("/a")).unwrap_err();
        assert_eq!(
            e.raw_os_error(),
            Some(rustix::io::Errno::LOOP.raw_os_error())
        );
    }
}
