//! Time-driven transitions, applied lazily before every request ([`World::tick`]).
//!
//! Contract (`d` = the activation delay, default 1 s):
//! - `approvalPending` → `approved` after `--auto-approve-after` (when set); → `expired` when the
//!   90-day approval window has passed since `lockForApproval`.
//! - `approved` → `activating` after d/2 → `active` after d (sets `activatedDateTime` and
//!   `endDateTime = activated + duration`).
//! - `active` past `endDateTime`: with `autoExtendDuration = P180D` the end moves forward by 180
//!   days (as often as needed); otherwise `expiring` → `expired` (after d/2 each).
//! - `terminationRequested` → `terminating` → `terminated` (d/2 each).
//! - Access assignments: `pending` → `active` after d; `deleting` → `deleted` after d; an
//!   accepted PATCH is applied after d and its operation becomes `succeeded`. When a
//!   relationship ends (expired or terminated) its assignments become `deleted`.

use super::options::SandboxOptions;
use super::state::{Relationship, World};
use chrono::{DateTime, Duration, Utc};

/// Days before a relationship awaiting approval expires.
pub const APPROVAL_WINDOW_DAYS: i64 = 90;
/// Days added by one auto-extension.
pub const AUTO_EXTEND_DAYS: i64 = 180;

fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>, d: Duration) -> bool {
    now - since >= d
}

impl World {
    /// Applies every transition that is due at `now`.
    pub fn tick(&mut self, now: DateTime<Utc>, options: &SandboxOptions) {
        let d = Duration::from_std(options.assignment_activation_delay).unwrap_or_default();
        let auto = options
            .auto_approve_after
            .and_then(|a| Duration::from_std(a).ok());
        let tenants = &self.tenants;
        for rel in &mut self.relationships {
            if rel.status == "approvalPending"
                && let (Some(auto), Some(locked)) = (auto, rel.locked_at)
                && now - locked >= auto
                && rel.customer.is_some()
            {
                set_status(rel, "approved", locked + auto);
            }
            if rel.status == "approvalPending"
                && rel
                    .locked_at
                    .is_some_and(|l| now - l >= Duration::days(APPROVAL_WINDOW_DAYS))
            {
                set_status(rel, "expired", now);
            }
            step_relationship(rel, now, d);
            step_assignments(rel, now, d);
            if rel
                .customer
                .as_ref()
                .is_some_and(|c| c.display_name.is_none())
            {
                let name = rel
                    .customer
                    .as_ref()
                    .and_then(|c| tenants.get(&c.tenant_id))
                    .map(|t| t.display_name.clone());
                if let Some(c) = rel.customer.as_mut() {
                    c.display_name = name;
                }
            }
        }
        self.propagate(now);
    }
}

/// Changes a relationship's status at `at`.
pub fn set_status(rel: &mut Relationship, status: &str, at: DateTime<Utc>) {
    rel.status = status.to_string();
    rel.status_since = at;
    rel.last_modified = at;
    rel.version += 1;
}

fn step_relationship(rel: &mut Relationship, now: DateTime<Utc>, d: Duration) {
    let half = d / 2;
    loop {
        let since = rel.status_since;
        match rel.status.as_str() {
            "approved" if elapsed(since, now, half) => set_status(rel, "activating", since + half),
            "activating" if elapsed(since, now, half) => {
                let at = since + half;
                set_status(rel, "active", at);
                rel.activated = Some(at);
                rel.end = Some(at + Duration::days(rel.duration_days));
            }
            "active" if rel.end.is_some_and(|e| e <= now) => {
                let end = rel.end.unwrap_or(now);
                if rel.auto_extend_duration == "P180D" {
                    let mut end = end;
                    while end <= now {
                        end += Duration::days(AUTO_EXTEND_DAYS);
                    }
                    rel.end = Some(end);
                    rel.last_modified = now;
                    rel.version += 1;
                } else {
                    set_status(rel, "expiring", end.max(since));
                }
            }
            "expiring" if elapsed(since, now, half) => set_status(rel, "expired", since + half),
            "terminationRequested" if elapsed(since, now, half) => {
                set_status(rel, "terminating", since + half)
            }
            "terminating" if elapsed(since, now, half) => {
                set_status(rel, "terminated", since + half)
            }
            _ => break,
        }
    }
    if matches!(rel.status.as_str(), "expired" | "terminated") {
        for a in &mut rel.assignments {
            if a.status != "deleted" {
                a.status = "deleted".into();
                a.status_since = now;
                a.last_modified = now;
                a.version += 1;
            }
        }
    }
}

