//! Webhook delivery: the queue of signed events, their attempts, and the HTTP POST of each.
//!
//! Contract: [`Webhooks::enqueue`] signs an event's exact bytes once and records a delivery
//! (`pending`); [`Webhooks::deliver`] makes up to [`MAX_ATTEMPTS`] attempts, each a POST with a
//! 10 s timeout that follows no redirect, waiting `retry_base × 2ⁿ⁻¹` (at most an hour) after the
//! n-th failure; a 2xx answer makes it `delivered`, the tenth failure `offline` (never retried
//! again, as Partner Center's offline queue). At most [`CONCURRENT_POSTS`] POSTs are in flight at
//! once. Every attempt is recorded. [`Webhooks::redeliver`] sends a delivery's same bytes once
//! more (a test's replay), recorded as one more attempt. The log keeps the newest
//! [`KEPT_DELIVERIES`] deliveries; it lives in memory only.

use super::webhook_model::{Change, TEST_CREATED, WebhookRegistration, result_date};
use super::webhook_sign::{CERTIFICATE_PATH, SigningIdentity};
use super::webhook_view::View;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// Attempts before an event goes to the offline queue.
pub const MAX_ATTEMPTS: usize = 10;
/// POSTs in flight at once, over all deliveries.
pub const CONCURRENT_POSTS: usize = 16;
/// Deliveries the log keeps.
pub const KEPT_DELIVERIES: usize = 10_000;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// One attempt's timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Validation events allowed per minute.
pub const VALIDATIONS_PER_MINUTE: usize = 2;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryState {
    /// Attempts remain.
    Pending,
    /// A 2xx answer came.
    Delivered,
    /// Every attempt failed.
    Offline,
}

/// One POST of an event.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The receiver's status code, if it answered.
    pub status_code: Option<u16>,
    /// Why it got no answer.
    pub error: Option<String>,
    /// The start of the answer's body.
    #[serde(skip)]
    pub message: String,
}

/// One event on its way to the receiver.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its id.
    pub id: String,
    /// `EventName`.
    pub event_name: String,
    /// `ResourceUri`.
    pub resource_uri: String,
    /// Where it is POSTed.
    pub url: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Every attempt so far.
    pub attempts: Vec<Attempt>,
    /// The signed bytes.
    body: Bytes,
    /// `Signature <base64>`.
    signature: String,
    /// The signature goes in `x-ms-signature` rather than `Authorization`.
    ms_header: bool,
    /// A validation event's correlation id.
    correlation_id: Option<String>,
}

impl Delivery {
    /// The control API's JSON of it.
    pub fn json(&self) -> Value {
        json!({"id": self.id, "eventName": self.event_name, "resourceUri": self.resource_uri,
               "url": self.url, "state": self.state, "attempts": self.attempts})
    }
}

/// What the webhook machinery keeps under its lock.
#[derive(Debug, Default)]
pub struct WebhookState {
    /// The last view emission compared against (`None`: take the next as the baseline).
    pub baseline: Option<View>,
    deliveries: VecDeque<Delivery>,
    queued: Vec<String>,
    validations: VecDeque<Instant>,
}

/// The sandbox's webhook sender: signing identity, deliveries and their limits.
pub struct Webhooks {
    /// The CA and the leaf certificate.
    pub identity: SigningIdentity,
    state: Mutex<WebhookState>,
    wake: Notify,
    posts: Semaphore,
    http: reqwest::Client,
    retry_base: Duration,
    base: OnceLock<String>,
}

