//! A fleet's intent, resolved once from its spec: which customers, how they are rolled out and
//! pruned (for `plan`), and the templates each customer's objects are made from (for `act`).

use super::members::{Customer, Selection};
use super::plan::{Intent, Pruning, Rollout};
use crate::api::{FleetOverrides, FleetTemplate, GdapFleet};
use kube::ResourceExt;
use std::collections::BTreeMap;

/// The fleet's intent: the plan's part and the templates.
#[derive(Debug, Clone)]
pub struct FleetIntent {
    /// What the plan decides from.
    pub plan: Intent,
    /// The templates of each customer's objects.
    pub template: FleetTemplate,
    /// Per-customer overrides, by tenant id (lower case).
    pub overrides: BTreeMap<String, FleetOverrides>,
    /// The fleet as its objects refer to it.
    pub fleet: super::children::Fleet,
}

/// Resolves the fleet's intent from its spec.
pub fn resolve(fleet: &GdapFleet) -> FleetIntent {
    let spec = &fleet.spec;
    let customers = &spec.customers;
    let filter = customers.filter.clone().unwrap_or_default();
    let selection = Selection {
        partner_center: customers.partner_center,
        listed: customers
            .list
            .iter()
            .map(|c| Customer {
                tenant_id: c.tenant_id.0.to_ascii_lowercase(),
                name: c.name.clone(),
                domain: None,
            })
            .collect(),
        exclude: customers
            .exclude
            .iter()
            .map(|g| g.0.to_ascii_lowercase())
            .collect(),
        name_contains: filter.name_contains,
        domain_suffix: filter.domain_suffix,
    };
    let overrides = customers
        .list
        .iter()
        .filter_map(|c| {
            let o = c.overrides.clone()?;
            Some((c.tenant_id.0.to_ascii_lowercase(), o))
        })
        .collect();
    FleetIntent {
        plan: Intent {
            selection,
            rollout: Rollout {
                max_awaiting_approval: spec.rollout.max_awaiting_approval,
                paused: spec.rollout.paused,
            },
            pruning: Pruning {
                enabled: spec.prune,
                per_hour: spec.prune_per_hour,
            },
            deleting: fleet.metadata.deletion_timestamp.is_some(),
        },
        template: spec.template.clone(),
        overrides,
        fleet: super::children::Fleet {
            name: fleet.name_any(),
            namespace: fleet.namespace().unwrap_or_default(),
            uid: fleet.uid().unwrap_or_default(),
        },
    }
}
