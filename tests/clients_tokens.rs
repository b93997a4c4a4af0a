//! Token sources against the sandbox: both grants, caching, shared refresh, rotation through
//! the callback, named AADSTS reasons, and no secret in any output.
#![cfg(feature = "sandbox")]

mod clients_support;

use clients_support::*;
use gdap_operator::microsoft::{Audience, PartnerCredentials, Reason, TokenOptions, TokenSource};
use gdap_operator::sandbox::{SandboxOptions, defaults};
use std::time::Duration;

#[tokio::test]
async fn app_token_for_a_consented_customer_is_cached() {
    let h = start().await;
    let app = h.clients.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let a = app.bearer(None).await.unwrap();
    let b = app.bearer(None).await.unwrap();
    assert_eq!(a, b, "second call is served from the cache");
    assert_eq!(h.clients.tokens.grants_made(), 1);
    assert_eq!(
        h.rotations(),
        0,
        "client credentials carry no refresh token"
    );
    h.stop().await;
}

#[tokio::test]
async fn app_token_in_an_unconsented_tenant_is_app_not_in_tenant() {
    let h = start().await;
    let err = h
        .clients
        .tokens
        .app_token(defaults::FABRIKAM_TENANT_ID)
        .bearer(None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::AppNotInTenant, "{err}");
    assert_eq!(err.aadsts(), Some(7000229));
    assert!(!err.is_transient());
    h.stop().await;
}

#[tokio::test]
async fn delegated_grant_rotates_and_persists_before_the_next_use() {
    let h = start().await;
    let graph = h.graph();
    graph.bearer(None).await.unwrap();
    assert_eq!(h.rotations(), 1);
    let first = h.rotated.lock().unwrap()[0].clone();
    assert_ne!(
        first.refresh_token.expose(),
        defaults::PARTNER_REFRESH_TOKEN
    );
    // The sandbox makes refresh tokens single-use: a second grant only works with the rotated one.
    h.partner_center().bearer(None).await.unwrap();
    assert_eq!(h.rotations(), 2);
    let second = h.rotated.lock().unwrap()[1].clone();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert!(h.clients.tokens.refresh_token_age().await.unwrap() < chrono::TimeDelta::seconds(60));
    h.stop().await;
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let h = start().await;
    let graph = h.graph();
    let calls = (0..16).map(|_| graph.bearer(None));
    let tokens = futures::future::join_all(calls).await;
    let first = tokens[0].as_ref().unwrap().clone();
    assert!(tokens.iter().all(|t| t.as_ref().unwrap() == &first));
    assert_eq!(h.clients.tokens.grants_made(), 1);
    assert_eq!(h.rotations(), 1);
    h.stop().await;
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry() {
    // A margin longer than the token lifetime: every use refreshes (and rotates) again.
    let options = TokenOptions {
        refresh_margin: Duration::from_secs(4000),
        ..Default::default()
    };
    let h = start_with(SandboxOptions::default(), credentials(), options, |_| {}).await;
    let graph = h.graph();
    for _ in 0..3 {
        graph.bearer(None).await.unwrap();
    }
    assert_eq!(h.clients.tokens.grants_made(), 3);
    assert_eq!(h.rotations(), 3);
    h.stop().await;
}

#[tokio::test]
async fn wrong_secret_is_named_and_never_shown() {
    let secret = "definitely-wrong-secret-value";
    let creds = PartnerCredentials {
        client_credential: secret.into(),
        ..credentials()
    };
    let h = start_with(
        SandboxOptions::default(),
        creds,
        TokenOptions::default(),
        |_| {},
    )
    .await;
    let err = h
        .clients
        .tokens
        .app_token(defaults::CONTOSO_TENANT_ID)
        .bearer(None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::InvalidClientSecret, "{err}");
    assert_eq!(err.aadsts(), Some(7000215));
    for text in [
        err.to_string(),
        format!("{err:?}"),
        format!("{:?}", h.clients),
    ] {
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains(defaults::PARTNER_REFRESH_TOKEN), "{text}");
    }
    h.stop().await;
}

