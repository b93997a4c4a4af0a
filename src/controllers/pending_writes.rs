//! The operator's own writes that Microsoft does not show yet, as every controller keeps them
//! (pure).
//!
//! Microsoft is eventually consistent: after a write, its reads keep showing the previous state
//! for a while. Each controller therefore remembers every write Microsoft accepted, with its
//! time, in the object's annotation [`PENDING_WRITES_ANNOTATION`] (a JSON list of [`Written`]),
//! and forgets it once a read shows it. What a write is, when a read shows it and what it changes
//! is the kind's own (`W`, in each controller's `pending` module); the list, its annotation form
//! and the rule that a later write to the same thing replaces the record of an earlier one live
//! here.

use crate::controllers::timing::Timing;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The annotation that keeps the pending writes (a JSON list of [`Written`]).
pub const PENDING_WRITES_ANNOTATION: &str = "gdap.io/pending-writes";

/// Declares a kind's `Write` (one write the operator made in Microsoft, as the annotation keeps
/// it: tagged by `kind`, its fields in camelCase, like every kind's), with `Pending` (the list of
/// them) and `Written` (one with its time) for it.
macro_rules! kind_writes {
    ($(#[$doc:meta])* pub enum Write { $($body:tt)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
        pub enum Write { $($body)* }

        /// The writes of this kind Microsoft does not show yet, oldest first.
        pub type Pending = $crate::controllers::pending_writes::Pending<Write>;
        /// One of them, with when it was made.
        pub type Written = $crate::controllers::pending_writes::Written<Write>;
    };
}
pub(crate) use kind_writes;

/// A kind's write, as far as the list of pending writes needs to know it.
pub trait Supersedable {
    /// A later write that replaces this one's record (the same object, or its undoing): reads
    /// will show the later one.
    fn superseded_by(&self, later: &Self) -> bool;
}

/// A write and when it was made (the operator's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written<W> {
    /// The write.
    #[serde(flatten)]
    pub write: W,
    /// When Microsoft accepted it.
    pub at: DateTime<Utc>,
}

/// The writes Microsoft does not show yet, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending<W>(pub Vec<Written<W>>);

impl<W> Default for Pending<W> {
    fn default() -> Self {
        Pending(Vec::new())
    }
}

impl<W> Pending<W> {
    /// These writes.
    pub const fn new(writes: Vec<Written<W>>) -> Self {
        Pending(writes)
    }

    /// Nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The oldest pending write.
    pub fn oldest(&self) -> Option<&Written<W>> {
        self.0.iter().min_by_key(|w| w.at)
    }
}

impl<W: Serialize + DeserializeOwned + Clone + Supersedable> Pending<W> {
    /// From the annotation's value; `Err` describes a value that is not a list of writes.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(Pending::default()),
            Some(v) => serde_json::from_str(v)
                .map(Pending)
                .map_err(|e| format!("annotation {PENDING_WRITES_ANNOTATION}: {e}")),
        }
    }

    /// The annotation's value; `None` when nothing is pending (the annotation is removed).
    pub fn to_annotation(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| serde_json::to_string(&self.0).unwrap_or_default())
    }

    /// With `write` made at `at`, replacing the record of an earlier write it supersedes.
    pub fn recorded(&self, write: W, at: DateTime<Utc>) -> Self {
        let mut kept: Vec<Written<W>> = self
            .0
            .iter()
            .filter(|w| !w.write.superseded_by(&write))
            .cloned()
            .collect();
        kept.push(Written { write, at });
        Pending(kept)
    }
}

/// The pending writes `object`'s annotation records (an unreadable record is logged and read as
/// none: the operator then reads Microsoft as it is).
pub fn of<K, W>(object: &K) -> Pending<W>
where
    K: kube::Resource,
    W: Serialize + DeserializeOwned + Clone + Supersedable,
{
    let value = object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(PENDING_WRITES_ANNOTATION));
    read(value.map(String::as_str))
}

/// The pending writes a record (`value`: the annotation's, or a status field's) holds; an
/// unreadable record is logged and read as none.
pub fn read<W>(value: Option<&str>) -> Pending<W>
where
    W: Serialize + DeserializeOwned + Clone + Supersedable,
{
    Pending::parse(value).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring an unreadable record of pending writes");
        Pending::default()
    })
}

/// When waiting for a write made at `since` ends in a refusal: `propagation_timeout` later.
pub fn deadline(since: DateTime<Utc>, propagation_timeout: Duration) -> DateTime<Utc> {
    let timeout = chrono::Duration::from_std(propagation_timeout).unwrap_or(chrono::Duration::MAX);
    since
        .checked_add_signed(timeout)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// How soon to look again for a write made at `since`: from `poll`, each look about twice as
/// far from `since` as the previous one (up to `resync`), never past the deadline; `None` once
/// the deadline has passed (the wait is then a refusal).
pub fn next_look(since: DateTime<Utc>, now: DateTime<Utc>, timing: &Timing) -> Option<Duration> {
    let (poll, resync) = (timing.poll, timing.resync);
    let deadline = deadline(since, timing.propagation_timeout);
    if now >= deadline {
        return None;
    }
    let waited = (now - since).to_std().unwrap_or(Duration::ZERO);
    let left = (deadline - now).to_std().unwrap_or(Duration::ZERO);
    Some(
        waited
            .clamp(poll, resync.max(poll))
            .min(left.max(Duration::from_secs(1))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "camelCase")]
    enum Note {
        Set { key: String, value: u32 },
    }

    impl Supersedable for Note {
        fn superseded_by(&self, later: &Self) -> bool {
            let (Note::Set { key: a, .. }, Note::Set { key: b, .. }) = (self, later);
            a == b
        }
    }

    fn set(key: &str, value: u32) -> Note {
        Note::Set {
            key: key.into(),
            value,
        }
    }

    #[test]
    fn a_later_write_to_the_same_thing_replaces_the_record_and_the_annotation_round_trips() {
        let t = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let pending = Pending::default()
            .recorded(set("a", 1), t(0))
            .recorded(set("b", 1), t(1))
            .recorded(set("a", 2), t(2));
        assert_eq!(
            pending.0.iter().map(|w| &w.write).collect::<Vec<_>>(),
            [&set("b", 1), &set("a", 2)]
        );
        assert_eq!(pending.oldest().map(|w| w.at), Some(t(1)));
        let text = pending.to_annotation().unwrap();
        assert!(text.contains(r#""kind":"set""#), "{text}");
        assert_eq!(Pending::parse(Some(&text)), Ok(pending));
        assert_eq!(Pending::<Note>::parse(Some("  ")), Ok(Pending::default()));
        assert!(Pending::<Note>::default().to_annotation().is_none());
        let bad = Pending::<Note>::parse(Some("{}")).unwrap_err();
        assert!(bad.contains(PENDING_WRITES_ANNOTATION), "{bad}");
    }

    #[test]
    fn looks_back_off_from_poll_to_resync_and_stop_at_the_timeout() {
        let t = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let s = Duration::from_secs;
        let timing = Timing {
            poll: s(5),
            resync: s(300),
            propagation_timeout: s(3600),
            ..Timing::default()
        };
        let look = |now| next_look(t(0), t(now), &timing);
        assert_eq!(look(0), Some(s(5)));
        assert_eq!(look(40), Some(s(40)), "about as long as it has waited");
        assert_eq!(look(1000), Some(s(300)), "at most the resync interval");
        assert_eq!(look(3599), Some(s(1)), "never past the deadline");
        assert_eq!(look(3600), None);
    }
}
