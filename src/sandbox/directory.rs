//! Graph directory of customer tenants: permission checks, `/subscribedSkus` and
//! `/directory/subscriptions`. Users are in `users.rs`, service principals and grants in
//! `apps.rs`, `$batch` in `batch.rs`.
//!
//! A SKU's `prepaidUnits` are the sums of its subscriptions' `totalLicenses` by status
//! (`Enabled` → `enabled`, `Warning` → `warning`, `Suspended` → `suspended`, `LockedOut` →
//! `lockedOut`); `consumedUnits` counts the users holding it; `subscriptionIds` are the
//! subscriptions' `commerceSubscriptionId`s.
//!
//! Contract (permission model): the tenant served is the token's `tid`, which must be a customer
//! tenant. App-only tokens need an application permission granted in that tenant (`roles`);
//! delegated tokens need the scope *and* a GDAP role for the user in that tenant through an
//! active relationship (any role for reads; Global/Application/Cloud Application Administrator to
//! create service principals and delegated grants; Global or Privileged Role Administrator to
//! grant Microsoft Graph / Azure AD Graph application permissions, and additionally Application or
//! Cloud Application Administrator for any other resource's). Refusals are
//! `403 Authorization_RequestDenied`.

use super::auth::{Api, Denied, authenticate};
use super::context::Shared;
use super::http::{Base, Ctx, GraphError, graph_error, json_response};
use super::ids::derived_id;
use super::odata::{Filter, Query};
use super::state::{Sku, Subscription, Tenant, World};
use super::user_list::UserList;
use crate::api::roles::{
    APPLICATION_ADMINISTRATOR_ID, CLOUD_APPLICATION_ADMINISTRATOR_ID, GLOBAL_ADMINISTRATOR_ID,
};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

/// Privileged Role Administrator (may grant application permissions).
pub const PRIVILEGED_ROLE_ADMINISTRATOR_ID: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

/// What a directory call wants to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Access {
    /// Read users.
    ReadUsers,
    /// Read subscribed SKUs.
    ReadSkus,
    /// Read the commercial subscriptions (`/directory/subscriptions`).
    ReadSubscriptions,
    /// Read service principals, grants and assignments.
    ReadApps,
    /// Create/delete service principals and delegated grants.
    WriteApps,
    /// Grant application permissions of Microsoft Graph or Azure AD Graph.
    WriteAppRoles,
    /// Grant application permissions of any other resource.
    WriteOtherAppRoles,
}

impl Access {
    fn app_roles(self) -> &'static [&'static str] {
        match self {
            Access::ReadUsers => &[
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            Access::ReadSkus => &[
                "LicenseAssignment.Read.All",
                "Organization.Read.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            Access::ReadSubscriptions => &[
                "Organization.Read.All",
                "Organization.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            Access::ReadApps => &[
                "Application.Read.All",
                "Application.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            Access::WriteApps => &["Application.ReadWrite.All", "Directory.ReadWrite.All"],
            Access::WriteAppRoles | Access::WriteOtherAppRoles => {
                &["AppRoleAssignment.ReadWrite.All"]
            }
        }
    }

    fn scopes(self) -> &'static [&'static str] {
        match self {
            Access::ReadUsers => &[
                "User.Read.All",
                "User.ReadWrite.All",
                "Directory.Read.All",
                "Directory.AccessAsUser.All",
            ],
            Access::ReadSkus => &[
                "LicenseAssignment.Read.All",
                "Organization.Read.All",
                "Directory.Read.All",
                "Directory.AccessAsUser.All",
            ],
            Access::ReadSubscriptions => &[
                "Organization.Read.All",
                "Directory.Read.All",
                "Directory.AccessAsUser.All",
            ],
            Access::ReadApps => &[
                "Application.Read.All",
                "Application.ReadWrite.All",
                "Directory.Read.All",
                "Directory.AccessAsUser.All",
            ],
            Access::WriteApps => &[
                "Application.ReadWrite.All",
                "DelegatedPermissionGrant.ReadWrite.All",
                "Directory.AccessAsUser.All",
            ],
            Access::WriteAppRoles | Access::WriteOtherAppRoles => &[
                "AppRoleAssignment.ReadWrite.All",
                "Directory.AccessAsUser.All",
            ],
        }
    }

    /// GDAP roles that allow it for a delegated caller (`None`: any role).
    fn gdap_roles(self) -> Option<&'static [&'static str]> {
        match self {
            Access::ReadUsers | Access::ReadSkus | Access::ReadSubscriptions | Access::ReadApps => {
                None
            }
            Access::WriteApps => Some(&[
                GLOBAL_ADMINISTRATOR_ID,
                APPLICATION_ADMINISTRATOR_ID,
                CLOUD_APPLICATION_ADMINISTRATOR_ID,
            ]),
            Access::WriteAppRoles => {
                Some(&[GLOBAL_ADMINISTRATOR_ID, PRIVILEGED_ROLE_ADMINISTRATOR_ID])
            }
            Access::WriteOtherAppRoles => Some(&[
                GLOBAL_ADMINISTRATOR_ID,
                PRIVILEGED_ROLE_ADMINISTRATOR_ID,
                APPLICATION_ADMINISTRATOR_ID,
                CLOUD_APPLICATION_ADMINISTRATOR_ID,
            ]),
        }
    }
}

