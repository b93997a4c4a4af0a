//! Options of an in-process sandbox ([`SandboxOptions`]): what `Sandbox::start` is given and
//! what every handler reads through the shared state.

use super::consistency::Consistency;
use super::faults::{self, ThrottleOptions};
use super::fixture::Fixture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Options of an in-process sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Address to bind (default `127.0.0.1:0`, a free port).
    pub listen: SocketAddr,
    /// The initial world (default: [`Fixture::builtin`]).
    pub fixture: Fixture,
    /// When set, serve HTTPS with a CA and certificate generated into this directory.
    pub tls_dir: Option<PathBuf>,
    /// Approve relationships as the customer this long after `lockForApproval`.
    pub auto_approve_after: Option<Duration>,
    /// How long access assignments stay `pending` (and relationships `approved`/`activating`,
    /// `terminationRequested`/`terminating`, operations `running`). Default 1 s.
    pub assignment_activation_delay: Duration,
    /// Persist the state here (JSON); loaded on start when the file exists.
    pub state_file: Option<PathBuf>,
    /// Per-app, per-tenant throttling budget.
    pub throttle: ThrottleOptions,
    /// Lifetime of issued access tokens (default 3599 s, like Entra).
    pub token_lifetime: Duration,
    /// How many Microsoft-API calls the request log keeps (default 10,000; the oldest go first).
    pub request_log_capacity: usize,
    /// The device code flow's poll `interval` (default 5 s, like Entra; whole seconds, at
    /// least 1).
    pub device_code_interval: Duration,
    /// Microsoft's eventual consistency: read lag, consent and GDAP propagation (default
    /// [`Consistency::microsoft`]; [`Consistency::immediate`] for tests that do not care).
    pub consistency: Consistency,
    /// The wait after a webhook delivery's first failed attempt; it doubles after each further
    /// failure, at most an hour (default 10 s; tests use milliseconds).
    pub webhook_retry_base: Duration,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fixture: Fixture::builtin(),
            tls_dir: None,
            auto_approve_after: None,
            assignment_activation_delay: Duration::from_secs(1),
            state_file: None,
            throttle: ThrottleOptions::default(),
            token_lifetime: Duration::from_secs(3599),
            request_log_capacity: faults::RequestLog::CAPACITY,
            consistency: Consistency::default(),
            device_code_interval: Duration::from_secs(5),
            webhook_retry_base: Duration::from_secs(10),
        }
    }
}
