//! Replacing a configuration file without losing anyone's edit or any of its attributes
//! (issue #14 part 3).
//!
//! The file is checked twice: when its bytes are compared with what the findings were
//! computed from, and again right before the new version goes in (stat: device, inode,
//! size, mtime, ctime; and the bytes). The new version goes in with
//! renameat2(RENAME_EXCHANGE), which swaps the two names atomically, so the old file can be
//! checked once more *after* the swap: if it changed in between, the swap is undone and the
//! other writer's version is back in place. Filesystems without RENAME_EXCHANGE get a plain
//! rename after the second check. An advisory flock(2) keeps two relaydoctor runs (and
//! editors that lock) apart; most editors do not lock, hence the checks.
//!
//! Attributes: owner first, then mode (chown(2) clears set-user-ID and set-group-ID, so
//! the other order loses them), extended attributes copied (SELinux labels, ACLs,
//! user.*), and a file with several hard links is written in place so the links keep
//! sharing it. Backups are numbered and never overwritten. The directory is fsync'd after
//! the rename so the new name survives a crash (rename(2) is atomic, not durable).

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, RenameFlags, XattrFlags, CWD};

use super::temp::TempGuard;

/// What the file looked like when its bytes were compared: any difference later means
/// someone wrote it since.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// How a file was replaced.
#[derive(Debug)]
pub struct Written {
    pub backup: PathBuf,
    /// Written in place because the file has this many hard links (>1).
    pub in_place_links: Option<u64>,
}

const CHANGED: &str = "changed since relaydoctor read it; not written, run again";

/// Replace `target` (a regular file, symlinks already resolved) whose bytes must still be
/// `expected` with `new`, leaving a numbered backup of `expected`.
pub fn replace_checked(target: &Path, expected: &[u8], new: &[u8]) -> Result<Written, String> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(target)
        .map_err(|e| format!("cannot open: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if let Err(e) = rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        if e == rustix::io::Errno::WOULDBLOCK {
            return Err("locked by another process; not written".into());
        }
    }
    let before = Stamp::of(&meta);
    if read_all(&file)? != expected {
        return Err(CHANGED.into());
    }
    let backup = write_backup(target, expected, &meta)?;
    if meta.nlink() > 1 {
        recheck(target, &before, expected)?;
        write_in_place(target, new)?;
        return Ok(Written {
            backup,
            in_place_links: Some(meta.nlink()),
        });
    }
    let tmp = temp_copy(target, new, &meta, Some(&file))?;
    recheck(target, &before, expected)?;
    swap_in(tmp, target, &before, expected)?;
    sync_dir(target);
    Ok(Written {
        backup,
        in_place_links: None,
    })
}

fn read_all(mut f: &File) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    f.rewind()
        .and_then(|_| f.read_to_end(&mut v))
        .map_err(|e| format!("cannot read: {e}"))?;
    Ok(v)
}

/// The second check, right before the new version goes in.
fn recheck(target: &Path, before: &Stamp, expected: &[u8]) -> Result<(), String> {
    let now = fs::symlink_metadata(target).map_err(|_| CHANGED.to_string())?;
    if Stamp::of(&now) != *before {
        return Err(CHANGED.into());
    }
    let f = File::open(target).map_err(|_| CHANGED.to_string())?;
    if read_all(&f)? != expected {
        return Err(CHANGED.into());
    }
    Ok(())
}

/// Swap the temp file in; undo when the old file turns out to have changed after all.
fn swap_in(tmp: TempGuard, target: &Path, before: &Stamp, expected: &[u8]) -> Result<(), String> {
    let ours = tmp.file().metadata().map(|m| m.ino()).ok();
    match rustix::fs::renameat_with(CWD, tmp.path(), CWD, target, RenameFlags::EXCHANGE) {
        Ok(()) => {
            // tmp's name now holds the old file: it must be the one that was checked.
            let old = fs::symlink_metadata(tmp.path()).ok();
            // (The rename itself updates the old file's ctime: compare the rest.)
            let same = old.is_some_and(|m| {
                let now = Stamp::of(&m);
                (now.dev, now.ino, now.size, now.mtime)
                    == (before.dev, before.ino, before.size, before.mtime)
            }) && File::open(tmp.path())
                .ok()
                .and_then(|f| read_all(&f).ok())
                .is_some_and(|b| b == expected);
            if !same {
                // Undo only while the target is still our file: if another writer replaced
                // it since, theirs is newer than what the temp name now holds.
                let still_ours = fs::symlink_metadata(target).ok().map(|m| m.ino()) == ours;
                if !still_ours {
                    return Err(CHANGED.into());
                }
                rustix::fs::renameat_with(CWD, tmp.path(), CWD, target, RenameFlags::EXCHANGE)
                    .map_err(|e| format!("{CHANGED}; undoing the swap failed: {e}"))?;
                return Err(CHANGED.into());
            }
            // Dropping the guard removes the old file under the temp name.
            Ok(())
        }
        Err(_) => tmp.persist(target),
    }
}

