//! Microsoft is eventually consistent, and so is the sandbox (on by default).
//!
//! Contract — three delays, each drawn per write from a seeded `[min, max]` range
//! ([`Consistency`], `docs/sandbox.md` "Consistency"):
//! - **Read lag**, per resource family ([`Family`]): after a write, GETs by id and lists keep
//!   showing the object as it was before (absent after a create, present after a delete) until
//!   the write becomes visible. The writer's own response is immediate, and writes always act on
//!   the true state (a duplicate is refused even while reads do not show the first one). A
//!   family's lagging reads come from a [`Lagging`] side table: object id → the state before the
//!   first write that is not visible yet. Users are written only through the control API: their
//!   writes are applied to the world when they become visible (`Tenant::pending_users`).
//! - **Consent propagation**: a delegated grant or app role assignment is *effective* (builds
//!   delegated scopes and app-only `roles` at the token endpoint) only from its `effective_at`.
//! - **GDAP propagation**: an access assignment gives the partner user access in the customer
//!   (tokens, Graph, Partner Center) from `access_from` (when it became active plus the delay)
//!   until `access_until` (when it stopped being active — the assignment or its relationship
//!   ended — plus the delay).
//!
//! Every recorded instant moves with the clock control (`clock.rs`), so tests move through the
//! delays instead of sleeping. [`Consistency::immediate`] sets every delay to 0.

use super::generate;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

/// A delay drawn uniformly from `[min_seconds, max_seconds]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delay {
    /// Shortest delay, in seconds.
    pub min_seconds: f64,
    /// Longest delay, in seconds.
    pub max_seconds: f64,
}

impl Delay {
    /// No delay.
    pub const ZERO: Delay = Delay::seconds(0.0, 0.0);

    /// A range of seconds.
    pub const fn seconds(min_seconds: f64, max_seconds: f64) -> Delay {
        Delay {
            min_seconds,
            max_seconds,
        }
    }

    /// Checks the range; `field` names it in the error.
    pub fn check(&self, field: &str) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && (0.0..=86_400.0).contains(&v);
        if !ok(self.min_seconds) || !ok(self.max_seconds) {
            return Err(format!("{field}: seconds must be within 0..=86400"));
        }
        if self.min_seconds > self.max_seconds {
            return Err(format!("{field}: minSeconds must not exceed maxSeconds"));
        }
        Ok(())
    }

    /// Parses `SECONDS` or `MIN-MAX` (seconds, e.g. `1-5`, `0`, `0.5-2`).
    pub fn parse(text: &str) -> Result<Delay, String> {
        let number = |s: &str| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("'{text}' is not SECONDS or MIN-MAX (seconds, e.g. 1-5)"))
        };
        let delay = match text.split_once('-') {
            Some((min, max)) => Delay::seconds(number(min)?, number(max)?),
            None => {
                let s = number(text)?;
                Delay::seconds(s, s)
            }
        };
        delay.check("delay")?;
        Ok(delay)
    }
}

/// Read lag per resource family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadLag {
    /// GDAP relationships and their access assignments.
    pub gdap: Delay,
    /// Service principals.
    pub service_principals: Delay,
    /// Delegated permission grants and app role assignments.
    pub grants: Delay,
    /// Users (written through the control API).
    pub users: Delay,
}

impl ReadLag {
    /// The same lag for every family.
    pub const fn all(delay: Delay) -> ReadLag {
        ReadLag {
            gdap: delay,
            service_principals: delay,
            grants: delay,
            users: delay,
        }
    }

    /// The lag of one family.
    pub fn of(&self, family: Family) -> Delay {
        match family {
            Family::Gdap => self.gdap,
            Family::ServicePrincipals => self.service_principals,
            Family::Grants => self.grants,
            Family::Users => self.users,
        }
    }
}

/// A resource family whose reads lag together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// GDAP relationships and access assignments.
    Gdap,
    /// Service principals.
    ServicePrincipals,
    /// Delegated grants and app role assignments.
    Grants,
    /// Users.
    Users,
}