impl Webhooks {
    /// A sender whose retries start at `retry_base`.
    pub fn new(retry_base: Duration) -> anyhow::Result<Webhooks> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ATTEMPT_TIMEOUT)
            .user_agent("Microsoft-Partner-Center-Webhooks (gdap-operator sandbox)")
            .build()?;
        Ok(Webhooks {
            identity: SigningIdentity::generate()?,
            state: Mutex::new(WebhookState::default()),
            wake: Notify::new(),
            posts: Semaphore::new(CONCURRENT_POSTS),
            http,
            retry_base,
            base: OnceLock::new(),
        })
    }

    /// Sets the sandbox's base URL (once, at start).
    pub fn set_base(&self, base: &str) {
        let _ = self.base.set(base.to_string());
    }

    /// The sandbox's base URL.
    pub fn base(&self) -> &str {
        self.base.get().map(String::as_str).unwrap_or_default()
    }

    /// The state, locked (after the world's lock, never before it).
    pub fn state(&self) -> MutexGuard<'_, WebhookState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets every delivery and the baseline (sandbox reset).
    pub fn reset(&self) {
        *self.state() = WebhookState::default();
    }

    /// Waits until something was queued.
    pub async fn queued(&self) {
        self.wake.notified().await
    }

    /// Takes the ids of deliveries to start.
    pub fn take_queued(&self) -> Vec<String> {
        std::mem::take(&mut self.state().queued)
    }

    /// Signs and queues `change` for `registration`; returns the delivery's id.
    pub fn enqueue(
        &self,
        change: &Change,
        registration: &WebhookRegistration,
        correlation_id: Option<String>,
    ) -> String {
        let body = serde_json::to_vec(&change.body(self.base())).unwrap_or_default();
        let signature = format!("Signature {}", self.identity.sign(&body));
        let id = uuid::Uuid::new_v4().to_string();
        let delivery = Delivery {
            id: id.clone(),
            event_name: change.name.to_string(),
            resource_uri: format!("{}{}", self.base(), change.path),
            url: registration.webhook_url.clone(),
            state: DeliveryState::Pending,
            attempts: Vec::new(),
            body: Bytes::from(body),
            signature,
            ms_header: registration.ms_signature_header,
            correlation_id,
        };
        let mut state = self.state();
        state.deliveries.push_back(delivery);
        while state.deliveries.len() > KEPT_DELIVERIES {
            state.deliveries.pop_front();
        }
        state.queued.push(id.clone());
        drop(state);
        self.wake.notify_one();
        id
    }

    /// Admits a validation request at `now` (at most [`VALIDATIONS_PER_MINUTE`]); else the
    /// seconds until one is allowed.
    pub fn admit_validation(&self, now: Instant) -> Result<(), u64> {
        let minute = Duration::from_secs(60);
        let mut state = self.state();
        while state
            .validations
            .front()
            .is_some_and(|t| now.duration_since(*t) >= minute)
        {
            state.validations.pop_front();
        }
        if state.validations.len() >= VALIDATIONS_PER_MINUTE {
            let oldest = state.validations[0];
            let wait = minute.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        state.validations.push_back(now);
        Ok(())
    }

    /// Every delivery, oldest first (control API JSON).
    pub fn deliveries_json(&self) -> Value {
        Value::Array(self.state().deliveries.iter().map(Delivery::json).collect())
    }

    /// The validation status of `correlation_id` (Partner Center's JSON), if it exists.
    pub fn validation_json(&self, correlation_id: &str, partner_id: &str) -> Option<Value> {
        let state = self.state();
        let d = state
            .deliveries
            .iter()
            .find(|d| d.correlation_id.as_deref() == Some(correlation_id))?;
        let status = match d.state {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "completed",
            DeliveryState::Offline => "failed",
        };
        let results: Vec<Value> = d.attempts.iter().map(result_json).collect();
        Some(
            json!({"correlationId": correlation_id, "partnerId": partner_id,
                    "status": status, "callbackUrl": d.url, "results": results}),
        )
    }

    /// Makes the attempts of delivery `id` until it is delivered or offline.
    pub async fn deliver(self: std::sync::Arc<Self>, id: String) {
        for n in 1..=MAX_ATTEMPTS {
            let delivered = self.attempt(&id).await;
            let last = n == MAX_ATTEMPTS;
            let state = match (delivered, last) {
                (Some(true), _) => DeliveryState::Delivered,
                (Some(false), true) => DeliveryState::Offline,
                (Some(false), false) => DeliveryState::Pending,
                (None, _) => return,
            };
            self.set_state(&id, state);
            if state != DeliveryState::Pending {
                return;
            }
            tokio::time::sleep(self.backoff(n)).await;
        }
    }

    /// Sends delivery `id`'s bytes once more; the attempt, or `None` when there is no such id.
    pub async fn redeliver(&self, id: &str) -> Option<Attempt> {
        let delivered = self.attempt(id).await?;
        if delivered {
            self.set_state(id, DeliveryState::Delivered);
        }
        self.with(id, |d| d.attempts.last().cloned()).flatten()
    }

    /// The wait after the n-th failed attempt.
    fn backoff(&self, n: usize) -> Duration {
        let factor = 1u32 << (n.saturating_sub(1)).min(20);
        self.retry_base.saturating_mul(factor).min(MAX_BACKOFF)
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Delivery) -> T) -> Option<T> {
        self.state()
            .deliveries
            .iter_mut()
            .find(|d| d.id == id)
            .map(f)
    }

    fn set_state(&self, id: &str, state: DeliveryState) {
        self.with(id, |d| d.state = state);
    }

    /// One POST; whether it got a 2xx answer (`None`: no such delivery).
    async fn attempt(&self, id: &str) -> Option<bool> {
        let (url, body, signature, ms_header) = self.with(id, |d| {
            (
                d.url.clone(),
                d.body.clone(),
                d.signature.clone(),
                d.ms_header,
            )
        })?;
        let signature_header = if ms_header {
            "x-ms-signature"
        } else {
            "authorization"
        };
        let request = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header(signature_header, signature)
            .header(
                "x-ms-certificate-url",
                format!("{}{CERTIFICATE_PATH}", self.base()),
            )
            .header("x-ms-signature-algorithm", "rsa-sha256")
            .body(body);
        let at = Utc::now();
        let attempt = {
            let _slot = self.posts.acquire().await.ok()?;
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    Attempt {
                        at,
                        status_code: Some(status),
                        error: None,
                        message: text.chars().take(256).collect(),
                    }
                }
                Err(e) => Attempt {
                    at,
                    status_code: None,
                    error: Some(describe(&e)),
                    message: String::new(),
                },
            }
        };
        let ok = attempt.status_code.is_some_and(|s| (200..300).contains(&s));
        self.with(id, |d| d.attempts.push(attempt))?;
        Some(ok)
    }
}

