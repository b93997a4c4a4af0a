//! Table tests of the TenantSync plan: when imports start, what is due next, when data is stale.

use super::desired::Intent;
use super::plan::*;
use crate::api::conditions::reasons;
use crate::api::rules::FieldProblem;
use crate::controllers::failure::{self, Failure};
use crate::controllers::timing::Timing;
use crate::sync::schedule::{Schedule, is_stale, next_run};
use chrono::{DateTime, Duration as Span, SubsecRound, Utc};
use std::time::Duration;

const KEY: &str = "team-a/contoso/0b0b0b0b-0000-4000-8000-000000000001";

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn timing() -> Timing {
    Timing {
        poll: Duration::from_secs(30),
        resync: Duration::from_secs(600),
        ..Timing::default()
    }
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

fn idle() -> Observed {
    Observed {
        consent: Consent::Ready,
        running_since: None,
        finished: None,
        consent_since: None,
        customer_name: None,
    }
}

fn schedule(text: &str) -> Schedule {
    Schedule::parse(text).unwrap()
}

/// The object's scheduled run after `after` (the jitter is the schedule module's, tested there).
fn slot(text: &str, after: &str) -> DateTime<Utc> {
    next_run(&schedule(text), KEY, t(after)).unwrap()
}

fn failure(transient: bool) -> Failure {
    let reason = if transient {
        reasons::TRANSIENT_ERROR
    } else {
        reasons::ACCESS_DENIED
    };
    Failure::new(reason, "it failed", transient)
}

fn attempt(started: &str, outcome: Result<(), Failure>, request: Option<&str>) -> Attempt {
    Attempt {
        id: 7,
        request: request.map(str::to_string),
        started_at: t(started) + Span::milliseconds(250),
        finished_at: t(started) + Span::seconds(5),
        outcome: outcome.map(|_| Box::new(report())),
    }
}

fn report() -> crate::sync::ImportReport {
    crate::sync::ImportReport {
        run_id: "r".into(),
        tenant_id: "t".into(),
        kind: crate::sync::RunKind::Full,
        full_reason: Some(crate::sync::FullReason::FirstRun),
        started_at: t("2026-01-10T09:00:00Z"),
        finished_at: t("2026-01-10T09:00:05Z"),
        duration: Duration::from_secs(5),
        users: Default::default(),
        skus: vec![],
        rows: Default::default(),
    }
}

#[test]
fn a_new_object_waits_for_its_first_jittered_slot_after_creation_then_starts() {
    let intent = intent("@hourly");
    let first = slot("@hourly", "2026-01-10T08:00:00Z");
    assert!(first > intent.created && first < t("2026-01-10T09:15:00Z"));
    let before = first - Span::seconds(90);
    let p = plan(&intent, &idle(), &History::default(), &timing(), before);
    assert_eq!(p.action, Action::Wait);
    assert_eq!(p.next_sync, Some(first));
    assert_eq!(p.requeue, Some(Duration::from_secs(90)));
    let p = plan(&intent, &idle(), &History::default(), &timing(), first);
    assert_eq!(
        p.action,
        Action::Start(Start {
            trigger: Trigger::Scheduled { due: first },
            request: None
        })
    );
    assert_eq!(p.next_sync, next_run(&schedule("@hourly"), KEY, first));
}

#[test]
fn the_next_run_follows_the_last_attempt_and_a_missed_run_runs_once_at_once() {
    let intent = intent("@hourly");
    let ran = slot("@hourly", "2026-01-10T09:00:00Z");
    let history = History {
        last_attempt: Some(ran),
        last_success: Some(ran),
        ..Default::default()
    };
    let next = next_run(&schedule("@hourly"), KEY, ran).unwrap();
    assert_eq!(next - ran, Span::hours(1));
    let p = plan(
        &intent,
        &idle(),
        &history,
        &timing(),
        ran + Span::minutes(20),
    );
    assert_eq!((p.action, p.next_sync), (Action::Wait, Some(next)));
    // The operator was down for a day: the missed run starts once, and the one after is
    // scheduled from now.
    let late = ran + Span::hours(26) + Span::minutes(7);
    let p = plan(&intent, &idle(), &history, &timing(), late);
    assert!(matches!(p.action, Action::Start(_)), "{p:?}");
    let started = History {
        last_attempt: Some(late),
        last_success: Some(late),
        ..history
    };
    let p = plan(
        &intent,
        &idle(),
        &started,
        &timing(),
        late + Span::seconds(30),
    );
    assert_eq!(p.action, Action::Wait);
    assert_eq!(p.next_sync, next_run(&schedule("@hourly"), KEY, late));
}

#[test]
fn sync_now_runs_once_per_new_value_even_while_suspended() {
    let now = t("2026-01-10T08:01:00Z");
    let mut wants = intent("@daily");
    wants.requested = Some("2026-01-10T08:00:30Z".into());
    let p = plan(&wants, &idle(), &History::default(), &timing(), now);
    assert_eq!(
        p.action,
        Action::Start(Start {
            trigger: Trigger::Requested,
            request: Some("2026-01-10T08:00:30Z".into())
        })
    );
    let honoured = History {
        last_attempt: Some(now),
        handled_request: Some("2026-01-10T08:00:30Z".into()),
        ..Default::default()
    };
    let p = plan(
        &wants,
        &idle(),
        &honoured,
        &timing(),
        now + Span::seconds(5),
    );
    assert_eq!(p.action, Action::Wait, "the same value runs nothing");
    wants.suspend = true;
    assert_eq!(
        plan(&wants, &idle(), &honoured, &timing(), now).action,
        Action::Suspended
    );
    wants.requested = Some("again".into());
    let p = plan(&wants, &idle(), &honoured, &timing(), now);
    assert!(
        matches!(&p.action, Action::Start(s) if s.trigger == Trigger::Requested),
        "{p:?}"
    );
    assert_eq!(p.next_sync, None, "suspended: nothing scheduled");
}

#[test]
fn a_scheduled_run_carries_the_last_honoured_request_forward() {
    let history = History {
        last_attempt: Some(t("2026-01-10T08:05:00Z")),
        handled_request: Some("r1".into()),
        ..Default::default()
    };
    let p = plan(
        &intent("@hourly"),
        &idle(),
        &history,
        &timing(),
        t("2026-01-10T10:00:00Z"),
    );
    let Action::Start(start) = p.action else {
        panic!("{p:?}")
    };
    assert_eq!(start.request.as_deref(), Some("r1"));
    assert!(matches!(start.trigger, Trigger::Scheduled { .. }));
}

#[test]
fn nothing_starts_while_running_suspended_refused_or_without_a_ready_consent() {
    let due = t("2026-01-12T00:00:00Z");
    let mut requested = intent("@hourly");
    requested.requested = Some("now".into());
    let running = Observed {
        running_since: Some(t("2026-01-11T23:59:00Z")),
        ..idle()
    };
    let p = plan(&requested, &running, &History::default(), &timing(), due);
    assert_eq!(p.action, Action::Running);
    assert_eq!(
        p.next_sync,
        next_run(&schedule("@hourly"), KEY, t("2026-01-11T23:59:00Z"))
    );
    for consent in [
        Consent::Missing,
        Consent::NotReady {
            reason: "Revoked".into(),
            message: "m".into(),
            same_credentials: true,
        },
        Consent::OtherCustomer { tenant: "x".into() },
    ] {
        let observed = Observed { consent, ..idle() };
        let p = plan(&requested, &observed, &History::default(), &timing(), due);
        assert_eq!(p.action, Action::WaitForConsent);
        assert!(p.next_sync.is_some_and(|n| n <= due), "still due: {p:?}");
    }
    let mut suspended = intent("@hourly");
    suspended.suspend = true;
    let p = plan(&suspended, &idle(), &History::default(), &timing(), due);
    assert_eq!(
        (p.action, p.next_sync, p.stale_window, p.requeue),
        (Action::Suspended, None, None, None)
    );
    let broken = intent("0 0 30 2 *");
    let p = plan(&broken, &idle(), &History::default(), &timing(), due);
    assert!(
        matches!(&p.action, Action::Refuse(problem) if problem.field == "spec.schedule" && problem.message.contains("never runs")),
        "{p:?}"
    );
    assert_eq!((p.next_sync, p.requeue), (None, None));
}

#[test]
fn failures_are_retried_with_the_visible_backoff_unless_the_schedule_comes_first() {
    let failed_at = t("2026-01-10T09:20:05Z");
    let table = [
        // (schedule, failures, transient, expect a retry before the next scheduled run)
        ("@daily", 1, true, true),
        ("@daily", 4, true, true),
        ("@daily", 1, false, true),
        ("* * * * *", 3, true, false),
    ];
    for (text, attempts, transient, retry_first) in table {
        let history = History {
            last_attempt: Some(t("2026-01-10T09:20:00Z")),
            failed_attempts: attempts,
            last_failure: Some(failed_at),
            last_failure_transient: transient,
            ..Default::default()
        };
        let wait = failure::backoff(
            attempts,
            transient,
            timing().poll,
            timing().resync,
            stable_jitter(KEY, attempts),
        );
        let retry = failed_at + Span::from_std(wait).unwrap();
        let scheduled = slot(text, "2026-01-10T09:20:05Z");
        let intent = intent(text);
        let p = plan(&intent, &idle(), &history, &timing(), failed_at);
        let want = if retry_first { retry } else { scheduled };
        assert_eq!(p.next_sync, Some(want), "{text} {attempts} {transient}");
        assert_eq!(p.action, Action::Wait);
        let p = plan(&intent, &idle(), &history, &timing(), want);
        let Action::Start(start) = p.action else {
            panic!("{p:?}")
        };
        if retry_first {
            assert_eq!(
                start.trigger,
                Trigger::Retry {
                    due: retry,
                    failed_attempts: attempts
                }
            );
        } else {
            assert_eq!(start.trigger, Trigger::Scheduled { due: scheduled });
        }
    }
}

#[test]
fn a_spec_change_after_a_failure_retries_at_once() {
    let failed_at = t("2026-01-10T09:20:05Z");
    let history = History {
        last_attempt: Some(t("2026-01-10T09:20:00Z")),
        failed_attempts: 1,
        last_failure: Some(failed_at),
        last_failure_transient: false,
        ..Default::default()
    };
    let mut fixed = intent("@daily");
    let now = failed_at + Span::seconds(20);
    assert_eq!(
        plan(&fixed, &idle(), &history, &timing(), now).action,
        Action::Wait
    );
    fixed.changed = true;
    let p = plan(&fixed, &idle(), &history, &timing(), now);
    assert_eq!(
        p.action,
        Action::Start(Start {
            trigger: Trigger::Retry {
                due: failed_at,
                failed_attempts: 1
            },
            request: None
        })
    );
    let fine = History {
        failed_attempts: 0,
        ..history
    };
    assert_eq!(
        plan(&fixed, &idle(), &fine, &timing(), now).action,
        Action::Wait,
        "without a failure, a spec change does not run anything"
    );
}

#[test]
fn the_retry_time_is_the_same_at_every_reconcile() {
    let history = History {
        last_attempt: Some(t("2026-01-10T09:20:00Z")),
        failed_attempts: 2,
        last_failure: Some(t("2026-01-10T09:20:05Z")),
        last_failure_transient: true,
        ..Default::default()
    };
    let intent = intent("@daily");
    let a = plan(
        &intent,
        &idle(),
        &history,
        &timing(),
        t("2026-01-10T09:20:06Z"),
    );
    let b = plan(
        &intent,
        &idle(),
        &history,
        &timing(),
        t("2026-01-10T09:20:40Z"),
    );
    assert_eq!(a.next_sync, b.next_sync);
    for attempts in 1..50 {
        let j = stable_jitter(KEY, attempts);
        assert!((0.0..1.0).contains(&j));
        assert_eq!(j, stable_jitter(KEY, attempts));
    }
    assert_ne!(stable_jitter(KEY, 1), stable_jitter(KEY, 2));
}

#[test]
fn stale_means_two_scheduled_runs_since_the_last_success_as_the_schedule_module_says() {
    let intent = intent("@hourly");
    let success = t("2026-01-10T09:10:00Z");
    let history = History {
        last_attempt: Some(t("2026-01-10T12:00:00Z")),
        last_success: Some(success),
        failed_attempts: 3,
        last_failure: Some(t("2026-01-10T12:00:03Z")),
        ..Default::default()
    };
    let now = t("2026-01-10T10:00:00Z");
    let p = plan(&intent, &idle(), &history, &timing(), now);
    let (first, second) = p.stale_window.unwrap();
    assert_eq!(first, slot("@hourly", "2026-01-10T09:10:00Z"));
    assert_eq!(second, next_run(&schedule("@hourly"), KEY, first).unwrap());
    let s = schedule("@hourly");
    for minutes in [0, 30, 60, 89, 90, 120, 121, 180] {
        let at = success + Span::minutes(minutes);
        assert_eq!(
            p.is_stale(at),
            is_stale(&s, KEY, success, at),
            "{minutes} minutes after"
        );
    }
    // Without a success the clock starts at creation; the flip is a requeue time.
    let p = plan(
        &intent,
        &idle(),
        &History::default(),
        &timing(),
        intent.created,
    );
    let (_, second) = p.stale_window.unwrap();
    assert!(p.requeue.unwrap() <= (second - intent.created).to_std().unwrap());
}

#[test]
fn waiting_wakes_up_for_the_stale_flip_and_once_stale_only_for_the_next_run() {
    let intent = intent("@hourly");
    let success = slot("@hourly", "2026-01-10T08:00:00Z");
    let history = History {
        last_attempt: Some(success),
        last_success: Some(success),
        ..Default::default()
    };
    let not_ready = Observed {
        consent: Consent::NotReady {
            reason: String::new(),
            message: String::new(),
            same_credentials: true,
        },
        ..idle()
    };
    let now = success + Span::minutes(30);
    let p = plan(&intent, &not_ready, &history, &timing(), now);
    assert_eq!(p.action, Action::WaitForConsent);
    let (_, second) = p.stale_window.unwrap();
    assert!(!p.is_stale(now));
    assert_eq!(p.requeue, Some((second - now).to_std().unwrap()));
    let failed = History {
        last_attempt: Some(t("2026-01-10T11:00:00Z")),
        failed_attempts: 1,
        last_failure: Some(t("2026-01-10T11:00:00Z")),
        ..history
    };
    let now = t("2026-01-10T11:00:01Z");
    let p = plan(&intent, &idle(), &failed, &timing(), now);
    assert_eq!(p.action, Action::Wait);
    assert!(p.is_stale(now), "long past two runs: stale now");
    assert_eq!(
        p.requeue,
        Some((p.next_sync.unwrap() - now).to_std().unwrap())
    );
}

#[test]
fn history_records_attempts_in_whole_seconds() {
    let before = History {
        failed_attempts: 2,
        last_failure: Some(t("2026-01-09T00:00:00Z")),
        last_failure_transient: true,
        handled_request: Some("old".into()),
        ..Default::default()
    };
    let ok = attempt("2026-01-10T09:00:00Z", Ok(()), Some("new"));
    let after = before.with(&ok);
    assert_eq!(after.last_attempt, Some(t("2026-01-10T09:00:00Z")));
    assert_eq!(after.last_success, Some(t("2026-01-10T09:00:00Z")));
    assert_eq!(after.failed_attempts, 0);
    assert_eq!(
        after.last_failure, before.last_failure,
        "kept for the record"
    );
    assert_eq!(after.handled_request.as_deref(), Some("new"));
    assert!(after.records(&ok) && !before.records(&ok));
    let failed = attempt("2026-01-10T10:00:00Z", Err(failure(false)), Some("new"));
    let after = after.with(&failed);
    assert_eq!(after.failed_attempts, 1);
    assert_eq!(after.last_failure, Some(t("2026-01-10T10:00:05Z")));
    assert!(!after.last_failure_transient);
    assert_eq!(after.last_success, Some(t("2026-01-10T09:00:00Z")));
}

#[test]
fn history_reads_the_status_back() {
    use crate::api::tenant_sync::TenantSyncStatus;
    use crate::sync::report::to_time;
    let history = History {
        last_attempt: Some(t("2026-01-10T10:00:00Z")),
        last_success: Some(t("2026-01-10T09:00:00Z")),
        failed_attempts: 1,
        last_failure: Some(t("2026-01-10T10:00:05Z")),
        last_failure_transient: true,
        handled_request: Some("r".into()),
    };
    let status: TenantSyncStatus = serde_json::from_value(serde_json::json!({
        "lastSyncTime": "2026-01-10T10:00:00Z",
        "lastSuccessfulSyncTime": "2026-01-10T09:00:00Z",
        "failedAttempts": 1,
        "lastFailureTime": "2026-01-10T10:00:05Z",
        "lastSyncRequest": "r",
        "conditions": [{"type": "Synced", "status": "False", "reason": "TransientError", "message": "x",
                        "lastTransitionTime": "2026-01-10T10:00:05Z"}]
    }))
    .unwrap();
    assert_eq!(History::from_status(&status), history);
    assert_eq!(
        status.last_sync_time,
        Some(to_time(t("2026-01-10T10:00:00Z")))
    );
}

#[test]
fn graph_refusing_an_import_soon_after_the_consent_is_propagating_later_access_denied() {
    let consented = t("2026-01-10T09:00:00Z");
    let denied = |started: &str, reason: &'static str| {
        attempt(
            started,
            Err(Failure::new(reason, "Graph answered 403", false)),
            None,
        )
    };
    let reason = |a: &Attempt| {
        let f = a.outcome.as_ref().unwrap_err();
        (f.reason, f.transient)
    };
    let soon = propagation(
        denied("2026-01-10T09:00:30Z", reasons::ACCESS_DENIED),
        Some(consented),
        &History::default(),
        &timing(),
    );
    assert_eq!(reason(&soon), (reasons::PROPAGATING, true));
    let message = &soon.outcome.as_ref().unwrap_err().message;
    assert!(
        message.starts_with("Graph answered 403; the AppConsent consented at 2026-01-10T09:00:00Z")
            && message.contains("until 2026-01-10T10:00:00Z (--propagation-timeout 1h)"),
        "{message}"
    );
    let late = propagation(
        denied("2026-01-10T11:00:00Z", reasons::ACCESS_DENIED),
        Some(consented),
        &History::default(),
        &timing(),
    );
    assert_eq!(
        reason(&late),
        (reasons::ACCESS_DENIED, false),
        "a consent revoked much later is a refusal a person must look at"
    );
    let unknown = propagation(
        denied("2026-01-10T09:00:30Z", reasons::ACCESS_DENIED),
        None,
        &History::default(),
        &timing(),
    );
    assert_eq!(reason(&unknown), (reasons::ACCESS_DENIED, false));
    let other = propagation(
        denied("2026-01-10T09:00:30Z", reasons::SINK_FAILED),
        Some(consented),
        &History::default(),
        &timing(),
    );
    assert_eq!(reason(&other), (reasons::SINK_FAILED, false));

    let after_a_success = History {
        last_success: Some(t("2026-01-10T09:00:10Z")),
        ..History::default()
    };
    let revoked = propagation(
        denied("2026-01-10T09:00:30Z", reasons::ACCESS_DENIED),
        Some(consented),
        &after_a_success,
        &timing(),
    );
    assert_eq!(
        reason(&revoked),
        (reasons::ACCESS_DENIED, false),
        "an import succeeded with this consent: the permissions were in effect, a 403 now is a revocation"
    );

    // Retried with the backoff from the poll interval, not after the resync interval.
    let history = History::default().with(&soon);
    assert!(history.last_failure_transient);
    let (at, trigger) = due(&schedule("@daily"), &intent("@daily"), &history, &timing()).unwrap();
    assert!(matches!(trigger, Trigger::Retry { .. }), "{trigger:?}");
    let failed = soon.finished_at.trunc_subsecs(0);
    assert!(
        at >= failed + Span::seconds(24) && at <= failed + Span::seconds(36),
        "retried about a poll interval later: {at}"
    );
}
