//! The controller's steps, run forward on paper: `gdap-operator plan` shows every change the
//! operator would make, not only the first.
//!
//! The controller takes one step per reconcile and then observes again. This module calls the
//! controller's own pure `plan` in a loop and, between calls, applies to the observation the
//! effect each step is certain to have on Microsoft's side (a create leaves a relationship in
//! `created`, a lock moves it to `approvalPending`, a new access assignment is `pending`, a
//! deleted one `deleting`, …). It never guesses what others do — the customer approving,
//! Microsoft finishing an activation or an operation: the run stops at the first wait, idle or
//! refusal, and that end is reported as what follows. Pure: no I/O, no clock.

use crate::controllers::gdap_relationship::desired::Intent;
use crate::controllers::gdap_relationship::plan::{
    Action, Linked, Observed, PlanError, Remote, RemoteAssignment, RemoteRelationship,
    RemoteRequest, RemoteUpdate, Timing, Waiting, plan,
};
use crate::microsoft::models::gdap::{
    AccessAssignmentStatus as AssignmentState, NewRelationship, OperationStatus,
    RelationshipStatus as State, RequestStatus,
};
use chrono::{DateTime, Utc};

/// At most this many steps are simulated (a spec has at most 100 groups).
pub const MAX_STEPS: usize = 256;

/// The id the simulation gives a relationship that does not exist yet.
pub const NEW_ID: &str = "(known after create)";

/// How a simulated run ends.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The controller would wait for the customer or Microsoft.
    Wait(Waiting),
    /// Nothing more to do.
    Idle,
    /// The controller refuses to write.
    Refuse(PlanError),
    /// The object would be released (deletion finished or orphaned).
    Release,
    /// After a hand-over the successor becomes current: the next plan starts from there.
    HandedOver,
    /// The step limit was reached (a loop in the simulation; not expected).
    StepLimit,
}

/// The steps and how the run ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// Every writing action, in order.
    pub steps: Vec<Action>,
    /// What follows them.
    pub end: End,
}

