//! Graph GDAP access assignments (`…/{id}/accessAssignments`) and operations (`…/{id}/operations`).
//!
//! Contract: assignments can only be created on `active` relationships, for a security group
//! that exists in the partner tenant, with roles that are a non-empty subset of the
//! relationship's roles; one live assignment per group and relationship (a second one → `409
//! conflict`). New assignments are `pending` and become `active` after the activation delay.
//! PATCH (with `If-Match`) of the roles returns `202 {}` + `Location` of an operation (status
//! `running` → `succeeded` after the delay), or `200` with the unchanged object when the roles
//! are the same. DELETE (with `If-Match`) moves the assignment to `deleting` → `deleted`.

use super::auth::Denied;
use super::context::Shared;
use super::gdap::{auth_read, auth_write, check_if_match, find, prefers_unknown, retry_after};
use super::gdap_model::RELATIONSHIPS;
use super::gdap_model::{self as model, check_roles, etag};
use super::http::body_object;
use super::http::{
    Base, Ctx, GraphError, bad_request, graph_error, json_response, not_found, set_header,
};
use super::odata::Query;
use super::state::{Assignment, Operation, Relationship};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

/// Routes of assignments and operations.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            &format!("{RELATIONSHIPS}/{{id}}/accessAssignments"),
            get(list).post(create),
        )
        .route(
            &format!("{RELATIONSHIPS}/{{id}}/accessAssignments/{{aid}}"),
            get(read).patch(update).delete(remove),
        )
        .route(
            &format!("{RELATIONSHIPS}/{{id}}/operations"),
            get(list_operations),
        )
        .route(
            &format!("{RELATIONSHIPS}/{{id}}/operations/{{oid}}"),
            get(read_operation),
        )
}

fn assignment<'a>(rel: &'a mut Relationship, aid: &str) -> Result<&'a mut Assignment, GraphError> {
    rel.assignments
        .iter_mut()
        .find(|a| a.id == aid)
        .ok_or_else(|| not_found("accessAssignment", aid))
}

fn subset_roles(
    rel: &Relationship,
    body: &serde_json::Map<String, Value>,
) -> Result<Vec<String>, GraphError> {
    let roles = check_roles(body.get("accessDetails").unwrap_or(&Value::Null))?;
    if let Some(outside) = roles.iter().find(|r| !rel.roles.contains(r)) {
        return Err(bad_request(&format!(
            "The role '{outside}' is not part of the relationship's accessDetails; access assignments can only use roles granted by the relationship."
        )));
    }
    Ok(roles)
}

async fn list(
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
    let items: Vec<Value> = world
        .visible_relationship(&id, now)
        .ok_or_else(|| not_found("delegatedAdminRelationship", &id))?
        .assignments
        .iter()
        .map(model::assignment_json)
        .collect();
    let body = model::relationship_page(
        items,
        &Query::parse(q.as_deref()),
        &base,
        &id,
        "accessAssignments",
    )?;
    Ok(json_response(200, body, None))
}

