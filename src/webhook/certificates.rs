//! The certificate that signs Partner Center's events: where it may come from, fetching it, and
//! whether to trust it.
//!
//! Contract:
//! - [`CertificatePolicy::allowed_url`]: the `X-MS-Certificate-Url` must start with one of the
//!   configured prefixes (default `https://3psostorageacct.blob.core.windows.net/cert/`, where
//!   Microsoft publishes it) — same scheme, host and port, the path under the prefix's path,
//!   ending `.cer`, of letters, digits, `.`, `_`, `-` and `/` only — and carry no user, query or
//!   fragment. Nothing else is ever fetched, so an event cannot make the operator reach any
//!   other address.
//! - [`CertificateStore::get`] fetches it once (no redirects, 10 s timeout, at most
//!   [`MAX_CERTIFICATE_BYTES`]) and keeps the bytes for [`KEEP_FOR`]; a failed fetch is not tried
//!   again for [`RETRY_AFTER`], so a flood of events naming a missing certificate costs one
//!   fetch, not one per event.
//! - [`CertificatePolicy::trust`]: on every use, the certificate must chain to one of the
//!   configured trust anchors (a PEM bundle: Microsoft's roots and the issuing CAs; every
//!   certificate in it serves both as an anchor and as an intermediate), be valid now, allow
//!   server authentication if it names extended key usages, and be issued by the configured
//!   organization (`O=` of its issuer, default `Microsoft Corporation`, as Microsoft's sample
//!   checks). The signature over the body is then checked with its key
//!   ([`TrustedCertificate::verify`], RSA PKCS#1 v1.5 with SHA-256).

use reqwest::Url;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where Microsoft publishes the certificate that signs Partner Center's events.
pub const MICROSOFT_CERTIFICATE_PREFIX: &str =
    "https://3psostorageacct.blob.core.windows.net/cert/";

/// The organization that issues Microsoft's signing certificate.
pub const MICROSOFT_ORGANIZATION: &str = "Microsoft Corporation";

/// The largest certificate fetched.
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

/// How long a fetched certificate's bytes are kept (its chain is checked on every use).
pub const KEEP_FOR: Duration = Duration::from_secs(3600);

/// How long a failed fetch is remembered before the URL is fetched again.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Why a certificate is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The URL is not one the policy allows.
    #[error("certificate URL refused: {0}")]
    UrlRefused(String),
    /// It could not be fetched (or was fetched recently without success).
    #[error("certificate unavailable: {0}")]
    Unavailable(String),
    /// It was fetched but is not trusted.
    #[error("certificate not trusted: {0}")]
    Untrusted(String),
}

/// What makes a signing certificate acceptable.
#[derive(Debug, Clone)]
pub struct CertificatePolicy {
    prefixes: Vec<Url>,
    anchors: Vec<CertificateDer<'static>>,
    organization: String,
}

impl CertificatePolicy {
    /// A policy from the allowed URL prefixes, the trust-anchor bundle (PEM) and the issuing
    /// organization; the error names what is wrong.
    pub fn new(prefixes: &[String], anchors_pem: &str, organization: &str) -> Result<Self, String> {
        let prefixes = prefixes
            .iter()
            .map(|p| parse_prefix(p))
            .collect::<Result<Vec<_>, _>>()?;
        if prefixes.is_empty() {
            return Err("at least one certificate URL prefix is needed".into());
        }
        let anchors = pem_certificates(anchors_pem)?;
        if anchors.is_empty() {
            return Err("the trust-anchor bundle holds no CERTIFICATE".into());
        }
        Ok(CertificatePolicy {
            prefixes,
            anchors,
            organization: organization.to_string(),
        })
    }

    /// The URL, when the policy allows fetching it.
    pub fn allowed_url(&self, text: &str) -> Result<Url, CertificateError> {
        let refuse = |why: &str| CertificateError::UrlRefused(why.to_string());
        let url = Url::parse(text).map_err(|_| refuse("not an absolute URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("it carries credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(refuse("it carries a query or fragment"));
        }
        let path = url.path();
        let plain = path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
        if !plain || path.contains("..") || !path.ends_with(".cer") {
            return Err(refuse("its path is not a plain `.cer` file name"));
        }
        let under = |p: &Url| {
            p.scheme() == url.scheme()
                && p.host_str() == url.host_str()
                && p.port_or_known_default() == url.port_or_known_default()
                && path.starts_with(p.path())
        };
        if !self.prefixes.iter().any(under) {
            return Err(refuse(
                "it is not under an allowed prefix (--webhook-certificate-url-prefix)",
            ));
        }
        Ok(url)
    }

    /// Checks `der` as the signing certificate now: its chain, validity, usage and issuer.
    pub fn trust(&self, der: &CertificateDer<'_>) -> Result<TrustedCertificate, CertificateError> {
        let untrusted = |why: String| CertificateError::Untrusted(why);
        let anchors: Vec<TrustAnchor<'_>> = self
            .anchors
            .iter()
            .filter_map(|a| webpki::anchor_from_trusted_cert(a).ok())
            .collect();
        let leaf = webpki::EndEntityCert::try_from(der)
            .map_err(|e| untrusted(format!("not an X.509 certificate ({e})")))?;
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &self.anchors,
            UnixTime::now(),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| untrusted(format!("it does not chain to a trust anchor ({e:?})")))?;
        let issuer_orgs = issuer_organizations(der)?;
        if !issuer_orgs.iter().any(|o| o == &self.organization) {
            return Err(untrusted(format!(
                "its issuer's organization is {issuer_orgs:?}, not {:?}",
                self.organization
            )));
        }
        Ok(TrustedCertificate {
            der: der.clone().into_owned(),
        })
    }
}

