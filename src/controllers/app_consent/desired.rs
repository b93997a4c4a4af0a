//! What the object asks for, resolved once, up front: the customer, the application, the
//! grants resolved to resource appIds (by the same rules `gdap-operator validate` runs,
//! `api::consent_rules`), the policies, and — from the grants — everything the consent must hold
//! ([`Wanted`]: the delegated scopes per resource, the scopes the tenant may hold, the Partner
//! Center consent bodies, the resources whose service principals must exist). `plan` and
//! `status` read the [`Intent`] and derive nothing from the spec themselves. The policies, the
//! customer and the application always resolve (the schema guarantees them), so deletion works
//! even when the grants no longer do.

use crate::api::consent_rules::{
    self, MICROSOFT_GRAPH_APP_ID, OPERATOR_GRAPH_SCOPES, ResolvedGrant,
};
use crate::api::rules::FieldProblem;
use crate::api::{AppConsent, DeletionPolicy, ManagementPolicy, ReconsentPolicy};
use crate::microsoft::models::partner_center::{ApplicationConsent, ApplicationGrant};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

/// What the object's spec asks for, as written ([`Asked::resolve`] works out the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// Customer tenant id (lower case).
    pub customer: String,
    /// The partner application's (client) id (lower case).
    pub application_id: String,
    /// Display name sent with the consent.
    pub display_name: Option<String>,
    /// The GdapRelationship object named by `spec.relationshipRef`.
    pub relationship_ref: Option<String>,
    /// Create missing resource service principals.
    pub create_missing_service_principals: bool,
    /// What to do about a revoked consent.
    pub reconsent: ReconsentPolicy,
    /// What to do on delete.
    pub deletion: DeletionPolicy,
    /// Whether writes are allowed.
    pub management: ManagementPolicy,
    /// The grants, or the first problem that keeps them from resolving.
    pub grants: Result<Vec<ResolvedGrant>, FieldProblem>,
}

impl Asked {
    /// Deletion leaves Microsoft's side alone (`deletionPolicy: Orphan` or `managementPolicy:
    /// Observe`).
    pub fn orphans_on_delete(&self) -> bool {
        self.deletion == DeletionPolicy::Orphan || self.management == ManagementPolicy::Observe
    }

    /// The operator writes (`managementPolicy: Manage`).
    pub fn manages(&self) -> bool {
        self.management == ManagementPolicy::Manage
    }

    /// Works out what the consent must hold, once.
    pub fn resolve(self) -> Intent {
        let wanted = match &self.grants {
            Ok(grants) => Ok(wanted(&self, grants)),
            Err(problem) => Err(problem.clone()),
        };
        Intent {
            asked: self,
            wanted,
        }
    }
}

/// Everything the object asks for, resolved: the spec's fields (read through `Deref`) and, when
/// its grants resolve, what the consent must hold. Built only by [`Asked::resolve`], so the two
/// always agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The spec's fields.
    pub asked: Asked,
    /// What the consent must hold, or the first problem that keeps the grants from resolving.
    pub wanted: Result<Wanted, FieldProblem>,
}

impl Deref for Intent {
    type Target = Asked;

    fn deref(&self) -> &Asked {
        &self.asked
    }
}

/// What the consent must hold in the customer tenant, worked out from the resolved grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The grants, in spec order.
    pub grants: Vec<ResolvedGrant>,
    /// The resources (appIds) whose service principals must exist: the grants', with Microsoft
    /// Graph first when the operator manages the consent.
    pub principals: Vec<String>,
    /// Every resource with delegated scopes to hold, and those scopes (see [`delegated`]).
    pub delegated: Vec<(String, Vec<String>)>,
    /// The delegated scopes the tenant may hold per resource (lower case): the spec's, and on
    /// Microsoft Graph the operator's own (never counted as excess, also under
    /// `managementPolicy: Observe`).
    pub allowed_scopes: BTreeMap<String, BTreeSet<String>>,
    /// The Partner Center consent that gives every resource its delegated scopes.
    pub consent: ApplicationConsent,
    /// The first consent: Microsoft Graph's delegated scopes only (every tenant has its service
    /// principal, so a missing one of another resource cannot fail it).
    pub first_consent: ApplicationConsent,
}

