//! Retries against the sandbox's fault injection: with 30 % of Graph calls failing with 429/503
//! every call still succeeds, the waits follow `Retry-After`, and nothing is created twice.
//! Ambiguous write failures surface as `OutcomeUnknown` after exactly one attempt.
#![cfg(feature = "sandbox")]

mod clients_support;

use clients_support::roles::*;
use clients_support::*;
use futures::TryStreamExt;
use gdap_operator::microsoft::models::directory::BatchRequest;
use gdap_operator::microsoft::models::gdap::RelationshipStatus;
use gdap_operator::microsoft::{
    Audience, DelegatedToken, Endpoints, GdapApi, GraphGdapClient, Reason, RelationshipFilter,
    RetryPolicy, Secret, Transport, TransportConfig, UserQuery,
};
use gdap_operator::sandbox::defaults;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

fn count(log: &[(String, String, u16)], method: &str, suffix: &str, status: u16) -> usize {
    log.iter()
        .filter(|(m, p, s)| m == method && p.ends_with(suffix) && *s == status)
        .count()
}

#[tokio::test]
async fn fifteen_percent_throttling_every_call_succeeds_once() {
    let h = start().await;
    // Retry-After is whole seconds (as Graph sends it), so each refusal costs a second: 15 %
    // of ~40 calls keeps the test short and still refuses several.
    let faults = json!({"rules": [{"pathPrefix": "/v1.0/", "rate": 0.15, "statuses": [429, 503], "retryAfterSeconds": 0.2}], "seed": 4});
    h.control(Method::PUT, "/_sandbox/faults", Some(faults))
        .await;
    let t = h.graph();
    let gdap = &h.clients.gdap;
    let mut ids = Vec::new();
    for i in 0..8 {
        let name = format!("client-retry-{i}");
        let rel = gdap
            .create_relationship(
                &t,
                &new_relationship(&name, defaults::CONTOSO_TENANT_ID, &[DIRECTORY_READERS]),
            )
            .await
            .unwrap();
        assert_eq!(
            gdap.get_relationship(&t, &rel.id)
                .await
                .unwrap()
                .display_name,
            name
        );
        ids.push(rel.id);
    }
    for id in &ids[..4] {
        gdap.lock_for_approval(&t, id).await.unwrap();
    }
    let app = h.clients.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let query = UserQuery {
        select: vec!["id".into()],
        top: Some(3),
        filter: None,
    };
    let users: Vec<_> = h
        .clients
        .directory
        .users(&app, &query)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(users.len(), defaults::CONTOSO_USER_COUNT);
    h.clients.directory.subscribed_skus(&app).await.unwrap();
    h.clients
        .directory
        .batch(&app, &[BatchRequest::get("1", "/users?$top=1")])
        .await
        .unwrap();

    // The waits follow Retry-After (0.2 s asked, sent rounded up to 1 s, plus at most 10 %
    // jitter).
    let events = h.retries.lock().unwrap().clone();
    assert!(
        events.len() >= 2,
        "15 % of ~40 calls were refused; saw {} retries",
        events.len()
    );
    for e in &events {
        assert!(matches!(e.status, Some(429 | 503)), "{e:?}");
        assert_eq!(e.retry_after, Some(Duration::from_secs(1)), "{e:?}");
        assert!(
            e.wait >= Duration::from_secs(1) && e.wait <= Duration::from_millis(1100),
            "{e:?}"
        );
    }
    // Nothing was duplicated.
    h.control(Method::PUT, "/_sandbox/faults", Some(json!({"rules": []})))
        .await;
    let log = h.requests().await;
    let refused = log
        .iter()
        .filter(|(_, p, s)| p.starts_with("/v1.0/") && matches!(s, 429 | 503))
        .count();
    assert_eq!(
        refused,
        events.len(),
        "every refusal was retried exactly once"
    );
    assert_eq!(count(&log, "POST", "/delegatedAdminRelationships", 201), 8);
    assert_eq!(count(&log, "POST", "/requests", 201), 4);
    let all = gdap
        .list_relationships(&t, &RelationshipFilter::default())
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .filter(|r| r.display_name.starts_with("client-retry-"))
            .count(),
        8
    );
    let pending = all
        .iter()
        .filter(|r| r.status == Some(RelationshipStatus::ApprovalPending))
        .count();
    assert_eq!(pending, 4);
    h.stop().await;
}

