//! The pure heart of the GdapRelationship controller: given what the object asks for, what was
//! observed (in Kubernetes and in Microsoft) and the time, decide the one next step and when to
//! look again. No I/O, no clock.
//!
//! Each [`Action`] carries everything its request needs (ids, ETags, bodies), so `act` is a small
//! interpreter and `gdap-operator plan` can print exactly what the controller would do.
//!
//! **Microsoft is eventually consistent** (see `pending`). The plan decides on the *effective*
//! state — what was read, with the operator's own writes that the read does not show yet applied
//! — so a lagging read never makes it write again, and never makes it delete or terminate to
//! repair what it sees. A relationship the object records (its id in status, or a create
//! Microsoft answered) that is not found yet is waited for, not created again. When only waiting
//! is left while writes are unshown, the step is `Waiting::Propagating` (polled from `poll`, each
//! look about twice as far from the write as the last, up to `resync`), and a write still unshown
//! `propagation_timeout` after it was made is refused as `PlanError::PropagationTimedOut`: a
//! failure that names it, never a second write.
//!
//! **Adoption is never a guess.** The object's relationship is the one `spec.relationshipId`
//! names, the one its hand-over recorded, the one it created (its id in status, backed by the
//! create intent, or a create Microsoft answered), or — after a crash between the create and
//! recording its id — the one with its display name that Microsoft created after the create
//! intent was recorded ([`CLOCK_SKEW`] allowed). Any other relationship that merely carries the
//! display name (made by hand or by another tool, before the intent) is refused as
//! `PlanError::NotOurs` (`DisplayNameTaken`): never changed, never terminated, and deleting the
//! object leaves it alone. `managementPolicy: Observe` only reads, so it reports whatever carries
//! the name.

use super::desired::{Desired, Intent};
use super::pending::{self, Awaited, Pending};
use crate::api::rules::FieldProblem;
use crate::api::{ManagementPolicy, naming};
use crate::controllers::pending_writes;
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
    /// The customer's name, as Microsoft shows it (`customer.displayName`).
    pub customer_name: Option<String>,
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

/// How observe found the current relationship: what the object's claim to it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FoundBy {
    /// By an id the object states: `spec.relationshipId`, or the id its hand-over recorded
    /// (`gdap.io/relationship-id`); or Microsoft's answer to its own create.
    #[default]
    Id,
    /// By the id `status.relationshipId` records (the object's own when it recorded a create
    /// intent; else it was only observed, e.g. under `managementPolicy: Observe`).
    RecordedId,
    /// By its display name only.
    DisplayName,
}

/// The object's create intent (`gdap.io/create-intent`): the display name and when it was
/// recorded, right before the first create was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateIntent {
    /// The display name the create was for.
    pub display_name: String,
    /// When the intent was recorded (the operator's clock).
    pub at: DateTime<Utc>,
    /// The id Microsoft answered the create with (`gdap.io/created-relationship-id`), once
    /// recorded.
    pub created_id: Option<String>,
}

/// How far before the create intent Microsoft's `createdDateTime` of a relationship found by
/// display name may lie (clock skew between the operator and Microsoft) for it still to be the
/// object's own; one created earlier was made by someone else.
pub const CLOCK_SKEW: Span = Span::seconds(1);

/// Microsoft's side of one object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Remote {
    /// The relationship, when one exists (by id or display name).
    pub relationship: Option<RemoteRelationship>,
    /// How it was found.
    pub found_by: FoundBy,
    /// Its `createdDateTime`, as Microsoft reports it.
    pub relationship_created_at: Option<DateTime<Utc>>,
    /// The object's create intent, when it recorded one that can be read.
    pub create_intent: Option<CreateIntent>,
    /// The operator's writes Microsoft accepted and may not show yet (the object's annotation
    /// `gdap.io/pending-writes`; see `pending`).
    pub pending: Pending,
    /// Its access assignments (empty unless active).
    pub assignments: Vec<RemoteAssignment>,
    /// Role changes of its assignments (read when a change is due or pending).
    pub updates: Vec<RemoteUpdate>,
    /// The newest `terminate` request (read while deleting).
    pub termination: Option<RemoteRequest>,
    /// The successor being requested: the first live relationship of a later generation (read
    /// when renewal is on or a successor is recorded).
    pub successor: Option<Linked>,
    /// The generation a new successor would get (the first unused one).
    pub next_generation: u32,
    /// The previous generation's relationship, while it may still need terminating.
    pub predecessor: Option<Linked>,
}

