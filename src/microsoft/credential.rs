//! The partner's credentials: the app's client credential (a client secret or a certificate) and
//! the GDAP user's refresh token. Contract: neither prints key material or a secret (`Debug`
//! renders `***` for secrets and only the certificate's thumbprint).

use crate::microsoft::certificate::{CertificateError, ClientCertificate};
use crate::microsoft::secret::Secret;
use chrono::{DateTime, Utc};
use std::fmt;
use std::sync::Arc;

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
    ) -> Result<ClientCredential, CertificateError> {
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
