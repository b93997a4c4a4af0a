//! TenantSync end-to-end helpers (tests/e2e_sync.rs): manifests, waits on a TenantSync, the
//! tenant's figures as the plain client lists them, the sink's files, metrics, Argo CD health
//! with testdata capture, and [`make_consent_ready`], which has the AppConsent controller
//! consent the app the way a partner would.

use super::import::{self, Expected};
use super::operator::World;
use gdap_operator::api::{AppConsent, TenantSync, TenantSyncStatus};
use gdap_operator::microsoft::RetryPolicy;
use gdap_operator::sandbox::defaults;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const MINUTE: Duration = Duration::from_secs(60);
pub const NORTHWIND: &str = defaults::NORTHWIND_TENANT_ID;
pub const CONTOSO: &str = defaults::CONTOSO_TENANT_ID;
pub const CONSENT: &str = "reporting";

// ---------------------------------------------------------------------------------------------
// The AppConsent, made Ready by the real controller.
// ---------------------------------------------------------------------------------------------

/// The GdapRelationship the test consents name: it gives the partner admin's group a role that
/// may consent and grant Microsoft Graph application permissions.
pub const RELATIONSHIP: &str = "support";

/// Makes the AppConsent `name` Ready the way a partner does: a GdapRelationship with the
/// customer giving the partner user Application and Privileged Role Administrator, approved by the
/// customer, past the consent settle time (the sandbox's clock moves instead of the test waiting);
/// then the AppConsent controller consents and verifies.
pub async fn make_consent_ready(world: &World, name: &str) {
    let consents: Api<AppConsent> = Api::namespaced(world.client.clone(), &world.namespace);
    let customer = consents.get(name).await.unwrap().spec.customer.tenant_id.0;
    let roles = "Application Administrator, Privileged Role Administrator";
    world.apply(&format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {RELATIONSHIP}\nspec:\n  customer:\n    tenantId: {customer}\n  roles: [{roles}]\n  duration: P60D\n  accessAssignments:\n    - securityGroupId: {}\n      roles: [{roles}]\n",
        defaults::APP_ADMINS_GROUP_ID
    ));
    let id = world
        .wait_for(RELATIONSHIP, "approvalPending", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.state.as_deref() == Some("approvalPending"))
                .then(|| s.relationship_id.clone())
                .flatten()
        })
        .await;
    let approved = world
        .control(&format!("relationships/{id}/approve"), json!({}))
        .await;
    assert!(approved.is_success(), "approve: {approved}");
    world
        .wait_for(RELATIONSHIP, "Ready", MINUTE, |o| {
            let ready = o
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")?;
            (ready.status == "True").then_some(())
        })
        .await;
    world.advance_clock(16.0 * 60.0).await; // past --consent-settle-time (15 minutes)
    super::operator::poll_until("the AppConsent Ready", 2 * MINUTE, || async {
        let consent = consents.get(name).await.ok()?;
        let ready = consent
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == "True").then_some(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Manifests and helpers.
// ---------------------------------------------------------------------------------------------

pub fn consent_manifest(tenant: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: AppConsent\nmetadata:\n  name: {CONSENT}\nspec:\n  customer:\n    tenantId: {tenant}\n  applicationId: {}\n  relationshipRef:\n    name: {RELATIONSHIP}\n  grants:\n    - resource: Microsoft Graph\n      appRoles: [User.Read.All, LicenseAssignment.Read.All, Organization.Read.All]\n",
        defaults::PARTNER_CLIENT_ID
    )
}

pub fn sync_manifest(name: &str, tenant: &str, schedule: &str, sink: &str, extra: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: TenantSync\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {tenant}\n  appConsentRef:\n    name: {CONSENT}\n  schedule: \"{schedule}\"\n  sink:\n{sink}{extra}"
    )
}

pub fn file_sink(path: &Path) -> String {
    format!("    file:\n      path: {}\n", path.display())
}

pub fn syncs(world: &World) -> Api<TenantSync> {
    Api::namespaced(world.client.clone(), &world.namespace)
}

