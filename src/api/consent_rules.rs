//! Domain rules of application consents, shared by `gdap-operator validate` and the AppConsent
//! controller so the two always agree: which GDAP roles may consent an application, which may
//! grant a resource's application permissions, the Microsoft Graph scopes the operator's own work
//! in the customer tenant needs, and how a spec's grants resolve (resource names to appIds, each
//! resource once).

use super::app_consent::{AppConsentSpec, WELL_KNOWN_RESOURCES, resolve_resource};
use super::field_problem::FieldProblem;
use super::roles::{
    APPLICATION_ADMINISTRATOR_ID, CLOUD_APPLICATION_ADMINISTRATOR_ID, GLOBAL_ADMINISTRATOR_ID,
};

/// Microsoft Graph's appId (its service principal exists in every tenant).
pub const MICROSOFT_GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Azure AD Graph's (Windows Azure Active Directory) appId.
pub const AZURE_AD_GRAPH_APP_ID: &str = "00000002-0000-0000-c000-000000000000";
/// Template id of Privileged Role Administrator (may grant any application permission).
pub const PRIVILEGED_ROLE_ADMINISTRATOR_ID: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

/// GDAP roles with which a partner user may consent an application through Partner Center
/// (Microsoft's CPV/GDAP guidance): Global Administrator, Application Administrator, Cloud
/// Application Administrator.
pub const CONSENT_CAPABLE_ROLE_IDS: [&str; 3] = [
    GLOBAL_ADMINISTRATOR_ID,
    APPLICATION_ADMINISTRATOR_ID,
    CLOUD_APPLICATION_ADMINISTRATOR_ID,
];

/// Delegated Microsoft Graph permissions the operator itself uses in the customer tenant, through
/// the partner's GDAP user: reading and creating service principals, and granting and removing
/// application permissions. They are consented with the spec's Microsoft Graph scopes, because
/// Entra builds a delegated token's scopes from what the customer consented; the partner app's
/// registration must declare them.
pub const OPERATOR_GRAPH_SCOPES: [&str; 2] = [
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
];

/// The GDAP roles that may grant (or remove) application permissions of `resource_app_id`:
/// Microsoft Graph and Azure AD Graph app roles need Global Administrator or Privileged Role
/// Administrator; Application and Cloud Application Administrators may grant any other
/// resource's (Entra's "grant tenant-wide admin consent" rules).
pub fn roles_granting_app_roles(resource_app_id: &str) -> &'static [&'static str] {
    if is_graph(resource_app_id) {
        &[GLOBAL_ADMINISTRATOR_ID, PRIVILEGED_ROLE_ADMINISTRATOR_ID]
    } else {
        &[
            GLOBAL_ADMINISTRATOR_ID,
            PRIVILEGED_ROLE_ADMINISTRATOR_ID,
            APPLICATION_ADMINISTRATOR_ID,
            CLOUD_APPLICATION_ADMINISTRATOR_ID,
        ]
    }
}

fn is_graph(app_id: &str) -> bool {
    app_id.eq_ignore_ascii_case(MICROSOFT_GRAPH_APP_ID)
        || app_id.eq_ignore_ascii_case(AZURE_AD_GRAPH_APP_ID)
}

/// The well-known name of a resource appId, for messages ("Office 365 Management APIs").
pub fn resource_name(app_id: &str) -> Option<&'static str> {
    WELL_KNOWN_RESOURCES
        .iter()
        .find(|(_, id)| id.eq_ignore_ascii_case(app_id))
        .map(|(name, _)| *name)
}

/// A resource's name for people: the well-known name with the appId, or the appId.
pub fn describe_resource(app_id: &str) -> String {
    match resource_name(app_id) {
        Some(name) => format!("{name} ({app_id})"),
        None => app_id.to_string(),
    }
}

/// One grant of the spec, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedGrant {
    /// Its index in `spec.grants` (for field paths in messages).
    pub index: usize,
    /// The resource's appId, lower case.
    pub resource_app_id: String,
    /// Delegated permissions, each once (case-insensitively), in spec order.
    pub scopes: Vec<String>,
    /// Application permissions, each once (case-insensitively), in spec order.
    pub app_roles: Vec<String>,
}

