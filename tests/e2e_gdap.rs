//! GdapRelationship end to end: the real kube-apiserver, the sandbox, and the operator binary.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::microsoft::{
    Endpoints, MicrosoftClients, PartnerCredentials, Secret, TokenOptions, TransportConfig,
    rotation_fn,
};
use gdap_operator::sandbox::{RefreshTokenFixture, SandboxOptions, defaults};
use serde_json::json;
use std::time::Duration;
use support::operator::{ChartRbac, World, condition};

const MINUTE: Duration = Duration::from_secs(60);
const HELPDESK: &str = defaults::HELPDESK_GROUP_ID;
const APP_ADMINS: &str = defaults::APP_ADMINS_GROUP_ID;

fn manifest(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {}\n{extra}",
        defaults::CONTOSO_TENANT_ID
    )
}

fn standard(name: &str) -> String {
    manifest(
        name,
        &format!(
            "  roles: [Directory Readers, Helpdesk Administrator, User Administrator]\n  duration: P60D\n  autoExtend: false\n  accessAssignments:\n    - securityGroupId: {HELPDESK}\n      roles: [Directory Readers, Helpdesk Administrator]\n"
        ),
    )
}

/// Argo CD's health of the live object, by the chart's health.lua.
fn argocd_health(world: &World, name: &str) -> (String, String) {
    let out = world.kubectl(&["get", "gdap", name, "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let object: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    support::argocd::health("GdapRelationship", &object)
}

async fn approve(world: &World, id: &str) {
    let status = world
        .control(&format!("relationships/{id}/approve"), json!({}))
        .await;
    assert!(status.is_success(), "approve returned {status}");
}

/// Creates `name` and waits for it to be pending approval; returns the relationship id.
async fn create_pending(world: &World, name: &str) -> String {
    world.apply(&standard(name));
    world
        .wait_for(name, "approvalPending with a link", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.state.as_deref() == Some("approvalPending") && s.approval_url.is_some())
                .then(|| s.relationship_id.clone())?
        })
        .await
}

