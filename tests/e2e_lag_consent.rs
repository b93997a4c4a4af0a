//! AppConsent and TenantSync end to end under Microsoft's eventual consistency — the sandbox's
//! default (`Consistency::microsoft()`): reads lag behind writes, a consent's grants and app role
//! assignments take effect only after a propagation delay, and a new GDAP role reaches Entra and
//! Partner Center late too. The real kube-apiserver, the sandbox and the operator binary; time
//! moves with the sandbox's clock, never with sleeps.
//!
//! What it proves: GdapRelationship, AppConsent and TenantSync (file sink) all become Ready while
//! every write the consent needs reaches Microsoft exactly once — one Partner Center consent, no
//! Partner Center DELETE, one app role assignment per application permission and no duplicate
//! service principal — although the operator keeps reading state that does not show its writes
//! yet; the waits are visible (`Propagating`, with how long so far) and never a failure; an
//! import that meets application permissions Entra has not made effective yet is a transient
//! `Propagating`, retried, not `AccessDenied`. Deletion then removes each app role and the
//! consent once.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::api::AppConsent;
use gdap_operator::sandbox::{SandboxOptions, defaults};
use kube::api::Api;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::operator::{World, condition};
use support::sync::{file_sink, sync_manifest, sync_now, syncs};

const FABRIKAM: &str = defaults::FABRIKAM_TENANT_ID;
const APP: &str = defaults::PARTNER_CLIENT_ID;
const APP_ADMINS: &str = defaults::APP_ADMINS_GROUP_ID;
/// The AppConsent's name (the one `support::sync::sync_manifest` refers to).
const CONSENT: &str = support::sync::CONSENT;
const RELATIONSHIP: &str = "fabrikam-apps";
const SYNC: &str = "fabrikam-users";
/// `--consent-settle-time` of this test; the sandbox clock moves past it.
const SETTLE: &str = "60s";
/// The application permissions an import needs.
const APP_ROLES: [&str; 3] = [
    "User.Read.All",
    "LicenseAssignment.Read.All",
    "Organization.Read.All",
];
/// Reasons that would mean the operator took Microsoft's lag for a failure.
const FAILURES: [&str; 6] = [
    "PropagationTimedOut",
    "PartnerCenterForbidden",
    "MicrosoftError",
    "NoConsentCapableRole",
    "AccessDenied",
    "Revoked",
];

fn manifests(sink: &std::path::Path) -> String {
    let roles = "Application Administrator, Privileged Role Administrator";
    let relationship = format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {RELATIONSHIP}\nspec:\n  customer:\n    tenantId: {FABRIKAM}\n  roles: [{roles}]\n  duration: P60D\n  accessAssignments:\n    - securityGroupId: {APP_ADMINS}\n      roles: [{roles}]\n"
    );
    let consent = format!(
        "apiVersion: gdap.io/v1alpha1\nkind: AppConsent\nmetadata:\n  name: {CONSENT}\nspec:\n  customer:\n    tenantId: {FABRIKAM}\n  applicationId: {APP}\n  relationshipRef:\n    name: {RELATIONSHIP}\n  grants:\n    - resource: Microsoft Graph\n      scopes: [User.Read]\n      appRoles: [{}]\n",
        APP_ROLES.join(", ")
    );
    let sync = sync_manifest(SYNC, FABRIKAM, "@daily", &file_sink(sink), "");
    format!("{relationship}---\n{consent}---\n{sync}")
}

/// The sandbox's uncapped count of every write call, `"METHOD /path" -> n`.
async fn writes(world: &World) -> BTreeMap<String, u64> {
    let log = world.http_get("requests").await;
    serde_json::from_value(log["totals"]["writesByPath"].clone()).expect("totals.writesByPath")
}

fn count(writes: &BTreeMap<String, u64>, matches: impl Fn(&str) -> bool) -> u64 {
    writes
        .iter()
        .filter(|(k, _)| matches(k))
        .map(|(_, n)| *n)
        .sum()
}

