//! Graph GDAP relationships: `/v1.0/tenantRelationships/delegatedAdminRelationships` and
//! `…/{id}`, plus the permission checks and helpers the other GDAP modules share. Requests and
//! customers live in `gdap_requests.rs`, access assignments and operations in `gdap_assign.rs`.
//!
//! Contract (permission model): every call needs a Graph token for the partner tenant. Reads
//! accept delegated `DelegatedAdminRelationship.Read(Write).All` or the same app roles; writes
//! need a delegated token with `DelegatedAdminRelationship.ReadWrite.All` whose user is in
//! AdminAgents — app-only writes are refused with `403 accessDenied`. Status rules follow
//! Microsoft's docs: PATCH any field in `created`; in `active` only `autoExtendDuration` and
//! removal of Global Administrator (`202` + operation); DELETE only in `created`;
//! `lockForApproval` only in `created`; `terminate` only in `active`. `If-Match` is required on
//! PATCH/DELETE (missing → 400, stale → 412 `resourceModified`, `*` matches).

use super::auth::{Api, Denied, authenticate};
use super::context::Shared;
use super::gdap_model::{
    self as model, RELATIONSHIPS, check_auto_extend, check_display_name, check_duration,
    check_ga_auto_extend, check_roles, etag,
};
use super::http::{
    Base, Ctx, GraphError, bad_request, body_object, graph_error, json_response, not_found,
};
use super::jwt::Claims;
use super::odata::{Filter, Query};
use super::state::{Customer, Relationship, World};
use crate::api::roles::GLOBAL_ADMINISTRATOR_ID;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

const READ: &[&str] = &[
    "DelegatedAdminRelationship.Read.All",
    "DelegatedAdminRelationship.ReadWrite.All",
];
const WRITE: &[&str] = &["DelegatedAdminRelationship.ReadWrite.All"];

/// Routes of Graph GDAP relationships (requests and access assignments have their own).
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(RELATIONSHIPS, get(list).post(create))
        .route(
            &format!("{RELATIONSHIPS}/{{id}}"),
            get(read).patch(update).delete(remove),
        )
}

/// Checks a GDAP read.
pub fn auth_read(shared: &Shared, headers: &HeaderMap) -> Result<Claims, Denied> {
    let claims = authenticate(shared, headers, Api::Graph)?;
    let partner = shared.world().partner.tenant_id.clone();
    if claims.tid != partner {
        return Err(graph_error(
            403,
            "accessDenied",
            "The calling principal must belong to the partner tenant.",
        )
        .into());
    }
    if !claims.has_any(READ) {
        return Err(graph_error(403, "accessDenied", "Insufficient privileges: the token lacks DelegatedAdminRelationship.Read.All or DelegatedAdminRelationship.ReadWrite.All.").into());
    }
    Ok(claims)
}

/// Checks a GDAP write: delegated partner user in AdminAgents with the ReadWrite scope.
pub fn auth_write(shared: &Shared, headers: &HeaderMap) -> Result<Claims, Denied> {
    let claims = auth_read(shared, headers)?;
    if !claims.is_delegated() {
        return Err(graph_error(403, "accessDenied", "GDAP writes require a delegated (app + user) token of a partner user; app-only tokens are refused.").into());
    }
    if !claims.has_any(WRITE) {
        return Err(graph_error(
            403,
            "accessDenied",
            "Insufficient privileges: the token lacks DelegatedAdminRelationship.ReadWrite.All.",
        )
        .into());
    }
    if !shared.world().is_admin_agent(&claims.oid) {
        return Err(graph_error(
            403,
            "accessDenied",
            "The signed-in user is not a member of the partner tenant's AdminAgents group.",
        )
        .into());
    }
    Ok(claims)
}

/// Checks `If-Match` against an ETag.
pub fn check_if_match(headers: &HeaderMap, current: &str) -> Result<(), GraphError> {
    let value = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad_request("The If-Match header is required for this operation."))?;
    if value.trim() == "*" || value.split(',').any(|v| v.trim() == current) {
        Ok(())
    } else {
        Err(graph_error(
            412,
            "resourceModified",
            "The resource has been modified since it was last read (If-Match does not match the current ETag).",
        ))
    }
}

/// Finds a relationship by id.
pub fn find<'a>(world: &'a mut World, id: &str) -> Result<&'a mut Relationship, GraphError> {
    let well_formed = id.len() == 73 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !well_formed {
        return Err(bad_request(
            "The passed in delegatedAdminRelationshipId is invalid.",
        ));
    }
    world
        .relationships
        .find_mut(|r| r.id == id)
        .ok_or_else(|| not_found("delegatedAdminRelationship", id))
}

