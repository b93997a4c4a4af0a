//! The sandbox: a stateful emulator of Microsoft's login (Entra v2.0 token endpoint),
//! Microsoft Graph (GDAP and directory) and Partner Center (application consents), served on one
//! loopback listener (`gdap-operator sandbox`, or in-process with [`Sandbox::start`]).
//!
//! Contract: paths are Microsoft's own — `/{tenant}/oauth2/v2.0/token`,
//! `/{tenant}/v2.0/.well-known/openid-configuration`, `/v1.0/...`, `/v1/customers/...` — plus the
//! control API under `/_sandbox/` (not Microsoft's). Links the sandbox returns (`@odata.nextLink`,
//! `Location`, ...) point back at the scheme and host of the request. Tokens carry the real
//! resource URIs as audience. Behaviour where Microsoft is silent is documented in
//! `docs/sandbox.md`.
//!
//! Module map, in layers (a module imports only from its own layer or the ones above it, so no
//! two files import each other):
//! - Model: `defaults`/`fixture`/`fixture_gdap`/`scale`/`generate`/`ids` (initial world: fixture
//!   relationships, the generated scale estate, generated users, derived ids), `options`
//!   ([`SandboxOptions`]), `state` (the world's data), `consistency` (delays and lag tables),
//!   `visibility` (what readers see under those delays), `user_list`/`licences` (a tenant's
//!   users), `signin_state`/`signin_fault` (pending sign-ins and codes, sign-in errors),
//!   `gdap_model` (GDAP wire model), `gdap_seed` (fixture relationships into the world),
//!   `lifecycle` (time-driven transitions), `catalog`, `scope`, `odata` (query options, page
//!   tokens), `jwt`, `entra`, `faults` (throttling, fault injection, request log), `conn`
//!   (connections a fault can cut), `clock`, `tls`, `webhook_model` (webhook registration and
//!   event bodies), `webhook_sign` (the signing CA, certificate and key), `webhook_view` (what
//!   readers see, and its changes as events), `webhook_deliver` (signed deliveries, retries).
//! - Shared state and HTTP: `context` (shared state), `http` (error envelopes, body helpers,
//!   fault/log middleware), `auth` (token checks), `webhook_emit` (the task that emits events).
//! - Endpoints: `token`/`assertion`/`signin` (login, client assertions, interactive sign-in:
//!   device code and authorization code with PKCE), `gdap`/`gdap_requests`/`gdap_assign` (Graph
//!   GDAP), `directory`/`users`/`apps`/`batch` (Graph directory), `me` (the partner user's
//!   groups), `groups`/`applications` (the partner tenant's groups and app registrations),
//!   `partner_center`/`pc_customers`, `webhooks` (webhook registration), `control`/
//!   `control_webhooks` (`/_sandbox/`).
//! - `router` mounts every endpoint module; this module starts the server.

mod applications;
mod apps;
mod assertion;
mod auth;
mod batch;
mod catalog;
mod clock;
mod conn;
mod consistency;
mod context;
mod control;
mod control_customers;
mod control_error;
mod control_webhooks;
pub mod defaults;
mod directory;
mod entra;
mod faults;
mod fixture;
mod fixture_gdap;
mod gdap;
mod gdap_assign;
mod gdap_model;
mod gdap_requests;
mod gdap_seed;
mod generate;
mod groups;
mod http;
mod ids;
mod jwt;
mod licences;
mod lifecycle;
mod me;
mod odata;
mod options;
mod partner_center;
mod pc_customers;
mod quiet_list;
mod router;
pub mod scale;
mod scope;
mod signin;
mod signin_fault;
mod signin_state;
mod state;
mod tls;
mod token;
mod user_list;
mod users;
mod visibility;
mod webhook_deliver;
mod webhook_emit;
mod webhook_model;
mod webhook_sign;
mod webhook_view;
mod webhooks;

pub use consistency::{Consistency, Delay, ReadLag};
pub use faults::ThrottleOptions;
pub use fixture::skus;
pub use fixture::{
    AppFixture, AssignmentFixture, ConsentFixture, CustomerFixture, Fixture, GroupFixture,
    PartnerFixture, PartnerUserFixture, RefreshTokenFixture, RelationshipFixture,
    ResourcePermissions, SkuFixture, SubscriptionFixture, UsersFixture,
};
pub use options::SandboxOptions;
pub use scale::Scale;

