//! Access-token checks every Graph and Partner Center handler runs.
//!
//! Contract: [`authenticate`] verifies the bearer token's signature, expiry and audience for the
//! API at hand, refuses a Graph token that carries neither `scp` nor `roles` (`401
//! InvalidAuthenticationToken` "Either scp or roles claim need to be present in the token.", as
//! Graph does), charges the per-app, per-tenant throttle budget, and returns the claims; failures
//! are rendered in the API's own error envelope ([`Denied`]).

use super::context::Shared;
use super::defaults::resources;
use super::faults::Verdict;
use super::http::{GraphError, PcError, graph_error};
use super::jwt::Claims;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

/// Which API is checking a token (decides audience and error shape).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Api {
    /// Microsoft Graph.
    Graph,
    /// Partner Center.
    PartnerCenter,
}

/// An authentication or authorisation failure, rendered in the API's own error shape.
pub enum Denied {
    /// Graph-shaped error.
    Graph(GraphError),
    /// Partner Center-shaped error.
    Pc(PcError),
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::Graph(e) => e.into_response(),
            Denied::Pc(e) => e.into_response(),
        }
    }
}

impl From<GraphError> for Denied {
    fn from(e: GraphError) -> Self {
        Denied::Graph(e)
    }
}

impl From<PcError> for Denied {
    fn from(e: PcError) -> Self {
        Denied::Pc(e)
    }
}

fn unauthenticated(api: Api, message: &str) -> Denied {
    match api {
        Api::Graph => graph_error(401, "InvalidAuthenticationToken", message).into(),
        Api::PartnerCenter => PcError::new(401, "Unauthorized", message).into(),
    }
}

/// Verifies the bearer token of a request for `api` and charges the throttle budget.
pub fn authenticate(shared: &Shared, headers: &HeaderMap, api: Api) -> Result<Claims, Denied> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| unauthenticated(api, "Access token is empty."))?;
    let claims = shared.keys.verify(bearer.trim()).ok_or_else(|| {
        unauthenticated(
            api,
            "IDX14100: JWT is not well formed or its signature is invalid.",
        )
    })?;
    let now = Utc::now().timestamp();
    if claims.exp <= now {
        return Err(unauthenticated(
            api,
            "Lifetime validation failed, the token is expired.",
        ));
    }
    let audience = match api {
        Api::Graph => resources::GRAPH,
        Api::PartnerCenter => resources::PARTNER_CENTER,
    };
    if claims.aud.trim_end_matches('/') != audience {
        return Err(unauthenticated(api, "Invalid audience."));
    }
    // Graph refuses a token that carries no permission at all: an app-only token of an app
    // whose service principal holds no application permission (Entra leaves `roles` out).
    let no_roles = claims.roles.as_ref().is_none_or(Vec::is_empty);
    if matches!(api, Api::Graph) && claims.scp.is_none() && no_roles {
        return Err(unauthenticated(
            api,
            "Either scp or roles claim need to be present in the token.",
        ));
    }
    let verdict = shared
        .lock(&shared.throttle)
        .check(&claims.appid, &claims.tid);
    match verdict {
        Verdict::Allowed { used } => super::http::note_throttle_use(used),
        Verdict::Throttled { used, retry_after } => {
            super::http::note_throttle_use(used);
            let scope = format!(
                "Tenant_Application/ReadWrite/{}/{}",
                claims.appid, claims.tid
            );
            let err = graph_error(429, "TooManyRequests", "Please retry again later.")
                .with_header(header::RETRY_AFTER, retry_after.to_string())
                .with_header(
                    header::HeaderName::from_static("x-ms-throttle-scope"),
                    scope,
                )
                .with_header(
                    header::HeaderName::from_static("x-ms-throttle-information"),
                    "ResourceUnitLimitExceeded".into(),
                );
            return Err(err.into());
        }
    }
    Ok(claims)
}
