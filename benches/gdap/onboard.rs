//! Export and plan: `gdap-operator export` of the sandbox's scale fixture (1,000 customers, 1,500
//! relationships of which 1,200 live) into one manifest per relationship, and `gdap-operator
//! plan` of those manifests — each the release binary in a process of its own, wall time from
//! spawn to exit, against one release sandbox (`--scale-fixture`, throttling off: Graph's real
//! budget is not this benchmark's subject).
//!
//! The reference of each, measured in the same runs (alternating which goes first), is its floor:
//! the Graph reads the command cannot do without, through the crate's own clients with the same
//! concurrency (8, both commands' default) and nothing else — no manifests, no plan:
//! - export: every relationship page (300 a page), the customer list, and the access
//!   assignments of each active relationship;
//! - plan: each exported relationship read by id, and the access assignments of the active ones.
//!
//! The sandbox's request log gives the calls each command made, reported next to the floor's.

use crate::report::{Divide, Figure, median};
use crate::{AllArgs, Outcome, procs};
use futures::{StreamExt, TryStreamExt};
use gdap_operator::microsoft::models::gdap::RelationshipStatus;
use gdap_operator::microsoft::{
    DelegatedToken, Endpoints, MicrosoftClients, PartnerCredentials, RelationshipFilter,
    TokenOptions, TransportConfig, rotation_fn,
};
use gdap_operator::sandbox::defaults;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// The benchmark's section title.
const BENCHMARK: &str = "Export and plan";
/// Requests in flight at once: the commands' default `--concurrency`.
const CONCURRENCY: usize = 8;

/// One run's wall times and call counts.
#[derive(Debug, Default, Clone, Copy)]
struct RunResult {
    export_seconds: f64,
    export_floor_seconds: f64,
    plan_seconds: f64,
    plan_floor_seconds: f64,
    export_calls: f64,
    export_floor_calls: f64,
    plan_calls: f64,
    plan_floor_calls: f64,
    manifests: usize,
}

/// The benchmark.
pub async fn run(args: &AllArgs) -> anyhow::Result<Outcome> {
    let work = tempfile::tempdir()?;
    let sandbox_args = ["--scale-fixture", "--throttle-budget", "0"];
    let sandbox = procs::sandbox(&sandbox_args, work.path())?;
    let credentials = credentials_file(work.path())?;
    let mut runs = Vec::new();
    for run in 0..args.runs {
        let out = work.path().join(format!("export-{run}"));
        let floor_first = run % 2 == 0;
        let mut r = RunResult::default();
        if floor_first {
            floor_export(&sandbox.base_url, &mut r).await?;
        }
        let calls = Calls::start(&sandbox.base_url).await?;
        r.export_seconds = command(
            &sandbox.base_url,
            &["export", "--out-dir", path(&out)],
            &credentials,
            0,
        )?;
        r.export_calls = calls.since().await?;
        r.manifests = count_manifests(&out)?;
        if !floor_first {
            floor_export(&sandbox.base_url, &mut r).await?;
        }
        if floor_first {
            floor_plan(&sandbox.base_url, &mut r).await?;
        }
        let calls = Calls::start(&sandbox.base_url).await?;
        r.plan_seconds = command(&sandbox.base_url, &["plan", path(&out)], &credentials, 0)?;
        r.plan_calls = calls.since().await?;
        if !floor_first {
            floor_plan(&sandbox.base_url, &mut r).await?;
        }
        println!(
            "bench: export run {}: {:.2} s (floor {:.2} s), {} manifests; plan {:.2} s (floor {:.2} s)",
            run + 1,
            r.export_seconds,
            r.export_floor_seconds,
            r.manifests,
            r.plan_seconds,
            r.plan_floor_seconds
        );
        runs.push(r);
    }
    sandbox.proc.stop();
    Ok(outcome(&runs))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The built-in partner's credentials as a Secret manifest, as docs/adopting.md shows.
fn credentials_file(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let file = dir.join("partner-credentials.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: partner-credentials\nstringData:\n  partnerTenantId: {}\n  clientId: {}\n  clientSecret: {}\n  refreshToken: {}\n",
            defaults::PARTNER_TENANT_ID,
            defaults::PARTNER_CLIENT_ID,
            defaults::PARTNER_CLIENT_SECRET,
            defaults::PARTNER_REFRESH_TOKEN
        ),
    )?;
    Ok(file)
}

/// Runs `gdap-operator ARGS --credentials FILE` against the sandbox; its wall time, or an error
/// when it does not exit with `code`.
fn command(base: &str, args: &[&str], credentials: &Path, code: i32) -> anyhow::Result<f64> {
    let started = Instant::now();
    let output = std::process::Command::new(procs::operator_binary())
        .args(args)
        .arg("--credentials")
        .arg(credentials)
        .env("GDAP_LOGIN_URL", base)
        .env("GDAP_GRAPH_URL", base)
        .env("GDAP_PARTNER_CENTER_URL", base)
        .env_remove("GDAP_CREDENTIALS_FILE")
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        output.status.code() == Some(code),
        "gdap-operator {args:?} exited with {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(seconds)
}

fn count_manifests(dir: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.is_dir() {
            n += count_manifests(&p)?;
        } else if p.extension().is_some_and(|e| e == "yaml") {
            n += 1;
        }
    }
    Ok(n)
}

/// The sandbox's count of calls since a point.
struct Calls {
    base: String,
    at: f64,
}

impl Calls {
    async fn start(base: &str) -> anyhow::Result<Calls> {
        Ok(Calls {
            base: base.into(),
            at: procs::sandbox_calls(base).await?,
        })
    }

