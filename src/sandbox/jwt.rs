//! Sandbox JWTs: the fixed RS256 signing key, its JWKS, and the claims of access tokens.
//!
//! Contract: [`Keys::sign`] produces compact RS256 JWTs with `kid` = [`KEY_ID`];
//! [`Keys::verify`] accepts exactly the tokens it signed (any change to header, claims or
//! signature fails). The key is a fixed test key checked into the repository: the sandbox is not a
//! security boundary.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use ring::rand::SystemRandom;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const SIGNING_KEY_PEM: &str = include_str!("signing-key.pem");
/// Key id of the signing key in the JWKS.
pub const KEY_ID: &str = "sandbox-signing-key-1";

/// The token signing key.
pub struct Keys {
    pair: RsaKeyPair,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl Keys {
    /// Loads the embedded sandbox key (a fixed test key: the sandbox is not a security boundary).
    pub fn load() -> anyhow::Result<Keys> {
        let b64: String = SIGNING_KEY_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(b64)?;
        let pair = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| anyhow::anyhow!("sandbox signing key: {e}"))?;
        let public: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        Ok(Keys {
            n: public.n,
            e: public.e,
            pair,
        })
    }

    /// Signs claims into a compact JWT.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": KEY_ID, "x5t": KEY_ID});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        // Signing with a valid key into a buffer of the modulus length cannot fail.
        let _ = self.pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        );
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Verifies a JWT's signature and returns its claims.
    pub fn verify(&self, jwt: &str) -> Option<Claims> {
        let (input, sig) = jwt.rsplit_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let key = RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        };
        key.verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
            .ok()?;
        let payload = input.split('.').nth(1)?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Value {
        json!({"keys": [{"kty": "RSA", "use": "sig", "kid": KEY_ID, "x5t": KEY_ID, "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&self.n), "e": URL_SAFE_NO_PAD.encode(&self.e)}]})
    }
}

/// Claims of a sandbox access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Audience (resource URI).
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Tenant the token is for.
    pub tid: String,
    /// Client app id.
    pub appid: String,
    /// Client app id (v2 name).
    pub azp: String,
    /// Object id: the user (delegated) or the client's service principal (app-only).
    pub oid: String,
    /// `user` or `app`.
    pub idtyp: String,
    /// User principal name (delegated only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// Delegated scopes, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// Application roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// How the user signed in (delegated only): `["pwd", "mfa"]` after MFA, `["pwd"]` without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// How the client authenticated: `1` client secret, `2` certificate (client assertion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appidacr: Option<String>,
    /// Token version.
    pub ver: String,
    /// Unique token id.
    pub uti: String,
}

impl Claims {
    /// Whether this is an app+user (delegated) token.
    pub fn is_delegated(&self) -> bool {
        self.idtyp == "user"
    }

    /// Whether the user's sign-in used multi-factor authentication (`amr` contains `mfa`).
    pub fn has_mfa(&self) -> bool {
        self.amr
            .as_ref()
            .is_some_and(|amr| amr.iter().any(|m| m == "mfa" || m == "ngcmfa"))
    }

    /// Whether the token carries one of these delegated scopes or app roles.
    pub fn has_any(&self, permissions: &[&str]) -> bool {
        let held: Vec<&str> = match (&self.scp, &self.roles) {
            (Some(scp), _) => scp.split(' ').collect(),
            (None, Some(roles)) => roles.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        permissions
            .iter()
            .any(|p| held.iter().any(|h| h.eq_ignore_ascii_case(p)))
    }
}

/// Claims of a new access token (no `upn`, `scp` or `roles` yet).
pub fn base_claims(
    aud: &str,
    iss: &str,
    tid: &str,
    appid: &str,
    oid: &str,
    idtyp: &str,
    lifetime: i64,
) -> Claims {
    let now = Utc::now().timestamp();
    Claims {
        aud: aud.into(),
        iss: iss.into(),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        tid: tid.into(),
        appid: appid.into(),
        azp: appid.into(),
        oid: oid.into(),
        idtyp: idtyp.into(),
        upn: None,
        scp: None,
        roles: None,
        amr: None,
        appidacr: None,
        ver: "1.0".into(),
        uti: uuid::Uuid::new_v4().simple().to_string(),
    }
}

#[cfg(test)]
mod tests {

    proptest::proptest! {
        /// Bearer tokens are outside data: whatever a client sends, verify refuses it without
        /// panicking, and a signed token with any one character changed is refused.
        #[test]
        fn arbitrary_and_tampered_tokens_are_refused(
            text in "\\PC{0,120}|[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,60}",
            at in proptest::prelude::any::<proptest::sample::Index>(),
            by in "[A-Za-z0-9_.=-]",
        ) {
            let keys = Keys::load().unwrap();
            proptest::prop_assert!(keys.verify(&text).is_none());
            let claims = base_claims("https://graph.microsoft.com", "iss", "t", "a", "o", "app", 60);
            let jwt = keys.sign(&serde_json::to_value(&claims).unwrap());
            let i = at.index(jwt.len());
            let tampered = format!("{}{by}{}", &jwt[..i], &jwt[i + 1..]);
            if tampered != jwt {
                proptest::prop_assert!(keys.verify(&tampered).is_none(), "{} accepted", tampered);
            }
        }
    }
    use super::*;

    #[test]
    fn signed_tokens_verify_and_tampered_ones_do_not() {
        let keys = Keys::load().unwrap();
        let claims = base_claims(
            "https://graph.microsoft.com",
            "iss",
            "t",
            "a",
            "o",
            "app",
            60,
        );
        let jwt = keys.sign(&serde_json::to_value(&claims).unwrap());
        assert_eq!(keys.verify(&jwt).unwrap().tid, "t");
        let mut parts: Vec<&str> = jwt.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"tid":"x"}"#);
        parts[1] = &forged;
        assert!(keys.verify(&parts.join(".")).is_none());
    }
}
