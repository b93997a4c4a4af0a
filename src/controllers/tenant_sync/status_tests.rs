//! Table tests of the TenantSync status: fields and conditions for each kind of reconcile.

use super::desired::Intent;
use super::plan::{Attempt, Consent, History, Observed, Plan, plan};
use super::status::{Inputs, build};
use crate::api::conditions::{reasons, types};
use crate::api::rules::FieldProblem;
use crate::api::tenant_sync::TenantSyncStatus;
use crate::controllers::failure::Failure;
use crate::controllers::timing::Timing;
use crate::sync::report::{SkuReport, UserCounts, to_time};
use crate::sync::schedule::Schedule;
use crate::sync::{FullReason, ImportReport, RowCounts, RunKind};
use chrono::{DateTime, Duration as Span, Utc};
use std::time::Duration;

const KEY: &str = "team-a/contoso/0b0b0b0b-0000-4000-8000-000000000001";

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn intent(schedule: &str) -> Intent {
    Intent {
        key: KEY.into(),
        customer: "11111111-2222-3333-4444-555555555555".into(),
        consent: "reporting".into(),
        credentials: None,
        schedule: Schedule::parse(schedule)
            .map_err(|e| FieldProblem::new("spec.schedule", e.to_string())),
        suspend: false,
        requested: None,
        created: t("2026-01-10T08:00:00Z"),
        changed: false,
    }
}

fn observed(consent: Consent) -> Observed {
    Observed {
        consent,
        running_since: None,
        finished: None,
        consent_since: None,
        customer_name: None,
    }
}

fn report() -> ImportReport {
    ImportReport {
        run_id: "r1".into(),
        tenant_id: "t".into(),
        kind: RunKind::Full,
        full_reason: Some(FullReason::FirstRun),
        started_at: t("2026-01-10T09:00:00Z"),
        finished_at: t("2026-01-10T09:00:04Z"),
        duration: Duration::from_millis(4_200),
        users: UserCounts {
            total: 25,
            enabled: 23,
            licensed: 20,
            disabled_licensed: 2,
            guests: 1,
        },
        skus: vec![SkuReport {
            sku_id: "e3".into(),
            sku_part_number: "SPE_E3".into(),
            purchased: 25,
            assigned: 20,
            available: 5,
            warning: 0,
            suspended: 0,
            next_expiry: Some(t("2026-03-01T00:00:00Z")),
            subscriptions: 2,
            partner_licenses: 20,
            trial: false,
        }],
        rows: RowCounts {
            users: 25,
            removed: 0,
            skus: 1,
            subscriptions: 2,
        },
    }
}

fn ok(started: &str) -> Attempt {
    Attempt {
        id: 1,
        request: None,
        started_at: t(started),
        finished_at: t(started) + Span::seconds(4),
        outcome: Ok(Box::new(report())),
    }
}

fn failed(started: &str, reason: &'static str, transient: bool) -> Attempt {
    Attempt {
        id: 2,
        request: None,
        started_at: t(started),
        finished_at: t(started) + Span::seconds(1),
        outcome: Err(Failure::new(
            reason,
            format!("{reason} happened"),
            transient,
        )),
    }
}

/// One reconcile: the previous status, what was observed, the attempts it records, at `now`.
struct Case {
    intent: Intent,
    observed: Observed,
    attempts: Vec<Attempt>,
    started: bool,
    previous: TenantSyncStatus,
    now: DateTime<Utc>,
}

impl Case {
    fn new(now: &str) -> Case {
        Case {
            intent: intent("@hourly"),
            observed: observed(Consent::Ready),
            attempts: vec![],
            started: false,
            previous: TenantSyncStatus::default(),
            now: t(now),
        }
    }

    fn build(&self) -> (TenantSyncStatus, Plan) {
        let history = self
            .attempts
            .iter()
            .fold(History::from_status(&self.previous), |h, a| h.with(a));
        let plan = plan(
            &self.intent,
            &self.observed,
            &history,
            &Timing::default(),
            self.now,
        );
        let status = build(&Inputs {
            intent: &self.intent,
            observed: &self.observed,
            plan: &plan,
            started: self.started,
            history: &history,
            attempts: &self.attempts,
            previous: &self.previous,
            generation: Some(3),
            now: self.now,
        });
        (status, plan)
    }
}

fn condition(status: &TenantSyncStatus, type_: &str) -> (String, String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} in {:?}", status.conditions));
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn short(status: &TenantSyncStatus, type_: &str) -> (String, String) {
    let (s, r, _) = condition(status, type_);
    (s, r)
}

