//! The tenant import: a 100,000-user and a 10,000-user tenant into the file sink and into
//! PostgreSQL — users per second and the importer's peak RSS — against two references measured in
//! the same runs:
//! - the floor: the same pages (subscribed SKUs, subscriptions, then every users page) fetched in
//!   order over the same HTTP client with the same token and headers, the bodies only counted —
//!   nothing parsed but the next link, nothing written;
//! - what a user would run instead: `bench/graph_sdk_users.py`, Microsoft's Graph SDK for Python
//!   with its PageIterator, reading the same users with the same `$select` into JSON Lines.
//!
//! Every sample runs in a process of its own (`import-sample`), so its peak RSS is its own, against
//! one release sandbox process serving HTTPS (as Microsoft does). The import runs in `Full` mode
//! (the `/users` listing, 999 users a page), as a TenantSync's full pass does.

use crate::report::{Bound, Bounded, Divide, Figure};
use crate::{AllArgs, Outcome, procs, support};
use gdap_operator::api::SyncMode;
use gdap_operator::microsoft::{
    Endpoints, MicrosoftClients, PartnerCredentials, RetryPolicy, TokenOptions, TokenSource,
    TransportConfig, rotation_fn,
};
use gdap_operator::sandbox::{Fixture, UsersFixture, defaults};
use gdap_operator::sync::sink::Sink;
use gdap_operator::sync::{FileSink, ImportOptions, PostgresSink, run_import};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The benchmark's section title.
const BENCHMARK: &str = "Tenant import";
/// The generated 10,000-user tenant added to the built-in fixture for this benchmark.
const SMALL_TENANT_ID: &str = "1b0a7f3e-5c2d-4e8f-9a61-00000000a710";
/// The import's target peak RSS, whatever the tenant's size.
const RSS_TARGET_MIB: f64 = 64.0;

/// A tenant the benchmark imports.
#[derive(Clone, Copy)]
struct Tenant {
    id: &'static str,
    users: u64,
    label: &'static str,
}

const TENANTS: [Tenant; 2] = [
    Tenant {
        id: defaults::NORTHWIND_TENANT_ID,
        users: defaults::NORTHWIND_USER_COUNT,
        label: "100k",
    },
    Tenant {
        id: SMALL_TENANT_ID,
        users: 10_000,
        label: "10k",
    },
];

/// What one sample does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum What {
    /// The import into the file sink.
    File,
    /// The import into PostgreSQL.
    Postgres,
    /// The floor: the same pages fetched, nothing parsed or written.
    Floor,
}

/// Options of `import-sample`.
#[derive(clap::Args)]
pub struct SampleArgs {
    /// What to run.
    #[arg(long, value_enum)]
    what: What,
    /// The sandbox (https://127.0.0.1:PORT).
    #[arg(long)]
    base: String,
    /// The sandbox's CA (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// The customer tenant.
    #[arg(long)]
    tenant: String,
    /// PostgreSQL URL (for `postgres`).
    #[arg(long)]
    postgres: Option<String>,
}

/// What a sample prints (one JSON line).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Users read (and written).
    pub users: u64,
    /// Wall time of the import (or fetch), token included.
    pub seconds: f64,
    /// The process's peak RSS at the end (`peakRssKiB`, as bench/graph_sdk_users.py prints it).
    #[serde(rename = "peakRssKiB")]
    pub peak_rss_kib: u64,
    /// The process's own CPU seconds (user and system) at the end; 0 when the sampler does
    /// not say (the Graph SDK script).
    #[serde(default)]
    pub cpu_seconds: f64,
    /// The PostgreSQL server's CPU seconds during the sample (measured by the benchmark around
    /// the sample process; 0 for the samples that do not write to it).
    #[serde(default)]
    pub server_cpu_seconds: f64,
}

/// Runs one sample in this process and prints it.
pub async fn sample(args: SampleArgs) -> anyhow::Result<()> {
    let endpoints = Endpoints::local(&args.base, Some(std::fs::read(&args.ca)?))?;
    let clients = clients(&endpoints)?;
    let started = Instant::now();
    let users = match args.what {
        What::Floor => floor(&clients, &endpoints, &args.tenant).await?,
        What::File => {
            let dir = tempfile::tempdir()?;
            import(&clients, &args.tenant, &mut FileSink::new(dir.path(), 2)).await?
        }
        What::Postgres => {
            let url = args
                .postgres
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("--postgres"))?;
            let schema = format!("bench_{}", std::process::id());
            import(
                &clients,
                &args.tenant,
                &mut PostgresSink::connect(url, &schema).await?,
            )
            .await?
        }
    };
    let sample = Sample {
        users,
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_kib: crate::machine::own_peak_kib(),
        cpu_seconds: crate::machine::cpu_seconds(std::process::id()).unwrap_or(0.0),
        server_cpu_seconds: 0.0,
    };
    println!("{}", serde_json::to_string(&sample)?);
    Ok(())
}

