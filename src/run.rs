//! `gdap-operator run`: the operator process. Watches the custom resources (in all namespaces or
//! the ones given), reconciles them, and serves health and metrics. With `--leader-elect` the
//! controllers run only while this replica leads (`crate::leader`).
//!
//! [`run`] is a list of steps; the controllers' assembly lives in `run/`: `scope` (where they
//! watch, and routing to the scope), `watch` (trimmed, paged caches and their readiness) and
//! `controllers` (the four controllers of one scope).

pub mod allocator;
mod controllers;
mod scope;
mod unlisted_stop;
mod watch;
mod webhook_triggers;

use crate::controllers::context::{Context, MANAGER, Settings};
use crate::controllers::credentials::CredentialsCache;
use crate::controllers::events::EventRecorder;
use crate::controllers::limit::{DEFAULT_RECONCILE_CONCURRENCY, Limits};
use crate::controllers::secrets_by_name::SecretCheck;
use crate::controllers::tenant_sync::Runner;
use crate::controllers::timing::ConsentIntervals;
use crate::controllers::timing::Timing;
use crate::leader::{ElectionArgs, Leadership};
use crate::metrics::{CallLabels, Metrics};
use crate::microsoft::transport::CallRecord;
use crate::microsoft::{EndpointArgs, TokenMetrics, TokenOptions, TransportConfig};
use crate::server::{self, ServerState};
use crate::shutdown::Shutdown;
use crate::telemetry::{self, LogFormat};
use anyhow::Context as _;
use clap::Args;
use controllers::mark_ready_when_listed;
use kube::Client;
use kube::runtime::events::Reporter;
use scope::{Scope, route_secret_checks, route_to_scopes};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webhook_triggers::Triggers;

/// Options of `gdap-operator run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Kubeconfig to use (default: in-cluster configuration, then $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "GDAP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespaces to watch, comma-separated (default: all namespaces).
    #[arg(long = "namespaces", env = "GDAP_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Default credentials Secret for objects without spec.credentialsRef: `name` (looked up in each
    /// object's own namespace) or `namespace/name` (a default only for objects in that namespace).
    #[arg(long, env = "GDAP_CREDENTIALS_SECRET")]
    pub credentials_secret: Option<String>,
    /// Microsoft endpoints.
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "GDAP_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log level or filter (RUST_LOG syntax; RUST_LOG wins when set).
    #[arg(long, default_value = "info", env = "GDAP_LOG_LEVEL")]
    pub log_level: String,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080", env = "GDAP_METRICS_ADDRESS")]
    pub metrics_address: SocketAddr,
    /// How soon to look again while Microsoft or the customer is working (e.g. 30s).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
    /// How often to re-read steady objects, which detects out-of-band changes (e.g. 10m).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub resync_interval: Duration,
    /// How long deletion waits for Microsoft to finish a termination.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub termination_timeout: Duration,
    /// How long the operator waits for Microsoft to show one of its own writes (a relationship,
    /// an access assignment, a consent) or to propagate access before it reports the wait as a
    /// failure. Microsoft is eventually consistent: until then such a wait is `Propagating`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub propagation_timeout: Duration,
    /// How often each active GdapRelationship checks that the partner user's delegated access to
    /// the customer works (a delegated Graph token for the customer tenant and one read there;
    /// condition AccessVerified). The first check comes 15 minutes (or one interval, if shorter)
    /// after the access assignments turned active; the last check's time is kept in status, so a
    /// restart does not check every relationship at once. 0 turns the check off.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub access_verify_interval: Duration,
    /// How long a refused access assignment waits before it is tried again.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub failed_assignment_retry: Duration,
    /// Leader election between replicas.
    #[command(flatten)]
    pub election: ElectionArgs,
    /// How often a complete application consent is verified in the customer tenant (its service
    /// principal, delegated grants and application permissions); a revocation is noticed within it.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub consent_verify_interval: Duration,
    /// How long a relationship must have given the partner user a consent-capable role before
    /// the first consent (Microsoft needs time to propagate a new relationship or assignment).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub consent_settle_time: Duration,
    /// How many tenant imports (TenantSync) run at once in this process; the others wait.
    #[arg(long, default_value_t = 4, env = "GDAP_SYNC_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub sync_concurrency: u16,
    /// How many objects of each kind are reconciled at once in each watched namespace (or the
    /// cluster); 0 is no limit. The limit bounds the burst of Kubernetes and Microsoft requests
    /// after a start, when every watched object is reconciled, and the memory glibc keeps of it.
    /// Waiting objects go first come, first served; a reconcile waiting out Microsoft's
    /// Retry-After keeps its place meanwhile.
    #[arg(long, default_value_t = DEFAULT_RECONCILE_CONCURRENCY, env = "GDAP_RECONCILE_CONCURRENCY", value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub reconcile_concurrency: u16,
    /// Partner Center webhooks.
    #[command(flatten)]
    pub webhooks: crate::webhook::WebhookArgs,
}