async fn create_ready(world: &World, name: &str) -> String {
    let id = create_pending(world, name).await;
    approve(world, &id).await;
    world
        .wait_for(name, "Ready", MINUTE, |o| {
            (condition(o, "Ready")?.0 == "True").then_some(())
        })
        .await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_reaches_ready_follows_spec_edits_and_restores_out_of_band_removals() {
    let world = World::start("e2e-life", with_portal_session()).await;
    let id = create_pending(&world, "contoso").await;
    let object = world.relationships().get("contoso").await.unwrap();
    let status = object.status.clone().unwrap();
    assert!(
        status
            .approval_url
            .unwrap()
            .ends_with(&format!("/granularAdminRelationships/{id}"))
    );
    assert!(status.approval_expires_at.is_some());
    let approved = condition(&object, "Approved").unwrap();
    assert_eq!(
        (approved.0.as_str(), approved.1.as_str()),
        ("False", "ApprovalPending")
    );
    assert!(
        world
            .events("contoso")
            .iter()
            .any(|e| e.starts_with("ApprovalRequested:") && e.contains(&id))
    );
    let (health, message) = argocd_health(&world, "contoso");
    assert_eq!(
        health, "Progressing",
        "Argo CD health while pending: {message}"
    );
    assert!(
        message.contains(&id),
        "Argo CD's message carries the approval link: {message}"
    );

    approve(&world, &id).await;
    let wait = world.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "gdap/contoso",
        "--timeout=60s",
    ]);
    assert!(
        wait.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&wait.stderr)
    );
    let object = world.relationships().get("contoso").await.unwrap();
    let status = object.status.clone().unwrap();
    assert_eq!(status.state.as_deref(), Some("active"));
    assert_eq!(argocd_health(&world, "contoso").0, "Healthy");
    assert!(status.activated_at.is_some() && status.ends_at.is_some());
    assert_eq!(status.access_assignments.len(), 1);
    assert_eq!(
        status.access_assignments[0].state.as_deref(),
        Some("active")
    );
    let relationships = world.sandbox_relationships().await;
    assert_eq!(
        relationships.len(),
        1,
        "exactly one relationship in Microsoft"
    );
    assert_eq!(relationships[0]["assignments"][0]["groupId"], HELPDESK);

    // An edit of the assignment's roles in the spec reaches Graph.
    let edited = standard("contoso").replace(
        "      roles: [Directory Readers, Helpdesk Administrator]\n",
        &format!("      roles: [Directory Readers]\n    - securityGroupId: {APP_ADMINS}\n      roles: [User Administrator]\n"),
    );
    world.apply(&edited);
    let readers = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
    let user_admin = "fe930be7-5e62-47db-91af-98c3a49a38b1";
    wait_sandbox(&world, "edited assignments", |rels| {
        let a = rels[0]["assignments"].as_array()?;
        let roles_of = |g: &str| {
            a.iter()
                .find(|x| x["groupId"] == g && x["status"] == "active")
                .map(|x| x["roles"].clone())
        };
        (roles_of(HELPDESK)? == json!([readers]) && roles_of(APP_ADMINS)? == json!([user_admin]))
            .then_some(())
    })
    .await;
    world
        .wait_for("contoso", "Ready after the edit", MINUTE, |o| {
            (condition(o, "Ready")?.0 == "True" && o.status.as_ref()?.access_assignments.len() == 2)
                .then_some(())
        })
        .await;
    // The role edit went out as exactly one PATCH, answered 202, and nothing was refused.
    let log = world.http_get("requests").await;
    let patches: Vec<_> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "PATCH" && r["path"].as_str().unwrap().contains("/accessAssignments/")
        })
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(patches, [202], "one PATCH per role edit, never repeated");

    // An assignment removed in the portal is restored on the next resync.
    let removed = remove_assignment_out_of_band(&world, &id, HELPDESK).await;
    wait_sandbox(&world, "the restored assignment", |rels| {
        let a = rels[0]["assignments"].as_array()?;
        a.iter()
            .any(|x| {
                x["groupId"] == HELPDESK && x["status"] == "active" && x["id"] != removed.as_str()
            })
            .then_some(())
    })
    .await;
    assert_eq!(world.sandbox_relationships().await.len(), 1);

    // The rotated refresh token was written back to the Secret.
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(world.client.clone(), &world.namespace);
    let secret = secrets.get("partner-credentials").await.unwrap();
    let stored = String::from_utf8(secret.data.unwrap()["refreshToken"].0.clone()).unwrap();
    assert_ne!(
        stored,
        defaults::PARTNER_REFRESH_TOKEN,
        "the Secret holds the rotated token"
    );
    assert!(
        secret
            .metadata
            .annotations
            .unwrap()
            .contains_key("gdap.io/refresh-token-issued-at")
    );

    // Metrics tell the state, the expiry and the reconciles.
    let metrics = world.metrics().await;
    assert!(
        metrics.contains("gdap_relationships{state=\"active\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gdap_relationship_expiry_seconds{namespace="),
        "{metrics}"
    );
    assert!(
        metrics.contains("gdap_reconciles_total{kind=\"GdapRelationship\",result=\"success\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gdap_refresh_token_age_seconds"),
        "{metrics}"
    );

    // A steady object is read on every resync, never written: its resourceVersion stays.
    world
        .wait_for(
            "contoso",
            "steady: Ready with every assignment active",
            MINUTE,
            |o| {
                let s = o.status.as_ref()?;
                (condition(o, "Ready")?.0 == "True"
                    && s.access_assignments
                        .iter()
                        .all(|a| a.state.as_deref() == Some("active")))
                .then_some(())
            },
        )
        .await;
    world.wait_for_reconciles(2.0).await;
    let version = |o: kube::core::ObjectMeta| o.resource_version.unwrap();
    let before = version(world.relationships().get("contoso").await.unwrap().metadata);
    world.wait_for_reconciles(3.0).await;
    let after = version(world.relationships().get("contoso").await.unwrap().metadata);
    assert_eq!(before, after, "a steady object's status is not rewritten");
}

/// The refresh token of a second session of the partner admin (a person in the portal).
const PORTAL_REFRESH_TOKEN: &str = "portal-session-refresh-token";

