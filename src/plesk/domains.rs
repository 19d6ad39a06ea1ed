//! The domains Plesk receives mail for, for `relaydoctor dns --plesk` (issue #17).
//!
//! Schema (psadb.xml of Plesk 17.8, `parallels/PSA_17.8.11/microupdates/MU50/common/admin/db/
//! psadb.xml` in the tejasv694/Plesk mirror): `domains` (`name`: the ASCII name, `status`),
//! `DomainServices` ("Services available on domain": `dom_id`, `type` enum with `'mail'`,
//! `status`) and `domain_aliases` (`dom_id`, `name`, `status`, `mail` enum `'true'/'false'`).
//! Plesk's PMM agent reads a domain's mail service the same way
//! (`PleskX.pm` `getDomainMailStatus`: the DomainServices row of type `mail`).
//!
//! Status codes are Plesk's objectStatus (XML API reference, `plesk_common.xsd`): 0 is
//! active; 2, 4, 16, 32, 64 and 256 are kinds of "suspended" or "disabled", summed. A
//! disabled site's "hosting services such as mail will be unavailable" (Plesk Onyx customer
//! guide, "Website Status"), while 8 ("the web service is temporarily suspended") keeps mail,
//! so a domain counts when its status has no bit but 8.

use mysql::prelude::Queryable;

use super::connect;
use super::credentials;
use super::model::qualified;
use super::settings::DbSettings;

/// What the psa database says, with what the command layer needs to keep secrets out.
pub struct MailDomains {
    /// ASCII (IDNA) names, sorted, without duplicates.
    pub names: Vec<String>,
    /// Where the credentials came from ("/etc/psa/.psa.shadow").
    pub source: String,
    pub secrets: Vec<String>,
    pub warnings: Vec<String>,
}

/// A failure, already scrubbed, and the secrets to scrub again on the way out.
pub struct DomainsError {
    pub message: String,
    pub secrets: Vec<String>,
}

/// The objectStatus bit that suspends only the web service (mail stays on).
const WEB_ONLY_SUSPENDED: u64 = 8;

/// Domains and domain aliases with the mail service on.
pub fn mail_domains(db: &DbSettings) -> Result<MailDomains, DomainsError> {
    let mut warnings = Vec::new();
    let creds = credentials::resolve(db, &mut warnings).map_err(|e| DomainsError {
        message: e.0,
        secrets: Vec::new(),
    })?;
    let fail = |message: String| DomainsError {
        message,
        secrets: creds.secrets.clone(),
    };
    let mut conn = connect::connect(&creds).map_err(|e| fail(e.0))?;
    let d = qualified(&creds.db, "domains");
    let s = qualified(&creds.db, "DomainServices");
    let a = qualified(&creds.db, "domain_aliases");
    let active = |col: &str| format!("({col} & ~{WEB_ONLY_SUSPENDED}) = 0");
    let sql = format!(
        "SELECT d.name FROM {d} d JOIN {s} s ON s.dom_id = d.id \
           WHERE s.type = 'mail' AND s.status = 0 AND {da} \
         UNION \
         SELECT a.name FROM {a} a JOIN {d} d ON d.id = a.dom_id JOIN {s} s ON s.dom_id = d.id \
           WHERE a.mail = 'true' AND a.status = 0 AND s.type = 'mail' AND s.status = 0 AND {da}",
        da = active("d.status"),
    );
    let rows: Vec<Option<String>> = conn.query(sql).map_err(|e| {
        fail(format!(
            "reading Plesk's mail domains from {} (credentials from {}): {}",
            creds.endpoint,
            creds.source,
            connect::describe(&creds, &e)
        ))
    })?;
    let mut names: Vec<String> = rows
        .into_iter()
        .flatten()
        .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    Ok(MailDomains {
        names,
        source: creds.source.clone(),
        secrets: creds.secrets.clone(),
        warnings,
    })
}
