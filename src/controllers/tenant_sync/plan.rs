//! The pure heart of the TenantSync controller: from what the object asks for, what was observed
//! (the AppConsent, this object's import in the operator process) and the history of its imports,
//! decide whether an import starts now, when to look again, when the next import is due and when
//! the data turns stale. No I/O, no clock: `now` is passed in.
//!
//! When an import is due (see [`due`]):
//! - a new value of the annotation `gdap.io/sync-now` (one not recorded in
//!   `status.lastSyncRequest`) starts one at once, even while suspended;
//! - otherwise the first scheduled run (`spec.schedule` plus the object's stable jitter) strictly
//!   after the last attempt — or after the object's creation before any — unless suspended. A run
//!   missed while the operator was down, or while the previous import was still running, runs
//!   once, at once;
//! - after a failure, the retry of `controllers::failure::backoff` (from the poll interval,
//!   doubling, up to the resync interval; a failure a person must fix waits the resync interval)
//!   when it comes before the next scheduled run — or at once when the spec changed since (the
//!   fix is tried right away). Its jitter is derived from the object's key and the attempt count,
//!   so the time is the same at every reconcile.
//!
//! Nothing starts while the object's previous import still runs, while the AppConsent is missing
//! or not Ready, or while the spec is invalid.
//!
//! **Microsoft is eventually consistent.** Entra makes new application permissions effective
//! some time after they are granted (and the AppConsent turns Ready when Graph's reads show them,
//! not when they take effect): until then the partner app's token carries no `roles` and Graph
//! answers the import 403. So an import refused that way within `--propagation-timeout` of the
//! AppConsent's consent ([`Observed::consent_since`]), while no import has succeeded since, is a
//! transient `Propagating` failure, retried with the backoff ([`propagation`]); later — or once
//! an import succeeded with that consent — it is `AccessDenied`: a revoked consent is what a
//! person must look at. Stale: two scheduled runs have come due since the
//! last success (or since creation) and `now` is past the second ([`stale_window`], the rule of
//! `sync::schedule::is_stale`).

use super::desired::Intent;
use crate::api::conditions::reasons;
use crate::api::rules::FieldProblem;
use crate::api::tenant_sync::TenantSyncStatus;
use crate::controllers::failure::{self, Failure};
use crate::controllers::timing::Timing;
use crate::sync::ImportReport;
use crate::sync::schedule::{Schedule, next_run};
use chrono::{DateTime, SubsecRound, Utc};
use std::time::Duration;

/// The AppConsent the object names, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    /// It exists, is for the same customer and is Ready.
    Ready,
    /// No AppConsent of that name in the namespace.
    Missing,
    /// It exists but is not Ready (its Ready condition's reason and message, when it has one).
    NotReady {
        /// Its Ready condition's reason, or empty.
        reason: String,
        /// Its Ready condition's message, or empty.
        message: String,
        /// It names the same credentials Secret as this object (both `spec.credentialsRef`
        /// absent, or naming one Secret): its credentials problem is this object's too.
        same_credentials: bool,
    },
    /// It consents another customer tenant than `spec.customer`.
    OtherCustomer {
        /// The AppConsent's customer tenant.
        tenant: String,
    },
}

/// One import attempt that ended: a run that finished (or failed), or a start that failed before
/// any run (credentials or the connection Secret could not be read).
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// Unique within the operator process (the runner's sequence number; 0 for a failed start).
    pub id: u64,
    /// The `gdap.io/sync-now` value honoured by this attempt (the last one honoured before, for
    /// a scheduled run), recorded in `status.lastSyncRequest`.
    pub request: Option<String>,
    /// When the import began (after waiting for a slot of `--sync-concurrency`).
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// The import's report, or why it failed.
    pub outcome: Result<Box<ImportReport>, Failure>,
}

/// Everything observed for one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The AppConsent.
    pub consent: Consent,
    /// Since when this object's import has been running (or waiting for a slot), if it is.
    pub running_since: Option<DateTime<Utc>>,
    /// An attempt that ended and is not recorded in status yet.
    pub finished: Option<Attempt>,
    /// When the AppConsent last consented or became Ready (the later of `status.consentedAt`
    /// and its Ready condition's transition to True), if known.
    pub consent_since: Option<DateTime<Utc>>,
    /// The customer's name, as the AppConsent's status has it from Microsoft.
    pub customer_name: Option<String>,
}

/// What the status records of past attempts, with unrecorded attempts applied
/// ([`History::with`]). Times are whole seconds, as the status keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// When the last attempt started (`status.lastSyncTime`).
    pub last_attempt: Option<DateTime<Utc>>,
    /// When the last successful import started (`status.lastSuccessfulSyncTime`).
    pub last_success: Option<DateTime<Utc>>,
    /// Consecutive failures (`status.failedAttempts`).
    pub failed_attempts: u32,
    /// When the last failure happened (`status.lastFailureTime`).
    pub last_failure: Option<DateTime<Utc>>,
    /// Whether the last failure was transient (its reason is `TransientError` or
    /// `KubernetesError`).
    pub last_failure_transient: bool,
    /// The last `gdap.io/sync-now` value honoured (`status.lastSyncRequest`).
    pub handled_request: Option<String>,
}

