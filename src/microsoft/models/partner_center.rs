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

/// A customer of the partner in Partner Center (`GET /v1/customers/{id}`), the fields the
/// operator reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerCustomer {
    /// The customer's id (its tenant id).
    pub id: String,
    /// The customer's company profile.
    #[serde(default)]
    pub company_profile: CompanyProfile,
}

/// A customer's company profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyProfile {
    /// The customer's tenant id.
    #[serde(default)]
    pub tenant_id: String,
    /// The customer's primary domain.
    #[serde(default)]
    pub domain: String,
    /// The customer's company name.
    #[serde(default)]
    pub company_name: String,
}

/// One page of `GET /v1/customers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerPage {
    /// How many customers the partner has in all.
    #[serde(default)]
    pub total_count: u64,
    /// The customers of this page.
    #[serde(default)]
    pub items: Vec<PartnerCustomer>,
}
