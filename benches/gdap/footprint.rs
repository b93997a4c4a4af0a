//! Footprint: the release operator's memory and idle CPU with many objects watched, measured from
//! outside (/proc of the operator process).
//!
//! - Growth: one namespace grows to 100, 1,000 and 5,000 GdapRelationships, all brought to Ready
//!   by an operator; at each size the operator is restarted (once per run) over the steady
//!   objects, and once every object has been reconciled and a quiet minute-fraction has passed,
//!   its RSS is read. Bytes per extra object = (RSS at 5,000 − RSS at 100) ÷ 4,900, per run;
//!   the reference is one object's size as the API server serves it (JSON, no managedFields).
//! - Each kind: 1,000 GdapRelationships, 1,000 AppConsents and 1,000 TenantSyncs (one customer
//!   each, from a fixture of 1,000 small customers) brought to Ready; the TenantSyncs' imports are
//!   the `schedules` benchmark, run by the same operator. Then the RSS of the operator that did
//!   the work, after a quiet period, and of restarted operators over the steady objects, and
//!   their idle CPU. The reference is the same operator with nothing to watch.

use crate::procs::{self, OperatorProc, SandboxProc};
use crate::reconcile::{
    OBJECTS, SANDBOX_ARGS, clean_up, namespace_with_credentials, relationship, wait_all_ready,
};
use crate::report::{Bound, Bounded, Divide, Figure, median};
use crate::{AllArgs, Outcome, schedules, support};
use gdap_operator::api::{AppConsent, GdapRelationship};
use gdap_operator::sandbox::{CustomerFixture, Fixture, UsersFixture, defaults};
use kube::api::{Api, ListParams};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// The benchmark's section title.
const BENCHMARK: &str = "Footprint";
/// How long the operator must be quiet (no reconcile finished) before its RSS counts as steady.
const QUIET: Duration = Duration::from_secs(10);
/// The window idle CPU is measured over.
const IDLE_WINDOW: Duration = Duration::from_secs(20);
/// Longest wait for the objects a measurement needs to become Ready: 1,000 AppConsents take long
/// on a loaded machine (each consent is several steps, and the partner's refresh token rotates
/// with every customer's delegated token).
const SETUP_TIMEOUT: Duration = Duration::from_secs(45 * 60);
/// Target RSS with 1,000 objects of each kind.
const RSS_TARGET_MIB: f64 = 64.0;
/// Target growth per extra object.
const PER_OBJECT_TARGET_KIB: f64 = 8.0;

/// The kinds as the reconcile metric names them.
const RELATIONSHIP: &str = "GdapRelationship";
const CONSENT: &str = "AppConsent";
const SYNC: &str = "TenantSync";

/// The benchmark.
/// A part that breaks is reported as not measured (with its error); the other part's figures stay.
pub async fn run(args: &AllArgs) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    if let Err(e) = growth(args, &mut out).await {
        println!("bench: footprint growth FAILED: {e:#}");
        out.unavailable.push(crate::report::Unavailable {
            id: "footprint.growth".into(),
            what: "Footprint: RSS growth from 100 to 5,000 GdapRelationships".into(),
            reason: format!("failed: {e:#}"),
        });
    }
    if let Err(e) = each_kind(args, &mut out).await {
        println!("bench: footprint with each kind FAILED: {e:#}");
        out.unavailable.push(crate::report::Unavailable {
            id: "footprint.kinds".into(),
            what: "Footprint with 1,000 objects of each kind, and schedules at scale".into(),
            reason: format!("failed: {e:#}"),
        });
    }
    Ok(out)
}

/// A steady operator's memory and CPU.
#[derive(Debug, Clone, Copy)]
struct Steady {
    rss_mib: f64,
    peak_mib: f64,
    idle_cpu_percent: f64,
}

