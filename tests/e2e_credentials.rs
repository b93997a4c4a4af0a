//! One refused credentials Secret reads the same on every kind, end to end: the real
//! kube-apiserver, the sandbox and the operator binary, watching two namespaces.
//!
//! Both namespaces hold a credentials Secret whose certificate was never uploaded to the app
//! registration, so Entra (the sandbox) refuses every grant it signs with AADSTS700027
//! (`CertificateNotAccepted`). In the first, a GdapRelationship, an AppConsent and a TenantSync
//! use it: each one's `Ready` is `False` with `CredentialsInvalid` (one mapping,
//! `controllers::microsoft_failure`, names Microsoft's failures for every controller; the
//! TenantSync, waiting for its AppConsent on the same Secret, carries the AppConsent's reason),
//! the message names the certificate, and Argo CD calls all three Degraded. The second holds
//! only a GdapRelationship: `gdap_credentials_valid` is 0 for the Secret of each namespace, the
//! series the chart's `GdapCredentialsInvalid` alert fires on.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::sandbox::{SandboxOptions, defaults};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use std::time::Duration;
use support::operator::{World, poll_until};

const MINUTE: Duration = Duration::from_secs(60);
/// The credentials Secret with the unregistered certificate, in both namespaces.
const SECRET: &str = "unregistered-certificate";
const FABRIKAM: &str = defaults::FABRIKAM_TENANT_ID;
const ROLES: &str = "Application Administrator, Privileged Role Administrator";

/// A certificate Entra does not know (self-signed now, never uploaded to the app) and its key.
fn unregistered_certificate() -> (String, String) {
    let key_pem = include_str!("../src/sandbox/signing-key.pem");
    let key = rcgen::KeyPair::from_pem(key_pem).unwrap();
    let certificate = rcgen::CertificateParams::new(vec!["not-registered".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    (certificate, key_pem.to_string())
}

/// Creates the Secret [`SECRET`] in `namespace`: the partner's app and user, the unregistered
/// certificate instead of a client secret.
async fn certificate_secret(world: &World, namespace: &str) {
    let (certificate, key) = unregistered_certificate();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": SECRET},
        "stringData": {
            "partnerTenantId": defaults::PARTNER_TENANT_ID,
            "clientId": defaults::PARTNER_CLIENT_ID,
            "clientCertificate": certificate,
            "clientKey": key,
            "refreshToken": defaults::PARTNER_REFRESH_TOKEN,
        }
    }))
    .unwrap();
    Api::<Secret>::namespaced(world.client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// A GdapRelationship with Fabrikam on [`SECRET`].
fn relationship(name: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {FABRIKAM}\n  credentialsRef:\n    name: {SECRET}\n  roles: [{ROLES}]\n  duration: P60D\n  accessAssignments:\n    - securityGroupId: {}\n      roles: [{ROLES}]\n",
        defaults::APP_ADMINS_GROUP_ID
    )
}

/// An AppConsent relying on `relationship`, and a TenantSync importing with it, on [`SECRET`].
fn consent_and_sync(relationship: &str, sink: &std::path::Path) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: AppConsent\nmetadata:\n  name: reporting\nspec:\n  customer:\n    tenantId: {FABRIKAM}\n  applicationId: {app}\n  credentialsRef:\n    name: {SECRET}\n  relationshipRef:\n    name: {relationship}\n  grants:\n    - resource: Microsoft Graph\n      appRoles: [User.Read.All, LicenseAssignment.Read.All, Organization.Read.All]\n---\napiVersion: gdap.io/v1alpha1\nkind: TenantSync\nmetadata:\n  name: fabrikam-users\n  annotations:\n    gdap.io/sync-now: \"1\"\nspec:\n  customer:\n    tenantId: {FABRIKAM}\n  credentialsRef:\n    name: {SECRET}\n  appConsentRef:\n    name: reporting\n  schedule: \"@daily\"\n  sink:\n    file:\n      path: {sink}\n",
        app = defaults::PARTNER_CLIENT_ID,
        sink = sink.display()
    )
}

/// Applies `yaml` in `namespace`.
fn apply(world: &World, namespace: &str, yaml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, yaml).unwrap();
    world
        .cp
        .kubectl_ok(&["apply", "-n", namespace, "-f", file.to_str().unwrap()]);
}

