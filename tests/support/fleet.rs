//! A fleet of customers for the resilience tests: `size` customer tenants in the sandbox, each
//! with one GdapRelationship `f<i>` and one AppConsent `c<i>` of the partner app that relies on
//! it; the first `renewing` relationships hold Global Administrator with the successor policy, so
//! moving the sandbox clock 31 days makes each of them request, and hand over to, a successor.
//! The checks here are the resilience suite's promises about Microsoft's side: exactly one
//! relationship per object (plus one successor per renewal), one consent per customer, no
//! duplicate grant, application permission or service principal.
//!
//! The first `syncs` customers also have users, a licensed SKU and a TenantSync `s<i>` into a
//! file sink (under the system temp dir, one root per namespace) that asks for one import at once
//! (`gdap.io/sync-now: "1"`, honoured once the consent is Ready; [`Fleet::ask_imports`] asks for
//! more); their consents grant what the import reads. Convergence includes that first import;
//! [`assert_syncs_whole`] checks that every data set is whole and its counts exact.

use super::operator::{World, poll_until};
use gdap_operator::api::{AppConsent, GdapRelationship, TenantSync};
use gdap_operator::sandbox::{CustomerFixture, SandboxOptions, UsersFixture, defaults};
use kube::Api;
use serde_json::{Value, json};
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
    /// How many of them (the first ones) also have a TenantSync.
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

    /// Whether customer `i` has a TenantSync.
    pub fn syncs_with(&self, i: usize) -> bool {
        i < self.syncs
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
            let mut customer = CustomerFixture {
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
            };
            if self.syncs_with(i) {
                customer.skus = serde_json::from_value(json!([{
                    "skuId": FLEET_SKU, "skuPartNumber": "SPE_E3", "enabled": SYNC_USERS
                }]))
                .unwrap();
                customer.users =
                    UsersFixture::Listed((0..SYNC_USERS).map(|j| fleet_user(i, j)).collect());
            }
            options.fixture.customers.push(customer);
        }
        options
    }

    /// The operator flags the fleet needs (a short consent settle time).
    pub fn operator_args() -> Vec<&'static str> {
        vec!["--consent-settle-time", SETTLE]
    }

    /// Every object of the fleet, as one multi-document manifest for `world`'s namespace.
    pub fn manifests(&self, world: &World) -> String {
        let mut docs = Vec::new();
        for i in 0..self.size {
            docs.push(self.relationship(i));
            docs.push(consent(i, self.syncs_with(i)));
            if self.syncs_with(i) {
                docs.push(sync(i, &sync_root(world)));
            }
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
        missing.extend(self.imports_pending(&sync_api(world), FIRST_IMPORT).await);
        missing
    }

    /// The syncs whose import asked for with `request` (the value of `gdap.io/sync-now`) has
    /// not succeeded yet (empty once all have).
    pub async fn imports_pending(&self, api: &Api<TenantSync>, request: &str) -> Vec<String> {
        let syncs = api
            .list(&Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let mut pending = Vec::new();
        for i in (0..self.size).filter(|i| self.syncs_with(*i)) {
            let name = format!("s{i}");
            let done = syncs
                .iter()
                .find(|o| o.metadata.name.as_deref() == Some(&name))
                .and_then(|o| o.status.as_ref())
                .is_some_and(|s| {
                    s.last_sync_request.as_deref() == Some(request)
                        && s.conditions
                            .iter()
                            .any(|c| c.type_ == "Synced" && c.status == "True")
                });
            if !done {
                pending.push(format!("{name}: the import {request} has not succeeded"));
            }
        }
        pending
    }

    /// Asks every sync of the fleet for one more import (`gdap.io/sync-now: <request>`).
    pub async fn ask_imports(&self, world: &World, request: &str) {
        let api = sync_api(world);
        let patch = json!({"metadata": {"annotations": {"gdap.io/sync-now": request}}});
        for i in (0..self.size).filter(|i| self.syncs_with(*i)) {
            api.patch(
                &format!("s{i}"),
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .unwrap();
        }
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
    ///
    /// Then the proof from the operator's own writes (see [`assert_created_once`]): it asked
    /// Microsoft for every object once, beyond those that followed an answer it never read at
    /// most `repeats` creates repeated.
    pub async fn assert_no_duplicates(
        &self,
        world: &World,
        renewed: bool,
        repeats: Repeats,
    ) -> Vec<Value> {
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
            let roles = if self.syncs_with(i) { 3 } else { 1 };
            assert_one_consent(&state, &log, &Fleet::tenant(i), i, roles);
        }
        let creates = assert_created_once(world, repeats).await;
        for r in &rels {
            let name = r["displayName"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            assert!(
                creates.contains_key(&format!("relationship {name}")),
                "the operator's create of {name} is in the request log's totals"
            );
        }
        for i in 0..self.size {
            let consent = format!(
                "consent {} {}",
                Fleet::tenant(i),
                defaults::PARTNER_CLIENT_ID.to_ascii_lowercase()
            );
            assert!(
                creates.contains_key(&consent),
                "c{i}: the operator's consent is in the request log's totals"
            );
        }
        rels
    }
}

/// How many creates a test allows the operator to send again, beyond those after an answer it
/// never read: each is one the operator could not know it had sent (its record of the create
/// was lost to a kill or a Kubernetes outage) and that Microsoft refused as a duplicate.
#[derive(Debug, Clone, Copy)]
pub enum Repeats {
    /// At most this many across the fleet (one per kill of the operator).
    Fleet(u64),
    /// At most this many per object (one per Kubernetes outage: an outage can cut every
    /// object's record of its create at once).
    PerObject(u64),
}

/// What the operator asked Microsoft to create, from the sandbox's uncapped totals
/// (`totals.createsByTarget`: every create the sandbox received and acted on, refused as a
/// duplicate or not, by the object it asked for). The sandbox refuses duplicates as Microsoft
/// does, so the objects it holds cannot show a second create; these counts do. Each object is
/// asked for once; a create sent again after an answer the operator never read (the connection
/// cut after Microsoft acted, a body cut short) is allowed, and at most `repeats` more across
/// the fleet or per object (see [`Repeats`]). Returns the counts by target.
pub async fn assert_created_once(world: &World, repeats: Repeats) -> BTreeMap<String, Value> {
    let log = world.http_get("requests").await;
    let creates: BTreeMap<String, Value> =
        serde_json::from_value(log["totals"]["createsByTarget"].clone())
            .expect("the request log's totals carry createsByTarget");
    let repeated: Vec<(&String, u64)> = creates
        .iter()
        .map(|(target, c)| {
            let (sent, unread) = (c["sent"].as_u64().unwrap(), c["unread"].as_u64().unwrap());
            (target, sent.saturating_sub(1 + unread))
        })
        .filter(|(_, extra)| *extra > 0)
        .collect();
    let total: u64 = repeated.iter().map(|(_, n)| n).sum();
    let most = repeated.iter().map(|(_, n)| *n).max().unwrap_or(0);
    eprintln!(
        "creates: {} objects asked for, {total} asked for again (allowed {repeats:?}): {repeated:?}",
        creates.len()
    );
    let within = match repeats {
        Repeats::Fleet(n) => total <= n,
        Repeats::PerObject(n) => most <= n,
    };
    assert!(
        within,
        "the operator asked Microsoft to create {total} objects again (allowed {repeats:?}): {repeated:?}"
    );
    creates
}

fn consent(i: usize, imports: bool) -> String {
    // The import reads users, licences and subscriptions with these application permissions.
    let roles = if imports {
        "User.Read.All, LicenseAssignment.Read.All, Organization.Read.All"
    } else {
        "User.Read.All"
    };
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: AppConsent\nmetadata:\n  name: c{i}\nspec:\n  customer:\n    tenantId: {}\n  applicationId: {}\n  displayName: Partner reporting\n  relationshipRef:\n    name: f{i}\n  grants:\n    - resource: Microsoft Graph\n      scopes: [User.Read]\n      appRoles: [{roles}]\n",
        Fleet::tenant(i),
        defaults::PARTNER_CLIENT_ID
    )
}

/// The `gdap.io/sync-now` value the fleet's TenantSyncs are created with.
pub const FIRST_IMPORT: &str = "1";

/// Users of each syncing customer, and the SKU a third of them hold.
const SYNC_USERS: i32 = 12;
const FLEET_SKU: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";

/// User `j` of customer `i`: licensed when `j % 3 == 0`, disabled when `j % 5 == 4`, a guest
/// when `j % 7 == 6`.
fn fleet_user(i: usize, j: i32) -> serde_json::Map<String, Value> {
    let licences = if j % 3 == 0 {
        json!([{"skuId": FLEET_SKU, "disabledPlans": []}])
    } else {
        json!([])
    };
    let user = json!({
        "userPrincipalName": format!("user{j}@fleet{i}.example"),
        "displayName": format!("User {j}"),
        "accountEnabled": j % 5 != 4,
        "userType": if j % 7 == 6 { "Guest" } else { "Member" },
        "assignedLicenses": licences,
    });
    user.as_object().unwrap().clone()
}

/// The users, enabled, licensed, disabled-but-licensed and guest counts of a syncing customer.
fn expected_counts() -> (i64, i64, i64, i64, i64) {
    let all = 0..SYNC_USERS;
    let count = |f: &dyn Fn(i32) -> bool| all.clone().filter(|j| f(*j)).count() as i64;
    (
        i64::from(SYNC_USERS),
        count(&|j| j % 5 != 4),
        count(&|j| j % 3 == 0),
        count(&|j| j % 3 == 0 && j % 5 == 4),
        count(&|j| j % 7 == 6),
    )
}

/// Where the fleet's TenantSyncs of `world` write their data sets (next to the operator's log,
/// kept when a test fails; [`remove_sinks`] removes it once a test has passed).
pub fn sync_root(world: &World) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gdap-fleet-{}", world.namespace))
}

/// Removes the data sets of `world`'s fleet.
pub fn remove_sinks(world: &World) {
    let _ = std::fs::remove_dir_all(sync_root(world));
}

fn sync(i: usize, root: &std::path::Path) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: TenantSync\nmetadata:\n  name: s{i}\n  annotations:\n    gdap.io/sync-now: \"{FIRST_IMPORT}\"\nspec:\n  customer:\n    tenantId: {}\n  appConsentRef:\n    name: c{i}\n  schedule: \"@daily\"\n  sink:\n    file:\n      path: {}\n",
        Fleet::tenant(i),
        root.display()
    )
}

