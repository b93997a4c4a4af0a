//! `GdapFleet`: one manifest for many customers — a GdapRelationship (and optionally an
//! AppConsent and a TenantSync) stamped out for each customer of a set.
// kube's `printcolumn(...)` arguments repeat keys by design, which this lint mistakes for a bug.
#![allow(clippy::duplicated_attributes)]

use super::app_consent::ConsentTerms;
use super::gdap_relationship::RelationshipTerms;
use super::shared::Guid;
use super::tenant_sync::SyncTerms;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// CEL: a fleet names where its customers come from.
pub const CUSTOMER_SOURCE_RULE: &str =
    "(has(self.partnerCenter) && self.partnerCenter) || (has(self.list) && size(self.list) > 0)";
/// CEL: a TenantSync template needs the AppConsent template it imports through.
pub const SYNC_NEEDS_CONSENT_RULE: &str = "!has(self.tenantSync) || has(self.appConsent)";

/// Many customers, one access model: for each customer of `spec.customers` the operator keeps
/// one GdapRelationship (and an AppConsent and a TenantSync when templated) made from
/// `spec.template`, named `<fleet>-<tenant id>` and labelled `gdap.io/fleet` and
/// `gdap.io/customer`. New relationships are rolled out a few at a time (`spec.rollout`), and a
/// customer that leaves the set is pruned only with `spec.prune`, at a bounded rate.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    doc = "A fleet of customers: the same GDAP relationship (and optionally app consent and import) for each customer of a set.",
    group = "gdap.io",
    version = "v1alpha1",
    kind = "GdapFleet",
    namespaced,
    status = "GdapFleetStatus",
    shortname = "gdapfleet",
    category = "gdap-all",
    printcolumn(
        name = "Customers",
        type_ = "integer",
        description = "Customers the fleet covers",
        json_path = ".status.customers"
    ),
    printcolumn(
        name = "Active",
        type_ = "integer",
        description = "Customers whose relationship is active",
        json_path = ".status.active"
    ),
    printcolumn(
        name = "Awaiting",
        type_ = "integer",
        description = "Customers whose relationship awaits their approval",
        json_path = ".status.awaitingApproval"
    ),
    printcolumn(
        name = "Waiting",
        type_ = "integer",
        description = "Customers waiting for rollout room",
        json_path = ".status.waiting"
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
        description = "Why the fleet is (not) Ready: the Ready condition's reason",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GdapFleetSpec {
    /// Which customers the fleet covers.
    pub customers: FleetCustomers,

    /// What each customer gets.
    pub template: FleetTemplate,

    /// How new relationships are rolled out (defaults: 25 awaiting approval at a time, not
    /// paused).
    #[serde(default)]
    pub rollout: RolloutSpec,

    /// When a customer leaves the set (or the fleet is deleted), delete its objects — which
    /// terminates its relationship and removes its consent — at most `prunePerHour` customers
    /// in any hour. `false` (default): its objects lose the fleet's label and owner reference and
    /// keep running, managed by nobody until someone deletes them. A mass deletion never happens
    /// by accident.
    #[serde(default)]
    pub prune: bool,

    /// With `prune`, at most this many customers' objects are deleted in any hour (1–1000,
    /// default 10); the rest wait (`status.pruning`, `status.nextPruneAt`).
    #[serde(default = "default_prune_per_hour")]
    #[schemars(range(min = 1, max = 1000))]
    pub prune_per_hour: u32,
}

fn default_prune_per_hour() -> u32 {
    10
}

/// Where a fleet's customers come from: Partner Center's customer list and/or a list of
/// tenants, less `exclude` and what `filter` leaves out.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new(CUSTOMER_SOURCE_RULE).message("customers needs partnerCenter: true or at least one entry in list"))]
#[serde(rename_all = "camelCase")]
pub struct FleetCustomers {
    /// Every customer of the partner in Partner Center's customer list (read with the partner
    /// user's delegated token, every page, once per `--poll-interval`), so a customer signed
    /// tomorrow is covered within one poll.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partner_center: bool,

    /// Customers named one by one (covered whatever `filter` says), each with optional
    /// overrides. At most 5000, each tenant once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5000), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["tenantId"]))]
    pub list: Vec<FleetCustomer>,

    /// Tenant ids never covered, wherever they come from. At most 5000.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5000), extend("x-kubernetes-list-type" = "set"))]
    pub exclude: Vec<Guid>,

    /// Covers only Partner Center's customers whose name or domain matches (customers in `list`
    /// are always covered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<CustomerFilter>,
}

/// A filter on Partner Center's customers; both parts must match when both are set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerFilter {
    /// The customer's company name contains this text (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub name_contains: Option<String>,

    /// The customer's domain ends with this text (any case), e.g. `.onmicrosoft.com` or
    /// `contoso.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub domain_suffix: Option<String>,
}

