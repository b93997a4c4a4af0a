//! Table tests of the report step: which status a situation produces.

use super::act::Applied;
use super::desired::{Asked, Intent};
use super::observed::*;
use super::plan::*;
use super::status::{Inputs, Outcome, build};
use super::step::*;
use super::tenant::*;
use crate::api::AppConsentStatus;
use crate::api::conditions::{reasons, types};
use crate::api::consent_rules::{MICROSOFT_GRAPH_APP_ID, ResolvedGrant};
use crate::api::roles::APPLICATION_ADMINISTRATOR_ID;
use crate::api::{DeletionPolicy, ManagementPolicy, ReconsentPolicy};
use crate::controllers::failure::Failure;
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet};

const O365: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";
const URL: &str = "https://login.example/t/adminconsent?client_id=a";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn intent() -> Intent {
    Asked {
        customer: "11111111-2222-3333-4444-555555555555".into(),
        application_id: "57667d41-992a-49b0-99d8-ddf68328373f".into(),
        display_name: None,
        relationship_ref: Some("contoso".into()),
        create_missing_service_principals: false,
        reconsent: ReconsentPolicy::Report,
        deletion: DeletionPolicy::Delete,
        management: ManagementPolicy::Manage,
        grants: Ok(vec![
            ResolvedGrant {
                index: 0,
                resource_app_id: MICROSOFT_GRAPH_APP_ID.into(),
                scopes: vec!["User.Read.All".into()],
                app_roles: vec!["User.Read.All".into()],
            },
            ResolvedGrant {
                index: 1,
                resource_app_id: O365.into(),
                scopes: vec![],
                app_roles: vec!["ActivityFeed.Read".into()],
            },
        ]),
    }
    .resolve()
}

fn partner(roles: &[&str], since_minutes: i64) -> PartnerSide {
    let ids: BTreeSet<String> = roles.iter().map(|s| s.to_string()).collect();
    PartnerSide {
        reference: Some(Reference::Ready {
            relationship_id: Some("rel-1".into()),
        }),
        relationships: vec![RemoteRelationship {
            id: "rel-1".into(),
            display_name: "contoso-1234".into(),
            role_ids: ids.clone(),
            user_role_ids: ids,
            consent_capable_since: Some(now() - Span::minutes(since_minutes)),
        }],
        customer_name: Some("Contoso Ltd".into()),
    }
}

fn view(o365: bool, assigned: bool) -> TenantView {
    let mut resources = BTreeMap::from([(
        MICROSOFT_GRAPH_APP_ID.to_string(),
        Some(ResourcePrincipal {
            id: "graph-sp".into(),
            app_roles: BTreeMap::from([("user.read.all".into(), "r1".into())]),
        }),
    )]);
    resources.insert(
        O365.into(),
        o365.then(|| ResourcePrincipal {
            id: "o365-sp".into(),
            app_roles: BTreeMap::from([("activityfeed.read".into(), "r2".into())]),
        }),
    );
    let scopes = [
        "user.read.all",
        "application.readwrite.all",
        "approleassignment.readwrite.all",
    ];
    let assignments = if assigned {
        vec![
            RoleAssignment {
                id: "a1".into(),
                resource_id: "graph-sp".into(),
                app_role_id: "r1".into(),
                ..Default::default()
            },
            RoleAssignment {
                id: "a2".into(),
                resource_id: "o365-sp".into(),
                app_role_id: "r2".into(),
                ..Default::default()
            },
        ]
    } else {
        vec![]
    };
    TenantView {
        app_principal: Some("app-sp".into()),
        resources,
        grants: BTreeMap::from([(
            MICROSOFT_GRAPH_APP_ID.to_string(),
            scopes.iter().map(|s| s.to_string()).collect(),
        )]),
        assignments,
    }
}

fn observed(partner: PartnerSide, tenant: Tenant, verified_before: bool) -> Observed {
    Observed {
        deleting: false,
        verified_before,
        consented_before: verified_before,
        partner: Ok(partner),
        tenant: Ok(tenant),
        pending: super::pending::Pending::default(),
        remains: None,
    }
}

