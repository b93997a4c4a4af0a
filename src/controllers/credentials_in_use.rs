//! Credentials cannot vanish under live relationships: while any object uses a credentials
//! Secret, the Secret carries the operator's finalizer `gdap.io/credentials-in-use` (the way
//! Crossplane tracks ProviderConfig usage), so deleting it — alone, or with its namespace — waits
//! until every relationship that needs it for termination is gone.
//!
//! Contract:
//! - [`hold`]: every reconcile that is about to use a Secret labels it `gdap.io/credentials-in-use`
//!   and adds the finalizer (JSON-patch test-and-add; skipped while the Secret is being deleted,
//!   when the API server refuses new finalizers).
//! - The Secret controller ([`reconcile`]) watches labelled Secrets only. Users are the custom
//!   resources in the namespace that name the Secret (by `credentialsRef` or the operator's
//!   default: GdapRelationships and TenantSyncs), except deleted ones the operator already
//!   released, plus withdrawal records
//!   (`withdrawals`). It settles the records (terminates a relationship approved after its object
//!   was deleted, forgets lapsed ones) and, when no user is left, removes the finalizer and then
//!   the label. It looks again at the poll interval while users are being deleted or records wait,
//!   else at the resync interval; controllers ask for an immediate look through
//!   [`Context::secret_released`] when they release an object.

use super::context::Context;
use super::finalizers;
use super::withdrawals::{self, Withdrawal};
use crate::api::conditions::events;
use crate::api::{GdapRelationship, TenantSync};
use crate::controllers::gdap_relationship::FINALIZER as RELATIONSHIP_FINALIZER;
use crate::controllers::gdap_relationship::plan::{Remote, RemoteRequest, termination_requested};
use crate::controllers::tenant_sync::FINALIZER as TENANT_SYNC_FINALIZER;
use crate::microsoft::models::gdap::{RelationshipStatus as State, RequestAction};
use crate::microsoft::{GdapApi, Reason};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use serde_json::json;
use std::sync::Arc;

/// The finalizer the operator holds on credentials Secrets in use.
pub const FINALIZER: &str = "gdap.io/credentials-in-use";
/// The label that makes the Secret controller watch a Secret.
pub const LABEL: &str = "gdap.io/credentials-in-use";