fn with_portal_session() -> SandboxOptions {
    let mut options = SandboxOptions::default();
    options.fixture.apps[0]
        .refresh_tokens
        .push(RefreshTokenFixture {
            user: defaults::PARTNER_ADMIN_UPN.into(),
            token: PORTAL_REFRESH_TOKEN.into(),
            mfa: true,
        });
    options
}

/// Removes an assignment as a person in the portal would: through Graph, with their own session.
async fn remove_assignment_out_of_band(
    world: &World,
    relationship_id: &str,
    group: &str,
) -> String {
    let endpoints = Endpoints::local(&world.sandbox.base_url(), None).unwrap();
    let credentials = PartnerCredentials {
        partner_tenant_id: defaults::PARTNER_TENANT_ID.into(),
        client_id: defaults::PARTNER_CLIENT_ID.into(),
        client_credential: Secret::new(defaults::PARTNER_CLIENT_SECRET).into(),
        refresh_token: Secret::new(PORTAL_REFRESH_TOKEN),
        refresh_token_issued_at: None,
    };
    let rotation = rotation_fn(|_| async { Ok(()) });
    let clients = MicrosoftClients::new(
        TransportConfig::new(endpoints),
        credentials,
        rotation,
        TokenOptions::default(),
    )
    .unwrap();
    let token = clients.tokens.partner_graph();
    let assignments = clients
        .gdap
        .list_access_assignments(&token, relationship_id)
        .await
        .unwrap();
    let target = assignments
        .iter()
        .find(|a| a.access_container.access_container_id == group)
        .expect("assignment exists");
    clients
        .gdap
        .delete_access_assignment(
            &token,
            relationship_id,
            &target.id,
            target.etag.as_deref().unwrap_or_default(),
        )
        .await
        .unwrap();
    target.id.clone()
}

