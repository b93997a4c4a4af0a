//! Graph directory applications of customer tenants: `/servicePrincipals` (GET with `$filter`,
//! POST, DELETE), `…/appRoleAssignedTo` and `…/appRoleAssignments` (application permissions), and
//! `/oauth2PermissionGrants` (delegated permissions).
//!
//! Contract: permission checks are `directory::authorize` (reads: `Access::ReadApps`; service
//! principals and delegated grants: `Access::WriteApps`; app roles: `Access::WriteAppRoles` for
//! Microsoft Graph / Azure AD Graph, `Access::WriteOtherAppRoles` for other resources).
//! The Microsoft Graph service principal carries `appRoles` and `oauth2PermissionScopes` from
//! `catalog.rs`. Duplicates: service principal → `409`, app role assignment → `400`, grant → `409`.

use super::auth::Denied;
use super::catalog;
use super::consistency::Family;
use super::context::Shared;
use super::directory::{
    Access, app_role_access, authorize, authorize_for, collection, denied, request_error,
    resource_missing,
};
use super::http::body_object;
use super::http::{Base, Ctx, graph_error, json_response};
use super::ids::derived_id;
use super::odata::Query;
use super::state::{AppRoleAssignment, PermissionGrant, ServicePrincipal, Tenant};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::{Value, json};
use std::sync::Arc;

/// Tenant id Microsoft's first-party apps are registered in.
const MICROSOFT_SERVICES_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";

/// Routes of service principals, app role assignments and permission grants.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1.0/servicePrincipals", get(list_sps).post(create_sp))
        .route(
            "/v1.0/servicePrincipals/{id}",
            get(read_sp).delete(delete_sp),
        )
        .route(
            "/v1.0/servicePrincipals/{id}/appRoleAssignedTo",
            get(list_assigned_to).post(assign_role),
        )
        .route(
            "/v1.0/servicePrincipals/{id}/appRoleAssignedTo/{aid}",
            delete(unassign_role),
        )
        .route(
            "/v1.0/servicePrincipals/{id}/appRoleAssignments",
            get(list_assignments),
        )
        .route(
            "/v1.0/oauth2PermissionGrants",
            get(list_grants).post(create_grant),
        )
        .route("/v1.0/oauth2PermissionGrants/{id}", delete(delete_grant))
}

fn sp_json(
    tenant: &Tenant,
    sp: &ServicePrincipal,
    partner_tenant: &str,
    is_partner_app: bool,
) -> Value {
    json!({
        "id": sp.id, "appId": sp.app_id, "displayName": sp.display_name, "appDisplayName": sp.display_name,
        "servicePrincipalType": "Application", "accountEnabled": true,
        "appOwnerOrganizationId": if is_partner_app { partner_tenant } else { MICROSOFT_SERVICES_TENANT },
        "servicePrincipalNames": [sp.app_id],
        "appRoles": catalog::app_roles_json(&sp.app_id),
        "oauth2PermissionScopes": catalog::scopes_json(&sp.app_id),
        "createdDateTime": super::gdap_model::ts(sp.created),
        "tags": [format!("sandboxTenant:{}", tenant.id)],
    })
}

async fn list_sps(
    State(shared): Ctx,
    Base(base): Base,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::ReadApps)?;
    let now = shared.now();
    let world = shared.world();
    let tenant = &world.tenants[&tid];
    let items = tenant
        .visible_principals(now)
        .into_iter()
        .map(|sp| {
            sp_json(
                tenant,
                sp,
                &world.partner.tenant_id,
                world.apps.contains_key(&sp.app_id),
            )
        })
        .collect();
    Ok(json_response(
        200,
        collection(
            &base,
            "servicePrincipals",
            items,
            &Query::parse(q.as_deref()),
        )?,
        None,
    ))
}

async fn read_sp(
    State(shared): Ctx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::ReadApps)?;
    let now = shared.now();
    let world = shared.world();
    let tenant = &world.tenants[&tid];
    let sp = tenant
        .visible_principal_by_id(&id, now)
        .ok_or_else(|| resource_missing(&id))?;
    let body = sp_json(
        tenant,
        sp,
        &world.partner.tenant_id,
        world.apps.contains_key(&sp.app_id),
    );
    let body = match (Query::parse(q.as_deref()).select(), body) {
        (Some(s), Value::Object(m)) => Value::Object(super::odata::project(m, Some(&s))),
        (_, b) => b,
    };
    Ok(json_response(200, body, None))
}

