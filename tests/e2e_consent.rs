//! AppConsent end to end: the real kube-apiserver (with kube-controller-manager), the sandbox and
//! the operator binary. The consent waits for its relationship and its settle time (moved on with
//! the sandbox clock, never slept), then succeeds and is verified; a missing resource service
//! principal is reported and created on request; a revocation is noticed within one verification
//! period and repaired only with `reconsent: Automatic`; no MFA, no consent-capable role and
//! Microsoft Graph app roles without a privileged role are reported with the admin-consent link;
//! certificate credentials work; deletion removes or orphans as asked. Every test ends by checking
//! the sandbox's request log: no write was made with an app-only token.
//!
//! The sandbox lags like Microsoft (its default consistency): reads show a write a few seconds
//! late, a consent takes effect after a propagation delay, a new GDAP role reaches Entra late.
//! The waits that need Microsoft to catch up move the sandbox clock while the operator looks
//! again (`wait_consent_moving`, `ready_relationship`), never sleep; the waits for states that a
//! moving clock would skip (the settle time) do not move it. tests/e2e_lag_consent.rs counts the
//! writes under that lag.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::api::AppConsent;
use gdap_operator::sandbox::{RefreshTokenFixture, SandboxOptions, defaults};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::operator::{ChartRbac, World, condition, poll_until};

const MINUTE: Duration = Duration::from_secs(60);
/// `--consent-verify-interval` of these tests.
const VERIFY: Duration = Duration::from_secs(4);
/// `--consent-settle-time` of these tests; the sandbox clock moves past it.
const SETTLE_SECONDS: f64 = 60.0;
const APP_ADMINS: &str = defaults::APP_ADMINS_GROUP_ID;
const FABRIKAM: &str = defaults::FABRIKAM_TENANT_ID;
const CONTOSO: &str = defaults::CONTOSO_TENANT_ID;
const O365: &str = defaults::apps::OFFICE365_MANAGEMENT;
const GRAPH: &str = defaults::apps::MICROSOFT_GRAPH;
/// A second refresh token of the partner admin (its own rotation chain), for a second Secret.
const SECOND_SESSION: &str = "consent-second-session";

async fn start(prefix: &str) -> World {
    let mut options = SandboxOptions::default();
    options.fixture.apps[0]
        .refresh_tokens
        .push(RefreshTokenFixture {
            user: defaults::PARTNER_ADMIN_UPN.into(),
            token: SECOND_SESSION.into(),
            mfa: true,
        });
    let verify = format!("{}s", VERIFY.as_secs());
    let settle = format!("{SETTLE_SECONDS}s");
    World::start_with_args(
        prefix,
        options,
        &[
            "--consent-verify-interval",
            &verify,
            "--consent-settle-time",
            &settle,
        ],
    )
    .await
}

fn relationship(name: &str, customer: &str, roles: &str, extra: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {customer}\n  roles: [{roles}]\n  duration: P60D\n  accessAssignments:\n    - securityGroupId: {APP_ADMINS}\n      roles: [{roles}]\n{extra}"
    )
}

fn consent(name: &str, customer: &str, grants: &str, extra: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: AppConsent\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {customer}\n  applicationId: {}\n  displayName: Partner reporting\n  grants:\n{grants}{extra}",
        defaults::PARTNER_CLIENT_ID
    )
}

/// Microsoft Graph: a delegated scope and an application permission.
const GRAPH_GRANT: &str =
    "    - resource: Microsoft Graph\n      scopes: [User.Read]\n      appRoles: [User.Read.All]\n";

fn consents(world: &World) -> Api<AppConsent> {
    Api::namespaced(world.client.clone(), &world.namespace)
}