async fn wait_sandbox<T>(
    world: &World,
    what: &str,
    check: impl Fn(&Vec<serde_json::Value>) -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + MINUTE;
    loop {
        let rels = world.sandbox_relationships().await;
        if let Some(v) = check(&rels) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            serde_json::to_string_pretty(&rels).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aging_produces_the_expiring_condition_and_one_event_per_threshold() {
    let world = World::start("e2e-expiry", SandboxOptions::default()).await;
    create_ready(&world, "aging").await;
    let expiring = world.relationships().get("aging").await.unwrap();
    assert_eq!(condition(&expiring, "Expiring").unwrap().0, "False");
    for (days, left, threshold) in [(31, 28, 30), (23, 5, 7), (5, 0, 1)] {
        world.advance_clock(days as f64 * 86_400.0).await;
        let message = world
            .wait_for(
                "aging",
                &format!("Expiring with {left} days left"),
                MINUTE,
                |o| {
                    let (status, reason, message) = condition(o, "Expiring")?;
                    (status == "True"
                        && reason == "ExpiresSoon"
                        && message.contains(&format!("({left} days left)")))
                    .then_some(message)
                },
            )
            .await;
        assert!(message.contains("will not auto-extend"), "{message}");
        let wanted = format!("ExpiresSoon: the GDAP relationship ends within {threshold} day(s)");
        let deadline = std::time::Instant::now() + MINUTE;
        while !world.events("aging").iter().any(|e| e.starts_with(&wanted)) {
            assert!(
                std::time::Instant::now() < deadline,
                "no event {wanted}: {:?}",
                world.events("aging")
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    world.wait_for_reconciles(3.0).await; // more resyncs: warnings must not repeat
    let events = world.events("aging");
    world.advance_clock(2.0 * 86_400.0).await;
    world
        .wait_for("aging", "Ready=False Expired", MINUTE, |o| {
            let (status, reason, _) = condition(o, "Ready")?;
            (status == "False"
                && reason == "Expired"
                && o.status.as_ref()?.state.as_deref()?.starts_with("expir"))
            .then_some(())
        })
        .await;
    for threshold in [30, 7, 1] {
        let wanted = format!("ExpiresSoon: the GDAP relationship ends within {threshold} day(s)");
        let sent: Vec<_> = events.iter().filter(|e| e.starts_with(&wanted)).collect();
        assert_eq!(
            sent.len(),
            1,
            "{threshold}-day warning sent {} times: {events:?}",
            sent.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_termination_is_reported_and_not_recreated() {
    let world = World::start("e2e-term", SandboxOptions::default()).await;
    let id = create_ready(&world, "terminated").await;
    assert!(
        world
            .control(&format!("relationships/{id}/terminate"), json!({}))
            .await
            .is_success()
    );
    let (reason, message) = world
        .wait_for("terminated", "Ready=False Terminated", MINUTE, |o| {
            let (status, reason, message) = condition(o, "Ready")?;
            (status == "False"
                && reason == "Terminated"
                && o.status.as_ref()?.state.as_deref() == Some("terminated"))
            .then_some((reason, message))
        })
        .await;
    assert_eq!(reason, "Terminated");
    assert!(message.contains("not recreated"), "{message}");
    world.wait_for_reconciles(3.0).await;
    assert_eq!(
        world.sandbox_relationships().await.len(),
        1,
        "no new relationship was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_terminates_with_delete_and_leaves_it_with_orphan() {
    let world = World::start("e2e-delete", SandboxOptions::default()).await;
    let kept = create_ready(&world, "kept").await;
    let gone = create_ready(&world, "gone").await;
    world.apply(&standard("kept").replace(
        "  autoExtend: false\n",
        "  autoExtend: false\n  deletionPolicy: Orphan\n",
    ));
    for name in ["kept", "gone"] {
        let out = world.kubectl(&["delete", "gdap", name, "--timeout=60s"]);
        assert!(
            out.status.success(),
            "delete {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rels = world.sandbox_relationships().await;
    let status_of = |id: &str| {
        rels.iter()
            .find(|r| r["id"] == id)
            .map(|r| r["status"].as_str().unwrap().to_string())
    };
    assert_eq!(
        status_of(&kept).as_deref(),
        Some("active"),
        "Orphan leaves the relationship"
    );
    assert!(
        matches!(status_of(&gone).as_deref(), Some("terminated")),
        "Delete terminates it: {:?}",
        status_of(&gone)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_roles_after_the_lock_is_refused_and_nothing_is_sent() {
    let world = World::start("e2e-immutable", SandboxOptions::default()).await;
    let id = create_pending(&world, "locked").await;
    world.apply(
        &standard("locked").replace("User Administrator]", "User Administrator, Global Reader]"),
    );
    let message = world
        .wait_for("locked", "Synced=False RolesImmutable", MINUTE, |o| {
            let (status, reason, message) = condition(o, "Synced")?;
            (status == "False" && reason == "RolesImmutable").then_some(message)
        })
        .await;
    assert!(
        message.contains("spec.roles changed after the relationship was locked"),
        "{message}"
    );
    assert!(
        message.contains("spec.renewal.policy: Successor"),
        "the message names the policy that would allow it: {message}"
    );
    let requests = world.http_get("requests").await;
    let writes: Vec<_> = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "PATCH" || r["method"] == "DELETE")
        .collect();
    assert!(
        writes.is_empty(),
        "nothing may be sent to Graph after an immutable edit: {writes:?}"
    );
    let rels = world.sandbox_relationships().await;
    assert_eq!(rels.len(), 1);
    assert_eq!(rels[0]["id"], id.as_str());
    assert_eq!(
        rels[0]["roles"].as_array().unwrap().len(),
        3,
        "roles unchanged in Microsoft"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_adopts_by_display_name_and_never_writes_and_relationship_id_adopts_by_id() {
    let world = World::start("e2e-observe", SandboxOptions::default()).await;
    let id = create_pending(&world, "managed").await;
    let display_name = world
        .relationships()
        .get("managed")
        .await
        .unwrap()
        .status
        .unwrap()
        .display_name
        .unwrap();
    let observer = standard("watcher").replace(
        "  autoExtend: false\n",
        &format!("  autoExtend: false\n  managementPolicy: Observe\n  deletionPolicy: Delete\n  displayName: {display_name}\n"),
    );
    world.apply(&observer);
    world
        .wait_for("watcher", "adoption", MINUTE, |o| {
            (o.status.as_ref()?.relationship_id.as_deref() == Some(id.as_str())).then_some(())
        })
        .await;
    approve(&world, &id).await;
    world
        .wait_for("managed", "Ready", MINUTE, |o| {
            (condition(o, "Ready")?.0 == "True").then_some(())
        })
        .await;
    // Adoption by id: a second object names the relationship and reports it, creating nothing.
    let adopter = standard("adopter").replace(
        "  autoExtend: false\n",
        &format!("  autoExtend: false\n  relationshipId: {id}\n  deletionPolicy: Orphan\n"),
    );
    world.apply(&adopter);
    world
        .wait_for("adopter", "adoption by id", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.relationship_id.as_deref() == Some(id.as_str())
                && s.state.as_deref() == Some("active"))
            .then_some(())
        })
        .await;
    let out = world.kubectl(&["delete", "gdap", "watcher", "adopter", "--timeout=60s"]);
    assert!(out.status.success());
    let rels = world.sandbox_relationships().await;
    assert_eq!(rels.len(), 1, "adoption never creates");
    assert_eq!(
        rels[0]["status"], "active",
        "Observe never terminates, even with deletionPolicy Delete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_operator_at_random_points_during_50_creations_leaves_exactly_50() {
    const COUNT: usize = 50;
    let mut world = World::start("e2e-crash", SandboxOptions::default()).await;
    // Slow Graph down and fail one call in ten, so the kills land in the middle of creations.
    let faults = json!({"seed": 11, "rules": [{"pathPrefix": "/v1.0/tenantRelationships", "rate": 0.1, "statuses": [503], "latencyMs": 120}]});
    assert!(world.put_control("faults", faults).await.is_success());
    let manifests: Vec<String> = (0..COUNT)
        .map(|i| {
            manifest(
                &format!("crash-{i}"),
                "  roles: [Global Reader]\n  duration: P30D\n",
            )
        })
        .collect();
    world.apply(&manifests.join("---\n"));
    // A fixed-seed generator, so a failure can be replayed with the same kill points.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next_delay = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Duration::from_millis(30 + seed % 700)
    };
    let mut kills = 0;
    let deadline = std::time::Instant::now() + 4 * MINUTE;
    loop {
        tokio::time::sleep(next_delay()).await;
        if kills < 40 {
            world.kill_operator();
            kills += 1;
            world.start_operator();
        }
        let list = world
            .relationships()
            .list(&Default::default())
            .await
            .unwrap();
        let pending = list
            .items
            .iter()
            .filter(|o| {
                o.status.as_ref().and_then(|s| s.state.as_deref()) == Some("approvalPending")
            })
            .count();
        if pending == COUNT {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {pending} of {COUNT} reached approvalPending after {kills} kills"
        );
    }
    assert!(kills >= 5, "the operator was killed only {kills} times");
    let rels = world.sandbox_relationships().await;
    let mut names: Vec<&str> = rels
        .iter()
        .map(|r| r["displayName"].as_str().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        rels.len(),
        COUNT,
        "{} relationships in Microsoft after {kills} kills",
        rels.len()
    );
    assert_eq!(names.len(), COUNT, "display names are unique");
    // Microsoft refuses a second relationship of one display name, so the count above holds
    // whatever the operator sends; its own creates, counted by the sandbox, must too: each name
    // asked for once, again only after a kill (at most one repeat per kill) or an unread answer.
    let creates =
        support::fleet::assert_created_once(&world, support::fleet::Repeats::Fleet(kills as u64))
            .await;
    for name in &names {
        assert!(
            creates.contains_key(&format!("relationship {}", name.to_ascii_lowercase())),
            "the create of {name} is counted"
        );
    }
    let list = world
        .relationships()
        .list(&Default::default())
        .await
        .unwrap();
    for object in list.items {
        let id = object.status.unwrap().relationship_id.unwrap();
        assert!(
            rels.iter().any(|r| r["id"] == id.as_str()),
            "{id} is the relationship Microsoft has"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_group_is_a_permanent_error_on_its_entry_and_auto_extend_changes_are_patched() {
    let world = World::start("e2e-groups", SandboxOptions::default()).await;
    let missing = "0badc0de-0000-4000-8000-000000000001";
    let yaml = manifest(
        "groups",
        &format!(
            "  roles: [Directory Readers, Helpdesk Administrator]\n  duration: P90D\n  autoExtend: false\n  accessAssignments:\n    - securityGroupId: {HELPDESK}\n      roles: [Directory Readers]\n    - securityGroupId: {missing}\n      roles: [Helpdesk Administrator]\n"
        ),
    );
    world.apply(&yaml);
    let id = world
        .wait_for("groups", "approvalPending", MINUTE, |o| {
            (o.status.as_ref()?.state.as_deref() == Some("approvalPending"))
                .then(|| o.status.as_ref()?.relationship_id.clone())?
        })
        .await;
    approve(&world, &id).await;
    let message = world
        .wait_for("groups", "the failed entry", MINUTE, |o| {
            let status = o.status.as_ref()?;
            let entry = status
                .access_assignments
                .iter()
                .find(|a| a.security_group_id == missing)?;
            let (assigned, reason, _) = condition(o, "AccessAssigned")?;
            let helpdesk_active = status
                .access_assignments
                .iter()
                .any(|a| a.security_group_id == HELPDESK && a.state.as_deref() == Some("active"));
            (entry.failed_at.is_some()
                && assigned == "False"
                && reason == "AssignmentFailed"
                && helpdesk_active)
                .then(|| entry.message.clone())?
        })
        .await;
    assert!(!message.is_empty());
    let object = world.relationships().get("groups").await.unwrap();
    assert_eq!(condition(&object, "Ready").unwrap().0, "False");
    // No crash loop: the refused group is not retried on every resync.
    let posts = |log: &serde_json::Value| {
        log["requests"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter(|r| {
                        r["method"] == "POST"
                            && r["path"]
                                .as_str()
                                .unwrap_or("")
                                .ends_with("/accessAssignments")
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    let before = posts(&world.http_get("requests").await);
    world.wait_for_reconciles(3.0).await; // several resyncs
    assert_eq!(
        posts(&world.http_get("requests").await),
        before,
        "the refused assignment was retried in a loop"
    );

    // Turning autoExtend on for the active relationship is sent to Graph.
    world.apply(&yaml.replace("autoExtend: false", "autoExtend: true"));
    wait_sandbox(&world, "autoExtendDuration P180D", |rels| {
        (rels[0]["autoExtendDuration"] == "P180D").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_visibly_and_a_success_resets_the_count() {
    let world = World::start("e2e-backoff", SandboxOptions::default()).await;
    let id = create_ready(&world, "flaky").await;
    let rule = json!({"rules": [{
        "pathPrefix": "/v1.0/tenantRelationships/delegatedAdminRelationships",
        "method": "GET",
        "rate": 1.0,
        "statuses": [403],
    }]});
    assert!(world.put_control("faults", rule).await.is_success());
    let gets = |log: Vec<(String, String)>| {
        log.iter()
            .filter(|(m, p)| m == "GET" && p.ends_with(&id))
            .count()
    };
    let before = gets(world.requests().await);
    let (attempts, message) = world
        .wait_for("flaky", "three failures in status", MINUTE, |o| {
            let s = o.status.as_ref()?;
            let (synced, _, message) = condition(o, "Synced")?;
            (s.failed_attempts >= 3 && s.last_failure_time.is_some() && synced == "False")
                .then_some((s.failed_attempts, message))
        })
        .await;
    assert!(message.contains("403"), "{message}");
    let tries = gets(world.requests().await) - before;
    assert!(
        tries <= attempts as usize + 2,
        "a refused read is retried with backoff, not in a loop: {tries} GETs for {attempts} failures"
    );
    let object = world.relationships().get("flaky").await.unwrap();
    assert_eq!(
        condition(&object, "Ready").unwrap().0,
        "False",
        "a permanent failure is not Ready"
    );
    assert!(world.delete_control("faults").await.is_success());
    world
        .wait_for("flaky", "Ready again with the count reset", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (condition(o, "Ready")?.0 == "True"
                && s.failed_attempts == 0
                && s.last_failure_time.is_some())
            .then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_ready_after_the_first_list_and_a_busy_metrics_address_stops_the_process() {
    let world = World::start("e2e-health", SandboxOptions::default()).await;
    let url = format!("http://{}/readyz", world.metrics_address);
    let client = reqwest::Client::new();
    support::operator::poll_until("/readyz to answer 200", MINUTE, || async {
        let r = client.get(&url).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let health = client
        .get(format!("http://{}/healthz", world.metrics_address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_gdap-operator"))
        .args(["run", "--namespaces", &world.namespace])
        .arg("--kubeconfig")
        .arg(&world.cp.kubeconfig)
        .args(["--metrics-address", &world.metrics_address])
        .output()
        .unwrap();
    assert!(
        !second.status.success(),
        "a second operator on the same address must stop"
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("cannot serve /healthz, /readyz and /metrics on --metrics-address"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_needs_nothing_beyond_the_charts_cluster_role() {
    runs_under_the_charts_rbac("e2e-rbac", ChartRbac::ClusterWide).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_needs_nothing_beyond_the_charts_namespaced_role() {
    runs_under_the_charts_rbac("e2e-rbac-ns", ChartRbac::Namespaced).await;
}

/// The relationship scenario (create, approval, Ready, deletion with termination) under the RBAC
/// the chart grants, with no `forbidden` answer from the API server.
async fn runs_under_the_charts_rbac(prefix: &str, mode: ChartRbac) {
    let mut world = World::start(prefix, SandboxOptions::default()).await;
    world.run_operator_under_the_charts_rbac(mode);
    assert!(
        world.operator_args.iter().any(|a| a == "--leader-elect"),
        "the chart turns leader election on: {:?}",
        world.operator_args
    );
    let id = create_ready(&world, "rbac").await;
    assert_eq!(
        support::metrics::value(&world.metrics().await, "gdap_leader"),
        Some(1.0),
        "the operator leads on the chart's Lease rules"
    );
    let out = world.kubectl(&["delete", "gdap", "rbac", "--timeout=60s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let terminated = world
        .sandbox_relationships()
        .await
        .iter()
        .any(|r| r["id"] == id.as_str() && r["status"] == "terminated");
    assert!(
        terminated,
        "deletion terminated the relationship in Microsoft"
    );
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(world.client.clone(), &world.namespace);
    let secret = secrets.get("partner-credentials").await.unwrap();
    let stored = String::from_utf8(secret.data.unwrap()["refreshToken"].0.clone()).unwrap();
    assert_ne!(
        stored,
        defaults::PARTNER_REFRESH_TOKEN,
        "the rotated refresh token was written back under the role"
    );
    let exit = world.stop_operator().await;
    assert!(exit.success(), "a graceful stop exits 0, not {exit}");
    let log = world.operator_log().to_lowercase();
    assert!(
        log.contains("released the lease"),
        "the Lease is released on SIGTERM under the role:\n{log}"
    );
    assert!(
        !log.contains("forbidden"),
        "the operator made a forbidden call ({mode:?}):\n{log}"
    );
    assert!(
        world
            .events("rbac")
            .iter()
            .any(|e| e.starts_with("ApprovalRequested:")),
        "events are published under the role"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_is_reported_as_invalid_credentials() {
    let options = SandboxOptions {
        token_lifetime: Duration::from_secs(2), // every reconcile needs a fresh grant
        ..Default::default()
    };
    let world = World::start("e2e-creds", options).await;
    create_pending(&world, "creds").await;
    let revoked = world
        .control(
            &format!("users/{}/revoke-sessions", defaults::PARTNER_ADMIN_UPN),
            json!({}),
        )
        .await;
    assert!(revoked.is_success());
    let message = world
        .wait_for("creds", "Synced=False CredentialsInvalid", MINUTE, |o| {
            let (status, reason, message) = condition(o, "Synced")?;
            (status == "False" && reason == "CredentialsInvalid").then_some(message)
        })
        .await;
    assert!(
        message.contains("50173") || message.to_lowercase().contains("revoked"),
        "{message}"
    );
    assert!(
        !message.contains("sandbox-rt-") && !message.contains(defaults::PARTNER_REFRESH_TOKEN),
        "no token in the message"
    );
    let object = world.relationships().get("creds").await.unwrap();
    assert_eq!(
        object.status.unwrap().state.as_deref(),
        Some("approvalPending"),
        "what was known is kept"
    );
    let series = format!(
        "gdap_credentials_valid{{namespace=\"{}\",secret=\"partner-credentials\"}} 0",
        world.namespace
    );
    let metrics = world.metrics().await;
    assert!(metrics.contains(&series), "{metrics}");
}