impl History {
    /// What a status records.
    pub fn from_status(status: &TenantSyncStatus) -> History {
        let synced = status
            .conditions
            .iter()
            .find(|c| c.type_ == crate::api::conditions::types::SYNCED);
        History {
            last_attempt: status.last_sync_time.as_ref().map(from_time),
            last_success: status.last_successful_sync_time.as_ref().map(from_time),
            failed_attempts: status.failed_attempts,
            last_failure: status.last_failure_time.as_ref().map(from_time),
            last_failure_transient: synced
                .is_some_and(|c| c.status == "False" && is_transient_reason(&c.reason)),
            handled_request: status.last_sync_request.clone(),
        }
    }

    /// The history after `attempt`.
    pub fn with(&self, attempt: &Attempt) -> History {
        let mut next = self.clone();
        next.last_attempt = Some(attempt.started_at.trunc_subsecs(0));
        next.handled_request = attempt.request.clone();
        match &attempt.outcome {
            Ok(_) => {
                next.last_success = next.last_attempt;
                next.failed_attempts = 0;
            }
            Err(failure) => {
                next.failed_attempts = self.failed_attempts.saturating_add(1);
                next.last_failure = Some(attempt.finished_at.trunc_subsecs(0));
                next.last_failure_transient = failure.transient;
            }
        }
        next
    }

    /// Whether the status already records `attempt` (a status write whose answer was lost).
    pub fn records(&self, attempt: &Attempt) -> bool {
        self.last_attempt == Some(attempt.started_at.trunc_subsecs(0))
            && self.handled_request == attempt.request
    }
}

/// Reasons of failures that retrying cures without anybody acting.
pub fn is_transient_reason(reason: &str) -> bool {
    reason == reasons::TRANSIENT_ERROR
        || reason == reasons::KUBERNETES_ERROR
        || reason == reasons::PROPAGATING
}

/// `attempt` as the status records it: an import Graph refused (`AccessDenied`) that ended
/// within `propagation_timeout` of the AppConsent's consent (`consent_since`), with no import
/// succeeding since that consent (`history`), met application permissions Entra had not made
/// effective yet — a transient `Propagating` failure, retried with the backoff. Any other attempt
/// is unchanged.
pub fn propagation(
    attempt: Attempt,
    consent_since: Option<DateTime<Utc>>,
    history: &History,
    timing: &Timing,
) -> Attempt {
    let Err(failure) = &attempt.outcome else {
        return attempt;
    };
    let Some(since) = consent_since else {
        return attempt;
    };
    if history
        .last_success
        .is_some_and(|success| success >= since.trunc_subsecs(0))
    {
        return attempt; // the permissions were in effect: a refusal now is a revocation
    }
    let timeout =
        chrono::Duration::from_std(timing.propagation_timeout).unwrap_or(chrono::Duration::MAX);
    let until = since
        .checked_add_signed(timeout)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if failure.reason != reasons::ACCESS_DENIED || attempt.finished_at >= until {
        return attempt;
    }
    let message = format!(
        "{}; the AppConsent consented at {}, and Entra makes new application permissions effective only after a while: retrying with a backoff until {} (--propagation-timeout {}), after that this is AccessDenied",
        failure.message,
        since.format("%Y-%m-%dT%H:%M:%SZ"),
        until.format("%Y-%m-%dT%H:%M:%SZ"),
        humantime::format_duration(timing.propagation_timeout)
    );
    Attempt {
        outcome: Err(Failure::new(reasons::PROPAGATING, message, true)),
        ..attempt
    }
}

pub use crate::controllers::conditions::from_time;

/// Why an import starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A new `gdap.io/sync-now` value.
    Requested,
    /// The schedule: this run was due at `due`.
    Scheduled {
        /// When it was due.
        due: DateTime<Utc>,
    },
    /// A retry after `failed_attempts` failures, due at `due`.
    Retry {
        /// When it was due.
        due: DateTime<Utc>,
        /// Failures so far.
        failed_attempts: u32,
    },
}

/// An import to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// Why.
    pub trigger: Trigger,
    /// The `gdap.io/sync-now` value the run honours (recorded once it ends).
    pub request: Option<String>,
}

/// The one thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The spec cannot be acted on (the schedule does not parse); nothing runs until it changes.
    Refuse(FieldProblem),
    /// The AppConsent is missing, not Ready or for another customer; nothing runs until it is.
    WaitForConsent,
    /// The object's import is running (or waiting for a slot); its end triggers a reconcile.
    Running,
    /// Start an import now.
    Start(Start),
    /// `spec.suspend`: nothing is scheduled.
    Suspended,
    /// Nothing is due before `Plan::next_sync`.
    Wait,
}

