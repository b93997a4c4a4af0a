//! What is checked before a refresh token is stored: the tokens' claims (the tenant, the user,
//! MFA, the delegated permissions) and whether Partner Center accepts the user. A token that
//! the operator's calls would be refused with is never stored; each refusal says why and what
//! to do.
//!
//! The claims are read from the JWT payloads without verifying their signatures: the tokens
//! come straight from the token endpoint over TLS in answer to this client's own request, which
//! OpenID Connect Core 1.0 §3.1.3.7 (item 6) accepts in place of a signature check. They decide
//! nothing about access; Graph and Partner Center verify them on every call.

use super::oauth::TokenSet;
use crate::microsoft::{MicrosoftClients, Reason};
use base64::Engine as _;
use serde_json::{Map, Value};

/// The delegated Graph permissions the operator's GDAP writes need in the partner tenant.
pub const GDAP_WRITE_SCOPES: [&str; 1] = ["DelegatedAdminRelationship.ReadWrite.All"];

/// Any one of these lets the operator read the user's groups (`GET /me/memberOf`), which the
/// AppConsent controller needs; a missing one is a warning, not a refusal.
pub const MEMBER_OF_SCOPES: [&str; 4] = [
    "User.Read",
    "GroupMember.Read.All",
    "Directory.Read.All",
    "Directory.AccessAsUser.All",
];

/// `amr` values with which Entra says the sign-in used a second factor.
const MFA_METHODS: [&str; 2] = ["mfa", "ngcmfa"];

/// Who signed in, as the tokens tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The tenant the tokens are for (`tid`).
    pub tenant: String,
    /// The user's sign-in name (`preferred_username`, `upn` or `unique_name`; else the `oid`).
    pub user: String,
    /// How the user authenticated (`amr`).
    pub amr: Vec<String>,
    /// The Graph token's delegated permissions (`scp`).
    pub scopes: Vec<String>,
}

impl SignedIn {
    /// True when `amr` shows a second factor.
    pub fn used_mfa(&self) -> bool {
        self.amr
            .iter()
            .any(|m| MFA_METHODS.iter().any(|x| m.eq_ignore_ascii_case(x)))
    }

    /// The permissions of `wanted` that the Graph token lacks.
    pub fn missing_scopes<'a>(&self, wanted: &[&'a str]) -> Vec<&'a str> {
        wanted
            .iter()
            .filter(|w| !self.scopes.iter().any(|s| s.eq_ignore_ascii_case(w)))
            .copied()
            .collect()
    }
}

/// Why a token is not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The user signed in to another tenant (a guest account, or the wrong tenant id).
    #[error(
        "{user} signed in to tenant {signed_in}, not the partner tenant {partner}: sign in with a user of the partner tenant itself (not a guest from another tenant), or correct --partner-tenant-id"
    )]
    WrongTenant {
        /// The signed-in user.
        user: String,
        /// `tid`.
        signed_in: String,
        /// The partner tenant.
        partner: String,
    },
    /// The sign-in used no second factor.
    #[error(
        "{user} signed in without MFA (amr: {amr}). Partner Center refuses App+User calls without MFA since April 2026: sign in again with a second factor (register an MFA method for {user}, or have Conditional Access require MFA for the app)"
    )]
    NoMfa {
        /// The signed-in user.
        user: String,
        /// The `amr` values seen.
        amr: String,
    },
    /// The Graph token lacks permissions the operator's GDAP writes need.
    #[error(
        "the Graph token of {user} lacks the delegated permission(s) {missing} that the operator's GDAP writes need: add them to the app registration (API permissions → Microsoft Graph → Delegated) and grant admin consent in the partner tenant, then run login again"
    )]
    MissingScopes {
        /// The signed-in user.
        user: String,
        /// The missing permissions, comma-separated.
        missing: String,
    },
    /// Partner Center answered that the sign-in used no MFA.
    #[error(
        "Partner Center refuses {user}: the sign-in did not use MFA (code 900421). Partner Center refuses App+User calls without MFA since April 2026: sign in again with a second factor (register an MFA method for {user})"
    )]
    PartnerCenterMfa {
        /// The signed-in user.
        user: String,
    },
    /// Partner Center refused the user (403).
    #[error(
        "Partner Center refuses {user} (403): add the user to the AdminAgents group of the partner tenant (the GDAP user must be an admin agent), then run login again"
    )]
    NotAdminAgent {
        /// The signed-in user.
        user: String,
    },
}

/// The payload of a JWT as a JSON object (signature not verified: see the module docs).
pub fn claims(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn text<'a>(maps: &[&'a Map<String, Value>], names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| {
        maps.iter()
            .find_map(|m| m.get(*name).and_then(Value::as_str))
            .filter(|v| !v.is_empty())
    })
}

/// Reads who signed in from the Graph access token and the id token.
pub fn signed_in(tokens: &TokenSet) -> anyhow::Result<SignedIn> {
    let access = claims(tokens.access_token.expose()).ok_or_else(|| {
        anyhow::anyhow!(
            "the Graph access token is not a readable JWT, so MFA cannot be checked; nothing was stored — check --login-url points at Entra (or the sandbox)"
        )
    })?;
    let id = tokens
        .id_token
        .as_ref()
        .and_then(|t| claims(t.expose()))
        .unwrap_or_default();
    let both = [&id, &access];
    let tenant = text(&both, &["tid"]).unwrap_or_default().to_string();
    let user = text(
        &[&id, &access],
        &["preferred_username", "upn", "unique_name", "email", "oid"],
    )
    .unwrap_or("(unknown user)")
    .to_string();
    let mut amr: Vec<String> = Vec::new();
    for map in [&access, &id] {
        if let Some(Value::Array(values)) = map.get("amr") {
            for v in values.iter().filter_map(Value::as_str) {
                if !amr.iter().any(|a| a == v) {
                    amr.push(v.to_string());
                }
            }
        }
    }
    let scopes = access
        .get("scp")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    Ok(SignedIn {
        tenant,
        user,
        amr,
        scopes,
    })
}

