//! The pure heart of the GdapRelationship controller: given what the spec wants, what Microsoft
//! reports and the time, decide the one next step and when to look again. No I/O, no clock.

use super::desired::Desired;
use crate::api::{DeletionPolicy, ManagementPolicy};
use chrono::{DateTime, Duration as Span, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Days before the end at which Microsoft (and the operator) warn.
pub const EXPIRY_WARNING_DAYS: [i64; 3] = [30, 7, 1];

/// A relationship as Microsoft reports it, reduced to what decisions need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteRelationship {
    /// Microsoft's id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Customer tenant id, lower case, once known.
    pub customer: Option<String>,
    /// Microsoft's status, verbatim (`created`, `approvalPending`, `active`, …).
    pub status: String,
    /// Role template ids, lower case.
    pub role_ids: BTreeSet<String>,
    /// Duration in days, when it parses.
    pub duration_days: Option<u32>,
    /// Whether auto-extension is on.
    pub auto_extend: bool,
    /// When it became active.
    pub activated_at: Option<DateTime<Utc>>,
    /// When it ends.
    pub ends_at: Option<DateTime<Utc>>,
    /// When it was last modified (the lock time while approval is pending).
    pub modified_at: Option<DateTime<Utc>>,
    /// ETag for PATCH/DELETE.
    pub etag: Option<String>,
}

/// An access assignment as Microsoft reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteAssignment {
    /// Microsoft's id.
    pub id: String,
    /// Security group id, lower case.
    pub group_id: String,
    /// Role template ids, lower case.
    pub role_ids: BTreeSet<String>,
    /// `pending`, `active`, `deleting`, `deleted`, `error`.
    pub status: String,
    /// ETag for PATCH/DELETE.
    pub etag: Option<String>,
}

/// An assignment that failed permanently before, remembered in status so it is not retried in a loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAssignment {
    /// The roles that were refused.
    pub role_ids: BTreeSet<String>,
    /// When it failed.
    pub at: DateTime<Utc>,
}

/// Everything observed for one object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// The relationship, when one exists (by id or display name).
    pub relationship: Option<RemoteRelationship>,
    /// Its access assignments (empty unless active).
    pub assignments: Vec<RemoteAssignment>,
    /// Assignments that failed permanently, by group id.
    pub failed_assignments: BTreeMap<String, FailedAssignment>,
    /// The object is being deleted.
    pub deleting: bool,
    /// When the operator asked Microsoft to terminate (deletion in progress).
    pub termination_requested_at: Option<DateTime<Utc>>,
}

/// Timing knobs (from the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How soon to look again while Microsoft is working (approval, activation, assignments).
    pub poll: Duration,
    /// How often to re-read a steady relationship (detects out-of-band changes).
    pub resync: Duration,
    /// How long deletion waits for `terminated` before releasing the object.
    pub termination_timeout: Duration,
    /// How long a permanently failed assignment waits before it is tried again.
    pub failed_retry: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll: Duration::from_secs(30),
            resync: Duration::from_secs(600),
            termination_timeout: Duration::from_secs(600),
            failed_retry: Duration::from_secs(3600),
        }
    }
}

/// Why nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The spec cannot be resolved (field: message).
    InvalidSpec(String),
    /// Roles or duration changed after the lock for approval.
    Immutable {
        roles_changed: bool,
        duration_changed: bool,
    },
    /// `spec.relationshipId` names a relationship Microsoft does not know.
    AdoptNotFound(String),
    /// The display name belongs to a relationship with another customer.
    CustomerMismatch { found: String },
}

/// What the controller is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The customer's approval.
    Approval,
    /// Microsoft provisioning after approval.
    Activation,
    /// Access assignments leaving `pending`.
    Assignments,
    /// Microsoft finishing a termination.
    Termination,
    /// A termination that takes longer than the timeout: checked again at the resync interval,
    /// reported, and released when it finishes (or when the user sets `deletionPolicy: Orphan`).
    TerminationOverdue,
    /// `managementPolicy: Observe` and nothing to adopt yet.
    NothingToObserve,
}

/// The one step to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the relationship (after recording intent).
    Create,
    /// PATCH a relationship still in `created` to match the spec.
    UpdateDraft,
    /// Lock for approval.
    Lock,
    /// PATCH `autoExtendDuration` of an active relationship.
    SetAutoExtend(bool),
    /// Create an access assignment.
    CreateAssignment {
        group_id: String,
        role_ids: BTreeSet<String>,
    },
    /// PATCH an access assignment's roles.
    UpdateAssignment {
        id: String,
        group_id: String,
        role_ids: BTreeSet<String>,
    },
    /// Delete an access assignment that is no longer in the spec.
    DeleteAssignment { id: String, group_id: String },
    /// Delete a relationship that was never locked (object deletion).
    DeleteDraft,
    /// Ask Microsoft to terminate (object deletion).
    Terminate,
    /// Remove the finalizer: nothing (more) to do in Microsoft.
    Release(ReleaseReason),
    /// Wait for Microsoft or the customer.
    Wait(Waiting),
    /// Steady state: report and look again later.
    Idle,
    /// Do not write; report why.
    Refuse(Refusal),
}

