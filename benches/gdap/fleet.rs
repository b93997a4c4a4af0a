//! A fleet at scale: one GdapFleet over the scale fixture's 1,000 customers (and the built-in
//! fixture's), from `kubectl apply` to every relationship Ready, then a steady state (more passes
//! of the fleet, each re-reading Partner Center's customer list and the namespace's
//! relationships). The reference, measured in the same runs (alternating which goes first), is the
//! same operator reconciling 1,000 GdapRelationships applied by kubectl (`reconcile`'s manifests),
//! on the same sandbox flags: what the fleet costs beyond the relationships it writes.
//!
//! Reported: wall time, the operator's CPU seconds and peak RSS, and its RSS in the steady state.

use crate::reconcile::{self, SANDBOX_ARGS, namespace_with_credentials, wait_all_ready};
use crate::report::{Bound, Bounded, Divide, Figure};
use crate::{AllArgs, Outcome, procs, support};
use gdap_operator::api::GdapFleet;
use kube::api::Api;
use std::path::Path;
use std::time::{Duration, Instant};

/// The benchmark's section title.
const BENCHMARK: &str = "A fleet of 1,000 customers";
/// Longest wait for every relationship to be Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(900);
/// The fleet's passes in the steady state before its memory is read.
const STEADY_PASSES: u32 = 5;

/// What one run measured.
#[derive(Debug, Default, Clone)]
struct RunResult {
    seconds: f64,
    objects: usize,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    steady_rss_mib: f64,
}

/// The benchmark.
pub async fn run(args: &AllArgs) -> anyhow::Result<Outcome> {
    let cp = support::controlplane::get();
    let client = cp.client().await;
    let work = tempfile::tempdir()?;
    let files = reconcile::write_manifests(work.path(), reconcile::OBJECTS, 10)?;
    let mut fleet = Vec::new();
    let mut by_hand = Vec::new();
    for run in 0..args.runs {
        for as_fleet in [run % 2 == 0, run % 2 != 0] {
            let result = if as_fleet {
                fleet_run(cp, &client, work.path()).await?
            } else {
                by_hand_run(cp, &client, &files, work.path()).await?
            };
            println!(
                "bench: fleet run {} ({}): {} relationships Ready in {:.1} s, {:.1} CPU s, peak RSS {:.1} MiB, steady RSS {:.1} MiB",
                run + 1,
                if as_fleet { "fleet" } else { "by hand" },
                result.objects,
                result.seconds,
                result.cpu_seconds,
                result.peak_rss_mib,
                result.steady_rss_mib
            );
            match as_fleet {
                true => fleet.push(result),
                false => by_hand.push(result),
            }
        }
    }
    Ok(outcome(&fleet, &by_hand))
}

fn outcome(fleet: &[RunResult], by_hand: &[RunResult]) -> Outcome {
    let pick = |rs: &[RunResult], f: fn(&RunResult) -> f64| rs.iter().map(f).collect::<Vec<_>>();
    // Each figure: the fleet's runs against the same measure of the relationships applied by hand.
    let figure = |id: &str, what: &str, unit: &str, f: fn(&RunResult) -> f64| {
        Figure::new(id, BENCHMARK, what, unit, pick(fleet, f)).against(
            "1,000 GdapRelationships applied by kubectl, the same operator and sandbox",
            pick(by_hand, f),
            Divide::FigureByReference,
            "fleet ÷ by hand",
        )
    };
    let figures = vec![
        figure(
            "fleet.secondsPerThousand",
            "GdapFleet over every customer, kubectl apply to every relationship Ready: wall time per 1,000 relationships",
            "s",
            |r| r.seconds * 1000.0 / r.objects as f64,
        )
        .target(
            "within 1.5× of the relationships applied by hand",
            Bounded::Ratio,
            Bound::AtMost(1.5),
        ),
        figure("fleet.cpu", "operator CPU time to steady state", "CPU s", |r| {
            r.cpu_seconds
        }),
        figure("fleet.peakRss", "operator peak RSS", "MiB", |r| r.peak_rss_mib),
        figure(
            "fleet.steadyRss",
            "operator RSS in the steady state (after five more passes of the fleet)",
            "MiB",
            |r| r.steady_rss_mib,
        )
        .target(
            "within 1.25× of the relationships applied by hand",
            Bounded::Ratio,
            Bound::AtMost(1.25),
        ),
    ];
    let mut out = Outcome {
        figures,
        ..Outcome::default()
    };
    out.details.insert(
        BENCHMARK.into(),
        serde_json::json!({"how": "a fresh release sandbox with --scale-fixture (approval and activation at once, throttling off) and namespace per run; the fleet's rollout limit is 1,000 so it does not pace the run; its relationships carry the same roles and group as the reference's; the steady state is read after five more passes of the fleet (status.customerListReadAt advancing), the reference's after as many poll intervals"}),
    );
    out
}

/// The fleet's manifest: every customer, the reference's roles and group.
fn fleet_manifest() -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapFleet\nmetadata:\n  name: estate\nspec:\n  customers:\n    partnerCenter: true\n  template:\n    relationship:\n      roles: [Directory Readers, Helpdesk Administrator]\n      duration: P730D\n      accessAssignments:\n        - securityGroupId: {}\n          roles: [Directory Readers, Helpdesk Administrator]\n  rollout:\n    maxAwaitingApproval: 1000\n",
        gdap_operator::sandbox::defaults::HELPDESK_GROUP_ID
    )
}

