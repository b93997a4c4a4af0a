//! Partner Center's webhook registration API (`/webhooks/v1/registration…`) and the signing
//! certificate events point at.
//!
//! Contract: every registration call needs a Partner Center token of the partner tenant
//! (app-only, or App+User with MFA of an AdminAgents member, as `partner_center.rs` admits).
//! - `GET …/registration/events`: the supported event names.
//! - `POST …/registration` (`{"WebhookUrl", "WebhookEvents", "SignatureTokenToMsSignatureHeader"?}`)
//!   → `200` the registration with a new `SubscriberId`; `409` when one exists.
//! - `GET …/registration` → `200` the registration, `404` when there is none.
//! - `PUT …/registration` (same body) → `200` the updated registration (same `SubscriberId`);
//!   `404` when there is none.
//! - `DELETE …/registration` → `204`; `404` when there is none.
//! - `POST …/registration/validationEvents` → `200 {"correlationId"}` and a `test-created` event;
//!   `404` without a registration, `400` when it lacks `test-created`, `429` with `Retry-After`
//!   beyond two a minute.
//! - `GET …/registration/validationEvents/{correlationId}` → its status and one result per
//!   delivery attempt; `404` for an unknown id.
//!
//! A bad body is `400`, an unknown event name `400` naming it. Errors are Partner Center's
//! envelope. `GET /cert/pcnotifications-dispatch.microsoft.com.cer` serves the leaf certificate
//! (DER) without authentication.

use super::auth::Denied;
use super::context::Shared;
use super::http::{Ctx, PcError, json_response, set_header};
use super::partner_center::{AppOnly, partner_caller};
use super::webhook_deliver::validation_change;
use super::webhook_emit::{register, unregister};
use super::webhook_model::{RegistrationRequest, SUPPORTED_EVENTS, TEST_CREATED};
use super::webhook_sign::CERTIFICATE_PATH;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::sync::Arc;

const REGISTRATION: &str = "/webhooks/v1/registration";

/// Routes of the registration API and the certificate.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            REGISTRATION,
            get(read).post(create).put(update).delete(remove),
        )
        .route("/webhooks/v1/registration/events", get(events))
        .route("/webhooks/v1/registration/validationEvents", post(validate))
        .route(
            "/webhooks/v1/registration/validationEvents/{correlation}",
            get(validation),
        )
        .route(CERTIFICATE_PATH, get(certificate))
}

type Answer = Result<Response, Denied>;

fn admit(shared: &Shared, headers: &HeaderMap) -> Result<(), Denied> {
    partner_caller(shared, headers, AppOnly::Accepted).map(drop)
}

fn none_registered() -> PcError {
    PcError::new(
        404,
        "NotFound",
        "No webhook registration exists for this partner.",
    )
}

fn parse(body: &Bytes) -> Result<RegistrationRequest, PcError> {
    RegistrationRequest::parse(body).map_err(|m| PcError::new(400, "BadRequest", &m))
}

async fn events(State(shared): Ctx, headers: HeaderMap) -> Answer {
    admit(&shared, &headers)?;
    Ok(json_response(200, json!(SUPPORTED_EVENTS), None))
}

async fn read(State(shared): Ctx, headers: HeaderMap) -> Answer {
    admit(&shared, &headers)?;
    let world = shared.world();
    let registration = world
        .webhook_registration
        .as_ref()
        .ok_or_else(none_registered)?;
    Ok(json_response(200, registration.wire(), None))
}

async fn create(State(shared): Ctx, headers: HeaderMap, body: Bytes) -> Answer {
    admit(&shared, &headers)?;
    let request = parse(&body)?;
    let mut world = shared.world();
    if world.webhook_registration.is_some() {
        return Err(PcError::new(
            409,
            "Conflict",
            "A webhook registration already exists for this partner; update it with PUT.",
        )
        .into());
    }
    let registration = request.into_registration(uuid::Uuid::new_v4().to_string());
    let wire = registration.wire();
    register(&shared, &mut world, registration);
    Ok(json_response(200, wire, None))
}

async fn update(State(shared): Ctx, headers: HeaderMap, body: Bytes) -> Answer {
    admit(&shared, &headers)?;
    let request = parse(&body)?;
    let mut world = shared.world();
    let subscriber = world
        .webhook_registration
        .as_ref()
        .ok_or_else(none_registered)?
        .subscriber_id
        .clone();
    let registration = request.into_registration(subscriber);
    let wire = registration.wire();
    register(&shared, &mut world, registration);
    Ok(json_response(200, wire, None))
}

async fn remove(State(shared): Ctx, headers: HeaderMap) -> Answer {
    admit(&shared, &headers)?;
    let mut world = shared.world();
    if !unregister(&shared, &mut world) {
        return Err(none_registered().into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn validate(State(shared): Ctx, headers: HeaderMap) -> Answer {
    admit(&shared, &headers)?;
    let registration = shared
        .world()
        .webhook_registration
        .clone()
        .ok_or_else(none_registered)?;
    if !registration.wants(TEST_CREATED) {
        return Err(PcError::new(
            400,
            "BadRequest",
            "The webhook registration does not include the test-created event.",
        )
        .into());
    }
    if let Err(wait) = shared.webhooks.admit_validation(std::time::Instant::now()) {
        let mut response = PcError::new(
            429,
            "TooManyRequests",
            "At most 2 validation events may be requested per minute.",
        )
        .into_response();
        set_header(
            response.headers_mut(),
            header::RETRY_AFTER,
            &wait.to_string(),
        );
        return Ok(response);
    }
    let correlation = uuid::Uuid::new_v4().to_string();
    let change = validation_change(&correlation, shared.now());
    shared
        .webhooks
        .enqueue(&change, &registration, Some(correlation.clone()));
    Ok(json_response(
        200,
        json!({"correlationId": correlation}),
        None,
    ))
}

async fn validation(
    State(shared): Ctx,
    headers: HeaderMap,
    Path(correlation): Path<String>,
) -> Answer {
    admit(&shared, &headers)?;
    let partner = shared.world().partner.tenant_id.clone();
    let status = shared
        .webhooks
        .validation_json(&correlation, &partner)
        .ok_or_else(|| {
            PcError::new(
                404,
                "NotFound",
                &format!("No validation event with correlation id '{correlation}'."),
            )
        })?;
    Ok(json_response(200, status, None))
}

async fn certificate(State(shared): Ctx) -> Response {
    let mut response = shared.webhooks.identity.leaf_der.clone().into_response();
    set_header(
        response.headers_mut(),
        header::CONTENT_TYPE,
        "application/pkix-cert",
    );
    response
}