#[tokio::test]
async fn a_create_answered_with_500_is_outcome_unknown_and_not_repeated() {
    let h = start().await;
    let t = h.graph();
    use gdap_operator::microsoft::TokenSource;
    t.bearer(None).await.unwrap();
    let faults = json!({"rules": [{"pathPrefix": "/v1.0/tenantRelationships", "rate": 1.0, "statuses": [500]}]});
    h.control(Method::PUT, "/_sandbox/faults", Some(faults))
        .await;
    let new = new_relationship(
        "client-unknown",
        defaults::CONTOSO_TENANT_ID,
        &[DIRECTORY_READERS],
    );
    let err = h
        .clients
        .gdap
        .create_relationship(&t, &new)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::OutcomeUnknown, "{err}");
    assert!(err.to_string().contains("look the object up"), "{err}");
    let log = h.requests().await;
    assert_eq!(
        count(&log, "POST", "/delegatedAdminRelationships", 500),
        1,
        "not retried blindly"
    );
    h.stop().await;
}

#[tokio::test]
async fn timeouts_retry_reads_but_not_creates() {
    let h = start_with(quick(), credentials(), Default::default(), |c| {
        c.request_timeout = Duration::from_millis(300);
        c.retry = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            ..Default::default()
        };
    })
    .await;
    let t = h.graph();
    use gdap_operator::microsoft::TokenSource;
    t.bearer(None).await.unwrap();
    let slow = json!({"rules": [{"pathPrefix": "/v1.0/tenantRelationships", "rate": 0.0, "statuses": [], "latencyMs": 1000}]});
    h.control(Method::PUT, "/_sandbox/faults", Some(slow)).await;
    let new = new_relationship(
        "client-timeout",
        defaults::CONTOSO_TENANT_ID,
        &[DIRECTORY_READERS],
    );
    let err = h
        .clients
        .gdap
        .create_relationship(&t, &new)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::OutcomeUnknown, "{err}");
    assert!(
        h.retries.lock().unwrap().is_empty(),
        "the create was not repeated"
    );
    let err = h
        .clients
        .gdap
        .list_relationships(&t, &RelationshipFilter::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::Timeout, "{err}");
    assert!(err.is_transient());
    assert_eq!(
        h.retries.lock().unwrap().len(),
        2,
        "a read is retried up to max_attempts"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_refused_connection_is_safe_to_retry_even_for_a_create() {
    let endpoints = Endpoints::local("http://127.0.0.1:9", None).unwrap();
    let mut config = TransportConfig::new(endpoints);
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        ..Default::default()
    };
    let events = std::sync::Arc::new(std::sync::Mutex::new(0));
    let seen = events.clone();
    config.retry_observer = Some(std::sync::Arc::new(
        move |_e: &gdap_operator::microsoft::RetryEvent| *seen.lock().unwrap() += 1,
    ));
    let gdap = GraphGdapClient::new(Transport::new(config).unwrap());
    let token = DelegatedToken::from_access_token(
        defaults::PARTNER_TENANT_ID,
        Audience::Graph,
        Secret::new("x"),
    );
    let new = new_relationship(
        "client-refused",
        defaults::CONTOSO_TENANT_ID,
        &[DIRECTORY_READERS],
    );
    let err = gdap.create_relationship(&token, &new).await.unwrap_err();
    assert_eq!(err.reason(), Reason::Network, "{err}");
    assert!(err.is_transient());
    assert_eq!(*events.lock().unwrap(), 2, "never sent, so retried");
}