/// A successor or predecessor relationship, with what deciding about it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    /// Its generation (0 for the first relationship, then 1, 2, …).
    pub generation: u32,
    /// The relationship.
    pub relationship: RemoteRelationship,
    /// Its access assignments (while active).
    pub assignments: Vec<RemoteAssignment>,
    /// Role changes of its assignments.
    pub updates: Vec<RemoteUpdate>,
    /// Its newest `terminate` request (when it may need terminating).
    pub termination: Option<RemoteRequest>,
    /// A withdrawal record for it exists on the credentials Secret.
    pub withdrawal_recorded: bool,
}

/// A side could not be read (Microsoft's: credentials or Microsoft failed; the AppConsents
/// relying on the relationship: the Kubernetes API failed); the report says why.
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
    /// The generation of the current relationship (`gdap.io/generation`; 0 before any successor).
    pub generation: u32,
    /// Assignments that failed permanently, by group id (from status).
    pub failed_assignments: BTreeMap<String, FailedAssignment>,
    /// Microsoft's side.
    pub microsoft: Result<Remote, Unreadable>,
    /// The AppConsents relying on the relationship that its deletion waits for (their names,
    /// sorted): they still have to remove their consents, which needs the relationship's access
    /// (see `consents`). Read only while the object is being deleted with `deletionPolicy:
    /// Delete`; empty otherwise.
    pub consents: Result<Vec<String>, Unreadable>,
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
    /// How long the operator waits for Microsoft to show one of its own writes (or to propagate
    /// access) before it reports the wait as a failure (`--propagation-timeout`).
    pub propagation_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll: Duration::from_secs(30),
            resync: Duration::from_secs(600),
            termination_timeout: Duration::from_secs(600),
            failed_retry: Duration::from_secs(3600),
            propagation_timeout: Duration::from_secs(3600),
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
    /// The display name belongs to a relationship this object did not create (made by hand or by
    /// another tool): it is reported, never adopted, changed or terminated.
    NotOurs {
        /// Its id.
        id: String,
        /// Its `createdDateTime`.
        created_at: Option<DateTime<Utc>>,
    },
    /// A write of the operator's is still not shown `propagation_timeout` after it was made; the
    /// operator does not send it again by itself.
    PropagationTimedOut {
        /// What is awaited.
        what: Awaited,
        /// When it was written.
        since: DateTime<Utc>,
    },
}

/// What the controller is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The customer's approval.
    Approval,
    /// The customer's approval of the successor.
    SuccessorApproval,
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
    /// Deletion: AppConsents relying on the relationship (`Observed::consents`, which the status
    /// names) are still removing their consents, which needs the relationship's access; nothing
    /// is sent to Microsoft until they are done. Looked at again at the poll interval.
    Consents,
    /// Microsoft accepted a write of the operator's and its reads do not show it yet (they lag):
    /// nothing is written again; looked at again with a backoff.
    Propagating {
        /// What is awaited (the oldest unshown write).
        what: Awaited,
        /// When it was written.
        since: DateTime<Utc>,
    },
}

/// The one step to take, with the data its request needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Record on the object that a create is about to be sent (the value is the annotation's).
    RecordCreateIntent { annotation: String },
    /// Create the relationship.
    Create { body: NewRelationship },
    /// Create the successor of `generation` (its display name carries the generation).
    CreateSuccessor {
        generation: u32,
        body: NewRelationship,
    },
    /// Switch the object to its active successor: record the generation and id on the object.
    HandOver {
        generation: u32,
        relationship_id: String,
    },
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

