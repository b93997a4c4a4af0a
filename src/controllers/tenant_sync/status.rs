//! The report step's pure half: the status that describes the object's imports.
//!
//! - Fields: `lastSyncTime`, `lastSuccessfulSyncTime`, `failedAttempts`, `lastFailureTime` and
//!   `lastSyncRequest` from the history (with this reconcile's attempts applied); `users`,
//!   `skus` and `lastDuration` from the latest successful import; `nextSyncTime` from the plan.
//! - `Synced`: the last attempt and its prerequisites. False with `InvalidSpec` (the schedule,
//!   or an AppConsent of another customer), `AppConsentNotReady`, or the failed attempt's reason
//!   (`AccessDenied`, `CredentialsInvalid`, `SinkMisconfigured`, `SinkTLSRefused`, `SinkFailed`, `MicrosoftError`,
//!   `TransientError`, `KubernetesError`, `Propagating` — Graph refused the import soon after
//!   the consent, see `plan` —, …; Microsoft's errors are named by
//!   `controllers::microsoft_failure`, as on every kind); True with `Reconciled` after a
//!   successful import, or once a prerequisite that failed holds again.
//! - `Ready`: True when an import succeeded, its data is not stale, and nothing needs a person.
//!   A failure a person must fix makes it False with the same reason — except that while the
//!   AppConsent is not Ready for a credentials reason (`CredentialsInvalid`, `MfaRequired`) and
//!   names the same credentials Secret, `Ready` carries that reason, so one broken Secret reads
//!   the same on every kind; a transient one leaves it as it was (the message says a retry is
//!   coming). Before the first success it is False with `ImportPending`; when stale, False with
//!   `Stale`.
//! - `Stale`: True (`Stale`) once two scheduled runs have come due since the last success (or
//!   creation) without a new one; False with `Fresh`, or `Suspended` while suspended.
//!
//! Messages use absolute times, never "N hours ago", so an unchanged object gets an unchanged
//! status and the report writes nothing.

use super::desired::Intent;
use super::plan::{Action, Attempt, Consent, History, Observed, Plan, is_transient_reason};
use crate::api::conditions::{reasons, types};
use crate::api::tenant_sync::TenantSyncStatus;
use crate::controllers::conditions::{Wanted, merge_at};
use crate::controllers::microsoft_failure::{self, is_credentials_reason};
use crate::sync::report::to_time;
use crate::sync::{FullReason, ImportReport, RunKind};
use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Everything the status is built from.
pub struct Inputs<'a> {
    /// What the object asks for.
    pub intent: &'a Intent,
    /// What was observed.
    pub observed: &'a Observed,
    /// The decision (after this reconcile's attempts).
    pub plan: &'a Plan,
    /// An import was handed to the runner in this reconcile.
    pub started: bool,
    /// The history with this reconcile's attempts applied.
    pub history: &'a History,
    /// Attempts recorded in this reconcile, oldest first.
    pub attempts: &'a [Attempt],
    /// The status before.
    pub previous: &'a TenantSyncStatus,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The new status.
pub fn build(i: &Inputs) -> TenantSyncStatus {
    let mut status = i.previous.clone();
    let h = i.history;
    status.last_sync_time = h.last_attempt.map(to_time);
    status.last_successful_sync_time = h.last_success.map(to_time);
    status.failed_attempts = h.failed_attempts;
    status.last_failure_time = h.last_failure.map(to_time);
    status.last_sync_request = h.handled_request.clone();
    if let Some(report) = latest_success(i.attempts) {
        status.users = Some(report.user_summary());
        status.skus = report.sku_summaries();
        status.last_duration = Some(report.duration_text());
    }
    status.next_sync_time = i.plan.next_sync.map(to_time);
    status.observed_generation = i.generation;
    if i.observed.customer_name.is_some() {
        status.customer_display_name = i.observed.customer_name.clone();
    }
    let synced = synced(i);
    let current_synced = resulting(&i.previous.conditions, synced.as_ref());
    let mut wanted: Vec<Wanted> = synced.into_iter().collect();
    wanted.extend(stale(i, current_synced.as_ref()));
    wanted.extend(ready(i, current_synced.as_ref()));
    status.conditions = merge_at(&i.previous.conditions, &wanted, i.generation, i.now);
    status
}

fn latest_success(attempts: &[Attempt]) -> Option<&ImportReport> {
    attempts
        .iter()
        .rev()
        .find_map(|a| a.outcome.as_ref().ok().map(|r| r.as_ref()))
}

/// A Synced condition as (status, reason, message).
struct SyncedNow {
    ok: bool,
    reason: String,
    message: String,
}

