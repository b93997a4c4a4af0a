//! Deletion never leaks a customer's admin access (real API server with kube-controller-manager,
//! the sandbox, the operator binary): other controllers' finalizers survive, the credentials
//! Secret outlives the relationships that need it — deleted alone or with its namespace — a
//! terminate that keeps failing is retried until Microsoft confirms it, and a relationship
//! deleted while awaiting approval is terminated if the customer approves it later.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::sandbox::{SandboxOptions, defaults};
use serde_json::{Value, json};
use std::time::Duration;
use support::operator::{World, condition, poll_until};

const MINUTE: Duration = Duration::from_secs(60);
const IN_USE: &str = "gdap.io/credentials-in-use";
const RELATIONSHIPS: &str = "/v1.0/tenantRelationships/delegatedAdminRelationships";

fn manifest(name: &str, metadata: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {name}\n{metadata}spec:\n  customer:\n    tenantId: {}\n  roles: [Directory Readers, Helpdesk Administrator]\n  duration: P60D\n  accessAssignments:\n    - securityGroupId: {}\n      roles: [Directory Readers]\n",
        defaults::CONTOSO_TENANT_ID,
        defaults::HELPDESK_GROUP_ID
    )
}

async fn approve(world: &World, id: &str) {
    let status = world
        .control(&format!("relationships/{id}/approve"), json!({}))
        .await;
    assert!(status.is_success(), "approve returned {status}");
}

/// Applies `name` and waits until it awaits approval; returns the relationship id.
async fn pending(world: &World, name: &str, metadata: &str) -> String {
    world.apply(&manifest(name, metadata));
    world
        .wait_for(name, "approvalPending", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.state.as_deref() == Some("approvalPending"))
                .then(|| s.relationship_id.clone())
                .flatten()
        })
        .await
}

async fn ready(world: &World, name: &str, metadata: &str) -> String {
    let id = pending(world, name, metadata).await;
    approve(world, &id).await;
    world
        .wait_for(name, "Ready", MINUTE, |o| {
            (condition(o, "Ready")?.0 == "True").then_some(())
        })
        .await;
    id
}

async fn wait_terminated(world: &World, id: &str) {
    poll_until(
        "the relationship terminated in Microsoft",
        MINUTE,
        || async {
            (world.sandbox_status(id).await.as_deref() == Some("terminated")).then_some(())
        },
    )
    .await;
}

