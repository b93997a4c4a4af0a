//! Shared harness of the client tests: an in-process sandbox on 127.0.0.1 and real clients
//! pointed at it, with the rotation callback and retry observer recording what they see.
#![allow(dead_code)]

use gdap_operator::microsoft::{
    Audience, DelegatedToken, Endpoints, MicrosoftClients, PartnerCredentials, RetryEvent,
    RotatedRefreshToken, TokenOptions, TransportConfig, rotation_fn,
};
use gdap_operator::sandbox::{Sandbox, SandboxOptions, defaults};
use std::sync::{Arc, Mutex};

/// A sandbox plus clients.
pub struct Harness {
    pub sandbox: Sandbox,
    pub clients: MicrosoftClients,
    pub rotated: Arc<Mutex<Vec<RotatedRefreshToken>>>,
    pub retries: Arc<Mutex<Vec<RetryEvent>>>,
    pub http: reqwest::Client,
}

/// Credentials of the sandbox's partner admin.
pub fn credentials() -> PartnerCredentials {
    PartnerCredentials {
        partner_tenant_id: defaults::PARTNER_TENANT_ID.into(),
        client_id: defaults::PARTNER_CLIENT_ID.into(),
        client_credential: defaults::PARTNER_CLIENT_SECRET.into(),
        refresh_token: defaults::PARTNER_REFRESH_TOKEN.into(),
        refresh_token_issued_at: Some(chrono::Utc::now()),
    }
}

pub async fn start() -> Harness {
    start_with(
        SandboxOptions {
            consistency: gdap_operator::sandbox::Consistency::immediate(),
            ..SandboxOptions::default()
        },
        credentials(),
        TokenOptions::default(),
        |_| {},
    )
    .await
}

pub async fn start_with(
    options: SandboxOptions,
    creds: PartnerCredentials,
    token_options: TokenOptions,
    tune: impl FnOnce(&mut TransportConfig),
) -> Harness {
    let sandbox = Sandbox::start(options).await.expect("sandbox starts");
    let endpoints = Endpoints::local(
        &sandbox.base_url(),
        sandbox.ca_pem().map(String::into_bytes),
    )
    .unwrap();
    let retries = Arc::new(Mutex::new(Vec::new()));
    let sink = retries.clone();
    let mut config = TransportConfig::new(endpoints);
    config.retry_observer = Some(Arc::new(move |e: &RetryEvent| {
        sink.lock().unwrap().push(e.clone())
    }));
    tune(&mut config);
    let rotated = Arc::new(Mutex::new(Vec::new()));
    let store = rotated.clone();
    let rotation = rotation_fn(move |r: RotatedRefreshToken| {
        let store = store.clone();
        async move {
            store.lock().unwrap().push(r);
            Ok(())
        }
    });
    let clients = MicrosoftClients::new(config, creds, rotation, token_options).unwrap();
    Harness {
        sandbox,
        clients,
        rotated,
        retries,
        http: reqwest::Client::new(),
    }
}

impl Harness {
    pub fn base(&self) -> String {
        self.sandbox.base_url()
    }

    /// Calls the sandbox control API and returns the JSON answer (panics on failure).
    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("control API reachable");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "control {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// The sandbox's request log as (method, path, status).
    pub async fn requests(&self) -> Vec<(String, String, u16)> {
        let v = self
            .control(reqwest::Method::GET, "/_sandbox/requests", None)
            .await;
        let list = v.get("requests").cloned().unwrap_or(v);
        list.as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                (
                    e["method"].as_str().unwrap_or_default().to_string(),
                    e["path"].as_str().unwrap_or_default().to_string(),
                    e["status"].as_u64().unwrap_or_default() as u16,
                )
            })
            .collect()
    }

    pub fn graph(&self) -> DelegatedToken {
        self.clients.tokens.partner_graph()
    }

    pub fn partner_center(&self) -> DelegatedToken {
        self.clients
            .tokens
            .delegated_token(defaults::PARTNER_TENANT_ID, Audience::PartnerCenter)
    }

    pub fn rotations(&self) -> usize {
        self.rotated.lock().unwrap().len()
    }

    pub async fn stop(self) {
        self.sandbox.shutdown().await;
    }
}

pub mod roles {
    pub const DIRECTORY_READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
    pub const HELPDESK_ADMIN: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
    pub const APPLICATION_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
    pub const CLOUD_APPLICATION_ADMIN: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";
    pub const PRIVILEGED_ROLE_ADMIN: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
}

use gdap_operator::microsoft::models::gdap::{
    AccessContainer, AccessDetails, CustomerParticipant, NewAccessAssignment, NewRelationship,
    Relationship, RelationshipStatus,
};

/// Sandbox options with quick activation and no consistency delays: these tests are about the
/// clients' wire protocol; the operator's end-to-end tests run with the sandbox's lag.
pub fn quick() -> SandboxOptions {
    SandboxOptions {
        assignment_activation_delay: std::time::Duration::from_millis(50),
        consistency: gdap_operator::sandbox::Consistency::immediate(),
        ..SandboxOptions::default()
    }
}

pub fn new_relationship(name: &str, customer: &str, roles: &[&str]) -> NewRelationship {
    NewRelationship {
        display_name: name.into(),
        duration: "P730D".into(),
        customer: Some(CustomerParticipant {
            tenant_id: customer.into(),
            display_name: None,
        }),
        access_details: AccessDetails::from_role_ids(roles.iter().copied()),
        auto_extend_duration: None,
    }
}

/// Polls `get` until `done` holds (at most 30 s: CI machines are slower than laptops).
pub async fn eventually<T, F, Fut>(mut get: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let value = get().await;
        if done(&value) || tokio::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

impl Harness {
    /// Creates, locks, approves (control API) and waits until the relationship is active.
    pub async fn active_relationship(
        &self,
        name: &str,
        customer: &str,
        roles: &[&str],
    ) -> Relationship {
        let token = self.graph();
        let gdap = &self.clients.gdap;
        let rel = gdap
            .create_relationship(&token, &new_relationship(name, customer, roles))
            .await
            .unwrap();
        gdap.lock_for_approval(&token, &rel.id).await.unwrap();
        self.control(
            reqwest::Method::POST,
            &format!("/_sandbox/relationships/{}/approve", rel.id),
            None,
        )
        .await;
        let active = eventually(
            || async { gdap.get_relationship(&token, &rel.id).await.unwrap() },
            |r| r.status == Some(RelationshipStatus::Active),
        )
        .await;
        assert_eq!(active.status, Some(RelationshipStatus::Active));
        active
    }

    /// Binds a partner group to roles of an active relationship and waits until it is active.
    pub async fn assign(&self, relationship_id: &str, group: &str, roles: &[&str]) {
        let token = self.graph();
        let gdap = &self.clients.gdap;
        let new = NewAccessAssignment {
            access_container: AccessContainer::security_group(group),
            access_details: AccessDetails::from_role_ids(roles.iter().copied()),
        };
        let created = gdap
            .create_access_assignment(&token, relationship_id, &new)
            .await
            .unwrap();
        let active = eventually(
            || async {
                gdap.get_access_assignment(&token, relationship_id, &created.id)
                    .await
                    .unwrap()
            },
            |a| {
                a.status
                    == Some(gdap_operator::microsoft::models::gdap::AccessAssignmentStatus::Active)
            },
        )
        .await;
        assert_eq!(
            active.status,
            Some(gdap_operator::microsoft::models::gdap::AccessAssignmentStatus::Active)
        );
    }
}