fn wanted(asked: &Asked, grants: &[ResolvedGrant]) -> Wanted {
    let mut principals: Vec<String> = grants.iter().map(|g| g.resource_app_id.clone()).collect();
    if asked.manages() && !principals.iter().any(|a| a == MICROSOFT_GRAPH_APP_ID) {
        principals.insert(0, MICROSOFT_GRAPH_APP_ID.to_string());
    }
    let delegated = delegated(asked, grants);
    let mut allowed_scopes: BTreeMap<String, BTreeSet<String>> = delegated
        .iter()
        .map(|(resource, scopes)| {
            let scopes = scopes.iter().map(|s| s.to_ascii_lowercase()).collect();
            (resource.clone(), scopes)
        })
        .collect();
    allowed_scopes
        .entry(MICROSOFT_GRAPH_APP_ID.to_string())
        .or_default()
        .extend(OPERATOR_GRAPH_SCOPES.iter().map(|s| s.to_ascii_lowercase()));
    let graph: Vec<(String, Vec<String>)> = delegated
        .iter()
        .filter(|(resource, _)| resource == MICROSOFT_GRAPH_APP_ID)
        .cloned()
        .collect();
    Wanted {
        grants: grants.to_vec(),
        principals,
        consent: consent_body(asked, &delegated),
        first_consent: consent_body(asked, &graph),
        allowed_scopes,
        delegated,
    }
}

/// Resolves the object's spec.
pub fn resolve(object: &AppConsent) -> Intent {
    let spec = &object.spec;
    Asked {
        customer: spec.customer.tenant_id.0.to_ascii_lowercase(),
        application_id: spec.application_id.0.to_ascii_lowercase(),
        display_name: spec.display_name.clone(),
        relationship_ref: spec.relationship_ref.as_ref().map(|r| r.name.clone()),
        create_missing_service_principals: spec.create_missing_service_principals,
        reconsent: spec.reconsent,
        deletion: spec.deletion_policy,
        management: spec.management_policy,
        grants: consent_rules::resolve_grants(spec),
    }
    .resolve()
}

/// The delegated scopes a resource must hold in the customer tenant: the spec's, plus — for
/// Microsoft Graph, when the operator manages the consent — the scopes its own work there needs
/// (`consent_rules::OPERATOR_GRAPH_SCOPES`). Empty when nothing delegated is wanted.
fn required_scopes(intent: &Asked, grant: Option<&ResolvedGrant>, resource: &str) -> Vec<String> {
    let mut scopes: Vec<String> = grant.map(|g| g.scopes.clone()).unwrap_or_default();
    if resource == MICROSOFT_GRAPH_APP_ID && intent.manages() {
        for s in OPERATOR_GRAPH_SCOPES {
            if !scopes.iter().any(|have| have.eq_ignore_ascii_case(s)) {
                scopes.push(s.to_string());
            }
        }
    }
    scopes
}

/// Every resource with delegated scopes to hold, and those scopes: the grants' in spec order,
/// with Microsoft Graph first when the operator adds its own scopes.
fn delegated(intent: &Asked, grants: &[ResolvedGrant]) -> Vec<(String, Vec<String>)> {
    let graph = grants
        .iter()
        .find(|g| g.resource_app_id == MICROSOFT_GRAPH_APP_ID);
    let mut out = Vec::new();
    let graph_scopes = required_scopes(intent, graph, MICROSOFT_GRAPH_APP_ID);
    if !graph_scopes.is_empty() {
        out.push((MICROSOFT_GRAPH_APP_ID.to_string(), graph_scopes));
    }
    for g in grants
        .iter()
        .filter(|g| g.resource_app_id != MICROSOFT_GRAPH_APP_ID && !g.scopes.is_empty())
    {
        out.push((g.resource_app_id.clone(), g.scopes.clone()));
    }
    out
}

/// The Partner Center consent body for `resources` (appId and scopes).
fn consent_body(intent: &Asked, resources: &[(String, Vec<String>)]) -> ApplicationConsent {
    ApplicationConsent {
        application_id: intent.application_id.clone(),
        display_name: intent.display_name.clone(),
        application_grants: resources
            .iter()
            .map(|(resource, scopes)| ApplicationGrant::new(resource, scopes))
            .collect(),
    }
}
