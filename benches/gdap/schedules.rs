//! Schedules at scale: 1,000 TenantSyncs of small tenants (200 users each, one customer each,
//! each with its own Ready AppConsent) all due at the same moment — the worst case of an hour
//! whose schedules coincide — imported by the release operator under its global
//! `--sync-concurrency` limit (the default, 4).
//!
//! Run 1 is the TenantSyncs' creation with a `gdap.io/sync-now` request each; every further run
//! asks all 1,000 for one more import at once (a new `gdap.io/sync-now` value). A run's clock
//! starts with the first write and stops when the operator's `gdap_sync_runs_total{result=
//! "success"}` has grown by 1,000; the operator's `gdap_sync_runs_running` is read every 100 ms
//! meanwhile, and its highest value is the concurrency observed.
//!
//! References, measured in the same run: the limit-bound ideal — the sum of the run's import
//! durations (`gdap_sync_run_duration_seconds_sum`) divided by the limit, i.e. the time the
//! imports alone need with every slot always busy — and the limit itself for the concurrency.
//! The objects stay (on `@daily`, Full mode) for the footprint measurement that follows.

use crate::Outcome;
use crate::procs::OperatorProc;
use crate::report::{Bound, Bounded, Divide, Figure};
use futures::StreamExt;
use gdap_operator::api::TenantSync;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// The benchmark's section title.
const BENCHMARK: &str = "Schedules at scale";
/// The operator's default `--sync-concurrency`, which the benchmark keeps.
pub const LIMIT: usize = 4;
/// Users of each small tenant.
pub const SMALL_TENANT_USERS: u64 = 200;
/// Longest wait for one round of imports.
const ROUND_TIMEOUT: Duration = Duration::from_secs(900);

/// One round's measurements.
#[derive(Debug, Clone, Copy)]
struct Round {
    seconds: f64,
    ideal_seconds: f64,
    highest_running: f64,
    /// Imports that failed (and were retried) on the way.
    failed: f64,
}

/// The TenantSync of customer `i` (`customer`), importing into its own folder under `sinks`.
pub fn tenant_sync(i: usize, customer: &str, sinks: &Path) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: TenantSync\nmetadata:\n  name: sync-{i:05}\n  annotations:\n    gdap.io/sync-now: run-1\nspec:\n  customer:\n    tenantId: {customer}\n  appConsentRef:\n    name: consent-{i:05}\n  schedule: \"@daily\"\n  mode: Full\n  sink:\n    file:\n      path: {}\n",
        sinks.join(format!("sync-{i:05}")).display()
    )
}

/// Measures `runs` rounds over the TenantSyncs `sync-<i>` for `indices` (one per Ready
/// AppConsent): the first is `create` (which writes the objects), the others ask every object
/// for an import at once. Figures go to `out`.
pub async fn run(
    op: &OperatorProc,
    client: &kube::Client,
    namespace: &str,
    indices: &[usize],
    runs: usize,
    create: impl std::future::Future<Output = anyhow::Result<()>>,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let objects = indices.len();
    let mut rounds = vec![round(op, objects, create).await?];
    report(1, &rounds[0]);
    let api: Api<TenantSync> = Api::namespaced(client.clone(), namespace);
    for k in 2..=runs {
        let request = request_all(api.clone(), indices, format!("run-{k}"));
        rounds.push(round(op, objects, request).await?);
        report(k, &rounds[k - 1]);
    }
    figures(out, objects, &rounds);
    Ok(())
}

fn report(k: usize, r: &Round) {
    println!(
        "bench: schedules round {k}: {:.1} s (ideal under the limit {:.1} s), at most {} running",
        r.seconds, r.ideal_seconds, r.highest_running
    );
}

