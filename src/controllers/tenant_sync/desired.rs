//! What the object asks for, resolved: its schedule parsed (by the rules `gdap-operator
//! validate` applies), the key its jitter and its runs are known by, the customer, the AppConsent,
//! whether it is suspended and the `gdap.io/sync-now` value it carries.

use crate::api::TenantSync;
use crate::api::rules::FieldProblem;
use crate::sync::schedule::Schedule;
use chrono::{DateTime, Utc};
use kube::ResourceExt;

/// Annotation asking for one import now: any new value (e.g. the current time) runs one import,
/// recorded in `status.lastSyncRequest` once it ends.
pub const SYNC_NOW_ANNOTATION: &str = "gdap.io/sync-now";

/// Everything the object asks for.
#[derive(Debug, Clone)]
pub struct Intent {
    /// `namespace/name/uid`: the object's jitter and its imports in the operator are keyed by it.
    pub key: String,
    /// The customer tenant (lower case).
    pub customer: String,
    /// The AppConsent's name (in the object's namespace).
    pub consent: String,
    /// `spec.credentialsRef.name` (`None`: the operator's `--credentials-secret`).
    pub credentials: Option<String>,
    /// The parsed schedule, or the problem with `spec.schedule`.
    pub schedule: Result<Schedule, FieldProblem>,
    /// `spec.suspend`.
    pub suspend: bool,
    /// The `gdap.io/sync-now` value, when set and not empty.
    pub requested: Option<String>,
    /// When the object was created (the schedule's anchor before any import).
    pub created: DateTime<Utc>,
    /// The spec changed since the status was last written (`metadata.generation` is ahead of
    /// `status.observedGeneration`): a failed import is retried at once.
    pub changed: bool,
}

/// Resolves the object.
pub fn resolve(object: &TenantSync) -> Intent {
    let spec = &object.spec;
    Intent {
        key: key(object),
        customer: spec.customer.tenant_id.0.to_ascii_lowercase(),
        consent: spec.app_consent_ref.name.clone(),
        credentials: spec.credentials_ref.as_ref().map(|r| r.name.clone()),
        schedule: Schedule::parse(&spec.schedule)
            .map_err(|e| FieldProblem::new("spec.schedule", e.to_string())),
        suspend: spec.suspend,
        requested: object
            .annotations()
            .get(SYNC_NOW_ANNOTATION)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()),
        created: object
            .metadata
            .creation_timestamp
            .as_ref()
            .map(crate::controllers::conditions::from_time)
            .unwrap_or_default(),
        changed: object.status.as_ref().is_some_and(|s| {
            s.observed_generation.is_some() && s.observed_generation != object.metadata.generation
        }),
    }
}

/// `namespace/name/uid`.
pub fn key(object: &TenantSync) -> String {
    format!(
        "{}/{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any(),
        object.uid().unwrap_or_default()
    )
}