struct Case {
    intent: Intent,
    observed: Observed,
    outcome: Outcome,
    previous: AppConsentStatus,
}

impl Case {
    fn new(observed: Observed) -> Case {
        Case {
            intent: intent(),
            observed,
            outcome: Outcome::Applied(Applied::Nothing),
            previous: AppConsentStatus::default(),
        }
    }

    fn build(&self) -> AppConsentStatus {
        let timing = Timing::default();
        let plan = plan(&self.intent, &self.observed, &timing, now());
        build(&Inputs {
            intent: &self.intent,
            observed: &self.observed,
            plan: &plan,
            outcome: &self.outcome,
            previous: &self.previous,
            generation: Some(3),
            timing,
            manual_consent_url: URL.to_string(),
            now: now(),
        })
    }
}

fn condition(status: &AppConsentStatus, type_: &str) -> (String, String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} in {:?}", status.conditions));
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn able() -> PartnerSide {
    partner(
        &[
            APPLICATION_ADMINISTRATOR_ID,
            crate::api::consent_rules::PRIVILEGED_ROLE_ADMINISTRATOR_ID,
        ],
        60,
    )
}

#[test]
fn a_complete_consent_is_ready_verified_and_names_its_relationship() {
    let status = Case::new(observed(able(), Tenant::Read(view(true, true)), false)).build();
    assert_eq!(condition(&status, types::READY).0, "True");
    let (ok, _, message) = condition(&status, types::CONSENTED);
    assert_eq!(ok, "True");
    assert!(message.contains("application User.Read.All"), "{message}");
    let (ok, reason, message) = condition(&status, types::PREREQUISITES_MET);
    assert_eq!((ok.as_str(), reason.as_str()), ("True", reasons::ACTIVE));
    assert!(
        message.contains("GdapRelationship contoso")
            && message.contains("Application Administrator"),
        "{message}"
    );
    assert_eq!(
        condition(&status, types::SERVICE_PRINCIPALS_PRESENT).0,
        "True"
    );
    assert!(status.last_verified_at.is_some());
    assert_eq!(status.verified_generation, Some(3));
    assert_eq!(status.relationship.as_ref().unwrap().id, "rel-1");
    assert_eq!(status.customer_display_name.as_deref(), Some("Contoso Ltd"));
    assert_eq!(
        status.relationship.as_ref().unwrap().object_name.as_deref(),
        Some("contoso")
    );
    assert!(status.manual_consent_url.is_none());
}

#[test]
fn a_missing_service_principal_is_named_with_its_workload() {
    let status = Case::new(observed(able(), Tenant::Read(view(false, false)), false)).build();
    assert_eq!(status.missing_service_principals, [O365]);
    let (ok, reason, message) = condition(&status, types::SERVICE_PRINCIPALS_PRESENT);
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", reasons::SERVICE_PRINCIPALS_MISSING)
    );
    assert!(
        message.contains("Office 365 Management APIs")
            && message.contains("not licensed")
            && message.contains("createMissingServicePrincipals"),
        "{message}"
    );
    assert_eq!(
        condition(&status, types::READY).1,
        reasons::SERVICE_PRINCIPALS_MISSING
    );
}

#[test]
fn graph_app_roles_without_a_privileged_role_are_reported_with_the_manual_link() {
    let app_admin = partner(&[APPLICATION_ADMINISTRATOR_ID], 60);
    let mut v = view(true, false);
    v.assignments.push(RoleAssignment {
        id: "a2".into(),
        resource_id: "o365-sp".into(),
        app_role_id: "r2".into(),
        ..Default::default()
    });
    let status = Case::new(observed(app_admin, Tenant::Read(v), false)).build();
    let (ok, reason, message) = condition(&status, types::CONSENTED);
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", reasons::PRIVILEGED_ROLE_REQUIRED)
    );
    assert!(
        message.contains("User.Read.All of Microsoft Graph")
            && message.contains("Global Administrator or Privileged Role Administrator")
            && message.contains("holds only Application Administrator"),
        "{message}"
    );
    assert!(
        !message.contains("ActivityFeed"),
        "only what is missing: {message}"
    );
    assert_eq!(status.manual_consent_url.as_deref(), Some(URL));
}

