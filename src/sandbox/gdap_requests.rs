//! Graph GDAP relationship requests (`…/{id}/requests`: `lockForApproval`, `terminate`) and
//! `delegatedAdminCustomers` (+ `serviceManagementDetails`).
//!
//! Contract: `lockForApproval` only on `created` (→ `approvalPending`, starts the 90-day window),
//! `terminate` only on `active` (→ `terminationRequested`); other actions or statuses → `400
//! badRequest`. The POST response shows the request `created`; it reads `succeeded` afterwards.
//! `delegatedAdminCustomers` lists the customers of active relationships (`id` = tenant id).

use super::auth::Denied;
use super::context::Shared;
use super::gdap::{auth_read, auth_write, find, prefers_unknown};
use super::gdap_model::RELATIONSHIPS;
use super::gdap_model::{self as model, etag};
use super::http::body_object;
use super::http::{Base, Ctx, bad_request, json_response, not_found};
use super::lifecycle::set_status;
use super::odata::Query;
use super::state::{RelRequest, World};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

/// Routes of requests and customers.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            &format!("{RELATIONSHIPS}/{{id}}/requests"),
            get(list_requests).post(create_request),
        )
        .route(
            &format!("{RELATIONSHIPS}/{{id}}/requests/{{rid}}"),
            get(read_request),
        )
        .route(
            "/v1.0/tenantRelationships/delegatedAdminCustomers",
            get(list_customers),
        )
        .route(
            "/v1.0/tenantRelationships/delegatedAdminCustomers/{id}",
            get(read_customer),
        )
        .route(
            "/v1.0/tenantRelationships/delegatedAdminCustomers/{id}/serviceManagementDetails",
            get(service_details),
        )
}

async fn list_requests(
    State(shared): Ctx,
    Base(base): Base,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_read(&shared, &headers)?;
    let include_reject = prefers_unknown(&headers);
    let items: Vec<Value> = {
        let mut world = shared.world();
        find(&mut world, &id)?
            .requests
            .iter()
            .filter(|r| include_reject || r.action != "reject")
            .map(model::request_json)
            .collect()
    };
    let body =
        model::relationship_page(items, &Query::parse(q.as_deref()), &base, &id, "requests")?;
    Ok(json_response(200, body, None))
}

async fn read_request(
    State(shared): Ctx,
    Path((id, rid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_read(&shared, &headers)?;
    let mut world = shared.world();
    let rel = find(&mut world, &id)?;
    let req = rel
        .requests
        .iter()
        .find(|r| r.id == rid)
        .ok_or_else(|| not_found("request", &rid))?;
    Ok(json_response(200, model::request_json(req), None))
}

async fn create_request(
    State(shared): Ctx,
    Base(base): Base,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Denied> {
    auth_write(&shared, &headers)?;
    let body = body_object(&body)?;
    let action = body
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut world = shared.world();
    let now = shared.now();
    let rid = world.next_id();
    let version = world.next_version();
    let before = find(&mut world, &id)?.clone();
    let rel = find(&mut world, &id)?;
    match (action.as_str(), rel.status.as_str()) {
        ("lockForApproval", "created") => {
            set_status(rel, "approvalPending", now);
            rel.locked_at = Some(now);
        }
        ("terminate", "active") => set_status(rel, "terminationRequested", now),
        ("lockForApproval", s) => return Err(bad_request(&format!("lockForApproval is only allowed for relationships in status 'created'; this one is '{s}'.")).into()),
        ("terminate", s) => return Err(bad_request(&format!("terminate is only allowed for relationships in status 'active'; this one is '{s}'.")).into()),
        ("approve" | "reject", _) => return Err(bad_request("The approve and reject actions are only available to indirect resellers.").into()),
        (other, _) => return Err(bad_request(&format!("The action '{other}' is not valid; use lockForApproval or terminate.")).into()),
    }
    world.lag_relationship(&id, Some(&before), now);
    let rel = find(&mut world, &id)?;
    rel.version += 1;
    let mut request = RelRequest {
        id: rid.clone(),
        action,
        status: "created".into(),
        created: now,
        last_modified: now,
        version,
    };
    let mut json = model::request_json(&request);
    request.status = "succeeded".into();
    rel.requests.push(request);
    json["@odata.context"] = json!(format!(
        "{base}/v1.0/$metadata#tenantRelationships/delegatedAdminRelationships('{id}')/requests/$entity"
    ));
    Ok(json_response(
        201,
        json,
        Some(format!("{base}{RELATIONSHIPS}/{id}/requests/{rid}")),
    ))
}

fn customers(world: &World) -> Vec<Value> {
    let mut seen = std::collections::BTreeSet::new();
    world
        .relationships
        .iter()
        .filter(|r| r.status == "active")
        .filter_map(|r| r.customer.clone())
        .filter(|c| seen.insert(c.tenant_id.clone()))
        .map(|c| json!({"@odata.etag": etag(&c.tenant_id, 1), "id": c.tenant_id, "tenantId": c.tenant_id, "displayName": c.display_name}))
        .collect()
}

async fn list_customers(
    State(shared): Ctx,
    Base(base): Base,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_read(&shared, &headers)?;
    let items = customers(&shared.world());
    let body = model::page(
        items,
        &Query::parse(q.as_deref()),
        &base,
        "/v1.0/tenantRelationships/delegatedAdminCustomers",
        "tenantRelationships/delegatedAdminCustomers",
    )?;
    Ok(json_response(200, body, None))
}

async fn read_customer(
    State(shared): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_read(&shared, &headers)?;
    let item = customers(&shared.world())
        .into_iter()
        .find(|c| c["id"] == json!(id))
        .ok_or_else(|| not_found("delegatedAdminCustomer", &id))?;
    Ok(json_response(200, item, None))
}

async fn service_details(
    State(shared): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_read(&shared, &headers)?;
    if !customers(&shared.world())
        .iter()
        .any(|c| c["id"] == json!(id))
    {
        return Err(not_found("delegatedAdminCustomer", &id).into());
    }
    let value = json!([
        {"id": "lighthouse", "serviceName": "Microsoft 365 Lighthouse", "serviceManagementUrl": "https://lighthouse.microsoft.com"},
        {"id": "m365admin", "serviceName": "Microsoft 365 admin center", "serviceManagementUrl": format!("https://admin.microsoft.com/Partner/BeginClientSession.aspx?CTID={id}")},
    ]);
    Ok(json_response(200, json!({"value": value}), None))
}
