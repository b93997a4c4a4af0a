//! `AppConsent`: the partner's multi-tenant application consented into one customer tenant.
// kube's `printcolumn(...)` arguments repeat keys by design, which this lint mistakes for a bug.
#![allow(clippy::duplicated_attributes)]

use super::shared::{
    CustomerRef, DeletionPolicy, Guid, LocalObjectRef, ManagementPolicy, SecretRef,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Resource applications users may name instead of an appId, with their appIds.
pub const WELL_KNOWN_RESOURCES: &[(&str, &str)] = &[
    ("Microsoft Graph", "00000003-0000-0000-c000-000000000000"),
    (
        "Windows Azure Active Directory",
        "00000002-0000-0000-c000-000000000000",
    ),
    (
        "Office 365 Management APIs",
        "c5393580-f805-4401-95e8-94b7a6ef2fc2",
    ),
    (
        "Microsoft Partner Center",
        "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd",
    ),
    (
        "Office 365 Exchange Online",
        "00000002-0000-0ff1-ce00-000000000000",
    ),
    (
        "Azure Resource Manager",
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    ),
];

/// Resolves a grant's `resource` (well-known name, case-insensitive, or appId GUID) to an appId.
pub fn resolve_resource(resource: &str) -> Option<String> {
    let trimmed = resource.trim();
    if uuid::Uuid::parse_str(trimmed).is_ok() {
        return Some(trimmed.to_ascii_lowercase());
    }
    WELL_KNOWN_RESOURCES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
        .map(|(_, id)| (*id).to_string())
}

/// Consents the partner's multi-tenant application into a customer tenant through Partner Center
/// (app + user, backed by an active GDAP relationship that holds Global Administrator, Application
/// Administrator or Cloud Application Administrator). The operator checks the prerequisites and the
/// resource service principals first, grants the application permissions, verifies the consent
/// periodically, reports a revoked consent, and revokes it on delete.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    doc = "The partner application consented into one customer tenant: delegated permissions through Partner Center's consent API, application permissions as app role assignments, made by the partner's GDAP user and verified periodically.",
    group = "gdap.io",
    version = "v1alpha1",
    kind = "AppConsent",
    namespaced,
    status = "AppConsentStatus",
    shortname = "gdapconsent",
    category = "gdap-all",
    printcolumn(
        name = "Customer",
        type_ = "string",
        description = "Customer tenant id",
        json_path = ".spec.customer.tenantId"
    ),
    printcolumn(
        name = "Customer Name",
        type_ = "string",
        description = "The customer's name, as Microsoft shows it",
        json_path = ".status.customerDisplayName"
    ),
    printcolumn(
        name = "Application",
        type_ = "string",
        description = "The consented application",
        json_path = ".spec.applicationId"
    ),
    printcolumn(
        name = "Relationship",
        type_ = "string",
        description = "The GDAP relationship the consent relies on (its display name)",
        json_path = ".status.relationship.displayName"
    ),
    printcolumn(
        name = "Consented",
        type_ = "string",
        description = "Consented condition",
        json_path = ".status.conditions[?(@.type==\"Consented\")].status"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Ready condition",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        description = "Why the object is (not) Ready: the Ready condition's reason",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AppConsentSpec {
    /// The customer tenant to consent the application into.
    pub customer: CustomerRef,

    /// The GdapRelationship (in this namespace) whose relationship authorizes the consent: the
    /// operator waits until it is Ready, holds Global Administrator, Application Administrator or
    /// Cloud Application Administrator assigned to a security group the partner user is in, and
    /// was activated at least the operator's `--consent-settle-time` ago (Microsoft needs time to
    /// propagate it). Optional: without it the operator looks for such an active relationship with
    /// the customer through Graph (the partner may hold it outside this operator) and reports the
    /// one it found in `status.relationship`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship_ref: Option<LocalObjectRef>,

    /// The consent's terms (its fields sit beside `customer`; a GdapFleet's template holds the
    /// same fields).
    #[serde(flatten)]
    pub terms: ConsentTerms,
}

super::shared::spec_terms!(AppConsentSpec, ConsentTerms);

/// What a consent asks for, whoever the customer is: the fields of an AppConsent's spec besides
/// `customer` and `relationshipRef`, and a GdapFleet's `template.appConsent`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentTerms {
    /// The Secret with the partner's credentials, in this namespace. Defaults to the operator's
    /// `--credentials-secret` name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<SecretRef>,

    /// The partner's multi-tenant application (client) id to consent.
    pub application_id: Guid,

    /// Display name sent with the consent (optional; Partner Center shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub display_name: Option<String>,

    /// What to grant, one entry per resource API. At most 20, each resource listed once. The
    /// list is the whole truth about what the app may do in the customer tenant: delegated scopes
    /// and application permissions the tenant gives the app beyond it are removed
    /// (`managementPolicy: Manage`) or reported as `ExcessAccess` (`Observe`).
    #[schemars(length(min = 1, max = 20), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["resource"]))]
    pub grants: Vec<GrantSpec>,

    /// Create a grant's resource service principal when the customer tenant lacks it (`POST
    /// /servicePrincipals`, as the partner's GDAP user) before consenting. Default `false`: a
    /// missing one is listed in `status.missingServicePrincipals` and nothing is consented until it
    /// exists — it usually means the workload is not licensed in the tenant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_missing_service_principals: bool,

    /// What to do when the customer revokes the consent (or removes part of it) after the operator
    /// verified it: `Report` (default) reports it — `Consented=False` with reason `Revoked`, a
    /// Warning event, `gdap_consent_healthy` 0 — and changes nothing; `Automatic` consents again.
    #[serde(default)]
    pub reconsent: ReconsentPolicy,

    /// `Delete` (default) removes, when this object is deleted, every application permission of
    /// the app in the customer tenant and then the consent (Partner Center DELETE, which removes
    /// the delegated grants), and keeps the object (reason `PermissionsRemain`) while permissions
    /// are left that the partner user can no longer remove; `Orphan` leaves both and releases
    /// the object.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// `Manage` (default) consents, repairs (with `reconsent: Automatic`) and revokes; `Observe`
    /// only verifies and reports.
    #[serde(default)]
    pub management_policy: ManagementPolicy,
}

