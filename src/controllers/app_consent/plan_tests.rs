//! Table tests of `plan`: each row is a situation and the step the controller must take.

use super::desired::Intent;
use super::plan::*;
use crate::api::consent_rules::{
    MICROSOFT_GRAPH_APP_ID, PRIVILEGED_ROLE_ADMINISTRATOR_ID, ResolvedGrant,
};
use crate::api::roles::{APPLICATION_ADMINISTRATOR_ID, GLOBAL_ADMINISTRATOR_ID};
use crate::api::rules::FieldProblem;
use crate::api::{DeletionPolicy, ManagementPolicy, ReconsentPolicy};
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const CUSTOMER: &str = "11111111-2222-3333-4444-555555555555";
const APP: &str = "57667d41-992a-49b0-99d8-ddf68328373f";
const O365: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";
const READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
const USER_READ_ALL: &str = "df021288-bdef-4463-88db-98f22de89214";
const ACTIVITY: &str = "aaaaaaaa-0000-0000-0000-000000000001";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn grant(index: usize, resource: &str, scopes: &[&str], roles: &[&str]) -> ResolvedGrant {
    ResolvedGrant {
        index,
        resource_app_id: resource.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        app_roles: roles.iter().map(|s| s.to_string()).collect(),
    }
}

fn intent() -> Intent {
    Intent {
        customer: CUSTOMER.into(),
        application_id: APP.into(),
        display_name: None,
        relationship_ref: None,
        create_missing_service_principals: false,
        reconsent: ReconsentPolicy::Report,
        deletion: DeletionPolicy::Delete,
        management: ManagementPolicy::Manage,
        grants: Ok(vec![grant(
            0,
            MICROSOFT_GRAPH_APP_ID,
            &["User.Read.All"],
            &["User.Read.All"],
        )]),
    }
}

fn with(change: impl FnOnce(&mut Intent)) -> Intent {
    let mut i = intent();
    change(&mut i);
    i
}

fn with_o365(i: &mut Intent) {
    i.grants
        .as_mut()
        .unwrap()
        .push(grant(1, O365, &[], &["ActivityFeed.Read"]));
}

fn relationship(id: &str, user_roles: &[&str], since_minutes: i64) -> RemoteRelationship {
    let user_role_ids: BTreeSet<String> = user_roles.iter().map(|s| s.to_string()).collect();
    let capable = user_role_ids.contains(APPLICATION_ADMINISTRATOR_ID)
        || user_role_ids.contains(GLOBAL_ADMINISTRATOR_ID);
    RemoteRelationship {
        id: id.into(),
        display_name: format!("{id}-name"),
        role_ids: user_role_ids.clone(),
        user_role_ids,
        consent_capable_since: capable.then(|| now() - Span::minutes(since_minutes)),
    }
}

fn partner(relationships: Vec<RemoteRelationship>) -> PartnerSide {
    PartnerSide {
        reference: None,
        relationships,
    }
}

/// App Admin + Privileged Role Admin through one settled relationship.
fn able() -> PartnerSide {
    partner(vec![relationship(
        "rel-1",
        &[
            APPLICATION_ADMINISTRATOR_ID,
            PRIVILEGED_ROLE_ADMINISTRATOR_ID,
        ],
        60,
    )])
}

fn graph_sp() -> ResourcePrincipal {
    ResourcePrincipal {
        id: "graph-sp".into(),
        app_roles: BTreeMap::from([("user.read.all".into(), USER_READ_ALL.into())]),
    }
}

fn o365_sp() -> ResourcePrincipal {
    ResourcePrincipal {
        id: "o365-sp".into(),
        app_roles: BTreeMap::from([("activityfeed.read".into(), ACTIVITY.into())]),
    }
}

fn scopes(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_ascii_lowercase()).collect()
}

const FULL_GRAPH: [&str; 3] = [
    "User.Read.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
];

