//! Partner Center models: application consents (§3 of the reference) and the partner's
//! customers (`GET /v1/customers`, paged with `links.next` and its `MS-ContinuationToken`).

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

impl PartnerCustomer {
    /// The customer's tenant id: the company profile's, or the customer's id (Partner Center
    /// makes them equal for CSP customers) when the profile lacks it.
    pub fn tenant_id(&self) -> &str {
        if self.company_profile.tenant_id.is_empty() {
            &self.id
        } else {
            &self.company_profile.tenant_id
        }
    }

    /// The customer's company name.
    pub fn company_name(&self) -> &str {
        &self.company_profile.company_name
    }

    /// The customer's default (primary) domain.
    pub fn default_domain(&self) -> &str {
        &self.company_profile.domain
    }
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
    /// Where the next page is; `links.next` is absent on the last page.
    #[serde(default)]
    pub links: PageLinks,
}

/// The `links` of a Partner Center collection page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PageLinks {
    /// How to ask for the next page; `None` on the last page.
    #[serde(default)]
    pub next: Option<Link>,
}

/// A Partner Center link: `{"uri": "/customers?size=500&seekOperation=Next", "method": "GET",
/// "headers": [{"key": "MS-ContinuationToken", "value": "…"}]}`. The `uri` is relative to `/v1`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Link {
    /// The next request's path and query, relative to `/v1`.
    #[serde(default)]
    pub uri: String,
    /// The next request's method (`GET`).
    #[serde(default)]
    pub method: String,
    /// Headers the next request must carry.
    #[serde(default)]
    pub headers: Vec<LinkHeader>,
}

/// One header of a [`Link`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LinkHeader {
    /// The header's name, e.g. `MS-ContinuationToken`.
    #[serde(default)]
    pub key: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// The header that carries a Partner Center list's continuation.
pub const CONTINUATION_HEADER: &str = "MS-ContinuationToken";

impl Link {
    /// The value of the link's `MS-ContinuationToken` header (its name compared without case).
    pub fn continuation_token(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(CONTINUATION_HEADER))
            .map(|h| h.value.as_str())
    }

    /// The query of the link's `uri` (`size=500&seekOperation=Next`), if it has one.
    pub fn query(&self) -> Option<&str> {
        self.uri
            .split_once('?')
            .map(|(_, q)| q)
            .filter(|q| !q.is_empty())
    }
}
