//! Graph directory models: users, subscribed SKUs, company subscriptions, service principals,
//! app role assignments, OAuth2 permission grants, delta items and `$batch` (§5 of the
//! reference).

use super::{lenient_time, open_enum};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `assignedLicense`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedLicense {
    /// The SKU.
    pub sku_id: String,
    /// Service plans switched off.
    #[serde(default)]
    pub disabled_plans: Vec<String>,
}

/// `licenseAssignmentState`: how a licence reached the user — directly (`assignedByGroup` is
/// `None`) or inherited from a group (group-based licensing) — and whether it is in effect. A
/// user who holds a SKU both directly and through a group has one entry per source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LicenseAssignmentState {
    /// The SKU.
    pub sku_id: Option<String>,
    /// The group the licence is inherited from; `None` for a direct assignment.
    pub assigned_by_group: Option<String>,
    /// `Active`, `ActiveWithError`, `Disabled` or `Error`.
    pub state: Option<String>,
    /// Why the assignment failed (`None`, `CountViolation`, `MutuallyExclusiveViolation`, …).
    pub error: Option<String>,
    /// Service plans switched off for this assignment.
    #[serde(default)]
    pub disabled_plans: Vec<String>,
    /// When the state last changed.
    #[serde(default, deserialize_with = "lenient_time")]
    pub last_updated_date_time: Option<DateTime<Utc>>,
}

/// `onPremisesExtensionAttributes` (1–15).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionAttributes {
    pub extension_attribute1: Option<String>,
    pub extension_attribute2: Option<String>,
    pub extension_attribute3: Option<String>,
    pub extension_attribute4: Option<String>,
    pub extension_attribute5: Option<String>,
    pub extension_attribute6: Option<String>,
    pub extension_attribute7: Option<String>,
    pub extension_attribute8: Option<String>,
    pub extension_attribute9: Option<String>,
    pub extension_attribute10: Option<String>,
    pub extension_attribute11: Option<String>,
    pub extension_attribute12: Option<String>,
    pub extension_attribute13: Option<String>,
    pub extension_attribute14: Option<String>,
    pub extension_attribute15: Option<String>,
}

/// `signInActivity`.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SignInActivity {
    #[serde(default, deserialize_with = "lenient_time")]
    pub last_sign_in_date_time: Option<DateTime<Utc>>,
    pub last_sign_in_request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub last_non_interactive_sign_in_date_time: Option<DateTime<Utc>>,
    pub last_non_interactive_sign_in_request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub last_successful_sign_in_date_time: Option<DateTime<Utc>>,
    pub last_successful_sign_in_request_id: Option<String>,
}

/// A `user` with the properties the import uses; absent (not `$select`ed) ones are `None`.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub display_name: Option<String>,
    pub company_name: Option<String>,
    pub department: Option<String>,
    pub mail: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub job_title: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub street_address: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub preferred_language: Option<String>,
    pub usage_location: Option<String>,
    pub assigned_licenses: Option<Vec<AssignedLicense>>,
    pub license_assignment_states: Option<Vec<LicenseAssignmentState>>,
    pub user_principal_name: Option<String>,
    pub office_location: Option<String>,
    pub on_premises_extension_attributes: Option<ExtensionAttributes>,
    pub user_type: Option<String>,
    pub account_enabled: Option<bool>,
    pub sign_in_activity: Option<SignInActivity>,
    pub business_phones: Option<Vec<String>>,
    pub mobile_phone: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_date_time: Option<DateTime<Utc>>,
    pub employee_id: Option<String>,
    pub mail_nickname: Option<String>,
    pub on_premises_sync_enabled: Option<bool>,
    pub other_mails: Option<Vec<String>>,
    pub proxy_addresses: Option<Vec<String>>,
    pub external_user_state: Option<String>,
}

open_enum!(
    /// Why a delta item was removed.
    RemovedReason {
        /// Soft-deleted (restorable).
        Changed = "changed",
        /// Hard-deleted.
        Deleted = "deleted",
    }
);

/// One item of a users delta round.
#[derive(Debug, Clone, PartialEq)]
pub enum DeltaItem {
    /// A new or changed user (selected properties).
    Changed(Box<User>),
    /// A removed user.
    Removed {
        /// The user's id.
        id: String,
        /// Soft or hard deletion.
        reason: RemovedReason,
    },
    /// The round is complete: store this link and call it next time. Always the last item.
    DeltaLink(String),
}

