//! Adopting an existing partner end to end (real API server, the sandbox's 1,500-relationship
//! estate, the operator binary): exported manifests, applied, reach their state — active ones
//! `Ready` — without a single write to Microsoft; a restarted operator over the adopted objects
//! changes nothing (no Microsoft write, no object rewritten); and a failed read of access
//! assignments never makes a managing operator act.
//!
//! The count and ids of the whole estate are checked in `onboard_export.rs`; here a subset of
//! 100 objects (every 12th exported file, all states) keeps the test quick on two cores.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::api::GdapRelationship;
use gdap_operator::sandbox::Scale;
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use support::onboard::{
    credentials_file, export_to, files_under, read_manifest, run_expect, scale_options,
};
use support::operator::{World, condition, poll_until};

const SUBSET_EVERY: usize = 12;
const LONG: Duration = Duration::from_secs(240);

/// What an adopted object must show, by Microsoft's state of its relationship.
fn settled(object: &GdapRelationship, state: &str) -> bool {
    let status = |t: &str| condition(object, t).map(|(s, r, _)| (s, r));
    let observed = object
        .status
        .as_ref()
        .and_then(|s| s.state.as_deref())
        .is_some_and(|s| s == state);
    let synced = status("Synced").is_some_and(|(s, _)| s == "True");
    observed
        && synced
        && match state {
            "active" => status("Ready") == Some(("True".into(), "Active".into())),
            "approvalPending" => {
                status("Approved") == Some(("False".into(), "ApprovalPending".into()))
            }
            "created" => status("Approved") == Some(("False".into(), "NotLocked".into())),
            _ => false,
        }
}

async fn writes(world: &World) -> u64 {
    world.http_get("requests").await["totals"]["writes"]
        .as_u64()
        .unwrap()
}

async fn versions(world: &World) -> BTreeMap<String, String> {
    world
        .relationships()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| (o.name_any(), o.resource_version().unwrap()))
        .collect()
}

