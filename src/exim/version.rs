//! Which Exim version the configuration runs under: `--exim-version`, else the version the
//! root (live system or snapshot) has installed, else unknown. Version-dependent rules (taint,
//! TLS defaults) use it and say where it came from.

use std::path::Path;

use crate::context::Context;

/// An Exim version and where it was read, for messages ("4.96 (package exim4-daemon-heavy
/// 4.96-15+deb12u4 in var/lib/dpkg/status)").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EximVersion {
    pub major: u32,
    pub minor: u32,
    pub source: String,
}

impl EximVersion {
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

/// Packages that carry the Exim binary: Debian/Ubuntu (exim4-daemon-*; exim4-base carries the
/// same upstream version), RHEL/Fedora/EPEL, cPanel's RPM, Alpine and Gentoo (`exim`).
const PACKAGES: &[&str] = &[
    "exim4-daemon-heavy",
    "exim4-daemon-light",
    "exim4-base",
    "exim",
];

/// cPanel caches `exim -bV` (Cpanel/Exim.pm geteximinfo runs it through
/// Cpanel::CachedCommand) in root's datastore; the file name is the command line with `/`
/// turned into `_` (Cpanel/CachedCommand/Utils.pm _get_datastore_filename). Its first line is
/// "Exim version 4.96 #2 built ...".
const CPANEL_BV_CACHE: &str = "/root/.cpanel/datastore/_usr_sbin_exim_-bV";

/// "4.96", "4.96.2", "4.96-15+deb12u4" as (major, minor).
pub fn parse(v: &str) -> Option<(u32, u32)> {
    let v = crate::packages::upstream(v.trim());
    let mut it = v.split('.');
    let major = it.next()?.parse().ok()?;
    let minor: String = it
        .next()?
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Some((major, minor.parse().ok()?))
}

/// The version in use: the `--exim-version` flag, the installed package, cPanel's cached
/// `exim -bV`; None when nothing says.
pub fn detect(ctx: &Context) -> Option<EximVersion> {
    if let Some(v) = &ctx.options.exim_version {
        let (major, minor) = parse(v)?;
        return Some(EximVersion {
            major,
            minor,
            source: format!("{v} (--exim-version)"),
        });
    }
    if let Some(p) = ctx.installed(PACKAGES) {
        if let Some((major, minor)) = parse(p.upstream()) {
            return Some(EximVersion {
                major,
                minor,
                source: p.describe(),
            });
        }
    }
    let real = ctx.root.resolve(Path::new(CPANEL_BV_CACHE));
    let text = std::fs::read_to_string(&real).ok()?;
    let first = text.lines().next()?;
    let v = first
        .strip_prefix("Exim version ")?
        .split_whitespace()
        .next()?;
    let (major, minor) = parse(v)?;
    Some(EximVersion {
        major,
        minor,
        source: format!(
            "{v} (cPanel's cached exim -bV in {})",
            ctx.root.display(&real).display()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_package_and_upstream_forms() {
        assert_eq!(parse("4.96"), Some((4, 96)));
        assert_eq!(parse("4.94.2"), Some((4, 94)));
        assert_eq!(parse("4.96-15+deb12u4"), Some((4, 96)));
        assert_eq!(parse("4.97.1-r0"), Some((4, 97)));
        assert_eq!(parse("exim"), None);
        assert_eq!(parse(""), None);
    }
}
