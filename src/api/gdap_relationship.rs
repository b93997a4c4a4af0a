//! `GdapRelationship`: one GDAP relationship between the partner and a customer tenant.
// kube's `printcolumn(...)` arguments repeat keys by design, which this lint mistakes for a bug.
#![allow(clippy::duplicated_attributes)]

use super::shared::{CustomerRef, DayDuration, DeletionPolicy, Guid, ManagementPolicy, SecretRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The finalizer that lets deletion terminate the relationship first (the operator's own, on
/// every GdapRelationship it manages).
pub const FINALIZER: &str = "gdap.io/relationship";

/// Names (lower case) under which Global Administrator may appear in `spec.roles`. A unit test
/// checks this list against the role catalog so the CEL rule and the catalog cannot drift.
pub const GLOBAL_ADMIN_SPELLINGS: &[&str] = &[
    "global administrator",
    "company administrator",
    "global admin",
    "ga",
    "tenant admin",
    "62e90394-69f5-4237-9190-012177145e10",
];

/// CEL: `autoExtend: true` is refused when the roles include Global Administrator.
pub const AUTO_EXTEND_RULE: &str = "!(has(self.autoExtend) && self.autoExtend) || !self.roles.exists(r, r.trim().lowerAscii() in ['global administrator', 'company administrator', 'global admin', 'ga', 'tenant admin', '62e90394-69f5-4237-9190-012177145e10'])";
/// CEL: access-assignment roles are a subset of `spec.roles`. The comparison is exact because a
/// case-insensitive one over 100 groups exceeds the API server's CEL cost budget; `validate` and
/// the controller also compare through the role catalog (names, aliases and GUIDs alike).
pub const ASSIGNMENT_SUBSET_RULE: &str = "!has(self.accessAssignments) || self.accessAssignments.all(a, a.roles.all(r, r in self.roles))";
/// CEL: `renewal.before` is shorter than `duration`.
pub const RENEWAL_BEFORE_RULE: &str = "!has(self.renewal) || !has(self.renewal.before) || !self.duration.matches('^P[0-9]{1,4}D$') || !self.renewal.before.matches('^P[0-9]{1,4}D$') || int(self.renewal.before.substring(1, size(self.renewal.before) - 1)) < int(self.duration.substring(1, size(self.duration) - 1))";

/// A GDAP relationship with one customer tenant: which Microsoft Entra roles the partner holds there,
/// for how long, and which partner security groups get them. The operator creates it in Microsoft
/// Graph, locks it for the customer's approval, publishes the approval link in status, assigns the
/// security groups once it is active, warns before it expires, and terminates it on delete.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    doc = "A GDAP relationship between the partner and one customer tenant, reconciled against Microsoft Graph.",
    group = "gdap.io",
    version = "v1alpha1",
    kind = "GdapRelationship",
    namespaced,
    status = "GdapRelationshipStatus",
    shortname = "gdap",
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
        name = "State",
        type_ = "string",
        description = "Microsoft's status of the relationship",
        json_path = ".status.state"
    ),
    printcolumn(
        name = "Expires",
        type_ = "string",
        description = "When the relationship ends (UTC)",
        json_path = ".status.endsAt"
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
        name = "Successor",
        type_ = "string",
        description = "Microsoft's status of the successor relationship being requested",
        json_path = ".status.successor.state"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GdapRelationshipSpec {
    /// The customer tenant the relationship is with.
    pub customer: CustomerRef,

    /// Adopt an existing relationship by its Microsoft id instead of creating one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub relationship_id: Option<String>,

    /// The relationship's terms (its fields sit beside `customer`; a GdapFleet's template holds
    /// the same fields).
    #[serde(flatten)]
    pub terms: RelationshipTerms,
}

super::shared::spec_terms!(GdapRelationshipSpec, RelationshipTerms);

/// What a relationship asks for, whoever the customer is: the fields of a GdapRelationship's spec
/// besides `customer` and `relationshipId`, and a GdapFleet's `template.relationship`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new(AUTO_EXTEND_RULE).message("autoExtend must be false when roles include Global Administrator: Microsoft never auto-extends such relationships (use renewal.policy: Successor instead)").field_path(".autoExtend"))]
#[x_kube(validation = Rule::new(ASSIGNMENT_SUBSET_RULE).message("every role in accessAssignments[].roles must also be listed in spec.roles, spelled exactly the same way").field_path(".accessAssignments"))]
#[x_kube(validation = Rule::new(RENEWAL_BEFORE_RULE).message("renewal.before must be shorter than duration").field_path(".renewal.before"))]
#[serde(rename_all = "camelCase")]
pub struct RelationshipTerms {
    /// The Secret with the partner's credentials, in this namespace. Defaults to the operator's
    /// `--credentials-secret` name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<SecretRef>,

    /// The relationship's name in Microsoft (at most 50 characters, unique across all of the
    /// partner's relationships, shown to the customer). It is the operator's idempotency key.
    /// Defaults to a deterministic name built from the object's name and uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50))]
    pub display_name: Option<String>,

    /// Microsoft Entra built-in roles to request, by display name (case-insensitive, e.g.
    /// "Helpdesk Administrator") or role template GUID. Non-empty, unique, at most 50.
    /// `gdap-operator roles` lists the catalog. Immutable once the relationship is locked for approval.
    #[schemars(length(min = 1, max = 50), inner(length(min = 1, max = 64)), extend("x-kubernetes-list-type" = "set"))]
    pub roles: Vec<String>,

    /// How long the relationship lasts once approved: `P<n>D` with 1 ≤ n ≤ 730, e.g. `P730D` for two
    /// years. Immutable once the relationship is locked for approval.
    pub duration: DayDuration,

    /// Extend the relationship by 180 days each time it reaches its end (Microsoft's auto-extend).
    /// Not allowed when the roles include Global Administrator.
    #[serde(default)]
    pub auto_extend: bool,

    /// Partner security groups and the roles (a subset of `roles`) each one receives in the customer
    /// tenant once the relationship is active. At most 100 groups, each listed once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["securityGroupId"]))]
    pub access_assignments: Vec<AccessAssignmentSpec>,

    /// Renewal by a successor relationship: before the end date when the relationship cannot
    /// auto-extend, and when `roles` or `duration` change after the lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<RenewalSpec>,

    /// `Delete` (default) terminates the relationship when this object is deleted; `Orphan` leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// `Manage` (default) creates and changes the relationship; `Observe` only adopts and reports.
    #[serde(default)]
    pub management_policy: ManagementPolicy,
}

/// One partner security group and the roles it receives.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessAssignmentSpec {
    /// Object id (GUID) of a security group in the partner tenant.
    pub security_group_id: Guid,

    /// Roles the group receives; each must also be listed in `spec.roles`, spelled the same way.
    #[schemars(length(min = 1, max = 50), inner(length(min = 1, max = 64)), extend("x-kubernetes-list-type" = "set"))]
    pub roles: Vec<String>,
}

/// How a relationship is replaced by a successor: before its end when it cannot auto-extend
/// (Global Administrator), and when `roles` or `duration` change after the lock.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenewalSpec {
    /// `None` (default): the relationship expires at its end, and `roles`/`duration` edits after the
    /// lock are refused. `Successor`: the operator creates a successor relationship (same customer,
    /// the spec's roles and duration), locks it, publishes its approval link in `status.successor`,
    /// and once the customer approved it assigns the security groups to it, switches
    /// `status.relationshipId` over and terminates the predecessor — without interrupting access.
    #[serde(default)]
    pub policy: RenewalPolicy,

    /// How long before the end date the successor is requested, `P<n>D` (default `P30D`). Must be
    /// shorter than `duration`. Give the customer time: the approval link is valid for 90 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<DayDuration>,

    /// Keep the predecessor after the hand-over instead of terminating it (it then ends at its own
    /// end date). Default false.
    #[serde(default)]
    pub keep_predecessor: bool,
}

