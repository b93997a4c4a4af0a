//! The control API's errors: `{"error": "…"}` with a status, and its JSON bodies.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A control-API error.
pub struct ControlError(StatusCode, String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({"error": self.1}))).into_response()
    }
}

/// An error with `status` (400 when it is not one) and `message`.
pub fn err(status: u16, message: impl Into<String>) -> ControlError {
    ControlError(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        message.into(),
    )
}

/// A control endpoint's answer.
pub type Result<T> = std::result::Result<T, ControlError>;

/// The request's JSON body (`{}` when empty); 400 when it is not JSON.
pub fn body_json(body: &Bytes) -> Result<Value> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| err(400, format!("invalid JSON body: {e}")))
}