/// Runs the controller's plan forward from `observed` (which must have read Microsoft).
pub fn simulate(
    intent: &Intent,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Simulation {
    let mut observed = observed.clone();
    let mut steps = Vec::new();
    while steps.len() < MAX_STEPS {
        let action = plan(intent, &observed, timing, now).action;
        let end = match &action {
            Action::Wait(w) => Some(End::Wait(*w)),
            // The access check only reads: the steady state.
            Action::Idle | Action::VerifyAccess { .. } => Some(End::Idle),
            Action::Refuse(e) => Some(End::Refuse(e.clone())),
            Action::Release(_) => Some(End::Release),
            _ => None,
        };
        if let Some(end) = end {
            return Simulation { steps, end };
        }
        let handed_over = matches!(action, Action::HandOver { .. });
        apply(&action, &mut observed, intent, now);
        steps.push(action);
        if handed_over {
            return Simulation {
                steps,
                end: End::HandedOver,
            };
        }
    }
    Simulation {
        steps,
        end: End::StepLimit,
    }
}

/// The certain effect of `action` on the observation.
fn apply(action: &Action, observed: &mut Observed, intent: &Intent, now: DateTime<Utc>) {
    if let Action::RecordCreateIntent { .. } = action {
        observed.create_intent = true;
        return;
    }
    if let Action::RecordWithdrawal { record } = action
        && observed
            .relationship()
            .is_some_and(|r| r.id == record.relationship_id)
    {
        observed.withdrawal_recorded = true;
    }
    let Ok(remote) = observed.microsoft.as_mut() else {
        return;
    };
    match action {
        // `act` locks the relationship it created in the same step.
        Action::Create { body } => {
            let mut created = drafted(body, intent, now);
            created.status = State::ApprovalPending;
            remote.relationship = Some(created);
        }
        Action::CreateSuccessor { generation, body } => {
            remote.successor = Some(Linked {
                generation: *generation,
                relationship: drafted(body, intent, now),
                assignments: Vec::new(),
                updates: Vec::new(),
                termination: None,
                withdrawal_recorded: false,
            });
            remote.next_generation = generation + 1;
        }
        Action::UpdateDraft { id, patch, .. } => {
            if let Some(rel) = relationship_mut(remote, id) {
                if let Some(details) = &patch.access_details {
                    rel.role_ids = lower(details.role_ids());
                }
                if let Some(d) = &patch.duration {
                    rel.duration_days = d.parse::<crate::api::IsoDays>().ok().map(|d| d.days());
                }
                if let Some(a) = &patch.auto_extend_duration {
                    rel.auto_extend = a != "PT0S" && a != "P0D";
                }
            }
        }
        Action::Lock { id } => set_status(remote, id, State::ApprovalPending),
        Action::SetAutoExtend { id, on, .. } => {
            if let Some(rel) = relationship_mut(remote, id) {
                rel.auto_extend = *on;
            }
        }
        Action::CreateAssignment {
            relationship_id,
            group_id,
            body,
        } => {
            if let Some(list) = assignments_mut(remote, relationship_id) {
                list.push(RemoteAssignment {
                    id: format!("(new assignment of {group_id})"),
                    group_id: group_id.clone(),
                    role_ids: lower(body.access_details.role_ids()),
                    status: AssignmentState::Pending,
                    etag: None,
                });
            }
        }
        Action::UpdateAssignment {
            relationship_id,
            assignment_id,
            access_details,
            ..
        } => {
            if let Some(updates) = updates_mut(remote, relationship_id) {
                updates.push(RemoteUpdate {
                    operation_id: format!("(new operation for {assignment_id})"),
                    assignment_id: assignment_id.clone(),
                    role_ids: lower(access_details.role_ids()),
                    status: OperationStatus::Running,
                    modified_at: Some(now),
                });
            }
        }
        Action::DeleteAssignment {
            relationship_id,
            assignment_id,
            ..
        } => {
            if let Some(list) = assignments_mut(remote, relationship_id) {
                for a in list.iter_mut().filter(|a| &a.id == assignment_id) {
                    a.status = AssignmentState::Deleting;
                }
            }
        }
        Action::DeleteDraft { id, .. } => forget(remote, id),
        Action::Terminate { id } => {
            set_status(remote, id, State::TerminationRequested);
            let request = RemoteRequest {
                status: Some(RequestStatus::Created),
                created_at: Some(now),
            };
            if remote.relationship.as_ref().is_some_and(|r| &r.id == id) {
                remote.termination = Some(request);
            } else if let Some(l) = linked_mut(remote, id) {
                l.termination = Some(request);
            }
        }
        Action::RecordWithdrawal { record } => {
            if let Some(l) = linked_mut(remote, &record.relationship_id) {
                l.withdrawal_recorded = true;
            }
        }
        _ => {}
    }
}

fn lower(ids: Vec<&str>) -> std::collections::BTreeSet<String> {
    ids.into_iter().map(str::to_ascii_lowercase).collect()
}

/// A relationship as a create leaves it: `created`, with the body's content.
fn drafted(body: &NewRelationship, intent: &Intent, now: DateTime<Utc>) -> RemoteRelationship {
    RemoteRelationship {
        id: format!("{NEW_ID} {}", body.display_name),
        display_name: body.display_name.clone(),
        customer: Some(intent.customer.clone()),
        customer_name: None,
        status: State::Created,
        role_ids: lower(body.access_details.role_ids()),
        duration_days: body
            .duration
            .parse::<crate::api::IsoDays>()
            .ok()
            .map(|d| d.days()),
        auto_extend: body
            .auto_extend_duration
            .as_deref()
            .is_some_and(|a| a != "PT0S" && a != "P0D"),
        activated_at: None,
        ends_at: None,
        modified_at: Some(now),
        etag: None,
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

fn assignments_mut<'a>(remote: &'a mut Remote, id: &str) -> Option<&'a mut Vec<RemoteAssignment>> {
    if remote.relationship.as_ref().is_some_and(|r| r.id == id) {
        return Some(&mut remote.assignments);
    }
    linked_mut(remote, id).map(|l| &mut l.assignments)
}

fn updates_mut<'a>(remote: &'a mut Remote, id: &str) -> Option<&'a mut Vec<RemoteUpdate>> {
    if remote.relationship.as_ref().is_some_and(|r| r.id == id) {
        return Some(&mut remote.updates);
    }
    linked_mut(remote, id).map(|l| &mut l.updates)
}

fn set_status(remote: &mut Remote, id: &str, status: State) {
    if let Some(rel) = relationship_mut(remote, id) {
        rel.status = status;
    }
}

