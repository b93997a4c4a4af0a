//! Throttling, injected faults and the request log.
//!
//! Contract:
//! - [`Throttle`]: a fixed-window budget of requests per (app id, tenant id); when exceeded the
//!   caller gets Graph's 429 with `Retry-After` in whole seconds (until the window ends, rounded
//!   up, at least 1). Every answer within budget reports how much of it is used, which the HTTP
//!   layer turns into `x-ms-throttle-limit-percentage` above 0.8.
//! - [`Faults`]: rules set through `PUT /_sandbox/faults`; each Microsoft-API request whose path
//!   starts with a rule's `pathPrefix` is delayed by `latencyMs` (plus `spikeMs` with probability
//!   `spikeRate`) and then meets at most one fault, drawn once: it fails with probability `rate`
//!   (cycling through `statuses`), has its connection cut without an answer before the sandbox
//!   acts on it (`dropRate`) or after (`dropAfterRate`), or gets its answer with the body cut in
//!   half (`truncateRate`). The random stream is seeded (`seed`, default 0), so a given sequence
//!   of requests always meets the same faults.
//! - [`TokenFaults`]: rules set through `PUT /_sandbox/token-faults`; the next `count` matching
//!   token requests fail with the given AADSTS code.
//! - [`RequestLog`]: the last [`RequestLog::CAPACITY`] (or `request_log_capacity`) Microsoft-API calls (method, path,
//!   status, time, and the kind of token they carried — `user` or `app`, never the token
//!   itself); never headers or bodies, so no secret can leak into it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
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
    /// Probability (0..=1) of a latency spike: `spikeMs` more on top of `latencyMs`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spike_rate: f64,
    /// Length of a latency spike in milliseconds.
    #[serde(default, skip_serializing_if = "is_zero_ms")]
    pub spike_ms: u64,
    /// Probability (0..=1) that the connection is closed without an answer before the sandbox
    /// acts on the request (nothing happened).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drop_rate: f64,
    /// Probability (0..=1) that the sandbox acts on the request and then closes the connection
    /// without sending the answer (it happened, but the client cannot know).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drop_after_rate: f64,
    /// Probability (0..=1) that the answer's body is cut to its first half (a well-formed HTTP
    /// answer whose JSON is truncated); the sandbox acted on the request.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub truncate_rate: f64,
}

impl Default for FaultRule {
    fn default() -> Self {
        FaultRule {
            path_prefix: "/".into(),
            method: None,
            rate: 0.0,
            statuses: default_statuses(),
            retry_after_seconds: None,
            latency_ms: 0,
            spike_rate: 0.0,
            spike_ms: 0,
            drop_rate: 0.0,
            drop_after_rate: 0.0,
            truncate_rate: 0.0,
        }
    }
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn is_zero_ms(x: &u64) -> bool {
    *x == 0
}

impl FaultRule {
    /// The rule's probabilities by field name; each within 0..=1 and the outcomes together at
    /// most 1 (a request meets one fault at most).
    pub fn check(&self) -> Result<(), String> {
        let named = [
            ("rate", self.rate),
            ("spikeRate", self.spike_rate),
            ("dropRate", self.drop_rate),
            ("dropAfterRate", self.drop_after_rate),
            ("truncateRate", self.truncate_rate),
        ];
        if let Some((name, value)) = named.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Err(format!("{name} {value} is outside 0..=1"));
        }
        let outcomes = self.rate + self.drop_rate + self.drop_after_rate + self.truncate_rate;
        if outcomes > 1.0 + 1e-9 {
            return Err(format!(
                "rate + dropRate + dropAfterRate + truncateRate is {outcomes}, more than 1"
            ));
        }
        Ok(())
    }
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
    /// Mangle the exchange instead (when `fail` is `None`).
    pub mangle: Option<Mangle>,
}

/// Faults that break the exchange itself rather than answer with an error status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mangle {
    /// Close the connection without an answer; the request is not acted on.
    Drop,
    /// Act on the request, then close the connection without sending the answer.
    DropAfter,
    /// Act on the request and send the answer with its body cut to the first half.
    Truncate,
}

