//! Graph GDAP in the sandbox over HTTP: validation errors, ETag rules, status rules, requests,
//! access assignments, operations, customers, permission checks and time-driven lifecycle.
#![cfg(feature = "sandbox")]

#[path = "sandbox_support/mod.rs"]
mod support;

use gdap_operator::sandbox::SandboxOptions;
use gdap_operator::sandbox::defaults as d;
use serde_json::{Value, json};
use std::time::Duration;
use support::{
    APP_ADMIN, DIRECTORY_READERS, GLOBAL_ADMIN, HELPDESK_ADMIN, relationship_body, start,
};

const RELS: &str = "/v1.0/tenantRelationships/delegatedAdminRelationships";

async fn post_rel(env: &support::Env, token: &str, body: Value) -> (u16, Value) {
    let (s, _, b) = env.call("POST", RELS, token, Some(body), &[]).await;
    (s, b)
}

fn assert_bad_request(status: u16, body: &Value, needle: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "badRequest", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(needle),
        "{message} should mention {needle}"
    );
}

#[tokio::test]
async fn create_validates_every_field() {
    let env = start().await;
    let t = env.admin().await;
    let ok = relationship_body("valid", d::CONTOSO_TENANT_ID, &[DIRECTORY_READERS], "PT0S");
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("displayName", json!("x".repeat(51))), "displayName"),
        (with("displayName", json!("")), "displayName"),
        (with("duration", json!("P731D")), "duration"),
        (with("duration", json!("P0D")), "duration"),
        (with("duration", json!("two years")), "duration"),
        (
            with("autoExtendDuration", json!("P90D")),
            "autoExtendDuration",
        ),
        (
            with("accessDetails", json!({"unifiedRoles": []})),
            "unifiedRoles",
        ),
        (
            with(
                "accessDetails",
                json!({"unifiedRoles": [{"roleDefinitionId": "dd4db9a0-cc4a-4213-9f9f-70242232d97e"}]}),
            ),
            "dd4db9a0",
        ),
        (
            with(
                "accessDetails",
                json!({"unifiedRoles": [{"roleDefinitionId": "d29b2b05-8046-44ba-8758-1e26182fcf32"}]}),
            ),
            "not supported",
        ),
        (
            relationship_body("ga", d::CONTOSO_TENANT_ID, &[GLOBAL_ADMIN], "P180D"),
            "Global Administrator",
        ),
        (
            with(
                "customer",
                json!({"tenantId": "99999999-9999-9999-9999-999999999999"}),
            ),
            "customer",
        ),
        (with("status", json!("active")), "status"),
    ];
    for (body, needle) in cases {
        let (s, b) = post_rel(&env, &t, body).await;
        assert_bad_request(s, &b, needle);
    }
    let (s, b) = post_rel(&env, &t, with("duration", json!("P2Y"))).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = post_rel(&env, &t, with("displayName", json!("VALID"))).await;
    assert_bad_request(s, &b, "already exists");
    let (s, b) = post_rel(
        &env,
        &t,
        relationship_body(
            &"n".repeat(50),
            d::CONTOSO_TENANT_ID,
            &[GLOBAL_ADMIN],
            "PT0S",
        ),
    )
    .await;
    assert_eq!(
        s, 201,
        "50 characters and Global Administrator without auto-extend are fine: {b}"
    );
}

