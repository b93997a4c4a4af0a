//! The GdapRelationship's part of the reconcile pipeline (`controllers::pipeline`): its intent,
//! observe, plan, act and report.
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
use super::desired::{self, Intent};
use super::observe::{
    CREATE_INTENT_ANNOTATION, GENERATION_ANNOTATION, RELATIONSHIP_ID_ANNOTATION, observe,
};
use super::plan::{Action, Observed, Plan, ReleaseReason, Unreadable, plan};
use super::report::{forget_annotation_record, tell};
use super::status::{self, Inputs, Outcome, describe_wait};
use crate::api::conditions::events;
use crate::api::{GdapRelationship, GdapRelationshipStatus};
use crate::controllers::context::Context;
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::failure::Failure;
use crate::controllers::lifecycle::{ReconcileError, reconciled};
use crate::controllers::pipeline::{Change, Looked, Next, Pass, Pipeline, Release, next_after};
use crate::controllers::withdrawals::{self, Withdrawal};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;

pub use crate::api::gdap_relationship::FINALIZER;
/// The kind, as metrics name it.
pub const KIND: &str = "GdapRelationship";

reconciled!(GdapRelationship, KIND, FINALIZER);

/// What acting gave: the outcome, and a security group Microsoft refused, if any.
pub struct Acted {
    /// The outcome.
    pub outcome: Outcome,
    /// The group Microsoft refused to assign.
    pub refused_group: Option<String>,
}

impl GdapRelationship {
    /// What the status and the report of a pass are built from.
    fn inputs<'a>(
        &self,
        pass: &'a Pass<'_, Self>,
        acted: &'a Acted,
        previous: &'a GdapRelationshipStatus,
    ) -> Inputs<'a> {
        Inputs {
            intent: pass.intent,
            observed: &pass.observed.observed,
            plan: pass.plan,
            outcome: &acted.outcome,
            refused_group: acted.refused_group.as_deref(),
            previous,
            generation: self.metadata.generation,
            now: pass.now,
        }
    }
}

#[async_trait]
impl Pipeline for GdapRelationship {
    type Shared = Context;
    type Intent = Intent;
    /// With the AppConsents a deletion waits for, and why they could not be read.
    type Observed = Looked<Observed>;
    type Plan = Plan;
    type Outcome = Acted;

    fn resolve(&self, _: &Context) -> Intent {
        desired::resolve(self)
    }

    /// A deletion that orphans releases without Microsoft.
    fn holds_credentials(intent: &Intent, deleting: bool) -> bool {
        !(deleting && intent.orphans_on_delete())
    }

    async fn observe(
        &self,
        ctx: &Context,
        intent: &Intent,
        credentials: Result<&Credentials, &CredentialsError>,
    ) -> Looked<Observed> {
        let (mut observed, observe_error) = observe(self, intent, credentials).await;
        let deleting = self.metadata.deletion_timestamp.is_some();
        let consents_failure = if deleting && !intent.orphans_on_delete() {
            let secret = ctx.secret_name(
                &self.namespace().unwrap_or_default(),
                self.spec.credentials_ref.as_ref(),
            );
            read_consents(ctx, self, secret.as_deref(), &mut observed).await
        } else {
            None
        };
        Looked::new(
            observed,
            observe_error.as_ref().map(|e| e.failure()),
            consents_failure,
        )
    }