/// Raw delta entry: a user plus the optional `@removed` annotation.
#[derive(Deserialize)]
pub(crate) struct RawDeltaUser {
    #[serde(rename = "@removed")]
    pub removed: Option<Removed>,
    #[serde(flatten)]
    pub user: User,
}

#[derive(Deserialize)]
pub(crate) struct Removed {
    pub reason: RemovedReason,
}

impl From<RawDeltaUser> for DeltaItem {
    fn from(raw: RawDeltaUser) -> Self {
        match raw.removed {
            Some(r) => DeltaItem::Removed {
                id: raw.user.id,
                reason: r.reason,
            },
            None => DeltaItem::Changed(Box::new(raw.user)),
        }
    }
}

/// Where a users delta round starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaStart {
    /// A full initial round with these properties selected.
    Initial {
        /// Properties to `$select`.
        select: Vec<String>,
    },
    /// "Sync from now": just a delta link, no data.
    Latest,
    /// Changes since a stored delta link.
    Link(String),
}

/// `licenseUnitsDetail`.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LicenseUnitsDetail {
    #[serde(default)]
    pub enabled: i32,
    #[serde(default)]
    pub suspended: i32,
    #[serde(default)]
    pub warning: i32,
    #[serde(default)]
    pub locked_out: i32,
}

/// `servicePlanInfo`.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlanInfo {
    pub service_plan_id: String,
    pub service_plan_name: Option<String>,
    pub provisioning_status: Option<String>,
    pub applies_to: Option<String>,
}

/// `subscribedSku`.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedSku {
    pub id: String,
    pub account_id: Option<String>,
    pub account_name: Option<String>,
    pub applies_to: Option<String>,
    pub capability_status: Option<String>,
    #[serde(default)]
    pub consumed_units: i32,
    #[serde(default)]
    pub prepaid_units: LicenseUnitsDetail,
    #[serde(default)]
    pub service_plans: Vec<ServicePlanInfo>,
    pub sku_id: String,
    pub sku_part_number: Option<String>,
    #[serde(default)]
    pub subscription_ids: Vec<String>,
}

/// `companySubscription` (`GET /directory/subscriptions`): one commercial subscription behind a
/// SKU. Several can back one SKU (terms, trials, another partner's).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CompanySubscription {
    pub id: String,
    pub commerce_subscription_id: Option<String>,
    pub sku_id: Option<String>,
    pub sku_part_number: Option<String>,
    /// `Enabled`, `Expired`, `Suspended`, `Warning`, `LockedOut`, `Deleted`.
    pub status: Option<String>,
    #[serde(default)]
    pub total_licenses: i32,
    pub is_trial: Option<bool>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_date_time: Option<DateTime<Utc>>,
    /// When the subscription moves to its next state (renews or ends) if nothing is done.
    #[serde(default, deserialize_with = "lenient_time")]
    pub next_lifecycle_date_time: Option<DateTime<Utc>>,
    pub owner_id: Option<String>,
    /// The partner tenant that sold it (CSP), if any.
    pub owner_tenant_id: Option<String>,
    pub owner_type: Option<String>,
    #[serde(default)]
    pub service_status: Vec<ServicePlanInfo>,
}

/// `servicePrincipal` (the properties the operator needs).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    pub id: String,
    pub app_id: String,
    pub app_display_name: Option<String>,
    pub display_name: Option<String>,
    pub app_owner_organization_id: Option<String>,
    pub service_principal_type: Option<String>,
    pub account_enabled: Option<bool>,
    /// The application permissions this resource offers (empty when not `$select`ed).
    #[serde(default)]
    pub app_roles: Vec<AppRole>,
    /// The delegated permissions this resource offers (empty when not `$select`ed).
    #[serde(default)]
    pub oauth2_permission_scopes: Vec<PermissionScope>,
}

impl ServicePrincipal {
    /// The id of the enabled app role whose `value` is `name` (case-insensitive), e.g.
    /// `User.Read.All` on Microsoft Graph.
    pub fn app_role_id(&self, name: &str) -> Option<&str> {
        self.app_roles
            .iter()
            .find(|r| {
                r.is_enabled != Some(false)
                    && r.value
                        .as_deref()
                        .is_some_and(|v| v.eq_ignore_ascii_case(name))
            })
            .map(|r| r.id.as_str())
    }
}

