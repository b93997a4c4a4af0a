//! The access assignments of a relationship (the current one, or the successor before the
//! hand-over): the next create, role change or removal that brings them to the spec, and the
//! failures that hold a group back until `failed_retry` has passed (pure).

use super::desired::Desired;
use super::observed::{
    FailedAssignment, Observed, Remote, RemoteAssignment, RemoteRelationship, RemoteUpdate,
};
use super::step::{Action, Timing};
use crate::microsoft::models::gdap::{
    AccessAssignmentStatus as AssignmentState, AccessContainer, AccessDetails, NewAccessAssignment,
    OperationStatus,
};
use chrono::{DateTime, Duration as Span, Utc};
use std::collections::{BTreeMap, BTreeSet};

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
    pub(super) fn of_current(remote: &'a Remote, rel: &'a RemoteRelationship) -> Self {
        Assignable {
            relationship_id: &rel.id,
            assignments: &remote.assignments,
            updates: &remote.updates,
        }
    }

    /// Assignments or role changes still in progress.
    pub(super) fn pending(&self) -> bool {
        self.assignments
            .iter()
            .any(|a| a.is_live() && a.status != AssignmentState::Active)
            || self.updates.iter().any(RemoteUpdate::is_running)
    }
}

/// Refusals remembered in status, plus role changes Microsoft accepted and then failed.
pub(super) fn failed_assignments(
    observed: &Observed,
    assignments: &[RemoteAssignment],
    updates: &[RemoteUpdate],
) -> BTreeMap<String, FailedAssignment> {
    let mut failed = observed.failed_assignments.clone();
    failed.extend(failed_assignments_of(assignments, updates));
    failed
}

/// Role changes Microsoft accepted and then failed, by group.
pub(super) fn failed_assignments_of(
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

pub(super) fn next_assignment_step(
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
