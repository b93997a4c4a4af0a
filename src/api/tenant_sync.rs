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
    doc = "Scheduled import of one customer tenant's users and licences into a sink, with a licence summary in status. Runs on spec.schedule (spread by a stable per-object delay), or at once when the annotation gdap.io/sync-now gets a new value; the referenced AppConsent must be Ready. Deleting the object keeps the imported data in the sink.",
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
        name = "Customer Name",
        type_ = "string",
        description = "The customer's name, as Microsoft shows it",
        json_path = ".status.customerDisplayName"
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
        name = "Licensed",
        type_ = "integer",
        description = "Users holding at least one licence",
        json_path = ".status.users.licensed"
    ),
    printcolumn(
        name = "Disabled Licensed",
        type_ = "integer",
        description = "Disabled users that still hold a licence (licences to reclaim)",
        json_path = ".status.users.disabledLicensed"
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
pub struct TenantSyncSpec {
    /// The customer tenant to import from.
    pub customer: CustomerRef,

    /// The AppConsent (in this namespace) that grants the application permissions the import uses.
    pub app_consent_ref: LocalObjectRef,

    /// The import's terms (its fields sit beside `customer`; a GdapFleet's template holds the
    /// same fields).
    #[serde(flatten)]
    pub terms: SyncTerms,
}

super::shared::spec_terms!(TenantSyncSpec, SyncTerms);

/// What an import asks for, whoever the customer is: the fields of a TenantSync's spec besides
/// `customer` and `appConsentRef`, and a GdapFleet's `template.tenantSync`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncTerms {
    /// The Secret with the partner's credentials, in this namespace. Defaults to the operator's
    /// `--credentials-secret` name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<SecretRef>,

    /// When to import, as a five-field cron expression (minute hour day-of-month month day-of-week,
    /// UTC; day-of-week 0 and 7 are Sunday) or @hourly, @daily, @weekly, @monthly, @yearly. Runs
    /// are spread by a stable per-object delay (up to a quarter of the interval, at most an hour)
    /// so that many tenants do not start at once. Default `@daily`.
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

    /// User properties to import (Microsoft Graph names). `id`, `accountEnabled`, `userType`,
    /// `assignedLicenses` and `licenseAssignmentStates` are always imported: the licence summary
    /// and reports need them. Empty means the default set: displayName, userPrincipalName, mail,
    /// givenName, surname, jobTitle, department, companyName, officeLocation, streetAddress,
    /// city, state, postalCode, country, preferredLanguage, usageLocation,
    /// onPremisesExtensionAttributes. Changing the list makes the next Delta run a full pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 30), extend("x-kubernetes-list-type" = "set"))]
    pub user_fields: Vec<UserField>,

    /// Where imported rows go: exactly one of `file` or `postgres`.
    pub sink: SinkSpec,

    /// Pause the schedule without deleting the object (a new `gdap.io/sync-now` value still runs
    /// one import).
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
    LicenseAssignmentStates,
    OnPremisesExtensionAttributes,
    CreatedDateTime,
    EmployeeId,
    MobilePhone,
    BusinessPhones,
}

/// The user fields imported when `userFields` is empty: the list of the import this operator's
/// reports are modelled on (identity, organisation, address, language and the on-premises
/// extension attributes used for cost allocation).
pub const DEFAULT_USER_FIELDS: &[UserField] = &[
    UserField::DisplayName,
    UserField::UserPrincipalName,
    UserField::Mail,
    UserField::GivenName,
    UserField::Surname,
    UserField::JobTitle,
    UserField::Department,
    UserField::CompanyName,
    UserField::OfficeLocation,
    UserField::StreetAddress,
    UserField::City,
    UserField::State,
    UserField::PostalCode,
    UserField::Country,
    UserField::PreferredLanguage,
    UserField::UsageLocation,
    UserField::OnPremisesExtensionAttributes,
];

/// The user fields always imported, whatever `userFields` says (`id` besides).
pub const ALWAYS_IMPORTED: &[UserField] = &[
    UserField::AccountEnabled,
    UserField::UserType,
    UserField::AssignedLicenses,
    UserField::LicenseAssignmentStates,
];

