//! The one reconcile pipeline of every controller: dereference (credentials) → observe → plan →
//! act → report, driven by [`reconcile`] for any kind that implements [`Pipeline`].
//!
//! The driver owns what all kinds share: the log span, kube's finalizer helper (through
//! `lifecycle`), the credentials Secret (read and held in use before anything is written with
//! it, its use reported to the Secret controller and the credentials gauge), releasing an object
//! (the `Released` event, the Secret let go), the reconcile metric's label, the deletion's
//! requeue, the error policy's backoff and the status write (only when the status changed). A
//! kind keeps only what is its own: how it resolves its intent, observes, plans, acts, what it
//! remembers of its writes, its status, and what it tells of a pass (events, metrics, when to
//! look again).
//!
//! Contract of one pass, alive or being deleted:
//! 1. `resolve` the intent once, from the spec.
//! 2. When [`Pipeline::holds_credentials`], read the credentials and hold the Secret in use.
//! 3. `observe` with them (or the reason they are missing); report their use.
//! 4. `plan` (pure). A plan that [`Pipeline::release`]s the object publishes `Released`, drops
//!    the kind's per-object state ([`Pipeline::released`]), lets the Secret go and ends the
//!    reconcile: the finalizer helper then removes the finalizer.
//! 5. `act`; then [`Pipeline::remember`] the writes made; build the [`Pipeline::new_status`] from the
//!    object's previous one and write it when it changed (a failure to remember is returned
//!    after the status is written); then [`Pipeline::tell`] of the pass, which answers when to look
//!    again and the failure, if any.
//! 6. While deleting, the pass ends in [`ReconcileError::Deleting`] so the finalizer stays.

use super::context::Context;
use super::credentials::{Credentials, CredentialsError};
use super::credentials_hold::acquire_and_hold;
use super::failure::{self, Failure};
use super::lifecycle::{self, Label, ReconcileError, Reconciled, ReportError};
use crate::api::conditions::{events, reasons};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::Api;
use kube::core::object::HasStatus;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as Lifecycle};
use serde::Serialize;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tracing::info_span;

/// How a plan releases an object: the `Released` event it publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Normal, or Warning when something is left for a person to know about.
    pub warning: bool,
    /// What became of the object's resources in Microsoft or in the sink.
    pub note: String,
}

/// What a report answers: when to look again, and the condition reason the pass failed with
/// (the reconcile metric's label; `None` is success).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    /// When to reconcile again.
    pub requeue: Duration,
    /// The reason of the failure this pass reported, if any.
    pub failure: Option<&'static str>,
}

/// What a kind that reads Microsoft with the credentials observed: the state, and why a read
/// failed (the credentials or Microsoft; then anything else the kind reads).
#[derive(Debug)]
pub struct Looked<O> {
    /// The observed state.
    pub observed: O,
    /// Reading with the credentials failed: the credentials gauge follows this one.
    pub credentials_failure: Option<Failure>,
    /// The failure the pass reports: the credentials read's, else another read's.
    pub failure: Option<Failure>,
}

impl<O> Looked<O> {
    /// What observe found, with its read's failure and another read's.
    pub fn new(observed: O, credentials_failure: Option<Failure>, other: Option<Failure>) -> Self {
        let failure = credentials_failure.clone().or(other);
        Looked {
            observed,
            credentials_failure,
            failure,
        }
    }

    /// The reason of the credentials read's failure.
    pub fn credentials_reason(&self) -> Option<&'static str> {
        self.credentials_failure.as_ref().map(|f| f.reason)
    }
}

/// When to look again after a report: the plan's requeue, or the backoff after the pass's
/// failure ([`failure::next_look`]), and that failure's reason.
pub fn next_after(
    ctx: &Context,
    requeue: Duration,
    failure: Option<&Failure>,
    failed_attempts: u32,
) -> Next {
    let timing = &ctx.settings.timing;
    Next {
        requeue: failure::next_look(
            requeue,
            failure,
            failed_attempts,
            timing.poll,
            timing.resync,
        ),
        failure: failure.map(|f| f.reason),
    }
}

/// What one pass has found and decided, for `act` and `report`.
pub struct Pass<'a, K: Pipeline> {
    /// The intent resolved from the spec.
    pub intent: &'a K::Intent,
    /// What observe found.
    pub observed: &'a K::Observed,
    /// The plan.
    pub plan: &'a K::Plan,
    /// The credentials (or why there are none).
    pub credentials: Result<&'a Credentials, &'a CredentialsError>,
    /// The credentials Secret's name, when the object has one.
    pub secret: Option<&'a str>,
    /// The time the plan was made for.
    pub now: DateTime<Utc>,
}