fn pair(status: &str, reason: &str) -> (String, String) {
    (status.to_string(), reason.to_string())
}

#[test]
fn a_successful_import_fills_the_summary_and_makes_it_ready() {
    let mut case = Case::new("2026-01-10T09:00:05Z");
    case.attempts = vec![ok("2026-01-10T09:00:00Z")];
    let (status, plan) = case.build();
    assert_eq!(
        status.last_sync_time,
        Some(to_time(t("2026-01-10T09:00:00Z")))
    );
    assert_eq!(status.last_successful_sync_time, status.last_sync_time);
    assert_eq!(status.last_duration.as_deref(), Some("4.2s"));
    let users = status.users.clone().unwrap();
    assert_eq!((users.total, users.disabled_licensed), (25, 2));
    assert_eq!(status.skus.len(), 1);
    assert_eq!(
        (status.skus[0].available, status.skus[0].next_expiry.clone()),
        (5, Some(to_time(t("2026-03-01T00:00:00Z"))))
    );
    assert_eq!(status.next_sync_time, plan.next_sync.map(to_time));
    assert_eq!(status.observed_generation, Some(3));
    let (s, r, m) = condition(&status, types::SYNCED);
    assert_eq!((s.as_str(), r.as_str()), ("True", reasons::RECONCILED));
    assert_eq!(
        m,
        "imported 25 users and 1 SKU in 4.2s (full pass: first run)"
    );
    let (s, r, m) = condition(&status, types::READY);
    assert_eq!((s.as_str(), r.as_str()), ("True", reasons::RECONCILED));
    assert!(
        m.starts_with("last import succeeded at 2026-01-10T09:00:00Z; next at "),
        "{m}"
    );
    assert_eq!(short(&status, types::STALE), pair("False", reasons::FRESH));
}

#[test]
fn the_status_of_an_unchanged_object_is_unchanged_so_nothing_is_written() {
    let mut case = Case::new("2026-01-10T09:00:05Z");
    case.attempts = vec![ok("2026-01-10T09:00:00Z")];
    let (first, _) = case.build();
    let mut later = Case::new("2026-01-10T09:05:00Z");
    later.previous = first.clone();
    assert!(
        later.build().1.next_sync.unwrap() > later.now,
        "nothing is due in between"
    );
    assert_eq!(later.build().0, first);
}

#[test]
fn failures_after_a_success_keep_ready_when_transient_and_clear_it_when_a_person_must_act() {
    let mut base = Case::new("2026-01-10T09:00:05Z");
    base.attempts = vec![ok("2026-01-10T09:00:00Z")];
    let (good, _) = base.build();
    let table = [
        (reasons::TRANSIENT_ERROR, true, "True", reasons::RECONCILED),
        (reasons::PROPAGATING, true, "True", reasons::RECONCILED),
        (
            reasons::ACCESS_DENIED,
            false,
            "False",
            reasons::ACCESS_DENIED,
        ),
        (reasons::SINK_FAILED, false, "False", reasons::SINK_FAILED),
        (
            reasons::SINK_TLS_REFUSED,
            false,
            "False",
            reasons::SINK_TLS_REFUSED,
        ),
    ];
    for (reason, transient, ready, ready_reason) in table {
        let mut case = Case::new("2026-01-10T10:00:30Z");
        case.previous = good.clone();
        case.attempts = vec![failed("2026-01-10T10:00:20Z", reason, transient)];
        let (status, _) = case.build();
        assert_eq!(status.failed_attempts, 1, "{reason}");
        assert_eq!(
            status.last_failure_time,
            Some(to_time(t("2026-01-10T10:00:21Z")))
        );
        assert_eq!(status.users, good.users, "the last good figures stay");
        assert_eq!(
            status.last_successful_sync_time,
            good.last_successful_sync_time
        );
        let (s, r, m) = condition(&status, types::SYNCED);
        assert_eq!(
            (s.as_str(), r.as_str(), m),
            ("False", reason, format!("{reason} happened"))
        );
        let (s, r, m) = condition(&status, types::READY);
        assert_eq!((s.as_str(), r.as_str()), (ready, ready_reason), "{reason}");
        if transient {
            assert!(
                m.contains("the latest attempt failed and is retried at"),
                "{m}"
            );
        }
    }
}

