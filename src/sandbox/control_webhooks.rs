//! The control API of webhooks (`/_sandbox/webhooks/…`): what was delivered, a registration
//! set or removed as another tool would, a replay, and the CA a receiver trusts.
//!
//! Contract (no authentication, like all of `/_sandbox/`):
//! - `GET /_sandbox/webhooks/deliveries` → every delivery, oldest first: `{"id", "eventName",
//!   "resourceUri", "url", "state": "pending"|"delivered"|"offline", "attempts": [{"at",
//!   "statusCode", "error"}]}`.
//! - `PUT /_sandbox/webhooks/registration` `{"webhookUrl", "webhookEvents",
//!   "signatureTokenToMsSignatureHeader"?}` → `200` the registration (Partner Center's JSON),
//!   checked like Partner Center checks it (`400`); `DELETE` removes it (`204`, `404` when none).
//! - `POST /_sandbox/webhooks/redeliver` `{"id"}` → sends that delivery's same signed bytes once
//!   more, recorded as an attempt; `200` the attempt, `404` for an unknown id.
//! - `GET /_sandbox/webhooks/certificate-authority` → the CA certificate (PEM).

use super::context::Shared;
use super::control_error::{Result, body_json, err};
use super::http::{Ctx, json_response, set_header};
use super::webhook_emit::{register, unregister};
use super::webhook_model::RegistrationRequest;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::Value;
use std::sync::Arc;

/// Routes of the webhook control API.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sandbox/webhooks/deliveries", get(deliveries))
        .route(
            "/_sandbox/webhooks/registration",
            put(set_registration).delete(remove_registration),
        )
        .route("/_sandbox/webhooks/redeliver", post(redeliver))
        .route(
            "/_sandbox/webhooks/certificate-authority",
            get(certificate_authority),
        )
}

async fn deliveries(State(shared): Ctx) -> Response {
    axum::Json(shared.webhooks.deliveries_json()).into_response()
}

async fn set_registration(State(shared): Ctx, body: Bytes) -> Result<Response> {
    let request = RegistrationRequest::parse(&body).map_err(|m| err(400, m))?;
    let mut world = shared.world();
    let subscriber = world
        .webhook_registration
        .as_ref()
        .map(|r| r.subscriber_id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let registration = request.into_registration(subscriber);
    let wire = registration.wire();
    register(&shared, &mut world, registration);
    Ok(json_response(200, wire, None))
}

async fn remove_registration(State(shared): Ctx) -> Result<Response> {
    let mut world = shared.world();
    match unregister(&shared, &mut world) {
        true => Ok(StatusCode::NO_CONTENT.into_response()),
        false => Err(err(404, "no webhook registration exists")),
    }
}

async fn redeliver(State(shared): Ctx, body: Bytes) -> Result<Response> {
    let body = body_json(&body)?;
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| err(400, "give {\"id\": \"<delivery id>\"}"))?;
    let attempt = shared
        .webhooks
        .redeliver(id)
        .await
        .ok_or_else(|| err(404, format!("delivery {id} not found")))?;
    Ok(json_response(
        200,
        serde_json::to_value(attempt).unwrap_or_default(),
        None,
    ))
}

async fn certificate_authority(State(shared): Ctx) -> Response {
    let mut response = shared.webhooks.identity.ca_pem.clone().into_response();
    set_header(
        response.headers_mut(),
        header::CONTENT_TYPE,
        "application/x-pem-file",
    );
    response
}
