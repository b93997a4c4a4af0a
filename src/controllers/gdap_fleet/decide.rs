//! A fleet's whole plan for one pass (pure): the membership plan of `plan`, and for each customer
//! it applies the objects made from the template — only those whose digest differs from what
//! the fleet last applied, so a steady fleet writes nothing.

use super::children::{BadOverride, Objects, objects};
use super::desired::FleetIntent;
use super::observe::Observed;
use super::plan::{self, Plan};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// What one pass of a fleet does.
#[derive(Debug, Clone, Default)]
pub struct FleetPlan {
    /// Who is covered, created, pruned and let go, and the counts.
    pub members: Plan,
    /// The objects to write now (new customers, and those whose template changed).
    pub write: Vec<Objects>,
    /// Customers whose overrides do not make a valid template (tenant id, why): left as they are.
    pub invalid: Vec<(String, BadOverride)>,
    /// The fleet is deleted and none of its objects is left: it can go.
    pub done: bool,
    /// Nothing can be decided this pass (the namespace could not be listed).
    pub blind: bool,
}

/// The plan of one pass.
pub fn decide(intent: &FleetIntent, observed: &Observed, now: DateTime<Utc>) -> FleetPlan {
    if observed.unlisted.is_some() {
        return FleetPlan {
            blind: true,
            ..FleetPlan::default()
        };
    }
    let core = plan::Observed {
        partner_center: observed.partner_center.clone(),
        children: observed.seen.iter().map(|s| s.child.clone()).collect(),
        pruned: observed.pruned.clone(),
    };
    let members = plan::plan(&intent.plan, &core, now);
    let digests: HashMap<&str, Option<&str>> = observed
        .seen
        .iter()
        .filter(|s| s.child.owner == plan::Owner::ThisFleet)
        .map(|s| (s.child.tenant_id.as_str(), s.digest.as_deref()))
        .collect();
    let mut write = Vec::new();
    let mut invalid = Vec::new();
    for customer in &members.apply {
        let overrides = intent.overrides.get(&customer.tenant_id);
        match objects(&intent.fleet, &intent.template, overrides, customer) {
            Ok(o) => {
                let applied = digests.get(customer.tenant_id.as_str()).copied().flatten();
                if applied != Some(o.digest.as_str()) {
                    write.push(o);
                }
            }
            Err(bad) => invalid.push((customer.tenant_id.clone(), bad)),
        }
    }
    let ours_left = observed
        .seen
        .iter()
        .any(|s| s.child.owner == plan::Owner::ThisFleet);
    FleetPlan {
        done: intent.plan.deleting && !ours_left,
        members,
        write,
        invalid,
        blind: false,
    }
}
