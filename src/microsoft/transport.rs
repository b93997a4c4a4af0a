//! The shared HTTP layer: bearer tokens, concurrency slots, retries, error classification.
//!
//! Contract: `Transport::send` performs one logical call. Each attempt takes a concurrency slot
//! for the token's tenant, fetches a bearer token from the typed token source (a 401 invalidates
//! that token and is answered once with a fresh one — except Partner Center's "no MFA claim",
//! which a fresh token cannot cure), sends, and classifies the answer with the
//! service's error envelope. Transient failures are retried by the [`RetryPolicy`]. A request
//! marked non-idempotent (a POST that creates something) is repeated only when Microsoft surely
//! did not act on it (connection refused, 429, 503); a timeout, a dropped connection, or a
//! 500/502/504 becomes the permanent [`Reason::OutcomeUnknown`] so the caller looks first.
//! Request ids: every call carries one `client-request-id` (Graph) or `ms-requestid` (Partner
//! Center, which de-duplicates on it) that stays the same across its attempts.
//! Background reads: a Graph call with an app-only token is sent with
//! `x-ms-throttle-priority: low` and paced by the tenant's throttle hint (see [`pacing`]); the
//! pause is taken before a concurrency slot is, so a waiting call holds no slot.
//!
//! [`pacing`]: crate::microsoft::pacing

use crate::microsoft::endpoints::Endpoints;
use crate::microsoft::error::{Error, Reason, Result};
use crate::microsoft::limits::ConcurrencyLimits;
use crate::microsoft::pacing::{self, PaceEvent, PaceObserver, Pacer};
use crate::microsoft::retry::{RetryObserver, RetryPolicy};
use crate::microsoft::token_source::{TokenKind, TokenSource};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use std::sync::Arc;
use std::time::Duration;

/// Settings of the HTTP layer shared by all clients.
#[derive(Clone)]
pub struct TransportConfig {
    /// Hosts and the extra CA.
    pub endpoints: Endpoints,
    /// How transient failures are retried.
    pub retry: RetryPolicy,
    /// Timeout of one HTTP exchange.
    pub request_timeout: Duration,
    /// Requests in flight in total.
    pub global_concurrency: usize,
    /// Requests in flight per tenant.
    pub per_tenant_concurrency: usize,
    /// Sees every retry decision (metrics, tests).
    pub retry_observer: Option<RetryObserver>,
    /// Sees every HTTP exchange with Graph or Partner Center (metrics).
    pub call_observer: Option<CallObserver>,
    /// Sees every pause of a background read (metrics, tests).
    pub pace_observer: Option<PaceObserver>,
}

/// One HTTP exchange, as a call observer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// `graph` or `partner_center`.
    pub service: &'static str,
    /// HTTP method.
    pub method: String,
    /// The response status, or `None` when no response came.
    pub status: Option<u16>,
}

/// Sees every exchange (e.g. to count calls by status).
pub type CallObserver = Arc<dyn Fn(&CallRecord) + Send + Sync>;

impl TransportConfig {
    /// Defaults for the given endpoints: 60 s per exchange, 64 in flight, 4 per tenant.
    pub fn new(endpoints: Endpoints) -> Self {
        TransportConfig {
            endpoints,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(60),
            global_concurrency: 64,
            per_tenant_concurrency: 4,
            retry_observer: None,
            call_observer: None,
            pace_observer: None,
        }
    }
}

impl std::fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportConfig")
            .field("endpoints", &self.endpoints)
            .field("retry", &self.retry)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

/// Which error envelope the service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Graph,
    PartnerCenter,
}

/// One logical request.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: Url,
    pub body: Option<serde_json::Value>,
    pub headers: Vec<(&'static str, String)>,
    pub idempotent: bool,
    pub service: Service,
    pub token: &'a dyn TokenSource,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, url: Url, service: Service, token: &'a dyn TokenSource) -> Self {
        let idempotent = method != Method::POST;
        Call {
            method,
            url,
            body: None,
            headers: Vec::new(),
            idempotent,
            service,
            token,
        }
    }
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The call may be repeated (see [`Call::idempotent`]).
    pub idempotent: bool,
}

