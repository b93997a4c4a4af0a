//! Reconcile throughput: 1,000 GdapRelationships from `kubectl apply` to all Ready against the
//! real kube-apiserver (the test control plane) and a release sandbox that approves at once and
//! activates at once (`--auto-approve-after 0 --activation-delay 0`, throttling off: a
//! 1,000-object burst would otherwise spend the sandbox's budget of 2,000 requests per 10 s per
//! app and tenant — Graph's real budget is not this benchmark's subject).
//!
//! The subject is the release operator; the reference, measured in the same runs (alternating
//! which goes first), is the floor program (`floor`): the same Kubernetes writes and sandbox
//! calls per object, with the same concurrency, and nothing else. Each run gets a fresh sandbox
//! process and a fresh namespace; the objects are applied by ten `kubectl apply` processes of
//! 100 objects each at once (one process would spend most of the time in kubectl's own
//! client-side rate limit). The clock runs from the first `kubectl apply` until a watch in this
//! process has seen every object `Ready=True`.
//!
//! Also reported: the subject's peak RSS and CPU seconds, and the API server's own count of
//! requests per object (from its /metrics) for the operator and the floor side by side, so the
//! floor's equivalence can be checked.

use crate::report::{Bound, Bounded, Divide, Figure, median};
use crate::{AllArgs, Outcome, procs, support};
use futures::{StreamExt, TryStreamExt};
use gdap_operator::api::GdapRelationship;
use gdap_operator::sandbox::defaults;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The benchmark's section title.
const BENCHMARK: &str = "Reconcile throughput";
/// Objects per run.
pub const OBJECTS: usize = 1_000;
/// Concurrent `kubectl apply` processes.
pub const APPLIERS: usize = 10;
/// Longest wait for all objects to be Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// The sandbox flags of every run.
pub const SANDBOX_ARGS: [&str; 6] = [
    "--auto-approve-after",
    "0",
    "--activation-delay",
    "0",
    "--throttle-budget",
    "0",
];

/// The sandbox flags of a run: [`SANDBOX_ARGS`], and reads at once (`--immediate`). The floor is
/// the unavoidable work, which makes no extra read to wait out Microsoft's read lag (the sandbox
/// lags by default since 4 Dec; the floor's read right after its create then found nothing and
/// its objects never became Ready). The scale measurement (`scale`) uses the same flags.
pub fn run_sandbox_args() -> Vec<&'static str> {
    let mut args = SANDBOX_ARGS.to_vec();
    args.push("--immediate");
    args
}

/// The most API-server writes one relationship may cost on its way to Ready (issue 27).
const WRITES_TARGET: f64 = 8.0;

/// The verbs of apiserver_request_total that write.
const WRITE_VERBS: [&str; 5] = ["POST", "PUT", "PATCH", "APPLY", "DELETE"];

/// The API server's writes in a run (every kind the benchmark counts: the objects, their status,
/// events and Secrets), per object.
fn writes_per_object(r: &RunResult) -> f64 {
    let writes: f64 = r
        .requests
        .iter()
        .filter(|(key, _)| {
            key.split(' ')
                .next()
                .is_some_and(|verb| WRITE_VERBS.contains(&verb))
        })
        .map(|(_, n)| n)
        .sum();
    writes / OBJECTS as f64
}

/// Who reconciles in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Operator,
    Floor,
}

/// What one run measured.
#[derive(Debug, Default, Clone)]
struct RunResult {
    seconds: f64,
    peak_rss_mib: f64,
    cpu_seconds: f64,
    graph_calls: f64,
    requests: BTreeMap<String, f64>,
}