/// Runs the operator until SIGTERM or Ctrl-C: one step after the other, each a function below.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format, &args.log_level);
    let shutdown = Shutdown::listen().context("installing the SIGTERM and SIGINT handlers")?;
    let config = kube_config(args.kubeconfig.as_deref()).await?;
    let client = Client::try_from(config.clone())?;
    let (metrics, token_metrics) = operator_metrics();
    let leadership = Leadership::new(&args.election, &config, metrics.leader.clone())?;
    let transport = microsoft_transport(&args.endpoints, &metrics)?;
    let listener = bind_health_and_metrics(args.metrics_address).await?;
    let (ctx, checks) = context(&args, &client, &metrics, transport, token_metrics);
    let ready = Arc::new(AtomicBool::new(false));
    let triggers = Triggers::new();
    triggers.act_when(leadership.readiness(ready.clone()));
    let webhooks =
        crate::webhook::bind(&args.webhooks, metrics.webhooks.clone(), triggers.clone()).await?;
    let server = tokio::spawn(server::serve(
        listener,
        ServerState {
            metrics,
            readiness: leadership.readiness(ready.clone()),
        },
    ));
    let receiver =
        webhooks.map(|(listener, router)| tokio::spawn(crate::webhook::serve(listener, router)));
    let controllers = start_controllers(&args, &client, ctx, checks, ready, &triggers, &shutdown);
    until_stopped(leadership, controllers, server, receiver, &shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The operator's metrics, with the token provider's registered among them.
fn operator_metrics() -> (Arc<Metrics>, TokenMetrics) {
    let token_metrics = TokenMetrics::default();
    let metrics = Arc::new(Metrics::with_extra(|r| token_metrics.register(r)));
    (metrics, token_metrics)
}

/// The transport to Microsoft's endpoints, counting every call in `gdap_microsoft_calls_total`.
fn microsoft_transport(
    endpoints: &EndpointArgs,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<TransportConfig> {
    let endpoints = endpoints.resolve().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut transport = TransportConfig::new(endpoints);
    let call_metrics = metrics.clone();
    transport.call_observer = Some(Arc::new(move |call: &CallRecord| {
        let status = call
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "error".into());
        let labels = CallLabels {
            service: call.service.into(),
            method: call.method.clone(),
            status,
        };
        call_metrics.microsoft_calls.get_or_create(&labels).inc();
    }));
    Ok(transport)
}

/// The listener of /healthz, /readyz and /metrics, bound before anything starts so a taken port
/// fails the start.
async fn bind_health_and_metrics(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| {
        format!("cannot serve /healthz, /readyz and /metrics on --metrics-address {address}")
    })
}

/// The settings the reconciles read, from the flags.
fn settings(args: &RunArgs) -> Settings {
    Settings {
        default_credentials_secret: args.credentials_secret.clone(),
        timing: Timing {
            poll: args.poll_interval,
            resync: args.resync_interval,
            termination_timeout: args.termination_timeout,
            failed_retry: args.failed_assignment_retry,
            propagation_timeout: args.propagation_timeout,
            access_verify: args.access_verify_interval,
        },
        consent: ConsentIntervals {
            verify: args.consent_verify_interval,
            settle: args.consent_settle_time,
        },
    }
}