async fn read(
    State(shared): Ctx,
    Path((id, aid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_read(&shared, &headers)?;
    let now = shared.now();
    let mut world = shared.world();
    find(&mut world, &id)?;
    let mut visible = world
        .visible_relationship(&id, now)
        .cloned()
        .ok_or_else(|| not_found("delegatedAdminRelationship", &id))?;
    let a = assignment(&mut visible, &aid)?;
    Ok(json_response(200, model::assignment_json(a), None))
}

async fn create(
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
    let container = body.get("accessContainer").cloned().unwrap_or(Value::Null);
    let group = container
        .get("accessContainerId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if container
        .get("accessContainerType")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "securityGroup")
    {
        return Err(
            bad_request("accessContainer.accessContainerType must be 'securityGroup'.").into(),
        );
    }
    if !world.partner.groups.contains_key(&group) {
        return Err(bad_request(&format!(
            "The security group '{group}' was not found in the partner tenant."
        ))
        .into());
    }
    let aid = world.next_id();
    let version = world.next_version();
    let before = find(&mut world, &id)?.clone();
    let rel = find(&mut world, &id)?;
    if rel.status != "active" {
        return Err(bad_request(&format!("Access assignments can only be created for relationships in status 'active'; this one is '{}'.", rel.status)).into());
    }
    let roles = subset_roles(rel, &body)?;
    if rel
        .assignments
        .iter()
        .any(|a| a.group_id == group && !matches!(a.status.as_str(), "deleted" | "deleting"))
    {
        return Err(graph_error(409, "conflict", &format!("An access assignment for the security group '{group}' already exists in this relationship.")).into());
    }
    let a = Assignment {
        id: aid.clone(),
        group_id: group,
        roles,
        status: "pending".into(),
        status_since: now,
        created: now,
        last_modified: now,
        version,
        pending_update: None,
        access_from: None,
        access_until: None,
    };
    let mut json = model::assignment_json(&a);
    world.lag_relationship(&id, Some(&before), now);
    find(&mut world, &id)?.assignments.push(a);
    json["@odata.context"] = json!(format!(
        "{base}/v1.0/$metadata#tenantRelationships/delegatedAdminRelationships('{id}')/accessAssignments/$entity"
    ));
    Ok(json_response(
        201,
        json,
        Some(format!(
            "{base}{RELATIONSHIPS}/{id}/accessAssignments/{aid}"
        )),
    ))
}

async fn update(
    State(shared): Ctx,
    Base(base): Base,
    Path((id, aid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Denied> {
    auth_write(&shared, &headers)?;
    let body = body_object(&body)?;
    if let Some(key) = body
        .keys()
        .find(|k| k.as_str() != "accessDetails" && !k.starts_with('@'))
    {
        return Err(bad_request(&format!("The property '{key}' of an access assignment cannot be updated; only accessDetails can.")).into());
    }
    let mut world = shared.world();
    let now = shared.now();
    let op_id = world.next_id();
    let version = world.next_version();
    let before = find(&mut world, &id)?.clone();
    let rel = find(&mut world, &id)?;
    let roles = subset_roles(rel, &body)?;
    let a = assignment(rel, &aid)?;
    check_if_match(&headers, &etag(&a.id, a.version))?;
    if a.status != "active" || a.pending_update.is_some() {
        return Err(bad_request(&format!("Only active access assignments without a pending update can be updated; this one is '{}'.", a.status)).into());
    }
    let (mut old, mut new) = (a.roles.clone(), roles.clone());
    old.sort();
    new.sort();
    if old == new {
        return Ok(json_response(200, model::assignment_json(a), None));
    }
    world.lag_relationship(&id, Some(&before), now);
    let rel = find(&mut world, &id)?;
    let a = assignment(rel, &aid)?;
    a.pending_update = Some((roles.clone(), op_id.clone()));
    a.last_modified = now;
    a.version += 1;
    let data = json!({"id": a.id, "accessContainer": {"accessContainerId": a.group_id, "accessContainerType": "securityGroup"},
                      "accessDetails": {"unifiedRoles": roles.iter().map(|r| json!({"roleDefinitionId": r})).collect::<Vec<_>>()}, "status": "active"});
    rel.operations.push(Operation {
        id: op_id.clone(),
        operation_type: "delegatedAdminAccessAssignmentUpdate".into(),
        status: "running".into(),
        target: serde_json::to_string(&data).unwrap_or_default(),
        roles,
        created: now,
        last_modified: now,
        version,
    });
    let mut r = json_response(
        202,
        json!({}),
        Some(format!("{base}{RELATIONSHIPS}/{id}/operations/{op_id}")),
    );
    set_header(r.headers_mut(), header::RETRY_AFTER, &retry_after(&shared));
    Ok(r)
}

async fn remove(
    State(shared): Ctx,
    Path((id, aid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_write(&shared, &headers)?;
    let mut world = shared.world();
    let now = shared.now();
    let before = find(&mut world, &id)?.clone();
    let a = assignment(find(&mut world, &id)?, &aid)?;
    check_if_match(&headers, &etag(&a.id, a.version))?;
    if matches!(a.status.as_str(), "deleting" | "deleted") {
        return Err(
            bad_request(&format!("The access assignment is already '{}'.", a.status)).into(),
        );
    }
    world.lag_relationship(&id, Some(&before), now);
    let a = assignment(find(&mut world, &id)?, &aid)?;
    a.status = "deleting".into();
    a.status_since = now;
    a.last_modified = now;
    a.version += 1;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn operation_data(rel: &Relationship, op: &Operation) -> Value {
    if op.operation_type == "delegatedAdminRelationshipUpdate" {
        return json!({"id": rel.id, "accessDetails": {"unifiedRoles": op.roles.iter().map(|r| json!({"roleDefinitionId": r})).collect::<Vec<_>>()}});
    }
    serde_json::from_str(&op.target).unwrap_or(Value::Null)
}

async fn list_operations(
    State(shared): Ctx,
    Base(base): Base,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_read(&shared, &headers)?;
    let unknown = prefers_unknown(&headers);
    let items: Vec<Value> = {
        let mut world = shared.world();
        let rel = find(&mut world, &id)?;
        rel.operations
            .iter()
            .map(|op| model::operation_json(op, &operation_data(rel, op), unknown))
            .collect()
    };
    let body =
        model::relationship_page(items, &Query::parse(q.as_deref()), &base, &id, "operations")?;
    Ok(json_response(200, body, None))
}

async fn read_operation(
    State(shared): Ctx,
    Path((id, oid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    auth_read(&shared, &headers)?;
    let unknown = prefers_unknown(&headers);
    let mut world = shared.world();
    let rel = find(&mut world, &id)?;
    let op = rel
        .operations
        .iter()
        .find(|o| o.id == oid)
        .ok_or_else(|| not_found("operation", &oid))?;
    Ok(json_response(
        200,
        model::operation_json(op, &operation_data(rel, op), unknown),
        None,
    ))
}