/// The benchmark.
pub async fn run(args: &AllArgs) -> anyhow::Result<Outcome> {
    let cp = support::controlplane::get();
    let client = cp.client().await;
    let work = tempfile::tempdir()?;
    let files = write_manifests(work.path(), OBJECTS, APPLIERS)?;
    let mut operator = Vec::new();
    let mut floor = Vec::new();
    for run in 0..args.runs {
        let order = if run % 2 == 0 {
            [Subject::Floor, Subject::Operator]
        } else {
            [Subject::Operator, Subject::Floor]
        };
        for subject in order {
            let result = one_run(subject, cp, &client, &files, work.path()).await?;
            println!(
                "bench: reconcile run {} ({subject:?}): {:.1} s, peak RSS {:.1} MiB, {:.1} CPU s",
                run + 1,
                result.seconds,
                result.peak_rss_mib,
                result.cpu_seconds
            );
            match subject {
                Subject::Operator => operator.push(result),
                Subject::Floor => floor.push(result),
            }
        }
    }
    Ok(outcome(&operator, &floor))
}

fn outcome(operator: &[RunResult], floor: &[RunResult]) -> Outcome {
    let pick = |rs: &[RunResult], f: fn(&RunResult) -> f64| rs.iter().map(f).collect::<Vec<_>>();
    let rate = |r: &RunResult| OBJECTS as f64 / r.seconds;
    let floor_what = "the floor (same writes and sandbox calls, same concurrency, nothing else)";
    let n = crate::report::number(OBJECTS as f64);
    let figures = vec![
        Figure::new(
            "reconcile.seconds",
            BENCHMARK,
            &format!("{n} GdapRelationships, kubectl apply to all Ready: wall time"),
            "s",
            pick(operator, |r| r.seconds),
        )
        .against(
            floor_what,
            pick(floor, |r| r.seconds),
            Divide::FigureByReference,
            "operator time ÷ floor time",
        )
        .target("within 2× of the floor", Bounded::Ratio, Bound::AtMost(2.0)),
        Figure::new(
            "reconcile.rate",
            BENCHMARK,
            "relationships to Ready per second",
            "objects/s",
            pick(operator, rate),
        )
        .against(
            floor_what,
            pick(floor, rate),
            Divide::FigureByReference,
            "operator ÷ floor",
        )
        .target(
            "at least 50 relationships/s",
            Bounded::Value,
            Bound::AtLeast(50.0),
        ),
        Figure::new(
            "reconcile.writes",
            BENCHMARK,
            "API-server writes per relationship to Ready (kubectl's create included)",
            "writes",
            pick(operator, writes_per_object),
        )
        .against(
            floor_what,
            pick(floor, writes_per_object),
            Divide::FigureByReference,
            "operator ÷ floor",
        )
        .target("at most 8", Bounded::Value, Bound::AtMost(WRITES_TARGET)),
        Figure::new(
            "reconcile.peakRss",
            BENCHMARK,
            "operator peak RSS during the run",
            "MiB",
            pick(operator, |r| r.peak_rss_mib),
        )
        .against(
            "the floor's peak RSS",
            pick(floor, |r| r.peak_rss_mib),
            Divide::FigureByReference,
            "operator ÷ floor",
        ),
        Figure::new(
            "reconcile.cpu",
            BENCHMARK,
            "operator CPU time during the run",
            "CPU s",
            pick(operator, |r| r.cpu_seconds),
        )
        .against(
            "the floor's CPU time",
            pick(floor, |r| r.cpu_seconds),
            Divide::FigureByReference,
            "operator ÷ floor",
        ),
    ];
    let mut details = serde_json::Map::new();
    let per_object = |rs: &[RunResult], key: &str| {
        median(
            &rs.iter()
                .map(|r| r.requests.get(key).copied().unwrap_or(0.0))
                .collect::<Vec<_>>(),
        ) / OBJECTS as f64
    };
    let mut keys: Vec<&String> = operator
        .iter()
        .chain(floor)
        .flat_map(|r| r.requests.keys())
        .collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        details.insert(
            format!("API server requests per object, {key}: operator / floor"),
            json!(format!(
                "{} / {}",
                crate::report::number(per_object(operator, key)),
                crate::report::number(per_object(floor, key))
            )),
        );
    }
    let graph = |rs: &[RunResult]| median(&pick(rs, |r| r.graph_calls)) / OBJECTS as f64;
    details.insert(
        "Graph calls per object: operator / floor".into(),
        json!(format!(
            "{} / {}",
            crate::report::number(graph(operator)),
            crate::report::number(graph(floor))
        )),
    );
    details.insert(
        "how".into(),
        json!("ten concurrent `kubectl apply` of 100 objects each; a fresh release sandbox (approval and activation at once, reads without lag (--immediate), throttling off) and namespace per run; requests counted by the API server's apiserver_request_total (kubectl's and the benchmark's own watch included, the same in both)"),
    );
    let mut out = Outcome {
        figures,
        ..Outcome::default()
    };
    out.details
        .insert(BENCHMARK.into(), serde_json::Value::Object(details));
    out
}

