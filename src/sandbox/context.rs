//! What every handler shares: the world under a lock, the options, the signing key, the fault
//! and throttling state and the request log.
//!
//! Contract: locks are `std::sync::Mutex` and are never held across an `.await`. [`Shared::world`]
//! runs the time-driven transitions (`lifecycle.rs`) before handing out the guard, so every
//! handler sees an up-to-date world. [`Shared::persist`] writes the state file when one is set.

use super::faults::{Faults, RequestLog, Throttle, TokenFaults};
use super::fixture::Fixture;
use super::jwt::Keys;
use super::options::SandboxOptions;
use super::state::World;
use super::webhook_deliver::Webhooks;
use chrono::{DateTime, Utc};
use std::sync::{Mutex, MutexGuard};

/// Shared state of one sandbox instance.
pub struct Shared {
    /// The world.
    world: Mutex<World>,
    /// The fixture it was built from (for reset).
    pub fixture: Fixture,
    /// Options the sandbox was started with.
    pub options: SandboxOptions,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Token signing key.
    pub keys: Keys,
    /// Injected faults.
    pub faults: Mutex<Faults>,
    /// Injected token errors.
    pub token_faults: Mutex<TokenFaults>,
    /// Per-app, per-tenant request budget.
    pub throttle: Mutex<Throttle>,
    /// Log of Microsoft-API calls.
    pub log: Mutex<RequestLog>,
    /// Partner Center idempotency: `ms-requestid` → (status, body).
    pub pc_requests: Mutex<std::collections::HashMap<String, (u16, serde_json::Value)>>,
    /// How far the clock was advanced through the control API (see `clock.rs`).
    advanced: Mutex<chrono::Duration>,
    /// Partner Center webhooks: signing identity and deliveries (`webhook_deliver.rs`).
    pub webhooks: std::sync::Arc<Webhooks>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Builds the shared state.
    pub fn new(
        world: World,
        options: SandboxOptions,
        scheme: &'static str,
    ) -> anyhow::Result<Shared> {
        let log_capacity = options.request_log_capacity;
        let webhooks = std::sync::Arc::new(Webhooks::new(options.webhook_retry_base)?);
        Ok(Shared {
            world: Mutex::new(world),
            fixture: options.fixture.clone(),
            throttle: Mutex::new(Throttle::new(options.throttle.clone())),
            options,
            scheme,
            keys: Keys::load()?,
            faults: Mutex::new(Faults::default()),
            token_faults: Mutex::new(TokenFaults::default()),
            log: Mutex::new(RequestLog::with_capacity(log_capacity)),
            pc_requests: Mutex::new(Default::default()),
            advanced: Mutex::new(chrono::Duration::zero()),
            webhooks,
        })
    }

    /// The world, with time-driven transitions applied up to now.
    pub fn world(&self) -> MutexGuard<'_, World> {
        let mut w = lock(&self.world);
        w.tick(Utc::now(), &self.options);
        w
    }

    /// Replaces the world (reset).
    pub fn replace_world(&self, world: World) {
        *lock(&self.world) = world;
    }

    /// Locks a helper mutex.
    pub fn lock<'a, T>(&'a self, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
        lock(m)
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// Records that the clock moved forward by `by` (the world was already shifted).
    pub fn advance_clock(&self, by: chrono::Duration) {
        *lock(&self.advanced) += by;
    }

    /// How far the clock was advanced in total.
    pub fn clock_advanced(&self) -> chrono::Duration {
        *lock(&self.advanced)
    }

    /// Writes the state file, if configured. Errors are logged, not fatal.
    pub fn persist(&self) {
        let Some(path) = &self.options.state_file else {
            return;
        };
        let text = match serde_json::to_vec(&*lock(&self.world)) {
            Ok(t) => t,
            Err(e) => return tracing::warn!(error = %e, "cannot serialise sandbox state"),
        };
        let tmp = path.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)) {
            tracing::warn!(error = %e, path = %path.display(), "cannot write sandbox state file");
        }
    }
}
