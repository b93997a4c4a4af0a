//! Tests of `act` (and of the tenant half of `observe`) against the in-process sandbox, the one
//! emulator of Microsoft: each action sends its requests as the partner's GDAP user and reports
//! what Microsoft answered. These tests read right after writing, so the sandbox runs without
//! its eventual consistency (`Consistency::immediate`); the lag itself is the plan's business
//! (`plan_tests`) and the end-to-end tests' (tests/e2e_lag_consent.rs).

use super::act::{Applied, Target, act};
use super::desired::{Asked, Intent};
use super::observe::read_tenant;
use super::step::Action;
use super::tenant::{ResourcePrincipal, Tenant};
use crate::api::consent_rules::{
    MICROSOFT_GRAPH_APP_ID, PRIVILEGED_ROLE_ADMINISTRATOR_ID, ResolvedGrant,
};
use crate::api::roles::APPLICATION_ADMINISTRATOR_ID;
use crate::api::{DeletionPolicy, ManagementPolicy, ReconsentPolicy};
use crate::controllers::sandbox_world::{SandboxWorld, read_back_options, text};
use crate::microsoft::models::directory::NewAppRoleAssignment;
use crate::microsoft::models::gdap::{
    AccessContainer, AccessDetails, CustomerParticipant, NewAccessAssignment, NewRelationship,
};
use crate::microsoft::{Audience, Reason};
use crate::sandbox::defaults;
use serde_json::Value;

const FABRIKAM: &str = defaults::FABRIKAM_TENANT_ID;
const O365: &str = defaults::apps::OFFICE365_MANAGEMENT;

type World = SandboxWorld;

async fn world(refresh_token: &str) -> World {
    SandboxWorld::start(read_back_options(), refresh_token).await
}

fn intent(grants: Vec<ResolvedGrant>) -> Intent {
    Asked {
        customer: FABRIKAM.into(),
        application_id: defaults::PARTNER_CLIENT_ID.into(),
        display_name: Some("act tests".into()),
        relationship_ref: None,
        create_missing_service_principals: true,
        reconsent: ReconsentPolicy::Report,
        deletion: DeletionPolicy::Delete,
        management: ManagementPolicy::Manage,
        grants: Ok(grants),
    }
    .resolve()
}

fn graph_grant() -> ResolvedGrant {
    ResolvedGrant {
        index: 0,
        resource_app_id: MICROSOFT_GRAPH_APP_ID.into(),
        scopes: vec!["User.Read".into()],
        app_roles: vec!["User.Read.All".into()],
    }
}

/// This kind's act and what its tests set up and read, on the sandbox world.
trait Consents {
    async fn run(&self, action: &Action) -> Result<Applied, super::act::ActError>;
    async fn relationship(&self, name: &str, roles: &[&str]);
    async fn tenant(&self, grants: Vec<ResolvedGrant>) -> Tenant;
    async fn writes_by_token(&self) -> Vec<(String, String, String)>;
}

impl Consents for World {
    async fn run(&self, action: &Action) -> Result<Applied, super::act::ActError> {
        let pc = self.clients.tokens.partner_center();
        let customer = self
            .clients
            .tokens
            .delegated_token(FABRIKAM, Audience::Graph);
        let target = Target {
            customer: FABRIKAM,
            application_id: defaults::PARTNER_CLIENT_ID,
            partner_center: self.clients.partner_center.as_ref(),
            directory: self.clients.directory.as_ref(),
            partner_center_token: &pc,
            customer_token: &customer,
            tokens: &self.clients.tokens,
        };
        act(action, &target).await
    }

