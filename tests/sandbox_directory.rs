//! Graph directory of customer tenants in the sandbox over HTTP: users (paging, `$select`,
//! `$top`, count), delta, SKUs, service principals, app role assignments, permission grants,
//! `$batch`, and the app-only / delegated permission model.
#![cfg(feature = "sandbox")]

#[path = "sandbox_support/mod.rs"]
mod support;

use gdap_operator::sandbox::defaults as d;
use serde_json::{Value, json};
use support::{APP_ADMIN, DIRECTORY_READERS, GLOBAL_ADMIN, GRAPH, start};

const GRAPH_APP: &str = "00000003-0000-0000-c000-000000000000";

async fn all_pages(env: &support::Env, first: &str, token: &str) -> (Vec<Value>, usize) {
    let (mut users, mut pages, mut next) = (Vec::new(), 0, Some(first.to_string()));
    while let Some(link) = next {
        let (s, page) = env.get(&link, token).await;
        assert_eq!(s, 200, "{page}");
        pages += 1;
        users.extend(page["value"].as_array().unwrap().iter().cloned());
        next = page["@odata.nextLink"].as_str().map(str::to_string);
        if let Some(n) = &next {
            assert!(n.starts_with(&env.base), "{n}");
        }
    }
    (users, pages)
}

#[tokio::test]
async fn users_page_with_select_and_top_limits() {
    let env = start().await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (users, pages) = all_pages(
        &env,
        "/v1.0/users?$top=10&$select=id,userPrincipalName,assignedLicenses",
        &t,
    )
    .await;
    assert_eq!(pages, 3);
    assert_eq!(users.len(), d::CONTOSO_USER_COUNT);
    assert!(
        users
            .iter()
            .all(|u| u.get("assignedLicenses").is_some() && u.get("displayName").is_none())
    );
    let (_, page) = env.get("/v1.0/users", &t).await;
    let first = &page["value"][0];
    assert!(
        first.get("displayName").is_some() && first.get("assignedLicenses").is_none(),
        "default properties only: {first}"
    );
    assert!(
        page["@odata.context"]
            .as_str()
            .unwrap()
            .starts_with(&env.base)
    );
    for bad in ["0", "1000", "x"] {
        let (s, b) = env.get(&format!("/v1.0/users?$top={bad}"), &t).await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("between 1 and 999")
        );
    }
    let upn = users[3]["userPrincipalName"].as_str().unwrap();
    let (s, one) = env.get(&format!("/v1.0/users/{upn}"), &t).await;
    assert_eq!(s, 200);
    assert_eq!(one["id"], users[3]["id"]);
    let (s, b) = env.get("/v1.0/users/nobody@contoso.example", &t).await;
    assert_eq!(s, 404);
    assert_eq!(b["error"]["code"], "Request_ResourceNotFound");
    let (_, guests) = env
        .get(
            "/v1.0/users?$filter=userType eq 'Guest'&$select=id,userType",
            &t,
        )
        .await;
    assert_eq!(guests["value"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn generated_tenant_counts_and_pages_lazily() {
    let env = start().await;
    let t = env.app_token(d::NORTHWIND_TENANT_ID).await;
    let (s, _) = env.get("/v1.0/users/$count", &t).await;
    assert_eq!(s, 400, "$count needs ConsistencyLevel: eventual");
    let r = env
        .http
        .get(format!("{}/v1.0/users/$count", env.base))
        .bearer_auth(&t)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "100000");
    let (_, _, page) = env
        .call(
            "GET",
            "/v1.0/users?$top=999&$count=true",
            &t,
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(page["@odata.count"], 100_000);
    assert_eq!(page["value"].as_array().unwrap().len(), 999);
    let (_, again) = env.get("/v1.0/users?$top=999", &t).await;
    assert_eq!(
        page["value"], again["value"],
        "generated users are deterministic"
    );
    let (s, bad) = env.get("/v1.0/users?$skiptoken=not-a-token", &t).await;
    assert_eq!(s, 400);
    assert_eq!(
        bad["error"]["code"], "Request_BadRequest",
        "garbled skiptokens are refused"
    );
    let id = page["value"][500]["id"].as_str().unwrap();
    let (s, user) = env
        .get(
            &format!("/v1.0/users/{id}?$select=id,usageLocation,assignedLicenses"),
            &t,
        )
        .await;
    assert_eq!(s, 200, "{user}");
    assert!(user["usageLocation"].is_string());
}

#[tokio::test]
async fn delta_rounds_report_changes_and_removals() {
    let env = start().await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (mut users, mut link, mut delta_link) = (
        0,
        Some("/v1.0/users/delta?$select=id,displayName".to_string()),
        None,
    );
    while let Some(l) = link {
        let (s, page) = env.get(&l, &t).await;
        assert_eq!(s, 200, "{page}");
        assert!(!(page.get("@odata.nextLink").is_some() && page.get("@odata.deltaLink").is_some()));
        users += page["value"].as_array().unwrap().len();
        link = page["@odata.nextLink"].as_str().map(str::to_string);
        delta_link = page["@odata.deltaLink"]
            .as_str()
            .map(str::to_string)
            .or(delta_link);
    }
    assert_eq!(users, d::CONTOSO_USER_COUNT);
    let delta_link = delta_link.expect("a deltaLink ends the round");
    assert!(delta_link.starts_with(&env.base));
    let (_, empty) = env.get(&delta_link, &t).await;
    assert_eq!(empty["value"].as_array().unwrap().len(), 0);

    let (_, list) = env.get("/v1.0/users?$top=1", &t).await;
    let gone = list["value"][0]["id"].as_str().unwrap().to_string();
    let (s, _) = env
        .control(
            "DELETE",
            &format!("/_sandbox/tenants/{}/users/{gone}", d::CONTOSO_TENANT_ID),
            json!({}),
        )
        .await;
    assert_eq!(s, 204);
    let (s, added) = env
        .control(
            "POST",
            &format!("/_sandbox/tenants/{}/users", d::CONTOSO_TENANT_ID),
            json!({"userPrincipalName": "new.hire@contoso.example", "displayName": "New Hire"}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, changes) = env.get(&delta_link, &t).await;
    let value = changes["value"].as_array().unwrap();
    assert_eq!(value.len(), 2, "{changes}");
    assert_eq!(
        value[0],
        json!({"id": gone, "@removed": {"reason": "deleted"}})
    );
    assert_eq!(value[1]["id"], added["id"]);
    assert_eq!(value[1]["displayName"], "New Hire");
    let (_, latest) = env.get("/v1.0/users/delta?$deltatoken=latest", &t).await;
    assert_eq!(latest["value"].as_array().unwrap().len(), 0);
    assert!(latest["@odata.deltaLink"].is_string());
    let (s, b) = env.get("/v1.0/users/delta?$deltatoken=garbage", &t).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn subscribed_skus_count_consumed_units() {
    let env = start().await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (s, skus) = env.get("/v1.0/subscribedSkus", &t).await;
    assert_eq!(s, 200, "{skus}");
    let e3 = skus["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["skuPartNumber"] == "SPE_E3")
        .unwrap();
    assert_eq!(e3["prepaidUnits"]["enabled"], 25);
    assert_eq!(
        e3["consumedUnits"], 20,
        "every fifth Contoso user is unlicensed"
    );
    assert_eq!(
        e3["id"],
        format!("{}_{}", d::CONTOSO_TENANT_ID, e3["skuId"].as_str().unwrap())
    );
    let (s, _) = env
        .get("/v1.0/subscribedSkus?$filter=skuPartNumber eq 'SPE_E3'", &t)
        .await;
    assert_eq!(s, 400);
    let nt = env.app_token(d::NORTHWIND_TENANT_ID).await;
    let (_, skus) = env.get("/v1.0/subscribedSkus", &nt).await;
    let e3 = skus["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["skuPartNumber"] == "SPE_E3")
        .unwrap();
    let consumed = e3["consumedUnits"].as_i64().unwrap();
    assert!((65_000..70_000).contains(&consumed), "{consumed}");
}

#[tokio::test]
async fn app_only_tokens_only_reach_what_was_granted() {
    let env = start().await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (s, b) = env.get("/v1.0/servicePrincipals", &t).await;
    assert_eq!(s, 403, "no Application.Read.All granted: {b}");
    assert_eq!(b["error"]["code"], "Authorization_RequestDenied");
    let (s, _, _) = env
        .call(
            "POST",
            "/v1.0/servicePrincipals",
            &t,
            Some(json!({"appId": "c5393580-f805-4401-95e8-94b7a6ef2fc2"})),
            &[],
        )
        .await;
    assert_eq!(s, 403, "a write with an app-only token is refused");
    // The app holds no application permission in its own tenant: Graph refuses a token without
    // roles before anything else (401, "Either scp or roles claim need to be present").
    let partner = env.app_token(d::PARTNER_TENANT_ID).await;
    let (s, b) = env.get("/v1.0/users", &partner).await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(b["error"]["code"], "InvalidAuthenticationToken");
    // Revoking the consent takes the roles away from new tokens.
    let (s, _) = env
        .control(
            "POST",
            &format!(
                "/_sandbox/tenants/{}/consents/{}/revoke",
                d::CONTOSO_TENANT_ID,
                d::PARTNER_CLIENT_ID
            ),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    let t2 = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (s, b) = env.get("/v1.0/users", &t2).await;
    assert_eq!(s, 401, "no role left: the token carries none: {b}");
    let (s, _) = env
        .control(
            "DELETE",
            &format!(
                "/_sandbox/tenants/{}/servicePrincipals/{}",
                d::CONTOSO_TENANT_ID,
                d::PARTNER_CLIENT_ID
            ),
            json!({}),
        )
        .await;
    assert_eq!(s, 204);
    let (s, b) = env
        .token_request(
            d::CONTOSO_TENANT_ID,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", d::PARTNER_CLIENT_ID),
                ("client_secret", d::PARTNER_CLIENT_SECRET),
                ("scope", GRAPH),
            ],
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error_codes"], json!([7000229]));
}

#[tokio::test]
async fn gdap_users_manage_service_principals_and_grants() {
    let env = start().await;
    env.active_relationship(
        "apps",
        d::FABRIKAM_TENANT_ID,
        &[GLOBAL_ADMIN, APP_ADMIN, DIRECTORY_READERS],
        &[d::APP_ADMINS_GROUP_ID],
    )
    .await;
    env.consent(
        d::FABRIKAM_TENANT_ID,
        &[
            "Application.ReadWrite.All",
            "AppRoleAssignment.ReadWrite.All",
            "DelegatedPermissionGrant.ReadWrite.All",
        ],
    )
    .await;
    let t = env.user_token(d::FABRIKAM_TENANT_ID, GRAPH).await;
    let filter = "/v1.0/servicePrincipals?$filter=appId eq 'c5393580-f805-4401-95e8-94b7a6ef2fc2'&$select=id,appId,appDisplayName";
    let (s, b) = env.get(filter, &t).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["value"],
        json!([]),
        "Fabrikam lacks Office 365 Management APIs"
    );
    let (s, _, sp) = env
        .call(
            "POST",
            "/v1.0/servicePrincipals",
            &t,
            Some(json!({"appId": "c5393580-f805-4401-95e8-94b7a6ef2fc2"})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{sp}");
    let (_, b) = env.get(filter, &t).await;
    assert_eq!(
        b["value"][0]["appDisplayName"],
        "Office 365 Management APIs"
    );
    assert!(b["value"][0].get("appRoles").is_none(), "$select applies");
    let (s, _, _) = env
        .call(
            "POST",
            "/v1.0/servicePrincipals",
            &t,
            Some(json!({"appId": "c5393580-f805-4401-95e8-94b7a6ef2fc2"})),
            &[],
        )
        .await;
    assert_eq!(s, 409);
    let (s, _, b) = env
        .call(
            "POST",
            "/v1.0/servicePrincipals",
            &t,
            Some(json!({"appId": "00000000-0000-0000-0000-00000000abcd"})),
            &[],
        )
        .await;
    assert_eq!(s, 400, "{b}");

    // Grant the partner app Graph's User.Read.All application permission.
    let (s, _, client) = env
        .call(
            "POST",
            "/v1.0/servicePrincipals",
            &t,
            Some(json!({"appId": d::PARTNER_CLIENT_ID})),
            &[],
        )
        .await;
    assert_eq!(
        s, 409,
        "the consent created the app's service principal: {client}"
    );
    let (_, ours) = env
        .get(
            &format!(
                "/v1.0/servicePrincipals?$filter=appId eq '{}'",
                d::PARTNER_CLIENT_ID
            ),
            &t,
        )
        .await;
    let client = ours["value"][0].clone();
    let (_, graph) = env
        .get(
            &format!("/v1.0/servicePrincipals?$filter=appId eq '{GRAPH_APP}'"),
            &t,
        )
        .await;
    let graph_sp = &graph["value"][0];
    let role = graph_sp["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["value"] == "User.Read.All")
        .unwrap();
    assert!(
        graph_sp["oauth2PermissionScopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["value"] == "User.Read")
    );
    let path = format!(
        "/v1.0/servicePrincipals/{}/appRoleAssignedTo",
        graph_sp["id"].as_str().unwrap()
    );
    let grant =
        json!({"principalId": client["id"], "resourceId": graph_sp["id"], "appRoleId": role["id"]});
    let (s, _, a) = env.call("POST", &path, &t, Some(grant.clone()), &[]).await;
    assert_eq!(s, 201, "{a}");
    let (s, _, _) = env.call("POST", &path, &t, Some(grant), &[]).await;
    assert_eq!(s, 400, "duplicate assignment");
    let (_, list) = env.get(&path, &t).await;
    assert_eq!(list["value"][0]["principalId"], client["id"]);
    let app_token = env.app_token(d::FABRIKAM_TENANT_ID).await;
    let (s, _) = env.get("/v1.0/users", &app_token).await;
    assert_eq!(s, 200, "the granted role now allows app-only reads");

    let (_, o365) = env.get(filter, &t).await;
    let body = json!({"clientId": client["id"], "consentType": "AllPrincipals", "resourceId": o365["value"][0]["id"], "scope": "ActivityFeed.Read"});
    let (s, _, g) = env
        .call("POST", "/v1.0/oauth2PermissionGrants", &t, Some(body), &[])
        .await;
    assert_eq!(s, 201, "{g}");
    let (_, grants) = env
        .get(
            &format!(
                "/v1.0/oauth2PermissionGrants?$filter=clientId eq '{}'",
                client["id"].as_str().unwrap()
            ),
            &t,
        )
        .await;
    let scopes: Vec<&str> = grants["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["scope"].as_str().unwrap())
        .collect();
    assert_eq!(
        scopes,
        [
            "Application.ReadWrite.All AppRoleAssignment.ReadWrite.All DelegatedPermissionGrant.ReadWrite.All",
            "ActivityFeed.Read"
        ],
        "Partner Center's grant on Graph, and the one created through Graph"
    );
}

#[tokio::test]
async fn delegated_directory_calls_need_matching_gdap_roles() {
    let env = start().await;
    env.active_relationship(
        "readers",
        d::CONTOSO_TENANT_ID,
        &[DIRECTORY_READERS],
        &[d::HELPDESK_GROUP_ID],
    )
    .await;
    let t = env.user_token(d::CONTOSO_TENANT_ID, GRAPH).await;
    let (s, _) = env.get("/v1.0/servicePrincipals", &t).await;
    assert_eq!(s, 200);
    let (s, _, b) = env
        .call(
            "POST",
            "/v1.0/servicePrincipals",
            &t,
            Some(json!({"appId": "c5393580-f805-4401-95e8-94b7a6ef2fc2"})),
            &[],
        )
        .await;
    assert_eq!(
        s, 403,
        "Directory Readers cannot create service principals (Contoso consented the app): {b}"
    );
}

#[tokio::test]
async fn batch_runs_requests_with_dependencies_and_limits() {
    let env = start().await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let body = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users?$top=2&$select=id"},
        {"id": "2", "method": "GET", "url": "/servicePrincipals"},
        {"id": "3", "method": "GET", "url": "/subscribedSkus", "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": "users/$count", "headers": {"ConsistencyLevel": "eventual"}, "dependsOn": ["1"]},
    ]});
    let (s, _, b) = env.call("POST", "/v1.0/$batch", &t, Some(body), &[]).await;
    assert_eq!(s, 200, "{b}");
    let status = |id: &str| {
        b["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["status"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        (status("1"), status("2"), status("3"), status("4")),
        (200, 403, 424, 200)
    );
    let users = b["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "1")
        .unwrap();
    assert_eq!(users["body"]["value"].as_array().unwrap().len(), 2);
    assert!(
        users["body"]["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with(&env.base)
    );
    let too_many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    let (s, _, _) = env
        .call(
            "POST",
            "/v1.0/$batch",
            &t,
            Some(json!({"requests": too_many})),
            &[],
        )
        .await;
    assert_eq!(s, 400);
    let dup = json!({"requests": [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]});
    let (s, _, _) = env.call("POST", "/v1.0/$batch", &t, Some(dup), &[]).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn service_principal_items_assignments_and_grants_can_be_read_and_deleted() {
    let env = start().await;
    env.active_relationship(
        "items",
        d::CONTOSO_TENANT_ID,
        &[GLOBAL_ADMIN],
        &[d::APP_ADMINS_GROUP_ID],
    )
    .await;
    let t = env.user_token(d::CONTOSO_TENANT_ID, GRAPH).await;
    let (_, sps) = env
        .get(
            &format!(
                "/v1.0/servicePrincipals?$filter=appId eq '{}'",
                d::PARTNER_CLIENT_ID
            ),
            &t,
        )
        .await;
    let client = sps["value"][0]["id"].as_str().unwrap().to_string();
    let (s, one) = env
        .get(
            &format!("/v1.0/servicePrincipals/{client}?$select=id,appId"),
            &t,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(one, json!({"id": client, "appId": d::PARTNER_CLIENT_ID}));
    let (s, roles) = env
        .get(
            &format!("/v1.0/servicePrincipals/{client}/appRoleAssignments"),
            &t,
        )
        .await;
    assert_eq!(s, 200);
    let roles = roles["value"].as_array().unwrap().clone();
    assert_eq!(
        roles.len(),
        3,
        "User.Read.All, LicenseAssignment.Read.All and Organization.Read.All"
    );
    let resource = roles[0]["resourceId"].as_str().unwrap();
    let path = format!(
        "/v1.0/servicePrincipals/{resource}/appRoleAssignedTo/{}",
        roles[0]["id"].as_str().unwrap()
    );
    assert_eq!(env.call("DELETE", &path, &t, None, &[]).await.0, 204);
    assert_eq!(env.call("DELETE", &path, &t, None, &[]).await.0, 404);
    let app = env.app_token(d::CONTOSO_TENANT_ID).await;
    assert_eq!(
        claims_roles(&app).len(),
        2,
        "two application permissions left"
    );

    let (_, fixture) = env
        .get(
            &format!("/v1.0/oauth2PermissionGrants?$filter=clientId eq '{client}'"),
            &t,
        )
        .await;
    let fixture = format!(
        "/v1.0/oauth2PermissionGrants/{}",
        fixture["value"][0]["id"]
            .as_str()
            .expect("Contoso's consent has a delegated grant")
    );
    assert_eq!(env.call("DELETE", &fixture, &t, None, &[]).await.0, 204);
    let body = json!({"clientId": client, "consentType": "AllPrincipals", "resourceId": resource, "scope": "User.Read"});
    let (s, _, g) = env
        .call(
            "POST",
            "/v1.0/oauth2PermissionGrants",
            &t,
            Some(body.clone()),
            &[],
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        env.call("POST", "/v1.0/oauth2PermissionGrants", &t, Some(body), &[])
            .await
            .0,
        409
    );
    let grant = format!("/v1.0/oauth2PermissionGrants/{}", g["id"].as_str().unwrap());
    assert_eq!(env.call("DELETE", &grant, &t, None, &[]).await.0, 204);
    assert_eq!(env.call("DELETE", &grant, &t, None, &[]).await.0, 404);

    assert_eq!(
        env.call(
            "DELETE",
            &format!("/v1.0/servicePrincipals/{client}"),
            &t,
            None,
            &[]
        )
        .await
        .0,
        204
    );
    assert_eq!(
        env.get(&format!("/v1.0/servicePrincipals/{client}"), &t)
            .await
            .0,
        404
    );
    let (s, b) = env
        .token_request(
            d::CONTOSO_TENANT_ID,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", d::PARTNER_CLIENT_ID),
                ("client_secret", d::PARTNER_CLIENT_SECRET),
                ("scope", GRAPH),
            ],
        )
        .await;
    assert_eq!(
        s, 400,
        "deleting the app's service principal removes its consent: {b}"
    );
}

fn claims_roles(token: &str) -> Vec<Value> {
    support::claims(token)["roles"].as_array().unwrap().clone()
}
