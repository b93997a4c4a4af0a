//! The partner tenant's groups: `GET /v1.0/groups/{id}` and `GET /v1.0/groups` (`$filter`, e.g.
//! `displayName eq '…'`, and `$select`) — the security groups GDAP access assignments name.
//!
//! Contract: the token must be issued in the partner tenant (customer tenants' groups are not
//! emulated: `501`). A delegated token needs `GroupMember.Read.All`, `Group.Read.All`,
//! `Group.ReadWrite.All`, `Directory.Read.All`, `Directory.ReadWrite.All` or
//! `Directory.AccessAsUser.All`; an app-only token one of those application permissions (not
//! `Directory.AccessAsUser.All`); else `403 Authorization_RequestDenied`, as Graph answers. An
//! unknown id is `404 Request_ResourceNotFound`, an id that is no GUID `400 Request_BadRequest`
//! "Invalid object identifier". Every group is a security group (`securityEnabled: true`).

use super::auth::{Api, Denied, authenticate};
use super::context::Shared;
use super::directory::{collection, denied, request_error, resource_missing};
use super::http::{Base, Ctx, graph_error, json_response};
use super::odata::{Query, project};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Delegated scopes that allow reading groups.
const SCOPES: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];

/// Application permissions that allow reading groups.
const APP_ROLES: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// Routes of `/groups`.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1.0/groups", get(list))
        .route("/v1.0/groups/{id}", get(read))
}

/// Admits a read of the partner tenant's directory: a token of the partner tenant holding one
/// of `scopes` (delegated) or `app_roles` (app-only). `what` names the collection in the `501`.
pub fn partner_read(
    shared: &Shared,
    headers: &HeaderMap,
    what: &str,
    scopes: &[&str],
    app_roles: &[&str],
) -> Result<(), Denied> {
    let claims = authenticate(shared, headers, Api::Graph)?;
    if claims.tid != shared.world().partner.tenant_id {
        return Err(graph_error(
            501,
            "NotImplemented",
            &format!("The sandbox serves {what} of the partner tenant only."),
        )
        .into());
    }
    let allowed = if claims.is_delegated() {
        claims.has_any(scopes)
    } else {
        claims.has_any(app_roles)
    };
    if allowed { Ok(()) } else { Err(denied()) }
}

fn group(id: &str, name: &str) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("id".into(), json!(id));
    object.insert("displayName".into(), json!(name));
    object.insert("description".into(), Value::Null);
    object.insert("securityEnabled".into(), json!(true));
    object.insert("mailEnabled".into(), json!(false));
    object.insert("mailNickname".into(), json!(name.replace(' ', "")));
    object.insert("groupTypes".into(), json!([]));
    object
}

async fn list(
    State(shared): Ctx,
    Base(base): Base,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    partner_read(&shared, &headers, "/groups", SCOPES, APP_ROLES)?;
    let items = shared
        .world()
        .partner
        .groups
        .iter()
        .map(|(id, name)| Value::Object(group(id, name)))
        .collect();
    let body = collection(&base, "groups", items, &Query::parse(q.as_deref()))?;
    Ok(json_response(200, body, None))
}

async fn read(
    State(shared): Ctx,
    Base(base): Base,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    partner_read(&shared, &headers, "/groups", SCOPES, APP_ROLES)?;
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(request_error(&format!("Invalid object identifier '{id}'.")).into());
    }
    let world = shared.world();
    let Some((id, name)) = world
        .partner
        .groups
        .iter()
        .find(|(g, _)| g.eq_ignore_ascii_case(&id))
    else {
        return Err(resource_missing(&id).into());
    };
    let mut body = project(
        group(id, name),
        Query::parse(q.as_deref()).select().as_deref(),
    );
    body.insert(
        "@odata.context".into(),
        json!(format!("{base}/v1.0/$metadata#groups/$entity")),
    );
    Ok(json_response(200, Value::Object(body), None))
}
