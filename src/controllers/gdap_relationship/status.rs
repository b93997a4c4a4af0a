//! The report step, pure: the status (fields and conditions) that describes what was observed,
//! what the plan decided and how the action went.

use super::desired::Desired;
use super::plan::{Action, Observed, Plan, Refusal, RemoteRelationship, Waiting};
use crate::api::conditions::{reasons, types};
use crate::api::{AccessAssignmentStatus, GdapRelationshipStatus};
use crate::controllers::conditions::{Wanted, merge};
use crate::microsoft::approval_url;
use chrono::{DateTime, Duration as Span, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Days a locked relationship waits for the customer before the request lapses.
pub const APPROVAL_WINDOW_DAYS: i64 = 90;

/// How the action went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done, or nothing to do.
    Ok,
    /// The action failed; `transient` ones are retried.
    Failed {
        reason: &'static str,
        message: String,
        transient: bool,
    },
    /// Microsoft refused one access assignment permanently.
    AssignmentRefused { group_id: String, message: String },
}

/// Everything the report needs.
pub struct Inputs<'a> {
    /// The resolved spec.
    pub desired: &'a Result<Desired, String>,
    /// What was observed (with the action's result folded in).
    pub observed: &'a Observed,
    /// The decision.
    pub plan: &'a Plan,
    /// How the action went.
    pub outcome: &'a Outcome,
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

/// The new status.
pub fn build(i: &Inputs) -> GdapRelationshipStatus {
    let remote = i.observed.relationship.as_ref();
    let mut status = GdapRelationshipStatus {
        relationship_id: remote
            .map(|r| r.id.clone())
            .or_else(|| i.previous.relationship_id.clone()),
        display_name: remote
            .map(|r| r.display_name.clone())
            .or_else(|| i.desired.as_ref().ok().map(|d| d.display_name.clone())),
        state: remote.map(|r| r.status.clone()),
        approval_url: None,
        approval_expires_at: None,
        activated_at: remote.and_then(|r| r.activated_at).map(to_time),
        ends_at: remote.and_then(|r| r.ends_at).map(to_time),
        access_assignments: assignments(i),
        successor: i.previous.successor.clone(),
        observed_generation: i.generation,
        conditions: Vec::new(),
    };
    if let Some(r) = remote.filter(|r| r.status != "created") {
        status.approval_url = Some(approval_url(&r.id));
        status.approval_expires_at = i.previous.approval_expires_at.clone().or_else(|| {
            let locked = r.modified_at.unwrap_or(i.now);
            Some(to_time(locked + Span::days(APPROVAL_WINDOW_DAYS)))
        });
    }
    let wanted = conditions(i, &status);
    status.conditions = merge(
        &i.previous.conditions,
        &wanted,
        i.generation,
        to_time(i.now).0,
    );
    status
}

fn assignments(i: &Inputs) -> Vec<AccessAssignmentStatus> {
    let Ok(desired) = i.desired else {
        return i.previous.access_assignments.clone();
    };
    let mut rows: Vec<AccessAssignmentStatus> = desired
        .assignments
        .iter()
        .map(|(group, roles)| {
            let remote = i
                .observed
                .assignments
                .iter()
                .find(|a| &a.group_id == group && a.status != "deleted");
            let previous = i
                .previous
                .access_assignments
                .iter()
                .find(|a| &a.security_group_id == group);
            let mut row = AccessAssignmentStatus {
                security_group_id: group.clone(),
                roles: roles.iter().cloned().collect(),
                id: remote.map(|a| a.id.clone()),
                state: remote.map(|a| a.status.clone()),
                message: None,
                failed_at: None,
            };
            if remote.is_none()
                && let Some(p) = previous.filter(|p| p.failed_at.is_some() && p.roles == row.roles)
            {
                row.message = p.message.clone();
                row.failed_at = p.failed_at.clone();
            }
            if let Outcome::AssignmentRefused { group_id, message } = i.outcome
                && group_id == group
            {
                row.message = Some(message.clone());
                row.failed_at = Some(to_time(i.now));
            }
            row
        })
        .collect();
    for extra in i
        .observed
        .assignments
        .iter()
        .filter(|a| a.status != "deleted" && !desired.assignments.contains_key(&a.group_id))
    {
        rows.push(AccessAssignmentStatus {
            security_group_id: extra.group_id.clone(),
            roles: extra.role_ids.iter().cloned().collect(),
            id: Some(extra.id.clone()),
            state: Some(extra.status.clone()),
            message: Some("not in spec.accessAssignments; being removed".into()),
            failed_at: None,
        });
    }
    rows
}

fn conditions(i: &Inputs, status: &GdapRelationshipStatus) -> Vec<Wanted> {
    let remote = i.observed.relationship.as_ref();
    let synced = synced(i);
    let approved = approved(remote, status);
    let assigned = assigned(i, remote, status);
    let expiring = expiring(i, remote);
    let ready = ready(remote, &synced, &assigned, &approved);
    vec![synced, approved, assigned, expiring, ready]
}

