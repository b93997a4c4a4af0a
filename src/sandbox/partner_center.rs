//! Partner Center application consents: `POST /v1/customers/{tenant}/applicationconsents` and
//! `DELETE /v1/customers/{tenant}/applicationconsents/{appId}`.
//!
//! Contract: the caller needs a delegated Partner Center token (`aud`
//! `https://api.partnercenter.microsoft.com`) whose sign-in used MFA (`amr` contains `mfa`, else
//! `401` code `900421`, as Partner Center enforces since April 2026), of a partner user who is in
//! AdminAgents and who holds
//! Global Administrator, Application Administrator or Cloud Application Administrator in the
//! customer through an active GDAP relationship (else `403`). `applicationId` must be the token's
//! app. Every `enterpriseApplicationId` must have a service principal in the customer (else `400`
//! "lacks a service principal"). Success creates the app's service principal (if absent) and one
//! `AllPrincipals` oauth2PermissionGrant per resource (comma-separated scopes become
//! space-separated), and returns `201` echoing the body. A consent that already exists → `409
//! Conflict` "Permission entry already exists."; repeating a request with the same `ms-requestid`
//! replays the first response. DELETE removes the app's delegated grants (`200`), `404` when none.

use super::auth::{Api, Denied, authenticate};
use super::consistency::Family;
use super::context::Shared;
use super::http::{Ctx, PcError, json_response};
use super::ids::derived_id;
use super::jwt::Claims;
use super::state::{PermissionGrant, World};
use crate::api::roles::{
    APPLICATION_ADMINISTRATOR_ID, CLOUD_APPLICATION_ADMINISTRATOR_ID, GLOBAL_ADMINISTRATOR_ID,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use serde_json::{Value, json};
use std::sync::Arc;

/// Roles that allow consenting applications through Partner Center.
pub const CONSENT_ROLES: &[&str] = &[
    GLOBAL_ADMINISTRATOR_ID,
    APPLICATION_ADMINISTRATOR_ID,
    CLOUD_APPLICATION_ADMINISTRATOR_ID,
];

/// Routes of Partner Center.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/customers/{tenant}/applicationconsents", post(create))
        .route(
            "/v1/customers/{tenant}/applicationconsents/{app}",
            delete(remove),
        )
}

/// Admits a Partner Center caller of the partner tenant: App+User whose sign-in used MFA (else
/// `401` 900421) of an AdminAgents member (else `403`); app-only tokens only where
/// `app_only` (else `403`). Returns the claims.
pub(super) fn partner_caller(
    shared: &Shared,
    headers: &HeaderMap,
    app_only: AppOnly,
) -> Result<Claims, Denied> {
    let claims = authenticate(shared, headers, Api::PartnerCenter)?;
    let world = shared.world();
    if claims.tid != world.partner.tenant_id {
        return Err(PcError::new(
            403,
            "Forbidden",
            "The token must be issued by the partner tenant.",
        )
        .into());
    }
    if !claims.is_delegated() {
        return match app_only {
            AppOnly::Accepted => Ok(claims),
            AppOnly::Refused(message) => Err(PcError::new(403, "Forbidden", message).into()),
        };
    }
    if !claims.has_mfa() {
        return Err(mfa_required().into());
    }
    if !world.is_admin_agent(&claims.oid) {
        return Err(PcError::new(
            403,
            "Forbidden",
            "The user is not a member of the AdminAgents group of the partner tenant.",
        )
        .into());
    }
    Ok(claims)
}

/// Whether a Partner Center call accepts app-only tokens.
#[derive(Debug, Clone, Copy)]
pub(super) enum AppOnly {
    /// It does.
    Accepted,
    /// It does not: the message of the `403`.
    Refused(&'static str),
}

/// Checks caller, AdminAgents, customer and consent-capable role; returns (claims, tenant id).
fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    customer: &str,
) -> Result<(Claims, String), Denied> {
    let claims = partner_caller(
        shared,
        headers,
        AppOnly::Refused(
            "Application consent requires an App+User token; app-only tokens are not accepted.",
        ),
    )?;
    let world = shared.world();
    let tid = world
        .resolve_tenant(customer)
        .filter(|t| world.tenants.contains_key(t))
        .ok_or_else(|| {
            PcError::new(
                404,
                "NotFound",
                &format!("Customer '{customer}' was not found."),
            )
        })?;
    let roles = world.gdap_roles(&claims.oid, &tid, shared.now());
    if !CONSENT_ROLES.iter().any(|r| roles.contains(*r)) {
        return Err(PcError::new(403, "Forbidden", "The user does not hold Global Administrator, Application Administrator or Cloud Application Administrator in this customer through an active GDAP relationship.").into());
    }
    Ok((claims, tid))
}

/// Partner Center's answer to an App+User token whose `amr` has no MFA (enforced since
/// 2026-04-01): `401` with code `900421`.
fn mfa_required() -> PcError {
    PcError::new(
        401,
        crate::microsoft::error::PC_MFA_REQUIRED_CODE,
        "Multi-factor authentication is required: the access token has no MFA claim (amr). Partner Center refuses App+User calls without MFA; sign in again with MFA.",
    )
}

fn grants_of(world: &World, tid: &str, app_id: &str) -> usize {
    let tenant = &world.tenants[tid];
    tenant
        .service_principal(app_id)
        .map(|sp| {
            tenant
                .grants
                .iter()
                .filter(|g| g.client_id == sp.id)
                .count()
        })
        .unwrap_or(0)
}

/// A validated consent body: (applicationId, [(resource appId, scopes)]).
type ConsentBody = (String, Vec<(String, Vec<String>)>);