/// Everything the default intent asks for is in place.
fn complete() -> TenantView {
    TenantView {
        app_principal: Some("app-sp".into()),
        resources: BTreeMap::from([(MICROSOFT_GRAPH_APP_ID.into(), Some(graph_sp()))]),
        grants: BTreeMap::from([(MICROSOFT_GRAPH_APP_ID.into(), scopes(&FULL_GRAPH))]),
        assignments: vec![RoleAssignment {
            id: "ara-1".into(),
            resource_id: "graph-sp".into(),
            app_role_id: USER_READ_ALL.into(),
        }],
    }
}

fn seen(partner: PartnerSide, tenant: Tenant) -> Observed {
    Observed {
        deleting: false,
        verified_before: false,
        consented_before: false,
        partner: Ok(partner),
        tenant: Ok(tenant),
    }
}

fn read(change: impl FnOnce(&mut TenantView)) -> Tenant {
    let mut v = complete();
    change(&mut v);
    Tenant::Read(v)
}

fn not_consented() -> Tenant {
    Tenant::NotConsented {
        detail: "AADSTS65001".into(),
    }
}

fn verified(mut o: Observed) -> Observed {
    o.verified_before = true;
    o.consented_before = true;
    o
}

fn deleting(mut o: Observed) -> Observed {
    o.deleting = true;
    o
}

fn timing() -> Timing {
    Timing {
        poll: Duration::from_secs(5),
        resync: Duration::from_secs(300),
        verify: Duration::from_secs(3600),
        settle: Duration::from_secs(900),
    }
}

/// A compact description of an action: its kind and what it names.
fn kind(action: &Action) -> String {
    match action {
        Action::Consent { body, replace } => {
            let grants: Vec<String> = body
                .application_grants
                .iter()
                .map(|g| {
                    let who = if g.enterprise_application_id == MICROSOFT_GRAPH_APP_ID {
                        "graph"
                    } else {
                        "other"
                    };
                    format!("{who}[{}]", g.scope)
                })
                .collect();
            let verb = if *replace { "Replace" } else { "Consent" };
            format!("{verb} {}", grants.join(" "))
        }
        Action::CreateServicePrincipal { app_id } => format!("CreateServicePrincipal {app_id}"),
        Action::GrantAppRole { role, body, .. } => {
            format!(
                "GrantAppRole {role} to {} on {}",
                body.principal_id, body.resource_id
            )
        }
        Action::RevokeAppRole {
            role,
            assignment_id,
            ..
        } => {
            format!("RevokeAppRole {role} {assignment_id}")
        }
        Action::RemoveConsent => "RemoveConsent".into(),
        Action::Release(r) => format!("Release {r:?}"),
        Action::Wait(w) => format!("Wait {w:?}"),
        Action::Idle => "Idle".into(),
        Action::Refuse(PlanError::InvalidSpec(p)) => format!("Refuse InvalidSpec {}", p.field),
        Action::Refuse(PlanError::PrivilegedRoleRequired { missing }) => {
            let roles: Vec<&str> = missing.iter().map(|m| m.role.as_str()).collect();
            format!("Refuse PrivilegedRoleRequired {}", roles.join(","))
        }
        Action::Refuse(e) => format!("Refuse {e:?}"),
    }
}