use clap::Args;
use context::Shared;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Command-line options of `gdap-operator sandbox`.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
    /// Fixture file (YAML); the built-in fixture is used when absent.
    #[arg(long)]
    pub fixture: Option<PathBuf>,
    /// Add a generated partner estate to the fixture: --scale-customers customer tenants and
    /// --scale-relationships GDAP relationships in mixed states (active with access assignments,
    /// awaiting approval, created, terminated, expired), the same on every start.
    #[arg(long)]
    pub scale_fixture: bool,
    /// Customer tenants of --scale-fixture.
    #[arg(long, default_value_t = 1000, requires = "scale_fixture")]
    pub scale_customers: usize,
    /// GDAP relationships of --scale-fixture (spread round robin over the customers).
    #[arg(long, default_value_t = 1500, requires = "scale_fixture")]
    pub scale_relationships: usize,
    /// Persist the state in this file (loaded on start when it exists).
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Serve HTTPS: generate a CA and a serving certificate into DIR (writes DIR/ca.pem).
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// Approve relationships as the customer this many seconds after `lockForApproval`.
    #[arg(long)]
    pub auto_approve_after: Option<f64>,
    /// Seconds before access assignments and relationships move from pending to active.
    #[arg(long, default_value_t = 1.0)]
    pub activation_delay: f64,
    /// Requests allowed per app and tenant in each throttle window (0 disables throttling).
    #[arg(long, default_value_t = 2000)]
    pub throttle_budget: u32,
    /// Length of the throttle window in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub throttle_window: f64,
    /// Lifetime of access tokens in seconds.
    #[arg(long, default_value_t = 3599)]
    pub token_lifetime: u64,
    /// Poll interval of the device code flow in seconds (Entra: 5; tests use 1).
    #[arg(long, default_value_t = 5, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub device_code_interval: u64,
    /// Seconds before a failed webhook delivery is retried; doubles after each failure (at most
    /// an hour), 10 attempts in all.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub webhook_retry_base: f64,
    /// Microsoft's eventual consistency (on by default; docs/sandbox.md "Consistency").
    #[command(flatten)]
    pub consistency: ConsistencyArgs,
}

/// Command-line options of the consistency model. Delays are `SECONDS` or `MIN-MAX` seconds,
/// drawn per write from the range.
#[derive(Debug, Clone, Args)]
pub struct ConsistencyArgs {
    /// Every delay 0: each write visible and effective at once (kinder than Microsoft).
    #[arg(long, conflicts_with_all = ["read_lag", "consent_propagation", "gdap_propagation"])]
    pub immediate: bool,
    /// Read lag of every resource family (a write is visible to other reads this much later).
    #[arg(long, value_name = "MIN-MAX", default_value = "1-5", value_parser = Delay::parse)]
    pub read_lag: Delay,
    /// Read lag of GDAP relationships and access assignments (overrides --read-lag).
    #[arg(long, value_name = "MIN-MAX", value_parser = Delay::parse)]
    pub read_lag_gdap: Option<Delay>,
    /// Read lag of service principals (overrides --read-lag).
    #[arg(long, value_name = "MIN-MAX", value_parser = Delay::parse)]
    pub read_lag_service_principals: Option<Delay>,
    /// Read lag of delegated grants and app role assignments (overrides --read-lag).
    #[arg(long, value_name = "MIN-MAX", value_parser = Delay::parse)]
    pub read_lag_grants: Option<Delay>,
    /// Read lag of users written through the control API (overrides --read-lag).
    #[arg(long, value_name = "MIN-MAX", value_parser = Delay::parse)]
    pub read_lag_users: Option<Delay>,
    /// From a consent (grant or app role assignment) to its use in tokens.
    #[arg(long, value_name = "MIN-MAX", default_value = "15-90", value_parser = Delay::parse)]
    pub consent_propagation: Delay,
    /// From an access assignment turning active (or ending) to the partner user's access in
    /// the customer starting (or ending).
    #[arg(long, value_name = "MIN-MAX", default_value = "15-90", value_parser = Delay::parse)]
    pub gdap_propagation: Delay,
    /// Seed of the delays drawn.
    #[arg(long, default_value_t = 0)]
    pub consistency_seed: u64,
    /// Retire a redeemed refresh token once its successor is used (Entra does not).
    #[arg(long)]
    pub strict_refresh_tokens: bool,
}

