//! The pure heart of the GdapRelationship controller: given what the object asks for, what was
//! observed (in Kubernetes and in Microsoft) and the time, decide the one next step and when to
//! look again. No I/O, no clock.
//!
//! Each [`Action`] carries everything its request needs (ids, ETags, bodies), so `act` is a small
//! interpreter and `gdap-operator plan` can print exactly what the controller would do.

use super::desired::{Desired, Intent};
use crate::api::ManagementPolicy;
use crate::api::rules::FieldProblem;
use crate::controllers::withdrawals::Withdrawal;
use crate::microsoft::models::gdap::{
    AccessAssignmentStatus as AssignmentState, AccessContainer, AccessDetails, CustomerParticipant,
    NewAccessAssignment, NewRelationship, OperationStatus, RelationshipPatch,
    RelationshipStatus as State, RequestStatus,
};
use chrono::{DateTime, Duration as Span, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Days before the end at which Microsoft (and the operator) warn.
pub const EXPIRY_WARNING_DAYS: [i64; 3] = [30, 7, 1];
/// `autoExtendDuration` when auto-extension is on (Microsoft allows only 180 days).
pub const AUTO_EXTEND_ON: &str = "P180D";
/// `autoExtendDuration` when auto-extension is off.
pub const AUTO_EXTEND_OFF: &str = "PT0S";

/// A relationship as Microsoft reports it, reduced to what decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRelationship {
    /// Microsoft's id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Customer tenant id, lower case, once known.
    pub customer: Option<String>,
    /// Microsoft's status.
    pub status: State,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAssignment {
    /// Microsoft's id.
    pub id: String,
    /// Security group id, lower case.
    pub group_id: String,
    /// Role template ids, lower case.
    pub role_ids: BTreeSet<String>,
    /// Microsoft's status.
    pub status: AssignmentState,
    /// ETag for PATCH/DELETE.
    pub etag: Option<String>,
}

impl RemoteAssignment {
    /// Not being deleted and not gone.
    pub fn is_live(&self) -> bool {
        !matches!(
            self.status,
            AssignmentState::Deleting | AssignmentState::Deleted
        )
    }
}

/// A role change of an access assignment, as Microsoft's long-running operation reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUpdate {
    /// The operation's id.
    pub operation_id: String,
    /// The assignment it changes.
    pub assignment_id: String,
    /// The roles it applies.
    pub role_ids: BTreeSet<String>,
    /// Its progress.
    pub status: OperationStatus,
    /// When it last changed (its end, once finished).
    pub modified_at: Option<DateTime<Utc>>,
}

impl RemoteUpdate {
    /// Still being applied.
    pub fn is_running(&self) -> bool {
        matches!(
            self.status,
            OperationStatus::NotStarted | OperationStatus::Running
        )
    }
}

/// A `terminate` request of the relationship (`…/requests`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRequest {
    /// Its status (`None` when Microsoft did not say).
    pub status: Option<RequestStatus>,
    /// When it was made.
    pub created_at: Option<DateTime<Utc>>,
}

/// An assignment that failed permanently before, remembered in status so it is not retried in a loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAssignment {
    /// The roles that were refused.
    pub role_ids: BTreeSet<String>,
    /// When it failed.
    pub at: DateTime<Utc>,
}

/// Microsoft's side of one object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Remote {
    /// The relationship, when one exists (by id or display name).
    pub relationship: Option<RemoteRelationship>,
    /// Its access assignments (empty unless active).
    pub assignments: Vec<RemoteAssignment>,
    /// Role changes of its assignments (read when a change is due or pending).
    pub updates: Vec<RemoteUpdate>,
    /// The newest `terminate` request (read while deleting).
    pub termination: Option<RemoteRequest>,
}

/// Microsoft's side could not be read (credentials or Microsoft failed); the report says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable {
    /// Retrying later can help without anybody acting.
    pub transient: bool,
}

