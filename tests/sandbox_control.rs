//! The sandbox's control API, throttling, fault injection, HTTPS and state persistence, and a
//! customer signed while the sandbox runs.
#![cfg(feature = "sandbox")]

#[path = "sandbox_support/mod.rs"]
mod support;

use gdap_operator::sandbox::defaults as d;
use gdap_operator::sandbox::{Sandbox, SandboxOptions, ThrottleOptions};
use serde_json::json;
use std::time::Duration;
use support::{APP_ADMIN, DIRECTORY_READERS, Env, GRAPH, PC, start, start_with};

#[tokio::test]
async fn injected_faults_are_deterministic_and_carry_retry_after() {
    let env = start().await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let rules = json!({"seed": 3, "rules": [{"pathPrefix": "/v1.0/users", "rate": 0.5, "statuses": [429, 503], "retryAfterSeconds": 0.25}]});
    let run = || async {
        let (s, _) = env.control("PUT", "/_sandbox/faults", rules.clone()).await;
        assert_eq!(s, 204);
        let mut seen = Vec::new();
        for _ in 0..20 {
            let (s, headers, b) = env.call("GET", "/v1.0/users?$top=1", &t, None, &[]).await;
            if s == 429 {
                // Whole seconds, rounded up: HTTP and Microsoft's SDKs read nothing else.
                assert_eq!(headers["retry-after"], "1");
                assert_eq!(b["error"]["code"], "TooManyRequests");
            }
            seen.push(s);
        }
        seen
    };
    let first = run().await;
    assert_eq!(first, run().await, "same seed, same faults");
    assert!(
        first.contains(&429) && first.contains(&503) && first.contains(&200),
        "{first:?}"
    );
    let (s, _) = env.get("/v1.0/subscribedSkus", &t).await;
    assert_eq!(s, 200, "other paths are untouched");
    let (s, _) = env.control("DELETE", "/_sandbox/faults", json!({})).await;
    assert_eq!(s, 204);
    for _ in 0..5 {
        assert_eq!(env.get("/v1.0/users?$top=1", &t).await.0, 200);
    }
    let (s, _) = env
        .control(
            "PUT",
            "/_sandbox/faults",
            json!({"rules": [{"pathPrefix": "/v1.0/", "rate": 2.0}]}),
        )
        .await;
    assert_eq!(s, 400);
    let slow =
        json!({"rules": [{"pathPrefix": "/v1.0/subscribedSkus", "rate": 0.0, "latencyMs": 1000}]});
    assert_eq!(env.control("PUT", "/_sandbox/faults", slow).await.0, 204);
    let started = std::time::Instant::now();
    assert_eq!(env.get("/v1.0/subscribedSkus", &t).await.0, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "latency is added"
    );
    let started = std::time::Instant::now();
    assert_eq!(env.get("/v1.0/users?$top=1", &t).await.0, 200);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "only under the prefix"
    );
}

