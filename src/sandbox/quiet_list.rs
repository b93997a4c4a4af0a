//! A list whose items a periodic step may pass over while they are quiet: the world's GDAP
//! relationships (`QuietList<Relationship>`, see `lifecycle.rs`).
//!
//! [`World::tick`](super::state::World::tick) runs before every request. Walking every
//! relationship each time made each request cost O(relationships): with 10,000 the sandbox spent
//! a core on it and was the bottleneck of a scale run. So each item carries, beside the list,
//! the instant before which no timed transition of its can happen ("quiet until"), set by the
//! step that last looked at it. Reads see a plain slice; every way to change an item
//! (`find_mut`, `iter_mut`, `push`, `extend`, `retain`) forgets its mark, so the next step looks
//! at it again. A step passes over an item only while nothing changed it and its instant has not
//! come, so what a reader sees is exactly what a full walk would give.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ops::Deref;

/// Items in insertion order, with the step's marks.
#[derive(Debug, Clone)]
pub struct QuietList<T> {
    list: Vec<T>,
    /// Beside each item: before when the step may pass over it (`None`: look at it).
    quiet_until: Vec<Option<DateTime<Utc>>>,
}

impl<T> Default for QuietList<T> {
    fn default() -> Self {
        QuietList {
            list: Vec::new(),
            quiet_until: Vec::new(),
        }
    }
}

impl<T> QuietList<T> {
    /// The first item `found` accepts, to change: the next step looks at it again.
    pub fn find_mut(&mut self, found: impl FnMut(&T) -> bool) -> Option<&mut T> {
        let i = self.list.iter().position(found)?;
        self.quiet_until[i] = None;
        Some(&mut self.list[i])
    }

    /// Every item, to change: the next step looks at all of them again.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.quiet_until.fill(None);
        self.list.iter_mut()
    }

    /// Adds an item (the next step looks at it).
    pub fn push(&mut self, item: T) {
        self.list.push(item);
        self.quiet_until.push(None);
    }

    /// Keeps the items `keep` accepts (the next step looks at all of them).
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.list.retain(keep);
        self.quiet_until = vec![None; self.list.len()];
    }

    /// Runs `step` on each item that changed since it last ran, or whose quiet instant has come
    /// at `now`; what `step` returns is the item's next quiet instant.
    pub fn step_due(
        &mut self,
        now: DateTime<Utc>,
        mut step: impl FnMut(&mut T) -> Option<DateTime<Utc>>,
    ) {
        for (item, quiet) in self.list.iter_mut().zip(&mut self.quiet_until) {
            if quiet.is_some_and(|until| now < until) {
                continue;
            }
            *quiet = step(item);
        }
    }
}

impl<T> Extend<T> for QuietList<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

impl<T> Deref for QuietList<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.list
    }
}

impl<T> From<Vec<T>> for QuietList<T> {
    fn from(list: Vec<T>) -> Self {
        let quiet_until = vec![None; list.len()];
        QuietList { list, quiet_until }
    }
}

impl<T: Serialize> Serialize for QuietList<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.list.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for QuietList<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(deserializer).map(QuietList::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> String {
        id.to_string()
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    /// The ids `step_due` looks at, at `now`, each becoming quiet until `until`.
    fn stepped(list: &mut QuietList<String>, now: i64, until: Option<i64>) -> Vec<String> {
        let mut seen = Vec::new();
        list.step_due(t(now), |r| {
            seen.push(r.clone());
            until.map(t)
        });
        seen
    }

    #[test]
    fn a_quiet_item_is_passed_over_until_its_instant() {
        let mut list = QuietList::from(vec![item("a"), item("b")]);
        assert_eq!(stepped(&mut list, 0, Some(10)), ["a", "b"]);
        assert!(stepped(&mut list, 9, Some(10)).is_empty());
        assert_eq!(stepped(&mut list, 10, Some(20)), ["a", "b"]);
    }

    #[test]
    fn an_item_without_an_instant_is_looked_at_every_time() {
        let mut list = QuietList::from(vec![item("a")]);
        assert_eq!(stepped(&mut list, 0, None), ["a"]);
        assert_eq!(stepped(&mut list, 0, None), ["a"]);
    }

    #[test]
    fn every_change_brings_an_item_back_to_the_step() {
        let mut list = QuietList::from(vec![item("a"), item("b")]);
        stepped(&mut list, 0, Some(100));
        list.find_mut(|r| r == "b").unwrap().push('!');
        assert_eq!(stepped(&mut list, 1, Some(100)), ["b!"]);
        list.push(item("c"));
        assert_eq!(stepped(&mut list, 2, Some(100)), ["c"]);
        list.iter_mut().for_each(|_| {});
        assert_eq!(stepped(&mut list, 3, Some(100)), ["a", "b!", "c"]);
        list.retain(|r| r != "a");
        assert_eq!(stepped(&mut list, 4, Some(100)), ["b!", "c"]);
        list.extend([item("d")]);
        assert_eq!(stepped(&mut list, 5, Some(100)), ["d"]);
        assert!(list.find_mut(|r| r == "a").is_none());
    }

    #[test]
    fn serialises_as_the_plain_list() {
        let list = QuietList::from(vec![item("a")]);
        let json = serde_json::to_value(&list).unwrap();
        assert!(json.is_array());
        let back: QuietList<String> = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
        assert_eq!(back.len(), 1);
    }
}
