//! The AppConsent's part of the reconcile pipeline (`controllers::pipeline`): its intent,
//! observe, plan, act and report.
//!
//! The finalizer helper adds `gdap.io/app-consent` with a JSON-patch test-and-add (other
//! controllers' finalizers are kept) and removes it only when cleanup returns `Ok`; so cleanup
//! answers `Ok` when the plan releases the object and [`ReconcileError::Deleting`] — with the
//! delay the plan or the backoff chose — while deletion is still under way. The credentials
//! Secret is held in use (`credentials_hold`, by the driver) before anything is written with it.
//!
//! After the act step the pending writes are brought up to date in the annotation
//! `gdap.io/pending-writes` (see `pending`): the write just made is added, the writes the
//! observed tenant shows are dropped (all of them once the consent is verified). That is done
//! (`remember`) before the pipeline writes the status, and only when it changed. A write refused for a missing GDAP
//! role or access while that role is recent (`plan::access_propagating_since`) is reported as
//! `Propagating` and retried with the backoff, not as a failure a person must fix.

use super::act::{Applied, Target, act};
use super::desired;
use super::observe::observe;
use super::pending::PENDING_WRITES_ANNOTATION;
use super::plan::{
    Action, Observed, Plan, ReleaseReason, Timing, access_propagating_since, pending_after, plan,
};
use super::report::{object_labels, tell};
use super::status::{self, Inputs, Outcome, describe_wait, propagating_refusal};
use crate::api::{AppConsent, AppConsentStatus, GdapRelationship};
use crate::controllers::context::Context;
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::lifecycle::{self, ReconcileError, ReportError, reconciled};
use crate::controllers::pipeline::{Change, Looked, Next, Pass, Pipeline, Release, next_after};
use crate::microsoft::{Audience, Reason};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::Api;

/// The finalizer that lets deletion remove the consent first.
pub const FINALIZER: &str = "gdap.io/app-consent";
/// The kind, as metrics name it.
pub const KIND: &str = "AppConsent";

reconciled!(AppConsent, KIND, FINALIZER);

impl AppConsent {
    /// What the status and the report of a pass are built from.
    fn inputs<'a>(
        &self,
        ctx: &Context,
        pass: &'a Pass<'_, Self>,
        outcome: &'a Outcome,
        previous: &'a AppConsentStatus,
    ) -> Inputs<'a> {
        let intent = pass.intent;
        let manual_consent_url = ctx
            .credentials
            .endpoints()
            .admin_consent_url(&intent.customer, &intent.application_id)
            .to_string();
        Inputs {
            intent,
            observed: &pass.observed.observed,
            plan: pass.plan,
            outcome,
            previous,
            generation: self.metadata.generation,
            timing: Timing::from_settings(&ctx.settings),
            manual_consent_url,
            now: pass.now,
        }
    }
}

#[async_trait]
impl Pipeline for AppConsent {
    type Shared = Context;
    type Intent = desired::Intent;
    type Observed = Looked<Observed>;
    type Plan = Plan;
    type Outcome = Outcome;

    fn resolve(&self, _: &Context) -> desired::Intent {
        desired::resolve(self)
    }

    /// A deletion that orphans releases without Microsoft.
    fn holds_credentials(intent: &desired::Intent, deleting: bool) -> bool {
        !(deleting && intent.orphans_on_delete())
    }

    async fn observe(
        &self,
        ctx: &Context,
        intent: &desired::Intent,
        credentials: Result<&Credentials, &CredentialsError>,
    ) -> Looked<Observed> {
        let namespace = self.namespace().unwrap_or_default();
        let references: Api<GdapRelationship> = Api::namespaced(ctx.client.clone(), &namespace);
        let (observed, error) = observe(self, intent, credentials, &references).await;
        Looked::new(observed, error.as_ref().map(|e| e.failure()), None)
    }

    fn credentials_failure(looked: &Looked<Observed>) -> Option<&'static str> {
        looked.credentials_reason()
    }

    fn plan(
        ctx: &Context,
        intent: &desired::Intent,
        looked: &Looked<Observed>,
        now: DateTime<Utc>,
    ) -> Plan {
        plan(
            intent,
            &looked.observed,
            &Timing::from_settings(&ctx.settings),
            now,
        )
    }

    fn release(&self, plan: &Plan) -> Option<Release> {
        let Action::Release(why) = plan.action else {
            return None;
        };
        Some(Release {
            warning: false,
            note: release_note(why).to_string(),
        })
    }

    fn released(&self, ctx: &Context) {
        ctx.metrics.consent(&object_labels(self), None);
    }

    async fn act(&self, ctx: &Context, pass: &Pass<'_, Self>) -> Outcome {
        if let Action::Wait(w) = pass.plan.action {
            tracing::debug!("{}", describe_wait(w));
        }
        match (&pass.observed.failure, pass.credentials) {
            (Some(failure), _) => Outcome::Failed {
                failure: failure.clone(),
                manual: false,
            },
            (None, Ok(credentials)) => {
                let observed = &pass.observed.observed;
                let timing = Timing::from_settings(&ctx.settings);
                run(
                    pass.intent,
                    pass.plan,
                    credentials,
                    observed,
                    &timing,
                    pass.now,
                )
                .await
            }
            (None, Err(_)) => Outcome::Applied(Applied::Nothing),
        }
    }

    async fn remember(
        &self,
        ctx: &Context,
        api: &Api<Self>,
        pass: &Pass<'_, Self>,
        outcome: &Outcome,
    ) -> Result<(), ReportError> {
        let wrote = matches!(
            outcome,
            Outcome::Applied(Applied::Consented(_) | Applied::Done { .. })
        );
        let observed = &pass.observed.observed;
        remember_writes(ctx, api, self, observed, pass.plan, wrote, pass.now).await?;
        Ok(())
    }

    fn new_status(
        &self,
        ctx: &Context,
        pass: &Pass<'_, Self>,
        outcome: &Outcome,
        previous: &AppConsentStatus,
    ) -> AppConsentStatus {
        status::build(&self.inputs(ctx, pass, outcome, previous))
    }

    async fn tell(
        &self,
        ctx: &Context,
        _: &Api<Self>,
        pass: &Pass<'_, Self>,
        outcome: &Outcome,
        status: Change<'_, AppConsentStatus>,
    ) -> Result<Next, ReconcileError> {
        let inputs = self.inputs(ctx, pass, outcome, status.previous);
        tell(ctx, self, &inputs, status.new).await;
        let failed_attempts = status.new.failed_attempts;
        Ok(next_after(
            ctx,
            pass.plan.requeue,
            outcome.failure(),
            failed_attempts,
        ))
    }
}

/// Brings the annotation of pending writes up to date (see the module docs); writes only when it
/// changes.
async fn remember_writes(
    ctx: &Context,
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
    lifecycle::record_write(ctx, api, &object.name_any(), &patch).await
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

/// What the `Released` event says.
fn release_note(why: ReleaseReason) -> &'static str {
    match why {
        ReleaseReason::Orphaned => {
            "deletionPolicy Orphan (or managementPolicy Observe): the consent stays in the customer tenant"
        }
        ReleaseReason::NothingToDelete => {
            "the application holds nothing in the customer tenant (checked with what the operator can still read: nothing to remove)"
        }
        ReleaseReason::Done => {
            "the application permissions of spec.grants and the consent were removed from the customer tenant"
        }
    }
}