#[test]
fn no_consent_capable_role_and_no_mfa_publish_the_manual_link() {
    let readers = partner(&["88d8e3e3-8f55-4a1e-953a-9b9898b8876b"], 60);
    let status = Case::new(observed(
        readers,
        Tenant::NotConsented { detail: "x".into() },
        false,
    ))
    .build();
    let (ok, reason, message) = condition(&status, types::PREREQUISITES_MET);
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", reasons::NO_CONSENT_CAPABLE_ROLE)
    );
    assert!(
        message.contains("Directory Readers")
            && message.contains("Cloud Application Administrator"),
        "{message}"
    );
    assert_eq!(status.manual_consent_url.as_deref(), Some(URL));

    let mut mfa = Case::new(observed(
        able(),
        Tenant::NotConsented { detail: "x".into() },
        false,
    ));
    mfa.outcome = Outcome::Failed {
        failure: Failure::new(
            reasons::MFA_REQUIRED,
            "MfaRequired: sign in again with MFA",
            false,
        ),
        manual: true,
    };
    let status = mfa.build();
    assert_eq!(
        condition(&status, types::CONSENTED).1,
        reasons::MFA_REQUIRED
    );
    assert_eq!(condition(&status, types::READY).1, reasons::MFA_REQUIRED);
    assert_eq!(status.manual_consent_url.as_deref(), Some(URL));
    assert_eq!(status.failed_attempts, 1);
}

#[test]
fn a_revoked_consent_says_what_is_gone_and_what_to_do() {
    let mut case = Case::new(observed(able(), Tenant::Read(view(true, false)), true));
    case.previous.last_verified_at = Some(super::status::to_time(now() - Span::hours(1)));
    let status = case.build();
    let (ok, reason, message) = condition(&status, types::CONSENTED);
    assert_eq!((ok.as_str(), reason.as_str()), ("False", reasons::REVOKED));
    assert!(
        message.contains("application permission User.Read.All of Microsoft Graph")
            && message.contains("reconsent: Automatic"),
        "{message}"
    );
    assert_eq!(condition(&status, types::READY).1, reasons::REVOKED);
    assert_eq!(
        status.last_verified_at, case.previous.last_verified_at,
        "kept"
    );

    case.intent = Asked {
        reconsent: ReconsentPolicy::Automatic,
        ..case.intent.asked.clone()
    }
    .resolve();
    let status = case.build();
    let (_, reason, message) = condition(&status, types::CONSENTED);
    assert_eq!(reason, reasons::REVOKED);
    assert!(message.contains("consenting again"), "{message}");
}

#[test]
fn settling_says_until_when_and_a_transient_failure_leaves_ready_alone() {
    let status = Case::new(observed(
        partner(&[APPLICATION_ADMINISTRATOR_ID], 5),
        Tenant::NotConsented { detail: "x".into() },
        false,
    ))
    .build();
    let (_, reason, message) = condition(&status, types::PREREQUISITES_MET);
    assert_eq!(reason, reasons::SETTLING);
    assert!(
        message.contains("2026-11-22T12:10:00") && message.contains("15m"),
        "{message}"
    );
    assert_eq!(condition(&status, types::READY).1, reasons::SETTLING);

    let mut transient = Case::new(observed(able(), Tenant::Read(view(true, true)), true));
    transient.previous = status.clone();
    transient.outcome = Outcome::Failed {
        failure: Failure::new(reasons::TRANSIENT_ERROR, "503", true),
        manual: false,
    };
    let after = transient.build();
    assert_eq!(condition(&after, types::SYNCED).1, reasons::TRANSIENT_ERROR);
    assert_eq!(
        condition(&after, types::READY),
        condition(&status, types::READY)
    );
}

#[test]
fn a_consent_records_when() {
    let mut case = Case::new(observed(
        able(),
        Tenant::NotConsented { detail: "x".into() },
        false,
    ));
    case.outcome = Outcome::Applied(Applied::Consented("consented".into()));
    let status = case.build();
    assert!(status.consented_at.is_some());
    assert_eq!(
        condition(&status, types::CONSENTED).1,
        reasons::NOT_CONSENTED
    );
    assert!(status.last_verified_at.is_none());
}