#[tokio::test]
async fn unknown_refresh_token_fails_permanently() {
    let creds = PartnerCredentials {
        refresh_token: "not-a-real-refresh-token".into(),
        ..credentials()
    };
    let h = start_with(
        SandboxOptions::default(),
        creds,
        TokenOptions::default(),
        |_| {},
    )
    .await;
    let err = h.graph().bearer(None).await.unwrap_err();
    assert_eq!(err.reason(), Reason::RefreshTokenInvalid, "{err}");
    assert!(!err.is_transient(), "{err}");
    assert!(!err.to_string().contains("not-a-real-refresh-token"));
    assert_eq!(h.rotations(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_write_token_must_have_the_right_audience_and_nothing_is_sent_otherwise() {
    let h = start().await;
    let pc = h
        .clients
        .tokens
        .delegated_token(defaults::PARTNER_TENANT_ID, Audience::PartnerCenter);
    let new = gdap_operator::microsoft::models::gdap::NewRelationship {
        display_name: "wrong-audience".into(),
        duration: "P30D".into(),
        customer: None,
        access_details: gdap_operator::microsoft::models::gdap::AccessDetails::from_role_ids([
            "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
        ]),
        auto_extend_duration: None,
    };
    let err = h
        .clients
        .gdap
        .create_relationship(&pc, &new)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::WrongToken);
    assert_eq!(
        h.clients.tokens.grants_made(),
        0,
        "refused before any request"
    );
    h.stop().await;
}

mod log_capture {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Captures the client's own log lines (all levels) as text.
    #[derive(Clone, Default)]
    pub struct Buffer(pub Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    pub fn install() -> (Buffer, tracing::subscriber::DefaultGuard) {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("gdap_operator::microsoft=trace")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (buffer, tracing::subscriber::set_default(subscriber))
    }
}

#[tokio::test]
async fn old_refresh_token_warns_by_metric_and_log_without_leaking_secrets() {
    let (logs, _guard) = log_capture::install();
    let metrics = gdap_operator::microsoft::TokenMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let creds = PartnerCredentials {
        refresh_token_issued_at: Some(chrono::Utc::now() - chrono::TimeDelta::days(70)),
        ..credentials()
    };
    let options = TokenOptions {
        metrics: metrics.clone(),
        ..Default::default()
    };
    let h = start_with(SandboxOptions::default(), creds, options, |_| {}).await;
    assert_eq!(metrics.refresh_token_stale.get(), 1);
    assert!(metrics.refresh_token_age_seconds.get() >= 70 * 86_400);
    let mut exposition = String::new();
    prometheus_client::encoding::text::encode(&mut exposition, &registry).unwrap();
    assert!(
        exposition.contains("gdap_refresh_token_age_seconds"),
        "{exposition}"
    );
    assert!(logs.text().contains("70 days old"), "{}", logs.text());

    // Use it: the rotation resets the age; then make calls and errors and scan every log line.
    let graph = h.graph();
    let access = graph.bearer(None).await.unwrap();
    assert_eq!(metrics.refresh_token_stale.get(), 0);
    assert!(metrics.refresh_token_age_seconds.get() < 60);
    let _ = h
        .clients
        .tokens
        .app_token(defaults::FABRIKAM_TENANT_ID)
        .bearer(None)
        .await;
    let rotated = h.rotated.lock().unwrap()[0].refresh_token.clone();
    let text = logs.text();
    for secret in [
        defaults::PARTNER_CLIENT_SECRET,
        defaults::PARTNER_REFRESH_TOKEN,
        rotated.expose(),
        access.expose(),
    ] {
        assert!(!text.contains(secret), "log leaks a secret: {text}");
    }
    h.stop().await;
}

#[tokio::test]
async fn each_injected_aadsts_code_has_its_named_reason() {
    use reqwest::Method;
    let h = start().await;
    let cases = [
        ("refresh_token", 65001, Reason::ConsentMissing),
        ("refresh_token", 700082, Reason::RefreshTokenExpired),
        ("refresh_token", 50173, Reason::RefreshTokenRevoked),
        ("refresh_token", 70044, Reason::RefreshTokenRevoked),
        ("refresh_token", 50076, Reason::MfaRequired),
        ("refresh_token", 53003, Reason::ConditionalAccess),
        ("refresh_token", 90072, Reason::NoGdapAccess),
        ("refresh_token", 90002, Reason::TenantNotFound),
        ("client_credentials", 7000215, Reason::InvalidClientSecret),
        ("client_credentials", 7000222, Reason::ClientSecretExpired),
        ("client_credentials", 700016, Reason::AppNotInTenant),
        (
            "client_credentials",
            500011,
            Reason::ServicePrincipalMissing,
        ),
        ("client_credentials", 65001, Reason::ConsentMissing),
    ];
    for (grant, code, reason) in cases {
        let tenant = if grant == "refresh_token" {
            defaults::PARTNER_TENANT_ID
        } else {
            defaults::CONTOSO_TENANT_ID
        };
        let rule = serde_json::json!({"rules": [{"tenantId": tenant, "grantType": grant, "aadsts": code, "count": 1}]});
        h.control(Method::PUT, "/_sandbox/token-faults", Some(rule))
            .await;
        let err = if grant == "refresh_token" {
            h.graph().bearer(None).await.unwrap_err()
        } else {
            h.clients
                .tokens
                .app_token(tenant)
                .bearer(None)
                .await
                .unwrap_err()
        };
        assert_eq!(err.reason(), reason, "AADSTS{code}: {err}");
        assert_eq!(err.aadsts(), Some(code));
        assert!(!err.is_transient(), "AADSTS{code}");
        assert!(err.to_string().contains(reason.advice()), "{err}");
    }
    // The faults were consumed and the stored refresh token is still good.
    h.graph().bearer(None).await.unwrap();
    assert_eq!(h.rotations(), 1);
    h.stop().await;
}

#[tokio::test]
async fn revoked_sessions_and_an_aged_refresh_token_are_named() {
    use reqwest::Method;
    let h = start().await;
    let upn = defaults::PARTNER_ADMIN_UPN;
    h.control(
        Method::POST,
        &format!("/_sandbox/users/{upn}/revoke-sessions"),
        None,
    )
    .await;
    let err = h.graph().bearer(None).await.unwrap_err();
    assert_eq!(err.reason(), Reason::RefreshTokenRevoked, "{err}");
    assert!(err.to_string().contains("sign in again"), "{err}");
    h.stop().await;

    let h = start().await;
    h.control(
        Method::POST,
        "/_sandbox/refresh-tokens/age",
        Some(serde_json::json!({"days": 91})),
    )
    .await;
    let err = h.graph().bearer(None).await.unwrap_err();
    assert_eq!(err.reason(), Reason::RefreshTokenExpired, "{err}");
    assert_eq!(err.aadsts(), Some(700082));
    h.stop().await;
}
