//! The sandbox's login service over HTTP: both grants, refresh-token rotation, every Entra error
//! path, injected token faults, OpenID discovery and the JWKS that verifies issued tokens.
#![cfg(feature = "sandbox")]

#[path = "sandbox_support/mod.rs"]
mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gdap_operator::sandbox::SandboxOptions;
use gdap_operator::sandbox::defaults as d;
use serde_json::json;
use std::time::Duration;
use support::{GRAPH, PC, claims, start};

const CC: &str = "client_credentials";

fn cc_form<'a>(secret: &'a str, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", CC),
        ("client_id", d::PARTNER_CLIENT_ID),
        ("client_secret", secret),
        ("scope", scope),
    ]
}

fn assert_entra_error(body: &serde_json::Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}:")),
        "{description}"
    );
}

#[tokio::test]
async fn client_credentials_in_a_consented_tenant_yields_app_roles_and_no_refresh_token() {
    let env = start().await;
    let (status, body) = env
        .token_request(
            d::CONTOSO_TENANT_ID,
            &cc_form(d::PARTNER_CLIENT_SECRET, GRAPH),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["tid"], d::CONTOSO_TENANT_ID);
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["appid"], d::PARTNER_CLIENT_ID);
    assert_eq!(c["idtyp"], "app");
    let mut roles: Vec<String> = serde_json::from_value(c["roles"].clone()).unwrap();
    roles.sort();
    assert_eq!(
        roles,
        vec![
            "LicenseAssignment.Read.All",
            "Organization.Read.All",
            "User.Read.All"
        ]
    );
    assert!(c["exp"].as_i64().unwrap() > c["iat"].as_i64().unwrap() + 3000);
    // The tenant may also be addressed by its domain.
    let (status, _) = env
        .token_request(d::CONTOSO_DOMAIN, &cc_form(d::PARTNER_CLIENT_SECRET, GRAPH))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn client_credential_errors_follow_entra() {
    let env = start().await;
    let (s, b) = env
        .token_request(d::CONTOSO_TENANT_ID, &cc_form("wrong", GRAPH))
        .await;
    assert_eq!(s, 401);
    assert_entra_error(&b, "invalid_client", 7000215);

    let (s, b) = env
        .token_request(
            d::FABRIKAM_TENANT_ID,
            &cc_form(d::PARTNER_CLIENT_SECRET, GRAPH),
        )
        .await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "unauthorized_client", 7000229);

    let form = vec![
        ("grant_type", CC),
        ("client_id", "00000000-0000-0000-0000-0000000000ff"),
        ("client_secret", "x"),
        ("scope", GRAPH),
    ];
    let (s, b) = env.token_request(d::CONTOSO_TENANT_ID, &form).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "unauthorized_client", 700016);

    let (s, b) = env
        .token_request(
            "99999999-9999-9999-9999-999999999999",
            &cc_form(d::PARTNER_CLIENT_SECRET, GRAPH),
        )
        .await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_request", 90002);

    let (s, b) = env
        .token_request(
            d::CONTOSO_TENANT_ID,
            &cc_form(
                d::PARTNER_CLIENT_SECRET,
                "https://graph.microsoft.com/User.Read.All",
            ),
        )
        .await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_scope", 1002012);

    let (s, b) = env
        .token_request(
            d::CONTOSO_TENANT_ID,
            &cc_form(d::PARTNER_CLIENT_SECRET, "https://unknown.example/.default"),
        )
        .await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_resource", 500011);
}

