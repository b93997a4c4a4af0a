//! `gdap-operator run`: the operator process. Watches the custom resources (in all namespaces or
//! the ones given), reconciles them, and serves health and metrics.

use crate::api::GdapRelationship;
use crate::controllers::context::{Context, MANAGER, Settings};
use crate::controllers::credentials::CredentialsCache;
use crate::controllers::gdap_relationship::{self, plan::Timing};
use crate::metrics::{CallLabels, Metrics};
use crate::microsoft::{EndpointArgs, TokenMetrics, TokenOptions, TransportConfig};
use crate::server::{self, ServerState};
use crate::telemetry::{self, LogFormat};
use clap::Args;
use futures::StreamExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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
    /// How long a refused access assignment waits before it is tried again.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub failed_assignment_retry: Duration,
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format, &args.log_level);
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    let token_metrics = TokenMetrics::default();
    let metrics = Arc::new(Metrics::with_extra(|r| token_metrics.register(r)));
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
        },
    };
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
    });
    let ready = Arc::new(AtomicBool::new(false));
    let server = tokio::spawn(server::serve(
        args.metrics_address,
        ServerState {
            metrics,
            ready: ready.clone(),
        },
    ));
    let apis: Vec<Api<GdapRelationship>> = if args.namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        args.namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    tracing::info!(namespaces = ?args.namespaces, "starting the GdapRelationship controller");
    let controllers = apis.into_iter().map(|api| {
        Controller::new(api, watcher::Config::default())
            .shutdown_on_signal()
            .run(
                gdap_relationship::reconcile,
                gdap_relationship::error_policy,
                ctx.clone(),
            )
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "controller event");
                }
            })
    });
    ready.store(true, Ordering::SeqCst);
    futures::future::join_all(controllers).await;
    server.abort();
    tracing::info!("stopped");
    Ok(())
}

async fn kube_client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(file, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}