fn check(rows: Vec<(&str, Intent, Observed, &str)>) {
    let mut failures = Vec::new();
    for (name, i, o, expected) in rows {
        let got = kind(&plan(&i, &o, &timing(), now()).action);
        if got != expected {
            failures.push(format!("{name}: expected {expected}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

const GRAPH_CONSENT: &str =
    "Consent graph[User.Read.All,Application.ReadWrite.All,AppRoleAssignment.ReadWrite.All]";

#[test]
fn prerequisites_come_first() {
    let reference = |r: Reference| {
        let mut p = able();
        p.reference = Some(r);
        p
    };
    let by_ref = with(|i| i.relationship_ref = Some("contoso".into()));
    let ready = |id: &str| Reference::Ready {
        relationship_id: Some(id.into()),
    };
    check(vec![
        (
            "the referenced object does not exist yet",
            by_ref.clone(),
            seen(reference(Reference::Missing), not_consented()),
            "Wait Relationship",
        ),
        (
            "the referenced object is not Ready",
            by_ref.clone(),
            seen(
                reference(Reference::NotReady {
                    message: "ApprovalPending".into(),
                }),
                not_consented(),
            ),
            "Wait Relationship",
        ),
        (
            "Ready, but Microsoft does not list it as active",
            by_ref.clone(),
            seen(reference(ready("rel-9")), not_consented()),
            "Wait Relationship",
        ),
        (
            "Ready and giving Application Administrator: consent Graph first",
            by_ref.clone(),
            seen(reference(ready("rel-1")), not_consented()),
            GRAPH_CONSENT,
        ),
        (
            "the referenced relationship gives no consent-capable role",
            by_ref.clone(),
            seen(
                PartnerSide {
                    reference: Some(ready("rel-2")),
                    relationships: vec![
                        relationship("rel-2", &[READERS], 60),
                        relationship("rel-1", &[APPLICATION_ADMINISTRATOR_ID], 60),
                    ],
                },
                not_consented(),
            ),
            "Refuse NoConsentCapableRole",
        ),
        (
            "without a reference any active relationship with the role does",
            intent(),
            seen(
                partner(vec![
                    relationship("rel-2", &[READERS], 60),
                    relationship("rel-1", &[APPLICATION_ADMINISTRATOR_ID], 60),
                ]),
                not_consented(),
            ),
            GRAPH_CONSENT,
        ),
        (
            "no relationship at all",
            intent(),
            seen(partner(vec![]), not_consented()),
            "Refuse NoConsentCapableRole",
        ),
        (
            "a role given 5 minutes ago settles for 15",
            intent(),
            seen(
                partner(vec![relationship(
                    "rel-1",
                    &[APPLICATION_ADMINISTRATOR_ID],
                    5,
                )]),
                not_consented(),
            ),
            "Wait Settling",
        ),
        (
            "one settled relationship is enough",
            intent(),
            seen(
                partner(vec![
                    relationship("rel-new", &[GLOBAL_ADMINISTRATOR_ID], 1),
                    relationship("rel-old", &[APPLICATION_ADMINISTRATOR_ID], 30),
                ]),
                not_consented(),
            ),
            GRAPH_CONSENT,
        ),
        (
            "prerequisites do not matter to a complete consent",
            intent(),
            seen(partner(vec![]), read(|_| {})),
            "Idle",
        ),
        (
            "Entra does not let the user in yet",
            intent(),
            seen(
                able(),
                Tenant::NoAccess {
                    detail: "AADSTS50020".into(),
                },
            ),
            "Wait AccessPropagating",
        ),
    ]);
}

#[test]
fn consent_then_service_principals_then_grants_then_app_roles() {
    let o365_missing = read(|v| {
        v.resources.insert(O365.into(), None);
    });
    let o365_present = |assigned: bool| {
        read(|v| {
            v.resources.insert(O365.into(), Some(o365_sp()));
            if assigned {
                v.assignments.push(RoleAssignment {
                    id: "ara-2".into(),
                    resource_id: "o365-sp".into(),
                    app_role_id: ACTIVITY.into(),
                });
            }
        })
    };
    check(vec![
        (
            "a missing resource service principal waits without the create option",
            with(with_o365),
            seen(able(), o365_missing.clone()),
            "Wait ServicePrincipals",
        ),
        (
            "and is created with it",
            with(|i| {
                with_o365(i);
                i.create_missing_service_principals = true;
            }),
            seen(able(), o365_missing),
            &format!("CreateServicePrincipal {O365}"),
        ),
        (
            "a scope missing from the Graph grant replaces the consent",
            intent(),
            seen(
                able(),
                read(|v| {
                    v.grants.insert(
                        MICROSOFT_GRAPH_APP_ID.into(),
                        scopes(&[
                            "Application.ReadWrite.All",
                            "AppRoleAssignment.ReadWrite.All",
                        ]),
                    );
                }),
            ),
            "Replace graph[User.Read.All,Application.ReadWrite.All,AppRoleAssignment.ReadWrite.All]",
        ),
        (
            "scopes on another resource are consented with Graph's, replacing the first consent",
            with(|i| {
                i.grants
                    .as_mut()
                    .unwrap()
                    .push(grant(1, O365, &["ActivityFeed.Read"], &[]));
            }),
            seen(able(), o365_present(false)),
            "Replace graph[User.Read.All,Application.ReadWrite.All,AppRoleAssignment.ReadWrite.All] other[ActivityFeed.Read]",
        ),
        (
            "a missing application permission is granted to the app's service principal",
            intent(),
            seen(able(), read(|v| v.assignments.clear())),
            "GrantAppRole User.Read.All to app-sp on graph-sp",
        ),
        (
            "an unknown application permission is an invalid spec",
            with(|i| i.grants.as_mut().unwrap()[0].app_roles = vec!["Nope.All".into()]),
            seen(able(), read(|_| {})),
            "Refuse InvalidSpec spec.grants[0].appRoles[0]",
        ),
        (
            "an invalid spec refuses before anything",
            with(|i| i.grants = Err(FieldProblem::new("spec.grants[0].resource", "unknown"))),
            seen(able(), not_consented()),
            "Refuse InvalidSpec spec.grants[0].resource",
        ),
        (
            "everything in place",
            with(with_o365),
            seen(able(), o365_present(true)),
            "Idle",
        ),
        (
            "unreadable: wait",
            intent(),
            Observed {
                tenant: Err(Unreadable { transient: true }),
                ..seen(able(), not_consented())
            },
            "Wait Unreadable",
        ),
    ]);
}

#[test]
fn graph_app_roles_need_a_privileged_role_others_do_not() {
    let app_admin_only = partner(vec![relationship(
        "rel-1",
        &[APPLICATION_ADMINISTRATOR_ID],
        60,
    )]);
    let none_granted = |o365: bool| {
        read(|v| {
            v.assignments.clear();
            if o365 {
                v.resources.insert(O365.into(), Some(o365_sp()));
            }
        })
    };
    check(vec![
        (
            "Application Administrator cannot grant Microsoft Graph app roles",
            intent(),
            seen(app_admin_only.clone(), none_granted(false)),
            "Refuse PrivilegedRoleRequired User.Read.All",
        ),
        (
            "but grants another resource's first, then reports Graph's",
            with(with_o365),
            seen(app_admin_only, none_granted(true)),
            "GrantAppRole ActivityFeed.Read to app-sp on o365-sp",
        ),
        (
            "Global Administrator grants Graph's",
            intent(),
            seen(
                partner(vec![relationship("rel-1", &[GLOBAL_ADMINISTRATOR_ID], 60)]),
                none_granted(false),
            ),
            "GrantAppRole User.Read.All to app-sp on graph-sp",
        ),
    ]);
}

#[test]
fn a_revoked_consent_is_reported_and_repaired_only_when_automatic() {
    let automatic = with(|i| i.reconsent = ReconsentPolicy::Automatic);
    let observe = with(|i| i.management = ManagementPolicy::Observe);
    let spec_change = |o: Observed| Observed {
        verified_before: false,
        ..o
    };
    check(vec![
        (
            "revoked entirely, Report",
            intent(),
            verified(seen(able(), not_consented())),
            "Refuse Revoked",
        ),
        (
            "an app role removed, Report",
            intent(),
            verified(seen(able(), read(|v| v.assignments.clear()))),
            "Refuse Revoked",
        ),
        (
            "revoked entirely, Automatic consents again",
            automatic.clone(),
            verified(seen(able(), not_consented())),
            GRAPH_CONSENT,
        ),
        (
            "an app role removed, Automatic grants it again",
            automatic,
            verified(seen(able(), read(|v| v.assignments.clear()))),
            "GrantAppRole User.Read.All to app-sp on graph-sp",
        ),
        (
            "a spec change is not a revocation: the new generation is completed",
            intent(),
            spec_change(verified(seen(able(), read(|v| v.assignments.clear())))),
            "GrantAppRole User.Read.All to app-sp on graph-sp",
        ),
        (
            "Observe never writes: it reports a revocation",
            observe.clone(),
            verified(seen(able(), not_consented())),
            "Refuse Revoked",
        ),
        (
            "and waits when nothing was verified yet",
            observe.clone(),
            seen(able(), not_consented()),
            "Wait NotConsented",
        ),
        (
            "Observe verifies the spec's grants only, not the operator's own scopes",
            observe,
            seen(
                able(),
                read(|v| {
                    v.grants
                        .insert(MICROSOFT_GRAPH_APP_ID.into(), scopes(&["User.Read.All"]));
                }),
            ),
            "Idle",
        ),
    ]);
}

#[test]
fn deletion_removes_the_app_roles_then_the_consent_and_never_guesses() {
    let orphan = with(|i| i.deletion = DeletionPolicy::Orphan);
    let unreadable = |consented: bool| Observed {
        deleting: true,
        verified_before: false,
        consented_before: consented,
        partner: Err(Unreadable { transient: false }),
        tenant: Err(Unreadable { transient: false }),
    };
    check(vec![
        (
            "Orphan releases",
            orphan,
            deleting(seen(able(), read(|_| {}))),
            "Release Orphaned",
        ),
        (
            "the spec's app roles go first",
            intent(),
            deleting(seen(able(), read(|_| {}))),
            "RevokeAppRole User.Read.All ara-1",
        ),
        (
            "then the consent",
            intent(),
            deleting(seen(able(), read(|v| v.assignments.clear()))),
            "RemoveConsent",
        ),
        (
            "then the object is released",
            intent(),
            deleting(seen(
                able(),
                read(|v| {
                    v.assignments.clear();
                    v.grants.clear();
                }),
            )),
            "Release Done",
        ),
        (
            "without a consent there is nothing to remove",
            intent(),
            deleting(seen(able(), not_consented())),
            "Release NothingToDelete",
        ),
        (
            "Graph app roles cannot be removed without a privileged role",
            intent(),
            deleting(seen(
                partner(vec![relationship(
                    "rel-1",
                    &[APPLICATION_ADMINISTRATOR_ID],
                    60,
                )]),
                read(|_| {}),
            )),
            "Refuse PrivilegedRoleRequired User.Read.All",
        ),
        (
            "unreadable after a consent: wait, never orphan",
            intent(),
            unreadable(true),
            "Wait Unreadable",
        ),
        (
            "unreadable and never consented: nothing can exist",
            intent(),
            unreadable(false),
            "Release NothingToDelete",
        ),
    ]);
}

#[test]
fn requeues_follow_the_verify_interval_when_steady_and_the_settle_end_while_settling() {
    let steady = plan(&intent(), &seen(able(), read(|_| {})), &timing(), now());
    assert_eq!(steady.requeue, timing().verify);
    let mut slow = timing();
    slow.poll = Duration::from_secs(600);
    let settling = plan(
        &intent(),
        &seen(
            partner(vec![relationship(
                "rel-1",
                &[APPLICATION_ADMINISTRATOR_ID],
                14,
            )]),
            not_consented(),
        ),
        &slow,
        now(),
    );
    assert_eq!(
        settling.requeue,
        Duration::from_secs(60),
        "the settle time ends in a minute"
    );
    let revoked = plan(
        &intent(),
        &verified(seen(able(), not_consented())),
        &timing(),
        now(),
    );
    assert_eq!(revoked.requeue, timing().verify);
    let write = plan(&intent(), &seen(able(), not_consented()), &timing(), now());
    assert_eq!(write.requeue, Duration::ZERO);
}
