//! For the act stages' tests: a sandbox and the partner's Microsoft clients on it, signed in as
//! the partner user, with the sandbox's request log and control endpoints at hand.

use crate::microsoft::{
    Endpoints, MicrosoftClients, PartnerCredentials, Secret, TokenOptions, TransportConfig,
    rotation_fn,
};
use crate::sandbox::{Consistency, Sandbox, SandboxOptions, defaults};
use serde_json::Value;
use std::time::Duration;

/// A sandbox and the clients the controllers would use on it.
pub struct SandboxWorld {
    /// The sandbox.
    pub sandbox: Sandbox,
    /// The partner's clients (the partner user's refresh token and the app's secret).
    pub clients: MicrosoftClients,
    /// For the sandbox's own endpoints.
    pub http: reqwest::Client,
}

/// A sandbox whose reads show every write at once and whose assignments are active at once: an
/// act stage reads back what it wrote to check the one request it sent.
pub fn read_back_options() -> SandboxOptions {
    SandboxOptions {
        assignment_activation_delay: Duration::ZERO,
        consistency: Consistency::immediate(),
        ..Default::default()
    }
}

impl SandboxWorld {
    /// Starts a sandbox with `options`; the partner user signs in with `refresh_token`.
    pub async fn start(options: SandboxOptions, refresh_token: &str) -> Self {
        let sandbox = Sandbox::start(options).await.unwrap();
        let endpoints = Endpoints::local(&sandbox.base_url(), None).unwrap();
        let credentials = PartnerCredentials {
            partner_tenant_id: defaults::PARTNER_TENANT_ID.into(),
            client_id: defaults::PARTNER_CLIENT_ID.into(),
            client_credential: Secret::new(defaults::PARTNER_CLIENT_SECRET).into(),
            refresh_token: Secret::new(refresh_token),
            refresh_token_issued_at: None,
        };
        let clients = MicrosoftClients::new(
            TransportConfig::new(endpoints),
            credentials,
            rotation_fn(|_| async { Ok(()) }),
            TokenOptions::default(),
        )
        .unwrap();
        SandboxWorld {
            sandbox,
            clients,
            http: reqwest::Client::new(),
        }
    }

    /// POSTs to the sandbox's control endpoint `path` (under `/_sandbox/`); it must succeed.
    pub async fn control(&self, path: &str) {
        let url = format!("{}/_sandbox/{path}", self.sandbox.base_url());
        let sent = self.http.post(url).json(&serde_json::json!({})).send();
        let status = sent.await.unwrap().status();
        assert!(status.is_success(), "{path}: {status}");
    }

    /// The sandbox's request log, oldest first.
    pub async fn requests(&self) -> Vec<Value> {
        let url = format!("{}/_sandbox/requests", self.sandbox.base_url());
        let log: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log["requests"].as_array().unwrap().clone()
    }

    /// The logged writes (not GETs, not token requests).
    pub async fn writes(&self) -> Vec<Value> {
        let mut requests = self.requests().await;
        requests.retain(|r| r["method"] != "GET" && !text(r, "path").contains("/oauth2/"));
        requests
    }
}

/// The logged writes as (method, path).
pub async fn write_lines(world: &SandboxWorld) -> Vec<(String, String)> {
    let writes = world.writes().await;
    let line = |r: &Value| (text(r, "method"), text(r, "path"));
    writes.iter().map(line).collect()
}

/// A logged request's field `key` ("" when absent).
pub fn text(request: &Value, key: &str) -> String {
    request[key].as_str().unwrap_or_default().to_string()
}
