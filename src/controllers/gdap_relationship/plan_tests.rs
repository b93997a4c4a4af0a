//! Table tests of `plan`: each row is a situation and the step the controller must take.

use super::desired::{Desired, Intent};
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
        Action::Wait(w) => format!("Wait {w:?}"),
        Action::Idle => "Idle".into(),
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
            without_intent,
            "RecordCreateIntent",
        ),
        (
            "intent recorded and nothing found by name: create",
            intent(),
            with_intent.clone(),
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
