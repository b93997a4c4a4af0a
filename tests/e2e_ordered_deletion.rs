//! Ordered deletion (issue 22): deleting a namespace that holds a GdapRelationship, an AppConsent
//! relying on it and a TenantSync removes the consent first — the application's permissions and
//! delegated grants in the customer tenant — then terminates the relationship, then releases the
//! credentials Secret, and the namespace goes away. Real kube-apiserver (with
//! kube-controller-manager, whose namespace controller marks the objects for deletion in no
//! particular order), the sandbox, and the operator binary under the chart's cluster-wide RBAC.
//!
//! To make the race the namespace controller may run deterministic, a ValidatingAdmissionPolicy
//! refuses the deletion of the AppConsent for a while: the relationship is marked for deletion
//! while the consent is not, and must wait for it because its Namespace is being deleted. Then
//! the policy goes, the namespace controller marks the consent, and the order is checked.
//!
//! The sandbox lags like Microsoft: the consent's removal waits for Graph to show each write, so
//! the wait for the namespace moves the sandbox clock whenever the operator has looked twice
//! more, never sleeps. The order is read from the sandbox's request log.
//!
//! With `GDAP_CAPTURE_DIR` set, the relationship waiting for the consent is kept there as YAML
//! (how `charts/gdap-operator/argocd/gdap.io/GdapRelationship/testdata/progressing_waiting_for_consents.yaml`
//! was taken).
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::api::AppConsent;
use gdap_operator::sandbox::{SandboxOptions, defaults};
use kube::api::Api;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::operator::{ChartRbac, World, condition, poll_until};
use support::sync::{
    CONSENT, CONTOSO, MINUTE, RELATIONSHIP, consent_manifest, file_sink, make_consent_ready,
    sync_manifest,
};

/// How long the namespace may take to go away once deleted.
const NAMESPACE_DEADLINE: Duration = Duration::from_secs(180);
/// How far the sandbox clock moves at a time while the deletion needs Microsoft to catch up.
const CATCH_UP: f64 = 10.0;
const RELATIONSHIPS: &str = "/v1.0/tenantRelationships/delegatedAdminRelationships";

/// The sandbox's view of the customer tenant.
async fn tenant(world: &World) -> Value {
    world.state().await["tenants"][CONTOSO].clone()
}

/// The partner app's service principal in `tenant`.
fn app_principal(tenant: &Value) -> Option<String> {
    tenant["servicePrincipals"]
        .as_array()?
        .iter()
        .find(|sp| sp["appId"] == defaults::PARTNER_CLIENT_ID)
        .map(|sp| sp["id"].as_str().unwrap().to_string())
}

/// The partner app's delegated grants and application permissions in `tenant`.
fn app_access(tenant: &Value) -> (usize, usize) {
    let Some(app) = app_principal(tenant) else {
        return (0, 0);
    };
    let count = |field: &str, key: &str| {
        tenant[field].as_array().map_or(0, |all| {
            all.iter().filter(|x| x[key] == app.as_str()).count()
        })
    };
    (
        count("grants", "clientId"),
        count("appRoleAssignments", "principalId"),
    )
}

/// The live relationship object, as kubectl shows it.
fn live(world: &World, name: &str) -> Value {
    let out = world.kubectl(&["get", "gdap", name, "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Keeps `object` as YAML in `$GDAP_CAPTURE_DIR/<file>` when that is set.
fn capture(mut object: Value, file: &str) {
    let Ok(dir) = std::env::var("GDAP_CAPTURE_DIR") else {
        return;
    };
    let metadata = object["metadata"].as_object_mut().unwrap();
    metadata.remove("managedFields");
    if let Some(a) = metadata
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = serde_yaml::to_string(&object).unwrap();
    std::fs::write(std::path::Path::new(&dir).join(file), yaml).unwrap();
}

/// Waits until the namespace is gone, moving the sandbox clock `CATCH_UP` seconds whenever the
/// operator has looked twice more.
async fn wait_namespace_gone(world: &World) {
    let deadline = Instant::now() + NAMESPACE_DEADLINE;
    let mut last = world.reconciles_all().await;
    loop {
        let out = world.cp.kubectl(&["get", "namespace", &world.namespace]);
        if !out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the namespace is still there after {NAMESPACE_DEADLINE:?}: {}\noperator log:\n{}",
            String::from_utf8_lossy(
                &world
                    .kubectl(&["get", "gdap,appconsent,tenantsync,secret", "-o", "yaml"])
                    .stdout
            ),
            support::fleet::tail(&world.operator_log(), 60)
        );
        let now = world.reconciles_all().await;
        if now >= last + 2.0 {
            world.advance_clock(CATCH_UP).await;
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The admission policy that refuses deleting the world's AppConsents; removed when dropped
/// (also when the test fails), so the namespace can go.
struct Hold {
    cp: &'static support::controlplane::ControlPlane,
    name: String,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.cp.kubectl(&[
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            &self.name,
            "--ignore-not-found",
        ]);
    }
}

/// Refuses every DELETE of the world's AppConsents (a ValidatingAdmissionPolicy bound to its
/// namespace) until the returned hold is dropped; returns once the API server enforces it.
async fn hold_consents(world: &World) -> Hold {
    let name = format!("hold-{}", world.namespace);
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["gdap.io"], "apiVersions": ["*"],
                "operations": ["DELETE"], "resources": ["appconsents"],
            }]},
            "validations": [{"expression": "false", "message": "held by the test"}],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": world.namespace,
            }}},
        },
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hold.json");
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [policy, binding]});
    std::fs::write(&file, list.to_string()).unwrap();
    world
        .cp
        .kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    let hold = Hold {
        cp: world.cp,
        name: name.clone(),
    };
    poll_until(
        "the API server to refuse deleting the AppConsent",
        MINUTE,
        || async {
            let out = world.kubectl(&["delete", "appconsent", CONSENT, "--dry-run=server"]);
            let refused = String::from_utf8_lossy(&out.stderr).contains("held by the test");
            (!out.status.success() && refused).then_some(())
        },
    )
    .await;
    hold
}

