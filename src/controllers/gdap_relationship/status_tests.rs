//! Table tests of the report step: which status a situation produces.

use super::act::Applied;
use super::desired::{Desired, Intent};
use super::observed::{
    Observed, Remote, RemoteAssignment, RemoteRelationship, RemoteUpdate, Unreadable,
};
use super::status::{Inputs, Outcome, build};
use super::step::{Action, Plan, PlanError, Waiting};
use crate::api::GdapRelationshipStatus;
use crate::api::conditions::reasons;
use crate::controllers::failure::Failure;
use crate::microsoft::models::gdap::{
    AccessAssignmentStatus as A, OperationStatus, RelationshipStatus as S,
};
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const GROUP: &str = "51bd8388-8ea6-410c-81dc-8481960ccaf7";
const READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
const HELPDESK: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn intent(auto_extend: bool) -> Intent {
    Intent {
        display_name: "n".into(),
        name_from_uid: false,
        customer: "c".into(),
        adopt_id: None,
        deletion: Default::default(),
        management: Default::default(),
        spec: Ok(Desired {
            role_ids: BTreeSet::from([READERS.to_string()]),
            duration_days: 730,
            auto_extend,
            assignments: BTreeMap::from([(
                GROUP.to_string(),
                BTreeSet::from([READERS.to_string()]),
            )]),
            renewal: None,
        }),
    }
}

fn remote(status: S, ends_in_days: i64) -> RemoteRelationship {
    RemoteRelationship {
        id: "rel-1".into(),
        display_name: "n".into(),
        customer: None,
        customer_name: Some("Contoso Ltd".into()),
        status,
        role_ids: BTreeSet::from([READERS.to_string()]),
        duration_days: Some(730),
        auto_extend: false,
        activated_at: Some(now() - Span::days(1)),
        ends_at: Some(now() + Span::days(ends_in_days)),
        modified_at: None,
        etag: None,
    }
}

fn assignment(state: A) -> RemoteAssignment {
    RemoteAssignment {
        id: "a".into(),
        group_id: GROUP.into(),
        role_ids: BTreeSet::from([READERS.to_string()]),
        status: state,
        etag: None,
    }
}

fn observed(rel: RemoteRelationship, assignments: Vec<RemoteAssignment>) -> Observed {
    Observed {
        deleting: false,
        create_intent: true,
        recorded_id: Some(rel.id.clone()),
        withdrawal_recorded: false,
        generation: 0,
        failed_assignments: BTreeMap::new(),
        microsoft: Ok(Remote {
            relationship: Some(rel),
            assignments,
            ..Default::default()
        }),
        consents: Ok(Vec::new()),
        access_verified_at: None,
        access_in_place_since: None,
    }
}

struct Case {
    intent: Intent,
    observed: Observed,
    action: Action,
    outcome: Outcome,
    previous: GdapRelationshipStatus,
}

impl Case {
    fn new(observed: Observed, action: Action) -> Case {
        Case {
            intent: intent(true),
            observed,
            action,
            outcome: Outcome::Applied(Applied::Nothing),
            previous: GdapRelationshipStatus::default(),
        }
    }

