//! The Partner Center client against the sandbox: create and delete application consents, and
//! the named reasons of its failures.
#![cfg(feature = "sandbox")]

mod clients_support;

use clients_support::roles::*;
use clients_support::*;
use gdap_operator::microsoft::models::partner_center::{ApplicationConsent, ApplicationGrant};
use gdap_operator::microsoft::{Audience, PartnerCredentials, Reason};
use gdap_operator::sandbox::defaults;

fn consent(resource: &str, scopes: &[&str]) -> ApplicationConsent {
    ApplicationConsent {
        application_id: defaults::PARTNER_CLIENT_ID.into(),
        display_name: Some("gdap-operator".into()),
        application_grants: vec![ApplicationGrant::new(resource, scopes.iter().copied())],
    }
}

async fn consent_capable(h: &Harness, customer: &str, name: &str) {
    let rel = h
        .active_relationship(
            name,
            customer,
            &[APPLICATION_ADMIN, CLOUD_APPLICATION_ADMIN],
        )
        .await;
    h.assign(&rel.id, defaults::APP_ADMINS_GROUP_ID, &[APPLICATION_ADMIN])
        .await;
}

#[tokio::test]
async fn create_and_delete_a_consent() {
    let h = start_with(quick(), credentials(), Default::default(), |_| {}).await;
    consent_capable(&h, defaults::FABRIKAM_TENANT_ID, "client-pc-fabrikam").await;
    let pc = h.partner_center();
    let body = consent(
        defaults::apps::MICROSOFT_GRAPH,
        &["Directory.Read.All", "User.Read.All"],
    );
    let created = h
        .clients
        .partner_center
        .create_application_consent(&pc, defaults::FABRIKAM_TENANT_ID, &body)
        .await
        .unwrap();
    assert_eq!(created.application_id, defaults::PARTNER_CLIENT_ID);
    assert_eq!(created.application_grants, body.application_grants);
    h.clients
        .partner_center
        .delete_application_consent(
            &pc,
            defaults::FABRIKAM_TENANT_ID,
            defaults::PARTNER_CLIENT_ID,
        )
        .await
        .unwrap();
    let again = h
        .clients
        .partner_center
        .delete_application_consent(
            &pc,
            defaults::FABRIKAM_TENANT_ID,
            defaults::PARTNER_CLIENT_ID,
        )
        .await
        .unwrap_err();
    assert_eq!(again.status(), Some(404), "{again}");
    assert!(!again.is_transient());
    let posts = h
        .requests()
        .await
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/applicationconsents"))
        .count();
    assert_eq!(posts, 1);
    h.stop().await;
}

#[tokio::test]
async fn missing_service_principal_is_named() {
    let h = start_with(quick(), credentials(), Default::default(), |_| {}).await;
    consent_capable(&h, defaults::FABRIKAM_TENANT_ID, "client-pc-fabrikam").await;
    let pc = h.partner_center();
    let body = consent(defaults::apps::OFFICE365_MANAGEMENT, &["ActivityFeed.Read"]);
    let err = h
        .clients
        .partner_center
        .create_application_consent(&pc, defaults::FABRIKAM_TENANT_ID, &body)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::ServicePrincipalMissing, "{err}");
    assert!(
        err.to_string().contains("POST /servicePrincipals"),
        "the message says what to do: {err}"
    );
    h.stop().await;
}

#[tokio::test]
async fn without_gdap_access_partner_center_refuses() {
    let h = start().await;
    let pc = h.partner_center();
    let body = consent(defaults::apps::MICROSOFT_GRAPH, &["User.Read.All"]);
    let err = h
        .clients
        .partner_center
        .create_application_consent(&pc, defaults::CONTOSO_TENANT_ID, &body)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::PartnerCenterForbidden, "{err}");
    assert!(err.to_string().contains("AdminAgents"));
    h.stop().await;
}

#[tokio::test]
async fn a_non_admin_agent_is_refused() {
    let creds = PartnerCredentials {
        refresh_token: defaults::PARTNER_SUPPORT_REFRESH_TOKEN.into(),
        ..credentials()
    };
    let h = start_with(quick(), creds, Default::default(), |_| {}).await;
    let pc = h
        .clients
        .tokens
        .delegated_token(defaults::PARTNER_TENANT_ID, Audience::PartnerCenter);
    let body = consent(defaults::apps::MICROSOFT_GRAPH, &["User.Read.All"]);
    let err = h
        .clients
        .partner_center
        .create_application_consent(&pc, defaults::CONTOSO_TENANT_ID, &body)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::PartnerCenterForbidden, "{err}");
    h.stop().await;
}

#[tokio::test]
async fn a_graph_token_is_refused_before_sending() {
    let h = start().await;
    let graph = h.graph();
    let body = consent(defaults::apps::MICROSOFT_GRAPH, &["User.Read.All"]);
    let err = h
        .clients
        .partner_center
        .create_application_consent(&graph, defaults::CONTOSO_TENANT_ID, &body)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::WrongToken);
    assert_eq!(h.clients.tokens.grants_made(), 0);
    h.stop().await;
}

/// The partner's customers: a customer is found with its company profile, a tenant that is not a
/// customer is `None`, and the first page says how many there are in all.
#[tokio::test]
async fn customers_of_the_partner() {
    let h = start().await;
    let pc = h.partner_center();
    let fabrikam = h
        .clients
        .partner_center
        .customer(&pc, defaults::FABRIKAM_TENANT_ID)
        .await
        .unwrap()
        .expect("Fabrikam is a customer");
    assert_eq!(fabrikam.id, defaults::FABRIKAM_TENANT_ID);
    assert_eq!(
        fabrikam.company_profile.tenant_id,
        defaults::FABRIKAM_TENANT_ID
    );
    assert!(!fabrikam.company_profile.company_name.is_empty());
    let stranger = h
        .clients
        .partner_center
        .customer(&pc, "0f0f0f0f-0000-4000-8000-000000000000")
        .await
        .unwrap();
    assert_eq!(stranger, None);
    let page = h
        .clients
        .partner_center
        .customers_first_page(&pc, 1)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.total_count >= 2, "{}", page.total_count);
    h.stop().await;
}

/// Partner Center refuses the customer list to a sign-in without MFA, like every App+User call.
#[tokio::test]
async fn customers_need_mfa() {
    let creds = PartnerCredentials {
        refresh_token: defaults::PARTNER_NO_MFA_REFRESH_TOKEN.into(),
        ..credentials()
    };
    let h = start_with(quick(), creds, Default::default(), |_| {}).await;
    let pc = h.partner_center();
    let err = h
        .clients
        .partner_center
        .customers_first_page(&pc, 1)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::MfaRequired, "{err}");
    h.stop().await;
}
