//! Transport behaviour that the sandbox cannot provoke, against a tiny local mock: a 401 makes
//! the client fetch a fresh token exactly once and repeat the request.

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use gdap_operator::microsoft::models::gdap::RelationshipStatus;
use gdap_operator::microsoft::{
    Endpoints, GdapApi, GraphGdapClient, MicrosoftClients, PartnerCredentials, Reason,
    RotatedRefreshToken, TokenOptions, TransportConfig, rotation_fn,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn relationship_json() -> serde_json::Value {
    serde_json::json!({"id": "r1", "displayName": "x", "duration": "P30D", "status": "active",
        "accessDetails": {"unifiedRoles": []}, "@odata.etag": "W/\"1\""})
}

#[tokio::test]
async fn a_401_fetches_one_fresh_token_and_repeats() {
    let grants = Arc::new(AtomicUsize::new(0));
    let g = grants.clone();
    let rotated = Arc::new(Mutex::new(Vec::<RotatedRefreshToken>::new()));
    // The server checks that each access token's rotated refresh token was persisted before the
    // access token was first used.
    let persisted_before_use = Arc::new(AtomicUsize::new(0));
    let (seen_store, ok) = (rotated.clone(), persisted_before_use.clone());
    let router = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(move || {
                let n = g.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    axum::Json(serde_json::json!({"access_token": format!("tok-{n}"), "expires_in": 3599,
                        "refresh_token": format!("rt-{n}"), "token_type": "Bearer"}))
                }
            }),
        )
        .route(
            "/v1.0/tenantRelationships/delegatedAdminRelationships/{id}",
            get(move |headers: HeaderMap| {
                let (seen_store, ok) = (seen_store.clone(), ok.clone());
                async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                    let n = auth.trim_start_matches("Bearer tok-").to_string();
                    let stored = seen_store.lock().unwrap().iter().any(|r| r.refresh_token.expose() == format!("rt-{n}"));
                    if stored {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    if auth == "Bearer tok-1" {
                        (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": {"code": "InvalidAuthenticationToken", "message": "expired"}})))
                    } else {
                        (StatusCode::OK, axum::Json(relationship_json()))
                    }
                }
            }),
        );
    let base = serve(router).await;
    let store = rotated.clone();
    let rotation = rotation_fn(move |r| {
        let store = store.clone();
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await; // a slow Secret write
            store.lock().unwrap().push(r);
            Ok(())
        }
    });
    let creds = PartnerCredentials {
        partner_tenant_id: "p".into(),
        client_id: "c".into(),
        client_credential: "s".into(),
        refresh_token: "rt-0".into(),
        refresh_token_issued_at: None,
    };
    let config = TransportConfig::new(Endpoints::local(&base, None).unwrap());
    let clients = MicrosoftClients::new(config, creds, rotation, TokenOptions::default()).unwrap();
    let token = clients.tokens.partner_graph();
    let rel = clients.gdap.get_relationship(&token, "r1").await.unwrap();
    assert_eq!(rel.status, Some(RelationshipStatus::Active));
    assert_eq!(
        grants.load(Ordering::SeqCst),
        2,
        "one fresh token after the 401"
    );
    let rts: Vec<_> = rotated
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.refresh_token.expose().to_string())
        .collect();
    assert_eq!(
        rts,
        ["rt-1", "rt-2"],
        "both rotations were persisted in order"
    );
}

#[tokio::test]
async fn a_persistent_401_is_unauthenticated_and_a_failing_callback_is_transient() {
    let router = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(|| async {
                axum::Json(serde_json::json!({"access_token": "tok", "expires_in": 3599, "refresh_token": "rt-new"}))
            }),
        )
        .route(
            "/v1.0/tenantRelationships/delegatedAdminRelationships/{id}",
            get(|| async {
                (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": {"code": "InvalidAuthenticationToken", "message": "no"}})))
            }),
        );
    let base = serve(router).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let failing = rotation_fn(move |r: RotatedRefreshToken| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(format!("conflict while storing {}", r.refresh_token.expose()).into())
            } else {
                Ok(())
            }
        }
    });
    let creds = PartnerCredentials {
        partner_tenant_id: "p".into(),
        client_id: "c".into(),
        client_credential: "s".into(),
        refresh_token: "rt-0".into(),
        refresh_token_issued_at: None,
    };
    let endpoints = Endpoints::local(&base, None).unwrap();
    let transport =
        gdap_operator::microsoft::Transport::new(TransportConfig::new(endpoints)).unwrap();
    let tokens = gdap_operator::microsoft::TokenProvider::new(
        transport.clone(),
        creds,
        failing,
        TokenOptions::default(),
    );
    let gdap = GraphGdapClient::new(transport);
    let token = tokens.partner_graph();
    // The callback fails once: the error is transient and its text never shows the token.
    use gdap_operator::microsoft::TokenSource;
    let err = token.bearer(None).await.unwrap_err();
    assert_eq!(err.reason(), Reason::RotationNotPersisted, "{err}");
    assert!(err.is_transient());
    assert!(!err.to_string().contains("rt-new"), "{err}");
    // The next grant persists; then a 401 that a fresh token does not cure is Unauthenticated.
    let err = gdap.get_relationship(&token, "r1").await.unwrap_err();
    assert_eq!(err.reason(), Reason::Unauthenticated, "{err}");
    assert!(!err.is_transient());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "failed once, then one grant per token fetch"
    );
}

