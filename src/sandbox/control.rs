//! The control API under `/_sandbox/` — not part of Microsoft's protocol; for tests and demos.
//!
//! Contract: no authentication (the sandbox listens on loopback); JSON in and out; errors are
//! `{"error": "…"}` with 400/404/409. Every endpoint is documented in `docs/sandbox.md`. The
//! state dump never contains client secrets or refresh-token values.

use super::consistency::{Consistency, Family};
use super::context::Shared;
use super::control_customers;
use super::control_error::{Result, body_json, err};
use super::faults::{FaultConfig, TokenFaults};
use super::gdap_model::relationship_json;
use super::http::{Ctx, json_response};
use super::ids::derived_id;
use super::lifecycle::set_status;
use super::signin::{default_user, sandbox_now};
use super::signin_state::{Decision, DeviceProblem};
use super::state::{Customer, World};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use chrono::Duration;
use serde_json::{Value, json};
use std::sync::Arc;

/// Routes of the control API.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sandbox/relationships/{id}/approve", post(approve))
        .route("/_sandbox/relationships/{id}/terminate", post(terminate))
        .route("/_sandbox/relationships/{id}/age", post(age))
        .route("/_sandbox/clock", post(advance_clock).get(clock))
        .route("/_sandbox/sign-ins", post(complete_sign_in).get(sign_ins))
        .route(
            "/_sandbox/tenants/{tid}/consents/{app}/revoke",
            post(revoke_consent),
        )
        .route(
            "/_sandbox/tenants/{tid}/servicePrincipals/{app}",
            delete(delete_sp),
        )
        .route(
            "/_sandbox/customers",
            post(control_customers::sign_customer),
        )
        .route("/_sandbox/tenants/{tid}/users", post(add_user))
        .route("/_sandbox/tenants/{tid}/users/{uid}", delete(remove_user))
        .route(
            "/_sandbox/faults",
            put(set_faults).delete(clear_faults).get(get_faults),
        )
        .route(
            "/_sandbox/token-faults",
            put(set_token_faults)
                .delete(clear_token_faults)
                .get(get_token_faults),
        )
        .route("/_sandbox/throttle", put(set_throttle))
        .route(
            "/_sandbox/users/{upn}/revoke-sessions",
            post(revoke_sessions),
        )
        .route(
            "/_sandbox/groups/{group}/members/{upn}",
            put(add_member).delete(remove_member),
        )
        .route("/_sandbox/refresh-tokens/age", post(age_refresh_tokens))
        .route("/_sandbox/state", get(state))
        .route("/_sandbox/reset", post(reset))
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route(
            "/_sandbox/consistency",
            get(get_consistency).put(set_consistency),
        )
}

fn relationship<'a>(world: &'a mut World, id: &str) -> Result<&'a mut super::state::Relationship> {
    world
        .relationships
        .find_mut(|r| r.id == id)
        .ok_or_else(|| err(404, format!("relationship {id} not found")))
}

