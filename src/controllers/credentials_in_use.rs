//! Credentials cannot vanish under live relationships: while any object uses a credentials
//! Secret, the Secret carries the operator's finalizer `gdap.io/credentials-in-use` (the way
//! Crossplane tracks ProviderConfig usage), so deleting it — alone, or with its namespace — waits
//! until every relationship that needs it for termination is gone.
//!
//! Contract:
//! - [`hold`]: every reconcile that is about to use a Secret labels it `gdap.io/credentials-in-use`
//!   and adds the finalizer (JSON-patch test-and-add; skipped while the Secret is being deleted,
//!   when the API server refuses new finalizers).
//! - The Secret controller ([`reconcile`]) never lists or watches Secrets: it looks after the
//!   Secrets objects report holding, read by name (`secrets_by_name`). Users are the custom
//!   resources in the namespace that name the Secret (by `credentialsRef` or the operator's
//!   default: GdapRelationships, AppConsents and TenantSyncs), except deleted ones the operator
//!   already released, plus withdrawal records (`withdrawals`). It settles the records (terminates a
//!   relationship approved after its object was deleted, forgets lapsed ones) and, when no user is left, removes the finalizer and then
//!   the label. It looks again at the poll interval while users are being deleted or records wait,
//!   else at the resync interval; controllers ask for an immediate look through
//!   [`Context::secret_released`] when they release an object.

use super::LIST_PAGE;
use super::context::Context;
use super::finalizers;
use super::withdrawals::{self, Withdrawal};
use crate::api::conditions::events;
use crate::api::{AppConsent, GdapRelationship, TenantSync};
use crate::controllers::app_consent::FINALIZER as CONSENT_FINALIZER;
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
    match finalizers::add(api, secret, FINALIZER).await {
        // Another controller changed the finalizers since the Secret was read (two objects using
        // it reconcile at once): the JSON patch's test failed. Read it again and add once more.
        Err(kube::Error::Api(e)) if e.code == 422 => {
            let fresh = api.get(&secret.name_any()).await?;
            finalizers::add(api, &fresh, FINALIZER).await
        }
        other => other,
    }
}

/// The credentials of an object in `namespace` (Secret `secret_name`), held in use (finalizer on
/// the Secret) before anything is written with them.
pub async fn acquire_and_hold(
    ctx: &Context,
    namespace: &str,
    secret_name: Option<&str>,
) -> Result<
    crate::controllers::credentials::Credentials,
    crate::controllers::credentials::CredentialsError,