fn step_assignments(rel: &mut Relationship, now: DateTime<Utc>, d: Duration) {
    for a in &mut rel.assignments {
        let due = elapsed(a.status_since, now, d);
        let next = match a.status.as_str() {
            "pending" if due => Some("active"),
            "deleting" if due => Some("deleted"),
            _ => None,
        };
        if let Some(next) = next {
            a.status = next.into();
            a.last_modified = a.status_since + d;
            a.status_since = a.last_modified;
            a.version += 1;
        }
        if let Some((roles, op_id)) = a.pending_update.clone()
            && elapsed(a.last_modified, now, d)
        {
            a.roles = roles;
            a.pending_update = None;
            a.last_modified = now;
            a.version += 1;
            if let Some(op) = rel.operations.iter_mut().find(|o| o.id == op_id) {
                op.status = "succeeded".into();
                op.last_modified = now;
                op.version += 1;
            }
        }
    }
    for op in &mut rel.operations {
        if op.operation_type == "delegatedAdminRelationshipUpdate"
            && op.status == "running"
            && elapsed(op.created, now, d)
        {
            rel.roles = op.roles.clone();
            rel.last_modified = now;
            rel.version += 1;
            op.status = "succeeded".into();
            op.last_modified = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::state::Relationship;

    fn rel(status: &str, since: DateTime<Utc>) -> Relationship {
        Relationship {
            id: "r".into(),
            display_name: "r".into(),
            duration: "P730D".into(),
            duration_days: 730,
            auto_extend_duration: "PT0S".into(),
            customer: None,
            roles: vec![],
            status: status.into(),
            status_since: since,
            created: since,
            last_modified: since,
            activated: None,
            end: None,
            locked_at: None,
            version: 1,
            requests: vec![],
            assignments: vec![],
            operations: vec![],
        }
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn approval_activates_after_the_delay_with_dates_from_the_transition() {
        let d = Duration::seconds(2);
        let mut r = rel("approved", t(0));
        step_relationship(&mut r, t(0), d);
        assert_eq!(r.status, "approved");
        step_relationship(&mut r, t(1), d);
        assert_eq!(r.status, "activating");
        step_relationship(&mut r, t(5), d);
        assert_eq!(r.status, "active");
        assert_eq!(
            r.activated,
            Some(t(2)),
            "activation time is when the delay ended, not when observed"
        );
        assert_eq!(r.end, Some(t(2) + Duration::days(730)));
    }

    #[test]
    fn end_of_term_extends_or_expires() {
        let mut extend = rel("active", t(0));
        extend.auto_extend_duration = "P180D".into();
        extend.end = Some(t(10));
        let now = t(10) + Duration::days(200);
        step_relationship(&mut extend, now, Duration::zero());
        assert_eq!(extend.status, "active");
        assert_eq!(
            extend.end,
            Some(t(10) + Duration::days(360)),
            "extended twice, by 180 days each"
        );

        let mut expire = rel("active", t(0));
        expire.end = Some(t(10));
        step_relationship(&mut expire, t(11), Duration::zero());
        assert_eq!(expire.status, "expired");
    }

    #[test]
    fn termination_walks_through_its_statuses() {
        let d = Duration::seconds(2);
        let mut r = rel("terminationRequested", t(0));
        step_relationship(&mut r, t(1), d);
        assert_eq!(r.status, "terminating");
        step_relationship(&mut r, t(2), d);
        assert_eq!(r.status, "terminated");
    }
}
