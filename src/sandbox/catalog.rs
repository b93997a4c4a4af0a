//! First-party applications the sandbox knows: names, and for Microsoft Graph its app roles
//! (application permissions) and OAuth2 permission scopes (delegated permissions) with ids; for
//! Office 365 Management APIs its app roles.
//!
//! Contract: ids marked "real" below are Microsoft's published ids; the others are derived
//! deterministically (UUID v5 of the permission name) because no verified id was at hand. Either
//! way a name always maps to the same id and back, which is what clients need to turn permission
//! names into `appRoleId`s.

use super::defaults::apps;
use serde_json::{Value, json};

/// (name, id) of Microsoft Graph application permissions.
const GRAPH_APP_ROLES: &[(&str, &str)] = &[
    ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214"), // real
    ("User.ReadWrite.All", "741f803b-c850-494e-b5df-cde7c675a1ca"), // real
    ("Directory.Read.All", "7ab1d382-f21e-4acd-a863-ba3e13f7da61"), // real
    (
        "Directory.ReadWrite.All",
        "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
    ), // real
    (
        "Organization.Read.All",
        "498476ce-e0fe-48b0-b801-37ba7e2685c6",
    ), // real
    (
        "Application.Read.All",
        "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    ), // real
    ("AuditLog.Read.All", "b0afded3-3588-46d8-8b3d-9842eff778da"), // real
    ("LicenseAssignment.Read.All", ""),
    ("Group.Read.All", "5b567255-7703-4780-807c-7be8301ae99b"), // real
    ("DelegatedAdminRelationship.Read.All", ""),
    ("DelegatedAdminRelationship.ReadWrite.All", ""),
    ("Application.ReadWrite.All", ""),
    ("AppRoleAssignment.ReadWrite.All", ""),
    ("Group.ReadWrite.All", ""),
    ("Mail.Read", ""),
    ("Policy.Read.All", ""),
    ("Reports.Read.All", ""),
    ("RoleManagement.Read.Directory", ""),
    ("Sites.Read.All", ""),
];

/// (name, id) of Office 365 Management APIs application permissions.
const O365_MANAGEMENT_APP_ROLES: &[(&str, &str)] = &[
    ("ActivityFeed.Read", ""),
    ("ActivityFeed.ReadDlp", ""),
    ("ServiceHealth.Read", ""),
];

/// The app roles of a resource and the namespace of their derived ids.
fn app_role_table(
    resource_app_id: &str,
) -> Option<(&'static [(&'static str, &'static str)], &'static str)> {
    match resource_app_id {
        apps::MICROSOFT_GRAPH => Some((GRAPH_APP_ROLES, "graph")),
        apps::OFFICE365_MANAGEMENT => Some((O365_MANAGEMENT_APP_ROLES, "o365mgmt")),
        _ => None,
    }
}

/// (name, id) of Microsoft Graph delegated permissions.
const GRAPH_SCOPES: &[(&str, &str)] = &[
    ("User.Read", "e1fe6dd8-ba31-4d61-89e7-88639da4683d"), // real
    ("User.Read.All", "a154be20-db9c-4678-8ab7-66f6cc099a59"), // real
    ("Directory.Read.All", "06da0dbc-49e2-44d2-8312-53f166ab848a"), // real
    (
        "Directory.AccessAsUser.All",
        "0e263e50-5827-48a4-b97c-d940288653c7",
    ), // real
    (
        "DelegatedAdminRelationship.ReadWrite.All",
        "885f682f-a990-4bad-a642-36736a74b0c7",
    ), // real
    ("DelegatedAdminRelationship.Read.All", ""),
    ("Application.ReadWrite.All", ""),
    ("AppRoleAssignment.ReadWrite.All", ""),
    ("DelegatedPermissionGrant.ReadWrite.All", ""),
    ("LicenseAssignment.Read.All", ""),
    ("User.ReadBasic.All", ""),
    ("User.ReadWrite.All", ""),
    ("Directory.ReadWrite.All", ""),
    ("Group.Read.All", ""),
    ("Organization.Read.All", ""),
    ("AuditLog.Read.All", ""),
    ("Reports.Read.All", ""),
    ("Policy.Read.All", ""),
    ("Mail.Read", ""),
    ("Sites.Read.All", ""),
    ("Files.Read.All", ""),
    ("offline_access", ""),
    ("openid", ""),
    ("profile", ""),
    ("email", ""),
];

fn id_of(table: &[(&str, &str)], kind: &str, name: &str) -> Option<String> {
    id_in(table, "graph", kind, name)
}

fn id_in(table: &[(&str, &str)], namespace: &str, kind: &str, name: &str) -> Option<String> {
    let (n, id) = table.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    Some(if id.is_empty() {
        super::ids::derived_id(&format!("{namespace}/{kind}/{n}"))
    } else {
        id.to_string()
    })
}

/// Display name of a well-known first-party app.
pub fn first_party_name(app_id: &str) -> Option<&'static str> {
    Some(match app_id {
        apps::MICROSOFT_GRAPH => "Microsoft Graph",
        apps::AZURE_AD_GRAPH => "Windows Azure Active Directory",
        apps::OFFICE365_MANAGEMENT => "Office 365 Management APIs",
        apps::PARTNER_CENTER => "Microsoft Partner Center",
        apps::PARTNER_CUSTOMER_DELEGATED_ADMIN => "Partner Customer Delegated Administration",
        apps::EXCHANGE_ONLINE => "Office 365 Exchange Online",
        _ => return None,
    })
}