#[tokio::test]
async fn connections_are_cut_before_or_after_acting_and_bodies_are_truncated() {
    let env = start().await;
    let admin = env.admin().await;
    let list = "/v1.0/tenantRelationships/delegatedAdminRelationships";
    let cut = |what: &str| json!({"rules": [{"pathPrefix": list, "method": "POST", what: 1.0}]});
    let body = json!({"displayName": "cut-before", "duration": "P30D",
        "customer": {"tenantId": d::CONTOSO_TENANT_ID},
        "accessDetails": {"unifiedRoles": [{"roleDefinitionId": DIRECTORY_READERS}]}});
    let post = |body: serde_json::Value| {
        env.http
            .post(format!("{}{list}", env.base))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let count = || async {
        let (_, page) = env.get(list, &admin).await;
        page["value"].as_array().unwrap().len()
    };

    // Cut before acting: no answer, and nothing was created.
    assert_eq!(
        env.control("PUT", "/_sandbox/faults", cut("dropRate"))
            .await
            .0,
        204
    );
    let err = post(body.clone()).await.expect_err("no answer comes");
    assert!(!err.is_timeout() && !err.is_connect(), "{err}");
    assert_eq!(
        count().await,
        0,
        "a request cut before acting changes nothing"
    );

    // Cut after acting: no answer, but the relationship exists.
    assert_eq!(
        env.control("PUT", "/_sandbox/faults", cut("dropAfterRate"))
            .await
            .0,
        204
    );
    let mut after = body.clone();
    after["displayName"] = json!("cut-after");
    post(after).await.expect_err("no answer comes");
    assert_eq!(count().await, 1, "a request cut after acting took effect");

    // Truncated: a well-formed HTTP answer whose JSON is cut in half, and the create happened.
    assert_eq!(
        env.control("PUT", "/_sandbox/faults", cut("truncateRate"))
            .await
            .0,
        204
    );
    let mut truncated = body.clone();
    truncated["displayName"] = json!("truncated");
    let answer = post(truncated).await.expect("an answer comes");
    assert_eq!(answer.status(), 201);
    let text = answer.text().await.unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err() && text.starts_with('{'),
        "half a JSON document: {text}"
    );
    assert_eq!(count().await, 2);

    let (_, log) = env.control("GET", "/_sandbox/requests", json!({})).await;
    let faults: Vec<(u64, &str)> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST")
        .filter_map(|r| Some((r["status"].as_u64()?, r["fault"].as_str()?)))
        .collect();
    assert_eq!(
        faults,
        [
            (0, "dropped"),
            (201, "droppedAfterAnswer"),
            (201, "truncated")
        ],
        "the log tells which exchange was broken and how"
    );
    let (status, refused) = env
        .control(
            "PUT",
            "/_sandbox/faults",
            json!({"rules": [{"pathPrefix": "/", "rate": 0.6, "dropRate": 0.6}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        refused["error"].as_str().unwrap().contains("more than 1"),
        "{refused}"
    );
}

#[tokio::test]
async fn throttling_is_per_app_and_tenant_with_retry_after() {
    let env = start_with(SandboxOptions {
        throttle: ThrottleOptions {
            budget: 3,
            window: Duration::from_secs(2),
        },
        ..Default::default()
    })
    .await;
    let contoso = env.app_token(d::CONTOSO_TENANT_ID).await;
    let northwind = env.app_token(d::NORTHWIND_TENANT_ID).await;
    for _ in 0..3 {
        assert_eq!(env.get("/v1.0/users?$top=1", &contoso).await.0, 200);
    }
    let (s, headers, b) = env
        .call("GET", "/v1.0/users?$top=1", &contoso, None, &[])
        .await;
    assert_eq!(s, 429, "{b}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "whole seconds: {retry}");
    assert!(
        headers["x-ms-throttle-scope"]
            .to_str()
            .unwrap()
            .contains(d::CONTOSO_TENANT_ID)
    );
    assert_eq!(
        env.get("/v1.0/users?$top=1", &northwind).await.0,
        200,
        "another tenant has its own budget"
    );
    tokio::time::sleep(Duration::from_secs(retry) + Duration::from_millis(50)).await;
    assert_eq!(
        env.get("/v1.0/users?$top=1", &contoso).await.0,
        200,
        "the budget refills after Retry-After"
    );
}

#[tokio::test]
async fn request_log_state_dump_and_reset() {
    let env = start().await;
    let t = env.admin().await;
    env.create_relationship(
        &t,
        "logged",
        d::CONTOSO_TENANT_ID,
        &[DIRECTORY_READERS],
        "PT0S",
    )
    .await;
    let (s, log) = env.control("GET", "/_sandbox/requests", json!({})).await;
    assert_eq!(s, 200);
    let posts: Vec<_> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "POST"
                && r["path"] == "/v1.0/tenantRelationships/delegatedAdminRelationships"
        })
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["status"], 201);
    assert_eq!(
        posts[0]["token"], "user",
        "the kind of token, never the token"
    );
    let app = env.app_token(d::CONTOSO_TENANT_ID).await;
    env.get("/v1.0/subscribedSkus", &app).await;
    let (_, log) = env.control("GET", "/_sandbox/requests", json!({})).await;
    let kind = |path: &str| {
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|r| r["path"].as_str().unwrap().ends_with(path))
            .map(|r| r["token"].clone())
            .unwrap()
    };
    assert_eq!(kind("/subscribedSkus"), "app");
    assert_eq!(
        kind("/oauth2/v2.0/token"),
        serde_json::Value::Null,
        "token requests carry none"
    );
    assert!(
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !r["path"].as_str().unwrap().starts_with("/_sandbox"))
    );

    let (_, state) = env.control("GET", "/_sandbox/state", json!({})).await;
    let text = state.to_string();
    assert!(
        !text.contains(d::PARTNER_CLIENT_SECRET),
        "no client secret in the dump"
    );
    assert!(
        !text.contains("sandbox-rt-") && !text.contains(d::PARTNER_REFRESH_TOKEN),
        "no refresh token in the dump"
    );
    assert_eq!(state["relationships"].as_array().unwrap().len(), 1);
    assert_eq!(
        state["tenants"][d::NORTHWIND_TENANT_ID]["users"]["generated"]["count"],
        100_000
    );

    let (s, _) = env.control("POST", "/_sandbox/reset", json!({})).await;
    assert_eq!(s, 204);
    let (_, state) = env.control("GET", "/_sandbox/state", json!({})).await;
    assert_eq!(state["relationships"], json!([]));
    let (_, log) = env.control("GET", "/_sandbox/requests", json!({})).await;
    assert_eq!(log["requests"], json!([]));
    // Reset restores the fixture's refresh token too.
    let (s, _) = env
        .token_request(
            d::PARTNER_TENANT_ID,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", d::PARTNER_CLIENT_ID),
                ("client_secret", d::PARTNER_CLIENT_SECRET),
                ("scope", support::GRAPH),
                ("refresh_token", d::PARTNER_REFRESH_TOKEN),
            ],
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn control_errors_are_explicit() {
    let env = start().await;
    let missing = format!(
        "/_sandbox/relationships/00000000-0000-0000-0000-000000000000-{}/approve",
        d::PARTNER_TENANT_ID
    );
    let (s, b) = env.control("POST", &missing, json!({})).await;
    assert_eq!(s, 404);
    assert!(b["error"].is_string());
    let t = env.admin().await;
    let rel = env
        .create_relationship(
            &t,
            "not-locked",
            d::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS],
            "PT0S",
        )
        .await;
    let (s, _) = env
        .control(
            "POST",
            &format!(
                "/_sandbox/relationships/{}/approve",
                rel["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "only approvalPending relationships can be approved");
    let (s, _) = env
        .control(
            "POST",
            &format!("/_sandbox/tenants/{}/users", d::CONTOSO_TENANT_ID),
            json!({"displayName": "no upn"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = env
        .control(
            "DELETE",
            &format!("/_sandbox/tenants/{}/users/nobody", d::CONTOSO_TENANT_ID),
            json!({}),
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn https_with_a_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxOptions {
        tls_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .await
    .unwrap();
    let base = sandbox.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let ca = sandbox.ca_pem().expect("CA when TLS is on");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ca.pem")).unwrap(),
        ca
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", d::PARTNER_CLIENT_ID),
        ("client_secret", d::PARTNER_CLIENT_SECRET),
        ("scope", support::GRAPH),
    ];
    let token: serde_json::Value = client
        .post(format!("{base}/{}/oauth2/v2.0/token", d::CONTOSO_TENANT_ID))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page: serde_json::Value = client
        .get(format!("{base}/v1.0/users?$top=5"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["@odata.nextLink"].as_str().unwrap().starts_with(&base));
    let localhost = base.replace("127.0.0.1", "localhost");
    assert!(
        client
            .get(format!(
                "{localhost}/{}/discovery/v2.0/keys",
                d::CONTOSO_TENANT_ID
            ))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .get(format!(
                "{base}/{}/discovery/v2.0/keys",
                d::CONTOSO_TENANT_ID
            ))
            .send()
            .await
            .is_err(),
        "the CA is not a public one"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let options = || SandboxOptions {
        state_file: Some(file.clone()),
        ..Default::default()
    };
    let env = start_with(options()).await;
    let t = env.admin().await;
    let rel = env
        .create_relationship(
            &t,
            "persisted",
            d::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS],
            "PT0S",
        )
        .await;
    env.sandbox.shutdown().await;
    assert!(file.exists());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.len() < 200_000,
        "state file stays small: {}",
        text.len()
    );
    let env = start_with(options()).await;
    let (_, state) = env.control("GET", "/_sandbox/state", json!({})).await;
    assert_eq!(state["relationships"][0]["id"], rel["id"]);
    env.sandbox.shutdown().await;
}

#[tokio::test]
async fn throttle_faults_and_log_can_be_inspected_and_changed() {
    let env = start().await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let rules = json!({"seed": 9, "rules": [{"pathPrefix": "/v1/", "rate": 0.1, "statuses": [500], "retryAfterSeconds": null, "latencyMs": 5}]});
    env.control("PUT", "/_sandbox/faults", rules).await;
    let (s, shown) = env.control("GET", "/_sandbox/faults", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(shown["seed"], 9);
    assert_eq!(shown["rules"][0]["statuses"], json!([500]));
    env.control(
        "PUT",
        "/_sandbox/token-faults",
        json!({"rules": [{"aadsts": 65001}]}),
    )
    .await;
    let (_, shown) = env
        .control("GET", "/_sandbox/token-faults", json!({}))
        .await;
    assert_eq!(shown["rules"][0]["count"], 1, "count defaults to 1");
    assert_eq!(
        env.control("DELETE", "/_sandbox/token-faults", json!({}))
            .await
            .0,
        204
    );
    assert_eq!(
        env.control("GET", "/_sandbox/token-faults", json!({}))
            .await
            .1["rules"],
        json!([])
    );

    assert_eq!(
        env.control(
            "PUT",
            "/_sandbox/throttle",
            json!({"budget": 1, "windowSeconds": 30})
        )
        .await
        .0,
        204
    );
    assert_eq!(env.get("/v1.0/users?$top=1", &t).await.0, 200);
    assert_eq!(env.get("/v1.0/users?$top=1", &t).await.0, 429);
    assert_eq!(
        env.control("PUT", "/_sandbox/throttle", json!({"budget": 0}))
            .await
            .0,
        204
    );
    assert_eq!(
        env.get("/v1.0/users?$top=1", &t).await.0,
        200,
        "budget 0 disables throttling"
    );

    assert_eq!(
        env.control("DELETE", "/_sandbox/requests", json!({}))
            .await
            .0,
        204
    );
    let (_, log) = env.control("GET", "/_sandbox/requests", json!({})).await;
    assert_eq!(log["requests"], json!([]));
}

#[tokio::test]
async fn responses_carry_correlation_headers() {
    let env = start().await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (_, headers, _) = env
        .call(
            "GET",
            "/v1.0/users?$top=1",
            &t,
            None,
            &[("client-request-id", "abc-123")],
        )
        .await;
    assert_eq!(headers["client-request-id"], "abc-123");
    assert_eq!(headers["request-id"].len(), 36);
    let pc = env.user_token(d::PARTNER_TENANT_ID, support::PC).await;
    let path = format!("/v1/customers/{}/applicationconsents", d::CONTOSO_TENANT_ID);
    let (s, headers, _) = env
        .call(
            "POST",
            &path,
            &pc,
            Some(json!({})),
            &[("MS-CorrelationId", "corr-1")],
        )
        .await;
    assert_eq!(s, 403, "no GDAP role yet");
    assert_eq!(headers["ms-correlationid"], "corr-1");
    assert_eq!(headers["ms-requestid"].len(), 36, "generated when absent");
}

#[tokio::test]
async fn the_clock_moves_time_driven_transitions_forward_without_sleeping() {
    let env = start_with(SandboxOptions {
        // An hour-long activation: only the clock can get it there in a test.
        assignment_activation_delay: Duration::from_secs(3600),
        consistency: gdap_operator::sandbox::Consistency::immediate(),
        ..Default::default()
    })
    .await;
    let (s, clock) = env.control("GET", "/_sandbox/clock", json!(null)).await;
    assert_eq!((s, clock["advancedSeconds"].as_f64()), (200, Some(0.0)));
    let token = env.admin().await;
    let rel = env
        .create_relationship(
            &token,
            "clock",
            d::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS],
            "PT0S",
        )
        .await;
    let id = rel["id"].as_str().unwrap();
    let path = format!("/v1.0/tenantRelationships/delegatedAdminRelationships/{id}");
    let (s, _, _) = env
        .call(
            "POST",
            &format!("{path}/requests"),
            &token,
            Some(json!({"action": "lockForApproval"})),
            &[],
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = env
        .control(
            "POST",
            &format!("/_sandbox/relationships/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(env.get(&path, &token).await.1["status"], "approved");
    let (s, clock) = env
        .control("POST", "/_sandbox/clock", json!({"advanceSeconds": 3600}))
        .await;
    assert_eq!((s, clock["advancedSeconds"].as_f64()), (200, Some(3600.0)));
    let active = env.get(&path, &token).await.1;
    assert_eq!(active["status"], "active", "activated by the clock");
    let ends: chrono::DateTime<chrono::Utc> =
        active["endDateTime"].as_str().unwrap().parse().unwrap();
    let left = ends - chrono::Utc::now();
    assert!(
        (left - chrono::Duration::days(730)).num_seconds().abs() < 60,
        "activated at the sandbox's now, which clients read on the wall clock: {left}"
    );
    let (s, _) = env
        .control(
            "POST",
            "/_sandbox/clock",
            json!({"advanceSeconds": 731.0 * 86_400.0}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(env.get(&path, &token).await.1["status"], "expired");
    let (s, error) = env
        .control("POST", "/_sandbox/clock", json!({"advanceSeconds": -5}))
        .await;
    assert_eq!(s, 400, "{error}");
}

/// Every customer Partner Center lists, page by page (`size` each) following the
/// `MS-ContinuationToken` of `links.next`: (pages, customer ids in order).
async fn list_customers(env: &Env, token: &str, size: usize) -> (Vec<Vec<String>>, Vec<String>) {
    let mut pages = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let headers: Vec<(&str, &str)> = continuation
            .as_deref()
            .map(|c| vec![("MS-ContinuationToken", c)])
            .unwrap_or_default();
        let (s, _, b) = env
            .call(
                "GET",
                &format!("/v1/customers?size={size}"),
                token,
                None,
                &headers,
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let page: Vec<String> = b["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        assert!(page.len() <= size, "a page holds at most size: {b}");
        pages.push(page);
        assert!(pages.len() <= 100, "the list never ends");
        match b["links"]["next"]["headers"][0]["value"].as_str() {
            Some(next) => continuation = Some(next.to_string()),
            None => break,
        }
    }
    let ids = pages.concat();
    (pages, ids)
}

#[tokio::test]
async fn a_signed_customer_is_listed_read_and_onboarded_like_a_fixture_customer() {
    // Sorts after every built-in customer, so with pages of two it is not on the first page.
    const NEW: &str = "f3a7c9e1-5b2d-4c8e-9a6f-0d1e2b3c4a5f";
    let env = start().await;
    let pc = env.user_token(d::PARTNER_TENANT_ID, PC).await;
    let (_, before) = list_customers(&env, &pc, 2).await;
    assert!(!before.iter().any(|id| id == NEW));

    let (s, signed) = env
        .control(
            "POST",
            "/_sandbox/customers",
            json!({"tenantId": NEW.to_uppercase(), "displayName": "Woodgrove Bank"}),
        )
        .await;
    assert_eq!(s, 201, "{signed}");
    assert_eq!(signed["id"], NEW, "the tenant id, lower case");
    assert_eq!(signed["companyProfile"]["companyName"], "Woodgrove Bank");
    assert_eq!(
        signed["companyProfile"]["domain"], "woodgrovebank.onmicrosoft.com",
        "the name's initial domain"
    );

    // Partner Center lists it once, on a later page, as it answers it alone.
    let (pages, after) = list_customers(&env, &pc, 2).await;
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    assert_eq!(after.iter().filter(|id| *id == NEW).count(), 1, "{after:?}");
    assert!(
        !pages[0].iter().any(|id| id == NEW),
        "not on the first page: {pages:?}"
    );
    let (s, read) = env.get(&format!("/v1/customers/{NEW}"), &pc).await;
    assert_eq!(s, 200, "{read}");
    assert_eq!(read, signed, "read as it was answered");

    // GDAP through Graph: the relationship is created (201), approved and activated, and with
    // Application Administrator the partner consents its app, so the admin gets Graph tokens
    // in the new customer — the onboarding of any fixture customer.
    env.active_relationship(
        "Woodgrove onboarding",
        NEW,
        &[APP_ADMIN, DIRECTORY_READERS],
        &[d::APP_ADMINS_GROUP_ID],
    )
    .await;
    env.consent(NEW, &["Directory.Read.All"]).await;
    let graph = env.user_token(NEW, GRAPH).await;
    assert_eq!(support::claims(&graph)["tid"], NEW);

    // The same tenant again: 409; invalid input: 400 naming the field.
    let (s, b) = env
        .control(
            "POST",
            "/_sandbox/customers",
            json!({"tenantId": NEW, "displayName": "Woodgrove Again"}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert!(b["error"].as_str().unwrap().starts_with("tenantId"), "{b}");
    for (body, field) in [
        (
            json!({"tenantId": "not-a-guid", "displayName": "X"}),
            "tenantId",
        ),
        (json!({"tenantId": 7, "displayName": "X"}), "tenantId"),
        (json!({"displayName": "  "}), "displayName"),
        (json!({}), "displayName"),
        (
            json!({"displayName": "X", "primaryDomain": "no domain"}),
            "primaryDomain",
        ),
        (
            json!({"displayName": "X", "defaultDomain": "x.example"}),
            "defaultDomain",
        ),
    ] {
        let (s, b) = env
            .control("POST", "/_sandbox/customers", body.clone())
            .await;
        assert_eq!(s, 400, "{body}: {b}");
        assert!(
            b["error"].as_str().unwrap().starts_with(field),
            "{body}: {b}"
        );
    }
    let (s, b) = env
        .control(
            "POST",
            "/_sandbox/customers",
            json!({"displayName": "Fabrikam", "primaryDomain": d::FABRIKAM_DOMAIN}),
        )
        .await;
    assert_eq!(s, 409, "another tenant's domain: {b}");
    assert!(b["error"].as_str().unwrap().starts_with("primaryDomain"));

    // Without a tenant id: a fresh one; a taken initial domain gets a number.
    let (s, other) = env
        .control(
            "POST",
            "/_sandbox/customers",
            json!({"displayName": "Woodgrove Bank"}),
        )
        .await;
    assert_eq!(s, 201, "{other}");
    let id = other["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok() && id != NEW, "{other}");
    assert_eq!(
        other["companyProfile"]["domain"],
        "woodgrovebank2.onmicrosoft.com"
    );

    // The state dump shows the new tenant; reset goes back to the fixture without it.
    let (_, state) = env.control("GET", "/_sandbox/state", json!({})).await;
    assert_eq!(
        state["tenants"][NEW]["displayName"], "Woodgrove Bank",
        "{}",
        state["tenants"]
    );
    let (s, _) = env.control("POST", "/_sandbox/reset", json!({})).await;
    assert_eq!(s, 204);
    // (The admin's rotated refresh token is gone with the reset; its access token still holds.)
    let (_, reset) = list_customers(&env, &pc, 2).await;
    assert_eq!(reset, before, "reset drops signed customers");
    let (s, _) = env.get(&format!("/v1/customers/{NEW}"), &pc).await;
    assert_eq!(s, 404);
}
