//! The report step's pure half: the status (fields and conditions) that describes what was
//! observed, what the plan decided and how the action went. When Microsoft could not be read the
//! status keeps what was known; `Synced` and the failure counters change, and a permanent failure
//! (credentials the user must fix) also makes `Ready` False: the operator cannot vouch for it.
//!
//! The status describes the effective state (see `pending`): a write Microsoft accepted counts
//! from its answer on (a lock publishes the approval link at once), while `Synced` says, with
//! reason `Propagating`, which writes its reads do not show yet and for how long the operator has
//! waited. A relationship that merely carries the display name is never recorded as the object's.
//!
//! While deletion waits for the AppConsents relying on the relationship to remove their consents,
//! `Synced` is True with reason `Terminating` and a message that names them.
//!
//! `AccessVerified` tells what the last access check found (`act`'s [`AccessCheck`]): `True`
//! (`AccessWorks`), `False` (`AccessRefused`, with Microsoft's error) or `Unknown` (the check
//! cannot run yet — `RelationshipNotActive`, `NotChecked` — or Microsoft's answer says nothing
//! about the access, e.g. `AppNotConsented`). A pass that does not check keeps the last finding
//! while `status.accessVerifiedAt` stands for the current relationship. It does not change
//! `Ready`: `Ready` is what the operator made (an active relationship with its assignments);
//! `AccessVerified` is whether Microsoft honours it, reported beside it.

use super::act::{AccessCheck, Applied};
use super::desired::Intent;
use super::observed::{Observed, RemoteAssignment, RemoteRelationship, RemoteUpdate};
use super::pending::{self, effective};
use super::plan::{assignments_in_place, immutable_change, renewal_due_at};
use super::step::{Action, Plan, PlanError, Waiting};
use crate::api::conditions::{reasons, types};
use crate::api::{
    AccessAssignmentStatus, GdapRelationshipStatus, PendingAssignmentUpdate, PreviousRelationship,
    SuccessorStatus,
};
pub use crate::controllers::conditions::to_time;
use crate::controllers::conditions::{Wanted, merge_at};
use crate::controllers::failure::Failure;
use crate::microsoft::approval_url;
use crate::microsoft::models::gdap::RelationshipStatus as State;
use chrono::{DateTime, Duration as Span, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Days a locked relationship waits for the customer before the request lapses.
pub const APPROVAL_WINDOW_DAYS: i64 = 90;
/// How many previous relationships the status keeps.
pub const MAX_PREVIOUS: usize = 10;

/// How the reconcile went after the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The action ran (or there was nothing to run).
    Applied(Applied),
    /// Observing or acting failed.
    Failed(Failure),
}

impl Outcome {
    /// The failure, if any.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Failed(f) => Some(f),
            Outcome::Applied(_) => None,
        }
    }
}

/// Everything the report needs.
pub struct Inputs<'a> {
    /// What the object asks for.
    pub intent: &'a Intent,
    /// What was observed.
    pub observed: &'a Observed,
    /// The decision.
    pub plan: &'a Plan,
    /// How it went.
    pub outcome: &'a Outcome,
    /// A security group Microsoft refused permanently in this reconcile.
    pub refused_group: Option<&'a str>,
    /// The status before this reconcile.
    pub previous: &'a GdapRelationshipStatus,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The relationship the status describes: observed, just created, or the successor just handed
/// over to.
fn current<'a>(i: &'a Inputs) -> Option<&'a RemoteRelationship> {
    if not_ours(i) {
        return None;
    }
    match i.outcome {
        Outcome::Applied(Applied::Created(created)) => Some(created),
        Outcome::Applied(Applied::HandedOver { .. }) => i
            .observed
            .microsoft
            .as_ref()
            .ok()?
            .successor
            .as_ref()
            .map(|s| &s.relationship),
        _ => i.observed.relationship(),
    }
}

/// The access assignments and role changes of the relationship the status describes.
fn current_assignments<'a>(i: &'a Inputs) -> (&'a [RemoteAssignment], &'a [RemoteUpdate]) {
    let Ok(remote) = &i.observed.microsoft else {
        return (&[], &[]);
    };
    match (i.outcome, &remote.successor) {
        (Outcome::Applied(Applied::HandedOver { .. }), Some(s)) => (&s.assignments, &s.updates),
        _ => (&remote.assignments, &remote.updates),
    }
}

