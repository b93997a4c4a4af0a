//! The fixture's GDAP relationships ([`RelationshipFixture`]) turned into relationships of the
//! world when the sandbox starts, dated relative to the start.

use super::fixture_gdap::{RelationshipFixture, days, role_id};
use super::ids::derived_id;
use super::lifecycle::AUTO_EXTEND_DAYS;
use super::state::{Assignment, Customer, Relationship, World};
use chrono::{DateTime, Duration, Utc};

impl World {
    /// Adds the fixture's relationships, dated relative to `now`.
    pub fn add_fixture_relationships(
        &mut self,
        fixtures: &[RelationshipFixture],
        now: DateTime<Utc>,
    ) {
        for f in fixtures {
            let relationship = self.relationship_from_fixture(f, now);
            self.relationships.push(relationship);
        }
    }

    fn relationship_from_fixture(
        &mut self,
        f: &RelationshipFixture,
        now: DateTime<Utc>,
    ) -> Relationship {
        let duration_days = days(&f.duration).unwrap_or(730);
        let since = now - Duration::days(f.days_ago);
        let (created, activated, end, locked) = match f.status.as_str() {
            "created" => (since, None, None, None),
            "approvalPending" => (since - Duration::hours(1), None, None, Some(since)),
            "active" => {
                let end = extended_end(since + Duration::days(duration_days), now, f.auto_extend);
                (
                    since - Duration::days(2),
                    Some(since),
                    Some(end),
                    Some(since - Duration::days(1)),
                )
            }
            _ => {
                let activated = since - Duration::days(duration_days.min(365));
                (
                    activated - Duration::days(2),
                    Some(activated),
                    Some(since),
                    Some(activated - Duration::days(1)),
                )
            }
        };
        let tenant = self.tenants.get(&f.customer);
        let customer = Customer {
            tenant_id: f.customer.clone(),
            display_name: tenant.map(|t| t.display_name.clone()),
        };
        let roles: Vec<String> = f.roles.iter().filter_map(|r| role_id(r)).collect();
        let ended = matches!(f.status.as_str(), "terminated" | "expired");
        let assignments = f
            .access_assignments
            .iter()
            .map(|a| Assignment {
                id: derived_id(&format!("assignment/{}/{}", f.display_name, a.group)),
                group_id: self.group_id(&a.group),
                roles: a.roles.iter().filter_map(|r| role_id(r)).collect(),
                status: if ended { "deleted" } else { "active" }.into(),
                status_since: activated.unwrap_or(since),
                created: activated.unwrap_or(since),
                last_modified: activated.unwrap_or(since),
                version: 1,
                pending_update: None,
                // Made before the sandbox started: its access propagated long ago.
                access_from: (!ended).then_some(activated.unwrap_or(since)),
                access_until: None,
            })
            .collect();
        Relationship {
            id: f.id_for(&self.partner.tenant_id),
            display_name: f.display_name.clone(),
            duration: f.duration.clone(),
            duration_days,
            auto_extend_duration: if f.auto_extend { "P180D" } else { "PT0S" }.into(),
            customer: Some(customer),
            roles,
            status: f.status.clone(),
            status_since: since,
            created,
            last_modified: since,
            activated,
            end,
            locked_at: locked,
            version: self.next_version(),
            requests: Vec::new(),
            assignments,
            operations: Vec::new(),
        }
    }

    /// A partner group's id, given its id or display name.
    fn group_id(&self, reference: &str) -> String {
        self.partner
            .groups
            .iter()
            .find(|(id, name)| *id == reference || *name == reference)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| reference.to_string())
    }
}

/// An auto-extending relationship's end moves forward by 180 days as often as it was reached.
fn extended_end(end: DateTime<Utc>, now: DateTime<Utc>, auto_extend: bool) -> DateTime<Utc> {
    let mut end = end;
    while auto_extend && end <= now {
        end += Duration::days(AUTO_EXTEND_DAYS);
    }
    end
}
