//! Table tests of the fleet's plan: which customers are covered, the rollout limit, the pause,
//! pruning and its hourly rate, an unreadable customer list, relationships managed elsewhere.

use super::members::{Customer, Membership, Selection, select};
use super::plan::*;
use chrono::{DateTime, Duration as Span, Utc};

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

const NOW: &str = "2026-12-05T10:00:00Z";

/// Tenant `n` (a GUID whose order is `n`'s).
fn tid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn pc(n: u32, name: &str, domain: &str) -> Customer {
    Customer {
        tenant_id: tid(n),
        name: Some(name.into()),
        domain: Some(domain.into()),
    }
}

fn child(n: u32, owner: Owner, phase: Phase) -> Child {
    Child {
        name: format!("fleet-{}", tid(n)),
        tenant_id: tid(n),
        owner,
        phase,
    }
}

fn intent(max_awaiting: u32) -> Intent {
    Intent {
        selection: Selection {
            partner_center: true,
            ..Selection::default()
        },
        rollout: Rollout {
            max_awaiting_approval: max_awaiting,
            paused: false,
        },
        pruning: Pruning {
            enabled: false,
            per_hour: 10,
        },
        deleting: false,
    }
}

fn observed(customers: Vec<Customer>, children: Vec<Child>) -> Observed {
    Observed {
        partner_center: Ok(customers),
        children,
        pruned: Vec::new(),
    }
}

fn five() -> Vec<Customer> {
    (1..=5)
        .map(|n| pc(n, &format!("Customer {n}"), &format!("c{n}.example")))
        .collect()
}

fn applied(plan: &Plan) -> Vec<String> {
    plan.apply.iter().map(|c| c.tenant_id.clone()).collect()
}

/// The membership expected per tenant (by its number).
type Standings = Vec<(u32, Membership)>;