/// What granting or removing an app role of the resource service principal `resource_sp_id`
/// needs: Microsoft Graph and Azure AD Graph app roles need Global or Privileged Role
/// Administrator; Application and Cloud Application Administrators may grant any other.
pub fn app_role_access(world: &World, tid: &str, resource_sp_id: &str) -> Access {
    let graph = [
        super::defaults::apps::MICROSOFT_GRAPH,
        super::defaults::apps::AZURE_AD_GRAPH,
    ];
    let app_id = world
        .tenants
        .get(tid)
        .and_then(|t| t.service_principal_by_id(resource_sp_id))
        .map(|sp| sp.app_id.to_ascii_lowercase());
    match app_id {
        Some(a) if !graph.contains(&a.as_str()) => Access::WriteOtherAppRoles,
        _ => Access::WriteAppRoles,
    }
}

/// The directory's `403 Authorization_RequestDenied`.
pub fn denied() -> Denied {
    graph_error(
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
    .into()
}

/// Checks a directory call; returns the customer tenant id it addresses.
pub fn authorize(shared: &Shared, headers: &HeaderMap, access: Access) -> Result<String, Denied> {
    authorize_for(shared, headers, |_, _| access)
}

/// Checks a directory call whose needs depend on the tenant's objects (`needed` sees the world
/// and the tenant id); returns the customer tenant id it addresses.
pub fn authorize_for(
    shared: &Shared,
    headers: &HeaderMap,
    needed: impl FnOnce(&World, &str) -> Access,
) -> Result<String, Denied> {
    let claims = authenticate(shared, headers, Api::Graph)?;
    let world = shared.world();
    if !world.tenants.contains_key(&claims.tid) {
        return Err(graph_error(
            501,
            "NotImplemented",
            "The sandbox serves the directory of customer tenants only.",
        )
        .into());
    }
    let access = needed(&world, &claims.tid);
    if !claims.is_delegated() {
        return if claims.has_any(access.app_roles()) {
            Ok(claims.tid)
        } else {
            Err(denied())
        };
    }
    if !claims.has_any(access.scopes()) {
        return Err(denied());
    }
    let held = world.gdap_roles(&claims.oid, &claims.tid, shared.now());
    let allowed = match access.gdap_roles() {
        None => !held.is_empty(),
        Some(needed) => needed.iter().any(|r| held.contains(*r)),
    };
    if allowed {
        Ok(claims.tid)
    } else {
        Err(denied())
    }
}

/// Routes of the directory endpoints (users, apps and `$batch` have their own).
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1.0/subscribedSkus", get(skus))
        .route("/v1.0/directory/subscriptions", get(subscriptions))
        .route("/v1.0/directory/subscriptions/{id}", get(subscription))
}

/// Graph's `400 Request_BadRequest`.
pub fn request_error(message: &str) -> GraphError {
    graph_error(400, "Request_BadRequest", message)
}

