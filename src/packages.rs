//! Installed package versions, read from a root (the live system or a `--root` snapshot)
//! without running anything: so that version-dependent checks use the version of the server
//! the configuration belongs to, and can say where that version came from.
//!
//! Sources, in order:
//! - `var/lib/dpkg/status` (Debian, Ubuntu): deb822 paragraphs with `Package`, `Status` and
//!   `Version`; a package is installed when the third word of `Status` is `installed`
//!   (dpkg(1), "PACKAGE STATES"; e.g. `install ok installed`, `hold ok installed`).
//! - `lib/apk/db/installed` (Alpine): paragraphs of `P:` name and `V:` version lines
//!   (apk-tools' installed database).
//! - `var/db/pkg/CATEGORY/NAME-VERSION` (Gentoo): one directory per installed package (PMS,
//!   "vdb").
//! - `usr/share/doc/NAME-VERSION` (RHEL/CentOS 7 and older, SUSE): the documentation directory
//!   rpm packages install. RHEL 8 and later install `usr/share/doc/NAME` without the version, and
//!   their RPM database (`var/lib/rpm/rpmdb.sqlite`, BerkeleyDB `Packages` before RHEL 9) has no
//!   pure-Rust reader, so those snapshots yield no version: the caller says so and falls back.

use std::path::{Path, PathBuf};

use crate::context::Root;

/// Largest package database read (dpkg status files of big servers are a few MB).
const MAX_DB: u64 = 64 << 20;

/// One installed package and where its version was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub package: String,
    /// The packaged version as recorded (`3.7.11-0+deb12u1`, `3.8.4-r0`, `2.10.1`).
    pub version: String,
    /// The file or directory it came from, as the user sees it (relative to a snapshot root).
    pub source: String,
}

impl Installed {
    /// The upstream version: without a Debian/RPM epoch (`2:`) and without the packaging
    /// revision (`-0+deb12u1`, `-r0`, `-4.el8`).
    pub fn upstream(&self) -> &str {
        upstream(&self.version)
    }

    /// "3.7.11 (package postfix 3.7.11-0+deb12u1 in var/lib/dpkg/status)": for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} (package {} {} in {})",
            self.upstream(),
            self.package,
            self.version,
            self.source
        )
    }
}

/// The upstream part of a package version string.
pub fn upstream(version: &str) -> &str {
    let v = match version.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            rest
        }
        _ => version,
    };
    match v.rfind('-') {
        Some(i) if i > 0 => &v[..i],
        _ => v,
    }
}

/// Looks a package's installed version up in the text of a package database.
type FindVersion = fn(&str, &str) -> Option<String>;

/// The first of `packages` (in the order given) that the root has installed, with its version.
pub fn installed(root: &Root, packages: &[&str]) -> Option<Installed> {
    let dbs: [(&str, FindVersion); 2] = [
        ("/var/lib/dpkg/status", dpkg_version),
        ("/lib/apk/db/installed", apk_version),
    ];
    for (path, find) in dbs {
        let real = root.resolve(Path::new(path));
        let Some(text) = read_small(root, &real) else {
            continue;
        };
        for p in packages {
            if let Some(version) = find(&text, p) {
                return Some(found(root, p, version, &real));
            }
        }
    }
    let dirs: Vec<PathBuf> = gentoo_dirs(root)
        .into_iter()
        .chain([root.resolve(Path::new("/usr/share/doc"))])
        .collect();
    for p in packages {
        for dir in &dirs {
            if let Some((version, real)) = versioned_dir(root, dir, p) {
                return Some(found(root, p, version, &real));
            }
        }
    }
    None
}

fn found(root: &Root, package: &str, version: String, real: &Path) -> Installed {
    Installed {
        package: package.to_string(),
        version,
        source: root.display(real).display().to_string(),
    }
}

/// A package database file, read inside the root (a snapshot's `var/lib/dpkg/status`
/// symlinked to the host's is not followed out of it), never a FIFO, at most MAX_DB bytes.
fn read_small(root: &Root, path: &Path) -> Option<String> {
    let bytes = crate::contain::read(root.dir.as_deref(), path, MAX_DB).ok()?;
    // Valid UTF-8 (the usual case) is taken as it is, without a copy.
    Some(
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// The version of `package` in a dpkg status file, if it is installed. A package can have one
/// paragraph per architecture (multiarch); any installed one counts.
fn dpkg_version(text: &str, package: &str) -> Option<String> {
    // Only the paragraphs that name the package are read field by field: a server's status
    // file holds thousands (700 KB here), and a lint asks on every run.
    let name = memchr::memmem::Finder::new(package);
    let wanted = |para: &&str| name.find(para.as_bytes()).is_some();
    paragraphs(text).filter(wanted).find_map(|para| {
        let field = |name: &str| {
            para.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (!l.starts_with([' ', '\t']) && k.eq_ignore_ascii_case(name)).then(|| v.trim())
            })
        };
        let installed = field("Status")
            .map(|s| s.split_whitespace().nth(2) == Some("installed"))
            .unwrap_or(false);
        (field("Package") == Some(package) && installed)
            .then(|| field("Version").map(str::to_string))
            .flatten()
    })
}

