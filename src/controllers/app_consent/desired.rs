//! What the object asks for: the customer, the application, the grants resolved to resource
//! appIds (by the same rules `gdap-operator validate` runs, `api::consent_rules`), and the
//! policies. The policies, the customer and the application always resolve (the schema
//! guarantees them), so deletion works even when the grants no longer do.

use crate::api::consent_rules::{
    self, MICROSOFT_GRAPH_APP_ID, OPERATOR_GRAPH_SCOPES, ResolvedGrant,
};
use crate::api::rules::FieldProblem;
use crate::api::{AppConsent, DeletionPolicy, ManagementPolicy, ReconsentPolicy};
use crate::microsoft::models::partner_center::{ApplicationConsent, ApplicationGrant};

/// Everything the object asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
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

impl Intent {
    /// Deletion leaves Microsoft's side alone (`deletionPolicy: Orphan` or `managementPolicy:
    /// Observe`).
    pub fn orphans_on_delete(&self) -> bool {
        self.deletion == DeletionPolicy::Orphan || self.management == ManagementPolicy::Observe
    }

    /// The operator writes (`managementPolicy: Manage`).
    pub fn manages(&self) -> bool {
        self.management == ManagementPolicy::Manage
    }
}

/// Resolves the object's spec.
pub fn resolve(object: &AppConsent) -> Intent {
    let spec = &object.spec;
    Intent {
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
}

/// The delegated scopes a resource must hold in the customer tenant: the spec's, plus — for
/// Microsoft Graph, when the operator manages the consent — the scopes its own work there needs
/// (`consent_rules::OPERATOR_GRAPH_SCOPES`). Empty when nothing delegated is wanted.
pub fn required_scopes(
    intent: &Intent,
    grant: Option<&ResolvedGrant>,
    resource: &str,
) -> Vec<String> {
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
pub fn delegated(intent: &Intent, grants: &[ResolvedGrant]) -> Vec<(String, Vec<String>)> {
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
pub fn consent_body(intent: &Intent, resources: &[(String, Vec<String>)]) -> ApplicationConsent {
    ApplicationConsent {
        application_id: intent.application_id.clone(),
        display_name: intent.display_name.clone(),
        application_grants: resources
            .iter()
            .map(|(resource, scopes)| ApplicationGrant::new(resource, scopes))
            .collect(),
    }
}