/// An AppConsent condition: (status, reason, message).
fn consent_condition(o: &AppConsent, type_: &str) -> Option<(String, String, String)> {
    let c = o
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// What the test saw of the objects along the way: every (kind, condition, reason) observed.
#[derive(Default)]
struct Seen(BTreeSet<(String, String, String)>);

impl Seen {
    async fn look(&mut self, world: &World) {
        let consents: Api<AppConsent> = Api::namespaced(world.client.clone(), &world.namespace);
        if let Ok(o) = consents.get(CONSENT).await {
            for t in ["Ready", "Consented", "Synced", "PrerequisitesMet"] {
                if let Some((s, r, _)) = consent_condition(&o, t) {
                    self.0
                        .insert(("AppConsent".into(), t.into(), format!("{s}/{r}")));
                }
            }
        }
        if let Ok(o) = syncs(world).get(SYNC).await {
            for c in o.status.iter().flat_map(|s| s.conditions.iter()) {
                self.0.insert((
                    "TenantSync".into(),
                    c.type_.clone(),
                    format!("{}/{}", c.status, c.reason),
                ));
            }
        }
        if let Ok(o) = world.relationships().get(RELATIONSHIP).await {
            for t in ["Ready", "Synced"] {
                if let Some((s, r, _)) = condition(&o, t) {
                    self.0
                        .insert(("GdapRelationship".into(), t.into(), format!("{s}/{r}")));
                }
            }
        }
    }

    /// The failures seen on objects of `kinds`.
    fn failures(&self, kinds: &[&str]) -> Vec<&(String, String, String)> {
        self.0
            .iter()
            .filter(|(k, _, _)| kinds.contains(&k.as_str()))
            .filter(|(_, _, sr)| FAILURES.iter().any(|f| sr.ends_with(&format!("/{f}"))))
            .collect()
    }
}

/// Waits until `check` holds, moving the sandbox clock `step` seconds whenever the operator has
/// looked twice more (any reconcile) without it holding; fails after `max_steps` moves. Records
/// what it sees in `seen`.
async fn converge<T, F, Fut>(
    world: &World,
    seen: &mut Seen,
    what: &str,
    step: f64,
    max_steps: usize,
    check: F,
) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..=max_steps {
        let start = world.reconciles_all().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            seen.look(world).await;
            if let Some(value) = check().await {
                return value;
            }
            if world.reconciles_all().await >= start + 2.0 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        world.advance_clock(step).await;
    }
    panic!(
        "{what}: not reached after moving the sandbox clock {max_steps} × {step} s; seen: {:?}\noperator log: {}",
        seen.0,
        world.operator_log()
    );
}

