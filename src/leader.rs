//! Leader election: of several replicas of `gdap-operator run`, exactly one runs the controllers.
//!
//! The contract:
//! - Without `--leader-elect` the process is the only replica and leads at once (`gdap_leader` 1).
//! - With it, the replicas compete for a `coordination.k8s.io` Lease (`--lease-namespace`,
//!   default `POD_NAMESPACE`, and `--lease-name`) through [`kube_lease_manager`], which locks it
//!   with server-side apply, so two replicas cannot both win. The holder renews the Lease
//!   `--lease-renew-before` before it would run out.
//! - A standby looks at the Lease every `--lease-retry-period`. It takes a released Lease within
//!   that period, and the Lease of a leader that died once `--lease-duration` has passed since
//!   its last renewal (never earlier).
//! - The leader runs the controllers until they stop. On SIGTERM or Ctrl-C (caught from the
//!   process's start, [`crate::shutdown`]) the controllers shut down gracefully (kube's
//!   `Controller::graceful_shutdown_on`: reconciles in flight finish, no new ones start) while
//!   the Lease is still renewed; then the
//!   leader releases the Lease, so a standby takes over within its retry period instead of
//!   waiting for the Lease to run out.
//! - A leader that cannot renew retries only while the Lease itself shows that it still holds
//!   it for long enough to try again; otherwise it stops leading at once: [`Leadership::run`]
//!   returns an error, the process exits and Kubernetes restarts it as a candidate. It never
//!   reconciles on a Lease it may have lost. Every Lease request has a timeout (a fifth of
//!   `--lease-renew-before`, at least one second), so a hung request cannot outlive the Lease.
//! - Standbys keep no caches of the custom resources: the controllers, with their watches, start
//!   only on becoming leader. A standby then costs the API server nothing but a Lease read per
//!   retry period, and the new leader's first list (seconds for thousands of objects) is small
//!   next to the time the Lease takes to change hands.
//! - `/readyz` (see [`crate::readiness::Readiness`]): a leader is ready once its controllers' first
//!   lists are complete; a standby is ready while it can read the Lease (standing by healthily),
//!   so a rolling update can replace the leader with a pod that is ready to take over.

pub use crate::readiness::{Readiness, Role};
use crate::shutdown::Shutdown;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseParams};
use prometheus_client::metrics::gauge::Gauge;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Flags of leader election (part of `gdap-operator run`).
#[derive(Debug, Clone, clap::Args)]
pub struct ElectionArgs {
    /// Elect one leader among the replicas through a coordination.k8s.io Lease; only the leader
    /// reconciles, the others stand by to take over.
    #[arg(long, env = "GDAP_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Name of the Lease (replicas of one installation share it).
    #[arg(long, default_value = "gdap-operator", env = "GDAP_LEASE_NAME")]
    pub lease_name: String,
    /// Namespace of the Lease (default: POD_NAMESPACE, the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long the Lease stays valid after its last renewal: a standby takes over from a leader
    /// that died this long after the leader's last renewal. Whole seconds.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,
    /// The leader renews the Lease this long before it would run out, so a failed renewal has
    /// this long to be retried. Whole seconds, shorter than --lease-duration.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub lease_renew_before: Duration,
    /// How often a standby looks at the Lease: it takes a released Lease within this time.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub lease_retry_period: Duration,
}

/// Whether this process leads alone or through an election.
pub enum Leadership {
    /// No election: the only replica (`--leader-elect` off).
    Sole {
        /// `gdap_leader`.
        gauge: Gauge,
    },
    /// One of several replicas competing for a Lease.
    Elected(Box<Election>),
}

/// A replica's part in the election for one Lease.
pub struct Election {
    client: Client,
    namespace: String,
    name: String,
    params: LeaseParams,
    identity: String,
    timing: Timing,
    role: watch::Sender<Role>,
    gauge: Gauge,
}

/// The election's durations, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timing {
    duration: Duration,
    renew_before: Duration,
    retry_period: Duration,
    request_timeout: Duration,
}

/// How long to wait before trying a failed renewal again.
const RENEW_RETRY_PAUSE: Duration = Duration::from_millis(250);