/// The manifests of `objects` relationships, split into `files` files.
pub fn write_manifests(dir: &Path, objects: usize, files: usize) -> anyhow::Result<Vec<PathBuf>> {
    let per_file = objects.div_ceil(files);
    let mut paths = Vec::new();
    for f in 0..files {
        let docs: Vec<String> = (f * per_file..((f + 1) * per_file).min(objects))
            .map(|i| relationship(&format!("rel-{i:05}"), defaults::CONTOSO_TENANT_ID))
            .collect();
        let path = dir.join(format!("relationships-{f:02}.yaml"));
        std::fs::write(&path, docs.join("---\n"))?;
        paths.push(path);
    }
    Ok(paths)
}

/// One relationship: two everyday roles, one partner group assigned both.
pub fn relationship(name: &str, customer: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {customer}\n  roles: [Directory Readers, Helpdesk Administrator]\n  duration: P730D\n  accessAssignments:\n    - securityGroupId: {}\n      roles: [Directory Readers, Helpdesk Administrator]\n",
        defaults::HELPDESK_GROUP_ID
    )
}

/// A fresh namespace with the partner's credentials Secret.
pub async fn namespace_with_credentials(
    cp: &support::controlplane::ControlPlane,
    client: &kube::Client,
    prefix: &str,
) -> anyhow::Result<String> {
    let namespace = cp.namespace(prefix);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "partner-credentials"},
        "stringData": {
            "partnerTenantId": defaults::PARTNER_TENANT_ID,
            "clientId": defaults::PARTNER_CLIENT_ID,
            "clientSecret": defaults::PARTNER_CLIENT_SECRET,
            "refreshToken": defaults::PARTNER_REFRESH_TOKEN,
        }
    }))?;
    secrets.create(&PostParams::default(), &secret).await?;
    Ok(namespace)
}

/// The process being measured.
enum Running {
    Operator(procs::OperatorProc),
    Floor(procs::Proc, std::sync::mpsc::Receiver<String>),
}

impl Running {
    fn proc(&self) -> &procs::Proc {
        match self {
            Running::Operator(o) => &o.proc,
            Running::Floor(p, _) => p,
        }
    }
}