fn forget(remote: &mut Remote, id: &str) {
    if remote.relationship.as_ref().is_some_and(|r| r.id == id) {
        remote.relationship = None;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DeletionPolicy, ManagementPolicy};
    use crate::controllers::gdap_relationship::desired::Desired;
    use chrono::TimeZone;
    use std::collections::{BTreeMap, BTreeSet};

    const READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
    const HELPDESK: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
    const CUSTOMER: &str = "11111111-2222-3333-4444-555555555555";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn intent(groups: &[(&str, &[&str])]) -> Intent {
        Intent {
            display_name: "contoso".into(),
            name_from_uid: false,
            customer: CUSTOMER.into(),
            adopt_id: None,
            deletion: DeletionPolicy::Delete,
            management: ManagementPolicy::Manage,
            spec: Ok(Desired {
                role_ids: set(&[READERS, HELPDESK]),
                duration_days: 730,
                auto_extend: false,
                assignments: groups
                    .iter()
                    .map(|(g, r)| (g.to_string(), set(r)))
                    .collect::<BTreeMap<_, _>>(),
                renewal: None,
            }),
        }
    }

    fn observed(remote: Remote) -> Observed {
        Observed {
            deleting: false,
            create_intent: false,
            recorded_id: None,
            withdrawal_recorded: false,
            generation: 0,
            failed_assignments: BTreeMap::new(),
            microsoft: Ok(remote),
            consents: Ok(Vec::new()),
            access_verified_at: None,
            access_in_place_since: None,
        }
    }

    fn active() -> RemoteRelationship {
        RemoteRelationship {
            id: "rel-1".into(),
            display_name: "contoso".into(),
            customer: Some(CUSTOMER.into()),
            customer_name: None,
            status: State::Active,
            role_ids: set(&[READERS, HELPDESK]),
            duration_days: Some(730),
            auto_extend: false,
            activated_at: Some(now() - chrono::Duration::days(3)),
            ends_at: Some(now() + chrono::Duration::days(700)),
            modified_at: Some(now()),
            etag: Some("W/\"1\"".into()),
        }
    }

    fn names(steps: &[Action]) -> Vec<String> {
        steps
            .iter()
            .map(|a| match a {
                Action::CreateAssignment { group_id, .. } => format!("assign {group_id}"),
                Action::DeleteAssignment { group_id, .. } => format!("unassign {group_id}"),
                Action::UpdateAssignment { group_id, .. } => format!("update {group_id}"),
                other => format!("{other:?}")
                    .split([' ', '{', '('])
                    .next()
                    .unwrap()
                    .to_string(),
            })
            .collect()
    }

    #[test]
    fn a_missing_relationship_is_created_then_locked_then_waits_for_approval() {
        let run = simulate(
            &intent(&[("g1", &[READERS])]),
            &observed(Remote::default()),
            &Timing::default(),
            now(),
        );
        assert_eq!(names(&run.steps), ["RecordCreateIntent", "Create"]);
        assert_eq!(run.end, End::Wait(Waiting::Approval));
    }

    #[test]
    fn every_assignment_change_is_planned_before_the_wait() {
        let remote = Remote {
            relationship: Some(active()),
            assignments: vec![
                RemoteAssignment {
                    id: "a2".into(),
                    group_id: "g2".into(),
                    role_ids: set(&[READERS]),
                    status: AssignmentState::Active,
                    etag: None,
                },
                RemoteAssignment {
                    id: "a3".into(),
                    group_id: "g3".into(),
                    role_ids: set(&[READERS]),
                    status: AssignmentState::Active,
                    etag: None,
                },
            ],
            ..Default::default()
        };
        let wanted = intent(&[("g1", &[READERS]), ("g2", &[HELPDESK]), ("g4", &[HELPDESK])]);
        let run = simulate(
            &wanted,
            &observed(remote.clone()),
            &Timing::default(),
            now(),
        );
        assert_eq!(
            names(&run.steps),
            ["assign g1", "update g2", "assign g4", "unassign g3"]
        );
        assert_eq!(run.end, End::Wait(Waiting::Assignments));

        let same = intent(&[("g2", &[READERS]), ("g3", &[READERS])]);
        let run = simulate(&same, &observed(remote), &Timing::default(), now());
        assert!(run.steps.is_empty());
        assert_eq!(run.end, End::Idle);
    }

    #[test]
    fn an_unreadable_microsoft_side_plans_nothing() {
        let mut o = observed(Remote::default());
        o.microsoft =
            Err(crate::controllers::gdap_relationship::plan::Unreadable { transient: true });
        let run = simulate(&intent(&[]), &o, &Timing::default(), now());
        assert!(run.steps.is_empty());
        assert_eq!(run.end, End::Wait(Waiting::Unreadable));
    }
}
