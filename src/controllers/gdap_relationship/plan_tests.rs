//! Table tests of `plan`: each row is a situation and the step the controller must take.

use super::desired::Desired;
use super::plan::*;
use crate::api::{DeletionPolicy, ManagementPolicy};
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
        display_name: "contoso-1234abcd".into(),
        customer: CUSTOMER.into(),
        role_ids: roles(&[READERS, HELPDESK]),
        duration_days: 730,
        auto_extend: true,
        assignments: BTreeMap::from([(GROUP_A.to_string(), roles(&[READERS]))]),
        adopt_id: None,
        deletion: DeletionPolicy::Delete,
        management: ManagementPolicy::Manage,
        successor_before_days: None,
    }
}

fn remote(status: &str) -> RemoteRelationship {
    RemoteRelationship {
        id: "rel-1".into(),
        display_name: "contoso-1234abcd".into(),
        customer: Some(CUSTOMER.into()),
        status: status.into(),
        role_ids: roles(&[READERS, HELPDESK]),
        duration_days: Some(730),
        auto_extend: true,
        activated_at: (status == "active").then(|| now() - Span::days(10)),
        ends_at: (status == "active").then(|| now() + Span::days(720)),
        modified_at: None,
        etag: Some("W/\"1\"".into()),
    }
}

fn assignment(id: &str, group: &str, role_ids: &[&str], status: &str) -> RemoteAssignment {
    RemoteAssignment {
        id: id.into(),
        group_id: group.into(),
        role_ids: roles(role_ids),
        status: status.into(),
        etag: None,
    }
}

fn observed(
    relationship: Option<RemoteRelationship>,
    assignments: Vec<RemoteAssignment>,
) -> Observed {
    Observed {
        relationship,
        assignments,
        ..Default::default()
    }
}

fn timing() -> Timing {
    Timing {
        poll: Duration::from_secs(5),
        resync: Duration::from_secs(300),
        termination_timeout: Duration::from_secs(120),
        failed_retry: Duration::from_secs(3600),
    }
}

fn step(d: Result<Desired, String>, o: &Observed) -> Action {
    plan(&d, o, &timing(), now()).action
}