/// Decides the next step, on the effective state (the read, with the operator's unshown writes
/// applied; see `pending`).
pub fn plan(intent: &Intent, observed: &Observed, timing: &Timing, now: DateTime<Utc>) -> Plan {
    let effective = pending::effective(observed, &intent.customer);
    let observed = &effective;
    let plan = if observed.deleting {
        plan_deletion(intent, observed, timing, now)
    } else {
        plan_alive(intent, observed, timing, now)
    };
    match &observed.microsoft {
        Ok(remote) => awaiting(plan, &remote.pending, timing, now),
        Err(_) => plan,
    }
}

fn plan_alive(intent: &Intent, observed: &Observed, timing: &Timing, now: DateTime<Utc>) -> Plan {
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
    if let Some(error) = not_ours(intent, observed, remote, rel) {
        return refuse(error, timing);
    }
    if let Some(customer) = rel.customer.as_ref().filter(|c| **c != intent.customer) {
        let found = customer.clone();
        return refuse(PlanError::CustomerMismatch { found }, timing);
    }
    if let Some(plan) = settle_predecessor(intent, desired, remote, timing, now) {
        return plan;
    }
    match rel.status {
        State::Created => plan_draft(intent, desired, rel, timing),
        State::ApprovalPending => locked(intent, desired, remote, timing, now, Waiting::Approval),
        State::Approved | State::Activating => {
            locked(intent, desired, remote, timing, now, Waiting::Activation)
        }
        State::Active => plan_active(intent, desired, remote, observed, timing, now),
        _ => at(Action::Idle, timing.resync),
    }
}

/// The relationship found is not the object's to manage: it was found by display name (or by a
/// recorded id no create intent backs) and created before the object's create intent. `Observe`
/// only reads, and `spec.relationshipId` adopts explicitly.
pub fn not_ours(
    intent: &Intent,
    observed: &Observed,
    remote: &Remote,
    rel: &RemoteRelationship,
) -> Option<PlanError> {
    if intent.management == ManagementPolicy::Observe || intent.adopt_id.is_some() {
        return None;
    }
    if remote.pending.created(&rel.id) {
        return None;
    }
    let ours = match remote.found_by {
        FoundBy::Id => true,
        FoundBy::RecordedId => observed.create_intent,
        FoundBy::DisplayName => created_after_intent(intent, remote, &rel.id),
    };
    (!ours).then(|| PlanError::NotOurs {
        id: rel.id.clone(),
        created_at: remote.relationship_created_at,
    })
}

/// The relationship is the one the object's create made: Microsoft answered the create with its
/// id (recorded), or — the create that a crash kept from being recorded — Microsoft created it
/// after the object recorded its create intent for this display name (allowing [`CLOCK_SKEW`]).
fn created_after_intent(intent: &Intent, remote: &Remote, id: &str) -> bool {
    let Some(recorded) = &remote.create_intent else {
        return false;
    };
    if recorded.created_id.as_deref() == Some(id) {
        return true;
    }
    recorded.display_name == intent.display_name
        && remote
            .relationship_created_at
            .is_some_and(|created| created >= recorded.at - CLOCK_SKEW)
}

/// A plan that is left only waiting while writes are unshown waits for them instead
/// (`Propagating`); writes, refusals, releases and the wait for AppConsents stand.
fn awaiting(plan: Plan, pending: &Pending, timing: &Timing, now: DateTime<Utc>) -> Plan {
    let waits = match plan.action {
        Action::Wait(Waiting::Propagating { .. } | Waiting::Consents) => false,
        Action::Idle | Action::Wait(_) => true,
        _ => false,
    };
    match pending.oldest() {
        Some(w) if waits => propagating(w.write.awaited(), w.at, timing, now),
        _ => plan,
    }
}

/// The wait for `what`, written at `since`: polled from `poll`, each look about twice as far
/// from `since` as the previous one (up to `resync`), and a refusal once `propagation_timeout`
/// has passed.
pub fn propagating(
    what: Awaited,
    since: DateTime<Utc>,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    let (poll, resync) = (timing.poll, timing.resync);
    match pending_writes::next_look(since, now, poll, resync, timing.propagation_timeout) {
        Some(requeue) => wait(Waiting::Propagating { what, since }, requeue),
        None => refuse(PlanError::PropagationTimedOut { what, since }, timing),
    }
}