fn handed_over(i: &Inputs) -> bool {
    matches!(i.outcome, Outcome::Applied(Applied::HandedOver { .. }))
}

/// A relationship that merely carries the display name is not described as the object's.
fn not_ours(i: &Inputs) -> bool {
    matches!(i.plan.action, Action::Refuse(PlanError::NotOurs { .. }))
}

/// The new status. It describes the effective state (see `pending`): what Microsoft answered
/// the operator's writes counts until its reads show them.
pub fn build(i: &Inputs) -> GdapRelationshipStatus {
    let pending_writes = pending_record(i);
    let effective = effective(i.observed, &i.intent.customer);
    let i = &Inputs {
        observed: &effective,
        ..*i
    };
    let mut status = if i.observed.microsoft.is_ok() {
        observed_fields(i)
    } else {
        i.previous.clone()
    };
    status.observed_generation = i.generation;
    match i.outcome.failure() {
        Some(_) => {
            status.failed_attempts = i.previous.failed_attempts.saturating_add(1);
            status.last_failure_time = Some(to_time(i.now));
        }
        None => {
            status.failed_attempts = 0;
            status.last_failure_time = i.previous.last_failure_time.clone();
        }
    }
    let wanted = match (&i.observed.microsoft, i.outcome.failure()) {
        (Ok(_), _) => conditions(i, &status),
        (Err(_), Some(f)) if !f.transient => {
            let synced = synced(i);
            let ready = Wanted::new(types::READY, false, synced.reason, synced.message.clone());
            vec![synced, ready]
        }
        (Err(_), _) => vec![synced(i)],
    };
    status.conditions = merge_at(&i.previous.conditions, &wanted, i.generation, i.now);
    status.pending_writes = pending_writes;
    status
}

/// `status.pendingWrites` after this pass: the writes the read does not show yet, with the one
/// this pass made (`pending::next`); kept as it was when Microsoft could not be read. Written
/// with the rest of the status, so recording a write costs no request of its own.
fn pending_record(i: &Inputs) -> Option<String> {
    let applied = match i.outcome {
        Outcome::Applied(a) => Some(a),
        Outcome::Failed(_) => None,
    };
    match pending::next(i.observed, &i.plan.action, applied, i.now) {
        Some(next) => next.to_annotation(),
        None => i.previous.pending_writes.clone(),
    }
}

fn observed_fields(i: &Inputs) -> GdapRelationshipStatus {
    let remote = current(i);
    let mut status = GdapRelationshipStatus {
        relationship_id: remote
            .map(|r| r.id.clone())
            .or_else(|| i.previous.relationship_id.clone())
            .filter(|_| !not_ours(i)),
        display_name: Some(
            remote
                .map(|r| r.display_name.clone())
                .unwrap_or_else(|| i.intent.display_name.clone()),
        ),
        customer_display_name: remote
            .and_then(|r| r.customer_name.clone())
            .or_else(|| i.previous.customer_display_name.clone()),
        state: remote.map(|r| r.status.to_string()),
        activated_at: remote.and_then(|r| r.activated_at).map(to_time),
        ends_at: remote.and_then(|r| r.ends_at).map(to_time),
        access_assignments: assignments(i),
        successor: successor(i).map(Box::new),
        previous_relationships: previous_relationships(i),
        access_verified_at: access_verified_at(i, remote),
        ..Default::default()
    };
    if let Some(r) = remote.filter(|r| r.status != State::Created) {
        status.approval_url = Some(approval_url(&r.id));
        status.approval_expires_at = i.previous.approval_expires_at.clone().or_else(|| {
            let locked = r.modified_at.unwrap_or(i.now);
            Some(to_time(locked + Span::days(APPROVAL_WINDOW_DAYS)))
        });
    }
    status
}

/// When the access was last checked: now when this pass checked; else the previous time while
/// it is for the same relationship, active with its access in place (else `None`, so the check
/// runs at once when the access is in place again).
fn access_verified_at(i: &Inputs, remote: Option<&RemoteRelationship>) -> Option<Time> {
    if let Outcome::Applied(Applied::AccessChecked(check)) = i.outcome {
        // A refusal while the access may still propagate is no finding: checked again soon.
        return (!propagating(i, check)).then(|| to_time(i.now));
    }
    let rel = remote.filter(|r| r.status == State::Active)?;
    let same = i.previous.relationship_id.as_deref() == Some(rel.id.as_str());
    (same && access_in_place(i) != Some(false))
        .then(|| i.previous.access_verified_at.clone())
        .flatten()
}