/// What the operator does when a verified consent is found revoked.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ReconsentPolicy {
    /// Report the revocation and change nothing: the customer's decision stands until someone
    /// sets `Automatic` (or re-creates the object).
    #[default]
    Report,
    /// Consent again, the same way as the first time.
    Automatic,
}

/// Permissions on one resource API.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("size(self.scopes) + size(self.appRoles) > 0").message("a grant needs at least one entry in scopes or appRoles").field_path(".scopes"))]
#[serde(rename_all = "camelCase")]
pub struct GrantSpec {
    /// The resource API: a well-known name ("Microsoft Graph", "Office 365 Management APIs",
    /// "Microsoft Partner Center", "Office 365 Exchange Online", "Azure Resource Manager",
    /// "Windows Azure Active Directory") or its appId GUID.
    #[schemars(length(min = 1, max = 128))]
    pub resource: String,

    /// Delegated permissions (scopes), e.g. `User.Read.All`.
    #[serde(default)]
    #[schemars(length(max = 100), inner(length(min = 1, max = 128)))]
    pub scopes: Vec<String>,

    /// Application permissions (app roles) used by background reads, e.g. `User.Read.All`.
    #[serde(default)]
    #[schemars(length(max = 100), inner(length(min = 1, max = 128)))]
    pub app_roles: Vec<String>,
}

/// Observed state of an application consent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppConsentStatus {
    /// The customer's name, as Microsoft shows it (the `customer.displayName` of its GDAP relationships) (for people: `kubectl get` shows it next
    /// to the tenant id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_display_name: Option<String>,
    /// When the operator last consented the application through Partner Center.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented_at: Option<Time>,
    /// When the operator last found the whole consent in place in the customer tenant: the app's
    /// service principal, its delegated grants and its application permissions. Checked every
    /// `--consent-verify-interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified_at: Option<Time>,
    /// The `metadata.generation` whose consent `lastVerifiedAt` found complete. A consent found
    /// incomplete later at that generation was revoked; after a spec change (a new generation) the
    /// operator completes the consent instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_generation: Option<i64>,
    /// The GDAP relationship the consent relies on (the one `spec.relationshipRef` names, or the
    /// one found through Graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<ConsentRelationship>,
    /// Resource appIds whose service principal is missing in the customer tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_service_principals: Vec<String>,
    /// Admin-consent link for a customer's Global Administrator, published when the operator
    /// cannot consent itself (no consent-capable role, no MFA, Microsoft Graph application
    /// permissions without Global or Privileged Role Administrator); the `Consented` or
    /// `PrerequisitesMet` condition says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_consent_url: Option<String>,
    /// How many reconciles in a row have failed (0 after a success). The operator waits longer
    /// after each failure: from the poll interval, doubling, up to the resync interval, with jitter.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_attempts: u32,
    /// When the last failure happened (kept after a success, for the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Synced, PrerequisitesMet, ServicePrincipalsPresent and Consented.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The GDAP relationship an application consent relies on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentRelationship {
    /// Microsoft's relationship id.
    pub id: String,
    /// The relationship's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The GdapRelationship object in this namespace, when `spec.relationshipRef` names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_name: Option<String>,
    /// The roles it gives the partner user in the customer tenant through access assignments to
    /// the user's security groups (display names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