/// The operator's flags in both runs.
const OPERATOR_ARGS: [&str; 2] = ["--poll-interval", "2s"];

/// A release sandbox with the scale fixture, a fresh namespace with the partner's credentials and
/// the operator watching it, ready: what both runs start from.
async fn start(
    cp: &support::controlplane::ControlPlane,
    client: &kube::Client,
    work: &Path,
    prefix: &str,
) -> anyhow::Result<(
    procs::SandboxProc,
    String,
    std::path::PathBuf,
    procs::OperatorProc,
)> {
    let mut sandbox_args = SANDBOX_ARGS.to_vec();
    sandbox_args.push("--scale-fixture");
    let sandbox = procs::sandbox(&sandbox_args, work)?;
    let namespace = namespace_with_credentials(cp, client, prefix).await?;
    let log = work.join(format!("{namespace}.log"));
    let op = procs::operator(&cp.kubeconfig, &namespace, &sandbox, &OPERATOR_ARGS, &log)?;
    op.wait_ready(Duration::from_secs(60)).await?;
    Ok((sandbox, namespace, log, op))
}

async fn fleet_run(
    cp: &support::controlplane::ControlPlane,
    client: &kube::Client,
    work: &Path,
) -> anyhow::Result<RunResult> {
    let (sandbox, namespace, log, op) = start(cp, client, work, "bench-fleet").await?;
    let manifest = work.join("fleet.yaml");
    std::fs::write(&manifest, fleet_manifest())?;
    let fleets: Api<GdapFleet> = Api::namespaced(client.clone(), &namespace);
    let cpu_before = op.proc.cpu_seconds();
    let started = Instant::now();
    cp.kubectl_ok(&["apply", "-n", &namespace, "-f", manifest.to_str().unwrap()]);
    let customers = poll(READY_TIMEOUT, || async {
        let s = fleets.get("estate").await.ok()?.status?;
        (s.customers >= 1000).then_some(s.customers as usize)
    })
    .await?;
    let ready = wait_all_ready(client.clone(), namespace.clone(), customers);
    tokio::time::timeout(READY_TIMEOUT, ready)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "not every relationship Ready in time (log: {})",
                log.display()
            )
        })??;
    let seconds = started.elapsed().as_secs_f64();
    let read_at = |s: &gdap_operator::api::GdapFleetStatus| s.customer_list_read_at.clone();
    let mut last = fleets.get("estate").await?.status.and_then(|s| read_at(&s));
    for _ in 0..STEADY_PASSES {
        last = Some(
            poll(Duration::from_secs(120), || async {
                let now = fleets
                    .get("estate")
                    .await
                    .ok()?
                    .status
                    .and_then(|s| read_at(&s))?;
                (Some(&now) != last.as_ref()).then_some(now)
            })
            .await?,
        );
    }
    let cpu_seconds = op.proc.cpu_seconds() - cpu_before;
    let (steady, peak) = op.proc.rss_kib();
    op.proc.stop();
    sandbox.proc.stop();
    // The fleet's finalizer would hold the namespace (the operator is stopped).
    let unfinalize = serde_json::json!({"metadata": {"finalizers": null}});
    let _ = fleets
        .patch(
            "estate",
            &Default::default(),
            &kube::api::Patch::Merge(&unfinalize),
        )
        .await;
    reconcile::clean_up(client, &namespace).await;
    Ok(RunResult {
        seconds,
        objects: customers,
        cpu_seconds,
        peak_rss_mib: peak as f64 / 1024.0,
        steady_rss_mib: steady as f64 / 1024.0,
    })
}

async fn by_hand_run(
    cp: &support::controlplane::ControlPlane,
    client: &kube::Client,
    files: &[std::path::PathBuf],
    work: &Path,
) -> anyhow::Result<RunResult> {
    let (sandbox, namespace, log, op) = start(cp, client, work, "bench-fleet-ref").await?;
    let cpu_before = op.proc.cpu_seconds();
    let started = Instant::now();
    let ready = tokio::spawn(wait_all_ready(
        client.clone(),
        namespace.clone(),
        reconcile::OBJECTS,
    ));
    for file in files {
        cp.kubectl_ok(&["apply", "-n", &namespace, "-f", file.to_str().unwrap()]);
    }
    tokio::time::timeout(READY_TIMEOUT, ready)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "not every relationship Ready in time (log: {})",
                log.display()
            )
        })???;
    let seconds = started.elapsed().as_secs_f64();
    // As many poll intervals as the fleet's steady passes.
    tokio::time::sleep(Duration::from_secs(2 * u64::from(STEADY_PASSES))).await;
    let cpu_seconds = op.proc.cpu_seconds() - cpu_before;
    let (steady, peak) = op.proc.rss_kib();
    op.proc.stop();
    sandbox.proc.stop();
    reconcile::clean_up(client, &namespace).await;
    Ok(RunResult {
        seconds,
        objects: reconcile::OBJECTS,
        cpu_seconds,
        peak_rss_mib: peak as f64 / 1024.0,
        steady_rss_mib: steady as f64 / 1024.0,
    })
}

/// Polls `check` every 250 ms until it answers, or fails after `timeout`.
pub async fn poll<T, F, Fut>(timeout: Duration, check: F) -> anyhow::Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
