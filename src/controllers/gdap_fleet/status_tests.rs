//! Table tests of a fleet's whole pass, pure: what `decide` writes (only what changed), when a
//! deleted fleet may go, and the status `status::build` reports from it (counts, Ready, the
//! oldest pending approval, the last hour's prunes).

use super::act::Done;
use super::children::Fleet;
use super::decide::decide;
use super::desired::FleetIntent;
use super::members::{Customer, Selection};
use super::observe::{Observed, Seen};
use super::plan::{Child, Intent, Owner, Phase, Pruning, Rollout};
use super::status::{Inputs, build};
use crate::api::conditions::reasons;
use crate::api::{FleetTemplate, GdapFleetStatus};
use crate::controllers::conditions::to_time;
use crate::controllers::failure::Failure;
use chrono::{DateTime, Duration as Span, Utc};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn tid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn fleet() -> Fleet {
    Fleet {
        name: "estate".into(),
        namespace: "msp".into(),
        uid: "uid-1".into(),
    }
}

fn intent(max_awaiting: u32, paused: bool, deleting: bool) -> FleetIntent {
    let template: FleetTemplate = serde_json::from_value(serde_json::json!({
        "relationship": {"roles": ["Directory Readers"], "duration": "P730D"},
    }))
    .unwrap();
    FleetIntent {
        plan: Intent {
            selection: Selection {
                partner_center: true,
                ..Selection::default()
            },
            rollout: Rollout {
                max_awaiting_approval: max_awaiting,
                paused,
            },
            pruning: Pruning {
                enabled: false,
                per_hour: 10,
            },
            deleting,
        },
        template,
        overrides: Default::default(),
        fleet: fleet(),
    }
}

fn customers(n: u32) -> Vec<Customer> {
    (1..=n)
        .map(|i| Customer {
            tenant_id: tid(i),
            name: Some(format!("Customer {i}")),
            domain: None,
        })
        .collect()
}

/// The fleet's relationship for customer `n`, as the fleet last wrote it (its digest).
fn ours(intent: &FleetIntent, n: u32, phase: Phase, minutes_old: i64) -> Seen {
    let customer = &customers(n)[n as usize - 1];
    let objects =
        super::children::objects(&intent.fleet, &intent.template, None, customer).unwrap();
    Seen {
        child: Child {
            name: format!("estate-{}", tid(n)),
            tenant_id: tid(n),
            owner: Owner::ThisFleet,
            phase,
        },
        digest: Some(objects.digest),
        created: Some(now() - Span::minutes(minutes_old)),
        access_refused: false,
    }
}

fn observed(n: u32, seen: Vec<Seen>) -> Observed {
    Observed {
        partner_center: Ok(customers(n)),
        list_read_at: Some(now()),
        seen,
        unlisted: None,
        credentials_failure: None,
        pruned: Vec::new(),
    }
}

fn status_of(intent: &FleetIntent, observed: &Observed, done: &Done) -> GdapFleetStatus {
    let plan = decide(intent, observed, now());
    let inputs = Inputs {
        observed,
        plan: &plan,
        done,
        paused: intent.plan.rollout.paused,
        generation: Some(3),
        now: now(),
    };
    build(&inputs, &GdapFleetStatus::default())
}

fn ready(status: &GdapFleetStatus) -> (String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    (c.status.clone(), c.reason.clone())
}

#[test]
fn a_pass_writes_only_new_customers_and_changed_ones() {
    let i = intent(10, false, false);
    let mut stale = ours(&i, 2, Phase::Active, 60);
    stale.digest = Some("an older template".into());
    let seen = vec![ours(&i, 1, Phase::Active, 60), stale];
    let plan = decide(&i, &observed(3, seen), now());
    let written: Vec<String> = plan
        .write
        .iter()
        .map(|o| o.relationship.spec.customer.tenant_id.0.clone())
        .collect();
    assert_eq!(written, [tid(2), tid(3)], "customer 1 is as written");
    assert!(!plan.done && !plan.blind);
}

#[test]
fn a_deleted_fleet_goes_once_none_of_its_objects_is_left() {
    let i = intent(10, false, true);
    let left = decide(&i, &observed(2, vec![ours(&i, 1, Phase::Active, 5)]), now());
    assert!(!left.done);
    assert_eq!(left.members.release.len(), 1, "let go first (no prune)");
    let mut elsewhere = ours(&i, 1, Phase::Active, 5);
    elsewhere.child.owner = Owner::Elsewhere;
    assert!(decide(&i, &observed(2, vec![elsewhere]), now()).done);
}