async fn growth(args: &AllArgs, out: &mut Outcome) -> anyhow::Result<()> {
    let cp = support::controlplane::get();
    let client = cp.client().await;
    let work = tempfile::tempdir()?;
    let sandbox = procs::sandbox(&SANDBOX_ARGS, work.path())?;
    let namespace = namespace_with_credentials(cp, &client, "bench-footprint").await?;
    let log = work.path().join("operator.log");
    let mut empty = Vec::new();
    for _ in 0..args.runs {
        let op = start(cp, &namespace, &sandbox, &[], &log).await?;
        empty.push(steady(&op, &[], false).await?.rss_mib);
        op.proc.stop();
    }
    let mut by_size: Vec<(usize, Vec<Steady>)> = Vec::new();
    let mut have = 0;
    let sizes = &args.growth_sizes;
    anyhow::ensure!(
        sizes.len() >= 2 && sizes.windows(2).all(|w| w[0] < w[1]),
        "--growth-sizes needs at least two sizes, increasing"
    );
    for &size in sizes {
        let worker = start(cp, &namespace, &sandbox, &[], &log).await?;
        let files = manifests(work.path(), have, size, |i| {
            relationship(&format!("rel-{i:05}"), defaults::CONTOSO_TENANT_ID)
        })?;
        apply(cp, &namespace, &files).await?;
        ready_within(&client, &namespace, size).await?;
        worker.proc.stop();
        have = size;
        let mut samples = Vec::new();
        for _ in 0..args.runs {
            let op = start(cp, &namespace, &sandbox, &[], &log).await?;
            samples.push(steady(&op, &[(RELATIONSHIP, size)], false).await?);
            op.proc.stop();
        }
        println!(
            "bench: footprint with {size} GdapRelationships: RSS {:.1} MiB (runs: {:?})",
            median(&samples.iter().map(|s| s.rss_mib).collect::<Vec<_>>()),
            samples
                .iter()
                .map(|s| (s.rss_mib * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
        by_size.push((size, samples));
    }
    let object_kib = object_size_kib(&client, &namespace).await?;
    sandbox.proc.stop();
    clean_up(&client, &namespace).await;
    let rss = |size: usize| -> Vec<f64> {
        by_size
            .iter()
            .find(|(s, _)| *s == size)
            .map(|(_, v)| v.iter().map(|s| s.rss_mib).collect())
            .unwrap_or_default()
    };
    let (small, large) = (sizes[0], sizes[sizes.len() - 1]);
    let per_object: Vec<f64> = rss(large)
        .iter()
        .zip(rss(small))
        .map(|(l, s)| (l - s) * 1024.0 / (large - small) as f64)
        .collect();
    let references = vec![object_kib; per_object.len()];
    out.figures.push(
        Figure::new(
            "footprint.perObject",
            BENCHMARK,
            &format!("RSS per extra GdapRelationship, {small} → {large} objects (steady, after a restart)"),
            "KiB",
            per_object,
        )
        .against("one object as the API server serves it (JSON, no managedFields)", references, Divide::FigureByReference, "RSS per object ÷ object size")
        .target("under 8 KiB per extra object", Bounded::Value, Bound::AtMost(PER_OBJECT_TARGET_KIB)),
    );
    for (size, samples) in &by_size {
        let rss: Vec<f64> = samples.iter().map(|s| s.rss_mib).collect();
        out.figures.push(
            Figure::new(
                &format!("footprint.rss.{size}"),
                BENCHMARK,
                &format!(
                    "operator RSS with {} GdapRelationships (steady, after a restart)",
                    crate::report::number(*size as f64)
                ),
                "MiB",
                rss,
            )
            .against(
                "the operator with nothing to watch",
                empty.clone(),
                Divide::FigureByReference,
                "÷ empty",
            ),
        );
    }
    let mut detail = serde_json::Map::new();
    for (size, samples) in &by_size {
        let peaks: Vec<f64> = samples.iter().map(|s| s.peak_mib).collect();
        detail.insert(
            format!("peak RSS while reconciling {size} objects after a restart (MiB)"),
            json!(median(&peaks)),
        );
    }
    out.details.insert(
        "Footprint, growth".into(),
        serde_json::Value::Object(detail),
    );
    Ok(())
}

async fn each_kind(args: &AllArgs, out: &mut Outcome) -> anyhow::Result<()> {
    let cp = support::controlplane::get();
    let client = cp.client().await;
    let work = tempfile::tempdir()?;
    let fixture = work.path().join("customers.yaml");
    std::fs::write(
        &fixture,
        serde_yaml::to_string(&customers_fixture(OBJECTS))?,
    )?;
    let mut sandbox_args: Vec<&str> = SANDBOX_ARGS.to_vec();
    sandbox_args.extend(["--fixture", fixture.to_str().expect("UTF-8")]);
    let sandbox = procs::sandbox(&sandbox_args, work.path())?;
    let namespace = namespace_with_credentials(cp, &client, "bench-kinds").await?;
    let log = work.path().join("operator.log");
    let flags = ["--consent-settle-time", "0s"];
    let mut empty = Vec::new();
    for _ in 0..args.runs {
        let op = start(cp, &namespace, &sandbox, &flags, &log).await?;
        empty.push(steady(&op, &[], true).await?);
        op.proc.stop();
    }
    // The worker only sets the scene (and runs the schedules); it looks again every 5 s instead
    // of 30 s so that 1,000 consents waiting for their relationships do not take many minutes.
    let worker_flags = [flags[0], flags[1], "--poll-interval", "5s"];
    let worker = start(cp, &namespace, &sandbox, &worker_flags, &log).await?;
    let files = manifests(work.path(), 0, OBJECTS, |i| {
        format!("{}---\n{}", consent_relationship(i), consent(i))
    })?;
    let started = Instant::now();
    apply(cp, &namespace, &files).await?;
    ready_within(&client, &namespace, OBJECTS).await?;
    let consented = wait_consents_ready(&client, &namespace, OBJECTS).await?;
    println!(
        "bench: footprint: {OBJECTS} GdapRelationships and AppConsents settled in {:.0} s; {} AppConsents Ready",
        started.elapsed().as_secs_f64(),
        consented.len()
    );
    let kinds = format!(
        "{n} GdapRelationships, {n} AppConsents and {} TenantSyncs",
        crate::report::number(consented.len() as f64),
        n = crate::report::number(OBJECTS as f64)
    );
    let sinks = work.path().join("sinks");
    let sync_files = manifests(work.path(), 0, consented.len(), |k| {
        let i = consented[k];
        schedules::tenant_sync(i, &customer_id(i), &sinks)
    })?;
    let create = apply(cp, &namespace, &sync_files);
    schedules::run(
        &worker, &client, &namespace, &consented, args.runs, create, out,
    )
    .await?;
    let worked = steady(&worker, &[], true).await?;
    worker.proc.stop();
    let mut restarted = Vec::new();
    for _ in 0..args.runs {
        let op = start(cp, &namespace, &sandbox, &flags, &log).await?;
        restarted.push(
            steady(
                &op,
                &[
                    (RELATIONSHIP, OBJECTS),
                    (CONSENT, OBJECTS),
                    (SYNC, consented.len()),
                ],
                true,
            )
            .await?,
        );
        op.proc.stop();
    }
    sandbox.proc.stop();
    clean_up(&client, &namespace).await;
    let empty_rss: Vec<f64> = empty.iter().map(|s| s.rss_mib).collect();
    let rss: Vec<f64> = restarted.iter().map(|s| s.rss_mib).collect();
    out.figures.push(
        Figure::new(
            "footprint.rss.kinds",
            BENCHMARK,
            &format!("operator RSS with {kinds} (steady, after a restart)"),
            "MiB",
            rss,
        )
        .against(
            "the operator with nothing to watch",
            empty_rss.clone(),
            Divide::FigureByReference,
            "÷ empty",
        )
        .target(
            "under 64 MiB",
            Bounded::Value,
            Bound::AtMost(RSS_TARGET_MIB),
        ),
    );
    out.figures.push(
        Figure::new(
            "footprint.rss.kindsAfterWork",
            BENCHMARK,
            &format!("RSS of the operator that brought {kinds} to Ready, once quiet"),
            "MiB",
            vec![worked.rss_mib],
        )
        .against(
            "the operator with nothing to watch",
            vec![median(&empty_rss)],
            Divide::FigureByReference,
            "÷ empty",
        )
        .target(
            "under 64 MiB",
            Bounded::Value,
            Bound::AtMost(RSS_TARGET_MIB),
        ),
    );
    out.figures.push(
        Figure::new(
            "footprint.idleCpu",
            BENCHMARK,
            &format!("idle CPU with {kinds} (steady)"),
            "% of a core",
            restarted.iter().map(|s| s.idle_cpu_percent).collect(),
        )
        .against(
            "the operator with nothing to watch",
            empty.iter().map(|s| s.idle_cpu_percent).collect(),
            Divide::FigureByReference,
            "÷ empty",
        ),
    );
    let mut detail = serde_json::Map::new();
    detail.insert(
        "peak RSS of the operator that brought them to Ready (MiB)".into(),
        json!(worked.peak_mib),
    );
    detail.insert(
        "peak RSS of a restarted operator over them (MiB, median)".into(),
        json!(median(
            &restarted.iter().map(|s| s.peak_mib).collect::<Vec<_>>()
        )),
    );
    out.details.insert(
        "Footprint, each kind".into(),
        serde_json::Value::Object(detail),
    );
    Ok(())
}

/// [`wait_all_ready`], for at most [`SETUP_TIMEOUT`].
async fn ready_within(
    client: &kube::Client,
    namespace: &str,
    objects: usize,
) -> anyhow::Result<usize> {
    let wait = wait_all_ready(client.clone(), namespace.to_string(), objects);
    tokio::time::timeout(SETUP_TIMEOUT, wait)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "not all {objects} GdapRelationships were Ready within {SETUP_TIMEOUT:?}"
            )
        })?
}

