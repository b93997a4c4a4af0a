//! The operator's own HTTP endpoint: `/healthz` (the process runs), `/readyz` (see [`Readiness`])
//! and `/metrics` (Prometheus text format).

use crate::metrics::Metrics;
pub use crate::readiness::Readiness;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

/// What the endpoints report on.
#[derive(Clone)]
pub struct ServerState {
    /// The metrics to expose.
    pub metrics: Arc<Metrics>,
    /// What `/readyz` answers.
    pub readiness: Readiness,
}

/// The router, separate from serving so tests can call it directly.
pub fn router(state: ServerState) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<ServerState>) -> impl IntoResponse {
    match state.readiness.check() {
        Ok(what) => (StatusCode::OK, what.to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn metrics(State(state): State<ServerState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Serves the endpoints on a bound listener until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: ServerState) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    axum::serve(listener, router(state)).await?;
    Ok(())
}