impl Mangle {
    /// How the request log names the fault.
    pub fn name(self) -> &'static str {
        match self {
            Mangle::Drop => "dropped",
            Mangle::DropAfter => "droppedAfterAnswer",
            Mangle::Truncate => "truncated",
        }
    }
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
        let draw = self.draw();
        let fail = (draw < rule.rate && !rule.statuses.is_empty()).then(|| {
            let status = rule.statuses[self.turn % rule.statuses.len()];
            self.turn += 1;
            (status, rule.retry_after_seconds)
        });
        let mangle = match draw - rule.rate {
            _ if fail.is_some() => None,
            d if (0.0..rule.drop_rate).contains(&d) => Some(Mangle::Drop),
            d if (0.0..rule.drop_rate + rule.drop_after_rate).contains(&d) => {
                Some(Mangle::DropAfter)
            }
            d if (0.0..rule.drop_rate + rule.drop_after_rate + rule.truncate_rate).contains(&d) => {
                Some(Mangle::Truncate)
            }
            _ => None,
        };
        let mut latency = Duration::from_millis(rule.latency_ms);
        if rule.spike_rate > 0.0 && self.draw() < rule.spike_rate {
            latency += Duration::from_millis(rule.spike_ms);
        }
        FaultDecision {
            latency,
            fail,
            mangle,
        }
    }

    /// The next number of the seeded stream, in `0.0..1.0`.
    fn draw(&mut self) -> f64 {
        self.rng = super::generate::mix(self.rng);
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
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
    /// The answer repeated an earlier one for the same request id (Partner Center's
    /// `ms-requestid` idempotency): the request was not acted on again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    /// The injected fault that broke the exchange, if any: `injected` (an error status),
    /// `dropped` (connection closed unanswered, `status` 0), `droppedAfterAnswer` (acted on,
    /// then closed; `status` is the answer that was not sent) or `truncated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<&'static str>,
    /// The object a create asks for (see [`create_target`]), for the calls that create
    /// something; absent for every other call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// How often the caller asked for one object to be created (see [`RequestLog::creates`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Creates {
    /// Creates the sandbox received and acted on (accepted or refused, e.g. as a duplicate),
    /// never counting a fault injected before acting or an answer Partner Center replayed.
    pub sent: u64,
    /// Of those, the ones whose answer the caller never read (the connection cut after the
    /// sandbox acted, or the body cut short): a caller may rightly ask again after those.
    pub unread: u64,
}

