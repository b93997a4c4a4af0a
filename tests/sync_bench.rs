//! `make bench`: a 100,000-user import into each sink — users per second and the importing
//! process's peak RSS (target: under 64 MiB whatever the tenant's size). Ignored by `make test`.
//!
//! Point `GDAP_BENCH_SANDBOX_URL` at a running (release) sandbox so that this process holds the
//! importer alone; without it an in-process sandbox is started and its memory counts too. Run one
//! sink per process (`--exact`), since the peak RSS of a process covers everything it ran.

mod support;

use gdap_operator::api::SyncMode;
use gdap_operator::microsoft::RetryPolicy;
use gdap_operator::sandbox::{Sandbox, SandboxOptions, ThrottleOptions, defaults};
use gdap_operator::sync::sink::Sink;
use gdap_operator::sync::{FileSink, ImportOptions, PostgresSink, run_import};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// (current, peak) resident set in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn bench(name: &str, sink: &mut dyn Sink) {
    let (_in_process, base) = match std::env::var("GDAP_BENCH_SANDBOX_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let options = SandboxOptions {
                throttle: ThrottleOptions {
                    budget: 0,
                    ..Default::default()
                },
                ..Default::default()
            };
            let sandbox = Sandbox::start(options).await.unwrap();
            let base = sandbox.base_url();
            (Some(sandbox), base)
        }
    };
    let none = Arc::new(Mutex::new(Vec::new()));
    let clients = support::import::clients(
        &base,
        RetryPolicy::default(),
        &none,
        &Arc::new(Mutex::new(Vec::new())),
    );
    let token = clients.tokens.app_token(defaults::NORTHWIND_TENANT_ID);
    let options = ImportOptions {
        mode: SyncMode::Full,
        partner_tenant_id: Some(defaults::PARTNER_TENANT_ID.into()),
        ..ImportOptions::default()
    };
    let (before, _) = rss_kib();
    let started = Instant::now();
    let report = run_import(
        clients.directory.as_ref(),
        &token,
        defaults::NORTHWIND_TENANT_ID,
        &options,
        sink,
    )
    .await
    .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let (_, peak) = rss_kib();
    assert_eq!(report.users.total, defaults::NORTHWIND_USER_COUNT as i64);
    let where_ = if _in_process.is_some() {
        " (sandbox in this process)"
    } else {
        ""
    };
    let peak_mib = peak as f64 / 1024.0;
    println!(
        "bench: import of {} users into the {name} sink: {:.1} s, {:.0} users/s; RSS before {} MiB, peak {:.1} MiB{where_} — target under 64 MiB: {}",
        report.users.total,
        seconds,
        report.users.total as f64 / seconds,
        before / 1024,
        peak_mib,
        if peak_mib < 64.0 { "met" } else { "MISSED" }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by `make bench`"]
async fn import_100k_users_into_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::new(dir.path(), 2);
    bench("file", &mut sink).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by `make bench`"]
async fn import_100k_users_into_postgres() {
    let pg = support::postgres::get();
    let mut sink = PostgresSink::connect(pg.url(), &pg.fresh_schema("bench"))
        .await
        .unwrap();
    bench("postgres", &mut sink).await;
}