fn synced(i: &Inputs) -> Wanted {
    let refused = |reason, message: String| Wanted::new(types::SYNCED, false, reason, message);
    match (&i.plan.action, i.outcome) {
        (Action::Refuse(Refusal::InvalidSpec(m)), _) => refused(reasons::INVALID_SPEC, m.clone()),
        (
            Action::Refuse(Refusal::Immutable {
                roles_changed,
                duration_changed,
            }),
            _,
        ) => {
            let what = match (roles_changed, duration_changed) {
                (true, true) => "spec.roles and spec.duration",
                (true, false) => "spec.roles",
                _ => "spec.duration",
            };
            refused(
                reasons::ROLES_IMMUTABLE,
                format!(
                    "{what} changed after the relationship was locked for approval, and Microsoft does not allow changing them; nothing was sent. Revert the change, or request the new roles in a new GdapRelationship (renewal.policy: Successor creates a successor for you)"
                ),
            )
        }
        (Action::Refuse(Refusal::AdoptNotFound(id)), _) => refused(
            reasons::NOT_FOUND,
            format!(
                "spec.relationshipId {id:?} does not exist in Microsoft Graph; fix the id or remove it to create a new relationship"
            ),
        ),
        (Action::Refuse(Refusal::CustomerMismatch { found }), _) => refused(
            reasons::DISPLAY_NAME_TAKEN,
            format!(
                "the display name is already used by a relationship with customer {found}; set another spec.displayName (names are unique across the partner)"
            ),
        ),
        (Action::Wait(Waiting::TerminationOverdue), _) => refused(
            reasons::TERMINATION_TIMED_OUT,
            "termination was requested longer ago than --termination-timeout and Microsoft has not finished; the operator checks again at every resync and releases the object when it is terminated. Set spec.deletionPolicy: Orphan to release it now".into(),
        ),
        (
            _,
            Outcome::Failed {
                reason, message, ..
            },
        ) => refused(reason, message.clone()),
        (_, Outcome::AssignmentRefused { group_id, message }) => refused(
            reasons::ASSIGNMENT_FAILED,
            format!("security group {group_id}: {message}"),
        ),
        _ => Wanted::new(
            types::SYNCED,
            true,
            reasons::RECONCILED,
            "the spec is applied",
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
    match r.status.as_str() {
        "created" => Wanted::new(
            types::APPROVED,
            false,
            reasons::NOT_LOCKED,
            "created; being locked for approval",
        ),
        "approvalPending" => {
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
        "approved" | "activating" | "active" | "expiring" => Wanted::new(
            types::APPROVED,
            true,
            reasons::APPROVED,
            "the customer approved the relationship",
        ),
        "expired" if r.activated_at.is_none() => Wanted::new(
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
    if remote.is_none_or(|r| r.status != "active") {
        return Wanted::new(
            types::ACCESS_ASSIGNED,
            false,
            reasons::RELATIONSHIP_NOT_ACTIVE,
            "security groups are assigned once the relationship is active",
        );
    }
    if status.access_assignments.is_empty() && i.desired.is_ok() {
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
    let remote = i
        .observed
        .assignments
        .iter()
        .find(|a| a.group_id == row.security_group_id && a.status != "deleted");
    remote.is_some_and(|a| a.role_ids.iter().eq(row.roles.iter()))
}

fn expiring(i: &Inputs, remote: Option<&RemoteRelationship>) -> Wanted {
    let Some((r, ends_at)) = remote
        .filter(|r| r.status == "active")
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
        "it will auto-extend by 180 days".to_string()
    } else if i
        .desired
        .as_ref()
        .is_ok_and(|d| d.successor_before_days.is_some())
    {
        "it will not auto-extend; a successor relationship will be requested".to_string()
    } else {
        "it will not auto-extend; it expires then unless a new relationship is approved".to_string()
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
    let permanent_refusal = !synced.status && synced.reason != reasons::TRANSIENT_ERROR;
    match remote.map(|r| r.status.as_str()) {
        Some("active") if assigned.status && !permanent_refusal => Wanted::new(
            types::READY,
            true,
            reasons::ACTIVE,
            "active, and every access assignment is active",
        ),
        Some("active") if permanent_refusal => {
            Wanted::new(types::READY, false, synced.reason, synced.message.clone())
        }
        Some("active") => Wanted::new(
            types::READY,
            false,
            assigned.reason,
            assigned.message.clone(),
        ),
        Some("expired") | Some("expiring") => Wanted::new(
            types::READY,
            false,
            reasons::EXPIRED,
            "the relationship expired; create a new one (or use renewal.policy: Successor)",
        ),
        Some("terminated") | Some("terminating") | Some("terminationRequested") => Wanted::new(
            types::READY,
            false,
            reasons::TERMINATED,
            "the relationship was terminated (by the customer, the partner or Microsoft); it is not recreated automatically",
        ),
        Some("approved") | Some("activating") => Wanted::new(
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

/// A short phrase for what the controller waits for (events and logs).
pub fn describe_wait(w: Waiting) -> &'static str {
    match w {
        Waiting::Approval => "waiting for the customer's approval",
        Waiting::Activation => "waiting for Microsoft to activate the relationship",
        Waiting::Assignments => "waiting for access assignments to become active",
        Waiting::Termination => "waiting for Microsoft to finish the termination",
        Waiting::TerminationOverdue => {
            "the termination is overdue; checking at the resync interval"
        }
        Waiting::NothingToObserve => "nothing to observe yet (managementPolicy: Observe)",
    }
}