/// The checks on the claims, in the order a person fixes them.
pub fn check_claims(who: &SignedIn, partner_tenant_id: &str) -> Result<(), Refusal> {
    if !who.tenant.eq_ignore_ascii_case(partner_tenant_id.trim()) {
        return Err(Refusal::WrongTenant {
            user: who.user.clone(),
            signed_in: if who.tenant.is_empty() {
                "(none named)".into()
            } else {
                who.tenant.clone()
            },
            partner: partner_tenant_id.trim().to_string(),
        });
    }
    if !who.used_mfa() {
        return Err(Refusal::NoMfa {
            user: who.user.clone(),
            amr: if who.amr.is_empty() {
                "none".into()
            } else {
                who.amr.join(", ")
            },
        });
    }
    let missing = who.missing_scopes(&GDAP_WRITE_SCOPES);
    if !missing.is_empty() {
        return Err(Refusal::MissingScopes {
            user: who.user.clone(),
            missing: missing.join(", "),
        });
    }
    Ok(())
}

/// Asks Partner Center for one customer as the user (`GET /v1/customers?size=1`), with a
/// Partner Center token redeemed from the new refresh token. A rotated refresh token reaches
/// the clients' rotation callback.
pub async fn partner_center_accepts(
    clients: &MicrosoftClients,
    user: &str,
) -> anyhow::Result<Result<(), Refusal>> {
    let token = clients.tokens.partner_center();
    match clients.partner_center.customers_first_page(&token, 1).await {
        Ok(_) => Ok(Ok(())),
        Err(e) if e.reason() == Reason::MfaRequired => Ok(Err(Refusal::PartnerCenterMfa {
            user: user.to_string(),
        })),
        Err(e) if e.reason() == Reason::PartnerCenterForbidden || e.status() == Some(403) => {
            Ok(Err(Refusal::NotAdminAgent {
                user: user.to_string(),
            }))
        }
        Err(e) => Err(anyhow::anyhow!(
            "could not ask Partner Center whether it accepts {user}: {e}; nothing was stored — run login again"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microsoft::Secret;
    use serde_json::json;

    fn jwt(payload: Value) -> String {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            enc.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
            enc.encode(payload.to_string())
        )
    }

    fn tokens(access: Value, id: Option<Value>) -> TokenSet {
        TokenSet {
            access_token: Secret::new(jwt(access)),
            refresh_token: Some(Secret::new("rt")),
            id_token: id.map(|v| Secret::new(jwt(v))),
        }
    }

    const TENANT: &str = "8777b240-c6f0-4469-9e98-a3205431b836";

    fn good() -> Value {
        json!({"tid": TENANT, "upn": "admin@partner.example", "amr": ["pwd", "mfa"],
               "scp": "DelegatedAdminRelationship.ReadWrite.All User.Read"})
    }

    #[test]
    fn a_good_sign_in_passes() {
        let who = signed_in(&tokens(good(), None)).unwrap();
        assert_eq!(who.user, "admin@partner.example");
        assert!(who.used_mfa());
        check_claims(&who, &TENANT.to_uppercase()).unwrap();
        assert!(who.missing_scopes(&MEMBER_OF_SCOPES).len() < MEMBER_OF_SCOPES.len());
    }

    #[test]
    fn the_id_token_names_the_user_and_amr_comes_from_either() {
        let mut access = good();
        access["amr"] = json!(["pwd"]);
        let id =
            json!({"tid": TENANT, "preferred_username": "ops@partner.example", "amr": ["ngcmfa"]});
        let who = signed_in(&tokens(access, Some(id))).unwrap();
        assert_eq!(who.user, "ops@partner.example");
        assert!(who.used_mfa(), "{:?}", who.amr);
    }

    #[test]
    fn without_mfa_the_refusal_names_mfa_and_the_user() {
        let mut access = good();
        access["amr"] = json!(["pwd"]);
        let who = signed_in(&tokens(access, None)).unwrap();
        let refusal = check_claims(&who, TENANT).unwrap_err();
        let text = refusal.to_string();
        assert!(matches!(refusal, Refusal::NoMfa { .. }), "{text}");
        assert!(
            text.contains("without MFA")
                && text.contains("admin@partner.example")
                && text.contains("amr: pwd"),
            "{text}"
        );
    }

    #[test]
    fn another_tenant_is_refused() {
        let mut access = good();
        access["tid"] = json!("11111111-2222-3333-4444-555555555555");
        let who = signed_in(&tokens(access, None)).unwrap();
        let text = check_claims(&who, TENANT).unwrap_err().to_string();
        assert!(
            text.contains("11111111-2222") && text.contains(TENANT),
            "{text}"
        );
    }

    #[test]
    fn missing_gdap_permissions_are_named() {
        let mut access = good();
        access["scp"] = json!("User.Read DelegatedAdminRelationship.Read.All");
        let who = signed_in(&tokens(access, None)).unwrap();
        let text = check_claims(&who, TENANT).unwrap_err().to_string();
        assert!(
            text.contains("DelegatedAdminRelationship.ReadWrite.All"),
            "{text}"
        );
    }

    #[test]
    fn unreadable_tokens_are_an_error_not_a_pass() {
        let t = TokenSet {
            access_token: Secret::new("opaque"),
            refresh_token: None,
            id_token: None,
        };
        assert!(signed_in(&t).is_err());
        assert!(claims("a.!!!.c").is_none());
        assert!(claims("a.bnVsbA.c").is_none(), "null is not an object");
    }
}