/// Everything observed for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The object is being deleted.
    pub deleting: bool,
    /// The object records that a create may have been sent (`gdap.io/create-intent`).
    pub create_intent: bool,
    /// The relationship id the status records.
    pub recorded_id: Option<String>,
    /// A withdrawal record for the relationship exists on the credentials Secret.
    pub withdrawal_recorded: bool,
    /// Assignments that failed permanently, by group id (from status).
    pub failed_assignments: BTreeMap<String, FailedAssignment>,
    /// Microsoft's side.
    pub microsoft: Result<Remote, Unreadable>,
}

impl Observed {
    /// The relationship, when Microsoft was read and one exists.
    pub fn relationship(&self) -> Option<&RemoteRelationship> {
        self.microsoft.as_ref().ok()?.relationship.as_ref()
    }
}

/// Timing knobs (from the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How soon to look again while Microsoft is working (approval, activation, assignments).
    pub poll: Duration,
    /// How often to re-read a steady relationship (detects out-of-band changes).
    pub resync: Duration,
    /// How long deletion waits for `terminated` before reporting it overdue.
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

/// Why the plan refuses to write: the plan stage's errors, all permanent until the spec changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The spec cannot be resolved.
    InvalidSpec(FieldProblem),
    /// Roles or duration changed after the lock for approval.
    Immutable {
        /// `spec.roles` changed.
        roles_changed: bool,
        /// `spec.duration` changed.
        duration_changed: bool,
    },
    /// `spec.relationshipId` names a relationship Microsoft does not know.
    AdoptNotFound(String),
    /// The display name belongs to a relationship with another customer.
    CustomerMismatch {
        /// That relationship's customer.
        found: String,
    },
}

/// What the controller is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The customer's approval.
    Approval,
    /// Microsoft provisioning after approval.
    Activation,
    /// Access assignments or role changes finishing.
    Assignments,
    /// Microsoft finishing a termination.
    Termination,
    /// A termination that takes longer than the timeout: checked again at the resync interval
    /// and reported; released when it finishes (or when the user sets `deletionPolicy: Orphan`).
    TerminationOverdue,
    /// `managementPolicy: Observe` and nothing to adopt yet.
    NothingToObserve,
    /// Microsoft's side cannot be read (the report says why); looked at again after a backoff.
    Unreadable,
}

/// The one step to take, with the data its request needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Record on the object that a create is about to be sent (the value is the annotation's).
    RecordCreateIntent { annotation: String },
    /// Create the relationship.
    Create { body: NewRelationship },
    /// PATCH a relationship still in `created` to match the spec.
    UpdateDraft {
        id: String,
        etag: String,
        patch: RelationshipPatch,
    },
    /// Lock for approval.
    Lock { id: String },
    /// PATCH `autoExtendDuration` of an active relationship.
    SetAutoExtend {
        id: String,
        etag: String,
        on: bool,
        patch: RelationshipPatch,
    },
    /// Create an access assignment.
    CreateAssignment {
        relationship_id: String,
        group_id: String,
        body: NewAccessAssignment,
    },
    /// PATCH an access assignment's roles (Microsoft applies it as a long-running operation).
    UpdateAssignment {
        relationship_id: String,
        assignment_id: String,
        etag: String,
        group_id: String,
        access_details: AccessDetails,
    },
    /// Delete an access assignment that is no longer in the spec.
    DeleteAssignment {
        relationship_id: String,
        assignment_id: String,
        etag: String,
        group_id: String,
    },
    /// Delete a relationship that was never locked (object deletion).
    DeleteDraft { id: String, etag: String },
    /// Ask Microsoft to terminate (object deletion).
    Terminate { id: String },
    /// Remember a relationship awaiting approval whose object is being deleted, on the
    /// credentials Secret, so it is terminated if the customer approves it later.
    RecordWithdrawal { record: Withdrawal },
    /// Remove the finalizer: nothing (more) to do in Microsoft.
    Release(ReleaseReason),
    /// Wait for Microsoft or the customer.
    Wait(Waiting),
    /// Steady state: report and look again later.
    Idle,
    /// Do not write; report why.
    Refuse(PlanError),
}

impl Action {
    /// Whether the action writes (to Microsoft or to Kubernetes).
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Action::Release(_) | Action::Wait(_) | Action::Idle | Action::Refuse(_)
        )
    }
}

