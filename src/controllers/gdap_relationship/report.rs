//! The report step's I/O half, after the pipeline wrote the status built by `status` (which
//! records the writes Microsoft does not show yet, `status.pendingWrites`): publish events on
//! transitions and for what was done (and a `WaitingForConsents` event when deletion starts waiting for
//! AppConsents, or waits for another set) and send the 30/7/1-day expiry warnings once each (the
//! metrics are read from the watch cache: `metrics::relationships`). One report per reconcile
//! (every path but release).

use super::act::Applied;
use super::observed::Observed;
use super::pending::PENDING_WRITES_ANNOTATION;
use super::plan::expiry_warnings_due;
use super::status::{self, Inputs, Outcome};
use super::step::{Action, Waiting};
use crate::api::conditions::{events, reasons, types};
use crate::api::{GdapRelationship, GdapRelationshipStatus};
use crate::controllers::context::Context;
use crate::controllers::lifecycle;
use crate::microsoft::models::gdap::RelationshipStatus as State;
use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;

/// Annotation remembering which expiry warnings were sent for which end date.
pub const EXPIRY_WARNINGS_ANNOTATION: &str = "gdap.io/expiry-warnings";
/// Annotation remembering which "successor still unapproved" warnings were sent for which
/// successor.
pub const SUCCESSOR_WARNINGS_ANNOTATION: &str = "gdap.io/successor-warnings";

pub use crate::controllers::lifecycle::ReportError;

/// Reasons of conditions on their way to True (or that cannot be told yet), which get no Warning
/// event.
const ORDINARY: [&str; 10] = [
    reasons::NOT_CHECKED,
    reasons::APP_NOT_CONSENTED,
    reasons::PROPAGATING,
    reasons::RELATIONSHIP_NOT_ACTIVE,
    reasons::NOT_CREATED,
    reasons::NOT_LOCKED,
    reasons::APPROVAL_PENDING,
    reasons::ASSIGNMENTS_PENDING,
    reasons::ASSIGNMENT_UPDATING,
    reasons::ACTIVATING,
];

/// Tells of a pass whose status went from `inputs.previous` to `new`: events on transitions and
/// for what was done, the expiry warnings.
pub async fn tell(
    ctx: &Context,
    object: &GdapRelationship,
    api: &Api<GdapRelationship>,
    inputs: &Inputs<'_>,
    new: &GdapRelationshipStatus,
) -> Result<(), ReportError> {
    done_events(ctx, object, inputs.outcome, inputs.previous).await;
    transition_events(ctx, object, inputs.previous, new).await;
    consent_wait_event(ctx, object, inputs, new).await;
    expiry_warnings(ctx, object, api, inputs.observed, inputs.now).await?;
    successor_warnings(ctx, object, api, new, inputs.now).await?;
    Ok(())
}

/// Removes the annotation `gdap.io/pending-writes` that an earlier version of the operator kept
/// the pending writes in, once the status written this pass holds them (`status.pendingWrites`):
/// left in place, it would be read again as soon as the status record is empty. Costs a request
/// only on objects that carry it.
pub async fn forget_annotation_record(
    ctx: &Context,
    object: &GdapRelationship,
    api: &Api<GdapRelationship>,
) -> Result<(), ReportError> {
    if !object.annotations().contains_key(PENDING_WRITES_ANNOTATION) {
        return Ok(());
    }
    let patch = json!({"metadata": {"annotations": {PENDING_WRITES_ANNOTATION: null}}});
    lifecycle::record_write(ctx, api, &object.name_any(), &patch).await?;
    Ok(())
}