impl Leadership {
    /// Leadership as the flags ask for; an error names the flag and the rule it breaks.
    /// `config` is the operator's own kube configuration (the Lease client adds timeouts).
    pub fn new(args: &ElectionArgs, config: &kube::Config, gauge: Gauge) -> anyhow::Result<Self> {
        if !args.leader_elect {
            return Ok(Leadership::Sole { gauge });
        }
        let namespace = args
            .lease_namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--leader-elect needs the Lease's namespace: set --lease-namespace or POD_NAMESPACE"
                )
            })?;
        let timing = Timing::new(args)?;
        let identity = identity();
        let mut lease_config = config.clone();
        lease_config.connect_timeout = Some(timing.request_timeout);
        lease_config.read_timeout = Some(timing.request_timeout);
        lease_config.write_timeout = Some(timing.request_timeout);
        let params = LeaseParams::new(
            identity.clone(),
            timing.duration.as_secs(),
            timing.renew_before.as_secs(),
        );
        Ok(Leadership::Elected(Box::new(Election {
            client: Client::try_from(lease_config)?,
            namespace,
            name: args.lease_name.clone(),
            params,
            identity,
            timing,
            role: watch::Sender::new(Role::Starting),
            gauge,
        })))
    }

    /// What `/readyz` reports, given the flag that turns true once the caches are synced.
    pub fn readiness(&self, caches_synced: Arc<AtomicBool>) -> Readiness {
        match self {
            Leadership::Sole { .. } => Readiness::new(caches_synced, None),
            Leadership::Elected(election) => {
                Readiness::new(caches_synced, Some(election.role.subscribe()))
            }
        }
    }

    /// Runs `controllers` while this process leads. Returns when they stop (after releasing
    /// the Lease), when a signal ends a standby, or with an error when the Lease was lost.
    pub async fn run<F: Future>(self, controllers: F, shutdown: &Shutdown) -> anyhow::Result<()> {
        match self {
            Leadership::Sole { gauge } => {
                gauge.set(1);
                controllers.await;
                Ok(())
            }
            Leadership::Elected(election) => election.run(controllers, shutdown).await,
        }
    }
}

impl Timing {
    fn new(args: &ElectionArgs) -> anyhow::Result<Self> {
        let duration = whole_seconds("--lease-duration", args.lease_duration)?;
        let renew_before = whole_seconds("--lease-renew-before", args.lease_renew_before)?;
        anyhow::ensure!(
            renew_before < duration,
            "--lease-renew-before ({}s) must be shorter than --lease-duration ({}s)",
            renew_before.as_secs(),
            duration.as_secs()
        );
        let retry_period = args.lease_retry_period;
        anyhow::ensure!(
            !retry_period.is_zero() && retry_period < duration,
            "--lease-retry-period must be more than 0 and shorter than --lease-duration ({}s)",
            duration.as_secs()
        );
        Ok(Timing {
            duration,
            renew_before,
            retry_period,
            request_timeout: (renew_before / 5).max(Duration::from_secs(1)),
        })
    }
}

fn whole_seconds(flag: &str, value: Duration) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        value.subsec_nanos() == 0 && value.as_secs() >= 1,
        "{flag} must be a whole number of seconds, at least 1s (got {})",
        humantime::format_duration(value)
    );
    Ok(value)
}

/// `POD_NAME` (or the host name) and a random suffix: a restarted process is a new candidate,
/// never mistaken for the holder it replaces.
fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "gdap-operator".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}_{}", &suffix[..8])
}

impl Election {
    async fn run<F: Future>(self, controllers: F, shutdown: &Shutdown) -> anyhow::Result<()> {
        tracing::info!(lease = %self.lease(), identity = %self.identity, "standing for leader");
        let Some(manager) = self.acquire(shutdown).await else {
            tracing::info!("stopped while standing by");
            return Ok(());
        };
        self.set_role(Role::Leading);
        self.gauge.set(1);
        tracing::info!(lease = %self.lease(), identity = %self.identity, "leading: starting the controllers");
        let lost = tokio::select! {
            _ = controllers => None,
            reason = self.hold(&manager) => Some(reason),
        };
        self.gauge.set(0);
        if let Some(reason) = lost {
            anyhow::bail!(
                "stopped leading ({reason}); exiting so that this replica restarts as a standby"
            );
        }
        match manager.release().await {
            Ok(()) => {
                tracing::info!(lease = %self.lease(), "controllers stopped; released the Lease")
            }
            Err(error) => {
                tracing::warn!(%error, "controllers stopped; releasing the Lease failed (it runs out by itself)")
            }
        }
        Ok(())
    }

    /// Stands by until this replica holds the Lease (`None`: a shutdown signal came first).
    async fn acquire(&self, shutdown: &Shutdown) -> Option<LeaseManager> {
        let mut signal = std::pin::pin!(shutdown.requested());
        loop {
            let attempt = tokio::select! {
                _ = &mut signal => return None,
                attempt = self.try_acquire() => attempt,
            };
            match attempt {
                Ok(Some(manager)) => return Some(manager),
                Ok(None) => self.set_role(Role::StandingBy),
                Err(error) => {
                    self.set_role(Role::Failing(error));
                    tokio::select! {
                        _ = &mut signal => return None,
                        _ = tokio::time::sleep(self.timing.retry_period) => {}
                    }
                }
            }
        }
    }