async fn approve(State(shared): Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response> {
    let body = body_json(&body)?;
    let mut world = shared.world();
    let named = body
        .get("tenantId")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    let customer = match named {
        Some(t) => {
            let tenant = world
                .tenants
                .get(&t)
                .ok_or_else(|| err(404, format!("customer tenant {t} not found")))?;
            Some(Customer {
                tenant_id: tenant.id.clone(),
                display_name: Some(tenant.display_name.clone()),
            })
        }
        None => None,
    };
    let now = shared.now();
    let rel = relationship(&mut world, &id)?;
    if rel.status != "approvalPending" {
        return Err(err(
            409,
            format!(
                "only approvalPending relationships can be approved; this one is {}",
                rel.status
            ),
        ));
    }
    match (&rel.customer, customer) {
        (Some(existing), Some(c)) if existing.tenant_id != c.tenant_id => {
            return Err(err(409, "the relationship names another customer"));
        }
        (None, None) => {
            return Err(err(
                400,
                "the relationship names no customer: give {\"tenantId\": …}",
            ));
        }
        (None, Some(c)) => rel.customer = Some(c),
        _ => {}
    }
    set_status(rel, "approved", now);
    Ok(json_response(200, relationship_json(rel), None))
}

async fn terminate(State(shared): Ctx, Path(id): Path<String>) -> Result<Response> {
    let mut world = shared.world();
    let now = shared.now();
    let rel = relationship(&mut world, &id)?;
    if !matches!(rel.status.as_str(), "active" | "approved" | "activating") {
        return Err(err(
            409,
            format!(
                "only active relationships can be terminated; this one is {}",
                rel.status
            ),
        ));
    }
    set_status(rel, "terminationRequested", now);
    Ok(json_response(200, relationship_json(rel), None))
}

async fn age(State(shared): Ctx, Path(id): Path<String>, body: Bytes) -> Result<Response> {
    let days = body_json(&body)?
        .get("days")
        .and_then(Value::as_i64)
        .ok_or_else(|| err(400, "body must be {\"days\": N}"))?;
    let shift = Duration::days(days);
    let mut world = shared.world();
    let rel = relationship(&mut world, &id)?;
    rel.shift_into_past(shift);
    Ok(json_response(200, relationship_json(rel), None))
}

/// `POST /_sandbox/clock {"advanceSeconds": N}`: the sandbox's time moves N seconds forward
/// (see `clock.rs`); answers like `GET`.
async fn advance_clock(State(shared): Ctx, body: Bytes) -> Result<Response> {
    let seconds = body_json(&body)?
        .get("advanceSeconds")
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| err(400, "body must be {\"advanceSeconds\": N} with N >= 0"))?;
    let by = Duration::milliseconds((seconds * 1000.0).round() as i64);
    shared.world().shift_into_past(by);
    shared.advance_clock(by);
    Ok(clock(State(shared)).await)
}

/// `GET /_sandbox/clock`: the sandbox's current time and how far it was advanced in total.
async fn clock(State(shared): Ctx) -> Response {
    let advanced = shared.clock_advanced();
    let now = shared.now() + advanced;
    axum::Json(json!({
        "now": now.to_rfc3339(),
        "advancedSeconds": advanced.num_milliseconds() as f64 / 1000.0,
    }))
    .into_response()
}

/// A boolean field of a control body, `default` when absent.
fn flag(body: &Value, name: &str, default: bool) -> Result<bool> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(400, format!("{name}: must be true or false"))),
    }
}

/// `POST /_sandbox/sign-ins`: completes a pending sign-in as the user would on the page —
/// `{"userCode"}` (device code) or `{"state"}` (authorization request), with `user` (UPN;
/// default the built-in fixture's GDAP admin), `mfa` (default true), `decline` (default false).
async fn complete_sign_in(State(shared): Ctx, body: Bytes) -> Result<Response> {
    let body = body_json(&body)?;
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    let (mfa, decline) = (flag(&body, "mfa", true)?, flag(&body, "decline", false)?);
    let now = sandbox_now(&shared);
    let mut world = shared.world();
    let decision = if decline {
        Decision::Decline
    } else {
        let upn = text("user")
            .or_else(|| default_user(&shared.fixture))
            .ok_or_else(|| err(400, "user: required (the fixture has no default GDAP user)"))?;
        let user = world
            .partner_user_by_upn(&upn)
            .ok_or_else(|| err(404, format!("partner user {upn} not found")))?;
        Decision::Approve {
            user_id: user.id.clone(),
            mfa,
        }
    };
    match (text("userCode"), text("state")) {
        (Some(code), None) => {
            world
                .sign_ins
                .complete_device(&code, decision, now)
                .map_err(|problem| match problem {
                    DeviceProblem::Unknown => {
                        err(404, format!("no device code has the user code {code}"))
                    }
                    DeviceProblem::Expired => err(
                        409,
                        format!("the device code of user code {code} has expired"),
                    ),
                    DeviceProblem::Completed => err(
                        409,
                        format!("the sign-in of user code {code} was already completed"),
                    ),
                })?;
            Ok(json_response(
                200,
                json!({"completed": true, "declined": decline}),
                None,
            ))
        }
        (None, Some(state)) => {
            let not_found = || {
                err(
                    404,
                    format!("no pending authorization request has state {state}"),
                )
            };
            let id = world
                .sign_ins
                .request_with_state(&state)
                .ok_or_else(not_found)?;
            let redirect = world
                .sign_ins
                .complete_request(&id, decision, now)
                .ok_or_else(not_found)?;
            Ok(json_response(200, json!({"redirect": redirect}), None))
        }
        _ => Err(err(400, "body must name exactly one of userCode and state")),
    }
}