/// One kind's own part of the pipeline (see the module docs for the order of the calls).
#[async_trait]
pub trait Pipeline:
    Reconciled + HasStatus<Status: Serialize + PartialEq + Clone + Default + Send + Sync>
{
    /// What the kind's controller shares: the common [`Context`] and what only this kind needs.
    type Shared: AsRef<Context> + Send + Sync + 'static;
    /// The desired state, resolved once from the spec.
    type Intent: Send + Sync;
    /// What observe found (including the failure to read, when there is one).
    type Observed: Send + Sync;
    /// The decision.
    type Plan: Debug + Send + Sync;
    /// What acting on the plan gave.
    type Outcome: Send + Sync;

    /// The intent.
    fn resolve(&self, shared: &Self::Shared) -> Self::Intent;
    /// Whether this pass reads the credentials and holds their Secret before observing (`false`
    /// when the kind reads them only when it acts, or a deletion releases without Microsoft).
    fn holds_credentials(intent: &Self::Intent, deleting: bool) -> bool;
    /// Reads the world: the object, Microsoft with the credentials, the kind's caches.
    async fn observe(
        &self,
        shared: &Self::Shared,
        intent: &Self::Intent,
        credentials: Result<&Credentials, &CredentialsError>,
    ) -> Self::Observed;
    /// The reason the credentials failed observe with, for the credentials gauge.
    fn credentials_failure(observed: &Self::Observed) -> Option<&'static str>;
    /// The pure decision.
    fn plan(
        shared: &Self::Shared,
        intent: &Self::Intent,
        observed: &Self::Observed,
        now: DateTime<Utc>,
    ) -> Self::Plan;
    /// When the plan releases the object: its `Released` event.
    fn release(&self, plan: &Self::Plan) -> Option<Release>;
    /// Drops what the kind keeps per object (metrics, a running import) once it is released.
    fn released(&self, shared: &Self::Shared);
    /// Carries the plan out.
    async fn act(&self, shared: &Self::Shared, pass: &Pass<'_, Self>) -> Self::Outcome;
    /// Records on the object what must outlive the pass, before its status is written: the
    /// writes just made in Microsoft (the pending-writes annotation). Nothing by default.
    async fn remember(
        &self,
        _shared: &Self::Shared,
        _api: &Api<Self>,
        _pass: &Pass<'_, Self>,
        _outcome: &Self::Outcome,
    ) -> Result<(), ReportError> {
        Ok(())
    }
    /// Whether the status this pass writes records writes just made in Microsoft (the kind keeps
    /// its pending writes in the status): its write is then retried through an outage of the API
    /// server ([`lifecycle::through_outage`]), as a lost record would send the writes again.
    fn status_records_writes(&self, _pass: &Pass<'_, Self>, _outcome: &Self::Outcome) -> bool {
        false
    }
    /// The status after this pass (pure).
    fn new_status(
        &self,
        shared: &Self::Shared,
        pass: &Pass<'_, Self>,
        outcome: &Self::Outcome,
        previous: &Self::Status,
    ) -> Self::Status;
    /// Tells of the pass, from its status before and after: events and metrics; answers when
    /// to look again.
    async fn tell(
        &self,
        shared: &Self::Shared,
        api: &Api<Self>,
        pass: &Pass<'_, Self>,
        outcome: &Self::Outcome,
        status: Change<'_, Self::Status>,
    ) -> Result<Next, ReconcileError>;
}

/// A status before and after a pass.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a, S> {
    /// Before the pass.
    pub previous: &'a S,
    /// After it (written when it differs).
    pub new: &'a S,
}

/// Reconciles one object of kind `K` (the controller's reconcile function).
pub async fn reconcile<K: Pipeline>(
    object: Arc<K>,
    shared: Arc<K::Shared>,
) -> Result<Requeue, finalizer::Error<ReconcileError>> {
    let span = info_span!("reconcile", kind = K::KIND, namespace = %object.namespace().unwrap_or_default(), name = %object.name_any(), customer = %object.customer());
    let shared = shared.as_ref();
    lifecycle::reconcile(
        object,
        shared.as_ref(),
        span,
        |event, api, label| async move {
            match event {
                Lifecycle::Apply(o) | Lifecycle::Cleanup(o) => {
                    step::<K>(&o, shared, &api, &label).await
                }
            }
        },
    )
    .await
}

