//! The operator's own writes that Microsoft does not show yet (pure).
//!
//! Microsoft is eventually consistent: after a write, its reads (a GET by id, the lists) keep
//! showing the previous state for a while — a relationship just created is not found, one just
//! locked still reads `created`, an access assignment just created is not listed, one just
//! deleted still is. Microsoft's answer to the write itself is immediate and right, and writes
//! act on the true state. A read that lacks a write the operator made is therefore lag, never a
//! reason to write again, and never a reason to delete and redo.
//!
//! So every write Microsoft accepted is remembered, with its time, in the object's
//! `status.pendingWrites` (a JSON list of [`Written`]; earlier versions kept it in the annotation
//! [`PENDING_WRITES_ANNOTATION`]), until a read shows it. The plan
//! does not decide on the raw read but on the **effective** state ([`effective`]): what was read,
//! with each remembered write that the read does not show yet applied to it — the relationship
//! the create answered, `approvalPending` after the lock, the new assignment `pending`, the deleted
//! one `deleting`, the role change running, the termination requested. On that state the plan's
//! ordinary rules never repeat a write, never repair a lagging read, and go on with the next step
//! (the lock right after the create: writes act on the true state). When nothing is left to do
//! but wait while writes are unshown, the wait is `Propagating` (polled with a backoff from
//! `--poll-interval`), and a write still unshown after `--propagation-timeout` is a failure that
//! names it — the operator still does not send it again.
//!
//! A write is forgotten as soon as a read shows it ([`pruned`]), or when what it wrote no longer
//! concerns the object (the relationship is no longer read, an older generation). The record
//! is written with the status, right after the write, like the relationship id.
//! A crash between the write and that record repeats the write once, and Microsoft refuses the
//! duplicate on its true state: a relationship's display name is unique (answered "already
//! exists"), a group has one live assignment per relationship (`409 conflict`). Both answers are
//! recorded like a success — "it exists: read again later" — with no id ([`Write::Create`] and
//! [`Write::Assign`] with `id: None`). Removing the record lets the operator write again at
//! once (after a timeout, say).

