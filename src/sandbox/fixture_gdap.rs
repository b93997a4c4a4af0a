//! GDAP relationships that already exist when the sandbox starts (fixture key `relationships`),
//! so an emulated partner can look like a real one: hundreds of relationships made by hand or by
//! other tools, in every state, with their access assignments.
//!
//! Contract: a [`RelationshipFixture`] is checked when the fixture loads (known customer, roles
//! in the catalog or GUIDs, groups of the partner, a status the sandbox can hold still, dates that
//! keep it in that status, unique display names and ids) and becomes a relationship of the world
//! with dates fixed relative to the sandbox's start. Ids are derived from the display name unless
//! given, so a fixture yields the same ids on every start.

use super::ids::derived_id;
use crate::api::RoleCatalog;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// How far from the sandbox's start a fixture's dates may lie (a century either way).
pub const MAX_FIXTURE_DAYS: i64 = 36_500;

/// Statuses a fixture relationship may start in (the others are transient: the sandbox moves
/// them on within seconds).
pub const FIXTURE_STATUSES: &[&str] = &[
    "created",
    "approvalPending",
    "active",
    "terminated",
    "expired",
];

/// A relationship present at start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelationshipFixture {
    /// Display name (1–50 characters, unique among the fixture's relationships).
    pub display_name: String,
    /// The customer's tenant id (a customer of the fixture).
    pub customer: String,
    /// Roles: catalog names (any spelling `gdap-operator roles` knows) or role template GUIDs.
    pub roles: Vec<String>,
    /// `P<n>D`, 1–730 days (default `P730D`).
    #[serde(default = "two_years")]
    pub duration: String,
    /// `autoExtendDuration` `P180D` instead of `PT0S`.
    #[serde(default)]
    pub auto_extend: bool,
    /// `created`, `approvalPending`, `active` (default), `terminated` or `expired`.
    #[serde(default = "active")]
    pub status: String,
    /// When it entered that status, in days before the sandbox's start: the creation
    /// (`created`), the lock (`approvalPending`, under 90), the activation (`active`, less than
    /// the duration unless it auto-extends), the end (`terminated`, `expired`). Default 0.
    #[serde(default)]
    pub days_ago: i64,
    /// Id (`{uuid}-{partner tenant id}`); derived from the display name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Access assignments (only on `active` relationships; they are `deleted` on ended ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_assignments: Vec<AssignmentFixture>,
}

/// An access assignment present at start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentFixture {
    /// A partner security group, by id or display name.
    pub group: String,
    /// Roles (a subset of the relationship's), by catalog name or GUID.
    pub roles: Vec<String>,
}

fn two_years() -> String {
    "P730D".into()
}

fn active() -> String {
    "active".into()
}

/// A role reference as a template id: a catalog name, alias or GUID.
pub(super) fn role_id(reference: &str) -> Option<String> {
    if let Some(role) = RoleCatalog::builtin().find(reference) {
        return Some(role.id.clone());
    }
    uuid::Uuid::parse_str(reference).ok().map(|u| u.to_string())
}

pub(super) fn days(duration: &str) -> Option<i64> {
    let n: i64 = duration
        .strip_prefix('P')?
        .strip_suffix('D')?
        .parse()
        .ok()?;
    (1..=730).contains(&n).then_some(n)
}

impl RelationshipFixture {
    /// The relationship's id for a partner.
    pub fn id_for(&self, partner_tenant_id: &str) -> String {
        self.id.clone().unwrap_or_else(|| {
            let uuid = derived_id(&format!("relationship/{}", self.display_name));
            format!("{uuid}-{partner_tenant_id}")
        })
    }

    /// Checks one relationship; `customers` and `groups` are what the fixture defines.
    pub fn check(&self, customers: &HashSet<&str>, groups: &[(&str, &str)]) -> anyhow::Result<()> {
        let what = format!("relationship {:?}", self.display_name);
        let name_len = self.display_name.chars().count();
        anyhow::ensure!(
            (1..=50).contains(&name_len),
            "{what}: displayName must have 1 to 50 characters"
        );
        anyhow::ensure!(
            customers.contains(self.customer.as_str()),
            "{what}: customer {} is not a customer of the fixture",
            self.customer
        );
        anyhow::ensure!(
            FIXTURE_STATUSES.contains(&self.status.as_str()),
            "{what}: status {:?} is not one of {}",
            self.status,
            FIXTURE_STATUSES.join(", ")
        );
        let duration = days(&self.duration).ok_or_else(|| {
            anyhow::anyhow!(
                "{what}: duration {:?} must be P<n>D with 1 <= n <= 730",
                self.duration
            )
        })?;
        anyhow::ensure!(!self.roles.is_empty(), "{what}: roles must not be empty");
        let mut ids = HashSet::new();
        for role in &self.roles {
            let id = role_id(role).ok_or_else(|| {
                anyhow::anyhow!("{what}: role {role:?} is neither a catalog name nor a GUID")
            })?;
            ids.insert(id);
        }
        anyhow::ensure!(self.days_ago >= 0, "{what}: daysAgo must not be negative");
        anyhow::ensure!(
            self.days_ago <= MAX_FIXTURE_DAYS,
            "{what}: daysAgo must be at most {MAX_FIXTURE_DAYS} (a century), got {}",
            self.days_ago
        );
        match self.status.as_str() {
            "approvalPending" => anyhow::ensure!(
                self.days_ago < 90,
                "{what}: an approvalPending relationship locked {} days ago has lapsed (the window is 90 days)",
                self.days_ago
            ),
            "active" => anyhow::ensure!(
                self.auto_extend || self.days_ago < duration,
                "{what}: activated {} days ago, it would already have expired (duration {duration} days)",
                self.days_ago
            ),
            _ => {}
        }
        anyhow::ensure!(
            self.access_assignments.is_empty()
                || self.status == "active"
                || self.status == "terminated"
                || self.status == "expired",
            "{what}: accessAssignments need an active (or ended) relationship"
        );
        for a in &self.access_assignments {
            anyhow::ensure!(
                groups
                    .iter()
                    .any(|(id, name)| *id == a.group || *name == a.group),
                "{what}: access assignment names unknown partner group {}",
                a.group
            );
            for role in &a.roles {
                let id = role_id(role).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{what}: assignment role {role:?} is neither a catalog name nor a GUID"
                    )
                })?;
                anyhow::ensure!(
                    ids.contains(&id),
                    "{what}: assignment role {role:?} is not one of the relationship's roles"
                );
            }
        }
        Ok(())
    }
}

/// Display names and ids are unique across the fixture's relationships.
pub fn check_unique(
    relationships: &[RelationshipFixture],
    partner_tenant_id: &str,
) -> anyhow::Result<()> {
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    for r in relationships {
        anyhow::ensure!(
            names.insert(r.display_name.to_lowercase()),
            "relationship display names must be unique: {:?} appears twice",
            r.display_name
        );
        anyhow::ensure!(
            ids.insert(r.id_for(partner_tenant_id)),
            "relationship ids must be unique: {:?} repeats one",
            r.display_name
        );
    }
    Ok(())
}
