//! HTTP plumbing shared by all endpoint modules: the error envelopes of Graph and
//! Partner Center, the request's own base URL, and the middleware that injects faults and logs
//! Microsoft-API calls.
//!
//! Contract: every Graph error is `{"error":{"code","message","innerError":{...}}}`; every
//! Partner Center error is `{"code","description","data","source"}`. [`Base`] is
//! `{scheme}://{Host header}`, so links point back at whatever address the client used.
//! `Retry-After` is always whole seconds (rounded up, at least 1). A Graph answer to a caller
//! that has used more than 80 % of its throttle budget carries
//! `x-ms-throttle-limit-percentage` (the share used, two decimals, e.g. `0.85`).

use super::conn::Cut;
use super::context::Shared;
use super::faults::{LogEntry, Mangle, Replayed};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// The shared state handle handlers receive.
pub type Ctx = State<Arc<Shared>>;

tokio::task_local! {
    /// The share of the caller's throttle budget used, set by authentication during a request.
    static THROTTLE_USED: std::cell::Cell<Option<f64>>;
}

/// Records, for the current request, how much of the caller's throttle budget is used (the
/// response then carries `x-ms-throttle-limit-percentage` above 0.8).
pub fn note_throttle_use(used: f64) {
    let _ = THROTTLE_USED.try_with(|cell| cell.set(Some(used)));
}

/// The header Graph adds when more than 80 % of the budget is used.
pub const LIMIT_PERCENTAGE_HEADER: &str = "x-ms-throttle-limit-percentage";

/// Parses a JSON object body.
pub fn body_object(body: &axum::body::Bytes) -> Result<serde_json::Map<String, Value>, GraphError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad_request("The request body must be a JSON object.")),
    }
}

/// The answer to a path no route serves: Partner Center's 404 under `/v1/`, Graph's 400
/// elsewhere.
pub async fn fallback(req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/v1/") {
        return PcError::new(404, "NotFound", "The requested resource was not found.")
            .into_response();
    }
    let segment = path.rsplit('/').next().unwrap_or_default().to_string();
    graph_error(
        400,
        "BadRequest",
        &format!("Resource not found for the segment '{segment}'."),
    )
    .into_response()
}

/// Injects faults into Microsoft-API calls and logs them (control-API calls are neither faulted
/// nor logged); persists the state after every successful write.
pub async fn observe(State(shared): Ctx, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    if path.starts_with("/_sandbox") {
        let response = next.run(req).await;
        if method != "GET" && response.status().is_success() {
            shared.persist();
        }
        return response;
    }
    let time = shared.now();
    let decision = shared.lock(&shared.faults).decide(&method, &path);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let cut = req
        .extensions()
        .get::<ConnectInfo<Cut>>()
        .map(|c| c.0.clone());
    let ids = RequestIds::of(req.headers());
    let claims = token_claims(&shared, req.headers());
    let token = claims.as_ref().map(|c| c.idtyp.clone());
    let tenant = claims.map(|c| c.tid).unwrap_or_default();
    // A create's body names the object it asks for; read it here (creates are small JSON
    // documents) and hand the same bytes on.
    let (req, target) = if method == "POST" && !path.contains("/oauth2/") {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, CREATE_BODY_LIMIT).await else {
            return graph_error(
                413,
                "RequestEntityTooLarge",
                "The request body is too large.",
            )
            .into_response();
        };
        let target = super::faults::create_target(&method, &path, &tenant, &bytes);
        (
            Request::from_parts(parts, axum::body::Body::from(bytes)),
            target,
        )
    } else {
        (req, None)
    };
    let priority = req
        .headers()
        .get("x-ms-throttle-priority")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let (mut response, used) = match (decision.fail, decision.mangle) {
        (Some((status, retry_after)), _) => (fault_response(&path, status, retry_after), None),
        (None, Some(Mangle::Drop)) => (StatusCode::BAD_GATEWAY.into_response(), None),
        (None, _) => {
            THROTTLE_USED
                .scope(std::cell::Cell::new(None), async {
                    let response = next.run(req).await;
                    (response, THROTTLE_USED.with(|c| c.get()))
                })
                .await
        }
    };
    if let Some(used) = used.filter(|u| *u > 0.8) {
        set_header(
            response.headers_mut(),
            HeaderName::from_static(LIMIT_PERCENTAGE_HEADER),
            &format!("{used:.2}"),
        );
    }
    ids.stamp(&path, response.headers_mut());
    let acted = decision.fail.is_none() && decision.mangle != Some(Mangle::Drop);
    let status = if acted { response.status().as_u16() } else { 0 };
    let status = decision.fail.map_or(status, |(s, _)| s);
    let fault = match (decision.fail, decision.mangle) {
        (Some(_), _) => Some("injected"),
        (None, mangle) => mangle.map(Mangle::name),
    };
    let replayed = response.extensions().get::<Replayed>().is_some();
    shared.lock(&shared.log).push(LogEntry {
        method: method.clone(),
        path,
        status,
        time,
        priority,
        token,
        replayed,
        fault,
        target,
    });
    if acted && method != "GET" && response.status().is_success() {
        shared.persist();
    }
    match decision.mangle.filter(|_| decision.fail.is_none()) {
        Some(Mangle::Drop | Mangle::DropAfter) => {
            if let Some(cut) = cut {
                cut.now();
            }
            response
        }
        Some(Mangle::Truncate) => truncated(response).await,
        None => response,
    }
}