/// Why the finalizer is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// `deletionPolicy: Orphan` or `managementPolicy: Observe`.
    Orphaned,
    /// Nothing exists in Microsoft (or nothing was ever created).
    NothingToDelete,
    /// Deleted or terminated.
    Done,
    /// Approval pending: Graph cannot withdraw it; a withdrawal record terminates it if approved.
    CannotWithdraw,
}

/// The decision: one action and when to reconcile again.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// What to do now.
    pub action: Action,
    /// When to look again (after the action, if it succeeds).
    pub requeue: Duration,
}

/// Decides the next step.
pub fn plan(intent: &Intent, observed: &Observed, timing: &Timing, now: DateTime<Utc>) -> Plan {
    if observed.deleting {
        return plan_deletion(intent, observed, timing, now);
    }
    let Ok(remote) = &observed.microsoft else {
        return wait(Waiting::Unreadable, timing.poll);
    };
    let desired = match &intent.spec {
        Ok(d) => d,
        Err(problem) => return refuse(PlanError::InvalidSpec(problem.clone()), timing),
    };
    let Some(rel) = &remote.relationship else {
        return plan_missing(intent, desired, observed, timing, now);
    };
    if let Some(customer) = rel.customer.as_ref().filter(|c| **c != intent.customer) {
        let found = customer.clone();
        return refuse(PlanError::CustomerMismatch { found }, timing);
    }
    match rel.status {
        State::Created => plan_draft(intent, desired, rel, timing),
        State::ApprovalPending => locked(desired, rel, timing, Waiting::Approval),
        State::Approved | State::Activating => locked(desired, rel, timing, Waiting::Activation),
        State::Active => plan_active(intent, desired, remote, observed, timing, now),
        _ => at(Action::Idle, timing.resync),
    }
}

fn at(action: Action, requeue: Duration) -> Plan {
    Plan { action, requeue }
}

fn now_(action: Action) -> Plan {
    at(action, Duration::ZERO)
}

fn wait(waiting: Waiting, requeue: Duration) -> Plan {
    at(Action::Wait(waiting), requeue)
}

fn refuse(error: PlanError, timing: &Timing) -> Plan {
    at(Action::Refuse(error), timing.resync)
}

fn release(reason: ReleaseReason) -> Plan {
    now_(Action::Release(reason))
}

fn plan_missing(
    intent: &Intent,
    desired: &Desired,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    if let Some(id) = &intent.adopt_id {
        return refuse(PlanError::AdoptNotFound(id.clone()), timing);
    }
    if intent.management == ManagementPolicy::Observe {
        return wait(Waiting::NothingToObserve, timing.poll);
    }
    if !observed.create_intent {
        let annotation = format!("{} {}", intent.display_name, now.to_rfc3339());
        return now_(Action::RecordCreateIntent { annotation });
    }
    now_(Action::Create {
        body: new_relationship(intent, desired),
    })
}

/// The create body for the spec.
pub fn new_relationship(intent: &Intent, desired: &Desired) -> NewRelationship {
    NewRelationship {
        display_name: intent.display_name.clone(),
        duration: format!("P{}D", desired.duration_days),
        customer: Some(CustomerParticipant {
            tenant_id: intent.customer.clone(),
            display_name: None,
        }),
        access_details: AccessDetails::from_role_ids(desired.role_ids.iter().cloned()),
        auto_extend_duration: Some(auto_extend_value(desired.auto_extend).into()),
    }
}

/// `autoExtendDuration` for on or off.
pub fn auto_extend_value(on: bool) -> &'static str {
    if on { AUTO_EXTEND_ON } else { AUTO_EXTEND_OFF }
}

fn plan_draft(
    intent: &Intent,
    desired: &Desired,
    rel: &RemoteRelationship,
    timing: &Timing,
) -> Plan {
    if intent.management == ManagementPolicy::Observe {
        return at(Action::Idle, timing.poll);
    }
    let matches = rel.role_ids == desired.role_ids
        && rel.duration_days == Some(desired.duration_days)
        && rel.auto_extend == desired.auto_extend;
    if matches {
        return now_(Action::Lock { id: rel.id.clone() });
    }
    now_(Action::UpdateDraft {
        id: rel.id.clone(),
        etag: rel.etag.clone().unwrap_or_default(),
        patch: RelationshipPatch {
            access_details: Some(AccessDetails::from_role_ids(
                desired.role_ids.iter().cloned(),
            )),
            duration: Some(format!("P{}D", desired.duration_days)),
            auto_extend_duration: Some(auto_extend_value(desired.auto_extend).into()),
            ..Default::default()
        },
    })
}

