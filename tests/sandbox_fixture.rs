//! Fixtures: the YAML examples in docs/sandbox.md load and serves what it describes, bad fixtures
//! are refused with a message, and a generated tenant of 100,000 users is served page by page.
#![cfg(feature = "sandbox")]

#[path = "sandbox_support/mod.rs"]
mod support;

use gdap_operator::sandbox::defaults as d;
use gdap_operator::sandbox::{Fixture, SandboxOptions};
use std::collections::HashSet;
use support::start_with;

fn documented_example() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/sandbox.md")).unwrap();
    let after = &doc[doc
        .find("<!-- fixture-example")
        .expect("marker in docs/sandbox.md")..];
    let start = after.find("```yaml\n").unwrap() + "```yaml\n".len();
    let end = after[start..].find("```").unwrap();
    after[start..start + end].to_string()
}

fn short_example() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/sandbox.md")).unwrap();
    let rest = &doc[doc
        .find("<!-- short-fixture-example")
        .expect("marker in docs/sandbox.md")..];
    let start = rest.find("```yaml\n").unwrap() + "```yaml\n".len();
    rest[start..start + rest[start..].find("```").unwrap()].to_string()
}

#[test]
fn the_short_fixture_example_loads() {
    let fixture = Fixture::from_yaml(&short_example()).expect("the short fixture example is valid");
    assert_eq!(fixture.customers.len(), 2);
    assert_eq!(fixture.apps[0].refresh_tokens[0].user, "ops@partner.test");
}

#[tokio::test]
async fn the_documented_fixture_loads_and_is_served() {
    let fixture =
        Fixture::from_yaml(&documented_example()).expect("the documented example is valid");
    let env = start_with(SandboxOptions {
        fixture,
        ..Default::default()
    })
    .await;
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "0b0b0b0b-0000-4000-8000-0000000000c1"),
        ("client_secret", "s3cret"),
        ("scope", support::GRAPH),
        ("refresh_token", "rt-ops-1"),
    ];
    let (s, body) = env.token_request("partner.test", &form).await;
    assert_eq!(s, 200, "{body}");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "0b0b0b0b-0000-4000-8000-0000000000c1"),
        ("client_secret", "s3cret"),
        ("scope", support::GRAPH),
    ];
    let (s, body) = env.token_request("small.test", &form).await;
    assert_eq!(s, 200, "{body}");
    let t = body["access_token"].as_str().unwrap().to_string();
    let (_, users) = env
        .get(
            "/v1.0/users?$select=id,userPrincipalName,accountEnabled",
            &t,
        )
        .await;
    assert_eq!(users["value"].as_array().unwrap().len(), 1);
    assert_eq!(users["value"][0]["userPrincipalName"], "ann@small.test");
    assert!(users["value"][0]["id"].is_string(), "an id is derived");
    let (s, _) = env.token_request("big.test", &form).await;
    assert_eq!(s, 400, "the app is not consented in Big Co");
    let (_, state) = env
        .control("GET", "/_sandbox/state", serde_json::json!({}))
        .await;
    assert_eq!(
        state["tenants"]["0b0b0b0b-0000-4000-8000-0000000000d2"]["users"]["generated"]["count"],
        10_000
    );
    let relationships = state["relationships"].as_array().unwrap();
    let statuses: Vec<_> = relationships
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "approvalPending"]);
    let active = &relationships[0];
    assert_eq!(active["autoExtendDuration"], "P180D");
    assert_eq!(
        active["assignments"][0]["groupId"],
        "0b0b0b0b-0000-4000-8000-0000000000a2"
    );
    assert_eq!(active["assignments"][0]["status"], "active");
    assert_eq!(active["roles"].as_array().unwrap().len(), 2);
    let ends = chrono::DateTime::parse_from_rfc3339(active["end"].as_str().unwrap()).unwrap();
    let left = ends.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        (629..=630).contains(&left.num_days()),
        "activated 100 days ago for 730 days: {left}"
    );
}

#[test]
fn bad_fixtures_are_refused_with_a_reason() {
    let example = documented_example();
    let typo = example.replace("primaryDomain: small.test", "primaryDomian: small.test");
    let err = Fixture::from_yaml(&typo).unwrap_err().to_string();
    assert!(err.contains("primaryDomian"), "{err}");
    let bad_group = example.replace("groups: [AdminAgents,", "groups: [NoSuchGroup,");
    let err = Fixture::from_yaml(&bad_group).unwrap_err().to_string();
    assert!(err.contains("NoSuchGroup"), "{err}");
    let bad_customer = example.replace(
        "customer: 0b0b0b0b-0000-4000-8000-0000000000d2",
        "customer: 0b0b0b0b-0000-4000-8000-0000000000ff",
    );
    let err = Fixture::from_yaml(&bad_customer).unwrap_err().to_string();
    assert!(err.contains("is not a customer of the fixture"), "{err}");
    let lapsed = example.replace("daysAgo: 10 ", "daysAgo: 95 ");
    let err = Fixture::from_yaml(&lapsed).unwrap_err().to_string();
    assert!(err.contains("has lapsed"), "{err}");
    let bad_user = example.replace("{user: ops@partner.test", "{user: ghost@partner.test");
    assert!(
        Fixture::from_yaml(&bad_user)
            .unwrap_err()
            .to_string()
            .contains("ghost@partner.test")
    );
}

#[tokio::test]
async fn all_100000_generated_users_page_through_with_unique_ids() {
    let env = support::start().await;
    let t = env.app_token(d::NORTHWIND_TENANT_ID).await;
    let mut ids = HashSet::new();
    let mut next = Some("/v1.0/users?$top=999&$select=id".to_string());
    let mut pages = 0;
    while let Some(link) = next {
        let (s, page) = env.get(&link, &t).await;
        assert_eq!(s, 200);
        pages += 1;
        for u in page["value"].as_array().unwrap() {
            ids.insert(u["id"].as_str().unwrap().to_string());
        }
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(ids.len(), d::NORTHWIND_USER_COUNT as usize);
    assert_eq!(pages, 101);
}
