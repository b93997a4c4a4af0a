//! Helpers shared by the sandbox integration tests: start an in-process sandbox, obtain tokens
//! the way a client would (over HTTP, against the token endpoint), and drive a relationship to
//! `active` with access assignments.
#![allow(dead_code)]

use gdap_operator::sandbox::defaults as d;
use gdap_operator::sandbox::{Consistency, Sandbox, SandboxOptions};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::Duration;

/// Directory Readers.
pub const DIRECTORY_READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
/// Global Administrator.
pub const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
/// Application Administrator.
pub const APP_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
/// Helpdesk Administrator.
pub const HELPDESK_ADMIN: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
/// Graph resource scope.
pub const GRAPH: &str = "https://graph.microsoft.com/.default";
/// Partner Center resource scope.
pub const PC: &str = "https://api.partnercenter.microsoft.com/user_impersonation";

/// A running sandbox plus an HTTP client and the admin's current refresh token.
pub struct Env {
    pub sandbox: Sandbox,
    pub base: String,
    pub http: reqwest::Client,
    rt: Mutex<String>,
}

/// Starts a sandbox with a short activation delay and every consistency delay off: these tests
/// are about the wire protocol, permissions and lifecycle; `sandbox_consistency.rs` tests the
/// lag itself.
pub async fn start() -> Env {
    start_with(SandboxOptions {
        assignment_activation_delay: Duration::from_millis(100),
        consistency: Consistency::immediate(),
        ..Default::default()
    })
    .await
}

/// Starts a sandbox with options.
pub async fn start_with(options: SandboxOptions) -> Env {
    let sandbox = Sandbox::start(options).await.expect("sandbox starts");
    let base = sandbox.base_url();
    Env {
        sandbox,
        base,
        http: reqwest::Client::new(),
        rt: Mutex::new(d::PARTNER_REFRESH_TOKEN.to_string()),
    }
}