/// Polls `check` (without moving the clock) until it holds.
async fn observe<T, F, Fut>(world: &World, seen: &mut Seen, what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        seen.look(world).await;
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; seen: {:?}\noperator log: {}",
            seen.0,
            world.operator_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn consent_post(k: &str) -> bool {
    k == format!("POST /v1/customers/{FABRIKAM}/applicationconsents")
}

fn consent_delete(k: &str) -> bool {
    k.starts_with(&format!(
        "DELETE /v1/customers/{FABRIKAM}/applicationconsents"
    ))
}

fn role_post(k: &str) -> bool {
    k.starts_with("POST ") && k.ends_with("/appRoleAssignedTo")
}

fn role_delete(k: &str) -> bool {
    k.starts_with("DELETE ") && k.contains("/appRoleAssignedTo/")
}

fn sp_post(k: &str) -> bool {
    k == "POST /v1.0/servicePrincipals"
}

fn grant_write(k: &str) -> bool {
    k.contains("oauth2PermissionGrants") || k.contains("/appRoleAssignments")
}

/// The partner app's service principal id, delegated grants and app role assignments in
/// Fabrikam, as Microsoft really holds them (the sandbox's state, not a lagging read).
async fn fabrikam(world: &World) -> (Option<String>, Vec<Value>, Vec<Value>) {
    let tenant = world.state().await["tenants"][FABRIKAM].clone();
    let sp = tenant["servicePrincipals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sp| sp["appId"] == APP)
        .map(|sp| sp["id"].as_str().unwrap().to_string());
    let of_app = |list: &str, key: &str| -> Vec<Value> {
        tenant[list]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|g| sp.as_deref().is_some_and(|id| g[key] == id))
            .collect()
    };
    let grants = of_app("grants", "clientId");
    let roles = of_app("appRoleAssignments", "principalId");
    (sp, grants, roles)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_microsofts_lag_a_consent_and_its_import_converge_with_each_write_made_once() {
    let world = World::start_with_args(
        "e2e-lag-consent",
        SandboxOptions::default(),
        &[
            "--consent-settle-time",
            SETTLE,
            "--consent-verify-interval",
            "4s",
        ],
    )
    .await;
    let consistency = world.http_get("consistency").await;
    for family in ["gdap", "servicePrincipals", "grants", "users"] {
        assert!(
            consistency["readLag"][family]["maxSeconds"].as_f64() > Some(0.0),
            "the default sandbox lags: {consistency}"
        );
    }
    assert!(consistency["consentPropagation"]["minSeconds"].as_f64() > Some(0.0));
    assert!(consistency["gdapPropagation"]["minSeconds"].as_f64() > Some(0.0));
    let consents: Api<AppConsent> = Api::namespaced(world.client.clone(), &world.namespace);
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Seen::default();

    // Fabrikam has no users in the built-in fixture; an import needs some.
    for i in 0..3 {
        let user = serde_json::json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "userPrincipalName": format!("user{i}@{}", defaults::FABRIKAM_DOMAIN),
            "displayName": format!("User {i}"),
            "accountEnabled": true,
            "userType": "Member",
        });
        let path = format!("tenants/{FABRIKAM}/users");
        let status = world.control(&path, user).await;
        assert!(status.is_success(), "POST {path}: {status}");
    }

    // Everything applied at once, as from Git.
    world.apply(&manifests(dir.path()));
    let id = converge(&world, &mut seen, "approvalPending", 3.0, 20, || async {
        let o = world.relationships().get(RELATIONSHIP).await.ok()?;
        let s = o.status?;
        (s.state.as_deref() == Some("approvalPending"))
            .then_some(s.relationship_id)
            .flatten()
    })
    .await;
    let approved = world
        .control(
            &format!("relationships/{id}/approve"),
            serde_json::json!({}),
        )
        .await;
    assert!(approved.is_success(), "approve: {approved}");
    converge(
        &world,
        &mut seen,
        "the relationship Ready",
        3.0,
        30,
        || async {
            let o = world.relationships().get(RELATIONSHIP).await.ok()?;
            (condition(&o, "Ready")?.0 == "True").then_some(())
        },
    )
    .await;

    // Past the settle time and through Microsoft's propagation of the new GDAP role: one
    // Partner Center consent.
    converge(
        &world,
        &mut seen,
        "the Partner Center consent",
        10.0,
        30,
        || async { (count(&writes(&world).await, consent_post) >= 1).then_some(()) },
    )
    .await;
    // Entra does not honour the new consent yet (AADSTS65001): a visible wait, not a second
    // consent.
    let message = observe(&world, &mut seen, "Consented=False Propagating", || async {
        let o = consents.get(CONSENT).await.ok()?;
        let (s, r, m) = consent_condition(&o, "Consented")?;
        (s == "False" && r == "Propagating" && m.contains("Partner Center consent")).then_some(m)
    })
    .await;
    assert!(
        message.contains("waited") && message.contains("--propagation-timeout 1h"),
        "{message}"
    );
    let object = consents.get(CONSENT).await.unwrap();
    assert!(
        object
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("gdap.io/pending-writes")),
        "the consent is remembered until a read shows it"
    );

    // Through the consent's propagation, until the application permissions are granted; then in
    // small steps through the read lag only, so Entra has not made them effective yet.
    converge(
        &world,
        &mut seen,
        "the app role grants",
        10.0,
        20,
        || async {
            (count(&writes(&world).await, role_post) >= APP_ROLES.len() as u64).then_some(())
        },
    )
    .await;
    converge(
        &world,
        &mut seen,
        "the AppConsent Ready",
        2.0,
        15,
        || async {
            let o = consents.get(CONSENT).await.ok()?;
            (consent_condition(&o, "Ready")?.0 == "True").then_some(())
        },
    )
    .await;
    let object = consents.get(CONSENT).await.unwrap();
    assert!(
        object
            .metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key("gdap.io/pending-writes")),
        "nothing is pending once the consent is verified"
    );

    // The import right away meets application permissions Entra has not made effective yet:
    // a transient Propagating failure, retried — never AccessDenied.
    sync_now(&world, SYNC, "first").await;
    let synced = observe(&world, &mut seen, "the first import's end", || async {
        let o = syncs(&world).get(SYNC).await.ok()?;
        let s = o.status.as_ref()?;
        (s.last_sync_request.as_deref() == Some("first"))
            .then(|| support::sync::condition(&o, "Synced"))
            .flatten()
    })
    .await;
    let propagating_import = synced.0 == "False";
    if propagating_import {
        assert_eq!(synced.1, "Propagating", "{synced:?}");
        assert!(
            synced.2.contains("the AppConsent consented at"),
            "{}",
            synced.2
        );
    }
    converge(
        &world,
        &mut seen,
        "the TenantSync Ready",
        15.0,
        20,
        || async {
            let o = syncs(&world).get(SYNC).await.ok()?;
            (support::sync::condition(&o, "Ready")?.0 == "True").then_some(())
        },
    )
    .await;
    assert!(
        propagating_import
            || seen.0.contains(&(
                "TenantSync".into(),
                "Synced".into(),
                "False/Propagating".into()
            )),
        "the first import ran before Entra made the permissions effective, and said so: {:?}",
        seen.0
    );
    assert!(
        dir.path().join(FABRIKAM).join("current").exists(),
        "the import wrote the file sink"
    );

    // Every write the consent needs, exactly once; no delete-and-redo.
    let made = writes(&world).await;
    assert_eq!(
        count(&made, consent_post),
        1,
        "one Partner Center consent: {made:?}"
    );
    assert_eq!(
        count(&made, consent_delete),
        0,
        "no Partner Center DELETE: {made:?}"
    );
    assert_eq!(
        count(&made, role_post),
        APP_ROLES.len() as u64,
        "one POST per application permission: {made:?}"
    );
    assert!(count(&made, sp_post) <= 1, "{made:?}");
    assert_eq!(count(&made, grant_write), 0, "{made:?}");
    let (sp, grants, roles) = fabrikam(&world).await;
    assert!(sp.is_some() && !grants.is_empty());
    assert_eq!(roles.len(), APP_ROLES.len(), "{roles:?}");
    let failures = seen.failures(&["AppConsent", "TenantSync"]);
    assert!(
        failures.is_empty(),
        "Microsoft's lag was reported as a failure: {failures:?}"
    );
    for t in ["Ready", "Consented", "Synced"] {
        let object = consents.get(CONSENT).await.unwrap();
        assert_eq!(consent_condition(&object, t).unwrap().0, "True", "{t}");
    }

    // Steady: verified again, nothing written again.
    let first = consents
        .get(CONSENT)
        .await
        .unwrap()
        .status
        .unwrap()
        .last_verified_at
        .unwrap();
    observe(&world, &mut seen, "a later verification", || async {
        let at = consents.get(CONSENT).await.ok()?.status?.last_verified_at?;
        (at.0 > first.0).then_some(())
    })
    .await;
    let again = writes(&world).await;
    let consent_writes = |w: &BTreeMap<String, u64>| {
        count(w, |k| {
            consent_post(k) || consent_delete(k) || role_post(k) || sp_post(k) || grant_write(k)
        })
    };
    assert_eq!(
        consent_writes(&again),
        consent_writes(&made),
        "verification only reads"
    );

    // Deletion removes each application permission and the consent once, however the reads lag.
    let out = world.kubectl(&["delete", "appconsent", CONSENT, "--wait=false"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    converge(
        &world,
        &mut seen,
        "the AppConsent deleted",
        3.0,
        30,
        || async { matches!(consents.get_opt(CONSENT).await, Ok(None)).then_some(()) },
    )
    .await;
    let after = writes(&world).await;
    assert_eq!(
        count(&after, |k| k
            == format!(
                "DELETE /v1/customers/{FABRIKAM}/applicationconsents/{APP}"
            )),
        1,
        "the consent was removed once: {after:?}"
    );
    assert_eq!(count(&after, consent_delete), 1, "{after:?}");
    assert_eq!(count(&after, consent_post), 1, "{after:?}");
    let role_deletes: Vec<(&String, &u64)> = after.iter().filter(|(k, _)| role_delete(k)).collect();
    assert_eq!(role_deletes.len(), APP_ROLES.len(), "{after:?}");
    assert!(
        role_deletes.iter().all(|(_, n)| **n == 1),
        "each application permission was removed once: {role_deletes:?}"
    );
    let (_, grants, roles) = fabrikam(&world).await;
    assert!(
        grants.is_empty() && roles.is_empty(),
        "{grants:?} {roles:?}"
    );
    assert!(
        world
            .events(CONSENT)
            .iter()
            .any(|e| e.starts_with("Released:")),
        "{:?}",
        world.events(CONSENT)
    );

    // Every write carried the partner user's delegated token.
    let log = world.http_get("requests").await;
    let app_only: Vec<&Value> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] != "GET" && !r["path"].as_str().unwrap().contains("/oauth2/"))
        .filter(|r| r["token"] != "user")
        .collect();
    assert!(
        app_only.is_empty(),
        "writes without the delegated token: {app_only:?}"
    );

    // The relationship the consent relies on took the lag in its stride too.
    let failures = seen.failures(&["GdapRelationship"]);
    assert!(
        failures.is_empty(),
        "the GdapRelationship reported Microsoft's lag as a failure: {failures:?}"
    );
}
