//! `TenantSync`: scheduled import of a customer tenant's users and licences into a sink.
// kube's `printcolumn(...)` arguments repeat keys by design, which this lint mistakes for a bug.
#![allow(clippy::duplicated_attributes)]

use super::shared::{CustomerRef, DayDuration, LocalObjectRef, SecretRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// CEL: the rough shape of a cron schedule (the operator's `validate` parses it fully).
pub const SCHEDULE_SHAPE_RULE: &str = "self.trim().matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[^ ]+( +[^ ]+){4})$')";

/// Imports users and licences from a customer tenant on a schedule, with application permissions
/// consented by an AppConsent, into files or PostgreSQL, and reports a licence summary in status.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    doc = "Scheduled import of one customer tenant's users and licences into a sink. Its controller is coming: today the object is validated and stored, not acted on.",
    group = "gdap.io",
    version = "v1alpha1",
    kind = "TenantSync",
    namespaced,
    status = "TenantSyncStatus",
    shortname = "gdapsync",
    category = "gdap-all",
    printcolumn(
        name = "Customer",
        type_ = "string",
        description = "Customer tenant id",
        json_path = ".spec.customer.tenantId"
    ),
    printcolumn(
        name = "Schedule",
        type_ = "string",
        description = "Cron schedule",
        json_path = ".spec.schedule"
    ),
    printcolumn(
        name = "Users",
        type_ = "integer",
        description = "Users in the last import",
        json_path = ".status.users.total"
    ),
    printcolumn(
        name = "Last Sync",
        type_ = "date",
        description = "Last successful import",
        json_path = ".status.lastSuccessfulSyncTime"
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
pub struct TenantSyncSpec {
    /// The customer tenant to import from.
    pub customer: CustomerRef,

    /// The Secret with the partner's credentials, in this namespace. Defaults to the operator's
    /// `--credentials-secret` name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<SecretRef>,

    /// The AppConsent (in this namespace) that grants the application permissions the import uses.
    pub app_consent_ref: LocalObjectRef,

    /// When to import, as a five-field cron expression (minute hour day-of-month month day-of-week,
    /// UTC) or @hourly, @daily, @weekly, @monthly, @yearly. Runs are spread by a stable per-object
    /// delay so that many tenants do not start at once. Default `@daily`.
    #[serde(default = "default_schedule")]
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(validation = Rule::new(SCHEDULE_SHAPE_RULE).message("schedule must be a cron expression with five fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly"))]
    pub schedule: String,

    /// `Delta` (default) reads only changes since the last run, with a full pass every
    /// `fullSyncEvery`; `Full` reads everything every time.
    #[serde(default)]
    pub mode: SyncMode,

    /// In `Delta` mode, how often to do a full pass anyway, `P<n>D` (default `P7D`, the lifetime of a
    /// Graph delta token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_sync_every: Option<DayDuration>,

    /// User properties to import, besides `id` which is always imported. Empty means the default
    /// set: displayName, userPrincipalName, mail, accountEnabled, userType, assignedLicenses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 30), extend("x-kubernetes-list-type" = "set"))]
    pub user_fields: Vec<UserField>,

    /// Where imported rows go: exactly one of `file` or `postgres`.
    pub sink: SinkSpec,

    /// Pause the schedule without deleting the object.
    #[serde(default)]
    pub suspend: bool,
}

fn default_schedule() -> String {
    "@daily".to_string()
}

/// Import mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SyncMode {
    /// Changes since the last run (Graph delta query), with a periodic full pass.
    #[default]
    Delta,
    /// Every user, every run.
    Full,
}

/// A user property the import can read (Microsoft Graph `user` property names).
#[allow(missing_docs)]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UserField {
    DisplayName,
    UserPrincipalName,
    Mail,
    GivenName,
    Surname,
    JobTitle,
    Department,
    CompanyName,
    OfficeLocation,
    StreetAddress,
    City,
    State,
    PostalCode,
    Country,
    PreferredLanguage,
    UsageLocation,
    AccountEnabled,
    UserType,
    AssignedLicenses,
    OnPremisesExtensionAttributes,
    CreatedDateTime,
    EmployeeId,
    MobilePhone,
    BusinessPhones,
}

/// Where the import writes: exactly one of the fields is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.file) != has(self.postgres)").message("set exactly one of sink.file or sink.postgres"))]
#[serde(rename_all = "camelCase")]
pub struct SinkSpec {
    /// Write JSON-lines files under a directory of the operator's filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileSink>,
    /// Write rows into PostgreSQL tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSink>,
}

/// A directory sink.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileSink {
    /// Directory (absolute path) where `users.jsonl` and `skus.jsonl` are written per tenant.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("self.startsWith('/') && !self.contains('/../') && !self.endsWith('/..')").message("path must be absolute and must not contain '..'"))]
    pub path: String,
}

/// A PostgreSQL sink.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresSink {
    /// Secret in this namespace whose key `url` holds a `postgres://` connection string.
    pub connection_secret_ref: SecretRef,
}

/// Observed state of a tenant import.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantSyncStatus {
    /// When the last import started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// When the last import that succeeded started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_sync_time: Option<Time>,
    /// When the next import is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_time: Option<Time>,
    /// How long the last import took, e.g. `12.4s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_duration: Option<String>,
    /// User counts from the last import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<UserSummary>,
    /// Licence counts per subscribed SKU from the last import.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<SkuSummary>,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Synced and Stale.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// User counts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSummary {
    /// All users.
    pub total: i64,
    /// Users whose account is enabled.
    pub enabled: i64,
    /// Users with at least one licence.
    pub licensed: i64,
    /// Disabled users that still hold a licence (licences that can be reclaimed).
    pub disabled_licensed: i64,
    /// Guest users.
    pub guests: i64,
}

/// Licence counts of one SKU.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkuSummary {
    /// Microsoft's SKU part number, e.g. `ENTERPRISEPACK`.
    pub sku_part_number: String,
    /// Licences bought (prepaid units enabled).
    pub purchased: i64,
    /// Licences assigned to users (consumed units).
    pub assigned: i64,
    /// Licences bought but not assigned.
    pub available: i64,
}

/// Parses a five-field cron expression or an `@daily`-style shorthand (UTC).
pub fn parse_schedule(schedule: &str) -> Result<cron::Schedule, String> {
    use std::str::FromStr;
    let trimmed = schedule.trim();
    let fields = trimmed.split_whitespace().count();
    let expression = match (trimmed.starts_with('@'), fields) {
        (true, 1) => trimmed.to_string(),
        (false, 5) => format!("0 {trimmed}"),
        _ => {
            return Err(format!(
                "{schedule:?} must be a cron expression with five fields (minute hour day-of-month month day-of-week) or @hourly/@daily/@weekly/@monthly/@yearly"
            ));
        }
    };
    cron::Schedule::from_str(&expression).map_err(|e| {
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(&text)
            .trim()
            .to_string();
        format!("{schedule:?} is not a valid cron expression: {reason}")
    })
}