/// The check refused access that may still be propagating (see `plan::access_settling`).
fn propagating(i: &Inputs, check: &AccessCheck) -> bool {
    let settling = matches!(i.plan.action, Action::VerifyAccess { settling: true, .. });
    settling && matches!(check, AccessCheck::Refused { .. })
}

/// Whether the spec's access assignments are all in place (`None`: the spec cannot be read).
fn access_in_place(i: &Inputs) -> Option<bool> {
    let desired = i.intent.spec.as_ref().ok()?;
    let (observed, _) = current_assignments(i);
    Some(!desired.assignments.is_empty() && assignments_in_place(desired, observed))
}

fn assignments(i: &Inputs) -> Vec<AccessAssignmentStatus> {
    let Ok(desired) = &i.intent.spec else {
        return i.previous.access_assignments.clone();
    };
    let (observed, _) = current_assignments(i);
    let live = |group: &str| observed.iter().find(|a| a.group_id == group && a.is_live());
    let mut rows: Vec<AccessAssignmentStatus> = desired
        .assignments
        .iter()
        .map(|(group, roles)| {
            let found = live(group);
            let previous = i
                .previous
                .access_assignments
                .iter()
                .find(|a| &a.security_group_id == group);
            let mut row = AccessAssignmentStatus {
                security_group_id: group.clone(),
                roles: roles.iter().cloned().collect(),
                id: found.map(|a| a.id.clone()).filter(|id| !id.is_empty()),
                state: found.map(|a| a.status.to_string()),
                pending_update: found.and_then(|a| pending_update(i, group, &a.id)),
                ..Default::default()
            };
            let same_refusal = previous.filter(|p| p.failed_at.is_some() && p.roles == row.roles);
            if let Some(p) = same_refusal.filter(|_| found.is_none_or(|a| &a.role_ids != roles)) {
                row.message = p.message.clone();
                row.failed_at = p.failed_at.clone();
            }
            if i.refused_group == Some(group.as_str()) {
                row.message = i.outcome.failure().map(|f| f.message.clone());
                row.failed_at = Some(to_time(i.now));
            }
            row
        })
        .collect();
    let extras = observed
        .iter()
        .filter(|a| a.is_live() && !desired.assignments.contains_key(&a.group_id));
    for extra in extras {
        rows.push(AccessAssignmentStatus {
            security_group_id: extra.group_id.clone(),
            roles: extra.role_ids.iter().cloned().collect(),
            id: Some(extra.id.clone()),
            state: Some(extra.status.to_string()),
            message: Some("not in spec.accessAssignments; being removed".into()),
            ..Default::default()
        });
    }
    rows
}

/// The role change Microsoft is applying to an assignment: observed, or accepted just now.
fn pending_update(i: &Inputs, group: &str, assignment_id: &str) -> Option<PendingAssignmentUpdate> {
    if let Outcome::Applied(Applied::UpdateAccepted {
        group_id,
        operation_id,
        role_ids,
    }) = i.outcome
        && group_id == group
    {
        return Some(PendingAssignmentUpdate {
            operation_id: operation_id.clone(),
            roles: role_ids.clone(),
            state: Some("notStarted".into()),
        });
    }
    let (_, updates) = current_assignments(i);
    let update = updates
        .iter()
        .filter(|u| u.assignment_id == assignment_id && u.is_running())
        .max_by_key(|u| u.modified_at)?;
    Some(PendingAssignmentUpdate {
        operation_id: Some(update.operation_id.clone()).filter(|id| !id.is_empty()),
        roles: update.role_ids.iter().cloned().collect(),
        state: Some(update.status.to_string()),
    })
}

/// Why a successor is requested: the spec's roles or duration differ from the current
/// relationship's, or it is a renewal.
fn successor_reason(i: &Inputs) -> &'static str {
    let changed = match (&i.intent.spec, i.observed.relationship()) {
        (Ok(desired), Some(current)) => immutable_change(desired, current).is_some(),
        _ => false,
    };
    if changed { "SpecChange" } else { "Renewal" }
}