#[tokio::test]
async fn a_replaced_refresh_token_is_used_by_the_next_grant() {
    use axum::extract::Form;
    use gdap_operator::microsoft::{Audience, Secret, TokenSource};
    use std::collections::HashMap;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    let router = Router::new().route(
        "/{tenant}/oauth2/v2.0/token",
        post(move |Form(form): Form<HashMap<String, String>>| {
            let s = s.clone();
            async move {
                s.lock()
                    .unwrap()
                    .push(form.get("refresh_token").cloned().unwrap_or_default());
                axum::Json(serde_json::json!({"access_token": "tok", "expires_in": 3599}))
            }
        }),
    );
    let base = serve(router).await;
    let creds = PartnerCredentials {
        partner_tenant_id: "p".into(),
        client_id: "c".into(),
        client_credential: "s".into(),
        refresh_token: "rt-old".into(),
        refresh_token_issued_at: None,
    };
    let config = TransportConfig::new(Endpoints::local(&base, None).unwrap());
    let rotation = rotation_fn(|_| async { Ok(()) });
    let clients = MicrosoftClients::new(config, creds, rotation, TokenOptions::default()).unwrap();
    clients.tokens.partner_graph().bearer(None).await.unwrap();
    clients
        .tokens
        .replace_refresh_token(Secret::new("rt-signed-in-again"), Some(chrono::Utc::now()))
        .await;
    clients
        .tokens
        .delegated_token("p", Audience::PartnerCenter)
        .bearer(None)
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["rt-old", "rt-signed-in-again"]);
    let age = clients.tokens.refresh_token_age().await.unwrap();
    assert!(age < chrono::TimeDelta::seconds(60));
}

#[tokio::test]
async fn a_cancelled_caller_does_not_lose_the_rotated_refresh_token() {
    use axum::extract::Form;
    use gdap_operator::microsoft::{Audience, TokenSource};
    use std::collections::HashMap;
    let presented = Arc::new(Mutex::new(Vec::<String>::new()));
    let (p, n) = (presented.clone(), Arc::new(AtomicUsize::new(0)));
    let router = Router::new().route(
        "/{tenant}/oauth2/v2.0/token",
        post(move |Form(form): Form<HashMap<String, String>>| {
            let (p, n) = (p.clone(), n.clone());
            async move {
                p.lock().unwrap().push(form.get("refresh_token").cloned().unwrap_or_default());
                let i = n.fetch_add(1, Ordering::SeqCst) + 1;
                axum::Json(serde_json::json!({"access_token": format!("tok-{i}"), "expires_in": 3599, "refresh_token": format!("rt-{i}")}))
            }
        }),
    );
    let base = serve(router).await;
    let stored = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = stored.clone();
    let slow_store = rotation_fn(move |r: RotatedRefreshToken| {
        let s = s.clone();
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            s.lock().unwrap().push(r.refresh_token.expose().to_string());
            Ok(())
        }
    });
    let creds = PartnerCredentials {
        partner_tenant_id: "p".into(),
        client_id: "c".into(),
        client_credential: "s".into(),
        refresh_token: "rt-0".into(),
        refresh_token_issued_at: None,
    };
    let config = TransportConfig::new(Endpoints::local(&base, None).unwrap());
    let clients =
        MicrosoftClients::new(config, creds, slow_store, TokenOptions::default()).unwrap();
    let graph = clients.tokens.partner_graph();
    // The caller gives up while the new refresh token is being stored.
    let gave_up =
        tokio::time::timeout(std::time::Duration::from_millis(50), graph.bearer(None)).await;
    assert!(gave_up.is_err());
    // Poll rather than sleep a fixed time: a loaded CI machine may take longer than 200 ms.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while stored.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        *stored.lock().unwrap(),
        ["rt-1"],
        "the rotation finished without the caller"
    );
    clients
        .tokens
        .delegated_token("p", Audience::PartnerCenter)
        .bearer(None)
        .await
        .unwrap();
    assert_eq!(
        *presented.lock().unwrap(),
        ["rt-0", "rt-1"],
        "the next grant uses the rotated token"
    );
}