use super::act::Applied;
use super::observed::{
    FoundBy, Linked, Observed, Remote, RemoteAssignment, RemoteRelationship, RemoteRequest,
    RemoteUpdate,
};
use super::step::Action;
use crate::microsoft::models::gdap::{
    AccessAssignmentStatus as AssignmentState, OperationStatus, RelationshipStatus as State,
    RequestStatus,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

pub use crate::controllers::pending_writes::PENDING_WRITES_ANNOTATION;

pub use super::writes::{Awaited, Pending, Write, Written};

/// The write `action` made, as Microsoft answered it (`None`: nothing to remember).
/// `generation` is the object's current generation.
pub fn written(action: &Action, applied: &Applied, generation: u32) -> Option<Write> {
    let lower = |ids: Vec<&str>| -> BTreeSet<String> {
        ids.into_iter().map(str::to_ascii_lowercase).collect()
    };
    let days = |d: &str| d.parse::<crate::api::IsoDays>().ok().map(|d| d.days());
    let auto = |a: &str| a != "PT0S" && a != "P0D";
    let created = |generation: u32, rel: &RemoteRelationship| Write::Create {
        generation,
        display_name: rel.display_name.clone(),
        id: Some(rel.id.clone()),
        role_ids: rel.role_ids.clone(),
        duration_days: rel.duration_days,
        auto_extend: rel.auto_extend,
        etag: rel.etag.clone(),
    };
    let taken =
        |generation: u32, body: &crate::microsoft::models::gdap::NewRelationship| Write::Create {
            generation,
            display_name: body.display_name.clone(),
            id: None,
            role_ids: lower(body.access_details.role_ids()),
            duration_days: days(&body.duration),
            auto_extend: body.auto_extend_duration.as_deref().is_some_and(auto),
            etag: None,
        };
    Some(match (action, applied) {
        (Action::Create { .. }, Applied::Created(rel)) => created(generation, rel),
        (
            Action::Create { body },
            Applied::NameTaken { .. } | Applied::CreatedUnanswered { .. },
        ) => taken(generation, body),
        (Action::CreateSuccessor { generation, .. }, Applied::SuccessorCreated(rel)) => {
            created(*generation, rel)
        }
        (
            Action::CreateSuccessor { generation, body },
            Applied::NameTaken { .. } | Applied::CreatedUnanswered { .. },
        ) => taken(*generation, body),
        (Action::Lock { id }, _) => Write::Lock { id: id.clone() },
        (Action::UpdateDraft { id, patch, .. }, _) => Write::Patch {
            id: id.clone(),
            role_ids: patch.access_details.as_ref().map(|d| lower(d.role_ids())),
            duration_days: patch.duration.as_deref().and_then(days),
            auto_extend: patch.auto_extend_duration.as_deref().map(auto),
        },
        (Action::SetAutoExtend { id, on, .. }, _) => Write::Patch {
            id: id.clone(),
            role_ids: None,
            duration_days: None,
            auto_extend: Some(*on),
        },
        (
            Action::CreateAssignment {
                relationship_id,
                group_id,
                body,
            },
            Applied::Assigned { id, .. },
        ) => Write::Assign {
            relationship_id: relationship_id.clone(),
            group_id: group_id.clone(),
            id: id.clone(),
            role_ids: lower(body.access_details.role_ids()),
        },
        (
            Action::UpdateAssignment {
                relationship_id,
                assignment_id,
                access_details,
                ..
            },
            answer,
        ) => Write::Reassign {
            relationship_id: relationship_id.clone(),
            assignment_id: assignment_id.clone(),
            role_ids: lower(access_details.role_ids()),
            operation_id: match answer {
                Applied::UpdateAccepted { operation_id, .. } => operation_id.clone(),
                _ => None,
            },
        },
        (
            Action::DeleteAssignment {
                relationship_id,
                assignment_id,
                ..
            },
            _,
        ) => Write::Unassign {
            relationship_id: relationship_id.clone(),
            assignment_id: assignment_id.clone(),
        },
        (Action::DeleteDraft { id, .. }, _) => Write::Delete { id: id.clone() },
        (Action::Terminate { id }, _) => Write::Terminate { id: id.clone() },
        _ => return None,
    })
}

/// The pending writes after a reconcile: those the read does not show yet, plus the one this
/// reconcile made (`applied`: Microsoft's answer, when the action succeeded). `None` when
/// Microsoft could not be read (the record stays as it is).
pub fn next(
    observed: &Observed,
    action: &Action,
    applied: Option<&Applied>,
    now: DateTime<Utc>,
) -> Option<Pending> {
    observed.microsoft.as_ref().ok()?;
    let made = applied
        .map(|a| all_written(action, a, observed.generation))
        .unwrap_or_default();
    Some(made.into_iter().fold(pruned(observed), |pending, write| {
        pending.recorded(write, now)
    }))
}

/// Every write `action` made, in order: [`written`]'s, and the lock that follows the object's
/// own create in the same pass when Microsoft accepted it (`act` answers the created
/// relationship as `approvalPending` then).
pub fn all_written(action: &Action, applied: &Applied, generation: u32) -> Vec<Write> {
    let locked = match (action, applied) {
        (Action::Create { .. }, Applied::Created(rel)) if rel.status == State::ApprovalPending => {
            Some(Write::Lock { id: rel.id.clone() })
        }
        _ => None,
    };
    written(action, applied, generation)
        .into_iter()
        .chain(locked)
        .collect()
}

/// One relationship as read, with what hangs off it.
struct View<'a> {
    rel: &'a RemoteRelationship,
    assignments: &'a [RemoteAssignment],
    updates: &'a [RemoteUpdate],
    termination: Option<&'a RemoteRequest>,
}

fn views(remote: &Remote) -> Vec<View<'_>> {
    let current = remote.relationship.iter().map(|rel| View {
        rel,
        assignments: &remote.assignments,
        updates: &remote.updates,
        termination: remote.termination.as_ref(),
    });
    let linked = remote
        .successor
        .iter()
        .chain(remote.predecessor.iter())
        .map(|l| View {
            rel: &l.relationship,
            assignments: &l.assignments,
            updates: &l.updates,
            termination: l.termination.as_ref(),
        });
    current.chain(linked).collect()
}

fn view<'a>(remote: &'a Remote, id: &str) -> Option<View<'a>> {
    views(remote).into_iter().find(|v| v.rel.id == id)
}

