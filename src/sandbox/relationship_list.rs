//! The world's GDAP relationships, and which of them the lifecycle step must look at.
//!
//! [`World::tick`](super::state::World::tick) runs before every request. Walking every
//! relationship each time made each request cost O(relationships): with 10,000 the sandbox spent
//! a core on it and was the bottleneck of a scale run. So each relationship carries, beside the
//! list, the instant before which no timed transition of its can happen ("quiet until"), set by
//! the step that last looked at it. Reads see a plain slice; every way to change a relationship
//! (`find_mut`, `iter_mut`, `push`, `extend`, `retain`) forgets its mark, so the next step looks
//! at it again. A step passes over a relationship only while nothing changed it and its instant
//! has not come, so what a reader sees is exactly what a full walk would give.

use super::state::Relationship;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ops::Deref;

/// GDAP relationships in creation order, with the lifecycle step's marks.
#[derive(Debug, Clone, Default)]
pub struct Relationships {
    list: Vec<Relationship>,
    /// Beside each relationship: before when the step may pass over it (`None`: look at it).
    quiet_until: Vec<Option<DateTime<Utc>>>,
}

impl Relationships {
    /// Relationship `id`, to change: the next step looks at it again.
    pub fn find_mut(&mut self, id: &str) -> Option<&mut Relationship> {
        let i = self.list.iter().position(|r| r.id == id)?;
        self.quiet_until[i] = None;
        Some(&mut self.list[i])
    }

    /// Every relationship, to change: the next step looks at all of them again.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Relationship> {
        self.quiet_until.fill(None);
        self.list.iter_mut()
    }

    /// Adds a relationship (the next step looks at it).
    pub fn push(&mut self, relationship: Relationship) {
        self.list.push(relationship);
        self.quiet_until.push(None);
    }

    /// Keeps the relationships `keep` accepts (the next step looks at all of them).
    pub fn retain(&mut self, keep: impl FnMut(&Relationship) -> bool) {
        self.list.retain(keep);
        self.quiet_until = vec![None; self.list.len()];
    }

    /// Runs `step` on each relationship that changed since it last ran, or whose quiet instant
    /// has come at `now`; what `step` returns is the relationship's next quiet instant.
    pub fn step_due(
        &mut self,
        now: DateTime<Utc>,
        mut step: impl FnMut(&mut Relationship) -> Option<DateTime<Utc>>,
    ) {
        for (rel, quiet) in self.list.iter_mut().zip(&mut self.quiet_until) {
            if quiet.is_some_and(|until| now < until) {
                continue;
            }
            *quiet = step(rel);
        }
    }
}

impl Extend<Relationship> for Relationships {
    fn extend<I: IntoIterator<Item = Relationship>>(&mut self, relationships: I) {
        for r in relationships {
            self.push(r);
        }
    }
}

impl Deref for Relationships {
    type Target = [Relationship];

    fn deref(&self) -> &[Relationship] {
        &self.list
    }
}

impl From<Vec<Relationship>> for Relationships {
    fn from(list: Vec<Relationship>) -> Self {
        let quiet_until = vec![None; list.len()];
        Relationships { list, quiet_until }
    }
}

impl Serialize for Relationships {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.list.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Relationships {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Relationship>::deserialize(deserializer).map(Relationships::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(id: &str) -> Relationship {
        let mut r = crate::sandbox::lifecycle::tests::rel("created", t(0));
        r.id = id.into();
        r
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    /// The ids `step_due` looks at, at `now`, each becoming quiet until `until`.
    fn stepped(list: &mut Relationships, now: i64, until: Option<i64>) -> Vec<String> {
        let mut seen = Vec::new();
        list.step_due(t(now), |r| {
            seen.push(r.id.clone());
            until.map(t)
        });
        seen
    }

    #[test]
    fn a_quiet_relationship_is_passed_over_until_its_instant() {
        let mut list = Relationships::from(vec![rel("a"), rel("b")]);
        assert_eq!(stepped(&mut list, 0, Some(10)), ["a", "b"]);
        assert!(stepped(&mut list, 9, Some(10)).is_empty());
        assert_eq!(stepped(&mut list, 10, Some(20)), ["a", "b"]);
    }

    #[test]
    fn a_relationship_without_an_instant_is_looked_at_every_time() {
        let mut list = Relationships::from(vec![rel("a")]);
        assert_eq!(stepped(&mut list, 0, None), ["a"]);
        assert_eq!(stepped(&mut list, 0, None), ["a"]);
    }

    #[test]
    fn every_change_brings_a_relationship_back_to_the_step() {
        let mut list = Relationships::from(vec![rel("a"), rel("b")]);
        stepped(&mut list, 0, Some(100));
        list.find_mut("b").unwrap().status = "approvalPending".into();
        assert_eq!(stepped(&mut list, 1, Some(100)), ["b"]);
        list.push(rel("c"));
        assert_eq!(stepped(&mut list, 2, Some(100)), ["c"]);
        list.iter_mut().for_each(|_| {});
        assert_eq!(stepped(&mut list, 3, Some(100)), ["a", "b", "c"]);
        list.retain(|r| r.id != "a");
        assert_eq!(stepped(&mut list, 4, Some(100)), ["b", "c"]);
        list.extend([rel("d")]);
        assert_eq!(stepped(&mut list, 5, Some(100)), ["d"]);
        assert!(list.find_mut("a").is_none());
    }

    #[test]
    fn serialises_as_the_plain_list() {
        let list = Relationships::from(vec![rel("a")]);
        let json = serde_json::to_value(&list).unwrap();
        assert!(json.is_array());
        let back: Relationships = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
        assert_eq!(back.len(), 1);
    }
}
