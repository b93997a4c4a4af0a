//! `gdap-operator run`: the operator process. Watches the custom resources (in all namespaces or
//! the ones given), reconciles them, and serves health and metrics. With `--leader-elect` the
//! controllers run only while this replica leads (`crate::leader`).

use crate::api::{AppConsent, GdapRelationship, TenantSync};
use crate::controllers::app_consent::{self, plan::ConsentIntervals};
use crate::controllers::context::{Context, MANAGER, Settings};
use crate::controllers::credentials::CredentialsCache;
use crate::controllers::credentials_in_use;
use crate::controllers::gdap_relationship::{self, plan::Timing};
use crate::controllers::limit::{DEFAULT_RECONCILE_CONCURRENCY, Limits, ReconcileLimit};
use crate::controllers::pipeline;
use crate::controllers::secrets_by_name::{SecretCheck, secrets_by_name};
use crate::controllers::tenant_sync::{self, Runner, SyncContext};
use crate::leader::{ElectionArgs, Leadership};
use crate::metrics::{CallLabels, Metrics};
use crate::microsoft::{EndpointArgs, TokenMetrics, TokenOptions, TransportConfig};
use crate::server::{self, ServerState};
use crate::shutdown::Shutdown;
use crate::telemetry::{self, LogFormat};
use anyhow::Context as _;
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

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
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format, &args.log_level);
    let shutdown = Shutdown::listen().context("installing the SIGTERM and SIGINT handlers")?;
    let config = kube_config(args.kubeconfig.as_deref()).await?;
    let client = Client::try_from(config.clone())?;
    let token_metrics = TokenMetrics::default();
    let metrics = Arc::new(Metrics::with_extra(|r| token_metrics.register(r)));
    let leadership = Leadership::new(&args.election, &config, metrics.leader.clone())?;
    let endpoints = args
        .endpoints
        .resolve()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut transport = TransportConfig::new(endpoints);
    let call_metrics = metrics.clone();
    transport.call_observer = Some(Arc::new(
        move |call: &crate::microsoft::transport::CallRecord| {
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
        },
    ));
    let token_options = TokenOptions {
        metrics: token_metrics,
        ..Default::default()
    };
    let settings = Settings {
        default_credentials_secret: args.credentials_secret.clone(),
        timing: Timing {
            poll: args.poll_interval,
            resync: args.resync_interval,
            termination_timeout: args.termination_timeout,
            failed_retry: args.failed_assignment_retry,
            propagation_timeout: args.propagation_timeout,
        },
        consent: ConsentIntervals {
            verify: args.consent_verify_interval,
            settle: args.consent_settle_time,
        },
    };
    let listener = tokio::net::TcpListener::bind(args.metrics_address)
        .await
        .with_context(|| {
            format!(
                "cannot serve /healthz, /readyz and /metrics on --metrics-address {}",
                args.metrics_address
            )
        })?;
    let (secret_checks, checks) = mpsc::unbounded_channel();
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        metrics: metrics.clone(),
        credentials: CredentialsCache::new(client.clone(), transport, token_options),
        settings,
        secret_checks: Some(secret_checks),
        unrecorded_failures: Default::default(),
    });
    let ready = Arc::new(AtomicBool::new(false));
    let server = tokio::spawn(server::serve(
        listener,
        ServerState {
            metrics,
            readiness: leadership.readiness(ready.clone()),
        },
    ));
    let scopes = Scope::all_of(&args.namespaces);
    let routes = route_secret_checks(checks, &scopes);
    let (runner, ended) = Runner::new(usize::from(args.sync_concurrency), ctx.metrics.clone());
    let sync_routes = route_to_scopes(ended, &scopes);
    let limits = Limits::new(
        args.reconcile_concurrency,
        ctx.metrics.reconciles_waiting.clone(),
    );
    tracing::info!(namespaces = ?args.namespaces, sync_concurrency = args.sync_concurrency, reconcile_concurrency = args.reconcile_concurrency, "starting the GdapRelationship, AppConsent, TenantSync and credentials controllers");
    let mut stores = Vec::new();
    let mut runs = Vec::new();
    for ((scope, checks), ended) in scopes.iter().zip(routes).zip(sync_routes) {
        let (relationships, relationships_ready) = relationship_controller(
            &client,
            scope,
            ctx.clone(),
            limits.next(gdap_relationship::reconcile::KIND),
            &shutdown,
        );
        let (consents, consents_ready) = consent_controller(
            &client,
            scope,
            ctx.clone(),
            limits.next(app_consent::reconcile::KIND),
            &shutdown,
        );
        let (secrets, secrets_ready) = secret_controller(
            &client,
            checks,
            ctx.clone(),
            limits.next("Secret"),
            &shutdown,
        );
        stores.push(relationships_ready);
        stores.push(consents_ready);
        stores.push(secrets_ready);
        runs.push(relationships);
        runs.push(consents);
        runs.push(secrets);
        let (syncs, syncs_ready) = sync_controller(
            &client,
            scope,
            ctx.clone(),
            runner.clone(),
            ended,
            limits.next(tenant_sync::reconcile::KIND),
            &shutdown,
        );
        stores.push(syncs_ready);
        runs.push(syncs);
    }
    tokio::spawn(mark_ready_when_listed(stores, ready));
    tokio::spawn(limits.close_on_shutdown(shutdown.clone()));
    let controllers = async {
        tokio::select! {
            _ = futures::future::join_all(runs) => {}
            // A second signal: stop without waiting for the reconciles in flight.
            _ = shutdown.forced() => {}
        }
    };
    tokio::select! {
        // The controllers run only while this process leads (always, without --leader-elect).
        result = leadership.run(controllers, &shutdown) => result?,
        result = server => {
            match result {
                Ok(Err(e)) => return Err(e.context("the health and metrics server stopped")),
                Ok(Ok(())) => anyhow::bail!("the health and metrics server stopped"),
                Err(e) => anyhow::bail!("the health and metrics server failed: {e}"),
            }
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Where controllers watch: the whole cluster, or one namespace.
#[derive(Debug, Clone)]
enum Scope {
    Cluster,
    Namespace(String),
}

impl Scope {
    fn all_of(namespaces: &[String]) -> Vec<Scope> {
        if namespaces.is_empty() {
            vec![Scope::Cluster]
        } else {
            namespaces.iter().cloned().map(Scope::Namespace).collect()
        }
    }

    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match self {
            Scope::Cluster => Api::all(client.clone()),
            Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        }
    }

    fn covers(&self, namespace: &str) -> bool {
        match self {
            Scope::Cluster => true,
            Scope::Namespace(ns) => ns == namespace,
        }
    }
}

type Run = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
type Ready = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

/// What the operator never reads of a watched object, dropped before it is cached: the field
/// managers' records and kubectl's copy of the last applied manifest (together larger than the
/// rest of the object).
fn trim_for_cache<K: kube::Resource>(object: &mut K) {
    object.managed_fields_mut().clear();
    if let Some(annotations) = &mut object.meta_mut().annotations {
        annotations.remove(LAST_APPLIED);
    }
}

/// The annotation `kubectl apply` keeps its last manifest in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn list_in_pages() -> watcher::Config {
    watcher::Config::default().page_size(crate::controllers::LIST_PAGE)
}