/// A new `gdap.io/sync-now` value on every object, 32 writes at a time.
async fn request_all(api: Api<TenantSync>, indices: &[usize], value: String) -> anyhow::Result<()> {
    let patch = json!({"metadata": {"annotations": {"gdap.io/sync-now": value}}});
    let results: Vec<kube::Result<TenantSync>> = futures::stream::iter(indices.iter().copied())
        .map(|i| {
            let (api, patch) = (api.clone(), patch.clone());
            async move {
                api.patch(
                    &format!("sync-{i:05}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

/// Runs `trigger` and waits until `objects` more imports succeeded, sampling the concurrency.
async fn round(
    op: &OperatorProc,
    objects: usize,
    trigger: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<Round> {
    let success = "gdap_sync_runs_total{result=\"success\"}";
    let duration_sum = "gdap_sync_run_duration_seconds_sum";
    let before = op.metrics().await?;
    let (ok_before, sum_before) = (sum(&before, success), sum(&before, duration_sum));
    let failed_before = sum(&before, "gdap_sync_runs_total") - ok_before;
    let started = Instant::now();
    let sampler = async {
        let mut highest = 0.0f64;
        loop {
            let text = op.metrics().await?;
            highest = highest.max(sum(&text, "gdap_sync_runs_running"));
            let ok = sum(&text, success) - ok_before;
            let failed = sum(&text, "gdap_sync_runs_total") - sum(&text, success) - failed_before;
            if ok >= objects as f64 {
                return anyhow::Ok(Round {
                    seconds: started.elapsed().as_secs_f64(),
                    ideal_seconds: (sum(&text, duration_sum) - sum_before) / LIMIT as f64,
                    highest_running: highest,
                    failed,
                });
            }
            anyhow::ensure!(
                started.elapsed() < ROUND_TIMEOUT,
                "only {ok} of {objects} imports succeeded within {ROUND_TIMEOUT:?}, {failed} failed (log: {})",
                op.proc.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let ((), round) = tokio::try_join!(trigger, sampler)?;
    Ok(round)
}

fn sum(text: &str, prefix: &str) -> f64 {
    crate::procs::sum_series(text, prefix)
}

fn figures(out: &mut Outcome, objects: usize, rounds: &[Round]) {
    let pick = |f: fn(&Round) -> f64| rounds.iter().map(f).collect::<Vec<_>>();
    let n = crate::report::number(objects as f64);
    out.figures.push(
        Figure::new(
            "schedules.seconds",
            BENCHMARK,
            &format!(
                "{n} TenantSyncs of {SMALL_TENANT_USERS}-user tenants due at once: total time"
            ),
            "s",
            pick(|r| r.seconds),
        )
        .against(
            &format!("the imports' own time ÷ the limit ({LIMIT}): every slot always busy"),
            pick(|r| r.ideal_seconds),
            Divide::FigureByReference,
            "total ÷ ideal",
        ),
    );
    out.figures.push(
        Figure::new(
            "schedules.concurrency",
            BENCHMARK,
            "highest number of imports running at once (sampled every 100 ms)",
            "imports",
            pick(|r| r.highest_running),
        )
        .against(
            "--sync-concurrency",
            vec![LIMIT as f64; rounds.len()],
            Divide::FigureByReference,
            "observed ÷ limit",
        )
        .target(
            "never above --sync-concurrency",
            Bounded::Ratio,
            Bound::AtMost(1.0),
        ),
    );
    let per_second: Vec<f64> = rounds.iter().map(|r| objects as f64 / r.seconds).collect();
    let mut detail = serde_json::Map::new();
    detail.insert(
        "failed imports (retried by the operator), per round".into(),
        json!(format!(
            "{:?}",
            rounds.iter().map(|r| r.failed).collect::<Vec<_>>()
        )),
    );
    detail.insert(
        "imports per second (median)".into(),
        json!(crate::report::median(&per_second)),
    );
    detail.insert(
        "how".into(),
        json!(format!(
            "round 1 creates the {n} TenantSyncs (ten kubectl apply at once, each with a gdap.io/sync-now request); later rounds give all of them a new gdap.io/sync-now value (32 writes at a time); Full mode, file sinks; one customer tenant of {SMALL_TENANT_USERS} generated users each"
        )),
    );
    out.details
        .insert(BENCHMARK.into(), serde_json::Value::Object(detail));
}
