//! Which customers a fleet covers (pure): the partner's customers from Partner Center and/or a
//! list of tenants, less the excluded ones and those a filter on the name or domain leaves out.

use std::collections::{BTreeMap, BTreeSet};

/// A customer of the partner, as Partner Center lists it or a list entry names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// The customer's tenant id (lower case).
    pub tenant_id: String,
    /// Its company name, when known.
    pub name: Option<String>,
    /// Its default domain, when known.
    pub domain: Option<String>,
}

impl Customer {
    /// A customer known by its tenant id only.
    pub fn by_id(tenant_id: &str) -> Self {
        Customer {
            tenant_id: tenant_id.to_ascii_lowercase(),
            name: None,
            domain: None,
        }
    }
}

/// Where a fleet's customers come from and which it leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Every customer of the partner in Partner Center.
    pub partner_center: bool,
    /// Customers named one by one (always covered unless excluded).
    pub listed: Vec<Customer>,
    /// Tenant ids never covered (lower case).
    pub exclude: BTreeSet<String>,
    /// Partner Center's customers are covered only when their name contains this (any case).
    pub name_contains: Option<String>,
    /// Partner Center's customers are covered only when their domain ends with this (any case).
    pub domain_suffix: Option<String>,
}

/// How a customer stands with the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Membership {
    /// Covered: the fleet keeps its objects.
    Member,
    /// Named in `exclude`.
    Excluded,
    /// A Partner Center customer the filter leaves out.
    FilteredOut,
}

/// The customers the fleet knows of, by tenant id, with how each stands. `partner_center` is
/// Partner Center's list when the selection uses it (ignored otherwise).
pub fn select(
    selection: &Selection,
    partner_center: &[Customer],
) -> BTreeMap<String, (Customer, Membership)> {
    let mut known = BTreeMap::new();
    if selection.partner_center {
        for c in partner_center {
            let standing = if passes_filter(selection, c) {
                Membership::Member
            } else {
                Membership::FilteredOut
            };
            known.insert(c.tenant_id.to_ascii_lowercase(), (c.clone(), standing));
        }
    }
    for c in &selection.listed {
        let id = c.tenant_id.to_ascii_lowercase();
        let merged = match known.remove(&id) {
            Some((listed_by_pc, _)) => Customer {
                name: c.name.clone().or(listed_by_pc.name),
                domain: c.domain.clone().or(listed_by_pc.domain),
                tenant_id: id.clone(),
            },
            None => Customer {
                tenant_id: id.clone(),
                ..c.clone()
            },
        };
        known.insert(id, (merged, Membership::Member));
    }
    for (id, (_, standing)) in known.iter_mut() {
        if selection.exclude.contains(id) {
            *standing = Membership::Excluded;
        }
    }
    known
}

/// Whether a Partner Center customer passes the name and domain filters.
fn passes_filter(selection: &Selection, c: &Customer) -> bool {
    let contains = |field: &Option<String>, part: &str| {
        field
            .as_deref()
            .is_some_and(|f| f.to_lowercase().contains(&part.to_lowercase()))
    };
    let ends_with = |field: &Option<String>, suffix: &str| {
        field
            .as_deref()
            .is_some_and(|f| f.to_lowercase().ends_with(&suffix.to_lowercase()))
    };
    selection
        .name_contains
        .as_deref()
        .is_none_or(|part| contains(&c.name, part))
        && selection
            .domain_suffix
            .as_deref()
            .is_none_or(|suffix| ends_with(&c.domain, suffix))
}