#[test]
fn the_selection_covers_partner_center_and_the_list_less_exclusions_and_the_filter() {
    let contoso = pc(1, "Contoso Ltd", "contoso.onmicrosoft.com");
    let fabrikam = pc(2, "Fabrikam", "fabrikam.com");
    let woodgrove = pc(3, "Woodgrove Bank", "woodgrove.onmicrosoft.com");
    let listed_only = Customer::by_id(&tid(9).to_uppercase());
    let table: Vec<(&str, Selection, Standings)> = vec![
        (
            "every Partner Center customer",
            Selection {
                partner_center: true,
                ..Selection::default()
            },
            vec![
                (1, Membership::Member),
                (2, Membership::Member),
                (3, Membership::Member),
            ],
        ),
        (
            "the list alone ignores Partner Center",
            Selection {
                listed: vec![listed_only.clone()],
                ..Selection::default()
            },
            vec![(9, Membership::Member)],
        ),
        (
            "a name filter (any case) leaves the others out",
            Selection {
                partner_center: true,
                name_contains: Some("BANK".into()),
                ..Selection::default()
            },
            vec![
                (1, Membership::FilteredOut),
                (2, Membership::FilteredOut),
                (3, Membership::Member),
            ],
        ),
        (
            "a domain filter; a listed customer passes whatever the filter",
            Selection {
                partner_center: true,
                domain_suffix: Some(".onmicrosoft.com".into()),
                listed: vec![Customer::by_id(&tid(2))],
                ..Selection::default()
            },
            vec![
                (1, Membership::Member),
                (2, Membership::Member),
                (3, Membership::Member),
            ],
        ),
        (
            "exclude wins over the list and Partner Center",
            Selection {
                partner_center: true,
                listed: vec![Customer::by_id(&tid(2))],
                exclude: [tid(1), tid(2)].into_iter().collect(),
                ..Selection::default()
            },
            vec![
                (1, Membership::Excluded),
                (2, Membership::Excluded),
                (3, Membership::Member),
            ],
        ),
    ];
    let partner_center = vec![contoso, fabrikam, woodgrove];
    for (case, selection, want) in table {
        let got: Vec<(String, Membership)> = select(&selection, &partner_center)
            .into_iter()
            .map(|(id, (_, m))| (id, m))
            .collect();
        let want: Vec<(String, Membership)> = want.into_iter().map(|(n, m)| (tid(n), m)).collect();
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn a_listed_customer_keeps_partner_centers_name_unless_the_list_gives_one() {
    let selection = Selection {
        partner_center: true,
        listed: vec![Customer::by_id(&tid(1))],
        ..Selection::default()
    };
    let known = select(&selection, &[pc(1, "Contoso", "contoso.com")]);
    assert_eq!(known[&tid(1)].0.name.as_deref(), Some("Contoso"));
}

#[test]
fn new_relationships_never_exceed_the_rollout_limit_and_go_in_tenant_order() {
    // Two of the fleet's relationships await approval already; the limit is three.
    let children = vec![
        child(2, Owner::ThisFleet, Phase::AwaitingApproval),
        child(4, Owner::ThisFleet, Phase::AwaitingApproval),
    ];
    let plan = plan(&intent(3), &observed(five(), children), t(NOW));
    assert_eq!(
        applied(&plan),
        vec![tid(1), tid(2), tid(4)],
        "the two existing ones are kept up to date and one new one (the first by tenant id) is created"
    );
    assert_eq!(plan.waiting, vec![tid(3), tid(5)]);
    assert_eq!(plan.counts.awaiting_approval, 3);
    assert_eq!(plan.counts.waiting, 2);
}

#[test]
fn active_relationships_free_rollout_room() {
    let children = vec![
        child(1, Owner::ThisFleet, Phase::Active),
        child(2, Owner::ThisFleet, Phase::Active),
        child(3, Owner::ThisFleet, Phase::Failed),
    ];
    let plan = plan(&intent(2), &observed(five(), children), t(NOW));
    assert_eq!(applied(&plan), (1..=5).map(tid).collect::<Vec<_>>());
    assert!(plan.waiting.is_empty());
    let c = plan.counts;
    assert_eq!((c.active, c.failed, c.awaiting_approval), (2, 1, 2));
}

#[test]
fn a_paused_fleet_writes_nothing_but_still_counts() {
    let mut paused = intent(10);
    paused.rollout.paused = true;
    paused.pruning.enabled = true;
    let children = vec![
        child(1, Owner::ThisFleet, Phase::Active),
        child(7, Owner::ThisFleet, Phase::Active),
    ];
    let plan = plan(&paused, &observed(five(), children), t(NOW));
    assert!(plan.apply.is_empty(), "{plan:?}");
    assert!(plan.prune.is_empty() && plan.release.is_empty(), "{plan:?}");
    assert_eq!(plan.waiting.len(), 4);
    assert_eq!(plan.counts.active, 1);
}

#[test]
fn a_customer_left_out_is_let_go_without_prune_and_deleted_with_it() {
    let mut selection = intent(10);
    selection.selection.exclude = [tid(1)].into_iter().collect();
    let children = vec![child(1, Owner::ThisFleet, Phase::Active)];
    let kept = plan(&selection, &observed(five(), children.clone()), t(NOW));
    assert_eq!(
        kept.release,
        vec![child(1, Owner::ThisFleet, Phase::Active).name]
    );
    assert!(kept.prune.is_empty());
    assert_eq!(kept.counts.excluded, 1);
    assert!(!applied(&kept).contains(&tid(1)));

    selection.pruning.enabled = true;
    let pruned = plan(&selection, &observed(five(), children), t(NOW));
    assert_eq!(
        pruned.prune,
        vec![child(1, Owner::ThisFleet, Phase::Active).name]
    );
    assert!(pruned.release.is_empty());
    assert_eq!(pruned.counts.pruning, 1);
}

#[test]
fn prunes_keep_to_the_hourly_rate_counting_the_last_hours() {
    let mut pruning = intent(10);
    pruning.pruning = Pruning {
        enabled: true,
        per_hour: 2,
    };
    // Partner Center now lists none of customers 1–3 the fleet had.
    let children: Vec<Child> = (1..=3)
        .map(|n| child(n, Owner::ThisFleet, Phase::Active))
        .collect();
    let mut seen = observed(Vec::new(), children);
    let earlier = t(NOW) - Span::minutes(30);
    seen.pruned = vec![t(NOW) - Span::minutes(90), earlier];
    let plan = plan(&pruning, &seen, t(NOW));
    assert_eq!(
        plan.prune.len(),
        1,
        "one prune in the last hour leaves room for one: {plan:?}"
    );
    assert_eq!(plan.prune_later.len(), 2);
    assert_eq!(plan.next_prune_at, Some(earlier + Span::hours(1)));
    assert_eq!(plan.counts.pruning, 3);
}

#[test]
fn an_unreadable_customer_list_prunes_and_lets_go_of_nothing() {
    let mut pruning = intent(10);
    pruning.pruning.enabled = true;
    pruning.selection.listed = vec![Customer::by_id(&tid(8))];
    let children = vec![
        child(1, Owner::ThisFleet, Phase::Active),
        child(8, Owner::ThisFleet, Phase::Active),
    ];
    let seen = Observed {
        partner_center: Err("Partner Center: 503".into()),
        children,
        pruned: Vec::new(),
    };
    let plan = plan(&pruning, &seen, t(NOW));
    assert!(plan.prune.is_empty() && plan.release.is_empty(), "{plan:?}");
    assert_eq!(
        plan.undecided,
        vec![child(1, Owner::ThisFleet, Phase::Active).name]
    );
    assert_eq!(
        applied(&plan),
        vec![tid(8)],
        "the listed customer is still covered"
    );
}

#[test]
fn a_relationship_managed_elsewhere_is_left_alone_and_reported() {
    let children = vec![child(2, Owner::Elsewhere, Phase::Active)];
    let mut pruning = intent(10);
    pruning.pruning.enabled = true;
    let plan = plan(&pruning, &observed(five(), children), t(NOW));
    assert!(!applied(&plan).contains(&tid(2)));
    assert_eq!(plan.elsewhere, vec![tid(2)]);
    assert_eq!(plan.counts.managed_elsewhere, 1);
    assert!(plan.prune.is_empty(), "another's object is never pruned");
}

#[test]
fn deleting_the_fleet_prunes_at_the_rate_or_lets_everything_go() {
    let children: Vec<Child> = (1..=3)
        .map(|n| child(n, Owner::ThisFleet, Phase::Active))
        .collect();
    let mut deleting = intent(10);
    deleting.deleting = true;
    let kept = plan(&deleting, &observed(five(), children.clone()), t(NOW));
    assert!(kept.apply.is_empty());
    assert_eq!(kept.release.len(), 3);

    deleting.pruning = Pruning {
        enabled: true,
        per_hour: 2,
    };
    let pruned = plan(&deleting, &observed(five(), children), t(NOW));
    assert_eq!((pruned.prune.len(), pruned.prune_later.len()), (2, 1));
    assert!(
        pruned.waiting.is_empty(),
        "a fleet being deleted creates nothing"
    );
}
