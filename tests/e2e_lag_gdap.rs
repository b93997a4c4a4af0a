//! GdapRelationship end to end under Microsoft's eventual consistency: the sandbox's default
//! consistency model (reads of GDAP relationships lag their writes, here by 2–6 s so that every
//! read after a write is stale), the real kube-apiserver and the operator binary.
//!
//! What they prove, from the sandbox's uncapped count of the writes it received
//! (`totals.writesByPath`): a lagging read never makes the operator write again — one create,
//! one lock, one POST per access assignment, one terminate, no DELETE — and a relationship that
//! merely carries the object's display name is reported (`DisplayNameTaken`) and never written to.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::microsoft::models::gdap::{AccessDetails, CustomerParticipant, NewRelationship};
use gdap_operator::microsoft::{
    Endpoints, MicrosoftClients, PartnerCredentials, Secret, TokenOptions, TransportConfig,
    rotation_fn,
};
use gdap_operator::sandbox::{Consistency, Delay, RefreshTokenFixture, SandboxOptions, defaults};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::operator::{World, condition, poll_until};

const MINUTE: Duration = Duration::from_secs(60);
const HELPDESK: &str = defaults::HELPDESK_GROUP_ID;
const APP_ADMINS: &str = defaults::APP_ADMINS_GROUP_ID;
const RELATIONSHIPS: &str = "/v1.0/tenantRelationships/delegatedAdminRelationships";
/// The refresh token of a second session of the partner admin (a person in the portal).
const PORTAL_REFRESH_TOKEN: &str = "portal-session-refresh-token";

/// Microsoft's consistency (the default), with GDAP reads lagging 2–6 s: longer than the
/// operator's poll interval (1 s), so the reads right after each write are stale.
fn lagging() -> SandboxOptions {
    let mut consistency = Consistency::microsoft();
    consistency.read_lag.gdap = Delay::seconds(2.0, 6.0);
    let mut options = SandboxOptions {
        consistency,
        ..Default::default()
    };
    options.fixture.apps[0]
        .refresh_tokens
        .push(RefreshTokenFixture {
            user: defaults::PARTNER_ADMIN_UPN.into(),
            token: PORTAL_REFRESH_TOKEN.into(),
            mfa: true,
        });
    options
}

fn manifest(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {}\n  roles: [Directory Readers, Helpdesk Administrator, User Administrator]\n  duration: P60D\n  autoExtend: false\n  accessAssignments:\n    - securityGroupId: {HELPDESK}\n      roles: [Directory Readers, Helpdesk Administrator]\n    - securityGroupId: {APP_ADMINS}\n      roles: [User Administrator]\n{extra}",
        defaults::CONTOSO_TENANT_ID
    )
}

/// Every write the sandbox received, `"METHOD /path"` → count (uncapped).
async fn writes(world: &World) -> BTreeMap<String, u64> {
    world.writes_by_path().await
}

fn count(writes: &BTreeMap<String, u64>, key: &str) -> u64 {
    writes.get(key).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_read_lag_each_write_goes_out_once_from_creation_to_termination() {
    let world = World::start("e2e-lag", lagging()).await;
    world.apply(&manifest("lagged", ""));
    let synced_reasons = RefCell::new(BTreeSet::new());
    // Approval pending: one create, one lock — the reads right after each lag.
    let id = poll_until("approvalPending with a link", MINUTE, || async {
        let o = world.relationships().get("lagged").await.ok()?;
        if let Some((_, reason, _)) = condition(&o, "Synced") {
            synced_reasons.borrow_mut().insert(reason);
        }
        let s = o.status.as_ref()?;
        (s.state.as_deref() == Some("approvalPending") && s.approval_url.is_some())
            .then(|| s.relationship_id.clone())?
    })
    .await;
    let w = writes(&world).await;
    assert_eq!(count(&w, &format!("POST {RELATIONSHIPS}")), 1, "{w:?}");
    assert_eq!(
        count(&w, &format!("POST {RELATIONSHIPS}/{id}/requests")),
        1,
        "{w:?}"
    );

    // The customer approves; the operator assigns both groups and becomes Ready.
    let approved = world
        .control(&format!("relationships/{id}/approve"), json!({}))
        .await;
    assert!(approved.is_success(), "approve returned {approved}");
    poll_until("Ready with both assignments active", 2 * MINUTE, || async {
        let o = world.relationships().get("lagged").await.ok()?;
        if let Some((_, reason, _)) = condition(&o, "Synced") {
            synced_reasons.borrow_mut().insert(reason);
        }
        let s = o.status.as_ref()?;
        let active = s
            .access_assignments
            .iter()
            .filter(|a| a.state.as_deref() == Some("active"))
            .count();
        (condition(&o, "Ready")?.0 == "True" && active == 2).then_some(())
    })
    .await;
    // Steady: more reconciles over settled reads write nothing.
    world.wait_for_reconciles(3.0).await;
    let w = writes(&world).await;
    assert_eq!(
        count(&w, &format!("POST {RELATIONSHIPS}")),
        1,
        "one create: {w:?}"
    );
    assert_eq!(
        count(&w, &format!("POST {RELATIONSHIPS}/{id}/requests")),
        1,
        "one lock: {w:?}"
    );
    assert_eq!(
        count(&w, &format!("POST {RELATIONSHIPS}/{id}/accessAssignments")),
        2,
        "one POST per access assignment: {w:?}"
    );
    assert!(
        w.iter()
            .all(|(k, _)| !k.starts_with("DELETE ") && !k.starts_with("PATCH ")),
        "nothing deleted or patched to repair a lagging read: {w:?}"
    );
    let rels = world.sandbox_relationships().await;
    assert_eq!(rels.len(), 1, "exactly one relationship in Microsoft");
    let groups: Vec<&str> = rels[0]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["groupId"].as_str().unwrap())
        .collect();
    assert_eq!(groups.len(), 2, "one assignment per group: {groups:?}");
    let synced_reasons = synced_reasons.into_inner();
    assert!(
        synced_reasons.contains("Propagating"),
        "the waits for lagging reads were visible as Synced reason Propagating: {synced_reasons:?}"
    );
    assert!(
        world
            .events("lagged")
            .iter()
            .all(|e| !e.starts_with("AssignmentFailed")),
        "no assignment was reported failed"
    );

    // Deletion: the terminate request goes out once, although the reads lag behind it.
    let out = world.kubectl(&["delete", "gdap", "lagged", "--timeout=90s"]);
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rels = world.sandbox_relationships().await;
    assert_eq!(rels[0]["status"], "terminated", "deletion terminated it");
    let w = writes(&world).await;
    assert_eq!(
        count(&w, &format!("POST {RELATIONSHIPS}/{id}/requests")),
        2,
        "the lock and one terminate: {w:?}"
    );
    assert!(
        w.iter().all(|(k, _)| !k.starts_with("DELETE ")),
        "nothing deleted: {w:?}"
    );
}

