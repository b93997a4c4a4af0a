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
use super::state::{Relationship, Tenant, World};
use super::visibility::propagate_access;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// Days before a relationship awaiting approval expires.
pub const APPROVAL_WINDOW_DAYS: i64 = 90;
/// Days added by one auto-extension.
pub const AUTO_EXTEND_DAYS: i64 = 180;

fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>, d: Duration) -> bool {
    now - since >= d
}

impl World {
    /// Applies every transition that is due at `now`. A relationship that nothing changed since
    /// the last step and whose next timed transition ([`next_change`]) is still ahead is passed
    /// over (`quiet_list.rs`).
    pub fn tick(&mut self, now: DateTime<Utc>, options: &SandboxOptions) {
        let d = Duration::from_std(options.assignment_activation_delay).unwrap_or_default();
        let auto = options
            .auto_approve_after
            .and_then(|a| Duration::from_std(a).ok());
        let (tenants, consistency, draws) = (&self.tenants, &self.consistency, &mut self.lag_draws);
        self.relationships.step_due(now, |rel| {
            step_approval(rel, now, auto);
            step_relationship(rel, now, d);
            step_assignments(rel, now, d);
            name_customer(rel, tenants);
            propagate_access(rel, consistency, draws, now);
            next_change(rel, d, auto)
        });
        self.propagate(now);
    }
}

/// `approvalPending` → `approved` after `--auto-approve-after` (with a customer), → `expired`
/// when the approval window has passed.
fn step_approval(rel: &mut Relationship, now: DateTime<Utc>, auto: Option<Duration>) {
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
}

/// The customer's display name, from its tenant, once the tenant is known.
fn name_customer(rel: &mut Relationship, tenants: &BTreeMap<String, Tenant>) {
    if let Some(c) = rel.customer.as_mut().filter(|c| c.display_name.is_none()) {
        c.display_name = tenants.get(&c.tenant_id).map(|t| t.display_name.clone());
    }
}