/// The successor in progress: just created, or observed; none once handed over.
fn successor(i: &Inputs) -> Option<SuccessorStatus> {
    if handed_over(i) {
        return None;
    }
    let remote = i.observed.microsoft.as_ref().ok();
    let rel = match i.outcome {
        Outcome::Applied(Applied::SuccessorCreated(created)) => Some(created),
        _ => remote
            .and_then(|r| r.successor.as_ref())
            .map(|s| &s.relationship),
    }?;
    let before = i
        .previous
        .successor
        .as_ref()
        .filter(|p| p.id.as_deref() == Some(rel.id.as_str()));
    Some(SuccessorStatus {
        id: Some(rel.id.clone()),
        display_name: rel.display_name.clone(),
        state: Some(rel.status.to_string()),
        approval_url: (rel.status != State::Created).then(|| approval_url(&rel.id)),
        requested_at: before
            .and_then(|b| b.requested_at.clone())
            .or_else(|| Some(to_time(i.now))),
        reason: before
            .map(|b| b.reason.clone())
            .unwrap_or_else(|| successor_reason(i).to_string()),
    })
}

/// The relationships used before: the one just handed over from is added, and the predecessor's
/// state is kept current until it ended.
fn previous_relationships(i: &Inputs) -> Vec<PreviousRelationship> {
    let mut list = i.previous.previous_relationships.clone();
    if handed_over(i)
        && let Some(old) = i.observed.relationship()
    {
        let why = i
            .previous
            .successor
            .as_ref()
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| successor_reason(i).to_string());
        list.push(PreviousRelationship {
            id: old.id.clone(),
            display_name: Some(old.display_name.clone()),
            ended_at: Some(to_time(i.now)),
            why,
            state: Some(old.status.to_string()),
        });
    }
    let predecessor = i
        .observed
        .microsoft
        .as_ref()
        .ok()
        .and_then(|r| r.predecessor.as_ref());
    if let Some(p) = predecessor {
        let state = Some(p.relationship.status.to_string());
        match list.iter_mut().find(|e| e.id == p.relationship.id) {
            Some(entry) => entry.state = state,
            None => list.push(PreviousRelationship {
                id: p.relationship.id.clone(),
                display_name: Some(p.relationship.display_name.clone()),
                ended_at: None,
                why: "Renewal".into(),
                state,
            }),
        }
    }
    let excess = list.len().saturating_sub(MAX_PREVIOUS);
    list.drain(..excess);
    list
}

fn conditions(i: &Inputs, status: &GdapRelationshipStatus) -> Vec<Wanted> {
    let remote = current(i);
    let synced = synced(i);
    let approved = approved(remote, status);
    let assigned = assigned(i, remote, status);
    let expiring = expiring(i, remote, status);
    let renewing = renewing(i, remote, status);
    let ready = ready(remote, &synced, &assigned, &approved);
    let mut wanted = vec![synced, approved, assigned, expiring, renewing, ready];
    wanted.extend(access_verified(i, remote, status));
    wanted
}

/// `AccessVerified`: what this pass's access check found, or why none can run; `None` keeps the
/// last finding (it stands while `status.accessVerifiedAt` does).
fn access_verified(
    i: &Inputs,
    remote: Option<&RemoteRelationship>,
    status: &GdapRelationshipStatus,
) -> Option<Wanted> {
    let customer = &i.intent.customer;
    let unknown =
        |reason, message: String| Wanted::unknown(types::ACCESS_VERIFIED, reason, message);
    if let Outcome::Applied(Applied::AccessChecked(check)) = i.outcome {
        let at = i.now.to_rfc3339();
        if propagating(i, check) {
            let AccessCheck::Refused { message } = check else {
                unreachable!("propagating only for a refusal")
            };
            return Some(unknown(
                reasons::PROPAGATING,
                format!(
                    "the access assignments are active and Microsoft may still be propagating the access: the partner user's delegated access to customer {customer} does not work yet (checked at {at}): {message}. Checked again soon; after --propagation-timeout a refusal is AccessRefused"
                ),
            ));
        }
        return Some(match check {
            AccessCheck::Works => Wanted::new(
                types::ACCESS_VERIFIED,
                true,
                reasons::ACCESS_WORKS,
                format!(
                    "the partner user got a delegated token for customer {customer} and read its directory at {at} (checked again every --access-verify-interval)"
                ),
            ),
            AccessCheck::Refused { message } => Wanted::new(
                types::ACCESS_VERIFIED,
                false,
                reasons::ACCESS_REFUSED,
                format!(
                    "the relationship is active, but the partner user's delegated access to customer {customer} does not work (checked at {at}): {message}. Check that the partner user is a member of a security group in spec.accessAssignments and that the customer has not removed the partner's access; checked again every --access-verify-interval"
                ),
            ),
            AccessCheck::Unverifiable { reason, message } => unknown(
                reason,
                format!(
                    "the partner user's delegated access to customer {customer} cannot be verified (checked at {at}): {message}{}",
                    if *reason == reasons::APP_NOT_CONSENTED {
                        ". The partner's application is not consented in the customer tenant; an AppConsent for it makes the check possible"
                    } else {
                        ""
                    }
                ),
            ),
        });
    }
    if remote.is_none_or(|r| r.status != State::Active) {
        return Some(unknown(
            reasons::RELATIONSHIP_NOT_ACTIVE,
            "the access is checked once the relationship is active".into(),
        ));
    }
    if status.access_verified_at.is_some() {
        return None;
    }
    let message = match access_in_place(i) {
        Some(false)
            if i.intent
                .spec
                .as_ref()
                .is_ok_and(|d| d.assignments.is_empty()) =>
        {
            "spec.accessAssignments is empty: the relationship gives no partner security group access, so there is nothing to check"
        }
        Some(false) => "the access is checked once every access assignment is active",
        _ => "the access has not been checked yet",
    };
    Some(unknown(reasons::NOT_CHECKED, message.into()))
}