/// The answer with its body cut to the first half (the headers describe the cut body).
async fn truncated(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(half))
}

/// The `idtyp` (`user` or `app`) of a request's bearer token, when it is one the sandbox signed.
fn token_claims(shared: &Shared, headers: &HeaderMap) -> Option<super::jwt::Claims> {
    let bearer = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    shared.keys.verify(bearer.trim())
}

/// The largest POST body the request log reads for its create targets (far above any create).
const CREATE_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Correlation headers: Graph answers with `request-id` and echoes `client-request-id`;
/// Partner Center echoes `MS-CorrelationId` and `MS-RequestId` (generating them when absent).
struct RequestIds {
    client_request_id: Option<String>,
    correlation_id: Option<String>,
    request_id: Option<String>,
}

impl RequestIds {
    fn of(headers: &HeaderMap) -> RequestIds {
        let get = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        RequestIds {
            client_request_id: get("client-request-id"),
            correlation_id: get("ms-correlationid"),
            request_id: get("ms-requestid"),
        }
    }

    fn stamp(self, path: &str, headers: &mut HeaderMap) {
        let fresh = || uuid::Uuid::new_v4().to_string();
        if path.starts_with("/v1/") {
            let correlation = self.correlation_id.unwrap_or_else(fresh);
            set_header(
                headers,
                HeaderName::from_static("ms-correlationid"),
                &correlation,
            );
            set_header(
                headers,
                HeaderName::from_static("ms-requestid"),
                &self.request_id.unwrap_or_else(fresh),
            );
        } else if path.starts_with("/v1.0/") {
            set_header(headers, HeaderName::from_static("request-id"), &fresh());
            if let Some(id) = self.client_request_id {
                set_header(headers, HeaderName::from_static("client-request-id"), &id);
            }
        }
    }
}

fn fault_response(path: &str, status: u16, retry_after: Option<f64>) -> Response {
    let mut response = if path.contains("/oauth2/") {
        super::entra::entra_error(
            status,
            "temporarily_unavailable",
            90033,
            "The service is temporarily unavailable (injected fault).",
        )
        .into_response()
    } else if path.starts_with("/v1/") {
        let code = if status == 429 {
            "TooManyRequests"
        } else {
            "ServiceUnavailable"
        };
        PcError::new(
            status,
            code,
            "The service is temporarily unavailable (injected fault).",
        )
        .into_response()
    } else if status == 429 {
        graph_error(429, "TooManyRequests", "Please retry again later.").into_response()
    } else {
        graph_error(
            status,
            "serviceNotAvailable",
            "The service is temporarily unavailable (injected fault).",
        )
        .into_response()
    };
    if let Some(seconds) = retry_after {
        set_header(
            response.headers_mut(),
            header::RETRY_AFTER,
            &super::faults::whole_seconds(seconds).to_string(),
        );
    }
    response
}

/// Sets a header, ignoring values that are not valid header text.
pub fn set_header(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// A Graph error response.
#[derive(Debug)]
pub struct GraphError {
    /// HTTP status.
    pub status: StatusCode,
    /// `error.code`.
    pub code: String,
    /// `error.message`.
    pub message: String,
    /// Extra headers (e.g. `Retry-After`).
    pub headers: Vec<(HeaderName, String)>,
}

/// Builds a Graph error.
pub fn graph_error(status: u16, code: &str, message: &str) -> GraphError {
    GraphError {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        code: code.to_string(),
        message: message.to_string(),
        headers: Vec::new(),
    }
}

/// Graph's `400 badRequest`.
pub fn bad_request(message: &str) -> GraphError {
    graph_error(400, "badRequest", message)
}

/// Graph's `404 itemNotFound` naming what was not found.
pub fn not_found(what: &str, id: &str) -> GraphError {
    graph_error(
        404,
        "itemNotFound",
        &format!("The requested {what} '{id}' was not found."),
    )
}

impl GraphError {
    /// Adds a header.
    pub fn with_header(mut self, name: HeaderName, value: String) -> GraphError {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let now = chrono::Utc::now();
        let body = json!({"error": {"code": self.code, "message": self.message, "innerError": {
            "date": now.format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": uuid::Uuid::new_v4().to_string(),
            "client-request-id": uuid::Uuid::new_v4().to_string(),
        }}});
        let mut response = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            set_header(response.headers_mut(), name, &value);
        }
        response
    }
}

/// A Partner Center error response.
#[derive(Debug)]
pub struct PcError {
    status: StatusCode,
    code: String,
    description: String,
}

impl PcError {
    /// Builds a Partner Center error.
    pub fn new(status: u16, code: &str, description: &str) -> PcError {
        PcError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code: code.to_string(),
            description: description.to_string(),
        }
    }
}

impl IntoResponse for PcError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.code, "description": self.description, "data": [], "source": "PartnerFD"});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            set_header(
                response.headers_mut(),
                header::WWW_AUTHENTICATE,
                "OAuth realm=urn:cpsvc:cpid:sandbox",
            );
        }
        response
    }
}

/// `{scheme}://{host}` of the current request.
#[derive(Debug, Clone)]
pub struct Base(pub String);

impl FromRequestParts<Arc<Shared>> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_string());
        Ok(Base(format!("{}://{host}", shared.scheme)))
    }
}

/// A JSON response with status and optional `Location`.
pub fn json_response(status: u16, body: Value, location: Option<String>) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        axum::Json(body),
    )
        .into_response();
    if let Some(location) = location {
        set_header(response.headers_mut(), header::LOCATION, &location);
    }
    response
}