/// One customer named in a fleet's list.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetCustomer {
    /// The customer's tenant id.
    pub tenant_id: Guid,

    /// The customer's name, used for `{customerName}` in the template's display name (default:
    /// Partner Center's name when the fleet reads it, else the tenant id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub name: Option<String>,

    /// Changes to the template for this customer, as JSON merge patches (RFC 7386) over
    /// `template.relationship`, `template.appConsent` and `template.tenantSync`: e.g.
    /// `relationship: {roles: [...], accessAssignments: [...]}`. The result must be a valid
    /// template; the fleet reports a customer whose result is not (condition `Ready`, reason
    /// `InvalidSpec`, naming the customer and the field) and leaves its objects as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<FleetOverrides>,
}

/// Per-customer merge patches over the fleet's template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetOverrides {
    /// A JSON merge patch over `template.relationship`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "merge_patch_schema")]
    pub relationship: Option<serde_json::Value>,

    /// A JSON merge patch over `template.appConsent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "merge_patch_schema")]
    pub app_consent: Option<serde_json::Value>,

    /// A JSON merge patch over `template.tenantSync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "merge_patch_schema")]
    pub tenant_sync: Option<serde_json::Value>,
}

/// A free-form object (a merge patch is checked when it is applied to its template).
fn merge_patch_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// What each customer of a fleet gets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new(SYNC_NEEDS_CONSENT_RULE).message("template.tenantSync needs template.appConsent: each customer's import reads through the fleet's consent for that customer").field_path(".tenantSync"))]
#[serde(rename_all = "camelCase")]
pub struct FleetTemplate {
    /// The GdapRelationship of each customer: the fields of a GdapRelationship's spec besides
    /// `customer` and `relationshipId`. In `displayName`, `{customerName}` stands for the
    /// customer's name; the fleet appends `-` and the first 8 characters of the tenant id
    /// (display names are unique per partner) and shortens the name to fit 50 characters.
    /// Without `displayName` each relationship is named after its object.
    pub relationship: RelationshipTerms,

    /// The AppConsent of each customer (optional): the fields of an AppConsent's spec besides
    /// `customer` and `relationshipRef`, which names the customer's relationship of this fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_consent: Option<ConsentTerms>,

    /// The TenantSync of each customer (optional, needs `appConsent`): the fields of a
    /// TenantSync's spec besides `customer` and `appConsentRef`, which names the customer's
    /// AppConsent of this fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_sync: Option<SyncTerms>,
}

/// How a fleet rolls out new relationships.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// At most this many of the fleet's relationships await their customer's approval at a time
    /// (1–1000, default 25): an onboarding team is not sent a thousand approval links at once.
    /// New customers wait (in tenant-id order) until an approval, a failure or a prune makes
    /// room.
    #[serde(default = "default_max_awaiting_approval")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_awaiting_approval: u32,

    /// Stop writing: nothing is created, changed, pruned or let go while paused; the status is
    /// still reported. Objects already created keep being reconciled by their own controllers.
    #[serde(default)]
    pub paused: bool,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        RolloutSpec {
            max_awaiting_approval: default_max_awaiting_approval(),
            paused: false,
        }
    }
}

fn default_max_awaiting_approval() -> u32 {
    25
}

/// Observed state of a fleet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GdapFleetStatus {
    /// Customers the fleet covers (selected, not excluded or filtered out).
    #[serde(default)]
    pub customers: u32,
    /// Covered customers whose relationship is active.
    #[serde(default)]
    pub active: u32,
    /// Covered customers whose relationship awaits their approval (or is being created).
    #[serde(default)]
    pub awaiting_approval: u32,
    /// Covered customers whose relationship failed, expired or was terminated.
    #[serde(default)]
    pub failed: u32,
    /// Covered customers waiting for rollout room (or for the fleet to be resumed).
    #[serde(default)]
    pub waiting: u32,
    /// Customers named in `spec.customers.exclude`.
    #[serde(default)]
    pub excluded: u32,
    /// Partner Center customers that `spec.customers.filter` leaves out.
    #[serde(default)]
    pub filtered_out: u32,
    /// Covered customers that already have a GdapRelationship not owned by this fleet: reported
    /// and left alone.
    #[serde(default)]
    pub managed_elsewhere: u32,
    /// Covered customers whose relationship is active but whose delegated access was refused
    /// (their GdapRelationship's `AccessVerified` is False).
    #[serde(default)]
    pub access_refused: u32,
    /// Customers no longer covered whose objects are deleted (`spec.prune`), now or when the
    /// hourly rate allows.
    #[serde(default)]
    pub pruning: u32,
    /// Tenant ids of the customers managed elsewhere (the first 20, in order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_elsewhere_customers: Vec<String>,
    /// The customer that has waited longest for its approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_pending_approval: Option<PendingApproval>,
    /// When the fleet pruned a customer's objects within the last hour (for `prunePerHour`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned_at: Vec<Time>,
    /// When the next prune is allowed, while some wait for the hourly rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_prune_at: Option<Time>,
    /// When Partner Center's customer list was last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_list_read_at: Option<Time>,
    /// How many reconciles in a row have failed (0 after a success).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_attempts: u32,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready and CustomerListRead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A customer's relationship awaiting approval.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingApproval {
    /// The customer's tenant id.
    pub tenant_id: String,
    /// The GdapRelationship (in the fleet's namespace).
    pub name: String,
    /// When the relationship object was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}
