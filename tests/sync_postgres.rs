//! The import engine into a real PostgreSQL (a throwaway cluster, tests/support/postgres.rs),
//! against the in-process sandbox: tables and views agree with the tenant exactly; a delta round
//! applies exactly the changes; failed and cancelled runs leave the data and are recorded; one
//! run per tenant at a time; the schema migrates once; TLS and passwords as libpq's `sslmode`
//! says, refusals in words.
#![cfg(feature = "sandbox")]

mod support;

use futures::FutureExt;
use gdap_operator::api::SyncMode;
use gdap_operator::microsoft::Secret;
use gdap_operator::sandbox::defaults;
use gdap_operator::sync::sink::postgres::{CaBundle, Connection, DEFAULT_SCHEMA, TlsError};
use gdap_operator::sync::sink::{RunInfo, Sink};
use gdap_operator::sync::{
    FullReason, ImportError, ImportOptions, PostgresSink, RunKind, SinkError,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use support::import::{self, Expected, Interrupting, TENANT};
use tokio_postgres::Client;

async fn sink(prefix: &str) -> (PostgresSink, String) {
    let pg = support::postgres::get();
    let schema = pg.fresh_schema(prefix);
    let sink = PostgresSink::connect(pg.url(), &schema).await.unwrap();
    (sink, schema)
}

async fn client() -> Client {
    support::postgres::get().client().await
}

/// (id → (display_name, department, account_enabled, assigned_licenses)) of live users.
async fn live_users(
    db: &Client,
    s: &str,
) -> BTreeMap<String, (Option<String>, Option<String>, Option<bool>, Value)> {
    db.query(
        &format!("SELECT id, display_name, department, account_enabled, assigned_licenses FROM {s}.users WHERE tenant_id = $1 AND NOT deleted"),
        &[&TENANT],
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
    .collect()
}

async fn assert_live_users_match(db: &Client, s: &str, want: &Expected) {
    let live = live_users(db, s).await;
    assert_eq!(live.len(), want.users.len());
    for (id, u) in &want.users {
        let (name, department, enabled, licences) =
            live.get(id).unwrap_or_else(|| panic!("user {id} missing"));
        assert_eq!(name, &u.display_name, "{id}");
        assert_eq!(department, &u.department, "{id}");
        assert_eq!(enabled, &u.account_enabled, "{id}");
        assert_eq!(
            licences,
            &serde_json::to_value(u.assigned_licenses.clone().unwrap_or_default()).unwrap(),
            "{id}"
        );
    }
}

/// A fingerprint of every user row of the tenant.
async fn users_digest(db: &Client, s: &str) -> String {
    db.query_one(
        &format!("SELECT coalesce(md5(string_agg(u::text, '|' ORDER BY id)), '') FROM {s}.users u WHERE tenant_id = $1"),
        &[&TENANT],
    )
    .await
    .unwrap()
    .get(0)
}

async fn runs(db: &Client, s: &str) -> Vec<(String, String, Option<String>)> {
    db.query(
        &format!("SELECT run_id, status, error FROM {s}.sync_runs WHERE tenant_id = $1 ORDER BY started_at, run_id"),
        &[&TENANT],
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

async fn staged(db: &Client, s: &str) -> i64 {
    db.query_one(&format!("SELECT count(*) FROM {s}.users_staging"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_user_tenant_lands_exactly_and_the_views_agree() {
    let env = import::start(10_000).await;
    let (mut sink, schema) = sink("full").await;
    let report = env
        .import(&mut sink, &env.options(SyncMode::Full))
        .await
        .unwrap();
    let want = env.expected().await;
    let db = client().await;
    let s = format!("\"{schema}\"");
    assert_eq!(report.users, want.counts);
    assert_live_users_match(&db, &s, &want).await;

    // Licence use per SKU: the view's figures against Graph's and the fixture's.
    let per_sku = db
        .query(
            &format!("SELECT sku_id, purchased, assigned, available, assigned_users, next_expiry, partner_licenses FROM {s}.license_use_per_sku WHERE tenant_id = $1"),
            &[&TENANT],
        )
        .await
        .unwrap();
    assert_eq!(per_sku.len(), want.skus.len());
    for row in &per_sku {
        let sku_id: String = row.get(0);
        let sku = want.skus.iter().find(|k| k.sku_id == sku_id).unwrap();
        let (purchased, assigned, available, users): (i64, i64, i64, i64) =
            (row.get(1), row.get(2), row.get(3), row.get(4));
        assert_eq!(purchased, want.enabled_licences(&sku_id));
        assert_eq!(assigned, i64::from(sku.consumed_units));
        assert_eq!(users, want.holders[&sku_id], "users holding {sku_id}");
        assert_eq!(available, purchased - assigned);
        let report_sku = report.skus.iter().find(|r| r.sku_id == sku_id).unwrap();
        assert_eq!(
            row.get::<_, Option<chrono::DateTime<chrono::Utc>>>(5),
            report_sku.next_expiry
        );
        assert_eq!(row.get::<_, i64>(6), report_sku.partner_licenses);
    }

    // Direct versus group-assigned: from the raw users' licenseAssignmentStates.
    let mut sources: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for u in want.users.values() {
        let mut per: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for st in u.license_assignment_states.clone().unwrap_or_default() {
            let e = per.entry(st.sku_id.unwrap()).or_default();
            if st.assigned_by_group.is_some() {
                e.1 = true
            } else {
                e.0 = true
            }
        }
        for (sku, (direct, group)) in per {
            let c = sources.entry(sku).or_default();
            match (direct, group) {
                (true, false) => c.0 += 1,
                (false, true) => c.1 += 1,
                _ => c.2 += 1,
            }
        }
    }
    let got: BTreeMap<String, (i64, i64, i64)> = db
        .query(&format!("SELECT sku_id, direct_only, group_only, both_direct_and_group FROM {s}.license_direct_vs_group WHERE tenant_id = $1"), &[&TENANT])
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect();
    assert_eq!(got, sources);
    assert!(
        sources.values().any(|c| c.1 > 0 && c.2 > 0),
        "the fixture has group-based licences"
    );

    // Licensed but disabled accounts, and licence use per department.
    let disabled: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM {s}.licensed_disabled_accounts WHERE tenant_id = $1"),
            &[&TENANT],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(disabled, want.counts.disabled_licensed);
    let mut per_department: BTreeMap<(String, String), i64> = BTreeMap::new();
    for u in want.users.values() {
        for l in u.assigned_licenses.clone().unwrap_or_default() {
            *per_department
                .entry((u.department.clone().unwrap_or_default(), l.sku_id))
                .or_default() += 1;
        }
    }
    let got: BTreeMap<(String, String), i64> = db
        .query(&format!("SELECT department, sku_id, assigned FROM {s}.license_use_per_department WHERE tenant_id = $1"), &[&TENANT])
        .await
        .unwrap()
        .into_iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    assert_eq!(got, per_department);

    // Subscriptions ending within 30 days, and who sold them.
    let now = chrono::Utc::now();
    let soon: BTreeSet<String> = want
        .subscriptions
        .iter()
        .filter(|x| matches!(x.status.as_deref(), Some("Enabled" | "Warning")))
        .filter(|x| {
            x.next_lifecycle_date_time
                .is_some_and(|t| t >= now && t < now + chrono::Duration::days(30))
        })
        .map(|x| x.id.clone())
        .collect();
    assert!(
        !soon.is_empty(),
        "the fixture has subscriptions ending soon"
    );
    let got: BTreeSet<String> = db
        .query(
            &format!(
                "SELECT subscription_id FROM {s}.subscriptions_expiring_soon WHERE tenant_id = $1"
            ),
            &[&TENANT],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(got, soon);
    let sellers: Vec<(Option<String>, Option<bool>)> = db
        .query(&format!("SELECT owner_tenant_id, sold_by_partner FROM {s}.subscriptions WHERE tenant_id = $1"), &[&TENANT])
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(sellers.len(), want.subscriptions.len());
    for (owner, ours) in sellers {
        assert_eq!(
            ours,
            Some(owner.as_deref() == Some(defaults::PARTNER_TENANT_ID))
        );
    }

    // The run is recorded; staging is empty; the state has no deltaLink in Full mode.
    let run = db
        .query_one(&format!("SELECT status, kind, users_total, users_licensed, rows_users, rows_skus FROM {s}.sync_runs WHERE run_id = $1"), &[&report.run_id])
        .await
        .unwrap();
    assert_eq!(run.get::<_, String>(0), "succeeded");
    assert_eq!(run.get::<_, String>(1), "full");
    assert_eq!(run.get::<_, i64>(2), want.counts.total);
    assert_eq!(run.get::<_, i64>(3), want.counts.licensed);
    assert_eq!(run.get::<_, i64>(4), 10_000);
    assert_eq!(run.get::<_, i64>(5), want.skus.len() as i64);
    assert_eq!(staged(&db, &s).await, 0);
    let state = sink.state(TENANT).await.unwrap().unwrap();
    assert_eq!((state.run_id, state.delta_link), (report.run_id, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_round_applies_exactly_the_changes() {
    let env = import::start(2_000).await;
    let (mut sink, schema) = sink("delta").await;
    let s = format!("\"{schema}\"");
    let db = client().await;
    let delta = env.options(SyncMode::Delta);
    let first = env.import(&mut sink, &delta).await.unwrap();
    assert_eq!(first.full_reason, Some(FullReason::FirstRun));
    let before = live_users(&db, &s).await;
    let users_path = format!("/_sandbox/tenants/{TENANT}/users");
    let (_, added) = env
        .control("POST", &users_path, Some(json!({"userPrincipalName": "new@northwind.example", "displayName": "New",
            "accountEnabled": true, "assignedLicenses": [{"skuId": gdap_operator::sandbox::skus::AAD_PREMIUM, "disabledPlans": []}]})))
        .await;
    let added = added["id"].as_str().unwrap().to_string();
    let ids: Vec<&String> = before.keys().collect();
    let (changed, removed) = (ids[7].clone(), ids[8].clone());
    let user: Value = db
        .query_one(&format!("SELECT jsonb_build_object('id', id, 'userPrincipalName', user_principal_name, 'displayName', display_name, 'assignedLicenses', assigned_licenses) FROM {s}.users WHERE id = $1"), &[&changed])
        .await
        .unwrap()
        .get(0);
    let mut user = user;
    user["department"] = json!("Changed");
    assert_eq!(env.control("POST", &users_path, Some(user)).await.0, 201);
    assert_eq!(
        env.control("DELETE", &format!("{users_path}/{removed}"), None)
            .await
            .0,
        204
    );
    let untouched_before: BTreeMap<String, String> = db
        .query(
            &format!(
                "SELECT id, md5(u::text) FROM {s}.users u WHERE tenant_id = $1 AND id <> ALL($2)"
            ),
            &[&TENANT, &vec![changed.clone(), removed.clone()]],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    let second = env.import(&mut sink, &delta).await.unwrap();
    assert_eq!(second.kind, RunKind::Delta);
    assert_eq!((second.rows.users, second.rows.removed), (2, 1));
    let want = env.expected().await;
    assert_eq!(second.users, want.counts);
    assert_live_users_match(&db, &s, &want).await;
    let gone = db
        .query_one(&format!("SELECT deleted, deleted_reason, display_name, deleted_at IS NOT NULL FROM {s}.users WHERE id = $1"), &[&removed])
        .await
        .unwrap();
    assert!(
        gone.get::<_, bool>(0),
        "removed users are marked, not dropped"
    );
    assert_eq!(gone.get::<_, String>(1), "deleted");
    assert_eq!(
        gone.get::<_, Option<String>>(2),
        before[&removed].0,
        "their last data is kept"
    );
    assert!(gone.get::<_, bool>(3));
    let untouched_after: BTreeMap<String, String> = db
        .query(
            &format!(
                "SELECT id, md5(u::text) FROM {s}.users u WHERE tenant_id = $1 AND id <> ALL($2)"
            ),
            &[
                &TENANT,
                &vec![changed.clone(), removed.clone(), added.clone()],
            ],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(untouched_after, untouched_before, "nothing else changed");
    let state = sink.state(TENANT).await.unwrap().unwrap();
    assert_eq!(state.run_id, second.run_id);
    assert_eq!(
        state.last_full_sync, first.started_at,
        "a delta round is not a full pass"
    );
    assert!(state.delta_link.is_some());

    // A due full pass keeps the deleted user and the data.
    let due = ImportOptions {
        full_sync_every: chrono::Duration::zero(),
        ..delta
    };
    let third = env.import(&mut sink, &due).await.unwrap();
    assert_eq!(third.full_reason, Some(FullReason::FullSyncDue));
    assert_live_users_match(&db, &s, &want).await;
    let still: bool = db
        .query_one(
            &format!("SELECT deleted FROM {s}.users WHERE id = $1"),
            &[&removed],
        )
        .await
        .unwrap()
        .get(0);
    assert!(still);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_cancelled_runs_leave_the_data_and_are_recorded() {
    let env = import::start(5_000).await;
    let (mut plain, schema) = sink("fail").await;
    let s = format!("\"{schema}\"");
    let db = client().await;
    let full = env.options(SyncMode::Full);
    let good = env.import(&mut plain, &full).await.unwrap();
    let digest = users_digest(&db, &s).await;

    // Sandbox faults halfway through.
    let (base, http) = (env.sandbox.base_url(), reqwest::Client::new());
    let hook: import::Hook = Arc::new(move || {
        let (base, http) = (base.clone(), http.clone());
        async move {
            import::control(
                &http,
                &base,
                "PUT",
                "/_sandbox/faults",
                Some(import::users_outage()),
            )
            .await;
        }
        .boxed()
    });
    let mut faulty = Interrupting {
        inner: plain,
        after_rows: 1_000,
        hook,
    };
    // A full pass through the users delta (200 users a page): the reader is at most three
    // batches ahead of the sink, so the outage starts well before the last page.
    let err = env
        .import(&mut faulty, &env.options(SyncMode::Delta))
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.reason() == "ServiceUnavailable",
        "{err}"
    );
    let mut plain = faulty.inner;
    assert_eq!(
        users_digest(&db, &s).await,
        digest,
        "the users are untouched"
    );
    assert_eq!(staged(&db, &s).await, 0);
    let history = runs(&db, &s).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].1, "failed");
    assert!(
        history[1]
            .2
            .as_deref()
            .unwrap()
            .contains("ServiceUnavailable"),
        "{history:?}"
    );
    assert_eq!(
        plain.state(TENANT).await.unwrap().unwrap().run_id,
        good.run_id
    );
    env.control("DELETE", "/_sandbox/faults", None).await;

    // A cancelled run (its future dropped halfway).
    let notify = Arc::new(tokio::sync::Notify::new());
    let signal = notify.clone();
    let hook: import::Hook = Arc::new(move || {
        signal.notify_one();
        async {}.boxed()
    });
    let mut cancelled = Interrupting {
        inner: plain,
        after_rows: 1_000,
        hook,
    };
    {
        let run = env.import(&mut cancelled, &full);
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => panic!("finished before it was cancelled: {r:?}"),
            _ = notify.notified() => {}
        }
    }
    let mut plain = cancelled.inner;
    assert_eq!(users_digest(&db, &s).await, digest);
    assert_eq!(
        runs(&db, &s).await[2].1,
        "running",
        "the cancelled run never finished"
    );

    // The next run clears it up and completes.
    let next = env.import(&mut plain, &full).await.unwrap();
    let history = runs(&db, &s).await;
    let statuses: Vec<&str> = history.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(statuses, ["succeeded", "failed", "abandoned", "succeeded"]);
    assert_eq!(staged(&db, &s).await, 0);
    assert_eq!(next.users, good.users);
    assert_live_users_match(&db, &s, &env.expected().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_consent_fails_permanently_and_keeps_the_data() {
    let mut env = import::start(300).await;
    let (mut sink, schema) = sink("revoked").await;
    let s = format!("\"{schema}\"");
    let db = client().await;
    let full = env.options(SyncMode::Full);
    env.import(&mut sink, &full).await.unwrap();
    let digest = users_digest(&db, &s).await;
    env.control(
        "POST",
        &format!(
            "/_sandbox/tenants/{TENANT}/consents/{}/revoke",
            defaults::PARTNER_CLIENT_ID
        ),
        None,
    )
    .await;
    env.renew_clients();
    let err = env.import(&mut sink, &full).await.unwrap_err();
    assert!(
        matches!(err, ImportError::Directory { .. }) && !err.is_transient(),
        "{err}"
    );
    // The new token carries no role at all: Graph's 401 "Either scp or roles claim…".
    assert_eq!(err.reason(), "NoPermissions");
    assert_eq!(users_digest(&db, &s).await, digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_per_tenant_holds_the_schema_and_the_schema_migrates_once() {
    let env = import::start(50).await;
    let (mut holder, schema) = sink("busy").await;
    let pg = support::postgres::get();
    let mut other = PostgresSink::connect(pg.url(), &schema).await.unwrap();
    let db = client().await;
    let versions: Vec<i32> = db
        .query(
            &format!("SELECT version FROM \"{schema}\".schema_migrations"),
            &[],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1], "connecting twice migrates once");
    let run = RunInfo {
        run_id: "20990101T000000000Z-00000001".into(),
        tenant_id: TENANT.into(),
        kind: RunKind::Full,
        started_at: chrono::Utc::now(),
    };
    let writer = holder.begin(&run).await.unwrap();
    match env.import(&mut other, &env.options(SyncMode::Full)).await {
        Err(ImportError::Sink(e @ SinkError::Busy { .. })) => assert!(e.is_transient()),
        other => panic!("expected Busy, got {other:?}"),
    }
    writer.abort("test").await;
    env.import(&mut other, &env.options(SyncMode::Full))
        .await
        .unwrap();
    let default = PostgresSink::connect(pg.url(), DEFAULT_SCHEMA)
        .await
        .unwrap();
    assert_eq!(default.schema(), "gdap_sync");
}

// TLS and passwords: the test server accepts only TLS with a SCRAM password (its pg_hba has
// `hostssl … scram-sha-256` and nothing else), so every connection that works above was one.

/// The test server's CA, as the operator reads it from a connection Secret.
fn ca_from_secret(pem: &str) -> Option<CaBundle> {
    Some(CaBundle {
        pem: pem.to_string(),
        origin: "Secret ns/db key ca.crt".into(),
    })
}

async fn connect(url: String, ca: Option<CaBundle>) -> Result<PostgresSink, SinkError> {
    let pg = support::postgres::local();
    PostgresSink::connect_to(
        &Connection {
            url: Secret::new(url),
            ca,
        },
        &pg.fresh_schema("tls"),
    )
    .await
}

async fn uses_tls(sink: &PostgresSink) -> bool {
    sink.client()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// A refusal's text, checked for the password.
fn refused(result: Result<PostgresSink, SinkError>) -> SinkError {
    let err = result.expect_err("the connection is refused");
    let text = err.to_string();
    assert!(
        !text.contains(support::postgres::local().password()),
        "the password is in the message: {text}"
    );
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_lands_over_verify_full_tls_with_a_password_and_the_ca_from_the_secret() {
    let pg = support::postgres::local();
    let env = import::start(50).await;
    let url = pg.url_with(Some(pg.password()), "127.0.0.1", "sslmode=verify-full");
    let mut sink = connect(url, ca_from_secret(pg.ca_pem().unwrap()))
        .await
        .unwrap();
    assert!(uses_tls(&sink).await);
    let report = env
        .import(&mut sink, &env.options(SyncMode::Full))
        .await
        .unwrap();
    assert_eq!(report.users, env.expected().await.counts);
    let s = format!("\"{}\"", sink.schema());
    assert_eq!(live_users(sink.client(), &s).await.len(), 50);
}

#[tokio::test]
async fn a_certificate_not_signed_by_the_given_ca_is_refused_in_words() {
    let pg = support::postgres::local();
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = pg.url_with(Some(pg.password()), "127.0.0.1", &format!("sslmode={mode}"));
        let err = refused(connect(url, ca_from_secret(pg.other_ca_pem())).await);
        assert!(
            matches!(err, SinkError::Tls(TlsError::UnknownIssuer { .. })),
            "{mode}: {err}"
        );
        assert!(!err.is_transient() && err.reason() == "SinkTLSRefused");
        let text = err.to_string();
        assert!(
            text.contains("not signed by the CA in Secret ns/db key ca.crt")
                && text.contains(&format!("sslmode={mode}")),
            "{text}"
        );
    }
    // Without a CA, verify-full trusts the system's CAs, which never signed the test CA.
    let url = pg.url_with(Some(pg.password()), "127.0.0.1", "sslmode=verify-full");
    let err = refused(connect(url, None).await).to_string();
    assert!(
        err.contains("not signed by any CA the system trusts"),
        "{err}"
    );
    // The CA by file, as libpq's sslrootcert, works as the Secret's.
    let url = pg.url_with(
        Some(pg.password()),
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", pg.ca_path().display()),
    );
    assert!(uses_tls(&connect(url, None).await.unwrap()).await);
}

#[tokio::test]
async fn a_host_name_not_in_the_certificate_is_refused_by_verify_full_and_allowed_by_verify_ca() {
    let pg = support::postgres::local();
    let ca = || ca_from_secret(pg.ca_pem().unwrap());
    // `hostaddr` reaches the server; the name is what TLS checks.
    let query = |mode: &str| format!("sslmode={mode}&hostaddr=127.0.0.1");
    let host = "db.example.test";
    let err = refused(
        connect(
            pg.url_with(Some(pg.password()), host, &query("verify-full")),
            ca(),
        )
        .await,
    );
    assert!(
        matches!(err, SinkError::Tls(TlsError::WrongHost { .. })),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("certificate is for localhost, 127.0.0.1 or ::1, not db.example.test")
            && text.contains("sslmode=verify-ca"),
        "{text}"
    );
    let sink = connect(
        pg.url_with(Some(pg.password()), host, &query("verify-ca")),
        ca(),
    )
    .await
    .unwrap();
    assert!(uses_tls(&sink).await);
    // `require` without a CA checks nothing (libpq's meaning): encrypted all the same.
    let sink = connect(
        pg.url_with(Some(pg.password()), host, &query("require")),
        None,
    )
    .await
    .unwrap();
    assert!(uses_tls(&sink).await);
    // `prefer` (also the default) takes TLS when the server offers it.
    let sink = connect(pg.url_with(Some(pg.password()), "127.0.0.1", ""), None)
        .await
        .unwrap();
    assert!(uses_tls(&sink).await);
}

#[tokio::test]
async fn a_wrong_or_missing_password_is_refused_by_the_server_in_words() {
    let pg = support::postgres::local();
    let ca = || ca_from_secret(pg.ca_pem().unwrap());
    let wrong = "not-the-password-4711";
    let err = connect(
        pg.url_with(Some(wrong), "127.0.0.1", "sslmode=verify-full"),
        ca(),
    )
    .await
    .expect_err("a wrong password is refused");
    let text = err.to_string();
    assert!(matches!(err, SinkError::Postgres { .. }), "{text}");
    assert!(!err.is_transient(), "{text}");
    assert!(
        text.contains("password authentication failed for user \"gdap\"")
            && text.contains("check the user and password"),
        "{text}"
    );
    assert!(!text.contains(wrong), "{text}");
    let err = refused(connect(pg.url_with(None, "127.0.0.1", "sslmode=verify-full"), ca()).await);
    assert!(matches!(err, SinkError::Config(_)), "{err}");
    assert!(err.to_string().contains("asks for a password"), "{err}");
}

#[tokio::test]
async fn sslmode_disable_is_refused_by_a_server_that_accepts_only_tls() {
    let pg = support::postgres::local();
    let err = refused(
        connect(
            pg.url_with(Some(pg.password()), "127.0.0.1", "sslmode=disable"),
            None,
        )
        .await,
    );
    let text = err.to_string();
    assert!(!err.is_transient(), "{text}");
    assert!(
        text.contains("no encryption") && text.contains("accepts only TLS connections"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unknown_sslmode_is_a_configuration_error_that_names_the_accepted_ones() {
    let pg = support::postgres::local();
    let err = refused(
        connect(
            pg.url_with(Some(pg.password()), "127.0.0.1", "sslmode=verify_full"),
            None,
        )
        .await,
    );
    assert!(
        matches!(err, SinkError::Config(_)) && !err.is_transient(),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("sslmode=\"verify_full\"")
            && text.contains("disable, prefer, require, verify-ca, verify-full"),
        "{text}"
    );
}