    async fn since(&self) -> anyhow::Result<f64> {
        Ok(procs::sandbox_calls(&self.base).await? - self.at)
    }
}

/// The partner's clients, as the commands build them: a fresh token cache, so each floor pays
/// for its token as each command does.
fn clients(base: &str) -> anyhow::Result<MicrosoftClients> {
    let credentials = PartnerCredentials {
        partner_tenant_id: defaults::PARTNER_TENANT_ID.into(),
        client_id: defaults::PARTNER_CLIENT_ID.into(),
        client_credential: defaults::PARTNER_CLIENT_SECRET.into(),
        refresh_token: defaults::PARTNER_REFRESH_TOKEN.into(),
        refresh_token_issued_at: Some(chrono::Utc::now()),
    };
    let config = TransportConfig::new(Endpoints::local(base, None)?);
    let rotation = rotation_fn(|_| async { Ok(()) });
    Ok(MicrosoftClients::new(
        config,
        credentials,
        rotation,
        TokenOptions::default(),
    )?)
}

/// Every relationship, 300 a page (the export's listing).
async fn list_all(
    clients: &MicrosoftClients,
    token: &DelegatedToken,
) -> anyhow::Result<Vec<(String, bool, bool)>> {
    let filter = RelationshipFilter {
        page_size: Some(300),
        ..Default::default()
    };
    let all = clients.gdap.list_relationships(token, &filter).await?;
    Ok(all
        .into_iter()
        .map(|r| {
            let status = r.status.as_ref();
            let ended = matches!(
                status,
                Some(
                    RelationshipStatus::Terminated
                        | RelationshipStatus::Expired
                        | RelationshipStatus::Terminating
                )
            );
            (r.id, ended, status == Some(&RelationshipStatus::Active))
        })
        .collect())
}

/// The export's floor: its listing, the customers, each active relationship's assignments.
async fn floor_export(base: &str, r: &mut RunResult) -> anyhow::Result<()> {
    let calls = Calls::start(base).await?;
    let started = Instant::now();
    let clients = &clients(base)?;
    let token = clients.tokens.partner_graph();
    let all = list_all(clients, &token).await?;
    clients.gdap.list_customers(&token).await?;
    let active: Vec<&String> = all
        .iter()
        .filter(|(_, ended, active)| !ended && *active)
        .map(|(id, _, _)| id)
        .collect();
    futures::stream::iter(active)
        .map(|id| clients.gdap.list_access_assignments(&token, id))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    r.export_floor_seconds = started.elapsed().as_secs_f64();
    r.export_floor_calls = calls.since().await?;
    Ok(())
}

/// The plan's floor: each live relationship by id, and the active ones' assignments (the list
/// that names them is read first, off the clock).
async fn floor_plan(base: &str, r: &mut RunResult) -> anyhow::Result<()> {
    let lister = clients(base)?;
    let live: Vec<(String, bool)> = list_all(&lister, &lister.tokens.partner_graph())
        .await?
        .into_iter()
        .filter(|(_, ended, _)| !ended)
        .map(|(id, _, active)| (id, active))
        .collect();
    let calls = Calls::start(base).await?;
    let started = Instant::now();
    let clients = &clients(base)?;
    let token = clients.tokens.partner_graph();
    futures::stream::iter(live.iter())
        .map(|(id, active)| {
            let token = &token;
            async move {
                clients.gdap.get_relationship(token, id).await?;
                if *active {
                    clients.gdap.list_access_assignments(token, id).await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    r.plan_floor_seconds = started.elapsed().as_secs_f64();
    r.plan_floor_calls = calls.since().await?;
    Ok(())
}

fn outcome(runs: &[RunResult]) -> Outcome {
    let pick = |f: fn(&RunResult) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let manifests = runs.first().map_or(0, |r| r.manifests);
    let n = crate::report::number(manifests as f64);
    let figures = vec![
        Figure::new(
            "export.seconds",
            BENCHMARK,
            &format!("export of the 1,500-relationship partner ({n} manifests): wall time"),
            "s",
            pick(|r| r.export_seconds),
        )
        .against(
            "the floor (the Graph reads an export needs, 8 at once, nothing else)",
            pick(|r| r.export_floor_seconds),
            Divide::FigureByReference,
            "export time ÷ floor time",
        ),
        Figure::new(
            "plan.seconds",
            BENCHMARK,
            &format!("plan of the {n} exported manifests: wall time"),
            "s",
            pick(|r| r.plan_seconds),
        )
        .against(
            "the floor (each relationship read by id, the active ones' assignments, 8 at once)",
            pick(|r| r.plan_floor_seconds),
            Divide::FigureByReference,
            "plan time ÷ floor time",
        ),
    ];
    let mut details = serde_json::Map::new();
    let calls = |f: fn(&RunResult) -> f64| crate::report::number(median(&pick(f)));
    details.insert(
        "Graph and token calls, export / its floor".into(),
        json!(format!(
            "{} / {}",
            calls(|r| r.export_calls),
            calls(|r| r.export_floor_calls)
        )),
    );
    details.insert(
        "Graph and token calls, plan / its floor".into(),
        json!(format!(
            "{} / {}",
            calls(|r| r.plan_calls),
            calls(|r| r.plan_floor_calls)
        )),
    );
    details.insert(
        "how".into(),
        json!("each command is the release binary in its own process (start-up, token and YAML included), each floor inside the benchmark with fresh clients (its token included); a release sandbox with --scale-fixture, throttling off"),
    );
    let mut out = Outcome {
        figures,
        ..Outcome::default()
    };
    out.details
        .insert(BENCHMARK.into(), serde_json::Value::Object(details));
    out
}