    fn credentials_failure(looked: &Looked<Observed>) -> Option<&'static str> {
        looked.credentials_reason()
    }

    fn plan(ctx: &Context, intent: &Intent, looked: &Looked<Observed>, now: DateTime<Utc>) -> Plan {
        plan(intent, &looked.observed, &ctx.settings.timing, now)
    }

    fn release(&self, plan: &Plan) -> Option<Release> {
        let Action::Release(why) = plan.action else {
            return None;
        };
        Some(Release {
            warning: matches!(why, ReleaseReason::CannotWithdraw),
            note: release_note(why).to_string(),
        })
    }

    /// Nothing: its metrics are read from the watch cache at each scrape
    /// (`metrics::relationships`), which skips a released object.
    fn released(&self, _ctx: &Context) {}

    async fn act(&self, ctx: &Context, pass: &Pass<'_, Self>) -> Acted {
        if let Action::Wait(w) = pass.plan.action {
            tracing::debug!("{}", describe_wait(w));
        }
        let looked = pass.observed;
        let failure = looked.failure.clone();
        match (failure, pass.credentials) {
            (Some(f), _) => Acted {
                outcome: Outcome::Failed(f),
                refused_group: None,
            },
            (None, Ok(credentials)) => run(ctx, self, pass.plan, credentials, pass.secret).await,
            (None, Err(_)) => Acted {
                outcome: Outcome::Applied(super::act::Applied::Nothing),
                refused_group: None,
            },
        }
    }

    /// `status.pendingWrites` records the writes this pass made.
    fn status_records_writes(&self, pass: &Pass<'_, Self>, acted: &Acted) -> bool {
        wrote_in_microsoft(pass, acted)
    }

    fn new_status(
        &self,
        _: &Context,
        pass: &Pass<'_, Self>,
        acted: &Acted,
        previous: &GdapRelationshipStatus,
    ) -> GdapRelationshipStatus {
        status::build(&self.inputs(pass, acted, previous))
    }

    async fn tell(
        &self,
        ctx: &Context,
        api: &Api<Self>,
        pass: &Pass<'_, Self>,
        acted: &Acted,
        status: Change<'_, GdapRelationshipStatus>,
    ) -> Result<Next, ReconcileError> {
        let inputs = self.inputs(pass, acted, status.previous);
        forget_annotation_record(ctx, self, api).await?;
        tell(ctx, self, api, &inputs, status.new).await?;
        let (plan, outcome) = (pass.plan, &acted.outcome);
        let failed_attempts = status.new.failed_attempts;
        let next = next_after(ctx, plan.requeue, outcome.failure(), failed_attempts);
        // A write's record (`status.pendingWrites`) reaches the cache through the watch,
        // whose event reconciles the object again at once; looking again before that would read
        // the object without the record and send the write a second time.
        let written = wrote_in_microsoft(pass, acted);
        Ok(Next {
            requeue: if written {
                next.requeue.max(ctx.settings.timing.poll)
            } else {
                next.requeue
            },
            ..next
        })
    }
}

/// Whether the pass made a write in Microsoft that its status must record.
fn wrote_in_microsoft(pass: &Pass<'_, GdapRelationship>, acted: &Acted) -> bool {
    match &acted.outcome {
        Outcome::Applied(applied) => {
            let generation = pass.observed.observed.generation;
            !super::pending::all_written(&pass.plan.action, applied, generation).is_empty()
        }
        Outcome::Failed(_) => false,
    }
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
    plan: &Plan,
    credentials: &Credentials,
    secret_name: Option<&str>,
) -> Acted {
    let token = credentials.clients.tokens.partner_graph();
    let namespace = object.namespace().unwrap_or_default();
    let bookkeeping = KubeBookkeeping {
        objects: Api::namespaced(ctx.client.clone(), &namespace),
        object: object.name_any(),
        secrets: Api::namespaced(ctx.client.clone(), &namespace),
        secret: secret_name.unwrap_or_default().to_string(),
    };
    let target = Target {
        gdap: credentials.clients.gdap.as_ref(),
        token: &token,
        directory: credentials.clients.directory.as_ref(),
        tokens: &credentials.clients.tokens,
        bookkeeping: &bookkeeping,
    };
    match act(&plan.action, &target).await {
        Ok(applied) => Acted {
            outcome: Outcome::Applied(applied),
            refused_group: None,
        },
        Err(e) => {
            tracing::info!(error = %e, "action failed");
            Acted {
                outcome: Outcome::Failed(e.failure()),
                refused_group: e.refused_group().map(str::to_string),
            }
        }
    }
}

/// What the `Released` event says.
fn release_note(why: ReleaseReason) -> &'static str {
    match why {
        ReleaseReason::Orphaned => {
            "deletionPolicy Orphan (or managementPolicy Observe): the relationship stays in Microsoft"
        }
        ReleaseReason::NothingToDelete => "no relationship exists in Microsoft",
        ReleaseReason::Done => "the relationship is terminated",
        ReleaseReason::CannotWithdraw => {
            "the relationship awaits the customer's approval and Graph cannot withdraw it; it is recorded on the credentials Secret and terminated if the customer approves it (the request lapses after 90 days)"
        }
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
