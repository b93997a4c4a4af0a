//! Secret values and the partner's credentials.
//!
//! Contract: a [`Secret`] never prints its value — `Debug` and `Display` both render `***` — and
//! the only way to read it is the explicit [`Secret::expose`]. Everything that holds a client
//! secret, a refresh token or an access token stores it as a `Secret`. A [`ClientCredential`] is
//! either a client secret or a certificate credential; neither prints key material.

use crate::microsoft::certificate::ClientCertificate;
use chrono::{DateTime, Utc};
use std::fmt;
use std::sync::Arc;

/// A secret string (client secret, refresh token, access token) that never prints its value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Call only where the value goes on the wire or into storage.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// How the partner's app proves its identity to Entra on every token request.
#[derive(Clone)]
pub enum ClientCredential {
    /// A client secret (sent as `client_secret`).
    Secret(Secret),
    /// A certificate and its private key: every token request carries a signed client assertion
    /// (`client_assertion_type` jwt-bearer, header `x5t#S256`).
    Certificate(Arc<ClientCertificate>),
}

impl ClientCredential {
    /// A certificate credential from PEM texts (see [`ClientCertificate::from_pem`]).
    pub fn certificate(
        certificate_pem: &str,
        key_pem: &str,
    ) -> Result<ClientCredential, crate::microsoft::certificate::CertificateError> {
        ClientCertificate::from_pem(certificate_pem, key_pem)
            .map(|c| ClientCredential::Certificate(Arc::new(c)))
    }

    /// `secret` or `certificate`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientCredential::Secret(_) => "secret",
            ClientCredential::Certificate(_) => "certificate",
        }
    }
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCredential::Secret(s) => f.debug_tuple("Secret").field(s).finish(),
            ClientCredential::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
        }
    }
}

impl From<Secret> for ClientCredential {
    fn from(secret: Secret) -> Self {
        ClientCredential::Secret(secret)
    }
}

/// A client secret.
impl From<&str> for ClientCredential {
    fn from(secret: &str) -> Self {
        ClientCredential::Secret(Secret::from(secret))
    }
}

/// The partner's credentials, as read from the credentials Secret (keys `partnerTenantId`,
/// `clientId`, `refreshToken`, and `clientSecret` or `clientCertificate` + `clientKey`).
#[derive(Clone, Debug)]
pub struct PartnerCredentials {
    /// The partner's Entra tenant id (GUID).
    pub partner_tenant_id: String,
    /// The partner's multi-tenant application (client) id.
    pub client_id: String,
    /// The application's client secret or certificate.
    pub client_credential: ClientCredential,
    /// The partner GDAP user's refresh token (rotated on every use).
    pub refresh_token: Secret,
    /// When the stored refresh token was issued, if known (drives the 60-day age warning).
    pub refresh_token_issued_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = PartnerCredentials {
            partner_tenant_id: "t".into(),
            client_id: "c".into(),
            client_credential: "the-client-secret".into(),
            refresh_token: "the-refresh-token".into(),
            refresh_token_issued_at: None,
        };
        let text = format!("{c:?}");
        assert!(!text.contains("the-client-secret"), "{text}");
        assert!(!text.contains("the-refresh-token"), "{text}");
        assert!(text.contains("***"));
    }

    #[test]
    fn certificate_credentials_debug_shows_no_key_material() {
        let credential = ClientCredential::certificate(
            include_str!("../sandbox/client-cert.pem"),
            include_str!("../sandbox/client-key.pem"),
        )
        .unwrap();
        let text = format!("{credential:?}");
        assert!(text.contains("x5t#S256"), "{text}");
        assert!(!text.contains("MII"), "no base64 DER: {text}");
        assert!(!text.to_ascii_lowercase().contains("key:"), "{text}");
    }
}
