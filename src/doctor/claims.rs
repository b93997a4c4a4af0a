//! What `doctor` reads from an access token: the claims of its payload, decoded without
//! checking the signature (the token came straight from Entra over TLS, and only the resource
//! it is meant for may rely on it; here it only explains). The token itself is never kept,
//! printed or logged.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The claims `doctor` looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenClaims {
    /// The signed-in user (`upn`, else `unique_name`, else `preferred_username`).
    pub user: Option<String>,
    /// How the user signed in (`amr`); `None` when the claim is absent.
    pub amr: Option<Vec<String>>,
    /// Delegated scopes (`scp`, split on spaces).
    pub scopes: Vec<String>,
    /// The tenant that issued it.
    pub tenant: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    upn: Option<String>,
    unique_name: Option<String>,
    preferred_username: Option<String>,
    amr: Option<Vec<String>>,
    scp: Option<String>,
    tid: Option<String>,
}

impl TokenClaims {
    /// Decodes a JWT's payload; `None` when it is not a JWT with a JSON payload.
    pub fn decode(token: &str) -> Option<TokenClaims> {
        let payload = token.split('.').nth(1)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        let raw: Raw = serde_json::from_slice(&bytes).ok()?;
        Some(TokenClaims {
            user: raw.upn.or(raw.unique_name).or(raw.preferred_username),
            amr: raw.amr,
            scopes: raw
                .scp
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            tenant: raw.tid,
        })
    }

    /// Whether the sign-in used multi-factor authentication (`amr` has `mfa` or `ngcmfa`).
    pub fn has_mfa(&self) -> bool {
        self.amr
            .as_ref()
            .is_some_and(|a| a.iter().any(|m| m == "mfa" || m == "ngcmfa"))
    }

    /// Whether `scp` holds one of `any_of` (case-insensitive).
    pub fn has_any_scope(&self, any_of: &[&str]) -> bool {
        any_of
            .iter()
            .any(|w| self.scopes.iter().any(|s| s.eq_ignore_ascii_case(w)))
    }

    /// The user for messages.
    pub fn user_or_default(&self) -> &str {
        self.user.as_deref().unwrap_or("the signed-in user")
    }
}

#[cfg(test)]
pub(crate) fn token_with(payload: serde_json::Value) -> String {
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_are_read_from_the_payload() {
        let token = token_with(json!({"upn": "a@p.example", "amr": ["pwd", "mfa"],
            "scp": "User.Read  DelegatedAdminRelationship.ReadWrite.All", "tid": "t"}));
        let c = TokenClaims::decode(&token).unwrap();
        assert_eq!(c.user.as_deref(), Some("a@p.example"));
        assert!(c.has_mfa());
        assert_eq!(c.scopes.len(), 2);
        assert!(c.has_any_scope(&["delegatedadminrelationship.readwrite.all"]));
        assert!(!c.has_any_scope(&["Directory.Read.All"]));
    }

    #[test]
    fn fallbacks_and_refusals() {
        let c = TokenClaims::decode(&token_with(
            json!({"preferred_username": "b", "amr": ["pwd"]}),
        ))
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("b"));
        assert!(!c.has_mfa());
        assert!(c.scopes.is_empty());
        assert_eq!(TokenClaims::decode("opaque-token"), None);
        assert_eq!(TokenClaims::decode("a.!!!.c"), None);
    }
}
