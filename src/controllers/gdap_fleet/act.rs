//! Carries a fleet's plan out in Kubernetes (the fleet never calls Microsoft to write: each
//! object it writes is reconciled by its own controller):
//! - writes a customer's objects by server-side apply (field manager `gdap-operator-fleet`),
//!   the AppConsent and TenantSync before the relationship, whose digest annotation says all
//!   three are written;
//! - prunes a customer by deleting its TenantSync, AppConsent and GdapRelationship (their own
//!   finalizers then remove the import's data as configured, the consent and the relationship);
//! - lets a customer go by removing the fleet's label and owner reference from its objects.

use super::children::{FLEET_LABEL, Objects};
use super::decide::FleetPlan;
use crate::api::{AppConsent, GdapRelationship, TenantSync};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The field manager of the fleet's writes.
pub const FLEET_MANAGER: &str = "gdap-operator-fleet";
/// How many customers' objects are written at once.
const PARALLEL: usize = 8;

/// What acting on a fleet's plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// Customers whose objects were written.
    pub written: u32,
    /// Of those, customers that had no relationship of the fleet before (created).
    pub created: u32,
    /// Children pruned, with when.
    pub pruned: Vec<(String, DateTime<Utc>)>,
    /// Children let go.
    pub released: u32,
    /// What failed (object and error), at most a few.
    pub errors: Vec<String>,
    /// The API server refused a write for want of permission (RBAC).
    pub forbidden: bool,
    /// How many writes failed.
    pub failed: u32,
}

/// A write of the fleet that failed: what and why, and whether the API server refused it for want
/// of permission.
#[derive(Debug, Clone)]
pub struct WriteError {
    message: String,
    forbidden: bool,
}

impl WriteError {
    fn new(what: String, error: &kube::Error) -> Self {
        WriteError {
            message: format!("{what}: {error}"),
            forbidden: matches!(error, kube::Error::Api(e) if e.code == 403),
        }
    }
}

/// Carries the plan out; a write that fails is reported and the others go on.
pub async fn act(
    client: &Client,
    namespace: &str,
    plan: &FleetPlan,
    existing: &std::collections::HashSet<String>,
    now: DateTime<Utc>,
) -> Done {
    let mut done = Done::default();
    let writes: Vec<_> = plan
        .write
        .iter()
        .map(|o| {
            let name = o.relationship.metadata.name.clone().unwrap_or_default();
            let existed = existing.contains(&name);
            async move { (existed, write(client, namespace, o).await) }
        })
        .collect();
    let results: Vec<(bool, Result<(), WriteError>)> = futures::stream::iter(writes)
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    for (existed, result) in results {
        match result {
            Ok(()) => {
                done.written += 1;
                done.created += u32::from(!existed);
            }
            Err(e) => note_error(&mut done, e),
        }
    }
    for name in &plan.members.prune {
        match prune(client, namespace, name).await {
            Ok(()) => done.pruned.push((name.clone(), now)),
            Err(e) => note_error(&mut done, e),
        }
    }
    for name in &plan.members.release {
        match release(client, namespace, name).await {
            Ok(()) => done.released += 1,
            Err(e) => note_error(&mut done, e),
        }
    }
    done
}

fn note_error(done: &mut Done, error: WriteError) {
    done.failed += 1;
    done.forbidden |= error.forbidden;
    if done.errors.len() < 5 {
        done.errors.push(error.message);
    }
}

/// Writes one customer's objects.
async fn write(client: &Client, namespace: &str, objects: &Objects) -> Result<(), WriteError> {
    if let Some(consent) = &objects.consent {
        apply(client, namespace, consent).await?;
    }
    if let Some(sync) = &objects.sync {
        apply(client, namespace, sync).await?;
    }
    apply(client, namespace, &objects.relationship).await
}

/// Server-side applies one object.
async fn apply<K>(client: &Client, namespace: &str, object: &K) -> Result<(), WriteError>
where
    K: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let name = object.meta().name.clone().unwrap_or_default();
    let mut body = serde_json::to_value(object).expect("objects serialize");
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    if let Some(map) = body.as_object_mut() {
        map.remove("status");
    }
    api.patch(
        &name,
        &PatchParams::apply(FLEET_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(drop)
    .map_err(|e| WriteError::new(format!("applying {} {name}", K::kind(&())), &e))
}

/// What happens to a customer's objects when it leaves the fleet.
#[derive(Debug, Clone, Copy)]
enum Leaving {
    /// Deleted (`spec.prune`).
    Prune,
    /// Let go: no fleet label, no owner reference.
    LetGo,
}

/// Deletes a customer's three objects (a missing one is fine).
async fn prune(client: &Client, namespace: &str, name: &str) -> Result<(), WriteError> {
    leave(client, namespace, name, Leaving::Prune).await
}

/// Lets a customer's three objects go.
async fn release(client: &Client, namespace: &str, name: &str) -> Result<(), WriteError> {
    leave(client, namespace, name, Leaving::LetGo).await
}

/// Does `how` to the customer's TenantSync, AppConsent and GdapRelationship, in that order.
async fn leave(
    client: &Client,
    namespace: &str,
    name: &str,
    how: Leaving,
) -> Result<(), WriteError> {
    leave_one::<TenantSync>(client, namespace, name, how).await?;
    leave_one::<AppConsent>(client, namespace, name, how).await?;
    leave_one::<GdapRelationship>(client, namespace, name, how).await
}

async fn leave_one<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    how: Leaving,
) -> Result<(), WriteError>
where
    K: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let done = match how {
        Leaving::Prune => api.delete(name, &DeleteParams::default()).await.map(drop),
        Leaving::LetGo => {
            let patch = serde_json::json!({"metadata": {
                "labels": {FLEET_LABEL: null},
                "ownerReferences": null,
            }});
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(drop)
        }
    };
    match done {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(WriteError::new(
            format!("{how:?} {} {name}", K::kind(&())),
            &e,
        )),
    }
}
