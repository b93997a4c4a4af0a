//! Entra ID error responses of the token endpoint.
//!
//! Contract: [`entra_error`] renders `{"error", "error_description": "AADSTS{code}: …",
//! "error_codes": [code], "timestamp", "trace_id", "correlation_id", "error_uri"}` with the given
//! HTTP status; [`classify_aadsts`] gives the `error` string and status Entra uses for a code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

/// An Entra token error.
pub struct EntraError {
    status: u16,
    error: String,
    code: u32,
    description: String,
}

/// Builds an Entra error (`error_description` starts with `AADSTS{code}:`).
pub fn entra_error(status: u16, error: &str, code: u32, description: &str) -> EntraError {
    EntraError {
        status,
        error: error.into(),
        code,
        description: description.into(),
    }
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        let now = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
        let trace = uuid::Uuid::new_v4().to_string();
        let correlation = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "error": self.error,
            "error_description": format!("AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {now}", self.code, self.description),
            "error_codes": [self.code],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        (
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST),
            axum::Json(body),
        )
            .into_response()
    }
}

/// The standard `error` string and HTTP status for an AADSTS code (used by token faults).
pub fn classify_aadsts(code: u32) -> (u16, &'static str, &'static str) {
    match code {
        50076 | 50079 => (
            400,
            "interaction_required",
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.",
        ),
        53003 => (
            400,
            "interaction_required",
            "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
        ),
        65001 => (
            400,
            "invalid_grant",
            "The user or administrator has not consented to use the application.",
        ),
        90099 => (
            400,
            "invalid_grant",
            "The application has not been authorized in the tenant. Applications must be authorized to access the customer tenant before partner delegated administrators can use them.",
        ),
        700082 => (
            400,
            "invalid_grant",
            "The refresh token has expired due to inactivity.",
        ),
        70008 => (
            400,
            "invalid_grant",
            "The provided authorization code or refresh token has expired due to inactivity.",
        ),
        50173 => (
            400,
            "invalid_grant",
            "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
        ),
        70043 | 70044 => (
            400,
            "invalid_grant",
            "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access.",
        ),
        50020 | 50034 | 90072 => (
            400,
            "invalid_grant",
            "The user account does not exist in the tenant and cannot access the application.",
        ),
        7000215 => (401, "invalid_client", "Invalid client secret provided."),
        7000222 => (
            401,
            "invalid_client",
            "The provided client secret keys for app are expired.",
        ),
        700016 => (
            400,
            "unauthorized_client",
            "Application was not found in the directory.",
        ),
        7000229 => (
            400,
            "unauthorized_client",
            "The client application is missing service principal in the tenant.",
        ),
        500011 => (
            400,
            "invalid_resource",
            "The resource principal was not found in the tenant.",
        ),
        650052 => (
            400,
            "invalid_client",
            "The app needs access to a service that your organization has not subscribed to or enabled.",
        ),
        70011 => (
            400,
            "invalid_scope",
            "The provided value for the input parameter 'scope' is not valid.",
        ),
        90002 => (400, "invalid_request", "Tenant not found."),
        _ => (400, "invalid_request", "Injected error."),
    }
}
