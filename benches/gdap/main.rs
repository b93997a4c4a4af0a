//! `make bench` (`cargo bench --bench gdap`): the operator's speed and memory against what they
//! are compared with — a floor that does only the unavoidable work, and what users would run
//! instead — measured on release builds, several runs each, in the same run.
//!
//! Benchmarks (each a module):
//! - `reconcile`: 1,000 GdapRelationships from `kubectl apply` to all Ready against the real
//!   kube-apiserver, versus the floor program in `floor` (same Kubernetes writes and sandbox calls
//!   per object, same concurrency, nothing else).
//! - `scale`: the operator alone at 1,000, 3,000 and 10,000 GdapRelationships (`GDAP_BENCH_SCALE`):
//!   CPU per relationship and throughput at each size, and the growth of the CPU per relationship
//!   from the first size to the others. `--only reconcile` runs it too.
//! - `import`: 100,000- and 10,000-user tenants into the file sink and PostgreSQL, versus fetching
//!   the same pages without parsing or writing, and versus Microsoft's Graph SDK for Python.
//! - `footprint`: the operator's memory and idle CPU with many objects watched; with 1,000
//!   objects of each kind it runs `schedules` (1,000 TenantSyncs due at once: total time, highest
//!   concurrency) on the same objects.
//! - `onboard`: `export` of the 1,500-relationship scale fixture and `plan` of its manifests,
//!   versus the Graph reads they need.
//! - `fleet`: a GdapFleet of 1,000 customers versus the same relationships applied by hand.
//! - `webhooks`: a customer's approval to Ready with Partner Center webhooks versus polling alone.
//!
//! Output: `bench/results.json` and `docs/benchmarks.md` (layout in `report`; the explanations
//! of missed targets come from `bench/notes.md`, the "before" figures from `bench/baseline.json`),
//! and a summary on the console naming every missed target. A missed target never fails the run; a benchmark that
//! breaks is reported as not measured, with its error, and makes the exit status 1.
//!
//! `all` runs everything; the other subcommands are the single samples `all` runs in processes of
//! their own (so each one's peak memory is its own).

#[path = "../../tests/support/mod.rs"]
mod support;

mod fleet;
mod floor;
mod footprint;
mod import;
mod machine;
mod onboard;
mod procs;
mod reconcile;
mod report;
mod scale;
mod scale_figures;
mod schedules;
mod webhooks;

use clap::{Parser, Subcommand};
use report::{Figure, Results, Unavailable};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(about = "gdap-operator benchmarks (make bench)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Ignored: cargo passes it to every bench binary.
    #[arg(long, hide = true, global = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the benchmarks and write bench/results.json and docs/benchmarks.md.
    All(AllArgs),
    /// One floor run of the reconcile benchmark (a process of its own).
    FloorReconcile(floor::FloorArgs),
    /// One import sample (a process of its own).
    ImportSample(import::SampleArgs),
    /// Render docs/benchmarks.md again from bench/results.json, with the current bench/notes.md
    /// and bench/baseline.json (after editing an explanation; measures nothing).
    Report(ReportArgs),
    /// Replace the benchmarks another results file measured (e.g. `all --only import --out-dir
    /// DIR` after a fix) in bench/results.json, then render docs/benchmarks.md again.
    Merge(MergeArgs),
}

/// Options of `merge`.
#[derive(clap::Args)]
struct MergeArgs {
    /// The other results.json.
    from: PathBuf,
}

/// Options of `report`.
#[derive(clap::Args)]
struct ReportArgs {
    /// The "before" figures (default bench/baseline.json, when present).
    #[arg(long, env = "GDAP_BENCH_BASELINE")]
    baseline: Option<PathBuf>,
}