/// Reconciles finished by the running operator; `None` while its metrics are not served yet.
async fn reconciles(world: &World) -> Option<f64> {
    let text = reqwest::get(format!("http://{}/metrics", world.metrics_address))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(support::metrics::sum(
        &text,
        "gdap_reconciles_total{kind=\"GdapRelationship\"",
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exported_manifests_are_adopted_without_a_single_write() {
    let mut world = World::prepare("onboard", scale_options(Scale::default())).await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let out = dir.path().join("partner");
    export_to(
        &world.sandbox,
        &credentials,
        &out,
        &["--namespace", &world.namespace],
    );

    // Every 12th file: 100 objects of every state, each in its customer's folder.
    let subset = dir.path().join("subset");
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for file in files_under(&out).into_iter().step_by(SUBSET_EVERY) {
        let text = std::fs::read_to_string(&file).unwrap();
        let state = ["active", "approvalPending", "created"]
            .into_iter()
            .find(|s| text.contains(&format!("), {s}, ")))
            .unwrap();
        let manifest = read_manifest(&file);
        expected.insert(
            manifest["metadata"]["name"].as_str().unwrap().to_string(),
            state.to_string(),
        );
        let target = subset.join(file.strip_prefix(&out).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
    let states: std::collections::BTreeSet<&str> = expected.values().map(String::as_str).collect();
    assert_eq!(states.len(), 3, "the subset holds every adoptable state");
    world.cp.kubectl_ok(&[
        "apply",
        "--server-side",
        "-R",
        "-f",
        subset.to_str().unwrap(),
    ]);
    assert!(world.delete_control("requests").await.is_success());

    world.start_operator();
    let api = world.relationships();
    poll_until("every adopted object to settle", LONG, || async {
        let objects = api.list(&ListParams::default()).await.ok()?.items;
        let done = objects.len() == expected.len()
            && objects.iter().all(|o| settled(o, &expected[&o.name_any()]));
        done.then_some(())
    })
    .await;
    assert_eq!(
        writes(&world).await,
        0,
        "adoption wrote nothing to Microsoft"
    );

    let log = world.requests().await;
    assert!(
        log.iter()
            .all(|(m, p)| m == "GET" || p.contains("/oauth2/")),
        "only reads besides token calls: {log:?}"
    );

    // `plan --from-cluster` continues from the objects' status: nothing to do for any of them.
    // The operator has rotated the refresh token since the export, so the CLI takes the
    // credentials Secret as it is now (docs/adopting.md).
    let secret = world.kubectl(&["get", "secret", "partner-credentials", "-o", "yaml"]);
    assert!(secret.status.success());
    let credentials = dir.path().join("current-credentials.yaml");
    std::fs::write(&credentials, &secret.stdout).unwrap();
    let kubeconfig = world.cp.kubeconfig.to_str().unwrap().to_string();
    let output = run_expect(
        &world.sandbox,
        &[
            "plan",
            "--from-cluster",
            "--kubeconfig",
            &kubeconfig,
            "--credentials",
            credentials.to_str().unwrap(),
            "-o",
            "json",
            subset.to_str().unwrap(),
        ],
        0,
    );
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        plan["summary"]["noChanges"],
        expected.len(),
        "{}",
        plan["summary"]
    );
    let recorded = plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["relationshipId"].is_string() && o["namespace"] == json!(world.namespace));
    assert!(
        recorded,
        "every object was read from the cluster and found in Microsoft"
    );
    assert_eq!(writes(&world).await, 0, "plan wrote nothing either");

    // A restart over settled objects: all reads, no write to Microsoft or to the objects.
    world.wait_for_reconciles(expected.len() as f64).await;
    let before = versions(&world).await;
    world.kill_operator();
    assert!(world.delete_control("requests").await.is_success());
    world.start_operator();
    let n = expected.len() as f64;
    poll_until(
        "a full pass of reconciles after the restart",
        LONG,
        || async {
            reconciles(&world)
                .await
                .filter(|r| *r >= 2.0 * n)
                .map(|_| ())
        },
    )
    .await;
    assert_eq!(
        writes(&world).await,
        0,
        "a restart writes nothing to Microsoft"
    );
    assert_eq!(
        versions(&world).await,
        before,
        "a restart rewrites no object (status, annotations, finalizers)"
    );

    // Taking over three active objects while their access assignments cannot be read: the
    // operator must not read a failed listing as "no assignments" and create them.
    let takeover: Vec<String> = expected
        .iter()
        .filter(|(_, s)| *s == "active")
        .map(|(n, _)| n.clone())
        .filter(|n| {
            std::fs::read_to_string(
                files_under(&subset)
                    .into_iter()
                    .find(|f| f.to_str().unwrap().contains(n.as_str()))
                    .unwrap(),
            )
            .unwrap()
            .contains("accessAssignments")
        })
        .take(3)
        .collect();
    assert_eq!(takeover.len(), 3);
    let mut rules = Vec::new();
    for name in &takeover {
        let object = api.get(name).await.unwrap();
        let id = object.spec.relationship_id.clone().unwrap();
        rules.push(json!({"pathPrefix": format!("/v1.0/tenantRelationships/delegatedAdminRelationships/{id}/accessAssignments"), "method": "GET", "rate": 1.0, "statuses": [403]}));
    }
    assert!(
        world
            .put_control("faults", json!({"rules": rules}))
            .await
            .is_success()
    );
    let manage = json!({"spec": {"managementPolicy": "Manage"}});
    for name in &takeover {
        api.patch(name, &PatchParams::default(), &Patch::Merge(&manage))
            .await
            .unwrap();
    }
    for name in &takeover {
        world
            .wait_for(name, "Synced=False after a failed read", LONG, |o| {
                let c = o
                    .status
                    .as_ref()?
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Synced")?;
                (c.status == "False" && c.observed_generation == o.metadata.generation)
                    .then(|| c.reason.clone())
            })
            .await;
    }
    assert_eq!(
        writes(&world).await,
        0,
        "a failed listing never makes the operator act"
    );
    assert!(world.delete_control("faults").await.is_success());
    for name in &takeover {
        world
            .wait_for(name, "Ready again under Manage", LONG, |o| {
                let ready = condition(o, "Ready").is_some_and(|(s, _, _)| s == "True");
                let synced = o.status.as_ref()?.conditions.iter().any(|c| {
                    c.type_ == "Synced"
                        && c.status == "True"
                        && c.observed_generation == o.metadata.generation
                });
                (ready && synced).then_some(())
            })
            .await;
    }
    assert_eq!(
        writes(&world).await,
        0,
        "an exact spec under Manage needs no write either"
    );
}
