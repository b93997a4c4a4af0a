//! Interactive sign-in against the sandbox over HTTP, as Entra serves it: the device
//! authorization grant (device code, `/devicelogin` page, polling errors, expiry on the sandbox's
//! clock, single use) and the authorization code grant with PKCE (the sign-in page a person
//! uses, its error pages and redirects, code checks at the token endpoint), both completed by the
//! pages and by the control API `/_sandbox/sign-ins`; the refresh tokens they yield work like
//! fixture tokens (Partner Center accepts them only after MFA).
#![cfg(feature = "sandbox")]

#[path = "sandbox_support/mod.rs"]
mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gdap_operator::sandbox::SandboxOptions;
use gdap_operator::sandbox::defaults as d;
use serde_json::{Value, json};
use std::time::Duration;
use support::{Env, PC, claims, start, start_with};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const PC_SCOPES: &str =
    "openid profile offline_access https://api.partnercenter.microsoft.com/user_impersonation";
const REDIRECT: &str = "http://localhost:8400/callback";

fn assert_entra_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}:")),
        "{description}"
    );
}

/// A client that does not follow redirects (the test looks at `Location` like a browser would).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the first HTML attribute `attr` of the element that has `marker` in it.
fn attribute(html: &str, marker: &str, attr: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {html}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    let element = &html[start..end];
    let pattern = regex::Regex::new(&format!(r#"{attr}="([^"]*)""#)).unwrap();
    let value = &pattern.captures(element).unwrap()[1];
    value.replace("&amp;", "&").replace("&quot;", "\"")
}

/// The hidden fields of the first form of a page.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let pattern =
        regex::Regex::new(r#"<input type="hidden" name="([^"]+)" value="([^"]*)""#).unwrap();
    pattern
        .captures_iter(html)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

fn location(r: &reqwest::Response) -> url::Url {
    let l = r.headers()[reqwest::header::LOCATION].to_str().unwrap();
    url::Url::parse(l).unwrap()
}

fn query(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

impl Env {
    /// Starts a device flow; returns the device authorization response.
    async fn device_code(&self, scope: &str) -> Value {
        let r = self
            .http
            .post(format!(
                "{}/{}/oauth2/v2.0/devicecode",
                self.base,
                d::PARTNER_TENANT_ID
            ))
            .form(&[("client_id", d::PARTNER_CLIENT_ID), ("scope", scope)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Polls the token endpoint once with a device code (client secret authentication).
    async fn poll(&self, device_code: &str) -> (u16, Value) {
        self.token_request(
            d::PARTNER_TENANT_ID,
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", d::PARTNER_CLIENT_ID),
                ("client_secret", d::PARTNER_CLIENT_SECRET),
                ("device_code", device_code),
            ],
        )
        .await
    }

    /// Redeems a refresh token for a Partner Center token and lists one customer with it.
    async fn partner_center_status(&self, refresh_token: &str) -> (u16, Value) {
        let (status, body) = self
            .token_request(
                d::PARTNER_TENANT_ID,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", d::PARTNER_CLIENT_ID),
                    ("client_secret", d::PARTNER_CLIENT_SECRET),
                    ("scope", PC),
                    ("refresh_token", refresh_token),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        self.get(
            "/v1/customers?size=1",
            body["access_token"].as_str().unwrap(),
        )
        .await
    }

    /// Opens the authorization endpoint like a browser: (status, Location, page).
    async fn authorize(&self, params: &[(&str, &str)]) -> reqwest::Response {
        browser()
            .get(format!(
                "{}/{}/oauth2/v2.0/authorize",
                self.base,
                d::PARTNER_TENANT_ID
            ))
            .query(params)
            .send()
            .await
            .unwrap()
    }

    /// Redeems an authorization code.
    async fn redeem(&self, code: &str, redirect: &str, verifier: Option<&str>) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", d::PARTNER_CLIENT_ID),
            ("client_secret", d::PARTNER_CLIENT_SECRET),
            ("code", code),
            ("redirect_uri", redirect),
            ("scope", PC_SCOPES),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token_request(d::PARTNER_TENANT_ID, &form).await
    }
}

/// The query of an authorization request with PKCE S256 for `verifier`.
fn auth_params<'a>(challenge: &'a str, state: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", d::PARTNER_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", PC_SCOPES),
        ("state", state),
        ("nonce", "nonce-1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("login_hint", d::PARTNER_ADMIN_UPN),
    ]
}

#[tokio::test]
async fn device_flow_with_mfa_gives_tokens_that_partner_center_accepts() {
    let env = start().await;
    let flow = env.device_code(PC_SCOPES).await;
    let user_code = flow["user_code"].as_str().unwrap().to_string();
    let device_code = flow["device_code"].as_str().unwrap().to_string();
    assert_eq!(
        flow["verification_uri"],
        format!("{}/devicelogin", env.base)
    );
    assert_eq!(flow["expires_in"], 900);
    assert_eq!(flow["interval"], 5, "Entra's interval by default");
    assert!(flow["message"].as_str().unwrap().contains(&user_code));

    let (s, b) = env.poll(&device_code).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "authorization_pending", 70016);

    let (s, listed) = env.control("GET", "/_sandbox/sign-ins", json!({})).await;
    assert_eq!(s, 200);
    let pending = listed["value"].as_array().unwrap();
    assert!(
        pending
            .iter()
            .any(|p| p["userCode"] == user_code && p["clientId"] == d::PARTNER_CLIENT_ID),
        "{listed}"
    );

    let (s, b) = env
        .control("POST", "/_sandbox/sign-ins", json!({"userCode": user_code}))
        .await;
    assert_eq!((s, &b["completed"]), (200, &json!(true)), "{b}");
    let (s, listed) = env.control("GET", "/_sandbox/sign-ins", json!({})).await;
    assert_eq!(s, 200);
    assert!(!listed.to_string().contains(&user_code), "{listed}");

    let (s, tokens) = env.poll(&device_code).await;
    assert_eq!(s, 200, "{tokens}");
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(
        access["upn"],
        d::PARTNER_ADMIN_UPN,
        "the fixture's GDAP admin"
    );
    assert_eq!(access["aud"], "https://api.partnercenter.microsoft.com");
    assert_eq!(access["amr"], json!(["pwd", "mfa"]));
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], d::PARTNER_CLIENT_ID);
    assert_eq!(id["preferred_username"], d::PARTNER_ADMIN_UPN);

    // A device code is redeemed once.
    let (s, b) = env.poll(&device_code).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 70000);

    let rt = tokens["refresh_token"].as_str().unwrap();
    let (s, b) = env.partner_center_status(rt).await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn a_device_sign_in_without_mfa_is_refused_by_partner_center() {
    let env = start().await;
    let flow = env.device_code(PC_SCOPES).await;
    let (s, b) = env
        .control(
            "POST",
            "/_sandbox/sign-ins",
            json!({"userCode": flow["user_code"], "user": d::PARTNER_ADMIN_UPN, "mfa": false}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, tokens) = env.poll(flow["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{tokens}");
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["amr"], json!(["pwd"]));
    let (s, b) = env
        .partner_center_status(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!((s, &b["code"]), (401, &json!("900421")), "{b}");
}

#[tokio::test]
async fn declined_expired_and_unknown_device_codes_fail_as_on_entra() {
    let env = start().await;
    let declined = env.device_code(PC_SCOPES).await;
    let (s, _) = env
        .control(
            "POST",
            "/_sandbox/sign-ins",
            json!({"userCode": declined["user_code"], "decline": true}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = env.poll(declined["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "authorization_declined", 70000);

    let expiring = env.device_code(PC_SCOPES).await;
    let (s, _) = env
        .control("POST", "/_sandbox/clock", json!({"advanceSeconds": 899}))
        .await;
    assert_eq!(s, 200);
    let (_, b) = env.poll(expiring["device_code"].as_str().unwrap()).await;
    assert_entra_error(&b, "authorization_pending", 70016);
    env.control("POST", "/_sandbox/clock", json!({"advanceSeconds": 1}))
        .await;
    let (s, b) = env.poll(expiring["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "expired_token", 70020);
    let (s, b) = env
        .control(
            "POST",
            "/_sandbox/sign-ins",
            json!({"userCode": expiring["user_code"]}),
        )
        .await;
    assert_eq!(s, 409, "{b}");

    let (s, b) = env.poll("DAQABIQEAAABnot-issued").await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "bad_verification_code", 70000);
    let (s, b) = env
        .control(
            "POST",
            "/_sandbox/sign-ins",
            json!({"userCode": "NOSUCHCOD"}),
        )
        .await;
    assert_eq!(s, 404, "{b}");
    assert!(b["error"].as_str().unwrap().contains("NOSUCHCOD"), "{b}");
}

#[tokio::test]
async fn the_device_grant_authenticates_the_client_and_the_endpoint_knows_it() {
    let env = start().await;
    let r = env
        .http
        .post(format!(
            "{}/{}/oauth2/v2.0/devicecode",
            env.base,
            d::PARTNER_TENANT_ID
        ))
        .form(&[
            ("client_id", "00000000-0000-0000-0000-000000000001"),
            ("scope", PC),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_entra_error(&r.json().await.unwrap(), "unauthorized_client", 700016);

    let flow = env.device_code(PC_SCOPES).await;
    env.control(
        "POST",
        "/_sandbox/sign-ins",
        json!({"userCode": flow["user_code"]}),
    )
    .await;
    let (s, b) = env
        .token_request(
            d::PARTNER_TENANT_ID,
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", d::PARTNER_CLIENT_ID),
                ("device_code", flow["device_code"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(s, 401);
    assert_entra_error(&b, "invalid_client", 7000218);
    // The failed request did not consume the code.
    let (s, b) = env.poll(flow["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{b}");

    let (_, discovery) = env
        .get(
            &format!(
                "/{}/v2.0/.well-known/openid-configuration",
                d::PARTNER_TENANT_ID
            ),
            "",
        )
        .await;
    assert_eq!(
        discovery["device_authorization_endpoint"],
        format!(
            "{}/{}/oauth2/v2.0/devicecode",
            env.base,
            d::PARTNER_TENANT_ID
        )
    );
    let grants = discovery["grant_types_supported"].to_string();
    assert!(grants.contains("authorization_code") && grants.contains(DEVICE_GRANT));
    assert_eq!(discovery["response_types_supported"], json!(["code"]));
}

#[tokio::test]
async fn the_device_code_interval_is_an_option() {
    let env = start_with(SandboxOptions {
        device_code_interval: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    assert_eq!(env.device_code(PC_SCOPES).await["interval"], 1);
}

#[tokio::test]
async fn a_person_signs_in_a_device_on_the_devicelogin_page() {
    let env = start().await;
    let flow = env.device_code(PC_SCOPES).await;
    let page_url = flow["verification_uri"].as_str().unwrap();
    let page = env.http.get(page_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let action = attribute(&html, "<form", "action");
    let submit = format!("{}{action}", env.base);
    assert!(html.contains("Verify with a second factor (MFA)"), "{html}");

    let post = |form: Vec<(&'static str, String)>| {
        let (http, submit) = (env.http.clone(), submit.clone());
        async move {
            let r = http.post(&submit).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, html) = post(vec![
        ("code", "WRONGCODE".into()),
        ("login", d::PARTNER_ADMIN_UPN.into()),
        ("action", "continue".into()),
    ])
    .await;
    assert_eq!(s, 200);
    assert!(html.contains("didn&#39;t work"), "{html}");
    let user_code = flow["user_code"].as_str().unwrap().to_string();
    let (_, html) = post(vec![
        ("code", user_code.clone()),
        ("login", "nobody@partner.example".into()),
        ("action", "continue".into()),
    ])
    .await;
    assert!(html.contains("AADSTS50034"), "{html}");
    let (s, html) = post(vec![
        ("code", user_code.to_lowercase()),
        ("login", d::PARTNER_ADMIN_UPN.into()),
        ("mfa", "1".into()),
        ("action", "continue".into()),
    ])
    .await;
    assert_eq!(s, 200);
    assert!(html.contains("You have signed in"), "{html}");
    let (s, tokens) = env.poll(flow["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{tokens}");
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );

    // Cancel declines.
    let other = env.device_code(PC_SCOPES).await;
    let (_, html) = post(vec![
        ("code", other["user_code"].as_str().unwrap().into()),
        ("action", "cancel".into()),
    ])
    .await;
    assert!(html.contains("declined"), "{html}");
    let (_, b) = env.poll(other["device_code"].as_str().unwrap()).await;
    assert_entra_error(&b, "authorization_declined", 70000);
}

#[tokio::test]
async fn a_person_signs_in_on_the_authorize_page_and_the_code_is_redeemed_once() {
    let env = start().await;
    let verifier = "a-verifier-of-at-least-forty-three-characters-0123456789";
    let challenge = s256(verifier);
    let r = env.authorize(&auth_params(&challenge, "state-1")).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert_eq!(
        attribute(&html, "name=\"login\"", "value"),
        d::PARTNER_ADMIN_UPN,
        "login_hint prefills the user"
    );
    assert!(html.contains("Verify with a second factor (MFA)"));
    let action = format!("{}{}", env.base, attribute(&html, "<form", "action"));
    let mut form = hidden_fields(&html);
    assert!(!form.is_empty(), "{html}");

    // An unknown user gets the page again, and the request stays pending.
    let mut wrong = form.clone();
    wrong.push(("login".into(), "nobody@partner.example".into()));
    wrong.push(("action".into(), "signin".into()));
    let r = browser().post(&action).form(&wrong).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("AADSTS50034"));

    form.push(("login".into(), d::PARTNER_ADMIN_UPN.into()));
    form.push(("mfa".into(), "1".into()));
    form.push(("action".into(), "signin".into()));
    let r = browser().post(&action).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let back = location(&r);
    assert_eq!(back.as_str().split('?').next().unwrap(), REDIRECT);
    assert_eq!(query(&back, "state").as_deref(), Some("state-1"));
    let code = query(&back, "code").unwrap();

    let (s, b) = env.redeem(&code, REDIRECT, Some("not-the-verifier")).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 501481);
    let (s, b) = env.redeem(&code, REDIRECT, None).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 50148);
    let (s, b) = env
        .redeem(&code, "http://localhost:8401/callback", Some(verifier))
        .await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 500112);

    let (s, tokens) = env.redeem(&code, REDIRECT, Some(verifier)).await;
    assert_eq!(s, 200, "{tokens}");
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["nonce"],
        "nonce-1"
    );
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );
    let (s, b) = env.redeem(&code, REDIRECT, Some(verifier)).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 54005);

    let (s, b) = env
        .partner_center_status(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn the_authorize_endpoint_refuses_unknown_clients_and_foreign_redirects_without_redirecting()
{
    let env = start().await;
    let challenge = s256("v");
    let mut params = auth_params(&challenge, "s");
    params[0] = ("client_id", "00000000-0000-0000-0000-000000000001");
    let r = env.authorize(&params).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get(reqwest::header::LOCATION).is_none());
    assert!(r.text().await.unwrap().contains("AADSTS700016"));

    for foreign in [
        "https://evil.example/callback",
        "http://localhost.evil.example/",
        "https://localhost:8400/",
    ] {
        let mut params = auth_params(&challenge, "s");
        params[2] = ("redirect_uri", foreign);
        let r = env.authorize(&params).await;
        assert_eq!(r.status(), 400, "{foreign}");
        assert!(r.headers().get(reqwest::header::LOCATION).is_none());
        assert!(r.text().await.unwrap().contains("AADSTS50011"), "{foreign}");
    }

    // Any loopback port is the app's; later errors go back to it.
    let mut params = auth_params(&challenge, "s-2");
    params[1] = ("response_type", "token");
    params[2] = ("redirect_uri", "http://127.0.0.1:53999/");
    let r = env.authorize(&params).await;
    assert_eq!(r.status(), 302);
    let back = location(&r);
    assert_eq!(back.port(), Some(53999));
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert!(
        query(&back, "error_description")
            .unwrap()
            .starts_with("AADSTS700051:")
    );
    assert_eq!(query(&back, "state").as_deref(), Some("s-2"));
}

#[tokio::test]
async fn the_control_api_completes_or_cancels_an_authorize_request_by_state() {
    let env = start().await;
    let challenge = s256("verifier-2");
    let r = env.authorize(&auth_params(&challenge, "state-a")).await;
    assert_eq!(r.status(), 200);
    let (s, listed) = env.control("GET", "/_sandbox/sign-ins", json!({})).await;
    assert_eq!(s, 200);
    assert!(
        listed["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["state"] == "state-a" && p["redirectUri"] == REDIRECT),
        "{listed}"
    );
    let (s, b) = env
        .control(
            "POST",
            "/_sandbox/sign-ins",
            json!({"state": "state-a", "mfa": false}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let back = url::Url::parse(b["redirect"].as_str().unwrap()).unwrap();
    assert_eq!(query(&back, "state").as_deref(), Some("state-a"));
    let code = query(&back, "code").unwrap();

    // Codes live 10 minutes on the sandbox's clock.
    env.control("POST", "/_sandbox/clock", json!({"advanceSeconds": 600}))
        .await;
    let (s, b) = env.redeem(&code, REDIRECT, Some("verifier-2")).await;
    assert_eq!(s, 400);
    assert_entra_error(&b, "invalid_grant", 70008);

    let r = env.authorize(&auth_params(&challenge, "state-b")).await;
    assert_eq!(r.status(), 200);
    let (s, b) = env
        .control(
            "POST",
            "/_sandbox/sign-ins",
            json!({"state": "state-b", "decline": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let back = url::Url::parse(b["redirect"].as_str().unwrap()).unwrap();
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "state").as_deref(), Some("state-b"));
    assert!(query(&back, "code").is_none());

    let (s, b) = env
        .control("POST", "/_sandbox/sign-ins", json!({"state": "state-b"}))
        .await;
    assert_eq!(s, 404, "{b}");
    let (s, _) = env
        .control(
            "POST",
            "/_sandbox/sign-ins",
            json!({"state": "x", "userCode": "y"}),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn a_code_without_mfa_yields_a_token_partner_center_refuses() {
    let env = start().await;
    let r = env.authorize(&auth_params(&s256("v3"), "state-m")).await;
    let html = r.text().await.unwrap();
    let action = format!("{}{}", env.base, attribute(&html, "<form", "action"));
    let mut form = hidden_fields(&html);
    form.push(("login".into(), d::PARTNER_ADMIN_UPN.into()));
    form.push(("action".into(), "signin".into()));
    let r = browser().post(&action).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let code = query(&location(&r), "code").unwrap();
    let (s, tokens) = env.redeem(&code, REDIRECT, Some("v3")).await;
    assert_eq!(s, 200, "{tokens}");
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["amr"],
        json!(["pwd"])
    );
    let (s, b) = env
        .partner_center_status(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!((s, &b["code"]), (401, &json!("900421")), "{b}");

    // Cancel on the page goes back with access_denied.
    let r = env.authorize(&auth_params(&s256("v4"), "state-c")).await;
    let html = r.text().await.unwrap();
    let mut form = hidden_fields(&html);
    form.push(("action".into(), "cancel".into()));
    let r = browser().post(&action).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let back = location(&r);
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "state").as_deref(), Some("state-c"));
}
