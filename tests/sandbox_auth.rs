//! The sandbox's login checks added for certificate credentials and MFA, over HTTP: client
//! assertions verified against the app's registered certificates with Entra's AADSTS errors, the
//! `amr` claim and its survival across rotation, Partner Center's MFA enforcement, app-only tokens
//! after a revoked consent, delegated tokens in a customer only after its consent and with its
//! scopes, and the GDAP roles that may grant application permissions.
#![cfg(feature = "sandbox")]

#[path = "sandbox_support/mod.rs"]
mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gdap_operator::microsoft::ClientCertificate;
use gdap_operator::sandbox::defaults as d;
use gdap_operator::sandbox::{Fixture, SandboxOptions};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use support::*;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const PRIVILEGED_ROLE_ADMIN: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

fn certificate() -> ClientCertificate {
    ClientCertificate::from_pem(d::PARTNER_CLIENT_CERTIFICATE_PEM, d::PARTNER_CLIENT_KEY_PEM)
        .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Signs arbitrary header and claims with an RSA key (PEM), RS256 or PS256 as `header.alg` says
/// (anything else gets a junk signature).
fn sign(header: &Value, claims: &Value, key_pem: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let PrivateKeyDer::Pkcs8(der) = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap()
    else {
        panic!("the test keys are PKCS#8");
    };
    let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    let mut sig = vec![0u8; key.public().modulus_len()];
    match header["alg"].as_str() {
        Some("RS256") => key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        ),
        Some("PS256") => key.sign(
            &RSA_PSS_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        ),
        _ => Ok(()),
    }
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn header() -> Value {
    json!({"alg": "RS256", "typ": "JWT", "x5t#S256": d::PARTNER_CLIENT_CERTIFICATE_THUMBPRINT})
}

fn claims_for(env: &Env, tenant: &str) -> Value {
    json!({"aud": format!("{}/{tenant}/oauth2/v2.0/token", env.base), "iss": d::PARTNER_CLIENT_ID,
           "sub": d::PARTNER_CLIENT_ID, "jti": uuid::Uuid::new_v4().to_string(),
           "nbf": now(), "iat": now(), "exp": now() + 600})
}

/// A client-credentials request for Contoso's Graph authenticated by `assertion`.
async fn with_assertion(env: &Env, assertion_type: &str, assertion: &str) -> (u16, Value) {
    env.token_request(
        d::CONTOSO_TENANT_ID,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", d::PARTNER_CLIENT_ID),
            ("scope", GRAPH),
            ("client_assertion_type", assertion_type),
            ("client_assertion", assertion),
        ],
    )
    .await
}

fn assert_aadsts(status: u16, body: &Value, want_status: u16, error: &str, code: u64) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}:")),
        "{body}"
    );
}