/// Errors of the Secret controller (all from the Kubernetes API, all transient).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Marks `secret` as in use: label, then finalizer.
pub async fn hold(api: &Api<Secret>, secret: &Secret) -> kube::Result<()> {
    if secret.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    if !secret.labels().contains_key(LABEL) {
        let patch = json!({"metadata": {"labels": {LABEL: "true"}}});
        api.patch(
            &secret.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    finalizers::add(api, secret, FINALIZER).await
}

/// How a Secret is used.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Objects using it.
    pub objects: usize,
    /// Of those, objects being deleted.
    pub deleting: usize,
    /// Withdrawal records it carries.
    pub records: usize,
}

impl Usage {
    /// Nothing uses the Secret.
    pub fn is_unused(&self) -> bool {
        self.objects == 0 && self.records == 0
    }
}

/// One reconcile of a labelled credentials Secret.
pub async fn reconcile(secret: Arc<Secret>, ctx: Arc<Context>) -> Result<Requeue, SecretError> {
    let namespace = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let records = withdrawals::read(&secret);
    if !records.is_empty() {
        settle_records(&ctx, &api, &secret, &records).await;
    }
    let current = match api.get_opt(&name).await? {
        Some(s) => s,
        None => return Ok(Requeue::await_change()),
    };
    let usage = Usage {
        records: withdrawals::read(&current).len(),
        ..users(&ctx, &namespace, &name).await?
    };
    if usage.is_unused() {
        release(&api, &current).await?;
        tracing::info!(secret = %name, %namespace, "credentials no longer in use; finalizer removed");
        return Ok(Requeue::await_change());
    }
    let timing = &ctx.settings.timing;
    let busy = usage.deleting > 0 || usage.records > 0;
    Ok(Requeue::requeue(if busy {
        timing.poll
    } else {
        timing.resync
    }))
}

/// Removes the finalizer, then the label (a crash in between leaves a watched Secret that the
/// next reconcile finishes).
async fn release(api: &Api<Secret>, secret: &Secret) -> Result<(), SecretError> {
    finalizers::remove(api, secret, FINALIZER).await?;
    let patch = json!({"metadata": {"labels": {LABEL: null}}});
    match api
        .patch(
            &secret.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The objects in `namespace` that use Secret `name`.
pub async fn users(ctx: &Context, namespace: &str, name: &str) -> Result<Usage, SecretError> {
    let api: Api<GdapRelationship> = Api::namespaced(ctx.client.clone(), namespace);
    let mut usage = Usage::default();
    for object in api.list(&ListParams::default()).await? {
        let uses = ctx.secret_name(namespace, object.spec.credentials_ref.as_ref());
        if uses.as_deref() != Some(name) {
            continue;
        }
        let deleting = object.metadata.deletion_timestamp.is_some();
        let released = deleting
            && !object
                .finalizers()
                .iter()
                .any(|f| f == RELATIONSHIP_FINALIZER);
        if !released {
            usage.objects += 1;
            usage.deleting += usize::from(deleting);
        }
    }
    let syncs: Api<TenantSync> = Api::namespaced(ctx.client.clone(), namespace);
    for object in syncs.list(&ListParams::default()).await? {
        let uses = ctx.secret_name(namespace, object.spec.credentials_ref.as_ref());
        let deleting = object.metadata.deletion_timestamp.is_some();
        let held = object
            .finalizers()
            .iter()
            .any(|f| f == TENANT_SYNC_FINALIZER);
        if uses.as_deref() == Some(name) && (!deleting || held) {
            usage.objects += 1;
            usage.deleting += usize::from(deleting);
        }
    }
    Ok(usage)
}

async fn settle_records(ctx: &Context, api: &Api<Secret>, secret: &Secret, records: &[Withdrawal]) {
    let credentials = match ctx
        .credentials
        .acquire(&secret.namespace().unwrap_or_default(), &secret.name_any())
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(secret = %secret.name_any(), error = %e, "cannot check pending withdrawals");
            return;
        }
    };
    let gdap = credentials.clients.gdap.as_ref();
    let token = credentials.clients.tokens.partner_graph();
    for record in records {
        match settle(gdap, &token, record).await {
            Ok(Settled::Keep) => {}
            Ok(Settled::Terminated) => {
                let note = format!(
                    "relationship {} ({}) with customer {} was approved after its GdapRelationship was deleted; asked Microsoft to terminate it",
                    record.relationship_id, record.display_name, record.customer
                );
                ctx.publish(
                    secret,
                    EventType::Warning,
                    events::WITHDRAWN,
                    &record.relationship_id,
                    note,
                )
                .await;
            }
            Ok(Settled::Gone) => {
                if let Err(e) =
                    withdrawals::forget(api, &secret.name_any(), &record.relationship_id).await
                {
                    tracing::warn!(error = %e, "cannot remove a settled withdrawal record");
                }
            }
            Err(e) => {
                tracing::warn!(relationship = %record.relationship_id, error = %e, "cannot check a pending withdrawal")
            }
        }
    }
}

enum Settled {
    /// Still awaiting approval, activation or the end of a termination.
    Keep,
    /// It was active: termination requested.
    Terminated,
    /// Ended, lapsed or unknown to Microsoft: the record can go.
    Gone,
}

async fn settle(
    gdap: &dyn GdapApi,
    token: &crate::microsoft::DelegatedToken,
    record: &Withdrawal,
) -> crate::microsoft::Result<Settled> {
    let relationship = match gdap.get_relationship(token, &record.relationship_id).await {
        Ok(r) => r,
        Err(e) if e.reason() == Reason::NotFound => return Ok(Settled::Gone),
        Err(e) => return Err(e),
    };
    match relationship.status.unwrap_or(State::Unknown(String::new())) {
        State::Terminated | State::Expired => Ok(Settled::Gone),
        State::Active => {
            let requests = gdap.list_requests(token, &record.relationship_id).await?;
            let remote = Remote {
                termination: newest_termination(&requests),
                ..Default::default()
            };
            if termination_requested(&remote) {
                return Ok(Settled::Keep);
            }
            gdap.terminate_relationship(token, &record.relationship_id)
                .await?;
            Ok(Settled::Terminated)
        }
        _ => Ok(Settled::Keep),
    }
}

/// The newest `terminate` request among a relationship's requests.
pub fn newest_termination(
    requests: &[crate::microsoft::models::gdap::RelationshipRequest],
) -> Option<RemoteRequest> {
    requests
        .iter()
        .filter(|r| r.action == RequestAction::Terminate)
        .max_by_key(|r| r.created_date_time)
        .map(|r| RemoteRequest {
            status: r.status.clone(),
            created_at: r.created_date_time,
        })
}