/// Positions in the request log of the consent's removal writes and of the relationship's
/// terminate requests.
fn positions(log: &[(String, String)], relationship_id: &str) -> (Vec<usize>, Vec<usize>) {
    let terminate = format!("{RELATIONSHIPS}/{relationship_id}/requests");
    let mut removals = Vec::new();
    let mut terminates = Vec::new();
    for (i, (method, path)) in log.iter().enumerate() {
        let removal = method == "DELETE"
            && (path.contains("appRoleAssign") || path.contains("/applicationconsents"));
        if removal {
            removals.push(i);
        }
        if method == "POST" && path == &terminate {
            terminates.push(i);
        }
    }
    (removals, terminates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_namespace_removes_the_consent_before_the_relationship_is_terminated() {
    let mut world = World::start("e2e-ordered", SandboxOptions::default()).await;
    world.run_operator_under_the_charts_rbac(ChartRbac::ClusterWide);
    let dir = tempfile::tempdir().unwrap();
    world.apply(&consent_manifest(CONTOSO));
    world.apply(&sync_manifest(
        "users",
        CONTOSO,
        "@daily",
        &file_sink(dir.path()),
        "",
    ));
    make_consent_ready(&world, CONSENT).await;
    let relationship_id = world
        .relationships()
        .get(RELATIONSHIP)
        .await
        .unwrap()
        .status
        .unwrap()
        .relationship_id
        .unwrap();
    let (grants, roles) = app_access(&tenant(&world).await);
    assert!(
        grants > 0 && roles > 0,
        "the consent granted delegated and application permissions: {grants} grants, {roles} app role assignments"
    );
    assert_eq!(
        world.delete_control("requests").await.as_u16(),
        204,
        "clearing the request log"
    );
    let hold = hold_consents(&world).await;

    let out = world
        .cp
        .kubectl(&["delete", "namespace", &world.namespace, "--wait=false"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The namespace controller marked the relationship but could not mark the consent: the
    // relationship waits for it all the same, and says so.
    let message = world
        .wait_for(RELATIONSHIP, "waiting for the AppConsent", MINUTE, |o| {
            let (status, reason, message) = condition(o, "Synced")?;
            (o.metadata.deletion_timestamp.is_some()
                && status == "True"
                && reason == "Terminating"
                && message.contains(&format!("AppConsent(s) {CONSENT} ")))
            .then_some(message)
        })
        .await;
    assert!(message.contains("remove their consents first"), "{message}");
    let consents: Api<AppConsent> = Api::namespaced(world.client.clone(), &world.namespace);
    let consent = consents.get(CONSENT).await.unwrap();
    assert!(
        consent.metadata.deletion_timestamp.is_none(),
        "the consent is not marked for deletion yet: the relationship waits because the namespace is deleted"
    );
    let object = live(&world, RELATIONSHIP);
    let (health, health_message) = support::argocd::health("GdapRelationship", &object);
    assert_eq!(
        (health.as_str(), health_message.as_str()),
        ("Progressing", message.as_str()),
        "Argo CD shows what deletion waits for"
    );
    capture(object, "progressing_waiting_for_consents.yaml");
    assert_eq!(
        world.sandbox_status(&relationship_id).await.as_deref(),
        Some("active"),
        "nothing was sent to Microsoft meanwhile"
    );
    drop(hold); // the namespace controller marks the consent now

    wait_namespace_gone(&world).await;

    let tenant = tenant(&world).await;
    assert_eq!(
        app_access(&tenant),
        (0, 0),
        "no delegated grant and no application permission of the app is left in the customer tenant"
    );
    assert_eq!(
        world.sandbox_status(&relationship_id).await.as_deref(),
        Some("terminated")
    );
    let log = world.requests().await;
    let (removals, terminates) = positions(&log, &relationship_id);
    assert!(
        log.iter()
            .any(|(m, p)| m == "DELETE" && p.contains("/applicationconsents")),
        "the consent was removed through Partner Center: {log:?}"
    );
    assert!(
        log.iter()
            .any(|(m, p)| m == "DELETE" && p.contains("appRoleAssign")),
        "the application permission was removed: {log:?}"
    );
    let first_terminate = *terminates
        .first()
        .unwrap_or_else(|| panic!("no terminate request: {log:?}"));
    let last_removal = *removals.last().unwrap();
    assert!(
        last_removal < first_terminate,
        "every removal of the consent (requests {removals:?}) came before the relationship's termination (requests {terminates:?}): {log:?}"
    );
    let operator_log = world.operator_log();
    assert!(
        !operator_log.contains("cannot get resource \\\"namespaces\\\"")
            && !operator_log.contains("cannot get resource \"namespaces\""),
        "the chart grants get on namespaces"
    );
}