async fn wait_object_gone(world: &World, name: &str) {
    poll_until(&format!("{name} to go away"), MINUTE, || async {
        world
            .relationships()
            .get_opt(name)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

async fn secret_finalizers(world: &World) -> Option<Vec<String>> {
    let secret = world
        .secrets()
        .get_opt("partner-credentials")
        .await
        .unwrap()?;
    Some(secret.metadata.finalizers.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_finalizer_survives_creation_and_deletion() {
    let world = World::start("e2e-foreign", SandboxOptions::default()).await;
    let id = ready(&world, "shared", "  finalizers: [example.com/keep-me]\n").await;
    let object = world.relationships().get("shared").await.unwrap();
    let finalizers = object.metadata.finalizers.unwrap_or_default();
    assert!(
        finalizers.contains(&"example.com/keep-me".to_string())
            && finalizers.contains(&"gdap.io/relationship".to_string()),
        "both finalizers while alive: {finalizers:?}"
    );
    let out = world.kubectl(&["delete", "gdap", "shared", "--wait=false"]);
    assert!(out.status.success());
    wait_terminated(&world, &id).await;
    let after = poll_until("the operator's finalizer removed", MINUTE, || async {
        let o = world.relationships().get("shared").await.ok()?;
        let f = o.metadata.finalizers.unwrap_or_default();
        (!f.contains(&"gdap.io/relationship".to_string())).then_some(f)
    })
    .await;
    assert_eq!(
        after,
        ["example.com/keep-me"],
        "the foreign finalizer is kept"
    );
    let patch = json!({"metadata": {"finalizers": null}});
    world
        .relationships()
        .patch(
            "shared",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    wait_object_gone(&world, "shared").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_secret_first_still_terminates_then_the_secret_goes() {
    let world = World::start("e2e-secret-first", SandboxOptions::default()).await;
    let id = ready(&world, "guarded", "").await;
    assert!(
        secret_finalizers(&world)
            .await
            .unwrap()
            .contains(&IN_USE.to_string()),
        "the Secret is held while in use"
    );
    let out = world.kubectl(&["delete", "secret", "partner-credentials", "--wait=false"]);
    assert!(out.status.success());
    let secret = world.secrets().get("partner-credentials").await.unwrap();
    assert!(
        secret.metadata.deletion_timestamp.is_some(),
        "the Secret waits, marked for deletion"
    );
    let out = world.kubectl(&["delete", "gdap", "guarded", "--wait=false"]);
    assert!(out.status.success());
    wait_terminated(&world, &id).await;
    wait_object_gone(&world, "guarded").await;
    poll_until("the Secret to go away", MINUTE, || async {
        secret_finalizers(&world).await.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_namespace_terminates_first_and_the_namespace_goes_away() {
    let world = World::start("e2e-namespace", SandboxOptions::default()).await;
    let id = ready(&world, "tenant", "").await;
    let out = world
        .cp
        .kubectl(&["delete", "namespace", &world.namespace, "--wait=false"]);
    assert!(out.status.success());
    wait_terminated(&world, &id).await;
    poll_until(
        "the namespace to go away",
        Duration::from_secs(180),
        || async {
            let out = world.cp.kubectl(&["get", "namespace", &world.namespace]);
            (!out.status.success()).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminate_that_keeps_failing_is_retried_until_microsoft_confirms_it() {
    let world = World::start("e2e-terminate-faults", SandboxOptions::default()).await;
    let id = ready(&world, "stubborn", "").await;
    let rule = json!({"rules": [{
        "pathPrefix": format!("{RELATIONSHIPS}/{id}/requests"),
        "method": "POST",
        "rate": 1.0,
        // 503 is retried by the client itself; 500 on a POST ends the client's retries at once
        // (the outcome is unknown): together they outlast every retry the client makes.
        "statuses": [503, 500],
    }]});
    assert!(world.put_control("faults", rule).await.is_success());
    let out = world.kubectl(&["delete", "gdap", "stubborn", "--wait=false"]);
    assert!(out.status.success());
    let path = format!("{id}/requests");
    let failed_attempts = world
        .wait_for("stubborn", "two failed reconciles", 2 * MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.failed_attempts >= 2).then_some(s.failed_attempts)
        })
        .await;
    let posts = world.count_requests("POST", &path).await;
    assert!(
        posts > 1,
        "the operator kept trying after the client's own retries: {posts} POSTs, {failed_attempts} failures"
    );
    let object = world.relationships().get("stubborn").await.unwrap();
    let (status, reason, _) = condition(&object, "Synced").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "TransientError")
    );
    assert_eq!(world.sandbox_status(&id).await.as_deref(), Some("active"));
    assert!(world.delete_control("faults").await.is_success());
    wait_terminated(&world, &id).await;
    wait_object_gone(&world, "stubborn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relationship_deleted_before_approval_is_terminated_when_approved_later() {
    let world = World::start("e2e-withdrawal", SandboxOptions::default()).await;
    let id = pending(&world, "early", "").await;
    let out = world.kubectl(&["delete", "gdap", "early", "--wait=false"]);
    assert!(out.status.success());
    wait_object_gone(&world, "early").await;
    let secret = world.secrets().get("partner-credentials").await.unwrap();
    let records: Vec<Value> = serde_json::from_str(
        secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("gdap.io/pending-withdrawals"))
            .expect("a withdrawal record on the Secret"),
    )
    .unwrap();
    assert_eq!(records[0]["relationshipId"], id.as_str());
    assert!(
        secret
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&IN_USE.to_string()),
        "the Secret stays in use while the record waits"
    );
    assert!(
        world
            .events("early")
            .iter()
            .any(|e| e.starts_with("Released:")
                && e.contains("terminated if the customer approves it")),
        "{:?}",
        world.events("early")
    );

    approve(&world, &id).await;
    wait_terminated(&world, &id).await;
    poll_until(
        "the record removed and the Secret released",
        MINUTE,
        || async {
            let secret = world.secrets().get("partner-credentials").await.ok()?;
            let annotations = secret.metadata.annotations.unwrap_or_default();
            let finalizers = secret.metadata.finalizers.unwrap_or_default();
            (!annotations.contains_key("gdap.io/pending-withdrawals")
                && !finalizers.contains(&IN_USE.to_string()))
            .then_some(())
        },
    )
    .await;
    assert!(
        world
            .events("partner-credentials")
            .iter()
            .any(|e| e.starts_with("Withdrawn:") && e.contains(&id)),
        "{:?}",
        world.events("partner-credentials")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_deletion_waits_and_says_how_to_proceed() {
    let world = World::start("e2e-no-creds", SandboxOptions::default()).await;
    let id = ready(&world, "stranded", "").await;
    // Someone deletes the Secret and strips the operator's finalizer until it is gone. (Stripped
    // before the delete, the operator may put it back in between, and a waiting `kubectl delete`
    // would then wait forever.)
    let out = world.kubectl(&["delete", "secret", "partner-credentials", "--wait=false"]);
    assert!(out.status.success());
    poll_until("the Secret gone", MINUTE, || async {
        let patch = json!({"metadata": {"finalizers": null}});
        let stripped = world
            .secrets()
            .patch(
                "partner-credentials",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await;
        matches!(stripped, Err(kube::Error::Api(e)) if e.code == 404).then_some(())
    })
    .await;
    let out = world.kubectl(&["delete", "gdap", "stranded", "--wait=false"]);
    assert!(out.status.success());
    let message = world
        .wait_for(
            "stranded",
            "Synced=False CredentialsNeededForDeletion",
            MINUTE,
            |o| {
                let (status, reason, message) = condition(o, "Synced")?;
                (status == "False" && reason == "CredentialsNeededForDeletion").then_some(message)
            },
        )
        .await;
    assert!(message.contains("deletionPolicy: Orphan"), "{message}");
    assert_eq!(
        world.sandbox_status(&id).await.as_deref(),
        Some("active"),
        "nothing was orphaned silently: the object is still there and so is the relationship"
    );
    world.apply(&manifest("stranded", "").replace(
        "  duration: P60D\n",
        "  duration: P60D\n  deletionPolicy: Orphan\n",
    ));
    wait_object_gone(&world, "stranded").await;
}