impl UserField {
    /// The Microsoft Graph property name, e.g. `displayName`.
    pub fn graph_name(self) -> &'static str {
        use UserField::*;
        match self {
            DisplayName => "displayName",
            UserPrincipalName => "userPrincipalName",
            Mail => "mail",
            GivenName => "givenName",
            Surname => "surname",
            JobTitle => "jobTitle",
            Department => "department",
            CompanyName => "companyName",
            OfficeLocation => "officeLocation",
            StreetAddress => "streetAddress",
            City => "city",
            State => "state",
            PostalCode => "postalCode",
            Country => "country",
            PreferredLanguage => "preferredLanguage",
            UsageLocation => "usageLocation",
            AccountEnabled => "accountEnabled",
            UserType => "userType",
            AssignedLicenses => "assignedLicenses",
            LicenseAssignmentStates => "licenseAssignmentStates",
            OnPremisesExtensionAttributes => "onPremisesExtensionAttributes",
            CreatedDateTime => "createdDateTime",
            EmployeeId => "employeeId",
            MobilePhone => "mobilePhone",
            BusinessPhones => "businessPhones",
        }
    }
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
    /// Directory (absolute path) of the operator's filesystem. Each import writes
    /// `<path>/<tenantId>/runs/<runId>/` with `users.jsonl`, `skus.jsonl`, `subscriptions.jsonl`
    /// and `summary.json`, then points `<path>/<tenantId>/current` at it; a failed import never
    /// moves `current`.
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("self.startsWith('/') && !self.contains('/../') && !self.endsWith('/..')").message("path must be absolute and must not contain '..'"))]
    pub path: String,

    /// How many completed runs to keep per tenant, the current one included (default 7). Older
    /// run directories are deleted after each successful import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub keep_runs: Option<u32>,
}

/// A PostgreSQL sink.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresSink {
    /// The Secret (in this namespace) that holds the connection URL,
    /// `postgres://user:password@host:5432/database?sslmode=verify-full`, and optionally the CA
    /// to trust. `sslmode` as libpq: `disable`, `prefer` (the default: TLS when the server
    /// offers it, certificate unchecked), `require` (TLS, certificate unchecked unless a CA is
    /// given), `verify-ca` (the certificate must be signed by the trusted CA) or `verify-full`
    /// (and must name the host). The trusted CA: the Secret's `caKey`, else `sslrootcert` in the
    /// URL, else the system's CAs (enough for Azure Database for PostgreSQL).
    pub connection_secret_ref: ConnectionSecretRef,

    /// The database schema of the tables and views (default `gdap_sync`); the operator creates
    /// and migrates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z_][a-z0-9_]*$')").message("schema must be a lower-case SQL identifier: letters, digits and _, not starting with a digit"))]
    pub schema: Option<String>,
}

/// A Secret holding a connection string and, optionally, the CA to trust.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSecretRef {
    /// Name of the Secret in this object's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key that holds the connection URL (default `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub key: Option<String>,
    /// The key of the same Secret that holds the PEM bundle of the CA(s) to trust for the
    /// server's certificate, e.g. `ca.crt` (for a private CA; the URL's `sslmode` says what is
    /// checked: with `prefer` or `require` and a CA, the chain as `verify-ca`). When absent, the
    /// URL's `sslrootcert`, else the system's trusted CAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub ca_key: Option<String>,
}

/// The Secret key of a connection URL when `key` is not set.
pub const DEFAULT_URL_KEY: &str = "url";

impl ConnectionSecretRef {
    /// The key to read the connection URL from: `key`, or `url`.
    pub fn url_key(&self) -> &str {
        self.key.as_deref().unwrap_or(DEFAULT_URL_KEY)
    }
}

/// Observed state of a tenant import.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantSyncStatus {
    /// The customer's name, as Microsoft shows it (from the status of the AppConsent `spec.appConsentRef` names) (for people: `kubectl get` shows it next
    /// to the tenant id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_display_name: Option<String>,
    /// When the last import attempt started (successful or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// When the last import that succeeded started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_sync_time: Option<Time>,
    /// When the next import is due: the next scheduled run (plus this object's delay), or a
    /// retry after a failure if that comes first. Absent while suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_time: Option<Time>,
    /// How long the last successful import took, e.g. `12.4s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_duration: Option<String>,
    /// User counts from the last successful import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<UserSummary>,
    /// Licence counts per subscribed SKU from the last successful import.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<SkuSummary>,
    /// The last value of the annotation `gdap.io/sync-now` that was honoured: a new value runs
    /// one import at once (even while suspended), the same value again does nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_request: Option<String>,
    /// How many imports in a row have failed (0 after a success). After a failure the next
    /// attempt waits: from the poll interval, doubling, up to the resync interval (a failure a
    /// person must fix waits the resync interval), or until the next scheduled run if sooner.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_attempts: u32,
    /// When the last failure happened (kept after a success, for the record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (the last import succeeded, its data is recent and nothing needs a person), Synced
    /// (the last attempt and its prerequisites, with the reason when they failed) and Stale (no
    /// successful import for two scheduled runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
    /// Licences bought but not assigned (negative when more are assigned than bought).
    pub available: i64,
    /// The earliest date one of the SKU's active subscriptions renews or ends
    /// (`nextLifecycleDateTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_expiry: Option<Time>,
}
