//! Certificate credentials: the partner app proves its identity with a certificate instead of a
//! client secret, by signing a short-lived client assertion for every token request.
//!
//! Contract:
//! - [`ClientCertificate::from_pem`] accepts an X.509 certificate (PEM; the first certificate of a
//!   chain is the app's) and its RSA private key (PEM, PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1
//!   `BEGIN RSA PRIVATE KEY`, unencrypted, at least 2048 bits). It refuses, with a message that
//!   names the part and the rule, anything else: no PEM, a non-RSA certificate (Entra signs and
//!   verifies client assertions with RSA only), an encrypted key, a key that does not belong to
//!   the certificate. A certificate outside its validity period is accepted here (Entra says
//!   AADSTS700027, which the token client reports), but [`ClientCertificate::not_after`] tells.
//! - [`ClientCertificate::assertion`] builds the JWT Entra expects (RFC 7523, Microsoft's
//!   "certificate credentials"): header `alg` RS256, `typ` JWT, `x5t#S256` = base64url of the
//!   SHA-256 of the certificate's DER; claims `aud` = the token endpoint, `iss` = `sub` = the
//!   client id, a fresh `jti`, `nbf` = `iat` = now, `exp` = now + 10 minutes.
//! - Nothing here prints key material: `Debug` shows the thumbprint and the validity only; the
//!   assertion is returned as a [`Secret`].

use crate::microsoft::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;
use ring::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;

/// `client_assertion_type` of a signed JWT client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion is valid (Microsoft's libraries use 10 minutes as well).
pub const ASSERTION_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Why a certificate credential was refused. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The certificate text holds no PEM certificate, or it does not parse.
    #[error("the certificate is not a PEM X.509 certificate (-----BEGIN CERTIFICATE-----): {0}")]
    Certificate(String),
    /// The certificate's key is not RSA.
    #[error(
        "the certificate holds a {0} public key; Entra client assertions need an RSA certificate (2048 bits or more)"
    )]
    NotRsa(String),
    /// The key text holds no usable PEM private key.
    #[error(
        "the private key is not an unencrypted PEM RSA private key (a PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY` block, 2048 bits or more): {0}"
    )]
    Key(String),
    /// The key is encrypted.
    #[error(
        "the private key is encrypted; store it unencrypted (export it with `openssl pkey -in key.pem -out plain.pem`) — the Kubernetes Secret is what protects it"
    )]
    EncryptedKey,
    /// The key does not belong to the certificate.
    #[error("the private key does not belong to the certificate (their public keys differ)")]
    Mismatch,
}

/// A certificate credential: the app's certificate and its RSA private key.
pub struct ClientCertificate {
    key: RsaKeyPair,
    thumbprint_sha256: String,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint_sha256)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// Parses and checks a certificate and its private key (see the module docs).
    pub fn from_pem(
        certificate_pem: &str,
        key_pem: &str,
    ) -> Result<ClientCertificate, CertificateError> {
        let der = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|e| CertificateError::Certificate(e.to_string()))?;
        let parsed = ParsedCertificate::from_der(der.as_ref())?;
        let key = rsa_key(key_pem)?;
        if key.public_key().as_ref() != parsed.rsa_public_key.as_slice() {
            return Err(CertificateError::Mismatch);
        }
        Ok(ClientCertificate {
            key,
            thumbprint_sha256: thumbprint_sha256(der.as_ref()),
            not_before: parsed.not_before,
            not_after: parsed.not_after,
        })
    }

    /// The `x5t#S256` thumbprint: base64url (no padding) of the SHA-256 of the certificate's DER.
    pub fn thumbprint_sha256(&self) -> &str {
        &self.thumbprint_sha256
    }

    /// Start of the certificate's validity.
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    /// End of the certificate's validity: Entra refuses it afterwards (AADSTS700027).
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// A signed client assertion for `client_id` at the token endpoint `audience`, valid from
    /// `now` for [`ASSERTION_LIFETIME`].
    pub fn assertion(&self, client_id: &str, audience: &str, now: DateTime<Utc>) -> Secret {
        let header =
            serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t#S256": self.thumbprint_sha256});
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now.timestamp(),
            "iat": now.timestamp(),
            "exp": (now + ASSERTION_LIFETIME).timestamp(),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        // Signing with a parsed RSA key into a buffer of the modulus length cannot fail.
        let _ = self.key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        );
        Secret::new(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The SHA-1 thumbprint of a certificate's DER, as Graph's `keyCredential.customKeyIdentifier`
/// carries it (standard base64 of the 20 bytes). Not a security measure: only a name.
pub fn thumbprint_sha1_base64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        der,
    ))
}