async fn start(
    cp: &support::controlplane::ControlPlane,
    namespace: &str,
    sandbox: &SandboxProc,
    flags: &[&str],
    log: &Path,
) -> anyhow::Result<OperatorProc> {
    let op = procs::operator(&cp.kubeconfig, namespace, sandbox, flags, log)?;
    op.wait_ready(Duration::from_secs(120)).await?;
    Ok(op)
}

/// Waits until the operator has reconciled, of each `(kind, objects)`, that many objects at least
/// once and then finished no reconcile for [`QUIET`]; then reads its memory, and its CPU over
/// [`IDLE_WINDOW`] when `idle_cpu` is set.
async fn steady(
    op: &OperatorProc,
    kinds: &[(&str, usize)],
    idle_cpu: bool,
) -> anyhow::Result<Steady> {
    let deadline = Instant::now() + Duration::from_secs(900);
    for &(kind, objects) in kinds {
        let series = format!("gdap_reconciles_total{{kind=\"{kind}\"");
        while op.metric_sum(&series).await < objects as f64 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the operator did not reconcile {objects} {kind}s in 15 minutes"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let mut last = op.metric_sum("gdap_reconciles_total").await;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < QUIET {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = op.metric_sum("gdap_reconciles_total").await;
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
        anyhow::ensure!(Instant::now() < deadline, "the operator never became quiet");
    }
    let idle_cpu_percent = if idle_cpu {
        let before = op.proc.cpu_seconds();
        tokio::time::sleep(IDLE_WINDOW).await;
        (op.proc.cpu_seconds() - before) / IDLE_WINDOW.as_secs_f64() * 100.0
    } else {
        f64::NAN
    };
    let (rss, peak) = op.proc.rss_kib();
    Ok(Steady {
        rss_mib: rss as f64 / 1024.0,
        peak_mib: peak as f64 / 1024.0,
        idle_cpu_percent,
    })
}