    /// An active relationship with Fabrikam giving the App Admins group `roles`.
    async fn relationship(&self, name: &str, roles: &[&str]) {
        let token = self.clients.tokens.partner_graph();
        let gdap = self.clients.gdap.as_ref();
        let new = NewRelationship {
            display_name: name.into(),
            duration: "P30D".into(),
            customer: Some(CustomerParticipant {
                tenant_id: FABRIKAM.into(),
                display_name: None,
            }),
            access_details: AccessDetails::from_role_ids(roles.iter().copied()),
            auto_extend_duration: Some("PT0S".into()),
        };
        let created = gdap.create_relationship(&token, &new).await.unwrap();
        gdap.lock_for_approval(&token, &created.id).await.unwrap();
        let url = format!(
            "{}/_sandbox/relationships/{}/approve",
            self.sandbox.base_url(),
            created.id
        );
        let status = self
            .http
            .post(url)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success());
        let group = defaults::APP_ADMINS_GROUP_ID;
        let assignment = NewAccessAssignment {
            access_container: AccessContainer::security_group(group),
            access_details: AccessDetails::from_role_ids(roles.iter().copied()),
        };
        gdap.create_access_assignment(&token, &created.id, &assignment)
            .await
            .unwrap();
    }

    async fn tenant(&self, grants: Vec<ResolvedGrant>) -> Tenant {
        read_tenant(&self.clients, &intent(grants)).await.unwrap()
    }

    /// The logged writes as (method, path, token kind).
    async fn writes_by_token(&self) -> Vec<(String, String, String)> {
        let writes = SandboxWorld::writes(self).await;
        let token = |r: &Value| r["token"].as_str().unwrap_or("none").to_string();
        writes
            .iter()
            .map(|r| (text(r, "method"), text(r, "path"), token(r)))
            .collect()
    }
}

#[tokio::test]
async fn the_first_consent_goes_through_partner_center_and_opens_the_tenant() {
    let w = world(defaults::PARTNER_REFRESH_TOKEN).await;
    w.relationship("act-consent", &[APPLICATION_ADMINISTRATOR_ID])
        .await;
    let grants = vec![graph_grant()];
    assert!(
        matches!(w.tenant(grants.clone()).await, Tenant::NotConsented { ref detail } if detail.contains("90099")),
        "before any consent Entra refuses the delegated token in the customer (AADSTS90099)"
    );
    let i = intent(grants.clone());
    let graph_only = i.wanted.as_ref().unwrap().consent.clone();
    let consent = Action::Consent {
        body: graph_only.clone(),
        replace: false,
    };
    let Applied::Consented(note) = w.run(&consent).await.unwrap() else {
        panic!("expected a consent");
    };
    assert!(
        note.contains("User.Read,Application.ReadWrite.All,AppRoleAssignment.ReadWrite.All"),
        "{note}"
    );
    let Tenant::Read(view) = w.tenant(grants.clone()).await else {
        panic!("the delegated token works after the consent");
    };
    assert!(
        view.app_principal.is_some(),
        "Partner Center created the app's service principal"
    );
    assert!(view.grants[MICROSOFT_GRAPH_APP_ID].contains("approleassignment.readwrite.all"));
    assert_eq!(
        view.resources[MICROSOFT_GRAPH_APP_ID]
            .as_ref()
            .map(|r| r.app_roles.contains_key("user.read.all")),
        Some(true)
    );

    // A plain consent that finds one in place is done: Partner Center's 409 "already exists"
    // means the consent is there (typically the operator's own, which reads may not show yet);
    // nothing is deleted and nothing is sent again.
    let Applied::Consented(note) = w.run(&consent).await.unwrap() else {
        panic!("expected a consent");
    };
    assert!(note.contains("already has a consent"), "{note}");
    let path = format!("/v1/customers/{FABRIKAM}/applicationconsents");
    let writes = w.writes_by_token().await;
    let methods: Vec<(&str, &str)> = writes
        .iter()
        .filter(|(_, p, _)| p.starts_with("/v1/"))
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    let item = format!("{path}/{}", defaults::PARTNER_CLIENT_ID);
    assert_eq!(
        methods,
        [("POST", path.as_str()), ("POST", path.as_str())],
        "the second plain POST answered 409 and nothing more was written"
    );
    // Changing a consent is the plan's decision (`replace`): DELETE, then POST.
    let replace = Action::Consent {
        body: graph_only.clone(),
        replace: true,
    };
    let Applied::Consented(note) = w.run(&replace).await.unwrap() else {
        panic!("expected a consent");
    };
    assert!(note.starts_with("replaced"), "{note}");
    let writes = w.writes_by_token().await;
    let methods: Vec<(&str, &str)> = writes
        .iter()
        .filter(|(_, p, _)| p.starts_with("/v1/"))
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        methods[2..],
        [("DELETE", item.as_str()), ("POST", path.as_str())],
        "a replace deletes, then consents"
    );
    assert!(
        writes.iter().all(|(_, _, token)| token == "user"),
        "{writes:?}"
    );
}

