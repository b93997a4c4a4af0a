//! What the object asks for, resolved through the role catalog: role template ids instead of
//! names, days instead of `P<n>D`, the display name filled in. Spec problems the API server
//! cannot catch (unknown roles, the same role twice) are reported with the field, by the same
//! rules `gdap-operator validate` runs (`api::rules`).
//!
//! The policies, the customer and the display name always resolve (the schema guarantees them),
//! so deletion works even when the roles no longer do.

use crate::api::naming;
use crate::api::rules::{self, FieldProblem};
use crate::api::{DeletionPolicy, GdapRelationship, ManagementPolicy, RenewalPolicy, RoleCatalog};
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet};

/// Everything the object asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// Display name in Microsoft (the idempotency key).
    pub display_name: String,
    /// The display name is the default, `<name>-<first 8 of uid>`: only this object can have
    /// made a relationship by that name, so its name proves it is the object's own and no create
    /// intent needs recording first (`spec.displayName` could be anybody's).
    pub name_from_uid: bool,
    /// Customer tenant id (lower case).
    pub customer: String,
    /// Adopt this relationship id instead of creating one.
    pub adopt_id: Option<String>,
    /// What to do on delete.
    pub deletion: DeletionPolicy,
    /// Whether writes are allowed.
    pub management: ManagementPolicy,
    /// The relationship's content, or the first problem that keeps it from resolving.
    pub spec: Result<Desired, FieldProblem>,
}

impl Intent {
    /// Deletion leaves Microsoft's side alone (`deletionPolicy: Orphan` or `managementPolicy:
    /// Observe`).
    pub fn orphans_on_delete(&self) -> bool {
        self.deletion == DeletionPolicy::Orphan || self.management == ManagementPolicy::Observe
    }
}

/// The resolved content of one relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Role template ids (lower case).
    pub role_ids: BTreeSet<String>,
    /// Duration in days.
    pub duration_days: u32,
    /// Auto-extend by 180 days.
    pub auto_extend: bool,
    /// Security group id → role template ids.
    pub assignments: BTreeMap<String, BTreeSet<String>>,
    /// Renewal by successor (`spec.renewal.policy: Successor`).
    pub renewal: Option<Renewal>,
}

/// How successors are requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// Request a successor this many days before the end (when the relationship cannot
    /// auto-extend).
    pub before_days: u32,
    /// Keep the predecessor after the hand-over.
    pub keep_predecessor: bool,
}

/// Resolves the object's spec.
pub fn resolve(object: &GdapRelationship) -> Intent {
    let spec = &object.spec;
    let uid = object.uid().unwrap_or_default();
    let named = spec.display_name.as_deref().is_some_and(|n| !n.is_empty());
    Intent {
        display_name: naming::display_name(spec.display_name.as_deref(), &object.name_any(), &uid),
        name_from_uid: !named && !uid.is_empty(),
        customer: spec.customer.tenant_id.0.to_ascii_lowercase(),
        adopt_id: spec.relationship_id.clone(),
        deletion: spec.deletion_policy,
        management: spec.management_policy,
        spec: content(object),
    }
}

fn content(object: &GdapRelationship) -> Result<Desired, FieldProblem> {
    if let Some(problem) = rules::relationship_problems(object).into_iter().next() {
        return Err(problem);
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
        .map_err(|e| FieldProblem::new("spec.duration", e.to_string()))?
        .days();
    let renewal = match &spec.renewal {
        Some(r) if r.policy == RenewalPolicy::Successor => Some(Renewal {
            before_days: r
                .before
                .as_ref()
                .map(|b| b.parse().map(|d| d.days()))
                .transpose()
                .map_err(|e| FieldProblem::new("spec.renewal.before", e.to_string()))?
                .unwrap_or(30),
            keep_predecessor: r.keep_predecessor,
        }),
        _ => None,
    };
    Ok(Desired {
        role_ids: ids(&spec.roles),
        duration_days,
        auto_extend: spec.auto_extend,
        assignments: spec
            .access_assignments
            .iter()
            .map(|a| (a.security_group_id.0.to_ascii_lowercase(), ids(&a.roles)))
            .collect(),
        renewal,
    })
}
