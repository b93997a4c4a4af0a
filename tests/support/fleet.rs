//! A fleet of customers for the resilience tests: `size` customer tenants in the sandbox, each
//! with one GdapRelationship `f<i>` and one AppConsent `c<i>` of the partner app that relies on
//! it; the first `renewing` relationships hold Global Administrator with the successor policy, so
//! moving the sandbox clock 31 days makes each of them request, and hand over to, a successor.
//! The checks here are the resilience suite's promises about Microsoft's side: exactly one
//! relationship per object (plus one successor per renewal), one consent per customer, no
//! duplicate grant, application permission or service principal.
//!
//! TenantSync extension (issue 11, built on another branch): when the TenantSync controller is
//! merged, `Fleet::syncs` says how many customers also get a TenantSync `s<i>` (file sink under
//! `sync_root`), `Fleet::manifests` adds them, and `assert_syncs_whole` (below, marked) checks
//! that every sync's data set is whole. The crash, lost-status and fault tests call these
//! already, so adding the objects is the only change they need.

use super::operator::{World, poll_until};
use gdap_operator::api::{AppConsent, GdapRelationship};
use gdap_operator::sandbox::{CustomerFixture, SandboxOptions, UsersFixture, defaults};
use kube::Api;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The partner security group the fleet's relationships assign (the admin user is a member).
pub const APP_ADMINS: &str = defaults::APP_ADMINS_GROUP_ID;
/// `--consent-settle-time` the fleet's operator runs with.
pub const SETTLE: &str = "1s";
/// One day of the sandbox clock.
pub const DAY: f64 = 86_400.0;

/// The size of a fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Customers, each with a relationship and a consent.
    pub size: usize,
    /// How many of them (the first ones) renew through a successor.
    pub renewing: usize,
    /// How many of them (the first ones) also have a TenantSync. Always 0 until the TenantSync
    /// controller is merged (see the module docs).
    pub syncs: usize,
}

/// Whether the long variant runs (`make soak` sets `GDAP_SOAK=1`).
pub fn soak() -> bool {
    std::env::var("GDAP_SOAK").is_ok_and(|v| v == "1")
}

impl Fleet {
    /// `quick` under `make test`, `full` under `make soak`.
    pub fn sized(quick: Fleet, full: Fleet) -> Fleet {
        if soak() { full } else { quick }
    }

    /// The tenant id of customer `i`.
    pub fn tenant(i: usize) -> String {
        format!("c0ffee00-0000-4000-8000-{i:012x}")
    }

    /// Whether customer `i`'s relationship renews through a successor.
    pub fn renews(&self, i: usize) -> bool {
        i < self.renewing
    }

    /// Sandbox options: the built-in fixture plus the fleet's customers (Microsoft Graph's
    /// service principal only, the partner app not consented), customers approving 1 s after
    /// the lock, and a request log large enough for the whole run.
    pub fn sandbox_options(&self) -> SandboxOptions {
        let mut options = SandboxOptions {
            auto_approve_after: Some(Duration::from_secs(1)),
            request_log_capacity: 1_000_000,
            ..SandboxOptions::default()
        };
        for i in 0..self.size {
            options.fixture.customers.push(CustomerFixture {
                tenant_id: Fleet::tenant(i),
                display_name: format!("Fleet customer {i}"),
                primary_domain: format!("fleet{i}.example"),
                service_principals: vec![
                    defaults::apps::MICROSOFT_GRAPH.into(),
                    defaults::apps::AZURE_AD_GRAPH.into(),
                ],
                consents: vec![],
                skus: vec![],
                users: UsersFixture::Listed(vec![]),
            });
        }
        options
    }

