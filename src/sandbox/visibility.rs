//! What readers see of the world under Microsoft's eventual consistency (`consistency.rs` holds
//! the delays and the lag tables): lagging reads of relationships, service principals, grants and
//! app role assignments, when access and consent take effect, and users' pending writes.

use super::consistency::{Consistency, Family};
use super::generate;
use super::state::{
    AppRoleAssignment, Assignment, PendingUserWrite, PermissionGrant, Relationship,
    ServicePrincipal, Tenant, World,
};
use super::user_list::UserList;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

impl Assignment {
    /// Whether it gives its groups' members access in the customer at `now`: its access has
    /// propagated (`access_from`) and, if it ended, the end has not propagated yet.
    pub fn gives_access(&self, now: DateTime<Utc>) -> bool {
        self.access_from.is_some_and(|t| t <= now) && self.access_until.is_none_or(|t| now < t)
    }
}

impl World {
    /// When a write to `family` made at `now` becomes visible to readers.
    pub fn visible_after(&mut self, family: Family, now: DateTime<Utc>) -> DateTime<Utc> {
        let delay = self.consistency.read_lag.of(family);
        now + self.consistency.draw(&mut self.lag_draws, delay)
    }

    /// When a grant or app role assignment written at `now` becomes effective in tokens.
    pub fn consent_effective_at(&mut self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let delay = self.consistency.consent_propagation;
        Some(now + self.consistency.draw(&mut self.lag_draws, delay))
    }

    /// Relationship `id` (or its access assignments) was written at `now`; `before` is how it
    /// was (`None`: it was created). Called only once a write succeeded: a refused write
    /// changes nothing, so it delays nothing.
    pub fn lag_relationship(
        &mut self,
        id: &str,
        before: Option<&Relationship>,
        now: DateTime<Utc>,
    ) {
        let until = self.visible_after(Family::Gdap, now);
        self.relationships_lag.record(id, before, now, until);
    }

    /// The relationships a reader sees at `now`.
    pub fn visible_relationships(&self, now: DateTime<Utc>) -> Vec<&Relationship> {
        self.relationships_lag
            .view(self.relationships.iter(), |r| r.id.as_str(), |_| true, now)
    }

    /// Relationship `id` as a reader sees it at `now`.
    pub fn visible_relationship(&self, id: &str, now: DateTime<Utc>) -> Option<&Relationship> {
        let current = self.relationships.iter().find(|r| r.id == id);
        self.relationships_lag.get(id, current, now)
    }

    /// Applies what became due at `now` (run by `tick`, after each relationship's
    /// [`propagate_access`]): user writes that became visible, and lag entries that expired.
    pub fn propagate(&mut self, now: DateTime<Utc>) {
        self.relationships_lag.expire(now);
        for tenant in self.tenants.values_mut() {
            tenant.principals_lag.expire(now);
            tenant.grants_lag.expire(now);
            tenant.app_role_assignments_lag.expire(now);
            tenant.apply_visible_user_writes(now);
        }
    }

    /// The clock advanced by `by`: every instant of the consistency model moves into the past.
    pub fn shift_consistency_into_past(&mut self, by: Duration) {
        self.relationships_lag.shift_into_past(by);
        for rel in self.relationships.iter_mut() {
            for a in &mut rel.assignments {
                a.access_from = a.access_from.map(|t| t - by);
                a.access_until = a.access_until.map(|t| t - by);
            }
        }
        for tenant in self.tenants.values_mut() {
            tenant.principals_lag.shift_into_past(by);
            tenant.grants_lag.shift_into_past(by);
            tenant.app_role_assignments_lag.shift_into_past(by);
            for g in &mut tenant.grants {
                g.effective_at = g.effective_at.map(|t| t - by);
            }
            for a in &mut tenant.app_role_assignments {
                a.effective_at = a.effective_at.map(|t| t - by);
            }
            for w in &mut tenant.pending_users {
                w.visible_at -= by;
            }
        }
    }
}

/// Opens or closes the access windows of `rel`'s access assignments at `now`: an assignment
/// that became live (active, in an active relationship) gives access after a drawn propagation
/// delay; one that stopped being live loses it after another.
pub fn propagate_access(
    rel: &mut Relationship,
    consistency: &Consistency,
    draws: &mut u64,
    now: DateTime<Utc>,
) {
    let relationship_live = rel.status == "active";
    for a in &mut rel.assignments {
        let live = relationship_live && a.status == "active";
        if live && a.access_from.is_none() {
            let delay = consistency.draw(draws, consistency.gdap_propagation);
            a.access_from = Some(a.status_since + delay);
        } else if !live && a.access_from.is_some() && a.access_until.is_none() {
            let delay = consistency.draw(draws, consistency.gdap_propagation);
            a.access_until = Some(now + delay);
        }
    }
}

