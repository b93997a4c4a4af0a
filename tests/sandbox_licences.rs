//! What the sandbox serves for the tenant import, over HTTP: company subscriptions and the SKU
//! units derived from them, group-based licence states, the `/users/delta()` function form, the
//! throttle budget hint and whole-second `Retry-After`, and the fixture's checks.
#![cfg(feature = "sandbox")]

#[path = "sandbox_support/mod.rs"]
mod support;

use gdap_operator::sandbox::{Fixture, SandboxOptions, ThrottleOptions, defaults as d, skus};
use serde_json::{Value, json};
use std::time::Duration;
use support::{start, start_with};

fn by_sku<'a>(items: &'a [Value], sku: &str) -> Vec<&'a Value> {
    items.iter().filter(|x| x["skuId"] == sku).collect()
}

#[tokio::test]
async fn subscriptions_back_the_skus_with_terms_trials_and_sellers() {
    let env = start().await;
    let t = env.app_token(d::NORTHWIND_TENANT_ID).await;
    let (s, subs) = env.get("/v1.0/directory/subscriptions", &t).await;
    assert_eq!(s, 200, "{subs}");
    let subs = subs["value"].as_array().unwrap().clone();
    let (_, skus_page) = env.get("/v1.0/subscribedSkus", &t).await;
    let skus_list = skus_page["value"].as_array().unwrap().clone();
    assert_eq!(skus_list.len(), 3);
    for sku in &skus_list {
        let own = by_sku(&subs, sku["skuId"].as_str().unwrap());
        let units = |status: &str| -> i64 {
            own.iter()
                .filter(|x| x["status"] == status)
                .map(|x| x["totalLicenses"].as_i64().unwrap())
                .sum()
        };
        assert_eq!(
            sku["prepaidUnits"]["enabled"].as_i64().unwrap(),
            units("Enabled")
        );
        assert_eq!(
            sku["prepaidUnits"]["warning"].as_i64().unwrap(),
            units("Warning")
        );
        let ids: Vec<&Value> = own.iter().map(|x| &x["commerceSubscriptionId"]).collect();
        assert_eq!(
            sku["subscriptionIds"]
                .as_array()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            ids
        );
        for x in &own {
            assert_eq!(x["skuPartNumber"], sku["skuPartNumber"]);
            for key in [
                "id",
                "createdDateTime",
                "nextLifecycleDateTime",
                "ownerTenantId",
                "isTrial",
                "serviceStatus",
            ] {
                assert!(!x[key].is_null(), "{key} in {x}");
            }
        }
    }
    let e3 = by_sku(&subs, skus::SPE_E3);
    assert_eq!(e3.len(), 3, "several subscriptions back one SKU");
    assert!(
        e3.iter()
            .any(|x| x["ownerTenantId"] == d::OTHER_PARTNER_TENANT_ID)
    );
    assert!(subs.iter().any(|x| x["isTrial"] == true));
    assert!(subs.iter().any(|x| x["status"] == "Warning"));
    let soon = chrono::Utc::now() + chrono::Duration::days(30);
    assert!(subs.iter().any(|x| {
        let t: chrono::DateTime<chrono::Utc> = x["nextLifecycleDateTime"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        x["status"] == "Enabled" && t < soon
    }));
    let one = e3[0]["id"].as_str().unwrap();
    let (s, got) = env
        .get(&format!("/v1.0/directory/subscriptions/{one}"), &t)
        .await;
    assert_eq!(s, 200);
    assert_eq!(got["totalLicenses"], e3[0]["totalLicenses"]);
    assert_eq!(
        env.get("/v1.0/directory/subscriptions/nope", &t).await.0,
        404
    );
    let (s, filtered) = env
        .get(
            "/v1.0/directory/subscriptions?$filter=isTrial eq true&$select=id,skuPartNumber",
            &t,
        )
        .await;
    assert_eq!(s, 200, "{filtered}");
    assert!(
        filtered["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.get("totalLicenses").is_none())
    );
}

#[tokio::test]
async fn reading_subscriptions_needs_organization_read_all() {
    let env = start().await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    assert_eq!(env.get("/v1.0/directory/subscriptions", &t).await.0, 200);
    let mut fixture = Fixture::builtin();
    for c in &mut fixture.customers {
        for consent in &mut c.consents {
            for roles in &mut consent.app_roles {
                roles.permissions.retain(|p| p != "Organization.Read.All");
            }
        }
    }
    let env = start_with(SandboxOptions {
        fixture,
        ..Default::default()
    })
    .await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (s, body) = env.get("/v1.0/directory/subscriptions", &t).await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(
        env.get("/v1.0/subscribedSkus", &t).await.0,
        200,
        "SKUs need LicenseAssignment.Read.All only"
    );
}

#[tokio::test]
async fn licence_states_say_whether_a_licence_is_direct_or_inherited() {
    let env = start().await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (_, page) = env
        .get(
            "/v1.0/users?$select=id,assignedLicenses,licenseAssignmentStates",
            &t,
        )
        .await;
    let users = page["value"].as_array().unwrap();
    let (mut group, mut direct) = (0, 0);
    for u in users {
        let assigned: Vec<&Value> = u["assignedLicenses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["skuId"])
            .collect();
        let states = u["licenseAssignmentStates"].as_array().unwrap();
        let state_skus: Vec<&Value> = states.iter().map(|s| &s["skuId"]).collect();
        assert_eq!(assigned, state_skus, "{u}");
        for s in states {
            assert_eq!(s["state"], "Active");
            if s["assignedByGroup"].is_string() {
                group += 1
            } else {
                direct += 1
            }
        }
    }
    assert!(
        group > 0 && direct > 0,
        "Contoso has both: {group} inherited, {direct} direct"
    );
    let (_, defaults_only) = env.get("/v1.0/users?$top=1", &t).await;
    assert!(
        defaults_only["value"][0]
            .get("licenseAssignmentStates")
            .is_none(),
        "$select-only"
    );

    let n = env.app_token(d::NORTHWIND_TENANT_ID).await;
    let (_, page) = env
        .get(
            "/v1.0/users?$top=500&$select=id,assignedLicenses,licenseAssignmentStates",
            &n,
        )
        .await;
    let both = page["value"].as_array().unwrap().iter().filter(|u| {
        let states = u["licenseAssignmentStates"].as_array().unwrap();
        states
            .iter()
            .any(|s| s["skuId"] == skus::SPE_E3 && s["assignedByGroup"].is_string())
            && states
                .iter()
                .any(|s| s["skuId"] == skus::SPE_E3 && s["assignedByGroup"].is_null())
    });
    assert!(
        both.count() > 0,
        "some hold E3 both directly and through the group"
    );
}

#[tokio::test]
async fn delta_answers_in_the_odata_function_form_too() {
    let env = start().await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (s, plain) = env
        .get("/v1.0/users/delta?$select=id,displayName", &t)
        .await;
    assert_eq!(s, 200);
    let (s, function) = env
        .get("/v1.0/users/delta()?$select=id,displayName", &t)
        .await;
    assert_eq!(s, 200, "{function}");
    assert_eq!(plain["value"], function["value"]);
    let link = function["@odata.deltaLink"].as_str().unwrap();
    let (s, round) = env.get(link, &t).await;
    assert_eq!(s, 200);
    assert_eq!(round["value"], json!([]));
}

#[tokio::test]
async fn a_nearly_spent_budget_is_announced_and_retry_after_is_whole_seconds() {
    let env = start_with(SandboxOptions {
        throttle: ThrottleOptions {
            budget: 10,
            window: Duration::from_secs(30),
        },
        ..Default::default()
    })
    .await;
    let t = env.app_token(d::CONTOSO_TENANT_ID).await;
    let mut hints = Vec::new();
    for _ in 0..10 {
        let (s, headers, _) = env
            .call(
                "GET",
                "/v1.0/users?$top=1",
                &t,
                None,
                &[("x-ms-throttle-priority", "Low")],
            )
            .await;
        assert_eq!(s, 200);
        hints.push(
            headers
                .get("x-ms-throttle-limit-percentage")
                .map(|v| v.to_str().unwrap().to_string()),
        );
    }
    let expected: Vec<Option<String>> = (1..=10)
        .map(|n| (n > 8).then(|| format!("{:.2}", f64::from(n) / 10.0)))
        .collect();
    assert_eq!(hints, expected, "announced above 80 % of the budget");
    let (s, headers, _) = env.call("GET", "/v1.0/users?$top=1", &t, None, &[]).await;
    assert_eq!(s, 429);
    let after = headers["retry-after"].to_str().unwrap();
    let secs: u64 = after
        .parse()
        .unwrap_or_else(|_| panic!("whole seconds, got {after:?}"));
    assert!((1..=30).contains(&secs), "{secs}");
    assert_eq!(headers["x-ms-throttle-limit-percentage"], "1.10");
    let (_, log) = env.control("GET", "/_sandbox/requests", json!({})).await;
    let priorities: Vec<&Value> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["priority"])
        .collect();
    assert_eq!(
        priorities.iter().filter(|p| **p == "low").count(),
        10,
        "the log shows each call's priority"
    );
    assert!(priorities.last().unwrap().is_null());
}

#[tokio::test]
async fn replacing_a_generated_user_never_lists_it_twice() {
    let env = start().await;
    let t = env.app_token(d::NORTHWIND_TENANT_ID).await;
    let (_, page) = env
        .get(
            "/v1.0/users?$top=3&$select=id,userPrincipalName,department",
            &t,
        )
        .await;
    let first = page["value"][0].clone();
    let id = first["id"].as_str().unwrap();
    let mut changed = first.clone();
    changed["department"] = json!("Changed");
    let path = format!("/_sandbox/tenants/{}/users", d::NORTHWIND_TENANT_ID);
    assert_eq!(env.control("POST", &path, changed).await.0, 201);
    let (_, _, count) = env
        .call(
            "GET",
            "/v1.0/users/$count",
            &t,
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
    assert_eq!(count, json!(d::NORTHWIND_USER_COUNT));
    let (_, one) = env
        .get(&format!("/v1.0/users/{id}?$select=department"), &t)
        .await;
    assert_eq!(one["department"], "Changed");
}

#[test]
fn subscriptions_must_add_up_to_the_skus_units() {
    let yaml = r#"
partner: {tenantId: 0b0b0b0b-0000-4000-8000-000000000001}
customers:
  - tenantId: 0b0b0b0b-0000-4000-8000-0000000000d1
    displayName: Small Co
    primaryDomain: small.test
    skus:
      - skuId: 05e9a617-0261-4cee-bb44-138d3ef5d965
        skuPartNumber: SPE_E3
        enabled: 10
        subscriptions:
          - {totalLicenses: 6}
          - {totalLicenses: 3, isTrial: true, nextLifecycleInDays: 12}
          - {totalLicenses: 5, status: Warning}
"#;
    let err = Fixture::from_yaml(yaml).unwrap_err().to_string();
    assert!(
        err.contains("SPE_E3") && err.contains("enabled is 10") && err.contains("9"),
        "{err}"
    );
    assert!(Fixture::from_yaml(&yaml.replace("enabled: 10", "enabled: 9")).is_ok());
    let err = Fixture::from_yaml(&yaml.replace("status: Warning", "status: Paused")).unwrap_err();
    assert!(err.to_string().contains("Paused"), "{err}");
}