async fn create_sp(
    State(shared): Ctx,
    Base(base): Base,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::WriteApps)?;
    let body = body_object(&body)?;
    let app_id = body
        .get("appId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut world = shared.world();
    let known = world.apps.contains_key(&app_id) || catalog::first_party_name(&app_id).is_some();
    if !known {
        return Err(request_error(&format!("The appId '{app_id}' of the service principal does not reference a valid application object.")).into());
    }
    let name = world.app_display_name(&app_id);
    let partner = world.partner.tenant_id.clone();
    let is_partner_app = world.apps.contains_key(&app_id);
    let now = shared.now();
    let visible = world.visible_after(Family::ServicePrincipals, now);
    let tenant = world.tenants.get_mut(&tid).ok_or_else(denied)?;
    if tenant.service_principal(&app_id).is_some() {
        return Err(graph_error(409, "Request_MultipleObjectsWithSameKeyValue", &format!("The service principal cannot be created because the service principal name {app_id} is already in use.")).into());
    }
    let id = tenant.ensure_service_principal(&app_id, &name, now);
    tenant.principals_lag.record(&id, None, now, visible);
    let sp = tenant
        .service_principal_by_id(&id)
        .cloned()
        .ok_or_else(denied)?;
    let mut json = sp_json(tenant, &sp, &partner, is_partner_app);
    json["@odata.context"] = json!(format!("{base}/v1.0/$metadata#servicePrincipals/$entity"));
    Ok(json_response(
        201,
        json,
        Some(format!("{base}/v1.0/servicePrincipals/{id}")),
    ))
}

async fn delete_sp(
    State(shared): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::WriteApps)?;
    let now = shared.now();
    let mut world = shared.world();
    let sp_visible = world.visible_after(Family::ServicePrincipals, now);
    let grants_visible = world.visible_after(Family::Grants, now);
    let tenant = world.tenants.get_mut(&tid).ok_or_else(denied)?;
    let app_id = tenant
        .service_principal_by_id(&id)
        .map(|sp| sp.app_id.clone())
        .ok_or_else(|| resource_missing(&id))?;
    tenant.lag_principal_deletion(&id, now, sp_visible, grants_visible);
    tenant.delete_service_principal(&app_id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn assignment_json(tenant: &Tenant, a: &AppRoleAssignment) -> Value {
    let name = |id: &str| {
        tenant
            .service_principal_by_id(id)
            .map(|sp| sp.display_name.clone())
    };
    json!({"id": a.id, "appRoleId": a.app_role_id, "principalId": a.principal_id, "principalType": "ServicePrincipal",
           "principalDisplayName": name(&a.principal_id), "resourceId": a.resource_id, "resourceDisplayName": name(&a.resource_id),
           "createdDateTime": super::gdap_model::ts(a.created), "deletedDateTime": null})
}

async fn list_assigned_to(
    State(shared): Ctx,
    Base(base): Base,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    list_role_assignments(shared, base, id, q, headers, true).await
}

async fn list_assignments(
    State(shared): Ctx,
    Base(base): Base,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    list_role_assignments(shared, base, id, q, headers, false).await
}

async fn list_role_assignments(
    shared: Arc<Shared>,
    base: String,
    id: String,
    q: Option<String>,
    headers: HeaderMap,
    as_resource: bool,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::ReadApps)?;
    let now = shared.now();
    let world = shared.world();
    let tenant = &world.tenants[&tid];
    tenant
        .visible_principal_by_id(&id, now)
        .ok_or_else(|| resource_missing(&id))?;
    let items = tenant
        .visible_app_role_assignments(now)
        .into_iter()
        .filter(|a| {
            if as_resource {
                a.resource_id == id
            } else {
                a.principal_id == id
            }
        })
        .map(|a| assignment_json(tenant, a))
        .collect();
    let context = format!(
        "servicePrincipals('{id}')/{}",
        if as_resource {
            "appRoleAssignedTo"
        } else {
            "appRoleAssignments"
        }
    );
    Ok(json_response(
        200,
        collection(&base, &context, items, &Query::parse(q.as_deref()))?,
        None,
    ))
}

