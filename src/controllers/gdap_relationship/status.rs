//! The report step's pure half: the status (fields and conditions) that describes what was
//! observed, what the plan decided and how the action went. When Microsoft could not be read the
//! status keeps what was known; `Synced` and the failure counters change, and a permanent failure
//! (credentials the user must fix) also makes `Ready` False: the operator cannot vouch for it.

use super::act::Applied;
use super::desired::Intent;
use super::plan::{Action, Observed, Plan, PlanError, RemoteRelationship, Waiting};
use crate::api::conditions::{reasons, types};
use crate::api::{AccessAssignmentStatus, GdapRelationshipStatus, PendingAssignmentUpdate};
use crate::controllers::conditions::{Wanted, merge};
use crate::controllers::failure::Failure;
use crate::microsoft::approval_url;
use crate::microsoft::models::gdap::RelationshipStatus as State;
use chrono::{DateTime, Duration as Span, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Days a locked relationship waits for the customer before the request lapses.
pub const APPROVAL_WINDOW_DAYS: i64 = 90;

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

/// Converts a chrono time to the Kubernetes `Time`.
pub fn to_time(t: DateTime<Utc>) -> Time {
    Time(
        k8s_openapi::jiff::Timestamp::from_second(t.timestamp())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// The relationship the status describes: observed, or just created.
fn current<'a>(i: &'a Inputs) -> Option<&'a RemoteRelationship> {
    match i.outcome {
        Outcome::Applied(Applied::Created(created)) => Some(created),
        _ => i.observed.relationship(),
    }
}

/// The new status.
pub fn build(i: &Inputs) -> GdapRelationshipStatus {
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
    status.conditions = merge(
        &i.previous.conditions,
        &wanted,
        i.generation,
        to_time(i.now).0,
    );
    status
}

fn observed_fields(i: &Inputs) -> GdapRelationshipStatus {
    let remote = current(i);
    let mut status = GdapRelationshipStatus {
        relationship_id: remote
            .map(|r| r.id.clone())
            .or_else(|| i.previous.relationship_id.clone()),
        display_name: Some(
            remote
                .map(|r| r.display_name.clone())
                .unwrap_or_else(|| i.intent.display_name.clone()),
        ),
        state: remote.map(|r| r.status.to_string()),
        activated_at: remote.and_then(|r| r.activated_at).map(to_time),
        ends_at: remote.and_then(|r| r.ends_at).map(to_time),
        access_assignments: assignments(i),
        successor: i.previous.successor.clone(),
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

fn assignments(i: &Inputs) -> Vec<AccessAssignmentStatus> {
    let Ok(desired) = &i.intent.spec else {
        return i.previous.access_assignments.clone();
    };
    let remote = i.observed.microsoft.as_ref().ok();
    let live = |group: &str| {
        remote.and_then(|r| {
            r.assignments
                .iter()
                .find(|a| a.group_id == group && a.is_live())
        })
    };
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
                id: found.map(|a| a.id.clone()),
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
    let extras = remote
        .map(|r| r.assignments.as_slice())
        .unwrap_or_default()
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
    let remote = i.observed.microsoft.as_ref().ok()?;
    let update = remote
        .updates
        .iter()
        .filter(|u| u.assignment_id == assignment_id && u.is_running())
        .max_by_key(|u| u.modified_at)?;
    Some(PendingAssignmentUpdate {
        operation_id: Some(update.operation_id.clone()),
        roles: update.role_ids.iter().cloned().collect(),
        state: Some(update.status.to_string()),
    })
}

fn conditions(i: &Inputs, status: &GdapRelationshipStatus) -> Vec<Wanted> {
    let remote = current(i);
    let synced = synced(i);
    let approved = approved(remote, status);
    let assigned = assigned(i, remote, status);
    let expiring = expiring(i, remote);
    let ready = ready(remote, &synced, &assigned, &approved);
    vec![synced, approved, assigned, expiring, ready]
}

fn synced(i: &Inputs) -> Wanted {
    let refused = |reason, message: String| Wanted::new(types::SYNCED, false, reason, message);
    if let Action::Refuse(error) = &i.plan.action {
        let (reason, message) = refusal(error);
        return refused(reason, message);
    }
    if let Some(f) = i.outcome.failure() {
        if i.observed.deleting && !f.transient {
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
        Action::Wait(Waiting::Termination) | Action::Terminate { .. } => Wanted::new(
            types::SYNCED,
            true,
            reasons::TERMINATING,
            "the object is being deleted; waiting for Microsoft to terminate the relationship",
        ),
        _ => Wanted::new(types::SYNCED, true, reasons::RECONCILED, "the spec is applied"),
    }
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
                    "{what} changed after the relationship was locked for approval, and Microsoft does not allow changing them; nothing was sent. Revert the change, or request the new roles in a new GdapRelationship"
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

fn expiring(i: &Inputs, remote: Option<&RemoteRelationship>) -> Wanted {
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
    let what_next = if r.auto_extend {
        "it will auto-extend by 180 days"
    } else {
        "it will not auto-extend; it expires then unless a new relationship is approved"
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
        Waiting::Activation => "waiting for Microsoft to activate the relationship",
        Waiting::Assignments => "waiting for access assignments and role changes to finish",
        Waiting::Termination => "waiting for Microsoft to finish the termination",
        Waiting::TerminationOverdue => {
            "the termination is overdue; checking at the resync interval"
        }
        Waiting::NothingToObserve => "nothing to observe yet (managementPolicy: Observe)",
        Waiting::Unreadable => "Microsoft's side cannot be read; retrying after a backoff",
    }
}