    /// One look at the Lease: takes it when it is free or has run out, and otherwise waits up to
    /// one retry period. A fresh manager reads the Lease anew (a manager keeps what it read until
    /// the Lease would run out, and would miss a release until then).
    async fn try_acquire(&self) -> Result<Option<LeaseManager>, String> {
        let manager = LeaseManager::new(
            self.client.clone(),
            &self.name,
            &self.namespace,
            self.params.clone(),
            LeaseCreateMode::AutoCreate,
        )
        .await
        .map_err(|e| format!("cannot read the Lease {}: {e}", self.lease()))?;
        match tokio::time::timeout(self.timing.retry_period, manager.changed()).await {
            Ok(Ok(true)) => Ok(Some(manager)),
            Ok(Ok(false)) | Err(_) => Ok(None),
            Ok(Err(e)) => Err(format!("cannot take the Lease {}: {e}", self.lease())),
        }
    }

    /// Renews the Lease while this replica leads; returns why it stopped leading.
    async fn hold(&self, manager: &LeaseManager) -> String {
        loop {
            let error = match manager.changed().await {
                Ok(true) => continue,
                Ok(false) => return "another replica holds the Lease".into(),
                Err(error) => error,
            };
            let left = self.held_for().await;
            if left <= self.timing.request_timeout * 3 + RENEW_RETRY_PAUSE {
                return format!("cannot renew the Lease {}: {error}", self.lease());
            }
            tracing::warn!(%error, left = ?left, "renewing the Lease failed; trying again while it lasts");
            tokio::time::sleep(RENEW_RETRY_PAUSE).await;
        }
    }

    /// How much longer the Lease says this replica holds it (zero when it cannot be read or
    /// another replica holds it).
    async fn held_for(&self) -> Duration {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let Ok(lease) = api.get(&self.name).await else {
            return Duration::ZERO;
        };
        let Some(spec) = lease.spec else {
            return Duration::ZERO;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Duration::ZERO;
        }
        match (spec.renew_time, spec.lease_duration_seconds) {
            (Some(renewed), Some(seconds)) => {
                let renewed: SystemTime = renewed.0.into();
                let until = renewed + Duration::from_secs(seconds.max(0) as u64);
                until
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
            }
            _ => Duration::ZERO,
        }
    }

    fn set_role(&self, role: Role) {
        self.role.send_if_modified(|current| {
            if *current == role {
                return false;
            }
            match &role {
                Role::StandingBy => {
                    tracing::info!(lease = %self.lease(), "standing by: another replica holds the Lease")
                }
                Role::Failing(error) => tracing::warn!(%error, "cannot use the Lease; retrying"),
                Role::Leading | Role::Starting => {}
            }
            *current = role;
            true
        });
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        election: ElectionArgs,
    }

    fn timing(args: &[&str]) -> anyhow::Result<Timing> {
        let flags = Flags::try_parse_from(std::iter::once("run").chain(args.iter().copied()))?;
        Timing::new(&flags.election)
    }

    #[test]
    fn defaults_are_client_go_like_and_requests_time_out_well_inside_the_renewal_window() {
        let t = timing(&[]).unwrap();
        assert_eq!(t.duration, Duration::from_secs(15));
        assert_eq!(t.renew_before, Duration::from_secs(10));
        assert_eq!(t.retry_period, Duration::from_secs(2));
        assert_eq!(t.request_timeout, Duration::from_secs(2));
        let short = timing(&["--lease-duration=4s", "--lease-renew-before=2s"]).unwrap();
        assert_eq!(short.request_timeout, Duration::from_secs(1));
    }

    #[test]
    fn bad_durations_are_refused_with_the_flag_and_the_rule() {
        for (args, flag, rule) in [
            (
                &["--lease-duration=1500ms"][..],
                "--lease-duration",
                "whole number of seconds",
            ),
            (
                &["--lease-renew-before=0s"][..],
                "--lease-renew-before",
                "at least 1s",
            ),
            (
                &["--lease-duration=5s", "--lease-renew-before=5s"][..],
                "--lease-renew-before",
                "shorter than --lease-duration",
            ),
            (
                &["--lease-retry-period=0s"][..],
                "--lease-retry-period",
                "more than 0",
            ),
            (
                &[
                    "--lease-duration=5s",
                    "--lease-renew-before=2s",
                    "--lease-retry-period=5s",
                ][..],
                "--lease-retry-period",
                "shorter than --lease-duration",
            ),
        ] {
            let error = timing(args).unwrap_err().to_string();
            assert!(
                error.contains(flag) && error.contains(rule),
                "{args:?}: {error}"
            );
        }
    }

    #[tokio::test]
    async fn election_needs_a_lease_namespace() {
        let flags = Flags::try_parse_from(["run", "--leader-elect"]).unwrap();
        let mut election = flags.election;
        election.lease_namespace = None;
        let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        let error = Leadership::new(&election, &config, Gauge::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            error.contains("--lease-namespace or POD_NAMESPACE"),
            "{error}"
        );
    }

    #[test]
    fn identities_differ_per_process_and_start_with_the_pod_name_or_host() {
        let (a, b) = (identity(), identity());
        assert_ne!(a, b);
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "gdap-operator".into());
        assert!(a.starts_with(&format!("{host}_")), "{a}");
    }
}
