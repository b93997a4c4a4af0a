//! Graph JSON batching: `POST /v1.0/$batch`.
//!
//! Contract: at most 20 requests with unique (case-insensitive) ids, else `400` for the whole
//! batch. Requests run one after another through the sandbox's own router (so each is
//! authenticated, throttled, fault-injected and logged on its own) with the outer request's
//! `Authorization` header unless the inner request sets one. A request whose `dependsOn` names
//! a failed request gets `424 Failed Dependency`. Response `200 {"responses": [...]}` in request
//! order, each with `id`, `status`, `headers` and `body`.

use super::auth::Denied;
use super::context::Shared;
use super::http::{Ctx, GraphError, bad_request, json_response};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt;

/// Maximum number of requests in one batch.
pub const MAX_REQUESTS: usize = 20;

/// Builds the sandbox's complete router, which every batched request runs through.
pub type BuildRouter = fn(Arc<Shared>) -> Router;

/// Route of `$batch`; `router` builds the router the batched requests run through (the router
/// is what mounts this route, so it is handed in rather than imported).
pub fn routes(router: BuildRouter) -> Router<Arc<Shared>> {
    Router::new().route(
        "/v1.0/$batch",
        post(move |ctx: Ctx, headers: HeaderMap, body: Bytes| batch(ctx, headers, body, router)),
    )
}

fn parse(body: &Bytes) -> Result<Vec<Map<String, Value>>, GraphError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| bad_request("The batch request body must be JSON."))?;
    let list = value
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_request("The batch request must have a 'requests' array."))?;
    if list.is_empty() || list.len() > MAX_REQUESTS {
        return Err(bad_request(&format!(
            "A batch must contain between 1 and {MAX_REQUESTS} requests; it has {}.",
            list.len()
        )));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for item in list {
        let m = item
            .as_object()
            .cloned()
            .ok_or_else(|| bad_request("Each batch request must be an object."))?;
        let id = m
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_request("Each batch request needs an 'id'."))?;
        if !ids.insert(id.to_ascii_lowercase()) {
            return Err(bad_request(&format!(
                "The batch contains the id '{id}' more than once."
            )));
        }
        for key in ["method", "url"] {
            if m.get(key).and_then(Value::as_str).is_none() {
                return Err(bad_request(&format!("Batch request '{id}' needs '{key}'.")));
            }
        }
        if m.contains_key("body")
            && !m
                .get("headers")
                .and_then(|h| h.as_object())
                .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("content-type")))
        {
            return Err(bad_request(&format!(
                "Batch request '{id}' has a body but no Content-Type header."
            )));
        }
        out.push(m);
    }
    Ok(out)
}

async fn batch(
    State(shared): Ctx,
    headers: HeaderMap,
    body: Bytes,
    router: BuildRouter,
) -> Result<Response, Denied> {
    let requests = parse(&body)?;
    let router = router(shared.clone());
    let mut statuses: BTreeMap<String, u16> = BTreeMap::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let failed_dep = r
            .get("dependsOn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|d| {
                statuses
                    .get(&d.to_ascii_lowercase())
                    .is_none_or(|s| *s >= 400)
            });
        let (status, hdrs, body) = if failed_dep {
            (
                424,
                json!({"Content-Type": "application/json"}),
                json!({"error": {"code": "FailedDependency", "message": "A request this one depends on failed."}}),
            )
        } else {
            run_one(&router, &headers, &r).await
        };
        statuses.insert(id.to_ascii_lowercase(), status);
        responses.push(json!({"id": id, "status": status, "headers": hdrs, "body": body}));
    }
    Ok(json_response(200, json!({"responses": responses}), None))
}

async fn run_one(
    router: &Router,
    outer: &HeaderMap,
    r: &Map<String, Value>,
) -> (u16, Value, Value) {
    let method = Method::from_bytes(
        r["method"]
            .as_str()
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .as_bytes(),
    )
    .unwrap_or(Method::GET);
    let url = r["url"].as_str().unwrap_or_default();
    let path = if url.starts_with("/v1.0/") {
        url.to_string()
    } else {
        format!("/v1.0/{}", url.trim_start_matches('/'))
    };
    let mut builder = Request::builder().method(method).uri(path);
    for name in [header::AUTHORIZATION, header::HOST] {
        if let Some(v) = outer.get(&name) {
            builder = builder.header(name, v);
        }
    }
    for (k, v) in r
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(v) = v.as_str() {
            builder = builder.header(k.as_str(), v);
        }
    }
    let body = r
        .get("body")
        .map(|b| Body::from(b.to_string()))
        .unwrap_or_else(Body::empty);
    let Ok(request) = builder.body(body) else {
        return (
            400,
            json!({}),
            json!({"error": {"code": "BadRequest", "message": "Invalid batch request."}}),
        );
    };
    let Ok(response) = router.clone().oneshot(request).await;
    let status = response.status().as_u16();
    let mut hdrs = Map::new();
    for name in [header::CONTENT_TYPE, header::LOCATION, header::RETRY_AFTER] {
        if let Some(v) = response.headers().get(&name).and_then(|v| v.to_str().ok()) {
            hdrs.insert(canonical(name.as_str()), json!(v));
        }
    }
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        if bytes.is_empty() {
            Value::Null
        } else {
            json!(String::from_utf8_lossy(&bytes))
        }
    });
    (status, Value::Object(hdrs), body)
}

fn canonical(name: &str) -> String {
    name.split('-')
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A `$batch` body is outside data: any bytes are parsed or refused with Graph's 400.
        #[test]
        fn arbitrary_batch_bodies_are_parsed_or_refused(
            body in "\\PC{0,120}|\\{\"requests\": \\[(\\{\"id\": \"[0-9]\", \"method\": \"(GET|POST)\", \"url\": \"[/a-z]{0,12}\"(, \"dependsOn\": \\[\"[0-9]\"\\])?(, \"body\": \\{\\})?\\},?){0,4}\\]\\}",
        ) {
            let _ = parse(&Bytes::from(body));
        }
    }
}