/// The DER of the first certificate in a PEM text.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, CertificateError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|d| d.as_ref().to_vec())
        .map_err(|e| CertificateError::Certificate(e.to_string()))
}

/// base64url (no padding) of the SHA-256 of a certificate's DER: its `x5t#S256`.
pub fn thumbprint_sha256(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, der))
}

/// What the credential and the sandbox need from an X.509 certificate.
#[derive(Debug, Clone)]
pub struct ParsedCertificate {
    /// The RSA public key as DER `RSAPublicKey` (PKCS#1), as ring verifies with it.
    pub rsa_public_key: Vec<u8>,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
}

impl ParsedCertificate {
    /// Parses a DER certificate holding an RSA key.
    pub fn from_der(der: &[u8]) -> Result<ParsedCertificate, CertificateError> {
        use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| CertificateError::Certificate(e.to_string()))?;
        let spki = cert.public_key();
        if spki.algorithm.algorithm != OID_PKCS1_RSAENCRYPTION {
            return Err(CertificateError::NotRsa(
                spki.algorithm.algorithm.to_id_string(),
            ));
        }
        let time = |t: x509_parser::time::ASN1Time| {
            DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default()
        };
        Ok(ParsedCertificate {
            rsa_public_key: spki.subject_public_key.data.to_vec(),
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
        })
    }

    /// Parses the first certificate of a PEM text.
    pub fn from_pem(pem: &str) -> Result<(ParsedCertificate, Vec<u8>), CertificateError> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| CertificateError::Certificate(e.to_string()))?;
        Ok((ParsedCertificate::from_der(der.as_ref())?, der.to_vec()))
    }
}

fn rsa_key(pem: &str) -> Result<RsaKeyPair, CertificateError> {
    if pem.contains("ENCRYPTED PRIVATE KEY") || pem.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(CertificateError::EncryptedKey);
    }
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| CertificateError::Key(e.to_string()))?;
    let parsed = match &key {
        PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
        _ => {
            return Err(CertificateError::Key(
                "it is not an RSA key (an EC key?)".into(),
            ));
        }
    };
    parsed.map_err(|e| CertificateError::Key(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../sandbox/client-cert.pem");
    const KEY: &str = include_str!("../sandbox/client-key.pem");
    const OTHER_KEY: &str = include_str!("../sandbox/signing-key.pem");

    #[test]
    fn parses_the_sandbox_test_certificate() {
        let c = ClientCertificate::from_pem(CERT, KEY).unwrap();
        assert_eq!(
            c.thumbprint_sha256(),
            "WA1mE4otcIm7ieSBoVoJ3nPeqKL0fQMprZQVUmnh664"
        );
        assert_eq!(c.not_after().to_rfc3339(), "2125-01-01T00:00:00+00:00");
        let debug = format!("{c:?}");
        assert!(!debug.contains("PRIVATE"), "{debug}");
    }

    #[test]
    fn refuses_bad_input_naming_the_rule() {
        assert!(matches!(
            ClientCertificate::from_pem("not pem", KEY),
            Err(CertificateError::Certificate(_))
        ));
        assert!(matches!(
            ClientCertificate::from_pem(CERT, "not pem"),
            Err(CertificateError::Key(_))
        ));
        assert_eq!(
            ClientCertificate::from_pem(CERT, OTHER_KEY).unwrap_err(),
            CertificateError::Mismatch
        );
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(
            ClientCertificate::from_pem(CERT, encrypted).unwrap_err(),
            CertificateError::EncryptedKey
        );
    }

    #[test]
    fn refuses_a_non_rsa_certificate() {
        let ec = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&ec)
            .unwrap();
        let err = ClientCertificate::from_pem(&cert.pem(), &ec.serialize_pem()).unwrap_err();
        assert!(matches!(err, CertificateError::NotRsa(_)), "{err}");
    }

    #[test]
    fn the_assertion_has_entras_shape_and_verifies_against_the_certificate() {
        let c = ClientCertificate::from_pem(CERT, KEY).unwrap();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let jwt = c.assertion("client-1", "https://login.example/t/oauth2/v2.0/token", now);
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        let part = |i: usize| -> serde_json::Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[i]).unwrap()).unwrap()
        };
        assert_eq!(
            part(0),
            serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t#S256": c.thumbprint_sha256()})
        );
        let claims = part(1);
        assert_eq!(claims["aud"], "https://login.example/t/oauth2/v2.0/token");
        assert_eq!(
            (claims["iss"].clone(), claims["sub"].clone()),
            ("client-1".into(), "client-1".into())
        );
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(),
            600
        );
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() == 36));
        let (parsed, _) = ParsedCertificate::from_pem(CERT).unwrap();
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            parsed.rsa_public_key,
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        key.verify(
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        )
        .expect("signature verifies with the certificate's key");
    }
}
