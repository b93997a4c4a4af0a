//! Credentials cannot vanish under live relationships: while any object uses a credentials
//! Secret, the Secret carries the operator's finalizer `gdap.io/credentials-in-use` (the way
//! Crossplane tracks ProviderConfig usage), so deleting it — alone, or with its namespace — waits
//! until every relationship that needs it for termination is gone.
//!
//! Contract:
//! - `credentials_hold`: every reconcile that is about to use a Secret labels it
//!   `gdap.io/credentials-in-use` and adds the finalizer.
//! - The Secret controller ([`reconcile`]) never lists or watches Secrets: it looks after the
//!   Secrets objects report holding, read by name with a GET (`secrets_by_name`) — not from the
//!   watch the reconciles read their credentials from (`secret_watch`), which may lag a write
//!   for a moment: releasing a Secret must see every withdrawal record just written. Users are the custom
//!   resources in the namespace that name the Secret (by `credentialsRef` or the operator's
//!   default: GdapRelationships, AppConsents and TenantSyncs), except deleted ones the operator
//!   already released, plus withdrawal records (`withdrawals`). It settles the records through
//!   the GdapRelationship controller's own plan (`settle`) and act: it terminates a relationship
//!   approved after its object was deleted and forgets lapsed ones. When no user is left, it
//!   removes the finalizer and then the label. It looks again at the poll interval while users are being deleted or records wait,
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
use crate::controllers::gdap_relationship::act::{ActError, Bookkeeping, Target, act};
use crate::controllers::gdap_relationship::observe::{newest_termination, remote_relationship};
use crate::controllers::gdap_relationship::settle::{Settle, Settling, settle};
use crate::controllers::gdap_relationship::step::Action;
use crate::controllers::tenant_sync::FINALIZER as TENANT_SYNC_FINALIZER;
use crate::microsoft::Reason;
use crate::microsoft::models::gdap::RelationshipStatus as State;
use async_trait::async_trait;
use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use serde_json::json;
use std::sync::Arc;

pub use super::credentials_hold::{FINALIZER, LABEL};

/// Errors of the Secret controller (all from the Kubernetes API, all transient).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
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
    let bookkeeping = SecretBookkeeping {
        secrets: api.clone(),
        secret: secret.name_any(),
    };
    let target = Target {
        gdap,
        token: &token,
        directory: credentials.clients.directory.as_ref(),
        tokens: &credentials.clients.tokens,
        bookkeeping: &bookkeeping,
    };
    for record in records {
        match settle_record(ctx, &target, record).await {
            Ok(Settled::Keep) => {}
            Ok(Settled::Acted) => {
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

/// What became of a withdrawal record.
#[derive(Debug, Clone, PartialEq)]
enum Settled {
    /// Still awaiting approval, activation or the end of a termination.
    Keep,
    /// The GdapRelationship plan's step to end it was taken (it was active: termination
    /// requested).
    Acted,
    /// Ended, lapsed or unknown to Microsoft: the record can go.
    Gone,
}

/// One record through the GdapRelationship controller's own plan (`settle`, the step that ends
/// one relationship) and act: the same decision a deletion makes, for a relationship whose
/// object is gone.
async fn settle_record(
    ctx: &Context,
    target: &Target<'_>,
    record: &Withdrawal,
) -> Result<Settled, ActError> {
    let (gdap, token) = (target.gdap, target.token);
    let relationship = match gdap.get_relationship(token, &record.relationship_id).await {
        Ok(r) => remote_relationship(&r),
        Err(e) if e.reason() == Reason::NotFound => return Ok(Settled::Gone),
        Err(e) => return Err(e.into()),
    };
    let terminable = matches!(relationship.status, State::Active);
    let termination = if terminable {
        newest_termination(&gdap.list_requests(token, &record.relationship_id).await?)
    } else {
        None
    };
    let settling = Settling {
        relationship: &relationship,
        termination: termination.as_ref(),
        withdrawal_recorded: true,
    };
    let decided = settle(settling, &record.customer, &ctx.settings.timing, Utc::now());
    match record_step(decided) {
        RecordStep::Act(action) => act(&action, target).await.map(|_| Settled::Acted),
        RecordStep::Keep => Ok(Settled::Keep),
        RecordStep::Forget => Ok(Settled::Gone),
    }
}

/// What a withdrawal record's settling asks for.
#[derive(Debug, Clone, PartialEq)]
enum RecordStep {
    /// Take the plan's step (terminate an active relationship, delete a draft).
    Act(Action),
    /// Wait: the customer or Microsoft is working.
    Keep,
    /// It ended: the record can go.
    Forget,
}

fn record_step(decided: Settle) -> RecordStep {
    match decided {
        Settle::Act(action @ (Action::Terminate { .. } | Action::DeleteDraft { .. })) => {
            RecordStep::Act(action)
        }
        Settle::Act(_) | Settle::Wait(..) | Settle::Withdrawn => RecordStep::Keep,
        Settle::Ended => RecordStep::Forget,
    }
}

/// The Kubernetes writes of settling a record: only the record itself, on the Secret (`settle`
/// plans no write to a GdapRelationship object, which is gone).
struct SecretBookkeeping {
    secrets: Api<Secret>,
    secret: String,
}

#[async_trait]
impl Bookkeeping for SecretBookkeeping {
    async fn record_create_intent(&self, _: &str) -> Result<(), kube::Error> {
        Ok(())
    }

    async fn record_withdrawal(&self, record: &Withdrawal) -> Result<(), kube::Error> {
        withdrawals::record(&self.secrets, &self.secret, record).await
    }

    async fn record_generation(&self, _: u32, _: &str) -> Result<(), kube::Error> {
        Ok(())
    }
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
    fn a_record_takes_the_relationship_plans_step_to_end_it_or_waits_or_is_forgotten() {
        use crate::controllers::gdap_relationship::step::Waiting;
        use std::time::Duration;
        let terminate = Action::Terminate { id: "r".into() };
        let draft = Action::DeleteDraft {
            id: "r".into(),
            etag: "e".into(),
        };
        let record = Action::RecordWithdrawal {
            record: Withdrawal {
                relationship_id: "r".into(),
                customer: "c".into(),
                display_name: "x".into(),
            },
        };
        let table = [
            (Settle::Act(terminate.clone()), RecordStep::Act(terminate)),
            (Settle::Act(draft.clone()), RecordStep::Act(draft)),
            (Settle::Act(record), RecordStep::Keep),
            (
                Settle::Wait(Waiting::Activation, Duration::from_secs(1)),
                RecordStep::Keep,
            ),
            (Settle::Withdrawn, RecordStep::Keep),
            (Settle::Ended, RecordStep::Forget),
        ];
        for (decided, expected) in table {
            assert_eq!(record_step(decided.clone()), expected, "{decided:?}");
        }
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