#[tokio::test]
async fn service_principals_and_app_roles_are_written_as_the_gdap_user_within_its_roles() {
    let w = world(defaults::PARTNER_REFRESH_TOKEN).await;
    w.relationship("act-roles", &[APPLICATION_ADMINISTRATOR_ID])
        .await;
    let grants = vec![
        graph_grant(),
        ResolvedGrant {
            index: 1,
            resource_app_id: O365.into(),
            scopes: vec![],
            app_roles: vec!["ActivityFeed.Read".into()],
        },
    ];
    let i = intent(grants.clone());
    let body = i.wanted.as_ref().unwrap().consent.clone();
    w.run(&Action::Consent {
        body,
        replace: false,
    })
    .await
    .unwrap();
    let Tenant::Read(view) = w.tenant(grants.clone()).await else {
        panic!("readable");
    };
    assert_eq!(
        view.resources[O365], None,
        "Fabrikam lacks Office 365 Management APIs"
    );
    let create = Action::CreateServicePrincipal {
        app_id: O365.into(),
    };
    assert!(matches!(
        w.run(&create).await.unwrap(),
        Applied::Done { .. }
    ));
    assert!(
        matches!(w.run(&create).await.unwrap(), Applied::Done { .. }),
        "an existing one is done"
    );
    let Tenant::Read(view) = w.tenant(grants.clone()).await else {
        panic!("readable");
    };
    let app = view.app_principal.clone().unwrap();
    let o365 = view.resources[O365].clone().unwrap();
    let graph = view.resources[MICROSOFT_GRAPH_APP_ID].clone().unwrap();
    let grant = |sp: &ResourcePrincipal, role: &str| Action::GrantAppRole {
        role: role.into(),
        resource: "r".into(),
        body: NewAppRoleAssignment {
            principal_id: app.clone(),
            resource_id: sp.id.clone(),
            app_role_id: sp.app_roles[&role.to_ascii_lowercase()].clone(),
        },
    };
    let app_token = w.clients.tokens.app_token(FABRIKAM);
    crate::microsoft::TokenSource::bearer(&app_token, None)
        .await
        .unwrap();
    let grants_before = w.clients.tokens.grants_made();
    w.run(&grant(&o365, "ActivityFeed.Read")).await.unwrap();
    crate::microsoft::TokenSource::bearer(&app_token, None)
        .await
        .unwrap();
    assert_eq!(
        w.clients.tokens.grants_made(),
        grants_before + 1,
        "the grant dropped the cached app-only token, so a new one (with the role) was fetched"
    );
    let refused = w.run(&grant(&graph, "User.Read.All")).await.unwrap_err();
    assert_eq!(refused.error().reason(), Reason::AccessDenied, "{refused}");
    assert!(!refused.is_transient());

    w.relationship("act-roles-pra", &[PRIVILEGED_ROLE_ADMINISTRATOR_ID])
        .await;
    w.run(&grant(&graph, "User.Read.All")).await.unwrap();
    let Tenant::Read(view) = w.tenant(grants.clone()).await else {
        panic!("readable");
    };
    assert_eq!(view.assignments.len(), 2);
    let a = &view.assignments[0];
    let revoke = Action::RevokeAppRole {
        role: "x".into(),
        resource: "r".into(),
        resource_sp_id: a.resource_id.clone(),
        assignment_id: a.id.clone(),
    };
    w.run(&revoke).await.unwrap();
    w.run(&revoke).await.expect("a repeated removal is done");
    w.run(&Action::RemoveConsent).await.unwrap();
    w.run(&Action::RemoveConsent)
        .await
        .expect("no consent left is done");
    let writes = w.writes_by_token().await;
    assert!(
        writes.iter().all(|(_, _, token)| token == "user"),
        "only the delegated token writes: {writes:?}"
    );
}

#[tokio::test]
async fn partner_center_without_mfa_is_mfa_required_with_the_manual_way_out() {
    let w = world(defaults::PARTNER_NO_MFA_REFRESH_TOKEN).await;
    w.relationship("act-mfa", &[APPLICATION_ADMINISTRATOR_ID])
        .await;
    let i = intent(vec![graph_grant()]);
    let body = i.wanted.as_ref().unwrap().consent.clone();
    let error = w
        .run(&Action::Consent {
            body,
            replace: false,
        })
        .await
        .unwrap_err();
    assert_eq!(error.error().reason(), Reason::MfaRequired, "{error}");
    assert!(error.needs_manual_consent());
    assert!(!error.is_transient());
    assert_eq!(error.failure().reason, "MfaRequired");
    assert!(error.to_string().contains("complete MFA"), "{error}");
}