impl Reply {
    /// The body as `T`. A body that ends before its JSON does was cut short on the way:
    /// transient ([`Reason::ResponseCutShort`]) for a call that may be repeated, and
    /// [`Reason::OutcomeUnknown`] for a write, which happened but whose answer is lost. Any other
    /// mismatch is [`Reason::InvalidResponse`].
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| self.undecodable(&e))
    }

    fn undecodable(&self, e: &serde_json::Error) -> Error {
        if e.classify() != serde_json::error::Category::Eof {
            return Error::new(
                Reason::InvalidResponse,
                format!("unexpected response body: {e}"),
            );
        }
        let reason = if self.idempotent {
            Reason::ResponseCutShort
        } else {
            Reason::OutcomeUnknown
        };
        let detail = format!(
            "the answer (HTTP {}, {} bytes) was cut short: {e}",
            self.status.as_u16(),
            self.body.len()
        );
        match reason {
            // The write's success status arrived: it happened (`write_landed_unanswered`).
            Reason::OutcomeUnknown => Error::new(reason, detail).with_status(self.status.as_u16()),
            _ => Error::new(reason, detail),
        }
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)?.to_str().ok().map(str::to_string)
    }
}

/// A Partner Center 401 for a token without an MFA claim: a fresh token from the same sign-in
/// would lack it too, so it is not fetched (each refresh-token grant rotates the stored token).
fn lacks_mfa(call: &Call<'_>, reply: &Reply) -> bool {
    call.service == Service::PartnerCenter
        && Error::from_partner_center(reply.status, &reply.headers, &reply.body).reason()
            == Reason::MfaRequired
}

/// The HTTP layer. Cheap to share behind an `Arc`.
pub struct Transport {
    pub(crate) client: reqwest::Client,
    pub(crate) endpoints: Endpoints,
    retry: RetryPolicy,
    observer: Option<RetryObserver>,
    calls: Option<CallObserver>,
    paces: Option<PaceObserver>,
    pacer: Pacer,
    limits: ConcurrencyLimits,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Builds the HTTP client and limits.
    pub fn new(config: TransportConfig) -> Result<Arc<Self>> {
        Ok(Arc::new(Transport {
            client: config.endpoints.http_client(config.request_timeout)?,
            limits: ConcurrencyLimits::new(
                config.global_concurrency,
                config.per_tenant_concurrency,
            ),
            endpoints: config.endpoints,
            retry: config.retry,
            observer: config.retry_observer,
            calls: config.call_observer,
            paces: config.pace_observer,
            pacer: Pacer::default(),
        }))
    }

    /// The endpoints in use.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The retry policy in use.
    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Reports a retry decision made outside [`Transport::send`] (e.g. inside a `$batch`).
    pub(crate) fn report_retry(&self, event: &crate::microsoft::retry::RetryEvent) {
        if let Some(observe) = &self.observer {
            observe(event);
        }
    }

