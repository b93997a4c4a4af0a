//! Users of a customer tenant as a virtual, position-addressed list, and the Graph endpoints
//! `/v1.0/users`, `/v1.0/users/{id|upn}`, `/v1.0/users/$count`, `/v1.0/users/delta` (also in
//! its OData function form `/v1.0/users/delta()`, which Microsoft's SDKs call).
//!
//! Contract: position `p` < generated count is generated user `p` (unless removed); later
//! positions are listed users. A page is built by walking positions from the one encoded in the
//! `$skiptoken`, so memory per request is one page, whatever the tenant size. `$top` is 1–999
//! (default 100); without `$select` only Graph's default properties are returned. Delta rounds
//! walk the same list (initial round) or the tenant's change log (later rounds), 200 entries a
//! page; a page never carries both `@odata.nextLink` and `@odata.deltaLink`; deleted users appear
//! as `{"id", "@removed": {"reason": "deleted"}}`; delta tokens older than 7 days →
//! `400 syncStateNotFound`.

use super::auth::Denied;
use super::context::Shared;
use super::directory::{Access, authorize};
use super::http::{Base, Ctx, GraphError, graph_error, json_response};
use super::odata::{Filter, Query, decode_token, encode_token, link, project};
use super::state::Tenant;
use super::user_list::UserList;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Properties returned when no `$select` is given.
pub const DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];
/// Page size of delta rounds.
pub const DELTA_PAGE: usize = 200;
/// Lifetime of delta tokens in days.
pub const DELTA_TOKEN_DAYS: i64 = 7;

/// Routes of the users endpoints.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1.0/users", get(list))
        .route("/v1.0/users/$count", get(count))
        .route("/v1.0/users/delta", get(delta))
        .route("/v1.0/users/delta()", get(delta))
        .route("/v1.0/users/{id}", get(read))
}

fn request_error(message: &str) -> GraphError {
    graph_error(400, "Request_BadRequest", message)
}

fn shape(user: Map<String, Value>, select: Option<&[String]>) -> Value {
    match select {
        Some(s) => Value::Object(project(user, Some(s))),
        None => Value::Object(
            user.into_iter()
                .filter(|(k, _)| DEFAULT_PROPERTIES.contains(&k.as_str()))
                .collect(),
        ),
    }
}

fn context(base: &str, select: Option<&[String]>) -> String {
    match select {
        Some(s) => format!("{base}/v1.0/$metadata#users({})", s.join(",")),
        None => format!("{base}/v1.0/$metadata#users"),
    }
}

async fn list(
    State(shared): Ctx,
    Base(base): Base,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::ReadUsers)?;
    let q = Query::parse(q.as_deref());
    let top = q
        .top()
        .map_err(|t| {
            request_error(&format!(
                "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
            ))
        })?
        .unwrap_or(100);
    if !(1..=999).contains(&top) {
        return Err(request_error(&format!(
            "Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."
        ))
        .into());
    }
    let filter = q
        .get("filter")
        .map(Filter::parse)
        .transpose()
        .map_err(|m| request_error(&m))?;
    let start: u64 = match q.skiptoken() {
        Some(t) => decode_token(t).ok_or_else(|| request_error("The $skiptoken is invalid."))?,
        None => 0,
    };
    if q.count() && !eventual(&headers) {
        return Err(request_error(
            "$count is only supported with the header 'ConsistencyLevel: eventual'.",
        )
        .into());
    }
    let select = q.select();
    let world = shared.world();
    let users = UserList::new(&world.tenants[&tid]);
    let (mut value, mut pos) = (Vec::with_capacity(top as usize), start);
    while pos < users.positions() && value.len() < top as usize {
        if let Some(u) = users.at(pos)
            && filter
                .as_ref()
                .is_none_or(|f| f.matches(&Value::Object(u.clone())))
        {
            value.push(shape(u, select.as_deref()));
        }
        pos += 1;
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(context(&base, select.as_deref())),
    );
    if q.count() {
        let total = match &filter {
            None => users.count(),
            Some(f) => (0..users.positions())
                .filter_map(|p| users.at(p))
                .filter(|u| f.matches(&Value::Object(u.clone())))
                .count() as u64,
        };
        body.insert("@odata.count".into(), json!(total));
    }
    if pos < users.positions() {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(s) = q.get("select") {
            pairs.push(("$select", s.to_string()));
        }
        if let Some(f) = q.get("filter") {
            pairs.push(("$filter", f.to_string()));
        }
        pairs.push(("$top", top.to_string()));
        pairs.push(("$skiptoken", encode_token(&pos)));
        body.insert(
            "@odata.nextLink".into(),
            json!(link(&base, "/v1.0/users", &pairs)),
        );
    }
    body.insert("value".into(), Value::Array(value));
    Ok(json_response(200, Value::Object(body), None))
}

fn eventual(headers: &HeaderMap) -> bool {
    headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
}

async fn count(State(shared): Ctx, headers: HeaderMap) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::ReadUsers)?;
    if !eventual(&headers) {
        return Err(request_error(
            "$count is only supported with the header 'ConsistencyLevel: eventual'.",
        )
        .into());
    }
    let n = UserList::new(&shared.world().tenants[&tid]).count();
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/plain")],
        n.to_string(),
    )
        .into_response())
}

