//! Table tests of `plan`: each row is a situation and the step the controller must take.

use super::desired::{Asked, Intent};
use super::observed::*;
use super::pending::{Awaited, Pending, Write};
use super::plan::*;
use super::step::*;
use super::tenant::*;
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

fn asked() -> Asked {
    Asked {
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

fn intent() -> Intent {
    asked().resolve()
}

fn with(change: impl FnOnce(&mut Asked)) -> Intent {
    let mut i = asked();
    change(&mut i);
    i.resolve()
}

fn with_o365(i: &mut Asked) {
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
        customer_name: None,
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
        assignments: vec![graph_assignment("ara-1", USER_READ_ALL, "User.Read.All")],
    }
}

/// An application permission of Microsoft Graph, as observe reads it.
fn graph_assignment(id: &str, role_id: &str, role: &str) -> RoleAssignment {
    RoleAssignment {
        id: id.into(),
        resource_id: "graph-sp".into(),
        app_role_id: role_id.into(),
        resource_app_id: Some(MICROSOFT_GRAPH_APP_ID.into()),
        role: Some(role.into()),
    }
}

fn seen(partner: PartnerSide, tenant: Tenant) -> Observed {
    Observed {
        deleting: false,
        verified_before: false,
        consented_before: false,
        partner: Ok(partner),
        tenant: Ok(tenant),
        pending: Pending::default(),
        remains: None,
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
        general: crate::controllers::timing::Timing {
            poll: Duration::from_secs(5),
            resync: Duration::from_secs(300),
            propagation_timeout: Duration::from_secs(3600),
            ..Default::default()
        },
        consent: ConsentIntervals {
            verify: Duration::from_secs(3600),
            settle: Duration::from_secs(900),
        },
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
        Action::Wait(Waiting::Propagating { what, .. }) => format!("Wait Propagating {what:?}"),
        Action::Wait(w) => format!("Wait {w:?}"),
        Action::Idle => "Idle".into(),
        Action::Refuse(PlanError::InvalidSpec(p)) => format!("Refuse InvalidSpec {}", p.field),
        Action::Refuse(PlanError::PrivilegedRoleRequired { missing, removing }) => {
            let roles: Vec<&str> = missing.iter().map(|m| m.role.as_str()).collect();
            let verb = if *removing { " removing" } else { "" };
            format!("Refuse PrivilegedRoleRequired{verb} {}", roles.join(","))
        }
        Action::Refuse(PlanError::AccessDenied { .. }) => "Refuse AccessDenied".into(),
        Action::Refuse(PlanError::ExcessAccess(e)) => {
            let roles: Vec<&str> = e.roles.iter().map(|a| a.role_name()).collect();
            let scopes: Vec<String> = e.scopes.iter().map(|(_, s)| s.join("+")).collect();
            format!(
                "Refuse ExcessAccess {}|{}",
                scopes.join(","),
                roles.join(",")
            )
        }
        Action::Refuse(PlanError::PermissionsRemain(r)) => {
            format!("Refuse PermissionsRemain {}", r.count())
        }
        Action::Refuse(PlanError::PropagationTimedOut { what, .. }) => {
            format!("Refuse PropagationTimedOut {what:?}")
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
                    customer_name: None,
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
                partner(vec![relationship(
                    "rel-1",
                    &[APPLICATION_ADMINISTRATOR_ID],
                    30,
                )]),
                Tenant::NoAccess {
                    detail: "AADSTS50020".into(),
                },
            ),
            "Wait Propagating GdapAccess",
        ),
        (
            "Entra does not let the user in, and Microsoft gave no times: wait",
            intent(),
            seen(
                partner(vec![RemoteRelationship {
                    consent_capable_since: None,
                    ..relationship("rel-1", &[APPLICATION_ADMINISTRATOR_ID], 30)
                }]),
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
                    ..Default::default()
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
        pending: Pending::default(),
        remains: None,
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
            "a refused token and an app-only read that shows nothing: nothing to remove",
            intent(),
            remaining(deleting(seen(able(), not_consented())), Remains::Nothing),
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
            "Refuse PrivilegedRoleRequired removing User.Read.All",
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
    assert_eq!(steady.requeue, timing().consent.verify);
    let mut slow = timing();
    slow.general.poll = Duration::from_secs(600);
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
    assert_eq!(revoked.requeue, timing().consent.verify);
    let write = plan(&intent(), &seen(able(), not_consented()), &timing(), now());
    assert_eq!(
        write.requeue,
        timing().general.poll,
        "after a write the next look waits for Microsoft: the next read would only lag"
    );
}

// ---------------------------------------------------------------------------------------------
// Microsoft is eventually consistent: the operator's own writes that reads do not show yet.
// ---------------------------------------------------------------------------------------------

/// The Partner Center consent of the default intent's Microsoft Graph scopes.
fn graph_consent_write() -> Write {
    Write::Consent {
        scopes: BTreeMap::from([(MICROSOFT_GRAPH_APP_ID.into(), scopes(&FULL_GRAPH))]),
        exact: false,
    }
}

fn app_role_write(sp: &str, role: &str) -> Write {
    Write::AppRole {
        resource_sp_id: sp.into(),
        app_role_id: role.into(),
    }
}

/// `o` with `write` made `ago` before now.
fn after(mut o: Observed, write: Write, ago: Span) -> Observed {
    o.pending = o.pending.recorded(write, now() - ago);
    o
}

fn secs(n: i64) -> Span {
    Span::seconds(n)
}

#[test]
fn a_read_that_does_not_show_a_write_yet_is_waited_for_never_written_again() {
    let with_o365_scopes = with(|i| {
        i.grants
            .as_mut()
            .unwrap()
            .push(grant(1, O365, &["ActivityFeed.Read"], &[]));
    });
    let two_roles = with(|i| {
        i.grants.as_mut().unwrap()[0].app_roles =
            vec!["User.Read.All".into(), "Directory.Read.All".into()];
    });
    let two_roles_view = |assigned: bool| {
        read(|v| {
            let graph = v.resources.get_mut(MICROSOFT_GRAPH_APP_ID).unwrap();
            graph
                .as_mut()
                .unwrap()
                .app_roles
                .insert("directory.read.all".into(), "dir-read".into());
            if !assigned {
                v.assignments.clear();
            }
        })
    };
    let nothing_yet = read(|v| {
        v.app_principal = None;
        v.grants.clear();
        v.assignments.clear();
    });
    check(vec![
        (
            "after the consent Entra still refuses the delegated token (AADSTS65001)",
            intent(),
            after(
                seen(able(), not_consented()),
                graph_consent_write(),
                secs(20),
            ),
            "Wait Propagating Consent",
        ),
        (
            "after the consent Graph answers 403 to the reads it allows",
            intent(),
            after(
                seen(
                    able(),
                    Tenant::NotConsented {
                        detail: "Graph 403 Authorization_RequestDenied".into(),
                    },
                ),
                graph_consent_write(),
                secs(20),
            ),
            "Wait Propagating Consent",
        ),
        (
            "after the consent Graph does not show the app's service principal yet",
            intent(),
            after(seen(able(), nothing_yet), graph_consent_write(), secs(3)),
            "Wait Propagating Consent",
        ),
        (
            "after the consent Graph shows the app but not its grants: no delete and redo",
            intent(),
            after(
                seen(
                    able(),
                    read(|v| {
                        v.grants.clear();
                        v.assignments.clear();
                    }),
                ),
                graph_consent_write(),
                secs(3),
            ),
            "Wait Propagating Consent",
        ),
        (
            "after a replace Graph still shows the old grant",
            intent(),
            after(
                seen(
                    able(),
                    read(|v| {
                        v.grants.insert(
                            MICROSOFT_GRAPH_APP_ID.into(),
                            scopes(&["Application.ReadWrite.All"]),
                        );
                    }),
                ),
                graph_consent_write(),
                secs(3),
            ),
            "Wait Propagating Consent",
        ),
        (
            "a gap the pending consent does not cover is still consented (a spec change)",
            with_o365_scopes.clone(),
            after(
                seen(
                    able(),
                    read(|v| {
                        v.resources.insert(O365.into(), Some(o365_sp()));
                    }),
                ),
                graph_consent_write(),
                secs(3),
            ),
            "Replace graph[User.Read.All,Application.ReadWrite.All,AppRoleAssignment.ReadWrite.All] other[ActivityFeed.Read]",
        ),
        (
            "after the service principal create Graph does not show it yet",
            with(|i| {
                with_o365(i);
                i.create_missing_service_principals = true;
            }),
            after(
                seen(
                    able(),
                    read(|v| {
                        v.resources.insert(O365.into(), None);
                    }),
                ),
                Write::ServicePrincipal {
                    app_id: O365.into(),
                },
                secs(2),
            ),
            "Wait Propagating ServicePrincipal",
        ),
        (
            "after the app role grant Graph does not show it yet",
            intent(),
            after(
                seen(able(), read(|v| v.assignments.clear())),
                app_role_write("graph-sp", USER_READ_ALL),
                secs(2),
            ),
            "Wait Propagating AppRole",
        ),
        (
            "another missing app role is granted meanwhile",
            two_roles.clone(),
            after(
                seen(able(), two_roles_view(false)),
                app_role_write("graph-sp", USER_READ_ALL),
                secs(2),
            ),
            "GrantAppRole Directory.Read.All to app-sp on graph-sp",
        ),
        (
            "a consent not shown within --propagation-timeout is a failure, not a second consent",
            intent(),
            after(
                seen(able(), not_consented()),
                graph_consent_write(),
                Span::hours(2),
            ),
            "Refuse PropagationTimedOut Consent",
        ),
        (
            "an app role not shown within --propagation-timeout is a failure, not a second grant",
            intent(),
            after(
                seen(able(), read(|v| v.assignments.clear())),
                app_role_write("graph-sp", USER_READ_ALL),
                Span::hours(2),
            ),
            "Refuse PropagationTimedOut AppRole",
        ),
        (
            "once everything shows, the consent is complete",
            intent(),
            after(seen(able(), read(|_| {})), graph_consent_write(), secs(30)),
            "Idle",
        ),
        (
            "with reconsent Automatic a repair is waited for like any write",
            with(|i| i.reconsent = ReconsentPolicy::Automatic),
            after(
                verified(seen(able(), not_consented())),
                graph_consent_write(),
                secs(20),
            ),
            "Wait Propagating Consent",
        ),
    ]);
}

#[test]
fn gdap_access_that_is_still_propagating_is_a_wait_then_a_failure() {
    let no_access = || Tenant::NoAccess {
        detail: "AADSTS50020".into(),
    };
    let since = |minutes| {
        partner(vec![relationship(
            "rel-1",
            &[
                APPLICATION_ADMINISTRATOR_ID,
                PRIVILEGED_ROLE_ADMINISTRATOR_ID,
            ],
            minutes,
        )])
    };
    check(vec![
        (
            "AADSTS50020 just after the role settled: Microsoft still propagates it",
            intent(),
            seen(since(20), no_access()),
            "Wait Propagating GdapAccess",
        ),
        (
            "AADSTS50020 more than --propagation-timeout after the role: a failure",
            intent(),
            seen(since(120), no_access()),
            "Refuse PropagationTimedOut GdapAccess",
        ),
    ]);
    let t = timing();
    let recent = since(20);
    assert_eq!(
        access_propagating_since(&intent(), &recent, &t, now()),
        recent.relationships[0].consent_capable_since,
        "a Partner Center 403 now is Microsoft propagating the role"
    );
    assert_eq!(
        access_propagating_since(&intent(), &since(120), &t, now()),
        None,
        "an hour later it is a refusal a person must look at"
    );
    assert_eq!(
        access_propagating_since(&intent(), &partner(vec![]), &t, now()),
        None,
        "without a consent-capable role it is no propagation"
    );
}

#[test]
fn deletion_waits_for_its_own_removals_and_removes_a_consent_reads_do_not_show_yet() {
    check(vec![
        (
            "an app role removal Graph does not show yet is waited for, not repeated",
            intent(),
            after(
                deleting(seen(able(), read(|_| {}))),
                Write::AppRoleRemoval {
                    assignment_id: "ara-1".into(),
                },
                secs(2),
            ),
            "Wait Propagating AppRoleRemoval",
        ),
        (
            "a consent removal Graph does not show yet is waited for, not repeated",
            intent(),
            after(
                deleting(seen(able(), read(|v| v.assignments.clear()))),
                Write::ConsentRemoval,
                secs(2),
            ),
            "Wait Propagating ConsentRemoval",
        ),
        (
            "a consent Entra does not honour yet is removed all the same: no leak",
            intent(),
            after(
                deleting(seen(able(), not_consented())),
                graph_consent_write(),
                secs(20),
            ),
            "RemoveConsent",
        ),
        (
            "an app role granted but not shown yet is waited for before the consent goes",
            intent(),
            after(
                deleting(seen(able(), read(|v| v.assignments.clear()))),
                app_role_write("graph-sp", USER_READ_ALL),
                secs(2),
            ),
            "Wait Propagating AppRole",
        ),
        (
            "after its own removal a refused token means nothing is left",
            intent(),
            after(
                deleting(seen(able(), not_consented())),
                Write::ConsentRemoval,
                secs(2),
            ),
            "Release Done",
        ),
        (
            "after the removal the reads that show it release",
            intent(),
            after(
                deleting(seen(
                    able(),
                    read(|v| {
                        v.assignments.clear();
                        v.grants.clear();
                    }),
                )),
                Write::ConsentRemoval,
                secs(2),
            ),
            "Release Done",
        ),
    ]);
}

#[test]
fn propagation_waits_back_off_from_the_poll_interval_and_end_at_the_timeout() {
    let t = timing();
    let requeue = |ago: Span| {
        let o = after(seen(able(), not_consented()), graph_consent_write(), ago);
        plan(&intent(), &o, &t, now()).requeue
    };
    assert_eq!(requeue(secs(1)), t.general.poll, "first the poll interval");
    assert_eq!(requeue(secs(40)), Duration::from_secs(40), "then doubling");
    assert_eq!(
        requeue(Span::minutes(20)),
        t.general.resync,
        "at most the resync interval"
    );
    assert_eq!(
        requeue(Span::minutes(59) + secs(50)),
        Duration::from_secs(10),
        "and never past the timeout"
    );
    assert_eq!(
        requeue(Span::hours(2)),
        t.general.resync,
        "a timed-out wait is looked at again"
    );
}

#[test]
fn the_record_of_pending_writes_adds_each_write_and_drops_what_reads_show() {
    let t = timing();
    let o = seen(able(), not_consented());
    let consent = plan(&intent(), &o, &t, now());
    assert_eq!(kind(&consent.action), GRAPH_CONSENT);
    let recorded = pending_after(&o, &consent, true, now());
    assert_eq!(
        recorded,
        Pending::default().recorded(graph_consent_write(), now())
    );
    assert_eq!(
        pending_after(&o, &consent, false, now()),
        Pending::default(),
        "a write Microsoft refused is not pending"
    );

    // A lagging read keeps it; a read that shows it drops it.
    let lagging = Observed {
        pending: recorded.clone(),
        ..seen(able(), read(|v| v.assignments.clear()))
    };
    let lagging = Observed {
        tenant: Ok(read(|v| {
            v.grants.clear();
            v.assignments.clear();
        })),
        ..lagging
    };
    let waiting = plan(&intent(), &lagging, &t, now());
    assert_eq!(pending_after(&lagging, &waiting, false, now()), recorded);
    let shown = Observed {
        tenant: Ok(read(|v| v.assignments.clear())),
        ..lagging.clone()
    };
    let grant = plan(&intent(), &shown, &t, now());
    assert_eq!(
        kind(&grant.action),
        "GrantAppRole User.Read.All to app-sp on graph-sp"
    );
    let later = now() + secs(5);
    assert_eq!(
        pending_after(&shown, &grant, true, later),
        Pending::default().recorded(app_role_write("graph-sp", USER_READ_ALL), later),
        "the consent shows, so only the app role is pending"
    );

    // Verified complete: nothing is pending any more, so a later revocation is one.
    let complete = Observed {
        tenant: Ok(read(|_| {})),
        ..lagging
    };
    let idle = plan(&intent(), &complete, &t, now());
    assert_eq!(
        pending_after(&complete, &idle, false, now()),
        Pending::default()
    );

    // A second consent replaces the record of the first; the annotation round-trips.
    let twice = recorded.recorded(graph_consent_write(), later);
    assert_eq!(twice.0.len(), 1);
    assert_eq!(twice.0[0].at, later);
    let text = twice.to_annotation().unwrap();
    assert!(text.contains("\"kind\":\"consent\""), "{text}");
    assert_eq!(Pending::parse(Some(&text)).unwrap(), twice);
    assert_eq!(Pending::parse(None).unwrap(), Pending::default());
    assert!(Pending::parse(Some("not json")).is_err());
    assert_eq!(Pending::default().to_annotation(), None);
    assert_eq!(graph_consent_write().awaited(), Awaited::Consent);
}

// ---------------------------------------------------------------------------------------------
// Deletion never reports "nothing left" while something is left.
// ---------------------------------------------------------------------------------------------

fn remaining(mut o: Observed, remains: Remains) -> Observed {
    o.remains = Some(remains);
    o
}

fn holds(grants: &[&str], roles: &[&str]) -> Remains {
    Remains::Holds {
        grants: grants
            .iter()
            .map(|g| (MICROSOFT_GRAPH_APP_ID.to_string(), scopes(&[g])))
            .collect(),
        roles: roles
            .iter()
            .map(|id| graph_assignment(id, USER_READ_ALL, "User.Read.All"))
            .collect(),
    }
}

fn no_access() -> Tenant {
    Tenant::NoAccess {
        detail: "AADSTS50020".into(),
    }
}

fn denied() -> Tenant {
    Tenant::Denied {
        detail: "Authorization_RequestDenied".into(),
    }
}

/// The relationship ended: Microsoft lists none with the customer.
fn lapsed() -> PartnerSide {
    partner(vec![])
}

#[test]
fn a_closed_delegated_path_releases_only_when_the_app_only_read_shows_nothing_left() {
    check(vec![
        (
            "what is left is not known yet: wait, never release",
            intent(),
            deleting(seen(lapsed(), no_access())),
            "Wait Unreadable",
        ),
        (
            "no GDAP access, the app holds an application permission: reported, kept",
            intent(),
            remaining(
                deleting(seen(lapsed(), no_access())),
                holds(&[], &["ara-1"]),
            ),
            "Refuse PermissionsRemain 1",
        ),
        (
            "no GDAP access, delegated grants left: reported (Partner Center would refuse too)",
            intent(),
            remaining(
                deleting(seen(lapsed(), no_access())),
                holds(&["User.Read.All"], &[]),
            ),
            "Refuse PermissionsRemain 1",
        ),
        (
            "no GDAP access, nothing left: released",
            intent(),
            remaining(deleting(seen(lapsed(), no_access())), holds(&[], &[])),
            "Release NothingToDelete",
        ),
        (
            "the app's service principal cannot be read: reported as left",
            intent(),
            remaining(
                deleting(seen(lapsed(), no_access())),
                Remains::Unknown {
                    detail: "403".into(),
                },
            ),
            "Refuse PermissionsRemain 1",
        ),
        (
            "GDAP access still propagating: a wait, not a leftover",
            intent(),
            remaining(
                deleting(seen(
                    partner(vec![relationship(
                        "rel-1",
                        &[APPLICATION_ADMINISTRATOR_ID],
                        20,
                    )]),
                    no_access(),
                )),
                holds(&[], &["ara-1"]),
            ),
            "Wait Propagating GdapAccess",
        ),
        (
            "the customer removed the grants, application permissions stay: reported",
            intent(),
            remaining(
                deleting(seen(able(), not_consented())),
                holds(&[], &["ara-1"]),
            ),
            "Refuse PermissionsRemain 1",
        ),
        (
            "grants left while Entra refuses the token: Partner Center removes them",
            intent(),
            remaining(
                deleting(seen(able(), not_consented())),
                holds(&["User.Read.All"], &[]),
            ),
            "RemoveConsent",
        ),
        (
            "a Graph 403: what the app-only read shows decides",
            intent(),
            remaining(deleting(seen(able(), denied())), holds(&[], &["ara-1"])),
            "Refuse PermissionsRemain 1",
        ),
        (
            "its own removal that the app-only read does not show yet is waited for",
            intent(),
            after(
                remaining(deleting(seen(able(), denied())), holds(&[], &["ara-1"])),
                Write::AppRoleRemoval {
                    assignment_id: "ara-1".into(),
                },
                secs(2),
            ),
            "Wait Propagating AppRoleRemoval",
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Narrowing is revoking: the spec is the truth about what the app may do in the tenant.
// ---------------------------------------------------------------------------------------------

/// User Administrator: a role that lets the partner user read, not consent.
const USER_ADMINISTRATOR_ID: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";

const DIRECTORY_READ_ALL: &str = "7ab1d382-f21e-4acd-a863-ba3e13f7da61";

fn extra_role(v: &mut TenantView) {
    v.assignments.push(graph_assignment(
        "ara-9",
        DIRECTORY_READ_ALL,
        "Directory.Read.All",
    ));
}

fn extra_scope(v: &mut TenantView) {
    v.grants
        .get_mut(MICROSOFT_GRAPH_APP_ID)
        .unwrap()
        .insert("mail.read".into());
}

fn observing(i: &mut Asked) {
    i.management = ManagementPolicy::Observe;
}

#[test]
fn narrowing_the_spec_removes_what_it_no_longer_gives() {
    check(vec![
        (
            "an application permission no longer in the spec is removed",
            intent(),
            seen(able(), read(extra_role)),
            "RevokeAppRole Directory.Read.All ara-9",
        ),
        (
            "a scope no longer in the spec: the consent is replaced with the spec's scopes",
            intent(),
            seen(able(), read(extra_scope)),
            &format!("Replace graph[{}]", FULL_GRAPH.join(",")),
        ),
        (
            "a resource no longer in the spec loses its grant through the same replacement",
            intent(),
            seen(
                able(),
                read(|v| {
                    v.grants.insert(O365.into(), scopes(&["ActivityFeed.Read"]));
                }),
            ),
            &format!("Replace graph[{}]", FULL_GRAPH.join(",")),
        ),
        (
            "removals go before additions",
            intent(),
            seen(
                able(),
                read(|v| {
                    extra_role(v);
                    v.assignments.retain(|a| a.id != "ara-1");
                }),
            ),
            "RevokeAppRole Directory.Read.All ara-9",
        ),
        (
            "a verified consent with extra access is narrowed, never called revoked",
            with(|i| i.reconsent = ReconsentPolicy::Report),
            verified(seen(able(), read(extra_role))),
            "RevokeAppRole Directory.Read.All ara-9",
        ),
        (
            "the operator's own Graph scopes are never excess",
            intent(),
            seen(able(), read(|_| {})),
            "Idle",
        ),
        (
            "a removal Graph does not show yet is waited for",
            intent(),
            after(
                seen(able(), read(extra_role)),
                Write::AppRoleRemoval {
                    assignment_id: "ara-9".into(),
                },
                secs(2),
            ),
            "Wait Propagating AppRoleRemoval",
        ),
        (
            "a narrowing consent the reads do not show yet is waited for",
            intent(),
            after(
                seen(able(), read(extra_scope)),
                exact_graph_consent(),
                secs(2),
            ),
            "Wait Propagating Consent",
        ),
        (
            "a narrowing consent whose removal shows first is waited for too, never redone",
            intent(),
            after(
                seen(able(), read(|v| v.grants.clear())),
                exact_graph_consent(),
                secs(2),
            ),
            "Wait Propagating Consent",
        ),
        (
            "a Graph permission cannot be removed without a privileged role",
            intent(),
            seen(
                partner(vec![relationship(
                    "rel-1",
                    &[APPLICATION_ADMINISTRATOR_ID],
                    60,
                )]),
                read(|v| {
                    extra_role(v);
                }),
            ),
            "Refuse PrivilegedRoleRequired removing Directory.Read.All",
        ),
        (
            "Observe reports extra access and changes nothing",
            with(observing),
            seen(
                able(),
                read(|v| {
                    extra_role(v);
                    extra_scope(v);
                }),
            ),
            "Refuse ExcessAccess mail.read|Directory.Read.All",
        ),
    ]);
}

/// The consent that replaced the previous one with the default intent's Graph scopes only.
fn exact_graph_consent() -> Write {
    Write::Consent {
        scopes: BTreeMap::from([(MICROSOFT_GRAPH_APP_ID.into(), scopes(&FULL_GRAPH))]),
        exact: true,
    }
}

#[test]
fn a_narrowing_consent_is_shown_only_when_nothing_else_is_left() {
    let exact = exact_graph_consent();
    let old = read(extra_scope);
    assert!(!exact.shown_in(&old), "the old, wider grant is still read");
    assert!(exact.shown_in(&read(|_| {})));
    assert!(
        graph_consent_write().shown_in(&old),
        "a consent that added scopes is shown once they are there"
    );
}

// ---------------------------------------------------------------------------------------------
// Reasons that tell the truth: only the customer revokes.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_closed_path_is_explained_by_the_relationship_before_any_revocation() {
    let report = || with(|i| i.reconsent = ReconsentPolicy::Report);
    check(vec![
        (
            "the relationship ended: waiting for it, not revoked",
            report(),
            verified(seen(lapsed(), no_access())),
            "Refuse NoConsentCapableRole",
        ),
        (
            "the relationship lost the consent-capable role: not revoked",
            report(),
            verified(seen(
                partner(vec![relationship("rel-1", &[USER_ADMINISTRATOR_ID], 60)]),
                not_consented(),
            )),
            "Refuse NoConsentCapableRole",
        ),
        (
            "GDAP access propagating again: a wait",
            report(),
            verified(seen(
                partner(vec![relationship(
                    "rel-1",
                    &[APPLICATION_ADMINISTRATOR_ID],
                    20,
                )]),
                no_access(),
            )),
            "Wait Propagating GdapAccess",
        ),
        (
            "an unexplained Graph 403: AccessDenied, never repaired blindly",
            with(|i| i.reconsent = ReconsentPolicy::Automatic),
            verified(seen(able(), denied())),
            "Refuse AccessDenied",
        ),
        (
            "Entra says not consented while the relationship holds: the customer revoked it",
            report(),
            verified(seen(able(), not_consented())),
            "Refuse Revoked",
        ),
        (
            "its own consent still propagating is not a revocation",
            report(),
            after(
                verified(seen(able(), not_consented())),
                graph_consent_write(),
                secs(20),
            ),
            "Wait Propagating Consent",
        ),
        (
            "a gap its own pending write covers is not a revocation",
            report(),
            after(
                verified(seen(able(), read(|v| v.grants.clear()))),
                exact_graph_consent(),
                secs(2),
            ),
            "Wait Propagating Consent",
        ),
        (
            "a gap nothing explains is",
            report(),
            verified(seen(able(), read(|v| v.assignments.clear()))),
            "Refuse Revoked",
        ),
    ]);
}

#[test]
fn grants_left_without_a_consent_capable_role_are_reported_not_retried() {
    check(vec![(
        "Partner Center would refuse: no relationship gives a consent-capable role",
        intent(),
        remaining(
            deleting(seen(lapsed(), not_consented())),
            holds(&["User.Read.All"], &[]),
        ),
        "Refuse PermissionsRemain 1",
    )]);
}

#[test]
fn an_app_only_token_without_permissions_ends_the_deletion_only_when_no_grant_is_left() {
    check(vec![
        (
            "no delegated grant (AADSTS65001) and no application permission: nothing left",
            intent(),
            remaining(
                deleting(seen(able(), not_consented())),
                Remains::NoAppPermissions,
            ),
            "Release NothingToDelete",
        ),
        (
            "no GDAP access: delegated grants may remain, reported",
            intent(),
            remaining(
                deleting(seen(lapsed(), no_access())),
                Remains::NoAppPermissions,
            ),
            "Refuse PermissionsRemain 1",
        ),
    ]);
}
