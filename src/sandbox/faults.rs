//! Throttling, injected faults and the request log.
//!
//! Contract:
//! - [`Throttle`]: a fixed-window budget of requests per (app id, tenant id); when exceeded the
//!   caller gets Graph's 429 with `Retry-After` in whole seconds (until the window ends, rounded
//!   up, at least 1). Every answer within budget reports how much of it is used, which the HTTP
//!   layer turns into `x-ms-throttle-limit-percentage` above 0.8.
//! - [`Faults`]: rules set through `PUT /_sandbox/faults`; each Microsoft-API request whose path
//!   starts with a rule's `pathPrefix` is delayed by `latencyMs` and fails with probability
//!   `rate`, cycling through `statuses`. The random stream is seeded (`seed`, default 0), so a
//!   given sequence of requests always meets the same faults.
//! - [`TokenFaults`]: rules set through `PUT /_sandbox/token-faults`; the next `count` matching
//!   token requests fail with the given AADSTS code.
//! - [`RequestLog`]: the last [`RequestLog::CAPACITY`] Microsoft-API calls (method, path,
//!   status, time, and the kind of token they carried — `user` or `app`, never the token
//!   itself); never headers or bodies, so no secret can leak into it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Throttling budget.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleOptions {
    /// Requests allowed per (app, tenant) in one window; 0 disables throttling.
    pub budget: u32,
    /// Window length.
    pub window: Duration,
}

impl Default for ThrottleOptions {
    fn default() -> Self {
        ThrottleOptions {
            budget: 2000,
            window: Duration::from_secs(10),
        }
    }
}

/// What the throttle decided about one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Within budget; `used` is the share of the window's budget spent, this request included.
    Allowed {
        /// Share of the budget used (0 when throttling is off).
        used: f64,
    },
    /// Over budget: retry after this many whole seconds.
    Throttled {
        /// Share of the budget asked for (above 1).
        used: f64,
        /// Whole seconds until the window ends, at least 1.
        retry_after: u64,
    },
}

/// Seconds for `Retry-After` as Graph and HTTP write them: whole seconds, rounded up, never 0
/// (a client told to retry after 0 s would hammer the service).
pub fn whole_seconds(seconds: f64) -> u64 {
    if !seconds.is_finite() {
        return 1;
    }
    (seconds.ceil() as u64).max(1)
}

/// Fixed-window request counters per (app, tenant).
#[derive(Debug)]
pub struct Throttle {
    /// Current options (changeable through the control API).
    pub options: ThrottleOptions,
    windows: HashMap<(String, String), (Instant, u32)>,
}

impl Throttle {
    /// A throttle with these options.
    pub fn new(options: ThrottleOptions) -> Throttle {
        Throttle {
            options,
            windows: HashMap::new(),
        }
    }

    /// Counts one request and judges it.
    pub fn check(&mut self, app: &str, tenant: &str) -> Verdict {
        if self.options.budget == 0 {
            return Verdict::Allowed { used: 0.0 };
        }
        let now = Instant::now();
        let window = self.options.window;
        let entry = self
            .windows
            .entry((app.to_string(), tenant.to_string()))
            .or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        let used = f64::from(entry.1) / f64::from(self.options.budget);
        if entry.1 <= self.options.budget {
            return Verdict::Allowed { used };
        }
        let left = window
            .saturating_sub(now.duration_since(entry.0))
            .as_secs_f64();
        Verdict::Throttled {
            used,
            retry_after: whole_seconds(left),
        }
    }

    /// Forgets all counters.
    pub fn reset(&mut self) {
        self.windows.clear();
    }
}

/// One fault rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// Requests whose path starts with this prefix are affected.
    pub path_prefix: String,
    /// Only requests with this HTTP method (e.g. `POST`) are affected; all methods when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Probability (0..=1) that a request fails.
    #[serde(default)]
    pub rate: f64,
    /// Statuses to fail with, used in turn (default `[503]`).
    #[serde(default = "default_statuses")]
    pub statuses: Vec<u16>,
    /// `Retry-After` for 429/503 in seconds (omitted when absent); sent rounded up to whole
    /// seconds, at least 1.
    #[serde(default)]
    pub retry_after_seconds: Option<f64>,
    /// Added latency in milliseconds for every matching request.
    #[serde(default)]
    pub latency_ms: u64,
}

