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
/// resource service principals first, detects a revoked consent, and revokes it on delete.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    doc = "The partner application consented into one customer tenant through Partner Center. Its controller is coming: today the object is validated and stored, not acted on.",
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
        name = "Application",
        type_ = "string",
        description = "The consented application",
        json_path = ".spec.applicationId"
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
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AppConsentSpec {
    /// The customer tenant to consent the application into.
    pub customer: CustomerRef,

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

    /// The GdapRelationship (in this namespace) whose active relationship authorizes the consent. It
    /// must hold Global Administrator, Application Administrator or Cloud Application Administrator.
    pub relationship_ref: LocalObjectRef,

    /// What to grant, one entry per resource API. At most 20, each resource listed once.
    #[schemars(length(min = 1, max = 20), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["resource"]))]
    pub grants: Vec<GrantSpec>,

    /// `Delete` (default) revokes the consent when this object is deleted; `Orphan` leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// `Manage` (default) consents and revokes; `Observe` only checks and reports.
    #[serde(default)]
    pub management_policy: ManagementPolicy,
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
    /// When the operator consented the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented_at: Option<Time>,
    /// When the operator last confirmed that the consent is still in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified_at: Option<Time>,
    /// Resource appIds whose service principal is missing in the customer tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_service_principals: Vec<String>,
    /// Admin-consent link for a customer administrator, when automatic consent is not possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_consent_url: Option<String>,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, PrerequisitesMet, ServicePrincipalsPresent and Consented.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
