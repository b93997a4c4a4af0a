//! Users of a customer tenant as a virtual, position-addressed list: position `p` < generated
//! count is generated user `p` (unless removed); later positions are listed users.

use super::generate::{self, Population};
use super::state::Tenant;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A read-only view of a tenant's users.
pub struct UserList<'a> {
    tenant: &'a Tenant,
    skus: Vec<generate::GeneratedSku>,
}

impl<'a> UserList<'a> {
    /// The view of a tenant.
    pub fn new(tenant: &'a Tenant) -> UserList<'a> {
        UserList {
            tenant,
            skus: tenant.generated_skus(),
        }
    }

    fn population(&self) -> Option<(Population<'_>, u64)> {
        let g = self.tenant.users.generated.as_ref()?;
        Some((
            Population {
                seed: g.seed,
                domain: &self.tenant.primary_domain,
                company: &self.tenant.display_name,
                skus: &self.skus,
            },
            g.count,
        ))
    }

    fn generated_count(&self) -> u64 {
        self.tenant
            .users
            .generated
            .as_ref()
            .map(|g| g.count)
            .unwrap_or(0)
    }

    /// Number of positions (including removed generated users).
    pub fn positions(&self) -> u64 {
        self.generated_count() + self.tenant.users.listed.len() as u64
    }

    /// The user at a position, if present.
    pub fn at(&self, pos: u64) -> Option<Map<String, Value>> {
        let generated = self.generated_count();
        if pos < generated {
            let g = self.tenant.users.generated.as_ref()?;
            if g.removed.contains(&pos) {
                return None;
            }
            let (pop, _) = self.population()?;
            return Some(generate::user(&pop, pos));
        }
        self.tenant
            .users
            .listed
            .get((pos - generated) as usize)
            .cloned()
    }

    /// Number of users.
    pub fn count(&self) -> u64 {
        let removed = self
            .tenant
            .users
            .generated
            .as_ref()
            .map(|g| g.removed.len() as u64)
            .unwrap_or(0);
        self.positions() - removed
    }

    /// A user by object id or UPN.
    pub fn find(&self, key: &str) -> Option<Map<String, Value>> {
        let matches = |u: &Map<String, Value>| {
            ["id", "userPrincipalName"].iter().any(|k| {
                u.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(key))
            })
        };
        if let Some(u) = self.tenant.users.listed.iter().find(|u| matches(u)) {
            return Some(u.clone());
        }
        let g = self.tenant.users.generated.as_ref()?;
        let index = generate::index_of(g.seed, key).or_else(|| upn_index(key))?;
        (index < g.count)
            .then(|| self.at(index))
            .flatten()
            .filter(matches)
    }

    /// Units of each SKU assigned to users, by SKU id.
    pub fn consumed_units(&self) -> BTreeMap<String, i64> {
        let mut units: BTreeMap<String, i64> = BTreeMap::new();
        for u in &self.tenant.users.listed {
            for l in u
                .get("assignedLicenses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(id) = l.get("skuId").and_then(Value::as_str) {
                    *units.entry(id.to_string()).or_default() += 1;
                }
            }
        }
        if let (Some((pop, count)), Some(g)) =
            (self.population(), self.tenant.users.generated.as_ref())
        {
            for index in
                (0..count).filter(|i| !g.removed.contains(i) && !generate::is_guest(pop.seed, *i))
            {
                for (pos, sku) in self.skus.iter().enumerate() {
                    if generate::has_licence(&pop, index, pos) {
                        *units.entry(sku.sku_id.clone()).or_default() += 1;
                    }
                }
            }
        }
        units
    }
}

fn upn_index(upn: &str) -> Option<u64> {
    let local = upn.split('@').next()?.to_ascii_lowercase();
    let local = local.trim_end_matches("_ext#ext#");
    let digits: String = local
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}