/// The version of `package` in Alpine's installed database.
fn apk_version(text: &str, package: &str) -> Option<String> {
    paragraphs(text).find_map(|para| {
        let mut name = None;
        let mut version = None;
        for l in para.lines() {
            if let Some(v) = l.strip_prefix("P:") {
                name = Some(v.trim());
            } else if let Some(v) = l.strip_prefix("V:") {
                version = Some(v.trim());
            }
        }
        (name == Some(package)).then(|| version.map(str::to_string))?
    })
}

fn paragraphs(text: &str) -> impl Iterator<Item = &str> {
    text.split("\n\n")
        .flat_map(|p| p.split("\r\n\r\n"))
        .filter(|p| !p.trim().is_empty())
}

/// Gentoo's package database category directories (`var/db/pkg/mail-mta`, ...).
fn gentoo_dirs(root: &Root) -> Vec<PathBuf> {
    let db = root.resolve(Path::new("/var/db/pkg"));
    let Ok(rd) = root.read_dir(&db) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    dirs.sort();
    dirs
}

/// `NAME-VERSION` in `dir` (a directory whose name is the package name, a dash and a version
/// starting with a digit): the highest version when several are left behind.
fn versioned_dir(root: &Root, dir: &Path, package: &str) -> Option<(String, PathBuf)> {
    let rd = root.read_dir(dir).ok()?;
    let prefix = format!("{package}-");
    // The name first: /usr/share/doc holds a directory per installed package, and only
    // the few that match are worth a stat.
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let v = name.strip_prefix(&prefix)?;
            v.starts_with(|c: char| c.is_ascii_digit())
                .then(|| (v.to_string(), e.path()))
        })
        .filter(|(_, path)| root.metadata(path).is_ok_and(|m| m.is_dir()))
        .max_by(|a, b| version_key(&a.0).cmp(&version_key(&b.0)))
}

/// Numeric components of a version, for choosing the newest of several.
fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(files: &[(&str, &str)], dirs: &[&str]) -> (tempfile::TempDir, Root) {
        let t = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let real = t.path().join(p);
            std::fs::create_dir_all(real.parent().unwrap()).unwrap();
            std::fs::write(real, text).unwrap();
        }
        for d in dirs {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        let root = Root::snapshot(t.path());
        (t, root)
    }

    const STATUS: &str =
        "Package: postfix\nStatus: deinstall ok config-files\nVersion: 3.5.6-1\n\n\
        Package: postfix-mysql\nStatus: install ok installed\nVersion: 3.7.11-0+deb12u1\n\n\
        Package: postfix\nStatus: install ok installed\nPriority: optional\nDescription: x\n \
        Version: 9.9 in a continuation line\nVersion: 3.7.11-0+deb12u1\n";

    #[test]
    fn dpkg_status_installed_paragraph() {
        let (_t, root) = root_with(&[("var/lib/dpkg/status", STATUS)], &[]);
        let got = installed(&root, &["postfix"]).unwrap();
        assert_eq!(got.version, "3.7.11-0+deb12u1");
        assert_eq!(got.upstream(), "3.7.11");
        assert_eq!(got.source, "var/lib/dpkg/status");
        assert!(got.describe().contains("3.7.11 (package postfix"));
    }

    #[test]
    fn removed_package_is_not_installed() {
        let status = "Package: postfix\nStatus: deinstall ok config-files\nVersion: 3.5.6-1\n";
        let (_t, root) = root_with(&[("var/lib/dpkg/status", status)], &[]);
        assert_eq!(installed(&root, &["postfix"]), None);
    }

    #[test]
    fn rpm_doc_directory_and_epochs() {
        let (_t, root) = root_with(
            &[],
            &[
                "usr/share/doc/postfix-2.10.1",
                "usr/share/doc/postfix-2.6.6",
                "usr/share/doc/postfix-perl-scripts-2.10.1",
            ],
        );
        let got = installed(&root, &["postfix"]).unwrap();
        assert_eq!(got.version, "2.10.1");
        assert_eq!(got.source, "usr/share/doc/postfix-2.10.1");
        assert_eq!(upstream("2:3.5.8-4.el8"), "3.5.8");
        assert_eq!(upstream("3.8.4-r0"), "3.8.4");
    }

    #[test]
    fn alpine_and_gentoo() {
        let apk = "P:musl\nV:1.2.4-r2\n\nP:postfix\nV:3.8.4-r0\n";
        let (_t, root) = root_with(&[("lib/apk/db/installed", apk)], &[]);
        assert_eq!(installed(&root, &["postfix"]).unwrap().upstream(), "3.8.4");
        let (_t, root) = root_with(&[], &["var/db/pkg/mail-mta/postfix-3.9.0"]);
        let got = installed(&root, &["exim", "postfix"]).unwrap();
        assert_eq!(
            (got.package.as_str(), got.version.as_str()),
            ("postfix", "3.9.0")
        );
    }

    #[test]
    fn nothing_readable_is_none() {
        let (_t, root) = root_with(&[("var/lib/dpkg/status", "\u{0}\u{ff}garbage")], &[]);
        assert_eq!(installed(&root, &["postfix"]), None);
    }
}
