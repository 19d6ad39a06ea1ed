//! Temp files of `--fix`: removed when relaydoctor is interrupted (SIGINT, SIGTERM, SIGHUP,
//! SIGQUIT), and, since nothing survives kill -9, leftovers of an earlier run are reported
//! (RD007) and removed by the next `--fix`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

use crate::context::Context;
use crate::finding::{Finding, Fix, Mta};

/// Temp names are this prefix and tempfile's 6 random alphanumerics.
pub const PREFIX: &str = ".relaydoctor.";
const RANDOM_LEN: usize = 6;

/// Paths the signal handler removes. A slot holds a leaked C string: the handler may run
/// on any thread at any time, so a registered string is never freed (a few bytes a file).
const SLOTS: usize = 64;
static PENDING: [AtomicPtr<libc::c_char>; SLOTS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];
static INSTALL: Once = Once::new();

extern "C" fn on_signal(sig: libc::c_int) {
    for slot in &PENDING {
        let p = slot.load(Ordering::SeqCst);
        if !p.is_null() {
            // unlink(2) is async-signal-safe.
            unsafe { libc::unlink(p) };
        }
    }
    // Then die of the signal as if it had not been caught (exit status, core dumps).
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

fn install() {
    INSTALL.call_once(|| {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            unsafe { libc::signal(sig, handler) };
        }
    });
}

/// A temp file beside a target, removed on drop and on the signals above.
pub struct TempGuard {
    file: Option<tempfile::NamedTempFile>,
    slot: Option<usize>,
}

impl TempGuard {
    pub fn beside(target: &Path) -> Result<TempGuard, String> {
        install();
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file = tempfile::Builder::new()
            .prefix(PREFIX)
            .rand_bytes(RANDOM_LEN)
            .tempfile_in(dir)
            .map_err(|e| format!("cannot create a temp file in {}: {e}", dir.display()))?;
        let slot = CString::new(file.path().as_os_str().as_bytes())
            .ok()
            .and_then(|c| {
                let raw = c.into_raw();
                let slot = PENDING.iter().position(|s| {
                    s.compare_exchange(
                        std::ptr::null_mut(),
                        raw,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    )
                    .is_ok()
                });
                if slot.is_none() {
                    drop(unsafe { CString::from_raw(raw) });
                }
                slot
            });
        Ok(TempGuard {
            file: Some(file),
            slot,
        })
    }

    pub fn path(&self) -> &Path {
        self.file
            .as_ref()
            .map(|f| f.path())
            .unwrap_or(Path::new(""))
    }

    pub fn file(&self) -> &std::fs::File {
        self.file
            .as_ref()
            .expect("temp file present until persisted")
            .as_file()
    }

    /// Rename over `dest`.
    pub fn persist(mut self, dest: &Path) -> Result<(), String> {
        self.unregister();
        let f = self.file.take().expect("temp file present");
        f.persist(dest)
            .map(|_| ())
            .map_err(|e| format!("cannot rename into place: {}", e.error))
    }

    /// Link to `dest` only if nothing is there.
    pub fn persist_noclobber(mut self, dest: &Path) -> std::io::Result<()> {
        let f = self.file.take().expect("temp file present");
        match f.persist_noclobber(dest) {
            Ok(_) => {
                self.unregister();
                Ok(())
            }
            Err(e) => {
                self.file = Some(e.file);
                Err(e.error)
            }
        }
    }

    fn unregister(&mut self) {
        if let Some(i) = self.slot.take() {
            // The string stays allocated (see SLOTS); the handler just no longer sees it.
            PENDING[i].store(std::ptr::null_mut(), Ordering::SeqCst);
        }
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Whether a file name is one of our temp names.
pub fn is_temp_name(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .and_then(|n| n.strip_prefix(PREFIX))
        .is_some_and(|r| r.len() == RANDOM_LEN && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// RD007 for every leftover temp file beside a file read in this run, in directories not
/// yet in `seen`. The fix removes it: an empty edit at 0 on the temp file (see `remove`).
pub fn leftovers(
    ctx: &Context,
    mta: Mta,
    seen: &mut std::collections::BTreeSet<PathBuf>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for shown in ctx.loaded_paths() {
        let Some(src) = ctx.source(&shown) else {
            continue;
        };
        let real = ctx.root.contain(&src.real);
        let Some(dir) = real.parent().map(Path::to_path_buf) else {
            continue;
        };
        if !seen.insert(dir.clone()) {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut temps: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| is_temp_name(&e.file_name()))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        temps.sort();
        for t in temps {
            let display = ctx.root.display(&t);
            let size = std::fs::symlink_metadata(&t).map(|m| m.len()).unwrap_or(0);
            let mut holder = crate::source::SourceFile::from_text(display.clone(), "");
            holder.real = t;
            out.push(
                Finding::new(
                    "RD007",
                    mta,
                    format!(
                        "{}: a temp file ({size} bytes) left by an interrupted relaydoctor --fix",
                        display.display()
                    ),
                )
                .at(holder.location(0, 0))
                .fix(Fix::safe(
                    "remove the leftover temp file",
                    vec![holder.edit(0..0, "")],
                )),
            );
        }
    }
    out
}

/// Whether a plan is the removal of a leftover temp file (see `leftovers`).
pub fn is_removal(plan: &super::FilePlan) -> bool {
    plan.real.file_name().is_some_and(is_temp_name)
        && plan
            .edits
            .iter()
            .all(|e| e.start == 0 && e.end == 0 && e.replacement.is_empty())
}

/// Remove a leftover temp file (inside the snapshot; only a regular file with our name).
pub fn remove(ctx: &Context, plan: &super::FilePlan) -> Result<PathBuf, String> {
    let name = plan.display.display();
    let real = ctx.root.contain(&plan.real);
    let meta = std::fs::symlink_metadata(&real).map_err(|e| format!("{name}: {e}"))?;
    if !meta.is_file() || !real.file_name().is_some_and(is_temp_name) {
        return Err(format!("{name}: not a relaydoctor temp file; not removed"));
    }
    std::fs::remove_file(&real).map_err(|e| format!("{name}: cannot remove: {e}"))?;
    super::write::sync_dir(&real);
    Ok(real)
}
