//! Streaming a 100,000-user tenant keeps the client's memory flat. Runs in its own test binary
//! so the process's resident set belongs to this test alone.
#![cfg(feature = "sandbox")]

mod clients_support;

use clients_support::*;
use futures::StreamExt;
use gdap_operator::microsoft::UserQuery;
use gdap_operator::sandbox::defaults;

/// (current, peak) resident set in KiB, from /proc/self/status.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "memory benchmark: run by `make bench`"]
async fn streaming_100k_users_keeps_memory_flat() {
    let h = start().await;
    let app = h.clients.tokens.app_token(defaults::NORTHWIND_TENANT_ID);
    let query = UserQuery {
        select: [
            "id",
            "displayName",
            "userPrincipalName",
            "assignedLicenses",
            "accountEnabled",
            "department",
            "usageLocation",
        ]
        .map(String::from)
        .to_vec(),
        top: Some(999),
        filter: None,
    };
    let mut users = h.clients.directory.users(&app, &query);
    let mut count = 0u64;
    let mut licensed = 0u64;
    let mut baseline = 0;
    let mut highest = 0;
    while let Some(user) = users.next().await {
        let user = user.unwrap();
        count += 1;
        licensed += u64::from(user.assigned_licenses.is_some_and(|l| !l.is_empty()));
        if count == 5_000 {
            baseline = rss_kib().0;
        }
        if count.is_multiple_of(5_000) {
            highest = highest.max(rss_kib().0);
        }
    }
    let (now, peak) = rss_kib();
    println!(
        "streamed {count} users ({licensed} licensed): RSS after 5k users {baseline} KiB, highest sampled {highest} KiB, end {now} KiB, process peak (VmHWM) {peak} KiB"
    );
    assert_eq!(count, defaults::NORTHWIND_USER_COUNT);
    // Collecting 100k users would add well over 100 MiB; a stream holds one page (~1k users).
    let growth = highest.saturating_sub(baseline);
    assert!(
        growth < 32 * 1024,
        "RSS grew by {growth} KiB while streaming"
    );
    h.stop().await;
}