/// The partner's clients for the sandbox at `base`, as the operator builds them.
fn clients(endpoints: &Endpoints) -> anyhow::Result<MicrosoftClients> {
    let credentials = PartnerCredentials {
        partner_tenant_id: defaults::PARTNER_TENANT_ID.into(),
        client_id: defaults::PARTNER_CLIENT_ID.into(),
        client_credential: defaults::PARTNER_CLIENT_SECRET.into(),
        refresh_token: defaults::PARTNER_REFRESH_TOKEN.into(),
        refresh_token_issued_at: Some(chrono::Utc::now()),
    };
    let mut config = TransportConfig::new(endpoints.clone());
    config.retry = RetryPolicy::default();
    let rotation = rotation_fn(|_| async { Ok(()) });
    Ok(MicrosoftClients::new(
        config,
        credentials,
        rotation,
        TokenOptions::default(),
    )?)
}

fn options() -> ImportOptions {
    ImportOptions {
        mode: SyncMode::Full,
        partner_tenant_id: Some(defaults::PARTNER_TENANT_ID.into()),
        ..ImportOptions::default()
    }
}

async fn import(
    clients: &MicrosoftClients,
    tenant: &str,
    sink: &mut dyn Sink,
) -> anyhow::Result<u64> {
    let token = clients.tokens.app_token(tenant);
    let report = run_import(clients.directory.as_ref(), &token, tenant, &options(), sink).await?;
    Ok(report.users.total as u64)
}

/// Fetches what the import fetches, in the same order, with the same client, token and headers;
/// only the next link is looked for in each body. Returns the users counted.
async fn floor(
    clients: &MicrosoftClients,
    endpoints: &Endpoints,
    tenant: &str,
) -> anyhow::Result<u64> {
    let http = endpoints.http_client(Duration::from_secs(60))?;
    let token = clients.tokens.app_token(tenant);
    let next = regex::bytes::Regex::new(r#""@odata\.nextLink"\s*:\s*"([^"]+)""#)?;
    let id = regex::bytes::Regex::new(r#""id"\s*:"#)?;
    let get = |url: reqwest::Url| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let bearer = token.bearer(None).await?;
            let body = http
                .get(url)
                .bearer_auth(bearer.expose())
                .header("accept", "application/json")
                .header("client-request-id", uuid::Uuid::new_v4().to_string())
                .header("x-ms-throttle-priority", "low")
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            anyhow::Ok(body)
        }
    };
    get(endpoints.graph_url(&["subscribedSkus"])).await?;
    get(endpoints.graph_url(&["directory", "subscriptions"])).await?;
    let mut url = endpoints.graph_url(&["users"]);
    url.query_pairs_mut()
        .append_pair("$select", &options().select().join(","))
        .append_pair("$top", "999");
    let mut users = 0;
    loop {
        let body = get(url).await?;
        // Counting users is the one look at the body the figure needs (each has one "id").
        users += id.find_iter(&body).count() as u64;
        let Some(link) = next.captures(&body).and_then(|c| c.get(1)) else {
            return Ok(users);
        };
        url = reqwest::Url::parse(std::str::from_utf8(link.as_bytes())?)?;
    }
}