/// Manifests of objects `from..to`, in ten files for ten `kubectl apply` at once.
fn manifests(
    dir: &Path,
    from: usize,
    to: usize,
    object: impl Fn(usize) -> String,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let files = 10;
    let per_file = (to - from).div_ceil(files);
    let mut paths = Vec::new();
    for f in 0..files {
        let range = (from + f * per_file)..(from + (f + 1) * per_file).min(to);
        if range.is_empty() {
            continue;
        }
        let docs: Vec<String> = range.map(&object).collect();
        let path = dir.join(format!("objects-{from}-{f:02}.yaml"));
        std::fs::write(&path, docs.join("---\n"))?;
        paths.push(path);
    }
    Ok(paths)
}

async fn apply(
    cp: &support::controlplane::ControlPlane,
    namespace: &str,
    files: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    let runs = files.iter().map(|file| {
        tokio::process::Command::new(&cp.kubectl)
            .arg("--kubeconfig")
            .arg(&cp.kubeconfig)
            .args(["apply", "-n", namespace, "-f"])
            .arg(file)
            .stdout(std::process::Stdio::null())
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

/// One object's size as the API server serves it, without managedFields, in KiB.
async fn object_size_kib(client: &kube::Client, namespace: &str) -> anyhow::Result<f64> {
    let api: Api<GdapRelationship> = Api::namespaced(client.clone(), namespace);
    let mut list = api.list(&ListParams::default().limit(50)).await?;
    let sizes: Vec<f64> = list
        .items
        .iter_mut()
        .map(|o| {
            o.metadata.managed_fields = None;
            serde_json::to_vec(o).map_or(0.0, |v| v.len() as f64 / 1024.0)
        })
        .collect();
    Ok(median(&sizes))
}

/// The built-in fixture plus `n` small customers like Fabrikam (Microsoft Graph's service
/// principals, the partner app not consented yet), each with generated users.
fn customers_fixture(n: usize) -> Fixture {
    let mut fixture = Fixture::builtin();
    let fabrikam: CustomerFixture = fixture
        .customers
        .iter()
        .find(|c| c.tenant_id == defaults::FABRIKAM_TENANT_ID)
        .expect("Fabrikam is built in")
        .clone();
    for i in 0..n {
        let mut c = fabrikam.clone();
        c.tenant_id = customer_id(i);
        c.display_name = format!("Customer {i}");
        c.primary_domain = format!("customer{i}.example");
        c.users = UsersFixture::Generated {
            generate: schedules::SMALL_TENANT_USERS,
            seed: i as u64,
        };
        fixture.customers.push(c);
    }
    fixture
}

fn customer_id(i: usize) -> String {
    format!("be4c0000-0000-4000-8000-{i:012x}")
}

/// A relationship with customer `i` that lets the partner's admin consent applications.
fn consent_relationship(i: usize) -> String {
    let roles = "Application Administrator, Privileged Role Administrator";
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: rel-{i:05}\nspec:\n  customer:\n    tenantId: {}\n  roles: [{roles}]\n  duration: P730D\n  accessAssignments:\n    - securityGroupId: {}\n      roles: [{roles}]\n",
        customer_id(i),
        defaults::APP_ADMINS_GROUP_ID
    )
}

/// The partner app's consent into customer `i`, relying on its relationship.
fn consent(i: usize) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: AppConsent\nmetadata:\n  name: consent-{i:05}\nspec:\n  customer:\n    tenantId: {}\n  applicationId: {}\n  displayName: Partner reporting\n  relationshipRef:\n    name: rel-{i:05}\n  grants:\n    - resource: Microsoft Graph\n      scopes: [User.Read]\n      appRoles: [User.Read.All, LicenseAssignment.Read.All, Organization.Read.All]\n",
        customer_id(i),
        defaults::PARTNER_CLIENT_ID
    )
}

