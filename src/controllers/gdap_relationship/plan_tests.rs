//! Table tests of `plan`: each row is a situation and the step the controller must take.

use super::desired::{Desired, Intent};
use super::pending::{Pending, Write, Written};
use super::plan::*;
use crate::api::rules::FieldProblem;
use crate::api::{DeletionPolicy, ManagementPolicy};
use crate::microsoft::models::gdap::{
    AccessAssignmentStatus as A, AccessDetails, OperationStatus, RelationshipStatus as S,
    RequestStatus,
};
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
const HELPDESK: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
const GROUP_A: &str = "6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e01";
const GROUP_B: &str = "6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e02";
const CUSTOMER: &str = "11111111-2222-3333-4444-555555555555";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn roles(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn desired() -> Desired {
    Desired {
        role_ids: roles(&[READERS, HELPDESK]),
        duration_days: 730,
        auto_extend: true,
        assignments: BTreeMap::from([(GROUP_A.to_string(), roles(&[READERS]))]),
        renewal: None,
    }
}

fn intent() -> Intent {
    Intent {
        display_name: "contoso-1234abcd".into(),
        name_from_uid: false,
        customer: CUSTOMER.into(),
        adopt_id: None,
        deletion: DeletionPolicy::Delete,
        management: ManagementPolicy::Manage,
        spec: Ok(desired()),
    }
}

fn with(change: impl FnOnce(&mut Intent)) -> Intent {
    let mut i = intent();
    change(&mut i);
    i
}

fn spec(change: impl FnOnce(&mut Desired)) -> Intent {
    with(|i| change(i.spec.as_mut().unwrap()))
}

fn rel(status: S) -> RemoteRelationship {
    let active = status == S::Active;
    RemoteRelationship {
        id: "rel-1".into(),
        display_name: "contoso-1234abcd".into(),
        customer: Some(CUSTOMER.into()),
        customer_name: None,
        status,
        role_ids: roles(&[READERS, HELPDESK]),
        duration_days: Some(730),
        auto_extend: true,
        activated_at: active.then(|| now() - Span::days(10)),
        ends_at: active.then(|| now() + Span::days(720)),
        modified_at: Some(now() - Span::minutes(1)),
        etag: Some("W/\"1\"".into()),
    }
}

fn assignment(id: &str, group: &str, role_ids: &[&str], status: A) -> RemoteAssignment {
    RemoteAssignment {
        id: id.into(),
        group_id: group.into(),
        role_ids: roles(role_ids),
        status,
        etag: Some(format!("W/\"{id}\"")),
    }
}

fn update(assignment_id: &str, role_ids: &[&str], status: OperationStatus) -> RemoteUpdate {
    RemoteUpdate {
        operation_id: "op-1".into(),
        assignment_id: assignment_id.into(),
        role_ids: roles(role_ids),
        status,
        modified_at: Some(now() - Span::minutes(5)),
    }
}

fn seen(relationship: Option<RemoteRelationship>) -> Observed {
    Observed {
        deleting: false,
        create_intent: relationship.is_some(),
        recorded_id: relationship.as_ref().map(|r| r.id.clone()),
        withdrawal_recorded: false,
        generation: 0,
        failed_assignments: BTreeMap::new(),
        microsoft: Ok(Remote {
            relationship,
            ..Default::default()
        }),
        consents: Ok(Vec::new()),
        // Checked just now: the access check is not due in the tables that are not about it.
        access_verified_at: Some(now()),
        // The assignments were made long ago: their access has propagated.
        access_in_place_since: Some(now() - Span::days(1)),
    }
}

fn active_with(assignments: Vec<RemoteAssignment>, updates: Vec<RemoteUpdate>) -> Observed {
    let mut o = seen(Some(rel(S::Active)));
    let remote = o.microsoft.as_mut().unwrap();
    remote.assignments = assignments;
    remote.updates = updates;
    o
}

fn deleting(mut o: Observed) -> Observed {
    o.deleting = true;
    o
}

fn unreadable(transient: bool) -> Observed {
    let mut o = seen(None);
    o.microsoft = Err(Unreadable { transient });
    o
}

fn timing() -> Timing {
    Timing {
        poll: Duration::from_secs(5),
        resync: Duration::from_secs(300),
        termination_timeout: Duration::from_secs(120),
        failed_retry: Duration::from_secs(3600),
        propagation_timeout: Duration::from_secs(3600),
        access_verify: Duration::from_secs(3600),
    }
}

/// A compact description of an action: its kind and the ids it names.
fn kind(action: &Action) -> String {
    match action {
        Action::RecordCreateIntent { .. } => "RecordCreateIntent".into(),
        Action::Create { body } => format!("Create {} {}", body.display_name, body.duration),
        Action::CreateSuccessor { generation, body } => {
            format!(
                "CreateSuccessor {generation} {} {}",
                body.display_name, body.duration
            )
        }
        Action::HandOver {
            generation,
            relationship_id,
        } => format!("HandOver {generation} {relationship_id}"),
        Action::UpdateDraft { id, .. } => format!("UpdateDraft {id}"),
        Action::Lock { id } => format!("Lock {id}"),
        Action::SetAutoExtend { id, on, .. } => format!("SetAutoExtend {id} {on}"),
        Action::CreateAssignment { group_id, .. } => format!("CreateAssignment {group_id}"),
        Action::UpdateAssignment { assignment_id, .. } => {
            format!("UpdateAssignment {assignment_id}")
        }
        Action::DeleteAssignment { assignment_id, .. } => {
            format!("DeleteAssignment {assignment_id}")
        }
        Action::DeleteDraft { id, .. } => format!("DeleteDraft {id}"),
        Action::Terminate { id } => format!("Terminate {id}"),
        Action::RecordWithdrawal { record } => {
            format!("RecordWithdrawal {}", record.relationship_id)
        }
        Action::Release(r) => format!("Release {r:?}"),
        Action::Wait(Waiting::Propagating { what, .. }) => format!("Wait Propagating {what:?}"),
        Action::Wait(w) => format!("Wait {w:?}"),
        Action::Idle => "Idle".into(),
        Action::VerifyAccess { customer, settling } => {
            format!("VerifyAccess {customer} {settling}")
        }
        Action::Refuse(PlanError::PropagationTimedOut { what, .. }) => {
            format!("Refuse PropagationTimedOut {what:?}")
        }
        Action::Refuse(PlanError::NotOurs { id, .. }) => format!("Refuse NotOurs {id}"),
        Action::Refuse(e) => format!("Refuse {e:?}"),
    }
}

fn step(i: &Intent, o: &Observed) -> String {
    kind(&plan(i, o, &timing(), now()).action)
}

fn check(rows: Vec<(&str, Intent, Observed, &str)>) {
    let mut failures = Vec::new();
    for (name, i, o, expected) in rows {
        let got = step(&i, &o);
        if got != expected {
            failures.push(format!("{name}: expected {expected}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn creation_and_approval() {
    let mut without_intent = seen(None);
    without_intent.create_intent = false;
    let mut with_intent = seen(None);
    with_intent.create_intent = true;
    let mut other_customer = rel(S::Created);
    other_customer.customer = Some("99999999-2222-3333-4444-555555555555".into());
    let problem = FieldProblem::new("spec.roles[0]", "unknown role");
    check(vec![
        (
            "invalid spec refuses",
            with(|i| i.spec = Err(problem.clone())),
            seen(None),
            "Refuse InvalidSpec(FieldProblem { field: \"spec.roles[0]\", message: \"unknown role\" })",
        ),
        (
            "nothing yet: the intent is recorded first",
            intent(),
            without_intent.clone(),
            "RecordCreateIntent",
        ),
        (
            "intent recorded and nothing found by name: create",
            intent(),
            with_intent.clone(),
            "Create contoso-1234abcd P730D",
        ),
        (
            "the default name (from the uid) needs no intent: create at once",
            with(|i| i.name_from_uid = true),
            without_intent.clone(),
            "Create contoso-1234abcd P730D",
        ),
        (
            "observe never creates",
            with(|i| i.management = ManagementPolicy::Observe),
            with_intent.clone(),
            "Wait NothingToObserve",
        ),
        (
            "adopted id not found",
            with(|i| i.adopt_id = Some("given".into())),
            with_intent,
            "Refuse AdoptNotFound(\"given\")",
        ),
        (
            "draft matching the spec: lock",
            intent(),
            seen(Some(rel(S::Created))),
            "Lock rel-1",
        ),
        (
            "draft with other roles: update it first",
            spec(|d| d.role_ids = roles(&[READERS])),
            seen(Some(rel(S::Created))),
            "UpdateDraft rel-1",
        ),
        (
            "draft, observe only",
            with(|i| i.management = ManagementPolicy::Observe),
            seen(Some(rel(S::Created))),
            "Idle",
        ),
        (
            "name taken by another customer",
            intent(),
            seen(Some(other_customer)),
            "Refuse CustomerMismatch { found: \"99999999-2222-3333-4444-555555555555\" }",
        ),
        (
            "pending approval",
            intent(),
            seen(Some(rel(S::ApprovalPending))),
            "Wait Approval",
        ),
        (
            "roles edited after the lock",
            spec(|d| d.role_ids = roles(&[READERS])),
            seen(Some(rel(S::ApprovalPending))),
            "Refuse Immutable { roles_changed: true, duration_changed: false }",
        ),
        (
            "approved, activating",
            intent(),
            seen(Some(rel(S::Activating))),
            "Wait Activation",
        ),
        (
            "duration edited after approval",
            spec(|d| d.duration_days = 365),
            seen(Some(rel(S::Approved))),
            "Refuse Immutable { roles_changed: false, duration_changed: true }",
        ),
        (
            "Microsoft unreadable",
            intent(),
            unreadable(true),
            "Wait Unreadable",
        ),
        (
            "terminated by the customer: report, never recreate",
            intent(),
            seen(Some(rel(S::Terminated))),
            "Idle",
        ),
    ]);
}

#[test]
fn active_relationships_and_assignments() {
    let a_active = || assignment("as-1", GROUP_A, &[READERS], A::Active);
    let mut refused = active_with(vec![], vec![]);
    refused.failed_assignments.insert(
        GROUP_A.into(),
        FailedAssignment {
            role_ids: roles(&[READERS]),
            at: now() - Span::minutes(10),
        },
    );
    let mut refused_long_ago = refused.clone();
    refused_long_ago
        .failed_assignments
        .get_mut(GROUP_A)
        .unwrap()
        .at = now() - Span::hours(2);
    let both_roles = || {
        spec(|d| {
            d.assignments = BTreeMap::from([(GROUP_A.to_string(), roles(&[READERS, HELPDESK]))])
        })
    };
    check(vec![
        (
            "active without assignments: create one",
            intent(),
            active_with(vec![], vec![]),
            "CreateAssignment 6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e01",
        ),
        (
            "assignment pending",
            intent(),
            active_with(
                vec![assignment("as-1", GROUP_A, &[READERS], A::Pending)],
                vec![],
            ),
            "Wait Assignments",
        ),
        (
            "all active",
            intent(),
            active_with(vec![a_active()], vec![]),
            "Idle",
        ),
        (
            "auto-extend turned off in the spec",
            spec(|d| d.auto_extend = false),
            active_with(vec![a_active()], vec![]),
            "SetAutoExtend rel-1 false",
        ),
        (
            "roles of an assignment edited",
            both_roles(),
            active_with(vec![a_active()], vec![]),
            "UpdateAssignment as-1",
        ),
        (
            "the role change is running: never PATCH twice",
            both_roles(),
            active_with(
                vec![a_active()],
                vec![update(
                    "as-1",
                    &[READERS, HELPDESK],
                    OperationStatus::Running,
                )],
            ),
            "Wait Assignments",
        ),
        (
            "a finished role change of the past does not block a new one",
            both_roles(),
            active_with(
                vec![a_active()],
                vec![update("as-1", &[HELPDESK], OperationStatus::Succeeded)],
            ),
            "UpdateAssignment as-1",
        ),
        (
            "a failed role change waits the retry interval",
            both_roles(),
            active_with(
                vec![a_active()],
                vec![update(
                    "as-1",
                    &[READERS, HELPDESK],
                    OperationStatus::Failed,
                )],
            ),
            "Idle",
        ),
        (
            "group removed from the spec",
            spec(|d| d.assignments = BTreeMap::from([(GROUP_B.to_string(), roles(&[HELPDESK]))])),
            active_with(
                vec![
                    a_active(),
                    assignment("as-2", GROUP_B, &[HELPDESK], A::Active),
                ],
                vec![],
            ),
            "DeleteAssignment as-1",
        ),
        (
            "a group being deleted is not live",
            intent(),
            active_with(
                vec![assignment("as-0", GROUP_A, &[READERS], A::Deleting)],
                vec![],
            ),
            "CreateAssignment 6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e01",
        ),
        ("refused recently: no retry", intent(), refused, "Idle"),
        (
            "refused long ago: retry",
            intent(),
            refused_long_ago,
            "CreateAssignment 6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e01",
        ),
        (
            "observe never writes",
            with(|i| i.management = ManagementPolicy::Observe),
            active_with(vec![], vec![]),
            "Idle",
        ),
    ]);
}

#[test]
fn deletion() {
    let terminating = |status: Option<RequestStatus>, minutes_ago: i64| {
        let mut o = deleting(seen(Some(rel(S::Active))));
        o.microsoft.as_mut().unwrap().termination = Some(RemoteRequest {
            status,
            created_at: Some(now() - Span::minutes(minutes_ago)),
        });
        o
    };
    let mut recorded = deleting(seen(Some(rel(S::ApprovalPending))));
    recorded.withdrawal_recorded = true;
    let mut never_created = deleting(unreadable(false));
    never_created.create_intent = false;
    never_created.recorded_id = None;
    let mut maybe_created = never_created.clone();
    maybe_created.create_intent = true;
    let mut known_id = never_created.clone();
    known_id.recorded_id = Some("rel-1".into());
    check(vec![
        (
            "orphan releases without looking",
            with(|i| i.deletion = DeletionPolicy::Orphan),
            deleting(unreadable(false)),
            "Release Orphaned",
        ),
        (
            "observe releases",
            with(|i| i.management = ManagementPolicy::Observe),
            deleting(seen(Some(rel(S::Active)))),
            "Release Orphaned",
        ),
        (
            "active: terminate",
            intent(),
            deleting(seen(Some(rel(S::Active)))),
            "Terminate rel-1",
        ),
        (
            "a terminate request exists: wait",
            intent(),
            terminating(Some(RequestStatus::Pending), 1),
            "Wait Termination",
        ),
        (
            "the terminate request failed: terminate again",
            intent(),
            terminating(Some(RequestStatus::Failed), 1),
            "Terminate rel-1",
        ),
        (
            "termination overdue",
            intent(),
            terminating(Some(RequestStatus::Pending), 3),
            "Wait TerminationOverdue",
        ),
        (
            "terminating",
            intent(),
            deleting(seen(Some(rel(S::Terminating)))),
            "Wait Termination",
        ),
        (
            "terminated: release",
            intent(),
            deleting(seen(Some(rel(S::Terminated)))),
            "Release Done",
        ),
        (
            "draft: delete it",
            intent(),
            deleting(seen(Some(rel(S::Created)))),
            "DeleteDraft rel-1",
        ),
        (
            "pending approval: record the withdrawal first",
            intent(),
            deleting(seen(Some(rel(S::ApprovalPending)))),
            "RecordWithdrawal rel-1",
        ),
        (
            "pending approval, recorded: release",
            intent(),
            recorded,
            "Release CannotWithdraw",
        ),
        (
            "approved: wait for it to become active, then terminate",
            intent(),
            deleting(seen(Some(rel(S::Activating)))),
            "Wait Activation",
        ),
        (
            "nothing found: release",
            intent(),
            deleting(seen(None)),
            "Release NothingToDelete",
        ),
        (
            "invalid spec still deletes",
            with(|i| i.spec = Err(FieldProblem::new("spec.roles[0]", "unknown"))),
            deleting(seen(Some(rel(S::Active)))),
            "Terminate rel-1",
        ),
        (
            "credentials gone, nothing ever created: release",
            intent(),
            never_created,
            "Release NothingToDelete",
        ),
        (
            "credentials gone after a create intent: never orphan",
            intent(),
            maybe_created,
            "Wait Unreadable",
        ),
        (
            "credentials gone with a known id: never orphan",
            intent(),
            known_id,
            "Wait Unreadable",
        ),
    ]);
}

#[test]
fn actions_carry_the_request_data() {
    let mut o = seen(None);
    o.create_intent = true;
    let Action::Create { body } = plan(&intent(), &o, &timing(), now()).action else {
        panic!("expected a create");
    };
    assert_eq!(body.customer.unwrap().tenant_id, CUSTOMER);
    assert_eq!(body.auto_extend_duration.as_deref(), Some(AUTO_EXTEND_ON));
    assert_eq!(body.access_details.role_ids().len(), 2);

    let both = spec(|d| {
        d.assignments = BTreeMap::from([(GROUP_A.to_string(), roles(&[READERS, HELPDESK]))])
    });
    let o = active_with(
        vec![assignment("as-1", GROUP_A, &[READERS], A::Active)],
        vec![],
    );
    let action = plan(&both, &o, &timing(), now()).action;
    assert_eq!(
        action,
        Action::UpdateAssignment {
            relationship_id: "rel-1".into(),
            assignment_id: "as-1".into(),
            etag: "W/\"as-1\"".into(),
            group_id: GROUP_A.into(),
            access_details: AccessDetails::from_role_ids([HELPDESK, READERS]),
        }
    );

    let mut record_intent = seen(None);
    record_intent.create_intent = false;
    let Action::RecordCreateIntent { annotation } =
        plan(&intent(), &record_intent, &timing(), now()).action
    else {
        panic!("expected the intent first");
    };
    assert_eq!(
        annotation,
        format!("contoso-1234abcd {}", now().to_rfc3339())
    );
}

#[test]
fn requeue_follows_the_work() {
    let t = timing();
    let pending = plan(&intent(), &seen(Some(rel(S::ApprovalPending))), &t, now());
    assert_eq!(pending.requeue, t.poll);
    let lock = plan(&intent(), &seen(Some(rel(S::Created))), &t, now());
    assert_eq!(lock.requeue, Duration::ZERO);
    let mut near_end = rel(S::Active);
    near_end.ends_at = Some(now() + Span::days(30) + Span::seconds(40));
    assert_eq!(
        steady_requeue(&near_end, None, &t, now()),
        Duration::from_secs(40),
        "wakes at the 30-day threshold"
    );
    near_end.ends_at = Some(now() + Span::days(400));
    assert_eq!(steady_requeue(&near_end, None, &t, now()), t.resync);
}

#[test]
fn expiry_warnings_are_due_once_per_threshold() {
    let end = now() + Span::days(5);
    assert_eq!(expiry_warnings_due(end, now(), &[]), vec![30, 7]);
    assert_eq!(expiry_warnings_due(end, now(), &[30]), vec![7]);
    assert_eq!(expiry_warnings_due(end, now(), &[30, 7]), Vec::<i64>::new());
    assert!(expiry_warnings_due(now() - Span::days(1), now(), &[]).is_empty());
}

fn renewing() -> Intent {
    spec(|d| {
        d.auto_extend = false;
        d.renewal = Some(super::desired::Renewal {
            before_days: 30,
            keep_predecessor: false,
        })
    })
}

fn ending_in(days: i64) -> RemoteRelationship {
    let mut r = rel(S::Active);
    r.auto_extend = false;
    r.ends_at = Some(now() + Span::days(days));
    r
}

fn linked(generation: u32, id: &str, status: S) -> Linked {
    let mut relationship = rel(status);
    relationship.id = id.into();
    relationship.auto_extend = false;
    relationship.display_name = format!("contoso-1234abcd-r{generation}");
    Linked {
        generation,
        relationship,
        assignments: vec![],
        updates: vec![],
        termination: None,
        withdrawal_recorded: false,
    }
}

fn renewal_world(current: RemoteRelationship, successor: Option<Linked>) -> Observed {
    let mut o = active_with(
        vec![assignment("as-1", GROUP_A, &[READERS], A::Active)],
        vec![],
    );
    let remote = o.microsoft.as_mut().unwrap();
    remote.relationship = Some(current);
    remote.successor = successor;
    remote.next_generation = 1;
    o
}

#[test]
fn successors_renew_and_carry_spec_changes() {
    let active_successor = |assignments: Vec<RemoteAssignment>| {
        let mut s = linked(1, "rel-2", S::Active);
        s.assignments = assignments;
        s
    };
    let mut expired_next = renewal_world(ending_in(20), None);
    expired_next.microsoft.as_mut().unwrap().next_generation = 2;
    let mut roles_edited = renewing();
    roles_edited.spec.as_mut().unwrap().role_ids = roles(&[READERS]);
    let mut stale_pending = linked(1, "rel-2", S::ApprovalPending);
    stale_pending.relationship.role_ids = roles(&[READERS, HELPDESK]);
    check(vec![
        (
            "far from the end: nothing to renew",
            renewing(),
            renewal_world(ending_in(200), None),
            "Idle",
        ),
        (
            "within renewal.before: one successor, generation 1",
            renewing(),
            renewal_world(ending_in(20), None),
            "CreateSuccessor 1 contoso-1234abcd-r1 P730D",
        ),
        (
            "an expired request is skipped: the next generation gets a fresh link",
            renewing(),
            expired_next,
            "CreateSuccessor 2 contoso-1234abcd-r2 P730D",
        ),
        (
            "without the policy nothing is renewed",
            spec(|d| d.auto_extend = false),
            renewal_world(ending_in(20), None),
            "Idle",
        ),
        (
            "an auto-extending relationship needs no successor",
            with(|i| i.spec.as_mut().unwrap().renewal = renewing().spec.unwrap().renewal),
            renewal_world(rel(S::Active), None),
            "Idle",
        ),
        (
            "the successor exists: lock it",
            renewing(),
            renewal_world(ending_in(20), Some(linked(1, "rel-2", S::Created))),
            "Lock rel-2",
        ),
        (
            "waiting for the customer",
            renewing(),
            renewal_world(ending_in(20), Some(linked(1, "rel-2", S::ApprovalPending))),
            "Wait SuccessorApproval",
        ),
        (
            "active successor: assign its groups first",
            renewing(),
            renewal_world(ending_in(20), Some(active_successor(vec![]))),
            "CreateAssignment 6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e01",
        ),
        (
            "its groups pending: wait",
            renewing(),
            renewal_world(
                ending_in(20),
                Some(active_successor(vec![assignment(
                    "as-9",
                    GROUP_A,
                    &[READERS],
                    A::Pending,
                )])),
            ),
            "Wait Assignments",
        ),
        (
            "its groups active: hand over",
            renewing(),
            renewal_world(
                ending_in(20),
                Some(active_successor(vec![assignment(
                    "as-9",
                    GROUP_A,
                    &[READERS],
                    A::Active,
                )])),
            ),
            "HandOver 1 rel-2",
        ),
        (
            "roles edited after the lock with the policy: a successor carries them",
            roles_edited.clone(),
            renewal_world(ending_in(200), None),
            "CreateSuccessor 1 contoso-1234abcd-r1 P730D",
        ),
        (
            "roles edited while pending approval with the policy: a successor too",
            roles_edited.clone(),
            seen(Some(rel(S::ApprovalPending))),
            "CreateSuccessor 1 contoso-1234abcd-r1 P730D",
        ),
        (
            "a pending successor with the old roles is withdrawn first",
            roles_edited,
            renewal_world(ending_in(20), Some(stale_pending)),
            "RecordWithdrawal rel-2",
        ),
        (
            "a successor no longer needed (spec reverted) is deleted while a draft",
            renewing(),
            renewal_world(ending_in(200), Some(linked(1, "rel-2", S::Created))),
            "DeleteDraft rel-2",
        ),
        (
            "observe never requests successors",
            with(|i| {
                i.management = ManagementPolicy::Observe;
                i.spec = renewing().spec;
            }),
            renewal_world(ending_in(20), None),
            "Idle",
        ),
    ]);
}

#[test]
fn a_relationship_lost_after_a_hand_over_is_recreated_under_its_generation_name() {
    let mut o = seen(None);
    o.create_intent = true;
    o.generation = 2;
    assert_eq!(step(&renewing(), &o), "Create contoso-1234abcd-r2 P730D");
}

#[test]
fn after_the_hand_over_the_predecessor_is_terminated_unless_kept() {
    let mut o = renewal_world(ending_in(700), None);
    o.generation = 1;
    o.microsoft.as_mut().unwrap().predecessor = Some(linked(0, "rel-0", S::Active));
    let mut keep = renewing();
    keep.spec.as_mut().unwrap().renewal = Some(super::desired::Renewal {
        before_days: 30,
        keep_predecessor: true,
    });
    let mut terminating = o.clone();
    terminating
        .microsoft
        .as_mut()
        .unwrap()
        .predecessor
        .as_mut()
        .unwrap()
        .termination = Some(RemoteRequest {
        status: Some(RequestStatus::Pending),
        created_at: Some(now()),
    });
    check(vec![
        (
            "terminate the predecessor",
            renewing(),
            o.clone(),
            "Terminate rel-0",
        ),
        ("keepPredecessor leaves it", keep, o, "Idle"),
        (
            "its termination is under way",
            renewing(),
            terminating,
            "Idle",
        ),
    ]);
}

#[test]
fn deletion_ends_the_successor_too() {
    let with_successor = |status: S| {
        let mut o = deleting(renewal_world(
            ending_in(20),
            Some(linked(1, "rel-2", status)),
        ));
        o.microsoft.as_mut().unwrap().termination = None;
        o
    };
    let mut recorded = linked(1, "rel-2", S::ApprovalPending);
    recorded.withdrawal_recorded = true;
    check(vec![
        (
            "an active successor is terminated first",
            renewing(),
            with_successor(S::Active),
            "Terminate rel-2",
        ),
        (
            "a pending successor is recorded for withdrawal",
            renewing(),
            with_successor(S::ApprovalPending),
            "RecordWithdrawal rel-2",
        ),
        (
            "then the current one is terminated",
            renewing(),
            deleting(renewal_world(ending_in(20), Some(recorded))),
            "Terminate rel-1",
        ),
    ]);
}

/// `o` while AppConsents `names` are still removing their consents.
fn consents_removing(mut o: Observed, names: &[&str]) -> Observed {
    o.consents = Ok(names.iter().map(|n| n.to_string()).collect());
    o
}

#[test]
fn deletion_waits_until_the_consents_relying_on_it_are_removed() {
    let active = || deleting(seen(Some(rel(S::Active))));
    let mut unlisted = active();
    unlisted.consents = Err(Unreadable { transient: true });
    let mut requested = active();
    requested.microsoft.as_mut().unwrap().termination = Some(RemoteRequest {
        status: Some(RequestStatus::Failed),
        created_at: Some(now() - Span::minutes(1)),
    });
    let successor = deleting(renewal_world(
        ending_in(20),
        Some(linked(1, "rel-2", S::Active)),
    ));
    check(vec![
        (
            "a consent is still removing its consent: wait, terminate nothing",
            intent(),
            consents_removing(active(), &["reporting"]),
            "Wait Consents",
        ),
        (
            "the consents are gone: terminate",
            intent(),
            consents_removing(active(), &[]),
            "Terminate rel-1",
        ),
        (
            "the consents cannot be listed: wait, never terminate blind",
            intent(),
            unlisted,
            "Wait Unreadable",
        ),
        (
            "a failed terminate is not sent again while consents remain",
            intent(),
            consents_removing(requested, &["reporting"]),
            "Wait Consents",
        ),
        (
            "an active successor is not ended either",
            renewing(),
            consents_removing(successor, &["reporting"]),
            "Wait Consents",
        ),
        (
            "a draft waits as well (nothing at all is sent)",
            intent(),
            consents_removing(deleting(seen(Some(rel(S::Created)))), &["reporting"]),
            "Wait Consents",
        ),
        (
            "Microsoft unreadable: still the consents first",
            intent(),
            consents_removing(deleting(unreadable(true)), &["reporting"]),
            "Wait Consents",
        ),
        (
            "unshown writes do not turn the wait into Propagating",
            intent(),
            sent(
                consents_removing(active(), &["reporting"]),
                assign(GROUP_A, Some("as-1")),
                1,
            ),
            "Wait Consents",
        ),
        (
            "deletionPolicy Orphan releases at once",
            with(|i| i.deletion = DeletionPolicy::Orphan),
            consents_removing(active(), &["reporting"]),
            "Release Orphaned",
        ),
        (
            "managementPolicy Observe releases at once",
            with(|i| i.management = ManagementPolicy::Observe),
            consents_removing(active(), &["reporting"]),
            "Release Orphaned",
        ),
    ]);
    let waiting = plan(
        &intent(),
        &consents_removing(active(), &["reporting"]),
        &timing(),
        now(),
    );
    assert_eq!(
        waiting.requeue,
        timing().poll,
        "looked at again at the poll interval"
    );
}

// ---- Microsoft is eventually consistent: lagging reads never cause a second write ----

/// `o` with `write` made `seconds_ago` (the object's annotation `gdap.io/pending-writes`).
fn sent(mut o: Observed, write: Write, seconds_ago: i64) -> Observed {
    let remote = o.microsoft.as_mut().unwrap();
    remote.pending.0.push(Written {
        write,
        at: now() - Span::seconds(seconds_ago),
    });
    o
}

fn created(generation: u32, id: Option<&str>) -> Write {
    Write::Create {
        generation,
        display_name: if generation == 0 {
            "contoso-1234abcd".into()
        } else {
            format!("contoso-1234abcd-r{generation}")
        },
        id: id.map(str::to_string),
        role_ids: roles(&[READERS, HELPDESK]),
        duration_days: Some(730),
        auto_extend: true,
        etag: Some("W/\"1\"".into()),
    }
}

fn lock(id: &str) -> Write {
    Write::Lock { id: id.into() }
}

fn assign(group: &str, id: Option<&str>) -> Write {
    Write::Assign {
        relationship_id: "rel-1".into(),
        group_id: group.into(),
        id: id.map(str::to_string),
        role_ids: roles(&[READERS]),
    }
}

/// Nothing read yet, though status records the id Microsoft answered the create with.
fn created_but_unread() -> Observed {
    let mut o = seen(None);
    o.create_intent = true;
    o.recorded_id = Some("rel-1".into());
    o.microsoft.as_mut().unwrap().create_intent = Some(CreateIntent {
        display_name: "contoso-1234abcd".into(),
        at: now() - Span::seconds(3),
        created_id: None,
    });
    o
}

fn intent_recorded(mut o: Observed, seconds_ago: i64) -> Observed {
    o.create_intent = true;
    o.microsoft.as_mut().unwrap().create_intent = Some(CreateIntent {
        display_name: "contoso-1234abcd".into(),
        at: now() - Span::seconds(seconds_ago),
        created_id: None,
    });
    o
}

const HOURS_2: i64 = 7200;

#[test]
fn a_create_that_reads_do_not_show_yet_is_waited_for_never_repeated() {
    let mut nothing_recorded = intent_recorded(seen(None), 3);
    nothing_recorded.recorded_id = None;
    let mut intent_long_ago = created_but_unread();
    intent_long_ago
        .microsoft
        .as_mut()
        .unwrap()
        .create_intent
        .as_mut()
        .unwrap()
        .at = now() - Span::seconds(HOURS_2);
    check(vec![
        (
            "just created: GET by id 404, not listed; the lock goes out at once (writes act on the true state)",
            intent(),
            sent(created_but_unread(), created(0, Some("rel-1")), 1),
            "Lock rel-1",
        ),
        (
            "created and locked, neither shows yet: wait, never a second create or lock",
            intent(),
            sent(
                sent(created_but_unread(), created(0, Some("rel-1")), 2),
                lock("rel-1"),
                1,
            ),
            "Wait Propagating Relationship",
        ),
        (
            "Microsoft answered that the display name exists (a create before a crash): wait",
            intent(),
            sent(nothing_recorded.clone(), created(0, None), 1),
            "Wait Propagating Relationship",
        ),
        (
            "the id status records is not found yet (the pending record lost in a crash): wait",
            intent(),
            created_but_unread(),
            "Wait Propagating Relationship",
        ),
        (
            "the recorded id still not found long after the intent: gone, create (Graph refuses a duplicate name)",
            intent(),
            intent_long_ago,
            "Create contoso-1234abcd P730D",
        ),
        (
            "a create still unshown after --propagation-timeout: a failure, never a second create",
            intent(),
            sent(nothing_recorded, created(0, None), HOURS_2),
            "Refuse PropagationTimedOut Relationship",
        ),
    ]);
}

#[test]
fn a_lock_or_patch_that_reads_do_not_show_yet_is_never_repeated() {
    let draft = || seen(Some(rel(S::Created)));
    let patched = Write::Patch {
        id: "rel-1".into(),
        role_ids: Some(roles(&[READERS])),
        duration_days: Some(730),
        auto_extend: Some(true),
    };
    check(vec![
        (
            "locked, the read still says created: wait, never lock twice",
            intent(),
            sent(draft(), lock("rel-1"), 2),
            "Wait Propagating Lock",
        ),
        (
            "the lock shows: the record no longer matters",
            intent(),
            sent(seen(Some(rel(S::ApprovalPending))), lock("rel-1"), 2),
            "Wait Approval",
        ),
        (
            "a lock unshown after --propagation-timeout: a failure, never a second lock",
            intent(),
            sent(draft(), lock("rel-1"), HOURS_2),
            "Refuse PropagationTimedOut Lock",
        ),
        (
            "the draft was patched to the spec, the read shows the old roles: lock, never patch twice",
            spec(|d| d.role_ids = roles(&[READERS])),
            sent(draft(), patched, 1),
            "Lock rel-1",
        ),
        (
            "auto-extension patched, the read shows the old value: wait, never patch twice",
            spec(|d| d.auto_extend = false),
            sent(
                active_with(
                    vec![assignment("as-1", GROUP_A, &[READERS], A::Active)],
                    vec![],
                ),
                Write::Patch {
                    id: "rel-1".into(),
                    role_ids: None,
                    duration_days: None,
                    auto_extend: Some(false),
                },
                1,
            ),
            "Wait Propagating Update",
        ),
    ]);
}

fn reassign() -> Write {
    Write::Reassign {
        relationship_id: "rel-1".into(),
        assignment_id: "as-1".into(),
        role_ids: roles(&[READERS, HELPDESK]),
        operation_id: Some("op-1".into()),
    }
}

#[test]
fn assignment_writes_that_reads_do_not_show_yet_are_never_repeated() {
    let a_active = || assignment("as-1", GROUP_A, &[READERS], A::Active);
    let two_groups = spec(|d| {
        d.assignments = BTreeMap::from([
            (GROUP_A.to_string(), roles(&[READERS])),
            (GROUP_B.to_string(), roles(&[HELPDESK])),
        ])
    });
    let both_roles = spec(|d| {
        d.assignments = BTreeMap::from([(GROUP_A.to_string(), roles(&[READERS, HELPDESK]))])
    });
    let only_b =
        spec(|d| d.assignments = BTreeMap::from([(GROUP_B.to_string(), roles(&[HELPDESK]))]));
    check(vec![
        (
            "assigned, the list does not show it: wait, never assign twice",
            intent(),
            sent(
                active_with(vec![], vec![]),
                assign(GROUP_A, Some("as-1")),
                1,
            ),
            "Wait Propagating Assignment",
        ),
        (
            "assigned one group, the list shows neither: the next group, not the first again",
            two_groups,
            sent(
                active_with(vec![], vec![]),
                assign(GROUP_A, Some("as-1")),
                1,
            ),
            "CreateAssignment 6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e02",
        ),
        (
            "Microsoft answered 409 (the group has one): wait — never AssignmentFailed, never a delete",
            intent(),
            sent(active_with(vec![], vec![]), assign(GROUP_A, None), 1),
            "Wait Propagating Assignment",
        ),
        (
            "the assignment shows: steady",
            intent(),
            sent(
                active_with(vec![a_active()], vec![]),
                assign(GROUP_A, Some("as-1")),
                5,
            ),
            "Idle",
        ),
        (
            "roles changed, neither the operation nor the roles show: wait, never PATCH twice",
            both_roles.clone(),
            sent(active_with(vec![a_active()], vec![]), reassign(), 1),
            "Wait Propagating RoleChange",
        ),
        (
            "the role change's operation succeeded, the assignment still reads the old roles: wait, never PATCH twice",
            both_roles.clone(),
            sent(
                active_with(
                    vec![a_active()],
                    vec![update(
                        "as-1",
                        &[READERS, HELPDESK],
                        OperationStatus::Succeeded,
                    )],
                ),
                reassign(),
                3,
            ),
            "Wait Propagating RoleChange",
        ),
        (
            "the role change's operation failed: reported and retried after --failed-assignment-retry",
            both_roles.clone(),
            sent(
                active_with(
                    vec![a_active()],
                    vec![update(
                        "as-1",
                        &[READERS, HELPDESK],
                        OperationStatus::Failed,
                    )],
                ),
                reassign(),
                3,
            ),
            "Idle",
        ),
        (
            "a removed group is still listed live: wait, never DELETE twice",
            only_b,
            sent(
                active_with(
                    vec![
                        a_active(),
                        assignment("as-2", GROUP_B, &[HELPDESK], A::Active),
                    ],
                    vec![],
                ),
                Write::Unassign {
                    relationship_id: "rel-1".into(),
                    assignment_id: "as-1".into(),
                },
                1,
            ),
            "Wait Propagating AssignmentRemoval",
        ),
        (
            "an assignment removed out of band after it showed is made again",
            intent(),
            active_with(vec![], vec![]),
            "CreateAssignment 6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e01",
        ),
    ]);
}

#[test]
fn deletion_under_lag_neither_repeats_nor_leaks() {
    let active = || deleting(seen(Some(rel(S::Active))));
    let mut unread_exists = deleting(intent_recorded(seen(None), 3));
    unread_exists.recorded_id = None;
    let mut recorded_long_ago = deleting(created_but_unread());
    recorded_long_ago
        .microsoft
        .as_mut()
        .unwrap()
        .create_intent
        .as_mut()
        .unwrap()
        .at = now() - Span::seconds(HOURS_2);
    check(vec![
        (
            "terminated, the read still says active with no request: wait, never terminate twice",
            intent(),
            sent(active(), Write::Terminate { id: "rel-1".into() }, 1),
            "Wait Propagating Termination",
        ),
        (
            "the termination shows: wait for Microsoft to finish",
            intent(),
            sent(
                deleting(seen(Some(rel(S::TerminationRequested)))),
                Write::Terminate { id: "rel-1".into() },
                1,
            ),
            "Wait Termination",
        ),
        (
            "a draft deleted, the read still shows it: released, never deleted twice",
            intent(),
            sent(
                deleting(seen(Some(rel(S::Created)))),
                Write::Delete { id: "rel-1".into() },
                1,
            ),
            "Release NothingToDelete",
        ),
        (
            "created and deleted at once, nothing read yet: the draft the create answered is deleted",
            intent(),
            sent(deleting(created_but_unread()), created(0, Some("rel-1")), 1),
            "DeleteDraft rel-1",
        ),
        (
            "created and deleted at once, neither shows: released, nothing left to wait for",
            intent(),
            sent(
                sent(deleting(created_but_unread()), created(0, Some("rel-1")), 2),
                Write::Delete { id: "rel-1".into() },
                1,
            ),
            "Release NothingToDelete",
        ),
        (
            "locked, the read still says created: never delete an approvalPending relationship as a draft",
            intent(),
            sent(deleting(seen(Some(rel(S::Created)))), lock("rel-1"), 1),
            "RecordWithdrawal rel-1",
        ),
        (
            "the recorded id is not read yet: wait, never release (access would leak)",
            intent(),
            deleting(created_but_unread()),
            "Wait Propagating Relationship",
        ),
        (
            "Microsoft answered that the display name exists, nothing read yet: wait, never release",
            intent(),
            sent(unread_exists, created(0, None), 1),
            "Wait Propagating Relationship",
        ),
        (
            "the recorded id still not read long after the intent: nothing to delete",
            intent(),
            recorded_long_ago,
            "Release NothingToDelete",
        ),
    ]);
}

#[test]
fn successor_writes_that_reads_do_not_show_yet_are_never_repeated() {
    let active_successor = {
        let mut s = linked(1, "rel-2", S::Active);
        s.assignments = vec![];
        s
    };
    let on_successor = Write::Assign {
        relationship_id: "rel-2".into(),
        group_id: GROUP_A.into(),
        id: Some("as-9".into()),
        role_ids: roles(&[READERS]),
    };
    check(vec![
        (
            "the successor was created, not listed yet: lock it, never a second successor",
            renewing(),
            sent(
                renewal_world(ending_in(20), None),
                created(1, Some("rel-2")),
                1,
            ),
            "Lock rel-2",
        ),
        (
            "created and locked, neither shows: wait",
            renewing(),
            sent(
                sent(
                    renewal_world(ending_in(20), None),
                    created(1, Some("rel-2")),
                    2,
                ),
                lock("rel-2"),
                1,
            ),
            "Wait Propagating Relationship",
        ),
        (
            "a successor that was read and has ended since (its approval lapsed): the next generation",
            renewing(),
            {
                let mut o = sent(
                    sent(
                        renewal_world(ending_in(20), None),
                        created(1, Some("rel-2")),
                        100,
                    ),
                    lock("rel-2"),
                    99,
                );
                o.microsoft.as_mut().unwrap().next_generation = 2;
                o
            },
            "CreateSuccessor 2 contoso-1234abcd-r2 P730D",
        ),
        (
            "its create answered that the display name exists: wait, never the next generation",
            renewing(),
            sent(renewal_world(ending_in(20), None), created(1, None), 1),
            "Wait Propagating Relationship",
        ),
        (
            "its group assigned, not listed yet: wait, never assign twice nor hand over",
            renewing(),
            sent(
                renewal_world(ending_in(20), Some(active_successor)),
                on_successor,
                1,
            ),
            "Wait Propagating Assignment",
        ),
        (
            "the predecessor's termination does not show yet: never terminate twice",
            renewing(),
            {
                let mut o = renewal_world(ending_in(700), None);
                o.generation = 1;
                o.microsoft.as_mut().unwrap().predecessor = Some(linked(0, "rel-0", S::Active));
                sent(o, Write::Terminate { id: "rel-0".into() }, 1)
            },
            "Wait Propagating Termination",
        ),
    ]);
}

/// The relationship was found by its display name only, created `created_ago` seconds ago.
fn by_name(status: S, created_ago: i64) -> Observed {
    let mut o = seen(Some(rel(status)));
    o.create_intent = false;
    o.recorded_id = None;
    let remote = o.microsoft.as_mut().unwrap();
    remote.found_by = FoundBy::DisplayName;
    remote.relationship_created_at = Some(now() - Span::seconds(created_ago));
    o
}

#[test]
fn adoption_is_never_a_guess() {
    let mut by_recorded_id = seen(Some(rel(S::Active)));
    by_recorded_id.create_intent = false;
    by_recorded_id.microsoft.as_mut().unwrap().found_by = FoundBy::RecordedId;
    let mut other_name = intent_recorded(by_name(S::Created, 1), 3);
    other_name
        .microsoft
        .as_mut()
        .unwrap()
        .create_intent
        .as_mut()
        .unwrap()
        .display_name = "another-name".into();
    // Status lost, and Microsoft's clock moved on (the sandbox ages what it recorded): the
    // relationship reads as created long before the intent, but the id the object's own create
    // was answered with is recorded.
    let mut created_and_recorded = intent_recorded(by_name(S::Active, 31 * 86_400), 60);
    created_and_recorded
        .microsoft
        .as_mut()
        .unwrap()
        .create_intent
        .as_mut()
        .unwrap()
        .created_id = Some("rel-1".into());
    let mut created_other = created_and_recorded.clone();
    created_other
        .microsoft
        .as_mut()
        .unwrap()
        .create_intent
        .as_mut()
        .unwrap()
        .created_id = Some("rel-9".into());
    check(vec![
        (
            "the id the object's own create was answered with: ours, whatever the times say",
            intent(),
            created_and_recorded,
            "CreateAssignment 6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e01",
        ),
        (
            "a recorded create of another relationship proves nothing about this one",
            intent(),
            created_other,
            "Refuse NotOurs rel-1",
        ),
        (
            "made by hand with the display name, no create intent: DisplayNameTaken, nothing written",
            intent(),
            by_name(S::Active, 86_400),
            "Refuse NotOurs rel-1",
        ),
        (
            "made by hand before the create intent (lag hid it when the create went out): not ours",
            intent(),
            intent_recorded(by_name(S::Created, 600), 60),
            "Refuse NotOurs rel-1",
        ),
        (
            "created after the create intent (the object's create, its id lost in a crash): ours",
            intent(),
            intent_recorded(by_name(S::Created, 58), 60),
            "Lock rel-1",
        ),
        (
            "created within the clock skew before the intent: ours",
            intent(),
            intent_recorded(by_name(S::Created, 60), 60),
            "Lock rel-1",
        ),
        (
            "a create intent for another display name proves nothing",
            intent(),
            other_name,
            "Refuse NotOurs rel-1",
        ),
        (
            "a recorded id no create intent backs (observed before): not ours",
            intent(),
            by_recorded_id.clone(),
            "Refuse NotOurs rel-1",
        ),
        (
            "the default name carries the object's uid: found by it, no intent needed, ours",
            with(|i| i.name_from_uid = true),
            by_name(S::Created, 86_400),
            "Lock rel-1",
        ),
        (
            "the default name: a recorded id is the object's own too",
            with(|i| i.name_from_uid = true),
            by_recorded_id,
            "CreateAssignment 6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e01",
        ),
        (
            "spec.relationshipId adopts explicitly",
            with(|i| i.adopt_id = Some("rel-1".into())),
            {
                let mut o = by_name(S::Active, 86_400);
                o.microsoft.as_mut().unwrap().found_by = FoundBy::Id;
                o
            },
            "CreateAssignment 6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e01",
        ),
        (
            "Observe only reads: it reports what carries the name",
            with(|i| i.management = ManagementPolicy::Observe),
            by_name(S::ApprovalPending, 86_400),
            "Wait Approval",
        ),
        (
            "deleting the object never terminates a relationship that is not its own",
            intent(),
            deleting(by_name(S::Active, 86_400)),
            "Release NothingToDelete",
        ),
    ]);
}

#[test]
fn propagation_waits_back_off_from_the_poll_interval() {
    let t = timing();
    let requeue = |seconds_ago| {
        let o = sent(seen(Some(rel(S::Created))), lock("rel-1"), seconds_ago);
        plan(&intent(), &o, &t, now()).requeue
    };
    assert_eq!(requeue(0), t.poll, "the first look after --poll-interval");
    assert_eq!(
        requeue(20),
        Duration::from_secs(20),
        "then about as long as waited"
    );
    assert_eq!(
        requeue(1000),
        t.resync,
        "never longer than --resync-interval"
    );
    assert_eq!(
        requeue(3599),
        Duration::from_secs(1),
        "and not past --propagation-timeout"
    );
    let timed_out = plan(
        &intent(),
        &sent(seen(Some(rel(S::Created))), lock("rel-1"), 3600),
        &t,
        now(),
    );
    assert_eq!(timed_out.requeue, t.resync);
}

#[test]
fn pending_writes_round_trip_through_the_annotation() {
    let pending = Pending::new(vec![
        Written {
            write: created(0, Some("rel-1")),
            at: now(),
        },
        Written {
            write: assign(GROUP_A, None),
            at: now(),
        },
    ]);
    let value = pending.to_annotation().unwrap();
    assert!(value.contains("\"kind\":\"create\""), "{value}");
    assert!(value.contains("\"groupId\""), "{value}");
    assert_eq!(Pending::parse(Some(&value)).unwrap(), pending);
    assert_eq!(Pending::parse(None).unwrap(), Pending::default());
    assert!(Pending::parse(Some("not json")).is_err());
    assert_eq!(Pending::default().to_annotation(), None);
}

#[test]
fn each_write_is_recorded_from_microsofts_answer_and_forgotten_once_a_read_shows_it() {
    use super::act::Applied;
    use super::pending::next;
    let t = now();
    let create = Action::Create {
        body: new_relationship(&intent(), &desired()),
    };
    let nothing = {
        let mut o = seen(None);
        o.create_intent = true;
        o
    };
    let recorded = |o: &Observed, action: &Action, applied: Option<&Applied>| {
        next(o, action, applied, t).unwrap().0
    };
    let answered = rel(S::Created);
    assert_eq!(
        recorded(&nothing, &create, Some(&Applied::Created(answered))),
        vec![Written {
            write: created(0, Some("rel-1")),
            at: t
        }]
    );
    let taken = Applied::NameTaken {
        display_name: "contoso-1234abcd".into(),
    };
    assert!(matches!(
        &recorded(&nothing, &create, Some(&taken))[0].write,
        Write::Create {
            id: None,
            generation: 0,
            ..
        }
    ));
    let unanswered = Applied::CreatedUnanswered {
        display_name: "contoso-1234abcd".into(),
    };
    assert!(
        matches!(
            &recorded(&nothing, &create, Some(&unanswered))[0].write,
            Write::Create {
                id: None,
                generation: 0,
                ..
            }
        ),
        "a create accepted with its answer cut short is pending like one answered"
    );
    assert!(
        recorded(&nothing, &create, None).is_empty(),
        "a failed write is not recorded"
    );
    let assign_action = Action::CreateAssignment {
        relationship_id: "rel-1".into(),
        group_id: GROUP_A.into(),
        body: crate::microsoft::models::gdap::NewAccessAssignment {
            access_container: crate::microsoft::models::gdap::AccessContainer::security_group(
                GROUP_A,
            ),
            access_details: AccessDetails::from_role_ids([READERS]),
        },
    };
    let conflict = Applied::Assigned {
        group_id: GROUP_A.into(),
        id: None,
        roles: 1,
    };
    assert_eq!(
        recorded(
            &active_with(vec![], vec![]),
            &assign_action,
            Some(&conflict)
        )[0]
        .write,
        assign(GROUP_A, None),
        "a 409 is recorded like a success: it exists"
    );

    // Forgotten once shown, or once it no longer concerns the object.
    let shown = sent(seen(Some(rel(S::ApprovalPending))), lock("rel-1"), 3);
    assert!(recorded(&shown, &Action::Idle, None).is_empty());
    let unshown = sent(seen(Some(rel(S::Created))), lock("rel-1"), 3);
    assert_eq!(recorded(&unshown, &Action::Idle, None).len(), 1);
    let elsewhere = sent(
        active_with(vec![], vec![]),
        Write::Assign {
            relationship_id: "rel-gone".into(),
            group_id: GROUP_A.into(),
            id: None,
            role_ids: roles(&[READERS]),
        },
        3,
    );
    assert!(recorded(&elsewhere, &Action::Idle, None).is_empty());
    // A later write to the same thing replaces the record of the earlier one.
    let off = Write::Patch {
        id: "rel-1".into(),
        role_ids: None,
        duration_days: None,
        auto_extend: Some(false),
    };
    let flipped_back = sent(active_with(vec![], vec![]), off, 3);
    let on = Action::SetAutoExtend {
        id: "rel-1".into(),
        etag: String::new(),
        on: true,
        patch: Default::default(),
    };
    let done = Applied::Done {
        reason: "AutoExtendChanged",
        note: String::new(),
    };
    assert_eq!(
        recorded(&flipped_back, &on, Some(&done)),
        vec![Written {
            write: Write::Patch {
                id: "rel-1".into(),
                role_ids: None,
                duration_days: None,
                auto_extend: Some(true),
            },
            at: t
        }]
    );
    assert_eq!(
        next(&unreadable(true), &Action::Idle, None, t),
        None,
        "an unreadable side leaves the record alone"
    );
}

// ---- The access check: the partner user's delegated access, verified on a slow schedule ----

/// An active relationship whose access assignment is in place, last checked `ago` (never: `None`).
fn in_place_checked(ago: Option<Span>) -> Observed {
    let mut o = active_with(
        vec![assignment("as-1", GROUP_A, &[READERS], A::Active)],
        vec![],
    );
    o.access_verified_at = ago.map(|a| now() - a);
    o
}

fn verify() -> Action {
    Action::VerifyAccess {
        customer: CUSTOMER.into(),
        settling: false,
    }
}

#[test]
fn the_access_check_is_due_an_interval_after_the_last_one_and_only_with_the_access_in_place() {
    let t = timing();
    let observe = with(|i| i.management = ManagementPolicy::Observe);
    let pending_assignment = active_with(
        vec![assignment("as-1", GROUP_A, &[READERS], A::Pending)],
        vec![],
    );
    let mut never_pending = pending_assignment.clone();
    never_pending.access_verified_at = None;
    let mut other_roles = in_place_checked(None);
    other_roles.microsoft.as_mut().unwrap().assignments =
        vec![assignment("as-1", GROUP_A, &[HELPDESK], A::Active)];
    let no_groups = spec(|d| d.assignments.clear());
    let mut nothing_assigned = active_with(vec![], vec![]);
    nothing_assigned.access_verified_at = None;
    let mut approval = seen(Some(rel(S::ApprovalPending)));
    approval.access_verified_at = None;
    let mut terminated = seen(Some(rel(S::Terminated)));
    terminated.access_verified_at = None;
    let off = Timing {
        access_verify: Duration::ZERO,
        ..t
    };
    let rows: Vec<(&str, Intent, Observed, Timing, Action)> = vec![
        (
            "never checked: due at once",
            intent(),
            in_place_checked(None),
            t,
            verify(),
        ),
        (
            "checked an interval ago: due",
            intent(),
            in_place_checked(Some(Span::hours(1))),
            t,
            verify(),
        ),
        (
            "checked long ago (the operator was down): due once, not once per missed interval",
            intent(),
            in_place_checked(Some(Span::days(3))),
            t,
            verify(),
        ),
        (
            "checked 10 minutes ago: not due",
            intent(),
            in_place_checked(Some(Span::minutes(10))),
            t,
            Action::Idle,
        ),
        (
            "managementPolicy Observe checks too (it only reads)",
            observe.clone(),
            in_place_checked(None),
            t,
            verify(),
        ),
        (
            "Observe, checked 10 minutes ago: not due",
            observe,
            in_place_checked(Some(Span::minutes(10))),
            t,
            Action::Idle,
        ),
        (
            "an assignment still pending: the access is not in place, no check",
            intent(),
            never_pending,
            t,
            Action::Wait(Waiting::Assignments),
        ),
        (
            "the spec assigns no group: nobody has access through it, no check",
            no_groups,
            nothing_assigned,
            t,
            Action::Idle,
        ),
        (
            "not active (approval pending): no check",
            intent(),
            approval,
            t,
            Action::Wait(Waiting::Approval),
        ),
        (
            "terminated: no check",
            intent(),
            terminated,
            t,
            Action::Idle,
        ),
        (
            "--access-verify-interval 0 turns it off",
            intent(),
            in_place_checked(None),
            off,
            Action::Idle,
        ),
    ];
    for (what, intent, observed, timing, expected) in rows {
        let p = plan(&intent, &observed, &timing, now());
        assert_eq!(p.action, expected, "{what}");
    }
    // The check waits for the assignment's role change: other roles than the spec's are changed
    // first (the check runs once they match).
    let p = plan(&intent(), &other_roles, &t, now());
    assert!(
        matches!(p.action, Action::UpdateAssignment { .. }),
        "{:?}",
        p.action
    );
    assert!(!verify().writes(), "the access check only reads");
}

#[test]
fn the_access_check_due_time_is_pure_and_bounds_the_requeue() {
    let t = timing();
    let d = desired();
    let due = |o: &Observed| access_check_due_at(&d, o.microsoft.as_ref().unwrap(), o, &t, now());
    let last = now() - Span::minutes(10);
    assert_eq!(
        due(&in_place_checked(Some(Span::minutes(10)))),
        Some(last + Span::hours(1))
    );
    assert!(due(&in_place_checked(None)).is_some_and(|at| at <= now()));
    assert_eq!(due(&seen(Some(rel(S::ApprovalPending)))), None);
    assert_eq!(due(&seen(None)), None);
    // Not due yet: the next look comes no later than the due time (or the resync, if sooner).
    let almost = plan(
        &intent(),
        &in_place_checked(Some(Span::minutes(59) + Span::seconds(30))),
        &t,
        now(),
    );
    assert_eq!(almost.action, Action::Idle);
    assert_eq!(almost.requeue, Duration::from_secs(30));
    let later = plan(
        &intent(),
        &in_place_checked(Some(Span::minutes(10))),
        &t,
        now(),
    );
    assert_eq!(later.requeue, t.resync);
    // A check looks again at the resync (or the interval, when shorter).
    let checking = plan(&intent(), &in_place_checked(None), &t, now());
    assert_eq!(checking.requeue, t.resync);
    let short = Timing {
        access_verify: Duration::from_secs(20),
        ..t
    };
    let checking = plan(&intent(), &in_place_checked(None), &short, now());
    assert_eq!(checking.requeue, Duration::from_secs(20));
}

#[test]
fn the_first_check_waits_for_gdap_propagation_and_a_check_that_may_meet_it_looks_again_soon() {
    let t = timing();
    // The access was put in place 20 s ago: the first check comes 15 minutes after that.
    let mut fresh = in_place_checked(None);
    fresh.access_in_place_since = Some(now() - Span::seconds(20));
    let p = plan(&intent(), &fresh, &t, now());
    assert_eq!(p.action, Action::Idle);
    assert_eq!(
        p.requeue,
        t.resync.min(Duration::from_secs(15 * 60 - 20)),
        "looks again by the due time"
    );
    // This pass put it in place (the status does not say so yet): 15 minutes from now.
    fresh.access_in_place_since = None;
    let d = desired();
    let due = access_check_due_at(&d, fresh.microsoft.as_ref().unwrap(), &fresh, &t, now());
    assert_eq!(due, Some(now() + FIRST_ACCESS_CHECK_AFTER));
    // With a short interval the first check comes an interval after; while the access may still
    // propagate it is `settling` and looks again soon (backing off from the poll, at most the
    // interval).
    let short = Timing {
        access_verify: Duration::from_secs(10),
        ..t
    };
    fresh.access_in_place_since = Some(now() - Span::seconds(20));
    let p = plan(&intent(), &fresh, &short, now());
    assert_eq!(
        p.action,
        Action::VerifyAccess {
            customer: CUSTOMER.into(),
            settling: true
        }
    );
    assert_eq!(p.requeue, Duration::from_secs(10));
    let slow_poll = Timing {
        access_verify: Duration::from_secs(3600),
        ..t
    };
    fresh.access_in_place_since = Some(now() - Span::minutes(16));
    let p = plan(&intent(), &fresh, &slow_poll, now());
    assert_eq!(
        p.action,
        Action::VerifyAccess {
            customer: CUSTOMER.into(),
            settling: true
        }
    );
    assert_eq!(p.requeue, t.resync.min(Duration::from_secs(16 * 60)));
    // After --propagation-timeout a refusal is believed.
    fresh.access_in_place_since = Some(now() - Span::hours(2));
    assert_eq!(plan(&intent(), &fresh, &t, now()).action, verify());
    // Once a check found something, later checks are never settling.
    let mut found = in_place_checked(Some(Span::hours(1)));
    found.access_in_place_since = Some(now() - Span::seconds(20));
    assert_eq!(plan(&intent(), &found, &t, now()).action, verify());
}
