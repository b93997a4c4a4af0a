//! Reconcile at scale: whether the operator's CPU per relationship stays flat as the number of
//! relationships grows (issue 27: at 10,000 within 1.2× of 1,000), and its throughput at each
//! size. The operator alone (no floor: `reconcile` compares it with the floor at 1,000) brings
//! `--scale-sizes` relationships (`GDAP_BENCH_SCALE`, default 1,000, 3,000 and 10,000) to Ready,
//! each size on a fresh namespace, a fresh sandbox and a fresh operator, with the reconcile
//! benchmark's apply method and sandbox flags: ten concurrent `kubectl apply` of a tenth each,
//! approval and activation at once, reads without lag, throttling off. CPU is the operator's
//! user + system time from /proc, from the first `kubectl apply` until a watch in this process
//! has seen every object Ready, as in `reconcile`. The operator's `--resync-interval` is longer
//! than any run ([`NO_RESYNC`]).
//!
//! The wait for all Ready grows with the size (see `scale_figures::wait_for`); a size whose wait
//! runs out is reported as an incident, and its sample is left out. The figures and their
//! arithmetic are in `scale_figures`.
//!
//! On two shared cores the API server is the ceiling of the throughput; the throughput at 10,000
//! is measured on the larger machine (`../shared/tools/device-bench`, whose default `--only
//! reconcile` includes this measurement).

use crate::reconcile::{
    APPLIERS, apply, clean_up, is_ready, namespace_with_credentials, run_sandbox_args,
    wait_all_ready, write_manifests,
};
use crate::scale_figures::{self, Finished, Sample, Size};
use crate::{AllArgs, Outcome, procs, support};
use gdap_operator::api::GdapRelationship;
use kube::api::{Api, ListParams};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The measured operator resyncs no Ready relationship within the measurement: the figure is the
/// CPU that brings each relationship to Ready, and with the default of 10 minutes a size whose
/// run lasts longer (10,000 on two cores took 15 minutes while the sandbox was its bottleneck,
/// about 5 since; a slower machine takes longer) would also count a steady-state resync of the
/// objects Ready early, in a number that depends on the run's length.
const NO_RESYNC: [&str; 2] = ["--resync-interval", "2h"];

/// How long a fresh operator may take to list its (empty) namespace.
const OPERATOR_READY: Duration = Duration::from_secs(60);

/// The benchmark.
pub async fn run(args: &AllArgs) -> anyhow::Result<Outcome> {
    let sizes = &args.scale_sizes;
    scale_figures::check_sizes(sizes)?;
    let cp = support::controlplane::get();
    let client = cp.client().await;
    let work = tempfile::tempdir()?;
    let mut measured: Vec<Size> = Vec::new();
    for &objects in sizes {
        measured.push(Size {
            objects,
            samples: Vec::new(),
        });
    }
    let files = sizes
        .iter()
        .map(|&objects| manifests(work.path(), objects))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for run in 0..args.runs {
        for i in scale_figures::order(sizes.len(), run) {
            let size = &mut measured[i];
            let sample = one_size(cp, &client, size.objects, &files[i], work.path()).await?;
            say(run, size.objects, &sample);
            size.samples.push(sample);
        }
    }
    Ok(outcome(scale_figures::report(&measured)))
}

/// The manifests of `objects` relationships, in a folder of their own.
fn manifests(work: &Path, objects: usize) -> anyhow::Result<Vec<PathBuf>> {
    let dir = work.join(format!("scale-{objects}"));
    std::fs::create_dir_all(&dir)?;
    write_manifests(&dir, objects, APPLIERS)
}

/// The report as the harness collects it; the incidents join the run's "Incidents".
fn outcome(report: scale_figures::Report) -> Outcome {
    let mut out = Outcome {
        figures: report.figures,
        unavailable: report.unavailable,
        ..Outcome::default()
    };
    out.details.insert(
        scale_figures::BENCHMARK.into(),
        serde_json::Value::Object(report.details),
    );
    if !report.incidents.is_empty() {
        out.details.insert(
            "Incidents".into(),
            serde_json::Value::Object(report.incidents),
        );
    }
    out
}

