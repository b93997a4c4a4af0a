//! Least privilege (issue 15): the operator runs under the Helm chart's RBAC (the end-to-end
//! suites do so for every scenario family); here each rule the chart grants is removed in turn,
//! and the operator must say clearly what it lacks — a condition with reason
//! `KubernetesForbidden`, or a warning naming the verb and the resource — without crashing or
//! retrying in a hot loop. The Namespace read (only made while a relationship is deleted) is
//! checked by deleting the relationship: a warning, and the deletion still finishes (it degrades
//! to waiting only for AppConsents already being deleted; there are none here). Rules this API server never checks (the finalizers subresource, which
//! only clusters enforcing OwnerReferencesPermissionEnforcement look at; core events, which the
//! recorder does not use) leave the scenario working, and the test says so. Whatever it lacks, a
//! SIGTERM stops it.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::sandbox::{SandboxOptions, defaults};
use serde_json::Value;
use std::time::{Duration, Instant};
use support::operator::{ChartRbac, World, condition};

const WAIT: Duration = Duration::from_secs(60);

/// What removing a rule must lead to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Symptom {
    /// `Synced=False, KubernetesForbidden` naming the resource.
    Condition(&'static str),
    /// A warning in the log naming the verb and the resource the API server refused.
    Warning(&'static str, &'static str),
    /// Nothing: this API server does not check the rule; the relationship gets Ready.
    Unchecked,
    /// Deleting the relationship logs a warning naming the verb and the resource, and the
    /// deletion still finishes.
    DeletionWarning(&'static str, &'static str),
    /// A GdapFleet (applied beside the relationship) cannot write its customer's objects:
    /// `Ready=False, KubernetesForbidden` naming the resource.
    FleetCondition(&'static str),
}

/// The symptom of removing the rule for `group`/`resource` (the rule's first resource) granting
/// `verb` (its first verb).
fn symptom(group: &str, resource: &str, verb: &str) -> Symptom {
    match (group, resource) {
        ("gdap.io", "gdaprelationships") if verb == "create" => {
            Symptom::FleetCondition("gdaprelationships")
        }
        ("gdap.io", "gdaprelationships") => Symptom::Warning("list", "gdaprelationships"),
        ("gdap.io", "gdaprelationships/status") => {
            Symptom::Warning("patch", "gdaprelationships/status")
        }
        ("gdap.io", "gdaprelationships/finalizers") => Symptom::Unchecked,
        ("", "secrets") => Symptom::Condition("secrets"),
        ("", "namespaces") => Symptom::DeletionWarning("get", "namespaces"),
        ("events.k8s.io", "events") => Symptom::Warning("create", "events"),
        ("", "events") => Symptom::Unchecked,
        ("coordination.k8s.io", "leases") => Symptom::Warning("get", "leases"),
        other => panic!("the chart grants {other:?}: add what its removal must cause"),
    }
}

/// Every (Role index in the documents, rule index, group, first resource, first verb) the
/// namespaced chart grants.
fn rules(docs: &[Value]) -> Vec<(usize, usize, String, String, String)> {
    let mut out = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        if doc["kind"] != "Role" {
            continue;
        }
        for (r, rule) in doc["rules"].as_array().unwrap().iter().enumerate() {
            let group = rule["apiGroups"][0].as_str().unwrap().to_string();
            let resource = rule["resources"][0].as_str().unwrap().to_string();
            let verb = rule["verbs"][0].as_str().unwrap().to_string();
            out.push((d, r, group, resource, verb));
        }
    }
    out
}

fn manifest() -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: rbac\nspec:\n  customer:\n    tenantId: {}\n  roles: [Directory Readers]\n  duration: P30D\n",
        defaults::CONTOSO_TENANT_ID
    )
}

/// Lines of the log that report a refusal by the API server.
fn refusals(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("forbidden") || l.contains("Forbidden"))
        .collect()
}

fn fleet_manifest() -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapFleet\nmetadata:\n  name: rbac-fleet\nspec:\n  customers:\n    list: [{{tenantId: {}}}]\n  template:\n    relationship:\n      roles: [Directory Readers]\n      duration: P30D\n",
        defaults::FABRIKAM_TENANT_ID
    )
}