impl Tenant {
    /// The service principals a reader sees at `now`.
    pub fn visible_principals(&self, now: DateTime<Utc>) -> Vec<&ServicePrincipal> {
        self.principals_lag
            .view(&self.service_principals, |sp| sp.id.as_str(), |_| true, now)
    }

    /// Service principal `id` as a reader sees it at `now`.
    pub fn visible_principal_by_id(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Option<&ServicePrincipal> {
        self.principals_lag
            .get(id, self.service_principal_by_id(id), now)
    }

    /// The delegated grants a reader sees at `now`.
    pub fn visible_grants(&self, now: DateTime<Utc>) -> Vec<&PermissionGrant> {
        self.grants_lag
            .view(&self.grants, |g| g.id.as_str(), |_| true, now)
    }

    /// The app role assignments a reader sees at `now`.
    pub fn visible_app_role_assignments(&self, now: DateTime<Utc>) -> Vec<&AppRoleAssignment> {
        self.app_role_assignments_lag.view(
            &self.app_role_assignments,
            |a| a.id.as_str(),
            |_| true,
            now,
        )
    }

    /// A service principal, with its grants and app role assignments, is about to be deleted at
    /// `now`: readers keep seeing them until `sp_until` (the principal) and `grants_until`.
    pub fn lag_principal_deletion(
        &mut self,
        sp_id: &str,
        now: DateTime<Utc>,
        sp_until: DateTime<Utc>,
        grants_until: DateTime<Utc>,
    ) {
        let sp = self.service_principal_by_id(sp_id).cloned();
        self.principals_lag
            .record(sp_id, sp.as_ref(), now, sp_until);
        for g in self
            .grants
            .iter()
            .filter(|g| g.client_id == sp_id || g.resource_id == sp_id)
        {
            self.grants_lag.record(&g.id, Some(g), now, grants_until);
        }
        for a in self
            .app_role_assignments
            .iter()
            .filter(|a| a.principal_id == sp_id || a.resource_id == sp_id)
        {
            self.app_role_assignments_lag
                .record(&a.id, Some(a), now, grants_until);
        }
    }

    /// Adds or replaces a user (`visible_at` in the future: when readers will see it).
    pub fn write_user(
        &mut self,
        user_id: &str,
        user: Option<Map<String, Value>>,
        now: DateTime<Utc>,
        visible_at: DateTime<Utc>,
    ) {
        self.pending_users.push(PendingUserWrite {
            visible_at,
            user,
            user_id: user_id.to_string(),
        });
        self.apply_visible_user_writes(now);
    }

    /// Whether user `id` exists once every pending write is applied.
    pub fn user_will_exist(&self, id: &str) -> bool {
        if let Some(last) = self.pending_users.iter().rev().find(|w| w.user_id == id) {
            return last.user.is_some();
        }
        UserList::new(self).find(id).is_some()
    }

    fn apply_visible_user_writes(&mut self, now: DateTime<Utc>) {
        while self
            .pending_users
            .first()
            .is_some_and(|w| w.visible_at <= now)
        {
            let w = self.pending_users.remove(0);
            match w.user {
                Some(user) => self.upsert_user(&w.user_id, user),
                None => {
                    self.remove_user(&w.user_id);
                }
            }
        }
    }

    /// Adds or replaces a user now, recorded for delta. Replacing a generated user takes it out
    /// of the generated population, so it is never listed twice.
    pub fn upsert_user(&mut self, id: &str, user: Map<String, Value>) {
        if let Some(g) = self.users.generated.as_mut()
            && let Some(index) = generate::index_of(g.seed, id).filter(|i| *i < g.count)
        {
            g.removed.insert(index);
        }
        let listed = &mut self.users.listed;
        match listed
            .iter_mut()
            .find(|u| u.get("id").and_then(Value::as_str) == Some(id))
        {
            Some(existing) => *existing = user,
            None => listed.push(user),
        }
        self.record_change(id, false);
    }

    /// Removes a listed or generated user now, recorded for delta; false when absent.
    pub fn remove_user(&mut self, id: &str) -> bool {
        let before = self.users.listed.len();
        self.users
            .listed
            .retain(|u| u.get("id").and_then(Value::as_str) != Some(id));
        let mut removed = before != self.users.listed.len();
        if !removed
            && let Some(g) = self.users.generated.as_mut()
            && let Some(index) = generate::index_of(g.seed, id).filter(|i| *i < g.count)
        {
            removed = g.removed.insert(index);
        }
        if removed {
            self.record_change(id, true);
        }
        removed
    }
}