/// `GET /_sandbox/sign-ins`: the sign-ins waiting for a person.
async fn sign_ins(State(shared): Ctx) -> Response {
    let now = sandbox_now(&shared);
    let pending = shared.world().sign_ins.pending(now);
    axum::Json(json!({"value": pending})).into_response()
}

async fn revoke_consent(
    State(shared): Ctx,
    Path((tid, app)): Path<(String, String)>,
) -> Result<Response> {
    let mut world = shared.world();
    let tenant = world
        .tenants
        .get_mut(&tid.to_ascii_lowercase())
        .ok_or_else(|| err(404, format!("tenant {tid} not found")))?;
    let sp = tenant
        .service_principal(&app)
        .map(|sp| sp.id.clone())
        .ok_or_else(|| err(404, format!("app {app} has no service principal in {tid}")))?;
    let before = tenant.grants.len() + tenant.app_role_assignments.len();
    tenant.grants.retain(|g| g.client_id != sp);
    tenant.app_role_assignments.retain(|a| a.principal_id != sp);
    let removed = before - tenant.grants.len() - tenant.app_role_assignments.len();
    Ok(json_response(200, json!({"removedGrants": removed}), None))
}

async fn delete_sp(
    State(shared): Ctx,
    Path((tid, app)): Path<(String, String)>,
) -> Result<Response> {
    let mut world = shared.world();
    let tenant = world
        .tenants
        .get_mut(&tid.to_ascii_lowercase())
        .ok_or_else(|| err(404, format!("tenant {tid} not found")))?;
    if !tenant.delete_service_principal(&app) {
        return Err(err(
            404,
            format!("app {app} has no service principal in {tid}"),
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn add_user(State(shared): Ctx, Path(tid): Path<String>, body: Bytes) -> Result<Response> {
    let Value::Object(mut user) = body_json(&body)? else {
        return Err(err(400, "body must be a user object"));
    };
    let upn = user
        .get("userPrincipalName")
        .and_then(Value::as_str)
        .ok_or_else(|| err(400, "userPrincipalName is required"))?
        .to_string();
    let tid = tid.to_ascii_lowercase();
    if !user.contains_key("id") {
        user.insert("id".into(), json!(derived_id(&format!("{tid}/{upn}"))));
    }
    user.entry("assignedLicenses").or_insert(json!([]));
    user.entry("businessPhones").or_insert(json!([]));
    super::licences::with_licence_states(&mut user);
    let id = user["id"].as_str().unwrap_or_default().to_string();
    let now = shared.now();
    let mut world = shared.world();
    let visible = world.visible_after(Family::Users, now);
    let tenant = world
        .tenants
        .get_mut(&tid)
        .ok_or_else(|| err(404, format!("tenant {tid} not found")))?;
    tenant.write_user(&id, Some(user.clone()), now, visible);
    Ok(json_response(201, Value::Object(user), None))
}

async fn remove_user(
    State(shared): Ctx,
    Path((tid, uid)): Path<(String, String)>,
) -> Result<Response> {
    let now = shared.now();
    let mut world = shared.world();
    let visible = world.visible_after(Family::Users, now);
    let tenant = world
        .tenants
        .get_mut(&tid.to_ascii_lowercase())
        .ok_or_else(|| err(404, format!("tenant {tid} not found")))?;
    if !tenant.user_will_exist(&uid) {
        return Err(err(404, format!("user {uid} not found in {tid}")));
    }
    tenant.write_user(&uid, None, now, visible);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_faults(State(shared): Ctx, body: Bytes) -> Result<Response> {
    let config: FaultConfig =
        serde_json::from_slice(&body).map_err(|e| err(400, format!("invalid fault rules: {e}")))?;
    for (i, rule) in config.rules.iter().enumerate() {
        rule.check()
            .map_err(|e| err(400, format!("rules[{i}]: {e}")))?;
    }
    shared.lock(&shared.faults).set(config);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn clear_faults(State(shared): Ctx) -> Response {
    shared.lock(&shared.faults).set(FaultConfig::default());
    StatusCode::NO_CONTENT.into_response()
}

async fn get_faults(State(shared): Ctx) -> Response {
    axum::Json(serde_json::to_value(shared.lock(&shared.faults).config()).unwrap_or_default())
        .into_response()
}

async fn set_token_faults(State(shared): Ctx, body: Bytes) -> Result<Response> {
    let faults: TokenFaults = serde_json::from_slice(&body)
        .map_err(|e| err(400, format!("invalid token fault rules: {e}")))?;
    *shared.lock(&shared.token_faults) = faults;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn clear_token_faults(State(shared): Ctx) -> Response {
    *shared.lock(&shared.token_faults) = TokenFaults::default();
    StatusCode::NO_CONTENT.into_response()
}

async fn get_token_faults(State(shared): Ctx) -> Response {
    axum::Json(serde_json::to_value(&*shared.lock(&shared.token_faults)).unwrap_or_default())
        .into_response()
}

async fn set_throttle(State(shared): Ctx, body: Bytes) -> Result<Response> {
    let v = body_json(&body)?;
    let budget = v
        .get("budget")
        .and_then(Value::as_u64)
        .ok_or_else(|| err(400, "body must be {\"budget\": N, \"windowSeconds\": S}"))?;
    let window = v
        .get("windowSeconds")
        .and_then(Value::as_f64)
        .unwrap_or(10.0);
    let mut t = shared.lock(&shared.throttle);
    t.options = super::ThrottleOptions {
        budget: budget as u32,
        window: std::time::Duration::from_secs_f64(window.max(0.001)),
    };
    t.reset();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn revoke_sessions(State(shared): Ctx, Path(upn): Path<String>) -> Result<Response> {
    let mut world = shared.world();
    let now = shared.now();
    let user = world
        .partner
        .users
        .iter_mut()
        .find(|u| u.user_principal_name.eq_ignore_ascii_case(&upn))
        .ok_or_else(|| err(404, format!("partner user {upn} not found")))?;
    user.sessions_revoked_at = Some(now);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /_sandbox/groups/{group}/members/{upn}`: a partner administrator adds the partner user
/// to the partner security group (its GDAP access through the group's access assignments
/// follows at once).
async fn add_member(
    State(shared): Ctx,
    Path((group, upn)): Path<(String, String)>,
) -> Result<Response> {
    set_membership(&shared, &group, &upn, true)
}

/// `DELETE /_sandbox/groups/{group}/members/{upn}`: a partner administrator removes the partner
/// user from the partner security group, and with it the GDAP access the group's access
/// assignments gave the user: token requests for those customers then fail (AADSTS50020) and
/// delegated reads there are refused (403) unless another group still gives access.
async fn remove_member(
    State(shared): Ctx,
    Path((group, upn)): Path<(String, String)>,
) -> Result<Response> {
    set_membership(&shared, &group, &upn, false)
}

fn set_membership(shared: &Shared, group: &str, upn: &str, member: bool) -> Result<Response> {
    let group = group.to_ascii_lowercase();
    let mut world = shared.world();
    if !world.partner.groups.contains_key(&group) {
        return Err(err(404, format!("partner group {group} not found")));
    }
    let user = world
        .partner
        .users
        .iter_mut()
        .find(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
        .ok_or_else(|| err(404, format!("partner user {upn} not found")))?;
    let changed = if member {
        user.groups.insert(group)
    } else {
        user.groups.remove(&group)
    };
    Ok(json_response(200, json!({"changed": changed}), None))
}

async fn age_refresh_tokens(State(shared): Ctx, body: Bytes) -> Result<Response> {
    let days = body_json(&body)?
        .get("days")
        .and_then(Value::as_i64)
        .ok_or_else(|| err(400, "body must be {\"days\": N}"))?;
    let mut world = shared.world();
    for rt in world.refresh_tokens.values_mut() {
        rt.issued_at -= Duration::days(days);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The world as JSON without secrets: client secrets and refresh-token values are replaced.
pub fn redacted(world: &World) -> Value {
    let mut v = serde_json::to_value(world).unwrap_or_default();
    if let Some(apps) = v.get_mut("apps").and_then(Value::as_object_mut) {
        for app in apps.values_mut() {
            let n = app
                .get("secrets")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            app["secrets"] = json!(format!("<{n} redacted>"));
        }
    }
    let tokens: Vec<Value> = world
        .refresh_tokens
        .values()
        .map(|rt| json!({"userId": rt.user_id, "clientId": rt.client_id, "issuedAt": rt.issued_at, "redeemedAt": rt.redeemed_at}))
        .collect();
    v["refreshTokens"] = Value::Array(tokens);
    if let Some(tenants) = v.get_mut("tenants").and_then(Value::as_object_mut) {
        for t in tenants.values_mut() {
            if let Some(users) = t.get_mut("users").and_then(Value::as_object_mut) {
                users.remove("changes");
            }
        }
    }
    v
}

async fn state(State(shared): Ctx) -> Response {
    axum::Json(redacted(&shared.world())).into_response()
}

async fn reset(State(shared): Ctx) -> Response {
    let mut world = World::from_fixture(&shared.fixture, shared.now());
    world.consistency = shared.options.consistency.clone();
    shared.replace_world(world);
    shared.lock(&shared.faults).set(FaultConfig::default());
    *shared.lock(&shared.token_faults) = TokenFaults::default();
    shared.lock(&shared.throttle).reset();
    shared.lock(&shared.log).clear();
    shared.lock(&shared.pc_requests).clear();
    shared.webhooks.reset();
    shared.persist();
    StatusCode::NO_CONTENT.into_response()
}

async fn requests(State(shared): Ctx) -> Response {
    let log = shared.lock(&shared.log);
    let (entries, totals) = (log.entries(), log.totals());
    let mut totals = serde_json::to_value(totals).unwrap_or_default();
    totals["writesByPath"] = json!(log.writes_by_path());
    totals["createsByTarget"] = json!(log.creates());
    drop(log);
    axum::Json(json!({"requests": entries, "totals": totals})).into_response()
}

async fn get_consistency(State(shared): Ctx) -> Response {
    axum::Json(shared.world().consistency.clone()).into_response()
}

/// `PUT /_sandbox/consistency`: the fields given replace the current ones (`{"immediate":
/// true}` first sets every delay to 0). Applies to writes from now on.
async fn set_consistency(State(shared): Ctx, body: Bytes) -> Result<Response> {
    let mut body = body_json(&body)?;
    let mut world = shared.world();
    let mut merged = serde_json::to_value(&world.consistency).unwrap_or_default();
    if let Some(object) = body.as_object_mut()
        && let Some(immediate) = object.remove("immediate")
    {
        match immediate {
            Value::Bool(true) => {
                merged = serde_json::to_value(Consistency::immediate()).unwrap_or_default()
            }
            Value::Bool(false) => {}
            _ => return Err(err(400, "immediate: must be true or false")),
        }
    }
    merge(&mut merged, body);
    let next: Consistency =
        serde_json::from_value(merged).map_err(|e| err(400, format!("consistency: {e}")))?;
    next.check().map_err(|e| err(400, e))?;
    world.consistency = next.clone();
    drop(world);
    shared.persist();
    Ok(axum::Json(next).into_response())
}

/// Merges `patch` into `target` (objects field by field, anything else replaced).
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}

async fn clear_requests(State(shared): Ctx) -> Response {
    shared.lock(&shared.log).clear();
    StatusCode::NO_CONTENT.into_response()
}