/// A certificate that passed [`CertificatePolicy::trust`].
#[derive(Debug, Clone)]
pub struct TrustedCertificate {
    der: CertificateDer<'static>,
}

impl TrustedCertificate {
    /// Whether `signature` is its key's RSA-SHA256 signature over `body`.
    pub fn verify(&self, body: &[u8], signature: &[u8]) -> bool {
        webpki::EndEntityCert::try_from(&self.der)
            .and_then(|leaf| {
                leaf.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, body, signature)
            })
            .is_ok()
    }
}

fn parse_prefix(text: &str) -> Result<Url, String> {
    let url = Url::parse(text)
        .map_err(|e| format!("certificate URL prefix {text:?} is not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(format!(
            "certificate URL prefix {text:?} must be an http(s) URL with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "certificate URL prefix {text:?} must not carry a query, fragment or user"
        ));
    }
    Ok(url)
}

/// The certificates of a PEM bundle (other blocks are skipped).
pub fn pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certificates = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| format!("the trust-anchor bundle is not PEM ({e})"))?;
        if block.label == "CERTIFICATE" {
            certificates.push(CertificateDer::from(block.contents));
        }
    }
    Ok(certificates)
}

fn issuer_organizations(der: &CertificateDer<'_>) -> Result<Vec<String>, CertificateError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CertificateError::Untrusted(format!("not an X.509 certificate ({e})")))?;
    Ok(cert
        .issuer()
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect())
}

enum Cached {
    Fetched(CertificateDer<'static>, Instant),
    Failed(String, Instant),
}

/// Fetches and keeps signing certificates.
pub struct CertificateStore {
    policy: CertificatePolicy,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
}

impl CertificateStore {
    /// A store for `policy`.
    pub fn new(policy: CertificatePolicy) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()?;
        Ok(CertificateStore {
            policy,
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The trusted signing certificate at `url_text`.
    pub async fn get(&self, url_text: &str) -> Result<TrustedCertificate, CertificateError> {
        let url = self.policy.allowed_url(url_text)?;
        let der = match self.cached(url.as_str())? {
            Some(der) => der,
            None => {
                let fetched = self.fetch(&url).await;
                self.remember(url.as_str(), &fetched);
                fetched?
            }
        };
        self.policy.trust(&der)
    }

    fn cached(&self, key: &str) -> Result<Option<CertificateDer<'static>>, CertificateError> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(key) {
            Some(Cached::Fetched(der, at)) if at.elapsed() < KEEP_FOR => Ok(Some(der.clone())),
            Some(Cached::Failed(why, at)) if at.elapsed() < RETRY_AFTER => {
                Err(CertificateError::Unavailable(why.clone()))
            }
            _ => Ok(None),
        }
    }

    fn remember(&self, key: &str, fetched: &Result<CertificateDer<'static>, CertificateError>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let entry = match fetched {
            Ok(der) => Cached::Fetched(der.clone(), Instant::now()),
            Err(e) => Cached::Failed(e.to_string(), Instant::now()),
        };
        cache.insert(key.to_string(), entry);
    }

    async fn fetch(&self, url: &Url) -> Result<CertificateDer<'static>, CertificateError> {
        let unavailable = |why: String| CertificateError::Unavailable(why);
        let mut response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| unavailable(format!("GET {url} failed ({e})")))?;
        if !response.status().is_success() {
            return Err(unavailable(format!(
                "GET {url} answered {}",
                response.status()
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(format!("reading {url} failed ({e})")))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_CERTIFICATE_BYTES {
                return Err(unavailable(format!(
                    "{url} is larger than {MAX_CERTIFICATE_BYTES} bytes"
                )));
            }
        }
        Ok(CertificateDer::from(der_or_pem(bytes)))
    }
}

/// A `.cer` is DER, or sometimes PEM: the DER either way.
fn der_or_pem(bytes: Vec<u8>) -> Vec<u8> {
    match pem_certificates(&String::from_utf8_lossy(&bytes)) {
        Ok(mut certs) if !certs.is_empty() => certs.remove(0).to_vec(),
        _ => bytes,
    }
}

#[cfg(test)]
#[path = "certificates_tests.rs"]
mod tests;
