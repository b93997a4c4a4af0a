//! One reconcile of a GdapRelationship: kube's finalizer helper around the pipeline
//! dereference (credentials) → observe → plan → act → report.
//!
//! The finalizer helper adds `gdap.io/relationship` with a JSON-patch test-and-add (other
//! controllers' finalizers are kept) and removes it only when cleanup returns `Ok`; so cleanup
//! answers `Ok` when the plan releases the object and [`ReconcileError::Deleting`] — with the
//! delay the plan or the backoff chose — while deletion is still under way.
//!
//! While deleting with `deletionPolicy: Delete`, observe also reads the AppConsents relying on
//! the relationship (`consents`): the plan sends nothing to Microsoft until they have removed
//! their consents.

use super::act::{Bookkeeping, Target, act};
use super::consents;
use super::desired;
use super::observe::{
    CREATE_INTENT_ANNOTATION, GENERATION_ANNOTATION, RELATIONSHIP_ID_ANNOTATION, observe,
};
use super::plan::{Action, Observed, Plan, ReleaseReason, Unreadable, plan};
use super::report::{object_labels, report};
use super::status::{Inputs, Outcome, describe_wait};
use crate::api::GdapRelationship;
use crate::api::conditions::{events, reasons};
use crate::controllers::context::Context;
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::credentials_in_use;
use crate::controllers::failure::{self, Failure};
use crate::controllers::lifecycle::{self, Label, ReconcileError, Reconciled};
use crate::controllers::withdrawals::{self, Withdrawal};
use async_trait::async_trait;
use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as Lifecycle};
use serde_json::json;
use std::sync::Arc;
use tracing::info_span;

/// The finalizer that lets deletion terminate the relationship first.
pub const FINALIZER: &str = "gdap.io/relationship";
/// The kind, as metrics name it.
pub const KIND: &str = "GdapRelationship";

/// Reconciles one object (see `controllers::lifecycle`).
pub async fn reconcile(
    object: Arc<GdapRelationship>,
    ctx: Arc<Context>,
) -> Result<Requeue, finalizer::Error<ReconcileError>> {
    let span = info_span!("reconcile", kind = KIND, namespace = %object.namespace().unwrap_or_default(), name = %object.name_any(), customer = %object.spec.customer.tenant_id);
    let ctx = ctx.as_ref();
    lifecycle::reconcile(object, ctx, span, |event, api, label| async move {
        match event {
            Lifecycle::Apply(o) | Lifecycle::Cleanup(o) => step(&o, ctx, &api, &label).await,
        }
    })
    .await
}

/// After an error: the delay a deletion under way chose, else a backoff.
pub fn error_policy(
    object: Arc<GdapRelationship>,
    error: &finalizer::Error<ReconcileError>,
    ctx: Arc<Context>,
) -> Requeue {
    lifecycle::error_policy(object.as_ref(), error, &ctx)
}

impl Reconciled for GdapRelationship {
    const KIND: &'static str = KIND;
    const FINALIZER: &'static str = FINALIZER;
    fn failed_attempts(&self) -> u32 {
        self.status.as_ref().map_or(0, |s| s.failed_attempts)
    }
}

/// The pipeline for one object, alive or being deleted.
async fn step(
    object: &GdapRelationship,
    ctx: &Context,
    api: &Api<GdapRelationship>,
    label: &Label,
) -> Result<Requeue, ReconcileError> {
    let intent = desired::resolve(object);
    let namespace = object.namespace().unwrap_or_default();
    let secret_name = ctx.secret_name(&namespace, object.spec.credentials_ref.as_ref());
    let deleting = object.metadata.deletion_timestamp.is_some();
    let credentials = if deleting && intent.orphans_on_delete() {
        Err(CredentialsError::NoReference) // not needed: deletion releases without Microsoft
    } else {
        credentials_in_use::acquire_and_hold(ctx, &namespace, secret_name.as_deref()).await
    };
    let (mut observed, observe_error) = observe(object, &intent, credentials.as_ref()).await;
    if !(deleting && intent.orphans_on_delete()) {
        let failure = observe_error.as_ref().map(|e| e.failure().reason);
        ctx.credentials_used(&namespace, secret_name.as_deref(), failure);
    }
    let consents_failure = if deleting && !intent.orphans_on_delete() {
        read_consents(ctx, object, secret_name.as_deref(), &mut observed).await
    } else {
        None
    };
    let now = Utc::now();
    let plan = plan(&intent, &observed, &ctx.settings.timing, now);
    tracing::debug!(action = ?plan.action, requeue = ?plan.requeue, "planned");
    if let Action::Release(why) = plan.action {
        announce_release(ctx, object, why, secret_name.as_deref()).await;
        return Ok(Requeue::await_change());
    }
    if let Action::Wait(w) = plan.action {
        tracing::debug!("{}", describe_wait(w));
    }
    let failure = observe_error
        .as_ref()
        .map(|e| e.failure())
        .or(consents_failure);
    let (outcome, refused_group) = match (failure, &credentials) {
        (Some(f), _) => (Outcome::Failed(f), None),
        (None, Ok(credentials)) => {
            run(ctx, object, api, &plan, credentials, secret_name.as_deref()).await
        }
        (None, Err(_)) => (Outcome::Applied(super::act::Applied::Nothing), None),
    };
    let previous = object.status.clone().unwrap_or_default();
    let inputs = Inputs {
        intent: &intent,
        observed: &observed,
        plan: &plan,
        outcome: &outcome,
        refused_group: refused_group.as_deref(),
        previous: &previous,
        generation: object.metadata.generation,
        now,
    };
    let status = report(ctx, object, api, &inputs).await?;
    let requeue = failure::next_look(
        plan.requeue,
        outcome.failure(),
        status.failed_attempts,
        ctx.settings.timing.poll,
        ctx.settings.timing.resync,
    );
    // A write's record (the pending-writes annotation) reaches the cache through the watch,
    // whose event reconciles the object again at once; looking again before that would read the
    // object without the record and send the write a second time.
    let requeue = match &outcome {
        Outcome::Applied(applied)
            if super::pending::written(&plan.action, applied, observed.generation).is_some() =>
        {
            requeue.max(ctx.settings.timing.poll)
        }
        _ => requeue,
    };
    if let Some(f) = outcome.failure() {
        label.set(f.reason);
    }
    if deleting {
        let reason = outcome.failure().map_or(reasons::TERMINATING, |f| f.reason);
        return Err(ReconcileError::Deleting { requeue, reason });
    }
    Ok(Requeue::requeue(requeue))
}

