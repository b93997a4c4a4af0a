//! Failures as every controller reports them, and the backoff after them.
//!
//! Contract: each stage's error (observe, plan, act, report) turns into a [`Failure`] — a named
//! condition reason, a message that says what to do, and whether it is transient. After a failure
//! the controller waits [`backoff`]: the poll interval doubled per consecutive failure, capped at
//! the resync interval, with ±20 % jitter so many objects failing together spread out; a permanent
//! failure waits the resync interval (nothing changes by itself sooner; a spec change reconciles at
//! once). The count of consecutive failures and the last failure's time are shown in status, the
//! way cert-manager shows `failedIssuanceAttempts` and `lastFailureTime`.

use std::time::Duration;

/// Something observe had to read could not be read (the credentials, Microsoft or the Kubernetes
/// API failed); the report says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable {
    /// Retrying later can help without anybody acting.
    pub transient: bool,
}

/// One failed step, ready for a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The condition reason (a constant of `api::conditions::reasons`).
    pub reason: &'static str,
    /// What went wrong and what to do; never a secret.
    pub message: String,
    /// Retrying later can help without anybody acting.
    pub transient: bool,
}

impl Failure {
    /// A failure with these parts.
    pub fn new(reason: &'static str, message: impl Into<String>, transient: bool) -> Failure {
        Failure {
            reason,
            message: message.into(),
            transient,
        }
    }
}

/// How long to wait after the `attempts`-th consecutive failure. `jitter` is in `0.0..1.0`.
pub fn backoff(
    attempts: u32,
    transient: bool,
    poll: Duration,
    resync: Duration,
    jitter: f64,
) -> Duration {
    if !transient {
        return resync;
    }
    let doublings = attempts.saturating_sub(1).min(20);
    let base = poll.saturating_mul(1 << doublings).min(resync);
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    base.mul_f64(factor).clamp(poll.min(resync), resync)
}

/// When to look again after a reconcile: the plan's choice, or after a failure the backoff
/// (never at once).
pub fn next_look(
    planned: Duration,
    failure: Option<&Failure>,
    attempts: u32,
    poll: Duration,
    resync: Duration,
) -> Duration {
    match failure {
        Some(f) => backoff(attempts, f.transient, poll, resync, jitter()),
        None => planned,
    }
}

/// Consecutive failures that never reached the status (the Kubernetes API itself failed), per
/// object, so the error policy backs off too.
#[derive(Debug, Default)]
pub struct FailureCounts(std::sync::Mutex<std::collections::HashMap<String, u32>>);

impl FailureCounts {
    /// Counts one more failure of `key`; returns the count.
    pub fn record(&self, key: &str) -> u32 {
        let mut counts = self.0.lock().expect("failure counts lock");
        let count = counts.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// Forgets the failures of `key` (it succeeded).
    pub fn clear(&self, key: &str) {
        self.0.lock().expect("failure counts lock").remove(key);
    }
}

/// A random jitter in `0.0..1.0`.
pub fn jitter() -> f64 {
    rand::random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(30);
    const RESYNC: Duration = Duration::from_secs(600);

    #[test]
    fn transient_failures_double_from_the_poll_interval_up_to_the_resync_interval() {
        let plain = |n| backoff(n, true, POLL, RESYNC, 0.5);
        assert_eq!(plain(1), POLL);
        assert_eq!(plain(2), POLL * 2);
        assert_eq!(plain(3), POLL * 4);
        assert_eq!(plain(5), RESYNC.min(POLL * 16));
        assert_eq!(plain(6), RESYNC);
        assert_eq!(plain(60), RESYNC, "no overflow after many failures");
    }

    #[test]
    fn jitter_spreads_within_bounds_and_never_goes_below_poll_or_above_resync() {
        assert_eq!(backoff(1, true, POLL, RESYNC, 0.0), POLL);
        assert_eq!(backoff(2, true, POLL, RESYNC, 0.0), POLL.mul_f64(1.6));
        assert_eq!(backoff(2, true, POLL, RESYNC, 1.0), POLL.mul_f64(2.4));
        assert_eq!(backoff(9, true, POLL, RESYNC, 1.0), RESYNC);
    }

    #[test]
    fn failure_counts_grow_per_object_and_reset() {
        let counts = FailureCounts::default();
        assert_eq!(counts.record("a"), 1);
        assert_eq!(counts.record("a"), 2);
        assert_eq!(counts.record("b"), 1);
        counts.clear("a");
        assert_eq!(counts.record("a"), 1);
    }

    #[test]
    fn permanent_failures_wait_the_resync_interval() {
        assert_eq!(backoff(1, false, POLL, RESYNC, 0.5), RESYNC);
    }
}