/// A sandbox that retires a redeemed refresh token once its successor is used (stricter than
/// Entra, which keeps it valid until it expires: `sandbox_consistency.rs`).
async fn strict() -> support::Env {
    let env = start().await;
    let (s, b) = env
        .control(
            "PUT",
            "/_sandbox/consistency",
            json!({"strictRefreshTokens": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    env
}

#[tokio::test]
async fn refresh_tokens_rotate_and_with_strict_tokens_the_old_one_dies() {
    let env = strict().await;
    let scope = format!("{GRAPH} offline_access openid profile");
    let (s, first) =
        refresh_scope(&env, d::PARTNER_REFRESH_TOKEN, d::PARTNER_TENANT_ID, &scope).await;
    assert_eq!(s, 200, "{first}");
    let new_rt = first["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(new_rt, d::PARTNER_REFRESH_TOKEN);
    assert!(first["id_token"].is_string());
    let c = claims(first["access_token"].as_str().unwrap());
    assert_eq!(c["oid"], d::PARTNER_ADMIN_OID);
    assert_eq!(c["idtyp"], "user");
    assert!(
        c["scp"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "DelegatedAdminRelationship.ReadWrite.All")
    );

    // The new one works, for Partner Center too; once it is used, the old one is dead.
    let (s, b) = refresh_scope(&env, &new_rt, d::PARTNER_TENANT_ID, PC).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        claims(b["access_token"].as_str().unwrap())["aud"],
        "https://api.partnercenter.microsoft.com"
    );
    let (s, b) = refresh_scope(&env, d::PARTNER_REFRESH_TOKEN, d::PARTNER_TENANT_ID, &scope).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 70000);
}

#[tokio::test]
async fn a_redeemed_token_survives_until_its_successor_is_used() {
    // A client that crashed after Entra rotated the token, but before it saved the new one, can
    // still use the old one; with strict tokens, using the newest token retires every older one.
    let env = strict().await;
    let scope = format!("{GRAPH} offline_access");
    let (s, lost) =
        refresh_scope(&env, d::PARTNER_REFRESH_TOKEN, d::PARTNER_TENANT_ID, &scope).await;
    assert_eq!(s, 200, "{lost}");
    let (s, again) =
        refresh_scope(&env, d::PARTNER_REFRESH_TOKEN, d::PARTNER_TENANT_ID, &scope).await;
    assert_eq!(s, 200, "the unsaved successor was never used: {again}");
    let newest = again["refresh_token"].as_str().unwrap().to_string();
    let (s, b) = refresh_scope(&env, &newest, d::PARTNER_TENANT_ID, &scope).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = refresh_scope(&env, d::PARTNER_REFRESH_TOKEN, d::PARTNER_TENANT_ID, &scope).await;
    assert_eq!(s, 400, "{b}");
    assert_entra_error(&b, "invalid_grant", 70000);
}

async fn refresh_scope(
    env: &support::Env,
    rt: &str,
    tenant: &str,
    scope: &str,
) -> (u16, serde_json::Value) {
    env.token_request(
        tenant,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", d::PARTNER_CLIENT_ID),
            ("client_secret", d::PARTNER_CLIENT_SECRET),
            ("scope", scope),
            ("refresh_token", rt),
        ],
    )
    .await
}

async fn refresh(env: &support::Env, rt: &str, tenant: &str) -> (u16, serde_json::Value) {
    refresh_scope(env, rt, tenant, GRAPH).await
}

#[tokio::test]
async fn revoked_sessions_and_inactive_refresh_tokens_fail_with_their_codes() {
    let env = start().await;
    let (s, _) = env
        .control(
            "POST",
            &format!("/_sandbox/users/{}/revoke-sessions", d::PARTNER_ADMIN_UPN),
            json!({}),
        )
        .await;
    assert_eq!(s, 204);
    let (s, b) = refresh(&env, d::PARTNER_REFRESH_TOKEN, d::PARTNER_TENANT_ID).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 50173);

    let (s, _) = env
        .control("POST", "/_sandbox/refresh-tokens/age", json!({"days": 91}))
        .await;
    assert_eq!(s, 204);
    let (s, b) = refresh(&env, d::PARTNER_SUPPORT_REFRESH_TOKEN, d::PARTNER_TENANT_ID).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 700082);

    let (s, b) = refresh(&env, "never-issued", d::PARTNER_TENANT_ID).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "invalid_grant");
}

#[tokio::test]
async fn a_customer_token_needs_gdap_access_for_the_user() {
    let env = start().await;
    let (s, b) = refresh(&env, d::PARTNER_SUPPORT_REFRESH_TOKEN, d::CONTOSO_TENANT_ID).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 50020);
    env.active_relationship(
        "gdap-for-token",
        d::CONTOSO_TENANT_ID,
        &[support::DIRECTORY_READERS],
        &[d::HELPDESK_GROUP_ID],
    )
    .await;
    let token = env.user_token(d::CONTOSO_TENANT_ID, GRAPH).await;
    assert_eq!(claims(&token)["tid"], d::CONTOSO_TENANT_ID);
}

#[tokio::test]
async fn removing_the_user_from_the_assigned_group_takes_its_gdap_access_away() {
    let env = start().await;
    env.active_relationship(
        "gdap-for-membership",
        d::CONTOSO_TENANT_ID,
        &[support::DIRECTORY_READERS],
        &[d::HELPDESK_GROUP_ID],
    )
    .await;
    let token = env.user_token(d::CONTOSO_TENANT_ID, GRAPH).await;
    let read = "/v1.0/servicePrincipals?$filter=appId eq '00000003-0000-0000-c000-000000000000'";
    assert_eq!(env.get(read, &token).await.0, 200);
    let member = format!(
        "/_sandbox/groups/{}/members/{}",
        d::HELPDESK_GROUP_ID,
        d::PARTNER_ADMIN_UPN
    );
    let (s, b) = env.control("DELETE", &member, json!({})).await;
    assert_eq!((s, &b["changed"]), (200, &json!(true)));
    // A token issued before is refused at the read; a new one is not issued at all.
    let (s, b) = env.get(read, &token).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["error"]["code"], "Authorization_RequestDenied");
    let (s, b) = refresh(&env, d::PARTNER_REFRESH_TOKEN, d::CONTOSO_TENANT_ID).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 50020);
    // Added back: the access returns.
    let (s, _) = env.control("PUT", &member, json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(env.get(read, &token).await.0, 200);
    let unknown = format!("/_sandbox/groups/{}/members/nobody@x", d::HELPDESK_GROUP_ID);
    assert_eq!(env.control("DELETE", &unknown, json!({})).await.0, 404);
}