/// Resolves the spec's grants: every resource to its appId, each resource once — also across
/// spellings ("Microsoft Graph" and its appId are the same resource).
pub fn resolve_grants(spec: &AppConsentSpec) -> Result<Vec<ResolvedGrant>, FieldProblem> {
    let mut resolved: Vec<ResolvedGrant> = Vec::new();
    for (index, grant) in spec.grants.iter().enumerate() {
        let field = format!("spec.grants[{index}].resource");
        let Some(app_id) = resolve_resource(&grant.resource) else {
            let names: Vec<_> = WELL_KNOWN_RESOURCES.iter().map(|(n, _)| *n).collect();
            return Err(FieldProblem::new(
                field,
                format!(
                    "{:?} is neither an appId GUID nor a well-known resource ({})",
                    grant.resource,
                    names.join(", ")
                ),
            ));
        };
        if let Some(first) = resolved.iter().find(|g| g.resource_app_id == app_id) {
            return Err(FieldProblem::new(
                field,
                format!(
                    "{:?} is {}, which spec.grants[{}] names already; list each resource once",
                    grant.resource,
                    describe_resource(&app_id),
                    first.index
                ),
            ));
        }
        resolved.push(ResolvedGrant {
            index,
            resource_app_id: app_id,
            scopes: unique(&grant.scopes),
            app_roles: unique(&grant.app_roles),
        });
    }
    Ok(resolved)
}

/// The problems `validate` reports for a spec's grants (empty when they resolve).
pub fn grant_problems(spec: &AppConsentSpec) -> Vec<FieldProblem> {
    resolve_grants(spec).err().into_iter().collect()
}

fn unique(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            out.push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::GrantSpec;

    fn spec(grants: &[(&str, &[&str], &[&str])]) -> AppConsentSpec {
        let grants = grants
            .iter()
            .map(|(resource, scopes, roles)| GrantSpec {
                resource: resource.to_string(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                app_roles: roles.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "customer": {"tenantId": "11111111-2222-3333-4444-555555555555"},
            "applicationId": "57667d41-992a-49b0-99d8-ddf68328373f",
            "grants": [],
        }))
        .map(|mut s: AppConsentSpec| {
            s.grants = grants;
            s
        })
        .unwrap()
    }

    #[test]
    fn names_and_app_ids_resolve_and_duplicates_collapse() {
        let s = spec(&[
            (
                "microsoft graph",
                &["User.Read", "user.read"],
                &["User.Read.All"],
            ),
            (
                "c5393580-F805-4401-95E8-94B7A6EF2FC2",
                &[],
                &["ActivityFeed.Read"],
            ),
        ]);
        let grants = resolve_grants(&s).unwrap();
        assert_eq!(grants[0].resource_app_id, MICROSOFT_GRAPH_APP_ID);
        assert_eq!(grants[0].scopes, ["User.Read"]);
        assert_eq!(
            grants[1].resource_app_id,
            "c5393580-f805-4401-95e8-94b7a6ef2fc2"
        );
    }

    #[test]
    fn the_same_resource_under_two_spellings_is_refused_with_the_field() {
        let s = spec(&[
            ("Microsoft Graph", &["User.Read"], &[]),
            (MICROSOFT_GRAPH_APP_ID, &[], &["User.Read.All"]),
        ]);
        let problem = resolve_grants(&s).unwrap_err();
        assert_eq!(problem.field, "spec.grants[1].resource");
        assert!(
            problem.message.contains("spec.grants[0] names already"),
            "{problem}"
        );
        let unknown = spec(&[("Graph", &["User.Read"], &[])]);
        assert_eq!(grant_problems(&unknown)[0].field, "spec.grants[0].resource");
    }

    #[test]
    fn graph_app_roles_need_a_privileged_role_and_others_an_application_admin_too() {
        assert!(
            !roles_granting_app_roles(MICROSOFT_GRAPH_APP_ID)
                .contains(&APPLICATION_ADMINISTRATOR_ID)
        );
        assert!(
            roles_granting_app_roles(MICROSOFT_GRAPH_APP_ID)
                .contains(&PRIVILEGED_ROLE_ADMINISTRATOR_ID)
        );
        assert!(
            roles_granting_app_roles("c5393580-f805-4401-95e8-94b7a6ef2fc2")
                .contains(&CLOUD_APPLICATION_ADMINISTRATOR_ID)
        );
    }
}
