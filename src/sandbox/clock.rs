//! The sandbox's clock control: `POST /_sandbox/clock {"advanceSeconds": N}` moves the sandbox's
//! time N seconds forward, `GET /_sandbox/clock` tells how far it was moved.
//!
//! Contract: clients (the operator, the tests) keep the wall clock, so the sandbox cannot simply
//! run ahead of it — a relationship ending "in 10 days" must look 10 days away to a client that
//! reads `endDateTime`. Advancing the clock therefore moves every time the world recorded N
//! seconds into the past (creation, status, lock, activation and end times, requests, operations,
//! refresh-token issue times, consents) and then applies the time-driven transitions that fell due
//! (`lifecycle.rs`): approval windows lapse, auto-approval happens, pending assignments activate,
//! relationships extend or expire — exactly as if N seconds had passed. Access tokens already
//! issued are not aged (their `exp` is checked against the wall clock), and throttling windows keep
//! running on the wall clock.

use super::state::{Relationship, World};
use chrono::Duration;

impl World {
    /// Moves every recorded time `by` into the past (the clock advanced by `by`).
    pub fn shift_into_past(&mut self, by: Duration) {
        for relationship in self.relationships.iter_mut() {
            relationship.shift_into_past(by);
        }
        for token in self.refresh_tokens.values_mut() {
            token.issued_at -= by;
            token.redeemed_at = token.redeemed_at.map(|t| t - by);
        }
        for user in &mut self.partner.users {
            user.sessions_revoked_at = user.sessions_revoked_at.map(|t| t - by);
        }
        self.shift_consistency_into_past(by);
        for tenant in self.tenants.values_mut() {
            for sp in &mut tenant.service_principals {
                sp.created -= by;
            }
            for assignment in &mut tenant.app_role_assignments {
                assignment.created -= by;
            }
        }
    }
}

impl Relationship {
    /// Moves every time of this relationship (and its requests, assignments and operations) `by`
    /// into the past: it ages by `by`.
    pub fn shift_into_past(&mut self, by: Duration) {
        self.created -= by;
        self.last_modified -= by;
        self.status_since -= by;
        self.activated = self.activated.map(|t| t - by);
        self.end = self.end.map(|t| t - by);
        self.locked_at = self.locked_at.map(|t| t - by);
        for a in &mut self.assignments {
            a.created -= by;
            a.last_modified -= by;
            a.status_since -= by;
        }
        for q in &mut self.requests {
            q.created -= by;
            q.last_modified -= by;
        }
        for o in &mut self.operations {
            o.created -= by;
            o.last_modified -= by;
        }
        self.version += 1;
    }
}

#[cfg(test)]
mod tests {
    use crate::sandbox::Fixture;
    use crate::sandbox::SandboxOptions;
    use crate::sandbox::state::{Relationship, World};
    use chrono::{Duration, Utc};

    fn pending(now: chrono::DateTime<Utc>) -> Relationship {
        Relationship {
            id: "r".into(),
            display_name: "r".into(),
            duration: "P730D".into(),
            duration_days: 730,
            auto_extend_duration: "PT0S".into(),
            customer: None,
            roles: vec![],
            status: "approvalPending".into(),
            status_since: now,
            created: now,
            last_modified: now,
            activated: None,
            end: None,
            locked_at: Some(now),
            version: 1,
            requests: vec![],
            assignments: vec![],
            operations: vec![],
        }
    }

    #[test]
    fn advancing_past_the_approval_window_expires_a_pending_relationship() {
        let now = Utc::now();
        let mut world = World::from_fixture(&Fixture::builtin(), now);
        world.relationships.push(pending(now));
        world.shift_into_past(Duration::days(89));
        world.tick(now, &SandboxOptions::default());
        assert_eq!(world.relationships[0].status, "approvalPending");
        world.shift_into_past(Duration::days(2));
        world.tick(now, &SandboxOptions::default());
        assert_eq!(world.relationships[0].status, "expired");
    }
}