/// Renewal policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RenewalPolicy {
    /// Let the relationship expire; refuse `roles`/`duration` edits after the lock.
    #[default]
    None,
    /// Replace the relationship by a successor before its end, and when `roles` or `duration` change.
    Successor,
}

/// Observed state of a GDAP relationship.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GdapRelationshipStatus {
    /// Microsoft's id of the relationship.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship_id: Option<String>,
    /// The display name the relationship has in Microsoft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The customer's name, as Microsoft shows it (the relationship's `customer.displayName`) (for people: `kubectl get` shows it next
    /// to the tenant id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_display_name: Option<String>,
    /// Microsoft's status, verbatim: created, approvalPending, approved, activating, active,
    /// expiring, expired, terminationRequested, terminating, terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The link the customer's Global Administrator opens to approve the relationship.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_url: Option<String>,
    /// When the approval link lapses (90 days after the lock for approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expires_at: Option<Time>,
    /// When the relationship became active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<Time>,
    /// When the relationship ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Time>,
    /// The access assignments as Microsoft reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_assignments: Vec<AccessAssignmentStatus>,
    /// The successor relationship being requested (renewal or a role/duration change), until the
    /// hand-over.
    // Boxed: absent on most objects, it would otherwise cost each cached object its 136 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<Box<SuccessorStatus>>,
    /// Relationships this object used before, newest last (at most 10): replaced by a successor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_relationships: Vec<PreviousRelationship>,
    /// When the operator last checked that the partner user's delegated access to the customer
    /// works through this relationship (a delegated Graph token for the customer tenant and one
    /// read of its directory; see the condition `AccessVerified`). The next check is due
    /// `--access-verify-interval` (default 1h) later, so an operator restart does not check every
    /// relationship at once. Cleared when the relationship is not active or its access
    /// assignments are not all active (checked again at once when they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_verified_at: Option<Time>,
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
    /// The operator's own writes in Microsoft that Microsoft's reads do not show yet (a JSON
    /// list, each with its kind and time): Microsoft is eventually consistent, and this record
    /// is what keeps a lagging read from making the operator write again. Written with the rest
    /// of the status, and emptied as reads show each write. Bookkeeping: not for editing
    /// (removing it lets the operator send a write it is waiting on once more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_writes: Option<String>,
    /// Ready, Approved, AccessAssigned, AccessVerified, Expiring, Renewing and Synced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One access assignment as observed in Microsoft.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessAssignmentStatus {
    /// The partner security group.
    pub security_group_id: String,
    /// The role template ids assigned.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Microsoft's id of the assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Microsoft's status: pending, active, deleting, deleted or error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Why the assignment cannot be made, when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When Microsoft last refused the assignment (it is tried again after a while, or at once
    /// when the spec changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<Time>,
    /// A role change Microsoft accepted and is still applying (a long-running operation). The
    /// operator waits for it and never sends the same change twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_update: Option<PendingAssignmentUpdate>,
}