/// How far the sandbox is from read-your-writes, and how long access takes to propagate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Consistency {
    /// Seed of the delays drawn (the same seed and the same writes give the same delays).
    pub seed: u64,
    /// Read lag per family.
    pub read_lag: ReadLag,
    /// From a delegated grant or app role assignment to its use in tokens.
    pub consent_propagation: Delay,
    /// From an access assignment turning active (or ending) to the partner user's access in
    /// the customer starting (or ending).
    pub gdap_propagation: Delay,
    /// Retire a redeemed refresh token once its successor is used (AADSTS70000 after), which
    /// Entra does not do: for tests that want to catch a client using stale refresh tokens.
    pub strict_refresh_tokens: bool,
}

impl Default for Consistency {
    fn default() -> Self {
        Consistency::microsoft()
    }
}

impl Consistency {
    /// Default read lag of every family (seconds).
    pub const READ_LAG: Delay = Delay::seconds(1.0, 5.0);
    /// Default consent propagation (seconds).
    pub const CONSENT_PROPAGATION: Delay = Delay::seconds(15.0, 90.0);
    /// Default GDAP propagation (seconds).
    pub const GDAP_PROPAGATION: Delay = Delay::seconds(15.0, 90.0);

    /// Lags like Microsoft (the default).
    pub fn microsoft() -> Consistency {
        Consistency {
            seed: 0,
            read_lag: ReadLag::all(Self::READ_LAG),
            consent_propagation: Self::CONSENT_PROPAGATION,
            gdap_propagation: Self::GDAP_PROPAGATION,
            strict_refresh_tokens: false,
        }
    }

    /// Every delay 0: each write is visible and effective at once (for tests that do not care).
    pub fn immediate() -> Consistency {
        Consistency {
            seed: 0,
            read_lag: ReadLag::all(Delay::ZERO),
            consent_propagation: Delay::ZERO,
            gdap_propagation: Delay::ZERO,
            strict_refresh_tokens: false,
        }
    }

    /// Checks every range, naming the field.
    pub fn check(&self) -> Result<(), String> {
        let lag = &self.read_lag;
        lag.gdap.check("readLag.gdap")?;
        lag.service_principals.check("readLag.servicePrincipals")?;
        lag.grants.check("readLag.grants")?;
        lag.users.check("readLag.users")?;
        self.consent_propagation.check("consentPropagation")?;
        self.gdap_propagation.check("gdapPropagation")
    }

    /// Draws a delay from `delay`; `draws` counts the draws (the random stream's position).
    pub fn draw(&self, draws: &mut u64, delay: Delay) -> Duration {
        if delay.max_seconds <= 0.0 {
            return Duration::zero();
        }
        *draws += 1;
        let r = generate::mix(generate::mix(self.seed) ^ *draws);
        let unit = (r >> 11) as f64 / (1u64 << 53) as f64;
        let seconds = delay.min_seconds + (delay.max_seconds - delay.min_seconds) * unit;
        Duration::milliseconds((seconds * 1000.0).round() as i64)
    }
}

/// An object as other readers still see it while a write replicates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stale<T> {
    /// The object before the write (`None`: it did not exist).
    pub before: Option<T>,
    /// When the write (and any later one) becomes visible.
    pub visible_at: DateTime<Utc>,
}

/// The lagging reads of one family: object id → what readers see until the writes replicate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Lagging<T> {
    entries: BTreeMap<String, Stale<T>>,
}

impl<T> Default for Lagging<T> {
    fn default() -> Self {
        Lagging {
            entries: BTreeMap::new(),
        }
    }
}

impl<T: Clone> Lagging<T> {
    /// Nothing lags.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Object `id` is about to be written (`current` is its state now, `None` when it is being
    /// created) and the write becomes visible at `visible_at`. Readers keep the oldest state
    /// not yet replaced; a later write pushes the visibility out, never in.
    pub fn record(
        &mut self,
        id: &str,
        current: Option<&T>,
        now: DateTime<Utc>,
        visible_at: DateTime<Utc>,
    ) {
        if visible_at <= now {
            return;
        }
        match self.entries.get_mut(id) {
            Some(stale) if stale.visible_at > now => {
                stale.visible_at = stale.visible_at.max(visible_at)
            }
            _ => {
                self.entries.insert(
                    id.to_string(),
                    Stale {
                        before: current.cloned(),
                        visible_at,
                    },
                );
            }
        }
    }

