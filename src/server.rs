//! The operator's own HTTP endpoint: `/healthz` (the process runs), `/readyz` (see [`Readiness`])
//! and `/metrics` (Prometheus text format).

use crate::leader::Role;
use crate::metrics::Metrics;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// What the endpoints report on.
#[derive(Clone)]
pub struct ServerState {
    /// The metrics to expose.
    pub metrics: Arc<Metrics>,
    /// What `/readyz` answers.
    pub readiness: Readiness,
}

/// `/readyz`: without leader election, ready once every controller's first list is complete;
/// with it, ready when leading with the caches synced, or when standing by healthily (the
/// Lease can be read).
#[derive(Clone)]
pub struct Readiness {
    caches_synced: Arc<AtomicBool>,
    election: Option<watch::Receiver<Role>>,
}

impl Readiness {
    /// Readiness from the caches-synced flag and, with leader election, this replica's role.
    pub fn new(caches_synced: Arc<AtomicBool>, election: Option<watch::Receiver<Role>>) -> Self {
        Readiness {
            caches_synced,
            election,
        }
    }

    /// `Ok(what)` when ready, `Err(why not)` otherwise.
    pub fn check(&self) -> Result<&'static str, String> {
        let synced = self.caches_synced.load(Ordering::SeqCst);
        let role = self.election.as_ref().map(|r| r.borrow().clone());
        match role {
            None if synced => Ok("ready"),
            None => Err("controllers are listing their resources".into()),
            Some(Role::Leading) if synced => Ok("ready: leading, caches synced"),
            Some(Role::Leading) => Err("leading; controllers are listing their resources".into()),
            Some(Role::StandingBy) => Ok("ready: standing by, another replica holds the Lease"),
            Some(Role::Starting) => Err("has not looked at the Lease yet".into()),
            Some(Role::Failing(error)) => Err(error),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn readiness(synced: bool, role: Option<Role>) -> Result<&'static str, String> {
        let flag = Arc::new(AtomicBool::new(synced));
        let election = role.map(|r| watch::channel(r).1);
        Readiness::new(flag, election).check()
    }

    #[test]
    fn without_election_ready_means_caches_synced() {
        assert!(readiness(true, None).is_ok());
        assert!(readiness(false, None).unwrap_err().contains("listing"));
    }

    #[test]
    fn a_leader_is_ready_once_synced_and_a_healthy_standby_is_ready_without_caches() {
        assert!(readiness(true, Some(Role::Leading)).is_ok());
        assert!(readiness(false, Some(Role::Leading)).is_err());
        assert!(
            readiness(false, Some(Role::StandingBy))
                .unwrap()
                .contains("standing by")
        );
        assert!(readiness(false, Some(Role::Starting)).is_err());
        let failing = Role::Failing("cannot read the Lease ns/l: connection refused".into());
        assert!(
            readiness(true, Some(failing))
                .unwrap_err()
                .contains("connection refused")
        );
    }
}
