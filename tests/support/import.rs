//! The tenant-import harness: an in-process sandbox whose Northwind has a chosen number of
//! generated users, the real Microsoft clients pointed at it, and the expected outcome computed
//! *independently* of the engine — by listing the tenant through Graph with the plain client.

use futures::TryStreamExt;
use futures::future::BoxFuture;
use gdap_operator::microsoft::models::directory::{CompanySubscription, SubscribedSku, User};
use gdap_operator::microsoft::pacing::PaceEvent;
use gdap_operator::microsoft::{
    AppToken, Endpoints, MicrosoftClients, PartnerCredentials, RetryEvent, RetryPolicy,
    TokenOptions, TransportConfig, UserQuery, rotation_fn,
};
use gdap_operator::sandbox::{Fixture, Sandbox, SandboxOptions, UsersFixture, defaults};
use gdap_operator::sync::sink::{Commit, RunInfo, RunWriter, Sink, SyncState};
use gdap_operator::sync::{
    ImportError, ImportOptions, ImportReport, SinkError, UserCounts, rows::UserRecord, run_import,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The tenant the import tests read: Northwind, with a chosen number of generated users.
pub const TENANT: &str = defaults::NORTHWIND_TENANT_ID;

/// A sandbox and clients.
pub struct ImportEnv {
    pub sandbox: Sandbox,
    pub clients: MicrosoftClients,
    pub retries: Arc<Mutex<Vec<RetryEvent>>>,
    pub paces: Arc<Mutex<Vec<PaceEvent>>>,
    http: reqwest::Client,
    retry: RetryPolicy,
}

/// The built-in fixture with `users` generated users in Northwind.
pub fn fixture(users: u64) -> Fixture {
    let mut fixture = Fixture::builtin();
    let northwind = fixture
        .customers
        .iter_mut()
        .find(|c| c.tenant_id == TENANT)
        .expect("Northwind is in the built-in fixture");
    northwind.users = UsersFixture::Generated {
        generate: users,
        seed: defaults::NORTHWIND_SEED,
    };
    fixture
}

/// A sandbox with `users` users in Northwind, and clients with a short retry budget (tests
/// must fail fast when a fault is meant to stop a run).
pub async fn start(users: u64) -> ImportEnv {
    start_with(users, |_| {}).await
}

/// Like [`start`], with sandbox options changed by `tune`.
pub async fn start_with(users: u64, tune: impl FnOnce(&mut SandboxOptions)) -> ImportEnv {
    let mut options = SandboxOptions {
        fixture: fixture(users),
        // The import engine's tests change users and read them back at once; the operator's
        // end-to-end imports (e2e_sync) run with the sandbox's lag.
        consistency: gdap_operator::sandbox::Consistency::immediate(),
        ..SandboxOptions::default()
    };
    tune(&mut options);
    let sandbox = Sandbox::start(options).await.expect("sandbox starts");
    let retry = RetryPolicy {
        max_attempts: 4,
        max_elapsed: Duration::from_secs(20),
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
    };
    let retries = Arc::new(Mutex::new(Vec::new()));
    let paces = Arc::new(Mutex::new(Vec::new()));
    ImportEnv {
        clients: clients(&sandbox.base_url(), retry.clone(), &retries, &paces),
        sandbox,
        retries,
        paces,
        http: reqwest::Client::new(),
        retry,
    }
}

/// Clients of the built-in partner for a sandbox at `base_url`, recording retries and pauses.
pub fn clients(
    base_url: &str,
    retry: RetryPolicy,
    retries: &Arc<Mutex<Vec<RetryEvent>>>,
    paces: &Arc<Mutex<Vec<PaceEvent>>>,
) -> MicrosoftClients {
    let endpoints = Endpoints::local(base_url, None).unwrap();
    let mut config = TransportConfig::new(endpoints);
    config.retry = retry;
    let (r, p) = (retries.clone(), paces.clone());
    config.retry_observer = Some(Arc::new(move |e: &RetryEvent| {
        r.lock().unwrap().push(e.clone())
    }));
    config.pace_observer = Some(Arc::new(move |e: &PaceEvent| {
        p.lock().unwrap().push(e.clone())
    }));
    let credentials = PartnerCredentials {
        partner_tenant_id: defaults::PARTNER_TENANT_ID.into(),
        client_id: defaults::PARTNER_CLIENT_ID.into(),
        client_credential: defaults::PARTNER_CLIENT_SECRET.into(),
        refresh_token: defaults::PARTNER_REFRESH_TOKEN.into(),
        refresh_token_issued_at: Some(chrono::Utc::now()),
    };
    let rotation = rotation_fn(|_| async { Ok(()) });
    MicrosoftClients::new(config, credentials, rotation, TokenOptions::default()).unwrap()
}

impl ImportEnv {
    /// New clients (a new token cache): the next app token is issued afresh.
    pub fn renew_clients(&mut self) {
        self.clients = clients(
            &self.sandbox.base_url(),
            self.retry.clone(),
            &self.retries,
            &self.paces,
        );
    }

    /// The app-only token for the tenant.
    pub fn token(&self) -> AppToken {
        self.clients.tokens.app_token(TENANT)
    }

    /// Options of the given mode, with the partner's tenant id.
    pub fn options(&self, mode: gdap_operator::api::SyncMode) -> ImportOptions {
        ImportOptions {
            mode,
            partner_tenant_id: Some(defaults::PARTNER_TENANT_ID.into()),
            ..ImportOptions::default()
        }
    }

    /// Runs one import of the tenant.
    pub async fn import(
        &self,
        sink: &mut dyn Sink,
        options: &ImportOptions,
    ) -> Result<ImportReport, ImportError> {
        run_import(
            self.clients.directory.as_ref(),
            &self.token(),
            TENANT,
            options,
            sink,
        )
        .await
    }

    /// Calls the sandbox's control API; returns the status and the JSON answer.
    pub async fn control(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        control(&self.http, &self.sandbox.base_url(), method, path, body).await
    }

    /// The request log: (method, path, status, priority).
    pub async fn requests(&self) -> Vec<(String, String, u16, Option<String>)> {
        let (_, v) = self.control("GET", "/_sandbox/requests", None).await;
        v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["method"].as_str().unwrap().to_string(),
                    e["path"].as_str().unwrap().to_string(),
                    e["status"].as_u64().unwrap() as u16,
                    e["priority"].as_str().map(str::to_string),
                )
            })
            .collect()
    }

    /// What an import should find, read with the plain client (not the engine).
    pub async fn expected(&self) -> Expected {
        expected_of(&self.clients, TENANT).await
    }
}