fn renewing(
    i: &Inputs,
    remote: Option<&RemoteRelationship>,
    status: &GdapRelationshipStatus,
) -> Wanted {
    let ends = remote
        .and_then(|r| r.ends_at)
        .map(|e| e.to_rfc3339())
        .unwrap_or_else(|| "its end".into());
    let Some(s) = &status.successor else {
        let message = match (&i.intent.spec, remote) {
            (Ok(d), Some(r)) => match (d.renewal, renewal_due_at(d, r)) {
                (Some(_), Some(at)) => format!(
                    "a successor relationship will be requested at {} (spec.renewal.before)",
                    at.to_rfc3339()
                ),
                (Some(_), None) => "no successor is needed now".to_string(),
                (None, _) => "spec.renewal.policy is None: no successor is requested".to_string(),
            },
            _ => "no successor is in progress".to_string(),
        };
        return Wanted::new(types::RENEWING, false, reasons::NOT_RENEWING, message);
    };
    let name = &s.display_name;
    let (reason, message) = match s.state.as_deref() {
        Some("approvalPending") => (
            reasons::SUCCESSOR_APPROVAL_PENDING,
            format!(
                "successor {name} waits for the customer's approval at {} (the link lapses after 90 days; a fresh one is requested then); the current relationship ends at {ends}",
                s.approval_url.as_deref().unwrap_or_default()
            ),
        ),
        Some("approved" | "activating") => (
            reasons::SUCCESSOR_ACTIVATING,
            format!("the customer approved successor {name}; Microsoft is activating it"),
        ),
        Some("active") => (
            reasons::HANDING_OVER,
            format!(
                "successor {name} is active; its access assignments are being made before the switch"
            ),
        ),
        _ => (
            reasons::SUCCESSOR_REQUESTED,
            format!(
                "successor {name} is being created and locked for approval ({})",
                s.reason
            ),
        ),
    };
    Wanted::new(types::RENEWING, true, reason, message)
}

fn synced(i: &Inputs) -> Wanted {
    let refused = |reason, message: String| Wanted::new(types::SYNCED, false, reason, message);
    if let Action::Refuse(error) = &i.plan.action {
        let (reason, message) = refusal(error);
        return refused(reason, message);
    }
    if let Some(f) = i.outcome.failure() {
        if i.observed.deleting && !f.transient && !only_consents_unreadable(i) {
            return refused(
                reasons::CREDENTIALS_NEEDED_FOR_DELETION,
                format!(
                    "{}; deleting this object must first terminate its relationship in Microsoft, which needs working credentials: restore the credentials Secret (the operator retries), or set spec.deletionPolicy: Orphan to leave the relationship in place and release the object",
                    f.message
                ),
            );
        }
        return refused(f.reason, f.message.clone());
    }
    match &i.plan.action {
        Action::Wait(Waiting::TerminationOverdue) => refused(
            reasons::TERMINATION_TIMED_OUT,
            "termination was requested longer ago than --termination-timeout and Microsoft has not finished; the operator checks again at every resync and releases the object when it is terminated. Set spec.deletionPolicy: Orphan to release it now".into(),
        ),
        Action::Wait(Waiting::Propagating { since, .. }) => Wanted::new(
            types::SYNCED,
            true,
            reasons::PROPAGATING,
            propagating_message(i, *since),
        ),
        Action::Wait(Waiting::Consents) => Wanted::new(
            types::SYNCED,
            true,
            reasons::TERMINATING,
            consents_message(i),
        ),
        Action::Wait(Waiting::Termination) | Action::Terminate { .. } => Wanted::new(
            types::SYNCED,
            true,
            reasons::TERMINATING,
            "the object is being deleted; waiting for Microsoft to terminate the relationship",
        ),
        _ => Wanted::new(types::SYNCED, true, reasons::RECONCILED, "the spec is applied"),
    }
}