fn propagation_deadline(since: DateTime<Utc>, timing: &Timing) -> DateTime<Utc> {
    pending_writes::deadline(since, timing.propagation_timeout)
}

/// The relationship of the object's generation may exist in Microsoft without being read yet: a
/// create Microsoft answered (with an id that the effective state would show, or "the display
/// name exists"), or the id status records, within `propagation_timeout` of the create intent.
/// `None` when nothing suggests one.
fn unseen_relationship(observed: &Observed, remote: &Remote) -> Option<(DateTime<Utc>, bool)> {
    if let Some(w) = remote.pending.create(observed.generation) {
        return Some((w.at, true));
    }
    let recorded = observed.recorded_id.as_deref()?;
    if remote.pending.deleted(recorded) {
        return None;
    }
    let intent = remote.create_intent.as_ref()?;
    observed.create_intent.then_some((intent.at, false))
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
    let remote = observed
        .microsoft
        .as_ref()
        .expect("plan_missing after a read");
    match unseen_relationship(observed, remote) {
        // A pending create: wait, and fail (without creating again) after the timeout.
        Some((since, true)) => return propagating(Awaited::Relationship, since, timing, now),
        // Only the recorded id: wait within the timeout; after it, it is gone and a create
        // (which Microsoft refuses while the display name exists) may follow.
        Some((since, false)) if now < propagation_deadline(since, timing) => {
            return propagating(Awaited::Relationship, since, timing, now);
        }
        _ => {}
    }
    if !observed.create_intent {
        let annotation = format!("{} {}", intent.display_name, now.to_rfc3339());
        return now_(Action::RecordCreateIntent { annotation });
    }
    // After a hand-over the object's relationship is the one of its generation, by that name.
    let mut body = new_relationship(intent, desired);
    body.display_name = naming::generation_name(&intent.display_name, observed.generation);
    now_(Action::Create { body })
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

/// After the lock, roles and duration cannot change: a successor carries the change when the
/// renewal policy allows it, else the change is refused.
fn locked(
    intent: &Intent,
    desired: &Desired,
    remote: &Remote,
    timing: &Timing,
    now: DateTime<Utc>,
    w: Waiting,
) -> Plan {
    let rel = remote.relationship.as_ref().expect("locked has one");
    match (immutable_change(desired, rel), desired.renewal) {
        (Some(_), Some(_)) if intent.management == ManagementPolicy::Manage => {
            plan_successor(intent, desired, remote, Need::SpecChange, timing, now)
                .unwrap_or_else(|| wait(w, timing.poll))
        }
        (Some(error), _) => refuse(error, timing),
        (None, _) => wait(w, timing.poll),
    }
}

/// Roles or duration of the relationship differ from the spec (they cannot change after the lock).
pub fn immutable_change(desired: &Desired, rel: &RemoteRelationship) -> Option<PlanError> {
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
        if desired.renewal.is_none() || intent.management == ManagementPolicy::Observe {
            return refuse(error, timing);
        }
        return plan_successor(intent, desired, remote, Need::SpecChange, timing, now)
            .unwrap_or_else(|| wait(Waiting::Assignments, timing.poll));
    }
    let steady = steady_requeue(rel, renewal_due_at(desired, rel), timing, now);
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
    let failed = failed_assignments(observed, &remote.assignments, &remote.updates);
    let current = Assignable::of_current(remote, rel);
    if let Some(action) = next_assignment_step(desired, &current, &failed, timing, now) {
        return now_(action);
    }
    if current.pending() {
        return wait(Waiting::Assignments, timing.poll.min(steady));
    }
    let need = if renewal_due_at(desired, rel).is_some_and(|t| now >= t) {
        Need::Renewal
    } else {
        Need::Nothing
    };
    if let Some(plan) = plan_successor(intent, desired, remote, need, timing, now) {
        return plan;
    }
    at(Action::Idle, steady)
}