/// After an error: the delay a deletion under way chose, else a backoff (the controller's error
/// policy).
pub fn error_policy<K: Pipeline>(
    object: Arc<K>,
    error: &finalizer::Error<ReconcileError>,
    shared: Arc<K::Shared>,
) -> Requeue {
    lifecycle::error_policy(object.as_ref(), error, shared.as_ref().as_ref())
}

/// One pass for an object, alive or being deleted.
async fn step<K: Pipeline>(
    object: &K,
    shared: &K::Shared,
    api: &Api<K>,
    label: &Label,
) -> Result<Requeue, ReconcileError> {
    let ctx: &Context = shared.as_ref();
    let intent = object.resolve(shared);
    let namespace = object.namespace().unwrap_or_default();
    let secret = ctx.secret_name(&namespace, object.credentials_ref());
    let deleting = object.meta().deletion_timestamp.is_some();
    let holds = K::holds_credentials(&intent, deleting);
    let credentials = if holds {
        acquire_and_hold(ctx, &namespace, secret.as_deref()).await
    } else {
        Err(CredentialsError::NoReference)
    };
    let observed = object.observe(shared, &intent, credentials.as_ref()).await;
    if holds {
        let failure = K::credentials_failure(&observed);
        ctx.credentials_used(&namespace, secret.as_deref(), failure);
    }
    let now = Utc::now();
    let plan = K::plan(shared, &intent, &observed, now);
    tracing::debug!(?plan, "planned");
    if let Some(release) = object.release(&plan) {
        announce_release(object, shared, release, secret.as_deref()).await;
        return Ok(Requeue::await_change());
    }
    let pass = Pass {
        intent: &intent,
        observed: &observed,
        plan: &plan,
        credentials: credentials.as_ref(),
        secret: secret.as_deref(),
        now,
    };
    let outcome = object.act(shared, &pass).await;
    let next = report(object, shared, api, &pass, &outcome).await?;
    if let Some(reason) = next.failure {
        label.set(reason);
    }
    if deleting {
        let reason = next.failure.unwrap_or(reasons::TERMINATING);
        return Err(ReconcileError::Deleting {
            requeue: next.requeue,
            reason,
        });
    }
    Ok(Requeue::requeue(next.requeue))
}

/// Remembers the pass's writes, writes the status when it changed (through an outage when it
/// records writes made in Microsoft), then tells of the pass. A failure to remember is returned
/// once the status is written (the next pass may then send a write once more and hear "already
/// exists", which is remembered then).
async fn report<K: Pipeline>(
    object: &K,
    shared: &K::Shared,
    api: &Api<K>,
    pass: &Pass<'_, K>,
    outcome: &K::Outcome,
) -> Result<Next, ReconcileError> {
    let remembered = object.remember(shared, api, pass, outcome).await;
    let previous = HasStatus::status(object).cloned().unwrap_or_default();
    let new = object.new_status(shared, pass, outcome, &previous);
    // An unchanged status is not written: a restart over many steady objects reads, it does not
    // write (the watch cache is fresh by the time a steady object is looked at again).
    if new != previous {
        let write = || lifecycle::apply_status(api, object, &new);
        let written = if object.status_records_writes(pass, outcome) {
            lifecycle::through_outage(write).await
        } else {
            write().await
        };
        let ctx: &Context = shared.as_ref();
        ctx.own_writes.wrote(&written.map_err(ReportError::from)?);
    }
    if let Err(e) = remembered {
        tracing::warn!(error = %e, "recording the writes made in Microsoft failed");
        return Err(e.into());
    }
    let change = Change {
        previous: &previous,
        new: &new,
    };
    object.tell(shared, api, pass, outcome, change).await
}

/// Publishes `Released`, drops the kind's per-object state and lets the credentials Secret go.
async fn announce_release<K: Pipeline>(
    object: &K,
    shared: &K::Shared,
    release: Release,
    secret: Option<&str>,
) {
    let ctx: &Context = shared.as_ref();
    let kind = if release.warning {
        EventType::Warning
    } else {
        EventType::Normal
    };
    ctx.publish(object, kind, events::RELEASED, "Release", release.note)
        .await;
    object.released(shared);
    if let Some(secret) = secret {
        ctx.secret_released(&object.namespace().unwrap_or_default(), secret);
    }
}
