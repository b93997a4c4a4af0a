//! Running it like a production operator, end to end (the real API server, the sandbox, the
//! operator binary): leader election between two replicas — only the leader reconciles, a killed
//! leader is replaced once its Lease runs out, SIGTERM finishes the step in flight and hands the
//! Lease over at once — `/metrics` exposing exactly the series docs/operations.md documents, and
//! glibc's malloc set to give memory back (`GLIBC_TUNABLES`) unless the person running it set it.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::sandbox::{SandboxOptions, defaults};
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::events::v1::Event;
use serde_json::json;
use std::time::{Duration, SystemTime};
use support::operator::{Replica, World, condition, poll_until};
use support::{metrics, sync};

const MINUTE: Duration = Duration::from_secs(60);
const LEASE: &str = "gdap-operator";
/// Where Graph creates relationships (POST).
const CREATE_PATH: &str = "/v1.0/tenantRelationships/delegatedAdminRelationships";
/// A standby looks at the Lease this often in these tests.
const RETRY: Duration = Duration::from_millis(500);

/// The election flags of a replica, with the Lease where the chart grants it (the release
/// namespace).
fn election(world: &World, duration: Duration, renew_before: Duration) -> Vec<String> {
    vec![
        "--leader-elect".into(),
        format!("--lease-namespace={}", world.release_namespace),
        format!("--lease-name={LEASE}"),
        format!("--lease-duration={}s", duration.as_secs()),
        format!("--lease-renew-before={}s", renew_before.as_secs()),
        format!("--lease-retry-period={}ms", RETRY.as_millis()),
    ]
}

fn manifest(name: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {}\n  roles: [Directory Readers, Helpdesk Administrator]\n  duration: P60D\n  autoExtend: false\n  accessAssignments:\n    - securityGroupId: {}\n      roles: [Directory Readers]\n",
        defaults::CONTOSO_TENANT_ID,
        defaults::HELPDESK_GROUP_ID
    )
}

/// Waits until `name` is pending approval; returns the relationship id.
async fn pending(world: &World, name: &str) -> String {
    world
        .wait_for(name, "approvalPending", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.state.as_deref() == Some("approvalPending")).then(|| s.relationship_id.clone())?
        })
        .await
}

/// Approves `id` as the customer and waits for `name` to be Ready.
async fn approve_until_ready(world: &World, name: &str, id: &str) {
    let status = world
        .control(&format!("relationships/{id}/approve"), json!({}))
        .await;
    assert!(status.is_success(), "approve returned {status}");
    world
        .wait_for(name, "Ready", MINUTE, |o| {
            (condition(o, "Ready")?.0 == "True").then_some(())
        })
        .await;
}

/// Exactly one relationship in Microsoft, created with exactly one POST.
async fn assert_created_once(world: &World) {
    let creates = world
        .requests()
        .await
        .iter()
        .filter(|(method, path)| method == "POST" && path == CREATE_PATH)
        .count();
    assert_eq!(creates, 1, "create POSTs sent to Microsoft");
    assert_eq!(world.sandbox_relationships().await.len(), 1);
}

/// Waits until exactly one replica leads and the other stands by, both ready; returns the
/// leader's index.
async fn one_leader(world: &World, replicas: &[Replica; 2]) -> usize {
    let leader = poll_until("one leader and one standby", MINUTE, || async {
        let roles = [
            replicas[0].is_leader().await?,
            replicas[1].is_leader().await?,
        ];
        match roles {
            [true, false] => Some(0),
            [false, true] => Some(1),
            _ => None,
        }
    })
    .await;
    let holder = lease(world).await.holder_identity.unwrap();
    assert!(
        holder.starts_with(&format!("{}_", replicas[leader].tag)),
        "the Lease is held by {holder}, the leader is {}",
        replicas[leader].tag
    );
    for (replica, body) in [(leader, "leading"), (1 - leader, "standing by")] {
        let what = poll_until("both replicas ready", MINUTE, || async {
            let (status, text) = replicas[replica].readyz().await?;
            (status == 200).then_some(text)
        })
        .await;
        assert!(
            what.contains(body),
            "{}: /readyz says {what}",
            replicas[replica].tag
        );
    }
    leader
}

async fn lease(world: &World) -> LeaseSpec {
    world
        .lease(LEASE)
        .await
        .and_then(|l| l.spec)
        .expect("the Lease exists")
}

/// Waits until the replica tagged `tag` holds the Lease; returns the Lease.
async fn held_by(world: &World, tag: &str, timeout: Duration) -> LeaseSpec {
    poll_until(&format!("{tag} to hold the Lease"), timeout, || async {
        let spec = world.lease(LEASE).await?.spec?;
        spec.holder_identity
            .as_deref()?
            .starts_with(&format!("{tag}_"))
            .then_some(spec)
    })
    .await
}