async fn list(
    State(shared): Ctx,
    Base(base): Base,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_read(&shared, &headers)?;
    let now = shared.now();
    let query = Query::parse(q.as_deref());
    let filter = query.get("filter").and_then(|f| Filter::parse(f).ok());
    let names = filter.as_ref().and_then(|f| f.required("displayName"));
    let named = |r: &&Relationship| {
        names.is_none_or(|names| {
            names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&r.display_name))
        })
    };
    let items: Vec<Value> = shared
        .world()
        .visible_relationships(now)
        .into_iter()
        .filter(named)
        .map(model::relationship_json)
        .collect();
    let body = model::page(
        items,
        &query,
        &base,
        RELATIONSHIPS,
        "tenantRelationships/delegatedAdminRelationships",
    )?;
    Ok(json_response(200, body, None))
}

async fn read(
    State(shared): Ctx,
    Base(base): Base,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_read(&shared, &headers)?;
    let now = shared.now();
    let mut world = shared.world();
    find(&mut world, &id)?;
    let rel = world
        .visible_relationship(&id, now)
        .ok_or_else(|| not_found("delegatedAdminRelationship", &id))?;
    let mut body = model::relationship_json(rel);
    if let (Some(select), Value::Object(m)) = (Query::parse(q.as_deref()).select(), body.clone()) {
        body = Value::Object(super::odata::project(m, Some(&select)));
    }
    body["@odata.context"] = json!(format!(
        "{base}/v1.0/$metadata#tenantRelationships/delegatedAdminRelationships/$entity"
    ));
    Ok(json_response(200, body, None))
}

fn customer_from(world: &World, value: &Value) -> Result<Option<Customer>, GraphError> {
    if value.is_null() {
        return Ok(None);
    }
    let tid = value
        .get("tenantId")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("customer.tenantId is required when customer is given."))?;
    let tenant = world
        .tenants
        .get(&tid.to_ascii_lowercase())
        .ok_or_else(|| bad_request(&format!("The customer tenant '{tid}' was not found.")))?;
    Ok(Some(Customer {
        tenant_id: tenant.id.clone(),
        display_name: Some(tenant.display_name.clone()),
    }))
}

fn name_taken(world: &World, name: &str, except: Option<&str>) -> bool {
    world
        .relationships
        .iter()
        .any(|r| Some(r.id.as_str()) != except && r.display_name.eq_ignore_ascii_case(name))
}