/// `appRole`: an application permission a resource offers.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub id: String,
    /// The permission name, e.g. `User.Read.All`.
    pub value: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_member_types: Vec<String>,
    pub is_enabled: Option<bool>,
}

/// `permissionScope`: a delegated permission a resource offers.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionScope {
    pub id: String,
    /// The scope name, e.g. `Directory.Read.All`.
    pub value: Option<String>,
    /// `Admin` or `User` (who may consent).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub is_enabled: Option<bool>,
}

/// The body of `POST /servicePrincipals/{resourceId}/appRoleAssignedTo`: grant `app_role_id`
/// of the resource service principal to the client service principal `principal_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAppRoleAssignment {
    /// The client service principal (the partner app's, in the customer tenant).
    pub principal_id: String,
    /// The resource service principal (e.g. Microsoft Graph's, in the customer tenant).
    pub resource_id: String,
    /// The app role's id on the resource ([`ServicePrincipal::app_role_id`]).
    pub app_role_id: String,
}

/// `appRoleAssignment`.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    pub id: String,
    pub app_role_id: String,
    pub principal_id: Option<String>,
    pub principal_display_name: Option<String>,
    pub principal_type: Option<String>,
    pub resource_id: Option<String>,
    pub resource_display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_date_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub deleted_date_time: Option<DateTime<Utc>>,
}

/// `oAuth2PermissionGrant` (delegated consent).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2PermissionGrant {
    pub id: String,
    pub client_id: String,
    pub consent_type: Option<String>,
    pub principal_id: Option<String>,
    pub resource_id: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
}

/// A `directoryObject` of a membership listing (`/me/memberOf`): a group, a directory role or an
/// administrative unit, told apart by `@odata.type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObject {
    /// Object id.
    pub id: String,
    /// `#microsoft.graph.group`, `#microsoft.graph.directoryRole`, …
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
}

impl DirectoryObject {
    /// The object is a group.
    pub fn is_group(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.group")
    }
}

/// One request inside a `$batch` (at most 20 per batch).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequest {
    /// Unique within the batch.
    pub id: String,
    /// HTTP method.
    pub method: String,
    /// Relative URL, e.g. `/users?$select=id`.
    pub url: String,
    /// Headers (required with `Content-Type` when there is a body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// JSON body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Ids this request waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<String>>,
}

impl BatchRequest {
    /// A GET of a relative URL.
    pub fn get(id: impl Into<String>, url: impl Into<String>) -> Self {
        BatchRequest {
            id: id.into(),
            method: "GET".into(),
            url: url.into(),
            headers: None,
            body: None,
            depends_on: None,
        }
    }
}