async fn assign_role(
    State(shared): Ctx,
    Base(base): Base,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Denied> {
    let tid = authorize_for(&shared, &headers, |w, t| app_role_access(w, t, &id))?;
    let body = body_object(&body)?;
    let field = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let (principal, resource, role) = (
        field("principalId"),
        field("resourceId"),
        field("appRoleId"),
    );
    let mut world = shared.world();
    let now = shared.now();
    let visible = world.visible_after(Family::Grants, now);
    let effective_at = world.consent_effective_at(now);
    let tenant = world.tenants.get_mut(&tid).ok_or_else(denied)?;
    let resource_sp = tenant
        .service_principal_by_id(&id)
        .cloned()
        .ok_or_else(|| resource_missing(&id))?;
    if !resource.is_empty() && resource != id {
        return Err(request_error(
            "resourceId must be the id of the service principal in the URL.",
        )
        .into());
    }
    tenant
        .service_principal_by_id(&principal)
        .ok_or_else(|| request_error(&format!("The principal '{principal}' was not found.")))?;
    if catalog::app_role_name(&resource_sp.app_id, &role).is_none() {
        return Err(request_error(&format!(
            "Permission (appRole) '{role}' does not exist on the resource service principal."
        ))
        .into());
    }
    if tenant
        .app_role_assignments
        .iter()
        .any(|a| a.principal_id == principal && a.resource_id == id && a.app_role_id == role)
    {
        return Err(
            request_error("Permission being assigned already exists on the object.").into(),
        );
    }
    let a = AppRoleAssignment {
        id: derived_id(&format!("{tid}/ara/{principal}/{id}/{role}/{now}")),
        principal_id: principal,
        resource_id: id.clone(),
        app_role_id: role,
        created: now,
        effective_at,
    };
    let json = assignment_json(tenant, &a);
    tenant
        .app_role_assignments_lag
        .record(&a.id, None, now, visible);
    tenant.app_role_assignments.push(a);
    let location = format!(
        "{base}/v1.0/servicePrincipals/{id}/appRoleAssignedTo/{}",
        json["id"].as_str().unwrap_or_default()
    );
    Ok(json_response(201, json, Some(location)))
}

async fn unassign_role(
    State(shared): Ctx,
    Path((id, aid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize_for(&shared, &headers, |w, t| app_role_access(w, t, &id))?;
    let now = shared.now();
    let mut world = shared.world();
    let visible = world.visible_after(Family::Grants, now);
    let tenant = world.tenants.get_mut(&tid).ok_or_else(denied)?;
    if let Some(a) = tenant
        .app_role_assignments
        .iter()
        .find(|a| a.id == aid && a.resource_id == id)
    {
        tenant
            .app_role_assignments_lag
            .record(&aid, Some(a), now, visible);
    }
    let before = tenant.app_role_assignments.len();
    tenant
        .app_role_assignments
        .retain(|a| !(a.id == aid && a.resource_id == id));
    if before == tenant.app_role_assignments.len() {
        return Err(resource_missing(&aid).into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn grant_json(g: &PermissionGrant) -> Value {
    json!({"id": g.id, "clientId": g.client_id, "consentType": "AllPrincipals", "principalId": null, "resourceId": g.resource_id, "scope": g.scope})
}

async fn list_grants(
    State(shared): Ctx,
    Base(base): Base,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::ReadApps)?;
    let now = shared.now();
    let items = shared.world().tenants[&tid]
        .visible_grants(now)
        .into_iter()
        .map(grant_json)
        .collect();
    Ok(json_response(
        200,
        collection(
            &base,
            "oauth2PermissionGrants",
            items,
            &Query::parse(q.as_deref()),
        )?,
        None,
    ))
}

async fn create_grant(
    State(shared): Ctx,
    Base(base): Base,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::WriteApps)?;
    let body = body_object(&body)?;
    let field = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (client, resource, scope) = (
        field("clientId").to_ascii_lowercase(),
        field("resourceId").to_ascii_lowercase(),
        field("scope"),
    );
    if field("consentType") != "AllPrincipals" {
        return Err(request_error("The sandbox supports consentType 'AllPrincipals' only.").into());
    }
    let now = shared.now();
    let mut world = shared.world();
    let visible = world.visible_after(Family::Grants, now);
    let effective_at = world.consent_effective_at(now);
    let tenant = world.tenants.get_mut(&tid).ok_or_else(denied)?;
    tenant.service_principal_by_id(&client).ok_or_else(|| {
        request_error(&format!(
            "The client service principal '{client}' was not found."
        ))
    })?;
    let resource_sp = tenant
        .service_principal_by_id(&resource)
        .cloned()
        .ok_or_else(|| {
            request_error(&format!(
                "The resource service principal '{resource}' was not found."
            ))
        })?;
    if let Some(bad) = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .find(|s| !catalog::is_scope(&resource_sp.app_id, s))
    {
        return Err(request_error(&format!(
            "The scope '{bad}' does not exist on the resource service principal."
        ))
        .into());
    }
    if tenant
        .grants
        .iter()
        .any(|g| g.client_id == client && g.resource_id == resource)
    {
        return Err(graph_error(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            "Permission entry already exists.",
        )
        .into());
    }
    let g = PermissionGrant {
        id: derived_id(&format!("{tid}/grant/{client}/{resource}")),
        client_id: client,
        resource_id: resource,
        scope,
        effective_at,
    };
    let json = grant_json(&g);
    tenant.grants_lag.record(&g.id, None, now, visible);
    tenant.grants.push(g);
    Ok(json_response(
        201,
        json.clone(),
        Some(format!(
            "{base}/v1.0/oauth2PermissionGrants/{}",
            json["id"].as_str().unwrap_or_default()
        )),
    ))
}

async fn delete_grant(
    State(shared): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::WriteApps)?;
    let now = shared.now();
    let mut world = shared.world();
    let visible = world.visible_after(Family::Grants, now);
    let tenant = world.tenants.get_mut(&tid).ok_or_else(denied)?;
    if let Some(g) = tenant.grants.iter().find(|g| g.id == id) {
        tenant.grants_lag.record(&id, Some(g), now, visible);
    }
    let before = tenant.grants.len();
    tenant.grants.retain(|g| g.id != id);
    if before == tenant.grants.len() {
        return Err(resource_missing(&id).into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