    /// The operator flags the fleet needs (a short consent settle time).
    pub fn operator_args() -> Vec<&'static str> {
        vec!["--consent-settle-time", SETTLE]
    }

    /// Every object of the fleet, as one multi-document manifest.
    pub fn manifests(&self) -> String {
        let mut docs = Vec::new();
        for i in 0..self.size {
            docs.push(self.relationship(i));
            docs.push(consent(i));
        }
        docs.join("---\n")
    }

    fn relationship(&self, i: usize) -> String {
        let (roles, renewal) = if self.renews(i) {
            (
                "Global Administrator, Directory Readers",
                "  renewal:\n    policy: Successor\n    before: P30D\n",
            )
        } else {
            (
                "Application Administrator, Privileged Role Administrator",
                "",
            )
        };
        let assigned = if self.renews(i) {
            "Global Administrator"
        } else {
            roles
        };
        format!(
            "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: f{i}\nspec:\n  customer:\n    tenantId: {}\n  roles: [{roles}]\n  duration: P60D\n  accessAssignments:\n    - securityGroupId: {APP_ADMINS}\n      roles: [{assigned}]\n{renewal}",
            Fleet::tenant(i)
        )
    }

    /// Waits until every relationship is active in Microsoft and recorded (`status.state`).
    pub async fn wait_active(&self, world: &World, timeout: Duration) {
        poll_until("every relationship active", timeout, || async {
            let all = relationships(world).await;
            let active = all
                .iter()
                .filter(|o| o.status.as_ref().and_then(|s| s.state.as_deref()) == Some("active"))
                .count();
            (active == self.size).then_some(())
        })
        .await
    }

    /// What is still missing for convergence (empty once converged): every relationship Ready,
    /// the renewing ones handed over to their successor (`renewed`: whether the clock was moved
    /// for renewal), every consent Ready.
    pub async fn unconverged(&self, world: &World, renewed: bool) -> Vec<String> {
        let mut missing = Vec::new();
        let rels = relationships(world).await;
        for i in 0..self.size {
            let name = format!("f{i}");
            let Some(o) = rels
                .iter()
                .find(|o| o.metadata.name.as_deref() == Some(&name))
            else {
                missing.push(format!("{name}: no object"));
                continue;
            };
            if !is_true(relationship_conditions(o), "Ready") {
                missing.push(format!("{name}: not Ready"));
            }
            if renewed && self.renews(i) && !handed_over(o) {
                missing.push(format!("{name}: not handed over"));
            }
        }
        let consents = consents(world).await;
        for i in 0..self.size {
            let name = format!("c{i}");
            let ready = consents
                .iter()
                .find(|o| o.metadata.name.as_deref() == Some(&name))
                .is_some_and(|o| is_true(consent_conditions(o), "Ready"));
            if !ready {
                missing.push(format!("{name}: not Ready"));
            }
        }
        missing
    }

    /// Waits for convergence (see [`Fleet::unconverged`]), failing with what is missing.
    pub async fn wait_converged(&self, world: &World, renewed: bool, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let missing = self.unconverged(world, renewed).await;
            if missing.is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not converged after {timeout:?}: {missing:?}\noperator log: {}",
                tail(&world.operator_log(), 60)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Microsoft holds exactly what the fleet asked for: one relationship per object (and,
    /// with `renewed`, exactly one successor for each renewing one, none for the others), each
    /// display name once; per customer one service principal of the partner app, one grant per
    /// resource, no application permission twice, and exactly one Partner Center consent that
    /// succeeded and none removed (an answer Partner Center replayed for a retried request id
    /// is not a second consent). Returns the sandbox's relationships.
    pub async fn assert_no_duplicates(&self, world: &World, renewed: bool) -> Vec<Value> {
        let rels = world.sandbox_relationships().await;
        let mut per_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &rels {
            let customer = r["customer"]["tenantId"].as_str().unwrap_or_default();
            per_customer
                .entry(customer.to_string())
                .or_default()
                .push(r["displayName"].as_str().unwrap_or_default().to_string());
        }
        for i in 0..self.size {
            let names = per_customer.remove(&Fleet::tenant(i)).unwrap_or_default();
            let want = if renewed && self.renews(i) { 2 } else { 1 };
            let unique: BTreeSet<&String> = names.iter().collect();
            assert_eq!(
                (names.len(), unique.len()),
                (want, want),
                "customer {i} (f{i}) has the relationships {names:?} in Microsoft, wanted {want}"
            );
            if want == 2 {
                assert!(
                    names.iter().any(|n| n.ends_with("-r1"))
                        && !names.iter().any(|n| n.ends_with("-r2")),
                    "f{i}: one successor of generation 1: {names:?}"
                );
            }
        }
        let state = world.state().await;
        let log = world.http_get("requests").await;
        for i in 0..self.size {
            assert_one_consent(&state, &log, &Fleet::tenant(i), i);
        }
        rels
    }
}

fn consent(i: usize) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: AppConsent\nmetadata:\n  name: c{i}\nspec:\n  customer:\n    tenantId: {}\n  applicationId: {}\n  displayName: Partner reporting\n  relationshipRef:\n    name: f{i}\n  grants:\n    - resource: Microsoft Graph\n      scopes: [User.Read]\n      appRoles: [User.Read.All]\n",
        Fleet::tenant(i),
        defaults::PARTNER_CLIENT_ID
    )
}

