//! Tests of `act` and of the import job against the in-process sandbox (the one emulator of
//! Microsoft): the job reads the customer tenant with the app-only token into the sink, a
//! revoked consent is a permanent `AccessDenied`, and a start that cannot dereference its
//! Secrets is a recorded attempt that launches nothing.

use super::act::{Applied, ConnectionError, Launcher, Resources, Target, act};
use super::import::{ImportJob, import};
use super::plan::{Action, Start, Trigger};
use super::runner::Job;
use crate::api::TenantSync;
use crate::api::conditions::reasons;
use crate::api::tenant_sync::{ConnectionSecretRef, TenantSyncSpec};
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::sandbox_world::SandboxWorld;
use crate::sandbox::{SandboxOptions, defaults};
use crate::sync::sink::postgres::Connection;
use crate::sync::{ImportOptions, RunKind};
use async_trait::async_trait;
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use std::sync::Mutex;

const CONTOSO: &str = defaults::CONTOSO_TENANT_ID;

type World = SandboxWorld;

/// A sandbox whose tokens are never reused (their lifetime is the client's refresh margin), so
/// each import starts with a new token, as a scheduled import hours after the last one does:
/// Microsoft's tokens keep the permissions they were issued with until they expire.
async fn world() -> World {
    let options = SandboxOptions {
        token_lifetime: std::time::Duration::from_secs(300),
        ..Default::default()
    };
    SandboxWorld::start(options, defaults::PARTNER_REFRESH_TOKEN).await
}

/// The import of `spec` for Contoso with the world's clients.
fn job(world: &World, spec: &TenantSyncSpec) -> ImportJob {
    ImportJob {
        tenant_id: CONTOSO.into(),
        options: ImportOptions::from_spec(spec, Some(defaults::PARTNER_TENANT_ID.into())),
        sink: spec.sink.clone(),
        postgres: None,
        clients: world.clients.clone(),
    }
}

fn spec(sink: Value) -> TenantSyncSpec {
    serde_json::from_value(json!({
        "customer": {"tenantId": CONTOSO},
        "appConsentRef": {"name": "reporting"},
        "schedule": "@daily",
        "sink": sink,
    }))
    .unwrap()
}

fn file_spec(dir: &std::path::Path) -> TenantSyncSpec {
    spec(json!({"file": {"path": dir.to_str().unwrap()}}))
}

#[tokio::test]
async fn the_job_imports_the_customer_tenant_with_the_app_only_token_into_the_sink() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let report = import(&job(&world, &file_spec(dir.path()))).await.unwrap();
    assert_eq!(report.kind, RunKind::Full);
    assert_eq!(report.users.total, defaults::CONTOSO_USER_COUNT as i64);
    assert!(!report.skus.is_empty());
    let current = dir.path().join(CONTOSO).join("current");
    let users = std::fs::read_to_string(current.join("users.jsonl")).unwrap();
    assert_eq!(users.lines().count(), defaults::CONTOSO_USER_COUNT);
    let log = world.requests().await;
    let tokens: Vec<&str> = log
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/oauth2/v2.0/token"))
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert!(
        !tokens.is_empty()
            && tokens
                .iter()
                .all(|p| *p == format!("/{CONTOSO}/oauth2/v2.0/token")),
        "tokens only from the customer tenant's endpoint (client credentials, app-only): {tokens:?}"
    );
    let graph: Vec<&Value> = log
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/v1.0/"))
        .collect();
    assert!(graph.len() >= 3, "{graph:?}");
    assert!(
        graph
            .iter()
            .all(|r| r["method"] == "GET" && r["priority"] == "low"),
        "only low-priority background reads: {graph:?}"
    );
}

#[tokio::test]
async fn a_revoked_consent_is_a_permanent_access_denied_that_names_the_permission() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let job = job(&world, &file_spec(dir.path()));
    import(&job).await.unwrap();
    world
        .control(&format!(
            "tenants/{CONTOSO}/consents/{}/revoke",
            defaults::PARTNER_CLIENT_ID
        ))
        .await;
    let failure = import(&job).await.unwrap_err();
    assert_eq!(failure.reason, reasons::ACCESS_DENIED);
    assert!(!failure.transient);
    assert!(
        failure.message.contains("application permission")
            && failure.message.contains("AppConsent"),
        "{}",
        failure.message
    );
    let users = dir.path().join(CONTOSO).join("current/users.jsonl");
    assert_eq!(
        std::fs::read_to_string(users).unwrap().lines().count(),
        defaults::CONTOSO_USER_COUNT,
        "the last good data stays"
    );
}

