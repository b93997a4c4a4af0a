//! The Partner Center client against the sandbox: create and delete application consents, the
//! named reasons of its failures, and the partner's whole customer list across pages (with a
//! throttled page on the way). A tiny local server plays a Partner Center whose list never ends,
//! which the sandbox cannot.
#![cfg(feature = "sandbox")]

mod clients_support;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use clients_support::roles::*;
use clients_support::*;
use gdap_operator::microsoft::models::partner_center::{ApplicationConsent, ApplicationGrant};
use gdap_operator::microsoft::partner_center::{CUSTOMER_PAGE_SIZE, MAX_CUSTOMER_PAGES};
use gdap_operator::microsoft::{
    Audience, Endpoints, MicrosoftClients, PartnerCredentials, Reason, TokenOptions,
    TransportConfig, rotation_fn,
};
use gdap_operator::sandbox::{Fixture, SandboxOptions, Scale, defaults};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// A sandbox whose partner has the builtin customers plus 1,000 more (more than two pages of
/// [`CUSTOMER_PAGE_SIZE`]), and the tenant ids of all of them.
async fn many_customers() -> (Harness, BTreeSet<String>) {
    let fixture = Fixture::builtin().with_scale(Scale {
        customers: 1000,
        relationships: 0,
    });
    let ids = fixture
        .customers
        .iter()
        .map(|c| c.tenant_id.clone())
        .collect();
    let options = SandboxOptions { fixture, ..quick() };
    let h = start_with(options, credentials(), Default::default(), |_| {}).await;
    (h, ids)
}

/// The statuses of the customer-list requests, in order.
async fn customer_list_statuses(h: &Harness) -> Vec<u16> {
    h.requests()
        .await
        .into_iter()
        .filter(|(m, p, _)| m == "GET" && p == "/v1/customers")
        .map(|(_, _, status)| status)
        .collect()
}

/// GdapFleet covers every customer of the partner: the list follows the continuation from page
/// to page and returns each customer once, with its company name and domain.
#[tokio::test]
async fn every_customer_of_the_partner_across_pages() {
    let (h, expected) = many_customers().await;
    let customers = h
        .clients
        .partner_center
        .list_customers(&h.partner_center())
        .await
        .unwrap();
    let ids: BTreeSet<String> = customers.iter().map(|c| c.tenant_id().into()).collect();
    assert_eq!(customers.len(), expected.len(), "each customer once");
    assert_eq!(ids, expected);
    assert!(
        customers
            .iter()
            .all(|c| !c.company_name().is_empty() && !c.default_domain().is_empty())
    );
    let pages = expected.len().div_ceil(CUSTOMER_PAGE_SIZE as usize);
    assert!(pages >= 2, "the fixture needs several pages: {pages}");
    assert_eq!(customer_list_statuses(&h).await, vec![200; pages]);
    h.stop().await;
}

/// A throttled page in the middle of the list is retried after its `Retry-After`, with its
/// continuation, and the list is still complete.
#[tokio::test]
async fn a_throttled_second_page_is_retried_and_the_list_is_complete() {
    let (h, expected) = many_customers().await;
    // With seed 325 the draws are 0.74, 0.22, 0.72, 0.70, …: only the second request fails.
    let faults = json!({"seed": 325, "rules": [{"pathPrefix": "/v1/customers", "method": "GET",
        "rate": 0.5, "statuses": [429], "retryAfterSeconds": 1}]});
    h.control(reqwest::Method::PUT, "/_sandbox/faults", Some(faults))
        .await;
    let customers = h
        .clients
        .partner_center
        .list_customers(&h.partner_center())
        .await
        .unwrap();
    let ids: BTreeSet<String> = customers.iter().map(|c| c.tenant_id().into()).collect();
    assert_eq!(customers.len(), expected.len());
    assert_eq!(ids, expected);
    let pages = expected.len().div_ceil(CUSTOMER_PAGE_SIZE as usize);
    let mut statuses = vec![200; pages + 1];
    statuses[1] = 429;
    assert_eq!(customer_list_statuses(&h).await, statuses);
    assert_eq!(h.retries.lock().unwrap().len(), 1, "one retry, of the 429");
    h.stop().await;
}

/// A Partner Center on 127.0.0.1 whose customer list never ends: every page names a next page
/// whose continuation token is `token(n)` for the `n`th request (from 1). Returns clients pointed
/// at it and the `MS-ContinuationToken` each request carried.
async fn endless_partner_center(
    token: fn(usize) -> String,
) -> (MicrosoftClients, Arc<Mutex<Vec<Option<String>>>>) {
    let carried = Arc::new(Mutex::new(Vec::new()));
    let log = carried.clone();
    let router = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(|| async {
                axum::Json(json!({"access_token": "tok", "expires_in": 3599,
                    "refresh_token": "rt-next", "token_type": "Bearer"}))
            }),
        )
        .route(
            "/v1/customers",
            get(move |headers: HeaderMap| {
                let log = log.clone();
                async move {
                    let sent = headers
                        .get("ms-continuationtoken")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push(sent);
                        log.len()
                    };
                    axum::Json(json!({"totalCount": 1, "items": [{"id": format!("c{n}"),
                        "companyProfile": {"tenantId": format!("c{n}"), "domain": "c.example",
                        "companyName": "C"}}],
                        "links": {"next": {"uri": "/customers?size=500&seekOperation=Next",
                        "method": "GET", "headers": [{"key": "MS-ContinuationToken",
                        "value": token(n)}]}}}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let config = TransportConfig::new(Endpoints::local(&format!("http://{addr}"), None).unwrap());
    let creds = PartnerCredentials {
        partner_tenant_id: "p".into(),
        client_id: "c".into(),
        client_credential: "s".into(),
        refresh_token: "rt-0".into(),
        refresh_token_issued_at: None,
    };
    let rotation = rotation_fn(|_| async { Ok(()) });
    let clients = MicrosoftClients::new(config, creds, rotation, TokenOptions::default()).unwrap();
    (clients, carried)
}

/// A server that answers every page with the same continuation is an error after the second
/// page, not an endless list.
#[tokio::test]
async fn a_repeated_continuation_is_an_error_not_a_loop() {
    let (clients, carried) = endless_partner_center(|_| "same".into()).await;
    let token = clients.tokens.delegated_token("p", Audience::PartnerCenter);
    let listed = tokio::time::timeout(
        Duration::from_secs(30),
        clients.partner_center.list_customers(&token),
    )
    .await
    .expect("the list ends");
    let err = listed.unwrap_err();
    assert_eq!(err.reason(), Reason::InvalidResponse, "{err}");
    assert!(err.to_string().contains("repeated"), "{err}");
    assert_eq!(
        *carried.lock().unwrap(),
        [None, Some("same".to_string())],
        "the first page without a continuation, the second with the one it was given"
    );
}

/// A server that names a new continuation forever is an error after the page limit.
#[tokio::test]
async fn a_list_without_end_stops_at_the_page_limit() {
    let (clients, carried) = endless_partner_center(|n| format!("page-{n}")).await;
    let token = clients.tokens.delegated_token("p", Audience::PartnerCenter);
    let listed = tokio::time::timeout(
        Duration::from_secs(60),
        clients.partner_center.list_customers(&token),
    )
    .await
    .expect("the list ends");
    let err = listed.unwrap_err();
    assert_eq!(err.reason(), Reason::InvalidResponse, "{err}");
    assert_eq!(carried.lock().unwrap().len(), MAX_CUSTOMER_PAGES);
}