/// What a successor is needed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// None is needed (one in progress is abandoned).
    Nothing,
    /// The relationship ends within `renewal.before` and cannot auto-extend.
    Renewal,
    /// `roles` or `duration` changed after the lock.
    SpecChange,
}

/// When a successor is due: `renewal.before` days before the end of a relationship that will not
/// auto-extend, with the renewal policy on.
pub fn renewal_due_at(desired: &Desired, rel: &RemoteRelationship) -> Option<DateTime<Utc>> {
    let renewal = desired.renewal?;
    if rel.auto_extend || rel.status != State::Active {
        return None;
    }
    Some(rel.ends_at? - Span::days(i64::from(renewal.before_days)))
}

/// The successor's next step, or `None` when there is nothing to do about successors.
fn plan_successor(
    intent: &Intent,
    desired: &Desired,
    remote: &Remote,
    need: Need,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Option<Plan> {
    desired.renewal?;
    let Some(successor) = &remote.successor else {
        if need == Need::Nothing {
            return None;
        }
        let generation = remote.next_generation.max(1);
        if let Some(w) = remote.pending.create(generation) {
            // Microsoft answered that the successor's display name exists: wait for it.
            return Some(propagating(Awaited::Relationship, w.at, timing, now));
        }
        let mut body = new_relationship(intent, desired);
        body.display_name = naming::generation_name(&intent.display_name, generation);
        return Some(now_(Action::CreateSuccessor { generation, body }));
    };
    let rel = &successor.relationship;
    let stale = immutable_change(desired, rel).is_some();
    if need == Need::Nothing || (stale && rel.status != State::Created) {
        // Not (or no longer) wanted: withdraw it; a fresh one follows when needed.
        return match settle(successor_view(successor), &intent.customer, timing, now) {
            Settle::Act(action) => Some(now_(action)),
            Settle::Wait(w, requeue) => Some(wait(w, requeue)),
            Settle::Ended | Settle::Withdrawn => None,
        };
    }
    Some(match rel.status {
        State::Created if stale => plan_draft(intent, desired, rel, timing),
        State::Created => now_(Action::Lock { id: rel.id.clone() }),
        State::ApprovalPending => wait(Waiting::SuccessorApproval, timing.poll),
        State::Approved | State::Activating => wait(Waiting::Activation, timing.poll),
        State::Active => hand_over_step(desired, successor, timing, now),
        _ => wait(Waiting::SuccessorApproval, timing.poll),
    })
}

/// An active successor gets the spec's access assignments; once all are active, the switch.
fn hand_over_step(
    desired: &Desired,
    successor: &Linked,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    let target = Assignable {
        relationship_id: &successor.relationship.id,
        assignments: &successor.assignments,
        updates: &successor.updates,
    };
    let failed = failed_assignments_of(&successor.assignments, &successor.updates);
    if let Some(action) = next_assignment_step(desired, &target, &failed, timing, now) {
        return now_(action);
    }
    let all_active = desired.assignments.iter().all(|(group, roles)| {
        successor.assignments.iter().any(|a| {
            a.is_live()
                && &a.group_id == group
                && a.status == AssignmentState::Active
                && &a.role_ids == roles
        })
    });
    if target.pending() || !all_active {
        return wait(Waiting::Assignments, timing.poll);
    }
    now_(Action::HandOver {
        generation: successor.generation,
        relationship_id: successor.relationship.id.clone(),
    })
}

/// The predecessor (after a hand-over) is terminated unless `renewal.keepPredecessor`.
fn settle_predecessor(
    intent: &Intent,
    desired: &Desired,
    remote: &Remote,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Option<Plan> {
    let predecessor = remote.predecessor.as_ref()?;
    let keep = desired.renewal.is_some_and(|r| r.keep_predecessor);
    if keep || intent.management == ManagementPolicy::Observe {
        return None;
    }
    match settle(successor_view(predecessor), &intent.customer, timing, now) {
        Settle::Act(action) => Some(now_(action)),
        _ => None,
    }
}

/// What `settle` needs about one relationship.
#[derive(Debug, Clone, Copy)]
pub struct Settling<'a> {
    /// The relationship.
    pub relationship: &'a RemoteRelationship,
    /// Its newest terminate request.
    pub termination: Option<&'a RemoteRequest>,
    /// A withdrawal record exists for it.
    pub withdrawal_recorded: bool,
}

fn successor_view(linked: &Linked) -> Settling<'_> {
    Settling {
        relationship: &linked.relationship,
        termination: linked.termination.as_ref(),
        withdrawal_recorded: linked.withdrawal_recorded,
    }
}

