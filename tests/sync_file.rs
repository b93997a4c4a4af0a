//! The import engine into the file sink, against the in-process sandbox: a 10,000-user tenant
//! lands exactly; a delta round applies exactly the changes made through the control API; a
//! failed or cancelled run leaves the last good run; a revoked consent fails permanently;
//! throttling slows the import down instead of failing it.
#![cfg(feature = "sandbox")]

mod support;

use futures::FutureExt;
use gdap_operator::api::SyncMode;
use gdap_operator::sandbox::defaults;
use gdap_operator::sync::rows::{DeletedReason, UserRow};
use gdap_operator::sync::sink::file::{PARTIAL_PREFIX, RUNS};
use gdap_operator::sync::sink::{RunInfo, Sink, SyncState};
use gdap_operator::sync::{FileSink, FullReason, ImportOptions, RunKind, SinkError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::import::{self, Expected, Interrupting, TENANT};

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn read_users(run: &Path) -> BTreeMap<String, UserRow> {
    let rows: Vec<UserRow> = read_lines(&run.join("users.jsonl"))
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    let n = rows.len();
    let by_id: BTreeMap<String, UserRow> = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
    assert_eq!(by_id.len(), n, "no user twice in users.jsonl");
    by_id
}

fn current(sink: &FileSink) -> PathBuf {
    sink.current_run(TENANT).unwrap().expect("a current run")
}

fn run_dirs(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join(TENANT).join(RUNS))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

/// The live users of a snapshot equal Graph's listing, property for property.
fn assert_live_users_match(rows: &BTreeMap<String, UserRow>, want: &Expected) {
    let live: BTreeMap<&String, &UserRow> = rows.iter().filter(|(_, r)| !r.deleted).collect();
    assert_eq!(live.len(), want.users.len(), "live users");
    for (id, user) in &want.users {
        let row = live.get(id).unwrap_or_else(|| panic!("user {id} missing"));
        assert_eq!(**row, UserRow::from(user.clone()), "user {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_user_tenant_lands_exactly() {
    let env = import::start(10_000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::new(dir.path(), 3);
    let report = env
        .import(&mut sink, &env.options(SyncMode::Full))
        .await
        .unwrap();
    let want = env.expected().await;
    assert_eq!(want.users.len(), 10_000);
    assert_eq!(report.kind, RunKind::Full);
    assert_eq!(report.full_reason, Some(FullReason::ModeFull));
    assert_eq!(report.users, want.counts, "user counts");
    assert_eq!(report.rows.users, 10_000);
    assert_eq!(report.rows.removed, 0);
    assert_eq!(report.rows.skus as usize, want.skus.len());
    assert_eq!(report.rows.subscriptions as usize, want.subscriptions.len());

    let run = current(&sink);
    let rows = read_users(&run);
    assert_live_users_match(&rows, &want);
    assert!(rows.values().all(|r| !r.deleted));
    let by_group = rows
        .values()
        .flat_map(|r| &r.license_assignment_states)
        .filter(|s| s.assigned_by_group.is_some())
        .count();
    let direct = rows
        .values()
        .flat_map(|r| &r.license_assignment_states)
        .filter(|s| s.assigned_by_group.is_none())
        .count();
    assert!(
        by_group > 1_000 && direct > 1_000,
        "group {by_group}, direct {direct}"
    );

    // Licence totals: users holding each SKU = Graph's consumedUnits = the report's `assigned`;
    // `purchased` = the licences of the fixture's Enabled subscriptions.
    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    for l in rows.values().flat_map(|r| &r.assigned_licenses) {
        *held.entry(l.sku_id.clone()).or_default() += 1;
    }
    assert_eq!(held, want.holders);
    assert_eq!(report.skus.len(), want.skus.len());
    for sku in &want.skus {
        let r = report.skus.iter().find(|r| r.sku_id == sku.sku_id).unwrap();
        assert_eq!(
            r.assigned,
            i64::from(sku.consumed_units),
            "{}",
            r.sku_part_number
        );
        assert_eq!(
            r.assigned,
            want.holders.get(&sku.sku_id).copied().unwrap_or(0)
        );
        assert_eq!(r.purchased, want.enabled_licences(&sku.sku_id));
        assert_eq!(r.available, r.purchased - r.assigned);
        let subs: Vec<_> = want
            .subscriptions
            .iter()
            .filter(|s| s.sku_id.as_deref() == Some(sku.sku_id.as_str()))
            .collect();
        let next = subs
            .iter()
            .filter(|s| matches!(s.status.as_deref(), Some("Enabled" | "Warning")))
            .filter_map(|s| s.next_lifecycle_date_time)
            .min();
        assert_eq!(r.next_expiry, next, "{}", r.sku_part_number);
        let ours: i64 = subs
            .iter()
            .filter(|s| s.status.as_deref() == Some("Enabled"))
            .filter(|s| s.owner_tenant_id.as_deref() == Some(defaults::PARTNER_TENANT_ID))
            .map(|s| i64::from(s.total_licenses))
            .sum();
        assert_eq!(r.partner_licenses, ours);
    }
    let e3 = report
        .skus
        .iter()
        .find(|r| r.sku_part_number == "SPE_E3")
        .unwrap();
    assert!(
        e3.partner_licenses < e3.purchased,
        "another partner sells some E3"
    );
    assert!(report.skus.iter().any(|r| r.trial));

    // The other tables and files of the run.
    let skus = read_lines(&run.join("skus.jsonl"));
    assert_eq!(skus.len(), want.skus.len());
    let subscriptions = read_lines(&run.join("subscriptions.jsonl"));
    assert_eq!(subscriptions.len(), want.subscriptions.len());
    for s in &subscriptions {
        let ours = s["ownerTenantId"] == defaults::PARTNER_TENANT_ID;
        assert_eq!(s["soldByPartner"], json!(ours), "{s}");
    }
    let summary: Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["users"]["total"], 10_000);
    assert_eq!(
        summary["users"]["disabledLicensed"],
        json!(want.counts.disabled_licensed)
    );
    assert_eq!(summary["lines"]["users"], 10_000);
    assert_eq!(summary["kind"], "full");
    let state: SyncState =
        serde_json::from_slice(&std::fs::read(run.join("state.json")).unwrap()).unwrap();
    assert_eq!(state.delta_link, None, "Full mode keeps no deltaLink");
    assert_eq!(state.run_id, report.run_id);
    assert_eq!(
        std::fs::read_link(dir.path().join(TENANT).join("current")).unwrap(),
        Path::new(RUNS).join(&report.run_id),
        "current is a relative link"
    );
}

fn user_json(row: &UserRow) -> Value {
    serde_json::to_value(row).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_round_applies_exactly_the_changes() {
    let env = import::start(2_000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::new(dir.path(), 10);
    let delta = env.options(SyncMode::Delta);
    let first = env.import(&mut sink, &delta).await.unwrap();
    assert_eq!(first.kind, RunKind::Full);
    assert_eq!(first.full_reason, Some(FullReason::FirstRun));
    let before = read_users(&current(&sink));
    assert_live_users_match(&before, &env.expected().await);
    let state = sink.state(TENANT).await.unwrap().unwrap();
    assert!(
        state.delta_link.is_some(),
        "Delta mode keeps the deltaLink in the sink"
    );

    // Through the control API: add two users, change two, remove two, and add and remove one
    // more before the next run.
    let users_path = format!("/_sandbox/tenants/{TENANT}/users");
    let mut added = Vec::new();
    for i in 0..2 {
        let body = json!({"userPrincipalName": format!("new{i}@northwind.example"), "displayName": format!("New {i}"),
            "accountEnabled": true, "userType": "Member", "department": "New Hires",
            "assignedLicenses": [{"skuId": gdap_operator::sandbox::skus::SPE_E3, "disabledPlans": []}]});
        let (s, user) = env.control("POST", &users_path, Some(body)).await;
        assert_eq!(s, 201);
        added.push(user["id"].as_str().unwrap().to_string());
    }
    let ids: Vec<&String> = before.keys().collect();
    let (changed, removed) = (
        vec![ids[10].clone(), ids[20].clone()],
        vec![ids[30].clone(), ids[40].clone()],
    );
    for id in &changed {
        let mut user = user_json(&before[id]);
        user["department"] = json!("Changed");
        user["accountEnabled"] = json!(false);
        assert_eq!(env.control("POST", &users_path, Some(user)).await.0, 201);
    }
    for id in &removed {
        assert_eq!(
            env.control("DELETE", &format!("{users_path}/{id}"), None)
                .await
                .0,
            204
        );
    }
    let (_, transient) = env
        .control(
            "POST",
            &users_path,
            Some(json!({"userPrincipalName": "brief@northwind.example"})),
        )
        .await;
    let transient = transient["id"].as_str().unwrap().to_string();
    assert_eq!(
        env.control("DELETE", &format!("{users_path}/{transient}"), None)
            .await
            .0,
        204
    );

    let second = env.import(&mut sink, &delta).await.unwrap();
    assert_eq!(second.kind, RunKind::Delta);
    assert_eq!(second.full_reason, None);
    assert_eq!(
        (second.rows.users, second.rows.removed),
        (4, 3),
        "exactly the changes"
    );
    let want = env.expected().await;
    assert_eq!(second.users, want.counts);
    let after = read_users(&current(&sink));
    assert_live_users_match(&after, &want);
    for id in &changed {
        assert_eq!(after[id].department.as_deref(), Some("Changed"));
        assert_eq!(after[id].account_enabled, Some(false));
    }
    for id in &removed {
        let row = &after[id];
        assert!(row.deleted, "removed users are marked, not dropped");
        assert_eq!(row.deleted_reason, Some(DeletedReason::Deleted));
        assert_eq!(
            row.display_name, before[id].display_name,
            "their last data is kept"
        );
    }
    assert!(after[&transient].deleted && after[&transient].display_name.is_none());
    let touched: BTreeSet<&String> = added
        .iter()
        .chain(&changed)
        .chain(&removed)
        .chain([&transient])
        .collect();
    for (id, row) in &before {
        if !touched.contains(id) {
            assert_eq!(&after[id], row, "untouched user {id} is unchanged");
        }
    }
    assert_eq!(after.len(), before.len() + 3, "two added and one tombstone");

    // A round without changes changes nothing; a due full pass keeps the deleted rows.
    let third = env.import(&mut sink, &delta).await.unwrap();
    assert_eq!(
        (third.kind, third.rows.users, third.rows.removed),
        (RunKind::Delta, 0, 0)
    );
    assert_eq!(read_users(&current(&sink)), after);
    let due = ImportOptions {
        full_sync_every: chrono::Duration::zero(),
        ..delta.clone()
    };
    let fourth = env.import(&mut sink, &due).await.unwrap();
    assert_eq!(fourth.full_reason, Some(FullReason::FullSyncDue));
    let full = read_users(&current(&sink));
    assert_live_users_match(&full, &want);
    assert!(removed.iter().all(|id| full[id].deleted));
    assert_eq!(fourth.users, want.counts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_failing_halfway_leaves_the_last_good_run_and_the_next_run_completes() {
    let env = import::start(5_000).await;
    let dir = tempfile::tempdir().unwrap();
    let full = env.options(SyncMode::Full);
    let mut plain = FileSink::new(dir.path(), 5);
    let good = env.import(&mut plain, &full).await.unwrap();
    let good_run = current(&plain);
    let good_bytes = std::fs::read(good_run.join("users.jsonl")).unwrap();

    let (base, http) = (env.sandbox.base_url(), reqwest::Client::new());
    let hook: import::Hook = Arc::new(move || {
        let (base, http) = (base.clone(), http.clone());
        async move {
            let (s, _) = import::control(
                &http,
                &base,
                "PUT",
                "/_sandbox/faults",
                Some(import::users_outage()),
            )
            .await;
            assert_eq!(s, 204);
        }
        .boxed()
    });
    let mut sink = Interrupting {
        inner: FileSink::new(dir.path(), 5),
        after_rows: 1_000,
        hook,
    };
    // A full pass through the users delta (200 users a page): the reader is at most three
    // batches ahead of the sink, so the outage starts well before the last page.
    let err = env
        .import(&mut sink, &env.options(SyncMode::Delta))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.reason(), "ServiceUnavailable");
    assert!(err.to_string().contains(TENANT), "{err}");
    assert_eq!(current(&plain), good_run, "current did not move");
    assert_eq!(
        std::fs::read(good_run.join("users.jsonl")).unwrap(),
        good_bytes
    );
    assert_eq!(
        run_dirs(dir.path()),
        vec![good.run_id.clone()],
        "nothing of the failed run is left"
    );

    env.control("DELETE", "/_sandbox/faults", None).await;
    let next = env.import(&mut plain, &full).await.unwrap();
    assert_ne!(current(&plain), good_run);
    assert_live_users_match(&read_users(&current(&plain)), &env.expected().await);
    assert_eq!(next.users, good.users);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_leaves_the_last_good_run_and_frees_the_tenant() {
    let env = import::start(2_000).await;
    let dir = tempfile::tempdir().unwrap();
    let delta = env.options(SyncMode::Delta);
    let mut plain = FileSink::new(dir.path(), 5);
    env.import(&mut plain, &delta).await.unwrap();
    let good_run = current(&plain);
    let good_state = plain.state(TENANT).await.unwrap();

    let notify = Arc::new(tokio::sync::Notify::new());
    let signal = notify.clone();
    let hook: import::Hook = Arc::new(move || {
        signal.notify_one();
        async {}.boxed()
    });
    let mut sink = Interrupting {
        inner: FileSink::new(dir.path(), 5),
        after_rows: 1_000,
        hook,
    };
    let forced = ImportOptions {
        full_sync_every: chrono::Duration::zero(),
        ..delta.clone()
    };
    {
        let run = env.import(&mut sink, &forced);
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => panic!("the run finished before it was cancelled: {r:?}"),
            _ = notify.notified() => {}
        }
        // The run is dropped here, halfway.
    }
    assert_eq!(current(&plain), good_run);
    assert_eq!(plain.state(TENANT).await.unwrap(), good_state);
    assert!(
        run_dirs(dir.path())
            .iter()
            .all(|n| !n.starts_with(PARTIAL_PREFIX))
    );
    let next = env.import(&mut plain, &delta).await.unwrap();
    assert_eq!(
        next.kind,
        RunKind::Delta,
        "the cancelled full pass left the state alone"
    );
    assert_live_users_match(&read_users(&current(&plain)), &env.expected().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_consent_fails_permanently_and_keeps_the_data() {
    let mut env = import::start(500).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::new(dir.path(), 5);
    let full = env.options(SyncMode::Full);
    env.import(&mut sink, &full).await.unwrap();
    let good_run = current(&sink);
    let (s, body) = env
        .control(
            "POST",
            &format!(
                "/_sandbox/tenants/{TENANT}/consents/{}/revoke",
                defaults::PARTNER_CLIENT_ID
            ),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    // Access tokens issued before the revocation stay valid until they expire, as at
    // Microsoft; the next token has no application permissions.
    env.renew_clients();
    let err = env.import(&mut sink, &full).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    // The new token carries no role at all: Graph's 401 "Either scp or roles claim…".
    assert_eq!(err.reason(), "NoPermissions");
    let text = err.to_string();
    assert!(
        text.contains("consent") && text.contains("LicenseAssignment.Read.All"),
        "{text}"
    );
    assert_eq!(current(&sink), good_run);
    assert_eq!(run_dirs(dir.path()).len(), 1);
}

#[tokio::test]
async fn an_app_token_of_another_tenant_is_refused_before_any_call() {
    let env = import::start(10).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::new(dir.path(), 2);
    let contoso = env.clients.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let err = gdap_operator::sync::run_import(
        env.clients.directory.as_ref(),
        &contoso,
        TENANT,
        &env.options(SyncMode::Full),
        &mut sink,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, gdap_operator::sync::ImportError::Options(_)),
        "{err}"
    );
    assert!(!err.is_transient());
    assert!(
        err.to_string().contains(defaults::CONTOSO_TENANT_ID),
        "{err}"
    );
    assert!(env.requests().await.is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_slows_the_import_down_instead_of_failing_it() {
    let env = import::start_with(1_200, |o| {
        o.throttle = gdap_operator::sandbox::ThrottleOptions {
            budget: 4,
            window: std::time::Duration::from_secs(4),
        };
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::new(dir.path(), 5);
    // Delta pages hold 200 users: 6 pages plus SKUs and subscriptions, against 4 per 4 s. The
    // pause at a spent budget (1.6 s) ends inside the window, so Graph's 429 comes too.
    let report = env
        .import(&mut sink, &env.options(SyncMode::Delta))
        .await
        .unwrap();
    let retries = env.retries.lock().unwrap().clone();
    assert!(!retries.is_empty(), "the sandbox throttled the import");
    for r in &retries {
        assert_eq!(r.status, Some(429), "{r:?}");
        let after = r.retry_after.expect("a 429 says when to retry");
        assert!(
            after.subsec_nanos() == 0 && after.as_secs() >= 1,
            "whole seconds: {r:?}"
        );
    }
    let paces = env.paces.lock().unwrap().clone();
    assert!(
        !paces.is_empty(),
        "the import paused when the budget ran low"
    );
    assert!(
        paces
            .iter()
            .all(|p| p.limit_percentage > 0.8 && p.tenant_id == TENANT)
    );
    let log = env.requests().await;
    let graph: Vec<_> = log.iter().filter(|r| r.1.starts_with("/v1.0/")).collect();
    assert!(graph.iter().any(|r| r.2 == 429));
    assert!(
        graph.iter().all(|r| r.3.as_deref() == Some("low")),
        "background reads are low priority: {graph:?}"
    );
    env.control("PUT", "/_sandbox/throttle", Some(json!({"budget": 0})))
        .await;
    let want = env.expected().await;
    assert_eq!(report.users, want.counts);
    assert_live_users_match(&read_users(&current(&sink)), &want);
}

#[tokio::test]
async fn old_runs_are_pruned_and_one_run_per_tenant_holds_the_sink() {
    let env = import::start(50).await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::new(dir.path(), 2);
    let full = env.options(SyncMode::Full);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(env.import(&mut sink, &full).await.unwrap().run_id);
    }
    assert_eq!(
        run_dirs(dir.path()),
        ids[1..].to_vec(),
        "the oldest run was deleted"
    );

    let run = RunInfo {
        run_id: "20990101T000000000Z-00000001".into(),
        tenant_id: TENANT.into(),
        kind: RunKind::Full,
        started_at: chrono::Utc::now(),
    };
    let mut holder = FileSink::new(dir.path(), 2);
    let writer = holder.begin(&run).await.unwrap();
    let mut other = FileSink::new(dir.path(), 2);
    match env.import(&mut other, &full).await {
        Err(gdap_operator::sync::ImportError::Sink(e @ SinkError::Busy { .. })) => {
            assert!(e.is_transient());
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    writer.abort("test").await;
    env.import(&mut other, &full).await.unwrap();
}