/// A kind's cache (trimmed, listed in pages) and the stream of its objects whose spec or
/// lifecycle changed, for `Controller::for_stream`.
fn watched_specs<K>(
    api: Api<K>,
) -> (
    reflector::Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store::<K>();
    let stream = watcher(api, list_in_pages())
        .default_backoff()
        .modify(trim_for_cache)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, PredicateConfig::default());
    (reader, stream)
}

/// Reconciles on changes of the spec, the finalizers, the annotations or deletion — not on the
/// operator's own status writes, which would otherwise re-trigger every reconcile at once.
fn spec_or_lifecycle<K: kube::Resource>(object: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = object.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.uid.hash(&mut hasher);
    Some(hasher.finish())
}

fn relationship_controller(
    client: &Client,
    scope: &Scope,
    ctx: Arc<Context>,
    limit: ReconcileLimit,
    shutdown: &Shutdown,
) -> (Run, Ready) {
    let (reader, stream) = watched_specs(scope.api::<GdapRelationship>(client));
    let controller = Controller::for_stream(stream, reader);
    let store = controller.store();
    let run = controller
        .graceful_shutdown_on(shutdown.trigger())
        .run(
            limit.wrap(pipeline::reconcile::<GdapRelationship>),
            pipeline::error_policy::<GdapRelationship>,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                log_controller_error("GdapRelationship", &e);
            }
        });
    (Box::pin(run), Box::pin(listed(store)))
}