fn assert_one_consent(state: &Value, log: &Value, tenant: &str, i: usize) {
    let t = &state["tenants"][tenant];
    let apps: Vec<&Value> = t["servicePrincipals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|sp| sp["appId"] == defaults::PARTNER_CLIENT_ID)
        .collect();
    assert_eq!(
        apps.len(),
        1,
        "c{i}: one service principal of the partner app"
    );
    let sp = apps[0]["id"].as_str().unwrap();
    let resources: Vec<&str> = t["grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["clientId"] == sp)
        .map(|g| g["resourceId"].as_str().unwrap_or_default())
        .collect();
    let unique: BTreeSet<&&str> = resources.iter().collect();
    assert_eq!(
        resources.len(),
        unique.len(),
        "c{i}: one grant per resource: {resources:?}"
    );
    assert!(!resources.is_empty(), "c{i}: the consent's grants exist");
    let roles: Vec<(String, String)> = t["appRoleAssignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["principalId"] == sp)
        .map(|a| (a["resourceId"].to_string(), a["appRoleId"].to_string()))
        .collect();
    let unique: BTreeSet<&(String, String)> = roles.iter().collect();
    assert_eq!(
        roles.len(),
        unique.len(),
        "c{i}: no application permission twice"
    );
    assert_eq!(roles.len(), 1, "c{i}: User.Read.All granted");
    let consents = |method: &str, status: Option<u64>| {
        log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["method"] == method
                    && r["path"].as_str().is_some_and(|p| {
                        p.contains(&format!("/customers/{tenant}/applicationconsents"))
                    })
                    && status.is_none_or(|s| r["status"].as_u64() == Some(s))
                    && r["replayed"] != true
            })
            .count()
    };
    assert_eq!(
        consents("POST", Some(201)),
        1,
        "c{i}: one Partner Center consent"
    );
    assert_eq!(
        consents("DELETE", None),
        0,
        "c{i}: the consent was never removed"
    );
}

/// The relationships of the world's namespace.
pub async fn relationships(world: &World) -> Vec<GdapRelationship> {
    world
        .relationships()
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// The consents of the world's namespace.
pub async fn consents(world: &World) -> Vec<AppConsent> {
    let api: Api<AppConsent> = Api::namespaced(world.client.clone(), &world.namespace);
    api.list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

fn relationship_conditions(
    o: &GdapRelationship,
) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
    o.status.as_ref().map_or(&[], |s| &s.conditions)
}

fn consent_conditions(
    o: &AppConsent,
) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
    o.status.as_ref().map_or(&[], |s| &s.conditions)
}

fn is_true(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    t: &str,
) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == t && c.status == "True")
}

/// The object switched to its successor and the predecessor is terminated.
fn handed_over(o: &GdapRelationship) -> bool {
    o.status.as_ref().is_some_and(|s| {
        s.successor.is_none()
            && s.previous_relationships
                .iter()
                .any(|p| p.state.as_deref() == Some("terminated"))
    })
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// TenantSync extension point: every sync of the fleet has a whole data set (its `current` run
/// complete, no `.partial-` run visible as current, counts equal to the customer's users).
/// Nothing to check until the TenantSync controller is merged (`Fleet::syncs` is 0).
pub fn assert_syncs_whole(fleet: &Fleet) {
    assert_eq!(
        fleet.syncs, 0,
        "TenantSync objects in the fleet need the checks of the TenantSync merge (see the module docs)"
    );
}