#[test]
fn stale_turns_true_after_two_scheduled_runs_without_success_and_names_the_last_failure() {
    let mut base = Case::new("2026-01-10T09:00:05Z");
    base.attempts = vec![ok("2026-01-10T09:00:00Z")];
    let (good, plan) = base.build();
    let (first, second) = plan.stale_window.unwrap();
    let mut case = Case::new("2026-01-10T09:00:05Z");
    case.previous = good;
    case.attempts = vec![failed(
        "2026-01-10T09:59:00Z",
        reasons::ACCESS_DENIED,
        false,
    )];
    case.now = second + Span::seconds(1);
    let (status, _) = case.build();
    let (s, r, m) = condition(&status, types::STALE);
    assert_eq!((s.as_str(), r.as_str()), ("True", reasons::STALE));
    assert_eq!(
        m,
        format!(
            "the last import succeeded at 2026-01-10T09:00:00Z; the imports due since, at {} and {}, did not succeed; last failure (AccessDenied): AccessDenied happened",
            super::status::at(first),
            super::status::at(second)
        )
    );
    assert_eq!(
        short(&status, types::READY),
        pair("False", reasons::ACCESS_DENIED),
        "a failure a person must fix comes first"
    );
    let mut transient = Case::new("2026-01-10T09:00:05Z");
    transient.previous = status.clone();
    transient.attempts = vec![failed(
        "2026-01-10T12:30:00Z",
        reasons::TRANSIENT_ERROR,
        true,
    )];
    transient.now = t("2026-01-10T12:30:02Z");
    let (status, _) = transient.build();
    assert_eq!(short(&status, types::READY), pair("False", reasons::STALE));
    assert_eq!(status.failed_attempts, 2);
}

#[test]
fn before_the_first_import_ready_says_when_it_runs_or_that_it_runs() {
    let (status, plan) = Case::new("2026-01-10T08:00:10Z").build();
    let (s, r, m) = condition(&status, types::READY);
    assert_eq!((s.as_str(), r.as_str()), ("False", reasons::IMPORT_PENDING));
    let next = super::status::at(plan.next_sync.unwrap());
    assert_eq!(
        m,
        format!(
            "the first import runs at {next} (spec.schedule plus this object's spread); annotate gdap.io/sync-now to run it now"
        )
    );
    assert!(
        !status.conditions.iter().any(|c| c.type_ == types::SYNCED),
        "nothing to say about Synced yet"
    );
    assert_eq!(short(&status, types::STALE), pair("False", reasons::FRESH));
    let mut running = Case::new("2026-01-10T08:00:10Z");
    running.started = true;
    assert_eq!(
        condition(&running.build().0, types::READY).2,
        "the first import is running"
    );
    let mut failing = Case::new("2026-01-10T08:00:10Z");
    failing.attempts = vec![failed(
        "2026-01-10T08:00:05Z",
        reasons::TRANSIENT_ERROR,
        true,
    )];
    let (s, r, m) = condition(&failing.build().0, types::READY);
    assert_eq!((s.as_str(), r.as_str()), ("False", reasons::IMPORT_PENDING));
    assert!(
        m.starts_with("the first import failed and is retried at"),
        "{m}"
    );
}

#[test]
fn the_consent_and_the_spec_are_prerequisites_and_their_recovery_is_reported() {
    let table = [
        (
            Consent::Missing,
            reasons::APP_CONSENT_NOT_READY,
            "does not exist",
        ),
        (
            Consent::NotReady {
                reason: "ConsentRevoked".into(),
                message: "the customer revoked it".into(),
                same_credentials: true,
            },
            reasons::APP_CONSENT_NOT_READY,
            "is not Ready (ConsentRevoked: the customer revoked it)",
        ),
        (
            Consent::OtherCustomer {
                tenant: "99999999-2222-3333-4444-555555555555".into(),
            },
            reasons::INVALID_SPEC,
            "consents customer 99999999-2222-3333-4444-555555555555",
        ),
    ];
    for (consent, reason, says) in table {
        let mut case = Case::new("2026-01-10T08:00:10Z");
        case.observed = observed(consent);
        let (status, _) = case.build();
        let (s, r, m) = condition(&status, types::SYNCED);
        assert_eq!((s.as_str(), r.as_str()), ("False", reason));
        assert!(m.contains(says), "{m}");
        assert_eq!(short(&status, types::READY), pair("False", reason));
        let mut recovered = Case::new("2026-01-10T08:00:20Z");
        recovered.previous = status;
        let (status, _) = recovered.build();
        assert_eq!(
            short(&status, types::SYNCED),
            pair("True", reasons::RECONCILED)
        );
        assert_eq!(
            short(&status, types::READY),
            pair("False", reasons::IMPORT_PENDING)
        );
    }
    let mut broken = Case::new("2026-01-10T08:00:10Z");
    broken.intent = intent("61 * * * *");
    let (status, _) = broken.build();
    let (s, r, m) = condition(&status, types::SYNCED);
    assert_eq!((s.as_str(), r.as_str()), ("False", reasons::INVALID_SPEC));
    assert!(m.starts_with("spec.schedule: "), "{m}");
    assert_eq!(
        short(&status, types::READY),
        pair("False", reasons::INVALID_SPEC)
    );
    assert_eq!(status.next_sync_time, None);
}

