//! The sandbox is eventually consistent like Microsoft (docs/sandbox.md, "Consistency"): read lag
//! per resource family, consent and GDAP propagation, duplicates refused on the true state,
//! refresh tokens that stay valid after redemption, the control API and the clock moving through
//! every delay, and the uncapped count of writes per path.
#![cfg(feature = "sandbox")]

#[path = "sandbox_support/mod.rs"]
mod support;

use gdap_operator::sandbox::defaults as d;
use gdap_operator::sandbox::{Consistency, Delay, ReadLag, SandboxOptions};
use serde_json::{Value, json};
use std::time::Duration;
use support::{APP_ADMIN, DIRECTORY_READERS, Env, GRAPH, claims, relationship_body, start_with};

const RELS: &str = "/v1.0/tenantRelationships/delegatedAdminRelationships";

/// A sandbox whose every delay is exactly `seconds` (fixed, so the tests know when it passes).
async fn lagging(seconds: f64) -> Env {
    let delay = Delay::seconds(seconds, seconds);
    start_with(SandboxOptions {
        assignment_activation_delay: Duration::from_millis(100),
        consistency: Consistency {
            read_lag: ReadLag::all(delay),
            consent_propagation: delay,
            gdap_propagation: delay,
            ..Consistency::microsoft()
        },
        ..Default::default()
    })
    .await
}

/// Redeems refresh token `rt` for a Graph token in `tenant`: (status, body).
async fn redeem(env: &Env, tenant: &str, rt: &str) -> (u16, Value) {
    env.token_request(
        tenant,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", d::PARTNER_CLIENT_ID),
            ("client_secret", d::PARTNER_CLIENT_SECRET),
            ("scope", GRAPH),
            ("refresh_token", rt),
        ],
    )
    .await
}

/// The admin's delegated Graph token request in `tenant` (not stored: failures do not rotate).
async fn refresh(env: &Env, tenant: &str) -> (u16, Value) {
    redeem(env, tenant, &env.current_refresh_token()).await
}