    /// Sends a call with retries. See the module docs.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<Reply> {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.retry
            .run(self.observer.as_ref(), |_| self.attempt(call, &request_id))
            .await
    }

    async fn attempt(&self, call: &Call<'_>, request_id: &str) -> Result<Reply> {
        if is_background(call) {
            self.pace(call.token.tenant_id()).await;
        }
        let _slot = self.limits.acquire(call.token.tenant_id()).await;
        let bearer = call.token.bearer(None).await?;
        let reply = self.exchange(call, request_id, bearer.expose()).await?;
        if reply.status != StatusCode::UNAUTHORIZED || lacks_mfa(call, &reply) {
            return self.judge(call, reply);
        }
        // The token was not accepted: fetch a fresh one once (a 401 means nothing happened).
        let fresh = call.token.bearer(Some(&bearer)).await?;
        let reply = self.exchange(call, request_id, fresh.expose()).await?;
        self.judge(call, reply)
    }

    /// Waits as long as the tenant's throttle hint asks (background reads only).
    async fn pace(&self, tenant_id: &str) {
        let Some((limit_percentage, wait)) = self.pacer.pause(tenant_id) else {
            return;
        };
        tracing::debug!(
            tenant = tenant_id,
            limit_percentage,
            wait_ms = wait.as_millis() as u64,
            "throttle budget nearly spent; pausing a background read"
        );
        if let Some(observe) = &self.paces {
            observe(&PaceEvent {
                tenant_id: tenant_id.to_string(),
                limit_percentage,
                wait,
            });
        }
        tokio::time::sleep(wait).await;
    }

    async fn exchange(&self, call: &Call<'_>, request_id: &str, bearer: &str) -> Result<Reply> {
        let mut req = self
            .client
            .request(call.method.clone(), call.url.clone())
            .bearer_auth(bearer)
            .header("accept", "application/json");
        req = match call.service {
            Service::Graph => req.header("client-request-id", request_id),
            Service::PartnerCenter => req
                .header("ms-requestid", request_id)
                .header("ms-correlationid", request_id),
        };
        if is_background(call) {
            req = req.header(pacing::PRIORITY_HEADER, "low");
        }
        for (name, value) in &call.headers {
            req = req.header(*name, value);
        }
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        tracing::trace!(method = %call.method, path = call.url.path(), tenant = call.token.tenant_id(), "Microsoft request");
        let sent = req.send().await;
        self.record(call, sent.as_ref().ok().map(|r| r.status().as_u16()));
        let resp = sent.map_err(|e| Error::from_transport(&e, call.idempotent))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if is_background(call) {
            self.pacer.observe(call.token.tenant_id(), &headers);
        }
        let body = resp.bytes().await.map_err(|e| {
            // The status line arrived: a successful write did happen.
            Error::from_transport(&e, call.idempotent && !status.is_success())
        })?;
        tracing::debug!(
            method = %call.method,
            path = call.url.path(),
            tenant = call.token.tenant_id(),
            status = status.as_u16(),
            "Microsoft response"
        );
        Ok(Reply {
            status,
            headers,
            body,
            idempotent: call.idempotent,
        })
    }

    fn record(&self, call: &Call<'_>, status: Option<u16>) {
        if let Some(observe) = &self.calls {
            let service = match call.service {
                Service::Graph => "graph",
                Service::PartnerCenter => "partner_center",
            };
            observe(&CallRecord {
                service,
                method: call.method.to_string(),
                status,
            });
        }
    }

    fn judge(&self, call: &Call<'_>, reply: Reply) -> Result<Reply> {
        if reply.status.is_success() {
            return Ok(reply);
        }
        let err = match call.service {
            Service::Graph => Error::from_graph(reply.status, &reply.headers, &reply.body),
            Service::PartnerCenter => {
                Error::from_partner_center(reply.status, &reply.headers, &reply.body)
            }
        };
        let maybe_done = matches!(reply.status.as_u16(), 500 | 502 | 504);
        if !call.idempotent && maybe_done {
            return Err(err.into_outcome_unknown());
        }
        Err(err)
    }
}

/// A Graph call with an app-only token: a background read (see the module docs).
fn is_background(call: &Call<'_>) -> bool {
    call.service == Service::Graph && call.token.kind() == TokenKind::App
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &str, idempotent: bool) -> Reply {
        Reply {
            status: StatusCode::CREATED,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
            idempotent,
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Created {
        #[allow(dead_code)]
        id: String,
    }

    #[test]
    fn a_body_cut_short_is_transient_for_a_read_and_an_unknown_outcome_for_a_write() {
        let cut = r#"{"id": "5d02"#;
        let read = reply(cut, true).json::<Created>().unwrap_err();
        assert_eq!(read.reason(), Reason::ResponseCutShort);
        assert!(read.is_transient());
        assert!(read.to_string().contains("cut short"), "{read}");
        let write = reply(cut, false).json::<Created>().unwrap_err();
        assert_eq!(
            write.reason(),
            Reason::OutcomeUnknown,
            "the write happened: look first"
        );
        assert!(write.write_landed_unanswered(), "a success status arrived");
        assert!(!read.write_landed_unanswered());
        let empty = reply("", true).json::<Created>().unwrap_err();
        assert_eq!(empty.reason(), Reason::ResponseCutShort);
        let wrong = reply(r#"{"name": "x"}"#, true)
            .json::<Created>()
            .unwrap_err();
        assert_eq!(
            wrong.reason(),
            Reason::InvalidResponse,
            "a whole body of the wrong shape"
        );
        assert!(!wrong.is_transient());
    }
}