#[test]
fn lifecycle_table() {
    let mut other_customer = remote("created");
    other_customer.customer = Some("99999999-2222-3333-4444-555555555555".into());
    let mut changed_roles = desired();
    changed_roles.role_ids = roles(&[READERS]);
    let mut changed_duration = desired();
    changed_duration.duration_days = 365;
    let mut observe = desired();
    observe.management = ManagementPolicy::Observe;
    let mut adopt = desired();
    adopt.adopt_id = Some("given-id".into());
    let mut no_extend = desired();
    no_extend.auto_extend = false;
    let mut regrouped = desired();
    regrouped.assignments = BTreeMap::from([(GROUP_B.to_string(), roles(&[HELPDESK]))]);
    let mut more_roles = desired();
    more_roles.assignments = BTreeMap::from([(GROUP_A.to_string(), roles(&[READERS, HELPDESK]))]);
    let active_a = || assignment("as-1", GROUP_A, &[READERS], "active");

    let rows: Vec<(&str, Result<Desired, String>, Observed, Action)> = vec![
        (
            "invalid spec refuses",
            Err("spec.roles[0]: unknown".into()),
            observed(None, vec![]),
            Action::Refuse(Refusal::InvalidSpec("spec.roles[0]: unknown".into())),
        ),
        (
            "nothing yet: create",
            Ok(desired()),
            observed(None, vec![]),
            Action::Create,
        ),
        (
            "observe never creates",
            Ok(observe.clone()),
            observed(None, vec![]),
            Action::Wait(Waiting::NothingToObserve),
        ),
        (
            "adopt id not found",
            Ok(adopt),
            observed(None, vec![]),
            Action::Refuse(Refusal::AdoptNotFound("given-id".into())),
        ),
        (
            "draft matching spec: lock",
            Ok(desired()),
            observed(Some(remote("created")), vec![]),
            Action::Lock,
        ),
        (
            "draft differing: update first",
            Ok(changed_roles.clone()),
            observed(Some(remote("created")), vec![]),
            Action::UpdateDraft,
        ),
        (
            "observe leaves drafts alone",
            Ok(observe.clone()),
            observed(Some(remote("created")), vec![]),
            Action::Idle,
        ),
        (
            "name taken by another customer",
            Ok(desired()),
            observed(Some(other_customer), vec![]),
            Action::Refuse(Refusal::CustomerMismatch {
                found: "99999999-2222-3333-4444-555555555555".into(),
            }),
        ),
        (
            "pending approval: wait",
            Ok(desired()),
            observed(Some(remote("approvalPending")), vec![]),
            Action::Wait(Waiting::Approval),
        ),
        (
            "roles edited after lock",
            Ok(changed_roles.clone()),
            observed(Some(remote("approvalPending")), vec![]),
            Action::Refuse(Refusal::Immutable {
                roles_changed: true,
                duration_changed: false,
            }),
        ),
        (
            "duration edited while active",
            Ok(changed_duration),
            observed(Some(remote("active")), vec![active_a()]),
            Action::Refuse(Refusal::Immutable {
                roles_changed: false,
                duration_changed: true,
            }),
        ),
        (
            "activating: wait",
            Ok(desired()),
            observed(Some(remote("activating")), vec![]),
            Action::Wait(Waiting::Activation),
        ),
        (
            "active without groups: assign",
            Ok(desired()),
            observed(Some(remote("active")), vec![]),
            Action::CreateAssignment {
                group_id: GROUP_A.into(),
                role_ids: roles(&[READERS]),
            },
        ),
        (
            "assignment pending: wait",
            Ok(desired()),
            observed(
                Some(remote("active")),
                vec![assignment("as-1", GROUP_A, &[READERS], "pending")],
            ),
            Action::Wait(Waiting::Assignments),
        ),
        (
            "all active: idle",
            Ok(desired()),
            observed(Some(remote("active")), vec![active_a()]),
            Action::Idle,
        ),
        (
            "roles of a group changed: patch",
            Ok(more_roles),
            observed(Some(remote("active")), vec![active_a()]),
            Action::UpdateAssignment {
                id: "as-1".into(),
                group_id: GROUP_A.into(),
                role_ids: roles(&[READERS, HELPDESK]),
            },
        ),
        (
            "group replaced: create the new one first",
            Ok(regrouped.clone()),
            observed(Some(remote("active")), vec![active_a()]),
            Action::CreateAssignment {
                group_id: GROUP_B.into(),
                role_ids: roles(&[HELPDESK]),
            },
        ),
        (
            "unlisted group: delete",
            Ok(regrouped),
            observed(
                Some(remote("active")),
                vec![
                    active_a(),
                    assignment("as-2", GROUP_B, &[HELPDESK], "active"),
                ],
            ),
            Action::DeleteAssignment {
                id: "as-1".into(),
                group_id: GROUP_A.into(),
            },
        ),
        (
            "removed out of band: restore",
            Ok(desired()),
            observed(
                Some(remote("active")),
                vec![assignment("as-1", GROUP_A, &[READERS], "deleted")],
            ),
            Action::CreateAssignment {
                group_id: GROUP_A.into(),
                role_ids: roles(&[READERS]),
            },
        ),
        (
            "autoExtend turned off: patch",
            Ok(no_extend),
            observed(Some(remote("active")), vec![active_a()]),
            Action::SetAutoExtend(false),
        ),
        (
            "observe reports an active one",
            Ok(observe),
            observed(Some(remote("active")), vec![]),
            Action::Idle,
        ),
        (
            "terminated by the customer: report, never recreate",
            Ok(desired()),
            observed(Some(remote("terminated")), vec![]),
            Action::Idle,
        ),
        (
            "expired: report",
            Ok(desired()),
            observed(Some(remote("expired")), vec![]),
            Action::Idle,
        ),
        (
            "unknown future status: report",
            Ok(desired()),
            observed(Some(remote("somethingNew")), vec![]),
            Action::Idle,
        ),
    ];
    for (name, d, o, expected) in rows {
        assert_eq!(step(d, &o), expected, "{name}");
    }
}

#[test]
fn permanently_failed_assignments_wait_before_a_retry_unless_the_spec_changes() {
    let mut o = observed(Some(remote("active")), vec![]);
    o.failed_assignments.insert(
        GROUP_A.into(),
        FailedAssignment {
            role_ids: roles(&[READERS]),
            at: now() - Span::minutes(5),
        },
    );
    assert_eq!(
        step(Ok(desired()), &o),
        Action::Idle,
        "recent failure with the same roles is not retried"
    );
    let mut changed = desired();
    changed
        .assignments
        .insert(GROUP_A.into(), roles(&[READERS, HELPDESK]));
    assert!(
        matches!(step(Ok(changed), &o), Action::CreateAssignment { .. }),
        "a spec change retries at once"
    );
    o.failed_assignments.get_mut(GROUP_A).unwrap().at = now() - Span::hours(2);
    assert!(
        matches!(step(Ok(desired()), &o), Action::CreateAssignment { .. }),
        "an old failure is retried"
    );
}