/// Logs what a controller's stream reports. A failed reconcile was logged by its error policy
/// already (debug here); a failed watch is the only sign of an API server that is down or of a
/// permission the operator lacks — e.g. `cannot list resource "gdaprelationships"` when the RBAC
/// misses a verb — so it is a warning, repeated only as the watch's backoff retries.
fn log_controller_error<E1, E2>(kind: &str, error: &kube::runtime::controller::Error<E1, E2>)
where
    E2: std::fmt::Display,
    kube::runtime::controller::Error<E1, E2>: std::fmt::Display,
{
    use kube::runtime::controller::Error;
    match error {
        Error::QueueError(e) => {
            tracing::warn!(kind, error = %e, "watching failed; retrying with backoff")
        }
        other => tracing::debug!(kind, error = %other, "controller event"),
    }
}

fn consent_controller(
    client: &Client,
    scope: &Scope,
    ctx: Arc<Context>,
    limit: ReconcileLimit,
    shutdown: &Shutdown,
) -> (Run, Ready) {
    let (reader, stream) = watched_specs(scope.api::<AppConsent>(client));
    let controller = Controller::for_stream(stream, reader);
    let store = controller.store();
    let run = controller
        .graceful_shutdown_on(shutdown.trigger())
        .run(
            limit.wrap(pipeline::reconcile::<AppConsent>),
            pipeline::error_policy::<AppConsent>,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                log_controller_error("AppConsent", &e);
            }
        });
    (Box::pin(run), Box::pin(listed(store)))
}

/// The TenantSync controller of one scope: its objects (filtered like the relationships), the
/// AppConsents they name (a change of one reconciles the TenantSyncs naming it; their watch cache
/// is where the controller reads readiness) and the ends of imports, which the runner reports.
fn sync_controller(
    client: &Client,
    scope: &Scope,
    ctx: Arc<Context>,
    runner: Runner,
    ended: mpsc::UnboundedReceiver<ObjectRef<TenantSync>>,
    limit: ReconcileLimit,
    shutdown: &Shutdown,
) -> (Run, Ready) {
    let (consents, consents_writer) = reflector::store::<AppConsent>();
    let consent_changes = watcher(scope.api::<AppConsent>(client), list_in_pages())
        .default_backoff()
        .modify(trim_for_cache)
        .reflect(consents_writer)
        .touched_objects();
    let (reader, stream) = watched_specs(scope.api::<TenantSync>(client));
    let syncs = reader.clone();
    let ended = futures::stream::unfold(
        ended,
        |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
    );
    let controller = Controller::for_stream(stream, reader)
        .watches_stream(consent_changes, move |consent: AppConsent| {
            naming_consent(&syncs, &consent)
        })
        .reconcile_on(ended);
    let store = controller.store();
    let sync = Arc::new(SyncContext {
        ctx,
        runner,
        consents: consents.clone(),
    });
    let run = controller
        .graceful_shutdown_on(shutdown.trigger())
        .run(
            limit.wrap(pipeline::reconcile::<TenantSync>),
            pipeline::error_policy::<TenantSync>,
            sync,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "TenantSync controller event");
            }
        });
    let ready = async move { listed(store).await && listed(consents).await };
    (Box::pin(run), Box::pin(ready))
}

/// The TenantSyncs that name `consent` (same namespace, `spec.appConsentRef.name`).
fn naming_consent(
    syncs: &reflector::Store<TenantSync>,
    consent: &AppConsent,
) -> Vec<ObjectRef<TenantSync>> {
    let namespace = consent.namespace();
    let name = consent.name_any();
    syncs
        .state()
        .iter()
        .filter(|s| s.namespace() == namespace && s.spec.app_consent_ref.name == name)
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// Resolves once `store` has its first list. kube's readiness signal keeps only one waiter's
/// wake-up (the controller's own runner also waits on it), so it is polled again every 100 ms.
async fn listed<K>(store: reflector::Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready()).await {
            Ok(result) => return result.is_ok(),
            Err(_) => continue,
        }
    }
}