/// A successor relationship on its way to replace the current one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuccessorStatus {
    /// Microsoft's id, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its display name (the object's name with a generation suffix, e.g. `contoso-1a2b3c4d-r1`).
    pub display_name: String,
    /// Microsoft's status of the successor (created, approvalPending, approved, activating, active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The link the customer's Global Administrator opens to approve the successor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_url: Option<String>,
    /// When the successor was requested (created in Microsoft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<Time>,
    /// Why: `Renewal` (the current relationship ends and cannot auto-extend) or `SpecChange`
    /// (`roles` or `duration` changed after the lock).
    pub reason: String,
}

/// A relationship the object used before.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviousRelationship {
    /// Microsoft's id.
    pub id: String,
    /// Its display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// When the object switched to its successor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Time>,
    /// Why it was replaced: `Renewal` or `SpecChange`.
    pub why: String,
    /// Microsoft's status as last seen (terminated once the operator terminated it; still active
    /// with `renewal.keepPredecessor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// A role change of an access assignment that Microsoft is applying.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingAssignmentUpdate {
    /// Microsoft's id of the operation (`…/operations/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// The role template ids being applied.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Microsoft's status of the operation: notStarted or running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::roles::{GLOBAL_ADMINISTRATOR_ID, RoleCatalog};

    #[test]
    fn cel_global_admin_spellings_match_the_catalog() {
        let mut from_catalog = RoleCatalog::builtin().spellings_of(GLOBAL_ADMINISTRATOR_ID);
        let mut in_rule: Vec<String> = GLOBAL_ADMIN_SPELLINGS
            .iter()
            .map(|s| s.to_string())
            .collect();
        from_catalog.sort();
        in_rule.sort();
        assert_eq!(
            in_rule, from_catalog,
            "update GLOBAL_ADMIN_SPELLINGS and AUTO_EXTEND_RULE together"
        );
        for spelling in GLOBAL_ADMIN_SPELLINGS {
            assert!(
                AUTO_EXTEND_RULE.contains(&format!("'{spelling}'")),
                "{spelling} missing from the CEL rule"
            );
        }
    }
}
