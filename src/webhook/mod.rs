//! Partner Center webhooks: a receiver that verifies each event and asks the controllers to
//! reconcile the objects it concerns at once. Polling stays the source of truth; events only
//! make the operator look sooner (Partner Center stops after 10 delivery attempts, and events
//! sent while the receiver is down are lost).
//!
//! Layout: `args` (flags), `event` (the body and what it concerns), `certificates` (where the
//! signing certificate may come from, fetching and trusting it), `replay` (what was seen),
//! `receiver` (the route and its checks, in order), `metrics` (the counters). The receiver
//! knows nothing of Kubernetes: it hands relationship ids to a [`receiver::Dispatch`], which
//! `run` implements over the controllers' caches.

pub mod args;
pub mod certificates;
pub mod event;
pub mod metrics;
pub mod receiver;
pub mod replay;
#[cfg(test)]
mod test_pki;

pub use args::WebhookArgs;

use anyhow::Context as _;
use certificates::{CertificatePolicy, CertificateStore};
use receiver::{Dispatch, Limits, Receiver};
use std::sync::Arc;

/// Binds the receiver when `--webhook-listen` is given (`Ok(None)` otherwise); a missing trust
/// anchor, a bad prefix or a taken port fails the start with the flag named.
pub async fn bind(
    args: &WebhookArgs,
    metrics: metrics::WebhookMetrics,
    dispatch: Arc<dyn Dispatch>,
) -> anyhow::Result<Option<(tokio::net::TcpListener, axum::Router)>> {
    let Some(address) = args.webhook_listen else {
        return Ok(None);
    };
    let anchors = args
        .webhook_trust_anchors
        .as_ref()
        .context("--webhook-listen needs --webhook-trust-anchors (a PEM bundle of the CAs the signing certificate chains to)")?;
    let pem = std::fs::read_to_string(anchors)
        .with_context(|| format!("cannot read --webhook-trust-anchors {}", anchors.display()))?;
    let policy = CertificatePolicy::new(
        &args.webhook_certificate_url_prefix,
        &pem,
        &args.webhook_certificate_organization,
    )
    .map_err(|e| {
        anyhow::anyhow!("--webhook-trust-anchors / --webhook-certificate-url-prefix: {e}")
    })?;
    if !args.webhook_path.starts_with('/') {
        anyhow::bail!("--webhook-path must start with '/'");
    }
    let limits = Limits {
        max_body: args.webhook_max_body_bytes as usize,
        max_age: chrono::Duration::from_std(args.webhook_max_event_age)
            .context("--webhook-max-event-age is too large")?,
    };
    let receiver = Receiver::new(CertificateStore::new(policy)?, limits, metrics, dispatch);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot receive webhooks on --webhook-listen {address}"))?;
    Ok(Some((
        listener,
        receiver::router(Arc::new(receiver), &args.webhook_path),
    )))
}

/// Serves the receiver until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, router: axum::Router) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "receiving Partner Center webhook events");
    axum::serve(listener, router).await?;
    Ok(())
}