fn default_statuses() -> Vec<u16> {
    vec![503]
}

/// The body of `PUT /_sandbox/faults`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultConfig {
    /// Rules; the first matching rule applies.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    /// Seed of the random stream.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// What to do to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultDecision {
    /// Added latency.
    pub latency: Duration,
    /// Fail with this status and optional Retry-After.
    pub fail: Option<(u16, Option<f64>)>,
}

/// Injected faults.
#[derive(Debug, Default)]
pub struct Faults {
    config: FaultConfig,
    rng: u64,
    turn: usize,
}

impl Faults {
    /// Replaces the rules and reseeds.
    pub fn set(&mut self, config: FaultConfig) {
        self.rng = config.seed.unwrap_or(0);
        self.turn = 0;
        self.config = config;
    }

    /// The current configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Decides the fate of a `method` request to `path`.
    pub fn decide(&mut self, method: &str, path: &str) -> FaultDecision {
        let applies = |r: &FaultRule| {
            path.starts_with(&r.path_prefix)
                && r.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
        };
        let Some(rule) = self.config.rules.iter().find(|r| applies(r)).cloned() else {
            return FaultDecision::default();
        };
        self.rng = super::generate::mix(self.rng);
        let draw = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let fail = (draw < rule.rate && !rule.statuses.is_empty()).then(|| {
            let status = rule.statuses[self.turn % rule.statuses.len()];
            self.turn += 1;
            (status, rule.retry_after_seconds)
        });
        FaultDecision {
            latency: Duration::from_millis(rule.latency_ms),
            fail,
        }
    }
}

/// One injected token error rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenFaultRule {
    /// Only token requests for this tenant (any when absent).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Only this grant type (`refresh_token` or `client_credentials`; any when absent).
    #[serde(default)]
    pub grant_type: Option<String>,
    /// The AADSTS code to fail with.
    pub aadsts: u32,
    /// How many matching requests fail (default 1).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// The body of `PUT /_sandbox/token-faults`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenFaults {
    /// Rules, consumed in order.
    #[serde(default)]
    pub rules: Vec<TokenFaultRule>,
}

impl TokenFaults {
    /// Consumes one matching rule and returns its AADSTS code.
    pub fn take(&mut self, tenant: &str, grant_type: &str) -> Option<u32> {
        let rule = self.rules.iter_mut().find(|r| {
            r.count > 0
                && r.tenant_id
                    .as_deref()
                    .is_none_or(|t| t.eq_ignore_ascii_case(tenant))
                && r.grant_type.as_deref().is_none_or(|g| g == grant_type)
        })?;
        rule.count -= 1;
        let code = rule.aadsts;
        self.rules.retain(|r| r.count > 0);
        Some(code)
    }
}

/// One logged Microsoft-API call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// HTTP method.
    pub method: String,
    /// Path (no query string: it may carry tokens).
    pub path: String,
    /// Response status.
    pub status: u16,
    /// When the request arrived.
    pub time: DateTime<Utc>,
    /// The request's `x-ms-throttle-priority`, when it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// The kind of the bearer token the request carried, from its `idtyp` claim: `user`
    /// (delegated, app + user) or `app` (app-only); absent without a valid sandbox token (token
    /// requests, refused tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Bounded log of Microsoft-API calls, with unbounded counters since the last clear.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: VecDeque<LogEntry>,
    totals: LogTotals,
}

/// Counters of the request log since it was last cleared; they count every call, also those
/// whose entries were dropped beyond the log's capacity.
#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogTotals {
    /// Every logged call.
    pub calls: u64,
    /// Calls that may change Microsoft's state: any method but GET and HEAD, except the token
    /// endpoint (`…/oauth2/…`), whose POSTs only read.
    pub writes: u64,
    /// Entries dropped because the log was full.
    pub dropped: u64,
}

