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

use super::assignments::{
    Assignable, failed_assignments, failed_assignments_of, next_assignment_step,
};
use super::desired::{Desired, Intent};
use super::pending;
use super::settle::{Settle, Settling, settle, successor_view};
use super::writes::{Awaited, Pending};
use crate::api::{ManagementPolicy, naming};
use crate::controllers::pending_writes;
use crate::microsoft::models::gdap::{
    AccessAssignmentStatus as AssignmentState, AccessDetails, CustomerParticipant, NewRelationship,
    RelationshipPatch, RelationshipStatus as State, RequestStatus,
};
use chrono::{DateTime, Duration as Span, Utc};
use std::time::Duration;

// The observed model and the step types are read through this module by the rest of the crate.
pub use super::observed::{
    CLOCK_SKEW, CreateIntent, FailedAssignment, FoundBy, Linked, Observed, Remote,
    RemoteAssignment, RemoteRelationship, RemoteRequest, RemoteUpdate, Unreadable,
};
pub use super::step::{Action, Plan, PlanError, ReleaseReason, Timing, Waiting};

/// Days before the end at which Microsoft (and the operator) warn.
pub const EXPIRY_WARNING_DAYS: [i64; 3] = [30, 7, 1];
/// `autoExtendDuration` when auto-extension is on (Microsoft allows only 180 days).
pub const AUTO_EXTEND_ON: &str = "P180D";
/// How long after the access was put in place (every access assignment active) the first access
/// check comes, at most: Microsoft propagates GDAP access for a while (minutes) after an
/// assignment turns active, so a check at once would mostly meet that.
pub const FIRST_ACCESS_CHECK_AFTER: Span = Span::minutes(15);
/// `autoExtendDuration` when auto-extension is off.
pub const AUTO_EXTEND_OFF: &str = "PT0S";
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
        FoundBy::RecordedId => observed.create_intent || intent.name_from_uid,
        FoundBy::DisplayName => {
            intent.name_from_uid || created_after_intent(intent, remote, &rel.id)
        }
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
        Action::Idle | Action::VerifyAccess { .. } | Action::Wait(_) => true,
        _ => false,
    };
    match pending.oldest() {
        Some(w) if waits => propagating(w.write.awaited(), w.at, timing, now),
        _ => plan,
    }
}

/// The wait for `what`, written at `since` (looks spaced by [`pending_writes::next_look`]), and
/// a refusal once the propagation timeout has passed.
pub fn propagating(
    what: Awaited,
    since: DateTime<Utc>,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    match pending_writes::next_look(since, now, timing) {
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
    if !observed.create_intent && !intent.name_from_uid {
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
        return steady_or_check(intent, desired, remote, observed, timing, now, steady);
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
    steady_or_check(intent, desired, remote, observed, timing, now, steady)
}

/// The steady state: the access check when it is due, else idle until the next look (which
/// comes no later than the check's due time).
fn steady_or_check(
    intent: &Intent,
    desired: &Desired,
    remote: &Remote,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
    steady: Duration,
) -> Plan {
    match access_check_due_at(desired, remote, observed, timing, now) {
        Some(due) if due <= now => {
            let settling = access_settling(observed, timing, now);
            let requeue = match settling {
                // Looked at again soon (backing off) while the access may still propagate.
                Some(since) => pending_writes::next_look(since, now, timing).unwrap_or(steady),
                None => steady,
            };
            at(
                Action::VerifyAccess {
                    customer: intent.customer.clone(),
                    settling: settling.is_some(),
                },
                requeue.min(timing.access_verify),
            )
        }
        Some(due) => {
            let until = (due - now).to_std().unwrap_or(Duration::ZERO);
            at(Action::Idle, steady.min(until.max(Duration::from_secs(1))))
        }
        None => at(Action::Idle, steady),
    }
}

/// Since when the access may still be propagating: it was put in place (every assignment
/// active, or just now when the status does not say so yet) less than `--propagation-timeout`
/// ago, and no check since has found anything (`None` otherwise). Microsoft propagates GDAP
/// access for a while after an assignment turns active.
pub fn access_settling(
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if observed.access_verified_at.is_some() {
        return None;
    }
    let since = observed.access_in_place_since.unwrap_or(now);
    (now < propagation_deadline(since, timing)).then_some(since)
}

/// When the check that the partner user's delegated access to the customer works is due, or
/// `None` when there is nothing to check: the check is off (`--access-verify-interval` 0), the
/// relationship is not active, the spec assigns no security group (the relationship gives
/// nobody access), or not every access assignment of the spec is active with its roles yet.
/// The first check is due [`FIRST_ACCESS_CHECK_AFTER`] (or one interval, when shorter) after the
/// access was put in place (`AccessAssigned=True`; from `now` when the status does not say so
/// yet), as Microsoft propagates GDAP access meanwhile; later ones an interval after the last
/// (kept in status, so a restart does not check every relationship at once).
pub fn access_check_due_at(
    desired: &Desired,
    remote: &Remote,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let rel = remote.relationship.as_ref()?;
    if timing.access_verify.is_zero() || rel.status != State::Active {
        return None;
    }
    if desired.assignments.is_empty() || !assignments_in_place(desired, &remote.assignments) {
        return None;
    }
    let interval = Span::from_std(timing.access_verify).unwrap_or(Span::MAX);
    let (from, wait) = match observed.access_verified_at {
        Some(last) => (last, interval),
        None => (
            observed.access_in_place_since.unwrap_or(now),
            interval.min(FIRST_ACCESS_CHECK_AFTER),
        ),
    };
    Some(
        from.checked_add_signed(wait)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

/// Every access assignment of the spec is live and active with exactly the spec's roles.
pub fn assignments_in_place(desired: &Desired, assignments: &[RemoteAssignment]) -> bool {
    desired.assignments.iter().all(|(group, roles)| {
        assignments.iter().any(|a| {
            a.is_live()
                && &a.group_id == group
                && a.status == AssignmentState::Active
                && &a.role_ids == roles
        })
    })
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
    let all_active = assignments_in_place(desired, &successor.assignments);
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