    fn build(&self) -> GdapRelationshipStatus {
        let plan = Plan {
            action: self.action.clone(),
            requeue: Duration::ZERO,
        };
        let status = build(&Inputs {
            intent: &self.intent,
            observed: &self.observed,
            plan: &plan,
            outcome: &self.outcome,
            refused_group: None,
            previous: &self.previous,
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
    }
}

fn condition(status: &GdapRelationshipStatus, type_: &str) -> (String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status.clone(), c.reason.clone())
}

fn pair(status: &str, reason: &str) -> (String, String) {
    (status.to_string(), reason.to_string())
}

#[test]
fn ready_only_when_active_and_every_assignment_is_active() {
    let ready = Case::new(
        observed(remote(S::Active, 400), vec![assignment(A::Active)]),
        Action::Idle,
    )
    .build();
    assert_eq!(condition(&ready, "Ready"), pair("True", "Active"));
    assert_eq!(
        condition(&ready, "AccessAssigned"),
        pair("True", "AssignmentsActive")
    );
    assert_eq!(condition(&ready, "Expiring"), pair("False", "NotExpiring"));
    assert_eq!(ready.failed_attempts, 0);
    assert_eq!(
        ready.customer_display_name.as_deref(),
        Some("Contoso Ltd"),
        "the customer's name from Microsoft, for kubectl get"
    );
    let pending = Case::new(
        observed(remote(S::Active, 400), vec![assignment(A::Pending)]),
        Action::Wait(Waiting::Assignments),
    )
    .build();
    assert_eq!(
        condition(&pending, "Ready"),
        pair("False", "AssignmentsPending")
    );
}

#[test]
fn a_running_role_change_shows_as_pending_update() {
    let mut seen = observed(remote(S::Active, 400), vec![assignment(A::Active)]);
    seen.microsoft.as_mut().unwrap().updates = vec![RemoteUpdate {
        operation_id: "op-7".into(),
        assignment_id: "a".into(),
        role_ids: BTreeSet::from([HELPDESK.to_string()]),
        status: OperationStatus::Running,
        modified_at: Some(now()),
    }];
    let status = Case::new(seen, Action::Wait(Waiting::Assignments)).build();
    let pending = status.access_assignments[0].pending_update.clone().unwrap();
    assert_eq!(pending.operation_id.as_deref(), Some("op-7"));
    assert_eq!(pending.state.as_deref(), Some("running"));
    assert_eq!(
        condition(&status, "AccessAssigned"),
        pair("False", "AssignmentUpdating")
    );
}

#[test]
fn an_accepted_role_change_is_remembered_at_once() {
    let mut case = Case::new(
        observed(remote(S::Active, 400), vec![assignment(A::Active)]),
        Action::Idle,
    );
    case.outcome = Outcome::Applied(Applied::UpdateAccepted {
        group_id: GROUP.into(),
        operation_id: Some("op-9".into()),
        role_ids: vec![HELPDESK.into()],
    });
    let status = case.build();
    let pending = status.access_assignments[0].pending_update.clone().unwrap();
    assert_eq!(pending.operation_id.as_deref(), Some("op-9"));
    assert_eq!(pending.roles, vec![HELPDESK.to_string()]);
}

#[test]
fn approval_pending_immutable_and_overdue_termination_are_named() {
    let pending = observed(remote(S::ApprovalPending, 0), vec![]);
    let status = Case::new(pending.clone(), Action::Wait(Waiting::Approval)).build();
    assert_eq!(
        condition(&status, "Approved"),
        pair("False", "ApprovalPending")
    );
    assert_eq!(
        condition(&status, "Ready"),
        pair("False", "ApprovalPending")
    );
    assert!(status.approval_url.unwrap().ends_with("/rel-1"));
    let immutable = Action::Refuse(PlanError::Immutable {
        roles_changed: true,
        duration_changed: false,
    });
    let status = Case::new(pending, immutable).build();
    assert_eq!(
        condition(&status, "Synced"),
        pair("False", "RolesImmutable")
    );
    assert_eq!(condition(&status, "Ready"), pair("False", "RolesImmutable"));
    let mut terminating = observed(remote(S::Terminating, 10), vec![]);
    terminating.deleting = true;
    let status = Case::new(terminating, Action::Wait(Waiting::TerminationOverdue)).build();
    assert_eq!(
        condition(&status, "Synced"),
        pair("False", "TerminationTimedOut")
    );
}

#[test]
fn failures_count_up_and_a_success_resets_the_count() {
    let soon = observed(remote(S::Active, 29), vec![assignment(A::Active)]);
    let mut case = Case::new(soon, Action::Idle);
    case.intent = intent(false);
    let ok = case.build();
    assert_eq!(condition(&ok, "Expiring"), pair("True", "ExpiresSoon"));
    case.outcome = Outcome::Failed(Failure::new(
        reasons::CREDENTIALS_INVALID,
        "refresh token expired",
        false,
    ));
    case.previous.failed_attempts = 2;
    let failed = case.build();
    assert_eq!(
        condition(&failed, "Synced"),
        pair("False", "CredentialsInvalid")
    );
    assert_eq!(
        condition(&failed, "Ready"),
        pair("False", "CredentialsInvalid"),
        "a permanent failure is not Ready"
    );
    assert_eq!(failed.failed_attempts, 3);
    assert!(failed.last_failure_time.is_some());
    case.previous = failed.clone();
    case.outcome = Outcome::Applied(Applied::Nothing);
    let recovered = case.build();
    assert_eq!(recovered.failed_attempts, 0);
    assert_eq!(
        recovered.last_failure_time, failed.last_failure_time,
        "the last failure stays on record"
    );
}

#[test]
fn unreadable_microsoft_keeps_what_was_known_and_changes_only_synced() {
    let known = Case::new(
        observed(remote(S::Active, 400), vec![assignment(A::Active)]),
        Action::Idle,
    )
    .build();
    let mut blind = observed(remote(S::Active, 400), vec![]);
    blind.microsoft = Err(Unreadable { transient: true });
    let mut case = Case::new(blind, Action::Wait(Waiting::Unreadable));
    case.previous = known.clone();
    case.outcome = Outcome::Failed(Failure::new(reasons::KUBERNETES_ERROR, "timeout", true));
    let status = case.build();
    assert_eq!(status.relationship_id, known.relationship_id);
    assert_eq!(status.access_assignments, known.access_assignments);
    assert_eq!(
        condition(&status, "Synced"),
        pair("False", "KubernetesError")
    );
    assert_eq!(condition(&status, "Ready"), pair("True", "Active"));
    assert_eq!(status.failed_attempts, 1);
    case.outcome = Outcome::Failed(Failure::new(reasons::CREDENTIALS_INVALID, "revoked", false));
    let status = case.build();
    assert_eq!(
        condition(&status, "Ready"),
        pair("False", "CredentialsInvalid"),
        "a permanent failure is not hidden behind the last known Ready"
    );
}

#[test]
fn deletion_without_credentials_says_how_to_proceed() {
    let mut blind = observed(remote(S::Active, 400), vec![]);
    blind.deleting = true;
    blind.microsoft = Err(Unreadable { transient: false });
    let mut case = Case::new(blind, Action::Wait(Waiting::Unreadable));
    case.outcome = Outcome::Failed(Failure::new(
        reasons::CREDENTIALS_INVALID,
        "Secret ns/creds not found",
        false,
    ));
    let status = case.build();
    let synced = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Synced")
        .unwrap();
    assert_eq!(synced.reason, "CredentialsNeededForDeletion");
    assert!(synced.message.contains("restore the credentials Secret"));
    assert!(synced.message.contains("deletionPolicy: Orphan"));
}

fn synced_of(status: &GdapRelationshipStatus) -> (String, String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Synced")
        .unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

#[test]
fn deletion_waiting_for_consents_names_them_and_keeps_ready() {
    let mut waiting = observed(remote(S::Active, 400), vec![assignment(A::Active)]);
    waiting.deleting = true;
    waiting.consents = Ok(vec!["billing".into(), "reporting".into()]);
    let status = Case::new(waiting, Action::Wait(Waiting::Consents)).build();
    let (s, reason, message) = synced_of(&status);
    assert_eq!((s.as_str(), reason.as_str()), ("True", "Terminating"));
    assert!(
        message.contains("AppConsent(s) billing, reporting")
            && message.contains("remove their consents first"),
        "{message}"
    );
    assert_eq!(
        condition(&status, "Ready"),
        pair("True", "Active"),
        "the relationship is still in force while the consents are removed"
    );
}

#[test]
fn deletion_that_cannot_list_the_consents_says_so_not_credentials() {
    let mut blind = observed(remote(S::Active, 400), vec![assignment(A::Active)]);
    blind.deleting = true;
    blind.consents = Err(Unreadable { transient: false });
    let mut case = Case::new(blind, Action::Wait(Waiting::Unreadable));
    case.outcome = Outcome::Failed(Failure::new(
        reasons::KUBERNETES_FORBIDDEN,
        "listing AppConsents in namespace team-a was refused",
        false,
    ));
    let (s, reason, message) = synced_of(&case.build());
    assert_eq!(
        (s.as_str(), reason.as_str()),
        ("False", "KubernetesForbidden")
    );
    assert!(message.contains("listing AppConsents"), "{message}");
}

#[test]
fn a_created_relationship_is_recorded_from_microsofts_answer() {
    let mut nothing = observed(remote(S::Created, 0), vec![]);
    nothing.microsoft.as_mut().unwrap().relationship = None;
    let mut case = Case::new(nothing, Action::Idle);
    let mut created = remote(S::Created, 0);
    created.id = "new-id".into();
    case.outcome = Outcome::Applied(Applied::Created(created));
    let status = case.build();
    assert_eq!(status.relationship_id.as_deref(), Some("new-id"));
    assert_eq!(status.state.as_deref(), Some("created"));
}

#[test]
fn the_writes_a_read_does_not_show_yet_are_recorded_in_the_status_itself() {
    let lock = Action::Lock { id: "rel-1".into() };
    let mut created = remote(S::Created, 0);
    created.id = "rel-1".into();
    let status = Case::new(observed(created, vec![]), lock.clone()).build();
    let recorded = status.pending_writes.expect("the lock is recorded");
    let pending = super::writes::Pending::parse(Some(&recorded)).unwrap();
    assert_eq!(
        pending.0.iter().map(|w| &w.write).collect::<Vec<_>>(),
        [&super::writes::Write::Lock { id: "rel-1".into() }]
    );

    // The next read shows the lock: the record is emptied (the field leaves the status).
    let mut locked = remote(S::ApprovalPending, 0);
    locked.id = "rel-1".into();
    let mut shown = observed(locked, vec![]);
    shown.microsoft.as_mut().unwrap().pending = pending.clone();
    let mut case = Case::new(shown, Action::Idle);
    case.previous.pending_writes = Some(recorded.clone());
    assert_eq!(case.build().pending_writes, None);

    // Microsoft unreadable: the record stays as it was.
    let mut unread = observed(remote(S::Created, 0), vec![]);
    unread.microsoft = Err(Unreadable { transient: true });
    let mut case = Case::new(unread, Action::Idle);
    case.previous.pending_writes = Some(recorded.clone());
    assert_eq!(case.build().pending_writes, Some(recorded));
}

fn with_successor(state: S) -> Observed {
    let mut o = observed(remote(S::Active, 20), vec![assignment(A::Active)]);
    let mut successor = remote(state, 730);
    successor.id = "rel-2".into();
    successor.display_name = "n-r1".into();
    o.microsoft.as_mut().unwrap().successor = Some(super::observed::Linked {
        generation: 1,
        relationship: successor,
        assignments: vec![assignment(A::Active)],
        updates: vec![],
        termination: None,
        withdrawal_recorded: false,
    });
    o
}

#[test]
fn a_successor_is_shown_with_its_link_and_the_renewing_condition() {
    let status = Case::new(with_successor(S::ApprovalPending), Action::Idle).build();
    let successor = status.successor.clone().expect("a successor in status");
    assert_eq!(successor.id.as_deref(), Some("rel-2"));
    assert_eq!(successor.state.as_deref(), Some("approvalPending"));
    assert!(successor.approval_url.unwrap().ends_with("/rel-2"));
    assert_eq!(successor.reason, "Renewal");
    assert_eq!(
        condition(&status, "Renewing"),
        pair("True", "SuccessorApprovalPending")
    );
    assert_eq!(
        condition(&status, "Ready"),
        pair("True", "Active"),
        "the predecessor serves meanwhile"
    );
    let none = Case::new(
        observed(remote(S::Active, 400), vec![assignment(A::Active)]),
        Action::Idle,
    )
    .build();
    assert_eq!(condition(&none, "Renewing"), pair("False", "NotRenewing"));
}

#[test]
fn the_hand_over_switches_the_status_to_the_successor_and_keeps_ready() {
    let mut case = Case::new(with_successor(S::Active), Action::Idle);
    case.previous = Case::new(with_successor(S::Active), Action::Idle).build();
    case.outcome = Outcome::Applied(Applied::HandedOver {
        generation: 1,
        relationship_id: "rel-2".into(),
    });
    let status = case.build();
    assert_eq!(status.relationship_id.as_deref(), Some("rel-2"));
    assert!(status.successor.is_none());
    let previous = &status.previous_relationships;
    assert_eq!(previous.len(), 1);
    assert_eq!(previous[0].id, "rel-1");
    assert_eq!(previous[0].why, "Renewal");
    assert!(previous[0].ended_at.is_some());
    assert_eq!(condition(&status, "Ready"), pair("True", "Active"));
    assert_eq!(condition(&status, "Renewing"), pair("False", "NotRenewing"));
    assert!(
        status.ends_at.unwrap().0.as_second() > now().timestamp() + 700 * 86_400,
        "the end date is the successor's"
    );
}

#[test]
fn writes_microsoft_does_not_show_yet_are_described_as_the_effective_state() {
    use super::pending::{Awaited, Write, Written};
    // Locked a moment ago; the read still says `created`.
    let mut o = observed(remote(S::Created, 700), vec![]);
    let since = now() - Span::seconds(7);
    o.microsoft.as_mut().unwrap().pending.0.push(Written {
        write: Write::Lock { id: "rel-1".into() },
        at: since,
    });
    let case = Case::new(
        o,
        Action::Wait(Waiting::Propagating {
            what: Awaited::Lock,
            since,
        }),
    );
    let status = case.build();
    assert_eq!(status.state.as_deref(), Some("approvalPending"));
    assert!(
        status.approval_url.is_some(),
        "the link is good from the lock on"
    );
    assert_eq!(
        condition(&status, "Approved"),
        pair("False", reasons::APPROVAL_PENDING)
    );
    assert_eq!(
        condition(&status, "Synced"),
        pair("True", reasons::PROPAGATING)
    );
    let synced = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Synced")
        .unwrap();
    assert!(
        synced.message.contains("7s")
            && synced
                .message
                .contains("lock for approval of relationship rel-1"),
        "{}",
        synced.message
    );

    // Still unshown after --propagation-timeout: a failure that names it.
    let mut o = observed(remote(S::Created, 700), vec![]);
    let since = now() - Span::hours(2);
    o.microsoft.as_mut().unwrap().pending.0.push(Written {
        write: Write::Lock { id: "rel-1".into() },
        at: since,
    });
    let case = Case::new(
        o,
        Action::Refuse(PlanError::PropagationTimedOut {
            what: Awaited::Lock,
            since,
        }),
    );
    let status = case.build();
    assert_eq!(
        condition(&status, "Synced"),
        pair("False", reasons::PROPAGATION_TIMED_OUT)
    );
    assert_eq!(
        condition(&status, "Ready"),
        pair("False", reasons::PROPAGATION_TIMED_OUT)
    );
}

#[test]
fn a_relationship_that_only_carries_the_display_name_is_not_recorded_as_the_objects() {
    let mut o = observed(remote(S::Active, 700), vec![]);
    o.recorded_id = None;
    let case = Case::new(
        o,
        Action::Refuse(PlanError::NotOurs {
            id: "rel-1".into(),
            created_at: Some(now() - Span::days(3)),
        }),
    );
    let status = case.build();
    assert_eq!(
        status.relationship_id, None,
        "never recorded: it is not the object's"
    );
    assert_eq!(status.state, None);
    assert_eq!(
        condition(&status, "Synced"),
        pair("False", reasons::DISPLAY_NAME_TAKEN)
    );
    assert_eq!(
        condition(&status, "Ready"),
        pair("False", reasons::DISPLAY_NAME_TAKEN)
    );
    let synced = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Synced")
        .unwrap();
    assert!(
        synced.message.contains("spec.relationshipId: rel-1"),
        "{}",
        synced.message
    );
}

// ---- AccessVerified: what the access check found ----

fn checked(check: super::act::AccessCheck) -> Case {
    let mut case = Case::new(
        observed(remote(S::Active, 400), vec![assignment(A::Active)]),
        Action::VerifyAccess {
            customer: "c".into(),
            settling: false,
        },
    );
    case.outcome = Outcome::Applied(Applied::AccessChecked(check));
    case
}

fn message(status: &GdapRelationshipStatus, type_: &str) -> String {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

#[test]
fn access_verified_tells_what_the_check_found_and_leaves_ready_alone() {
    use super::act::AccessCheck;
    let works = checked(AccessCheck::Works).build();
    assert_eq!(
        condition(&works, "AccessVerified"),
        pair("True", reasons::ACCESS_WORKS)
    );
    assert_eq!(works.access_verified_at, Some(to_time_(now())));
    assert_eq!(condition(&works, "Ready"), pair("True", reasons::ACTIVE));

    let aadsts = "NoGdapAccess: AADSTS50020: User account 'admin@partner.example' does not exist in tenant 'c'";
    let refused = checked(AccessCheck::Refused {
        message: aadsts.into(),
    })
    .build();
    assert_eq!(
        condition(&refused, "AccessVerified"),
        pair("False", reasons::ACCESS_REFUSED)
    );
    assert!(
        message(&refused, "AccessVerified").contains(aadsts),
        "Microsoft's error is in the message: {}",
        message(&refused, "AccessVerified")
    );
    assert_eq!(refused.access_verified_at, Some(to_time_(now())));
    assert_eq!(
        condition(&refused, "Ready"),
        pair("True", reasons::ACTIVE),
        "Ready is what the operator made; AccessVerified reports beside it"
    );
    assert_eq!(condition(&refused, "Synced").0, "True");
    assert_eq!(
        refused.failed_attempts, 0,
        "a refusal is a finding, not a failure"
    );

    let not_consented = checked(AccessCheck::Unverifiable {
        reason: reasons::APP_NOT_CONSENTED,
        message: "ConsentMissing: AADSTS90099: not authorized".into(),
    })
    .build();
    assert_eq!(
        condition(&not_consented, "AccessVerified"),
        pair("Unknown", reasons::APP_NOT_CONSENTED)
    );
    assert!(message(&not_consented, "AccessVerified").contains("AADSTS90099"));
}

#[test]
fn a_finding_stands_until_the_next_check_while_the_access_stays_in_place() {
    use super::act::AccessCheck;
    let first = checked(AccessCheck::Refused {
        message: "AccessDenied: Authorization_RequestDenied".into(),
    })
    .build();
    let in_place = observed(remote(S::Active, 400), vec![assignment(A::Active)]);

    // An idle pass later keeps the finding and when it was made.
    let mut idle = Case::new(in_place.clone(), Action::Idle);
    idle.previous = first.clone();
    let later = idle.build();
    assert_eq!(
        condition(&later, "AccessVerified"),
        pair("False", reasons::ACCESS_REFUSED)
    );
    assert_eq!(later.access_verified_at, first.access_verified_at);

    // The access no longer in place (an assignment pending): not checked until it is again.
    let mut pending = Case::new(
        observed(remote(S::Active, 400), vec![assignment(A::Pending)]),
        Action::Wait(Waiting::Assignments),
    );
    pending.previous = first.clone();
    let pending = pending.build();
    assert_eq!(pending.access_verified_at, None);
    assert_eq!(
        condition(&pending, "AccessVerified"),
        pair("Unknown", reasons::NOT_CHECKED)
    );

    // Another relationship (after a hand-over): the finding was about the previous one.
    let mut other = first.clone();
    other.relationship_id = Some("rel-0".into());
    let mut handed = Case::new(in_place.clone(), Action::Idle);
    handed.previous = other;
    let handed = handed.build();
    assert_eq!(handed.access_verified_at, None);
    assert_eq!(
        condition(&handed, "AccessVerified"),
        pair("Unknown", reasons::NOT_CHECKED)
    );

    // A check that failed transiently keeps the last finding.
    let mut failed = checked(AccessCheck::Works);
    failed.outcome = Outcome::Failed(Failure::new(reasons::TRANSIENT_ERROR, "503", true));
    failed.previous = first.clone();
    let failed = failed.build();
    assert_eq!(
        condition(&failed, "AccessVerified"),
        pair("False", reasons::ACCESS_REFUSED)
    );
    assert_eq!(failed.access_verified_at, first.access_verified_at);
}

#[test]
fn access_verified_is_unknown_until_the_relationship_is_active_with_its_access_in_place() {
    let approval = Case::new(
        observed(remote(S::ApprovalPending, 400), vec![]),
        Action::Wait(Waiting::Approval),
    )
    .build();
    assert_eq!(
        condition(&approval, "AccessVerified"),
        pair("Unknown", reasons::RELATIONSHIP_NOT_ACTIVE)
    );
    assert_eq!(approval.access_verified_at, None);

    let mut ended = checked(super::act::AccessCheck::Works).build();
    ended.relationship_id = Some("rel-1".into());
    let mut terminated = Case::new(observed(remote(S::Terminated, 400), vec![]), Action::Idle);
    terminated.previous = ended;
    let terminated = terminated.build();
    assert_eq!(
        condition(&terminated, "AccessVerified"),
        pair("Unknown", reasons::RELATIONSHIP_NOT_ACTIVE)
    );
    assert_eq!(terminated.access_verified_at, None);

    let not_yet = Case::new(
        observed(remote(S::Active, 400), vec![assignment(A::Active)]),
        Action::Idle,
    )
    .build();
    assert_eq!(
        condition(&not_yet, "AccessVerified"),
        pair("Unknown", reasons::NOT_CHECKED)
    );
}

fn to_time_(t: DateTime<Utc>) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    crate::controllers::conditions::to_time(t)
}

#[test]
fn a_refusal_while_the_access_may_still_propagate_is_no_finding() {
    use super::act::AccessCheck;
    let mut case = checked(AccessCheck::Refused {
        message: "NoGdapAccess: AADSTS50020: no active GDAP access".into(),
    });
    case.action = Action::VerifyAccess {
        customer: "c".into(),
        settling: true,
    };
    let status = case.build();
    assert_eq!(
        condition(&status, "AccessVerified"),
        pair("Unknown", reasons::PROPAGATING)
    );
    assert!(message(&status, "AccessVerified").contains("AADSTS50020"));
    assert_eq!(status.access_verified_at, None, "so the check stays due");
    // While settling, a success is a finding.
    let mut works = checked(AccessCheck::Works);
    works.action = case.action.clone();
    let works = works.build();
    assert_eq!(
        condition(&works, "AccessVerified"),
        pair("True", reasons::ACCESS_WORKS)
    );
    assert_eq!(works.access_verified_at, Some(to_time_(now())));
}