/// One response inside a `$batch` answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    /// The request's id.
    pub id: String,
    /// HTTP status of the inner request.
    pub status: u16,
    /// Headers of the inner response.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body of the inner response.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {

    proptest::proptest! {
        /// Delta pages are outside data: any entry is decoded (and turned into an item) or
        /// refused, never a panic.
        #[test]
        fn any_delta_entry_is_decoded_or_refused(
            entry in "\\PC{0,80}|\\{\"id\": \"[a-z0-9]{0,8}\"(, \"@removed\": (\\{\"reason\": \"[a-z]{0,8}\"\\}|null|1|\"x\"))?(, \"accountEnabled\": (true|\"yes\"|null))?(, \"assignedLicenses\": (\\[\\]|\\[\\{\"skuId\": 1\\}\\]|\\{\\}))?\\}",
        ) {
            if let Ok(raw) = serde_json::from_str::<RawDeltaUser>(&entry) {
                let _ = DeltaItem::from(raw);
            }
        }
    }
    use super::*;

    #[test]
    fn delta_entries_become_items() {
        let raw: RawDeltaUser =
            serde_json::from_str(r#"{"id":"u1","@removed":{"reason":"deleted"}}"#).unwrap();
        assert_eq!(
            DeltaItem::from(raw),
            DeltaItem::Removed {
                id: "u1".into(),
                reason: RemovedReason::Deleted
            }
        );
        let raw: RawDeltaUser =
            serde_json::from_str(r#"{"id":"u2","displayName":"Ann","assignedLicenses":[{"skuId":"s","disabledPlans":[]}]}"#).unwrap();
        let DeltaItem::Changed(u) = DeltaItem::from(raw) else {
            panic!()
        };
        assert_eq!(u.display_name.as_deref(), Some("Ann"));
        assert_eq!(u.assigned_licenses.unwrap()[0].sku_id, "s");
    }

    #[test]
    fn licence_states_and_subscriptions_parse() {
        let u: User = serde_json::from_str(
            r#"{"id":"u","licenseAssignmentStates":[{"skuId":"s","assignedByGroup":"g","state":"Active","error":"None","disabledPlans":[],"lastUpdatedDateTime":"2025-01-02T03:04:05Z"},{"skuId":"s","assignedByGroup":null,"state":"Active"}]}"#,
        )
        .unwrap();
        let states = u.license_assignment_states.unwrap();
        assert_eq!(states[0].assigned_by_group.as_deref(), Some("g"));
        assert_eq!(states[1].assigned_by_group, None);
        let s: CompanySubscription = serde_json::from_str(
            r#"{"id":"x","skuId":"s","status":"Enabled","totalLicenses":5,"isTrial":true,"nextLifecycleDateTime":"2026-01-01T00:00:00Z","ownerTenantId":"p"}"#,
        )
        .unwrap();
        assert_eq!(s.total_licenses, 5);
        assert_eq!(s.is_trial, Some(true));
        assert!(s.next_lifecycle_date_time.is_some());
    }

    #[test]
    fn user_reads_extension_attributes() {
        let u: User = serde_json::from_str(
            r#"{"id":"u","onPremisesExtensionAttributes":{"extensionAttribute1":"cc-42","extensionAttribute15":null},"accountEnabled":false}"#,
        )
        .unwrap();
        assert_eq!(
            u.on_premises_extension_attributes
                .unwrap()
                .extension_attribute1
                .as_deref(),
            Some("cc-42")
        );
        assert_eq!(u.account_enabled, Some(false));
    }
}

/// `group` of the partner tenant (the properties `doctor` reads): the security groups GDAP
/// access assignments name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Object id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether it is a security group (GDAP assigns roles to security groups only).
    #[serde(default)]
    pub security_enabled: Option<bool>,
}

/// `application`: an app registration in its home tenant, with its credentials' validity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Object id (not the client id).
    #[serde(default)]
    pub id: String,
    /// The application (client) id.
    #[serde(default)]
    pub app_id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Client secrets (never their values: Graph returns `secretText: null`).
    #[serde(default)]
    pub password_credentials: Vec<PasswordCredential>,
    /// Certificates.
    #[serde(default)]
    pub key_credentials: Vec<KeyCredential>,
}

/// `passwordCredential`: one client secret of an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    /// The credential's id.
    #[serde(default)]
    pub key_id: Option<String>,
    /// The first three characters of the secret's value.
    #[serde(default)]
    pub hint: Option<String>,
    /// Its name in the portal.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Valid from.
    #[serde(default, deserialize_with = "lenient_time")]
    pub start_date_time: Option<DateTime<Utc>>,
    /// Valid until: Entra refuses the secret afterwards (AADSTS7000222).
    #[serde(default, deserialize_with = "lenient_time")]
    pub end_date_time: Option<DateTime<Utc>>,
}

/// `keyCredential`: one certificate of an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyCredential {
    /// The credential's id.
    #[serde(default)]
    pub key_id: Option<String>,
    /// The certificate's SHA-1 thumbprint (base64 of its bytes, as Graph returns `Edm.Binary`).
    #[serde(default)]
    pub custom_key_identifier: Option<String>,
    /// Its name (by default the certificate's subject).
    #[serde(default)]
    pub display_name: Option<String>,
    /// `AsymmetricX509Cert`, …
    #[serde(default, rename = "type")]
    pub key_type: Option<String>,
    /// `Verify` (client assertions) or `Sign`.
    #[serde(default)]
    pub usage: Option<String>,
    /// Valid from.
    #[serde(default, deserialize_with = "lenient_time")]
    pub start_date_time: Option<DateTime<Utc>>,
    /// Valid until.
    #[serde(default, deserialize_with = "lenient_time")]
    pub end_date_time: Option<DateTime<Utc>>,
}
