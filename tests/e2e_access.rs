//! "Access that works, verified" end to end: the real kube-apiserver, the sandbox and the
//! operator binary. A relationship that reaches Ready checks with the partner user's delegated
//! token that its access works (`AccessVerified=True`); the sandbox then takes the user out of the
//! assigned security group, and the next check (a short `--access-verify-interval`) turns the
//! condition False with Microsoft's error. The sandbox's request log shows the check read with a
//! delegated (app + user) token and wrote nothing.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::sandbox::{SandboxOptions, defaults};
use serde_json::{Value, json};
use std::time::Duration;
use support::operator::{World, condition};

const MINUTE: Duration = Duration::from_secs(60);
const HELPDESK: &str = defaults::HELPDESK_GROUP_ID;
/// The read the check makes (Microsoft Graph's own service principal in the customer).
const CHECK_PATH: &str = "/v1.0/servicePrincipals";

fn manifest(name: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {}\n  roles: [Directory Readers, Helpdesk Administrator]\n  duration: P60D\n  autoExtend: false\n  accessAssignments:\n    - securityGroupId: {HELPDESK}\n      roles: [Directory Readers, Helpdesk Administrator]\n",
        defaults::CONTOSO_TENANT_ID
    )
}

/// The logged calls of the access check (the read in the customer tenant).
async fn checks(world: &World) -> Vec<Value> {
    let log = world.http_get("requests").await;
    log["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["path"] == CHECK_PATH)
        .collect()
}

async fn total_writes(world: &World) -> u64 {
    world.http_get("requests").await["totals"]["writes"]
        .as_u64()
        .expect("the request log counts writes")
}

fn access(o: &gdap_operator::api::GdapRelationship) -> Option<(String, String, String)> {
    condition(o, "AccessVerified")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_is_verified_with_the_users_token_and_a_removed_access_turns_it_false() {
    let world = World::start_with_args(
        "e2e-access",
        SandboxOptions::default(),
        &["--access-verify-interval", "2s"],
    )
    .await;
    world.apply(&manifest("contoso"));
    let id = world
        .wait_for("contoso", "approvalPending", MINUTE, |o| {
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
        .wait_for("contoso", "Ready", MINUTE, |o| {
            (condition(o, "Ready")?.0 == "True").then_some(())
        })
        .await;
    // Microsoft propagates GDAP access for a while after the assignment turns active (the
    // sandbox: 15-90 s); the sandbox's clock moves past it instead of the test sleeping. Until
    // then a refusal is only `Propagating`, never `AccessRefused`.
    world.advance_clock(120.0).await;
    let (_, reason, message) = world
        .wait_for("contoso", "AccessVerified=True", MINUTE, |o| {
            access(o).filter(|c| c.0 == "True")
        })
        .await;
    assert_eq!(reason, "AccessWorks", "{message}");
    let object = world.relationships().get("contoso").await.unwrap();
    assert!(object.status.unwrap().access_verified_at.is_some());

    let seen = checks(&world).await;
    assert!(!seen.is_empty(), "the check read the customer's directory");
    for call in &seen {
        assert_eq!(call["method"], "GET", "{call}");
        assert_eq!(
            call["token"], "user",
            "the check uses the partner user's delegated (app + user) token: {call}"
        );
    }
    let writes_before = total_writes(&world).await;

    // The partner's access goes: the user is removed from the assigned security group (the
    // relationship stays active, its assignment too).
    let removed = world
        .delete_control(&format!(
            "groups/{HELPDESK}/members/{}",
            defaults::PARTNER_ADMIN_UPN
        ))
        .await;
    assert!(removed.is_success(), "remove member: {removed}");
    let (_, reason, message) = world
        .wait_for("contoso", "AccessVerified=False", MINUTE, |o| {
            access(o).filter(|c| c.0 == "False")
        })
        .await;
    assert_eq!(reason, "AccessRefused", "{message}");
    assert!(
        message.contains("Authorization_RequestDenied") || message.contains("AADSTS50020"),
        "Microsoft's error is in the message: {message}"
    );
    let object = world.relationships().get("contoso").await.unwrap();
    assert_eq!(
        condition(&object, "Ready").map(|c| c.0),
        Some("True".into()),
        "Ready keeps its meaning: the relationship and its assignments are in place"
    );
    assert!(
        world
            .events("contoso")
            .iter()
            .any(|e| e.starts_with("AccessRefused:")),
        "a Warning event when it turns False: {:?}",
        world.events("contoso")
    );
    let metrics = world.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gdap_relationship_access_refused{")
                && l.contains("name=\"contoso\"")
                && l.ends_with(" 1")),
        "the gauge turns 1: {metrics}"
    );
    let object_json = serde_json::to_value(&object).unwrap();
    let (health, health_message) = support::argocd::health("GdapRelationship", &object_json);
    assert_eq!(health, "Degraded", "{health_message}");
    assert_eq!(health_message, message);

    let seen = checks(&world).await;
    assert!(
        seen.iter()
            .any(|c| c["status"] == 403 && c["token"] == "user"),
        "the refused read was the user's: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|c| c["method"] == "GET" && c["token"] == "user")
    );
    assert_eq!(
        total_writes(&world).await,
        writes_before,
        "checking wrote nothing to Microsoft"
    );

    // The access back: the next check finds it working again.
    let added = world
        .put_control(
            &format!("groups/{HELPDESK}/members/{}", defaults::PARTNER_ADMIN_UPN),
            json!({}),
        )
        .await;
    assert!(added.is_success(), "add member: {added}");
    world
        .wait_for("contoso", "AccessVerified=True again", MINUTE, |o| {
            access(o).filter(|c| c.0 == "True")
        })
        .await;
}