/// What an import of `tenant` should find, read with the plain client `clients` (not the
/// engine).
pub async fn expected_of(clients: &MicrosoftClients, tenant: &str) -> Expected {
    let token = clients.tokens.app_token(tenant);
    let dir = &clients.directory;
    let query = UserQuery {
        select: ImportOptions::default().select(),
        top: Some(999),
        filter: None,
    };
    let users: Vec<User> = dir.users(&token, &query).try_collect().await.unwrap();
    let skus = dir.subscribed_skus(&token).await.unwrap();
    let subscriptions = dir.subscriptions(&token).await.unwrap();
    Expected::new(users, skus, subscriptions)
}

/// Calls a sandbox control API.
pub async fn control(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method.parse().unwrap(), format!("{base}{path}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("control API reachable");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The tenant as Graph lists it.
pub struct Expected {
    /// Users by id.
    pub users: BTreeMap<String, User>,
    /// Counts by the report's definitions, computed here from the raw users.
    pub counts: UserCounts,
    /// Users holding each SKU.
    pub holders: BTreeMap<String, i64>,
    /// The subscribed SKUs.
    pub skus: Vec<SubscribedSku>,
    /// The subscriptions.
    pub subscriptions: Vec<CompanySubscription>,
}

impl Expected {
    fn new(
        list: Vec<User>,
        skus: Vec<SubscribedSku>,
        subscriptions: Vec<CompanySubscription>,
    ) -> Expected {
        let mut counts = UserCounts::default();
        let mut holders: BTreeMap<String, i64> = BTreeMap::new();
        for u in &list {
            let licences = u.assigned_licenses.clone().unwrap_or_default();
            counts.total += 1;
            if u.account_enabled == Some(true) {
                counts.enabled += 1;
            }
            if !licences.is_empty() {
                counts.licensed += 1;
                if u.account_enabled == Some(false) {
                    counts.disabled_licensed += 1;
                }
            }
            if u.user_type.as_deref() == Some("Guest") {
                counts.guests += 1;
            }
            for l in licences {
                *holders.entry(l.sku_id).or_default() += 1;
            }
        }
        let users: BTreeMap<String, User> = list.into_iter().map(|u| (u.id.clone(), u)).collect();
        Expected {
            users,
            counts,
            holders,
            skus,
            subscriptions,
        }
    }

    /// Licences in the `Enabled` subscriptions of a SKU (what the fixture says was bought).
    pub fn enabled_licences(&self, sku_id: &str) -> i64 {
        self.subscriptions
            .iter()
            .filter(|s| {
                s.sku_id.as_deref() == Some(sku_id) && s.status.as_deref() == Some("Enabled")
            })
            .map(|s| i64::from(s.total_licenses))
            .sum()
    }
}

/// Runs a hook once, when a run has handed its sink at least `after_rows` users.
pub type Hook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A sink that passes everything to `inner` and runs `hook` once mid-run.
pub struct Interrupting<S> {
    pub inner: S,
    pub after_rows: usize,
    pub hook: Hook,
}

struct InterruptingRun<'s> {
    inner: Box<dyn RunWriter + 's>,
    after_rows: usize,
    seen: usize,
    hook: Option<Hook>,
}

#[async_trait::async_trait]
impl<S: Sink> Sink for Interrupting<S> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn state(&mut self, tenant_id: &str) -> Result<Option<SyncState>, SinkError> {
        self.inner.state(tenant_id).await
    }
    async fn begin<'s>(&'s mut self, run: &RunInfo) -> Result<Box<dyn RunWriter + 's>, SinkError> {
        Ok(Box::new(InterruptingRun {
            inner: self.inner.begin(run).await?,
            after_rows: self.after_rows,
            seen: 0,
            hook: Some(self.hook.clone()),
        }))
    }
}

#[async_trait::async_trait]
impl RunWriter for InterruptingRun<'_> {
    async fn users(&mut self, batch: &[UserRecord]) -> Result<(), SinkError> {
        self.inner.users(batch).await?;
        self.seen += batch.len();
        if self.seen >= self.after_rows
            && let Some(hook) = self.hook.take()
        {
            hook().await;
        }
        Ok(())
    }
    async fn commit(self: Box<Self>, commit: Commit<'_>) -> Result<UserCounts, SinkError> {
        self.inner.commit(commit).await
    }
    async fn abort(self: Box<Self>, error: &str) {
        self.inner.abort(error).await
    }
}

/// Sandbox faults that fail every users request with 503 (and no Retry-After).
pub fn users_outage() -> Value {
    serde_json::json!({"rules": [{"pathPrefix": "/v1.0/users", "rate": 1.0, "statuses": [503]}]})
}
