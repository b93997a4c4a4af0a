//! Withdrawal records: relationships whose object was deleted while they awaited the customer's
//! approval. Microsoft cannot withdraw a locked relationship, so the operator remembers it and
//! terminates it as soon as the customer approves it (or forgets it when it lapses or ends).
//!
//! Contract: the records live in the annotation `gdap.io/pending-withdrawals` (a JSON list) of the
//! credentials Secret the relationship was created with — the Secret the operator already holds
//! with its `gdap.io/credentials-in-use` finalizer, and whose credentials the termination needs.
//! A Secret with records stays in use (see `credentials_in_use`). Writes use optimistic
//! concurrency (the read `resourceVersion`), retried on conflicts; a record is never lost by a
//! concurrent rotation of the refresh token.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The annotation holding the records.
pub const ANNOTATION: &str = "gdap.io/pending-withdrawals";
/// How often a conflicting write is tried again.
const ATTEMPTS: u32 = 20;

/// One relationship to terminate if it is ever approved.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Withdrawal {
    /// Microsoft's id of the relationship.
    pub relationship_id: String,
    /// The customer tenant.
    pub customer: String,
    /// Its display name (for people reading the record).
    pub display_name: String,
}

/// The records on `secret`, or why the annotation cannot be read. Callers that act on "no
/// records" (releasing the Secret, rewriting the list) must use this: an unreadable list is not
/// an empty one.
pub fn try_read(secret: &Secret) -> Result<Vec<Withdrawal>, serde_json::Error> {
    match secret.annotations().get(ANNOTATION) {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text),
    }
}

/// The records on `secret` for lookups (an unreadable annotation counts as none, and is logged;
/// writes through [`record`] and [`forget`] then fail instead of overwriting it).
pub fn read(secret: &Secret) -> Vec<Withdrawal> {
    try_read(secret).unwrap_or_else(|e| {
        tracing::warn!(secret = %secret.name_any(), error = %e, "unreadable {ANNOTATION} annotation; ignoring it");
        Vec::new()
    })
}

/// Whether `secret` records `relationship_id`.
pub fn recorded(secret: &Secret, relationship_id: &str) -> bool {
    read(secret)
        .iter()
        .any(|w| w.relationship_id == relationship_id)
}

/// Adds `record` to Secret `name` (no-op when present).
pub async fn record(api: &Api<Secret>, name: &str, record: &Withdrawal) -> kube::Result<()> {
    update(api, name, |records| {
        if records
            .iter()
            .all(|w| w.relationship_id != record.relationship_id)
        {
            records.push(record.clone());
        }
    })
    .await
}

/// Removes the record of `relationship_id` from Secret `name`.
pub async fn forget(api: &Api<Secret>, name: &str, relationship_id: &str) -> kube::Result<()> {
    update(api, name, |records| {
        records.retain(|w| w.relationship_id != relationship_id)
    })
    .await
}

async fn update(
    api: &Api<Secret>,
    name: &str,
    change: impl Fn(&mut Vec<Withdrawal>),
) -> kube::Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let secret = api.get(name).await?;
        let mut records = try_read(&secret).map_err(kube::Error::SerdeError)?;
        let before = records.clone();
        change(&mut records);
        if records == before {
            return Ok(());
        }
        let value = if records.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::to_string(&records).unwrap_or_default().into()
        };
        let patch = json!({"metadata": {
            "resourceVersion": secret.resource_version(),
            "annotations": {ANNOTATION: value},
        }});
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
    }
}