fn parse(body: &Bytes, claims: &Claims) -> Result<ConsentBody, PcError> {
    let bad = |m: &str| PcError::new(400, "BadRequest", m);
    let v: Value =
        serde_json::from_slice(body).map_err(|_| bad("The request body must be JSON."))?;
    let app = v
        .get("applicationId")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("applicationId is required."))?
        .to_ascii_lowercase();
    if app != claims.appid {
        return Err(PcError::new(
            403,
            "Forbidden",
            "The applicationId must be the application the token was issued to.",
        ));
    }
    let grants = v
        .get("applicationGrants")
        .and_then(Value::as_array)
        .filter(|g| !g.is_empty())
        .ok_or_else(|| bad("applicationGrants must be a non-empty array."))?;
    let mut out = Vec::new();
    for g in grants {
        let resource = g
            .get("enterpriseApplicationId")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("enterpriseApplicationId is required in every grant."))?;
        let scopes: Vec<String> = g
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if scopes.is_empty() {
            return Err(bad(&format!("The grant for '{resource}' has no scope.")));
        }
        out.push((resource.to_ascii_lowercase(), scopes));
    }
    Ok((app, out))
}

async fn create(
    State(shared): Ctx,
    Path(customer): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Denied> {
    let (claims, tid) = authorize(&shared, &headers, &customer)?;
    let request_id = headers
        .get("ms-requestid")
        .and_then(|v| v.to_str().ok())
        .map(|s| format!("{tid}/{s}"));
    if let Some((status, body)) = request_id
        .as_ref()
        .and_then(|id| shared.lock(&shared.pc_requests).get(id).cloned())
    {
        let mut replay = json_response(status, body, None);
        replay.extensions_mut().insert(super::faults::Replayed);
        return Ok(replay);
    }
    let (app, grants) = parse(&body, &claims)?;
    let (status, response) = consent(&shared, &tid, &app, &grants)?;
    if let Some(id) = request_id {
        shared
            .lock(&shared.pc_requests)
            .insert(id, (status, response.clone()));
    }
    Ok(json_response(status, response, None))
}

fn consent(
    shared: &Shared,
    tid: &str,
    app: &str,
    grants: &[(String, Vec<String>)],
) -> Result<(u16, Value), PcError> {
    let mut world = shared.world();
    let name = world.app_display_name(app);
    if !world.apps.contains_key(app) {
        return Err(PcError::new(
            400,
            "BadRequest",
            &format!("The application '{app}' is not a registered application of the partner."),
        ));
    }
    let tenant = &world.tenants[tid];
    for (resource, _) in grants {
        if tenant.service_principal(resource).is_none() {
            let rname = super::catalog::first_party_name(resource).unwrap_or("Unknown application");
            return Err(PcError::new(
                400,
                "BadRequest",
                &format!(
                    "The app is trying to access a service '{resource}' ({rname}) that your organization '{}' lacks a service principal for. Contact your IT Admin to review the configuration of your service subscriptions or consent to the application in order to create the required service principal.",
                    tenant.primary_domain
                ),
            ));
        }
    }
    if grants_of(&world, tid, app) > 0 {
        return Err(PcError::new(
            409,
            "Conflict",
            "Permission entry already exists.",
        ));
    }
    let now = shared.now();
    let sp_visible = world.visible_after(Family::ServicePrincipals, now);
    let grants_visible = world.visible_after(Family::Grants, now);
    let effective_at = world.consent_effective_at(now);
    let tenant = world
        .tenants
        .get_mut(tid)
        .ok_or_else(|| PcError::new(404, "NotFound", "Customer not found."))?;
    if tenant.service_principal(app).is_none() {
        let id = tenant.ensure_service_principal(app, &name, now);
        tenant.principals_lag.record(&id, None, now, sp_visible);
    }
    let client = tenant.ensure_service_principal(app, &name, now);
    for (resource, scopes) in grants {
        let resource_id = tenant
            .service_principal(resource)
            .map(|sp| sp.id.clone())
            .unwrap_or_default();
        let id = derived_id(&format!(
            "{tid}/grant/{client}/{resource_id}/{}",
            now.timestamp_nanos_opt().unwrap_or(0)
        ));
        tenant.grants_lag.record(&id, None, now, grants_visible);
        tenant.grants.push(PermissionGrant {
            id,
            client_id: client.clone(),
            resource_id,
            scope: scopes.join(" "),
            effective_at,
        });
    }
    let body = json!({
        "applicationId": app, "displayName": name,
        "applicationGrants": grants.iter().map(|(r, s)| json!({"enterpriseApplicationId": r, "scope": s.join(",")})).collect::<Vec<_>>(),
        "attributes": {"objectType": "ApplicationConsent"},
    });
    Ok((201, body))
}

async fn remove(
    State(shared): Ctx,
    Path((customer, app)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let (_, tid) = authorize(&shared, &headers, &customer)?;
    let app = app.to_ascii_lowercase();
    let mut world = shared.world();
    if grants_of(&world, &tid, &app) == 0 {
        return Err(PcError::new(
            404,
            "NotFound",
            &format!("No consent for application '{app}' exists in this customer."),
        )
        .into());
    }
    let now = shared.now();
    let visible = world.visible_after(Family::Grants, now);
    let tenant = world
        .tenants
        .get_mut(&tid)
        .ok_or_else(|| PcError::new(404, "NotFound", "Customer not found."))?;
    let sp = tenant
        .service_principal(&app)
        .map(|sp| sp.id.clone())
        .unwrap_or_default();
    for g in tenant.grants.iter().filter(|g| g.client_id == sp) {
        tenant.grants_lag.record(&g.id, Some(g), now, visible);
    }
    tenant.grants.retain(|g| g.client_id != sp);
    Ok(axum::http::StatusCode::OK.into_response())
}
