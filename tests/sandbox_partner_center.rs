//! Partner Center application consents in the sandbox over HTTP: the role and AdminAgents
//! prerequisites, missing resource service principals, creation of the grants, "already
//! exists", `ms-requestid` replay, and DELETE.
#![cfg(feature = "sandbox")]

#[path = "sandbox_support/mod.rs"]
mod support;

use gdap_operator::sandbox::defaults as d;
use serde_json::{Value, json};
use support::{APP_ADMIN, DIRECTORY_READERS, GRAPH, PC, start};

const O365_MGMT: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";

fn consent_body(resources: &[(&str, &str)]) -> Value {
    json!({"applicationId": d::PARTNER_CLIENT_ID, "displayName": "GDAP Operator",
           "applicationGrants": resources.iter().map(|(r, s)| json!({"enterpriseApplicationId": r, "scope": s})).collect::<Vec<_>>()})
}

fn consents(tenant: &str) -> String {
    format!("/v1/customers/{tenant}/applicationconsents")
}

#[tokio::test]
async fn consent_needs_a_consent_capable_gdap_role_and_admin_agents() {
    let env = start().await;
    let pc = env.user_token(d::PARTNER_TENANT_ID, PC).await;
    let body = consent_body(&[(
        "00000003-0000-0000-c000-000000000000",
        "User.Read,Directory.Read.All",
    )]);
    let (s, _, b) = env
        .call(
            "POST",
            &consents(d::FABRIKAM_TENANT_ID),
            &pc,
            Some(body.clone()),
            &[],
        )
        .await;
    assert_eq!(s, 403, "no relationship yet: {b}");
    assert!(
        b["description"]
            .as_str()
            .unwrap()
            .contains("Application Administrator")
    );
    assert_eq!(b["source"], "PartnerFD");
    // Directory Readers is not consent-capable.
    env.active_relationship(
        "readers-only",
        d::FABRIKAM_TENANT_ID,
        &[DIRECTORY_READERS],
        &[d::HELPDESK_GROUP_ID],
    )
    .await;
    let pc = env.user_token(d::PARTNER_TENANT_ID, PC).await;
    let (s, _, _) = env
        .call(
            "POST",
            &consents(d::FABRIKAM_TENANT_ID),
            &pc,
            Some(body.clone()),
            &[],
        )
        .await;
    assert_eq!(s, 403);
    let (s, _, _) = env
        .call(
            "POST",
            &consents("99999999-9999-9999-9999-999999999999"),
            &pc,
            Some(body.clone()),
            &[],
        )
        .await;
    assert_eq!(s, 404);
    let graph = env.admin().await;
    let (s, _, b) = env
        .call(
            "POST",
            &consents(d::FABRIKAM_TENANT_ID),
            &graph,
            Some(body.clone()),
            &[],
        )
        .await;
    assert_eq!(s, 401, "a Graph token is not a Partner Center token: {b}");
    let app_only = env
        .token_request(
            d::PARTNER_TENANT_ID,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", d::PARTNER_CLIENT_ID),
                ("client_secret", d::PARTNER_CLIENT_SECRET),
                ("scope", "https://api.partnercenter.microsoft.com/.default"),
            ],
        )
        .await
        .1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _, _) = env
        .call(
            "POST",
            &consents(d::FABRIKAM_TENANT_ID),
            &app_only,
            Some(body),
            &[],
        )
        .await;
    assert_eq!(s, 403, "app-only tokens cannot consent");
}

#[tokio::test]
async fn consent_creates_grants_once_and_delete_removes_them() {
    let env = start().await;
    env.active_relationship(
        "consent",
        d::FABRIKAM_TENANT_ID,
        &[APP_ADMIN, DIRECTORY_READERS],
        &[d::APP_ADMINS_GROUP_ID],
    )
    .await;
    let pc = env.user_token(d::PARTNER_TENANT_ID, PC).await;
    let path = consents(d::FABRIKAM_TENANT_ID);

    let missing = consent_body(&[
        ("00000003-0000-0000-c000-000000000000", "User.Read"),
        (O365_MGMT, "ActivityFeed.Read"),
    ]);
    let (s, _, b) = env.call("POST", &path, &pc, Some(missing), &[]).await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["description"]
            .as_str()
            .unwrap()
            .contains("lacks a service principal"),
        "{b}"
    );

    let mut wrong_app = consent_body(&[("00000003-0000-0000-c000-000000000000", "User.Read")]);
    wrong_app["applicationId"] = json!("00000000-0000-0000-0000-000000000001");
    let (s, _, _) = env.call("POST", &path, &pc, Some(wrong_app), &[]).await;
    assert_eq!(s, 403, "applicationId must be the token's app");

    let body = consent_body(&[(
        "00000003-0000-0000-c000-000000000000",
        "User.Read,Directory.Read.All",
    )]);
    let rid = [("ms-requestid", "6f1c2d3e-0000-4000-8000-000000000001")];
    let (s, _, created) = env.call("POST", &path, &pc, Some(body.clone()), &rid).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["attributes"]["objectType"], "ApplicationConsent");
    let (s, _, replay) = env.call("POST", &path, &pc, Some(body.clone()), &rid).await;
    assert_eq!(
        (s, &replay),
        (201, &created),
        "same ms-requestid replays the first response"
    );
    let (_, log) = env.control("GET", "/_sandbox/requests", json!({})).await;
    let posts: Vec<(u64, bool)> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["status"] == 201)
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap()
                .ends_with("/applicationconsents")
        })
        .map(|r| (r["status"].as_u64().unwrap(), r["replayed"] == true))
        .collect();
    assert_eq!(
        posts,
        [(201, false), (201, true)],
        "the request log tells the replay from the consent"
    );
    let (s, _, b) = env.call("POST", &path, &pc, Some(body.clone()), &[]).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["description"], "Permission entry already exists.");

    // The grant is visible through Graph in the customer tenant.
    let graph = env.user_token(d::FABRIKAM_TENANT_ID, GRAPH).await;
    let (_, sps) = env
        .get(
            &format!(
                "/v1.0/servicePrincipals?$filter=appId eq '{}'",
                d::PARTNER_CLIENT_ID
            ),
            &graph,
        )
        .await;
    let client = sps["value"][0]["id"]
        .as_str()
        .expect("the app's service principal was created")
        .to_string();
    let (_, grants) = env
        .get(
            &format!("/v1.0/oauth2PermissionGrants?$filter=clientId eq '{client}'"),
            &graph,
        )
        .await;
    assert_eq!(grants["value"][0]["scope"], "User.Read Directory.Read.All");
    assert_eq!(grants["value"][0]["consentType"], "AllPrincipals");

    let pc = env.user_token(d::PARTNER_TENANT_ID, PC).await;
    let (s, _, _) = env
        .call(
            "DELETE",
            &format!("{path}/{}", d::PARTNER_CLIENT_ID),
            &pc,
            None,
            &[],
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = env
        .call(
            "DELETE",
            &format!("{path}/{}", d::PARTNER_CLIENT_ID),
            &pc,
            None,
            &[],
        )
        .await;
    assert_eq!(s, 404);
    let (_, grants) = env
        .get(
            &format!("/v1.0/oauth2PermissionGrants?$filter=clientId eq '{client}'"),
            &graph,
        )
        .await;
    assert_eq!(grants["value"], json!([]));
    let (s, _, _) = env.call("POST", &path, &pc, Some(body), &[]).await;
    assert_eq!(s, 201, "consent can be given again after DELETE");
}