impl RequestLog {
    /// Maximum number of entries kept.
    pub const CAPACITY: usize = 10_000;

    /// Appends an entry, dropping the oldest beyond capacity.
    pub fn push(&mut self, entry: LogEntry) {
        self.totals.calls += 1;
        if is_write(&entry.method, &entry.path) {
            self.totals.writes += 1;
        }
        if self.entries.len() == Self::CAPACITY {
            self.entries.pop_front();
            self.totals.dropped += 1;
        }
        self.entries.push_back(entry);
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.entries.iter().cloned().collect()
    }

    /// The counters since the last clear.
    pub fn totals(&self) -> LogTotals {
        self.totals
    }

    /// Empties the log and resets the counters.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.totals = LogTotals::default();
    }
}

/// Whether a call may change Microsoft's state (see [`LogTotals::writes`]).
pub fn is_write(method: &str, path: &str) -> bool {
    !matches!(method, "GET" | "HEAD") && !path.contains("/oauth2/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_refuses_beyond_budget_with_a_retry_after_within_the_window() {
        let mut t = Throttle::new(ThrottleOptions {
            budget: 2,
            window: Duration::from_secs(10),
        });
        assert_eq!(t.check("a", "t"), Verdict::Allowed { used: 0.5 });
        assert_eq!(t.check("a", "t"), Verdict::Allowed { used: 1.0 });
        let Verdict::Throttled { used, retry_after } = t.check("a", "t") else {
            panic!("third request throttled")
        };
        assert_eq!(used, 1.5);
        assert_eq!(retry_after, 10, "whole seconds, rounded up");
        assert_eq!(
            t.check("a", "other"),
            Verdict::Allowed { used: 0.5 },
            "budget is per tenant"
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_never_zero() {
        for (secs, want) in [
            (0.0, 1),
            (0.001, 1),
            (0.25, 1),
            (1.0, 1),
            (1.2, 2),
            (9.999, 10),
            (f64::NAN, 1),
        ] {
            assert_eq!(whole_seconds(secs), want, "{secs}");
        }
    }

    #[test]
    fn faults_are_deterministic_for_a_seed_and_honour_rate() {
        let config = FaultConfig {
            rules: vec![FaultRule {
                path_prefix: "/v1.0/".into(),
                method: None,
                rate: 0.5,
                statuses: vec![429, 503],
                retry_after_seconds: Some(0.2),
                latency_ms: 0,
            }],
            seed: Some(42),
        };
        let run = || {
            let mut f = Faults::default();
            f.set(config.clone());
            (0..200)
                .map(|_| f.decide("GET", "/v1.0/users").fail.map(|x| x.0))
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let failures = a.iter().flatten().count();
        assert!((60..140).contains(&failures), "{failures}");
        assert!(a.contains(&Some(429)) && a.contains(&Some(503)));
        let mut f = Faults::default();
        f.set(config);
        assert_eq!(f.decide("GET", "/v1/customers/x").fail, None);
    }

    #[test]
    fn a_rule_with_a_method_spares_other_methods() {
        let mut f = Faults::default();
        f.set(FaultConfig {
            rules: vec![FaultRule {
                path_prefix: "/v1.0/".into(),
                method: Some("POST".into()),
                rate: 1.0,
                statuses: vec![503],
                retry_after_seconds: None,
                latency_ms: 0,
            }],
            seed: None,
        });
        assert_eq!(f.decide("post", "/v1.0/x").fail, Some((503, None)));
        assert_eq!(f.decide("GET", "/v1.0/x").fail, None);
    }

    #[test]
    fn token_faults_are_consumed() {
        let mut tf = TokenFaults {
            rules: vec![TokenFaultRule {
                tenant_id: None,
                grant_type: Some("refresh_token".into()),
                aadsts: 50076,
                count: 1,
            }],
        };
        assert_eq!(tf.take("t", "client_credentials"), None);
        assert_eq!(tf.take("t", "refresh_token"), Some(50076));
        assert_eq!(tf.take("t", "refresh_token"), None);
    }
}