#[test]
fn a_write_microsoft_does_not_show_yet_is_propagating_with_how_long_it_has_waited() {
    use super::pending::{Pending, Write};
    let consent = Write::Consent {
        exact: false,
        scopes: BTreeMap::from([(
            MICROSOFT_GRAPH_APP_ID.to_string(),
            BTreeSet::from(["user.read.all".to_string()]),
        )]),
    };
    let mut o = observed(
        able(),
        Tenant::NotConsented {
            detail: "AADSTS65001: consent not in effect".into(),
        },
        false,
    );
    o.pending = Pending::default().recorded(consent.clone(), now() - Span::seconds(40));
    let status = Case::new(o.clone()).build();
    let (ok, reason, message) = condition(&status, types::CONSENTED);
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", reasons::PROPAGATING)
    );
    assert!(
        message.contains("Partner Center consent made at 2026-11-22T11:59:20Z")
            && message.contains("AADSTS65001")
            && message.contains("waited 40s")
            && message.contains("until 2026-11-22T12:59:20Z")
            && message.contains("--propagation-timeout 1h"),
        "{message}"
    );
    assert_eq!(condition(&status, types::READY).1, reasons::PROPAGATING);
    assert_eq!(
        condition(&status, types::SYNCED).0,
        "True",
        "a wait is no failure"
    );
    assert_eq!(status.failed_attempts, 0);

    o.pending = Pending::default().recorded(consent, now() - Span::hours(2));
    let status = Case::new(o).build();
    let (_, reason, message) = condition(&status, types::CONSENTED);
    assert_eq!(reason, reasons::PROPAGATION_TIMED_OUT);
    assert!(
        message.contains("gdap.io/pending-writes") && message.contains("does not write again"),
        "{message}"
    );
    assert_eq!(
        condition(&status, types::READY).1,
        reasons::PROPAGATION_TIMED_OUT
    );
}

#[test]
fn a_partner_center_403_while_the_role_is_recent_is_propagating_not_a_manual_consent() {
    let timing = Timing::default();
    let mut case = Case::new(observed(
        able(),
        Tenant::NotConsented { detail: "x".into() },
        false,
    ));
    case.outcome = Outcome::Failed {
        failure: super::status::propagating_refusal(
            "consenting through Partner Center: PartnerCenterForbidden",
            now() - Span::minutes(20),
            &timing,
            now(),
        ),
        manual: false,
    };
    let status = case.build();
    let (ok, reason, message) = condition(&status, types::CONSENTED);
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", reasons::PROPAGATING)
    );
    assert!(
        message.contains("PartnerCenterForbidden")
            && message.contains("2026-11-22T11:40:00Z")
            && message.contains("waited 20m"),
        "{message}"
    );
    assert_eq!(condition(&status, types::READY).1, reasons::PROPAGATING);
    assert_eq!(condition(&status, types::SYNCED).1, reasons::PROPAGATING);
    assert!(status.manual_consent_url.is_none());
    assert_eq!(status.failed_attempts, 1, "retried with the backoff");
}

// ---------------------------------------------------------------------------------------------
// Reasons that tell the truth (issue: only the customer revokes).
// ---------------------------------------------------------------------------------------------

fn lapsed() -> PartnerSide {
    PartnerSide {
        reference: Some(Reference::NotReady {
            message: "Expired: the relationship expired".into(),
        }),
        relationships: vec![],
        customer_name: None,
    }
}

fn verified_before(mut o: Observed) -> Observed {
    o.verified_before = true;
    o
}

fn extra_permission(v: &mut TenantView) {
    v.assignments.push(RoleAssignment {
        id: "a9".into(),
        resource_id: "graph-sp".into(),
        app_role_id: "r9".into(),
        resource_app_id: Some(MICROSOFT_GRAPH_APP_ID.into()),
        role: Some("Directory.Read.All".into()),
    });
}