async fn read(
    State(shared): Ctx,
    Base(base): Base,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::ReadUsers)?;
    let select = Query::parse(q.as_deref()).select();
    let world = shared.world();
    let user = UserList::new(&world.tenants[&tid]).find(&id).ok_or_else(|| {
        graph_error(404, "Request_ResourceNotFound", &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."))
    })?;
    let mut body = shape(user, select.as_deref());
    body["@odata.context"] = json!(format!("{}/$entity", context(&base, select.as_deref())));
    Ok(json_response(200, body, None))
}

/// State of a delta round, encoded in `$skiptoken` / `$deltatoken`.
#[derive(Debug, Serialize, Deserialize)]
struct DeltaState {
    /// `i` (initial round, walking positions) or `c` (changes since `from`).
    k: char,
    /// Position (initial) or index into the deduplicated change list (changes).
    p: u64,
    /// Change-log sequence the changes start after.
    from: u64,
    /// Change-log sequence the round ends at (the next deltaLink's `from`).
    to: u64,
    /// `$select` of the round.
    s: Option<Vec<String>>,
    /// When the round's deltaLink was issued (Unix seconds).
    at: i64,
}

async fn delta(
    State(shared): Ctx,
    Base(base): Base,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    let tid = authorize(&shared, &headers, Access::ReadUsers)?;
    let q = Query::parse(q.as_deref());
    let world = shared.world();
    let tenant = &world.tenants[&tid];
    let now = shared.now().timestamp();
    let seq = tenant.users.seq;
    let state = if let Some(t) = q.skiptoken() {
        decode_token::<DeltaState>(t).ok_or_else(|| {
            graph_error(
                400,
                "syncStateNotFound",
                "The sync state generation is not found.",
            )
        })?
    } else if let Some(t) = q.get("deltatoken") {
        if t == "latest" {
            DeltaState {
                k: 'c',
                p: 0,
                from: seq,
                to: seq,
                s: q.select(),
                at: now,
            }
        } else {
            let d = decode_token::<DeltaState>(t).ok_or_else(|| {
                graph_error(
                    400,
                    "syncStateNotFound",
                    "The sync state generation is not found.",
                )
            })?;
            if now - d.at > DELTA_TOKEN_DAYS * 86_400 {
                return Err(graph_error(400, "syncStateNotFound", "The sync state generation is not found. The delta token is expired and data must be synchronized again.").into());
            }
            DeltaState {
                k: 'c',
                p: 0,
                from: d.to,
                to: seq,
                s: d.s,
                at: now,
            }
        }
    } else {
        DeltaState {
            k: 'i',
            p: 0,
            from: 0,
            to: seq,
            s: q.select(),
            at: now,
        }
    };
    let select = state.s.clone();
    let (value, next) = if state.k == 'i' {
        initial_page(tenant, &state, select.as_deref())
    } else {
        change_page(tenant, &state, select.as_deref())
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(context(&base, select.as_deref())),
    );
    match next {
        Some(p) => {
            let token = encode_token(&DeltaState { p, ..state });
            body.insert(
                "@odata.nextLink".into(),
                json!(link(&base, "/v1.0/users/delta", &[("$skiptoken", token)])),
            );
        }
        None => {
            let token = encode_token(&DeltaState {
                k: 'c',
                p: 0,
                from: state.to,
                to: state.to,
                s: state.s,
                at: now,
            });
            body.insert(
                "@odata.deltaLink".into(),
                json!(link(&base, "/v1.0/users/delta", &[("$deltatoken", token)])),
            );
        }
    }
    body.insert("value".into(), Value::Array(value));
    Ok(json_response(200, Value::Object(body), None))
}

fn initial_page(
    tenant: &Tenant,
    state: &DeltaState,
    select: Option<&[String]>,
) -> (Vec<Value>, Option<u64>) {
    let users = UserList::new(tenant);
    let mut value = Vec::with_capacity(DELTA_PAGE);
    let mut pos = state.p;
    while pos < users.positions() && value.len() < DELTA_PAGE {
        if let Some(u) = users.at(pos) {
            value.push(shape_delta(u, select));
        }
        pos += 1;
    }
    (value, (pos < users.positions()).then_some(pos))
}

fn shape_delta(user: Map<String, Value>, select: Option<&[String]>) -> Value {
    match select {
        Some(s) => Value::Object(project(user, Some(s))),
        None => shape(user, None),
    }
}

fn change_page(
    tenant: &Tenant,
    state: &DeltaState,
    select: Option<&[String]>,
) -> (Vec<Value>, Option<u64>) {
    let mut latest: Vec<&super::state::UserChange> = Vec::new();
    for c in tenant
        .users
        .changes
        .iter()
        .filter(|c| c.seq > state.from && c.seq <= state.to)
    {
        latest.retain(|x| x.user_id != c.user_id);
        latest.push(c);
    }
    let users = UserList::new(tenant);
    let start = state.p as usize;
    let value = latest
        .iter()
        .skip(start)
        .take(DELTA_PAGE)
        .map(|c| match (c.deleted, users.find(&c.user_id)) {
            (false, Some(u)) => shape_delta(u, select),
            _ => json!({"id": c.user_id, "@removed": {"reason": "deleted"}}),
        })
        .collect::<Vec<_>>();
    let next = start + value.len();
    (value, (next < latest.len()).then_some(next as u64))
}