/// Options of `all`.
#[derive(clap::Args, Clone)]
pub struct AllArgs {
    /// Runs of each measurement (medians are reported).
    #[arg(long, env = "GDAP_BENCH_RUNS", default_value_t = 3)]
    runs: usize,
    /// Only these benchmarks (comma-separated: reconcile, scale, import, footprint, onboard,
    /// fleet, webhooks). `reconcile` includes `scale` (the larger machine's `device-bench` runs
    /// `--only reconcile`, and the throughput at 10,000 is measured there).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where bench/results.json and docs/benchmarks.md go (default: the repository).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// The Python with Microsoft's Graph SDK (tests/conformance/venv prints it).
    #[arg(long, env = "GDAP_BENCH_PYTHON")]
    python: Option<PathBuf>,
    /// Runs of the Graph SDK reference on the 100,000-user tenant (minutes each).
    #[arg(long, env = "GDAP_BENCH_SDK_RUNS")]
    sdk_runs: Option<usize>,
    /// The sizes of the footprint's growth measurement (the first and the last give the bytes per
    /// object).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,5000")]
    growth_sizes: Vec<usize>,
    /// The sizes of the scale measurement (`scale`), increasing: the operator alone brings this
    /// many GdapRelationships to Ready, each size on a fresh namespace and sandbox; the first is
    /// what the others' CPU per relationship is compared with, and the last carries the target.
    #[arg(
        long,
        env = "GDAP_BENCH_SCALE",
        value_delimiter = ',',
        default_value = "1000,3000,10000"
    )]
    scale_sizes: Vec<usize>,
    /// The "before" figures the report compares with (default bench/baseline.json, when present).
    #[arg(long, env = "GDAP_BENCH_BASELINE")]
    baseline: Option<PathBuf>,
    /// Also write this run's footprint figures to bench/baseline.json, as the new "before".
    #[arg(long, env = "GDAP_BENCH_WRITE_BASELINE", value_parser = clap::builder::BoolishValueParser::new())]
    write_baseline: bool,
}

/// What every benchmark returns.
#[derive(Default)]
pub struct Outcome {
    /// Figures, in report order.
    pub figures: Vec<Figure>,
    /// Supporting numbers.
    pub details: BTreeMap<String, serde_json::Value>,
    /// Parts that did not run.
    pub unavailable: Vec<Unavailable>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::All(args) => runtime.block_on(all(args)),
        Command::FloorReconcile(args) => runtime.block_on(floor::run(args)),
        Command::ImportSample(args) => runtime.block_on(import::sample(args)),
        Command::Report(args) => report_again(args.baseline),
        Command::Merge(args) => merge(&args.from),
    }
}