/// Where ending one relationship stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    /// The next step.
    Act(Action),
    /// Microsoft or the customer is working.
    Wait(Waiting, Duration),
    /// Terminated or expired (or never created).
    Ended,
    /// Awaiting approval, recorded to be terminated if approved.
    Withdrawn,
}

/// The next step to end `r`: delete a draft, record an unapprovable one, terminate an active one.
pub fn settle(r: Settling, customer: &str, timing: &Timing, now: DateTime<Utc>) -> Settle {
    let rel = r.relationship;
    let requested = r
        .termination
        .is_some_and(|t| t.status != Some(RequestStatus::Failed));
    match rel.status {
        State::Created => Settle::Act(Action::DeleteDraft {
            id: rel.id.clone(),
            etag: rel.etag.clone().unwrap_or_default(),
        }),
        State::ApprovalPending if r.withdrawal_recorded => Settle::Withdrawn,
        State::ApprovalPending => Settle::Act(Action::RecordWithdrawal {
            record: Withdrawal {
                relationship_id: rel.id.clone(),
                customer: customer.to_string(),
                display_name: rel.display_name.clone(),
            },
        }),
        State::Approved | State::Activating => Settle::Wait(Waiting::Activation, timing.poll),
        State::Active if !requested => Settle::Act(Action::Terminate { id: rel.id.clone() }),
        State::Active | State::TerminationRequested | State::Terminating => {
            let started = r
                .termination
                .and_then(|t| t.created_at)
                .or(rel.modified_at)
                .unwrap_or(now);
            let deadline =
                started + Span::from_std(timing.termination_timeout).unwrap_or(Span::MAX);
            if now >= deadline {
                Settle::Wait(Waiting::TerminationOverdue, timing.resync)
            } else {
                Settle::Wait(Waiting::Termination, timing.poll)
            }
        }
        State::Terminated | State::Expired => Settle::Ended,
        _ => Settle::Wait(Waiting::Termination, timing.poll),
    }
}

/// A relationship whose access assignments are managed (the current one, or the successor).
pub struct Assignable<'a> {
    /// Its id.
    pub relationship_id: &'a str,
    /// Its assignments.
    pub assignments: &'a [RemoteAssignment],
    /// Role changes of its assignments.
    pub updates: &'a [RemoteUpdate],
}

impl<'a> Assignable<'a> {
    fn of_current(remote: &'a Remote, rel: &'a RemoteRelationship) -> Self {
        Assignable {
            relationship_id: &rel.id,
            assignments: &remote.assignments,
            updates: &remote.updates,
        }
    }

    /// Assignments or role changes still in progress.
    fn pending(&self) -> bool {
        self.assignments
            .iter()
            .any(|a| a.is_live() && a.status != AssignmentState::Active)
            || self.updates.iter().any(RemoteUpdate::is_running)
    }
}

/// Refusals remembered in status, plus role changes Microsoft accepted and then failed.
fn failed_assignments(
    observed: &Observed,
    assignments: &[RemoteAssignment],
    updates: &[RemoteUpdate],
) -> BTreeMap<String, FailedAssignment> {
    let mut failed = observed.failed_assignments.clone();
    failed.extend(failed_assignments_of(assignments, updates));
    failed
}