/// An error without the request's URL repeated.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    match detail.is_empty() {
        true => kind.to_string(),
        false => format!("{kind}: {detail}"),
    }
}

/// One validation result (Partner Center's JSON of an attempt).
fn result_json(a: &Attempt) -> Value {
    json!({
        "responseCode": a.status_code.map(code_name),
        "responseMessage": a.error.clone().unwrap_or_else(|| a.message.clone()),
        "systemError": a.status_code.is_none(),
        "dateTimeUtc": result_date(a.at),
    })
}

/// .NET's `HttpStatusCode` name of a status (as Partner Center reports it), else the number.
fn code_name(status: u16) -> String {
    let name = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "NoContent",
        301 => "MovedPermanently",
        302 => "Found",
        307 => "TemporaryRedirect",
        308 => "PermanentRedirect",
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        408 => "RequestTimeout",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        other => return other.to_string(),
    };
    name.to_string()
}

/// The event a validation request sends: `test-created` for its correlation id.
pub fn validation_change(correlation_id: &str, at: DateTime<Utc>) -> Change {
    Change {
        name: TEST_CREATED,
        path: format!("/webhooks/v1/registration/validationEvents/{correlation_id}"),
        resource: "test",
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_an_hour() {
        let w = Webhooks::new(Duration::from_secs(10)).unwrap();
        let waits: Vec<u64> = (1..=MAX_ATTEMPTS).map(|n| w.backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]);
    }

    #[test]
    fn two_validations_a_minute() {
        let w = Webhooks::new(Duration::from_secs(10)).unwrap();
        let t0 = Instant::now();
        assert_eq!(w.admit_validation(t0), Ok(()));
        assert_eq!(w.admit_validation(t0 + Duration::from_secs(1)), Ok(()));
        assert_eq!(w.admit_validation(t0 + Duration::from_secs(30)), Err(30));
        assert_eq!(w.admit_validation(t0 + Duration::from_secs(60)), Ok(()));
    }
}