    /// What a reader sees of object `id` whose true state is `current`.
    pub fn get<'a>(
        &'a self,
        id: &str,
        current: Option<&'a T>,
        now: DateTime<Utc>,
    ) -> Option<&'a T> {
        match self.entries.get(id) {
            Some(stale) if now < stale.visible_at => stale.before.as_ref(),
            _ => current,
        }
    }

    /// What a reader sees of a collection whose true content is `current` (ids by `id_of`;
    /// `belongs` picks the deleted objects that were part of this collection).
    pub fn view<'a>(
        &'a self,
        current: impl IntoIterator<Item = &'a T>,
        id_of: impl Fn(&T) -> &str,
        belongs: impl Fn(&T) -> bool,
        now: DateTime<Utc>,
    ) -> Vec<&'a T> {
        if self.entries.is_empty() {
            return current.into_iter().collect();
        }
        // Only ids with an entry can be missing from `current` and still be seen.
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for item in current {
            let id = id_of(item);
            if !self.entries.contains_key(id) {
                out.push(item);
                continue;
            }
            seen.insert(id);
            if let Some(visible) = self.get(id, Some(item), now) {
                out.push(visible);
            }
        }
        for (id, stale) in &self.entries {
            if now < stale.visible_at
                && !seen.contains(id.as_str())
                && let Some(before) = stale.before.as_ref().filter(|b| belongs(b))
            {
                out.push(before);
            }
        }
        out
    }

    /// Forgets the writes that became visible.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        self.entries.retain(|_, stale| stale.visible_at > now);
    }

    /// The clock advanced by `by`.
    pub fn shift_into_past(&mut self, by: Duration) {
        for stale in self.entries.values_mut() {
            stale.visible_at -= by;
        }
    }
}

/// Whether an instant recorded as "effective from" has come (`None`: always was).
pub fn reached(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    at.is_none_or(|t| t <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_create_is_invisible_and_a_delete_still_visible_until_the_lag_passes() {
        let mut lag: Lagging<(String, u32)> = Lagging::default();
        let a = ("a".to_string(), 1);
        let b = ("b".to_string(), 1);
        lag.record("b", None, t(0), t(3));
        lag.record("a", Some(&a), t(0), t(5));
        let current = [b.clone()];
        fn id(x: &(String, u32)) -> &str {
            x.0.as_str()
        }
        let seen = |now| {
            lag.view(current.iter(), id, |_| true, t(now))
                .into_iter()
                .map(|x| x.0.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(seen(1), ["a"]);
        assert_eq!(seen(4), ["b", "a"]);
        assert_eq!(seen(5), ["b"]);
    }

    #[test]
    fn a_later_write_keeps_the_oldest_state_and_pushes_visibility_out() {
        let mut lag = Lagging::default();
        lag.record("x", Some(&1), t(0), t(4));
        lag.record("x", Some(&2), t(2), t(6));
        assert_eq!(lag.get("x", Some(&3), t(5)), Some(&1));
        assert_eq!(lag.get("x", Some(&3), t(6)), Some(&3));
        lag.expire(t(6));
        assert!(lag.is_empty());
    }

    #[test]
    fn draws_stay_in_range_and_follow_the_seed() {
        let c = Consistency::microsoft();
        let (mut a, mut b) = (0, 0);
        let d = Delay::seconds(2.0, 4.0);
        for _ in 0..200 {
            let x = c.draw(&mut a, d);
            assert!(
                x >= Duration::seconds(2) && x <= Duration::seconds(4),
                "{x}"
            );
            assert_eq!(x, c.draw(&mut b, d));
        }
        assert_eq!(c.draw(&mut a, Delay::ZERO), Duration::zero());
    }

    #[test]
    fn delays_parse_from_the_command_line_and_refuse_nonsense() {
        assert_eq!(Delay::parse("1-5"), Ok(Delay::seconds(1.0, 5.0)));
        assert_eq!(Delay::parse("0"), Ok(Delay::ZERO));
        assert!(Delay::parse("5-1").unwrap_err().contains("minSeconds"));
        assert!(Delay::parse("soon").is_err());
        assert!(Delay::parse("-1").is_err());
    }
}