/// The fleet's Ready condition when it is False for `KubernetesForbidden` naming `resource`.
async fn fleet_refused(world: &World, resource: &str) -> Option<String> {
    let fleets: kube::Api<gdap_operator::api::GdapFleet> =
        kube::Api::namespaced(world.client.clone(), &world.namespace);
    let status = fleets.get("rbac-fleet").await.ok()?.status?;
    let ready = status.conditions.into_iter().find(|c| c.type_ == "Ready")?;
    (ready.status == "False"
        && ready.reason == "KubernetesForbidden"
        && ready.message.contains(resource))
    .then_some(ready.message)
}

/// Runs the scenario with rule `rule` of document `doc` removed; returns what happened.
async fn without_rule(doc: usize, rule: usize, group: &str, resource: &str, verb: &str) {
    let mut world = World::prepare("rbac-minus", SandboxOptions::default()).await;
    // Only the world's credentials Secret, as the rules were listed: no other Secret rule.
    world.chart_secrets = Default::default();
    world.run_operator_under_the_charts_rbac_with(ChartRbac::Namespaced, |docs| {
        let rules = docs[doc]["rules"].as_array_mut().unwrap();
        rules.remove(rule);
    });
    world.apply(&manifest());
    let expected = symptom(group, resource, verb);
    if let Symptom::FleetCondition(_) = expected {
        world.apply(&fleet_manifest());
    }
    let what = format!("without the rule for {group}/{resource}");
    if let Symptom::DeletionWarning(..) = expected {
        delete_once_created(&world, &what).await;
    }
    let deadline = Instant::now() + WAIT;
    let seen = loop {
        let object = world.relationships().get("rbac").await.ok();
        let log = world.operator_log();
        let fleet = match expected {
            Symptom::FleetCondition(name) => fleet_refused(&world, name).await,
            _ => None,
        };
        let found = match expected {
            Symptom::FleetCondition(_) => fleet,
            Symptom::Unchecked => object
                .as_ref()
                .and_then(|o| condition(o, "Synced"))
                .filter(|c| c.0 == "True")
                .and(object.as_ref())
                .and_then(|o| o.status.as_ref()?.relationship_id.clone()),
            Symptom::Condition(name) => object
                .as_ref()
                .and_then(|o| condition(o, "Synced"))
                .filter(|c| c.0 == "False" && c.1 == "KubernetesForbidden" && c.2.contains(name))
                .map(|c| c.2),
            Symptom::Warning(verb, name) | Symptom::DeletionWarning(verb, name) => refusals(&log)
                .into_iter()
                .find(|l| {
                    (l.contains("WARN") || l.contains("ERROR"))
                        && l.contains(&format!("cannot {verb} resource"))
                        && l.contains(name)
                })
                .map(str::to_string),
        };
        if let Some(seen) = found {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no {expected:?} within {WAIT:?}; status: {:?}\nlog:\n{}",
            object.and_then(|o| o.status).map(|s| s.conditions),
            support::fleet::tail(&log, 40)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("{what}: {}", &seen[..seen.len().min(240)]);
    if let Symptom::DeletionWarning(..) = expected {
        support::operator::poll_until(&format!("{what}: the deletion to finish"), WAIT, || async {
            matches!(world.relationships().get_opt("rbac").await, Ok(None)).then_some(())
        })
        .await;
    }
    // No hot loop: the refusals keep coming no faster than the backoff allows. This is a
    // measurement over a window, not a wait for a state. The most that backoff allows is when
    // every watch is refused (the custom resources' rule): five watch streams (the four kinds,
    // and the TenantSync controller's AppConsent cache), each logging two lines per retry with
    // kube's backoff from 0.8 s doubling, about 30 lines in the first 6 s; a hot loop logs
    // hundreds.
    let before = refusals(&world.operator_log()).len();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = refusals(&world.operator_log()).len() - before;
    assert!(
        during <= 36,
        "{what}: {during} refusals in 6 s — a hot loop"
    );
    assert!(world.operator_running(), "{what}: the operator exited");
    assert!(
        !world.operator_log().contains("panicked"),
        "{what}: the operator panicked"
    );
    // And a SIGTERM still stops it, also while a watch is refused and its cache was never
    // listed (kube's graceful shutdown alone would wait for that list for ever).
    let stopped = world.stop_operator().await;
    assert!(
        stopped.success(),
        "{what}: SIGTERM ended the operator with {stopped}; log:\n{}",
        support::fleet::tail(&world.operator_log(), 40)
    );
    if expected == Symptom::Warning("list", "gdaprelationships") {
        assert!(
            world
                .operator_log()
                .contains("stopped before the first list of its objects"),
            "{what}: the unlisted controllers did not say they stopped"
        );
    }
}

/// Waits until the relationship was created in Microsoft, then deletes its object.
async fn delete_once_created(world: &World, what: &str) {
    support::operator::poll_until(
        &format!("{what}: the relationship created"),
        WAIT,
        || async {
            let object = world.relationships().get("rbac").await.ok()?;
            object.status?.relationship_id.map(drop)
        },
    )
    .await;
    let out = world.kubectl(&["delete", "gdap", "rbac", "--wait=false"]);
    assert!(out.status.success(), "{what}: kubectl delete failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_any_rule_of_the_charts_rbac_is_reported_clearly_without_a_crash_or_a_hot_loop() {
    let release = "rbac-rules";
    let sets = [
        "watchNamespaces={placeholder}",
        "credentialsSecret=partner-credentials",
    ];
    let docs =
        support::chart::documents(&support::chart::template(release, release, &sets).unwrap());
    let all = rules(&docs);
    assert_eq!(all.len(), 9, "the chart's rules: {all:?}");
    for (_, _, group, resource, verb) in &all {
        symptom(group, resource, verb);
    }
    let runs = all
        .iter()
        .map(|(d, r, group, resource, verb)| without_rule(*d, *r, group, resource, verb));
    futures::future::join_all(runs).await;
}

/// The chart grants Secrets by name only (the operator lists and watches none but the credentials
/// Secrets in use, each alone by name). An object
/// naming a Secret the chart was not told about says which Secret, which permission and which
/// chart value grants it: a GdapRelationship's credentials Secret (`rbac.credentialsSecrets`) and
/// a TenantSync's PostgreSQL connection Secret (`rbac.connectionSecrets`). The named credentials
/// Secret works at the same time (the AppConsent the import relies on gets Ready).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_the_chart_was_not_told_about_is_named_with_the_value_that_grants_it() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::PostParams;
    use support::sync::{
        CONSENT, NORTHWIND, consent_manifest, make_consent_ready, sync_manifest, sync_now,
        wait_request,
    };
    let mut world = World::prepare("rbac-names", SandboxOptions::default()).await;
    let mut credentials = world.secrets().get("partner-credentials").await.unwrap();
    credentials.metadata = Default::default();
    credentials.metadata.name = Some("unlisted-credentials".into());
    let database: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "unlisted-db"},
        "stringData": {"url": "postgres://gdap@127.0.0.1:9/none"},
    }))
    .unwrap();
    for secret in [credentials, database] {
        world
            .secrets()
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    world.run_operator_under_the_charts_rbac(ChartRbac::ClusterWide);

    world.apply(&format!(
        "{}  credentialsRef:\n    name: unlisted-credentials\n",
        manifest()
    ));
    let message = world
        .wait_for("rbac", "KubernetesForbidden", WAIT, |o| {
            let (status, reason, message) = condition(o, "Synced")?;
            (status == "False" && reason == "KubernetesForbidden").then_some(message)
        })
        .await;
    for part in [
        "unlisted-credentials",
        "get, list, watch, patch and update",
        "rbac.credentialsSecrets",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }

    world.apply(&consent_manifest(NORTHWIND));
    make_consent_ready(&world, CONSENT).await;
    let sink = "    postgres:\n      connectionSecretRef:\n        name: unlisted-db\n";
    world.apply(&sync_manifest("unlisted", NORTHWIND, "@daily", sink, ""));
    sync_now(&world, "unlisted", "first").await;
    let object = wait_request(&world, "unlisted", "first", WAIT).await;
    let (synced, reason, message) = support::sync::condition(&object, "Synced").unwrap();
    assert_eq!(
        (synced.as_str(), reason.as_str()),
        ("False", "KubernetesForbidden"),
        "{message}"
    );
    for part in ["unlisted-db", "grant get", "rbac.connectionSecrets"] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
}
