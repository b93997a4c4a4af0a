//! The signed-in partner user's own directory facts: `GET /v1.0/me/memberOf` (the groups a
//! delegated caller is a member of), in the partner tenant.
//!
//! Contract: needs a delegated Graph token issued in the partner tenant with `User.Read`,
//! `GroupMember.Read.All`, `Directory.Read.All` or `Directory.AccessAsUser.All` (else `403
//! Authorization_RequestDenied`); an app-only token has no "me" (`400 BadRequest`, as Graph
//! answers). The answer is a `directoryObject` collection of `#microsoft.graph.group` items
//! (`id`, `displayName`, `securityEnabled`), with `$select` and `$filter` applied. The rest of the
//! partner directory is not emulated.

use super::auth::{Api, Denied, authenticate};
use super::context::Shared;
use super::directory::{collection, denied, request_error};
use super::http::{Base, Ctx, graph_error, json_response};
use super::odata::Query;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;

/// Delegated scopes that allow reading the caller's memberships.
const SCOPES: &[&str] = &[
    "User.Read",
    "GroupMember.Read.All",
    "Directory.Read.All",
    "Directory.AccessAsUser.All",
];

/// Routes of `/me`.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v1.0/me/memberOf", get(member_of))
}

async fn member_of(
    State(shared): Ctx,
    Base(base): Base,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let claims = authenticate(&shared, &headers, Api::Graph)?;
    if !claims.is_delegated() {
        return Err(
            request_error("/me request is only valid with delegated authentication flow.").into(),
        );
    }
    if !claims.has_any(SCOPES) {
        return Err(denied());
    }
    let world = shared.world();
    if claims.tid != world.partner.tenant_id {
        return Err(graph_error(
            501,
            "NotImplemented",
            "The sandbox serves /me in the partner tenant only.",
        )
        .into());
    }
    let user = world.partner_user(&claims.oid).ok_or_else(denied)?;
    let items = user
        .groups
        .iter()
        .map(|id| {
            json!({
                "@odata.type": "#microsoft.graph.group", "id": id,
                "displayName": world.partner.groups.get(id), "securityEnabled": true,
            })
        })
        .collect();
    Ok(json_response(
        200,
        collection(
            &base,
            "directoryObjects",
            items,
            &Query::parse(q.as_deref()),
        )?,
        None,
    ))
}