async fn create(
    State(shared): Ctx,
    Base(base): Base,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Denied> {
    auth_write(&shared, &headers)?;
    let body = body_object(&body)?;
    let mut world = shared.world();
    for key in body.keys() {
        if !matches!(
            key.as_str(),
            "displayName"
                | "duration"
                | "autoExtendDuration"
                | "customer"
                | "accessDetails"
                | "@odata.type"
        ) {
            return Err(bad_request(&format!(
                "The property '{key}' cannot be set when creating a relationship."
            ))
            .into());
        }
    }
    let name = check_display_name(body.get("displayName").unwrap_or(&Value::Null))?;
    let (duration, days) = check_duration(body.get("duration").unwrap_or(&Value::Null))?;
    let auto = body
        .get("autoExtendDuration")
        .map(check_auto_extend)
        .transpose()?
        .unwrap_or_else(|| "PT0S".into());
    let roles = check_roles(body.get("accessDetails").unwrap_or(&Value::Null))?;
    check_ga_auto_extend(&roles, &auto)?;
    let customer = customer_from(&world, body.get("customer").unwrap_or(&Value::Null))?;
    if name_taken(&world, &name, None) {
        return Err(bad_request(&format!("A relationship with the displayName '{name}' already exists; display names must be unique.")).into());
    }
    let now = shared.now();
    let id = format!("{}-{}", world.next_id(), world.partner.tenant_id);
    let version = world.next_version();
    world.lag_relationship(&id, None, now);
    let rel = Relationship {
        id: id.clone(),
        display_name: name,
        duration,
        duration_days: days,
        auto_extend_duration: auto,
        customer,
        roles,
        status: "created".into(),
        status_since: now,
        created: now,
        last_modified: now,
        activated: None,
        end: None,
        locked_at: None,
        version,
        requests: vec![],
        assignments: vec![],
        operations: vec![],
    };
    let mut json = model::relationship_json(&rel);
    world.relationships.push(rel);
    json["@odata.context"] = json!(format!(
        "{base}/v1.0/$metadata#tenantRelationships/delegatedAdminRelationships/$entity"
    ));
    Ok(json_response(
        201,
        json,
        Some(format!("{base}{RELATIONSHIPS}/{id}")),
    ))
}

async fn update(
    State(shared): Ctx,
    Base(base): Base,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Denied> {
    auth_write(&shared, &headers)?;
    let body = body_object(&body)?;
    let mut world = shared.world();
    let now = shared.now();
    let snapshot = find(&mut world, &id)?.clone();
    check_if_match(&headers, &etag(&snapshot.id, snapshot.version))?;
    let op = match snapshot.status.as_str() {
        "created" => {
            let updated = patch_created(&world, &snapshot, &body)?;
            *find(&mut world, &id)? = updated;
            None
        }
        "active" => patch_active(&mut world, &snapshot, &body, now)?,
        other => {
            return Err(bad_request(&format!(
                "A relationship in status '{other}' cannot be updated."
            ))
            .into());
        }
    };
    world.lag_relationship(&id, Some(&snapshot), now);
    let version = world.next_version();
    let rel = find(&mut world, &id)?;
    if let Some(op_id) = op {
        let location = format!("{base}{RELATIONSHIPS}/{id}/operations/{op_id}");
        let mut r = json_response(202, json!({}), Some(location));
        super::http::set_header(r.headers_mut(), header::RETRY_AFTER, &retry_after(&shared));
        return Ok(r);
    }
    rel.version = version;
    rel.last_modified = now;
    Ok(json_response(200, model::relationship_json(rel), None))
}

/// `Retry-After` for long-running operations: the activation delay, at least one second.
pub fn retry_after(shared: &Shared) -> String {
    format!(
        "{}",
        shared
            .options
            .assignment_activation_delay
            .as_secs_f64()
            .ceil()
            .max(1.0) as u64
    )
}

fn patch_created(
    world: &World,
    rel: &Relationship,
    body: &serde_json::Map<String, Value>,
) -> Result<Relationship, GraphError> {
    let mut next = rel.clone();
    for (key, value) in body {
        match key.as_str() {
            "displayName" => next.display_name = check_display_name(value)?,
            "duration" => (next.duration, next.duration_days) = check_duration(value)?,
            "autoExtendDuration" => next.auto_extend_duration = check_auto_extend(value)?,
            "accessDetails" => next.roles = check_roles(value)?,
            "customer" => next.customer = customer_from(world, value)?,
            "@odata.type" => {}
            other => {
                return Err(bad_request(&format!(
                    "The property '{other}' cannot be updated."
                )));
            }
        }
    }
    check_ga_auto_extend(&next.roles, &next.auto_extend_duration)?;
    if name_taken(world, &next.display_name, Some(&rel.id)) {
        return Err(bad_request(&format!(
            "A relationship with the displayName '{}' already exists; display names must be unique.",
            next.display_name
        )));
    }
    Ok(next)
}

/// PATCH of an active relationship; returns the id of an operation when the change is async.
fn patch_active(
    world: &mut World,
    rel: &Relationship,
    body: &serde_json::Map<String, Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<String>, GraphError> {
    let mut auto = rel.auto_extend_duration.clone();
    let mut new_roles = None;
    for (key, value) in body {
        match key.as_str() {
            "autoExtendDuration" => auto = check_auto_extend(value)?,
            "accessDetails" => new_roles = Some(check_roles(value)?),
            "@odata.type" => {}
            other => {
                return Err(bad_request(&format!(
                    "The property '{other}' cannot be updated while the relationship is active; only autoExtendDuration (and removing Global Administrator) can."
                )));
            }
        }
    }
    let roles_after = new_roles.clone().unwrap_or_else(|| rel.roles.clone());
    let removes_ga = match &new_roles {
        None => false,
        Some(r) if sorted(r) == sorted(&rel.roles) => false,
        Some(r) => {
            let expected: Vec<String> = rel
                .roles
                .iter()
                .filter(|x| *x != GLOBAL_ADMINISTRATOR_ID)
                .cloned()
                .collect();
            if rel.roles.iter().any(|x| x == GLOBAL_ADMINISTRATOR_ID)
                && sorted(r) == sorted(&expected)
            {
                true
            } else {
                return Err(bad_request(
                    "The roles of an active relationship cannot be changed, except to remove Global Administrator.",
                ));
            }
        }
    };
    check_ga_auto_extend(if removes_ga { &roles_after } else { &rel.roles }, &auto)?;
    let target = find(world, &rel.id)?;
    target.auto_extend_duration = auto;
    if !removes_ga {
        return Ok(None);
    }
    let op_id = world.next_id();
    let version = world.next_version();
    let target = find(world, &rel.id)?;
    target.operations.push(super::state::Operation {
        id: op_id.clone(),
        operation_type: "delegatedAdminRelationshipUpdate".into(),
        status: "running".into(),
        target: rel.id.clone(),
        roles: roles_after,
        created: now,
        last_modified: now,
        version,
    });
    Ok(Some(op_id))
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

async fn remove(
    State(shared): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_write(&shared, &headers)?;
    let mut world = shared.world();
    let rel = find(&mut world, &id)?;
    check_if_match(&headers, &etag(&rel.id, rel.version))?;
    if rel.status != "created" {
        return Err(bad_request(&format!(
            "Only relationships in status 'created' can be deleted; this one is '{}'.",
            rel.status
        ))
        .into());
    }
    let before = find(&mut world, &id)?.clone();
    world.lag_relationship(&id, Some(&before), shared.now());
    world.relationships.retain(|r| r.id != id);
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// Whether the request sent `Prefer: include-unknown-enum-members`.
pub fn prefers_unknown(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("include-unknown-enum-members"))
}