/// After the lock, roles and duration cannot change: refuse instead of waiting when they did.
fn locked(desired: &Desired, rel: &RemoteRelationship, timing: &Timing, w: Waiting) -> Plan {
    match immutable_change(desired, rel) {
        Some(error) => refuse(error, timing),
        None => wait(w, timing.poll),
    }
}

fn immutable_change(desired: &Desired, rel: &RemoteRelationship) -> Option<PlanError> {
    let roles_changed = rel.role_ids != desired.role_ids;
    let duration_changed = rel
        .duration_days
        .is_some_and(|d| d != desired.duration_days);
    (roles_changed || duration_changed).then_some(PlanError::Immutable {
        roles_changed,
        duration_changed,
    })
}

fn plan_active(
    intent: &Intent,
    desired: &Desired,
    remote: &Remote,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    let rel = remote.relationship.as_ref().expect("plan_active has one");
    if let Some(error) = immutable_change(desired, rel) {
        return refuse(error, timing);
    }
    let steady = steady_requeue(rel, timing, now);
    if intent.management == ManagementPolicy::Observe {
        return at(Action::Idle, steady);
    }
    if rel.auto_extend != desired.auto_extend {
        let on = desired.auto_extend;
        return now_(Action::SetAutoExtend {
            id: rel.id.clone(),
            etag: rel.etag.clone().unwrap_or_default(),
            on,
            patch: RelationshipPatch {
                auto_extend_duration: Some(auto_extend_value(on).into()),
                ..Default::default()
            },
        });
    }
    let failed = failed_assignments(observed, remote);
    if let Some(action) = next_assignment_step(desired, remote, rel, &failed, timing, now) {
        return now_(action);
    }
    let pending = remote
        .assignments
        .iter()
        .any(|a| a.is_live() && a.status != AssignmentState::Active)
        || remote.updates.iter().any(RemoteUpdate::is_running);
    if pending {
        return wait(Waiting::Assignments, timing.poll.min(steady));
    }
    at(Action::Idle, steady)
}

/// Refusals remembered in status, plus role changes Microsoft accepted and then failed.
fn failed_assignments(observed: &Observed, remote: &Remote) -> BTreeMap<String, FailedAssignment> {
    let mut failed = observed.failed_assignments.clone();
    for update in remote
        .updates
        .iter()
        .filter(|u| u.status == OperationStatus::Failed)
    {
        let Some(a) = remote
            .assignments
            .iter()
            .find(|a| a.id == update.assignment_id)
        else {
            continue;
        };
        let Some(at) = update.modified_at else {
            continue;
        };
        let newer = failed.get(&a.group_id).is_none_or(|f| f.at < at);
        if newer {
            let role_ids = update.role_ids.clone();
            failed.insert(a.group_id.clone(), FailedAssignment { role_ids, at });
        }
    }
    failed
}