/// The object `kind/name` of `namespace`, as JSON.
fn object(world: &World, namespace: &str, kind: &str, name: &str) -> Value {
    let out = world
        .cp
        .kubectl_ok(&["get", kind, name, "-n", namespace, "-o", "json"]);
    serde_json::from_str(&out).unwrap()
}

/// `(status, reason, message)` of the object's condition `type_`.
fn condition(object: &Value, type_: &str) -> Option<(String, String, String)> {
    let found = object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    let text = |key: &str| found[key].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

/// Waits until `kind/name` in `namespace` is `Ready=False` with `CredentialsInvalid`; returns
/// the object.
async fn wait_credentials_invalid(world: &World, namespace: &str, kind: &str, name: &str) -> Value {
    let what = format!("{kind} {namespace}/{name} Ready=False CredentialsInvalid");
    poll_until(&what, 2 * MINUTE, || async {
        let object = object(world, namespace, kind, name);
        let (status, reason, _) = condition(&object, "Ready")?;
        (status == "False" && reason == "CredentialsInvalid").then_some(object)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_certificate_reads_the_same_on_every_kind_and_drops_the_credentials_gauge() {
    let mut world = World::prepare("e2e-credentials", SandboxOptions::default()).await;
    let relationships_only = world.cp.namespace("e2e-credentials-gdap");
    world.operator_args = vec!["--namespaces".into(), relationships_only.clone()];
    let namespace = world.namespace.clone();
    certificate_secret(&world, &namespace).await;
    certificate_secret(&world, &relationships_only).await;
    let sink = tempfile::tempdir().unwrap();
    apply(&world, &namespace, &relationship("fabrikam"));
    apply(
        &world,
        &namespace,
        &consent_and_sync("fabrikam", sink.path()),
    );
    apply(&world, &relationships_only, &relationship("fabrikam-only"));
    world.start_operator();

    let objects = [
        (namespace.as_str(), "GdapRelationship", "gdap", "fabrikam"),
        (namespace.as_str(), "AppConsent", "appconsent", "reporting"),
        (
            namespace.as_str(),
            "TenantSync",
            "gdapsync",
            "fabrikam-users",
        ),
        (
            relationships_only.as_str(),
            "GdapRelationship",
            "gdap",
            "fabrikam-only",
        ),
    ];
    for (ns, kind, resource, name) in objects {
        let object = wait_credentials_invalid(&world, ns, resource, name).await;
        let (_, _, message) = condition(&object, "Ready").unwrap();
        assert!(
            message.contains("CertificateNotAccepted") && message.contains("AADSTS700027"),
            "{kind} {ns}/{name} names the refused certificate: {message}"
        );
        assert!(
            !message.contains("PRIVATE KEY") && !message.contains("MII"),
            "no key material: {message}"
        );
        let (health, said) = support::argocd::health(kind, &object);
        assert_eq!(
            (health.as_str(), said.as_str()),
            ("Degraded", message.as_str()),
            "Argo CD health of {kind} {ns}/{name}"
        );
    }
    let sync = object(&world, &namespace, "gdapsync", "fabrikam-users");
    let (_, synced, _) = condition(&sync, "Synced").unwrap();
    assert_eq!(
        synced, "AppConsentNotReady",
        "the TenantSync waits for its AppConsent"
    );
    // The chart's testdata (GDAP_CAPTURE_ARGOCD_TESTDATA=1 captures it).
    let (health, _) = support::sync::argocd_health(
        &world,
        "fabrikam-users",
        "degraded_credentials_invalid.yaml",
    );
    assert_eq!(health, "Degraded");

    for ns in [namespace.as_str(), relationships_only.as_str()] {
        let series = format!("gdap_credentials_valid{{namespace=\"{ns}\",secret=\"{SECRET}\"}}");
        let value = poll_until(&format!("{series} is 0"), MINUTE, || async {
            let text = world.metrics().await;
            let line = text.lines().find(|l| l.starts_with(&series))?;
            let value: f64 = line.rsplit(' ').next()?.parse().ok()?;
            (value == 0.0).then_some(value)
        })
        .await;
        assert_eq!(value, 0.0, "{series}");
    }
}