impl ConsistencyArgs {
    /// The consistency model these options describe.
    pub fn to_consistency(&self) -> Consistency {
        let mut c = if self.immediate {
            Consistency::immediate()
        } else {
            let lag = self.read_lag;
            Consistency {
                read_lag: ReadLag {
                    gdap: self.read_lag_gdap.unwrap_or(lag),
                    service_principals: self.read_lag_service_principals.unwrap_or(lag),
                    grants: self.read_lag_grants.unwrap_or(lag),
                    users: self.read_lag_users.unwrap_or(lag),
                },
                consent_propagation: self.consent_propagation,
                gdap_propagation: self.gdap_propagation,
                ..Consistency::microsoft()
            }
        };
        c.seed = self.consistency_seed;
        c.strict_refresh_tokens = self.strict_refresh_tokens;
        c
    }
}

/// A running sandbox. Dropping it also stops the server (without writing the state file);
/// [`Sandbox::shutdown`] stops it and persists.
pub struct Sandbox {
    base_url: String,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    webhooks: AbortOnDrop,
}

/// A background task that ends when its owner is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Sandbox {
    /// Binds the listener and serves in a background task.
    pub async fn start(options: SandboxOptions) -> anyhow::Result<Sandbox> {
        options
            .consistency
            .check()
            .map_err(|e| anyhow::anyhow!("consistency {e}"))?;
        let mut world: state::World = match &options.state_file {
            Some(path) if path.exists() => serde_json::from_slice(&std::fs::read(path)?)
                .map_err(|e| anyhow::anyhow!("state file {}: {e}", path.display()))?,
            _ => state::World::from_fixture(&options.fixture, chrono::Utc::now()),
        };
        world.consistency = options.consistency.clone();
        let tcp = tokio::net::TcpListener::bind(options.listen).await?;
        let addr = tcp.local_addr()?;
        let tls = options.tls_dir.as_deref().map(tls::generate).transpose()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared::new(world, options, scheme)?);
        shared.webhooks.set_base(&format!("{scheme}://{addr}"));
        let webhooks = AbortOnDrop(webhook_emit::spawn(shared.clone()));
        let app = router::router(shared.clone()).into_make_service_with_connect_info::<conn::Cut>();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let task = match tls {
            Some(material) => {
                let listener = conn::Cuttable(tls::TlsListener::new(tcp, material.config)?);
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await;
                })
            }
            None => tokio::spawn(async move {
                let _ = axum::serve(conn::Cuttable(tcp), app)
                    .with_graceful_shutdown(shutdown)
                    .await;
            }),
        };
        let base_url = format!("{scheme}://{addr}");
        Ok(Sandbox {
            base_url,
            ca_pem,
            shared,
            stop,
            task,
            webhooks,
        })
    }

    /// Base URL of login, Graph (`{base}/v1.0`) and Partner Center (`{base}/v1`).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The CA certificate (PEM) when TLS is on.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Stops serving, persists the state file if one is set, and waits for the server task.
    pub async fn shutdown(self) {
        drop(self.webhooks);
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        self.shared.persist();
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl SandboxArgs {
    /// Turns command-line options into [`SandboxOptions`].
    pub fn to_options(&self) -> anyhow::Result<SandboxOptions> {
        let mut fixture = match &self.fixture {
            Some(path) => Fixture::from_file(path)?,
            None => Fixture::builtin(),
        };
        if self.scale_fixture {
            fixture = fixture.with_scale(Scale {
                customers: self.scale_customers,
                relationships: self.scale_relationships,
            });
            fixture.check()?;
        }
        Ok(SandboxOptions {
            listen: self
                .listen
                .parse()
                .map_err(|e| anyhow::anyhow!("--listen {}: {e}", self.listen))?,
            fixture,
            tls_dir: self.tls_dir.clone(),
            auto_approve_after: self.auto_approve_after.map(secs),
            assignment_activation_delay: secs(self.activation_delay),
            state_file: self.state_file.clone(),
            throttle: ThrottleOptions {
                budget: self.throttle_budget,
                window: secs(self.throttle_window),
            },
            token_lifetime: Duration::from_secs(self.token_lifetime),
            consistency: self.consistency.to_consistency(),
            device_code_interval: Duration::from_secs(self.device_code_interval),
            webhook_retry_base: secs(self.webhook_retry_base),
            ..SandboxOptions::default()
        })
    }
}

/// Runs the sandbox until interrupted (Ctrl-C or SIGTERM).
pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let options = args.to_options()?;
    let tls_dir = options.tls_dir.clone();
    let sandbox = Sandbox::start(options).await?;
    println!("sandbox listening on {}", sandbox.base_url());
    if let Some(dir) = tls_dir {
        println!("CA certificate: {}", dir.join("ca.pem").display());
    }
    wait_for_signal().await;
    sandbox.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
