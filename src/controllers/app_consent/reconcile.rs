//! One reconcile of an AppConsent: kube's finalizer helper around the pipeline
//! dereference (credentials) → observe → plan → act → report.
//!
//! The finalizer helper adds `gdap.io/app-consent` with a JSON-patch test-and-add (other
//! controllers' finalizers are kept) and removes it only when cleanup returns `Ok`; so cleanup
//! answers `Ok` when the plan releases the object and [`ReconcileError::Deleting`] — with the
//! delay the plan or the backoff chose — while deletion is still under way. The credentials
//! Secret is held in use (`credentials_in_use`) before anything is written with it.

use super::act::{Applied, Target, act};
use super::desired;
use super::observe::observe;
use super::plan::{Action, Plan, ReleaseReason, plan};
use super::report::{ReportError, object_labels, report};
use super::status::{Inputs, Outcome, describe_wait};
use crate::api::conditions::{events, reasons};
use crate::api::{AppConsent, GdapRelationship};
use crate::controllers::context::Context;
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::credentials_in_use;
use crate::controllers::failure::{self, Failure};
use crate::microsoft::Audience;
use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as Lifecycle, finalizer};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{Instrument, info_span};

/// The finalizer that lets deletion remove the consent first.
pub const FINALIZER: &str = "gdap.io/app-consent";
/// The kind, as metrics name it.
pub const KIND: &str = "AppConsent";

/// What travels to the controller's error policy.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The status could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Deletion is under way; look again after `requeue` (the finalizer stays).
    #[error("deletion in progress: {reason}")]
    Deleting {
        /// When to look again.
        requeue: Duration,
        /// The reason shown in the reconcile metric.
        reason: &'static str,
    },
}

/// Reconciles one object.
pub async fn reconcile(
    object: Arc<AppConsent>,
    ctx: Arc<Context>,
) -> Result<Requeue, finalizer::Error<ReconcileError>> {
    let span = info_span!("reconcile", kind = KIND, namespace = %object.namespace().unwrap_or_default(), name = %object.name_any(), customer = %object.spec.customer.tenant_id);
    let started = Instant::now();
    let key = failure_key(&object);
    let api: Api<AppConsent> =
        Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let label = Mutex::new("success");
    let result = finalizer(&api, FINALIZER, object, |event| async {
        match event {
            Lifecycle::Apply(o) | Lifecycle::Cleanup(o) => step(&o, &ctx, &api, &label).await,
        }
    })
    .instrument(span)
    .await;
    let label = match &result {
        Ok(_) => *label.lock().expect("label lock"),
        Err(e) => error_label(e),
    };
    if !matches!(&result, Err(e) if error_label(e) == reasons::KUBERNETES_ERROR) {
        ctx.unrecorded_failures.clear(&key);
    }
    ctx.metrics
        .reconciled(KIND, label, started.elapsed().as_secs_f64());
    result
}

fn error_label(error: &finalizer::Error<ReconcileError>) -> &'static str {
    match error {
        finalizer::Error::ApplyFailed(ReconcileError::Deleting { reason, .. })
        | finalizer::Error::CleanupFailed(ReconcileError::Deleting { reason, .. }) => reason,
        _ => reasons::KUBERNETES_ERROR,
    }
}

fn failure_key(object: &AppConsent) -> String {
    format!(
        "{KIND}/{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// After an error: the delay deletion chose, else a backoff from the failures so far.
pub fn error_policy(
    object: Arc<AppConsent>,
    error: &finalizer::Error<ReconcileError>,
    ctx: Arc<Context>,
) -> Requeue {
    match error {
        finalizer::Error::ApplyFailed(ReconcileError::Deleting { requeue, .. })
        | finalizer::Error::CleanupFailed(ReconcileError::Deleting { requeue, .. }) => {
            Requeue::requeue(*requeue)
        }
        other => {
            tracing::warn!(error = %other, "reconcile failed; retrying with backoff");
            let recorded = object.status.as_ref().map_or(0, |s| s.failed_attempts);
            let attempts = recorded + ctx.unrecorded_failures.record(&failure_key(&object));
            let timing = &ctx.settings.timing;
            Requeue::requeue(failure::backoff(
                attempts,
                true,
                timing.poll,
                timing.resync,
                failure::jitter(),
            ))
        }
    }
}

/// The pipeline for one object, alive or being deleted.
async fn step(
    object: &AppConsent,
    ctx: &Context,
    api: &Api<AppConsent>,
    label: &Mutex<&'static str>,
) -> Result<Requeue, ReconcileError> {
    let intent = desired::resolve(object);
    let namespace = object.namespace().unwrap_or_default();
    let secret_name = ctx.secret_name(&namespace, object.spec.credentials_ref.as_ref());
    let deleting = object.metadata.deletion_timestamp.is_some();
    let credentials = if deleting && intent.orphans_on_delete() {
        Err(CredentialsError::NoReference) // not needed: deletion releases without Microsoft
    } else {
        dereference(ctx, &namespace, secret_name.as_deref()).await
    };
    let references: Api<GdapRelationship> = Api::namespaced(ctx.client.clone(), &namespace);
    let (observed, observe_error) =
        observe(object, &intent, credentials.as_ref(), &references).await;
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
        (None, Ok(credentials)) => run(&intent, &plan, credentials).await,
        (None, Err(_)) => Outcome::Applied(Applied::Nothing),
    };
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
    let requeue = next_look(&plan, outcome.failure(), status.failed_attempts, ctx);
    if let Some(f) = outcome.failure() {
        *label.lock().expect("label lock") = f.reason;
    }
    if deleting {
        let reason = outcome.failure().map_or(reasons::TERMINATING, |f| f.reason);
        return Err(ReconcileError::Deleting { requeue, reason });
    }
    Ok(Requeue::requeue(requeue))
}

/// The credentials for the object, held in use (finalizer on the Secret) before anything is
/// written with them.
async fn dereference(
    ctx: &Context,
    namespace: &str,
    secret_name: Option<&str>,
) -> Result<Credentials, CredentialsError> {
    let name = secret_name.ok_or(CredentialsError::NoReference)?;
    let credentials = ctx.credentials.acquire(namespace, name).await?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    credentials_in_use::hold(&secrets, &credentials.secret)
        .await
        .map_err(|source| CredentialsError::Kube {
            namespace: namespace.into(),
            name: name.into(),
            source,
        })?;
    Ok(credentials)
}

/// Runs the plan's action with the partner user's delegated tokens.
async fn run(intent: &desired::Intent, plan: &Plan, credentials: &Credentials) -> Outcome {
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
            Outcome::Failed {
                failure: e.failure(),
                manual: e.needs_manual_consent(),
            }
        }
    }
}

/// When to look again: the plan's choice, or after a failure the backoff (never at once).
fn next_look(plan: &Plan, failure: Option<&Failure>, attempts: u32, ctx: &Context) -> Duration {
    let timing = &ctx.settings.timing;
    match failure {
        Some(f) => failure::backoff(
            attempts,
            f.transient,
            timing.poll,
            timing.resync,
            failure::jitter(),
        ),
        None => plan.requeue,
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
            "the application has no consent in the customer tenant (nothing the operator could remove)"
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