fn resulting(previous: &[Condition], wanted: Option<&Wanted>) -> Option<SyncedNow> {
    if let Some(w) = wanted {
        return Some(SyncedNow {
            ok: w.status,
            reason: w.reason.to_string(),
            message: w.message.clone(),
        });
    }
    previous
        .iter()
        .find(|c| c.type_ == types::SYNCED)
        .map(|c| SyncedNow {
            ok: c.status == "True",
            reason: c.reason.clone(),
            message: c.message.clone(),
        })
}

/// A time as the messages write it, e.g. `2026-01-12T02:13:00Z`.
pub fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn synced(i: &Inputs) -> Option<Wanted> {
    let not = |reason, message: String| Some(Wanted::new(types::SYNCED, false, reason, message));
    match &i.plan.action {
        Action::Refuse(problem) => return not(reasons::INVALID_SPEC, problem.to_string()),
        Action::WaitForConsent => return Some(consent_problem(i)),
        _ => {}
    }
    if let Some(last) = i.attempts.last() {
        return Some(match &last.outcome {
            Ok(report) => Wanted::new(types::SYNCED, true, reasons::RECONCILED, summary(report)),
            Err(f) => Wanted::new(types::SYNCED, false, f.reason, f.message.clone()),
        });
    }
    let previous = i
        .previous
        .conditions
        .iter()
        .find(|c| c.type_ == types::SYNCED)?;
    let prerequisite = [reasons::INVALID_SPEC, reasons::APP_CONSENT_NOT_READY];
    (previous.status == "False" && prerequisite.contains(&previous.reason.as_str())).then(|| {
        Wanted::new(
            types::SYNCED,
            true,
            reasons::RECONCILED,
            "the spec is valid and the AppConsent is Ready",
        )
    })
}

fn consent_problem(i: &Inputs) -> Wanted {
    let name = &i.intent.consent;
    let (reason, message) = match &i.observed.consent {
        Consent::Missing => (
            reasons::APP_CONSENT_NOT_READY,
            format!(
                "AppConsent {name} (spec.appConsentRef) does not exist in this namespace; the import waits until it exists and is Ready"
            ),
        ),
        Consent::NotReady {
            reason,
            message,
            same_credentials,
        } => {
            let why = if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason}: {message})")
            };
            let shared = if *same_credentials && is_credentials_reason(reason) {
                "; it uses this object's credentials Secret too, so fix that Secret"
            } else {
                ""
            };
            (
                reasons::APP_CONSENT_NOT_READY,
                format!(
                    "AppConsent {name} is not Ready{why}; the import waits until it is, as it reads with the application permissions that consent grants{shared}"
                ),
            )
        }
        Consent::OtherCustomer { tenant } => (
            reasons::INVALID_SPEC,
            format!(
                "spec.appConsentRef: AppConsent {name} consents customer {tenant}, not spec.customer.tenantId {}; name an AppConsent of this customer",
                i.intent.customer
            ),
        ),
        Consent::Ready => (reasons::RECONCILED, String::new()),
    };
    Wanted::new(types::SYNCED, false, reason, message)
}

/// What a successful import did, for `Synced`.
pub fn summary(report: &ImportReport) -> String {
    let what = match report.kind {
        RunKind::Delta => format!(
            "delta round: {} changed, {} removed",
            report.rows.users, report.rows.removed
        ),
        RunKind::Full => format!(
            "full pass{}",
            report
                .full_reason
                .map(|r| format!(": {}", full_reason(r)))
                .unwrap_or_default()
        ),
    };
    let skus = report.skus.len();
    format!(
        "imported {} users and {skus} SKU{} in {} ({what})",
        report.users.total,
        if skus == 1 { "" } else { "s" },
        report.duration_text()
    )
}

fn full_reason(reason: FullReason) -> &'static str {
    match reason {
        FullReason::ModeFull => "mode Full",
        FullReason::FirstRun => "first run",
        FullReason::NoDeltaLink => "the last run kept no deltaLink",
        FullReason::FieldsChanged => "userFields changed",
        FullReason::FullSyncDue => "fullSyncEvery elapsed",
        FullReason::DeltaExpired => "the deltaLink expired",
    }
}