impl Env {
    /// POSTs a form to the token endpoint of `tenant`.
    pub async fn token_request(&self, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// An app-only token for `tenant` (panics on failure).
    pub async fn app_token(&self, tenant: &str) -> String {
        let (status, body) = self
            .token_request(
                tenant,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", d::PARTNER_CLIENT_ID),
                    ("client_secret", d::PARTNER_CLIENT_SECRET),
                    ("scope", GRAPH),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// The admin's current refresh token (a failed token request does not consume it).
    pub fn current_refresh_token(&self) -> String {
        self.rt.lock().unwrap().clone()
    }

    /// A delegated token of the admin for `tenant` and `scope`, rotating the stored refresh token.
    pub async fn user_token(&self, tenant: &str, scope: &str) -> String {
        let rt = self.rt.lock().unwrap().clone();
        let (status, body) = self
            .token_request(
                tenant,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", d::PARTNER_CLIENT_ID),
                    ("client_secret", d::PARTNER_CLIENT_SECRET),
                    ("scope", scope),
                    ("refresh_token", &rt),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        *self.rt.lock().unwrap() = body["refresh_token"].as_str().unwrap().to_string();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Consents the partner app into `tenant` through Partner Center with Microsoft Graph
    /// `scopes` (the admin needs a consent-capable GDAP role there): Entra issues delegated tokens
    /// in a customer only for a consented app, with the consented scopes.
    pub async fn consent(&self, tenant: &str, scopes: &[&str]) {
        let pc = self.user_token(d::PARTNER_TENANT_ID, PC).await;
        let body = serde_json::json!({"applicationId": d::PARTNER_CLIENT_ID, "applicationGrants": [
            {"enterpriseApplicationId": d::apps::MICROSOFT_GRAPH, "scope": scopes.join(",")}]});
        let (status, _, answer) = self
            .call(
                "POST",
                &format!("/v1/customers/{tenant}/applicationconsents"),
                &pc,
                Some(body),
                &[],
            )
            .await;
        assert_eq!(status, 201, "{answer}");
    }

    /// The admin's partner-tenant Graph token.
    pub async fn admin(&self) -> String {
        self.user_token(d::PARTNER_TENANT_ID, GRAPH).await
    }

    /// Sends a request with a bearer token and optional JSON body; returns (status, headers, body).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    /// GET with a token.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let (s, _, b) = self.call("GET", path, token, None, &[]).await;
        (s, b)
    }

    /// PATCH with `If-Match: etag`.
    pub async fn patch(
        &self,
        path: &str,
        token: &str,
        body: Value,
        etag: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.call("PATCH", path, token, Some(body), &[("If-Match", etag)])
            .await
    }

    /// POST to the control API.
    pub async fn control(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (
            s,
            serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
        )
    }

    /// Creates a relationship; returns the created JSON.
    pub async fn create_relationship(
        &self,
        token: &str,
        name: &str,
        customer: &str,
        roles: &[&str],
        auto: &str,
    ) -> Value {
        let body = relationship_body(name, customer, roles, auto);
        let (s, _, b) = self
            .call(
                "POST",
                "/v1.0/tenantRelationships/delegatedAdminRelationships",
                token,
                Some(body),
                &[],
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b
    }

    /// Sends `lockForApproval` for the relationship at `path`: (status, body).
    pub async fn lock(&self, path: &str, token: &str) -> (u16, Value) {
        let (s, _, b) = self
            .call(
                "POST",
                &format!("{path}/requests"),
                token,
                Some(json!({"action": "lockForApproval"})),
                &[],
            )
            .await;
        (s, b)
    }

    /// Waits until GET `path` has `status` equal to `want` (up to 5 s); returns the object.
    pub async fn wait_status(&self, path: &str, token: &str, want: &str) -> Value {
        // A deadline, not a count of tries: a loaded CI machine is slower than a laptop.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let (s, b) = self.get(path, token).await;
            assert_eq!(s, 200, "{b}");
            if b["status"] == want {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{path} never reached {want}");
    }

    /// Creates, locks, approves and activates a relationship, then assigns `groups` (each with
    /// all `roles`) and waits for the assignments to be active. Returns the relationship id.
    pub async fn active_relationship(
        &self,
        name: &str,
        customer: &str,
        roles: &[&str],
        groups: &[&str],
    ) -> String {
        let token = self.admin().await;
        let rel = self
            .create_relationship(&token, name, customer, roles, "PT0S")
            .await;
        let id = rel["id"].as_str().unwrap().to_string();
        let path = format!("/v1.0/tenantRelationships/delegatedAdminRelationships/{id}");
        let (s, b) = self.lock(&path, &token).await;
        assert_eq!(s, 201, "{b}");
        let (s, b) = self
            .control(
                "POST",
                &format!("/_sandbox/relationships/{id}/approve"),
                json!({}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        self.wait_status(&path, &token, "active").await;
        for g in groups {
            let body = json!({"accessContainer": {"accessContainerId": g, "accessContainerType": "securityGroup"},
                              "accessDetails": {"unifiedRoles": roles.iter().map(|r| json!({"roleDefinitionId": r})).collect::<Vec<_>>()}});
            let (s, _, b) = self
                .call(
                    "POST",
                    &format!("{path}/accessAssignments"),
                    &token,
                    Some(body),
                    &[],
                )
                .await;
            assert_eq!(s, 201, "{b}");
            let aid = b["id"].as_str().unwrap();
            self.wait_status(&format!("{path}/accessAssignments/{aid}"), &token, "active")
                .await;
        }
        id
    }
}

/// A relationship creation body.
pub fn relationship_body(name: &str, customer: &str, roles: &[&str], auto: &str) -> Value {
    json!({
        "displayName": name, "duration": "P730D", "autoExtendDuration": auto,
        "customer": {"tenantId": customer},
        "accessDetails": {"unifiedRoles": roles.iter().map(|r| json!({"roleDefinitionId": r})).collect::<Vec<_>>()},
    })
}

/// Decodes a JWT's claims without verifying.
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}