/// While deleting: the AppConsents deletion waits for, into `observed.consents`. A refused
/// Namespace read degrades (only AppConsents already being deleted are waited for) and is
/// reported — a warning in the log and a Warning event `NamespaceUnreadable`; AppConsents that
/// cannot be listed leave `observed.consents` unreadable (the plan waits) and are the failure
/// returned.
async fn read_consents(
    ctx: &Context,
    object: &GdapRelationship,
    secret_name: Option<&str>,
    observed: &mut Observed,
) -> Option<Failure> {
    match consents::read(ctx, object, secret_name).await {
        Ok(found) => {
            if let Some(refusal) = &found.namespace_forbidden {
                let namespace = object.namespace().unwrap_or_default();
                tracing::warn!(error = %refusal, "cannot read Namespace {namespace} (grant the operator get on namespaces); AppConsents not yet marked for deletion are not waited for");
                let note = format!(
                    "cannot read Namespace {namespace} ({refusal}): while the namespace is deleted, AppConsents not yet marked for deletion are not waited for, so this relationship may be terminated before they remove their consents. Grant the operator get on namespaces (the chart does)"
                );
                ctx.publish(
                    object,
                    EventType::Warning,
                    events::NAMESPACE_UNREADABLE,
                    "ReadNamespace",
                    note,
                )
                .await;
            }
            observed.consents = Ok(found.names);
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell which AppConsents rely on the relationship");
            observed.consents = Err(Unreadable {
                transient: e.is_transient(),
            });
            Some(e.failure())
        }
    }
}

/// Runs the plan's action.
async fn run(
    ctx: &Context,
    object: &GdapRelationship,
    api: &Api<GdapRelationship>,
    plan: &Plan,
    credentials: &Credentials,
    secret_name: Option<&str>,
) -> (Outcome, Option<String>) {
    let token = credentials.clients.tokens.partner_graph();
    let bookkeeping = KubeBookkeeping {
        objects: api.clone(),
        object: object.name_any(),
        secrets: Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default()),
        secret: secret_name.unwrap_or_default().to_string(),
    };
    let target = Target {
        gdap: credentials.clients.gdap.as_ref(),
        token: &token,
        bookkeeping: &bookkeeping,
    };
    match act(&plan.action, &target).await {
        Ok(applied) => (Outcome::Applied(applied), None),
        Err(e) => {
            tracing::info!(error = %e, "action failed");
            let refused = e.refused_group().map(str::to_string);
            (Outcome::Failed(e.failure()), refused)
        }
    }
}

async fn announce_release(
    ctx: &Context,
    object: &GdapRelationship,
    why: ReleaseReason,
    secret_name: Option<&str>,
) {
    let note = match why {
        ReleaseReason::Orphaned => {
            "deletionPolicy Orphan (or managementPolicy Observe): the relationship stays in Microsoft"
        }
        ReleaseReason::NothingToDelete => "no relationship exists in Microsoft",
        ReleaseReason::Done => "the relationship is terminated",
        ReleaseReason::CannotWithdraw => {
            "the relationship awaits the customer's approval and Graph cannot withdraw it; it is recorded on the credentials Secret and terminated if the customer approves it (the request lapses after 90 days)"
        }
    };
    let kind = if matches!(why, ReleaseReason::CannotWithdraw) {
        EventType::Warning
    } else {
        EventType::Normal
    };
    ctx.publish(object, kind, events::RELEASED, "Release", note.to_string())
        .await;
    ctx.metrics.relationship(&object_labels(object), None, None);
    ctx.metrics.successor_pending(&object_labels(object), None);
    if let Some(secret) = secret_name {
        ctx.secret_released(&object.namespace().unwrap_or_default(), secret);
    }
}

/// The Kubernetes writes of `act`.
struct KubeBookkeeping {
    objects: Api<GdapRelationship>,
    object: String,
    secrets: Api<Secret>,
    secret: String,
}

#[async_trait]
impl Bookkeeping for KubeBookkeeping {
    async fn record_create_intent(&self, value: &str) -> Result<(), kube::Error> {
        let patch = json!({"metadata": {"annotations": {CREATE_INTENT_ANNOTATION: value}}});
        self.objects
            .patch(&self.object, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
    }

    async fn record_withdrawal(&self, record: &Withdrawal) -> Result<(), kube::Error> {
        withdrawals::record(&self.secrets, &self.secret, record).await
    }

    async fn record_generation(
        &self,
        generation: u32,
        relationship_id: &str,
    ) -> Result<(), kube::Error> {
        let patch = json!({"metadata": {"annotations": {
            GENERATION_ANNOTATION: generation.to_string(),
            RELATIONSHIP_ID_ANNOTATION: relationship_id,
        }}});
        self.objects
            .patch(&self.object, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
    }
}
