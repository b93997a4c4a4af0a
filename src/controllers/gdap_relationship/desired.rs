//! What the spec asks for, resolved through the role catalog: role template ids instead of
//! names, days instead of `P<n>D`, the display name filled in. Spec problems the API server
//! cannot catch (unknown roles, the same role twice) are reported here, with the field.

use super::naming;
use crate::api::{DeletionPolicy, GdapRelationship, ManagementPolicy, RenewalPolicy, RoleCatalog};
use crate::validate;
use std::collections::{BTreeMap, BTreeSet};

/// The resolved spec of one relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Display name in Microsoft (idempotency key).
    pub display_name: String,
    /// Customer tenant id (lower case).
    pub customer: String,
    /// Role template ids (lower case).
    pub role_ids: BTreeSet<String>,
    /// Duration in days.
    pub duration_days: u32,
    /// Auto-extend by 180 days.
    pub auto_extend: bool,
    /// Security group id → role template ids.
    pub assignments: BTreeMap<String, BTreeSet<String>>,
    /// Adopt this relationship id instead of creating one.
    pub adopt_id: Option<String>,
    /// What to do on delete.
    pub deletion: DeletionPolicy,
    /// Whether writes are allowed.
    pub management: ManagementPolicy,
    /// Successor renewal, with the lead time in days.
    pub successor_before_days: Option<u32>,
}

/// Resolves the spec, or explains (field: message) why it cannot be.
pub fn resolve(object: &GdapRelationship, name: &str, uid: &str) -> Result<Desired, String> {
    let problems = validate::relationship_problems(object);
    if let Some(p) = problems.first() {
        return Err(format!("{}: {}", p.field, p.message));
    }
    let spec = &object.spec;
    let catalog = RoleCatalog::builtin();
    let ids = |roles: &[String]| -> BTreeSet<String> {
        roles
            .iter()
            .filter_map(|r| catalog.resolve(r).ok())
            .map(|r| r.id.clone())
            .collect()
    };
    let duration_days = spec
        .duration
        .parse()
        .map_err(|e| format!("spec.duration: {e}"))?
        .days();
    let successor_before_days = match &spec.renewal {
        Some(r) if r.policy == RenewalPolicy::Successor => Some(
            r.before
                .as_ref()
                .map(|b| b.parse().map(|d| d.days()))
                .transpose()
                .map_err(|e| format!("spec.renewal.before: {e}"))?
                .unwrap_or(30),
        ),
        _ => None,
    };
    Ok(Desired {
        display_name: naming::display_name(spec.display_name.as_deref(), name, uid),
        customer: spec.customer.tenant_id.0.to_ascii_lowercase(),
        role_ids: ids(&spec.roles),
        duration_days,
        auto_extend: spec.auto_extend,
        assignments: spec
            .access_assignments
            .iter()
            .map(|a| (a.security_group_id.0.to_ascii_lowercase(), ids(&a.roles)))
            .collect(),
        adopt_id: spec.relationship_id.clone(),
        deletion: spec.deletion_policy,
        management: spec.management_policy,
        successor_before_days,
    })
}