/// Whether the read `remote` shows `write` (or no longer concerns it); `generation` is the
/// object's current one.
fn shown(write: &Write, remote: &Remote, generation: u32) -> bool {
    let live = |v: &View, id: &str| v.assignments.iter().any(|a| a.id == id && a.is_live());
    match write {
        Write::Create {
            generation: g,
            display_name,
            id,
            ..
        } => {
            // The successor search read a relationship of that generation (perhaps one that has
            // ended since, which it skips).
            (*g > generation && remote.next_generation > *g)
                || views(remote).iter().any(|v| {
                    id.as_deref() == Some(v.rel.id.as_str())
                        || v.rel.display_name.eq_ignore_ascii_case(display_name)
                })
        }
        Write::Lock { id } => view(remote, id).is_some_and(|v| v.rel.status != State::Created),
        Write::Patch {
            id,
            role_ids,
            duration_days,
            auto_extend,
        } => view(remote, id).is_some_and(|v| {
            role_ids.as_ref().is_none_or(|r| *r == v.rel.role_ids)
                && duration_days.is_none_or(|d| v.rel.duration_days == Some(d))
                && auto_extend.is_none_or(|a| v.rel.auto_extend == a)
        }),
        Write::Assign {
            relationship_id,
            group_id,
            id,
            ..
        } => view(remote, relationship_id).is_some_and(|v| {
            v.rel.status != State::Active
                || v.assignments.iter().any(|a| {
                    id.as_deref() == Some(a.id.as_str()) || (a.is_live() && &a.group_id == group_id)
                })
        }),
        Write::Reassign {
            relationship_id,
            assignment_id,
            role_ids,
            ..
        } => view(remote, relationship_id).is_some_and(|v| {
            // The operation does not lag and may have succeeded while the assignment still reads
            // the old roles: only the roles (or a failed operation, which the plan reports) tell.
            !live(&v, assignment_id)
                || v.assignments
                    .iter()
                    .any(|a| &a.id == assignment_id && &a.role_ids == role_ids)
                || v.updates.iter().any(|u| {
                    &u.assignment_id == assignment_id
                        && &u.role_ids == role_ids
                        && u.status == OperationStatus::Failed
                })
        }),
        Write::Unassign {
            relationship_id,
            assignment_id,
        } => view(remote, relationship_id).is_some_and(|v| !live(&v, assignment_id)),
        Write::Delete { id } => view(remote, id).is_none(),
        Write::Terminate { id } => view(remote, id).is_some_and(|v| {
            v.rel.status != State::Active
                || v.termination
                    .is_some_and(|t| t.status != Some(RequestStatus::Failed))
        }),
    }
}

/// A draft created and deleted before reads showed either: that it is not read proves nothing,
/// so the deletion is kept (and the create dropped) for as long as the object lives.
fn deletes_a_pending_create(write: &Write, pending: &Pending) -> bool {
    matches!(write, Write::Delete { id } if pending.created(id))
}

/// Whether `write` no longer concerns the object: a create of an older generation, or a write
/// about a relationship that is neither read nor created by a pending write.
fn stale(write: &Write, remote: &Remote, pending: &Pending, generation: u32) -> bool {
    match write {
        Write::Create {
            generation: g, id, ..
        } => *g < generation || id.as_deref().is_some_and(|id| pending.deleted(id)),
        Write::Delete { .. } => false,
        other => other
            .relationship_id()
            .is_some_and(|id| view(remote, id).is_none() && !pending.created(id)),
    }
}

/// The pending writes the read `observed` does not show yet (and that still concern the object).
pub fn pruned(observed: &Observed) -> Pending {
    let Ok(remote) = &observed.microsoft else {
        return remote_pending(observed).clone();
    };
    let pending = &remote.pending;
    let kept = pending
        .0
        .iter()
        .filter(|w| {
            !shown(&w.write, remote, observed.generation)
                || deletes_a_pending_create(&w.write, pending)
        })
        .filter(|w| !stale(&w.write, remote, pending, observed.generation))
        .cloned()
        .collect();
    Pending::new(kept)
}

fn remote_pending(observed: &Observed) -> &Pending {
    static NONE: Pending = Pending::new(Vec::new());
    observed.microsoft.as_ref().map_or(&NONE, |r| &r.pending)
}

/// The effective state: what was read, with every pending write it does not show applied, and
/// `pending` reduced to those writes. Unreadable observations are returned as they are.
pub fn effective(observed: &Observed, customer: &str) -> Observed {
    let mut out = observed.clone();
    let unshown = pruned(observed);
    let Ok(remote) = out.microsoft.as_mut() else {
        return out;
    };
    for w in &unshown.0 {
        apply(&w.write, w.at, remote, observed.generation, customer);
    }
    remote.pending = unshown;
    out
}