/// One line on the console per run and size.
fn say(run: usize, objects: usize, sample: &Sample) {
    match sample {
        Sample::Done(f) => println!(
            "bench: scale run {} ({objects} relationships): {:.1} s, {:.1} objects/s, {:.1} CPU s ({:.2} CPU ms per relationship), peak RSS {:.1} MiB",
            run + 1,
            f.seconds,
            objects as f64 / f.seconds,
            f.cpu_seconds,
            f.cpu_seconds * 1000.0 / objects as f64,
            f.peak_rss_mib
        ),
        Sample::TimedOut { ready, seconds } => println!(
            "bench: scale run {} ({objects} relationships): only {ready} Ready when the wait ran out after {seconds:.0} s; not counted",
            run + 1
        ),
    }
}

/// One size, from a fresh sandbox, namespace and operator to the clean-up.
async fn one_size(
    cp: &support::controlplane::ControlPlane,
    client: &kube::Client,
    objects: usize,
    files: &[PathBuf],
    work: &Path,
) -> anyhow::Result<Sample> {
    let sandbox = procs::sandbox(&run_sandbox_args(), work)?;
    let namespace = namespace_with_credentials(cp, client, "bench-scale").await?;
    let log = work.join(format!("{namespace}.log"));
    let operator = procs::operator(&cp.kubeconfig, &namespace, &sandbox, &NO_RESYNC, &log)?;
    let measured = match operator.wait_ready(OPERATOR_READY).await {
        Ok(()) => {
            let sides = Sides {
                operator: &operator,
                sandbox: &sandbox.base_url,
            };
            measure(cp, client, sides, &namespace, files, objects).await
        }
        Err(e) => Err(e),
    };
    operator.proc.stop();
    sandbox.proc.stop();
    clean_up(client, &namespace).await;
    measured
}

/// The operator measured, and the sandbox it calls.
#[derive(Clone, Copy)]
struct Sides<'a> {
    operator: &'a procs::OperatorProc,
    sandbox: &'a str,
}

/// The operator's GdapRelationship reconciles so far (every result).
const RECONCILES: &str = "gdap_reconciles_total{kind=\"GdapRelationship\"";

/// Applies the relationships and waits for all Ready, at most `scale_figures::wait_for`.
async fn measure(
    cp: &support::controlplane::ControlPlane,
    client: &kube::Client,
    sides: Sides<'_>,
    namespace: &str,
    files: &[PathBuf],
    objects: usize,
) -> anyhow::Result<Sample> {
    let wait = scale_figures::wait_for(objects);
    let ready = tokio::spawn(wait_all_ready(
        client.clone(),
        namespace.to_string(),
        objects,
    ));
    let abort = ready.abort_handle();
    let operator = sides.operator;
    let calls_before = procs::sandbox_calls(sides.sandbox).await?;
    let reconciles_before = operator.metric_sum(RECONCILES).await;
    let cpu_before = operator.proc.cpu_seconds();
    let started = Instant::now();
    let finished = tokio::time::timeout(wait, async {
        apply(cp, namespace, files).await?;
        ready.await?
    })
    .await;
    let seconds = started.elapsed().as_secs_f64();
    abort.abort();
    match finished {
        Ok(Ok(_stuck)) => {}
        Ok(Err(e)) => anyhow::bail!(
            "{objects} relationships: {e:#} (log: {})",
            operator.proc.log.display()
        ),
        Err(_) => {
            let ready = count_ready(client, namespace).await?;
            return Ok(Sample::TimedOut { ready, seconds });
        }
    }
    let cpu_seconds = operator.proc.cpu_seconds() - cpu_before;
    let (_, peak_kib) = operator.proc.rss_kib();
    let calls = procs::sandbox_calls(sides.sandbox).await? - calls_before;
    let reconciles = operator.metric_sum(RECONCILES).await - reconciles_before;
    Ok(Sample::Done(Finished {
        seconds,
        cpu_seconds,
        peak_rss_mib: peak_kib as f64 / 1024.0,
        calls_per_object: calls / objects as f64,
        reconciles_per_object: reconciles / objects as f64,
    }))
}

/// How many relationships of `namespace` are Ready now.
async fn count_ready(client: &kube::Client, namespace: &str) -> anyhow::Result<usize> {
    let api: Api<GdapRelationship> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&ListParams::default()).await?;
    Ok(list.items.iter().filter(|o| is_ready(o)).count())
}
