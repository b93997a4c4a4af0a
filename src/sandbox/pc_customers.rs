//! Partner Center's customer list: `GET /v1/customers` and `GET /v1/customers/{tenant}`.
//!
//! Contract: the caller needs a Partner Center token of the partner tenant — app-only, or App+User
//! whose sign-in used MFA (else `401` code `900421`) of a user in AdminAgents (else `403`). The
//! customers are the sandbox's customer tenants, each as Partner Center's `Customer` resource
//! (`id` = tenant id, `companyProfile` with `tenantId`, `domain`, `companyName`,
//! `relationshipToPartner` `reseller`). The list pages with `size` (1–500, default 500) and
//! continues with the `MS-ContinuationToken` header its `links.next` names; an unknown customer
//! is `404`.

use super::auth::Denied;
use super::context::Shared;
use super::http::{Ctx, PcError, json_response};
use super::partner_center::{AppOnly, partner_caller};
use super::state::Tenant;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The largest page Partner Center returns.
const MAX_PAGE: usize = 500;
/// The header carrying the list's continuation.
const CONTINUATION: &str = "ms-continuationtoken";

/// Routes of the customer list.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/customers", get(list))
        .route("/v1/customers/{tenant}", get(read))
}

/// Admits a partner-tenant token: app-only, or an AdminAgents user who signed in with MFA.
fn admit(shared: &Shared, headers: &HeaderMap) -> Result<(), Denied> {
    partner_caller(shared, headers, AppOnly::Accepted).map(drop)
}

/// A customer tenant as Partner Center's `Customer` resource (what the list and the read show).
pub fn customer(tenant: &Tenant) -> Value {
    json!({
        "id": tenant.id,
        "companyProfile": {
            "tenantId": tenant.id,
            "domain": tenant.primary_domain,
            "companyName": tenant.display_name,
            "attributes": {"objectType": "CustomerCompanyProfile"},
        },
        "relationshipToPartner": "reseller",
        "attributes": {"objectType": "Customer"},
    })
}

async fn read(State(shared): Ctx, headers: HeaderMap, Path(tenant): Path<String>) -> Response {
    if let Err(denied) = admit(&shared, &headers) {
        return denied.into_response();
    }
    let world = shared.world();
    let found = world
        .resolve_tenant(&tenant)
        .and_then(|tid| world.tenants.get(&tid));
    match found {
        Some(t) => json_response(200, customer(t), None),
        None => PcError::new(
            404,
            "600008",
            &format!("Customer '{tenant}' was not found."),
        )
        .into_response(),
    }
}

async fn list(
    State(shared): Ctx,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(denied) = admit(&shared, &headers) {
        return denied.into_response();
    }
    let size = match query.get("size").map(|s| s.parse::<usize>()) {
        None => MAX_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return PcError::new(400, "BadRequest", "size must be a number from 1 to 500.")
                .into_response();
        }
    };
    let skip = headers
        .get(CONTINUATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let world = shared.world();
    let total = world.tenants.len();
    let items: Vec<Value> = world
        .tenants
        .values()
        .skip(skip)
        .take(size)
        .map(customer)
        .collect();
    let mut body = json!({
        "totalCount": total,
        "items": items,
        "attributes": {"objectType": "Collection"},
    });
    if skip + size < total {
        body["links"] = json!({"next": {
            "uri": format!("/customers?size={size}&seekOperation=Next"),
            "method": "GET",
            "headers": [{"key": "MS-ContinuationToken", "value": (skip + size).to_string()}],
        }});
    }
    json_response(200, body, None)
}