/// Applies one unshown write to `remote`.
fn apply(write: &Write, at: DateTime<Utc>, remote: &mut Remote, generation: u32, customer: &str) {
    match write {
        Write::Create {
            generation: g,
            display_name,
            id: Some(id),
            role_ids,
            duration_days,
            auto_extend,
            etag,
        } => {
            let rel = RemoteRelationship {
                id: id.clone(),
                display_name: display_name.clone(),
                customer: Some(customer.to_string()),
                customer_name: None,
                status: State::Created,
                role_ids: role_ids.clone(),
                duration_days: *duration_days,
                auto_extend: *auto_extend,
                activated_at: None,
                ends_at: None,
                modified_at: Some(at),
                etag: etag.clone(),
            };
            if *g == generation && remote.relationship.is_none() {
                remote.relationship = Some(rel);
                remote.found_by = FoundBy::Id;
            } else if *g > generation {
                remote.next_generation = remote.next_generation.max(g + 1);
                if remote.successor.is_none() {
                    remote.successor = Some(Linked {
                        generation: *g,
                        relationship: rel,
                        assignments: Vec::new(),
                        updates: Vec::new(),
                        termination: None,
                        withdrawal_recorded: false,
                    });
                }
            }
        }
        // "The display name exists": nothing to show; the plan waits for it.
        Write::Create { .. } => {}
        Write::Lock { id } => {
            if let Some(rel) = relationship_mut(remote, id).filter(|r| r.status == State::Created) {
                rel.status = State::ApprovalPending;
                rel.modified_at = Some(at);
            }
        }
        Write::Patch {
            id,
            role_ids,
            duration_days,
            auto_extend,
        } => {
            if let Some(rel) = relationship_mut(remote, id) {
                if let Some(r) = role_ids {
                    rel.role_ids = r.clone();
                }
                if let Some(d) = duration_days {
                    rel.duration_days = Some(*d);
                }
                if let Some(a) = auto_extend {
                    rel.auto_extend = *a;
                }
            }
        }
        Write::Assign {
            relationship_id,
            group_id,
            id,
            role_ids,
        } => {
            if let Some((list, _)) = assignments_mut(remote, relationship_id)
                && !list.iter().any(|a| a.is_live() && &a.group_id == group_id)
            {
                list.push(RemoteAssignment {
                    id: id.clone().unwrap_or_default(),
                    group_id: group_id.clone(),
                    role_ids: role_ids.clone(),
                    status: AssignmentState::Pending,
                    etag: None,
                });
            }
        }
        Write::Reassign {
            relationship_id,
            assignment_id,
            role_ids,
            operation_id,
        } => {
            if let Some((_, updates)) = assignments_mut(remote, relationship_id)
                && !updates
                    .iter()
                    .any(|u| &u.assignment_id == assignment_id && u.is_running())
            {
                updates.push(RemoteUpdate {
                    operation_id: operation_id.clone().unwrap_or_default(),
                    assignment_id: assignment_id.clone(),
                    role_ids: role_ids.clone(),
                    status: OperationStatus::Running,
                    modified_at: Some(at),
                });
            }
        }
        Write::Unassign {
            relationship_id,
            assignment_id,
        } => {
            if let Some((list, _)) = assignments_mut(remote, relationship_id) {
                for a in list.iter_mut().filter(|a| &a.id == assignment_id) {
                    a.status = AssignmentState::Deleting;
                }
            }
        }
        Write::Delete { id } => forget(remote, id),
        Write::Terminate { id } => {
            let request = Some(RemoteRequest {
                status: Some(RequestStatus::Created),
                created_at: Some(at),
            });
            if remote.relationship.as_ref().is_some_and(|r| &r.id == id) {
                remote.termination = request;
            } else if let Some(l) = linked_mut(remote, id) {
                l.termination = request;
            }
        }
    }
}

fn linked_mut<'a>(remote: &'a mut Remote, id: &str) -> Option<&'a mut Linked> {
    remote
        .successor
        .iter_mut()
        .chain(remote.predecessor.iter_mut())
        .find(|l| l.relationship.id == id)
}

fn relationship_mut<'a>(remote: &'a mut Remote, id: &str) -> Option<&'a mut RemoteRelationship> {
    if remote.relationship.as_ref().is_some_and(|r| r.id == id) {
        return remote.relationship.as_mut();
    }
    linked_mut(remote, id).map(|l| &mut l.relationship)
}

type Lists<'a> = (&'a mut Vec<RemoteAssignment>, &'a mut Vec<RemoteUpdate>);

fn assignments_mut<'a>(remote: &'a mut Remote, id: &str) -> Option<Lists<'a>> {
    if remote.relationship.as_ref().is_some_and(|r| r.id == id) {
        return Some((&mut remote.assignments, &mut remote.updates));
    }
    linked_mut(remote, id).map(|l| (&mut l.assignments, &mut l.updates))
}

fn forget(remote: &mut Remote, id: &str) {
    if remote.relationship.as_ref().is_some_and(|r| r.id == id) {
        remote.relationship = None;
        remote.assignments.clear();
        remote.updates.clear();
        remote.termination = None;
    }
    if remote
        .successor
        .as_ref()
        .is_some_and(|l| l.relationship.id == id)
    {
        remote.successor = None;
    }
    if remote
        .predecessor
        .as_ref()
        .is_some_and(|l| l.relationship.id == id)
    {
        remote.predecessor = None;
    }
}