/// Why the finalizer is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// `deletionPolicy: Orphan` or `managementPolicy: Observe`.
    Orphaned,
    /// Nothing exists in Microsoft.
    NothingToDelete,
    /// Deleted or terminated.
    Done,
    /// Approval pending: Graph cannot withdraw it; it lapses after 90 days.
    CannotWithdraw,
}

/// The decision: one action and when to reconcile again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What to do now.
    pub action: Action,
    /// When to look again (after the action, if it succeeds).
    pub requeue: Duration,
}

/// Decides the next step.
pub fn plan(
    desired: &Result<Desired, String>,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    let desired = match desired {
        Ok(d) => d,
        Err(_) if observed.deleting => return deleting_without_spec(observed, timing, now),
        Err(message) => return refuse(Refusal::InvalidSpec(message.clone()), timing),
    };
    if observed.deleting {
        return plan_deletion(desired, observed, timing, now);
    }
    let Some(remote) = &observed.relationship else {
        return plan_missing(desired, timing);
    };
    if let Some(customer) = &remote.customer
        && *customer != desired.customer
    {
        return refuse(
            Refusal::CustomerMismatch {
                found: customer.clone(),
            },
            timing,
        );
    }
    match remote.status.as_str() {
        "created" => plan_draft(desired, remote, timing),
        "approvalPending" => locked(
            desired,
            remote,
            timing,
            Action::Wait(Waiting::Approval),
            timing.poll,
        ),
        "approved" | "activating" => locked(
            desired,
            remote,
            timing,
            Action::Wait(Waiting::Activation),
            timing.poll,
        ),
        "active" => plan_active(desired, observed, remote, timing, now),
        _ => Plan {
            action: Action::Idle,
            requeue: timing.resync,
        },
    }
}

fn refuse(refusal: Refusal, timing: &Timing) -> Plan {
    Plan {
        action: Action::Refuse(refusal),
        requeue: timing.resync,
    }
}

fn plan_missing(desired: &Desired, timing: &Timing) -> Plan {
    if let Some(id) = &desired.adopt_id {
        return refuse(Refusal::AdoptNotFound(id.clone()), timing);
    }
    if desired.management == ManagementPolicy::Observe {
        return Plan {
            action: Action::Wait(Waiting::NothingToObserve),
            requeue: timing.poll,
        };
    }
    Plan {
        action: Action::Create,
        requeue: Duration::ZERO,
    }
}

fn plan_draft(desired: &Desired, remote: &RemoteRelationship, timing: &Timing) -> Plan {
    if desired.management == ManagementPolicy::Observe {
        return Plan {
            action: Action::Idle,
            requeue: timing.poll,
        };
    }
    let matches = remote.role_ids == desired.role_ids
        && remote.duration_days == Some(desired.duration_days)
        && remote.auto_extend == desired.auto_extend;
    let action = if matches {
        Action::Lock
    } else {
        Action::UpdateDraft
    };
    Plan {
        action,
        requeue: Duration::ZERO,
    }
}

/// After the lock, roles and duration cannot change: refuse instead of waiting when they did.
fn locked(
    desired: &Desired,
    remote: &RemoteRelationship,
    timing: &Timing,
    action: Action,
    requeue: Duration,
) -> Plan {
    match immutable_change(desired, remote) {
        Some(refusal) => refuse(refusal, timing),
        None => Plan { action, requeue },
    }
}

fn immutable_change(desired: &Desired, remote: &RemoteRelationship) -> Option<Refusal> {
    let roles_changed = remote.role_ids != desired.role_ids;
    let duration_changed = remote
        .duration_days
        .is_some_and(|d| d != desired.duration_days);
    (roles_changed || duration_changed).then_some(Refusal::Immutable {
        roles_changed,
        duration_changed,
    })
}

fn plan_active(
    desired: &Desired,
    observed: &Observed,
    remote: &RemoteRelationship,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    if let Some(refusal) = immutable_change(desired, remote) {
        return refuse(refusal, timing);
    }
    let steady = steady_requeue(remote, timing, now);
    if desired.management == ManagementPolicy::Observe {
        return Plan {
            action: Action::Idle,
            requeue: steady,
        };
    }
    if remote.auto_extend != desired.auto_extend {
        return Plan {
            action: Action::SetAutoExtend(desired.auto_extend),
            requeue: Duration::ZERO,
        };
    }
    if let Some(action) = next_assignment_step(desired, observed, timing, now) {
        return Plan {
            action,
            requeue: Duration::ZERO,
        };
    }
    let pending = live(&observed.assignments).any(|a| a.status != "active");
    if pending {
        return Plan {
            action: Action::Wait(Waiting::Assignments),
            requeue: timing.poll.min(steady),
        };
    }
    Plan {
        action: Action::Idle,
        requeue: steady,
    }
}