#[test]
fn a_lapsed_relationship_behind_a_verified_consent_is_never_called_revoked() {
    let no_access = Tenant::NoAccess {
        detail: "AADSTS50020".into(),
    };
    let status = Case::new(observed(lapsed(), no_access, true)).build();
    let (ok, reason, message) = condition(&status, types::CONSENTED);
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", reasons::RELATIONSHIP_NOT_ACTIVE)
    );
    assert!(message.contains("GdapRelationship contoso"), "{message}");
    assert_ne!(condition(&status, types::READY).1, reasons::REVOKED);
}

#[test]
fn an_unexplained_graph_403_is_access_denied_with_microsofts_answer() {
    let denied = Tenant::Denied {
        detail: "Authorization_RequestDenied: Insufficient privileges".into(),
    };
    let status = Case::new(observed(able(), denied, true)).build();
    let (ok, reason, message) = condition(&status, types::CONSENTED);
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", reasons::ACCESS_DENIED)
    );
    assert!(message.contains("Insufficient privileges"), "{message}");
}

#[test]
fn a_consent_the_customer_revoked_says_revoked() {
    let revoked = Tenant::NotConsented {
        detail: "AADSTS65001".into(),
    };
    let status = Case::new(observed(able(), revoked, true)).build();
    let (ok, reason, message) = condition(&status, types::CONSENTED);
    assert_eq!((ok.as_str(), reason.as_str()), ("False", reasons::REVOKED));
    assert!(
        message.contains("still gives the consent-capable role"),
        "{message}"
    );
}

#[test]
fn extra_access_under_observe_is_consented_but_not_ready() {
    let mut case = Case::new(observed(
        able(),
        Tenant::Read({
            let mut v = view(true, true);
            extra_permission(&mut v);
            v
        }),
        false,
    ));
    case.intent = Asked {
        management: ManagementPolicy::Observe,
        ..case.intent.asked.clone()
    }
    .resolve();
    let status = case.build();
    assert_eq!(condition(&status, types::CONSENTED).0, "True");
    let (ok, reason, message) = condition(&status, types::READY);
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", reasons::EXCESS_ACCESS)
    );
    assert!(
        message.contains("application permission Directory.Read.All of Microsoft Graph")
            && message.contains("changes nothing"),
        "{message}"
    );
}

#[test]
fn narrowing_under_way_keeps_consented_and_says_what_is_removed() {
    let mut v = view(true, true);
    extra_permission(&mut v);
    let status = Case::new(observed(able(), Tenant::Read(v), true)).build();
    assert_eq!(condition(&status, types::CONSENTED).0, "True");
    let (ok, reason, message) = condition(&status, types::READY);
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", reasons::RECONCILING)
    );
    assert!(
        message.contains("removing the application permission Directory.Read.All"),
        "{message}"
    );
}

#[test]
fn permissions_deletion_cannot_remove_are_named_with_what_the_admin_must_do() {
    let mut o = observed(
        lapsed(),
        Tenant::NoAccess {
            detail: "AADSTS50020".into(),
        },
        true,
    );
    o.deleting = true;
    o.remains = Some(Remains::Holds {
        grants: BTreeMap::from([(
            MICROSOFT_GRAPH_APP_ID.to_string(),
            BTreeSet::from(["user.read.all".to_string()]),
        )]),
        roles: vec![RoleAssignment {
            id: "a1".into(),
            resource_id: "graph-sp".into(),
            app_role_id: "r1".into(),
            resource_app_id: Some(MICROSOFT_GRAPH_APP_ID.into()),
            role: Some("User.Read.All".into()),
        }],
    });
    let status = verified_before_case(o).build();
    let (ok, reason, message) = condition(&status, types::READY);
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", reasons::PERMISSIONS_REMAIN)
    );
    for part in [
        "delegated user.read.all of Microsoft Graph",
        "application permission User.Read.All of Microsoft Graph",
        "delete the enterprise application 57667d41-992a-49b0-99d8-ddf68328373f",
        "deletionPolicy: Orphan",
        "AADSTS50020",
    ] {
        assert!(message.contains(part), "{part} missing: {message}");
    }
}

fn verified_before_case(o: Observed) -> Case {
    Case::new(verified_before(o))
}