pub fn condition(object: &TenantSync, type_: &str) -> Option<(String, String, String)> {
    let c = object
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub fn status(object: &TenantSync) -> TenantSyncStatus {
    object.status.clone().unwrap_or_default()
}

/// Waits until `check` returns `Some` for the TenantSync `name`.
pub async fn wait_sync<T>(
    world: &World,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&TenantSync) -> Option<T>,
) -> T {
    let api = syncs(world);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(object) = api.get(name).await
            && let Some(value) = check(&object)
        {
            return value;
        }
        if std::time::Instant::now() > deadline {
            let now = api.get(name).await.map(|o| status(&o)).unwrap_or_default();
            panic!(
                "timed out waiting for {what} on {name}; status now: {}",
                serde_json::to_string_pretty(&now).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asks for one import now (a new value of `gdap.io/sync-now`).
pub async fn sync_now(world: &World, name: &str, value: &str) {
    let patch = json!({"metadata": {"annotations": {"gdap.io/sync-now": value}}});
    syncs(world)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Waits until the import asked for with `value` has ended; returns the object.
pub async fn wait_request(world: &World, name: &str, value: &str, timeout: Duration) -> TenantSync {
    wait_sync(
        world,
        name,
        &format!("the import of request {value}"),
        timeout,
        |o| (status(o).last_sync_request.as_deref() == Some(value)).then(|| o.clone()),
    )
    .await
}

/// Clients of the built-in partner for the world's sandbox, to list the tenant independently.
pub fn plain_clients(world: &World) -> gdap_operator::microsoft::MicrosoftClients {
    let log = Arc::new(Mutex::new(Vec::new()));
    let paces = Arc::new(Mutex::new(Vec::new()));
    import::clients(
        &world.sandbox.base_url(),
        RetryPolicy::default(),
        &log,
        &paces,
    )
}

pub async fn expected(world: &World, tenant: &str) -> Expected {
    import::expected_of(&plain_clients(world), tenant).await
}

/// The status figures equal the tenant as Graph lists it: user counts, and per SKU the
/// licences bought (the Enabled subscriptions), assigned (the users holding it), available and
/// the earliest renewal or end of an Enabled or Warning subscription.
pub fn assert_figures(status: &TenantSyncStatus, want: &Expected) {
    let users = status.users.clone().expect("status.users");
    let c = want.counts;
    assert_eq!(
        (
            users.total,
            users.enabled,
            users.licensed,
            users.disabled_licensed,
            users.guests
        ),
        (
            c.total,
            c.enabled,
            c.licensed,
            c.disabled_licensed,
            c.guests
        ),
        "status.users"
    );
    assert_eq!(status.skus.len(), want.skus.len(), "one entry per SKU");
    for sku in &want.skus {
        let part = sku.sku_part_number.clone().unwrap();
        let row = status
            .skus
            .iter()
            .find(|s| s.sku_part_number == part)
            .unwrap_or_else(|| panic!("{part} missing in status.skus"));
        let bought = want.enabled_licences(&sku.sku_id);
        let held = want.holders.get(&sku.sku_id).copied().unwrap_or(0);
        assert_eq!(
            (row.purchased, row.assigned, row.available),
            (bought, held, bought - held),
            "{part}"
        );
        let next = want
            .subscriptions
            .iter()
            .filter(|s| s.sku_id.as_deref() == Some(sku.sku_id.as_str()))
            .filter(|s| matches!(s.status.as_deref(), Some("Enabled" | "Warning")))
            .filter_map(|s| s.next_lifecycle_date_time)
            .min()
            .map(|t| t.timestamp());
        assert_eq!(
            row.next_expiry.as_ref().map(|t| t.0.as_second()),
            next,
            "{part} nextExpiry"
        );
    }
}

/// The value of one series of the operator's metrics.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

pub fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn users_by_id(run: &Path) -> BTreeMap<String, Value> {
    read_jsonl(&run.join("users.jsonl"))
        .into_iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u))
        .collect()
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `<root>/<tenant>/current`, resolved to the run directory it points at.
pub fn current_run(root: &Path, tenant: &str) -> PathBuf {
    std::fs::canonicalize(root.join(tenant).join("current")).expect("a current run")
}

pub const TESTDATA: &str = "charts/gdap-operator/argocd/gdap.io/TenantSync/testdata";

/// Argo CD's health of the live object by the chart's health.lua; with
/// `GDAP_CAPTURE_ARGOCD_TESTDATA` set, the object is also written to `testdata/<file>`.
pub fn argocd_health(world: &World, name: &str, file: &str) -> (String, String) {
    let out = world.kubectl(&["get", "gdapsync", name, "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let object: Value = serde_json::from_slice(&out.stdout).unwrap();
    if std::env::var_os("GDAP_CAPTURE_ARGOCD_TESTDATA").is_some() {
        let path = super::root().join(TESTDATA).join(file);
        std::fs::write(&path, serde_yaml::to_string(&testdata(&object)).unwrap()).unwrap();
    }
    super::argocd::health("TenantSync", &object)
}

/// The object as testdata keeps it: no server bookkeeping.
pub fn testdata(object: &Value) -> Value {
    let meta = &object["metadata"];
    let mut kept = serde_json::Map::new();
    for key in [
        "name",
        "namespace",
        "generation",
        "uid",
        "deletionTimestamp",
        "finalizers",
    ] {
        if !meta[key].is_null() {
            kept.insert(key.into(), meta[key].clone());
        }
    }
    if let Some(value) = meta["annotations"].get("gdap.io/sync-now") {
        kept.insert(
            "annotations".into(),
            json!({"gdap.io/sync-now": value.clone()}),
        );
    }
    let mut out = json!({"apiVersion": object["apiVersion"], "kind": object["kind"], "metadata": kept, "spec": object["spec"]});
    if !object["status"].is_null() {
        out["status"] = object["status"].clone();
    }
    out
}

pub async fn control_ok(world: &World, path: &str, body: Value) {
    let status = world.control(path, body).await;
    assert!(status.is_success(), "POST {path}: {status}");
}

/// GET requests of the users listing served since the log was last emptied.
pub async fn users_pages(world: &World) -> usize {
    world
        .requests()
        .await
        .iter()
        .filter(|(m, p)| m == "GET" && p.starts_with("/v1.0/users"))
        .count()
}