/// A self-signed certificate for the sandbox's token-signing key: a valid RSA certificate that is
/// registered nowhere.
fn unregistered_certificate() -> String {
    let key = rcgen::KeyPair::from_pem(include_str!("../src/sandbox/signing-key.pem")).unwrap();
    rcgen::CertificateParams::new(vec!["stranger".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem()
}

#[tokio::test]
async fn both_grants_accept_a_certificate_assertion() {
    let env = start().await;
    let cert = certificate();
    let url = |t: &str| format!("{}/{t}/oauth2/v2.0/token", env.base);
    let assertion = cert.assertion(
        d::PARTNER_CLIENT_ID,
        &url(d::CONTOSO_TENANT_ID),
        chrono::Utc::now(),
    );
    let (s, b) = with_assertion(&env, JWT_BEARER, assertion.expose()).await;
    assert_eq!(s, 200, "{b}");
    let c = claims(b["access_token"].as_str().unwrap());
    assert_eq!(c["appidacr"], "2", "certificate authentication is recorded");
    assert!(c["roles"].as_array().is_some_and(|r| !r.is_empty()));

    let assertion = cert.assertion(
        d::PARTNER_CLIENT_ID,
        &url(d::PARTNER_TENANT_ID),
        chrono::Utc::now(),
    );
    let (s, b) = env
        .token_request(
            d::PARTNER_TENANT_ID,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", d::PARTNER_CLIENT_ID),
                ("scope", GRAPH),
                ("refresh_token", d::PARTNER_REFRESH_TOKEN),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.expose()),
            ],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let c = claims(b["access_token"].as_str().unwrap());
    assert_eq!(
        (c["idtyp"].as_str(), c["appidacr"].as_str()),
        (Some("user"), Some("2"))
    );

    // MSAL's forms: PS256 with x5t#S256, and the legacy RS256 with a SHA-1 x5t.
    let ps =
        json!({"alg": "PS256", "typ": "JWT", "x5t#S256": d::PARTNER_CLIENT_CERTIFICATE_THUMBPRINT});
    let (s, b) = with_assertion(
        &env,
        JWT_BEARER,
        &sign(
            &ps,
            &claims_for(&env, d::CONTOSO_TENANT_ID),
            d::PARTNER_CLIENT_KEY_PEM,
        ),
    )
    .await;
    assert_eq!(s, 200, "PS256: {b}");
    let sha1 = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        rustls_pki_types::CertificateDer::from_pem_slice(
            d::PARTNER_CLIENT_CERTIFICATE_PEM.as_bytes(),
        )
        .unwrap()
        .as_ref(),
    ));
    let legacy = json!({"alg": "RS256", "typ": "JWT", "x5t": sha1});
    let (s, b) = with_assertion(
        &env,
        JWT_BEARER,
        &sign(
            &legacy,
            &claims_for(&env, d::CONTOSO_TENANT_ID),
            d::PARTNER_CLIENT_KEY_PEM,
        ),
    )
    .await;
    assert_eq!(s, 200, "SHA-1 x5t: {b}");
    // A client secret still works for the same app, and says so.
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
    assert_eq!(s, 200, "{b}");
    assert_eq!(claims(b["access_token"].as_str().unwrap())["appidacr"], "1");
}