/// Role changes Microsoft accepted and then failed, by group.
fn failed_assignments_of(
    assignments: &[RemoteAssignment],
    updates: &[RemoteUpdate],
) -> BTreeMap<String, FailedAssignment> {
    let mut failed: BTreeMap<String, FailedAssignment> = BTreeMap::new();
    for update in updates
        .iter()
        .filter(|u| u.status == OperationStatus::Failed)
    {
        let Some(a) = assignments.iter().find(|a| a.id == update.assignment_id) else {
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
    target: &Assignable,
    failed: &BTreeMap<String, FailedAssignment>,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Option<Action> {
    let live = || target.assignments.iter().filter(|a| a.is_live());
    let updating = |id: &str| {
        target
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
                    relationship_id: target.relationship_id.to_string(),
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
                    relationship_id: target.relationship_id.to_string(),
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
            relationship_id: target.relationship_id.to_string(),
            assignment_id: a.id.clone(),
            etag: a.etag.clone().unwrap_or_default(),
            group_id: a.group_id.clone(),
        })
}

/// Look again at the next expiry threshold, renewal time or end, or at the resync interval,
/// whichever is first.
pub fn steady_requeue(
    rel: &RemoteRelationship,
    renew_at: Option<DateTime<Utc>>,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Duration {
    let Some(ends_at) = rel.ends_at else {
        return timing.resync;
    };
    let next = EXPIRY_WARNING_DAYS
        .iter()
        .map(|d| ends_at - Span::days(*d))
        .chain([ends_at])
        .chain(renew_at)
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

/// Deletion: end the successor, the predecessor and the relationship (policy `Delete`), or release
/// (`Orphan`, `Observe`); never orphan because Microsoft or the credentials could not be read.
///
/// **Consents first.** While AppConsents relying on the relationship are still removing their
/// consents (`Observed::consents`), nothing is sent to Microsoft: their partner user needs the
/// relationship's access to remove them, so terminating first would leave the application's
/// permissions granted in the customer tenant. When they cannot be listed, deletion waits too.
fn plan_deletion(
    intent: &Intent,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    if intent.orphans_on_delete() {
        return release(ReleaseReason::Orphaned);
    }
    match &observed.consents {
        Ok(names) if names.is_empty() => {}
        Ok(_) => return wait(Waiting::Consents, timing.poll),
        Err(_) => return wait(Waiting::Unreadable, timing.poll),
    }
    let remote = match &observed.microsoft {
        Ok(remote) => remote,
        Err(_) if nothing_was_ever_created(intent, observed) => {
            return release(ReleaseReason::NothingToDelete);
        }
        Err(_) => return wait(Waiting::Unreadable, timing.poll),
    };
    let keep = intent
        .spec
        .as_ref()
        .is_ok_and(|d| d.renewal.is_some_and(|r| r.keep_predecessor));
    let mut waiting = None;
    let others = remote
        .successor
        .iter()
        .chain(remote.predecessor.iter().filter(|_| !keep));
    for linked in others {
        match settle(successor_view(linked), &intent.customer, timing, now) {
            Settle::Act(action) => return at(action, timing.poll),
            Settle::Wait(w, requeue) => waiting = waiting.or(Some(wait(w, requeue))),
            Settle::Ended | Settle::Withdrawn => {}
        }
    }
    let ours = remote
        .relationship
        .as_ref()
        .filter(|rel| not_ours(intent, observed, remote, rel).is_none());
    let Some(rel) = ours else {
        // Not read (yet): wait for one the object may have created, within the timeout.
        if let Some((since, _)) = unseen_relationship(observed, remote)
            && now < propagation_deadline(since, timing)
        {
            return waiting
                .unwrap_or_else(|| propagating(Awaited::Relationship, since, timing, now));
        }
        return waiting.unwrap_or_else(|| release(ReleaseReason::NothingToDelete));
    };
    let current = Settling {
        relationship: rel,
        termination: remote.termination.as_ref(),
        withdrawal_recorded: observed.withdrawal_recorded,
    };
    match settle(current, &intent.customer, timing, now) {
        Settle::Act(action) => at(action, timing.poll),
        Settle::Wait(w, requeue) => wait(w, requeue),
        Settle::Ended => waiting.unwrap_or_else(|| release(ReleaseReason::Done)),
        Settle::Withdrawn => waiting.unwrap_or_else(|| release(ReleaseReason::CannotWithdraw)),
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