/// Waits until each of the `objects` AppConsents is Ready or stuck on `CredentialsInvalid`;
/// returns the indices of the Ready ones.
async fn wait_consents_ready(
    client: &kube::Client,
    namespace: &str,
    objects: usize,
) -> anyhow::Result<Vec<usize>> {
    let api: Api<AppConsent> = Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        let list = api.list(&ListParams::default()).await?;
        let conditions = |o: &AppConsent| {
            o.status
                .as_ref()
                .map_or(Vec::new(), |s| s.conditions.clone())
        };
        let ready: Vec<usize> = list
            .items
            .iter()
            .filter(|o| {
                conditions(o)
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
            .filter_map(|o| {
                o.metadata
                    .name
                    .as_deref()?
                    .strip_prefix("consent-")?
                    .parse()
                    .ok()
            })
            .collect();
        let stuck = list
            .items
            .iter()
            .filter(|o| crate::reconcile::is_stuck(&conditions(o)))
            .count();
        if ready.len() + stuck >= objects {
            crate::reconcile::record_stuck(stuck, "AppConsents", namespace);
            let mut ready = ready;
            ready.sort_unstable();
            return Ok(ready);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {objects} AppConsents were Ready after {SETUP_TIMEOUT:?} ({stuck} stuck)",
            ready.len()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