#[test]
fn an_appconsent_refused_on_the_same_credentials_makes_ready_name_the_credentials_reason() {
    let refused = |reason: &str, same_credentials| Consent::NotReady {
        reason: reason.into(),
        message: "CertificateNotAccepted: AADSTS700027".into(),
        same_credentials,
    };
    let table = [
        (
            refused(reasons::CREDENTIALS_INVALID, true),
            reasons::CREDENTIALS_INVALID,
        ),
        (refused(reasons::MFA_REQUIRED, true), reasons::MFA_REQUIRED),
        (
            refused(reasons::CREDENTIALS_INVALID, false),
            reasons::APP_CONSENT_NOT_READY,
        ),
        (
            refused(reasons::REVOKED, true),
            reasons::APP_CONSENT_NOT_READY,
        ),
    ];
    for (consent, ready) in table {
        let mut case = Case::new("2026-01-10T08:00:10Z");
        case.observed = observed(consent.clone());
        let (status, _) = case.build();
        let (s, r, m) = condition(&status, types::SYNCED);
        assert_eq!(
            (s.as_str(), r.as_str()),
            ("False", reasons::APP_CONSENT_NOT_READY),
            "{consent:?}"
        );
        assert!(m.contains("AADSTS700027"), "{m}");
        let (s, r, ready_message) = condition(&status, types::READY);
        assert_eq!((s.as_str(), r.as_str()), ("False", ready), "{consent:?}");
        assert_eq!(ready_message, m);
        assert_eq!(
            m.contains("this object's credentials Secret too"),
            ready != reasons::APP_CONSENT_NOT_READY,
            "{m}"
        );
    }
}

#[test]
fn suspended_objects_are_never_stale_and_have_no_next_run() {
    let mut base = Case::new("2026-01-10T09:00:05Z");
    base.attempts = vec![ok("2026-01-10T09:00:00Z")];
    let (good, _) = base.build();
    let mut case = Case::new("2026-01-20T09:00:00Z");
    case.previous = good;
    case.intent.suspend = true;
    let (status, _) = case.build();
    assert_eq!(status.next_sync_time, None);
    assert_eq!(
        short(&status, types::STALE),
        pair("False", reasons::SUSPENDED)
    );
    let (s, _, m) = condition(&status, types::READY);
    assert_eq!(
        (s.as_str(), m.as_str()),
        (
            "True",
            "last import succeeded at 2026-01-10T09:00:00Z; imports are suspended"
        )
    );
}

#[test]
fn a_request_is_recorded_with_the_attempt_that_honoured_it() {
    let mut case = Case::new("2026-01-10T09:00:05Z");
    let mut attempt = ok("2026-01-10T09:00:00Z");
    attempt.request = Some("2026-01-10T08:59:59Z".into());
    case.attempts = vec![attempt];
    let (status, _) = case.build();
    assert_eq!(
        status.last_sync_request.as_deref(),
        Some("2026-01-10T08:59:59Z")
    );
}

#[test]
fn the_customers_name_comes_from_the_appconsent_and_is_kept_when_unknown() {
    let mut case = Case::new("2026-01-10T09:00:05Z");
    case.observed.customer_name = Some("Contoso Ltd".into());
    let (status, _) = case.build();
    assert_eq!(status.customer_display_name.as_deref(), Some("Contoso Ltd"));
    let mut later = Case::new("2026-01-10T09:05:00Z");
    later.previous = status;
    assert_eq!(
        later.build().0.customer_display_name.as_deref(),
        Some("Contoso Ltd"),
        "an AppConsent that does not say keeps the name known"
    );
}
