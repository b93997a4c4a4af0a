//! Partner Center application-consent models (§3 of the reference).

use serde::{Deserialize, Serialize};

/// One resource's delegated scopes in a consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationGrant {
    /// The resource API's appId, e.g. Microsoft Graph `00000003-0000-0000-c000-000000000000`.
    pub enterprise_application_id: String,
    /// Comma-separated permission names, e.g. `Directory.Read.All,User.Read.All`.
    pub scope: String,
}

/// An application consent (request and response body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationConsent {
    /// The partner's app (client) id; must equal the token's app id.
    pub application_id: String,
    /// Optional display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The grants.
    #[serde(default)]
    pub application_grants: Vec<ApplicationGrant>,
}

impl ApplicationGrant {
    /// A grant from a resource appId and scope names (joined with commas).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(resource_app_id: &str, scopes: I) -> Self {
        let scope = scopes
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .collect::<Vec<_>>()
            .join(",");
        ApplicationGrant {
            enterprise_application_id: resource_app_id.to_string(),
            scope,
        }
    }
}