/// The failure is reading the AppConsents that rely on the relationship (Microsoft was read, so
/// the credentials work): reported as it is, not as credentials needed for deletion.
fn only_consents_unreadable(i: &Inputs) -> bool {
    i.observed.consents.is_err() && i.observed.microsoft.is_ok()
}

/// The AppConsents deletion waits for, by name, and why.
pub fn consents_message(i: &Inputs) -> String {
    let names = i.observed.consents.as_deref().unwrap_or_default();
    format!(
        "the object is being deleted; waiting for AppConsent(s) {} to remove their consents first (their partner user needs this relationship's access to do so); the relationship is terminated after that",
        names.join(", ")
    )
}

/// What Microsoft does not show yet, and for how long the operator has waited.
fn propagating_message(i: &Inputs, since: DateTime<Utc>) -> String {
    let unshown: Vec<String> = i
        .observed
        .microsoft
        .as_ref()
        .map(|r| r.pending.0.iter().map(|w| w.write.describe()).collect())
        .unwrap_or_default();
    let what = if unshown.is_empty() {
        "the relationship this object created".to_string()
    } else {
        unshown.join("; ")
    };
    let waited = (i.now - since).num_seconds().max(0);
    format!(
        "waiting {waited}s so far for Microsoft to show what it accepted: {what}. Microsoft's reads lag behind its writes; nothing is sent again (a failure after --propagation-timeout)"
    )
}

/// The reason and message of a refusal.
pub fn refusal(error: &PlanError) -> (&'static str, String) {
    match error {
        PlanError::InvalidSpec(problem) => (reasons::INVALID_SPEC, problem.to_string()),
        PlanError::Immutable {
            roles_changed,
            duration_changed,
        } => {
            let what = match (roles_changed, duration_changed) {
                (true, true) => "spec.roles and spec.duration",
                (true, false) => "spec.roles",
                _ => "spec.duration",
            };
            (
                reasons::ROLES_IMMUTABLE,
                format!(
                    "{what} changed after the relationship was locked for approval, and Microsoft does not allow changing them; nothing was sent. Revert the change, or set spec.renewal.policy: Successor to have the operator request a successor relationship with the new roles and duration and switch to it once approved"
                ),
            )
        }
        PlanError::AdoptNotFound(id) => (
            reasons::NOT_FOUND,
            format!(
                "spec.relationshipId {id:?} does not exist in Microsoft Graph; fix the id or remove it to create a new relationship"
            ),
        ),
        PlanError::CustomerMismatch { found } => (
            reasons::DISPLAY_NAME_TAKEN,
            format!(
                "the display name is already used by a relationship with customer {found}; set another spec.displayName (names are unique across the partner)"
            ),
        ),
        PlanError::NotOurs { id, created_at } => (
            reasons::DISPLAY_NAME_TAKEN,
            format!(
                "the display name is already used by relationship {id}{}, which this object did not create (made by hand or by another tool); the operator never adopts a relationship by its name and leaves it alone. Set spec.relationshipId: {id} to adopt it, or set another spec.displayName",
                created_at
                    .map(|t| format!(" (created at {})", t.to_rfc3339()))
                    .unwrap_or_default()
            ),
        ),
        PlanError::PropagationTimedOut { what, since } => (
            reasons::PROPAGATION_TIMED_OUT,
            format!(
                "Microsoft accepted {} at {} and its reads still do not show it after --propagation-timeout; the operator does not send it again by itself. Check the relationship in Partner Center; to let the operator write again, remove status.pendingWrites (kubectl edit --subresource=status)",
                what.describe(),
                since.to_rfc3339()
            ),
        ),
    }
}