/// The decision, and the times the status shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What to do.
    pub action: Action,
    /// When the next import is due (`status.nextSyncTime`); `None` when suspended or refused.
    pub next_sync: Option<DateTime<Utc>>,
    /// The two scheduled runs after the last success (or creation): Stale from the second.
    /// `None` when suspended or refused.
    pub stale_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// When to look again by the clock; `None` waits for a change, the AppConsent or the end
    /// of the running import (the controller still looks at the resync interval).
    pub requeue: Option<Duration>,
}

impl Plan {
    /// Whether the data is stale at `now`.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        self.stale_window.is_some_and(|(_, second)| now >= second)
    }
}

/// Decides the next step for the object (see the module docs).
pub fn plan(
    intent: &Intent,
    observed: &Observed,
    history: &History,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    let schedule = match &intent.schedule {
        Ok(s) => s,
        Err(problem) => {
            return Plan {
                action: Action::Refuse(problem.clone()),
                next_sync: None,
                stale_window: None,
                requeue: None,
            };
        }
    };
    let due = due(schedule, intent, history, timing);
    let action = decide(intent, observed, history, due, now);
    let key = &intent.key;
    let next_sync = match (&action, observed.running_since) {
        _ if intent.suspend => None,
        (Action::Running, Some(since)) => next_run(schedule, key, since),
        (Action::Start(_), _) => next_run(schedule, key, now),
        _ => due.map(|(at, _)| at),
    };
    let since = history.last_success.unwrap_or(intent.created);
    let stale_window = (!intent.suspend)
        .then(|| stale_window(schedule, key, since))
        .flatten();
    let stale_flip = stale_window
        .map(|(_, second)| second)
        .filter(|second| *second > now);
    let requeue = match action {
        Action::Running | Action::WaitForConsent => until(stale_flip, now),
        Action::Wait => until(earliest(due.map(|(at, _)| at), stale_flip), now),
        _ => None,
    };
    Plan {
        action,
        next_sync,
        stale_window,
        requeue,
    }
}

/// The one thing to do (see the module docs for the order of the rules).
fn decide(
    intent: &Intent,
    observed: &Observed,
    history: &History,
    due: Option<(DateTime<Utc>, Trigger)>,
    now: DateTime<Utc>,
) -> Action {
    if observed.running_since.is_some() {
        return Action::Running;
    }
    let requested = intent
        .requested
        .as_ref()
        .filter(|r| Some(*r) != history.handled_request.as_ref());
    if intent.suspend && requested.is_none() {
        return Action::Suspended;
    }
    if observed.consent != Consent::Ready {
        return Action::WaitForConsent;
    }
    if let Some(request) = requested {
        return Action::Start(Start {
            trigger: Trigger::Requested,
            request: Some(request.clone()),
        });
    }
    match due {
        Some((at, trigger)) if at <= now => Action::Start(Start {
            trigger,
            request: history.handled_request.clone(),
        }),
        _ => Action::Wait,
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// When the next import is due and why: the next scheduled run after the last attempt (or
/// creation), or the retry after a failure if sooner. `None` only past the year 5000.
pub fn due(
    schedule: &Schedule,
    intent: &Intent,
    history: &History,
    timing: &Timing,
) -> Option<(DateTime<Utc>, Trigger)> {
    let after = history
        .last_attempt
        .max(history.last_failure)
        .unwrap_or(intent.created);
    let scheduled = next_run(schedule, &intent.key, after)?;
    let on_schedule = (scheduled, Trigger::Scheduled { due: scheduled });
    let Some(failed) = history.last_failure.filter(|_| history.failed_attempts > 0) else {
        return Some(on_schedule);
    };
    if intent.changed {
        return Some((
            failed,
            Trigger::Retry {
                due: failed,
                failed_attempts: history.failed_attempts,
            },
        ));
    }
    let attempts = history.failed_attempts;
    let wait = failure::backoff(
        attempts,
        history.last_failure_transient,
        timing.poll,
        timing.resync,
        stable_jitter(&intent.key, attempts),
    );
    let retry = failed + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    if retry < scheduled {
        Some((
            retry,
            Trigger::Retry {
                due: retry,
                failed_attempts: attempts,
            },
        ))
    } else {
        Some(on_schedule)
    }
}

/// The two scheduled runs of the object after `since`; Stale holds from the second on.
pub fn stale_window(
    schedule: &Schedule,
    key: &str,
    since: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let first = next_run(schedule, key, since)?;
    let second = next_run(schedule, key, first)?;
    Some((first, second))
}

/// A jitter in `0.0..1.0` that depends only on the object and the attempt, so a retry's time is
/// the same at every reconcile (and the status does not change by itself).
pub fn stable_jitter(key: &str, attempts: u32) -> f64 {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{key}#{attempts}").as_bytes(),
    );
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// How long from `now` until `at` (at least a second, so a time just reached is not missed).
fn until(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Duration> {
    let at = at?;
    let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
    Some(wait.max(Duration::from_secs(1)))
}
