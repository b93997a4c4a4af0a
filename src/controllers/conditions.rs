//! Building the standard Kubernetes `conditions` list: one entry per type, with
//! `lastTransitionTime` kept when the status does not change and `observedGeneration` set.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Converts a chrono time to the Kubernetes `Time` (whole seconds).
pub fn to_time(t: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(t.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// A Kubernetes `Time` as chrono.
pub fn from_time(t: &Time) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(t.0.as_second(), 0).unwrap_or_default()
}

/// [`merge`] at a reconcile's time: the status's conditions after `wanted`.
pub fn merge_at(
    previous: &[Condition],
    wanted: &[Wanted],
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    merge(previous, wanted, generation, to_time(now).0)
}

/// A condition the controller wants to report, before timestamps are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The condition type (see `api::conditions::types`).
    pub type_: &'static str,
    /// True or false (false when `unknown`).
    pub status: bool,
    /// Neither: the condition cannot be told (written as `Unknown`).
    pub unknown: bool,
    /// CamelCase reason (see `api::conditions::reasons`).
    pub reason: &'static str,
    /// What a person should know, and do.
    pub message: String,
}

impl Wanted {
    /// A condition with the given truth.
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Wanted {
            type_,
            status,
            unknown: false,
            reason,
            message: message.into(),
        }
    }

    /// A condition whose truth cannot be told (`Unknown`).
    pub fn unknown(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Wanted {
            unknown: true,
            ..Wanted::new(type_, false, reason, message)
        }
    }

    /// `True`, `False` or `Unknown`, as Kubernetes writes it.
    pub fn status_text(&self) -> &'static str {
        match (self.unknown, self.status) {
            (true, _) => "Unknown",
            (false, true) => "True",
            (false, false) => "False",
        }
    }
}

/// Merges `wanted` into `previous`: unchanged statuses keep their transition time; conditions not
/// mentioned in `wanted` are kept as they were.
pub fn merge(
    previous: &[Condition],
    wanted: &[Wanted],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut result: Vec<Condition> = previous
        .iter()
        .filter(|c| !wanted.iter().any(|w| w.type_ == c.type_))
        .cloned()
        .collect();
    for w in wanted {
        let status = w.status_text().to_string();
        let old = previous.iter().find(|c| c.type_ == w.type_);
        let last_transition_time = match old {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => Time(now),
        };
        result.push(Condition {
            type_: w.type_.to_string(),
            status,
            reason: w.reason.to_string(),
            message: w.message.clone(),
            last_transition_time,
            observed_generation: generation,
        });
    }
    result.sort_by(|a, b| a.type_.cmp(&b.type_));
    result
}

/// The status ("True"/"False") of a condition type, if present.
pub fn status_of<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = merge(
            &[],
            &[Wanted::new("Ready", false, "Pending", "waiting")],
            Some(1),
            at(100),
        );
        assert_eq!(first[0].last_transition_time, Time(at(100)));
        let same = merge(
            &first,
            &[Wanted::new("Ready", false, "StillPending", "still")],
            Some(2),
            at(200),
        );
        assert_eq!(same[0].last_transition_time, Time(at(100)));
        assert_eq!(same[0].reason, "StillPending");
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped = merge(
            &same,
            &[Wanted::new("Ready", true, "Active", "ok")],
            Some(2),
            at(300),
        );
        assert_eq!(flipped[0].last_transition_time, Time(at(300)));
        assert_eq!(status_of(&flipped, "Ready"), Some("True"));
        let unknown = merge(
            &flipped,
            &[Wanted::unknown("Ready", "NotChecked", "cannot tell")],
            Some(2),
            at(400),
        );
        assert_eq!(status_of(&unknown, "Ready"), Some("Unknown"));
        assert_eq!(unknown[0].last_transition_time, Time(at(400)));
    }

    #[test]
    fn conditions_not_mentioned_are_kept_and_the_list_is_sorted() {
        let first = merge(&[], &[Wanted::new("Synced", true, "Ok", "")], None, at(1));
        let both = merge(
            &first,
            &[Wanted::new("Approved", false, "ApprovalPending", "")],
            None,
            at(2),
        );
        let types: Vec<_> = both.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Approved", "Synced"]);
    }
}
