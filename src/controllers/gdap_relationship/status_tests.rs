//! Table tests of the report step: which conditions a situation produces.

use super::desired::Desired;
use super::plan::{Action, Observed, Plan, Refusal, RemoteAssignment, RemoteRelationship, Waiting};
use super::status::{Inputs, Outcome, build};
use crate::api::GdapRelationshipStatus;
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const GROUP: &str = "51bd8388-8ea6-410c-81dc-8481960ccaf7";
const READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn desired(auto_extend: bool) -> Desired {
    Desired {
        display_name: "n".into(),
        customer: "c".into(),
        role_ids: BTreeSet::from([READERS.to_string()]),
        duration_days: 730,
        auto_extend,
        assignments: BTreeMap::from([(GROUP.to_string(), BTreeSet::from([READERS.to_string()]))]),
        adopt_id: None,
        deletion: Default::default(),
        management: Default::default(),
        successor_before_days: None,
    }
}

fn remote(status: &str, ends_in_days: i64) -> RemoteRelationship {
    RemoteRelationship {
        id: "rel-1".into(),
        status: status.into(),
        role_ids: BTreeSet::from([READERS.to_string()]),
        activated_at: Some(now() - Span::days(1)),
        ends_at: Some(now() + Span::days(ends_in_days)),
        ..Default::default()
    }
}

fn assignment(state: &str) -> RemoteAssignment {
    RemoteAssignment {
        id: "a".into(),
        group_id: GROUP.into(),
        role_ids: BTreeSet::from([READERS.to_string()]),
        status: state.into(),
        etag: None,
    }
}

/// (type, status, reason) of every condition.
fn conditions(
    desired: Desired,
    observed: Observed,
    action: Action,
    outcome: Outcome,
) -> Vec<(String, String, String)> {
    let plan = Plan {
        action,
        requeue: Duration::ZERO,
    };
    let previous = GdapRelationshipStatus::default();
    let d = Ok(desired);
    let status = build(&Inputs {
        desired: &d,
        observed: &observed,
        plan: &plan,
        outcome: &outcome,
        previous: &previous,
        generation: Some(3),
        now: now(),
    });
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(3))
    );
    status
        .conditions
        .iter()
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
        .collect()
}

fn find(conds: &[(String, String, String)], type_: &str) -> (String, String) {
    let c = conds.iter().find(|c| c.0 == type_).unwrap();
    (c.1.clone(), c.2.clone())
}

fn pair(status: &str, reason: &str) -> (String, String) {
    (status.to_string(), reason.to_string())
}

#[test]
fn ready_only_when_active_and_every_assignment_is_active() {
    let observed = |a: &str| Observed {
        relationship: Some(remote("active", 400)),
        assignments: vec![assignment(a)],
        ..Default::default()
    };
    let ready = conditions(desired(true), observed("active"), Action::Idle, Outcome::Ok);
    assert_eq!(find(&ready, "Ready"), pair("True", "Active"));
    assert_eq!(
        find(&ready, "AccessAssigned"),
        pair("True", "AssignmentsActive")
    );
    assert_eq!(find(&ready, "Expiring"), pair("False", "NotExpiring"));
    let pending = conditions(
        desired(true),
        observed("pending"),
        Action::Wait(Waiting::Assignments),
        Outcome::Ok,
    );
    assert_eq!(find(&pending, "Ready"), pair("False", "AssignmentsPending"));
}

#[test]
fn approval_pending_immutable_and_overdue_termination_are_named() {
    let pending = Observed {
        relationship: Some(remote("approvalPending", 0)),
        ..Default::default()
    };
    let conds = conditions(
        desired(true),
        pending.clone(),
        Action::Wait(Waiting::Approval),
        Outcome::Ok,
    );
    assert_eq!(find(&conds, "Approved"), pair("False", "ApprovalPending"));
    assert_eq!(find(&conds, "Ready"), pair("False", "ApprovalPending"));
    let immutable = Action::Refuse(Refusal::Immutable {
        roles_changed: true,
        duration_changed: false,
    });
    let conds = conditions(desired(true), pending, immutable, Outcome::Ok);
    assert_eq!(find(&conds, "Synced"), pair("False", "RolesImmutable"));
    assert_eq!(find(&conds, "Ready"), pair("False", "RolesImmutable"));
    let terminating = Observed {
        relationship: Some(remote("terminating", 10)),
        deleting: true,
        ..Default::default()
    };
    let conds = conditions(
        desired(true),
        terminating,
        Action::Wait(Waiting::TerminationOverdue),
        Outcome::Ok,
    );
    assert_eq!(find(&conds, "Synced"), pair("False", "TerminationTimedOut"));
}

#[test]
fn expiring_within_30_days_and_failures_reach_synced() {
    let soon = Observed {
        relationship: Some(remote("active", 29)),
        assignments: vec![assignment("active")],
        ..Default::default()
    };
    let conds = conditions(desired(false), soon.clone(), Action::Idle, Outcome::Ok);
    assert_eq!(find(&conds, "Expiring"), pair("True", "ExpiresSoon"));
    let failed = Outcome::Failed {
        reason: "CredentialsInvalid",
        message: "refresh token expired".into(),
        transient: false,
    };
    let conds = conditions(desired(false), soon, Action::Idle, failed);
    assert_eq!(find(&conds, "Synced"), pair("False", "CredentialsInvalid"));
    assert_eq!(
        find(&conds, "Ready"),
        pair("False", "CredentialsInvalid"),
        "a permanent failure is not Ready"
    );
}
