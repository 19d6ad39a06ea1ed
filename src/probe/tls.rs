//! TLS for the probe: a rustls client that completes the handshake whatever the certificate
//! is (a mail client that gives up would stop the probe before it saw AUTH), and records what
//! webpki thinks of the chain, the expiry and the name, each checked on its own so that an
//! expired certificate for the wrong name reports both.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;

use super::x509;

/// What the certificate the server presented is worth.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Certificate {
    pub subject: Option<String>,
    pub names: Vec<String>,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    /// Chain to a trusted root, in its validity period, for the host name.
    pub valid: bool,
    /// The chain does not lead to a trusted root (webpki's reason), regardless of dates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untrusted: Option<String>,
    pub expired: bool,
    pub not_yet_valid: bool,
    /// The host name the probe was given is not among the certificate's names.
    pub name_mismatch: bool,
    #[serde(skip)]
    pub not_after_unix: Option<i64>,
}

/// The trust anchors: webpki-roots (Mozilla's list) plus `--ca-file`.
pub fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
        let mut n = 0;
        for c in certs {
            let c = c.map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            roots
                .add(c)
                .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!(
                "--ca-file {}: no PEM certificate in it",
                path.display()
            ));
        }
    }
    Ok(roots)
}

/// A client configuration whose verifier records and lets the handshake go on; `seen` gets
/// the presented chain of every handshake.
pub fn config(roots: RootCertStore) -> Result<(Arc<ClientConfig>, Recorder), String> {
    let provider = Arc::new(ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let seen = Recorder::default();
    let verifier = Arc::new(Recording {
        inner,
        provider: provider.clone(),
        seen: seen.clone(),
    });
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((Arc::new(cfg), seen))
}

/// The chain of the last handshake (end entity first).
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<CertificateDer<'static>>>>);

impl Recorder {
    pub fn take(&self) -> Vec<CertificateDer<'static>> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    seen: Recorder,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut v) = self.seen.0.lock() {
            *v = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
        }
        // Judged after the handshake (assess); the handshake itself must go on.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Judge a presented chain: trust (at a time inside its validity, so that an expired
/// certificate from a good CA is not also called untrusted), dates, and the name.
pub fn assess(
    roots: &RootCertStore,
    chain: &[CertificateDer<'static>],
    host: &str,
    now: i64,
) -> Option<Certificate> {
    let ee_der = chain.first()?;
    let f = x509::fields(ee_der);
    let ee = webpki::EndEntityCert::try_from(ee_der).ok();
    let names = ee
        .as_ref()
        .map(|c| c.valid_dns_names().map(String::from).collect())
        .unwrap_or_default();
    let expired = f.not_after.is_some_and(|t| now > t);
    let not_yet_valid = f.not_before.is_some_and(|t| now < t);
    // A time the certificate is valid at: its own notBefore when it is out of date.
    let at = if expired || not_yet_valid {
        f.not_before.unwrap_or(now)
    } else {
        now
    };
    let untrusted = match &ee {
        None => Some("the certificate cannot be parsed".to_string()),
        Some(c) => chain_error(roots, c, &chain[1..], at),
    };
    let name_mismatch = match (&ee, ServerName::try_from(host.to_string())) {
        (Some(c), Ok(n)) => c.verify_is_valid_for_subject_name(&n).is_err(),
        _ => true,
    };
    Some(Certificate {
        subject: f.common_name.clone(),
        names,
        not_before: f.not_before.map(x509::format_time),
        not_after: f.not_after.map(x509::format_time),
        valid: untrusted.is_none() && !expired && !not_yet_valid && !name_mismatch,
        untrusted,
        expired,
        not_yet_valid,
        name_mismatch,
        not_after_unix: f.not_after,
    })
}

fn chain_error(
    roots: &RootCertStore,
    ee: &webpki::EndEntityCert<'_>,
    intermediates: &[CertificateDer<'static>],
    at: i64,
) -> Option<String> {
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at.max(0) as u64));
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &roots.roots,
        intermediates,
        time,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .err()
    .map(|e| match e {
        webpki::Error::UnknownIssuer => {
            "issued by a CA the probe does not trust (self-signed, or a missing intermediate certificate)".to_string()
        }
        other => other.to_string(),
    })
}