async fn one_run(
    subject: Subject,
    cp: &support::controlplane::ControlPlane,
    client: &kube::Client,
    files: &[PathBuf],
    work: &Path,
) -> anyhow::Result<RunResult> {
    let sandbox = procs::sandbox(&run_sandbox_args(), work)?;
    let namespace = namespace_with_credentials(cp, client, "bench-reconcile").await?;
    let log = work.join(format!("{namespace}.log"));
    let running = match subject {
        Subject::Operator => {
            let op = procs::operator(&cp.kubeconfig, &namespace, &sandbox, &[], &log)?;
            op.wait_ready(Duration::from_secs(60)).await?;
            Running::Operator(op)
        }
        Subject::Floor => start_floor(&cp.kubeconfig, &namespace, &sandbox.base_url, &log)?,
    };
    let ready = tokio::spawn(wait_all_ready(client.clone(), namespace.clone(), OBJECTS));
    let requests_before = api_requests(cp).await?;
    let cpu_before = running.proc().cpu_seconds();
    let started = Instant::now();
    apply(cp, &namespace, files).await?;
    let outcome = tokio::time::timeout(READY_TIMEOUT, ready).await;
    let seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(Ok(Ok(_stuck))) => {}
        Ok(Ok(Err(e))) => anyhow::bail!("watching for Ready failed: {e}"),
        Ok(Err(e)) => anyhow::bail!("the Ready watch panicked: {e}"),
        Err(_) => anyhow::bail!(
            "{subject:?}: not all {OBJECTS} objects were Ready within {READY_TIMEOUT:?} (log: {})",
            log.display()
        ),
    }
    let cpu_seconds = running.proc().cpu_seconds() - cpu_before;
    let (_, peak) = running.proc().rss_kib();
    let requests = diff(&api_requests(cp).await?, &requests_before);
    let graph_calls = match &running {
        Running::Operator(op) => {
            op.metric_sum("gdap_microsoft_calls_total{service=\"graph\"")
                .await
        }
        Running::Floor(_, lines) => floor_summary(lines)?,
    };
    match running {
        Running::Operator(op) => op.proc.stop(),
        Running::Floor(p, _) => p.stop(),
    }
    sandbox.proc.stop();
    clean_up(client, &namespace).await;
    Ok(RunResult {
        seconds,
        peak_rss_mib: peak as f64 / 1024.0,
        cpu_seconds,
        graph_calls,
        requests,
    })
}

/// Starts the floor (`floor-reconcile` in a process of its own) and waits until it watches.
fn start_floor(
    kubeconfig: &Path,
    namespace: &str,
    sandbox: &str,
    log: &Path,
) -> anyhow::Result<Running> {
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("floor-reconcile")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--namespace", namespace, "--sandbox", sandbox])
        .args(["--objects", &OBJECTS.to_string()])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let proc = procs::Proc::adopt(child, log.to_path_buf());
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) if line == crate::floor::READY_LINE => Ok(Running::Floor(proc, rx)),
        other => anyhow::bail!(
            "the floor did not start ({other:?}); log: {}",
            log.display()
        ),
    }
}

/// The Graph calls the floor reports when it is done.
fn floor_summary(lines: &std::sync::mpsc::Receiver<String>) -> anyhow::Result<f64> {
    let line = lines.recv_timeout(Duration::from_secs(30))?;
    let summary: crate::floor::Summary = serde_json::from_str(&line)?;
    Ok(summary.graph_calls as f64)
}