/// Warns at 30, 7 and 1 days before the current relationship ends while its successor is not
/// active yet — once per threshold and successor (remembered in an annotation).
async fn successor_warnings(
    ctx: &Context,
    object: &GdapRelationship,
    api: &Api<GdapRelationship>,
    status: &GdapRelationshipStatus,
    now: DateTime<Utc>,
) -> Result<(), ReportError> {
    let Some(successor) = status
        .successor
        .as_ref()
        .filter(|s| s.state.as_deref() != Some("active"))
    else {
        return Ok(());
    };
    let (Some(id), Some(ends)) = (&successor.id, &status.ends_at) else {
        return Ok(());
    };
    let Some(ends_at) = DateTime::<Utc>::from_timestamp(ends.0.as_second(), 0) else {
        return Ok(());
    };
    let recorded = object
        .annotations()
        .get(SUCCESSOR_WARNINGS_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    let sent: Vec<i64> = match recorded.split_once(' ') {
        Some((for_id, days)) if for_id == id => {
            days.split(',').filter_map(|d| d.parse().ok()).collect()
        }
        _ => Vec::new(),
    };
    let due = expiry_warnings_due(ends_at, now, &sent);
    if due.is_empty() {
        return Ok(());
    }
    for days in &due {
        let note = format!(
            "the current relationship ends within {days} day(s), at {}, and its successor {} is still {}: ask the customer to approve {}",
            ends_at.to_rfc3339(),
            successor.display_name,
            successor.state.as_deref().unwrap_or("being requested"),
            successor
                .approval_url
                .as_deref()
                .unwrap_or("the link in status.successor.approvalUrl")
        );
        let action = format!("Successor{days}Days {id}");
        ctx.publish(
            object,
            EventType::Warning,
            events::SUCCESSOR_APPROVAL_PENDING,
            &action,
            note,
        )
        .await;
    }
    let all: Vec<String> = sent
        .iter()
        .chain(due.iter())
        .map(|d| d.to_string())
        .collect();
    let value = format!("{id} {}", all.join(","));
    let patch = json!({"metadata": {"annotations": {SUCCESSOR_WARNINGS_ANNOTATION: value}}});
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// The object has never been Ready, or is on its way back without a failure: Ready's own event
/// (reason `Active`: "active, and every access assignment is active") will tell what the steps
/// on the way did, so the activation and the first access assignments get no event of their own
/// — each event is an API-server write.
fn on_the_way_to_ready(previous: &GdapRelationshipStatus) -> bool {
    previous
        .conditions
        .iter()
        .find(|c| c.type_ == types::READY)
        .is_none_or(|c| c.status != "True" && ORDINARY.contains(&c.reason.as_str()))
}

async fn done_events(
    ctx: &Context,
    object: &GdapRelationship,
    outcome: &Outcome,
    previous: &GdapRelationshipStatus,
) {
    if matches!(outcome, Outcome::Applied(Applied::Assigned { .. }))
        && on_the_way_to_ready(previous)
    {
        return;
    }
    // Created and locked in one pass: `ApprovalRequested` tells both (see `transition_events`).
    if let Outcome::Applied(Applied::Created(created)) = outcome
        && created.status == State::ApprovalPending
    {
        return;
    }
    let (reason, note) = match outcome {
        Outcome::Applied(Applied::Done { reason, note }) => (*reason, note.clone()),
        Outcome::Applied(Applied::Created(created)) => (
            events::CREATED,
            format!(
                "created relationship {} ({})",
                created.id, created.display_name
            ),
        ),
        Outcome::Applied(Applied::CreatedUnanswered { display_name }) => (
            events::CREATED,
            format!(
                "created relationship {display_name}; Microsoft's answer was cut short, so its id comes from the next reads (no second create)"
            ),
        ),
        Outcome::Applied(Applied::NameTaken { display_name }) => (
            events::CREATED,
            format!(
                "Microsoft answered that a relationship named {display_name} exists; waiting for its reads to show it (no second create)"
            ),
        ),
        Outcome::Applied(Applied::Assigned {
            group_id,
            id: Some(_),
            roles,
        }) => (
            events::ASSIGNMENT_CREATED,
            format!("assigned security group {group_id} ({roles} roles)"),
        ),
        Outcome::Applied(Applied::Assigned {
            group_id, id: None, ..
        }) => (
            events::ASSIGNMENT_CREATED,
            format!(
                "security group {group_id} already has an access assignment (Microsoft answered 409); waiting for its reads to show it (no second create)"
            ),
        ),
        Outcome::Applied(Applied::SuccessorCreated(created)) => (
            events::SUCCESSOR_REQUESTED,
            format!(
                "created successor relationship {} ({}); it is locked for approval next",
                created.id, created.display_name
            ),
        ),
        Outcome::Applied(Applied::HandedOver {
            generation,
            relationship_id,
        }) => (
            events::HANDED_OVER,
            format!(
                "switched to successor relationship {relationship_id} (generation {generation}): its access assignments are active"
            ),
        ),
        Outcome::Applied(Applied::UpdateAccepted {
            group_id,
            operation_id,
            ..
        }) => (
            events::ASSIGNMENT_UPDATE_REQUESTED,
            format!(
                "Microsoft accepted the role change of security group {group_id} (operation {}); waiting for it to finish",
                operation_id.as_deref().unwrap_or("without id")
            ),
        ),
        _ => return,
    };
    let action = note
        .split_whitespace()
        .take(6)
        .collect::<Vec<_>>()
        .join(" ");
    ctx.publish(object, EventType::Normal, reason, &action, note)
        .await;
}

/// Microsoft's states worth an event of their own: the relationship works, ends or ended. The
/// steps between (created, approvalPending — told by `ApprovalRequested` —, approved,
/// activating, terminating) pass within seconds and add API-server writes, not news.
fn tells_news(state: &str) -> bool {
    matches!(
        state,
        "active" | "expiring" | "expired" | "terminationRequested" | "terminated"
    )
}

async fn transition_events(
    ctx: &Context,
    object: &GdapRelationship,
    previous: &GdapRelationshipStatus,
    new: &GdapRelationshipStatus,
) {
    let told_by_ready = |state: &str| state == "active" && on_the_way_to_ready(previous);
    if new.state != previous.state
        && let Some(state) = new
            .state
            .as_ref()
            .filter(|s| tells_news(s) && !told_by_ready(s))
    {
        let note = format!("Microsoft reports the relationship as {state}");
        ctx.publish(
            object,
            EventType::Normal,
            events::STATE_CHANGED,
            state,
            note,
        )
        .await;
    }
    if new.approval_url.is_some() && previous.approval_url.is_none() {
        let url = new.approval_url.clone().unwrap_or_default();
        let created = match (&previous.relationship_id, &new.relationship_id) {
            (None, Some(id)) => format!(
                "created relationship {id} ({}) and ",
                new.display_name.as_deref().unwrap_or_default()
            ),
            _ => String::new(),
        };
        let note = format!(
            "{created}locked for approval; send the customer's Global Administrator this link: {url}"
        );
        ctx.publish(
            object,
            EventType::Normal,
            events::APPROVAL_REQUESTED,
            "LockForApproval",
            note,
        )
        .await;
    }
    let link =
        |s: &GdapRelationshipStatus| s.successor.as_ref().and_then(|x| x.approval_url.clone());
    if let Some(url) = link(new).filter(|u| link(previous).as_ref() != Some(u)) {
        let note = format!(
            "successor locked for approval; send the customer's Global Administrator this link: {url}"
        );
        ctx.publish(
            object,
            EventType::Normal,
            events::SUCCESSOR_REQUESTED,
            &url,
            note,
        )
        .await;
    }
    // AccessVerified: Normal `AccessWorks` when it turns True, Warning `AccessRefused` (with
    // Microsoft's error) when it turns False.
    // Synced and AccessAssigned turning True on the way to Ready are no news beside Ready's own
    // event; their failures and recoveries are.
    use lifecycle::Announce::{EveryTrue, RecoveryOnly};
    for (type_, announce) in [
        (types::READY, EveryTrue),
        (types::SYNCED, RecoveryOnly),
        (types::ACCESS_ASSIGNED, RecoveryOnly),
        (types::ACCESS_VERIFIED, EveryTrue),
    ] {
        lifecycle::condition_event(
            ctx,
            object,
            (&previous.conditions, &new.conditions),
            type_,
            &ORDINARY,
            announce,
        )
        .await;
    }
}

/// A Normal event `WaitingForConsents` when deletion starts waiting for AppConsents to remove
/// their consents, or the set it waits for changes (the `Synced` message names them).
async fn consent_wait_event(
    ctx: &Context,
    object: &GdapRelationship,
    inputs: &Inputs<'_>,
    new: &GdapRelationshipStatus,
) {
    if inputs.plan.action != Action::Wait(Waiting::Consents) || inputs.outcome.failure().is_some() {
        return;
    }
    let synced = |s: &GdapRelationshipStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == types::SYNCED)
            .map(|c| c.message.clone())
    };
    let message = synced(new);
    if message.is_none() || message == synced(inputs.previous) {
        return;
    }
    ctx.publish(
        object,
        EventType::Normal,
        events::WAITING_FOR_CONSENTS,
        "WaitForConsents",
        status::consents_message(inputs),
    )
    .await;
}

/// Sends each 30/7/1-day warning once per end date, remembered in an annotation.
async fn expiry_warnings(
    ctx: &Context,
    object: &GdapRelationship,
    api: &Api<GdapRelationship>,
    observed: &Observed,
    now: DateTime<Utc>,
) -> Result<(), ReportError> {
    let Some(remote) = observed
        .relationship()
        .filter(|r| r.status == State::Active)
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
        let action = format!("Warn{days}Days {key}");
        ctx.publish(
            object,
            EventType::Warning,
            events::EXPIRES_SOON,
            &action,
            note,
        )
        .await;
    }
    let all: Vec<String> = sent
        .iter()
        .chain(due.iter())
        .map(|d| d.to_string())
        .collect();
    let value = format!("{key} {}", all.join(","));
    let patch = json!({"metadata": {"annotations": {EXPIRY_WARNINGS_ANNOTATION: value}}});
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
pub fn warnings_already_sent(recorded: &str, ends_at: DateTime<Utc>) -> Vec<i64> {
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

#[cfg(test)]
mod tests {
    use super::warnings_already_sent;
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