type Bench =
    fn(
        &AllArgs,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Outcome>> + '_>>;

async fn all(args: AllArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    // The commit measured is the one checked out when the run began.
    let commit = commit();
    let mut machine = machine::describe();
    let benches: [(&str, &str, Bench); 7] = [
        ("reconcile", "Reconcile throughput", |a| {
            Box::pin(reconcile::run(a))
        }),
        ("scale", scale_figures::BENCHMARK, |a| {
            Box::pin(scale::run(a))
        }),
        ("import", "Tenant import", |a| Box::pin(import::run(a))),
        ("onboard", "Export and plan", |a| Box::pin(onboard::run(a))),
        ("footprint", "Footprint and schedules at scale", |a| {
            Box::pin(footprint::run(a))
        }),
        ("fleet", "A fleet of 1,000 customers", |a| {
            Box::pin(fleet::run(a))
        }),
        ("webhooks", "Approval to Ready: webhooks and polling", |a| {
            Box::pin(webhooks::run(a))
        }),
    ];
    let mut total = Outcome::default();
    let mut broken = false;
    for (id, what, bench) in benches {
        if !selected(&args.only, id) {
            continue;
        }
        println!("== {what}");
        match bench(&args).await {
            Ok(outcome) => {
                for f in &outcome.figures {
                    println!("bench: {}", report::summary_line(f));
                }
                for u in &outcome.unavailable {
                    println!("bench: {}: {}", u.what, u.reason);
                }
                total.figures.extend(outcome.figures);
                add_details(&mut total.details, outcome.details);
                total.unavailable.extend(outcome.unavailable);
            }
            Err(e) => {
                broken = true;
                println!("bench: {what} FAILED: {e:#}");
                total.unavailable.push(Unavailable {
                    id: id.into(),
                    what: what.into(),
                    reason: format!("failed: {e:#}"),
                });
            }
        }
    }
    // Stated even when none, so that a merge replaces an earlier run's count.
    let settled_objects = ["reconcile", "scale", "footprint", "fleet"];
    if settled_objects.iter().any(|id| selected(&args.only, id)) {
        let stuck = reconcile::STUCK.load(std::sync::atomic::Ordering::SeqCst);
        add_details(
            &mut total.details,
            BTreeMap::from([(
                "Incidents".to_string(),
                serde_json::json!({"objects the operator left on CredentialsInvalid (counted as settled, not Ready)": stuck}),
            )]),
        );
    }
    machine.load_average_end = machine::load_average();
    if std::env::var_os("GDAP_BENCH_MACHINE_NOTE").is_none() {
        let start = machine.note.take().unwrap_or_default();
        machine.note = Some(format!(
            "{start}; at the end: {}",
            machine::others_running()
        ));
    }
    let results = Results {
        schema: report::SCHEMA,
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        commit,
        runs: args.runs,
        duration_seconds: started.elapsed().as_secs_f64(),
        machine,
        figures: total.figures,
        unavailable: total.unavailable,
        details: total.details,
        baseline: read_baseline(args.baseline.as_deref())?,
    };
    write(&args, &results)?;
    let missed: Vec<&Figure> = results.figures.iter().filter(|f| f.missed()).collect();
    println!(
        "== {} figures, {} targets missed",
        results.figures.len(),
        missed.len()
    );
    for f in missed {
        println!("MISSED: {}", report::summary_line(f));
    }
    if broken {
        anyhow::bail!("a benchmark failed (see above); the files say which");
    }
    Ok(())
}

/// Whether `--only` selects the benchmark `id` (everything when empty; `reconcile` includes
/// `scale`).
fn selected(only: &[String], id: &str) -> bool {
    only.is_empty()
        || only
            .iter()
            .any(|o| o == id || (o == "reconcile" && id == "scale"))
}

/// Adds a benchmark's details to the run's: a detail that is a map (e.g. "Incidents", which
/// several benchmarks report) gains the new entries, anything else is replaced.
fn add_details(
    total: &mut BTreeMap<String, serde_json::Value>,
    details: BTreeMap<String, serde_json::Value>,
) {
    for (key, value) in details {
        match (total.get_mut(&key), value) {
            (Some(serde_json::Value::Object(old)), serde_json::Value::Object(new)) => {
                old.extend(new);
            }
            (_, value) => {
                total.insert(key, value);
            }
        }
    }
}

fn write(args: &AllArgs, results: &Results) -> anyhow::Result<()> {
    let root = support::root();
    let out = args.out_dir.clone().unwrap_or_else(|| root.clone());
    let notes = std::fs::read_to_string(root.join("bench/notes.md")).unwrap_or_default();
    let json = out.join("bench/results.json");
    let md = out.join("docs/benchmarks.md");
    std::fs::create_dir_all(json.parent().expect("a directory"))?;
    std::fs::create_dir_all(md.parent().expect("a directory"))?;
    std::fs::write(&json, serde_json::to_string_pretty(results)? + "\n")?;
    std::fs::write(
        &md,
        report::render_markdown(results, &report::parse_notes(&notes)),
    )?;
    println!("wrote {} and {}", json.display(), md.display());
    if args.write_baseline {
        let baseline = report::Baseline::of(results, "footprint.");
        let path = out.join("bench/baseline.json");
        std::fs::write(&path, serde_json::to_string_pretty(&baseline)? + "\n")?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `report`: docs/benchmarks.md from bench/results.json, the notes and the baseline as they are now.
fn report_again(baseline: Option<PathBuf>) -> anyhow::Result<()> {
    let root = support::root();
    let json = root.join("bench/results.json");
    let text = std::fs::read_to_string(&json)
        .map_err(|e| anyhow::anyhow!("reading {}: {e} (run make bench first)", json.display()))?;
    let mut results: Results = serde_json::from_str(&text)?;
    results.baseline = read_baseline(baseline.as_deref())?;
    let notes = std::fs::read_to_string(root.join("bench/notes.md")).unwrap_or_default();
    let md = root.join("docs/benchmarks.md");
    std::fs::write(
        &md,
        report::render_markdown(&results, &report::parse_notes(&notes)),
    )?;
    println!("wrote {}", md.display());
    Ok(())
}

/// `merge`: bench/results.json with the benchmarks of `from` in place of its own.
fn merge(from: &std::path::Path) -> anyhow::Result<()> {
    let json = support::root().join("bench/results.json");
    let read = |p: &std::path::Path| -> anyhow::Result<Results> {
        let text = std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?;
        Ok(serde_json::from_str(&text)?)
    };
    let merged = report::merge(read(&json)?, read(from)?);
    std::fs::write(&json, serde_json::to_string_pretty(&merged)? + "\n")?;
    println!("merged {} into {}", from.display(), json.display());
    report_again(None)
}

/// The "before" figures: `path`, else bench/baseline.json when it exists.
fn read_baseline(path: Option<&std::path::Path>) -> anyhow::Result<Option<report::Baseline>> {
    let default = support::root().join("bench/baseline.json");
    let path = match path {
        Some(p) => p.to_path_buf(),
        None if default.exists() => default,
        None => return Ok(None),
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("reading the baseline {}: {e}", path.display()))?;
    Ok(Some(serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "the baseline {} is not a bench baseline: {e}",
            path.display()
        )
    })?))
}

/// `GDAP_BENCH_COMMIT` when set (a copy of the tree without git), else `git describe`.
fn commit() -> String {
    if let Ok(commit) = std::env::var("GDAP_BENCH_COMMIT") {
        return commit;
    }
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(support::root())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