#[tokio::test]
async fn token_faults_fail_matching_requests_count_times() {
    let env = start().await;
    let rules = json!({"rules": [{"grantType": "refresh_token", "aadsts": 50076, "count": 1},
                                 {"tenantId": d::CONTOSO_TENANT_ID, "aadsts": 53003, "count": 2}]});
    let (s, _) = env.control("PUT", "/_sandbox/token-faults", rules).await;
    assert_eq!(s, 204);
    let (s, b) = refresh(&env, d::PARTNER_REFRESH_TOKEN, d::PARTNER_TENANT_ID).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "interaction_required", 50076);
    // The injected failure did not consume the refresh token.
    let (s, _) = refresh(&env, d::PARTNER_REFRESH_TOKEN, d::PARTNER_TENANT_ID).await;
    assert_eq!(s, 200);
    for _ in 0..2 {
        let (s, b) = env
            .token_request(
                d::CONTOSO_TENANT_ID,
                &cc_form(d::PARTNER_CLIENT_SECRET, GRAPH),
            )
            .await;
        assert_eq!(s, 400);
        assert_entra_error(&b, "interaction_required", 53003);
    }
    let (s, _) = env
        .token_request(
            d::CONTOSO_TENANT_ID,
            &cc_form(d::PARTNER_CLIENT_SECRET, GRAPH),
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn discovery_points_at_the_sandbox_and_the_jwks_verifies_tokens() {
    let env = start().await;
    let url = format!(
        "{}/{}/v2.0/.well-known/openid-configuration",
        env.base,
        d::PARTNER_TENANT_ID
    );
    let doc: serde_json::Value = env
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["token_endpoint"],
        format!("{}/{}/oauth2/v2.0/token", env.base, d::PARTNER_TENANT_ID)
    );
    assert_eq!(
        doc["issuer"],
        format!("{}/{}/v2.0", env.base, d::PARTNER_TENANT_ID)
    );
    let jwks: serde_json::Value = env
        .http
        .get(doc["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap();
    let token = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (input, sig) = token.rsplit_once('.').unwrap();
    let public = ring::signature::RsaPublicKeyComponents { n: &n, e: &e };
    public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &URL_SAFE_NO_PAD.decode(sig).unwrap(),
        )
        .expect("signature verifies");
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], key["kid"]);
    assert_eq!(header["alg"], "RS256");
}

#[tokio::test]
async fn apis_refuse_expired_forged_and_wrong_audience_tokens() {
    let env = support::start_with(SandboxOptions {
        token_lifetime: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let token = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (s, _) = env.get("/v1.0/users", &token).await;
    assert_eq!(s, 200);
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut c = claims(&token);
    c["roles"] = json!(["Directory.ReadWrite.All"]);
    parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
    let (s, b) = env.get("/v1.0/users", &parts.join(".")).await;
    assert_eq!(s, 401);
    assert_eq!(b["error"]["code"], "InvalidAuthenticationToken");
    let pc = env.user_token(d::PARTNER_TENANT_ID, PC).await;
    let (s, _) = env
        .get("/v1.0/tenantRelationships/delegatedAdminRelationships", &pc)
        .await;
    assert_eq!(s, 401, "a Partner Center token is not a Graph token");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (s, b) = env.get("/v1.0/users", &token).await;
    assert_eq!(s, 401);
    assert!(b["error"]["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn http_faults_on_the_token_path_look_like_entra() {
    let env = start().await;
    let prefix = format!("/{}/oauth2/", d::CONTOSO_TENANT_ID);
    let rules = json!({"rules": [{"pathPrefix": prefix, "rate": 1.0, "statuses": [503], "retryAfterSeconds": 1}]});
    assert_eq!(env.control("PUT", "/_sandbox/faults", rules).await.0, 204);
    let r = env
        .http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            env.base,
            d::CONTOSO_TENANT_ID
        ))
        .form(&cc_form(d::PARTNER_CLIENT_SECRET, GRAPH))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_entra_error(&body, "temporarily_unavailable", 90033);
    let (s, _) = env
        .token_request(
            d::NORTHWIND_TENANT_ID,
            &cc_form(d::PARTNER_CLIENT_SECRET, GRAPH),
        )
        .await;
    assert_eq!(s, 200, "other tenants' token paths are untouched");
}