/// Id of an application permission of a resource app.
pub fn app_role_id(resource_app_id: &str, name: &str) -> Option<String> {
    let (table, namespace) = app_role_table(resource_app_id)?;
    id_in(table, namespace, "role", name)
}

/// Name of an application permission by id.
pub fn app_role_name(resource_app_id: &str, id: &str) -> Option<&'static str> {
    let (table, namespace) = app_role_table(resource_app_id)?;
    table
        .iter()
        .map(|(n, _)| *n)
        .find(|n| id_in(table, namespace, "role", n).as_deref() == Some(id))
}

/// Whether `name` is a delegated permission of the resource (unknown resources accept anything).
pub fn is_scope(resource_app_id: &str, name: &str) -> bool {
    resource_app_id != apps::MICROSOFT_GRAPH || id_of(GRAPH_SCOPES, "scope", name).is_some()
}

/// `appRoles` of a resource app as Graph serialises them.
pub fn app_roles_json(app_id: &str) -> Value {
    let Some((table, namespace)) = app_role_table(app_id) else {
        return json!([]);
    };
    Value::Array(
        table
            .iter()
            .map(|(n, _)| {
                json!({
                    "allowedMemberTypes": ["Application"], "description": format!("Allows the app to {n} without a signed-in user."),
                    "displayName": n, "id": id_in(table, namespace, "role", n), "isEnabled": true, "origin": "Application", "value": n
                })
            })
            .collect(),
    )
}

/// `oauth2PermissionScopes` of a resource app as Graph serialises them.
pub fn scopes_json(app_id: &str) -> Value {
    let list: Vec<Value> = match app_id {
        apps::MICROSOFT_GRAPH => GRAPH_SCOPES
            .iter()
            .map(|(n, _)| {
                json!({"adminConsentDescription": format!("Allows the app to {n} on behalf of the signed-in user."),
                       "adminConsentDisplayName": n, "id": id_of(GRAPH_SCOPES, "scope", n), "isEnabled": true,
                       "type": "Admin", "value": n})
            })
            .collect(),
        apps::PARTNER_CENTER => vec![json!({"adminConsentDisplayName": "Access Partner Center", "id": super::ids::derived_id("pc/user_impersonation"),
                                            "isEnabled": true, "type": "User", "value": "user_impersonation"})],
        _ => vec![],
    };
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_round_trip() {
        let id = app_role_id(apps::MICROSOFT_GRAPH, "user.read.all").unwrap();
        assert_eq!(id, "df021288-bdef-4463-88db-98f22de89214");
        assert_eq!(
            app_role_name(apps::MICROSOFT_GRAPH, &id),
            Some("User.Read.All")
        );
        let derived = app_role_id(apps::MICROSOFT_GRAPH, "LicenseAssignment.Read.All").unwrap();
        assert_eq!(
            app_role_name(apps::MICROSOFT_GRAPH, &derived),
            Some("LicenseAssignment.Read.All")
        );
        assert!(app_role_id(apps::MICROSOFT_GRAPH, "Nope.All").is_none());
    }
}
