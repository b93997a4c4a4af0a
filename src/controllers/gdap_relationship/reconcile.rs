//! One reconcile of a GdapRelationship: finalizer, observe → plan → act → report, events,
//! metrics and the requeue the plan chose.

use super::act::{Target, act, outcome_of};
use super::desired::{self, Desired};
use super::observe::observe;
use super::plan::{Action, Observed, Plan, ReleaseReason, expiry_warnings_due, plan};
use super::status::{self, Inputs, Outcome, describe_wait};
use crate::api::conditions::{reasons, types};
use crate::api::{GdapRelationship, GdapRelationshipStatus};
use crate::controllers::conditions::status_of;
use crate::controllers::context::{Context, MANAGER};
use crate::metrics::ObjectLabels;
use chrono::Utc;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{Instrument, info_span};

/// The finalizer that lets deletion terminate the relationship first.
pub const FINALIZER: &str = "gdap.io/relationship";
/// Annotation remembering which expiry warnings were sent for which end date.
pub const EXPIRY_WARNINGS_ANNOTATION: &str = "gdap.io/expiry-warnings";

/// Errors that make the controller retry with backoff (everything else is reported in status).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Reconciles one object.
pub async fn reconcile(
    object: Arc<GdapRelationship>,
    ctx: Arc<Context>,
) -> Result<Requeue, ReconcileError> {
    let span = info_span!("reconcile", namespace = %object.namespace().unwrap_or_default(), name = %object.name_any(), customer = %object.spec.customer.tenant_id);
    let started = Instant::now();
    let result = reconcile_inner(&object, &ctx).instrument(span).await;
    let label = match &result {
        Ok(_) => "success",
        Err(_) => "error",
    };
    ctx.metrics
        .reconciled("GdapRelationship", label, started.elapsed().as_secs_f64());
    result
}