#[test]
fn deletion_table() {
    let mut orphan = desired();
    orphan.deletion = DeletionPolicy::Orphan;
    let deleting = |r: Option<RemoteRelationship>, requested: Option<DateTime<Utc>>| Observed {
        relationship: r,
        deleting: true,
        termination_requested_at: requested,
        ..Default::default()
    };
    let rows: Vec<(&str, Result<Desired, String>, Observed, Action)> = vec![
        (
            "orphan leaves it",
            Ok(orphan),
            deleting(Some(remote("active")), None),
            Action::Release(ReleaseReason::Orphaned),
        ),
        (
            "nothing in Microsoft",
            Ok(desired()),
            deleting(None, None),
            Action::Release(ReleaseReason::NothingToDelete),
        ),
        (
            "draft is deleted",
            Ok(desired()),
            deleting(Some(remote("created")), None),
            Action::DeleteDraft,
        ),
        (
            "pending approval cannot be withdrawn",
            Ok(desired()),
            deleting(Some(remote("approvalPending")), None),
            Action::Release(ReleaseReason::CannotWithdraw),
        ),
        (
            "active is terminated",
            Ok(desired()),
            deleting(Some(remote("active")), None),
            Action::Terminate,
        ),
        (
            "terminating: wait",
            Ok(desired()),
            deleting(Some(remote("terminating")), Some(now() - Span::seconds(30))),
            Action::Wait(Waiting::Termination),
        ),
        (
            "terminating too long: report and check at resync",
            Ok(desired()),
            deleting(
                Some(remote("terminationRequested")),
                Some(now() - Span::seconds(121)),
            ),
            Action::Wait(Waiting::TerminationOverdue),
        ),
        (
            "terminated: done",
            Ok(desired()),
            deleting(Some(remote("terminated")), Some(now())),
            Action::Release(ReleaseReason::Done),
        ),
        (
            "invalid spec still deletes",
            Err("bad".into()),
            deleting(Some(remote("active")), None),
            Action::Terminate,
        ),
    ];
    for (name, d, o, expected) in rows {
        assert_eq!(step(d, &o), expected, "{name}");
    }
}

#[test]
fn steady_state_requeues_at_the_next_expiry_threshold() {
    let t = timing();
    let mut r = remote("active");
    r.ends_at = Some(now() + Span::days(30) + Span::seconds(90));
    assert_eq!(
        steady_requeue(&r, &t, now()),
        Duration::from_secs(90),
        "30-day threshold in 90 s"
    );
    r.ends_at = Some(now() + Span::days(400));
    assert_eq!(
        steady_requeue(&r, &t, now()),
        t.resync,
        "far away: the resync interval"
    );
    r.ends_at = Some(now() + Span::days(3));
    let long = Timing {
        resync: Duration::from_secs(10 * 86400),
        ..t
    };
    assert_eq!(
        steady_requeue(&r, &long, now()),
        Duration::from_secs(2 * 86400),
        "next is the 1-day threshold"
    );
    r.ends_at = Some(now() - Span::days(1));
    assert_eq!(steady_requeue(&r, &t, now()), t.resync);
}

#[test]
fn expiry_warnings_fire_once_per_threshold() {
    let ends = now() + Span::days(29);
    assert_eq!(expiry_warnings_due(ends, now(), &[]), [30]);
    assert_eq!(expiry_warnings_due(ends, now(), &[30]), Vec::<i64>::new());
    assert_eq!(
        expiry_warnings_due(now() + Span::days(6), now(), &[30]),
        [7]
    );
    assert_eq!(
        expiry_warnings_due(now() + Span::hours(12), now(), &[30]),
        [7, 1],
        "a jump warns for every threshold crossed"
    );
    assert_eq!(
        expiry_warnings_due(now() + Span::days(31), now(), &[]),
        Vec::<i64>::new()
    );
    assert_eq!(
        expiry_warnings_due(now() - Span::hours(1), now(), &[]),
        Vec::<i64>::new(),
        "already ended"
    );
}
