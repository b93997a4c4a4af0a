//! Secrets (issue 15). Unique secret strings are seeded — client secrets (a valid one and a
//! wrong one), a certificate's private key, refresh tokens (and every rotated one the Secrets
//! held), the access tokens the sandbox issues — and the operator runs its scenarios with every
//! log level on (`--log-level trace`, dependencies included): relationships to Ready with each
//! credential form, a consent, a refused client secret, a deletion. None of the strings may
//! appear in the operator's log, the namespace's events, any object's status, the metrics or an
//! error message. And a namespace's objects can never make the operator use another namespace's
//! credentials: the API server's audit log shows the other Secret never read.
//!
//! The PostgreSQL password is the test server's own (it accepts only TLS with a SCRAM password,
//! so the server really checks it), in three connection Secrets that also hold the CA under
//! `caKey`: a TenantSync imports into the test's real PostgreSQL through one (verify-full), one
//! fails to connect (no server on that port), and one is refused because its CA did not sign
//! the server's certificate, so the scan covers the password on the import's path, in the
//! sink's error and in a TLS refusal.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::api::{AppConsent, TenantSync};
use gdap_operator::sandbox::{RefreshTokenFixture, SandboxOptions, UsersFixture, defaults};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::operator::{ChartRbac, World, condition, poll_until};

const MINUTE: Duration = Duration::from_secs(60);
const CONTOSO: &str = defaults::CONTOSO_TENANT_ID;
const FABRIKAM: &str = defaults::FABRIKAM_TENANT_ID;

fn unique(what: &str) -> String {
    format!("{what}-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh RSA key and self-signed certificate (PEM), from openssl.
fn certificate() -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        ])
        .args(["-subj", "/CN=gdap-operator-secrets-test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read_to_string(cert).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    )
}

/// The seeded secrets of one run.
struct Seeds {
    client_secret: String,
    wrong_client_secret: String,
    certificate: String,
    key: String,
    refresh_secret_form: String,
    refresh_certificate_form: String,
    refresh_wrong: String,
    postgres_password: String,
}

impl Seeds {
    fn new() -> Seeds {
        let (certificate, key) = certificate();
        Seeds {
            client_secret: unique("client-secret"),
            wrong_client_secret: unique("wrong-client-secret"),
            certificate,
            key,
            refresh_secret_form: unique("refresh-token-a"),
            refresh_certificate_form: unique("refresh-token-b"),
            refresh_wrong: unique("refresh-token-c"),
            // The throwaway server's password (it checks it).
            postgres_password: support::postgres::local().password().to_string(),
        }
    }

    fn sandbox_options(&self) -> SandboxOptions {
        let mut options = SandboxOptions::default();
        // Fabrikam gets a user, so the import into PostgreSQL has something to write.
        let fabrikam = options
            .fixture
            .customers
            .iter_mut()
            .find(|c| c.tenant_id == FABRIKAM)
            .unwrap();
        let user = json!({"userPrincipalName": "ada@fabrikam.example", "displayName": "Ada"});
        fabrikam.users = UsersFixture::Listed(vec![user.as_object().unwrap().clone()]);
        let app = &mut options.fixture.apps[0];
        app.secrets.push(self.client_secret.clone());
        app.certificates.push(self.certificate.clone());
        for token in [
            &self.refresh_secret_form,
            &self.refresh_certificate_form,
            &self.refresh_wrong,
        ] {
            app.refresh_tokens.push(RefreshTokenFixture {
                user: defaults::PARTNER_ADMIN_UPN.into(),
                token: token.clone(),
                mfa: true,
            });
        }
        options
    }

    /// Every string that must never be published: the seeds, the key's base64 lines, and the
    /// built-in fixture's own secret and first refresh token.
    fn needles(&self) -> Vec<String> {
        let mut needles = vec![
            self.client_secret.clone(),
            self.wrong_client_secret.clone(),
            self.refresh_secret_form.clone(),
            self.refresh_certificate_form.clone(),
            self.refresh_wrong.clone(),
            self.postgres_password.clone(),
            defaults::PARTNER_CLIENT_SECRET.to_string(),
            defaults::PARTNER_REFRESH_TOKEN.to_string(),
        ];
        needles.extend(
            self.key
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 40)
                .map(str::to_string),
        );
        needles
    }
}