/// The object a create call asks for, named by what makes it unique in Microsoft, whether or
/// not the sandbox then refuses it as a duplicate: a relationship by its display name, a
/// service principal by tenant and app id, a delegated grant by tenant, client and resource, an
/// application permission by tenant, resource, principal and role, an access assignment by
/// relationship and group, a Partner Center consent by customer and app. `tenant` is the
/// caller's token's tenant; `None` for every call that creates nothing.
pub fn create_target(method: &str, path: &str, tenant: &str, body: &[u8]) -> Option<String> {
    if method != "POST" {
        return None;
    }
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    let field = |k: &str| {
        body.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let target = match segments.as_slice() {
        ["v1.0", "tenantRelationships", "delegatedAdminRelationships"] => {
            format!("relationship {}", field("displayName"))
        }
        [
            "v1.0",
            "tenantRelationships",
            "delegatedAdminRelationships",
            id,
            "accessAssignments",
        ] => {
            let group = body
                .pointer("/accessContainer/accessContainerId")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            format!("accessAssignment {id} {}", group.to_ascii_lowercase())
        }
        ["v1.0", "servicePrincipals"] => format!("servicePrincipal {tenant} {}", field("appId")),
        ["v1.0", "oauth2PermissionGrants"] => format!(
            "grant {tenant} {} {}",
            field("clientId"),
            field("resourceId")
        ),
        ["v1.0", "servicePrincipals", resource, "appRoleAssignedTo"] => format!(
            "appRoleAssignment {tenant} {} {} {}",
            resource.to_ascii_lowercase(),
            field("principalId"),
            field("appRoleId")
        ),
        ["v1", "customers", customer, "applicationconsents"] => format!(
            "consent {} {}",
            customer.to_ascii_lowercase(),
            field("applicationId")
        ),
        _ => return None,
    };
    Some(target)
}

/// Marks an answer that replays an earlier one (set as a response extension by the handler).
#[derive(Debug, Clone, Copy)]
pub struct Replayed;

/// Bounded log of Microsoft-API calls, with unbounded counters since the last clear.
#[derive(Debug)]
pub struct RequestLog {
    entries: VecDeque<LogEntry>,
    capacity: usize,
    totals: LogTotals,
    writes_by_path: BTreeMap<String, u64>,
    creates: BTreeMap<String, Creates>,
}

impl Default for RequestLog {
    fn default() -> Self {
        RequestLog::with_capacity(Self::CAPACITY)
    }
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
    /// The default number of entries kept.
    pub const CAPACITY: usize = 10_000;

    /// A log that keeps the last `capacity` entries (at least one).
    pub fn with_capacity(capacity: usize) -> RequestLog {
        RequestLog {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            totals: LogTotals::default(),
            writes_by_path: BTreeMap::new(),
            creates: BTreeMap::new(),
        }
    }

    /// Appends an entry, dropping the oldest beyond capacity.
    pub fn push(&mut self, entry: LogEntry) {
        self.totals.calls += 1;
        if is_write(&entry.method, &entry.path) {
            self.totals.writes += 1;
            *self
                .writes_by_path
                .entry(format!("{} {}", entry.method, entry.path))
                .or_default() += 1;
        }
        let acted = entry.status != 0 && entry.fault != Some("injected") && !entry.replayed;
        if let Some(target) = entry.target.as_ref().filter(|_| acted) {
            let creates = self.creates.entry(target.clone()).or_default();
            creates.sent += 1;
            if matches!(entry.fault, Some("droppedAfterAnswer" | "truncated")) {
                creates.unread += 1;
            }
        }
        if self.entries.len() >= self.capacity {
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

    /// Every write since the last clear, counted by `"METHOD /path"` (no query string): never
    /// capped, so a test can prove that each intended write happened exactly once.
    pub fn writes_by_path(&self) -> &BTreeMap<String, u64> {
        &self.writes_by_path
    }

    /// Every create since the last clear, counted by the object it asked for
    /// ([`create_target`]): never capped, so a test proves from the caller's own writes — not
    /// from the sandbox refusing a duplicate — that it asked for each object once.
    pub fn creates(&self) -> &BTreeMap<String, Creates> {
        &self.creates
    }

    /// Empties the log and resets the counters.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.totals = LogTotals::default();
        self.writes_by_path.clear();
        self.creates.clear();
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
                ..Default::default()
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
                ..Default::default()
            }],
            seed: None,
        });
        assert_eq!(f.decide("post", "/v1.0/x").fail, Some((503, None)));
        assert_eq!(f.decide("GET", "/v1.0/x").fail, None);
    }

    #[test]
    fn one_draw_picks_at_most_one_fault_in_the_configured_shares() {
        let mut f = Faults::default();
        f.set(FaultConfig {
            rules: vec![FaultRule {
                rate: 0.2,
                statuses: vec![429],
                drop_rate: 0.1,
                drop_after_rate: 0.1,
                truncate_rate: 0.1,
                spike_rate: 0.5,
                spike_ms: 300,
                ..Default::default()
            }],
            seed: Some(7),
        });
        let decisions: Vec<FaultDecision> = (0..4000).map(|_| f.decide("GET", "/x")).collect();
        let share = |p: &dyn Fn(&FaultDecision) -> bool| {
            decisions.iter().filter(|d| p(d)).count() as f64 / decisions.len() as f64
        };
        let near = |x: f64, want: f64| (x - want).abs() < 0.03;
        assert!(near(share(&|d| d.fail.is_some()), 0.2));
        for mangle in [Mangle::Drop, Mangle::DropAfter, Mangle::Truncate] {
            assert!(
                near(share(&|d| d.mangle == Some(mangle)), 0.1),
                "{mangle:?}"
            );
        }
        assert_eq!(share(&|d| d.fail.is_some() && d.mangle.is_some()), 0.0);
        assert!(near(
            share(&|d| d.latency == Duration::from_millis(300)),
            0.5
        ));
    }

    #[test]
    fn probabilities_are_checked_by_name() {
        let rule = |f: fn(&mut FaultRule)| {
            let mut r = FaultRule::default();
            f(&mut r);
            r.check()
        };
        assert!(rule(|r| r.rate = 0.5).is_ok());
        assert!(
            rule(|r| r.drop_rate = 1.5)
                .unwrap_err()
                .contains("dropRate")
        );
        let both = rule(|r| {
            r.rate = 0.6;
            r.truncate_rate = 0.6
        });
        assert!(both.unwrap_err().contains("more than 1"));
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

    fn create(path: &str, body: &str, fault: Option<&'static str>, status: u16) -> LogEntry {
        LogEntry {
            method: "POST".into(),
            path: path.into(),
            status,
            time: Utc::now(),
            priority: None,
            token: None,
            replayed: false,
            fault,
            target: create_target("POST", path, "T", body.as_bytes()),
        }
    }

    #[test]
    fn creates_are_counted_by_the_object_they_ask_for_refused_or_not_and_beyond_capacity() {
        let rels = "/v1.0/tenantRelationships/delegatedAdminRelationships";
        let mut log = RequestLog::with_capacity(1);
        log.push(create(rels, r#"{"displayName": "A"}"#, None, 201));
        log.push(create(rels, r#"{"displayName": "a"}"#, None, 400));
        log.push(create(
            rels,
            r#"{"displayName": "B"}"#,
            Some("injected"),
            503,
        ));
        log.push(create(rels, r#"{"displayName": "B"}"#, Some("dropped"), 0));
        log.push(create(
            rels,
            r#"{"displayName": "B"}"#,
            Some("droppedAfterAnswer"),
            201,
        ));
        log.push(create(
            "/v1.0/servicePrincipals",
            r#"{"appId": "X"}"#,
            None,
            201,
        ));
        assert_eq!(
            log.creates().get("relationship a"),
            Some(&Creates { sent: 2, unread: 0 }),
            "a refused duplicate is still a create the caller sent"
        );
        assert_eq!(
            log.creates().get("relationship b"),
            Some(&Creates { sent: 1, unread: 1 }),
            "faults before acting are not counted"
        );
        assert_eq!(
            log.creates().get("servicePrincipal T x"),
            Some(&Creates { sent: 1, unread: 0 })
        );
        assert_eq!(create_target("GET", rels, "T", b"{}"), None);
        assert_eq!(create_target("POST", "/v1.0/users", "T", b"{}"), None);
        log.clear();
        assert!(log.creates().is_empty());
    }
}
