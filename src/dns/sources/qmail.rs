//! qmail: control/rcpthosts and control/morercpthosts (qmail-smtpd(8): the domains it accepts
//! mail for, local and virtual), `rblsmtpd -r ZONE` in the run scripts (rblsmtpd(8)), and
//! the HELO name of qmail-remote (control/helohost, default control/me; qmail-control(5)).

use std::sync::Arc;

use super::{public_name, Domain, Helo, Origin, Sources, Zone};
use crate::context::Context;
use crate::finding::{Location, Mta};
use crate::qmail::model::{self, DomainFile};
use crate::qmail::Target;
use crate::source::SourceFile;

pub fn read(ctx: &Context, t: &Target, out: &mut Sources) {
    let mut ignored = Vec::new();
    let m = model::load(ctx, t, &mut ignored);
    if let Some(c) = &m.control {
        for (file, via) in [
            (&c.rcpthosts, "control/rcpthosts"),
            (&c.morercpthosts, "control/morercpthosts"),
        ] {
            if let Some(f) = file {
                domains(f, via, out);
            }
        }
        helo(ctx, c, out);
    }
    for s in &m.services {
        rblsmtpd(&s.file, out);
    }
}

fn origin(via: &str, location: Option<Location>) -> Origin {
    Origin::new(Mta::Qmail, via, location)
}

/// Entries starting with `.` match every subdomain (qmail-smtpd(8)): no single name to ask.
fn domains(f: &DomainFile, via: &str, out: &mut Sources) {
    for span in &f.entries {
        if let Some(n) = public_name(f.entry(span)) {
            out.domains.push(Domain {
                name: n,
                origin: origin(
                    via,
                    Some(f.src.location(span.start as usize, span.end as usize)),
                ),
                relay: false,
                routed: None,
            });
        }
    }
}

/// `rblsmtpd ... -r zone ...`: every `-r` argument on the command line that runs rblsmtpd.
/// rblsmtpd(8): "listed by that source if d.c.b.a.base has a TXT record"; with
/// `-r zone:text` it asks for the A record and answers `text` instead (rblsmtpd.c `rbl()`:
/// `altreply` after the first `:` switches `dns_txt` to `dns_ip4`).
fn rblsmtpd(src: &Arc<SourceFile>, out: &mut Sources) {
    let text = &src.text;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let code = line.split('#').next().unwrap_or("");
        let Some(at) = code.find("rblsmtpd") else {
            continue;
        };
        let words: Vec<&str> = code[at..].split_whitespace().collect();
        for w in words.windows(2) {
            let zone_arg = match w {
                ["-r", z] => *z,
                [flag, _] if flag.starts_with("-r") && flag.len() > 2 => &flag[2..],
                _ => continue,
            };
            let arg = zone_arg.trim_matches(['\'', '"']);
            let (zone, txt) = match arg.split_once(':') {
                Some((zone, _altreply)) => (zone, false),
                None => (arg, true),
            };
            if let Some(z) = public_name(zone) {
                let pos = code.find(zone).map(|p| start + p).unwrap_or(start);
                out.zones.push(Zone {
                    zone: z,
                    domain_based: false,
                    filtered: false,
                    txt,
                    origin: origin("rblsmtpd -r", Some(src.location(pos, pos + zone.len()))),
                });
            }
        }
    }
}

fn helo(ctx: &Context, c: &model::Control, out: &mut Sources) {
    let helohost = ctx.load(&c.dir.join("helohost")).ok();
    let (src, via) = match (helohost, &c.me) {
        (Some(h), _) => (h, "control/helohost"),
        (None, Some((me, _))) => (Arc::clone(me), "control/me"),
        (None, None) => return,
    };
    let name = src
        .text
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !name.is_empty() {
        out.helos.push(Helo {
            origin: origin(via, Some(src.line_location(1))),
            name,
        });
    }
}