/// Assignments that count: not being deleted or gone.
fn live(assignments: &[RemoteAssignment]) -> impl Iterator<Item = &RemoteAssignment> {
    assignments
        .iter()
        .filter(|a| a.status != "deleting" && a.status != "deleted")
}

fn next_assignment_step(
    desired: &Desired,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Option<Action> {
    for (group_id, role_ids) in &desired.assignments {
        let remote = live(&observed.assignments).find(|a| &a.group_id == group_id);
        match remote {
            None if !recently_failed(observed, group_id, role_ids, timing, now) => {
                return Some(Action::CreateAssignment {
                    group_id: group_id.clone(),
                    role_ids: role_ids.clone(),
                });
            }
            Some(a)
                if a.status == "active"
                    && &a.role_ids != role_ids
                    && !recently_failed(observed, group_id, role_ids, timing, now) =>
            {
                return Some(Action::UpdateAssignment {
                    id: a.id.clone(),
                    group_id: group_id.clone(),
                    role_ids: role_ids.clone(),
                });
            }
            _ => {}
        }
    }
    live(&observed.assignments)
        .find(|a| !desired.assignments.contains_key(&a.group_id))
        .map(|a| Action::DeleteAssignment {
            id: a.id.clone(),
            group_id: a.group_id.clone(),
        })
}

fn recently_failed(
    observed: &Observed,
    group_id: &str,
    role_ids: &BTreeSet<String>,
    timing: &Timing,
    now: DateTime<Utc>,
) -> bool {
    observed.failed_assignments.get(group_id).is_some_and(|f| {
        &f.role_ids == role_ids
            && now < f.at + Span::from_std(timing.failed_retry).unwrap_or(Span::MAX)
    })
}

/// Look again at the next expiry threshold or end, or at the resync interval, whichever is first.
pub fn steady_requeue(
    remote: &RemoteRelationship,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Duration {
    let Some(ends_at) = remote.ends_at else {
        return timing.resync;
    };
    let next = EXPIRY_WARNING_DAYS
        .iter()
        .map(|d| ends_at - Span::days(*d))
        .chain(std::iter::once(ends_at))
        .filter(|t| *t > now)
        .min();
    match next {
        Some(t) => (t - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1))
            .min(timing.resync),
        None => timing.resync,
    }
}

fn plan_deletion(
    desired: &Desired,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    if desired.deletion == DeletionPolicy::Orphan || desired.management == ManagementPolicy::Observe
    {
        return release(ReleaseReason::Orphaned);
    }
    deleting_without_spec(observed, timing, now)
}

/// Deletion with `deletionPolicy: Delete` (also used when the spec no longer resolves).
fn deleting_without_spec(observed: &Observed, timing: &Timing, now: DateTime<Utc>) -> Plan {
    let Some(remote) = &observed.relationship else {
        return release(ReleaseReason::NothingToDelete);
    };
    match remote.status.as_str() {
        "created" => Plan {
            action: Action::DeleteDraft,
            requeue: Duration::ZERO,
        },
        "approvalPending" => release(ReleaseReason::CannotWithdraw),
        "approved" | "activating" => Plan {
            action: Action::Wait(Waiting::Activation),
            requeue: timing.poll,
        },
        "active" if observed.termination_requested_at.is_none() => Plan {
            action: Action::Terminate,
            requeue: timing.poll,
        },
        "active" | "terminationRequested" | "terminating" => {
            let started = observed.termination_requested_at.unwrap_or(now);
            let deadline =
                started + Span::from_std(timing.termination_timeout).unwrap_or(Span::MAX);
            if now >= deadline {
                Plan {
                    action: Action::Wait(Waiting::TerminationOverdue),
                    requeue: timing.resync,
                }
            } else {
                Plan {
                    action: Action::Wait(Waiting::Termination),
                    requeue: timing.poll,
                }
            }
        }
        _ => release(ReleaseReason::Done),
    }
}

fn release(reason: ReleaseReason) -> Plan {
    Plan {
        action: Action::Release(reason),
        requeue: Duration::ZERO,
    }
}

/// The expiry warnings (30, 7, 1 days) due at `now` that were not sent yet, most distant first.
pub fn expiry_warnings_due(
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
    already_sent: &[i64],
) -> Vec<i64> {
    EXPIRY_WARNING_DAYS
        .iter()
        .copied()
        .filter(|d| now >= ends_at - Span::days(*d) && now < ends_at && !already_sent.contains(d))
        .collect()
}