async fn advance(env: &Env, seconds: f64) {
    let (s, b) = env
        .control(
            "POST",
            "/_sandbox/clock",
            json!({"advanceSeconds": seconds}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

fn names(list: &Value) -> Vec<String> {
    list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["displayName"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_new_relationship_is_answered_at_once_but_read_only_after_the_lag() {
    let env = lagging(600.0).await;
    let t = env.admin().await;
    let created = env
        .create_relationship(
            &t,
            "lagging",
            d::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS],
            "PT0S",
        )
        .await;
    assert_eq!(
        created["status"], "created",
        "the writer's answer is immediate"
    );
    let path = format!("{RELS}/{}", created["id"].as_str().unwrap());
    assert_eq!(env.get(&path, &t).await.0, 404, "GET by id lags");
    assert!(!names(&env.get(RELS, &t).await.1).contains(&"lagging".to_string()));
    // The true state refuses a duplicate name although no read shows the first one.
    let (s, _, b) = env
        .call(
            "POST",
            RELS,
            &t,
            Some(relationship_body(
                "lagging",
                d::CONTOSO_TENANT_ID,
                &[DIRECTORY_READERS],
                "PT0S",
            )),
            &[],
        )
        .await;
    assert_eq!(s, 400, "{b}");
    // Writes act on the true state: the lock goes through while reads still answer 404 …
    let (s, b) = env.lock(&path, &t).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(env.get(&path, &t).await.0, 404);
    advance(&env, 601.0).await;
    let (s, b) = env.get(&path, &t).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (200, Some("approvalPending")),
        "{b}"
    );
    assert!(names(&env.get(RELS, &t).await.1).contains(&"lagging".to_string()));
}

#[tokio::test]
async fn a_status_change_reads_as_the_old_status_until_it_replicates() {
    let env = lagging(600.0).await;
    let t = env.admin().await;
    let created = env
        .create_relationship(
            &t,
            "locking",
            d::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS],
            "PT0S",
        )
        .await;
    let path = format!("{RELS}/{}", created["id"].as_str().unwrap());
    advance(&env, 601.0).await;
    let (_, before) = env.get(&path, &t).await;
    assert_eq!(env.lock(&path, &t).await.0, 201);
    let (_, stale) = env.get(&path, &t).await;
    assert_eq!(stale["status"], "created", "{stale}");
    assert_eq!(
        stale["@odata.etag"], before["@odata.etag"],
        "the old ETag too"
    );
    // A second lock is refused by the true state.
    let (s, b) = env.lock(&path, &t).await;
    assert_eq!(s, 400, "{b}");
    advance(&env, 601.0).await;
    assert_eq!(env.get(&path, &t).await.1["status"], "approvalPending");
}

#[tokio::test]
async fn a_duplicate_access_assignment_is_409_while_the_list_does_not_show_the_first() {
    let env = lagging(0.0).await;
    let id = env
        .active_relationship("assign", d::CONTOSO_TENANT_ID, &[DIRECTORY_READERS], &[])
        .await;
    let (s, b) = env
        .control(
            "PUT",
            "/_sandbox/consistency",
            json!({"readLag": {"gdap": {"minSeconds": 600, "maxSeconds": 600}}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let t = env.admin().await;
    let path = format!("{RELS}/{id}/accessAssignments");
    let body = json!({"accessContainer": {"accessContainerId": d::HELPDESK_GROUP_ID, "accessContainerType": "securityGroup"},
                      "accessDetails": {"unifiedRoles": [{"roleDefinitionId": DIRECTORY_READERS}]}});
    let (s, _, first) = env.call("POST", &path, &t, Some(body.clone()), &[]).await;
    assert_eq!(s, 201, "{first}");
    assert_eq!(
        env.get(&path, &t).await.1["value"],
        json!([]),
        "the list lags"
    );
    let aid = first["id"].as_str().unwrap();
    assert_eq!(env.get(&format!("{path}/{aid}"), &t).await.0, 404);
    advance(&env, 300.0).await;
    let (s, _, b) = env.call("POST", &path, &t, Some(body), &[]).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{b}"
    );
    // A refused write changes nothing, so it does not push the first one's visibility out.
    advance(&env, 301.0).await;
    let (_, list) = env.get(&path, &t).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn gdap_access_reaches_the_partner_user_only_after_propagation_and_ends_after_it() {
    let env = lagging(0.0).await;
    let (s, _) = env
        .control(
            "PUT",
            "/_sandbox/consistency",
            json!({"gdapPropagation": {"minSeconds": 600, "maxSeconds": 600}}),
        )
        .await;
    assert_eq!(s, 200);
    let id = env
        .active_relationship(
            "access",
            d::FABRIKAM_TENANT_ID,
            &[APP_ADMIN],
            &[d::APP_ADMINS_GROUP_ID],
        )
        .await;
    let (s, b) = refresh(&env, d::FABRIKAM_TENANT_ID).await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(50020)), "{b}");
    advance(&env, 601.0).await;
    let (_, b) = refresh(&env, d::FABRIKAM_TENANT_ID).await;
    assert_ne!(
        b["error_codes"][0].as_u64(),
        Some(50020),
        "access propagated: {b}"
    );
    let (s, b) = env
        .control(
            "POST",
            &format!("/_sandbox/relationships/{id}/terminate"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    advance(&env, 5.0).await; // terminated; its end has not propagated yet
    let (_, b) = refresh(&env, d::FABRIKAM_TENANT_ID).await;
    assert_ne!(
        b["error_codes"][0].as_u64(),
        Some(50020),
        "access lingers: {b}"
    );
    advance(&env, 601.0).await;
    let (_, b) = refresh(&env, d::FABRIKAM_TENANT_ID).await;
    assert_eq!(
        b["error_codes"][0].as_u64(),
        Some(50020),
        "access ended: {b}"
    );
}

#[tokio::test]
async fn a_consent_is_read_late_and_effective_later_still() {
    let env = lagging(0.0).await;
    env.active_relationship(
        "consent",
        d::FABRIKAM_TENANT_ID,
        &[APP_ADMIN],
        &[d::APP_ADMINS_GROUP_ID],
    )
    .await;
    let (s, _) = env
        .control(
            "PUT",
            "/_sandbox/consistency",
            json!({"readLag": {"servicePrincipals": {"minSeconds": 60, "maxSeconds": 60},
                               "grants": {"minSeconds": 60, "maxSeconds": 60}},
                   "consentPropagation": {"minSeconds": 600, "maxSeconds": 600}}),
        )
        .await;
    assert_eq!(s, 200);
    env.consent(d::FABRIKAM_TENANT_ID, &["Directory.Read.All"])
        .await;
    let (s, b) = refresh(&env, d::FABRIKAM_TENANT_ID).await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(65001)), "{b}");
    // A second consent is refused by the true state (Partner Center's 409).
    let pc = env.user_token(d::PARTNER_TENANT_ID, support::PC).await;
    let body = json!({"applicationId": d::PARTNER_CLIENT_ID, "applicationGrants": [
        {"enterpriseApplicationId": d::apps::MICROSOFT_GRAPH, "scope": "Directory.Read.All"}]});
    let (s, _, b) = env
        .call(
            "POST",
            &format!(
                "/v1/customers/{}/applicationconsents",
                d::FABRIKAM_TENANT_ID
            ),
            &pc,
            Some(body),
            &[],
        )
        .await;
    assert_eq!(s, 409, "{b}");
    advance(&env, 61.0).await;
    let (s, b) = refresh(&env, d::FABRIKAM_TENANT_ID).await;
    assert_eq!(
        b["error_codes"][0].as_u64(),
        Some(65001),
        "still propagating: {s} {b}"
    );
    advance(&env, 600.0).await;
    let (s, b) = refresh(&env, d::FABRIKAM_TENANT_ID).await;
    assert_eq!(s, 200, "{b}");
    assert!(
        claims(b["access_token"].as_str().unwrap())["scp"]
            .as_str()
            .unwrap()
            .contains("Directory.Read.All")
    );
}

#[tokio::test]
async fn app_roles_reach_app_only_tokens_after_consent_propagation() {
    let env = lagging(0.0).await;
    let id = env
        .active_relationship(
            "roles",
            d::FABRIKAM_TENANT_ID,
            &[support::GLOBAL_ADMIN],
            &[d::APP_ADMINS_GROUP_ID],
        )
        .await;
    assert!(!id.is_empty());
    env.consent(
        d::FABRIKAM_TENANT_ID,
        &[
            "Directory.Read.All",
            "AppRoleAssignment.ReadWrite.All",
            "Application.ReadWrite.All",
        ],
    )
    .await;
    let (s, _) = env
        .control(
            "PUT",
            "/_sandbox/consistency",
            json!({"consentPropagation": {"minSeconds": 600, "maxSeconds": 600}}),
        )
        .await;
    assert_eq!(s, 200);
    let user = env.user_token(d::FABRIKAM_TENANT_ID, GRAPH).await;
    let app = env.app_token(d::FABRIKAM_TENANT_ID).await;
    let sp = |appid: &str| format!("/v1.0/servicePrincipals?$filter=appId eq '{appid}'");
    let client = env.get(&sp(d::PARTNER_CLIENT_ID), &user).await.1["value"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let graph = env.get(&sp(d::apps::MICROSOFT_GRAPH), &user).await.1["value"][0].clone();
    let role = graph["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["value"] == "User.Read.All")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _, b) = env
        .call(
            "POST",
            &format!(
                "/v1.0/servicePrincipals/{}/appRoleAssignedTo",
                graph["id"].as_str().unwrap()
            ),
            &user,
            Some(json!({"principalId": client, "resourceId": graph["id"], "appRoleId": role})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{b}");
    drop(app);
    // A new service principal: created at once, listed only after the lag; a second is a 409.
    env.control(
        "PUT",
        "/_sandbox/consistency",
        json!({"readLag": {"servicePrincipals": {"minSeconds": 60, "maxSeconds": 60}}}),
    )
    .await;
    let o365 = json!({"appId": d::apps::OFFICE365_MANAGEMENT});
    let (s, _, b) = env
        .call(
            "POST",
            "/v1.0/servicePrincipals",
            &user,
            Some(o365.clone()),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        env.get(&sp(d::apps::OFFICE365_MANAGEMENT), &user).await.1["value"],
        json!([])
    );
    let (s, _, b) = env
        .call("POST", "/v1.0/servicePrincipals", &user, Some(o365), &[])
        .await;
    assert_eq!(s, 409, "{b}");
    let fresh = env.app_token(d::FABRIKAM_TENANT_ID).await;
    assert!(
        claims(&fresh).get("roles").is_none(),
        "not effective yet: {}",
        claims(&fresh)
    );
    // A token without any role is refused as Graph refuses it (401, "Either scp or roles…").
    assert_eq!(env.get("/v1.0/users", &fresh).await.0, 401);
    advance(&env, 601.0).await;
    let listed = env.get(&sp(d::apps::OFFICE365_MANAGEMENT), &user).await.1;
    assert_eq!(listed["value"].as_array().unwrap().len(), 1, "{listed}");
    let later = env.app_token(d::FABRIKAM_TENANT_ID).await;
    assert_eq!(claims(&later)["roles"], json!(["User.Read.All"]));
    assert_eq!(env.get("/v1.0/users", &later).await.0, 200);
}

#[tokio::test]
async fn users_written_through_the_control_api_appear_after_the_lag_in_order() {
    let env = lagging(300.0).await;
    let tenant = d::CONTOSO_TENANT_ID;
    let app = env.app_token(tenant).await;
    let (s, user) = env
        .control(
            "POST",
            &format!("/_sandbox/tenants/{tenant}/users"),
            json!({"userPrincipalName": "late@contoso.example", "displayName": "Late"}),
        )
        .await;
    assert_eq!(s, 201, "{user}");
    let id = user["id"].as_str().unwrap();
    assert_eq!(env.get(&format!("/v1.0/users/{id}"), &app).await.0, 404);
    let (s, _) = env
        .control(
            "DELETE",
            &format!("/_sandbox/tenants/{tenant}/users/{id}"),
            json!({}),
        )
        .await;
    assert_eq!(s, 204, "a user added but not visible yet can be removed");
    advance(&env, 301.0).await;
    assert_eq!(
        env.get(&format!("/v1.0/users/{id}"), &app).await.0,
        404,
        "removed after added"
    );
    let (s, _) = env
        .control(
            "DELETE",
            &format!("/_sandbox/tenants/{tenant}/users/{id}"),
            json!({}),
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_redeemed_refresh_token_stays_valid_unless_strict() {
    for strict in [false, true] {
        let env = lagging(0.0).await;
        env.control(
            "PUT",
            "/_sandbox/consistency",
            json!({"strictRefreshTokens": strict}),
        )
        .await;
        let first = d::PARTNER_REFRESH_TOKEN;
        let (_, a) = redeem(&env, d::PARTNER_TENANT_ID, first).await;
        let second = a["refresh_token"].as_str().unwrap().to_string();
        let (s, _) = redeem(&env, d::PARTNER_TENANT_ID, &second).await;
        assert_eq!(s, 200);
        let (s, b) = redeem(&env, d::PARTNER_TENANT_ID, first).await;
        if strict {
            assert_eq!(b["error_codes"][0].as_u64(), Some(70000), "{b}");
        } else {
            assert_eq!(
                s, 200,
                "Entra does not revoke a redeemed refresh token: {b}"
            );
        }
    }
}

#[tokio::test]
async fn the_control_api_shows_and_changes_the_model_and_names_bad_fields() {
    let env = lagging(0.0).await;
    let (s, model) = env.control("GET", "/_sandbox/consistency", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        model["readLag"]["gdap"],
        json!({"minSeconds": 0.0, "maxSeconds": 0.0})
    );
    let (s, b) = env
        .control(
            "PUT",
            "/_sandbox/consistency",
            json!({"consentPropagation": {"minSeconds": 9, "maxSeconds": 3}}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        b["error"].as_str().unwrap().contains("consentPropagation"),
        "{b}"
    );
    let (s, b) = env
        .control(
            "PUT",
            "/_sandbox/consistency",
            json!({"readLag": {"gdapp": {}}}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"].as_str().unwrap().contains("gdapp"), "{b}");
    let (s, b) = env
        .control(
            "PUT",
            "/_sandbox/consistency",
            json!({"seed": 7, "readLag": {"users": {"minSeconds": 1, "maxSeconds": 2}}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (
            b["seed"].as_u64(),
            b["readLag"]["users"]["maxSeconds"].as_f64()
        ),
        (Some(7), Some(2.0))
    );
    assert_eq!(
        b["readLag"]["gdap"]["maxSeconds"].as_f64(),
        Some(0.0),
        "other fields kept"
    );
    let (s, b) = env
        .control("PUT", "/_sandbox/consistency", json!({"immediate": true}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["readLag"]["users"]["maxSeconds"].as_f64(), Some(0.0));
    // By default the sandbox lags like Microsoft.
    let default = start_with(SandboxOptions::default()).await;
    let (_, model) = default
        .control("GET", "/_sandbox/consistency", json!({}))
        .await;
    assert_eq!(
        model["readLag"]["gdap"],
        json!({"minSeconds": 1.0, "maxSeconds": 5.0})
    );
    assert!(model["gdapPropagation"]["minSeconds"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn writes_are_counted_per_path_without_a_cap() {
    let env = start_with(SandboxOptions {
        request_log_capacity: 2,
        consistency: Consistency::immediate(),
        ..Default::default()
    })
    .await;
    let t = env.admin().await;
    for i in 0..3 {
        env.create_relationship(
            &t,
            &format!("count {i}"),
            d::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS],
            "PT0S",
        )
        .await;
        env.get(RELS, &t).await;
    }
    let (_, log) = env.control("GET", "/_sandbox/requests", json!({})).await;
    assert_eq!(log["requests"].as_array().unwrap().len(), 2);
    assert_eq!(
        log["totals"]["writesByPath"][format!("POST {RELS}")],
        3,
        "{log}"
    );
    assert!(
        log["totals"]["writesByPath"]
            .get(format!("GET {RELS}"))
            .is_none()
    );
}

#[tokio::test]
async fn openid_metadata_names_only_endpoints_the_sandbox_serves() {
    let env = lagging(0.0).await;
    let meta: Value = env
        .http
        .get(format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            env.base,
            d::PARTNER_TENANT_ID
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoints: Vec<&str> = meta
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.ends_with("_endpoint") || k.ends_with("_uri"))
        .filter_map(|(_, v)| v.as_str())
        .collect();
    assert!(endpoints.len() >= 2, "{meta}");
    for url in endpoints {
        let status = env.http.post(url).send().await.unwrap().status().as_u16();
        let get = env.http.get(url).send().await.unwrap().status().as_u16();
        assert!(
            status != 404 || get != 404,
            "{url} is advertised but not served"
        );
    }
}
