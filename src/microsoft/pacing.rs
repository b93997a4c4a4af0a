//! Pacing of background reads: low priority, and slower when the throttle budget runs low.
//!
//! Contract: a Graph call made with an app-only token ([`TokenKind::App`]) is a *background
//! read* (imports, periodic checks). The transport sends it with `x-ms-throttle-priority: low`,
//! and records, per tenant, the `x-ms-throttle-limit-percentage` Graph adds to answers once an
//! application has used more than 80 % of its budget in that tenant. Before the next background
//! call to that tenant the transport waits [`pause_for`] the last value seen: nothing below
//! 0.8; 100 ms at 0.8, doubling every 0.05 (0.9 → 400 ms, 1.0 → 1.6 s), at most 2 s. A value is
//! forgotten after [`HINT_LIFETIME`] (one identity-service throttle window) or when an answer
//! comes without the header. Pacing only spaces requests out; a 429 is still handled by the
//! retry policy with `Retry-After`.
//!
//! [`TokenKind::App`]: crate::microsoft::TokenKind::App

use reqwest::header::HeaderMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Request header that marks a call's priority.
pub const PRIORITY_HEADER: &str = "x-ms-throttle-priority";
/// Response header with the share of the throttle budget used (only sent above 0.8).
pub const LIMIT_PERCENTAGE_HEADER: &str = "x-ms-throttle-limit-percentage";
/// How long an observed percentage is taken into account.
pub const HINT_LIFETIME: Duration = Duration::from_secs(10);
/// Longest pause before one background call.
pub const MAX_PAUSE: Duration = Duration::from_secs(2);

/// One pause before a background call, as a pace observer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PaceEvent {
    /// The tenant whose budget is nearly spent.
    pub tenant_id: String,
    /// The last `x-ms-throttle-limit-percentage` seen for it.
    pub limit_percentage: f64,
    /// How long the call waits.
    pub wait: Duration,
}

/// Sees every pause (metrics, tests).
pub type PaceObserver = Arc<dyn Fn(&PaceEvent) + Send + Sync>;

/// The pause before a background call when the budget is `percentage` used (see module docs).
pub fn pause_for(percentage: f64) -> Duration {
    if !percentage.is_finite() || percentage < 0.8 {
        return Duration::ZERO;
    }
    let doublings = ((percentage - 0.8) / 0.05).min(8.0);
    Duration::from_millis(100)
        .mul_f64(2f64.powf(doublings))
        .min(MAX_PAUSE)
}

/// Reads `x-ms-throttle-limit-percentage` from an answer.
pub fn limit_percentage(headers: &HeaderMap) -> Option<f64> {
    headers
        .get(LIMIT_PERCENTAGE_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && *p >= 0.0)
}

/// The last throttle hint per tenant.
#[derive(Debug, Default)]
pub struct Pacer {
    hints: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Pacer {
    /// Records the hint of an answer from `tenant` (or forgets it when the answer has none).
    pub fn observe(&self, tenant: &str, headers: &HeaderMap) {
        let mut hints = self.hints.lock().expect("pacer lock");
        match limit_percentage(headers) {
            Some(p) => {
                hints.insert(tenant.to_ascii_lowercase(), (p, Instant::now()));
            }
            None => {
                hints.remove(&tenant.to_ascii_lowercase());
            }
        }
    }

    /// The pause due before the next background call to `tenant`, with the hint behind it.
    pub fn pause(&self, tenant: &str) -> Option<(f64, Duration)> {
        let hints = self.hints.lock().expect("pacer lock");
        let (p, seen) = *hints.get(&tenant.to_ascii_lowercase())?;
        if seen.elapsed() > HINT_LIFETIME {
            return None;
        }
        let wait = pause_for(p);
        (!wait.is_zero()).then_some((p, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn pauses_grow_with_the_budget_used_and_are_capped() {
        let table = [
            (0.0, 0),
            (0.79, 0),
            (0.8, 100),
            (0.85, 200),
            (0.9, 400),
            (0.95, 800),
            (1.0, 1600),
            (1.2, 2000),
            (1.8, 2000),
            (f64::NAN, 0),
        ];
        for (p, ms) in table {
            let got = pause_for(p).as_millis();
            assert!(got.abs_diff(ms) <= 1, "{p}: {got} ms, want {ms} ms");
        }
    }

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(LIMIT_PERCENTAGE_HEADER, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[tokio::test(start_paused = true)]
    async fn hints_are_per_tenant_cleared_by_a_plain_answer_and_expire() {
        let pacer = Pacer::default();
        assert_eq!(pacer.pause("t"), None);
        pacer.observe("T", &headers(Some("0.9")));
        let (p, wait) = pacer.pause("t").unwrap();
        assert_eq!(p, 0.9);
        assert_eq!(wait.as_millis(), 400);
        assert_eq!(pacer.pause("other"), None);
        pacer.observe("t", &headers(None));
        assert_eq!(
            pacer.pause("t"),
            None,
            "an answer without the header clears it"
        );
        pacer.observe("t", &headers(Some("not a number")));
        assert_eq!(pacer.pause("t"), None);
        pacer.observe("t", &headers(Some("1.0")));
        tokio::time::advance(HINT_LIFETIME + Duration::from_millis(1)).await;
        assert_eq!(pacer.pause("t"), None, "hints expire");
    }
}