fn time(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime) -> SystemTime {
    t.0.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reconciles_and_a_killed_leader_is_replaced_once_its_lease_runs_out() {
    // Renewals every 2 s, each with room for a retry: a slow API server on a busy machine does
    // not make the leader step down before the test kills it.
    const DURATION: Duration = Duration::from_secs(6);
    let world = World::prepare("e2e-elect", SandboxOptions::default()).await;
    let flags = election(&world, DURATION, Duration::from_secs(4));
    let mut replicas = [
        world.start_replica("a", &flags),
        world.start_replica("b", &flags),
    ];
    let leader = one_leader(&world, &replicas).await;
    let standby = 1 - leader;

    world.apply(&manifest("elected"));
    let id = pending(&world, "elected").await;
    assert!(replicas[leader].reconciles().await > 0.0);
    let idle = replicas[standby].metrics().await.unwrap();
    assert_eq!(
        metrics::sum(&idle, "gdap_reconciles_total"),
        0.0,
        "the standby reconciled:\n{idle}"
    );
    assert_eq!(
        metrics::sum(&idle, "gdap_microsoft_calls_total"),
        0.0,
        "the standby called Microsoft:\n{idle}"
    );

    replicas[leader].kill();
    let dead = lease(&world).await;
    assert!(
        dead.holder_identity
            .as_deref()
            .unwrap()
            .starts_with(&format!("{}_", replicas[leader].tag)),
        "the Lease changed hands before the leader's Lease ran out: {dead:?}"
    );
    let last_renewal = time(dead.renew_time.as_ref().unwrap());
    let taken = held_by(&world, &replicas[standby].tag, MINUTE).await;
    let after = time(taken.acquire_time.as_ref().unwrap())
        .duration_since(last_renewal)
        .expect("taken after the last renewal");
    assert!(
        after >= DURATION,
        "the standby took the Lease {after:?} after the dead leader's last renewal, before it ran out"
    );
    assert!(
        after <= DURATION + RETRY + Duration::from_secs(3),
        "the standby took the Lease only {after:?} after the dead leader's last renewal"
    );
    poll_until("the new leader to report it", MINUTE, || async {
        replicas[standby].is_leader().await?.then_some(())
    })
    .await;

    approve_until_ready(&world, "elected", &id).await;
    assert!(replicas[standby].reconciles().await > 0.0);
    assert_created_once(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_step_in_flight_and_hands_the_lease_over_at_once() {
    const DURATION: Duration = Duration::from_secs(30);
    let world = World::prepare("e2e-handover", SandboxOptions::default()).await;
    let flags = election(&world, DURATION, Duration::from_secs(10));
    let mut replicas = [
        world.start_replica("a", &flags),
        world.start_replica("b", &flags),
    ];
    let leader = one_leader(&world, &replicas).await;
    let standby = 1 - leader;
    let slow_create =
        json!({"rules": [{"pathPrefix": CREATE_PATH, "method": "POST", "latencyMs": 3000}]});
    assert!(world.put_control("faults", slow_create).await.is_success());

    world.apply(&manifest("handover"));
    poll_until("the leader to send the create", MINUTE, || async {
        let log = replicas[leader].log();
        log.lines()
            .any(|l| l.contains("planned") && l.contains("Create {"))
            .then_some(())
    })
    .await;
    let renewed = time(lease(&world).await.renew_time.as_ref().unwrap());
    let signalled = SystemTime::now();
    replicas[leader].terminate();
    let exit = replicas[leader].wait_exit(MINUTE).await;
    assert!(exit.success(), "a graceful stop exits 0, not {exit}");
    let log = replicas[leader].log();
    assert!(log.contains("released the Lease"), "{log}");

    let taken = held_by(&world, &replicas[standby].tag, MINUTE).await;
    let acquired = time(taken.acquire_time.as_ref().unwrap());
    assert!(
        acquired < renewed + DURATION,
        "the standby waited for the old Lease to run out instead of taking the released one"
    );
    let handover = acquired.duration_since(signalled).unwrap_or_default();
    assert!(
        handover < DURATION / 3,
        "the standby took the released Lease only {handover:?} after SIGTERM"
    );

    let events: kube::Api<Event> = kube::Api::namespaced(world.client.clone(), &world.namespace);
    let created: Vec<Event> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        // The create is locked for approval in the same step, and `ApprovalRequested` reports both.
        .filter(|e| e.reason.as_deref() == Some("ApprovalRequested"))
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(
        created[0].reporting_instance.as_deref(),
        Some(replicas[leader].tag.as_str()),
        "the create in flight at SIGTERM was finished and reported by the old leader"
    );
    let reported = time(created[0].event_time.as_ref().unwrap());
    assert!(
        reported <= acquired,
        "the old leader reported after the new one took over"
    );

    assert_eq!(world.delete_control("faults").await.as_u16(), 204);
    let id = pending(&world, "handover").await;
    approve_until_ready(&world, "handover", &id).await;
    assert!(replicas[standby].reconciles().await > 0.0);
    assert_created_once(&world).await;
}

/// Whether process `pid`'s environment holds `name=value` now. glibc splits `GLIBC_TUNABLES` in
/// place as it reads it (each `:` becomes a NUL), so both separators count alike.
fn environment_has(pid: u32, name: &str, value: &str) -> bool {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let plain = |text: &str| text.replace([':', '\0'], "\n");
    let environ = plain(&String::from_utf8_lossy(&environ));
    format!("\n{environ}").contains(&plain(&format!("\n{name}={value}\0")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_runs_with_malloc_set_to_give_memory_back_unless_glibc_tunables_are_given() {
    use gdap_operator::run::allocator::{TUNABLES, VARIABLE};
    let docs = std::fs::read_to_string("docs/operations.md").unwrap();
    assert!(
        docs.contains(&format!("`{VARIABLE}={TUNABLES}`")),
        "docs/operations.md's Memory section names the tunables the operator sets"
    );
    let world = World::start("e2e-malloc", SandboxOptions::default()).await;
    let pid = world.operator.as_ref().expect("the operator runs").id();
    // The operator started itself again in place (same process), with the tunables; it serves.
    world.apply(&manifest("tuned"));
    pending(&world, "tuned").await;
    assert!(
        environment_has(pid, VARIABLE, TUNABLES),
        "the running operator (pid {pid}) has {VARIABLE}={TUNABLES}"
    );
    // Given by the person running it (any value, empty included), they are kept as given.
    for given in ["glibc.malloc.arena_max=1", ""] {
        let replica = world.start_replica_with_env("given", &[], &[(VARIABLE, given)]);
        let pid = replica.pid().expect("the replica runs");
        poll_until("the replica answering /metrics", MINUTE, || async {
            replica.metrics().await.map(drop)
        })
        .await;
        assert!(
            environment_has(pid, VARIABLE, given) && !environment_has(pid, VARIABLE, TUNABLES),
            "{VARIABLE} stays {given:?}, as the person running it gave it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_exactly_the_series_the_docs_document() {
    let world = World::start("e2e-metrics", SandboxOptions::default()).await;
    world.apply(&manifest("metered"));
    let id = pending(&world, "metered").await;
    approve_until_ready(&world, "metered", &id).await;
    // An AppConsent made Ready, and one tenant import through it: every kind's series.
    let dir = tempfile::tempdir().unwrap();
    world.apply(&sync::consent_manifest(sync::CONTOSO));
    sync::make_consent_ready(&world, sync::CONSENT).await;
    world.apply(&sync::sync_manifest(
        "metered-import",
        sync::CONTOSO,
        "@daily",
        &sync::file_sink(dir.path()),
        "",
    ));
    sync::sync_now(&world, "metered-import", "1").await;
    sync::wait_request(&world, "metered-import", "1", 2 * MINUTE).await;
    // A fleet over Contoso, which "metered" already covers: counted, nothing written.
    world.apply(&format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapFleet\nmetadata:\n  name: metered-fleet\nspec:\n  customers:\n    list: [{{tenantId: {}}}]\n  template:\n    relationship:\n      roles: [Directory Readers]\n      duration: P60D\n",
        sync::CONTOSO
    ));
    let text = poll_until("every per-object series", MINUTE, || async {
        let text = world.metrics().await;
        (text.contains("gdap_consent_healthy{")
            && text.contains("gdap_sync_licenses_available{")
            && text.contains("gdap_fleet_customers{"))
        .then_some(text)
    })
    .await;
    let documented = metrics::documented();
    assert!(documented.len() >= 8, "{documented:?}");
    let exposed = metrics::sample_names(&text);
    let undocumented: Vec<&String> = exposed
        .iter()
        .filter(|s| metrics::documented_series(s, &documented).is_none())
        .collect();
    assert!(
        undocumented.is_empty(),
        "exposed but not in docs/operations.md's metrics table: {undocumented:?}\n{text}"
    );
    let missing: Vec<&String> = documented
        .iter()
        .filter(|d| {
            !exposed
                .iter()
                .any(|s| metrics::documented_series(s, &documented) == Some(*d))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "documented in docs/operations.md but not exposed after every kind worked: {missing:?}\n{text}"
    );
    assert_eq!(
        metrics::value(&text, "gdap_leader"),
        Some(1.0),
        "without --leader-elect the only replica leads"
    );
}