/// A condition of an AppConsent: (status, reason, message).
fn cond(object: &AppConsent, type_: &str) -> Option<(String, String, String)> {
    let c = object
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn has(object: &AppConsent, type_: &str, status: &str, reason: &str) -> bool {
    cond(object, type_).is_some_and(|(s, r, _)| s == status && r == reason)
}

async fn wait_consent<T>(
    world: &World,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&AppConsent) -> Option<T>,
) -> T {
    let api = consents(world);
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(object) = api.get(name).await
            && let Some(value) = check(&object)
        {
            return value;
        }
        if Instant::now() > deadline {
            let now = api.get(name).await.ok().and_then(|o| o.status);
            panic!(
                "timed out waiting for {what} on {name}; status: {}\noperator log: {}",
                serde_json::to_string_pretty(&now).unwrap(),
                world.operator_log()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Like [`wait_consent`], moving the sandbox clock `CATCH_UP` seconds whenever the operator has
/// looked twice more without `check` holding: through Microsoft's read lag and propagation
/// delays, without sleeping.
async fn wait_consent_moving<T>(
    world: &World,
    name: &str,
    what: &str,
    check: impl Fn(&AppConsent) -> Option<T>,
) -> T {
    let api = consents(world);
    let deadline = Instant::now() + 2 * MINUTE;
    let mut last = looks(world, "AppConsent").await;
    loop {
        if let Ok(object) = api.get(name).await
            && let Some(value) = check(&object)
        {
            return value;
        }
        if Instant::now() > deadline {
            let now = api.get(name).await.ok().and_then(|o| o.status);
            panic!(
                "timed out waiting for {what} on {name} (moving the sandbox clock); status: {}\noperator log: {}",
                serde_json::to_string_pretty(&now).unwrap(),
                world.operator_log()
            );
        }
        let now = looks(world, "AppConsent").await;
        if now >= last + 2.0 {
            world.advance_clock(CATCH_UP).await;
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reconciles of `kind` the operator has finished (0 while it does not answer, e.g. restarting).
async fn looks(world: &World, kind: &str) -> f64 {
    let prefix = format!("gdap_reconciles_total{{kind=\"{kind}\"");
    world
        .metrics_text()
        .await
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// How far the sandbox clock moves at a time while a wait needs Microsoft to catch up.
const CATCH_UP: f64 = 10.0;

async fn wait_ready(world: &World, name: &str) -> AppConsent {
    wait_consent_moving(world, name, "Ready", |o| {
        has(o, "Ready", "True", "Reconciled").then(|| o.clone())
    })
    .await
}

/// Waits until `check` holds on the GdapRelationship `name`, moving the sandbox clock 2 s
/// whenever the operator has looked twice more (little, so the consent's settle time is not
/// passed by the way).
async fn wait_relationship<T>(
    world: &World,
    name: &str,
    what: &str,
    check: impl Fn(&gdap_operator::api::GdapRelationship) -> Option<T>,
) -> T {
    let deadline = Instant::now() + MINUTE;
    let mut last = looks(world, "GdapRelationship").await;
    loop {
        if let Ok(object) = world.relationships().get(name).await
            && let Some(value) = check(&object)
        {
            return value;
        }
        if Instant::now() > deadline {
            let now = world
                .relationships()
                .get(name)
                .await
                .ok()
                .and_then(|o| o.status);
            panic!(
                "timed out waiting for {what} on {name}; status: {}\noperator log: {}",
                serde_json::to_string_pretty(&now).unwrap(),
                world.operator_log()
            );
        }
        let now = looks(world, "GdapRelationship").await;
        if now >= last + 2.0 {
            world.advance_clock(2.0).await;
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Applies a GdapRelationship, approves it as the customer and waits until it is Ready.
async fn ready_relationship(world: &World, manifest: &str, name: &str) -> String {
    world.apply(manifest);
    let id = wait_relationship(world, name, "approvalPending", |o| {
        let s = o.status.as_ref()?;
        (s.state.as_deref() == Some("approvalPending"))
            .then(|| s.relationship_id.clone())
            .flatten()
    })
    .await;
    let status = world
        .control(&format!("relationships/{id}/approve"), json!({}))
        .await;
    assert!(status.is_success(), "approve: {status}");
    wait_relationship(world, name, "Ready", |o| {
        (condition(o, "Ready")?.0 == "True").then_some(())
    })
    .await;
    id
}

/// The Fabrikam relationship that gives the partner user Application and Privileged Role
/// Administrator, Ready, with the sandbox clock moved past the settle time; its relationship id.
async fn fabrikam_apps_ready(world: &World, extra: &str) -> String {
    let roles = "Application Administrator, Privileged Role Administrator";
    let manifest = relationship("fabrikam-apps", FABRIKAM, roles, extra);
    let id = ready_relationship(world, &manifest, "fabrikam-apps").await;
    settle(world).await;
    id
}

/// Moves the sandbox's clock past the settle time.
async fn settle(world: &World) {
    world.advance_clock(SETTLE_SECONDS + 1.0).await;
}

/// The sandbox's view of a customer tenant.
async fn tenant(world: &World, id: &str) -> Value {
    world.state().await["tenants"][id].clone()
}

fn service_principal(tenant: &Value, app_id: &str) -> Option<String> {
    tenant["servicePrincipals"]
        .as_array()?
        .iter()
        .find(|sp| sp["appId"] == app_id)
        .map(|sp| sp["id"].as_str().unwrap().to_string())
}

/// The delegated scopes granted to the partner app (all resources).
fn granted_scopes(tenant: &Value) -> Vec<String> {
    let Some(app) = service_principal(tenant, defaults::PARTNER_CLIENT_ID) else {
        return Vec::new();
    };
    tenant["grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["clientId"] == app.as_str())
        .flat_map(|g| {
            g["scope"]
                .as_str()
                .unwrap()
                .split(' ')
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// How many application permissions the partner app holds.
fn app_roles(tenant: &Value) -> usize {
    let Some(app) = service_principal(tenant, defaults::PARTNER_CLIENT_ID) else {
        return 0;
    };
    tenant["appRoleAssignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["principalId"] == app.as_str())
        .count()
}

/// No write reached Microsoft with an app-only token: every logged write carried the partner
/// user's delegated token (the request log records the token's kind, never the token).
async fn assert_writes_were_delegated(world: &World) {
    let log = world.http_get("requests").await;
    let writes: Vec<&Value> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] != "GET" && !r["path"].as_str().unwrap().contains("/oauth2/"))
        .collect();
    assert!(!writes.is_empty(), "the scenario wrote to Microsoft");
    let app_only: Vec<&&Value> = writes.iter().filter(|r| r["token"] != "user").collect();
    assert!(
        app_only.is_empty(),
        "writes without the delegated token: {app_only:?}"
    );
}

/// Argo CD's health of the live object, by the chart's health.lua.
fn argocd_health(world: &World, name: &str) -> (String, String) {
    let object = live(world, name);
    support::argocd::health("AppConsent", &object)
}

fn live(world: &World, name: &str) -> Value {
    let out = world.kubectl(&["get", "appconsent", name, "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Keeps the live object as YAML in `$GDAP_CAPTURE_DIR/<file>` when that is set (how the Argo CD
/// health check's testdata were taken).
fn capture(world: &World, name: &str, file: &str) {
    let Ok(dir) = std::env::var("GDAP_CAPTURE_DIR") else {
        return;
    };
    let mut object = live(world, name);
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = serde_yaml::to_string(&object).unwrap();
    std::fs::write(std::path::Path::new(&dir).join(file), yaml).unwrap();
}

/// Waits until the AppConsent `name` is gone, moving the sandbox clock through the read lag
/// whenever the operator has looked twice more (deletion waits for Graph to show each removal).
async fn wait_deleted(world: &World, name: &str) {
    let api = consents(world);
    let deadline = Instant::now() + MINUTE;
    let mut last = looks(world, "AppConsent").await;
    while !matches!(api.get_opt(name).await, Ok(None)) {
        assert!(
            Instant::now() < deadline,
            "{name} was not deleted; operator log: {}",
            world.operator_log()
        );
        let now = looks(world, "AppConsent").await;
        if now >= last + 2.0 {
            world.advance_clock(READ_LAG).await;
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn healthy_metric(world: &World, name: &str) -> Option<String> {
    consent_gauge(world, "healthy", name).await
}

/// Waits until `gdap_consent_healthy` of `name` is `value` (the metric follows the status write).
async fn wait_metric(world: &World, name: &str, value: &str) {
    poll_until(&format!("gdap_consent_healthy {value}"), MINUTE, || async {
        (healthy_metric(world, name).await.as_deref() == Some(value)).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_waits_for_the_relationship_and_its_settle_time_then_succeeds_and_is_verified() {
    let world = start("e2e-consent").await;
    let roles = "Application Administrator, Privileged Role Administrator";
    world.apply(&consent(
        "reporting",
        FABRIKAM,
        GRAPH_GRANT,
        "  relationshipRef:\n    name: fabrikam-apps\n",
    ));
    let message = wait_consent(&world, "reporting", "waiting for the object", MINUTE, |o| {
        let (s, r, m) = cond(o, "PrerequisitesMet")?;
        (s == "False" && r == "RelationshipNotActive" && m.contains("does not exist")).then_some(m)
    })
    .await;
    assert!(message.contains("fabrikam-apps"), "{message}");
    capture(
        &world,
        "reporting",
        "progressing_waiting_for_relationship.yaml",
    );
    assert_eq!(argocd_health(&world, "reporting").0, "Progressing");

    ready_relationship(
        &world,
        &relationship("fabrikam-apps", FABRIKAM, roles, ""),
        "fabrikam-apps",
    )
    .await;
    let message = wait_consent(&world, "reporting", "Settling", MINUTE, |o| {
        let (s, r, m) = cond(o, "PrerequisitesMet")?;
        (s == "False" && r == "Settling").then_some(m)
    })
    .await;
    assert!(message.contains("--consent-settle-time 1m"), "{message}");
    capture(&world, "reporting", "progressing_settling.yaml");
    assert_eq!(argocd_health(&world, "reporting").0, "Progressing");
    assert!(
        service_principal(&tenant(&world, FABRIKAM).await, defaults::PARTNER_CLIENT_ID).is_none(),
        "nothing is consented while the relationship settles"
    );

    settle(&world).await;
    wait_ready(&world, "reporting").await;
    let wait = world.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "appconsent/reporting",
        "--timeout=60s",
    ]);
    assert!(
        wait.status.success(),
        "kubectl wait: {}\n{}",
        String::from_utf8_lossy(&wait.stderr),
        world.operator_log()
    );
    let object = consents(&world).get("reporting").await.unwrap();
    let status = object.status.clone().unwrap();
    assert!(status.consented_at.is_some() && status.last_verified_at.is_some());
    let relationship = status.relationship.clone().unwrap();
    assert_eq!(relationship.object_name.as_deref(), Some("fabrikam-apps"));
    assert!(
        relationship
            .roles
            .contains(&"Application Administrator".to_string())
    );
    for t in [
        "PrerequisitesMet",
        "ServicePrincipalsPresent",
        "Consented",
        "Synced",
    ] {
        assert_eq!(
            cond(&object, t).unwrap().0,
            "True",
            "{t}: {:?}",
            cond(&object, t)
        );
    }
    assert!(status.manual_consent_url.is_none());
    let fabrikam = tenant(&world, FABRIKAM).await;
    let scopes = granted_scopes(&fabrikam);
    assert!(
        [
            "User.Read",
            "Application.ReadWrite.All",
            "AppRoleAssignment.ReadWrite.All"
        ]
        .iter()
        .all(|s| scopes.contains(&s.to_string())),
        "the spec's scope and the operator's own: {scopes:?}"
    );
    assert_eq!(app_roles(&fabrikam), 1, "User.Read.All");
    let events = world.events("reporting");
    for reason in ["Consented:", "AppRoleGranted:"] {
        assert!(
            events.iter().any(|e| e.starts_with(reason)),
            "{reason} in {events:?}"
        );
    }
    wait_metric(&world, "reporting", "1").await;
    assert_eq!(argocd_health(&world, "reporting").0, "Healthy");
    capture(&world, "reporting", "healthy.yaml");

    // Verified again every interval while steady.
    let first = status.last_verified_at.unwrap();
    wait_consent(&world, "reporting", "a later verification", MINUTE, |o| {
        let at = o.status.as_ref()?.last_verified_at.clone()?;
        (at.0 > first.0).then_some(())
    })
    .await;
    let posts = world.count_requests("POST", "/applicationconsents").await;
    assert_eq!(
        posts, 1,
        "one Partner Center consent; verification only reads"
    );
    assert_writes_were_delegated(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_service_principal_is_reported_precisely_and_created_on_request() {
    let world = start("e2e-consent-sp").await;
    ready_relationship(
        &world,
        &relationship("fabrikam-sp", FABRIKAM, "Application Administrator", ""),
        "fabrikam-sp",
    )
    .await;
    settle(&world).await;
    let grants = "    - resource: Microsoft Graph\n      scopes: [User.Read]\n    - resource: Office 365 Management APIs\n      appRoles: [ActivityFeed.Read]\n";
    let manifest = consent("activity", FABRIKAM, grants, "");
    world.apply(&manifest);
    let message = wait_consent_moving(&world, "activity", "ServicePrincipalsPresent=False", |o| {
        let (s, r, m) = cond(o, "ServicePrincipalsPresent")?;
        (s == "False" && r == "ServicePrincipalsMissing").then_some(m)
    })
    .await;
    assert!(
        message.contains("Office 365 Management APIs") && message.contains("not licensed"),
        "{message}"
    );
    let object = consents(&world).get("activity").await.unwrap();
    let status = object.status.clone().unwrap();
    assert_eq!(status.missing_service_principals, [O365]);
    assert_eq!(
        cond(&object, "Ready").unwrap().1,
        "ServicePrincipalsMissing"
    );
    assert_eq!(
        status
            .relationship
            .unwrap()
            .display_name
            .as_deref()
            .map(|n| n.starts_with("fabrikam-sp")),
        Some(true),
        "found without spec.relationshipRef"
    );
    assert!(
        service_principal(&tenant(&world, FABRIKAM).await, O365).is_none(),
        "not created without the option"
    );
    capture(
        &world,
        "activity",
        "degraded_service_principals_missing.yaml",
    );
    assert_eq!(argocd_health(&world, "activity").0, "Degraded");

    world.apply(&format!(
        "{manifest}  createMissingServicePrincipals: true\n"
    ));
    let object = wait_ready(&world, "activity").await;
    assert!(object.status.unwrap().missing_service_principals.is_empty());
    let fabrikam = tenant(&world, FABRIKAM).await;
    assert!(service_principal(&fabrikam, O365).is_some());
    assert_eq!(
        app_roles(&fabrikam),
        1,
        "Application Administrator may grant ActivityFeed.Read"
    );
    assert!(
        world
            .events("activity")
            .iter()
            .any(|e| e.starts_with("ServicePrincipalCreated:")
                && e.contains("Office 365 Management APIs"))
    );
    assert_writes_were_delegated(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_consent_capable_role_or_a_privileged_role_the_manual_link_is_published() {
    let world = start("e2e-consent-manual").await;
    ready_relationship(
        &world,
        &relationship("fabrikam-readers", FABRIKAM, "Directory Readers", ""),
        "fabrikam-readers",
    )
    .await;
    settle(&world).await;
    world.apply(&consent("reading", FABRIKAM, GRAPH_GRANT, ""));
    let message = wait_consent(&world, "reading", "NoConsentCapableRole", MINUTE, |o| {
        let (s, r, m) = cond(o, "PrerequisitesMet")?;
        (s == "False" && r == "NoConsentCapableRole").then_some(m)
    })
    .await;
    assert!(
        message.contains("Directory Readers")
            && message.contains("Cloud Application Administrator"),
        "{message}"
    );
    let object = consents(&world).get("reading").await.unwrap();
    let url = object.status.clone().unwrap().manual_consent_url.unwrap();
    assert_eq!(
        url,
        format!(
            "{}/{FABRIKAM}/adminconsent?client_id={}",
            world.sandbox.base_url(),
            defaults::PARTNER_CLIENT_ID
        )
    );
    assert_eq!(cond(&object, "Ready").unwrap().1, "NoConsentCapableRole");
    assert_eq!(
        world.count_requests("POST", "/applicationconsents").await,
        0
    );
    capture(&world, "reading", "degraded_no_consent_capable_role.yaml");

    // Application Administrator arrives through a second relationship: the delegated consent
    // goes through, Microsoft Graph's application permission needs more.
    ready_relationship(
        &world,
        &relationship("fabrikam-apps", FABRIKAM, "Application Administrator", ""),
        "fabrikam-apps",
    )
    .await;
    settle(&world).await;
    let message = wait_consent_moving(&world, "reading", "PrivilegedRoleRequired", |o| {
        let (s, r, m) = cond(o, "Consented")?;
        (s == "False" && r == "PrivilegedRoleRequired").then_some(m)
    })
    .await;
    assert!(
        message.contains("User.Read.All of Microsoft Graph")
            && message.contains("Global Administrator or Privileged Role Administrator")
            && message.contains("holds only")
            && message.contains("Application Administrator")
            && message.contains("Directory Readers"),
        "{message}"
    );
    let object = consents(&world).get("reading").await.unwrap();
    assert_eq!(object.status.clone().unwrap().manual_consent_url, Some(url));
    assert_eq!(cond(&object, "PrerequisitesMet").unwrap().0, "True");
    let fabrikam = tenant(&world, FABRIKAM).await;
    assert!(granted_scopes(&fabrikam).contains(&"User.Read".to_string()));
    assert_eq!(
        app_roles(&fabrikam),
        0,
        "nothing granted that Entra reserves"
    );
    let (health, health_message) = argocd_health(&world, "reading");
    assert_eq!(health, "Degraded", "{health_message}");
    capture(&world, "reading", "degraded_privileged_role_required.yaml");
    assert_writes_were_delegated(&world).await;
}

/// Past the sandbox's longest read lag (5 s by default): Graph's reads show a change made before.
const READ_LAG: f64 = 6.0;

async fn revoke(world: &World, customer: &str) {
    let path = format!(
        "tenants/{customer}/consents/{}/revoke",
        defaults::PARTNER_CLIENT_ID
    );
    assert!(world.control(&path, json!({})).await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_is_noticed_within_one_verification_period_and_repaired_only_when_automatic() {
    let world = start("e2e-consent-revoke").await;
    ready_relationship(
        &world,
        &relationship("contoso-admin", CONTOSO, "Global Administrator", ""),
        "contoso-admin",
    )
    .await;
    settle(&world).await;
    let grants = "    - resource: Microsoft Graph\n      scopes: [User.Read.All]\n      appRoles: [User.Read.All, LicenseAssignment.Read.All]\n";
    let manifest = consent(
        "contoso-reads",
        CONTOSO,
        grants,
        "  relationshipRef:\n    name: contoso-admin\n",
    );
    world.apply(&manifest);
    wait_ready(&world, "contoso-reads").await;
    assert!(
        world
            .events("contoso-reads")
            .iter()
            .any(|e| e.starts_with("Consented:") && e.contains("replaced")),
        "Contoso's existing consent lacked User.Read.All and was replaced: {:?}",
        world.events("contoso-reads")
    );

    let revoked_at = chrono::Utc::now();
    revoke(&world, CONTOSO).await;
    world.advance_clock(READ_LAG).await;
    let object = wait_consent(&world, "contoso-reads", "Revoked", MINUTE, |o| {
        has(o, "Consented", "False", "Revoked").then(|| o.clone())
    })
    .await;
    let noticed = object
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Consented")
        .unwrap()
        .last_transition_time
        .0;
    let after = noticed.as_second() - revoked_at.timestamp();
    assert!(
        after <= VERIFY.as_secs() as i64 + 3,
        "noticed {after} s after the revocation; the verification interval is {VERIFY:?}"
    );
    let (_, _, message) = cond(&object, "Consented").unwrap();
    assert!(message.contains("reconsent: Automatic"), "{message}");
    assert_eq!(cond(&object, "Ready").unwrap().1, "Revoked");
    assert!(
        world
            .events("contoso-reads")
            .iter()
            .any(|e| e.starts_with("Revoked:")),
        "a Warning event: {:?}",
        world.events("contoso-reads")
    );
    wait_metric(&world, "contoso-reads", "0").await;
    assert_eq!(argocd_health(&world, "contoso-reads").0, "Degraded");
    capture(&world, "contoso-reads", "degraded_revoked.yaml");

    // Report (the default) changes nothing, however often the operator looks.
    let consents_made = || async {
        world.count_requests("POST", "/applicationconsents").await
            + world.count_requests("POST", "/appRoleAssignedTo").await
    };
    let before = consents_made().await;
    let start = world.reconciles_of("AppConsent").await;
    poll_until("three more AppConsent reconciles", MINUTE, || async {
        (world.reconciles_of("AppConsent").await >= start + 3.0).then_some(())
    })
    .await;
    assert_eq!(consents_made().await, before, "nothing was consented again");
    let contoso = tenant(&world, CONTOSO).await;
    assert!(granted_scopes(&contoso).is_empty() && app_roles(&contoso) == 0);

    world.apply(&format!("{manifest}  reconsent: Automatic\n"));
    wait_ready(&world, "contoso-reads").await;
    let contoso = tenant(&world, CONTOSO).await;
    assert!(granted_scopes(&contoso).contains(&"User.Read.All".to_string()));
    assert_eq!(app_roles(&contoso), 2);

    // With Automatic a later revocation is repaired by itself, within the next verification
    // (the Revoked status lasts only while the repair runs, so the proof is in Microsoft).
    let consents_before = world.count_requests("POST", "/applicationconsents").await;
    let revoked_at = k8s_openapi::jiff::Timestamp::now();
    revoke(&world, CONTOSO).await;
    assert_eq!(app_roles(&tenant(&world, CONTOSO).await), 0);
    world.advance_clock(READ_LAG).await;
    wait_consent_moving(
        &world,
        "contoso-reads",
        "Ready after a later verification",
        |o| {
            let verified = o.status.as_ref()?.last_verified_at.clone()?;
            (has(o, "Ready", "True", "Reconciled") && verified.0 > revoked_at).then_some(())
        },
    )
    .await;
    assert_eq!(
        world.count_requests("POST", "/applicationconsents").await,
        consents_before + 1,
        "consented again through Partner Center"
    );
    assert_eq!(app_roles(&tenant(&world, CONTOSO).await), 2);
    wait_metric(&world, "contoso-reads", "1").await;
    assert_writes_were_delegated(&world).await;
}

async fn second_secret(world: &World, name: &str, refresh_token: &str, certificate: bool) {
    let mut data = json!({
        "partnerTenantId": defaults::PARTNER_TENANT_ID,
        "clientId": defaults::PARTNER_CLIENT_ID,
        "refreshToken": refresh_token,
    });
    if certificate {
        data["clientCertificate"] = json!(defaults::PARTNER_CLIENT_CERTIFICATE_PEM);
        data["clientKey"] = json!(defaults::PARTNER_CLIENT_KEY_PEM);
    } else {
        data["clientSecret"] = json!(defaults::PARTNER_CLIENT_SECRET);
    }
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data})).unwrap();
    world
        .secrets()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_without_mfa_is_reported_as_mfa_required_with_the_manual_link() {
    let world = start("e2e-consent-mfa").await;
    second_secret(
        &world,
        "no-mfa",
        defaults::PARTNER_NO_MFA_REFRESH_TOKEN,
        false,
    )
    .await;
    ready_relationship(
        &world,
        &relationship("fabrikam-apps", FABRIKAM, "Application Administrator", ""),
        "fabrikam-apps",
    )
    .await;
    settle(&world).await;
    world.apply(&consent(
        "no-mfa",
        FABRIKAM,
        "    - resource: Microsoft Graph\n      scopes: [User.Read]\n",
        "  credentialsRef:\n    name: no-mfa\n",
    ));
    let object = wait_consent_moving(&world, "no-mfa", "MfaRequired", |o| {
        has(o, "Consented", "False", "MfaRequired").then(|| o.clone())
    })
    .await;
    let (_, _, message) = cond(&object, "Consented").unwrap();
    assert!(
        message.contains("900421") && message.contains("complete MFA"),
        "{message}"
    );
    assert_eq!(cond(&object, "Ready").unwrap().1, "MfaRequired");
    let status = object.status.unwrap();
    assert!(
        status
            .manual_consent_url
            .unwrap()
            .contains("/adminconsent?client_id=")
    );
    assert!(status.failed_attempts >= 1);
    assert_eq!(argocd_health(&world, "no-mfa").0, "Degraded");
    capture(&world, "no-mfa", "degraded_mfa_required.yaml");

    // A Secret that does not exist is invalid credentials, said with the Secret's name.
    world.apply(&consent(
        "no-secret",
        FABRIKAM,
        "    - resource: Microsoft Graph\n      scopes: [User.Read]\n",
        "  credentialsRef:\n    name: absent\n",
    ));
    let message = wait_consent(&world, "no-secret", "CredentialsInvalid", MINUTE, |o| {
        let (s, r, m) = cond(o, "Ready")?;
        (s == "False" && r == "CredentialsInvalid").then_some(m)
    })
    .await;
    assert!(
        message.contains("absent") && message.contains("not found"),
        "{message}"
    );
    capture(&world, "no-secret", "degraded_credentials_invalid.yaml");
    assert!(
        service_principal(&tenant(&world, FABRIKAM).await, defaults::PARTNER_CLIENT_ID).is_none()
    );
    assert_writes_were_delegated(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_no_operator_watches_has_no_status_and_is_progressing() {
    let cp = support::controlplane::get();
    let namespace = cp.namespace("e2e-consent-unwatched");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("consent.yaml");
    std::fs::write(&file, consent("unwatched", FABRIKAM, GRAPH_GRANT, "")).unwrap();
    cp.kubectl_ok(&["apply", "-n", &namespace, "-f", file.to_str().unwrap()]);
    let out = cp.kubectl_ok(&[
        "get",
        "appconsent",
        "unwatched",
        "-n",
        &namespace,
        "-o",
        "json",
    ]);
    let mut object: Value = serde_json::from_str(&out).unwrap();
    assert!(object.get("status").is_none());
    assert_eq!(
        support::argocd::health("AppConsent", &object),
        (
            "Progressing".into(),
            "Waiting for the operator to reconcile".into()
        )
    );
    if let Ok(dir) = std::env::var("GDAP_CAPTURE_DIR") {
        object["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        let path = std::path::Path::new(&dir).join("progressing_no_status.yaml");
        std::fs::write(path, serde_yaml::to_string(&object).unwrap()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_credentials_work_end_to_end() {
    let world = start("e2e-consent-cert").await;
    second_secret(&world, "by-certificate", SECOND_SESSION, true).await;
    let by_certificate = "  credentialsRef:\n    name: by-certificate\n";
    ready_relationship(
        &world,
        &relationship(
            "fabrikam-cert",
            FABRIKAM,
            "Application Administrator, Privileged Role Administrator",
            by_certificate,
        ),
        "fabrikam-cert",
    )
    .await;
    settle(&world).await;
    world.apply(&consent(
        "cert",
        FABRIKAM,
        GRAPH_GRANT,
        &format!("{by_certificate}  relationshipRef:\n    name: fabrikam-cert\n"),
    ));
    wait_ready(&world, "cert").await;
    let secret = world.secrets().get("by-certificate").await.unwrap();
    let data = secret.data.unwrap();
    assert!(
        !data.contains_key("clientSecret"),
        "no client secret to fall back on"
    );
    assert_ne!(
        String::from_utf8(data["refreshToken"].0.clone()).unwrap(),
        SECOND_SESSION,
        "the certificate-authenticated grants rotated the refresh token"
    );
    assert_eq!(app_roles(&tenant(&world, FABRIKAM).await), 1);
    assert_writes_were_delegated(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_removes_the_consent_or_orphans_it_under_the_charts_rbac() {
    let mut world = start("e2e-consent-delete").await;
    world.run_operator_under_the_charts_rbac(ChartRbac::ClusterWide);
    fabrikam_apps_ready(&world, "  deletionPolicy: Orphan\n").await;
    let manifest = consent("removable", FABRIKAM, GRAPH_GRANT, "");
    world.apply(&manifest);
    wait_ready(&world, "removable").await;
    assert_eq!(app_roles(&tenant(&world, FABRIKAM).await), 1);

    // Only the AppConsent uses the Secret once the relationship's object is gone: it stays held.
    let out = world.kubectl(&["delete", "gdap", "fabrikam-apps", "--timeout=60s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finalizers = |s: Secret| s.metadata.finalizers.unwrap_or_default();
    let held = finalizers(world.secrets().get("partner-credentials").await.unwrap());
    assert!(
        held.contains(&"gdap.io/credentials-in-use".to_string()),
        "{held:?}"
    );

    let out = world.kubectl(&["delete", "appconsent", "removable", "--wait=false"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_deleted(&world, "removable").await;
    let fabrikam = tenant(&world, FABRIKAM).await;
    assert!(
        granted_scopes(&fabrikam).is_empty(),
        "Partner Center DELETE removed the grants"
    );
    assert_eq!(
        app_roles(&fabrikam),
        0,
        "the application permission was removed"
    );
    poll_until("the Secret released", MINUTE, || async {
        let s = world.secrets().get("partner-credentials").await.ok()?;
        (!finalizers(s).contains(&"gdap.io/credentials-in-use".to_string())).then_some(())
    })
    .await;

    world.apply(&format!("{manifest}  deletionPolicy: Orphan\n"));
    wait_ready(&world, "removable").await;
    world.kill_operator();
    let out = world.kubectl(&["delete", "appconsent", "removable", "--wait=false"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    capture(&world, "removable", "progressing_deleting.yaml");
    assert_eq!(argocd_health(&world, "removable").0, "Progressing");
    world.start_operator();
    let out = world.kubectl(&[
        "wait",
        "--for=delete",
        "appconsent/removable",
        "--timeout=60s",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fabrikam = tenant(&world, FABRIKAM).await;
    assert!(
        granted_scopes(&fabrikam).contains(&"User.Read".to_string()),
        "Orphan leaves it"
    );
    assert_eq!(app_roles(&fabrikam), 1);
    let log = world.operator_log().to_lowercase();
    assert!(
        !log.contains("forbidden"),
        "a forbidden call under the chart's RBAC:\n{log}"
    );
    assert!(
        world
            .events("removable")
            .iter()
            .any(|e| e.starts_with("Released:") && e.contains("Orphan"))
    );
    assert_writes_were_delegated(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_change_adds_a_grant_without_calling_it_a_revocation() {
    let mut world = start("e2e-consent-edit").await;
    fabrikam_apps_ready(&world, "").await;
    world.apply(&consent("growing", FABRIKAM, GRAPH_GRANT, ""));
    wait_ready(&world, "growing").await;
    let more = "    - resource: Microsoft Graph\n      scopes: [User.Read, Directory.Read.All]\n      appRoles: [User.Read.All, Organization.Read.All]\n";
    world.kill_operator();
    world.apply(&consent("growing", FABRIKAM, more, ""));
    capture(&world, "growing", "progressing_new_generation.yaml");
    assert_eq!(argocd_health(&world, "growing").0, "Progressing");
    world.start_operator();
    let object = wait_consent_moving(&world, "growing", "Ready at generation 2", |o| {
        let ready = has(o, "Ready", "True", "Reconciled");
        (ready && o.status.as_ref()?.verified_generation == Some(2)).then(|| o.clone())
    })
    .await;
    assert!(
        !world
            .events("growing")
            .iter()
            .any(|e| e.starts_with("Revoked:"))
    );
    let fabrikam = tenant(&world, FABRIKAM).await;
    assert!(granted_scopes(&fabrikam).contains(&"Directory.Read.All".to_string()));
    assert_eq!(app_roles(&fabrikam), 2);
    assert_eq!(object.metadata.generation, Some(2));
    let patch = json!({"spec": {"grants": [{"resource": GRAPH, "scopes": ["User.Read"]}, {"resource": "Microsoft Graph", "scopes": ["User.Read"]}]}});
    let refused = consents(&world)
        .patch("growing", &PatchParams::default(), &Patch::Merge(&patch))
        .await;
    assert!(refused.is_ok(), "the API server accepts two spellings");
    let message = wait_consent(&world, "growing", "InvalidSpec", MINUTE, |o| {
        let (s, r, m) = cond(o, "Synced")?;
        (s == "False" && r == "InvalidSpec").then_some(m)
    })
    .await;
    assert!(message.contains("spec.grants[1].resource"), "{message}");
    assert_writes_were_delegated(&world).await;
}

/// A gauge of the AppConsent `name` (`gdap_consent_<series>`), as the operator exports it.
async fn consent_gauge(world: &World, series: &str, name: &str) -> Option<String> {
    let prefix = format!(
        "gdap_consent_{series}{{namespace=\"{}\",name=\"{name}\"",
        world.namespace
    );
    world
        .metrics()
        .await
        .lines()
        .find(|l| l.starts_with(&prefix))
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
}

/// Writes that change what the app may do in a customer tenant.
async fn consent_writes(world: &World) -> usize {
    let mut total = 0;
    for (method, part) in [
        ("POST", "/applicationconsents"),
        ("DELETE", "/applicationconsents"),
        ("POST", "/appRoleAssignedTo"),
        ("DELETE", "/appRoleAssignedTo"),
    ] {
        total += world.count_requests(method, part).await;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_the_spec_revokes_what_it_no_longer_gives_and_observe_only_reports() {
    let world = start("e2e-consent-narrow").await;
    fabrikam_apps_ready(&world, "").await;
    let wide = "    - resource: Microsoft Graph\n      scopes: [User.Read, Directory.Read.All]\n      appRoles: [User.Read.All, Organization.Read.All]\n";
    world.apply(&consent("narrowing", FABRIKAM, wide, ""));
    wait_ready(&world, "narrowing").await;
    let fabrikam = tenant(&world, FABRIKAM).await;
    assert!(granted_scopes(&fabrikam).contains(&"Directory.Read.All".to_string()));
    assert_eq!(app_roles(&fabrikam), 2);

    let narrow = "    - resource: Microsoft Graph\n      scopes: [User.Read]\n      appRoles: [User.Read.All]\n";
    world.apply(&consent("narrowing", FABRIKAM, narrow, ""));
    wait_consent_moving(&world, "narrowing", "Ready at generation 2", |o| {
        let ready = has(o, "Ready", "True", "Reconciled");
        (ready && o.status.as_ref()?.verified_generation == Some(2)).then_some(())
    })
    .await;
    let fabrikam = tenant(&world, FABRIKAM).await;
    let scopes = granted_scopes(&fabrikam);
    assert!(
        !scopes.contains(&"Directory.Read.All".to_string())
            && scopes.contains(&"User.Read".to_string()),
        "the delegated permission left the spec and the tenant: {scopes:?}"
    );
    assert_eq!(app_roles(&fabrikam), 1, "Organization.Read.All was removed");
    // `kubectl get` for people: the customer's name from Microsoft, the relationship relied on,
    // and why the object is (not) Ready.
    for kind in ["appconsent/narrowing", "gdap/fabrikam-apps"] {
        let out = world.kubectl(&["get", kind]);
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(
            table.contains("CUSTOMER NAME") && table.contains("Fabrikam Inc"),
            "{table}"
        );
        assert!(table.contains("REASON"), "{table}");
    }
    let out = world.kubectl(&["get", "appconsent", "narrowing"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("fabrikam-apps-") && table.contains("Reconciled"),
        "the relationship relied on and the Ready reason: {table}"
    );
    let events = world.events("narrowing");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("AppRoleRevoked:") && e.contains("Organization.Read.All")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("ScopesRevoked:")
                && e.to_lowercase().contains("directory.read.all")),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.starts_with("Revoked:")),
        "{events:?}"
    );

    // managementPolicy: Observe reports what the spec no longer gives and changes nothing.
    let writes = consent_writes(&world).await;
    let observed = "    - resource: Microsoft Graph\n      scopes: [User.Read]\n";
    world.apply(&consent(
        "narrowing",
        FABRIKAM,
        observed,
        "  managementPolicy: Observe\n",
    ));
    let message = wait_consent(&world, "narrowing", "ExcessAccess", MINUTE, |o| {
        let (s, r, m) = cond(o, "Ready")?;
        (s == "False" && r == "ExcessAccess").then_some(m)
    })
    .await;
    assert!(
        message.contains("application permission User.Read.All of Microsoft Graph"),
        "{message}"
    );
    let object = consents(&world).get("narrowing").await.unwrap();
    assert!(has(&object, "Consented", "True", "Reconciled"));
    let start = world.reconciles_of("AppConsent").await;
    poll_until("three more AppConsent reconciles", MINUTE, || async {
        (world.reconciles_of("AppConsent").await >= start + 3.0).then_some(())
    })
    .await;
    assert_eq!(
        consent_writes(&world).await,
        writes,
        "Observe wrote nothing"
    );
    assert_eq!(app_roles(&tenant(&world, FABRIKAM).await), 1);
    assert_eq!(argocd_health(&world, "narrowing").0, "Degraded");
    capture(&world, "narrowing", "degraded_excess_access.yaml");
    assert_writes_were_delegated(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_relationship_is_no_revocation_and_deletion_names_what_it_cannot_remove() {
    let world = start("e2e-consent-lapsed").await;
    let id = fabrikam_apps_ready(&world, "").await;
    let grants = "    - resource: Microsoft Graph\n      scopes: [User.Read]\n      appRoles: [User.Read.All, Directory.Read.All]\n";
    world.apply(&consent(
        "stranded",
        FABRIKAM,
        grants,
        "  relationshipRef:\n    name: fabrikam-apps\n",
    ));
    wait_ready(&world, "stranded").await;

    // The relationship ends outside the operator: the consent cannot be verified any more, and
    // says why — it was not revoked, and the revoked-consent alert stays silent.
    let ended = world
        .control(&format!("relationships/{id}/terminate"), json!({}))
        .await;
    assert!(ended.is_success(), "terminate: {ended}");
    let (reason, message) = wait_consent_moving(&world, "stranded", "not verifiable", |o| {
        let (s, r, m) = cond(o, "Consented")?;
        (s == "False" && r != "Reconciled").then_some((r, m))
    })
    .await;
    assert!(
        reason == "RelationshipNotActive" || reason == "NoConsentCapableRole",
        "{reason}: {message}"
    );
    let start = world.reconciles_of("AppConsent").await;
    poll_until("three more AppConsent reconciles", MINUTE, || async {
        (world.reconciles_of("AppConsent").await >= start + 3.0).then_some(())
    })
    .await;
    let object = consents(&world).get("stranded").await.unwrap();
    assert_ne!(cond(&object, "Consented").unwrap().1, "Revoked");
    assert!(
        !world
            .events("stranded")
            .iter()
            .any(|e| e.starts_with("Revoked:")),
        "{:?}",
        world.events("stranded")
    );
    assert_eq!(
        consent_gauge(&world, "revoked", "stranded")
            .await
            .as_deref(),
        Some("0")
    );

    // Deleting it now: the partner user has no GDAP access left, the app-only token shows what
    // the app still holds; the object stays, says what remains and what to do, and counts it.
    let out = world.kubectl(&["delete", "appconsent", "stranded", "--wait=false"]);
    assert!(out.status.success());
    let message = wait_consent_moving(&world, "stranded", "PermissionsRemain", |o| {
        let (s, r, m) = cond(o, "Ready")?;
        (s == "False" && r == "PermissionsRemain").then_some(m)
    })
    .await;
    for part in [
        "application permission User.Read.All of Microsoft Graph",
        "application permission Directory.Read.All of Microsoft Graph",
        "delegated",
        "enterprise application",
        "deletionPolicy: Orphan",
    ] {
        assert!(message.contains(part), "{part} missing: {message}");
    }
    poll_until("gdap_consent_permissions_left 3", MINUTE, || async {
        (consent_gauge(&world, "permissions_left", "stranded")
            .await
            .as_deref()
            == Some("3"))
        .then_some(())
    })
    .await;
    assert!(
        world
            .events("stranded")
            .iter()
            .any(|e| e.starts_with("PermissionsRemain:")),
        "{:?}",
        world.events("stranded")
    );
    assert_eq!(argocd_health(&world, "stranded").0, "Degraded");
    capture(&world, "stranded", "degraded_permissions_remain.yaml");
    let fabrikam = tenant(&world, FABRIKAM).await;
    assert_eq!(app_roles(&fabrikam), 2, "nothing could be removed");

    // The customer's admin removes the enterprise application: nothing is left, released.
    let removed = world
        .delete_control(&format!(
            "tenants/{FABRIKAM}/servicePrincipals/{}",
            defaults::PARTNER_CLIENT_ID
        ))
        .await;
    assert!(removed.is_success(), "{removed}");
    wait_deleted(&world, "stranded").await;
    let events = world.events("stranded");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("Released:") && e.contains("holds nothing")),
        "{events:?}"
    );
    assert_writes_were_delegated(&world).await;
}
