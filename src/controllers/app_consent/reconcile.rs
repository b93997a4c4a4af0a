//! One reconcile of an AppConsent: kube's finalizer helper around the pipeline
//! dereference (credentials) → observe → plan → act → report.
//!
//! The finalizer helper adds `gdap.io/app-consent` with a JSON-patch test-and-add (other
//! controllers' finalizers are kept) and removes it only when cleanup returns `Ok`; so cleanup
//! answers `Ok` when the plan releases the object and [`ReconcileError::Deleting`] — with the
//! delay the plan or the backoff chose — while deletion is still under way. The credentials
//! Secret is held in use (`credentials_in_use`) before anything is written with it.
//!
//! After the act step the pending writes are brought up to date in the annotation
//! `gdap.io/pending-writes` (see `pending`): the write just made is added, the writes the
//! observed tenant shows are dropped (all of them once the consent is verified). That is done
//! before the status is written, and only when it changed. A write refused for a missing GDAP
//! role or access while that role is recent (`plan::access_propagating_since`) is reported as
//! `Propagating` and retried with the backoff, not as a failure a person must fix.

use super::act::{Applied, Target, act};
use super::desired;
use super::observe::observe;
use super::pending::PENDING_WRITES_ANNOTATION;
use super::plan::{
    Action, Observed, Plan, ReleaseReason, Timing, access_propagating_since, pending_after, plan,
};
use super::report::{object_labels, report};
use super::status::{Inputs, Outcome, describe_wait, propagating_refusal};
use crate::api::conditions::{events, reasons};
use crate::api::{AppConsent, GdapRelationship};
use crate::controllers::context::Context;
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::credentials_in_use;
use crate::controllers::failure;
use crate::controllers::lifecycle::{self, Label, ReconcileError, Reconciled};
use crate::microsoft::{Audience, Reason};
use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as Lifecycle};
use std::sync::Arc;
use tracing::info_span;

/// The finalizer that lets deletion remove the consent first.
pub const FINALIZER: &str = "gdap.io/app-consent";
/// The kind, as metrics name it.
pub const KIND: &str = "AppConsent";

/// Reconciles one object (see `controllers::lifecycle`).
pub async fn reconcile(
    object: Arc<AppConsent>,
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
    object: Arc<AppConsent>,
    error: &finalizer::Error<ReconcileError>,
    ctx: Arc<Context>,
) -> Requeue {
    lifecycle::error_policy(object.as_ref(), error, &ctx)
}

impl Reconciled for AppConsent {
    const KIND: &'static str = KIND;
    const FINALIZER: &'static str = FINALIZER;
    fn failed_attempts(&self) -> u32 {
        self.status.as_ref().map_or(0, |s| s.failed_attempts)
    }
}

/// The pipeline for one object, alive or being deleted.
async fn step(
    object: &AppConsent,
    ctx: &Context,
    api: &Api<AppConsent>,
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
    let references: Api<GdapRelationship> = Api::namespaced(ctx.client.clone(), &namespace);
    let (observed, observe_error) =
        observe(object, &intent, credentials.as_ref(), &references).await;
    if !(deleting && intent.orphans_on_delete()) {
        let failure = observe_error.as_ref().map(|e| e.failure().reason);
        ctx.credentials_used(&namespace, secret_name.as_deref(), failure);
    }
    let now = Utc::now();
    let timing = ctx.consent_timing();
    let plan = plan(&intent, &observed, &timing, now);
    tracing::debug!(action = ?plan.action, requeue = ?plan.requeue, "planned");
    if let Action::Release(why) = plan.action {
        announce_release(ctx, object, why, secret_name.as_deref()).await;
        return Ok(Requeue::await_change());
    }
    if let Action::Wait(w) = plan.action {
        tracing::debug!("{}", describe_wait(w));
    }
    let outcome = match (&observe_error, &credentials) {
        (Some(e), _) => Outcome::Failed {
            failure: e.failure(),
            manual: false,
        },
        (None, Ok(credentials)) => run(&intent, &plan, credentials, &observed, &timing, now).await,
        (None, Err(_)) => Outcome::Applied(Applied::Nothing),
    };
    let wrote = matches!(
        outcome,
        Outcome::Applied(Applied::Consented(_) | Applied::Done { .. })
    );
    let remembered = remember_writes(api, object, &observed, &plan, wrote, now).await;
    let previous = object.status.clone().unwrap_or_default();
    let manual_url = ctx
        .credentials
        .endpoints()
        .admin_consent_url(&intent.customer, &intent.application_id)
        .to_string();
    let inputs = Inputs {
        intent: &intent,
        observed: &observed,
        plan: &plan,
        outcome: &outcome,
        previous: &previous,
        generation: object.metadata.generation,
        timing: &timing,
        manual_consent_url: &manual_url,
        now,
    };
    let status = report(ctx, object, api, &inputs).await?;
    if let Err(e) = remembered {
        // The write is done but not remembered: the next reconcile may try it once more and
        // hear "already exists", which is remembered then. Back off like any API failure.
        tracing::warn!(error = %e, "recording the pending writes failed");
        return Err(ReconcileError::Report(e.into()));
    }
    let requeue = failure::next_look(
        plan.requeue,
        outcome.failure(),
        status.failed_attempts,
        ctx.settings.timing.poll,
        ctx.settings.timing.resync,
    );
    if let Some(f) = outcome.failure() {
        label.set(f.reason);
    }
    if deleting {
        let reason = outcome.failure().map_or(reasons::TERMINATING, |f| f.reason);
        return Err(ReconcileError::Deleting { requeue, reason });
    }
    Ok(Requeue::requeue(requeue))
}