fn approved(remote: Option<&RemoteRelationship>, status: &GdapRelationshipStatus) -> Wanted {
    let Some(r) = remote else {
        return Wanted::new(
            types::APPROVED,
            false,
            reasons::NOT_CREATED,
            "no relationship exists yet",
        );
    };
    match &r.status {
        State::Created => Wanted::new(
            types::APPROVED,
            false,
            reasons::NOT_LOCKED,
            "created; being locked for approval",
        ),
        State::ApprovalPending => {
            let until = status
                .approval_expires_at
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default();
            let url = status.approval_url.clone().unwrap_or_default();
            Wanted::new(
                types::APPROVED,
                false,
                reasons::APPROVAL_PENDING,
                format!(
                    "waiting for a Global Administrator of the customer to approve at {url} (the link lapses at {until})"
                ),
            )
        }
        State::Approved | State::Activating | State::Active | State::Expiring => Wanted::new(
            types::APPROVED,
            true,
            reasons::APPROVED,
            "the customer approved the relationship",
        ),
        State::Expired if r.activated_at.is_none() => Wanted::new(
            types::APPROVED,
            false,
            reasons::EXPIRED,
            "the approval request lapsed before the customer approved it",
        ),
        other if r.activated_at.is_some() => Wanted::new(
            types::APPROVED,
            true,
            reasons::APPROVED,
            format!("approved; now {other}"),
        ),
        other => Wanted::new(
            types::APPROVED,
            false,
            reasons::TERMINATED,
            format!("not approved; Microsoft reports {other}"),
        ),
    }
}

fn assigned(
    i: &Inputs,
    remote: Option<&RemoteRelationship>,
    status: &GdapRelationshipStatus,
) -> Wanted {
    if remote.is_none_or(|r| r.status != State::Active) {
        return Wanted::new(
            types::ACCESS_ASSIGNED,
            false,
            reasons::RELATIONSHIP_NOT_ACTIVE,
            "security groups are assigned once the relationship is active",
        );
    }
    if status.access_assignments.is_empty() && i.intent.spec.is_ok() {
        return Wanted::new(
            types::ACCESS_ASSIGNED,
            true,
            reasons::NO_ASSIGNMENTS,
            "spec.accessAssignments is empty",
        );
    }
    if let Some(failed) = status
        .access_assignments
        .iter()
        .find(|a| a.failed_at.is_some())
    {
        let message = format!(
            "security group {}: {}",
            failed.security_group_id,
            failed.message.clone().unwrap_or_default()
        );
        return Wanted::new(
            types::ACCESS_ASSIGNED,
            false,
            reasons::ASSIGNMENT_FAILED,
            message,
        );
    }
    if let Some(updating) = status
        .access_assignments
        .iter()
        .find(|a| a.pending_update.is_some())
    {
        return Wanted::new(
            types::ACCESS_ASSIGNED,
            false,
            reasons::ASSIGNMENT_UPDATING,
            format!(
                "Microsoft is applying a role change to security group {}",
                updating.security_group_id
            ),
        );
    }
    let waiting: Vec<_> = status
        .access_assignments
        .iter()
        .filter(|a| {
            a.state.as_deref() != Some("active") || a.message.is_some() || !roles_match(i, a)
        })
        .map(|a| {
            format!(
                "{} ({})",
                a.security_group_id,
                a.state.as_deref().unwrap_or("not created")
            )
        })
        .collect();
    if waiting.is_empty() {
        Wanted::new(
            types::ACCESS_ASSIGNED,
            true,
            reasons::ASSIGNMENTS_ACTIVE,
            format!(
                "{} security group(s) assigned",
                status.access_assignments.len()
            ),
        )
    } else {
        Wanted::new(
            types::ACCESS_ASSIGNED,
            false,
            reasons::ASSIGNMENTS_PENDING,
            format!("waiting for: {}", waiting.join(", ")),
        )
    }
}

/// Whether Microsoft's roles for the assignment's group equal the spec's.
fn roles_match(i: &Inputs, row: &AccessAssignmentStatus) -> bool {
    let Ok(remote) = &i.observed.microsoft else {
        return false;
    };
    remote
        .assignments
        .iter()
        .find(|a| a.group_id == row.security_group_id && a.is_live())
        .is_some_and(|a| a.role_ids.iter().eq(row.roles.iter()))
}