#[test]
fn an_unlisted_namespace_decides_nothing_and_keeps_the_counts() {
    let i = intent(10, false, false);
    let mut o = observed(2, Vec::new());
    o.unlisted = Some(Failure::new(reasons::KUBERNETES_ERROR, "down", true));
    let plan = decide(&i, &o, now());
    assert!(plan.blind && plan.write.is_empty());
    let previous = GdapFleetStatus {
        customers: 7,
        active: 7,
        ..GdapFleetStatus::default()
    };
    let inputs = Inputs {
        observed: &o,
        plan: &plan,
        done: &Done::default(),
        paused: false,
        generation: Some(3),
        now: now(),
    };
    let status = build(&inputs, &previous);
    assert_eq!((status.customers, status.active), (7, 7));
    assert_eq!(ready(&status), ("False".into(), "KubernetesError".into()));
    assert_eq!(status.failed_attempts, 1);
}

#[test]
fn the_status_counts_and_says_why_the_fleet_is_not_ready() {
    let i = intent(2, false, false);
    let mut refused = ours(&i, 1, Phase::Active, 90);
    refused.access_refused = true;
    let seen = vec![
        refused,
        ours(&i, 2, Phase::AwaitingApproval, 30),
        ours(&i, 3, Phase::AwaitingApproval, 50),
    ];
    let status = status_of(&i, &observed(5, seen), &Done::default());
    assert_eq!(
        (
            status.customers,
            status.active,
            status.awaiting_approval,
            status.waiting
        ),
        (5, 1, 2, 2),
        "the limit of 2 is reached: customers 4 and 5 wait"
    );
    assert_eq!(status.access_refused, 1);
    let oldest = status.oldest_pending_approval.clone().unwrap();
    assert_eq!(oldest.tenant_id, tid(3), "the longest waiting");
    assert_eq!(ready(&status), ("False".into(), "RollingOut".into()));

    let all_active: Vec<Seen> = (1..=2).map(|n| ours(&i, n, Phase::Active, 5)).collect();
    let status = status_of(&i, &observed(2, all_active.clone()), &Done::default());
    assert_eq!(ready(&status), ("True".into(), "AllActive".into()));

    let mut failed = all_active.clone();
    failed[1].child.phase = Phase::Failed;
    let status = status_of(&i, &observed(2, failed), &Done::default());
    assert_eq!(ready(&status), ("False".into(), "CustomersFailed".into()));

    let paused = intent(2, true, false);
    let status = status_of(&paused, &observed(2, all_active.clone()), &Done::default());
    assert_eq!(ready(&status), ("False".into(), "Paused".into()));

    let mut unreadable = observed(2, all_active.clone());
    unreadable.partner_center = Err("Partner Center refused: 401".into());
    let status = status_of(&i, &unreadable, &Done::default());
    assert_eq!(
        ready(&status),
        ("False".into(), "CustomerListUnreadable".into())
    );

    let done = Done {
        failed: 1,
        errors: vec!["GdapRelationship estate-x: forbidden".into()],
        ..Done::default()
    };
    let status = status_of(&i, &observed(2, all_active), &done);
    assert_eq!(ready(&status), ("False".into(), "KubernetesError".into()));
}

#[test]
fn invalid_overrides_are_reported_naming_the_customer_and_the_field() {
    let mut i = intent(10, false, false);
    i.overrides.insert(
        tid(1),
        serde_json::from_value(serde_json::json!({"relationship": {"roles": "not a list"}}))
            .unwrap(),
    );
    let plan = decide(&i, &observed(2, Vec::new()), now());
    assert_eq!(plan.invalid.len(), 1);
    assert_eq!(plan.write.len(), 1, "the other customer is written");
    let status = status_of(&i, &observed(2, Vec::new()), &Done::default());
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(c.reason, "InvalidSpec");
    assert!(
        c.message
            .contains(&format!("list[tenantId={}].overrides.relationship", tid(1))),
        "{}",
        c.message
    );
}

#[test]
fn the_prunes_of_the_last_hour_are_kept_with_this_passs() {
    let i = intent(10, false, false);
    let o = observed(1, Vec::new());
    let plan = decide(&i, &o, now());
    let done = Done {
        pruned: vec![("estate-x".into(), now())],
        ..Done::default()
    };
    let previous = GdapFleetStatus {
        pruned_at: vec![
            to_time(now() - Span::minutes(90)),
            to_time(now() - Span::minutes(20)),
        ],
        ..GdapFleetStatus::default()
    };
    let inputs = Inputs {
        observed: &o,
        plan: &plan,
        done: &done,
        paused: false,
        generation: None,
        now: now(),
    };
    let status = build(&inputs, &previous);
    assert_eq!(
        status.pruned_at,
        vec![to_time(now() - Span::minutes(20)), to_time(now())]
    );
}
