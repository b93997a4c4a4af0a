//! Kubernetes-side faults (issue 15): kube-apiserver and etcd restart mid-run — crashed with
//! SIGKILL and stopped gracefully — while relationships, consents and TenantSyncs are in flight
//! and another client keeps rewriting the objects' and the credentials Secret's metadata (so the
//! operator's optimistic Secret writes meet 409 conflicts and every reconcile works on objects
//! that change under it). The operator must ride it out: never exit, converge (every sync's
//! import included, its data set whole), create nothing twice.
//!
//! The operator's status writes are server-side apply with force, which the API server never
//! answers with a conflict; the writes that can conflict are the Secret's (the rotated refresh
//! token, with the read resourceVersion), and those are the ones the concurrent writer provokes.
//!
//! This test restarts the shared control plane, so it is the only test of its binary: every
//! other request fails while the API server is down. It needs the local control plane
//! (tests/controlplane); with `GDAP_TEST_KUBECONFIG` it is skipped.
#![cfg(feature = "sandbox")]

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use support::fleet::{self, Fleet, imports_in_log, tail};
use support::operator::World;

const MINUTE: Duration = Duration::from_secs(60);

/// Rewrites an annotation of every object and of the credentials Secret, as fast as the API
/// server lets it, until stopped; counts the writes that landed and the conflicts it met.
struct Churn {
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Churn {
    fn start(world: &World) -> Churn {
        let client = world.client.clone();
        let namespace = world.namespace.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (stop.clone(), writes.clone());
        let task = tokio::spawn(async move {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
            let rels: Api<gdap_operator::api::GdapRelationship> =
                Api::namespaced(client.clone(), &namespace);
            let mut tick = 0u64;
            while !flag.load(Ordering::SeqCst) {
                tick += 1;
                let patch =
                    json!({"metadata": {"annotations": {"chaos.test/tick": tick.to_string()}}});
                let params = PatchParams::default();
                if secrets
                    .patch("partner-credentials", &params, &Patch::Merge(&patch))
                    .await
                    .is_ok()
                {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                if let Ok(list) = rels.list(&Default::default()).await {
                    for o in list.items {
                        let name = o.metadata.name.unwrap_or_default();
                        if rels
                            .patch(&name, &params, &Patch::Merge(&patch))
                            .await
                            .is_ok()
                        {
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Churn { stop, writes, task }
    }

    async fn finish(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        self.writes.load(Ordering::SeqCst)
    }
}

/// Polls `check` (every 50 ms, so a short window is not missed) until it describes the moment
/// a restart is to interrupt; fails when that moment never came, so a restart cannot pass by
/// hitting nothing.
async fn in_flight<F, Fut>(what: &str, timeout: Duration, check: F) -> String
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(seen) = check().await {
            return seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never saw {what} to restart in"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_api_server_and_etcd_mid_run_is_absorbed_and_the_operator_never_exits() {
    let cp = support::controlplane::get();
    if !cp.is_local() {
        eprintln!("skipped: GDAP_TEST_KUBECONFIG names a cluster this test cannot restart");
        return;
    }
    let fleet = Fleet::sized(
        Fleet {
            size: 8,
            renewing: 0,
            syncs: 2,
        },
        Fleet {
            size: 40,
            renewing: 0,
            syncs: 10,
        },
    );
    let timeout = if fleet::soak() {
        15 * MINUTE
    } else {
        4 * MINUTE
    };
    let mut world =
        World::start_with_args("res-kube", fleet.sandbox_options(), &Fleet::operator_args()).await;
    // Slow Microsoft down a little, and the users listing a lot, so the outages land in the
    // middle of reconciles and of imports.
    let slow = json!({"rules": [
        {"pathPrefix": "/v1.0/users/delta", "latencyMs": 5000},
        {"pathPrefix": "/", "latencyMs": 30},
    ]});
    assert!(world.put_control("faults", slow).await.is_success());
    world.apply(&fleet.manifests(&world));
    let churn = Churn::start(&world);

    // Each restart waits for a moment read from the state, and says what it interrupted; the
    // moments come within a minute or two of each other, so one not seen in three never came.
    let moment = if fleet::soak() { timeout } else { 3 * MINUTE };
    // 1. Relationships mid-create: Microsoft holds some, not every object is active yet.
    let mid_create = in_flight("relationships mid-create", moment, || async {
        let created = world.sandbox_relationships().await.len();
        let active = fleet::relationships(&world)
            .await
            .iter()
            .filter(|o| o.status.as_ref().and_then(|s| s.state.as_deref()) == Some("active"))
            .count();
        (created > 0 && active < fleet.size).then(|| {
            format!(
                "{created} relationships in Microsoft, {active} of {} active",
                fleet.size
            )
        })
    })
    .await;
    cp.restart(&["kube-apiserver"], true);
    eprintln!("the API server crashed with {mid_create}");
    assert!(
        world.operator_running(),
        "the operator survived the API server's crash"
    );
    // 2. An import running: the operator started one that has not finished.
    let importing = in_flight("an import running", moment, || async {
        let (started, succeeded) = imports_in_log(&world.operator_log());
        (started > succeeded).then(|| format!("{started} imports started, {succeeded} finished"))
    })
    .await;
    cp.restart(&["etcd"], true);
    eprintln!("etcd crashed with {importing}");
    assert!(
        world.operator_running(),
        "the operator survived etcd's crash"
    );
    // 3. Imports still under way after etcd's return: one started, not every first import done.
    let syncs = fleet::sync_api(&world);
    let mid_import = in_flight("imports under way", moment, || async {
        let (started, succeeded) = imports_in_log(&world.operator_log());
        let pending = fleet.imports_pending(&syncs, fleet::FIRST_IMPORT).await;
        (started > 0 && !pending.is_empty()).then(|| {
            format!("{started} imports started, {succeeded} finished, still pending: {pending:?}")
        })
    })
    .await;
    cp.restart(&["kube-apiserver"], false);
    eprintln!("the API server restarted with {mid_import}");
    assert!(
        world.operator_running(),
        "the operator survived the API server's restart"
    );

    fleet.wait_converged(&world, false, timeout).await;
    let writes = churn.finish().await;
    assert!(
        writes > 20,
        "the concurrent writer kept writing ({writes} writes)"
    );
    assert!(world.operator_running(), "the operator never exited");
    // The record of a write made in Microsoft is retried through each outage, and no pass
    // decides on a cached copy older than the operator's own last write; so a create is sent
    // again only when an outage outlasts the retries, and Microsoft refuses it as a duplicate —
    // at most once per outage across the fleet. (Before the retries and the fresh read, a
    // lagging watch after each restart made several objects send theirs again and again.)
    fleet
        .assert_no_duplicates(&world, false, fleet::Repeats::Fleet(3))
        .await;
    fleet::assert_syncs_whole(&fleet, &world).await;

    // The refresh token the operator keeps in the Secret is the live one: its last rotation
    // was written despite the conflicts, so the next grant works.
    async fn granted(world: &World) -> usize {
        world.http_get("requests").await["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"].as_str().unwrap().contains("/oauth2/") && r["status"] == 200)
            .count()
    }
    let before = granted(&world).await;
    world.kill_operator();
    world.start_operator();
    support::operator::poll_until(
        "a token grant of the restarted operator",
        MINUTE,
        || async { (granted(&world).await > before).then_some(()) },
    )
    .await;
    fleet.wait_converged(&world, false, timeout).await;
    let log = world.operator_log();
    assert!(!log.contains("panicked"), "{}", tail(&log, 80));
    assert!(
        !log.contains("CredentialsInvalid"),
        "a rotation was lost to a conflict: {}",
        tail(&log, 80)
    );
    fleet::remove_sinks(&world);
}