/// The credentials Secret controller of one scope. It neither lists nor watches Secrets: the
/// Secrets come from the checks the other controllers send, each read by name
/// (`secrets_by_name`), so the operator's RBAC can name the Secrets it may use.
fn secret_controller(
    client: &Client,
    checks: mpsc::UnboundedReceiver<SecretCheck>,
    ctx: Arc<Context>,
    limit: ReconcileLimit,
    shutdown: &Shutdown,
) -> (Run, Ready) {
    let (store, writer) = reflector::store::<Secret>();
    let secrets = secrets_by_name(client.clone(), checks, writer);
    let controller = Controller::for_stream(secrets, store.clone());
    let run = controller
        .graceful_shutdown_on(shutdown.trigger())
        .run(
            limit.wrap(credentials_in_use::reconcile),
            secret_error_policy,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                log_controller_error("Secret", &e);
            }
        });
    (Box::pin(run), Box::pin(listed(store)))
}

fn secret_error_policy(
    _secret: Arc<Secret>,
    error: &credentials_in_use::SecretError,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(%error, "credentials Secret check failed; retrying");
    Action::requeue(ctx.settings.timing.poll)
}

/// One channel per scope: checks asked for through the context go to the scope that covers the
/// Secret's namespace.
fn route_secret_checks(
    mut checks: mpsc::UnboundedReceiver<SecretCheck>,
    scopes: &[Scope],
) -> Vec<mpsc::UnboundedReceiver<SecretCheck>> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        scopes.iter().map(|_| mpsc::unbounded_channel()).unzip();
    let scopes = scopes.to_vec();
    tokio::spawn(async move {
        while let Some(check) = checks.recv().await {
            let namespace = check.namespace().to_string();
            if let Some(i) = scopes.iter().position(|s| s.covers(&namespace)) {
                let _ = senders[i].send(check);
            }
        }
    });
    receivers
}

/// One channel per scope: object references go to the scope that covers their namespace.
fn route_to_scopes<K>(
    mut refs: mpsc::UnboundedReceiver<ObjectRef<K>>,
    scopes: &[Scope],
) -> Vec<mpsc::UnboundedReceiver<ObjectRef<K>>>
where
    K: kube::Resource<DynamicType = ()> + Send + Sync + 'static,
{
    let (senders, receivers): (Vec<_>, Vec<_>) =
        scopes.iter().map(|_| mpsc::unbounded_channel()).unzip();
    let scopes = scopes.to_vec();
    tokio::spawn(async move {
        while let Some(r) = refs.recv().await {
            let namespace = r.namespace.clone().unwrap_or_default();
            if let Some(i) = scopes.iter().position(|s| s.covers(&namespace)) {
                let _ = senders[i].send(r);
            }
        }
    });
    receivers
}

/// `/readyz` turns ready once every controller's first list is complete.
async fn mark_ready_when_listed(stores: Vec<Ready>, ready: Arc<AtomicBool>) {
    let listed = futures::future::join_all(stores).await;
    if listed.iter().all(|ok| *ok) {
        ready.store(true, Ordering::SeqCst);
        tracing::info!("caches synced; ready");
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    #[test]
    fn the_cache_drops_managed_fields_and_the_last_applied_manifest_only() {
        let mut object = k8s_openapi::api::core::v1::ConfigMap::default();
        object.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        object.metadata.annotations = Some(
            [
                (
                    LAST_APPLIED.to_string(),
                    "{\"kind\":\"GdapRelationship\"}".to_string(),
                ),
                ("gdap.io/sync-now".to_string(), "1".to_string()),
            ]
            .into(),
        );
        trim_for_cache(&mut object);
        assert_eq!(object.metadata.managed_fields, Some(vec![]));
        let annotations = object.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations.keys().collect::<Vec<_>>(), ["gdap.io/sync-now"]);
    }
}