fn next_assignment_step(
    desired: &Desired,
    remote: &Remote,
    rel: &RemoteRelationship,
    failed: &BTreeMap<String, FailedAssignment>,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Option<Action> {
    let live = || remote.assignments.iter().filter(|a| a.is_live());
    let updating = |id: &str| {
        remote
            .updates
            .iter()
            .any(|u| u.assignment_id == id && u.is_running())
    };
    let refused = |group: &str, roles: &BTreeSet<String>| {
        failed.get(group).is_some_and(|f| {
            &f.role_ids == roles
                && now < f.at + Span::from_std(timing.failed_retry).unwrap_or(Span::MAX)
        })
    };
    for (group_id, role_ids) in &desired.assignments {
        match live().find(|a| &a.group_id == group_id) {
            None if !refused(group_id, role_ids) => {
                return Some(Action::CreateAssignment {
                    relationship_id: rel.id.clone(),
                    group_id: group_id.clone(),
                    body: NewAccessAssignment {
                        access_container: AccessContainer::security_group(group_id),
                        access_details: AccessDetails::from_role_ids(role_ids.iter().cloned()),
                    },
                });
            }
            Some(a)
                if a.status == AssignmentState::Active
                    && &a.role_ids != role_ids
                    && !updating(&a.id)
                    && !refused(group_id, role_ids) =>
            {
                return Some(Action::UpdateAssignment {
                    relationship_id: rel.id.clone(),
                    assignment_id: a.id.clone(),
                    etag: a.etag.clone().unwrap_or_default(),
                    group_id: group_id.clone(),
                    access_details: AccessDetails::from_role_ids(role_ids.iter().cloned()),
                });
            }
            _ => {}
        }
    }
    live()
        .find(|a| !desired.assignments.contains_key(&a.group_id))
        .map(|a| Action::DeleteAssignment {
            relationship_id: rel.id.clone(),
            assignment_id: a.id.clone(),
            etag: a.etag.clone().unwrap_or_default(),
            group_id: a.group_id.clone(),
        })
}

/// Look again at the next expiry threshold or end, or at the resync interval, whichever is first.
pub fn steady_requeue(rel: &RemoteRelationship, timing: &Timing, now: DateTime<Utc>) -> Duration {
    let Some(ends_at) = rel.ends_at else {
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

/// Deletion: terminate (policy `Delete`) or release (`Orphan`, `Observe`); never orphan because
/// Microsoft or the credentials could not be read.
fn plan_deletion(
    intent: &Intent,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    if intent.orphans_on_delete() {
        return release(ReleaseReason::Orphaned);
    }
    let remote = match &observed.microsoft {
        Ok(remote) => remote,
        Err(_) if nothing_was_ever_created(intent, observed) => {
            return release(ReleaseReason::NothingToDelete);
        }
        Err(_) => return wait(Waiting::Unreadable, timing.poll),
    };
    let Some(rel) = &remote.relationship else {
        return release(ReleaseReason::NothingToDelete);
    };
    match rel.status {
        State::Created => now_(Action::DeleteDraft {
            id: rel.id.clone(),
            etag: rel.etag.clone().unwrap_or_default(),
        }),
        State::ApprovalPending if observed.withdrawal_recorded => {
            release(ReleaseReason::CannotWithdraw)
        }
        State::ApprovalPending => now_(Action::RecordWithdrawal {
            record: Withdrawal {
                relationship_id: rel.id.clone(),
                customer: intent.customer.clone(),
                display_name: rel.display_name.clone(),
            },
        }),
        State::Approved | State::Activating => wait(Waiting::Activation, timing.poll),
        State::Active if !termination_requested(remote) => {
            at(Action::Terminate { id: rel.id.clone() }, timing.poll)
        }
        State::Active | State::TerminationRequested | State::Terminating => {
            awaiting_termination(remote, rel, timing, now)
        }
        State::Terminated | State::Expired => release(ReleaseReason::Done),
        _ => wait(Waiting::Termination, timing.poll),
    }
}

/// No create was ever sent and no id was ever known: nothing in Microsoft can belong to the object.
fn nothing_was_ever_created(intent: &Intent, observed: &Observed) -> bool {
    !observed.create_intent && observed.recorded_id.is_none() && intent.adopt_id.is_none()
}

/// A terminate request exists that did not fail.
pub fn termination_requested(remote: &Remote) -> bool {
    remote
        .termination
        .as_ref()
        .is_some_and(|r| r.status != Some(RequestStatus::Failed))
}

fn awaiting_termination(
    remote: &Remote,
    rel: &RemoteRelationship,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    let started = remote
        .termination
        .as_ref()
        .and_then(|r| r.created_at)
        .or(rel.modified_at)
        .unwrap_or(now);
    let deadline = started + Span::from_std(timing.termination_timeout).unwrap_or(Span::MAX);
    if now >= deadline {
        wait(Waiting::TerminationOverdue, timing.resync)
    } else {
        wait(Waiting::Termination, timing.poll)
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
