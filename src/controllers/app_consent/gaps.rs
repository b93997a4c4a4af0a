//! How the customer tenant differs from the intent, both ways: what it lacks ([`Gaps`]) and
//! what it gives the app beyond the spec ([`Excess`]) (pure).

use super::desired::Wanted;
use super::pending::Pending;
use super::tenant::{RoleAssignment, TenantView};
use std::collections::BTreeSet;

/// An application permission the spec wants that is not granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingRole {
    /// The resource's appId.
    pub resource: String,
    /// The permission's name, as the spec writes it.
    pub role: String,
    /// The resource's service principal id.
    pub resource_sp_id: String,
    /// The app role's id.
    pub app_role_id: String,
}

/// What the customer tenant lacks of the consent the spec describes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gaps {
    /// The app has no service principal there.
    pub app_missing: bool,
    /// Resources (appIds) whose service principal is missing.
    pub missing_principals: Vec<String>,
    /// Delegated scopes not granted, per resource.
    pub missing_scopes: Vec<(String, Vec<String>)>,
    /// Application permissions not granted.
    pub missing_roles: Vec<MissingRole>,
    /// Application permissions the resource does not offer: (field path, name, resource).
    pub unknown_roles: Vec<(String, String, String)>,
}

impl Gaps {
    /// Nothing is missing.
    pub fn is_empty(&self) -> bool {
        !self.app_missing
            && self.missing_principals.is_empty()
            && self.missing_scopes.is_empty()
            && self.missing_roles.is_empty()
            && self.unknown_roles.is_empty()
    }
}

/// Compares the tenant with the spec.
pub fn gaps(wanted: &Wanted, view: &TenantView) -> Gaps {
    let mut gaps = Gaps {
        app_missing: view.app_principal.is_none(),
        ..Default::default()
    };
    let principal = |app: &str| view.resources.get(app).and_then(Option::as_ref);
    gaps.missing_principals = wanted
        .principals
        .iter()
        .filter(|app| principal(app).is_none())
        .cloned()
        .collect();
    for (resource, scopes) in &wanted.delegated {
        let held = view.grants.get(resource);
        let missing: Vec<String> = scopes
            .iter()
            .filter(|s| !held.is_some_and(|h| h.contains(&s.to_ascii_lowercase())))
            .cloned()
            .collect();
        if !missing.is_empty() {
            gaps.missing_scopes.push((resource.clone(), missing));
        }
    }
    for grant in &wanted.grants {
        let Some(sp) = principal(&grant.resource_app_id) else {
            continue;
        };
        for (j, role) in grant.app_roles.iter().enumerate() {
            let Some(role_id) = sp.app_roles.get(&role.to_ascii_lowercase()) else {
                gaps.unknown_roles.push((
                    format!("spec.grants[{}].appRoles[{j}]", grant.index),
                    role.clone(),
                    grant.resource_app_id.clone(),
                ));
                continue;
            };
            let granted = view
                .assignments
                .iter()
                .any(|a| a.resource_id == sp.id && &a.app_role_id == role_id);
            if !granted {
                gaps.missing_roles.push(MissingRole {
                    resource: grant.resource_app_id.clone(),
                    role: role.clone(),
                    resource_sp_id: sp.id.clone(),
                    app_role_id: role_id.clone(),
                });
            }
        }
    }
    gaps
}

impl Gaps {
    /// Some gap is not covered by a pending write of the operator (so it is not lag of the
    /// operator's own change).
    pub fn uncovered(&self, pending: &Pending) -> bool {
        (self.app_missing && pending.consent().is_none())
            || self
                .missing_principals
                .iter()
                .any(|app| pending.service_principal(app).is_none())
            || self
                .missing_scopes
                .iter()
                .any(|(resource, scopes)| pending.consent_covering(resource, scopes).is_none())
            || self.missing_roles.iter().any(|m| {
                pending
                    .app_role(&m.resource_sp_id, &m.app_role_id)
                    .is_none()
            })
    }
}

/// What the customer tenant gives the app beyond the spec: access to remove (the spec is the
/// truth about what the app may do there).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Excess {
    /// Delegated scopes granted but not wanted, per resource (appId, else service principal
    /// id); a resource the spec does not name lists every scope it holds.
    pub scopes: Vec<(String, Vec<String>)>,
    /// Application permissions granted but not wanted.
    pub roles: Vec<RoleAssignment>,
}

impl Excess {
    /// Nothing beyond the spec.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.roles.is_empty()
    }
}

/// Compares the tenant with the spec the other way: what is granted and not wanted.
pub fn excess(wanted: &Wanted, view: &TenantView) -> Excess {
    let allowed = &wanted.allowed_scopes;
    let scopes = view
        .grants
        .iter()
        .filter_map(|(resource, held)| {
            let extra: Vec<String> = match allowed.get(resource) {
                Some(ok) => held.difference(ok).cloned().collect(),
                None => held.iter().cloned().collect(),
            };
            (!extra.is_empty()).then(|| (resource.clone(), extra))
        })
        .collect();
    let granted_by_spec: BTreeSet<(String, String)> = wanted
        .grants
        .iter()
        .filter_map(|g| {
            let sp = view.resources.get(&g.resource_app_id)?.as_ref()?;
            Some(g.app_roles.iter().filter_map(move |role| {
                let id = sp.app_roles.get(&role.to_ascii_lowercase())?;
                Some((sp.id.clone(), id.clone()))
            }))
        })
        .flatten()
        .collect();
    let roles = view
        .assignments
        .iter()
        .filter(|a| !granted_by_spec.contains(&(a.resource_id.clone(), a.app_role_id.clone())))
        .cloned()
        .collect();
    Excess { scopes, roles }
}
