//! GdapFleet end to end: the real kube-apiserver, the sandbox and the operator binary.
//! - A fleet over Partner Center's customers creates one relationship per customer within its
//!   rollout limit, measured at the relationships it created (creation and activation times),
//!   `plan` says beforehand exactly which objects its first pass creates, `approvals` prints the
//!   pending links as CSV, a customer signed in the sandbox is covered within a poll, an excluded
//!   customer is let go (its relationship stays active) without `prune`, and with `prune` at most
//!   `prunePerHour` customers are terminated.
//! - The same over the scale fixture's 1,000 customers.
#![cfg(feature = "sandbox")]

mod support;

use chrono::{DateTime, Utc};
use gdap_operator::api::{GdapFleet, GdapRelationship};
use gdap_operator::controllers::conditions::from_time;
use gdap_operator::sandbox::{
    Consistency, Fixture, SandboxOptions, Scale, ThrottleOptions, defaults,
};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use support::operator::{World, poll_until};

const MINUTE: Duration = Duration::from_secs(60);
const WOODGROVE: &str = "0b5c1f7e-6a3d-4e2b-9c8a-7d6e5f4a3b21";

fn fleet_yaml(max_awaiting: u32) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapFleet\nmetadata:\n  name: estate\nspec:\n  customers:\n    partnerCenter: true\n  template:\n    relationship:\n      displayName: \"{{customerName}} GDAP\"\n      roles: [Directory Readers]\n      duration: P60D\n  rollout:\n    maxAwaitingApproval: {max_awaiting}\n"
    )
}

fn fleets(world: &World) -> Api<GdapFleet> {
    Api::namespaced(world.client.clone(), &world.namespace)
}

/// The fleet's relationships (by its label).
async fn children(world: &World) -> Vec<GdapRelationship> {
    world
        .relationships()
        .list(&ListParams::default().labels("gdap.io/fleet=estate"))
        .await
        .unwrap()
        .items
}

async fn fleet_status(world: &World) -> gdap_operator::api::GdapFleetStatus {
    fleets(world)
        .get("estate")
        .await
        .unwrap()
        .status
        .unwrap_or_default()
}

async fn patch_fleet(world: &World, spec: Value) {
    fleets(world)
        .patch(
            "estate",
            &PatchParams::default(),
            &Patch::Merge(&json!({ "spec": spec })),
        )
        .await
        .unwrap();
}

/// Approves, as the customers, every relationship of the fleet that awaits approval.
async fn approve_pending(world: &World) {
    for r in children(world).await {
        let status = r.status.unwrap_or_default();
        if let (Some("approvalPending"), Some(id)) =
            (status.state.as_deref(), status.relationship_id.as_deref())
        {
            world
                .control(&format!("relationships/{id}/approve"), json!({}))
                .await;
        }
    }
}

/// The rollout limit, checked at the relationships the fleet created: by the end of every second
/// in which one was created, at most `limit` more had been created than had become active. (The
/// fleet decides from what it last saw, so it can only be more careful than this.)
fn assert_rollout_kept(relationships: &[GdapRelationship], limit: usize) {
    let created: Vec<DateTime<Utc>> = relationships
        .iter()
        .filter_map(|r| r.metadata.creation_timestamp.as_ref().map(from_time))
        .collect();
    let activated: Vec<DateTime<Utc>> = relationships
        .iter()
        .filter_map(|r| r.status.as_ref()?.activated_at.as_ref().map(from_time))
        .collect();
    assert_eq!(created.len(), relationships.len());
    for at in &created {
        let end = *at + chrono::Duration::seconds(1);
        let made = created.iter().filter(|t| **t < end).count();
        let active = activated.iter().filter(|t| **t < end).count();
        assert!(
            made <= limit + active,
            "by {end}: {made} relationships created, only {active} active: more than {limit} awaited approval at once"
        );
    }
}

fn operator(world: &World, args: &[&str]) -> std::process::Output {
    let base = world.sandbox.base_url();
    std::process::Command::new(env!("CARGO_BIN_EXE_gdap-operator"))
        .args(args)
        .env("GDAP_LOGIN_URL", &base)
        .env("GDAP_GRAPH_URL", &base)
        .env("GDAP_PARTNER_CENTER_URL", &base)
        .env("GDAP_KUBECONFIG", &world.cp.kubeconfig)
        .env_remove("GDAP_CREDENTIALS_FILE")
        .output()
        .unwrap()
}

