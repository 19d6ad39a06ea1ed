//! What an Exim server offers after EHLO: STARTTLS and AUTH. One model for every rule that
//! depends on it (EX122 AUTH never offered, EX123 AUTH only over TLS without TLS, EX130
//! plaintext AUTH), so that they cannot contradict each other.
//!
//! Defaults by version (Exim ChangeLog):
//! - 4.87 JH/18: tls_advertise_hosts defaults to `*` (before: unset, STARTTLS not offered).
//!   Without tls_certificate the TLS handshake then fails.
//! - 4.88 JH/05: with tls_certificate unset Exim generates a self-signed certificate, so
//!   STARTTLS works (clients that verify certificates refuse it). Checked with Exim 4.96 -bh:
//!   a configuration without tls_* options shows `250-STARTTLS` and completes the handshake.
//! - auth_advertise_hosts defaults to `*`; an authenticator's server_advertise_condition, when
//!   it expands to empty, "0", "no" or "false", hides it (spec, "Authentication": 503 AUTH
//!   command used when not advertised).

use super::lists::{expand, split};
use super::model::{Config, Driver};
use super::version::EximVersion;
use crate::context::Context;

/// Whether and how STARTTLS works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Offered, with the configured certificate.
    Certificate,
    /// Offered, with the self-signed certificate Exim generates (4.88+, no tls_certificate).
    SelfSigned,
    /// Not offered, or the handshake cannot succeed: why.
    Off(String),
}

pub fn tls(ctx: &Context, cfg: &Config, version: Option<&EximVersion>) -> Tls {
    let adv = cfg.option("tls_advertise_hosts");
    match adv {
        Some(o) if expand(ctx, &o.value).is_ok_and(|v| split(&v).is_empty()) => {
            return Tls::Off("tls_advertise_hosts is empty".into())
        }
        None if version.is_some_and(|v| !v.at_least(4, 87)) => return Tls::Off(
            "tls_advertise_hosts is unset, which before Exim 4.87 means STARTTLS is not offered"
                .into(),
        ),
        _ => {}
    }
    let cert = cfg
        .option("tls_certificate")
        .is_some_and(|o| !o.value.trim().is_empty());
    if cert {
        Tls::Certificate
    } else if version.is_some_and(|v| !v.at_least(4, 88)) {
        Tls::Off(
            "tls_certificate is unset, and before Exim 4.88 the TLS handshake then fails".into(),
        )
    } else {
        Tls::SelfSigned
    }
}

/// Whether a value gates on TLS (tls_in_cipher and its older names).
pub fn tls_guarded(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    s.contains("tls_in_cipher")
        || s.contains("tls_cipher")
        || s.contains("encrypted")
        || s.contains("tls_in_ver")
}

/// When AUTH (through one authenticator, or at all) is offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Offered on every connection.
    Always,
    /// Offered only after STARTTLS.
    TlsOnly,
    /// Never offered: why (clients that try get 503 AUTH command used when not advertised).
    Never(String),
}

/// A server_advertise_condition or auth_advertise_hosts value that is always false.
fn always_false(ctx: &Context, v: &str) -> bool {
    expand(ctx, v).is_ok_and(|x| {
        matches!(
            x.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "no" | "false"
        )
    }) || matches!(v.trim(), "${if false}" | "${if false{yes}{no}}")
        || super::cond::eval_if(v) == Some(false)
}

/// How authenticator `d` (or AUTH in general, for None) is advertised.
pub fn auth(ctx: &Context, cfg: &Config, d: Option<&Driver>) -> Auth {
    let mut tls_only = false;
    if let Some(a) = cfg.option("auth_advertise_hosts") {
        if expand(ctx, &a.value).is_ok_and(|v| split(&v).is_empty()) {
            return Auth::Never("auth_advertise_hosts is empty".into());
        }
        tls_only |= tls_guarded(&a.value);
    }
    if let Some(c) = d.and_then(|d| d.setting("server_advertise_condition")) {
        if always_false(ctx, &c.value) {
            return Auth::Never(format!(
                "its server_advertise_condition `{}` is always false",
                c.value.trim()
            ));
        }
        tls_only |= tls_guarded(&c.value);
    }
    if tls_only {
        Auth::TlsOnly
    } else {
        Auth::Always
    }
}