#[tokio::test]
async fn every_broken_assertion_gets_entras_error() {
    let env = start().await;
    let key = d::PARTNER_CLIENT_KEY_PEM;
    let good = claims_for(&env, d::CONTOSO_TENANT_ID);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let valid = sign(&header(), &good, key);
    let (signed, _) = valid.rsplit_once('.').unwrap();
    let forged_claims = URL_SAFE_NO_PAD.encode(with("iss", json!("someone-else")).to_string());
    let tampered = format!(
        "{}.{forged_claims}.{}",
        signed.split('.').next().unwrap(),
        valid.rsplit('.').next().unwrap()
    );
    let stranger = unregistered_certificate();
    let stranger_der =
        rustls_pki_types::CertificateDer::from_pem_slice(stranger.as_bytes()).unwrap();
    let stranger_header = json!({"alg": "RS256", "typ": "JWT",
        "x5t#S256": gdap_operator::microsoft::certificate::thumbprint_sha256(stranger_der.as_ref())});
    let signing_key = include_str!("../src/sandbox/signing-key.pem");
    let cases: Vec<(&str, &str, String, u16, &str, u64, &str)> = vec![
        (
            "wrong assertion type",
            "urn:example:other",
            valid.clone(),
            400,
            "invalid_request",
            90011,
            "Unexpected client assertion type",
        ),
        (
            "not a JWT",
            JWT_BEARER,
            "not-a-jwt".into(),
            401,
            "invalid_client",
            50027,
            "malformed",
        ),
        (
            "HS256",
            JWT_BEARER,
            sign(
                &json!({"alg": "HS256", "x5t#S256": d::PARTNER_CLIENT_CERTIFICATE_THUMBPRINT}),
                &good,
                key,
            ),
            400,
            "invalid_request",
            5002730,
            "Unsupported key for the signing algorithm",
        ),
        (
            "unregistered certificate",
            JWT_BEARER,
            sign(&stranger_header, &good, signing_key),
            401,
            "invalid_client",
            700027,
            "The key was not found",
        ),
        (
            "tampered claims",
            JWT_BEARER,
            tampered,
            401,
            "invalid_client",
            700027,
            "did not match the expected signature",
        ),
        (
            "iss is another app",
            JWT_BEARER,
            sign(
                &header(),
                &with("iss", json!("00000000-0000-0000-0000-000000000001")),
                key,
            ),
            401,
            "invalid_client",
            700021,
            "doesn't match 'client_id'",
        ),
        (
            "sub differs from iss",
            JWT_BEARER,
            sign(&header(), &with("sub", json!("someone")), key),
            401,
            "invalid_client",
            50048,
            "Subject mismatches Issuer",
        ),
        (
            "aud is another endpoint",
            JWT_BEARER,
            sign(
                &header(),
                &with(
                    "aud",
                    json!("https://login.microsoftonline.com/x/oauth2/v2.0/token"),
                ),
                key,
            ),
            401,
            "invalid_client",
            700023,
            "audience claim does not match",
        ),
        (
            "expired",
            JWT_BEARER,
            sign(&header(), &with("exp", json!(now() - 60)), key),
            401,
            "invalid_client",
            700024,
            "not within its valid time range",
        ),
        (
            "not yet valid",
            JWT_BEARER,
            sign(&header(), &with("nbf", json!(now() + 3600)), key),
            401,
            "invalid_client",
            700024,
            "not within its valid time range",
        ),
    ];
    for (what, kind, assertion, status, error, code, text) in cases {
        let (s, b) = with_assertion(&env, kind, &assertion).await;
        assert_aadsts(s, &b, status, error, code);
        assert!(
            b["error_description"].as_str().unwrap().contains(text),
            "{what}: {b}"
        );
        assert!(b.get("access_token").is_none(), "{what}");
    }
    // Without nbf, and with a fractional exp (MSAL Python sends `time.time() + 600`), the
    // assertion is valid from the epoch to exp.
    let mut no_nbf = with("exp", json!(now() as f64 + 600.25));
    no_nbf.as_object_mut().unwrap().remove("nbf");
    let (s, b) = with_assertion(&env, JWT_BEARER, &sign(&header(), &no_nbf, key)).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn an_expired_registered_certificate_is_refused() {
    let key = rcgen::KeyPair::from_pem(d::PARTNER_CLIENT_KEY_PEM).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["expired".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired = params.self_signed(&key).unwrap().pem();
    let mut fixture = Fixture::builtin();
    fixture.apps[0].certificates = vec![expired.clone()];
    let env = start_with(SandboxOptions {
        fixture,
        ..Default::default()
    })
    .await;
    let cert = ClientCertificate::from_pem(&expired, d::PARTNER_CLIENT_KEY_PEM).unwrap();
    let url = format!("{}/{}/oauth2/v2.0/token", env.base, d::CONTOSO_TENANT_ID);
    let (s, b) = with_assertion(
        &env,
        JWT_BEARER,
        cert.assertion(d::PARTNER_CLIENT_ID, &url, chrono::Utc::now())
            .expose(),
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 700027);
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("The key used is expired"),
        "{b}"
    );

    let bad = Fixture::builtin();
    let mut yaml = serde_yaml::to_value(&bad).unwrap();
    yaml["apps"][0]["certificates"] = serde_yaml::to_value(vec!["not a certificate"]).unwrap();
    let err = Fixture::from_yaml(&serde_yaml::to_string(&yaml).unwrap()).unwrap_err();
    assert!(err.to_string().contains("certificates[0]"), "{err}");
}

async fn refresh(env: &Env, tenant: &str, scope: &str, token: &str) -> Value {
    let (s, b) = env
        .token_request(
            tenant,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", d::PARTNER_CLIENT_ID),
                ("client_secret", d::PARTNER_CLIENT_SECRET),
                ("scope", scope),
                ("refresh_token", token),
            ],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b
}

#[tokio::test]
async fn tokens_say_whether_the_sign_in_used_mfa_and_rotation_keeps_it() {
    let env = start().await;
    let with_mfa = refresh(&env, d::PARTNER_TENANT_ID, GRAPH, d::PARTNER_REFRESH_TOKEN).await;
    assert_eq!(
        claims(with_mfa["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );
    let mut token = d::PARTNER_NO_MFA_REFRESH_TOKEN.to_string();
    for _ in 0..2 {
        let b = refresh(&env, d::PARTNER_TENANT_ID, PC, &token).await;
        assert_eq!(
            claims(b["access_token"].as_str().unwrap())["amr"],
            json!(["pwd"])
        );
        token = b["refresh_token"].as_str().unwrap().to_string();
    }
}

#[tokio::test]
async fn partner_center_refuses_tokens_without_mfa_as_microsoft_does() {
    let env = start().await;
    let path = format!("/v1/customers/{}/applicationconsents", d::CONTOSO_TENANT_ID);
    let body = json!({"applicationId": d::PARTNER_CLIENT_ID,
        "applicationGrants": [{"enterpriseApplicationId": d::apps::MICROSOFT_GRAPH, "scope": "User.Read"}]});
    let no_mfa = refresh(
        &env,
        d::PARTNER_TENANT_ID,
        PC,
        d::PARTNER_NO_MFA_REFRESH_TOKEN,
    )
    .await;
    let (s, headers, b) = env
        .call(
            "POST",
            &path,
            no_mfa["access_token"].as_str().unwrap(),
            Some(body.clone()),
            &[],
        )
        .await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(b["code"], "900421", "{b}");
    assert!(headers.contains_key("www-authenticate"));
    // The same user with MFA passes that check (and is then refused for lacking GDAP access).
    let pc = env.user_token(d::PARTNER_TENANT_ID, PC).await;
    let (s, _, b) = env.call("POST", &path, &pc, Some(body), &[]).await;
    assert_eq!(s, 403, "{b}");
    // Graph does not check the MFA claim.
    let graph = refresh(
        &env,
        d::PARTNER_TENANT_ID,
        GRAPH,
        no_mfa["refresh_token"].as_str().unwrap(),
    )
    .await;
    let (s, b) = env
        .get(
            "/v1.0/tenantRelationships/delegatedAdminRelationships",
            graph["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn a_revoked_consent_shows_in_new_app_tokens_only() {
    let env = start().await;
    let before = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (s, _) = env.get("/v1.0/users?$top=1", &before).await;
    assert_eq!(s, 200);
    let (s, b) = env
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
    assert_eq!(s, 200, "{b}");
    // Graph judges the roles in the token: one issued before the revocation keeps working.
    let (s, _) = env.get("/v1.0/users?$top=1", &before).await;
    assert_eq!(s, 200);
    let after = env.app_token(d::CONTOSO_TENANT_ID).await;
    assert!(
        claims(&after).get("roles").is_none(),
        "no roles claim at all"
    );
    // A token that carries no permission at all is refused as Graph does: 401, whatever it asks.
    for path in ["/v1.0/users?$top=1", "/v1.0/servicePrincipals"] {
        let (s, b) = env.get(path, &after).await;
        assert_eq!(s, 401, "{b}");
        assert_eq!(b["error"]["code"], "InvalidAuthenticationToken");
        assert_eq!(
            b["error"]["message"],
            "Either scp or roles claim need to be present in the token."
        );
    }
}

#[tokio::test]
async fn graph_app_roles_need_global_or_privileged_role_administrator() {
    let env = start().await;
    env.active_relationship(
        "apps-1",
        d::FABRIKAM_TENANT_ID,
        &[APP_ADMIN],
        &[d::APP_ADMINS_GROUP_ID],
    )
    .await;
    env.consent(
        d::FABRIKAM_TENANT_ID,
        &[
            "Application.ReadWrite.All",
            "AppRoleAssignment.ReadWrite.All",
        ],
    )
    .await;
    let t = env.user_token(d::FABRIKAM_TENANT_ID, GRAPH).await;
    let sp = |app: &'static str| {
        let (env, t) = (&env, t.clone());
        async move {
            let (s, _, b) = env
                .call(
                    "POST",
                    "/v1.0/servicePrincipals",
                    &t,
                    Some(json!({"appId": app})),
                    &[],
                )
                .await;
            assert_eq!(s, 201, "{b}");
            b
        }
    };
    let (_, ours) = env
        .get(
            &format!(
                "/v1.0/servicePrincipals?$filter=appId eq '{}'",
                d::PARTNER_CLIENT_ID
            ),
            &t,
        )
        .await;
    let client = ours["value"][0]["id"]
        .as_str()
        .expect("the consent created the app's service principal")
        .to_string();
    let o365 = sp(d::apps::OFFICE365_MANAGEMENT).await;
    let (_, graph) = env
        .get(
            &format!(
                "/v1.0/servicePrincipals?$filter=appId eq '{}'",
                d::apps::MICROSOFT_GRAPH
            ),
            &t,
        )
        .await;
    let graph = &graph["value"][0];
    let role_of = |sp: &Value, name: &str| {
        sp["appRoles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["value"] == name)
            .unwrap()["id"]
            .clone()
    };
    let grant = |resource: &Value, role: Value| {
        let (env, t, client) = (&env, t.clone(), client.clone());
        let resource = resource["id"].as_str().unwrap().to_string();
        async move {
            env.call(
                "POST",
                &format!("/v1.0/servicePrincipals/{resource}/appRoleAssignedTo"),
                &t,
                Some(json!({"principalId": client, "resourceId": resource, "appRoleId": role})),
                &[],
            )
            .await
        }
    };
    let (s, _, b) = grant(graph, role_of(graph, "User.Read.All")).await;
    assert_eq!(
        s, 403,
        "Application Administrator cannot grant Graph app roles: {b}"
    );
    let (s, _, b) = grant(&o365, role_of(&o365, "ActivityFeed.Read")).await;
    assert_eq!(s, 201, "but may grant other resources' app roles: {b}");
    env.active_relationship(
        "apps-2",
        d::FABRIKAM_TENANT_ID,
        &[PRIVILEGED_ROLE_ADMIN],
        &[d::HELPDESK_GROUP_ID],
    )
    .await;
    let (s, _, b) = grant(graph, role_of(graph, "User.Read.All")).await;
    assert_eq!(s, 201, "Privileged Role Administrator may: {b}");
}

#[tokio::test]
async fn a_delegated_token_in_a_customer_needs_its_consent_and_carries_the_consented_scopes() {
    let env = start().await;
    env.active_relationship(
        "consent-first",
        d::FABRIKAM_TENANT_ID,
        &[APP_ADMIN],
        &[d::APP_ADMINS_GROUP_ID],
    )
    .await;
    let request = |tenant: &'static str| {
        let env = &env;
        async move {
            let current = env.current_refresh_token();
            env.token_request(
                tenant,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", d::PARTNER_CLIENT_ID),
                    ("client_secret", d::PARTNER_CLIENT_SECRET),
                    ("scope", GRAPH),
                    ("refresh_token", &current),
                ],
            )
            .await
        }
    };
    let (s, b) = request(d::FABRIKAM_TENANT_ID).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "invalid_grant");
    assert_eq!(
        b["error_codes"],
        json!([90099]),
        "the app is not authorized there: {b}"
    );

    env.consent(
        d::FABRIKAM_TENANT_ID,
        &["User.Read", "Application.ReadWrite.All"],
    )
    .await;
    let token = env.user_token(d::FABRIKAM_TENANT_ID, GRAPH).await;
    assert_eq!(
        claims(&token)["scp"],
        "User.Read Application.ReadWrite.All",
        "the customer's grants, not the app registration's permissions"
    );

    let (s, b) = env
        .control(
            "POST",
            &format!(
                "/_sandbox/tenants/{}/consents/{}/revoke",
                d::FABRIKAM_TENANT_ID,
                d::PARTNER_CLIENT_ID
            ),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = request(d::FABRIKAM_TENANT_ID).await;
    assert_eq!(s, 400);
    assert_eq!(
        b["error_codes"],
        json!([65001]),
        "the service principal stays, the grant is gone: {b}"
    );
}

#[tokio::test]
async fn me_member_of_lists_the_partner_users_groups() {
    let env = start().await;
    let (s, b) = env.get("/v1.0/me/memberOf", &env.admin().await).await;
    assert_eq!(s, 200, "{b}");
    let mut groups: Vec<&str> = b["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            assert_eq!(g["@odata.type"], "#microsoft.graph.group");
            g["id"].as_str().unwrap()
        })
        .collect();
    groups.sort();
    let mut expected = [
        d::ADMIN_AGENTS_GROUP_ID,
        d::HELPDESK_GROUP_ID,
        d::APP_ADMINS_GROUP_ID,
    ];
    expected.sort();
    assert_eq!(groups, expected);
    let app = env.app_token(d::CONTOSO_TENANT_ID).await;
    let (s, _) = env.get("/v1.0/me/memberOf", &app).await;
    assert_eq!(s, 400, "an app-only token has no 'me'");
    env.active_relationship(
        "me-readers",
        d::CONTOSO_TENANT_ID,
        &[DIRECTORY_READERS],
        &[d::HELPDESK_GROUP_ID],
    )
    .await;
    let customer = env.user_token(d::CONTOSO_TENANT_ID, GRAPH).await;
    let (s, _) = env.get("/v1.0/me/memberOf", &customer).await;
    assert_eq!(s, 501, "the sandbox serves /me in the partner tenant only");
}