/// The numbered backup: FILE.relaydoctor.bak, then .bak.1, .bak.2, ...; an existing one is
/// never overwritten (created with link(2)/RENAME_NOREPLACE semantics).
fn write_backup(target: &Path, bytes: &[u8], meta: &fs::Metadata) -> Result<PathBuf, String> {
    let first = super::backup_path(target);
    for n in 0..10_000u32 {
        let candidate = match n {
            0 => first.clone(),
            n => PathBuf::from(format!("{}.{n}", first.display())),
        };
        if fs::symlink_metadata(&candidate).is_ok() {
            continue;
        }
        let tmp = temp_copy(target, bytes, meta, None)?;
        match tmp.persist_noclobber(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot write the backup: {e}")),
        }
    }
    Err("cannot write the backup: 10000 numbered backups exist".into())
}

/// A temp file beside `target` holding `bytes`, with the target's owner, then mode, then
/// (from `xattrs_of`) extended attributes; synced to disk.
fn temp_copy(
    target: &Path,
    bytes: &[u8],
    meta: &fs::Metadata,
    xattrs_of: Option<&File>,
) -> Result<TempGuard, String> {
    let tmp = TempGuard::beside(target)?;
    let f = tmp.file();
    (&*f)
        .write_all(bytes)
        .map_err(|e| format!("cannot write: {e}"))?;
    // Keeping the owner needs privilege when it is not ours; failing to keep another
    // user's ownership is an error: the MTA may not read a root-owned copy of its file.
    std::os::unix::fs::fchown(f, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| format!("cannot keep owner {}:{}: {e}", meta.uid(), meta.gid()))?;
    rustix::fs::fchmod(f, rustix::fs::Mode::from_raw_mode(meta.mode() & 0o7777))
        .map_err(|e| format!("cannot set mode: {e}"))?;
    if let Some(src) = xattrs_of {
        copy_xattrs(src, f)?;
    }
    f.sync_all().map_err(|e| format!("cannot write: {e}"))?;
    Ok(tmp)
}

/// Copy every extended attribute. Ones this process may not set (trusted.*, security.* as
/// non-root) are skipped only when they could not have been read either.
fn copy_xattrs(from: &File, to: &File) -> Result<(), String> {
    let mut names = vec![0u8; 64 * 1024];
    let n = match rustix::fs::flistxattr(from, &mut names[..]) {
        Ok(n) => n,
        // No xattr support on this filesystem: nothing to copy.
        Err(_) => return Ok(()),
    };
    let mut value = vec![0u8; 64 * 1024];
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let Ok(len) = rustix::fs::fgetxattr(from, name, &mut value[..]) else {
            continue;
        };
        if let Err(e) = rustix::fs::fsetxattr(to, name, &value[..len], XattrFlags::empty()) {
            let name = String::from_utf8_lossy(name);
            if name.starts_with("user.") {
                return Err(format!("cannot keep extended attribute {name}: {e}"));
            }
        }
    }
    Ok(())
}

/// Hard links share the inode: renaming a new file over one name would split them.
fn write_in_place(target: &Path, new: &[u8]) -> Result<(), String> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(|e| format!("cannot open for writing: {e}"))?;
    f.write_all(new)
        .and_then(|_| f.set_len(new.len() as u64))
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write in place: {e}"))
}

/// fsync the directory so the rename itself is on disk (rename(2) is atomic, fsync(2) of
/// the file does not cover its directory entry).
pub fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}