/// Brings the annotation of pending writes up to date (see the module docs); writes only when it
/// changes.
async fn remember_writes(
    api: &Api<AppConsent>,
    object: &AppConsent,
    observed: &Observed,
    plan: &Plan,
    wrote: bool,
    now: DateTime<Utc>,
) -> Result<(), kube::Error> {
    if matches!(plan.action, Action::Release(_)) {
        return Ok(());
    }
    let next = pending_after(observed, plan, wrote, now);
    if next == observed.pending {
        return Ok(());
    }
    let patch = serde_json::json!({"metadata": {"annotations": {
        PENDING_WRITES_ANNOTATION: next.to_annotation(),
    }}});
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(drop)
}

/// A refusal that Microsoft gives while it still propagates the partner user's GDAP role.
fn is_access_refusal(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::PartnerCenterForbidden | Reason::NoGdapAccess | Reason::AccessDenied
    )
}

/// Runs the plan's action with the partner user's delegated tokens.
async fn run(
    intent: &desired::Intent,
    plan: &Plan,
    credentials: &Credentials,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Outcome {
    let clients = &credentials.clients;
    let partner_center_token = clients.tokens.partner_center();
    let customer_token = clients
        .tokens
        .delegated_token(&intent.customer, Audience::Graph);
    let target = Target {
        customer: &intent.customer,
        application_id: &intent.application_id,
        partner_center: clients.partner_center.as_ref(),
        directory: clients.directory.as_ref(),
        partner_center_token: &partner_center_token,
        customer_token: &customer_token,
        tokens: &clients.tokens,
    };
    match act(&plan.action, &target).await {
        Ok(applied) => Outcome::Applied(applied),
        Err(e) => {
            tracing::info!(error = %e, "action failed");
            let recent_role = observed
                .partner
                .as_ref()
                .ok()
                .filter(|_| is_access_refusal(e.error().reason()))
                .and_then(|p| access_propagating_since(intent, p, timing, now));
            match recent_role {
                Some(since) => Outcome::Failed {
                    failure: propagating_refusal(&e.to_string(), since, timing, now),
                    manual: false,
                },
                None => Outcome::Failed {
                    failure: e.failure(),
                    manual: e.needs_manual_consent(),
                },
            }
        }
    }
}

async fn announce_release(
    ctx: &Context,
    object: &AppConsent,
    why: ReleaseReason,
    secret_name: Option<&str>,
) {
    let note = match why {
        ReleaseReason::Orphaned => {
            "deletionPolicy Orphan (or managementPolicy Observe): the consent stays in the customer tenant"
        }
        ReleaseReason::NothingToDelete => {
            "the application holds nothing in the customer tenant (checked with what the operator can still read: nothing to remove)"
        }
        ReleaseReason::Done => {
            "the application permissions of spec.grants and the consent were removed from the customer tenant"
        }
    };
    ctx.publish(
        object,
        EventType::Normal,
        events::RELEASED,
        "Release",
        note.to_string(),
    )
    .await;
    ctx.metrics.consent(&object_labels(object), None);
    if let Some(secret) = secret_name {
        ctx.secret_released(&object.namespace().unwrap_or_default(), secret);
    }
}