#[tokio::test]
async fn create_returns_location_etag_and_created_status_and_list_filters_and_pages() {
    let env = start().await;
    let t = env.admin().await;
    let (s, headers, b) = env
        .call(
            "POST",
            RELS,
            &t,
            Some(relationship_body(
                "r0",
                d::CONTOSO_TENANT_ID,
                &[DIRECTORY_READERS],
                "P180D",
            )),
            &[],
        )
        .await;
    assert_eq!(s, 201);
    let id = b["id"].as_str().unwrap();
    assert_eq!(id.len(), 73);
    assert!(id.ends_with(d::PARTNER_TENANT_ID));
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("{}{RELS}/{id}", env.base)
    );
    assert!(b["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    assert_eq!(b["status"], "created");
    assert_eq!(b["activatedDateTime"], Value::Null);
    assert_eq!(b["endDateTime"], Value::Null);
    assert_eq!(b["customer"]["displayName"], "Contoso Ltd");
    for i in 1..5 {
        let customer = if i % 2 == 0 {
            d::CONTOSO_TENANT_ID
        } else {
            d::NORTHWIND_TENANT_ID
        };
        env.create_relationship(&t, &format!("r{i}"), customer, &[DIRECTORY_READERS], "PT0S")
            .await;
    }
    let (s, page) = env
        .get(
            &format!(
                "{RELS}?$filter=customer/tenantId eq '{}'",
                d::CONTOSO_TENANT_ID
            ),
            &t,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(page["value"].as_array().unwrap().len(), 3);
    let (_, page) = env
        .get(&format!("{RELS}?$filter=status eq 'active'"), &t)
        .await;
    assert_eq!(page["value"].as_array().unwrap().len(), 0);
    // displayName filters (the sandbox renders only the relationships the name admits).
    for (filter, expected) in [
        ("displayName eq 'R3'", vec!["r3"]),
        (
            "status eq 'created' and displayName in ('r1','r4')",
            vec!["r1", "r4"],
        ),
        ("status eq 'active' and displayName eq 'r1'", vec![]),
        (
            "displayName eq 'r2' or displayName eq 'r0'",
            vec!["r0", "r2"],
        ),
    ] {
        let (s, page) = env.get(&format!("{RELS}?$filter={filter}"), &t).await;
        assert_eq!(s, 200, "{filter}: {page}");
        let mut names: Vec<&str> = page["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["displayName"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, expected, "{filter}");
    }
    let (_, page1) = env
        .get(
            &format!("{RELS}?$top=2&$select=id,displayName&$orderby=displayName desc"),
            &t,
        )
        .await;
    assert_eq!(page1["value"].as_array().unwrap().len(), 2);
    assert!(
        page1["value"][0].get("duration").is_none(),
        "$select applies"
    );
    let names = |p: &Value| {
        p["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["displayName"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let mut seen = names(&page1);
    let mut next = page1["@odata.nextLink"].as_str().map(str::to_string);
    while let Some(link) = next {
        assert!(link.starts_with(&env.base), "{link}");
        let (_, p) = env.get(&link, &t).await;
        seen.extend(names(&p));
        next = p["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(
        seen,
        ["r4", "r3", "r2", "r1", "r0"],
        "$orderby holds across pages"
    );
    let (s, b) = env.get(&format!("{RELS}?$top=301"), &t).await;
    assert_bad_request(s, &b, "$top");
    let (s, b) = env.get(&format!("{RELS}/not-an-id"), &t).await;
    assert_bad_request(s, &b, "delegatedAdminRelationshipId is invalid");
    let (s, b) = env
        .get(
            &format!(
                "{RELS}/00000000-0000-0000-0000-000000000000-{}",
                d::PARTNER_TENANT_ID
            ),
            &t,
        )
        .await;
    assert_eq!(s, 404, "{b}");
}

#[tokio::test]
async fn patch_and_delete_follow_the_etag_and_status_rules() {
    let env = start().await;
    let t = env.admin().await;
    let rel = env
        .create_relationship(
            &t,
            "etag",
            d::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS],
            "PT0S",
        )
        .await;
    let path = format!("{RELS}/{}", rel["id"].as_str().unwrap());
    let etag = rel["@odata.etag"].as_str().unwrap().to_string();
    let patch = json!({"displayName": "etag-2", "duration": "P30D"});
    let (s, _, b) = env.call("PATCH", &path, &t, Some(patch.clone()), &[]).await;
    assert_bad_request(s, &b, "If-Match");
    let (s, _, b) = env.patch(&path, &t, patch.clone(), "W/\"stale\"").await;
    assert_eq!(s, 412, "{b}");
    assert_eq!(b["error"]["code"], "resourceModified");
    let (s, _, b) = env.patch(&path, &t, patch.clone(), &etag).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["displayName"], "etag-2");
    assert_eq!(b["duration"], "P30D");
    let etag2 = b["@odata.etag"].as_str().unwrap().to_string();
    assert_ne!(etag, etag2);
    let (s, _, _) = env
        .patch(&path, &t, json!({"duration": "P60D"}), &etag)
        .await;
    assert_eq!(s, 412, "the old ETag is stale after a write");
    let (s, _, b) = env.patch(&path, &t, json!({"autoExtendDuration": "P180D", "accessDetails": {"unifiedRoles": [{"roleDefinitionId": GLOBAL_ADMIN}]}}), &etag2).await;
    assert_bad_request(s, &b, "Global Administrator");
    let (s, _, _) = env
        .call("DELETE", &path, &t, None, &[("If-Match", "W/\"stale\"")])
        .await;
    assert_eq!(s, 412);
    // Once locked, the relationship can no longer be edited or deleted.
    let (s, headers, b) = env
        .call(
            "POST",
            &format!("{path}/requests"),
            &t,
            Some(json!({"action": "lockForApproval"})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["action"], "lockForApproval");
    assert!(headers["location"].to_str().unwrap().starts_with(&env.base));
    let (_, locked) = env.get(&path, &t).await;
    assert_eq!(locked["status"], "approvalPending");
    let etag3 = locked["@odata.etag"].as_str().unwrap().to_string();
    let (s, _, b) = env
        .patch(&path, &t, json!({"duration": "P60D"}), &etag3)
        .await;
    assert_bad_request(s, &b, "approvalPending");
    let (s, _, b) = env
        .call("DELETE", &path, &t, None, &[("If-Match", &etag3)])
        .await;
    assert_bad_request(s, &b, "created");
    let (s, _, b) = env
        .call(
            "POST",
            &format!("{path}/requests"),
            &t,
            Some(json!({"action": "lockForApproval"})),
            &[],
        )
        .await;
    assert_bad_request(s, &b, "lockForApproval");
    let (s, _, b) = env
        .call(
            "POST",
            &format!("{path}/requests"),
            &t,
            Some(json!({"action": "terminate"})),
            &[],
        )
        .await;
    assert_bad_request(s, &b, "terminate");
    let request_url = headers["location"].to_str().unwrap().to_string();
    let (s, request) = env.get(&request_url, &t).await;
    assert_eq!((s, request["status"].as_str()), (200, Some("succeeded")));
    let (_, reqs) = env.get(&format!("{path}/requests"), &t).await;
    assert_eq!(reqs["value"][0]["status"], "succeeded");

    let other = env
        .create_relationship(
            &t,
            "deletable",
            d::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS],
            "PT0S",
        )
        .await;
    let other_path = format!("{RELS}/{}", other["id"].as_str().unwrap());
    let (s, _, _) = env
        .call(
            "DELETE",
            &other_path,
            &t,
            None,
            &[("If-Match", other["@odata.etag"].as_str().unwrap())],
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = env.get(&other_path, &t).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn active_relationships_allow_only_auto_extend_and_async_global_admin_removal() {
    let env = start().await;
    let id = env
        .active_relationship(
            "active-rules",
            d::CONTOSO_TENANT_ID,
            &[GLOBAL_ADMIN, DIRECTORY_READERS],
            &[],
        )
        .await;
    let t = env.admin().await;
    let path = format!("{RELS}/{id}");
    let (_, rel) = env.get(&path, &t).await;
    assert_eq!(rel["status"], "active");
    let activated =
        chrono::DateTime::parse_from_rfc3339(rel["activatedDateTime"].as_str().unwrap()).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(rel["endDateTime"].as_str().unwrap()).unwrap();
    assert_eq!((end - activated).num_days(), 730);
    let etag = rel["@odata.etag"].as_str().unwrap().to_string();
    let (s, _, b) = env
        .patch(&path, &t, json!({"displayName": "renamed"}), &etag)
        .await;
    assert_bad_request(s, &b, "displayName");
    let (s, _, b) = env
        .patch(&path, &t, json!({"autoExtendDuration": "P180D"}), &etag)
        .await;
    assert_bad_request(s, &b, "Global Administrator");
    let (s, _, b) = env
        .patch(
            &path,
            &t,
            json!({"accessDetails": {"unifiedRoles": [{"roleDefinitionId": HELPDESK_ADMIN}]}}),
            &etag,
        )
        .await;
    assert_bad_request(s, &b, "cannot be changed");
    let drop_ga =
        json!({"accessDetails": {"unifiedRoles": [{"roleDefinitionId": DIRECTORY_READERS}]}});
    let (s, headers, b) = env.patch(&path, &t, drop_ga, &etag).await;
    assert_eq!(s, 202, "{b}");
    assert!(headers.contains_key("retry-after"));
    let op_url = headers["location"].to_str().unwrap().to_string();
    assert!(op_url.starts_with(&format!("{}{path}/operations/", env.base)));
    let (_, op) = env.get(&op_url, &t).await;
    assert_eq!(
        op["operationType"], "unknownFutureValue",
        "evolvable enum hidden without Prefer"
    );
    let (_, _, op) = env
        .call(
            "GET",
            &op_url,
            &t,
            None,
            &[("Prefer", "include-unknown-enum-members")],
        )
        .await;
    assert_eq!(op["operationType"], "delegatedAdminRelationshipUpdate");
    let op = env.wait_status(&op_url, &t, "succeeded").await;
    assert!(op["data"].is_string());
    let (_, rel) = env.get(&path, &t).await;
    assert_eq!(
        rel["accessDetails"]["unifiedRoles"],
        json!([{"roleDefinitionId": DIRECTORY_READERS}])
    );
    let (s, _, b) = env
        .patch(
            &path,
            &t,
            json!({"autoExtendDuration": "P180D"}),
            rel["@odata.etag"].as_str().unwrap(),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["autoExtendDuration"], "P180D");
}

#[tokio::test]
async fn access_assignments_validate_activate_update_and_delete() {
    let env = start().await;
    let t = env.admin().await;
    let created = env
        .create_relationship(
            &t,
            "assign",
            d::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS, APP_ADMIN],
            "PT0S",
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let path = format!("{RELS}/{id}/accessAssignments");
    let body = |group: &str, roles: &[&str]| {
        json!({"accessContainer": {"accessContainerId": group, "accessContainerType": "securityGroup"},
        "accessDetails": {"unifiedRoles": roles.iter().map(|r| json!({"roleDefinitionId": r})).collect::<Vec<_>>()}})
    };
    let (s, _, b) = env
        .call(
            "POST",
            &path,
            &t,
            Some(body(d::HELPDESK_GROUP_ID, &[DIRECTORY_READERS])),
            &[],
        )
        .await;
    assert_bad_request(s, &b, "active");
    env.call(
        "POST",
        &format!("{RELS}/{id}/requests"),
        &t,
        Some(json!({"action": "lockForApproval"})),
        &[],
    )
    .await;
    env.control(
        "POST",
        &format!("/_sandbox/relationships/{id}/approve"),
        json!({}),
    )
    .await;
    env.wait_status(&format!("{RELS}/{id}"), &t, "active").await;
    let (s, _, b) = env
        .call(
            "POST",
            &path,
            &t,
            Some(body(
                "00000000-0000-0000-0000-000000000001",
                &[DIRECTORY_READERS],
            )),
            &[],
        )
        .await;
    assert_bad_request(s, &b, "security group");
    let (s, _, b) = env
        .call(
            "POST",
            &path,
            &t,
            Some(body(d::HELPDESK_GROUP_ID, &[GLOBAL_ADMIN])),
            &[],
        )
        .await;
    assert_bad_request(s, &b, "not part of the relationship");
    let (s, headers, a) = env
        .call(
            "POST",
            &path,
            &t,
            Some(body(d::HELPDESK_GROUP_ID, &[DIRECTORY_READERS])),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["status"], "pending");
    let a_url = headers["location"].to_str().unwrap().to_string();
    let (s, _, b) = env
        .call(
            "POST",
            &path,
            &t,
            Some(body(d::HELPDESK_GROUP_ID, &[DIRECTORY_READERS])),
            &[],
        )
        .await;
    assert_eq!(s, 409, "{b}");
    let a = env.wait_status(&a_url, &t, "active").await;
    let etag = a["@odata.etag"].as_str().unwrap().to_string();
    let same =
        json!({"accessDetails": {"unifiedRoles": [{"roleDefinitionId": DIRECTORY_READERS}]}});
    let (s, _, b) = env.patch(&a_url, &t, same, &etag).await;
    assert_eq!(s, 200, "identical roles: {b}");
    let more = json!({"accessDetails": {"unifiedRoles": [{"roleDefinitionId": DIRECTORY_READERS}, {"roleDefinitionId": APP_ADMIN}]}});
    let (s, _, _) = env.call("PATCH", &a_url, &t, Some(more.clone()), &[]).await;
    assert_eq!(s, 400, "If-Match is required");
    let (s, _, _) = env.patch(&a_url, &t, more.clone(), "W/\"x\"").await;
    assert_eq!(s, 412);
    let (s, headers, b) = env.patch(&a_url, &t, more, &etag).await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b, json!({}));
    let op_url = headers["location"].to_str().unwrap().to_string();
    let op = env.wait_status(&op_url, &t, "succeeded").await;
    assert_eq!(op["operationType"], "delegatedAdminAccessAssignmentUpdate");
    let (_, ops) = env.get(&format!("{RELS}/{id}/operations"), &t).await;
    assert_eq!(ops["value"].as_array().unwrap().len(), 1);
    let (_, a) = env.get(&a_url, &t).await;
    assert_eq!(
        a["accessDetails"]["unifiedRoles"].as_array().unwrap().len(),
        2
    );
    let (s, _, _) = env
        .call(
            "DELETE",
            &a_url,
            &t,
            None,
            &[("If-Match", a["@odata.etag"].as_str().unwrap())],
        )
        .await;
    assert_eq!(s, 204);
    env.wait_status(&a_url, &t, "deleted").await;
    let (_, list) = env.get(&path, &t).await;
    assert_eq!(list["value"][0]["status"], "deleted");
}

#[tokio::test]
async fn writes_need_a_delegated_admin_agent_and_reads_the_partner_tenant() {
    let env = start().await;
    let body = relationship_body("perm", d::CONTOSO_TENANT_ID, &[DIRECTORY_READERS], "PT0S");
    // An app-only token of the partner tenant carries no role there: Graph refuses it outright.
    let app_only = env.app_token(d::PARTNER_TENANT_ID).await;
    let (s, b) = post_rel(&env, &app_only, body.clone()).await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(b["error"]["code"], "InvalidAuthenticationToken");
    let customer_app = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (s, _) = env.get(RELS, &customer_app).await;
    assert_eq!(
        s, 403,
        "a customer-tenant token cannot read the partner's relationships"
    );
    let (status, tokens) = env
        .token_request(
            d::PARTNER_TENANT_ID,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", d::PARTNER_CLIENT_ID),
                ("client_secret", d::PARTNER_CLIENT_SECRET),
                ("scope", support::GRAPH),
                ("refresh_token", d::PARTNER_SUPPORT_REFRESH_TOKEN),
            ],
        )
        .await;
    assert_eq!(status, 200);
    let support_user = tokens["access_token"].as_str().unwrap();
    let (s, b) = post_rel(&env, support_user, body.clone()).await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("AdminAgents")
    );
    let (s, _) = env.get(RELS, support_user).await;
    assert_eq!(s, 200, "reads do not need AdminAgents");
    let (s, _, _) = env.call("GET", RELS, "", None, &[]).await;
    assert_eq!(s, 401);
    let (s, b) = post_rel(&env, &env.admin().await, body).await;
    assert_eq!(s, 201, "{b}");
}

#[tokio::test]
async fn termination_customers_and_expiry_follow_the_clock() {
    let env = start().await;
    let id = env
        .active_relationship(
            "lifecycle",
            d::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS],
            &[d::HELPDESK_GROUP_ID],
        )
        .await;
    let t = env.admin().await;
    let (_, customers) = env
        .get("/v1.0/tenantRelationships/delegatedAdminCustomers", &t)
        .await;
    assert_eq!(customers["value"][0]["tenantId"], d::CONTOSO_TENANT_ID);
    assert_eq!(customers["value"][0]["displayName"], "Contoso Ltd");
    let (s, one) = env
        .get(
            &format!(
                "/v1.0/tenantRelationships/delegatedAdminCustomers/{}",
                d::CONTOSO_TENANT_ID
            ),
            &t,
        )
        .await;
    assert_eq!((s, &one["tenantId"]), (200, &json!(d::CONTOSO_TENANT_ID)));
    assert_eq!(
        env.get(
            &format!(
                "/v1.0/tenantRelationships/delegatedAdminCustomers/{}",
                d::FABRIKAM_TENANT_ID
            ),
            &t
        )
        .await
        .0,
        404
    );
    let (s, details) = env
        .get(
            &format!(
                "/v1.0/tenantRelationships/delegatedAdminCustomers/{}/serviceManagementDetails",
                d::CONTOSO_TENANT_ID
            ),
            &t,
        )
        .await;
    assert_eq!(s, 200);
    assert!(!details["value"].as_array().unwrap().is_empty());
    // Aging past the end date expires a relationship without auto-extension; its assignments go.
    let (s, aged) = env
        .control(
            "POST",
            &format!("/_sandbox/relationships/{id}/age"),
            json!({"days": 731}),
        )
        .await;
    assert_eq!(s, 200, "{aged}");
    let rel = env
        .wait_status(&format!("{RELS}/{id}"), &t, "expired")
        .await;
    assert_eq!(rel["status"], "expired");
    let (_, list) = env.get(&format!("{RELS}/{id}/accessAssignments"), &t).await;
    assert_eq!(list["value"][0]["status"], "deleted");
    let (_, customers) = env
        .get("/v1.0/tenantRelationships/delegatedAdminCustomers", &t)
        .await;
    assert_eq!(customers["value"].as_array().unwrap().len(), 0);

    // With auto-extension the end date moves forward by 180 days instead.
    let id2 = env
        .active_relationship("extend", d::CONTOSO_TENANT_ID, &[DIRECTORY_READERS], &[])
        .await;
    let path2 = format!("{RELS}/{id2}");
    let (_, rel) = env.get(&path2, &t).await;
    env.call(
        "PATCH",
        &path2,
        &t,
        Some(json!({"autoExtendDuration": "P180D"})),
        &[("If-Match", rel["@odata.etag"].as_str().unwrap())],
    )
    .await;
    env.control(
        "POST",
        &format!("/_sandbox/relationships/{id2}/age"),
        json!({"days": 731}),
    )
    .await;
    let (_, rel) = env.get(&path2, &t).await;
    assert_eq!(rel["status"], "active");
    let end = chrono::DateTime::parse_from_rfc3339(rel["endDateTime"].as_str().unwrap()).unwrap();
    let days_left = (end.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((177..=179).contains(&days_left), "{days_left}");

    // Partner termination goes through terminationRequested to terminated.
    let (s, _, b) = env
        .call(
            "POST",
            &format!("{path2}/requests"),
            &t,
            Some(json!({"action": "terminate"})),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{b}");
    env.wait_status(&path2, &t, "terminated").await;

    // Customer-side termination through the control API.
    let id3 = env
        .active_relationship(
            "customer-ends",
            d::NORTHWIND_TENANT_ID,
            &[DIRECTORY_READERS],
            &[],
        )
        .await;
    let (s, _) = env
        .control(
            "POST",
            &format!("/_sandbox/relationships/{id3}/terminate"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    env.wait_status(&format!("{RELS}/{id3}"), &t, "terminated")
        .await;
}

#[tokio::test]
async fn approval_window_and_auto_approval() {
    let env = support::start_with(SandboxOptions {
        auto_approve_after: Some(Duration::from_millis(1500)),
        assignment_activation_delay: Duration::from_millis(100),
        consistency: gdap_operator::sandbox::Consistency::immediate(),
        ..Default::default()
    })
    .await;
    let t = env.admin().await;
    let rel = env
        .create_relationship(
            &t,
            "auto",
            d::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS],
            "PT0S",
        )
        .await;
    let path = format!("{RELS}/{}", rel["id"].as_str().unwrap());
    env.call(
        "POST",
        &format!("{path}/requests"),
        &t,
        Some(json!({"action": "lockForApproval"})),
        &[],
    )
    .await;
    let (_, now) = env.get(&path, &t).await;
    assert_eq!(now["status"], "approvalPending");
    env.wait_status(&path, &t, "active").await;

    // A relationship without a customer is not auto-approved and expires after 90 days.
    let mut body = relationship_body(
        "any-customer",
        d::CONTOSO_TENANT_ID,
        &[DIRECTORY_READERS],
        "PT0S",
    );
    body.as_object_mut().unwrap().remove("customer");
    let (s, b) = post_rel(&env, &t, body).await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap();
    env.call(
        "POST",
        &format!("{RELS}/{id}/requests"),
        &t,
        Some(json!({"action": "lockForApproval"})),
        &[],
    )
    .await;
    let (s, _) = env
        .control(
            "POST",
            &format!("/_sandbox/relationships/{id}/age"),
            json!({"days": 89}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, r) = env.get(&format!("{RELS}/{id}"), &t).await;
    assert_eq!(r["status"], "approvalPending");
    env.control(
        "POST",
        &format!("/_sandbox/relationships/{id}/age"),
        json!({"days": 2}),
    )
    .await;
    let (_, r) = env.get(&format!("{RELS}/{id}"), &t).await;
    assert_eq!(r["status"], "expired");

    // "Approval by any customer": the approving tenant becomes the customer.
    let mut body = relationship_body(
        "any-customer-2",
        d::CONTOSO_TENANT_ID,
        &[DIRECTORY_READERS],
        "PT0S",
    );
    body.as_object_mut().unwrap().remove("customer");
    let (_, b) = post_rel(&env, &t, body).await;
    let id = b["id"].as_str().unwrap();
    env.call(
        "POST",
        &format!("{RELS}/{id}/requests"),
        &t,
        Some(json!({"action": "lockForApproval"})),
        &[],
    )
    .await;
    let (s, _) = env
        .control(
            "POST",
            &format!("/_sandbox/relationships/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(
        s, 400,
        "the customer must be named when the relationship has none"
    );
    let (s, _) = env
        .control(
            "POST",
            &format!("/_sandbox/relationships/{id}/approve"),
            json!({"tenantId": d::NORTHWIND_TENANT_ID}),
        )
        .await;
    assert_eq!(s, 200);
    let r = env.wait_status(&format!("{RELS}/{id}"), &t, "active").await;
    assert_eq!(
        r["customer"],
        json!({"tenantId": d::NORTHWIND_TENANT_ID, "displayName": "Northwind Traders"})
    );
}