/// `plan --from-cluster -o json` of the fleet manifest: its exit code and the names it creates.
fn plan(world: &World, dir: &std::path::Path, yaml: &str) -> (i32, BTreeSet<String>, Value) {
    let manifest = dir.join("fleet.yaml");
    std::fs::write(&manifest, yaml).unwrap();
    let credentials = support::onboard::credentials_file(dir);
    let output = operator(
        world,
        &[
            "plan",
            manifest.to_str().unwrap(),
            "--from-cluster",
            "-n",
            &world.namespace,
            "--credentials",
            credentials.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "plan's JSON: {e}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let created = report["objects"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "createFleetObject")
        .filter_map(|s| {
            let text = s["description"].as_str()?;
            let name = text.strip_prefix("create GdapRelationship ")?;
            Some(name.split(' ').next()?.to_string())
        })
        .collect();
    (output.status.code().unwrap_or(-1), created, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_rolls_out_within_its_limit_onboards_a_new_customer_and_prunes_only_when_told() {
    let world = World::start("e2e-fleet", SandboxOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = fleet_yaml(2);

    // plan says which objects the first pass creates: two, the rollout limit.
    let (code, planned, report) = plan(&world, dir.path(), &yaml);
    assert_eq!(code, 2, "changes: {report:#}");
    assert_eq!(planned.len(), 2, "{report:#}");
    world.apply(&yaml);
    let first = poll_until("the first wave", MINUTE, || async {
        let names: BTreeSet<String> = children(&world)
            .await
            .iter()
            .map(|r| r.name_any())
            .collect();
        (names.len() == 2).then_some(names)
    })
    .await;
    assert_eq!(first, planned, "plan matched what the operator did");

    // The onboarding team's CSV: the two approval links once locked.
    let csv = poll_until("two approval links", MINUTE, || async {
        let out = operator(&world, &["approvals", "estate", "-n", &world.namespace]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        (text.lines().count() == 3).then_some(text)
    })
    .await;
    for r in children(&world).await {
        let url = r.status.unwrap().approval_url.unwrap();
        assert!(csv.contains(&url), "{csv}");
    }
    let status = poll_until("the oldest pending approval", MINUTE, || async {
        let s = fleet_status(&world).await;
        s.oldest_pending_approval.is_some().then_some(s)
    })
    .await;
    assert_eq!(status.awaiting_approval, 2, "{status:?}");
    assert_eq!(status.waiting, status.customers - 2, "{status:?}");
    let oldest = status.oldest_pending_approval.unwrap();
    assert!(first.contains(&oldest.name), "{oldest:?}");

    // Approvals make room: the rest follow, never more than two awaiting at once.
    let status = poll_until("every customer active", 3 * MINUTE, || async {
        approve_pending(&world).await;
        let s = fleet_status(&world).await;
        (s.customers > 0 && s.active == s.customers).then_some(s)
    })
    .await;
    let all = children(&world).await;
    assert_eq!(all.len() as u32, status.customers);
    assert!(status.customers >= 3, "{status:?}");
    assert_rollout_kept(&all, 2);
    let tenants: BTreeSet<String> = all
        .iter()
        .map(|r| r.spec.customer.tenant_id.0.clone())
        .collect();
    assert_eq!(tenants.len(), all.len(), "one relationship per customer");
    let (code, planned, report) = plan(&world, dir.path(), &yaml);
    assert_eq!(
        (code, planned.len()),
        (0, 0),
        "a converged fleet plans nothing: {report:#}"
    );
    let active = format!(" {}", status.customers);
    poll_until("the fleet's gauge", MINUTE, || async {
        let text = world.metrics().await;
        text.lines()
            .any(|l| {
                l.starts_with("gdap_fleet_customers{")
                    && l.contains("name=\"estate\"")
                    && l.contains("state=\"active\"")
                    && l.ends_with(&active)
            })
            .then_some(())
    })
    .await;

    // A customer signed now is covered within a poll (the list is read once per poll).
    let signed = world
        .control(
            "customers",
            json!({"displayName": "Woodgrove Bank", "tenantId": WOODGROVE}),
        )
        .await;
    assert!(signed.is_success(), "{signed}");
    let name = format!("estate-{WOODGROVE}");
    let woodgrove = poll_until(
        "Woodgrove's relationship",
        Duration::from_secs(15),
        || async { world.relationships().get_opt(&name).await.unwrap() },
    )
    .await;
    assert_eq!(
        woodgrove.spec.display_name.as_deref(),
        Some("Woodgrove Bank GDAP-0b5c1f7e")
    );

    // Excluded without prune: let go, still there and active.
    let contoso = format!("estate-{}", defaults::CONTOSO_TENANT_ID);
    patch_fleet(
        &world,
        json!({"customers": {"exclude": [defaults::CONTOSO_TENANT_ID]}}),
    )
    .await;
    let let_go = poll_until("Contoso let go", MINUTE, || async {
        let r = world.relationships().get(&contoso).await.unwrap();
        (!r.labels().contains_key("gdap.io/fleet")).then_some(r)
    })
    .await;
    assert!(let_go.metadata.deletion_timestamp.is_none());
    assert!(
        let_go
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(let_go.status.unwrap().state.as_deref(), Some("active"));
    assert!(
        world
            .events("estate")
            .iter()
            .any(|e| e.starts_with("CustomersLetGo:")),
        "{:?}",
        world.events("estate")
    );

    // With prune, at most one customer an hour: of Fabrikam and Northwind one is terminated.
    patch_fleet(
        &world,
        json!({"prune": true, "prunePerHour": 1, "customers": {"exclude": [
            defaults::CONTOSO_TENANT_ID, defaults::FABRIKAM_TENANT_ID, defaults::NORTHWIND_TENANT_ID
        ]}}),
    )
    .await;
    let status = poll_until("one prune, one waiting", MINUTE, || async {
        let s = fleet_status(&world).await;
        (s.pruned_at.len() == 1 && s.pruning == 1 && s.next_prune_at.is_some()).then_some(s)
    })
    .await;
    // Several more passes (each re-reads the customer list) prune nothing more.
    let read = from_time(status.customer_list_read_at.as_ref().unwrap());
    poll_until("two more passes", MINUTE, || async {
        let s = fleet_status(&world).await;
        let later = from_time(s.customer_list_read_at.as_ref()?);
        (later > read + chrono::Duration::seconds(1)).then_some(())
    })
    .await;
    let pair = [defaults::FABRIKAM_TENANT_ID, defaults::NORTHWIND_TENANT_ID];
    let mut left = Vec::new();
    for tenant in pair {
        if let Some(r) = world
            .relationships()
            .get_opt(&format!("estate-{tenant}"))
            .await
            .unwrap()
            && r.metadata.deletion_timestamp.is_none()
        {
            left.push(tenant);
        }
    }
    assert_eq!(
        left.len(),
        1,
        "exactly one of the two pruned this hour: {left:?}"
    );
    assert_eq!(fleet_status(&world).await.pruned_at.len(), 1);
    // The pruned one is terminated in Microsoft; Contoso (let go before) is untouched.
    let pruned = pair.iter().find(|t| !left.contains(t)).unwrap();
    poll_until("the pruned relationship terminated", MINUTE, || async {
        let rels = world.sandbox_relationships().await;
        rels.iter()
            .any(|r| {
                r["customer"]["tenantId"] == *pruned
                    && r["displayName"]
                        .as_str()
                        .is_some_and(|n| n.ends_with(&pruned[..8]))
                    && r["status"] == "terminated"
            })
            .then_some(())
    })
    .await;
    let contoso_now = world.relationships().get(&contoso).await.unwrap();
    assert!(contoso_now.metadata.deletion_timestamp.is_none());

    // The fleet deleted without prune: it goes once it let every customer go; they keep running.
    patch_fleet(&world, json!({"prune": false})).await;
    let out = world.kubectl(&["delete", "gdapfleet", "estate", "--wait=false"]);
    assert!(out.status.success());
    poll_until("the fleet gone", MINUTE, || async {
        fleets(&world)
            .get_opt("estate")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let woodgrove = world.relationships().get(&name).await.unwrap();
    assert!(
        woodgrove.metadata.deletion_timestamp.is_none(),
        "not garbage-collected"
    );
    assert!(!woodgrove.labels().contains_key("gdap.io/fleet"));
    assert!(
        woodgrove
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    let labelled: Vec<String> = children(&world)
        .await
        .iter()
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .map(|r| r.name_any())
        .collect();
    assert!(
        labelled.is_empty(),
        "only the pruned one (terminating) keeps the label: {labelled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_over_the_scale_fixtures_thousand_customers_keeps_its_rollout_limit() {
    // Microsoft's throughput is not this test's subject (the rollout limit and one relationship
    // per customer are): the sandbox answers at once and does not throttle, explicitly.
    let options = SandboxOptions {
        fixture: Fixture::builtin().with_scale(Scale::default()),
        auto_approve_after: Some(Duration::from_millis(500)),
        consistency: Consistency::immediate(),
        throttle: ThrottleOptions {
            budget: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let world = World::start("e2e-fleet-scale", options).await;
    let limit = 200;
    world.apply(&fleet_yaml(limit));
    let status = poll_until("every customer active", 12 * MINUTE, || async {
        let s = fleet_status(&world).await;
        (s.customers > 1000 && s.active == s.customers).then_some(s)
    })
    .await;
    let all = children(&world).await;
    assert_eq!(all.len() as u32, status.customers, "{status:?}");
    let tenants: BTreeSet<String> = all
        .iter()
        .map(|r| r.spec.customer.tenant_id.0.clone())
        .collect();
    assert_eq!(tenants.len(), all.len(), "one relationship per customer");
    assert_rollout_kept(&all, limit as usize);
    // Each relationship was asked of Microsoft once (counted at the operator's own writes).
    let mine: BTreeSet<String> = all
        .iter()
        .filter_map(|r| r.status.as_ref()?.display_name.clone())
        .collect();
    let log = world.http_get("requests").await;
    let creates = log["totals"]["createsByTarget"].as_object().unwrap();
    assert_eq!(
        mine.len(),
        all.len(),
        "each relationship has its own display name"
    );
    let mut repeated = Vec::new();
    for name in &mine {
        let key = format!("relationship {}", name.to_ascii_lowercase());
        let c = creates
            .get(&key)
            .unwrap_or_else(|| panic!("{key} was never asked for"));
        if c["sent"].as_u64().unwrap() > 1 + c["unread"].as_u64().unwrap() {
            repeated.push((key, c.clone()));
        }
    }
    assert!(repeated.is_empty(), "created twice: {repeated:?}");
}