/// The benchmark: every sample, the SDK reference, the figures.
pub async fn run(args: &AllArgs) -> anyhow::Result<Outcome> {
    let work = tempfile::tempdir()?;
    let fixture = work.path().join("fixture.yaml");
    std::fs::write(&fixture, serde_yaml::to_string(&bench_fixture())?)?;
    let tls = work.path().join("tls");
    let sandbox = procs::sandbox(
        &["--fixture", path(&fixture), "--tls-dir", path(&tls)],
        work.path(),
    )?;
    let ca = sandbox
        .ca
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the sandbox printed no CA"))?;
    let postgres = support::postgres::get().url().to_string();
    let mut outcome = Outcome::default();
    for tenant in TENANTS {
        let mut samples: [Vec<Sample>; 3] = Default::default();
        for run in 0..args.runs {
            // Rotate the order so no side always runs first (caches, page cache, CPU boost).
            for k in 0..3 {
                let which = [What::Floor, What::File, What::Postgres][(run + k) % 3];
                let s = spawn_sample(which, &sandbox.base_url, &ca, tenant, &postgres).await?;
                anyhow::ensure!(
                    s.users == tenant.users,
                    "{which:?} read {} users of {}",
                    s.users,
                    tenant.users
                );
                samples[which as usize].push(s);
            }
        }
        let sdk = sdk_samples(args, &sandbox, &ca, tenant, work.path()).await;
        figures(&mut outcome, tenant, &samples, sdk);
    }
    sandbox.proc.stop();
    Ok(outcome)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The built-in fixture plus a 10,000-user copy of Northwind.
fn bench_fixture() -> Fixture {
    let mut fixture = Fixture::builtin();
    let mut small = fixture
        .customers
        .iter()
        .find(|c| c.tenant_id == defaults::NORTHWIND_TENANT_ID)
        .expect("Northwind is built in")
        .clone();
    small.tenant_id = SMALL_TENANT_ID.into();
    small.display_name = "Northwind (10,000 users)".into();
    small.primary_domain = "small.northwind.example".into();
    small.users = UsersFixture::Generated {
        generate: 10_000,
        seed: 11,
    };
    fixture.customers.push(small);
    fixture
}

async fn spawn_sample(
    what: What,
    base: &str,
    ca: &Path,
    tenant: Tenant,
    postgres: &str,
) -> anyhow::Result<Sample> {
    let exe = std::env::current_exe()?;
    let server_before = crate::machine::postgres_cpu_seconds();
    let what_arg = match what {
        What::File => "file",
        What::Postgres => "postgres",
        What::Floor => "floor",
    };
    let output = tokio::process::Command::new(exe)
        .args([
            "import-sample",
            "--what",
            what_arg,
            "--base",
            base,
            "--tenant",
            tenant.id,
        ])
        .arg("--ca")
        .arg(ca)
        .args(["--postgres", postgres])
        .env("RUST_LOG", "warn")
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "import sample {what_arg} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let mut sample: Sample = serde_json::from_str(line)?;
    if what == What::Postgres {
        sample.server_cpu_seconds = crate::machine::postgres_cpu_seconds() - server_before;
    }
    Ok(sample)
}

/// The Graph SDK script's samples (fewer on the big tenant: minutes each), or why there are none.
async fn sdk_samples(
    args: &AllArgs,
    sandbox: &procs::SandboxProc,
    ca: &Path,
    tenant: Tenant,
    work: &Path,
) -> Result<Vec<Sample>, String> {
    let Some(python) = &args.python else {
        return Err("not measured: no Python with the Graph SDK (run through make bench, which prepares tests/conformance's virtualenv)".into());
    };
    let runs = if tenant.users > 10_000 {
        args.sdk_runs.unwrap_or(1)
    } else {
        args.runs
    };
    let script = support::root().join("bench/graph_sdk_users.py");
    let out = work.join("sdk-users.jsonl");
    let mut samples = Vec::new();
    for _ in 0..runs {
        let output = tokio::process::Command::new(python)
            .arg(&script)
            .args([
                &sandbox.base_url,
                tenant.id,
                defaults::PARTNER_CLIENT_ID,
                defaults::PARTNER_CLIENT_SECRET,
            ])
            .arg(options().select().join(","))
            .arg(&out)
            .env("SSL_CERT_FILE", ca)
            .env("REQUESTS_CA_BUNDLE", ca)
            .output()
            .await
            .map_err(|e| format!("the Graph SDK script did not start: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "the Graph SDK script failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let line = String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        let sample: Sample = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
        if sample.users != tenant.users {
            return Err(format!(
                "the Graph SDK read {} users of {}",
                sample.users, tenant.users
            ));
        }
        samples.push(sample);
    }
    let _ = std::fs::remove_file(&out);
    Ok(samples)
}

fn rates(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| s.users as f64 / s.seconds).collect()
}

fn peaks_mib(samples: &[Sample]) -> Vec<f64> {
    samples
        .iter()
        .map(|s| s.peak_rss_kib as f64 / 1024.0)
        .collect()
}

fn figures(
    out: &mut Outcome,
    tenant: Tenant,
    samples: &[Vec<Sample>; 3],
    sdk: Result<Vec<Sample>, String>,
) {
    let floor = &samples[What::Floor as usize];
    let users = crate::report::number(tenant.users as f64);
    for (what, sink) in [(What::File, "files"), (What::Postgres, "PostgreSQL")] {
        let s = &samples[what as usize];
        let key = format!("import.{}.{}", sink_key(what), tenant.label);
        out.figures.push(
            Figure::new(
                &format!("{key}.vsFloor"),
                BENCHMARK,
                &format!("{users} users into {sink}: speed"),
                "users/s",
                rates(s),
            )
            .against(
                "the floor (same pages fetched, nothing parsed or written)",
                rates(floor),
                Divide::ReferenceByFigure,
                "import time ÷ floor time",
            )
            .target(
                "within 1.5× of the floor",
                Bounded::Ratio,
                Bound::AtMost(1.5),
            ),
        );
        match &sdk {
            Ok(sdk) => out.figures.push(
                Figure::new(
                    &format!("{key}.vsSdk"),
                    BENCHMARK,
                    &format!("{users} users into {sink}: speed against the Graph SDK"),
                    "users/s",
                    rates(s),
                )
                .against(
                    "Python Graph SDK PageIterator into JSON Lines",
                    rates(sdk),
                    Divide::FigureByReference,
                    "times faster than the SDK",
                )
                .target(
                    "at least 100× faster than the SDK",
                    Bounded::Ratio,
                    Bound::AtLeast(100.0),
                ),
            ),
            Err(reason) => out.unavailable.push(crate::report::Unavailable {
                id: format!("{key}.vsSdk"),
                what: format!("{users} users into {sink} against the Graph SDK"),
                reason: reason.clone(),
            }),
        }
        out.figures.push(
            Figure::new(
                &format!("{key}.peakRss"),
                BENCHMARK,
                &format!("{users} users into {sink}: peak RSS"),
                "MiB",
                peaks_mib(s),
            )
            .against(
                "the floor's peak RSS",
                peaks_mib(floor),
                Divide::FigureByReference,
                "import ÷ floor",
            )
            .target(
                "under 64 MiB",
                Bounded::Value,
                Bound::AtMost(RSS_TARGET_MIB),
            ),
        );
    }
    let mut detail = serde_json::Map::new();
    detail.insert(
        "floor users/s (median)".into(),
        json!(crate::report::median(&rates(floor))),
    );
    // Where the time goes, by process: the importer's own CPU for each side, and the
    // PostgreSQL server's during the PostgreSQL import.
    let median_of = |s: &[Sample], f: fn(&Sample) -> f64| {
        crate::report::median(&s.iter().map(f).collect::<Vec<_>>())
    };
    for (what, label) in [
        (What::Floor, "floor"),
        (What::File, "files"),
        (What::Postgres, "PostgreSQL"),
    ] {
        let s = &samples[what as usize];
        detail.insert(
            format!("{label}: wall s / importer CPU s (medians)"),
            json!(format!(
                "{} / {}",
                crate::report::number(median_of(s, |x| x.seconds)),
                crate::report::number(median_of(s, |x| x.cpu_seconds))
            )),
        );
    }
    detail.insert(
        "PostgreSQL server CPU s during the PostgreSQL import (median)".into(),
        json!(crate::report::number(median_of(
            &samples[What::Postgres as usize],
            |x| x.server_cpu_seconds
        ))),
    );
    detail.insert(
        "floor peak RSS MiB (median)".into(),
        json!(crate::report::median(&peaks_mib(floor))),
    );
    if let Ok(sdk) = &sdk {
        detail.insert("Graph SDK runs".into(), json!(sdk.len()));
        detail.insert(
            "Graph SDK users/s (median)".into(),
            json!(crate::report::median(&rates(sdk))),
        );
        detail.insert(
            "Graph SDK peak RSS MiB (median)".into(),
            json!(crate::report::median(&peaks_mib(sdk))),
        );
    }
    out.details.insert(
        format!("Tenant import, {users} users"),
        serde_json::Value::Object(detail),
    );
}

fn sink_key(what: What) -> &'static str {
    match what {
        What::File => "file",
        What::Postgres => "postgres",
        What::Floor => "floor",
    }
}