fn stale(i: &Inputs, synced: Option<&SyncedNow>) -> Option<Wanted> {
    if i.intent.suspend {
        return Some(Wanted::new(
            types::STALE,
            false,
            reasons::SUSPENDED,
            "spec.suspend is true: scheduled imports are paused",
        ));
    }
    let (first, second) = i.plan.stale_window?;
    let since = match i.history.last_success {
        Some(t) => format!("the last import succeeded at {}", at(t)),
        None => format!(
            "no import has succeeded since the object was created at {}",
            at(i.intent.created)
        ),
    };
    if !i.plan.is_stale(i.now) {
        let message = match i.history.last_success {
            Some(t) => format!(
                "last successful import at {}; stale if none succeeds by {}",
                at(t),
                at(second)
            ),
            None => format!(
                "no import has succeeded yet; stale if none succeeds by {}",
                at(second)
            ),
        };
        return Some(Wanted::new(types::STALE, false, reasons::FRESH, message));
    }
    let failure = synced
        .filter(|s| !s.ok)
        .map(|s| format!("; last failure ({}): {}", s.reason, s.message))
        .unwrap_or_default();
    Some(Wanted::new(
        types::STALE,
        true,
        reasons::STALE,
        format!(
            "{since}; the imports due since, at {} and {}, did not succeed{failure}",
            at(first),
            at(second)
        ),
    ))
}

fn ready(i: &Inputs, synced: Option<&SyncedNow>) -> Option<Wanted> {
    let failing = synced.filter(|s| !s.ok);
    if let Some(f) = failing.filter(|f| !is_transient_reason(&f.reason)) {
        let reason = credentials_problem(i, &f.reason).unwrap_or(reason_constant(&f.reason));
        return Some(Wanted::new(types::READY, false, reason, f.message.clone()));
    }
    if matches!(i.plan.action, Action::Refuse(_)) {
        return None;
    }
    if i.plan.is_stale(i.now) {
        let message = stale(i, synced).map(|w| w.message).unwrap_or_default();
        return Some(Wanted::new(types::READY, false, reasons::STALE, message));
    }
    let next = i.plan.next_sync.map(at);
    let Some(success) = i.history.last_success else {
        return Some(Wanted::new(
            types::READY,
            false,
            reasons::IMPORT_PENDING,
            pending(i, failing, next),
        ));
    };
    let mut message = format!("last import succeeded at {}", at(success));
    match (&next, failing) {
        (Some(next), Some(f)) => message.push_str(&format!(
            "; the latest attempt failed and is retried at {next} ({}: {})",
            f.reason, f.message
        )),
        (Some(next), None) => message.push_str(&format!("; next at {next}")),
        (None, _) if i.intent.suspend => message.push_str("; imports are suspended"),
        (None, _) => {}
    }
    Some(Wanted::new(
        types::READY,
        true,
        reasons::RECONCILED,
        message,
    ))
}

fn pending(i: &Inputs, failing: Option<&SyncedNow>, next: Option<String>) -> String {
    if i.started || matches!(i.plan.action, Action::Running) {
        return "the first import is running".into();
    }
    if let Some(f) = failing {
        return format!(
            "the first import failed and is retried at {} ({}: {})",
            next.unwrap_or_default(),
            f.reason,
            f.message
        );
    }
    match next {
        Some(next) => format!(
            "the first import runs at {next} (spec.schedule plus this object's spread); annotate gdap.io/sync-now to run it now"
        ),
        None => "no import has run and spec.suspend is true; annotate gdap.io/sync-now to run one"
            .into(),
    }
}

/// While the object waits for its AppConsent (`Synced` is `AppConsentNotReady`) and that
/// AppConsent fails for a credentials reason on the object's own credentials Secret, that reason:
/// the Secret is what a person must fix, and `Ready` says so as the other kinds' do.
fn credentials_problem(i: &Inputs, synced_reason: &str) -> Option<&'static str> {
    let Consent::NotReady {
        reason,
        same_credentials: true,
        ..
    } = &i.observed.consent
    else {
        return None;
    };
    (synced_reason == reasons::APP_CONSENT_NOT_READY && is_credentials_reason(reason))
        .then(|| reason_constant(reason))
}

/// The `&'static` reason constant for a reason read back from a condition.
fn reason_constant(reason: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        reasons::INVALID_SPEC,
        reasons::APP_CONSENT_NOT_READY,
        reasons::KUBERNETES_FORBIDDEN,
        reasons::SINK_MISCONFIGURED,
        reasons::SINK_FAILED,
        reasons::SINK_TLS_REFUSED,
        reasons::KUBERNETES_ERROR,
        reasons::PROPAGATING,
    ];
    KNOWN
        .iter()
        .chain(microsoft_failure::REASONS.iter())
        .chain(microsoft_failure::CREDENTIALS_REASONS.iter())
        .find(|k| **k == reason)
        .copied()
        .unwrap_or(reasons::MICROSOFT_ERROR)
}