/// What every controller shares: the clients, the event recorder, the metrics, the credentials
/// cache and the channel of Secret checks (its receiving end is returned beside it).
fn context(
    args: &RunArgs,
    client: &Client,
    metrics: &Arc<Metrics>,
    transport: TransportConfig,
    token_metrics: TokenMetrics,
) -> (Arc<Context>, mpsc::UnboundedReceiver<SecretCheck>) {
    let (secret_checks, checks) = mpsc::unbounded_channel();
    let token_options = TokenOptions {
        metrics: token_metrics,
        ..Default::default()
    };
    let settings = settings(args);
    let credentials = CredentialsCache::new(
        client.clone(),
        transport,
        token_options,
        settings.timing.secret_watch_idle(),
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: EventRecorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        metrics: metrics.clone(),
        credentials,
        settings,
        secret_checks: Some(secret_checks),
        unrecorded_failures: Default::default(),
        own_writes: Default::default(),
    });
    (ctx, checks)
}

/// Builds every controller of every watched scope and returns them as one future, which ends
/// when they have all stopped or at a second signal. `ready` turns true once all their caches
/// are listed.
fn start_controllers(
    args: &RunArgs,
    client: &Client,
    ctx: Arc<Context>,
    checks: mpsc::UnboundedReceiver<SecretCheck>,
    ready: Arc<AtomicBool>,
    triggers: &Triggers,
    shutdown: &Shutdown,
) -> impl Future<Output = ()> + use<> {
    let scopes = Scope::all_of(&args.namespaces);
    let routes = route_secret_checks(checks, &scopes);
    let (runner, ended) = Runner::new(usize::from(args.sync_concurrency), ctx.metrics.clone());
    let sync_routes = route_to_scopes(ended, &scopes);
    let limits = Limits::new(
        args.reconcile_concurrency,
        ctx.metrics.reconciles_waiting.clone(),
    );
    tracing::info!(namespaces = ?args.namespaces, sync_concurrency = args.sync_concurrency, reconcile_concurrency = args.reconcile_concurrency, "starting the GdapRelationship, AppConsent, TenantSync, GdapFleet and credentials controllers");
    let shared = controllers::Shared {
        client,
        ctx,
        runner,
        limits: &limits,
        shutdown,
        triggers,
    };
    let (runs, stores): (Vec<_>, Vec<_>) = scopes
        .iter()
        .zip(routes)
        .zip(sync_routes)
        .flat_map(|((scope, checks), ended)| controllers::of_scope(&shared, scope, checks, ended))
        .unzip();
    tokio::spawn(mark_ready_when_listed(stores, ready));
    tokio::spawn(limits.close_on_shutdown(shutdown.clone()));
    let shutdown = shutdown.clone();
    async move {
        tokio::select! {
            _ = futures::future::join_all(runs) => {}
            // A second signal: stop without waiting for the reconciles in flight.
            _ = shutdown.forced() => {}
        }
    }
}

/// Runs the controllers while this process leads (always, without --leader-elect) until they
/// stop; a stop of the health and metrics server, or of the webhook receiver, is an error.
async fn until_stopped(
    leadership: Leadership,
    controllers: impl Future<Output = ()>,
    server: JoinHandle<anyhow::Result<()>>,
    receiver: Option<JoinHandle<anyhow::Result<()>>>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let receiver = async move {
        match receiver {
            Some(handle) => stopped("the webhook receiver", handle.await),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        result = leadership.run(controllers, shutdown) => result,
        result = server => stopped("the health and metrics server", result),
        result = receiver => result,
    }
}

/// The error of a server task that ended (it never ends by itself).
fn stopped(
    what: &str,
    result: Result<anyhow::Result<()>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match result {
        Ok(Err(e)) => Err(e.context(format!("{what} stopped"))),
        Ok(Ok(())) => anyhow::bail!("{what} stopped"),
        Err(e) => anyhow::bail!("{what} failed: {e}"),
    }
}

/// The kubeconfig at `kubeconfig`, or the inferred one (in-cluster, then $KUBECONFIG, then
/// ~/.kube/config).
pub async fn kube_config(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Config> {
    Ok(match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(file, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    })
}