/// Applies every file with its own `kubectl apply`, all at once.
pub async fn apply(
    cp: &support::controlplane::ControlPlane,
    namespace: &str,
    files: &[PathBuf],
) -> anyhow::Result<()> {
    let runs = files.iter().map(|file| {
        tokio::process::Command::new(&cp.kubectl)
            .arg("--kubeconfig")
            .arg(&cp.kubeconfig)
            .args(["apply", "-n", namespace, "-f"])
            .arg(file)
            .stdout(Stdio::null())
            .output()
    });
    for output in futures::future::join_all(runs).await {
        let output = output?;
        anyhow::ensure!(
            output.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Resolves once each of `objects` relationships of `namespace` is Ready=True or stuck on
/// [`CREDENTIALS_INVALID`] (see [`STUCK`]); returns how many are stuck.
pub async fn wait_all_ready(
    client: kube::Client,
    namespace: String,
    objects: usize,
) -> anyhow::Result<usize> {
    let api: Api<GdapRelationship> = Api::namespaced(client, &namespace);
    let mut settled: BTreeMap<String, bool> = BTreeMap::new();
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
    while let Some(event) = events.try_next().await? {
        let objects_seen = match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => vec![o],
            _ => Vec::new(),
        };
        for o in objects_seen {
            let name = o.metadata.name.clone().unwrap_or_default();
            let conditions = o.status.as_ref().map_or(&[][..], |s| &s.conditions[..]);
            if is_ready(&o) {
                settled.insert(name, true);
            } else if is_stuck(conditions) {
                settled.insert(name, false);
            } else {
                settled.remove(&name);
            }
        }
        if settled.len() >= objects {
            let stuck = settled.values().filter(|ready| !**ready).count();
            record_stuck(stuck, "GdapRelationships", &namespace);
            return Ok(stuck);
        }
    }
    anyhow::bail!("the watch ended")
}

/// The Ready reason of an object whose credentials Microsoft refused.
pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";

/// Objects the operator left on [`CREDENTIALS_INVALID`] during the run. The operator puts them
/// there itself under load: concurrent reconciles exchange the partner's refresh token more than
/// once, and the sandbox (like Entra once a rotated token's successor is used) refuses the retired
/// one; the failure counts as permanent, so the object waits for `--resync-interval`. A benchmark
/// counts such an object as settled, not Ready, and the report lists them as incidents.
pub static STUCK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether these conditions say Ready=False for [`CREDENTIALS_INVALID`].
pub fn is_stuck(conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == CREDENTIALS_INVALID)
}

/// Adds `stuck` objects to [`STUCK`] and says so.
pub fn record_stuck(stuck: usize, kind: &str, namespace: &str) {
    if stuck > 0 {
        STUCK.fetch_add(stuck, std::sync::atomic::Ordering::SeqCst);
        println!(
            "bench: {stuck} {kind} in {namespace} stuck on {CREDENTIALS_INVALID} (the operator's refresh-token race); counted as settled"
        );
    }
}

pub fn is_ready(o: &GdapRelationship) -> bool {
    o.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// The API server's request counts for the kinds the benchmark touches, by "VERB resource".
async fn api_requests(
    cp: &support::controlplane::ControlPlane,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let output = tokio::process::Command::new(&cp.kubectl)
        .arg("--kubeconfig")
        .arg(&cp.kubeconfig)
        .args(["get", "--raw", "/metrics"])
        .output()
        .await?;
    anyhow::ensure!(output.status.success(), "kubectl get --raw /metrics failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut counts = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let label = |name: &str| {
            let key = format!("{name}=\"");
            line.split(&key)
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("")
        };
        let resource = label("resource");
        if !matches!(resource, "gdaprelationships" | "events" | "secrets") {
            continue;
        }
        let subresource = label("subresource");
        let key = if subresource.is_empty() {
            format!("{} {resource}", label("verb"))
        } else {
            format!("{} {resource}/{subresource}", label("verb"))
        };
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *counts.entry(key).or_insert(0.0) += value;
    }
    Ok(counts)
}

fn diff(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// Removes the namespace: finalizers are dropped first (nothing reconciles any more), then it
/// is deleted and waited for (up to two minutes), so the next run starts on a quiet server.
pub async fn clean_up(client: &kube::Client, namespace: &str) {
    let relationships: Api<GdapRelationship> = Api::namespaced(client.clone(), namespace);
    let consents: Api<gdap_operator::api::AppConsent> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let unfinalize = json!({"metadata": {"finalizers": null}});
    let names = |list: Vec<String>| list;
    let rel_names = names(
        match relationships.list_metadata(&ListParams::default()).await {
            Ok(l) => l
                .items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .collect(),
            Err(_) => Vec::new(),
        },
    );
    let consent_names = names(match consents.list_metadata(&ListParams::default()).await {
        Ok(l) => l
            .items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect(),
        Err(_) => Vec::new(),
    });
    let patch = Patch::Merge(&unfinalize);
    let params = PatchParams::default();
    futures::stream::iter(rel_names.iter())
        .for_each_concurrent(32, |n| {
            let (api, patch, params) = (&relationships, &patch, &params);
            async move {
                let _ = api.patch(n, params, patch).await;
            }
        })
        .await;
    futures::stream::iter(consent_names.iter())
        .for_each_concurrent(32, |n| {
            let (api, patch, params) = (&consents, &patch, &params);
            async move {
                let _ = api.patch(n, params, patch).await;
            }
        })
        .await;
    let _ = secrets.patch("partner-credentials", &params, &patch).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(namespace, &DeleteParams::default()).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        match namespaces.get_opt(namespace).await {
            Ok(None) => return,
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    println!("bench: namespace {namespace} still terminating after 2 minutes; going on");
}