fn expiring(
    i: &Inputs,
    remote: Option<&RemoteRelationship>,
    status: &GdapRelationshipStatus,
) -> Wanted {
    let Some((r, ends_at)) = remote
        .filter(|r| r.status == State::Active)
        .and_then(|r| r.ends_at.map(|e| (r, e)))
    else {
        return Wanted::new(
            types::EXPIRING,
            false,
            reasons::NOT_EXPIRING,
            "the relationship is not active",
        );
    };
    let left = ends_at - i.now;
    if left > Span::days(30) {
        return Wanted::new(
            types::EXPIRING,
            false,
            reasons::NOT_EXPIRING,
            format!(
                "ends at {} ({} days left)",
                ends_at.to_rfc3339(),
                left.num_days()
            ),
        );
    }
    let renewal = i.intent.spec.as_ref().ok().and_then(|d| d.renewal);
    let what_next = match (&status.successor, renewal) {
        _ if r.auto_extend => "it will auto-extend by 180 days".to_string(),
        (Some(s), _) => format!(
            "it will not auto-extend; successor {} is {}",
            s.display_name,
            s.state.as_deref().unwrap_or("being requested")
        ),
        (None, Some(_)) => {
            "it will not auto-extend; a successor relationship is requested (spec.renewal)"
                .to_string()
        }
        (None, None) => {
            "it will not auto-extend; it expires then unless a new relationship is approved"
                .to_string()
        }
    };
    Wanted::new(
        types::EXPIRING,
        true,
        reasons::EXPIRES_SOON,
        format!(
            "ends at {} ({} days left); {what_next}",
            ends_at.to_rfc3339(),
            left.num_days()
        ),
    )
}

fn ready(
    remote: Option<&RemoteRelationship>,
    synced: &Wanted,
    assigned: &Wanted,
    approved: &Wanted,
) -> Wanted {
    let permanent_refusal = !synced.status
        && synced.reason != reasons::TRANSIENT_ERROR
        && synced.reason != reasons::KUBERNETES_ERROR;
    match remote.map(|r| &r.status) {
        Some(State::Active) if assigned.status && !permanent_refusal => Wanted::new(
            types::READY,
            true,
            reasons::ACTIVE,
            "active, and every access assignment is active",
        ),
        Some(State::Active) if permanent_refusal => {
            Wanted::new(types::READY, false, synced.reason, synced.message.clone())
        }
        Some(State::Active) => Wanted::new(
            types::READY,
            false,
            assigned.reason,
            assigned.message.clone(),
        ),
        Some(State::Expired | State::Expiring) => Wanted::new(
            types::READY,
            false,
            reasons::EXPIRED,
            "the relationship expired; create a new one",
        ),
        Some(State::Terminated | State::Terminating | State::TerminationRequested) => Wanted::new(
            types::READY,
            false,
            reasons::TERMINATED,
            "the relationship was terminated (by the customer, the partner or Microsoft); it is not recreated automatically",
        ),
        Some(State::Approved | State::Activating) => Wanted::new(
            types::READY,
            false,
            reasons::ACTIVATING,
            "approved; Microsoft is activating it",
        ),
        _ if permanent_refusal => {
            Wanted::new(types::READY, false, synced.reason, synced.message.clone())
        }
        _ => Wanted::new(
            types::READY,
            false,
            approved.reason,
            approved.message.clone(),
        ),
    }
}

/// A short phrase for what the controller waits for (logs).
pub fn describe_wait(w: Waiting) -> &'static str {
    match w {
        Waiting::Approval => "waiting for the customer's approval",
        Waiting::SuccessorApproval => "waiting for the customer's approval of the successor",
        Waiting::Activation => "waiting for Microsoft to activate the relationship",
        Waiting::Assignments => "waiting for access assignments and role changes to finish",
        Waiting::Termination => "waiting for Microsoft to finish the termination",
        Waiting::TerminationOverdue => {
            "the termination is overdue; checking at the resync interval"
        }
        Waiting::NothingToObserve => "nothing to observe yet (managementPolicy: Observe)",
        Waiting::Unreadable => {
            "Microsoft's side (or, while deleting, the AppConsents relying on it) cannot be read; retrying after a backoff"
        }
        Waiting::Consents => {
            "waiting for the AppConsents relying on the relationship to remove their consents"
        }
        Waiting::Propagating { .. } => {
            "waiting for Microsoft to show the operator's own write (its reads lag); nothing is sent again"
        }
    }
}