> {
    use crate::controllers::credentials::CredentialsError;
    let name = secret_name.ok_or(CredentialsError::NoReference)?;
    let credentials = ctx.credentials.acquire(namespace, name).await?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    hold(&secrets, &credentials.secret)
        .await
        .map_err(|source| CredentialsError::Kube {
            namespace: namespace.into(),
            name: name.into(),
            source,
        })?;
    ctx.secret_in_use(namespace, name);
    Ok(credentials)
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

/// One reconcile of a credentials Secret in use. The Secret is read again first: the
/// controller's copy is only as fresh as its last read by name.
pub async fn reconcile(secret: Arc<Secret>, ctx: Arc<Context>) -> Result<Requeue, SecretError> {
    let namespace = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(secret) = api.get_opt(&name).await? else {
        return Ok(Requeue::await_change());
    };
    let records = withdrawals::read(&secret);
    let current = if records.is_empty() {
        secret
    } else {
        settle_records(&ctx, &api, &secret, &records).await;
        match api.get_opt(&name).await? {
            Some(s) => s,
            None => return Ok(Requeue::await_change()),
        }
    };
    let usage = Usage {
        records: records_in_use(&current),
        ..users(&ctx, &namespace, &name).await?
    };
    if usage.is_unused() {
        release(&api, &current).await?;
        ctx.metrics.credentials_valid(&namespace, &name, None);
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

/// How many withdrawal records keep `secret` in use. An annotation that cannot be read counts as
/// one: records that cannot be read are not "no records", and releasing the Secret then could
/// leave a relationship approved later with nobody to terminate it.
pub fn records_in_use(secret: &Secret) -> usize {
    match withdrawals::try_read(secret) {
        Ok(records) => records.len(),
        Err(e) => {
            tracing::warn!(secret = %secret.name_any(), error = %e, "unreadable {} annotation: the Secret stays in use until it is fixed", withdrawals::ANNOTATION);
            1
        }
    }
}

/// Removes the finalizer, then the label (a crash in between leaves a labelled Secret that the
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

/// The objects in `namespace` that use Secret `name`: GdapRelationships, AppConsents and
/// TenantSyncs, read from the API server (not the watch caches, which may not hold an object
/// created a moment ago) in pages of [`LIST_PAGE`].
pub async fn users(ctx: &Context, namespace: &str, name: &str) -> Result<Usage, SecretError> {
    let mut usage = Usage::default();
    let uses = |reference: Option<&crate::api::SecretRef>| {
        ctx.secret_name(namespace, reference).as_deref() == Some(name)
    };
    let relationships: Api<GdapRelationship> = Api::namespaced(ctx.client.clone(), namespace);
    for_each_page(&relationships, |o| {
        let used = uses(o.spec.credentials_ref.as_ref());
        count(&mut usage, o, used, RELATIONSHIP_FINALIZER)
    })
    .await?;
    let consents: Api<AppConsent> = Api::namespaced(ctx.client.clone(), namespace);
    for_each_page(&consents, |o| {
        let used = uses(o.spec.credentials_ref.as_ref());
        count(&mut usage, o, used, CONSENT_FINALIZER)
    })
    .await?;
    let syncs: Api<TenantSync> = Api::namespaced(ctx.client.clone(), namespace);
    for_each_page(&syncs, |o| {
        let used = uses(o.spec.credentials_ref.as_ref());
        count(&mut usage, o, used, TENANT_SYNC_FINALIZER)
    })
    .await?;
    Ok(usage)
}

/// Lists every object of `api`, one page of [`LIST_PAGE`] at a time.
async fn for_each_page<K>(api: &Api<K>, mut visit: impl FnMut(&K)) -> kube::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = ListParams::default().limit(LIST_PAGE);
    loop {
        let page = api.list(&params).await?;
        page.items.iter().for_each(&mut visit);
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

/// Counts `object` when it uses the Secret, unless it is being deleted and the operator already
/// released it (its `finalizer` is gone).
fn count<K: kube::Resource>(usage: &mut Usage, object: &K, uses: bool, finalizer: &str) {
    if !uses {
        return;
    }
    let deleting = object.meta().deletion_timestamp.is_some();
    let released = deleting && !object.finalizers().iter().any(|f| f == finalizer);
    if !released {
        usage.objects += 1;
        usage.deleting += usize::from(deleting);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn secret(annotation: Option<&str>) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some("partner-credentials".into());
        s.metadata.annotations = annotation
            .map(|a| BTreeMap::from([(withdrawals::ANNOTATION.to_string(), a.to_string())]));
        s
    }

    #[test]
    fn unreadable_records_keep_the_secret_in_use() {
        assert_eq!(records_in_use(&secret(None)), 0);
        let two = r#"[{"relationshipId":"a","customer":"c","displayName":"x"},{"relationshipId":"b","customer":"c","displayName":"y"}]"#;
        assert_eq!(records_in_use(&secret(Some(two))), 2);
        let usage = Usage {
            records: records_in_use(&secret(Some("{not json"))),
            ..Usage::default()
        };
        assert!(
            !usage.is_unused(),
            "a list that cannot be read is not an empty list"
        );
        assert!(withdrawals::try_read(&secret(Some("{not json"))).is_err());
    }
}
