//! TenantSync end to end: the real kube-apiserver, the sandbox, a real PostgreSQL and the operator
//! binary. Imports are driven with the annotation `gdap.io/sync-now` (the operator's schedule
//! runs on the wall clock); the tests that need the schedule itself — two hundred objects spread
//! by their jitter, staleness — use `* * * * *`, the shortest interval cron has.
//!
//! Expectations are computed, never written down: the tenant is listed through Graph with the
//! plain client (tests/support/import.rs) and compared with the status, the files and the tables.
//!
//! With `GDAP_CAPTURE_ARGOCD_TESTDATA=1` the objects whose Argo CD health is checked are also
//! written to charts/gdap-operator/argocd/gdap.io/TenantSync/testdata/ (that is where those files
//! come from). The helpers, and the stand-in for the AppConsent controller, are in
//! tests/support/sync.rs.
#![cfg(feature = "sandbox")]

mod support;

use futures::StreamExt;
use gdap_operator::api::TenantSync;
use gdap_operator::api::conditions::{reasons, types};
use gdap_operator::sandbox::{SandboxOptions, defaults, skus};
use gdap_operator::sync::schedule::{Schedule, next_run};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::import;
use support::operator::{ChartRbac, World, poll_until};
use support::sync::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_users_land_in_files_exactly_then_a_delta_and_a_broken_run_change_exactly_what_they_should()
 {
    let options = SandboxOptions {
        fixture: import::fixture(10_000),
        ..Default::default()
    };
    let world = World::start("e2e-sync-file", options).await;
    let dir = tempfile::tempdir().unwrap();
    world.apply(&consent_manifest(NORTHWIND));
    world.apply(&sync_manifest(
        "northwind",
        NORTHWIND,
        "@daily",
        &file_sink(dir.path()),
        "",
    ));
    // The AppConsent is not Ready yet: nothing runs, and the status says what it waits for.
    let (_, reason, message) = wait_sync(&world, "northwind", "Synced=False", MINUTE, |o| {
        condition(o, types::SYNCED).filter(|c| c.0 == "False")
    })
    .await;
    assert_eq!(reason, reasons::APP_CONSENT_NOT_READY);
    assert!(
        message.contains(&format!("AppConsent {CONSENT} is not Ready")),
        "{message}"
    );
    let (health, _) = argocd_health(&world, "northwind", "progressing_waiting_for_consent.yaml");
    assert_eq!(health, "Progressing");

    make_consent_ready(&world, CONSENT).await;
    let object = wait_sync(&world, "northwind", "Synced=True", MINUTE, |o| {
        (condition(o, types::SYNCED)?.0 == "True").then(|| o.clone())
    })
    .await;
    let (ready, reason, message) = condition(&object, types::READY).unwrap();
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", reasons::IMPORT_PENDING)
    );
    assert!(
        message.starts_with("the first import runs at "),
        "{message}"
    );
    assert!(status(&object).next_sync_time.is_some());
    assert_eq!(
        argocd_health(&world, "northwind", "progressing_first_import.yaml").0,
        "Progressing"
    );
    assert!(
        !dir.path().join(NORTHWIND).exists(),
        "@daily: nothing ran before its time"
    );

    // The first import: everything, exactly.
    sync_now(&world, "northwind", "first").await;
    let object = wait_request(&world, "northwind", "first", 3 * MINUTE).await;
    let s = status(&object);
    assert_eq!(
        condition(&object, types::SYNCED).unwrap().0,
        "True",
        "{s:?}"
    );
    let want = expected(&world, NORTHWIND).await;
    assert_eq!(want.users.len(), 10_000);
    assert_figures(&s, &want);
    assert_eq!(s.failed_attempts, 0);
    assert!(s.last_duration.is_some() && s.last_successful_sync_time == s.last_sync_time);
    let run = current_run(dir.path(), NORTHWIND);
    let first_users = users_by_id(&run);
    assert_eq!(first_users.len(), 10_000);
    assert_eq!(
        first_users.keys().collect::<BTreeSet<_>>(),
        want.users.keys().collect::<BTreeSet<_>>(),
        "the file holds exactly the tenant's users"
    );
    assert_eq!(read_jsonl(&run.join("skus.jsonl")).len(), want.skus.len());
    assert_eq!(
        read_jsonl(&run.join("subscriptions.jsonl")).len(),
        want.subscriptions.len()
    );
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(summary["kind"], "full");
    assert_eq!(summary["users"]["total"], 10_000);
    let (ready, _, message) = condition(&object, types::READY).unwrap();
    assert_eq!(ready, "True", "{message}");
    assert_eq!(
        argocd_health(&world, "northwind", "healthy.yaml").0,
        "Healthy"
    );
    assert!(
        world
            .events("northwind")
            .iter()
            .any(|e| e.starts_with("Imported: imported 10000 users"))
    );
    let metrics = world.metrics().await;
    let labels = [
        ("namespace", world.namespace.as_str()),
        ("name", "northwind"),
        ("customer", NORTHWIND),
    ];
    assert_eq!(
        metric(
            &metrics,
            "gdap_sync_last_success_timestamp_seconds",
            &labels
        ),
        s.last_successful_sync_time
            .as_ref()
            .map(|t| t.0.as_second() as f64)
    );
    assert_eq!(
        metric(&metrics, "gdap_sync_disabled_licensed_users", &labels),
        Some(want.counts.disabled_licensed as f64)
    );
    assert!(metric(&metrics, "gdap_sync_rows_total", &[("table", "users")]).unwrap() >= 10_000.0);

    // A delta round: two users added, two changed, two removed — exactly those change.
    let users_path = format!("tenants/{NORTHWIND}/users");
    let added: Vec<String> = (0..2).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for (i, id) in added.iter().enumerate() {
        control_ok(&world, &users_path, json!({"id": id, "userPrincipalName": format!("new{i}@northwind.example"),
            "displayName": format!("New {i}"), "accountEnabled": true, "userType": "Member", "department": "New Hires",
            "assignedLicenses": [{"skuId": skus::SPE_E3, "disabledPlans": []}]})).await;
    }
    let ids: Vec<&String> = first_users.keys().collect();
    let changed = [ids[100].clone(), ids[200].clone()];
    let removed = [ids[300].clone(), ids[400].clone()];
    for id in &changed {
        let mut user = first_users[id].clone();
        user["department"] = json!("Changed");
        user["accountEnabled"] = json!(false);
        control_ok(&world, &users_path, user).await;
    }
    for id in &removed {
        let status = world.delete_control(&format!("{users_path}/{id}")).await;
        assert!(status.is_success(), "{status}");
    }
    // Graph shows user changes after a read lag (the sandbox lags like Microsoft): past it.
    world.advance_clock(6.0).await;
    sync_now(&world, "northwind", "delta").await;
    let object = wait_request(&world, "northwind", "delta", 2 * MINUTE).await;
    let (synced, _, message) = condition(&object, types::SYNCED).unwrap();
    assert_eq!(synced, "True", "{message}");
    assert!(
        message.ends_with("(delta round: 4 changed, 2 removed)"),
        "{message}"
    );
    let want = expected(&world, NORTHWIND).await;
    assert_figures(&status(&object), &want);
    let run = current_run(dir.path(), NORTHWIND);
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(
        (
            summary["kind"].as_str(),
            summary["rows"]["users"].as_u64(),
            summary["rows"]["removed"].as_u64()
        ),
        (Some("delta"), Some(4), Some(2))
    );
    let after = users_by_id(&run);
    assert_eq!(
        after.len(),
        10_002,
        "two added; the removed ones are kept, marked"
    );
    for id in &added {
        assert_eq!(after[id]["department"], "New Hires");
    }
    for id in &changed {
        assert_eq!(
            (&after[id]["department"], &after[id]["accountEnabled"]),
            (&json!("Changed"), &json!(false))
        );
    }
    for id in &removed {
        assert_eq!(after[id]["deleted"], true, "{}", after[id]);
        assert_eq!(
            after[id]["displayName"], first_users[id]["displayName"],
            "the last data is kept"
        );
    }
    let touched: BTreeSet<&String> = changed.iter().chain(&removed).collect();
    for (id, row) in &first_users {
        if !touched.contains(id) {
            assert_eq!(&after[id], row, "untouched user {id}");
        }
    }
    let delta_run = run;

    // A run broken halfway by Microsoft (a full pass whose pages start failing) leaves the last
    // good data, and the next run completes.
    let spec = json!({"spec": {"mode": "Full"}});
    syncs(&world)
        .patch("northwind", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    world.delete_control("requests").await;
    let slow = json!({"rules": [{"pathPrefix": "/v1.0/users", "rate": 0.0, "statuses": [503], "latencyMs": 250}]});
    assert!(world.put_control("faults", slow).await.is_success());
    sync_now(&world, "northwind", "broken").await;
    poll_until("four pages of the full listing", MINUTE, || async {
        (users_pages(&world).await >= 4).then_some(())
    })
    .await;
    let broken = json!({"rules": [{"pathPrefix": "/v1.0/users", "rate": 1.0, "statuses": [400]}]});
    assert!(world.put_control("faults", broken).await.is_success());
    let object = wait_request(&world, "northwind", "broken", MINUTE).await;
    let s = status(&object);
    let (synced, reason, message) = condition(&object, types::SYNCED).unwrap();
    assert_eq!(
        (synced.as_str(), reason.as_str()),
        ("False", reasons::MICROSOFT_ERROR),
        "{message}"
    );
    assert_eq!(s.failed_attempts, 1);
    assert_eq!(
        current_run(dir.path(), NORTHWIND),
        delta_run,
        "current still points at the last good run"
    );
    assert_eq!(
        users_by_id(&delta_run),
        after,
        "the last good data is untouched"
    );
    assert!(
        world
            .events("northwind")
            .iter()
            .any(|e| e.starts_with("ImportFailed:"))
    );
    assert_eq!(world.delete_control("faults").await.as_u16(), 204);
    let object = wait_sync(&world, "northwind", "the retry to succeed", MINUTE, |o| {
        (status(o).failed_attempts == 0 && condition(o, types::SYNCED)?.0 == "True")
            .then(|| o.clone())
    })
    .await;
    let run = current_run(dir.path(), NORTHWIND);
    assert_ne!(run, delta_run);
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(
        (summary["kind"].as_str(), summary["rows"]["users"].as_u64()),
        (Some("full"), Some(10_000))
    );
    assert_figures(&status(&object), &want);
    assert!(
        world
            .events("northwind")
            .iter()
            .any(|e| e.starts_with("ImportRecovered:"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_users_land_in_postgres_exactly_and_a_killed_operator_leaves_the_last_good_data()
 {
    let options = SandboxOptions {
        fixture: import::fixture(10_000),
        ..Default::default()
    };
    let mut world = World::start("e2e-sync-pg", options).await;
    let pg = support::postgres::get();
    let schema = pg.fresh_schema("e2e");
    // TLS with the server's password, verify-full against the CA the Secret holds.
    let mut data = json!({"url": pg.secret_url()});
    let mut ca_key = String::new();
    if let Some(ca) = pg.ca_pem() {
        data["ca.crt"] = json!(ca);
        ca_key = "        caKey: ca.crt\n".into();
    }
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "reporting-db"}, "stringData": data
    }))
    .unwrap();
    world
        .secrets()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    world.apply(&consent_manifest(NORTHWIND));
    make_consent_ready(&world, CONSENT).await;
    let sink = format!(
        "    postgres:\n      connectionSecretRef:\n        name: reporting-db\n{ca_key}      schema: {schema}\n"
    );
    world.apply(&sync_manifest(
        "northwind",
        NORTHWIND,
        "@daily",
        &sink,
        "  mode: Full\n",
    ));
    sync_now(&world, "northwind", "first").await;
    let object = wait_request(&world, "northwind", "first", 3 * MINUTE).await;
    let (synced, _, message) = condition(&object, types::SYNCED).unwrap();
    assert_eq!(synced, "True", "{message}");
    let want = expected(&world, NORTHWIND).await;
    assert_figures(&status(&object), &want);
    let db = pg.client().await;
    let count = |sql: String| {
        let db = &db;
        async move {
            db.query_one(&sql, &[&NORTHWIND])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(
        count(format!(
            "SELECT count(*) FROM {schema}.users WHERE tenant_id = $1 AND NOT deleted"
        ))
        .await,
        10_000
    );
    for sku in &want.skus {
        let row = db
            .query_one(
                &format!("SELECT purchased::bigint, assigned::bigint, assigned_users::bigint FROM {schema}.license_use_per_sku WHERE tenant_id = $1 AND sku_id = $2"),
                &[&NORTHWIND, &sku.sku_id],
            )
            .await
            .unwrap();
        let held = want.holders.get(&sku.sku_id).copied().unwrap_or(0);
        assert_eq!(
            (
                row.get::<_, i64>(0),
                row.get::<_, i64>(1),
                row.get::<_, i64>(2)
            ),
            (want.enabled_licences(&sku.sku_id), held, held),
            "{:?}",
            sku.sku_part_number
        );
    }
    let digest_sql = format!(
        "SELECT coalesce(md5(string_agg(u::text, '|' ORDER BY id)), '') FROM {schema}.users u WHERE tenant_id = $1"
    );
    let digest = db
        .query_one(&digest_sql, &[&NORTHWIND])
        .await
        .unwrap()
        .get::<_, String>(0);

    // Killed halfway through the next run (slow pages, so "halfway" is certain).
    world.delete_control("requests").await;
    let slow = json!({"rules": [{"pathPrefix": "/v1.0/users", "rate": 0.0, "statuses": [503], "latencyMs": 300}]});
    assert!(world.put_control("faults", slow).await.is_success());
    sync_now(&world, "northwind", "second").await;
    poll_until("four pages of the full listing", MINUTE, || async {
        (users_pages(&world).await >= 4).then_some(())
    })
    .await;
    world.kill_operator();
    let pages = users_pages(&world).await;
    assert!(
        pages < 11,
        "killed before the listing ended ({pages} of 11 pages)"
    );
    let runs_sql = format!(
        "SELECT status FROM {schema}.sync_runs WHERE tenant_id = $1 ORDER BY started_at, run_id"
    );
    let runs: Vec<String> = db
        .query(&runs_sql, &[&NORTHWIND])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        runs,
        ["succeeded", "running"],
        "the killed run never switched"
    );
    assert_eq!(
        db.query_one(&digest_sql, &[&NORTHWIND])
            .await
            .unwrap()
            .get::<_, String>(0),
        digest,
        "the last good data is untouched"
    );
    let object = syncs(&world).get("northwind").await.unwrap();
    assert_eq!(
        status(&object).last_sync_request.as_deref(),
        Some("first"),
        "the request is still pending"
    );

    // The restarted operator runs the pending import and it completes.
    assert_eq!(world.delete_control("faults").await.as_u16(), 204);
    world.start_operator();
    let object = wait_request(&world, "northwind", "second", 2 * MINUTE).await;
    let (synced, _, message) = condition(&object, types::SYNCED).unwrap();
    assert_eq!(synced, "True", "{message}");
    assert_figures(&status(&object), &want);
    let runs: Vec<String> = db
        .query(&runs_sql, &[&NORTHWIND])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(runs, ["succeeded", "abandoned", "succeeded"]);
    assert_eq!(
        count(format!(
            "SELECT count(*) FROM {schema}.users WHERE tenant_id = $1 AND NOT deleted"
        ))
        .await,
        10_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_consent_fails_the_next_run_clearly_and_turns_stale_under_the_charts_rbac() {
    // Tokens live no longer than the client's refresh margin, so every import gets a new one,
    // as a scheduled import hours after the last does (Microsoft's tokens keep the permissions
    // they were issued with until they expire).
    let options = SandboxOptions {
        token_lifetime: Duration::from_secs(300),
        ..Default::default()
    };
    let mut world = World::start("e2e-sync-revoke", options).await;
    world.run_operator_under_the_charts_rbac(ChartRbac::Namespaced);
    let dir = tempfile::tempdir().unwrap();
    world.apply(&consent_manifest(CONTOSO));
    make_consent_ready(&world, CONSENT).await;
    world.apply(&sync_manifest(
        "contoso",
        CONTOSO,
        "* * * * *",
        &file_sink(dir.path()),
        "",
    ));

    // The first import fails for a while (Microsoft answers 503, and the client's retries run
    // out): a transient failure, retried with backoff, shown as progress.
    let outage = json!({"rules": [{"pathPrefix": "/v1.0/subscribedSkus", "rate": 1.0, "statuses": [503], "retryAfterSeconds": 1}]});
    assert!(world.put_control("faults", outage).await.is_success());
    sync_now(&world, "contoso", "1").await;
    let object = wait_request(&world, "contoso", "1", 2 * MINUTE).await;
    let (synced, reason, _) = condition(&object, types::SYNCED).unwrap();
    assert_eq!(
        (synced.as_str(), reason.as_str()),
        ("False", reasons::TRANSIENT_ERROR)
    );
    let (_, reason, message) = condition(&object, types::READY).unwrap();
    assert_eq!(reason, reasons::IMPORT_PENDING);
    // (Or, if the retry already began, it says that the first import is running.)
    assert!(
        message.starts_with("the first import failed and is retried at")
            || message == "the first import is running",
        "{message}"
    );
    assert_eq!(
        argocd_health(&world, "contoso", "progressing_retrying.yaml").0,
        "Progressing"
    );
    assert_eq!(world.delete_control("faults").await.as_u16(), 204);
    let object = wait_sync(&world, "contoso", "the retry to succeed", MINUTE, |o| {
        (condition(o, types::READY)?.0 == "True").then(|| o.clone())
    })
    .await;
    assert_figures(&status(&object), &expected(&world, CONTOSO).await);
    let good = users_by_id(&current_run(dir.path(), CONTOSO));
    assert_eq!(good.len(), defaults::CONTOSO_USER_COUNT);

    // Suspended: nothing is scheduled, nothing turns stale, a sync-now request still runs once.
    let suspend = |on: bool| json!({"spec": {"suspend": on}});
    syncs(&world)
        .patch(
            "contoso",
            &PatchParams::default(),
            &Patch::Merge(&suspend(true)),
        )
        .await
        .unwrap();
    let object = wait_sync(&world, "contoso", "suspended", MINUTE, |o| {
        (condition(o, types::STALE)?.1 == reasons::SUSPENDED).then(|| o.clone())
    })
    .await;
    assert!(status(&object).next_sync_time.is_none());
    assert_eq!(
        argocd_health(&world, "contoso", "suspended.yaml").0,
        "Suspended"
    );
    sync_now(&world, "contoso", "2").await;
    let object = wait_request(&world, "contoso", "2", MINUTE).await;
    assert_eq!(condition(&object, types::SYNCED).unwrap().0, "True");
    syncs(&world)
        .patch(
            "contoso",
            &PatchParams::default(),
            &Patch::Merge(&suspend(false)),
        )
        .await
        .unwrap();

    // The customer revokes the consent: the next run fails with a reason that says so.
    control_ok(
        &world,
        &format!(
            "tenants/{CONTOSO}/consents/{}/revoke",
            defaults::PARTNER_CLIENT_ID
        ),
        json!({}),
    )
    .await;
    sync_now(&world, "contoso", "3").await;
    let object = wait_request(&world, "contoso", "3", MINUTE).await;
    // (With the AppConsent controller, the consent may notice the revocation first: then the
    // reason is AppConsentNotReady, which says so as clearly.)
    let (synced, reason, message) = condition(&object, types::SYNCED).unwrap();
    assert_eq!(
        (synced.as_str(), reason.as_str()),
        ("False", reasons::ACCESS_DENIED),
        "{message}"
    );
    assert!(
        message.contains("application permission") && message.contains("AppConsent"),
        "the message says what to do: {message}"
    );
    assert_eq!(
        condition(&object, types::READY).unwrap().1,
        reasons::ACCESS_DENIED
    );
    assert_eq!(
        argocd_health(&world, "contoso", "degraded_access_denied.yaml").0,
        "Degraded"
    );
    assert!(
        world
            .events("contoso")
            .iter()
            .any(|e| e.starts_with("ImportFailed:") && e.contains("application permission"))
    );
    assert_eq!(
        users_by_id(&current_run(dir.path(), CONTOSO)),
        good,
        "the last good data stays"
    );
    let metrics = world.metrics().await;
    assert!(
        metric(
            &metrics,
            "gdap_sync_runs_total",
            &[("result", reasons::ACCESS_DENIED)]
        )
        .unwrap_or(0.0)
            >= 1.0
    );

    // Two scheduled runs (a minute apart) pass without success: Stale.
    let object = wait_sync(&world, "contoso", "Stale=True", 4 * MINUTE, |o| {
        (condition(o, types::STALE)?.0 == "True").then(|| o.clone())
    })
    .await;
    let (_, reason, message) = condition(&object, types::STALE).unwrap();
    assert_eq!(reason, reasons::STALE);
    assert!(message.contains("last failure (AccessDenied)"), "{message}");
    let (health, health_message) = argocd_health(&world, "contoso", "degraded_stale.yaml");
    assert_eq!(health, "Degraded");
    let since = message.split_once("; the imports due since").unwrap().0;
    assert!(
        health_message.starts_with(since),
        "Argo CD shows the Stale message: {health_message}"
    );
    assert!(
        world
            .events("contoso")
            .iter()
            .any(|e| e.starts_with("Stale:"))
    );

    // A schedule cron cannot meet is refused with the field; a suspended object never imported
    // says so.
    world.apply(&sync_manifest(
        "never",
        CONTOSO,
        "0 0 30 2 *",
        &file_sink(dir.path()),
        "",
    ));
    let (_, reason, message) = wait_sync(&world, "never", "InvalidSpec", MINUTE, |o| {
        condition(o, types::READY)
    })
    .await;
    assert_eq!(reason, reasons::INVALID_SPEC);
    assert!(message.starts_with("spec.schedule: "), "{message}");
    assert_eq!(
        argocd_health(&world, "never", "degraded_invalid_spec.yaml").0,
        "Degraded"
    );
    world.apply(&sync_manifest(
        "paused",
        CONTOSO,
        "@daily",
        &file_sink(dir.path()),
        "  suspend: true\n",
    ));
    wait_sync(&world, "paused", "a status", MINUTE, |o| {
        condition(o, types::READY)
    })
    .await;
    assert_eq!(
        argocd_health(&world, "paused", "suspended_never_synced.yaml").0,
        "Suspended"
    );

    // Deletion waits for the operator, stops nothing that is not running, keeps the data, and
    // lets the credentials Secret go once nothing uses it.
    world.kill_operator();
    for name in ["contoso", "never", "paused"] {
        let out = world.kubectl(&["delete", "gdapsync", name, "--wait=false"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (health, _) = argocd_health(&world, "contoso", "progressing_deleting.yaml");
    assert_eq!(health, "Progressing");
    world.start_operator();
    poll_until("the TenantSyncs to be gone", MINUTE, || async {
        syncs(&world)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    assert_eq!(
        users_by_id(&current_run(dir.path(), CONTOSO)),
        good,
        "deletion keeps the data"
    );
    assert!(
        world
            .events("contoso")
            .iter()
            .any(|e| e.starts_with("Released:") && e.contains("stays"))
    );
    // The AppConsent and its relationship still use the Secret: once they are gone too, it is
    // released.
    for kind in ["appconsent", "gdap"] {
        let out = world.kubectl(&["delete", kind, "--all", "--timeout=60s"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    poll_until("the credentials Secret to be released", MINUTE, || async {
        let secret = world.secrets().get("partner-credentials").await.ok()?;
        (!secret
            .finalizers()
            .iter()
            .any(|f| f == "gdap.io/credentials-in-use"))
        .then_some(())
    })
    .await;
    let metrics = world.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "gdap_sync_last_success_timestamp_seconds",
            &[("name", "contoso")]
        ),
        None,
        "no series for a deleted object"
    );
    let log = world.operator_log().to_lowercase();
    assert!(
        !log.contains("forbidden"),
        "the operator made a forbidden call:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_objects_on_one_schedule_are_spread_by_their_jitter_and_never_exceed_the_limit()
{
    const OBJECTS: usize = 200;
    const LIMIT: usize = 4; // the operator's default --sync-concurrency
    let world = World::start("e2e-sync-200", SandboxOptions::default()).await;
    // Every Graph call takes 150 ms, so imports overlap and the limit is what holds them back.
    let slow = json!({"rules": [{"pathPrefix": "/v1.0/", "rate": 0.0, "statuses": [503], "latencyMs": 150}]});
    assert!(world.put_control("faults", slow).await.is_success());
    world.apply(&consent_manifest(CONTOSO));
    make_consent_ready(&world, CONSENT).await;
    let dir = tempfile::tempdir().unwrap();
    let api = syncs(&world);
    let names: Vec<String> = (0..OBJECTS).map(|i| format!("s-{i:03}")).collect();
    let created: Vec<TenantSync> = futures::stream::iter(names.iter())
        .map(|name| {
            let api = api.clone();
            let manifest = sync_manifest(
                name,
                CONTOSO,
                "* * * * *",
                &file_sink(&dir.path().join(name)),
                "",
            );
            async move {
                let object: TenantSync = serde_yaml::from_str(&manifest).unwrap();
                api.create(&PostParams::default(), &object).await.unwrap()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let schedule = Schedule::parse("* * * * *").unwrap();
    let due: BTreeMap<String, chrono::DateTime<chrono::Utc>> = created
        .iter()
        .map(|o| {
            let key = format!("{}/{}/{}", world.namespace, o.name_any(), o.uid().unwrap());
            let created_at = chrono::DateTime::from_timestamp(
                o.metadata
                    .creation_timestamp
                    .as_ref()
                    .unwrap()
                    .0
                    .as_second(),
                0,
            )
            .unwrap();
            (o.name_any(), next_run(&schedule, &key, created_at).unwrap())
        })
        .collect();
    let spread: BTreeSet<u32> = due.values().map(chrono::Timelike::second).collect();
    assert!(
        spread.len() >= 10,
        "200 objects spread over {} distinct seconds: {spread:?}",
        spread.len()
    );

    poll_until("every object's first import", 4 * MINUTE, || async {
        let list = api.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .all(|o| status(o).last_successful_sync_time.is_some())
            .then_some(())
    })
    .await;
    // Every import, from each sink's run summaries (start and end to the microsecond).
    let mut runs: Vec<(
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
        String,
    )> = Vec::new();
    for name in &names {
        let runs_dir = dir.path().join(name).join(CONTOSO).join("runs");
        for entry in std::fs::read_dir(&runs_dir).unwrap() {
            let summary = entry.unwrap().path().join("summary.json");
            if !summary.exists() {
                continue;
            }
            let s = read_json(&summary);
            let at = |k: &str| {
                s[k].as_str()
                    .unwrap()
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .unwrap()
            };
            runs.push((at("startedAt"), at("finishedAt"), name.clone()));
        }
    }
    assert!(runs.len() >= OBJECTS, "{} runs", runs.len());
    for name in &names {
        let first = runs
            .iter()
            .filter(|r| &r.2 == name)
            .map(|r| r.0)
            .min()
            .unwrap();
        assert!(
            first >= due[name],
            "{name} ran at {first}, before its time {}",
            due[name]
        );
    }
    let mut edges: Vec<(chrono::DateTime<chrono::Utc>, i32)> = runs
        .iter()
        .flat_map(|(start, end, _)| [(*start, 1), (*end, -1)])
        .collect();
    edges.sort_by_key(|&(t, delta)| (t, delta));
    let (mut running, mut most) = (0, 0);
    for (_, delta) in edges {
        running += delta;
        most = most.max(running);
    }
    eprintln!(
        "{} imports, at most {most} at once; first runs due in {} distinct seconds",
        runs.len(),
        spread.len()
    );
    assert!(
        most <= LIMIT as i32,
        "{most} imports ran at once; the limit is {LIMIT}"
    );
    assert!(
        most >= 2,
        "imports overlapped ({most} at most), so the limit was exercised"
    );
    let metrics = world.metrics().await;
    let successes = metric(&metrics, "gdap_sync_runs_total", &[("result", "success")]).unwrap();
    assert!(successes >= OBJECTS as f64, "{successes}");
    let failures: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("gdap_sync_runs_total{") && !l.contains("result=\"success\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(failures, 0.0, "no import failed");
}