/// The earliest instant at which a timed transition of `rel` can happen (the steps above, with
/// the same `d` and auto-approval), or `None` to look at it on every step (its customer's name
/// is not known yet). Far in the future when nothing is timed.
pub fn next_change(
    rel: &Relationship,
    d: Duration,
    auto: Option<Duration>,
) -> Option<DateTime<Utc>> {
    if rel
        .customer
        .as_ref()
        .is_some_and(|c| c.display_name.is_none())
    {
        return None;
    }
    let since = rel.status_since;
    let status = match rel.status.as_str() {
        "approvalPending" => rel.locked_at.map(|locked| {
            let window = locked + Duration::days(APPROVAL_WINDOW_DAYS);
            match auto.filter(|_| rel.customer.is_some()) {
                Some(auto) => window.min(locked + auto),
                None => window,
            }
        }),
        "approved" | "activating" | "expiring" | "terminationRequested" | "terminating" => {
            Some(since + d / 2)
        }
        "active" => rel.end,
        _ => None,
    };
    let assignments = rel.assignments.iter().flat_map(|a| {
        let moving = matches!(a.status.as_str(), "pending" | "deleting");
        let status = moving.then(|| a.status_since + d);
        let update = a.pending_update.as_ref().map(|_| a.last_modified + d);
        [status, update]
    });
    let operations = rel
        .operations
        .iter()
        .filter(|op| op.operation_type == "delegatedAdminRelationshipUpdate")
        .filter(|op| op.status == "running")
        .map(|op| Some(op.created + d));
    let earliest = std::iter::once(status).chain(assignments).chain(operations);
    Some(earliest.flatten().min().unwrap_or(DateTime::<Utc>::MAX_UTC))
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
    use crate::sandbox::fixture::Fixture;
    use crate::sandbox::state::{Assignment, Customer, Operation, Relationship};
    use serde_json::Value;

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

    fn assignment(status: &str, since: DateTime<Utc>) -> Assignment {
        Assignment {
            id: "a".into(),
            group_id: "g".into(),
            roles: vec![],
            status: status.into(),
            status_since: since,
            created: since,
            last_modified: since,
            version: 1,
            pending_update: None,
            access_from: None,
            access_until: None,
        }
    }

    fn customer(name: Option<&str>) -> Option<Customer> {
        Some(Customer {
            tenant_id: "c".into(),
            display_name: name.map(Into::into),
        })
    }

    /// The steps `tick` runs on one relationship, on a copy, as JSON.
    fn stepped(r: &Relationship, now: DateTime<Utc>, d: Duration, auto: Option<Duration>) -> Value {
        let mut r = r.clone();
        step_approval(&mut r, now, auto);
        step_relationship(&mut r, now, d);
        step_assignments(&mut r, now, d);
        serde_json::to_value(r).unwrap()
    }

    /// Relationships as a step at t(0) leaves them, with when the next transition is due.
    fn timed_cases() -> Vec<(&'static str, Relationship, Option<DateTime<Utc>>)> {
        let mut cases = Vec::new();
        let mut approval = rel("approvalPending", t(0));
        approval.locked_at = Some(t(0));
        approval.customer = customer(Some("Contoso"));
        cases.push(("auto-approval", approval.clone(), Some(t(1))));
        approval.customer = None;
        cases.push(("approval window", approval, Some(t(0) + Duration::days(90))));
        for status in [
            "approved",
            "activating",
            "expiring",
            "terminationRequested",
            "terminating",
        ] {
            cases.push((status, rel(status, t(0)), Some(t(1))));
        }
        let mut ending = rel("active", t(0));
        ending.end = Some(t(100));
        cases.push(("end of term", ending.clone(), Some(t(100))));
        let mut assigning = ending.clone();
        assigning.assignments.push(assignment("pending", t(0)));
        cases.push(("assignment activating", assigning, Some(t(2))));
        let mut deleting = ending.clone();
        deleting.assignments.push(assignment("deleting", t(0)));
        cases.push(("assignment deleting", deleting, Some(t(2))));
        let mut updating = ending.clone();
        let mut updated = assignment("active", t(0));
        updated.pending_update = Some((vec!["role".into()], "op".into()));
        updating.assignments.push(updated);
        cases.push(("assignment update", updating, Some(t(2))));
        let mut operation = ending.clone();
        operation.operations.push(Operation {
            id: "op".into(),
            operation_type: "delegatedAdminRelationshipUpdate".into(),
            status: "running".into(),
            target: "r".into(),
            roles: vec![],
            created: t(0),
            last_modified: t(0),
            version: 1,
        });
        cases.push(("relationship update", operation, Some(t(2))));
        cases.push((
            "created",
            rel("created", t(0)),
            Some(DateTime::<Utc>::MAX_UTC),
        ));
        let mut unnamed = rel("active", t(0));
        unnamed.customer = customer(None);
        cases.push(("customer without a name", unnamed, None));
        cases
    }

    #[test]
    fn next_change_is_the_first_instant_a_step_changes_the_relationship() {
        let (d, auto) = (Duration::seconds(2), Some(Duration::seconds(1)));
        for (case, r, expected) in timed_cases() {
            assert_eq!(next_change(&r, d, auto), expected, "{case}");
            let Some(due) = expected.filter(|&due| due < DateTime::<Utc>::MAX_UTC) else {
                continue;
            };
            let unchanged = serde_json::to_value(&r).unwrap();
            let before = due - Duration::milliseconds(1);
            assert_eq!(stepped(&r, before, d, auto), unchanged, "{case}: early");
            assert_ne!(stepped(&r, due, d, auto), unchanged, "{case}: when due");
        }
    }

    #[test]
    fn tick_passes_over_quiet_relationships_and_sees_every_change() {
        let options = SandboxOptions {
            assignment_activation_delay: std::time::Duration::from_secs(2),
            ..SandboxOptions::default()
        };
        let mut world = World::from_fixture(&Fixture::builtin(), t(0));
        let mut r = rel("active", t(0));
        r.end = Some(t(100));
        world.relationships.push(r);
        world.tick(t(0), &options);
        let found = world.relationships.find_mut(|r| r.id == "r").unwrap();
        found.assignments.push(assignment("pending", t(1)));
        world.tick(t(3), &options);
        assert_eq!(world.relationships[0].assignments[0].status, "active");
        world.tick(t(100), &options);
        assert_eq!(world.relationships[0].status, "expiring");
        world.tick(t(101), &options);
        assert_eq!(world.relationships[0].status, "expired");
        assert_eq!(world.relationships[0].assignments[0].status, "deleted");
    }
}
