//! Retry policy: `Retry-After`, exponential backoff with jitter, caps on attempts and time.
//!
//! Contract: [`RetryPolicy::run`] repeats an attempt while it fails with a *transient*
//! [`Error`], waiting what Microsoft asked for (`Retry-After`, plus at
//! most 10 % jitter) or, without it, an exponentially growing delay with jitter. It stops after
//! `max_attempts`, or earlier when the next wait would exceed `max_elapsed` in total, returning
//! the last error (still transient, so the caller can requeue). Whether a failed attempt *may be
//! repeated* is decided by the attempt itself: a non-idempotent write that may have happened
//! fails with the permanent `OutcomeUnknown` and is therefore never repeated here.
//! Waits use Tokio's clock, so tests with a paused clock run instantly.

use crate::microsoft::error::{Error, Reason};
use rand::Rng;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How failed calls are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, including the first.
    pub max_attempts: u32,
    /// Total time budget across attempts and waits.
    pub max_elapsed: Duration,
    /// First backoff delay without `Retry-After`.
    pub base_delay: Duration,
    /// Largest backoff delay without `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_elapsed: Duration::from_secs(120),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// One decision to wait and retry, reported to an observer (metrics, tests).
#[derive(Debug, Clone)]
pub struct RetryEvent {
    /// The attempt that failed (1-based).
    pub attempt: u32,
    /// Why it failed.
    pub reason: Reason,
    /// HTTP status of the failure, if any.
    pub status: Option<u16>,
    /// The server's `Retry-After`, if any.
    pub retry_after: Option<Duration>,
    /// How long the client waits before the next attempt.
    pub wait: Duration,
}

/// Receives every [`RetryEvent`].
pub type RetryObserver = Arc<dyn Fn(&RetryEvent) + Send + Sync>;

impl RetryPolicy {
    /// The backoff before attempt `failed_attempt + 1` when the server gave no `Retry-After`:
    /// "equal jitter" — half the exponential delay fixed, half random.
    pub fn backoff(&self, failed_attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << failed_attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    /// The wait after a transient error: `Retry-After` (+ ≤10 % jitter, ≤1 s) or backoff.
    pub fn delay_for(&self, err: &Error, failed_attempt: u32) -> Duration {
        match err.retry_after() {
            Some(after) => {
                let jitter = after.mul_f64(0.1 * rand::rng().random::<f64>());
                after + jitter.min(Duration::from_secs(1))
            }
            None => self.backoff(failed_attempt),
        }
    }

    /// Runs `attempt` (given the 1-based attempt number) until it succeeds, fails permanently,
    /// or the caps are reached.
    pub async fn run<T, F, Fut>(
        &self,
        observer: Option<&RetryObserver>,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let start = tokio::time::Instant::now();
        let mut n = 1;
        loop {
            let err = match attempt(n).await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if !err.is_transient() || n >= self.max_attempts {
                return Err(err);
            }
            let wait = self.delay_for(&err, n);
            if start.elapsed() + wait > self.max_elapsed {
                return Err(err);
            }
            let event = RetryEvent {
                attempt: n,
                reason: err.reason(),
                status: err.status(),
                retry_after: err.retry_after(),
                wait,
            };
            tracing::debug!(attempt = n, reason = %event.reason, status = ?event.status, wait_ms = wait.as_millis() as u64, "retrying Microsoft call");
            if let Some(observe) = observer {
                observe(&event);
            }
            tokio::time::sleep(wait).await;
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn throttled(after_ms: Option<u64>) -> Error {
        Error::new(Reason::Throttled, "429").with_retry_after(after_ms.map(Duration::from_millis))
    }

    fn recorder() -> (RetryObserver, Arc<Mutex<Vec<RetryEvent>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        (
            Arc::new(move |e: &RetryEvent| sink.lock().unwrap().push(e.clone())),
            events,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_then_succeeds() {
        let (obs, events) = recorder();
        let policy = RetryPolicy::default();
        let start = tokio::time::Instant::now();
        let out = policy
            .run(Some(&obs), |n| async move {
                if n < 3 {
                    Err(throttled(Some(2128)))
                } else {
                    Ok(n)
                }
            })
            .await
            .unwrap();
        assert_eq!(out, 3);
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 2);
        for e in events.iter() {
            assert!(
                e.wait >= Duration::from_millis(2128)
                    && e.wait <= Duration::from_millis(2128 + 213),
                "{e:?}"
            );
        }
        assert!(start.elapsed() >= Duration::from_millis(4256));
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 20,
            max_elapsed: Duration::from_secs(3600),
            ..Default::default()
        };
        for n in 1..=12 {
            let d = policy.backoff(n);
            let full = policy
                .base_delay
                .saturating_mul(1 << (n - 1))
                .min(policy.max_delay);
            assert!(d >= full / 2 && d <= full, "attempt {n}: {d:?} vs {full:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stops_after_max_attempts_with_the_transient_error() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..Default::default()
        };
        let calls = Arc::new(Mutex::new(0));
        let c = calls.clone();
        let err = policy
            .run(None, |_| {
                *c.lock().unwrap() += 1;
                async { Err::<(), _>(Error::new(Reason::ServiceUnavailable, "503")) }
            })
            .await
            .unwrap_err();
        assert_eq!(*calls.lock().unwrap(), 3);
        assert!(err.is_transient());
    }

    #[tokio::test(start_paused = true)]
    async fn stops_when_the_time_budget_would_be_exceeded() {
        let policy = RetryPolicy {
            max_elapsed: Duration::from_secs(5),
            ..Default::default()
        };
        let calls = Arc::new(Mutex::new(0));
        let c = calls.clone();
        let start = tokio::time::Instant::now();
        let err = policy
            .run(None, |_| {
                *c.lock().unwrap() += 1;
                async { Err::<(), _>(throttled(Some(3000))) }
            })
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Reason::Throttled);
        assert_eq!(*calls.lock().unwrap(), 2, "3 s + 3 s > 5 s budget");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_and_unknown_outcomes_are_not_retried() {
        for reason in [
            Reason::OutcomeUnknown,
            Reason::InvalidRequest,
            Reason::RefreshTokenExpired,
        ] {
            let calls = Arc::new(Mutex::new(0));
            let c = calls.clone();
            let err = RetryPolicy::default()
                .run(None, |_| {
                    *c.lock().unwrap() += 1;
                    async move { Err::<(), _>(Error::new(reason, "x")) }
                })
                .await
                .unwrap_err();
            assert_eq!(err.reason(), reason);
            assert_eq!(*calls.lock().unwrap(), 1, "{reason}");
        }
    }
}