/// Graph's `404 Request_ResourceNotFound`.
pub fn resource_missing(id: &str) -> GraphError {
    graph_error(
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

/// A non-paged collection with `$filter` and `$select` applied.
pub fn collection(
    base: &str,
    context: &str,
    items: Vec<Value>,
    q: &Query,
) -> Result<Value, GraphError> {
    let filter = q
        .get("filter")
        .map(Filter::parse)
        .transpose()
        .map_err(|m| request_error(&m))?;
    let select = q.select();
    let value: Vec<Value> = items
        .into_iter()
        .filter(|v| filter.as_ref().is_none_or(|f| f.matches(v)))
        .map(|v| match v {
            Value::Object(m) => Value::Object(super::odata::project(m, select.as_deref())),
            other => other,
        })
        .collect();
    Ok(json!({"@odata.context": format!("{base}/v1.0/$metadata#{context}"), "value": value}))
}

async fn skus(
    State(shared): Ctx,
    Base(base): Base,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::ReadSkus)?;
    let q = Query::parse(q.as_deref());
    if q.get("filter").is_some() {
        return Err(request_error("$filter is not supported on subscribedSkus.").into());
    }
    let world = shared.world();
    let tenant = &world.tenants[&tid];
    let consumed = UserList::new(tenant).consumed_units();
    let items = tenant
        .skus
        .iter()
        .map(|s| sku_json(tenant, s, consumed.get(&s.sku_id).copied().unwrap_or(0)))
        .collect();
    Ok(json_response(
        200,
        collection(&base, "subscribedSkus", items, &q)?,
        None,
    ))
}

fn units(sku: &Sku, status: &str) -> i64 {
    sku.subscriptions
        .iter()
        .filter(|s| s.status == status)
        .map(|s| i64::from(s.total_licenses))
        .sum()
}

fn service_plans(sku: &Sku) -> Vec<Value> {
    sku.service_plans
        .iter()
        .map(|p| {
            json!({"servicePlanId": derived_id(&format!("plan/{p}")), "servicePlanName": p,
                "provisioningStatus": "Success", "appliesTo": "User"})
        })
        .collect()
}

fn sku_json(tenant: &Tenant, s: &Sku, consumed: i64) -> Value {
    let enabled = if s.subscriptions.is_empty() {
        i64::from(s.enabled)
    } else {
        units(s, "Enabled")
    };
    let subscription_ids: Vec<&str> = s
        .subscriptions
        .iter()
        .map(|x| x.commerce_subscription_id.as_str())
        .collect();
    json!({
        "id": format!("{}_{}", tenant.id, s.sku_id), "accountId": tenant.id, "accountName": tenant.display_name,
        "appliesTo": "User", "capabilityStatus": "Enabled", "consumedUnits": consumed,
        "prepaidUnits": {"enabled": enabled, "lockedOut": units(s, "LockedOut"),
            "suspended": units(s, "Suspended"), "warning": units(s, "Warning")},
        "servicePlans": service_plans(s),
        "skuId": s.sku_id, "skuPartNumber": s.sku_part_number,
        "subscriptionIds": subscription_ids,
    })
}

fn subscription_json(sku: &Sku, x: &Subscription) -> Value {
    let time =
        |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let plans: Vec<Value> = service_plans(sku);
    json!({
        "id": x.id, "commerceSubscriptionId": x.commerce_subscription_id,
        "createdDateTime": time(&x.created), "isTrial": x.is_trial,
        "nextLifecycleDateTime": time(&x.next_lifecycle),
        "ownerId": x.owner_tenant_id, "ownerTenantId": x.owner_tenant_id, "ownerType": "Company",
        "serviceStatus": plans, "skuId": sku.sku_id, "skuPartNumber": sku.sku_part_number,
        "status": x.status, "totalLicenses": x.total_licenses,
    })
}

/// `GET /v1.0/directory/subscriptions`: every subscription of every SKU (`$filter`, `$select`;
/// one page — a tenant has a few dozen at most).
async fn subscriptions(
    State(shared): Ctx,
    Base(base): Base,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::ReadSubscriptions)?;
    let q = Query::parse(q.as_deref());
    let world = shared.world();
    let items = world.tenants[&tid]
        .skus
        .iter()
        .flat_map(|sku| {
            sku.subscriptions
                .iter()
                .map(move |x| subscription_json(sku, x))
        })
        .collect();
    Ok(json_response(
        200,
        collection(&base, "directory/subscriptions", items, &q)?,
        None,
    ))
}

/// `GET /v1.0/directory/subscriptions/{id}`.
async fn subscription(
    State(shared): Ctx,
    Base(base): Base,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::ReadSubscriptions)?;
    let world = shared.world();
    let mut body = world.tenants[&tid]
        .skus
        .iter()
        .find_map(|sku| {
            sku.subscriptions
                .iter()
                .find(|x| x.id == id || x.commerce_subscription_id == id)
                .map(|x| subscription_json(sku, x))
        })
        .ok_or_else(|| resource_missing(&id))?;
    body["@odata.context"] = json!(format!(
        "{base}/v1.0/$metadata#directory/subscriptions/$entity"
    ));
    Ok(json_response(200, body, None))
}
