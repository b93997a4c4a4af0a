//! Which events were seen, so a redelivery or a replay triggers nothing.
//!
//! Contract: an event's identity ([`super::event::PartnerEvent::identity`]) is remembered until
//! its change time is older than the receiver's maximum age — from then on the receiver refuses
//! the event as stale anyway, so a replay is either remembered or too old. At most
//! [`Seen::CAPACITY`] identities are kept; past that the oldest are forgotten first (a replay of
//! a forgotten event only asks for a reconcile, which reads Microsoft's state and changes
//! nothing by itself).

use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeSet, HashMap};

/// Remembered event identities.
#[derive(Debug, Default)]
pub struct Seen {
    until: HashMap<String, DateTime<Utc>>,
    by_time: BTreeSet<(DateTime<Utc>, String)>,
}

impl Seen {
    /// The most identities kept.
    pub const CAPACITY: usize = 100_000;

    /// Remembers `identity` (changed at `changed`) for `max_age`; `false` when it was seen
    /// already. Forgets what has aged out at `now` first.
    pub fn first_time(
        &mut self,
        identity: &str,
        changed: DateTime<Utc>,
        max_age: Duration,
        now: DateTime<Utc>,
    ) -> bool {
        self.forget_older_than(now);
        if self.until.contains_key(identity) {
            return false;
        }
        let until = changed + max_age;
        self.until.insert(identity.to_string(), until);
        self.by_time.insert((until, identity.to_string()));
        while self.until.len() > Self::CAPACITY {
            let Some(oldest) = self.by_time.pop_first() else {
                break;
            };
            self.until.remove(&oldest.1);
        }
        true
    }

    /// Forgets `identity` (its event could not be acted on, so a redelivery should be).
    pub fn forget(&mut self, identity: &str) {
        if let Some(until) = self.until.remove(identity) {
            self.by_time.remove(&(until, identity.to_string()));
        }
    }

    /// How many identities are remembered.
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    fn forget_older_than(&mut self, now: DateTime<Utc>) {
        while let Some((until, _)) = self.by_time.first()
            && *until <= now
        {
            let (_, identity) = self.by_time.pop_first().expect("first exists");
            self.until.remove(&identity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_000_000 + seconds)
    }

    #[test]
    fn an_identity_is_new_once_until_it_ages_out() {
        let mut seen = Seen::default();
        let age = Duration::seconds(100);
        assert!(seen.first_time("a", t(0), age, t(1)));
        assert!(!seen.first_time("a", t(0), age, t(50)));
        assert!(seen.first_time("b", t(0), age, t(50)));
        assert!(seen.first_time("a", t(0), age, t(100)), "aged out");
        assert_eq!(seen.len(), 1, "b aged out with it");
    }

    #[test]
    fn a_forgotten_identity_is_new_again() {
        let mut seen = Seen::default();
        let age = Duration::seconds(100);
        assert!(seen.first_time("a", t(0), age, t(1)));
        seen.forget("a");
        assert!(seen.is_empty());
        assert!(seen.first_time("a", t(0), age, t(2)));
    }

    #[test]
    fn past_capacity_the_oldest_are_forgotten_first() {
        let mut seen = Seen::default();
        let age = Duration::days(1);
        for i in 0..=Seen::CAPACITY {
            assert!(seen.first_time(&i.to_string(), t(i as i64), age, t(0)));
        }
        assert_eq!(seen.len(), Seen::CAPACITY);
        assert!(
            seen.first_time("0", t(0), age, t(0)),
            "the oldest was forgotten"
        );
        assert!(!seen.first_time("5", t(5), age, t(0)));
    }
}