/// A Graph client of the partner admin's own portal session (not the operator's).
fn portal(world: &World) -> MicrosoftClients {
    let endpoints = Endpoints::local(&world.sandbox.base_url(), None).unwrap();
    let credentials = PartnerCredentials {
        partner_tenant_id: defaults::PARTNER_TENANT_ID.into(),
        client_id: defaults::PARTNER_CLIENT_ID.into(),
        client_credential: Secret::new(defaults::PARTNER_CLIENT_SECRET).into(),
        refresh_token: Secret::new(PORTAL_REFRESH_TOKEN),
        refresh_token_issued_at: None,
    };
    MicrosoftClients::new(
        TransportConfig::new(endpoints),
        credentials,
        rotation_fn(|_| async { Ok(()) }),
        TokenOptions::default(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relationship_that_merely_carries_the_display_name_is_reported_and_never_touched() {
    let world = World::start("e2e-lag-taken", lagging()).await;
    // Made by hand in the portal, just before the object is applied: under read lag, the
    // operator's first lookup by name does not see it.
    let clients = portal(&world);
    let token = clients.tokens.partner_graph();
    let by_hand = clients
        .gdap
        .create_relationship(
            &token,
            &NewRelationship {
                display_name: "contoso-by-hand".into(),
                duration: "P30D".into(),
                customer: Some(CustomerParticipant {
                    tenant_id: defaults::CONTOSO_TENANT_ID.into(),
                    display_name: None,
                }),
                access_details: AccessDetails::from_role_ids([
                    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
                ]),
                auto_extend_duration: Some("PT0S".into()),
            },
        )
        .await
        .unwrap();
    let foreign = by_hand.id.clone();
    world.apply(&manifest("taken", "  displayName: contoso-by-hand\n"));
    // Either the operator saw it already (and refused), or it sent its create — which Microsoft
    // refuses on its true state (the name exists) — and waits for its reads.
    poll_until("the operator's first decision", MINUTE, || async {
        let o = world.relationships().get("taken").await.ok()?;
        let refused = condition(&o, "Synced").is_some_and(|c| c.1 == "DisplayNameTaken");
        let posted = count(&writes(&world).await, &format!("POST {RELATIONSHIPS}")) >= 2;
        (refused || posted).then_some(())
    })
    .await;
    // It was made clearly before the object's create intent: ten minutes ago.
    world.advance_clock(600.0).await;
    let message = world
        .wait_for("taken", "Synced=False DisplayNameTaken", MINUTE, |o| {
            let (status, reason, message) = condition(o, "Synced")?;
            (status == "False" && reason == "DisplayNameTaken").then_some(message)
        })
        .await;
    assert!(message.contains(&foreign), "{message}");
    assert!(message.contains("spec.relationshipId"), "{message}");
    let object = world.relationships().get("taken").await.unwrap();
    assert_eq!(condition(&object, "Ready").unwrap().1, "DisplayNameTaken");
    assert_eq!(
        object.status.as_ref().unwrap().relationship_id,
        None,
        "never recorded as the object's"
    );
    world.wait_for_reconciles(3.0).await;
    let untouched = |w: &BTreeMap<String, u64>| w.keys().all(|k| !k.contains(&foreign));
    let w = writes(&world).await;
    assert!(
        untouched(&w),
        "a write to the relationship made by hand: {w:?}"
    );
    assert!(
        count(&w, &format!("POST {RELATIONSHIPS}")) <= 2,
        "at most the one create Microsoft refused: {w:?}"
    );

    // Deleting the object leaves it alone too.
    let out = world.kubectl(&["delete", "gdap", "taken", "--timeout=60s"]);
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let w = writes(&world).await;
    assert!(untouched(&w), "deletion wrote to it: {w:?}");
    let rels: Vec<Value> = world.sandbox_relationships().await;
    assert_eq!(rels.len(), 1, "nothing else was created");
    assert_eq!(rels[0]["id"], foreign.as_str());
    assert_eq!(
        rels[0]["status"], "created",
        "still the draft it was, never locked"
    );
}