fn assert_one_consent(state: &Value, log: &Value, tenant: &str, i: usize, app_roles: usize) {
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
    assert_eq!(
        roles.len(),
        app_roles,
        "c{i}: the application permissions granted"
    );
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

/// The TenantSyncs of the world's namespace.
pub fn sync_api(world: &World) -> Api<TenantSync> {
    Api::namespaced(world.client.clone(), &world.namespace)
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

/// Imports the operator's log records as started and as succeeded (the runner's messages;
/// a status message quoting "import succeeded" has no `users` field after it).
pub fn imports_in_log(log: &str) -> (usize, usize) {
    let succeeded = regex::Regex::new(r" import succeeded \S*users\S*=").unwrap();
    let lines = || log.lines().map(str::trim_end);
    (
        lines().filter(|l| l.ends_with(" import started")).count(),
        lines().filter(|l| succeeded.is_match(l)).count(),
    )
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Every TenantSync of the fleet has a whole data set with exact counts: its `current` run is a
/// complete, renamed run (never a `.partial-` one, and none left beside it once an import
/// succeeded after an interrupted one) holding every file of a run, one line per user
/// of the customer, and its summary and the object's status count the users exactly as the
/// customer has them — whatever crashed or failed on the way. Returns the current run of each
/// sync.
pub async fn assert_syncs_whole(fleet: &Fleet, world: &World) -> Vec<String> {
    let syncs = sync_api(world);
    let (total, enabled, licensed, disabled_licensed, guests) = expected_counts();
    let mut runs = Vec::new();
    for i in (0..fleet.size).filter(|i| fleet.syncs_with(*i)) {
        let tenant = Fleet::tenant(i);
        let current = std::fs::canonicalize(sync_root(world).join(&tenant).join("current"))
            .unwrap_or_else(|e| panic!("s{i}: no current data set: {e}"));
        let run = current.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !run.starts_with(".partial-"),
            "s{i}: current is a partial run {run}"
        );
        let leftovers: Vec<String> = std::fs::read_dir(current.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|name| name.starts_with(".partial-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "s{i}: the last import cleared what interrupted ones left: {leftovers:?}"
        );
        for file in [
            "users.jsonl",
            "skus.jsonl",
            "subscriptions.jsonl",
            "summary.json",
            "state.json",
        ] {
            assert!(current.join(file).is_file(), "s{i}: {run} lacks {file}");
        }
        let users = std::fs::read_to_string(current.join("users.jsonl")).unwrap();
        let rows: Vec<Value> = users
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len() as i64, total, "s{i}: one line per user in {run}");
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(current.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["users"]["total"], json!(total), "s{i}: {summary}");
        let status = syncs
            .get(&format!("s{i}"))
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        let counts = status.users.expect("status.users");
        assert_eq!(
            (
                counts.total,
                counts.enabled,
                counts.licensed,
                counts.disabled_licensed,
                counts.guests
            ),
            (total, enabled, licensed, disabled_licensed, guests),
            "s{i}: the imported counts are exact"
        );
        runs.push(run);
    }
    runs
}
