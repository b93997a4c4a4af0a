//! Successor relationships end to end (real API server, the sandbox and its clock, the operator
//! binary): Global Administrator relationships renewed before their end, role changes carried by a
//! successor, unapproved successors warned about and re-requested, and a hand-over that survives
//! crashes — with `Ready` never False while access continues.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::api::GdapRelationship;
use gdap_operator::sandbox::{SandboxOptions, defaults};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::operator::{World, condition, poll_until};

const MINUTE: Duration = Duration::from_secs(60);
const DAY: f64 = 86_400.0;
const HELPDESK: &str = defaults::HELPDESK_GROUP_ID;

/// A relationship with Global Administrator (it can never auto-extend) and the successor policy.
fn global_admin(name: &str, duration: &str, before: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {}\n  roles: [Global Administrator, Directory Readers]\n  duration: {duration}\n  accessAssignments:\n    - securityGroupId: {HELPDESK}\n      roles: [Directory Readers]\n  renewal:\n    policy: Successor\n    before: {before}\n",
        defaults::CONTOSO_TENANT_ID
    )
}

async fn approve(world: &World, id: &str) {
    let status = world
        .control(&format!("relationships/{id}/approve"), json!({}))
        .await;
    assert!(status.is_success(), "approve returned {status}");
}

async fn ready(world: &World, name: &str, manifest: &str) -> String {
    world.apply(manifest);
    let id = world
        .wait_for(name, "approvalPending", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.state.as_deref() == Some("approvalPending"))
                .then(|| s.relationship_id.clone())
                .flatten()
        })
        .await;
    approve(world, &id).await;
    world
        .wait_for(name, "Ready", MINUTE, |o| {
            (condition(o, "Ready")?.0 == "True").then_some(())
        })
        .await;
    id
}

/// Waits for a successor awaiting approval; returns (id, display name, approval link).
async fn pending_successor(world: &World, name: &str) -> (String, String, String) {
    world
        .wait_for(name, "a successor awaiting approval", MINUTE, |o| {
            let s = o.status.as_ref()?.successor.as_ref()?;
            (s.state.as_deref() == Some("approvalPending")).then(|| {
                (
                    s.id.clone().unwrap_or_default(),
                    s.display_name.clone(),
                    s.approval_url.clone().unwrap_or_default(),
                )
            })
        })
        .await
}

async fn sandbox_relationship(world: &World, id: &str) -> Option<Value> {
    world
        .sandbox_relationships()
        .await
        .into_iter()
        .find(|r| r["id"] == id)
}

/// Records, every 250 ms until stopped, `Ready` of `name` and whether the helpdesk group holds
/// access in Microsoft (the sandbox): an active relationship with an active assignment of the
/// group. The second is the proof that access never stops; the first, that the operator never
/// said it did.
struct ReadySampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(String, bool)>>,
}

impl ReadySampler {
    fn start(world: &World, name: &str) -> ReadySampler {
        let api = world.relationships();
        let state = format!("{}/_sandbox/state", world.sandbox.base_url());
        let name = name.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut samples = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let world: Option<Value> = match http.get(&state).send().await {
                    Ok(r) => r.json().await.ok(),
                    Err(_) => None,
                };
                if let (Ok(object), Some(world)) = (api.get(&name).await, world) {
                    samples.push((ready_of(&object), group_has_access(&world, HELPDESK)));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            samples
        });
        ReadySampler { stop, task }
    }

    async fn finish(self) -> Vec<(String, bool)> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

/// Whether `group` holds access in the sandbox's state: an active relationship carries an
/// active assignment of it.
fn group_has_access(state: &Value, group: &str) -> bool {
    state["relationships"].as_array().is_some_and(|rels| {
        rels.iter().any(|r| {
            r["status"] == "active"
                && r["assignments"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|a| a["groupId"] == group && a["status"] == "active")
                })
        })
    })
}

fn ready_of(object: &GdapRelationship) -> String {
    condition(object, "Ready")
        .map(|c| format!("{} {}", c.0, c.1))
        .unwrap_or_else(|| "missing".into())
}