#[tokio::test]
async fn a_postgres_sink_without_its_url_is_misconfigured() {
    let world = world().await;
    let spec = spec(json!({"postgres": {"connectionSecretRef": {"name": "db"}}}));
    let failure = import(&job(&world, &spec)).await.unwrap_err();
    assert_eq!(failure.reason, reasons::SINK_MISCONFIGURED);
    assert!(!failure.transient);
}

/// Kubernetes reads, scripted.
struct Scripted {
    credentials: Option<Credentials>,
    url: Option<&'static str>,
}

#[async_trait]
impl Resources for Scripted {
    async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        self.credentials.clone().ok_or(CredentialsError::Missing {
            namespace: "ns".into(),
            name: "partner-credentials".into(),
        })
    }

    async fn connection_url(
        &self,
        reference: &ConnectionSecretRef,
    ) -> Result<Connection, ConnectionError> {
        self.url
            .map(Connection::url)
            .ok_or(ConnectionError::MissingKey {
                namespace: "ns".into(),
                name: reference.name.clone(),
                key: reference.url_key().into(),
            })
    }
}

#[derive(Default)]
struct Launched(Mutex<Vec<Job>>);

impl Launcher for Launched {
    fn launch(&self, job: Job) {
        self.0.lock().unwrap().push(job);
    }
}

fn start() -> Action {
    Action::Start(Start {
        trigger: Trigger::Requested,
        request: Some("r1".into()),
    })
}

async fn run(
    action: &Action,
    spec: &TenantSyncSpec,
    resources: &Scripted,
    launched: &Launched,
) -> Applied {
    let target = Target {
        spec,
        key: "ns/contoso/uid",
        object: ObjectRef::<TenantSync>::new("contoso").within("ns"),
        resources,
        launcher: launched,
        now: chrono::DateTime::from_timestamp(1_767_000_000, 0).unwrap(),
    };
    act(action, &target).await
}

#[tokio::test]
async fn start_hands_the_job_with_its_secrets_to_the_runner() {
    let world = world().await;
    let credentials = Credentials {
        clients: world.clients.clone(),
        secret: Default::default(),
    };
    let resources = Scripted {
        credentials: Some(credentials),
        url: Some("postgres://gdap@127.0.0.1:1/db"),
    };
    let launched = Launched::default();
    let spec = spec(json!({"postgres": {"connectionSecretRef": {"name": "db"}, "schema": "s"}}));
    assert_eq!(
        run(&start(), &spec, &resources, &launched).await,
        Applied::Started
    );
    let job = launched.0.lock().unwrap().pop().expect("one job");
    assert_eq!(
        (job.key.as_str(), job.request.as_deref()),
        ("ns/contoso/uid", Some("r1"))
    );
    assert_eq!(job.import.tenant_id, CONTOSO);
    assert_eq!(
        job.import.options.partner_tenant_id.as_deref(),
        Some(defaults::PARTNER_TENANT_ID)
    );
    assert_eq!(
        job.import.postgres.as_ref().map(|c| c.url.expose()),
        Some("postgres://gdap@127.0.0.1:1/db")
    );
    for action in [
        Action::Wait,
        Action::Running,
        Action::Suspended,
        Action::WaitForConsent,
    ] {
        assert_eq!(
            run(&action, &spec, &resources, &launched).await,
            Applied::Nothing
        );
    }
    assert!(launched.0.lock().unwrap().is_empty(), "only Start launches");
    assert!(
        world.requests().await.is_empty(),
        "act itself calls no Microsoft API"
    );
}

#[tokio::test]
async fn a_start_without_its_secrets_is_a_failed_attempt_that_launches_nothing() {
    let world = world().await;
    let launched = Launched::default();
    let no_credentials = Scripted {
        credentials: None,
        url: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let Applied::StartFailed(attempt) =
        run(&start(), &file_spec(dir.path()), &no_credentials, &launched).await
    else {
        panic!("a failed start")
    };
    let failure = attempt.outcome.unwrap_err();
    assert_eq!(
        (failure.reason, failure.transient),
        (reasons::CREDENTIALS_INVALID, false)
    );
    assert_eq!(
        attempt.request.as_deref(),
        Some("r1"),
        "the request is honoured, not retried at once"
    );
    let no_url = Scripted {
        credentials: Some(Credentials {
            clients: world.clients.clone(),
            secret: Default::default(),
        }),
        url: None,
    };
    let spec = spec(json!({"postgres": {"connectionSecretRef": {"name": "db", "key": "dsn"}}}));
    let Applied::StartFailed(attempt) = run(&start(), &spec, &no_url, &launched).await else {
        panic!("a failed start")
    };
    let failure = attempt.outcome.unwrap_err();
    assert_eq!(failure.reason, reasons::SINK_MISCONFIGURED);
    assert!(failure.message.contains("\"dsn\""), "{}", failure.message);
    assert!(launched.0.lock().unwrap().is_empty());
}