async fn credentials(world: &World, name: &str, data: Value) {
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data})).unwrap();
    world
        .secrets()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

fn partner(refresh_token: &str) -> Value {
    json!({
        "partnerTenantId": defaults::PARTNER_TENANT_ID,
        "clientId": defaults::PARTNER_CLIENT_ID,
        "refreshToken": refresh_token,
    })
}

/// Collects every refresh token the namespace's Secrets hold, every 100 ms, until stopped.
fn watch_refresh_tokens(world: &World) -> (Arc<Mutex<BTreeSet<String>>>, Arc<Mutex<bool>>) {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(Mutex::new(false));
    let secrets = world.secrets();
    let (into, until) = (seen.clone(), stop.clone());
    tokio::spawn(async move {
        while !*until.lock().unwrap() {
            if let Ok(list) = secrets.list(&Default::default()).await {
                for s in list.items {
                    if let Some(token) = s.data.and_then(|d| d.get("refreshToken").cloned()) {
                        into.lock()
                            .unwrap()
                            .insert(String::from_utf8_lossy(&token.0).into_owned());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (seen, stop)
}

fn relationship(name: &str, customer: &str, roles: &str, credentials: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {customer}\n  credentialsRef:\n    name: {credentials}\n  roles: [{roles}]\n  duration: P60D\n  accessAssignments:\n    - securityGroupId: {}\n      roles: [{roles}]\n",
        defaults::APP_ADMINS_GROUP_ID
    )
}

async fn ready(world: &World, name: &str) {
    let id = world
        .wait_for(name, "approvalPending", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.state.as_deref() == Some("approvalPending"))
                .then(|| s.relationship_id.clone())
                .flatten()
        })
        .await;
    let approved = world
        .control(&format!("relationships/{id}/approve"), json!({}))
        .await;
    assert!(approved.is_success());
    world
        .wait_for(name, "Ready", MINUTE, |o| {
            (condition(o, "Ready")?.0 == "True").then_some(())
        })
        .await;
}

/// Where a secret could surface: the operator's log, the namespace's events and objects
/// (status, conditions, annotations), and the metrics.
async fn published(world: &World) -> Vec<(&'static str, String)> {
    let events = world.kubectl(&["get", "events", "-o", "json"]);
    let objects = world.kubectl(&["get", "gdap,appconsent,tenantsync", "-o", "json"]);
    vec![
        ("the operator's log", world.operator_log()),
        (
            "events",
            String::from_utf8_lossy(&events.stdout).into_owned(),
        ),
        (
            "objects",
            String::from_utf8_lossy(&objects.stdout).into_owned(),
        ),
        ("metrics", world.metrics().await),
    ]
}

/// A TenantSync `name` of Fabrikam into the PostgreSQL of the connection Secret `name`, asking
/// for one import at once.
fn postgres_sync(name: &str, schema: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: TenantSync\nmetadata:\n  name: {name}\n  annotations:\n    gdap.io/sync-now: \"1\"\nspec:\n  customer:\n    tenantId: {FABRIKAM}\n  credentialsRef:\n    name: certificate-form\n  appConsentRef:\n    name: reporting\n  schedule: \"@daily\"\n  sink:\n    postgres:\n      connectionSecretRef:\n        name: {name}\n        caKey: ca.crt\n      schema: {schema}\n"
    )
}

/// Waits until the TenantSync `name`'s import ended with `Synced` = `synced`; returns the
/// condition's reason and message.
async fn sync_outcome(world: &World, name: &str, synced: &str) -> String {
    let syncs: Api<TenantSync> = Api::namespaced(world.client.clone(), &world.namespace);
    let deadline = std::time::Instant::now() + 2 * MINUTE;
    loop {
        let status = syncs.get(name).await.ok().and_then(|o| o.status);
        let ended = status.as_ref().and_then(|status| {
            let condition = status.conditions.iter().find(|c| c.type_ == "Synced")?;
            (status.last_sync_request.as_deref() == Some("1") && condition.status == synced)
                .then(|| format!("{}: {}", condition.reason, condition.message))
        });
        if let Some(ended) = ended {
            return ended;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the import of {name} did not end with Synced={synced}; status: {status:?}"
        );
        // Through the sandbox's consent propagation (the app-only roles of a new consent).
        world.advance_clock(2.0).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A JWT (an access token, an assertion): a header (`eyJ` and at least 10 more base64url
/// characters), a payload and a signature, joined by dots. Graph's delta and page tokens (base64
/// of JSON too, but one segment; continuation tokens, not credentials) do not match.
fn jwt_in(text: &str) -> Option<String> {
    let re =
        regex::Regex::new(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*").unwrap();
    re.find(text).map(|m| m.as_str().to_string())
}

#[test]
fn the_jwt_pattern_finds_a_token_but_not_a_graph_delta_token() {
    let token =
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLWJ5dGVz";
    assert_eq!(
        jwt_in(&format!("Authorization: Bearer {token}\n")).as_deref(),
        Some(token)
    );
    let delta = "$deltatoken=eyJrIjoiYyIsInAiOjAsImZyb20iOjEsInRvIjoyfQ";
    assert_eq!(jwt_in(&format!("GET /v1.0/users/delta?{delta}")), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_events_status_metrics_or_messages_at_any_log_level() {
    let seeds = Seeds::new();
    let mut world = World::prepare("secrets", seeds.sandbox_options()).await;
    world.log_level = "trace".into();
    world.operator_args = ["--consent-settle-time", "1s"].map(String::from).to_vec();
    let mut with_secret = partner(&seeds.refresh_secret_form);
    with_secret["clientSecret"] = json!(seeds.client_secret);
    credentials(&world, "secret-form", with_secret).await;
    let mut with_certificate = partner(&seeds.refresh_certificate_form);
    with_certificate["clientCertificate"] = json!(seeds.certificate);
    with_certificate["clientKey"] = json!(seeds.key);
    credentials(&world, "certificate-form", with_certificate).await;
    let mut wrong = partner(&seeds.refresh_wrong);
    wrong["clientSecret"] = json!(seeds.wrong_client_secret);
    credentials(&world, "wrong-secret", wrong).await;
    // The TenantSync controller reads these URLs (and their password) when an import starts.
    let pg = support::postgres::local();
    let schema = pg.fresh_schema("secrets");
    let url = pg.url_with(
        Some(&seeds.postgres_password),
        "127.0.0.1",
        "sslmode=verify-full",
    );
    let ca = pg.ca_pem().unwrap();
    credentials(&world, "warehouse", json!({"url": url, "ca.crt": ca})).await;
    credentials(
        &world,
        "nowhere",
        json!({"url": format!("postgres://gdap:{}@127.0.0.1:1/gdap", seeds.postgres_password), "ca.crt": ca}),
    )
    .await;
    credentials(
        &world,
        "untrusted",
        json!({"url": url, "ca.crt": pg.other_ca_pem()}),
    )
    .await;
    let (rotated, stop) = watch_refresh_tokens(&world);
    world.start_operator();

    let roles = "Application Administrator, Privileged Role Administrator";
    world.apply(&relationship(
        "with-secret",
        CONTOSO,
        "Directory Readers",
        "secret-form",
    ));
    world.apply(&relationship(
        "with-certificate",
        FABRIKAM,
        roles,
        "certificate-form",
    ));
    world.apply(&relationship(
        "wrong",
        CONTOSO,
        "Global Reader",
        "wrong-secret",
    ));
    world.apply(&format!(
        "apiVersion: gdap.io/v1alpha1\nkind: AppConsent\nmetadata:\n  name: reporting\nspec:\n  customer:\n    tenantId: {FABRIKAM}\n  applicationId: {}\n  credentialsRef:\n    name: certificate-form\n  relationshipRef:\n    name: with-certificate\n  grants:\n    - resource: Microsoft Graph\n      scopes: [User.Read]\n      appRoles: [User.Read.All, LicenseAssignment.Read.All, Organization.Read.All]\n",
        defaults::PARTNER_CLIENT_ID
    ));
    world.apply(&postgres_sync("warehouse", &schema));
    world.apply(&postgres_sync("nowhere", &schema));
    world.apply(&postgres_sync("untrusted", &schema));
    ready(&world, "with-secret").await;
    ready(&world, "with-certificate").await;
    let consents: Api<AppConsent> = Api::namespaced(world.client.clone(), &world.namespace);
    // Microsoft (the sandbox) propagates a consent and GDAP access with a delay: move its clock
    // through it while the operator keeps looking.
    poll_until("the consent Ready", 2 * MINUTE, || async {
        world.advance_clock(5.0).await;
        let o = consents.get("reporting").await.ok()?;
        o.status?
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            .then_some(())
    })
    .await;
    let imported = sync_outcome(&world, "warehouse", "True").await;
    let users: i64 = pg
        .client()
        .await
        .query_one(
            &format!("SELECT count(*) FROM {schema}.users WHERE tenant_id = $1"),
            &[&FABRIKAM],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        users > 0,
        "the import reached PostgreSQL ({imported}); users: {users}"
    );
    let sink_error = sync_outcome(&world, "nowhere", "False").await;
    assert!(
        sink_error.contains("PostgreSQL") && sink_error.contains("connect"),
        "the sink's failure is reported: {sink_error}"
    );
    let tls_refused = sync_outcome(&world, "untrusted", "False").await;
    assert!(
        tls_refused.starts_with("SinkTLSRefused: ")
            && tls_refused.contains(&format!(
                "not signed by the CA in Secret {}/untrusted key ca.crt",
                world.namespace
            )),
        "the TLS refusal is reported in words: {tls_refused}"
    );
    let refused = world
        .wait_for("wrong", "CredentialsInvalid", MINUTE, |o| {
            let (status, reason, message) = condition(o, "Synced")?;
            (status == "False" && reason == "CredentialsInvalid").then_some(message)
        })
        .await;
    assert!(
        refused.contains("7000215"),
        "Entra's code is named: {refused}"
    );
    let out = world.kubectl(&["delete", "gdap", "with-secret", "--timeout=60s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    *stop.lock().unwrap() = true;
    let mut needles = seeds.needles();
    needles.extend(rotated.lock().unwrap().iter().cloned());
    assert!(
        needles.iter().any(|n| n.starts_with("sandbox-rt-")),
        "rotated refresh tokens were collected"
    );
    let log = world.operator_log();
    assert!(
        log.contains(" TRACE ") || log.contains("TRACE"),
        "the operator logged at trace level"
    );
    for (place, text) in published(&world).await {
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "a secret ({}…) appears in {place}",
                &needle[..needle.len().min(12)]
            );
        }
        assert_eq!(
            jwt_in(&text).map(|t| t[..12].to_string()),
            None,
            "a JWT appears in {place}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_naming_another_namespaces_secret_gets_credentials_invalid_and_it_is_never_read()
{
    let token = unique("other-namespace-refresh-token");
    let mut options = SandboxOptions::default();
    options.fixture.apps[0]
        .refresh_tokens
        .push(RefreshTokenFixture {
            user: defaults::PARTNER_ADMIN_UPN.into(),
            token: token.clone(),
            mfa: true,
        });
    let mut world = World::prepare("isolation", options).await;
    let other = world.cp.namespace("isolation-other");
    let mut data = partner(&token);
    data["clientSecret"] = json!(defaults::PARTNER_CLIENT_SECRET);
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "other-credentials"}, "stringData": data}),
    )
    .unwrap();
    let others: Api<Secret> = Api::namespaced(world.client.clone(), &other);
    others
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // The operator runs under the chart's cluster-wide RBAC, told about other-credentials (so it
    // may read that Secret in every namespace), with its own identity, and watches both
    // namespaces.
    world
        .chart_secrets
        .credentials
        .push("other-credentials".into());
    world.run_operator_under_the_charts_rbac(ChartRbac::ClusterWide);
    poll_until("the operator leads", MINUTE, || async {
        let metrics = world.metrics_text().await?;
        support::metrics::value(&metrics, "gdap_leader")
            .filter(|v| *v == 1.0)
            .map(|_| ())
    })
    .await;
    let stopped = world.stop_operator().await; // SIGTERM releases the Lease at once
    assert!(stopped.success());
    world
        .operator_args
        .extend(["--namespaces".to_string(), other.clone()]);
    world.start_operator();
    let identity = world.operator_identity();

    world.apply(&relationship(
        "borrower",
        CONTOSO,
        "Directory Readers",
        "other-credentials",
    ));
    let message = world
        .wait_for("borrower", "CredentialsInvalid", MINUTE, |o| {
            let (status, reason, message) = condition(o, "Synced")?;
            (status == "False" && reason == "CredentialsInvalid").then_some(message)
        })
        .await;
    assert!(
        message.contains(&format!("{}/other-credentials not found", world.namespace)),
        "{message}"
    );
    world.wait_for_reconciles(2.0).await;
    let borrowed = |world: &World| {
        world
            .secret_requests(&identity, &other, "other-credentials")
            .unwrap_or_default()
    };
    assert_eq!(
        borrowed(&world),
        Vec::<String>::new(),
        "the other namespace's Secret was read"
    );
    let held = others.get("other-credentials").await.unwrap();
    assert!(
        held.metadata.finalizers.unwrap_or_default().is_empty(),
        "the other namespace's Secret is not held"
    );
    assert!(
        world.sandbox_relationships().await.is_empty(),
        "nothing was created with the other namespace's credentials"
    );
    let state = world.state().await;
    let redeemed = state["refreshTokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["redeemedAt"].is_null())
        .count();
    assert_eq!(redeemed, 0, "no refresh token was used");

    // Once the other namespace uses its Secret itself (the operator now holds clients for it),
    // the borrower still gets nothing: the clients are kept per namespace and name.
    let lender = relationship("lender", CONTOSO, "Directory Readers", "other-credentials");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), lender).unwrap();
    world
        .cp
        .kubectl_ok(&["apply", "-n", &other, "-f", file.path().to_str().unwrap()]);
    let lenders: Api<gdap_operator::api::GdapRelationship> =
        Api::namespaced(world.client.clone(), &other);
    poll_until("the lender's relationship", MINUTE, || async {
        let o = lenders.get("lender").await.ok()?;
        (o.status?.state.as_deref() == Some("approvalPending")).then_some(())
    })
    .await;
    assert!(
        !borrowed(&world).is_empty() || world.cp.audit_log().is_none(),
        "the lender's own reads are in the audit log"
    );
    world.wait_for_reconciles(2.0).await;
    let object = world.relationships().get("borrower").await.unwrap();
    assert_eq!(
        condition(&object, "Synced").unwrap().1,
        "CredentialsInvalid"
    );
    assert!(object.status.unwrap().relationship_id.is_none());
    assert_eq!(
        world.sandbox_relationships().await.len(),
        1,
        "only the lender's"
    );
}