/// Requeue after a failure: the poll interval (the clients already backed off inside).
pub fn error_policy(
    _object: Arc<GdapRelationship>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Requeue {
    tracing::warn!(%error, "reconcile failed; retrying");
    Requeue::requeue(ctx.settings.timing.poll)
}

async fn reconcile_inner(
    object: &GdapRelationship,
    ctx: &Context,
) -> Result<Requeue, ReconcileError> {
    let ns = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<GdapRelationship> = Api::namespaced(ctx.client.clone(), &ns);
    let deleting = object.metadata.deletion_timestamp.is_some();
    if !deleting && !object.finalizers().iter().any(|f| f == FINALIZER) {
        let patch = json!({"metadata": {"finalizers": [FINALIZER]}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        return Ok(Requeue::requeue(Duration::ZERO));
    }
    if deleting && !object.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Requeue::await_change());
    }
    let desired = desired::resolve(object, &name, &object.uid().unwrap_or_default());
    let secret = ctx.secret_name(&ns, object.spec.credentials_ref.as_ref());
    let clients = match secret {
        None => Err(crate::controllers::credentials::CredentialsError::NoReference),
        Some(secret) => ctx.credentials.clients(&ns, &secret).await,
    };
    let clients = match clients {
        Ok(c) => c,
        Err(e) => return credentials_failed(object, ctx, &api, &desired, e.to_string()).await,
    };
    let token = clients.tokens.partner_graph();
    let now = Utc::now();
    let mut observed = match observe(object, &desired, clients.gdap.as_ref(), &token).await {
        Ok(o) => o,
        Err(e) => {
            let outcome = outcome_of(&e);
            report_unreadable(object, ctx, &api, &outcome).await?;
            let idle = Plan {
                action: Action::Idle,
                requeue: ctx.settings.timing.poll,
            };
            return Ok(Requeue::requeue(requeue_after(
                &outcome,
                &idle,
                &ctx.settings.timing,
            )));
        }
    };
    let plan = plan(&desired, &observed, &ctx.settings.timing, now);
    tracing::debug!(action = ?plan.action, requeue = ?plan.requeue, "planned");
    let (outcome, done) = match &desired {
        Ok(d) => {
            let target = Target {
                object,
                api: &api,
                desired: d,
                gdap: clients.gdap.as_ref(),
                token: &token,
            };
            act(&plan.action, &target, &mut observed).await
        }
        Err(_) => {
            deletion_without_spec(
                &plan,
                object,
                &api,
                clients.gdap.as_ref(),
                &token,
                &mut observed,
            )
            .await
        }
    };
    if let Some((reason, note)) = done {
        publish(ctx, object, EventType::Normal, reason, &note, note.clone()).await;
    }
    if let Action::Release(why) = &plan.action {
        release(object, ctx, &api, *why).await?;
        return Ok(Requeue::await_change());
    }
    report(object, ctx, &api, &desired, &observed, &plan, &outcome).await?;
    Ok(Requeue::requeue(requeue_after(
        &outcome,
        &plan,
        &ctx.settings.timing,
    )))
}

/// After a failure the plan's "at once" would hammer Microsoft: transient failures wait the poll
/// interval, permanent ones the resync interval (a spec change still reconciles at once).
fn requeue_after(outcome: &Outcome, plan: &Plan, timing: &super::plan::Timing) -> Duration {
    match outcome {
        Outcome::Failed {
            transient: true, ..
        } => timing.poll,
        Outcome::Failed {
            transient: false, ..
        } => timing.resync,
        _ => plan.requeue,
    }
}

/// When Microsoft cannot be read, the status keeps what was known and only `Synced` changes.
async fn report_unreadable(
    object: &GdapRelationship,
    ctx: &Context,
    api: &Api<GdapRelationship>,
    outcome: &Outcome,
) -> Result<(), ReconcileError> {
    let Outcome::Failed {
        reason, message, ..
    } = outcome
    else {
        return Ok(());
    };
    let mut status = object.status.clone().unwrap_or_default();
    let wanted = [crate::controllers::conditions::Wanted::new(
        types::SYNCED,
        false,
        reason,
        format!("reading Microsoft Graph failed: {message}"),
    )];
    let now = status::to_time(Utc::now()).0;
    let previous = status.clone();
    status.conditions = crate::controllers::conditions::merge(
        &status.conditions,
        &wanted,
        object.metadata.generation,
        now,
    );
    apply_status(api, object, &status).await?;
    transition_events(
        ctx,
        object,
        &previous,
        &status,
        &Plan {
            action: Action::Idle,
            requeue: Duration::ZERO,
        },
    )
    .await;
    Ok(())
}

/// Deletion still works when the spec no longer resolves (only delete/terminate are needed).
async fn deletion_without_spec(
    plan: &Plan,
    object: &GdapRelationship,
    api: &Api<GdapRelationship>,
    gdap: &dyn crate::microsoft::GdapApi,
    token: &crate::microsoft::DelegatedToken,
    observed: &mut Observed,
) -> (Outcome, super::act::Done) {
    if !matches!(plan.action, Action::DeleteDraft | Action::Terminate) {
        return (Outcome::Ok, None);
    }
    let placeholder = Desired {
        display_name: String::new(),
        customer: String::new(),
        role_ids: Default::default(),
        duration_days: 0,
        auto_extend: false,
        assignments: Default::default(),
        adopt_id: None,
        deletion: Default::default(),
        management: Default::default(),
        successor_before_days: None,
    };
    let target = Target {
        object,
        api,
        desired: &placeholder,
        gdap,
        token,
    };
    act(&plan.action, &target, observed).await
}

async fn credentials_failed(
    object: &GdapRelationship,
    ctx: &Context,
    api: &Api<GdapRelationship>,
    desired: &Result<Desired, String>,
    message: String,
) -> Result<Requeue, ReconcileError> {
    if object.metadata.deletion_timestamp.is_some() {
        publish(
            ctx,
            object,
            EventType::Warning,
            "CredentialsInvalid",
            "Release",
            format!("{message}; releasing the object without changing Microsoft's side"),
        )
        .await;
        release(object, ctx, api, ReleaseReason::Orphaned).await?;
        return Ok(Requeue::await_change());
    }
    let outcome = Outcome::Failed {
        reason: reasons::CREDENTIALS_INVALID,
        message,
        transient: false,
    };
    let observed = Observed::default();
    let plan = Plan {
        action: Action::Idle,
        requeue: ctx.settings.timing.poll,
    };
    report(object, ctx, api, desired, &observed, &plan, &outcome).await?;
    Ok(Requeue::requeue(ctx.settings.timing.poll))
}

async fn release(
    object: &GdapRelationship,
    ctx: &Context,
    api: &Api<GdapRelationship>,
    why: ReleaseReason,
) -> Result<(), ReconcileError> {
    let note = match why {
        ReleaseReason::Orphaned => {
            "deletionPolicy Orphan (or managementPolicy Observe): the relationship stays in Microsoft"
        }
        ReleaseReason::NothingToDelete => "no relationship exists in Microsoft",
        ReleaseReason::Done => "the relationship is terminated",
        ReleaseReason::CannotWithdraw => {
            "the relationship awaits the customer's approval and Graph cannot withdraw it; the request lapses after 90 days"
        }
    };
    let kind = if matches!(why, ReleaseReason::CannotWithdraw) {
        EventType::Warning
    } else {
        EventType::Normal
    };
    publish(ctx, object, kind, "Released", "Release", note.to_string()).await;
    let finalizers: Vec<String> = object
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": object.resource_version()}});
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    let labels = object_labels(object);
    ctx.metrics.relationship(&labels, None, None);
    Ok(())
}

async fn report(
    object: &GdapRelationship,
    ctx: &Context,
    api: &Api<GdapRelationship>,
    desired: &Result<Desired, String>,
    observed: &Observed,
    plan: &Plan,
    outcome: &Outcome,
) -> Result<(), ReconcileError> {
    let previous = object.status.clone().unwrap_or_default();
    let now = Utc::now();
    let inputs = Inputs {
        desired,
        observed,
        plan,
        outcome,
        previous: &previous,
        generation: object.metadata.generation,
        now,
    };
    let new = status::build(&inputs);
    apply_status(api, object, &new).await?;
    transition_events(ctx, object, &previous, &new, plan).await;
    expiry_warnings(ctx, object, api, observed, now).await?;
    let expiry = observed
        .relationship
        .as_ref()
        .and_then(|r| r.ends_at)
        .map(|e| (e - now).num_seconds() as f64);
    ctx.metrics.relationship(
        &object_labels(object),
        Some(new.state.as_deref().unwrap_or("unknown")),
        expiry,
    );
    Ok(())
}

async fn transition_events(
    ctx: &Context,
    object: &GdapRelationship,
    previous: &GdapRelationshipStatus,
    new: &GdapRelationshipStatus,
    plan: &Plan,
) {
    if new.state != previous.state
        && let Some(state) = &new.state
    {
        publish(
            ctx,
            object,
            EventType::Normal,
            "StateChanged",
            state,
            format!("Microsoft reports the relationship as {state}"),
        )
        .await;
    }
    if new.approval_url.is_some() && previous.approval_url.is_none() {
        let url = new.approval_url.clone().unwrap_or_default();
        publish(
            ctx,
            object,
            EventType::Normal,
            "ApprovalRequested",
            "LockForApproval",
            format!(
                "locked for approval; send the customer's Global Administrator this link: {url}"
            ),
        )
        .await;
    }
    for type_ in [types::READY, types::SYNCED, types::ACCESS_ASSIGNED] {
        let (before, after) = (
            status_of(&previous.conditions, type_),
            status_of(&new.conditions, type_),
        );
        if before == after {
            continue;
        }
        let condition = new
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .expect("condition was just set");
        let kind = if after == Some("True") {
            EventType::Normal
        } else {
            EventType::Warning
        };
        let skip = after != Some("True")
            && matches!(
                condition.reason.as_str(),
                reasons::RELATIONSHIP_NOT_ACTIVE
                    | reasons::NOT_CREATED
                    | reasons::NOT_LOCKED
                    | reasons::APPROVAL_PENDING
                    | reasons::ASSIGNMENTS_PENDING
                    | reasons::ACTIVATING
            );
        if !skip {
            publish(
                ctx,
                object,
                kind,
                &condition.reason,
                &format!("{type_}{}", condition.status),
                format!("{type_}: {}", condition.message),
            )
            .await;
        }
    }
    if let Action::Wait(w) = plan.action {
        tracing::debug!("{}", describe_wait(w));
    }
}

/// Sends each 30/7/1-day warning once per end date, remembered in an annotation.
async fn expiry_warnings(
    ctx: &Context,
    object: &GdapRelationship,
    api: &Api<GdapRelationship>,
    observed: &Observed,
    now: chrono::DateTime<Utc>,
) -> Result<(), ReconcileError> {
    let Some(remote) = observed
        .relationship
        .as_ref()
        .filter(|r| r.status == "active")
    else {
        return Ok(());
    };
    let Some(ends_at) = remote.ends_at else {
        return Ok(());
    };
    let key = ends_at.to_rfc3339();
    let recorded = object
        .annotations()
        .get(EXPIRY_WARNINGS_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    let sent = warnings_already_sent(&recorded, ends_at);
    let due = expiry_warnings_due(ends_at, now, &sent);
    if due.is_empty() {
        return Ok(());
    }
    let next = if remote.auto_extend {
        "it will auto-extend by 180 days"
    } else {
        "it will NOT auto-extend; renew it or request a successor"
    };
    for days in &due {
        let note = format!("the GDAP relationship ends within {days} day(s), at {key}; {next}");
        publish(
            ctx,
            object,
            EventType::Warning,
            "ExpiresSoon",
            &format!("Warn{days}Days {key}"),
            note,
        )
        .await;
    }
    let all: Vec<String> = sent
        .iter()
        .chain(due.iter())
        .map(|d| d.to_string())
        .collect();
    let patch = json!({"metadata": {"annotations": {EXPIRY_WARNINGS_ANNOTATION: format!("{key} {}", all.join(","))}}});
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// The thresholds already warned about. They stay sent while the end date stays or moves earlier;
/// an extension (the end date moves later) starts over.
fn warnings_already_sent(recorded: &str, ends_at: chrono::DateTime<Utc>) -> Vec<i64> {
    let Some((end, days)) = recorded.split_once(' ') else {
        return Vec::new();
    };
    match chrono::DateTime::parse_from_rfc3339(end) {
        Ok(previous_end) if ends_at <= previous_end => {
            days.split(',').filter_map(|d| d.parse().ok()).collect()
        }
        _ => Vec::new(),
    }
}

/// Writes the whole status with server-side apply as the operator's field manager.
async fn apply_status(
    api: &Api<GdapRelationship>,
    object: &GdapRelationship,
    status: &GdapRelationshipStatus,
) -> Result<(), kube::Error> {
    let patch =
        json!({"apiVersion": "gdap.io/v1alpha1", "kind": "GdapRelationship", "status": status});
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

fn object_labels(object: &GdapRelationship) -> ObjectLabels {
    ObjectLabels {
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
        customer: object.spec.customer.tenant_id.0.clone(),
    }
}

/// Publishes an event. Kubernetes folds events with the same type, reason and action into one
/// series (keeping the first note), so `action` tells apart events that must each be seen.
async fn publish(
    ctx: &Context,
    object: &GdapRelationship,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let action: String = action.chars().take(128).collect();
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action,
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish event");
    }
}

#[cfg(test)]
mod tests {
    use super::{Outcome, Plan, requeue_after, warnings_already_sent};
    use crate::controllers::gdap_relationship::plan::{Action, Timing};
    use std::time::Duration;

    #[test]
    fn failures_never_requeue_at_once() {
        let timing = Timing::default();
        let create_now = Plan {
            action: Action::Create,
            requeue: Duration::ZERO,
        };
        let failed = |transient| Outcome::Failed {
            reason: "X",
            message: String::new(),
            transient,
        };
        assert_eq!(
            requeue_after(&Outcome::Ok, &create_now, &timing),
            Duration::ZERO
        );
        assert_eq!(
            requeue_after(&failed(true), &create_now, &timing),
            timing.poll
        );
        assert_eq!(
            requeue_after(&failed(false), &create_now, &timing),
            timing.resync
        );
    }
    use chrono::{TimeZone, Utc};

    #[test]
    fn warnings_reset_only_when_the_end_moves_later() {
        let end = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let recorded = format!("{} 30,7", end.to_rfc3339());
        assert_eq!(warnings_already_sent(&recorded, end), [30, 7]);
        assert_eq!(
            warnings_already_sent(&recorded, end - chrono::Duration::days(3)),
            [30, 7],
            "an earlier end keeps them"
        );
        assert!(
            warnings_already_sent(&recorded, end + chrono::Duration::days(180)).is_empty(),
            "an extension starts over"
        );
        assert!(warnings_already_sent("garbage", end).is_empty());
    }
}