fn successors_named(rels: &[Value], display_name: &str) -> usize {
    rels.iter()
        .filter(|r| r["displayName"] == display_name)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_administrator_relationship_is_renewed_without_interrupting_access() {
    let world = World::start("e2e-renew", SandboxOptions::default()).await;
    let old = ready(&world, "ga", &global_admin("ga", "P60D", "P30D")).await;
    let sampler = ReadySampler::start(&world, "ga");

    world.advance_clock(31.0 * DAY).await;
    let (successor, display_name, link) = pending_successor(&world, "ga").await;
    assert!(link.ends_with(&successor), "{link}");
    assert!(display_name.ends_with("-r1"), "{display_name}");
    let object = world.relationships().get("ga").await.unwrap();
    let renewing = condition(&object, "Renewing").unwrap();
    assert_eq!(
        (renewing.0.as_str(), renewing.1.as_str()),
        ("True", "SuccessorApprovalPending")
    );
    assert!(
        world
            .events("ga")
            .iter()
            .any(|e| e.starts_with("SuccessorRequested:") && e.contains(&link)),
        "{:?}",
        world.events("ga")
    );
    world.wait_for_reconciles(3.0).await;
    let rels = world.sandbox_relationships().await;
    assert_eq!(
        successors_named(&rels, &display_name),
        1,
        "exactly one successor"
    );
    assert_eq!(rels.len(), 2);
    let table = world.kubectl(&["get", "gdap", "ga"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("SUCCESSOR") && table.contains("approvalPending"),
        "{table}"
    );

    approve(&world, &successor).await;
    let status = world
        .wait_for("ga", "the hand-over to the successor", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.relationship_id.as_deref() == Some(successor.as_str())
                && s.successor.is_none()
                && s.previous_relationships.iter().any(|p| p.id == old))
            .then(|| s.clone())
        })
        .await;
    assert_eq!(status.previous_relationships[0].why, "Renewal");
    poll_until("the predecessor terminated", MINUTE, || async {
        let r = sandbox_relationship(&world, &old).await?;
        (r["status"] == "terminated").then_some(())
    })
    .await;
    let new = sandbox_relationship(&world, &successor).await.unwrap();
    assert!(
        new["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["groupId"] == HELPDESK && a["status"] == "active"),
        "the groups were handed over: {new}"
    );
    world
        .wait_for("ga", "Ready on the successor", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (condition(o, "Ready")?.0 == "True"
                && s.previous_relationships[0].state.as_deref() == Some("terminated"))
            .then_some(())
        })
        .await;
    // Under the sandbox's read lag, each write of the renewal happened exactly once: the
    // successor created and locked once, the groups assigned once on each relationship, the
    // predecessor terminated once, and nothing deleted.
    let writes = world.writes_by_path().await;
    let rels = "/v1.0/tenantRelationships/delegatedAdminRelationships";
    let once = |path: String| (writes.get(&path).copied().unwrap_or(0), path);
    assert_eq!(
        once(format!("POST {rels}")).0,
        2,
        "the original and one successor: {writes:?}"
    );
    for id in [&old, &successor] {
        assert_eq!(
            once(format!("POST {rels}/{id}/accessAssignments")).0,
            1,
            "{writes:?}"
        );
        // One lockForApproval each, plus the predecessor's terminate.
        let requests = once(format!("POST {rels}/{id}/requests")).0;
        assert_eq!(requests, if *id == old { 2 } else { 1 }, "{id}: {writes:?}");
    }
    assert!(
        !writes.keys().any(|k| k.starts_with("DELETE")),
        "nothing deleted: {writes:?}"
    );
    let samples = sampler.finish().await;
    assert!(samples.len() > 10, "{} samples", samples.len());
    assert!(
        samples.iter().all(|(_, access)| *access),
        "the helpdesk group held access in Microsoft throughout the renewal: {samples:?}"
    );
    assert!(
        samples.iter().all(|(ready, _)| ready.starts_with("True")),
        "Ready must never be False during the renewal: {samples:?}"
    );
    assert!(
        world
            .events("ga")
            .iter()
            .any(|e| e.starts_with("HandedOver:")),
        "{:?}",
        world.events("ga")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_edit_is_carried_by_a_successor_with_the_new_roles() {
    let world = World::start("e2e-successor-roles", SandboxOptions::default()).await;
    let manifest = global_admin("roles", "P300D", "P30D");
    let old = ready(&world, "roles", &manifest).await;
    world.apply(&manifest.replace(
        "roles: [Global Administrator, Directory Readers]",
        "roles: [Global Administrator, Directory Readers, Global Reader]",
    ));
    let (successor, _, _) = pending_successor(&world, "roles").await;
    let object = world.relationships().get("roles").await.unwrap();
    assert_eq!(
        object
            .status
            .as_ref()
            .unwrap()
            .successor
            .as_ref()
            .unwrap()
            .reason,
        "SpecChange"
    );
    let created = sandbox_relationship(&world, &successor).await.unwrap();
    assert_eq!(
        created["roles"].as_array().unwrap().len(),
        3,
        "the successor has the new roles: {created}"
    );
    approve(&world, &successor).await;
    world
        .wait_for("roles", "the switch and Ready", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.relationship_id.as_deref() == Some(successor.as_str())
                && condition(o, "Ready")?.0 == "True"
                && condition(o, "Synced")?.0 == "True")
                .then_some(())
        })
        .await;
    poll_until("the predecessor terminated", MINUTE, || async {
        let r = sandbox_relationship(&world, &old).await?;
        (r["status"] == "terminated").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unapproved_successor_is_warned_about_and_requested_again_when_its_link_lapses() {
    let world = World::start("e2e-successor-stuck", SandboxOptions::default()).await;
    ready(&world, "stuck", &global_admin("stuck", "P200D", "P120D")).await;
    world.advance_clock(81.0 * DAY).await;
    let (first, first_name, first_link) = pending_successor(&world, "stuck").await;
    let metrics = world.metrics().await;
    assert!(
        metrics.contains("gdap_successor_approval_pending{") && metrics.contains("name=\"stuck\""),
        "{metrics}"
    );
    // The successor's 90-day approval window passes: a fresh request with a new link; the current
    // relationship now ends within 30 days, so the warnings start.
    world.advance_clock(91.0 * DAY).await;
    let (second, second_name, second_link) = world
        .wait_for("stuck", "a fresh successor request", MINUTE, |o| {
            let s = o.status.as_ref()?.successor.as_ref()?;
            let id = s.id.clone()?;
            (id != first && s.state.as_deref() == Some("approvalPending")).then(|| {
                (
                    id,
                    s.display_name.clone(),
                    s.approval_url.clone().unwrap_or_default(),
                )
            })
        })
        .await;
    assert_ne!(second_link, first_link);
    assert!(
        first_name.ends_with("-r1") && second_name.ends_with("-r2"),
        "{first_name} {second_name}"
    );
    assert_eq!(
        sandbox_relationship(&world, &first).await.unwrap()["status"],
        "expired"
    );
    poll_until("the 30-day warning", MINUTE, || async {
        world
            .events("stuck")
            .iter()
            .any(|e| e.starts_with("SuccessorApprovalPending:") && e.contains("within 30 day(s)"))
            .then_some(())
    })
    .await;
    world.advance_clock(22.0 * DAY).await;
    poll_until("the 7-day warning", MINUTE, || async {
        world
            .events("stuck")
            .iter()
            .any(|e| e.starts_with("SuccessorApprovalPending:") && e.contains("within 7 day(s)"))
            .then_some(())
    })
    .await;
    let object = world.relationships().get("stuck").await.unwrap();
    let renewing = condition(&object, "Renewing").unwrap();
    assert_eq!(renewing.1, "SuccessorApprovalPending");
    assert!(renewing.2.contains(&second), "{}", renewing.2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_operator_during_hand_overs_converges_without_a_duplicate_successor() {
    const COUNT: usize = 4;
    let mut world = World::start("e2e-successor-crash", SandboxOptions::default()).await;
    let mut old = Vec::new();
    for i in 0..COUNT {
        let name = format!("h{i}");
        old.push(ready(&world, &name, &global_admin(&name, "P60D", "P30D")).await);
    }
    world.advance_clock(31.0 * DAY).await;
    let mut successors = Vec::new();
    for i in 0..COUNT {
        successors.push(pending_successor(&world, &format!("h{i}")).await.0);
    }
    let faults = json!({"seed": 5, "rules": [{"pathPrefix": "/v1.0/tenantRelationships", "rate": 0.1, "statuses": [503], "latencyMs": 80}]});
    assert!(world.put_control("faults", faults).await.is_success());
    for id in &successors {
        approve(&world, id).await;
    }
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next_delay = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Duration::from_millis(40 + seed % 600)
    };
    let deadline = std::time::Instant::now() + 3 * MINUTE;
    let mut kills = 0;
    loop {
        tokio::time::sleep(next_delay()).await;
        if kills < 15 {
            world.kill_operator();
            kills += 1;
            world.start_operator();
        }
        let list = world
            .relationships()
            .list(&Default::default())
            .await
            .unwrap();
        let switched = list
            .items
            .iter()
            .filter(|o| {
                o.status.as_ref().is_some_and(|s| {
                    s.successor.is_none()
                        && s.previous_relationships
                            .iter()
                            .any(|p| p.state.as_deref() == Some("terminated"))
                })
            })
            .count();
        if switched == COUNT {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {switched} of {COUNT} handed over after {kills} kills"
        );
    }
    assert!(kills >= 3, "killed only {kills} times");
    let rels = world.sandbox_relationships().await;
    assert_eq!(
        rels.len(),
        2 * COUNT,
        "one successor each, nothing more: {rels:?}"
    );
    for (i, id) in successors.iter().enumerate() {
        let object = world.relationships().get(&format!("h{i}")).await.unwrap();
        assert_eq!(
            object.status.unwrap().relationship_id.as_deref(),
            Some(id.as_str())
        );
    }
    for id in &old {
        assert_eq!(
            sandbox_relationship(&world, id).await.unwrap()["status"],
            "terminated"
        );
    }
}
