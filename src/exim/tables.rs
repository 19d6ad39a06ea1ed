//! The names Exim 4.96 knows: main options, generic and driver options, ACL conditions and
//! modifiers (src/exim/exim-options.txt, extracted from the Exim source at tag exim-4.96 with
//! every build option included, plus the names later releases add). A name in none of them
//! makes Exim refuse to start (`main option "x" unknown`, `option "x" unknown`, `error in ACL:
//! unknown ACL condition/modifier`); checked with the Debian exim4-daemon-heavy 4.96 `-bV`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use super::model::{Config, Driver};
use super::version::EximVersion;
use crate::finding::{Finding, Mta};

const TABLE: &str = include_str!("exim-options.txt");

/// Whether a name is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Yes,
    /// Only in Exim releases after 4.96.
    Later,
    No,
}

#[derive(Default)]
struct Tables {
    /// Section ("main", "acl", "router", "router.redirect", ...) -> (4.96 names, later names).
    sections: BTreeMap<String, (BTreeSet<&'static str>, BTreeSet<&'static str>)>,
    /// Sections that only later releases have ("router.foo" drivers added after 4.96).
    later_sections: BTreeSet<String>,
}

/// The parsed table (a constant: parsed once, never changed).
fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Tables::default();
        let mut current = String::new();
        for line in TABLE.lines().filter(|l| !l.starts_with('#')) {
            if let Some(h) = line.strip_prefix('[') {
                let (name, later) = match h.strip_suffix("]+") {
                    Some(n) => (n, true),
                    None => (h.trim_end_matches(']'), false),
                };
                current = name.to_string();
                if later {
                    t.later_sections.insert(current.clone());
                }
                t.sections.entry(current.clone()).or_default();
                continue;
            }
            let entry = t.sections.entry(current.clone()).or_default();
            match line.strip_prefix("+ ") {
                Some(rest) => entry.1.extend(rest.split_whitespace()),
                None if t.later_sections.contains(&current) => {
                    entry.1.extend(line.split_whitespace())
                }
                None => entry.0.extend(line.split_whitespace()),
            }
        }
        t
    })
}

fn known_in(section: &str, name: &str) -> Known {
    match tables().sections.get(section) {
        Some((now, _)) if now.contains(name) => Known::Yes,
        Some((_, later)) if later.contains(name) => Known::Later,
        _ => Known::No,
    }
}

fn either(a: Known, b: Known) -> Known {
    match (a, b) {
        (Known::Yes, _) | (_, Known::Yes) => Known::Yes,
        (Known::Later, _) | (_, Known::Later) => Known::Later,
        _ => Known::No,
    }
}

/// A main option (booleans also as no_NAME / not_NAME; the parser already strips those).
pub fn main_option(name: &str) -> Known {
    known_in("main", name)
}

pub fn acl_condition(name: &str) -> Known {
    known_in("acl", name)
}

/// A driver exists (its source file has an options table or a driver definition).
pub fn driver(kind: &str, driver: &str) -> Known {
    let key = format!("{kind}.{driver}");
    match tables().sections.get(&key) {
        Some(_) if tables().later_sections.contains(&key) => Known::Later,
        Some(_) => Known::Yes,
        // appendfile's other names (transports/appendfile.c: maildir, mailstore, mbx formats
        // are options, not drivers): only appendfile itself is a driver.
        None => Known::No,
    }
}

/// A driver option: generic for the kind, or specific to the driver.
pub fn driver_option(kind: &str, drv: &str, name: &str) -> Known {
    either(
        known_in(kind, name),
        known_in(&format!("{kind}.{drv}"), name),
    )
}

/// Whether `known` means Exim refuses the name, for the version in use (unknown: a current
/// Exim, so names of later releases are accepted).
fn refused(known: Known, version: Option<&EximVersion>) -> bool {
    match known {
        Known::Yes => false,
        Known::Later => version.is_some_and(|v| !v.at_least(4, 97)),
        Known::No => true,
    }
}

fn err(msg: String, o: &super::reader::Origin) -> Finding {
    Finding::new("EX002", Mta::Exim, msg)
        .at(o.location())
        .service(super::SERVICE)
}

/// EX002 for main options, drivers and driver options Exim does not know.
pub fn unknown_options(cfg: &Config, version: Option<&EximVersion>, out: &mut Vec<Finding>) {
    for o in &cfg.options {
        // EX160 explains this one (an option of 4.95 only).
        if o.name == "allow_insecure_tainted_data" {
            continue;
        }
        if refused(main_option(&o.name), version) {
            out.push(err(
                format!(
                    "main option \"{}\" unknown: Exim refuses to start, so no mail is accepted",
                    o.name
                ),
                &o.origin,
            ));
        }
    }
    for (kind, drivers) in [
        ("router", &cfg.routers),
        ("transport", &cfg.transports),
        ("authenticator", &cfg.authenticators),
    ] {
        for d in drivers {
            driver_options(kind, d, version, out);
        }
    }
}

fn driver_options(kind: &str, d: &Driver, version: Option<&EximVersion>, out: &mut Vec<Finding>) {
    let Some(drv) = d.setting("driver") else {
        return; // Exim: "no driver defined", reported elsewhere or a fragment
    };
    let name = drv.value.trim();
    if name.contains(['$', ' ']) || name.is_empty() {
        return;
    }
    if refused(driver(kind, name), version) {
        out.push(err(format!("{kind} {}: cannot find {kind} driver \"{name}\": Exim refuses to start, so no mail is accepted", d.name), &drv.origin));
        return;
    }
    for o in &d.options {
        if refused(driver_option(kind, name, &o.name), version) {
            out.push(err(format!("option \"{}\" unknown in {kind} {} (driver {name}): Exim refuses to start, so no mail is accepted", o.name, d.name), &o.origin));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_know_what_exim_4_96_knows() {
        assert_eq!(main_option("tls_certificate"), Known::Yes);
        assert_eq!(main_option("allow_insecure_tainted_data"), Known::No);
        assert_eq!(main_option("hosts_xclient"), Known::Later);
        assert_eq!(acl_condition("demime"), Known::No);
        assert_eq!(acl_condition("dnslists"), Known::Yes);
        assert_eq!(driver("router", "accept"), Known::Yes);
        assert_eq!(driver("router", "accpet"), Known::No);
        assert_eq!(
            driver_option("transport", "appendfile", "maildir_format"),
            Known::Yes
        );
        assert_eq!(driver_option("router", "redirect", "file"), Known::Yes);
        assert_eq!(driver_option("router", "accept", "file"), Known::No);
        assert_eq!(
            driver_option("authenticator", "plaintext", "server_prompts"),
            Known::Yes
        );
    }
}
